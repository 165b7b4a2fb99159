/* early.c - answers the worker gives before libh2o 2.2.5 hands it a request, and the
 * GOAWAY that closes an HTTP/2 connection flooding us with streams it resets.
 *
 * libh2o answers only requests a handler holds, and runs the handler once the whole
 * body is in. To answer while a body arrives we write the answer ourselves: over
 * HTTP/2 into the connection's write buffer (http2_internal.h: HEADERS, DATA with
 * END_STREAM, then RST_STREAM(NO_ERROR), which asks the client to stop sending, RFC
 * 9113 section 8.1) before closing the stream; over HTTP/1 on the socket, which we
 * then shut down so that libh2o, reading on, finds it closed and lets it go. */
#include "early.h"

#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "http.h"
#include "stream.h"

#define HTTP1_ANSWER_MAX 4096

static int is_http2(h2o_req_t *req)
{
    return req->version >= 0x200;
}

static h2o_http2_stream_t *stream_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
}

typedef struct {
    void (*cb)(h2o_req_t *req, void *data);
    void *data;
} visit;

static int on_each(h2o_req_t *req, void *p)
{
    visit *v = p;
    v->cb(req, v->data);
    return 0;
}

void early_foreach(h2o_context_t *ctx, void (*cb)(h2o_req_t *req, void *data), void *data)
{
    visit v = {cb, data};
    /* The protocols' own walks: each connection's one HTTP/1 request (whatever its
     * state), every HTTP/2 stream. */
    H2O_HTTP1_CALLBACKS.foreach_request(ctx, on_each, &v);
    H2O_HTTP2_CALLBACKS.foreach_request(ctx, on_each, &v);
}

static int body_of_http2(h2o_req_t *req, early_body *out)
{
    h2o_http2_stream_t *stream = stream_of(req);
    if (stream->_req_body == NULL)
        return -1;
    out->buf = stream->_req_body->bytes != NULL ? stream->_req_body : NULL; /* else still the prototype */
    out->held = out->buf != NULL ? out->buf->size : 0;
    out->declared = stream->_expected_content_length;
    out->arriving = stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY;
    out->streamed = 0;
    out->stream = stream->stream_id;
    return 0;
}

static int body_of_http1(h2o_req_t *req, early_body *out)
{
    /* libh2o stamps the start of a body once the head announcing one is parsed. */
    if (req->timestamps.request_body_begin_at.tv_sec == 0)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    unsigned long long declared;
    out->buf = sock != NULL && sock->input != NULL && sock->input->bytes != NULL ? sock->input : NULL;
    out->held = out->buf != NULL ? out->buf->size : 0;
    out->declared = http_declared_length(req, &declared) == 0 && declared < SIZE_MAX ? (size_t)declared : SIZE_MAX;
    /* Not yet whole (libh2o sets the entity when it is), not answered (by libh2o or
     * by us). */
    out->arriving = req->entity.base == NULL && req->res.status == 0;
    out->streamed = stream_holds(req);
    out->stream = 0;
    return 0;
}

int early_body_of(h2o_req_t *req, early_body *out)
{
    return is_http2(req) ? body_of_http2(req, out) : body_of_http1(req, out);
}

/* ---- HTTP/2 ---- */

/* Whether the peer's flow-control windows take len bytes of DATA on the stream. */
static int window_allows(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream, size_t len)
{
    return h2o_http2_window_get_window(&conn->_write.window) >= (ssize_t)len &&
           h2o_http2_window_get_window(&stream->output_window) >= (ssize_t)len;
}

/* The frames go into _write.buf in order, HPACK-encoded against the connection's own
 * table at the moment they are queued, exactly as libh2o queues a response. */
