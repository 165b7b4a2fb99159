/* upload.c - POST /upload/ and PUT /{name}: sniff, hash and seal the file into
 * TEMP_PATH, rename it into STORAGE_PATH, record it in the store, answer 201. With
 * STORAGE_URL the sealed file goes to object storage instead (objstore.h): the id is
 * reserved in the store first, the object written under it part by part, then
 * recorded, and the reservation given back.
 *
 * Both share one pipeline; only the framing differs. A POST's body is a multipart form
 * whose file part feeds the pipeline and whose fields give expiry and uses; a PUT's
 * body is the file itself, named by the path, with expiry and uses from the query or
 * headers. Over plain HTTP/1 with a Content-Length the worker reads the body itself
 * and feeds each read as it arrives (stream.h); the handler then finds the file sealed
 * and the form parsed. Otherwise libh2o hands us the whole body (spilled to a file
 * above 1 MiB) and we feed it in slices, SLICE_BYTES a loop turn for all uploads
 * together, so large uploads never stall the worker's other requests. Any failure
 * unlinks what was written and records nothing. Writing the sealed segments, moving
 * the file into place and removing a failed one are done by helper threads
 * (offload.h): a write, fsync, and the close or unlink that frees a large file's
 * blocks, can take the disk's time. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bodies.h"
#include "drop.h"
#include "http.h"
#include "log.h"
#include "mime.h"
#include "multipart.h"
#include "paths.h"
#include "gate.h"
#include "offload.h"
#include "sealed.h"
#include "stream.h"
#include "util.h"

#define SLICE_BYTES (256u << 10) /* body bytes parsed per loop turn, by all uploads together */
#define WRITE_SEGMENTS 4 /* sealed segments gathered into one write: a worker chunk */
#define WRITES_MAX 2     /* such writes of one upload queued for the disk */
#define SNIFF_BYTES 4096
#define FIELD_MAX 32
#define MAX_ATTEMPTS 3         /* new keys tried when one is already live */
/* How long an upload to object storage may hold its id: it writes the object in this
 * time or loses the id (its create then fails, and it answers 503). */
#define RESERVATION_MS (60u * 60 * 1000)
#define EXPIRY_DEFAULT 10
#define USES_DEFAULT 1

enum { PART_NONE, PART_FILE, PART_EXPIRY, PART_USES, PART_IGNORED };
/* Values a callback returns to stop the parser with a verdict. */
enum { STOP_STORAGE = 1, STOP_MIME, STOP_DUPLICATE, STOP_INTERNAL, STOP_UNAVAILABLE, STOP_OBJECT };

typedef struct {
    char raw[FIELD_MAX + 1];
    size_t len;
    int seen;
    int overflow;
    const char *loc; /* where it came from, for a 422: "body", "query" or "header" */
} form_field;

typedef struct upload_op {
    req_ref ref;
    worker *w;
    int put;                /* the body is the file (PUT); else a multipart form */
    int streamed;           /* fed as the body arrived (stream.h), not from req->entity */
    int plain;              /* the 201 as text lines for a terminal */
    char client[HTTP_ADDR_MAX];
    gate_slot *slot;        /* held while the upload is in progress */
    int status;             /* the answer, once decided */
    cJSON *answer;
    h2o_timeout_entry_t step;
    h2o_iovec_t body;
    size_t offset;
    int attempt;
    char boundary[MP_MAX_BOUNDARY + 1];
    mp_parser *mp;
    int part;
    form_field expiry, uses;
    /* the file */
    int file_seen;
    int too_large;          /* over MAX_FILE_SIZE: counted, not stored */
    char filename[DROP_NAME_MAX + 1];
    char key[WORDS_KEY_MAX];
    char token[CRYPT_TOKEN_HEX_LEN + 1]; /* the delete token, shown once in the 201 */
    char token_digest[CRYPT_DIGEST_HEX_LEN + 1]; /* what the record keeps of it */
    char id[CRYPT_ID_HEX_LEN + 1];
    char secret_fp[SECRET_FP_LEN + 1]; /* of the secret id, file and record are made under */
    uint8_t salt[CRYPT_SALT_LEN];
    EVP_MD_CTX *sha;
    int fd;
    char temp[PATHS_MAX];
    sealed_sink sink;       /* queues writes to fd for a helper thread (sink_write) */
    sealed_sink *to;        /* the writer's sink: &sink, or the object's */
    sealed_writer *sw;
    /* STORAGE_URL: the object is written only while the id is reserved in the store */
    objstore_put *obj;
    char reservation[RECORD_TOKEN_MAX + 1]; /* "" when none is held */
    int drawn;              /* key and id drawn (and reserved) ahead of the body */
    int put_waiting;        /* the body waits for a part to go out */
    struct write_job *filling; /* sealed pieces gathered for the next write */
    int writes;             /* queued or being written: nothing may end op before they are done */
    uint64_t write_off;     /* where the next one goes in the file */
    int write_failed;       /* one failed, with write_errno: the answer is 507 */
    int write_waiting;      /* step_run waits for a write's completion to go on */
    int answer_waiting;     /* answer() waits for the last write: the file goes with it */
    int parse_done;         /* the body is parsed: verdict is the parser's last word */
    int verdict;
    uint64_t size;
    uint8_t sniff[SNIFF_BYTES];
    size_t sniff_len;
    char mime[DROP_MIME_MAX + 1];
    int write_errno;
    char sha_hex[65];
    char stored[PATHS_MAX];
    /* the record, once the file is sealed */
    int uses_n;
    int64_t created_at, expires_at;
    uint8_t blob[DROP_BLOB_MAX];
    size_t blob_len;
} upload_op;

static void step_run(h2o_timeout_entry_t *entry);
static void reserve_begin(upload_op *op);
static void filling_drop(upload_op *op);

/* ---- clean-up ---- */

/* What a failed upload wrote, removed on a helper thread; then (if any) runs on the
 * loop once it is gone. */
typedef struct {
    offload_job job;
    upload_op *op;
    void (*then)(upload_op *op);
    int fd;
    char temp[PATHS_MAX], stored[PATHS_MAX];
} discard_job;

static void discard_work(offload_job *job)
{
    discard_job *d = (discard_job *)job;
    if (d->temp[0] != '\0')
        unlink(d->temp);
    if (d->stored[0] != '\0')
        unlink(d->stored);
    if (d->fd >= 0)
        close(d->fd); /* after the unlink: the last reference, which frees the blocks */
}

static void discard_done(offload_job *job)
{
    discard_job *d = (discard_job *)job;
    if (d->then != NULL)
        d->then(d->op);
    free(d);
}

