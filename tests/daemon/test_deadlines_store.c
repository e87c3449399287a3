/*
 * test_deadlines_store: the deadline index of the store (daemon/store.h:
 * store_case_deadline, store_next_deadline, store_due_deadlines) on the built-in city.
 *
 * A dispatched case has three deadlines (warn_at, accept_by, resolve_by) in its record,
 * but the index holds only the earliest one not yet acted on (ties: warn, accept,
 * resolve), kept in time order across cases. A committed decision marks its deadline
 * acted on: the next earliest takes its place in the index, and a second decision for it
 * is a conflict that writes nothing. Escalation moves the case up with level + 1 and
 * fresh deadlines; signing for it takes the accept deadline away; resolving, returning
 * or withdrawing takes them all; an approved extension moves resolve_by (and the
 * warning) in the index. The index survives reopening the store, which is what a
 * restarted daemon re-arms from.
 */
#include "case_event.h"
#include "store.h"
#include "store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define MIN_MS  (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)
#define T0      1795564800000LL   /* 2026-11-25T00:00:00Z */

/* The built-in "emergency" class: sign for within 1 h, resolve within 2 h, warn at 80%
 * of the time (so warn_at, 96 min, falls between accept_by and resolve_by). */
#define EM_ACCEPT  HOUR_MS
#define EM_RESOLVE (2 * HOUR_MS)
#define EM_WARN    (96 * MIN_MS)

typedef struct {
    char        *dir;
    store       *s;
    city        *c;
    msgpack_zone zone;
} fixture;

