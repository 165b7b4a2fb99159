/* test_secret.c - the contract of common/secret.c: the pinned secret file (created
 * 0600 and reloaded identical; refused on the data volume, through a symbolic link,
 * owned by another user, open to group or others, of the wrong size or kind;
 * $CREDENTIALS_DIRECTORY), the page it is kept in (locked, out of core dumps, wiped),
 * the store fingerprint, and the process-wide dump protections.
 *
 * The data volume is a directory under /tmp; a pinned secret that must be accepted
 * lives under /dev/shm (tmpfs). Where /dev/shm is not another file system, or the test
 * may not give a file away or bind-mount one (not root), the test that needs it is
 * skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "crypt.h"
#include "paths.h"
#include "secret.h"

typedef struct {
    char volume[64];  /* the data volume: storage/uploads, storage/temp, storage/trash */
    char pinned[64];  /* a directory on tmpfs */
    char path[128];   /* a secret file under pinned */
    char err[1024];
    cfg c;
    secret *s;
} fixture;

static int other_file_system(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev != sb.st_dev;
}

static void set_or_fail(cfg *c, const char *name, const char *value)
{
    char err[512];
    if (cfg_set(c, name, value, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char p[PATHS_MAX], warn[256];
    assert_non_null(f);
    strcpy(f->volume, "/tmp/test_secret.XXXXXX");
    assert_non_null(mkdtemp(f->volume));
    strcpy(f->pinned, "/dev/shm/test_secret.XXXXXX");
    assert_non_null(mkdtemp(f->pinned));
    snprintf(f->path, sizeof f->path, "%s/secret.key", f->pinned);
    cfg_init(&f->c);
    snprintf(p, sizeof p, "%s/storage/uploads", f->volume);
    set_or_fail(&f->c, "STORAGE_PATH", p);
    snprintf(p, sizeof p, "%s/storage/temp", f->volume);
    set_or_fail(&f->c, "TEMP_PATH", p);
    set_or_fail(&f->c, "SECRET_PATH", f->path);
    if (paths_prepare(&f->c, f->err, sizeof f->err) != 0)
        fail_msg("%s", f->err);
    f->s = secret_new(warn, sizeof warn);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    secret_free(f->s);
    cfg_free(&f->c);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->volume, f->pinned);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void need_tmpfs(const fixture *f)
{
    if (!other_file_system(f->volume, f->pinned))
        skip();
}

static int load(fixture *f, const char *path)
{
    set_or_fail(&f->c, "SECRET_PATH", path);
    f->err[0] = '\0';
    return secret_load_file(&f->c, f->s, f->err, sizeof f->err);
}

/* err names SECRET_PATH with its value, and says what is wrong. */
static void assert_refused(fixture *f, const char *path, const char *why)
{
    char want[256];
    assert_int_equal(load(f, path), -1);
    snprintf(want, sizeof want, "SECRET_PATH=%s: ", path);
    if (strncmp(f->err, want, strlen(want)) != 0 || strstr(f->err, why) == NULL)
        fail_msg("refusal of %s: \"%s\", expected \"%s...%s...\"", path, f->err, want, why);
}

static void write_file(const char *path, size_t len, mode_t mode)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < len; i++)
        fputc((int)(i * 7 + 1), fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

/* ---- the pinned file ---- */

static void a_pinned_secret_is_created_0600_on_tmpfs_and_reloaded_identical(void **state)
{
    fixture *f = *state;
    uint8_t first[CRYPT_SECRET_LEN], zero[CRYPT_SECRET_LEN] = {0};
    struct stat st;
    need_tmpfs(f);
    if (load(f, f->path) != 0)
        fail_msg("%s", f->err);
    assert_true(f->s->loaded);
    assert_string_equal(f->s->store_fp, ""); /* pinned: the store holds no secret to compare */
    assert_memory_not_equal(f->s->key, zero, sizeof zero);
    memcpy(first, f->s->key, sizeof first);
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, CRYPT_SECRET_LEN);
    secret_clear(f->s);
    assert_int_equal(load(f, f->path), 0);
    assert_memory_equal(f->s->key, first, sizeof first);
}

static void its_missing_directory_is_created_0700(void **state)
{
    fixture *f = *state;
    char path[160], dir[128];
    struct stat st;
    need_tmpfs(f);
    snprintf(dir, sizeof dir, "%s/credentials", f->pinned);
    snprintf(path, sizeof path, "%s/secret.key", dir);
    if (load(f, path) != 0)
        fail_msg("%s", f->err);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
}

static void a_secret_on_the_data_volume_is_refused_before_anything_is_created(void **state)
{
    fixture *f = *state;
    char path[PATHS_MAX];
    struct stat st;
    /* Beside the storage, as every earlier version kept it, and elsewhere on its disk. */
    snprintf(path, sizeof path, "%s/storage/secret.key", f->volume);
    assert_refused(f, path, "on the file system of STORAGE_PATH");
    assert_non_null(strstr(f->err, "leave SECRET_PATH empty"));
    assert_int_equal(stat(path, &st), -1);
    snprintf(path, sizeof path, "%s/elsewhere/secret.key", f->volume);
    assert_refused(f, path, "on the file system of STORAGE_PATH");
    snprintf(path, sizeof path, "%s/elsewhere", f->volume);
    assert_int_equal(stat(path, &st), -1); /* not even its directory */
    /* An existing one is refused too, however well it is kept. */
    snprintf(path, sizeof path, "%s/storage/secret.key", f->volume);
    write_file(path, CRYPT_SECRET_LEN, 0600);
    assert_refused(f, path, "on the file system of STORAGE_PATH");
    assert_false(f->s->loaded);
}

static void a_file_of_the_data_volume_bound_onto_tmpfs_is_refused_by_its_device(void **state)
{
    fixture *f = *state;
    char target[PATHS_MAX];
    need_tmpfs(f);
    snprintf(target, sizeof target, "%s/storage/elsewhere.key", f->volume);
    write_file(target, CRYPT_SECRET_LEN, 0600);
    write_file(f->path, 0, 0600);
    if (mount(target, f->path, NULL, MS_BIND, NULL) != 0)
        skip(); /* needs CAP_SYS_ADMIN */
    /* Its name is on tmpfs, its bytes on the data volume. */
    assert_refused(f, f->path, "on the file system of STORAGE_PATH");
    assert_int_equal(umount2(f->path, 0), 0);
}

static void a_symbolic_link_is_refused_even_to_a_good_file(void **state)
{
    fixture *f = *state;
    char good[160], link[160];
    need_tmpfs(f);
    snprintf(good, sizeof good, "%s/good.key", f->pinned);
    write_file(good, CRYPT_SECRET_LEN, 0600);
    snprintf(link, sizeof link, "%s/link.key", f->pinned);
    assert_int_equal(symlink(good, link), 0);
    assert_refused(f, link, "a symbolic link");
    assert_int_equal(load(f, good), 0);
}

static void a_mode_giving_group_or_others_any_bit_is_refused(void **state)
{
    fixture *f = *state;
    static const mode_t bad[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644, 0666};
    need_tmpfs(f);
    write_file(f->path, CRYPT_SECRET_LEN, 0600);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[64];
        assert_int_equal(chmod(f->path, bad[i]), 0);
        snprintf(why, sizeof why, "mode %04o gives group or others access (chmod 600)", (unsigned)bad[i]);
        assert_refused(f, f->path, why);
    }
    assert_int_equal(chmod(f->path, 0400), 0);
    assert_int_equal(load(f, f->path), 0);
}

