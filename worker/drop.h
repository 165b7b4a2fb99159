/* drop.h - what the drop's handlers share: the sealed metadata blob (file name, MIME
 * type, SHA-256) and file-name hygiene. */
#ifndef RZ_DROP_H
#define RZ_DROP_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"

#define DROP_NAME_MAX 255   /* bytes of a stored file name (UTF-8) */
#define DROP_MIME_MAX 127
#define DROP_BLOB_MAX (2 + DROP_NAME_MAX + 1 + DROP_MIME_MAX + 64 + CRYPT_BLOB_OVERHEAD)
#define DROP_FAIL_MEMORY_S 600 /* failures are forgotten after 10 minutes */

typedef struct {
    char filename[DROP_NAME_MAX + 1];
    char mime[DROP_MIME_MAX + 1];
    char sha256[65];
} drop_meta;

/* Seal meta under the key's meta key (derived with h); out holds DROP_BLOB_MAX; returns
 * its length or -1. */
int drop_meta_seal(crypt_hmac *h, const uint8_t *secret, const char *key, size_t keylen,
                   const uint8_t salt[CRYPT_SALT_LEN], const drop_meta *m, uint8_t *out);
/* Open a blob; -1 when it does not authenticate or is malformed. */
int drop_meta_open(crypt_hmac *h, const uint8_t *secret, const char *key, size_t keylen,
                   const uint8_t salt[CRYPT_SALT_LEN], const uint8_t *blob, size_t len, drop_meta *m);

/* Turn a client's file name into what is stored: the last path component, C0 and C1
 * control characters and bidirectional controls (U+061C, U+200E/F, U+202A-E,
 * U+2066-9) dropped, invalid UTF-8 replaced by U+FFFD, at most DROP_NAME_MAX bytes cut
 * on a character boundary; "file" if nothing is left. */
void drop_clean_filename(const char *in, size_t len, char out[DROP_NAME_MAX + 1]);

#endif
