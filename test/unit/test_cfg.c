/* test_cfg.c - the configuration contract: defaults, every value rule and its error line,
 * the YAML file, the environment, and the cross-checks of cfg_validate.
 * The example etc/raven-zero.yaml is found from the working directory or from where the
 * binary sits (build/<flavour>/test/unit/). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "value.h"

#ifndef RZ_PREFIX
#define RZ_PREFIX "/usr/local" /* as in cfg.c; the Makefile passes the same -D to both */
#endif

#define ERRLEN 512

typedef struct {
    cfg c;
    char err[ERRLEN];
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_cfg.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/config.yaml", f->dir);
    cfg_init(&f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cfg_free(&f->c);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* cfg_set that must succeed. */
static void set_ok(fixture *f, const char *name, const char *value)
{
    if (cfg_set(&f->c, name, value, f->err, sizeof f->err) != 0)
        fail_msg("%s=%s refused: %s", name, value, f->err);
}

/* cfg_set that must fail, leaving its error line in f->err. */
static void set_bad(fixture *f, const char *name, const char *value)
{
    f->err[0] = '\0';
    if (cfg_set(&f->c, name, value, f->err, sizeof f->err) == 0)
        fail_msg("%s=%s accepted", name, value);
    if (strstr(f->err, ": expected ") == NULL && strncmp(f->err, "unknown setting", 15) != 0)
        fail_msg("%s=%s: error line \"%s\" says nothing of what is expected", name, value, f->err);
    assert_null(strchr(f->err, '\n'));
}

static int load(fixture *f, const char *yaml)
{
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    f->err[0] = '\0';
    return cfg_load_yaml(&f->c, f->path, f->err, sizeof f->err);
}

/* f->err must be "<file>:<line>: " followed by text containing want. */
static void assert_yaml_error(fixture *f, int line, const char *want)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s:%d: ", f->path, line);
    if (strncmp(f->err, prefix, strlen(prefix)) != 0 || strstr(f->err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", f->err, prefix, want);
    assert_null(strchr(f->err, '\n'));
}

/* etc/raven-zero.yaml under the working directory, else under the tree root four
 * directories above the one holding this binary. */
static const char *example_path(void)
{
    static char path[4096];
    char exe[4000];
    ssize_t n;
    if (access("etc/raven-zero.yaml", R_OK) == 0)
        return "etc/raven-zero.yaml";
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        fail_msg("etc/raven-zero.yaml not found");
    exe[n] = '\0';
    for (int up = 0; up < 5; up++) {
        char *slash = strrchr(exe, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
    }
    snprintf(path, sizeof path, "%s/etc/raven-zero.yaml", exe);
    if (access(path, R_OK) != 0)
        fail_msg("etc/raven-zero.yaml not found (run from the source tree root)");
    return path;
}

/* An address as the request path sees it (test_addr.c tests the parser itself). */
static void address(const char *ip, uint8_t out[16])
{
    assert_int_equal(addr_parse(ip, strlen(ip), out), 0);
}

/* ---- defaults and names ---- */

static void defaults_are_the_spec_defaults(void **state)
{
    fixture *f = *state;
    cfg *c = &f->c;
    assert_string_equal(c->redis_url, "redis://localhost:6379/0");
    assert_string_equal(c->storage_path, "./storage/uploads");
    assert_string_equal(c->temp_path, "./storage/temp");
    assert_int_equal(c->max_file_size, 10485760);
    assert_int_equal(c->allowed_mime_types.n, 0);
    assert_int_equal(c->upload_rate_limit.count, 30);
    assert_int_equal(c->upload_rate_limit.period_s, 3600);
    assert_int_equal(c->health_rate_limit.count, 1);
    assert_int_equal(c->health_rate_limit.period_s, 1);
    assert_int_equal(c->download_fail_limit, 10);
    assert_int_equal(c->download_block_window, 1800);
    assert_int_equal(c->cleanup_interval_minutes, 10);
    assert_int_equal(c->orphan_age_minutes, 15);
    assert_int_equal(c->secure_shred_passes, 1);
    assert_non_null(strstr(c->diceware_wordlist_path, "eff_large_wordlist.txt"));
    assert_int_equal(c->listen.n, 1);
    assert_string_equal(c->listen.items[0], "0.0.0.0:8000");
    assert_in_range(c->workers, 1, 256);
    assert_int_equal(c->trusted_proxies.n, 2);
    assert_int_equal(c->cors_origins.n, 1);
    assert_string_equal(c->cors_origins.items[0], "*");
    assert_string_equal(c->public_url, "");
    assert_string_equal(c->log_path, "./logs/raven_zero.log");
    assert_int_equal(c->log_max_bytes, 10485760);
    assert_int_equal(c->log_backups, 5);
    assert_int_equal(c->log_stdout, 0);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_string_equal(c->secret_path, ""); /* the store keeps the secret */
    assert_int_equal(c->fsync_uploads, 0);
    assert_int_equal(c->metrics_allow.n, 2);
    assert_int_equal(c->max_connections, 1024);
    assert_int_equal(c->max_uploads_per_client, 4);
    assert_int_equal(c->idle_timeout, 10);
    assert_int_equal(c->body_timeout, 60);
    assert_int_equal(c->shutdown_timeout, 30);
}

static void defaults_pass_validation(void **state)
{
    fixture *f = *state;
    if (cfg_validate(&f->c, f->err, sizeof f->err) != 0)
        fail_msg("%s", f->err);
}

static void cfg_names_lists_every_spec_setting_once(void **state)
{
    static const char *const spec[] = {
        "REDIS_URL", "STORAGE_PATH", "TEMP_PATH", "MAX_FILE_SIZE", "ALLOWED_MIME_TYPES",
        "UPLOAD_RATE_LIMIT", "HEALTH_RATE_LIMIT", "DOWNLOAD_FAIL_LIMIT",
        "DOWNLOAD_BLOCK_WINDOW", "CLEANUP_INTERVAL_MINUTES", "ORPHAN_AGE_MINUTES",
        "SECURE_SHRED_PASSES", "DICEWARE_WORDLIST_PATH", "LISTEN", "WORKERS",
        "TRUSTED_PROXIES", "CORS_ORIGINS", "PUBLIC_URL", "LOG_PATH", "LOG_MAX_BYTES",
        "LOG_BACKUPS", "LOG_STDOUT", "LOG_LEVEL", "SECRET_PATH"};
    size_t n = 0;
    (void)state;
    for (; cfg_names[n] != NULL; n++)
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(cfg_names[j], cfg_names[n]);
    assert_int_equal(n, 59);
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        size_t j = 0;
        while (cfg_names[j] != NULL && strcmp(cfg_names[j], spec[i]) != 0)
            j++;
        if (cfg_names[j] == NULL)
            fail_msg("%s missing from cfg_names", spec[i]);
    }
}

static void setting_names_are_case_insensitive(void **state)
{
    fixture *f = *state;
    set_ok(f, "max_file_size", "5");
    assert_int_equal(f->c.max_file_size, 5);
    set_ok(f, "Max_File_Size", "6");
    assert_int_equal(f->c.max_file_size, 6);
}

static void unknown_setting_is_an_error_naming_it(void **state)
{
    fixture *f = *state;
    set_bad(f, "FOO", "1");
    assert_string_equal(f->err, "unknown setting \"FOO\"");
}

/* ---- numbers ---- */

static void max_file_size_rejects_words_with_a_line_naming_the_setting(void **state)
{
    fixture *f = *state;
    set_bad(f, "MAX_FILE_SIZE", "ten");
    assert_string_equal(f->err, "MAX_FILE_SIZE=ten: expected a byte count (1 to 1099511627776)");
    assert_int_equal(f->c.max_file_size, 10485760);
}

static void max_file_size_accepts_bytes_and_binary_suffixes(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {{"1", 1},           {"1099511627776", 1ull << 40}, {"10k", 10240},
                 {"10K", 10240},     {"10KiB", 10240},              {"3m", 3ull << 20},
                 {"3MiB", 3ull << 20}, {"2g", 2ull << 30},          {"2gib", 2ull << 30},
                 {"1T", 1ull << 40}, {"007", 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_ok(f, "MAX_FILE_SIZE", cases[i].text);
        assert_int_equal(f->c.max_file_size, cases[i].bytes);
    }
}

static void max_file_size_rejects_zero_signs_decimals_and_more_than_a_tebibyte(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"0", "-1", "+5", "1.5", "1099511627777", "2T", "10 M",
                                      "10MB", "10kb", "99999999999999999999999", "", "0x10",
                                      "1e6", "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "MAX_FILE_SIZE", bad[i]);
}

static void integer_settings_accept_their_bounds_and_reject_beyond(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *name, *lo, *hi, *below, *above;
    } cases[] = {
        {"DOWNLOAD_FAIL_LIMIT", "1", "1000000", "0", "1000001"},
        {"DOWNLOAD_BLOCK_WINDOW", "1", "604800", "0", "604801"},
        {"CLEANUP_INTERVAL_MINUTES", "1", "1440", "0", "1441"},
        {"ORPHAN_AGE_MINUTES", "1", "10080", "0", "10081"},
        {"SECURE_SHRED_PASSES", "1", "35", "0", "36"},
        {"LOG_BACKUPS", "0", "100", "-1", "101"},
        {"LOG_MAX_BYTES", "4096", "1099511627776", "4095", "1099511627777"},
        {"MAX_CONNECTIONS", "1", "1000000", "0", "1000001"},
        {"MAX_CONNECTIONS_PER_CLIENT", "1", "1000000", "0", "1000001"},
        {"HEAD_TIMEOUT", "1", "3600", "0", "3601"},
        {"IPV6_PREFIX", "32", "128", "31", "129"},
        {"MAX_UPLOADS_PER_CLIENT", "1", "1000", "0", "1001"},
        {"IDLE_TIMEOUT", "1", "3600", "0", "3601"},
        {"BODY_TIMEOUT", "1", "3600", "0", "3601"},
        {"SHUTDOWN_TIMEOUT", "1", "3600", "0", "3601"},
        {"WORKERS", "1", "256", "0", "257"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_ok(f, cases[i].name, cases[i].lo);
        set_ok(f, cases[i].name, cases[i].hi);
        set_bad(f, cases[i].name, cases[i].below);
        set_bad(f, cases[i].name, cases[i].above);
        set_bad(f, cases[i].name, "18446744073709551616");
        set_bad(f, cases[i].name, "many");
    }
    set_ok(f, "IDLE_TIMEOUT", "42");
    assert_int_equal(f->c.idle_timeout, 42);
}

static void integer_error_names_the_range(void **state)
{
    fixture *f = *state;
    set_bad(f, "SECURE_SHRED_PASSES", "0");
    assert_string_equal(f->err, "SECURE_SHRED_PASSES=0: expected an integer from 1 to 35");
}

static void values_are_trimmed_of_surrounding_white_space(void **state)
{
    fixture *f = *state;
    set_ok(f, "DOWNLOAD_FAIL_LIMIT", "  7\t\n");
    assert_int_equal(f->c.download_fail_limit, 7);
    set_ok(f, "STORAGE_PATH", " /srv/drop ");
    assert_string_equal(f->c.storage_path, "/srv/drop");
    set_bad(f, "DOWNLOAD_FAIL_LIMIT", "1 2");
}

static void workers_auto_means_the_online_cores(void **state)
{
    fixture *f = *state;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    set_ok(f, "WORKERS", "3");
    set_ok(f, "WORKERS", "AUTO");
    assert_int_equal(f->c.workers, cores > 256 ? 256 : cores);
    set_bad(f, "WORKERS", "automatic");
}

/* ---- rates, booleans, levels ---- */

static void rates_accept_units_plurals_and_abbreviations(void **state)
{
    static const struct {
        const char *text;
        uint32_t count, period;
    } cases[] = {{"30/hour", 30, 3600},    {"30/hours", 30, 3600}, {"5/h", 5, 3600},
                 {"1/second", 1, 1},       {"2/s", 2, 1},          {"3/seconds", 3, 1},
                 {"10/minute", 10, 60},    {"10/m", 10, 60},       {"7/day", 7, 86400},
                 {"7/Days", 7, 86400},     {"8 / d", 8, 86400},    {"4294967295/d", 4294967295u, 86400}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg_rate r;
        if (value_rate(cases[i].text, &r.count, &r.period_s) != 0)
            fail_msg("%s refused", cases[i].text);
        assert_int_equal(r.count, cases[i].count);
        assert_int_equal(r.period_s, cases[i].period);
    }
}

static void rates_reject_zero_unknown_units_and_missing_parts(void **state)
{
    static const char *const bad[] = {"0/hour", "30", "30/", "/hour", "30/fortnight",
                                      "30 per hour", "-1/s", "30/hour/2", "4294967296/s",
                                      "30/hr", ""};
    fixture *f = *state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg_rate r;
        if (value_rate(bad[i], &r.count, &r.period_s) == 0)
            fail_msg("%s accepted", bad[i]);
        set_bad(f, "UPLOAD_RATE_LIMIT", bad[i]);
    }
    set_bad(f, "HEALTH_RATE_LIMIT", "2000000000/s");
    assert_string_equal(f->err, "HEALTH_RATE_LIMIT=2000000000/s: expected N/second, N/minute, "
                                "N/hour or N/day with N from 1 to 1000000000");
}

static void upload_rate_limit_is_stored_as_count_per_period(void **state)
{
    fixture *f = *state;
    set_ok(f, "UPLOAD_RATE_LIMIT", "100/minute");
    assert_int_equal(f->c.upload_rate_limit.count, 100);
    assert_int_equal(f->c.upload_rate_limit.period_s, 60);
}

static void booleans_accept_the_usual_spellings_in_any_case(void **state)
{
    fixture *f = *state;
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        set_ok(f, "LOG_STDOUT", yes[i]);
        assert_int_equal(f->c.log_stdout, 1);
        set_ok(f, "FSYNC_UPLOADS", no[i]);
        assert_int_equal(f->c.fsync_uploads, 0);
        set_ok(f, "FSYNC_UPLOADS", yes[i]);
        assert_int_equal(f->c.fsync_uploads, 1);
    }
    set_bad(f, "LOG_STDOUT", "2");
    set_bad(f, "LOG_STDOUT", "y");
    set_bad(f, "LOG_STDOUT", "");
}

static void log_level_accepts_the_four_names_in_any_case(void **state)
{
    fixture *f = *state;
    set_ok(f, "LOG_LEVEL", "debug");
    assert_int_equal(f->c.log_level, LOG_DEBUG);
    set_ok(f, "LOG_LEVEL", "WARNING");
    assert_int_equal(f->c.log_level, LOG_WARNING);
    set_ok(f, "LOG_LEVEL", "Error");
    assert_int_equal(f->c.log_level, LOG_ERROR);
    set_ok(f, "LOG_LEVEL", "info");
    assert_int_equal(f->c.log_level, LOG_INFO);
    set_bad(f, "LOG_LEVEL", "verbose");
    assert_string_equal(f->err, "LOG_LEVEL=verbose: expected debug, info, warning or error");
}

/* ---- strings ---- */

static void redis_url_accepts_tcp_and_unix_forms(void **state)
{
    fixture *f = *state;
    static const char *const good[] = {
        "redis://localhost", "redis://localhost:6379", "redis://localhost:6379/0",
        "redis://10.0.0.5:6380/15", "redis://:s3cr%40t@cache.internal:6379/2",
        "redis://[::1]:6379/1", "redis://valkey/", "unix:///run/redis/redis.sock"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        set_ok(f, "REDIS_URL", good[i]);
        assert_string_equal(f->c.redis_url, good[i]);
    }
}

static void redis_url_rejects_other_schemes_bad_ports_and_dbs(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "", "localhost:6379", "http://localhost:6379", "rediss://localhost",
        "redis://", "redis://localhost:0", "redis://localhost:65536", "redis://localhost:x",
        "redis://localhost/16", "redis://localhost/db", "redis://localhost/1/2",
        "redis://user@localhost", "redis://:@localhost", "redis://[::1:6379",
        "unix://", "unix://relative.sock", "unix:///", "redis://local host",
        "redis://localhost?db=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "REDIS_URL", bad[i]);
    assert_string_equal(f->c.redis_url, "redis://localhost:6379/0");
}

static void redis_url_error_hides_the_password(void **state)
{
    fixture *f = *state;
    set_bad(f, "REDIS_URL", "redis://:hunter2@localhost:6379/99");
    assert_null(strstr(f->err, "hunter2"));
    assert_non_null(strstr(f->err, "REDIS_URL=redis://***@localhost:6379/99: expected"));
}

static void paths_reject_empty_values_and_control_characters(void **state)
{
    fixture *f = *state;
    static const char *const names[] = {"STORAGE_PATH", "TEMP_PATH", "LOG_PATH", "DICEWARE_WORDLIST_PATH"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        set_bad(f, names[i], "");
        set_bad(f, names[i], "   ");
        set_bad(f, names[i], "/tmp/a\x01" "b");
        set_ok(f, names[i], "/var/lib/raven-zero/x");
    }
}

static void secret_path_may_be_empty_but_never_hold_control_characters(void **state)
{
    fixture *f = *state;
    set_ok(f, "SECRET_PATH", "/run/credentials/raven-zero.service/secret");
    set_ok(f, "SECRET_PATH", "   "); /* trimmed: back to the store */
    assert_string_equal(f->c.secret_path, "");
    set_ok(f, "SECRET_PATH", "$CREDENTIALS_DIRECTORY/secret");
    set_bad(f, "SECRET_PATH", "/tmp/a\x01" "b");
    assert_string_equal(f->err, "SECRET_PATH=/tmp/a\\x01b: expected empty or a path without control characters");
    set_ok(f, "SECRET_PATH", "");
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), 0);
}