static void a_file_owned_by_another_user_is_refused(void **state)
{
    fixture *f = *state;
    need_tmpfs(f);
    if (geteuid() != 0)
        skip(); /* only root can give a file away */
    write_file(f->path, CRYPT_SECRET_LEN, 0600);
    assert_int_equal(chown(f->path, 65534, 65534), 0);
    assert_refused(f, f->path, "owned by uid 65534; expected this user (0) or root");
    assert_int_equal(chown(f->path, 0, 0), 0);
    assert_int_equal(load(f, f->path), 0);
}

static void a_file_of_the_wrong_size_or_kind_is_refused(void **state)
{
    fixture *f = *state;
    char dir[160];
    need_tmpfs(f);
    write_file(f->path, CRYPT_SECRET_LEN + 1, 0600);
    assert_refused(f, f->path, "size 33, want exactly 32 bytes");
    write_file(f->path, CRYPT_SECRET_LEN - 1, 0600);
    assert_refused(f, f->path, "size 31");
    write_file(f->path, 0, 0600);
    assert_refused(f, f->path, "empty (creation interrupted? remove it)");
    snprintf(dir, sizeof dir, "%s/adir", f->pinned);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_refused(f, dir, "not a regular file");
    assert_false(f->s->loaded);
}

static void credentials_directory_is_taken_from_the_environment(void **state)
{
    fixture *f = *state;
    char want[PATHS_MAX];
    uint8_t key[CRYPT_SECRET_LEN];
    need_tmpfs(f);
    write_file(f->path, CRYPT_SECRET_LEN, 0400);
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", f->pinned, 1), 0);
    if (load(f, "$CREDENTIALS_DIRECTORY/secret.key") != 0)
        fail_msg("%s", f->err);
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    assert_memory_equal(f->s->key, key, sizeof key);
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    assert_refused(f, "$CREDENTIALS_DIRECTORY/secret.key", "CREDENTIALS_DIRECTORY is not set");
    snprintf(want, sizeof want, "%s", f->err);
    assert_non_null(strstr(want, "LoadCredential="));
}

