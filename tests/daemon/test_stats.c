/*
 * stats: stats.query over a real store, checked against a hand count.
 *
 * Cases are taken through the loop with the store's own calls (create, dispatch,
 * case.act actions) at times the test chooses, each relative to the deadlines the case
 * was given, so that which ones are in time is known by construction: exactly at a
 * deadline is in time, a millisecond after is late. The reply is unpacked and every
 * count and rate of every row compared with the count written out by hand in the test;
 * also the nil of a rate without a denominator, the ends of the created range, the
 * cases without a value for the key, the bound on the cases one query may scan, and the
 * stars of communities against thresholds set in the test.
 */
#include "stats.h"
#include "store.h"
#include "store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define T0    1795564800000LL   /* 2026-11-25T00:00:00Z */
#define MIN_MS 60000LL

typedef struct {
    char            *dir;
    store           *s;
    city            *c;
    int64_t          clock;      /* the time of the last change: every change is later */
    int              n;          /* cases created */
    msgpack_sbuffer  out;        /* the last reply */
    msgpack_zone     zone;
    msgpack_object   reply;
} fixture;

static const store_options opts = { 64ULL << 20, "GL", 0, 0 };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    f->dir = fixture_tmpdir();
    f->s = store_new(f->dir, &opts, err, sizeof err);
    if (f->s == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->c = city_new(NULL, err, sizeof err);
    if (f->c == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->clock = T0;
    msgpack_sbuffer_init(&f->out);
    msgpack_zone_init(&f->zone, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    msgpack_sbuffer_destroy(&f->out);
    msgpack_zone_destroy(&f->zone);
    city_destroy(&f->c);
    store_destroy(&f->s);
    fixture_rmdir(f->dir);
    free(f);
    return 0;
}

/* --- driving cases --- */

typedef struct {
    const char *district, *street, *community, *category;
} place;

static const place P_C1 = { "D01", "D01-S01", "D01-S01-C01", "water_supply" };
static const place P_C2 = { "D01", "D01-S01", "D01-S01-C02", "water_supply" };
static const place P_C3 = { "D01", "D01-S02", "D01-S02-C01", "sewers" };
static const place P_C4 = { "D01", "D01-S02", "D01-S02-C02", "sewers" };
static const place P_C5 = { "D02", "D02-S01", "D02-S01-C01", "water_supply" };
static const place P_D03 = { "D03", NULL, NULL, "roads" };
static const place P_NOCAT = { "D02", "D02-S02", NULL, NULL };

/* Registers a case at `at` (or one ms after the last change if at is 0); its id. */
static uint64_t create_at(fixture *f, const place *p, int64_t at)
{
    char key[32];
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    snprintf(key, sizeof key, "k%d", ++f->n);
    request_create r = fixture_request(key, p->district, p->category, "13800000000");
    r.location.street = gl_str_c(p->street);
    r.location.community = gl_str_c(p->community);
    f->clock = at != 0 ? at : f->clock + 1;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_create(t, gl_str_c("dev"), &r, f->clock, &out, &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
    free(out.data);
    return out.id;
}

static uint64_t create(fixture *f, const place *p)
{
    return create_at(f, p, 0);
}

/* The case as stored now (strings in f->zone). */
static case_record get(fixture *f, uint64_t id)
{
    store_reader *r = NULL;
    gl_str raw;
    msgpack_object o;
    case_record c;
    assert_int_equal(store_read_begin(f->s, &r), 0);
    assert_int_equal(store_read_case(r, id, &raw), 0);
    char *copy = msgpack_zone_malloc(&f->zone, raw.n);
    memcpy(copy, raw.p, raw.n);
    store_read_end(&r);
    assert_int_equal(mp_unpack(copy, raw.n, &f->zone, &o), 0);
    assert_int_equal(case_record_unpack(&o, &c), 0);
    return c;
}

static void dispatch(fixture *f, uint64_t id, const char *unit)
{
    store_txn *t = NULL;
    gl_error err;
    case_record c = get(f, id);
    route_decision d;
    memset(&d, 0, sizeof d);
    d.id = id;
    d.version = c.version;
    d.unit = gl_str_c(unit);
    d.reason = gl_str_c("test");
    f->clock += MIN_MS;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_dispatch(t, f->c, &d, f->clock, gl_str_c("router"), &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
}

/* Takes action a at `at`: the case's own time for it. */
static void act_at(fixture *f, uint64_t id, case_action a, int64_t at, case_satisfaction sat)
{
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    request_act r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.action = a;
    r.reply = gl_str_c("done");
    r.reason = gl_str_c("not ours");
    r.satisfaction = sat;
    if (at > f->clock) {
        f->clock = at;
    }
    assert_int_equal(store_write_begin(f->s, &t), 0);
    store_actor dev = { gl_str_c("dev"), NULL, NULL };
    int rc = store_case_act(t, f->c, &r, &dev, at, &out, &err);
    if (rc != 0) {
        fail_msg("%s on case %llu: %s", case_action_name(a), (unsigned long long)id,
                 err.message);
    }
    assert_int_equal(store_write_commit(&t), 0);
    free(out.data);
}

/* Signed for exactly at accept_by (in time) or a millisecond after it (late). */
static void accept_case(fixture *f, uint64_t id, bool in_time)
{
    case_record c = get(f, id);
    assert_true(c.accept_by > 0);
    act_at(f, id, ACT_ACCEPT, in_time ? c.accept_by : c.accept_by + 1, SATISFACTION_NONE);
}

static void resolve_case(fixture *f, uint64_t id, bool in_time)
{
    case_record c = get(f, id);
    assert_true(c.resolve_by > 0);
    act_at(f, id, ACT_RESOLVE, in_time ? c.resolve_by : c.resolve_by + 1, SATISFACTION_NONE);
}

static void act(fixture *f, uint64_t id, case_action a, case_satisfaction sat)
{
    act_at(f, id, a, f->clock + MIN_MS, sat);
}

/* A case through the whole loop to closed (or reopened, for unsatisfied). */
static uint64_t full_loop(fixture *f, const place *p, const char *unit, bool accept_in_time,
                          bool resolve_in_time, case_satisfaction sat)
{
    uint64_t id = create(f, p);
    dispatch(f, id, unit);
    accept_case(f, id, accept_in_time);
    resolve_case(f, id, resolve_in_time);
    if (sat != SATISFACTION_NONE) {
        act(f, id, ACT_CALLBACK, sat);
    }
    return id;
}

/* --- querying --- */

static int query_max(fixture *f, stats_group by, int64_t from, int64_t to, uint32_t max,
                     gl_error *err)
{
    request_stats q;
    msgpack_packer pk;
    memset(&q, 0, sizeof q);
    q.group_by = by;
    q.has_from = from != INT64_MIN;
    q.from = from;
    q.has_to = to != INT64_MAX;
    q.to = to;
    msgpack_sbuffer_clear(&f->out);
    msgpack_packer_init(&pk, &f->out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, STATS_REPLY_PAIRS);
    gl_error_clear(err);
    int rc = stats_query(f->s, f->c, &q, max, &pk, err);
    if (rc == 0) {
        assert_int_equal(mp_unpack(f->out.data, f->out.size, &f->zone, &f->reply), 0);
        assert_int_equal(f->reply.via.map.size, STATS_REPLY_PAIRS);
    }
    return rc;
}

static void query(fixture *f, stats_group by, int64_t from, int64_t to)
{
    gl_error err;
    int rc = query_max(f, by, from, to, STATS_MAX_CASES, &err);
    if (rc != 0) {
        fail_msg("stats_query: %s", err.message);
    }
}

static const msgpack_object *rows(fixture *f)
{
    const msgpack_object *r = mp_map_get(&f->reply, "rows");
    assert_non_null(r);
    assert_int_equal(r->type, MSGPACK_OBJECT_ARRAY);
    return r;
}

static const msgpack_object *row(fixture *f, const char *key)
{
    const msgpack_object *r = rows(f);
    for (uint32_t i = 0; i < r->via.array.size; i++) {
        const msgpack_object *k = mp_map_get(&r->via.array.ptr[i], "key");
        if (k != NULL && gl_str_eq(gl_str_of(k->via.str.ptr, k->via.str.size), key)) {
            return &r->via.array.ptr[i];
        }
    }
    fail_msg("no row %s", key);
    return NULL;
}

static uint64_t u64(const msgpack_object *m, const char *key)
{
    const msgpack_object *o = mp_map_get(m, key);
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return o->via.u64;
}

static bool is_nil(const msgpack_object *m, const char *key)
{
    const msgpack_object *o = mp_map_get(m, key);
    assert_non_null(o);
    return o->type == MSGPACK_OBJECT_NIL;
}

/* A row's counts as counted by hand. */
typedef stats_counts hand;

static void assert_counts(const msgpack_object *r, hand h)
{
    assert_int_equal(u64(r, "received"), h.received);
    assert_int_equal(u64(r, "dispatched"), h.dispatched);
    assert_int_equal(u64(r, "accepted_in_time"), h.accepted_in_time);
    assert_int_equal(u64(r, "resolved"), h.resolved);
    assert_int_equal(u64(r, "resolved_on_time"), h.resolved_on_time);
    assert_int_equal(u64(r, "resolved_or_closed"), h.resolved_or_closed);
    assert_int_equal(u64(r, "closed"), h.closed);
    assert_int_equal(u64(r, "callbacks"), h.callbacks);
    assert_int_equal(u64(r, "satisfied"), h.satisfied);
    assert_int_equal(u64(r, "basically_satisfied"), h.basically_satisfied);
    assert_int_equal(u64(r, "unsatisfied"), h.unsatisfied);
}

/* A rate: num / den, or nil when den is 0. */
static void assert_rate(const msgpack_object *r, const char *name, uint64_t num, uint64_t den)
{
    const msgpack_object *o = mp_map_get(r, name);
    assert_non_null(o);
    if (den == 0) {
        assert_int_equal(o->type, MSGPACK_OBJECT_NIL);
        return;
    }
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    if (o->via.f64 != (double)num / (double)den) {
        fail_msg("%s is %.17g, not %llu/%llu", name, o->via.f64, (unsigned long long)num,
                 (unsigned long long)den);
    }
}

/* The four rates from the counts, by the definitions of protocol.md. */
static void assert_rates(const msgpack_object *r, hand h)
{
    assert_rate(r, "response_rate", h.accepted_in_time, h.dispatched);
    assert_rate(r, "on_time_rate", h.resolved_on_time, h.resolved);
    assert_rate(r, "resolution_rate", h.resolved_or_closed, h.received);
    assert_rate(r, "satisfaction_rate", h.satisfied + h.basically_satisfied, h.callbacks);
}

static void assert_row(fixture *f, const char *key, hand h)
{
    const msgpack_object *r = row(f, key);
    assert_counts(r, h);
    assert_rates(r, h);
}

/* --- a store with a known mix of cases --- */

#define UNIT_A "D01-S01-OFFICE"
#define UNIT_B "D01-S02-OFFICE"

/*
 * Cases, in id (and created) order:
 *   1  created at T0 - 1, before the range; registered          D01 S01 C01
 *   2  A: in time, on time, satisfied -> closed                 D01 S01 C01
 *   3  A: late, late, basically satisfied -> closed             D01 S01 C01
 *   4  A: in time, on time, unsatisfied -> reopened (dispatched) D01 S01 C02
 *   5  A: dispatched, never signed for                          D01 S01 C02
 *   6  B: in time, on time, resolved, no callback yet           D01 S02 C01
 *   7  never dispatched (no unit)                               D03, no street
 *   8  B: dispatched, then returned (no unit again)             D01 S02 C02
 *   9  created at range_to: after the range; registered         D01 S01 C01
 */
typedef struct {
    int64_t from, to;
} range;

static range seed(fixture *f)
{
    range rg;
    create_at(f, &P_C1, T0 - 1);
    rg.from = T0;
    create_at(f, &P_C1, T0);                   /* 2: exactly at from: in the range */
    dispatch(f, 2, UNIT_A);
    accept_case(f, 2, true);
    resolve_case(f, 2, true);
    act(f, 2, ACT_CALLBACK, SATISFACTION_SATISFIED);
    full_loop(f, &P_C1, UNIT_A, false, false, SATISFACTION_BASICALLY_SATISFIED);   /* 3 */
    full_loop(f, &P_C2, UNIT_A, true, true, SATISFACTION_UNSATISFIED);             /* 4 */
    uint64_t id = create(f, &P_C2);                                                /* 5 */
    dispatch(f, id, UNIT_A);
    full_loop(f, &P_C3, UNIT_B, true, true, SATISFACTION_NONE);                    /* 6 */
    create(f, &P_D03);                                                             /* 7 */
    id = create(f, &P_C4);                                                         /* 8 */
    dispatch(f, id, UNIT_B);
    act(f, id, ACT_RETURN, SATISFACTION_NONE);
    rg.to = f->clock + 1;
    create_at(f, &P_C1, rg.to);                /* 9: exactly at to: outside */
    return rg;
}

/* --- tests --- */

static void test_rows_by_unit_match_the_hand_count(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_UNIT, rg.from, rg.to);
    assert_int_equal(rows(f)->via.array.size, 2);
    /* A: cases 2, 3, 4, 5. Signed for in time: 2, 4 (4's accepted_at is before the new
     * accept_by its reopening set). Resolved: 2, 3, 4; on time 2, 4. Resolved or closed
     * now: 2, 3. Callbacks: 2 satisfied, 3 basically, 4 unsatisfied. */
    assert_row(f, UNIT_A, (hand){ .received = 4, .dispatched = 4, .accepted_in_time = 2,
                                  .resolved = 3, .resolved_on_time = 2,
                                  .resolved_or_closed = 2, .closed = 2, .callbacks = 3,
                                  .satisfied = 1, .basically_satisfied = 1,
                                  .unsatisfied = 1 });
    /* B: case 6 only (8 was returned: no unit). No callback: satisfaction_rate nil. */
    assert_row(f, UNIT_B, (hand){ .received = 1, .dispatched = 1, .accepted_in_time = 1,
                                  .resolved = 1, .resolved_on_time = 1,
                                  .resolved_or_closed = 1 });
    assert_true(is_nil(row(f, UNIT_B), "satisfaction_rate"));
    /* 7 (never dispatched) and 8 (returned) have no unit. */
    assert_int_equal(u64(&f->reply, "ungrouped"), 2);
}

static void test_rates_are_the_hand_counted_fractions(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_UNIT, rg.from, rg.to);
    const msgpack_object *a = row(f, UNIT_A);
    assert_true(mp_map_get(a, "response_rate")->via.f64 == 0.5);
    assert_true(mp_map_get(a, "on_time_rate")->via.f64 == 2.0 / 3.0);
    assert_true(mp_map_get(a, "resolution_rate")->via.f64 == 0.5);
    assert_true(mp_map_get(a, "satisfaction_rate")->via.f64 == 2.0 / 3.0);
    const msgpack_object *b = row(f, UNIT_B);
    assert_true(mp_map_get(b, "response_rate")->via.f64 == 1.0);
    assert_true(mp_map_get(b, "on_time_rate")->via.f64 == 1.0);
    assert_true(mp_map_get(b, "resolution_rate")->via.f64 == 1.0);
}

static void test_rows_by_district_count_returned_and_undispatched_cases(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_DISTRICT, rg.from, rg.to);
    assert_int_equal(rows(f)->via.array.size, 2);
    /* D01: 2, 3, 4, 5, 6, 8; 8 was dispatched once (dispatched_at stays). */
    assert_row(f, "D01", (hand){ .received = 6, .dispatched = 6, .accepted_in_time = 3,
                                 .resolved = 4, .resolved_on_time = 3,
                                 .resolved_or_closed = 3, .closed = 2, .callbacks = 3,
                                 .satisfied = 1, .basically_satisfied = 1,
                                 .unsatisfied = 1 });
    /* D03: case 7, never dispatched: three rates without a denominator. */
    assert_row(f, "D03", (hand){ .received = 1 });
    const msgpack_object *d3 = row(f, "D03");
    assert_true(is_nil(d3, "response_rate"));
    assert_true(is_nil(d3, "on_time_rate"));
    assert_true(is_nil(d3, "satisfaction_rate"));
    assert_true(mp_map_get(d3, "resolution_rate")->via.f64 == 0.0);
    assert_int_equal(u64(&f->reply, "ungrouped"), 0);
    /* No stars but by community. */
    assert_null(mp_map_get(d3, "stars"));
}

static void test_rows_by_category_street_and_community(void **state)
{
    fixture *f = *state;
    range rg = seed(f);

    query(f, STATS_BY_CATEGORY, rg.from, rg.to);
    assert_int_equal(rows(f)->via.array.size, 3);
    assert_row(f, "water_supply", (hand){ .received = 4, .dispatched = 4,
                                          .accepted_in_time = 2, .resolved = 3,
                                          .resolved_on_time = 2, .resolved_or_closed = 2,
                                          .closed = 2, .callbacks = 3, .satisfied = 1,
                                          .basically_satisfied = 1, .unsatisfied = 1 });
    assert_row(f, "sewers", (hand){ .received = 2, .dispatched = 2, .accepted_in_time = 1,
                                    .resolved = 1, .resolved_on_time = 1,
                                    .resolved_or_closed = 1 });
    assert_row(f, "roads", (hand){ .received = 1 });

    query(f, STATS_BY_STREET, rg.from, rg.to);
    assert_int_equal(rows(f)->via.array.size, 2);
    assert_int_equal(u64(row(f, "D01-S01"), "received"), 4);
    assert_row(f, "D01-S02", (hand){ .received = 2, .dispatched = 2, .accepted_in_time = 1,
                                     .resolved = 1, .resolved_on_time = 1,
                                     .resolved_or_closed = 1 });
    assert_int_equal(u64(&f->reply, "ungrouped"), 1);      /* 7: no street */

    query(f, STATS_BY_COMMUNITY, rg.from, rg.to);
    assert_int_equal(rows(f)->via.array.size, 4);
    assert_row(f, "D01-S01-C01", (hand){ .received = 2, .dispatched = 2,
                                         .accepted_in_time = 1, .resolved = 2,
                                         .resolved_on_time = 1, .resolved_or_closed = 2,
                                         .closed = 2, .callbacks = 2, .satisfied = 1,
                                         .basically_satisfied = 1 });
    assert_row(f, "D01-S01-C02", (hand){ .received = 2, .dispatched = 2,
                                         .accepted_in_time = 1, .resolved = 1,
                                         .resolved_on_time = 1, .callbacks = 1,
                                         .unsatisfied = 1 });
    assert_row(f, "D01-S02-C02", (hand){ .received = 1, .dispatched = 1 });
    assert_int_equal(u64(&f->reply, "ungrouped"), 1);
}

static void test_rows_are_sorted_by_key_and_named_from_the_catalogue(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_COMMUNITY, rg.from, rg.to);
    const msgpack_object *r = rows(f);
    for (uint32_t i = 1; i < r->via.array.size; i++) {
        const msgpack_object *a = mp_map_get(&r->via.array.ptr[i - 1], "key");
        const msgpack_object *b = mp_map_get(&r->via.array.ptr[i], "key");
        assert_true(a->via.str.size == b->via.str.size);
        assert_true(memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) < 0);
    }
    const msgpack_object *name = mp_map_get(row(f, "D01-S01-C01"), "name");
    assert_int_equal(name->type, MSGPACK_OBJECT_STR);
    int p = city_place_find(f->c, gl_str_c("D01-S01-C01"));
    assert_true(gl_str_eq(gl_str_of(name->via.str.ptr, name->via.str.size),
                          f->c->places[p].name));
}

