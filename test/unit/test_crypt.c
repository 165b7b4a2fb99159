/* test_crypt.c - the contract of common/crypt.c: known answers computed outside OpenSSL,
 * round trips, and the STREAM segment AEAD's rules (index, last flag, shape). The
 * sealed-file format built on the segments is test_sealed.c's; the server secret's
 * file and page, test_secret.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"

/* The known-answer vectors below were computed with python3 (hmac, hashlib and, for the
 * AES-GCM STREAM vectors, the `cryptography` package's AESGCM), independently of this
 * code:
 *   secret = bytes(range(32)); key = b"apple-banana-cherry"; salt = bytes(range(0xa0, 0xb0))
 *   id     = hmac.new(secret, key, sha256).digest()[:16].hex()
 *   hkdf(ikm, salt, info): prk = HMAC(salt, ikm); t1 = HMAC(prk, info || 0x01)  (RFC 5869,
 *          checked against RFC 5869 test case 1)
 *   file   = hkdf(key, secret + salt, b"raven-zero v1 file")
 *   meta   = hkdf(key, secret + salt, b"raven-zero v1 meta")
 *   segment = AESGCM(file).encrypt(prefix || be32(index) || last, plaintext, aad),
 *           prefix = 01..07. */
static const char KAT_KEY[] = "apple-banana-cherry";
static const char KAT_ID[] = "4fa10fe1ac45e8d1b9ac10b9f934e9fa";
static const char KAT_FILE_KEY[] = "61909bb18028163081bc61023e898d216f7a4aa10021c8ab155a5c5bc4f5def0";
static const char KAT_META_KEY[] = "9655340c838364e116f7b706d9411834b08a79dddfbe38af2ce98c3ab5488984";
/* b"raven" as segment 0, last, with a sealed file's header as AAD (the bytes
 * test_sealed.c expects before it). */
static const char KAT_SEGMENT_AAD[] = "525a30460100000000001000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf010203040506070000000000";
static const char KAT_SEGMENT_RAVEN[] = "f63640afbf602023be9a57a98c39e397b481b36526";
/* bytes((i * 7) & 0xff for i in range(16)) as segment 0x01020304, not last, segment size
 * 16, aad b"any associated data": the counter's byte order and the flag's value. */
static const char KAT_SEGMENT_COUNTER[] = "daabe840cdb4da64b399034cce6e9c02a822dcc97764021cabcbb91570601e30";

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 15 (256-bit key,
 * 96-bit IV, no AAD): the only spec case without AAD, which is what a blob uses. */
static const char GCM15_KEY[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
static const char GCM15_IV[] = "cafebabefacedbaddecaf888";
static const char GCM15_PT[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
static const char GCM15_CT[] =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
static const char GCM15_TAG[] = "b094dac5d93471bdec1a502270e3cc6c";

static void unhex_or_fail(const char *hex, uint8_t *out, size_t outlen)
{
    assert_int_equal(crypt_unhex(hex, strlen(hex), out, outlen), 0);
}

static void kat_inputs(uint8_t secret[CRYPT_SECRET_LEN], uint8_t salt[CRYPT_SALT_LEN])
{
    for (int i = 0; i < CRYPT_SECRET_LEN; i++)
        secret[i] = (uint8_t)i;
    for (int i = 0; i < CRYPT_SALT_LEN; i++)
        salt[i] = (uint8_t)(0xa0 + i);
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);

    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7);
    return p;
}

static void file_key(uint8_t key[CRYPT_KEY_LEN])
{
    unhex_or_fail(KAT_FILE_KEY, key, CRYPT_KEY_LEN);
}

/* ---- id and derivation ---- */

static void id_is_the_first_16_bytes_of_hmac_sha256_in_hex(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN];
    char id[CRYPT_ID_HEX_LEN + 1];

    (void)state;
    kat_inputs(secret, salt);
    assert_int_equal(crypt_id(secret, KAT_KEY, strlen(KAT_KEY), id), 0);
    assert_string_equal(id, KAT_ID);
}

