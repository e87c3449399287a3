/*
 * request: the rules of stats.query as request_parse_stats checks them
 * (protocol/README.md, "stats.query"): group_by required and one of its names, from and
 * to optional integer times with to later than from, rid allowed, unknown and duplicate
 * fields refused with the field named at the head of the message.
 *
 * Bodies are packed by msgpack-c, passed through mp_guard and msgpack_unpack_next as the
 * daemon does, then parsed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mp_guard.h"
#include "request.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1795564800000)   /* 2026-11-25T00:00:00Z */

static msgpack_sbuffer  sb;
static msgpack_packer   pk;
static msgpack_unpacked unpacked;
static gl_error         err;
static request_stats    rs;

static int
setup(void **state)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&unpacked);
    memset(&err, 0, sizeof err);
    memset(&rs, 0xa5, sizeof rs);   /* garbage: the parser must set every field */
    return 0;
}

static int
teardown(void **state)
{
    msgpack_unpacked_destroy(&unpacked);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

static void
key(const char *k)
{
    msgpack_pack_str_with_body(&pk, k, strlen(k));
}

static void
str(const char *v)
{
    msgpack_pack_str_with_body(&pk, v, strlen(v));
}

/* Guards, unpacks and parses what is in sb, as the daemon does. */
static int
parse(void)
{
    size_t      off = 0;
    const char *why = NULL;

    if (mp_guard_check(sb.data, sb.size, &mp_guard_request_limits, &why) != 0) {
        fail_msg("test body refused by mp_guard: %s", why);
    }
    msgpack_unpacked_destroy(&unpacked);
    msgpack_unpacked_init(&unpacked);
    assert_int_equal(msgpack_unpack_next(&unpacked, sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    return request_parse_stats(&unpacked.data, &rs, &err);
}

/* {"group_by": by, "from": from, "to": to}, from and to left out when < 0. */
static int
parse_range(const char *by, int64_t from, int64_t to)
{
    msgpack_pack_map(&pk, 1 + (from >= 0) + (to >= 0));
    key("group_by");
    str(by);
    if (from >= 0) {
        key("from");
        msgpack_pack_int64(&pk, from);
    }
    if (to >= 0) {
        key("to");
        msgpack_pack_int64(&pk, to);
    }
    return parse();
}

static void
assert_refused(int rc, int code, const char *field, const char *needle)
{
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    if (field != NULL) {
        assert_string_equal(err.field, field);
        /* The message is a sentence naming the field. */
        assert_int_equal(strncmp(err.message, field, strlen(field)), 0);
    }
    if (needle != NULL && strstr(err.message, needle) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
    }
}

/* ---- what is accepted ------------------------------------------------------------ */

static void
test_group_by_alone_means_every_case(void **state)
{
    assert_int_equal(parse_range("district", -1, -1), 0);
    assert_int_equal(rs.group_by, STATS_BY_DISTRICT);
    assert_false(rs.has_from);
    assert_false(rs.has_to);
    assert_true(rs.from == INT64_MIN);
    assert_true(rs.to == INT64_MAX);
}

static void
test_every_group_name_parses_to_its_value_and_back(void **state)
{
    static const char *const names[STATS_BY_COUNT] = {
        "unit", "district", "category", "street", "community"
    };

    for (int i = 0; i < STATS_BY_COUNT; i++) {
        msgpack_sbuffer_clear(&sb);
        assert_int_equal(parse_range(names[i], -1, -1), 0);
        assert_int_equal(rs.group_by, i);
        assert_string_equal(stats_group_name((stats_group)i), names[i]);
    }
    assert_null(stats_group_name(STATS_BY_COUNT));
}

static void
test_from_and_to_are_kept(void **state)
{
    assert_int_equal(parse_range("unit", T0, T0 + 86400000), 0);
    assert_true(rs.has_from && rs.has_to);
    assert_true(rs.from == T0);
    assert_true(rs.to == T0 + 86400000);
}

static void
test_from_or_to_alone_leaves_the_other_end_open(void **state)
{
    assert_int_equal(parse_range("unit", T0, -1), 0);
    assert_true(rs.has_from && !rs.has_to);
    assert_true(rs.from == T0 && rs.to == INT64_MAX);
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(parse_range("unit", -1, T0), 0);
    assert_true(!rs.has_from && rs.has_to);
    assert_true(rs.from == INT64_MIN && rs.to == T0);
}

static void
test_a_range_of_one_millisecond_is_accepted(void **state)
{
    assert_int_equal(parse_range("category", T0, T0 + 1), 0);
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(parse_range("category", 0, 1), 0);
}

static void
test_nil_from_and_to_are_absent(void **state)
{
    msgpack_pack_map(&pk, 3);
    key("group_by");
    str("unit");
    key("from");
    msgpack_pack_nil(&pk);
    key("to");
    msgpack_pack_nil(&pk);
    assert_int_equal(parse(), 0);
    assert_false(rs.has_from);
    assert_false(rs.has_to);
}

static void
test_rid_of_any_scalar_is_allowed(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("rid");
    str("r-1");
    key("group_by");
    str("street");
    assert_int_equal(parse(), 0);
    assert_int_equal(rs.group_by, STATS_BY_STREET);
}

/* ---- what is refused ------------------------------------------------------------- */

static void
test_missing_group_by_is_refused_naming_the_choices(void **state)
{
    msgpack_pack_map(&pk, 1);
    key("from");
    msgpack_pack_int64(&pk, T0);
    assert_refused(parse(), GL_EINVALID, "group_by", "is required");
    assert_non_null(strstr(err.message, "community"));
}

static void
test_nil_group_by_is_missing(void **state)
{
    msgpack_pack_map(&pk, 1);
    key("group_by");
    msgpack_pack_nil(&pk);
    assert_refused(parse(), GL_EINVALID, "group_by", "is required");
}

static void
test_unknown_group_by_is_refused_listing_the_names(void **state)
{
    assert_refused(parse_range("grid", -1, -1), GL_EINVALID, "group_by",
                   "must be one of unit, district, category, street, community");
    msgpack_sbuffer_clear(&sb);
    assert_refused(parse_range("Unit", -1, -1), GL_EINVALID, "group_by", "must be one of");
    msgpack_sbuffer_clear(&sb);
    assert_refused(parse_range("", -1, -1), GL_EINVALID, "group_by", "must be one of");
}

static void
test_group_by_that_is_not_a_string_is_refused(void **state)
{
    msgpack_pack_map(&pk, 1);
    key("group_by");
    msgpack_pack_int(&pk, 1);
    assert_refused(parse(), GL_EINVALID, "group_by", "must be one of");
}

static void
test_from_that_is_not_an_integer_time_is_refused(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("from");
    str("2026-11-25");
    assert_refused(parse(), GL_EINVALID, "from", "milliseconds since the epoch");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("from");
    msgpack_pack_double(&pk, 1.5);
    assert_refused(parse(), GL_EINVALID, "from", "milliseconds since the epoch");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("from");
    msgpack_pack_true(&pk);
    assert_refused(parse(), GL_EINVALID, "from", NULL);
}

static void
test_negative_or_huge_times_are_refused(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("from");
    msgpack_pack_int64(&pk, -1);
    assert_refused(parse(), GL_EINVALID, "from", NULL);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("to");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    assert_refused(parse(), GL_EINVALID, "to", NULL);
}

static void
test_to_not_later_than_from_is_refused(void **state)
{
    assert_refused(parse_range("unit", T0, T0), GL_EINVALID, "to", "later than from");
    msgpack_sbuffer_clear(&sb);
    assert_refused(parse_range("unit", T0, T0 - 1), GL_EINVALID, "to", "later than from");
}

static void
test_unknown_field_is_refused_by_name(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("filter");
    msgpack_pack_map(&pk, 0);
    assert_refused(parse(), GL_EINVALID, "filter", "unknown field");
}

static void
test_field_given_twice_is_refused(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    key("group_by");
    str("unit");
    assert_refused(parse(), GL_EINVALID, "group_by", "more than once");
}

static void
test_the_first_fault_in_field_order_is_reported_whatever_the_packing_order(void **state)
{
    /* to before group_by in the body; group_by is checked first. */
    msgpack_pack_map(&pk, 2);
    key("to");
    str("soon");
    key("group_by");
    str("nope");
    assert_refused(parse(), GL_EINVALID, "group_by", NULL);
}

static void
test_body_that_is_not_a_map_is_a_bad_request(void **state)
{
    msgpack_pack_array(&pk, 1);
    str("unit");
    assert_refused(parse(), GL_EBAD_REQUEST, NULL, "map");
}

static void
test_key_that_is_not_a_string_is_a_bad_request(void **state)
{
    msgpack_pack_map(&pk, 2);
    key("group_by");
    str("unit");
    msgpack_pack_int(&pk, 7);
    msgpack_pack_int(&pk, 8);
    assert_refused(parse(), GL_EBAD_REQUEST, NULL, "strings");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_group_by_alone_means_every_case),
        T(test_every_group_name_parses_to_its_value_and_back),
        T(test_from_and_to_are_kept),
        T(test_from_or_to_alone_leaves_the_other_end_open),
        T(test_a_range_of_one_millisecond_is_accepted),
        T(test_nil_from_and_to_are_absent),
        T(test_rid_of_any_scalar_is_allowed),
        T(test_missing_group_by_is_refused_naming_the_choices),
        T(test_nil_group_by_is_missing),
        T(test_unknown_group_by_is_refused_listing_the_names),
        T(test_group_by_that_is_not_a_string_is_refused),
        T(test_from_that_is_not_an_integer_time_is_refused),
        T(test_negative_or_huge_times_are_refused),
        T(test_to_not_later_than_from_is_refused),
        T(test_unknown_field_is_refused_by_name),
        T(test_field_given_twice_is_refused),
        T(test_the_first_fault_in_field_order_is_reported_whatever_the_packing_order),
        T(test_body_that_is_not_a_map_is_a_bad_request),
        T(test_key_that_is_not_a_string_is_a_bad_request),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
