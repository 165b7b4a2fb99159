/* test_crypt.c - the contract of common/crypt.c: known answers computed outside OpenSSL,
 * round trips, and every tampering the STREAM format must catch (flips, reordering,
 * truncation, extension, wrong key), plus the server secret file's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "crypt.h"

#define SEG CRYPT_SEGMENT_SIZE

/* The known-answer vectors below were computed with python3 (hmac, hashlib and, for the
 * AES-GCM STREAM vectors, the `cryptography` package's AESGCM), independently of this
 * code:
 *   secret = bytes(range(32)); key = b"apple-banana-cherry"; salt = bytes(range(0xa0, 0xb0))
 *   id     = hmac.new(secret, key, sha256).digest()[:16].hex()
 *   hkdf(ikm, salt, info): prk = HMAC(salt, ikm); t1 = HMAC(prk, info || 0x01)  (RFC 5869,
 *          checked against RFC 5869 test case 1)
 *   file   = hkdf(key, secret + salt, b"raven-zero v1 file")
 *   meta   = hkdf(key, secret + salt, b"raven-zero v1 meta")
 *   stream: header = b"RZ0F" 01 000000 || be32(seg) || salt || prefix 01..07 || 00*5,
 *           each segment AESGCM(file).encrypt(prefix || be32(i) || last, chunk, header). */
static const char KAT_KEY[] = "apple-banana-cherry";
static const char KAT_ID[] = "4fa10fe1ac45e8d1b9ac10b9f934e9fa";
static const char KAT_FILE_KEY[] = "61909bb18028163081bc61023e898d216f7a4aa10021c8ab155a5c5bc4f5def0";
static const char KAT_META_KEY[] = "9655340c838364e116f7b706d9411834b08a79dddfbe38af2ce98c3ab5488984";
/* b"raven" sealed with segment size 4096: 40 + 5 + 16 bytes. */
static const char KAT_STREAM_RAVEN[] =
    "525a30460100000000001000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf010203040506070000000000"
    "f63640afbf602023be9a57a98c39e397b481b36526";
/* SHA-256 of bytes((i * 7) & 0xff for i in range(4099)) sealed with segment size 4096. */
static const char KAT_STREAM_TWO_SEGMENTS_SHA256[] =
    "bbbcc3341b18f2247fac511c5d21cdd17ec038e2cbdbdfd64a9863f8b14466b2";

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

static void kat_header(crypt_header *h, uint32_t segment_size)
{
    uint8_t secret[CRYPT_SECRET_LEN];

    kat_inputs(secret, h->salt);
    h->segment_size = segment_size;
    for (int i = 0; i < CRYPT_NONCE_PREFIX_LEN; i++)
        h->nonce_prefix[i] = (uint8_t)(i + 1);
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);

    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7);
    return p;
}

/* Seal a whole plaintext as an upload would: header, then full segments, last flagged. */
static uint8_t *seal_file(const uint8_t key[CRYPT_KEY_LEN], const crypt_header *h, const uint8_t *pt,
                          size_t len, size_t *outlen)
{
    size_t total = crypt_sealed_size(len, h->segment_size), off = 0, pos = CRYPT_HEADER_LEN;
    uint8_t *out = malloc(total);
    crypt_stream *s = crypt_stream_new(key, h);
    uint32_t index = 0;

    assert_true(total > 0);
    assert_non_null(out);
    assert_non_null(s);
    crypt_header_encode(h, out);
    while (off < len) {
        size_t n = len - off < h->segment_size ? len - off : h->segment_size;
        int last = off + n == len;
        assert_int_equal(crypt_seal_segment(s, index++, last, pt + off, n, out + pos), 0);
        off += n;
        pos += n + CRYPT_TAG_LEN;
    }
    assert_int_equal(pos, total);
    crypt_stream_free(s);
    *outlen = total;
    return out;
}

