/* record.c - the store's record layout (see record.h): key names, the atomic scripts,
 * their arguments, and readers that turn their replies into typed structs.
 *
 * Keys ("{...}" is a cluster hash tag: an upload's or a client's keys share a slot):
 *   upload:{id}     hash, TTL = expiry: u (uses left), m (uses at upload), p (previewed),
 *                   c (created), e (expiry), s (size), salt (hex), meta (sealed name,
 *                   type and sha256), b (burned), d (SHA-256 of the delete token, hex).
 *                   After the last use or a burn salt and meta go and b = 1: a
 *                   tombstone until the expiry, so status can say burned.
 *   expiries        sorted set, id by expiry (unix s): the shredder's index.
 *   fail:{client}   unknown keys asked for, remembered fail_memory_s;
 *   block:{client}  set when they reach fail_limit, for block_s.
 *   fails:WINDOW    unknown keys asked for by all clients together in a fixed window
 *                   (WINDOW = now / budget period). Once past the budget, a client
 *                   without a fail:{client} yet is counted here only, so a flood from
 *                   ever new addresses creates at most budget fail keys per window.
 *   rate:KIND:CLIENT:WINDOW   fixed-window counters (WINDOW = now / period).
 *   slots:{client}  sorted set, the client's uploads in progress: a slot name per upload,
 *                   scored by its lease deadline (ms, the store's clock). Given back by
 *                   create or gate leave; one past its deadline counts for nothing and
 *                   the next gate removes it. The key lives as long as its latest lease.
 *   secret          string, no TTL: the server secret (32 bytes) when it is not pinned in a
 *                   file; created once with SET NX, so it lives exactly as long as the
 *                   records made under it. Scripts that record or look up an id first check
 *                   that it is still the secret the id was derived under (its SHA-1 in hex,
 *                   which Lua can compute; "" skips the check).
 *   lease:shredder:SCOPE  string, TTL = the lease: the shredder (hostname:pid) that does
 *                   the expiry and orphan sweeps of the storage SCOPE names; renewed by
 *                   its holder, taken by another once it runs out.
 *
 * Leases read the store's own clock (TIME inside the scripts, which Redis 5 and later
 * and Valkey replicate as effects), so every node measures them alike. */
#include "record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define KEY_EXPIRIES "expiries"
#define KEY_SECRET "secret"
#define KEY_LEASE "lease:shredder:"

/* A script's first step when its ARGV[argn] carries a secret fingerprint and KEYS[keyn]
 * is the secret: anything but that very secret means the store was emptied or replaced
 * since the id was derived, and nothing is done (no failure counted, nothing written). */
#define SECRET_CHECK(keyn, argn, stale)                                                                                \
    "if ARGV[" #argn "] ~= '' then\n"                                                                                  \
    "  local s = redis.call('GET', KEYS[" #keyn "])\n"                                                                 \
    "  if not s or redis.sha1hex(s) ~= ARGV[" #argn "] then return " stale " end\n"                                    \
    "end\n"

/* Ahead of every keyed script: KEYS[2] fail:{client}, KEYS[3] block:{client}, KEYS[5]
 * fails:WINDOW, KEYS[6] secret; ARGV[2] fail limit, ARGV[3] block seconds, ARGV[4] fail
 * memory seconds, ARGV[6] failure budget, ARGV[7] its period, ARGV[8] the secret's
 * fingerprint. An unknown key answers {'unknown', failures of all clients in this
 * window}. */
#define GUARD                                                                                                          \
    SECRET_CHECK(6, 8, "{'stale'}")                                                                                    \
    "local bt = redis.call('TTL', KEYS[3])\n"                                                                          \
    "if bt > 0 then return {'blocked', bt} end\n"                                                                      \
    "local function fail()\n"                                                                                          \
    "  local g = redis.call('INCR', KEYS[5])\n"                                                                        \
    "  if g == 1 then redis.call('EXPIRE', KEYS[5], ARGV[7]) end\n"                                                    \
    "  if g > tonumber(ARGV[6]) and redis.call('EXISTS', KEYS[2]) == 0 then return {'unknown', g} end\n"              \
    "  local n = redis.call('INCR', KEYS[2])\n"                                                                        \
    "  if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"                                                    \
    "  if n >= tonumber(ARGV[2]) then\n"                                                                               \
    "    redis.call('SET', KEYS[3], 1, 'EX', ARGV[3])\n"                                                               \
    "    redis.call('DEL', KEYS[2])\n"                                                                                 \
    "  end\n"                                                                                                          \
    "  return {'unknown', g}\n"                                                                                        \
    "end\n"

