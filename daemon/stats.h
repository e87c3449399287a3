/*
 * stats: the counts and the four rates units are judged by (stats.query; protocol.md,
 * "Rates"), over the cases created in a time range, grouped by unit, district,
 * category, street or community, and the stars a community earns.
 *
 * One call is one short read transaction that scans the created range in id order
 * (created_at grows with id, so the range is one run of ids) and adds each case to its
 * group in a small hash map. The cost is one decode per case in the range (store_list
 * decodes each; about 2.5 us a case, measured on 200,000), on the caller's thread: the
 * loop's, which serves nothing else meanwhile. So that one request cannot stall the
 * daemon without bound, a range holding more than max_cases cases (STATS_MAX_CASES in
 * the daemon: a month at 60,000 cases a day, some five seconds) is refused with
 * invalid_argument asking for a narrower one, after at most max_cases + 1 decodes.
 * Nothing is paged or kept between calls.
 *
 * Every count is of the fields as they are on each case now (case_record.h):
 *   received             the cases created in the range that have a value for the key
 *   dispatched           dispatched_at set (dispatched at least once)
 *   accepted_in_time     accepted_at set and accepted_at <= accept_by. Both are as they
 *                        are now: reassign, reopening and a dispatch after a return set
 *                        new deadlines, against which an earlier sign-for is in time; a
 *                        return clears them, so a returned case waiting for routing
 *                        does not count
 *   resolved             resolved_at set (resolved at least once, even if reopened since)
 *   resolved_on_time     resolved_at set and resolved_at <= resolve_by (the current one:
 *                        an approved extension moves it)
 *   resolved_or_closed   state resolved or closed now
 *   closed               state closed
 *   callbacks            satisfaction set (the latest callback's answer)
 *   satisfied, basically_satisfied, unsatisfied   by that answer
 * and the rates, each nil when its denominator is 0:
 *   response_rate        accepted_in_time / dispatched
 *   on_time_rate         resolved_on_time / resolved
 *   resolution_rate      resolved_or_closed / received
 *   satisfaction_rate    (satisfied + basically_satisfied) / callbacks
 *
 * A case without a value for the key (no unit yet, no category, no street or community
 * given) belongs to no row; the reply counts such cases as `ungrouped`.
 */
#ifndef STATS_H
#define STATS_H

#include "city.h"
#include "gl_error.h"
#include "request.h"
#include "store.h"

#include <msgpack.h>
#include <stdint.h>

/* The daemon's bound on the cases one stats.query may scan. */
#define STATS_MAX_CASES 2000000u

/* Distinct keys one query may group into. The keys are catalogue codes, so a city has
 * far fewer; the bound only keeps a damaged store from costing unbounded memory. */
#define STATS_MAX_GROUPS 100000u

/* The key/value pairs stats_query packs into the caller's reply map. */
#define STATS_REPLY_PAIRS 5

typedef struct {
    uint64_t received, dispatched, accepted_in_time, resolved, resolved_on_time,
             resolved_or_closed, closed, callbacks, satisfied, basically_satisfied,
             unsatisfied;
} stats_counts;

/* Adds one case to k, by the definitions above. */
void stats_count_case(stats_counts *k, const case_record *c);

/*
 * The stars a community earns by its counts (3, 4 or 5), or 0 for none: the highest
 * level of the city's thresholds (city->stars: response, on-time and satisfaction rates
 * and min_cases) that it reaches: every one of those rates at least its threshold, and
 * at least min_cases cases received. A rate with no denominator (nothing dispatched,
 * resolved or called back) reaches only a threshold of 0.
 */
int stats_stars(const city *c, const stats_counts *k);

/*
 * Runs the query q over the store s and packs STATS_REPLY_PAIRS key/value pairs into pk
 * (the caller has opened the reply map and adds "ok" and "rid"):
 *   "rows":      [{key, name, <the counts>, <the four rates>, stars?}, ...] sorted by
 *                key (bytewise); name is the catalogue's name for the key, nil if c has
 *                none; stars (3, 4, 5 or nil) only when grouping by community;
 *   "group_by":  the grouping asked for;
 *   "from", "to": the range asked for, nil where not given (unbounded);
 *   "ungrouped": cases in the range without a value for the key.
 * Nothing is packed before the scan has succeeded; on any failure the caller discards
 * what pk holds (the server's error reply starts a new buffer).
 * It reads through a read transaction of its own, so it may run on any thread: the
 * server runs it in the libuv thread pool, since a large range takes seconds.
 * Returns:
 *   0              done;
 *   GL_EINVALID    the range holds more than max_cases cases (field "from"), or more
 *                  than STATS_MAX_GROUPS keys: err asks for a narrower range;
 *   GL_EINTERNAL   the store could not be read, or memory ran out.
 */
int stats_query(store *s, const city *c, const request_stats *q, uint32_t max_cases,
                msgpack_packer *pk, gl_error *err);

#endif
