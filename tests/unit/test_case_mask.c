/* Masking the reporter: names keep their first character, phones their first three and
 * last four digits; the output is always NUL-terminated within its cap, never cuts a
 * character in half and never reads past the input (ASan runs this in CI). */
#include "case_record.h"
#include "mp_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define SENTINEL 'X'

/* A copy of the bytes in a heap block of exactly n bytes, with no NUL after them, so
 * that ASan reports any read past the input. */
static gl_str exact(const char *bytes, size_t n, char **block)
{
    *block = malloc(n > 0 ? n : 1);
    assert_non_null(*block);
    memcpy(*block, bytes, n);
    return gl_str_of(*block, n);
}

/* case_name_mask into a buffer of cap bytes followed by sentinels; checks that nothing
 * past cap was written and that the output is NUL-terminated at the returned length. */
static size_t name_mask(const char *name, size_t cap, char *out)
{
    char buf[300];
    char *block;
    assert_true(cap + 8 <= sizeof buf);
    memset(buf, SENTINEL, sizeof buf);
    size_t n = case_name_mask(exact(name, strlen(name), &block), buf, cap);
    free(block);
    for (size_t i = cap; i < cap + 8; i++) {
        assert_int_equal(buf[i], SENTINEL);
    }
    if (cap > 0) {
        assert_true(n < cap);
        assert_int_equal(buf[n], '\0');
        memcpy(out, buf, n + 1);
    } else {
        assert_int_equal(n, 0);
        out[0] = '\0';
    }
    return n;
}

static size_t phone_mask(const char *phone, size_t cap, char *out)
{
    char buf[100];
    char *block;
    assert_true(cap + 8 <= sizeof buf);
    memset(buf, SENTINEL, sizeof buf);
    size_t n = case_phone_mask(exact(phone, strlen(phone), &block), buf, cap);
    free(block);
    for (size_t i = cap; i < cap + 8; i++) {
        assert_int_equal(buf[i], SENTINEL);
    }
    if (cap > 0) {
        assert_true(n < cap);
        assert_int_equal(buf[n], '\0');
        memcpy(out, buf, n + 1);
    } else {
        assert_int_equal(n, 0);
        out[0] = '\0';
    }
    return n;
}

static void test_name_keeps_its_first_character_and_stars_the_rest(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(name_mask("王小明", sizeof out, out), strlen("王**"));
    assert_string_equal(out, "王**");
    assert_int_equal(name_mask("Li", sizeof out, out), 2);
    assert_string_equal(out, "L*");
    assert_int_equal(name_mask("L", sizeof out, out), 1);
    assert_string_equal(out, "L");
    assert_int_equal(name_mask("王", sizeof out, out), strlen("王"));
    assert_string_equal(out, "王");
    assert_int_equal(name_mask("", sizeof out, out), 0);
    assert_string_equal(out, "");
    /* One star per character, whatever its length in bytes. */
    name_mask("José", sizeof out, out);
    assert_string_equal(out, "J***");
    name_mask("欧阳娜娜", sizeof out, out);
    assert_string_equal(out, "欧***");
    name_mask("\xf0\x9f\x98\x80" "ab\xf0\x9f\x98\x80", sizeof out, out);   /* emoji, a, b, emoji */
    assert_string_equal(out, "\xf0\x9f\x98\x80***");
    name_mask("Wang Xiaoming", sizeof out, out);
    assert_string_equal(out, "W************");
}

static void test_name_cut_by_a_small_cap_stops_at_a_character_boundary(void **state)
{
    (void)state;
    char out[64];

    /* 王 is 3 bytes: 4 bytes hold it and the NUL, 5 add one star. */
    assert_int_equal(name_mask("王小明", 6, out), 5);
    assert_string_equal(out, "王**");
    assert_int_equal(name_mask("王小明", 5, out), 4);
    assert_string_equal(out, "王*");
    assert_int_equal(name_mask("王小明", 4, out), 3);
    assert_string_equal(out, "王");
    assert_int_equal(name_mask("Li", 2, out), 1);
    assert_string_equal(out, "L");
    assert_int_equal(name_mask("Li", 1, out), 0);
    assert_string_equal(out, "");
    /* A cap of 0 writes nothing at all (name_mask checks the sentinels). */
    assert_int_equal(name_mask("王小明", 0, out), 0);
    /* Four-byte first character: cut before it is whole means nothing of it. */
    name_mask("\xf0\x9f\x98\x80" "a", 6, out);
    assert_string_equal(out, "\xf0\x9f\x98\x80*");
    name_mask("\xf0\x9f\x98\x80" "a", 5, out);
    assert_string_equal(out, "\xf0\x9f\x98\x80");
}