/* Open a sealed file as a download would: header, sizes from the file length, every
 * segment authenticated. 0, or -1 at the first failure. plain gets the plaintext. */
static int open_file(const uint8_t key[CRYPT_KEY_LEN], const uint8_t *in, size_t len, uint8_t *plain,
                     size_t *plainlen)
{
    crypt_header h;
    crypt_stream *s;
    uint64_t total, off = 0;
    size_t pos = CRYPT_HEADER_LEN;
    uint32_t index = 0;
    int rc = 0;

    if (len < CRYPT_HEADER_LEN || crypt_header_decode(in, &h) != 0 ||
        crypt_plain_size(len, h.segment_size, &total) != 0)
        return -1;
    s = crypt_stream_new(key, &h);
    assert_non_null(s);
    while (off < total && rc == 0) {
        size_t n = total - off < h.segment_size ? (size_t)(total - off) : h.segment_size;
        rc = crypt_open_segment(s, index++, off + n == total, in + pos, n + CRYPT_TAG_LEN, plain + off);
        off += n;
        pos += n + CRYPT_TAG_LEN;
    }
    crypt_stream_free(s);
    *plainlen = (size_t)total;
    return rc;
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

/* ---- STREAM known answers and round trips ---- */

static void stream_matches_an_independent_implementation(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], want[61], digest[SHA256_DIGEST_LENGTH], *pt, *sealed;
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    crypt_header h;
    size_t len;

    (void)state;
    file_key(key);
    kat_header(&h, 4096);
    unhex_or_fail(KAT_STREAM_RAVEN, want, sizeof want);
    sealed = seal_file(key, &h, (const uint8_t *)"raven", 5, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(sealed, want, sizeof want);
    free(sealed);

    /* Two segments check the counter's byte order and that only the last is flagged. */
    pt = pattern(4099);
    sealed = seal_file(key, &h, pt, 4099, &len);
    SHA256(sealed, len, digest);
    crypt_hex(digest, sizeof digest, hex);
    assert_string_equal(hex, KAT_STREAM_TWO_SEGMENTS_SHA256);
    free(sealed);
    free(pt);
}

static void round_trip(size_t len)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN], *pt = pattern(len), *out = malloc(len), *sealed;
    crypt_header h;
    size_t sealedlen, outlen;

    assert_non_null(out);
    file_key(key);
    assert_int_equal(crypt_random(salt, sizeof salt), 0);
    assert_int_equal(crypt_header_new(&h, salt), 0);
    sealed = seal_file(key, &h, pt, len, &sealedlen);
    assert_int_equal(open_file(key, sealed, sealedlen, out, &outlen), 0);
    assert_int_equal(outlen, len);
    assert_memory_equal(out, pt, len);
    free(sealed);
    free(out);
    free(pt);
}

static void stream_round_trips_one_byte(void **state)
{
    (void)state;
    round_trip(1);
}

static void stream_round_trips_exactly_one_segment(void **state)
{
    (void)state;
    round_trip(SEG);
}

static void stream_round_trips_one_segment_plus_one_byte(void **state)
{
    (void)state;
    round_trip(SEG + 1);
}

static void stream_round_trips_several_segments(void **state)
{
    (void)state;
    round_trip(3 * SEG + 17);
    round_trip(4 * SEG);
}

/* ---- STREAM tampering: a fixture of a three-segment file (2 full + a partial) ---- */

typedef struct {
    uint8_t key[CRYPT_KEY_LEN];
    uint8_t *pt, *sealed, *out;
    size_t ptlen, len, outlen;
} fixture;

