/* cfg.c - the settings table and the one way into it: defaults, YAML file, environment
 * and command line all set a value through set_value(), then cfg_validate cross-checks.
 *
 * One row per setting gives its name, kind, field, bounds and default text; a kind's
 * text is parsed by value.c (mime.c, addr.c for their entries), so a value is checked the
 * same way wherever it comes from, and a bad one is reported here as
 * "NAME=value: expected ...". The YAML file's shape is yamlmap.c's. */
#include "cfg.h"
#include "mime.h"
#include "s3.h"
#include "paths.h"
#include "store_url.h"
#include "util.h"
#include "value.h"
#include "words.h"
#include "yamlmap.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef RZ_PREFIX
#define RZ_PREFIX "/usr/local"
#endif

#define WORDLIST_LOCAL "wordlists/eff_large_wordlist.txt"
#define WORDLIST_INSTALLED RZ_PREFIX "/share/raven-zero/eff_large_wordlist.txt"

#define TIB (UINT64_C(1) << 40)
#define GIB (UINT64_C(1) << 30)
#define PIB (TIB * 1024)
#define RATE_MAX 1000000000u
#define SHOWN_MAX 160 /* bytes of a value echoed in an error; the rest becomes "..." */
#define MSG_MAX 1024

typedef enum {
    K_PATH,    /* char *: non-empty, no control characters */
    K_OPTPATH, /* char *: "" or a K_PATH */
    K_REDIS,   /* char *: a REDIS_URL (store_url.h) */
    K_SENTINELS, /* char *: "" or host[:port] entries (store_url.h) */
    K_NAME,    /* char *: a Sentinel master name */
    K_URL,     /* char *: "" or an http(s) URL, trailing slash removed */
    K_UINT,    /* uint32_t in [min, max] */
    K_BYTES,   /* uint64_t in [min, max]; optional K/M/G/T (binary) suffix */
    K_BYTES_AUTO, /* uint64_t: "auto" (0, worked out by a cfg_* function) or as K_BYTES */
    K_OPT_PATH, /* char *: "" (a default another setting gives) or as K_PATH */
    K_BOOL,    /* int 0/1 */
    K_LEVEL,   /* int LOG_DEBUG..LOG_ERROR */
    K_WORKERS, /* uint32_t: "auto" or [min, max] */
    K_RATE,    /* cfg_rate: count in [min, max] */
    K_MIMES,   /* cfg_str_list: mime.h patterns; [min, max] entries */
    K_LISTEN,  /* cfg_str_list: host:port, [v6]:port or :port */
    K_ORIGINS, /* cfg_str_list: "*" alone, or scheme://host[:port] */
    K_CIDRS,   /* addr_cidr_list */
    K_AGENTS,  /* cfg_str_list: parts of a User-Agent, lowercased */
    K_TEXT,    /* char *: "" or printable ASCII without spaces */
    K_SECRET,  /* char *: as K_TEXT, never shown in an error */
} kind;

typedef struct {
    const char *name;
    kind kind;
    size_t off;
    uint64_t min, max;
    const char *def; /* NULL: computed by default_text() */
} setting;

/* Link previewers and crawlers, as their User-Agent names them (README.md, "Link
 * previewers", says whose each is and where it is documented). Matched as
 * case-insensitive substrings, so each is a name no browser carries. */
#define PREVIEW_AGENTS_DEFAULT                                                                                         \
    "slackbot,slack-imgproxy,discordbot,telegrambot,whatsapp,facebookexternalhit,facebot,"                             \
    "meta-externalagent,meta-externalfetcher,twitterbot,linkedinbot,skypeuripreview,microsoftpreview,"                 \
    "redditbot,pinterest.com/bot,cardyb,mastodon,matrix-org/synapse,zulipurlpreview,embedly,iframely,"                 \
    "vkshare,applebot,googlebot,google-inspectiontool,googleother,google-pagerenderer,googlemessages,"                 \
    "google-read-aloud,feedfetcher-google,bingbot,bingpreview,slurp,duckduckbot,baiduspider,"                          \
    "yandex.com/bots,gptbot,chatgpt-user,oai-searchbot,claudebot,claude-user,perplexitybot,ccbot,"                     \
    "amazonbot,bytespider"

