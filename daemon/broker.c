/* broker: MDP/0.1 worker side with at-least-once tasks (see broker.h). */
#include "broker.h"

#include "gl_error.h"
#include "log.h"
#include "mdp.h"
#include "zwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MAX_FRAMES   8
#define MAX_IDENTITY 255
#define MAX_SERVICE  MDP_MAX_SERVICE
#define TICK_MS      500

typedef struct task task;
typedef struct worker worker;

struct task {
    task           *next;
    uint64_t        id;
    char            service[MAX_SERVICE + 1];
    char           *body;
    size_t          len;
    broker_reply_fn fn;
    void           *arg;
    uint64_t        deadline;     /* uv_now() when the holder's time is up */
    unsigned        attempts;
};

struct worker {
    worker        *next;
    unsigned char  identity[MAX_IDENTITY];
    size_t         identity_len;
    char           service[MAX_SERVICE + 1];
    uint64_t       expiry;        /* uv_now() after which silence means dead */
    uint64_t       last_sent;
    task          *task;          /* held, or NULL when idle */
};

struct broker {
    uv_loop_t *loop;
    void      *sock;
    zwatch    *watch;
    uv_timer_t tick;
    int        task_timeout_ms;
    task      *waiting, *waiting_tail;
    worker    *workers;
    uint64_t   next_task_id;
    void     (*ready_fn)(void *);
    void      *ready_arg;
    bool       closing;
};

/* --- sending --- */

/* Sends [identity, "", "MDPW01", cmd, (client, "", body)]. Returns 0, or -1 when the
 * worker is not connected any more (ZMQ_ROUTER_MANDATORY). */
static int send_cmd(broker *b, worker *w, const char *cmd, const char *client,
                    const void *body, size_t len)
{
    const int more = ZMQ_SNDMORE | ZMQ_DONTWAIT;
    if (zmq_send(b->sock, w->identity, w->identity_len, more) < 0) {
        return -1;
    }
    zmq_send(b->sock, "", 0, more);
    zmq_send(b->sock, MDP_WORKER, strlen(MDP_WORKER), more);
    if (client == NULL) {
        zmq_send(b->sock, cmd, 1, ZMQ_DONTWAIT);
    } else {
        zmq_send(b->sock, cmd, 1, more);
        zmq_send(b->sock, client, strlen(client), more);
        zmq_send(b->sock, "", 0, more);
        zmq_send(b->sock, body, len, ZMQ_DONTWAIT);
    }
    w->last_sent = uv_now(b->loop);
    return 0;
}

/* --- tasks and workers --- */

static void queue_back(broker *b, task *t)
{
    t->next = NULL;
    if (b->waiting_tail != NULL) {
        b->waiting_tail->next = t;
    } else {
        b->waiting = t;
    }
    b->waiting_tail = t;
}

static void queue_front(broker *b, task *t)
{
    t->next = b->waiting;
    b->waiting = t;
    if (b->waiting_tail == NULL) {
        b->waiting_tail = t;
    }
}

