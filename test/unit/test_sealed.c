/* test_sealed.c - the contract of common/sealed.c, the one writer and the one reader of
 * the sealed-file format: known answers from an independent implementation, round trips
 * at every size that matters and however the plaintext is cut, every damage the format
 * must catch (flips, reordering, truncation, extension, wrong key, salt or size), and
 * the file-descriptor and memory sinks and sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "sealed.h"

#define SEG SEALED_SEGMENT_SIZE
#define TAG CRYPT_TAG_LEN
#define HDR SEALED_HEADER_LEN

/* Computed with python3's `cryptography` package (AESGCM), independently of this code:
 *   header = b"RZ0F" 01 000000 || be32(seg) || salt || prefix || 00*5,
 *            salt = bytes(range(0xa0, 0xb0)), prefix = 01..07
 *   each segment AESGCM(file key).encrypt(prefix || be32(i) || last, chunk, header)
 * with the file key of test_crypt.c's known answers. */
static const char KAT_FILE_KEY[] = "61909bb18028163081bc61023e898d216f7a4aa10021c8ab155a5c5bc4f5def0";
/* b"raven" sealed with segment size 4096: 40 + 5 + 16 bytes. */
static const char KAT_STREAM_RAVEN[] =
    "525a30460100000000001000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf010203040506070000000000"
    "f63640afbf602023be9a57a98c39e397b481b36526";
/* SHA-256 of bytes((i * 7) & 0xff for i in range(4099)) sealed with segment size 4096. */
static const char KAT_STREAM_TWO_SEGMENTS_SHA256[] =
    "bbbcc3341b18f2247fac511c5d21cdd17ec038e2cbdbdfd64a9863f8b14466b2";

/* The key fuzz/fuzz_sealed.c sealed its seeds under, with salt 07 x 16. */
static const uint8_t FUZZ_KEY[CRYPT_KEY_LEN] = {
    0x52, 0x5a, 0x30, 0x46, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x31, 0x32,
    0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
};

static void file_key(uint8_t key[CRYPT_KEY_LEN])
{
    assert_int_equal(crypt_unhex(KAT_FILE_KEY, strlen(KAT_FILE_KEY), key, CRYPT_KEY_LEN), 0);
}

static void kat_header(sealed_header *h, uint32_t segment_size)
{
    h->segment_size = segment_size;
    for (int i = 0; i < CRYPT_SALT_LEN; i++)
        h->salt[i] = (uint8_t)(0xa0 + i);
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

/* Seal pt through a memory sink, fed in pieces of piece bytes (0: all at once). */
static uint8_t *seal(const uint8_t key[CRYPT_KEY_LEN], const sealed_header *h, const uint8_t *pt, size_t len,
                     size_t piece, size_t *outlen)
{
    sealed_sink sink;
    sealed_writer *w;
    size_t off = 0;

    sealed_sink_mem(&sink);
    w = sealed_writer_new(key, h, &sink);
    assert_non_null(w);
    while (off < len) {
        size_t n = piece == 0 || len - off < piece ? len - off : piece;
        assert_int_equal(sealed_write(w, pt + off, n), SEALED_OK);
        off += n;
    }
    assert_int_equal(sealed_writer_finish(w), SEALED_OK);
    sealed_writer_free(w);
    assert_int_equal(sink.io.mem.len, sealed_file_size(len, h->segment_size));
    *outlen = sink.io.mem.len;
    return sink.io.mem.buf;
}

/* Open in and read it all, chunk segments at a time after a first read of one (as a
 * download does). SEALED_OK with out/outlen the plaintext, or the first failure. */
static int open_all(const uint8_t key[CRYPT_KEY_LEN], const uint8_t salt[CRYPT_SALT_LEN], const uint8_t *in, size_t len,
                    uint64_t plain_size, uint32_t chunk, uint8_t *out, size_t *outlen)
{
    sealed_source src;
    sealed_reader *r;
    uint64_t next = 0;
    size_t got = 0, n;
    uint8_t *buf;
    int rc;

    sealed_source_mem(&src, in, len);
    rc = sealed_reader_open(&r, key, &src, salt, plain_size, chunk);
    if (rc != SEALED_OK) {
        assert_null(r);
        return rc;
    }
    buf = malloc(sealed_reader_plain_max(r));
    assert_non_null(buf);
    while (rc == SEALED_OK && next < sealed_reader_segments(r)) {
        uint64_t left = sealed_reader_segments(r) - next;
        uint32_t count = next == 0 ? 1 : (left < chunk ? (uint32_t)left : chunk);
        rc = sealed_read(r, next, count, buf, &n);
        if (rc == SEALED_OK) {
            memcpy(out + got, buf, n);
            got += n;
            next += count;
        }
    }
    free(buf);
    sealed_reader_free(r);
    *outlen = got;
    return rc;
}

/* ---- known answers: the format has not moved by one byte ---- */

static void the_writer_matches_an_independent_implementation(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], want[61], digest[SHA256_DIGEST_LENGTH], *pt, *sealed;
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    sealed_header h;
    size_t len;

    (void)state;
    file_key(key);
    kat_header(&h, 4096);
    assert_int_equal(crypt_unhex(KAT_STREAM_RAVEN, strlen(KAT_STREAM_RAVEN), want, sizeof want), 0);
    sealed = seal(key, &h, (const uint8_t *)"raven", 5, 0, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(sealed, want, sizeof want);
    free(sealed);

    /* Two segments check the counter's byte order and that only the last is flagged. */
    pt = pattern(4099);
    sealed = seal(key, &h, pt, 4099, 1000, &len);
    SHA256(sealed, len, digest);
    crypt_hex(digest, sizeof digest, hex);
    assert_string_equal(hex, KAT_STREAM_TWO_SEGMENTS_SHA256);
    free(sealed);
    free(pt);
}

static void the_reader_opens_a_file_of_an_independent_implementation(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], file[61], out[5];
    sealed_header h;
    size_t outlen;

    (void)state;
    file_key(key);
    kat_header(&h, 4096);
    assert_int_equal(crypt_unhex(KAT_STREAM_RAVEN, strlen(KAT_STREAM_RAVEN), file, sizeof file), 0);
    assert_int_equal(open_all(key, h.salt, file, sizeof file, 5, 4, out, &outlen), SEALED_OK);
    assert_int_equal(outlen, 5);
    assert_memory_equal(out, "raven", 5);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 16);

    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    assert_true(feof(f));
    fclose(f);
    return buf;
}

