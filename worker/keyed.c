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

const redisReply *keyed_elem(const redisReply *r, size_t i)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

int keyed_is(const redisReply *r, size_t i, const char *s)
{
    const redisReply *e = keyed_elem(r, i);
    return e != NULL && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) && strcmp(e->str, s) == 0;
}

long long keyed_int(const redisReply *r, size_t i)
{
    const redisReply *e = keyed_elem(r, i);
    if (e == NULL)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

int keyed_open_meta(h2o_req_t *req, const keyed_op *op, const redisReply *r, uint8_t salt[CRYPT_SALT_LEN],
                    drop_meta *meta)
{
    const redisReply *s = keyed_elem(r, 4), *blob = keyed_elem(r, 5);
    if (s == NULL || blob == NULL || s->type != REDIS_REPLY_STRING || blob->type != REDIS_REPLY_STRING ||
        crypt_unhex(s->str, s->len, salt, CRYPT_SALT_LEN) != 0)
        return -1;
    return drop_meta_open(worker_of(req)->env->secret, op->key, op->keylen, salt, (const uint8_t *)blob->str,
                          blob->len, meta);
}

static void on_reply(redisReply *reply, void *data)
{
    keyed_state *st = data;
    h2o_req_t *req = st->ref.req;
    req_ref_release(&st->ref);
    if (req == NULL) {
        /* client gone */
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        http_unavailable(req);
    } else if (keyed_is(reply, 0, "blocked")) {
        shm_add(worker_of(req)->env->shm, M_BLOCKED, 1);
        http_blocked(req, (long)keyed_int(reply, 1));
    } else {
        st->op.cb(req, &st->op, reply);
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

void keyed_run(h2o_req_t *req, int script, int flags, const char *key, size_t keylen, keyed_cb cb)
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
    char client[HTTP_ADDR_MAX], k_up[64], k_fail[128], k_block[128], now[24], limit[16], window[16], memory[16];
    http_client(req, client);
    const char *argv[9] = {k_up, k_fail, k_block, "expiries", now, limit, window, memory, st->op.id};
    size_t lens[9];
    lens[0] = (size_t)drop_store_key(k_up, sizeof(k_up), "upload", st->op.id);
    lens[1] = (size_t)drop_store_key(k_fail, sizeof(k_fail), "fail", client);
    lens[2] = (size_t)drop_store_key(k_block, sizeof(k_block), "block", client);
    lens[3] = strlen("expiries");
    lens[4] = (size_t)snprintf(now, sizeof(now), "%llu", (unsigned long long)(util_now_ms() / 1000));
    lens[5] = (size_t)snprintf(limit, sizeof(limit), "%u", w->cfg->download_fail_limit);
    lens[6] = (size_t)snprintf(window, sizeof(window), "%u", w->cfg->download_block_window);
    lens[7] = (size_t)snprintf(memory, sizeof(memory), "%d", DROP_FAIL_MEMORY_S);
    lens[8] = strlen(st->op.id);
    req_ref_init(&st->ref, req);
    store_script(w->store, script, on_reply, st, 4, 9, argv, lens);
}