const char *const record_scripts[RECORD_SCRIPT_COUNT] = {
    /* KEYS upload:{id}, expiries, slots:{client}, secret; ARGV id, uses, created, expiry,
     * size, salt, meta, ttl, slot, delete digest, secret fingerprint -> 1, 0 when the id
     * is live already, -1 when the secret changed. Recording an upload also gives its
     * client's slot back. */
    [RECORD_SCRIPT_CREATE] = SECRET_CHECK(4, 11, "-1") "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
                             "redis.call('HSET', KEYS[1], 'u', ARGV[2], 'm', ARGV[2], 'p', 0, 'c', ARGV[3],\n"
                             "  'e', ARGV[4], 's', ARGV[5], 'salt', ARGV[6], 'meta', ARGV[7], 'b', 0, 'd', ARGV[10])\n"
                             "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
                             "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
                             "redis.call('ZREM', KEYS[3], ARGV[9])\n"
                             "return 1\n",

    /* The keyed scripts: KEYS upload:{id}, fail:{c}, block:{c}, expiries, fails:WINDOW,
     * secret; ARGV now, fail limit, block seconds, fail memory, id, failure budget, its
     * period, secret fingerprint.
     * -> stale | blocked ttl | unknown window_fails | expired | burned
     *    | ok uses_left expiry size salt meta created.
     * Taking the last use also puts the id due in the expiry index: if the download
     * never gets to move the file into the trash (client gone, worker killed), the
     * shredder's expiry pass still takes it at once. */
    [RECORD_SCRIPT_TAKE_USE] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 's', 'salt', 'meta', 'c')\n"
                                     "if not h[1] then return fail() end\n"
                                     "if tonumber(ARGV[1]) >= tonumber(h[2]) then return {'expired'} end\n"
                                     "local u = tonumber(h[1])\n"
                                     "if u <= 0 then return {'burned'} end\n"
                                     "u = u - 1\n"
                                     "if u == 0 then\n"
                                     "  redis.call('HSET', KEYS[1], 'u', 0, 'b', 1)\n"
                                     "  redis.call('HDEL', KEYS[1], 'salt', 'meta')\n"
                                     "  redis.call('ZADD', KEYS[4], ARGV[1], ARGV[5])\n"
                                     "else\n"
                                     "  redis.call('HSET', KEYS[1], 'u', u)\n"
                                     "end\n"
                                     "return {'ok', u, h[2], h[3], h[4], h[5], h[6]}\n",

    /* -> stale | blocked ttl | unknown window_fails | gone | previewed
     *    | ok uses_left expiry size salt meta created */
    [RECORD_SCRIPT_PREVIEW] =
        GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 's', 'salt', 'meta', 'c', 'p', 'b')\n"
              "if not h[1] then return fail() end\n"
              "if tonumber(ARGV[1]) >= tonumber(h[2]) or h[8] == '1' then return {'gone'} end\n"
              "if h[7] == '1' then return {'previewed'} end\n"
              "redis.call('HSET', KEYS[1], 'p', 1)\n"
              "return {'ok', tonumber(h[1]), h[2], h[3], h[4], h[5], h[6]}\n",

    /* -> stale | blocked ttl | unknown window_fails | active|expired|burned uses_left expiry.
     * A live key's status is read without it (record_cmd_status_peek, record_peek_answer,
     * which must keep its order of checks): it runs for the keys they do not find. */
    [RECORD_SCRIPT_STATUS] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 'b')\n"
                                   "if not h[1] then return fail() end\n"
                                   "if tonumber(ARGV[1]) >= tonumber(h[2]) then return {'expired', 0, h[2]} end\n"
                                   "if h[3] == '1' then return {'burned', 0, h[2]} end\n"
                                   "return {'active', tonumber(h[1]), h[2]}\n",

    /* The keyed KEYS and ARGV, then ARGV[9] the digest of the delete token the client sent.
     * -> stale | blocked ttl | unknown window_fails | forbidden window_fails | expired|burned 0 expiry
     *    | ok 0 expiry.
     * A wrong token counts as a failure exactly as an unknown key does, so guessing
     * tokens of a known key is as slow as guessing keys. The digests compare as Lua
     * strings; a difference in timing would tell only how much of a digest of the
     * guess matches, which brings no token closer. The burn is the last use's: salt
     * and meta go, b = 1, and the id falls due for the shredder now. */
    [RECORD_SCRIPT_BURN] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 'b', 'd')\n"
                                 "if not h[1] then return fail() end\n"
                                 "if tonumber(ARGV[1]) >= tonumber(h[2]) then return {'expired', 0, h[2]} end\n"
                                 "if h[4] ~= ARGV[9] then return {'forbidden', fail()[2]} end\n"
                                 "if h[3] == '1' then return {'burned', 0, h[2]} end\n"
                                 "redis.call('HSET', KEYS[1], 'u', 0, 'b', 1)\n"
                                 "redis.call('HDEL', KEYS[1], 'salt', 'meta')\n"
                                 "redis.call('ZADD', KEYS[4], ARGV[1], ARGV[5])\n"
                                 "return {'ok', 0, h[2]}\n",

    /* KEYS rate:KIND:CLIENT:WINDOW; ARGV period -> count in this window */
    [RECORD_SCRIPT_RATE] = "local n = redis.call('INCR', KEYS[1])\n"
                           "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                           "return n\n",

    /* KEYS rate:upload:CLIENT:WINDOW, slots:{client}; ARGV period, limit, max slots,
     * lease ms, slot -> {'rate', retry} | {'busy', ms until the earliest lease ends} |
     * {'ok'} (the slot taken). Slots past their lease are dropped before counting. */
    [RECORD_SCRIPT_GATE_ENTER] = "local n = redis.call('INCR', KEYS[1])\n"
                                 "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                                 "if n > tonumber(ARGV[2]) then return {'rate', redis.call('TTL', KEYS[1])} end\n"
                                 "local t = redis.call('TIME')\n"
                                 "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
                                 "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
                                 "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then\n"
                                 "  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n"
                                 "  return {'busy', tonumber(first[2]) - now}\n"
                                 "end\n"
                                 "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])\n"
                                 "redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
                                 "return {'ok'}\n",

    /* KEYS slots:{client} of each slot; ARGV lease ms, then each slot -> slots renewed.
     * Every slot renewed gets the same deadline, the latest of its set, so its key
     * lives exactly as long. */
    [RECORD_SCRIPT_RENEW] = "local t = redis.call('TIME')\n"
                            "local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])\n"
                            "local n = 0\n"
                            "for i, k in ipairs(KEYS) do\n"
                            "  if redis.call('ZSCORE', k, ARGV[i + 1]) then\n"
                            "    redis.call('ZADD', k, due, ARGV[i + 1])\n"
                            "    redis.call('PEXPIRE', k, ARGV[1])\n"
                            "    n = n + 1\n"
                            "  end\n"
                            "end\n"
                            "return n\n",

    /* KEYS expiries; ARGV member, due -> 1 removed, 0 not there or no longer due */
    [RECORD_SCRIPT_REMOVE_IF_DUE] = "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
                                    "if s and tonumber(s) <= tonumber(ARGV[2]) then\n"
                                    "  return redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                    "end\n"
                                    "return 0\n",

    /* KEYS upload:{id}, reserve:{id}; ARGV token, ttl ms, purpose, now -> 1 reserved, 0 not.
     * Object storage has no rename that refuses to replace: an upload writes the object
     * <id> only while it holds this reservation, which it gets only while no record has
     * the id ("upload"); the shredder deletes an object only while it holds it, which it
     * gets while the id has no record, or a burned or expired one ("delete"). */
    [RECORD_SCRIPT_RESERVE] = "local h = redis.call('HMGET', KEYS[1], 'b', 'e')\n"
                              "if h[1] and (ARGV[3] == 'upload' or (h[1] ~= '1' and tonumber(h[2]) > tonumber(ARGV[4]))) then\n"
                              "  return 0\n"
                              "end\n"
                              "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
                              "return 0\n",

    /* KEYS reserve:{id}; ARGV token -> 1 released, 0 it was not (or no longer) ours */
    [RECORD_SCRIPT_RELEASE] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                              "  return redis.call('DEL', KEYS[1])\n"
                              "end\n"
                              "return 0\n",

    /* KEYS secret; ARGV candidate -> the secret in force (the candidate if there was none) */
    [RECORD_SCRIPT_SECRET] = "redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])\n",

    /* KEYS lease:shredder:SCOPE; ARGV holder, ms (0: give it back) -> 1 held, 0 not */
    [RECORD_SCRIPT_LEASE] = "local h = redis.call('GET', KEYS[1])\n"
                            "if ARGV[2] == '0' then\n"
                            "  if h == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
                            "  return 0\n"
                            "end\n"
                            "if h == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
                            "if h then return 0 end\n"
                            "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                            "return 1\n",
};

