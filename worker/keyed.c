/* keyed.c - id derivation, block check and failure counting for keyed requests. */
#include "keyed.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drop.h"
#include "http.h"
#include "log.h"
#include "paths.h"
#include "util.h"

typedef struct {
    req_ref ref;
    keyed_op op;
} keyed_state;

int keyed_open_meta(h2o_req_t *req, const keyed_op *op, const record_access *r, drop_meta *meta)
{
    if (!r->sealed)
        return -1;
    return drop_meta_open(worker_of(req)->env->secret, op->key, op->keylen, r->salt, r->meta, r->meta_len, meta);
}

static void on_found(const record_access *r, void *data)
{
    keyed_state *st = data;
    h2o_req_t *req = st->ref.req;
    req_ref_release(&st->ref);
    if (req == NULL) {
        /* client gone */
    } else if (r->outcome == RECORD_UNAVAILABLE) {
        http_unavailable(req);
    } else if (r->outcome == RECORD_BLOCKED) {
        shm_add(worker_of(req)->env->shm, M_BLOCKED, 1);
        http_blocked(req, (long)r->retry_after);
    } else {
        st->op.cb(req, &st->op, r);
    }
    if (st->op.fd >= 0)
        close(st->op.fd);
    OPENSSL_cleanse(st->op.key, sizeof(st->op.key));
    free(st);
}

/* The stored file, open and share-locked; -1 when absent or held by the shredder
 * (which overwrites only under an exclusive lock), or already unlinked by it. */
static int open_stored(const cfg *c, const char *id)
{
    char path[PATHS_MAX];
    struct stat st;
    if (paths_file(c, id, path, sizeof(path)) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
        close(fd);
        errno = ENOENT; /* unlinked by the shredder between our open and lock */
        return -1;
    }
    return fd;
}

void keyed_run(h2o_req_t *req, store_access_fn call, int flags, const char *key, size_t keylen, keyed_cb cb)
{
    worker *w = worker_of(req);
    keyed_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        http_error(req, 500, "Internal server error");
        return;
    }
    st->op.cb = cb;
    st->op.fd = -1;
    for (size_t i = 0; i < keylen && i + 1 < sizeof(st->op.echo); i++)
        st->op.echo[i] = key[i] > 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\' ? key[i] : '?';
    /* A key of the wrong shape cannot exist: it gets an id no upload has, so it is
     * answered (and counted) like any unknown key without deriving anything. */
    if (words_key_valid(w->env->words, key, keylen)) {
        memcpy(st->op.key, key, keylen);
        st->op.keylen = keylen;
        crypt_id(w->env->secret, key, keylen, st->op.id);
        if (flags & KEYED_OPEN_FILE) {
            st->op.fd = open_stored(w->cfg, st->op.id);
            /* Absent or held by the shredder means gone; anything else (EMFILE, EIO)
             * is our trouble, and must not cost the client a use. */
            if (st->op.fd < 0 && errno != ENOENT && errno != EWOULDBLOCK) {
                log_event(LOG_ERROR, "download_open_failed", "%s", strerror(errno));
                free(st);
                http_error(req, 503, "Service temporarily unavailable");
                return;
            }
        }
    } else {
        snprintf(st->op.id, sizeof(st->op.id), "none");
    }
    char client[HTTP_ADDR_MAX];
    const record_guard guard = {w->cfg->download_fail_limit, w->cfg->download_block_window, DROP_FAIL_MEMORY_S};
    http_client(req, client);
    req_ref_init(&st->ref, req);
    call(w->store, st->op.id, client, &guard, (int64_t)(util_now_ms() / 1000), on_found, st);
}
