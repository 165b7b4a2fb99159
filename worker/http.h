/* http.h - response helpers shared by the handlers: JSON bodies and errors, the
 * client's identity, the public base URL, and the filter and logger that give every
 * response its headers and every request its log line. */
#ifndef RZ_HTTP_H
#define RZ_HTTP_H

#include <cjson/cJSON.h>
#include <h2o.h>
#include <stdint.h>

#include "jsonw.h"
#include "worker.h"

#define HTTP_ADDR_MAX 64

const char *http_reason(int status);
/* Send body as the JSON response, ending in a newline (takes ownership). Every JSON
 * answer goes through here or through the filter's rewrite of libh2o's own errors. */
void http_json(h2o_req_t *req, int status, cJSON *body);
/* The same for a body written with jsonw (a complete object; copied). */
void http_json_w(h2o_req_t *req, int status, const jsonw *body);
/* Send UTF-8 text or HTML as the body (copied; none for HEAD). */
void http_text(h2o_req_t *req, int status, const char *text, size_t len);
void http_html(h2o_req_t *req, int status, const char *html, size_t len);
/* {"detail": "..."} */
void http_error(h2o_req_t *req, int status, const char *detail);
/* For an answer written without libh2o's help (early.c): sets req->res (status,
 * Content-Type, Retry-After when retry_after_s > 0, the headers of every response,
 * content_length) and returns the {"detail": "..."} body, in req's pool. */
h2o_iovec_t http_error_head(h2o_req_t *req, int status, const char *detail, long retry_after_s);
/* Add the headers every response carries (cache, security, X-Request-ID, CORS) to
 * req->res.headers. */
void http_common_headers(h2o_req_t *req);
/* 503 when the store is unreachable (or its secret not read yet). */
void http_unavailable(h2o_req_t *req);
/* 503 with Retry-After when object storage does not answer: nothing was spent. */
#define HTTP_STORAGE_RETRY_S 5
void http_storage_unavailable(h2o_req_t *req);
/* 429 for a blocked client: {"detail": {"error": ..., "retry_after_seconds": n}}. */
void http_blocked(h2o_req_t *req, long retry_after);
/* 429 "Rate limit exceeded" with Retry-After. */
void http_rate_limited(h2o_req_t *req, long retry_after);

/* The client: the TCP peer, or the right-most untrusted X-Forwarded-For entry when
 * the peer is a trusted proxy. 0; HTTP_CLIENT_NO_ADDRESS when the peer has no IP
 * address; HTTP_CLIENT_UNKNOWN_FORWARDED when a trusted hop forwarded an entry that is
 * not an address: the client is then none of the hops (never the proxy itself, so
 * never in METRICS_ALLOW), and all such requests are one client for limits and blocks. */
#define HTTP_CLIENT_NO_ADDRESS (-1)
#define HTTP_CLIENT_UNKNOWN_FORWARDED (-2)
#define HTTP_CLIENT_UNKNOWN_FORWARDED_TEXT "unknown-forwarded"
int http_client_addr(h2o_req_t *req, uint8_t out[16]);
/* The same in text form into out (HTTP_ADDR_MAX), "unknown" without an IP address,
 * "unknown-forwarded" after a malformed X-Forwarded-For entry: what the log shows. */
void http_client(h2o_req_t *req, char *out);
/* The client as limits, failure counts and blocks know it (addr_group_text: an IPv6
 * client is its IPV6_PREFIX network) into out (HTTP_ADDR_MAX), "unknown" without an
 * IP address. */
void http_client_key(h2o_req_t *req, char *out);
/* Is this the host asking itself (a container's or a supervisor's health probe)? The
 * peer is 127.0.0.1 or ::1 and forwards nobody: no X-Forwarded-For. A proxy on the
 * same host forwards its clients, so they are never taken for it. */
int http_from_host_itself(h2o_req_t *req);
/* "scheme://host" for URLs in responses: PUBLIC_URL, or the request's own. */
void http_base_url(h2o_req_t *req, char *out, size_t cap);

/* The Content-Length an HTTP/1 request announced (0, or -1 when it announced none or
 * its head is gone), read from the request head libh2o keeps in the socket's input: a
 * body libh2o refused unread, or one still arriving. */
int http_declared_length(h2o_req_t *req, unsigned long long *out);

/* Add a header by name (value copied into the request pool). */
void http_header(h2o_req_t *req, const h2o_token_t *token, const char *value, size_t len);

/* The log line (and metrics) of a request the worker answered itself before libh2o
 * handed it over; its 503s are not counted as the store failing. */
void http_log_refused(h2o_req_t *req);

/* Register the common-headers filter and the request logger on a path. */
void http_register(h2o_pathconf_t *pathconf);

#endif
