/*
 * utf8: well-formed text passes; overlongs, surrogates, code points past U+10FFFF,
 * truncated sequences, stray bytes and NUL are refused. The last tests compare every
 * sequence of up to three bytes, and a sweep of four-byte ones, with a decoder written
 * from the definition.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "utf8.h"

#include <stdint.h>
#include <string.h>

static bool
valid(const char *s)
{
    return utf8_valid(s, strlen(s));
}

static void
test_empty_text_is_valid(void **state)
{
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid(NULL, 0));
}

static void
test_ascii_is_valid(void **state)
{
    assert_true(valid("Pothole on Long Road, no. 12 \t\r\n~"));
}

static void
test_two_three_and_four_byte_characters_are_valid(void **state)
{
    assert_true(valid("caf\xc3\xa9"));                     /* U+00E9 */
    assert_true(valid("\xe4\xb8\xad\xe6\x96\x87"));        /* U+4E2D U+6587 */
    assert_true(valid("\xf0\x9f\x98\x80"));                /* U+1F600 */
}

static void
test_range_edges_are_valid(void **state)
{
    assert_true(valid("\x7f"));                            /* U+007F */
    assert_true(valid("\xc2\x80"));                        /* U+0080 */
    assert_true(valid("\xdf\xbf"));                        /* U+07FF */
    assert_true(valid("\xe0\xa0\x80"));                    /* U+0800 */
    assert_true(valid("\xed\x9f\xbf"));                    /* U+D7FF */
    assert_true(valid("\xee\x80\x80"));                    /* U+E000 */
    assert_true(valid("\xef\xbf\xbf"));                    /* U+FFFF */
    assert_true(valid("\xf0\x90\x80\x80"));                /* U+10000 */
    assert_true(valid("\xf4\x8f\xbf\xbf"));                /* U+10FFFF */
}

static void
test_overlong_forms_are_refused(void **state)
{
    assert_false(valid("\xc0\x80"));                       /* NUL in two bytes */
    assert_false(valid("\xc0\xaf"));                       /* '/' in two bytes */
    assert_false(valid("\xc1\xbf"));
    assert_false(valid("\xe0\x80\xaf"));
    assert_false(valid("\xe0\x9f\xbf"));                   /* U+07FF in three bytes */
    assert_false(valid("\xf0\x80\x80\xaf"));
    assert_false(valid("\xf0\x8f\xbf\xbf"));               /* U+FFFF in four bytes */
}

static void
test_surrogates_are_refused(void **state)
{
    assert_false(valid("\xed\xa0\x80"));                   /* U+D800 */
    assert_false(valid("\xed\xbf\xbf"));                   /* U+DFFF */
    assert_false(valid("\xed\xa0\xbd\xed\xb8\x80"));       /* a CESU-8 pair */
}

static void
test_code_points_above_10ffff_are_refused(void **state)
{
    assert_false(valid("\xf4\x90\x80\x80"));               /* U+110000 */
    assert_false(valid("\xf5\x80\x80\x80"));
    assert_false(valid("\xf7\xbf\xbf\xbf"));
    assert_false(valid("\xf8\x88\x80\x80\x80"));           /* old five-byte form */
    assert_false(valid("\xfe"));
    assert_false(valid("\xff"));
}

static void
test_truncated_sequences_are_refused(void **state)
{
    const char *full = "\xf0\x9f\x98\x80";
    size_t      n;

    for (n = 1; n < 4; n++) {
        assert_false(utf8_valid(full, n));
    }
    assert_false(valid("abc\xe4\xb8"));
    assert_false(valid("\xc3"));
}

static void
test_length_bounds_the_check(void **state)
{
    /* A valid prefix passes even when invalid bytes follow it in memory. */
    assert_true(utf8_valid("ab\xff", 2));
    assert_false(utf8_valid("ab\xff", 3));
}

static void
test_truncation_is_detected_before_the_buffer_ends(void **state)
{
    /* The sequence is complete in memory but n stops inside it. */
    assert_false(utf8_valid("\xe4\xb8\xad", 2));
}

static void
test_stray_continuation_bytes_are_refused(void **state)
{
    assert_false(valid("\x80"));
    assert_false(valid("a\xbf" "b"));
    assert_false(valid("\xc3\xa9\xa9"));
}