/* Everything written for op goes: its temp file, and its stored file if it was moved
 * into place but not recorded. then(op) runs once it is gone (at once when there is
 * nothing to remove), so a client answered an error never sees a leftover. */
/* Object storage: what was written goes first, then the reservation (another upload
 * may write the id's object only after ours is gone). */
typedef struct {
    worker *w;
    upload_op *op;
    void (*then)(upload_op *op);
    char id[CRYPT_ID_HEX_LEN + 1];
    char reservation[RECORD_TOKEN_MAX + 1];
} unreserve_job;

static void unreserve_done(void *data)
{
    unreserve_job *u = data;
    store_release(u->w->store, u->id, u->reservation);
    if (u->then != NULL)
        u->then(u->op);
    free(u);
}

static void discard_object(upload_op *op, void (*then)(upload_op *op))
{
    unreserve_job *u = calloc(1, sizeof(*u));
    objstore_put *put = op->obj;
    op->obj = NULL;
    if (u == NULL) { /* the reservation runs out by itself; the orphan sweep takes the object */
        objstore_put_discard(put, NULL, NULL);
        op->reservation[0] = '\0';
        if (then != NULL)
            then(op);
        return;
    }
    *u = (unreserve_job){.w = op->w, .op = op, .then = then};
    memcpy(u->id, op->id, sizeof(u->id));
    memcpy(u->reservation, op->reservation, sizeof(u->reservation));
    op->reservation[0] = '\0';
    if (put != NULL)
        objstore_put_discard(put, unreserve_done, u);
    else
        unreserve_done(u);
}

static void discard(upload_op *op, void (*then)(upload_op *op))
{
    sealed_writer_free(op->sw);
    op->sw = NULL;
    filling_drop(op);
    if (op->obj != NULL || op->reservation[0] != '\0') {
        discard_object(op, then);
        return;
    }
    if (op->fd < 0 && op->temp[0] == '\0' && op->stored[0] == '\0') {
        if (then != NULL)
            then(op);
        return;
    }
    discard_job *d = malloc(sizeof(*d)), local;
    discard_job *j = d != NULL ? d : &local;
    *j = (discard_job){.job = {.work = discard_work, .done = discard_done}, .op = op, .then = then, .fd = op->fd};
    memcpy(j->temp, op->temp, sizeof(j->temp));
    memcpy(j->stored, op->stored, sizeof(j->stored));
    op->fd = -1;
    op->temp[0] = op->stored[0] = '\0';
    if (d != NULL) {
        offload_submit(op->w->offload, &d->job);
        return;
    }
    discard_work(&local.job); /* out of memory: on the loop, rather than leave the files */
    if (then != NULL)
        then(op);
}

static void op_free(upload_op *op)
{
    if (h2o_timeout_is_linked(&op->step))
        h2o_timeout_unlink(&op->step);
    discard(op, NULL);
    if (op->slot != NULL)
        gate_leave(op->w->gate, op->slot, NULL, NULL);
    cJSON_Delete(op->answer);
    mp_free(op->mp);
    EVP_MD_CTX_free(op->sha);
    explicit_bzero(op->key, sizeof(op->key));
    explicit_bzero(op->token, sizeof(op->token));
    req_ref_release(&op->ref);
    free(op);
}

/* ---- answers ---- */

/* FastAPI's shape: loc is where the value came from ("body", "query", "header"), then
 * its name (none for the body as a whole). */
static cJSON *error_item(const char *type, const char *where, const char *field, const char *msg)
{
    cJSON *e = cJSON_CreateObject(), *loc = cJSON_CreateArray();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddItemToArray(loc, cJSON_CreateString(where));
    if (field != NULL)
        cJSON_AddItemToArray(loc, cJSON_CreateString(field));
    cJSON_AddItemToObject(e, "loc", loc);
    cJSON_AddStringToObject(e, "msg", msg);
    return e;
}

static const char *field_str(const cJSON *o, const char *name)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return v != NULL ? v : "";
}

/* A PUT's 201 for a person at a terminal: "name  value" lines, the last a ready command
 * that deletes the file. Takes o. */
static void created_text(h2o_req_t *req, cJSON *o)
{
    char deadline[40];
    int uses = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "uses"));
    /* "2026-11-22T18:00:00Z" as "2026-11-22 18:00:00 UTC" */
    snprintf(deadline, sizeof(deadline), "%.10s %.8s UTC", field_str(o, "expiry"), field_str(o, "expiry") + 11);
    /* The URL in single quotes for any shell (PUBLIC_URL may hold & or '), each ' as '\'' */
    const char *url = field_str(o, "delete_url");
    char *quoted = h2o_mem_alloc_pool(&req->pool, 4 * strlen(url) + 3);
    size_t q = 0;
    quoted[q++] = '\'';
    for (; *url != '\0'; url++)
        q += (size_t)(*url == '\'' ? sprintf(quoted + q, "'\\''") : sprintf(quoted + q, "%c", *url));
    quoted[q++] = '\'';
    quoted[q] = '\0';
    size_t cap = 4096 + 4 * strlen(field_str(o, "filename"));
    char *text = h2o_mem_alloc_pool(&req->pool, cap);
    int n = snprintf(text, cap,
                     "key       %s\n"
                     "share     %s\n"
                     "download  %s\n"
                     "expires   %s (%d download%s)\n"
                     "file      %s (%.0f bytes)\n"
                     "sha256    %s\n"
                     "delete    curl -X DELETE -H 'X-Delete-Token: %s' %s\n",
                     field_str(o, "key"), field_str(o, "share_url"), field_str(o, "download_url"), deadline, uses,
                     uses == 1 ? "" : "s", field_str(o, "filename"),
                     cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "size")), field_str(o, "sha256"),
                     field_str(o, "delete_token"), quoted);
    cJSON_Delete(o);
    http_text(req, 201, text, n > 0 && (size_t)n < cap ? (size_t)n : 0);
}

static void send_answer(void *data)
{
    upload_op *op = data;
    if (op->ref.req != NULL) {
        if (op->plain && op->status == 201)
            created_text(op->ref.req, op->answer);
        else
            http_json(op->ref.req, op->status, op->answer);
        op->answer = NULL; /* taken by either */
    }
    op_free(op);
}

static void release_slot(upload_op *op)
{
    gate_slot *slot = op->slot;
    op->slot = NULL;
    if (slot != NULL)
        gate_leave(op->w->gate, slot, send_answer, op);
    else
        send_answer(op);
}