static void test_the_reply_echoes_the_query(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_CATEGORY, rg.from, rg.to);
    const msgpack_object *by = mp_map_get(&f->reply, "group_by");
    assert_true(gl_str_eq(gl_str_of(by->via.str.ptr, by->via.str.size), "category"));
    assert_int_equal(mp_map_get(&f->reply, "from")->via.i64, rg.from);
    assert_int_equal(mp_map_get(&f->reply, "to")->via.i64, rg.to);
    query(f, STATS_BY_CATEGORY, INT64_MIN, INT64_MAX);
    assert_true(is_nil(&f->reply, "from"));
    assert_true(is_nil(&f->reply, "to"));
}

static void test_from_is_inclusive_and_to_exclusive(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    /* Case 1 (T0 - 1) and 9 (at to) are D01-S01-C01, registered: every range that
     * holds them adds to received alone. */
    query(f, STATS_BY_DISTRICT, INT64_MIN, INT64_MAX);
    assert_int_equal(u64(row(f, "D01"), "received"), 8);
    assert_int_equal(u64(row(f, "D01"), "dispatched"), 6);
    query(f, STATS_BY_DISTRICT, rg.from, INT64_MAX);
    assert_int_equal(u64(row(f, "D01"), "received"), 7);
    query(f, STATS_BY_DISTRICT, INT64_MIN, rg.to);
    assert_int_equal(u64(row(f, "D01"), "received"), 7);
    query(f, STATS_BY_DISTRICT, rg.from - 1, rg.to + 1);
    assert_int_equal(u64(row(f, "D01"), "received"), 8);
    query(f, STATS_BY_DISTRICT, rg.from + 1, rg.to);  /* case 2 (at T0) drops out */
    assert_int_equal(u64(row(f, "D01"), "received"), 5);
    assert_int_equal(u64(row(f, "D01"), "closed"), 1);
    /* Only case 9. */
    query(f, STATS_BY_DISTRICT, rg.to, rg.to + 1);
    assert_int_equal(rows(f)->via.array.size, 1);
    assert_row(f, "D01", (hand){ .received = 1 });
}

