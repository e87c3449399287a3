/*
 * case_event: one change to a case, as the event log, the feed and the tap carry it
 * (protocol.md, "Events").
 */
#ifndef CASE_EVENT_H
#define CASE_EVENT_H

#include "case_record.h"
#include "mp_util.h"

typedef enum {
    EVENT_CREATED, EVENT_DISPATCHED, EVENT_ACCEPTED, EVENT_NOTED, EVENT_RESOLVED,
    EVENT_RETURNED, EVENT_EXTENSION_REQUESTED, EVENT_EXTENSION_APPROVED,
    EVENT_EXTENSION_REJECTED, EVENT_URGED, EVENT_SUPERVISED, EVENT_WARNED,
    EVENT_ESCALATED, EVENT_REASSIGNED, EVENT_CALLBACK, EVENT_REOPENED, EVENT_CLOSED,
    EVENT_WITHDRAWN, EVENT_MERGED,
    EVENT_TYPE_COUNT
} case_event_type;

const char *case_event_type_name(case_event_type t);
int case_event_type_parse(gl_str s);   /* the type, or -1 */

typedef struct {
    uint64_t        seq;       /* dense, from 1, never reused */
    int64_t         at;        /* ms since the epoch */
    uint64_t        case_id;
    gl_str          code;
    case_event_type type;
    case_state      state;     /* the case's state after the change */
    gl_str          unit, district, category;
    gl_str          actor;     /* the principal that made the change */
    gl_str          note;
} case_event;

/* Packs the event as its wire map. Returns 0, or -1 if the packer's writer failed. */
int case_event_pack(msgpack_packer *pk, const case_event *e);

/* Fills e from a map written by case_event_pack. Returns 0, or -1 if it is not one. */
int case_event_unpack(const msgpack_object *o, case_event *e);

/* Fills e from an event's bytes as stored and sent (case_event_pack's), unpacked into
 * zone, which is cleared first; e's strings point into raw and zone. Returns 0, or -1
 * if raw is not one such event. */
int case_event_decode(gl_str raw, msgpack_zone *zone, case_event *e);

#endif