/* The one way an upload ends. What it wrote is removed and its slot among the
 * client's uploads in progress released before the answer goes out, so the client's
 * next upload (on any worker) can never find either still there. A streamed body's
 * writes may still be in flight (its handler answers after the body is in, and the
 * writes hold op and its descriptor): the last one's completion goes on. Takes body. */
static void answer(upload_op *op, int status, cJSON *body)
{
    op->status = status;
    op->answer = body;
    if (op->writes > 0) {
        op->answer_waiting = 1;
        return;
    }
    discard(op, release_slot);
}

/* The client left: op goes once no write holds it (step_run frees it then). */
static void op_gone(upload_op *op)
{
    req_ref_release(&op->ref);
    if (op->writes > 0)
        op->write_waiting = 1;
    else
        op_free(op);
}

static void answer_detail(upload_op *op, int status, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "detail", detail);
    answer(op, status, o);
}

/* The store (or the secret it keeps) is not at hand. */
static void unavailable(upload_op *op)
{
    answer_detail(op, 503, "Service temporarily unavailable");
}

/* Object storage does not take the file: nothing was recorded, try again later. */
static void storage_unavailable(upload_op *op)
{
    if (op->ref.req != NULL) {
        char after[16];
        int n = snprintf(after, sizeof(after), "%d", HTTP_STORAGE_RETRY_S);
        http_header(op->ref.req, H2O_TOKEN_RETRY_AFTER, after, (size_t)n);
    }
    answer_detail(op, 503, "Storage temporarily unavailable");
}

static void unprocessable(upload_op *op, cJSON *list)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "detail", list);
    answer(op, 422, o);
}

static void unprocessable_one(upload_op *op, const char *type, const char *where, const char *field, const char *msg)
{
    cJSON *list = cJSON_CreateArray();
    cJSON_AddItemToArray(list, error_item(type, where, field, msg));
    unprocessable(op, list);
}

/* ---- form fields ---- */

/* Parse an optional integer field into *out (default when absent or empty). Adds a
 * FastAPI-style error to list and returns -1 when it is not an integer in range. */
