/* test_multipart.c - the contract of the incremental multipart/form-data parser.
 * Every body is parsed by a recorder that keeps each part's fields and bytes, so one
 * body fed whole, split, or byte by byte can be compared part for part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multipart.h"

#define B "----rzBoundary7MA4YWxk"
#define MAX_REC_PARTS (MP_MAX_PARTS + 2)

typedef struct {
    char name[256];
    int has_filename;
    char filename[1024];
    size_t filename_len;
    char content_type[256];
    uint8_t *data;
    size_t len, cap;
    int ended;
} rec_part;

typedef struct {
    rec_part parts[MAX_REC_PARTS];
    int nparts;
    int open;          /* a part has begun and not ended */
    int order_errors;  /* callbacks out of begin, data..., end order */
    int empty_runs;    /* on_part_data called with 0 bytes */
    int abort_begin, abort_data, abort_end; /* values to return, 0 = go on */
    const uint8_t *chunk; /* the chunk being fed, to check zero copy */
    size_t chunk_len;
    size_t outside_max; /* longest run not pointing into the fed chunk */
    int rc;
    char error[128];
} rec;

static int on_begin(void *user, const mp_part_info *info)
{
    rec *r = user;
    rec_part *p;

    if (r->open || r->nparts == MAX_REC_PARTS)
        r->order_errors++;
    if (r->nparts == MAX_REC_PARTS)
        return 99;
    p = &r->parts[r->nparts++];
    r->open = 1;
    snprintf(p->name, sizeof(p->name), "%s", info->name);
    p->has_filename = info->filename != NULL;
    if (info->filename != NULL && info->filename_len < sizeof(p->filename)) {
        memcpy(p->filename, info->filename, info->filename_len);
        p->filename_len = info->filename_len;
    }
    snprintf(p->content_type, sizeof(p->content_type), "%s", info->content_type);
    return r->abort_begin;
}

static int on_data(void *user, const uint8_t *data, size_t len)
{
    rec *r = user;
    rec_part *p = &r->parts[r->nparts - 1];

    if (!r->open)
        r->order_errors++;
    if (len == 0)
        r->empty_runs++;
    if (!(data >= r->chunk && data + len <= r->chunk + r->chunk_len) && len > r->outside_max)
        r->outside_max = len;
    if (p->len + len > p->cap) {
        p->cap = (p->len + len) * 2;
        p->data = realloc(p->data, p->cap);
        assert_non_null(p->data);
    }
    memcpy(p->data + p->len, data, len);
    p->len += len;
    return r->abort_data;
}

static int on_end(void *user)
{
    rec *r = user;

    if (!r->open)
        r->order_errors++;
    r->open = 0;
    r->parts[r->nparts - 1].ended = 1;
    return r->abort_end;
}

static const mp_callbacks rec_cb = {on_begin, on_data, on_end};

static void rec_free(rec *r)
{
    for (int i = 0; i < r->nparts; i++)
        free(r->parts[i].data);
}

static rec *rec_new(void)
{
    rec *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    return r;
}

static void rec_del(rec *r)
{
    rec_free(r);
    free(r);
}

/* Feeds body cut at the given offsets, each piece in its own exact-size allocation so
 * AddressSanitizer sees any read past a chunk. Returns the first failure or finish. */
static int parse_cuts(rec *r, const char *boundary, const void *body, size_t len,
                      const size_t *cuts, size_t ncuts)
{
    mp_parser *p = mp_new(boundary, &rec_cb, r);
    size_t from = 0;
    int rc = MP_OK;

    assert_non_null(p);
    for (size_t k = 0; k <= ncuts && rc == MP_OK; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        uint8_t *piece = malloc(to - from + 1);
        assert_non_null(piece);
        memcpy(piece, (const uint8_t *)body + from, to - from);
        r->chunk = piece;
        r->chunk_len = to - from;
        rc = mp_feed(p, piece, to - from);
        free(piece);
        from = to;
    }
    if (rc == MP_OK)
        rc = mp_finish(p);
    assert_int_equal(rc, mp_feed(p, (const uint8_t *)"x", 1)); /* failures stick */
    snprintf(r->error, sizeof(r->error), "%s", mp_error(p));
    mp_free(p);
    r->rc = rc;
    return rc;
}

