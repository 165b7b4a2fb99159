/* multipart.h - an incremental multipart/form-data parser (RFC 7578).
 *
 * Feed it the body in chunks of any size; it calls back at each part's start (with
 * its decoded name and filename), for each run of part data, and at each part's end.
 * It copies no part data: callbacks get pointers into the fed chunk, except for the
 * few bytes held back because they might start a boundary. */
#ifndef RZ_MULTIPART_H
#define RZ_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_BOUNDARY 70          /* RFC 2046 */
#define MP_MAX_PART_HEADER 8192     /* bytes of one part's header block */
#define MP_MAX_PARTS 64

typedef struct {
    const char *name;      /* form field name, NUL-terminated, never NULL */
    const char *filename;  /* NULL when the part has no filename parameter; may hold
                            * any bytes but NUL (filename* is decoded and preferred) */
    size_t filename_len;
    const char *content_type; /* "" when absent */
} mp_part_info;

typedef struct {
    /* Each returns 0 to go on, anything else to stop parsing (mp_feed returns it). */
    int (*on_part_begin)(void *user, const mp_part_info *info);
    int (*on_part_data)(void *user, const uint8_t *data, size_t len);
    int (*on_part_end)(void *user);
} mp_callbacks;

enum { MP_OK = 0, MP_MALFORMED = -1, MP_NOMEM = -2 };

typedef struct mp_parser mp_parser;

/* Boundary from a Content-Type value ("multipart/form-data; boundary=..." quoted or
 * not). Writes it NUL-terminated to out (MP_MAX_BOUNDARY + 1); 0, or -1 when the type
 * is not multipart/form-data or the boundary is missing, empty or too long. */
int mp_boundary(const char *content_type, size_t len, char *out);

mp_parser *mp_new(const char *boundary, const mp_callbacks *cb, void *user);
void mp_free(mp_parser *p);
/* MP_OK, MP_MALFORMED, MP_NOMEM, or a callback's non-zero return. After any non-OK
 * result the parser stays failed. */
int mp_feed(mp_parser *p, const uint8_t *data, size_t len);
/* After the last chunk: MP_OK only when the closing boundary was seen. */
int mp_finish(mp_parser *p);
/* Why the parser failed, for logs and the 422 detail ("" when it has not). */
const char *mp_error(const mp_parser *p);

#endif
