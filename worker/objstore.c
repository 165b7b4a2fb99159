/* objstore.c - the worker's object storage: multipart or single-PUT uploads fed by the
 * sealed writer, streamed GETs read by the sealed reader, and the liveness probe. Owns
 * the worker's s3loop and its copy of the S3 settings. */
#include "objstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define REPLY_MAX 65536 /* bytes of an answer's body kept (UploadId, errors) */
#define ETAG_MAX 80

struct objstore {
    h2o_loop_t *loop;
    s3loop *l;
    s3_conf conf;
    h2o_timeout_t soon;       /* 0 ms: notices go out on the next loop turn */
    h2o_timeout_t answer;     /* a GET's answer must begin within OBJSTORE_ANSWER_MS */
    h2o_timeout_t probe_every;
    h2o_timeout_entry_t probe;
    CURL *probe_e;
    struct curl_slist *probe_hs;
    int online;
};

/* ---- one request at a time on a handle ---- */

typedef struct {
    CURL *e;
    struct curl_slist *hs;
    const uint8_t *body; /* what a PUT or POST sends */
    size_t body_len, body_off;
    char reply[REPLY_MAX + 1];
    size_t reply_len;
    char etag[ETAG_MAX];
} request;

static size_t req_read(char *buf, size_t size, size_t n, void *arg)
{
    request *r = arg;
    size_t left = r->body_len - r->body_off, want = size * n < left ? size * n : left;
    memcpy(buf, r->body + r->body_off, want);
    r->body_off += want;
    return want;
}

static size_t req_write(char *buf, size_t size, size_t n, void *arg)
{
    request *r = arg;
    size_t len = size * n, room = REPLY_MAX - r->reply_len, take = len < room ? len : room;
    memcpy(r->reply + r->reply_len, buf, take);
    r->reply_len += take;
    r->reply[r->reply_len] = '\0';
    return len;
}

static size_t req_header(char *buf, size_t size, size_t n, void *arg)
{
    request *r = arg;
    size_t len = size * n;
    if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        size_t i = 5, end = len;
        while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        while (end > i && (buf[end - 1] == '\r' || buf[end - 1] == '\n' || buf[end - 1] == ' '))
            end--;
        if (end - i < ETAG_MAX) {
            memcpy(r->etag, buf + i, end - i);
            r->etag[end - i] = '\0';
        }
    }
    return len;
}

