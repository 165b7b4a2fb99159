/* shm.h - the state every process shares, in one anonymous shared mapping the master
 * creates before forking: the shredder's heartbeat and the metrics counters. Only
 * atomics live here (and one size, set before the fork), so no lock is ever needed. */
#ifndef RZ_SHM_H
#define RZ_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

enum {
    M_UPLOADS,
    M_UPLOAD_BYTES,
    M_DOWNLOADS,
    M_DOWNLOAD_BYTES,
    M_BURNS,
    M_EXPIRED_SHREDDED,
    M_ORPHANS_SHREDDED,
    M_BLOCKED,
    M_STORE_ERRORS,
    M_WORKER_RESTARTS,
    M_FAIL_BUDGET_EXCEEDED,
    M_FAIL_BUDGET_DELAYED,
    M_CONNS_OVER_CLIENT,
    M_HEAD_TIMEOUTS,
    M_BAD_FRAMING,
    M_BODIES_REFUSED,
    M_RESET_FLOODS,
    M_STORE_SHED,
    M_COUNT
};

#define SHM_LATENCY_BUCKETS 12
#define SHM_STATUS_CLASSES 6 /* status / 100; 0 for anything out of range */
#define SHM_LOAD(ms, conns) ((uint64_t)(ms) << 24 | ((conns) & 0xffffffu))
#define SHM_LOAD_MS(v) ((v) >> 24)
#define SHM_LOAD_CONNS(v) ((unsigned)((v) & 0xffffffu))

typedef struct {
    _Atomic uint64_t shredder_heartbeat_ms; /* monotonic clock (ms) of the shredder's last beat */
    /* Each accepting worker's load, by slot: SHM_LOAD(monotonic ms, connections); 0
     * while the slot's worker does not accept (worker.c balances accepts by it). */
    _Atomic uint64_t worker_load[CFG_WORKERS_MAX];
    _Atomic uint64_t counters[M_COUNT];
    _Atomic uint64_t latency[SHM_LATENCY_BUCKETS + 1]; /* cumulative at read time */
    _Atomic uint64_t latency_sum_us;
    _Atomic uint64_t latency_count;
    size_t endpoints; /* rows of status_class, fixed at creation */
    _Atomic uint64_t status_class[][SHM_STATUS_CLASSES]; /* [endpoint][status class] */
} shm_state;

/* Created by the master, with one row of response counters per endpoint (the workers
 * name them: worker/routes.h); NULL on failure. */
shm_state *shm_create(size_t endpoints);

static inline void shm_add(shm_state *s, int counter, uint64_t n)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->counters[counter], n, memory_order_relaxed);
}

#endif
