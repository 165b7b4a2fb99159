/* jsonw.h - a JSON object written straight into a caller's buffer, without a tree.
 *
 * For the lines and answers of every request (the access log, status, errors), where
 * building a cJSON tree and printing it cost more than the request's own work. The text
 * is what cJSON_PrintUnformatted gives for the same members in the same order: strings
 * escaped as cJSON escapes them, numbers as cJSON prints them. */
#ifndef RZ_JSONW_H
#define RZ_JSONW_H

#include <stddef.h>

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    int members;  /* written so far at this level */
    int overflow; /* the buffer was too small: the text is not to be used */
} jsonw;

/* Start writing at buf; brace: open an object ("{"), else members only. */
void jsonw_init(jsonw *j, char *buf, size_t cap, int brace);
void jsonw_str(jsonw *j, const char *key, const char *value);
void jsonw_strn(jsonw *j, const char *key, const char *value, size_t len);
void jsonw_num(jsonw *j, const char *key, double value);
void jsonw_bool(jsonw *j, const char *key, int value);
void jsonw_null(jsonw *j, const char *key);
/* Members already written as JSON ("k":v,... without braces), len bytes of them. */
void jsonw_members(jsonw *j, const char *members, size_t len);
/* Open an object as a member's value; jsonw_close ends it (and the top-level one). */
void jsonw_open(jsonw *j, const char *key);
void jsonw_close(jsonw *j);
/* The text's length (NUL-terminated in buf), or -1 when it did not fit. */
long jsonw_len(const jsonw *j);

#endif
