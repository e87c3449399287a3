/*
 * case_record: a case (工单) as the wire and the store both see it, with the names of
 * its enumerations and its MessagePack form.
 *
 * The stored form and the wire form are the same map (protocol.md, "The case"), so a
 * case read from the store can go out as it is. Strings are borrowed (gl_str): a
 * record unpacked from a buffer points into that buffer and lives no longer than it.
 */
#ifndef CASE_RECORD_H
#define CASE_RECORD_H

#include "mp_util.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    CASE_REGISTERED, CASE_DISPATCHED, CASE_ACCEPTED, CASE_RESOLVED, CASE_CLOSED,
    CASE_RETURNED, CASE_MERGED, CASE_WITHDRAWN,
    CASE_STATE_COUNT
} case_state;

typedef enum {
    CHANNEL_HOTLINE, CHANNEL_WINDOW, CHANNEL_GRID, CHANNEL_WEB, CHANNEL_APP, CHANNEL_TRANSFER,
    CHANNEL_COUNT,
    CHANNEL_NONE = -1    /* not given by the sender: packed as nil */
} case_channel;

typedef enum {
    URGENCY_EMERGENCY, URGENCY_URGENT, URGENCY_NORMAL,
    URGENCY_COUNT
} case_urgency;

typedef enum {
    SATISFACTION_NONE, SATISFACTION_SATISFIED, SATISFACTION_BASICALLY_SATISFIED,
    SATISFACTION_UNSATISFIED,
    SATISFACTION_COUNT
} case_satisfaction;

/* Wire names, and their inverse: the enum value, or -1 if s names none.
 * case_channel_name(CHANNEL_NONE) is NULL. */
const char *case_state_name(case_state v);
const char *case_channel_name(case_channel v);
const char *case_urgency_name(case_urgency v);
const char *case_satisfaction_name(case_satisfaction v); /* NONE -> NULL (packed as nil) */
int case_state_parse(gl_str s);
int case_channel_parse(gl_str s);
int case_urgency_parse(gl_str s);
int case_satisfaction_parse(gl_str s);

#define CASE_MAX_ATTACHMENTS 16
#define CASE_MAX_RETURNED    8    /* units remembered as having returned the case */

typedef struct {
    gl_str district, street, community, grid, address;
    bool   has_coords;
    double lat, lon;
} case_location;

typedef struct {
    uint64_t          id;
    gl_str            code;            /* GL-YYYYMMDD-NNNNNN */
    uint64_t          version;         /* 1 at creation, +1 on every change */
    case_state        state;
    case_channel      channel;         /* CHANNEL_NONE = nil */
    gl_str            category;        /* empty = nil */
    case_urgency      urgency;
    gl_str            title, description;
    case_location     location;
    gl_str            reporter_name, reporter_phone;
    gl_str            attachments[CASE_MAX_ATTACHMENTS];
    uint32_t          n_attachments;
    gl_str            request_id;      /* the sender's key it was registered under */
    gl_str            created_by;      /* the principal that registered it (the sender) */
    int64_t           reported_at;     /* 0 = not given */
    bool              resolved_on_spot;
    gl_str            unit;            /* empty until dispatched */
    uint32_t          level;           /* escalation level, 0 = the unit itself */
    int64_t           accept_by, resolve_by;   /* 0 = no deadline (nil) */
    int64_t           created_at, updated_at;
    bool              supervised;
    uint64_t          duplicate_of;    /* 0 = nil */
    uint32_t          reopen_count;
    uint32_t          return_count;
    gl_str            returned_by[CASE_MAX_RETURNED]; /* units that returned it (退单) */
    uint32_t          n_returned_by;
    case_satisfaction satisfaction;
    gl_str            reply;           /* the unit's reply to the resident (办结) */
    int64_t           extension_until; /* an extension asked for, not yet decided; 0 = none */
    gl_str            agent;           /* 代办: the community following it for the resident */
    /* When things happened (0 = not yet), for the rates units are judged by. */
    int64_t           dispatched_at;   /* the first dispatch */
    int64_t           accepted_at;     /* the last time it was signed for */
    int64_t           resolved_at;     /* the last time it was resolved */
    /* Deadlines: warn_at is when the warning (超时预警) is due; deadlines_fired says which
     * of the current deadlines have already been acted on (CASE_FIRED_*), so that none
     * fires twice. Setting new deadlines clears it. */
    int64_t           warn_at;
    uint32_t          deadlines_fired;
    int64_t           deadlines_at;    /* when the current deadlines were set */
} case_record;

#define CASE_FIRED_WARN    0x1u
#define CASE_FIRED_ACCEPT  0x2u
#define CASE_FIRED_RESOLVE 0x4u

/* Flags for case_record_pack. */
#define CASE_PACK_MASK_PHONE 0x1u  /* reporter phone shown as 138****5678 */
#define CASE_PACK_MASK_NAME  0x2u  /* reporter name shown as its first character and '*'s */

/* Packs the case as its wire map. Returns 0, or -1 if the packer's writer failed. */
int case_record_pack(msgpack_packer *pk, const case_record *c, unsigned flags);

/* Packs the case in its stored form: an array whose first element is the form's number
 * (CASE_STORED_FORM) and the fields after it by position, enumerations as numbers. It
 * holds what the wire map holds without its 46 key names: about a third of the bytes,
 * and half the objects to pack and unpack. Never sent: readers turn it back into the
 * wire map with case_record_unpack and case_record_pack. Returns 0 or -1 as above. */
#define CASE_STORED_FORM 1
int case_record_pack_stored(msgpack_packer *pk, const case_record *c);

/* Fills c from a map written by case_record_pack or an array written by
 * case_record_pack_stored. Unknown keys, and elements after the known ones, are
 * skipped, so a newer daemon's record still reads. Returns 0, or -1 if o is neither. */
int case_record_unpack(const msgpack_object *o, case_record *c);

/* Fills c from the bytes of either form: the stored form is read straight from them
 * (the hot path: no object tree), a map through msgpack-c, allocating from zone (not
 * cleared: the caller's bytes may live there). Strings point into p. Returns 0, or -1
 * as case_record_unpack does. */
int case_record_decode(const char *p, size_t n, msgpack_zone *zone, case_record *c);

/* Writes the masked form of phone into out (at least phone.n + 1 bytes): all but the
 * first three and last four digits become '*'. Returns the length written. */
size_t case_phone_mask(gl_str phone, char *out, size_t cap);

/* Writes the masked form of a (UTF-8) name into out: its first character, then one '*'
 * for each character after it (王小明 -> 王**). Returns the length written; 0 for an
 * empty name. A name too long for cap is cut at a character boundary. */
size_t case_name_mask(gl_str name, char *out, size_t cap);

#endif
