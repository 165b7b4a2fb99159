/* store_url.h - REDIS_URL, read by one parser: the settings check (-t) refuses exactly
 * what the clients could not use, and both clients (the worker's asynchronous one, the
 * shredder's blocking one) take their connection parameters from this struct. */
#ifndef RZ_STORE_URL_H
#define RZ_STORE_URL_H

#define STORE_URL_DB_MAX 15
#define STORE_URL_PATH_MAX 108 /* sun_path of a Linux sockaddr_un, NUL included */

typedef struct {
    char host[256];                     /* name, IPv4, or IPv6 without brackets; "" for unix */
    int port;                           /* 6379 unless given */
    char unix_path[STORE_URL_PATH_MAX]; /* non-empty for unix:// */
    char user[128];                     /* "" unless given (Redis 6 ACL user) */
    char password[256];                 /* "" for none; %XX escapes decoded */
    int db;                             /* 0 to STORE_URL_DB_MAX */
} store_url;

/* redis://[[user]:password@]host[:port][/[db]] or unix:///absolute/path[?db=N].
 * Host: a DNS name, an IPv4 address or [IPv6]; the password is not empty; %XX escapes
 * in user and password stand for a byte (so '@', '/' and '%' can be written).
 * 0, or -1 (out then holds no password) for anything else. */
int store_url_parse(const char *url, store_url *out);

#endif