#define FIX_PLAIN (2 * SEG + 1000)
#define SEG_AT(i) (CRYPT_HEADER_LEN + (size_t)(i) * (SEG + CRYPT_TAG_LEN))

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    uint8_t salt[CRYPT_SALT_LEN];
    crypt_header h;

    assert_non_null(f);
    file_key(f->key);
    assert_int_equal(crypt_random(salt, sizeof salt), 0);
    assert_int_equal(crypt_header_new(&h, salt), 0);
    f->ptlen = FIX_PLAIN;
    f->pt = pattern(f->ptlen);
    f->sealed = seal_file(f->key, &h, f->pt, f->ptlen, &f->len);
    /* Room for a plaintext one segment longer than the original, for extension tests. */
    f->out = malloc(f->ptlen + 2 * SEG);
    assert_non_null(f->out);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;

    free(f->pt);
    free(f->sealed);
    free(f->out);
    free(f);
    return 0;
}

static int open_fixture(fixture *f, const uint8_t *sealed, size_t len)
{
    return open_file(f->key, sealed, len, f->out, &f->outlen);
}

static void untampered_fixture_opens(void **state)
{
    fixture *f = *state;

    assert_int_equal(open_fixture(f, f->sealed, f->len), 0);
    assert_memory_equal(f->out, f->pt, f->ptlen);
}

static void flipped_bit_anywhere_in_header_fails(void **state)
{
    fixture *f = *state;

    for (size_t i = 0; i < CRYPT_HEADER_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            f->sealed[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(open_fixture(f, f->sealed, f->len), -1);
            f->sealed[i] ^= (uint8_t)(1 << bit);
        }
    }
}

static void flipped_bit_in_ciphertext_fails_authentication(void **state)
{
    fixture *f = *state;
    size_t where[] = {SEG_AT(0), SEG_AT(0) + 12345, SEG_AT(1) + SEG - 1, SEG_AT(2), f->len - 17};

    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        f->sealed[where[i]] ^= 0x40;
        assert_int_equal(open_fixture(f, f->sealed, f->len), -1);
        f->sealed[where[i]] ^= 0x40;
    }
}

static void flipped_bit_in_tag_fails_authentication(void **state)
{
    fixture *f = *state;
    size_t where[] = {SEG_AT(1) - 16, SEG_AT(1) - 1, SEG_AT(2) - 8, f->len - 16, f->len - 1};

    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        f->sealed[where[i]] ^= 0x01;
        assert_int_equal(open_fixture(f, f->sealed, f->len), -1);
        f->sealed[where[i]] ^= 0x01;
    }
}

static void reordered_segments_fail_authentication(void **state)
{
    fixture *f = *state;
    size_t stride = SEG + CRYPT_TAG_LEN;
    uint8_t *tmp = malloc(stride);

    assert_non_null(tmp);
    memcpy(tmp, f->sealed + SEG_AT(0), stride);
    memcpy(f->sealed + SEG_AT(0), f->sealed + SEG_AT(1), stride);
    memcpy(f->sealed + SEG_AT(1), tmp, stride);
    assert_int_equal(open_fixture(f, f->sealed, f->len), -1);
    free(tmp);
}

static void truncated_file_fails_authentication(void **state)
{
    fixture *f = *state;

    /* Dropping the last segment leaves a well-formed size whose new last segment was
     * sealed with last = 0. */
    assert_int_equal(open_fixture(f, f->sealed, SEG_AT(2)), -1);
    assert_int_equal(open_fixture(f, f->sealed, SEG_AT(1)), -1);
    /* A cut inside a segment either leaves an impossible size or breaks a tag. */
    assert_int_equal(open_fixture(f, f->sealed, f->len - 1), -1);
    assert_int_equal(open_fixture(f, f->sealed, SEG_AT(2) + 17), -1);
    assert_int_equal(open_fixture(f, f->sealed, CRYPT_HEADER_LEN), -1);
}

