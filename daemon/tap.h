/*
 * tap: the live tap. A PUB socket on which every committed event goes out as three
 * frames: the topic, the 8-byte big-endian sequence number, and the event (the same map
 * as in feed.pull).
 *
 * Topic: "ev.<district>.<category>.<type>" (an empty part stays empty, e.g.
 * "ev.D01..created"), so a subscriber filters by prefix: "ev." for everything,
 * "ev.D01." for a district, "ev.D01.roads." for a category there.
 *
 * The tap may drop under load (ZeroMQ's high-water mark bounds what a slow subscriber
 * can cost): the sequence number shows the gap, and feed.pull repairs it.
 */
#ifndef TAP_H
#define TAP_H

#include "store.h"

#include <stddef.h>
#include <uv.h>

typedef struct tap tap;

/* Binds the PUB socket; events committed from now on are published. With secret_key (the
 * daemon's CURVE secret, Z85) subscribers must pass CURVE and the ZAP handler's tap rule
 * (zap.h); NULL: open, for development mode. Returns NULL with a message in err. */
tap *tap_new(uv_loop_t *loop, void *zctx, const char *endpoint, const char *secret_key,
             store *st, char *err, size_t errlen);

/* Publishes the events committed since the last call (call after each write batch). */
void tap_publish(tap *t);

/* Closes the socket; sets *t to NULL; safe twice. */
void tap_destroy(tap **t);

/* Stops listening for subscriptions (closes the loop handles; publishing still works).
 * Call before the loop's last run; safe twice. */
void tap_close(tap *t);

#endif
