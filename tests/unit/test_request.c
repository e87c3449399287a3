/*
 * request: every rule of case.create, case.get and case.list, the create fingerprint,
 * and finding rid in raw bytes.
 *
 * Bodies are packed by msgpack-c from a small format language (see pack_fmt), passed
 * through mp_guard and msgpack_unpack_next as the daemon does, then parsed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mp_guard.h"
#include "request.h"

#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS INT64_C(1764000000000)

#include "mp_build.h"

/* ---- bodies ----------------------------------------------------------------------- */

static msgpack_sbuffer  sb;
static msgpack_unpacked unpacked;
static gl_error         err;

static int
setup(void **state)
{
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&unpacked);
    memset(&err, 0, sizeof err);
    return 0;
}

static int
teardown(void **state)
{
    msgpack_unpacked_destroy(&unpacked);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

/* Guards and unpacks what is in sb, as the daemon does; returns the body. */
static const msgpack_object *
unpack_sb(void)
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
    return &unpacked.data;
}

static const msgpack_object *
vbody(const char *fmt, va_list ap)
{
    msgpack_packer pk;
    fmt_state      st;

    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    st.fmt = fmt;
    va_copy(st.ap, ap);
    pack_value(&pk, &st);
    va_end(st.ap);
    return unpack_sb();
}

/* A body packed from fmt alone. */
static const msgpack_object *
body(const char *fmt, ...)
{
    const msgpack_object *o;
    va_list               ap;

    va_start(ap, fmt);
    o = vbody(fmt, ap);
    va_end(ap);
    return o;
}

/* The standard valid case.create, field by field; a test leaves some out and adds
 * its own entries. */
static const char *const std_keys[] = {
    "request_id", "channel", "category", "urgency", "title", "description", "location",
    "reporter", "attachments", "reported_at", "resolved_on_spot"
};
#define STD_N (sizeof std_keys / sizeof std_keys[0])

static void
pack_std(msgpack_packer *pk, size_t i)
{
    switch (i) {
    case 0: msgpack_pack_str_with_body(pk, "req-1", 5); break;
    case 1: msgpack_pack_str_with_body(pk, "window", 6); break;
    case 2: msgpack_pack_str_with_body(pk, "road.pothole", 12); break;
    case 3: msgpack_pack_str_with_body(pk, "urgent", 6); break;
    case 4: msgpack_pack_str_with_body(pk, "Pothole", 7); break;
    case 5: msgpack_pack_str_with_body(pk, "A deep pothole in the bike lane.", 32); break;
    case 6:
        msgpack_pack_map(pk, 7);
        msgpack_pack_str_with_body(pk, "district", 8);
        msgpack_pack_str_with_body(pk, "d01", 3);
        msgpack_pack_str_with_body(pk, "street", 6);
        msgpack_pack_str_with_body(pk, "s01", 3);
        msgpack_pack_str_with_body(pk, "community", 9);
        msgpack_pack_str_with_body(pk, "c01", 3);
        msgpack_pack_str_with_body(pk, "grid", 4);
        msgpack_pack_str_with_body(pk, "g01", 3);
        msgpack_pack_str_with_body(pk, "address", 7);
        msgpack_pack_str_with_body(pk, "12 Long Road", 12);
        msgpack_pack_str_with_body(pk, "lat", 3);
        msgpack_pack_double(pk, 31.25);
        msgpack_pack_str_with_body(pk, "lon", 3);
        msgpack_pack_double(pk, 121.5);
        break;
    case 7:
        msgpack_pack_map(pk, 2);
        msgpack_pack_str_with_body(pk, "name", 4);
        msgpack_pack_str_with_body(pk, "Li Lei", 6);
        msgpack_pack_str_with_body(pk, "phone", 5);
        msgpack_pack_str_with_body(pk, "+86 (138) 0013-8000", 19);
        break;
    case 8:
        msgpack_pack_array(pk, 2);
        msgpack_pack_str_with_body(pk, "https://img.example/a.jpg", 25);
        msgpack_pack_str_with_body(pk, "http://img.example/b.jpg", 24);
        break;
    case 9: msgpack_pack_int64(pk, NOW_MS - 60000); break;
    case 10: msgpack_pack_true(pk); break;
    default: fail();
    }
}

/* Whether std key i is named in omit, a space-separated list of keys; "optional"
 * stands for every optional field, leaving the minimal valid body. */
static bool
omitted(const char *omit, size_t i)
{
    const char *k = std_keys[i];
    size_t      n = strlen(k);
    const char *p = omit;

    if (strcmp(omit, "optional") == 0) {
        return i == 3 || i == 4 || i == 7 || i == 8 || i == 9 || i == 10;
    }
    while ((p = strstr(p, k)) != NULL) {
        if ((p == omit || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) {
            return true;
        }
        p += n;
    }
    return false;
}

/* The standard create without the keys in omit, with the key/value pairs of extra
 * (a format without the enclosing braces) added at the end. */
static const msgpack_object *
create_body(const char *omit, const char *extra, ...)
{
    msgpack_packer pk;
    fmt_state      st;
    va_list        ap;
    uint32_t       n = 0;
    size_t         i;

    for (i = 0; i < STD_N; i++) {
        n += omitted(omit, i) ? 0 : 1;
    }
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n + fmt_count(extra) / 2);
    for (i = 0; i < STD_N; i++) {
        if (!omitted(omit, i)) {
            msgpack_pack_str_with_body(&pk, std_keys[i], strlen(std_keys[i]));
            pack_std(&pk, i);
        }
    }
    va_start(ap, extra);
    st.fmt = extra;
    va_copy(st.ap, ap);
    pack_items(&pk, &st, '\0');
    va_end(st.ap);
    va_end(ap);
    return unpack_sb();
}

static request_create cr;

/* Parses the standard create changed by omit and extra into cr. */
#define CREATE(omit, ...) request_parse_create(create_body(omit, __VA_ARGS__), NOW_MS, &cr, &err)

static void
assert_invalid(int rc, const char *field, const char *message_part)
{
    if (rc != GL_EINVALID || strcmp(err.field, field) != 0
        || (message_part != NULL && strstr(err.message, message_part) == NULL)) {
        fail_msg("expected invalid %s (\"%s\"), got rc %d field \"%s\" message \"%s\"", field,
                 message_part != NULL ? message_part : "", rc, err.field, err.message);
    }
    assert_int_equal(err.code, GL_EINVALID);
}

