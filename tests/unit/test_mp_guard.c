/*
 * mp_guard: what passes, what is refused and why, and that whatever passes is exactly
 * one object msgpack-c reads completely.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mp_guard.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const mp_guard_limits wide = { 64, 1000000, 1u << 20 };

/* Checks buf with the request limits; why is returned through *why when not NULL. */
static int
check(const void *buf, size_t len, const char **why)
{
    return mp_guard_check(buf, len, &mp_guard_request_limits, why);
}

/* msgpack-c reads buf as one complete object using all len bytes. */
static bool
msgpack_reads_exactly(const void *buf, size_t len)
{
    msgpack_unpacked    u;
    size_t              off = 0;
    msgpack_unpack_return rc;

    msgpack_unpacked_init(&u);
    rc = msgpack_unpack_next(&u, buf, len, &off);
    msgpack_unpacked_destroy(&u);
    return rc == MSGPACK_UNPACK_SUCCESS && off == len;
}

/* A body like a real case.create, packed by msgpack-c. */
static void
pack_sample(msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_str_with_body(&pk, "r-1", 3);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_int64(&pk, -70000);
    msgpack_pack_str_with_body(&pk, "location", 8);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "district", 8);
    msgpack_pack_str_with_body(&pk, "d01", 3);
    msgpack_pack_str_with_body(&pk, "lat", 3);
    msgpack_pack_double(&pk, 31.25);
    msgpack_pack_str_with_body(&pk, "lon", 3);
    msgpack_pack_float(&pk, 121.5f);
    msgpack_pack_str_with_body(&pk, "attachments", 11);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "https://a/1", 11);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "resolved_on_spot", 16);
    msgpack_pack_true(&pk);
}

/*
 * One array holding every MessagePack format, in its every length width. Written by
 * hand where msgpack-c's packer would pick the shortest form.
 */
#define EVERY_FORMAT_OBJECTS 41   /* top-level objects in part below */

static size_t
build_every_format(unsigned char *out)
{
    static const unsigned char part[] = {
        0x05, 0x7f, 0xe0, 0xff,                         /* fixints */
        0xc0, 0xc2, 0xc3,                               /* nil, false, true */
        0xc4, 0x01, 'x',                                /* bin8 */
        0xc5, 0x00, 0x02, 'x', 'y',                     /* bin16 */
        0xc6, 0x00, 0x00, 0x00, 0x01, 'z',              /* bin32 */
        0xc7, 0x02, 0x05, 'a', 'b',                     /* ext8 */
        0xc8, 0x00, 0x01, 0x05, 'a',                    /* ext16 */
        0xc9, 0x00, 0x00, 0x00, 0x00, 0x05,             /* ext32, empty */
        0xd4, 0x01, 'a',                                /* fixext1 */
        0xd5, 0x01, 'a', 'b',                           /* fixext2 */
        0xd6, 0x01, 1, 2, 3, 4,                         /* fixext4 */
        0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,             /* fixext8 */
        0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* fixext16 */
        0xca, 0x3f, 0x80, 0x00, 0x00,                   /* float32 1.0 */
        0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,             /* float64 1.0 */
        0xcc, 0xff,                                     /* uint8 */
        0xcd, 0xff, 0xff,                               /* uint16 */
        0xce, 0xff, 0xff, 0xff, 0xff,                   /* uint32 */
        0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* uint64 */
        0xd0, 0x80,                                     /* int8 */
        0xd1, 0x80, 0x00,                               /* int16 */
        0xd2, 0x80, 0x00, 0x00, 0x00,                   /* int32 */
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,                /* int64 */
        0xa2, 'h', 'i',                                 /* fixstr */
        0xa0,                                           /* empty fixstr */
        0xd9, 0x01, 'a',                                /* str8 */
        0xda, 0x00, 0x01, 'b',                          /* str16 */
        0xdb, 0x00, 0x00, 0x00, 0x01, 'c',              /* str32 */
        0x92, 0x01, 0x02,                               /* fixarray */
        0x90,                                           /* empty fixarray */
        0xdc, 0x00, 0x01, 0xc0,                         /* array16 */
        0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0,             /* array32 */
        0x81, 0xa1, 'k', 0x01,                          /* fixmap */
        0x80,                                           /* empty fixmap */
        0xde, 0x00, 0x01, 0xa1, 'k', 0xc2,              /* map16 */
        0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'k', 0xc3,  /* map32 */
    };
    out[0] = 0xdc;
    out[1] = (unsigned char)(EVERY_FORMAT_OBJECTS >> 8);
    out[2] = (unsigned char)EVERY_FORMAT_OBJECTS;
    memcpy(out + 3, part, sizeof part);
    return 3 + sizeof part;
}

