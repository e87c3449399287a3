/* The writer: group commit, replies after the commit, a broken batch fails whole. */
#include "store_fixture.h"
#include "writer.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

typedef struct {
    writer_op      op;
    request_create req;
    char           key[16];
    int            fail_with;     /* apply reports a broken transaction */
    int            status;
    bool           done;
    store_created  created;
} test_op;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  gate_cond = PTHREAD_COND_INITIALIZER;
static bool            gate_open;
static bool            gate_entered;
static int             done_count;

static int op_apply(writer_op *op, store_txn *txn)
{
    test_op *t = (test_op *)op;
    gl_error err;
    if (t->fail_with != 0) {
        return t->fail_with;
    }
    free(t->created.data);   /* a batch applied again after the map grew (writer.h) */
    t->created.data = NULL;
    return store_case_create(txn, gl_str_c("dev"), &t->req, 1795564800000LL, &t->created, &err);
}

static int gate_apply(writer_op *op, store_txn *txn)
{
    pthread_mutex_lock(&gate_lock);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
    return op_apply(op, txn);
}

static void op_done(writer_op *op, int status)
{
    test_op *t = (test_op *)op;
    t->status = status;
    t->done = true;
    free(t->created.data);
    t->created.data = NULL;
    done_count++;
}

/* Submits the gate op alone and waits until the writer thread is inside it, so that
 * everything submitted next queues up behind it as one batch. */
