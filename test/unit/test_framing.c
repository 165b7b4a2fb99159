/* test_framing.c - the end of an HTTP/1 request head read from raw bytes, and the
 * framing a front proxy could read another way (RFC 9112 §6.3, §5.2, §2.2): refused
 * whatever the order of the fields, accepted when it is plain. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "framing.h"

#define CHECK(lit) framing_check(lit, sizeof(lit) - 1, 0)
#define END(lit) framing_head_end(lit, sizeof(lit) - 1)

static void a_plain_request_passes_with_or_without_a_body(void **state)
{
    (void)state;
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), FRAMING_OK);
    assert_int_equal(CHECK("POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"), FRAMING_OK);
    assert_int_equal(CHECK("POST /upload/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                     FRAMING_OK);
    /* Only the head counts: the body may hold anything. */
    assert_int_equal(CHECK("POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nContent-Length: 3\nTransfer-Encoding: x\n"),
                     FRAMING_OK);
}

static void two_content_lengths_are_refused_equal_or_not_in_any_case(void **state)
{
    (void)state;
    assert_int_equal(CHECK("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\n"), FRAMING_LENGTHS);
    assert_int_equal(CHECK("POST / HTTP/1.1\r\ncontent-length: 5\r\nX: y\r\nCONTENT-LENGTH: 5\r\n\r\n"),
                     FRAMING_LENGTHS);
}

static void a_length_and_a_coding_together_are_refused_in_either_order(void **state)
{
    (void)state;
    assert_int_equal(CHECK("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     FRAMING_LENGTH_AND_CODING);
    assert_int_equal(CHECK("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n"),
                     FRAMING_LENGTH_AND_CODING);
}

static void two_transfer_encodings_are_refused(void **state)
{
    (void)state;
    assert_int_equal(CHECK("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     FRAMING_CODINGS);
}

static void a_coding_in_http10_is_refused_only_there(void **state)
{
    (void)state;
    static const char head[] = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(framing_check(head, sizeof(head) - 1, 1), FRAMING_CODING_IN_HTTP10);
    assert_int_equal(framing_check(head, sizeof(head) - 1, 0), FRAMING_OK);
}

static void a_folded_line_is_refused_with_space_or_tab(void **state)
{
    (void)state;
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n"), FRAMING_OBS_FOLD);
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\r\n\tContent-Length: 5\r\n\r\n"), FRAMING_OBS_FOLD);
}

static void a_bare_lf_anywhere_in_the_head_is_refused(void **state)
{
    (void)state;
    assert_int_equal(CHECK("GET / HTTP/1.1\nHost: x\r\n\r\n"), FRAMING_BARE_LF);
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n"), FRAMING_BARE_LF);
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: x\r\n\n"), FRAMING_BARE_LF);
    assert_int_equal(CHECK("\nGET / HTTP/1.1\r\n\r\n"), FRAMING_BARE_LF);
}

static void names_that_only_begin_like_a_framing_field_pass(void **state)
{
    (void)state;
    assert_int_equal(CHECK("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Lengths: 9\r\n"
                           "Transfer-Encoding-X: chunked\r\nX-Content-Length: 1\r\n\r\n"),
                     FRAMING_OK);
}

static void one_empty_line_before_the_request_line_is_skipped_as_libh2o_does(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), FRAMING_OK);
    assert_int_equal(END("\r\nGET / HTTP/1.1\r\n\r\n"), 20);
    assert_int_equal(END("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 4);
}

static void a_head_without_its_empty_line_is_incomplete(void **state)
{
    (void)state;
    assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: x\r\n"), FRAMING_INCOMPLETE);
    assert_int_equal(CHECK(""), FRAMING_INCOMPLETE);
    assert_int_equal(END("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    assert_int_equal(END("GET / HTTP/1.1\r\nHost: x\r"), 0);
    assert_int_equal(END(""), 0);
}

static void the_head_ends_after_its_empty_line_however_lines_end(void **state)
{
    (void)state;
    assert_int_equal(END("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), 27);
    assert_int_equal(END("GET / HTTP/1.1\nHost: x\n\nbody"), 24);
    assert_int_equal(END("GET / HTTP/1.1\r\n\r\n"), 18);
}

static void every_prefix_of_a_head_is_incomplete_and_never_read_past(void **state)
{
    (void)state;
    static const char head[] = "POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
    for (size_t n = 0; n < sizeof(head) - 1; n++) {
        char *copy = test_malloc(n + 1); /* exactly n bytes are readable */
        memcpy(copy, head, n);
        assert_int_equal(framing_head_end(copy, n), 0);
        assert_int_equal(framing_check(copy, n, 0), FRAMING_INCOMPLETE);
        test_free(copy);
    }
}

static void every_refusal_has_a_reason(void **state)
{
    (void)state;
    assert_string_equal(framing_reason(FRAMING_OK), "");
    for (int v = FRAMING_INCOMPLETE; v <= FRAMING_CODING_IN_HTTP10; v++)
        assert_true(strncmp(framing_reason((framing_verdict)v), "Bad request framing", 19) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plain_request_passes_with_or_without_a_body),
        cmocka_unit_test(two_content_lengths_are_refused_equal_or_not_in_any_case),
        cmocka_unit_test(a_length_and_a_coding_together_are_refused_in_either_order),
        cmocka_unit_test(two_transfer_encodings_are_refused),
        cmocka_unit_test(a_coding_in_http10_is_refused_only_there),
        cmocka_unit_test(a_folded_line_is_refused_with_space_or_tab),
        cmocka_unit_test(a_bare_lf_anywhere_in_the_head_is_refused),
        cmocka_unit_test(names_that_only_begin_like_a_framing_field_pass),
        cmocka_unit_test(one_empty_line_before_the_request_line_is_skipped_as_libh2o_does),
        cmocka_unit_test(a_head_without_its_empty_line_is_incomplete),
        cmocka_unit_test(the_head_ends_after_its_empty_line_however_lines_end),
        cmocka_unit_test(every_prefix_of_a_head_is_incomplete_and_never_read_past),
        cmocka_unit_test(every_refusal_has_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
