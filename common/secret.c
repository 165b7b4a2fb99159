/* secret.c - the server secret's page in memory (locked, out of core dumps), the
 * process-wide dump protections, and the pinned secret file with every check it must
 * pass. Prints nothing and never exits: the master decides. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "paths.h"

#define CREDENTIALS_PREFIX "$CREDENTIALS_DIRECTORY/"

/* ---- the page ---- */

static size_t page_size(void)
{
    long n = sysconf(_SC_PAGESIZE);
    return n > 0 && (size_t)n >= sizeof(secret) ? (size_t)n : 4096;
}

int secret_lock(const secret *s, char *warn, size_t warnlen)
{
    size_t len = page_size();
    warn[0] = '\0';
    /* One page is within even a container's 64 KiB RLIMIT_MEMLOCK; without the lock the
     * secret may reach swap, which is worth a warning but not a refusal to serve. */
    if (mlock(s, len) != 0)
        snprintf(warn, warnlen, "cannot lock the server secret in memory (mlock: %s): it may be swapped out",
                 strerror(errno));
    else if (madvise((void *)s, len, MADV_DONTDUMP) != 0)
        snprintf(warn, warnlen, "cannot keep the server secret out of core dumps (madvise: %s)", strerror(errno));
    return warn[0] == '\0' ? 0 : -1;
}

secret *secret_new(char *warn, size_t warnlen)
{
    secret *s = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return NULL;
    (void)secret_lock(s, warn, warnlen);
    return s;
}

void secret_free(secret *s)
{
    if (s == NULL)
        return;
    size_t len = page_size();
    explicit_bzero(s, len);
    munlock(s, len);
    munmap(s, len);
}

void secret_forget(secret *s)
{
    if (s != NULL)
        munmap(s, page_size());
}

void secret_set(secret *s, const uint8_t key[CRYPT_SECRET_LEN], int from_store)
{
    uint8_t d[SHA_DIGEST_LENGTH];
    memcpy(s->key, key, CRYPT_SECRET_LEN);
    s->store_fp[0] = '\0';
    if (from_store) {
        SHA1(s->key, CRYPT_SECRET_LEN, d);
        crypt_hex(d, sizeof d, s->store_fp);
        explicit_bzero(d, sizeof d);
    }
    s->loaded = 1;
}

void secret_clear(secret *s)
{
    explicit_bzero(s, sizeof *s);
}

/* ---- the process ---- */

int secret_protect_process(char *warn, size_t warnlen)
{
    struct rlimit none = {0, 0}, now;
    warn[0] = '\0';
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(warn, warnlen, "cannot make the process non-dumpable (prctl: %s)", strerror(errno));
        return -1;
    }
    /* Already 0 (systemd's LimitCORE=0, whose filter refuses setrlimit): nothing to do. */
    if (getrlimit(RLIMIT_CORE, &now) == 0 && now.rlim_cur == 0 && now.rlim_max == 0)
        return 0;
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        snprintf(warn, warnlen, "cannot turn core dumps off (setrlimit RLIMIT_CORE: %s)", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the pinned file ---- */

static int read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, buf + put, len - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        put += (size_t)n;
    }
    return 0;
}

/* SECRET_PATH with a leading $CREDENTIALS_DIRECTORY/ resolved: systemd sets that
 * variable for LoadCredential=, and Environment= or a YAML file cannot spell it. */
static int resolve(const char *v, char *out, size_t cap, char *err, size_t errlen)
{
    const char *dir = "", *rest = v;
    if (strncmp(v, CREDENTIALS_PREFIX, strlen(CREDENTIALS_PREFIX)) == 0) {
        dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == NULL || dir[0] == '\0') {
            snprintf(err, errlen, "SECRET_PATH=%s: CREDENTIALS_DIRECTORY is not set (systemd sets it for "
                     "LoadCredential=)", v);
            return -1;
        }
        rest = v + strlen(CREDENTIALS_PREFIX) - 1; /* keeps the '/' */
    }
    if ((size_t)snprintf(out, cap, "%s%s", dir, rest) >= cap) {
        snprintf(err, errlen, "SECRET_PATH=%s: path too long", v);
        return -1;
    }
    return 0;
}

/* The setting whose file system dev is (a data directory), or NULL. */
static const char *data_volume(const cfg *c, dev_t dev)
{
    char trash[PATHS_MAX];
    struct stat st;
    if (stat(c->storage_path, &st) == 0 && st.st_dev == dev)
        return "STORAGE_PATH";
    if (stat(c->temp_path, &st) == 0 && st.st_dev == dev)
        return "TEMP_PATH";
    if (paths_trash_dir(c, trash, sizeof trash) == 0 && stat(trash, &st) == 0 && st.st_dev == dev)
        return "TEMP_PATH's trash";
    return NULL;
}

static int on_data_volume(const cfg *c, const char *shown, dev_t dev, char *err, size_t errlen)
{
    const char *which = data_volume(c, dev);
    if (which == NULL)
        return 0;
    snprintf(err, errlen,
             "SECRET_PATH=%s: on the file system of %s, so a stolen disk would hold the key to every file; "
             "leave SECRET_PATH empty (the secret then lives in the store) or put it on tmpfs or in a "
             "systemd credential",
             shown, which);
    return -1;
}

