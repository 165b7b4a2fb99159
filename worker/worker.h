/* worker.h - one worker process: an h2o event loop on the shared listening sockets,
 * the handlers of the drop, and the state every handler reaches through its request. */
#ifndef RZ_WORKER_H
#define RZ_WORKER_H

#include <h2o.h>
#include <magic.h>
#include <stdint.h>

#include "crypt.h"
#include "gate.h"
#include "linger.h"
#include "objstore.h"
#include "offload.h"
#include "peers.h"
#include "sealed.h"
#include "bodies.h"
#include "proc.h"
#include "store.h"

typedef struct worker_conn worker_conn;

/* Buffers of four sealed segments (256 KiB): a download's chunks, an upload's writes.
 * Each fresh one is mapped by malloc and faults every page in, which on these machines
 * costs more than sealing or opening the bytes in it, so the worker keeps up to 64
 * (16 MiB) once their owners end, for the next ones: a download holds two. */
#define WORKER_CHUNK_LEN ((size_t)4 * (SEALED_SEGMENT_SIZE + CRYPT_TAG_LEN))
#define WORKER_CHUNKS_KEPT 64

typedef struct worker {
    const proc_env *env;
    const cfg *cfg;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    /* METRICS_LISTEN's connections: the same host, reached through an array of its own,
     * so a request can tell which listener it came in on (worker_routes_served). */
    h2o_accept_ctx_t metrics_accept_ctx;
    h2o_hostconf_t *metrics_hosts[2];
    h2o_socket_t *listeners[2 * CFG_LISTEN_MAX];
    size_t nlisten;
    int accept_paused;          /* the listeners left to the other workers (worker.c) */
    store *store;
    gate *gate;
    offload *offload;
    int unnamed_temp;     /* uploads' temp files made with O_TMPFILE (upload.c) */
    objstore *objstore;   /* STORAGE_URL's; NULL: files live in STORAGE_PATH */
    secret *store_secret;  /* store mode: the page the store client keeps the secret in */
    bodies *bodies;       /* the request bodies held, and their caps */
    magic_t magic;
    crypt_hmac *hmac;      /* ids and keys (HMAC, HKDF) of keyed requests and uploads */
    uint8_t rid_pool[512]; /* random bytes for request ids, drawn 16 at a time */
    size_t rid_left;
    h2o_timeout_t slice_timeout; /* 1 ms: work cut into slices resumes on a later loop turn */
    /* Upload body bytes the loop may still hash and seal at slice_at (the loop's clock,
     * which moves once a turn): shared by every upload, so sixteen at once cost a turn
     * no more than one does. */
    size_t slice_left;
    uint64_t slice_at;
    h2o_timeout_t stall_timeout; /* BODY_TIMEOUT: a download making no progress is cut */
    uint8_t *chunks[WORKER_CHUNKS_KEPT]; /* WORKER_CHUNK_LEN buffers kept for the next owners */
    size_t nchunks;
    h2o_timeout_t budget_timeout; /* KEYED_BUDGET_DELAY_MS: keyed requests wait it while ... */
    uint64_t budget_spent_until_ms; /* ... the failure budget is spent, until then (wall clock) */
    h2o_timeout_t retry_timeout; /* 1 s: work waiting on what it cannot be told of looks again */
    /* HTTP/1 reading (stream.h): libh2o's reader we put ours in front of, the uploads
     * whose bodies are read as they arrive, and the buffer each read lands in. */
    h2o_socket_cb http1_read;
    struct stream_rec *streams;
    uint8_t *stream_buf;
    worker_conn *conns;   /* open client connections */
    size_t nconns;
    peers peers;          /* the same, counted per client (MAX_CONNECTIONS_PER_CLIENT) */
    size_t active_reqs;   /* requests inside a handler or streaming a response */
    linger_set linger;    /* closed connections whose answers the kernel still sends */
    int draining;
    int flushing;         /* drained: waiting until the clients have every byte */
    uint64_t drain_deadline_ms;
    uint64_t last_activity_ms;
    uint64_t shed;             /* connections closed over MAX_CONNECTIONS, not yet logged */
    uint64_t cut_off;          /* connections closed mid-request, not yet logged */
    uint64_t over_client;      /* connections closed over MAX_CONNECTIONS_PER_CLIENT, not yet logged */
    uint64_t head_late;        /* connections closed at HEAD_TIMEOUT, not yet logged */
    uint64_t reset_floods;     /* HTTP/2 connections told GOAWAY for resetting streams, not yet logged */
    uint64_t store_shed;       /* requests answered 503 over STORE_MAX_PENDING, not yet logged */
    uint64_t floods_logged_ms;
    uint64_t bounds_logged_ms;
    uint64_t housekeeping_ms;
} worker;

/* The worker process (the master's fork calls it); returns its exit code. */
int worker_main(const proc_env *env);

/* The server secret a request may derive from now: the pinned one, or the store's once
 * it is read on the store's current connection; NULL meanwhile (answer 503). A request
 * that spans store calls checks that it is still the one it began under (store_fp). */
const secret *worker_secret(const worker *w);

/* Which rows of the route table (ROUTES_* of routes.h) the listener a request came in
 * on serves: everything without METRICS_LISTEN; with it, /metrics only on its own
 * sockets and everything else only on LISTEN's. */
unsigned worker_routes_served(h2o_req_t *req);

/* The worker serving a request: its h2o context is embedded in the worker. */
static inline worker *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(worker, ctx, req->conn->ctx);
}

/* A reference to a request that outlives it: cleared when the request's pool dies
 * (client gone), so a late store reply can tell. Release before freeing the owner. */
typedef struct {
    h2o_req_t *req;
    void **slot;
} req_ref;
void req_ref_init(req_ref *r, h2o_req_t *req);
void req_ref_release(req_ref *r);

/* Handlers the route table names (worker/routes.c); each lives in health.c, upload.c,
 * download.c or lookup.c. name and key are the path's tail, percent-decoded. */
int health_handle(h2o_req_t *req);
int upload_handle(h2o_req_t *req);
int put_handle(h2o_req_t *req, const char *name, size_t len);
/* An upload fed from its body as it arrives (stream.h): begun once the head is in (put:
 * a PUT, else a POST; NULL: let the body arrive whole), told how much it takes now
 * (0: wait), fed, ended once the body is in. Gone: the request went before its handler
 * took the upload (stream_take). */
struct upload_op *upload_stream_begin(h2o_req_t *req, int put);
size_t upload_stream_room(struct upload_op *op);
void upload_stream_data(struct upload_op *op, const uint8_t *p, size_t n);
void upload_stream_end(struct upload_op *op);
void upload_stream_gone(struct upload_op *op);
int download_handle(h2o_req_t *req, const char *key, size_t keylen);
/* A WORKER_CHUNK_LEN buffer: a kept one, else a new one (NULL when memory is short). */
uint8_t *worker_chunk_take(worker *w);
/* Done with it: wiped first when it held plaintext, then kept if there is room. */
void worker_chunk_give(worker *w, uint8_t *buf, int plaintext);
int burn_handle(h2o_req_t *req, const char *key, size_t keylen);
int preview_handle(h2o_req_t *req, const char *key, size_t keylen);
int status_handle(h2o_req_t *req, const char *key, size_t keylen);

#endif
