/* ratelimit.h - per-client rate limits, counted in the store so they hold across all
 * workers and nodes (fixed windows: one INCR script per check). */
#ifndef RZ_RATELIMIT_H
#define RZ_RATELIMIT_H

#include "cfg.h"
#include "store.h"

enum { RATE_OK, RATE_LIMITED, RATE_UNAVAILABLE, RATE_BUSY };

/* outcome is RATE_*; retry_after in seconds when limited. */
typedef void (*rate_cb)(void *data, int outcome, long retry_after);

/* Count one request of kind ("upload", "health") for client against rate. */
void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data);

/* The upload gate: UPLOAD_RATE_LIMIT plus at most MAX_UPLOADS_PER_CLIENT uploads in
 * progress (RATE_BUSY). After RATE_OK the caller must call ratelimit_upload_done. */
void ratelimit_upload(store *s, const cfg *c, const char *client, rate_cb cb, void *data);
/* Release the slot; done(data) runs once the store has it (or could not). */
void ratelimit_upload_done(store *s, const char *client, void (*done)(void *data), void *data);
/* The store key of a client's uploads in progress, for scripts that release it. */
int ratelimit_inflight_key(char *out, size_t cap, const char *client);

#endif
