/* deadlines: due deadlines -> escalation tasks -> committed outcomes (see deadlines.h). */
#include "deadlines.h"

#include "escalate_task.h"
#include "idset.h"
#include "log.h"
#include "mp_guard.h"

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
    idset            inflight;     /* cases with a deadline handed out */
    bool             stopped;
    size_t           outstanding;
    deadlines_stats  stats;
    msgpack_sbuffer  items, task;
    msgpack_zone     zone;
    store_reader    *rd;           /* while a task is being built */
    uint32_t         n_items;
    uint64_t         ids[ESCALATE_MAX_ITEMS];
};

typedef struct {
    deadlines *d;
    uint64_t  *ids;
    uint32_t   n;
} task_ctx;

typedef struct {
    writer_op          op;
    task_ctx          *task;
    escalate_decision *decisions;
    uint32_t           n, acted, discarded;
    char              *body;
} decide_op;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(deadlines *d);
static void on_timer(uv_timer_t *h);

static void task_finish(task_ctx *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        idset_del(&t->d->inflight, t->ids[i]);
    }
    t->d->outstanding--;
    free(t->ids);
    free(t);
}

static int decide_apply(writer_op *op, store_txn *txn)
{
    decide_op *x = (decide_op *)op;
    deadlines *d = x->task->d;
    int64_t now = now_ms();
    for (uint32_t i = 0; i < x->n; i++) {
        gl_error err;
        gl_error_clear(&err);
        int rc = store_case_deadline(txn, d->city, &x->decisions[i], now, gl_str_c("escalator"),
                                     &err);
        if (rc == 0) {
            x->acted++;
        } else if (rc == GL_ECONFLICT || rc == GL_ENOT_FOUND || rc == GL_EINVALID) {
            x->discarded++;
            if (rc == GL_EINVALID) {
                log_error("deadlines: a worker's decision was refused: %s", err.message);
            }
        } else {
            return rc;
        }
    }
    return 0;
}

static void decide_done(writer_op *op, int status)
{
    decide_op *x = (decide_op *)op;
    deadlines *d = x->task->d;
    if (status != 0) {
        log_error("deadlines: %u decision(s) could not be committed (%s); their deadlines "
                  "stay due", x->n, gl_error_name(status));
    } else {
        d->stats.acted += x->acted;
        d->stats.discarded += x->discarded;
    }
    task_finish(x->task);
    free(x->decisions);
    free(x->body);
    free(x);
    pump(d);
}

static void on_reply(void *arg, const void *body, size_t len)
{
    task_ctx *t = arg;
    deadlines *d = t->d;
    static const mp_guard_limits limits = { 8, 16 * ESCALATE_MAX_ITEMS + 16, 65536 };
    const char *why = NULL;
    gl_error err;
    msgpack_object o;

    if (body == NULL) {
        task_finish(t);
        return;
    }
    decide_op *x = calloc(1, sizeof *x);
    if (x == NULL || (x->body = malloc(len > 0 ? len : 1)) == NULL
        || (x->decisions = calloc(t->n > 0 ? t->n : 1, sizeof *x->decisions)) == NULL) {
        goto drop;
    }
    memcpy(x->body, body, len);
    msgpack_zone_clear(&d->zone);
    if (mp_guard_check(x->body, len, &limits, &why) != 0
        || mp_unpack(x->body, len, &d->zone, &o) != 0) {
        log_error("deadlines: a worker's reply is not MessagePack (%s)",
                  why != NULL ? why : "unreadable");
        goto drop;
    }
    if (escalate_decisions_unpack(&o, x->decisions, t->n, &x->n, &err) != 0) {
        log_error("deadlines: a worker's reply has no decisions (%s)", err.message);
        goto drop;
    }
    x->task = t;
    x->op.apply = decide_apply;
    x->op.done = decide_done;
    if (writer_submit(d->writer, &x->op) == 0) {
        return;
    }
drop:
    if (x != NULL) {
        free(x->decisions);
        free(x->body);
        free(x);
    }
    task_finish(t);
}

static int add_due(void *arg, uint64_t id, deadline_kind kind, int64_t due)
{
    deadlines *d = arg;
    gl_str raw;
    if (d->n_items == ESCALATE_MAX_ITEMS) {
        return 1;
    }
    /* One deadline of a case at a time: the next comes after this one's decision. */
    if (idset_has(&d->inflight, id)) {
        return 0;
    }
    for (uint32_t i = 0; i < d->n_items; i++) {
        if (d->ids[i] == id) {
            return 0;
        }
    }
    if (store_read_case(d->rd, id, &raw) != 0) {
        return 0;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &d->items, msgpack_sbuffer_write);
    if (escalate_task_pack_item(&pk, raw, kind) != 0) {
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
    while (!d->stopped) {
        size_t workers = broker_workers(d->broker, ESCALATE_SERVICE);
        if (workers == 0) {
            break;   /* due deadlines wait in the store for a worker */
        }
        if (d->outstanding >= TASKS_PER_WORKER * workers) {
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

        task_ctx *t = calloc(1, sizeof *t);
        uint64_t *ids = malloc(d->n_items * sizeof *ids);
        if (t == NULL || ids == NULL) {
            free(t);
            free(ids);
            work_left = true;
            break;
        }
        memcpy(ids, d->ids, d->n_items * sizeof *ids);
        t->d = d;
        t->ids = ids;
        t->n = d->n_items;
        for (uint32_t i = 0; i < t->n; i++) {
            idset_add(&d->inflight, ids[i]);
        }
        d->outstanding++;
        if (broker_submit(d->broker, ESCALATE_SERVICE, d->task.data, d->task.size, on_reply, t)
            != 0) {
            task_finish(t);
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
    msgpack_zone_init(&d->zone, 8192);
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
    msgpack_zone_destroy(&d->zone);
    idset_clear(&d->inflight);
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
