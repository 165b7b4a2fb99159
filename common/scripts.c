/* scripts.c - the store's atomic scripts, one per multi-step change.
 *
 * Record: hash upload:{id} with u (uses left), m (uses at upload), p (previewed),
 * c (created), e (expiry), s (size), salt, meta (sealed name/type/sha256), b (burned);
 * TTL = expiry. Sorted set "expiries" (id by expiry) feeds the shredder.
 * Brute force: fail:{client} counts unknown keys (10 min), block:{client} blocks.
 *
 * TAKE_USE / PREVIEW / STATUS share KEYS = upload:{id}, fail:{c}, block:{c}, expiries
 * and ARGV = now, fail limit, block window, fail memory, id. Replies are arrays whose
 * first element names the outcome. */
#include "store.h"

#define GUARD                                                                                                      \
    "local bt = redis.call('TTL', KEYS[3])\n"                                                                      \
    "if bt > 0 then return {'blocked', bt} end\n"                                                                  \
    "local function fail()\n"                                                                                      \
    "  local n = redis.call('INCR', KEYS[2])\n"                                                                    \
    "  if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"                                                \
    "  if n >= tonumber(ARGV[2]) then\n"                                                                           \
    "    redis.call('SET', KEYS[3], 1, 'EX', ARGV[3])\n"                                                           \
    "    redis.call('DEL', KEYS[2])\n"                                                                             \
    "  end\n"                                                                                                      \
    "  return {'unknown'}\n"                                                                                       \
    "end\n"

const char *const store_scripts[SCRIPT_COUNT] = {
    /* KEYS upload:{id}, expiries, inflight:{client}; ARGV id, uses, created, expiry, size,
     * salt, meta, ttl. Recording an upload also ends it as "in progress" for its client. */
    [SCRIPT_CREATE] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
                      "redis.call('HSET', KEYS[1], 'u', ARGV[2], 'm', ARGV[2], 'p', 0, 'c', ARGV[3],\n"
                      "  'e', ARGV[4], 's', ARGV[5], 'salt', ARGV[6], 'meta', ARGV[7], 'b', 0)\n"
                      "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
                      "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
                      "redis.call('DECR', KEYS[3])\n"
                      "return 1\n",

    /* -> blocked ttl | unknown | expired | burned | ok uses_left expiry size salt meta created.
     * Taking the last use also puts the id due in the expiry index: if the download
     * never gets to move the file into the trash (client gone, worker killed), the
     * shredder's expiry pass still takes it at once. */
    [SCRIPT_TAKE_USE] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 's', 'salt', 'meta', 'c')\n"
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

    /* -> blocked ttl | unknown | gone | previewed | ok uses_left expiry size salt meta created */
    [SCRIPT_PREVIEW] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 's', 'salt', 'meta', 'c', 'p', 'b')\n"
                             "if not h[1] then return fail() end\n"
                             "if tonumber(ARGV[1]) >= tonumber(h[2]) or h[8] == '1' then return {'gone'} end\n"
                             "if h[7] == '1' then return {'previewed'} end\n"
                             "redis.call('HSET', KEYS[1], 'p', 1)\n"
                             "return {'ok', tonumber(h[1]), h[2], h[3], h[4], h[5], h[6]}\n",

    /* -> blocked ttl | unknown | active|expired|burned uses_left expiry */
    [SCRIPT_STATUS] = GUARD "local h = redis.call('HMGET', KEYS[1], 'u', 'e', 'b')\n"
                            "if not h[1] then return fail() end\n"
                            "if tonumber(ARGV[1]) >= tonumber(h[2]) then return {'expired', 0, h[2]} end\n"
                            "if h[3] == '1' then return {'burned', 0, h[2]} end\n"
                            "return {'active', tonumber(h[1]), h[2]}\n",

    /* KEYS rate:{kind}:{client}:{window}; ARGV period -> count in this window */
    [SCRIPT_RATE] = "local n = redis.call('INCR', KEYS[1])\n"
                    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                    "return n\n",

    /* KEYS rate:{upload}:..., inflight:{client}; ARGV period, limit, max inflight, inflight ttl
     * -> {'rate', retry} | {'busy'} | {'ok'}; on ok the caller DECRs inflight when done */
    [SCRIPT_UPLOAD_GATE] = "local n = redis.call('INCR', KEYS[1])\n"
                           "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                           "if n > tonumber(ARGV[2]) then return {'rate', redis.call('TTL', KEYS[1])} end\n"
                           "local busy = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
                           "if busy >= tonumber(ARGV[3]) then return {'busy'} end\n"
                           "redis.call('INCR', KEYS[2])\n"
                           "redis.call('EXPIRE', KEYS[2], ARGV[4])\n"
                           "return {'ok'}\n",
};
