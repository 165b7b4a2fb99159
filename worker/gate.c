/* gate.c - the upload gate (see gate.h): slots taken and given back through the store,
 * the list of slots this worker holds, and their renewal, one batch a second. */
#include "gate.h"

#include <stdio.h>
#include <stdlib.h>

#include "crypt.h"
#include "http.h"
#include "util.h"

#define SLOT_NAME_BYTES 8

struct gate_slot {
    char client[HTTP_ADDR_MAX];
    char name[2 * SLOT_NAME_BYTES + 1];
    gate_slot *prev, *next;
};

struct gate {
    h2o_loop_t *loop;
    store *store;
    gate_slot *held; /* slots asked for or taken, not yet given back */
    h2o_timeout_t renew_timeout;
    h2o_timeout_entry_t renew;
};

typedef struct {
    gate *g;
    gate_slot *slot;
    gate_slot **out;
    rate_cb cb;
    void *data;
    long window_left;
} enter_op;

/* ---- the slots held ---- */

static void hold(gate *g, gate_slot *s)
{
    s->prev = NULL;
    s->next = g->held;
    if (g->held != NULL)
        g->held->prev = s;
    g->held = s;
}

static void release(gate *g, gate_slot *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        g->held = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    free(s);
}

/* Every slot held, RECORD_RENEW_MAX to a command. A slot asked for but not yet granted
 * is renewed too: the store ignores names it does not hold. */
static void on_renew(h2o_timeout_entry_t *entry)
{
    gate *g = H2O_STRUCT_FROM_MEMBER(gate, renew, entry);
    record_slot batch[RECORD_RENEW_MAX];
    size_t n = 0;
    for (gate_slot *s = g->held; s != NULL; s = s->next) {
        batch[n++] = (record_slot){s->client, s->name};
        if (n == RECORD_RENEW_MAX || s->next == NULL) {
            store_renew(g->store, batch, n, GATE_LEASE_MS);
            n = 0;
        }
    }
    h2o_timeout_link(g->loop, &g->renew_timeout, &g->renew);
}

gate *gate_new(h2o_loop_t *loop, store *s)
{
    gate *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->loop = loop;
    g->store = s;
    h2o_timeout_init(loop, &g->renew_timeout, GATE_RENEW_MS);
    g->renew.cb = on_renew;
    h2o_timeout_link(loop, &g->renew_timeout, &g->renew);
    return g;
}

void gate_free(gate *g)
{
    if (g == NULL)
        return;
    if (h2o_timeout_is_linked(&g->renew))
        h2o_timeout_unlink(&g->renew);
    h2o_timeout_dispose(g->loop, &g->renew_timeout);
    while (g->held != NULL)
        release(g, g->held);
    free(g);
}

/* ---- entering and leaving ---- */

static void on_gate(record_outcome outcome, long long free_in_ms, void *p)
{
    enter_op *op = p;
    int verdict = outcome == RECORD_OK        ? RATE_OK
                  : outcome == RECORD_LIMITED ? RATE_LIMITED
                  : outcome == RECORD_BUSY    ? RATE_BUSY
                                              : RATE_UNAVAILABLE;
    long retry_after = 0;
    if (verdict == RATE_LIMITED)
        retry_after = op->window_left;
    else if (verdict == RATE_BUSY)
        retry_after = free_in_ms <= 1000            ? 1
                      : free_in_ms >= GATE_LEASE_MS ? GATE_LEASE_MS / 1000
                                                    : (long)((free_in_ms + 999) / 1000);
    if (verdict == RATE_OK) {
        *op->out = op->slot;
    } else {
        *op->out = NULL;
        release(op->g, op->slot);
    }
    op->cb(op->data, verdict, retry_after);
    free(op);
}

void gate_enter(gate *g, const cfg *c, const char *client, gate_slot **slot, rate_cb cb, void *data)
{
    const cfg_rate *rate = &c->upload_rate_limit;
    const record_gate rg = {rate->count, rate->period_s, c->max_uploads_per_client, GATE_LEASE_MS};
    uint64_t now = util_now_ms() / 1000;
    uint8_t name[SLOT_NAME_BYTES];
    enter_op *op = malloc(sizeof(*op));
    gate_slot *s = calloc(1, sizeof(*s));
    if (op == NULL || s == NULL || crypt_random(name, sizeof(name)) != 0) {
        free(op);
        free(s);
        *slot = NULL;
        cb(data, RATE_UNAVAILABLE, 0);
        return;
    }
    snprintf(s->client, sizeof(s->client), "%s", client);
    crypt_hex(name, sizeof(name), s->name);
    hold(g, s);
    *op = (enter_op){g, s, slot, cb, data, ratelimit_window_left(rate, now)};
    store_gate_enter(g->store, s->client, s->name, &rg, (int64_t)now, on_gate, op);
}

void gate_leave(gate *g, gate_slot *slot, void (*done)(void *data), void *data)
{
    store_gate_leave(g->store, slot->client, slot->name, done, data);
    release(g, slot);
}

const char *gate_slot_name(const gate_slot *slot)
{
    return slot->name;
}

void gate_recorded(gate *g, gate_slot *slot)
{
    release(g, slot);
}
