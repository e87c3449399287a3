/*
 * fuzz_request: request decoding as the daemon does it (request_find_rid, then
 * mp_guard_check, mp_unpack and one of the request parsers), and the case and event
 * codecs on the same guarded input.
 *
 * The first byte, modulo FUZZ_TARGETS, picks what the rest is decoded as (the table in
 * decode_as below); the rest is the body, copied into a block of its own size so that a
 * read past its end is caught. Beyond surviving every body, the harness holds the
 * parsers to what request.h promises, because a parser that "succeeds" with a string
 * pointing outside the message or longer than the contract's limit is as dangerous to
 * the store as a crash:
 *  - a body that passed mp_guard_check unpacks with mp_unpack;
 *  - a refusal is GL_EBAD_REQUEST or GL_EINVALID, with a message that is not empty, is
 *    valid UTF-8 (it goes back on the wire) and names the field when there is one, and
 *    the error reply gl_error_pack makes of it, rid included, is well-formed;
 *  - an accepted body gives strings that point inside it, are valid UTF-8 and keep
 *    their documented lengths, and enumerations and numbers within their ranges;
 *  - the rid found in the raw bytes is exactly the first "rid" key's value, when that
 *    is a scalar of at most REQUEST_MAX_RID bytes;
 *  - a case or event the codec accepts packs and reads back the same.
 */
#include "fuzz_target.h"

#include "case_event.h"
#include "case_record.h"
#include "gl_error.h"
#include "mp_guard.h"
#include "mp_util.h"
#include "request.h"
#include "utf8.h"

#include <msgpack.h>
#include <string.h>

/* The parsers bound times by the daemon's clock; a fixed one keeps runs reproducible.
 * 2026-11-26T00:00:00Z. */
#define FUZZ_NOW_MS 1795651200000LL

enum {
    T_CREATE, T_GET, T_LIST, T_ACT, T_STATS, T_FEED, T_RECORD, T_EVENT,
    FUZZ_TARGETS
};

/* The body under test: the strings a decoder returns must point inside it. */
typedef struct {
    const char *p;
    size_t      n;
} body_ref;

/* ---- shared checks ---------------------------------------------------------------- */

/* s is min..max bytes of valid UTF-8 inside the body (min 0: it may be absent). */
static void
expect_str(gl_str s, uint32_t min, uint32_t max, const body_ref *b, const char *what)
{
    fuzz_expect(s.n >= min && s.n <= max, what);
    fuzz_expect(fuzz_inside(s.p, s.n, b->p, b->n), what);
    fuzz_expect(s.n == 0 || utf8_valid(s.p, s.n), what);
}

/* A borrowed string a codec returns (no length or encoding promised): inside the body. */
static void
expect_borrowed(gl_str s, const body_ref *b, const char *what)
{
    fuzz_expect(fuzz_inside(s.p, s.n, b->p, b->n), what);
}

static void
expect_verdict(int rc, const gl_error *err)
{
    size_t field_len;

    if (rc == 0) {
        fuzz_expect(err->code == GL_OK, "an accepted body leaves the error unset");
        return;
    }
    fuzz_expect(rc == GL_EBAD_REQUEST || rc == GL_EINVALID,
                "a parser refuses with bad_request or invalid_argument");
    fuzz_expect(err->code == rc, "the error carries the code returned");
    fuzz_expect(memchr(err->message, '\0', sizeof err->message) != NULL
                    && memchr(err->field, '\0', sizeof err->field) != NULL,
                "the error's strings are terminated");
    fuzz_expect(err->message[0] != '\0', "a refusal has a message");
    fuzz_expect(utf8_valid(err->message, strlen(err->message)),
                "the error message is valid UTF-8");
    field_len = strlen(err->field);
    fuzz_expect(field_len == 0 || utf8_valid(err->field, field_len),
                "the error field is valid UTF-8");
    fuzz_expect(field_len == 0 || strncmp(err->message, err->field, field_len) == 0,
                "the message starts with the field it is about");
}

/* ---- the request parsers ---------------------------------------------------------- */

