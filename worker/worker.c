/* worker.c - a worker process: its h2o context, the accept loop on the inherited
 * listening sockets with the connection bounds (per worker, per client, the request
 * head's deadline), the request bounds checked before the route table (routes.c)
 * takes a request, and the graceful drain.
 *
 * Everything runs on one event loop. SIGQUIT closes the listeners and keeps serving
 * until no request is in flight, then until every client has acknowledged every byte
 * of its answers (linger.h), all within SHUTDOWN_TIMEOUT; SIGTERM exits now. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "addr.h"
#include "framing.h"
#include "early.h"
#include "http.h"
#include "keyed.h"
#include "log.h"
#include "routes.h"
#include "spill.h"
#include "stream.h"
#include "util.h"

#define ACCEPT_BATCH 16
/* Accepts are balanced: a worker leaves new connections to another that holds more
 * than ACCEPT_SLACK fewer, if that one said so within LOAD_FRESH_MS (an idle loop
 * turns every TICK_MS; one stalled longer is not waited for). */
#define ACCEPT_SLACK 1
#define LOAD_FRESH_MS 300
/* How uploads are sniffed (scripts/magic_flags.py reads this line). */
#define MAGIC_FLAGS (MAGIC_MIME_TYPE | MAGIC_ERROR)
#define TICK_MS 100
#define STORE_TIMEOUT_MS 1000
#define FRESH_CONN_MS 1000
#define RETRY_MS 1000
/* Requests a connection may have reset before their answer before it can count as a
 * flood; a browser cancelling a page's requests stays far below. */
#define FLOOD_MIN 64
/* Requests of one HTTP/2 connection in handlers at once (libh2o's default is 100);
 * more wait, their bodies counted against the client's caps meanwhile. */
#define H2_REQUESTS_AT_ONCE 16

struct worker_conn {
    worker *w;
    h2o_socket_t *sock;
    uint64_t accepted_ms;
    int partial;          /* held part of a request at the last look */
    unsigned active;      /* requests of this connection being served */
    int held;             /* a duplicate of the socket while an answer may be in its send
                             queue (so that it outlives libh2o's close), or -1 */
    int shut;             /* its write side shut by the drain's flush */
    spill_ref *spill;     /* the spill file its input is in, held */
    uint32_t begun;       /* requests handed to a handler */
    uint32_t abandoned;   /* of those, ended before their answer started: the client left */
    worker_conn *prev, *next;
    peers_node peer;      /* counted for its client unless the peer is a trusted proxy */
    unsigned requests;    /* requests that arrived whole on it */
    int head_done;        /* the next request's head has all arrived */
    uint64_t head_since_ms; /* a request head is awaited since then; 0: none is */
    int late;             /* closed by us at HEAD_TIMEOUT */
};

/* ---- request references and tracking ---- */

static void on_ref_dispose(void *p)
{
    req_ref **slot = p;
    if (*slot != NULL) {
        (*slot)->req = NULL;
        (*slot)->slot = NULL;
    }
}

void req_ref_init(req_ref *r, h2o_req_t *req)
{
    req_ref **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_ref_dispose);
    *slot = r;
    r->req = req;
    r->slot = (void **)slot;
}

uint8_t *worker_chunk_take(worker *w)
{
    return w->nchunks > 0 ? w->chunks[--w->nchunks] : malloc(WORKER_CHUNK_LEN);
}

void worker_chunk_give(worker *w, uint8_t *buf, int plaintext)
{
    if (buf == NULL)
        return;
    if (plaintext)
        explicit_bzero(buf, WORKER_CHUNK_LEN);
    if (w->nchunks < WORKER_CHUNKS_KEPT)
        w->chunks[w->nchunks++] = buf;
    else
        free(buf);
}

void req_ref_release(req_ref *r)
{
    if (r->slot != NULL)
        *r->slot = NULL;
    r->slot = NULL;
    r->req = NULL;
}

static void on_conn_close(void *data);

typedef struct {
    worker *w;
    worker_conn *c; /* NULL if the socket is not one we track */
    h2o_req_t *req;
} request_slot;

/* HTTP/2 rapid reset (CVE-2023-44487): a stream opened and reset at once costs the
 * client two frames and us a handler and often a store operation. A connection whose
 * requests mostly end before their answer is told GOAWAY, which libh2o honours at once,
 * even for the frames of the read it is still parsing. */
