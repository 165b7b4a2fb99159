/* keyed.h - the first step of every request that names a key (download, preview,
 * status, delete): derive the id, run the endpoint's store call (which carries the
 * client's block check and failure count, and the failure budget of all clients), and
 * answer 503 / 429 on its behalf: 503 too while the server secret is not at hand, or
 * when it changed under the request. */
#ifndef RZ_KEYED_H
#define RZ_KEYED_H

#include <h2o.h>

#include "crypt.h"
#include "drop.h"
#include "objstore.h"
#include "sealed.h"
#include "secret.h"
#include "store.h"
#include "words.h"

typedef struct keyed_op keyed_op;
/* Called with what the store found (never RECORD_UNAVAILABLE, RECORD_STALE or
 * RECORD_BLOCKED), only while the request is alive. op is freed after it returns. */
typedef void (*keyed_cb)(h2o_req_t *req, keyed_op *op, const record_access *r);

struct keyed_op {
    char key[WORDS_KEY_MAX];   /* empty unless the key has the right shape */
    size_t keylen;
    char echo[WORDS_KEY_MAX];  /* the requested key as shown back (printable ASCII only) */
    int fd;                    /* with KEYED_OPEN_FILE: the stored file, or -1; a callback
                                * that keeps it sets it to -1, else it is closed after */
    objstore_get *get;         /* with KEYED_OPEN_FILE on object storage: the object's GET,
                                * its header and first segment held, or NULL when there is
                                * no such object; a callback that keeps it sets it to NULL */
    char id[CRYPT_ID_HEX_LEN + 1];
    char secret_fp[SECRET_FP_LEN + 1]; /* of the secret the id was derived under */
    const secret *secret;      /* that secret, for the callback (which must not keep it) */
    keyed_cb cb;
};

/* Open the stored file under a shared lock before the store call, so a use taken is
 * a file held: another download taking the last use cannot move it away first. On
 * object storage, start the object's GET and wait for its first segment instead: a
 * storage that does not answer gets 503 before any use is spent, and the shredder
 * deletes a burned object only S3_DELETE_DELAY after its last use. */
#define KEYED_OPEN_FILE 1

/* What a download on object storage holds of the object at most: two chunks of
 * download.c's four segments. */
#define KEYED_OBJECT_SEGMENTS 8
#define KEYED_OBJECT_BUFFER (SEALED_HEADER_LEN + KEYED_OBJECT_SEGMENTS * (SEALED_SEGMENT_SIZE + CRYPT_TAG_LEN))

/* How long a request naming a key waits while the failure budget of all clients
 * (GLOBAL_FAIL_LIMIT) is spent. */
#define KEYED_BUDGET_DELAY_MS 1000

/* call: store_take_use, store_preview or store_status. The client is the request's
 * key for limits (http_client_key). While the failure budget is spent, the request
 * first waits KEYED_BUDGET_DELAY_MS (on worker.budget_timeout). */
void keyed_run(h2o_req_t *req, store_access_fn call, int flags, const char *key, size_t keylen, keyed_cb cb);

/* The same for a burn (DELETE): store_burn with digest, the delete token's digest (a
 * copy is kept while the request waits). */
void keyed_burn(h2o_req_t *req, const char *key, size_t keylen, const char *digest, keyed_cb cb);

/* The sealed metadata of an OK of take-use or preview, opened with the request's key;
 * 0 or -1. */
int keyed_open_meta(h2o_req_t *req, const keyed_op *op, const record_access *r, drop_meta *meta);

#endif
