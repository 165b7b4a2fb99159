/* store.c - the worker's Valkey/Redis client, asynchronous on h2o's evloop, and its
 * typed calls (the commands and replies themselves are record.c's).
 *
 * hiredis has no adapter for h2o's evloop, so we wrap a dup of its fd in an h2o socket
 * that never reads by itself (DONT_READ) and hand readiness back to hiredis. hiredis
 * 0.14 has no command timeout: a watchdog tick declares the connection dead when a
 * reply is overdue, which makes hiredis fail every pending command (NULL reply). Time
 * the loop itself did not run (the tick came late: the process was stopped, or a call
 * blocked) is not held against the store: a reply may be waiting unread all along.
 * hiredis resolves host names with a blocking getaddrinfo(); a name (compose's
 * "valkey") is resolved with getaddrinfo_a() off the loop, and hiredis gets the
 * numeric address. The commands pending are capped: requests arriving faster than the
 * store answers (a flood of HTTP/2 streams reset at once, each still costing a script)
 * fail fast instead of queueing without end.
 *
 * When it keeps the server secret (store mode), the client is usable only once the
 * secret of the current connection is read: it is asked for right behind the
 * connection's set-up, cleared when the connection goes, and read again when a script
 * answers that the store's secret is no longer the one the worker holds.
 *
 * With sentinels (REDIS_SENTINELS), a second connection on the loop, the sentinel link,
 * asks one sentinel where the primary is, then stays subscribed to +switch-master; the
 * data connection is usable once ROLE says it reached a primary, and is dropped (every
 * pending command failing at once) when the sentinels name another, when a command
 * answers READONLY, or when it is lost; the next one asks the sentinels again. While
 * the primary has (or just had) a replica, an upload's record is acknowledged only once
 * WAIT says the replica has it. */
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/sds.h>
#include <netdb.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "crypt.h"
#include "log.h"
#include "util.h"

#define TICK_MS 100
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 500
#define STALL_LOG_MS 250 /* a late tick worth a loop_stalled line */
#define STALL_LOG_EVERY_MS 1000
#define ROLE_EVERY_MS 1000 /* with sentinels: how often the primary's replicas are counted */
/* How long after the primary last had a replica its uploads still wait for one. A
 * primary whose replica was just promoted away has none, and is about to be demoted
 * and emptied: the sentinels say so within a few seconds. A replica gone for good
 * costs uploads this long. */
#define REPLICA_GRACE_MS 10000

/* One hiredis connection driven by the loop (see link_attach); ac is NULL when there
 * is none. */
typedef struct {
    redisAsyncContext *ac;
} store_link;

struct store {
    h2o_loop_t *loop;
    store_url url;
    int timeout_ms;
    unsigned max_pending;
    uint64_t shed;          /* calls failed over max_pending, not yet taken */
    store_link db;                /* the store's primary (or the REDIS_URL server) */
    store_url_host target;  /* where db connects (or connects next) */
    int role_ok;            /* with sentinels: ROLE on db said primary */
    int replicas;           /* ... with this many replicas */
    uint64_t replica_seen_ms; /* when it last had one (0: never on this connection) */
    int role_asked;         /* a ROLE is under way */
    uint64_t role_at_ms;    /* when the last one was sent */
    int unreplicated;       /* an upload found no replica in time (logged once until one does) */
    int connected;          /* scripts loaded or loading */
    int up;                 /* connected, and the secret (if we keep it) read on this connection */
    int was_up;             /* for logging transitions once */
    secret *sec;            /* the server secret this client keeps, or NULL (pinned) */
    int sec_asked;          /* a secret read is under way */
    int sec_creating;       /* ... and it is the offer of a new one */
    int sec_complained;     /* a bad secret in the store was logged (once until it is fixed) */
    unsigned inflight;      /* commands sent, not answered */
    uint64_t progress_ms;   /* last reply, or when inflight became non-zero */
    uint64_t connect_started_ms; /* or when the secret was last asked for: up is overdue after it */
    uint64_t next_connect_ms;
    int backoff_ms;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;
    uint64_t tick_ms;       /* when the last tick ran */
    uint64_t stalls;        /* late ticks not yet logged, and the worst of them */
    uint64_t stall_worst_ms;
    uint64_t stall_logged_ms;
    char sha[RECORD_SCRIPT_COUNT][41];
    int want_write;           /* the db link's commands are buffered for store_flush */
    int flushing;             /* in store_flush: hiredis asks for writability if it could not write all */
    int resolving;            /* a getaddrinfo_a() is under way: RESOLVE_* */
    struct gaicb gai;
    struct addrinfo gai_hints;

    /* With sentinels (url.nsentinels > 0): the sentinel link first asks where the
     * primary is, then stays subscribed to +switch-master. */
    store_link sent;
    size_t sent_next;         /* the sentinel to ask next */
    int sent_answered;        /* the link has named the primary */
    uint64_t sent_started_ms;
    uint64_t sent_retry_ms;   /* reopen a lost link (kept for news) after this */
    store_url_host primary;   /* where the sentinels last said the primary is */
    int primary_fresh;        /* ... and connecting there needs no new question */
    int sent_complained;      /* sentinel_unreachable logged, no sentinel answered since */
};

enum { RESOLVE_NONE, RESOLVE_DB, RESOLVE_SENTINEL };

/* The caller's callback, whichever typed call it came through. */
typedef union {
    store_access_cb access;
    store_outcome_cb outcome;
    store_count_cb count;
    store_gate_cb gate;
    void (*done)(void *data);
} typed_cb;

/* Reads a reply (NULL: none) into its typed form and calls cb with it. */
typedef void (*deliver_fn)(store *s, const redisReply *reply, typed_cb cb, void *data);