static char *
repeat(char c, size_t n)
{
    static char buf[70000];

    assert_true(n < sizeof buf);
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- case.create: the whole body ------------------------------------------------- */

static void
test_create_full_body_fills_every_field(void **state)
{
    assert_int_equal(CREATE("", ""), 0);
    assert_true(gl_str_eq(cr.request_id, "req-1"));
    assert_int_equal(cr.channel, CHANNEL_WINDOW);
    assert_true(gl_str_eq(cr.category, "road.pothole"));
    assert_int_equal(cr.urgency, URGENCY_URGENT);
    assert_true(gl_str_eq(cr.title, "Pothole"));
    assert_true(gl_str_eq(cr.description, "A deep pothole in the bike lane."));
    assert_true(gl_str_eq(cr.location.district, "d01"));
    assert_true(gl_str_eq(cr.location.street, "s01"));
    assert_true(gl_str_eq(cr.location.community, "c01"));
    assert_true(gl_str_eq(cr.location.grid, "g01"));
    assert_true(gl_str_eq(cr.location.address, "12 Long Road"));
    assert_true(cr.location.has_coords);
    assert_true(cr.location.lat == 31.25);
    assert_true(cr.location.lon == 121.5);
    assert_true(gl_str_eq(cr.reporter_name, "Li Lei"));
    assert_true(gl_str_eq(cr.reporter_phone, "+86 (138) 0013-8000"));
    assert_int_equal(cr.n_attachments, 2);
    assert_true(gl_str_eq(cr.attachments[0], "https://img.example/a.jpg"));
    assert_true(gl_str_eq(cr.attachments[1], "http://img.example/b.jpg"));
    assert_true(cr.reported_at == NOW_MS - 60000);
    assert_true(cr.resolved_on_spot);
}

static void
test_create_strings_borrow_from_the_body_buffer(void **state)
{
    assert_int_equal(CREATE("", ""), 0);
    assert_true(cr.description.p >= sb.data && cr.description.p < sb.data + sb.size);
    assert_true(cr.location.district.p >= sb.data && cr.location.district.p < sb.data + sb.size);
}

static void
test_create_minimal_body_takes_defaults(void **state)
{
    assert_int_equal(CREATE("optional", ""), 0);
    assert_int_equal(cr.urgency, URGENCY_NORMAL);
    assert_int_equal(cr.title.n, 0);
    assert_int_equal(cr.reporter_name.n, 0);
    assert_int_equal(cr.reporter_phone.n, 0);
    assert_int_equal(cr.n_attachments, 0);
    assert_true(cr.reported_at == 0);
    assert_false(cr.resolved_on_spot);
}

static void
test_create_nil_optional_fields_count_as_absent(void **state)
{
    assert_int_equal(CREATE("optional", "s:n, s:n, s:n, s:n, s:n, s:n", "urgency", "title",
                            "reporter", "attachments", "reported_at", "resolved_on_spot"),
                     0);
    assert_int_equal(cr.urgency, URGENCY_NORMAL);
    assert_int_equal(cr.n_attachments, 0);
    assert_true(cr.reported_at == 0);
}

static void
test_create_nil_required_field_is_missing(void **state)
{
    assert_invalid(CREATE("description", "s:n", "description"), "description", "required");
}

static void
test_create_body_that_is_an_array_is_bad_request(void **state)
{
    int rc = request_parse_create(body("[s, s]", "request_id", "x"), NOW_MS, &cr, &err);

    assert_int_equal(rc, GL_EBAD_REQUEST);
    assert_int_equal(err.code, GL_EBAD_REQUEST);
    assert_string_equal(err.message, "body must be a MessagePack map");
}

static void
test_create_body_that_is_a_string_is_bad_request(void **state)
{
    assert_int_equal(request_parse_create(body("s", "hello"), NOW_MS, &cr, &err),
                     GL_EBAD_REQUEST);
}

static void
test_create_non_string_key_is_bad_request(void **state)
{
    assert_int_equal(CREATE("", "i:i", 1, 2), GL_EBAD_REQUEST);
}

static void
test_create_non_string_key_in_location_is_bad_request(void **state)
{
    assert_int_equal(CREATE("location", "s:{s:s, i:s}", "location", "district", "d01", 7, "x"),
                     GL_EBAD_REQUEST);
}

static void
test_create_unknown_field_is_named(void **state)
{
    assert_invalid(CREATE("", "s:i", "priority", 1), "priority", "unknown field");
}

static void
test_create_unknown_field_name_is_cut_to_fit(void **state)
{
    char *name = repeat('k', 300);

    assert_invalid(CREATE("", "s:i", name, 1), repeat('k', sizeof err.field - 1), NULL);
}

static void
test_create_unknown_field_with_invalid_utf8_is_reported_as_valid_text(void **state)
{
    int rc = CREATE("", "S:i", "a\xff\xc3" "b\x01\xe4\xb8\xad", (size_t)8, 1);

    assert_int_equal(rc, GL_EINVALID);
    assert_string_equal(err.field, "a??b?\xe4\xb8\xad");
}

static void
test_create_unknown_field_is_cut_on_a_character_boundary(void **state)
{
    /* 63 bytes of field: 62 'a' then a three-byte character does not fit. */
    char name[80];
    int  rc;

    memset(name, 'a', 62);
    memcpy(name + 62, "\xe4\xb8\xad", 4);
    rc = CREATE("", "s:i", name, 1);
    assert_int_equal(rc, GL_EINVALID);
    assert_int_equal(strlen(err.field), 62);
}

static void
test_create_duplicate_key_is_invalid(void **state)
{
    assert_invalid(CREATE("", "s:s", "title", "Again"), "title", "more than once");
}

static void
test_create_duplicate_key_in_location_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                          "district", "d02"),
                   "location.district", "more than once");
}

static void
test_create_rid_of_any_kind_is_ignored(void **state)
{
    assert_int_equal(CREATE("", "s:i", "rid", 7), 0);
    assert_int_equal(CREATE("", "s:{s:[i]}", "rid", "k", 1), 0);
}

static void
test_create_error_leaves_message_for_a_person(void **state)
{
    assert_int_equal(CREATE("description", ""), GL_EINVALID);
    assert_string_equal(err.field, "description");
    assert_string_equal(err.message, "description is required");
    assert_string_equal(gl_error_name(err.code), "invalid_argument");
}

/* ---- case.create: request_id ----------------------------------------------------- */

static void
test_create_request_id_is_required(void **state)
{
    assert_invalid(CREATE("request_id", ""), "request_id", "required");
}

static void
test_create_empty_request_id_is_invalid(void **state)
{
    assert_invalid(CREATE("request_id", "s:s", "request_id", ""), "request_id", "empty");
}

static void
test_create_request_id_of_128_bytes_passes_and_129_does_not(void **state)
{
    assert_int_equal(CREATE("request_id", "s:s", "request_id", repeat('r', 128)), 0);
    assert_int_equal(cr.request_id.n, 128);
    assert_invalid(CREATE("request_id", "s:s", "request_id", repeat('r', 129)), "request_id",
                   "is 129 bytes; at most 128");
}

static void
test_create_request_id_that_is_a_number_is_invalid(void **state)
{
    assert_invalid(CREATE("request_id", "s:i", "request_id", 5), "request_id", "string");
}

static void
test_create_request_id_of_bin_is_invalid(void **state)
{
    assert_invalid(CREATE("request_id", "s:x", "request_id", "abc", (size_t)3), "request_id",
                   "string");
}

static void
test_create_request_id_with_invalid_utf8_is_invalid(void **state)
{
    assert_invalid(CREATE("request_id", "s:S", "request_id", "ab\xc0\xaf", (size_t)4),
                   "request_id", "UTF-8");
}

static void
test_create_request_id_with_nul_is_invalid(void **state)
{
    assert_invalid(CREATE("request_id", "s:S", "request_id", "ab\0c", (size_t)4), "request_id",
                   "UTF-8");
}

/* ---- case.create: channel, category, urgency ------------------------------------- */

static void
test_create_without_channel_or_category_is_valid(void **state)
{
    /* protocol.md marks only request_id, description and location.district required */
    assert_int_equal(CREATE("channel", ""), 0);
    assert_int_equal(cr.channel, CHANNEL_NONE);
    assert_int_equal(CREATE("category", ""), 0);
    assert_int_equal(cr.category.n, 0);
}