static const store_options opts = { 64ULL << 20, "GL", 0, 0 };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[512];

    if (f == NULL) {
        return -1;
    }
    f->dir = fixture_tmpdir();
    f->s = store_new(f->dir, &opts, err, sizeof err);
    f->c = city_new(NULL, err, sizeof err);
    if (f->s == NULL || f->c == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    msgpack_zone_init(&f->zone, 8192);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    store_destroy(&f->s);
    city_destroy(&f->c);
    msgpack_zone_destroy(&f->zone);
    fixture_rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

/* Registers a case of category cat, urgency u, in D01-S01-C01 at `at`; returns its id. */
static uint64_t create_case(fixture *f, const char *key, const char *cat, case_urgency u,
                            int64_t at)
{
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    request_create r = fixture_request(key, "D01", cat, "13800000000");

    r.urgency = u;
    r.location.street = gl_str_c("D01-S01");
    r.location.community = gl_str_c("D01-S01-C01");
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_create(t, gl_str_c("dev"), &r, at, &out, &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
    free(out.data);
    return out.id;
}

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

static void dispatch(fixture *f, uint64_t id, const char *unit, int64_t at)
{
    store_txn *t = NULL;
    gl_error err;
    case_record c = get(f, id);
    route_decision d;

    memset(&d, 0, sizeof d);
    d.id = id;
    d.version = c.version;
    d.unit = gl_str_c(unit);
    d.reason = gl_str_c("rule");
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_dispatch(t, f->c, &d, at, gl_str_c("router"), &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
}

/* A created and dispatched case (emergency class unless cat/u say otherwise). */
static uint64_t dispatched_case(fixture *f, const char *key, int64_t at)
{
    uint64_t id = create_case(f, key, "sanitation", URGENCY_EMERGENCY, at - 10);

    dispatch(f, id, "D01-S01-C01-CENTRE", at);
    return id;
}

/* Commits a decision; the transaction stays good whatever the store answers, so it is
 * committed in every case (and must commit). Returns store_case_deadline's code. */
static int decide(fixture *f, uint64_t id, uint64_t version, deadline_kind kind,
                  escalate_outcome outcome, const char *unit, int64_t at)
{
    store_txn *t = NULL;
    gl_error err;
    escalate_decision d;

    memset(&d, 0, sizeof d);
    gl_error_clear(&err);
    d.id = id;
    d.version = version;
    d.kind = kind;
    d.outcome = outcome;
    d.unit = gl_str_c(unit);
    d.reason = gl_str_c("the reason for it");
    assert_int_equal(store_write_begin(f->s, &t), 0);
    int rc = store_case_deadline(t, f->c, &d, at, gl_str_c("escalator"), &err);
    assert_int_equal(store_write_commit(&t), 0);
    return rc;
}

static int act(fixture *f, uint64_t id, case_action a, int64_t at, int64_t until)
{
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    request_act r;

    memset(&r, 0, sizeof r);
    r.id = id;
    r.action = a;
    r.reply = gl_str_c("done");
    r.reason = gl_str_c("why");
    r.until = until;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    store_actor dev = { gl_str_c("dev"), NULL, NULL };
    int rc = store_case_act(t, f->c, &r, &dev, at, &out, &err);
    assert_int_equal(store_write_commit(&t), 0);
    if (rc == 0) {
        free(out.data);
    }
    return rc;
}

typedef struct {
    uint64_t      id;
    deadline_kind kind;
    int64_t       due;
} due_entry;

typedef struct {
    due_entry e[32];
    uint32_t  n;
    uint32_t  stop_after;   /* 0 = never ask to stop */
} due_list;

static int collect(void *arg, uint64_t id, deadline_kind kind, int64_t due)
{
    due_list *l = arg;

    assert_true(l->n < 32);
    l->e[l->n].id = id;
    l->e[l->n].kind = kind;
    l->e[l->n].due = due;
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after;
}

static due_list due_at(fixture *f, int64_t now, uint32_t max)
{
    store_reader *r = NULL;
    due_list l;

    memset(&l, 0, sizeof l);
    assert_int_equal(store_read_begin(f->s, &r), 0);
    assert_int_equal(store_due_deadlines(r, now, max, collect, &l), 0);
    store_read_end(&r);
    return l;
}

/* Every pending deadline. */
static due_list pending(fixture *f)
{
    return due_at(f, INT64_MAX, 32);
}

/* The earliest due time, or -1 when there is none. */
static int64_t next_due(fixture *f)
{
    store_reader *r = NULL;
    int64_t due = 0;

    assert_int_equal(store_read_begin(f->s, &r), 0);
    int rc = store_next_deadline(r, &due);
    store_read_end(&r);
    if (rc == GL_ENOT_FOUND) {
        return -1;
    }
    assert_int_equal(rc, 0);
    return due;
}

static void assert_entry(const due_list *l, uint32_t i, uint64_t id, deadline_kind kind,
                         int64_t due)
{
    if (i >= l->n) {
        fail_msg("entry %u: only %u pending", i, l->n);
    }
    if (l->e[i].id != id || l->e[i].kind != kind || l->e[i].due != due) {
        fail_msg("entry %u: case %llu %s at %lld, expected case %llu %s at %lld", i,
                 (unsigned long long)l->e[i].id, deadline_kind_name(l->e[i].kind),
                 (long long)l->e[i].due, (unsigned long long)id, deadline_kind_name(kind),
                 (long long)due);
    }
}

/* The pending deadlines of one case, as a bit set of CASE_FIRED_*-like bits. */
static unsigned pending_kinds_of(fixture *f, uint64_t id)
{
    due_list l = pending(f);
    unsigned bits = 0;

    for (uint32_t i = 0; i < l.n; i++) {
        if (l.e[i].id == id) {
            assert_true((bits & (1u << l.e[i].kind)) == 0);   /* never twice */
            bits |= 1u << l.e[i].kind;
        }
    }
    return bits;
}

/* The index holds exactly one deadline of case id: the kind one, due at `due`. */
static void assert_indexed(fixture *f, uint64_t id, deadline_kind kind, int64_t due)
{
    due_list l = pending(f);
    uint32_t n = 0, at = 0;

    for (uint32_t i = 0; i < l.n; i++) {
        if (l.e[i].id == id) {
            n++;
            at = i;
        }
    }
    if (n != 1) {
        fail_msg("case %llu: %u deadlines indexed, expected only its %s at %lld",
                 (unsigned long long)id, n, deadline_kind_name(kind), (long long)due);
    }
    assert_entry(&l, at, id, kind, due);
}

/* The last event of a case. */
typedef struct {
    uint32_t        n;
    case_event_type type;
    case_state      state;
    int64_t         at;
    char            actor[32], note[64], unit[32];
    msgpack_zone   *zone;
} last_event;

static void copy_str(char *out, size_t cap, gl_str s)
{
    snprintf(out, cap, "%.*s", (int)s.n, s.p != NULL ? s.p : "");
}

static int on_event(void *arg, gl_str raw)
{
    last_event *le = arg;
    msgpack_object o;
    case_event e;

    assert_int_equal(mp_unpack(raw.p, raw.n, le->zone, &o), 0);
    assert_int_equal(case_event_unpack(&o, &e), 0);
    le->n++;
    le->type = e.type;
    le->state = e.state;
    le->at = e.at;
    copy_str(le->actor, sizeof le->actor, e.actor);
    copy_str(le->note, sizeof le->note, e.note);
    copy_str(le->unit, sizeof le->unit, e.unit);
    return 0;
}

static last_event last_event_of(fixture *f, uint64_t id)
{
    store_reader *r = NULL;
    last_event le;

    memset(&le, 0, sizeof le);
    le.zone = &f->zone;
    assert_int_equal(store_read_begin(f->s, &r), 0);
    assert_int_equal(store_read_history(r, id, on_event, &le), 0);
    store_read_end(&r);
    return le;
}

/* ---- the index after a dispatch ----------------------------------------------------- */

static void test_dispatch_indexes_the_earliest_of_its_deadlines(void **state)
{
    fixture *f = *state;
    int64_t d0 = T0 + 1000;
    uint64_t id = dispatched_case(f, "a", d0);
    case_record c = get(f, id);

    /* The record has all three... */
    assert_int_equal(c.accept_by, d0 + EM_ACCEPT);
    assert_int_equal(c.warn_at, d0 + EM_WARN);
    assert_int_equal(c.resolve_by, d0 + EM_RESOLVE);
    assert_int_equal(c.deadlines_fired, 0);

    /* ...the index only the earliest: accept_by (60 min; warn 96, resolve 120). */
    due_list l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_ACCEPT, d0 + EM_ACCEPT);
    assert_int_equal(next_due(f), d0 + EM_ACCEPT);

    /* Each one acted on brings the next in its place, until none is left. */
    assert_int_equal(decide(f, id, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, d0 + EM_ACCEPT), 0);
    l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_WARN, d0 + EM_WARN);
    assert_int_equal(next_due(f), d0 + EM_WARN);

    assert_int_equal(decide(f, id, 3, DEADLINE_WARN, OUTCOME_WARN, NULL, d0 + EM_WARN), 0);
    l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_RESOLVE, d0 + EM_RESOLVE);
    assert_int_equal(next_due(f), d0 + EM_RESOLVE);

    assert_int_equal(decide(f, id, 4, DEADLINE_RESOLVE, OUTCOME_SUPERVISE, NULL,
                            d0 + EM_RESOLVE), 0);
    c = get(f, id);
    assert_int_equal(c.state, CASE_DISPATCHED);
    assert_int_equal(c.deadlines_fired,
                     CASE_FIRED_ACCEPT | CASE_FIRED_WARN | CASE_FIRED_RESOLVE);
    assert_int_equal(pending(f).n, 0);
    assert_int_equal(next_due(f), -1);
}