static void answer_http2(h2o_req_t *req, h2o_iovec_t body)
{
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    h2o_http2_stream_t *stream = stream_of(req);
    if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
        h2o_timestamp_t ts;
        h2o_get_timestamp(req->conn->ctx, &req->pool, &ts);
        if (!window_allows(conn, stream, body.len))
            body.len = 0; /* the status alone; no content-length then */
        h2o_hpack_flatten_response(&conn->_write.buf, &conn->_output_header_table, stream->stream_id,
                                   conn->peer_settings.max_frame_size, &req->res, &ts,
                                   &req->conn->ctx->globalconf->server_name, body.len > 0 ? body.len : SIZE_MAX);
        h2o_iovec_t dst = h2o_buffer_reserve(&conn->_write.buf, H2O_HTTP2_FRAME_HEADER_SIZE + body.len);
        h2o_http2_encode_frame_header((uint8_t *)dst.base, body.len, H2O_HTTP2_FRAME_TYPE_DATA,
                                      H2O_HTTP2_FRAME_FLAG_END_STREAM, (int32_t)stream->stream_id);
        h2o_memcpy(dst.base + H2O_HTTP2_FRAME_HEADER_SIZE, body.base, body.len);
        conn->_write.buf->size += H2O_HTTP2_FRAME_HEADER_SIZE + body.len;
        h2o_http2_window_consume_window(&conn->_write.window, body.len);
        h2o_http2__encode_rst_stream_frame(&conn->_write.buf, stream->stream_id, -H2O_HTTP2_ERROR_NONE);
        h2o_http2_conn_request_write(conn);
    }
    /* Frees the stream, its body buffer and req. The client's DATA frames already on
     * their way get RST_STREAM(STREAM_CLOSED) from libh2o. */
    h2o_http2_stream_reset(conn, stream);
}

int early_goaway(h2o_req_t *req)
{
    if (!is_http2(req))
        return -1;
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    if (conn->state != H2O_HTTP2_CONN_STATE_OPEN || conn->sock == NULL)
        return -1;
    /* As libh2o does on a protocol error: half-closed, it ignores new streams at once,
     * even later frames of the read it is parsing, and closes when the last stream
     * in progress is done. */
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                                  h2o_iovec_init(H2O_STRLIT("too many streams reset")));
    h2o_http2_conn_request_write(conn);
    conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
    return 0;
}

/* ---- HTTP/1 ---- */

/* Status line, libh2o's Date and Server, Connection: close, req->res's headers, body. */
static size_t http1_bytes(h2o_req_t *req, h2o_iovec_t body, char *out, size_t cap)
{
    h2o_timestamp_t ts;
    h2o_get_timestamp(req->conn->ctx, &req->pool, &ts);
    const h2o_iovec_t *server = &req->conn->ctx->globalconf->server_name;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\ndate: %s\r\nserver: %.*s\r\nconnection: close\r\ncontent-length: %zu\r\n",
                     req->res.status, req->res.reason, ts.str->rfc1123, (int)server->len, server->base, body.len);
    size_t len = n > 0 && (size_t)n < cap ? (size_t)n : cap;
    for (size_t i = 0; i < req->res.headers.size && len < cap; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        n = snprintf(out + len, cap - len, "%.*s: %.*s\r\n", (int)h->name->len, h->name->base, (int)h->value.len,
                     h->value.base);
        len += n > 0 ? (size_t)n : 0;
    }
    n = snprintf(out + (len < cap ? len : cap), len < cap ? cap - len : 0, "\r\n%.*s", (int)body.len, body.base);
    len += n > 0 ? (size_t)n : 0;
    return len < cap ? len : 0;
}

/* No lingering close: libh2o would buffer whatever more the client sends. A client
 * still sending may therefore see the connection reset before it reads the answer. */
static void answer_http1(h2o_req_t *req, h2o_iovec_t body)
{
    char buf[HTTP1_ANSWER_MAX];
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL)
        return;
    int fd = h2o_socket_get_fd(sock);
    size_t len = http1_bytes(req, body, buf, sizeof(buf));
    /* libh2o writes nothing while a body arrives, unless its "100 Continue" is still
     * on its way: then the answer is left out rather than interleaved with it. */
    if (len > 0 && !h2o_socket_is_writing(sock))
        (void)send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_RDWR);
}

void early_answer(h2o_req_t *req, int status, const char *detail, long retry_after_s)
{
    h2o_iovec_t body = http_error_head(req, status, detail, retry_after_s);
    /* What the log line names; libh2o fills these in only when it hands a request over. */
    if (req->method.base == NULL)
        req->method = req->input.method;
    if (req->path.base == NULL)
        req->path = req->input.path;
    http_log_refused(req);
    if (is_http2(req))
        answer_http2(req, body);
    else
        answer_http1(req, body);
}
