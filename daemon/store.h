/*
 * store: every case and every change to it, in LMDB.
 *
 * One environment in the data directory with named databases:
 *   meta    schema version, per-day code counters
 *   cases   id (8 bytes big-endian) -> the case in its stored form (a positional array,
 *           case_record_pack_stored; the maps of schemas 1-3 still read)
 *   codes   code -> id
 *   events  seq (8 bytes big-endian) -> the event's map (case_event); dense from 1
 *   history id + seq -> "" (a case's events in order)
 *   requests request_id NUL sender -> id + request fingerprint (schema 5: time-ordered
 *           request_ids from every sender append at one end)
 *   idem    sender NUL request_id -> the same, as schemas 1-4 wrote it; read, never
 *           written, so a request_id acknowledged before the upgrade still replays
 *   post    tag, value, NUL, partition (id >> 16, 4 bytes) -> the ids holding that
 *           value as sorted 8-byte duplicates (MDB_DUPSORT|MDB_DUPFIXED): the equality
 *           filters of case.list. Changes are queued by the transaction and written at
 *           its commit, grouped by key.
 *   index   keys that carry their own order: 'D' due time, id, kind (each open case's
 *           next deadline); 'x'/'y' duplicate candidates by place and time; '~'
 *           created_at, id (created_at is monotonic in id)
 *
 * One writer: a write transaction (store_txn) belongs to the writer thread, which
 * applies a whole batch of requests in it and commits once (group commit). Reads
 * (store_reader) are short read-only transactions on the loop thread; LMDB lets them
 * run beside the writer. Full durability: the environment is never opened with
 * MDB_NOSYNC, so a commit that returned 0 survives kill -9 and power loss.
 *
 * Return codes are the GL_E* codes of gl_error.h.
 */
#ifndef STORE_H
#define STORE_H

#include "case_record.h"
#include "city.h"
#include "escalate_task.h"
#include "gl_error.h"
#include "mp_util.h"
#include "request.h"
#include "route_task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 5: request_ids keyed request_id first; 4: partitioned posting lists. 1 to 4 are
 * upgraded at open. */
#define STORE_SCHEMA_VERSION 5

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct store_reader store_reader;

typedef struct {
    uint64_t    map_size;        /* bytes of address space for the map at first; 0 = 64 GiB */
    const char *code_prefix;     /* "GL" */
    int         utc_offset_min;  /* the city's clock, for the date in case codes */
    uint64_t    map_max;         /* store_grow's limit; 0 = 1 TiB; never below map_size */
} store_options;

/* Opens (creating if needed) the store in dir. Checks the schema version. Returns
 * NULL on failure with a message in err ("data directory X holds schema 2; this
 * gridlined reads schema 1"). */
store *store_new(const char *dir, const store_options *opt, char *err, size_t errlen);

/* Closes the environment and frees s; sets *s to NULL; safe twice. No transaction
 * may be open. */
void store_destroy(store **s);

/* Clears the reader slots of processes that died inside a read transaction
 * (mdb_reader_check): such a slot pins the snapshot it read, so no page freed since can
 * be reused and the file grows with every write. store_new does it once; the writer
 * thread again every few seconds, for a reader (mdb_stat, a backup, a tool) killed while
 * the daemon runs. Any thread, any time. Returns how many were cleared (logged when
 * any), or GL_EINTERNAL. */
int store_reader_check(store *s);

/* Cases and events so far (as of the last commit). */
uint64_t store_case_count(store *s);
uint64_t store_last_seq(store *s);

typedef struct {
    unsigned schema;     /* the copy's schema version */
    uint64_t cases;      /* cases in the copy (its last id) */
    uint64_t last_seq;   /* its last event */
    uint64_t bytes;      /* the copy's size */
} store_backup_info;

/* Hot backup: copies the store in dir into dest (created, or an empty folder) as of one
 * commit, compacted (mdb_env_copyfd2, MDB_CP_COMPACT), while a daemon may go on writing
 * it: the copy is one read transaction. Not from a process that has the store open
 * (LMDB allows one environment per file in a process): gridlined --backup is another
 * process. The copy is synced, then opened again to fill *info. To restore, stop the
 * daemon and give it dest as --data. Returns 0, or -1 with a message in err (no store in
 * dir, dest not empty, dest is dir, a write error); on failure no data.mdb is left in
 * dest, nor dest itself if it was made here. */
int store_backup(const char *dir, const char *dest, store_backup_info *info, char *err,
                 size_t errlen);

/* --- The writer's side: one write transaction at a time, on one thread. --- */

/* Begins a write transaction. Returns 0, or GL_EUNAVAILABLE (disk or map trouble). */
int store_write_begin(store *s, store_txn **txn);