static void
test_bad_continuation_is_refused(void **state)
{
    assert_false(valid("\xe4\xb8" "A"));
    assert_false(valid("\xc3" "A"));
    assert_false(valid("\xf0\x9f\x98" "A"));
    assert_false(valid("\xf0\x9f\xc0\x80"));
}

static void
test_nul_is_refused_anywhere(void **state)
{
    assert_false(utf8_valid("\0", 1));
    assert_false(utf8_valid("ab\0cd", 5));
    assert_false(utf8_valid("abcd\0", 5));
}

/* ---- against a decoder written from the definition --------------------------------- */

/* Decodes p[0..n) as exactly one scalar value by the bit patterns alone, then applies
 * the rules: shortest form, no surrogate, at most U+10FFFF, not NUL. */
static bool
reference_one(const unsigned char *p, size_t n)
{
    uint32_t cp;
    uint32_t min;
    size_t   need;
    size_t   i;

    if (n == 0) {
        return false;
    }
    if (p[0] < 0x80) {
        need = 1; cp = p[0]; min = 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        need = 2; cp = p[0] & 0x1f; min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        need = 3; cp = p[0] & 0x0f; min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        need = 4; cp = p[0] & 0x07; min = 0x10000;
    } else {
        return false;
    }
    if (n != need) {
        return false;
    }
    for (i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return false;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    return cp >= min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* Whether p[0..n) splits into valid single characters (n <= 3 here). */
static bool
reference(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t k;
        bool   found = false;

        for (k = 1; k <= 4 && i + k <= n; k++) {
            if (reference_one(p + i, k)) {
                found = true;
                break;
            }
        }
        if (!found) {
            return false;
        }
        i += k;
    }
    return true;
}

static void
test_every_sequence_of_up_to_three_bytes_matches_the_definition(void **state)
{
    unsigned char b[3];
    uint32_t      v;
    size_t        n;

    for (n = 1; n <= 3; n++) {
        uint32_t end = 1u << (8 * n);

        for (v = 0; v < end; v++) {
            size_t i;

            for (i = 0; i < n; i++) {
                b[i] = (unsigned char)(v >> (8 * i));
            }
            if (utf8_valid((const char *)b, n) != reference(b, n)) {
                fail_msg("disagree on %zu bytes %02x %02x %02x", n, b[0], n > 1 ? b[1] : 0,
                         n > 2 ? b[2] : 0);
            }
        }
    }
}

static void
test_four_byte_sequences_match_the_definition(void **state)
{
    /* Every lead byte from F0 and all second and third bytes, with fourth bytes on the
     * edges of the continuation range and just outside it. */
    static const unsigned char last[] = { 0x00, 0x7f, 0x80, 0x81, 0xbf, 0xc0, 0xff };
    unsigned char              b[4];
    unsigned                   b0, b1, b2;
    size_t                     k;

    for (b0 = 0xf0; b0 <= 0xff; b0++) {
        for (b1 = 0; b1 <= 0xff; b1++) {
            for (b2 = 0; b2 <= 0xff; b2++) {
                for (k = 0; k < sizeof last; k++) {
                    b[0] = (unsigned char)b0;
                    b[1] = (unsigned char)b1;
                    b[2] = (unsigned char)b2;
                    b[3] = last[k];
                    if (utf8_valid((const char *)b, 4) != reference(b, 4)) {
                        fail_msg("disagree on %02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
                    }
                }
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_text_is_valid),
        cmocka_unit_test(test_ascii_is_valid),
        cmocka_unit_test(test_two_three_and_four_byte_characters_are_valid),
        cmocka_unit_test(test_range_edges_are_valid),
        cmocka_unit_test(test_overlong_forms_are_refused),
        cmocka_unit_test(test_surrogates_are_refused),
        cmocka_unit_test(test_code_points_above_10ffff_are_refused),
        cmocka_unit_test(test_truncated_sequences_are_refused),
        cmocka_unit_test(test_length_bounds_the_check),
        cmocka_unit_test(test_truncation_is_detected_before_the_buffer_ends),
        cmocka_unit_test(test_stray_continuation_bytes_are_refused),
        cmocka_unit_test(test_bad_continuation_is_refused),
        cmocka_unit_test(test_nul_is_refused_anywhere),
        cmocka_unit_test(test_every_sequence_of_up_to_three_bytes_matches_the_definition),
        cmocka_unit_test(test_four_byte_sequences_match_the_definition),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
