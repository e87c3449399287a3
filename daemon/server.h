/*
 * server: the request side of gridlined. A ZeroMQ ROUTER speaking MDP/0.1 client
 * framing with MessagePack bodies (protocol.md), driven by the libuv loop.
 *
 * Every request that carries a return address gets exactly one reply. Reads
 * (case.get, case.list, feed.pull, catalog.get, mmi.*) are answered at once from a short
 * read transaction (a feed.pull with wait_ms and nothing to give waits for the next
 * commit, or its time limit); stats.query runs in the thread pool; writes (case.create) are validated here, then queued to the writer and
 * answered only after their batch is committed.
 */
#ifndef SERVER_H
#define SERVER_H

#include "city.h"
#include "principals.h"
#include "store.h"
#include "writer.h"

#include <stddef.h>
#include <uv.h>

typedef struct {
    const char   *endpoint;     /* "tcp://127.0.0.1:7310" */
    size_t        max_pending;  /* writes queued before new ones get `overloaded` */
    principals   *principals;   /* who may do what (a development table: no CURVE) */
    const char   *secret_key;   /* the daemon's CURVE secret key (Z85), with a keyed table */
} server_options;

typedef struct server server;

/* Binds the socket and starts serving; writes go to w. Returns NULL with a message in
 * err. */
server *server_new(uv_loop_t *loop, void *zctx, store *st, const city *c, writer *w,
                   const server_options *opt, char *err, size_t errlen);

/* Makes sock a CURVE server with the daemon's secret key (Z85) whose handshakes the ZAP
 * handler judges under zap_domain (zap.h). Returns 0, or -1 with errno set. */
int server_set_curve(void *sock, const char *secret_key, const char *zap_domain);

/* A write batch has committed: pulls waiting for events (feed.pull with wait_ms) are
 * answered if they now have some. */
void server_on_commit(server *s);

/* Identifies senders in table from now on (the keys file read again). Requests already
 * taken keep the principal they were taken under, so the caller keeps the old table
 * alive until the server is destroyed. */
void server_set_principals(server *s, principals *table);

/* Takes no more requests (they wait in the socket); replies still go out. */
void server_pause(server *s);

/* Closes the socket, flushing queued replies for up to ZMQ_LINGER. Call once the writer
 * has answered everything in flight. */
void server_close(server *s);

/* Frees s, once server_close has been called and the loop has run since (libuv closes
 * handles on its next turn); sets *s to NULL; safe twice. */
void server_destroy(server **s);

#endif