static void worker_printable_id(const worker *w, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < w->identity_len && n + 3 < cap; i++) {
        unsigned char ch = w->identity[i];
        if (ch >= 0x20 && ch < 0x7f) {
            out[n++] = (char)ch;
        } else {
            n += (size_t)snprintf(out + n, cap - n, "%02x", ch);
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

/* Removes w; its task, if any, goes back to the front of the queue. */
static void worker_delete(broker *b, worker *w, const char *why)
{
    char name[64];
    worker_printable_id(w, name, sizeof name);
    for (worker **pp = &b->workers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    if (w->task != NULL) {
        log_warn("worker %s (%s) %s: its task %" PRIu64 " goes to another worker", name,
                 w->service, why, w->task->id);
        w->task->attempts++;
        queue_front(b, w->task);
    } else {
        log_info("worker %s (%s) %s", name, w->service, why);
    }
    free(w);
}

static void worker_disconnect(broker *b, worker *w, const char *why)
{
    send_cmd(b, w, MDPW_DISCONNECT, NULL, NULL, 0);
    worker_delete(b, w, why);
}

static worker *worker_find(broker *b, const void *identity, size_t len)
{
    for (worker *w = b->workers; w != NULL; w = w->next) {
        if (w->identity_len == len && memcmp(w->identity, identity, len) == 0) {
            return w;
        }
    }
    return NULL;
}

/* Gives waiting tasks to idle workers of their service, in queue order. */
static void dispatch(broker *b)
{
    task **pp = &b->waiting;
    task *prev = NULL;
    while (*pp != NULL) {
        task *t = *pp;
        worker *w = b->workers;
        while (w != NULL && (w->task != NULL || strcmp(w->service, t->service) != 0)) {
            w = w->next;
        }
        if (w == NULL) {
            prev = t;
            pp = &t->next;
            continue;
        }
        char client[24];
        snprintf(client, sizeof client, "%" PRIu64, t->id);
        if (send_cmd(b, w, MDPW_REQUEST, client, t->body, t->len) != 0) {
            worker_delete(b, w, "is not connected");
            continue;   /* try this task again with the remaining workers */
        }
        *pp = t->next;
        if (b->waiting_tail == t) {
            b->waiting_tail = prev;
        }
        t->next = NULL;
        t->deadline = uv_now(b->loop) + (uint64_t)b->task_timeout_ms;
        w->task = t;
    }
}

static void notify_ready(broker *b)
{
    if (b->ready_fn != NULL) {
        b->ready_fn(b->ready_arg);
    }
}

/* --- receiving --- */

static bool frame_is(zmq_msg_t *f, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(f) == n && memcmp(zmq_msg_data(f), s, n) == 0;
}

static void handle(broker *b, zmq_msg_t *f, size_t n)
{
    size_t idlen = zmq_msg_size(&f[0]);
    if (idlen == 0 || idlen > MAX_IDENTITY) {
        return;
    }
    worker *w = worker_find(b, zmq_msg_data(&f[0]), idlen);
    if (n < 4 || zmq_msg_size(&f[1]) != 0 || !frame_is(&f[2], MDP_WORKER)
        || zmq_msg_size(&f[3]) != 1) {
        if (w != NULL) {
            worker_disconnect(b, w, "broke the MDP worker protocol");
        }
        return;
    }
    char cmd = *(const char *)zmq_msg_data(&f[3]);
    uint64_t now = uv_now(b->loop);

    if (cmd == MDPW_READY[0]) {
        if (w != NULL || n != 5 || zmq_msg_size(&f[4]) == 0 || zmq_msg_size(&f[4]) > MAX_SERVICE) {
            if (w != NULL) {
                worker_disconnect(b, w, "sent READY twice");
            } else {
                /* Not registered, so not in the table: tell it, and forget it. */
                worker tmp;
                memset(&tmp, 0, sizeof tmp);
                memcpy(tmp.identity, zmq_msg_data(&f[0]), idlen);
                tmp.identity_len = idlen;
                send_cmd(b, &tmp, MDPW_DISCONNECT, NULL, NULL, 0);
            }
            return;
        }
        w = calloc(1, sizeof *w);
        if (w == NULL) {
            return;
        }
        memcpy(w->identity, zmq_msg_data(&f[0]), idlen);
        w->identity_len = idlen;
        memcpy(w->service, zmq_msg_data(&f[4]), zmq_msg_size(&f[4]));
        w->expiry = now + BROKER_HEARTBEAT_MS * BROKER_LIVENESS;
        w->last_sent = now;
        w->next = b->workers;
        b->workers = w;
        char name[64];
        worker_printable_id(w, name, sizeof name);
        log_info("worker %s ready for %s", name, w->service);
        dispatch(b);
        notify_ready(b);
        return;
    }
    if (w == NULL) {
        /* A worker we do not know (we restarted, or it was dropped): RFC 7 says
         * disconnect it; it will reconnect and send READY. */
        worker tmp;
        memset(&tmp, 0, sizeof tmp);
        memcpy(tmp.identity, zmq_msg_data(&f[0]), idlen);
        tmp.identity_len = idlen;
        send_cmd(b, &tmp, MDPW_DISCONNECT, NULL, NULL, 0);
        return;
    }
    w->expiry = now + BROKER_HEARTBEAT_MS * BROKER_LIVENESS;
    if (cmd == MDPW_HEARTBEAT[0]) {
        return;
    }
    if (cmd == MDPW_DISCONNECT[0]) {
        worker_delete(b, w, "disconnected");
        dispatch(b);
        return;
    }
    if (cmd != MDPW_REPLY[0] || n != 7 || zmq_msg_size(&f[5]) != 0) {
        worker_disconnect(b, w, "broke the MDP worker protocol");
        dispatch(b);
        return;
    }
    char client[24];
    size_t cl = zmq_msg_size(&f[4]);
    if (w->task == NULL || cl >= sizeof client) {
        log_debug("dropping a reply from a worker that holds no task");
        return;
    }
    memcpy(client, zmq_msg_data(&f[4]), cl);
    client[cl] = '\0';
    char expect[24];
    snprintf(expect, sizeof expect, "%" PRIu64, w->task->id);
    if (strcmp(client, expect) != 0) {
        log_debug("dropping a late reply for task %s", client);
        return;
    }
    task *t = w->task;
    w->task = NULL;
    t->fn(t->arg, zmq_msg_data(&f[6]), zmq_msg_size(&f[6]));
    free(t->body);
    free(t);
    dispatch(b);
    notify_ready(b);
}

static void on_message(void *arg)
{
    broker *b = arg;
    zmq_msg_t f[MAX_FRAMES];
    size_t n = 0;
    bool too_many = false;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, b->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        bool more = zmq_msg_more(&m) != 0;
        if (n < MAX_FRAMES) {
            f[n++] = m;
        } else {
            too_many = true;
            zmq_msg_close(&m);
        }
        if (!more) {
            break;
        }
    }
    if (n > 0) {
        handle(b, f, too_many ? 1 : n);   /* 1: refused as broken framing */
    }
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&f[i]);
    }
    /* Sends above may have eaten the edge of messages still queued. */
    if (b->watch != NULL) {
        zwatch_kick(b->watch);
    }
}