/* BUG (protocol/case_record.c, case_name_mask): when cap cannot hold the first character
 * (cap 2 or 3 for 王小明), the first character is skipped but the loop still writes
 * stars, giving "*" or "**": a name that is not a cut of the masked form 王** (it reads
 * as a name whose first character is '*'). A cut at a character boundary of "王**" that
 * fits in 2 or 3 bytes is "". */
static void test_name_cut_before_its_first_character_is_empty(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(name_mask("王小明", 3, out), 0);
    assert_string_equal(out, "");
    assert_int_equal(name_mask("王小明", 2, out), 0);
    assert_string_equal(out, "");
    name_mask("\xf0\x9f\x98\x80" "ab", 4, out);
    assert_string_equal(out, "");
}

static void test_truncated_utf8_does_not_read_past_the_input(void **state)
{
    (void)state;
    char out[64];

    /* A lone lead byte of a 3-byte character: the input is 1 byte. */
    assert_int_equal(name_mask("\xe7", sizeof out, out), 1);
    assert_string_equal(out, "\xe7");
    /* A 4-byte lead with one continuation byte. */
    assert_int_equal(name_mask("\xf0\x9f", sizeof out, out), 2);
    assert_string_equal(out, "\xf0\x9f");
    /* A truncated character after the first: one star for it, nothing read beyond. */
    name_mask("a\xe7", sizeof out, out);
    assert_string_equal(out, "a*");
    name_mask("王\xe5\xb0", sizeof out, out);
    assert_string_equal(out, "王*");
    name_mask("王小\xf0", sizeof out, out);
    assert_string_equal(out, "王**");
    /* Stray continuation bytes count as one character each. */
    name_mask("\x80\x80", sizeof out, out);
    assert_string_equal(out, "\x80*");
    /* And every prefix of a long name, cut anywhere, with every cap. */
    const char *name = "王小明\xf0\x9f\x98\x80Li";
    for (size_t len = 0; len <= strlen(name); len++) {
        char part[32];
        memcpy(part, name, len);
        part[len] = '\0';
        for (size_t cap = 0; cap < 24; cap++) {
            name_mask(part, cap, out);
        }
    }
}

static void test_phone_keeps_first_three_and_last_four_digits(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(phone_mask("13812345678", sizeof out, out), 11);
    assert_string_equal(out, "138****5678");
    phone_mask("+86 138-1234-5678", sizeof out, out);
    assert_string_equal(out, "+86 1**-****-5678");
    /* Seven digits or fewer: nothing between the first three and the last four. */
    phone_mask("1234567", sizeof out, out);
    assert_string_equal(out, "1234567");
    phone_mask("12345678", sizeof out, out);
    assert_string_equal(out, "123*5678");
    assert_int_equal(phone_mask("", sizeof out, out), 0);
    assert_string_equal(out, "");
}

static void test_phone_cut_by_a_small_cap_is_nul_terminated(void **state)
{
    (void)state;
    char out[64];

    /* Exactly phone.n + 1, as the header asks. */
    assert_int_equal(phone_mask("13812345678", 12, out), 11);
    assert_string_equal(out, "138****5678");
    assert_int_equal(phone_mask("13812345678", 5, out), 4);
    assert_string_equal(out, "138*");
    assert_int_equal(phone_mask("13812345678", 1, out), 0);
    assert_string_equal(out, "");
    assert_int_equal(phone_mask("13812345678", 0, out), 0);
    /* A cut never shows a digit that the whole mask hides. */
    for (size_t cap = 1; cap <= 12; cap++) {
        phone_mask("13812345678", cap, out);
        assert_int_equal(strncmp(out, "138****5678", strlen(out)), 0);
    }
}

static case_record sample(void)
{
    case_record c;
    memset(&c, 0, sizeof c);
    c.id = 17;
    c.code = gl_str_c("GL-20261126-000017");
    c.version = 2;
    c.state = CASE_DISPATCHED;
    c.channel = CHANNEL_HOTLINE;
    c.category = gl_str_c("street_lights");
    c.urgency = URGENCY_NORMAL;
    c.description = gl_str_c("Street light out at the gate of building 3");
    c.location.district = gl_str_c("D01");
    c.location.street = gl_str_c("D01-S01");
    c.location.community = gl_str_c("D01-S01-C01");
    c.reporter_name = gl_str_c("王小明");
    c.reporter_phone = gl_str_c("13812345678");
    c.request_id = gl_str_c("5f0c-req");
    c.created_by = gl_str_c("hotline-desk-1");
    c.unit = gl_str_c("D01-HOUSING");
    c.created_at = 1000;
    c.updated_at = 2000;
    return c;
}

/* Packs c with flags and reads it back into out; the buffer and zone hold out's strings. */
static void roundtrip(const case_record *c, unsigned flags, case_record *out,
                      msgpack_sbuffer *sb, msgpack_zone *zone)
{
    msgpack_packer pk;
    msgpack_object o;
    msgpack_sbuffer_init(sb);
    msgpack_zone_init(zone, 1024);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack(&pk, c, flags), 0);
    assert_int_equal(mp_unpack(sb->data, sb->size, zone, &o), 0);
    memset(out, 0, sizeof *out);
    assert_int_equal(case_record_unpack(&o, out), 0);
}

