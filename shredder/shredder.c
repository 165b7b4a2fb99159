/* shredder.c - the shredder process: a loop that beats a heartbeat, empties the trash,
 * shreds what has expired and sweeps orphans when due (those two only while it holds
 * the sweep lease), then waits on inotify (trash) for at most a tick. Also the store
 * connection, the lease and failure logging the passes share. */
#include "shredder.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "shred.h"
#include "util.h"

#define BUSY_RETRY_MS 100   /* a burned file still being read: look again this soon */
#define FAIL_RELOG_MS 60000 /* the same failures are logged again at most this often */

/* ---- small shared helpers ---- */

static int lease_keep(shredder *s);

void shredder_beat(shredder *s)
{
    atomic_store(&s->env->shm->shredder_heartbeat_ms, util_mono_ms());
    if (s->lease_held)
        (void)lease_keep(s);
}

int shredder_stopping(void)
{
    return proc_terminate || proc_quit;
}

static void on_progress(void *arg)
{
    shredder_beat(arg);
}

int shredder_shred(shredder *s, const char *path)
{
    shred_hooks hooks = {.stop = &proc_terminate, .progress = on_progress, .arg = s};
    return shred_file(path, s->cfg->secure_shred_passes, &hooks);
}

int shredder_is_dots(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

void shredder_rmdir_parent(const shredder *s, const char *id)
{
    char dir[PATHS_MAX];
    if (paths_file_dir(s->cfg, id, dir, sizeof(dir)) == 0)
        rmdir(dir); /* ENOTEMPTY (or EEXIST) just means other files live there */
}

void shredder_fail(shredder *s, int where, int err)
{
    if (s->fails[where].count++ == 0)
        s->fails[where].err = err;
}

void shredder_fails_report(shredder *s, int where)
{
    static const char *const names[WHERE_COUNT] = {"trash", "expired", "storage", "temp"};
    shredder_fails *f = &s->fails[where];
    uint64_t now = util_mono_ms();
    if (f->count > 0 &&
        (f->count != f->logged_count || f->err != f->logged_err || now - f->logged_at_ms >= FAIL_RELOG_MS)) {
        /* Counts and error text only: a path or an id would point at a key. */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "where", names[where]);
        cJSON_AddNumberToObject(o, "count", f->count);
        cJSON_AddStringToObject(o, "error", strerror(f->err));
        log_fields(LOG_ERROR, "shred_failed", o);
        f->logged_count = f->count;
        f->logged_err = f->err;
        f->logged_at_ms = now;
    }
    f->count = 0;
}

/* ---- the store ---- */

static void store_down(shredder *s, const char *why)
{
    if (s->store_down)
        return;
    s->store_down = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", why);
    log_fields(LOG_WARNING, "store_down", o);
}

store_sync *shredder_store(shredder *s)
{
    if (s->store != NULL)
        return s->store;
    uint64_t now = util_mono_ms();
    if (s->connect_at_ms != 0 && now - s->connect_at_ms < SHREDDER_TICK_MS)
        return NULL;
    s->connect_at_ms = now;
    char err[256];
    s->store = store_sync_connect(&s->url, SHREDDER_STORE_TIMEOUT_MS, err, sizeof(err));
    if (s->store == NULL) {
        store_down(s, err);
        return NULL;
    }
    if (s->store_down) {
        s->store_down = 0;
        log_event(LOG_INFO, "store_up", NULL);
    }
    if (s->store_lost) {
        /* It may have come back empty: every file is then an orphan. */
        s->store_lost = 0;
        s->storage_pending = 1;
    }
    return s->store;
}

void shredder_store_failed(shredder *s)
{
    store_down(s, store_sync_error(s->store)); /* first: the text lives in what is freed next */
    store_sync_free(s->store);
    s->store = NULL;
    s->store_lost = 1;
}

/* ---- the sweep lease ---- */

static void lease_log(shredder *s, const char *event)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "holder", s->lease_holder);
    log_fields(LOG_INFO, event, o);
}

/* Take or renew the lease, at most once a tick; do we hold it? */
static int lease_keep(shredder *s)
{
    uint64_t now = util_mono_ms();
    if (s->lease_at_ms != 0 && now - s->lease_at_ms < SHREDDER_TICK_MS)
        return s->lease_held;
    s->lease_at_ms = now;
    store_sync *store = shredder_store(s);
    int held = 0;
    if (store != NULL && store_sync_lease(store, s->lease_scope, s->lease_holder, SHREDDER_LEASE_MS, &held) != 0) {
        shredder_store_failed(s);
        held = 0;
    }
    if (held != s->lease_held)
        lease_log(s, held ? "sweep_lease_taken" : "sweep_lease_lost");
    s->lease_held = held;
    return held;
}

/* Hand the lease over at once on a clean stop rather than make the others wait it out. */
static void lease_give_back(shredder *s)
{
    int held;
    if (s->lease_held && s->store != NULL && store_sync_lease(s->store, s->lease_scope, s->lease_holder, 0, &held) == 0)
        lease_log(s, "sweep_lease_given_back");
    s->lease_held = 0;
}

