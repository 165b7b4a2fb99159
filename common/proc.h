/* proc.h - what the master hands to each child process it forks. */
#ifndef RZ_PROC_H
#define RZ_PROC_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "cfg.h"
#include "secret.h"
#include "shm.h"
#include "words.h"

typedef struct {
    const cfg *cfg;
    const int *listen_fds;
    size_t nlisten;
    const int *metrics_fds; /* METRICS_LISTEN's: /metrics alone (then only there) */
    size_t nmetrics;
    shm_state *shm;
    const secret *secret;  /* pinned (SECRET_PATH) and handed to workers; else NULL: a
                            * worker reads the store's itself, the shredder needs none */
    const words *words;
    int log_fd;            /* write end of the master's log pipe */
    uint64_t started_ms;   /* when the master started, for health */
    unsigned slot;         /* a worker's place among WORKERS (shm's worker_load) */
} proc_env;

/* Signals a child acts on, set by its handlers; 0, or -1 with errno. */
int proc_child_signals(void);
extern volatile sig_atomic_t proc_quit;      /* SIGQUIT: finish in-flight work, exit */
extern volatile sig_atomic_t proc_terminate; /* SIGTERM/SIGINT: exit now */

#endif
