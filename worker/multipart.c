/* multipart.c - incremental multipart/form-data parser (RFC 7578, RFC 2046).
 * A byte-driven state machine: part data is scanned for "\r\n--boundary" and handed
 * out as runs of the caller's chunk. A delimiter split across chunks is held back, but
 * since held bytes always equal a prefix of the delimiter they are never copied. */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>

enum state {
    S_PREAMBLE, /* before the first boundary: bytes dropped */
    S_DATA,     /* inside a part's body */
    S_PAD,      /* transport padding after a boundary */
    S_PAD_CR,   /* padding then CR: LF must follow */
    S_HEADERS,  /* collecting a part's header block */
    S_EPILOGUE, /* after the closing boundary: bytes dropped */
    S_FAILED
};

/* What one byte does to a delimiter being matched. */
enum step { STEP_MORE, STEP_MISS, STEP_PAD, STEP_NEXT, STEP_CLOSE };

#define DELIM_MAX (4 + MP_MAX_BOUNDARY) /* "\r\n--" boundary */

struct mp_parser {
    mp_callbacks cb;
    void *user;
    enum state state;
    int result;
    const char *error;
    /* "\r\n--boundary" plus the byte seen after it ('-' or '\r'); doubles as the
     * buffer of held-back bytes, which are always its first `held` bytes. */
    uint8_t delim[DELIM_MAX + 1];
    size_t delim_len;
    size_t match; /* bytes of delim matched, up to delim_len + 1 */
    size_t held;  /* of those, how many arrived in earlier chunks */
    unsigned parts;
    size_t hdr_len;
    char hdr[MP_MAX_PART_HEADER];
    /* Decoded values of the current part's headers, each NUL-terminated; a decoded
     * value is never longer than its raw text, so the header size bounds them all. */
    size_t vals_len;
    char vals[MP_MAX_PART_HEADER + 8];
};

typedef struct {
    const char *p, *end;
} span;

static int fail(mp_parser *p, int rc, const char *why)
{
    p->state = S_FAILED;
    p->result = rc;
    p->error = why;
    return rc;
}

/* ---- small lexing helpers, shared by Content-Type and Content-Disposition ---- */

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static int span_ieq(span s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s.end - s.p) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lit[i])
            return 0;
    return 1;
}

static void skip_ows(span *s)
{
    while (s->p < s->end && is_ows(*s->p))
        s->p++;
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static span take_token(span *s)
{
    span t = {s->p, s->p};
    while (s->p < s->end && is_tchar((unsigned char)*s->p))
        s->p++;
    t.end = s->p;
    return t;
}

/* An unquoted value or media type: lenient, since real clients put '/', '=' or ':'
 * in unquoted boundaries; it only stops where the parameter syntax needs it to. */
static span take_bare(span *s)
{
    span t = {s->p, s->p};
    while (s->p < s->end && !is_ows(*s->p) && *s->p != ';' && *s->p != '"')
        s->p++;
    t.end = s->p;
    return t;
}

/* The inside of a quoted-string starting at s->p (on the quote), still escaped. */
static int take_quoted(span *s, span *inner)
{
    const char *q = ++s->p;
    while (q < s->end && *q != '"')
        q += (*q == '\\' && q + 1 < s->end) ? 2 : 1;
    if (q >= s->end)
        return -1;
    inner->p = s->p;
    inner->end = q;
    s->p = q + 1;
    return 0;
}

/* The next "; attr=value" of a parameter list: 1, 0 at the end, -1 when broken.
 * Empty parameters (";;", a trailing ';') are skipped. */
static int param_next(span *s, span *attr, span *val, int *quoted)
{
    for (;;) {
        skip_ows(s);
        if (s->p == s->end)
            return 0;
        if (*s->p != ';')
            return -1;
        s->p++;
        skip_ows(s);
        if (s->p < s->end && *s->p != ';')
            break;
    }
    *attr = take_token(s);
    skip_ows(s);
    if (attr->p == attr->end || s->p == s->end || *s->p != '=')
        return -1;
    s->p++;
    skip_ows(s);
    *quoted = s->p < s->end && *s->p == '"';
    if (*quoted)
        return take_quoted(s, val) == 0 ? 1 : -1;
    *val = take_bare(s);
    return val->p < val->end ? 1 : -1;
}

/* Copies a value, dropping quoted-string backslashes, into dst of cap bytes plus NUL;
 * returns its length or -1 when it does not fit. */
static long unquote(span v, int quoted, char *dst, size_t cap)
{
    size_t n = 0;
    for (const char *c = v.p; c < v.end; c++) {
        if (quoted && *c == '\\' && c + 1 < v.end)
            c++;
        if (n == cap)
            return -1;
        dst[n++] = *c;
    }
    dst[n] = '\0';
    return (long)n;
}

/* RFC 2046 bchars are printable ASCII and may not end in a space; above all no CR,
 * which is what lets a failed delimiter match restart without backtracking. */
static int boundary_ok(const char *b, size_t n)
{
    if (n == 0 || n > MP_MAX_BOUNDARY || b[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] > 0x7e)
            return 0;
    return 1;
}

int mp_boundary(const char *content_type, size_t len, char *out)
{
    span s = {content_type, content_type + len}, attr, val;
    int quoted, rc, found = 0;
    long n = 0;

    skip_ows(&s);
    if (!span_ieq(take_bare(&s), "multipart/form-data"))
        return -1;
    while ((rc = param_next(&s, &attr, &val, &quoted)) == 1) {
        if (!span_ieq(attr, "boundary"))
            continue;
        if (found++)
            return -1; /* two boundaries: which one would the sender mean? */
        n = unquote(val, quoted, out, MP_MAX_BOUNDARY);
        if (n < 0)
            return -1;
    }
    if (rc < 0 || !found || !boundary_ok(out, (size_t)n))
        return -1;
    return 0;
}

mp_parser *mp_new(const char *boundary, const mp_callbacks *cb, void *user)
{
    size_t n = strnlen(boundary, MP_MAX_BOUNDARY + 1);
    mp_parser *p;

    if (!boundary_ok(boundary, n) || (p = calloc(1, sizeof(*p))) == NULL)
        return NULL;
    if (cb != NULL)
        p->cb = *cb;
    p->user = user;
    p->state = S_PREAMBLE;
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, n);
    p->delim_len = 4 + n;
    /* The first boundary may open the body: pretend a CRLF came before it. */
    p->match = p->held = 2;
    p->error = "";
    return p;
}