/* ---- building commands ---- */

static void begin(record_cmd *c, int script, int nkeys)
{
    c->script = script;
    c->nkeys = nkeys;
    c->argc = 0;
    c->used = 0;
}

/* An argument that lives as long as the program (a literal). */
static void arg_static(record_cmd *c, const char *s)
{
    if (c->argc < RECORD_ARGS_MAX) {
        c->argv[c->argc] = s;
        c->len[c->argc] = strlen(s);
    }
    c->argc++;
}

static void arg_bytes(record_cmd *c, const void *p, size_t n)
{
    if (c->argc < RECORD_ARGS_MAX && c->used <= sizeof(c->buf) && n <= sizeof(c->buf) - c->used) {
        memcpy(c->buf + c->used, p, n);
        c->argv[c->argc] = c->buf + c->used;
        c->len[c->argc] = n;
        c->used += n;
    } else {
        c->used = sizeof(c->buf) + 1; /* overflowed: finish() says so */
    }
    c->argc++;
}

__attribute__((format(printf, 2, 3))) static void arg_fmt(record_cmd *c, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        c->used = sizeof(c->buf) + 1;
    else
        arg_bytes(c, tmp, (size_t)n);
}

/* v in decimal, without printf (several go with every request), ending at buf[24]. */
static const char *num_text(char buf[24], long long v)
{
    size_t at = 23;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    buf[at] = '\0';
    do
        buf[--at] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        buf[--at] = '-';
    return buf + at;
}

