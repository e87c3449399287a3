/* The store: durable creates, idempotency, numbering, listing, reopening. */
#include "case_event.h"
#include "store.h"
#include "store_fixture.h"

#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define DAY_MS (24LL * 3600 * 1000)
#define T0     1795564800000LL   /* 2026-11-25T00:00:00Z */

typedef struct {
    char  *dir;
    store *s;
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
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_destroy(&f->s);
    store_destroy(&f->s);   /* safe twice */
    fixture_rmdir(f->dir);
    free(f);
    return 0;
}

static int create(store *s, const request_create *r, int64_t now, store_created *out,
                  gl_error *err)
{
    store_txn *t = NULL;
    assert_int_equal(store_write_begin(s, &t), 0);
    int rc = store_case_create(t, gl_str_c("dev"), r, now, out, err);
    if (rc == 0 || rc == GL_ECONFLICT) {
        assert_int_equal(store_write_commit(&t), 0);
    } else {
        store_write_abort(&t);
    }
    return rc;
}

static void read_case(store *s, uint64_t id, case_record *c, msgpack_zone *zone)
{
    store_reader *r = NULL;
    gl_str raw;
    msgpack_object o;
    assert_int_equal(store_read_begin(s, &r), 0);
    assert_int_equal(store_read_case(r, id, &raw), 0);
    /* Copy out of the transaction's pages before it ends. */
    char *copy = msgpack_zone_malloc(zone, raw.n);
    memcpy(copy, raw.p, raw.n);
    store_read_end(&r);
    assert_int_equal(mp_unpack(copy, raw.n, zone, &o), 0);
    assert_int_equal(case_record_unpack(&o, c), 0);
}

static void test_created_case_reads_back_by_id_and_code(void **state)
{
    fixture *f = *state;
    request_create r = fixture_request("k1", "D01", "sanitation", "13800000001");
    store_created out;
    gl_error err;
    assert_int_equal(create(f->s, &r, T0 + 1000, &out, &err), 0);
    assert_int_equal(out.id, 1);
    assert_false(out.replayed);
    free(out.data);

    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    case_record c;
    read_case(f->s, 1, &c, &zone);
    assert_true(gl_str_eq(c.code, "GL-20261125-000001"));
    assert_int_equal(c.state, CASE_REGISTERED);
    assert_int_equal(c.version, 1);
    assert_int_equal(c.created_at, T0 + 1000);
    assert_true(gl_str_eq(c.request_id, "k1"));

    store_reader *rd = NULL;
    gl_str raw;
    assert_int_equal(store_read_begin(f->s, &rd), 0);
    assert_int_equal(store_read_case_by_code(rd, gl_str_c("GL-20261125-000001"), &raw), 0);
    assert_int_equal(store_read_case_by_code(rd, gl_str_c("GL-20261125-000002"), &raw),
                     GL_ENOT_FOUND);
    assert_int_equal(store_read_case(rd, 2, &raw), GL_ENOT_FOUND);
    store_read_end(&rd);
    msgpack_zone_destroy(&zone);
}

static void test_same_key_same_request_replays_the_original(void **state)
{
    fixture *f = *state;
    request_create r = fixture_request("k1", "D01", "sanitation", "13800000001");
    store_created a, b;
    gl_error err;
    assert_int_equal(create(f->s, &r, T0, &a, &err), 0);
    assert_int_equal(create(f->s, &r, T0 + 5, &b, &err), 0);
    assert_true(b.replayed);
    assert_int_equal(b.id, a.id);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(store_case_count(f->s), 1);
    assert_int_equal(store_last_seq(f->s), 1);
    free(a.data);
    free(b.data);
}

static void test_same_key_different_request_is_a_conflict(void **state)
{
    fixture *f = *state;
    request_create r = fixture_request("k1", "D01", "sanitation", "13800000001");
    store_created a, b;
    gl_error err;
    assert_int_equal(create(f->s, &r, T0, &a, &err), 0);
    r.description = gl_str_c("something else");
    gl_error_clear(&err);
    assert_int_equal(create(f->s, &r, T0, &b, &err), GL_ECONFLICT);
    assert_string_equal(err.field, "request_id");
    assert_int_equal(store_case_count(f->s), 1);
    free(a.data);
    free(b.data);
}

static void test_sender_scopes_the_request_id(void **state)
{
    fixture *f = *state;
    request_create r = fixture_request("k1", "D01", "sanitation", "13800000001");
    store_txn *t = NULL;
    store_created a, b;
    gl_error err;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_create(t, gl_str_c("alice"), &r, T0, &a, &err), 0);
    assert_int_equal(store_case_create(t, gl_str_c("bob"), &r, T0, &b, &err), 0);
    assert_int_equal(store_write_commit(&t), 0);
    assert_int_not_equal(a.id, b.id);
    assert_false(b.replayed);
    free(a.data);
    free(b.data);
}