static void test_an_empty_range_has_no_rows(void **state)
{
    fixture *f = *state;
    range rg = seed(f);
    query(f, STATS_BY_UNIT, rg.to + 1, rg.to + 1000);
    assert_int_equal(rows(f)->via.array.size, 0);
    assert_int_equal(u64(&f->reply, "ungrouped"), 0);
    query(f, STATS_BY_UNIT, 0, T0 - 1);
    assert_int_equal(rows(f)->via.array.size, 0);
}

static void test_an_empty_store_has_no_rows(void **state)
{
    fixture *f = *state;
    query(f, STATS_BY_COMMUNITY, INT64_MIN, INT64_MAX);
    assert_int_equal(rows(f)->via.array.size, 0);
}

static void test_a_range_with_more_cases_than_the_bound_is_refused(void **state)
{
    fixture *f = *state;
    gl_error err;
    range rg = seed(f);
    /* 7 cases in the range: a bound of 7 lets it through, 6 does not. */
    assert_int_equal(query_max(f, STATS_BY_UNIT, rg.from, rg.to, 7, &err), 0);
    assert_int_equal(query_max(f, STATS_BY_UNIT, rg.from, rg.to, 6, &err), GL_EINVALID);
    assert_string_equal(err.field, "from");
    assert_non_null(strstr(err.message, "more than 6 cases"));
    assert_non_null(strstr(err.message, "narrower range"));
    /* A narrower range passes. */
    assert_int_equal(query_max(f, STATS_BY_UNIT, rg.from + 1, rg.to, 6, &err), 0);
}