static void arg_int(record_cmd *c, long long v)
{
    char buf[24];
    const char *t = num_text(buf, v);
    arg_bytes(c, t, strlen(t));
}

/* One argument made of n strings end to end (a key name). */
static void arg_cat(record_cmd *c, const char *const *parts, size_t n)
{
    char tmp[256];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        if (l > sizeof(tmp) - len) {
            c->used = sizeof(c->buf) + 1;
            c->argc++;
            return;
        }
        memcpy(tmp + len, parts[i], l);
        len += l;
    }
    arg_bytes(c, tmp, len);
}

static int finish(record_cmd *c)
{
    return c->argc <= RECORD_ARGS_MAX && c->used <= sizeof(c->buf) ? 0 : -1;
}

static void key_upload(record_cmd *c, const char *id)
{
    const char *parts[] = {"upload:{", id, "}"};
    arg_cat(c, parts, 3);
}

static void key_client(record_cmd *c, const char *prefix, const char *client)
{
    const char *parts[] = {prefix, ":{", client, "}"};
    arg_cat(c, parts, 4);
}

static void key_rate(record_cmd *c, const char *kind, const char *client, uint32_t period_s, int64_t now)
{
    char n[24];
    const char *parts[] = {"rate:", kind, ":", client, ":", num_text(n, (long long)((uint64_t)now / period_s))};
    arg_cat(c, parts, 6);
}

int record_cmd_create(record_cmd *cmd, const record_new *n)
{
    char salt[2 * CRYPT_SALT_LEN + 1];
    crypt_hex(n->salt, CRYPT_SALT_LEN, salt);
    begin(cmd, RECORD_SCRIPT_CREATE, 4);
    key_upload(cmd, n->id);
    arg_static(cmd, KEY_EXPIRIES);
    key_client(cmd, "slots", n->client);
    arg_static(cmd, KEY_SECRET);
    arg_bytes(cmd, n->id, strlen(n->id));
    arg_int(cmd, (long long)n->uses);
    arg_int(cmd, (long long)n->created);
    arg_int(cmd, (long long)n->expires);
    arg_int(cmd, (long long)n->size);
    arg_bytes(cmd, salt, strlen(salt));
    arg_bytes(cmd, n->meta, n->meta_len);
    arg_int(cmd, (long long)(n->expires - n->created));
    arg_bytes(cmd, n->slot, strlen(n->slot));
    arg_bytes(cmd, n->delete_digest, strlen(n->delete_digest));
    arg_bytes(cmd, n->secret_fp, strlen(n->secret_fp));
    return finish(cmd);
}