static void reset_flood_check(worker *w, worker_conn *c, h2o_req_t *req)
{
    if (req->version < 0x200 || req->res.status != 0)
        return;
    c->abandoned++;
    if (c->abandoned >= FLOOD_MIN && c->abandoned * 2 >= c->begun && early_goaway(req) == 0) {
        w->reset_floods++;
        shm_add(w->env->shm, M_RESET_FLOODS, 1);
    }
}

/* libh2o disposes a connection's requests before it closes the socket, so c is
 * still there when its request ends. An answer is over once the kernel has its last
 * bytes; if some are not yet acknowledged, the socket is duplicated so that libh2o's
 * close cannot hand them to a kernel that may lose them (on_conn_close). */
static void on_request_done(void *p)
{
    request_slot *slot = p;
    worker_conn *c = slot->c;
    slot->w->active_reqs--;
    slot->w->last_activity_ms = util_mono_ms();
    if (c == NULL)
        return;
    c->active--;
    reset_flood_check(slot->w, c, slot->req);
    if (c->held < 0 && linger_unacked(h2o_socket_get_fd(c->sock)) > 0)
        c->held = fcntl(h2o_socket_get_fd(c->sock), F_DUPFD_CLOEXEC, 0);
}

/* Count a request as active (for the graceful drain, and so that a connection busy
 * with a request is never taken for one holding an incomplete request). */
static void track_request(h2o_req_t *req)
{
    request_slot *slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_request_done);
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    slot->w = worker_of(req);
    slot->c = sock != NULL && sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
    slot->req = req;
    slot->w->active_reqs++;
    if (slot->c != NULL) {
        slot->c->active++;
        slot->c->begun++;
        slot->c->partial = 0; /* it arrived whole */
        slot->c->requests++;
        slot->c->head_done = 0;
        slot->c->head_since_ms = 0;
    }
}

/* ---- requests ---- */

/* The request head within REQUEST_LINE / HEADER bounds? Else answered 414 or 431. */
static int head_too_large(h2o_req_t *req)
{
    const cfg *c = worker_of(req)->cfg;
    size_t bytes = 0;
    if (req->path.len > c->max_request_line) {
        http_error(req, 414, "Request line too long");
        return 1;
    }
    for (size_t i = 0; i < req->headers.size; i++)
        bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (req->headers.size > c->max_header_count || bytes > c->max_header_bytes) {
        http_error(req, 431, "Request header fields too large");
        return 1;
    }
    return 0;
}

/* Does the socket still speak HTTP/1? libh2o hands it to its HTTP/2 code when a client
 * sends the HTTP/2 preface or upgrades; either keeps its connection, which begins with
 * an h2o_conn_t, in sock->data, and only HTTP/1's logs a request index. (Our sockets
 * are plain: over TLS, sock->data would hold the handshake's state for a while.) */
static int speaks_http1(h2o_socket_t *sock)
{
    const h2o_conn_t *conn = sock->data;
    return sock->ssl == NULL && conn != NULL && conn->callbacks->log_.http1.request_index != NULL;
}

/* An HTTP/1 request whose framing a proxy in front could have read another way
 * (framing.h). libh2o took one reading and would read the next request from what
 * follows; answer 400 and close instead, so that no byte after it is ever taken for a
 * request. Its head is still at the start of the socket's input: libh2o consumes a
 * request's bytes only once its response is sent. */
static int framing_refused(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || !speaks_http1(sock))
        return 0;
    framing_verdict v = sock->input != NULL ? framing_check(sock->input->bytes, sock->input->size, req->version < 0x101)
                                            : FRAMING_INCOMPLETE;
    if (v == FRAMING_OK)
        return 0;
    req->http1_is_persistent = 0;
    shm_add(worker_of(req)->env->shm, M_BAD_FRAMING, 1);
    http_error(req, 400, framing_reason(v));
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    track_request(req);
    spill_hold(req);
    if (framing_refused(req) || head_too_large(req) || bodies_on_request(req))
        return 0;
    return routes_serve(req);
}

/* ---- connections ---- */

/* libh2o has closed its descriptor; a held duplicate keeps the connection until the
 * client has the rest, within BODY_TIMEOUT (or what is left of a drain). */