/* One list feeds both the table and cfg_names, so a new setting is one line here. */
#define SETTINGS(X)                                                                     \
    X(REDIS_URL, K_REDIS, redis_url, 0, 0, "redis://localhost:6379/0")                  \
    X(REDIS_SENTINELS, K_SENTINELS, redis_sentinels, 0, 0, "")                          \
    X(REDIS_SENTINEL_MASTER, K_NAME, redis_sentinel_master, 0, 0, "mymaster")           \
    X(REDIS_SENTINEL_PASSWORD, K_SECRET, redis_sentinel_password, 0, 0, "")            \
    X(STORAGE_PATH, K_PATH, storage_path, 0, 0, "./storage/uploads")                    \
    X(TEMP_PATH, K_PATH, temp_path, 0, 0, "./storage/temp")                             \
    X(MAX_FILE_SIZE, K_BYTES, max_file_size, 1, TIB, "10485760")                        \
    X(ALLOWED_MIME_TYPES, K_MIMES, allowed_mime_types, 0, 1024, "")                     \
    X(UPLOAD_RATE_LIMIT, K_RATE, upload_rate_limit, 1, RATE_MAX, "30/hour")             \
    X(HEALTH_RATE_LIMIT, K_RATE, health_rate_limit, 1, RATE_MAX, "1/second")            \
    X(DOWNLOAD_FAIL_LIMIT, K_UINT, download_fail_limit, 1, 1000000, "10")               \
    X(DOWNLOAD_BLOCK_WINDOW, K_UINT, download_block_window, 1, 604800, "1800")          \
    X(CLEANUP_INTERVAL_MINUTES, K_UINT, cleanup_interval_minutes, 1, 1440, "10")        \
    X(ORPHAN_AGE_MINUTES, K_UINT, orphan_age_minutes, 1, 10080, "15")                   \
    X(SECURE_SHRED_PASSES, K_UINT, secure_shred_passes, 1, 35, "1")                     \
    X(DICEWARE_WORDLIST_PATH, K_PATH, diceware_wordlist_path, 0, 0, NULL)               \
    X(KEY_WORDS, K_UINT, key_words, WORDS_MIN_WORDS, WORDS_MAX_WORDS, "3")              \
    X(LISTEN, K_LISTEN, listen, 1, CFG_LISTEN_MAX, "0.0.0.0:8000")                      \
    X(WORKERS, K_WORKERS, workers, 1, CFG_WORKERS_MAX, "auto")                          \
    X(TRUSTED_PROXIES, K_CIDRS, trusted_proxies, 0, 1024, "127.0.0.1/32,::1/128")       \
    X(CORS_ORIGINS, K_ORIGINS, cors_origins, 0, 1024, "*")                              \
    X(PUBLIC_URL, K_URL, public_url, 0, 0, "")                                          \
    X(LOG_PATH, K_PATH, log_path, 0, 0, "./logs/raven_zero.log")                        \
    X(LOG_MAX_BYTES, K_BYTES, log_max_bytes, 4096, TIB, "10485760")                     \
    X(LOG_BACKUPS, K_UINT, log_backups, 0, 100, "5")                                    \
    X(LOG_STDOUT, K_BOOL, log_stdout, 0, 1, "false")                                    \
    X(LOG_LEVEL, K_LEVEL, log_level, LOG_DEBUG, LOG_ERROR, "info")                      \
    X(SECRET_PATH, K_OPTPATH, secret_path, 0, 0, "")                                     \
    X(STORAGE_URL, K_TEXT, storage_url, 0, 0, "")                                       \
    X(S3_ENDPOINT, K_URL, s3_endpoint, 0, 0, "")                                        \
    X(S3_REGION, K_TEXT, s3_region, 0, 0, "us-east-1")                                  \
    X(S3_ACCESS_KEY, K_TEXT, s3_access_key, 0, 0, "")                                   \
    X(S3_SECRET_KEY, K_SECRET, s3_secret_key, 0, 0, "")                                 \
    X(S3_CREDENTIALS_FILE, K_OPTPATH, s3_credentials_file, 0, 0, "")                    \
    X(S3_PART_SIZE, K_BYTES, s3_part_size, S3_PART_MIN, S3_PART_MAX, "8388608")          \
    X(S3_DELETE_DELAY, K_UINT, s3_delete_delay, 1, 86400, "300")                        \
    X(FSYNC_UPLOADS, K_BOOL, fsync_uploads, 0, 1, "false")                              \
    X(METRICS_ALLOW, K_CIDRS, metrics_allow, 0, 1024, "127.0.0.0/8,::1/128")            \
    X(IPV6_PREFIX, K_UINT, ipv6_prefix, 32, 128, "64")                                  \
    X(GLOBAL_FAIL_LIMIT, K_RATE, global_fail_limit, 1, RATE_MAX, "600/minute")          \
    X(PREVIEW_AGENTS, K_AGENTS, preview_agents, 0, 1024, PREVIEW_AGENTS_DEFAULT)       \
    X(METRICS_LISTEN, K_LISTEN, metrics_listen, 0, CFG_LISTEN_MAX, "")                  \
    X(MAX_CONNECTIONS, K_UINT, max_connections, 1, 1000000, "1024")                     \
    X(MAX_CONNECTIONS_PER_CLIENT, K_UINT, max_connections_per_client, 1, 1000000, "64") \
    X(HEAD_TIMEOUT, K_UINT, head_timeout, 1, 3600, "10")                                \
    X(MAX_UPLOADS_PER_CLIENT, K_UINT, max_uploads_per_client, 1, 1000, "4")             \
    X(IDLE_TIMEOUT, K_UINT, idle_timeout, 1, 3600, "10")                                \
    X(BODY_TIMEOUT, K_UINT, body_timeout, 1, 3600, "60")                                \
    X(SHUTDOWN_TIMEOUT, K_UINT, shutdown_timeout, 1, 3600, "30")                        \
    X(MAX_REQUEST_LINE, K_UINT, max_request_line, 256, 65536, "8192")                   \
    X(MAX_HEADER_BYTES, K_UINT, max_header_bytes, 1024, 262144, "32768")                \
    X(MAX_HEADER_COUNT, K_UINT, max_header_count, 1, 100, "64")                        \
    X(BODY_MEMORY_MAX, K_BYTES, body_memory_max, 65536, GIB, "1048576")                 \
    X(MAX_BODY_BYTES_PER_CLIENT, K_BYTES_AUTO, max_body_bytes_per_client, 65536, PIB, "auto") \
    X(MAX_BODY_BYTES_PER_WORKER, K_BYTES_AUTO, max_body_bytes_per_worker, 65536, PIB, "auto") \
    X(SPILL_PATH, K_OPT_PATH, spill_path, 0, 0, "")                                     \
    X(SPILL_MAX_BYTES, K_BYTES_AUTO, spill_max_bytes, 65536, PIB, "auto")               \
    X(STORE_MAX_PENDING, K_UINT, store_max_pending, 16, 1000000, "1024")                \
    X(HTTP2, K_BOOL, http2, 0, 1, "true")