static void id_changes_with_the_key_and_with_the_secret(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN];
    char a[CRYPT_ID_HEX_LEN + 1], b[CRYPT_ID_HEX_LEN + 1], c[CRYPT_ID_HEX_LEN + 1];

    (void)state;
    kat_inputs(secret, salt);
    assert_int_equal(crypt_id(secret, "apple-banana-cherry", 19, a), 0);
    assert_int_equal(crypt_id(secret, "apple-banana-cherries", 21, b), 0);
    secret[31] ^= 1;
    assert_int_equal(crypt_id(secret, "apple-banana-cherry", 19, c), 0);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), CRYPT_ID_HEX_LEN);
}

static void id_with_a_reused_context_is_the_same_id(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN];
    char want[CRYPT_ID_HEX_LEN + 1], got[CRYPT_ID_HEX_LEN + 1], key[80];
    crypt_hmac *h = crypt_hmac_new();

    (void)state;
    assert_non_null(h);
    kat_inputs(secret, salt);
    assert_int_equal(crypt_id_with(h, secret, KAT_KEY, strlen(KAT_KEY), got), 0);
    assert_string_equal(got, KAT_ID);
    for (size_t len = 0; len < sizeof(key); len++) {
        key[len] = (char)('a' + len % 26);
        secret[len % CRYPT_SECRET_LEN] ^= (uint8_t)len;
        assert_int_equal(crypt_id(secret, key, len, want), 0);
        assert_int_equal(crypt_id_with(h, secret, key, len, got), 0);
        assert_string_equal(got, want);
    }
    crypt_hmac_free(h);
}

static void derive_with_a_reused_context_is_the_same_key(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN], want[CRYPT_KEY_LEN], got[CRYPT_KEY_LEN];
    char key[80];
    crypt_hmac *h = crypt_hmac_new();

    (void)state;
    assert_non_null(h);
    kat_inputs(secret, salt);
    for (size_t len = 0; len < sizeof(key); len++) {
        key[len] = (char)('a' + len % 26);
        secret[len % CRYPT_SECRET_LEN] ^= (uint8_t)len;
        salt[len % CRYPT_SALT_LEN] ^= (uint8_t)(len * 7);
        const char *info = len % 2 ? CRYPT_INFO_FILE : CRYPT_INFO_META;
        assert_int_equal(crypt_derive(secret, key, len, salt, info, want), 0);
        assert_int_equal(crypt_derive_with(h, secret, key, len, salt, info, got), 0);
        assert_memory_equal(got, want, CRYPT_KEY_LEN);
    }
    crypt_hmac_free(h);
}

static void derive_is_hkdf_sha256_with_secret_and_salt_as_salt(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN], key[CRYPT_KEY_LEN];
    char hex[2 * CRYPT_KEY_LEN + 1];

    (void)state;
    kat_inputs(secret, salt);
    assert_int_equal(crypt_derive(secret, KAT_KEY, strlen(KAT_KEY), salt, CRYPT_INFO_FILE, key), 0);
    crypt_hex(key, sizeof key, hex);
    assert_string_equal(hex, KAT_FILE_KEY);
    assert_int_equal(crypt_derive(secret, KAT_KEY, strlen(KAT_KEY), salt, CRYPT_INFO_META, key), 0);
    crypt_hex(key, sizeof key, hex);
    assert_string_equal(hex, KAT_META_KEY);
}

static void derive_changes_with_the_upload_salt(void **state)
{
    uint8_t secret[CRYPT_SECRET_LEN], salt[CRYPT_SALT_LEN], a[CRYPT_KEY_LEN], b[CRYPT_KEY_LEN];

    (void)state;
    kat_inputs(secret, salt);
    assert_int_equal(crypt_derive(secret, KAT_KEY, strlen(KAT_KEY), salt, CRYPT_INFO_FILE, a), 0);
    salt[0] ^= 0x80;
    assert_int_equal(crypt_derive(secret, KAT_KEY, strlen(KAT_KEY), salt, CRYPT_INFO_FILE, b), 0);
    assert_memory_not_equal(a, b, CRYPT_KEY_LEN);
}

/* ---- blobs ---- */