static void on_conn_close(void *data)
{
    worker_conn *c = data;
    worker *w = c->w;
    if (c->held >= 0)
        linger_add(&w->linger, c->held,
                   w->draining ? w->drain_deadline_ms : util_mono_ms() + (uint64_t)w->cfg->body_timeout * 1000);
    if (c->partial && !c->late)
        w->cut_off++;
    peers_remove(&c->peer);
    spill_let_go(c->spill);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    free(c);
}

/* libh2o spills request bodies above BODY_MEMORY_MAX to a file in SPILL_PATH; if that
 * file system is nearly full the spill fails inside libh2o, which can only drop the
 * connection. While it is low, bodies stay in memory (each still capped by
 * MAX_FILE_SIZE, all of them by MAX_BODY_BYTES_PER_WORKER), so the upload reaches our
 * handler and gets its 507. Checked for each new connection: statvfs costs about a
 * microsecond. */
static void spill_guard(worker *w)
{
    struct statvfs fs;
    uint64_t need = 2 * w->cfg->max_file_size + (1 << 20), free_bytes = UINT64_MAX;
    if (statvfs(cfg_spill_path(w->cfg), &fs) == 0)
        free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    h2o_socket_buffer_mmap_settings.threshold = free_bytes < need ? SIZE_MAX : (size_t)w->cfg->body_memory_max;
}

/* MAX_CONNECTIONS_PER_CLIENT: may the client of a new connection hold one more? If so
 * it is counted from now on. A trusted proxy carries everyone's connections, and a
 * peer without an IP address is no client: neither is counted. */
static int client_admits(worker *w, worker_conn *c, h2o_socket_t *sock)
{
    struct sockaddr_storage ss;
    uint8_t a[16];
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    if (len == 0 || addr_from_sockaddr((struct sockaddr *)&ss, a) != 0 || addr_match(&w->cfg->trusted_proxies, a))
        return 1;
    addr_group(a, w->cfg->ipv6_prefix, c->peer.client);
    if (peers_count(&w->peers, c->peer.client) >= w->cfg->max_connections_per_client)
        return 0;
    peers_add(&w->peers, &c->peer);
    return 1;
}

/* ---- accept balancing ----
 * Every worker waits on the same listening sockets, and the kernel wakes them all for a
 * connection: the first to run takes it, and a whole batch. Under a burst of
 * connections (a load balancer's pool, a client's) one worker took most of them and
 * saturated its core while the other idled. So each worker publishes its connection
 * count in shared memory every loop turn, and stops accepting while another accepting
 * worker holds fewer by more than the slack; it looks again every turn. */

static void on_accept(h2o_socket_t *listener, const char *err);

static void load_publish(worker *w, uint64_t now)
{
    atomic_store_explicit(&w->env->shm->worker_load[w->env->slot], SHM_LOAD(now, w->nconns),
                          memory_order_relaxed);
}

/* 1 when another worker that accepts holds fewer connections by more than the slack. */
static int accept_yields(const worker *w, uint64_t now)
{
    for (unsigned i = 0; i < w->cfg->workers && i < CFG_WORKERS_MAX; i++) {
        uint64_t v = atomic_load_explicit(&w->env->shm->worker_load[i], memory_order_relaxed);
        if (i != w->env->slot && v != 0 && SHM_LOAD_MS(v) + LOAD_FRESH_MS > now &&
            w->nconns > SHM_LOAD_CONNS(v) + ACCEPT_SLACK)
            return 1;
    }
    return 0;
}

static void accept_pause(worker *w, int pause)
{
    for (size_t i = 0; i < w->nlisten; i++) {
        if (pause)
            h2o_socket_read_stop(w->listeners[i]);
        else
            h2o_socket_read_start(w->listeners[i], on_accept);
    }
    w->accept_paused = pause;
}

/* After each loop turn: say how loaded this worker is, and take connections again
 * once the others have caught up. A draining worker says nothing: its slot is its
 * successor's (drain_start). */
