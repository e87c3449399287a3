/*
 * test_route_task: the routing task and its decisions on the wire: what the daemon
 * packs the worker reads back field for field; a task with one wrong field is refused
 * with the field's path; decisions that are not well-formed are skipped, the others
 * kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "route_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    msgpack_sbuffer  buf;
    msgpack_packer   pk;
    msgpack_zone     zone;
    msgpack_object   obj;
} wire;

static void
wire_init(wire *w)
{
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
    assert_true(msgpack_zone_init(&w->zone, 4096));
}

/* Unpacks what was packed into w->obj. */
static void
wire_read(wire *w)
{
    assert_int_equal(mp_unpack(w->buf.data, w->buf.size, &w->zone, &w->obj), 0);
}

static void
wire_destroy(wire *w)
{
    msgpack_zone_destroy(&w->zone);
    msgpack_sbuffer_destroy(&w->buf);
}

static void
case_fill(case_record *c, uint64_t id)
{
    memset(c, 0, sizeof *c);
    c->id                 = id;
    c->code               = gl_str_c("GL-20261125-000001");
    c->version            = 3;
    c->state              = CASE_REGISTERED;
    c->channel            = CHANNEL_GRID;
    c->category           = gl_str_c("street_lights");
    c->urgency            = URGENCY_URGENT;
    c->title              = gl_str_c("Light out");
    c->location.district  = gl_str_c("D01");
    c->location.street    = gl_str_c("D01-S01");
    c->location.community = gl_str_c("D01-S01-C01");
    c->location.grid      = gl_str_c("D01-S01-C01-G02");
    c->location.has_coords = true;
    c->location.lat       = 31.25;
    c->location.lon       = 121.5;
    c->created_at         = 1790000000000LL;
    c->return_count       = 1;
    c->returned_by[0]     = gl_str_c("D01-HOUSING");
    c->n_returned_by      = 1;
}

/* The case's wire map, packed into its own buffer (the daemon copies it raw). */
static void
case_raw(const case_record *c, msgpack_sbuffer *out)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    assert_int_equal(case_record_pack(&pk, c, 0), 0);
}

static bool
str_is(gl_str s, const char *want)
{
    return gl_str_eq(s, want);
}

/* ---- the task -------------------------------------------------------------------- */

static void
test_task_round_trips_cases_and_candidates(void **state)
{
    wire            w;
    case_record     c;
    msgpack_sbuffer raw;
    route_candidate k[2];
    route_item     *items;
    uint32_t        n;
    int64_t         now;
    gl_error        err;

    wire_init(&w);
    case_fill(&c, 42);
    case_raw(&c, &raw);
    memset(k, 0, sizeof k);
    k[0].id = 7;
    k[0].category = gl_str_c("street_lights");
    k[0].grid = gl_str_c("D01-S01-C01-G02");
    k[0].created_at = 1789990000000LL;
    k[0].duplicate_of = 3;
    k[1].id = 9;
    k[1].category = gl_str_c("street_lights");
    k[1].has_coords = true;
    k[1].lat = 31.2501;
    k[1].lon = -0.5;
    k[1].created_at = 1789995000000LL;

    assert_int_equal(route_task_pack_begin(&w.pk, 1790000001234LL, 2), 0);
    assert_int_equal(route_task_pack_item(&w.pk, gl_str_of(raw.data, raw.size), k, 2), 0);
    case_fill(&c, 43);
    c.category = GL_STR_NULL;
    msgpack_sbuffer_destroy(&raw);
    case_raw(&c, &raw);
    assert_int_equal(route_task_pack_item(&w.pk, gl_str_of(raw.data, raw.size), NULL, 0), 0);
    wire_read(&w);

    gl_error_clear(&err);
    assert_int_equal(route_task_unpack(&w.obj, &w.zone, &now, &items, &n, &err), 0);
    assert_int_equal(now, 1790000001234LL);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].c.id, 42);
    assert_int_equal(items[0].c.version, 3);
    assert_true(str_is(items[0].c.category, "street_lights"));
    assert_true(str_is(items[0].c.location.grid, "D01-S01-C01-G02"));
    assert_true(items[0].c.location.has_coords);
    assert_int_equal(items[0].c.n_returned_by, 1);
    assert_true(str_is(items[0].c.returned_by[0], "D01-HOUSING"));
    assert_int_equal(items[0].n_candidates, 2);
    assert_int_equal(items[0].candidates[0].id, 7);
    assert_true(str_is(items[0].candidates[0].grid, "D01-S01-C01-G02"));
    assert_false(items[0].candidates[0].has_coords);
    assert_int_equal(items[0].candidates[0].duplicate_of, 3);
    assert_int_equal(items[0].candidates[0].created_at, 1789990000000LL);
    assert_int_equal(items[0].candidates[1].grid.n, 0);
    assert_true(items[0].candidates[1].has_coords);
    assert_true(items[0].candidates[1].lat > 31.25 && items[0].candidates[1].lat < 31.2502);
    assert_true(items[0].candidates[1].lon < -0.49 && items[0].candidates[1].lon > -0.51);
    assert_int_equal(items[0].candidates[1].duplicate_of, 0);
    assert_int_equal(items[1].c.id, 43);
    assert_int_equal(items[1].c.category.n, 0);
    assert_int_equal(items[1].n_candidates, 0);

    msgpack_sbuffer_destroy(&raw);
    wire_destroy(&w);
}