static int keyed(record_cmd *cmd, int script, const char *id, const char *client, const record_guard *g, int64_t now)
{
    if (g->budget_period_s == 0)
        return -1;
    begin(cmd, script, 6);
    key_upload(cmd, id);
    key_client(cmd, "fail", client);
    key_client(cmd, "block", client);
    arg_static(cmd, KEY_EXPIRIES);
    char window[24];
    const char *fails[] = {"fails:", num_text(window, (long long)((uint64_t)now / g->budget_period_s))};
    arg_cat(cmd, fails, 2);
    arg_static(cmd, KEY_SECRET);
    arg_int(cmd, (long long)now);
    arg_int(cmd, (long long)g->fail_limit);
    arg_int(cmd, (long long)g->block_s);
    arg_int(cmd, (long long)g->fail_memory_s);
    arg_bytes(cmd, id, strlen(id));
    arg_int(cmd, (long long)g->budget);
    arg_int(cmd, (long long)g->budget_period_s);
    arg_bytes(cmd, g->secret_fp, strlen(g->secret_fp));
    return finish(cmd);
}

int record_cmd_take_use(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now)
{
    return keyed(cmd, RECORD_SCRIPT_TAKE_USE, id, client, g, now);
}

int record_cmd_preview(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now)
{
    return keyed(cmd, RECORD_SCRIPT_PREVIEW, id, client, g, now);
}

int record_cmd_status(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now)
{
    return keyed(cmd, RECORD_SCRIPT_STATUS, id, client, g, now);
}

int record_cmd_status_peek(record_cmd cmds[RECORD_PEEK_CMDS], record_peek *p, const char *id, const char *client,
                           const record_guard *g, int64_t now)
{
    size_t fplen = strlen(g->secret_fp);
    if (fplen >= sizeof(p->secret_fp))
        return -1;
    *p = (record_peek){.now = now};
    memcpy(p->secret_fp, g->secret_fp, fplen + 1);
    record_cmd *c;
    if (fplen > 0) {
        c = &cmds[p->n++];
        begin(c, -1, 0);
        arg_static(c, "EXISTS");
        arg_static(c, KEY_SECRET);
    }
    c = &cmds[p->n++];
    begin(c, -1, 0);
    arg_static(c, "TTL");
    key_client(c, "block", client);
    if (finish(c) != 0)
        return -1;
    c = &cmds[p->n++];
    begin(c, -1, 0);
    arg_static(c, "HMGET");
    key_upload(c, id);
    arg_static(c, "u");
    arg_static(c, "e");
    arg_static(c, "b");
    return finish(c);
}

int record_cmd_burn(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now,
                    const char *digest)
{
    if (keyed(cmd, RECORD_SCRIPT_BURN, id, client, g, now) != 0)
        return -1;
    arg_bytes(cmd, digest, strlen(digest));
    return finish(cmd);
}

int record_cmd_rate(record_cmd *cmd, const char *kind, const char *client, uint32_t period_s, int64_t now)
{
    begin(cmd, RECORD_SCRIPT_RATE, 1);
    key_rate(cmd, kind, client, period_s, now);
    arg_int(cmd, (long long)period_s);
    return finish(cmd);
}

int record_cmd_gate_enter(record_cmd *cmd, const char *client, const char *slot, const record_gate *g, int64_t now)
{
    begin(cmd, RECORD_SCRIPT_GATE_ENTER, 2);
    key_rate(cmd, "upload", client, g->rate_period_s, now);
    key_client(cmd, "slots", client);
    arg_int(cmd, (long long)g->rate_period_s);
    arg_int(cmd, (long long)g->rate_count);
    arg_int(cmd, (long long)g->max_slots);
    arg_int(cmd, (long long)g->lease_ms);
    arg_bytes(cmd, slot, strlen(slot));
    return finish(cmd);
}

int record_cmd_gate_leave(record_cmd *cmd, const char *client, const char *slot)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "ZREM");
    key_client(cmd, "slots", client);
    arg_bytes(cmd, slot, strlen(slot));
    return finish(cmd);
}

int record_cmd_renew(record_cmd *cmd, const record_slot *slots, size_t n, uint32_t lease_ms)
{
    if (n == 0 || n > RECORD_RENEW_MAX)
        return -1;
    begin(cmd, RECORD_SCRIPT_RENEW, (int)n);
    for (size_t i = 0; i < n; i++)
        key_client(cmd, "slots", slots[i].client);
    arg_int(cmd, (long long)lease_ms);
    for (size_t i = 0; i < n; i++)
        arg_bytes(cmd, slots[i].slot, strlen(slots[i].slot));
    return finish(cmd);
}

int record_cmd_due(record_cmd *cmd, double due, unsigned skip, unsigned max)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "ZRANGEBYSCORE");
    arg_static(cmd, KEY_EXPIRIES);
    arg_static(cmd, "-inf");
    arg_fmt(cmd, "%.3f", due);
    arg_static(cmd, "LIMIT");
    arg_int(cmd, (long long)skip);
    arg_int(cmd, (long long)(max < RECORD_DUE_MAX ? max : RECORD_DUE_MAX));
    return finish(cmd);
}

