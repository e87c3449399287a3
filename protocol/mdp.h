/*
 * mdp: Majordomo Protocol 0.1 (ZeroMQ RFC 7) framing, client and worker side, and the
 * MMI service namespace (RFC 8).
 *
 * Works on frames as (pointer, length) pairs so that it knows nothing of sockets; the
 * ROUTER identity frame is stripped by the caller before parsing.
 */
#ifndef MDP_H
#define MDP_H

#include "mp_util.h"

#include <stdbool.h>
#include <stddef.h>

#define MDP_CLIENT "MDPC01"
#define MDP_WORKER "MDPW01"

/* Worker commands (RFC 7), one byte each. */
#define MDPW_READY      "\001"
#define MDPW_REQUEST    "\002"
#define MDPW_REPLY      "\003"
#define MDPW_HEARTBEAT  "\004"
#define MDPW_DISCONNECT "\005"

#define MDP_MAX_SERVICE 64   /* bytes in a service name */

typedef struct {
    const void *p;
    size_t      n;
} mdp_frame;

/* A client request after the identity: ["", "MDPC01", service, body]. */
typedef struct {
    bool   delimited;   /* the empty delimiter frame was there (REQ, or a polite DEALER) */
    gl_str service;     /* empty if framing broke before it */
    gl_str body;
} mdp_client_request;

/* Parses frames (identity already removed). A missing empty delimiter is refused, but
 * noted in out->delimited (false) so that the error reply can mirror the sender's
 * framing, and the service is still read when it can be. Returns 0, or -1 with *why set to a static sentence ("wrong protocol header: expected
 * MDPC01", "expected 4 frames", ...). out->service is filled whenever it could be. */
int mdp_client_parse(const mdp_frame *frames, size_t n, mdp_client_request *out,
                     const char **why);

/* True when the service name is in the MMI namespace ("mmi."). */
bool mdp_is_mmi(gl_str service);

#endif