/* Every other index key a case can have (state, channel, unit, the four places,
 * category, phone, both duplicate keys): the deadlines still fit beside them. */
static void test_a_case_with_every_index_key_still_has_its_next_deadline(void **state)
{
    fixture *f = *state;
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    request_create r = fixture_request("full", "D01", "sanitation", "13800000000");

    r.urgency = URGENCY_EMERGENCY;
    r.location.street = gl_str_c("D01-S01");
    r.location.community = gl_str_c("D01-S01-C01");
    r.location.grid = gl_str_c("D01-S01-C01-G01");
    r.location.has_coords = true;
    r.location.lat = 39.9;
    r.location.lon = 116.4;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_create(t, gl_str_c("dev"), &r, T0, &out, &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
    free(out.data);
    dispatch(f, out.id, "D01-S01-C01-CENTRE", T0 + 1);
    assert_indexed(f, out.id, DEADLINE_ACCEPT, T0 + 1 + EM_ACCEPT);
    assert_int_equal(act(f, out.id, ACT_ACCEPT, T0 + 2, 0), 0);
    assert_indexed(f, out.id, DEADLINE_WARN, T0 + 1 + EM_WARN);
}

static void test_a_registered_case_has_no_deadline(void **state)
{
    fixture *f = *state;

    create_case(f, "a", "sanitation", URGENCY_EMERGENCY, T0);
    assert_int_equal(next_due(f), -1);
    assert_int_equal(pending(f).n, 0);
}

static void test_due_lists_only_what_is_due_earliest_first_across_cases(void **state)
{
    fixture *f = *state;
    /* The same class, half an hour apart. Counted in minutes from T0, a: accept 60,
     * warn 96, resolve 120; b: accept 90, warn 126, resolve 150; c: accept 120, warn
     * 156, resolve 180; d: accept 150, warn 186, resolve 210. Indexed: the accepts. */
    int64_t a0 = T0, b0 = T0 + 30 * MIN_MS, c0 = T0 + 60 * MIN_MS, d0 = T0 + 90 * MIN_MS;
    uint64_t a = dispatched_case(f, "a", a0);
    uint64_t b = dispatched_case(f, "b", b0);
    uint64_t c = dispatched_case(f, "c", c0);
    uint64_t d = dispatched_case(f, "d", d0);

    /* Nothing before the first deadline. */
    assert_int_equal(due_at(f, a0 + EM_ACCEPT - 1, 32).n, 0);
    /* Due at or before now: exactly at accept_by counts. */
    due_list l = due_at(f, a0 + EM_ACCEPT, 32);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, a, DEADLINE_ACCEPT, a0 + EM_ACCEPT);

    /* At 120: a's warning (96) and resolve_by (120) are not indexed while its accept is
     * pending; d's accept (150) is not due yet. */
    l = due_at(f, a0 + 2 * HOUR_MS, 32);
    assert_int_equal(l.n, 3);
    assert_entry(&l, 0, a, DEADLINE_ACCEPT, a0 + EM_ACCEPT);
    assert_entry(&l, 1, b, DEADLINE_ACCEPT, b0 + EM_ACCEPT);
    assert_entry(&l, 2, c, DEADLINE_ACCEPT, c0 + EM_ACCEPT);

    l = pending(f);
    assert_int_equal(l.n, 4);
    assert_entry(&l, 0, a, DEADLINE_ACCEPT, a0 + EM_ACCEPT);
    assert_entry(&l, 1, b, DEADLINE_ACCEPT, b0 + EM_ACCEPT);
    assert_entry(&l, 2, c, DEADLINE_ACCEPT, c0 + EM_ACCEPT);
    assert_entry(&l, 3, d, DEADLINE_ACCEPT, d0 + EM_ACCEPT);

    /* a's accept acted on: its warning (96) takes its place, between b's and c's. */
    assert_int_equal(decide(f, a, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, a0 + EM_ACCEPT), 0);
    l = pending(f);
    assert_int_equal(l.n, 4);
    assert_entry(&l, 0, b, DEADLINE_ACCEPT, b0 + EM_ACCEPT);
    assert_entry(&l, 1, a, DEADLINE_WARN, a0 + EM_WARN);
    assert_entry(&l, 2, c, DEADLINE_ACCEPT, c0 + EM_ACCEPT);
    assert_entry(&l, 3, d, DEADLINE_ACCEPT, d0 + EM_ACCEPT);
    l = due_at(f, a0 + 2 * HOUR_MS, 32);
    assert_int_equal(l.n, 3);
    assert_entry(&l, 2, c, DEADLINE_ACCEPT, c0 + EM_ACCEPT);

    /* At most max, and fn may stop the walk. */
    l = due_at(f, INT64_MAX, 2);
    assert_int_equal(l.n, 2);
    assert_entry(&l, 0, b, DEADLINE_ACCEPT, b0 + EM_ACCEPT);
    assert_entry(&l, 1, a, DEADLINE_WARN, a0 + EM_WARN);
    store_reader *r = NULL;
    due_list s;
    memset(&s, 0, sizeof s);
    s.stop_after = 3;
    assert_int_equal(store_read_begin(f->s, &r), 0);
    assert_int_equal(store_due_deadlines(r, INT64_MAX, 32, collect, &s), 0);
    store_read_end(&r);
    assert_int_equal(s.n, 3);
    assert_entry(&s, 2, c, DEADLINE_ACCEPT, c0 + EM_ACCEPT);
}

