/* logfile.c - append, rotate, reopen (see logfile.h). */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int open_fd(logfile *lf)
{
    int fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    lf->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    lf->fd = fd;
    return 0;
}

int logfile_open(logfile *lf, const char *path, uint64_t max_bytes, unsigned backups, int to_stdout, char *err,
                 size_t errlen)
{
    char dir[PATH_MAX];
    memset(lf, 0, sizeof(*lf));
    lf->fd = -1;
    lf->path = strdup(path);
    lf->max_bytes = max_bytes;
    lf->backups = backups;
    lf->to_stdout = to_stdout;
    snprintf(dir, sizeof(dir), "%s", path);
    if (lf->path == NULL || util_mkdirs(dirname(dir), 0750) != 0 || open_fd(lf) != 0) {
        snprintf(err, errlen, "LOG_PATH=%s: cannot open: %s", path, strerror(errno));
        free(lf->path);
        lf->path = NULL;
        return -1;
    }
    return 0;
}

int logfile_reopen(logfile *lf)
{
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    return open_fd(lf);
}

static void rotate(logfile *lf)
{
    char from[PATH_MAX], to[PATH_MAX];
    if (lf->backups == 0) {
        if (ftruncate(lf->fd, 0) == 0)
            lf->size = 0;
        return;
    }
    for (unsigned i = lf->backups; i > 1; i--) {
        snprintf(from, sizeof(from), "%s.%u", lf->path, i - 1);
        snprintf(to, sizeof(to), "%s.%u", lf->path, i);
        rename(from, to);
    }
    snprintf(to, sizeof(to), "%s.1", lf->path);
    rename(lf->path, to);
    logfile_reopen(lf);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void write_lines(logfile *lf, const char *buf, size_t len)
{
    if (lf->to_stdout)
        write_all(1, buf, len);
    if (lf->fd < 0 && logfile_reopen(lf) != 0)
        return;
    if (lf->size > 0 && lf->size + len > lf->max_bytes)
        rotate(lf);
    if (lf->fd < 0)
        return;
    write_all(lf->fd, buf, len);
    lf->size += len;
}

void logfile_write(logfile *lf, const char *buf, size_t len)
{
    /* All in one write unless they would pass the limit: then line by line, so that
     * the rotation falls between two of them. */
    if (lf->size + len <= lf->max_bytes) {
        write_lines(lf, buf, len);
        return;
    }
    const char *end = buf + len, *nl;
    while (buf < end && (nl = memchr(buf, '\n', (size_t)(end - buf))) != NULL) {
        write_lines(lf, buf, (size_t)(nl - buf + 1));
        buf = nl + 1;
    }
    if (buf < end)
        write_lines(lf, buf, (size_t)(end - buf));
}

void logfile_close(logfile *lf)
{
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    free(lf->path);
    lf->path = NULL;
}
