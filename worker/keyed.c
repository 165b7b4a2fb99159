/* keyed.c - id derivation, block check and failure counting for keyed requests, and
 * their wait while the failure budget of all clients (GLOBAL_FAIL_LIMIT) is spent. */
#include "keyed.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drop.h"
#include "http.h"
#include "log.h"
#include "paths.h"
#include "sealed.h"
#include "util.h"

typedef struct {
    req_ref ref;
    keyed_op op;
    worker *w;
    store_access_fn call;
    int flags;
    char client[HTTP_ADDR_MAX];
    int64_t now;              /* unix seconds the store call was made at */
    char digest[CRYPT_DIGEST_HEX_LEN + 1]; /* a burn's: its delete token's; else "" */
    h2o_timeout_entry_t wait; /* linked while the failure budget is spent */
} keyed_state;

static void state_free(keyed_state *st)
{
    req_ref_release(&st->ref);
    if (st->op.fd >= 0)
        offload_close(st->w->offload, st->op.fd, NULL);
    objstore_get_free(st->op.get);
    explicit_bzero(st->op.key, sizeof(st->op.key));
    free(st);
}

int keyed_open_meta(h2o_req_t *req, const keyed_op *op, const record_access *r, drop_meta *meta)
{
    if (!r->sealed)
        return -1;
    return drop_meta_open(worker_of(req)->hmac, op->secret->key, op->key, op->keylen, r->salt, r->meta, r->meta_len,
                          meta);
}

/* ---- the failure budget (GLOBAL_FAIL_LIMIT) ---- */

/* Refusing only the failing requests once the budget is spent would tell a guesser
 * exactly what a 404 does, as fast. So every request naming a key waits instead, hit or
 * miss, until the window ends: the guessing rate then has a ceiling of the connections
 * a worker holds (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT) per delay. */
static int budget_spent(const worker *w)
{
    return util_now_ms() < w->budget_spent_until_ms;
}

/* An unknown key (or a wrong delete token) was answered; window_fails is the count of
 * all clients' in the budget's window holding now (unix seconds). The store counts for
 * the whole cluster, so exactly one answer sees the budget pass: that worker logs it. */
static void budget_note(worker *w, long long window_fails, int64_t now)
{
    const cfg_rate *b = &w->cfg->global_fail_limit;
    if (window_fails <= (long long)b->count)
        return;
    uint64_t window_end = ((uint64_t)now / b->period_s + 1) * b->period_s;
    if (window_end * 1000 > w->budget_spent_until_ms)
        w->budget_spent_until_ms = window_end * 1000;
    if (window_fails == (long long)b->count + 1) {
        shm_add(w->env->shm, M_FAIL_BUDGET_EXCEEDED, 1);
        log_event(LOG_WARNING, "failure_budget_exceeded",
                  "more than GLOBAL_FAIL_LIMIT=%u unknown keys in %u s across all clients: requests naming a key "
                  "wait %d ms for the next %llu s",
                  b->count, b->period_s, KEYED_BUDGET_DELAY_MS,
                  (unsigned long long)(window_end > (uint64_t)now ? window_end - (uint64_t)now : 0));
    }
}

static void on_found(const record_access *r, void *data)
{
    keyed_state *st = data;
    h2o_req_t *req = st->ref.req;
    req_ref_release(&st->ref);
    if (r->outcome == RECORD_UNKNOWN || r->outcome == RECORD_FORBIDDEN)
        budget_note(st->w, r->window_fails, st->now);
    if (req == NULL) {
        /* client gone */
    } else if (r->outcome == RECORD_UNAVAILABLE || r->outcome == RECORD_STALE) {
        http_unavailable(req);
    } else if (r->outcome == RECORD_BLOCKED) {
        shm_add(st->w->env->shm, M_BLOCKED, 1);
        http_blocked(req, (long)r->retry_after);
    } else if ((st->op.secret = worker_secret(worker_of(req))) == NULL ||
               strcmp(st->op.secret->store_fp, st->op.secret_fp) != 0) {
        http_unavailable(req); /* the secret changed while the store answered */
    } else {
        st->op.cb(req, &st->op, r);
    }
    state_free(st);
}

/* The stored file, open and share-locked; -1 when absent or held by the shredder
 * (which overwrites only under an exclusive lock), or already unlinked by it. A
 * descriptor we give up is closed by a helper thread: after the shredder's unlink, ours
 * is the file's last reference, and its close frees the blocks. */
static int open_stored(worker *w, const char *id)
{
    char path[PATHS_MAX];
    struct stat st;
    if (paths_file(w->cfg, id, path, sizeof(path)) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int e = errno;
        offload_close(w->offload, fd, NULL);
        errno = e;
        return -1;
    }
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
        offload_close(w->offload, fd, NULL);
        errno = ENOENT; /* unlinked by the shredder between our open and lock */
        return -1;
    }
    return fd;
}

/* The store call with its guard. */
static void call_store(keyed_state *st)
{
    worker *w = st->w;
    const cfg_rate *b = &w->cfg->global_fail_limit;
    const record_guard guard = {w->cfg->download_fail_limit, w->cfg->download_block_window, DROP_FAIL_MEMORY_S,
                                b->count, b->period_s, st->op.secret_fp};
    st->now = (int64_t)(util_now_ms() / 1000);
    if (st->digest[0] != '\0')
        store_burn(w->store, st->op.id, st->client, &guard, st->now, st->digest, on_found, st);
    else
        st->call(w->store, st->op.id, st->client, &guard, st->now, on_found, st);
}

