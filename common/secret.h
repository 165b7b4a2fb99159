/* secret.h - the server secret: where it comes from, and how a process keeps it.
 *
 * By default it lives in the metadata store (record.h names its key): created once
 * with SET NX, read by every worker at each store connection, so its lifetime is the
 * records' and no copy of it lies on the data volume. An administrator may pin it in
 * a file instead (SECRET_PATH: on tmpfs, or a systemd credential), never on the file
 * system that holds STORAGE_PATH. The master never needs it in store mode; the
 * shredder never needs it at all.
 *
 * In memory it sits alone in one page: locked (never swapped) when the limits allow,
 * and left out of core dumps; the processes themselves are made non-dumpable with core
 * dumps off. */
#ifndef RZ_SECRET_H
#define RZ_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "crypt.h"

#define SECRET_FP_LEN 40 /* hex SHA-1: what a store script can compute with redis.sha1hex */

typedef struct {
    uint8_t key[CRYPT_SECRET_LEN];
    /* The fingerprint the store's scripts compare with the secret they hold, so that
     * nothing is recorded or looked up under a secret the store no longer has: hex
     * SHA-1 of key. Empty for a pinned secret (the store then holds none). */
    char store_fp[SECRET_FP_LEN + 1];
    int loaded;
} secret;

/* A page of its own for a secret, not loaded yet; NULL if no page could be mapped.
 * When it cannot be locked in memory (RLIMIT_MEMLOCK) or kept out of core dumps, warn
 * says so and the page is still returned: neither is fatal. */
secret *secret_new(char *warn, size_t warnlen);
/* Lock the page in memory and keep it out of core dumps again: memory locks are not
 * inherited over fork. 0, or -1 with warn (not fatal, as for secret_new). */
int secret_lock(const secret *s, char *warn, size_t warnlen);
/* Wipe, unlock and unmap. NULL is fine. */
void secret_free(secret *s);
/* In a child that must not hold it: drop the view inherited over fork without
 * touching it (a write would first copy the page into the child). */
void secret_forget(secret *s);

/* Load key into s; from_store: it came from the store (store_fp is set). */
void secret_set(secret *s, const uint8_t key[CRYPT_SECRET_LEN], int from_store);
/* Wipe: nothing may be derived from s until the next secret_set. */
void secret_clear(secret *s);

/* This process and its future children: not dumpable (no core dump, and /proc/PID/mem
 * and the like closed to other processes of the same user), RLIMIT_CORE 0. 0, or -1
 * with warn (not fatal: a sandbox may refuse setrlimit; say so and go on). */
int secret_protect_process(char *warn, size_t warnlen);

/* The pinned secret, SECRET_PATH (which must be set; a leading $CREDENTIALS_DIRECTORY/
 * is taken from the environment), created 0600 when absent. Refused in one line
 * naming SECRET_PATH: a path on the file system of STORAGE_PATH, TEMP_PATH or the
 * trash, a symbolic link, a file not owned by this user or root, a mode giving group
 * or others any bit, anything but a regular file of exactly 32 bytes. STORAGE_PATH and
 * TEMP_PATH must exist (paths_prepare). 0, or -1 with err. */
int secret_load_file(const cfg *c, secret *s, char *err, size_t errlen);

/* In store mode: the secret file an earlier version kept beside STORAGE_PATH, if one
 * is still there (1, its path in out), else 0. It is no longer read. */
int secret_stale_file(const cfg *c, char *out, size_t cap);

#endif
