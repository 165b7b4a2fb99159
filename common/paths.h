/* paths.h - where things live on disk: STORAGE_PATH/<id[0:2]>/<id>, TEMP_PATH, and the
 * trash directory (TEMP_PATH's sibling "trash") the shredder empties. */
#ifndef RZ_PATHS_H
#define RZ_PATHS_H

#include <stddef.h>

#include "cfg.h"

#define PATHS_MAX 4096

int paths_file(const cfg *c, const char *id, char *out, size_t cap);
int paths_file_dir(const cfg *c, const char *id, char *out, size_t cap);
int paths_trash_dir(const cfg *c, char *out, size_t cap);
/* Is b the directory a or inside it, by name alone ("." components and doubled or
 * trailing slashes do not count; ".." and symbolic links are not resolved)? */
int paths_within(const char *a, const char *b);
/* Create STORAGE_PATH, TEMP_PATH and trash (0700) and check that they share one file
 * system (rename must work); create SPILL_PATH when it is set. 0, or -1 with a one-line err naming the setting. */
int paths_prepare(const cfg *c, char *err, size_t errlen);

#endif
