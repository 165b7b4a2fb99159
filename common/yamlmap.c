/* yamlmap.c - the configuration file's YAML: one mapping of names to scalars or lists
 * of scalars, read with libyaml's event parser into memory first, then walked pair by
 * pair into the caller's callbacks. Owns the file's shape and the place (FILE:LINE, and
 * the column of a syntax error) in its error lines; not what a name means. */
#include "yamlmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

#define MSG_MAX 1024

typedef struct {
    const char *path;
    const yamlmap_callbacks *cb;
    void *ctx;
    char *err;
    size_t errlen;
    yaml_event_t *ev; /* every event of the file, STREAM_START to STREAM_END */
    size_t n, cap;
    size_t at; /* the next event to walk */
} reader;

__attribute__((format(printf, 3, 4))) static int fail(reader *r, size_t line, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    util_errf(r->err, r->errlen, "%s:%zu: %s", r->path, line, msg);
    return -1;
}

/* ---- parsing: the whole file, before any callback ---- */

/* The character at a libyaml mark's index (characters from the start, a byte order
 * mark not counted), or EOF. */
static int char_at(FILE *f, size_t index)
{
    int ch;
    size_t seen = 0;
    rewind(f);
    if ((ch = getc(f)) == 0xef && getc(f) == 0xbb && getc(f) == 0xbf)
        ch = getc(f);
    for (; ch != EOF; ch = getc(f))
        if ((ch & 0xc0) != 0x80 && seen++ == index)
            return ch;
    return EOF;
}

/* Line and column (1-based, in characters) of a byte offset: libyaml gives only the
 * offset for an encoding error. */
static void locate(FILE *f, size_t offset, size_t *line, size_t *col)
{
    int ch;
    *line = *col = 1;
    rewind(f);
    for (size_t i = 0; i < offset && (ch = getc(f)) != EOF; i++) {
        if (ch == '\n') {
            ++*line;
            *col = 1;
        } else if ((ch & 0xc0) != 0x80) {
            ++*col;
        }
    }
}

/* "FILE:LINE:COLUMN: YAML syntax error: " and libyaml's problem, with the line of what
 * it was reading when that began elsewhere. */
static int syntax_error(reader *r, const yaml_parser_t *p, FILE *f)
{
    const char *problem = p->problem != NULL ? p->problem : "cannot parse";
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    char context[MSG_MAX] = "";
    const char *hint = "";
    if (p->error == YAML_MEMORY_ERROR) {
        util_errf(r->err, r->errlen, "%s: out of memory", r->path);
        return -1;
    }
    if (p->error == YAML_READER_ERROR)
        locate(f, p->problem_offset, &line, &col);
    else if (char_at(f, p->problem_mark.index) == '\t')
        hint = "; YAML indents with spaces, not tabs";
    if (p->context != NULL && p->context_mark.line + 1 != line)
        snprintf(context, sizeof context, " (%s at line %zu)", p->context, p->context_mark.line + 1);
    util_errf(r->err, r->errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", r->path, line, col, problem, context,
            hint);
    return -1;
}

static int parse_file(reader *r, FILE *f)
{
    yaml_parser_t p;
    int rc = -1;
    if (!yaml_parser_initialize(&p)) {
        util_errf(r->err, r->errlen, "%s: out of memory", r->path);
        return -1;
    }
    yaml_parser_set_input_file(&p, f);
    for (;;) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            yaml_event_t *ev = realloc(r->ev, cap * sizeof *ev);
            if (ev == NULL) {
                util_errf(r->err, r->errlen, "%s: out of memory", r->path);
                break;
            }
            r->ev = ev;
            r->cap = cap;
        }
        if (!yaml_parser_parse(&p, &r->ev[r->n])) {
            syntax_error(r, &p, f);
            break;
        }
        if (r->ev[r->n++].type == YAML_STREAM_END_EVENT) {
            rc = 0;
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---- walking the events ---- */

/* The parser balanced every start with its end, so the walk cannot run off the end;
 * should it try, it stays on STREAM_END. */
static const yaml_event_t *next(reader *r)
{
    return &r->ev[r->at < r->n ? r->at++ : r->n - 1];
}

static size_t line_of(const yaml_event_t *e)
{
    return e->start_mark.line + 1;
}

/* A scalar's text; a YAML null ("", "~", "null") is "". NULL when it holds a NUL byte,
 * which a C string cannot carry. */
static const char *scalar_text(const yaml_event_t *e)
{
    const char *v = (const char *)e->data.scalar.value;
    if (strlen(v) != e->data.scalar.length)
        return NULL;
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0))
        return "";
    return v;
}

