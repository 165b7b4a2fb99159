/* fuzz_sealed.c - libFuzzer target: any input is an on-disk sealed file, opened the way a
 * download opens it (header, sizes from the length, every segment authenticated); short
 * inputs are also sealed as plaintext and must open back to themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"

/* The seeds in fuzz/corpus/sealed/ were sealed under this key, so mutations start from
 * files that authenticate. */
static const uint8_t fuzz_key[CRYPT_KEY_LEN] = {
    0x52, 0x5a, 0x30, 0x46, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x31, 0x32,
    0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
};

#define ROUND_TRIP_MAX (4 * 4096 + 100)

/* Open as a download would, stopping at the first segment that fails, as a download
 * stops sending. */
static void open_as_download(const uint8_t *data, size_t size)
{
    crypt_header h;
    crypt_stream *s;
    uint64_t plain, off = 0;
    size_t pos = CRYPT_HEADER_LEN;
    uint32_t index = 0;
    uint8_t *out;

    if (size < CRYPT_HEADER_LEN || crypt_header_decode(data, &h) != 0 ||
        crypt_plain_size(size, h.segment_size, &plain) != 0)
        return;
    if (crypt_sealed_size(plain, h.segment_size) != size)
        abort();
    /* Plaintext is never longer than the input, whatever the header claims. */
    out = malloc(size);
    s = crypt_stream_new(fuzz_key, &h);
    if (out == NULL || s == NULL)
        abort();
    while (off < plain) {
        size_t n = plain - off < h.segment_size ? (size_t)(plain - off) : h.segment_size;
        if (pos + n + CRYPT_TAG_LEN > size)
            abort();
        if (crypt_open_segment(s, index++, off + n == plain, data + pos, n + CRYPT_TAG_LEN, out) != 0)
            break;
        off += n;
        pos += n + CRYPT_TAG_LEN;
    }
    crypt_stream_free(s);
    free(out);
}

/* Seal the input with the smallest segment size, so short inputs span several segments,
 * then open it and demand the same bytes. */
static void seal_round_trip(const uint8_t *data, size_t size)
{
    crypt_header h = {.segment_size = 4096};
    crypt_stream *s;
    size_t sealed_len, off = 0, pos = CRYPT_HEADER_LEN;
    uint8_t *sealed, *back;
    uint32_t index = 0;

    sealed_len = (size_t)crypt_sealed_size(size, h.segment_size);
    memset(h.salt, 0xa5, sizeof h.salt);
    memcpy(h.nonce_prefix, data, size < CRYPT_NONCE_PREFIX_LEN ? size : CRYPT_NONCE_PREFIX_LEN);
    sealed = malloc(sealed_len);
    back = malloc(size);
    s = crypt_stream_new(fuzz_key, &h);
    if (sealed == NULL || back == NULL || s == NULL)
        abort();
    crypt_header_encode(&h, sealed);
    while (off < size) {
        size_t n = size - off < h.segment_size ? size - off : h.segment_size;
        if (crypt_seal_segment(s, index++, off + n == size, data + off, n, sealed + pos) != 0)
            abort();
        off += n;
        pos += n + CRYPT_TAG_LEN;
    }
    if (pos != sealed_len)
        abort();
    off = 0;
    pos = CRYPT_HEADER_LEN;
    index = 0;
    while (off < size) {
        size_t n = size - off < h.segment_size ? size - off : h.segment_size;
        if (crypt_open_segment(s, index++, off + n == size, sealed + pos, n + CRYPT_TAG_LEN, back + off) != 0)
            abort();
        off += n;
        pos += n + CRYPT_TAG_LEN;
    }
    if (memcmp(back, data, size) != 0)
        abort();
    crypt_stream_free(s);
    free(sealed);
    free(back);
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
