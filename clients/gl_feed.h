/*
 * gl_feed: a consumer of the event log (protocol.md, "feed.pull") that keeps its
 * position on disk, for agencies that follow the cases of their scope.
 *
 * The position is the sequence number of the last event the consumer has processed.
 * gl_feed_next pulls the events after it (with a long poll); the caller processes them
 * and then calls gl_feed_ack, which saves the batch's "next" durably. After a crash of
 * either side the consumer resumes after what it acknowledged: it never misses an event,
 * and it sees again only the events of a batch it had not acknowledged (process
 * idempotently, or acknowledge often).
 *
 *     gl_feed_filter flt = { .district = "D02" };
 *     gl_feed *f = gl_feed_new(client, "/var/lib/agency/feed.pos", &flt, err, sizeof(err));
 *     gl_feed_batch b;
 *     for (;;) {
 *         if (gl_feed_next(f, 25000, &b) != 0) { ... gl_feed_error(f) ...; continue; }
 *         for (uint32_t i = 0; i < b.n_events; i++) handle(&b.events[i]);
 *         gl_feed_batch_free(&b);
 *         if (gl_feed_ack(f) != 0) { ... }
 *     }
 *
 * The position file holds the sequence number in decimal and a newline. It is replaced
 * whole (a temporary file "FILE.tmp" in the same folder, fsync, rename, fsync of the
 * folder), so it is either the old position or the new one, never a torn write.
 *
 * Return values: every function returning int returns 0 or a negative GL_E* code
 * (gl_error.h); gl_feed_error tells what went wrong. A gl_feed uses its gl_client and is,
 * like it, not thread-safe.
 */
#ifndef GL_FEED_H
#define GL_FEED_H

#include "gl_client.h"
#include "gl_error.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Only events whose fields match, each member optional (NULL: any). The strings are
 * copied by gl_feed_new. */
typedef struct {
    const char *unit;
    const char *district;
    const char *category;
} gl_feed_filter;

/* One reply of feed.pull. events points into the reply kept here; it stays valid until
 * gl_feed_batch_free. */
typedef struct {
    const msgpack_object *events;   /* n_events event maps, in sequence order */
    uint32_t              n_events;
    uint64_t              after;    /* the position the batch was pulled after */
    uint64_t              next;     /* where the next pull starts once this one is acked */
    uint64_t              last;     /* the highest sequence number the daemon had */
    /* private */
    char                 *buf_;
    msgpack_unpacked      u_;
} gl_feed_batch;

typedef struct gl_feed gl_feed;

#define GL_FEED_DEFAULT_LIMIT      100
#define GL_FEED_DEFAULT_TIMEOUT_MS 5000

/* Creates a consumer reading through c (which must outlive it). position_file: where the
 * position is kept; its saved value is read now (0, the start of the log, when the file
 * does not exist); NULL keeps the position in memory only. f: the filter, or NULL for
 * every event. Returns NULL with a sentence in err (if not NULL) when the file cannot
 * be read or does not hold a position, or memory runs out. Nothing is sent yet. */
gl_feed *gl_feed_new(gl_client *c, const char *position_file, const gl_feed_filter *f,
                     char *err, size_t errlen);

/* Frees *f and sets it to NULL; safe with f or *f NULL. A batch not yet acknowledged is
 * not saved. Does not destroy the gl_client. */
void gl_feed_destroy(gl_feed **f);

/* The acknowledged position (the last event processed; 0 before any). */
uint64_t gl_feed_position(const gl_feed *f);

/* Moves the position to seq (e.g. to start after a given event) and saves it like
 * gl_feed_ack. Returns 0, or GL_EINTERNAL when the file cannot be written. */
int gl_feed_set_position(gl_feed *f, uint64_t seq);

/* Events per pull, 1-1000 (default GL_FEED_DEFAULT_LIMIT); values outside are clamped. */
void gl_feed_set_limit(gl_feed *f, uint32_t limit);

/* How long to wait for a reply beyond the long poll, in ms (default
 * GL_FEED_DEFAULT_TIMEOUT_MS). */
void gl_feed_set_timeout(gl_feed *f, int timeout_ms);

/* One feed.pull after the acknowledged position: with nothing there, the daemon waits
 * up to wait_ms (0-30000, clamped) for the next event. Fills *out (free it with
 * gl_feed_batch_free) and remembers its "next" for gl_feed_ack. A batch may be empty
 * (the wait ran out; or, with a filter, nothing matched among the events examined, whose
 * "next" is still worth acknowledging). Calling gl_feed_next again without gl_feed_ack
 * pulls after the same position, so the same events come again.
 * Returns 0; on failure *out is empty (safe to free) and:
 *   GL_EUNAVAILABLE   no reply in time (the daemon is down or busy): try again later;
 *                     a resend is harmless;
 *   GL_EINVALID       the daemon refused the request; field "after" means the position
 *                     is beyond its log (the store was restored from an older copy);
 *   GL_EBAD_REQUEST   the reply is not a feed.pull reply;
 *   another daemon's code, or GL_EINTERNAL on a local failure. */
int gl_feed_next(gl_feed *f, int wait_ms, gl_feed_batch *out);

/* Frees what a batch holds and empties it; safe to call twice. */
void gl_feed_batch_free(gl_feed_batch *b);

/* Acknowledges the last batch from gl_feed_next: saves its "next" as the position
 * (durably, as described at the top) and makes it the position the next pull starts
 * after. Returns 0 (also when there is no batch to acknowledge: nothing changes), or
 * GL_EINTERNAL when the file cannot be written; the position in memory then stays
 * where it was, so the batch comes again. */
int gl_feed_ack(gl_feed *f);

/* Acknowledges part of the last batch: up to and including the event with sequence
 * number seq (for a consumer that stops in the middle of a batch). seq must lie between
 * the position and the batch's "next"; otherwise GL_EINVALID and nothing changes.
 * Returns as gl_feed_ack. */
int gl_feed_ack_seq(gl_feed *f, uint64_t seq);

/* What the last failing call said. Never NULL; owned by f. */
const gl_error *gl_feed_error(const gl_feed *f);

#endif
