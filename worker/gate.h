/* gate.h - the upload gate: UPLOAD_RATE_LIMIT, and at most MAX_UPLOADS_PER_CLIENT
 * uploads in progress per client, counted in the store so both hold across workers
 * and nodes. One store round trip to enter, one to leave.
 *
 * An upload in progress holds a slot: a name in its client's set in the store, leased
 * for GATE_LEASE_MS. The gate renews every slot this worker holds in one command a
 * second, so a slot lives exactly as long as its upload, give or take the lease: given
 * back when the upload ends, and gone within the lease when its worker is killed or
 * its node vanishes, whatever stopped it. */
#ifndef RZ_GATE_H
#define RZ_GATE_H

#include <h2o.h>

#include "cfg.h"
#include "ratelimit.h"
#include "store.h"

#define GATE_LEASE_MS 5000
#define GATE_RENEW_MS 1000 /* a loop stalled for the lease less this loses its slots */

typedef struct gate gate;
typedef struct gate_slot gate_slot;

gate *gate_new(h2o_loop_t *loop, store *s);
/* Slots still held are dropped (their leases run out in the store). */
void gate_free(gate *g);

/* Enter the gate for client. cb(data, outcome, retry_after) runs exactly once (at once
 * when the store is down), after *slot is set: on RATE_OK the client's new slot, held
 * until gate_leave or gate_recorded; else NULL. retry_after (s) on RATE_LIMITED is what
 * is left of the rate window; on RATE_BUSY, how long until the client's earliest slot
 * runs out of lease should its upload not end first (1 to the lease). */
void gate_enter(gate *g, const cfg *c, const char *client, gate_slot **slot, rate_cb cb, void *data);
/* Give the slot back and forget it; done (may be NULL) runs once the store has it back,
 * or could not take it (the lease then frees it). Giving back twice is harmless in the
 * store, so a reply lost after the slot went with a record costs nothing. */
void gate_leave(gate *g, gate_slot *slot, void (*done)(void *data), void *data);
/* The slot's name, for store_create, which gives the slot back with the record. */
const char *gate_slot_name(const gate_slot *slot);
/* The store has given the slot back with the upload's record: forget it. */
void gate_recorded(gate *g, gate_slot *slot);

#endif
