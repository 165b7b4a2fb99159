/* framing.h - an HTTP/1 request head read from its raw bytes: where it ends, and
 * whether its message framing is one two HTTP parsers could read two ways (RFC 9112
 * §6.3, §5.2, §2.2), the ground of request smuggling.
 *
 * libh2o 2.2.5 passes such requests to its handler: of two Content-Length fields it
 * takes the first, of Content-Length and Transfer-Encoding the chunked coding, and a
 * folded line or a bare LF it reads its own way; then it goes on to the next request on
 * the connection. A proxy in front may have read the same bytes otherwise. The worker
 * checks the head here and refuses such a request with 400 and a close. Pure: bytes in,
 * verdict out; knows nothing of sockets or h2o. */
#ifndef RZ_FRAMING_H
#define RZ_FRAMING_H

#include <stddef.h>

typedef enum {
    FRAMING_OK,
    FRAMING_INCOMPLETE,        /* no empty line ends the head within the bytes */
    FRAMING_BARE_LF,           /* a line ends in LF without CR */
    FRAMING_OBS_FOLD,          /* a header line continues the one before (obs-fold) */
    FRAMING_LENGTHS,           /* Content-Length more than once, equal values or not */
    FRAMING_CODINGS,           /* Transfer-Encoding more than once */
    FRAMING_LENGTH_AND_CODING, /* Content-Length and Transfer-Encoding */
    FRAMING_CODING_IN_HTTP10,  /* Transfer-Encoding in an HTTP/1.0 request */
} framing_verdict;

/* Bytes of the head at the start of p (request line, header lines, the empty line), or
 * 0 while it has not all arrived. Lines may end in a bare LF, as libh2o reads them, and
 * one empty line before the request line is skipped, as libh2o skips it. */
size_t framing_head_end(const char *p, size_t len);

/* The verdict on the head at the start of p; http10: the request line said HTTP/1.0. */
framing_verdict framing_check(const char *p, size_t len, int http10);

/* What is wrong, for the 400's detail ("" for FRAMING_OK). */
const char *framing_reason(framing_verdict v);

#endif
