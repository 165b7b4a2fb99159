/* fuzz_sealed.c - libFuzzer target for common/sealed.c, the production reader and
 * writer: any input is a stored file opened by the reader as a download opens it; short
 * inputs are also sealed by the writer, cut into pieces the input chooses, and must read
 * back to themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sealed.h"

/* The seeds in fuzz/corpus/sealed/ were sealed under this key and salt 07 x 16, so
 * mutations start from files that authenticate. */
static const uint8_t fuzz_key[CRYPT_KEY_LEN] = {
    0x52, 0x5a, 0x30, 0x46, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x31, 0x32,
    0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
};
static const uint8_t fuzz_salt[CRYPT_SALT_LEN] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

#define ROUND_TRIP_MAX (4 * 4096 + 100)
#define CHUNK_SEGMENTS 4 /* as a download reads */

/* Read every segment, one then CHUNK_SEGMENTS at a time as a download does, stopping at
 * the first failure as a download stops sending; SEALED_OK only if all of it opened.
 * out gets the plaintext. */
static int read_all(sealed_reader *r, uint8_t *out, uint64_t *outlen)
{
    uint64_t next = 0, segments = sealed_reader_segments(r);
    size_t n;

    *outlen = 0;
    while (next < segments) {
        uint32_t count = next == 0 ? 1 : CHUNK_SEGMENTS;
        if (segments - next < count)
            count = (uint32_t)(segments - next);
        int rc = sealed_read(r, next, count, out + *outlen, &n);
        if (rc != SEALED_OK)
            return rc;
        if (n > sealed_reader_plain_max(r))
            abort();
        *outlen += n;
        next += count;
    }
    return SEALED_OK;
}

/* The record a download would have: the plaintext size the length implies. A record
 * that disagrees with the length never opens. */
static void open_as_download(const uint8_t *data, size_t size)
{
    sealed_source src;
    sealed_header h;
    sealed_reader *r;
    uint64_t plain, got;
    uint8_t *out;
    int rc;

    sealed_source_mem(&src, data, size);
    /* No file is as long as its plaintext, so this record is always wrong. */
    if (sealed_reader_open(&r, fuzz_key, &src, fuzz_salt, size, CHUNK_SEGMENTS) != SEALED_ERR_FORMAT || r != NULL)
        abort();
    if (size < SEALED_HEADER_LEN || sealed_header_decode(data, &h) != 0 ||
        sealed_plain_size(size, h.segment_size, &plain) != 0)
        return;
    if (sealed_file_size(plain, h.segment_size) != size)
        abort();
    if (sealed_reader_open(&r, fuzz_key, &src, fuzz_salt, plain + 1, CHUNK_SEGMENTS) != SEALED_ERR_FORMAT)
        abort();
    rc = sealed_reader_open(&r, fuzz_key, &src, fuzz_salt, plain, CHUNK_SEGMENTS);
    if (rc != SEALED_OK) {
        /* Only the salt can still be wrong. */
        if (rc != SEALED_ERR_FORMAT || memcmp(h.salt, fuzz_salt, CRYPT_SALT_LEN) == 0)
            abort();
        return;
    }
    /* Plaintext is never longer than the input, whatever the header claims. */
    out = malloc(size);
    if (out == NULL)
        abort();
    rc = read_all(r, out, &got);
    if (rc != SEALED_OK && rc != SEALED_ERR_AUTH)
        abort();
    if (rc == SEALED_OK && got != plain)
        abort();
    sealed_reader_free(r);
    free(out);
}

/* Seal with the smallest segment size, so short inputs span several segments: once
 * whole, once in pieces whose lengths the input's bytes choose. Both must give the same
 * file, and it must read back to the input. */
static void seal_round_trip(const uint8_t *data, size_t size)
{
    sealed_header h = {.segment_size = 4096};
    sealed_sink whole, cut;
    sealed_writer *w;
    sealed_source src;
    sealed_reader *r;
    uint64_t got;
    uint8_t *back;
    size_t off = 0, i = 0;

    memcpy(h.salt, fuzz_salt, CRYPT_SALT_LEN);
    memcpy(h.nonce_prefix, data, size < CRYPT_NONCE_PREFIX_LEN ? size : CRYPT_NONCE_PREFIX_LEN);
    sealed_sink_mem(&whole);
    w = sealed_writer_new(fuzz_key, &h, &whole);
    if (w == NULL || sealed_write(w, data, size) != SEALED_OK || sealed_writer_finish(w) != SEALED_OK)
        abort();
    sealed_writer_free(w);
    sealed_sink_mem(&cut);
    w = sealed_writer_new(fuzz_key, &h, &cut);
    if (w == NULL)
        abort();
    while (off < size) {
        /* Pieces of up to 8191 bytes, across segment edges or ending on them. */
        size_t n = ((size_t)data[i % size] << 5 | data[(i + 1) % size]) & 0x1fff;
        if (n == 0) {
            /* An empty piece, then one byte, so the loop always moves on. */
            if (sealed_write(w, data + off, 0) != SEALED_OK)
                abort();
            n = 1;
        }
        n = n < size - off ? n : size - off;
        if (sealed_write(w, data + off, n) != SEALED_OK)
            abort();
        off += n;
        i += 2;
    }
    if (sealed_writer_finish(w) != SEALED_OK)
        abort();
    sealed_writer_free(w);
    if (whole.io.mem.len != sealed_file_size(size, h.segment_size) || cut.io.mem.len != whole.io.mem.len ||
        memcmp(whole.io.mem.buf, cut.io.mem.buf, whole.io.mem.len) != 0)
        abort();

    sealed_source_mem(&src, whole.io.mem.buf, whole.io.mem.len);
    back = malloc(size);
    if (back == NULL || sealed_reader_open(&r, fuzz_key, &src, fuzz_salt, size, CHUNK_SEGMENTS) != SEALED_OK)
        abort();
    if (read_all(r, back, &got) != SEALED_OK || got != size || memcmp(back, data, size) != 0)
        abort();
    sealed_reader_free(r);
    free(back);
    free(whole.io.mem.buf);
    free(cut.io.mem.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_as_download(data, size);
    if (size >= 1 && size <= ROUND_TRIP_MAX)
        seal_round_trip(data, size);
    /* The same bytes as a metadata blob: must fail cleanly, never read past the end. */
    if (size >= CRYPT_BLOB_OVERHEAD) {
        uint8_t *out = malloc(size - CRYPT_BLOB_OVERHEAD + 1);
        if (out == NULL)
            abort();
        (void)crypt_blob_open(fuzz_key, data, size, out);
        free(out);
    }
    return 0;
}
