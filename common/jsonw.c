/* jsonw.c - JSON objects written into a fixed buffer (see jsonw.h); owns nothing. */
#include "jsonw.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(jsonw *j, const char *s, size_t n)
{
    if (j->overflow || j->len + n + 1 > j->cap) {
        j->overflow = 1;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void put_c(jsonw *j, char c)
{
    put(j, &c, 1);
}

/* As cJSON: '"', '\\' and the control characters escaped; everything else as is. */
static void put_string(jsonw *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_c(j, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        put(j, s + i - run, run);
        run = 0;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        put(j, esc, len);
    }
    put(j, s + n - run, run);
    put_c(j, '"');
}

static void key(jsonw *j, const char *k)
{
    if (j->members++ > 0)
        put_c(j, ',');
    put_string(j, k, strlen(k));
    put_c(j, ':');
}

void jsonw_init(jsonw *j, char *buf, size_t cap, int brace)
{
    j->buf = buf;
    j->cap = cap;
    j->len = 0;
    j->members = 0;
    j->overflow = cap == 0;
    if (cap > 0)
        buf[0] = '\0';
    if (brace)
        put_c(j, '{');
}

void jsonw_str(jsonw *j, const char *k, const char *value)
{
    jsonw_strn(j, k, value, strlen(value));
}

void jsonw_strn(jsonw *j, const char *k, const char *value, size_t len)
{
    key(j, k);
    put_string(j, value, len);
}

/* cJSON 1.7.15's print_number: null for NaN and infinities, else 15 significant
 * digits, or 17 when 15 do not read back within an epsilon of the value. */
static int close_enough(double a, double b)
{
    double max = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= max * DBL_EPSILON;
}

void jsonw_num(jsonw *j, const char *k, double d)
{
    char num[32];
    int n;
    key(j, k);
    if (isnan(d) || isinf(d)) {
        n = snprintf(num, sizeof(num), "null");
    } else if (d == (double)(long long)d && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
        /* what %1.15g prints for a whole number of up to 15 digits, without printf */
        char digits[20];
        unsigned long long v = (unsigned long long)(d < 0 ? -(long long)d : (long long)d);
        size_t at = sizeof(digits);
        do
            digits[--at] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (d < 0)
            digits[--at] = '-';
        put(j, digits + at, sizeof(digits) - at);
        return;
    } else {
        n = snprintf(num, sizeof(num), "%1.15g", d);
        if (!close_enough(strtod(num, NULL), d))
            n = snprintf(num, sizeof(num), "%1.17g", d);
    }
    put(j, num, (size_t)n);
}

void jsonw_bool(jsonw *j, const char *k, int value)
{
    key(j, k);
    if (value)
        put(j, "true", 4);
    else
        put(j, "false", 5);
}

void jsonw_null(jsonw *j, const char *k)
{
    key(j, k);
    put(j, "null", 4);
}

void jsonw_members(jsonw *j, const char *members, size_t len)
{
    if (len == 0)
        return;
    if (j->members++ > 0)
        put_c(j, ',');
    put(j, members, len);
}

void jsonw_open(jsonw *j, const char *k)
{
    key(j, k);
    put_c(j, '{');
    j->members = 0;
}

void jsonw_close(jsonw *j)
{
    put_c(j, '}');
    j->members = 1; /* what follows a nested object is its parent's next member */
}

long jsonw_len(const jsonw *j)
{
    return j->overflow ? -1 : (long)j->len;
}