/* A command in flight, formatted once (RESP) in the same allocation: for a script,
 * EVALSHA sha and then tail, the arguments from numkeys on, which a retry with EVAL
 * (the store lost the script: NOSCRIPT) sends again behind the script's body. */
typedef struct {
    store *s;
    deliver_fn deliver;
    typed_cb cb;
    void *data;
    int script;      /* -1 for plain commands */
    int nargs;       /* elements in tail */
    size_t len;      /* of text */
    size_t tail_off; /* where tail starts in text */
    char text[];
} store_cmd;

/* ---- the evloop adapter ---- */

/* One per hiredis connection, freed with it (its cleanup may be deferred past the
 * moment the store has moved on to a new connection). */
typedef struct {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
} ev_conn;

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    ev_conn *e = sock->data;
    redisAsyncHandleRead(e->ac);
}

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    (void)err;
    ev_conn *e = sock->data;
    redisAsyncHandleWrite(e->ac);
}

static void ev_add_read(void *p)
{
    ev_conn *e = p;
    if (!h2o_socket_is_reading(e->sock))
        h2o_socket_read_start(e->sock, on_sock_read);
}

static void ev_del_read(void *p)
{
    ev_conn *e = p;
    if (h2o_socket_is_reading(e->sock))
        h2o_socket_read_stop(e->sock);
}

/* Once connected, a command only marks the buffer for store_flush, which writes all
 * the commands of a loop turn at once; waiting for writability is kept for the
 * connection's set-up and for what store_flush could not write. */
static void ev_add_write(void *p)
{
    ev_conn *e = p;
    store *s = e->ac->data;
    if (e->ac == s->db.ac && !s->flushing && (e->ac->c.flags & REDIS_CONNECTED)) {
        s->want_write = 1;
        return;
    }
    if (!h2o_socket_is_writing(e->sock))
        h2o_socket_notify_write(e->sock, on_sock_write);
}

static void ev_del_write(void *p)
{
    (void)p; /* a spurious write notification is harmless to hiredis */
}

void store_flush(store *s)
{
    if (!s->want_write)
        return;
    s->want_write = 0;
    redisAsyncContext *ac = s->db.ac;
    if (ac == NULL || !(ac->c.flags & REDIS_CONNECTED) || h2o_socket_is_writing(((ev_conn *)ac->ev.data)->sock))
        return; /* gone, or already waiting for writability, which writes it all */
    s->flushing = 1;
    redisAsyncHandleWrite(ac); /* may end the connection: ac is not used after */
    s->flushing = 0;
}

static void ev_cleanup(void *p)
{
    ev_conn *e = p;
    h2o_socket_close(e->sock);
    free(e);
}

