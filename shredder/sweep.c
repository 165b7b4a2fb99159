/* sweep.c - the orphan sweep, at start-up and every CLEANUP_INTERVAL_MINUTES.
 *
 * TEMP_PATH: any file older than ORPHAN_AGE_MINUTES is a crashed upload's leftover.
 * STORAGE_PATH: a file older than that whose record is gone (or is a burned tombstone)
 * is an orphan. Only the store can say so: while it is unreachable the storage part
 * waits, because a file we cannot look up is not known to be an orphan. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "shred.h"
#include "shredder.h"
#include "util.h"

#define SWEEP_BATCH 256 /* ids looked up in one pipelined round trip */

typedef struct {
    unsigned shredded, young, live, busy, unknown;
} sweep_counts;

typedef struct {
    char ids[SWEEP_BATCH][CRYPT_ID_HEX_LEN + 1];
    size_t n;
} id_batch;

static int is_old(const shredder *s, const struct stat *st)
{
    time_t now = time(NULL);
    return now > st->st_mtime && (uint64_t)(now - st->st_mtime) >= (uint64_t)s->cfg->orphan_age_minutes * 60;
}

/* Shred one orphan; SHRED_* as shred_file, counted. */
static void sweep_shred(shredder *s, const char *path, int where, sweep_counts *c)
{
    int rc = shredder_shred(s, path);
    if (rc == SHRED_DONE) {
        c->shredded++;
        shredder_beat(s);
    } else if (rc == SHRED_BUSY) {
        c->busy++;
    } else if (errno != ENOENT && errno != EINTR) {
        shredder_fail(s, where, errno);
    }
}

static void sweep_log(shredder *s, const char *where, const sweep_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "where", where);
    cJSON_AddNumberToObject(o, "count", c->shredded);
    cJSON_AddNumberToObject(o, "young", c->young);
    cJSON_AddNumberToObject(o, "busy", c->busy);
    if (strcmp(where, "storage") == 0) {
        cJSON_AddNumberToObject(o, "live", c->live);
        cJSON_AddNumberToObject(o, "unknown_names", c->unknown);
    }
    log_fields(c->unknown > 0 ? LOG_WARNING : LOG_INFO, "orphans_swept", o);
    shm_add(s->env->shm, M_ORPHANS_SHREDDED, c->shredded);
}

/* ---- TEMP_PATH ---- */

void shredder_sweep_temp(shredder *s)
{
    sweep_counts c = {0};
    DIR *d = opendir(s->cfg->temp_path);
    if (d == NULL) {
        shredder_fail(s, WHERE_TEMP, errno);
        shredder_fails_report(s, WHERE_TEMP);
        return;
    }
    const struct dirent *e;
    while (!shredder_stopping() && (e = readdir(d)) != NULL) {
        char path[PATHS_MAX];
        struct stat st;
        if (shredder_is_dots(e->d_name) ||
            snprintf(path, sizeof(path), "%s/%s", s->cfg->temp_path, e->d_name) >= (int)sizeof(path) ||
            lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!is_old(s, &st))
            c.young++; /* maybe an upload still being written */
        else
            sweep_shred(s, path, WHERE_TEMP, &c);
    }
    closedir(d);
    sweep_log(s, "temp", &c);
    shredder_fails_report(s, WHERE_TEMP);
}

/* ---- STORAGE_PATH ---- */

/* Look the batch up in one round trip, shred the orphans: files whose record is gone
 * or burned. -1 if the store failed. */
static int batch_flush(shredder *s, id_batch *b, sweep_counts *c)
{
    store_sync *store = shredder_store(s);
    const char *ids[SWEEP_BATCH];
    record_outcome found[SWEEP_BATCH];
    if (store == NULL)
        return -1;
    for (size_t i = 0; i < b->n; i++)
        ids[i] = b->ids[i];
    if (store_sync_lookup(store, ids, b->n, found) != 0) {
        shredder_store_failed(s);
        return -1;
    }
    for (size_t i = 0; i < b->n && !shredder_stopping(); i++) {
        char path[PATHS_MAX];
        if (found[i] != RECORD_UNKNOWN && found[i] != RECORD_BURNED) {
            c->live++; /* or not understood: kept */
        } else if (paths_file(s->cfg, b->ids[i], path, sizeof(path)) == 0) {
            sweep_shred(s, path, WHERE_STORAGE, c);
            shredder_rmdir_parent(s, b->ids[i]);
        }
    }
    b->n = 0;
    shredder_beat(s);
    return 0;
}