/* Files sealed when the fuzzer was written, by the code before this module. */
static void the_fuzzer_seeds_open_with_the_production_reader(void **state)
{
    static const struct {
        const char *name;
        int rc;
    } seeds[] = {{"one_byte_default_segment", SEALED_OK},
                 {"one_segment", SEALED_OK},
                 {"three_segments", SEALED_OK},
                 {"three_segments_truncated", SEALED_ERR_AUTH}};
    uint8_t salt[CRYPT_SALT_LEN], out[1 << 16];
    char path[128];

    (void)state;
    memset(salt, 0x07, sizeof salt);
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        sealed_header h;
        uint64_t plain;
        size_t len, outlen;
        snprintf(path, sizeof path, "fuzz/corpus/sealed/%s", seeds[i].name);
        uint8_t *file = slurp(path, &len);
        assert_true(len >= HDR);
        assert_int_equal(sealed_header_decode(file, &h), 0);
        assert_int_equal(sealed_plain_size(len, h.segment_size, &plain), 0);
        assert_int_equal(open_all(FUZZ_KEY, salt, file, len, plain, 4, out, &outlen), seeds[i].rc);
        if (seeds[i].rc == SEALED_OK)
            assert_int_equal(outlen, plain);
        free(file);
    }
}

/* ---- round trips ---- */

/* Every way of cutting the plaintext gives the same file, and every chunking of the
 * reads gives back the plaintext. */
static void round_trip(size_t len)
{
    static const size_t pieces[] = {0, 1, 4096, SEG - 1, SEG, SEG + 1};
    static const uint32_t chunks[] = {1, 3, 4};
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN], *pt = pattern(len), *out = malloc(len), *first = NULL;
    sealed_header h;
    size_t firstlen = 0;

    assert_non_null(out);
    file_key(key);
    assert_int_equal(crypt_random(salt, sizeof salt), 0);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        size_t sealedlen;
        uint8_t *sealed = seal(key, &h, pt, len, pieces[i], &sealedlen);
        if (first == NULL) {
            first = sealed;
            firstlen = sealedlen;
            continue;
        }
        assert_int_equal(sealedlen, firstlen);
        assert_memory_equal(sealed, first, firstlen);
        free(sealed);
    }
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        size_t outlen = 0;
        memset(out, 0, len);
        assert_int_equal(open_all(key, salt, first, firstlen, len, chunks[i], out, &outlen), SEALED_OK);
        assert_int_equal(outlen, len);
        assert_memory_equal(out, pt, len);
    }
    free(first);
    free(out);
    free(pt);
}

static void a_file_of_one_byte_round_trips(void **state)
{
    (void)state;
    round_trip(1);
}

static void a_file_of_exactly_one_segment_round_trips(void **state)
{
    (void)state;
    round_trip(SEG);
}

static void a_file_of_one_segment_and_one_byte_round_trips(void **state)
{
    (void)state;
    round_trip(SEG + 1);
}

static void a_file_of_an_exact_multiple_of_segments_round_trips(void **state)
{
    (void)state;
    round_trip(4 * SEG);
}

static void files_of_odd_sizes_round_trip(void **state)
{
    (void)state;
    round_trip(17);
    round_trip(SEG - 1);
    round_trip(3 * SEG + 17);
    round_trip(5 * SEG + 12345);
}

