/* words.c - load the word list and a hash table of it; draw and check keys.
 *
 * Drawing uses rejection sampling on 16-bit random values so each word has exactly
 * the same chance; lookup is one probe, mostly, of an open-addressing hash table (every
 * keyed request checks its key's words, and a binary search cost a dozen string
 * compares a word); a key's shape is checked by walking its hyphens once, noting how
 * many words can end at each. */
#include "words.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"

#define WORD_MIN 3
#define WORD_MAX WORDS_WORD_MAX

struct words {
    char **list;   /* file order: what keys are drawn from */
    size_t n;
    const char **slots; /* the words by hash, linear probing; NULL: empty */
    size_t mask;        /* slots - 1, a power of two at least twice n */
};

/* FNV-1a: the words are the operator's list, not an attacker's, so no seed is needed. */
static size_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* The slot holding s[0..len), or the empty one where it would go. */
static size_t slot_of(const words *w, const char *s, size_t len)
{
    size_t i = hash(s, len) & w->mask;
    while (w->slots[i] != NULL && (strncmp(w->slots[i], s, len) != 0 || w->slots[i][len] != '\0'))
        i = (i + 1) & w->mask;
    return i;
}

static int word_ok(const char *s, size_t len)
{
    if (len < WORD_MIN || len > WORD_MAX || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
            return 0;
    return 1;
}

/* The word of one line: after a TAB or space if the line starts with dice digits. */
static char *line_word(char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    char *sep = strpbrk(line, "\t ");
    if (sep != NULL) {
        for (char *p = line; p < sep; p++)
            if (*p < '1' || *p > '6')
                return NULL;
        line = sep + strspn(sep, "\t ");
    }
    return line;
}

static int words_add(words *w, size_t *cap, const char *word)
{
    if (w->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8192;
        char **nl = realloc(w->list, ncap * sizeof(*nl));
        if (nl == NULL)
            return -1;
        w->list = nl;
        *cap = ncap;
    }
    if ((w->list[w->n] = strdup(word)) == NULL)
        return -1;
    w->n++;
    return 0;
}

words *words_load(const char *path, char *err, size_t errlen)
{
    words *w = calloc(1, sizeof(*w));
    FILE *f = fopen(path, "r");
    char line[256];
    size_t cap = 0, lineno = 0;
    if (w == NULL || f == NULL) {
        snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: %s", path, strerror(errno));
        goto fail;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *word = line_word(line);
        if (word == NULL || !word_ok(word, strlen(word))) {
            snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: line %zu is not a lowercase word", path, lineno);
            goto fail;
        }
        if (words_add(w, &cap, word) != 0) {
            snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: out of memory", path);
            goto fail;
        }
    }
    if (w->n < 2 || w->n > 65536) {
        snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: %zu words, expected %d", path, w->n, WORDS_EXPECTED);
        goto fail;
    }
    size_t size = 1;
    while (size < 2 * w->n)
        size *= 2;
    w->mask = size - 1;
    if ((w->slots = calloc(size, sizeof(*w->slots))) == NULL) {
        snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < w->n; i++) {
        size_t at = slot_of(w, w->list[i], strlen(w->list[i]));
        if (w->slots[at] != NULL) {
            snprintf(err, errlen, "DICEWARE_WORDLIST_PATH=%s: duplicate word", path);
            goto fail;
        }
        w->slots[at] = w->list[i];
    }
    fclose(f);
    return w;
fail:
    if (f != NULL)
        fclose(f);
    words_free(w);
    return NULL;
}

void words_free(words *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->list[i]);
    free(w->list);
    free(w->slots);
    free(w);
}

size_t words_count(const words *w)
{
    return w != NULL ? w->n : 0;
}

static int draw_index(size_t n, size_t *out)
{
    /* Reject values in the incomplete last stretch of 2^16 so every index is equally likely. */
    uint32_t limit = (uint32_t)(65536 - 65536 % n);
    for (;;) {
        uint16_t r;
        if (crypt_random(&r, sizeof(r)) != 0)
            return -1;
        if (r < limit) {
            *out = r % n;
            return 0;
        }
    }
}

int words_draw_key(const words *w, unsigned n, char out[WORDS_KEY_MAX])
{
    size_t len = 0;
    if (n < WORDS_MIN_WORDS || n > WORDS_MAX_WORDS)
        return -1;
    for (unsigned k = 0; k < n; k++) {
        size_t i;
        if (draw_index(w->n, &i) != 0)
            return -1;
        len += (size_t)snprintf(out + len, WORDS_KEY_MAX - len, "%s%s", k > 0 ? "-" : "", w->list[i]);
    }
    return 0;
}

static int is_word(const words *w, const char *s, size_t len)
{
    return len >= WORD_MIN && len <= WORD_MAX && w->slots[slot_of(w, s, len)] != NULL;
}

int words_key_valid(const words *w, const char *s, size_t len)
{
    /* ends[i], for i the start of a word (0, or just after a hyphen): bit n is set when
     * s[0..i) is n listed words, each followed by its hyphen. */
    uint8_t ends[WORDS_KEY_MAX + 1];
    const unsigned all = (1u << (WORDS_MAX_WORDS + 1)) - 1, enough = all & ~((1u << WORDS_MIN_WORDS) - 1);
    if (w == NULL || len < WORDS_MIN_WORDS * (WORD_MIN + 1) - 1 || len >= WORDS_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
            return 0;
    memset(ends, 0, len + 1);
    ends[0] = 1;
    for (size_t i = 0; i < len; i++) {
        if (ends[i] == 0)
            continue;
        unsigned next = ((unsigned)ends[i] << 1) & all;
        /* s[i..j) is a word when it is listed and a hyphen or the end follows it. */
        for (size_t j = i + WORD_MIN; j <= len && j - i <= WORD_MAX; j++) {
            if ((j < len && s[j] != '-') || !is_word(w, s + i, j - i))
                continue;
            if (j == len && (next & enough) != 0)
                return 1;
            if (j < len)
                ends[j + 1] |= (uint8_t)next;
        }
    }
    return 0;
}
