/* store_sync.h - the blocking store client (the shredder's): one connection with
 * timeouts, and typed calls on the expiry index and the orphan sweep's look-up.
 * Scripts go as EVAL with their body, so nothing has to be loaded first. */
#ifndef RZ_STORE_SYNC_H
#define RZ_STORE_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "store_url.h"

typedef struct store_sync store_sync;

/* Connected, authenticated and on the URL's db; NULL with err. With sentinels, to
 * the primary the first of them to answer names, checked to be a primary. */
store_sync *store_sync_connect(const store_url *url, int timeout_ms, char *err, size_t errlen);
void store_sync_free(store_sync *ss);

/* Every call below returns 0, or -1 when the store failed (no reply, an error reply,
 * a timeout): store_sync_error says why, and the connection is then of no more use. */
const char *store_sync_error(const store_sync *ss);

/* Members of the expiry index due by due (unix seconds), after the first skip, at
 * most max; out is released with record_due_free. */
int store_sync_due(store_sync *ss, double due, unsigned skip, unsigned max, record_due *out);
/* The expiry the index holds for id now, or -1 when it holds none. */
int store_sync_expiry(store_sync *ss, const char *id, double *expiry);
/* Remove member from the index unless a new upload put it back with a later expiry. */
int store_sync_remove_if_due(store_sync *ss, const char *member, size_t len, double due);
/* Look n ids up in one round trip: out[i] is RECORD_OK (live), RECORD_BURNED,
 * RECORD_UNKNOWN (no record) or RECORD_UNAVAILABLE (a reply not understood). */
int store_sync_lookup(store_sync *ss, const char *const *ids, size_t n, record_outcome *out);
/* Take or renew the sweep lease over scope for ms as holder (record_cmd_lease); *held
 * says whether holder has it now. ms 0 gives it back. */
int store_sync_lease(store_sync *ss, const char *scope, const char *holder, uint32_t ms, int *held);

/* Object storage: reserve id to delete its object (record.h, RECORD_RESERVE_DELETE):
 * *out RECORD_OK (held now) or RECORD_TAKEN (a live record or an upload holds it). */
int store_sync_reserve(store_sync *ss, const char *id, const char *token, uint32_t ttl_ms, record_outcome *out);
int store_sync_release(store_sync *ss, const char *id, const char *token);

#endif
