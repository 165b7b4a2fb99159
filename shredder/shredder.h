/* shredder.h - the shredder process's one context and the passes that share it:
 * trash (burned files), expiries (the store's time-ordered index) and the orphan
 * sweep (storage and temp files nobody will ever ask for). */
#ifndef RZ_SHREDDER_H
#define RZ_SHREDDER_H

#include <stdint.h>

#include "paths.h"
#include "s3.h"
#include "proc.h"
#include "store_sync.h"
#include "store_url.h"

#define SHREDDER_TICK_MS 1000
#define SHREDDER_STORE_TIMEOUT_MS 1000
/* The sweep lease: renewed every tick by its holder, so it runs out this long after
 * the holder last ran (died, hung, or lost the store) and another node takes it. */
#define SHREDDER_LEASE_MS 5000

/* Where a failure happened, for aggregated, rate-limited shred_failed lines. */
enum { WHERE_TRASH, WHERE_EXPIRED, WHERE_STORAGE, WHERE_TEMP, WHERE_COUNT };

typedef struct {
    unsigned count;        /* failures in the current pass */
    int err;               /* errno of the first of them */
    unsigned logged_count; /* what was logged last, and when */
    int logged_err;
    uint64_t logged_at_ms;
} shredder_fails;

typedef struct {
    const proc_env *env;
    const cfg *cfg;

    store_url url;          /* REDIS_URL, parsed once */
    store_sync *store;      /* NULL while the store is unreachable */
    uint64_t connect_at_ms; /* last connection attempt (monotonic); at most one a tick */
    int store_down;         /* store_down logged, store_up not yet */
    int store_lost;         /* a connection broke: sweep the storage once it is back */

    /* Expiries and the storage sweep are done by one shredder per storage at a time:
     * the holder of the lease on scope, which every node sharing the storage names
     * alike. The trash and TEMP_PATH are this node's own. */
    char lease_scope[PATHS_MAX + 320];
    char lease_holder[300]; /* hostname:pid */
    int lease_held;
    uint64_t lease_at_ms;   /* last renewal asked for */

    char trash[PATHS_MAX];
    int inotify_fd;         /* -1: the trash is only polled */
    int trash_busy;         /* a trash file was locked by a reader: look again soon */
    unsigned trash_unknown; /* entries in the trash that are not files, as last logged */

    uint64_t sweep_at_ms; /* next orphan sweep (monotonic) */
    int storage_pending;  /* the storage part of a sweep waits for the store */
    int storage_deferred; /* ... and that wait has been logged */

    shredder_fails fails[WHERE_COUNT];

    int objects;  /* STORAGE_URL: files are objects (objects.c), deleted, not overwritten */
    s3_conf s3;
} shredder;

/* The shredder process (the master's fork calls it); returns its exit code. */
int shredder_main(const proc_env *env);

/* Heartbeat for /health/; also called between files of a long pass, where it keeps
 * the sweep lease too. */
void shredder_beat(shredder *s);
/* Stop now (SIGTERM) or after the current file (SIGQUIT)? */
int shredder_stopping(void);
/* shred_file with SECURE_SHRED_PASSES, stopped by SIGTERM, beating while it works. */
int shredder_shred(shredder *s, const char *path);

/* The store connection, (re)connecting at most once a tick; NULL while it is down. */
store_sync *shredder_store(shredder *s);
/* A call failed: drop the connection; store_down is logged once per outage. */
void shredder_store_failed(shredder *s);

/* Count one failure of a pass (errno err); shredder_fails_report logs the pass's
 * failures unless the very same were logged within the last minute. */
void shredder_fail(shredder *s, int where, int err);
void shredder_fails_report(shredder *s, int where);

/* Is name "." or ".."? */
int shredder_is_dots(const char *name);
/* rmdir a STORAGE_PATH/<id[0:2]> directory that shredding may have emptied. */
void shredder_rmdir_parent(const shredder *s, const char *id);

/* Object storage (objects.c). Delete id's object while holding its reservation in the
 * store (record.h), so that no upload writes it meanwhile: SHRED_DONE deleted (or
 * absent), SHRED_BUSY an upload or a live record holds the id, SHRED_ERROR failed
 * (errno; EAGAIN for the store). */
int shredder_delete_object(shredder *s, const char *id);
/* The storage part of the orphan sweep on object storage: -1 interrupted. */
int shredder_sweep_objects(shredder *s);

/* The passes. Each logs what it shredded and adds to the metrics. */
void shredder_trash(shredder *s);
void shredder_expired(shredder *s);
void shredder_sweep_temp(shredder *s);
/* The storage part needs the store: without it nothing can be called an orphan, so
 * it is left pending (and retried each tick). */
void shredder_sweep_storage(shredder *s);
/* The storage sweep waits for the store: say so, once per outage. */
void shredder_sweep_deferred(shredder *s);

#endif