static void blob_open_matches_gcm_spec_test_case_15(void **state)
{
    uint8_t key[32], blob[12 + 64 + 16], pt[64], want[64];

    (void)state;
    unhex_or_fail(GCM15_KEY, key, sizeof key);
    unhex_or_fail(GCM15_IV, blob, 12);
    unhex_or_fail(GCM15_CT, blob + 12, 64);
    unhex_or_fail(GCM15_TAG, blob + 12 + 64, 16);
    unhex_or_fail(GCM15_PT, want, sizeof want);
    assert_int_equal(crypt_blob_open(key, blob, sizeof blob, pt), 0);
    assert_memory_equal(pt, want, sizeof want);
}

static void blob_round_trips_including_empty_plaintext(void **state)
{
    static const char meta[] = "{\"name\":\"report.pdf\",\"mime\":\"application/pdf\"}";
    uint8_t key[CRYPT_KEY_LEN], blob[sizeof meta + CRYPT_BLOB_OVERHEAD], out[sizeof meta];
    uint8_t blob2[sizeof meta + CRYPT_BLOB_OVERHEAD];

    (void)state;
    file_key(key);
    assert_int_equal(crypt_blob_seal(key, (const uint8_t *)meta, sizeof meta, blob), 0);
    assert_int_equal(crypt_blob_open(key, blob, sizeof blob, out), 0);
    assert_memory_equal(out, meta, sizeof meta);
    /* A fresh random nonce each time: sealing twice never repeats the ciphertext. */
    assert_int_equal(crypt_blob_seal(key, (const uint8_t *)meta, sizeof meta, blob2), 0);
    assert_memory_not_equal(blob, blob2, sizeof blob);
    assert_int_equal(crypt_blob_seal(key, NULL, 0, blob), 0);
    assert_int_equal(crypt_blob_open(key, blob, CRYPT_BLOB_OVERHEAD, out), 0);
}

static void blob_with_any_flipped_bit_or_wrong_key_fails(void **state)
{
    static const uint8_t meta[40] = "sixteen bytes!! and then a few more";
    uint8_t key[CRYPT_KEY_LEN], blob[sizeof meta + CRYPT_BLOB_OVERHEAD], out[sizeof meta];

    (void)state;
    file_key(key);
    assert_int_equal(crypt_blob_seal(key, meta, sizeof meta, blob), 0);
    for (size_t i = 0; i < sizeof blob; i++) {
        blob[i] ^= 0x01;
        memset(out, 0xaa, sizeof out);
        assert_int_equal(crypt_blob_open(key, blob, sizeof blob, out), -1);
        blob[i] ^= 0x01;
        /* The unauthenticated plaintext is wiped, not handed back. */
        for (size_t j = 0; j < sizeof out; j++)
            assert_int_equal(out[j], 0);
    }
    key[0] ^= 1;
    assert_int_equal(crypt_blob_open(key, blob, sizeof blob, out), -1);
}

static void blob_shorter_than_nonce_and_tag_fails(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], blob[CRYPT_BLOB_OVERHEAD] = {0}, out[1];

    (void)state;
    file_key(key);
    assert_int_equal(crypt_blob_open(key, blob, CRYPT_BLOB_OVERHEAD - 1, out), -1);
    assert_int_equal(crypt_blob_open(key, blob, 0, out), -1);
}

/* ---- STREAM segments ---- */

static const uint8_t PREFIX[CRYPT_NONCE_PREFIX_LEN] = {1, 2, 3, 4, 5, 6, 7};

static void stream_segments_match_an_independent_implementation(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], aad[40], want[32], out[32], *pt = pattern(16);
    static const char other_aad[] = "any associated data";
    crypt_stream *s;

    (void)state;
    file_key(key);
    unhex_or_fail(KAT_SEGMENT_AAD, aad, sizeof aad);
    s = crypt_stream_new(key, PREFIX, 4096, aad, sizeof aad);
    assert_non_null(s);
    unhex_or_fail(KAT_SEGMENT_RAVEN, want, 21);
    assert_int_equal(crypt_seal_segment(s, 0, 1, (const uint8_t *)"raven", 5, out), 0);
    assert_memory_equal(out, want, 21);
    crypt_stream_free(s);

    s = crypt_stream_new(key, PREFIX, 16, (const uint8_t *)other_aad, strlen(other_aad));
    assert_non_null(s);
    unhex_or_fail(KAT_SEGMENT_COUNTER, want, 32);
    assert_int_equal(crypt_seal_segment(s, 0x01020304, 0, pt, 16, out), 0);
    assert_memory_equal(out, want, 32);
    crypt_stream_free(s);
    free(pt);
}

