/* fuzz_record.c - libFuzzer target: any input is what a store sent back (RESP, read by
 * hiredis's own reader), handed to every reply reader of record.c. Whatever it is, the
 * typed result stays in bounds: a known outcome, metadata that fits, ids that are ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all_ways(redisReply *r)
{
    record_access a;
    record_due d;
    uint8_t secret[CRYPT_SECRET_LEN];
    record_read_access(r, &a);
    if ((unsigned)a.outcome > RECORD_STALE || a.meta_len > sizeof(a.meta) || (!a.sealed && a.meta_len != 0))
        abort();
    if ((unsigned)record_read_create(r) > RECORD_STALE || (unsigned)record_read_gate(r, NULL) > RECORD_STALE ||
        (unsigned)record_read_lookup(r) > RECORD_STALE)
        abort();
    int got = record_read_secret(r, secret);
    if (got < -1 || got > 1 || (got == 1 && (r->type != REDIS_REPLY_STRING || r->len != CRYPT_SECRET_LEN)))
        abort();
    (void)record_read_rate(r);
    (void)record_read_expiry(r);
    record_read_due(r, &d);
    if (d.n > RECORD_DUE_MAX)
        abort();
    for (size_t i = 0; i < d.n; i++)
        if (d.m[i].is_id && (d.m[i].member == NULL || strlen(d.m[i].member) != CRYPT_ID_HEX_LEN))
            abort();
    d.reply = NULL; /* still ours: freed below */
    record_due_free(&d);
}

/* hiredis 0.14 allocates an array as soon as it reads the count, and a count of
 * billions is just a slow out-of-memory inside hiredis; the store sends arrays of at
 * most a few hundred. Inputs declaring one of 10000 or more are skipped. */
static int declares_a_huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        size_t digits = 0;
        if (data[i] != '*')
            continue;
        while (i + 1 + digits < size && data[i + 1 + digits] >= '0' && data[i + 1 + digits] <= '9')
            digits++;
        if (digits > 4)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd;
    void *r = NULL;
    if (declares_a_huge_array(data, size))
        return 0;
    if ((rd = redisReaderCreate()) == NULL)
        abort();
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        while (redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL) {
            read_all_ways(r);
            freeReplyObject(r);
            r = NULL;
        }
    }
    redisReaderFree(rd);
    return 0;
}