/* ---- request bodies, the spill, the store queue ---- */

static void body_caps_take_auto_or_a_byte_count_of_at_least_64_kib(void **state)
{
    fixture *f = *state;
    static const char *const names[] = {"MAX_BODY_BYTES_PER_CLIENT", "MAX_BODY_BYTES_PER_WORKER",
                                        "SPILL_MAX_BYTES"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        set_ok(f, names[i], "AUTO");
        set_ok(f, names[i], "64K");
        set_ok(f, names[i], "2T");
        set_bad(f, names[i], "65535");
        set_bad(f, names[i], "0");
        set_bad(f, names[i], "");
        set_bad(f, names[i], "automatic");
    }
    set_bad(f, "SPILL_MAX_BYTES", "1k");
    assert_string_equal(f->err, "SPILL_MAX_BYTES=1k: expected auto or a byte count (65536 to 1125899906842624)");
}

static void body_caps_auto_follow_the_uploads_a_client_may_send(void **state)
{
    fixture *f = *state;
    cfg *c = &f->c;
    uint64_t body = 10485760 + CFG_BODY_SLACK;
    set_ok(f, "WORKERS", "4");
    assert_int_equal(cfg_body_max_client(c), 4 * body);
    assert_int_equal(cfg_body_max_worker(c), 32 * body);
    assert_int_equal(cfg_spill_max_worker(c), 64 * body);
    set_ok(f, "MAX_UPLOADS_PER_CLIENT", "2");
    set_ok(f, "MAX_FILE_SIZE", "1M");
    assert_int_equal(cfg_body_max_client(c), 2 * (1048576 + CFG_BODY_SLACK));
    set_ok(f, "MAX_BODY_BYTES_PER_CLIENT", "3M");
    assert_int_equal(cfg_body_max_client(c), 3 << 20);
    assert_int_equal(cfg_body_max_worker(c), 24 << 20);
    set_ok(f, "MAX_BODY_BYTES_PER_WORKER", "5M");
    assert_int_equal(cfg_body_max_worker(c), 5 << 20);
    set_ok(f, "SPILL_MAX_BYTES", "8M"); /* all workers: a quarter each */
    assert_int_equal(cfg_spill_max_worker(c), 2 << 20);
}