static int parse(rec *r, const char *boundary, const char *body, size_t len)
{
    return parse_cuts(r, boundary, body, len, NULL, 0);
}

static int parse_str(rec *r, const char *body) { return parse(r, B, body, strlen(body)); }

static void assert_same(const rec *a, const rec *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->error, b->error);
    assert_int_equal(a->nparts, b->nparts);
    for (int i = 0; i < a->nparts; i++) {
        const rec_part *x = &a->parts[i], *y = &b->parts[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->has_filename, y->has_filename);
        assert_int_equal(x->filename_len, y->filename_len);
        assert_memory_equal(x->filename, y->filename, x->filename_len);
        assert_string_equal(x->content_type, y->content_type);
        assert_int_equal(x->len, y->len);
        if (x->len > 0)
            assert_memory_equal(x->data, y->data, x->len);
        assert_int_equal(x->ended, y->ended);
    }
    assert_int_equal(b->order_errors, 0);
    assert_int_equal(b->empty_runs, 0);
}

static void assert_part(const rec *r, int i, const char *name, const char *filename,
                        const char *data)
{
    const rec_part *p = &r->parts[i];

    assert_true(i < r->nparts);
    assert_string_equal(p->name, name);
    if (filename == NULL) {
        assert_false(p->has_filename);
    } else {
        assert_true(p->has_filename);
        assert_int_equal(p->filename_len, strlen(filename));
        assert_memory_equal(p->filename, filename, p->filename_len);
    }
    assert_int_equal(p->len, strlen(data));
    if (p->len > 0)
        assert_memory_equal(p->data, data, p->len);
    assert_true(p->ended);
}

static const char normal_body[] =
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"expiry\"\r\n"
    "\r\n"
    "30\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"uses\"\r\n"
    "\r\n"
    "3\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\n"
    "Content-Type: application/pdf\r\n"
    "\r\n"
    "%PDF-1.4\r\n\r\nbinary\r\n--not-it\r\n--" B "x\r\n"
    "--" B "--\r\n";

static const char tricky_data[] = "\r\n--\r\n--" B "-x\r\n--" B "\rz\r\n--" B "X\r\n--" B
                                   "\r\r\r\n\n--" B "\n\r\n--" B "-\r\n----rzBound\r\n\r";

/* ---- the happy path ---- */

static void two_fields_and_a_file_come_out_as_three_parts(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse(r, B, normal_body, sizeof(normal_body) - 1), MP_OK);
    assert_int_equal(r->nparts, 3);
    assert_part(r, 0, "expiry", NULL, "30");
    assert_part(r, 1, "uses", NULL, "3");
    assert_part(r, 2, "file", "report.pdf", "%PDF-1.4\r\n\r\nbinary\r\n--not-it\r\n--" B "x");
    assert_string_equal(r->parts[2].content_type, "application/pdf");
    assert_string_equal(r->parts[0].content_type, "");
    assert_string_equal(r->error, "");
    assert_int_equal(r->order_errors, 0);
    rec_del(r);
}

static void fields_may_come_after_the_file(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                                  "\r\n"
                                  "hello\r\n"
                                  "--" B "\r\n"
                                  "Content-Disposition: form-data; name=\"uses\"\r\n"
                                  "\r\n"
                                  "2\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_int_equal(r->nparts, 2);
    assert_part(r, 0, "file", "a.txt", "hello");
    assert_part(r, 1, "uses", NULL, "2");
    rec_del(r);
}

