/* cfg.h - the one configuration of Raven Zero, shared by every process.
 *
 * Values are layered: built-in defaults < YAML file (-c) < environment < command line.
 * Every source goes through cfg_set(), so each setting is parsed and validated in one
 * place, and a bad value is reported as "NAME=value: what is allowed". */
#ifndef RZ_CFG_H
#define RZ_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* "N/second|minute|hour|day": count requests per period_s seconds. */
typedef struct {
    uint32_t count;
    uint32_t period_s;
} cfg_rate;

typedef struct {
    char **items;
    size_t n;
} cfg_str_list;

/* LISTEN may name this many addresses: the master and each worker keep one socket per
 * address in an array of this size. */
#define CFG_LISTEN_MAX 64
/* WORKERS may ask for this many: the master keeps a restart slot per worker. */
#define CFG_WORKERS_MAX 256

typedef struct cfg {
    /* the original service's names (docs/api.md) */
    char *redis_url;
    char *storage_path;
    char *temp_path;
    uint64_t max_file_size;
    cfg_str_list allowed_mime_types; /* mime.h patterns; empty = all */
    cfg_rate upload_rate_limit;
    cfg_rate health_rate_limit;
    uint32_t download_fail_limit;
    uint32_t download_block_window; /* seconds */
    uint32_t cleanup_interval_minutes;
    uint32_t orphan_age_minutes;
    uint32_t secure_shred_passes;
    char *diceware_wordlist_path;
    uint32_t key_words;        /* words in a new key (words.h); any count is looked up */

    /* this implementation */
    char *redis_sentinels;         /* "" = REDIS_URL is the store itself */
    char *redis_sentinel_master;
    char *redis_sentinel_password; /* "" = the sentinels ask for none */
    cfg_str_list listen;  /* "host:port", "[v6]:port" or ":port"; comma list */
    uint32_t workers;     /* resolved: "auto" becomes the number of cores */
    addr_cidr_list trusted_proxies;
    cfg_str_list cors_origins; /* ["*"] by default */
    char *public_url;          /* "" = derive from the request */
    char *log_path;
    uint64_t log_max_bytes;
    uint32_t log_backups;
    int log_stdout;            /* bool */
    int log_level;             /* LOG_DEBUG..LOG_ERROR from log.h */
    char *secret_path;         /* "" = the secret lives in the store (secret.h) */
    /* object storage (s3.h): STORAGE_URL "" keeps files in STORAGE_PATH */
    char *storage_url;         /* s3://bucket[/prefix] */
    char *s3_endpoint;         /* http(s)://host[:port] */
    char *s3_region;
    char *s3_access_key;
    char *s3_secret_key;       /* never logged */
    char *s3_credentials_file; /* "" = S3_ACCESS_KEY / S3_SECRET_KEY */
    uint64_t s3_part_size;     /* bytes per part of a multipart upload */
    uint32_t s3_delete_delay;  /* seconds a burned or expired object outlives its record */
    int fsync_uploads;         /* bool */
    addr_cidr_list metrics_allow;
    uint32_t ipv6_prefix;      /* an IPv6 client is its /ipv6_prefix network */
    cfg_rate global_fail_limit; /* unknown-key answers across all clients per window */
    cfg_str_list preview_agents; /* lowercase substrings of User-Agent: link previewers */
    cfg_str_list metrics_listen; /* sockets for /metrics alone; empty = on LISTEN's */

    /* resource bounds */
    uint32_t max_connections;       /* per worker */
    uint32_t max_connections_per_client; /* per worker; trusted proxies are not counted */
    uint32_t head_timeout;          /* seconds a connection may take to send a request head */
    uint32_t max_uploads_per_client;
    uint32_t idle_timeout;          /* seconds, keep-alive and header read */
    uint32_t body_timeout;          /* seconds, a request body must keep arriving */
    uint32_t shutdown_timeout;      /* seconds a graceful stop waits for downloads */
    uint32_t max_request_line;      /* bytes of the request target (414 beyond) */
    uint32_t max_header_bytes;      /* bytes of all header fields (431 beyond) */
    uint32_t max_header_count;      /* header fields (431 beyond; libh2o parses 100 at most) */
    uint64_t body_memory_max;       /* request bodies above this spill to a file in SPILL_PATH */
    uint64_t max_body_bytes_per_client; /* 0 = auto: cfg_body_max_client() */
    uint64_t max_body_bytes_per_worker; /* 0 = auto: cfg_body_max_worker() */
    char *spill_path;               /* "" = TEMP_PATH: cfg_spill_path() */
    uint64_t spill_max_bytes;       /* all workers' spill files; 0 = auto: cfg_spill_max_worker() */
    uint32_t store_max_pending;     /* store operations a worker has pending (503 beyond) */
    int http2;                      /* bool: h2c (prior knowledge and upgrade) spoken */
} cfg;

/* Room for the multipart framing around a file of MAX_FILE_SIZE: the largest request
 * body taken is MAX_FILE_SIZE plus this. */
#define CFG_BODY_SLACK (64 * 1024)

/* What the settings whose default is "auto" (or empty) stand for. */
/* MAX_BODY_BYTES_PER_CLIENT: MAX_UPLOADS_PER_CLIENT bodies of the largest size. */
uint64_t cfg_body_max_client(const cfg *c);
/* MAX_BODY_BYTES_PER_WORKER: eight clients at their cap. */
uint64_t cfg_body_max_worker(const cfg *c);
/* One worker's share of SPILL_MAX_BYTES; auto: twice what the worker may hold (libh2o
 * doubles a spill file as it grows, its blocks allocated at once). */
uint64_t cfg_spill_max_worker(const cfg *c);
/* SPILL_PATH, or TEMP_PATH when it is empty. */
const char *cfg_spill_path(const cfg *c);

/* Fill with built-in defaults (strings allocated). */
void cfg_init(cfg *c);
void cfg_free(cfg *c);

/* Set one setting by its name (case-insensitive, so YAML may use lower case).
 * Returns 0, or -1 with err = "NAME=value: expected ...". Unknown names are an error. */
int cfg_set(cfg *c, const char *name, const char *value, char *err, size_t errlen);

/* Apply a YAML mapping of NAME: value (scalars, or sequences for list settings). err is
 * one line naming the file: "FILE:LINE:COLUMN: YAML syntax error: ..." for a file that
 * is not YAML, else "FILE:LINE: ..." (see yamlmap.h). */
int cfg_load_yaml(cfg *c, const char *path, char *err, size_t errlen);

/* Apply every known setting present in the environment. */
int cfg_load_env(cfg *c, char *err, size_t errlen);

/* Checks that involve more than one value (e.g. TEMP_PATH on the STORAGE_PATH
 * filesystem is checked at start-up by the master, not here). */
int cfg_validate(const cfg *c, char *err, size_t errlen);

/* Names of every setting, NULL-terminated, for usage text and tests. */
extern const char *const cfg_names[];

#endif
