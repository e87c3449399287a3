/*
 * request: strict validation of request bodies, shared by the daemon and by clients
 * that want to check before sending.
 *
 * Each parser takes an unpacked body (already passed through mp_guard and
 * msgpack_unpack), checks every field's type, length, enumeration and encoding,
 * refuses unknown fields, and fills a struct whose strings borrow from the body's
 * buffer. On failure it returns GL_EBAD_REQUEST (the body is not a map) or
 * GL_EINVALID with err->field naming the offending field as a dotted path
 * ("location.district", "attachments[2]", "filter.state"), and err->message saying
 * what a valid value looks like.
 *
 * What the parsers do not know: whether a category, place or unit code exists in the
 * city's catalogue. The daemon checks that against its configuration.
 *
 * Every body may carry "rid" (any scalar), echoed in the reply so a pipelining client
 * can match replies to requests.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include "case_record.h"
#include "gl_error.h"
#include "mp_util.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/* Limits of the contract, documented in protocol/README.md. Lengths are in bytes. */
#define REQUEST_MAX_BODY        65536
#define REQUEST_MAX_ID          128      /* request_id: 1..128 */
#define REQUEST_MAX_CODE        64       /* category, place and unit codes */
#define REQUEST_MAX_TITLE       200
#define REQUEST_MAX_DESCRIPTION 8000
#define REQUEST_MAX_ADDRESS     500
#define REQUEST_MAX_NAME        100
#define REQUEST_MAX_PHONE       32
#define REQUEST_MAX_URL         1024
#define REQUEST_MAX_RID         64       /* packed size of rid */
#define REQUEST_LIST_MAX        500
#define REQUEST_LIST_DEFAULT    50
/* reported_at may be at most this far ahead of the daemon's clock (clock skew). */
#define REQUEST_MAX_FUTURE_MS   (5 * 60 * 1000)

/* case.create */
typedef struct {
    gl_str        request_id;
    case_channel  channel;              /* CHANNEL_NONE when not given */
    gl_str        category;             /* empty when not given */
    case_urgency  urgency;              /* default URGENCY_NORMAL */
    gl_str        title;                /* may be empty */
    gl_str        description;
    case_location location;
    gl_str        reporter_name, reporter_phone;
    gl_str        attachments[CASE_MAX_ATTACHMENTS];
    uint32_t      n_attachments;
    int64_t       reported_at;          /* 0 = not given */
    bool          resolved_on_spot;
    gl_str        agent;                /* 代办: the community following it; empty if none */
} request_create;

/* now_ms bounds reported_at. Returns 0, GL_EBAD_REQUEST or GL_EINVALID. */
int request_parse_create(const msgpack_object *body, int64_t now_ms, request_create *out,
                         gl_error *err);

/* A fingerprint of everything the create asks for (not of rid), so a resend under the
 * same request_id can be told from a different request reusing the key. */
uint64_t request_create_fingerprint(const request_create *r);

/* case.get: exactly one of id and code. */
typedef struct {
    uint64_t id;        /* 0 when code is given */
    gl_str   code;
    bool     history;
} request_get;

int request_parse_get(const msgpack_object *body, request_get *out, gl_error *err);

/* case.list */
typedef struct {
    int      state;                 /* case_state, or -1 = any */
    int      channel;               /* case_channel, or -1 */
    gl_str   unit, district, street, community, grid, category, reporter_phone;
    int      overdue;               /* -1 any, 0 false, 1 true */
    int      supervised;            /* -1 any, 0 false, 1 true */
    int64_t  created_from;          /* inclusive; INT64_MIN = unbounded */
    int64_t  created_to;            /* exclusive; INT64_MAX = unbounded */
} request_filter;

typedef struct {
    request_filter filter;
    uint64_t       after;           /* cursor: list ids greater than this; 0 = start */
    uint32_t       limit;           /* 1..500, default 50 */
} request_list;

int request_parse_list(const msgpack_object *body, request_list *out, gl_error *err);

