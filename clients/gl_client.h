/*
 * gl_client: a connection to gridlined (protocol.md, "Transport"), for the gridline
 * tool, the bench and, later, the installable libgridline.
 *
 * One gl_client is one ZeroMQ DEALER socket (with its own context) connected to the
 * daemon's ROUTER. It speaks MDP/0.1 client framing: it sends
 * ["", "MDPC01", service, body] and reads ["", "MDPC01", service, body] back.
 *
 * Matching replies to requests: the caller packs an ordinary body map, without "rid".
 * gl_client_send unpacks it and packs it again with one more key, "rid", set to an
 * integer unique within this gl_client (1, 2, 3, ...); any "rid" the caller put in is
 * replaced. The daemon echoes rid, so replies may come back in any order, and a late
 * reply to a request that already timed out is recognised and dropped by
 * gl_client_call instead of being taken for the answer to the next one. The cost is
 * one unpack and re-pack of each request body, which is small next to a round trip.
 *
 * How calls report: every function returning int returns 0 or a negative GL_E* code
 * (gl_error.h). For the calls that wait for a reply:
 *   0                  the daemon answered {"ok": true, ...}; *reply holds the body.
 *   a daemon's code    the daemon answered {"ok": false, "error": {...}}; err holds its
 *                      code, message and field, and *reply still holds the body (so a
 *                      caller can show it as it came).
 *   GL_EUNAVAILABLE    no reply in time; *reply is NULL.
 *   GL_EBAD_REQUEST    what came back is not an MDP reply holding a MessagePack map
 *                      with a boolean "ok"; *reply is NULL.
 *   GL_EINTERNAL       a ZeroMQ or memory failure on this side; *reply is NULL.
 * So *reply != NULL tells a daemon's answer from a failure on the way. *reply is
 * allocated with malloc and is the caller's to free.
 *
 * A gl_client is not thread-safe (ZeroMQ sockets are not): use one per thread.
 */
#ifndef GL_CLIENT_H
#define GL_CLIENT_H

#include "gl_error.h"

#include <stddef.h>
#include <stdint.h>

#define GL_CLIENT_DEFAULT_ENDPOINT "tcp://127.0.0.1:7310"
#define GL_CLIENT_ENDPOINT_ENV     "GRIDLINE_ENDPOINT"

/* Bytes in a request id made by gl_client_request_id, not counting the NUL. */
#define GL_CLIENT_REQUEST_ID_LEN 32

typedef struct gl_client gl_client;

/* Creates a DEALER socket (ZMQ_LINGER 0, so closing never waits for unsent requests)
 * and connects it to endpoint. ZeroMQ connects in the background: success here does not
 * mean the daemon is up; the first call finds out. Returns NULL on failure with a
 * sentence in err (if err is not NULL), e.g. "cannot connect to tcp://x: Invalid
 * argument". */
gl_client *gl_client_new(const char *endpoint, char *err, size_t errlen);

/* Key files for a daemon that has keys configured (CURVE): this client's secret key
 * file and the daemon's public key file, both as `gridline keygen` writes them. Both
 * NULL: no encryption, for a daemon in development mode. */
typedef struct {
    const char *key_file;
    const char *server_key_file;
} gl_client_keys;

/* The environment variables the tools read key files from when no option names them. */
#define GL_CLIENT_KEY_ENV        "GRIDLINE_KEY"
#define GL_CLIENT_SERVER_KEY_ENV "GRIDLINE_SERVER_KEY"

/* Fills k from $GRIDLINE_KEY and $GRIDLINE_SERVER_KEY (members left NULL when unset or
 * empty), for tools whose options override it. */
void gl_client_keys_from_env(gl_client_keys *k);

/* gl_client_new_keys with the keys gl_client_keys_from_env finds (none: plain). */
gl_client *gl_client_new_env_keys(const char *endpoint, char *err, size_t errlen);

/* gl_client_new with CURVE keys (keys NULL, or both files NULL: as gl_client_new).
 * Returns NULL with a sentence in err when a key file cannot be read or only one of the
 * two is given. A daemon that does not know this client's key refuses the handshake
 * silently (ZeroMQ gives no reply): calls then end in GL_EUNAVAILABLE, and the message
 * says to check the keys. */
gl_client *gl_client_new_keys(const char *endpoint, const gl_client_keys *keys, char *err,
                              size_t errlen);

/* gl_client_new_keys on a ZeroMQ context of the caller's (zmq_ctx_new), for a program
 * that drives many clients: they then share its I/O thread. The context is not the
 * client's: destroy every client before zmq_ctx_term. Returns NULL as above, or when
 * zmq_ctx is NULL. */