static void spill_path_empty_means_temp_path(void **state)
{
    fixture *f = *state;
    assert_string_equal(cfg_spill_path(&f->c), "./storage/temp");
    set_ok(f, "SPILL_PATH", "/dev/shm/raven-zero");
    assert_string_equal(cfg_spill_path(&f->c), "/dev/shm/raven-zero");
    set_bad(f, "SPILL_PATH", "/tmp/a\x01" "b");
    set_ok(f, "SPILL_PATH", "");
    assert_string_equal(cfg_spill_path(&f->c), "./storage/temp");
}

static void store_queue_and_http2_have_safe_defaults(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->c.store_max_pending, 1024);
    assert_int_equal(f->c.http2, 1);
    set_ok(f, "STORE_MAX_PENDING", "16");
    set_bad(f, "STORE_MAX_PENDING", "15");
    set_bad(f, "STORE_MAX_PENDING", "1000001");
    set_ok(f, "HTTP2", "off");
    assert_int_equal(f->c.http2, 0);
    set_bad(f, "HTTP2", "h2c");
}

static void public_url_requires_http_or_https_and_loses_its_trailing_slash(void **state)
{
    fixture *f = *state;
    set_ok(f, "PUBLIC_URL", "https://drop.example.com/");
    assert_string_equal(f->c.public_url, "https://drop.example.com");
    set_ok(f, "PUBLIC_URL", "HTTP://drop.example.com:8080/files//");
    assert_string_equal(f->c.public_url, "http://drop.example.com:8080/files");
    set_ok(f, "PUBLIC_URL", "http://[::1]:8000");
    assert_string_equal(f->c.public_url, "http://[::1]:8000");
    set_ok(f, "PUBLIC_URL", "");
    assert_string_equal(f->c.public_url, "");
    static const char *const bad[] = {"ftp://x", "drop.example.com", "https://", "https:///x",
                                      "https://a b", "https://a/?q=1", "https://a/#f",
                                      "https://a:0", "https://a:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "PUBLIC_URL", bad[i]);
}

/* ---- lists ---- */

static void allowed_mime_types_take_a_comma_list_trimmed_and_lowercased(void **state)
{
    fixture *f = *state;
    set_ok(f, "ALLOWED_MIME_TYPES", " Image/PNG , image/* ,,application/vnd.ms-excel,");
    assert_int_equal(f->c.allowed_mime_types.n, 3);
    assert_string_equal(f->c.allowed_mime_types.items[0], "image/png");
    assert_string_equal(f->c.allowed_mime_types.items[1], "image/*");
    assert_string_equal(f->c.allowed_mime_types.items[2], "application/vnd.ms-excel");
    set_ok(f, "ALLOWED_MIME_TYPES", "");
    assert_int_equal(f->c.allowed_mime_types.n, 0);
}

static void allowed_mime_types_take_a_json_list(void **state)
{
    fixture *f = *state;
    set_ok(f, "ALLOWED_MIME_TYPES", "[\"image/png\", \"text/\\u0070lain\",\"image/*\" ]");
    assert_int_equal(f->c.allowed_mime_types.n, 3);
    assert_string_equal(f->c.allowed_mime_types.items[1], "text/plain");
    set_ok(f, "ALLOWED_MIME_TYPES", "[]");
    assert_int_equal(f->c.allowed_mime_types.n, 0);
    set_bad(f, "ALLOWED_MIME_TYPES", "[\"image/png\"");
    set_bad(f, "ALLOWED_MIME_TYPES", "[\"image/png\",]");
    set_bad(f, "ALLOWED_MIME_TYPES", "[\"image/png\"] x");
    set_bad(f, "ALLOWED_MIME_TYPES", "['image/png']");
    set_bad(f, "ALLOWED_MIME_TYPES", "[\"a\\qb/c\"]");
}

static void json_list_refuses_nested_lists_non_strings_and_trailing_text(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "[\"image/png\", [\"image/gif\"]]", "[\"image/png\", 1]",     "[\"image/png\", null]",
        "[\"image/png\", {\"a\": 1}]",     "[\"image/png\", true]",   "[\"image/png\"] [\"image/gif\"]",
        "[\"image/png\"],",              "[\"image/png\"]]",        "[\"image/png\\u0000x\"]",
        "[\"image/png\", \"\\ud800\"]"};
    set_ok(f, "ALLOWED_MIME_TYPES", "text/plain");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "ALLOWED_MIME_TYPES", bad[i]);
    set_bad(f, "ALLOWED_MIME_TYPES", "[\"image/png\", 1]");
    assert_string_equal(f->err, "ALLOWED_MIME_TYPES=[\"image/png\", 1]: expected MIME types like image/png or "
                                "image/*, comma-separated or a JSON list");
    assert_int_equal(f->c.allowed_mime_types.n, 1);
}

