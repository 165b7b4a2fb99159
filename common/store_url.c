/* store_url.c - parse REDIS_URL and the Sentinel settings (see store_url.h). Strict on
 * purpose: a URL either means one connection the clients can make, or start-up refuses
 * it with one line. */
#include "store_url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "value.h"

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == STORE_URL_PATH_MAX,
               "a unix path that fits the struct must fit a socket address");

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decimal digits s[0..n) (at most digits of them) as a number in [min, max]; -1 if not. */
static long number(const char *s, size_t n, size_t digits, long min, long max)
{
    long v = 0;
    if (n == 0 || n > digits)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= min && v <= max ? v : -1;
}

/* s[0..n) with %XX decoded into out (cap bytes, NUL included); 0 or -1. A NUL, in the
 * text or decoded, could not reach the server intact: refused. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        if (o + 1 >= cap)
            return -1;
        if (s[i] != '%') {
            out[o] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return -1;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return -1;
        out[o] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return 0;
}

/* "host", "host:port", "[v6]" or "[v6]:port" filling s[0..n). */
static int parse_hostport(const char *s, size_t n, store_url_host *out)
{
    const char *host = s, *colon;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        struct in6_addr a;
        if (rb == NULL || (size_t)(rb - s - 1) >= sizeof(out->host))
            return -1;
        host = s + 1;
        hlen = (size_t)(rb - host);
        memcpy(out->host, host, hlen);
        out->host[hlen] = '\0';
        if (inet_pton(AF_INET6, out->host, &a) != 1)
            return -1;
        colon = rb + 1 < s + n ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return -1;
    } else {
        colon = memchr(s, ':', n);
        hlen = (size_t)((colon != NULL ? colon : s + n) - s);
        if (value_hostname(s, hlen) != 0)
            return -1;
        memcpy(out->host, s, hlen);
        out->host[hlen] = '\0';
    }
    if (colon != NULL) {
        long port = number(colon + 1, (size_t)(s + n - colon - 1), 5, 1, 65535);
        if (port < 0)
            return -1;
        out->port = (int)port;
    }
    return 0;
}

/* "[user]:password" filling s[0..n): the password is not empty. */
static int parse_userinfo(const char *s, size_t n, store_url *out)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon + 1 == s + n)
        return -1;
    return decode(s, (size_t)(colon - s), out->user, sizeof(out->user)) == 0 &&
                   decode(colon + 1, (size_t)(s + n - colon - 1), out->password, sizeof(out->password)) == 0
               ? 0
               : -1;
}

static int parse_unix(const char *p, store_url *out)
{
    const char *q = strchr(p, '?');
    size_t len = q != NULL ? (size_t)(q - p) : strlen(p);
    if (len < 2 || p[0] != '/' || len >= sizeof(out->unix_path))
        return -1;
    memcpy(out->unix_path, p, len);
    out->unix_path[len] = '\0';
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0)
            return -1;
        long db = number(q + 4, strlen(q + 4), 2, 0, STORE_URL_DB_MAX);
        if (db < 0)
            return -1;
        out->db = (int)db;
    }
    return 0;
}

static int parse_tcp(const char *p, store_url *out)
{
    size_t alen = strcspn(p, "/");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (p[i] == '@')
            at = p + i; /* the last one: a password may hold a raw '@' */
    if (at != NULL && parse_userinfo(p, (size_t)(at - p), out) != 0)
        return -1;
    const char *hp = at != NULL ? at + 1 : p;
    store_url_host h = {.port = out->port};
    if (parse_hostport(hp, (size_t)(p + alen - hp), &h) != 0)
        return -1;
    memcpy(out->host, h.host, sizeof(h.host));
    out->port = h.port;
    const char *db = p + alen;
    if (*db == '\0' || db[1] == '\0')
        return 0;
    long n = number(db + 1, strlen(db + 1), 2, 0, STORE_URL_DB_MAX);
    if (n < 0)
        return -1;
    out->db = (int)n;
    return 0;
}

int store_url_parse(const char *url, store_url *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    for (const char *c = url; *c != '\0'; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return -1;
    int r = -1;
    if (strncmp(url, "unix://", 7) == 0)
        r = parse_unix(url + 7, out);
    else if (strncmp(url, "redis://", 8) == 0)
        r = parse_tcp(url + 8, out);
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int store_url_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= STORE_URL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
            return 0;
    return 1;
}

static int parse_sentinels(const char *list, const char *master, const char *password, store_url *out)
{
    for (const char *c = password; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return -1;
    if (list[0] == '\0')
        return 0;
    if (out->unix_path[0] || !store_url_name_ok(master) || strlen(password) >= sizeof(out->sentinel_password))
        return -1;
    for (const char *p = list;;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && p[t - 1] == ' ')
            t--;
        if (t == 0 || out->nsentinels == STORE_URL_SENTINELS_MAX)
            return -1;
        store_url_host *h = &out->sentinels[out->nsentinels++];
        h->port = 26379;
        if (memchr(p, ' ', t) != NULL || parse_hostport(p, t, h) != 0)
            return -1;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    snprintf(out->master, sizeof(out->master), "%s", master);
    snprintf(out->sentinel_password, sizeof(out->sentinel_password), "%s", password);
    return 0;
}

int store_url_sentinels(const char *list, const char *master, const char *password, store_url *out)
{
    out->nsentinels = 0;
    int r = parse_sentinels(list, master, password, out);
    if (r != 0 || out->nsentinels == 0) {
        memset(out->sentinels, 0, sizeof(out->sentinels));
        out->nsentinels = 0;
        memset(out->master, 0, sizeof(out->master));
        memset(out->sentinel_password, 0, sizeof(out->sentinel_password));
    }
    return r;
}
