/* bodies.c - the request bodies a worker holds, looked at after every event-loop turn:
 * what each client and the worker hold (MAX_BODY_BYTES_PER_CLIENT, _PER_WORKER), the
 * spill files (SPILL_MAX_BYTES), the bodies a client sends at once
 * (MAX_UPLOADS_PER_CLIENT), the HTTP/2 body deadline (BODY_TIMEOUT), the clients lately
 * answered 429; and every body overwritten with zeros before libh2o lets it go.
 *
 * libh2o 2.2.5 reads and buffers a body out of our sight and runs the handler once it
 * is whole, but what it holds can be seen (early.h) and a body still arriving can be
 * answered early. So after each turn we total what every client holds and refuse,
 * newest first, the bodies that go over. A client can overshoot by what one turn reads
 * from its connections: each read drains a socket's receive buffer. */
#include "bodies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "early.h"
#include "http.h"
#include "log.h"
#include "spill.h"
#include "util.h"
#include "worker.h"

#define TABLE_MIN 64
#define LIMITED_SLOTS 256 /* clients remembered after a 429; the oldest give way */
#define LIMITED_PROBES 8
#define LIMITED_MAX_S 60
#define LOG_EVERY_MS 1000
#define BUFFER_UNIT 8192 /* libh2o's buffers start at 8 KiB and double */

/* Why a body was refused, for the log line that counts them. */
enum { R_DEADLINE, R_LIMITED, R_COUNT, R_CLIENT, R_WORKER, R_SPILL, R_REASONS };
static const char *const reason_names[R_REASONS] = {
    "past BODY_TIMEOUT (HTTP/2)", "from clients lately answered 429", "over MAX_UPLOADS_PER_CLIENT",
    "over MAX_BODY_BYTES_PER_CLIENT", "over MAX_BODY_BYTES_PER_WORKER", "over SPILL_MAX_BYTES"};

/* A request with a body, from the first turn it is seen until libh2o disposes it. It
 * lives in the request's pool. */
typedef struct {
    bodies *b;
    h2o_req_t *req;
    uint8_t client[16];
    int has_client;
    uint64_t seen_ms;
    uint64_t seen_turn; /* the bodies_check() that first saw it */
    int answered;    /* answered early (HTTP/1: its connection closes at libh2o's next read) */
    spill_ref *spill; /* HTTP/2: the body's spill file, held until the request goes */
} watch;

/* One body as this turn sees it. Once refused (gone), an HTTP/2 body's watch is freed
 * with its request: what sorting needs is copied here. */
typedef struct {
    watch *w;
    uint8_t client[16];
    int has_client;
    uint64_t seen_ms, seen_turn;
    early_body body;
    uint64_t need;  /* held; while arriving, the announced length if that is more */
    uint64_t spill; /* bytes of spill file it holds, or will once its announced length is in */
    int gone;       /* refused this turn, or left out of the totals */
} item;

typedef struct {
    uint8_t addr[16];
    uint64_t until_ms;
    const char *detail;
} limited;

struct bodies {
    worker *w;
    watch **table; /* open addressing by request; NULL slots are free */
    size_t cap, n;
    item *items;
    size_t nitems, items_cap;
    limited limited[LIMITED_SLOTS];
    uint64_t refused[R_REASONS];
    uint64_t logged_ms;
    uint64_t turn; /* bodies_check() calls so far */
};