static int
check_create(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_create r;
    uint32_t       i;
    int            rc;

    rc = request_parse_create(o, FUZZ_NOW_MS, &r, err);
    if (rc != 0) {
        return rc;
    }
    expect_str(r.request_id, 1, REQUEST_MAX_ID, b, "create: request_id");
    fuzz_expect(r.channel == CHANNEL_NONE || (r.channel >= 0 && r.channel < CHANNEL_COUNT),
                "create: channel");
    expect_str(r.category, 0, REQUEST_MAX_CODE, b, "create: category");
    fuzz_expect(r.urgency >= 0 && r.urgency < URGENCY_COUNT, "create: urgency");
    expect_str(r.title, 0, REQUEST_MAX_TITLE, b, "create: title");
    expect_str(r.description, 1, REQUEST_MAX_DESCRIPTION, b, "create: description");
    expect_str(r.location.district, 1, REQUEST_MAX_CODE, b, "create: location.district");
    expect_str(r.location.street, 0, REQUEST_MAX_CODE, b, "create: location.street");
    expect_str(r.location.community, 0, REQUEST_MAX_CODE, b, "create: location.community");
    expect_str(r.location.grid, 0, REQUEST_MAX_CODE, b, "create: location.grid");
    expect_str(r.location.address, 0, REQUEST_MAX_ADDRESS, b, "create: location.address");
    if (r.location.has_coords) {
        fuzz_expect(r.location.lat >= -90.0 && r.location.lat <= 90.0, "create: lat");
        fuzz_expect(r.location.lon >= -180.0 && r.location.lon <= 180.0, "create: lon");
    }
    expect_str(r.reporter_name, 0, REQUEST_MAX_NAME, b, "create: reporter.name");
    expect_str(r.reporter_phone, 0, REQUEST_MAX_PHONE, b, "create: reporter.phone");
    fuzz_expect(r.n_attachments <= CASE_MAX_ATTACHMENTS, "create: attachments count");
    for (i = 0; i < r.n_attachments; i++) {
        expect_str(r.attachments[i], 1, REQUEST_MAX_URL, b, "create: attachment");
    }
    fuzz_expect(r.reported_at >= 0 && r.reported_at <= FUZZ_NOW_MS + REQUEST_MAX_FUTURE_MS,
                "create: reported_at");
    expect_str(r.agent, 0, REQUEST_MAX_CODE, b, "create: agent");
    fuzz_expect(r.agent.n == 0 || !r.resolved_on_spot,
                "create: agent and resolved_on_spot exclude each other");
    /* The fingerprint decides whether a resend is the same request: it must not
     * depend on anything but the parsed request. */
    fuzz_expect(request_create_fingerprint(&r) == request_create_fingerprint(&r),
                "create: the fingerprint is a function of the request");
    return 0;
}

static int
check_get(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_get r;
    int         rc;

    rc = request_parse_get(o, &r, err);
    if (rc != 0) {
        return rc;
    }
    fuzz_expect((r.id != 0) != (r.code.n != 0), "get: exactly one of id and code");
    expect_str(r.code, 0, REQUEST_MAX_CODE, b, "get: code");
    return 0;
}

static int
check_list(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_list r;
    int          rc;

    rc = request_parse_list(o, &r, err);
    if (rc != 0) {
        return rc;
    }
    fuzz_expect(r.filter.state >= -1 && r.filter.state < CASE_STATE_COUNT, "list: state");
    fuzz_expect(r.filter.channel >= -1 && r.filter.channel < CHANNEL_COUNT, "list: channel");
    expect_str(r.filter.unit, 0, REQUEST_MAX_CODE, b, "list: unit");
    expect_str(r.filter.district, 0, REQUEST_MAX_CODE, b, "list: district");
    expect_str(r.filter.street, 0, REQUEST_MAX_CODE, b, "list: street");
    expect_str(r.filter.community, 0, REQUEST_MAX_CODE, b, "list: community");
    expect_str(r.filter.grid, 0, REQUEST_MAX_CODE, b, "list: grid");
    expect_str(r.filter.category, 0, REQUEST_MAX_CODE, b, "list: category");
    expect_str(r.filter.reporter_phone, 0, REQUEST_MAX_PHONE, b, "list: reporter_phone");
    fuzz_expect(r.filter.overdue >= -1 && r.filter.overdue <= 1, "list: overdue");
    fuzz_expect(r.filter.supervised >= -1 && r.filter.supervised <= 1, "list: supervised");
    fuzz_expect(r.filter.created_from <= r.filter.created_to, "list: created range");
    fuzz_expect(r.limit >= 1 && r.limit <= REQUEST_LIST_MAX, "list: limit");
    return 0;
}

