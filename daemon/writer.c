/* writer: group commit on one thread (see writer.h). */
#include "writer.h"

#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* How often the writer clears stale LMDB reader slots (store_reader_check): a reader
 * killed while the daemon runs would otherwise pin its snapshot, and grow the file,
 * until the next restart. The check reads the lock file's table: cheap. */
#define READER_CHECK_MS 2000

struct writer {
    uv_loop_t      *loop;
    store          *store;
    size_t          max_batch;
    uv_async_t      async;
    pthread_t       thread;
    pthread_mutex_t lock;
    pthread_cond_t  wake;
    writer_op      *queue_head, *queue_tail;   /* submitted, not yet taken */
    writer_op      *done_head, *done_tail;     /* applied, waiting for the loop */
    bool            stopping;
    bool            thread_started;
    size_t          pending;                   /* loop thread only */
    void          (*drained_fn)(void *arg);
    void          (*batch_fn)(void *arg);
    void           *batch_arg;
    void           *drained_arg;
    writer_stats    stats;                     /* under lock */
};

static void list_append(writer_op **head, writer_op **tail, writer_op *first, writer_op *last)
{
    if (*tail != NULL) {
        (*tail)->next = first;
    } else {
        *head = first;
    }
    *tail = last;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t monotonic_ms(void)
{
    return monotonic_us() / 1000;
}

/* Applies the batch from first in one transaction and commits it. Returns the commit's
 * status; *applied is when the applying ended. */
static int writer_apply(writer *w, writer_op *first, uint64_t *applied)
{
    store_txn *txn = NULL;
    int status = store_write_begin(w->store, &txn);
    if (status != 0) {
        return status;
    }
    for (writer_op *op = first; op != NULL; op = op->next) {
        if ((status = op->apply(op, txn)) != 0) {
            break;
        }
    }
    *applied = monotonic_us();
    if (status == 0) {
        return store_write_commit(&txn);
    }
    store_write_abort(&txn);
    return status;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    uint64_t next_check = monotonic_ms() + READER_CHECK_MS;
    pthread_setname_np(pthread_self(), "gl-writer");   /* for top -H, perf and gdb */
    for (;;) {
        uint64_t now = monotonic_ms();
        if (now >= next_check) {
            store_reader_check(w->store);
            next_check = now + READER_CHECK_MS;
        }
        pthread_mutex_lock(&w->lock);
        while (w->queue_head == NULL && !w->stopping) {
            /* Wait for work, but no later than the next reader check (the condition
             * variable runs on CLOCK_MONOTONIC: see writer_new). */
            struct timespec until = { (time_t)(next_check / 1000),
                                      (long)(next_check % 1000) * 1000000 };
            if (pthread_cond_timedwait(&w->wake, &w->lock, &until) != 0) {
                break;
            }
        }
        if (w->queue_head == NULL) {
            bool stop = w->stopping;
            pthread_mutex_unlock(&w->lock);
            if (stop) {
                break;
            }
            continue;   /* the time for the reader check has come */
        }
        writer_op *first = w->queue_head, *last = first;
        size_t n = 1;
        while (last->next != NULL && n < w->max_batch) {
            last = last->next;
            n++;
        }
        w->queue_head = last->next;
        if (w->queue_head == NULL) {
            w->queue_tail = NULL;
        }
        last->next = NULL;
        pthread_mutex_unlock(&w->lock);

        uint64_t t0 = monotonic_us(), t1 = t0;
        int status = writer_apply(w, first, &t1);
        /* A full map grows (no transaction is open now), and the batch runs again. A
         * few times at most: one doubling fits any batch but the first in a tiny map. */
        for (int grown = 0; status == GL_EUNAVAILABLE && store_write_map_full() && grown < 4
                            && store_grow(w->store) == 0; grown++) {
            status = writer_apply(w, first, &t1);
        }
        if (status != 0) {
            log_error("writer: a batch of %zu operation(s) failed (%s); none of it was written%s",
                      n, gl_error_name(status), status != GL_EUNAVAILABLE ? ""
                      : store_write_map_full() ? ": the LMDB map is full and did not grow "
                        "enough (the lines before say why)"
                      : ": the disk is full or failed a write (or the batch is more than "
                        "one LMDB transaction holds: lower --max-batch)");
        }

        uint64_t t2 = monotonic_us();
        pthread_mutex_lock(&w->lock);
        w->stats.apply_us += t1 - t0;
        w->stats.commit_us += t2 - t1;
        if (status == 0) {
            w->stats.batches++;
            w->stats.ops += n;
            if (n > w->stats.largest) {
                w->stats.largest = n;
            }
        } else {
            w->stats.failed++;
        }
        for (writer_op *op = first; op != NULL; op = op->next) {
            op->status = status;
        }
        list_append(&w->done_head, &w->done_tail, first, last);
        pthread_mutex_unlock(&w->lock);
        uv_async_send(&w->async);
    }
    return NULL;
}

static void on_async(uv_async_t *h)
{
    writer *w = h->data;
    pthread_mutex_lock(&w->lock);
    writer_op *op = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);

    bool any = op != NULL;
    while (op != NULL) {
        writer_op *next = op->next;
        w->pending--;
        op->done(op, op->status);
        op = next;
    }
    if (any && w->batch_fn != NULL) {
        w->batch_fn(w->batch_arg);
    }
    if (w->pending == 0 && w->drained_fn != NULL) {
        void (*fn)(void *) = w->drained_fn;
        w->drained_fn = NULL;
        fn(w->drained_arg);
    }
}

writer *writer_new(uv_loop_t *loop, store *s, size_t max_batch)
{
    writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->loop = loop;
    w->store = s;
    w->max_batch = max_batch > 0 ? max_batch : 1;
    pthread_condattr_t attr;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        free(w);
        return NULL;
    }
    w->async.data = w;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        /* The handle is closed on the next loop turn; the struct must outlive it. */
        w->thread_started = false;
        return NULL;
    }
    w->thread_started = true;
    return w;
}

int writer_submit(writer *w, writer_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return GL_EUNAVAILABLE;
    }
    list_append(&w->queue_head, &w->queue_tail, op, op);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    w->pending++;
    return 0;
}

size_t writer_pending(const writer *w)
{
    return w->pending;
}

void writer_on_drained(writer *w, void (*fn)(void *arg), void *arg)
{
    if (w->pending == 0) {
        fn(arg);
        return;
    }
    w->drained_fn = fn;
    w->drained_arg = arg;
}

void writer_on_batch(writer *w, void (*fn)(void *arg), void *arg)
{
    w->batch_fn = fn;
    w->batch_arg = arg;
}

void writer_get_stats(writer *w, writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

static void on_closed(uv_handle_t *h)
{
    writer *w = h->data;
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}

void writer_destroy(writer **wp)
{
    if (wp == NULL || *wp == NULL) {
        return;
    }
    writer *w = *wp;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->thread_started) {
        pthread_join(w->thread, NULL);
    }
    on_async(&w->async);   /* whatever completed after the last wake-up */
    uv_close((uv_handle_t *)&w->async, on_closed);
    *wp = NULL;
}