/* --- time --- */

static void on_tick(uv_timer_t *h)
{
    broker *b = h->data;
    uint64_t now = uv_now(b->loop);
    bool changed = false;
    worker *w = b->workers;
    while (w != NULL) {
        worker *next = w->next;
        if (now > w->expiry) {
            worker_delete(b, w, "stopped heartbeating");
            changed = true;
        } else if (w->task != NULL && now > w->task->deadline) {
            worker_disconnect(b, w, "did not answer within the task timeout");
            changed = true;
        } else if (now - w->last_sent >= BROKER_HEARTBEAT_MS) {
            if (send_cmd(b, w, MDPW_HEARTBEAT, NULL, NULL, 0) != 0) {
                worker_delete(b, w, "is not connected");
                changed = true;
            }
        }
        w = next;
    }
    if (changed) {
        dispatch(b);
        notify_ready(b);
    }
    zwatch_kick(b->watch);
}

/* --- the interface --- */

broker *broker_new(uv_loop_t *loop, void *zctx, const char *endpoint, int task_timeout_ms,
                   char *err, size_t errlen)
{
    broker *b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->loop = loop;
    b->task_timeout_ms = task_timeout_ms > 0 ? task_timeout_ms : 2000;
    b->next_task_id = 1;
    b->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (b->sock == NULL) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        free(b);
        return NULL;
    }
    /* linger 100 ms rather than 0: see tap.c, the same libzmq abort applies when a worker
     * drops while a linger-0 close cuts a half-sent multipart request. */
    int one = 1, linger = 100, hwm = 10000;
    int64_t maxmsg = 64 << 20;
    zmq_setsockopt(b->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(b->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(b->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(b->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot listen for workers on %s: %s", endpoint,
                 zmq_strerror(errno));
        zmq_close(b->sock);
        free(b);
        return NULL;
    }
    b->watch = zwatch_new(loop, b->sock, 256, on_message, b);
    if (b->watch == NULL) {
        snprintf(err, errlen, "cannot watch the worker socket");
        zmq_close(b->sock);
        free(b);
        return NULL;
    }
    uv_timer_init(loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    return b;
}

int broker_submit(broker *b, const char *service, const void *body, size_t len,
                  broker_reply_fn fn, void *arg)
{
    task *t = calloc(1, sizeof *t);
    if (t == NULL || (t->body = malloc(len > 0 ? len : 1)) == NULL) {
        free(t);
        return GL_EINTERNAL;
    }
    memcpy(t->body, body, len);
    t->len = len;
    snprintf(t->service, sizeof t->service, "%s", service);
    t->id = b->next_task_id++;
    t->fn = fn;
    t->arg = arg;
    queue_back(b, t);
    dispatch(b);
    zwatch_kick(b->watch);
    return 0;
}

size_t broker_workers(const broker *b, const char *service)
{
    size_t n = 0;
    for (const worker *w = b->workers; w != NULL; w = w->next) {
        n += strcmp(w->service, service) == 0;
    }
    return n;
}

size_t broker_idle_workers(const broker *b, const char *service)
{
    size_t n = 0;
    for (const worker *w = b->workers; w != NULL; w = w->next) {
        n += w->task == NULL && strcmp(w->service, service) == 0;
    }
    return n;
}

size_t broker_tasks(const broker *b, const char *service)
{
    size_t n = 0;
    for (const task *t = b->waiting; t != NULL; t = t->next) {
        n += strcmp(t->service, service) == 0;
    }
    for (const worker *w = b->workers; w != NULL; w = w->next) {
        n += w->task != NULL && strcmp(w->service, service) == 0;
    }
    return n;
}

void broker_on_ready(broker *b, void (*fn)(void *arg), void *arg)
{
    b->ready_fn = fn;
    b->ready_arg = arg;
}

void broker_forget(broker *b, const char *identity)
{
    worker *w = worker_find(b, identity, strlen(identity));
    if (w != NULL) {
        worker_delete(b, w, "exited");
        dispatch(b);
    }
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void broker_destroy(broker **bp)
{
    if (bp == NULL || *bp == NULL) {
        return;
    }
    broker *b = *bp;
    while (b->workers != NULL) {
        worker *w = b->workers;
        send_cmd(b, w, MDPW_DISCONNECT, NULL, NULL, 0);
        b->workers = w->next;
        if (w->task != NULL) {
            queue_front(b, w->task);
        }
        free(w);
    }
    while (b->waiting != NULL) {
        task *t = b->waiting;
        b->waiting = t->next;
        t->fn(t->arg, NULL, 0);
        free(t->body);
        free(t);
    }
    b->waiting_tail = NULL;
    zwatch_destroy(&b->watch);
    zmq_close(b->sock);
    uv_timer_stop(&b->tick);
    uv_close((uv_handle_t *)&b->tick, on_closed);
    *bp = NULL;
}
