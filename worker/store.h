/* store.h - the worker's metadata store (Valkey/Redis) client and its typed calls.
 *
 * Asynchronous, driven by the worker's own h2o event loop: calls never block, a lost
 * connection is retried with back-off, and while the store is down every call fails
 * at once (RECORD_UNAVAILABLE, or a count of -1) so requests answer 503. Each call is
 * one round trip (an unknown key's status: two); what it sends and how its reply reads
 * is record.h's. Every callback runs exactly once, possibly before the call returns
 * (when the store is known to be down); a pointer it is given lives only while it runs.
 *
 * Given a secret page, the client keeps the server secret there (store mode): it reads
 * the store's (offering a new one if it has none) on every connection before anything
 * else, and the store counts as down (every call fails at once) until it has it. It
 * clears the page when the connection goes, and reads the secret again when a call
 * comes back RECORD_STALE (the store was emptied or replaced under a live connection).
 *
 * With sentinels in the URL (store_url_sentinels), the store is the primary they name,
 * followed through a failover without a restart (store.c says how). */
#ifndef RZ_STORE_H
#define RZ_STORE_H

#include <h2o.h>
#include <stdint.h>

#include "record.h"
#include "secret.h"
#include "store_url.h"

typedef struct store store;

/* max_pending bounds the operations waiting for an answer: beyond it, a call that
 * starts a request's work (every call but store_create, store_gate_leave and store_renew, which
 * finish one) fails at once, as if the store were down. sec: the page the store's secret
 * is kept in, or NULL when the secret is pinned. */
store *store_new(h2o_loop_t *loop, const store_url *url, int timeout_ms, unsigned max_pending, secret *sec);
void store_free(store *s);
/* The store's secret, when it is read on the current connection; else NULL. */
const secret *store_secret(const store *s);
/* Usable now: connected, with the secret read when the client keeps it. */
int store_ready(const store *s);

/* Write the commands of this loop turn, all at once: called after every turn of the
 * loop. Commands wait for it; nothing else sends them. */
void store_flush(store *s);

/* Calls failed over max_pending since the last time this was asked. */
uint64_t store_take_shed(store *s);

typedef void (*store_access_cb)(const record_access *r, void *data);
typedef void (*store_outcome_cb)(record_outcome outcome, void *data);
typedef void (*store_count_cb)(long long count, void *data);
/* The gate's verdict; free_in_ms as record_read_gate gives it. */
typedef void (*store_gate_cb)(record_outcome outcome, long long free_in_ms, void *data);

/* The brute-force guard, then the keyed operation on id for client (now: unix
 * seconds); the outcomes are record_read_access's. They share one signature, so a
 * caller can be handed the one it is to run. */
typedef void (*store_access_fn)(store *s, const char *id, const char *client, const record_guard *g, int64_t now,
                                store_access_cb cb, void *data);
void store_take_use(store *s, const char *id, const char *client, const record_guard *g, int64_t now,
                    store_access_cb cb, void *data);
void store_preview(store *s, const char *id, const char *client, const record_guard *g, int64_t now, store_access_cb cb,
                   void *data);
/* A live key's status is read with plain commands (record_cmd_status_peek); the status
 * script runs, in a second round trip, only for a key they do not find. */
void store_status(store *s, const char *id, const char *client, const record_guard *g, int64_t now, store_access_cb cb,
                  void *data);

/* Burn id now if digest is its delete token's (record_cmd_burn); the outcomes are
 * record_read_access's for a burn. */
void store_burn(store *s, const char *id, const char *client, const record_guard *g, int64_t now, const char *digest,
                store_access_cb cb, void *data);

/* Record a new upload and give its client's upload slot back: RECORD_OK, RECORD_TAKEN
 * (the id is live: draw another key), RECORD_STALE (made under a secret the store no
 * longer has: nothing recorded, the slot still held) or RECORD_UNAVAILABLE. */
void store_create(store *s, const record_new *n, store_outcome_cb cb, void *data);
/* Object storage: reserve id for an upload (record.h): OK, TAKEN or UNAVAILABLE. */
void store_reserve(store *s, const char *id, const char *token, uint32_t ttl_ms, store_outcome_cb cb, void *data);
/* Give a reservation back (no answer: one left behind runs out). */
void store_release(store *s, const char *id, const char *token);

/* Count one request of kind for client in the fixed window of period_s holding now;
 * cb gets the window's count so far, or -1. */
void store_rate(store *s, const char *kind, const char *client, uint32_t period_s, int64_t now, store_count_cb cb,
                void *data);

/* The upload gate, asking for the slot named slot: RECORD_OK (the client now holds
 * it), RECORD_LIMITED, RECORD_BUSY or RECORD_UNAVAILABLE. */
void store_gate_enter(store *s, const char *client, const char *slot, const record_gate *g, int64_t now,
                      store_gate_cb cb, void *data);
/* Give a slot back; done (may be NULL) runs once the store has it, or could not. */
void store_gate_leave(store *s, const char *client, const char *slot, void (*done)(void *data), void *data);
/* Extend the leases of n (at most RECORD_RENEW_MAX) slots; nobody waits for it. */
void store_renew(store *s, const record_slot *slots, size_t n, uint32_t lease_ms);

#endif
