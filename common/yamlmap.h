/* yamlmap.h - reads a configuration file written as one YAML mapping of NAME: value,
 * where a value is a scalar or a list of scalars, and hands each pair to callbacks in
 * the order of the file.
 *
 * The whole file is parsed before the first callback runs, so a YAML syntax error
 * anywhere is reported as one, never as a bad name or value before it. Knows nothing of
 * settings: the callbacks say what a name means and whether a value is good. */
#ifndef RZ_YAMLMAP_H
#define RZ_YAMLMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    /* A name of the mapping, written on line (1-based). Returns the name to use in the
     * reader's own messages about this pair (it must outlive the pair), or NULL with a
     * message in err to refuse the name. */
    const char *(*on_key)(void *ctx, const char *key, size_t line, char *err, size_t errlen);
    /* The value of the name just accepted: one scalar (list false, n 1) or the n
     * scalars of a list. A YAML null ("", "~", "null") is "". 0, or -1 with a message
     * in err. */
    int (*on_value)(void *ctx, const char *const *items, size_t n, bool list, char *err, size_t errlen);
} yamlmap_callbacks;

/* Read path and call cb for each pair. 0, or -1 with one line in err naming the file:
 * "FILE: reason" when it cannot be read, "FILE:LINE:COLUMN: YAML syntax error: ..." with
 * libyaml's problem, else "FILE:LINE: message" (a callback's message included). An empty
 * or comment-only file has no pairs. */
int yamlmap_read(const char *path, const yamlmap_callbacks *cb, void *ctx, char *err, size_t errlen);

#endif
