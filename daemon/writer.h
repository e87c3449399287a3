/*
 * writer: the one thread that changes the store, with group commit.
 *
 * The loop thread submits operations; the writer thread takes everything queued (up
 * to max_batch), applies it in one LMDB write transaction and commits once, so one
 * pair of fsyncs serves the whole batch. Then, back on the loop thread (uv_async),
 * each operation's done callback runs with the commit's status: replies go out only
 * after the batch is durable. While one batch commits, the next one queues.
 *
 * Operations are embedded in the caller's own structs (like libuv's requests).
 *
 * Every 2 s, busy or idle, the thread also clears the LMDB reader slots of processes
 * that died inside a read transaction (store_reader_check).
 */
#ifndef WRITER_H
#define WRITER_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct writer writer;
typedef struct writer_op writer_op;

struct writer_op {
    writer_op *next;   /* the writer's; leave alone */
    int        status; /* the writer's: the batch's commit status */
    /* Writer thread, inside the batch's transaction. Returns 0 when the operation is
     * finished (its own outcome, even a refusal, is the op's to record), or a negative
     * GL_E* code when the transaction is broken: the batch is then aborted and every
     * op in it completes with that status. When the LMDB map was full, the map grows
     * and the whole batch is applied again: apply must start afresh each time (free or
     * reset what an earlier call recorded). */
    int (*apply)(writer_op *op, store_txn *txn);
    /* Loop thread, after the batch: status 0 = committed and durable; negative =
     * nothing of the batch was written. The op is the callback's to free. */
    void (*done)(writer_op *op, int status);
};

typedef struct {
    uint64_t batches;      /* committed transactions */
    uint64_t ops;          /* operations in them */
    uint64_t failed;       /* batches that could not commit */
    size_t   largest;      /* the largest batch so far */
    uint64_t apply_us;     /* time spent applying operations, in all batches */
    uint64_t commit_us;    /* time spent committing (page writes and syncs) */
} writer_stats;

/* Starts the writer thread. Returns NULL on failure. */
writer *writer_new(uv_loop_t *loop, store *s, size_t max_batch);

/* Queues op (loop thread only). Returns 0, or GL_EUNAVAILABLE once stopping. */
int writer_submit(writer *w, writer_op *op);

/* Operations submitted whose done callback has not run yet. */
size_t writer_pending(const writer *w);

/* Calls fn(arg) on the loop thread once nothing is pending (at once if nothing is). */
void writer_on_drained(writer *w, void (*fn)(void *arg), void *arg);

/* Calls fn(arg) on the loop thread after each round of done callbacks, so that work
 * that follows commits (routing new cases) runs once per batch, not once per op. */
void writer_on_batch(writer *w, void (*fn)(void *arg), void *arg);

void writer_get_stats(writer *w, writer_stats *out);

/* Lets the thread finish what is queued, joins it, runs the remaining done callbacks,
 * closes the handle (freed when libuv has closed it). Sets *w to NULL; safe twice. */
void writer_destroy(writer **w);

#endif
