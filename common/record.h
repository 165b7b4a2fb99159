/* record.h - the store's record layout: every key name, every script, the order of
 * their arguments and the shape of their replies, in one place. It builds commands
 * and reads replies into typed structs, and sends nothing: the worker's asynchronous
 * client and the shredder's blocking one both speak through it, and no other file
 * names a key or counts its way through a reply. */
#ifndef RZ_RECORD_H
#define RZ_RECORD_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "secret.h"
#include "store_url.h"

enum {
    RECORD_SCRIPT_CREATE,
    RECORD_SCRIPT_TAKE_USE,
    RECORD_SCRIPT_PREVIEW,
    RECORD_SCRIPT_STATUS,
    RECORD_SCRIPT_RATE,
    RECORD_SCRIPT_GATE_ENTER,
    RECORD_SCRIPT_RENEW,
    RECORD_SCRIPT_REMOVE_IF_DUE,
    RECORD_SCRIPT_BURN,
    RECORD_SCRIPT_SECRET,
    RECORD_SCRIPT_RESERVE,
    RECORD_SCRIPT_RELEASE,
    RECORD_SCRIPT_LEASE,
    RECORD_SCRIPT_COUNT
};
/* Script bodies, for SCRIPT LOAD / EVALSHA or EVAL. */
extern const char *const record_scripts[RECORD_SCRIPT_COUNT];

#define RECORD_RENEW_MAX 16 /* upload slots renewed by one command */
#define RECORD_ARGS_MAX (2 * RECORD_RENEW_MAX + 1)
#define RECORD_META_MAX 1024 /* bytes of a sealed metadata blob */
#define RECORD_DUE_MAX 256   /* members of the expiry index read at once */

/* One command, ready for either client: a script (sent as EVALSHA or EVAL, then
 * nkeys, then argv) or a plain command (argv as is). argv points into the struct
 * itself, so send it (or copy it) before it goes. */
typedef struct {
    int script; /* RECORD_SCRIPT_*, or -1 for a plain command */
    int nkeys;
    int argc;
    const char *argv[RECORD_ARGS_MAX];
    size_t len[RECORD_ARGS_MAX];
    size_t used;
    char buf[4096];
} record_cmd;

/* What a call found. Each reader below says which of these it gives. */
typedef enum {
    RECORD_UNAVAILABLE, /* no reply (store down, timed out) or not one of ours */
    RECORD_OK,          /* done: a use taken, a preview marked, an upload recorded, a gate passed;
                         * status: active; look-up: a live record */
    RECORD_BLOCKED,     /* the client is blocked for retry_after seconds */
    RECORD_UNKNOWN,     /* no such record (a keyed request counts as a failure) */
    RECORD_EXPIRED,
    RECORD_BURNED,    /* its last use is taken */
    RECORD_GONE,      /* preview: expired or burned */
    RECORD_PREVIEWED, /* preview: looked at already */
    RECORD_TAKEN,     /* create: the id is live already */
    RECORD_LIMITED,   /* gate: over the upload rate */
    RECORD_BUSY,      /* gate: too many uploads of this client in progress */
    RECORD_FORBIDDEN, /* burn: the delete token does not match (counted as a failure) */
    RECORD_STALE,     /* create and keyed: the store's secret is not the one the id was
                       * derived under (the store was emptied or replaced): nothing done */
} record_outcome;

/* The checks that run ahead of every keyed request: the secret, then the brute-force
 * guard. */
typedef struct {
    uint32_t fail_limit;      /* unknown keys that block the client */
    uint32_t block_s;         /* how long the block lasts */
    uint32_t fail_memory_s;   /* how long an unknown key is counted */
    uint32_t budget;          /* unknown keys of all clients together per window ... */
    uint32_t budget_period_s; /* ... of this many seconds */
    const char *secret_fp;    /* the id was derived under the secret of this fingerprint
                               * (secret.h); "" when the secret is pinned, not in the store */
} record_guard;

/* A keyed request's answer: take a use, preview, status, burn. */
typedef struct {
    record_outcome outcome;
    long long retry_after; /* BLOCKED */
    long long window_fails; /* UNKNOWN: unknown keys of all clients in the budget's window */
    long long uses_left;   /* OK: after this request */
    long long expires;     /* OK, and EXPIRED or BURNED of status: unix seconds */
    long long created;     /* OK of take and preview */
    uint64_t size;         /* OK of take and preview: plaintext bytes */
    int sealed;            /* OK of take and preview: salt and meta are well-formed */
    uint8_t salt[CRYPT_SALT_LEN];
    uint8_t meta[RECORD_META_MAX];
    size_t meta_len;
} record_access;