static void preamble_epilogue_and_transport_padding_are_ignored(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "This is the preamble.\r\n--" B "x is not it\r\n"
                                  "--" B " \t \r\n"
                                  "Content-Disposition: form-data; name=a\r\n"
                                  "\r\n"
                                  "1\r\n"
                                  "--" B "\t\r\n"
                                  "Content-Disposition: form-data; name=b\r\n"
                                  "\r\n"
                                  "2\r\n"
                                  "--" B "-- \r\nepilogue\r\n--" B "\r\ngarbage"),
                     MP_OK);
    assert_int_equal(r->nparts, 2);
    assert_part(r, 0, "a", NULL, "1");
    assert_part(r, 1, "b", NULL, "2");
    rec_del(r);
}

static void junk_after_a_padded_boundary_is_malformed(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "  x\r\n"
                                  "Content-Disposition: form-data; name=a\r\n\r\n1\r\n--" B "--"),
                     MP_MALFORMED);
    assert_string_equal(r->error, "junk after boundary");
    rec_del(r);
}

static void header_names_are_case_insensitive_and_unknown_headers_ignored(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "X-Whatever: form-data; name=\"nope\"\r\n"
                                  "cOnTeNt-DiSpOsItIoN:form-data;NAME=\"f\";FileName=\"x.bin\"  \r\n"
                                  "CONTENT-TYPE:   image/png; q=1\t\r\n"
                                  "Content-Transfer-Encoding: binary\r\n"
                                  "\r\n"
                                  "PNG\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "f", "x.bin", "PNG");
    assert_string_equal(r->parts[0].content_type, "image/png; q=1");
    rec_del(r);
}

static void unquoted_parameters_are_accepted(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data ; name = file ;filename=a.tar.gz;\r\n"
                                  "\r\n"
                                  "z\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "file", "a.tar.gz", "z");
    rec_del(r);
}

/* ---- chunking never changes the result ---- */

static void check_every_split(const char *boundary, const char *body, size_t len)
{
    rec *whole = rec_new();

    parse(whole, boundary, body, len);
    assert_int_equal(whole->outside_max, 0); /* fed whole, nothing is ever copied */
    for (size_t cut = 0; cut <= len; cut++) {
        rec *r = rec_new();
        parse_cuts(r, boundary, body, len, &cut, 1);
        assert_same(whole, r);
        /* Only bytes held back as a possible delimiter may come from elsewhere. */
        assert_true(r->outside_max <= 4 + strlen(boundary) + 1);
        rec_del(r);
    }
    rec_del(whole);
}

static void check_bytewise(const char *boundary, const char *body, size_t len)
{
    rec *whole = rec_new(), *r = rec_new();
    size_t *cuts = malloc(len * sizeof(*cuts) + 1);

    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    parse(whole, boundary, body, len);
    parse_cuts(r, boundary, body, len, cuts, len);
    assert_same(whole, r);
    free(cuts);
    rec_del(whole);
    rec_del(r);
}

static void boundary_split_at_every_offset_yields_the_same_parts(void **state)
{
    char body[1024];
    int n = snprintf(body, sizeof(body),
                     "preamble\r\n--" B "\r\nContent-Disposition: form-data; name=\"file\"; "
                     "filename=\"t.bin\"\r\n\r\n%s\r\n--" B "--\r\n",
                     tricky_data);
    (void)state;

    check_every_split(B, normal_body, sizeof(normal_body) - 1);
    check_every_split(B, body, (size_t)n);
    check_every_split(B, body, (size_t)n - 4); /* ends without its closing boundary */
}

static void one_byte_at_a_time_yields_the_same_parts(void **state)
{
    (void)state;
    check_bytewise(B, normal_body, sizeof(normal_body) - 1);
    check_bytewise(B, normal_body, 60); /* cut inside the first part's headers */
}

static void data_with_crlfs_dashes_and_boundary_prefixes_is_kept_byte_for_byte(void **state)
{
    char body[1024];
    int n = snprintf(body, sizeof(body),
                     "--" B "\r\nContent-Disposition: form-data; name=\"file\"; "
                     "filename=\"t.bin\"\r\n\r\n%s\r\n--" B "--\r\n",
                     tricky_data);
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse(r, B, body, (size_t)n), MP_OK);
    assert_int_equal(r->nparts, 1);
    assert_part(r, 0, "file", "t.bin", tricky_data);
    rec_del(r);
}

