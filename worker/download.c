/* download.c - GET /download/{key}: take one use atomically, then stream the file,
 * authenticating each segment before a byte of it is sent. DELETE /download/{key}:
 * burn it at once with its delete token.
 *
 * The open descriptor holds a shared flock for the whole stream; the shredder only
 * overwrites and unlinks under an exclusive one, so nothing is destroyed under a
 * reader, and the descriptor, never the file's last reference, closes on the loop at
 * once. When the last use is taken, or the file is burned, it is renamed into the
 * trash at once (a descriptor keeps reading), so it leaves the namespace immediately
 * and is shredded once every download in progress lets go. The file is checked and
 * read on the loop as far as the page cache holds it (RWF_NOWAIT), and on a helper
 * thread when that would wait for the disk: its header and first segment before the
 * headers go out, every further chunk while the client takes the one before.
 * With STORAGE_URL the file is an object: its GET was started (and its first segment
 * held) before the use was taken (keyed.h); it streams in as the client reads, each
 * chunk authenticated on the loop as it completes, and the shredder deletes a burned
 * object S3_DELETE_DELAY later, which is what lets downloads in progress finish. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drop.h"
#include "http.h"
#include "keyed.h"
#include "log.h"
#include "paths.h"
#include "sealed.h"
#include "util.h"

/* Segments read, authenticated and sent per chunk after the first: one pread and one
 * write of up to 256 KiB instead of four. The first chunk is one segment, so the
 * headers go out after a single segment has been checked. */
#define CHUNK_SEGMENTS 4
/* A chunk's buffer of a file in SEALED_SEGMENT_SIZE segments: one the worker keeps
 * (worker_chunk_take). */
#define CHUNK_BUF_LEN ((size_t)CHUNK_SEGMENTS * (SEALED_SEGMENT_SIZE + CRYPT_TAG_LEN))
_Static_assert(CHUNK_BUF_LEN == WORKER_CHUNK_LEN, "a chunk is a buffer the worker keeps");

typedef struct stream stream;
struct stream {
    h2o_generator_t super;
    worker *w;
    h2o_req_t *req;    /* NULL once the request is gone */
    h2o_timeout_entry_t stall; /* armed while a chunk waits for the client to take it */
    int fd;
    sealed_source src; /* reads fd */
    sealed_reader *rd;
    uint64_t nsegs;
    uint64_t next;     /* next segment to read */
    /* The chunk being sent, and the one being read meanwhile: each opened in place in
     * its buffer, spans[i] its segments' plaintext. */
    uint8_t *buf[2];
    size_t buf_len;    /* of each */
    struct iovec spans[2][CHUNK_SEGMENTS];
    size_t nspans[2];
    size_t plain_len[2];
    int sending;       /* which of the two is with libh2o */
    /* The read of the next chunk on a helper thread: while it is in flight it owns rd,
     * src and buf[!sending], and the loop touches none of them. */
    offload_job job;
    uint64_t job_first;
    uint32_t job_count;
    int job_result;
    int reading;       /* a job is in flight: its completion frees a stream left behind */
    int waiting;       /* the client took the last chunk before the next one was read */
    int ready;         /* the next chunk is read and waits for the client */
    /* Until the headers go out: opening the file and its first segment is a job too. */
    uint8_t fk[CRYPT_KEY_LEN]; /* the file key, wiped once the reader has it */
    uint8_t salt[CRYPT_SALT_LEN];
    uint64_t size;
    int opened;        /* the file is the one the record describes */
    int last;          /* this download took the last use: the file is burned */
    char id[CRYPT_ID_HEX_LEN + 1];
    drop_meta meta;
};

/* A buffer of at least len bytes for a file's chunks: one the worker keeps for chunks
 * of more than one segment, one of its own for smaller ones (malloc serves those from
 * memory it reuses). *got is its length. */
static uint8_t *chunk_take(worker *w, size_t len, size_t *got)
{
    if (len <= SEALED_SEGMENT_SIZE + CRYPT_TAG_LEN || len > CHUNK_BUF_LEN) {
        *got = len;
        return malloc(len);
    }
    *got = CHUNK_BUF_LEN;
    return worker_chunk_take(w);
}