static void extended_file_fails_authentication(void **state)
{
    fixture *f = *state;
    size_t stride = SEG + CRYPT_TAG_LEN, len;
    uint8_t *longer = malloc(f->len + stride), *whole;
    crypt_header h;

    assert_non_null(longer);
    /* A whole segment appended after a partial last one shifts every boundary after it. */
    memcpy(longer, f->sealed, f->len);
    memcpy(longer + f->len, f->sealed + SEG_AT(0), stride);
    assert_int_equal(open_fixture(f, longer, f->len + stride), -1);
    memcpy(longer + f->len, "junk", 4);
    assert_int_equal(open_fixture(f, longer, f->len + 4), -1);
    free(longer);

    /* With boundaries intact, the old last segment now sits in a non-last position and
     * its last flag no longer matches. */
    assert_int_equal(crypt_header_decode(f->sealed, &h), 0);
    whole = seal_file(f->key, &h, f->pt, 2 * SEG, &len);
    longer = malloc(len + stride);
    assert_non_null(longer);
    memcpy(longer, whole, len);
    assert_int_equal(open_fixture(f, longer, len), 0);
    memcpy(longer + len, whole + SEG_AT(0), stride);
    assert_int_equal(open_fixture(f, longer, len + stride), -1);
    free(longer);
    free(whole);
}

static void wrong_key_fails_authentication(void **state)
{
    fixture *f = *state;

    f->key[CRYPT_KEY_LEN - 1] ^= 0x01;
    assert_int_equal(open_fixture(f, f->sealed, f->len), -1);
    f->key[CRYPT_KEY_LEN - 1] ^= 0x01;
}

static void segment_opened_at_wrong_index_or_last_flag_fails_and_is_wiped(void **state)
{
    fixture *f = *state;
    crypt_header h;
    crypt_stream *s;
    size_t lastlen = f->len - SEG_AT(2);

    assert_int_equal(crypt_header_decode(f->sealed, &h), 0);
    s = crypt_stream_new(f->key, &h);
    assert_non_null(s);
    assert_int_equal(crypt_open_segment(s, 0, 0, f->sealed + SEG_AT(0), SEG + 16, f->out), 0);
    assert_int_equal(crypt_open_segment(s, 1, 0, f->sealed + SEG_AT(0), SEG + 16, f->out), -1);
    assert_int_equal(crypt_open_segment(s, 2, 1, f->sealed + SEG_AT(2), lastlen, f->out), 0);
    /* A short segment not flagged last is refused by its shape alone. */
    assert_int_equal(crypt_open_segment(s, 2, 0, f->sealed + SEG_AT(2), lastlen, f->out), -1);
    /* A full one flagged last is decrypted, fails its tag, and what was written is wiped. */
    memset(f->out, 0x55, SEG);
    assert_int_equal(crypt_open_segment(s, 1, 1, f->sealed + SEG_AT(1), SEG + 16, f->out), -1);
    for (size_t i = 0; i < SEG; i++)
        assert_int_equal(f->out[i], 0);
    /* A context that failed is still good for the next segment. */
    assert_int_equal(crypt_open_segment(s, 1, 0, f->sealed + SEG_AT(1), SEG + 16, f->out), 0);
    assert_memory_equal(f->out, f->pt + SEG, SEG);
    crypt_stream_free(s);
}

static void seal_refuses_short_non_last_empty_or_oversized_segments(void **state)
{
    fixture *f = *state;
    crypt_header h;
    crypt_stream *s;

    assert_int_equal(crypt_header_decode(f->sealed, &h), 0);
    s = crypt_stream_new(f->key, &h);
    assert_non_null(s);
    assert_int_equal(crypt_seal_segment(s, 0, 0, f->pt, SEG - 1, f->out), -1);
    assert_int_equal(crypt_seal_segment(s, 0, 1, f->pt, 0, f->out), -1);
    assert_int_equal(crypt_seal_segment(s, 0, 1, f->pt, SEG + 1, f->out), -1);
    assert_int_equal(crypt_open_segment(s, 0, 1, f->sealed + SEG_AT(0), CRYPT_TAG_LEN, f->out), -1);
    assert_int_equal(crypt_seal_segment(s, 0, 1, f->pt, SEG - 1, f->out), 0);
    crypt_stream_free(s);
}