static void test_deadlines_at_the_same_time_are_all_listed(void **state)
{
    fixture *f = *state;
    uint64_t a = dispatched_case(f, "a", T0);
    uint64_t b = dispatched_case(f, "b", T0);

    due_list l = due_at(f, T0 + EM_ACCEPT, 32);
    assert_int_equal(l.n, 2);
    assert_true((l.e[0].id == a && l.e[1].id == b) || (l.e[0].id == b && l.e[1].id == a));
    assert_int_equal(l.e[0].kind, DEADLINE_ACCEPT);
    assert_int_equal(l.e[1].kind, DEADLINE_ACCEPT);
}

/* ---- decisions -------------------------------------------------------------------- */

static void test_an_urge_marks_the_accept_deadline_fired_once(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    int64_t now = T0 + EM_ACCEPT + 5;
    uint64_t seq = store_last_seq(f->s);

    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);
    assert_int_equal(decide(f, id, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, now), 0);
    case_record c = get(f, id);
    assert_int_equal(c.version, 3);
    assert_int_equal(c.state, CASE_DISPATCHED);
    assert_int_equal(c.deadlines_fired, CASE_FIRED_ACCEPT);
    assert_int_equal(c.updated_at, now);
    assert_int_equal(c.accept_by, T0 + EM_ACCEPT);      /* the deadline itself stays */
    assert_int_equal(store_last_seq(f->s), seq + 1);
    last_event e = last_event_of(f, id);
    assert_int_equal(e.type, EVENT_URGED);
    assert_int_equal(e.at, now);
    assert_string_equal(e.actor, "escalator");
    assert_string_equal(e.note, "the reason for it");

    /* Gone from the index: the warning, the next earliest, takes its place. */
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
    assert_int_equal(next_due(f), T0 + EM_WARN);
    assert_int_equal(due_at(f, now, 32).n, 0);

    /* The same decision again (a task handed out twice), on the old or the new version:
     * conflict, and nothing written. */
    assert_int_equal(decide(f, id, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, now + 1),
                     GL_ECONFLICT);
    assert_int_equal(decide(f, id, 3, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, now + 2),
                     GL_ECONFLICT);
    assert_int_equal(store_last_seq(f->s), seq + 1);
    c = get(f, id);
    assert_int_equal(c.version, 3);
    assert_int_equal(c.updated_at, now);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
}