static void test_aborted_batch_gives_its_numbers_back(void **state)
{
    fixture *f = *state;
    request_create r1 = fixture_request("k1", "D01", "sanitation", "1");
    request_create r2 = fixture_request("k2", "D01", "sanitation", "2");
    store_txn *t = NULL;
    store_created a, b;
    gl_error err;
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_case_create(t, gl_str_c("dev"), &r1, T0, &a, &err), 0);
    store_write_abort(&t);
    free(a.data);
    assert_int_equal(store_case_count(f->s), 0);
    assert_int_equal(create(f->s, &r2, T0, &b, &err), 0);
    assert_int_equal(b.id, 1);                     /* dense: the aborted id is reused */
    assert_int_equal(store_last_seq(f->s), 1);
    free(b.data);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    case_record c;
    read_case(f->s, 1, &c, &zone);
    assert_true(gl_str_eq(c.code, "GL-20261125-000001"));  /* the day's counter too */
    msgpack_zone_destroy(&zone);
}

static void test_codes_count_per_day_in_the_city_clock(void **state)
{
    fixture *f = *state;
    store_created out;
    gl_error err;
    msgpack_zone zone;
    case_record c;
    msgpack_zone_init(&zone, 4096);
    const char *keys[] = { "a", "b", "c" };
    int64_t times[] = { T0 + 10, T0 + 20, T0 + DAY_MS + 5 };
    for (int i = 0; i < 3; i++) {
        request_create r = fixture_request(keys[i], "D01", "sanitation", "1");
        assert_int_equal(create(f->s, &r, times[i], &out, &err), 0);
        free(out.data);
    }
    read_case(f->s, 2, &c, &zone);
    assert_true(gl_str_eq(c.code, "GL-20261125-000002"));
    read_case(f->s, 3, &c, &zone);
    assert_true(gl_str_eq(c.code, "GL-20261126-000001"));
    msgpack_zone_destroy(&zone);
}

static void test_created_at_never_goes_backwards(void **state)
{
    fixture *f = *state;
    store_created out;
    gl_error err;
    msgpack_zone zone;
    case_record c;
    msgpack_zone_init(&zone, 4096);
    request_create r1 = fixture_request("a", "D01", "sanitation", "1");
    request_create r2 = fixture_request("b", "D01", "sanitation", "1");
    assert_int_equal(create(f->s, &r1, T0 + 5000, &out, &err), 0);
    free(out.data);
    assert_int_equal(create(f->s, &r2, T0 + 1000, &out, &err), 0);   /* clock stepped back */
    free(out.data);
    read_case(f->s, 2, &c, &zone);
    assert_int_equal(c.created_at, T0 + 5000);
    msgpack_zone_destroy(&zone);
}

typedef struct {
    uint64_t ids[64];
    size_t   n;
} id_list;

static int collect(void *arg, gl_str raw, const case_record *c)
{
    id_list *l = arg;
    l->ids[l->n++] = c->id;
    return 0;
}

static request_filter no_filter(void)
{
    request_filter f;
    memset(&f, 0, sizeof f);
    f.state = f.channel = f.overdue = f.supervised = -1;
    f.created_from = INT64_MIN;
    f.created_to = INT64_MAX;
    return f;
}

static void list(store *s, const request_filter *flt, uint64_t after, uint32_t limit,
                 uint32_t budget, id_list *out, uint64_t *next)
{
    store_reader *r = NULL;
    out->n = 0;
    assert_int_equal(store_read_begin(s, &r), 0);
    assert_int_equal(store_list(r, flt, after, limit, T0, budget, collect, out, next), 0);
    store_read_end(&r);
}

static void seed(store *s)
{
    const char *districts[] = { "D01", "D02" };
    const char *categories[] = { "sanitation", "roads", "health" };
    for (int i = 0; i < 12; i++) {
        char key[16], phone[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(phone, sizeof phone, "1380000%04d", i % 4);
        request_create r = fixture_request(key, districts[i % 2], categories[i % 3], phone);
        store_created out;
        gl_error err;
        assert_int_equal(create(s, &r, T0 + i * 1000, &out, &err), 0);
        free(out.data);
    }
}

static void test_list_filters_by_district_category_and_phone(void **state)
{
    fixture *f = *state;
    id_list l;
    uint64_t next;
    seed(f->s);
    request_filter flt = no_filter();
    flt.district = gl_str_c("D02");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 6);
    assert_int_equal(l.ids[0], 2);
    assert_int_equal(next, 0);

    flt.category = gl_str_c("sanitation");      /* ids 1,4,7,10 are sanitation; D02: 4,10 */
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 4);
    assert_int_equal(l.ids[1], 10);

    request_filter byphone = no_filter();
    byphone.reporter_phone = gl_str_c("13800000001");
    list(f->s, &byphone, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);                    /* ids 2, 6, 10 */
    assert_int_equal(l.ids[2], 10);

    request_filter none = no_filter();
    none.district = gl_str_c("D99");
    list(f->s, &none, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 0);
}