/* Whether the last write transaction begun on this thread met a full LMDB map
 * (MDB_MAP_FULL) in any put or at its commit. Then store_grow, and the batch again. */
bool store_write_map_full(void);

/* Doubles the LMDB map, up to the options' map_max. Waits until no transaction of the
 * process is open (they hold a lock shared, this one exclusively): the calling thread
 * must hold none. Returns 0 when the map grew; GL_EUNAVAILABLE when it is at map_max
 * already (logged, with what to do) or the address space will not have it. */
int store_grow(store *s);

/* Commits and frees *txn (set to NULL) in every case. Returns 0 once the batch is
 * durable, GL_EUNAVAILABLE when the map or the disk is full (or the disk fails a
 * write: EIO), GL_EINTERNAL otherwise; on failure nothing of the transaction was
 * written. */
int store_write_commit(store_txn **txn);

/* Abandons the transaction: nothing of it is written. Safe with *txn NULL. */
void store_write_abort(store_txn **txn);

typedef struct {
    uint64_t id;
    bool     replayed;   /* the request_id was already registered: the original case */
    char    *data;       /* the case's MessagePack map, malloc'd: the caller frees */
    size_t   len;
} store_created;

/* Registers a case for r under (sender, r->request_id), or finds the one already
 * registered under that key. now_ms is the time of registration.
 * Returns:
 *   0                the case (new, or replayed) is in *out;
 *   GL_ECONFLICT     the key was used for a different request; err says which case;
 *                    nothing was written, the transaction is still good;
 *   GL_EUNAVAILABLE, GL_EINTERNAL
 *                    the transaction is broken (e.g. map full): abort it.
 */
int store_case_create(store_txn *txn, gl_str sender, const request_create *r, int64_t now_ms,
                      store_created *out, gl_error *err);

/* Commits a routing decision: the case goes to `dispatched` at d->unit, with
 * duplicate_of (followed to the case that one joined, if it joined one), deadlines
 * from its SLA class counted from now_ms, version + 1, and a
 * `dispatched` event by `actor` whose note is d->reason.
 * Returns:
 *   0                dispatched;
 *   GL_ENOT_FOUND    no such case;
 *   GL_ECONFLICT     the case has moved on (another version, or a state that is not
 *                    registered or returned): the decision is discarded;
 *   GL_EINVALID      d->unit is not a unit of the city, or duplicate_of is the case
 *                    itself: discarded;
 *   (these four leave the transaction good)
 *   GL_EUNAVAILABLE, GL_EINTERNAL
 *                    the transaction is broken: abort it. */
int store_case_dispatch(store_txn *txn, const city *c, const route_decision *d, int64_t now_ms,
                        gl_str actor, gl_error *err);

/* Applies a case.act action by `actor` (protocol/README.md, "case.act"): the state
 * machine, one event, version + 1. *out receives the case after the action.
 * Returns:
 *   0                done;
 *   GL_ENOT_FOUND    no such case (or, for merge, no case `into`);
 *   GL_ECONFLICT     a->version is not the case's version, or the case's state does not
 *                    allow the action (err->message names the state and what would);
 *   GL_EINVALID      a reassign to a unit the city does not have (field "unit"), a merge
 *                    into a case that is itself merged or withdrawn (field "into");
 *   GL_EFORBIDDEN    actor->check refused the case, or the merge's `into` (field
 *                    "into"), or whatever code it returned;
 *   (these leave the transaction good)
 *   GL_EUNAVAILABLE, GL_EINTERNAL
 *                    the transaction is broken: abort it. */
/* Who takes an action, and whether they may take it on the case as the transaction sees
 * it (the case may have moved since the request was read): check, when not NULL, is
 * called with the case before the action, and a non-zero return (with err set) refuses
 * it. */
typedef struct {
    gl_str name;
    int  (*check)(void *arg, const case_record *c, gl_error *err);
    void  *arg;
} store_actor;

int store_case_act(store_txn *txn, const city *c, const request_act *a,
                   const store_actor *actor, int64_t now_ms, store_created *out,
                   gl_error *err);

/* Commits an escalation worker's decision on a due deadline (escalate_task.h): marks
 * the deadline acted on, so it never fires again, and applies the outcome with one event
 * by `actor`. Returns 0; GL_ENOT_FOUND; GL_ECONFLICT when the case has moved on (another
 * version, or the deadline is no longer pending); GL_EINVALID for an escalation to a unit
 * the city does not have (all three leave the transaction good); or GL_EUNAVAILABLE /
 * GL_EINTERNAL when the transaction is broken. */
int store_case_deadline(store_txn *txn, const city *c, const escalate_decision *d,
                        int64_t now_ms, gl_str actor, gl_error *err);

