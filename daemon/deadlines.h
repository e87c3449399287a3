/*
 * deadlines: acts on deadlines as they fall due.
 *
 * Pending deadlines live in the store's index, ordered by time (warn_at, accept_by,
 * resolve_by of dispatched and accepted cases). One libuv timer is armed for the
 * earliest. When it fires, the due ones go, with their cases, to a worker of the
 * "gridline.escalate" service, which decides what each means (warn, urge, escalate up
 * the hierarchy, supervise); the writer commits each decision with the deadline marked
 * as acted on. So a restart re-arms from the index and loses nothing, and a deadline
 * fires once: a decision for one already acted on is discarded by the store.
 */
#ifndef DEADLINES_H
#define DEADLINES_H

#include "broker.h"
#include "city.h"
#include "store.h"
#include "writer.h"

#include <stdint.h>
#include <uv.h>

typedef struct deadlines deadlines;

typedef struct {
    uint64_t acted;       /* decisions committed */
    uint64_t discarded;   /* decisions for cases that had moved on */
} deadlines_stats;

/* Returns NULL on failure. */
deadlines *deadlines_new(uv_loop_t *loop, store *st, writer *w, broker *b, const city *c);

/* The store changed (a batch committed): re-arm for the earliest deadline. */
void deadlines_kick(deadlines *d);

/* A worker may have become ready. */
void deadlines_worker_ready(deadlines *d);

void deadlines_get_stats(const deadlines *d, deadlines_stats *out);

/* Stops arming and handing out work; decisions still arriving are committed. */
void deadlines_stop(deadlines *d);

/* Frees d (after the broker and writer are gone). Sets *d to NULL; safe twice. */
void deadlines_destroy(deadlines **d);

#endif