bodies *bodies_new(worker *w)
{
    bodies *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->w = w;
    b->cap = TABLE_MIN;
    b->table = calloc(b->cap, sizeof(*b->table));
    if (b->table == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

void bodies_free(bodies *b)
{
    if (b == NULL)
        return;
    /* Requests still alive keep their watch: they must not reach back into b. */
    for (size_t i = 0; i < b->cap; i++)
        if (b->table[i] != NULL)
            b->table[i]->b = NULL;
    free(b->table);
    free(b->items);
    free(b);
}

/* ---- the table of watched requests ---- */

static size_t slot_of(const bodies *b, const h2o_req_t *req)
{
    uint64_t h = (uint64_t)(uintptr_t)req;
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (size_t)h & (b->cap - 1);
}

static size_t find(const bodies *b, const h2o_req_t *req)
{
    for (size_t i = slot_of(b, req);; i = (i + 1) & (b->cap - 1))
        if (b->table[i] == NULL || b->table[i]->req == req)
            return i;
}

static int grow(bodies *b)
{
    watch **old = b->table;
    size_t oldcap = b->cap;
    watch **t = calloc(oldcap * 2, sizeof(*t));
    if (t == NULL)
        return -1;
    b->table = t;
    b->cap = oldcap * 2;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i] != NULL)
            b->table[find(b, old[i]->req)] = old[i];
    free(old);
    return 0;
}

/* Linear probing: the entries after the hole that hash at or before it move up. */
static void table_remove(bodies *b, const h2o_req_t *req)
{
    size_t i = find(b, req);
    if (b->table[i] == NULL)
        return;
    b->table[i] = NULL;
    b->n--;
    for (size_t j = (i + 1) & (b->cap - 1); b->table[j] != NULL; j = (j + 1) & (b->cap - 1)) {
        size_t home = slot_of(b, b->table[j]->req);
        if (((j - home) & (b->cap - 1)) >= ((j - i) & (b->cap - 1))) {
            b->table[i] = b->table[j];
            b->table[j] = NULL;
            i = j;
        }
    }
}

/* ---- zeroing ---- */

/* Overwrite [p, p + len) of buf with zeros. A body in memory is overwritten here (it is
 * at most BODY_MEMORY_MAX); a spilled one only once its file is let go, on a helper
 * thread (spill.h), where the whole file is erased. */
static void zero(worker *w, h2o_buffer_t *buf, char *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
    if (buf != NULL && buf->_fd != -1)
        spill_erase(w, buf);
    else
        explicit_bzero(p, len);
}

void bodies_scrub_input(h2o_socket_t *sock)
{
    h2o_buffer_t *in = sock != NULL ? sock->input : NULL;
    if (in == NULL || in->_fd == -1 || in->bytes == NULL)
        return;
    char *start = in->_buf, *live = in->bytes, *end = in->_buf + in->capacity;
    explicit_bzero(start, (size_t)(live - start));
    explicit_bzero(live + in->size, (size_t)(end - (live + in->size)));
}

/* The buffer of req's body when it holds [p, p + len), for its spill file. */
static h2o_buffer_t *buffer_holding(h2o_req_t *req, const char *p, size_t len)
{
    early_body body;
    if (early_body_of(req, &body) != 0 || body.buf == NULL)
        return NULL;
    const char *start = body.buf->_buf, *end = body.buf->_buf + body.buf->capacity;
    return p >= start && p + len <= end ? body.buf : NULL;
}

void bodies_release(h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len == 0)
        return;
    zero(worker_of(req), buffer_holding(req, req->entity.base, req->entity.len), req->entity.base, req->entity.len);
    req->entity.len = 0; /* done; the base stays, so the body still reads as complete */
}

/* libh2o disposes a request before it frees an HTTP/1 connection's input (where the
 * body is), but after it freed an HTTP/2 stream's body buffer; a spilled one's file
 * is still held, though, and is erased now that it is let go (its client may have
 * reset the stream or left). */
static void on_watch_dispose(void *p)
{
    watch *wt = p;
    h2o_req_t *req = wt->req;
    if (wt->b != NULL)
        table_remove(wt->b, req);
    spill_let_go(wt->spill);
    early_body body;
    if (req->version >= 0x200 || early_body_of(req, &body) != 0 || body.buf == NULL)
        return;
    if (req->entity.base != NULL)
        bodies_release(req); /* whole, but never answered: its client left */
    else
        zero(worker_of(req), body.buf, body.buf->bytes, body.buf->size); /* cut off: the connection closes */
}