static void test_list_pages_with_the_cursor_without_gaps_or_repeats(void **state)
{
    fixture *f = *state;
    id_list l;
    uint64_t next, after = 0, seen = 0;
    seed(f->s);
    request_filter flt = no_filter();
    for (int page = 0; page < 10; page++) {
        list(f->s, &flt, after, 5, 1000, &l, &next);
        for (size_t i = 0; i < l.n; i++) {
            assert_int_equal(l.ids[i], ++seen);
        }
        if (next == 0) {
            break;
        }
        after = next;
    }
    assert_int_equal(seen, 12);
}

static void test_list_stops_at_the_scan_budget_and_hands_back_a_cursor(void **state)
{
    fixture *f = *state;
    id_list l;
    uint64_t next;
    seed(f->s);
    request_filter flt = no_filter();
    flt.category = gl_str_c("health");           /* ids 3, 6, 9, 12 */
    flt.district = gl_str_c("D02");              /* of those: 6, 12 */
    list(f->s, &flt, 0, 50, 3, &l, &next);       /* driver: category; 3 entries examined */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], 6);
    assert_int_equal(next, 9);
    list(f->s, &flt, next, 50, 3, &l, &next);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], 12);
    assert_int_equal(next, 0);
}

static void test_list_by_created_range(void **state)
{
    fixture *f = *state;
    id_list l;
    uint64_t next;
    seed(f->s);                                   /* case i+1 created at T0 + i s */
    request_filter flt = no_filter();
    flt.created_from = T0 + 3000;
    flt.created_to = T0 + 6000;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.ids[0], 4);
    assert_int_equal(l.ids[2], 6);
    flt.state = CASE_REGISTERED;                  /* through the state index instead */
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);
    flt.state = CASE_CLOSED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 0);
}

static int count_events(void *arg, gl_str raw)
{
    msgpack_zone zone;
    msgpack_object o;
    case_event e;
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(mp_unpack(raw.p, raw.n, &zone, &o), 0);
    assert_int_equal(case_event_unpack(&o, &e), 0);
    assert_int_equal(e.type, EVENT_CREATED);
    msgpack_zone_destroy(&zone);
    (*(int *)arg)++;
    return 0;
}

static void test_history_holds_the_created_event(void **state)
{
    fixture *f = *state;
    seed(f->s);
    store_reader *r = NULL;
    int n = 0;
    assert_int_equal(store_read_begin(f->s, &r), 0);
    assert_int_equal(store_read_history(r, 5, count_events, &n), 0);
    store_read_end(&r);
    assert_int_equal(n, 1);
}

static void test_reopen_keeps_cases_and_counters(void **state)
{
    fixture *f = *state;
    char err[256];
    seed(f->s);
    store_destroy(&f->s);
    f->s = store_new(f->dir, &opts, err, sizeof err);
    assert_non_null(f->s);
    assert_int_equal(store_case_count(f->s), 12);
    assert_int_equal(store_last_seq(f->s), 12);
    request_create r = fixture_request("k0", "D01", "sanitation", "13800000000");
    store_created out;
    gl_error e;
    assert_int_equal(create(f->s, &r, T0, &out, &e), 0);
    assert_true(out.replayed);                   /* idempotency survives the restart */
    free(out.data);
    r.request_id = gl_str_c("new");
    assert_int_equal(create(f->s, &r, T0 + 60000, &out, &e), 0);
    assert_int_equal(out.id, 13);
    free(out.data);
}

/* A process that dies inside a read transaction leaves its slot in the reader table;
 * store_reader_check clears that one, not a live reader's. */
static void test_reader_check_clears_the_slot_of_a_dead_reader(void **state)
{
    fixture *f = *state;
    int ready[2];
    char c;
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The store's environment of its own: never the parent's after a fork. */
        MDB_env *env;
        MDB_txn *txn;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0
            || mdb_env_open(env, f->dir, MDB_RDONLY, 0640) != 0
            || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0
            || write(ready[1], "r", 1) != 1) {
            _exit(1);
        }
        pause();
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(store_reader_check(f->s), 0);   /* alive: left alone */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(store_reader_check(f->s), 1);
    assert_int_equal(store_reader_check(f->s), 0);
}

/* A map that cannot grow, for want of address space, stays as it was: store_grow says
 * so, and the store still reads and writes in its old map (LMDB alone would have
 * unmapped it first). In a child, under an address-space limit a 1 GiB map cannot fit.
 * Not under ASan, whose shadow memory needs no such limit. */
