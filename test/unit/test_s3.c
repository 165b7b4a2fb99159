/* test_s3.c - the contract of common/s3.c: which STORAGE_URL forms name a bucket and
 * prefix (and every form refused), object URLs, query values encoded as SigV4 signs
 * them, and the XML and times the store's answers carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s3.h"

static cfg settings(const char *url)
{
    cfg c;
    cfg_init(&c);
    char err[256];
    if (cfg_set(&c, "STORAGE_URL", url, err, sizeof(err)) != 0 ||
        cfg_set(&c, "S3_ENDPOINT", "http://127.0.0.1:8080", err, sizeof(err)) != 0 ||
        cfg_set(&c, "S3_ACCESS_KEY", "test:tester", err, sizeof(err)) != 0 ||
        cfg_set(&c, "S3_SECRET_KEY", "testing", err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return c;
}

static void a_bucket_with_a_prefix_names_objects_prefix_slash_id(void **state)
{
    (void)state;
    cfg c = settings("s3://drop-files/prod/eu");
    s3_conf conf;
    char err[256], url[S3_URL_MAX];
    assert_int_equal(s3_conf_load(&conf, &c, err, sizeof(err)), 0);
    assert_string_equal(conf.bucket, "drop-files");
    assert_string_equal(conf.prefix, "prod/eu/");
    assert_string_equal(conf.sigv4, "aws:amz:us-east-1:s3");
    assert_string_equal(conf.access_key, "test:tester");
    assert_int_equal(s3_url(&conf, "00ff", "?uploads=", url, sizeof(url)), 0);
    assert_string_equal(url, "http://127.0.0.1:8080/drop-files/prod/eu/00ff?uploads=");
    assert_int_equal(s3_url(&conf, NULL, "?list-type=2", url, sizeof(url)), 0);
    assert_string_equal(url, "http://127.0.0.1:8080/drop-files/?list-type=2");
    s3_conf_wipe(&conf);
    cfg_free(&c);
}

static void a_bare_bucket_has_no_prefix_and_a_trailing_slash_is_the_same_prefix(void **state)
{
    (void)state;
    const char *forms[][2] = {{"s3://bucket", ""}, {"s3://bucket/", ""}, {"s3://bucket/p/", "p/"}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        cfg c = settings(forms[i][0]);
        s3_conf conf;
        char err[256];
        assert_int_equal(s3_conf_load(&conf, &c, err, sizeof(err)), 0);
        assert_string_equal(conf.prefix, forms[i][1]);
        s3_conf_wipe(&conf);
        cfg_free(&c);
    }
}

static void everything_else_is_refused_naming_storage_url(void **state)
{
    (void)state;
    const char *bad[] = {"http://bucket", "s3://", "s3://ab", "s3://Bucket", "s3://-bucket", "s3://bucket-",
                         "s3://bu_cket", "s3://bucket/a//b", "s3://bucket/./a", "s3://bucket/a/..",
                         "s3://bucket/a%2Fb", "s3://bucket//"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg c = settings(bad[i]);
        s3_conf conf;
        char err[256];
        if (s3_conf_load(&conf, &c, err, sizeof(err)) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(strncmp(err, "STORAGE_URL=", 12), 0);
        cfg_free(&c);
    }
}

static void query_values_are_encoded_as_sigv4_signs_them(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(s3_query_encode("a/b c+d=~._-", out, sizeof(out)), 0);
    assert_string_equal(out, "a%2Fb%20c%2Bd%3D~._-");
    assert_int_equal(s3_query_encode("0123456789", out, 8), -1);
}

static void xml_elements_are_read_in_order_and_times_as_unix_seconds(void **state)
{
    (void)state;
    const char *xml = "<R><Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents><UploadId>x+y/z=</UploadId></R>";
    char v[16];
    size_t pos = 0;
    assert_true(s3_xml_next(xml, strlen(xml), "Key", &pos, v, sizeof(v)));
    assert_string_equal(v, "a");
    assert_true(s3_xml_next(xml, strlen(xml), "Key", &pos, v, sizeof(v)));
    assert_string_equal(v, "b");
    assert_false(s3_xml_next(xml, strlen(xml), "Key", &pos, v, sizeof(v)));
    pos = 0;
    assert_true(s3_xml_next(xml, strlen(xml), "UploadId", &pos, v, sizeof(v)));
    assert_string_equal(v, "x+y/z=");
    assert_int_equal(s3_time("2026-11-30T07:00:00.000Z"), 1796022000);
    assert_int_equal(s3_time("yesterday"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bucket_with_a_prefix_names_objects_prefix_slash_id),
        cmocka_unit_test(a_bare_bucket_has_no_prefix_and_a_trailing_slash_is_the_same_prefix),
        cmocka_unit_test(everything_else_is_refused_naming_storage_url),
        cmocka_unit_test(query_values_are_encoded_as_sigv4_signs_them),
        cmocka_unit_test(xml_elements_are_read_in_order_and_times_as_unix_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
