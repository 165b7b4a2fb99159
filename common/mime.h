/* mime.h - MIME type patterns: what ALLOWED_MIME_TYPES may list (a type like
 * "image/png", every subtype of "image" with the subtype "*", or any type with "*" on both
 * sides) and whether an upload's detected type matches one. Knows nothing of settings: the configuration checks its entries
 * here, the upload asks for a match. */
#ifndef RZ_MIME_H
#define RZ_MIME_H

#include <stddef.h>

/* One pattern: type/subtype as RFC 6838 restricted names, with the subtype "*" for any,
 * or the type "*" too. 0 with *out a lowercased copy (NULL if memory ran out), or -1. */
int mime_pattern(const char *v, char **out);
/* Does the type (parameters after ';' ignored, any case) match one of the n patterns
 * (as mime_pattern returns them)? No patterns allow every type, even none (NULL). */
int mime_allowed(char *const *patterns, size_t n, const char *type);

#endif
