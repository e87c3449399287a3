/* case_record: the case's enumerations and its MessagePack map. */
#include "case_record.h"

#include "mp_fast.h"

#include <stdlib.h>

#include <string.h>

static const char *const state_names[CASE_STATE_COUNT] = {
    "registered", "dispatched", "accepted", "resolved", "closed",
    "returned", "merged", "withdrawn"
};
static const char *const channel_names[CHANNEL_COUNT] = {
    "hotline", "window", "grid", "web", "app", "transfer"
};
static const char *const urgency_names[URGENCY_COUNT] = { "emergency", "urgent", "normal" };
static const char *const satisfaction_names[SATISFACTION_COUNT] = {
    NULL, "satisfied", "basically_satisfied", "unsatisfied"
};

static int names_parse(const char *const *names, int count, gl_str s)
{
    for (int i = 0; i < count; i++) {
        if (names[i] != NULL && gl_str_eq(s, names[i])) {
            return i;
        }
    }
    return -1;
}

const char *case_state_name(case_state v)
{
    return (unsigned)v < CASE_STATE_COUNT ? state_names[v] : "registered";
}
const char *case_channel_name(case_channel v)
{
    return (unsigned)v < CHANNEL_COUNT ? channel_names[v] : NULL;
}
const char *case_urgency_name(case_urgency v)
{
    return (unsigned)v < URGENCY_COUNT ? urgency_names[v] : "normal";
}
const char *case_satisfaction_name(case_satisfaction v)
{
    return (unsigned)v < SATISFACTION_COUNT ? satisfaction_names[v] : NULL;
}
int case_state_parse(gl_str s) { return names_parse(state_names, CASE_STATE_COUNT, s); }
int case_channel_parse(gl_str s) { return names_parse(channel_names, CHANNEL_COUNT, s); }
int case_urgency_parse(gl_str s) { return names_parse(urgency_names, URGENCY_COUNT, s); }
int case_satisfaction_parse(gl_str s)
{
    return names_parse(satisfaction_names, SATISFACTION_COUNT, s);
}

size_t case_phone_mask(gl_str phone, char *out, size_t cap)
{
    size_t digits = 0;
    for (uint32_t i = 0; i < phone.n; i++) {
        digits += phone.p[i] >= '0' && phone.p[i] <= '9';
    }
    size_t seen = 0, n = 0;
    for (uint32_t i = 0; i < phone.n && n + 1 < cap; i++) {
        char ch = phone.p[i];
        if (ch >= '0' && ch <= '9') {
            seen++;
            if (seen > 3 && seen + 4 <= digits) {
                ch = '*';
            }
        }
        out[n++] = ch;
    }
    if (cap > 0) {
        out[n] = '\0';
    }
    return n;
}

/* The length of the UTF-8 character starting with byte b (1 for a stray byte). */
static size_t utf8_char_len(unsigned char b)
{
    return b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
}

size_t case_name_mask(gl_str name, char *out, size_t cap)
{
    size_t n = 0, i = 0;
    if (name.n == 0 || cap == 0) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    size_t first = utf8_char_len((unsigned char)name.p[0]);
    if (first > name.n) {
        first = name.n;
    }
    if (first + 1 > cap) {
        out[0] = '\0';   /* not even the first character fits: stars alone would mislead */
        return 0;
    }
    memcpy(out, name.p, first);
    n = first;
    for (i = first; i < name.n && n + 2 <= cap; i += utf8_char_len((unsigned char)name.p[i])) {
        out[n++] = '*';
    }
    out[n] = '\0';
    return n;
}

/* An upper bound of either packed form's size: the fixed part (key names, headers,
 * numbers) and every string with its header. Masked strings are never longer than
 * what they mask. */
static size_t record_bound(const case_record *c)
{
    const case_location *l = &c->location;
    size_t n = 2048 + c->code.n + c->category.n + c->title.n + c->description.n
               + l->district.n + l->street.n + l->community.n + l->grid.n + l->address.n
               + c->reporter_name.n + c->reporter_phone.n + c->request_id.n
               + c->created_by.n + c->unit.n + c->reply.n + c->agent.n;
    for (uint32_t i = 0; i < c->n_attachments && i < CASE_MAX_ATTACHMENTS; i++) {
        n += 5 + c->attachments[i].n;
    }
    for (uint32_t i = 0; i < c->n_returned_by && i < CASE_MAX_RETURNED; i++) {
        n += 5 + c->returned_by[i].n;
    }
    return n;
}