static int field_int(const form_field *f, const char *name, int def, int lo, int hi, int *out, cJSON *list)
{
    char msg[96];
    const char *s = f->raw;
    *out = def;
    if (!f->seen)
        return 0;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 && !f->overflow)
        return 0;
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    int digits = len > i && !f->overflow;
    for (size_t k = i; k < len; k++)
        if (s[k] < '0' || s[k] > '9')
            digits = 0;
    if (!digits || len > 12) {
        cJSON_AddItemToArray(list, error_item("int_parsing", f->loc, name,
                                              "Input should be a valid integer, unable to parse string as an integer"));
        return -1;
    }
    long v = strtol(s, NULL, 10);
    if (v < lo) {
        snprintf(msg, sizeof(msg), "Input should be greater than or equal to %d", lo);
        cJSON_AddItemToArray(list, error_item("greater_than_equal", f->loc, name, msg));
        return -1;
    }
    if (v > hi) {
        snprintf(msg, sizeof(msg), "Input should be less than or equal to %d", hi);
        cJSON_AddItemToArray(list, error_item("less_than_equal", f->loc, name, msg));
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void field_add(form_field *f, const uint8_t *data, size_t len)
{
    if (f->len + len > FIELD_MAX) {
        f->overflow = 1;
        return;
    }
    memcpy(f->raw + f->len, data, len);
    f->len += len;
    f->raw[f->len] = '\0';
}

/* ---- the file ---- */

/* The writer's verdict as the parser's: the disk's trouble is 507, anything else 500. */
static int writer_verdict(upload_op *op, int r)
{
    if (r == SEALED_OK)
        return 0;
    if (r == SEALED_ERR_IO) {
        op->write_errno = op->to->err;
        return op->obj != NULL ? STOP_OBJECT : STOP_STORAGE;
    }
    return STOP_INTERNAL;
}

/* The key, its id and the secret they are made under: drawn when the file begins, or
 * ahead of the body for object storage, whose id must be reserved before anything is
 * written (reserve_begin). */
static int draw_key(upload_op *op, const secret *sec)
{
    snprintf(op->secret_fp, sizeof(op->secret_fp), "%s", sec->store_fp);
    return words_draw_key(op->w->env->words, op->w->cfg->key_words, op->key) != 0 ||
                   crypt_id_with(op->w->hmac, sec->key, op->key, strlen(op->key), op->id) != 0
               ? -1
               : 0;
}

static void on_put_wake(void *data);

/* Sealed pieces of the file that follow each other, written at their place by a
 * helper thread. Writes do not overlap, so they need not land in order. */
typedef struct write_job {
    offload_job job;
    upload_op *op;
    int fd;
    uint64_t off;
    size_t len;
    int err;
    uint8_t *data; /* a worker chunk: ciphertext only */
} write_job;

static int write_at(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : ENOSPC; /* as the file sink says it */
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static void write_work(offload_job *job)
{
    write_job *j = (write_job *)job;
    j->err = write_at(j->fd, j->data, j->len, j->off);
}

static void write_done(offload_job *job)
{
    write_job *j = (write_job *)job;
    upload_op *op = j->op;
    worker_chunk_give(op->w, j->data, 0);
    op->writes--;
    if (j->err != 0 && !op->write_failed) {
        op->write_failed = 1;
        op->write_errno = j->err;
    }
    free(j);
    if (op->answer_waiting && op->writes == 0) {
        op->answer_waiting = 0;
        discard(op, release_slot);
    } else if (op->write_waiting) {
        op->write_waiting = 0;
        step_run(&op->step);
    }
}

/* Pieces gathered and never queued: the upload ends without them. */
static void filling_drop(upload_op *op)
{
    if (op->filling == NULL)
        return;
    worker_chunk_give(op->w, op->filling->data, 0);
    free(op->filling);
    op->filling = NULL;
}

/* The pieces gathered go to a helper thread. */
static void writes_flush(upload_op *op)
{
    write_job *j = op->filling;
    op->filling = NULL;
    if (j == NULL)
        return;
    op->writes++;
    offload_submit(op->w->offload, &j->job);
}

/* The sealed writer's sink for a local file: a copy of each piece is gathered, up to
 * WRITE_SEGMENTS of them, for one write on a helper thread (writes_flush, after each
 * slice fed; the last ones with the install, commit); when memory is short it is
 * written here and now. A failure reaches the parser later, through step_run. */
static int sink_write(sealed_sink *k, const uint8_t *buf, size_t len)
{
    upload_op *op = H2O_STRUCT_FROM_MEMBER(upload_op, sink, k);
    uint64_t off = op->write_off;
    op->write_off += len;
    if (op->filling != NULL && op->filling->len + len > WORKER_CHUNK_LEN)
        writes_flush(op);
    write_job *j = op->filling;
    if (j == NULL && len <= WORKER_CHUNK_LEN && (j = malloc(sizeof(*j))) != NULL) {
        *j = (write_job){.job = {.work = write_work, .done = write_done}, .op = op, .fd = op->fd, .off = off};
        if ((j->data = worker_chunk_take(op->w)) == NULL) {
            free(j);
            j = NULL;
        }
        op->filling = j;
    }
    if (j == NULL)
        return (k->err = write_at(op->fd, buf, len, off)) != 0 ? -1 : 0;
    memcpy(j->data + j->len, buf, len);
    j->len += len;
    return 0;
}

/* Body bytes an upload takes before its writes catch up: a write's worth for each
 * one that may still be queued. */
static size_t write_room(const upload_op *op)
{
    return op->writes < WRITES_MAX ? (size_t)(WRITES_MAX - op->writes) * WRITE_SEGMENTS * SEALED_SEGMENT_SIZE : 0;
}

/* The file an upload is sealed into, in TEMP_PATH. It has no name (O_TMPFILE) until it
 * is sealed whole and linked into place (install_file): so an upload creates and
 * renames no entry in TEMP_PATH, whose lock every upload took twice, and a file whose
 * worker dies goes with it. Where the file system or /proc cannot, a named file. */
static int temp_open(upload_op *op)
{
    worker *w = op->w;
    op->temp[0] = '\0';
    if (w->unnamed_temp) {
        int fd = open(w->cfg->temp_path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
            return fd;
        w->unnamed_temp = 0;
    }
    snprintf(op->temp, sizeof(op->temp), "%s/up-XXXXXX", w->cfg->temp_path);
    return mkostemp(op->temp, O_CLOEXEC);
}

static int file_begin(upload_op *op)
{
    const secret *sec = worker_secret(op->w);
    sealed_header h;
    uint8_t fk[CRYPT_KEY_LEN];
    if (sec == NULL || (op->drawn && strcmp(sec->store_fp, op->secret_fp) != 0))
        return STOP_UNAVAILABLE;
    if ((!op->drawn && draw_key(op, sec) != 0) || crypt_random(op->salt, sizeof(op->salt)) != 0 ||
        sealed_header_new(&h, op->salt) != 0 ||
        crypt_derive_with(op->w->hmac, sec->key, op->key, strlen(op->key), op->salt, CRYPT_INFO_FILE, fk) != 0)
        return STOP_INTERNAL;
    if (op->w->objstore != NULL) {
        op->obj = objstore_put_new(op->w->objstore, op->id, on_put_wake, op);
        op->to = op->obj != NULL ? objstore_put_sink(op->obj) : NULL;
    } else {
        op->to = &op->sink;
    }
    /* It writes nothing before the first data; its sink is the file made below. */
    op->sw = op->to != NULL ? sealed_writer_new(fk, &h, op->to) : NULL;
    explicit_bzero(fk, sizeof(fk));
    if (op->sw == NULL || EVP_DigestInit_ex(op->sha, EVP_sha256(), NULL) != 1)
        return STOP_INTERNAL;
    if (op->obj != NULL)
        return 0;
    op->fd = temp_open(op);
    if (op->fd < 0) {
        op->temp[0] = '\0';
        op->write_errno = errno;
        return STOP_STORAGE;
    }
    op->sink = (sealed_sink){.write = sink_write};
    op->write_off = 0;
    return 0;
}

static int sniff_check(upload_op *op)
{
    const char *m = magic_buffer(op->w->magic, op->sniff, op->sniff_len);
    snprintf(op->mime, sizeof(op->mime), "%s", m != NULL ? m : "application/octet-stream");
    const cfg_str_list *allowed = &op->w->cfg->allowed_mime_types;
    return mime_allowed(allowed->items, allowed->n, op->mime) ? 0 : STOP_MIME;
}

static int file_data(upload_op *op, const uint8_t *data, size_t len)
{
    /* Too large: stop writing but keep counting (the body is here anyway), so the 413
     * can say how large. */
    if (op->too_large || op->size + len > op->w->cfg->max_file_size) {
        sealed_writer_free(op->sw); /* what it wrote goes with the answer */
        op->sw = NULL;
        op->too_large = 1;
        op->size += len;
        return 0;
    }
    if (op->sniff_len < SNIFF_BYTES) {
        size_t n = len < SNIFF_BYTES - op->sniff_len ? len : SNIFF_BYTES - op->sniff_len;
        memcpy(op->sniff + op->sniff_len, data, n);
        op->sniff_len += n;
        if (op->sniff_len == SNIFF_BYTES && sniff_check(op) != 0)
            return STOP_MIME;
    }
    op->size += len;
    EVP_DigestUpdate(op->sha, data, len);
    return writer_verdict(op, sealed_write(op->sw, data, len));
}

static int file_end(upload_op *op)
{
    if (op->size == 0 || op->too_large)
        return 0; /* reported after parsing */
    if (op->sniff_len < SNIFF_BYTES && sniff_check(op) != 0)
        return STOP_MIME;
    uint8_t d[32];
    unsigned dl = 0;
    EVP_DigestFinal_ex(op->sha, d, &dl);
    crypt_hex(d, sizeof(d), op->sha_hex);
    return writer_verdict(op, sealed_writer_finish(op->sw));
}

/* ---- parser callbacks ---- */

static int on_part_begin(void *user, const mp_part_info *info)
{
    upload_op *op = user;
    op->part = PART_IGNORED;
    if (strcmp(info->name, "file") == 0 && info->filename != NULL && info->filename_len > 0) {
        if (op->file_seen)
            return STOP_DUPLICATE;
        op->file_seen = 1;
        op->part = PART_FILE;
        drop_clean_filename(info->filename, info->filename_len, op->filename);
        return file_begin(op);
    }
    if (strcmp(info->name, "expiry") == 0 && info->filename == NULL) {
        op->part = PART_EXPIRY;
        op->expiry = (form_field){.seen = 1, .loc = "body"};
    } else if (strcmp(info->name, "uses") == 0 && info->filename == NULL) {
        op->part = PART_USES;
        op->uses = (form_field){.seen = 1, .loc = "body"};
    }
    return 0;
}

static int on_part_data(void *user, const uint8_t *data, size_t len)
{
    upload_op *op = user;
    switch (op->part) {
    case PART_FILE: return file_data(op, data, len);
    case PART_EXPIRY: field_add(&op->expiry, data, len); return 0;
    case PART_USES: field_add(&op->uses, data, len); return 0;
    default: return 0;
    }
}

static int on_part_end(void *user)
{
    upload_op *op = user;
    int r = op->part == PART_FILE ? file_end(op) : 0;
    op->part = PART_NONE;
    return r;
}

static const mp_callbacks callbacks = {on_part_begin, on_part_data, on_part_end};

/* ---- committing ---- */

static void created(h2o_req_t *req, upload_op *op)
{
    char base[512], url[768], ts[32];
    cJSON *o = cJSON_CreateObject();
    http_base_url(req, base, sizeof(base));
    cJSON_AddStringToObject(o, "key", op->key);
    snprintf(url, sizeof(url), "%s/preview/%s", base, op->key);
    cJSON_AddStringToObject(o, "preview_url", url);
    snprintf(url, sizeof(url), "%s/download/%s", base, op->key);
    cJSON_AddStringToObject(o, "download_url", url);
    http_header(req, H2O_TOKEN_LOCATION, url, strlen(url));
    util_iso_time(op->expires_at, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "expiry", ts);
    cJSON_AddNumberToObject(o, "uses", op->uses_n);
    cJSON_AddStringToObject(o, "filename", op->filename);
    cJSON_AddNumberToObject(o, "size", (double)op->size);
    util_iso_time(op->created_at, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "created_at", ts);
    cJSON_AddStringToObject(o, "sha256", op->sha_hex);
    /* The key in the fragment, which browsers never send: a previewer fetching the
     * share link gets the drop page and learns nothing. */
    snprintf(url, sizeof(url), "%s/#%s", base, op->key);
    cJSON_AddStringToObject(o, "share_url", url);
    snprintf(url, sizeof(url), "%s/download/%s", base, op->key);
    cJSON_AddStringToObject(o, "delete_url", url);
    cJSON_AddStringToObject(o, "delete_token", op->token);
    answer(op, 201, o);
}

static void restart(upload_op *op);

static void on_created(record_outcome outcome, void *data)
{
    upload_op *op = data;
    h2o_req_t *req = op->ref.req;
    if (outcome == RECORD_UNAVAILABLE || outcome == RECORD_STALE) {
        /* The script may have run and only its reply been lost: the slot is given back
         * again, which is harmless, and the record, pointing at no file, expires. STALE:
         * nothing was recorded (the store's secret is not the one of this upload). */
        unavailable(op);
    } else if (outcome == RECORD_TAKEN) {
        restart(op); /* the key is live already: draw another */
    } else {
        /* Recorded, and the script gave the client's slot back. If the client is gone
         * the upload stays: it expires like any other. */
        op->stored[0] = '\0';
        if (op->obj != NULL) { /* the object is the record's now, and the id with it */
            objstore_put_free(op->obj);
            op->obj = NULL;
            store_release(op->w->store, op->id, op->reservation);
            op->reservation[0] = '\0';
        }
        gate_recorded(op->w->gate, op->slot);
        op->slot = NULL;
        shm_add(op->w->env->shm, M_UPLOADS, 1);
        shm_add(op->w->env->shm, M_UPLOAD_BYTES, op->size);
        if (req != NULL)
            created(req, op);
        else
            op_free(op);
    }
}

static void record(upload_op *op)
{
    const record_new rec = {.id = op->id, .client = op->client, .slot = gate_slot_name(op->slot),
                            .uses = op->uses_n, .created = op->created_at, .expires = op->expires_at,
                            .size = op->size, .salt = op->salt, .meta = op->blob, .meta_len = op->blob_len,
                            .delete_digest = op->token_digest, .secret_fp = op->secret_fp};
    store_create(op->w->store, &rec, on_created, op);
}

/* Moving the sealed file into place, on a helper thread: it owns fd from the start,
 * and writes the file's last pieces (tail, if any) first. */
typedef struct {
    offload_job job;
    upload_op *op;
    int fd;
    write_job *tail;
    int fsync;
    char temp[PATHS_MAX], dir[PATHS_MAX], path[PATHS_MAX];
    int result; /* 0 moved to path, 1 the id's file exists (the key is taken), -1 failed */
    int err;
} install_job;

/* Never replaces a file: one already there is a live upload, or one not yet shredded.
 * An unnamed file (temp "") is linked in through its descriptor, closed after. */
static int install_file(install_job *j)
{
    if (j->fsync && fsync(j->fd) != 0)
        return -1;
    char fd_path[32] = "";
    if (j->temp[0] == '\0') {
        snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", j->fd);
    } else {
        close(j->fd);
        j->fd = -1;
    }
    /* Its directory is made when missing; the shredder removes emptied ones, so if it
     * took ours between mkdir and the move, once more. */
    int r = -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0 && mkdir(j->dir, 0700) != 0 && errno != EEXIST)
            return -1;
        if (j->temp[0] == '\0') {
            r = linkat(AT_FDCWD, fd_path, AT_FDCWD, j->path, AT_SYMLINK_FOLLOW);
        } else {
            r = renameat2(AT_FDCWD, j->temp, AT_FDCWD, j->path, RENAME_NOREPLACE);
            if (r != 0 && errno == EINVAL && (r = link(j->temp, j->path)) == 0)
                unlink(j->temp); /* a file system without RENAME_NOREPLACE */
        }
        if (r == 0 || errno != ENOENT)
            break;
    }
    if (r != 0)
        return errno == EEXIST ? 1 : -1;
    if (j->fsync) {
        /* The rename is durable only once the directory is. A failure here still
         * leaves the file moved: the result says so, and the answer removes it. */
        int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0)
            j->err = errno;
        if (dfd >= 0)
            close(dfd);
    }
    return 0;
}