int record_cmd_expiry(record_cmd *cmd, const char *id)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "ZSCORE");
    arg_static(cmd, KEY_EXPIRIES);
    arg_bytes(cmd, id, strlen(id));
    return finish(cmd);
}

int record_cmd_remove_if_due(record_cmd *cmd, const char *member, size_t len, double due)
{
    begin(cmd, RECORD_SCRIPT_REMOVE_IF_DUE, 1);
    arg_static(cmd, KEY_EXPIRIES);
    arg_bytes(cmd, member, len);
    arg_fmt(cmd, "%.3f", due);
    return finish(cmd);
}

int record_cmd_lookup(record_cmd *cmd, const char *id)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "HMGET");
    key_upload(cmd, id);
    arg_static(cmd, "b");
    arg_static(cmd, "e");
    return finish(cmd);
}

int record_cmd_reserve(record_cmd *cmd, const char *id, const char *token, uint32_t ttl_ms, int purpose, int64_t now)
{
    begin(cmd, RECORD_SCRIPT_RESERVE, 2);
    key_upload(cmd, id);
    arg_fmt(cmd, "reserve:{%s}", id);
    arg_bytes(cmd, token, strlen(token));
    arg_fmt(cmd, "%u", ttl_ms);
    arg_static(cmd, purpose == RECORD_RESERVE_UPLOAD ? "upload" : "delete");
    arg_fmt(cmd, "%lld", (long long)now);
    return finish(cmd);
}

int record_cmd_release(record_cmd *cmd, const char *id, const char *token)
{
    begin(cmd, RECORD_SCRIPT_RELEASE, 1);
    arg_fmt(cmd, "reserve:{%s}", id);
    arg_bytes(cmd, token, strlen(token));
    return finish(cmd);
}

int record_cmd_secret_get(record_cmd *cmd)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "GET");
    arg_static(cmd, KEY_SECRET);
    return finish(cmd);
}

int record_cmd_secret_create(record_cmd *cmd, const uint8_t *candidate)
{
    begin(cmd, RECORD_SCRIPT_SECRET, 1);
    arg_static(cmd, KEY_SECRET);
    arg_bytes(cmd, candidate, CRYPT_SECRET_LEN);
    return finish(cmd);
}

void record_cmd_wipe(record_cmd *cmd)
{
    explicit_bzero(cmd->buf, sizeof(cmd->buf));
}

int record_cmd_lease(record_cmd *cmd, const char *scope, const char *holder, uint32_t ms)
{
    size_t plen = strlen(KEY_LEASE), slen = strlen(scope);
    char *key = malloc(plen + slen);
    if (key == NULL)
        return -1;
    memcpy(key, KEY_LEASE, plen);
    memcpy(key + plen, scope, slen);
    begin(cmd, RECORD_SCRIPT_LEASE, 1);
    arg_bytes(cmd, key, plen + slen);
    free(key);
    arg_bytes(cmd, holder, strlen(holder));
    arg_fmt(cmd, "%u", ms);
    return finish(cmd);
}

int record_cmd_sentinel_primary(record_cmd *cmd, const char *master)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "SENTINEL");
    arg_static(cmd, "get-master-addr-by-name");
    arg_bytes(cmd, master, strlen(master));
    return finish(cmd);
}

int record_cmd_sentinel_subscribe(record_cmd *cmd)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "SUBSCRIBE");
    arg_static(cmd, "+switch-master");
    return finish(cmd);
}

int record_cmd_role(record_cmd *cmd)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "ROLE");
    return finish(cmd);
}

int record_cmd_wait(record_cmd *cmd, uint32_t ms)
{
    begin(cmd, -1, 0);
    arg_static(cmd, "WAIT");
    arg_static(cmd, "1");
    arg_fmt(cmd, "%u", ms);
    return finish(cmd);
}

/* ---- reading replies ---- */

static const redisReply *elem(const redisReply *r, size_t i)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

static const char *elem_str(const redisReply *r, size_t i)
{
    const redisReply *e = elem(r, i);
    return e != NULL && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) ? e->str : NULL;
}

/* Integers come back as integers or, where a script passes a hash field through, as
 * decimal strings. */