static void out_kv_str(mp_out *o, const char *k, gl_str v)
{
    mp_out_cstr(o, k);
    mp_out_str_or_nil(o, v);
}

static void out_kv_int(mp_out *o, const char *k, int64_t v)
{
    mp_out_cstr(o, k);
    mp_out_int(o, v);
}

/* A time: nil when not set. */
static void out_kv_time(mp_out *o, const char *k, int64_t v)
{
    mp_out_cstr(o, k);
    if (v == 0) mp_out_nil(o);
    else mp_out_int(o, v);
}

static void out_kv_bool(mp_out *o, const char *k, bool v)
{
    mp_out_cstr(o, k);
    mp_out_bool(o, v);
}

#define CASE_RECORD_KEYS 37

static void out_wire(mp_out *o, const case_record *c, unsigned flags)
{
    const case_location *l = &c->location;
    mp_out_map(o, CASE_RECORD_KEYS);
    out_kv_int(o, "id", (int64_t)c->id);
    out_kv_str(o, "code", c->code);
    out_kv_int(o, "version", (int64_t)c->version);
    mp_out_cstr(o, "state");
    mp_out_cstr(o, case_state_name(c->state));
    out_kv_str(o, "channel", gl_str_c(case_channel_name(c->channel)));
    out_kv_str(o, "category", c->category);
    mp_out_cstr(o, "urgency");
    mp_out_cstr(o, case_urgency_name(c->urgency));
    out_kv_str(o, "title", c->title);
    mp_out_cstr(o, "description");
    mp_out_gl_str(o, c->description);

    mp_out_cstr(o, "location");
    mp_out_map(o, 7);
    out_kv_str(o, "district", l->district);
    out_kv_str(o, "street", l->street);
    out_kv_str(o, "community", l->community);
    out_kv_str(o, "grid", l->grid);
    out_kv_str(o, "address", l->address);
    mp_out_cstr(o, "lat");
    if (l->has_coords) mp_out_double(o, l->lat);
    else mp_out_nil(o);
    mp_out_cstr(o, "lon");
    if (l->has_coords) mp_out_double(o, l->lon);
    else mp_out_nil(o);

    mp_out_cstr(o, "reporter");
    mp_out_map(o, 2);
    if ((flags & CASE_PACK_MASK_NAME) != 0 && c->reporter_name.n > 0) {
        char masked[256];
        size_t n = case_name_mask(c->reporter_name, masked, sizeof masked);
        out_kv_str(o, "name", gl_str_of(masked, n));
    } else {
        out_kv_str(o, "name", c->reporter_name);
    }
    if ((flags & CASE_PACK_MASK_PHONE) != 0 && c->reporter_phone.n > 0) {
        char masked[64];
        size_t n = case_phone_mask(c->reporter_phone, masked, sizeof masked);
        out_kv_str(o, "phone", gl_str_of(masked, n));
    } else {
        out_kv_str(o, "phone", c->reporter_phone);
    }

    mp_out_cstr(o, "attachments");
    mp_out_array(o, c->n_attachments);
    for (uint32_t i = 0; i < c->n_attachments; i++) {
        mp_out_gl_str(o, c->attachments[i]);
    }
    out_kv_str(o, "request_id", c->request_id);
    out_kv_str(o, "created_by", c->created_by);
    out_kv_time(o, "reported_at", c->reported_at);
    out_kv_bool(o, "resolved_on_spot", c->resolved_on_spot);
    out_kv_str(o, "unit", c->unit);
    out_kv_int(o, "level", c->level);
    out_kv_time(o, "accept_by", c->accept_by);
    out_kv_time(o, "resolve_by", c->resolve_by);
    out_kv_int(o, "created_at", c->created_at);
    out_kv_int(o, "updated_at", c->updated_at);
    out_kv_bool(o, "supervised", c->supervised);
    mp_out_cstr(o, "duplicate_of");
    if (c->duplicate_of != 0) mp_out_uint(o, c->duplicate_of);
    else mp_out_nil(o);
    out_kv_int(o, "reopen_count", c->reopen_count);
    out_kv_int(o, "return_count", c->return_count);
    mp_out_cstr(o, "returned_by");
    mp_out_array(o, c->n_returned_by);
    for (uint32_t i = 0; i < c->n_returned_by; i++) {
        mp_out_gl_str(o, c->returned_by[i]);
    }
    out_kv_str(o, "satisfaction", gl_str_c(case_satisfaction_name(c->satisfaction)));
    out_kv_str(o, "reply", c->reply);
    out_kv_time(o, "extension_until", c->extension_until);
    out_kv_str(o, "agent", c->agent);
    out_kv_time(o, "dispatched_at", c->dispatched_at);
    out_kv_time(o, "accepted_at", c->accepted_at);
    out_kv_time(o, "resolved_at", c->resolved_at);
    out_kv_time(o, "warn_at", c->warn_at);
    out_kv_int(o, "deadlines_fired", c->deadlines_fired);
    out_kv_time(o, "deadlines_at", c->deadlines_at);
}