#define ROW(n, k, f, lo, hi, d) {#n, k, offsetof(cfg, f), lo, hi, d},
#define NAME(n, k, f, lo, hi, d) #n,
static const setting settings[] = {SETTINGS(ROW)};
const char *const cfg_names[] = {SETTINGS(NAME) NULL};
#undef ROW
#undef NAME

enum { NSETTINGS = sizeof settings / sizeof settings[0] };

/* What each kind accepts, for the error line. */
static const char *expectation(const setting *s, char *buf, size_t cap)
{
    switch (s->kind) {
    case K_PATH:
        return "expected a non-empty path without control characters";
    case K_OPTPATH:
        return "expected empty or a path without control characters";
    case K_REDIS:
        return "expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N] (db 0 to 15)";
    case K_SENTINELS:
        return "expected empty or sentinels as host[:port], comma-separated (port 26379 unless given)";
    case K_NAME:
        return "expected a name of printable ASCII without spaces, at most 63 characters";
    case K_URL:
        return "expected empty or an http:// or https:// URL without query or fragment";
    case K_UINT:
        snprintf(buf, cap, "expected an integer from %llu to %llu", (unsigned long long)s->min,
                 (unsigned long long)s->max);
        return buf;
    case K_BYTES:
        snprintf(buf, cap, "expected a byte count (%llu to %llu)", (unsigned long long)s->min,
                 (unsigned long long)s->max);
        return buf;
    case K_BYTES_AUTO:
        snprintf(buf, cap, "expected auto or a byte count (%llu to %llu)", (unsigned long long)s->min,
                 (unsigned long long)s->max);
        return buf;
    case K_OPT_PATH:
        return "expected empty or a path without control characters";
    case K_BOOL:
        return "expected true or false (or 1/0, yes/no, on/off)";
    case K_LEVEL:
        return "expected debug, info, warning or error";
    case K_WORKERS:
        snprintf(buf, cap, "expected auto or an integer from %llu to %llu",
                 (unsigned long long)s->min, (unsigned long long)s->max);
        return buf;
    case K_RATE:
        snprintf(buf, cap, "expected N/second, N/minute, N/hour or N/day with N from %llu to %llu",
                 (unsigned long long)s->min, (unsigned long long)s->max);
        return buf;
    case K_MIMES:
        return "expected MIME types like image/png or image/*, comma-separated or a JSON list";
    case K_LISTEN:
        return "expected host:port, [IPv6]:port or :port (port 1 to 65535), comma-separated";
    case K_ORIGINS:
        return "expected * or origins like https://example.com[:port], comma-separated";
    case K_CIDRS:
        return "expected addresses or networks like 10.0.0.0/8 or ::1/128, comma-separated";
    case K_TEXT:
    case K_SECRET:
        return "expected empty or printable ASCII without spaces";
    case K_AGENTS:
        return "expected parts of a User-Agent (printable ASCII, at most 128 characters each), comma-separated or a "
               "JSON list";
    }
    return "expected a valid value";
}

