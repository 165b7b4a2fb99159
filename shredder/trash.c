/* trash.c - shred every file in the trash directory: files whose last download took
 * their last use, renamed there by the worker. No age, no store: all of it goes, as
 * soon as no reader holds it any more. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "shred.h"
#include "shredder.h"
#include "util.h"

typedef struct {
    unsigned shredded, busy, unknown;
    uint64_t max_latency_ms; /* longest a shredded file sat in the trash */
} trash_counts;

static uint64_t ctime_ms(const struct stat *st)
{
    return (uint64_t)st->st_ctim.tv_sec * 1000 + (uint64_t)st->st_ctim.tv_nsec / 1000000;
}

/* Trash names are <id>.<random>: the rename may have left STORAGE_PATH/<id[0:2]> empty. */
static void rmdir_storage_dir(const shredder *s, const char *name)
{
    char id[CRYPT_ID_HEX_LEN + 1];
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot - name != CRYPT_ID_HEX_LEN)
        return;
    memcpy(id, name, CRYPT_ID_HEX_LEN);
    id[CRYPT_ID_HEX_LEN] = '\0';
    if (crypt_is_id(id, strlen(id)))
        shredder_rmdir_parent(s, id);
}

static void trash_one(shredder *s, const char *name, trash_counts *c)
{
    char path[PATHS_MAX];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/%s", s->trash, name) >= (int)sizeof(path) || lstat(path, &st) != 0)
        return;
    if (!S_ISREG(st.st_mode)) {
        c->unknown++;
        return;
    }
    int rc = shredder_shred(s, path);
    if (rc == SHRED_DONE) {
        /* The rename into the trash set ctime: this is how long the file waited. */
        uint64_t now = util_now_ms(), waited = now > ctime_ms(&st) ? now - ctime_ms(&st) : 0;
        c->max_latency_ms = waited > c->max_latency_ms ? waited : c->max_latency_ms;
        c->shredded++;
        rmdir_storage_dir(s, name);
        shredder_beat(s);
    } else if (rc == SHRED_BUSY) {
        c->busy++;
    } else if (errno != ENOENT && errno != EINTR) {
        shredder_fail(s, WHERE_TRASH, errno);
    }
}

static void trash_log(shredder *s, const trash_counts *c)
{
    if (c->shredded > 0) {
        shm_add(s->env->shm, M_BURNS, c->shredded);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "count", c->shredded);
        cJSON_AddNumberToObject(o, "latency_ms", (double)c->max_latency_ms);
        log_fields(LOG_INFO, "burn_shredded", o);
    }
    if (c->unknown != s->trash_unknown) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "count", c->unknown);
        log_fields(c->unknown > 0 ? LOG_WARNING : LOG_INFO, "trash_unknown_entries", o);
        s->trash_unknown = c->unknown;
    }
    shredder_fails_report(s, WHERE_TRASH);
}

void shredder_trash(shredder *s)
{
    trash_counts c = {0};
    DIR *d = opendir(s->trash);
    if (d == NULL) {
        shredder_fail(s, WHERE_TRASH, errno);
        shredder_fails_report(s, WHERE_TRASH);
        return;
    }
    const struct dirent *e;
    while (!shredder_stopping() && (e = readdir(d)) != NULL)
        if (!shredder_is_dots(e->d_name))
            trash_one(s, e->d_name, &c);
    closedir(d);
    s->trash_busy = c.busy > 0;
    trash_log(s, &c);
}
