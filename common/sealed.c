/* sealed.c - the sealed-file format: header codec, sizes, the one writer and the one
 * reader, and the sinks and sources they come with (a file descriptor, memory).
 * The cryptography is crypt_stream's; this file decides only where bytes lie. */
#include "sealed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>


#define HEADER_MAGIC "RZ0F"
#define HEADER_VERSION 1
#define SEGMENT_MIN 4096u
/* Segment indices are 32-bit, so a file holds at most 2^32 segments. */
#define SEGMENTS_MAX ((uint64_t)UINT32_MAX + 1)

_Static_assert(SEALED_HEADER_LEN <= CRYPT_AAD_MAX, "the header is every segment's AAD");

struct sealed_writer {
    crypt_stream *cs;
    sealed_sink *sink;
    uint8_t header[SEALED_HEADER_LEN];
    int header_sent;
    int finished;
    uint32_t segment_size;
    uint32_t index;  /* the next segment's number */
    size_t fill;     /* plaintext bytes waiting in seg */
    uint8_t *seg;    /* the segment being filled */
    uint8_t *sealed; /* that segment sealed */
};

struct sealed_reader {
    crypt_stream *cs;
    sealed_source *src;
    uint32_t segment_size;
    uint64_t segments; /* up to 2^32 */
    uint32_t max_segments;
    uint64_t plain_size;
    uint8_t *sealed; /* room for sealed_read's largest read, once it is asked for one */
};

/* ---- header ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Layout: magic 0..3, version 4, reserved 5..7, segment size 8..11, salt 12..27,
 * nonce prefix 28..34, reserved 35..39. */
enum { H_VERSION = 4, H_SEGSIZE = 8, H_SALT = 12, H_PREFIX = 28, H_TAIL = 35 };

static int segment_size_ok(uint32_t seg)
{
    return seg >= SEGMENT_MIN && seg <= CRYPT_SEGMENT_MAX;
}