static void json_list_entries_are_trimmed_and_empty_ones_dropped(void **state)
{
    fixture *f = *state;
    set_ok(f, "CORS_ORIGINS", "[ \" https://a.example \", \"\", \"\\thttp://b.example:8080/\\n\" ]\n");
    assert_int_equal(f->c.cors_origins.n, 2);
    assert_string_equal(f->c.cors_origins.items[0], "https://a.example");
    assert_string_equal(f->c.cors_origins.items[1], "http://b.example:8080");
    set_ok(f, "TRUSTED_PROXIES", "[\"10.0.0.0/8\",\"\\u003a\\u003a1\"]");
    assert_int_equal(f->c.trusted_proxies.n, 2);
    set_ok(f, "TRUSTED_PROXIES", "[ ]");
    assert_int_equal(f->c.trusted_proxies.n, 0);
}

static void a_bracketed_listen_address_is_not_taken_for_a_json_list(void **state)
{
    fixture *f = *state;
    set_ok(f, "LISTEN", "[::1]:8000,[::]:9000");
    assert_int_equal(f->c.listen.n, 2);
    assert_string_equal(f->c.listen.items[0], "[::1]:8000");
    set_ok(f, "LISTEN", "[\"[::1]:8000\"]");
    assert_int_equal(f->c.listen.n, 1);
    assert_string_equal(f->c.listen.items[0], "[::1]:8000");
}

