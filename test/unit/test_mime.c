/* test_mime.c - MIME type patterns: which ones ALLOWED_MIME_TYPES may hold, and which
 * detected types they let through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mime.h"

static void pattern_is_lowercased_and_may_end_in_a_star(void **state)
{
    static const struct {
        const char *in, *out;
    } good[] = {{"image/png", "image/png"},
                {"Image/PNG", "image/png"},
                {"image/*", "image/*"},
                {"*/*", "*/*"},
                {"application/vnd.ms-excel", "application/vnd.ms-excel"},
                {"application/x-tar+gzip", "application/x-tar+gzip"}};
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *out = NULL;
        if (mime_pattern(good[i].in, &out) != 0)
            fail_msg("%s refused", good[i].in);
        assert_non_null(out);
        assert_string_equal(out, good[i].out);
        free(out);
    }
}

static void pattern_refuses_a_star_type_with_a_subtype_and_anything_not_a_token(void **state)
{
    static const char *const bad[] = {"*/png", "image/", "/png", "image", "image/png; q=1", "im age/png",
                                      "image/png/x", "-x/y", "", "image/p*", "**/*"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        if (mime_pattern(bad[i], &out) == 0)
            fail_msg("%s accepted", bad[i]);
        assert_null(out);
    }
}

static void allowed_matches_exact_types_and_wildcards_ignoring_case_and_parameters(void **state)
{
    char *patterns[] = {"image/*", "application/pdf"};
    char *any[] = {"*/*"};
    (void)state;
    assert_true(mime_allowed(patterns, 2, "image/png"));
    assert_true(mime_allowed(patterns, 2, "IMAGE/JPEG"));
    assert_true(mime_allowed(patterns, 2, "application/pdf; charset=binary"));
    assert_false(mime_allowed(patterns, 2, "application/pdfx"));
    assert_false(mime_allowed(patterns, 2, "imagex/png"));
    assert_false(mime_allowed(patterns, 2, "text/plain"));
    assert_false(mime_allowed(patterns, 2, "image"));
    assert_false(mime_allowed(patterns, 2, NULL));
    assert_true(mime_allowed(any, 1, "text/plain"));
}

static void no_patterns_allow_everything(void **state)
{
    (void)state;
    assert_true(mime_allowed(NULL, 0, "application/x-anything"));
    assert_true(mime_allowed(NULL, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pattern_is_lowercased_and_may_end_in_a_star),
        cmocka_unit_test(pattern_refuses_a_star_type_with_a_subtype_and_anything_not_a_token),
        cmocka_unit_test(allowed_matches_exact_types_and_wildcards_ignoring_case_and_parameters),
        cmocka_unit_test(no_patterns_allow_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