static void test_a_warning_then_a_supervision(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);

    /* Decided out of order, before the (earlier) accept deadline: that one, still
     * pending, stays the one indexed at every step. */
    assert_int_equal(decide(f, id, 2, DEADLINE_WARN, OUTCOME_WARN, NULL, T0 + EM_WARN), 0);
    case_record c = get(f, id);
    assert_int_equal(c.deadlines_fired, CASE_FIRED_WARN);
    assert_int_equal(last_event_of(f, id).type, EVENT_WARNED);
    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);
    assert_int_equal(decide(f, id, 3, DEADLINE_WARN, OUTCOME_WARN, NULL, T0 + EM_WARN + 1),
                     GL_ECONFLICT);

    assert_int_equal(decide(f, id, 3, DEADLINE_RESOLVE, OUTCOME_SUPERVISE, NULL,
                            T0 + EM_RESOLVE), 0);
    c = get(f, id);
    assert_true(c.supervised);
    assert_int_equal(c.version, 4);
    assert_int_equal(c.deadlines_fired, CASE_FIRED_WARN | CASE_FIRED_RESOLVE);
    assert_true(gl_str_eq(c.unit, "D01-S01-C01-CENTRE"));   /* supervision does not move it */
    assert_int_equal(c.level, 0);
    last_event e = last_event_of(f, id);
    assert_int_equal(e.type, EVENT_SUPERVISED);
    assert_string_equal(e.actor, "escalator");
    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);

    /* The accept deadline acted on too: nothing is left to index. */
    assert_int_equal(decide(f, id, 4, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_RESOLVE + 1),
                     0);
    assert_int_equal(pending(f).n, 0);
    assert_int_equal(next_due(f), -1);
}

