/* shredder.c - the shredder process: overwrites and unlinks what must go, and beats
 * a heartbeat into shared memory that /health/ reads as "scheduler". */
#include <time.h>

#include "log.h"
#include "proc.h"
#include "util.h"

#define TICK_MS 1000

int shredder_main(const proc_env *env)
{
    log_event(LOG_INFO, "shredder_started", NULL);
    while (!proc_terminate && !proc_quit) {
        atomic_store(&env->shm->shredder_heartbeat_ms, util_now_ms());
        struct timespec ts = {TICK_MS / 1000, (TICK_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}