/* Bytes of the object's start that must be held before the store call: its header
 * and first segment (the whole object if smaller); just the header while it has not
 * come or is not one of ours (the reader then refuses it). */
static uint64_t first_need(objstore_get *g)
{
    uint64_t len = objstore_get_length(g);
    sealed_header h;
    if (len < SEALED_HEADER_LEN)
        return len;
    if (objstore_get_peek_header(g, &h) != 0 ||
        objstore_get_room(g, SEALED_HEADER_LEN + KEYED_OBJECT_SEGMENTS * ((size_t)h.segment_size + CRYPT_TAG_LEN)) != 0)
        return SEALED_HEADER_LEN;
    uint64_t need = SEALED_HEADER_LEN + (uint64_t)h.segment_size + CRYPT_TAG_LEN;
    return need < len ? need : len;
}

static void on_object(void *data)
{
    keyed_state *st = data;
    h2o_req_t *req = st->ref.req;
    objstore_get *g = st->op.get;
    int status = objstore_get_status(g);
    if (req == NULL) {
        state_free(st); /* client gone */
        return;
    }
    if (status == 0 || (status == 200 && objstore_get_avail(g) < first_need(g) &&
                        objstore_get_avail(g) + objstore_get_offset(g) < objstore_get_length(g)))
        return; /* more to come */
    if (status == 404) {
        objstore_get_free(g); /* absent: answered like a missing file, the use counted */
        st->op.get = NULL;
    } else if (status == 200) {
        objstore_get_notify(g, NULL, NULL); /* the rest streams in while the store answers */
    } else {
        if (status > 0)
            log_event(LOG_ERROR, "storage_read_failed", "object storage answered %d", status);
        state_free(st);
        http_storage_unavailable(req);
        return;
    }
    call_store(st);
}

/* Open the stored file (or start the object's GET) if asked, then the store call. */
static void lookup(keyed_state *st)
{
    h2o_req_t *req = st->ref.req;
    worker *w = st->w;
    if (st->op.keylen > 0 && (st->flags & KEYED_OPEN_FILE) && w->objstore != NULL) {
        st->op.get = objstore_get_new(w->objstore, st->op.id, KEYED_OBJECT_BUFFER, on_object, st);
        if (st->op.get == NULL) {
            state_free(st);
            http_error(req, 500, "Internal server error");
        }
        return;
    }
    if (st->op.keylen > 0 && (st->flags & KEYED_OPEN_FILE)) {
        st->op.fd = open_stored(w, st->op.id);
        /* Absent or held by the shredder means gone; anything else (EMFILE, EIO)
         * is our trouble, and must not cost the client a use. */
        if (st->op.fd < 0 && errno != ENOENT && errno != EWOULDBLOCK) {
            log_event(LOG_ERROR, "download_open_failed", "%s", strerror(errno));
            state_free(st);
            http_unavailable(req);
            return;
        }
    }
    call_store(st);
}

static void on_budget_wait(h2o_timeout_entry_t *entry)
{
    keyed_state *st = H2O_STRUCT_FROM_MEMBER(keyed_state, wait, entry);
    if (st->ref.req == NULL)
        state_free(st); /* client gone while it waited */
    else
        lookup(st);
}

static void start(h2o_req_t *req, store_access_fn call, int flags, const char *key, size_t keylen, const char *digest,
                  keyed_cb cb)
{
    worker *w = worker_of(req);
    const secret *sec = worker_secret(w);
    if (sec == NULL) {
        http_unavailable(req);
        return;
    }
    keyed_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        http_error(req, 500, "Internal server error");
        return;
    }
    st->w = w;
    st->call = call;
    st->flags = flags;
    snprintf(st->digest, sizeof(st->digest), "%s", digest);
    snprintf(st->op.secret_fp, sizeof(st->op.secret_fp), "%s", sec->store_fp);
    st->op.cb = cb;
    st->op.fd = -1;
    for (size_t i = 0; i < keylen && i + 1 < sizeof(st->op.echo); i++)
        st->op.echo[i] = key[i] > 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\' ? key[i] : '?';
    /* A key of the wrong shape cannot exist: it gets an id no upload has, so it is
     * answered (and counted) like any unknown key without deriving anything. */
    if (words_key_valid(w->env->words, key, keylen)) {
        memcpy(st->op.key, key, keylen);
        st->op.keylen = keylen;
        crypt_id_with(w->hmac, sec->key, key, keylen, st->op.id);
    } else {
        snprintf(st->op.id, sizeof(st->op.id), "none");
    }
    http_client_key(req, st->client);
    req_ref_init(&st->ref, req);
    if (!budget_spent(w)) {
        lookup(st);
        return;
    }
    shm_add(w->env->shm, M_FAIL_BUDGET_DELAYED, 1);
    st->wait.cb = on_budget_wait;
    h2o_timeout_link(w->ctx.loop, &w->budget_timeout, &st->wait);
}

void keyed_run(h2o_req_t *req, store_access_fn call, int flags, const char *key, size_t keylen, keyed_cb cb)
{
    start(req, call, flags, key, keylen, "", cb);
}

void keyed_burn(h2o_req_t *req, const char *key, size_t keylen, const char *digest, keyed_cb cb)
{
    start(req, NULL, 0, key, keylen, digest, cb);
}