/* The stored form's elements, in order. Appending is the only change a later form
 * may make without a new CASE_STORED_FORM: old readers skip what they do not know. */
enum {
    S_FORM, S_ID, S_CODE, S_VERSION, S_STATE, S_CHANNEL, S_CATEGORY, S_URGENCY, S_TITLE,
    S_DESCRIPTION, S_DISTRICT, S_STREET, S_COMMUNITY, S_GRID, S_ADDRESS, S_LAT, S_LON,
    S_REPORTER_NAME, S_REPORTER_PHONE, S_ATTACHMENTS, S_REQUEST_ID, S_CREATED_BY,
    S_REPORTED_AT, S_RESOLVED_ON_SPOT, S_UNIT, S_LEVEL, S_ACCEPT_BY, S_RESOLVE_BY,
    S_CREATED_AT, S_UPDATED_AT, S_SUPERVISED, S_DUPLICATE_OF, S_REOPEN_COUNT,
    S_RETURN_COUNT, S_RETURNED_BY, S_SATISFACTION, S_REPLY, S_EXTENSION_UNTIL, S_AGENT,
    S_DISPATCHED_AT, S_ACCEPTED_AT, S_RESOLVED_AT, S_WARN_AT, S_DEADLINES_FIRED,
    S_DEADLINES_AT,
    S_COUNT
};

/* Ids and versions go as signed integers, as in the wire map. */
static void out_stored(mp_out *o, const case_record *c)
{
    const case_location *l = &c->location;
    mp_out_array(o, S_COUNT);
    mp_out_uint(o, CASE_STORED_FORM);
    mp_out_int(o, (int64_t)c->id);
    mp_out_gl_str(o, c->code);
    mp_out_int(o, (int64_t)c->version);
    mp_out_int(o, (int)c->state);
    mp_out_int(o, (int)c->channel);
    mp_out_gl_str(o, c->category);
    mp_out_int(o, (int)c->urgency);
    mp_out_gl_str(o, c->title);
    mp_out_gl_str(o, c->description);
    mp_out_gl_str(o, l->district);
    mp_out_gl_str(o, l->street);
    mp_out_gl_str(o, l->community);
    mp_out_gl_str(o, l->grid);
    mp_out_gl_str(o, l->address);
    if (l->has_coords) {
        mp_out_double(o, l->lat);
        mp_out_double(o, l->lon);
    } else {
        mp_out_nil(o);
        mp_out_nil(o);
    }
    mp_out_gl_str(o, c->reporter_name);
    mp_out_gl_str(o, c->reporter_phone);
    mp_out_array(o, c->n_attachments);
    for (uint32_t i = 0; i < c->n_attachments; i++) {
        mp_out_gl_str(o, c->attachments[i]);
    }
    mp_out_gl_str(o, c->request_id);
    mp_out_gl_str(o, c->created_by);
    mp_out_int(o, c->reported_at);
    mp_out_bool(o, c->resolved_on_spot);
    mp_out_gl_str(o, c->unit);
    mp_out_uint(o, c->level);
    mp_out_int(o, c->accept_by);
    mp_out_int(o, c->resolve_by);
    mp_out_int(o, c->created_at);
    mp_out_int(o, c->updated_at);
    mp_out_bool(o, c->supervised);
    mp_out_uint(o, c->duplicate_of);
    mp_out_uint(o, c->reopen_count);
    mp_out_uint(o, c->return_count);
    mp_out_array(o, c->n_returned_by);
    for (uint32_t i = 0; i < c->n_returned_by; i++) {
        mp_out_gl_str(o, c->returned_by[i]);
    }
    mp_out_int(o, (int)c->satisfaction);
    mp_out_gl_str(o, c->reply);
    mp_out_int(o, c->extension_until);
    mp_out_gl_str(o, c->agent);
    mp_out_int(o, c->dispatched_at);
    mp_out_int(o, c->accepted_at);
    mp_out_int(o, c->resolved_at);
    mp_out_int(o, c->warn_at);
    mp_out_uint(o, c->deadlines_fired);
    mp_out_int(o, c->deadlines_at);
}

