/* fuzz_key.c - libFuzzer target for what a client puts in a path or a file name: the
 * key parser (words_key_valid) and the file-name cleaner (drop_clean_filename).
 *
 * The word list is loaded once (LLVMFuzzerInitialize) from RZ_FUZZ_WORDLIST, else
 * wordlists/eff_large_wordlist.txt relative to the current directory. The target keeps
 * its own copy of the words as an oracle:
 *   - any input: words_key_valid agrees with a slow reference check (every split of the
 *     input at its hyphens into 3 to 6 listed words, tried recursively), and a valid key
 *     validates again from a copy of its bytes;
 *   - the first bytes also pick 3 to 6 words and one edit of the key they make: the
 *     unedited key is always valid, the edited one exactly when the reference says so;
 *   - now and then a drawn key of each length is valid;
 *   - drop_clean_filename gives valid UTF-8 of at most DROP_NAME_MAX bytes, non-empty,
 *     never "." or "..", without '/', '\\', C0 or C1 control characters, DEL or
 *     bidirectional controls; it is idempotent, and a name that is already clean comes
 *     back unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drop.h"
#include "words.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static words *wl;
static char **list;   /* the same words, file order */
static char **sorted; /* for the oracle's lookups */
static size_t nwords;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "11111<TAB>abacus" or a bare word per line; no validation: words_load does that. */
static void load_oracle(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t cap = 0;
    if (f == NULL)
        abort();
    while (fgets(line, sizeof line, f) != NULL) {
        char *w = line, *sep;
        line[strcspn(line, "\r\n")] = '\0';
        if ((sep = strpbrk(line, "\t ")) != NULL)
            w = sep + strspn(sep, "\t ");
        if (*w == '\0')
            continue;
        if (nwords == cap) {
            cap = cap ? cap * 2 : 8192;
            list = realloc(list, cap * sizeof *list);
            if (list == NULL)
                abort();
        }
        if ((list[nwords++] = strdup(w)) == NULL)
            abort();
    }
    fclose(f);
    sorted = malloc(nwords * sizeof *sorted);
    if (sorted == NULL)
        abort();
    memcpy(sorted, list, nwords * sizeof *sorted);
    qsort(sorted, nwords, sizeof *sorted, cmp_str);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("RZ_FUZZ_WORDLIST");
    char err[512];
    if (path == NULL || *path == '\0')
        path = "wordlists/eff_large_wordlist.txt";
    wl = words_load(path, err, sizeof err);
    if (wl == NULL) {
        fprintf(stderr, "fuzz_key: %s (set RZ_FUZZ_WORDLIST or run from the repository root)\n", err);
        exit(1);
    }
    load_oracle(path);
    if (nwords != words_count(wl)) {
        fprintf(stderr, "fuzz_key: oracle has %zu words, words_load %zu\n", nwords, words_count(wl));
        exit(1);
    }
    return 0;
}

/* ---- the key ---- */

static int ref_word(const char *s, size_t len)
{
    char buf[64];
    const char *k = buf;
    if (len == 0 || len >= sizeof buf || memchr(s, '\0', len) != NULL)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return bsearch(&k, sorted, nwords, sizeof *sorted, cmp_str) != NULL;
}

/* Can s (len bytes) be cut at hyphens into listed words, `have` of them already taken,
 * ending with WORDS_MIN_WORDS to WORDS_MAX_WORDS in all? */
static int ref_split(const char *s, size_t len, unsigned have)
{
    if (have == WORDS_MAX_WORDS)
        return 0;
    if (ref_word(s, len) && have + 1 >= WORDS_MIN_WORDS)
        return 1;
    for (size_t a = 0; a < len; a++)
        if (s[a] == '-' && ref_word(s, a) && ref_split(s + a + 1, len - a - 1, have + 1))
            return 1;
    return 0;
}

/* The contract: 3 to 6 listed words joined by '-', shorter than WORDS_KEY_MAX. */
static int ref_valid(const char *s, size_t len)
{
    return len < WORDS_KEY_MAX && ref_split(s, len, 0);
}

static void check_key(const char *s, size_t len)
{
    int v = words_key_valid(wl, s, len);
    if (v != 0 && v != 1)
        abort();
    if (v != ref_valid(s, len)) {
        fprintf(stderr, "fuzz_key: words_key_valid says %d, the reference %d, for \"%.*s\" (%zu bytes)\n", v, !v,
                (int)len, s, len);
        abort();
    }
    if (v) {
        /* Valid means: lowercase letters and hyphens only, and valid again from a copy
         * in its own allocation (no hidden dependence on bytes past len). */
        char *copy = malloc(len);
        if (copy == NULL)
            abort();
        memcpy(copy, s, len);
        for (size_t i = 0; i < len; i++)
            if (!((copy[i] >= 'a' && copy[i] <= 'z') || copy[i] == '-'))
                abort();
        if (words_key_valid(wl, copy, len) != 1)
            abort();
        free(copy);
    }
}

