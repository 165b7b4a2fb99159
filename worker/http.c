/* http.c - what every response shares: JSON bodies, the contract's headers (a filter, so
 * even h2o's own errors carry them; Retry-After on every 429, 503 and 507 among them),
 * CORS, client identity, public URLs, and one log line per request (a logger, so every
 * way a request can end is logged once). */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "addr.h"
#include "bodies.h"
#include "jsonw.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "util.h"

#define H(s) s, sizeof(s) - 1

_Static_assert(HTTP_ADDR_MAX >= ADDR_GROUP_TEXT_MAX, "a client key fits HTTP_ADDR_MAX");

static void retry_after(h2o_req_t *req, long seconds);

void http_header(h2o_req_t *req, const h2o_token_t *token, const char *value, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, h2o_strdup(&req->pool, value, len).base, len);
}

static void header_str(h2o_req_t *req, const char *name, size_t nlen, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, nlen, 1, NULL, value, vlen);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "";
    }
}

/* body as JSON text ending in a newline (so a terminal's prompt starts on a line of its
 * own), in the request's pool; takes body. */
static h2o_iovec_t json_text(h2o_req_t *req, cJSON *body)
{
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    size_t len = text != NULL ? strlen(text) : 0;
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, text != NULL ? text : "", len);
    copy[len] = '\n';
    cJSON_free(text);
    return h2o_iovec_init(copy, len + 1);
}

static void send_body(h2o_req_t *req, int status, const char *type, size_t type_len, h2o_iovec_t body)
{
    req->res.status = status;
    req->res.reason = http_reason(status);
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, type_len);
    h2o_send_inline(req, body.base, body.len);
}

void http_json(h2o_req_t *req, int status, cJSON *body)
{
    send_body(req, status, H("application/json; charset=utf-8"), json_text(req, body));
}

void http_json_w(h2o_req_t *req, int status, const jsonw *body)
{
    long len = jsonw_len(body);
    if (len < 0) {
        http_error(req, 500, "Internal server error");
        return;
    }
    char *copy = h2o_mem_alloc_pool(&req->pool, (size_t)len + 1);
    memcpy(copy, body->buf, (size_t)len);
    copy[len] = '\n';
    send_body(req, status, H("application/json; charset=utf-8"), h2o_iovec_init(copy, (size_t)len + 1));
}

void http_text(h2o_req_t *req, int status, const char *text, size_t len)
{
    send_body(req, status, H("text/plain; charset=utf-8"), h2o_iovec_init(text, len));
}

void http_html(h2o_req_t *req, int status, const char *html, size_t len)
{
    send_body(req, status, H("text/html; charset=utf-8"), h2o_iovec_init(html, len));
}

/* {"detail": detail} and the newline, in req's pool: room for every byte escaped. */
static h2o_iovec_t detail_text(h2o_req_t *req, const char *detail)
{
    size_t cap = strlen(detail) * 6 + 16;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    jsonw j;
    jsonw_init(&j, buf, cap - 1, 1);
    jsonw_str(&j, "detail", detail);
    jsonw_close(&j);
    size_t len = (size_t)jsonw_len(&j);
    buf[len] = '\n';
    return h2o_iovec_init(buf, len + 1);
}

void http_error(h2o_req_t *req, int status, const char *detail)
{
    send_body(req, status, H("application/json; charset=utf-8"), detail_text(req, detail));
}

h2o_iovec_t http_error_head(h2o_req_t *req, int status, const char *detail, long retry_after_s)
{
    req->res.status = status;
    req->res.reason = http_reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H("application/json; charset=utf-8"));
    if (retry_after_s > 0)
        retry_after(req, retry_after_s);
    http_common_headers(req);
    h2o_iovec_t text = detail_text(req, detail);
    req->res.content_length = text.len;
    return text;
}

void http_unavailable(h2o_req_t *req)
{
    http_error(req, 503, "Service temporarily unavailable");
}

void http_storage_unavailable(h2o_req_t *req)
{
    retry_after(req, HTTP_STORAGE_RETRY_S);
    http_error(req, 503, "Storage temporarily unavailable");
}

static void retry_after(h2o_req_t *req, long seconds)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", seconds > 0 ? seconds : 1);
    http_header(req, H2O_TOKEN_RETRY_AFTER, buf, (size_t)n);
}