/* ---- header ---- */

static void header_encodes_and_decodes_to_the_same_fields(void **state)
{
    uint8_t salt[CRYPT_SALT_LEN], enc[CRYPT_HEADER_LEN];
    crypt_header h, back;

    (void)state;
    memset(salt, 0x5a, sizeof salt);
    assert_int_equal(crypt_header_new(&h, salt), 0);
    assert_int_equal(h.segment_size, CRYPT_SEGMENT_SIZE);
    crypt_header_encode(&h, enc);
    assert_memory_equal(enc, "RZ0F\x01\0\0\0\0\x01\0\0", 12);
    assert_int_equal(crypt_header_decode(enc, &back), 0);
    assert_int_equal(back.segment_size, h.segment_size);
    assert_memory_equal(back.salt, salt, CRYPT_SALT_LEN);
    assert_memory_equal(back.nonce_prefix, h.nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

static void header_new_draws_a_fresh_nonce_prefix(void **state)
{
    uint8_t salt[CRYPT_SALT_LEN] = {0};
    crypt_header a, b;

    (void)state;
    assert_int_equal(crypt_header_new(&a, salt), 0);
    assert_int_equal(crypt_header_new(&b, salt), 0);
    assert_memory_not_equal(a.nonce_prefix, b.nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

static void header_with_bad_magic_version_reserved_or_segment_size_is_rejected(void **state)
{
    static const size_t reserved[] = {5, 6, 7, 35, 36, 37, 38, 39};
    uint8_t enc[CRYPT_HEADER_LEN];
    crypt_header h;

    (void)state;
    kat_header(&h, SEG);
    crypt_header_encode(&h, enc);
    assert_int_equal(crypt_header_decode(enc, &h), 0);

    enc[3] = 'G';
    assert_int_equal(crypt_header_decode(enc, &h), -1);
    enc[3] = 'F';
    enc[4] = 2;
    assert_int_equal(crypt_header_decode(enc, &h), -1);
    enc[4] = 0;
    assert_int_equal(crypt_header_decode(enc, &h), -1);
    enc[4] = 1;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        enc[reserved[i]] = 1;
        assert_int_equal(crypt_header_decode(enc, &h), -1);
        enc[reserved[i]] = 0;
    }

    /* Segment size bounds: [4096, 16 MiB]. */
    static const struct {
        uint32_t size;
        int rc;
    } sizes[] = {{0, -1}, {4095, -1}, {4096, 0}, {16u << 20, 0}, {(16u << 20) + 1, -1}, {UINT32_MAX, -1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        crypt_header t;
        kat_header(&t, sizes[i].size);
        crypt_header_encode(&t, enc);
        assert_int_equal(crypt_header_decode(enc, &h), sizes[i].rc);
    }
}

static void stream_refuses_a_header_with_out_of_range_segment_size(void **state)
{
    uint8_t key[CRYPT_KEY_LEN] = {0};
    crypt_header h;

    (void)state;
    kat_header(&h, 16);
    assert_null(crypt_stream_new(key, &h));
    kat_header(&h, UINT32_MAX);
    assert_null(crypt_stream_new(key, &h));
}

/* ---- sizes ---- */

static void sealed_size_adds_header_and_one_tag_per_segment(void **state)
{
    (void)state;
    assert_int_equal(crypt_sealed_size(1, SEG), 40 + 1 + 16);
    assert_int_equal(crypt_sealed_size(SEG, SEG), 40 + SEG + 16);
    assert_int_equal(crypt_sealed_size(SEG + 1, SEG), 40 + SEG + 1 + 32);
    assert_int_equal(crypt_sealed_size(3 * SEG, SEG), 40 + 3 * SEG + 48);
    assert_int_equal(crypt_sealed_size(0, SEG), 0);
    assert_int_equal(crypt_sealed_size(UINT64_MAX - 10, SEG), 0);
}

static void plain_size_inverts_sealed_size(void **state)
{
    static const uint32_t segs[] = {4096, SEG, 1u << 24};
    static const uint64_t plains[] = {1, 2, 15, 16, 17, 4095, 4096, 4097, 8192, 65535, 65536,
                                      65537, 3 * 65536 + 17, 1000000007, 1ull << 40};

    (void)state;
    for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
        for (size_t j = 0; j < sizeof plains / sizeof plains[0]; j++) {
            uint64_t back = 0, sealed = crypt_sealed_size(plains[j], segs[i]);
            assert_int_equal(crypt_plain_size(sealed, segs[i], &back), 0);
            assert_int_equal(back, plains[j]);
        }
    }
}

static void plain_size_rejects_sizes_no_file_can_have(void **state)
{
    uint64_t p;

    (void)state;
    assert_int_equal(crypt_plain_size(0, SEG, &p), -1);
    assert_int_equal(crypt_plain_size(CRYPT_HEADER_LEN, SEG, &p), -1);
    /* A last segment of only a tag, or less: no plaintext byte. */
    for (uint64_t extra = 1; extra <= CRYPT_TAG_LEN; extra++) {
        assert_int_equal(crypt_plain_size(CRYPT_HEADER_LEN + extra, SEG, &p), -1);
        assert_int_equal(crypt_plain_size(CRYPT_HEADER_LEN + SEG + 16 + extra, SEG, &p), -1);
    }
    assert_int_equal(crypt_plain_size(CRYPT_HEADER_LEN + 17, SEG, &p), 0);
    assert_int_equal(p, 1);
    assert_int_equal(crypt_plain_size(1000, 0, &p), -1);
}

/* ---- server secret ---- */

typedef struct {
    char dir[64];
    char path[128];
} secret_dir;

static int secret_setup(void **state)
{
    secret_dir *d = calloc(1, sizeof *d);

    assert_non_null(d);
    strcpy(d->dir, "/tmp/test_crypt.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->path, sizeof d->path, "%s/secret.key", d->dir);
    *state = d;
    return 0;
}

static int secret_teardown(void **state)
{
    secret_dir *d = *state;
    char sub[160];

    unlink(d->path);
    snprintf(sub, sizeof sub, "%s/volume/secret.key", d->dir);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/volume", d->dir);
    rmdir(sub);
    rmdir(d->dir);
    free(d);
    return 0;
}

static void secret_is_created_0600_and_reloaded_identical(void **state)
{
    secret_dir *d = *state;
    uint8_t a[CRYPT_SECRET_LEN], b[CRYPT_SECRET_LEN], zero[CRYPT_SECRET_LEN] = {0};
    char err[256];
    struct stat st;

    assert_int_equal(crypt_secret_load(d->path, a, err, sizeof err), 0);
    assert_int_equal(stat(d->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, CRYPT_SECRET_LEN);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(crypt_secret_load(d->path, b, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
}

static void secret_parent_directory_is_created_0700(void **state)
{
    secret_dir *d = *state;
    uint8_t s[CRYPT_SECRET_LEN];
    char path[160], err[256];
    struct stat st;

    snprintf(path, sizeof path, "%s/volume/secret.key", d->dir);
    assert_int_equal(crypt_secret_load(path, s, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/volume", d->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
}

static void secret_readable_by_others_is_refused(void **state)
{
    secret_dir *d = *state;
    uint8_t s[CRYPT_SECRET_LEN];
    char err[256], want[256];

    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), 0);
    assert_int_equal(chmod(d->path, 0644), 0);
    err[0] = '\0';
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), -1);
    snprintf(want, sizeof want, "SECRET_PATH=%s: readable by group or others (chmod 600)", d->path);
    assert_string_equal(err, want);
    assert_int_equal(chmod(d->path, 0620), 0);
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), -1);
    assert_int_equal(chmod(d->path, 0400), 0);
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), 0);
}

static void secret_of_the_wrong_size_is_refused(void **state)
{
    secret_dir *d = *state;
    uint8_t s[CRYPT_SECRET_LEN];
    char err[256];
    FILE *fp;

    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), 0);
    fp = fopen(d->path, "ab");
    assert_non_null(fp);
    fputc('x', fp);
    fclose(fp);
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECRET_PATH="));
    assert_non_null(strstr(err, d->path));
    assert_int_equal(truncate(d->path, 0), 0);
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), -1);
}