static int
check_act(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_act r;
    case_action a;
    int         rc;

    rc = request_parse_act(o, FUZZ_NOW_MS, &r, err);
    if (rc != 0) {
        return rc;
    }
    a = r.action;
    fuzz_expect(r.id != 0, "act: id");
    fuzz_expect(a >= 0 && a < ACT_COUNT, "act: action");
    fuzz_expect(r.version <= (uint64_t)INT64_MAX, "act: version");
    expect_str(r.note, a == ACT_NOTE ? 1 : 0, REQUEST_MAX_NOTE, b, "act: note");
    /* Each action-specific field is there exactly when the action takes it. */
    expect_str(r.reply, a == ACT_RESOLVE ? 1 : 0, a == ACT_RESOLVE ? REQUEST_MAX_REPLY : 0, b,
               "act: reply");
    expect_str(r.reason, a == ACT_RETURN || a == ACT_EXTEND ? 1 : 0,
               a == ACT_RETURN || a == ACT_EXTEND ? REQUEST_MAX_NOTE : 0, b, "act: reason");
    expect_str(r.unit, a == ACT_REASSIGN ? 1 : 0, a == ACT_REASSIGN ? REQUEST_MAX_CODE : 0, b,
               "act: unit");
    if (a == ACT_EXTEND) {
        fuzz_expect(r.until > FUZZ_NOW_MS && r.until <= FUZZ_NOW_MS + REQUEST_MAX_EXTENSION_MS,
                    "act: until");
    } else {
        fuzz_expect(r.until == 0, "act: until only for extend");
    }
    if (a == ACT_MERGE) {
        fuzz_expect(r.into != 0 && r.into != r.id, "act: into");
    } else {
        fuzz_expect(r.into == 0, "act: into only for merge");
    }
    if (a == ACT_CALLBACK) {
        fuzz_expect(r.satisfaction > SATISFACTION_NONE && r.satisfaction < SATISFACTION_COUNT,
                    "act: satisfaction");
    } else {
        fuzz_expect(r.satisfaction == SATISFACTION_NONE, "act: satisfaction only for callback");
    }
    return 0;
}

static int
check_stats(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_stats r;
    int           rc;

    (void)b;
    rc = request_parse_stats(o, &r, err);
    if (rc != 0) {
        return rc;
    }
    fuzz_expect(stats_group_name(r.group_by) != NULL, "stats: group_by");
    fuzz_expect(r.has_from ? r.from >= 0 : r.from == INT64_MIN, "stats: from");
    fuzz_expect(r.has_to ? r.to >= 0 : r.to == INT64_MAX, "stats: to");
    fuzz_expect(!r.has_from || !r.has_to || r.to > r.from,
                "stats: a range with both ends is not empty");
    return 0;
}

static int
check_feed(const msgpack_object *o, const body_ref *b, gl_error *err)
{
    request_feed r;
    int          rc;

    rc = request_parse_feed(o, &r, err);
    if (rc != 0) {
        return rc;
    }
    fuzz_expect(r.after <= (uint64_t)INT64_MAX, "feed: after");
    fuzz_expect(r.limit >= 1 && r.limit <= REQUEST_FEED_MAX, "feed: limit");
    fuzz_expect(r.wait_ms <= REQUEST_FEED_MAX_WAIT, "feed: wait_ms");
    expect_str(r.unit, 0, REQUEST_MAX_CODE, b, "feed: filter.unit");
    expect_str(r.district, 0, REQUEST_MAX_CODE, b, "feed: filter.district");
    expect_str(r.category, 0, REQUEST_MAX_CODE, b, "feed: filter.category");
    return 0;
}

/* ---- the case and event codecs ---------------------------------------------------- */