static void data_beginning_with_the_boundary_but_no_crlf_is_data(void **state)
{
    rec *r = rec_new();
    (void)state;

    /* The blank line's CRLF ends the headers; the delimiter needs one of its own. */
    assert_int_equal(parse_str(r, "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                                  "--" B "\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "a", NULL, "--" B);
    rec_del(r);
}

/* Random bytes rich in CR, LF, dashes and boundary pieces survive any chunking. */
static void random_binary_data_survives_any_chunking(void **state)
{
    static const char alphabet[] = "\r\n-- \t" B "\0\xff";
    const char *head = "--" B "\r\nContent-Disposition: form-data; name=\"f\"; "
                       "filename=\"r\"\r\n\r\n";
    const char *tail = "\r\n--" B "--";
    char data[2048], body[4096], *hit;
    unsigned seed = 12345;
    (void)state;

    for (int round = 0; round < 40; round++) {
        size_t dlen = (size_t)(round * 37 % 400) + 1, hl = strlen(head), n;
        for (size_t i = 0; i < dlen; i++) {
            seed = seed * 1103515245u + 12345u;
            data[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        /* A whole delimiter in the data would end the part: break any that occur. */
        while ((hit = memmem(data, dlen, "\r\n--" B, strlen(B) + 4)) != NULL)
            hit[2] = 'x';
        memcpy(body, head, hl);
        memcpy(body + hl, data, dlen);
        memcpy(body + hl + dlen, tail, strlen(tail));
        n = hl + dlen + strlen(tail);

        rec *r = rec_new();
        assert_int_equal(parse(r, B, body, n), MP_OK);
        assert_int_equal(r->parts[0].len, dlen);
        assert_memory_equal(r->parts[0].data, data, dlen);
        rec_del(r);
        check_bytewise(B, body, n);
        if (round % 8 == 0)
            check_every_split(B, body, n);
    }
}

/* ---- boundaries ---- */

static void boundary_is_taken_from_content_type_quoted_or_not(void **state)
{
    char out[MP_MAX_BOUNDARY + 1];
    const char *ct;
    (void)state;

#define BOUNDARY_IS(s, want)                                                                 \
    do {                                                                                     \
        ct = (s);                                                                            \
        assert_int_equal(mp_boundary(ct, strlen(ct), out), 0);                               \
        assert_string_equal(out, (want));                                                    \
    } while (0)
#define NO_BOUNDARY(s)                                                                       \
    do {                                                                                     \
        ct = (s);                                                                            \
        assert_int_equal(mp_boundary(ct, strlen(ct), out), -1);                              \
    } while (0)

    BOUNDARY_IS("multipart/form-data; boundary=abc", "abc");
    BOUNDARY_IS("multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
                "----WebKitFormBoundary7MA4YWxkTrZu0gW");
    BOUNDARY_IS("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b:c=d\"; x=y", "a b:c=d");
    BOUNDARY_IS("  multipart/form-data ;  boundary = \"q\\\"x\"  ; ", "q\"x");
    BOUNDARY_IS("multipart/form-data; boundary=----=_Part_0_1.2", "----=_Part_0_1.2");
    BOUNDARY_IS("multipart/form-data; boundary=\"" /* 70 characters, the most allowed */
                "0123456789012345678901234567890123456789012345678901234567890123456789\"",
                "0123456789012345678901234567890123456789012345678901234567890123456789");
    NO_BOUNDARY("multipart/form-data; boundary="
                "01234567890123456789012345678901234567890123456789012345678901234567890");
    NO_BOUNDARY("multipart/mixed; boundary=abc");
    NO_BOUNDARY("text/plain; boundary=abc");
    NO_BOUNDARY("multipart/form-data-x; boundary=abc");
    NO_BOUNDARY("multipart/form-data");
    NO_BOUNDARY("multipart/form-data; charset=utf-8");
    NO_BOUNDARY("multipart/form-data; boundary=");
    NO_BOUNDARY("multipart/form-data; boundary=\"\"");
    NO_BOUNDARY("multipart/form-data; boundary=\"abc");
    NO_BOUNDARY("multipart/form-data; boundary=\"ends in space \"");
    NO_BOUNDARY("multipart/form-data; boundary=a; boundary=b");
    NO_BOUNDARY("multipart/form-data; boundary=abc junk");
    NO_BOUNDARY("");
    /* Only len bytes are read: the rest of the buffer is not part of the value. */
    assert_int_equal(mp_boundary("multipart/form-data; boundary=abcdef", 33, out), 0);
    assert_string_equal(out, "abc");
#undef BOUNDARY_IS
#undef NO_BOUNDARY
}

static void a_quoted_boundary_with_spaces_parses_a_body(void **state)
{
    const char *ct = "multipart/form-data; boundary=\"sp ace:/\"";
    char b[MP_MAX_BOUNDARY + 1];
    rec *r = rec_new();
    (void)state;

    assert_int_equal(mp_boundary(ct, strlen(ct), b), 0);
    const char *body = "--sp ace:/\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                       "v\r\n--sp ace:/--";
    assert_int_equal(parse(r, b, body, strlen(body)), MP_OK);
    assert_part(r, 0, "a", NULL, "v");
    rec_del(r);
}

static void parser_refuses_a_boundary_it_could_not_match(void **state)
{
    (void)state;
    assert_null(mp_new("", &rec_cb, NULL));
    assert_null(mp_new("a\rb", &rec_cb, NULL));
    assert_null(mp_new("a\nb", &rec_cb, NULL));
    assert_null(mp_new("trailing ", &rec_cb, NULL));
    assert_null(mp_new("01234567890123456789012345678901234567890123456789012345678901234567890",
                       &rec_cb, NULL));
}

/* ---- file names ---- */

static void filename_star_is_preferred_over_filename(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=a; filename=\"plain.txt\"; "
                                  "filename*=UTF-8''%e2%82%AC%20rates.txt\r\n\r\n1\r\n"
                                  "--" B "\r\n"
                                  "Content-Disposition: form-data; name=b; "
                                  "filename*=utf-8'en'caf%C3%A9.txt; filename=\"plain.txt\"\r\n\r\n2\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "a", "\xe2\x82\xac rates.txt", "1");
    assert_part(r, 1, "b", "caf\xc3\xa9.txt", "2");
    rec_del(r);
}

static void filename_star_in_another_charset_is_ignored(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=a; "
                                  "filename*=iso-8859-1''caf%E9.txt; filename=cafe.txt\r\n\r\n1\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "a", "cafe.txt", "1");
    rec_del(r);
}

static void broken_filename_star_is_malformed(void **state)
{
    static const char *const values[] = {"UTF-8''a%2", "UTF-8''a%zz", "UTF-8'a.txt", "a.txt"};
    (void)state;

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char body[512];
        rec *r = rec_new();
        snprintf(body, sizeof(body),
                 "--" B "\r\nContent-Disposition: form-data; name=a; filename*=%s\r\n\r\n"
                 "1\r\n--" B "--",
                 values[i]);
        assert_int_equal(parse_str(r, body), MP_MALFORMED);
        assert_string_equal(r->error, "bad filename* parameter");
        rec_del(r);
    }
}

static void escaped_quotes_in_filename_are_unescaped(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=\"a\\\"b\"; "
                                  "filename=\"say \\\"hi\\\" \\\\ bye;.txt\"\r\n\r\n1\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "a\"b", "say \"hi\" \\ bye;.txt", "1");
    rec_del(r);
}

static void filename_with_dot_dot_is_reported_as_sent(void **state)
{
    rec *r = rec_new();
    (void)state;

    /* Making a name safe to store or serve is the caller's job, not the parser's. */
    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=file; "
                                  "filename=\"../../etc/passwd\"\r\n\r\nroot\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "file", "../../etc/passwd", "root");
    rec_del(r);
}

static void raw_cr_or_lf_in_a_header_is_malformed(void **state)
{
    static const char *const names[] = {"a\rb", "a\nb", "a\r\nb"};
    (void)state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char body[512];
        rec *r = rec_new();
        snprintf(body, sizeof(body),
                 "--" B "\r\nContent-Disposition: form-data; name=a; filename=\"%s\"\r\n\r\n"
                 "1\r\n--" B "--",
                 names[i]);
        assert_int_equal(parse_str(r, body), MP_MALFORMED);
        assert_int_equal(r->nparts, 0);
        rec_del(r);
    }
}