static void test_a_grow_with_no_address_space_keeps_the_old_map(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    (void)state;
    char *dir = fixture_tmpdir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        store_options o = { 512ULL << 20, "GL", 0, 4ULL << 30 };
        store *s = store_new(dir, &o, err, sizeof err);
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (s == NULL || statm == NULL || fscanf(statm, "%ld", &pages) != 1) {
            _exit(2);
        }
        fclose(statm);
        struct rlimit lim = { (rlim_t)pages * 4096 + (256ULL << 20),
                              (rlim_t)pages * 4096 + (256ULL << 20) };
        if (setrlimit(RLIMIT_AS, &lim) != 0 || store_grow(s) != GL_EUNAVAILABLE) {
            _exit(3);
        }
        request_create r = fixture_request("k1", "D01", "sanitation", "13800000000");
        store_txn *t = NULL;
        store_created out;
        gl_error e;
        store_reader *rd = NULL;
        gl_str raw;
        if (store_write_begin(s, &t) != 0
            || store_case_create(t, gl_str_c("dev"), &r, T0, &out, &e) != 0
            || store_write_commit(&t) != 0 || store_read_begin(s, &rd) != 0
            || store_read_case(rd, 1, &raw) != 0) {
            _exit(4);
        }
        store_read_end(&rd);
        free(out.data);
        store_destroy(&s);
        _exit(0);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fixture_rmdir(dir);
}

/* Opens the store's environment with LMDB itself and begins a transaction (flags 0 or
 * MDB_RDONLY, for both), to look at or rewrite what the store wrote. The store must be
 * closed: one process may not open the same environment twice. */
static void raw_open(const char *dir, unsigned flags, MDB_env **env, MDB_txn **txn)
{
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 16), 0);
    assert_int_equal(mdb_env_open(*env, dir, flags, 0640), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, flags, txn), 0);
}

