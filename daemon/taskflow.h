/*
 * taskflow: work handed to a worker service whose decisions the writer commits.
 *
 * Routing and deadlines both build a task over some cases, give it to the broker,
 * decode the worker's reply into decisions, commit them in one writer operation, and
 * keep each case "in flight" meanwhile so it is not handed out twice. This module is
 * that mechanism once; each user says how to decode and commit a decision.
 */
#ifndef TASKFLOW_H
#define TASKFLOW_H

#include "broker.h"
#include "gl_error.h"
#include "store.h"
#include "writer.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct taskflow taskflow;

typedef struct {
    const char *name;            /* for the log: "routing" */
    const char *service;         /* the worker service: "gridline.route" */
    size_t      decision_size;   /* bytes of one decoded decision */
    /* Loop thread: decodes a reply into at most cap decisions. Returns 0 or an error
     * code with err set (the task's cases are then given out again later). */
    int (*decode)(const msgpack_object *body, void *decisions, uint32_t cap, uint32_t *n,
                  gl_error *err);
    /* Writer thread: commits one decision. Returns 0 (done); GL_ECONFLICT, GL_ENOT_FOUND
     * or GL_EINVALID (discarded, the transaction still good); anything else breaks the
     * transaction. */
    int (*apply)(void *ctx, store_txn *txn, const void *decision, int64_t now_ms,
                 gl_error *err);
    /* Loop thread, when a task is over: its n items, how many decisions were committed
     * and discarded, and status (0, or why nothing was committed). */
    void (*finished)(void *ctx, uint32_t n, uint32_t applied, uint32_t discarded, int status);
    void *ctx;
} taskflow_spec;

/* Returns NULL when out of memory. */
taskflow *taskflow_new(writer *w, broker *b, const taskflow_spec *spec);

/* Gives the broker a task (body) over the cases ids[0..n), which are in flight until
 * it is over. Returns 0, or GL_EINTERNAL (nothing was submitted). */
int taskflow_submit(taskflow *f, const void *body, size_t len, const uint64_t *ids,
                    uint32_t n);

bool   taskflow_inflight(const taskflow *f, uint64_t id);   /* is this case in a task */
size_t taskflow_cases(const taskflow *f);                   /* cases in flight */
size_t taskflow_tasks(const taskflow *f);                   /* tasks not yet over */

/* Frees f; call once the broker and writer hold none of its tasks. Safe twice. */
void taskflow_destroy(taskflow **f);

#endif