/* Packs with pack_fn into a fresh buffer and unpacks the result into *o (allocating from
 * zone); the caller destroys sb. Returns 0, or -1 when packing or unpacking failed. */
typedef int (*pack_fn)(msgpack_packer *pk, const void *thing, unsigned flags);

static int
repack(pack_fn pack, const void *thing, unsigned flags, msgpack_sbuffer *sb,
       msgpack_zone *zone, msgpack_object *o)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (pack(&pk, thing, flags) != 0) {
        return -1;
    }
    return mp_unpack(sb->data, sb->size, zone, o);
}

static int
record_pack(msgpack_packer *pk, const void *c, unsigned flags)
{
    return case_record_pack(pk, c, flags);
}

static int
record_pack_stored(msgpack_packer *pk, const void *c, unsigned flags)
{
    (void)flags;
    return case_record_pack_stored(pk, c);
}

static int
event_pack(msgpack_packer *pk, const void *e, unsigned flags)
{
    (void)flags;
    return case_event_pack(pk, e);
}

static bool
str_same(gl_str a, gl_str b)
{
    return gl_str_eq2(a, b);
}

static void
expect_record_same(const case_record *a, const case_record *b)
{
    uint32_t i;

    fuzz_expect(a->id == b->id && a->version == b->version && a->state == b->state
                    && a->channel == b->channel && a->urgency == b->urgency
                    && a->level == b->level && a->reported_at == b->reported_at
                    && a->resolved_on_spot == b->resolved_on_spot
                    && a->accept_by == b->accept_by && a->resolve_by == b->resolve_by
                    && a->created_at == b->created_at && a->updated_at == b->updated_at
                    && a->supervised == b->supervised && a->reopen_count == b->reopen_count
                    && a->return_count == b->return_count
                    && a->satisfaction == b->satisfaction
                    && a->extension_until == b->extension_until
                    && a->dispatched_at == b->dispatched_at
                    && a->accepted_at == b->accepted_at && a->resolved_at == b->resolved_at
                    && a->warn_at == b->warn_at && a->deadlines_fired == b->deadlines_fired
                    && a->deadlines_at == b->deadlines_at,
                "record: numbers and enumerations survive pack and unpack");
    /* case_record_unpack reads duplicate_of as a signed integer; a negative one read
     * from a hostile map becomes a uint64 above INT64_MAX that case_record_pack never
     * writes for a real case, so its round trip is only compared within range. */
    fuzz_expect(a->duplicate_of > (uint64_t)INT64_MAX || a->duplicate_of == b->duplicate_of,
                "record: duplicate_of survives pack and unpack");
    fuzz_expect(str_same(a->code, b->code) && str_same(a->category, b->category)
                    && str_same(a->title, b->title)
                    && str_same(a->description, b->description)
                    && str_same(a->location.district, b->location.district)
                    && str_same(a->location.street, b->location.street)
                    && str_same(a->location.community, b->location.community)
                    && str_same(a->location.grid, b->location.grid)
                    && str_same(a->location.address, b->location.address)
                    && str_same(a->reporter_name, b->reporter_name)
                    && str_same(a->reporter_phone, b->reporter_phone)
                    && str_same(a->request_id, b->request_id) && str_same(a->unit, b->unit)
                    && str_same(a->reply, b->reply) && str_same(a->agent, b->agent),
                "record: strings survive pack and unpack");
    fuzz_expect(a->location.has_coords == b->location.has_coords
                    && (!a->location.has_coords
                        || (memcmp(&a->location.lat, &b->location.lat, sizeof(double)) == 0
                            && memcmp(&a->location.lon, &b->location.lon, sizeof(double)) == 0)),
                "record: coordinates survive pack and unpack");
    fuzz_expect(a->n_attachments == b->n_attachments && a->n_returned_by == b->n_returned_by,
                "record: list lengths survive pack and unpack");
    for (i = 0; i < a->n_attachments; i++) {
        fuzz_expect(str_same(a->attachments[i], b->attachments[i]),
                    "record: attachments survive pack and unpack");
    }
    for (i = 0; i < a->n_returned_by; i++) {
        fuzz_expect(str_same(a->returned_by[i], b->returned_by[i]),
                    "record: returned_by survives pack and unpack");
    }
}

