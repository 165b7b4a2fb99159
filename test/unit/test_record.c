/* test_record.c - the contract of common/record.c: replies, written here as the bytes a
 * server sends and read back through hiredis's own reader, become the typed structs the
 * handlers use; and the commands keep an upload's or a client's keys under one hash
 * tag. The scripts themselves run against a real redis-server in the integration
 * tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"

#define ID "0123456789abcdef0123456789abcdef"
#define SALT_HEX "000102030405060708090a0b0c0d0e0f"
#define DIGEST "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define FP "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"

/* The reply a server sending these len bytes would give (the caller frees it). */
static redisReply *reply_n(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

/* Literals may hold NUL bytes, as binary values do. */
#define reply(lit) reply_n(lit, sizeof(lit) - 1)
#define access_of(lit) access_n(lit, sizeof(lit) - 1)

static record_access access_n(const char *resp, size_t len)
{
    record_access a;
    redisReply *r = reply_n(resp, len);
    record_read_access(r, &a);
    freeReplyObject(r);
    return a;
}

static const char take_ok[] = "*7\r\n$2\r\nok\r\n:1\r\n$10\r\n1700000600\r\n$4\r\n1234\r\n"
                              "$32\r\n" SALT_HEX "\r\n$5\r\nm\0e\xfft\r\n$10\r\n1700000000\r\n";

static void a_use_taken_gives_every_field_and_the_sealed_metadata(void **state)
{
    (void)state;
    record_access a = access_of(take_ok);
    assert_int_equal(a.outcome, RECORD_OK);
    assert_int_equal(a.uses_left, 1);
    assert_int_equal(a.expires, 1700000600);
    assert_int_equal(a.size, 1234);
    assert_int_equal(a.created, 1700000000);
    assert_true(a.sealed);
    for (int i = 0; i < CRYPT_SALT_LEN; i++)
        assert_int_equal(a.salt[i], i);
    assert_int_equal(a.meta_len, 5);
    assert_memory_equal(a.meta, "m\0e\xfft", 5);
}

static void a_block_says_for_how_long(void **state)
{
    (void)state;
    record_access a = access_of("*2\r\n$7\r\nblocked\r\n:42\r\n");
    assert_int_equal(a.outcome, RECORD_BLOCKED);
    assert_int_equal(a.retry_after, 42);
}

static void status_reads_uses_and_expiry_as_integers_or_strings(void **state)
{
    (void)state;
    record_access a = access_of("*3\r\n$6\r\nactive\r\n:3\r\n$10\r\n1700000600\r\n");
    assert_int_equal(a.outcome, RECORD_OK);
    assert_int_equal(a.uses_left, 3);
    assert_int_equal(a.expires, 1700000600);
    assert_false(a.sealed);
    a = access_of("*3\r\n$7\r\nexpired\r\n:0\r\n$10\r\n1700000600\r\n");
    assert_int_equal(a.outcome, RECORD_EXPIRED);
    assert_int_equal(a.expires, 1700000600);
    a = access_of("*3\r\n$6\r\nburned\r\n:0\r\n$10\r\n1700000600\r\n");
    assert_int_equal(a.outcome, RECORD_BURNED);
    assert_int_equal(a.expires, 1700000600);
}

static void each_named_outcome_is_its_own_value(void **state)
{
    (void)state;
    assert_int_equal(access_of("*1\r\n$7\r\nunknown\r\n").outcome, RECORD_UNKNOWN);
    assert_int_equal(access_of("*1\r\n$7\r\nexpired\r\n").outcome, RECORD_EXPIRED);
    assert_int_equal(access_of("*1\r\n$6\r\nburned\r\n").outcome, RECORD_BURNED);
    assert_int_equal(access_of("*1\r\n$4\r\ngone\r\n").outcome, RECORD_GONE);
    assert_int_equal(access_of("*1\r\n$9\r\npreviewed\r\n").outcome, RECORD_PREVIEWED);
    assert_int_equal(access_of("*1\r\n$9\r\nforbidden\r\n").outcome, RECORD_FORBIDDEN);
    assert_int_equal(access_of("*1\r\n$5\r\nstale\r\n").outcome, RECORD_STALE);
}

static void no_reply_or_a_shapeless_one_is_unavailable_and_a_strange_name_unknown(void **state)
{
    (void)state;
    record_access a;
    record_read_access(NULL, &a);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
    assert_int_equal(access_of("*0\r\n").outcome, RECORD_UNAVAILABLE);
    assert_int_equal(access_of(":1\r\n").outcome, RECORD_UNAVAILABLE);
    assert_int_equal(access_of("-ERR nope\r\n").outcome, RECORD_UNAVAILABLE);
    assert_int_equal(access_of("*1\r\n$5\r\nmaybe\r\n").outcome, RECORD_UNKNOWN);
    assert_int_equal(access_of("*1\r\n:7\r\n").outcome, RECORD_UNKNOWN);
}

/* Lua ends a reply at its first nil: a record without salt comes back short. */
static void an_ok_without_well_formed_salt_and_meta_is_not_sealed(void **state)
{
    (void)state;
    record_access a = access_of("*4\r\n$2\r\nok\r\n:0\r\n$10\r\n1700000600\r\n$1\r\n9\r\n");
    assert_int_equal(a.outcome, RECORD_OK);
    assert_int_equal(a.size, 9);
    assert_false(a.sealed);
    a = access_of("*7\r\n$2\r\nok\r\n:0\r\n:1\r\n:1\r\n$4\r\nabcd\r\n$1\r\nm\r\n:1\r\n");
    assert_false(a.sealed); /* salt of the wrong length */
    a = access_of("*7\r\n$2\r\nok\r\n:0\r\n:1\r\n:1\r\n$32\r\n" SALT_HEX "\r\n:5\r\n:1\r\n");
    assert_false(a.sealed); /* meta not a string */
}

static void meta_larger_than_any_blob_is_not_sealed(void **state)
{
    (void)state;
    char resp[RECORD_META_MAX + 256];
    int n = snprintf(resp, sizeof(resp), "*7\r\n$2\r\nok\r\n:0\r\n:1\r\n:1\r\n$32\r\n" SALT_HEX "\r\n$%d\r\n",
                     RECORD_META_MAX + 1);
    memset(resp + n, 'x', RECORD_META_MAX + 1);
    n += RECORD_META_MAX + 1;
    n += snprintf(resp + n, sizeof(resp) - (size_t)n, "\r\n:1\r\n");
    record_access a = access_n(resp, (size_t)n);
    assert_int_equal(a.outcome, RECORD_OK);
    assert_false(a.sealed);
}

static void create_answers_recorded_taken_stale_or_unavailable(void **state)
{
    (void)state;
    redisReply *one = reply(":1\r\n"), *zero = reply(":0\r\n"), *text = reply("$1\r\n1\r\n");
    redisReply *stale = reply(":-1\r\n"), *other = reply(":2\r\n");
    assert_int_equal(record_read_create(one), RECORD_OK);
    assert_int_equal(record_read_create(zero), RECORD_TAKEN);
    assert_int_equal(record_read_create(stale), RECORD_STALE);
    assert_int_equal(record_read_create(other), RECORD_UNAVAILABLE);
    assert_int_equal(record_read_create(text), RECORD_UNAVAILABLE);
    assert_int_equal(record_read_create(NULL), RECORD_UNAVAILABLE);
    freeReplyObject(one);
    freeReplyObject(zero);
    freeReplyObject(stale);
    freeReplyObject(other);
    freeReplyObject(text);
}

static void rate_gives_the_count_or_minus_one(void **state)
{
    (void)state;
    redisReply *n = reply(":3\r\n"), *bad = reply("+OK\r\n");
    assert_int_equal(record_read_rate(n), 3);
    assert_int_equal(record_read_rate(bad), -1);
    assert_int_equal(record_read_rate(NULL), -1);
    freeReplyObject(n);
    freeReplyObject(bad);
}

static void the_gate_says_ok_limited_busy_or_unavailable(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        record_outcome want;
        long long free_in_ms;
    } cases[] = {{"*1\r\n$2\r\nok\r\n", RECORD_OK, 0},
                 {"*2\r\n$4\r\nrate\r\n:9\r\n", RECORD_LIMITED, 0},
                 {"*2\r\n$4\r\nbusy\r\n:4321\r\n", RECORD_BUSY, 4321},
                 {"*1\r\n$4\r\nbusy\r\n", RECORD_BUSY, 0},
                 {"*1\r\n$3\r\nhuh\r\n", RECORD_UNAVAILABLE, 0},
                 {"*0\r\n", RECORD_UNAVAILABLE, 0},
                 {":1\r\n", RECORD_UNAVAILABLE, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long free_in_ms = -1;
        redisReply *r = reply_n(cases[i].resp, strlen(cases[i].resp));
        assert_int_equal(record_read_gate(r, &free_in_ms), cases[i].want);
        assert_int_equal(free_in_ms, cases[i].free_in_ms);
        assert_int_equal(record_read_gate(r, NULL), cases[i].want);
        freeReplyObject(r);
    }
    assert_int_equal(record_read_gate(NULL, NULL), RECORD_UNAVAILABLE);
}

static void due_members_are_ids_or_junk_that_can_still_be_named(void **state)
{
    (void)state;
    record_due d;
    record_read_due(reply("*4\r\n$32\r\n" ID "\r\n$5\r\nx\0y\0z\r\n$32\r\n0123456789ABCDEF0123456789abcdef\r\n:5\r\n"),
                    &d);
    assert_int_equal(d.n, 4);
    assert_true(d.m[0].is_id);
    assert_string_equal(d.m[0].member, ID);
    assert_false(d.m[1].is_id);
    assert_int_equal(d.m[1].len, 5);
    assert_memory_equal(d.m[1].member, "x\0y\0z", 5);
    assert_false(d.m[2].is_id); /* ids are lowercase */
    assert_false(d.m[3].is_id);
    assert_null(d.m[3].member);
    record_due_free(&d);
    record_read_due(reply("*0\r\n"), &d);
    assert_int_equal(d.n, 0);
    record_due_free(&d);
}

static void the_expiry_index_score_or_minus_one(void **state)
{
    (void)state;
    redisReply *score = reply("$12\r\n1700000600.5\r\n"), *nil = reply("$-1\r\n");
    assert_true(record_read_expiry(score) == 1700000600.5);
    assert_true(record_read_expiry(nil) == -1);
    freeReplyObject(score);
    freeReplyObject(nil);
}

static void a_lookup_tells_live_burned_absent_and_what_it_cannot_read(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        record_outcome want;
    } cases[] = {{"*2\r\n$1\r\n0\r\n$10\r\n1700000600\r\n", RECORD_OK},
                 {"*2\r\n$1\r\n1\r\n$10\r\n1700000600\r\n", RECORD_BURNED},
                 {"*2\r\n$-1\r\n$-1\r\n", RECORD_UNKNOWN},
                 {"*2\r\n$1\r\n1\r\n$-1\r\n", RECORD_UNKNOWN},
                 {"*1\r\n$-1\r\n", RECORD_UNAVAILABLE},
                 {"-WRONGTYPE no\r\n", RECORD_UNAVAILABLE}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *r = reply_n(cases[i].resp, strlen(cases[i].resp));
        assert_int_equal(record_read_lookup(r), cases[i].want);
        freeReplyObject(r);
    }
    assert_int_equal(record_read_lookup(NULL), RECORD_UNAVAILABLE);
}