int sealed_header_new(sealed_header *h, const uint8_t salt[CRYPT_SALT_LEN])
{
    h->segment_size = SEALED_SEGMENT_SIZE;
    memcpy(h->salt, salt, CRYPT_SALT_LEN);
    /* The key is already unique per upload (random salt); a random prefix as well keeps
     * nonces unique even if a salt were ever reused. */
    return crypt_random(h->nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

void sealed_header_encode(const sealed_header *h, uint8_t out[SEALED_HEADER_LEN])
{
    memset(out, 0, SEALED_HEADER_LEN);
    memcpy(out, HEADER_MAGIC, 4);
    out[H_VERSION] = HEADER_VERSION;
    put_be32(out + H_SEGSIZE, h->segment_size);
    memcpy(out + H_SALT, h->salt, CRYPT_SALT_LEN);
    memcpy(out + H_PREFIX, h->nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
}

int sealed_header_decode(const uint8_t in[SEALED_HEADER_LEN], sealed_header *h)
{
    uint32_t seg;
    int i;

    if (memcmp(in, HEADER_MAGIC, 4) != 0 || in[H_VERSION] != HEADER_VERSION)
        return -1;
    for (i = H_VERSION + 1; i < H_SEGSIZE; i++)
        if (in[i] != 0)
            return -1;
    for (i = H_TAIL; i < SEALED_HEADER_LEN; i++)
        if (in[i] != 0)
            return -1;
    /* Bounded so a forged header cannot make a reader allocate gigabytes per segment. */
    seg = get_be32(in + H_SEGSIZE);
    if (!segment_size_ok(seg))
        return -1;
    h->segment_size = seg;
    memcpy(h->salt, in + H_SALT, CRYPT_SALT_LEN);
    memcpy(h->nonce_prefix, in + H_PREFIX, CRYPT_NONCE_PREFIX_LEN);
    return 0;
}

/* The header goes into the stream as every segment's AAD. */
static crypt_stream *stream_for(const uint8_t key[CRYPT_KEY_LEN], const sealed_header *h,
                                uint8_t encoded[SEALED_HEADER_LEN])
{
    if (!segment_size_ok(h->segment_size))
        return NULL;
    sealed_header_encode(h, encoded);
    return crypt_stream_new(key, h->nonce_prefix, h->segment_size, encoded, SEALED_HEADER_LEN);
}

/* ---- sizes ---- */

uint64_t sealed_file_size(uint64_t plain_size, uint32_t segment_size)
{
    uint64_t nseg;

    if (plain_size == 0 || segment_size == 0)
        return 0;
    nseg = plain_size / segment_size + (plain_size % segment_size != 0);
    if (nseg > SEGMENTS_MAX || plain_size > UINT64_MAX - SEALED_HEADER_LEN - nseg * CRYPT_TAG_LEN)
        return 0;
    return SEALED_HEADER_LEN + plain_size + nseg * CRYPT_TAG_LEN;
}

int sealed_plain_size(uint64_t file_size, uint32_t segment_size, uint64_t *plain_size)
{
    uint64_t body, full, rest, stride = (uint64_t)segment_size + CRYPT_TAG_LEN, nseg;

    if (segment_size == 0 || file_size <= SEALED_HEADER_LEN)
        return -1;
    body = file_size - SEALED_HEADER_LEN;
    full = body / stride;
    rest = body % stride;
    /* A trailing partial segment needs a tag and at least one byte of plaintext. */
    if (rest != 0 && rest <= CRYPT_TAG_LEN)
        return -1;
    nseg = full + (rest != 0);
    if (nseg > SEGMENTS_MAX)
        return -1;
    *plain_size = full * segment_size + (rest != 0 ? rest - CRYPT_TAG_LEN : 0);
    return 0;
}

/* ---- sinks and sources ---- */

static int fd_write(sealed_sink *k, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(k->io.fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            k->err = n < 0 ? errno : ENOSPC;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int mem_write(sealed_sink *k, const uint8_t *buf, size_t len)
{
    if (len > k->io.mem.cap - k->io.mem.len) {
        size_t cap = k->io.mem.cap ? k->io.mem.cap : 4096;
        while (cap - k->io.mem.len < len) {
            if (cap > SIZE_MAX / 2) {
                k->err = ENOMEM;
                return -1;
            }
            cap *= 2;
        }
        uint8_t *grown = realloc(k->io.mem.buf, cap);
        if (grown == NULL) {
            k->err = ENOMEM;
            return -1;
        }
        k->io.mem.buf = grown;
        k->io.mem.cap = cap;
    }
    memcpy(k->io.mem.buf + k->io.mem.len, buf, len);
    k->io.mem.len += len;
    return 0;
}

static int fd_read(sealed_source *s, uint8_t *buf, size_t len, uint64_t off)
{
    size_t got = 0;

    if (off > INT64_MAX - len) {
        s->err = EOVERFLOW;
        return -1;
    }
    while (got < len) {
        ssize_t n = pread(s->io.fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->err = n < 0 ? errno : EIO;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* All len bytes from the page cache, or -1 with EAGAIN: a read that would wait for the
 * disk, a file system that cannot tell (EOPNOTSUPP), and a short read alike. A reader
 * that gets EAGAIN tries again through sealed_source_fd, which then tells the truth. */
static int fd_read_cached(sealed_source *s, uint8_t *buf, size_t len, uint64_t off)
{
    struct iovec v = {.iov_base = buf, .iov_len = len};
    ssize_t n;

    if (off > INT64_MAX - len) {
        s->err = EOVERFLOW;
        return -1;
    }
    while ((n = preadv2(s->io.fd, &v, 1, (off_t)off, RWF_NOWAIT)) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)len)
        return 0;
    s->err = EAGAIN;
    return -1;
}

static int fd_size(sealed_source *s, uint64_t *size)
{
    struct stat st;

    if (fstat(s->io.fd, &st) != 0) {
        s->err = errno;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int mem_read(sealed_source *s, uint8_t *buf, size_t len, uint64_t off)
{
    if (off > s->io.mem.len || len > s->io.mem.len - off) {
        s->err = EIO;
        return -1;
    }
    memcpy(buf, s->io.mem.buf + off, len);
    return 0;
}

static int mem_size(sealed_source *s, uint64_t *size)
{
    *size = s->io.mem.len;
    return 0;
}

void sealed_sink_fd(sealed_sink *k, int fd)
{
    *k = (sealed_sink){.write = fd_write, .io.fd = fd};
}

void sealed_sink_mem(sealed_sink *k)
{
    *k = (sealed_sink){.write = mem_write};
}

void sealed_source_fd(sealed_source *s, int fd)
{
    *s = (sealed_source){.read = fd_read, .size = fd_size, .io.fd = fd};
}

void sealed_source_fd_cached(sealed_source *s, int fd)
{
    *s = (sealed_source){.read = fd_read_cached, .size = fd_size, .io.fd = fd};
}

void sealed_source_mem(sealed_source *s, const uint8_t *buf, size_t len)
{
    *s = (sealed_source){.read = mem_read, .size = mem_size, .io.mem = {buf, len}};
}

/* ---- the writer ---- */

sealed_writer *sealed_writer_new(const uint8_t key[CRYPT_KEY_LEN], const sealed_header *h, sealed_sink *sink)
{
    sealed_writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->sink = sink;
    w->segment_size = h->segment_size;
    w->cs = stream_for(key, h, w->header);
    if (w->cs != NULL) {
        w->seg = malloc(h->segment_size);
        w->sealed = malloc((size_t)h->segment_size + CRYPT_TAG_LEN);
    }
    if (w->cs == NULL || w->seg == NULL || w->sealed == NULL) {
        sealed_writer_free(w);
        return NULL;
    }
    return w;
}

/* Seal what seg holds as segment w->index and write it, the header first if it has
 * not gone out yet. */
static int seal_segment(sealed_writer *w, int last)
{
    /* The 2^32nd segment would reuse counter 0's nonce if another followed it. */
    if (!last && w->index == UINT32_MAX)
        return SEALED_ERR_INTERNAL;
    if (crypt_seal_segment(w->cs, w->index, last, w->seg, w->fill, w->sealed) != 0)
        return SEALED_ERR_INTERNAL;
    if (!w->header_sent) {
        if (w->sink->write(w->sink, w->header, SEALED_HEADER_LEN) != 0)
            return SEALED_ERR_IO;
        w->header_sent = 1;
    }
    if (w->sink->write(w->sink, w->sealed, w->fill + CRYPT_TAG_LEN) != 0)
        return SEALED_ERR_IO;
    w->index++;
    w->fill = 0;
    return SEALED_OK;
}

/* A writer that failed has written part of a file at most: it takes nothing more. */
static int seal_or_stop(sealed_writer *w, int last)
{
    int r = seal_segment(w, last);

    if (r != SEALED_OK || last)
        w->finished = 1;
    return r;
}

int sealed_write(sealed_writer *w, const uint8_t *data, size_t len)
{
    if (w->finished)
        return SEALED_ERR_INTERNAL;
    while (len > 0) {
        /* A full segment is sealed only once more data shows it is not the last. */
        if (w->fill == w->segment_size) {
            int r = seal_or_stop(w, 0);
            if (r != SEALED_OK)
                return r;
        }
        size_t n = w->segment_size - w->fill;
        n = n < len ? n : len;
        memcpy(w->seg + w->fill, data, n);
        w->fill += n;
        data += n;
        len -= n;
    }
    return SEALED_OK;
}

int sealed_writer_finish(sealed_writer *w)
{
    /* Only an empty plaintext leaves nothing here: the format has no empty file. */
    if (w->finished || w->fill == 0)
        return SEALED_ERR_INTERNAL;
    return seal_or_stop(w, 1);
}

void sealed_writer_free(sealed_writer *w)
{
    if (w == NULL)
        return;
    if (w->seg != NULL)
        explicit_bzero(w->seg, w->segment_size);
    free(w->seg);
    free(w->sealed);
    crypt_stream_free(w->cs);
    free(w);
}

/* ---- the reader ---- */

int sealed_reader_open(sealed_reader **out, const uint8_t key[CRYPT_KEY_LEN], sealed_source *src,
                       const uint8_t salt[CRYPT_SALT_LEN], uint64_t plain_size, uint32_t max_segments)
{
    uint8_t encoded[SEALED_HEADER_LEN];
    sealed_header h;
    sealed_reader *r;
    uint64_t len, segments;

    *out = NULL;
    if (max_segments == 0)
        return SEALED_ERR_INTERNAL;
    if (src->size(src, &len) != 0)
        return SEALED_ERR_IO;
    if (len < SEALED_HEADER_LEN)
        return SEALED_ERR_FORMAT;
    if (src->read(src, encoded, SEALED_HEADER_LEN, 0) != 0)
        return SEALED_ERR_IO;
    if (sealed_header_decode(encoded, &h) != 0 || memcmp(h.salt, salt, CRYPT_SALT_LEN) != 0 ||
        len != sealed_file_size(plain_size, h.segment_size))
        return SEALED_ERR_FORMAT;
    segments = (plain_size + h.segment_size - 1) / h.segment_size;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return SEALED_ERR_INTERNAL;
    r->src = src;
    r->segment_size = h.segment_size;
    r->segments = segments;
    r->plain_size = plain_size;
    r->max_segments = max_segments < segments ? max_segments : (uint32_t)segments;
    r->cs = stream_for(key, &h, encoded);
    if (r->cs == NULL) {
        sealed_reader_free(r);
        return SEALED_ERR_INTERNAL;
    }
    *out = r;
    return SEALED_OK;
}

uint64_t sealed_reader_segments(const sealed_reader *r)
{
    return r->segments;
}

size_t sealed_reader_plain_max(const sealed_reader *r)
{
    uint64_t most = (uint64_t)r->max_segments * r->segment_size;
    return (size_t)(most < r->plain_size ? most : r->plain_size);
}

size_t sealed_buf_max(uint64_t plain_size, uint32_t segment_size, uint32_t max_segments)
{
    /* Bounded by the file too: a small file's header may claim 16 MiB segments. */
    uint64_t segments = (plain_size + segment_size - 1) / segment_size;
    uint64_t count = segments < max_segments ? segments : max_segments;
    uint64_t most = count * segment_size;
    return (size_t)((most < plain_size ? most : plain_size) + count * CRYPT_TAG_LEN);
}

size_t sealed_reader_buf_max(const sealed_reader *r)
{
    return sealed_buf_max(r->plain_size, r->segment_size, r->max_segments);
}

/* Reads the sealed bytes of segments first .. first + count - 1 into in and opens each:
 * into out at its plaintext offset, or, with out NULL, in place, spans[i] saying where.
 * On failure every plaintext byte is wiped, its authentic neighbours' too, so that a
 * caller holds either the whole read or nothing of it. */
static int read_segments(sealed_reader *r, uint64_t first, uint32_t count, uint8_t *in, uint8_t *out,
                         struct iovec *spans, size_t *plain_len)
{
    *plain_len = 0;
    if (count == 0 || count > r->max_segments || first >= r->segments || count > r->segments - first)
        return SEALED_ERR_INTERNAL;
    uint64_t from = first * r->segment_size, to = from + (uint64_t)count * r->segment_size;
    size_t ptlen = (size_t)((to < r->plain_size ? to : r->plain_size) - from);
    size_t stride = (size_t)r->segment_size + CRYPT_TAG_LEN;
    uint64_t off = SEALED_HEADER_LEN + first * stride;
    size_t sealed_len = ptlen + (size_t)count * CRYPT_TAG_LEN;
    if (r->src->read(r->src, in, sealed_len, off) != 0)
        return SEALED_ERR_IO;
    size_t at = 0, done = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t index = first + i; /* below 2^32: the file has at most 2^32 segments */
        int last = index == r->segments - 1;
        size_t n = last ? ptlen - done : r->segment_size;
        uint8_t *into = out != NULL ? out + done : in + at;
        if (crypt_open_segment(r->cs, (uint32_t)index, last, in + at, n + CRYPT_TAG_LEN, into) != 0) {
            explicit_bzero(out != NULL ? out : in, out != NULL ? done : sealed_len);
            return SEALED_ERR_AUTH;
        }
        if (spans != NULL)
            spans[i] = (struct iovec){.iov_base = into, .iov_len = n};
        at += n + CRYPT_TAG_LEN;
        done += n;
    }
    *plain_len = done;
    return SEALED_OK;
}

int sealed_read(sealed_reader *r, uint64_t first, uint32_t count, uint8_t *plain, size_t *plain_len)
{
    *plain_len = 0;
    if (r->sealed == NULL && (r->sealed = malloc(sealed_reader_buf_max(r))) == NULL)
        return SEALED_ERR_INTERNAL;
    return read_segments(r, first, count, r->sealed, plain, NULL, plain_len);
}

int sealed_read_in_place(sealed_reader *r, uint64_t first, uint32_t count, uint8_t *buf, struct iovec *spans,
                         size_t *plain_len)
{
    return read_segments(r, first, count, buf, NULL, spans, plain_len);
}

void sealed_reader_free(sealed_reader *r)
{
    if (r == NULL)
        return;
    crypt_stream_free(r->cs);
    free(r->sealed);
    free(r);
}