static void test_other_schema_version_is_refused_at_open(void **state)
{
    fixture *f = *state;
    char err[256];
    store_destroy(&f->s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    raw_open(f->dir, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    unsigned char v99[4] = { 0, 0, 0, 99 };
    MDB_val k = { 6, "schema" }, v = { 4, v99 };
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_null(store_new(f->dir, &opts, err, sizeof err));
    assert_non_null(strstr(err, "schema 99"));
}

static city *test_city(void)
{
    char err[256];
    city *c = city_new(NULL, err, sizeof err);
    assert_non_null(c);
    return c;
}

static route_decision decision(uint64_t id, uint64_t version, const char *unit)
{
    route_decision d;
    memset(&d, 0, sizeof d);
    d.id = id;
    d.version = version;
    d.unit = gl_str_c(unit);
    d.reason = gl_str_c("rule");
    return d;
}

static int dispatch(store *s, const city *c, const route_decision *d, int64_t now, gl_error *err)
{
    store_txn *t = NULL;
    assert_int_equal(store_write_begin(s, &t), 0);
    int rc = store_case_dispatch(t, c, d, now, gl_str_c("router"), err);
    assert_int_equal(store_write_commit(&t), 0);
    return rc;
}

/* Schemas 1-4 kept request_ids in idem as sender, NUL, request_id: moves every key of
 * requests (request_id, NUL, sender) there, in that form. Returns how many. */
static int move_requests_to_idem(MDB_txn *txn)
{
    MDB_dbi requests, idem;
    MDB_cursor *cur;
    MDB_val k, v;
    int moved = 0;
    assert_int_equal(mdb_dbi_open(txn, "requests", 0, &requests), 0);
    assert_int_equal(mdb_dbi_open(txn, "idem", 0, &idem), 0);
    assert_int_equal(mdb_cursor_open(txn, requests, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *key = k.mv_data;
        size_t nul = k.mv_size;
        while (nul > 0 && key[nul - 1] != 0) {
            nul--;
        }
        assert_true(nul > 1 && k.mv_size < 300);
        size_t sender = k.mv_size - nul;
        unsigned char old[300];
        memcpy(old, key + nul, sender);
        old[sender] = 0;
        memcpy(old + sender + 1, key, nul - 1);
        MDB_val ok = { k.mv_size, old };
        assert_int_equal(mdb_put(txn, idem, &ok, &v, 0), 0);
        moved++;
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_drop(txn, requests, 0), 0);
    return moved;
}

/* Rewrites the store as an older schema wrote it. Schemas 1-4: the request_ids in idem,
 * sender first (move_requests_to_idem). Schema 3: the posting lists without partitions
 * (key: tag and value only). Schemas 1 and 2: every posting back into index as a key of
 * its own (tag, value, NUL, id), without the unit-and-state entries ('v') for schema 1,
 * and the posting database emptied. */
static void make_legacy_schema(const char *dir, unsigned version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, index, post;
    MDB_cursor *cur;
    MDB_val k, v;
    int moved = 0;
    raw_open(dir, 0, &env, &txn);
    assert_true(move_requests_to_idem(txn) > 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(txn, "index", 0, &index), 0);
    assert_int_equal(mdb_dbi_open(txn, "post", MDB_DUPSORT | MDB_DUPFIXED, &post), 0);
    assert_int_equal(mdb_cursor_open(txn, post, &cur), 0);
    struct { unsigned char key[128]; size_t len; unsigned char id[8]; } *olds = NULL;
    size_t n_olds = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* tag, value, NUL, 4 partition bytes: the old key is tag and value. */
        assert_true(k.mv_size > 5 && k.mv_size - 5 + 9 <= sizeof olds->key && v.mv_size == 8);
        assert_int_equal(((const unsigned char *)k.mv_data)[k.mv_size - 5], 0);
        if (version == 4 || (version == 1 && ((const char *)k.mv_data)[0] == 'v')) {
            continue;
        }
        olds = realloc(olds, (n_olds + 1) * sizeof *olds);
        assert_non_null(olds);
        memcpy(olds[n_olds].key, k.mv_data, k.mv_size - 5);
        olds[n_olds].len = k.mv_size - 5;
        memcpy(olds[n_olds].id, v.mv_data, 8);
        n_olds++;
    }
    mdb_cursor_close(cur);
    if (version != 4) {
        assert_int_equal(mdb_drop(txn, post, 0), 0);
    }
    for (size_t i = 0; i < n_olds; i++) {
        if (version == 3) {
            MDB_val ok = { olds[i].len, olds[i].key }, ov = { 8, olds[i].id };
            assert_int_equal(mdb_put(txn, post, &ok, &ov, 0), 0);
        } else {
            unsigned char old[160];
            memcpy(old, olds[i].key, olds[i].len);
            old[olds[i].len] = 0;
            memcpy(old + olds[i].len + 1, olds[i].id, 8);
            MDB_val ok = { olds[i].len + 9, old }, ov = { 0, "" };
            assert_int_equal(mdb_put(txn, index, &ok, &ov, 0), 0);
        }
        moved++;
    }
    free(olds);
    assert_true(moved > 0 || version == 4);
    unsigned char ver[4] = { 0, 0, 0, (unsigned char)version };
    MDB_val sk = { 6, "schema" }, sv = { 4, ver };
    assert_int_equal(mdb_put(txn, meta, &sk, &sv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A store of an older schema is upgraded at open: its list entries become posting
 * lists (schema 3) and, from schema 1, the unit-and-state entries are built. Every
 * list filter then finds what it found before; nothing is left in the old layout. */
static void upgrade_from(void **state, unsigned version)
{
    fixture *f = *state;
    city *c = test_city();
    store_created out;
    gl_error err;
    char errbuf[256];
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        request_create r = fixture_request(key, "D01", "street_lights", "13800000001");
        assert_int_equal(create(f->s, &r, T0 + i, &out, &err), 0);
        free(out.data);
        route_decision d = decision((uint64_t)i + 1, 1, "D01-S01-OFFICE");
        assert_int_equal(dispatch(f->s, c, &d, T0 + 100, &err), 0);
    }
    store_destroy(&f->s);
    make_legacy_schema(f->dir, version);

    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);
    id_list l;
    uint64_t next;
    request_filter flt = no_filter();
    flt.state = CASE_DISPATCHED;
    flt.unit = gl_str_c("D01-S01-OFFICE");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);
    flt = no_filter();
    flt.reporter_phone = gl_str_c("13800000001");
    list(f->s, &flt, 1, 50, 1000, &l, &next);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 2);
    flt = no_filter();
    flt.category = gl_str_c("street_lights");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);
    flt = no_filter();
    flt.state = CASE_REGISTERED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 0);

    /* A request_id acknowledged before the upgrade still replays, or conflicts. */
    request_create again = fixture_request("k1", "D01", "street_lights", "13800000001");
    assert_int_equal(create(f->s, &again, T0 + 9, &out, &err), 0);
    assert_true(out.replayed);
    assert_int_equal(out.id, 2);
    free(out.data);
    again.description = gl_str_c("something else");
    assert_int_equal(create(f->s, &again, T0 + 9, &out, &err), GL_ECONFLICT);
    free(out.data);

    /* And the next case goes on in the new layout alone. */
    request_create r = fixture_request("k9", "D01", "street_lights", "13800000001");
    assert_int_equal(create(f->s, &r, T0 + 10, &out, &err), 0);
    free(out.data);
    flt = no_filter();
    flt.state = CASE_REGISTERED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], 4);
    store_destroy(&f->s);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi index;
    MDB_cursor *cur;
    MDB_val k, v;
    raw_open(f->dir, MDB_RDONLY, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "index", 0, &index), 0);
    assert_int_equal(mdb_cursor_open(txn, index, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        assert_non_null(strchr("xyD~", ((const char *)k.mv_data)[0]));
    }
    mdb_cursor_close(cur);
    /* the old request_ids stay where they were; only the new one is in requests */
    MDB_dbi idem, requests;
    MDB_stat st;
    assert_int_equal(mdb_dbi_open(txn, "idem", 0, &idem), 0);
    assert_int_equal(mdb_dbi_open(txn, "requests", 0, &requests), 0);
    assert_int_equal(mdb_stat(txn, idem, &st), 0);
    assert_int_equal(st.ms_entries, 3);
    assert_int_equal(mdb_stat(txn, requests, &st), 0);
    assert_int_equal(st.ms_entries, 1);
    assert_int_equal(mdb_get(txn, requests, &(MDB_val){ 6, "k9\0dev" }, &v), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    /* Opened again, now at schema 5 (no upgrade runs): the old request_ids still replay. */
    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);
    request_create first = fixture_request("k0", "D01", "street_lights", "13800000001");
    assert_int_equal(create(f->s, &first, T0 + 20, &out, &err), 0);
    assert_true(out.replayed);
    assert_int_equal(out.id, 1);
    free(out.data);
    city_destroy(&c);
}

