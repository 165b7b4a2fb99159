/* crypt.c - every cryptographic operation of Raven Zero, on OpenSSL 3 libcrypto.
 * Owns key derivation from the server secret, sealed blobs and the STREAM segment AEAD
 * (where the secret comes from is secret.c's); it prints nothing and never exits. */
#include "crypt.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define GCM_NONCE_LEN 12

struct crypt_stream {
    EVP_CIPHER_CTX *ctx; /* keyed once; each segment only sets a fresh IV */
    uint32_t segment_size;
    uint8_t nonce_prefix[CRYPT_NONCE_PREFIX_LEN];
    uint8_t aad[CRYPT_AAD_MAX];
    size_t aad_len;
};

int crypt_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    /* RAND_bytes takes an int; chunk so huge requests cannot be truncated silently. */
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- id and key derivation ---- */

int crypt_id(const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
             char out[CRYPT_ID_HEX_LEN + 1])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    static const uint8_t empty = 0;

    /* An empty id on failure: never a stale or shared value two keys could map to. */
    out[0] = '\0';
    if (HMAC(EVP_sha256(), secret, CRYPT_SECRET_LEN, keylen ? (const uint8_t *)key : &empty,
             keylen, mac, &maclen) == NULL || maclen < CRYPT_ID_HEX_LEN / 2) {
        explicit_bzero(mac, sizeof mac);
        return -1;
    }
    crypt_hex(mac, CRYPT_ID_HEX_LEN / 2, out);
    explicit_bzero(mac, sizeof mac);
    return 0;
}

struct crypt_hmac {
    EVP_MD *sha256;
    EVP_MD_CTX *ctx;
};

crypt_hmac *crypt_hmac_new(void)
{
    crypt_hmac *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (h->sha256 == NULL || h->ctx == NULL) {
        crypt_hmac_free(h);
        return NULL;
    }
    return h;
}

void crypt_hmac_free(crypt_hmac *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->sha256);
    free(h);
}

/* HMAC-SHA256 (RFC 2104) of a || b under a key of at most one block (64 bytes), which
 * is then its own key block, zero-padded. */
static int hmac_sha256(crypt_hmac *h, const uint8_t *k, size_t klen, const void *a, size_t alen, const void *b,
                       size_t blen, uint8_t out[32])
{
    uint8_t pad[64], inner[32];
    int ok;
    memset(pad, 0x36, sizeof(pad));
    for (size_t i = 0; i < klen; i++)
        pad[i] ^= k[i];
    ok = EVP_DigestInit_ex2(h->ctx, h->sha256, NULL) == 1 && EVP_DigestUpdate(h->ctx, pad, 64) == 1 &&
         (alen == 0 || EVP_DigestUpdate(h->ctx, a, alen) == 1) &&
         (blen == 0 || EVP_DigestUpdate(h->ctx, b, blen) == 1) && EVP_DigestFinal_ex(h->ctx, inner, NULL) == 1;
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36 ^ 0x5c;
    ok = ok && EVP_DigestInit_ex2(h->ctx, h->sha256, NULL) == 1 && EVP_DigestUpdate(h->ctx, pad, 64) == 1 &&
         EVP_DigestUpdate(h->ctx, inner, sizeof(inner)) == 1 && EVP_DigestFinal_ex(h->ctx, out, NULL) == 1;
    explicit_bzero(pad, sizeof(pad));
    explicit_bzero(inner, sizeof(inner));
    return ok;
}

int crypt_id_with(crypt_hmac *h, const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                  char out[CRYPT_ID_HEX_LEN + 1])
{
    uint8_t mac[32];
    out[0] = '\0';
    int ok = hmac_sha256(h, secret, CRYPT_SECRET_LEN, key, keylen, NULL, 0, mac);
    if (ok)
        crypt_hex(mac, CRYPT_ID_HEX_LEN / 2, out);
    explicit_bzero(mac, sizeof(mac));
    return ok ? 0 : -1;
}

/* HKDF (RFC 5869) for one block of output: PRK = HMAC(salt, ikm), then
 * OKM = HMAC(PRK, info || 0x01); the salt (secret || upload salt, 48 bytes) and PRK
 * are shorter than a block. */