/* ---- what passes ------------------------------------------------------------------ */

static void
test_packed_request_body_passes(void **state)
{
    msgpack_sbuffer sb;
    const char     *why = NULL;

    pack_sample(&sb);
    assert_int_equal(check(sb.data, sb.size, &why), 0);
    assert_true(msgpack_reads_exactly(sb.data, sb.size));
    msgpack_sbuffer_destroy(&sb);
}

static void
test_every_format_passes_and_msgpack_agrees(void **state)
{
    unsigned char buf[512];
    size_t        n = build_every_format(buf);
    const char   *why = "unset";

    assert_true(msgpack_reads_exactly(buf, n));
    assert_int_equal(check(buf, n, &why), 0);
    assert_int_equal(mp_guard_skip(buf, n), n);
}

static void
test_every_format_alone_at_top_level_passes(void **state)
{
    unsigned char buf[512];
    size_t        n = build_every_format(buf);
    size_t        pos = 3;
    int           objects = 0;

    /* Walk the array's elements one by one: each is a complete object by itself. */
    while (pos < n) {
        size_t k = mp_guard_skip(buf + pos, n - pos);

        assert_true(k > 0);
        assert_int_equal(check(buf + pos, k, NULL), 0);
        assert_true(msgpack_reads_exactly(buf + pos, k));
        pos += k;
        objects++;
    }
    assert_int_equal(pos, n);
    assert_int_equal(objects, EVERY_FORMAT_OBJECTS);
}

static void
test_top_level_scalar_passes(void **state)
{
    const unsigned char one[] = { 0x01 };

    assert_int_equal(check(one, sizeof one, NULL), 0);
}

static void
test_depth_at_limit_passes(void **state)
{
    unsigned char buf[9];

    memset(buf, 0x91, 8);        /* 8 nested one-element arrays */
    buf[8] = 0x01;
    assert_int_equal(check(buf, 9, NULL), 0);
    assert_true(msgpack_reads_exactly(buf, 9));
}

static void
test_items_at_limit_pass(void **state)
{
    /* An array of 4095 nils: 4096 objects with the array itself. */
    static unsigned char buf[3 + 4095];

    buf[0] = 0xdc;
    buf[1] = 0x0f;
    buf[2] = 0xff;
    memset(buf + 3, 0xc0, 4095);
    assert_int_equal(check(buf, sizeof buf, NULL), 0);
}

static void
test_str_at_limit_passes(void **state)
{
    size_t         n = 65536;
    unsigned char *buf = malloc(5 + n);

    assert_non_null(buf);
    buf[0] = 0xdb;
    buf[1] = 0x00;
    buf[2] = 0x01;
    buf[3] = 0x00;
    buf[4] = 0x00;
    memset(buf + 5, 'a', n);
    assert_int_equal(check(buf, 5 + n, NULL), 0);
    free(buf);
}

/* ---- what is refused -------------------------------------------------------------- */

static void
test_empty_buffer_is_refused(void **state)
{
    const char *why = NULL;

    assert_int_equal(check("", 0, &why), -1);
    assert_string_equal(why, "the message is truncated");
}

static void
test_c1_is_refused(void **state)
{
    const unsigned char c1[] = { 0xc1 };
    const char         *why = NULL;

    assert_int_equal(check(c1, 1, &why), -1);
    assert_non_null(strstr(why, "0xc1"));
}

static void
test_c1_inside_a_map_is_refused(void **state)
{
    const unsigned char buf[] = { 0x81, 0xa1, 'k', 0xc1 };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_non_null(strstr(why, "0xc1"));
    assert_int_equal(mp_guard_skip(buf, sizeof buf), 0);
}

static void
test_declared_array_larger_than_message_is_refused(void **state)
{
    const unsigned char buf[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "declared array length exceeds the message");
}

static void
test_declared_map_larger_than_message_is_refused(void **state)
{
    const unsigned char buf[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "declared map size exceeds the message");
}

static void
test_array16_one_longer_than_the_bytes_left_is_refused(void **state)
{
    /* Three elements declared, two bytes left. */
    const unsigned char buf[] = { 0xdc, 0x00, 0x03, 0x01, 0x02 };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "declared array length exceeds the message");
}

static void
test_map_counts_two_bytes_per_entry(void **state)
{
    /* Two entries need four bytes; three are left, enough for an array of 2 but not
     * for a map of 2. */
    const unsigned char buf[] = { 0xde, 0x00, 0x02, 0x01, 0x02, 0x03 };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "declared map size exceeds the message");
}