/* What the reads of a status without the script found (record_cmd_status_peek). */
#define RECORD_PEEK_CMDS 3
typedef struct {
    size_t n;             /* commands built */
    size_t read;          /* replies read */
    int64_t now;
    char secret_fp[SECRET_FP_LEN + 1];
    int unavailable;      /* a reply missing or not understood */
    int stale;            /* the store has no secret (it was emptied) */
    long long block_ttl;  /* > 0: blocked that long */
    int found;            /* 1 the record, read; 0 none; -1 one not as the scripts write it */
    long long uses, expires;
    int burned;
} record_peek;

/* A new upload's record. */
typedef struct {
    const char *id;
    const char *client; /* its upload slot (below) is given back with the record */
    const char *slot;
    int uses;
    int64_t created; /* unix seconds */
    int64_t expires; /* unix seconds; the record lives until then */
    uint64_t size;
    const uint8_t *salt; /* CRYPT_SALT_LEN bytes */
    const uint8_t *meta;
    size_t meta_len;
    const char *delete_digest; /* crypt_token_digest of its delete token */
    const char *secret_fp; /* as record_guard's: the secret id and file were made under */
} record_new;

/* The upload gate: UPLOAD_RATE_LIMIT, and a slot per upload in progress, at most
 * max_slots per client. A slot is leased: it frees itself lease_ms after it was taken
 * or last renewed, so one whose upload died with its worker is gone within the lease. */
typedef struct {
    uint32_t rate_count;
    uint32_t rate_period_s;
    uint32_t max_slots;
    uint32_t lease_ms;
} record_gate;

/* One slot to renew: its client and its name. */
typedef struct {
    const char *client;
    const char *slot;
} record_slot;

/* One member of the expiry index, pointing into the reply the list holds. */
typedef struct {
    const char *member; /* NULL: not even a string */
    size_t len;
    int is_id; /* a NUL-terminated id; else nothing of ours wrote it */
} record_member;

typedef struct {
    record_member m[RECORD_DUE_MAX];
    size_t n;
    redisReply *reply; /* owned; record_due_free releases it */
} record_due;

/* ---- commands; each returns 0, or -1 when an argument does not fit ---- */

int record_cmd_create(record_cmd *cmd, const record_new *n);
/* Guard, then the keyed operation on id; now in unix seconds. */
int record_cmd_take_use(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now);
int record_cmd_preview(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now);
int record_cmd_status(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now);
/* Status without the script, for a live key: the script's reads (the client's block,
 * the record) as plain commands to send in one round trip; record_read_peek and
 * record_peek_answer then answer as the script does whenever it writes nothing. With
 * a fingerprint in g they ask whether the store still has a secret, not which one:
 * reading it would bring it out of the worker's locked page (secret.h) on every
 * request. A store emptied or replaced since the id was derived holds no record under
 * it, so the read misses and the script, which compares the secret, answers; only a
 * secret overwritten over the records made under it goes unseen here (the next
 * script sees it). Commands into cmds[0 .. p->n). */
int record_cmd_status_peek(record_cmd cmds[RECORD_PEEK_CMDS], record_peek *p, const char *id, const char *client,
                           const record_guard *g, int64_t now);
/* Burn id at once, as its last use does, if digest is its delete token's digest; a
 * digest that is not counts a failure like an unknown key. */
int record_cmd_burn(record_cmd *cmd, const char *id, const char *client, const record_guard *g, int64_t now,
                    const char *digest);
/* Count one request of kind ("upload", "health") in client's fixed window of period_s. */
int record_cmd_rate(record_cmd *cmd, const char *kind, const char *client, uint32_t period_s, int64_t now);
/* Enter the upload gate, asking for the slot named slot (unique to this upload); after
 * RECORD_OK the client holds it until gate_leave or create gives it back, or its lease
 * runs out. Leases are timed by the store's clock, one clock for every node. */
int record_cmd_gate_enter(record_cmd *cmd, const char *client, const char *slot, const record_gate *g, int64_t now);
/* Give a slot back; giving back one already gone is harmless. */
int record_cmd_gate_leave(record_cmd *cmd, const char *client, const char *slot);
/* Extend the lease of n (at most RECORD_RENEW_MAX) slots by lease_ms from now; a slot
 * already gone stays gone. */
int record_cmd_renew(record_cmd *cmd, const record_slot *slots, size_t n, uint32_t lease_ms);
/* Expiry index: members due by due (unix seconds), skipping the first skip. */
int record_cmd_due(record_cmd *cmd, double due, unsigned skip, unsigned max);
int record_cmd_expiry(record_cmd *cmd, const char *id);
/* Remove member from the index while it is still due: a new upload under the same id
 * puts it back with a later expiry, and that entry stays. */
int record_cmd_remove_if_due(record_cmd *cmd, const char *member, size_t len, double due);
/* The orphan sweep's question: is there a live record for id? */
int record_cmd_lookup(record_cmd *cmd, const char *id);
/* Object storage: reserve id for token for ttl_ms, to write its object
 * (RECORD_RESERVE_UPLOAD: only while no record has the id) or delete it
 * (RECORD_RESERVE_DELETE: only while its record is gone, burned or expired at now,
 * unix seconds); release gives it back if token still holds it. */
