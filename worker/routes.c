/* routes.c - the route table: for each path, the methods it takes, the handler of each,
 * the metrics label, how the access log shows it, whether link previewers get the link
 * page there and on which listeners it is served. Routing, 405 Allow values, logged
 * paths and metrics labels are all computed from it here. */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "openapi.h"
#include "page.h"
#include "previewers.h"
#include "worker.h"

/* The methods a row may take, in the order an Allow header lists them. */
enum { GET = 1 << 0, HEAD = 1 << 1, POST = 1 << 2, PUT = 1 << 3, DELETE = 1 << 4, NMETHODS = 5 };
static const char *const method_names[NMETHODS] = {"GET", "HEAD", "POST", "PUT", "DELETE"};

/* How a row's path is matched and logged. A tail is user data (a key, a file name):
 * it is always masked, so a client cannot write what it likes into the log. */
typedef enum { EXACT_PATH, KEY_TAIL, NAME_TAIL } tail_kind;
static const char *const tail_mask[] = {[KEY_TAIL] = "{key}", [NAME_TAIL] = "{name}"};

/* A row's flags. An OPEN row names no path of its own: it takes its methods on any path
 * its pattern fits that no other row names, and makes no other method a 405 there (so
 * PUT /{name} leaves GET /anything a 404). LINK_PAGE: link previewers asking GET or
 * HEAD get the link page instead of the handler (the links people paste into chats). */
enum { OPEN = 1 << 0, LINK_PAGE = 1 << 1, STREAMS = 1 << 2 };

typedef struct {
    unsigned methods;
    const char *path; /* exact ("/health"), or the prefix before the tail ("/download/") */
    tail_kind tail;
    int (*handle)(h2o_req_t *req);                                    /* exact paths */
    int (*handle_tail)(h2o_req_t *req, const char *tail, size_t len); /* paths with a tail */
    const char *label;                                                /* metrics; unique */
    unsigned flags;
    unsigned where; /* ROUTES_PUBLIC or _ADMIN */
} route;

#define EXACT(methods, path, handler, label) {methods, path, EXACT_PATH, handler, NULL, label, 0, ROUTES_PUBLIC}
#define KEYED(methods, prefix, handler, label) {methods, prefix, KEY_TAIL, NULL, handler, label, 0, ROUTES_PUBLIC}
#define NAMED(methods, prefix, handler, label) {methods, prefix, NAME_TAIL, NULL, handler, label, 0, ROUTES_PUBLIC}
/* A key's link as people share it. */
#define LINKED(methods, prefix, handler, label)                                                                        \
    {methods, prefix, KEY_TAIL, NULL, handler, label, LINK_PAGE, ROUTES_PUBLIC}
/* An upload: its body is sealed as it arrives (stream.h). */
#define UPLOAD(methods, path, handler, label) {methods, path, EXACT_PATH, handler, NULL, label, STREAMS, ROUTES_PUBLIC}
#define UPLOAD_NAMED(methods, prefix, handler, label)                                                                  \
    {methods, prefix, NAME_TAIL, NULL, handler, label, STREAMS, ROUTES_PUBLIC}
/* "/{name}": any one-segment path no other row names, for these methods only. */
#define UPLOAD_ANY_NAME(methods, handler, label)                                                                       \
    {methods, "/", NAME_TAIL, NULL, handler, label, OPEN | STREAMS, ROUTES_PUBLIC}
/* An operator's route: on METRICS_LISTEN's sockets alone when it is set. */
#define ADMIN(methods, path, handler, label) {methods, path, EXACT_PATH, handler, NULL, label, 0, ROUTES_ADMIN}

/* A path may appear in several rows (one per handler); a method goes to the first row
 * of its path that takes it. HEAD only where a request changes nothing: on /download
 * or /preview it would take a use or spend the one look (a previewer's HEAD gets the
 * link page). PUT /upload without a name is a 405 whose detail names the way, not a
 * file called "upload"; so is PUT on any other path a row names. */
static const route routes[] = {
    EXACT(GET | HEAD, "/", page_handle, "page"),
    NAMED(GET | HEAD, "/assets/", page_asset_handle, "assets"),
    UPLOAD(POST, "/upload", upload_handle, "upload"),
    UPLOAD_NAMED(PUT, "/upload/", put_handle, "put_upload"),
    LINKED(GET, "/preview/", preview_handle, "preview"),
    LINKED(GET, "/download/", download_handle, "download"),
    KEYED(DELETE, "/download/", burn_handle, "delete"),
    KEYED(GET | HEAD, "/status/", status_handle, "status"),
    EXACT(GET | HEAD, "/health", health_handle, "health"),
    EXACT(GET | HEAD, "/openapi.json", openapi_handle, "openapi"),
    ADMIN(GET | HEAD, "/metrics", metrics_handle, "metrics"),
    UPLOAD_ANY_NAME(PUT, put_handle, "put"),
};

enum { NROUTES = sizeof routes / sizeof routes[0] };

