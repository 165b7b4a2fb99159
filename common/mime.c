/* mime.c - MIME type patterns: their syntax (checked when the configuration is read)
 * and their meaning (a match per upload), in one place so the two cannot drift apart. */
#include "mime.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_alnum(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* RFC 6838 restricted-name: a letter or digit, then letters, digits and !#$&-^_.+ */
static bool valid_token(const char *s, size_t n)
{
    if (n == 0 || n > 127 || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(s[i]) && strchr("!#$&-^_.+", s[i]) == NULL)
            return false;
    return true;
}

int mime_pattern(const char *v, char **out)
{
    const char *slash = strchr(v, '/');
    if (slash == NULL)
        return -1;
    size_t tlen = (size_t)(slash - v);
    const char *sub = slash + 1;
    bool sub_star = strcmp(sub, "*") == 0;
    bool type_ok = valid_token(v, tlen) || (tlen == 1 && v[0] == '*' && sub_star);
    if (!type_ok || (!sub_star && !valid_token(sub, strlen(sub))))
        return -1;
    *out = strdup(v);
    if (*out != NULL)
        for (char *p = *out; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    return 0;
}

int mime_allowed(char *const *patterns, size_t n, const char *type)
{
    if (n == 0)
        return 1;
    if (type == NULL)
        return 0;
    size_t len = strcspn(type, "; \t"); /* parameters do not count */
    const char *slash = memchr(type, '/', len);
    if (slash == NULL)
        return 0;
    size_t tlen = (size_t)(slash - type);
    for (size_t i = 0; i < n; i++) {
        const char *e = patterns[i];
        size_t elen = strlen(e);
        if (strcmp(e, "*/*") == 0)
            return 1;
        if (elen >= 2 && strcmp(e + elen - 2, "/*") == 0) {
            if (elen - 2 == tlen && strncasecmp(e, type, tlen) == 0)
                return 1;
        } else if (elen == len && strncasecmp(e, type, len) == 0) {
            return 1;
        }
    }
    return 0;
}
