/* stream.c - HTTP/1 reading done by the worker itself (stream.h).
 *
 * An accepted socket is created by libh2o with its loop reading for it; we set
 * H2O_SOCKET_FLAG_DONT_READ, so that the loop only calls the read callback, and put
 * our own callback (on_readable) in front of libh2o's HTTP/1 reader: it reads a
 * bounded amount into the socket's input buffer and calls libh2o's reader. libh2o puts
 * its reader back after every response; stream_settle takes the socket again after
 * the turn, before the client's next request can arrive.
 *
 * Once libh2o has parsed the head of an upload with a Content-Length, stream_check
 * replaces libh2o's body reader (h2o_private.h) with ours (on_body): each call reads at
 * most what the upload has room for into the worker's buffer and feeds it. The body's
 * bytes never stay in libh2o's buffer, which holds the head alone. With the body in,
 * libh2o's own reader is put back with a length of zero, and it hands the request to
 * the handler exactly as it would have. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2o_private.h"
#include "http.h"
#include "routes.h"
#include "worker.h"

#define HEAD_READ_BYTES (64u << 10)  /* read per call while no body is streamed */
#define BODY_READ_BYTES (128u << 10) /* the worker's buffer: one read of a body */

typedef struct stream_rec {
    h2o_private_length_reader reader; /* first: it is the connection's reader */
    void (*libh2o_reader)(h2o_private_http1_conn *conn);
    worker *w;
    h2o_req_t *req;
    struct upload_op *op; /* until the handler takes it */
    size_t head;          /* bytes of the request head at the front of the input */
    size_t left;          /* body bytes still to come */
    int waiting;          /* for room in the upload's write queue */
    struct stream_rec *next, **prev;
} stream_rec;

static void on_body(h2o_private_http1_conn *conn);

static h2o_private_evsock *evsock(h2o_socket_t *sock)
{
    return (h2o_private_evsock *)sock;
}

static h2o_private_http1_conn *http1_conn(h2o_socket_t *sock)
{
    return sock->data;
}

static stream_rec *streaming(h2o_private_http1_conn *conn)
{
    return conn->_req_entity_reader != NULL && conn->_req_entity_reader->handle_incoming_entity == on_body
               ? (stream_rec *)conn->_req_entity_reader
               : NULL;
}

/* ---- heads, and bodies libh2o keeps ---- */