static void the_reader_reads_segments_in_any_order(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0}, *pt = pattern(2 * SEG + 1000), *sealed, *out;
    static const uint64_t order[] = {2, 0, 1, 2};
    sealed_source src;
    sealed_reader *r;
    sealed_header h;
    size_t len, n;

    (void)state;
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed = seal(key, &h, pt, 2 * SEG + 1000, 0, &len);
    sealed_source_mem(&src, sealed, len);
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 2 * SEG + 1000, 1), SEALED_OK);
    assert_int_equal(sealed_reader_segments(r), 3);
    assert_int_equal(sealed_reader_plain_max(r), SEG);
    out = malloc(SEG);
    assert_non_null(out);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        assert_int_equal(sealed_read(r, order[i], 1, out, &n), SEALED_OK);
        assert_int_equal(n, order[i] == 2 ? 1000 : SEG);
        assert_memory_equal(out, pt + order[i] * SEG, n);
    }
    sealed_reader_free(r);
    free(out);
    free(sealed);
    free(pt);
}

/* What a download does: chunks of up to four segments, each opened where it was read;
 * the spans, read in order, are the file. */
static void reads_in_place_give_the_plaintext_in_spans_within_the_buffer(void **state)
{
    static const size_t sizes[] = {1, SEG, 2 * SEG + 1000, 4 * SEG, 9 * SEG + 5};
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0};

    (void)state;
    file_key(key);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k], len, got = 0, n;
        uint8_t *pt = pattern(size), *sealed, *buf;
        struct iovec spans[4];
        sealed_source src;
        sealed_reader *r;
        sealed_header h;

        assert_int_equal(sealed_header_new(&h, salt), 0);
        sealed = seal(key, &h, pt, size, 0, &len);
        sealed_source_mem(&src, sealed, len);
        assert_int_equal(sealed_reader_open(&r, key, &src, salt, size, 4), SEALED_OK);
        uint64_t most = sealed_reader_segments(r) < 4 ? sealed_reader_segments(r) : 4;
        assert_int_equal(sealed_reader_buf_max(r), sealed_reader_plain_max(r) + most * TAG);
        assert_int_equal(sealed_buf_max(size, h.segment_size, 4), sealed_reader_buf_max(r));
        buf = malloc(sealed_reader_buf_max(r));
        assert_non_null(buf);
        for (uint64_t next = 0; next < sealed_reader_segments(r);) {
            uint64_t left = sealed_reader_segments(r) - next;
            uint32_t count = left < 4 ? (uint32_t)left : 4;
            assert_int_equal(sealed_read_in_place(r, next, count, buf, spans, &n), SEALED_OK);
            size_t sum = 0;
            for (uint32_t i = 0; i < count; i++) {
                const uint8_t *at = spans[i].iov_base;
                assert_true(at >= buf && at + spans[i].iov_len <= buf + sealed_reader_buf_max(r));
                assert_memory_equal(at, pt + got + sum, spans[i].iov_len);
                sum += spans[i].iov_len;
            }
            assert_int_equal(sum, n);
            got += n;
            next += count;
        }
        assert_int_equal(got, size);
        sealed_reader_free(r);
        free(buf);
        free(sealed);
        free(pt);
    }
}

/* One flipped byte in the third segment of a four-segment read: the call fails, and the
 * buffer keeps none of the plaintext of the two authentic segments before it. */
static void a_read_in_place_with_a_damaged_segment_leaves_no_plaintext(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0}, *pt = pattern(4 * SEG), *sealed, *buf;
    struct iovec spans[4];
    sealed_source src;
    sealed_reader *r;
    sealed_header h;
    size_t len, n = 1;

    (void)state;
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed = seal(key, &h, pt, 4 * SEG, 0, &len);
    sealed[HDR + 2 * (SEG + TAG) + 100] ^= 1;
    sealed_source_mem(&src, sealed, len);
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 4 * SEG, 4), SEALED_OK);
    buf = malloc(sealed_reader_buf_max(r));
    assert_non_null(buf);
    assert_int_equal(sealed_read_in_place(r, 0, 4, buf, spans, &n), SEALED_ERR_AUTH);
    assert_int_equal(n, 0);
    assert_null(memmem(buf, sealed_reader_buf_max(r), pt, 64));
    assert_null(memmem(buf, sealed_reader_buf_max(r), pt + SEG, 64));
    sealed_reader_free(r);
    free(buf);
    free(sealed);
    free(pt);
}