static void accept_balance(worker *w)
{
    if (w->draining)
        return;
    uint64_t now = util_mono_ms();
    load_publish(w, now);
    if (w->accept_paused && !accept_yields(w, now))
        accept_pause(w, 0);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *actx = listener->data;
    worker *w = H2O_STRUCT_FROM_MEMBER(worker, ctx, actx->ctx);
    if (err != NULL)
        return;
    uint64_t now = util_mono_ms();
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (accept_yields(w, now)) {
            accept_pause(w, 1);
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        worker_conn *c = w->nconns < w->cfg->max_connections ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL) {
            h2o_socket_close(sock); /* over MAX_CONNECTIONS: shed load rather than fall over */
            w->shed++;
            continue;
        }
        if (!client_admits(w, c, sock)) {
            free(c);
            h2o_socket_close(sock);
            w->over_client++;
            shm_add(w->env->shm, M_CONNS_OVER_CLIENT, 1);
            continue;
        }
        c->w = w;
        c->sock = sock;
        c->held = -1;
        c->accepted_ms = util_mono_ms();
        c->next = w->conns;
        if (w->conns != NULL)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        load_publish(w, now); /* at once: the others may be taking this burst too */
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        spill_guard(w);
        h2o_accept(actx, sock);
        stream_adopt(w, sock);
    }
}

/* HEAD_TIMEOUT, checked once per tick: an HTTP/1 connection must send a whole request
 * head within it, a new one counted from its accept, a keep-alive one from the first
 * byte of its next request (while it sends nothing, BODY_TIMEOUT, libh2o's, bounds its
 * idling as before). libh2o has one deadline for a whole request, head and body; this
 * one is ours. HTTP/2 connections are left to IDLE_TIMEOUT. */
static void head_deadline(worker *w, worker_conn *c, uint64_t now)
{
    size_t have = c->sock->input != NULL ? c->sock->input->size : 0;
    if (c->active > 0 || c->late || !speaks_http1(c->sock))
        return;
    if (have == 0) {
        c->head_done = 0;
        c->head_since_ms = c->requests == 0 ? c->accepted_ms : 0;
    } else if (!c->head_done) {
        c->head_done = framing_head_end(c->sock->input->bytes, have) > 0;
        if (c->head_done)
            c->head_since_ms = 0;
        else if (c->head_since_ms == 0)
            c->head_since_ms = now;
    }
    if (c->head_since_ms != 0 && now - c->head_since_ms >= (uint64_t)w->cfg->head_timeout * 1000) {
        /* libh2o owns the socket: shut it down, and libh2o closes it on its next read. */
        shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
        c->late = 1;
        w->head_late++;
        shm_add(w->env->shm, M_HEAD_TIMEOUTS, 1);
    }
}

/* At most once a second, as counts: connections shed over MAX_CONNECTIONS or over
 * MAX_CONNECTIONS_PER_CLIENT, closed at HEAD_TIMEOUT, and closed holding part of a
 * request (slow senders cut off at BODY_TIMEOUT, clients gone mid-request). */
static void log_bounds(worker *w, uint64_t now)
{
    if ((w->shed == 0 && w->cut_off == 0 && w->over_client == 0 && w->head_late == 0) ||
        now - w->bounds_logged_ms < 1000)
        return;
    if (w->shed > 0)
        log_event(LOG_WARNING, "connections_shed", "%llu connections over MAX_CONNECTIONS=%u closed",
                  (unsigned long long)w->shed, w->cfg->max_connections);
    if (w->over_client > 0)
        log_event(LOG_WARNING, "connections_over_client_limit",
                  "%llu connections over MAX_CONNECTIONS_PER_CLIENT=%u closed", (unsigned long long)w->over_client,
                  w->cfg->max_connections_per_client);
    if (w->head_late > 0)
        log_event(LOG_WARNING, "request_heads_late",
                  "%llu connections closed without a whole request head within HEAD_TIMEOUT=%u s",
                  (unsigned long long)w->head_late, w->cfg->head_timeout);
    if (w->cut_off > 0)
        log_event(LOG_WARNING, "requests_cut_off",
                  "%llu connections closed holding an incomplete request (BODY_TIMEOUT=%u s or client gone)",
                  (unsigned long long)w->cut_off, w->cfg->body_timeout);
    w->shed = w->cut_off = w->over_client = w->head_late = 0;
    w->bounds_logged_ms = now;
}

/* At most once a second, as counts: HTTP/2 connections told GOAWAY for resetting their
 * streams, and requests answered 503 at once over STORE_MAX_PENDING. */