/* Wiped of the file's plaintext, and kept if it is of the kept kind. */
static void chunk_give(worker *w, uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    if (len == CHUNK_BUF_LEN) {
        worker_chunk_give(w, buf, 1);
        return;
    }
    explicit_bzero(buf, len);
    free(buf);
}

static void stream_free(stream *s)
{
    if (h2o_timeout_is_linked(&s->stall))
        h2o_timeout_unlink(&s->stall);
    if (s->fd >= 0) /* releases the shared lock: the shredder may now take the file */
        close(s->fd);
    sealed_reader_free(s->rd);
    chunk_give(s->w, s->buf[0], s->buf_len);
    chunk_give(s->w, s->buf[1], s->buf_len);
    free(s);
}

/* The request's pool dies (answered, or the client went away): a read in flight still
 * owns the stream, and its completion frees it. */
static void stream_detach(void *p)
{
    stream *s = *(stream **)p;
    s->req = NULL;
    if (h2o_timeout_is_linked(&s->stall))
        h2o_timeout_unlink(&s->stall);
    if (!s->reading)
        stream_free(s);
}

/* A client that stops reading would hold the file (and its lock, so the shredder
 * cannot take a burned file) forever: libh2o 2.2.5 has no send timeout. After
 * BODY_TIMEOUT without progress the connection is shut down, and libh2o then ends
 * the request as for any broken connection. */
static void on_stall(h2o_timeout_entry_t *entry)
{
    stream *s = H2O_STRUCT_FROM_MEMBER(stream, stall, entry);
    h2o_socket_t *sock = s->req->conn->callbacks->get_socket(s->req->conn);
    log_event(LOG_WARNING, "download_stalled", "no progress for %u s: connection closed", s->w->cfg->body_timeout);
    if (sock != NULL)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
}

/* A chunk's n segments to the client (of a file or an object), the stall timer started
 * afresh. */
static void send_chunk(worker *w, h2o_req_t *req, h2o_timeout_entry_t *stall, const struct iovec *spans, size_t n,
                       int final)
{
    h2o_iovec_t bufs[CHUNK_SEGMENTS];
    for (size_t i = 0; i < n; i++)
        bufs[i] = h2o_iovec_init(spans[i].iov_base, spans[i].iov_len);
    if (h2o_timeout_is_linked(stall))
        h2o_timeout_unlink(stall);
    h2o_timeout_link(w->ctx.loop, &w->stall_timeout, stall);
    h2o_send(req, bufs, n, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* The last chunk goes out once nothing is left to read or being read. */
static void send_current(stream *s)
{
    send_chunk(s->w, s->req, &s->stall, s->spans[s->sending], s->nspans[s->sending],
               s->next == s->nsegs && !s->reading && !s->ready);
}

/* ---- reading ahead ---- */

/* A read that the page cache could not answer: the loop leaves it to a helper thread. */
static int uncached(const stream *s)
{
    return s->job_result == SEALED_ERR_IO && s->src.err == EAGAIN;
}

static void read_work(offload_job *job)
{
    stream *s = H2O_STRUCT_FROM_MEMBER(stream, job, job);
    int into = !s->sending;
    s->job_result = sealed_read_in_place(s->rd, s->job_first, s->job_count, s->buf[into], s->spans[into],
                                         &s->plain_len[into]);
    s->nspans[into] = s->job_count;
}

static void send_next(stream *s);

static void read_done(offload_job *job)
{
    stream *s = H2O_STRUCT_FROM_MEMBER(stream, job, job);
    s->reading = 0;
    s->ready = 1;
    if (s->req == NULL) {
        stream_free(s); /* the client went away meanwhile */
        return;
    }
    if (s->waiting) {
        s->waiting = 0;
        send_next(s);
    }
}

/* Read the next chunk, if any, into the buffer libh2o is not holding, while the client
 * takes the current one: at once from the page cache, else on a helper thread. */
static void read_ahead(stream *s)
{
    if (s->next == s->nsegs)
        return;
    s->job_first = s->next;
    s->job_count = s->nsegs - s->next < CHUNK_SEGMENTS ? (uint32_t)(s->nsegs - s->next) : CHUNK_SEGMENTS;
    s->next += s->job_count;
    s->job = (offload_job){.work = read_work, .done = read_done};
    sealed_source_fd_cached(&s->src, s->fd);
    read_work(&s->job);
    if (!uncached(s)) {
        s->ready = 1;
        return;
    }
    sealed_source_fd(&s->src, s->fd);
    s->reading = 1;
    offload_submit(s->w->offload, &s->job);
}

/* The client has taken the current chunk and the next one has been read. */
static void send_next(stream *s)
{
    if (s->job_result != SEALED_OK) {
        /* Tampered or truncated after the headers went out: abort, never send bad bytes. */
        log_event(LOG_ERROR, "integrity_check_failed", "segment failed authentication mid-stream");
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    s->sending = !s->sending;
    s->ready = 0;
    shm_add(s->w->env->shm, M_DOWNLOAD_BYTES, s->plain_len[s->sending]);
    read_ahead(s);
    send_current(s);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    stream *s = (stream *)g;
    (void)req;
    if (h2o_timeout_is_linked(&s->stall)) /* the client is keeping up: the disk is not its fault */
        h2o_timeout_unlink(&s->stall);
    if (s->reading)
        s->waiting = 1;
    else
        send_next(s);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)g;
    (void)req;
}

/* ---- headers ---- */

static int attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c);
}