/* 1 loaded, 0 absent, -1 refused (err set). */
static int file_read(const cfg *c, const char *shown, const char *path, uint8_t key[CRYPT_SECRET_LEN], char *err,
                     size_t errlen)
{
    struct stat st;
    int rc = -1;
    /* O_NONBLOCK so a FIFO planted at the path cannot hang start-up before fstat sees it;
     * O_NOFOLLOW so a link cannot swap in another file (or one on the data volume). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP)
            snprintf(err, errlen, "SECRET_PATH=%s: a symbolic link; name the file itself", shown);
        else
            snprintf(err, errlen, "SECRET_PATH=%s: %s", shown, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "SECRET_PATH=%s: %s", shown, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "SECRET_PATH=%s: not a regular file", shown);
        goto out;
    }
    if (on_data_volume(c, shown, st.st_dev, err, errlen) != 0)
        goto out;
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errlen, "SECRET_PATH=%s: owned by uid %u; expected this user (%u) or root", shown,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "SECRET_PATH=%s: mode %04o gives group or others access (chmod 600)", shown,
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size == 0) {
        /* Only a start killed between create and write leaves this; nothing was ever
         * sealed under it, so removing it loses nothing. */
        snprintf(err, errlen, "SECRET_PATH=%s: empty (creation interrupted? remove it)", shown);
        goto out;
    }
    if (st.st_size != CRYPT_SECRET_LEN) {
        snprintf(err, errlen, "SECRET_PATH=%s: size %lld, want exactly %d bytes", shown, (long long)st.st_size,
                 CRYPT_SECRET_LEN);
        goto out;
    }
    if (read_full(fd, key, CRYPT_SECRET_LEN) != 0) {
        snprintf(err, errlen, "SECRET_PATH=%s: short read", shown);
        goto out;
    }
    rc = 1;
out:
    close(fd);
    return rc;
}

/* O_EXCL: if another process creates the file first we load theirs rather than
 * overwrite it. 0 created, 1 lost that race, -1 error. */
static int file_create(const char *shown, const char *path, const char *dir, uint8_t key[CRYPT_SECRET_LEN], char *err,
                       size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        snprintf(err, errlen, "SECRET_PATH=%s: create: %s", shown, strerror(errno));
        return -1;
    }
    if (crypt_random(key, CRYPT_SECRET_LEN) != 0) {
        snprintf(err, errlen, "SECRET_PATH=%s: no random bytes", shown);
        goto fail;
    }
    if (write_full(fd, key, CRYPT_SECRET_LEN) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "SECRET_PATH=%s: write: %s", shown, strerror(errno));
        goto fail;
    }
    close(fd);
    /* Best effort: makes the new name durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    /* A partial file would be refused at every later start; leave nothing instead. */
    close(fd);
    (void)unlink(path);
    explicit_bzero(key, CRYPT_SECRET_LEN);
    return -1;
}

int secret_load_file(const cfg *c, secret *s, char *err, size_t errlen)
{
    char path[PATHS_MAX], tmp[PATHS_MAX], dir[PATHS_MAX];
    const char *shown = c->secret_path;
    uint8_t key[CRYPT_SECRET_LEN];
    struct stat st;
    int r = -1;
    err[0] = '\0';
    if (shown == NULL || shown[0] == '\0') {
        snprintf(err, errlen, "SECRET_PATH is empty");
        return -1;
    }
    if (resolve(shown, path, sizeof path, err, errlen) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(dir, sizeof dir, "%s", dirname(tmp));
    /* The directory, or where it would be made, is checked before anything is created:
     * a refused secret leaves no trace. stat first: mkdir on an existing directory we
     * may not write reports EACCES. */
    if (stat(dir, &st) != 0) {
        char parent[PATHS_MAX];
        snprintf(tmp, sizeof tmp, "%s", dir);
        snprintf(parent, sizeof parent, "%s", dirname(tmp));
        if (stat(parent, &st) == 0 && on_data_volume(c, shown, st.st_dev, err, errlen) != 0)
            return -1;
        if (mkdir(dir, 0700) != 0 || stat(dir, &st) != 0) {
            snprintf(err, errlen, "SECRET_PATH=%s: directory %s: %s", shown, dir, strerror(errno));
            return -1;
        }
    }
    if (on_data_volume(c, shown, st.st_dev, err, errlen) != 0)
        return -1;
    /* Two rounds: if another process creates the file between our read and our create,
     * the second read loads theirs. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int got = file_read(c, shown, path, key, err, errlen);
        if (got != 0) {
            r = got > 0 ? 0 : -1;
            break;
        }
        got = file_create(shown, path, dir, key, err, errlen);
        if (got <= 0) {
            r = got;
            break;
        }
    }
    if (r == 0)
        secret_set(s, key, 0);
    else if (err[0] == '\0')
        snprintf(err, errlen, "SECRET_PATH=%s: vanished while being created", shown);
    explicit_bzero(key, sizeof key);
    return r;
}

int secret_stale_file(const cfg *c, char *out, size_t cap)
{
    char dir[PATHS_MAX];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", c->storage_path);
    if ((size_t)snprintf(out, cap, "%s/secret.key", dirname(dir)) >= cap)
        return 0;
    return lstat(out, &st) == 0;
}