/* --- The readers' side: short read transactions on the loop thread. --- */

/* Starts a read transaction. Returns 0 or GL_EINTERNAL. */
int store_read_begin(store *s, store_reader **r);

/* Ends it; everything read through it is gone. Safe with *r NULL. */
void store_read_end(store_reader **r);

/* A read transaction of its own, for a thread other than the loop's (a long scan in the
 * libuv thread pool). Returns 0 or GL_EINTERNAL; end it with store_read_end, on the same
 * thread. */
int store_read_begin_private(store *s, store_reader **r);

/* The case in its stored form (case_record_pack_stored), valid until store_read_end.
 * Returns 0 or GL_ENOT_FOUND. Decode it with store_case_decode; send it as
 * store_case_wire makes it. */
int store_read_case(store_reader *r, uint64_t id, gl_str *raw);

/* Decodes a stored case (either form a store has written) into c, whose strings point
 * into raw; zone is scratch, cleared first. Returns 0 or GL_EINTERNAL. */
int store_case_decode(gl_str raw, msgpack_zone *zone, case_record *c);

/* Appends a stored case's wire map (case_record_pack with flags) to out. Returns 0, or
 * GL_EINTERNAL when raw does not decode (nothing appended) or out cannot grow. */
int store_case_wire(gl_str raw, unsigned flags, msgpack_sbuffer *out);
int store_read_case_by_code(store_reader *r, gl_str code, gl_str *raw);

/* Calls fn for each event of the case, oldest first; stops early (and returns what fn
 * returned) when fn returns non-zero. Returns 0 or GL_EINTERNAL. */
typedef int (*store_event_fn)(void *arg, gl_str raw_event);
int store_read_history(store_reader *r, uint64_t id, store_event_fn fn, void *arg);

/* The cases matching f with id > after, in id order, at most limit of them: fn is
 * called with each (raw map, unpacked record) and returns 0 to take it (it counts
 * toward limit), STORE_LIST_SKIP to pass it over, or a negative code to stop the list
 * with that code. Examines at most scan_budget index entries so that a rare filter
 * cannot pin the loop; *next is the cursor to continue from, or 0 when the list is
 * complete. now_ms decides `overdue`. Returns 0, fn's code, or GL_EINTERNAL. */
#define STORE_LIST_SKIP 1
typedef int (*store_case_fn)(void *arg, gl_str raw, const case_record *c);
int store_list(store_reader *r, const request_filter *f, uint64_t after, uint32_t limit,
               int64_t now_ms, uint32_t scan_budget, store_case_fn fn, void *arg,
               uint64_t *next);

/* The older cases that may be the same problem as c: open (not resolved, closed,
 * merged or withdrawn), of the same category (with their own duplicate_of), and in the same
 * grid cell or, when c has coordinates, with coordinates in the same district; created
 * at most window_ms before c; oldest first, at most cap. Returns how many were written to
 * out (strings borrow from c and the read transaction). */
uint32_t store_route_candidates(store_reader *r, const case_record *c, int64_t window_ms,
                                route_candidate *out, uint32_t cap);

/* The sequence number of the last event in the reader's snapshot (0 when none). */
uint64_t store_read_head(store_reader *r);

/* The events with seq > after, in order, whose unit, district and category match the
 * filter (an empty one matches any), at most limit of them, examining at most
 * scan_budget events: fn is called with each, and returns 0 to take it,
 * STORE_EVENT_SKIP to pass over it (it does not count against limit), or an error code
 * to stop. *examined is the last seq examined, from where the next pull may go on
 * (== after when there was nothing). Returns 0, fn's code, or GL_EINTERNAL. */
#define STORE_EVENT_SKIP 1
int store_read_events(store_reader *r, uint64_t after, uint32_t limit, gl_str unit,
                      gl_str district, gl_str category, uint32_t scan_budget,
                      store_event_fn fn, void *arg, uint64_t *examined);

/* The earliest pending deadline's due time into *due. Returns 0, or GL_ENOT_FOUND when
 * no case has one. */
int store_next_deadline(store_reader *r, int64_t *due);

/* Calls fn for each pending deadline due at or before now, earliest first, at most max
 * of them (fn returns 0 to go on, non-zero to stop). Returns 0 or GL_EINTERNAL. */
typedef int (*store_deadline_fn)(void *arg, uint64_t id, deadline_kind kind, int64_t due);
int store_due_deadlines(store_reader *r, int64_t now_ms, uint32_t max, store_deadline_fn fn,
                        void *arg);

/* True when the case is past a deadline it has not met: dispatched and not accepted
 * after accept_by, or not yet resolved after resolve_by. */
bool store_case_is_overdue(const case_record *c, int64_t now_ms);

#endif