static void
check_record_borrowed(const case_record *c, const body_ref *b)
{
    uint32_t i;

    expect_borrowed(c->code, b, "record: code");
    expect_borrowed(c->category, b, "record: category");
    expect_borrowed(c->title, b, "record: title");
    expect_borrowed(c->description, b, "record: description");
    expect_borrowed(c->location.district, b, "record: district");
    expect_borrowed(c->location.street, b, "record: street");
    expect_borrowed(c->location.community, b, "record: community");
    expect_borrowed(c->location.grid, b, "record: grid");
    expect_borrowed(c->location.address, b, "record: address");
    expect_borrowed(c->reporter_name, b, "record: reporter name");
    expect_borrowed(c->reporter_phone, b, "record: reporter phone");
    expect_borrowed(c->request_id, b, "record: request_id");
    expect_borrowed(c->unit, b, "record: unit");
    expect_borrowed(c->reply, b, "record: reply");
    expect_borrowed(c->agent, b, "record: agent");
    for (i = 0; i < c->n_attachments; i++) {
        expect_borrowed(c->attachments[i], b, "record: attachment");
    }
    for (i = 0; i < c->n_returned_by; i++) {
        expect_borrowed(c->returned_by[i], b, "record: returned_by");
    }
}

static void
check_record(const msgpack_object *o, const body_ref *b)
{
    case_record     c, again;
    msgpack_sbuffer sb;
    msgpack_zone    zone;
    msgpack_object  o2;

    if (case_record_unpack(o, &c) != 0) {
        return;
    }
    fuzz_expect(c.id != 0, "record: id");
    fuzz_expect(c.state >= 0 && c.state < CASE_STATE_COUNT, "record: state");
    fuzz_expect(c.channel == CHANNEL_NONE || (c.channel >= 0 && c.channel < CHANNEL_COUNT),
                "record: channel");
    fuzz_expect(c.urgency >= 0 && c.urgency < URGENCY_COUNT, "record: urgency");
    fuzz_expect(c.satisfaction >= 0 && c.satisfaction < SATISFACTION_COUNT,
                "record: satisfaction");
    fuzz_expect(c.n_attachments <= CASE_MAX_ATTACHMENTS, "record: attachments count");
    fuzz_expect(c.n_returned_by <= CASE_MAX_RETURNED, "record: returned_by count");
    check_record_borrowed(&c, b);

    if (!msgpack_zone_init(&zone, 4096)) {
        return;
    }
    fuzz_expect(repack(record_pack, &c, 0, &sb, &zone, &o2) == 0,
                "record: what unpacks packs and unpacks again");
    fuzz_expect(case_record_unpack(&o2, &again) == 0, "record: a packed record reads back");
    expect_record_same(&c, &again);
    msgpack_sbuffer_destroy(&sb);

    /* The stored form (what the store writes) reads back as the same record, through
     * the object tree and through the direct decoder alike. */
    msgpack_zone_clear(&zone);
    fuzz_expect(repack(record_pack_stored, &c, 0, &sb, &zone, &o2) == 0,
                "record: the stored form packs and unpacks");
    fuzz_expect(case_record_unpack(&o2, &again) == 0, "record: the stored form reads back");
    expect_record_same(&c, &again);
    fuzz_expect(case_record_decode(sb.data, sb.size, &zone, &again) == 0,
                "record: the stored form decodes directly");
    expect_record_same(&c, &again);
    msgpack_sbuffer_destroy(&sb);

    /* Every masking flag on: the masked form (what clients are shown) must still be a
     * record that reads back. */
    msgpack_zone_clear(&zone);
    fuzz_expect(repack(record_pack, &c, ~0u, &sb, &zone, &o2) == 0,
                "record: a masked record packs and unpacks");
    fuzz_expect(case_record_unpack(&o2, &again) == 0, "record: a masked record reads back");
    fuzz_expect(again.id == c.id, "record: masking keeps the id");
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
}