static void
test_nested_array32_with_huge_count_is_refused(void **state)
{
    const unsigned char buf[] = { 0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "declared array length exceeds the message");
}

static void
test_str32_with_huge_length_is_refused(void **state)
{
    const unsigned char buf[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b' };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_non_null(why);
    assert_int_equal(mp_guard_skip(buf, sizeof buf), 0);
}

static void
test_bin32_and_ext32_with_huge_length_are_refused(void **state)
{
    const unsigned char bin[] = { 0xc6, 0xff, 0xff, 0xff, 0xff, 'a' };
    const unsigned char ext[] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a' };

    assert_int_equal(check(bin, sizeof bin, NULL), -1);
    assert_int_equal(check(ext, sizeof ext, NULL), -1);
    assert_int_equal(mp_guard_check(bin, sizeof bin, &wide, NULL), -1);
    assert_int_equal(mp_guard_check(ext, sizeof ext, &wide, NULL), -1);
}

static void
test_str_longer_than_remaining_bytes_is_refused(void **state)
{
    const unsigned char buf[] = { 0xa5, 'a', 'b', 'c' };
    const char         *why = NULL;

    assert_int_equal(mp_guard_check(buf, sizeof buf, &wide, &why), -1);
    assert_string_equal(why, "declared str, bin or ext length exceeds the message");
}

static void
test_str_over_limit_is_refused_even_when_present(void **state)
{
    size_t         n = 65537;
    unsigned char *buf = malloc(5 + n);
    const char    *why = NULL;

    assert_non_null(buf);
    buf[0] = 0xdb;
    buf[1] = 0x00;
    buf[2] = 0x01;
    buf[3] = 0x00;
    buf[4] = 0x01;
    memset(buf + 5, 'a', n);
    assert_int_equal(check(buf, 5 + n, &why), -1);
    assert_string_equal(why, "a str, bin or ext is longer than the limit");
    free(buf);
}

static void
test_ext_payload_counts_against_max_str(void **state)
{
    const mp_guard_limits tight = { 8, 100, 4 };
    const unsigned char   fixext8[] = { 0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8 };
    const unsigned char   fixext4[] = { 0xd6, 0x01, 1, 2, 3, 4 };

    assert_int_equal(mp_guard_check(fixext8, sizeof fixext8, &tight, NULL), -1);
    assert_int_equal(mp_guard_check(fixext4, sizeof fixext4, &tight, NULL), 0);
}

static void
test_nesting_1000_deep_is_refused(void **state)
{
    unsigned char buf[1001];
    const char   *why = NULL;

    memset(buf, 0x91, 1000);
    buf[1000] = 0x01;
    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "containers are nested deeper than the limit");
}

static void
test_nesting_of_maps_one_past_limit_is_refused(void **state)
{
    /* {"a": {"a": ... 9 maps ... 1}} */
    unsigned char buf[9 * 3 + 1];
    size_t        i;

    for (i = 0; i < 9; i++) {
        buf[3 * i] = 0x81;
        buf[3 * i + 1] = 0xa1;
        buf[3 * i + 2] = 'a';
    }
    buf[27] = 0x01;
    assert_int_equal(check(buf, sizeof buf, NULL), -1);
    /* The same thing eight deep is fine. */
    assert_int_equal(check(buf + 3, sizeof buf - 3, NULL), 0);
}

static void
test_empty_container_counts_for_depth(void **state)
{
    const mp_guard_limits flat = { 0, 100, 100 };
    const mp_guard_limits one = { 1, 100, 100 };
    const unsigned char   empty[] = { 0x90 };
    const unsigned char   nested_empty[] = { 0x91, 0x80 };

    assert_int_equal(mp_guard_check(empty, 1, &flat, NULL), -1);
    assert_int_equal(mp_guard_check(empty, 1, &one, NULL), 0);
    assert_int_equal(mp_guard_check(nested_empty, 2, &one, NULL), -1);
}

static void
test_depth_after_closing_containers_is_counted_again(void **state)
{
    /* [[1], [[1]]] with depth 3: the second child's nesting starts again at 2. */
    const mp_guard_limits three = { 3, 100, 100 };
    const mp_guard_limits two = { 2, 100, 100 };
    const unsigned char   buf[] = { 0x92, 0x91, 0x01, 0x91, 0x91, 0x01 };

    assert_int_equal(mp_guard_check(buf, sizeof buf, &three, NULL), 0);
    assert_int_equal(mp_guard_check(buf, sizeof buf, &two, NULL), -1);
}