static void roundtrip_done(msgpack_sbuffer *sb, msgpack_zone *zone)
{
    msgpack_zone_destroy(zone);
    msgpack_sbuffer_destroy(sb);
}

static void assert_rest_intact(const case_record *out)
{
    assert_int_equal(out->id, 17);
    assert_int_equal(out->version, 2);
    assert_int_equal(out->state, CASE_DISPATCHED);
    assert_true(gl_str_eq(out->code, "GL-20261126-000017"));
    assert_true(gl_str_eq(out->created_by, "hotline-desk-1"));
    assert_true(gl_str_eq(out->request_id, "5f0c-req"));
    assert_true(gl_str_eq(out->unit, "D01-HOUSING"));
    assert_true(gl_str_eq(out->description, "Street light out at the gate of building 3"));
    assert_true(gl_str_eq(out->location.community, "D01-S01-C01"));
    assert_int_equal(out->created_at, 1000);
}

static void test_pack_with_both_flags_masks_name_and_phone_only(void **state)
{
    (void)state;
    case_record c = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;

    roundtrip(&c, CASE_PACK_MASK_NAME | CASE_PACK_MASK_PHONE, &out, &sb, &zone);
    assert_true(gl_str_eq(out.reporter_name, "王**"));
    assert_true(gl_str_eq(out.reporter_phone, "138****5678"));
    assert_rest_intact(&out);
    roundtrip_done(&sb, &zone);
    /* The record packed is not changed by masking. */
    assert_true(gl_str_eq(c.reporter_name, "王小明"));
    assert_true(gl_str_eq(c.reporter_phone, "13812345678"));
}

static void test_pack_without_flags_shows_name_and_phone(void **state)
{
    (void)state;
    case_record c = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;

    roundtrip(&c, 0, &out, &sb, &zone);
    assert_true(gl_str_eq(out.reporter_name, "王小明"));
    assert_true(gl_str_eq(out.reporter_phone, "13812345678"));
    assert_rest_intact(&out);
    roundtrip_done(&sb, &zone);
}

static void test_pack_flags_mask_name_and_phone_separately(void **state)
{
    (void)state;
    case_record c = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;

    roundtrip(&c, CASE_PACK_MASK_NAME, &out, &sb, &zone);
    assert_true(gl_str_eq(out.reporter_name, "王**"));
    assert_true(gl_str_eq(out.reporter_phone, "13812345678"));
    assert_rest_intact(&out);
    roundtrip_done(&sb, &zone);

    roundtrip(&c, CASE_PACK_MASK_PHONE, &out, &sb, &zone);
    assert_true(gl_str_eq(out.reporter_name, "王小明"));
    assert_true(gl_str_eq(out.reporter_phone, "138****5678"));
    assert_rest_intact(&out);
    roundtrip_done(&sb, &zone);
}

static void test_pack_masking_an_absent_reporter_leaves_it_absent(void **state)
{
    (void)state;
    case_record c = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;

    c.reporter_name = GL_STR_NULL;
    c.reporter_phone = GL_STR_NULL;
    roundtrip(&c, CASE_PACK_MASK_NAME | CASE_PACK_MASK_PHONE, &out, &sb, &zone);
    assert_int_equal(out.reporter_name.n, 0);
    assert_int_equal(out.reporter_phone.n, 0);
    assert_rest_intact(&out);
    roundtrip_done(&sb, &zone);

    /* A one-character name is its own mask. */
    c.reporter_name = gl_str_c("王");
    roundtrip(&c, CASE_PACK_MASK_NAME | CASE_PACK_MASK_PHONE, &out, &sb, &zone);
    assert_true(gl_str_eq(out.reporter_name, "王"));
    roundtrip_done(&sb, &zone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_keeps_its_first_character_and_stars_the_rest),
        cmocka_unit_test(test_name_cut_by_a_small_cap_stops_at_a_character_boundary),
        cmocka_unit_test(test_name_cut_before_its_first_character_is_empty),
        cmocka_unit_test(test_truncated_utf8_does_not_read_past_the_input),
        cmocka_unit_test(test_phone_keeps_first_three_and_last_four_digits),
        cmocka_unit_test(test_phone_cut_by_a_small_cap_is_nul_terminated),
        cmocka_unit_test(test_pack_with_both_flags_masks_name_and_phone_only),
        cmocka_unit_test(test_pack_without_flags_shows_name_and_phone),
        cmocka_unit_test(test_pack_flags_mask_name_and_phone_separately),
        cmocka_unit_test(test_pack_masking_an_absent_reporter_leaves_it_absent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