/* Sort one name of STORAGE_PATH/<prefix>/: unknown, young, or queued for a look-up.
 * -1 if a full batch could not be looked up. */
static int storage_entry(shredder *s, const char *dir, const char *prefix, const char *name, id_batch *b,
                         sweep_counts *c)
{
    char path[PATHS_MAX];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) || lstat(path, &st) != 0)
        return 0;
    if (!crypt_is_id(name, strlen(name)) || strncmp(name, prefix, 2) != 0 || !S_ISREG(st.st_mode)) {
        c->unknown++; /* not ours: left alone */
        return 0;
    }
    if (!is_old(s, &st)) {
        c->young++;
        return 0;
    }
    memcpy(b->ids[b->n++], name, CRYPT_ID_HEX_LEN + 1); /* an id: exactly that long */
    return b->n == SWEEP_BATCH ? batch_flush(s, b, c) : 0;
}

static int storage_dir(shredder *s, const char *prefix, id_batch *b, sweep_counts *c)
{
    char dir[PATHS_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", s->cfg->storage_path, prefix);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0; /* removed meanwhile */
    int rc = 0;
    const struct dirent *e;
    while (rc == 0 && !shredder_stopping() && (e = readdir(d)) != NULL)
        if (!shredder_is_dots(e->d_name))
            rc = storage_entry(s, dir, prefix, e->d_name, b, c);
    closedir(d);
    return rc;
}

static int is_prefix_dir(const shredder *s, const char *name)
{
    char path[PATHS_MAX];
    struct stat st;
    int hex = strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
    return hex && snprintf(path, sizeof(path), "%s/%s", s->cfg->storage_path, name) < (int)sizeof(path) &&
           lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Walk STORAGE_PATH/<xx>/<id>; 0 done, -1 interrupted (store failure or stop). */
static int storage_walk(shredder *s, id_batch *b, sweep_counts *c)
{
    DIR *d = opendir(s->cfg->storage_path);
    if (d == NULL) {
        shredder_fail(s, WHERE_STORAGE, errno);
        return 0;
    }
    int rc = 0;
    const struct dirent *e;
    while (rc == 0 && !shredder_stopping() && (e = readdir(d)) != NULL) {
        if (shredder_is_dots(e->d_name))
            continue;
        if (is_prefix_dir(s, e->d_name))
            rc = storage_dir(s, e->d_name, b, c);
        else
            c->unknown++;
    }
    closedir(d);
    if (rc == 0 && b->n > 0 && !shredder_stopping())
        rc = batch_flush(s, b, c);
    return rc != 0 || shredder_stopping() ? -1 : 0;
}

void shredder_sweep_storage(shredder *s)
{
    sweep_counts c = {0};
    id_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        shredder_fail(s, WHERE_STORAGE, ENOMEM);
    } else if (s->objects && shredder_store(s) != NULL) {
        if (shredder_sweep_objects(s) == 0) {
            s->storage_pending = 0;
            s->storage_deferred = 0;
        }
    } else if (shredder_store(s) != NULL && storage_walk(s, b, &c) == 0) {
        s->storage_pending = 0;
        s->storage_deferred = 0;
        sweep_log(s, "storage", &c);
    } else if (s->store == NULL) {
        shredder_sweep_deferred(s);
    }
    free(b);
    shredder_fails_report(s, WHERE_STORAGE);
}

void shredder_sweep_deferred(shredder *s)
{
    if (s->storage_deferred || shredder_stopping())
        return;
    log_event(LOG_WARNING, "orphan_sweep_deferred", "metadata store unreachable: storage not swept, retrying every second");
    s->storage_deferred = 1;
}
