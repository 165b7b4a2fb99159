/* paths.c - on-disk locations and their start-up checks. */
#include "paths.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int paths_file(const cfg *c, const char *id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%.2s/%s", c->storage_path, id, id);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int paths_file_dir(const cfg *c, const char *id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%.2s", c->storage_path, id);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int paths_trash_dir(const cfg *c, char *out, size_t cap)
{
    char tmp[PATHS_MAX];
    snprintf(tmp, sizeof(tmp), "%s", c->temp_path);
    size_t len = strlen(tmp);
    while (len > 1 && tmp[len - 1] == '/')
        tmp[--len] = '\0';
    int n = snprintf(out, cap, "%s/trash", dirname(tmp));
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int prepare_dir(const char *name, const char *path, dev_t *dev, char *err, size_t errlen)
{
    struct stat st;
    if (util_mkdirs(path, 0700) != 0 || stat(path, &st) != 0) {
        snprintf(err, errlen, "%s=%s: cannot create directory: %s", name, path, strerror(errno));
        return -1;
    }
    if (access(path, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s=%s: not writable: %s", name, path, strerror(errno));
        return -1;
    }
    *dev = st.st_dev;
    return 0;
}

int paths_prepare(const cfg *c, char *err, size_t errlen)
{
    char trash[PATHS_MAX];
    dev_t ds, dt, dtr;
    if (prepare_dir("STORAGE_PATH", c->storage_path, &ds, err, errlen) != 0 ||
        prepare_dir("TEMP_PATH", c->temp_path, &dt, err, errlen) != 0)
        return -1;
    if (paths_trash_dir(c, trash, sizeof(trash)) != 0 || prepare_dir("TEMP_PATH", trash, &dtr, err, errlen) != 0)
        return -1;
    if (ds != dt || dt != dtr) {
        snprintf(err, errlen, "TEMP_PATH=%s: must be on the same file system as STORAGE_PATH=%s", c->temp_path,
                 c->storage_path);
        return -1;
    }
    return 0;
}
