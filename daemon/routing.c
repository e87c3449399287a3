/* routing: registered cases -> route tasks -> committed decisions (see routing.h). */
#include "routing.h"

#include "idset.h"
#include "log.h"
#include "mp_guard.h"
#include "route_task.h"

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
    idset           inflight;
    uint64_t        cursor;        /* registered cases up to here are handed out or done */
    bool            rescan;        /* something may have been missed: look from the start */
    bool            stopped;
    size_t          outstanding;   /* tasks submitted and not yet committed */
    routing_stats   stats;
    msgpack_sbuffer items;         /* a task's items while it is being built */
    msgpack_sbuffer task;
    msgpack_zone    zone;
    uint32_t        n_items;
    uint64_t        seen_max;      /* the largest id the current look has passed */
    uint64_t       *ids;           /* a task's case ids while it is being built */
};

typedef struct {
    routing  *r;
    uint64_t *ids;
    uint32_t  n;
} task_ctx;

typedef struct {
    writer_op       op;
    task_ctx       *task;
    route_decision *decisions;
    uint32_t        n;
    uint32_t        routed, discarded;
    char           *body;          /* the decisions' strings point here */
} dispatch_op;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(routing *r);

static void task_finish(task_ctx *t)
{
    routing *r = t->r;
    for (uint32_t i = 0; i < t->n; i++) {
        idset_del(&r->inflight, t->ids[i]);
    }
    r->outstanding--;
    free(t->ids);
    free(t);
}

static int dispatch_apply(writer_op *op, store_txn *txn)
{
    dispatch_op *d = (dispatch_op *)op;
    routing *r = d->task->r;
    int64_t now = now_ms();
    for (uint32_t i = 0; i < d->n; i++) {
        gl_error err;
        gl_error_clear(&err);
        int rc = store_case_dispatch(txn, r->city, &d->decisions[i], now, gl_str_c("router"),
                                     &err);
        if (rc == 0) {
            d->routed++;
        } else if (rc == GL_ECONFLICT || rc == GL_ENOT_FOUND || rc == GL_EINVALID) {
            d->discarded++;
            if (rc == GL_EINVALID) {
                log_error("routing: a worker's decision was refused: %s", err.message);
            } else {
                log_debug("routing: %s", err.message);
            }
        } else {
            return rc;
        }
    }
    return 0;
}

static void dispatch_done(writer_op *op, int status)
{
    dispatch_op *d = (dispatch_op *)op;
    routing *r = d->task->r;
    if (status != 0) {
        log_error("routing: %u decision(s) could not be committed (%s); they will be "
                  "routed again", d->n, gl_error_name(status));
        r->rescan = true;
    } else {
        r->stats.routed += d->routed;
        r->stats.discarded += d->discarded;
        /* Cases with no decision, or a refused one, wait for the next look. */
        if (d->routed + d->discarded < d->task->n || d->discarded > 0) {
            r->rescan = true;
        }
    }
    r->stats.tasks++;
    task_finish(d->task);
    free(d->decisions);
    free(d->body);
    free(d);
    pump(r);
}

static void on_reply(void *arg, const void *body, size_t len)
{
    task_ctx *t = arg;
    routing *r = t->r;
    static const mp_guard_limits limits = { 8, 16 * ROUTE_MAX_ITEMS + 16, 65536 };
    const char *why = NULL;
    gl_error err;
    msgpack_object o;

    if (body == NULL) {
        task_finish(t);
        return;
    }
    dispatch_op *d = calloc(1, sizeof *d);
    if (d == NULL || (d->body = malloc(len > 0 ? len : 1)) == NULL
        || (d->decisions = calloc(t->n > 0 ? t->n : 1, sizeof *d->decisions)) == NULL) {
        goto drop;
    }
    memcpy(d->body, body, len);
    msgpack_zone_clear(&r->zone);
    if (mp_guard_check(d->body, len, &limits, &why) != 0
        || mp_unpack(d->body, len, &r->zone, &o) != 0) {
        log_error("routing: a worker's reply is not MessagePack (%s); the task's cases will "
                  "be routed again", why != NULL ? why : "unreadable");
        goto drop;
    }
    if (route_decisions_unpack(&o, d->decisions, t->n, &d->n, &err) != 0) {
        log_error("routing: a worker's reply has no decisions (%s); the task's cases will "
                  "be routed again", err.message);
        goto drop;
    }
    d->task = t;
    d->op.apply = dispatch_apply;
    d->op.done = dispatch_done;
    if (writer_submit(r->writer, &d->op) != 0) {
        goto drop;
    }
    return;

drop:
    if (d != NULL) {
        free(d->decisions);
        free(d->body);
        free(d);
    }
    r->rescan = true;
    task_finish(t);
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
    if (idset_has(&r->inflight, c->id)) {
        return STORE_LIST_SKIP;
    }
    uint32_t n = store_route_candidates(cx->rd, c, r->city->dup_window_ms, cands,
                                        ROUTE_MAX_CANDIDATES);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->items, msgpack_sbuffer_write);
    if (route_task_pack_item(&pk, raw, cands, n) != 0) {
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
        if (workers == 0 || r->outstanding >= TASKS_PER_WORKER * workers) {
            return;
        }
        store_reader *rd = NULL;
        if (store_read_begin(r->store, &rd) != 0) {
            return;
        }
        if (r->rescan) {
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

        task_ctx *t = calloc(1, sizeof *t);
        uint64_t *ids = malloc(r->n_items * sizeof *ids);
        if (t == NULL || ids == NULL) {
            free(t);
            free(ids);
            r->rescan = true;
            return;
        }
        memcpy(ids, r->ids, r->n_items * sizeof *ids);
        t->r = r;
        t->ids = ids;
        t->n = r->n_items;
        for (uint32_t i = 0; i < t->n; i++) {
            idset_add(&r->inflight, ids[i]);
        }
        r->outstanding++;
        if (broker_submit(r->broker, ROUTE_SERVICE, r->task.data, r->task.size, on_reply, t) != 0) {
            r->rescan = true;
            task_finish(t);
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
    msgpack_sbuffer_init(&r->task);
    msgpack_zone_init(&r->zone, 8192);
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
    return r->inflight.n;
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
    msgpack_sbuffer_destroy(&r->task);
    msgpack_zone_destroy(&r->zone);
    idset_clear(&r->inflight);
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
