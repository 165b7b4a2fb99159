/* ratelimit.c - fixed-window rate limits in the store (see ratelimit.h); the windows
 * and the counting are record.c's, the verdicts and retry times are made here. */
#include "ratelimit.h"

#include <stdlib.h>

#include "util.h"

/* A crashed worker cannot release its uploads in progress; this bounds the damage.
 * The counter is processing-time only (libh2o has the whole body before we count),
 * so minutes are plenty; a worker killed mid-upload then costs its client a slot for
 * at most this long. */
#define INFLIGHT_TTL_S 600

typedef struct {
    rate_cb cb;
    void *data;
    uint32_t limit;
    long retry_after;
} rate_op;

/* A pending check of rate for client in the fixed window holding now; NULL (cb
 * already told) when out of memory. */
static rate_op *rate_op_new(const cfg_rate *rate, uint64_t now, rate_cb cb, void *data)
{
    rate_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        cb(data, RATE_UNAVAILABLE, 0);
        return NULL;
    }
    op->cb = cb;
    op->data = data;
    op->limit = rate->count;
    op->retry_after = (long)(rate->period_s - now % rate->period_s);
    return op;
}

static void on_count(long long count, void *p)
{
    rate_op *op = p;
    if (count < 0)
        op->cb(op->data, RATE_UNAVAILABLE, 0);
    else if (count > (long long)op->limit)
        op->cb(op->data, RATE_LIMITED, op->retry_after);
    else
        op->cb(op->data, RATE_OK, 0);
    free(op);
}

void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data)
{
    uint64_t now = util_now_ms() / 1000;
    rate_op *op = rate_op_new(rate, now, cb, data);
    if (op != NULL)
        store_rate(s, kind, client, rate->period_s, (int64_t)now, on_count, op);
}

static void on_gate(record_outcome outcome, void *p)
{
    rate_op *op = p;
    if (outcome == RECORD_LIMITED)
        op->cb(op->data, RATE_LIMITED, op->retry_after);
    else if (outcome == RECORD_BUSY)
        op->cb(op->data, RATE_BUSY, 1);
    else
        op->cb(op->data, outcome == RECORD_OK ? RATE_OK : RATE_UNAVAILABLE, 0);
    free(op);
}

void ratelimit_upload(store *s, const cfg *c, const char *client, rate_cb cb, void *data)
{
    const cfg_rate *rate = &c->upload_rate_limit;
    const record_gate gate = {rate->count, rate->period_s, c->max_uploads_per_client, INFLIGHT_TTL_S};
    uint64_t now = util_now_ms() / 1000;
    rate_op *op = rate_op_new(rate, now, cb, data);
    if (op != NULL)
        store_gate_enter(s, client, &gate, (int64_t)now, on_gate, op);
}

void ratelimit_upload_done(store *s, const char *client, void (*done)(void *data), void *data)
{
    store_gate_leave(s, client, done, data);
}