/* --- stars --- */

static void set_stars(city *c, int n, double rate, uint32_t min_cases)
{
    city_stars *t = &c->stars[n - CITY_STARS_MIN];
    t->response_rate = rate;
    t->on_time_rate = rate;
    t->satisfaction_rate = rate;
    t->min_cases = min_cases;
}

static int64_t stars_of(fixture *f, const char *community)
{
    const msgpack_object *s = mp_map_get(row(f, community), "stars");
    assert_non_null(s);
    return s->type == MSGPACK_OBJECT_NIL ? 0 : (int64_t)s->via.u64;
}

static void test_communities_get_the_stars_of_the_highest_level_reached(void **state)
{
    fixture *f = *state;
    set_stars(f->c, 5, 1.0, 3);
    set_stars(f->c, 4, 0.75, 2);
    set_stars(f->c, 3, 0.5, 1);
    /* C1: three perfect cases: 5. */
    for (int i = 0; i < 3; i++) {
        full_loop(f, &P_C1, UNIT_A, true, true, SATISFACTION_SATISFIED);
    }
    /* C2: two perfect cases: every rate 1, but 2 < 3 cases: 4. */
    for (int i = 0; i < 2; i++) {
        full_loop(f, &P_C2, UNIT_A, true, true, SATISFACTION_BASICALLY_SATISFIED);
    }
    /* C3: one perfect, one signed for late: response 0.5: 3. */
    full_loop(f, &P_C3, UNIT_B, true, true, SATISFACTION_SATISFIED);
    full_loop(f, &P_C3, UNIT_B, false, true, SATISFACTION_SATISFIED);
    /* C4: one case, unsatisfied: satisfaction 0: none. */
    full_loop(f, &P_C4, UNIT_B, true, true, SATISFACTION_UNSATISFIED);
    /* C5: one case resolved, no callback yet: satisfaction nil meets no threshold. */
    full_loop(f, &P_C5, "D02-S01-OFFICE", true, true, SATISFACTION_NONE);
    /* A case without a community is in no row. */
    create(f, &P_NOCAT);

    query(f, STATS_BY_COMMUNITY, INT64_MIN, INT64_MAX);
    assert_int_equal(rows(f)->via.array.size, 5);
    assert_int_equal(stars_of(f, "D01-S01-C01"), 5);
    assert_int_equal(stars_of(f, "D01-S01-C02"), 4);
    assert_int_equal(stars_of(f, "D01-S02-C01"), 3);
    assert_int_equal(stars_of(f, "D01-S02-C02"), 0);
    assert_int_equal(stars_of(f, "D02-S01-C01"), 0);
    assert_int_equal(u64(&f->reply, "ungrouped"), 1);

    /* Raise four's bar above C2's count: C2 falls to three. */
    set_stars(f->c, 4, 0.75, 3);
    set_stars(f->c, 5, 1.0, 4);
    query(f, STATS_BY_COMMUNITY, INT64_MIN, INT64_MAX);
    assert_int_equal(stars_of(f, "D01-S01-C01"), 4);
    assert_int_equal(stars_of(f, "D01-S01-C02"), 3);
}