static void test_escalation_moves_the_case_up_with_fresh_deadlines(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    int64_t now = T0 + EM_RESOLVE + 7;

    /* Signed for, warned; then the resolve deadline passes. */
    assert_int_equal(act(f, id, ACT_ACCEPT, T0 + 10, 0), 0);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
    assert_int_equal(decide(f, id, 3, DEADLINE_WARN, OUTCOME_WARN, NULL, T0 + EM_WARN), 0);
    assert_int_equal(get(f, id).deadlines_fired, CASE_FIRED_WARN);
    assert_indexed(f, id, DEADLINE_RESOLVE, T0 + EM_RESOLVE);
    uint64_t seq = store_last_seq(f->s);

    assert_int_equal(decide(f, id, 4, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "D01-S01-OFFICE",
                            now), 0);
    case_record c = get(f, id);
    assert_int_equal(c.version, 5);
    assert_int_equal(c.state, CASE_DISPATCHED);       /* to be signed for again */
    assert_true(gl_str_eq(c.unit, "D01-S01-OFFICE"));
    assert_int_equal(c.level, 1);
    assert_int_equal(c.deadlines_fired, 0);
    assert_int_equal(c.accept_by, now + EM_ACCEPT);
    assert_int_equal(c.warn_at, now + EM_WARN);
    assert_int_equal(c.resolve_by, now + EM_RESOLVE);
    assert_int_equal(c.updated_at, now);
    assert_int_equal(c.dispatched_at, T0);            /* the first dispatch is kept */
    assert_int_equal(store_last_seq(f->s), seq + 1);
    last_event e = last_event_of(f, id);
    assert_int_equal(e.type, EVENT_ESCALATED);
    assert_int_equal(e.state, CASE_DISPATCHED);
    assert_string_equal(e.unit, "D01-S01-OFFICE");
    assert_string_equal(e.actor, "escalator");

    /* The old resolve_by is gone from the index; the earliest of the new three, the
     * accept deadline (signed for again), is there. */
    due_list l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_ACCEPT, now + EM_ACCEPT);
    assert_int_equal(next_due(f), now + EM_ACCEPT);
    assert_int_equal(due_at(f, now, 32).n, 0);

    /* Up again: level 2 at the district's department for the category. */
    int64_t now2 = now + EM_RESOLVE;
    assert_int_equal(decide(f, id, 5, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "D01-URBAN", now2), 0);
    c = get(f, id);
    assert_int_equal(c.level, 2);
    assert_true(gl_str_eq(c.unit, "D01-URBAN"));
    assert_int_equal(c.resolve_by, now2 + EM_RESOLVE);
    l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_ACCEPT, now2 + EM_ACCEPT);
}

static void test_escalation_to_no_such_unit_is_refused_and_writes_nothing(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    uint64_t seq = store_last_seq(f->s);

    assert_int_equal(decide(f, id, 2, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "NO-SUCH-UNIT",
                            T0 + EM_RESOLVE), GL_EINVALID);
    assert_int_equal(decide(f, id, 2, DEADLINE_RESOLVE, OUTCOME_ESCALATE, NULL,
                            T0 + EM_RESOLVE), GL_EINVALID);
    assert_int_equal(store_last_seq(f->s), seq);
    case_record c = get(f, id);
    assert_int_equal(c.version, 2);
    assert_int_equal(c.deadlines_fired, 0);
    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);
}

static void test_stale_version_or_missing_case_is_refused(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    uint64_t seq = store_last_seq(f->s);

    /* Someone urges it by hand: the case moves on to version 3, and a decision made on
     * version 2 is stale; one on a version it never had is refused too. */
    assert_int_equal(act(f, id, ACT_URGE, T0 + 1, 0), 0);
    assert_int_equal(store_last_seq(f->s), seq + 1);
    seq = store_last_seq(f->s);
    uint64_t v = get(f, id).version;
    assert_int_equal(v, 3);
    assert_int_equal(decide(f, id, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT),
                     GL_ECONFLICT);
    assert_int_equal(decide(f, id, v + 1, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT),
                     GL_ECONFLICT);
    assert_int_equal(store_last_seq(f->s), seq);
    assert_int_equal(get(f, id).deadlines_fired, 0);
    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);
    /* On the current version it goes through, and the warning is next. */
    assert_int_equal(decide(f, id, v, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT), 0);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);

    assert_int_equal(decide(f, 999, 1, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0), GL_ENOT_FOUND);
}

/* ---- actions and the index -------------------------------------------------------- */

