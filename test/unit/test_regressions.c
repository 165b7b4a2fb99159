/* test_regressions.c - every input a fuzzer (make fuzz) or an attack found to break an
 * invariant, replayed through the function it broke, with what the contract expects.
 * Each test names the fuzz target and the crash file, or the attack, it came from
 * (attacks are in the fuzz corpus too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "drop.h"

/* 1 if name holds a C0 or C1 control character (U+0000-U+001F, U+007F-U+009F). */
static int has_control(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 1;
        if (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
            return 1;
    }
    return 0;
}

static void expect_clean(const char *in, size_t len, const char *want)
{
    char out[DROP_NAME_MAX + 1];
    drop_clean_filename(in, len, out);
    if (has_control(out)) {
        char shown[4 * (DROP_NAME_MAX + 1)];
        size_t o = 0;
        for (size_t i = 0; out[i] != '\0' && o + 5 < sizeof shown; i++)
            o += (size_t)snprintf(shown + o, sizeof shown - o, (unsigned char)out[i] < 0x80 ? "%c" : "\\x%02x",
                                  (unsigned char)out[i]);
        fail_msg("cleaned name keeps a control character: \"%s\"", shown);
    }
    if (want != NULL)
        assert_string_equal(out, want);
}

#define EXPECT_CLEAN(lit, want) expect_clean(lit, sizeof(lit) - 1, want)

/* fuzz_key, build/fuzz/crashes/fuzz_key/crash-4148dd46dae157d8a9bd63a4d75b327a3a6dcf28:
 * U+009D (C2 9D) survived drop_clean_filename, which promises to drop control
 * characters; C1 controls are control characters (Unicode category Cc). */
static void fuzz_key_c1_control_in_filename_is_dropped(void **state)
{
    (void)state;
    static const unsigned char crash[] = {
        0x62, 0x61, 0xc2, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0xbf, 0xfe, 0xc3, 0x3f,
        0x28, 0xa3, 0xed, 0xf4, 0xa0, 0x80, 0x90, 0x80, 0x21, 0x62, 0x61, 0xc2, 0xbf, 0xfe, 0xc3, 0x3f, 0x28, 0x2e, 0x7e,
        0xf4, 0x80, 0xed, 0x90, 0xa0, 0x80, 0xf4, 0x80, 0xf4, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d,
        0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0xa0, 0x80,
    };
    expect_clean((const char *)crash, sizeof crash, NULL);
}

/* The same, minimal: NEL (U+0085), CSI (U+009B) and the first and last C1 code points. */
static void fuzz_key_c1_controls_are_dropped_like_c0_controls(void **state)
{
    (void)state;
    EXPECT_CLEAN("a\xc2\x85" "b.txt", "ab.txt");
    EXPECT_CLEAN("\xc2\x9b" "31mred.txt", "31mred.txt");
    EXPECT_CLEAN("x\xc2\x80" "y\xc2\x9f" "z", "xyz");
    /* Neighbours that are not controls stay: U+00A0 and U+00BF. */
    EXPECT_CLEAN("x\xc2\xa0" "y\xc2\xbf" "z", "x\xc2\xa0" "y\xc2\xbf" "z");
}

/* Attack (fuzz/corpus/key/rlo_gpj_exe): "%E2%80%AEgpj.exe", a RIGHT-TO-LEFT OVERRIDE
 * before "gpj.exe", is shown as "exe.jpg" by whatever renders the name bidirectionally:
 * an executable passed off as a picture. */
static void attack_right_to_left_override_in_a_filename_is_dropped(void **state)
{
    (void)state;
    EXPECT_CLEAN("\xe2\x80\xae" "gpj.exe", "gpj.exe");
}

/* Every bidirectional control (Bidi_Control) goes, not only U+202E. */
static void every_bidirectional_control_is_dropped(void **state)
{
    (void)state;
    EXPECT_CLEAN("a\xe2\x80\x8e" "b\xe2\x80\x8f" "c", "abc");                    /* LRM RLM */
    EXPECT_CLEAN("a\xe2\x80\xaa" "b\xe2\x80\xab" "c\xe2\x80\xac" "d", "abcd");   /* LRE RLE PDF */
    EXPECT_CLEAN("a\xe2\x80\xad" "b\xe2\x80\xae" "c", "abc");                    /* LRO RLO */
    EXPECT_CLEAN("a\xe2\x81\xa6" "b\xe2\x81\xa7" "c\xe2\x81\xa8" "d\xe2\x81\xa9" "e", "abcde"); /* isolates */
    EXPECT_CLEAN("a\xd8\x9c" "b.txt", "ab.txt");                                  /* ALM */
    /* Their neighbours stay: U+200D (ZWJ, in emoji), U+2029, U+2065, U+206A, U+061B. */
    EXPECT_CLEAN("\xe2\x80\x8d" "\xe2\x80\xa9" "\xe2\x81\xa5" "\xe2\x81\xaa" "\xd8\x9b",
                 "\xe2\x80\x8d" "\xe2\x80\xa9" "\xe2\x81\xa5" "\xe2\x81\xaa" "\xd8\x9b");
    /* Nothing but controls: the name becomes "file". */
    EXPECT_CLEAN("\xe2\x80\xae\xe2\x81\xa6", "file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fuzz_key_c1_control_in_filename_is_dropped),
        cmocka_unit_test(fuzz_key_c1_controls_are_dropped_like_c0_controls),
        cmocka_unit_test(attack_right_to_left_override_in_a_filename_is_dropped),
        cmocka_unit_test(every_bidirectional_control_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