static void allowed_mime_types_error_names_the_bad_entry(void **state)
{
    fixture *f = *state;
    set_ok(f, "ALLOWED_MIME_TYPES", "text/plain");
    set_bad(f, "ALLOWED_MIME_TYPES", "image/png,image,text/*");
    assert_string_equal(f->err, "ALLOWED_MIME_TYPES=image/png,image,text/*: expected MIME types "
                                "like image/png or image/*, comma-separated or a JSON list "
                                "(bad entry \"image\")");
    assert_int_equal(f->c.allowed_mime_types.n, 1);
    static const char *const bad[] = {"*/png", "image/", "/png", "image/png; q=1", "im age/png",
                                      "image/png/x", "-x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "ALLOWED_MIME_TYPES", bad[i]);
}

static void listen_takes_host_port_bracketed_v6_and_port_only_entries(void **state)
{
    fixture *f = *state;
    set_ok(f, "LISTEN", "127.0.0.1:8000, [::1]:8000,:9000,localhost:1,[::]:65535");
    assert_int_equal(f->c.listen.n, 5);
    assert_string_equal(f->c.listen.items[1], "[::1]:8000");
    assert_string_equal(f->c.listen.items[2], ":9000");
}

static void listen_rejects_missing_or_bad_ports_bare_v6_and_an_empty_list(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"", " , ", "localhost", "0.0.0.0:0", "0.0.0.0:65536",
                                      "::1:8000", "[::1]", "[::1]8000", "[nope]:80",
                                      ":", "host:80x", "a b:80", "*:80", "[\"x\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "LISTEN", bad[i]);
    assert_string_equal(f->c.listen.items[0], "0.0.0.0:8000");
}

static void cors_origins_are_star_or_origins_lowercased_without_trailing_slash(void **state)
{
    fixture *f = *state;
    set_ok(f, "CORS_ORIGINS", "https://A.example/, http://localhost:3000,app://x");
    assert_int_equal(f->c.cors_origins.n, 3);
    assert_string_equal(f->c.cors_origins.items[0], "https://a.example");
    assert_string_equal(f->c.cors_origins.items[1], "http://localhost:3000");
    set_ok(f, "CORS_ORIGINS", " * ");
    assert_int_equal(f->c.cors_origins.n, 1);
    assert_string_equal(f->c.cors_origins.items[0], "*");
    set_ok(f, "CORS_ORIGINS", "");
    assert_int_equal(f->c.cors_origins.n, 0);
}

static void cors_origins_reject_paths_and_a_star_among_origins(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"*,https://a.example", "https://a.example/path",
                                      "a.example", "https://", "https://a.example:0",
                                      "https://a.example?x", "1http://a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        set_bad(f, "CORS_ORIGINS", bad[i]);
}

/* ---- link previewers ---- */

static void preview_agents_default_to_the_chat_previewers_and_crawlers(void **state)
{
    fixture *f = *state;
    static const char *const named[] = {"slackbot", "discordbot", "telegrambot", "whatsapp", "facebookexternalhit",
                                        "twitterbot", "linkedinbot", "skypeuripreview", "applebot", "googlebot"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t k = 0;
        while (k < f->c.preview_agents.n && strcmp(f->c.preview_agents.items[k], named[i]) != 0)
            k++;
        if (k == f->c.preview_agents.n)
            fail_msg("%s is not among the default PREVIEW_AGENTS", named[i]);
    }
    /* A browser's own words would make every person a previewer. */
    for (size_t k = 0; k < f->c.preview_agents.n; k++)
        if (strstr("mozilla/5.0 (x11; linux x86_64) applewebkit/537.36 (khtml, like gecko) chrome/120.0.0.0 "
                   "safari/537.36 headlesschrome edg/120 firefox/121.0 version/17.2 mobile/15e148 teams/1.6",
                   f->c.preview_agents.items[k]) != NULL)
            fail_msg("default agent \"%s\" is part of a browser's User-Agent", f->c.preview_agents.items[k]);
}

static void preview_agents_are_lowercased_and_may_be_none(void **state)
{
    fixture *f = *state;
    set_ok(f, "PREVIEW_AGENTS", "MyBot/1, [Other Preview]");
    assert_int_equal(f->c.preview_agents.n, 2);
    assert_string_equal(f->c.preview_agents.items[0], "mybot/1");
    assert_string_equal(f->c.preview_agents.items[1], "[other preview]");
    set_ok(f, "PREVIEW_AGENTS", "[\"A, B\"]");
    assert_string_equal(f->c.preview_agents.items[0], "a, b");
    set_ok(f, "PREVIEW_AGENTS", "");
    assert_int_equal(f->c.preview_agents.n, 0);
}

static void preview_agents_refuse_control_characters_and_overlong_entries(void **state)
{
    fixture *f = *state;
    char longest[VALUE_AGENT_MAX + 2];
    memset(longest, 'a', VALUE_AGENT_MAX + 1);
    longest[VALUE_AGENT_MAX + 1] = '\0';
    set_bad(f, "PREVIEW_AGENTS", longest);
    longest[VALUE_AGENT_MAX] = '\0';
    set_ok(f, "PREVIEW_AGENTS", longest);
    set_bad(f, "PREVIEW_AGENTS", "bot\x01x");
    set_bad(f, "PREVIEW_AGENTS", "caf\xc3\xa9" "bot");
    assert_non_null(strstr(f->err, "PREVIEW_AGENTS="));
    assert_non_null(strstr(f->err, "parts of a User-Agent"));
}

/* ---- networks ---- */

static void default_networks_are_loopback(void **state)
{
    fixture *f = *state;
    uint8_t a[16];
    address("127.0.0.1", a);
    assert_true(addr_match(&f->c.trusted_proxies, a));
    assert_true(addr_match(&f->c.metrics_allow, a));
    address("127.0.0.2", a);
    assert_false(addr_match(&f->c.trusted_proxies, a));
    assert_true(addr_match(&f->c.metrics_allow, a));
    address("::1", a);
    assert_true(addr_match(&f->c.trusted_proxies, a));
    assert_true(addr_match(&f->c.metrics_allow, a));
    address("10.0.0.1", a);
    assert_false(addr_match(&f->c.metrics_allow, a));
}

static void network_list_empty_string_is_an_empty_list(void **state)
{
    fixture *f = *state;
    uint8_t a[16];
    set_ok(f, "TRUSTED_PROXIES", "");
    assert_int_equal(f->c.trusted_proxies.n, 0);
    address("127.0.0.1", a);
    assert_false(addr_match(&f->c.trusted_proxies, a));
    set_bad(f, "TRUSTED_PROXIES", "10.0.0.0/8,localhost");
    assert_non_null(strstr(f->err, "(bad entry \"localhost\")"));
    assert_int_equal(f->c.trusted_proxies.n, 0);
}

/* ---- errors and memory ---- */

static void error_escapes_control_characters_in_the_value(void **state)
{
    fixture *f = *state;
    set_bad(f, "LOG_LEVEL", "in\nfo\t\x1b");
    assert_string_equal(f->err,
                        "LOG_LEVEL=in\\nfo\\t\\x1b: expected debug, info, warning or error");
}

static void error_shortens_a_very_long_value(void **state)
{
    fixture *f = *state;
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    set_bad(f, "LOG_LEVEL", big);
    assert_non_null(strstr(f->err, "...: expected"));
    assert_true(strlen(f->err) < 300);
}

static void error_fits_a_small_buffer_and_null_buffer_is_allowed(void **state)
{
    fixture *f = *state;
    char small[8];
    assert_int_equal(cfg_set(&f->c, "MAX_FILE_SIZE", "ten", small, sizeof small), -1);
    assert_string_equal(small, "MAX_FIL");
    assert_int_equal(cfg_set(&f->c, "MAX_FILE_SIZE", "ten", NULL, 0), -1);
    assert_int_equal(cfg_set(&f->c, "MAX_FILE_SIZE", NULL, NULL, 0), -1);
}

static void setting_values_again_and_again_frees_the_old_ones(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        cfg fresh;
        cfg_init(&fresh);
        cfg_free(&fresh);
    }
    for (int i = 0; i < 50; i++) {
        set_ok(f, "STORAGE_PATH", "/a");
        set_ok(f, "PUBLIC_URL", "https://x.example/");
        set_ok(f, "ALLOWED_MIME_TYPES", "image/*,text/plain");
        set_ok(f, "LISTEN", ":1,:2");
        set_ok(f, "CORS_ORIGINS", "https://a.example");
        set_ok(f, "TRUSTED_PROXIES", "10.0.0.0/8,::1");
        set_ok(f, "REDIS_URL", "unix:///r.sock");
        set_bad(f, "ALLOWED_MIME_TYPES", "image/*,bad");
        set_bad(f, "TRUSTED_PROXIES", "10.0.0.0/8,bad");
        set_bad(f, "LISTEN", ":1,bad");
    }
    cfg_free(&f->c);
    cfg_free(&f->c); /* freeing twice is harmless: cfg_free leaves a zeroed struct */
    cfg_init(&f->c);
}

static void failed_set_keeps_the_previous_value(void **state)
{
    fixture *f = *state;
    set_ok(f, "CORS_ORIGINS", "https://a.example");
    set_bad(f, "CORS_ORIGINS", "https://b.example,nope");
    assert_int_equal(f->c.cors_origins.n, 1);
    assert_string_equal(f->c.cors_origins.items[0], "https://a.example");
    set_bad(f, "PUBLIC_URL", "gopher://x");
    assert_string_equal(f->c.public_url, "");
}

/* ---- environment ---- */

static void env_applies_known_settings_and_ignores_other_variables(void **state)
{
    fixture *f = *state;
    setenv("MAX_FILE_SIZE", "2048", 1);
    setenv("LOG_STDOUT", "yes", 1);
    setenv("RAVEN_NOT_A_SETTING", "whatever", 1);
    setenv("max_file_size", "1", 1); /* environment names are upper case only */
    int rc = cfg_load_env(&f->c, f->err, sizeof f->err);
    unsetenv("MAX_FILE_SIZE");
    unsetenv("LOG_STDOUT");
    unsetenv("RAVEN_NOT_A_SETTING");
    unsetenv("max_file_size");
    assert_int_equal(rc, 0);
    assert_int_equal(f->c.max_file_size, 2048);
    assert_int_equal(f->c.log_stdout, 1);
}