/* Packs into a buffer on the stack (or the heap for a large case), then hands the
 * packer's writer the whole record at once. */
static int pack_with(msgpack_packer *pk, const case_record *c, unsigned flags, bool stored)
{
    unsigned char stack[8192];
    size_t cap = record_bound(c);
    unsigned char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (buf == NULL) {
        return -1;
    }
    mp_out o = { buf, 0, cap, false };
    if (stored) {
        out_stored(&o, c);
    } else {
        out_wire(&o, c, flags);
    }
    int rc = o.full || pk->callback(pk->data, (const char *)buf, o.n) != 0 ? -1 : 0;
    if (buf != stack) {
        free(buf);
    }
    return rc;
}

int case_record_pack(msgpack_packer *pk, const case_record *c, unsigned flags)
{
    return pack_with(pk, c, flags, false);
}

int case_record_pack_stored(msgpack_packer *pk, const case_record *c)
{
    return pack_with(pk, c, 0, true);
}

/* The stored form read straight from its bytes, without an object tree. Strings in c
 * point into p. Returns 0, or -1 for anything but a whole stored record. */
static int decode_stored(const char *p, size_t n, case_record *c)
{
    mp_in in = mp_in_of(p, n);
    uint32_t count = mp_in_array(&in), i;
    if (in.bad || count < S_COUNT || mp_in_int(&in) != CASE_STORED_FORM) {
        return -1;
    }
    case_location *l = &c->location;
    c->id = (uint64_t)mp_in_int(&in);
    c->code = mp_in_str(&in);
    c->version = (uint64_t)mp_in_int(&in);
    int64_t state = mp_in_int(&in), channel = mp_in_int(&in);
    c->category = mp_in_str(&in);
    int64_t urgency = mp_in_int(&in);
    c->title = mp_in_str(&in);
    c->description = mp_in_str(&in);
    l->district = mp_in_str(&in);
    l->street = mp_in_str(&in);
    l->community = mp_in_str(&in);
    l->grid = mp_in_str(&in);
    l->address = mp_in_str(&in);
    bool no_lat = mp_in_is_nil(&in);
    double lat = no_lat ? 0 : mp_in_double(&in);
    bool no_lon = mp_in_is_nil(&in);
    double lon = no_lon ? 0 : mp_in_double(&in);
    l->has_coords = !no_lat && !no_lon;
    if (l->has_coords) {
        l->lat = lat;
        l->lon = lon;
    }
    c->reporter_name = mp_in_str(&in);
    c->reporter_phone = mp_in_str(&in);
    uint32_t na = mp_in_array(&in);
    for (i = 0; i < na && !in.bad; i++) {
        gl_str a = mp_in_str(&in);
        if (i < CASE_MAX_ATTACHMENTS) {
            c->attachments[c->n_attachments++] = a;
        }
    }
    c->request_id = mp_in_str(&in);
    c->created_by = mp_in_str(&in);
    c->reported_at = mp_in_int(&in);
    c->resolved_on_spot = mp_in_bool(&in);
    c->unit = mp_in_str(&in);
    c->level = (uint32_t)mp_in_int(&in);
    c->accept_by = mp_in_int(&in);
    c->resolve_by = mp_in_int(&in);
    c->created_at = mp_in_int(&in);
    c->updated_at = mp_in_int(&in);
    c->supervised = mp_in_bool(&in);
    c->duplicate_of = (uint64_t)mp_in_int(&in);
    c->reopen_count = (uint32_t)mp_in_int(&in);
    c->return_count = (uint32_t)mp_in_int(&in);
    uint32_t nr = mp_in_array(&in);
    for (i = 0; i < nr && !in.bad; i++) {
        gl_str u = mp_in_str(&in);
        if (i < CASE_MAX_RETURNED) {
            c->returned_by[c->n_returned_by++] = u;
        }
    }
    int64_t sat = mp_in_int(&in);
    c->reply = mp_in_str(&in);
    c->extension_until = mp_in_int(&in);
    c->agent = mp_in_str(&in);
    c->dispatched_at = mp_in_int(&in);
    c->accepted_at = mp_in_int(&in);
    c->resolved_at = mp_in_int(&in);
    c->warn_at = mp_in_int(&in);
    c->deadlines_fired = (uint32_t)mp_in_int(&in);
    c->deadlines_at = mp_in_int(&in);
    for (i = S_COUNT; i < count && !in.bad; i++) {
        mp_in_skip(&in);   /* a later form's elements */
    }
    if (in.bad || in.p != in.end || state < 0 || state >= CASE_STATE_COUNT
        || channel < CHANNEL_NONE || channel >= CHANNEL_COUNT || urgency < 0
        || urgency >= URGENCY_COUNT || sat < 0 || sat >= SATISFACTION_COUNT || c->id == 0) {
        return -1;
    }
    c->state = (case_state)state;
    c->channel = (case_channel)channel;
    c->urgency = (case_urgency)urgency;
    c->satisfaction = (case_satisfaction)sat;
    return 0;
}

