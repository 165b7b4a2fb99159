/* ratelimit.c - fixed-window rate limits in the store (see ratelimit.h). */
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    rate_cb cb;
    void *data;
    uint32_t limit;
    long retry_after;
} rate_op;

static void on_rate_reply(redisReply *reply, void *p)
{
    rate_op *op = p;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        op->cb(op->data, RATE_UNAVAILABLE, 0);
    else if (reply->integer > (long long)op->limit)
        op->cb(op->data, RATE_LIMITED, op->retry_after);
    else
        op->cb(op->data, RATE_OK, 0);
    free(op);
}

void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data)
{
    rate_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        cb(data, RATE_UNAVAILABLE, 0);
        return;
    }
    uint64_t now = util_now_ms() / 1000;
    uint64_t window = now / rate->period_s;
    char key[160], period[16];
    op->cb = cb;
    op->data = data;
    op->limit = rate->count;
    op->retry_after = (long)(rate->period_s - now % rate->period_s);
    const char *argv[2] = {key, period};
    size_t lens[2];
    lens[0] = (size_t)snprintf(key, sizeof(key), "rate:%s:%s:%llu", kind, client, (unsigned long long)window);
    lens[1] = (size_t)snprintf(period, sizeof(period), "%u", rate->period_s);
    store_script(s, SCRIPT_RATE, on_rate_reply, op, 1, 2, argv, lens);
}