/* Prepare r->e for method on id's object (NULL: the bucket) with query. 0 or -1. */
static int req_prepare(objstore *o, request *r, const char *method, const char *id, const char *query,
                       const uint8_t *body, size_t body_len)
{
    char url[S3_URL_MAX];
    if (r->e == NULL && (r->e = curl_easy_init()) == NULL)
        return -1;
    curl_easy_reset(r->e);
    curl_slist_free_all(r->hs);
    r->hs = NULL;
    r->reply_len = 0;
    r->reply[0] = '\0';
    r->etag[0] = '\0';
    if (s3_url(&o->conf, id, query, url, sizeof(url)) != 0 || (r->hs = s3_prepare(&o->conf, r->e, url, NULL)) == NULL)
        return -1;
    curl_easy_setopt(r->e, CURLOPT_WRITEFUNCTION, req_write);
    curl_easy_setopt(r->e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->e, CURLOPT_HEADERFUNCTION, req_header);
    curl_easy_setopt(r->e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->e, CURLOPT_TIMEOUT, 300L);
    if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        r->body = body;
        r->body_len = body_len;
        r->body_off = 0;
        curl_easy_setopt(r->e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(r->e, CURLOPT_READFUNCTION, req_read);
        curl_easy_setopt(r->e, CURLOPT_READDATA, r);
        /* Always a length: AWS refuses a chunked PUT, and Swift takes no aws-chunked. */
        curl_easy_setopt(r->e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        if (strcmp(method, "POST") == 0)
            curl_easy_setopt(r->e, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (strcmp(method, "DELETE") == 0 || strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(r->e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(r->e, CURLOPT_NOBODY, 1L);
    }
    return 0;
}

static void req_free(request *r)
{
    curl_slist_free_all(r->hs);
    curl_easy_cleanup(r->e);
}

/* A storage request answered (any status): it is online; unreachable: it is not. */
static void note(objstore *o, CURLcode rc, long status)
{
    int up = rc == CURLE_OK && status != 0 && status < 500;
    if (up != o->online)
        log_event(up ? LOG_INFO : LOG_ERROR, up ? "storage_up" : "storage_down", "object storage %s",
                  up ? "answers again" : (rc != CURLE_OK ? curl_easy_strerror(rc) : "answers 5xx"));
    o->online = up;
}

/* A finished request's HTTP status (0: none came), noted as above. */
static long answered(objstore *o, CURL *e, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    note(o, rc, status);
    return status;
}

/* ---- the probe ---- */

static void probe_start(objstore *o);

static void probe_done(CURL *e, CURLcode rc, void *data)
{
    objstore *o = data;
    /* A 403 or 404 of a HEAD still proves a server answers; it is the settings' problem,
     * which every upload then reports. */
    (void)answered(o, e, rc);
    h2o_timeout_link(o->loop, &o->probe_every, &o->probe);
}

static void on_probe(h2o_timeout_entry_t *entry)
{
    probe_start(H2O_STRUCT_FROM_MEMBER(objstore, probe, entry));
}

static void probe_start(objstore *o)
{
    char url[S3_URL_MAX];
    curl_easy_reset(o->probe_e);
    curl_slist_free_all(o->probe_hs);
    o->probe_hs = NULL;
    if (s3_url(&o->conf, NULL, "", url, sizeof(url)) == 0 &&
        (o->probe_hs = s3_prepare(&o->conf, o->probe_e, url, NULL)) != NULL) {
        curl_easy_setopt(o->probe_e, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(o->probe_e, CURLOPT_TIMEOUT_MS, (long)OBJSTORE_PROBE_MS);
        if (s3loop_add(o->l, o->probe_e, probe_done, o) == 0)
            return;
    }
    h2o_timeout_link(o->loop, &o->probe_every, &o->probe);
}

objstore *objstore_new(h2o_loop_t *loop, const cfg *c, char *err, size_t errlen)
{
    objstore *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        util_errf(err, errlen, "object storage: out of memory");
        return NULL;
    }
    if (s3_conf_load(&o->conf, c, err, errlen) != 0) {
        free(o);
        return NULL;
    }
    o->loop = loop;
    o->online = 1; /* until a request or the first probe says otherwise */
    if ((o->l = s3loop_new(loop)) == NULL || (o->probe_e = curl_easy_init()) == NULL) {
        util_errf(err, errlen, "object storage: libcurl failed to start");
        s3loop_free(o->l);
        s3_conf_wipe(&o->conf);
        free(o);
        return NULL;
    }
    h2o_timeout_init(loop, &o->soon, 0);
    h2o_timeout_init(loop, &o->answer, OBJSTORE_ANSWER_MS);
    h2o_timeout_init(loop, &o->probe_every, OBJSTORE_PROBE_MS);
    o->probe.cb = on_probe;
    probe_start(o);
    return o;
}

void objstore_free(objstore *o)
{
    if (o == NULL)
        return;
    if (h2o_timeout_is_linked(&o->probe))
        h2o_timeout_unlink(&o->probe);
    s3loop_remove(o->l, o->probe_e);
    s3loop_free(o->l);
    curl_easy_cleanup(o->probe_e);
    curl_slist_free_all(o->probe_hs);
    h2o_timeout_dispose(o->loop, &o->soon);
    h2o_timeout_dispose(o->loop, &o->answer);
    h2o_timeout_dispose(o->loop, &o->probe_every);
    s3_conf_wipe(&o->conf);
    free(o);
}

int objstore_online(const objstore *o)
{
    return o->online;
}

/* ---- writing ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} part;

struct objstore_put {
    objstore *o;
    char id[CRYPT_ID_HEX_LEN + 1];
    sealed_sink sink;
    void (*wake)(void *data);
    void *data;
    part cur;          /* being filled */
    part queued;       /* full, waiting for the one in flight */
    part sending;      /* in flight */
    request req;
    int busy;          /* a request is in flight ... */
    int inflight;      /* ... which one: REQ_* */
    int failed;
    int finishing;
    int sent_any;      /* a request that may have written something went out */
    char upload_id[1024]; /* "" until the multipart upload is created */
    char (*etags)[ETAG_MAX];
    unsigned nparts;
    void (*done)(int ok, void *data);
    void (*then)(void *data); /* discarding */
    void *then_data;
};

enum { REQ_CREATE = 1, REQ_PART, REQ_SINGLE, REQ_COMPLETE };

static void put_pump(objstore_put *p);

static void put_fail(objstore_put *p, const char *what, CURLcode rc, long status)
{
    if (!p->failed)
        log_event(LOG_ERROR, "storage_write_failed", "%s: %s (HTTP %ld)", what,
                  rc != CURLE_OK ? curl_easy_strerror(rc) : "refused", status);
    p->failed = 1;
    p->sink.err = EIO;
    if (p->done != NULL) {
        void (*done)(int, void *) = p->done;
        p->done = NULL;
        done(0, p->data);
    } else if (p->wake != NULL) {
        p->wake(p->data);
    }
}

static int sink_write(sealed_sink *k, const uint8_t *buf, size_t len)
{
    objstore_put *p = k->io.other;
    if (p->failed) {
        k->err = EIO;
        return -1;
    }
    if (p->cur.len + len > p->cur.cap) {
        /* Doubling, but not past a part and the segment that fills it: a small file
         * costs little, a large one a part. */
        size_t most = p->o->conf.part_size + 2 * (SEALED_SEGMENT_SIZE + CRYPT_TAG_LEN) + SEALED_HEADER_LEN;
        size_t cap = p->cur.cap * 2 < most ? p->cur.cap * 2 : most;
        if (cap < p->cur.len + len)
            cap = p->cur.len + len;
        uint8_t *nb = realloc(p->cur.buf, cap);
        if (nb == NULL) {
            k->err = ENOMEM;
            return -1;
        }
        p->cur.buf = nb;
        p->cur.cap = cap;
    }
    memcpy(p->cur.buf + p->cur.len, buf, len);
    p->cur.len += len;
    if (p->cur.len >= p->o->conf.part_size && p->queued.buf == NULL) {
        p->queued = p->cur;
        p->cur = (part){0};
        put_pump(p);
    }
    return 0;
}

objstore_put *objstore_put_new(objstore *o, const char *id, void (*wake)(void *data), void *data)
{
    objstore_put *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->o = o;
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->wake = wake;
    p->data = data;
    p->sink = (sealed_sink){.write = sink_write, .io.other = p};
    return p;
}

sealed_sink *objstore_put_sink(objstore_put *p)
{
    return &p->sink;
}

int objstore_put_full(const objstore_put *p)
{
    return p->queued.buf != NULL && !p->failed;
}

int objstore_put_failed(const objstore_put *p)
{
    return p->failed;
}

static void part_free(part *x)
{
    if (x->buf != NULL)
        explicit_bzero(x->buf, x->len);
    free(x->buf);
    *x = (part){0};
}

static void put_sent(CURL *e, CURLcode rc, void *data);

static void put_request(objstore_put *p, int what, const char *method, const char *query, const uint8_t *body,
                        size_t len)
{
    p->inflight = what;
    if (req_prepare(p->o, &p->req, method, p->id, query, body, len) != 0 ||
        s3loop_add(p->o->l, p->req.e, put_sent, p) != 0) {
        put_fail(p, "request", CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    p->busy = 1;
    p->sent_any = 1;
}

static void put_part(objstore_put *p, part *x)
{
    char q[3 * sizeof(p->upload_id) + 64], enc[3 * sizeof(p->upload_id)];
    if (p->nparts == S3_PARTS_MAX) {
        put_fail(p, "more parts than the storage takes: raise S3_PART_SIZE", CURLE_OK, 0);
        return;
    }
    p->sending = *x;
    *x = (part){0};
    s3_query_encode(p->upload_id, enc, sizeof(enc));
    snprintf(q, sizeof(q), "?partNumber=%u&uploadId=%s", p->nparts + 1, enc);
    put_request(p, REQ_PART, "PUT", q, p->sending.buf, p->sending.len);
}

static void put_complete(objstore_put *p)
{
    char q[3 * sizeof(p->upload_id) + 64], enc[3 * sizeof(p->upload_id)];
    size_t cap = 64 + (size_t)p->nparts * (ETAG_MAX + 64), n = 0;
    part x = {.buf = malloc(cap), .cap = cap};
    if (x.buf == NULL) {
        put_fail(p, "complete", CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    n += (size_t)snprintf((char *)x.buf + n, cap - n, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < p->nparts; i++)
        n += (size_t)snprintf((char *)x.buf + n, cap - n, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                              i + 1, p->etags[i]);
    n += (size_t)snprintf((char *)x.buf + n, cap - n, "</CompleteMultipartUpload>");
    x.len = n;
    p->sending = x;
    s3_query_encode(p->upload_id, enc, sizeof(enc));
    snprintf(q, sizeof(q), "?uploadId=%s", enc);
    put_request(p, REQ_COMPLETE, "POST", q, x.buf, x.len);
}

/* The next request, if one is due and none is in flight. */
static void put_pump(objstore_put *p)
{
    if (p->busy || p->failed || p->then != NULL)
        return;
    int multipart = p->upload_id[0] != '\0';
    if (!multipart && p->queued.buf != NULL) {
        put_request(p, REQ_CREATE, "POST", "?uploads=", (const uint8_t *)"", 0);
    } else if (p->queued.buf != NULL) {
        put_part(p, &p->queued);
    } else if (!p->finishing) {
        return;
    } else if (!multipart) {
        p->sending = p->cur;
        p->cur = (part){0};
        put_request(p, REQ_SINGLE, "PUT", "", p->sending.buf, p->sending.len);
    } else if (p->cur.len > 0) {
        put_part(p, &p->cur);
    } else {
        put_complete(p);
    }
}

static void put_sent(CURL *e, CURLcode rc, void *data)
{
    objstore_put *p = data;
    long status = answered(p->o, e, rc);
    p->busy = 0;
    int what = p->inflight;
    part_free(&p->sending);
    /* Complete may report a failure under a 200. */
    if (rc != CURLE_OK || status != 200 || (what == REQ_COMPLETE && strstr(p->req.reply, "<Error>") != NULL)) {
        put_fail(p, what == REQ_PART ? "upload part" : what == REQ_CREATE ? "create multipart upload" : "upload",
                 rc, status);
        return;
    }
    size_t pos = 0;
    if (what == REQ_CREATE &&
        !s3_xml_next(p->req.reply, p->req.reply_len, "UploadId", &pos, p->upload_id, sizeof(p->upload_id))) {
        put_fail(p, "create multipart upload (no UploadId)", CURLE_OK, status);
        return;
    }
    if (what == REQ_PART) {
        char(*etags)[ETAG_MAX] = realloc(p->etags, (p->nparts + 1) * sizeof(*etags));
        if (etags != NULL)
            p->etags = etags;
        if (etags == NULL || p->req.etag[0] == '\0') {
            put_fail(p, "upload part (no ETag)", CURLE_OK, status);
            return;
        }
        snprintf(p->etags[p->nparts++], ETAG_MAX, "%s", p->req.etag);
    }
    if (what == REQ_SINGLE || what == REQ_COMPLETE) {
        void (*done)(int, void *) = p->done;
        p->done = NULL;
        if (done != NULL)
            done(1, p->data);
        return;
    }
    put_pump(p);
    if (what == REQ_PART && !p->finishing && p->queued.buf == NULL && p->wake != NULL)
        p->wake(p->data);
}

void objstore_put_finish(objstore_put *p, void (*done)(int ok, void *data))
{
    if (p->failed) {
        done(0, p->data);
        return;
    }
    p->done = done;
    p->finishing = 1;
    put_pump(p);
}

static void put_free(objstore_put *p)
{
    if (p->busy)
        s3loop_remove(p->o->l, p->req.e);
    part_free(&p->cur);
    part_free(&p->queued);
    part_free(&p->sending);
    free(p->etags);
    req_free(&p->req);
    free(p);
}

void objstore_put_free(objstore_put *p)
{
    if (p != NULL)
        put_free(p);
}

/* Discarding: abort the multipart upload, then delete the object (a single PUT or a
 * Complete may have reached the storage even when its answer did not reach us). */
static void discard_sent(CURL *e, CURLcode rc, void *data);

static void discard_next(objstore_put *p)
{
    char q[3 * sizeof(p->upload_id) + 64], enc[3 * sizeof(p->upload_id)];
    if (p->upload_id[0] != '\0') {
        s3_query_encode(p->upload_id, enc, sizeof(enc));
        snprintf(q, sizeof(q), "?uploadId=%s", enc);
        p->upload_id[0] = '\0';
        if (req_prepare(p->o, &p->req, "DELETE", p->id, q, NULL, 0) == 0 &&
            s3loop_add(p->o->l, p->req.e, discard_sent, p) == 0) {
            p->busy = 1;
            return;
        }
    }
    if (p->sent_any) {
        p->sent_any = 0;
        if (req_prepare(p->o, &p->req, "DELETE", p->id, "", NULL, 0) == 0 &&
            s3loop_add(p->o->l, p->req.e, discard_sent, p) == 0) {
            p->busy = 1;
            return;
        }
    }
    void (*then)(void *) = p->then;
    void *data = p->then_data;
    put_free(p);
    then(data);
}

static void discard_sent(CURL *e, CURLcode rc, void *data)
{
    objstore_put *p = data;
    long status = answered(p->o, e, rc);
    p->busy = 0;
    if (rc != CURLE_OK || (status != 204 && status != 200 && status != 404))
        log_event(LOG_WARNING, "storage_discard_failed",
                  "a failed upload's object could not be removed (HTTP %ld): the orphan sweep takes it", status);
    discard_next(p);
}

static void discard_noop(void *data)
{
    (void)data;
}

void objstore_put_discard(objstore_put *p, void (*then)(void *data), void *data)
{
    p->then = then != NULL ? then : discard_noop;
    p->then_data = data;
    p->wake = NULL;
    p->done = NULL;
    if (p->busy) {
        s3loop_remove(p->o->l, p->req.e);
        p->busy = 0;
    }
    discard_next(p);
}

/* ---- reading ---- */

struct objstore_get {
    objstore *o;
    request req; /* its reply buffer is unused: bytes go to buf */
    uint8_t *buf;
    size_t head, len, cap; /* held bytes: buf[head .. head + len) */
    uint64_t offset;       /* of buf[head] in the object */
    uint64_t length;
    int status;
    int paused;
    int running;
    h2o_timeout_entry_t soon;
    h2o_timeout_entry_t answer; /* until the status line has come */
    void (*notify)(void *data);
    void *data;
};

static void get_on_soon(h2o_timeout_entry_t *entry)
{
    objstore_get *g = H2O_STRUCT_FROM_MEMBER(objstore_get, soon, entry);
    if (g->notify != NULL)
        g->notify(g->data);
}

static void get_changed(objstore_get *g)
{
    if (!h2o_timeout_is_linked(&g->soon))
        h2o_timeout_link(g->o->loop, &g->o->soon, &g->soon);
}

static size_t get_write(char *buf, size_t size, size_t n, void *arg)
{
    objstore_get *g = arg;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(g->req.e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return len; /* an error's body: the status says it all */
    if (g->status == 0) {
        curl_off_t cl = -1;
        curl_easy_getinfo(g->req.e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0)
            return 0; /* no length: not an object's answer; fails the transfer */
        g->length = (uint64_t)cl;
        g->status = 200;
        if (h2o_timeout_is_linked(&g->answer))
            h2o_timeout_unlink(&g->answer);
    }
    if (g->head + g->len + len > g->cap && g->head > 0) {
        memmove(g->buf, g->buf + g->head, g->len);
        g->head = 0;
    }
    if (g->len + len > g->cap) {
        g->paused = 1;
        return CURL_WRITEFUNC_PAUSE; /* libcurl keeps it until the client takes some */
    }
    memcpy(g->buf + g->head + g->len, buf, len);
    g->len += len;
    get_changed(g);
    return len;
}

static void get_done(CURL *e, CURLcode rc, void *data)
{
    objstore_get *g = data;
    long status = answered(g->o, e, rc);
    g->running = 0;
    if (h2o_timeout_is_linked(&g->answer))
        h2o_timeout_unlink(&g->answer);
    if (rc != CURLE_OK)
        g->status = -1;
    else if (status != 200)
        g->status = (int)status;
    else if (g->status == 0) { /* an empty object: nothing of ours */
        g->status = 200;
        g->length = 0;
    }
    get_changed(g);
}

/* A store that takes the connection and never answers is as good as down: the
 * request is given up (a slow client later is another matter: no deadline then). */
static void get_on_answer_late(h2o_timeout_entry_t *entry)
{
    objstore_get *g = H2O_STRUCT_FROM_MEMBER(objstore_get, answer, entry);
    if (g->running) {
        s3loop_remove(g->o->l, g->req.e);
        g->running = 0;
    }
    note(g->o, CURLE_OPERATION_TIMEDOUT, 0);
    g->status = -1;
    get_changed(g);
}

objstore_get *objstore_get_new(objstore *o, const char *id, size_t cap, void (*notify)(void *data), void *data)
{
    objstore_get *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->buf = malloc(cap)) == NULL) {
        free(g);
        return NULL;
    }
    g->o = o;
    g->cap = cap;
    g->notify = notify;
    g->data = data;
    g->soon.cb = get_on_soon;
    g->answer.cb = get_on_answer_late;
    if (req_prepare(o, &g->req, "GET", id, "", NULL, 0) != 0) {
        objstore_get_free(g);
        return NULL;
    }
    curl_easy_setopt(g->req.e, CURLOPT_WRITEFUNCTION, get_write);
    curl_easy_setopt(g->req.e, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(g->req.e, CURLOPT_TIMEOUT, 0L); /* a slow client may take its time */
    if (s3loop_add(o->l, g->req.e, get_done, g) != 0) {
        objstore_get_free(g);
        return NULL;
    }
    g->running = 1;
    h2o_timeout_link(o->loop, &o->answer, &g->answer);
    return g;
}

void objstore_get_free(objstore_get *g)
{
    if (g == NULL)
        return;
    if (g->running)
        s3loop_remove(g->o->l, g->req.e);
    if (h2o_timeout_is_linked(&g->soon))
        h2o_timeout_unlink(&g->soon);
    if (h2o_timeout_is_linked(&g->answer))
        h2o_timeout_unlink(&g->answer);
    req_free(&g->req);
    free(g->buf);
    free(g);
}

void objstore_get_notify(objstore_get *g, void (*notify)(void *data), void *data)
{
    g->notify = notify;
    g->data = data;
}

int objstore_get_status(const objstore_get *g)
{
    return g->status;
}

uint64_t objstore_get_length(const objstore_get *g)
{
    return g->length;
}

size_t objstore_get_avail(const objstore_get *g)
{
    return g->len;
}

uint64_t objstore_get_offset(const objstore_get *g)
{
    return g->offset;
}

int objstore_get_peek_header(const objstore_get *g, sealed_header *h)
{
    if (g->offset != 0 || g->len < SEALED_HEADER_LEN)
        return -1;
    return sealed_header_decode(g->buf + g->head, h);
}

int objstore_get_room(objstore_get *g, size_t bytes)
{
    if (bytes <= g->cap)
        return 0;
    uint8_t *nb = realloc(g->buf, bytes);
    if (nb == NULL)
        return -1;
    g->buf = nb;
    g->cap = bytes;
    if (g->paused) {
        g->paused = 0;
        s3loop_unpause(g->o->l, g->req.e);
    }
    return 0;
}

static int src_read(sealed_source *s, uint8_t *buf, size_t len, uint64_t off)
{
    objstore_get *g = s->io.other;
    if (off < g->offset || off + len > g->offset + g->len) {
        s->err = EIO;
        return -1;
    }
    size_t skip = (size_t)(off - g->offset);
    memcpy(buf, g->buf + g->head + skip, len);
    g->head += skip + len;
    g->len -= skip + len;
    g->offset = off + len;
    if (g->paused) {
        g->paused = 0;
        s3loop_unpause(g->o->l, g->req.e);
    }
    return 0;
}

static int src_size(sealed_source *s, uint64_t *size)
{
    objstore_get *g = s->io.other;
    *size = g->length;
    return 0;
}

void objstore_get_source(objstore_get *g, sealed_source *src)
{
    *src = (sealed_source){.read = src_read, .size = src_size, .io.other = g};
}