static void install_work(offload_job *job)
{
    install_job *j = (install_job *)job;
    j->err = j->tail != NULL ? write_at(j->fd, j->tail->data, j->tail->len, j->tail->off) : 0;
    j->result = j->err != 0 ? -1 : install_file(j);
    if (j->result != 0 && j->err == 0)
        j->err = errno;
    if (j->fd >= 0)
        close(j->fd);
}

static void install_done(offload_job *job)
{
    install_job *j = (install_job *)job;
    upload_op *op = j->op;
    int result = j->result, err = j->err;
    if (j->tail != NULL) {
        worker_chunk_give(op->w, j->tail->data, 0);
        free(j->tail);
    }
    if (result == 0) {
        snprintf(op->stored, sizeof(op->stored), "%s", j->path);
        op->temp[0] = '\0';
    }
    free(j);
    if (result == 1) {
        restart(op); /* the key is taken */
    } else if (result != 0 || err != 0) {
        log_event(LOG_ERROR, "upload_storage_failed", "%s", strerror(err));
        answer_detail(op, 507, "Insufficient storage");
    } else {
        record(op);
    }
}

/* Object storage: the object is complete (or not): record it. */
static void on_object_written(int ok, void *data)
{
    upload_op *op = data;
    if (ok)
        record(op);
    else
        storage_unavailable(op);
}

