/* ratelimit.c - fixed-window rate limits in the store (see ratelimit.h); the windows
 * and the counting are record.c's, the verdicts and retry times are made here. */
#include "ratelimit.h"

#include <stdlib.h>

#include "util.h"

typedef struct {
    rate_cb cb;
    void *data;
    uint32_t limit;
    long retry_after;
} rate_op;

long ratelimit_window_left(const cfg_rate *rate, uint64_t now_s)
{
    /* Windows are aligned to the epoch: the one holding now_s ends at the next multiple
     * of the period. now_s is truncated, so this is never less than the time left. */
    return (long)(rate->period_s - now_s % rate->period_s);
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
    rate_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        cb(data, RATE_UNAVAILABLE, 0);
        return;
    }
    *op = (rate_op){cb, data, rate->count, ratelimit_window_left(rate, now)};
    store_rate(s, kind, client, rate->period_s, (int64_t)now, on_count, op);
}