static void encoded_cr_lf_in_filename_star_is_passed_on(void **state)
{
    rec *r = rec_new();
    (void)state;

    /* Only NUL is refused; the download side keeps control bytes out of its headers. */
    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=a; "
                                  "filename*=UTF-8''a%0D%0Ab.txt\r\n\r\n1\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "a", "a\r\nb.txt", "1");
    rec_del(r);
}

static void nul_in_filename_is_malformed(void **state)
{
    const char raw[] = "--" B "\r\nContent-Disposition: form-data; name=a; filename=\"a\0b\"\r\n\r\n"
                       "1\r\n--" B "--";
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=a; "
                                  "filename*=UTF-8''a%00b.txt\r\n\r\n1\r\n"
                                  "--" B "--"),
                     MP_MALFORMED);
    assert_string_equal(r->error, "NUL in filename");
    rec_del(r);

    r = rec_new();
    assert_int_equal(parse(r, B, raw, sizeof(raw) - 1), MP_MALFORMED);
    assert_string_equal(r->error, "NUL in part header");
    rec_del(r);
}

static void part_without_filename_has_null_filename(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=expiry\r\n\r\n5\r\n"
                                  "--" B "\r\n"
                                  "Content-Disposition: form-data; name=file; filename=\"\"\r\n"
                                  "\r\n\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_part(r, 0, "expiry", NULL, "5");
    assert_part(r, 1, "file", "", ""); /* present but empty: not the same as absent */
    rec_del(r);
}