static void
test_depth_limit_above_cap_is_capped(void **state)
{
    const mp_guard_limits deep = { 1000, 100000, 100 };
    unsigned char         buf[MP_GUARD_MAX_DEPTH + 2];

    memset(buf, 0x91, sizeof buf - 1);
    buf[sizeof buf - 1] = 0x01;
    /* MP_GUARD_MAX_DEPTH + 1 levels: refused although the caller allowed 1000. */
    assert_int_equal(mp_guard_check(buf, sizeof buf, &deep, NULL), -1);
    assert_int_equal(mp_guard_check(buf + 1, sizeof buf - 1, &deep, NULL), 0);
}

static void
test_more_items_than_limit_are_refused(void **state)
{
    static unsigned char buf[3 + 4096];
    const char          *why = NULL;

    buf[0] = 0xdc;
    buf[1] = 0x10;
    buf[2] = 0x00;
    memset(buf + 3, 0xc0, 4096);
    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "the message holds more objects than the limit");
}

static void
test_map_keys_and_values_both_count_as_items(void **state)
{
    const mp_guard_limits five = { 8, 5, 100 };
    /* {1: 2, 3: 4}: five objects; {1: 2, 3: [4]}: six. */
    const unsigned char   ok[] = { 0x82, 0x01, 0x02, 0x03, 0x04 };
    const unsigned char   over[] = { 0x82, 0x01, 0x02, 0x03, 0x91, 0x04 };

    assert_int_equal(mp_guard_check(ok, sizeof ok, &five, NULL), 0);
    assert_int_equal(mp_guard_check(over, sizeof over, &five, NULL), -1);
}

static void
test_trailing_garbage_is_refused(void **state)
{
    msgpack_sbuffer sb;
    const char     *why = NULL;

    pack_sample(&sb);
    msgpack_sbuffer_write(&sb, "\x00", 1);
    assert_int_equal(check(sb.data, sb.size, &why), -1);
    assert_string_equal(why, "trailing bytes follow the object");
    msgpack_sbuffer_destroy(&sb);
}

static void
test_two_scalars_are_refused(void **state)
{
    const unsigned char buf[] = { 0x01, 0x02 };
    const char         *why = NULL;

    assert_int_equal(check(buf, sizeof buf, &why), -1);
    assert_string_equal(why, "trailing bytes follow the object");
}

