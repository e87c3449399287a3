/*
 * zwatch: a ZeroMQ socket driven by the libuv loop.
 *
 * ZMQ_FD is edge-triggered and signals any change of the socket's state, not "a
 * message is here": after every wake-up, and after every send (which can consume the
 * edge a new message raised), ZMQ_EVENTS must be read and the socket drained until it
 * has nothing. zwatch does that with a uv_poll on the fd and a uv_idle that keeps
 * draining while messages remain, at most `budget` messages per loop turn so one busy
 * socket cannot starve the others. With nothing to read, the idle handle stops and
 * the loop sleeps: ~0% CPU when idle.
 */
#ifndef ZWATCH_H
#define ZWATCH_H

#include <uv.h>

typedef struct zwatch zwatch;

/* Called when the socket has a message: receive exactly one message (all its
 * frames) with ZMQ_DONTWAIT. */
typedef void (*zwatch_fn)(void *arg);

/* Watches zsock. Returns NULL on failure. */
zwatch *zwatch_new(uv_loop_t *loop, void *zsock, int budget, zwatch_fn on_message, void *arg);

/* Call after sending on the socket: re-checks ZMQ_EVENTS on the next loop turn. */
void zwatch_kick(zwatch *w);

/* Stops delivering messages (they stay queued in the socket). */
void zwatch_pause(zwatch *w);

/* Stops and closes the handles; the struct is freed once libuv has closed them. Does
 * not close the socket. Sets *w to NULL; safe twice. */
void zwatch_destroy(zwatch **w);

#endif