int crypt_derive_with(crypt_hmac *h, const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                      const uint8_t salt[CRYPT_SALT_LEN], const char *info, uint8_t out[CRYPT_KEY_LEN])
{
    uint8_t fullsalt[CRYPT_SECRET_LEN + CRYPT_SALT_LEN], prk[32];
    static const uint8_t one = 1;
    memcpy(fullsalt, secret, CRYPT_SECRET_LEN);
    memcpy(fullsalt + CRYPT_SECRET_LEN, salt, CRYPT_SALT_LEN);
    int ok = hmac_sha256(h, fullsalt, sizeof(fullsalt), key, keylen, NULL, 0, prk) &&
             hmac_sha256(h, prk, sizeof(prk), info, strlen(info), &one, 1, out);
    if (!ok)
        explicit_bzero(out, CRYPT_KEY_LEN);
    explicit_bzero(fullsalt, sizeof(fullsalt));
    explicit_bzero(prk, sizeof(prk));
    return ok ? 0 : -1;
}

int crypt_is_id(const char *s, size_t len)
{
    if (len != CRYPT_ID_HEX_LEN || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int crypt_derive(const uint8_t secret[CRYPT_SECRET_LEN], const char *key, size_t keylen,
                 const uint8_t salt[CRYPT_SALT_LEN], const char *info, uint8_t out[CRYPT_KEY_LEN])
{
    uint8_t fullsalt[CRYPT_SECRET_LEN + CRYPT_SALT_LEN];
    OSSL_PARAM params[5], *p = params;
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx = NULL;
    int rc = -1;

    memcpy(fullsalt, secret, CRYPT_SECRET_LEN);
    memcpy(fullsalt + CRYPT_SECRET_LEN, salt, CRYPT_SALT_LEN);
    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    if (kdf == NULL)
        goto out;
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        goto out;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, fullsalt, sizeof fullsalt);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, CRYPT_KEY_LEN, params) != 1)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        explicit_bzero(out, CRYPT_KEY_LEN);
    explicit_bzero(fullsalt, sizeof fullsalt);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* ---- sealed blobs ---- */

int crypt_blob_seal(const uint8_t key[CRYPT_KEY_LEN], const uint8_t *pt, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t *ct = out + GCM_NONCE_LEN;
    int n = 0, fin, rc = -1;

    if (len > INT_MAX - CRYPT_BLOB_OVERHEAD)
        return -1;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    /* A random 96-bit nonce is safe: each blob key seals a handful of blobs at most. */
    if (crypt_random(out, GCM_NONCE_LEN) != 0 ||
        EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, out, NULL) != 1 ||
        (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)len) != 1) ||
        EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_LEN, ct + len) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int crypt_blob_open(const uint8_t key[CRYPT_KEY_LEN], const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx;
    size_t ctlen;
    int n = 0, fin, rc = -1;

    if (len < CRYPT_BLOB_OVERHEAD || len > INT_MAX)
        return -1;
    ctlen = len - CRYPT_BLOB_OVERHEAD;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, in, NULL) != 1 ||
        (ctlen > 0 && EVP_DecryptUpdate(ctx, out, &n, in + GCM_NONCE_LEN, (int)ctlen) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_LEN,
                            (void *)(in + GCM_NONCE_LEN + ctlen)) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1)
        goto out;
    rc = 0;
out:
    /* Unauthenticated plaintext must not reach a caller that ignores the return value. */
    if (rc != 0 && ctlen > 0)
        explicit_bzero(out, ctlen);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

/* ---- STREAM ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

crypt_stream *crypt_stream_new(const uint8_t key[CRYPT_KEY_LEN], const uint8_t nonce_prefix[CRYPT_NONCE_PREFIX_LEN],
                               uint32_t segment_size, const uint8_t *aad, size_t aad_len)
{
    crypt_stream *s;

    if (segment_size == 0 || segment_size > CRYPT_SEGMENT_MAX || aad_len > CRYPT_AAD_MAX)
        return NULL;
    s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL)
        return NULL;
    s->ctx = EVP_CIPHER_CTX_new();
    /* Key schedule once here; enc = 1 is arbitrary, each segment sets its direction. */
    if (s->ctx == NULL || EVP_CipherInit_ex2(s->ctx, EVP_aes_256_gcm(), key, NULL, 1, NULL) != 1) {
        crypt_stream_free(s);
        return NULL;
    }
    s->segment_size = segment_size;
    memcpy(s->nonce_prefix, nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
    if (aad_len > 0)
        memcpy(s->aad, aad, aad_len);
    s->aad_len = aad_len;
    return s;
}