/* The ids listed under a posting key (a tag and a value), over all its partitions,
 * read with LMDB itself (the store must be closed: one process may not open the same
 * environment twice). */
static size_t posting_ids(const char *dir, const char *key, uint64_t *ids, size_t cap)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi post;
    MDB_cursor *cur;
    size_t plen = strlen(key) + 1;   /* the key and its NUL, then 4 partition bytes */
    MDB_val k = { plen, (void *)key }, v;
    size_t n = 0;
    raw_open(dir, MDB_RDONLY, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "post", 0, &post), 0);
    assert_int_equal(mdb_cursor_open(txn, post, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && n < cap && k.mv_size == plen + 4 && memcmp(k.mv_data, key, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        assert_int_equal(v.mv_size, 8);
        uint64_t id = 0;
        for (int i = 0; i < 8; i++) {
            id = id << 8 | ((const unsigned char *)v.mv_data)[i];
        }
        ids[n++] = id;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* Posting changes are applied at the commit, grouped by key: within one transaction a
 * case created and dispatched ends in the dispatched lists only, cases that share a
 * value all land in its list, and an aborted transaction leaves no entry behind. */
static void test_list_changes_in_one_transaction_come_out_right(void **state)
{
    fixture *f = *state;
    city *c = test_city();
    store_txn *t = NULL;
    store_created out;
    gl_error err;
    id_list l;
    uint64_t next;
    request_filter flt;

    assert_int_equal(store_write_begin(f->s, &t), 0);
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        request_create r = fixture_request(key, "D01", "street_lights", "13800000001");
        assert_int_equal(store_case_create(t, gl_str_c("dev"), &r, T0 + i, &out, &err), 0);
        free(out.data);
    }
    route_decision d = decision(2, 1, "D01-S01-OFFICE");
    assert_int_equal(store_case_dispatch(t, c, &d, T0 + 100, gl_str_c("router"), &err), 0);
    assert_int_equal(store_write_commit(&t), 0);

    flt = no_filter();
    flt.state = CASE_REGISTERED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 1);
    assert_int_equal(l.ids[1], 3);
    flt.state = CASE_DISPATCHED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], 2);
    flt = no_filter();
    flt.unit = gl_str_c("D01-S01-OFFICE");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 1);
    flt = no_filter();
    flt.category = gl_str_c("street_lights");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 3);
    /* The lists themselves, not only what a filtered read makes of them. */
    uint64_t ids[8];
    char errbuf[256];
    store_destroy(&f->s);
    assert_int_equal(posting_ids(f->dir, "s0", ids, 8), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(posting_ids(f->dir, "s1", ids, 8), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(posting_ids(f->dir, "kstreet_lights", ids, 8), 3);
    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);

    /* An aborted batch: its cases and their list entries are gone, and the next batch
     * does not inherit its queued changes. */
    assert_int_equal(store_write_begin(f->s, &t), 0);
    request_create r = fixture_request("k9", "D02", "roads", "13800000002");
    assert_int_equal(store_case_create(t, gl_str_c("dev"), &r, T0 + 5, &out, &err), 0);
    free(out.data);
    store_write_abort(&t);
    assert_int_equal(store_write_begin(f->s, &t), 0);
    assert_int_equal(store_write_commit(&t), 0);
    flt = no_filter();
    flt.category = gl_str_c("roads");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 0);
    store_destroy(&f->s);
    assert_int_equal(posting_ids(f->dir, "kroads", ids, 8), 0);
    assert_int_equal(posting_ids(f->dir, "s0", ids, 8), 2);
    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);
    city_destroy(&c);
}

static void test_schema_1_is_upgraded_with_the_unit_state_index(void **state)
{
    upgrade_from(state, 1);
}

static void test_schema_2_is_upgraded_to_posting_lists(void **state)
{
    upgrade_from(state, 2);
}

static void test_schema_3_is_upgraded_to_partitioned_posting_lists(void **state)
{
    upgrade_from(state, 3);
}

static void test_schema_4_is_upgraded_keeping_its_request_ids(void **state)
{
    upgrade_from(state, 4);
}

