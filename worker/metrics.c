/* metrics.c - GET /metrics in the Prometheus text format, read from the counters every
 * process adds to in shared memory (common/shm.h), so one scrape of any worker sees the
 * sums over all workers, the shredder and the master, without a store round trip.
 * metrics_observe() is fed by the request logger: one call per finished response. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "routes.h"
#include "version.h"

#define METRICS_MAX 16384

/* Upper bounds in seconds; the last slot of shm->latency counts everything slower. */
static const double latency_le[SHM_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5,   5};

static const struct {
    int counter;
    const char *name, *help;
} counters[] = {
    {M_UPLOADS, "uploads_total", "Uploads stored (201)."},
    {M_UPLOAD_BYTES, "upload_bytes_total", "Plaintext bytes of the uploads stored."},
    {M_DOWNLOADS, "downloads_total", "Downloads started (each takes one use)."},
    {M_DOWNLOAD_BYTES, "download_bytes_total", "Plaintext bytes sent by downloads."},
    {M_BURNS, "burns_total", "Files shredded after their last download."},
    {M_EXPIRED_SHREDDED, "expired_shredded_total", "Files shredded because they expired."},
    {M_ORPHANS_SHREDDED, "orphans_shredded_total", "Files without a live record found by the sweep and shredded."},
    {M_BLOCKED, "blocked_requests_total", "Requests refused (429) because the client is blocked after failed keys."},
    {M_STORE_ERRORS, "store_errors_total", "Requests answered 503 because the metadata store did not answer."},
    {M_WORKER_RESTARTS, "worker_restarts_total", "Workers and shredders that died and were restarted."},
    {M_FAIL_BUDGET_EXCEEDED, "failure_budget_exceeded_total",
     "Windows in which unknown keys of all clients passed GLOBAL_FAIL_LIMIT (counted by the server that saw it)."},
    {M_FAIL_BUDGET_DELAYED, "failure_budget_delayed_total",
     "Requests naming a key that waited because GLOBAL_FAIL_LIMIT was passed."},
    {M_CONNS_OVER_CLIENT, "connections_over_client_limit_total",
     "Connections closed at once because their client held MAX_CONNECTIONS_PER_CLIENT in that worker."},
    {M_HEAD_TIMEOUTS, "head_timeouts_total", "Connections closed without a whole request head within HEAD_TIMEOUT."},
    {M_BAD_FRAMING, "bad_framing_total",
     "HTTP/1 requests refused (400, connection closed) for framing a proxy could read another way."},
    {M_BODIES_REFUSED, "bodies_refused_total",
     "Request bodies answered before they were whole: over a body or spill cap, too many at once, "
     "from a client lately answered 429, or an HTTP/2 body past BODY_TIMEOUT."},
    {M_RESET_FLOODS, "reset_floods_total",
     "HTTP/2 connections told GOAWAY because most of their streams were reset before an answer."},
    {M_STORE_SHED, "store_shed_total",
     "Requests answered 503 at once because STORE_MAX_PENDING store operations were pending."},
};

void metrics_observe(shm_state *shm, size_t endpoint, int status, double seconds, int store_failed)
{
    if (shm == NULL || endpoint >= shm->endpoints)
        return;
    int cls = status / 100;
    atomic_fetch_add_explicit(&shm->status_class[endpoint][cls >= 0 && cls < SHM_STATUS_CLASSES ? cls : 0], 1,
                              memory_order_relaxed);
    /* On /health a 503 means "degraded", not a request the store failed. */
    if (store_failed && strcmp(routes_label(endpoint), "health") != 0)
        shm_add(shm, M_STORE_ERRORS, 1);
    size_t b = 0;
    while (b < SHM_LATENCY_BUCKETS && seconds > latency_le[b])
        b++;
    atomic_fetch_add_explicit(&shm->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shm->latency_sum_us, (uint64_t)(seconds > 0 ? seconds * 1e6 : 0), memory_order_relaxed);
    atomic_fetch_add_explicit(&shm->latency_count, 1, memory_order_relaxed);
}

/* ---- the page ---- */

typedef struct {
    char *buf;
    size_t len;
} page;

__attribute__((format(printf, 2, 3))) static void put(page *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->len, METRICS_MAX - p->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->len = p->len + (size_t)n < METRICS_MAX ? p->len + (size_t)n : METRICS_MAX - 1;
}

static uint64_t load(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render(page *p, shm_state *shm, uint64_t started_ms)
{
    put(p,
        "# HELP raven_zero_info Version of the running server.\n# TYPE raven_zero_info gauge\n"
        "raven_zero_info{version=\"%s\"} 1\n",
        RZ_VERSION);
    put(p,
        "# HELP raven_zero_start_time_seconds When the master started (Unix time).\n"
        "# TYPE raven_zero_start_time_seconds gauge\nraven_zero_start_time_seconds %llu\n",
        (unsigned long long)(started_ms / 1000));
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        put(p, "# HELP raven_zero_%s %s\n# TYPE raven_zero_%s counter\nraven_zero_%s %llu\n", counters[i].name,
            counters[i].help, counters[i].name, counters[i].name,
            (unsigned long long)load(&shm->counters[counters[i].counter]));

    put(p, "# HELP raven_zero_responses_total Responses by endpoint and status class.\n"
           "# TYPE raven_zero_responses_total counter\n");
    for (size_t ep = 0; ep < shm->endpoints; ep++)
        for (int cls = 1; cls < SHM_STATUS_CLASSES; cls++)
            put(p, "raven_zero_responses_total{endpoint=\"%s\",class=\"%dxx\"} %llu\n", routes_label(ep), cls,
                (unsigned long long)load(&shm->status_class[ep][cls]));

    /* The count is the sum of the buckets read, so the histogram is always consistent. */
    uint64_t cumulative = 0;
    put(p, "# HELP raven_zero_request_duration_seconds Time from the request's first byte to its last "
           "response byte.\n# TYPE raven_zero_request_duration_seconds histogram\n");
    for (int b = 0; b < SHM_LATENCY_BUCKETS; b++) {
        cumulative += load(&shm->latency[b]);
        put(p, "raven_zero_request_duration_seconds_bucket{le=\"%g\"} %llu\n", latency_le[b],
            (unsigned long long)cumulative);
    }
    cumulative += load(&shm->latency[SHM_LATENCY_BUCKETS]);
    put(p, "raven_zero_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    put(p, "raven_zero_request_duration_seconds_sum %.6f\n", (double)load(&shm->latency_sum_us) / 1e6);
    put(p, "raven_zero_request_duration_seconds_count %llu\n", (unsigned long long)cumulative);
}

/* The client as the rest of the server sees it: the TCP peer, or the forwarded client
 * when the peer is a trusted proxy, so a public request relayed by a local reverse
 * proxy is not mistaken for a local scraper. */
static int allowed(h2o_req_t *req)
{
    uint8_t client[16];
    return http_client_addr(req, client) == 0 && addr_match(&worker_of(req)->cfg->metrics_allow, client);
}

int metrics_handle(h2o_req_t *req)
{
    worker *w = worker_of(req);
    if (!allowed(req)) {
        http_error(req, 403, "Forbidden");
        return 0;
    }
    page p = {h2o_mem_alloc_pool(&req->pool, METRICS_MAX), 0};
    p.buf[0] = '\0';
    render(&p, w->env->shm, w->env->started_ms);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = p.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_send_inline(req, p.buf, p.len);
    return 0;
}
