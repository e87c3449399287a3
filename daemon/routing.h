/*
 * routing: gets every registered (or returned) case routed.
 *
 * It finds the cases waiting in the store's state index, packs them (with their
 * duplicate candidates) into tasks of up to ROUTING_TASK_MAX cases, and hands them to
 * the broker for the "gridline.route" service. Each reply's decisions are committed by
 * the writer (store_case_dispatch); only then are their cases done. A case is handed
 * out once at a time (an in-memory set of ids in flight); a task lost with its worker is
 * given out again by the broker, and a decision for a case that has moved on is
 * discarded by the store. Cases registered while no router is up wait in the store and
 * are routed as soon as one registers, since the waiting set is the store itself.
 */
#ifndef ROUTING_H
#define ROUTING_H

#include "broker.h"
#include "city.h"
#include "store.h"
#include "writer.h"

#include <stdint.h>
#include <uv.h>

#define ROUTING_TASK_MAX 512

typedef struct routing routing;

typedef struct {
    uint64_t routed;       /* decisions committed */
    uint64_t discarded;    /* decisions for cases that had moved on, or invalid */
    uint64_t tasks;        /* tasks answered */
} routing_stats;

/* Returns NULL on failure. */
routing *routing_new(uv_loop_t *loop, store *st, writer *w, broker *b, const city *c);

/* New cases may be waiting, or a worker became ready: look now (cheap: from where the
 * last look ended). */
void routing_kick(routing *r);

/* Cases handed out and not yet decided. */
size_t routing_inflight(const routing *r);

void routing_get_stats(const routing *r, routing_stats *out);

/* Stops handing out work; decisions still arriving are committed. */
void routing_stop(routing *r);

/* Frees r (after the broker and writer are gone). Sets *r to NULL; safe twice. */
void routing_destroy(routing **r);

#endif
