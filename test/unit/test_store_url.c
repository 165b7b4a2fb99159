/* test_store_url.c - the contract of common/store_url.c, the one REDIS_URL and
 * REDIS_SENTINELS parser: what each accepted form connects to, and every form refused
 * (which -t then refuses, since the settings check calls the same parser). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store_url.h"

static store_url parsed(const char *url)
{
    store_url u;
    if (store_url_parse(url, &u) != 0)
        fail_msg("refused: %s", url);
    return u;
}

static void a_bare_host_means_port_6379_db_0_and_no_password(void **state)
{
    (void)state;
    store_url u = parsed("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_string_equal(u.user, "");
    assert_string_equal(u.unix_path, "");
}

static void port_and_db_are_read(void **state)
{
    (void)state;
    store_url u = parsed("redis://10.0.0.5:6380/15");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 15);
    assert_int_equal(parsed("redis://valkey/").db, 0);
    assert_int_equal(parsed("redis://valkey:65535/07").db, 7);
}

static void an_ipv6_address_goes_in_brackets_and_comes_out_without(void **state)
{
    (void)state;
    store_url u = parsed("redis://[::1]:6379/1");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 1);
    assert_string_equal(parsed("redis://[fe80::1]").host, "fe80::1");
}

static void a_password_is_percent_decoded_and_may_hold_a_raw_at_sign(void **state)
{
    (void)state;
    store_url u = parsed("redis://:s3cr%40t@cache.internal:6379/2");
    assert_string_equal(u.password, "s3cr@t");
    assert_string_equal(u.user, "");
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.db, 2);
    assert_string_equal(parsed("redis://:p@ss@localhost").password, "p@ss");
    assert_string_equal(parsed("redis://:a%2Fb%25c:d@localhost").password, "a/b%c:d");
}

static void an_acl_user_comes_with_its_password(void **state)
{
    (void)state;
    store_url u = parsed("redis://raven:pw@localhost");
    assert_string_equal(u.user, "raven");
    assert_string_equal(u.password, "pw");
}

static void a_unix_socket_takes_an_optional_db(void **state)
{
    (void)state;
    store_url u = parsed("unix:///run/redis/redis.sock");
    assert_string_equal(u.unix_path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);
    u = parsed("unix:///run/r.sock?db=2");
    assert_string_equal(u.unix_path, "/run/r.sock");
    assert_int_equal(u.db, 2);
}

static void a_unix_path_that_fits_a_socket_address_is_accepted_one_longer_is_not(void **state)
{
    (void)state;
    char url[7 + STORE_URL_PATH_MAX + 1], path[STORE_URL_PATH_MAX + 1];
    store_url u;
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[STORE_URL_PATH_MAX - 1] = '\0'; /* 107 bytes: the most sun_path holds */
    strcpy(url, "unix://");
    strcat(url, path);
    assert_int_equal(store_url_parse(url, &u), 0);
    assert_string_equal(u.unix_path, path);
    strcat(url, "a");
    assert_int_equal(store_url_parse(url, &u), -1);
}

static void everything_else_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "localhost:6379",
                                      "http://localhost:6379",
                                      "rediss://localhost",
                                      "REDIS://localhost",
                                      "redis://",
                                      "redis://localhost:0",
                                      "redis://localhost:65536",
                                      "redis://localhost:x",
                                      "redis://localhost:",
                                      "redis://localhost:006379",
                                      "redis://localhost/16",
                                      "redis://localhost/db",
                                      "redis://localhost/1/2",
                                      "redis://localhost/-1",
                                      "redis://localhost/100",
                                      "redis://localhost?db=1",
                                      "redis://localhost#0",
                                      "redis://user@localhost",
                                      "redis://:@localhost",
                                      "redis://raven:@localhost",
                                      "redis://[::1:6379",
                                      "redis://[::1]x",
                                      "redis://[zz::1]",
                                      "redis://[]",
                                      "redis://local host",
                                      "redis://a..b",
                                      "redis://:%4@localhost",
                                      "redis://:%zz@localhost",
                                      "redis://:%00@localhost",
                                      "redis://:pw\n@localhost",
                                      "redis://localhost\t",
                                      "unix://",
                                      "unix://relative.sock",
                                      "unix:///",
                                      "unix:///run/r.sock?db=x",
                                      "unix:///run/r.sock?db=",
                                      "unix:///run/r.sock?db=16",
                                      "unix:///run/r.sock?db=2x",
                                      "unix:///run/r.sock?db=-1",
                                      "unix:///run/r.sock?dbx=2",
                                      "unix:///run/r.sock?",
                                      "unix:///run/r sock"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        store_url u;
        if (store_url_parse(bad[i], &u) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
    }
}