static void
test_create_unknown_channel_lists_the_valid_ones(void **state)
{
    assert_invalid(CREATE("channel", "s:s", "channel", "fax"), "channel",
                   "must be one of hotline, window, grid, web, app, transfer");
}

static void
test_create_channel_is_case_sensitive(void **state)
{
    assert_invalid(CREATE("channel", "s:s", "channel", "Hotline"), "channel", "one of");
}

static void
test_create_channel_that_is_a_number_is_invalid(void **state)
{
    assert_invalid(CREATE("channel", "s:i", "channel", 0), "channel", "one of");
}

static void
test_create_every_channel_is_accepted(void **state)
{
    static const char *const names[] = { "hotline", "window", "grid", "web", "app",
                                         "transfer" };
    size_t                   i;

    for (i = 0; i < 6; i++) {
        assert_int_equal(CREATE("channel", "s:s", "channel", names[i]), 0);
        assert_int_equal(cr.channel, (case_channel)i);
    }
}

static void
test_create_category_is_not_empty(void **state)
{
    assert_invalid(CREATE("category", "s:s", "category", ""), "category", "empty");
}

static void
test_create_category_over_64_bytes_is_invalid(void **state)
{
    assert_int_equal(CREATE("category", "s:s", "category", repeat('c', 64)), 0);
    assert_invalid(CREATE("category", "s:s", "category", repeat('c', 65)), "category",
                   "is 65 bytes; at most 64");
}

static void
test_create_unknown_urgency_is_invalid(void **state)
{
    assert_invalid(CREATE("urgency", "s:s", "urgency", "asap"), "urgency",
                   "must be one of emergency, urgent, normal");
}

static void
test_create_emergency_urgency_is_kept(void **state)
{
    assert_int_equal(CREATE("urgency", "s:s", "urgency", "emergency"), 0);
    assert_int_equal(cr.urgency, URGENCY_EMERGENCY);
}

/* ---- case.create: title, description --------------------------------------------- */

static void
test_create_title_of_300_bytes_says_how_long_and_the_limit(void **state)
{
    assert_invalid(CREATE("title", "s:s", "title", repeat('t', 300)), "title",
                   "is 300 bytes; at most 200");
}

static void
test_create_title_of_200_bytes_and_empty_title_pass(void **state)
{
    assert_int_equal(CREATE("title", "s:s", "title", repeat('t', 200)), 0);
    assert_int_equal(cr.title.n, 200);
    assert_int_equal(CREATE("title", "s:s", "title", ""), 0);
    assert_int_equal(cr.title.n, 0);
}

static void
test_create_title_that_is_an_array_is_invalid(void **state)
{
    assert_invalid(CREATE("title", "s:[s]", "title", "x"), "title", "string");
}

static void
test_create_description_is_required_and_not_empty(void **state)
{
    assert_invalid(CREATE("description", ""), "description", "required");
    assert_invalid(CREATE("description", "s:s", "description", ""), "description", "empty");
}

static void
test_create_description_over_8000_bytes_is_invalid(void **state)
{
    assert_int_equal(CREATE("description", "s:s", "description", repeat('d', 8000)), 0);
    assert_invalid(CREATE("description", "s:s", "description", repeat('d', 8001)),
                   "description", "is 8001 bytes; at most 8000");
}

static void
test_create_description_with_a_surrogate_is_invalid(void **state)
{
    assert_invalid(CREATE("description", "s:s", "description", "x\xed\xa0\x80y"),
                   "description", "UTF-8");
}

static void
test_create_description_in_chinese_passes(void **state)
{
    assert_int_equal(CREATE("description", "s:s", "description",
                            "\xe8\xb7\xaf\xe9\x9d\xa2\xe5\x9d\x91\xe6\xb4\xbc"),
                     0);
}

/* ---- case.create: location ------------------------------------------------------- */

static void
test_create_location_is_required(void **state)
{
    assert_invalid(CREATE("location", ""), "location", "required");
}

static void
test_create_location_that_is_a_string_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:s", "location", "d01"), "location", "map");
}

static void
test_create_location_without_district_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s}", "location", "street", "s01"),
                   "location.district", "required");
}

static void
test_create_empty_district_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s}", "location", "district", ""),
                   "location.district", "empty");
}

static void
test_create_district_over_64_bytes_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s}", "location", "district", repeat('d', 65)),
                   "location.district", "at most 64");
}

static void
test_create_location_with_only_district_has_no_coords(void **state)
{
    assert_int_equal(CREATE("location", "s:{s:s}", "location", "district", "d01"), 0);
    assert_false(cr.location.has_coords);
    assert_int_equal(cr.location.street.n, 0);
    assert_int_equal(cr.location.address.n, 0);
}

static void
test_create_unknown_location_field_is_named_with_its_path(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01", "foo",
                          "x"),
                   "location.foo", "unknown field");
}

static void
test_create_empty_street_community_or_grid_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:s}", "location", "district", "d", "street",
                          ""),
                   "location.street", "empty");
    assert_invalid(CREATE("location", "s:{s:s, s:s}", "location", "district", "d",
                          "community", ""),
                   "location.community", "empty");
    assert_invalid(CREATE("location", "s:{s:s, s:i}", "location", "district", "d", "grid", 3),
                   "location.grid", "string");
}

static void
test_create_street_with_invalid_utf8_is_named(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:S}", "location", "district", "d", "street",
                          "\xe4\xb8", (size_t)2),
                   "location.street", "UTF-8");
}

static void
test_create_address_over_500_bytes_is_invalid(void **state)
{
    assert_int_equal(CREATE("location", "s:{s:s, s:s}", "location", "district", "d",
                            "address", repeat('a', 500)),
                     0);
    assert_invalid(CREATE("location", "s:{s:s, s:s}", "location", "district", "d", "address",
                          repeat('a', 501)),
                   "location.address", "at most 500");
}

static void
test_create_lat_without_lon_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d}", "location", "district", "d", "lat", 1.0),
                   "location.lon", "required");
}

static void
test_create_lon_without_lat_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d}", "location", "district", "d", "lon", 1.0),
                   "location.lat", "required");
}

static void
test_create_lat_with_nil_lon_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d, s:n}", "location", "district", "d", "lat",
                          1.0, "lon"),
                   "location.lon", "required");
}

static void
test_create_lat_out_of_range_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d", "lat",
                          90.0001, "lon", 0.0),
                   "location.lat", "-90 to 90");
    assert_invalid(CREATE("location", "s:{s:s, s:i, s:d}", "location", "district", "d", "lat",
                          -91, "lon", 0.0),
                   "location.lat", "-90 to 90");
}

static void
test_create_lon_out_of_range_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d", "lat",
                          0.0, "lon", -180.5),
                   "location.lon", "-180 to 180");
}

static void
test_create_coords_on_the_edges_pass(void **state)
{
    assert_int_equal(CREATE("location", "s:{s:s, s:i, s:i}", "location", "district", "d", "lat",
                            -90, "lon", 180),
                     0);
    assert_true(cr.location.has_coords);
    assert_true(cr.location.lat == -90.0);
    assert_true(cr.location.lon == 180.0);
}

static void
test_create_integer_and_float32_coords_pass(void **state)
{
    assert_int_equal(CREATE("location", "s:{s:s, s:i, s:f}", "location", "district", "d", "lat",
                            31, "lon", 121.5),
                     0);
    assert_true(cr.location.lat == 31.0);
    assert_true(cr.location.lon == 121.5);
}

