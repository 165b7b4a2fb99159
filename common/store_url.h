/* store_url.h - REDIS_URL and the Sentinel settings, read by one parser: the settings
 * check (-t) refuses exactly what the clients could not use, and both clients (the
 * worker's asynchronous one, the shredder's blocking one) take their connection
 * parameters from this struct. */
#ifndef RZ_STORE_URL_H
#define RZ_STORE_URL_H

#include <stddef.h>

#define STORE_URL_DB_MAX 15
#define STORE_URL_PATH_MAX 108 /* sun_path of a Linux sockaddr_un, NUL included */
#define STORE_URL_SENTINELS_MAX 16
#define STORE_URL_NAME_MAX 64 /* bytes of a Sentinel master name, NUL included */

typedef struct {
    char host[256]; /* name, IPv4, or IPv6 without brackets */
    int port;
} store_url_host;

typedef struct {
    char host[256];                     /* name, IPv4, or IPv6 without brackets; "" for unix */
    int port;                           /* 6379 unless given */
    char unix_path[STORE_URL_PATH_MAX]; /* non-empty for unix:// */
    char user[128];                     /* "" unless given (Redis 6 ACL user) */
    char password[256];                 /* "" for none; %XX escapes decoded */
    int db;                             /* 0 to STORE_URL_DB_MAX */
    /* With sentinels, host and port above are only where to start: the primary is the
     * one the sentinels name for master; user, password and db still apply to it. */
    store_url_host sentinels[STORE_URL_SENTINELS_MAX];
    size_t nsentinels;                  /* 0: no Sentinel, host:port is the store */
    char master[STORE_URL_NAME_MAX];
    char sentinel_password[256];        /* "" for none */
} store_url;

/* redis://[[user]:password@]host[:port][/[db]] or unix:///absolute/path[?db=N].
 * Host: a DNS name, an IPv4 address or [IPv6]; the password is not empty; %XX escapes
 * in user and password stand for a byte (so '@', '/' and '%' can be written).
 * 0, or -1 (out then holds no password) for anything else. */
int store_url_parse(const char *url, store_url *out);

/* REDIS_SENTINELS ("host:port,host:port,...", [IPv6]:port, port 26379 unless given;
 * "" for none), the master's name (printable ASCII without spaces) and the sentinels'
 * own password ("" for none) into out, whose REDIS_URL part is kept. A unix:// store
 * cannot be found through sentinels. 0, or -1 (out's Sentinel part then empty). */
int store_url_sentinels(const char *list, const char *master, const char *password, store_url *out);

/* Is name usable as a Sentinel master name? */
int store_url_name_ok(const char *name);

#endif
