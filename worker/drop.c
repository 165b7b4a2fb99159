/* drop.c - the sealed metadata blob and file-name hygiene shared by the handlers.
 *
 * Blob plaintext: u16 name length, name, u8 MIME length, MIME, 64 hex of SHA-256;
 * sealed with AES-256-GCM under a key derived from the drop key, so the store alone
 * reveals neither name nor type. */
#include "drop.h"

#include <stdio.h>
#include <string.h>

int drop_meta_seal(crypt_hmac *h, const uint8_t *secret, const char *key, size_t keylen,
                   const uint8_t salt[CRYPT_SALT_LEN], const drop_meta *m, uint8_t *out)
{
    uint8_t pt[DROP_BLOB_MAX], mk[CRYPT_KEY_LEN];
    size_t nl = strlen(m->filename), ml = strlen(m->mime), n = 0;
    if (nl > DROP_NAME_MAX || ml > DROP_MIME_MAX || strlen(m->sha256) != 64)
        return -1;
    pt[n++] = (uint8_t)(nl >> 8);
    pt[n++] = (uint8_t)nl;
    memcpy(pt + n, m->filename, nl);
    n += nl;
    pt[n++] = (uint8_t)ml;
    memcpy(pt + n, m->mime, ml);
    n += ml;
    memcpy(pt + n, m->sha256, 64);
    n += 64;
    int r = -1;
    if (crypt_derive_with(h, secret, key, keylen, salt, CRYPT_INFO_META, mk) == 0 &&
        crypt_blob_seal(mk, pt, n, out) == 0)
        r = (int)(n + CRYPT_BLOB_OVERHEAD);
    explicit_bzero(mk, sizeof(mk));
    return r;
}

int drop_meta_open(crypt_hmac *h, const uint8_t *secret, const char *key, size_t keylen,
                   const uint8_t salt[CRYPT_SALT_LEN], const uint8_t *blob, size_t len, drop_meta *m)
{
    uint8_t pt[DROP_BLOB_MAX], mk[CRYPT_KEY_LEN];
    if (len < CRYPT_BLOB_OVERHEAD || len > DROP_BLOB_MAX)
        return -1;
    int ok = crypt_derive_with(h, secret, key, keylen, salt, CRYPT_INFO_META, mk) == 0 &&
             crypt_blob_open(mk, blob, len, pt) == 0;
    explicit_bzero(mk, sizeof(mk));
    if (!ok)
        return -1;
    size_t n = len - CRYPT_BLOB_OVERHEAD, p = 0;
    if (n < 3)
        return -1;
    size_t nl = ((size_t)pt[0] << 8) | pt[1];
    p = 2;
    if (nl > DROP_NAME_MAX || p + nl + 1 > n)
        return -1;
    memcpy(m->filename, pt + p, nl);
    m->filename[nl] = '\0';
    p += nl;
    size_t ml = pt[p++];
    if (ml > DROP_MIME_MAX || p + ml + 64 != n)
        return -1;
    memcpy(m->mime, pt + p, ml);
    m->mime[ml] = '\0';
    memcpy(m->sha256, pt + p + ml, 64);
    m->sha256[64] = '\0';
    return 0;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0 if invalid; *out gets
 * its code point. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *out)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80) {
        *out = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *out = cp;
    return len;
}

/* Characters a stored name never keeps: C0 and C1 controls (U+0000-U+001F,
 * U+007F-U+009F), which must never reach a header, and the bidirectional controls
 * (Unicode's Bidi_Control: U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), which
 * make a name read otherwise than it is ("\u202Egpj.exe" shows as "exe.jpg"). */
static int dropped(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void drop_clean_filename(const char *in, size_t len, char out[DROP_NAME_MAX + 1])
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = len; i > 0; i--)
        if (in[i - 1] == '/' || in[i - 1] == '\\') {
            s = (const unsigned char *)in + i;
            len -= i;
            break;
        }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned cp = 0;
        size_t l = utf8_len(s + i, len - i, &cp);
        const unsigned char *src = s + i;
        static const unsigned char replacement[3] = {0xef, 0xbf, 0xbd};
        if (l == 0) {
            src = replacement;
            l = 3;
            i++;
        } else {
            i += l;
            if (dropped(cp))
                continue;
        }
        if (o + l > DROP_NAME_MAX)
            break;
        memcpy(out + o, src, l);
        o += l;
    }
    out[o] = '\0';
    if (o == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, DROP_NAME_MAX + 1, "file");
}
