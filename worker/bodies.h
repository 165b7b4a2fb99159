/* bodies.h - the request bodies a worker holds (worker/bodies.c): how much each client
 * and the worker hold and the caps on both, the spill's cap, the bodies a client may
 * send at once, the HTTP/2 body deadline, clients lately answered 429, and each body
 * overwritten with zeros before libh2o lets it go. */
#ifndef RZ_BODIES_H
#define RZ_BODIES_H

#include <h2o.h>

struct worker;
typedef struct bodies bodies;

bodies *bodies_new(struct worker *w);
void bodies_free(bodies *b);

/* After every event-loop turn: account what is held and answer early (early.h) the
 * bodies still arriving that are over a cap or past their deadline, newest first. */
void bodies_check(bodies *b);

/* A request reaches the handlers, its body whole. It is watched until disposed, so
 * that its body is zeroed even if no answer is ever sent; a body from a client lately
 * answered 429 gets the same answer here (1), without a store round trip. 0: go on. */
int bodies_on_request(h2o_req_t *req);

/* The request's answer is decided: no handler reads its body any more. Overwrite the
 * body with zeros now (a spilled one is written back to its file, too). */
void bodies_release(h2o_req_t *req);

/* An HTTP/2 connection's input buffer spills like a body once a read outgrows
 * BODY_MEMORY_MAX, and keeps the DATA frames it has parsed until the connection
 * closes: overwrite all of it but the bytes not yet parsed. */
void bodies_scrub_input(h2o_socket_t *sock);

/* The client of req was answered 429 (detail, a string that outlives the call, and
 * Retry-After retry_after_s): its next bodies are refused at their head for that long
 * (at most a minute). */
void bodies_remember_limited(h2o_req_t *req, const char *detail, long retry_after_s);

#endif