static void log_floods(worker *w, uint64_t now)
{
    uint64_t shed = store_take_shed(w->store);
    if (shed > 0) {
        w->store_shed += shed;
        shm_add(w->env->shm, M_STORE_SHED, shed);
    }
    if ((w->reset_floods == 0 && w->store_shed == 0) || now - w->floods_logged_ms < 1000)
        return;
    if (w->reset_floods > 0)
        log_event(LOG_WARNING, "reset_flood", "%llu HTTP/2 connections told GOAWAY: most of their streams reset before an answer",
                  (unsigned long long)w->reset_floods);
    if (w->store_shed > 0)
        log_event(LOG_WARNING, "store_shed", "%llu requests answered 503 at once: STORE_MAX_PENDING=%u store operations pending",
                  (unsigned long long)w->store_shed, w->cfg->store_max_pending);
    w->reset_floods = w->store_shed = 0;
    w->floods_logged_ms = now;
}

/* Once per tick: let go of lingering sockets that are done, note which connections
 * hold part of a request, close those late with their request head, and log what the
 * bounds and the flood defences did. */
static void housekeeping(worker *w)
{
    uint64_t now = util_mono_ms();
    if (now - w->housekeeping_ms < TICK_MS)
        return;
    w->housekeeping_ms = now;
    linger_poll(&w->linger, now);
    for (worker_conn *c = w->conns; c != NULL; c = c->next) {
        c->partial = c->active == 0 && c->sock->input != NULL && c->sock->input->size > 0;
        head_deadline(w, c, now);
        spill_watch(w, c->sock, &c->spill);
        if (!speaks_http1(c->sock))
            bodies_scrub_input(c->sock);
    }
    log_bounds(w, now);
    log_floods(w, now);
}

const secret *worker_secret(const worker *w)
{
    if (w->env->secret != NULL)
        return w->env->secret->loaded ? w->env->secret : NULL;
    return store_secret(w->store);
}

/* ---- set-up, drain, run ---- */

static void setup_h2o(worker *w)
{
    const cfg *c = w->cfg;
    h2o_config_init(&w->globalconf);
    w->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("raven-zero"));
    w->globalconf.max_request_entity_size = (size_t)c->max_file_size + CFG_BODY_SLACK;
    w->globalconf.http1.req_timeout = (uint64_t)c->body_timeout * 1000;
    /* Both h2c with prior knowledge and the h2c upgrade hang on this one switch. */
    w->globalconf.http1.upgrade_to_http2 = c->http2;
    w->globalconf.http2.idle_timeout = (uint64_t)c->idle_timeout * 1000;
    w->globalconf.http2.max_concurrent_requests_per_connection = H2_REQUESTS_AT_ONCE;
    h2o_hostconf_t *host = h2o_config_register_host(&w->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;
    http_register(path);
    http_register(&host->fallback_path);

    /* Request bodies above BODY_MEMORY_MAX spill to an unlinked file in SPILL_PATH
     * instead of the heap, so concurrent large uploads cost disk (or a memory file
     * system's pages), not the worker's memory. */
    snprintf(h2o_socket_buffer_mmap_settings.fn_template, sizeof(h2o_socket_buffer_mmap_settings.fn_template),
             "%s/.body.XXXXXX", cfg_spill_path(c));
    h2o_socket_buffer_mmap_settings.threshold = (size_t)c->body_memory_max;

    h2o_context_init(&w->ctx, h2o_evloop_create(), &w->globalconf);
    /* Not ctx.zero_timeout: libh2o runs a zero timeout linked from a timer callback in
     * the same pass, so slices re-linked there would never yield to I/O. */
    h2o_timeout_init(w->ctx.loop, &w->slice_timeout, 1);
    h2o_timeout_init(w->ctx.loop, &w->stall_timeout, (uint64_t)c->body_timeout * 1000);
    h2o_timeout_init(w->ctx.loop, &w->budget_timeout, KEYED_BUDGET_DELAY_MS);
    h2o_timeout_init(w->ctx.loop, &w->retry_timeout, RETRY_MS);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->globalconf.hosts;
    w->metrics_hosts[0] = host;
    w->metrics_accept_ctx.ctx = &w->ctx;
    w->metrics_accept_ctx.hosts = w->metrics_hosts;
}