/* ---- malformed bodies ---- */

static void missing_name_is_malformed(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; filename=\"a.txt\"\r\n\r\n1\r\n"
                                  "--" B "--"),
                     MP_MALFORMED);
    assert_string_equal(r->error, "part without a name");
    assert_int_equal(r->nparts, 0);
    rec_del(r);
}

static void broken_part_headers_are_malformed(void **state)
{
    static const struct {
        const char *headers, *error;
    } cases[] = {
        {"", "part without Content-Disposition"},
        {"Content-Type: text/plain\r\n", "part without Content-Disposition"},
        {"Content-Disposition form-data; name=a\r\n", "bad part header"},
        {": x\r\nContent-Disposition: form-data; name=a\r\n", "bad part header"},
        {"Content-Disposition: form-data;\r\n name=a\r\n", "folded part header"},
        {"Content-Disposition: form-data name=a\r\n", "bad Content-Disposition"},
        {"Content-Disposition: ; name=a\r\n", "bad Content-Disposition"},
        {"Content-Disposition: form-data; name=\"a\r\n", "bad Content-Disposition"},
        {"Content-Disposition: form-data; name\r\n", "bad Content-Disposition"},
        {"Content-Disposition: form-data; name=\r\n", "bad Content-Disposition"},
        {"Content-Disposition: form-data; name=a; name=b\r\n", "duplicate name parameter"},
        {"Content-Disposition: form-data; name=a; filename=x; filename=y\r\n",
         "duplicate filename parameter"},
        {"Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n",
         "duplicate Content-Disposition"},
        {"Content-Disposition: form-data; name=a\r\nContent-Type: a\r\nContent-Type: b\r\n",
         "duplicate Content-Type"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        rec *r = rec_new();
        snprintf(body, sizeof(body), "--" B "\r\n%s\r\n1\r\n--" B "--", cases[i].headers);
        assert_int_equal(parse_str(r, body), MP_MALFORMED);
        assert_string_equal(r->error, cases[i].error);
        rec_del(r);
    }
}

static void missing_closing_boundary_fails_at_finish(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                                  "data\r\n--" B),
                     MP_MALFORMED);
    assert_string_equal(r->error, "missing closing boundary");
    assert_int_equal(r->nparts, 1);
    assert_false(r->parts[0].ended);
    rec_del(r);

    r = rec_new();
    assert_int_equal(parse_str(r, "no boundary at all\r\n"), MP_MALFORMED);
    assert_string_equal(r->error, "no multipart boundary found");
    rec_del(r);

    r = rec_new();
    assert_int_equal(parse_str(r, ""), MP_MALFORMED);
    rec_del(r);
}

