/* early.h - answering a request before libh2o 2.2.5 hands it to a handler (its body
 * still arriving), and closing an HTTP/2 connection that floods us with streams it
 * resets (worker/early.c). */
#ifndef RZ_EARLY_H
#define RZ_EARLY_H

#include <h2o.h>

/* Call cb for every request of every connection of ctx, HTTP/1 and HTTP/2, including
 * those whose body is still arriving (libh2o has not handed them over yet). cb must
 * not end any request. */
void early_foreach(h2o_context_t *ctx, void (*cb)(h2o_req_t *req, void *data), void *data);

/* What libh2o holds of a request's body. */
typedef struct {
    h2o_buffer_t *buf; /* the buffer it is in (an HTTP/1 connection's input, an HTTP/2
                        * stream's body buffer), NULL when there is none */
    size_t held;       /* bytes buffered (for HTTP/1, the request head included) */
    size_t declared;   /* the length announced (Content-Length), SIZE_MAX if none */
    int arriving;      /* still arriving: may be answered early */
    int streamed;      /* read by the worker and sealed as it comes (stream.h): it never
                        * spills, and what it holds is on disk, sealed */
    uint32_t stream;   /* the HTTP/2 stream id, 0 for HTTP/1 */
} early_body;

/* 0 with *out filled when req carries a body, -1 when it has none. */
int early_body_of(h2o_req_t *req, early_body *out);

/* Answer such a request with status and {"detail": detail} (with Retry-After when
 * retry_after_s > 0), log it, and end it: an HTTP/2 stream is closed, an HTTP/1
 * connection shut down. req must not be used afterwards. */
void early_answer(h2o_req_t *req, int status, const char *detail, long retry_after_s);

/* Tell req's HTTP/2 connection GOAWAY (ENHANCE_YOUR_CALM): it takes no new stream and
 * closes once the streams in progress are done. 0, or -1 when req is not on an open
 * HTTP/2 connection. Safe inside libh2o's callbacks, a request's dispose included. */
int early_goaway(h2o_req_t *req);

#endif