static void test_accept_removes_the_accept_deadline(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);

    assert_indexed(f, id, DEADLINE_ACCEPT, T0 + EM_ACCEPT);
    assert_int_equal(act(f, id, ACT_ACCEPT, T0 + 5, 0), 0);
    /* accept_by stays in the record, but the warning is now the next deadline. */
    assert_int_equal(get(f, id).accept_by, T0 + EM_ACCEPT);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
    assert_int_equal(next_due(f), T0 + EM_WARN);
    assert_int_equal(due_at(f, T0 + EM_ACCEPT, 32).n, 0);
    /* The urge would come too late: the case was signed for. */
    assert_int_equal(decide(f, id, 3, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT),
                     GL_ECONFLICT);
    assert_int_equal(last_event_of(f, id).type, EVENT_ACCEPTED);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
}

static void test_resolve_removes_every_deadline(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);

    assert_int_equal(act(f, id, ACT_ACCEPT, T0 + 5, 0), 0);
    assert_int_equal(act(f, id, ACT_RESOLVE, T0 + 6, 0), 0);
    assert_int_equal(pending(f).n, 0);
    assert_int_equal(next_due(f), -1);
    uint64_t seq = store_last_seq(f->s);
    assert_int_equal(decide(f, id, 4, DEADLINE_WARN, OUTCOME_WARN, NULL, T0 + EM_WARN),
                     GL_ECONFLICT);
    assert_int_equal(decide(f, id, 4, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "D01-S01-OFFICE",
                            T0 + EM_RESOLVE), GL_ECONFLICT);
    assert_int_equal(store_last_seq(f->s), seq);
    assert_int_equal(get(f, id).state, CASE_RESOLVED);
}

static void test_return_and_withdraw_remove_every_deadline(void **state)
{
    fixture *f = *state;
    uint64_t a = dispatched_case(f, "a", T0);
    uint64_t b = dispatched_case(f, "b", T0 + 1);

    assert_int_equal(act(f, a, ACT_RETURN, T0 + 5, 0), 0);
    assert_int_equal(pending_kinds_of(f, a), 0);
    assert_int_equal(act(f, b, ACT_WITHDRAW, T0 + 5, 0), 0);
    assert_int_equal(pending_kinds_of(f, b), 0);
    assert_int_equal(next_due(f), -1);
    /* Dispatched again after the return: fresh deadlines from the new dispatch. */
    dispatch(f, a, "D01-S01-OFFICE", T0 + HOUR_MS);
    due_list l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, a, DEADLINE_ACCEPT, T0 + HOUR_MS + EM_ACCEPT);
    assert_int_equal(next_due(f), T0 + HOUR_MS + EM_ACCEPT);
}

static void test_approved_extension_moves_resolve_by_in_the_index(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    int64_t until = T0 + 4 * HOUR_MS;

    assert_int_equal(act(f, id, ACT_ACCEPT, T0 + 5, 0), 0);
    assert_indexed(f, id, DEADLINE_WARN, T0 + EM_WARN);
    /* Warned and escalation-due, then an extension is approved before the decision. */
    assert_int_equal(decide(f, id, 3, DEADLINE_WARN, OUTCOME_WARN, NULL, T0 + EM_WARN), 0);
    assert_indexed(f, id, DEADLINE_RESOLVE, T0 + EM_RESOLVE);
    assert_int_equal(act(f, id, ACT_EXTEND, T0 + EM_WARN + 1, until), 0);
    /* Asked for, not yet decided: the old limit still stands. */
    assert_indexed(f, id, DEADLINE_RESOLVE, T0 + EM_RESOLVE);
    assert_int_equal(next_due(f), T0 + EM_RESOLVE);
    assert_int_equal(act(f, id, ACT_APPROVE_EXTENSION, T0 + EM_WARN + 2, 0), 0);
    case_record c = get(f, id);
    assert_int_equal(c.resolve_by, until);
    assert_int_equal(c.extension_until, 0);
    /* The longer time gets its own warning, at the same share (80%) of it. */
    assert_int_equal(c.warn_at, T0 + (int64_t)(0.8 * (double)(4 * HOUR_MS)));
    assert_int_equal(c.deadlines_fired & (CASE_FIRED_WARN | CASE_FIRED_RESOLVE), 0);
    /* The new warning (192 min) is the earliest again: it is indexed, not resolve_by. */
    due_list l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_WARN, c.warn_at);
    assert_int_equal(next_due(f), c.warn_at);
    /* Nothing is due at the old resolve_by any more. */
    assert_int_equal(due_at(f, T0 + EM_RESOLVE, 32).n, 0);
    /* A decision on the old limit, made before the approval, is stale. */
    assert_int_equal(decide(f, id, 4, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "D01-S01-OFFICE",
                            T0 + EM_RESOLVE), GL_ECONFLICT);
    /* The new warning acted on: the new resolve_by is next. */
    assert_int_equal(decide(f, id, c.version, DEADLINE_WARN, OUTCOME_WARN, NULL, c.warn_at), 0);
    l = pending(f);
    assert_int_equal(l.n, 1);
    assert_entry(&l, 0, id, DEADLINE_RESOLVE, until);
    assert_int_equal(next_due(f), until);
}