/* A store of the current schema is opened as it is: nothing rebuilt. An entry put
 * where the rebuild would not put it is still there after a reopen. */
static void test_the_current_schema_is_not_rebuilt_at_open(void **state)
{
    fixture *f = *state;
    store_created out;
    gl_error err;
    char errbuf[256];
    request_create r = fixture_request("k1", "D01", "street_lights", "13800000001");
    assert_int_equal(create(f->s, &r, T0, &out, &err), 0);
    free(out.data);
    store_destroy(&f->s);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi post, meta;
    unsigned char key[] = { 'k', 'n', 'o', 'n', 'e', 0, 0, 0, 0, 0 }, id[8] = { 0, 0, 0, 0, 0, 0, 0, 9 };
    MDB_val k = { sizeof key, key }, v = { 8, id };
    raw_open(f->dir, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val sk = { 6, "schema" }, sv;
    assert_int_equal(mdb_get(txn, meta, &sk, &sv), 0);
    assert_int_equal(((const unsigned char *)sv.mv_data)[3], STORE_SCHEMA_VERSION);
    assert_int_equal(mdb_dbi_open(txn, "post", MDB_DUPSORT | MDB_DUPFIXED, &post), 0);
    assert_int_equal(mdb_put(txn, post, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);
    store_destroy(&f->s);
    uint64_t ids[4];
    assert_int_equal(posting_ids(f->dir, "knone", ids, 4), 1);
    assert_int_equal(ids[0], 9);
    f->s = store_new(f->dir, &opts, errbuf, sizeof errbuf);
    assert_non_null(f->s);
}

static void test_dispatch_moves_the_case_and_sets_deadlines(void **state)
{
    fixture *f = *state;
    city *c = test_city();
    store_created out;
    gl_error err;
    request_create r = fixture_request("k1", "D01", "street_lights", "1");
    r.urgency = URGENCY_EMERGENCY;
    assert_int_equal(create(f->s, &r, T0, &out, &err), 0);
    free(out.data);
    route_decision d = decision(1, 1, "D01-S01-OFFICE");
    assert_int_equal(dispatch(f->s, c, &d, T0 + 100, &err), 0);

    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    case_record cr;
    read_case(f->s, 1, &cr, &zone);
    assert_int_equal(cr.state, CASE_DISPATCHED);
    assert_true(gl_str_eq(cr.unit, "D01-S01-OFFICE"));
    assert_int_equal(cr.version, 2);
    const city_sla *cls = &c->sla[c->categories[city_category_find(c, r.category)].sla[URGENCY_EMERGENCY]];
    assert_int_equal(cr.accept_by, T0 + 100 + cls->accept_ms);
    assert_int_equal(cr.resolve_by, T0 + 100 + cls->resolve_ms);
    assert_int_equal(store_last_seq(f->s), 2);

    /* The state and unit indexes follow the change. */
    id_list l;
    uint64_t next;
    request_filter flt = no_filter();
    flt.state = CASE_REGISTERED;
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 0);
    flt.state = CASE_DISPATCHED;
    flt.unit = gl_str_c("D01-S01-OFFICE");
    list(f->s, &flt, 0, 50, 1000, &l, &next);
    assert_int_equal(l.n, 1);
    msgpack_zone_destroy(&zone);
    city_destroy(&c);
}

static void test_decision_for_a_case_that_moved_on_is_discarded(void **state)
{
    fixture *f = *state;
    city *c = test_city();
    store_created out;
    gl_error err;
    request_create r = fixture_request("k1", "D01", "street_lights", "1");
    assert_int_equal(create(f->s, &r, T0, &out, &err), 0);
    free(out.data);
    route_decision d = decision(1, 1, "D01-S01-OFFICE");
    assert_int_equal(dispatch(f->s, c, &d, T0, &err), 0);
    /* The same decision again (a task given out twice): the case is at version 2. */
    assert_int_equal(dispatch(f->s, c, &d, T0, &err), GL_ECONFLICT);
    assert_int_equal(store_last_seq(f->s), 2);      /* no second dispatched event */
    route_decision unknown = decision(1, 2, "NO-SUCH-UNIT");
    assert_int_equal(dispatch(f->s, c, &unknown, T0, &err), GL_ECONFLICT);
    route_decision missing = decision(99, 1, "D01-S01-OFFICE");
    assert_int_equal(dispatch(f->s, c, &missing, T0, &err), GL_ENOT_FOUND);
    city_destroy(&c);
}

static void test_decision_naming_no_unit_is_refused(void **state)
{
    fixture *f = *state;
    city *c = test_city();
    store_created out;
    gl_error err;
    request_create r = fixture_request("k1", "D01", "street_lights", "1");
    assert_int_equal(create(f->s, &r, T0, &out, &err), 0);
    free(out.data);
    route_decision d = decision(1, 1, "NO-SUCH-UNIT");
    assert_int_equal(dispatch(f->s, c, &d, T0, &err), GL_EINVALID);
    route_decision self = decision(1, 1, "D01-S01-OFFICE");
    self.duplicate_of = 1;
    assert_int_equal(dispatch(f->s, c, &self, T0, &err), GL_EINVALID);
    city_destroy(&c);
}

static void test_candidates_are_older_open_cases_of_the_same_category_and_grid(void **state)
{
    fixture *f = *state;
    store_created out;
    gl_error err;
    struct { const char *key, *grid, *category; int64_t at; } cases[] = {
        { "old", "G1", "roads", T0 - 2 * DAY_MS },     /* outside the window */
        { "a", "G1", "roads", T0 },
        { "b", "G2", "roads", T0 + 1 },                 /* another grid */
        { "c", "G1", "sewers", T0 + 2 },                /* another category */
        { "d", "G1", "roads", T0 + 3 },
        { "me", "G1", "roads", T0 + 4 },
        { "later", "G1", "roads", T0 + 5 },             /* newer than the case */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        request_create r = fixture_request(cases[i].key, "D01", cases[i].category, "1");
        r.location.grid = gl_str_c(cases[i].grid);
        assert_int_equal(create(f->s, &r, cases[i].at, &out, &err), 0);
        free(out.data);
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    case_record me;
    read_case(f->s, 6, &me, &zone);
    store_reader *rd = NULL;
    route_candidate cands[8];
    assert_int_equal(store_read_begin(f->s, &rd), 0);
    uint32_t n = store_route_candidates(rd, &me, DAY_MS, cands, 8);
    store_read_end(&rd);
    assert_int_equal(n, 2);
    assert_int_equal(cands[0].id, 2);
    assert_int_equal(cands[1].id, 5);
    msgpack_zone_destroy(&zone);
}

static void test_duplicate_of_a_duplicate_links_to_the_root(void **state)
{
    fixture *f = *state;
    city *c = test_city();
    store_created out;
    gl_error err;
    const char *keys[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        request_create r = fixture_request(keys[i], "D01", "roads", "1");
        r.location.grid = gl_str_c("G1");
        assert_int_equal(create(f->s, &r, T0 + i, &out, &err), 0);
        free(out.data);
    }
    route_decision d1 = decision(1, 1, "D01-S01-OFFICE");
    route_decision d2 = decision(2, 1, "D01-S01-OFFICE");
    route_decision d3 = decision(3, 1, "D01-S01-OFFICE");
    d2.duplicate_of = 1;
    d3.duplicate_of = 2;                       /* decided before 2's link was known */
    assert_int_equal(dispatch(f->s, c, &d1, T0 + 10, &err), 0);
    assert_int_equal(dispatch(f->s, c, &d2, T0 + 10, &err), 0);
    assert_int_equal(dispatch(f->s, c, &d3, T0 + 10, &err), 0);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    case_record cr;
    read_case(f->s, 3, &cr, &zone);
    assert_int_equal(cr.duplicate_of, 1);

    /* A later report in the cell sees the duplicate with its link. */
    request_create r4 = fixture_request("d", "D01", "roads", "1");
    r4.location.grid = gl_str_c("G1");
    assert_int_equal(create(f->s, &r4, T0 + 20, &out, &err), 0);
    free(out.data);
    case_record me;
    read_case(f->s, 4, &me, &zone);
    store_reader *rd = NULL;
    route_candidate cands[8];
    assert_int_equal(store_read_begin(f->s, &rd), 0);
    uint32_t n = store_route_candidates(rd, &me, DAY_MS, cands, 8);
    store_read_end(&rd);
    assert_int_equal(n, 3);
    assert_int_equal(cands[1].id, 2);
    assert_int_equal(cands[1].duplicate_of, 1);
    msgpack_zone_destroy(&zone);
    city_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_created_case_reads_back_by_id_and_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_is_upgraded_with_the_unit_state_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_2_is_upgraded_to_posting_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_3_is_upgraded_to_partitioned_posting_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_4_is_upgraded_keeping_its_request_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_current_schema_is_not_rebuilt_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_changes_in_one_transaction_come_out_right, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_key_same_request_replays_the_original, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_key_different_request_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_scopes_the_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_batch_gives_its_numbers_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_codes_count_per_day_in_the_city_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_at_never_goes_backwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_by_district_category_and_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages_with_the_cursor_without_gaps_or_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_stops_at_the_scan_budget_and_hands_back_a_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_by_created_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_holds_the_created_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_cases_and_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_check_clears_the_slot_of_a_dead_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_schema_version_is_refused_at_open, setup, teardown),
        cmocka_unit_test(test_a_grow_with_no_address_space_keeps_the_old_map),
        cmocka_unit_test_setup_teardown(test_dispatch_moves_the_case_and_sets_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_for_a_case_that_moved_on_is_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_naming_no_unit_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_candidates_are_older_open_cases_of_the_same_category_and_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_of_a_duplicate_links_to_the_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
