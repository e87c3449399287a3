/*
 * broker: the worker side of gridlined. A ZeroMQ ROUTER speaking the MDP/0.1 worker
 * protocol (RFC 7: MDPW01, READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT) with its
 * heartbeating rules, so that any process that implements RFC 7 can register for a
 * service and serve it: the daemon's own gridline-router, or a city's policy written in
 * another language.
 *
 * The daemon is the only client: it submits tasks for a service; the broker gives each
 * to an idle worker of that service and calls back with the reply. Delivery is
 * at-least-once: a task whose worker disconnects, dies (stops heartbeating), is
 * forgotten (its process exited) or does not answer within the task timeout goes back
 * to the front of the queue for another worker. A late reply from a worker that lost
 * its task is dropped. So task handlers must be idempotent.
 */
#ifndef BROKER_H
#define BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BROKER_HEARTBEAT_MS 2500   /* RFC 7's default interval */
#define BROKER_LIVENESS     3      /* intervals of silence before a worker is dead */

typedef struct broker broker;

/* A task's reply (body, len) or, with body NULL, the reason it was abandoned (the
 * broker was destroyed with the task still queued). Runs on the loop thread. */
typedef void (*broker_reply_fn)(void *arg, const void *body, size_t len);

/* Binds a ROUTER at endpoint ("ipc:///path" or "tcp://..."); task_timeout_ms bounds
 * how long one worker may hold a task. Returns NULL with a message in err. */
broker *broker_new(uv_loop_t *loop, void *zctx, const char *endpoint, int task_timeout_ms,
                   char *err, size_t errlen);

/* Queues a task for service; body is copied. Returns 0 or GL_EINTERNAL (no memory). */
int broker_submit(broker *b, const char *service, const void *body, size_t len,
                  broker_reply_fn fn, void *arg);

/* Workers registered for service, and how many of them are idle. */
size_t broker_workers(const broker *b, const char *service);
size_t broker_idle_workers(const broker *b, const char *service);

/* Tasks for service waiting for a worker, or held by one. */
size_t broker_tasks(const broker *b, const char *service);

/* Calls fn(arg) whenever a worker becomes ready for service (registers or finishes
 * a task), so the submitter can offer more work. One watcher per broker. */
void broker_on_ready(broker *b, void (*fn)(void *arg), void *arg);

/* The worker whose MDP identity is `identity` is gone (its process exited): its task
 * goes back to the queue now rather than after the heartbeat or task timeout. */
void broker_forget(broker *b, const char *identity);

/* Sends DISCONNECT to every worker, drops queued tasks (their callbacks run with body
 * NULL), closes the socket; frees b once libuv has closed its handles. Sets *b to
 * NULL; safe twice. */
void broker_destroy(broker **b);

#endif