gl_client *gl_client_new_in(void *zmq_ctx, const char *endpoint, const gl_client_keys *keys,
                            char *err, size_t errlen);

/* Closes the socket, frees *c and sets *c to NULL. Safe with c or *c NULL, so safe to
 * call twice. */
void gl_client_destroy(gl_client **c);

/* The client's ZeroMQ socket, to wait on several clients at once with zmq_poll
 * (ZMQ_POLLIN: a reply is ready for gl_client_recv). Use it for nothing else. */
void *gl_client_socket(gl_client *c);

/* The endpoint given to gl_client_new. Never NULL; owned by c. */
const char *gl_client_endpoint(const gl_client *c);

/* Sends one request and waits up to timeout_ms (< 0: forever) for the reply with its rid,
 * dropping any other reply that arrives meanwhile (late answers to earlier calls).
 * body/len is a packed MessagePack map (len 0 or body NULL: an empty map). Returns as
 * described at the top of this file; on GL_EUNAVAILABLE the message reads "no reply
 * from ENDPOINT within N ms: is gridlined running?". A caller's body that is not one
 * map gives GL_EINVALID (field "body") without sending anything. err may be NULL;
 * reply_len may be NULL. */
int gl_client_call(gl_client *c, const char *service, const void *body, size_t len,
                   int timeout_ms, char **reply, size_t *reply_len, gl_error *err);

/* gl_client_call, tried up to `attempts` times (at least once) while no reply comes
 * (GL_EUNAVAILABLE) or the daemon answers `overloaded` or `unavailable`, waiting 100 ms,
 * then 200, 400, ... (at most 5 s) between tries. Safe for case.create, whose request_id
 * makes a resend return the case already stored (`replayed`), and for reads; for
 * case.act, put `version` in the body so that a resend of an action that did arrive is
 * refused with `conflict` instead of taken twice. Returns what the last try returned. */
int gl_client_call_retry(gl_client *c, const char *service, const void *body, size_t len,
                         int timeout_ms, int attempts, char **reply, size_t *reply_len,
                         gl_error *err);

/* The asynchronous halves of gl_client_call, for callers that keep several requests in
 * flight (gridline-bench).
 *
 * gl_client_send sends one request without waiting and sets *rid (if not NULL) to the
 * rid it carries. Returns 0; GL_EINVALID when body is not one map; GL_EUNAVAILABLE when
 * ZeroMQ's send queue is full (the daemon is not reading); GL_EINTERNAL on a ZeroMQ or
 * memory failure. */
int gl_client_send(gl_client *c, const char *service, const void *body, size_t len,
                   uint64_t *rid, gl_error *err);

/* Waits up to timeout_ms (0: do not wait; < 0: forever) for the next reply, whatever
 * its rid, and sets *rid to it (0 when the reply carries no integer rid). Returns as
 * described at the top of this file; GL_EUNAVAILABLE with *reply NULL just means nothing
 * came in time. rid and reply_len may be NULL. */
int gl_client_recv(gl_client *c, int timeout_ms, uint64_t *rid, char **reply,
                   size_t *reply_len, gl_error *err);

/* Asks the daemon whether it serves service_name (RFC 8 mmi.service). Returns 1 when it
 * does ("200"), 0 when it does not ("404"), GL_EUNAVAILABLE when nothing came back within
 * timeout_ms, GL_EBAD_REQUEST when the answer is neither, GL_EINTERNAL on a local
 * failure. Replies to other requests arriving meanwhile are dropped. */
int gl_client_mmi(gl_client *c, const char *service_name, int timeout_ms);

/* Writes a fresh case.create request_id into out: GL_CLIENT_REQUEST_ID_LEN lowercase hex
 * digits and a NUL, the 128 bits of a UUIDv7 (RFC 9562) without dashes: the Unix time in
 * milliseconds, then 74 bits from getrandom(). Ids made in a later millisecond sort after,
 * from any client whose clock agrees (within one they are in random order): the order
 * the daemon's idempotency index stores cheaply (protocol/README.md).
 * Returns 0, or -1 when cap is too small or the kernel gives no random bytes (out is
 * then ""). */
int gl_client_request_id(char *out, size_t cap);

/* The layout of gl_client_request_id, for callers with their own unique bits (a load
 * generator that must not spend a system call on each id): unix_ms's low 48 bits, the
 * version 7, 12 bits of rand_a, the variant 0b10 and 62 bits of rand_b. Returns 0, or -1
 * when cap is too small (out is then "", if cap > 0). */
int gl_client_request_id_format(char *out, size_t cap, uint64_t unix_ms, uint16_t rand_a,
                                uint64_t rand_b);

#endif
