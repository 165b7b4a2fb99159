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

int proc_child_signals(void)
{
    static const int flagged[] = {SIGQUIT, SIGTERM, SIGINT}, ignored[] = {SIGHUP, SIGUSR1, SIGPIPE};
    struct sigaction sa;
    sigset_t none;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    for (size_t i = 0; i < sizeof(flagged) / sizeof(flagged[0]); i++)
        if (sigaction(flagged[i], &sa, NULL) != 0)
            return -1;
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        if (sigaction(ignored[i], &sa, NULL) != 0)
            return -1;
    /* The master blocks what it handles; a child takes signals at any time. */
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}