static void env_bad_value_is_one_line_naming_the_variable(void **state)
{
    fixture *f = *state;
    setenv("DOWNLOAD_BLOCK_WINDOW", "forever", 1);
    int rc = cfg_load_env(&f->c, f->err, sizeof f->err);
    unsetenv("DOWNLOAD_BLOCK_WINDOW");
    assert_int_equal(rc, -1);
    assert_string_equal(f->err,
                        "DOWNLOAD_BLOCK_WINDOW=forever: expected an integer from 1 to 604800");
}

/* ---- YAML ---- */

static void yaml_sets_scalars_and_lists_under_any_case_names(void **state)
{
    fixture *f = *state;
    int rc = load(f, "# a comment\n"
                     "max_file_size: 2048\n"
                     "MAX_UPLOADS_PER_CLIENT: '2'\n"
                     "Log_Level: \"debug\"\n"
                     "log_stdout: true\n"
                     "allowed_mime_types:\n"
                     "  - image/PNG\n"
                     "  - image/*\n"
                     "listen: [\"127.0.0.1:8080\", \"[::1]:8080\"]\n"
                     "trusted_proxies: 10.0.0.0/8, 192.168.0.0/16\n"
                     "upload_rate_limit: 5/minute\n"
                     "public_url: https://drop.example.com/\n");
    if (rc != 0)
        fail_msg("%s", f->err);
    assert_int_equal(f->c.max_file_size, 2048);
    assert_int_equal(f->c.max_uploads_per_client, 2);
    assert_int_equal(f->c.log_level, LOG_DEBUG);
    assert_int_equal(f->c.log_stdout, 1);
    assert_int_equal(f->c.allowed_mime_types.n, 2);
    assert_string_equal(f->c.allowed_mime_types.items[0], "image/png");
    assert_int_equal(f->c.listen.n, 2);
    assert_string_equal(f->c.listen.items[1], "[::1]:8080");
    assert_int_equal(f->c.trusted_proxies.n, 2);
    assert_int_equal(f->c.upload_rate_limit.period_s, 60);
    assert_string_equal(f->c.public_url, "https://drop.example.com");
}

/* f->err must be exactly "<file>:<line>:<column>: YAML syntax error: <problem>". */
static void assert_syntax_error(fixture *f, int line, int column, const char *problem)
{
    char want[ERRLEN];
    snprintf(want, sizeof want, "%s:%d:%d: YAML syntax error: %s", f->path, line, column, problem);
    assert_string_equal(f->err, want);
}

static void yaml_syntax_error_names_the_file_line_and_column(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "max_file_size: 1\nlisten: [\":1\"\nworkers: 2\n"), -1);
    assert_syntax_error(f, 3, 1, "did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
    assert_int_equal(load(f, "workers: 1\n- 2\n"), -1);
    assert_syntax_error(f, 2, 1, "did not find expected key (while parsing a block mapping at line 1)");
}

static void yaml_second_colon_on_a_line_is_a_syntax_error_not_an_unknown_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "a: b: c\n"), -1);
    assert_syntax_error(f, 1, 5, "mapping values are not allowed in this context");
    assert_int_equal(load(f, "workers: 2\nlog_level: info: debug\n"), -1);
    assert_syntax_error(f, 2, 16, "mapping values are not allowed in this context");
}

static void yaml_unclosed_list_is_a_syntax_error_not_a_list_in_place_of_settings(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "[1"), -1);
    assert_syntax_error(f, 2, 1, "did not find expected ',' or ']' (while parsing a flow sequence at line 1)");
}

static void yaml_tab_indentation_is_a_syntax_error_that_names_the_tab(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "\tworkers: 2\n"), -1);
    assert_syntax_error(f, 1, 1, "found character that cannot start any token; YAML indents with spaces, not tabs");
    assert_int_equal(load(f, "workers: 2\nlisten:\n\t- :8000\n"), -1);
    assert_non_null(strstr(f->err, ":3:1: YAML syntax error: "));
    assert_non_null(strstr(f->err, "; YAML indents with spaces, not tabs"));
}

static void yaml_syntax_error_anywhere_wins_over_a_bad_setting_before_it(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "foo: 1\nmax_file_size: ten\nlisten: [\":1\"\n"), -1);
    assert_syntax_error(f, 4, 1, "did not find expected ',' or ']' (while parsing a flow sequence at line 3)");
    assert_int_equal(f->c.max_file_size, 10485760);
}

static void yaml_bad_byte_is_a_syntax_error_at_its_line_and_column(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "workers: 2\nlog_path: /tmp/\x01\n"), -1);
    assert_syntax_error(f, 2, 16, "control characters are not allowed");
    assert_int_equal(load(f, "workers: 2\nlog_path: \"/tmp/\xc3\xa9\xff\"\n"), -1);
    assert_syntax_error(f, 2, 18, "invalid leading UTF-8 octet");
}

static void yaml_document_that_is_not_a_mapping_says_what_it_is(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "# settings\njust text\n"), -1);
    assert_yaml_error(f, 2, "expected a mapping of settings (NAME: value), not a single value");
    assert_int_equal(load(f, "[1, 2]\n"), -1);
    assert_yaml_error(f, 1, "expected a mapping of settings (NAME: value), not a list");
}

static void yaml_unknown_setting_names_the_file_line_and_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "workers: 2\n\nfoo: 1\n"), -1);
    assert_yaml_error(f, 3, "unknown setting \"foo\"");
}

static void yaml_bad_value_names_the_file_line_and_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "workers: 2\nmax_file_size: ten\n"), -1);
    assert_yaml_error(f, 2, "MAX_FILE_SIZE=ten: expected a byte count (1 to 1099511627776)");
}

static void yaml_bad_list_entry_names_the_entry(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "cors_origins:\n  - https://a.example\n  - ftp\n"), -1);
    assert_yaml_error(f, 1, "CORS_ORIGINS=[https://a.example, ftp]: expected");
    assert_non_null(strstr(f->err, "(bad entry \"ftp\")"));
}

static void yaml_nested_mapping_is_an_error_naming_the_key(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "listen:\n  host: 0.0.0.0\n  port: 80\n"), -1);
    assert_yaml_error(f, 1, "LISTEN: expected a value or a list of values, not a mapping");
    assert_int_equal(load(f, "listen:\n  - a: 1\n"), -1);
    assert_yaml_error(f, 2, "LISTEN: expected plain values in the list, not a mapping");
}

static void yaml_alias_is_an_error_naming_the_key(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "idle_timeout: &t 10\nbody_timeout: *t\n"), -1);
    assert_yaml_error(f, 2, "BODY_TIMEOUT: expected a value or a list of values, not an alias");
    assert_int_equal(load(f, "cors_origins: &o [\"*\"]\nallowed_mime_types: [*o]\n"), -1);
    assert_yaml_error(f, 2, "ALLOWED_MIME_TYPES: expected plain values in the list, not an alias");
}

