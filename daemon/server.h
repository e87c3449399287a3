/*
 * server: the request side of gridlined. A ZeroMQ ROUTER speaking MDP/0.1 client
 * framing with MessagePack bodies (protocol.md), driven by the libuv loop.
 *
 * Every request that carries a return address gets exactly one reply. Reads
 * (case.get, case.list, catalog.get, mmi.*) are answered at once from a short read
 * transaction; writes (case.create) are validated here, then queued to the writer and
 * answered only after their batch is committed.
 */
#ifndef SERVER_H
#define SERVER_H

#include "city.h"
#include "store.h"

#include <stddef.h>
#include <uv.h>

typedef struct {
    const char *endpoint;     /* "tcp://127.0.0.1:7310" */
    size_t      max_batch;    /* operations per write transaction (4096) */
    size_t      max_pending;  /* writes queued before new ones get `overloaded` */
} server_options;

typedef struct server server;

/* Binds the socket and starts serving. Returns NULL with a message in err. */
server *server_new(uv_loop_t *loop, void *zctx, store *st, const city *c,
                   const server_options *opt, char *err, size_t errlen);

/* Graceful stop: takes no more requests, lets the writer commit and answer what is in
 * flight, then closes the socket (flushing replies) and calls stopped(arg). */
void server_stop(server *s, void (*stopped)(void *arg), void *arg);

/* Frees s (after server_stop has called back); sets *s to NULL; safe twice. */
void server_destroy(server **s);

#endif