void http_blocked(h2o_req_t *req, long seconds)
{
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "detail");
    cJSON_AddStringToObject(d, "error", "Too many failed attempts. Temporarily blocked.");
    cJSON_AddNumberToObject(d, "retry_after_seconds", (double)(seconds > 0 ? seconds : 1));
    retry_after(req, seconds);
    http_json(req, 429, o);
}

void http_rate_limited(h2o_req_t *req, long seconds)
{
    retry_after(req, seconds);
    http_error(req, 429, "Rate limit exceeded");
}

/* When to try again, where the answer did not say itself. 503: the store is away (it
 * is retried at once, and every request is answered again within 2 s of its return).
 * 507: the disk is full or not writable, which passes in minutes, as uploads expire or
 * an operator acts; a client would re-send its whole body each time. 429: every 429
 * says its own; this only keeps a new one from going out without. */
static long retry_after_default(int status)
{
    switch (status) {
    case 429: return 1;
    case 503: return 2;
    case 507: return 60;
    default: return 0;
    }
}

/* ---- client identity ---- */

static int peer_addr(h2o_req_t *req, uint8_t out[16])
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len == 0 || addr_from_sockaddr((struct sockaddr *)&ss, out) != 0)
        return -1;
    return 0;
}

static int peer_trusted(h2o_req_t *req)
{
    uint8_t peer[16];
    return peer_addr(req, peer) == 0 && addr_match(&worker_of(req)->cfg->trusted_proxies, peer);
}

int http_client_addr(h2o_req_t *req, uint8_t out[16])
{
    const addr_cidr_list *trusted = &worker_of(req)->cfg->trusted_proxies;
    ssize_t cursor = -1, last = -1;
    if (peer_addr(req, out) != 0)
        return HTTP_CLIENT_NO_ADDRESS;
    if (!addr_match(trusted, out))
        return 0;
    /* The last X-Forwarded-For line was appended by the nearest proxy: walk up from it. */
    while ((cursor = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, cursor)) != -1)
        last = cursor;
    for (ssize_t h = last; h >= 0; h--) {
        h2o_iovec_t v = req->headers.entries[h].value;
        if (req->headers.entries[h].name != &H2O_TOKEN_X_FORWARDED_FOR->buf)
            continue;
        addr_fwd r = addr_forwarded(v.base, v.len, trusted, out);
        if (r == ADDR_FWD_MALFORMED)
            return HTTP_CLIENT_UNKNOWN_FORWARDED;
        if (r == ADDR_FWD_CLIENT)
            break;
    }
    return 0;
}

int http_from_host_itself(h2o_req_t *req)
{
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t peer[16];
    if (peer_addr(req, peer) != 0 || h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, -1) != -1)
        return 0;
    return memcmp(peer, v4, 16) == 0 || memcmp(peer, v6, 16) == 0;
}

/* The client's name: its address as seen, or (grouped) the network its limits count. */
static void client_name(h2o_req_t *req, char *out, int grouped)
{
    uint8_t a[16];
    int r = http_client_addr(req, a);
    if (r == HTTP_CLIENT_UNKNOWN_FORWARDED)
        snprintf(out, HTTP_ADDR_MAX, HTTP_CLIENT_UNKNOWN_FORWARDED_TEXT);
    else if (r != 0)
        snprintf(out, HTTP_ADDR_MAX, "unknown");
    else if (grouped)
        addr_group_text(a, worker_of(req)->cfg->ipv6_prefix, out, HTTP_ADDR_MAX);
    else
        addr_text(a, out, HTTP_ADDR_MAX);
}

void http_client(h2o_req_t *req, char *out)
{
    client_name(req, out, 0);
}

void http_client_key(h2o_req_t *req, char *out)
{
    client_name(req, out, 1);
}

/* ---- public URLs ---- */

static int host_ok(h2o_iovec_t h)
{
    if (h.len == 0 || h.len > 255)
        return 0;
    for (size_t i = 0; i < h.len; i++) {
        char ch = h.base[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_'))
            return 0;
    }
    return 1;
}

static h2o_iovec_t first_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    if (i == -1)
        return h2o_iovec_init(NULL, 0);
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ',')
        n++;
    while (n > 0 && v.base[n - 1] == ' ')
        n--;
    size_t s = 0;
    while (s < n && v.base[s] == ' ')
        s++;
    return h2o_iovec_init(v.base + s, n - s);
}