static void
test_create_nan_lat_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d", "lat",
                          (double)NAN, "lon", 0.0),
                   "location.lat", NULL);
}

static void
test_create_lat_as_string_is_invalid(void **state)
{
    assert_invalid(CREATE("location", "s:{s:s, s:s, s:d}", "location", "district", "d", "lat",
                          "31.2", "lon", 0.0),
                   "location.lat", "number");
}

/* ---- case.create: reporter ------------------------------------------------------- */

static void
test_create_reporter_that_is_not_a_map_is_invalid(void **state)
{
    assert_invalid(CREATE("reporter", "s:s", "reporter", "Li"), "reporter", "map");
}

static void
test_create_unknown_reporter_field_is_named_with_its_path(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "email", "a@b"), "reporter.email",
                   "unknown field");
}

static void
test_create_empty_reporter_map_passes(void **state)
{
    assert_int_equal(CREATE("reporter", "s:{}", "reporter"), 0);
    assert_int_equal(cr.reporter_name.n, 0);
    assert_int_equal(cr.reporter_phone.n, 0);
}

static void
test_create_reporter_name_over_100_bytes_is_invalid(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "name", repeat('n', 101)),
                   "reporter.name", "at most 100");
}

static void
test_create_reporter_name_with_invalid_utf8_is_named(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:S}", "reporter", "name", "Li\xc3\x28", (size_t)4),
                   "reporter.name", "UTF-8");
}

static void
test_create_phone_with_letters_is_invalid(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "phone", "138-CALL-NOW"),
                   "reporter.phone", "digits");
}

static void
test_create_phone_with_fewer_than_3_digits_is_invalid(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "phone", "+(1) 2"),
                   "reporter.phone", "at least 3 digits");
    assert_int_equal(CREATE("reporter", "s:{s:s}", "reporter", "phone", "110"), 0);
}

static void
test_create_empty_phone_is_invalid(void **state)
{
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "phone", ""), "reporter.phone",
                   NULL);
}

static void
test_create_phone_over_32_bytes_is_invalid(void **state)
{
    assert_int_equal(CREATE("reporter", "s:{s:s}", "reporter", "phone", repeat('1', 32)), 0);
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "phone", repeat('1', 33)),
                   "reporter.phone", "at most 32");
}

static void
test_create_phone_with_full_width_digits_is_invalid(void **state)
{
    /* U+FF11 FULLWIDTH DIGIT ONE, three times: valid UTF-8 but not digits. */
    assert_invalid(CREATE("reporter", "s:{s:s}", "reporter", "phone",
                          "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"),
                   "reporter.phone", "digits");
}

/* ---- case.create: attachments ---------------------------------------------------- */

static void
test_create_attachments_that_are_not_an_array_are_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:s", "attachments", "https://a/b"), "attachments",
                   "array");
}

static void
test_create_16_attachments_pass_and_17_do_not(void **state)
{
    const char *u = "https://a/b";

    assert_int_equal(CREATE("attachments", "s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]",
                            "attachments", u, u, u, u, u, u, u, u, u, u, u, u, u, u, u, u),
                     0);
    assert_int_equal(cr.n_attachments, 16);
    assert_invalid(CREATE("attachments", "s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]",
                          "attachments", u, u, u, u, u, u, u, u, u, u, u, u, u, u, u, u, u),
                   "attachments", "has 17 entries; at most 16");
}

static void
test_create_attachment_that_is_not_http_is_named_by_index(void **state)
{
    assert_invalid(CREATE("attachments", "s:[s, s, s, s]", "attachments", "https://a/1",
                          "http://a/2", "https://a/3", "ftp://a/4"),
                   "attachments[3]", "http:// or https://");
}

static void
test_create_attachment_with_uppercase_scheme_is_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:[s]", "attachments", "HTTPS://a/1"),
                   "attachments[0]", "https://");
}

static void
test_create_attachment_with_one_slash_is_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:[s]", "attachments", "https:/a/1"),
                   "attachments[0]", "https://");
    assert_invalid(CREATE("attachments", "s:[s]", "attachments", "http:/a/1"),
                   "attachments[0]", "https://");
}

static void
test_create_attachment_that_is_a_number_is_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:[s, i]", "attachments", "https://a/1", 5),
                   "attachments[1]", "string");
}

static void
test_create_empty_attachment_is_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:[s]", "attachments", ""), "attachments[0]",
                   "empty");
}

static void
test_create_attachment_over_1024_bytes_is_invalid(void **state)
{
    char url[1100];

    memcpy(url, "https://", 8);
    memset(url + 8, 'u', 1017);
    url[1025] = '\0';
    assert_invalid(CREATE("attachments", "s:[s]", "attachments", url), "attachments[0]",
                   "is 1025 bytes; at most 1024");
    url[1024] = '\0';
    assert_int_equal(CREATE("attachments", "s:[s]", "attachments", url), 0);
}

static void
test_create_attachment_with_invalid_utf8_is_invalid(void **state)
{
    assert_invalid(CREATE("attachments", "s:[S]", "attachments", "https://a/\xff", (size_t)11),
                   "attachments[0]", "UTF-8");
}

/* ---- case.create: reported_at, resolved_on_spot ---------------------------------- */

static void
test_create_negative_reported_at_is_invalid(void **state)
{
    assert_invalid(CREATE("reported_at", "s:i", "reported_at", -1), "reported_at", NULL);
}

static void
test_create_reported_at_more_than_5_minutes_ahead_is_invalid(void **state)
{
    assert_int_equal(CREATE("reported_at", "s:I", "reported_at", NOW_MS + REQUEST_MAX_FUTURE_MS),
                     0);
    assert_true(cr.reported_at == NOW_MS + REQUEST_MAX_FUTURE_MS);
    assert_invalid(CREATE("reported_at", "s:I", "reported_at",
                          NOW_MS + REQUEST_MAX_FUTURE_MS + 1),
                   "reported_at", NULL);
}

static void
test_create_reported_at_beyond_int64_is_invalid(void **state)
{
    assert_invalid(CREATE("reported_at", "s:u", "reported_at", UINT64_MAX), "reported_at",
                   NULL);
}

static void
test_create_reported_at_as_float_or_string_is_invalid(void **state)
{
    assert_invalid(CREATE("reported_at", "s:d", "reported_at", 1.0), "reported_at", "integer");
    assert_invalid(CREATE("reported_at", "s:s", "reported_at", "2026-11-25"), "reported_at",
                   "integer");
}

static void
test_create_reported_at_is_bounded_when_now_is_near_the_end_of_time(void **state)
{
    int rc = request_parse_create(create_body("reported_at", "s:I", "reported_at", INT64_MAX),
                                  INT64_MAX - 10, &cr, &err);

    assert_int_equal(rc, 0);
}

static void
test_create_resolved_on_spot_must_be_a_bool(void **state)
{
    assert_invalid(CREATE("resolved_on_spot", "s:i", "resolved_on_spot", 1), "resolved_on_spot",
                   "true or false");
}

/* ---- fingerprint ----------------------------------------------------------------- */

static uint64_t
fp_of(int rc)
{
    assert_int_equal(rc, 0);
    return request_create_fingerprint(&cr);
}

