/* expire.c - shred stored files whose expiry has passed, within seconds of it.
 *
 * The store keeps an index of ids by expiry (record.h). Each tick takes the ids due,
 * shreds their files and only then removes them from the index, so a crash, a busy
 * file or a failed write just means "again next tick". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "shred.h"
#include "shredder.h"
#include "util.h"

#define EXPIRE_BATCH 256
_Static_assert(EXPIRE_BATCH <= RECORD_DUE_MAX, "a full batch must be able to say that more may follow");
/* A download whose use was taken in the last instant before the expiry may still be
 * opening the file: give it this long to take its shared lock first. */
#define EXPIRE_GRACE_S 1

typedef struct {
    double due; /* ids whose expiry <= due (unix seconds) are shredded */
    unsigned shredded, absent, busy, junk;
    uint64_t max_latency_ms; /* longest from expiry to overwritten */
} expire_counts;

/* 0 removed (or no longer due), -1 the store failed. */
static int remove_if_due(shredder *s, const char *member, size_t len, double due)
{
    store_sync *store = shredder_store(s);
    if (store == NULL)
        return -1;
    if (store_sync_remove_if_due(store, member, len, due) != 0) {
        shredder_store_failed(s);
        return -1;
    }
    return 0;
}

/* The expiry the store holds now for id (-1: gone, -2: store failure). */
static double current_expiry(shredder *s, const char *id)
{
    store_sync *store = shredder_store(s);
    double e;
    if (store == NULL)
        return -2;
    if (store_sync_expiry(store, id, &e) != 0) {
        shredder_store_failed(s);
        return -2;
    }
    return e;
}

static void count_shredded(shredder *s, const char *id, double expiry, expire_counts *c)
{
    uint64_t now = util_now_ms(), at = (uint64_t)(expiry * 1000);
    uint64_t late = now > at ? now - at : 0;
    c->max_latency_ms = late > c->max_latency_ms ? late : c->max_latency_ms;
    c->shredded++;
    shredder_rmdir_parent(s, id);
    shredder_beat(s);
}

/* One due id: 1 it stays in the set (busy, failed), 0 it left, -1 the store failed. */
static int expire_one(shredder *s, const record_member *m, expire_counts *c)
{
    if (!m->is_id) {
        c->junk++; /* nothing of ours writes such a member: drop it, it would only clog */
        return m->member != NULL ? remove_if_due(s, m->member, m->len, c->due) : 1;
    }
    double expiry = current_expiry(s, m->member);
    if (expiry < -1)
        return -1;
    if (expiry < 0 || expiry > c->due)
        return 0;
    char path[PATHS_MAX];
    if (!s->objects && paths_file(s->cfg, m->member, path, sizeof(path)) != 0)
        return 1;
    int rc = s->objects ? shredder_delete_object(s, m->member) : shredder_shred(s, path);
    if (rc == SHRED_ERROR && errno == EAGAIN)
        return -1; /* the store failed */
    if (rc == SHRED_BUSY) {
        c->busy++; /* a download still reads it: never under a reader */
        return 1;
    }
    if (rc == SHRED_ERROR && errno != ENOENT) {
        if (errno != EINTR)
            shredder_fail(s, WHERE_EXPIRED, errno);
        return 1;
    }
    if (rc == SHRED_DONE)
        count_shredded(s, m->member, expiry, c);
    else
        c->absent++;
    return remove_if_due(s, m->member, m->len, c->due);
}

static void expire_log(shredder *s, const expire_counts *c)
{
    if (c->shredded + c->absent + c->junk > 0) {
        shm_add(s->env->shm, M_EXPIRED_SHREDDED, c->shredded);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "count", c->shredded);
        cJSON_AddNumberToObject(o, "latency_ms", (double)c->max_latency_ms);
        cJSON_AddNumberToObject(o, "absent", c->absent);
        cJSON_AddNumberToObject(o, "busy", c->busy);
        if (c->junk > 0)
            cJSON_AddNumberToObject(o, "invalid_members", c->junk);
        log_fields(LOG_INFO, "expired_shredded", o);
    }
    shredder_fails_report(s, WHERE_EXPIRED);
}

/* One batch of due ids; 1 if it was full (more may follow), else 0. */
static int expire_batch(shredder *s, expire_counts *c, unsigned *skip)
{
    store_sync *store = shredder_store(s);
    record_due due;
    if (store == NULL)
        return 0;
    if (store_sync_due(store, c->due, *skip, EXPIRE_BATCH, &due) != 0) {
        shredder_store_failed(s);
        return 0;
    }
    int full = due.n == EXPIRE_BATCH;
    for (size_t i = 0; i < due.n; i++) {
        int kept = shredder_stopping() ? -1 : expire_one(s, &due.m[i], c);
        if (kept < 0) {
            full = 0;
            break;
        }
        *skip += (unsigned)kept;
    }
    record_due_free(&due);
    return full;
}

void shredder_expired(shredder *s)
{
    /* An object has no lock to wait for: a download in progress reads it for up to
     * S3_DELETE_DELAY after the expiry or last use. */
    expire_counts c = {.due = (double)util_now_ms() / 1000 -
                              (s->objects ? (double)s->cfg->s3_delete_delay : EXPIRE_GRACE_S)};
    unsigned skip = 0; /* due ids this pass left in the set (busy, failed), ahead of the rest */
    while (expire_batch(s, &c, &skip))
        ;
    expire_log(s, &c);
}