unsigned worker_routes_served(h2o_req_t *req)
{
    worker *w = worker_of(req);
    if (w->cfg->metrics_listen.n == 0)
        return ROUTES_PUBLIC | ROUTES_ADMIN;
    return req->conn->hosts == w->metrics_hosts ? ROUTES_ADMIN : ROUTES_PUBLIC;
}

static void listen_on(worker *w, const int *fds, size_t n, h2o_accept_ctx_t *actx)
{
    for (size_t i = 0; i < n && i < CFG_LISTEN_MAX; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_create(w->ctx.loop, fds[i], H2O_SOCKET_FLAG_DONT_READ);
        sock->data = actx;
        h2o_socket_read_start(sock, on_accept);
        w->listeners[w->nlisten++] = sock;
    }
}

static void listeners_start(worker *w)
{
    listen_on(w, w->env->listen_fds, w->env->nlisten, &w->accept_ctx);
    listen_on(w, w->env->metrics_fds, w->env->nmetrics, &w->metrics_accept_ctx);
}

static void drain_start(worker *w)
{
    for (size_t i = 0; i < w->nlisten; i++) {
        h2o_socket_read_stop(w->listeners[i]);
        h2o_socket_close(w->listeners[i]);
    }
    w->nlisten = 0;
    w->draining = 1;
    w->accept_paused = 0;
    /* No longer one to leave connections to. A reload's successor in this slot may have
     * published already: it does again at its next turn, and this worker no more. */
    atomic_store_explicit(&w->env->shm->worker_load[w->env->slot], 0, memory_order_relaxed);
    h2o_context_request_shutdown(&w->ctx);
    /* HTTP/2 clients got a GOAWAY. libh2o 2.2.5 would send another a second later and
     * from then on close a connection the moment its last stream's final frames are
     * handed to the socket, dropping those the socket has not taken yet. Its
     * connections are closed by the flush below instead, once they are idle. */
    h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
    w->drain_deadline_ms = util_mono_ms() + (uint64_t)w->cfg->shutdown_timeout * 1000;
    linger_limit(&w->linger, w->drain_deadline_ms);
}

/* Nothing more will be answered: the write side of every connection still open (idle
 * keep-alive, HTTP/2 after its GOAWAY) is shut, so that its client sees the end, once
 * libh2o has nothing left to write on it; the connection is then held until its client
 * has every byte. 1 when every open connection is shut. */
static int flush_idle(worker *w)
{
    int left = 0;
    for (worker_conn *c = w->conns; c != NULL; c = c->next) {
        if (c->shut)
            continue;
        if (h2o_socket_is_writing(c->sock)) {
            left = 1;
            continue;
        }
        int fd = c->held >= 0 ? c->held : fcntl(h2o_socket_get_fd(c->sock), F_DUPFD_CLOEXEC, 0);
        c->held = -1;
        c->shut = 1;
        if (fd >= 0)
            linger_add(&w->linger, fd, w->drain_deadline_ms);
        else
            shutdown(h2o_socket_get_fd(c->sock), SHUT_WR);
    }
    return !left;
}

/* Drained when nothing is in flight: no request in a handler or streaming, no
 * connection holding a partly received request, and none so new that its request
 * may not have arrived yet. Done when, after that, every client has acknowledged all
 * it was sent: until then the bytes are only in this process's kernel queues. */
static int drain_done(worker *w)
{
    uint64_t now = util_mono_ms();
    if (now >= w->drain_deadline_ms)
        return 1;
    if (!w->flushing) {
        if (w->active_reqs > 0)
            return 0;
        for (worker_conn *c = w->conns; c != NULL; c = c->next)
            if ((c->sock->input != NULL && c->sock->input->size > 0) || now - c->accepted_ms < FRESH_CONN_MS)
                return 0;
        w->flushing = 1;
    }
    return flush_idle(w) && linger_poll(&w->linger, now) == 0;
}