/* Read into the socket's input as libh2o does, but at most max bytes. */
static const char *read_some(h2o_socket_t *sock, size_t max)
{
    int fd = h2o_socket_get_fd(sock);
    size_t got = 0;
    while (got < max) {
        h2o_iovec_t b = h2o_buffer_reserve(&sock->input, 4096);
        if (b.base == NULL)
            return h2o_socket_error_out_of_memory;
        size_t want = b.len < max - got ? b.len : max - got;
        ssize_t n;
        while ((n = read(fd, b.base, want)) < 0 && errno == EINTR)
            ;
        if (n < 0)
            return errno == EAGAIN ? NULL : h2o_socket_error_io;
        if (n == 0)
            return got == 0 ? h2o_socket_error_closed : NULL;
        sock->input->size += (size_t)n;
        got += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    return NULL;
}

/* A head's read, with the body bytes behind it, never makes libh2o's buffer spill:
 * the buffer doubles while less than 4 KiB of it is free. */
static size_t head_read_max(const worker *w)
{
    size_t most = (size_t)w->cfg->body_memory_max / 4;
    return most < HEAD_READ_BYTES ? most : HEAD_READ_BYTES;
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    h2o_private_http1_conn *conn = http1_conn(sock);
    worker *w = H2O_STRUCT_FROM_MEMBER(worker, ctx, conn->super.ctx);
    /* A streamed body is read by on_body, which libh2o's reader calls. A body libh2o
     * keeps is read whole, as libh2o would; a head in small reads, so that the body
     * behind it stays in the kernel until it is known where it goes. */
    if (err == NULL && streaming(conn) == NULL)
        err = read_some(sock, conn->_req_entity_reader != NULL ? SIZE_MAX : head_read_max(w));
    w->http1_read(sock, err);
}

void stream_adopt(worker *w, h2o_socket_t *sock)
{
    if (sock->ssl != NULL || sock->_cb.read == NULL || evsock(sock)->fd != h2o_socket_get_fd(sock) ||
        (evsock(sock)->flags & H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION) == 0 || http1_conn(sock)->sock != sock)
        return;
    if (w->http1_read == NULL)
        w->http1_read = sock->_cb.read;
    if (sock->_cb.read != w->http1_read)
        return;
    sock->_cb.read = on_readable;
    evsock(sock)->flags |= H2O_SOCKET_FLAG_DONT_READ;
}

void stream_settle(worker *w, h2o_socket_t *sock)
{
    h2o_private_evsock *s = evsock(sock);
    /* Not reading (NULL) is not a change of hands. */
    if ((s->flags & H2O_SOCKET_FLAG_DONT_READ) == 0 || sock->_cb.read == on_readable || sock->_cb.read == NULL)
        return;
    if (sock->_cb.read == w->http1_read)
        sock->_cb.read = on_readable;
    else
        s->flags &= ~H2O_SOCKET_FLAG_DONT_READ; /* HTTP/2 now: libh2o reads for it */
}

/* ---- streamed bodies ---- */

static void rec_unlink(stream_rec *s)
{
    if (s->prev == NULL)
        return;
    *s->prev = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = NULL;
}

/* The request goes (its pool with it): an upload no handler took goes too. */
static void on_rec_dispose(void *p)
{
    stream_rec *s = p;
    rec_unlink(s);
    if (s->op != NULL)
        upload_stream_gone(s->op);
    s->op = NULL;
}

/* Feed n bytes at p; the worker's buffer and the input are wiped after. */
static void feed(stream_rec *s, uint8_t *p, size_t n)
{
    upload_stream_data(s->op, p, n);
    explicit_bzero(p, n);
    s->left -= n;
}

/* Bytes of the body to read now: what the upload has room for, one buffer at most.
 * Each upload whose socket is ready reads once a loop turn, so none waits behind
 * another, and sixteen cost a turn a few milliseconds of sealing. */
static size_t readable_now(stream_rec *s)
{
    size_t n = upload_stream_room(s->op);
    n = n < s->left ? n : s->left;
    return n < BODY_READ_BYTES ? n : BODY_READ_BYTES;
}

/* The body is in: libh2o's reader, told the body is empty and the request the head
 * alone, hands the request to its handler. */
static void finish(h2o_private_http1_conn *conn, stream_rec *s)
{
    upload_stream_end(s->op);
    conn->_reqsize = s->head;
    s->reader.content_length = 0;
    s->reader.handle_incoming_entity = s->libh2o_reader;
    s->libh2o_reader(conn);
}

/* Read what there is room for; NULL, or the error libh2o closes the connection on. */
static const char *pull(h2o_private_http1_conn *conn, stream_rec *s)
{
    h2o_buffer_t *in = conn->sock->input;
    /* What came in with the head first: it is moved out of libh2o's buffer, the bytes
     * of a request sent behind this one moved down to follow the head. */
    while (in->size > s->head && s->left > 0) {
        size_t have = in->size - s->head, n = readable_now(s);
        if (n == 0)
            return NULL; /* waits for room or the next turn */
        n = n < have ? n : have;
        uint8_t *p = (uint8_t *)in->bytes + s->head;
        feed(s, p, n);
        memmove(p, p + n, have - n);
        in->size -= n;
        if (n == have)
            break;
    }
    size_t n = readable_now(s);
    if (n > 0 && s->left > 0) {
        if (s->w->stream_buf == NULL && (s->w->stream_buf = malloc(BODY_READ_BYTES)) == NULL)
            return h2o_socket_error_out_of_memory;
        ssize_t got;
        while ((got = read(h2o_socket_get_fd(conn->sock), s->w->stream_buf, n)) < 0 && errno == EINTR)
            ;
        if (got == 0)
            return h2o_socket_error_closed;
        if (got < 0)
            return errno == EAGAIN ? NULL : h2o_socket_error_io;
        feed(s, s->w->stream_buf, (size_t)got);
    }
    return NULL;
}

/* libh2o's body reader, ours while the body streams: called after every readiness. */
static void on_body(h2o_private_http1_conn *conn)
{
    stream_rec *s = streaming(conn);
    const char *err = pull(conn, s);
    if (err != NULL) {
        s->w->http1_read(conn->sock, err); /* libh2o closes the connection */
        return;
    }
    if (s->left == 0) {
        finish(conn, s);
        return;
    }
    /* Out of room: no more reads until stream_check finds some, rather than a loop
     * that wakes to a readable socket it may not read. */
    if (!s->waiting && readable_now(s) == 0) {
        s->waiting = 1;
        h2o_socket_read_stop(conn->sock);
    }
}

/* The upload route of a request whose head just came in: 1 PUT, 2 POST, 0 neither. */
static int upload_route(h2o_req_t *req)
{
    /* Asked each turn while a body that is not an upload's arrives: a path that needs
     * rewriting is rewritten in a pool of its own, not the request's, which would grow. */
    h2o_mem_pool_t pool;
    size_t query_at, *norm_indexes;
    h2o_mem_init_pool(&pool);
    h2o_iovec_t path =
        h2o_url_normalize_path(&pool, req->input.path.base, req->input.path.len, &query_at, &norm_indexes);
    int route = routes_streams(path, req->input.method, worker_routes_served(req));
    h2o_mem_clear_pool(&pool);
    return route;
}

/* Take over the body of req if it is an upload's, announced and not yet in. */
static void begin(worker *w, h2o_req_t *req)
{
    h2o_private_http1_conn *conn = (h2o_private_http1_conn *)req->conn;
    unsigned long long declared;
    if (&conn->req != req || conn->sock == NULL || conn->sock->_cb.read != on_readable ||
        conn->_req_entity_reader == NULL || streaming(conn) != NULL || http_declared_length(req, &declared) != 0 ||
        declared == 0 || declared > w->cfg->max_file_size || conn->_req_entity_reader->content_length != declared ||
        conn->_reqsize < declared)
        return;
    int route = upload_route(req);
    if (route == 0)
        return;
    struct upload_op *op = upload_stream_begin(req, route == 1);
    if (op == NULL)
        return;
    stream_rec *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), on_rec_dispose);
    *s = (stream_rec){.reader = {on_body, (size_t)declared},
                      .libh2o_reader = conn->_req_entity_reader->handle_incoming_entity,
                      .w = w,
                      .req = req,
                      .op = op,
                      .head = conn->_reqsize - (size_t)declared,
                      .left = (size_t)declared};
    s->next = w->streams;
    if (s->next != NULL)
        s->next->prev = &s->next;
    s->prev = &w->streams;
    w->streams = s;
    conn->_req_entity_reader = &s->reader;
    on_body(conn); /* what came in with the head */
}