static void
check_event(const msgpack_object *o, const body_ref *b)
{
    case_event      e, again;
    msgpack_sbuffer sb;
    msgpack_zone    zone;
    msgpack_object  o2;

    if (case_event_unpack(o, &e) != 0) {
        return;
    }
    fuzz_expect(e.seq != 0, "event: seq");
    fuzz_expect(e.type >= 0 && e.type < EVENT_TYPE_COUNT, "event: type");
    fuzz_expect(e.state >= 0 && e.state < CASE_STATE_COUNT, "event: state");
    expect_borrowed(e.code, b, "event: code");
    expect_borrowed(e.unit, b, "event: unit");
    expect_borrowed(e.district, b, "event: district");
    expect_borrowed(e.category, b, "event: category");
    expect_borrowed(e.actor, b, "event: actor");
    expect_borrowed(e.note, b, "event: note");

    if (!msgpack_zone_init(&zone, 2048)) {
        return;
    }
    fuzz_expect(repack(event_pack, &e, 0, &sb, &zone, &o2) == 0,
                "event: what unpacks packs and unpacks again");
    fuzz_expect(case_event_unpack(&o2, &again) == 0, "event: a packed event reads back");
    /* `at` is read from a positive integer into an int64; one above INT64_MAX, which no
     * daemon writes, turns negative, so its round trip is only compared within range. */
    fuzz_expect(again.seq == e.seq && again.case_id == e.case_id && again.type == e.type
                    && again.state == e.state && (e.at < 0 || again.at == e.at),
                "event: numbers survive pack and unpack");
    fuzz_expect(str_same(again.code, e.code) && str_same(again.unit, e.unit)
                    && str_same(again.district, e.district)
                    && str_same(again.category, e.category)
                    && str_same(again.actor, e.actor) && str_same(again.note, e.note),
                "event: strings survive pack and unpack");
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
}

/* ---- the entry point -------------------------------------------------------------- */

/* request_find_rid runs before the guard in the daemon's eyes ("never fails"), so it is
 * held to bounds on any bytes; what it finds is checked against the unpacked map later. */
static void
check_rid_bounds(const body_ref *b, const char **rid, size_t *rid_len)
{
    request_find_rid(b->p, b->n, rid, rid_len);
    fuzz_expect((*rid == NULL) == (*rid_len == 0), "rid: NULL exactly when empty");
    fuzz_expect(*rid_len <= REQUEST_MAX_RID, "rid: at most REQUEST_MAX_RID bytes");
    fuzz_expect(fuzz_inside(*rid, *rid_len, b->p, b->n), "rid: inside the body");
}

static bool
is_scalar(msgpack_object_type t)
{
    return t == MSGPACK_OBJECT_NIL || t == MSGPACK_OBJECT_BOOLEAN
           || t == MSGPACK_OBJECT_POSITIVE_INTEGER || t == MSGPACK_OBJECT_NEGATIVE_INTEGER
           || t == MSGPACK_OBJECT_FLOAT32 || t == MSGPACK_OBJECT_FLOAT64
           || t == MSGPACK_OBJECT_STR || t == MSGPACK_OBJECT_BIN;
}

/*
 * request_find_rid walks the raw bytes by hand; here the rid is found the slow way and
 * the two must agree exactly: the keys are judged on msgpack-c's unpacked map (the
 * first str key "rid", as mp_map_get and the parsers see it), and the raw bytes of
 * each pair are located by skipping pair by pair.
 */
static void
check_rid_found(const char *rid, size_t rid_len, const msgpack_object *o, const body_ref *b)
{
    const unsigned char *p = (const unsigned char *)b->p;
    const char          *want = NULL;
    size_t               want_len = 0;
    size_t               pos;
    uint32_t             i;

    if (o->type == MSGPACK_OBJECT_MAP) {
        pos = p[0] == 0xde ? 3 : p[0] == 0xdf ? 5 : 1;   /* map16, map32, fixmap */
        for (i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            size_t                   k = mp_guard_skip(p + pos, b->n - pos);
            size_t                   v;

            fuzz_expect(k > 0, "rid: a guarded map's keys can be skipped");
            v = mp_guard_skip(p + pos + k, b->n - pos - k);
            fuzz_expect(v > 0, "rid: a guarded map's values can be skipped");
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 3
                && memcmp(kv->key.via.str.ptr, "rid", 3) == 0) {
                if (is_scalar(kv->val.type) && v <= REQUEST_MAX_RID) {
                    want = b->p + pos + k;
                    want_len = v;
                }
                break;
            }
            pos += k + v;
        }
    }
    fuzz_expect(rid == want && rid_len == want_len,
                "rid: the raw value of the first \"rid\" key, if a scalar of at most 64 bytes");
}