static void
test_body_truncated_at_every_offset_is_refused(void **state)
{
    msgpack_sbuffer sb;
    size_t          cut;

    pack_sample(&sb);
    for (cut = 0; cut < sb.size; cut++) {
        const char *why = NULL;

        if (check(sb.data, cut, &why) != -1) {
            fail_msg("a body cut to %zu of %zu bytes passed", cut, sb.size);
        }
        assert_non_null(why);
        assert_int_equal(mp_guard_skip(sb.data, cut), 0);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void
test_every_format_truncated_at_every_offset_is_refused(void **state)
{
    unsigned char buf[512];
    size_t        n = build_every_format(buf);
    size_t        cut;

    for (cut = 0; cut < n; cut++) {
        if (mp_guard_check(buf, cut, &wide, NULL) != -1) {
            fail_msg("every-format array cut to %zu of %zu bytes passed", cut, n);
        }
        assert_int_equal(mp_guard_skip(buf, cut), 0);
    }
}

static void
test_fixed_width_numbers_cut_short_are_refused(void **state)
{
    const unsigned char u64[] = { 0xcf, 1, 2, 3, 4, 5, 6, 7 };
    const unsigned char f32[] = { 0xca, 1, 2, 3 };
    const unsigned char fixext16[] = { 0xd8, 0x01, 1, 2, 3 };
    const char         *why = NULL;

    assert_int_equal(check(u64, sizeof u64, &why), -1);
    assert_string_equal(why, "the message is truncated");
    assert_int_equal(check(f32, sizeof f32, NULL), -1);
    assert_int_equal(check(fixext16, sizeof fixext16, NULL), -1);
}

static void
test_why_may_be_null(void **state)
{
    const unsigned char buf[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };

    assert_int_equal(check(buf, sizeof buf, NULL), -1);
}

/* ---- mp_guard_skip ---------------------------------------------------------------- */

static void
test_skip_returns_size_of_first_object_only(void **state)
{
    const unsigned char buf[] = { 0x92, 0xa1, 'x', 0x81, 0x01, 0x02, 0xff, 0xff };

    assert_int_equal(mp_guard_skip(buf, sizeof buf), 6);
    assert_int_equal(mp_guard_skip(buf + 6, 2), 1);
}

static void
test_skip_has_no_depth_limit(void **state)
{
    unsigned char buf[10001];

    memset(buf, 0x91, 10000);
    buf[10000] = 0xc0;
    assert_int_equal(mp_guard_skip(buf, sizeof buf), sizeof buf);
}

static void
test_skip_refuses_counts_larger_than_the_bytes_left(void **state)
{
    const unsigned char arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    const unsigned char map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2, 3 };
    /* Each array's count fits what follows it, but together they want more. */
    const unsigned char sum[] = { 0x92, 0x92, 0x01, 0x02 };

    assert_int_equal(mp_guard_skip(arr, sizeof arr), 0);
    assert_int_equal(mp_guard_skip(map, sizeof map), 0);
    assert_int_equal(mp_guard_skip(sum, sizeof sum), 0);
    assert_int_equal(mp_guard_skip(sum, 0), 0);
}

/* ---- against msgpack-c ------------------------------------------------------------ */

static uint32_t
xorshift(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void
test_whatever_passes_is_read_exactly_by_msgpack(void **state)
{
    unsigned char base[512];
    unsigned char buf[512];
    size_t        n = build_every_format(base);
    uint32_t      seed = 0x2545f491u;
    int           passed = 0;
    int           round;

    /* Mutate one to three bytes at random; when the guard lets a mutant through,
     * msgpack-c must read it as one object using every byte, and skip must agree. */
    for (round = 0; round < 20000; round++) {
        int flips = 1 + (int)(xorshift(&seed) % 3);
        int k;

        memcpy(buf, base, n);
        for (k = 0; k < flips; k++) {
            buf[xorshift(&seed) % n] = (unsigned char)xorshift(&seed);
        }
        if (mp_guard_check(buf, n, &wide, NULL) == 0) {
            passed++;
            if (!msgpack_reads_exactly(buf, n)) {
                fail_msg("round %d: guard passed what msgpack-c does not read exactly", round);
            }
            assert_int_equal(mp_guard_skip(buf, n), n);
        }
    }
    /* Many mutants (changed values inside strings, ints) must still pass. */
    assert_true(passed > 1000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_request_body_passes),
        cmocka_unit_test(test_every_format_passes_and_msgpack_agrees),
        cmocka_unit_test(test_every_format_alone_at_top_level_passes),
        cmocka_unit_test(test_top_level_scalar_passes),
        cmocka_unit_test(test_depth_at_limit_passes),
        cmocka_unit_test(test_items_at_limit_pass),
        cmocka_unit_test(test_str_at_limit_passes),
        cmocka_unit_test(test_empty_buffer_is_refused),
        cmocka_unit_test(test_c1_is_refused),
        cmocka_unit_test(test_c1_inside_a_map_is_refused),
        cmocka_unit_test(test_declared_array_larger_than_message_is_refused),
        cmocka_unit_test(test_declared_map_larger_than_message_is_refused),
        cmocka_unit_test(test_array16_one_longer_than_the_bytes_left_is_refused),
        cmocka_unit_test(test_map_counts_two_bytes_per_entry),
        cmocka_unit_test(test_nested_array32_with_huge_count_is_refused),
        cmocka_unit_test(test_str32_with_huge_length_is_refused),
        cmocka_unit_test(test_bin32_and_ext32_with_huge_length_are_refused),
        cmocka_unit_test(test_str_longer_than_remaining_bytes_is_refused),
        cmocka_unit_test(test_str_over_limit_is_refused_even_when_present),
        cmocka_unit_test(test_ext_payload_counts_against_max_str),
        cmocka_unit_test(test_nesting_1000_deep_is_refused),
        cmocka_unit_test(test_nesting_of_maps_one_past_limit_is_refused),
        cmocka_unit_test(test_empty_container_counts_for_depth),
        cmocka_unit_test(test_depth_after_closing_containers_is_counted_again),
        cmocka_unit_test(test_depth_limit_above_cap_is_capped),
        cmocka_unit_test(test_more_items_than_limit_are_refused),
        cmocka_unit_test(test_map_keys_and_values_both_count_as_items),
        cmocka_unit_test(test_trailing_garbage_is_refused),
        cmocka_unit_test(test_two_scalars_are_refused),
        cmocka_unit_test(test_body_truncated_at_every_offset_is_refused),
        cmocka_unit_test(test_every_format_truncated_at_every_offset_is_refused),
        cmocka_unit_test(test_fixed_width_numbers_cut_short_are_refused),
        cmocka_unit_test(test_why_may_be_null),
        cmocka_unit_test(test_skip_returns_size_of_first_object_only),
        cmocka_unit_test(test_skip_has_no_depth_limit),
        cmocka_unit_test(test_skip_refuses_counts_larger_than_the_bytes_left),
        cmocka_unit_test(test_whatever_passes_is_read_exactly_by_msgpack),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
