/* test_jsonw.c - common/jsonw.c writes, member for member, the text cJSON prints for
 * the same object: the access log and the answers it now writes must not change. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "jsonw.h"

static void assert_same_as_cjson(cJSON *o, const jsonw *j)
{
    char *want = cJSON_PrintUnformatted(o);
    assert_non_null(want);
    assert_true(jsonw_len(j) >= 0);
    assert_string_equal(j->buf, want);
    assert_int_equal((size_t)jsonw_len(j), strlen(want));
    cJSON_free(want);
    cJSON_Delete(o);
}

static void strings_are_escaped_as_cjson_escapes_them(void **state)
{
    (void)state;
    static const char *const values[] = {
        "",
        "plain",
        "quote \" backslash \\ slash /",
        "\b\f\n\r\t",
        "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6",
        "{\"key\":\"value\"}",
        "\xff\xfe invalid utf-8",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char buf[256];
        jsonw j;
        jsonw_init(&j, buf, sizeof(buf), 1);
        jsonw_str(&j, values[i], values[i]);
        jsonw_close(&j);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, values[i], values[i]);
        assert_same_as_cjson(o, &j);
    }
}

static void numbers_are_printed_as_cjson_prints_them(void **state)
{
    (void)state;
    static const double values[] = {
        0,
        -0.0,
        1,
        -1,
        42,
        2147483647.0,
        -2147483648.0,
        2147483648.0,
        3e9,
        -3e9,
        1e300,
        0.1,
        0.000123,
        1.5,
        0.3333333333333333,
        2.0 / 3.0,
        1e-7,
        123456.789012,
        9007199254740993.0,
        0.1 + 0.2,
        1.0 / 0.0 - 1.0 / 0.0,
        1.0 / 0.0,
        -1.0 / 0.0,
        999999999999999.0,
        1e15,
        -999999999999999.0,
        -1e15,
        5e14 + 0.5,
        200,
        404,
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char buf[128];
        jsonw j;
        jsonw_init(&j, buf, sizeof(buf), 1);
        jsonw_num(&j, "n", values[i]);
        jsonw_close(&j);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", values[i]);
        assert_same_as_cjson(o, &j);
    }
    /* durations as the access log has them: whole microseconds in seconds */
    for (long us = 0; us < 3000000; us += 997) {
        char buf[64];
        jsonw j;
        jsonw_init(&j, buf, sizeof(buf), 1);
        jsonw_num(&j, "duration", (double)us / 1e6);
        jsonw_close(&j);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "duration", (double)us / 1e6);
        assert_same_as_cjson(o, &j);
    }
}

static void members_nest_and_keep_their_order(void **state)
{
    (void)state;
    char buf[256];
    jsonw j;
    jsonw_init(&j, buf, sizeof(buf), 1);
    jsonw_str(&j, "key", "apple-banana-cherry");
    jsonw_open(&j, "detail");
    jsonw_str(&j, "error", "Too many");
    jsonw_num(&j, "retry_after_seconds", 30);
    jsonw_close(&j);
    jsonw_bool(&j, "yes", 1);
    jsonw_bool(&j, "no", 0);
    jsonw_null(&j, "nothing");
    jsonw_strn(&j, "cut", "abcdef", 3);
    jsonw_close(&j);
    cJSON *o = cJSON_CreateObject(), *d;
    cJSON_AddStringToObject(o, "key", "apple-banana-cherry");
    d = cJSON_AddObjectToObject(o, "detail");
    cJSON_AddStringToObject(d, "error", "Too many");
    cJSON_AddNumberToObject(d, "retry_after_seconds", 30);
    cJSON_AddBoolToObject(o, "yes", 1);
    cJSON_AddBoolToObject(o, "no", 0);
    cJSON_AddNullToObject(o, "nothing");
    cJSON_AddStringToObject(o, "cut", "abc");
    assert_same_as_cjson(o, &j);
}

static void members_without_braces_continue_another_object(void **state)
{
    (void)state;
    char buf[64];
    jsonw j;
    jsonw_init(&j, buf, sizeof(buf), 0);
    jsonw_str(&j, "a", "b");
    jsonw_num(&j, "c", 1);
    assert_string_equal(buf, "\"a\":\"b\",\"c\":1");
    assert_int_equal(jsonw_len(&j), 13);
    char line[64];
    jsonw_init(&j, line, sizeof(line), 1);
    jsonw_str(&j, "event", "request");
    jsonw_members(&j, buf, 13);
    jsonw_members(&j, "", 0);
    jsonw_close(&j);
    assert_string_equal(line, "{\"event\":\"request\",\"a\":\"b\",\"c\":1}");
    jsonw_init(&j, line, sizeof(line), 1);
    jsonw_members(&j, buf, 13);
    jsonw_close(&j);
    assert_string_equal(line, "{\"a\":\"b\",\"c\":1}");
}

static void a_text_that_does_not_fit_is_refused_whole(void **state)
{
    (void)state;
    char buf[16];
    jsonw j;
    jsonw_init(&j, buf, sizeof(buf), 1);
    jsonw_str(&j, "k", "0123456789");
    assert_int_equal(jsonw_len(&j), -1);
    jsonw_close(&j);
    assert_int_equal(jsonw_len(&j), -1);
    jsonw_init(&j, buf, sizeof(buf), 1);
    jsonw_str(&j, "k", "0123456");
    jsonw_close(&j);
    assert_int_equal(jsonw_len(&j), 15); /* 15 bytes and the NUL: exactly full */
    assert_string_equal(buf, "{\"k\":\"0123456\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_are_escaped_as_cjson_escapes_them),
        cmocka_unit_test(numbers_are_printed_as_cjson_prints_them),
        cmocka_unit_test(members_nest_and_keep_their_order),
        cmocka_unit_test(members_without_braces_continue_another_object),
        cmocka_unit_test(a_text_that_does_not_fit_is_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