static unsigned method_bit(h2o_iovec_t method)
{
    for (int i = 0; i < NMETHODS; i++)
        if (h2o_memis(method.base, method.len, method_names[i], strlen(method_names[i])))
            return 1u << i;
    return 0;
}

/* Trailing slashes are optional everywhere: an exact path may come with one more '/',
 * a prefix row takes one non-empty segment (no '/' inside) that may end in one. */
static int path_matches(const route *r, h2o_iovec_t path, h2o_iovec_t *tail, int *slash)
{
    size_t n = strlen(r->path);
    if (path.len < n || memcmp(path.base, r->path, n) != 0)
        return 0;
    h2o_iovec_t rest = h2o_iovec_init(path.base + n, path.len - n);
    if (r->tail == EXACT_PATH) {
        *slash = rest.len == 1 && rest.base[0] == '/' && r->path[n - 1] != '/';
        return rest.len == 0 || *slash;
    }
    if (rest.len > 0 && rest.base[rest.len - 1] == '/')
        rest.len--;
    if (rest.len == 0 || memchr(rest.base, '/', rest.len) != NULL)
        return 0;
    *tail = rest;
    return 1;
}

/* The rows that name a path first; only a path none of them names goes to an OPEN row,
 * and only for a method that row takes. */
route_match routes_match(h2o_iovec_t path, h2o_iovec_t method, unsigned served)
{
    route_match m = {.row = -1, .label = NROUTES};
    unsigned bit = method_bit(method);
    for (int open = 0; open <= 1 && m.row == -1; open++)
        for (int i = 0; i < NROUTES; i++) {
            h2o_iovec_t tail = {NULL, 0};
            int slash = 0;
            if ((routes[i].where & served) == 0 || ((routes[i].flags & OPEN) != 0) != open ||
                !path_matches(&routes[i], path, &tail, &slash))
                continue;
            if (open && (routes[i].methods & bit) == 0)
                continue;
            m.methods |= routes[i].methods;
            m.link_page |= (routes[i].flags & LINK_PAGE) != 0;
            if (m.row == -1 || (!m.allowed && (routes[i].methods & bit) != 0)) {
                m.row = i;
                m.label = (size_t)i;
                m.allowed = (routes[i].methods & bit) != 0;
                m.tail = tail;
                m.slash = slash;
            }
        }
    return m;
}

int routes_streams(h2o_iovec_t path, h2o_iovec_t method, unsigned served)
{
    route_match m = routes_match(path, method, served);
    if (m.row == -1 || !m.allowed || (routes[m.row].flags & STREAMS) == 0)
        return 0;
    return (routes[m.row].methods & PUT) != 0 ? 1 : 2;
}

route_match routes_match_request(h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    if (p.len == 0) {
        p = req->path;
        const char *q = memchr(p.base, '?', p.len);
        if (q != NULL)
            p.len = (size_t)(q - p.base);
    }
    return routes_match(p, req->method, worker_routes_served(req));
}

void routes_allow(unsigned methods, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < NMETHODS; i++)
        if ((methods & (1u << i)) != 0 && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s, ", method_names[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "OPTIONS");
}

int routes_serve(h2o_req_t *req)
{
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        /* The CORS preflight, on every path; the headers filter adds the CORS headers. */
        req->res.status = 204;
        req->res.reason = "No Content";
        h2o_send_inline(req, NULL, 0);
        return 0;
    }
    route_match m = routes_match(req->path_normalized, req->method, worker_routes_served(req));
    if (m.row == -1) {
        http_error(req, 404, "Not Found");
        return 0;
    }
    unsigned bit = method_bit(req->method);
    if (m.link_page && (bit & (GET | HEAD)) != 0 && previewers_match(&worker_of(req)->cfg->preview_agents, req)) {
        previewers_page(req);
        return 0;
    }
    if (!m.allowed) {
        char allow[64];
        routes_allow(m.methods, allow, sizeof(allow));
        http_header(req, H2O_TOKEN_ALLOW, allow, strlen(allow));
        /* curl -T FILE URL without a trailing slash puts to the URL as it is */
        http_error(req, 405, bit == PUT ? "Method Not Allowed. To upload with PUT, name the file: "
                                          "PUT /upload/{filename} or PUT /{filename}"
                                        : "Method Not Allowed");
        return 0;
    }
    const route *r = &routes[m.row];
    return r->tail == EXACT_PATH ? r->handle(req) : r->handle_tail(req, m.tail.base, m.tail.len);
}

void routes_log_path(const route_match *m, char *out, size_t cap)
{
    if (m->row == -1) {
        snprintf(out, cap, "{unrouted}");
        return;
    }
    const route *r = &routes[m->row];
    if (r->tail == EXACT_PATH)
        snprintf(out, cap, "%s%s", r->path, m->slash ? "/" : "");
    else
        snprintf(out, cap, "%s%s", r->path, tail_mask[r->tail]);
}

size_t routes_labels(void)
{
    return NROUTES + 1;
}

const char *routes_label(size_t i)
{
    return i < NROUTES ? routes[i].label : "other";
}