static void secret_path_that_is_a_directory_is_refused(void **state)
{
    secret_dir *d = *state;
    uint8_t s[CRYPT_SECRET_LEN];
    char err[256];

    assert_int_equal(mkdir(d->path, 0700), 0);
    assert_int_equal(crypt_secret_load(d->path, s, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECRET_PATH="));
    assert_int_equal(rmdir(d->path), 0);
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

#define WITH_FILE(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
#define WITH_DIR(t) cmocka_unit_test_setup_teardown(t, secret_setup, secret_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(id_is_the_first_16_bytes_of_hmac_sha256_in_hex),
        cmocka_unit_test(id_changes_with_the_key_and_with_the_secret),
        cmocka_unit_test(derive_is_hkdf_sha256_with_secret_and_salt_as_salt),
        cmocka_unit_test(derive_changes_with_the_upload_salt),
        cmocka_unit_test(blob_open_matches_gcm_spec_test_case_15),
        cmocka_unit_test(blob_round_trips_including_empty_plaintext),
        cmocka_unit_test(blob_with_any_flipped_bit_or_wrong_key_fails),
        cmocka_unit_test(blob_shorter_than_nonce_and_tag_fails),
        cmocka_unit_test(stream_matches_an_independent_implementation),
        cmocka_unit_test(stream_round_trips_one_byte),
        cmocka_unit_test(stream_round_trips_exactly_one_segment),
        cmocka_unit_test(stream_round_trips_one_segment_plus_one_byte),
        cmocka_unit_test(stream_round_trips_several_segments),
        WITH_FILE(untampered_fixture_opens),
        WITH_FILE(flipped_bit_anywhere_in_header_fails),
        WITH_FILE(flipped_bit_in_ciphertext_fails_authentication),
        WITH_FILE(flipped_bit_in_tag_fails_authentication),
        WITH_FILE(reordered_segments_fail_authentication),
        WITH_FILE(truncated_file_fails_authentication),
        WITH_FILE(extended_file_fails_authentication),
        WITH_FILE(wrong_key_fails_authentication),
        WITH_FILE(segment_opened_at_wrong_index_or_last_flag_fails_and_is_wiped),
        WITH_FILE(seal_refuses_short_non_last_empty_or_oversized_segments),
        cmocka_unit_test(header_encodes_and_decodes_to_the_same_fields),
        cmocka_unit_test(header_new_draws_a_fresh_nonce_prefix),
        cmocka_unit_test(header_with_bad_magic_version_reserved_or_segment_size_is_rejected),
        cmocka_unit_test(stream_refuses_a_header_with_out_of_range_segment_size),
        cmocka_unit_test(sealed_size_adds_header_and_one_tag_per_segment),
        cmocka_unit_test(plain_size_inverts_sealed_size),
        cmocka_unit_test(plain_size_rejects_sizes_no_file_can_have),
        WITH_DIR(secret_is_created_0600_and_reloaded_identical),
        WITH_DIR(secret_parent_directory_is_created_0700),
        WITH_DIR(secret_readable_by_others_is_refused),
        WITH_DIR(secret_of_the_wrong_size_is_refused),
        WITH_DIR(secret_path_that_is_a_directory_is_refused),
        cmocka_unit_test(hex_round_trips_and_unhex_accepts_only_exact_lowercase),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
