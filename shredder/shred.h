/* shred.h - overwrite one file in place with random bytes, then unlink it.
 *
 * The one primitive the shredder is built on; it knows nothing of ids, the store or
 * the directories, so it can be tested alone. */
#ifndef RZ_SHRED_H
#define RZ_SHRED_H

#include <signal.h>

enum {
    SHRED_ERROR = -1, /* errno set; EINTR when *stop was raised mid-way */
    SHRED_DONE = 0,   /* overwritten and unlinked (a file already gone is ERROR, ENOENT) */
    SHRED_BUSY = 1,   /* someone holds a flock on it (a download): untouched, retry later */
};

/* Bytes per write: the memory a shred uses, and how often stop is looked at. */
#define SHRED_CHUNK (1u << 20)

/* What a long shred looks at between chunks; every member may be NULL. */
typedef struct {
    const volatile sig_atomic_t *stop; /* once non-zero: give up (SHRED_ERROR, EINTR) */
    void (*progress)(void *arg);       /* e.g. a heartbeat, so a huge file is no silence */
    void *arg;
} shred_hooks;

/* Open path (a regular file, no symlink followed), take flock(LOCK_EX|LOCK_NB), overwrite
 * its whole length passes times with AES-256-CTR keystream under a fresh random key
 * (fsync after each pass, mtime kept so the orphan age rule still holds if we are
 * interrupted), then unlink path if it still names the same inode, and close.
 * A stop leaves the file in place, partly overwritten; shredding it again starts from
 * scratch. hooks may be NULL. */
int shred_file(const char *path, unsigned passes, const shred_hooks *hooks);

#endif