static long long elem_int(const redisReply *r, size_t i)
{
    const redisReply *e = elem(r, i);
    if (e != NULL && e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e != NULL && e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static record_outcome outcome_named(const char *name)
{
    static const struct {
        const char *name;
        record_outcome outcome;
    } names[] = {{"ok", RECORD_OK},           {"active", RECORD_OK},           {"blocked", RECORD_BLOCKED},
                 {"unknown", RECORD_UNKNOWN}, {"expired", RECORD_EXPIRED},     {"burned", RECORD_BURNED},
                 {"gone", RECORD_GONE},       {"previewed", RECORD_PREVIEWED}, {"forbidden", RECORD_FORBIDDEN},
                 {"stale", RECORD_STALE}};
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].outcome;
    return RECORD_UNKNOWN;
}

/* Salt (element 4) and sealed meta (element 5) of an "ok" reply. */
static void read_sealed(const redisReply *r, record_access *out)
{
    const redisReply *salt = elem(r, 4), *meta = elem(r, 5);
    if (salt == NULL || meta == NULL || salt->type != REDIS_REPLY_STRING || meta->type != REDIS_REPLY_STRING ||
        meta->len > sizeof(out->meta) || crypt_unhex(salt->str, salt->len, out->salt, sizeof(out->salt)) != 0)
        return;
    memcpy(out->meta, meta->str, meta->len);
    out->meta_len = meta->len;
    out->sealed = 1;
}

void record_read_access(const redisReply *r, record_access *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        out->outcome = RECORD_UNAVAILABLE;
        return;
    }
    out->outcome = outcome_named(elem_str(r, 0));
    switch (out->outcome) {
    case RECORD_BLOCKED: out->retry_after = elem_int(r, 1); break;
    case RECORD_UNKNOWN:
    case RECORD_FORBIDDEN: out->window_fails = elem_int(r, 1); break;
    case RECORD_OK:
    case RECORD_EXPIRED:
    case RECORD_BURNED:
        out->uses_left = elem_int(r, 1);
        out->expires = elem_int(r, 2);
        out->size = (uint64_t)elem_int(r, 3);
        out->created = elem_int(r, 6);
        read_sealed(r, out);
        break;
    default: break;
    }
}

/* A whole decimal integer, as the scripts write every number into a record: 0, or -1. */
static int whole(const redisReply *r, long long *out)
{
    char *end;
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0)
        return -1;
    *out = strtoll(r->str, &end, 10);
    return end == r->str + r->len ? 0 : -1;
}

void record_read_peek(record_peek *p, const redisReply *r)
{
    /* The commands in full are EXISTS secret, TTL block:{client}, HMGET upload:{id} u e
     * b; without a fingerprint the first is left out. */
    size_t step = p->read++ + (RECORD_PEEK_CMDS - p->n);
    if (p->read > p->n || r == NULL) {
        p->unavailable = 1;
        return;
    }
    switch (step) {
    case 0:
        if (r->type == REDIS_REPLY_INTEGER)
            p->stale = r->integer == 0;
        else
            p->unavailable = 1;
        break;
    case 1:
        if (r->type == REDIS_REPLY_INTEGER)
            p->block_ttl = r->integer;
        else
            p->unavailable = 1;
        break;
    default:
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
            p->unavailable = 1;
        else if (r->element[0]->type == REDIS_REPLY_NIL)
            p->found = 0;
        else if (whole(r->element[0], &p->uses) == 0 && whole(r->element[1], &p->expires) == 0)
            p->found = 1;
        else
            p->found = -1;
        p->burned = p->found == 1 && r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "1") == 0;
        break;
    }
}

int record_peek_answer(const record_peek *p, record_access *out)
{
    memset(out, 0, sizeof(*out));
    if (p->unavailable || p->read != p->n)
        out->outcome = RECORD_UNAVAILABLE;
    else if (p->stale)
        out->outcome = RECORD_STALE;
    else if (p->block_ttl > 0) {
        out->outcome = RECORD_BLOCKED;
        out->retry_after = p->block_ttl;
    } else if (p->found != 1)
        return 0;
    else {
        out->outcome = p->now >= p->expires ? RECORD_EXPIRED : p->burned ? RECORD_BURNED : RECORD_OK;
        out->uses_left = out->outcome == RECORD_OK ? p->uses : 0;
        out->expires = p->expires;
    }
    return 1;
}

record_outcome record_read_create(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        return RECORD_UNAVAILABLE;
    switch (r->integer) {
    case 1: return RECORD_OK;
    case 0: return RECORD_TAKEN;
    case -1: return RECORD_STALE;
    default: return RECORD_UNAVAILABLE;
    }
}

