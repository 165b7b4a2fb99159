/* words.h - the diceware word list and the keys drawn from it.
 *
 * A key is KEY_WORDS words of the list (3 by default, up to 6) joined by '-'; any
 * count from 3 to 6 has a key's shape, so keys drawn before KEY_WORDS was raised keep
 * working until they expire. Four EFF words contain a hyphen themselves (drop-down,
 * felt-tip, t-shirt, yo-yo), so checking a key's shape tries every split of it into
 * listed words. */
#ifndef RZ_WORDS_H
#define RZ_WORDS_H

#include <stddef.h>

#define WORDS_EXPECTED 7776
#define WORDS_MIN_WORDS 3 /* words in a key */
#define WORDS_MAX_WORDS 6
#define WORDS_WORD_MAX 20 /* letters of a word of the list */
/* Bytes of the longest key we ever accept, NUL included: 6 words of 20, 5 hyphens. */
#define WORDS_KEY_MAX (WORDS_MAX_WORDS * (WORDS_WORD_MAX + 1))

typedef struct words words;

/* Load "dice<TAB>word" or bare-word lines. Words must be lowercase a-z or '-', 3 to 20
 * characters, unique. 0, or -1 with err. */
words *words_load(const char *path, char *err, size_t errlen);
void words_free(words *w);
size_t words_count(const words *w);
/* A new key of n words (WORDS_MIN_WORDS..WORDS_MAX_WORDS) from a CSPRNG into out
 * (WORDS_KEY_MAX); 0, or -1 (n out of range, no random bytes). */
int words_draw_key(const words *w, unsigned n, char out[WORDS_KEY_MAX]);
/* Is s (len bytes) WORDS_MIN_WORDS to WORDS_MAX_WORDS listed words joined by '-'? */
int words_key_valid(const words *w, const char *s, size_t len);

#endif