static const char *kind(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias";
    case YAML_SCALAR_EVENT:
        return "a single value";
    default:
        return "this";
    }
}

/* The items of a list, the current event being its start; line is its name's. */
static int read_list(reader *r, const char *name, size_t line)
{
    size_t first = r->at, n = 0;
    const yaml_event_t *e;
    char msg[MSG_MAX];
    while ((e = next(r))->type != YAML_SEQUENCE_END_EVENT) {
        if (e->type != YAML_SCALAR_EVENT)
            return fail(r, line_of(e), "%s: expected plain values in the list, not %s", name, kind(e));
        if (scalar_text(e) == NULL)
            return fail(r, line_of(e), "%s: a value contains a NUL byte", name);
        n++;
    }
    const char **items = n > 0 ? calloc(n, sizeof *items) : NULL;
    if (n > 0 && items == NULL)
        return fail(r, line, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++)
        items[i] = scalar_text(&r->ev[first + i]);
    int rc = r->cb->on_value(r->ctx, items, n, true, msg, sizeof msg);
    free(items);
    return rc != 0 ? fail(r, line, "%s", msg) : 0;
}

/* One NAME: value pair, key being its name's event. */
static int read_pair(reader *r, const yaml_event_t *key)
{
    size_t line = line_of(key);
    char msg[MSG_MAX];
    if (key->type != YAML_SCALAR_EVENT)
        return fail(r, line, "expected a setting name, not %s", kind(key));
    if (strlen((const char *)key->data.scalar.value) != key->data.scalar.length)
        return fail(r, line, "a setting name contains a NUL byte");
    const char *name = r->cb->on_key(r->ctx, (const char *)key->data.scalar.value, line, msg, sizeof msg);
    if (name == NULL)
        return fail(r, line, "%s", msg);
    const yaml_event_t *v = next(r);
    if (v->type == YAML_SEQUENCE_START_EVENT)
        return read_list(r, name, line);
    if (v->type != YAML_SCALAR_EVENT)
        return fail(r, line, "%s: expected a value or a list of values, not %s", name, kind(v));
    const char *text = scalar_text(v);
    if (text == NULL)
        return fail(r, line, "%s: the value contains a NUL byte", name);
    if (r->cb->on_value(r->ctx, &text, 1, false, msg, sizeof msg) != 0)
        return fail(r, line, "%s", msg);
    return 0;
}

static int read_document(reader *r)
{
    const yaml_event_t *e;
    next(r); /* stream start */
    if (next(r)->type == YAML_STREAM_END_EVENT)
        return 0; /* no document at all: an empty or all-comment file */
    e = next(r);
    if (e->type == YAML_MAPPING_START_EVENT) {
        while ((e = next(r))->type != YAML_MAPPING_END_EVENT)
            if (read_pair(r, e) != 0)
                return -1;
    } else if (!(e->type == YAML_SCALAR_EVENT && scalar_text(e) != NULL && scalar_text(e)[0] == '\0')) {
        /* "---" and nothing else is an empty document */
        return fail(r, line_of(e), "expected a mapping of settings (NAME: value), not %s", kind(e));
    }
    next(r); /* document end */
    e = next(r);
    if (e->type != YAML_STREAM_END_EVENT)
        return fail(r, line_of(e), "expected one document");
    return 0;
}

int yamlmap_read(const char *path, const yamlmap_callbacks *cb, void *ctx, char *err, size_t errlen)
{
    reader r = {.path = path, .cb = cb, .ctx = ctx, .err = err, .errlen = errlen};
    FILE *f = fopen(path, "rb");
    int rc;
    if (f == NULL) {
        util_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    rc = parse_file(&r, f);
    fclose(f);
    if (rc == 0)
        rc = read_document(&r);
    for (size_t i = 0; i < r.n; i++)
        yaml_event_delete(&r.ev[i]);
    free(r.ev);
    return rc;
}