/* An HTTP/2 body in a spill file: hold the file, so that it is erased even when libh2o
 * lets it go with no answer (a stream reset by its client). */
static void hold_spill(watch *wt, const early_body *body)
{
    if (wt->spill == NULL && body->stream != 0 && body->buf != NULL && body->buf->_fd != -1)
        wt->spill = spill_take(worker_of(wt->req), body->buf);
}

/* The client as the limits know it: an IPv6 client is its IPV6_PREFIX network, so
 * that rotating through the addresses of one network buys no more bodies. */
static int client_of(h2o_req_t *req, uint8_t out[16])
{
    if (http_client_addr(req, out) != 0)
        return -1;
    addr_group(out, worker_of(req)->cfg->ipv6_prefix, out);
    return 0;
}

/* req's watch, made on first sight; NULL when memory ran out. */
static watch *watch_of(bodies *b, h2o_req_t *req)
{
    size_t i = find(b, req);
    if (b->table[i] != NULL)
        return b->table[i];
    if ((b->n + 1) * 2 > b->cap) {
        if (grow(b) != 0)
            return NULL;
        i = find(b, req);
    }
    watch *wt = h2o_mem_alloc_shared(&req->pool, sizeof(*wt), on_watch_dispose);
    *wt = (watch){.b = b, .req = req, .seen_ms = util_mono_ms(), .seen_turn = b->turn};
    wt->has_client = client_of(req, wt->client) == 0;
    b->table[i] = wt;
    b->n++;
    return wt;
}

static int limited_now(bodies *b, const uint8_t addr[16], const char **detail, long *retry_after_s);

int bodies_on_request(h2o_req_t *req)
{
    bodies *b = worker_of(req)->bodies;
    early_body body;
    if (early_body_of(req, &body) != 0)
        return 0;
    watch *wt = watch_of(b, req);
    const char *detail;
    long retry;
    if (wt != NULL)
        hold_spill(wt, &body);
    if (wt == NULL || !wt->has_client || !limited_now(b, wt->client, &detail, &retry))
        return 0;
    char after[24];
    int n = snprintf(after, sizeof(after), "%ld", retry);
    http_header(req, H2O_TOKEN_RETRY_AFTER, after, (size_t)n);
    http_error(req, 429, detail);
    return 1;
}

/* ---- clients answered 429 ---- */

static size_t limited_home(const uint8_t addr[16])
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 1099511628211ULL;
    return (size_t)(h % LIMITED_SLOTS);
}

static limited *limited_find(bodies *b, const uint8_t addr[16])
{
    size_t home = limited_home(addr);
    for (size_t k = 0; k < LIMITED_PROBES; k++) {
        limited *l = &b->limited[(home + k) % LIMITED_SLOTS];
        if (l->until_ms != 0 && memcmp(l->addr, addr, 16) == 0)
            return l;
    }
    return NULL;
}

void bodies_remember_limited(h2o_req_t *req, const char *detail, long retry_after_s)
{
    bodies *b = worker_of(req)->bodies;
    uint8_t addr[16];
    if (b == NULL || client_of(req, addr) != 0)
        return;
    uint64_t now = util_mono_ms();
    limited *slot = limited_find(b, addr);
    for (size_t k = 0, home = limited_home(addr); slot == NULL && k < LIMITED_PROBES; k++) {
        limited *l = &b->limited[(home + k) % LIMITED_SLOTS];
        if (l->until_ms <= now)
            slot = l;
    }
    for (size_t k = 0, home = limited_home(addr); slot == NULL && k < LIMITED_PROBES; k++) {
        limited *l = &b->limited[(home + k) % LIMITED_SLOTS];
        if (k == 0 || l->until_ms < slot->until_ms)
            slot = l;
    }
    long s = retry_after_s < 1 ? 1 : retry_after_s > LIMITED_MAX_S ? LIMITED_MAX_S : retry_after_s;
    memcpy(slot->addr, addr, 16);
    slot->until_ms = now + (uint64_t)s * 1000;
    slot->detail = detail;
}