/* ---- commands ---- */

static void assert_arg(const record_cmd *c, int i, const char *want)
{
    assert_true(i < c->argc);
    assert_int_equal(c->len[i], strlen(want));
    assert_memory_equal(c->argv[i], want, c->len[i]);
}

static void a_new_record_carries_binary_meta_hex_salt_and_its_ttl(void **state)
{
    (void)state;
    uint8_t salt[CRYPT_SALT_LEN];
    for (int i = 0; i < CRYPT_SALT_LEN; i++)
        salt[i] = (uint8_t)i;
    record_new n = {.id = ID,
                    .client = "10.0.0.1",
                    .slot = "5107a1b2c3d4e5f6",
                    .uses = 2,
                    .created = 1700000000,
                    .expires = 1700000600,
                    .size = 1234,
                    .salt = salt,
                    .meta = (const uint8_t *)"m\0eta",
                    .meta_len = 5,
                    .delete_digest = DIGEST,
                    .secret_fp = FP};
    record_cmd c;
    assert_int_equal(record_cmd_create(&c, &n), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_CREATE);
    assert_int_equal(c.nkeys, 4);
    assert_int_equal(c.argc, 15);
    assert_arg(&c, 0, "upload:{" ID "}");
    assert_arg(&c, 2, "slots:{10.0.0.1}");
    assert_arg(&c, 3, "secret");
    assert_arg(&c, 4, ID);
    assert_arg(&c, 9, SALT_HEX);
    assert_int_equal(c.len[10], 5);
    assert_memory_equal(c.argv[10], "m\0eta", 5);
    assert_arg(&c, 11, "600");
    assert_arg(&c, 12, "5107a1b2c3d4e5f6");
    assert_arg(&c, 13, DIGEST);
    assert_arg(&c, 14, FP); /* checked against the store's secret before anything is written */
}