int case_record_decode(const char *p, size_t n, msgpack_zone *zone, case_record *c)
{
    memset(c, 0, sizeof *c);
    if (n > 0 && (((unsigned char)p[0] & 0xf0) == 0x90 || (unsigned char)p[0] == 0xdc
                  || (unsigned char)p[0] == 0xdd)) {
        return decode_stored(p, n, c);
    }
    msgpack_object o;
    if (mp_unpack(p, n, zone, &o) != 0) {
        return -1;
    }
    return case_record_unpack(&o, c);
}

static gl_str obj_str(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        return gl_str_of(o->via.str.ptr, o->via.str.size);
    }
    return GL_STR_NULL;
}

static int64_t obj_int(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return o->via.i64;
    }
    return 0;
}

static double obj_double(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        return o->via.f64;
    }
    return (double)obj_int(o);
}

static inline bool key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && gl_str_eq(obj_str(k), s);
}

static void unpack_location(const msgpack_object *o, case_location *l)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return;
    }
    bool has_lat = false, has_lon = false;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (key_is(k, "district")) l->district = obj_str(v);
        else if (key_is(k, "street")) l->street = obj_str(v);
        else if (key_is(k, "community")) l->community = obj_str(v);
        else if (key_is(k, "grid")) l->grid = obj_str(v);
        else if (key_is(k, "address")) l->address = obj_str(v);
        else if (key_is(k, "lat") && v->type != MSGPACK_OBJECT_NIL) {
            l->lat = obj_double(v);
            has_lat = true;
        } else if (key_is(k, "lon") && v->type != MSGPACK_OBJECT_NIL) {
            l->lon = obj_double(v);
            has_lon = true;
        }
    }
    l->has_coords = has_lat && has_lon;
}

/* The record's keys, in the order case_record_pack writes them: a stored record's i-th
 * key is almost always fields[i], so unpacking (the writer does it for every case it
 * changes) costs one comparison a key instead of a walk down all the names. */
enum { F_ID, F_CODE, F_VERSION, F_STATE, F_CHANNEL, F_CATEGORY, F_URGENCY, F_TITLE, F_DESCRIPTION, F_LOCATION, F_REPORTER, F_ATTACHMENTS, F_REQUEST_ID, F_CREATED_BY, F_REPORTED_AT, F_RESOLVED_ON_SPOT, F_UNIT, F_LEVEL, F_ACCEPT_BY, F_RESOLVE_BY, F_CREATED_AT, F_UPDATED_AT, F_SUPERVISED, F_DUPLICATE_OF, F_REOPEN_COUNT, F_RETURN_COUNT, F_RETURNED_BY, F_SATISFACTION, F_REPLY, F_EXTENSION_UNTIL, F_AGENT, F_DISPATCHED_AT, F_ACCEPTED_AT, F_RESOLVED_AT, F_WARN_AT, F_DEADLINES_FIRED, F_DEADLINES_AT, F_COUNT };

