/* value.c - parsers for the text of setting values, from integers to JSON lists. Pure
 * functions over a trimmed string: no setting names, no error text, no state. JSON
 * lists are read by cJSON; only the choice between a JSON and a comma list is ours. */
#include "value.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "store_url.h"

/* ---- scanners and numbers ---- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alnum(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static char lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

char *value_trim(const char *s, size_t len)
{
    while (len > 0 && is_space(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1]))
        len--;
    return strndup(s, len);
}

/* Decimal digits at s into *out; returns the first byte after them, NULL on none or
 * on overflow. */
static const char *scan_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!is_digit(*s))
        return NULL;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    *out = v;
    return s;
}

int value_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *end = scan_u64(s, out);
    return (end != NULL && *end == '\0' && *out >= min && *out <= max) ? 0 : -1;
}

int value_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    static const char units[] = "kmgt";
    uint64_t v, mul = 1;
    const char *end = scan_u64(s, &v);
    if (end == NULL)
        return -1;
    if (*end != '\0') {
        const char *u = strchr(units, lower(*end));
        if (u == NULL)
            return -1;
        mul = UINT64_C(1) << (10 * (u - units + 1));
        end++;
        if (*end != '\0' && strcasecmp(end, "ib") != 0)
            return -1;
        if (v > UINT64_MAX / mul)
            return -1;
    }
    v *= mul;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int value_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int value_level(const char *s, int *out)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warning", LOG_WARNING},
                  {"error", LOG_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcasecmp(s, levels[i].name) == 0) {
            *out = levels[i].level;
            return 0;
        }
    }
    return -1;
}

int value_rate(const char *s, uint32_t *count, uint32_t *period_s)
{
    static const struct {
        const char *name;
        uint32_t seconds;
    } units[] = {{"s", 1},          {"second", 1},       {"seconds", 1}, {"m", 60},
                 {"minute", 60},    {"minutes", 60},     {"h", 3600},    {"hour", 3600},
                 {"hours", 3600},   {"d", 86400},        {"day", 86400}, {"days", 86400}};
    uint64_t n;
    const char *p = scan_u64(s, &n);
    if (p == NULL || n < 1 || n > UINT32_MAX)
        return -1;
    while (*p == ' ')
        p++;
    if (*p++ != '/')
        return -1;
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(p, units[i].name) == 0) {
            *count = (uint32_t)n;
            *period_s = units[i].seconds;
            return 0;
        }
    }
    return -1;
}

/* ---- hosts and ports ---- */

static int parse_port(const char *s)
{
    uint64_t port;
    if (strlen(s) > 5 || value_uint(s, 1, 65535, &port) != 0)
        return -1;
    return (int)port;
}

int value_hostname(const char *h, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (is_alnum(h[i]) || h[i] == '-' || h[i] == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
    }
    return label > 0 || h[n - 1] == '.' ? 0 : -1;
}

static bool valid_ipv6(const char *h, size_t n)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* "host", "host:port", "[v6]" or "[v6]:port" exactly filling s[0..n); need_port demands
 * the port. */
static bool valid_hostport(const char *s, size_t n, bool need_port)
{
    const char *colon;
    size_t hlen;
    char port[8];
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || !valid_ipv6(s + 1, (size_t)(close - s - 1)))
            return false;
        colon = close + 1;
        if (colon == s + n)
            return !need_port;
        if (*colon != ':')
            return false;
        hlen = (size_t)(close - s) + 1;
    } else {
        colon = memchr(s, ':', n);
        if (colon == NULL)
            return !need_port && value_hostname(s, n) == 0;
        hlen = (size_t)(colon - s);
        if (value_hostname(s, hlen) != 0)
            return false;
    }
    n -= hlen + 1;
    if (n == 0 || n >= sizeof port)
        return false;
    memcpy(port, colon + 1, n);
    port[n] = '\0';
    return parse_port(port) > 0;
}

/* ---- string values ---- */

int value_path(const char *v)
{
    return (v[0] != '\0' && !has_control(v)) ? 0 : -1;
}

int value_redis_url(const char *v)
{
    store_url u;
    return store_url_parse(v, &u);
}

int value_sentinels(const char *v)
{
    store_url u = {0};
    return store_url_sentinels(v, "m", "", &u);
}