static void a_slot_is_taken_and_given_back_by_name_in_its_clients_set(void **state)
{
    (void)state;
    record_gate g = {.rate_count = 30, .rate_period_s = 3600, .max_slots = 4, .lease_ms = 5000};
    record_cmd c;
    assert_int_equal(record_cmd_gate_enter(&c, "10.0.0.1", "00ff", &g, 1700000000), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_GATE_ENTER);
    assert_int_equal(c.nkeys, 2);
    assert_arg(&c, 0, "rate:upload:10.0.0.1:472222");
    assert_arg(&c, 1, "slots:{10.0.0.1}");
    assert_arg(&c, 4, "4");
    assert_arg(&c, 5, "5000");
    assert_arg(&c, 6, "00ff");
    assert_int_equal(record_cmd_gate_leave(&c, "10.0.0.1", "00ff"), 0);
    assert_int_equal(c.script, -1);
    assert_int_equal(c.argc, 3);
    assert_arg(&c, 0, "ZREM");
    assert_arg(&c, 1, "slots:{10.0.0.1}");
    assert_arg(&c, 2, "00ff");
}

static void one_command_renews_up_to_its_batch_of_slots_each_under_its_clients_key(void **state)
{
    (void)state;
    record_slot slots[RECORD_RENEW_MAX + 1];
    char names[RECORD_RENEW_MAX + 1][32], clients[RECORD_RENEW_MAX + 1][64];
    for (int i = 0; i <= RECORD_RENEW_MAX; i++) {
        /* The longest client text an IPv6 address gives, so the batch must fit. */
        snprintf(clients[i], sizeof(clients[i]), "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.%d", i);
        snprintf(names[i], sizeof(names[i]), "%016x", i);
        slots[i] = (record_slot){clients[i], names[i]};
    }
    record_cmd c;
    assert_int_equal(record_cmd_renew(&c, slots, 2, 5000), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_RENEW);
    assert_int_equal(c.nkeys, 2);
    assert_int_equal(c.argc, 5);
    assert_arg(&c, 0, "slots:{ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.0}");
    assert_arg(&c, 2, "5000");
    assert_arg(&c, 3, "0000000000000000");
    assert_arg(&c, 4, "0000000000000001");
    assert_int_equal(record_cmd_renew(&c, slots, RECORD_RENEW_MAX, 5000), 0);
    assert_int_equal(c.argc, 2 * RECORD_RENEW_MAX + 1);
    assert_int_equal(record_cmd_renew(&c, slots, RECORD_RENEW_MAX + 1, 5000), -1);
    assert_int_equal(record_cmd_renew(&c, slots, 0, 5000), -1);
}