#define FIELD(n, f) { n, sizeof(n) - 1, f }
static const struct {
    const char *name;
    uint32_t    len;
    int         field;
} record_fields[] = {
    FIELD("id", F_ID),
    FIELD("code", F_CODE),
    FIELD("version", F_VERSION),
    FIELD("state", F_STATE),
    FIELD("channel", F_CHANNEL),
    FIELD("category", F_CATEGORY),
    FIELD("urgency", F_URGENCY),
    FIELD("title", F_TITLE),
    FIELD("description", F_DESCRIPTION),
    FIELD("location", F_LOCATION),
    FIELD("reporter", F_REPORTER),
    FIELD("attachments", F_ATTACHMENTS),
    FIELD("request_id", F_REQUEST_ID),
    FIELD("created_by", F_CREATED_BY),
    FIELD("reported_at", F_REPORTED_AT),
    FIELD("resolved_on_spot", F_RESOLVED_ON_SPOT),
    FIELD("unit", F_UNIT),
    FIELD("level", F_LEVEL),
    FIELD("accept_by", F_ACCEPT_BY),
    FIELD("resolve_by", F_RESOLVE_BY),
    FIELD("created_at", F_CREATED_AT),
    FIELD("updated_at", F_UPDATED_AT),
    FIELD("supervised", F_SUPERVISED),
    FIELD("duplicate_of", F_DUPLICATE_OF),
    FIELD("reopen_count", F_REOPEN_COUNT),
    FIELD("return_count", F_RETURN_COUNT),
    FIELD("returned_by", F_RETURNED_BY),
    FIELD("satisfaction", F_SATISFACTION),
    FIELD("reply", F_REPLY),
    FIELD("extension_until", F_EXTENSION_UNTIL),
    FIELD("agent", F_AGENT),
    FIELD("dispatched_at", F_DISPATCHED_AT),
    FIELD("accepted_at", F_ACCEPTED_AT),
    FIELD("resolved_at", F_RESOLVED_AT),
    FIELD("warn_at", F_WARN_AT),
    FIELD("deadlines_fired", F_DEADLINES_FIRED),
    FIELD("deadlines_at", F_DEADLINES_AT)
};

_Static_assert(sizeof record_fields / sizeof record_fields[0] == CASE_RECORD_KEYS,
               "record_fields must list every key case_record_pack writes, in its order");

static int record_field_of(const msgpack_object *k, uint32_t position)
{
    const size_t n_fields = sizeof record_fields / sizeof record_fields[0];
    uint32_t len = k->via.str.size;
    if (position < n_fields && record_fields[position].len == len
        && memcmp(record_fields[position].name, k->via.str.ptr, len) == 0) {
        return record_fields[position].field;
    }
    for (size_t j = 0; j < n_fields; j++) {
        if (record_fields[j].len == len && memcmp(record_fields[j].name, k->via.str.ptr, len) == 0) {
            return record_fields[j].field;
        }
    }
    return -1;
}

static uint32_t unpack_strs(const msgpack_object *v, gl_str *out, uint32_t cap)
{
    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return 0;
    }
    uint32_t n = v->via.array.size > cap ? cap : v->via.array.size;
    for (uint32_t j = 0; j < n; j++) {
        out[j] = obj_str(&v->via.array.ptr[j]);
    }
    return n;
}