void crypt_stream_free(crypt_stream *s)
{
    if (s == NULL)
        return;
    EVP_CIPHER_CTX_free(s->ctx); /* cleanses the expanded key */
    OPENSSL_free(s);
}

/* Checks the STREAM shape rule (every segment but the last is full, none is empty),
 * then starts a segment: fresh nonce, direction, the stream's AAD. */
static int segment_begin(crypt_stream *s, uint32_t index, int last, size_t ptlen, int enc)
{
    uint8_t nonce[GCM_NONCE_LEN];
    int n;

    if (ptlen == 0 || ptlen > s->segment_size || (!last && ptlen != s->segment_size))
        return -1;
    memcpy(nonce, s->nonce_prefix, CRYPT_NONCE_PREFIX_LEN);
    put_be32(nonce + CRYPT_NONCE_PREFIX_LEN, index);
    nonce[GCM_NONCE_LEN - 1] = last ? 1 : 0;
    if (EVP_CipherInit_ex2(s->ctx, NULL, NULL, nonce, enc, NULL) != 1)
        return -1;
    return s->aad_len == 0 || EVP_CipherUpdate(s->ctx, NULL, &n, s->aad, (int)s->aad_len) == 1 ? 0 : -1;
}

int crypt_seal_segment(crypt_stream *s, uint32_t index, int last, const uint8_t *pt, size_t len,
                       uint8_t *out)
{
    int n, fin;

    if (segment_begin(s, index, last, len, 1) != 0 ||
        EVP_EncryptUpdate(s->ctx, out, &n, pt, (int)len) != 1 ||
        EVP_EncryptFinal_ex(s->ctx, out + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_LEN, out + len) != 1)
        return -1;
    return 0;
}

int crypt_open_segment(crypt_stream *s, uint32_t index, int last, const uint8_t *in, size_t len,
                       uint8_t *out)
{
    size_t ptlen;
    int n, fin;

    if (len <= CRYPT_TAG_LEN)
        return -1;
    ptlen = len - CRYPT_TAG_LEN;
    if (segment_begin(s, index, last, ptlen, 0) != 0)
        return -1;
    if (EVP_DecryptUpdate(s->ctx, out, &n, in, (int)ptlen) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_LEN, (void *)(in + ptlen)) != 1 ||
        EVP_DecryptFinal_ex(s->ctx, out + n, &fin) != 1) {
        /* Never leave unauthenticated plaintext where a careless caller could send it. */
        explicit_bzero(out, ptlen);
        return -1;
    }
    return 0;
}

/* ---- delete tokens ---- */

int crypt_token_new(char out[CRYPT_TOKEN_HEX_LEN + 1])
{
    uint8_t t[CRYPT_TOKEN_LEN];
    out[0] = '\0';
    if (crypt_random(t, sizeof t) != 0)
        return -1;
    crypt_hex(t, sizeof t, out);
    explicit_bzero(t, sizeof t);
    return 0;
}

int crypt_token_digest(const char *token, size_t len, char out[CRYPT_DIGEST_HEX_LEN + 1])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    static const char empty = 0;
    out[0] = '\0';
    if (EVP_Digest(len ? token : &empty, len, d, &dlen, EVP_sha256(), NULL) != 1 || dlen != CRYPT_DIGEST_HEX_LEN / 2)
        return -1;
    crypt_hex(d, dlen, out);
    return 0;
}

/* ---- hex ---- */

void crypt_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Lowercase only: one spelling per value, so ids compare as plain strings. */
int crypt_unhex(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
    size_t i;

    if (inlen != 2 * outlen)
        return -1;
    for (i = 0; i < outlen; i++) {
        int hi = hex_nibble(in[2 * i]), lo = hex_nibble(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