static void commit(upload_op *op, int expiry_min, int uses)
{
    drop_meta meta;
    /* The file was sealed under the secret of file_begin: the metadata must be too, or
     * the upload fails (the store was emptied or replaced meanwhile). */
    const secret *sec = worker_secret(op->w);
    if (sec == NULL || strcmp(sec->store_fp, op->secret_fp) != 0) {
        unavailable(op);
        return;
    }
    op->uses_n = uses;
    op->created_at = (int64_t)(util_now_ms() / 1000);
    op->expires_at = op->created_at + (int64_t)expiry_min * 60;
    snprintf(meta.filename, sizeof(meta.filename), "%s", op->filename);
    snprintf(meta.mime, sizeof(meta.mime), "%s", op->mime);
    memcpy(meta.sha256, op->sha_hex, sizeof(meta.sha256));
    int bloblen = drop_meta_seal(op->w->hmac, sec->key, op->key, strlen(op->key), op->salt, &meta, op->blob);
    if (op->obj != NULL) {
        if (bloblen < 0 || crypt_token_new(op->token) != 0 ||
            crypt_token_digest(op->token, strlen(op->token), op->token_digest) != 0) {
            answer_detail(op, 500, "Internal server error");
            return;
        }
        op->blob_len = (size_t)bloblen;
        objstore_put_finish(op->obj, on_object_written);
        return;
    }
    install_job *j = bloblen >= 0 && crypt_token_new(op->token) == 0 &&
                             crypt_token_digest(op->token, strlen(op->token), op->token_digest) == 0
                         ? calloc(1, sizeof(*j))
                         : NULL;
    if (j == NULL || paths_file_dir(op->w->cfg, op->id, j->dir, sizeof(j->dir)) != 0 ||
        paths_file(op->w->cfg, op->id, j->path, sizeof(j->path)) != 0) {
        free(j);
        answer_detail(op, 500, "Internal server error");
        return;
    }
    op->blob_len = (size_t)bloblen;
    j->job = (offload_job){.work = install_work, .done = install_done};
    j->op = op;
    j->fd = op->fd;
    j->fsync = op->w->cfg->fsync_uploads;
    j->tail = op->filling;
    op->filling = NULL;
    memcpy(j->temp, op->temp, sizeof(j->temp));
    op->fd = -1; /* the job's now; op->temp stays named until the file has moved */
    offload_submit(op->w->offload, &j->job);
}

/* The body is parsed: check what the form said, then commit or refuse. */
static void parsed(upload_op *op)
{
    cJSON *errors = cJSON_CreateArray();
    int expiry, uses;
    field_int(&op->expiry, "expiry", EXPIRY_DEFAULT, 1, 60, &expiry, errors);
    field_int(&op->uses, "uses", USES_DEFAULT, 1, 5, &uses, errors);
    if (!op->file_seen)
        cJSON_InsertItemInArray(errors, 0, error_item("missing", "body", "file", "Field required"));
    else if (op->size == 0)
        cJSON_InsertItemInArray(errors, 0, error_item("value_error", "body", "file", "File is empty"));
    if (cJSON_GetArraySize(errors) > 0) {
        unprocessable(op, errors);
        return;
    }
    cJSON_Delete(errors);
    if (op->too_large) {
        char detail[160];
        snprintf(detail, sizeof(detail), "File too large: %llu bytes (Max Size: %llu bytes)",
                 (unsigned long long)op->size, (unsigned long long)op->w->cfg->max_file_size);
        answer_detail(op, 413, detail);
        return;
    }
    commit(op, expiry, uses);
}

/* A callback or the parser stopped: answer with what it means. */
static void stopped(upload_op *op, int r)
{
    char detail[160];
    switch (r) {
    case STOP_STORAGE:
        log_event(LOG_ERROR, "upload_storage_failed", "%s", strerror(op->write_errno));
        answer_detail(op, 507, "Insufficient storage");
        break;
    case STOP_MIME:
        snprintf(detail, sizeof(detail), "File type not supported: %s", op->mime);
        answer_detail(op, 415, detail);
        break;
    case STOP_DUPLICATE: unprocessable_one(op, "value_error", "body", "file", "Only one file may be uploaded"); break;
    case STOP_INTERNAL: answer_detail(op, 500, "Internal server error"); break;
    case STOP_UNAVAILABLE: unavailable(op); break;
    case STOP_OBJECT: storage_unavailable(op); break;
    default: unprocessable_one(op, "value_error", "body", NULL, mp_error(op->mp)); break;
    }
}

/* The next n bytes of the body: a PUT's are the file, a POST's the form. */
static int feed(upload_op *op, const uint8_t *data, size_t n)
{
    int r;
    if (op->put) {
        r = op->offset == 0 ? file_begin(op) : 0;
        if (r == 0)
            r = file_data(op, data, n);
    } else {
        r = mp_feed(op->mp, data, n);
    }
    op->offset += n;
    writes_flush(op);
    return r;
}

/* The last pieces gathered stay: a file that is whole goes with its install_job
 * (commit), so a small upload hands its one write and its move to a single helper. */
static int feed_end(upload_op *op)
{
    return op->put ? file_end(op) : mp_finish(op->mp);
}

static void on_put_wake(void *data)
{
    upload_op *op = data;
    if (op->put_waiting) {
        op->put_waiting = 0;
        h2o_timeout_link(op->w->ctx.loop, &op->w->slice_timeout, &op->step);
    }
}

