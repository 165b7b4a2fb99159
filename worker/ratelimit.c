/* ratelimit.c - fixed-window rate limits in the store (see ratelimit.h). */
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A pending check of rate for client in the current fixed window, whose store key
 * ("rate:KIND:CLIENT:WINDOW") goes to key; NULL (cb already told) when out of memory. */
static rate_op *rate_op_new(const cfg_rate *rate, const char *kind, const char *client, rate_cb cb, void *data,
                            char *key, size_t cap, size_t *keylen)
{
    rate_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        cb(data, RATE_UNAVAILABLE, 0);
        return NULL;
    }
    uint64_t now = util_now_ms() / 1000;
    op->cb = cb;
    op->data = data;
    op->limit = rate->count;
    op->retry_after = (long)(rate->period_s - now % rate->period_s);
    *keylen = (size_t)snprintf(key, cap, "rate:%s:%s:%llu", kind, client, (unsigned long long)(now / rate->period_s));
    return op;
}

void ratelimit_check(store *s, const char *kind, const char *client, const cfg_rate *rate, rate_cb cb, void *data)
{
    char key[160], period[16];
    const char *argv[2] = {key, period};
    size_t lens[2];
    rate_op *op = rate_op_new(rate, kind, client, cb, data, key, sizeof(key), &lens[0]);
    if (op == NULL)
        return;
    lens[1] = (size_t)snprintf(period, sizeof(period), "%u", rate->period_s);
    store_script(s, RECORD_SCRIPT_RATE, on_rate_reply, op, 1, 2, argv, lens);
}

static void on_gate_reply(redisReply *reply, void *p)
{
    rate_op *op = p;
    const char *verdict = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                                  reply->element[0]->type == REDIS_REPLY_STRING
                              ? reply->element[0]->str
                              : NULL;
    if (verdict == NULL)
        op->cb(op->data, RATE_UNAVAILABLE, 0);
    else if (strcmp(verdict, "rate") == 0)
        op->cb(op->data, RATE_LIMITED, op->retry_after);
    else if (strcmp(verdict, "busy") == 0)
        op->cb(op->data, RATE_BUSY, 1);
    else
        op->cb(op->data, RATE_OK, 0);
    free(op);
}

int ratelimit_inflight_key(char *out, size_t cap, const char *client)
{
    return snprintf(out, cap, "inflight:{%s}", client);
}

void ratelimit_upload(store *s, const cfg *c, const char *client, rate_cb cb, void *data)
{
    const cfg_rate *rate = &c->upload_rate_limit;
    char k_rate[160], k_busy[128], period[16], limit[16], max[16], ttl[16];
    const char *argv[6] = {k_rate, k_busy, period, limit, max, ttl};
    size_t lens[6];
    rate_op *op = rate_op_new(rate, "upload", client, cb, data, k_rate, sizeof(k_rate), &lens[0]);
    if (op == NULL)
        return;
    lens[1] = (size_t)ratelimit_inflight_key(k_busy, sizeof(k_busy), client);
    lens[2] = (size_t)snprintf(period, sizeof(period), "%u", rate->period_s);
    lens[3] = (size_t)snprintf(limit, sizeof(limit), "%u", rate->count);
    lens[4] = (size_t)snprintf(max, sizeof(max), "%u", c->max_uploads_per_client);
    lens[5] = (size_t)snprintf(ttl, sizeof(ttl), "%d", INFLIGHT_TTL_S);
    store_script(s, RECORD_SCRIPT_GATE_ENTER, on_gate_reply, op, 2, 6, argv, lens);
}

typedef struct {
    void (*done)(void *data);
    void *data;
} done_op;

static void on_done_reply(redisReply *reply, void *p)
{
    (void)reply;
    done_op *op = p;
    if (op != NULL) {
        op->done(op->data);
        free(op);
    }
}

void ratelimit_upload_done(store *s, const char *client, void (*done)(void *data), void *data)
{
    char key[128];
    done_op *op = NULL;
    if (done != NULL && (op = malloc(sizeof(*op))) == NULL) {
        done(data);
        done = NULL;
    }
    if (op != NULL)
        *op = (done_op){done, data};
    const char *argv[2] = {"DECR", key};
    size_t lens[2] = {4, (size_t)ratelimit_inflight_key(key, sizeof(key), client)};
    store_command(s, on_done_reply, op, 2, argv, lens);
}
