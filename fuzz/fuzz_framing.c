/* fuzz_framing.c - libFuzzer target for the HTTP/1 request head reader (framing.h): any
 * bytes, as a client sends them.
 *
 * Each input is copied into an allocation of exactly its size, so a read past the end
 * is caught. Properties:
 *   - framing_head_end is 0 or ends the head on an LF within the input, and the head
 *     alone reads as the same head, a byte less as none;
 *   - framing_check gives a known verdict, INCOMPLETE only where no head ends, and the
 *     same verdict on the head alone: what follows a head (a body, the next request)
 *     never changes it;
 *   - a head that passes the check has every line ended by CR LF, and neither two
 *     framing fields nor a folded line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The passing head's lines, read a second way: by the CR LF pairs. */
static void check_passing_head(const char *p, size_t end)
{
    unsigned lengths = 0, codings = 0;
    size_t pos = 0;
    if (end >= 2 && p[0] == '\r' && p[1] == '\n')
        pos = 2; /* the one empty line allowed before the request line */
    for (int first = 1; pos < end; first = 0) {
        const char *lf = memchr(p + pos, '\n', end - pos);
        if (lf == NULL || lf == p + pos || lf[-1] != '\r')
            abort();
        size_t len = (size_t)(lf - (p + pos)) - 1;
        if (!first && len > 0) {
            if (p[pos] == ' ' || p[pos] == '\t')
                abort();
            if (len > 14 && p[pos + 14] == ':' && strncasecmp(p + pos, "content-length", 14) == 0)
                lengths++;
            if (len > 17 && p[pos + 17] == ':' && strncasecmp(p + pos, "transfer-encoding", 17) == 0)
                codings++;
        }
        pos = (size_t)(lf - p) + 1;
    }
    if (lengths > 1 || codings > 1 || (lengths && codings))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (p == NULL)
        abort();
    memcpy(p, data, size);
    int http10 = size > 0 && (data[size - 1] & 1);
    size_t end = framing_head_end(p, size);
    framing_verdict v = framing_check(p, size, http10);
    if (v < FRAMING_OK || v > FRAMING_CODING_IN_HTTP10 || framing_reason(v) == NULL)
        abort();
    if (end > size || (end > 0 && p[end - 1] != '\n'))
        abort();
    if (end > 0) {
        char *head = malloc(end);
        if (head == NULL)
            abort();
        memcpy(head, p, end);
        if (framing_head_end(head, end) != end || framing_head_end(head, end - 1) != 0)
            abort();
        if (framing_check(head, end, http10) != v)
            abort();
        free(head);
    }
    if (v == FRAMING_INCOMPLETE && end != 0)
        abort();
    if (v == FRAMING_OK)
        check_passing_head(p, end);
    free(p);
    return 0;
}