/* Drive ac from the loop as l: 0, or -1 (ac freed). */
static int link_attach(store *s, store_link *l, redisAsyncContext *ac)
{
    ev_conn *e = calloc(1, sizeof(*e));
    int fd = e != NULL ? dup(ac->c.fd) : -1;
    if (fd < 0) {
        free(e);
        redisAsyncFree(ac);
        return -1;
    }
    e->ac = ac;
    e->sock = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    e->sock->data = e;
    l->ac = ac;
    ac->data = s;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- connection life ---- */

static void connection_lost(store *s, const char *why)
{
    s->db.ac = NULL;
    s->want_write = 0;
    s->role_ok = s->role_asked = s->replicas = 0;
    s->replica_seen_ms = 0;
    s->connected = 0;
    s->up = 0;
    s->sec_asked = s->sec_creating = 0;
    if (s->sec != NULL)
        secret_clear(s->sec); /* the next connection may lead to another store */
    s->inflight = 0;
    s->next_connect_ms = util_mono_ms() + (uint64_t)s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    if (s->was_up) {
        log_event(LOG_ERROR, "store_down", "metadata store connection lost: %s", why);
        s->was_up = 0;
    }
}

/* Fail everything pending on db now and connect again. */
static void drop(store *s, const char *why)
{
    redisAsyncContext *ac = s->db.ac;
    connection_lost(s, why);
    ac->onDisconnect = NULL;
    redisAsyncFree(ac); /* deferred by hiredis when we run in one of its callbacks */
}

/* Usable: connected, with sentinels to a primary, and the secret (when we keep it)
 * read on this connection. */
static void check_up(store *s)
{
    s->up = s->connected && (s->sec == NULL || s->sec->loaded) && (s->url.nsentinels == 0 || s->role_ok);
    if (s->up && !s->was_up) {
        log_event(LOG_INFO, "store_up", "metadata store connected");
        s->was_up = 1;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    if (status != REDIS_OK) {
        connection_lost(s, ac->errstr); /* hiredis frees ac after this callback */
        return;
    }
    s->connected = 1;
    s->backoff_ms = BACKOFF_MIN_MS;
    check_up(s);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    store *s = ac->data;
    connection_lost(s, ac->errstr[0] ? ac->errstr : "closed");
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_event(LOG_ERROR, "store_setup_failed", "%s", reply->str);
}

/* ---- the server secret ---- */

/* What hiredis kept of a reply holding the secret goes as soon as the secret is in its
 * page: the reply's string, the bytes its reader consumed or left behind in its
 * buffer, and the 16 KiB buffer on the stack it read them into (in a frame that has
 * returned, below the one we run in). */
static __attribute__((noinline)) void wipe_stack(void)
{
    uint8_t below[32 * 1024];
    explicit_bzero(below, sizeof(below));
}

static void wipe_read(redisAsyncContext *ac, redisReply *reply)
{
    redisReader *rd = ac->c.reader;
    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        explicit_bzero(reply->str, reply->len);
    if (rd != NULL && rd->buf != NULL) {
        explicit_bzero(rd->buf, rd->pos);
        explicit_bzero(rd->buf + rd->len, sdsavail(rd->buf));
    }
    wipe_stack();
}

static void secret_create(store *s);

static void on_secret(redisAsyncContext *ac, void *r, void *priv)
{
    store *s = priv;
    redisReply *reply = r;
    uint8_t key[CRYPT_SECRET_LEN];
    if (ac != s->db.ac || reply == NULL)
        return; /* the connection went: the next one asks again */
    int got = record_read_secret(reply, key);
    wipe_read(ac, reply);
    if (got == 0 && !s->sec_creating) {
        secret_create(s); /* a store nobody used yet, or one emptied */
        return;
    }
    s->sec_asked = s->sec_creating = 0;
    if (got <= 0) {
        /* Not ours to repair: another version or a person wrote it, or the store refused
         * the command. Stay unusable (503); the watchdog drops this connection and the
         * next one asks again. */
        if (!s->sec_complained && reply->type == REDIS_REPLY_ERROR)
            log_event(LOG_ERROR, "store_secret_failed", "cannot read the server secret from the store: %s",
                      reply->str);
        else if (!s->sec_complained)
            log_event(LOG_ERROR, "store_secret_invalid",
                      "the store's key \"secret\" is not a %d-byte server secret: requests answer 503 until it "
                      "is (delete the key to start afresh; every stored file then becomes an orphan)",
                      CRYPT_SECRET_LEN);
        s->sec_complained = 1;
        return;
    }
    secret_set(s->sec, key, 1);
    explicit_bzero(key, sizeof(key));
    s->sec_complained = 0;
    check_up(s);
}

/* Read the store's secret; if it has none, secret_create follows. */
static void secret_ask(store *s)
{
    record_cmd cmd;
    if (record_cmd_secret_get(&cmd) != 0 ||
        redisAsyncCommandArgv(s->db.ac, on_secret, s, cmd.argc, cmd.argv, cmd.len) != REDIS_OK)
        return; /* not up: the watchdog retries with a new connection */
    s->sec_asked = 1;
    s->connect_started_ms = util_mono_ms();
}

/* Offer a fresh secret (SET NX: another worker or node may be first; the reply is the
 * one in force). Formatted here so that the one copy handed to hiredis is its output
 * buffer; ours is wiped. */
static void secret_create(store *s)
{
    uint8_t candidate[CRYPT_SECRET_LEN];
    record_cmd cmd;
    char nk[16], *out = NULL;
    const char *argv[RECORD_ARGS_MAX + 3];
    size_t lens[RECORD_ARGS_MAX + 3];
    int len = -1;
    if (crypt_random(candidate, sizeof(candidate)) == 0 && record_cmd_secret_create(&cmd, candidate) == 0) {
        argv[0] = "EVAL";
        argv[1] = record_scripts[cmd.script];
        argv[2] = nk;
        lens[0] = 4;
        lens[1] = strlen(argv[1]);
        lens[2] = (size_t)snprintf(nk, sizeof(nk), "%d", cmd.nkeys);
        memcpy(argv + 3, cmd.argv, (size_t)cmd.argc * sizeof(argv[0]));
        memcpy(lens + 3, cmd.len, (size_t)cmd.argc * sizeof(lens[0]));
        len = redisFormatCommandArgv(&out, cmd.argc + 3, argv, lens);
        record_cmd_wipe(&cmd);
    }
    explicit_bzero(candidate, sizeof(candidate));
    if (len > 0 && redisAsyncFormattedCommand(s->db.ac, on_secret, s, out, (size_t)len) == REDIS_OK) {
        s->sec_asked = s->sec_creating = 1;
        s->connect_started_ms = util_mono_ms();
    } else {
        s->sec_asked = 0; /* not up: the watchdog retries with a new connection */
    }
    if (out != NULL) {
        explicit_bzero(out, (size_t)len);
        redisFreeCommand(out);
    }
}

/* A script found another secret in the store than the one ids were derived under:
 * the store was emptied or replaced without the connection dropping. Nothing more is
 * sent under the old one; the new one is read at once. */
static void secret_changed(store *s)
{
    if (s->sec == NULL || s->sec_asked || s->db.ac == NULL)
        return;
    log_event(LOG_WARNING, "store_secret_changed",
              "the store's server secret changed (the store was emptied or replaced): reading it again");
    secret_clear(s->sec);
    s->up = 0;
    secret_ask(s);
}

int store_ready(const store *s)
{
    return s->up;
}

const secret *store_secret(const store *s)
{
    return s->up && s->sec != NULL && s->sec->loaded ? s->sec : NULL;
}

/* With sentinels, the address they gave may no longer be the primary by the time we
 * connect (or a replica answers there after a restart): nothing is sent before ROLE
 * says it is one. */
static void on_role(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    store *s = ac->data;
    if (ac != s->db.ac || r == NULL)
        return;
    int replicas = record_read_role(r);
    s->role_asked = 0;
    if (replicas >= 0) {
        s->replicas = replicas;
        if (replicas > 0)
            s->replica_seen_ms = util_mono_ms();
        s->role_ok = 1;
        check_up(s);
        return;
    }
    log_event(LOG_WARNING, "store_not_primary", "the store at %s:%d is not a primary: asking the sentinels again",
              s->target.host, s->target.port);
    drop(s, "not a primary");
}

/* Ask the primary for its role (again): it may have been demoted meanwhile, and the
 * replicas it has decide whether an upload waits for one. */
static void role_ask(store *s)
{
    record_cmd cmd;
    if (record_cmd_role(&cmd) == 0 &&
        redisAsyncCommandArgv(s->db.ac, on_role, NULL, cmd.argc, cmd.argv, cmd.len) == REDIS_OK) {
        s->role_asked = 1;
        s->role_at_ms = util_mono_ms();
    }
}

static void connect_to(store *s, const char *numeric_host)
{
    redisAsyncContext *ac = s->url.unix_path[0] ? redisAsyncConnectUnix(s->url.unix_path)
                                                : redisAsyncConnect(numeric_host, s->target.port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        connection_lost(s, "connect failed");
        return;
    }
    if (link_attach(s, &s->db, ac) != 0) {
        connection_lost(s, "dup failed");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->connect_started_ms = util_mono_ms();
    s->inflight = 0;
    /* Pipelined ahead of any request: commands are answered in order. */
    if (s->url.password[0]) {
        if (s->url.user[0])
            redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s %s", s->url.user, s->url.password);
        else
            redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", s->url.password);
    }
    if (s->url.db != 0)
        redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", s->url.db);
    if (s->url.nsentinels > 0)
        role_ask(s);
    for (int i = 0; i < RECORD_SCRIPT_COUNT; i++)
        redisAsyncCommand(ac, on_setup_reply, NULL, "SCRIPT LOAD %s", record_scripts[i]);
    if (s->sec != NULL)
        secret_ask(s);
}

static int is_numeric(const char *host)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Resolve host in the background for what (RESOLVE_*); 0, or -1. */
static int resolve_start(store *s, const char *host, int what)
{
    struct gaicb *list[1] = {&s->gai};
    memset(&s->gai, 0, sizeof(s->gai));
    memset(&s->gai_hints, 0, sizeof(s->gai_hints));
    s->gai_hints.ai_socktype = SOCK_STREAM;
    s->gai.ar_name = host;
    s->gai.ar_request = &s->gai_hints;
    s->connect_started_ms = util_mono_ms();
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0)
        return -1;
    s->resolving = what;
    return 0;
}

static void sent_open(store *s, int may_block);

/* Connect now when no name needs resolving, or (at start-up, before serving) when
 * blocking is allowed; else start resolving it in the background. With sentinels,
 * the primary comes from them first, unless they have just said where it is. */
static void connect_start(store *s, int may_block)
{
    if (s->url.nsentinels > 0 && !s->primary_fresh) {
        sent_open(s, may_block);
        return;
    }
    if (s->url.nsentinels > 0)
        s->target = s->primary;
    s->primary_fresh = 0;
    if (s->url.unix_path[0] || is_numeric(s->target.host) || may_block) {
        connect_to(s, s->target.host);
        return;
    }
    if (resolve_start(s, s->target.host, RESOLVE_DB) != 0)
        connection_lost(s, "cannot resolve the store's host name");
}

static void sent_connect(store *s, const char *numeric_host);
static void sentinel_failed(store *s, const char *why);

/* Called each tick while resolving: connect once the address is known. */
static void resolve_poll(store *s)
{
    int r = gai_error(&s->gai), what = s->resolving;
    if (r == EAI_INPROGRESS) {
        if (util_mono_ms() - s->connect_started_ms > (uint64_t)s->timeout_ms && gai_cancel(&s->gai) == EAI_CANCELED) {
            s->resolving = RESOLVE_NONE;
            if (what == RESOLVE_DB)
                connection_lost(s, "resolving the store's host name timed out");
            else
                sentinel_failed(s, "resolving a sentinel's host name timed out");
        }
        return;
    }
    s->resolving = RESOLVE_NONE;
    if (r != 0 || s->gai.ar_result == NULL) {
        if (what == RESOLVE_DB)
            connection_lost(s, r != 0 ? gai_strerror(r) : "no address");
        else
            sentinel_failed(s, r != 0 ? gai_strerror(r) : "no address");
        return;
    }
    char host[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = s->gai.ar_result->ai_addr;
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->sa_family, a, host, sizeof(host));
    freeaddrinfo(s->gai.ar_result);
    s->gai.ar_result = NULL;
    if (what == RESOLVE_DB)
        connect_to(s, host);
    else
        sent_connect(s, host);
}

/* ---- Sentinel ---- */

static void sent_close(store *s)
{
    redisAsyncContext *ac = s->sent.ac;
    if (ac == NULL)
        return;
    s->sent.ac = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}

/* This sentinel could not say: try the next one, after the back-off when the store
 * is not connected either. */
static void sentinel_failed(store *s, const char *why)
{
    sent_close(s);
    s->sent_next++;
    s->sent_retry_ms = util_mono_ms() + BACKOFF_MAX_MS;
    if (s->db.ac == NULL && s->resolving == RESOLVE_NONE) {
        connection_lost(s, why);
    } else if (!s->sent_complained && s->sent_next % s->url.nsentinels == 0) {
        /* Each of them has been tried: the store still serves, but a failover now
         * would not be heard of (only a lost connection or READONLY would tell). */
        log_event(LOG_WARNING, "sentinel_unreachable", "no sentinel answers (%s): trying them in turn", why);
        s->sent_complained = 1;
    }
}

/* The sentinels name another primary: leave the old one now, whatever is pending. */
static void switch_to(store *s, const store_url_host *primary)
{
    s->primary = *primary;
    s->primary_fresh = 1;
    if (s->resolving != RESOLVE_NONE)
        return; /* what it resolves is checked with ROLE, then asked again */
    if (s->db.ac != NULL)
        drop(s, "the sentinels named another primary");
    s->backoff_ms = BACKOFF_MIN_MS;
    connect_start(s, 0);
}

static int same_host(const store_url_host *a, const store_url_host *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void on_sent_primary(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    store *s = ac->data;
    store_url_host at;
    if (ac != s->sent.ac)
        return;
    if (r == NULL || record_read_sentinel_primary(r, &at) != 0) {
        const redisReply *reply = r;
        char why[300];
        snprintf(why, sizeof(why), "the sentinel named no primary%s%s",
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? ": " : "",
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        sentinel_failed(s, why);
        return;
    }
    s->sent_answered = 1;
    s->sent_complained = 0;
    if (s->db.ac == NULL || !same_host(&at, &s->target))
        switch_to(s, &at);
}

static void on_sent_message(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    store *s = ac->data;
    store_url_host at;
    if (ac != s->sent.ac || r == NULL || record_read_switch_master(r, s->url.master, &at) != 1)
        return;
    log_event(LOG_WARNING, "store_failover", "the sentinels moved the primary to %s:%d", at.host, at.port);
    if (s->db.ac == NULL || !same_host(&at, &s->target))
        switch_to(s, &at);
}

static void on_sent_connect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    if (status != REDIS_OK && ac == s->sent.ac) {
        s->sent.ac = NULL; /* hiredis frees it after this callback */
        sentinel_failed(s, ac->errstr);
    }
}

static void on_sent_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    store *s = ac->data;
    if (ac != s->sent.ac)
        return;
    s->sent.ac = NULL;
    sentinel_failed(s, "the sentinel closed the connection");
}

/* Ask the sentinel for the primary, then stay subscribed for news of a failover (the
 * question is answered first: a subscription's messages come after pending replies). */
static void sent_connect(store *s, const char *numeric_host)
{
    const store_url_host *h = &s->url.sentinels[s->sent_next % s->url.nsentinels];
    redisAsyncContext *ac = redisAsyncConnect(numeric_host, h->port);
    record_cmd ask, sub;
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        sentinel_failed(s, "cannot connect to a sentinel");
        return;
    }
    if (link_attach(s, &s->sent, ac) != 0) {
        sentinel_failed(s, "dup failed");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_sent_connect);
    redisAsyncSetDisconnectCallback(ac, on_sent_disconnect);
    s->sent_answered = 0;
    s->sent_started_ms = util_mono_ms();
    if (s->url.sentinel_password[0])
        redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", s->url.sentinel_password);
    if (record_cmd_sentinel_primary(&ask, s->url.master) != 0 || record_cmd_sentinel_subscribe(&sub) != 0 ||
        redisAsyncCommandArgv(ac, on_sent_primary, NULL, ask.argc, ask.argv, ask.len) != REDIS_OK ||
        redisAsyncCommandArgv(ac, on_sent_message, NULL, sub.argc, sub.argv, sub.len) != REDIS_OK)
        sentinel_failed(s, "cannot ask the sentinel");
}

/* (Re)open the sentinel link to the next sentinel. */
static void sent_open(store *s, int may_block)
{
    const store_url_host *h = &s->url.sentinels[s->sent_next % s->url.nsentinels];
    sent_close(s);
    s->sent_answered = 0;
    s->sent_started_ms = util_mono_ms();
    if (is_numeric(h->host) || may_block) {
        sent_connect(s, h->host);
        return;
    }
    if (resolve_start(s, h->host, RESOLVE_SENTINEL) != 0)
        sentinel_failed(s, "cannot resolve a sentinel's host name");
}

/* Each tick: a sentinel slow to answer is given up for the next; a link lost while
 * the store is connected is opened again, to hear of the next failover. */
static void sent_tick(store *s, uint64_t now)
{
    if (s->sent.ac != NULL && !s->sent_answered && now - s->sent_started_ms > (uint64_t)s->timeout_ms)
        sentinel_failed(s, "a sentinel did not answer in time");
    else if (s->sent.ac == NULL && s->db.ac != NULL && s->resolving == RESOLVE_NONE && now >= s->sent_retry_ms)
        sent_open(s, 0);
}

/* How late this tick is, in ms: the loop did not run for that long, so nothing was
 * read in that time, the store's replies included. The store is given the time back,
 * and a stall worth saying is logged (at most once a second, with the worst). */
static void loop_lag(store *s, uint64_t now)
{
    uint64_t late = s->tick_ms != 0 && now > s->tick_ms + TICK_MS ? now - s->tick_ms - TICK_MS : 0;
    s->tick_ms = now;
    s->progress_ms = s->progress_ms + late < now ? s->progress_ms + late : now;
    s->connect_started_ms = s->connect_started_ms + late < now ? s->connect_started_ms + late : now;
    s->sent_started_ms = s->sent_started_ms + late < now ? s->sent_started_ms + late : now;
    if (late >= STALL_LOG_MS) {
        s->stalls++;
        s->stall_worst_ms = late > s->stall_worst_ms ? late : s->stall_worst_ms;
    }
    if (s->stalls == 0 || now - s->stall_logged_ms < STALL_LOG_EVERY_MS)
        return;
    log_event(LOG_WARNING, "loop_stalled", "the event loop did not run for %llu ms (%llu stalls); not held against the store",
              (unsigned long long)s->stall_worst_ms, (unsigned long long)s->stalls);
    s->stalls = s->stall_worst_ms = 0;
    s->stall_logged_ms = now;
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    store *s = H2O_STRUCT_FROM_MEMBER(store, tick, entry);
    uint64_t now = util_mono_ms();
    loop_lag(s, now);
    if (s->url.nsentinels > 0)
        sent_tick(s, now);
    if (s->resolving) {
        resolve_poll(s);
    } else if (s->db.ac == NULL) {
        /* (with sentinels, not while one is being asked) */
        if (now >= s->next_connect_ms && (s->sent.ac == NULL || s->sent_answered))
            connect_start(s, 0);
    } else if ((!s->up && now - s->connect_started_ms > (uint64_t)s->timeout_ms) ||
               (s->inflight > 0 && now - s->progress_ms > (uint64_t)s->timeout_ms)) {
        /* Overdue: fail everything pending now rather than let requests hang. */
        drop(s, "timed out");
    } else if (s->url.nsentinels > 0 && s->up && !s->role_asked && now - s->role_at_ms >= ROLE_EVERY_MS) {
        role_ask(s);
    }
    h2o_timeout_link(s->loop, &s->tick_timeout, &s->tick);
}

store *store_new(h2o_loop_t *loop, const store_url *url, int timeout_ms, unsigned max_pending, secret *sec)
{
    store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->sec = sec;
    s->url = *url;
    s->loop = loop;
    s->timeout_ms = timeout_ms;
    s->max_pending = max_pending;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->was_up = 1; /* so that a store down at start-up is logged */
    s->target.port = url->port;
    memcpy(s->target.host, url->host, sizeof(s->target.host));
    for (int i = 0; i < RECORD_SCRIPT_COUNT; i++) {
        uint8_t d[SHA_DIGEST_LENGTH];
        SHA1((const uint8_t *)record_scripts[i], strlen(record_scripts[i]), d);
        crypt_hex(d, sizeof(d), s->sha[i]);
    }
    h2o_timeout_init(loop, &s->tick_timeout, TICK_MS);
    s->tick.cb = on_tick;
    connect_start(s, 1); /* the worker serves nothing yet */
    h2o_timeout_link(loop, &s->tick_timeout, &s->tick);
    return s;
}

void store_free(store *s)
{
    if (s == NULL)
        return;
    if (h2o_timeout_is_linked(&s->tick))
        h2o_timeout_unlink(&s->tick);
    if (s->db.ac != NULL) {
        s->db.ac->onDisconnect = NULL;
        redisAsyncFree(s->db.ac);
    }
    sent_close(s);
    h2o_timeout_dispose(s->loop, &s->tick_timeout);
    free(s);
}

/* ---- commands ---- */

static void cmd_free(store_cmd *c)
{
    free(c);
}

/* RESP: "*n\r\n" (type '*') or "$n\r\n" (type '$') at p; returns the end. */
static char *resp_count(char *p, char type, size_t n)
{
    char digits[24];
    size_t at = sizeof(digits);
    do
        digits[--at] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    *p++ = type;
    memcpy(p, digits + at, sizeof(digits) - at);
    p += sizeof(digits) - at;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static char *resp_bulk(char *p, const char *arg, size_t len)
{
    p = resp_count(p, '$', len);
    memcpy(p, arg, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Room for a bulk string of len bytes: '$', up to 20 digits, CRLF, the bytes, CRLF. */
static size_t resp_room(size_t len)
{
    return 1 + 20 + 2 + len + 2;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

static int cmd_send(store_cmd *c)
{
    store *s = c->s;
    if (redisAsyncFormattedCommand(s->db.ac, on_reply, c, c->text, c->len) != REDIS_OK)
        return -1;
    if (s->inflight++ == 0)
        s->progress_ms = util_mono_ms();
    return 0;
}

/* The store has lost script: send it again as EVAL body, with the same tail. */
static int cmd_send_eval(store_cmd *c, const char *body)
{
    store *s = c->s;
    size_t body_len = strlen(body), tail_len = c->len - c->tail_off;
    char *text = malloc(1 + 20 + 2 + resp_room(4) + resp_room(body_len) + tail_len);
    if (text == NULL)
        return -1;
    char *p = resp_count(text, '*', (size_t)c->nargs + 2);
    p = resp_bulk(p, "EVAL", 4);
    p = resp_bulk(p, body, body_len);
    memcpy(p, c->text + c->tail_off, tail_len);
    p += tail_len;
    int r = redisAsyncFormattedCommand(s->db.ac, on_reply, c, text, (size_t)(p - text));
    free(text);
    if (r != REDIS_OK)
        return -1;
    if (s->inflight++ == 0)
        s->progress_ms = util_mono_ms();
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    store_cmd *c = priv;
    redisReply *reply = r;
    store *s = c->s;
    if (s->inflight > 0)
        s->inflight--;
    s->progress_ms = util_mono_ms();
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && c->script >= 0 &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && s->db.ac != NULL) {
        int script = c->script;
        c->script = -1; /* retry once, with the body */
        if (cmd_send_eval(c, record_scripts[script]) == 0)
            return;
        reply = NULL;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        log_event(LOG_ERROR, "store_error", "%s", reply->str);
        /* The primary was demoted under us (a failover): find the new one. */
        if (s->url.nsentinels > 0 && record_read_readonly(reply) && ac == s->db.ac)
            drop(s, "the store is a replica now");
        reply = NULL;
    }
    c->deliver(s, reply, c->cb, c->data);
    cmd_free(c);
}

/* One allocation holding the command as it goes to the store: EVALSHA sha (for a
 * script) and argv. */
static store_cmd *cmd_new(store *s, int script, int argc, const char **argv, const size_t *argvlen)
{
    size_t room = 1 + 20 + 2;
    if (script >= 0)
        room += resp_room(7) + resp_room(40);
    for (int i = 0; i < argc; i++)
        room += resp_room(argvlen[i]);
    store_cmd *c = malloc(sizeof(*c) + room);
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->s = s;
    c->script = script;
    c->nargs = argc;
    char *p = resp_count(c->text, '*', (size_t)argc + (script >= 0 ? 2 : 0));
    if (script >= 0) {
        p = resp_bulk(p, "EVALSHA", 7);
        p = resp_bulk(p, s->sha[script], 40);
    }
    c->tail_off = (size_t)(p - c->text);
    for (int i = 0; i < argc; i++)
        p = resp_bulk(p, argv[i], argvlen[i]);
    c->len = (size_t)(p - c->text);
    return c;
}

uint64_t store_take_shed(store *s)
{
    uint64_t n = s->shed;
    s->shed = 0;
    return n;
}

/* Send cmd (built is its builder's result); deliver runs exactly once, at once when
 * the store is down, when a call that starts work (starts) finds max_pending commands
 * pending, or when the command cannot be sent. A script goes as EVALSHA sha numkeys
 * args. */
static void submit(store *s, int starts, int built, const record_cmd *cmd, deliver_fn deliver, typed_cb cb,
                   void *data)
{
    if (starts && s->inflight >= s->max_pending) {
        s->shed++;
        deliver(s, NULL, cb, data);
        return;
    }
    char nk[16];
    const char *argv[RECORD_ARGS_MAX + 1];
    size_t lens[RECORD_ARGS_MAX + 1];
    int n = 0;
    if (built == 0 && cmd->script >= 0) {
        lens[n] = (size_t)snprintf(nk, sizeof(nk), "%d", cmd->nkeys);
        argv[n++] = nk;
    }
    store_cmd *c = NULL;
    if (built == 0 && s->up) {
        memcpy(argv + n, cmd->argv, (size_t)cmd->argc * sizeof(argv[0]));
        memcpy(lens + n, cmd->len, (size_t)cmd->argc * sizeof(lens[0]));
        c = cmd_new(s, cmd->script, n + cmd->argc, argv, lens);
    }
    if (c != NULL) {
        c->deliver = deliver;
        c->cb = cb;
        c->data = data;
    }
    if (c == NULL || cmd_send(c) != 0) {
        if (c != NULL)
            cmd_free(c);
        deliver(s, NULL, cb, data);
    }
}

/* ---- typed calls ---- */

static void deliver_access(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    record_access a;
    record_read_access(reply, &a);
    if (a.outcome == RECORD_STALE)
        secret_changed(s);
    cb.access(&a, data);
}

static void keyed(store *s, int (*build)(record_cmd *, const char *, const char *, const record_guard *, int64_t),
                  const char *id, const char *client, const record_guard *g, int64_t now, store_access_cb cb,
                  void *data)
{
    record_cmd cmd;
    submit(s, 1, build(&cmd, id, client, g, now), &cmd, deliver_access, (typed_cb){.access = cb}, data);
}

void store_take_use(store *s, const char *id, const char *client, const record_guard *g, int64_t now,
                    store_access_cb cb, void *data)
{
    keyed(s, record_cmd_take_use, id, client, g, now, cb, data);
}

void store_preview(store *s, const char *id, const char *client, const record_guard *g, int64_t now, store_access_cb cb,
                   void *data)
{
    keyed(s, record_cmd_preview, id, client, g, now, cb, data);
}

/* A status: the script's reads as plain commands in one round trip (the script costs the
 * store about ten times their CPU), and the script itself only when they find no
 * record: it counts the failure, atomically, in a second round trip. Misses are rare
 * where status is hot. The reads are not one atomic step: a block or a burn that lands
 * between them is seen by the next request, as it would be had this one come a moment
 * sooner. */
typedef struct {
    store_access_cb cb;
    void *data;
    record_peek peek;
    record_guard guard; /* its secret_fp is the peek's */
    const char *client; /* in text, behind the id */
    char id[];
} status_peek;

static void deliver_peek(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)cb;
    status_peek *sp = data;
    record_access a;
    record_read_peek(&sp->peek, reply);
    if (sp->peek.read < sp->peek.n)
        return;
    if (record_peek_answer(&sp->peek, &a)) {
        if (a.outcome == RECORD_STALE)
            secret_changed(s);
        sp->cb(&a, sp->data);
    } else {
        keyed(s, record_cmd_status, sp->id, sp->client, &sp->guard, sp->peek.now, sp->cb, sp->data);
    }
    free(sp);
}

void store_status(store *s, const char *id, const char *client, const record_guard *g, int64_t now, store_access_cb cb,
                  void *data)
{
    record_cmd cmds[RECORD_PEEK_CMDS];
    record_peek peek;
    size_t idlen = strlen(id), clen = strlen(client);
    status_peek *sp = NULL;
    if (record_cmd_status_peek(cmds, &peek, id, client, g, now) == 0)
        sp = malloc(sizeof(*sp) + idlen + 1 + clen + 1);
    if (sp == NULL) {
        keyed(s, record_cmd_status, id, client, g, now, cb, data);
        return;
    }
    sp->cb = cb;
    sp->data = data;
    sp->peek = peek;
    sp->guard = *g;
    sp->guard.secret_fp = sp->peek.secret_fp;
    memcpy(sp->id, id, idlen + 1);
    sp->client = memcpy(sp->id + idlen + 1, client, clen + 1);
    /* Once one read fails at once (the store is down, or max_pending is reached), the
     * others are not sent; each reply is still read, so the last one answers. */
    for (size_t i = 0; i < peek.n; i++) {
        if (sp->peek.unavailable)
            deliver_peek(s, NULL, (typed_cb){0}, sp);
        else
            submit(s, i == 0, 0, &cmds[i], deliver_peek, (typed_cb){0}, sp);
    }
}

void store_burn(store *s, const char *id, const char *client, const record_guard *g, int64_t now, const char *digest,
                store_access_cb cb, void *data)
{
    record_cmd cmd;
    submit(s, 1, record_cmd_burn(&cmd, id, client, g, now, digest), &cmd, deliver_access, (typed_cb){.access = cb}, data);
}

static void deliver_create(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    record_outcome o = record_read_create(reply);
    if (o == RECORD_STALE)
        secret_changed(s);
    cb.outcome(o, data);
}

/* An upload recorded on a primary with a replica is acknowledged only once the replica
 * has its record too: a failover then cannot lose it. A primary cut off from its
 * replica (the replica was just promoted: the two are briefly both primaries) answers
 * WAIT with 0, and the upload fails rather than be acknowledged on the side about to
 * be thrown away; it goes on waiting for REPLICA_GRACE_MS after it last had one. A
 * primary that has had no replica since we connected (after a failover, the old one
 * has not come back yet) is all there is: its uploads do not wait. */
typedef struct {
    store *s;
    store_outcome_cb cb;
    void *data;
    record_outcome outcome;
    int acked;
    int pending; /* replies still to come: the record's and WAIT's */
} replicated_create;

static void replicated_done(replicated_create *rc)
{
    if (--rc->pending > 0)
        return;
    record_outcome o = rc->outcome;
    if (o == RECORD_OK && rc->acked < 1) {
        o = RECORD_UNAVAILABLE;
        if (!rc->s->unreplicated)
            log_event(LOG_WARNING, "store_unreplicated",
                      "an upload was recorded but no replica confirmed it in %d ms: answered 503", rc->s->timeout_ms / 2);
        rc->s->unreplicated = 1;
    } else if (o == RECORD_OK) {
        rc->s->unreplicated = 0;
    }
    rc->cb(o, rc->data);
    free(rc);
}

static void on_replicated_create(record_outcome outcome, void *data)
{
    replicated_create *rc = data;
    rc->outcome = outcome;
    replicated_done(rc);
}

static void on_replicated_wait(long long acked, void *data)
{
    replicated_create *rc = data;
    rc->acked = (int)acked;
    replicated_done(rc);
}

static void deliver_wait(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    cb.count(record_read_wait(reply), data);
}

void store_create(store *s, const record_new *n, store_outcome_cb cb, void *data)
{
    record_cmd cmd, wait;
    replicated_create *rc = NULL;
    int replicated = s->replicas > 0 || (s->replica_seen_ms != 0 && util_mono_ms() - s->replica_seen_ms < REPLICA_GRACE_MS);
    /* WAIT holds up this worker's other commands meanwhile (it blocks the connection),
     * so it is short, and well within the watchdog's timeout: in sync, a replica
     * answers in a round trip. */
    if (replicated && record_cmd_wait(&wait, (uint32_t)s->timeout_ms / 2) == 0)
        rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        submit(s, 0, record_cmd_create(&cmd, n), &cmd, deliver_create, (typed_cb){.outcome = cb}, data);
        return;
    }
    *rc = (replicated_create){.s = s, .cb = cb, .data = data, .pending = 2};
    submit(s, 0, record_cmd_create(&cmd, n), &cmd, deliver_create, (typed_cb){.outcome = on_replicated_create}, rc);
    submit(s, 0, 0, &wait, deliver_wait, (typed_cb){.count = on_replicated_wait}, rc);
}

static void deliver_reserve(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    cb.outcome(record_read_reserve(reply), data);
}

void store_reserve(store *s, const char *id, const char *token, uint32_t ttl_ms, store_outcome_cb cb, void *data)
{
    record_cmd cmd;
    submit(s, 1, record_cmd_reserve(&cmd, id, token, ttl_ms, RECORD_RESERVE_UPLOAD, 0), &cmd, deliver_reserve,
           (typed_cb){.outcome = cb}, data);
}

static void deliver_nothing(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    (void)reply;
    (void)cb;
    (void)data;
}

void store_release(store *s, const char *id, const char *token)
{
    record_cmd cmd;
    submit(s, 0, record_cmd_release(&cmd, id, token), &cmd, deliver_nothing, (typed_cb){0}, NULL);
}

static void deliver_count(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    cb.count(record_read_rate(reply), data);
}

void store_rate(store *s, const char *kind, const char *client, uint32_t period_s, int64_t now, store_count_cb cb,
                void *data)
{
    record_cmd cmd;
    submit(s, 1, record_cmd_rate(&cmd, kind, client, period_s, now), &cmd, deliver_count, (typed_cb){.count = cb}, data);
}

static void deliver_gate(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    long long free_in_ms;
    record_outcome outcome = record_read_gate(reply, &free_in_ms);
    cb.gate(outcome, free_in_ms, data);
}

void store_gate_enter(store *s, const char *client, const char *slot, const record_gate *g, int64_t now,
                      store_gate_cb cb, void *data)
{
    record_cmd cmd;
    submit(s, 1, record_cmd_gate_enter(&cmd, client, slot, g, now), &cmd, deliver_gate, (typed_cb){.gate = cb}, data);
}

static void deliver_done(store *s, const redisReply *reply, typed_cb cb, void *data)
{
    (void)s;
    (void)reply;
    if (cb.done != NULL)
        cb.done(data);
}

void store_gate_leave(store *s, const char *client, const char *slot, void (*done)(void *data), void *data)
{
    record_cmd cmd;
    submit(s, 0, record_cmd_gate_leave(&cmd, client, slot), &cmd, deliver_done, (typed_cb){.done = done}, data);
}

void store_renew(store *s, const record_slot *slots, size_t n, uint32_t lease_ms)
{
    record_cmd cmd;
    submit(s, 0, record_cmd_renew(&cmd, slots, n, lease_ms), &cmd, deliver_done, (typed_cb){.done = NULL}, NULL);
}
