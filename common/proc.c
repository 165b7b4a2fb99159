/* proc.c - signal flags of child processes (workers, shredder). Handlers only set
 * flags; each child's loop looks at them. */
#include "proc.h"

#include <string.h>

volatile sig_atomic_t proc_quit;
volatile sig_atomic_t proc_terminate;

static void on_signal(int sig)
{
    if (sig == SIGQUIT)
        proc_quit = 1;
    else
        proc_terminate = 1;
}

void proc_child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