static void test_the_index_survives_reopening_the_store(void **state)
{
    fixture *f = *state;
    char err[256];
    uint64_t a = dispatched_case(f, "a", T0);
    uint64_t b = dispatched_case(f, "b", T0 + MIN_MS);

    assert_int_equal(decide(f, a, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT), 0);
    store_destroy(&f->s);
    f->s = store_new(f->dir, &opts, err, sizeof err);
    assert_non_null(f->s);

    /* a's accept was acted on, so its warning is indexed; b's accept still is. */
    due_list l = pending(f);
    assert_int_equal(l.n, 2);
    assert_entry(&l, 0, b, DEADLINE_ACCEPT, T0 + MIN_MS + EM_ACCEPT);
    assert_entry(&l, 1, a, DEADLINE_WARN, T0 + EM_WARN);
    assert_int_equal(next_due(f), T0 + MIN_MS + EM_ACCEPT);
    /* What fired before still does not fire again. */
    assert_int_equal(decide(f, a, 3, DEADLINE_ACCEPT, OUTCOME_URGE, NULL, T0 + EM_ACCEPT + 1),
                     GL_ECONFLICT);
    /* The reopened index moves on as before: b's warning follows its accept. */
    assert_int_equal(decide(f, b, 2, DEADLINE_ACCEPT, OUTCOME_URGE, NULL,
                            T0 + MIN_MS + EM_ACCEPT), 0);
    l = pending(f);
    assert_int_equal(l.n, 2);
    assert_entry(&l, 0, a, DEADLINE_WARN, T0 + EM_WARN);
    assert_entry(&l, 1, b, DEADLINE_WARN, T0 + MIN_MS + EM_WARN);
}

static void test_extension_after_an_escalation_warns_at_the_share_from_the_escalation(void **state)
{
    fixture *f = *state;
    uint64_t id = dispatched_case(f, "a", T0);
    int64_t esc = T0 + EM_RESOLVE + 1;

    /* Escalated once: its deadlines now count from the escalation, not the dispatch. */
    assert_int_equal(decide(f, id, 2, DEADLINE_RESOLVE, OUTCOME_ESCALATE, "D01-S01-OFFICE",
                            esc), 0);
    case_record c = get(f, id);
    assert_int_equal(c.deadlines_at, esc);
    int64_t until = esc + 4 * HOUR_MS;
    assert_int_equal(act(f, id, ACT_EXTEND, esc + 10, until), 0);
    assert_int_equal(act(f, id, ACT_APPROVE_EXTENSION, esc + 20, 0), 0);
    c = get(f, id);
    assert_int_equal(c.resolve_by, until);
    /* 80% of the time from the escalation to the new limit. */
    assert_int_equal(c.warn_at, esc + (int64_t)(0.8 * (double)(4 * HOUR_MS)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch_indexes_the_earliest_of_its_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_case_with_every_index_key_still_has_its_next_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_registered_case_has_no_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_lists_only_what_is_due_earliest_first_across_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines_at_the_same_time_are_all_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_urge_marks_the_accept_deadline_fired_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_warning_then_a_supervision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escalation_moves_the_case_up_with_fresh_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escalation_to_no_such_unit_is_refused_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_version_or_missing_case_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_removes_the_accept_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_removes_every_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_and_withdraw_remove_every_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approved_extension_moves_resolve_by_in_the_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_index_survives_reopening_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_after_an_escalation_warns_at_the_share_from_the_escalation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
