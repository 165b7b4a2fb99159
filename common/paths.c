/* paths.c - on-disk locations, their start-up checks, and comparing paths by name. */
#include "paths.h"

#include <errno.h>
#include <libgen.h>
#include <stdbool.h>
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

/* Lexical form for comparing paths: no "." components, no doubled or trailing '/'. */
static void path_norm(const char *p, char *out, size_t cap)
{
    size_t o = 0;
    bool abs = p[0] == '/';
    if (abs && cap > 1)
        out[o++] = '/';
    while (*p != '\0') {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        if (!(n == 1 && p[0] == '.')) {
            if (o > (size_t)abs && o + 1 < cap)
                out[o++] = '/';
            if (o + n >= cap)
                n = cap - o - 1;
            memcpy(out + o, p, n);
            o += n;
        }
        p += strcspn(p, "/");
    }
    if (o == 0 && cap > 1)
        out[o++] = '.';
    out[o] = '\0';
}

int paths_within(const char *a, const char *b)
{
    char na[PATHS_MAX], nb[PATHS_MAX];
    path_norm(a, na, sizeof na);
    path_norm(b, nb, sizeof nb);
    size_t n = strlen(na);
    if (strcmp(na, ".") == 0)
        return nb[0] != '/';
    if (strncmp(na, nb, n) != 0)
        return 0;
    return nb[n] == '\0' || nb[n] == '/' || (n > 0 && na[n - 1] == '/');
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
    dev_t ds, dt, dtr, dsp;
    if (prepare_dir("STORAGE_PATH", c->storage_path, &ds, err, errlen) != 0 ||
        prepare_dir("TEMP_PATH", c->temp_path, &dt, err, errlen) != 0)
        return -1;
    /* Any file system will do for the spill (a memory one is best: see the README). */
    if (c->spill_path[0] != '\0' && prepare_dir("SPILL_PATH", c->spill_path, &dsp, err, errlen) != 0)
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