static void step_run(h2o_timeout_entry_t *entry)
{
    upload_op *op = H2O_STRUCT_FROM_MEMBER(upload_op, step, entry);
    /* A write in flight holds op and its descriptor: nothing ends before it is done,
     * and no more is parsed while WRITES_MAX are queued. Its completion comes back. */
    int ending = op->ref.req == NULL || op->write_failed || op->parse_done;
    if (op->writes > 0 && (ending || op->writes >= WRITES_MAX)) {
        op->write_waiting = 1;
        return;
    }
    if (op->ref.req == NULL) {
        op_free(op); /* the client left */
        return;
    }
    if (op->write_failed) {
        stopped(op, STOP_STORAGE); /* whatever the rest of the body would have said */
        return;
    }
    if (op->parse_done) {
        if (op->verdict == MP_OK)
            parsed(op);
        else
            stopped(op, op->verdict);
        return;
    }
    uint64_t now = h2o_now(op->w->ctx.loop);
    if (op->w->slice_at != now) {
        op->w->slice_at = now;
        op->w->slice_left = SLICE_BYTES;
    }
    /* A slice is also what the write queue has room for (write_room). A file too
     * large is no longer written. */
    size_t room = op->too_large ? SIZE_MAX : write_room(op);
    size_t n = op->body.len - op->offset;
    n = n < op->w->slice_left ? n : op->w->slice_left;
    n = n < room ? n : room;
    if (n == 0 && op->offset < op->body.len) {
        h2o_timeout_link(op->w->ctx.loop, &op->w->slice_timeout, &op->step); /* behind the others */
        return;
    }
    op->w->slice_left -= n;
    int r = feed(op, (const uint8_t *)op->body.base + op->offset, n);
    if (r == MP_OK && op->offset < op->body.len) {
        /* Object storage: at most two parts held; the next slice once one has gone. */
        if (op->obj != NULL && objstore_put_full(op->obj))
            op->put_waiting = 1;
        else
            h2o_timeout_link(op->w->ctx.loop, &op->w->slice_timeout, &op->step);
        return;
    }
    if (r == MP_OK)
        r = feed_end(op);
    op->parse_done = 1;
    op->verdict = r;
    step_run(entry);
}

static int op_begin(upload_op *op)
{
    op->fd = -1;
    op->part = PART_NONE;
    if (op->put) {
        op->file_seen = 1;
        return 0;
    }
    op->mp = mp_new(op->boundary, &callbacks, op);
    return op->mp != NULL ? 0 : -1;
}

/* Start over with a new key (the drawn one is live already). */
static void restart(upload_op *op)
{
    discard(op, NULL);
    mp_free(op->mp);
    op->mp = NULL;
    /* A streamed body is gone: sealed under the drawn key, it cannot be sealed again
     * under another. The client is asked to send it again (three words, a million
     * live keys: one upload in about 470,000). */
    if (op->ref.req == NULL || ++op->attempt >= MAX_ATTEMPTS || op->streamed) {
        if (op->streamed)
            log_event(LOG_WARNING, "upload_key_taken", "a streamed upload drew a live key: answered 503");
        unavailable(op);
        return;
    }
    if (!op->put) { /* the form is read again; a PUT's fields came from its head */
        memset(&op->expiry, 0, sizeof(op->expiry));
        memset(&op->uses, 0, sizeof(op->uses));
    }
    op->file_seen = op->too_large = 0;
    op->parse_done = 0;
    op->size = 0;
    op->sniff_len = 0;
    op->offset = 0;
    if (op_begin(op) != 0) {
        answer_detail(op, 500, "Internal server error");
        return;
    }
    if (op->w->objstore != NULL) {
        op->drawn = 0;
        reserve_begin(op);
        return;
    }
    h2o_timeout_link(op->w->ctx.loop, &op->w->slice_timeout, &op->step);
}

/* ---- object storage: the id is reserved before its object is written ---- */

static void on_reserved(record_outcome outcome, void *data)
{
    upload_op *op = data;
    if (outcome != RECORD_OK)
        op->reservation[0] = '\0'; /* not ours (a lost reply's runs out) */
    if (op->ref.req == NULL) {
        op_free(op);
    } else if (outcome == RECORD_TAKEN) {
        if (++op->attempt >= MAX_ATTEMPTS)
            unavailable(op);
        else
            reserve_begin(op);
    } else if (outcome != RECORD_OK) {
        unavailable(op);
    } else {
        step_run(&op->step);
    }
}

static void reserve_begin(upload_op *op)
{
    const secret *sec = worker_secret(op->w);
    uint8_t t[16];
    if (sec == NULL) {
        unavailable(op);
        return;
    }
    if (draw_key(op, sec) != 0 || crypt_random(t, sizeof(t)) != 0) {
        answer_detail(op, 500, "Internal server error");
        return;
    }
    crypt_hex(t, sizeof(t), op->reservation);
    op->drawn = 1;
    store_reserve(op->w->store, op->id, op->reservation, RESERVATION_MS, on_reserved, op);
}

static void on_rate(void *data, int outcome, long retry_after)
{
    upload_op *op = data;
    h2o_req_t *req = op->ref.req;
    if (req == NULL) {
        op_gone(op); /* a streamed body's writes may be in flight */
    } else if (outcome == RATE_UNAVAILABLE) {
        unavailable(op);
    } else if (outcome == RATE_LIMITED || outcome == RATE_BUSY) {
        char after[24];
        const char *detail = outcome == RATE_LIMITED ? "Rate limit exceeded" : "Too many uploads in progress";
        int n = snprintf(after, sizeof(after), "%ld", retry_after > 0 ? retry_after : 1);
        http_header(req, H2O_TOKEN_RETRY_AFTER, after, (size_t)n);
        /* Over its rate, its next bodies get this answer at their head, not after
         * arriving whole. Uploads in progress end at any moment: not remembered. */
        if (outcome == RATE_LIMITED)
            bodies_remember_limited(req, detail, retry_after > 0 ? retry_after : 1);
        answer_detail(op, 429, detail);
    } else if (op->w->objstore != NULL) {
        reserve_begin(op);
    } else {
        step_run(&op->step); /* the first slice now; any further ones on later loop turns */
    }
}

/* A new upload of req's body; NULL when memory is short. */
static upload_op *op_alloc(h2o_req_t *req)
{
    upload_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    req_ref_init(&op->ref, req);
    op->w = worker_of(req);
    op->fd = -1;
    op->body = req->entity;
    op->step.cb = step_run;
    op->expiry.loc = op->uses.loc = "body";
    op->sha = EVP_MD_CTX_new();
    if (op->sha == NULL) {
        op_free(op);
        return NULL;
    }
    return op;
}

/* The same, or NULL when it was answered already. */
static upload_op *op_new(h2o_req_t *req)
{
    upload_op *op = op_alloc(req);
    if (op == NULL)
        http_error(req, 500, "Internal server error"); /* nothing to release yet */
    return op;
}

/* Past the checks of the request itself: the upload gate, then the body. */
static void op_start(h2o_req_t *req, upload_op *op)
{
    if (!op->streamed && op_begin(op) != 0) {
        answer_detail(op, 500, "Internal server error");
        return;
    }
    http_client_key(req, op->client);
    gate_enter(op->w->gate, op->w->cfg, op->client, &op->slot, on_rate, op);
}