/* Object storage: the endpoint and bucket, which every node names alike. Local disk:
 * this host's directory (several servers on one host may share it); the same path on
 * another host is another disk. */
static void lease_names(shredder *s)
{
    char host[256] = "", dir[PATHS_MAX];
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    if (realpath(s->cfg->storage_path, dir) == NULL)
        snprintf(dir, sizeof(dir), "%s", s->cfg->storage_path);
    if (s->cfg->storage_url[0] != '\0')
        snprintf(s->lease_scope, sizeof(s->lease_scope), "%s %s", s->cfg->s3_endpoint, s->cfg->storage_url);
    else
        snprintf(s->lease_scope, sizeof(s->lease_scope), "%s:%s", host, dir);
    snprintf(s->lease_holder, sizeof(s->lease_holder), "%s:%ld", host, (long)getpid());
}

/* ---- the loop ---- */

static int shredder_open(shredder *s, const proc_env *env)
{
    memset(s, 0, sizeof(*s));
    s->env = env;
    s->cfg = env->cfg;
    s->inotify_fd = -1;
    s->sweep_at_ms = util_mono_ms(); /* once at start-up */
    if (store_url_parse(s->cfg->redis_url, &s->url) != 0 ||
        store_url_sentinels(s->cfg->redis_sentinels, s->cfg->redis_sentinel_master, s->cfg->redis_sentinel_password,
                            &s->url) != 0) {
        log_event(LOG_ERROR, "shredder_failed", "REDIS_URL or REDIS_SENTINELS cannot be used");
        return -1;
    }
    if (s3_enabled(s->cfg)) {
        char err[512] = "libcurl failed to start";
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || s3_conf_load(&s->s3, s->cfg, err, sizeof(err)) != 0) {
            log_event(LOG_ERROR, "shredder_failed", "%s", err);
            return -1;
        }
        s->objects = 1;
    }
    lease_names(s);
    if (paths_trash_dir(s->cfg, s->trash, sizeof(s->trash)) != 0) {
        log_event(LOG_ERROR, "shredder_failed", "trash directory path too long");
        return -1;
    }
    /* Renames into the trash, and a reader closing a burned file there, wake us. */
    s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->inotify_fd < 0 || inotify_add_watch(s->inotify_fd, s->trash, IN_MOVED_TO | IN_CLOSE_NOWRITE) < 0) {
        log_event(LOG_WARNING, "inotify_unavailable", "%s; polling the trash every second", strerror(errno));
        if (s->inotify_fd >= 0)
            close(s->inotify_fd);
        s->inotify_fd = -1;
    }
    return 0;
}

static void shredder_close(shredder *s)
{
    lease_give_back(s);
    if (s->inotify_fd >= 0)
        close(s->inotify_fd);
    store_sync_free(s->store);
    if (s->objects) {
        s3_conf_wipe(&s->s3);
        curl_global_cleanup();
    }
}

/* Read pending events; did any name a file in the trash? Events on the directory
 * itself (our own readdir opens and closes it) do not count. */
static int trash_event(shredder *s)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int found = 0;
    ssize_t n;
    while ((n = read(s->inotify_fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            found |= ev->len > 0 || (ev->mask & IN_Q_OVERFLOW) != 0;
            p += sizeof(*ev) + ev->len;
        }
    return found;
}

/* Sleep until the next tick, a file lands in (or is let go of in) the trash, or a
 * signal. */
static void wait_for_work(shredder *s, uint64_t tick_at)
{
    uint64_t now = util_mono_ms();
    uint64_t until = s->trash_busy && tick_at > now + BUSY_RETRY_MS ? now + BUSY_RETRY_MS : tick_at;
    for (;; now = util_mono_ms()) {
        if (now >= until || shredder_stopping())
            return;
        struct pollfd p = {.fd = s->inotify_fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(until - now));
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0 && trash_event(s))
            return;
    }
}

static void tick(shredder *s)
{
    int sweeps = lease_keep(s);
    if (sweeps)
        shredder_expired(s);
    uint64_t now = util_mono_ms();
    if (now >= s->sweep_at_ms && !shredder_stopping()) {
        s->sweep_at_ms = now + (uint64_t)s->cfg->cleanup_interval_minutes * 60000;
        shredder_sweep_temp(s);
        s->storage_pending = 1;
    }
    /* A node that takes the lease over sweeps at once: its holder may have died
     * half-way through. */
    if (s->storage_pending && sweeps && !shredder_stopping())
        shredder_sweep_storage(s);
    else if (s->storage_pending && s->store == NULL)
        shredder_sweep_deferred(s);
}

int shredder_main(const proc_env *env)
{
    shredder s;
    if (shredder_open(&s, env) != 0)
        return 1;
    log_event(LOG_INFO, "shredder_started", NULL);
    uint64_t tick_at = 0;
    while (!shredder_stopping()) {
        shredder_beat(&s);
        shredder_trash(&s);
        if (util_mono_ms() >= tick_at && !shredder_stopping()) {
            tick_at = util_mono_ms() + SHREDDER_TICK_MS;
            tick(&s);
        }
        wait_for_work(&s, tick_at);
    }
    shredder_close(&s);
    return 0;
}