/* ---- error lines ---- */

/* Copy v into out with control characters escaped and the length capped, so an error
 * stays one readable line whatever the value holds. */
static void show(char *out, size_t cap, const char *v)
{
    size_t o = 0, i;
    for (i = 0; v[i] != '\0' && i < SHOWN_MAX && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (ch == '\r')
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (ch == '\t')
            o += (size_t)snprintf(out + o, cap - o, "\\t");
        else if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    if (v[i] != '\0' && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* A Redis password must not end up in a log: the user part shows as three stars. */
static void redact_redis(char *out, size_t cap, const char *v)
{
    if (strncmp(v, "redis://", 8) == 0) {
        const char *auth = v + 8;
        size_t alen = strcspn(auth, "/");
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
        if (at != NULL) {
            snprintf(out, cap, "redis://***@%s", at + 1);
            return;
        }
    }
    snprintf(out, cap, "%s", v);
}

/* "NAME=value: expected ...", plus the bad entry of a list when there is one. */
static int fail(const setting *s, const char *value, const char *entry, char *err, size_t errlen)
{
    char raw[SHOWN_MAX + 64], shown[SHOWN_MAX * 4 + 8], bad[SHOWN_MAX * 4 + 8], buf[128];
    if (s->kind == K_REDIS) {
        redact_redis(raw, sizeof raw, value);
        show(shown, sizeof shown, raw);
    } else if (s->kind == K_SECRET) {
        snprintf(shown, sizeof shown, "***");
    } else {
        show(shown, sizeof shown, value);
    }
    if (entry != NULL) {
        show(bad, sizeof bad, entry);
        util_errf(err, errlen, "%s=%s: %s (bad entry \"%s\")", s->name, shown,
                expectation(s, buf, sizeof buf), bad);
    } else {
        util_errf(err, errlen, "%s=%s: %s", s->name, shown, expectation(s, buf, sizeof buf));
    }
    return -1;
}

/* ---- storing ---- */

static void *field(cfg *c, const setting *s)
{
    return (char *)c + s->off;
}

static const void *cfield(const cfg *c, const setting *s)
{
    return (const char *)c + s->off;
}

static void str_list_free(cfg_str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void free_field(cfg *c, const setting *s)
{
    void *f = field(c, s);
    switch (s->kind) {
    case K_PATH:
    case K_OPTPATH:
    case K_REDIS:
    case K_SENTINELS:
    case K_NAME:
    case K_URL:
    case K_OPT_PATH:
    case K_TEXT:
    case K_SECRET:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case K_MIMES:
    case K_LISTEN:
    case K_ORIGINS:
    case K_AGENTS:
        str_list_free(f);
        break;
    case K_CIDRS:
        free(((addr_cidr_list *)f)->items);
        ((addr_cidr_list *)f)->items = NULL;
        ((addr_cidr_list *)f)->n = 0;
        break;
    default:
        break;
    }
}

static int no_memory(const setting *s, char *err, size_t errlen)
{
    util_errf(err, errlen, "%s: out of memory", s->name);
    return -1;
}

/* One of n entries of a list setting, checked and copied as value.h's parsers do. */
static int parse_entry(const setting *s, const char *entry, size_t n, char **out)
{
    switch (s->kind) {
    case K_MIMES:
        return mime_pattern(entry, out);
    case K_LISTEN:
        return value_listen(entry, out);
    case K_AGENTS:
        return value_agent(entry, out);
    default:
        if (strcmp(entry, "*") != 0)
            return value_origin(entry, out);
        if (n != 1)
            return -1; /* "*" allows every origin: listing others beside it is a mistake */
        *out = strdup(entry);
        return 0;
    }
}

/* Check every entry and replace the list setting; shown is the value for errors. */
static int set_list(cfg *c, const setting *s, char **items, size_t n, const char *shown,
                    char *err, size_t errlen)
{
    cfg_str_list sl = {NULL, 0};
    addr_cidr_list cl = {NULL, 0};
    if (n < s->min || n > s->max)
        return fail(s, shown, NULL, err, errlen);
    if (s->kind == K_CIDRS) {
        if (n > 0 && (cl.items = calloc(n, sizeof *cl.items)) == NULL)
            return no_memory(s, err, errlen);
        for (; cl.n < n; cl.n++) {
            if (addr_parse_cidr(items[cl.n], &cl.items[cl.n]) != 0) {
                free(cl.items);
                return fail(s, shown, items[cl.n], err, errlen);
            }
        }
        free_field(c, s);
        *(addr_cidr_list *)field(c, s) = cl;
        return 0;
    }
    if (n > 0 && (sl.items = calloc(n, sizeof *sl.items)) == NULL)
        return no_memory(s, err, errlen);
    for (; sl.n < n; sl.n++) {
        const char *it = items[sl.n];
        char *v = NULL;
        int rc = parse_entry(s, it, n, &v);
        if (rc != 0 || v == NULL) {
            str_list_free(&sl);
            return rc != 0 ? fail(s, shown, it, err, errlen) : no_memory(s, err, errlen);
        }
        sl.items[sl.n] = v;
    }
    free_field(c, s);
    *(cfg_str_list *)field(c, s) = sl;
    return 0;
}

static int set_list_text(cfg *c, const setting *s, const char *v, char *err, size_t errlen)
{
    char **items;
    size_t n;
    int rc = value_list(v, &items, &n);
    if (rc == -2)
        return no_memory(s, err, errlen);
    if (rc != 0)
        return fail(s, v, NULL, err, errlen);
    rc = set_list(c, s, items, n, v, err, errlen);
    value_list_free(items, n);
    return rc;
}

static int set_string(cfg *c, const setting *s, char *owned, char *err, size_t errlen)
{
    if (owned == NULL)
        return no_memory(s, err, errlen);
    free_field(c, s);
    *(char **)field(c, s) = owned;
    return 0;
}

static uint32_t cores(uint64_t max)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return (uint64_t)n > max ? (uint32_t)max : (uint32_t)n;
}

/* Parse the trimmed value v for setting s; on success the old value is freed. */
static int set_value(cfg *c, const setting *s, const char *v, char *err, size_t errlen)
{
    void *f = field(c, s);
    uint64_t u;
    int b;
    cfg_rate r;
    char *str = NULL;

    switch (s->kind) {
    case K_PATH:
    case K_OPTPATH:
        if ((s->kind == K_PATH || v[0] != '\0') && value_path(v) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_REDIS:
        if (value_redis_url(v) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_SENTINELS:
        if (value_sentinels(v) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_NAME:
        if (value_sentinel_master(v) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_URL:
        if (value_public_url(v, &str) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, str, err, errlen);
    case K_UINT:
        if (value_uint(v, s->min, s->max, &u) != 0)
            return fail(s, v, NULL, err, errlen);
        *(uint32_t *)f = (uint32_t)u;
        return 0;
    case K_BYTES:
        if (value_bytes(v, s->min, s->max, &u) != 0)
            return fail(s, v, NULL, err, errlen);
        *(uint64_t *)f = u;
        return 0;
    case K_BYTES_AUTO:
        if (strcasecmp(v, "auto") == 0)
            u = 0;
        else if (value_bytes(v, s->min, s->max, &u) != 0)
            return fail(s, v, NULL, err, errlen);
        *(uint64_t *)f = u;
        return 0;
    case K_OPT_PATH:
        if (v[0] != '\0' && value_path(v) != 0)
            return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_TEXT:
    case K_SECRET:
        for (const char *p = v; *p != '\0'; p++)
            if (*p <= 0x20 || *p >= 0x7f)
                return fail(s, v, NULL, err, errlen);
        return set_string(c, s, strdup(v), err, errlen);
    case K_BOOL:
        if (value_bool(v, &b) != 0)
            return fail(s, v, NULL, err, errlen);
        *(int *)f = b;
        return 0;
    case K_LEVEL:
        if (value_level(v, &b) != 0)
            return fail(s, v, NULL, err, errlen);
        *(int *)f = b;
        return 0;
    case K_WORKERS:
        if (strcasecmp(v, "auto") == 0)
            u = cores(s->max);
        else if (value_uint(v, s->min, s->max, &u) != 0)
            return fail(s, v, NULL, err, errlen);
        *(uint32_t *)f = (uint32_t)u;
        return 0;
    case K_RATE:
        if (value_rate(v, &r.count, &r.period_s) != 0 || r.count < s->min || r.count > s->max)
            return fail(s, v, NULL, err, errlen);
        *(cfg_rate *)f = r;
        return 0;
    case K_MIMES:
    case K_LISTEN:
    case K_ORIGINS:
    case K_CIDRS:
    case K_AGENTS:
        return set_list_text(c, s, v, err, errlen);
    }
    return fail(s, v, NULL, err, errlen);
}

static const setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcasecmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static int unknown(const char *name, char *err, size_t errlen)
{
    char shown[SHOWN_MAX * 4 + 8];
    show(shown, sizeof shown, name);
    util_errf(err, errlen, "unknown setting \"%s\"", shown);
    return -1;
}

static int set_text(cfg *c, const setting *s, const char *value, char *err, size_t errlen)
{
    char *v = value_trim(value, strlen(value));
    if (v == NULL)
        return no_memory(s, err, errlen);
    int rc = set_value(c, s, v, err, errlen);
    free(v);
    return rc;
}

/* ---- public: set, init, free ---- */

int cfg_set(cfg *c, const char *name, const char *value, char *err, size_t errlen)
{
    const setting *s = find(name != NULL ? name : "");
    if (s == NULL)
        return unknown(name != NULL ? name : "", err, errlen);
    return set_text(c, s, value != NULL ? value : "", err, errlen);
}

/* The shipped word list when run from a source tree, else the installed one. */
static const char *default_text(const setting *s)
{
    if (s->def != NULL)
        return s->def;
    return access(WORDLIST_LOCAL, R_OK) == 0 ? WORDLIST_LOCAL : WORDLIST_INSTALLED;
}

void cfg_init(cfg *c)
{
    char err[MSG_MAX];
    memset(c, 0, sizeof *c);
    /* The defaults pass their own parsers (the unit tests check it); only a failed
     * allocation can stop one, and cfg_validate then reports the unset value. */
    for (size_t i = 0; i < NSETTINGS; i++)
        (void)set_text(c, &settings[i], default_text(&settings[i]), err, sizeof err);
}

void cfg_free(cfg *c)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        free_field(c, &settings[i]);
    memset(c, 0, sizeof *c);
}

/* ---- environment ---- */

int cfg_load_env(cfg *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].name);
        if (v != NULL && set_text(c, &settings[i], v, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* ---- YAML file ---- */

typedef struct {
    cfg *c;
    const setting *s;       /* the setting being read */
    size_t seen[NSETTINGS]; /* line each setting was given on, 0 = not yet */
} yaml_load;

static bool is_list(const setting *s)
{
    return s->kind == K_MIMES || s->kind == K_LISTEN || s->kind == K_ORIGINS || s->kind == K_CIDRS ||
           s->kind == K_AGENTS;
}

static const char *on_yaml_key(void *ctx, const char *key, size_t line, char *err, size_t errlen)
{
    yaml_load *y = ctx;
    y->s = find(key);
    if (y->s == NULL) {
        unknown(key, err, errlen);
        return NULL;
    }
    size_t *seen = &y->seen[y->s - settings];
    if (*seen != 0) {
        util_errf(err, errlen, "%s is set twice (first on line %zu)", y->s->name, *seen);
        return NULL;
    }
    *seen = line;
    return y->s->name;
}

/* A YAML list goes in as its items, trimmed, and shows in errors as "[a, b]". */
static int on_yaml_value(void *ctx, const char *const *items, size_t n, bool list, char *err, size_t errlen)
{
    yaml_load *y = ctx;
    if (!list)
        return set_text(y->c, y->s, items[0], err, errlen);
    if (!is_list(y->s)) {
        util_errf(err, errlen, "%s: expected a single value, not a list", y->s->name);
        return -1;
    }
    char **kept = n > 0 ? calloc(n, sizeof *kept) : NULL;
    char shown[MSG_MAX] = "[";
    size_t nkept = 0, used = 1;
    int rc = -1;
    if (n > 0 && kept == NULL)
        return no_memory(y->s, err, errlen);
    for (size_t i = 0; i < n; i++) {
        char *t = value_trim(items[i], strlen(items[i]));
        if (t == NULL) {
            rc = no_memory(y->s, err, errlen);
            goto out;
        }
        if (t[0] == '\0') {
            free(t);
            continue;
        }
        if (used < sizeof shown)
            used += (size_t)snprintf(shown + used, sizeof shown - used, "%s%s", nkept > 0 ? ", " : "", t);
        kept[nkept++] = t;
    }
    if (used < sizeof shown)
        snprintf(shown + used, sizeof shown - used, "]");
    rc = set_list(y->c, y->s, kept, nkept, shown, err, errlen);
out:
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    free(kept);
    return rc;
}

int cfg_load_yaml(cfg *c, const char *path, char *err, size_t errlen)
{
    static const yamlmap_callbacks cb = {on_yaml_key, on_yaml_value};
    yaml_load y = {.c = c};
    return yamlmap_read(path, &cb, &y, err, errlen);
}

/* ---- cross-checks ---- */

static int in_range(const cfg *c, const setting *s)
{
    const void *f = cfield(c, s);
    switch (s->kind) {
    case K_PATH:
    case K_REDIS:
    case K_NAME:
        return *(char *const *)f != NULL && (*(char *const *)f)[0] != '\0';
    case K_SENTINELS:
    case K_OPTPATH:
    case K_URL:
    case K_OPT_PATH:
    case K_TEXT:
    case K_SECRET:
        return *(char *const *)f != NULL;
    case K_UINT:
    case K_WORKERS:
        return *(const uint32_t *)f >= s->min && *(const uint32_t *)f <= s->max;
    case K_BYTES:
        return *(const uint64_t *)f >= s->min && *(const uint64_t *)f <= s->max;
    case K_BYTES_AUTO:
        return *(const uint64_t *)f == 0 || (*(const uint64_t *)f >= s->min && *(const uint64_t *)f <= s->max);
    case K_BOOL:
    case K_LEVEL:
        return *(const int *)f >= (int)s->min && *(const int *)f <= (int)s->max;
    case K_RATE:
        return ((const cfg_rate *)f)->count >= s->min && ((const cfg_rate *)f)->count <= s->max &&
               ((const cfg_rate *)f)->period_s > 0;
    case K_MIMES:
    case K_LISTEN:
    case K_ORIGINS:
    case K_AGENTS:
        return ((const cfg_str_list *)f)->n >= s->min && ((const cfg_str_list *)f)->n <= s->max;
    case K_CIDRS:
        return ((const addr_cidr_list *)f)->n >= s->min && ((const addr_cidr_list *)f)->n <= s->max;
    }
    return 0;
}

int cfg_validate(const cfg *c, char *err, size_t errlen)
{
    char a[SHOWN_MAX * 4 + 8], b[SHOWN_MAX * 4 + 8];
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!in_range(c, &settings[i])) {
            char buf[128];
            util_errf(err, errlen, "%s: not set or out of range; %s", settings[i].name,
                    expectation(&settings[i], buf, sizeof buf));
            return -1;
        }
    }
    if (s3_check(c, err, errlen) != 0)
        return -1;
    show(a, sizeof a, c->temp_path);
    show(b, sizeof b, c->storage_path);
    if (paths_within(c->storage_path, c->temp_path) || paths_within(c->temp_path, c->storage_path)) {
        util_errf(err, errlen,
                "TEMP_PATH=%s: expected a directory apart from STORAGE_PATH (%s), neither "
                "inside the other",
                a, b);
        return -1;
    }
    store_url u;
    if (store_url_parse(c->redis_url, &u) != 0 ||
        store_url_sentinels(c->redis_sentinels, c->redis_sentinel_master, c->redis_sentinel_password, &u) != 0) {
        util_errf(err, errlen, "REDIS_SENTINELS: expected a redis:// REDIS_URL (its user, password and db are the "
                               "primary's; a unix:// store cannot be found through sentinels) and a "
                               "REDIS_SENTINEL_PASSWORD of at most 255 characters");
        return -1;
    }
    /* One socket cannot be both: /metrics would be served where it must not be. */
    for (size_t i = 0; i < c->metrics_listen.n; i++)
        for (size_t j = 0; j < c->listen.n; j++)
            if (strcmp(c->metrics_listen.items[i], c->listen.items[j]) == 0) {
                show(a, sizeof a, c->metrics_listen.items[i]);
                util_errf(err, errlen, "METRICS_LISTEN=%s: expected addresses apart from LISTEN's", a);
                return -1;
            }
    static const struct {
        const char *name;
        size_t off;
    } kept[] = {{"SECRET_PATH", offsetof(cfg, secret_path)},
                {"LOG_PATH", offsetof(cfg, log_path)}};
    /* These directories (and the trash beside TEMP_PATH) are swept or emptied by the
     * shredder: a key or log kept there would be shredded. */
    char trash[PATHS_MAX];
    if (paths_trash_dir(c, trash, sizeof trash) != 0)
        trash[0] = '\0';
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const char *p = *(char *const *)((const char *)c + kept[i].off);
        if (p[0] == '\0')
            continue; /* SECRET_PATH unset: the secret lives in the store */
        if (paths_within(c->storage_path, p) || paths_within(c->temp_path, p) ||
            (trash[0] != '\0' && paths_within(trash, p))) {
            show(a, sizeof a, p);
            util_errf(err, errlen, "%s=%s: expected a path outside STORAGE_PATH, TEMP_PATH and the trash beside it",
                    kept[i].name, a);
            return -1;
        }
    }
    return 0;
}

/* ---- derived values ---- */

uint64_t cfg_body_max_client(const cfg *c)
{
    if (c->max_body_bytes_per_client != 0)
        return c->max_body_bytes_per_client;
    return (uint64_t)c->max_uploads_per_client * (c->max_file_size + CFG_BODY_SLACK);
}

uint64_t cfg_body_max_worker(const cfg *c)
{
    return c->max_body_bytes_per_worker != 0 ? c->max_body_bytes_per_worker : 8 * cfg_body_max_client(c);
}

uint64_t cfg_spill_max_worker(const cfg *c)
{
    if (c->spill_max_bytes == 0)
        return 2 * cfg_body_max_worker(c);
    return c->spill_max_bytes / (c->workers > 0 ? c->workers : 1);
}

const char *cfg_spill_path(const cfg *c)
{
    return c->spill_path != NULL && c->spill_path[0] != '\0' ? c->spill_path : c->temp_path;
}
