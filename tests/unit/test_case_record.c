/* The case and event codecs: what is packed reads back the same. */
#include "case_event.h"
#include "case_record.h"
#include "gl_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static case_record sample(void)
{
    case_record c;
    memset(&c, 0, sizeof c);
    c.id = 42;
    c.code = gl_str_c("GL-20261125-000042");
    c.version = 3;
    c.state = CASE_ACCEPTED;
    c.channel = CHANNEL_GRID;
    c.category = gl_str_c("street_lights");
    c.urgency = URGENCY_URGENT;
    c.title = gl_str_c("路灯不亮");
    c.description = gl_str_c("The light at gate 3 is out.");
    c.location.district = gl_str_c("D01");
    c.location.street = gl_str_c("D01-S01");
    c.location.has_coords = true;
    c.location.lat = 31.5;
    c.location.lon = 121.25;
    c.reporter_phone = gl_str_c("13812345678");
    c.n_attachments = 2;
    c.attachments[0] = gl_str_c("https://a/1.jpg");
    c.attachments[1] = gl_str_c("https://a/2.jpg");
    c.unit = gl_str_c("D01-INFRA");
    c.level = 1;
    c.accept_by = 1000;
    c.created_at = 500;
    c.updated_at = 600;
    c.duplicate_of = 7;
    c.satisfaction = SATISFACTION_BASICALLY_SATISFIED;
    return c;
}

static void roundtrip(const case_record *in, case_record *out, msgpack_sbuffer *sb,
                      msgpack_zone *zone, unsigned flags)
{
    msgpack_packer pk;
    msgpack_object o;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack(&pk, in, flags), 0);
    assert_int_equal(mp_unpack(sb->data, sb->size, zone, &o), 0);
    assert_int_equal(case_record_unpack(&o, out), 0);
}

static void test_packed_case_reads_back_the_same(void **state)
{
    case_record in = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    roundtrip(&in, &out, &sb, &zone, 0);
    assert_int_equal(out.id, 42);
    assert_true(gl_str_eq2(out.code, in.code));
    assert_int_equal(out.state, CASE_ACCEPTED);
    assert_int_equal(out.channel, CHANNEL_GRID);
    assert_int_equal(out.urgency, URGENCY_URGENT);
    assert_true(gl_str_eq(out.title, "路灯不亮"));
    assert_true(out.location.has_coords);
    assert_true(out.location.lat == 31.5 && out.location.lon == 121.25);
    assert_true(gl_str_eq(out.location.street, "D01-S01"));
    assert_int_equal(out.location.community.n, 0);
    assert_int_equal(out.n_attachments, 2);
    assert_true(gl_str_eq(out.attachments[1], "https://a/2.jpg"));
    assert_int_equal(out.level, 1);
    assert_int_equal(out.accept_by, 1000);
    assert_int_equal(out.resolve_by, 0);
    assert_int_equal(out.duplicate_of, 7);
    assert_int_equal(out.satisfaction, SATISFACTION_BASICALLY_SATISFIED);
    assert_true(gl_str_eq(out.reporter_phone, "13812345678"));
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

static void test_packed_case_is_one_map_with_every_contract_field(void **state)
{
    static const char *const fields[] = {
        "id", "code", "version", "state", "channel", "category", "urgency", "title",
        "description", "location", "reporter", "unit", "level", "accept_by", "resolve_by",
        "created_at", "updated_at", "supervised", "duplicate_of", "reopen_count",
        "satisfaction"
    };
    case_record in = sample();
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_packer pk;
    msgpack_object o;
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack(&pk, &in, 0), 0);
    /* Exactly one object: a wrong map count would leave bytes over or run short. */
    assert_int_equal(mp_unpack(sb.data, sb.size, &zone, &o), 0);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        assert_non_null(mp_map_get(&o, fields[i]));
    }
    assert_int_equal(mp_map_get(&o, "resolve_by")->type, MSGPACK_OBJECT_NIL);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

/* Every field of the record set, so that a field the stored form forgets shows. */
static case_record full_sample(void)
{
    case_record c = sample();
    c.location.community = gl_str_c("D01-S01-C02");
    c.location.grid = gl_str_c("D01-S01-C02-G03");
    c.location.address = gl_str_c("3 Gate Rd");
    c.reporter_name = gl_str_c("王小明");
    c.request_id = gl_str_c("req-9");
    c.created_by = gl_str_c("hotline-1");
    c.reported_at = 450;
    c.resolved_on_spot = true;
    c.resolve_by = 2000;
    c.supervised = true;
    c.reopen_count = 2;
    c.return_count = 3;
    c.n_returned_by = 2;
    c.returned_by[0] = gl_str_c("D01-S01-OFFICE");
    c.returned_by[1] = gl_str_c("D01-S02-OFFICE");
    c.reply = gl_str_c("Fixed.");
    c.extension_until = 3000;
    c.agent = gl_str_c("D01-S01-C02");
    c.dispatched_at = 510;
    c.accepted_at = 520;
    c.resolved_at = 530;
    c.warn_at = 900;
    c.deadlines_fired = CASE_FIRED_WARN | CASE_FIRED_RESOLVE;
    c.deadlines_at = 505;
    return c;
}

