/* case_record: the case's enumerations and its MessagePack map. */
#include "case_record.h"

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

static int pack_kv_str(msgpack_packer *pk, const char *k, gl_str v)
{
    return mp_pack_cstr(pk, k) | mp_pack_str_or_nil(pk, v);
}

static int pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    return mp_pack_cstr(pk, k) | msgpack_pack_int64(pk, v);
}

static int pack_kv_time(msgpack_packer *pk, const char *k, int64_t v)
{
    if (v == 0) {
        return mp_pack_cstr(pk, k) | msgpack_pack_nil(pk);
    }
    return pack_kv_int(pk, k, v);
}

static int pack_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    return mp_pack_cstr(pk, k) | (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

#define CASE_RECORD_KEYS 37

int case_record_pack(msgpack_packer *pk, const case_record *c, unsigned flags)
{
    int rc = msgpack_pack_map(pk, CASE_RECORD_KEYS);
    rc |= pack_kv_int(pk, "id", (int64_t)c->id);
    rc |= pack_kv_str(pk, "code", c->code);
    rc |= pack_kv_int(pk, "version", (int64_t)c->version);
    rc |= mp_pack_cstr(pk, "state") | mp_pack_cstr(pk, case_state_name(c->state));
    rc |= mp_pack_cstr(pk, "channel") | mp_pack_str_or_nil(pk, gl_str_c(case_channel_name(c->channel)));
    rc |= pack_kv_str(pk, "category", c->category);
    rc |= mp_pack_cstr(pk, "urgency") | mp_pack_cstr(pk, case_urgency_name(c->urgency));
    rc |= mp_pack_cstr(pk, "title") | mp_pack_str_or_nil(pk, c->title);
    rc |= mp_pack_cstr(pk, "description") | mp_pack_str(pk, c->description);

    const case_location *l = &c->location;
    rc |= mp_pack_cstr(pk, "location") | msgpack_pack_map(pk, 7);
    rc |= pack_kv_str(pk, "district", l->district);
    rc |= pack_kv_str(pk, "street", l->street);
    rc |= pack_kv_str(pk, "community", l->community);
    rc |= pack_kv_str(pk, "grid", l->grid);
    rc |= pack_kv_str(pk, "address", l->address);
    rc |= mp_pack_cstr(pk, "lat");
    rc |= l->has_coords ? msgpack_pack_double(pk, l->lat) : msgpack_pack_nil(pk);
    rc |= mp_pack_cstr(pk, "lon");
    rc |= l->has_coords ? msgpack_pack_double(pk, l->lon) : msgpack_pack_nil(pk);

    rc |= mp_pack_cstr(pk, "reporter") | msgpack_pack_map(pk, 2);
    if ((flags & CASE_PACK_MASK_NAME) != 0 && c->reporter_name.n > 0) {
        char masked[256];
        size_t n = case_name_mask(c->reporter_name, masked, sizeof masked);
        rc |= pack_kv_str(pk, "name", gl_str_of(masked, n));
    } else {
        rc |= pack_kv_str(pk, "name", c->reporter_name);
    }
    if ((flags & CASE_PACK_MASK_PHONE) != 0 && c->reporter_phone.n > 0) {
        char masked[64];
        size_t n = case_phone_mask(c->reporter_phone, masked, sizeof masked);
        rc |= pack_kv_str(pk, "phone", gl_str_of(masked, n));
    } else {
        rc |= pack_kv_str(pk, "phone", c->reporter_phone);
    }

    rc |= mp_pack_cstr(pk, "attachments") | msgpack_pack_array(pk, c->n_attachments);
    for (uint32_t i = 0; i < c->n_attachments; i++) {
        rc |= mp_pack_str(pk, c->attachments[i]);
    }
    rc |= pack_kv_str(pk, "request_id", c->request_id);
    rc |= pack_kv_str(pk, "created_by", c->created_by);
    rc |= pack_kv_time(pk, "reported_at", c->reported_at);
    rc |= pack_kv_bool(pk, "resolved_on_spot", c->resolved_on_spot);
    rc |= pack_kv_str(pk, "unit", c->unit);
    rc |= pack_kv_int(pk, "level", c->level);
    rc |= pack_kv_time(pk, "accept_by", c->accept_by);
    rc |= pack_kv_time(pk, "resolve_by", c->resolve_by);
    rc |= pack_kv_int(pk, "created_at", c->created_at);
    rc |= pack_kv_int(pk, "updated_at", c->updated_at);
    rc |= pack_kv_bool(pk, "supervised", c->supervised);
    rc |= mp_pack_cstr(pk, "duplicate_of");
    rc |= c->duplicate_of != 0 ? msgpack_pack_uint64(pk, c->duplicate_of) : msgpack_pack_nil(pk);
    rc |= pack_kv_int(pk, "reopen_count", c->reopen_count);
    rc |= pack_kv_int(pk, "return_count", c->return_count);
    rc |= mp_pack_cstr(pk, "returned_by") | msgpack_pack_array(pk, c->n_returned_by);
    for (uint32_t i = 0; i < c->n_returned_by; i++) {
        rc |= mp_pack_str(pk, c->returned_by[i]);
    }
    rc |= mp_pack_cstr(pk, "satisfaction");
    const char *sat = case_satisfaction_name(c->satisfaction);
    rc |= sat != NULL ? mp_pack_cstr(pk, sat) : msgpack_pack_nil(pk);
    rc |= pack_kv_str(pk, "reply", c->reply);
    rc |= pack_kv_time(pk, "extension_until", c->extension_until);
    rc |= pack_kv_str(pk, "agent", c->agent);
    rc |= pack_kv_time(pk, "dispatched_at", c->dispatched_at);
    rc |= pack_kv_time(pk, "accepted_at", c->accepted_at);
    rc |= pack_kv_time(pk, "resolved_at", c->resolved_at);
    rc |= pack_kv_time(pk, "warn_at", c->warn_at);
    rc |= pack_kv_int(pk, "deadlines_fired", c->deadlines_fired);
    rc |= pack_kv_time(pk, "deadlines_at", c->deadlines_at);
    return rc != 0 ? -1 : 0;
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

int case_record_pack_stored(msgpack_packer *pk, const case_record *c)
{
    const case_location *l = &c->location;
    int rc = msgpack_pack_array(pk, S_COUNT);
    rc |= msgpack_pack_uint8(pk, CASE_STORED_FORM);
    rc |= msgpack_pack_int64(pk, (int64_t)c->id);   /* as the wire map does */
    rc |= mp_pack_str(pk, c->code);
    rc |= msgpack_pack_int64(pk, (int64_t)c->version);
    rc |= msgpack_pack_int(pk, (int)c->state);
    rc |= msgpack_pack_int(pk, (int)c->channel);
    rc |= mp_pack_str(pk, c->category);
    rc |= msgpack_pack_int(pk, (int)c->urgency);
    rc |= mp_pack_str(pk, c->title);
    rc |= mp_pack_str(pk, c->description);
    rc |= mp_pack_str(pk, l->district);
    rc |= mp_pack_str(pk, l->street);
    rc |= mp_pack_str(pk, l->community);
    rc |= mp_pack_str(pk, l->grid);
    rc |= mp_pack_str(pk, l->address);
    rc |= l->has_coords ? msgpack_pack_double(pk, l->lat) : msgpack_pack_nil(pk);
    rc |= l->has_coords ? msgpack_pack_double(pk, l->lon) : msgpack_pack_nil(pk);
    rc |= mp_pack_str(pk, c->reporter_name);
    rc |= mp_pack_str(pk, c->reporter_phone);
    rc |= msgpack_pack_array(pk, c->n_attachments);
    for (uint32_t i = 0; i < c->n_attachments; i++) {
        rc |= mp_pack_str(pk, c->attachments[i]);
    }
    rc |= mp_pack_str(pk, c->request_id);
    rc |= mp_pack_str(pk, c->created_by);
    rc |= msgpack_pack_int64(pk, c->reported_at);
    rc |= c->resolved_on_spot ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    rc |= mp_pack_str(pk, c->unit);
    rc |= msgpack_pack_uint32(pk, c->level);
    rc |= msgpack_pack_int64(pk, c->accept_by);
    rc |= msgpack_pack_int64(pk, c->resolve_by);
    rc |= msgpack_pack_int64(pk, c->created_at);
    rc |= msgpack_pack_int64(pk, c->updated_at);
    rc |= c->supervised ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    rc |= msgpack_pack_uint64(pk, c->duplicate_of);
    rc |= msgpack_pack_uint32(pk, c->reopen_count);
    rc |= msgpack_pack_uint32(pk, c->return_count);
    rc |= msgpack_pack_array(pk, c->n_returned_by);
    for (uint32_t i = 0; i < c->n_returned_by; i++) {
        rc |= mp_pack_str(pk, c->returned_by[i]);
    }
    rc |= msgpack_pack_int(pk, (int)c->satisfaction);
    rc |= mp_pack_str(pk, c->reply);
    rc |= msgpack_pack_int64(pk, c->extension_until);
    rc |= mp_pack_str(pk, c->agent);
    rc |= msgpack_pack_int64(pk, c->dispatched_at);
    rc |= msgpack_pack_int64(pk, c->accepted_at);
    rc |= msgpack_pack_int64(pk, c->resolved_at);
    rc |= msgpack_pack_int64(pk, c->warn_at);
    rc |= msgpack_pack_uint32(pk, c->deadlines_fired);
    rc |= msgpack_pack_int64(pk, c->deadlines_at);
    return rc != 0 ? -1 : 0;
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
