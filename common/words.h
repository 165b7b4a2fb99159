/* words.h - the diceware word list and the keys drawn from it.
 *
 * A key is three words of the list joined by '-'. Four EFF words contain a hyphen
 * themselves (drop-down, felt-tip, t-shirt, yo-yo), so checking a key's shape tries
 * every split of it into three listed words. */
#ifndef RZ_WORDS_H
#define RZ_WORDS_H

#include <stddef.h>

#define WORDS_EXPECTED 7776
#define WORDS_KEY_MAX 64 /* longest key we ever accept, NUL included */

typedef struct words words;

/* Load "dice<TAB>word" or bare-word lines. Words must be lowercase a-z or '-', 3 to 20
 * characters, unique. 0, or -1 with err. */
words *words_load(const char *path, char *err, size_t errlen);
void words_free(words *w);
size_t words_count(const words *w);
/* A new key from a CSPRNG into out (WORDS_KEY_MAX); 0 or -1. */
int words_draw_key(const words *w, char out[WORDS_KEY_MAX]);
/* Is s (len bytes) three listed words joined by '-'? */
int words_key_valid(const words *w, const char *s, size_t len);

#endif