static void test_stars_from_counts(void **state)
{
    fixture *f = *state;
    set_stars(f->c, 5, 0.95, 20);
    set_stars(f->c, 4, 0.9, 10);
    set_stars(f->c, 3, 0.8, 5);
    /* 19 of 20 on every rate: exactly 0.95 reaches five. */
    stats_counts k = { .received = 20, .dispatched = 20, .accepted_in_time = 19,
                       .resolved = 20, .resolved_on_time = 19, .callbacks = 20,
                       .satisfied = 10, .basically_satisfied = 9, .unsatisfied = 1 };
    assert_int_equal(stats_stars(f->c, &k), 5);
    k.accepted_in_time = 18;                   /* 0.9 */
    assert_int_equal(stats_stars(f->c, &k), 4);
    k.accepted_in_time = 15;                   /* 0.75 */
    assert_int_equal(stats_stars(f->c, &k), 0);
    k.accepted_in_time = 20;
    k.received = 9;                            /* fewer cases than four asks */
    assert_int_equal(stats_stars(f->c, &k), 3);
    k.received = 4;
    assert_int_equal(stats_stars(f->c, &k), 0);
    /* Nothing called back: satisfaction is nil and meets no threshold above 0 ... */
    stats_counts none = { .received = 30, .dispatched = 30, .accepted_in_time = 30,
                          .resolved = 30, .resolved_on_time = 30 };
    assert_int_equal(stats_stars(f->c, &none), 0);
    /* ... and a threshold of 0 asks for nothing. */
    f->c->stars[0].satisfaction_rate = 0.0;
    assert_int_equal(stats_stars(f->c, &none), 3);
}