/* The daemon answers a refusal with gl_error_pack, the request's rid copied in raw:
 * the reply must be one well-formed object whatever the request held. */
static void
check_error_reply(const gl_error *err, const char *rid, size_t rid_len)
{
    static const mp_guard_limits any = { MP_GUARD_MAX_DEPTH, SIZE_MAX, SIZE_MAX };
    msgpack_sbuffer              sb;
    msgpack_packer               pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fuzz_expect(gl_error_pack(&pk, err, rid, rid_len) == 0, "the error reply packs");
    fuzz_expect(mp_guard_check(sb.data, sb.size, &any, NULL) == 0,
                "the error reply is one well-formed object");
    msgpack_sbuffer_destroy(&sb);
}

static void
decode_as(int target, const msgpack_object *o, const body_ref *b, const char *rid,
          size_t rid_len)
{
    gl_error err;
    int      rc;

    gl_error_clear(&err);
    switch (target) {
    case T_CREATE: rc = check_create(o, b, &err); break;
    case T_GET:    rc = check_get(o, b, &err); break;
    case T_LIST:   rc = check_list(o, b, &err); break;
    case T_ACT:    rc = check_act(o, b, &err); break;
    case T_STATS:  rc = check_stats(o, b, &err); break;
    case T_FEED:   rc = check_feed(o, b, &err); break;
    case T_RECORD: check_record(o, b); return;
    default:       check_event(o, b); return;
    }
    expect_verdict(rc, &err);
    if (rc != 0) {
        check_error_reply(&err, rid, rid_len);
    }
}

/* The direct decoder of the stored form reads any bytes without reading past them, and
 * is stricter than the object path: what it accepts, the object path reads as the same
 * record. */
static void
check_direct_decode(const body_ref *b)
{
    msgpack_zone   zone;
    msgpack_object o;
    case_record    direct, tree;

    if (b->n == 0 || ((unsigned char)b->p[0] & 0xf0) != 0x90 || !msgpack_zone_init(&zone, 8192)) {
        return;
    }
    if (case_record_decode(b->p, b->n, &zone, &direct) == 0) {
        fuzz_expect(mp_unpack(b->p, b->n, &zone, &o) == 0 && case_record_unpack(&o, &tree) == 0,
                    "record: what the direct decoder accepts, the object path reads");
        expect_record_same(&direct, &tree);
        check_record_borrowed(&direct, b);
    }
    msgpack_zone_destroy(&zone);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char  *copy;
    body_ref        b;
    const char     *rid;
    size_t          rid_len;
    msgpack_zone    zone;
    msgpack_object  o;
    int             target;

    if (size == 0) {
        return 0;
    }
    target = data[0] % FUZZ_TARGETS;
    copy = fuzz_copy(data + 1, size - 1);
    if (copy == NULL) {
        return 0;
    }
    b.p = (const char *)copy;
    b.n = size - 1;

    check_rid_bounds(&b, &rid, &rid_len);
    check_direct_decode(&b);
    /* As the daemon: bodies over the limit, or refused by the guard, go no further. */
    if (b.n > REQUEST_MAX_BODY
        || mp_guard_check(b.p, b.n, &mp_guard_request_limits, NULL) != 0) {
        goto done;
    }
    if (!msgpack_zone_init(&zone, 8192)) {
        goto done;
    }
    fuzz_expect(mp_unpack(b.p, b.n, &zone, &o) == 0,
                "a body that passed mp_guard_check unpacks");
    check_rid_found(rid, rid_len, &o, &b);
    decode_as(target, &o, &b, rid, rid_len);
    msgpack_zone_destroy(&zone);

done:
    free(copy);
    return 0;
}