static void a_burn_is_a_keyed_command_that_carries_the_token_digest(void **state)
{
    (void)state;
    record_guard g = {.fail_limit = 10,
                      .block_s = 600,
                      .fail_memory_s = 600,
                      .budget = 500,
                      .budget_period_s = 60,
                      .secret_fp = FP};
    record_cmd c;
    assert_int_equal(record_cmd_burn(&c, ID, "10.0.0.1", &g, 1700000000, DIGEST), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_BURN);
    assert_int_equal(c.nkeys, 6);
    assert_int_equal(c.argc, 15);
    assert_arg(&c, 0, "upload:{" ID "}");
    assert_arg(&c, 1, "fail:{10.0.0.1}");
    assert_arg(&c, 2, "block:{10.0.0.1}");
    assert_arg(&c, 5, "secret");
    assert_arg(&c, 10, ID);
    assert_arg(&c, 13, FP); /* the secret is checked before the token */
    assert_arg(&c, 14, DIGEST);
}

static void keyed_commands_tag_the_clients_keys_alike(void **state)
{
    (void)state;
    record_guard g = {.fail_limit = 10, .block_s = 600, .fail_memory_s = 600, .budget = 500, .budget_period_s = 60,
                      .secret_fp = FP};
    record_cmd c;
    assert_int_equal(record_cmd_status(&c, ID, "2001:db8::/64", &g, 1700000000), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_STATUS);
    assert_int_equal(c.nkeys, 6);
    assert_arg(&c, 0, "upload:{" ID "}");
    assert_arg(&c, 1, "fail:{2001:db8::/64}");
    assert_arg(&c, 2, "block:{2001:db8::/64}");
    assert_arg(&c, 4, "fails:28333333");
    assert_arg(&c, 5, "secret");
    assert_arg(&c, 6, "1700000000");
    assert_arg(&c, 10, ID);
    assert_arg(&c, 11, "500");
    assert_arg(&c, 12, "60");
    assert_arg(&c, 13, FP);
    assert_int_equal(c.argc, 14);
    g.secret_fp = ""; /* a pinned secret: nothing to compare */
    assert_int_equal(record_cmd_take_use(&c, ID, "::1", &g, 1700000000), 0);
    assert_arg(&c, c.argc - 1, "");
}