static void test_count_case_follows_the_fields_as_they_are(void **state)
{
    (void)state;
    stats_counts k;
    case_record c;
    memset(&k, 0, sizeof k);
    memset(&c, 0, sizeof c);
    /* Returned after being signed for: no accept_by any more, so not in time. */
    c.state = CASE_RETURNED;
    c.dispatched_at = T0;
    c.accepted_at = T0 + 10;
    stats_count_case(&k, &c);
    assert_int_equal(k.received, 1);
    assert_int_equal(k.dispatched, 1);
    assert_int_equal(k.accepted_in_time, 0);
    /* Resolved, reopened and dispatched again: resolved stays counted. */
    memset(&c, 0, sizeof c);
    c.state = CASE_DISPATCHED;
    c.dispatched_at = T0;
    c.accept_by = T0 + 100;
    c.accepted_at = T0 + 100;
    c.resolve_by = T0 + 1000;
    c.resolved_at = T0 + 1001;
    c.satisfaction = SATISFACTION_UNSATISFIED;
    stats_count_case(&k, &c);
    assert_int_equal(k.accepted_in_time, 1);
    assert_int_equal(k.resolved, 1);
    assert_int_equal(k.resolved_on_time, 0);
    assert_int_equal(k.resolved_or_closed, 0);
    assert_int_equal(k.callbacks, 1);
    assert_int_equal(k.unsatisfied, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_rows_by_unit_match_the_hand_count),
        T(test_rates_are_the_hand_counted_fractions),
        T(test_rows_by_district_count_returned_and_undispatched_cases),
        T(test_rows_by_category_street_and_community),
        T(test_rows_are_sorted_by_key_and_named_from_the_catalogue),
        T(test_the_reply_echoes_the_query),
        T(test_from_is_inclusive_and_to_exclusive),
        T(test_an_empty_range_has_no_rows),
        T(test_an_empty_store_has_no_rows),
        T(test_a_range_with_more_cases_than_the_bound_is_refused),
        T(test_communities_get_the_stars_of_the_highest_level_reached),
        T(test_stars_from_counts),
        T(test_count_case_follows_the_fields_as_they_are),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