long long record_read_rate(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

record_outcome record_read_gate(const redisReply *r, long long *free_in_ms)
{
    const char *verdict = elem_str(r, 0);
    if (free_in_ms != NULL)
        *free_in_ms = 0;
    if (verdict == NULL)
        return RECORD_UNAVAILABLE;
    if (strcmp(verdict, "rate") == 0)
        return RECORD_LIMITED;
    if (strcmp(verdict, "busy") == 0) {
        if (free_in_ms != NULL)
            *free_in_ms = elem_int(r, 1);
        return RECORD_BUSY;
    }
    return strcmp(verdict, "ok") == 0 ? RECORD_OK : RECORD_UNAVAILABLE;
}

void record_read_due(redisReply *r, record_due *out)
{
    out->reply = r;
    out->n = 0;
    for (size_t i = 0; elem(r, i) != NULL && out->n < RECORD_DUE_MAX; i++) {
        const redisReply *e = r->element[i];
        record_member *m = &out->m[out->n++];
        *m = (record_member){0};
        if (e->type == REDIS_REPLY_STRING) {
            m->member = e->str;
            m->len = e->len;
            m->is_id = crypt_is_id(e->str, e->len);
        }
    }
}

void record_due_free(record_due *d)
{
    if (d->reply != NULL)
        freeReplyObject(d->reply);
    d->reply = NULL;
    d->n = 0;
}

double record_read_expiry(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : -1;
}

record_outcome record_read_lookup(const redisReply *r)
{
    const redisReply *b = elem(r, 0), *e = elem(r, 1);
    if (b == NULL || e == NULL || r->elements != 2)
        return RECORD_UNAVAILABLE;
    if (e->type == REDIS_REPLY_NIL)
        return RECORD_UNKNOWN;
    return b->type == REDIS_REPLY_STRING && strcmp(b->str, "1") == 0 ? RECORD_BURNED : RECORD_OK;
}

record_outcome record_read_reserve(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        return RECORD_UNAVAILABLE;
    return r->integer == 1 ? RECORD_OK : RECORD_TAKEN;
}

int record_read_secret(const redisReply *r, uint8_t out[CRYPT_SECRET_LEN])
{
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        return 0;
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != CRYPT_SECRET_LEN)
        return -1;
    memcpy(out, r->str, CRYPT_SECRET_LEN);
    return 1;
}

int record_read_lease(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1) ? (int)r->integer : -1;
}

/* host and port text into out: 0, or -1 when they are not an address. */
static int host_port(const char *host, size_t hlen, const char *port, store_url_host *out)
{
    char *end;
    long p = strtol(port, &end, 10);
    if (hlen == 0 || hlen >= sizeof(out->host) || *end != '\0' || end == port || p < 1 || p > 65535)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)p;
    return 0;
}

int record_read_sentinel_primary(const redisReply *r, store_url_host *out)
{
    const char *host = elem_str(r, 0), *port = elem_str(r, 1);
    if (host == NULL || port == NULL || r->elements != 2)
        return -1;
    return host_port(host, strlen(host), port, out);
}

/* "message" "+switch-master" "<master> <old-ip> <old-port> <new-ip> <new-port>" */
int record_read_switch_master(const redisReply *r, const char *master, store_url_host *out)
{
    const char *kind = elem_str(r, 0), *channel = elem_str(r, 1), *text = elem_str(r, 2);
    if (kind == NULL || channel == NULL || text == NULL || strcmp(kind, "message") != 0 ||
        strcmp(channel, "+switch-master") != 0)
        return 0;
    const char *word[5];
    size_t len[5], n = 0;
    for (const char *p = text; *p != '\0' && n < 5;) {
        size_t l = strcspn(p, " ");
        word[n] = p;
        len[n++] = l;
        p += l;
        p += strspn(p, " ");
    }
    if (n != 5 || len[0] != strlen(master) || memcmp(word[0], master, len[0]) != 0 || len[4] >= 8)
        return 0;
    char port[8];
    memcpy(port, word[4], len[4]);
    port[len[4]] = '\0';
    return host_port(word[3], len[3], port, out) == 0 ? 1 : 0;
}

int record_read_role(const redisReply *r)
{
    const char *role = elem_str(r, 0);
    const redisReply *replicas = elem(r, 2);
    if (role == NULL || strcmp(role, "master") != 0)
        return -1;
    return replicas != NULL && replicas->type == REDIS_REPLY_ARRAY ? (int)replicas->elements : 0;
}

int record_read_wait(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 ? (int)r->integer : -1;
}

int record_read_readonly(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0;
}
