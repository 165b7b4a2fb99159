/* fuzz_multipart.c - libFuzzer target for the multipart parser.
 * Input: a first line (a Content-Type, or else the boundary itself), then the body. The
 * body is parsed whole and again in chunks sized from the input: both must agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} log_buf;

typedef struct {
    log_buf events; /* begins and ends, each with the data offset it happened at */
    log_buf data;   /* every part's bytes, one after another */
    int open, begins, ends;
    int abort_begin, abort_end; /* stop at the n-th begin or end, 0 = never */
    const uint8_t *chunk;
    size_t chunk_len;
} recorder;

static void put(log_buf *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        l->cap = (l->len + n) * 2 + 64;
        l->buf = realloc(l->buf, l->cap);
        if (l->buf == NULL)
            abort();
    }
    if (n > 0)
        memcpy(l->buf + l->len, p, n);
    l->len += n;
}

static void put_event(recorder *r, char what)
{
    put(&r->events, &what, 1);
    put(&r->events, &r->data.len, sizeof(r->data.len));
}

static int on_begin(void *user, const mp_part_info *info)
{
    recorder *r = user;

    if (r->open || info->name == NULL || info->content_type == NULL)
        abort();
    r->open = 1;
    put_event(r, 'B');
    put(&r->events, info->name, strlen(info->name) + 1);
    if (info->filename != NULL) {
        if (memchr(info->filename, '\0', info->filename_len) != NULL)
            abort();
        put(&r->events, &info->filename_len, sizeof(info->filename_len));
        put(&r->events, info->filename, info->filename_len);
    }
    put(&r->events, info->content_type, strlen(info->content_type) + 1);
    return ++r->begins == r->abort_begin ? 42 : 0;
}

static int on_data(void *user, const uint8_t *data, size_t len)
{
    recorder *r = user;
    int inside = data >= r->chunk && data + len <= r->chunk + r->chunk_len;

    /* Zero copy: only a held-back delimiter prefix may come from elsewhere. */
    if (!r->open || len == 0 || (!inside && len > MP_MAX_BOUNDARY + 5))
        abort();
    put(&r->data, data, len);
    return 0;
}

static int on_end(void *user)
{
    recorder *r = user;

    if (!r->open)
        abort();
    r->open = 0;
    put_event(r, 'E');
    return ++r->ends == r->abort_end ? -42 : 0;
}

static const mp_callbacks callbacks = {on_begin, on_data, on_end};

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Feeds body in chunks, each in its own allocation so reads past one are caught;
 * seed 0 means in one piece. Leaves the result and error in the recorder's log. */
static void run(recorder *r, const char *boundary, const uint8_t *body, size_t len,
                uint64_t seed)
{
    mp_parser *p = mp_new(boundary, &callbacks, r);
    size_t at = 0;
    int rc = MP_OK;

    if (p == NULL)
        abort(); /* the boundary was checked before */
    while (at < len && rc == MP_OK) {
        /* Mostly tiny chunks, where the delimiter gets split, sometimes large ones. */
        static const size_t scale[] = {2, 8, 64, 1024};
        uint64_t x = seed ? next(&seed) : 0;
        size_t n = seed ? (size_t)(x % scale[(x >> 40) % 4]) + 1 : len;
        if (n > len - at)
            n = len - at;
        uint8_t *piece = malloc(n);
        if (piece == NULL)
            abort();
        memcpy(piece, body + at, n);
        r->chunk = piece;
        r->chunk_len = n;
        rc = mp_feed(p, piece, n);
        free(piece);
        at += n;
    }
    if (rc == MP_OK)
        rc = mp_finish(p);
    put(&r->events, &rc, sizeof(rc));
    put(&r->events, mp_error(p), strlen(mp_error(p)) + 1);
    mp_free(p);
}

static int same(const log_buf *a, const log_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    const uint8_t *nl = memchr(in, '\n', size);
    size_t line = nl ? (size_t)(nl - in) : size;
    char boundary[MP_MAX_BOUNDARY + 1], *raw;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    recorder whole = {0}, split = {0};

    /* An exact-size copy, so a read past the Content-Type's length is caught. */
    if ((raw = malloc(line ? line : 1)) == NULL)
        return 0;
    memcpy(raw, in, line);
    if (mp_boundary(raw, line, boundary) != 0) {
        if (line == 0 || line > MP_MAX_BOUNDARY || memchr(raw, '\0', line) != NULL) {
            free(raw);
            return 0;
        }
        memcpy(boundary, raw, line);
        boundary[line] = '\0';
    }
    free(raw);
    mp_parser *probe = mp_new(boundary, &callbacks, NULL);
    if (probe == NULL)
        return 0;
    mp_free(probe);

    const uint8_t *body = nl ? nl + 1 : in + size;
    size_t len = size - (size_t)(body - in);
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ in[i]) * 0x100000001b3u;
    /* Stopping at a begin or an end happens at the same byte however the body is cut,
     * so the callback's value must come out of both runs alike. */
    if ((seed >> 3) % 16 == 0)
        whole.abort_begin = split.abort_begin = (int)((seed >> 8) % 4) + 1;
    if ((seed >> 3) % 16 == 1)
        whole.abort_end = split.abort_end = (int)((seed >> 8) % 4) + 1;
    seed |= 1; /* xorshift must not start at 0 */

    run(&whole, boundary, body, len, 0);
    run(&split, boundary, body, len, seed);
    if (!same(&whole.events, &split.events) || !same(&whole.data, &split.data))
        abort();
    free(whole.events.buf);
    free(whole.data.buf);
    free(split.events.buf);
    free(split.data.buf);
    return 0;
}