/* 3 to 6 words picked by the input and one edit of their key, also picked by it. */
static void check_built_key(const uint8_t *data, size_t size)
{
    char key[WORDS_MAX_WORDS * 65 + 8], edited[sizeof key + 1];
    size_t len = 0, elen;
    if (size < 16)
        return;
    unsigned n = WORDS_MIN_WORDS + data[12] % (WORDS_MAX_WORDS - WORDS_MIN_WORDS + 1);
    for (unsigned k = 0; k < n; k++) {
        size_t i = (((size_t)data[2 * k] << 8) | data[2 * k + 1]) % nwords;
        len += (size_t)snprintf(key + len, sizeof key - len, "%s%s", k > 0 ? "-" : "", list[i]);
    }
    if (len >= WORDS_KEY_MAX || words_key_valid(wl, key, len) != 1)
        abort();
    check_key(key, len);

    size_t at = data[13] % (len + 1);
    uint8_t op = data[14] % 4, c = data[15];
    memcpy(edited, key, len);
    elen = len;
    switch (op) {
    case 0: /* replace */
        if (at < len)
            edited[at] = (char)c;
        break;
    case 1: /* insert */
        memmove(edited + at + 1, edited + at, len - at);
        edited[at] = (char)c;
        elen++;
        break;
    case 2: /* delete */
        if (at < len) {
            memmove(edited + at, edited + at + 1, len - at - 1);
            elen--;
        }
        break;
    default: /* cut */
        elen = at;
        break;
    }
    check_key(edited, elen);
}

static void check_drawn_key(void)
{
    char key[WORDS_KEY_MAX];
    for (unsigned n = WORDS_MIN_WORDS; n <= WORDS_MAX_WORDS; n++) {
        if (words_draw_key(wl, n, key) != 0 || words_key_valid(wl, key, strlen(key)) != 1)
            abort();
        size_t hyphens = 0;
        for (const char *p = key; *p != '\0'; p++)
            hyphens += *p == '-';
        if (hyphens < n - 1)
            abort();
    }
    if (words_draw_key(wl, WORDS_MIN_WORDS - 1, key) == 0 || words_draw_key(wl, WORDS_MAX_WORDS + 1, key) == 0)
        abort();
}

/* ---- the file name ---- */

/* Length of the well-formed UTF-8 sequence at s, or 0 (overlong, surrogate, > U+10FFFF,
 * truncated or a stray continuation byte). Written apart from drop.c on purpose. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        if (n < 2 || (s[1] & 0xc0) != 0x80)
            return 0;
        *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0;
        *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) | ((uint32_t)(s[2] & 0x3f) << 6) |
              (s[3] & 0x3f);
        return 4;
    }
    return 0;
}

/* Controls (Cc) and the bidirectional controls (Bidi_Control), listed apart from drop.c. */
static int is_control(uint32_t cp)
{
    static const uint32_t bidi[] = {0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c,
                                    0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069};
    for (size_t i = 0; i < sizeof bidi / sizeof bidi[0]; i++)
        if (cp == bidi[i])
            return 1;
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* 1 if s is what a cleaned name may look like. */
static int clean_shape(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0 || len > DROP_NAME_MAX || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_seq(u + i, len - i, &cp);
        if (l == 0 || is_control(cp) || cp == '/' || cp == '\\')
            return 0;
        i += l;
    }
    return 1;
}

static void check_filename(const uint8_t *data, size_t size)
{
    /* Canaries on both sides of the output, which is exactly DROP_NAME_MAX + 1 bytes. */
    char *out = malloc(DROP_NAME_MAX + 1), again[DROP_NAME_MAX + 1];
    char *in = malloc(size ? size : 1);
    if (out == NULL || in == NULL)
        abort();
    memcpy(in, data, size);
    drop_clean_filename(in, size, out);
    size_t len = strnlen(out, DROP_NAME_MAX + 1);
    if (len > DROP_NAME_MAX)
        abort(); /* not terminated within the buffer */
    if (!clean_shape(out, len)) {
        fprintf(stderr, "fuzz_key: drop_clean_filename gave a name that is not clean:");
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, " %02x", (unsigned char)out[i]);
        fprintf(stderr, "\n");
        abort();
    }
    /* Cleaning is idempotent. */
    drop_clean_filename(out, len, again);
    if (strcmp(out, again) != 0)
        abort();
    /* A name that is already clean (and has no NUL) is kept as it is. */
    if (memchr(in, '\0', size) == NULL && clean_shape(in, size) && (len != size || memcmp(in, out, size) != 0))
        abort();
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_key((const char *)data, size);
    check_built_key(data, size);
    check_filename(data, size);
    if (size > 0 && data[0] == 0x7e) /* now and then, a freshly drawn key */
        check_drawn_key();
    return 0;
}