static void reads_past_the_end_or_over_the_bound_are_refused(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0}, *pt = pattern(2 * SEG + 1000), *sealed, *out;
    sealed_source src;
    sealed_reader *r;
    sealed_header h;
    size_t len, n = 1;

    (void)state;
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed = seal(key, &h, pt, 2 * SEG + 1000, 0, &len);
    sealed_source_mem(&src, sealed, len);
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 2 * SEG + 1000, 2), SEALED_OK);
    assert_int_equal(sealed_reader_plain_max(r), 2 * SEG);
    out = malloc(2 * SEG);
    assert_non_null(out);
    assert_int_equal(sealed_read(r, 0, 3, out, &n), SEALED_ERR_INTERNAL);
    assert_int_equal(n, 0);
    assert_int_equal(sealed_read(r, 2, 2, out, &n), SEALED_ERR_INTERNAL);
    assert_int_equal(sealed_read(r, 3, 1, out, &n), SEALED_ERR_INTERNAL);
    assert_int_equal(sealed_read(r, 0, 0, out, &n), SEALED_ERR_INTERNAL);
    assert_int_equal(sealed_read(r, 1, 2, out, &n), SEALED_OK);
    assert_int_equal(n, SEG + 1000);
    sealed_reader_free(r);
    /* A bound larger than the file is cut to it: the whole file is one read. */
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 2 * SEG + 1000, 100), SEALED_OK);
    assert_int_equal(sealed_reader_plain_max(r), 2 * SEG + 1000);
    sealed_reader_free(r);
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 2 * SEG + 1000, 0), SEALED_ERR_INTERNAL);
    free(out);
    free(sealed);
    free(pt);
}

/* ---- the writer ---- */

static void the_writer_writes_a_full_segment_only_once_more_data_shows_it_is_not_last(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0}, *pt = pattern(SEG + 1);
    sealed_sink sink;
    sealed_writer *w;
    sealed_header h;

    (void)state;
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed_sink_mem(&sink);
    w = sealed_writer_new(key, &h, &sink);
    assert_non_null(w);
    assert_int_equal(sealed_write(w, pt, SEG), SEALED_OK);
    assert_int_equal(sink.io.mem.len, 0);
    assert_int_equal(sealed_write(w, pt + SEG, 1), SEALED_OK);
    assert_int_equal(sink.io.mem.len, HDR + SEG + TAG);
    assert_int_equal(sealed_write(w, pt, 0), SEALED_OK);
    assert_int_equal(sealed_writer_finish(w), SEALED_OK);
    assert_int_equal(sink.io.mem.len, sealed_file_size(SEG + 1, SEG));
    sealed_writer_free(w);
    free(sink.io.mem.buf);
    free(pt);
}

static void the_writer_refuses_an_empty_file_and_anything_after_finish(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0};
    sealed_sink sink;
    sealed_writer *w;
    sealed_header h;

    (void)state;
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed_sink_mem(&sink);
    w = sealed_writer_new(key, &h, &sink);
    assert_non_null(w);
    assert_int_equal(sealed_writer_finish(w), SEALED_ERR_INTERNAL);
    assert_int_equal(sink.io.mem.len, 0);
    assert_int_equal(sealed_write(w, (const uint8_t *)"x", 1), SEALED_OK);
    assert_int_equal(sealed_writer_finish(w), SEALED_OK);
    assert_int_equal(sealed_write(w, (const uint8_t *)"x", 1), SEALED_ERR_INTERNAL);
    assert_int_equal(sealed_writer_finish(w), SEALED_ERR_INTERNAL);
    assert_int_equal(sink.io.mem.len, HDR + 1 + TAG);
    sealed_writer_free(w);
    free(sink.io.mem.buf);
}

static void the_writer_refuses_a_header_with_an_out_of_range_segment_size(void **state)
{
    uint8_t key[CRYPT_KEY_LEN];
    sealed_sink sink;
    sealed_header h;
    sealed_writer *w;

    (void)state;
    file_key(key);
    sealed_sink_mem(&sink);
    kat_header(&h, 4095);
    assert_null(sealed_writer_new(key, &h, &sink));
    kat_header(&h, (16u << 20) + 1);
    assert_null(sealed_writer_new(key, &h, &sink));
    kat_header(&h, 4096);
    w = sealed_writer_new(key, &h, &sink);
    assert_non_null(w);
    sealed_writer_free(w);
}

static void a_full_disk_is_an_io_error_with_enospc_and_ends_the_writer(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN] = {0}, *pt = pattern(SEG + 1);
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    sealed_sink sink;
    sealed_writer *w;
    sealed_header h;

    (void)state;
    if (fd < 0)
        skip();
    file_key(key);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed_sink_fd(&sink, fd);
    w = sealed_writer_new(key, &h, &sink);
    assert_non_null(w);
    assert_int_equal(sealed_write(w, pt, SEG + 1), SEALED_ERR_IO);
    assert_int_equal(sink.err, ENOSPC);
    /* Part of a file at most went out: the writer takes nothing more. */
    assert_int_equal(sealed_write(w, pt, 1), SEALED_ERR_INTERNAL);
    assert_int_equal(sealed_writer_finish(w), SEALED_ERR_INTERNAL);
    sealed_writer_free(w);
    close(fd);
    free(pt);
}

