/* sealed.h - the sealed-file format: its one writer and its one reader.
 *
 * A sealed file is a 40-byte header (magic "RZ0F", version 1, 3 reserved zero bytes,
 * segment size u32 BE, salt 16, nonce prefix 7, 5 reserved zero bytes), then the
 * plaintext cut into segments of the header's segment size (the last may be shorter,
 * none is empty), each sealed by crypt_stream under nonce prefix || counter || last with
 * the encoded header as AAD. So reordering, truncation and extension all fail
 * authentication, and the header cannot be altered without every segment failing.
 *
 * This module owns that layout: the header codec, the sizes, where each segment lies,
 * and which one is last. common/crypt owns the cryptography (keys, the segment AEAD) and
 * knows no file layout; this module knows no ids, paths, store or HTTP. Upload writes
 * through it, download reads through it; the shredder overwrites files whole and never
 * looks inside one.
 *
 * Bytes go out through a sink and come in through a source, in the manner of Redis's
 * rio: the same writer and reader work on a file descriptor (upload, download), on
 * memory (tests, fuzzer) or on anything else given a sink or source of its own. A
 * writer or reader keeps no state outside itself, so it may be driven from any thread
 * that owns it exclusively. */
#ifndef RZ_SEALED_H
#define RZ_SEALED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "crypt.h"

#define SEALED_HEADER_LEN 40
#define SEALED_SEGMENT_SIZE 65536 /* what new files use; a reader takes what the header says */

/* What every call below returns. */
enum {
    SEALED_OK = 0,
    SEALED_ERR_IO = -1,       /* the sink or source failed; its err says why */
    SEALED_ERR_FORMAT = -2,   /* not the file expected: header, salt or length */
    SEALED_ERR_AUTH = -3,     /* a segment failed authentication: tampered, reordered, wrong key */
    SEALED_ERR_INTERNAL = -4, /* out of memory, libcrypto failed, or a call the format cannot
                               * honour (an empty file, a write after finish, a read past the end) */
};

/* ---- header and sizes ---- */

typedef struct {
    uint32_t segment_size;
    uint8_t salt[CRYPT_SALT_LEN];
    uint8_t nonce_prefix[CRYPT_NONCE_PREFIX_LEN];
} sealed_header;

/* New header with the given salt, a random nonce prefix and SEALED_SEGMENT_SIZE. 0 or -1. */
int sealed_header_new(sealed_header *h, const uint8_t salt[CRYPT_SALT_LEN]);
void sealed_header_encode(const sealed_header *h, uint8_t out[SEALED_HEADER_LEN]);
/* 0, or -1 for a bad magic, version, reserved byte or a segment size outside
 * [4096, 16 MiB]. */
int sealed_header_decode(const uint8_t in[SEALED_HEADER_LEN], sealed_header *h);

/* Length of the sealed file of plain_size bytes; 0 when no file can hold that (an empty
 * plaintext, a zero segment size, more than 2^32 segments, an overflow). */
uint64_t sealed_file_size(uint64_t plain_size, uint32_t segment_size);
/* The inverse: 0, or -1 when no sealed file has that length. */
int sealed_plain_size(uint64_t file_size, uint32_t segment_size, uint64_t *plain_size);

/* ---- where the bytes go and come from ---- */

typedef struct sealed_sink sealed_sink;
struct sealed_sink {
    /* Take all len bytes, after those taken before; 0, or -1 with err set. A sink that
     * cannot write at once (an object-store upload) keeps them until it can. */
    int (*write)(sealed_sink *k, const uint8_t *buf, size_t len);
    int err; /* errno of the last failure (ENOSPC for a write that made no progress) */
    union {
        int fd; /* sealed_sink_fd: the caller keeps and closes it */
        struct {
            uint8_t *buf; /* sealed_sink_mem: grows; the caller frees it */
            size_t len, cap;
        } mem;
        void *other; /* another module's sink (worker/objstore.c) */
    } io;
};