static void
test_fingerprint_is_the_same_for_the_same_request(void **state)
{
    uint64_t a = fp_of(CREATE("", ""));
    uint64_t b = fp_of(CREATE("", ""));

    assert_true(a == b);
}

static void
test_fingerprint_ignores_rid_and_key_order(void **state)
{
    uint64_t a = fp_of(CREATE("", ""));
    uint64_t b = fp_of(CREATE("title", "s:i, s:s", "rid", 99, "title", "Pothole"));

    assert_true(a == b);
}

static void
test_fingerprint_changes_with_every_field(void **state)
{
    uint64_t    seen[32];
    size_t      n = 0;
    size_t      i, j;

    seen[n++] = fp_of(CREATE("", ""));
    seen[n++] = fp_of(CREATE("request_id", "s:s", "request_id", "req-2"));
    seen[n++] = fp_of(CREATE("channel", "s:s", "channel", "hotline"));
    seen[n++] = fp_of(CREATE("category", "s:s", "category", "road.other"));
    seen[n++] = fp_of(CREATE("urgency", "s:s", "urgency", "normal"));
    seen[n++] = fp_of(CREATE("title", "s:s", "title", "Pothole!"));
    seen[n++] = fp_of(CREATE("description", "s:s", "description", "Another."));
    seen[n++] = fp_of(CREATE("location", "s:{s:s}", "location", "district", "d01"));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                             "street", "s01"));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                             "community", "s01"));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                             "grid", "s01"));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                             "address", "s01"));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d01",
                             "lat", 0.0, "lon", 0.0));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d01",
                             "lat", 0.0, "lon", 1.0));
    seen[n++] = fp_of(CREATE("location", "s:{s:s, s:d, s:d}", "location", "district", "d01",
                             "lat", 1.0, "lon", 0.0));
    seen[n++] = fp_of(CREATE("reporter", "s:{s:s}", "reporter", "name", "Li Lei"));
    seen[n++] = fp_of(CREATE("reporter", "s:{s:s}", "reporter", "phone", "110"));
    seen[n++] = fp_of(CREATE("attachments", "s:[s]", "attachments", "https://img.example/a.jpg"));
    seen[n++] = fp_of(CREATE("attachments", "s:[]", "attachments"));
    seen[n++] = fp_of(CREATE("reported_at", "s:I", "reported_at", NOW_MS));
    seen[n++] = fp_of(CREATE("resolved_on_spot", "s:b", "resolved_on_spot", 0));
    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            if (seen[i] == seen[j]) {
                fail_msg("variants %zu and %zu have the same fingerprint", i, j);
            }
        }
    }
}

static void
test_fingerprint_does_not_let_bytes_move_between_fields(void **state)
{
    uint64_t a = fp_of(CREATE("title description", "s:s, s:s", "title", "ab", "description",
                              "c"));
    uint64_t b = fp_of(CREATE("title description", "s:s, s:s", "title", "a", "description",
                              "bc"));
    uint64_t c = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                              "street", "x"));
    uint64_t d = fp_of(CREATE("location", "s:{s:s, s:s}", "location", "district", "d01",
                              "community", "x"));

    assert_true(a != b);
    assert_true(c != d);
}

static void
test_fingerprint_tells_absent_coords_from_zero_coords(void **state)
{
    request_create r;
    uint64_t       a, b;

    memset(&r, 0, sizeof r);
    a = request_create_fingerprint(&r);
    r.location.has_coords = true;
    b = request_create_fingerprint(&r);
    assert_true(a != b);
}

/*
 * Strings built by hand here may hold any bytes: the fingerprint is a function of the
 * struct, and a length prefix is what keeps two adjacent fields from trading bytes.
 * With a = "" and b = eight zero bytes against a = the eight bytes of the number 8 and
 * b = "", a stream without prefixes would be the same.
 */
static void
test_fingerprint_keeps_every_pair_of_adjacent_strings_apart(void **state)
{
    static const char zeros[8] = { 0 };
    static const char eight[8] = { 8, 0, 0, 0, 0, 0, 0, 0 };
    request_create    r;
    gl_str           *pairs[][2] = {
        { &r.title, &r.description },
        { &r.description, &r.location.district },
        { &r.location.district, &r.location.street },
        { &r.location.street, &r.location.community },
        { &r.location.community, &r.location.grid },
        { &r.location.grid, &r.location.address },
        { &r.reporter_name, &r.reporter_phone },
        { &r.attachments[0], &r.attachments[1] },
    };
    size_t            i;

    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint64_t a, b;

        memset(&r, 0, sizeof r);
        r.n_attachments = 2;
        *pairs[i][0] = gl_str_of(zeros, 0);
        *pairs[i][1] = gl_str_of(zeros, 8);
        a = request_create_fingerprint(&r);
        *pairs[i][0] = gl_str_of(eight, 8);
        *pairs[i][1] = gl_str_of(zeros, 0);
        b = request_create_fingerprint(&r);
        if (a == b) {
            fail_msg("pair %zu: bytes moved between fields without changing the fingerprint",
                     i);
        }
    }
}

/*
 * Without a presence marker, coords whose bits read as the length and bytes of the
 * reporter's name would hash like a request without coords that has such a name.
 */
static void
test_fingerprint_coords_cannot_pose_as_the_reporter_name(void **state)
{
    static const unsigned char name[16] = { 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x60, 0x40 };
    uint64_t                   lat_bits = 16;
    uint64_t                   lon_bits = 0x4060414141414141ULL;   /* about 130.03 */
    request_create             a, b;

    memset(&a, 0, sizeof a);
    a.reporter_name = gl_str_of((const char *)name, sizeof name);
    memset(&b, 0, sizeof b);
    b.location.has_coords = true;
    memcpy(&b.location.lat, &lat_bits, sizeof lat_bits);
    memcpy(&b.location.lon, &lon_bits, sizeof lon_bits);
    assert_true(request_create_fingerprint(&a) != request_create_fingerprint(&b));
}

static void
test_fingerprint_tells_attachment_boundaries_apart(void **state)
{
    uint64_t a = fp_of(CREATE("attachments", "s:[s, s]", "attachments", "http://ab",
                              "http://c"));
    uint64_t b = fp_of(CREATE("attachments", "s:[s, s]", "attachments", "http://a",
                              "http://bc"));

    assert_true(a != b);
}

/* ---- case.get -------------------------------------------------------------------- */

static request_get gr;

static void
test_get_by_id(void **state)
{
    assert_int_equal(request_parse_get(body("{s:i}", "id", 42), &gr, &err), 0);
    assert_true(gr.id == 42);
    assert_int_equal(gr.code.n, 0);
    assert_false(gr.history);
}

static void
test_get_by_code_with_history(void **state)
{
    assert_int_equal(request_parse_get(body("{s:s, s:b, s:s}", "code", "GL-20261125-000123",
                                            "history", 1, "rid", "r1"),
                                       &gr, &err),
                     0);
    assert_true(gr.id == 0);
    assert_true(gl_str_eq(gr.code, "GL-20261125-000123"));
    assert_true(gr.history);
}

static void
test_get_with_neither_id_nor_code_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{}"), &gr, &err), "id",
                   "exactly one of id and code");
}

static void
test_get_with_both_id_and_code_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:i, s:s}", "id", 1, "code", "GL-1"), &gr, &err),
                   "id", "exactly one of id and code");
}

static void
test_get_with_nil_id_and_a_code_passes(void **state)
{
    assert_int_equal(request_parse_get(body("{s:n, s:s}", "id", "code", "GL-1"), &gr, &err), 0);
}