static void
test_empty_task_reads_as_no_items(void **state)
{
    wire        w;
    route_item  sentinel;
    route_item *items = &sentinel;
    uint32_t    n = 99;
    int64_t     now;

    wire_init(&w);
    assert_int_equal(route_task_pack_begin(&w.pk, 5, 0), 0);
    wire_read(&w);
    assert_int_equal(route_task_unpack(&w.obj, &w.zone, &now, &items, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(items);
    wire_destroy(&w);
}

static void
test_pack_item_keeps_the_oldest_candidates_and_refuses_an_empty_case(void **state)
{
    wire            w;
    case_record     c;
    msgpack_sbuffer raw;
    route_candidate k[ROUTE_MAX_CANDIDATES + 5];
    route_item     *items;
    uint32_t        n, i;
    int64_t         now;

    wire_init(&w);
    case_fill(&c, 1);
    case_raw(&c, &raw);
    memset(k, 0, sizeof k);
    for (i = 0; i < ROUTE_MAX_CANDIDATES + 5; i++) {
        k[i].id = 100 + i;
        k[i].category = gl_str_c("street_lights");
    }
    assert_int_equal(route_task_pack_begin(&w.pk, 5, 1), 0);
    assert_int_equal(route_task_pack_item(&w.pk, gl_str_of(raw.data, raw.size), k,
                                          ROUTE_MAX_CANDIDATES + 5), 0);
    wire_read(&w);
    assert_int_equal(route_task_unpack(&w.obj, &w.zone, &now, &items, &n, NULL), 0);
    assert_int_equal(items[0].n_candidates, ROUTE_MAX_CANDIDATES);
    assert_int_equal(items[0].candidates[ROUTE_MAX_CANDIDATES - 1].id,
                     100 + ROUTE_MAX_CANDIDATES - 1);
    assert_int_equal(route_task_pack_item(&w.pk, GL_STR_NULL, NULL, 0), -1);
    msgpack_sbuffer_destroy(&raw);
    wire_destroy(&w);
}

/* Packs a task of one item whose candidate is {id: 5, category, created_at} plus the
 * extra key/value pairs written by add, and expects it refused naming field. */
typedef void (*odd_fn)(msgpack_packer *pk);

static void
expect_task_refused(odd_fn add, int extra, const char *field)
{
    wire            w;
    case_record     c;
    msgpack_sbuffer raw;
    route_item     *items;
    uint32_t        n;
    int64_t         now;
    gl_error        err;

    wire_init(&w);
    case_fill(&c, 1);
    case_raw(&c, &raw);
    assert_int_equal(route_task_pack_begin(&w.pk, 5, 1), 0);
    msgpack_pack_map(&w.pk, 2);
    mp_pack_cstr(&w.pk, "case");
    w.pk.callback(w.pk.data, raw.data, raw.size);
    mp_pack_cstr(&w.pk, "candidates");
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_map(&w.pk, 3 + (uint32_t)extra);
    mp_pack_cstr(&w.pk, "id");
    msgpack_pack_uint64(&w.pk, 5);
    mp_pack_cstr(&w.pk, "category");
    mp_pack_cstr(&w.pk, "street_lights");
    mp_pack_cstr(&w.pk, "created_at");
    msgpack_pack_int64(&w.pk, 1);
    add(&w.pk);
    wire_read(&w);
    gl_error_clear(&err);
    assert_int_equal(route_task_unpack(&w.obj, &w.zone, &now, &items, &n, &err),
                     GL_EBAD_REQUEST);
    assert_int_equal(err.code, GL_EBAD_REQUEST);
    assert_string_equal(err.field, field);
    assert_null(items);
    assert_int_equal(n, 0);
    msgpack_sbuffer_destroy(&raw);
    wire_destroy(&w);
}

static void odd_lat_only(msgpack_packer *pk)
{
    mp_pack_cstr(pk, "lat");
    msgpack_pack_double(pk, 31.0);
}

static void odd_lon_out_of_range(msgpack_packer *pk)
{
    mp_pack_cstr(pk, "lat");
    msgpack_pack_double(pk, 31.0);
    mp_pack_cstr(pk, "lon");
    msgpack_pack_double(pk, 181.0);
}

static void odd_grid_number(msgpack_packer *pk)
{
    mp_pack_cstr(pk, "grid");
    msgpack_pack_int(pk, 7);
}

static void odd_duplicate_of_zero(msgpack_packer *pk)
{
    mp_pack_cstr(pk, "duplicate_of");
    msgpack_pack_uint64(pk, 0);
}

static void odd_unknown_key(msgpack_packer *pk)
{
    /* A newer daemon may send more: unknown keys are skipped. */
    mp_pack_cstr(pk, "future_key");
    msgpack_pack_nil(pk);
}

static void
test_bad_candidate_is_refused_naming_its_field(void **state)
{
    expect_task_refused(odd_lat_only, 1, "items[0].candidates[0].lat");
    expect_task_refused(odd_lon_out_of_range, 2, "items[0].candidates[0].lon");
    expect_task_refused(odd_grid_number, 1, "items[0].candidates[0].grid");
    expect_task_refused(odd_duplicate_of_zero, 1, "items[0].candidates[0].duplicate_of");
}

static void
test_unknown_candidate_key_is_ignored(void **state)
{
    wire            w;
    case_record     c;
    msgpack_sbuffer raw;
    route_item     *items;
    uint32_t        n;
    int64_t         now;

    wire_init(&w);
    case_fill(&c, 1);
    case_raw(&c, &raw);
    assert_int_equal(route_task_pack_begin(&w.pk, 5, 1), 0);
    msgpack_pack_map(&w.pk, 2);
    mp_pack_cstr(&w.pk, "case");
    w.pk.callback(w.pk.data, raw.data, raw.size);
    mp_pack_cstr(&w.pk, "candidates");
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_map(&w.pk, 4);
    mp_pack_cstr(&w.pk, "id");
    msgpack_pack_uint64(&w.pk, 5);
    mp_pack_cstr(&w.pk, "category");
    mp_pack_cstr(&w.pk, "street_lights");
    mp_pack_cstr(&w.pk, "created_at");
    msgpack_pack_int64(&w.pk, 1);
    odd_unknown_key(&w.pk);
    wire_read(&w);
    assert_int_equal(route_task_unpack(&w.obj, &w.zone, &now, &items, &n, NULL), 0);
    assert_int_equal(items[0].candidates[0].id, 5);
    msgpack_sbuffer_destroy(&raw);
    wire_destroy(&w);
}

/* Unpacks a task written as raw MessagePack bytes and expects field refused. */
static void
expect_raw_refused(const char *bytes, size_t len, const char *field)
{
    msgpack_zone   zone;
    msgpack_object o;
    route_item    *items;
    uint32_t       n;
    int64_t        now;
    gl_error       err;

    assert_true(msgpack_zone_init(&zone, 1024));
    assert_int_equal(mp_unpack(bytes, len, &zone, &o), 0);
    gl_error_clear(&err);
    assert_int_equal(route_task_unpack(&o, &zone, &now, &items, &n, &err), GL_EBAD_REQUEST);
    assert_string_equal(err.field, field);
    msgpack_zone_destroy(&zone);
}

static void
test_bad_task_shape_is_refused_naming_its_field(void **state)
{
    wire         w;
    case_record  c;
    uint32_t     i;

    /* [] is not a map; {} lacks now; {now: "x"}; {now: 1, items: {}}. */
    expect_raw_refused("\x90", 1, "");
    expect_raw_refused("\x80", 1, "now");
    expect_raw_refused("\x81\xa3now\xa1x", 7, "now");
    expect_raw_refused("\x82\xa3now\x01\xa5items\x80", 13, "items");
    /* {now: 1, items: [1]}; {now: 1, items: [{}]} */
    expect_raw_refused("\x82\xa3now\x01\xa5items\x91\x01", 14, "items[0]");
    expect_raw_refused("\x82\xa3now\x01\xa5items\x91\x80", 14, "items[0].case");

    /* Too many items: refused on the count, before any is read. */
    wire_init(&w);
    assert_int_equal(route_task_pack_begin(&w.pk, 1, ROUTE_MAX_ITEMS + 1), 0);
    for (i = 0; i < ROUTE_MAX_ITEMS + 1; i++) {
        msgpack_pack_nil(&w.pk);
    }
    expect_raw_refused(w.buf.data, w.buf.size, "items");
    wire_destroy(&w);

    /* A case without a version; then one without candidates. */
    wire_init(&w);
    case_fill(&c, 1);
    c.version = 0;
    route_task_pack_begin(&w.pk, 1, 1);
    msgpack_pack_map(&w.pk, 2);
    mp_pack_cstr(&w.pk, "case");
    case_record_pack(&w.pk, &c, 0);
    mp_pack_cstr(&w.pk, "candidates");
    msgpack_pack_array(&w.pk, 0);
    expect_raw_refused(w.buf.data, w.buf.size, "items[0].case");
    wire_destroy(&w);

    wire_init(&w);
    case_fill(&c, 1);
    route_task_pack_begin(&w.pk, 1, 1);
    msgpack_pack_map(&w.pk, 1);
    mp_pack_cstr(&w.pk, "case");
    case_record_pack(&w.pk, &c, 0);
    expect_raw_refused(w.buf.data, w.buf.size, "items[0].candidates");
    wire_destroy(&w);

    /* More candidates than a task may carry. */
    wire_init(&w);
    route_task_pack_begin(&w.pk, 1, 1);
    msgpack_pack_map(&w.pk, 2);
    mp_pack_cstr(&w.pk, "case");
    case_record_pack(&w.pk, &c, 0);
    mp_pack_cstr(&w.pk, "candidates");
    msgpack_pack_array(&w.pk, ROUTE_MAX_CANDIDATES + 1);
    for (i = 0; i < ROUTE_MAX_CANDIDATES + 1; i++) {
        msgpack_pack_nil(&w.pk);
    }
    expect_raw_refused(w.buf.data, w.buf.size, "items[0].candidates");
    wire_destroy(&w);
}

/* ---- the decisions --------------------------------------------------------------- */

static void
test_decisions_round_trip(void **state)
{
    wire           w;
    route_decision d[2], out[4];
    uint32_t       n;

    wire_init(&w);
    memset(d, 0, sizeof d);
    d[0].id = 42;
    d[0].version = 3;
    d[0].unit = gl_str_c("D01-HOUSING");
    d[0].reason = gl_str_c("rule: street_lights in D01");
    d[1].id = 43;
    d[1].version = 1;
    d[1].unit = gl_str_c("CITY-SUPERVISION");
    d[1].duplicate_of = 42;
    assert_int_equal(route_decisions_pack(&w.pk, d, 2), 0);
    wire_read(&w);
    assert_int_equal(route_decisions_unpack(&w.obj, out, 4, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 42);
    assert_int_equal(out[0].version, 3);
    assert_true(str_is(out[0].unit, "D01-HOUSING"));
    assert_int_equal(out[0].duplicate_of, 0);
    assert_true(str_is(out[0].reason, "rule: street_lights in D01"));
    assert_int_equal(out[1].duplicate_of, 42);
    assert_int_equal(out[1].reason.n, 0);
    wire_destroy(&w);
}

/* One decision map: id, version, unit, and duplicate_of when dup >= 0 (0 packs 0). */
static void
pack_decision(msgpack_packer *pk, uint64_t id, uint64_t version, const char *unit, int dup)
{
    msgpack_pack_map(pk, dup >= 0 ? 4 : 3);
    mp_pack_cstr(pk, "id");
    msgpack_pack_uint64(pk, id);
    mp_pack_cstr(pk, "version");
    msgpack_pack_uint64(pk, version);
    mp_pack_cstr(pk, "unit");
    if (unit != NULL) {
        mp_pack_cstr(pk, unit);
    } else {
        msgpack_pack_nil(pk);
    }
    if (dup >= 0) {
        mp_pack_cstr(pk, "duplicate_of");
        msgpack_pack_uint64(pk, (uint64_t)dup);
    }
}

static void
test_malformed_decisions_are_skipped_and_the_rest_kept(void **state)
{
    wire           w;
    route_decision out[8];
    uint32_t       n;

    wire_init(&w);
    msgpack_pack_map(&w.pk, 1);
    mp_pack_cstr(&w.pk, "decisions");
    msgpack_pack_array(&w.pk, 8);
    pack_decision(&w.pk, 1, 1, "U1", -1);     /* good */
    pack_decision(&w.pk, 0, 1, "U1", -1);     /* id 0 */
    pack_decision(&w.pk, 2, 0, "U1", -1);     /* version 0 */
    pack_decision(&w.pk, 3, 1, NULL, -1);     /* no unit */
    pack_decision(&w.pk, 4, 1, "", -1);       /* empty unit */
    pack_decision(&w.pk, 5, 1, "U1", 5);      /* a duplicate of itself */
    msgpack_pack_int(&w.pk, 7);               /* not a map */
    pack_decision(&w.pk, 6, 2, "U2", 1);      /* good */
    wire_read(&w);
    assert_int_equal(route_decisions_unpack(&w.obj, out, 8, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[1].id, 6);
    assert_int_equal(out[1].duplicate_of, 1);
    /* cap bounds what is read. */
    assert_int_equal(route_decisions_unpack(&w.obj, out, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    wire_destroy(&w);
}

static void
test_reply_that_is_no_decisions_map_is_refused(void **state)
{
    wire           w;
    route_decision out[2];
    uint32_t       n = 9;
    gl_error       err;

    wire_init(&w);
    msgpack_pack_map(&w.pk, 1);
    mp_pack_cstr(&w.pk, "error");
    mp_pack_cstr(&w.pk, "items[0].case: is missing or not a map");
    wire_read(&w);
    gl_error_clear(&err);
    assert_int_equal(route_decisions_unpack(&w.obj, out, 2, &n, &err), GL_EBAD_REQUEST);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.message, "refused the task: items[0].case"));
    wire_destroy(&w);

    wire_init(&w);
    msgpack_pack_array(&w.pk, 0);
    wire_read(&w);
    assert_int_equal(route_decisions_unpack(&w.obj, out, 2, &n, &err), GL_EBAD_REQUEST);
    wire_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_round_trips_cases_and_candidates),
        cmocka_unit_test(test_empty_task_reads_as_no_items),
        cmocka_unit_test(test_pack_item_keeps_the_oldest_candidates_and_refuses_an_empty_case),
        cmocka_unit_test(test_bad_candidate_is_refused_naming_its_field),
        cmocka_unit_test(test_unknown_candidate_key_is_ignored),
        cmocka_unit_test(test_bad_task_shape_is_refused_naming_its_field),
        cmocka_unit_test(test_decisions_round_trip),
        cmocka_unit_test(test_malformed_decisions_are_skipped_and_the_rest_kept),
        cmocka_unit_test(test_reply_that_is_no_decisions_map_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