static void yaml_list_for_a_single_value_setting_is_an_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "workers:\n  - 1\n  - 2\n"), -1);
    assert_yaml_error(f, 1, "WORKERS: expected a single value, not a list");
}

static void yaml_setting_given_twice_is_an_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "workers: 1\nlog_level: info\nWORKERS: 2\n"), -1);
    assert_yaml_error(f, 3, "WORKERS is set twice (first on line 1)");
}

static void yaml_empty_or_comment_only_file_changes_nothing(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, ""), 0);
    assert_int_equal(load(f, "# nothing here\n\n"), 0);
    assert_int_equal(load(f, "---\n"), 0);
    assert_int_equal(load(f, "--- {}\n"), 0);
    assert_int_equal(f->c.max_file_size, 10485760);
}

static void yaml_null_or_empty_list_empties_a_list_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "trusted_proxies: ~\nmetrics_allow: []\ncors_origins:\n"), 0);
    assert_int_equal(f->c.trusted_proxies.n, 0);
    assert_int_equal(f->c.metrics_allow.n, 0);
    assert_int_equal(f->c.cors_origins.n, 0);
    assert_int_equal(load(f, "public_url: 'null'\n"), -1);
}

static void yaml_top_level_must_be_one_mapping(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "- workers: 1\n"), -1);
    assert_yaml_error(f, 1, "expected a mapping of settings");
    assert_int_equal(load(f, "just text\n"), -1);
    assert_yaml_error(f, 1, "expected a mapping of settings");
    assert_int_equal(load(f, "workers: 1\n---\nworkers: 2\n"), -1);
    assert_yaml_error(f, 2, "expected one document");
    assert_int_equal(load(f, "[a]: 1\n"), -1);
    assert_yaml_error(f, 1, "expected a setting name, not a list");
}

static void yaml_value_with_a_nul_byte_is_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "log_path: \"/tmp/a\\0b\"\n"), -1);
    assert_yaml_error(f, 1, "LOG_PATH: the value contains a NUL byte");
}

static void yaml_missing_file_names_the_file_and_the_reason(void **state)
{
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/absent.yaml", f->dir);
    assert_int_equal(cfg_load_yaml(&f->c, path, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, path));
    assert_non_null(strstr(f->err, "No such file"));
}

static void example_config_file_loads_and_holds_the_defaults(void **state)
{
    fixture *f = *state;
    cfg loaded;
    const char *example = example_path();
    cfg_init(&loaded);
    if (cfg_load_yaml(&loaded, example, f->err, sizeof f->err) != 0) {
        cfg_free(&loaded);
        fail_msg("%s", f->err);
    }
    /* the file sets exactly the built-in values */
    assert_string_equal(loaded.redis_url, f->c.redis_url);
    assert_string_equal(loaded.storage_path, f->c.storage_path);
    assert_string_equal(loaded.temp_path, f->c.temp_path);
    assert_int_equal(loaded.max_file_size, f->c.max_file_size);
    assert_int_equal(loaded.allowed_mime_types.n, f->c.allowed_mime_types.n);
    assert_memory_equal(&loaded.upload_rate_limit, &f->c.upload_rate_limit, sizeof(cfg_rate));
    assert_memory_equal(&loaded.health_rate_limit, &f->c.health_rate_limit, sizeof(cfg_rate));
    assert_int_equal(loaded.download_fail_limit, f->c.download_fail_limit);
    assert_int_equal(loaded.download_block_window, f->c.download_block_window);
    assert_int_equal(loaded.cleanup_interval_minutes, f->c.cleanup_interval_minutes);
    assert_int_equal(loaded.orphan_age_minutes, f->c.orphan_age_minutes);
    assert_int_equal(loaded.secure_shred_passes, f->c.secure_shred_passes);
    assert_string_equal(loaded.diceware_wordlist_path, f->c.diceware_wordlist_path);
    assert_int_equal(loaded.listen.n, 1);
    assert_string_equal(loaded.listen.items[0], f->c.listen.items[0]);
    assert_int_equal(loaded.workers, f->c.workers);
    assert_int_equal(loaded.trusted_proxies.n, f->c.trusted_proxies.n);
    assert_memory_equal(loaded.trusted_proxies.items, f->c.trusted_proxies.items,
                        f->c.trusted_proxies.n * sizeof(addr_cidr));
    assert_int_equal(loaded.cors_origins.n, 1);
    assert_string_equal(loaded.cors_origins.items[0], "*");
    assert_string_equal(loaded.public_url, f->c.public_url);
    assert_string_equal(loaded.log_path, f->c.log_path);
    assert_int_equal(loaded.log_max_bytes, f->c.log_max_bytes);
    assert_int_equal(loaded.log_backups, f->c.log_backups);
    assert_int_equal(loaded.log_stdout, f->c.log_stdout);
    assert_int_equal(loaded.log_level, f->c.log_level);
    assert_string_equal(loaded.secret_path, f->c.secret_path);
    assert_int_equal(loaded.fsync_uploads, f->c.fsync_uploads);
    assert_int_equal(loaded.metrics_allow.n, f->c.metrics_allow.n);
    assert_memory_equal(loaded.metrics_allow.items, f->c.metrics_allow.items,
                        f->c.metrics_allow.n * sizeof(addr_cidr));
    assert_int_equal(loaded.preview_agents.n, f->c.preview_agents.n);
    for (size_t i = 0; i < f->c.preview_agents.n; i++)
        assert_string_equal(loaded.preview_agents.items[i], f->c.preview_agents.items[i]);
    assert_int_equal(loaded.max_connections, f->c.max_connections);
    assert_int_equal(loaded.max_uploads_per_client, f->c.max_uploads_per_client);
    assert_int_equal(loaded.idle_timeout, f->c.idle_timeout);
    assert_int_equal(loaded.body_timeout, f->c.body_timeout);
    assert_int_equal(loaded.shutdown_timeout, f->c.shutdown_timeout);
    cfg_free(&loaded);
}

static void example_config_file_names_every_setting(void **state)
{
    fixture *f = *state;
    FILE *fp = fopen(example_path(), "r");
    char text[32768];
    size_t n;
    if (fp == NULL)
        fail_msg("etc/raven-zero.yaml cannot be read");
    n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    (void)f;
    for (size_t i = 0; cfg_names[i] != NULL; i++) {
        char key[64];
        size_t k;
        for (k = 0; cfg_names[i][k] != '\0'; k++)
            key[k] = (char)tolower((unsigned char)cfg_names[i][k]);
        key[k++] = ':';
        key[k] = '\0';
        if (strstr(text, key) == NULL)
            fail_msg("etc/raven-zero.yaml does not show %s", cfg_names[i]);
    }
}

/* ---- cross-checks ---- */

static void validate_rejects_temp_path_equal_to_or_inside_storage_path(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *storage, *temp;
    } bad[] = {{"./storage/uploads", "storage/uploads/"}, {"/srv/up", "/srv//up/tmp"},
               {"/srv/up/tmp", "/srv/up"},               {".", "temp"},
               {"/", "/tmp/x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_ok(f, "STORAGE_PATH", bad[i].storage);
        set_ok(f, "TEMP_PATH", bad[i].temp);
        if (cfg_validate(&f->c, f->err, sizeof f->err) == 0)
            fail_msg("%s and %s accepted", bad[i].storage, bad[i].temp);
        assert_non_null(strstr(f->err, "TEMP_PATH="));
    }
    set_ok(f, "STORAGE_PATH", "/srv/up");
    set_ok(f, "TEMP_PATH", "/srv/upload-temp");
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), 0);
}