static int visit(h2o_req_t *req, void *data)
{
    worker *w = data;
    if (req->timestamps.request_body_begin_at.tv_sec != 0 && req->entity.base == NULL && req->res.status == 0 &&
        req->version < 0x200)
        begin(w, req);
    return 0;
}

void stream_check(worker *w)
{
    if (w->http1_read == NULL)
        return;
    for (stream_rec *s = w->streams; s != NULL; s = s->next) {
        if (!s->waiting || s->op == NULL || readable_now(s) == 0)
            continue;
        h2o_private_http1_conn *conn = (h2o_private_http1_conn *)s->req->conn;
        s->waiting = 0;
        h2o_socket_read_start(conn->sock, on_readable);
    }
    H2O_HTTP1_CALLBACKS.foreach_request(&w->ctx, visit, w);
}

static stream_rec *rec_of(h2o_req_t *req)
{
    for (stream_rec *s = worker_of(req)->streams; s != NULL; s = s->next)
        if (s->req == req)
            return s;
    return NULL;
}

struct upload_op *stream_take(h2o_req_t *req)
{
    stream_rec *s = req->version < 0x200 ? rec_of(req) : NULL;
    if (s == NULL)
        return NULL;
    struct upload_op *op = s->op;
    s->op = NULL;
    rec_unlink(s);
    return op;
}

int stream_holds(h2o_req_t *req)
{
    return req->version < 0x200 && rec_of(req) != NULL;
}

void stream_buffer_free(worker *w)
{
    free(w->stream_buf);
    w->stream_buf = NULL;
}
