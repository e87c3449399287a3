/* taskflow: tasks to workers, decisions through the writer (see taskflow.h). */
#include "taskflow.h"

#include "idset.h"
#include "log.h"
#include "mp_guard.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct taskflow {
    writer        *writer;
    broker        *broker;
    taskflow_spec  spec;
    idset          inflight;
    size_t         tasks;
    msgpack_zone   zone;
};

typedef struct {
    taskflow *f;
    uint64_t *ids;
    uint32_t  n;
} task;

typedef struct {
    writer_op op;
    task     *t;
    char     *decisions;
    uint32_t  n, applied, discarded;
    char     *body;          /* the decisions' strings point here */
} commit_op;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void task_over(task *t, uint32_t applied, uint32_t discarded, int status)
{
    taskflow *f = t->f;
    for (uint32_t i = 0; i < t->n; i++) {
        idset_del(&f->inflight, t->ids[i]);
    }
    f->tasks--;
    uint32_t n = t->n;
    free(t->ids);
    free(t);
    f->spec.finished(f->spec.ctx, n, applied, discarded, status);
}

static int commit_apply(writer_op *op, store_txn *txn)
{
    commit_op *c = (commit_op *)op;
    taskflow *f = c->t->f;
    int64_t now = now_ms();
    c->applied = c->discarded = 0;   /* afresh, should the batch be applied again */
    for (uint32_t i = 0; i < c->n; i++) {
        gl_error err;
        gl_error_clear(&err);
        int rc = f->spec.apply(f->spec.ctx, txn, c->decisions + i * f->spec.decision_size, now,
                               &err);
        if (rc == 0) {
            c->applied++;
        } else if (rc == GL_ECONFLICT || rc == GL_ENOT_FOUND || rc == GL_EINVALID) {
            c->discarded++;
            if (rc == GL_EINVALID) {
                log_error("%s: a worker's decision was refused: %s", f->spec.name, err.message);
            } else {
                log_debug("%s: %s", f->spec.name, err.message);
            }
        } else {
            return rc;
        }
    }
    return 0;
}

static void commit_done(writer_op *op, int status)
{
    commit_op *c = (commit_op *)op;
    if (status != 0) {
        log_error("%s: %u decision(s) could not be committed (%s); their cases will be "
                  "handed out again", c->t->f->spec.name, c->n, gl_error_name(status));
    }
    task *t = c->t;
    uint32_t applied = c->applied, discarded = c->discarded;
    free(c->decisions);
    free(c->body);
    free(c);
    task_over(t, status == 0 ? applied : 0, status == 0 ? discarded : 0, status);
}

static void on_reply(void *arg, const void *body, size_t len)
{
    task *t = arg;
    taskflow *f = t->f;
    /* A reply is decisions for at most the task's cases: a few objects each. */
    mp_guard_limits limits = { 8, 16 * (size_t)t->n + 16, 65536 };
    const char *why = NULL;
    gl_error err;
    msgpack_object o;
    int status = GL_EUNAVAILABLE;

    gl_error_clear(&err);
    if (body == NULL) {
        task_over(t, 0, 0, status);   /* the broker let it go (stopping) */
        return;
    }
    commit_op *c = calloc(1, sizeof *c);
    if (c == NULL || (c->body = malloc(len > 0 ? len : 1)) == NULL
        || (c->decisions = calloc(t->n > 0 ? t->n : 1, f->spec.decision_size)) == NULL) {
        status = GL_EINTERNAL;
        goto drop;
    }
    memcpy(c->body, body, len);
    msgpack_zone_clear(&f->zone);
    status = GL_EBAD_REQUEST;
    if (mp_guard_check(c->body, len, &limits, &why) != 0
        || mp_unpack(c->body, len, &f->zone, &o) != 0) {
        log_error("%s: a worker's reply is not MessagePack (%s); its cases will be handed "
                  "out again", f->spec.name, why != NULL ? why : "unreadable");
        goto drop;
    }
    if (f->spec.decode(&o, c->decisions, t->n, &c->n, &err) != 0) {
        log_error("%s: a worker's reply has no decisions (%s); its cases will be handed "
                  "out again", f->spec.name, err.message);
        goto drop;
    }
    c->t = t;
    c->op.apply = commit_apply;
    c->op.done = commit_done;
    if (writer_submit(f->writer, &c->op) == 0) {
        return;
    }
    status = GL_EUNAVAILABLE;
drop:
    if (c != NULL) {
        free(c->decisions);
        free(c->body);
        free(c);
    }
    task_over(t, 0, 0, status);
}

taskflow *taskflow_new(writer *w, broker *b, const taskflow_spec *spec)
{
    taskflow *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    f->writer = w;
    f->broker = b;
    f->spec = *spec;
    msgpack_zone_init(&f->zone, 8192);
    return f;
}

int taskflow_submit(taskflow *f, const void *body, size_t len, const uint64_t *ids,
                    uint32_t n)
{
    task *t = calloc(1, sizeof *t);
    uint64_t *copy = malloc((n > 0 ? n : 1) * sizeof *copy);
    if (t == NULL || copy == NULL) {
        free(t);
        free(copy);
        return GL_EINTERNAL;
    }
    memcpy(copy, ids, n * sizeof *copy);
    t->f = f;
    t->ids = copy;
    t->n = n;
    if (broker_submit(f->broker, f->spec.service, body, len, on_reply, t) != 0) {
        free(copy);
        free(t);
        return GL_EINTERNAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        idset_add(&f->inflight, ids[i]);
    }
    f->tasks++;
    return 0;
}

bool taskflow_inflight(const taskflow *f, uint64_t id)
{
    return idset_has(&f->inflight, id);
}

size_t taskflow_cases(const taskflow *f)
{
    return f->inflight.n;
}

size_t taskflow_tasks(const taskflow *f)
{
    return f->tasks;
}

void taskflow_destroy(taskflow **fp)
{
    if (fp == NULL || *fp == NULL) {
        return;
    }
    idset_clear(&(*fp)->inflight);
    msgpack_zone_destroy(&(*fp)->zone);
    free(*fp);
    *fp = NULL;
}