static void validate_rejects_a_secret_or_log_inside_the_swept_directories(void **state)
{
    fixture *f = *state;
    set_ok(f, "SECRET_PATH", "./storage/uploads/secret.key");
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "SECRET_PATH=./storage/uploads/secret.key: expected a path "
                                "outside STORAGE_PATH, TEMP_PATH and the trash beside it");
    set_ok(f, "SECRET_PATH", "./storage/secret.key");
    set_ok(f, "LOG_PATH", "storage/temp/log");
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "LOG_PATH="));
    set_ok(f, "LOG_PATH", "./storage/trash/raven.log"); /* the shredder empties the trash */
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "LOG_PATH="));
}

static void validate_rejects_values_put_in_the_struct_out_of_range(void **state)
{
    fixture *f = *state;
    size_t n = f->c.listen.n;
    f->c.listen.n = 0;
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "LISTEN"));
    f->c.listen.n = n;
    f->c.max_file_size = 0;
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "MAX_FILE_SIZE"));
    f->c.max_file_size = 1;
    f->c.workers = 0;
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "WORKERS"));
    f->c.workers = 1;
    assert_int_equal(cfg_validate(&f->c, f->err, sizeof f->err), 0);
}

static void diceware_default_prefers_the_list_in_the_source_tree(void **state)
{
    fixture *f = *state;
    int here = open(".", O_RDONLY | O_DIRECTORY);
    char sub[160], file[200];
    cfg c;
    assert_true(here >= 0);
    assert_int_equal(chdir(f->dir), 0);
    cfg_init(&c);
    assert_string_equal(c.diceware_wordlist_path,
                        RZ_PREFIX "/share/raven-zero/eff_large_wordlist.txt");
    cfg_free(&c);
    snprintf(sub, sizeof sub, "%s/wordlists", f->dir);
    snprintf(file, sizeof file, "%s/eff_large_wordlist.txt", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    fclose(fopen(file, "w"));
    cfg_init(&c);
    assert_string_equal(c.diceware_wordlist_path, "wordlists/eff_large_wordlist.txt");
    cfg_free(&c);
    unlink(file);
    rmdir(sub);
    assert_int_equal(fchdir(here), 0);
    close(here);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(defaults_are_the_spec_defaults),
        T(defaults_pass_validation),
        T(cfg_names_lists_every_spec_setting_once),
        T(setting_names_are_case_insensitive),
        T(unknown_setting_is_an_error_naming_it),
        T(max_file_size_rejects_words_with_a_line_naming_the_setting),
        T(max_file_size_accepts_bytes_and_binary_suffixes),
        T(max_file_size_rejects_zero_signs_decimals_and_more_than_a_tebibyte),
        T(integer_settings_accept_their_bounds_and_reject_beyond),
        T(integer_error_names_the_range),
        T(values_are_trimmed_of_surrounding_white_space),
        T(workers_auto_means_the_online_cores),
        T(rates_accept_units_plurals_and_abbreviations),
        T(rates_reject_zero_unknown_units_and_missing_parts),
        T(upload_rate_limit_is_stored_as_count_per_period),
        T(booleans_accept_the_usual_spellings_in_any_case),
        T(log_level_accepts_the_four_names_in_any_case),
        T(body_caps_take_auto_or_a_byte_count_of_at_least_64_kib),
        T(body_caps_auto_follow_the_uploads_a_client_may_send),
        T(spill_path_empty_means_temp_path),
        T(store_queue_and_http2_have_safe_defaults),
        T(redis_url_accepts_tcp_and_unix_forms),
        T(redis_url_rejects_other_schemes_bad_ports_and_dbs),
        T(redis_url_error_hides_the_password),
        T(paths_reject_empty_values_and_control_characters),
        T(secret_path_may_be_empty_but_never_hold_control_characters),
        T(public_url_requires_http_or_https_and_loses_its_trailing_slash),
        T(allowed_mime_types_take_a_comma_list_trimmed_and_lowercased),
        T(allowed_mime_types_take_a_json_list),
        T(json_list_refuses_nested_lists_non_strings_and_trailing_text),
        T(json_list_entries_are_trimmed_and_empty_ones_dropped),
        T(a_bracketed_listen_address_is_not_taken_for_a_json_list),
        T(allowed_mime_types_error_names_the_bad_entry),
        T(listen_takes_host_port_bracketed_v6_and_port_only_entries),
        T(listen_rejects_missing_or_bad_ports_bare_v6_and_an_empty_list),
        T(cors_origins_are_star_or_origins_lowercased_without_trailing_slash),
        T(cors_origins_reject_paths_and_a_star_among_origins),
        T(default_networks_are_loopback),
        T(network_list_empty_string_is_an_empty_list),
        T(error_escapes_control_characters_in_the_value),
        T(error_shortens_a_very_long_value),
        T(error_fits_a_small_buffer_and_null_buffer_is_allowed),
        T(setting_values_again_and_again_frees_the_old_ones),
        T(failed_set_keeps_the_previous_value),
        T(env_applies_known_settings_and_ignores_other_variables),
        T(env_bad_value_is_one_line_naming_the_variable),
        T(yaml_sets_scalars_and_lists_under_any_case_names),
        T(yaml_syntax_error_names_the_file_line_and_column),
        T(yaml_second_colon_on_a_line_is_a_syntax_error_not_an_unknown_setting),
        T(yaml_unclosed_list_is_a_syntax_error_not_a_list_in_place_of_settings),
        T(yaml_tab_indentation_is_a_syntax_error_that_names_the_tab),
        T(yaml_syntax_error_anywhere_wins_over_a_bad_setting_before_it),
        T(yaml_bad_byte_is_a_syntax_error_at_its_line_and_column),
        T(yaml_document_that_is_not_a_mapping_says_what_it_is),
        T(yaml_unknown_setting_names_the_file_line_and_setting),
        T(yaml_bad_value_names_the_file_line_and_setting),
        T(yaml_bad_list_entry_names_the_entry),
        T(yaml_nested_mapping_is_an_error_naming_the_key),
        T(yaml_alias_is_an_error_naming_the_key),
        T(yaml_list_for_a_single_value_setting_is_an_error),
        T(yaml_setting_given_twice_is_an_error),
        T(yaml_empty_or_comment_only_file_changes_nothing),
        T(yaml_null_or_empty_list_empties_a_list_setting),
        T(yaml_top_level_must_be_one_mapping),
        T(yaml_value_with_a_nul_byte_is_refused),
        T(yaml_missing_file_names_the_file_and_the_reason),
        T(example_config_file_loads_and_holds_the_defaults),
        T(preview_agents_default_to_the_chat_previewers_and_crawlers),
        T(preview_agents_are_lowercased_and_may_be_none),
        T(preview_agents_refuse_control_characters_and_overlong_entries),
        T(example_config_file_names_every_setting),
        T(validate_rejects_temp_path_equal_to_or_inside_storage_path),
        T(validate_rejects_a_secret_or_log_inside_the_swept_directories),
        T(validate_rejects_values_put_in_the_struct_out_of_range),
        T(diceware_default_prefers_the_list_in_the_source_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