/* RFC 6266: an ASCII fallback with anything risky replaced, and the exact UTF-8 name
 * percent-encoded in filename*. The stored name is already free of control bytes. */
static void content_disposition(h2o_req_t *req, const char *name)
{
    size_t n = strlen(name);
    char *out = h2o_mem_alloc_pool(&req->pool, 64 + n * 4);
    size_t o = (size_t)sprintf(out, "attachment; filename=\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '%') ? '_' : (char)c;
    }
    o += (size_t)sprintf(out + o, "\"; filename*=UTF-8''");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (attr_char(c) && c != 0)
            out[o++] = (char)c;
        else
            o += (size_t)sprintf(out + o, "%%%02X", c);
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_DISPOSITION, NULL, out, o);
}

static void integrity_failed(h2o_req_t *req)
{
    log_event(LOG_ERROR, "integrity_check_failed", "stored file failed authentication");
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "detail");
    cJSON_AddStringToObject(d, "error_code", "INTEGRITY_CHECK_FAILED");
    cJSON_AddStringToObject(d, "message", "The stored file failed its integrity check and was not sent.");
    http_json(req, 500, o);
}

/* The 200's status and headers. */
static void headers(h2o_req_t *req, const drop_meta *meta, uint64_t size)
{
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = size;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   h2o_strdup(&req->pool, meta->mime, SIZE_MAX).base, strlen(meta->mime));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-sha256"), 1, NULL,
                          h2o_strdup(&req->pool, meta->sha256, 64).base, 64);
    content_disposition(req, meta->filename);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store, no-cache, must-revalidate, max-age=0, no-transform"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("identity"));
}

/* ---- opening ---- */

/* On the last use or a burn the name goes into the trash at once: a descriptor keeps
 * reading, and the shredder waits for every download's lock. */
static void burn_rename(worker *w, const char *id)
{
    char path[PATHS_MAX], trash[PATHS_MAX], to[PATHS_MAX], rnd[17];
    uint8_t r[8];
    crypt_random(r, sizeof(r));
    crypt_hex(r, sizeof(r), rnd);
    if (paths_file(w->cfg, id, path, sizeof(path)) == 0 && paths_trash_dir(w->cfg, trash, sizeof(trash)) == 0 &&
        snprintf(to, sizeof(to), "%s/%s.%s", trash, id, rnd) < (int)sizeof(to) && rename(path, to) != 0)
        log_event(LOG_ERROR, "burn_rename_failed", "%s", strerror(errno));
}

static void read_first(stream *s)
{
    s->job_result = sealed_read_in_place(s->rd, 0, 1, s->buf[0], s->spans[0], &s->plain_len[0]);
    s->nspans[0] = 1;
}