static void status_without_the_script_asks_for_a_secret_the_block_and_the_record(void **state)
{
    (void)state;
    record_guard g = {.fail_limit = 10, .block_s = 600, .fail_memory_s = 600, .budget = 500, .budget_period_s = 60,
                      .secret_fp = FP};
    record_cmd c[RECORD_PEEK_CMDS];
    record_peek p;
    assert_int_equal(record_cmd_status_peek(c, &p, ID, "2001:db8::/64", &g, 1700000000), 0);
    assert_int_equal(p.n, 3);
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(c[i].script, -1);
    assert_int_equal(c[0].argc, 2);
    assert_arg(&c[0], 0, "EXISTS"); /* not GET: the secret stays out of the worker's heap */
    assert_arg(&c[0], 1, "secret");
    assert_int_equal(c[1].argc, 2);
    assert_arg(&c[1], 0, "TTL");
    assert_arg(&c[1], 1, "block:{2001:db8::/64}");
    assert_int_equal(c[2].argc, 5);
    assert_arg(&c[2], 0, "HMGET");
    assert_arg(&c[2], 1, "upload:{" ID "}");
    assert_arg(&c[2], 2, "u");
    assert_arg(&c[2], 3, "e");
    assert_arg(&c[2], 4, "b");
    g.secret_fp = ""; /* a pinned secret: nothing to compare */
    assert_int_equal(record_cmd_status_peek(c, &p, ID, "::1", &g, 1700000000), 0);
    assert_int_equal(p.n, 2);
    assert_arg(&c[0], 0, "TTL");
    assert_arg(&c[0], 1, "block:{::1}");
    assert_arg(&c[1], 0, "HMGET");
}

/* Reads of a status without the script, one reply each ("": none), stored the answer
 * to whether the store has a secret (NULL: pinned, not asked); record_peek_answer's
 * verdict, out its answer. */
static int peek(const char *stored, const char *block, const char *fields, int64_t now, record_access *out)
{
    record_guard g = {10, 600, 600, 500, 60, stored != NULL ? FP : ""};
    const char *resp[] = {stored, block, fields};
    record_cmd c[RECORD_PEEK_CMDS];
    record_peek p;
    assert_int_equal(record_cmd_status_peek(c, &p, ID, "::1", &g, now), 0);
    for (size_t i = stored != NULL ? 0 : 1; i < 3; i++) {
        redisReply *r = resp[i][0] != '\0' ? reply_n(resp[i], strlen(resp[i])) : NULL;
        record_read_peek(&p, r);
        if (r != NULL)
            freeReplyObject(r);
    }
    return record_peek_answer(&p, out);
}

#define LIVE "*3\r\n$1\r\n3\r\n$10\r\n1700000600\r\n$1\r\n0\r\n"
#define NONE "*3\r\n$-1\r\n$-1\r\n$-1\r\n"
#define HAS ":1\r\n"
#define UNBLOCKED ":-2\r\n"

