/* ratelimit.h - per-client rate limits, counted in the store so they hold across all
 * workers and nodes (fixed windows: one store call per check). */
#ifndef RZ_RATELIMIT_H
#define RZ_RATELIMIT_H

#include "cfg.h"
#include "store.h"

enum { RATE_OK, RATE_LIMITED, RATE_UNAVAILABLE, RATE_BUSY };

/* outcome is RATE_*; retry_after in seconds when limited. */
typedef void (*rate_cb)(void *data, int outcome, long retry_after);

/* Count one request of kind (e.g. "health") for client against rate. */
void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data);

/* The upload gate: UPLOAD_RATE_LIMIT plus at most MAX_UPLOADS_PER_CLIENT uploads in
 * progress (RATE_BUSY). After RATE_OK the caller must call ratelimit_upload_done. */
void ratelimit_upload(store *s, const cfg *c, const char *client, rate_cb cb, void *data);
/* Release the slot (done may be NULL); done(data) runs once the store has it (or
 * could not). Recording the upload (store_create) releases it too. */
void ratelimit_upload_done(store *s, const char *client, void (*done)(void *data), void *data);

#endif