/* ---- files on disk: the sink and source upload and download use ---- */

static int temp_file(char *path, size_t len)
{
    int fd;

    snprintf(path, len, "/tmp/test_sealed.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    return fd;
}

static void a_file_written_through_a_descriptor_reads_back_through_one(void **state)
{
    uint8_t key[CRYPT_KEY_LEN], salt[CRYPT_SALT_LEN], *pt = pattern(3 * SEG + 5), *out = malloc(3 * SEG + 5);
    sealed_sink sink;
    sealed_source src;
    sealed_writer *w;
    sealed_reader *r;
    sealed_header h;
    char path[64];
    size_t n;
    int fd = temp_file(path, sizeof path);

    (void)state;
    assert_non_null(out);
    file_key(key);
    assert_int_equal(crypt_random(salt, sizeof salt), 0);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    sealed_sink_fd(&sink, fd);
    w = sealed_writer_new(key, &h, &sink);
    assert_non_null(w);
    assert_int_equal(sealed_write(w, pt, 3 * SEG + 5), SEALED_OK);
    assert_int_equal(sealed_writer_finish(w), SEALED_OK);
    sealed_writer_free(w);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)sealed_file_size(3 * SEG + 5, SEG));

    sealed_source_fd(&src, fd);
    assert_int_equal(sealed_reader_open(&r, key, &src, salt, 3 * SEG + 5, 4), SEALED_OK);
    assert_int_equal(sealed_read(r, 0, 4, out, &n), SEALED_OK);
    assert_int_equal(n, 3 * SEG + 5);
    assert_memory_equal(out, pt, n);
    /* Cut after it was opened (the size was taken): the read finds it short. */
    assert_int_equal(ftruncate(fd, HDR + SEG), 0);
    assert_int_equal(sealed_read(r, 0, 2, out, &n), SEALED_ERR_IO);
    assert_int_equal(src.err, EIO);
    sealed_reader_free(r);
    close(fd);
    unlink(path);
    free(out);
    free(pt);
}

/* ---- damage: a fixture of a three-segment file (2 full + a partial) ---- */

typedef struct {
    uint8_t key[CRYPT_KEY_LEN];
    uint8_t salt[CRYPT_SALT_LEN];
    uint8_t *pt, *sealed, *out;
    size_t ptlen, len, outlen;
} fixture;

#define FIX_PLAIN (2 * SEG + 1000)
#define SEG_AT(i) (HDR + (size_t)(i) * (SEG + TAG))

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sealed_header h;

    assert_non_null(f);
    file_key(f->key);
    assert_int_equal(crypt_random(f->salt, sizeof f->salt), 0);
    assert_int_equal(sealed_header_new(&h, f->salt), 0);
    f->ptlen = FIX_PLAIN;
    f->pt = pattern(f->ptlen);
    f->sealed = seal(f->key, &h, f->pt, f->ptlen, 0, &f->len);
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

/* Open as a download does: the record says the salt and the plaintext size. */
static int open_as_recorded(fixture *f, const uint8_t *sealed, size_t len)
{
    return open_all(f->key, f->salt, sealed, len, f->ptlen, 4, f->out, &f->outlen);
}

/* Open with a record that agrees with whatever length the file has now, so only the
 * segments' authentication stands between the damage and the reader. */
static int open_as_its_length_says(fixture *f, const uint8_t *sealed, size_t len)
{
    uint64_t plain;

    if (sealed_plain_size(len, SEG, &plain) != 0)
        return SEALED_ERR_FORMAT;
    return open_all(f->key, f->salt, sealed, len, plain, 4, f->out, &f->outlen);
}

static void an_untampered_file_opens(void **state)
{
    fixture *f = *state;

    assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_OK);
    assert_int_equal(f->outlen, f->ptlen);
    assert_memory_equal(f->out, f->pt, f->ptlen);
}

static void a_flipped_bit_anywhere_in_the_header_fails(void **state)
{
    fixture *f = *state;

    for (size_t i = 0; i < HDR; i++) {
        for (int bit = 0; bit < 8; bit++) {
            f->sealed[i] ^= (uint8_t)(1 << bit);
            int rc = open_as_recorded(f, f->sealed, f->len);
            f->sealed[i] ^= (uint8_t)(1 << bit);
            /* The salt (12..27) is checked against the record before any segment is
             * read; the nonce prefix (28..34) by every segment's tag, as the header is
             * every segment's AAD; the rest by the header's rules or the length. */
            if (i >= 12 && i < 28)
                assert_int_equal(rc, SEALED_ERR_FORMAT);
            else if (i >= 28 && i < 35)
                assert_int_equal(rc, SEALED_ERR_AUTH);
            else
                assert_int_not_equal(rc, SEALED_OK);
        }
    }
}

