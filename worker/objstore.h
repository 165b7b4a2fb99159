/* objstore.h - a worker's object storage (STORAGE_URL): the sealed file written as an
 * object and read back as a stream, on the worker's event loop (s3loop.h), and whether
 * the storage answers at all (a probe every OBJSTORE_PROBE_MS, and every request).
 *
 * Writing: the sealed writer's sink keeps what it is given in a buffer; every
 * S3_PART_SIZE bytes become one part of a multipart upload, sent while the next is
 * filled. A writer checks objstore_put_full before writing more and waits for its wake
 * callback, so an upload holds two parts at most. A file no larger than one part goes
 * as a single PUT. Whatever fails, objstore_put_discard leaves nothing behind.
 *
 * Reading: one GET of the whole object, streamed into a bounded buffer; libcurl is
 * paused while the buffer is full and resumed as the client takes the bytes. */
#ifndef RZ_OBJSTORE_H
#define RZ_OBJSTORE_H

#include <h2o.h>
#include <stdint.h>

#include "s3.h"
#include "s3loop.h"
#include "sealed.h"

#define OBJSTORE_PROBE_MS 2000
#define OBJSTORE_ANSWER_MS 10000 /* a GET whose answer has not begun by then fails */

typedef struct objstore objstore;

/* NULL with err when the settings or libcurl fail. */
objstore *objstore_new(h2o_loop_t *loop, const cfg *c, char *err, size_t errlen);
void objstore_free(objstore *o);
/* Did the storage answer its last request or probe? */
int objstore_online(const objstore *o);

/* ---- writing ---- */

typedef struct objstore_put objstore_put;
/* wake(data): an objstore_put_full put can take more now, or it failed. */
objstore_put *objstore_put_new(objstore *o, const char *id, void (*wake)(void *data), void *data);
sealed_sink *objstore_put_sink(objstore_put *p);
int objstore_put_full(const objstore_put *p);
int objstore_put_failed(const objstore_put *p);
/* Everything is written: send the rest and make it the object. done(ok, data). */
void objstore_put_finish(objstore_put *p, void (*done)(int ok, void *data));
/* Remove whatever was written (the object or the multipart upload) and free p; then
 * (data) runs once the storage has answered (or failed to). */
void objstore_put_discard(objstore_put *p, void (*then)(void *data), void *data);
/* The object is recorded: just free p. */
void objstore_put_free(objstore_put *p);

/* ---- reading ---- */

typedef struct objstore_get objstore_get;
/* GET id's object, buffering up to cap bytes. notify(data) runs on a later loop turn
 * whenever the state below changes (an answer, bytes, the end, a failure). */
objstore_get *objstore_get_new(objstore *o, const char *id, size_t cap, void (*notify)(void *data), void *data);
void objstore_get_free(objstore_get *g);
/* Notices go to notify(data) from now on (NULL: nowhere). */
void objstore_get_notify(objstore_get *g, void (*notify)(void *data), void *data);
/* 0 until an answer came: then its HTTP status; -1 when the storage was unreachable or
 * the transfer broke. */
int objstore_get_status(const objstore_get *g);
/* The object's length, once the status is 200. */
uint64_t objstore_get_length(const objstore_get *g);
/* Bytes from offset objstore_get_offset held now; all of the object has come when
 * offset + avail == length. */
size_t objstore_get_avail(const objstore_get *g);
uint64_t objstore_get_offset(const objstore_get *g);
/* The sealed header at the object's start, while it is held: 0, or -1. */
int objstore_get_peek_header(const objstore_get *g, sealed_header *h);
/* Make room to hold at least bytes (a header may ask for segments larger than ours). */
int objstore_get_room(objstore_get *g, size_t bytes);
/* A source reading the object through g: a read must ask for held bytes, and takes
 * everything before its end out of the buffer (the reader reads forward only). */
void objstore_get_source(objstore_get *g, sealed_source *src);

#endif
