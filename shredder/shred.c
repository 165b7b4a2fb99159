/* shred.c - overwrite a file in place, then unlink it.
 *
 * Random bytes come from AES-256-CTR under a fresh random key per pass: CSPRNG quality
 * at memory speed, so a large file costs what the disk costs. The file is written in
 * SHRED_CHUNK pieces through one buffer, under an exclusive flock that readers respect. */
#include "shred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypt.h"

typedef struct {
    int fd;
    struct stat st;
    uint8_t *buf;
    EVP_CIPHER_CTX *cipher;
} shred_job;

static int same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Open and lock: SHRED_DONE with j->fd set, SHRED_BUSY, or SHRED_ERROR. */
static int job_open(shred_job *j, const char *path)
{
    struct stat lst;
    if (lstat(path, &lst) != 0)
        return SHRED_ERROR;
    if (!S_ISREG(lst.st_mode)) {
        errno = S_ISLNK(lst.st_mode) ? ELOOP : EINVAL;
        return SHRED_ERROR;
    }
    /* O_NONBLOCK: should the name be swapped for a FIFO after lstat, open must not hang. */
    j->fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (j->fd < 0)
        return SHRED_ERROR;
    if (fstat(j->fd, &j->st) != 0)
        return SHRED_ERROR;
    if (!S_ISREG(j->st.st_mode) || !same_inode(&j->st, &lst)) {
        errno = EAGAIN; /* replaced under us: look again later */
        return SHRED_ERROR;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? SHRED_BUSY : SHRED_ERROR;
    /* Size after the lock: nothing writes a file once it is complete, but be exact. */
    return fstat(j->fd, &j->st) == 0 ? SHRED_DONE : SHRED_ERROR;
}

static int pwrite_full(int fd, const uint8_t *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int keystream_start(shred_job *j)
{
    uint8_t key[32], iv[16];
    int ok = crypt_random(key, sizeof(key)) == 0 && crypt_random(iv, sizeof(iv)) == 0 &&
             EVP_EncryptInit_ex(j->cipher, EVP_aes_256_ctr(), NULL, key, iv) == 1;
    explicit_bzero(key, sizeof(key));
    if (!ok)
        errno = EIO;
    return ok ? 0 : -1;
}

/* Keystream = AES-CTR over zeros, generated in place. */
static int keystream_next(shred_job *j, size_t len)
{
    int outl = 0;
    memset(j->buf, 0, len);
    if (EVP_EncryptUpdate(j->cipher, j->buf, &outl, j->buf, (int)len) != 1 || (size_t)outl != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static int overwrite_pass(shred_job *j, const shred_hooks *hooks)
{
    off_t size = j->st.st_size;
    if (keystream_start(j) != 0)
        return -1;
    for (off_t off = 0; off < size;) {
        if (hooks != NULL && hooks->progress != NULL)
            hooks->progress(hooks->arg);
        if (hooks != NULL && hooks->stop != NULL && *hooks->stop) {
            errno = EINTR;
            return -1;
        }
        size_t n = size - off < (off_t)SHRED_CHUNK ? (size_t)(size - off) : SHRED_CHUNK;
        if (keystream_next(j, n) != 0 || pwrite_full(j->fd, j->buf, n, off) != 0)
            return -1;
        off += (off_t)n;
    }
    /* Keep the old times: an interrupted orphan must still look as old as it was. */
    struct timespec times[2] = {j->st.st_atim, j->st.st_mtim};
    futimens(j->fd, times);
    return fsync(j->fd);
}

/* Unlink path only if it still names the inode we overwrote; a name now pointing
 * elsewhere belongs to someone else (and a vanished one is fine). */
static int unlink_same(const shred_job *j, const char *path)
{
    struct stat now;
    if (lstat(path, &now) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!same_inode(&now, &j->st))
        return 0;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int shred_file(const char *path, unsigned passes, const shred_hooks *hooks)
{
    shred_job j = {.fd = -1};
    int rc = job_open(&j, path);
    if (rc != SHRED_DONE)
        goto out;
    rc = SHRED_ERROR;
    j.cipher = EVP_CIPHER_CTX_new();
    j.buf = malloc(SHRED_CHUNK);
    if (j.cipher == NULL || j.buf == NULL) {
        errno = ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < (passes == 0 ? 1 : passes); i++)
        if (overwrite_pass(&j, hooks) != 0)
            goto out;
    if (unlink_same(&j, path) == 0)
        rc = SHRED_DONE;
out:;
    int saved = errno;
    if (j.fd >= 0)
        close(j.fd); /* releases the lock, after the unlink */
    free(j.buf);
    EVP_CIPHER_CTX_free(j.cipher);
    errno = saved;
    return rc;
}