void mp_free(mp_parser *p) { free(p); }

const char *mp_error(const mp_parser *p) { return p != NULL ? p->error : ""; }

/* ---- part headers ---- */

/* Stores a decoded copy of v in vals; NULL only if the size argument above is wrong. */
static char *keep(mp_parser *p, span v, int quoted, size_t *len)
{
    char *dst = p->vals + p->vals_len;
    long n;

    if (p->vals_len >= sizeof(p->vals))
        return NULL;
    n = unquote(v, quoted, dst, sizeof(p->vals) - p->vals_len - 1);
    if (n < 0)
        return NULL;
    p->vals_len += (size_t)n + 1;
    *len = (size_t)n;
    return dst;
}

static int hexval(char c)
{
    c = lower(c);
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* RFC 8187 ext-value "charset'lang'pct-encoded", decoded in place (it only shrinks).
 * 1 when decoded, 0 for a charset other than UTF-8 (ignored, as RFC 6266 asks),
 * -1 when broken. */
static int ext_decode(char *s, size_t *len)
{
    char *q1 = memchr(s, '\'', *len), *q2, *end = s + *len, *w;
    if (q1 == NULL || (q2 = memchr(q1 + 1, '\'', (size_t)(end - q1 - 1))) == NULL)
        return -1;
    if (!span_ieq((span){s, q1}, "utf-8"))
        return 0;
    w = s;
    for (char *r = q2 + 1; r < end; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        if (end - r < 3 || hexval(r[1]) < 0 || hexval(r[2]) < 0)
            return -1;
        *w++ = (char)(hexval(r[1]) << 4 | hexval(r[2]));
        r += 2;
    }
    *w = '\0';
    *len = (size_t)(w - s);
    return 1;
}

typedef struct {
    const char *name, *filename, *filename_ext;
    size_t filename_len, filename_ext_len;
    const char *content_type;
    int disposition_seen;
} part_fields;

/* One parameter of Content-Disposition; a repeated one is refused as ambiguous. */
static const char *disposition_param(mp_parser *p, part_fields *f, span attr, span val,
                                     int quoted)
{
    size_t n;
    int rc;

    if (span_ieq(attr, "name")) {
        if (f->name != NULL)
            return "duplicate name parameter";
        return (f->name = keep(p, val, quoted, &n)) ? NULL : "part header too large";
    }
    if (span_ieq(attr, "filename")) {
        if (f->filename != NULL)
            return "duplicate filename parameter";
        f->filename = keep(p, val, quoted, &f->filename_len);
        return f->filename ? NULL : "part header too large";
    }
    if (!span_ieq(attr, "filename*"))
        return NULL; /* unknown parameters are for someone else */
    if (f->filename_ext != NULL)
        return "duplicate filename* parameter";
    char *s = keep(p, val, quoted, &n);
    if (s == NULL)
        return "part header too large";
    if ((rc = ext_decode(s, &n)) < 0)
        return "bad filename* parameter";
    if (rc == 0)
        return NULL;
    /* A NUL would silently cut the name in every C string downstream. */
    if (memchr(s, '\0', n) != NULL)
        return "NUL in filename";
    f->filename_ext = s;
    f->filename_ext_len = n;
    return NULL;
}

static const char *parse_disposition(mp_parser *p, part_fields *f, span v)
{
    span type, attr, val;
    int quoted, rc;
    const char *why;

    if (f->disposition_seen++)
        return "duplicate Content-Disposition";
    /* The type should be form-data; any token is accepted, the name is what counts. */
    type = take_token(&v);
    if (type.p == type.end)
        return "bad Content-Disposition";
    while ((rc = param_next(&v, &attr, &val, &quoted)) == 1)
        if ((why = disposition_param(p, f, attr, val, quoted)) != NULL)
            return why;
    return rc < 0 ? "bad Content-Disposition" : NULL;
}

static const char *parse_header_line(mp_parser *p, part_fields *f, span line)
{
    span name, v;
    size_t n;

    if (line.p < line.end && is_ows(*line.p))
        return "folded part header";
    name = take_token(&line);
    if (name.p == name.end || line.p == line.end || *line.p != ':')
        return "bad part header";
    v.p = line.p + 1;
    v.end = line.end;
    skip_ows(&v);
    while (v.end > v.p && is_ows(v.end[-1]))
        v.end--;
    if (span_ieq(name, "content-disposition"))
        return parse_disposition(p, f, v);
    if (!span_ieq(name, "content-type"))
        return NULL;
    if (f->content_type != NULL)
        return "duplicate Content-Type";
    f->content_type = keep(p, v, 0, &n);
    return f->content_type ? NULL : "part header too large";
}

/* The block holds lines that each end in CRLF (bare CR/LF were refused on the way in),
 * the last one empty. */
static const char *parse_headers(mp_parser *p, mp_part_info *info)
{
    part_fields f = {0};
    const char *s = p->hdr, *end = p->hdr + p->hdr_len - 2, *why;

    p->vals_len = 0;
    while (s < end) {
        const char *eol = memchr(s, '\r', (size_t)(end - s));
        if ((why = parse_header_line(p, &f, (span){s, eol})) != NULL)
            return why;
        s = eol + 2;
    }
    if (!f.disposition_seen)
        return "part without Content-Disposition";
    if (f.name == NULL)
        return "part without a name";
    info->name = f.name;
    info->filename = f.filename_ext ? f.filename_ext : f.filename;
    info->filename_len = f.filename_ext ? f.filename_ext_len : f.filename_len;
    info->content_type = f.content_type ? f.content_type : "";
    return NULL;
}

static int begin_part(mp_parser *p)
{
    mp_part_info info;
    const char *why = parse_headers(p, &info);
    int rc;

    if (why != NULL)
        return fail(p, MP_MALFORMED, why);
    p->state = S_DATA;
    p->match = p->held = 0;
    if (p->cb.on_part_begin && (rc = p->cb.on_part_begin(p->user, &info)) != 0)
        return fail(p, rc, "stopped by callback");
    return 0;
}

/* One byte of the header block: 1 when the block is complete, 0 for more, -1 failed. */
static int header_byte(mp_parser *p, char c)
{
    char prev = p->hdr_len ? p->hdr[p->hdr_len - 1] : '\0';

    if (p->hdr_len == MP_MAX_PART_HEADER)
        return fail(p, MP_MALFORMED, "part header too large");
    if (c == '\0')
        return fail(p, MP_MALFORMED, "NUL in part header");
    /* Refusing bare CR and LF here means no header value can smuggle a line end. */
    if ((c == '\n') != (prev == '\r'))
        return fail(p, MP_MALFORMED, "bare CR or LF in part header");
    p->hdr[p->hdr_len++] = c;
    return c == '\n' && (p->hdr_len == 2 || p->hdr[p->hdr_len - 3] == '\n');
}

/* Collects the header block up to its empty line; returns where it stopped. */
static size_t take_headers(mp_parser *p, const uint8_t *data, size_t len, size_t i)
{
    while (i < len) {
        int rc = header_byte(p, (char)data[i++]);
        if (rc == 1)
            begin_part(p);
        if (rc != 0)
            break;
    }
    return i;
}

/* ---- part data and delimiters ---- */

static int emit(mp_parser *p, const uint8_t *data, size_t len)
{
    int rc;

    if (len == 0 || p->state != S_DATA || p->cb.on_part_data == NULL)
        return 0;
    if ((rc = p->cb.on_part_data(p->user, data, len)) != 0)
        return fail(p, rc, "stopped by callback");
    return 0;
}

static enum step step(mp_parser *p, uint8_t c)
{
    size_t d = p->delim_len;

    if (p->match < d) {
        if (c != p->delim[p->match])
            return STEP_MISS;
        p->match++;
        return STEP_MORE;
    }
    if (p->match == d) {
        if (c == '-' || c == '\r') {
            p->delim[d] = c;
            p->match++;
            return STEP_MORE;
        }
        /* Whitespace after a full delimiter commits to it: no generator may put the
         * boundary at a line start in data, and padding need not be held back. */
        return (c == ' ' || c == '\t') ? STEP_PAD : STEP_MISS;
    }
    if (p->delim[d] == '-')
        return c == '-' ? STEP_CLOSE : STEP_MISS;
    return c == '\n' ? STEP_NEXT : STEP_MISS;
}

static void open_headers(mp_parser *p)
{
    if (p->parts == MP_MAX_PARTS) {
        fail(p, MP_MALFORMED, "too many parts");
        return;
    }
    p->parts++;
    p->state = S_HEADERS;
    p->hdr_len = 0;
}

/* A delimiter has been recognised: close the current part, if any, and go on. */
static int delimiter(mp_parser *p, enum step how)
{
    int rc;

    if (p->state == S_DATA && p->cb.on_part_end && (rc = p->cb.on_part_end(p->user)) != 0)
        return fail(p, rc, "stopped by callback");
    p->match = p->held = 0;
    if (how == STEP_CLOSE)
        p->state = S_EPILOGUE;
    else if (how == STEP_PAD)
        p->state = S_PAD;
    else
        open_headers(p);
    return p->result;
}

/* Preamble or part data from data[i]. Bytes in [run, i) not held by a partial match
 * are data; they are handed out in one piece when the run ends. */
static size_t scan(mp_parser *p, const uint8_t *data, size_t len, size_t i)
{
    size_t run = i;
    enum step r;

    while (i < len) {
        if (p->match == 0) {
            const uint8_t *cr = memchr(data + i, '\r', len - i);
            if (cr == NULL)
                break;
            i = (size_t)(cr - data);
        }
        if ((r = step(p, data[i])) == STEP_MORE) {
            i++;
        } else if (r == STEP_MISS) {
            /* Not a delimiter after all. A CR-free boundary means no suffix of what
             * matched can start one, so only data[i] needs a second look. */
            if (emit(p, p->delim, p->held) != 0)
                return len;
            p->match = p->held = 0;
        } else {
            if (emit(p, data + run, i - (p->match - p->held) - run) != 0 ||
                delimiter(p, r) != 0)
                return len;
            return i + 1;
        }
    }
    if (emit(p, data + run, len - (p->match - p->held) - run) != 0)
        return len;
    p->held = p->match;
    return len;
}

/* Transport padding after a boundary, then its CRLF. */
static void pad(mp_parser *p, uint8_t c)
{
    if (p->state == S_PAD && (c == ' ' || c == '\t'))
        return;
    if (p->state == S_PAD && c == '\r')
        p->state = S_PAD_CR;
    else if (p->state == S_PAD_CR && c == '\n')
        open_headers(p);
    else
        fail(p, MP_MALFORMED, "junk after boundary");
}

int mp_feed(mp_parser *p, const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len && p->state != S_FAILED) {
        switch (p->state) {
        case S_PREAMBLE:
        case S_DATA:
            i = scan(p, data, len, i);
            break;
        case S_PAD:
        case S_PAD_CR:
            pad(p, data[i++]);
            break;
        case S_HEADERS:
            i = take_headers(p, data, len, i);
            break;
        case S_EPILOGUE:
        case S_FAILED:
            i = len;
            break;
        }
    }
    return p->result;
}

int mp_finish(mp_parser *p)
{
    if (p->state == S_FAILED || p->state == S_EPILOGUE)
        return p->result;
    if (p->state == S_PREAMBLE && p->parts == 0)
        return fail(p, MP_MALFORMED, "no multipart boundary found");
    return fail(p, MP_MALFORMED, "missing closing boundary");
}