int value_sentinel_master(const char *v)
{
    return store_url_name_ok(v) ? 0 : -1;
}

/* Copy of the first n bytes of v, lowercased (*out is NULL if memory ran out). */
static int lowered(const char *v, size_t n, char **out)
{
    *out = strndup(v, n);
    if (*out != NULL)
        for (char *p = *out; *p != '\0'; p++)
            *p = lower(*p);
    return 0;
}

int value_public_url(const char *v, char **out)
{
    size_t skip, len = strlen(v);
    if (len == 0) {
        *out = strdup("");
        return 0;
    }
    if (strncasecmp(v, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(v, "https://", 8) == 0)
        skip = 8;
    else
        return -1;
    for (const char *p = v; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("?#\"<>\\^`{|}", *p) != NULL)
            return -1;
    size_t hlen = strcspn(v + skip, "/");
    if (!valid_hostport(v + skip, hlen, false))
        return -1;
    while (len > skip + hlen && v[len - 1] == '/')
        len--;
    *out = strndup(v, len);
    if (*out != NULL)
        for (size_t i = 0; i < skip; i++)
            (*out)[i] = lower((*out)[i]);
    return 0;
}

/* ---- list entries ---- */

int value_listen(const char *v, char **out)
{
    size_t n = strlen(v);
    if (n > 0 && v[0] == ':' ? parse_port(v + 1) < 0 : !valid_hostport(v, n, true))
        return -1;
    *out = strdup(v);
    return 0;
}

int value_origin(const char *v, char **out)
{
    size_t i = 0, n = strlen(v);
    if (n == 0 || !is_alnum(v[0]) || is_digit(v[0]))
        return -1;
    while (is_alnum(v[i]) || v[i] == '+' || v[i] == '-' || v[i] == '.')
        i++;
    if (strncmp(v + i, "://", 3) != 0)
        return -1;
    i += 3;
    if (n > i && v[n - 1] == '/')
        n--;
    if (!valid_hostport(v + i, n - i, false))
        return -1;
    return lowered(v, n, out);
}

int value_agent(const char *v, char **out)
{
    size_t n = strlen(v);
    if (n == 0 || n > VALUE_AGENT_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return -1;
    return lowered(v, n, out);
}

/* ---- lists ---- */

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

/* Takes ownership of s. */
static int strvec_push(strvec *sv, char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (v == NULL) {
            free(s);
            return -1;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

/* One entry, trimmed; an empty one is dropped. 0, or -2 when memory ran out. */
static int add_entry(strvec *sv, const char *s, size_t len)
{
    char *t = value_trim(s, len);
    if (t == NULL)
        return -2;
    if (t[0] == '\0') {
        free(t);
        return 0;
    }
    return strvec_push(sv, t) == 0 ? 0 : -2;
}

static bool looks_like_json(const char *s)
{
    if (s[0] != '[')
        return false;
    s++;
    while (is_space(*s))
        s++;
    return *s == '"' || *s == ']';
}

static int split_json(const char *s, strvec *out)
{
    /* cJSON ends a string at an escaped NUL without a word, which would cut an entry
     * short; no entry of any list may hold a NUL (or a backslash) anyway. cJSON does not
     * tell running out of memory from bad syntax: both are -1 here. */
    if (strstr(s, "\\u0000") != NULL)
        return -1;
    cJSON *list = cJSON_ParseWithOpts(s, NULL, 1);
    const cJSON *item;
    int rc = cJSON_IsArray(list) ? 0 : -1;
    for (item = rc == 0 ? list->child : NULL; item != NULL && rc == 0; item = item->next)
        rc = cJSON_IsString(item) ? add_entry(out, item->valuestring, strlen(item->valuestring)) : -1;
    cJSON_Delete(list);
    return rc;
}

static int split_commas(const char *s, strvec *out)
{
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (add_entry(out, s, n) != 0)
            return -2;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

int value_list(const char *s, char ***items, size_t *n)
{
    strvec sv = {NULL, 0, 0};
    int rc = looks_like_json(s) ? split_json(s, &sv) : split_commas(s, &sv);
    if (rc != 0) {
        value_list_free(sv.v, sv.n);
        sv.v = NULL;
        sv.n = 0;
    }
    *items = sv.v;
    *n = sv.n;
    return rc;
}

void value_list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}