static char *header_of_size(size_t total)
{
    /* A Content-Disposition line plus one filler header, exactly `total` bytes with
     * the blank line. */
    const char *cd = "Content-Disposition: form-data; name=a\r\n";
    const char *x = "X-Pad: ";
    size_t fill = total - strlen(cd) - strlen(x) - 4;
    char *h = malloc(total + 1);

    assert_non_null(h);
    strcpy(h, cd);
    strcat(h, x);
    memset(h + strlen(h), 'p', fill);
    strcpy(h + strlen(cd) + strlen(x) + fill, "\r\n\r\n");
    assert_int_equal(strlen(h), total);
    return h;
}

static void part_header_larger_than_the_limit_is_refused(void **state)
{
    char *h, *body;
    rec *r;
    (void)state;

    for (size_t total = MP_MAX_PART_HEADER; total <= MP_MAX_PART_HEADER + 1; total++) {
        h = header_of_size(total);
        body = malloc(total + 128);
        assert_non_null(body);
        sprintf(body, "--" B "\r\n%s1\r\n--" B "--", h);
        r = rec_new();
        if (total == MP_MAX_PART_HEADER) {
            assert_int_equal(parse_str(r, body), MP_OK);
            assert_part(r, 0, "a", NULL, "1");
        } else {
            assert_int_equal(parse_str(r, body), MP_MALFORMED);
            assert_string_equal(r->error, "part header too large");
        }
        rec_del(r);
        free(body);
        free(h);
    }
}

static void more_than_the_maximum_parts_is_refused(void **state)
{
    const char *one = "--" B "\r\nContent-Disposition: form-data; name=p\r\n\r\nv\r\n";
    size_t n = strlen(one);
    char *body = malloc(n * (MP_MAX_PARTS + 1) + 64);
    rec *r;
    (void)state;

    assert_non_null(body);
    for (int i = 0; i <= MP_MAX_PARTS; i++)
        memcpy(body + n * (size_t)i, one, n);

    strcpy(body + n * MP_MAX_PARTS, "--" B "--");
    r = rec_new();
    assert_int_equal(parse_str(r, body), MP_OK);
    assert_int_equal(r->nparts, MP_MAX_PARTS);
    rec_del(r);

    memcpy(body + n * MP_MAX_PARTS, one, n);
    strcpy(body + n * (MP_MAX_PARTS + 1), "--" B "--");
    r = rec_new();
    assert_int_equal(parse_str(r, body), MP_MALFORMED);
    assert_string_equal(r->error, "too many parts");
    assert_int_equal(r->nparts, MP_MAX_PARTS);
    rec_del(r);
    free(body);
}

/* ---- callbacks ---- */

static void empty_file_part_still_begins_and_ends(void **state)
{
    rec *r = rec_new();
    (void)state;

    assert_int_equal(parse_str(r, "--" B "\r\n"
                                  "Content-Disposition: form-data; name=file; filename=empty.txt\r\n"
                                  "\r\n\r\n"
                                  "--" B "--"),
                     MP_OK);
    assert_int_equal(r->nparts, 1);
    assert_part(r, 0, "file", "empty.txt", "");
    assert_int_equal(r->empty_runs, 0);
    rec_del(r);
}

