/* deadlines: due deadlines -> escalation tasks -> committed outcomes (see deadlines.h). */
#include "deadlines.h"

#include "escalate_task.h"
#include "log.h"
#include "taskflow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASKS_PER_WORKER 2
#define RETRY_MS         250   /* due work that could not be handed out yet */

struct deadlines {
    uv_loop_t       *loop;
    store           *store;
    writer          *writer;
    broker          *broker;
    const city      *city;
    uv_timer_t       timer;
    taskflow        *flow;         /* the tasks out, and their cases */
    bool             stopped;
    uint64_t         hold_until;   /* uv_now(): after a task went badly, wait till then */
    deadlines_stats  stats;
    msgpack_sbuffer  items, task;
    msgpack_sbuffer  wire;              /* one case's wire map (the store keeps another form) */
    store_reader    *rd;           /* while a task is being built */
    uint32_t         n_items;
    uint64_t         ids[ESCALATE_MAX_ITEMS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(deadlines *d);
static void on_timer(uv_timer_t *h);

static int decode(const msgpack_object *body, void *decisions, uint32_t cap, uint32_t *n,
                  gl_error *err)
{
    return escalate_decisions_unpack(body, decisions, cap, n, err);
}

static int apply(void *ctx, store_txn *txn, const void *decision, int64_t now,
                 gl_error *err)
{
    deadlines *d = ctx;
    return store_case_deadline(txn, d->city, decision, now, gl_str_c("escalator"), err);
}

static void finished(void *ctx, uint32_t n, uint32_t applied, uint32_t discarded, int status)
{
    deadlines *d = ctx;
    d->stats.acted += applied;
    d->stats.discarded += discarded;
    /* A deadline not acted on stays in the index and is due: the next look has it. Not
     * at once, or a worker that answers badly would get it back in a spin. */
    if (status != 0 || applied < n) {
        d->hold_until = uv_now(d->loop) + RETRY_MS;
    }
    pump(d);
}

static int add_due(void *arg, uint64_t id, deadline_kind kind, int64_t due)
{
    deadlines *d = arg;
    gl_str raw;
    if (d->n_items == ESCALATE_MAX_ITEMS) {
        return 1;
    }
    /* One deadline of a case at a time: the next comes after this one's decision. */
    if (taskflow_inflight(d->flow, id)) {
        return 0;
    }
    for (uint32_t i = 0; i < d->n_items; i++) {
        if (d->ids[i] == id) {
            return 0;
        }
    }
    msgpack_sbuffer_clear(&d->wire);
    if (store_read_case(d->rd, id, &raw) != 0 || store_case_wire(raw, 0, &d->wire) != 0) {
        return 0;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &d->items, msgpack_sbuffer_write);
    if (escalate_task_pack_item(&pk, gl_str_of(d->wire.data, d->wire.size), kind) != 0) {
        return 1;
    }
    d->ids[d->n_items++] = id;
    return 0;
}

static void arm(deadlines *d, bool work_left)
{
    store_reader *rd = NULL;
    int64_t due = 0, now = now_ms();
    uint64_t wait;
    if (d->stopped) {
        return;
    }
    if (work_left) {
        wait = RETRY_MS;
    } else {
        if (store_read_begin(d->store, &rd) != 0) {
            return;
        }
        int rc = store_next_deadline(rd, &due);
        store_read_end(&rd);
        if (rc != 0) {
            uv_timer_stop(&d->timer);
            return;
        }
        /* Due already but held by a task in flight: look again soon, not in a spin. */
        wait = due > now ? (uint64_t)(due - now) : RETRY_MS;
    }
    uv_timer_start(&d->timer, on_timer, wait, 0);
}

static void pump(deadlines *d)
{
    bool work_left = false;
    if (!d->stopped && uv_now(d->loop) < d->hold_until) {
        uv_timer_start(&d->timer, on_timer, d->hold_until - uv_now(d->loop), 0);
        return;
    }
    while (!d->stopped) {
        size_t workers = broker_workers(d->broker, ESCALATE_SERVICE);
        if (workers == 0) {
            break;   /* due deadlines wait in the store for a worker */
        }
        if (taskflow_tasks(d->flow) >= TASKS_PER_WORKER * workers) {
            work_left = true;
            break;
        }
        if (store_read_begin(d->store, &d->rd) != 0) {
            break;
        }
        d->n_items = 0;
        msgpack_sbuffer_clear(&d->items);
        store_due_deadlines(d->rd, now_ms(), 4 * ESCALATE_MAX_ITEMS, add_due, d);
        store_read_end(&d->rd);
        if (d->n_items == 0) {
            break;
        }
        msgpack_packer pk;
        msgpack_sbuffer_clear(&d->task);
        msgpack_packer_init(&pk, &d->task, msgpack_sbuffer_write);
        escalate_task_pack_begin(&pk, now_ms(), d->n_items);
        msgpack_sbuffer_write(&d->task, d->items.data, d->items.size);

        if (taskflow_submit(d->flow, d->task.data, d->task.size, d->ids, d->n_items) != 0) {
            work_left = true;
            break;
        }
    }
    arm(d, work_left);
}

static void on_timer(uv_timer_t *h)
{
    pump(h->data);
}

deadlines *deadlines_new(uv_loop_t *loop, store *st, writer *w, broker *b, const city *c)
{
    deadlines *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return NULL;
    }
    d->loop = loop;
    d->store = st;
    d->writer = w;
    d->broker = b;
    d->city = c;
    msgpack_sbuffer_init(&d->items);
    msgpack_sbuffer_init(&d->task);
    msgpack_sbuffer_init(&d->wire);
    taskflow_spec spec = {
        .name = "deadlines", .service = ESCALATE_SERVICE,
        .decision_size = sizeof(escalate_decision), .decode = decode, .apply = apply,
        .finished = finished, .ctx = d,
    };
    d->flow = taskflow_new(w, b, &spec);
    if (d->flow == NULL) {
        msgpack_sbuffer_destroy(&d->items);
        msgpack_sbuffer_destroy(&d->task);
        msgpack_sbuffer_destroy(&d->wire);
        free(d);
        return NULL;
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    return d;
}

void deadlines_kick(deadlines *d)
{
    pump(d);
}

void deadlines_worker_ready(deadlines *d)
{
    pump(d);
}

void deadlines_get_stats(const deadlines *d, deadlines_stats *out)
{
    *out = d->stats;
}

void deadlines_stop(deadlines *d)
{
    d->stopped = true;
    uv_timer_stop(&d->timer);
}

static void on_closed(uv_handle_t *h)
{
    deadlines *d = h->data;
    msgpack_sbuffer_destroy(&d->items);
    msgpack_sbuffer_destroy(&d->task);
    msgpack_sbuffer_destroy(&d->wire);
    taskflow_destroy(&d->flow);
    free(d);
}

void deadlines_destroy(deadlines **dp)
{
    if (dp == NULL || *dp == NULL) {
        return;
    }
    uv_timer_stop(&(*dp)->timer);
    uv_close((uv_handle_t *)&(*dp)->timer, on_closed);
    *dp = NULL;
}