static void a_flipped_bit_in_ciphertext_fails_authentication(void **state)
{
    fixture *f = *state;
    size_t where[] = {SEG_AT(0), SEG_AT(0) + 12345, SEG_AT(1) + SEG - 1, SEG_AT(2), f->len - 17};

    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        f->sealed[where[i]] ^= 0x40;
        assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_ERR_AUTH);
        f->sealed[where[i]] ^= 0x40;
    }
}

static void a_flipped_bit_in_a_tag_fails_authentication(void **state)
{
    fixture *f = *state;
    size_t where[] = {SEG_AT(1) - 16, SEG_AT(1) - 1, SEG_AT(2) - 8, f->len - 16, f->len - 1};

    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        f->sealed[where[i]] ^= 0x01;
        assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_ERR_AUTH);
        f->sealed[where[i]] ^= 0x01;
    }
}

static void reordered_segments_fail_authentication(void **state)
{
    fixture *f = *state;
    size_t stride = SEG + TAG;
    uint8_t *tmp = malloc(stride);

    assert_non_null(tmp);
    memcpy(tmp, f->sealed + SEG_AT(0), stride);
    memcpy(f->sealed + SEG_AT(0), f->sealed + SEG_AT(1), stride);
    memcpy(f->sealed + SEG_AT(1), tmp, stride);
    assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_ERR_AUTH);
    free(tmp);
}

static void a_truncated_file_is_refused_by_its_length(void **state)
{
    fixture *f = *state;
    size_t cuts[] = {SEG_AT(2), SEG_AT(1), f->len - 1, SEG_AT(2) + 17, HDR, HDR - 1, 0};

    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        assert_int_equal(open_as_recorded(f, f->sealed, cuts[i]), SEALED_ERR_FORMAT);
}

static void a_truncated_file_fails_authentication_even_with_a_record_that_agrees(void **state)
{
    fixture *f = *state;

    /* Dropping the last segment leaves a well-formed size whose new last segment was
     * sealed with last = 0. */
    assert_int_equal(open_as_its_length_says(f, f->sealed, SEG_AT(2)), SEALED_ERR_AUTH);
    assert_int_equal(open_as_its_length_says(f, f->sealed, SEG_AT(1)), SEALED_ERR_AUTH);
    /* A cut inside a segment either leaves an impossible size or breaks a tag. */
    assert_int_not_equal(open_as_its_length_says(f, f->sealed, f->len - 1), SEALED_OK);
    assert_int_equal(open_as_its_length_says(f, f->sealed, SEG_AT(2) + 17), SEALED_ERR_AUTH);
    assert_int_equal(open_as_its_length_says(f, f->sealed, HDR), SEALED_ERR_FORMAT);
}

static void an_extended_file_fails_even_with_a_record_that_agrees(void **state)
{
    fixture *f = *state;
    size_t stride = SEG + TAG, len;
    uint8_t *longer = malloc(f->len + stride), *whole;
    sealed_header h;

    assert_non_null(longer);
    memcpy(longer, f->sealed, f->len);
    memcpy(longer + f->len, f->sealed + SEG_AT(0), stride);
    assert_int_equal(open_as_recorded(f, longer, f->len + stride), SEALED_ERR_FORMAT);
    /* A whole segment appended after a partial last one shifts every boundary after it. */
    assert_int_equal(open_as_its_length_says(f, longer, f->len + stride), SEALED_ERR_AUTH);
    memcpy(longer + f->len, "junk", 4);
    assert_int_equal(open_as_recorded(f, longer, f->len + 4), SEALED_ERR_FORMAT);
    assert_int_equal(open_as_its_length_says(f, longer, f->len + 4), SEALED_ERR_AUTH);
    free(longer);

    /* With boundaries intact, the old last segment now sits in a non-last position and
     * its last flag no longer matches. */
    assert_int_equal(sealed_header_decode(f->sealed, &h), 0);
    whole = seal(f->key, &h, f->pt, 2 * SEG, 0, &len);
    longer = malloc(len + stride);
    assert_non_null(longer);
    memcpy(longer, whole, len);
    assert_int_equal(open_as_its_length_says(f, longer, len), SEALED_OK);
    memcpy(longer + len, whole + SEG_AT(0), stride);
    assert_int_equal(open_as_its_length_says(f, longer, len + stride), SEALED_ERR_AUTH);
    free(longer);
    free(whole);
}

static void the_wrong_key_fails_authentication(void **state)
{
    fixture *f = *state;

    f->key[CRYPT_KEY_LEN - 1] ^= 0x01;
    assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_ERR_AUTH);
    f->key[CRYPT_KEY_LEN - 1] ^= 0x01;
}

static void the_wrong_salt_is_refused_before_any_segment(void **state)
{
    fixture *f = *state;

    f->salt[0] ^= 0x01;
    assert_int_equal(open_as_recorded(f, f->sealed, f->len), SEALED_ERR_FORMAT);
    f->salt[0] ^= 0x01;
}

