/* objects.c - the shredder on object storage (STORAGE_URL): an object is deleted, not
 * overwritten (a store keeps no blocks of ours to overwrite), and only while its id is
 * reserved in the store, so that no upload writes the same name meanwhile. The orphan
 * sweep lists the objects under the prefix, deletes those old enough whose record is
 * gone, and aborts multipart uploads a dead worker left behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "shred.h"
#include "shredder.h"
#include "util.h"

#define RESERVE_MS 60000 /* a delete takes seconds at most; a dead shredder's runs out */
#define SWEEP_BATCH 256

int shredder_delete_object(shredder *s, const char *id)
{
    char token[RECORD_TOKEN_MAX + 1], err[256];
    uint8_t t[16];
    record_outcome held;
    store_sync *store = shredder_store(s);
    if (store == NULL) {
        errno = EAGAIN;
        return SHRED_ERROR;
    }
    crypt_random(t, sizeof(t));
    crypt_hex(t, sizeof(t), token);
    if (store_sync_reserve(store, id, token, RESERVE_MS, &held) != 0) {
        shredder_store_failed(s);
        errno = EAGAIN;
        return SHRED_ERROR;
    }
    if (held != RECORD_OK)
        return SHRED_BUSY;
    int rc = s3_sync_delete(&s->s3, id, err, sizeof(err));
    if (rc != 0)
        log_event(LOG_WARNING, "storage_delete_failed", "%s", err);
    if (store_sync_release(store, id, token) != 0)
        shredder_store_failed(s); /* the reservation runs out by itself */
    shredder_beat(s);
    if (rc != 0) {
        errno = EIO;
        return SHRED_ERROR;
    }
    return SHRED_DONE;
}

typedef struct {
    shredder *s;
    int64_t older_than;
    char ids[SWEEP_BATCH][CRYPT_ID_HEX_LEN + 1];
    size_t n;
    unsigned deleted, young, live, busy, unknown;
    int failed;
} sweep;

static int flush(sweep *w)
{
    store_sync *store = shredder_store(w->s);
    const char *ids[SWEEP_BATCH];
    record_outcome found[SWEEP_BATCH];
    if (store == NULL)
        return -1;
    for (size_t i = 0; i < w->n; i++)
        ids[i] = w->ids[i];
    if (store_sync_lookup(store, ids, w->n, found) != 0) {
        shredder_store_failed(w->s);
        return -1;
    }
    for (size_t i = 0; i < w->n && !shredder_stopping(); i++) {
        /* A burned record's object is the expiry pass's, after S3_DELETE_DELAY. */
        if (found[i] != RECORD_UNKNOWN) {
            w->live++;
            continue;
        }
        int rc = shredder_delete_object(w->s, w->ids[i]);
        if (rc == SHRED_DONE)
            w->deleted++;
        else if (rc == SHRED_BUSY)
            w->busy++;
        else if (errno == EAGAIN)
            return -1;
        else
            shredder_fail(w->s, WHERE_STORAGE, errno);
    }
    w->n = 0;
    return 0;
}

static void each(const char *name, int64_t modified, void *arg)
{
    sweep *w = arg;
    if (w->failed)
        return;
    if (!crypt_is_id(name, strlen(name))) {
        w->unknown++; /* not ours: left alone */
        return;
    }
    if (modified < 0 || modified >= w->older_than) {
        w->young++;
        return;
    }
    memcpy(w->ids[w->n++], name, CRYPT_ID_HEX_LEN + 1);
    if (w->n == SWEEP_BATCH && flush(w) != 0)
        w->failed = 1;
}

int shredder_sweep_objects(shredder *s)
{
    char token[1024] = "", err[256];
    sweep *w = calloc(1, sizeof(*w));
    unsigned aborted = 0;
    if (w == NULL) {
        shredder_fail(s, WHERE_STORAGE, ENOMEM);
        shredder_fails_report(s, WHERE_STORAGE);
        return -1;
    }
    w->s = s;
    w->older_than = (int64_t)time(NULL) - (int64_t)s->cfg->orphan_age_minutes * 60;
    int rc = 0;
    do {
        if (s3_sync_list(&s->s3, token, sizeof(token), each, w, err, sizeof(err)) != 0) {
            log_event(LOG_WARNING, "orphan_sweep_failed", "%s", err);
            rc = -1;
        }
    } while (rc == 0 && !w->failed && token[0] != '\0' && !shredder_stopping());
    if (rc == 0 && !w->failed && w->n > 0 && flush(w) != 0)
        w->failed = 1;
    if (rc == 0 && !w->failed && s3_sync_abort_stale(&s->s3, w->older_than, &aborted, err, sizeof(err)) != 0)
        log_event(LOG_WARNING, "orphan_sweep_failed", "%s", err);
    if (w->failed || shredder_stopping())
        rc = -1;
    if (rc == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "where", "storage");
        cJSON_AddNumberToObject(o, "count", w->deleted);
        cJSON_AddNumberToObject(o, "young", w->young);
        cJSON_AddNumberToObject(o, "busy", w->busy);
        cJSON_AddNumberToObject(o, "live", w->live);
        cJSON_AddNumberToObject(o, "unknown_names", w->unknown);
        cJSON_AddNumberToObject(o, "uploads_aborted", aborted);
        log_fields(w->unknown > 0 ? LOG_WARNING : LOG_INFO, "orphans_swept", o);
        shm_add(s->env->shm, M_ORPHANS_SHREDDED, w->deleted);
    }
    free(w);
    shredder_fails_report(s, WHERE_STORAGE);
    return rc;
}