/* An enumeration stored as its number: true with *out set, or false outside [lo, count). */
static bool obj_enum(const msgpack_object *o, int lo, int count, int *out)
{
    int64_t v = obj_int(o);
    *out = (int)v;
    return (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
           && v >= lo && v < count;
}

static int unpack_stored(const msgpack_object *o, case_record *c)
{
    const msgpack_object *a = o->via.array.ptr;
    if (o->via.array.size < S_COUNT || obj_int(&a[S_FORM]) != CASE_STORED_FORM) {
        return -1;
    }
    int state, channel, urgency, sat;
    if (!obj_enum(&a[S_STATE], 0, CASE_STATE_COUNT, &state)
        || !obj_enum(&a[S_CHANNEL], CHANNEL_NONE, CHANNEL_COUNT, &channel)
        || !obj_enum(&a[S_URGENCY], 0, URGENCY_COUNT, &urgency)
        || !obj_enum(&a[S_SATISFACTION], 0, SATISFACTION_COUNT, &sat)) {
        return -1;
    }
    c->id = (uint64_t)obj_int(&a[S_ID]);
    c->code = obj_str(&a[S_CODE]);
    c->version = (uint64_t)obj_int(&a[S_VERSION]);
    c->state = (case_state)state;
    c->channel = (case_channel)channel;
    c->category = obj_str(&a[S_CATEGORY]);
    c->urgency = (case_urgency)urgency;
    c->title = obj_str(&a[S_TITLE]);
    c->description = obj_str(&a[S_DESCRIPTION]);
    c->location.district = obj_str(&a[S_DISTRICT]);
    c->location.street = obj_str(&a[S_STREET]);
    c->location.community = obj_str(&a[S_COMMUNITY]);
    c->location.grid = obj_str(&a[S_GRID]);
    c->location.address = obj_str(&a[S_ADDRESS]);
    c->location.has_coords = a[S_LAT].type != MSGPACK_OBJECT_NIL
                             && a[S_LON].type != MSGPACK_OBJECT_NIL;
    if (c->location.has_coords) {
        c->location.lat = obj_double(&a[S_LAT]);
        c->location.lon = obj_double(&a[S_LON]);
    }
    c->reporter_name = obj_str(&a[S_REPORTER_NAME]);
    c->reporter_phone = obj_str(&a[S_REPORTER_PHONE]);
    c->n_attachments = unpack_strs(&a[S_ATTACHMENTS], c->attachments, CASE_MAX_ATTACHMENTS);
    c->request_id = obj_str(&a[S_REQUEST_ID]);
    c->created_by = obj_str(&a[S_CREATED_BY]);
    c->reported_at = obj_int(&a[S_REPORTED_AT]);
    c->resolved_on_spot = a[S_RESOLVED_ON_SPOT].type == MSGPACK_OBJECT_BOOLEAN
                          && a[S_RESOLVED_ON_SPOT].via.boolean;
    c->unit = obj_str(&a[S_UNIT]);
    c->level = (uint32_t)obj_int(&a[S_LEVEL]);
    c->accept_by = obj_int(&a[S_ACCEPT_BY]);
    c->resolve_by = obj_int(&a[S_RESOLVE_BY]);
    c->created_at = obj_int(&a[S_CREATED_AT]);
    c->updated_at = obj_int(&a[S_UPDATED_AT]);
    c->supervised = a[S_SUPERVISED].type == MSGPACK_OBJECT_BOOLEAN && a[S_SUPERVISED].via.boolean;
    c->duplicate_of = (uint64_t)obj_int(&a[S_DUPLICATE_OF]);
    c->reopen_count = (uint32_t)obj_int(&a[S_REOPEN_COUNT]);
    c->return_count = (uint32_t)obj_int(&a[S_RETURN_COUNT]);
    c->n_returned_by = unpack_strs(&a[S_RETURNED_BY], c->returned_by, CASE_MAX_RETURNED);
    c->satisfaction = (case_satisfaction)sat;
    c->reply = obj_str(&a[S_REPLY]);
    c->extension_until = obj_int(&a[S_EXTENSION_UNTIL]);
    c->agent = obj_str(&a[S_AGENT]);
    c->dispatched_at = obj_int(&a[S_DISPATCHED_AT]);
    c->accepted_at = obj_int(&a[S_ACCEPTED_AT]);
    c->resolved_at = obj_int(&a[S_RESOLVED_AT]);
    c->warn_at = obj_int(&a[S_WARN_AT]);
    c->deadlines_fired = (uint32_t)obj_int(&a[S_DEADLINES_FIRED]);
    c->deadlines_at = obj_int(&a[S_DEADLINES_AT]);
    return c->id == 0 ? -1 : 0;
}

int case_record_unpack(const msgpack_object *o, case_record *c)
{
    bool bad_channel = false;
    memset(c, 0, sizeof *c);
    c->channel = CHANNEL_NONE;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        return unpack_stored(o, c);
    }
    if (o->type != MSGPACK_OBJECT_MAP) {
        return -1;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            continue;
        }
        switch (record_field_of(k, i)) {
        case F_ID: c->id = (uint64_t)obj_int(v); break;
        case F_CODE: c->code = obj_str(v); break;
        case F_VERSION: c->version = (uint64_t)obj_int(v); break;
        case F_STATE: c->state = (case_state)case_state_parse(obj_str(v)); break;
        case F_CHANNEL:
            c->channel = v->type == MSGPACK_OBJECT_NIL ? CHANNEL_NONE
                                                       : (case_channel)case_channel_parse(obj_str(v));
            bad_channel = v->type != MSGPACK_OBJECT_NIL && (int)c->channel < 0;
            break;
        case F_CATEGORY: c->category = obj_str(v); break;
        case F_URGENCY: c->urgency = (case_urgency)case_urgency_parse(obj_str(v)); break;
        case F_TITLE: c->title = obj_str(v); break;
        case F_DESCRIPTION: c->description = obj_str(v); break;
        case F_LOCATION: unpack_location(v, &c->location); break;
        case F_REPORTER: {
            const msgpack_object *name = mp_map_get(v, "name"), *phone = mp_map_get(v, "phone");
            c->reporter_name = name != NULL ? obj_str(name) : GL_STR_NULL;
            c->reporter_phone = phone != NULL ? obj_str(phone) : GL_STR_NULL;
            break;
        }
        case F_ATTACHMENTS:
            if (v->type == MSGPACK_OBJECT_ARRAY) {
                uint32_t n = v->via.array.size;
                c->n_attachments = n > CASE_MAX_ATTACHMENTS ? CASE_MAX_ATTACHMENTS : n;
                for (uint32_t j = 0; j < c->n_attachments; j++) {
                    c->attachments[j] = obj_str(&v->via.array.ptr[j]);
                }
            }
            break;
        case F_REQUEST_ID: c->request_id = obj_str(v); break;
        case F_CREATED_BY: c->created_by = obj_str(v); break;
        case F_REPORTED_AT: c->reported_at = obj_int(v); break;
        case F_RESOLVED_ON_SPOT:
            c->resolved_on_spot = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
            break;
        case F_UNIT: c->unit = obj_str(v); break;
        case F_LEVEL: c->level = (uint32_t)obj_int(v); break;
        case F_ACCEPT_BY: c->accept_by = obj_int(v); break;
        case F_RESOLVE_BY: c->resolve_by = obj_int(v); break;
        case F_CREATED_AT: c->created_at = obj_int(v); break;
        case F_UPDATED_AT: c->updated_at = obj_int(v); break;
        case F_SUPERVISED: c->supervised = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean; break;
        case F_DUPLICATE_OF: c->duplicate_of = (uint64_t)obj_int(v); break;
        case F_REOPEN_COUNT: c->reopen_count = (uint32_t)obj_int(v); break;
        case F_RETURN_COUNT: c->return_count = (uint32_t)obj_int(v); break;
        case F_REPLY: c->reply = obj_str(v); break;
        case F_EXTENSION_UNTIL: c->extension_until = obj_int(v); break;
        case F_AGENT: c->agent = obj_str(v); break;
        case F_DISPATCHED_AT: c->dispatched_at = obj_int(v); break;
        case F_ACCEPTED_AT: c->accepted_at = obj_int(v); break;
        case F_RESOLVED_AT: c->resolved_at = obj_int(v); break;
        case F_WARN_AT: c->warn_at = obj_int(v); break;
        case F_DEADLINES_FIRED: c->deadlines_fired = (uint32_t)obj_int(v); break;
        case F_DEADLINES_AT: c->deadlines_at = obj_int(v); break;
        case F_RETURNED_BY:
            if (v->type == MSGPACK_OBJECT_ARRAY) {
                uint32_t n = v->via.array.size;
                c->n_returned_by = n > CASE_MAX_RETURNED ? CASE_MAX_RETURNED : n;
                for (uint32_t j = 0; j < c->n_returned_by; j++) {
                    c->returned_by[j] = obj_str(&v->via.array.ptr[j]);
                }
            }
            break;
        case F_SATISFACTION: {
            int sat = case_satisfaction_parse(obj_str(v));
            c->satisfaction = sat < 0 ? SATISFACTION_NONE : (case_satisfaction)sat;
            break;
        }
        default: break;   /* a newer daemon's key: skipped */
        }
    }
    if ((int)c->state < 0 || bad_channel || (int)c->urgency < 0 || c->id == 0) {
        return -1;
    }
    return 0;
}