static int limited_now(bodies *b, const uint8_t addr[16], const char **detail, long *retry_after_s)
{
    limited *l = limited_find(b, addr);
    uint64_t now = util_mono_ms();
    if (l == NULL || l->until_ms <= now)
        return 0;
    *detail = l->detail;
    *retry_after_s = (long)((l->until_ms - now + 999) / 1000);
    return 1;
}

/* ---- the turn ---- */

/* The capacity libh2o's buffer reaches to hold n bytes. */
static uint64_t capacity_for(uint64_t n)
{
    uint64_t c = BUFFER_UNIT;
    while (c < n)
        c *= 2;
    return c;
}

static void collect(h2o_req_t *req, void *p)
{
    bodies *b = p;
    early_body body;
    if (early_body_of(req, &body) != 0)
        return;
    watch *wt = watch_of(b, req);
    if (wt == NULL || wt->answered)
        return;
    hold_spill(wt, &body);
    if (b->nitems == b->items_cap) {
        size_t cap = b->items_cap ? b->items_cap * 2 : 64;
        item *grown = realloc(b->items, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        b->items = grown;
        b->items_cap = cap;
    }
    item *it = &b->items[b->nitems++];
    *it = (item){.w = wt, .has_client = wt->has_client, .seen_ms = wt->seen_ms, .seen_turn = wt->seen_turn, .body = body, .need = body.held};
    memcpy(it->client, wt->client, sizeof(it->client));
    /* An announced length counts as far as libh2o would take it: beyond that it
     * refuses the body itself (413, or the stream reset). */
    size_t most = b->w->globalconf.max_request_entity_size;
    if (body.arriving && body.declared != SIZE_MAX && body.declared > it->need)
        it->need = body.declared < most ? body.declared : most;
    if (body.streamed)
        return; /* its bytes are sealed on disk: they count, but spill nothing */
    if (body.buf != NULL && body.buf->_fd != -1)
        it->spill = body.buf->capacity;
    if (body.arriving && capacity_for(it->need) >= h2o_socket_buffer_mmap_settings.threshold &&
        capacity_for(it->need) > it->spill)
        it->spill = capacity_for(it->need);
}

/* Newest first (one turn's newcomers: the later HTTP/2 stream first). */
static int newer(const item *a, const item *b)
{
    if (a->seen_turn != b->seen_turn)
        return a->seen_turn > b->seen_turn ? -1 : 1;
    return a->body.stream != b->body.stream ? (a->body.stream > b->body.stream ? -1 : 1) : 0;
}

static int by_newest(const void *pa, const void *pb)
{
    return newer(pa, pb);
}

static int by_client_newest(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    if (a->has_client != b->has_client)
        return a->has_client - b->has_client;
    int c = memcmp(a->client, b->client, 16);
    return c != 0 ? c : newer(a, b);
}

static void refuse(bodies *b, item *it, int reason, int status, const char *detail, long retry_after_s)
{
    h2o_req_t *req = it->w->req;
    it->gone = 1;
    /* Still there? Answering one request never ends another, but better sure. */
    if (b->table[find(b, req)] != it->w)
        return;
    b->refused[reason]++;
    shm_add(b->w->env->shm, M_BODIES_REFUSED, 1);
    if (it->body.stream != 0) {
        /* The stream and its buffer go with the answer: zero what came first. */
        if (it->body.buf != NULL)
            zero(b->w, it->body.buf, it->body.buf->bytes, it->body.buf->size);
        early_answer(req, status, detail, retry_after_s);
        return;
    }
    /* An HTTP/1 request stays until libh2o reads the closed socket; its head is read
     * for the log line, so the input is zeroed after the answer. */
    it->w->answered = 1;
    early_answer(req, status, detail, retry_after_s);
    if (it->body.buf != NULL)
        zero(b->w, it->body.buf, it->body.buf->bytes, it->body.buf->size);
}

/* Refuse items[from, to) newest first (they are sorted so) while total is over cap. */
static void refuse_over(bodies *b, size_t from, size_t to, int spill, uint64_t cap, int reason)
{
    uint64_t total = 0;
    for (size_t i = from; i < to; i++)
        total += b->items[i].gone ? 0 : spill ? b->items[i].spill : b->items[i].need;
    for (size_t i = from; i < to && total > cap; i++) {
        item *it = &b->items[i];
        uint64_t part = spill ? it->spill : it->need;
        if (it->gone || !it->body.arriving || part == 0)
            continue;
        /* Retry-After: the one every 503 carries (http.c). */
        refuse(b, it, reason, 503, "Too much request data in progress, try again later", 0);
        total -= part;
    }
}

/* One client's bodies, items[from, to), newest first. */
static void per_client(bodies *b, size_t from, size_t to)
{
    const cfg *c = b->w->cfg;
    const char *detail;
    long retry;
    const item *first = &b->items[from];
    if (first->has_client && limited_now(b, first->client, &detail, &retry))
        for (size_t i = from; i < to; i++)
            if (!b->items[i].gone && b->items[i].body.arriving)
                refuse(b, &b->items[i], R_LIMITED, 429, detail, retry);
    size_t count = 0;
    for (size_t i = from; i < to; i++)
        count += !b->items[i].gone;
    for (size_t i = from; i < to && count > c->max_uploads_per_client; i++) {
        if (b->items[i].gone || !b->items[i].body.arriving)
            continue;
        refuse(b, &b->items[i], R_COUNT, 429, "Too many uploads in progress", 1);
        count--;
    }
    refuse_over(b, from, to, 0, cfg_body_max_client(c), R_CLIENT);
}

static void log_refused(bodies *b)
{
    uint64_t now = util_mono_ms(), sum = 0;
    for (int r = 0; r < R_REASONS; r++)
        sum += b->refused[r];
    if (sum == 0 || now - b->logged_ms < LOG_EVERY_MS)
        return;
    char text[512];
    size_t n = 0;
    for (int r = 0; r < R_REASONS; r++)
        if (b->refused[r] > 0 && n < sizeof(text))
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%llu %s", n > 0 ? ", " : "",
                                  (unsigned long long)b->refused[r], reason_names[r]);
    log_event(LOG_WARNING, "bodies_refused", "request bodies answered before they were whole: %s", text);
    memset(b->refused, 0, sizeof(b->refused));
    b->logged_ms = now;
}