static void callback_abort_value_is_returned_and_sticks(void **state)
{
    rec *r;
    (void)state;

    r = rec_new();
    r->abort_begin = 7;
    assert_int_equal(parse(r, B, normal_body, sizeof(normal_body) - 1), 7);
    assert_int_equal(r->nparts, 1);
    assert_false(r->parts[0].ended);
    assert_string_equal(r->error, "stopped by callback");
    rec_del(r);

    r = rec_new();
    r->abort_data = 8;
    assert_int_equal(parse(r, B, normal_body, sizeof(normal_body) - 1), 8);
    assert_int_equal(r->nparts, 1);
    assert_false(r->parts[0].ended);
    rec_del(r);

    r = rec_new();
    r->abort_end = -9;
    assert_int_equal(parse(r, B, normal_body, sizeof(normal_body) - 1), -9);
    assert_int_equal(r->nparts, 1);
    assert_true(r->parts[0].ended);
    rec_del(r);
}

static void error_is_empty_until_something_fails(void **state)
{
    rec *r = rec_new();
    mp_parser *p = mp_new(B, &rec_cb, r);
    (void)state;

    assert_non_null(p);
    assert_string_equal(mp_error(p), "");
    assert_int_equal(mp_feed(p, (const uint8_t *)"--" B "\r\n", strlen(B) + 4), MP_OK);
    assert_string_equal(mp_error(p), "");
    assert_int_equal(mp_finish(p), MP_MALFORMED);
    assert_string_not_equal(mp_error(p), "");
    mp_free(p);
    rec_del(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_fields_and_a_file_come_out_as_three_parts),
        cmocka_unit_test(fields_may_come_after_the_file),
        cmocka_unit_test(preamble_epilogue_and_transport_padding_are_ignored),
        cmocka_unit_test(junk_after_a_padded_boundary_is_malformed),
        cmocka_unit_test(header_names_are_case_insensitive_and_unknown_headers_ignored),
        cmocka_unit_test(unquoted_parameters_are_accepted),
        cmocka_unit_test(boundary_split_at_every_offset_yields_the_same_parts),
        cmocka_unit_test(one_byte_at_a_time_yields_the_same_parts),
        cmocka_unit_test(data_with_crlfs_dashes_and_boundary_prefixes_is_kept_byte_for_byte),
        cmocka_unit_test(data_beginning_with_the_boundary_but_no_crlf_is_data),
        cmocka_unit_test(random_binary_data_survives_any_chunking),
        cmocka_unit_test(boundary_is_taken_from_content_type_quoted_or_not),
        cmocka_unit_test(a_quoted_boundary_with_spaces_parses_a_body),
        cmocka_unit_test(parser_refuses_a_boundary_it_could_not_match),
        cmocka_unit_test(filename_star_is_preferred_over_filename),
        cmocka_unit_test(filename_star_in_another_charset_is_ignored),
        cmocka_unit_test(broken_filename_star_is_malformed),
        cmocka_unit_test(escaped_quotes_in_filename_are_unescaped),
        cmocka_unit_test(filename_with_dot_dot_is_reported_as_sent),
        cmocka_unit_test(raw_cr_or_lf_in_a_header_is_malformed),
        cmocka_unit_test(encoded_cr_lf_in_filename_star_is_passed_on),
        cmocka_unit_test(nul_in_filename_is_malformed),
        cmocka_unit_test(part_without_filename_has_null_filename),
        cmocka_unit_test(missing_name_is_malformed),
        cmocka_unit_test(broken_part_headers_are_malformed),
        cmocka_unit_test(missing_closing_boundary_fails_at_finish),
        cmocka_unit_test(part_header_larger_than_the_limit_is_refused),
        cmocka_unit_test(more_than_the_maximum_parts_is_refused),
        cmocka_unit_test(empty_file_part_still_begins_and_ends),
        cmocka_unit_test(callback_abort_value_is_returned_and_sticks),
        cmocka_unit_test(error_is_empty_until_something_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