/* Three segments of a 4096-byte stream: two full, then a short last one. */
typedef struct {
    uint8_t key[CRYPT_KEY_LEN];
    crypt_stream *s;
    uint8_t *pt;
    uint8_t seg[3][4096 + CRYPT_TAG_LEN];
    size_t len[3]; /* sealed lengths */
    uint8_t out[4096];
} three;

static int three_setup(void **state)
{
    three *t = calloc(1, sizeof *t);
    static const uint8_t aad[] = "header";

    assert_non_null(t);
    file_key(t->key);
    t->pt = pattern(2 * 4096 + 1000);
    t->s = crypt_stream_new(t->key, PREFIX, 4096, aad, sizeof aad);
    assert_non_null(t->s);
    for (uint32_t i = 0; i < 3; i++) {
        size_t n = i < 2 ? 4096 : 1000;
        assert_int_equal(crypt_seal_segment(t->s, i, i == 2, t->pt + i * 4096, n, t->seg[i]), 0);
        t->len[i] = n + CRYPT_TAG_LEN;
    }
    *state = t;
    return 0;
}

static int three_teardown(void **state)
{
    three *t = *state;

    crypt_stream_free(t->s);
    free(t->pt);
    free(t);
    return 0;
}

static void segment_opened_at_wrong_index_or_last_flag_fails_and_is_wiped(void **state)
{
    three *t = *state;

    assert_int_equal(crypt_open_segment(t->s, 0, 0, t->seg[0], t->len[0], t->out), 0);
    assert_memory_equal(t->out, t->pt, 4096);
    assert_int_equal(crypt_open_segment(t->s, 1, 0, t->seg[0], t->len[0], t->out), -1);
    assert_int_equal(crypt_open_segment(t->s, 2, 1, t->seg[2], t->len[2], t->out), 0);
    /* A short segment not flagged last is refused by its shape alone. */
    assert_int_equal(crypt_open_segment(t->s, 2, 0, t->seg[2], t->len[2], t->out), -1);
    /* A full one flagged last is decrypted, fails its tag, and what was written is wiped. */
    memset(t->out, 0x55, sizeof t->out);
    assert_int_equal(crypt_open_segment(t->s, 1, 1, t->seg[1], t->len[1], t->out), -1);
    for (size_t i = 0; i < sizeof t->out; i++)
        assert_int_equal(t->out[i], 0);
    /* A context that failed is still good for the next segment. */
    assert_int_equal(crypt_open_segment(t->s, 1, 0, t->seg[1], t->len[1], t->out), 0);
    assert_memory_equal(t->out, t->pt + 4096, 4096);
}

static void segment_with_a_flipped_bit_or_under_another_key_or_aad_fails(void **state)
{
    three *t = *state;
    static const uint8_t other[] = "headex";
    crypt_stream *s;

    for (size_t i = 0; i < t->len[2]; i += 7) {
        t->seg[2][i] ^= 0x10;
        assert_int_equal(crypt_open_segment(t->s, 2, 1, t->seg[2], t->len[2], t->out), -1);
        t->seg[2][i] ^= 0x10;
    }
    s = crypt_stream_new(t->key, PREFIX, 4096, other, sizeof other);
    assert_non_null(s);
    assert_int_equal(crypt_open_segment(s, 2, 1, t->seg[2], t->len[2], t->out), -1);
    crypt_stream_free(s);
    t->key[0] ^= 1;
    s = crypt_stream_new(t->key, PREFIX, 4096, (const uint8_t *)"header", 7);
    assert_non_null(s);
    assert_int_equal(crypt_open_segment(s, 2, 1, t->seg[2], t->len[2], t->out), -1);
    crypt_stream_free(s);
}