void bodies_check(bodies *b)
{
    const cfg *c = b->w->cfg;
    b->nitems = 0;
    b->turn++;
    early_foreach(&b->w->ctx, collect, b);
    uint64_t now = util_mono_ms(), deadline = (uint64_t)c->body_timeout * 1000;
    /* libh2o's HTTP/1 deadline covers a whole request; an HTTP/2 body has none. */
    for (size_t i = 0; i < b->nitems; i++) {
        item *it = &b->items[i];
        if (it->body.stream != 0 && it->body.arriving && now - it->seen_ms >= deadline)
            refuse(b, it, R_DEADLINE, 408, "Request body timeout", 0);
    }
    if (b->nitems == 0) {
        log_refused(b);
        return;
    }
    qsort(b->items, b->nitems, sizeof(*b->items), by_client_newest);
    for (size_t from = 0, to; from < b->nitems; from = to) {
        for (to = from + 1; to < b->nitems && b->items[to].has_client == b->items[from].has_client &&
                            memcmp(b->items[to].client, b->items[from].client, 16) == 0;
             to++)
            ;
        per_client(b, from, to);
    }
    qsort(b->items, b->nitems, sizeof(*b->items), by_newest);
    refuse_over(b, 0, b->nitems, 0, cfg_body_max_worker(c), R_WORKER);
    refuse_over(b, 0, b->nitems, 1, cfg_spill_max_worker(c), R_SPILL);
    log_refused(b);
}