static void the_wrong_size_is_refused_before_any_segment(void **state)
{
    fixture *f = *state;
    static const uint64_t sizes[] = {FIX_PLAIN - 1, FIX_PLAIN + 1, 0, 2 * SEG, 3 * SEG, UINT64_MAX};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_int_equal(open_all(f->key, f->salt, f->sealed, f->len, sizes[i], 4, f->out, &f->outlen),
                         SEALED_ERR_FORMAT);
}

static void a_failed_read_leaves_nothing_in_the_callers_buffer(void **state)
{
    fixture *f = *state;
    sealed_source src;
    sealed_reader *r;
    size_t n = 1;

    f->sealed[SEG_AT(2) + 3] ^= 0x01;
    sealed_source_mem(&src, f->sealed, f->len);
    assert_int_equal(sealed_reader_open(&r, f->key, &src, f->salt, f->ptlen, 3), SEALED_OK);
    memset(f->out, 0x55, f->ptlen);
    assert_int_equal(sealed_read(r, 0, 3, f->out, &n), SEALED_ERR_AUTH);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < f->ptlen; i++)
        assert_int_equal(f->out[i], 0);
    /* The segments before the damage still read on their own. */
    assert_int_equal(sealed_read(r, 0, 2, f->out, &n), SEALED_OK);
    assert_int_equal(n, 2 * SEG);
    assert_memory_equal(f->out, f->pt, n);
    sealed_reader_free(r);
}

/* ---- header ---- */