/* Check the header, the salt and the file's length against the record, and read and
 * authenticate the first segment: on the loop as far as the page cache holds them
 * (open_cached), the rest on a helper thread (open_work). */
static void open_reader(stream *s)
{
    s->job_result = sealed_reader_open(&s->rd, s->fk, &s->src, s->salt, s->size, CHUNK_SEGMENTS);
    if (uncached(s))
        return; /* the helper thread needs the key */
    explicit_bzero(s->fk, sizeof(s->fk));
    if (s->job_result != SEALED_OK)
        return;
    s->opened = 1;
    s->nsegs = sealed_reader_segments(s->rd);
    if (s->buf[0] == NULL || (s->nsegs > 1 && s->buf[1] == NULL) || sealed_reader_buf_max(s->rd) > s->buf_len) {
        s->job_result = SEALED_ERR_INTERNAL; /* out of memory, or a header claiming larger segments */
        return;
    }
    read_first(s);
}

/* 1 when the first segment is read or the file has failed for good, 0 when the disk
 * must be waited for: the source is then a blocking one again, for open_work. */
static int open_cached(stream *s)
{
    sealed_source_fd_cached(&s->src, s->fd);
    open_reader(s);
    if (!uncached(s))
        return 1;
    sealed_source_fd(&s->src, s->fd);
    return 0;
}

static void open_work(offload_job *job)
{
    stream *s = H2O_STRUCT_FROM_MEMBER(stream, job, job);
    if (s->rd == NULL)
        open_reader(s);
    else
        read_first(s); /* the loop opened it, the first segment was not cached */
}

/* The first segment is authenticated before any header is sent. */
static void open_done(offload_job *job)
{
    stream *s = H2O_STRUCT_FROM_MEMBER(stream, job, job);
    h2o_req_t *req = s->req;
    s->reading = 0;
    if (s->opened && s->last)
        burn_rename(s->w, s->id); /* the use is taken, whether or not the client stayed */
    if (req == NULL) {
        stream_free(s);
        return;
    }
    if (s->job_result != SEALED_OK) {
        integrity_failed(req);
        return;
    }
    s->next = 1;
    shm_add(s->w->env->shm, M_DOWNLOADS, 1);
    shm_add(s->w->env->shm, M_DOWNLOAD_BYTES, s->plain_len[0]);
    headers(req, &s->meta, s->size);
    s->super.proceed = on_proceed;
    s->super.stop = on_stop;
    h2o_start_response(req, &s->super);
    read_ahead(s);
    send_current(s);
}

/* ---- object storage: the object's GET, read as it streams ---- */

typedef struct {
    h2o_generator_t super;
    worker *w;
    h2o_req_t *req;    /* NULL once the request is gone */
    h2o_timeout_entry_t stall;
    objstore_get *g;
    sealed_source src;
    sealed_reader *rd;
    uint64_t nsegs, next;
    uint32_t segment_size;
    uint64_t length;   /* of the object */
    /* The chunk being sent: opened in place in buf, spans its segments' plaintext. The
     * next is read into it once the client has taken it. */
    uint8_t *buf;
    size_t buf_len;
    struct iovec spans[CHUNK_SEGMENTS];
    size_t plain_len;
    int waiting;       /* the client took the last chunk; the next has not come whole */
} ostream;

static void ostream_free(ostream *s)
{
    if (h2o_timeout_is_linked(&s->stall))
        h2o_timeout_unlink(&s->stall);
    sealed_reader_free(s->rd);
    objstore_get_free(s->g);
    chunk_give(s->w, s->buf, s->buf_len);
    free(s);
}

static void ostream_detach(void *p)
{
    ostream_free(*(ostream **)p);
}

static void on_ostall(h2o_timeout_entry_t *entry)
{
    ostream *s = H2O_STRUCT_FROM_MEMBER(ostream, stall, entry);
    h2o_socket_t *sock = s->req->conn->callbacks->get_socket(s->req->conn);
    log_event(LOG_WARNING, "download_stalled", "no progress for %u s: connection closed", s->w->cfg->body_timeout);
    if (sock != NULL)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
}

