/* stream.h - HTTP/1 reading done by the worker itself (worker/stream.c), so that an
 * upload's body is sealed as it arrives instead of held whole first.
 *
 * libh2o 2.2.5 reads a socket until the kernel has nothing more, into a buffer that
 * doubles (and spills to a mapped file above BODY_MEMORY_MAX), and runs the handler
 * only once the body is whole. On these machines touching fresh pages costs more than
 * sealing them, and a loop turn that drains sixteen uploads' sockets stalls every other
 * request. So the worker reads its plain HTTP/1 connections itself: a request head in
 * small reads into libh2o's buffer, and the body of an upload (routes.h) in reads of a
 * buffer it keeps, each read handed to the upload (upload.c) and dropped. The request
 * reaches its handler when the body is in, with an empty entity; the handler takes the
 * upload that was fed (stream_take). Any other body, and every other protocol, is read
 * as libh2o reads it. */
#ifndef RZ_STREAM_H
#define RZ_STREAM_H

#include <h2o.h>

struct worker;
struct upload_op;

/* A connection just accepted: its reads are the worker's from now on. */
void stream_adopt(struct worker *w, h2o_socket_t *sock);

/* After every loop turn, for each open connection: a socket that libh2o gave back to
 * its own HTTP/1 reader after a request is taken again; one that went over to HTTP/2
 * is left to libh2o for good. */
void stream_settle(struct worker *w, h2o_socket_t *sock);

/* After every loop turn: the bodies of uploads whose head came in this turn are read
 * by the worker from now on; uploads that waited for room read on. */
void stream_check(struct worker *w);

/* The upload fed from req's body, now the caller's; NULL when the body was not read
 * this way. */
struct upload_op *stream_take(h2o_req_t *req);

/* Whether req's body is read this way (its bytes are sealed on disk as they come, not
 * held in memory or a spill file). */
int stream_holds(h2o_req_t *req);

/* On the way out: the worker's read buffer. */
void stream_buffer_free(struct worker *w);

#endif