/* ---- the page ---- */

/* The VmFlags of the mapping holding p, from /proc/self/smaps. */
static void vm_flags(const void *p, char *out, size_t cap)
{
    FILE *fp = fopen("/proc/self/smaps", "r");
    char line[512], perms[8];
    int in = 0;
    out[0] = '\0';
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx %7s ", &a, &b, perms) == 3 && strlen(perms) == 4)
            in = (uintptr_t)p >= a && (uintptr_t)p < b;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%.200s", line + 8);
            break;
        }
    }
    fclose(fp);
}

static void the_page_is_locked_out_of_core_dumps_and_wiped(void **state)
{
    fixture *f = *state;
    uint8_t key[CRYPT_SECRET_LEN], zero[sizeof(secret)] = {0}, d[SHA_DIGEST_LENGTH];
    char flags[256], fp[SECRET_FP_LEN + 1];
    vm_flags(f->s, flags, sizeof flags);
    assert_non_null(strstr(flags, " dd")); /* MADV_DONTDUMP */
#ifndef __SANITIZE_ADDRESS__ /* AddressSanitizer turns mlock into a no-op */
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= 4096)
        assert_non_null(strstr(flags, " lo")); /* mlock */
#endif
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(0xa0 + i);
    secret_set(f->s, key, 1);
    assert_true(f->s->loaded);
    assert_memory_equal(f->s->key, key, sizeof key);
    SHA1(key, sizeof key, d);
    crypt_hex(d, sizeof d, fp);
    assert_string_equal(f->s->store_fp, fp); /* what redis.sha1hex computes in the store */
    secret_clear(f->s);
    assert_memory_equal(f->s, zero, sizeof zero);
}

static void the_process_is_not_dumpable_and_dumps_no_core(void **state)
{
    char warn[256];
    struct rlimit rl;
    (void)state;
    if (secret_protect_process(warn, sizeof warn) != 0)
        fail_msg("%s", warn);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(rl.rlim_max, 0);
    /* Already so: nothing to change, nothing to warn about. */
    assert_int_equal(secret_protect_process(warn, sizeof warn), 0);
    assert_string_equal(warn, "");
}

static void a_stale_file_beside_the_storage_is_found(void **state)
{
    fixture *f = *state;
    char found[PATHS_MAX], want[PATHS_MAX];
    assert_int_equal(secret_stale_file(&f->c, found, sizeof found), 0);
    snprintf(want, sizeof want, "%s/storage/secret.key", f->volume);
    write_file(want, CRYPT_SECRET_LEN, 0600);
    assert_int_equal(secret_stale_file(&f->c, found, sizeof found), 1);
    assert_string_equal(found, want);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(a_pinned_secret_is_created_0600_on_tmpfs_and_reloaded_identical),
        T(its_missing_directory_is_created_0700),
        T(a_secret_on_the_data_volume_is_refused_before_anything_is_created),
        T(a_file_of_the_data_volume_bound_onto_tmpfs_is_refused_by_its_device),
        T(a_symbolic_link_is_refused_even_to_a_good_file),
        T(a_mode_giving_group_or_others_any_bit_is_refused),
        T(a_file_owned_by_another_user_is_refused),
        T(a_file_of_the_wrong_size_or_kind_is_refused),
        T(credentials_directory_is_taken_from_the_environment),
        T(the_page_is_locked_out_of_core_dumps_and_wiped),
        T(a_stale_file_beside_the_storage_is_found),
        /* Last: it changes the process for good. */
        cmocka_unit_test(the_process_is_not_dumpable_and_dumps_no_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
