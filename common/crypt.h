/* crypt.h - every cryptographic operation of Raven Zero, on OpenSSL libcrypto.
 *
 * The id and keys derived from a drop key and the server secret (HMAC/HKDF), sealed
 * metadata blobs (AES-256-GCM), and the STREAM segment AEAD: AES-256-GCM under nonce
 * prefix(7) || counter(4, big-endian) || last(1) with the caller's AAD, so that
 * reordering, truncation and extension of a segment sequence are all detected.
 * The primitives only: the sealed-file layout built on them (header, where segments
 * lie, sizes) is common/sealed's. */
#ifndef RZ_CRYPT_H
#define RZ_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#define CRYPT_SECRET_LEN 32
#define CRYPT_KEY_LEN 32
#define CRYPT_SALT_LEN 16
#define CRYPT_ID_HEX_LEN 32          /* 16 bytes as lowercase hex */
#define CRYPT_TAG_LEN 16
#define CRYPT_NONCE_PREFIX_LEN 7
#define CRYPT_SEGMENT_MAX (16u * 1024 * 1024) /* keeps every segment length within an int */
#define CRYPT_AAD_MAX 64
#define CRYPT_BLOB_OVERHEAD 28       /* 12-byte random nonce + 16-byte tag */

/* Fill buf with CSPRNG bytes; 0 or -1. */
int crypt_random(void *buf, size_t len);

/* id = hex(first 16 bytes of HMAC-SHA256(secret, key)); out gets 32 chars + NUL.
 * 0, or -1 (out = "") if libcrypto fails, e.g. out of memory. */
int crypt_id(const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
             char out[CRYPT_ID_HEX_LEN + 1]);
/* SHA-256 fetched once and one digest context, reused by crypt_id_with: HMAC() fetches
 * its algorithms anew on every call, which was most of a keyed request's id. One per
 * thread; it holds nothing of a key between calls. */
typedef struct crypt_hmac crypt_hmac;
crypt_hmac *crypt_hmac_new(void);
void crypt_hmac_free(crypt_hmac *h);
/* crypt_id with h's context (the same id). */
int crypt_id_with(crypt_hmac *h, const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                  char out[CRYPT_ID_HEX_LEN + 1]);
/* Is s (len bytes, NUL-terminated there) an id as crypt_id writes them? */
int crypt_is_id(const char *s, size_t len);

/* HKDF-SHA256(ikm = key, salt = secret || upload_salt, info) -> 32 bytes.
 * info "raven-zero v1 file" for file segments, "raven-zero v1 meta" for the blob. */
#define CRYPT_INFO_FILE "raven-zero v1 file"
#define CRYPT_INFO_META "raven-zero v1 meta"
int crypt_derive(const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                 const uint8_t salt[CRYPT_SALT_LEN], const char *info, uint8_t out[CRYPT_KEY_LEN]);
/* crypt_derive with h's context (crypt_id_with's): the same key. */
int crypt_derive_with(crypt_hmac *h, const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                      const uint8_t salt[CRYPT_SALT_LEN], const char *info, uint8_t out[CRYPT_KEY_LEN]);

/* Sealed blob: out = nonce(12) || ciphertext || tag(16); out must hold len + 28. */
int crypt_blob_seal(const uint8_t key[CRYPT_KEY_LEN], const uint8_t *pt, size_t len, uint8_t *out);
/* in is len bytes (>= 28); out must hold len - 28; -1 when authentication fails. */
int crypt_blob_open(const uint8_t key[CRYPT_KEY_LEN], const uint8_t *in, size_t len, uint8_t *out);

/* One stream's cipher state: key, nonce prefix, segment size and the AAD every segment
 * is sealed with (aad_len <= CRYPT_AAD_MAX). NULL on failure or a segment size outside
 * [1, CRYPT_SEGMENT_MAX]. */
typedef struct crypt_stream crypt_stream;
crypt_stream *crypt_stream_new(const uint8_t key[CRYPT_KEY_LEN], const uint8_t nonce_prefix[CRYPT_NONCE_PREFIX_LEN],
                               uint32_t segment_size, const uint8_t *aad, size_t aad_len);
void crypt_stream_free(crypt_stream *s);
/* Seal segment number index (len <= segment size; only the last may be shorter, and
 * the last must be flagged): out gets len + 16 bytes. 0 or -1. */
int crypt_seal_segment(crypt_stream *s, uint32_t index, int last, const uint8_t *pt, size_t len, uint8_t *out);
/* Open: in is ciphertext||tag of len bytes (> 16); out gets len - 16. -1 on failure. */
int crypt_open_segment(crypt_stream *s, uint32_t index, int last, const uint8_t *in, size_t len, uint8_t *out);

/* Delete tokens: CRYPT_TOKEN_LEN random bytes, shown once as lowercase hex. The record
 * keeps only hex(SHA-256(token)): a token of 128 random bits cannot be found from its
 * digest, so a copy of the store deletes nothing, and a keyed hash would add no
 * strength (the server secret lives beside the records by default). */
#define CRYPT_TOKEN_LEN 16
#define CRYPT_TOKEN_HEX_LEN (2 * CRYPT_TOKEN_LEN)
#define CRYPT_DIGEST_HEX_LEN 64
/* A new token into out (CRYPT_TOKEN_HEX_LEN chars + NUL); 0 or -1. */
int crypt_token_new(char out[CRYPT_TOKEN_HEX_LEN + 1]);
/* hex(SHA-256(token[0..len))) into out (64 chars + NUL), for any bytes a client sent;
 * 0 or -1 (out = "") if libcrypto fails. */
int crypt_token_digest(const char *token, size_t len, char out[CRYPT_DIGEST_HEX_LEN + 1]);

/* Hex helpers (lowercase). hex_decode returns -1 on bad input or length. */
void crypt_hex(const uint8_t *in, size_t len, char *out /* 2*len+1 */);
int crypt_unhex(const char *in, size_t inlen, uint8_t *out, size_t outlen);

#endif
