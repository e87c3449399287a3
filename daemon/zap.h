/*
 * zap: the ZAP handler (RFC 27/ZAP) that decides, for every CURVE handshake on the
 * request and tap sockets, whether the client's public key belongs to a principal.
 *
 * It binds a REP socket at inproc://zeromq.zap.01 in the daemon's ZeroMQ context and
 * answers on the libuv loop: 200 with the principal's name as User-Id (the server reads
 * it from every message with zmq_msg_gets), or 400 for an unknown key, or for a
 * principal that may not use the socket's ZAP domain (ZAP_DOMAIN_TAP: access_tap).
 * Refused handshakes are logged with the peer address, at most a few a second.
 */
#ifndef ZAP_H
#define ZAP_H

#include "principals.h"

#include <uv.h>

#define ZAP_DOMAIN_REQUESTS "gridline"
#define ZAP_DOMAIN_TAP      "gridline.tap"

typedef struct zap zap;

/* Starts answering. Must be created before any socket with CURVE is bound. Returns NULL
 * with a message in err. */
zap *zap_new(uv_loop_t *loop, void *zctx, principals *table, char *err, size_t errlen);

/* Judges the handshakes from now on against table (the keys file read again); the
 * caller keeps the old table alive while anything still points into it. */
void zap_set_table(zap *z, principals *table);

/* Stops, closes the socket, frees *z and sets it to NULL; safe twice. */
void zap_destroy(zap **z);

#endif