static void the_header_encodes_and_decodes_to_the_same_fields(void **state)
{
    uint8_t salt[CRYPT_SALT_LEN], enc[HDR];
    sealed_header h, back;

    (void)state;
    memset(salt, 0x5a, sizeof salt);
    assert_int_equal(sealed_header_new(&h, salt), 0);
    assert_int_equal(h.segment_size, SEG);
    sealed_header_encode(&h, enc);
    assert_memory_equal(enc, "RZ0F\x01\0\0\0\0\x01\0\0", 12);
    assert_int_equal(sealed_header_decode(enc, &back), 0);
    assert_int_equal(back.segment_size, h.segment_size);
    assert_memory_equal(back.salt, salt, CRYPT_SALT_LEN);
    assert_memory_equal(back.nonce_prefix, h.nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

static void a_new_header_draws_a_fresh_nonce_prefix(void **state)
{
    uint8_t salt[CRYPT_SALT_LEN] = {0};
    sealed_header a, b;

    (void)state;
    assert_int_equal(sealed_header_new(&a, salt), 0);
    assert_int_equal(sealed_header_new(&b, salt), 0);
    assert_memory_not_equal(a.nonce_prefix, b.nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

static void a_header_with_bad_magic_version_reserved_or_segment_size_is_rejected(void **state)
{
    static const size_t reserved[] = {5, 6, 7, 35, 36, 37, 38, 39};
    uint8_t enc[HDR];
    sealed_header h;

    (void)state;
    kat_header(&h, SEG);
    sealed_header_encode(&h, enc);
    assert_int_equal(sealed_header_decode(enc, &h), 0);

    enc[3] = 'G';
    assert_int_equal(sealed_header_decode(enc, &h), -1);
    enc[3] = 'F';
    enc[4] = 2;
    assert_int_equal(sealed_header_decode(enc, &h), -1);
    enc[4] = 0;
    assert_int_equal(sealed_header_decode(enc, &h), -1);
    enc[4] = 1;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        enc[reserved[i]] = 1;
        assert_int_equal(sealed_header_decode(enc, &h), -1);
        enc[reserved[i]] = 0;
    }

    /* Segment size bounds: [4096, 16 MiB]. */
    static const struct {
        uint32_t size;
        int rc;
    } sizes[] = {{0, -1}, {4095, -1}, {4096, 0}, {16u << 20, 0}, {(16u << 20) + 1, -1}, {UINT32_MAX, -1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sealed_header t;
        kat_header(&t, sizes[i].size);
        sealed_header_encode(&t, enc);
        assert_int_equal(sealed_header_decode(enc, &h), sizes[i].rc);
    }
}

/* ---- sizes ---- */

static void the_file_size_adds_the_header_and_one_tag_per_segment(void **state)
{
    (void)state;
    assert_int_equal(sealed_file_size(1, SEG), 40 + 1 + 16);
    assert_int_equal(sealed_file_size(SEG, SEG), 40 + SEG + 16);
    assert_int_equal(sealed_file_size(SEG + 1, SEG), 40 + SEG + 1 + 32);
    assert_int_equal(sealed_file_size(3 * SEG, SEG), 40 + 3 * SEG + 48);
    assert_int_equal(sealed_file_size(0, SEG), 0);
    assert_int_equal(sealed_file_size(UINT64_MAX - 10, SEG), 0);
    /* 2^32 segments is the most a 32-bit counter numbers; one byte more is none. */
    assert_int_equal(sealed_file_size((uint64_t)4096 << 32, 4096), 40 + ((uint64_t)4096 << 32) + ((uint64_t)16 << 32));
    assert_int_equal(sealed_file_size(((uint64_t)4096 << 32) + 1, 4096), 0);
}

static void the_plain_size_inverts_the_file_size(void **state)
{
    static const uint32_t segs[] = {4096, SEG, 1u << 24};
    static const uint64_t plains[] = {1, 2, 15, 16, 17, 4095, 4096, 4097, 8192, 65535, 65536,
                                      65537, 3 * 65536 + 17, 1000000007, 1ull << 40};

    (void)state;
    for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
        for (size_t j = 0; j < sizeof plains / sizeof plains[0]; j++) {
            uint64_t back = 0, sealed = sealed_file_size(plains[j], segs[i]);
            assert_int_equal(sealed_plain_size(sealed, segs[i], &back), 0);
            assert_int_equal(back, plains[j]);
        }
    }
}

static void the_plain_size_rejects_lengths_no_file_can_have(void **state)
{
    uint64_t p;

    (void)state;
    assert_int_equal(sealed_plain_size(0, SEG, &p), -1);
    assert_int_equal(sealed_plain_size(HDR, SEG, &p), -1);
    /* A last segment of only a tag, or less: no plaintext byte. */
    for (uint64_t extra = 1; extra <= TAG; extra++) {
        assert_int_equal(sealed_plain_size(HDR + extra, SEG, &p), -1);
        assert_int_equal(sealed_plain_size(HDR + SEG + 16 + extra, SEG, &p), -1);
    }
    assert_int_equal(sealed_plain_size(HDR + 17, SEG, &p), 0);
    assert_int_equal(p, 1);
    assert_int_equal(sealed_plain_size(1000, 0, &p), -1);
}

#define WITH_FILE(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_writer_matches_an_independent_implementation),
        cmocka_unit_test(the_reader_opens_a_file_of_an_independent_implementation),
        cmocka_unit_test(the_fuzzer_seeds_open_with_the_production_reader),
        cmocka_unit_test(a_file_of_one_byte_round_trips),
        cmocka_unit_test(a_file_of_exactly_one_segment_round_trips),
        cmocka_unit_test(a_file_of_one_segment_and_one_byte_round_trips),
        cmocka_unit_test(a_file_of_an_exact_multiple_of_segments_round_trips),
        cmocka_unit_test(files_of_odd_sizes_round_trip),
        cmocka_unit_test(the_reader_reads_segments_in_any_order),
        cmocka_unit_test(reads_in_place_give_the_plaintext_in_spans_within_the_buffer),
        cmocka_unit_test(a_read_in_place_with_a_damaged_segment_leaves_no_plaintext),
        cmocka_unit_test(reads_past_the_end_or_over_the_bound_are_refused),
        cmocka_unit_test(the_writer_writes_a_full_segment_only_once_more_data_shows_it_is_not_last),
        cmocka_unit_test(the_writer_refuses_an_empty_file_and_anything_after_finish),
        cmocka_unit_test(the_writer_refuses_a_header_with_an_out_of_range_segment_size),
        cmocka_unit_test(a_full_disk_is_an_io_error_with_enospc_and_ends_the_writer),
        cmocka_unit_test(a_file_written_through_a_descriptor_reads_back_through_one),
        WITH_FILE(an_untampered_file_opens),
        WITH_FILE(a_flipped_bit_anywhere_in_the_header_fails),
        WITH_FILE(a_flipped_bit_in_ciphertext_fails_authentication),
        WITH_FILE(a_flipped_bit_in_a_tag_fails_authentication),
        WITH_FILE(reordered_segments_fail_authentication),
        WITH_FILE(a_truncated_file_is_refused_by_its_length),
        WITH_FILE(a_truncated_file_fails_authentication_even_with_a_record_that_agrees),
        WITH_FILE(an_extended_file_fails_even_with_a_record_that_agrees),
        WITH_FILE(the_wrong_key_fails_authentication),
        WITH_FILE(the_wrong_salt_is_refused_before_any_segment),
        WITH_FILE(the_wrong_size_is_refused_before_any_segment),
        WITH_FILE(a_failed_read_leaves_nothing_in_the_callers_buffer),
        cmocka_unit_test(the_header_encodes_and_decodes_to_the_same_fields),
        cmocka_unit_test(a_new_header_draws_a_fresh_nonce_prefix),
        cmocka_unit_test(a_header_with_bad_magic_version_reserved_or_segment_size_is_rejected),
        cmocka_unit_test(the_file_size_adds_the_header_and_one_tag_per_segment),
        cmocka_unit_test(the_plain_size_inverts_the_file_size),
        cmocka_unit_test(the_plain_size_rejects_lengths_no_file_can_have),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
