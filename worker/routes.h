/* routes.h - the one table of what a worker serves (worker/routes.c). Routing, the
 * Allow header of a 405, the path the access log shows and the metrics label of every
 * request are all read from it, so a new route is one row there and nothing else. */
#ifndef RZ_ROUTES_H
#define RZ_ROUTES_H

#include <h2o.h>
#include <stddef.h>

/* Where a row is served: ROUTES_PUBLIC rows on LISTEN's sockets, ROUTES_ADMIN rows
 * (/metrics) on METRICS_LISTEN's when it is set; every row everywhere when it is not.
 * A row not served on a listener is not there at all for its requests (404). */
enum { ROUTES_PUBLIC = 1, ROUTES_ADMIN = 2 };

/* What the table makes of a request's path and method. */
typedef struct {
    int row;          /* the row that takes the method, else the first whose path matches;
                       * -1 when no row's path matches */
    int allowed;      /* row takes the method */
    unsigned methods; /* every method some row takes on this path: the 405's Allow */
    h2o_iovec_t tail; /* the segment after a prefix row's path (a key, a name) */
    int slash;        /* an exact path came with its optional trailing slash */
    size_t label;     /* metrics label (routes_label): row's, or the last for no row */
    int link_page;    /* a row of this path gives link previewers the link page */
} route_match;

/* Match a path (no query) and a method against the rows of the table a listener
 * serves (ROUTES_* bits). Pure: for routing, logging and tests alike. */
route_match routes_match(h2o_iovec_t path, h2o_iovec_t method, unsigned served);
/* The same for a request: its normalized path, or for a request libh2o refused before
 * normalizing it, its raw path up to the query; the rows of its listener. */
route_match routes_match_request(h2o_req_t *req);

/* Whether a request whose head just came in is an upload whose body is sealed as it
 * arrives (stream.h): 1 a PUT (the body is the file), 2 a POST (a form), 0 neither.
 * path is normalized, without the query. */
int routes_streams(h2o_iovec_t path, h2o_iovec_t method, unsigned served);

/* Answer a request: OPTIONS on any path is the CORS preflight (204); a link previewer
 * (PREVIEW_AGENTS) asking GET or HEAD on a link people share gets the link page;
 * otherwise the row's handler, 405 with Allow, or 404. */
int routes_serve(h2o_req_t *req);

/* The path as the access log shows it: a row's own path, a tail masked as {key} or
 * {name}, or "{unrouted}"; never a key or a file name, whatever the client sent. */
void routes_log_path(const route_match *m, char *out, size_t cap);

/* "GET, HEAD, OPTIONS": a method set as an Allow header (OPTIONS is always allowed). */
void routes_allow(unsigned methods, char *out, size_t cap);

/* Metrics labels: one per row, in table order, then "other". */
size_t routes_labels(void);
const char *routes_label(size_t i);

#endif