/* The form's boundary into out (MP_MAX_BOUNDARY + 1 bytes), from req's Content-Type;
 * -1 when there is none. */
static int boundary_of(h2o_req_t *req, char *out)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    return ct == -1 ? -1
                    : mp_boundary(req->headers.entries[ct].value.base, req->headers.entries[ct].value.len, out);
}

int upload_handle(h2o_req_t *req)
{
    upload_op *op = stream_take(req);
    if (op != NULL) { /* the form was parsed as it came */
        op_start(req, op);
        return 0;
    }
    op = op_new(req);
    if (op == NULL)
        return 0;
    if (boundary_of(req, op->boundary) != 0) {
        unprocessable_one(op, "value_error", "body", NULL, "Expected multipart/form-data with a boundary");
        return 0;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        unprocessable_one(op, "missing", "body", "file", "Field required");
        return 0;
    }
    op_start(req, op);
    return 0;
}

/* ---- PUT ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A query value, percent-decoded ('+' is a space), into f. */
static void field_from_query(form_field *f, const char *v, size_t len)
{
    *f = (form_field){.seen = 1, .loc = "query"};
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)v[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len && hex_digit(v[i + 1]) >= 0 && hex_digit(v[i + 2]) >= 0) {
            c = (uint8_t)(hex_digit(v[i + 1]) << 4 | hex_digit(v[i + 2]));
            i += 2;
        }
        field_add(f, &c, 1);
    }
}

/* expiry or uses from the query (the last one given) or else a header of that name. The
 * query wins: it is what the user typed on the command line, where a header may come
 * from a configuration file such as a .curlrc. */
static void put_field(h2o_req_t *req, const char *name, form_field *f)
{
    size_t nlen = strlen(name);
    if (req->query_at != SIZE_MAX) {
        const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0)
                field_from_query(f, eq + 1, (size_t)(stop - eq - 1));
            p = stop + 1;
        }
        if (f->seen)
            return;
    }
    ssize_t i = h2o_find_header_by_str(&req->headers, name, nlen, -1);
    if (i != -1) {
        *f = (form_field){.seen = 1, .loc = "header"};
        field_add(f, (const uint8_t *)req->headers.entries[i].value.base, req->headers.entries[i].value.len);
    }
}

/* Does Accept ask for application/json (with a q above zero)? Anything else, curl's
 * default of any type included, gets the lines for a terminal. */
static int wants_json(h2o_req_t *req)
{
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        size_t pos = 0;
        while (pos < v.len) {
            size_t end = pos;
            while (end < v.len && v.base[end] != ',')
                end++;
            const char *t = v.base + pos;
            size_t n = end - pos;
            while (n > 0 && (*t == ' ' || *t == '\t'))
                t++, n--;
            size_t type = 0;
            while (type < n && t[type] != ';' && t[type] != ' ' && t[type] != '\t')
                type++;
            if (h2o_lcstris(t, type, H2O_STRLIT("application/json"))) {
                const char *q = NULL;
                for (size_t k = type; k + 2 <= n && q == NULL; k++)
                    if ((t[k] == 'q' || t[k] == 'Q') && t[k + 1] == '=')
                        q = t + k + 2;
                if (q == NULL || strtod(q, NULL) > 0)
                    return 1;
            }
            pos = end + 1;
        }
    }
    return 0;
}

int put_handle(h2o_req_t *req, const char *name, size_t len)
{
    const cfg *c = worker_of(req)->cfg;
    upload_op *op = stream_take(req); /* the file sealed as it came */
    int streamed = op != NULL;
    if (op == NULL && (op = op_new(req)) == NULL)
        return 0;
    op->put = 1;
    op->plain = !wants_json(req);
    drop_clean_filename(name, len, op->filename);
    put_field(req, "expiry", &op->expiry);
    put_field(req, "uses", &op->uses);
    /* libh2o refuses a Content-Length far over the limit unread (413, see http.c); one
     * just over it, or an HTTP/2 body, arrives whole: the same 413, before any work. */
    if (!streamed && req->entity.len > c->max_file_size) {
        char detail[160];
        snprintf(detail, sizeof(detail), "File too large: %llu bytes (Max Size: %llu bytes)",
                 (unsigned long long)req->entity.len, (unsigned long long)c->max_file_size);
        answer_detail(op, 413, detail);
        return 0;
    }
    cJSON *errors = cJSON_CreateArray();
    int v;
    if (!streamed && (req->entity.base == NULL || req->entity.len == 0))
        cJSON_AddItemToArray(errors, error_item("value_error", "body", NULL, "File is empty"));
    field_int(&op->expiry, "expiry", EXPIRY_DEFAULT, 1, 60, &v, errors);
    field_int(&op->uses, "uses", USES_DEFAULT, 1, 5, &v, errors);
    if (cJSON_GetArraySize(errors) > 0) {
        unprocessable(op, errors);
        return 0;
    }
    cJSON_Delete(errors);
    op_start(req, op);
    return 0;
}

/* ---- a body fed as it arrives (stream.h) ---- */

upload_op *upload_stream_begin(h2o_req_t *req, int put)
{
    /* Declined, it is asked again each loop turn while the body arrives: nothing is
     * allocated before the answer is known to be yes. */
    char boundary[MP_MAX_BOUNDARY + 1] = "";
    if (worker_of(req)->objstore != NULL)
        return NULL; /* its id is reserved before anything is written (reserve_begin) */
    if (!put && boundary_of(req, boundary) != 0)
        return NULL; /* the handler answers it, the body whole */
    upload_op *op = op_alloc(req);
    if (op == NULL)
        return NULL;
    op->put = put;
    op->streamed = 1;
    memcpy(op->boundary, boundary, sizeof(op->boundary));
    if (op_begin(op) != 0) {
        op_free(op);
        return NULL;
    }
    return op;
}

size_t upload_stream_room(upload_op *op)
{
    /* With the verdict in, nothing more is written: the rest is read and dropped. */
    if (op->parse_done || op->write_failed)
        return SIZE_MAX;
    return write_room(op);
}

void upload_stream_data(upload_op *op, const uint8_t *p, size_t n)
{
    if (op->parse_done || op->write_failed)
        return;
    int r = feed(op, p, n);
    if (r != MP_OK) {
        op->parse_done = 1;
        op->verdict = r;
    }
}

void upload_stream_end(upload_op *op)
{
    if (op->parse_done || op->write_failed)
        return;
    op->verdict = feed_end(op);
    op->parse_done = 1;
}

void upload_stream_gone(upload_op *op)
{
    op_gone(op);
}