void http_base_url(h2o_req_t *req, char *out, size_t cap)
{
    const cfg *c = worker_of(req)->cfg;
    if (c->public_url[0] != '\0') {
        snprintf(out, cap, "%s", c->public_url);
        return;
    }
    const char *scheme = req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    h2o_iovec_t host = req->authority;
    if (peer_trusted(req)) {
        h2o_iovec_t p = first_header(req, H("x-forwarded-proto"));
        if (h2o_lcstris(p.base, p.len, H("https")))
            scheme = "https";
        else if (h2o_lcstris(p.base, p.len, H("http")))
            scheme = "http";
        h2o_iovec_t fh = first_header(req, H("x-forwarded-host"));
        if (host_ok(fh))
            host = fh;
    }
    if (!host_ok(host))
        host = h2o_iovec_init(H("localhost"));
    snprintf(out, cap, "%s://%.*s", scheme, (int)host.len, host.base);
}

/* ---- the headers filter ---- */

static void add_cors(h2o_req_t *req, const cfg *c)
{
    if (c->cors_origins.n == 1 && strcmp(c->cors_origins.items[0], "*") == 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, H("*"));
    } else {
        ssize_t i = h2o_find_header_by_str(&req->headers, H("origin"), -1);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H("Origin"));
        if (i == -1)
            return;
        h2o_iovec_t o = req->headers.entries[i].value;
        for (size_t k = 0; k < c->cors_origins.n; k++)
            if (h2o_memis(o.base, o.len, c->cors_origins.items[k], strlen(c->cors_origins.items[k]))) {
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, o.base,
                               o.len);
                break;
            }
    }
    header_str(req, H("access-control-allow-methods"), H("GET, POST, PUT, DELETE, OPTIONS"));
    header_str(req, H("access-control-allow-headers"), H("Content-Type, Accept, X-Delete-Token, Expiry, Uses"));
    header_str(req, H("access-control-expose-headers"), H("X-SHA256, Content-Disposition, X-Request-ID"));
    header_str(req, H("access-control-max-age"), H("600"));
}

typedef struct {
    h2o_filter_t super;
} headers_filter;

/* h2o answers some errors itself (body over the limit, request head too long, broken
 * framing) in text/plain. This ostream swaps such a body for the contract's JSON. */
typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
} json_error_ostream;

static void on_json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                               h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    json_error_ostream *o = (json_error_ostream *)self;
    if (state == H2O_SEND_STATE_IN_PROGRESS)
        h2o_ostream_send_next(self, req, NULL, 0, state);
    else
        h2o_ostream_send_next(self, req, &o->body, 1, state);
}

/* h2o keeps Content-Length out of req->headers, but the request head is still in the
 * socket's input. */
int http_declared_length(h2o_req_t *req, unsigned long long *out)
{
    h2o_socket_t *sock = req->version < 0x200 ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->input == NULL)
        return -1;
    const char *p = sock->input->bytes, *end = p + (sock->input->size < 65536 ? sock->input->size : 65536);
    static const char name[] = "\ncontent-length:";
    for (; p + sizeof(name) - 1 < end; p++) {
        if (!h2o_lcstris(p, sizeof(name) - 1, name, sizeof(name) - 1))
            continue;
        p += sizeof(name) - 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        unsigned long long v = 0;
        int digits = 0;
        for (; p < end && *p >= '0' && *p <= '9' && digits < 19; p++, digits++)
            v = v * 10 + (unsigned long long)(*p - '0');
        if (digits == 0)
            return -1;
        *out = v;
        return 0;
    }
    return -1;
}

static h2o_ostream_t **h2o_error_as_json(h2o_req_t *req, h2o_ostream_t **slot)
{
    const cfg *c = worker_of(req)->cfg;
    char detail[200];
    unsigned long long declared;
    if (req->res.status == 413 && http_declared_length(req, &declared) == 0)
        snprintf(detail, sizeof(detail), "File too large: %llu bytes (Max Size: %llu bytes)", declared,
                 (unsigned long long)c->max_file_size);
    else if (req->res.status == 413)
        snprintf(detail, sizeof(detail), "File too large: more than %llu bytes (Max Size: %llu bytes)",
                 (unsigned long long)c->max_file_size, (unsigned long long)c->max_file_size);
    else
        snprintf(detail, sizeof(detail), "%s", req->res.reason != NULL ? req->res.reason : "Error");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "detail", detail);
    json_error_ostream *os = (json_error_ostream *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = on_json_error_send;
    os->body = json_text(req, o);
    req->res.content_length = os->body.len;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    req->res.headers.entries[ct].value = h2o_iovec_init(H("application/json; charset=utf-8"));
    return &os->super.next;
}

