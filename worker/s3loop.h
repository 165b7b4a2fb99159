/* s3loop.h - libcurl's multi interface driven by the worker's h2o event loop: curl's
 * sockets watched as h2o sockets, its timer as an h2o timeout. Requests to object
 * storage run here and never block the loop (DNS goes to libcurl's threaded resolver). */
#ifndef RZ_S3LOOP_H
#define RZ_S3LOOP_H

#include <curl/curl.h>
#include <h2o.h>

typedef struct s3loop s3loop;
/* A request ended: rc is libcurl's verdict (CURLE_OK: an answer came, whatever its
 * status). The handle is no longer in the loop; the callback owns it again. */
typedef void (*s3loop_done)(CURL *e, CURLcode rc, void *data);

s3loop *s3loop_new(h2o_loop_t *loop);
/* Requests still running are dropped without their callbacks. */
void s3loop_free(s3loop *l);
/* Run e; done(e, rc, data) when it ends. 0, or -1 (nothing started, no callback). */
int s3loop_add(s3loop *l, CURL *e, s3loop_done done, void *data);
/* Stop e without its callback; the caller still owns it. */
void s3loop_remove(s3loop *l, CURL *e);
/* Resume a transfer whose write callback paused it. */
void s3loop_unpause(s3loop *l, CURL *e);

#endif