/* Where the segments first .. first + count - 1 end in the object. */
static uint64_t ostream_end(const ostream *s, uint64_t first, uint32_t count)
{
    uint64_t end = SEALED_HEADER_LEN + (first + count) * ((uint64_t)s->segment_size + CRYPT_TAG_LEN);
    return end < s->length ? end : s->length;
}

/* Read, authenticate and send the next chunk once it is held whole: 1 sent (or
 * failed: the answer is ended), 0 waiting for more bytes. */
static int ostream_send(ostream *s)
{
    uint32_t count = s->nsegs - s->next < CHUNK_SEGMENTS ? (uint32_t)(s->nsegs - s->next) : CHUNK_SEGMENTS;
    uint64_t end = ostream_end(s, s->next, count);
    int status = objstore_get_status(s->g);
    if (objstore_get_offset(s->g) + objstore_get_avail(s->g) < end) {
        if (status == 200)
            return 0;
        log_event(LOG_ERROR, "storage_read_failed", "object storage stopped mid-stream");
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return 1;
    }
    if (sealed_read_in_place(s->rd, s->next, count, s->buf, s->spans, &s->plain_len) != SEALED_OK) {
        /* Tampered or truncated after the headers went out: abort, never send bad bytes. */
        log_event(LOG_ERROR, "integrity_check_failed", "segment failed authentication mid-stream");
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return 1;
    }
    s->next += count;
    shm_add(s->w->env->shm, M_DOWNLOAD_BYTES, s->plain_len);
    send_chunk(s->w, s->req, &s->stall, s->spans, count, s->next == s->nsegs);
    return 1;
}

static void on_oproceed(h2o_generator_t *g, h2o_req_t *req)
{
    ostream *s = (ostream *)g;
    (void)req;
    if (h2o_timeout_is_linked(&s->stall))
        h2o_timeout_unlink(&s->stall);
    s->waiting = !ostream_send(s);
}

static void on_ochanged(void *data)
{
    ostream *s = data;
    if (s->waiting)
        s->waiting = !ostream_send(s);
}

/* The use is taken and the object's first segment held: open it as the record says. */
static void object_stream(h2o_req_t *req, keyed_op *op, const record_access *r, const drop_meta *meta)
{
    worker *w = worker_of(req);
    uint8_t fk[CRYPT_KEY_LEN];
    sealed_header h;
    ostream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        http_error(req, 500, "Internal server error");
        return;
    }
    *(ostream **)h2o_mem_alloc_shared(&req->pool, sizeof(ostream *), ostream_detach) = s;
    s->w = w;
    s->req = req;
    s->stall.cb = on_ostall;
    s->g = op->get; /* the stream's now */
    op->get = NULL;
    s->length = objstore_get_length(s->g);
    objstore_get_source(s->g, &s->src);
    if (objstore_get_peek_header(s->g, &h) != 0 ||
        crypt_derive_with(w->hmac, op->secret->key, op->key, op->keylen, r->salt, CRYPT_INFO_FILE, fk) != 0) {
        integrity_failed(req);
        return;
    }
    s->segment_size = h.segment_size;
    int rc = sealed_reader_open(&s->rd, fk, &s->src, r->salt, r->size, CHUNK_SEGMENTS);
    explicit_bzero(fk, sizeof(fk));
    if (rc == SEALED_OK) {
        s->nsegs = sealed_reader_segments(s->rd);
        s->buf = chunk_take(w, sealed_reader_buf_max(s->rd), &s->buf_len);
        rc = s->buf != NULL ? sealed_read_in_place(s->rd, 0, 1, s->buf, s->spans, &s->plain_len)
                            : SEALED_ERR_INTERNAL;
    }
    if (rc != SEALED_OK) {
        integrity_failed(req);
        return;
    }
    s->next = 1;
    shm_add(w->env->shm, M_DOWNLOADS, 1);
    shm_add(w->env->shm, M_DOWNLOAD_BYTES, s->plain_len);
    headers(req, meta, r->size);
    s->super.proceed = on_oproceed;
    s->super.stop = on_stop;
    objstore_get_notify(s->g, on_ochanged, s);
    h2o_start_response(req, &s->super);
    send_chunk(w, req, &s->stall, s->spans, 1, s->nsegs == 1);
}

