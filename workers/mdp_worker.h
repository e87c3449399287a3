/*
 * mdp_worker: one MDP/0.1 worker session (ZeroMQ RFC 7, "MDPW01") over a DEALER, for
 * the processes the daemon spawns: register for a service, take requests, answer them,
 * keep the heartbeat, and find the broker again when it goes away.
 *
 * Frames (each command starts with the empty delimiter a DEALER must send):
 *   worker -> broker  READY      "", "MDPW01", 0x01, service
 *   broker -> worker  REQUEST    "", "MDPW01", 0x02, client address, "", body
 *   worker -> broker  REPLY      "", "MDPW01", 0x03, client address, "", body
 *   both ways         HEARTBEAT  "", "MDPW01", 0x04
 *   both ways         DISCONNECT "", "MDPW01", 0x05
 *
 * Heartbeating: the worker sends a HEARTBEAT when it has sent nothing for
 * MDP_WORKER_HEARTBEAT_MS, and counts anything from the broker as a sign of life. After
 * MDP_WORKER_LIVENESS intervals of silence, or on a DISCONNECT from the broker, it
 * drops the socket and connects a new one after a pause that starts at
 * MDP_WORKER_RECONNECT_MIN_MS and doubles up to MDP_WORKER_RECONNECT_MAX_MS while the
 * broker stays silent, then says READY again. All of that happens inside
 * mdp_worker_recv, so the heartbeat is kept only while the caller is waiting there:
 * a request must be answered well within the broker's patience (3 x 2.5 s).
 *
 * Not thread-safe: one session belongs to one thread, like its ZeroMQ socket.
 */
#ifndef MDP_WORKER_H
#define MDP_WORKER_H

#include "gl_error.h"

#include <stddef.h>
#include <zmq.h>

#define MDP_WORKER_HEARTBEAT_MS     2500
#define MDP_WORKER_LIVENESS         3      /* silent intervals before the broker is dead */
#define MDP_WORKER_RECONNECT_MIN_MS 250
#define MDP_WORKER_RECONNECT_MAX_MS 5000
#define MDP_WORKER_ADDR_MAX         255    /* bytes in a client address frame */
#define MDP_WORKER_MAX_MSG          (64 * 1024 * 1024)  /* bigger messages are refused */

typedef struct mdp_worker mdp_worker;

/* Connects to the broker at endpoint (e.g. "ipc:///run/gridline/workers.ipc") and
 * sends READY for service (1 to 64 bytes). zctx is the caller's ZeroMQ context, which
 * must outlive the worker; NULL makes the worker create and own one. identity, if not
 * NULL, is the socket's routing id (1 to MDP_WORKER_ADDR_MAX bytes, not starting with
 * a zero byte), kept across reconnections: gridlined names each process it spawns
 * (--id) so that it can give out the task of one that exits at once. NULL lets
 * ZeroMQ pick one. The broker need not be up yet: ZeroMQ connects when it is.
 * Returns NULL on bad arguments (errno EINVAL), when memory runs out, or when ZeroMQ
 * refuses the socket or the endpoint (errno set). */
mdp_worker *mdp_worker_new(void *zctx, const char *endpoint, const char *service,
                           const char *identity);

/* Waits up to timeout_ms (< 0: without limit) for a request, keeping the heartbeat
 * and reconnecting as needed meanwhile.
 * body is a message the caller has initialised (zmq_msg_init) and closes afterwards;
 * on a request it holds the request's body. reply_to receives the client address to
 * pass to mdp_worker_reply; *reply_to_len is its capacity on entry (at least
 * MDP_WORKER_ADDR_MAX holds any) and its length on return.
 * Returns 1 with a request; 0 when the time ran out or a signal interrupted the wait
 * (so the caller can look at its flags); GL_EINVALID on bad arguments; GL_EINTERNAL
 * when ZeroMQ fails in a way reconnecting cannot mend (the context was terminated).
 * Malformed commands from the broker are logged and dropped; so is a request whose
 * address does not fit in reply_to or whose body is more than one frame. */
int mdp_worker_recv(mdp_worker *w, zmq_msg_t *body, char *reply_to, size_t *reply_to_len,
                    int timeout_ms);

/* Sends REPLY with body to the client at reply_to (as mdp_worker_recv gave it).
 * Returns 0; GL_EINVALID on bad arguments; GL_EUNAVAILABLE when there is no broker to
 * send to (the session is between connections, or the queue is full): the reply is
 * lost and the broker gives the request out again; GL_EINTERNAL on another ZeroMQ
 * failure. */
int mdp_worker_reply(mdp_worker *w, const char *reply_to, size_t reply_to_len,
                     const void *body, size_t len);

/* The number of times the session has reconnected to the broker. */
unsigned long mdp_worker_reconnects(const mdp_worker *w);

/* Sends DISCONNECT (waiting at most half a second for it to leave), closes the socket,
 * terminates the context if the worker owns it, frees w and sets *w to NULL. Safe to
 * call twice and with NULL. */
void mdp_worker_destroy(mdp_worker **w);

#endif
