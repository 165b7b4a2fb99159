/* keyed.h - the first step of every request that names a key (download, preview,
 * status): derive the id, run the endpoint's store script together with the client's
 * block check and failure count, and answer 503 / 429 on its behalf. */
#ifndef RZ_KEYED_H
#define RZ_KEYED_H

#include <h2o.h>

#include "crypt.h"
#include "drop.h"
#include "store.h"
#include "words.h"

typedef struct keyed_op keyed_op;
/* Called with the script's reply (an array; element 0 names the outcome, never
 * "blocked"), only while the request is alive. op is freed after it returns. */
typedef void (*keyed_cb)(h2o_req_t *req, keyed_op *op, const redisReply *reply);

struct keyed_op {
    char key[WORDS_KEY_MAX];   /* empty unless the key has the right shape */
    size_t keylen;
    char echo[WORDS_KEY_MAX];  /* the requested key as shown back (printable ASCII only) */
    int fd;                    /* with KEYED_OPEN_FILE: the stored file, or -1; a callback
                                * that keeps it sets it to -1, else it is closed after */
    char id[CRYPT_ID_HEX_LEN + 1];
    keyed_cb cb;
};

/* Open the stored file under a shared lock before the script runs, so a use taken is
 * a file held: another download taking the last use cannot move it away first. */
#define KEYED_OPEN_FILE 1

void keyed_run(h2o_req_t *req, int script, int flags, const char *key, size_t keylen, keyed_cb cb);

/* Salt (reply element 4) and sealed metadata (element 5) of an "ok" reply of the
 * preview and take-use scripts, opened with the request's key; 0 or -1. */
int keyed_open_meta(h2o_req_t *req, const keyed_op *op, const redisReply *r, uint8_t salt[CRYPT_SALT_LEN],
                    drop_meta *meta);

/* Helpers to read reply elements. */
int keyed_is(const redisReply *r, size_t i, const char *s);
long long keyed_int(const redisReply *r, size_t i);
const redisReply *keyed_elem(const redisReply *r, size_t i);

#endif
