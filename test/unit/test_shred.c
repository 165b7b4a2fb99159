/* test_shred.c - the contract of shredder/shred.c: the bytes are overwritten in place
 * (seen through a hard link kept aside), the name goes, a file a reader has locked is
 * left alone, symlinks and non-files are refused, and a raised stop flag stops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shred.h"

#define BLOCK 4096

typedef struct {
    char dir[64];
    char path[128]; /* the file to shred */
    char link[128]; /* a hard link to it, the way to look at the old inode afterwards */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/rz-shred-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
    snprintf(f->link, sizeof(f->link), "%s/link", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    unlink(f->link);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A recognisable, non-random pattern of len bytes. */
static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 31 + (i >> 12)) & 0xff);
    return p;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *p = malloc(*len ? *len : 1);
    assert_non_null(p);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    size_t got = 0;
    while (got < *len) {
        ssize_t n = read(fd, p + got, *len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* No 4 KiB block (nor the tail) of now equals the same block of before. */
static void assert_every_block_differs(const uint8_t *before, const uint8_t *now, size_t len)
{
    for (size_t off = 0; off < len; off += BLOCK) {
        size_t n = len - off < BLOCK ? len - off : BLOCK;
        if (memcmp(before + off, now + off, n) == 0)
            fail_msg("block at offset %zu was not overwritten", off);
    }
}

/* Write len patterned bytes, link them aside, shred with passes, check the inode. */
static void shred_and_check(fixture *f, size_t len, unsigned passes)
{
    uint8_t *orig = pattern(len);
    write_file(f->path, orig, len);
    assert_int_equal(link(f->path, f->link), 0);
    struct stat before;
    assert_int_equal(stat(f->path, &before), 0);

    assert_int_equal(shred_file(f->path, passes, NULL), SHRED_DONE);

    assert_false(exists(f->path));
    size_t got;
    uint8_t *now = read_file(f->link, &got);
    assert_int_equal(got, len);
    assert_every_block_differs(orig, now, len);
    struct stat after;
    assert_int_equal(stat(f->link, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino); /* in place: the same inode */
    assert_int_equal(after.st_nlink, 1);
    free(orig);
    free(now);
}

static void shredding_overwrites_the_same_inode_and_removes_the_name(void **state)
{
    shred_and_check(*state, 3 * 1024 * 1024 + 12345, 1); /* not a whole number of chunks */
}

static void a_5_mib_file_is_overwritten_everywhere(void **state)
{
    shred_and_check(*state, 5 * 1024 * 1024, 1);
}

static void three_passes_work(void **state)
{
    shred_and_check(*state, 2 * 1024 * 1024 + 100, 3);
}

static void a_tiny_file_is_overwritten(void **state)
{
    shred_and_check(*state, 16, 1); /* 16 random bytes equal to the old ones: 2^-128 */
}

static void the_modification_time_is_kept_so_an_interrupted_orphan_stays_old(void **state)
{
    fixture *f = *state;
    uint8_t *orig = pattern(10000);
    write_file(f->path, orig, 10000);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, f->path, old, 0), 0);
    assert_int_equal(link(f->path, f->link), 0);
    assert_int_equal(shred_file(f->path, 2, NULL), SHRED_DONE);
    struct stat st;
    assert_int_equal(stat(f->link, &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 1000000000);
    free(orig);
}

static void a_file_a_reader_has_locked_is_busy_and_untouched(void **state)
{
    fixture *f = *state;
    size_t len = 100000;
    uint8_t *orig = pattern(len);
    write_file(f->path, orig, len);
    int reader = open(f->path, O_RDONLY);
    assert_true(reader >= 0);
    assert_int_equal(flock(reader, LOCK_SH), 0);

    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_BUSY);

    size_t got;
    uint8_t *now = read_file(f->path, &got);
    assert_int_equal(got, len);
    assert_memory_equal(now, orig, len);
    free(now);
    /* Once the reader is done, the next try succeeds. */
    close(reader);
    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_DONE);
    assert_false(exists(f->path));
    free(orig);
}

static void a_symlink_is_refused_and_its_target_untouched(void **state)
{
    fixture *f = *state;
    uint8_t *orig = pattern(5000);
    write_file(f->link, orig, 5000); /* the target */
    assert_int_equal(symlink(f->link, f->path), 0);

    errno = 0;
    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_ERROR);
    assert_int_equal(errno, ELOOP);

    assert_true(exists(f->path));
    size_t got;
    uint8_t *now = read_file(f->link, &got);
    assert_int_equal(got, 5000);
    assert_memory_equal(now, orig, 5000);
    free(now);
    free(orig);
}

static void a_directory_is_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_ERROR);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rmdir(f->path), 0);
}

static void a_missing_file_is_an_error_with_enoent(void **state)
{
    fixture *f = *state;
    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_ERROR);
    assert_int_equal(errno, ENOENT);
}

static void an_empty_file_is_just_unlinked(void **state)
{
    fixture *f = *state;
    write_file(f->path, (const uint8_t *)"", 0);
    assert_int_equal(shred_file(f->path, 1, NULL), SHRED_DONE);
    assert_false(exists(f->path));
}

static void a_raised_stop_flag_leaves_the_file_in_place(void **state)
{
    fixture *f = *state;
    size_t len = 3 * SHRED_CHUNK;
    uint8_t *orig = pattern(len);
    write_file(f->path, orig, len);
    volatile sig_atomic_t stop = 1;
    shred_hooks hooks = {.stop = &stop};

    errno = 0;
    assert_int_equal(shred_file(f->path, 1, &hooks), SHRED_ERROR);
    assert_int_equal(errno, EINTR);
    assert_true(exists(f->path));

    /* Not locked any more: the next run starts again and finishes. */
    stop = 0;
    assert_int_equal(shred_file(f->path, 1, &hooks), SHRED_DONE);
    assert_false(exists(f->path));
    free(orig);
}

static void count_call(void *arg)
{
    (*(unsigned *)arg)++;
}

static void progress_is_reported_between_chunks_of_every_pass(void **state)
{
    fixture *f = *state;
    size_t len = 3 * SHRED_CHUNK;
    uint8_t *orig = pattern(len);
    write_file(f->path, orig, len);
    unsigned calls = 0;
    shred_hooks hooks = {.progress = count_call, .arg = &calls};
    assert_int_equal(shred_file(f->path, 2, &hooks), SHRED_DONE);
    assert_true(calls >= 6);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(shredding_overwrites_the_same_inode_and_removes_the_name, setup, teardown),
        cmocka_unit_test_setup_teardown(a_5_mib_file_is_overwritten_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(three_passes_work, setup, teardown),
        cmocka_unit_test_setup_teardown(a_tiny_file_is_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(the_modification_time_is_kept_so_an_interrupted_orphan_stays_old, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_file_a_reader_has_locked_is_busy_and_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(a_symlink_is_refused_and_its_target_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(a_directory_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_missing_file_is_an_error_with_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_file_is_just_unlinked, setup, teardown),
        cmocka_unit_test_setup_teardown(a_raised_stop_flag_leaves_the_file_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(progress_is_reported_between_chunks_of_every_pass, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
