/* framing.c - the end of an HTTP/1 request head and the framing checks on it (see
 * framing.h): one walk over its lines, shared by both. */
#include "framing.h"

#include <string.h>
#include <strings.h>

/* One line of a head: [start, start + len) without its line end. */
typedef struct {
    size_t start, len;
    int crlf;    /* ended by CR LF, not a bare LF */
    size_t next; /* where the line after it starts */
} line;

/* The line at pos; 0, or -1 when no LF ends it within len. */
static int next_line(const char *p, size_t len, size_t pos, line *l)
{
    const char *lf = pos < len ? memchr(p + pos, '\n', len - pos) : NULL;
    if (lf == NULL)
        return -1;
    size_t end = (size_t)(lf - p);
    l->crlf = end > pos && p[end - 1] == '\r';
    l->start = pos;
    l->len = end - pos - (size_t)l->crlf;
    l->next = end + 1;
    return 0;
}

typedef struct {
    unsigned lengths, codings;
} fields;

static int named(const char *p, const line *l, const char *name)
{
    size_t n = strlen(name);
    return l->len > n && p[l->start + n] == ':' && strncasecmp(p + l->start, name, n) == 0;
}

/* A header line: folded, or one of the fields that frame the body. */
static framing_verdict header_line(const char *p, const line *l, fields *f)
{
    if (p[l->start] == ' ' || p[l->start] == '\t')
        return FRAMING_OBS_FOLD;
    if (named(p, l, "content-length"))
        f->lengths++;
    else if (named(p, l, "transfer-encoding"))
        f->codings++;
    return FRAMING_OK;
}

/* Walk the head at the start of p to the empty line that ends it; *end gets its length.
 * With f, every line is checked and the framing fields are counted into f; without,
 * lines are read as leniently as libh2o reads them. */
static framing_verdict walk(const char *p, size_t len, fields *f, size_t *end)
{
    line l;
    int first = 1, skipped = 0;
    for (size_t pos = 0;; pos = l.next) {
        if (next_line(p, len, pos, &l) != 0)
            return FRAMING_INCOMPLETE;
        if (f != NULL && !l.crlf)
            return FRAMING_BARE_LF;
        if (l.len == 0 && first && !skipped) {
            skipped = 1; /* libh2o skips one empty line before the request line */
            continue;
        }
        if (l.len == 0) {
            *end = l.next;
            return FRAMING_OK;
        }
        if (f != NULL && !first) {
            framing_verdict v = header_line(p, &l, f);
            if (v != FRAMING_OK)
                return v;
        }
        first = 0;
    }
}

size_t framing_head_end(const char *p, size_t len)
{
    size_t end = 0;
    return walk(p, len, NULL, &end) == FRAMING_OK ? end : 0;
}

framing_verdict framing_check(const char *p, size_t len, int http10)
{
    fields f = {0, 0};
    size_t end = 0;
    framing_verdict v = walk(p, len, &f, &end);
    if (v != FRAMING_OK)
        return v;
    if (f.lengths > 0 && f.codings > 0)
        return FRAMING_LENGTH_AND_CODING;
    if (f.lengths > 1)
        return FRAMING_LENGTHS;
    if (f.codings > 1)
        return FRAMING_CODINGS;
    if (f.codings > 0 && http10)
        return FRAMING_CODING_IN_HTTP10;
    return FRAMING_OK;
}

const char *framing_reason(framing_verdict v)
{
    switch (v) {
    case FRAMING_OK: return "";
    case FRAMING_INCOMPLETE: return "Bad request framing: the request head could not be read";
    case FRAMING_BARE_LF: return "Bad request framing: a line ends without CR LF";
    case FRAMING_OBS_FOLD: return "Bad request framing: folded header line";
    case FRAMING_LENGTHS: return "Bad request framing: Content-Length more than once";
    case FRAMING_CODINGS: return "Bad request framing: Transfer-Encoding more than once";
    case FRAMING_LENGTH_AND_CODING: return "Bad request framing: both Content-Length and Transfer-Encoding";
    case FRAMING_CODING_IN_HTTP10: return "Bad request framing: Transfer-Encoding in an HTTP/1.0 request";
    }
    return "Bad request framing";
}