static void
test_get_id_zero_or_negative_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:i}", "id", 0), &gr, &err), "id", "positive");
    assert_invalid(request_parse_get(body("{s:i}", "id", -3), &gr, &err), "id", "positive");
}

static void
test_get_id_as_string_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:s}", "id", "42"), &gr, &err), "id", "positive");
}

static void
test_get_largest_id_passes(void **state)
{
    assert_int_equal(request_parse_get(body("{s:u}", "id", UINT64_MAX), &gr, &err), 0);
    assert_true(gr.id == UINT64_MAX);
}

static void
test_get_empty_or_long_code_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:s}", "code", ""), &gr, &err), "code", "empty");
    assert_invalid(request_parse_get(body("{s:s}", "code", repeat('c', 65)), &gr, &err), "code",
                   "at most 64");
}

static void
test_get_history_must_be_a_bool(void **state)
{
    assert_invalid(request_parse_get(body("{s:i, s:s}", "id", 1, "history", "yes"), &gr, &err),
                   "history", "true or false");
}

static void
test_get_unknown_field_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:i, s:b}", "id", 1, "events", 1), &gr, &err),
                   "events", "unknown field");
}

static void
test_get_duplicate_id_is_invalid(void **state)
{
    assert_invalid(request_parse_get(body("{s:i, s:i}", "id", 1, "id", 2), &gr, &err), "id",
                   "more than once");
}

static void
test_get_body_that_is_an_array_is_bad_request(void **state)
{
    assert_int_equal(request_parse_get(body("[i]", 1), &gr, &err), GL_EBAD_REQUEST);
}

/* ---- case.list ------------------------------------------------------------------- */

static request_list lr;

static void
test_list_empty_body_takes_defaults(void **state)
{
    assert_int_equal(request_parse_list(body("{}"), &lr, &err), 0);
    assert_int_equal(lr.filter.state, -1);
    assert_int_equal(lr.filter.channel, -1);
    assert_int_equal(lr.filter.overdue, -1);
    assert_int_equal(lr.filter.supervised, -1);
    assert_true(lr.filter.created_from == INT64_MIN);
    assert_true(lr.filter.created_to == INT64_MAX);
    assert_int_equal(lr.filter.unit.n, 0);
    assert_int_equal(lr.filter.reporter_phone.n, 0);
    assert_true(lr.after == 0);
    assert_int_equal(lr.limit, 50);
}

static void
test_list_full_filter_fills_every_field(void **state)
{
    int rc = request_parse_list(
        body("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:I, s:I},"
             " s:u, s:i, s:i}",
             "filter", "state", "accepted", "unit", "u01", "district", "d01", "street", "s01",
             "community", "c01", "grid", "g01", "category", "road.pothole", "channel", "app",
             "overdue", 1, "supervised", 0, "reporter_phone", "13800138000", "created_from",
             (int64_t)-5, "created_to", NOW_MS, "after", (uint64_t)77, "limit", 500, "rid", 1),
        &lr, &err);

    assert_int_equal(rc, 0);
    assert_int_equal(lr.filter.state, CASE_ACCEPTED);
    assert_int_equal(lr.filter.channel, CHANNEL_APP);
    assert_true(gl_str_eq(lr.filter.unit, "u01"));
    assert_true(gl_str_eq(lr.filter.district, "d01"));
    assert_true(gl_str_eq(lr.filter.street, "s01"));
    assert_true(gl_str_eq(lr.filter.community, "c01"));
    assert_true(gl_str_eq(lr.filter.grid, "g01"));
    assert_true(gl_str_eq(lr.filter.category, "road.pothole"));
    assert_int_equal(lr.filter.overdue, 1);
    assert_int_equal(lr.filter.supervised, 0);
    assert_true(gl_str_eq(lr.filter.reporter_phone, "13800138000"));
    assert_true(lr.filter.created_from == -5);
    assert_true(lr.filter.created_to == NOW_MS);
    assert_true(lr.after == 77);
    assert_int_equal(lr.limit, 500);
}

static void
test_list_unknown_state_lists_the_states(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:s}}", "filter", "state", "open"), &lr, &err),
                   "filter.state", "one of registered, dispatched, accepted");
}

static void
test_list_unknown_channel_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:i}}", "filter", "channel", 1), &lr, &err),
                   "filter.channel", "one of hotline");
}

static void
test_list_unknown_filter_field_is_named_with_its_path(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:s}}", "filter", "level", "1"), &lr, &err),
                   "filter.level", "unknown field");
}

static void
test_list_filter_that_is_not_a_map_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:[]}", "filter"), &lr, &err), "filter", "map");
}

static void
test_list_empty_district_in_filter_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:s}}", "filter", "district", ""), &lr, &err),
                   "filter.district", "empty");
}

static void
test_list_filter_string_with_invalid_utf8_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:S}}", "filter", "unit", "u\xc3", (size_t)2),
                                      &lr, &err),
                   "filter.unit", "UTF-8");
}

static void
test_list_overdue_must_be_a_bool(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:i}}", "filter", "overdue", 1), &lr, &err),
                   "filter.overdue", "true or false");
}

static void
test_list_reporter_phone_over_32_bytes_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:s}}", "filter", "reporter_phone",
                                           repeat('1', 33)),
                                      &lr, &err),
                   "filter.reporter_phone", "at most 32");
}

static void
test_list_created_from_after_created_to_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:i, s:i}}", "filter", "created_from", 10,
                                           "created_to", 9),
                                      &lr, &err),
                   "filter.created_from", NULL);
}

static void
test_list_equal_created_from_and_to_pass(void **state)
{
    assert_int_equal(request_parse_list(body("{s:{s:i, s:i}}", "filter", "created_from", 10,
                                             "created_to", 10),
                                        &lr, &err),
                     0);
}

static void
test_list_created_to_beyond_int64_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:u}}", "filter", "created_to", UINT64_MAX),
                                      &lr, &err),
                   "filter.created_to", "integer");
}

static void
test_list_created_from_as_float_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:{s:d}}", "filter", "created_from", 1.5), &lr,
                                      &err),
                   "filter.created_from", "integer");
}

static void
test_list_negative_after_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:i}", "after", -1), &lr, &err), "after",
                   "non-negative");
}

static void
test_list_nil_after_is_the_start(void **state)
{
    assert_int_equal(request_parse_list(body("{s:n}", "after"), &lr, &err), 0);
    assert_true(lr.after == 0);
}

static void
test_list_largest_after_passes(void **state)
{
    assert_int_equal(request_parse_list(body("{s:u}", "after", UINT64_MAX), &lr, &err), 0);
    assert_true(lr.after == UINT64_MAX);
}

static void
test_list_limit_out_of_range_is_refused_not_clamped(void **state)
{
    assert_invalid(request_parse_list(body("{s:i}", "limit", 0), &lr, &err), "limit",
                   "1 to 500");
    assert_invalid(request_parse_list(body("{s:i}", "limit", 501), &lr, &err), "limit",
                   "1 to 500");
    assert_invalid(request_parse_list(body("{s:i}", "limit", -1), &lr, &err), "limit",
                   "1 to 500");
    assert_invalid(request_parse_list(body("{s:u}", "limit", UINT64_MAX), &lr, &err), "limit",
                   "1 to 500");
}