/* X-Request-ID: a UUID v4 from the worker's pool of random bytes, refilled 32 ids at
 * a time (a libcrypto draw per response cost as much as the rest of a status answer). */
static void request_id(worker *w, char id[37])
{
    if (w->rid_left < 16) {
        if (crypt_random(w->rid_pool, sizeof(w->rid_pool)) != 0) {
            util_uuid4(id);
            return;
        }
        w->rid_left = sizeof(w->rid_pool);
    }
    w->rid_left -= 16;
    util_uuid4_from(w->rid_pool + w->rid_left, id);
}

void http_common_headers(h2o_req_t *req)
{
    char id[37];
    request_id(worker_of(req), id);
    header_str(req, H("x-request-id"), h2o_strdup(&req->pool, id, 36).base, 36);
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H("no-store, no-cache, must-revalidate, max-age=0"));
    header_str(req, H("pragma"), H("no-cache"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_EXPIRES, NULL, H("0"));
    header_str(req, H("x-content-type-options"), H("nosniff"));
    header_str(req, H("x-frame-options"), H("DENY"));
    header_str(req, H("x-xss-protection"), H("1; mode=block"));
    header_str(req, H("referrer-policy"), H("no-referrer"));
    add_cors(req, worker_of(req)->cfg);
    long wait = retry_after_default(req->res.status);
    if (wait > 0 && h2o_find_header(&req->res.headers, H2O_TOKEN_RETRY_AFTER, -1) == -1)
        retry_after(req, wait);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    /* The answer is decided: no handler reads the request body any more. */
    bodies_release(req);
    http_common_headers(req);
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && ct != -1 &&
        h2o_memis(req->res.headers.entries[ct].value.base, req->res.headers.entries[ct].value.len,
                  H("text/plain; charset=utf-8")))
        slot = h2o_error_as_json(req, slot);
    h2o_setup_next_ostream(req, slot);
}

/* ---- the request logger ---- */

typedef struct {
    h2o_logger_t super;
} request_logger;

/* The request's log line and its metrics; a 503 counts as the store failing unless
 * the worker refused the request itself (store_failed 0). */
static void log_request(h2o_req_t *req, int store_failed)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    double duration = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) +
                      (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e6;
    char path[256], client[HTTP_ADDR_MAX], method[16];
    route_match route = routes_match_request(req);
    routes_log_path(&route, path, sizeof(path));
    http_client(req, client);
    snprintf(method, sizeof(method), "%.*s", (int)(req->method.len < 15 ? req->method.len : 15), req->method.base);
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H("x-request-id"), -1);
    char members[LOG_LINE_MAX];
    jsonw f;
    jsonw_init(&f, members, sizeof(members), 0);
    if (i != -1)
        jsonw_strn(&f, "request_id", req->res.headers.entries[i].value.base,
                   strnlen(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len));
    jsonw_str(&f, "method", method);
    jsonw_str(&f, "path", path);
    jsonw_num(&f, "status_code", req->res.status);
    jsonw_num(&f, "duration", duration < 0 ? 0 : duration);
    jsonw_str(&f, "client", client);
    long len = jsonw_len(&f);
    log_members(req->res.status >= 500 ? LOG_ERROR : LOG_INFO, "request", members,
                len < 0 ? sizeof(members) : (size_t)len);
    metrics_observe(worker_of(req)->env->shm, route.label, req->res.status, duration < 0 ? 0 : duration,
                    store_failed && req->res.status == 503);
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    log_request(req, 1);
}

void http_log_refused(h2o_req_t *req)
{
    log_request(req, 0);
}

void http_register(h2o_pathconf_t *pathconf)
{
    headers_filter *f = (headers_filter *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    request_logger *l = (request_logger *)h2o_create_logger(pathconf, sizeof(*l));
    l->super.log_access = on_log_access;
}