static void on_take_use(h2o_req_t *req, keyed_op *op, const record_access *r)
{
    worker *w = worker_of(req);
    if (r->outcome == RECORD_BURNED) {
        http_error(req, 410, "Download limit has been reached");
        return;
    }
    if (r->outcome != RECORD_OK) {
        http_error(req, 404, "File not found or link expired");
        return;
    }
    drop_meta meta;
    if (keyed_open_meta(req, op, r, &meta) != 0) {
        integrity_failed(req);
        return;
    }
    if (op->get != NULL) {
        object_stream(req, op, r, &meta);
        return;
    }
    if (op->fd < 0) {
        http_error(req, 404, "File not found or link expired");
        return;
    }
    stream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        http_error(req, 500, "Internal server error");
        return;
    }
    *(stream **)h2o_mem_alloc_shared(&req->pool, sizeof(stream *), stream_detach) = st;
    st->fd = op->fd; /* the stream owns it now */
    op->fd = -1;
    st->w = w;
    st->req = req;
    st->stall.cb = on_stall;
    st->size = r->size;
    st->last = r->uses_left == 0;
    memcpy(st->salt, r->salt, sizeof(st->salt));
    memcpy(st->id, op->id, sizeof(st->id));
    st->meta = meta;
    if (crypt_derive_with(w->hmac, op->secret->key, op->key, op->keylen, st->salt, CRYPT_INFO_FILE, st->fk) != 0) {
        explicit_bzero(st->fk, sizeof(st->fk));
        integrity_failed(req);
        return;
    }
    /* Each holds one chunk, or the whole file if smaller. Taken here, on the loop, which
     * alone keeps buffers. */
    size_t len = sealed_buf_max(st->size, SEALED_SEGMENT_SIZE, CHUNK_SEGMENTS);
    st->buf[0] = chunk_take(w, len, &st->buf_len);
    if (st->size > SEALED_SEGMENT_SIZE)
        st->buf[1] = chunk_take(w, len, &st->buf_len);
    st->job = (offload_job){.work = open_work, .done = open_done};
    if (open_cached(st)) {
        open_done(&st->job);
        return;
    }
    st->reading = 1;
    offload_submit(w->offload, &st->job);
}

int download_handle(h2o_req_t *req, const char *key, size_t keylen)
{
    keyed_run(req, store_take_use, KEYED_OPEN_FILE, key, keylen, on_take_use);
    return 0;
}

/* ---- burning ---- */

static void on_burn(h2o_req_t *req, keyed_op *op, const record_access *r)
{
    switch (r->outcome) {
    case RECORD_OK:
        /* On object storage the shredder deletes it, S3_DELETE_DELAY from now. */
        if (worker_of(req)->objstore == NULL)
            burn_rename(worker_of(req), op->id);
        req->res.status = 204;
        req->res.reason = "No Content";
        h2o_send_inline(req, NULL, 0);
        break;
    case RECORD_FORBIDDEN: http_error(req, 403, "Invalid or missing delete token"); break;
    /* Only the right token learns this: a wrong one is refused first. */
    case RECORD_BURNED: http_error(req, 410, "Already burned"); break;
    default: http_error(req, 404, "File not found or link expired"); break;
    }
}

int burn_handle(h2o_req_t *req, const char *key, size_t keylen)
{
    char digest[CRYPT_DIGEST_HEX_LEN + 1];
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-delete-token"), -1);
    h2o_iovec_t token = i == -1 ? h2o_iovec_init("", 0) : req->headers.entries[i].value;
    /* No token is a wrong token: the store compares (and counts) either way. */
    if (crypt_token_digest(token.base, token.len, digest) != 0) {
        http_error(req, 500, "Internal server error");
        return 0;
    }
    keyed_burn(req, key, keylen, digest, on_burn);
    return 0;
}
