/* ratelimit.h - per-client rate limits, counted in the store so they hold across all
 * workers and nodes (fixed windows: one store call per check). */
#ifndef RZ_RATELIMIT_H
#define RZ_RATELIMIT_H

#include "cfg.h"
#include "store.h"

enum { RATE_OK, RATE_LIMITED, RATE_UNAVAILABLE, RATE_BUSY };

/* outcome is RATE_*; retry_after in seconds when limited or busy. */
typedef void (*rate_cb)(void *data, int outcome, long retry_after);

/* Count one request of kind (e.g. "health") for client against rate. */
void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data);

/* Whole seconds from now_s (unix seconds) until rate's window holding it ends, rounded
 * up: a client refused in this window is served again after that long. */
long ratelimit_window_left(const cfg_rate *rate, uint64_t now_s);

#endif