static void submit_gate(writer *w, test_op *gate)
{
    gate->op.apply = gate_apply;
    gate_open = false;
    gate_entered = false;
    assert_int_equal(writer_submit(w, &gate->op), 0);
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void init_op(test_op *t, int i)
{
    memset(t, 0, sizeof *t);
    snprintf(t->key, sizeof t->key, "k%d", i);
    t->req = fixture_request(t->key, "D01", "sanitation", "13800000000");
    t->op.apply = op_apply;
    t->op.done = op_done;
}

static void run_until(uv_loop_t *loop, int n)
{
    while (done_count < n) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* Submits ops[0] alone (the gate), then the rest behind it, so that they make one
 * batch; runs the loop until every op is done; fills *st and checks nothing is left
 * pending. The writer is destroyed twice (safe twice) and its loop closed. */
static void run_gated(store *s, test_op *ops, int n, writer_stats *st)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    writer *w = writer_new(&loop, s, 4096);
    done_count = 0;
    submit_gate(w, &ops[0]);
    for (int i = 1; i < n; i++) {
        assert_int_equal(writer_submit(w, &ops[i].op), 0);
    }
    open_gate();
    run_until(&loop, n);
    writer_get_stats(w, st);
    assert_int_equal(writer_pending(w), 0);
    writer_destroy(&w);
    writer_destroy(&w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A store at dir with a map of map_mib that may grow to max_mib (0: the default), and n
 * fresh ops for it. */
static store *open_with_ops(const char *dir, uint64_t map_mib, uint64_t max_mib,
                            test_op **ops, int n)
{
    char err[256];
    store_options o = { map_mib << 20, "GL", 0, max_mib << 20 };
    store *s = store_new(dir, &o, err, sizeof err);
    assert_non_null(s);
    *ops = calloc((size_t)n, sizeof **ops);
    assert_non_null(*ops);
    for (int i = 0; i < n; i++) {
        init_op(&(*ops)[i], i);
    }
    return s;
}

static void test_many_writes_commit_in_few_batches(void **state)
{
    enum { N = 2000 };
    char *dir = fixture_tmpdir();
    test_op *ops;
    store *s = open_with_ops(dir, 64, 0, &ops, N);
    writer_stats st;
    run_gated(s, ops, N, &st);

    assert_int_equal(st.ops, N);
    assert_true(st.batches <= 2);        /* the gate's batch, then everything else */
    assert_true(st.largest >= N - 1);
    for (int i = 0; i < N; i++) {
        assert_true(ops[i].done);
        assert_int_equal(ops[i].status, 0);
    }
    assert_int_equal(store_case_count(s), N);
    store_destroy(&s);
    free(ops);
    fixture_rmdir(dir);
}

static void test_a_broken_batch_fails_whole_and_writes_nothing(void **state)
{
    enum { N = 10 };
    char *dir = fixture_tmpdir();
    test_op *ops;
    store *s = open_with_ops(dir, 64, 0, &ops, N);
    ops[5].fail_with = GL_EUNAVAILABLE; /* batch 2: ops 1..9, broken by op 5 */
    writer_stats st;
    run_gated(s, ops, N, &st);          /* batch 1: the gate alone */

    assert_int_equal(ops[0].status, 0);
    for (int i = 1; i < N; i++) {
        assert_int_equal(ops[i].status, GL_EUNAVAILABLE);
    }
    assert_int_equal(store_case_count(s), 1);
    assert_int_equal(st.failed, 1);
    store_destroy(&s);
    free(ops);
    fixture_rmdir(dir);
}

static long file_size(const char *dir)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* N creates in one batch (behind the gate) into a map of 1 MiB that may grow to
 * max_mib; returns how many committed. */
static int fill_small_map(const char *dir, uint64_t max_mib, int n)
{
    test_op *ops;
    store *s = open_with_ops(dir, 1, max_mib, &ops, n);
    writer_stats st;
    run_gated(s, ops, n, &st);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        ok += ops[i].status == 0;
        /* A batch fails or commits whole. */
        assert_int_equal(ops[i].status, i == 0 ? 0 : ops[1].status);
    }
    assert_int_equal(store_case_count(s), ok);
    store_destroy(&s);
    free(ops);
    return ok;
}

/* A batch that does not fit the map: the map doubles (to 2 MiB here) and the same
 * batch commits, every op once. The store opens again with the 1 MiB it was first
 * given, all there. */
static void test_a_full_map_grows_and_the_batch_commits(void **state)
{
    enum { N = 3000 };
    char *dir = fixture_tmpdir();
    char err[256];
    assert_int_equal(fill_small_map(dir, 0, N), N);
    assert_true(file_size(dir) > 1L << 20);

    store_options o = { 1ULL << 20, "GL", 0, 0 };
    store *s = store_new(dir, &o, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(store_case_count(s), N);
    store_reader *r = NULL;
    gl_str raw;
    assert_int_equal(store_read_begin(s, &r), 0);
    assert_int_equal(store_read_case(r, N, &raw), 0);
    store_read_end(&r);
    store_destroy(&s);
    fixture_rmdir(dir);
}

/* At --map-max the map does not grow: the batch fails whole, nothing of it written. */
static void test_a_full_map_at_its_limit_fails_the_batch(void **state)
{
    enum { N = 3000 };
    char *dir = fixture_tmpdir();
    assert_int_equal(fill_small_map(dir, 1, N), 1);   /* the gate's own batch only */
    assert_true(file_size(dir) <= 1L << 20);
    fixture_rmdir(dir);
}

static int drained_calls;

static void on_drained(void *arg)
{
    drained_calls++;
}

static void test_drained_callback_runs_once_nothing_is_pending(void **state)
{
    char *dir = fixture_tmpdir();
    char err[256];
    store_options o = { 64ULL << 20, "GL", 0, 0 };
    store *s = store_new(dir, &o, err, sizeof err);
    uv_loop_t loop;
    uv_loop_init(&loop);
    writer *w = writer_new(&loop, s, 16);
    test_op ops[3];
    done_count = 0;
    drained_calls = 0;
    for (int i = 0; i < 3; i++) {
        init_op(&ops[i], i);
        assert_int_equal(writer_submit(w, &ops[i].op), 0);
    }
    writer_on_drained(w, on_drained, NULL);
    assert_int_equal(drained_calls, 0);
    run_until(&loop, 3);
    assert_int_equal(drained_calls, 1);
    writer_on_drained(w, on_drained, NULL);   /* nothing pending: at once */
    assert_int_equal(drained_calls, 2);
    writer_destroy(&w);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    store_destroy(&s);
    fixture_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_writes_commit_in_few_batches),
        cmocka_unit_test(test_a_broken_batch_fails_whole_and_writes_nothing),
        cmocka_unit_test(test_drained_callback_runs_once_nothing_is_pending),
        cmocka_unit_test(test_a_full_map_grows_and_the_batch_commits),
        cmocka_unit_test(test_a_full_map_at_its_limit_fails_the_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