static void
test_list_limit_edges_pass(void **state)
{
    assert_int_equal(request_parse_list(body("{s:i}", "limit", 1), &lr, &err), 0);
    assert_int_equal(lr.limit, 1);
    assert_int_equal(request_parse_list(body("{s:i}", "limit", 500), &lr, &err), 0);
    assert_int_equal(lr.limit, 500);
}

static void
test_list_limit_as_string_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:s}", "limit", "10"), &lr, &err), "limit", NULL);
}

static void
test_list_unknown_field_is_invalid(void **state)
{
    assert_invalid(request_parse_list(body("{s:i}", "offset", 10), &lr, &err), "offset",
                   "unknown field");
}

static void
test_list_body_that_is_nil_is_bad_request(void **state)
{
    assert_int_equal(request_parse_list(body("n"), &lr, &err), GL_EBAD_REQUEST);
    assert_string_equal(err.message, "body must be a MessagePack map");
}

/* ---- request_find_rid ------------------------------------------------------------ */

static const char *rid;
static size_t      rid_len;

static void
find_rid_in_sb(void)
{
    request_find_rid(sb.data, sb.size, &rid, &rid_len);
}

/* The found rid is exactly the packed bytes of expect_fmt's value. */
static void
assert_rid_is(const char *expect_fmt, ...)
{
    msgpack_sbuffer want;
    msgpack_packer  pk;
    fmt_state       st;
    va_list         ap;

    msgpack_sbuffer_init(&want);
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    va_start(ap, expect_fmt);
    st.fmt = expect_fmt;
    va_copy(st.ap, ap);
    pack_value(&pk, &st);
    va_end(st.ap);
    va_end(ap);
    assert_non_null(rid);
    assert_int_equal(rid_len, want.size);
    assert_memory_equal(rid, want.data, want.size);
    msgpack_sbuffer_destroy(&want);
}

static void
test_rid_integer_is_found_after_nested_values(void **state)
{
    body("{s:{s:[i, {s:s}]}, s:s, s:i}", "filter", "a", 1, "b", "c", "x", "y", "rid", 300);
    find_rid_in_sb();
    assert_rid_is("i", 300);
}

static void
test_rid_of_every_scalar_kind_is_found(void **state)
{
    body("{s:s}", "rid", "req-7");
    find_rid_in_sb();
    assert_rid_is("s", "req-7");

    body("{s:n}", "rid");
    find_rid_in_sb();
    assert_rid_is("n");

    body("{s:b}", "rid", 1);
    find_rid_in_sb();
    assert_rid_is("b", 1);

    body("{s:d}", "rid", 2.5);
    find_rid_in_sb();
    assert_rid_is("d", 2.5);

    body("{s:I}", "rid", INT64_MIN);
    find_rid_in_sb();
    assert_rid_is("I", INT64_MIN);

    body("{s:x}", "rid", "\x01\x02", (size_t)2);
    find_rid_in_sb();
    assert_rid_is("x", "\x01\x02", (size_t)2);
}

static void
test_rid_that_is_a_container_is_not_echoed(void **state)
{
    body("{s:[i], s:i}", "rid", 1, "id", 2);
    find_rid_in_sb();
    assert_null(rid);
    assert_int_equal(rid_len, 0);

    body("{s:{}}", "rid");
    find_rid_in_sb();
    assert_null(rid);
}

static void
test_rid_that_is_an_ext_is_not_echoed(void **state)
{
    static const unsigned char buf[] = { 0x81, 0xa3, 'r', 'i', 'd', 0xd4, 0x01, 0x00 };

    request_find_rid((const char *)buf, sizeof buf, &rid, &rid_len);
    assert_null(rid);
}

static void
test_rid_of_64_bytes_is_echoed_and_65_is_not(void **state)
{
    /* A str8 header is 2 bytes: 62 bytes of text make 64 packed. */
    body("{s:s}", "rid", repeat('r', 62));
    find_rid_in_sb();
    assert_int_equal(rid_len, 64);

    body("{s:s}", "rid", repeat('r', 63));
    find_rid_in_sb();
    assert_null(rid);
    assert_int_equal(rid_len, 0);
}

static void
test_rid_key_in_str8_form_is_recognised(void **state)
{
    static const unsigned char buf[] = { 0x82, 0xa1, 'a', 0x01,
                                         0xd9, 0x03, 'r', 'i', 'd', 0x2a };

    request_find_rid((const char *)buf, sizeof buf, &rid, &rid_len);
    assert_non_null(rid);
    assert_int_equal(rid_len, 1);
    assert_int_equal((unsigned char)rid[0], 0x2a);
}

static void
test_rid_in_map16_body_is_found(void **state)
{
    static const unsigned char buf[] = { 0xde, 0x00, 0x01, 0xa3, 'r', 'i', 'd', 0x07 };

    request_find_rid((const char *)buf, sizeof buf, &rid, &rid_len);
    assert_non_null(rid);
    assert_int_equal(rid_len, 1);
}

static void
test_keys_like_rid_are_not_rid(void **state)
{
    body("{s:i, s:i, s:i, x:i}", "ri", 1, "ridx", 2, "RID", 3, "rid", (size_t)3, 4);
    find_rid_in_sb();
    assert_null(rid);
}

static void
test_rid_nested_in_a_value_is_not_the_bodys_rid(void **state)
{
    body("{s:{s:i}}", "filter", "rid", 5);
    find_rid_in_sb();
    assert_null(rid);
}

static void
test_no_rid_when_body_is_not_a_map(void **state)
{
    body("[s, i]", "rid", 1);
    find_rid_in_sb();
    assert_null(rid);
    request_find_rid("", 0, &rid, &rid_len);
    assert_null(rid);
    request_find_rid(NULL, 0, &rid, &rid_len);
    assert_null(rid);
}

static void
test_find_rid_survives_truncation_at_every_offset(void **state)
{
    size_t cut;

    body("{s:[s, {s:i}], s:s}", "a", "b", "c", 1, "rid", "r-1");
    for (cut = 0; cut < sb.size; cut++) {
        request_find_rid(sb.data, cut, &rid, &rid_len);
        assert_null(rid);
        assert_int_equal(rid_len, 0);
    }
    request_find_rid(sb.data, sb.size, &rid, &rid_len);
    assert_rid_is("s", "r-1");
}