enum { RECORD_RESERVE_UPLOAD, RECORD_RESERVE_DELETE };
#define RECORD_TOKEN_MAX 64
int record_cmd_reserve(record_cmd *cmd, const char *id, const char *token, uint32_t ttl_ms, int purpose, int64_t now);
int record_cmd_release(record_cmd *cmd, const char *id, const char *token);
/* The store's server secret, if it has one. */
int record_cmd_secret_get(record_cmd *cmd);
/* candidate (CRYPT_SECRET_LEN bytes) becomes the store's secret unless there is one
 * already; the reply is the one in force. The command holds the candidate: wipe it
 * (record_cmd_wipe) once sent. */
int record_cmd_secret_create(record_cmd *cmd, const uint8_t *candidate);
void record_cmd_wipe(record_cmd *cmd);
/* The shredders' sweep lease over the storage named scope: holder takes it, or renews
 * it when it holds it already, for ms; ms 0 gives it back if holder holds it. */
int record_cmd_lease(record_cmd *cmd, const char *scope, const char *holder, uint32_t ms);

/* ---- Sentinel, and the primary it names ---- */

/* Where the sentinel asked thinks master's primary is. */
int record_cmd_sentinel_primary(record_cmd *cmd, const char *master);
/* Hear of failovers: +switch-master on a sentinel's pub/sub. */
int record_cmd_sentinel_subscribe(record_cmd *cmd);
/* Is the server asked a primary (a replica refuses writes), and with how many replicas? */
int record_cmd_role(record_cmd *cmd);
/* Wait at most ms for one replica to have every write made so far on this connection. */
int record_cmd_wait(record_cmd *cmd, uint32_t ms);

/* ---- replies; r is NULL when there was none ---- */

/* take: OK EXPIRED BURNED; preview: OK GONE PREVIEWED; status: OK EXPIRED BURNED;
 * burn: OK (burned now) EXPIRED BURNED (already) FORBIDDEN; all: STALE UNKNOWN BLOCKED
 * UNAVAILABLE. An outcome no script gives reads as UNKNOWN. */
void record_read_access(const redisReply *r, record_access *out);
/* The reply to cmds[p->read] of record_cmd_status_peek (NULL when there was none). */
void record_read_peek(record_peek *p, const redisReply *r);
/* Once every reply is read: 1 with out as record_read_access reads the status script's
 * answer (STALE, BLOCKED, OK, EXPIRED, BURNED or UNAVAILABLE); 0 when only the script
 * can answer: there is no record, so it counts a failure, atomically. */
int record_peek_answer(const record_peek *p, record_access *out);
/* OK TAKEN STALE UNAVAILABLE */
record_outcome record_read_create(const redisReply *r);
/* Requests counted in the window, or -1. */
long long record_read_rate(const redisReply *r);
/* OK LIMITED BUSY UNAVAILABLE; for BUSY, *free_in_ms (may be NULL) is how long until
 * the client's earliest slot runs out of lease, if its upload does not end before. */
record_outcome record_read_gate(const redisReply *r, long long *free_in_ms);
/* Takes r (freed by record_due_free). */
void record_read_due(redisReply *r, record_due *out);
void record_due_free(record_due *d);
/* The expiry (unix seconds) the index holds for an id, or -1 when it holds none. */
double record_read_expiry(const redisReply *r);
/* OK, BURNED, UNKNOWN (no record), or UNAVAILABLE when the reply is not understood. */
record_outcome record_read_lookup(const redisReply *r);
/* reserve: OK (held now), TAKEN (a record or another reservation has the id), UNAVAILABLE */
record_outcome record_read_reserve(const redisReply *r);
/* The secret of either command above into out: 1; 0 when the store has none; -1 when
 * the reply is neither nothing nor exactly CRYPT_SECRET_LEN bytes (out untouched). */
int record_read_secret(const redisReply *r, uint8_t out[CRYPT_SECRET_LEN]);
/* Lease: 1 held by the asker now, 0 held by another (or given back), -1 not understood. */
int record_read_lease(const redisReply *r);
/* The primary's address into out: 0, or -1 (the sentinel knows no such master). */
int record_read_sentinel_primary(const redisReply *r, store_url_host *out);
/* A pub/sub message announcing that master's primary is now out: 1, else 0. */
int record_read_switch_master(const redisReply *r, const char *master, store_url_host *out);
/* ROLE: the replicas a primary has, or -1 for anything but a primary. */
int record_read_role(const redisReply *r);
/* WAIT: the replicas that have every write before it, or -1. */
int record_read_wait(const redisReply *r);
/* An error reply saying the server is a replica now (the primary moved): 1, else 0. */
int record_read_readonly(const redisReply *r);

#endif