typedef struct sealed_source sealed_source;
struct sealed_source {
    /* Exactly len bytes at offset off into buf; 0, or -1 with err set (EIO for a source
     * that ends early: it changed after its size was taken). */
    int (*read)(sealed_source *s, uint8_t *buf, size_t len, uint64_t off);
    /* The source's length in bytes; 0, or -1 with err set. */
    int (*size)(sealed_source *s, uint64_t *size);
    int err;
    union {
        int fd; /* sealed_source_fd: the caller keeps and closes it */
        struct {
            const uint8_t *buf; /* sealed_source_mem: the caller's bytes */
            size_t len;
        } mem;
        void *other; /* another module's source (worker/objstore.c) */
    } io;
};

void sealed_sink_fd(sealed_sink *k, int fd);
void sealed_sink_mem(sealed_sink *k);
void sealed_source_fd(sealed_source *s, int fd);
/* The same descriptor, read only as far as the page cache holds it: a read that would
 * wait for the disk fails at once with err EAGAIN (so a loop can read without blocking
 * and leave the rest to a thread). A reader may be switched between the two. */
void sealed_source_fd_cached(sealed_source *s, int fd);
void sealed_source_mem(sealed_source *s, const uint8_t *buf, size_t len);

/* ---- the writer ---- */

typedef struct sealed_writer sealed_writer;

/* A writer of one file under key (the file key) and header h, into sink, which must
 * outlive it. Writes nothing yet: the header goes out with the first segment. NULL when
 * out of memory, libcrypto fails, or h's segment size is out of range. */
sealed_writer *sealed_writer_new(const uint8_t key[CRYPT_KEY_LEN], const sealed_header *h, sealed_sink *sink);
/* Plaintext in any pieces, of any length. A full segment is sealed and written only
 * once more data shows it is not the last, so the sink sees whole segments only. */
int sealed_write(sealed_writer *w, const uint8_t *data, size_t len);
/* Seal the last segment and write it. The plaintext must not be empty
 * (SEALED_ERR_INTERNAL). After it, or after any failure, the writer takes nothing
 * more (SEALED_ERR_INTERNAL). */
int sealed_writer_finish(sealed_writer *w);
/* Wipes the plaintext it held; NULL is fine. */
void sealed_writer_free(sealed_writer *w);

/* ---- the reader ---- */

typedef struct sealed_reader sealed_reader;

/* Open src (which must outlive the reader) as the file the record describes: its
 * header must carry salt and its length must be that of plain_size bytes
 * (SEALED_ERR_FORMAT otherwise). max_segments (>= 1) bounds every sealed_read. No
 * segment is read yet. On success *out is the reader; on failure *out is NULL. */
int sealed_reader_open(sealed_reader **out, const uint8_t key[CRYPT_KEY_LEN], sealed_source *src,
                       const uint8_t salt[CRYPT_SALT_LEN], uint64_t plain_size, uint32_t max_segments);
/* How many segments the file has: 1 to 2^32. */
uint64_t sealed_reader_segments(const sealed_reader *r);
/* Plaintext bytes the largest read can return: the size of a caller's plain buffer. */
size_t sealed_reader_plain_max(const sealed_reader *r);
/* Read segments first .. first + count - 1 (count <= max_segments, all within the
 * file) in one read of the source, and open each into plain, which gets *plain_len
 * bytes. Every segment is authenticated before the call returns SEALED_OK; on any
 * failure plain holds nothing (wiped) and *plain_len is 0. */
int sealed_read(sealed_reader *r, uint64_t first, uint32_t count, uint8_t *plain, size_t *plain_len);
/* Bytes the largest sealed_read_in_place needs: its plaintext and its segments' tags. */
size_t sealed_reader_buf_max(const sealed_reader *r);
/* The same for a file of plain_size bytes in segments of segment_size, read at most
 * max_segments at a time, known before its header is read. */
size_t sealed_buf_max(uint64_t plain_size, uint32_t segment_size, uint32_t max_segments);
/* The same read into the caller's buf (sealed_reader_buf_max bytes), each segment opened
 * where its sealed bytes lie, so a chunk costs one buffer, not two: spans[i] (count of
 * them) is segment first + i's plaintext within buf, *plain_len their sum. On failure
 * buf holds no plaintext (wiped) and *plain_len is 0. */
int sealed_read_in_place(sealed_reader *r, uint64_t first, uint32_t count, uint8_t *buf, struct iovec *spans,
                         size_t *plain_len);
void sealed_reader_free(sealed_reader *r);

#endif