/* case.act */
typedef enum {
    ACT_ACCEPT, ACT_NOTE, ACT_RESOLVE, ACT_RETURN, ACT_EXTEND, ACT_APPROVE_EXTENSION,
    ACT_REJECT_EXTENSION, ACT_URGE, ACT_SUPERVISE, ACT_ESCALATE, ACT_REASSIGN, ACT_MERGE,
    ACT_CALLBACK, ACT_WITHDRAW,
    ACT_COUNT
} case_action;

const char *case_action_name(case_action a);   /* "accept", "approve_extension", ... */

#define REQUEST_MAX_NOTE   2000
#define REQUEST_MAX_REPLY  4000
#define REQUEST_MAX_EXTENSION_MS (366LL * 24 * 3600 * 1000)   /* `until` at most this far ahead */

typedef struct {
    uint64_t          id;
    case_action       action;
    uint64_t          version;      /* 0 = not given: act on whatever version is current */
    gl_str            note;         /* any action; required for `note` */
    gl_str            reply;        /* resolve: the reply to the resident (required) */
    gl_str            reason;       /* return, extend (required) */
    int64_t           until;        /* extend: the new resolve_by (required, in the future) */
    gl_str            unit;         /* reassign (required) */
    uint64_t          into;         /* merge: the case this one joins (required) */
    case_satisfaction satisfaction; /* callback (required) */
} request_act;

/* Fields an action does not use are refused, so that a misplaced field is not ignored
 * silently. now_ms bounds `until`. Returns 0, GL_EBAD_REQUEST or GL_EINVALID. */
int request_parse_act(const msgpack_object *body, int64_t now_ms, request_act *out,
                      gl_error *err);

/* The raw bytes of the body's rid, if any, for echoing. body_buf/body_len is the buffer
 * the body was unpacked from. Sets *rid and *rid_len to NULL and 0 when there is none
 * or it is not a scalar no longer than REQUEST_MAX_RID. Never fails. */
void request_find_rid(const char *body_buf, size_t body_len, const char **rid, size_t *rid_len);

/* stats.query: counts and rates over the cases created in [from, to), grouped by
 * group_by. `street` and `community` extend the core contract's unit, district and
 * category. */
typedef enum {
    STATS_BY_UNIT, STATS_BY_DISTRICT, STATS_BY_CATEGORY, STATS_BY_STREET, STATS_BY_COMMUNITY,
    STATS_BY_COUNT
} stats_group;

/* "unit", "district", ...; NULL for a value out of range. */
const char *stats_group_name(stats_group g);

typedef struct {
    stats_group group_by;     /* required */
    bool        has_from, has_to;
    int64_t     from;         /* inclusive; INT64_MIN when not given */
    int64_t     to;           /* exclusive; INT64_MAX when not given */
} request_stats;

/* group_by is required; from and to are optional integer times (ms since the epoch) and,
 * both given, to must be later than from. Returns 0, GL_EBAD_REQUEST or GL_EINVALID
 * (field "group_by", "from" or "to", or the unknown field). */
int request_parse_stats(const msgpack_object *body, request_stats *out, gl_error *err);

/* feed.pull: the events after a sequence number, optionally waiting for them. */
#define REQUEST_FEED_MAX      1000
#define REQUEST_FEED_DEFAULT  100
#define REQUEST_FEED_MAX_WAIT 30000

typedef struct {
    uint64_t after;                  /* default 0 */
    uint32_t limit;                  /* 1..1000, default 100 */
    uint32_t wait_ms;                /* 0..30000, default 0 */
    gl_str   unit, district, category;   /* filter; empty = any */
} request_feed;

/* Returns 0, GL_EBAD_REQUEST or GL_EINVALID (field "after", "limit", "wait_ms",
 * "filter.unit", ... or the unknown field). */
int request_parse_feed(const msgpack_object *body, request_feed *out, gl_error *err);

#endif