static void assert_same_case(const case_record *a, const case_record *b)
{
#define SAME_STR(f) assert_true(gl_str_eq2(a->f, b->f))
#define SAME(f) assert_true(a->f == b->f)
    SAME(id); SAME_STR(code); SAME(version); SAME(state); SAME(channel); SAME_STR(category);
    SAME(urgency); SAME_STR(title); SAME_STR(description); SAME_STR(location.district);
    SAME_STR(location.street); SAME_STR(location.community); SAME_STR(location.grid);
    SAME_STR(location.address); SAME(location.has_coords); SAME(location.lat);
    SAME(location.lon); SAME_STR(reporter_name); SAME_STR(reporter_phone);
    SAME(n_attachments);
    for (uint32_t i = 0; i < a->n_attachments; i++) SAME_STR(attachments[i]);
    SAME_STR(request_id); SAME_STR(created_by); SAME(reported_at); SAME(resolved_on_spot);
    SAME_STR(unit); SAME(level); SAME(accept_by); SAME(resolve_by); SAME(created_at);
    SAME(updated_at); SAME(supervised); SAME(duplicate_of); SAME(reopen_count);
    SAME(return_count); SAME(n_returned_by);
    for (uint32_t i = 0; i < a->n_returned_by; i++) SAME_STR(returned_by[i]);
    SAME(satisfaction); SAME_STR(reply); SAME(extension_until); SAME_STR(agent);
    SAME(dispatched_at); SAME(accepted_at); SAME(resolved_at); SAME(warn_at);
    SAME(deadlines_fired); SAME(deadlines_at);
#undef SAME
#undef SAME_STR
}

/* The stored form reads back as the same record as the wire map does, in a third of
 * the bytes or less. */
static void test_stored_form_reads_back_the_same_and_is_small(void **state)
{
    case_record in = full_sample(), from_wire, from_stored;
    msgpack_sbuffer wire, stored;
    msgpack_zone zone;
    msgpack_packer pk;
    msgpack_object o;
    msgpack_sbuffer_init(&wire);
    msgpack_sbuffer_init(&stored);
    msgpack_zone_init(&zone, 1024);
    roundtrip(&in, &from_wire, &wire, &zone, 0);
    assert_same_case(&in, &from_wire);
    msgpack_packer_init(&pk, &stored, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack_stored(&pk, &in), 0);
    assert_int_equal(mp_unpack(stored.data, stored.size, &zone, &o), 0);
    assert_int_equal(o.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(case_record_unpack(&o, &from_stored), 0);
    assert_same_case(&in, &from_stored);
    assert_true(stored.size * 2 < wire.size);
    /* The direct decoder reads the same, and reads the wire map too (old records). */
    assert_int_equal(case_record_decode(stored.data, stored.size, &zone, &from_stored), 0);
    assert_same_case(&in, &from_stored);
    assert_int_equal(case_record_decode(wire.data, wire.size, &zone, &from_wire), 0);
    assert_same_case(&in, &from_wire);
    assert_int_equal(case_record_decode(stored.data, stored.size - 1, &zone, &from_stored), -1);

    /* No coordinates and no channel come back as none. */
    in.location.has_coords = false;
    in.channel = CHANNEL_NONE;
    msgpack_sbuffer_clear(&stored);
    assert_int_equal(case_record_pack_stored(&pk, &in), 0);
    assert_int_equal(mp_unpack(stored.data, stored.size, &zone, &o), 0);
    assert_int_equal(case_record_unpack(&o, &from_stored), 0);
    assert_false(from_stored.location.has_coords);
    assert_int_equal(from_stored.channel, CHANNEL_NONE);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&wire);
    msgpack_sbuffer_destroy(&stored);
}

/* A later daemon may append elements (still read); a short array, another form's
 * number or an enumeration out of range is refused rather than read as something else. */
static void test_stored_form_skips_appended_elements_and_refuses_damage(void **state)
{
    case_record in = full_sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_packer pk;
    msgpack_object o;
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack_stored(&pk, &in), 0);
    assert_int_equal(mp_unpack(sb.data, sb.size, &zone, &o), 0);
    uint32_t n = o.via.array.size;

    msgpack_object longer[64];
    assert_true(n + 1 <= 64);
    memcpy(longer, o.via.array.ptr, n * sizeof longer[0]);
    longer[n].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    longer[n].via.u64 = 99;
    msgpack_object grown = o;
    grown.via.array.ptr = longer;
    grown.via.array.size = n + 1;
    assert_int_equal(case_record_unpack(&grown, &out), 0);
    assert_same_case(&in, &out);

    grown.via.array.size = n - 1;
    assert_int_equal(case_record_unpack(&grown, &out), -1);
    grown.via.array.size = n;
    longer[0].via.u64 = 2;                     /* another form */
    assert_int_equal(case_record_unpack(&grown, &out), -1);
    longer[0].via.u64 = CASE_STORED_FORM;
    assert_int_equal(case_record_unpack(&grown, &out), 0);
    longer[4].via.u64 = CASE_STATE_COUNT;      /* the state */
    assert_int_equal(case_record_unpack(&grown, &out), -1);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

