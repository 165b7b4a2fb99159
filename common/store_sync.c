/* store_sync.c - the blocking store client (see store_sync.h): connecting with
 * timeouts (to the primary the sentinels name, when there are sentinels), sending
 * record_cmd commands, and the shredder's typed calls. */
#include "store_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store_sync {
    redisContext *c;
    char err[256];
};

static int setup(store_sync *ss, const store_url *u)
{
    redisReply *r = NULL;
    if (u->password[0]) {
        r = u->user[0] ? redisCommand(ss->c, "AUTH %s %s", u->user, u->password)
                       : redisCommand(ss->c, "AUTH %s", u->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    if (u->db != 0) {
        r = redisCommand(ss->c, "SELECT %d", u->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    return 0;
fail:
    snprintf(ss->err, sizeof(ss->err), "%s", r != NULL ? r->str : ss->c->errstr);
    if (r != NULL)
        freeReplyObject(r);
    return -1;
}

/* One reply to cmd on c, NULL when there is none or it is an error. */
static redisReply *ask(redisContext *c, const record_cmd *cmd)
{
    redisReply *r = redisCommandArgv(c, cmd->argc, (const char **)cmd->argv, cmd->len);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* The primary, as the first sentinel that answers names it: 0, or -1 with err. */
static int find_primary(const store_url *u, struct timeval tv, store_url_host *primary, char *err, size_t errlen)
{
    record_cmd cmd;
    snprintf(err, errlen, "no sentinel answered for master %s", u->master);
    if (record_cmd_sentinel_primary(&cmd, u->master) != 0)
        return -1;
    for (size_t i = 0; i < u->nsentinels; i++) {
        redisContext *c = redisConnectWithTimeout(u->sentinels[i].host, u->sentinels[i].port, tv);
        redisReply *r = NULL;
        if (c != NULL && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
            if (u->sentinel_password[0])
                r = redisCommand(c, "AUTH %s", u->sentinel_password);
            if (!u->sentinel_password[0] || (r != NULL && r->type != REDIS_REPLY_ERROR)) {
                freeReplyObject(r);
                r = ask(c, &cmd);
            }
        }
        int found = r != NULL && record_read_sentinel_primary(r, primary) == 0;
        freeReplyObject(r);
        redisFree(c);
        if (found)
            return 0;
    }
    return -1;
}

store_sync *store_sync_connect(const store_url *u, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    store_url_host at = {.port = u->port};
    snprintf(at.host, sizeof(at.host), "%s", u->host);
    if (u->nsentinels > 0 && find_primary(u, tv, &at, err, errlen) != 0)
        return NULL;
    store_sync *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ss->c = u->unix_path[0] ? redisConnectUnixWithTimeout(u->unix_path, tv) : redisConnectWithTimeout(at.host, at.port, tv);
    if (ss->c == NULL || ss->c->err) {
        snprintf(err, errlen, "%s", ss->c != NULL ? ss->c->errstr : "out of memory");
        store_sync_free(ss);
        return NULL;
    }
    redisSetTimeout(ss->c, tv);
    if (setup(ss, u) != 0) {
        snprintf(err, errlen, "%s", ss->err);
        store_sync_free(ss);
        return NULL;
    }
    if (u->nsentinels > 0) {
        /* Between a failover and the sentinels' news of it, the address they give may
         * be a replica by now: writing there would fail, or worse, be thrown away. */
        record_cmd cmd;
        redisReply *r = record_cmd_role(&cmd) == 0 ? ask(ss->c, &cmd) : NULL;
        int primary = record_read_role(r) >= 0;
        freeReplyObject(r);
        if (!primary) {
            snprintf(err, errlen, "the store the sentinels name is not a primary (yet)");
            store_sync_free(ss);
            return NULL;
        }
    }
    return ss;
}

void store_sync_free(store_sync *ss)
{
    if (ss == NULL)
        return;
    if (ss->c != NULL)
        redisFree(ss->c);
    free(ss);
}

const char *store_sync_error(const store_sync *ss)
{
    return ss->err;
}

/* Queue cmd on the connection: a script as EVAL body numkeys args. */
static int append(store_sync *ss, const record_cmd *cmd)
{
    const char *argv[RECORD_ARGS_MAX + 3];
    size_t lens[RECORD_ARGS_MAX + 3];
    char nkeys[16];
    int n = 0;
    if (cmd->script >= 0) {
        argv[n] = "EVAL";
        lens[n++] = 4;
        argv[n] = record_scripts[cmd->script];
        lens[n] = strlen(argv[n]);
        n++;
        lens[n] = (size_t)snprintf(nkeys, sizeof(nkeys), "%d", cmd->nkeys);
        argv[n++] = nkeys;
    }
    memcpy(argv + n, cmd->argv, (size_t)cmd->argc * sizeof(argv[0]));
    memcpy(lens + n, cmd->len, (size_t)cmd->argc * sizeof(lens[0]));
    if (redisAppendCommandArgv(ss->c, n + cmd->argc, argv, lens) != REDIS_OK) {
        snprintf(ss->err, sizeof(ss->err), "%s", ss->c->errstr);
        return -1;
    }
    return 0;
}

/* The next reply; NULL (and err set) when there is none. */
static redisReply *next_reply(store_sync *ss)
{
    redisReply *r = NULL;
    if (redisGetReply(ss->c, (void **)&r) != REDIS_OK || r == NULL) {
        snprintf(ss->err, sizeof(ss->err), "%s", ss->c->errstr[0] ? ss->c->errstr : "no reply");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Send built (the builder's result) and wait for the reply; an error reply is a
 * failure too. */
static redisReply *call(store_sync *ss, int built, const record_cmd *cmd)
{
    if (built != 0) {
        snprintf(ss->err, sizeof(ss->err), "command too long");
        return NULL;
    }
    redisReply *r = append(ss, cmd) == 0 ? next_reply(ss) : NULL;
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        snprintf(ss->err, sizeof(ss->err), "%s", r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

int store_sync_due(store_sync *ss, double due, unsigned skip, unsigned max, record_due *out)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_due(&cmd, due, skip, max), &cmd);
    if (r == NULL)
        return -1;
    record_read_due(r, out);
    return 0;
}

int store_sync_expiry(store_sync *ss, const char *id, double *expiry)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_expiry(&cmd, id), &cmd);
    if (r == NULL)
        return -1;
    *expiry = record_read_expiry(r);
    freeReplyObject(r);
    return 0;
}

int store_sync_remove_if_due(store_sync *ss, const char *member, size_t len, double due)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_remove_if_due(&cmd, member, len, due), &cmd);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* An error reply here (say, a key of another type) is one record not understood,
 * not a store failure: that file is kept and the sweep goes on. */
int store_sync_lookup(store_sync *ss, const char *const *ids, size_t n, record_outcome *out)
{
    for (size_t i = 0; i < n; i++) {
        record_cmd cmd;
        if (record_cmd_lookup(&cmd, ids[i]) != 0) {
            snprintf(ss->err, sizeof(ss->err), "command too long");
            return -1;
        }
        if (append(ss, &cmd) != 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = next_reply(ss);
        if (r == NULL)
            return -1;
        out[i] = record_read_lookup(r);
        freeReplyObject(r);
    }
    return 0;
}

int store_sync_reserve(store_sync *ss, const char *id, const char *token, uint32_t ttl_ms, record_outcome *out)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_reserve(&cmd, id, token, ttl_ms, RECORD_RESERVE_DELETE, (int64_t)time(NULL)), &cmd);
    if (r == NULL)
        return -1;
    *out = record_read_reserve(r);
    freeReplyObject(r);
    return 0;
}

int store_sync_release(store_sync *ss, const char *id, const char *token)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_release(&cmd, id, token), &cmd);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

int store_sync_lease(store_sync *ss, const char *scope, const char *holder, uint32_t ms, int *held)
{
    record_cmd cmd;
    redisReply *r = call(ss, record_cmd_lease(&cmd, scope, holder, ms), &cmd);
    if (r == NULL)
        return -1;
    int v = record_read_lease(r);
    freeReplyObject(r);
    if (v < 0) {
        snprintf(ss->err, sizeof(ss->err), "lease reply not understood");
        return -1;
    }
    *held = v;
    return 0;
}