static void a_refused_url_leaves_no_password_behind(void **state)
{
    (void)state;
    store_url u;
    assert_int_equal(store_url_parse("redis://:hunter2@localhost/99", &u), -1);
    assert_string_equal(u.password, "");
}

static void sentinels_are_a_comma_list_with_port_26379_unless_given(void **state)
{
    (void)state;
    store_url u = parsed("redis://:pw@ignored:6379/3");
    assert_int_equal(store_url_sentinels("s1, 10.0.0.2:26380 ,[::1]:5000", "mymaster", "spw", &u), 0);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "s1");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[1].host, "10.0.0.2");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_int_equal(u.sentinels[2].port, 5000);
    assert_string_equal(u.master, "mymaster");
    assert_string_equal(u.sentinel_password, "spw");
    /* the primary's own password and db still come from REDIS_URL */
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 3);
}

static void no_sentinels_means_redis_url_is_the_store(void **state)
{
    (void)state;
    store_url u = parsed("redis://localhost");
    assert_int_equal(store_url_sentinels("", "mymaster", "", &u), 0);
    assert_int_equal(u.nsentinels, 0);
    assert_string_equal(u.master, "");
}

static void bad_sentinel_settings_are_refused_and_leave_no_password(void **state)
{
    (void)state;
    static const char *const lists[] = {",", "a,,b", "a:0", "a:65536", "a b:1", "[::1", "a:x",
                                        "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        store_url u = parsed("redis://localhost");
        if (store_url_sentinels(lists[i], "m", "secret", &u) == 0)
            fail_msg("accepted: %s", lists[i]);
        assert_int_equal(u.nsentinels, 0);
        assert_string_equal(u.sentinel_password, "");
    }
    store_url u = parsed("redis://localhost");
    assert_int_equal(store_url_sentinels("s1", "", "", &u), -1);
    assert_int_equal(store_url_sentinels("s1", "my master", "", &u), -1);
    assert_int_equal(store_url_sentinels("s1", "m", "a\nb", &u), -1);
    store_url x = parsed("unix:///run/redis.sock");
    assert_int_equal(store_url_sentinels("s1", "m", "", &x), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bare_host_means_port_6379_db_0_and_no_password),
        cmocka_unit_test(port_and_db_are_read),
        cmocka_unit_test(an_ipv6_address_goes_in_brackets_and_comes_out_without),
        cmocka_unit_test(a_password_is_percent_decoded_and_may_hold_a_raw_at_sign),
        cmocka_unit_test(an_acl_user_comes_with_its_password),
        cmocka_unit_test(a_unix_socket_takes_an_optional_db),
        cmocka_unit_test(a_unix_path_that_fits_a_socket_address_is_accepted_one_longer_is_not),
        cmocka_unit_test(everything_else_is_refused),
        cmocka_unit_test(a_refused_url_leaves_no_password_behind),
        cmocka_unit_test(sentinels_are_a_comma_list_with_port_26379_unless_given),
        cmocka_unit_test(no_sentinels_means_redis_url_is_the_store),
        cmocka_unit_test(bad_sentinel_settings_are_refused_and_leave_no_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