static void test_masked_phone_keeps_first_three_and_last_four_digits(void **state)
{
    char out[32];
    case_phone_mask(gl_str_c("13812345678"), out, sizeof out);
    assert_string_equal(out, "138****5678");
    case_phone_mask(gl_str_c("+86 138-1234-5678"), out, sizeof out);
    assert_string_equal(out, "+86 1**-****-5678");
    case_phone_mask(gl_str_c("1234"), out, sizeof out);
    assert_string_equal(out, "1234");
}

static void test_pack_with_mask_flag_masks_the_phone(void **state)
{
    case_record in = sample(), out;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    roundtrip(&in, &out, &sb, &zone, CASE_PACK_MASK_PHONE);
    assert_true(gl_str_eq(out.reporter_phone, "138****5678"));
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

static void test_enum_names_parse_back(void **state)
{
    for (int i = 0; i < CASE_STATE_COUNT; i++) {
        assert_int_equal(case_state_parse(gl_str_c(case_state_name((case_state)i))), i);
    }
    for (int i = 0; i < CHANNEL_COUNT; i++) {
        assert_int_equal(case_channel_parse(gl_str_c(case_channel_name((case_channel)i))), i);
    }
    for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
        gl_str name = gl_str_c(case_event_type_name((case_event_type)i));
        assert_int_equal(case_event_type_parse(name), i);
    }
    assert_int_equal(case_state_parse(gl_str_c("Registered")), -1);
    assert_int_equal(case_urgency_parse(gl_str_c("")), -1);
}

static void test_event_reads_back_the_same(void **state)
{
    case_event in, out;
    memset(&in, 0, sizeof in);
    in.seq = 9;
    in.at = 1234;
    in.case_id = 3;
    in.code = gl_str_c("GL-20261125-000003");
    in.type = EVENT_ESCALATED;
    in.state = CASE_DISPATCHED;
    in.unit = gl_str_c("D01-S01-OFFICE");
    in.actor = gl_str_c("escalator");
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(case_event_pack(&pk, &in), 0);
    assert_int_equal(case_event_decode(gl_str_of(sb.data, sb.size), &zone, &out), 0);
    assert_int_equal(out.seq, 9);
    assert_int_equal(out.type, EVENT_ESCALATED);
    assert_int_equal(out.state, CASE_DISPATCHED);
    assert_true(gl_str_eq(out.unit, "D01-S01-OFFICE"));
    assert_int_equal(out.note.n, 0);
    /* not an event: a truncated one, and a map of something else */
    assert_int_equal(case_event_decode(gl_str_of(sb.data, sb.size - 1), &zone, &out), -1);
    assert_int_equal(case_event_decode(gl_str_of("\x81\xa1x\x01", 4), &zone, &out), -1);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

static void test_error_pack_carries_code_field_and_rid(void **state)
{
    gl_error err;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_packer pk;
    msgpack_object o;
    gl_error_set(&err, GL_EINVALID, "location.district", "unknown district \"%s\"", "D9");
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 1024);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(gl_error_pack(&pk, &err, "\x2a", 1), 0);
    assert_int_equal(mp_unpack(sb.data, sb.size, &zone, &o), 0);
    assert_int_equal(mp_map_get(&o, "ok")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(mp_map_get(&o, "ok")->via.boolean);
    const msgpack_object *e = mp_map_get(&o, "error");
    const msgpack_object *code = mp_map_get(e, "code"), *field = mp_map_get(e, "field");
    assert_true(gl_str_eq(gl_str_of(code->via.str.ptr, code->via.str.size), "invalid_argument"));
    assert_true(gl_str_eq(gl_str_of(field->via.str.ptr, field->via.str.size), "location.district"));
    assert_int_equal(mp_map_get(&o, "rid")->via.u64, 42);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_case_reads_back_the_same),
        cmocka_unit_test(test_packed_case_is_one_map_with_every_contract_field),
        cmocka_unit_test(test_stored_form_reads_back_the_same_and_is_small),
        cmocka_unit_test(test_stored_form_skips_appended_elements_and_refuses_damage),
        cmocka_unit_test(test_masked_phone_keeps_first_three_and_last_four_digits),
        cmocka_unit_test(test_pack_with_mask_flag_masks_the_phone),
        cmocka_unit_test(test_enum_names_parse_back),
        cmocka_unit_test(test_event_reads_back_the_same),
        cmocka_unit_test(test_error_pack_carries_code_field_and_rid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
