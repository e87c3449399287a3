/* zwatch: edge-triggered ZMQ_FD inside libuv (see zwatch.h). */
#include "zwatch.h"

#include "log.h"

#include <stdbool.h>
#include <stdlib.h>
#include <zmq.h>

struct zwatch {
    uv_poll_t poll;
    uv_idle_t idle;
    void     *zsock;
    int       budget;
    zwatch_fn on_message;
    void     *arg;
    bool      paused;
    int       open_handles;
};

static bool readable(zwatch *w)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(w->zsock, ZMQ_EVENTS, &events, &len) != 0) {
        return false;
    }
    return (events & ZMQ_POLLIN) != 0;
}

static void on_idle(uv_idle_t *h);

static void drain(zwatch *w)
{
    for (int i = 0; i < w->budget; i++) {
        if (w->paused || !readable(w)) {
            uv_idle_stop(&w->idle);
            return;
        }
        w->on_message(w->arg);
    }
    /* Budget spent with messages left: come back on the next turn without sleeping. */
    uv_idle_start(&w->idle, on_idle);
}

static void on_idle(uv_idle_t *h)
{
    drain(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    zwatch *w = h->data;
    if (status < 0) {
        log_error("zwatch: poll failed: %s", uv_strerror(status));
        return;
    }
    drain(w);
}

zwatch *zwatch_new(uv_loop_t *loop, void *zsock, int budget, zwatch_fn on_message, void *arg)
{
    int fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &len) != 0) {
        return NULL;
    }
    zwatch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->zsock = zsock;
    w->budget = budget > 0 ? budget : 64;
    w->on_message = on_message;
    w->arg = arg;
    if (uv_poll_init(loop, &w->poll, fd) != 0) {
        free(w);
        return NULL;
    }
    uv_idle_init(loop, &w->idle);
    w->poll.data = w;
    w->idle.data = w;
    w->open_handles = 2;
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
    /* Messages may have arrived before the watch began; their edge is gone. */
    zwatch_kick(w);
    return w;
}

void zwatch_kick(zwatch *w)
{
    if (!w->paused) {
        uv_idle_start(&w->idle, on_idle);
    }
}

void zwatch_pause(zwatch *w)
{
    w->paused = true;
    uv_poll_stop(&w->poll);
    uv_idle_stop(&w->idle);
}

static void on_closed(uv_handle_t *h)
{
    zwatch *w = h->data;
    if (--w->open_handles == 0) {
        free(w);
    }
}

void zwatch_destroy(zwatch **wp)
{
    if (wp == NULL || *wp == NULL) {
        return;
    }
    zwatch *w = *wp;
    zwatch_pause(w);
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->idle, on_closed);
    *wp = NULL;
}