static void seal_refuses_short_non_last_empty_or_oversized_segments(void **state)
{
    three *t = *state;
    uint8_t big[4096 + 1 + CRYPT_TAG_LEN];

    assert_int_equal(crypt_seal_segment(t->s, 0, 0, t->pt, 4095, t->seg[0]), -1);
    assert_int_equal(crypt_seal_segment(t->s, 0, 1, t->pt, 0, t->seg[0]), -1);
    assert_int_equal(crypt_seal_segment(t->s, 0, 1, t->pt, 4097, big), -1);
    assert_int_equal(crypt_open_segment(t->s, 0, 1, t->seg[0], CRYPT_TAG_LEN, t->out), -1);
    assert_int_equal(crypt_seal_segment(t->s, 0, 1, t->pt, 4095, t->seg[0]), 0);
}

static void stream_refuses_a_segment_size_or_aad_out_of_range(void **state)
{
    uint8_t key[CRYPT_KEY_LEN] = {0}, aad[CRYPT_AAD_MAX + 1] = {0};
    crypt_stream *s;

    (void)state;
    assert_null(crypt_stream_new(key, PREFIX, 0, aad, 1));
    assert_null(crypt_stream_new(key, PREFIX, CRYPT_SEGMENT_MAX + 1, aad, 1));
    assert_null(crypt_stream_new(key, PREFIX, UINT32_MAX, aad, 1));
    assert_null(crypt_stream_new(key, PREFIX, 4096, aad, sizeof aad));
    s = crypt_stream_new(key, PREFIX, CRYPT_SEGMENT_MAX, aad, CRYPT_AAD_MAX);
    assert_non_null(s);
    crypt_stream_free(s);
}

/* ---- hex ---- */

static void hex_round_trips_and_unhex_accepts_only_exact_lowercase(void **state)
{
    uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
    char hex[9];

    (void)state;
    crypt_hex(in, sizeof in, hex);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(crypt_unhex(hex, 8, out, 4), 0);
    assert_memory_equal(in, out, 4);
    assert_int_equal(crypt_unhex("009FA0FF", 8, out, 4), -1);
    assert_int_equal(crypt_unhex("009fa0f", 7, out, 4), -1);
    assert_int_equal(crypt_unhex("009fa0ff00", 10, out, 4), -1);
    assert_int_equal(crypt_unhex("009fa0fg", 8, out, 4), -1);
    assert_int_equal(crypt_unhex("009f a0f", 8, out, 4), -1);
}

#define WITH_THREE(t) cmocka_unit_test_setup_teardown(t, three_setup, three_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(id_is_the_first_16_bytes_of_hmac_sha256_in_hex),
        cmocka_unit_test(id_changes_with_the_key_and_with_the_secret),
        cmocka_unit_test(id_with_a_reused_context_is_the_same_id),
        cmocka_unit_test(derive_with_a_reused_context_is_the_same_key),
        cmocka_unit_test(derive_is_hkdf_sha256_with_secret_and_salt_as_salt),
        cmocka_unit_test(derive_changes_with_the_upload_salt),
        cmocka_unit_test(blob_open_matches_gcm_spec_test_case_15),
        cmocka_unit_test(blob_round_trips_including_empty_plaintext),
        cmocka_unit_test(blob_with_any_flipped_bit_or_wrong_key_fails),
        cmocka_unit_test(blob_shorter_than_nonce_and_tag_fails),
        cmocka_unit_test(stream_segments_match_an_independent_implementation),
        WITH_THREE(segment_opened_at_wrong_index_or_last_flag_fails_and_is_wiped),
        WITH_THREE(segment_with_a_flipped_bit_or_under_another_key_or_aad_fails),
        WITH_THREE(seal_refuses_short_non_last_empty_or_oversized_segments),
        cmocka_unit_test(stream_refuses_a_segment_size_or_aad_out_of_range),
        cmocka_unit_test(hex_round_trips_and_unhex_accepts_only_exact_lowercase),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
