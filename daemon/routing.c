/* routing: registered cases -> route tasks -> committed decisions (see routing.h). */
#include "routing.h"

#include "log.h"
#include "route_task.h"
#include "taskflow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCAN_BUDGET   (4 * ROUTING_TASK_MAX)
#define RESCAN_MS     1000
#define TASKS_PER_WORKER 2      /* one being worked on, one ready behind it */

struct routing {
    uv_loop_t      *loop;
    store          *store;
    writer         *writer;
    broker         *broker;
    const city     *city;
    uv_timer_t      timer;
    taskflow       *flow;          /* the tasks out, and their cases */
    uint64_t        cursor;        /* registered cases up to here are handed out or done */
    bool            rescan;        /* something may have been missed: look from the start */
    uint64_t        rescan_at;     /* ... but not before this uv_now() */
    bool            stopped;
    routing_stats   stats;
    msgpack_sbuffer items;         /* a task's items while it is being built */
    msgpack_sbuffer wire;          /* one case's wire map (the store keeps another form) */
    msgpack_sbuffer task;
    uint32_t        n_items;
    uint64_t        seen_max;      /* the largest id the current look has passed */
    uint64_t       *ids;           /* a task's case ids while it is being built */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(routing *r);

static int decode(const msgpack_object *body, void *decisions, uint32_t cap, uint32_t *n,
                  gl_error *err)
{
    return route_decisions_unpack(body, decisions, cap, n, err);
}

static int apply(void *ctx, store_txn *txn, const void *decision, int64_t now,
                 gl_error *err)
{
    routing *r = ctx;
    return store_case_dispatch(txn, r->city, decision, now, gl_str_c("router"), err);
}

static void finished(void *ctx, uint32_t n, uint32_t applied, uint32_t discarded, int status)
{
    routing *r = ctx;
    r->stats.routed += applied;
    r->stats.discarded += discarded;
    r->stats.tasks++;
    /* Cases without a committed decision wait for the next look from the start, which
     * comes with the periodic timer: a worker that answers badly is not given the same
     * cases again in a spin. */
    if (status != 0 || applied < n) {
        r->rescan = true;
        r->rescan_at = uv_now(r->loop) + RESCAN_MS;
    }
    pump(r);
}

/* Builds one task from cases in `state` after `after`; returns how many were added. */
static uint32_t collect(routing *r, store_reader *rd, case_state state, uint64_t after,
                        uint64_t *next);

typedef struct {
    routing      *r;
    store_reader *rd;
} collect_ctx;

static int collect_one(void *arg, gl_str raw, const case_record *c)
{
    collect_ctx *cx = arg;
    routing *r = cx->r;
    route_candidate cands[ROUTE_MAX_CANDIDATES];
    if (r->n_items == ROUTING_TASK_MAX) {
        return GL_EOVERLOADED;
    }
    if (c->id > r->seen_max) {
        r->seen_max = c->id;
    }
    if (taskflow_inflight(r->flow, c->id)) {
        return STORE_LIST_SKIP;
    }
    uint32_t n = store_route_candidates(cx->rd, c, r->city->dup_window_ms, cands,
                                        ROUTE_MAX_CANDIDATES);
    msgpack_packer pk;
    (void)raw;
    msgpack_sbuffer_clear(&r->wire);
    msgpack_packer_init(&pk, &r->wire, msgpack_sbuffer_write);
    if (case_record_pack(&pk, c, 0) != 0) {
        return GL_EINTERNAL;
    }
    msgpack_packer_init(&pk, &r->items, msgpack_sbuffer_write);
    if (route_task_pack_item(&pk, gl_str_of(r->wire.data, r->wire.size), cands, n) != 0) {
        return GL_EINTERNAL;
    }
    r->ids[r->n_items++] = c->id;
    return 0;
}

static uint32_t collect(routing *r, store_reader *rd, case_state state, uint64_t after,
                        uint64_t *next)
{
    request_filter f;
    memset(&f, 0, sizeof f);
    f.state = (int)state;
    f.channel = f.overdue = f.supervised = -1;
    f.created_from = INT64_MIN;
    f.created_to = INT64_MAX;
    collect_ctx cx = { r, rd };
    uint32_t before = r->n_items;
    *next = 0;
    int rc = store_list(rd, &f, after, ROUTING_TASK_MAX - r->n_items, now_ms(), SCAN_BUDGET,
                        collect_one, &cx, next);
    if (rc == GL_EOVERLOADED) {
        *next = r->seen_max > after ? r->seen_max : after;
    }
    return r->n_items - before;
}

/* Hands out tasks while there are idle routers and cases waiting. */
static void pump(routing *r)
{
    while (!r->stopped) {
        size_t workers = broker_workers(r->broker, ROUTE_SERVICE);
        if (workers == 0 || taskflow_tasks(r->flow) >= TASKS_PER_WORKER * workers) {
            return;
        }
        store_reader *rd = NULL;
        if (store_read_begin(r->store, &rd) != 0) {
            return;
        }
        if (r->rescan && uv_now(r->loop) >= r->rescan_at) {
            r->cursor = 0;
            r->rescan = false;
        }
        r->n_items = 0;
        r->seen_max = r->cursor;
        msgpack_sbuffer_clear(&r->items);
        uint64_t next = 0;
        collect(r, rd, CASE_REGISTERED, r->cursor, &next);
        /* Every registered case up to where the look stopped is now in flight (handed
         * out before, or just now): the next look starts after it. */
        r->cursor = next != 0 ? next : r->seen_max;
        if (r->n_items < ROUTING_TASK_MAX) {
            uint64_t unused;
            collect(r, rd, CASE_RETURNED, 0, &unused);
        }
        store_read_end(&rd);
        if (r->n_items == 0) {
            return;
        }

        msgpack_packer pk;
        msgpack_sbuffer_clear(&r->task);
        msgpack_packer_init(&pk, &r->task, msgpack_sbuffer_write);
        route_task_pack_begin(&pk, now_ms(), r->n_items);
        msgpack_sbuffer_write(&r->task, r->items.data, r->items.size);

        if (taskflow_submit(r->flow, r->task.data, r->task.size, r->ids, r->n_items) != 0) {
            r->rescan = true;
            return;
        }
    }
}

static void on_timer(uv_timer_t *h)
{
    routing *r = h->data;
    pump(r);
}

routing *routing_new(uv_loop_t *loop, store *st, writer *w, broker *b, const city *c)
{
    routing *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->ids = malloc(ROUTING_TASK_MAX * sizeof *r->ids);
    if (r->ids == NULL) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->store = st;
    r->writer = w;
    r->broker = b;
    r->city = c;
    msgpack_sbuffer_init(&r->items);
    msgpack_sbuffer_init(&r->wire);
    msgpack_sbuffer_init(&r->task);
    taskflow_spec spec = {
        .name = "routing", .service = ROUTE_SERVICE, .decision_size = sizeof(route_decision),
        .decode = decode, .apply = apply, .finished = finished, .ctx = r,
    };
    r->flow = taskflow_new(w, b, &spec);
    if (r->flow == NULL) {
        msgpack_sbuffer_destroy(&r->items);
        msgpack_sbuffer_destroy(&r->wire);
        msgpack_sbuffer_destroy(&r->task);
        free(r->ids);
        free(r);
        return NULL;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    /* The periodic look catches what a failed commit or a lost decision left behind. */
    uv_timer_start(&r->timer, on_timer, RESCAN_MS, RESCAN_MS);
    return r;
}

void routing_kick(routing *r)
{
    pump(r);
}

size_t routing_inflight(const routing *r)
{
    return taskflow_cases(r->flow);
}

void routing_get_stats(const routing *r, routing_stats *out)
{
    *out = r->stats;
}

void routing_stop(routing *r)
{
    r->stopped = true;
    uv_timer_stop(&r->timer);
}

static void on_closed(uv_handle_t *h)
{
    routing *r = h->data;
    msgpack_sbuffer_destroy(&r->items);
    msgpack_sbuffer_destroy(&r->wire);
    msgpack_sbuffer_destroy(&r->task);
    taskflow_destroy(&r->flow);
    free(r->ids);
    free(r);
}

void routing_destroy(routing **rp)
{
    if (rp == NULL || *rp == NULL) {
        return;
    }
    uv_timer_stop(&(*rp)->timer);
    uv_close((uv_handle_t *)&(*rp)->timer, on_closed);
    *rp = NULL;
}