int worker_main(const proc_env *env)
{
    static worker w; /* one per process */
    w.env = env;
    w.cfg = env->cfg;
    setup_h2o(&w);
    /* An upload's unnamed file is linked into place through /proc/self/fd (upload.c). */
    w.unnamed_temp = access("/proc/self/fd", X_OK) == 0;
    w.magic = magic_open(MAGIC_FLAGS);
    if (w.magic == NULL || magic_load(w.magic, NULL) != 0) {
        log_event(LOG_ERROR, "magic_failed", "cannot load the libmagic database");
        return 1;
    }
    w.hmac = crypt_hmac_new();
    if (w.hmac == NULL) {
        log_event(LOG_ERROR, "crypto_failed", "cannot fetch SHA-256 from libcrypto");
        return 1;
    }
    char warn[256];
    if (env->secret != NULL) {
        (void)secret_lock(env->secret, warn, sizeof(warn)); /* the master's lock is its own */
    } else if ((w.store_secret = secret_new(warn, sizeof(warn))) == NULL) {
        log_event(LOG_ERROR, "secret_failed", "cannot map a page for the server secret: %s", strerror(errno));
        return 1;
    }
    if (warn[0] != '\0')
        log_event(LOG_WARNING, "secret_unprotected", "%s", warn);
    store_url url;
    w.store = store_url_parse(w.cfg->redis_url, &url) == 0 &&
                      store_url_sentinels(w.cfg->redis_sentinels, w.cfg->redis_sentinel_master,
                                          w.cfg->redis_sentinel_password, &url) == 0
                  ? store_new(w.ctx.loop, &url, STORE_TIMEOUT_MS, w.cfg->store_max_pending, w.store_secret)
                  : NULL;
    if (w.store == NULL || (w.gate = gate_new(w.ctx.loop, w.store)) == NULL) {
        log_event(LOG_ERROR, "store_failed", "cannot create the store client");
        return 1;
    }
    if (peers_init(&w.peers, w.cfg->max_connections) != 0) {
        log_event(LOG_ERROR, "peers_failed", "out of memory for the connection table");
        return 1;
    }
    linger_init(&w.linger, w.cfg->max_connections);
    if (s3_enabled(w.cfg)) {
        char err[512];
        /* Before any thread starts: libcurl's global set-up is not thread-safe. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
            (w.objstore = objstore_new(w.ctx.loop, w.cfg, err, sizeof(err))) == NULL) {
            log_event(LOG_ERROR, "storage_failed", "%s", err);
            return 1;
        }
    }
    if ((w.offload = offload_new(w.ctx.loop)) == NULL) {
        log_event(LOG_ERROR, "offload_failed", "cannot start the helper threads: %s", strerror(errno));
        return 1;
    }
    w.bodies = bodies_new(&w);
    if (w.bodies == NULL) {
        log_event(LOG_ERROR, "bodies_failed", "out of memory");
        return 1;
    }
    /* Accept once the store is usable, so that the workers a reload starts never answer
     * 503 while their connection sets up; or after STORE_TIMEOUT_MS, when a store that
     * is down is answered 503 at once, as ever. Meanwhile connections wait in the
     * listening sockets' backlog. */
    uint64_t ready_by = util_mono_ms() + STORE_TIMEOUT_MS;
    /* A line for every request: a turn's lines go out in one write, after the turn. */
    log_batch(1);
    while (!proc_terminate && !proc_quit && !store_ready(w.store) && util_mono_ms() < ready_by) {
        h2o_evloop_run(w.ctx.loop, 10);
        store_flush(w.store);
        log_flush();
    }
    listeners_start(&w);
    load_publish(&w, util_mono_ms());
    while (!proc_terminate) {
        h2o_evloop_run(w.ctx.loop, TICK_MS);
        for (worker_conn *c = w.conns; c != NULL; c = c->next)
            stream_settle(&w, c->sock);
        stream_check(&w);
        bodies_check(w.bodies);
        housekeeping(&w);
        accept_balance(&w);
        if (proc_quit && !w.draining)
            drain_start(&w);
        store_flush(w.store);
        log_flush();
        if (w.draining && drain_done(&w))
            break;
    }
    bodies_free(w.bodies);
    w.bodies = NULL;
    linger_free(&w.linger);
    offload_free(w.offload); /* what it was given to close and unlink, it has */
    while (w.nchunks > 0)
        free(w.chunks[--w.nchunks]);
    stream_buffer_free(&w);
    gate_free(w.gate);
    if (w.objstore != NULL) {
        objstore_free(w.objstore);
        curl_global_cleanup();
    }
    store_free(w.store);
    secret_free(w.store_secret);
    magic_close(w.magic);
    crypt_hmac_free(w.hmac);
    peers_free(&w.peers);
    log_batch(0);
    return 0;
}