static void
test_find_rid_survives_lying_counts(void **state)
{
    static const unsigned char buf[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a',
                                         0xdd, 0xff, 0xff, 0xff, 0xff };

    request_find_rid((const char *)buf, sizeof buf, &rid, &rid_len);
    assert_null(rid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_create_full_body_fills_every_field),
        T(test_create_strings_borrow_from_the_body_buffer),
        T(test_create_minimal_body_takes_defaults),
        T(test_create_nil_optional_fields_count_as_absent),
        T(test_create_nil_required_field_is_missing),
        T(test_create_body_that_is_an_array_is_bad_request),
        T(test_create_body_that_is_a_string_is_bad_request),
        T(test_create_non_string_key_is_bad_request),
        T(test_create_non_string_key_in_location_is_bad_request),
        T(test_create_unknown_field_is_named),
        T(test_create_unknown_field_name_is_cut_to_fit),
        T(test_create_unknown_field_with_invalid_utf8_is_reported_as_valid_text),
        T(test_create_unknown_field_is_cut_on_a_character_boundary),
        T(test_create_duplicate_key_is_invalid),
        T(test_create_duplicate_key_in_location_is_invalid),
        T(test_create_rid_of_any_kind_is_ignored),
        T(test_create_error_leaves_message_for_a_person),
        T(test_create_request_id_is_required),
        T(test_create_empty_request_id_is_invalid),
        T(test_create_request_id_of_128_bytes_passes_and_129_does_not),
        T(test_create_request_id_that_is_a_number_is_invalid),
        T(test_create_request_id_of_bin_is_invalid),
        T(test_create_request_id_with_invalid_utf8_is_invalid),
        T(test_create_request_id_with_nul_is_invalid),
        T(test_create_without_channel_or_category_is_valid),
        T(test_create_unknown_channel_lists_the_valid_ones),
        T(test_create_channel_is_case_sensitive),
        T(test_create_channel_that_is_a_number_is_invalid),
        T(test_create_every_channel_is_accepted),
        T(test_create_category_is_not_empty),
        T(test_create_category_over_64_bytes_is_invalid),
        T(test_create_unknown_urgency_is_invalid),
        T(test_create_emergency_urgency_is_kept),
        T(test_create_title_of_300_bytes_says_how_long_and_the_limit),
        T(test_create_title_of_200_bytes_and_empty_title_pass),
        T(test_create_title_that_is_an_array_is_invalid),
        T(test_create_description_is_required_and_not_empty),
        T(test_create_description_over_8000_bytes_is_invalid),
        T(test_create_description_with_a_surrogate_is_invalid),
        T(test_create_description_in_chinese_passes),
        T(test_create_location_is_required),
        T(test_create_location_that_is_a_string_is_invalid),
        T(test_create_location_without_district_is_invalid),
        T(test_create_empty_district_is_invalid),
        T(test_create_district_over_64_bytes_is_invalid),
        T(test_create_location_with_only_district_has_no_coords),
        T(test_create_unknown_location_field_is_named_with_its_path),
        T(test_create_empty_street_community_or_grid_is_invalid),
        T(test_create_street_with_invalid_utf8_is_named),
        T(test_create_address_over_500_bytes_is_invalid),
        T(test_create_lat_without_lon_is_invalid),
        T(test_create_lon_without_lat_is_invalid),
        T(test_create_lat_with_nil_lon_is_invalid),
        T(test_create_lat_out_of_range_is_invalid),
        T(test_create_lon_out_of_range_is_invalid),
        T(test_create_coords_on_the_edges_pass),
        T(test_create_integer_and_float32_coords_pass),
        T(test_create_nan_lat_is_invalid),
        T(test_create_lat_as_string_is_invalid),
        T(test_create_reporter_that_is_not_a_map_is_invalid),
        T(test_create_unknown_reporter_field_is_named_with_its_path),
        T(test_create_empty_reporter_map_passes),
        T(test_create_reporter_name_over_100_bytes_is_invalid),
        T(test_create_reporter_name_with_invalid_utf8_is_named),
        T(test_create_phone_with_letters_is_invalid),
        T(test_create_phone_with_fewer_than_3_digits_is_invalid),
        T(test_create_empty_phone_is_invalid),
        T(test_create_phone_over_32_bytes_is_invalid),
        T(test_create_phone_with_full_width_digits_is_invalid),
        T(test_create_attachments_that_are_not_an_array_are_invalid),
        T(test_create_16_attachments_pass_and_17_do_not),
        T(test_create_attachment_that_is_not_http_is_named_by_index),
        T(test_create_attachment_with_uppercase_scheme_is_invalid),
        T(test_create_attachment_with_one_slash_is_invalid),
        T(test_create_attachment_that_is_a_number_is_invalid),
        T(test_create_empty_attachment_is_invalid),
        T(test_create_attachment_over_1024_bytes_is_invalid),
        T(test_create_attachment_with_invalid_utf8_is_invalid),
        T(test_create_negative_reported_at_is_invalid),
        T(test_create_reported_at_more_than_5_minutes_ahead_is_invalid),
        T(test_create_reported_at_beyond_int64_is_invalid),
        T(test_create_reported_at_as_float_or_string_is_invalid),
        T(test_create_reported_at_is_bounded_when_now_is_near_the_end_of_time),
        T(test_create_resolved_on_spot_must_be_a_bool),
        T(test_fingerprint_is_the_same_for_the_same_request),
        T(test_fingerprint_ignores_rid_and_key_order),
        T(test_fingerprint_changes_with_every_field),
        T(test_fingerprint_does_not_let_bytes_move_between_fields),
        T(test_fingerprint_tells_absent_coords_from_zero_coords),
        T(test_fingerprint_keeps_every_pair_of_adjacent_strings_apart),
        T(test_fingerprint_coords_cannot_pose_as_the_reporter_name),
        T(test_fingerprint_tells_attachment_boundaries_apart),
        T(test_get_by_id),
        T(test_get_by_code_with_history),
        T(test_get_with_neither_id_nor_code_is_invalid),
        T(test_get_with_both_id_and_code_is_invalid),
        T(test_get_with_nil_id_and_a_code_passes),
        T(test_get_id_zero_or_negative_is_invalid),
        T(test_get_id_as_string_is_invalid),
        T(test_get_largest_id_passes),
        T(test_get_empty_or_long_code_is_invalid),
        T(test_get_history_must_be_a_bool),
        T(test_get_unknown_field_is_invalid),
        T(test_get_duplicate_id_is_invalid),
        T(test_get_body_that_is_an_array_is_bad_request),
        T(test_list_empty_body_takes_defaults),
        T(test_list_full_filter_fills_every_field),
        T(test_list_unknown_state_lists_the_states),
        T(test_list_unknown_channel_is_invalid),
        T(test_list_unknown_filter_field_is_named_with_its_path),
        T(test_list_filter_that_is_not_a_map_is_invalid),
        T(test_list_empty_district_in_filter_is_invalid),
        T(test_list_filter_string_with_invalid_utf8_is_invalid),
        T(test_list_overdue_must_be_a_bool),
        T(test_list_reporter_phone_over_32_bytes_is_invalid),
        T(test_list_created_from_after_created_to_is_invalid),
        T(test_list_equal_created_from_and_to_pass),
        T(test_list_created_to_beyond_int64_is_invalid),
        T(test_list_created_from_as_float_is_invalid),
        T(test_list_negative_after_is_invalid),
        T(test_list_nil_after_is_the_start),
        T(test_list_largest_after_passes),
        T(test_list_limit_out_of_range_is_refused_not_clamped),
        T(test_list_limit_edges_pass),
        T(test_list_limit_as_string_is_invalid),
        T(test_list_unknown_field_is_invalid),
        T(test_list_body_that_is_nil_is_bad_request),
        T(test_rid_integer_is_found_after_nested_values),
        T(test_rid_of_every_scalar_kind_is_found),
        T(test_rid_that_is_a_container_is_not_echoed),
        T(test_rid_that_is_an_ext_is_not_echoed),
        T(test_rid_of_64_bytes_is_echoed_and_65_is_not),
        T(test_rid_key_in_str8_form_is_recognised),
        T(test_rid_in_map16_body_is_found),
        T(test_keys_like_rid_are_not_rid),
        T(test_rid_nested_in_a_value_is_not_the_bodys_rid),
        T(test_no_rid_when_body_is_not_a_map),
        T(test_find_rid_survives_truncation_at_every_offset),
        T(test_find_rid_survives_lying_counts),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