static void status_without_the_script_answers_a_live_record_as_the_script_does(void **state)
{
    (void)state;
    record_access a;
    assert_int_equal(peek(HAS, UNBLOCKED, LIVE, 1700000599, &a), 1);
    assert_int_equal(a.outcome, RECORD_OK);
    assert_int_equal(a.uses_left, 3);
    assert_int_equal(a.expires, 1700000600);
    assert_int_equal(peek(NULL, ":-1\r\n", LIVE, 1700000599, &a), 1); /* pinned; no expiry on the block key */
    assert_int_equal(a.outcome, RECORD_OK);
    /* Expired first, then burned, each with no uses and the expiry. */
    assert_int_equal(peek(HAS, UNBLOCKED, LIVE, 1700000600, &a), 1);
    assert_int_equal(a.outcome, RECORD_EXPIRED);
    assert_int_equal(a.uses_left, 0);
    assert_int_equal(a.expires, 1700000600);
    assert_int_equal(peek(HAS, UNBLOCKED, "*3\r\n$1\r\n0\r\n$10\r\n1700000600\r\n$1\r\n1\r\n", 1700000600, &a), 1);
    assert_int_equal(a.outcome, RECORD_EXPIRED);
    assert_int_equal(peek(HAS, UNBLOCKED, "*3\r\n$1\r\n0\r\n$10\r\n1700000600\r\n$1\r\n1\r\n", 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_BURNED);
    assert_int_equal(a.uses_left, 0);
    assert_int_equal(a.expires, 1700000600);
    /* Stale (no secret: the store was emptied) before blocked, blocked before the record. */
    assert_int_equal(peek(":0\r\n", ":42\r\n", LIVE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_STALE);
    assert_int_equal(peek(":0\r\n", ":42\r\n", NONE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_STALE);
    assert_int_equal(peek(HAS, ":42\r\n", NONE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_BLOCKED);
    assert_int_equal(a.retry_after, 42);
}

static void status_without_the_script_leaves_a_missing_or_strange_record_to_the_script(void **state)
{
    (void)state;
    record_access a;
    /* No record: only the script may count the failure. */
    assert_int_equal(peek(HAS, UNBLOCKED, NONE, 1, &a), 0);
    assert_int_equal(peek(NULL, UNBLOCKED, NONE, 1, &a), 0);
    /* Not as the scripts write it: whatever the script makes of it. */
    assert_int_equal(peek(HAS, UNBLOCKED, "*3\r\n$1\r\nx\r\n$10\r\n1700000600\r\n$1\r\n0\r\n", 1, &a), 0);
    assert_int_equal(peek(HAS, UNBLOCKED, "*3\r\n$1\r\n3\r\n$-1\r\n$1\r\n0\r\n", 1, &a), 0);
    /* A reply missing or of the wrong shape is no answer at all. */
    assert_int_equal(peek(HAS, "", LIVE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
    assert_int_equal(peek(HAS, UNBLOCKED, "", 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
    assert_int_equal(peek(HAS, "$2\r\n42\r\n", LIVE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
    assert_int_equal(peek("$4\r\ntest\r\n", UNBLOCKED, LIVE, 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
    assert_int_equal(peek(HAS, UNBLOCKED, "*2\r\n$1\r\n3\r\n$10\r\n1700000600\r\n", 1, &a), 1);
    assert_int_equal(a.outcome, RECORD_UNAVAILABLE);
}

static void the_failure_budget_counts_in_a_fixed_window_of_its_period(void **state)
{
    (void)state;
    record_guard g = {.fail_limit = 10, .block_s = 600, .fail_memory_s = 600, .budget = 500, .budget_period_s = 60,
                      .secret_fp = ""};
    record_cmd c;
    assert_int_equal(record_cmd_take_use(&c, ID, "10.0.0.1", &g, 1700000039), 0);
    assert_arg(&c, 4, "fails:28333333");
    assert_int_equal(record_cmd_preview(&c, ID, "10.0.0.1", &g, 1700000040), 0);
    assert_arg(&c, 4, "fails:28333334");
    g.budget_period_s = 0;
    assert_int_equal(record_cmd_take_use(&c, ID, "10.0.0.1", &g, 1700000040), -1);
}

static void an_unknown_key_says_how_many_failed_in_the_window(void **state)
{
    (void)state;
    record_access a = access_of("*2\r\n$7\r\nunknown\r\n:601\r\n");
    assert_int_equal(a.outcome, RECORD_UNKNOWN);
    assert_int_equal(a.window_fails, 601);
    a = access_of("*1\r\n$7\r\nunknown\r\n");
    assert_int_equal(a.outcome, RECORD_UNKNOWN);
    assert_int_equal(a.window_fails, 0);
    /* A wrong delete token is a failure like an unknown key, counted alike. */
    a = access_of("*2\r\n$9\r\nforbidden\r\n:602\r\n");
    assert_int_equal(a.outcome, RECORD_FORBIDDEN);
    assert_int_equal(a.window_fails, 602);
}

static void the_secret_is_read_created_with_a_candidate_and_wiped(void **state)
{
    (void)state;
    uint8_t candidate[CRYPT_SECRET_LEN], out[CRYPT_SECRET_LEN];
    for (int i = 0; i < CRYPT_SECRET_LEN; i++)
        candidate[i] = (uint8_t)(0xc0 + i);
    record_cmd c;
    assert_int_equal(record_cmd_secret_get(&c), 0);
    assert_int_equal(c.script, -1);
    assert_int_equal(c.argc, 2);
    assert_arg(&c, 0, "GET");
    assert_arg(&c, 1, "secret");
    assert_int_equal(record_cmd_secret_create(&c, candidate), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_SECRET);
    assert_int_equal(c.nkeys, 1);
    assert_arg(&c, 0, "secret");
    assert_int_equal(c.len[1], CRYPT_SECRET_LEN);
    assert_memory_equal(c.argv[1], candidate, CRYPT_SECRET_LEN);
    record_cmd_wipe(&c);
    assert_memory_not_equal(c.argv[1], candidate, CRYPT_SECRET_LEN);
    /* Replies: the secret, none yet, or something else (never taken for a secret). */
    redisReply *r = reply("$32\r\n0123456789abcdef0123456789abcdef\r\n");
    assert_int_equal(record_read_secret(r, out), 1);
    assert_memory_equal(out, "0123456789abcdef0123456789abcdef", CRYPT_SECRET_LEN);
    freeReplyObject(r);
    r = reply("$-1\r\n");
    assert_int_equal(record_read_secret(r, out), 0);
    freeReplyObject(r);
    static const char *const bad[] = {"$31\r\n0123456789abcdef0123456789abcde\r\n",
                                      "$33\r\n0123456789abcdef0123456789abcdef0\r\n", ":32\r\n",
                                      "-NOPERM no\r\n", "*1\r\n$1\r\nx\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0x5a, sizeof out);
        r = reply_n(bad[i], strlen(bad[i]));
        assert_int_equal(record_read_secret(r, out), -1);
        assert_int_equal(out[0], 0x5a);
        freeReplyObject(r);
    }
    assert_int_equal(record_read_secret(NULL, out), -1);
}

static void the_rate_window_is_part_of_the_key(void **state)
{
    (void)state;
    record_cmd c;
    assert_int_equal(record_cmd_rate(&c, "health", "10.0.0.1", 60, 1700000059), 0);
    assert_arg(&c, 0, "rate:health:10.0.0.1:28333334");
    assert_int_equal(record_cmd_rate(&c, "health", "10.0.0.1", 60, 1700000060), 0);
    assert_arg(&c, 0, "rate:health:10.0.0.1:28333334");
    assert_int_equal(record_cmd_rate(&c, "health", "10.0.0.1", 60, 1700000040), 0);
    assert_arg(&c, 0, "rate:health:10.0.0.1:28333334");
    assert_int_equal(record_cmd_rate(&c, "health", "10.0.0.1", 60, 1700000039), 0);
    assert_arg(&c, 0, "rate:health:10.0.0.1:28333333");
}

static void an_argument_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    char client[300];
    memset(client, 'a', sizeof(client) - 1);
    client[sizeof(client) - 1] = '\0';
    record_guard g = {10, 600, 600, 500, 60, ""};
    record_cmd c;
    assert_int_equal(record_cmd_take_use(&c, ID, client, &g, 1), -1);
    assert_int_equal(record_cmd_gate_leave(&c, client, "00ff"), -1);
}

static void the_sentinel_names_the_primary_or_nothing(void **state)
{
    (void)state;
    store_url_host h;
    redisReply *ok = reply("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n"), *nil = reply("*-1\r\n"),
               *bad = reply("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n70000\r\n");
    assert_int_equal(record_read_sentinel_primary(ok, &h), 0);
    assert_string_equal(h.host, "127.0.0.1");
    assert_int_equal(h.port, 6380);
    assert_int_equal(record_read_sentinel_primary(nil, &h), -1);
    assert_int_equal(record_read_sentinel_primary(bad, &h), -1);
    assert_int_equal(record_read_sentinel_primary(NULL, &h), -1);
    freeReplyObject(ok);
    freeReplyObject(nil);
    freeReplyObject(bad);
}

static void switch_master_is_read_for_our_master_only(void **state)
{
    (void)state;
    store_url_host h;
    redisReply *ours = reply("*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n"
                             "$40\r\nmymaster 127.0.0.1 26380 127.0.0.1 26381\r\n"),
               *other = reply("*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n"
                              "$39\r\nmaster2 127.0.0.1 26380 127.0.0.1 26381\r\n"),
               *sub = reply("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
    assert_int_equal(record_read_switch_master(ours, "mymaster", &h), 1);
    assert_string_equal(h.host, "127.0.0.1");
    assert_int_equal(h.port, 26381);
    assert_int_equal(record_read_switch_master(other, "mymaster", &h), 0);
    assert_int_equal(record_read_switch_master(ours, "mymaste", &h), 0);
    assert_int_equal(record_read_switch_master(sub, "mymaster", &h), 0);
    freeReplyObject(ours);
    freeReplyObject(other);
    freeReplyObject(sub);
}

static void role_and_readonly_tell_a_primary_from_a_replica(void **state)
{
    (void)state;
    redisReply *master = reply("*3\r\n$6\r\nmaster\r\n:100\r\n*0\r\n"),
               *with_replica = reply("*3\r\n$6\r\nmaster\r\n:100\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$3\r\n100\r\n"),
               *slave = reply("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:100\r\n"),
               *ro = reply("-READONLY You can't write against a read only replica.\r\n"), *other = reply("-ERR x\r\n");
    assert_int_equal(record_read_role(master), 0);
    assert_int_equal(record_read_role(with_replica), 1);
    assert_int_equal(record_read_role(slave), -1);
    assert_int_equal(record_read_role(NULL), -1);
    assert_int_equal(record_read_readonly(ro), 1);
    assert_int_equal(record_read_readonly(other), 0);
    assert_int_equal(record_read_readonly(master), 0);
    freeReplyObject(master);
    freeReplyObject(with_replica);
    freeReplyObject(slave);
    freeReplyObject(ro);
    freeReplyObject(other);
}

static void the_lease_is_one_key_per_storage_held_by_a_named_holder(void **state)
{
    (void)state;
    record_cmd c;
    assert_int_equal(record_cmd_lease(&c, "host:/srv/uploads", "host:42", 5000), 0);
    assert_int_equal(c.script, RECORD_SCRIPT_LEASE);
    assert_int_equal(c.nkeys, 1);
    assert_arg(&c, 0, "lease:shredder:host:/srv/uploads");
    assert_arg(&c, 1, "host:42");
    assert_arg(&c, 2, "5000");
    redisReply *one = reply(":1\r\n"), *zero = reply(":0\r\n"), *err = reply("-ERR x\r\n");
    assert_int_equal(record_read_lease(one), 1);
    assert_int_equal(record_read_lease(zero), 0);
    assert_int_equal(record_read_lease(err), -1);
    assert_int_equal(record_read_lease(NULL), -1);
    freeReplyObject(one);
    freeReplyObject(zero);
    freeReplyObject(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_use_taken_gives_every_field_and_the_sealed_metadata),
        cmocka_unit_test(a_block_says_for_how_long),
        cmocka_unit_test(status_reads_uses_and_expiry_as_integers_or_strings),
        cmocka_unit_test(each_named_outcome_is_its_own_value),
        cmocka_unit_test(no_reply_or_a_shapeless_one_is_unavailable_and_a_strange_name_unknown),
        cmocka_unit_test(an_ok_without_well_formed_salt_and_meta_is_not_sealed),
        cmocka_unit_test(meta_larger_than_any_blob_is_not_sealed),
        cmocka_unit_test(create_answers_recorded_taken_stale_or_unavailable),
        cmocka_unit_test(rate_gives_the_count_or_minus_one),
        cmocka_unit_test(the_gate_says_ok_limited_busy_or_unavailable),
        cmocka_unit_test(due_members_are_ids_or_junk_that_can_still_be_named),
        cmocka_unit_test(the_expiry_index_score_or_minus_one),
        cmocka_unit_test(a_lookup_tells_live_burned_absent_and_what_it_cannot_read),
        cmocka_unit_test(a_new_record_carries_binary_meta_hex_salt_and_its_ttl),
        cmocka_unit_test(a_slot_is_taken_and_given_back_by_name_in_its_clients_set),
        cmocka_unit_test(one_command_renews_up_to_its_batch_of_slots_each_under_its_clients_key),
        cmocka_unit_test(keyed_commands_tag_the_clients_keys_alike),
        cmocka_unit_test(status_without_the_script_asks_for_a_secret_the_block_and_the_record),
        cmocka_unit_test(status_without_the_script_answers_a_live_record_as_the_script_does),
        cmocka_unit_test(status_without_the_script_leaves_a_missing_or_strange_record_to_the_script),
        cmocka_unit_test(the_failure_budget_counts_in_a_fixed_window_of_its_period),
        cmocka_unit_test(an_unknown_key_says_how_many_failed_in_the_window),
        cmocka_unit_test(a_burn_is_a_keyed_command_that_carries_the_token_digest),
        cmocka_unit_test(the_secret_is_read_created_with_a_candidate_and_wiped),
        cmocka_unit_test(the_rate_window_is_part_of_the_key),
        cmocka_unit_test(an_argument_that_does_not_fit_is_refused),
        cmocka_unit_test(the_sentinel_names_the_primary_or_nothing),
        cmocka_unit_test(switch_master_is_read_for_our_master_only),
        cmocka_unit_test(role_and_readonly_tell_a_primary_from_a_replica),
        cmocka_unit_test(the_lease_is_one_key_per_storage_held_by_a_named_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
