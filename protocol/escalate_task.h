/*
 * escalate_task: the work the daemon gives escalation workers (service
 * "gridline.escalate") when a case's deadline falls due, and their decisions.
 *
 * Task (the REQUEST body), a map:
 *   "now":   integer ms, the daemon's clock
 *   "items": [ { "case": CASE (the wire map), "deadline": "warn" | "accept" | "resolve" } ]
 *     warn:    warn_at has passed (a share of the time to resolve_by is used: 超时预警)
 *     accept:  accept_by has passed and the unit has not signed for the case
 *     resolve: resolve_by has passed and the case is not resolved
 * Decisions (the REPLY body), a map:
 *   "decisions": [ { "id", "version" (the case version decided on), "deadline" (echoed),
 *                    "outcome": "warn" | "urge" | "escalate" | "supervise",
 *                    "unit" (escalate: the unit above that takes the case; else nil),
 *                    "reason" (text for the event's note) } ]
 * The daemon commits each decision with the deadline marked as acted on, so a deadline
 * fires once: warn -> a `warned` event; urge (催办) -> `urged`; escalate -> the case goes
 * to `unit` with level + 1, to be signed for again under new deadlines, `escalated`;
 * supervise (督办) -> supervised, `supervised`. A decision for a case that has moved on
 * is discarded.
 */
#ifndef ESCALATE_TASK_H
#define ESCALATE_TASK_H

#include "case_record.h"
#include "gl_error.h"
#include "mp_util.h"

#include <msgpack.h>
#include <stdint.h>

#define ESCALATE_SERVICE   "gridline.escalate"
#define ESCALATE_MAX_ITEMS 256

typedef enum { DEADLINE_WARN, DEADLINE_ACCEPT, DEADLINE_RESOLVE, DEADLINE_COUNT } deadline_kind;
typedef enum {
    OUTCOME_WARN, OUTCOME_URGE, OUTCOME_ESCALATE, OUTCOME_SUPERVISE, OUTCOME_COUNT
} escalate_outcome;

const char *deadline_kind_name(deadline_kind k);
int deadline_kind_parse(gl_str s);               /* the kind, or -1 */
const char *escalate_outcome_name(escalate_outcome o);
int escalate_outcome_parse(gl_str s);            /* the outcome, or -1 */

typedef struct {
    case_record   c;
    deadline_kind kind;
} escalate_item;

typedef struct {
    uint64_t         id, version;
    deadline_kind    kind;
    escalate_outcome outcome;
    gl_str           unit;     /* escalate only */
    gl_str           reason;
} escalate_decision;

/* Daemon side: {"now": now, "items": [ (n items follow) */
int escalate_task_pack_begin(msgpack_packer *pk, int64_t now, uint32_t n_items);
int escalate_task_pack_item(msgpack_packer *pk, gl_str raw_case, deadline_kind kind);

/* Worker side: *items allocated from zone. Returns 0 or GL_EBAD_REQUEST with err. */
int escalate_task_unpack(const msgpack_object *body, msgpack_zone *zone, int64_t *now,
                         escalate_item **items, uint32_t *n_items, gl_error *err);
int escalate_decisions_pack(msgpack_packer *pk, const escalate_decision *d, uint32_t n);

/* Daemon side: at most cap decisions into out; malformed ones are skipped. Returns 0,
 * or GL_EBAD_REQUEST if the body is not a decisions map. */
int escalate_decisions_unpack(const msgpack_object *body, escalate_decision *out, uint32_t cap,
                              uint32_t *n, gl_error *err);

#endif
