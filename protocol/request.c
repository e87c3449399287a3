/*
 * request: strict validation of request bodies (see request.h).
 *
 * Each map is read in two passes. The first sorts its entries into a table indexed by
 * the fields the map may hold, refusing keys that are not strings, unknown keys and
 * duplicates; it costs the number of entries times the (small, fixed) number of known
 * fields, so a hostile map with thousands of keys stays cheap. The second checks the
 * fields in the table's fixed order, so the error reported for a body with several
 * faults does not depend on the order the sender packed its keys in.
 *
 * Nil for an optional field means the field is absent; nil for a required one is
 * refused as missing.
 */
#include "request.h"

#include "mp_guard.h"
#include "utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FIELD_CAP      sizeof(((gl_error *)0)->field)
#define MAP_MAX_FIELDS 16

/* ---- field paths ------------------------------------------------------------------ */

/* out = parent "." name, or name alone at the top; cut short if it does not fit. */
static void
path_join(char *out, const char *parent, const char *name)
{
    if (parent[0] == '\0') {
        snprintf(out, FIELD_CAP, "%s", name);
    } else {
        snprintf(out, FIELD_CAP, "%s.%s", parent, name);
    }
}

/*
 * Like path_join for a key the sender made up. The key goes back to the sender in the
 * error reply, which must itself be valid UTF-8, so bytes that are not well-formed
 * UTF-8, and control characters, become '?'; truncation never splits a character.
 */
static void
path_join_key(char *out, const char *parent, gl_str key)
{
    size_t o = 0;
    size_t i = 0;

    if (parent[0] != '\0') {
        o = (size_t)snprintf(out, FIELD_CAP, "%s.", parent);
        if (o >= FIELD_CAP) {
            return;
        }
    }
    while (i < key.n) {
        unsigned char b = (unsigned char)key.p[i];
        size_t        len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
        const char   *src = key.p + i;
        size_t        take = len;

        if (len > key.n - i || !utf8_valid(src, len) || b < 0x20 || b == 0x7f) {
            src = "?";
            len = 1;
            take = 1;
        }
        if (o + take >= FIELD_CAP) {
            break;
        }
        memcpy(out + o, src, take);
        o += take;
        i += len;
    }
    out[o] = '\0';
}

/* ---- maps ------------------------------------------------------------------------- */

static bool
key_is(const msgpack_object_str *k, const char *name)
{
    size_t n = strlen(name);

    return k->size == n && memcmp(k->ptr, name, n) == 0;
}

/*
 * Sorts the entries of map (whose own path is path, "" at the top) into vals:
 * vals[i] is the value under names[i], or NULL when it is absent or nil.
 */
static int
map_collect(const msgpack_object *map, const char *path, const char *const *names,
            size_t n_names, const msgpack_object **vals, gl_error *err)
{
    bool     seen[MAP_MAX_FIELDS] = { false };
    char     field[FIELD_CAP];
    uint32_t i;
    size_t   j;

    for (j = 0; j < n_names; j++) {
        vals[j] = NULL;
    }
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type != MSGPACK_OBJECT_STR) {
            return gl_error_set(err, GL_EBAD_REQUEST, path[0] != '\0' ? path : NULL,
                                "map keys must be strings");
        }
        for (j = 0; j < n_names; j++) {
            if (key_is(&kv->key.via.str, names[j])) {
                break;
            }
        }
        if (j == n_names) {
            path_join_key(field, path, gl_str_of(kv->key.via.str.ptr, kv->key.via.str.size));
            return gl_error_set(err, GL_EINVALID, field, "unknown field");
        }
        if (seen[j]) {
            path_join(field, path, names[j]);
            return gl_error_set(err, GL_EINVALID, field, "appears more than once");
        }
        seen[j] = true;
        if (kv->val.type != MSGPACK_OBJECT_NIL) {
            vals[j] = &kv->val;
        }
    }
    return 0;
}

/* ---- values ----------------------------------------------------------------------- */

static int
missing(const char *field, gl_error *err)
{
    return gl_error_set(err, GL_EINVALID, field, "is required");
}

/* A str of min..max bytes of valid UTF-8 without NUL. */
static int
str_get(const msgpack_object *v, const char *field, uint32_t min, uint32_t max, gl_str *out,
        gl_error *err)
{
    uint32_t n;

    if (v->type != MSGPACK_OBJECT_STR) {
        if (min == 0) {
            return gl_error_set(err, GL_EINVALID, field,
                                "must be a string of at most %" PRIu32 " bytes", max);
        }
        return gl_error_set(err, GL_EINVALID, field,
                            "must be a string of %" PRIu32 " to %" PRIu32 " bytes", min, max);
    }
    n = v->via.str.size;
    if (n < min) {
        if (min == 1) {
            return gl_error_set(err, GL_EINVALID, field, "must not be empty");
        }
        return gl_error_set(err, GL_EINVALID, field,
                            "is %" PRIu32 " bytes; at least %" PRIu32, n, min);
    }
    if (n > max) {
        return gl_error_set(err, GL_EINVALID, field,
                            "is %" PRIu32 " bytes; at most %" PRIu32, n, max);
    }
    if (!utf8_valid(v->via.str.ptr, n)) {
        return gl_error_set(err, GL_EINVALID, field, "must be valid UTF-8 without NUL bytes");
    }
    *out = gl_str_of(v->via.str.ptr, n);
    return 0;
}

static int
bool_get(const msgpack_object *v, const char *field, bool *out, gl_error *err)
{
    if (v->type != MSGPACK_OBJECT_BOOLEAN) {
        return gl_error_set(err, GL_EINVALID, field, "must be true or false");
    }
    *out = v->via.boolean;
    return 0;
}

/* An integer in min..max; what is one of "must be ...", used for every refusal. */
static int
int_get(const msgpack_object *v, const char *field, int64_t min, int64_t max,
        const char *what, int64_t *out, gl_error *err)
{
    int64_t x;

    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (v->via.u64 > (uint64_t)INT64_MAX) {
            goto refuse;
        }
        x = (int64_t)v->via.u64;
    } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        x = v->via.i64;
    } else {
        goto refuse;
    }
    if (x < min || x > max) {
        goto refuse;
    }
    *out = x;
    return 0;

refuse:
    return gl_error_set(err, GL_EINVALID, field, "%s", what);
}

/* An integer or a float in min..max (NaN is outside every range). */
static int
number_get(const msgpack_object *v, const char *field, double min, double max,
           const char *what, double *out, gl_error *err)
{
    double x;

    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: x = (double)v->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: x = (double)v->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          x = v->via.f64; break;
    default:
        return gl_error_set(err, GL_EINVALID, field, "%s", what);
    }
    if (!(x >= min && x <= max)) {
        return gl_error_set(err, GL_EINVALID, field, "%s", what);
    }
    *out = x;
    return 0;
}

/* ---- enumerations ----------------------------------------------------------------- */

typedef struct {
    int         (*parse)(gl_str s);
    const char *(*name)(int v);
    int           count;
} enum_desc;

static const char *channel_name_at(int v) { return case_channel_name((case_channel)v); }
static const char *urgency_name_at(int v) { return case_urgency_name((case_urgency)v); }
static const char *state_name_at(int v) { return case_state_name((case_state)v); }

static const enum_desc channel_enum = { case_channel_parse, channel_name_at, CHANNEL_COUNT };
static const enum_desc urgency_enum = { case_urgency_parse, urgency_name_at, URGENCY_COUNT };
static const enum_desc state_enum = { case_state_parse, state_name_at, CASE_STATE_COUNT };

/* One of the names of e; the refusal lists them all, from case_record's own table. */
static int
enum_get(const msgpack_object *v, const char *field, const enum_desc *e, int *out,
         gl_error *err)
{
    char   list[200];
    size_t o = 0;
    int    i;
    int    x = -1;

    if (v->type == MSGPACK_OBJECT_STR) {
        x = e->parse(gl_str_of(v->via.str.ptr, v->via.str.size));
    }
    if (x >= 0 && x < e->count) {
        *out = x;
        return 0;
    }
    list[0] = '\0';
    for (i = 0; i < e->count; i++) {
        const char *name = e->name(i);
        int         w;

        if (name == NULL) {
            continue;
        }
        w = snprintf(list + o, sizeof list - o, "%s%s", o > 0 ? ", " : "", name);
        if (w < 0 || (size_t)w >= sizeof list - o) {
            break;
        }
        o += (size_t)w;
    }
    return gl_error_set(err, GL_EINVALID, field, "must be one of %s", list);
}

/* ---- case.create ------------------------------------------------------------------ */

enum {
    CR_RID, CR_REQUEST_ID, CR_CHANNEL, CR_CATEGORY, CR_URGENCY, CR_TITLE, CR_DESCRIPTION,
    CR_LOCATION, CR_REPORTER, CR_ATTACHMENTS, CR_REPORTED_AT, CR_RESOLVED_ON_SPOT, CR_AGENT,
    CR_COUNT
};
static const char *const create_fields[CR_COUNT] = {
    "rid", "request_id", "channel", "category", "urgency", "title", "description",
    "location", "reporter", "attachments", "reported_at", "resolved_on_spot", "agent"
};

enum { LO_DISTRICT, LO_STREET, LO_COMMUNITY, LO_GRID, LO_ADDRESS, LO_LAT, LO_LON, LO_COUNT };
static const char *const location_fields[LO_COUNT] = {
    "district", "street", "community", "grid", "address", "lat", "lon"
};

enum { RE_NAME, RE_PHONE, RE_COUNT };
static const char *const reporter_fields[RE_COUNT] = { "name", "phone" };

static int
location_parse(const msgpack_object *o, case_location *loc, gl_error *err)
{
    const msgpack_object *f[LO_COUNT];
    gl_str               *places[] = { &loc->street, &loc->community, &loc->grid };
    int                   rc;
    int                   i;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EINVALID, "location",
                            "must be a map with at least a district");
    }
    rc = map_collect(o, "location", location_fields, LO_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[LO_DISTRICT] == NULL) {
        return missing("location.district", err);
    }
    rc = str_get(f[LO_DISTRICT], "location.district", 1, REQUEST_MAX_CODE, &loc->district, err);
    if (rc != 0) {
        return rc;
    }
    for (i = 0; i < 3; i++) {
        char field[FIELD_CAP];

        if (f[LO_STREET + i] == NULL) {
            continue;
        }
        path_join(field, "location", location_fields[LO_STREET + i]);
        rc = str_get(f[LO_STREET + i], field, 1, REQUEST_MAX_CODE, places[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[LO_ADDRESS] != NULL) {
        rc = str_get(f[LO_ADDRESS], "location.address", 0, REQUEST_MAX_ADDRESS, &loc->address,
                     err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[LO_LAT] != NULL && f[LO_LON] == NULL) {
        return gl_error_set(err, GL_EINVALID, "location.lon",
                            "is required when location.lat is given");
    }
    if (f[LO_LON] != NULL && f[LO_LAT] == NULL) {
        return gl_error_set(err, GL_EINVALID, "location.lat",
                            "is required when location.lon is given");
    }
    if (f[LO_LAT] != NULL) {
        rc = number_get(f[LO_LAT], "location.lat", -90.0, 90.0,
                        "must be a number from -90 to 90 (degrees)", &loc->lat, err);
        if (rc != 0) {
            return rc;
        }
        rc = number_get(f[LO_LON], "location.lon", -180.0, 180.0,
                        "must be a number from -180 to 180 (degrees)", &loc->lon, err);
        if (rc != 0) {
            return rc;
        }
        loc->has_coords = true;
    }
    return 0;
}

/* Digits, spaces, + - ( ), with at least three digits: permissive enough for the ways
 * people write numbers, strict enough to keep text and markup out of the field. */
static bool
phone_ok(gl_str s)
{
    uint32_t digits = 0;
    uint32_t i;

    for (i = 0; i < s.n; i++) {
        char c = s.p[i];

        if (c >= '0' && c <= '9') {
            digits++;
        } else if (c != ' ' && c != '+' && c != '-' && c != '(' && c != ')') {
            return false;
        }
    }
    return digits >= 3;
}

static int
reporter_parse(const msgpack_object *o, request_create *out, gl_error *err)
{
    const msgpack_object *f[RE_COUNT];
    int                   rc;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EINVALID, "reporter", "must be a map of name and phone");
    }
    rc = map_collect(o, "reporter", reporter_fields, RE_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[RE_NAME] != NULL) {
        rc = str_get(f[RE_NAME], "reporter.name", 0, REQUEST_MAX_NAME, &out->reporter_name,
                     err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[RE_PHONE] != NULL) {
        rc = str_get(f[RE_PHONE], "reporter.phone", 0, REQUEST_MAX_PHONE,
                     &out->reporter_phone, err);
        if (rc != 0) {
            return rc;
        }
        if (!phone_ok(out->reporter_phone)) {
            return gl_error_set(err, GL_EINVALID, "reporter.phone",
                                "must be digits, spaces, '+', '-', '(' and ')' "
                                "with at least 3 digits");
        }
    }
    return 0;
}

static bool
url_ok(gl_str s)
{
    return (s.n >= 7 && memcmp(s.p, "http://", 7) == 0)
           || (s.n >= 8 && memcmp(s.p, "https://", 8) == 0);
}

static int
attachments_parse(const msgpack_object *o, request_create *out, gl_error *err)
{
    uint32_t i;
    int      rc;

    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return gl_error_set(err, GL_EINVALID, "attachments",
                            "must be an array of at most %d URLs", CASE_MAX_ATTACHMENTS);
    }
    if (o->via.array.size > CASE_MAX_ATTACHMENTS) {
        return gl_error_set(err, GL_EINVALID, "attachments",
                            "has %" PRIu32 " entries; at most %d", o->via.array.size,
                            CASE_MAX_ATTACHMENTS);
    }
    for (i = 0; i < o->via.array.size; i++) {
        char field[FIELD_CAP];

        snprintf(field, sizeof field, "attachments[%" PRIu32 "]", i);
        rc = str_get(&o->via.array.ptr[i], field, 1, REQUEST_MAX_URL, &out->attachments[i], err);
        if (rc != 0) {
            return rc;
        }
        if (!url_ok(out->attachments[i])) {
            return gl_error_set(err, GL_EINVALID, field,
                                "must be a URL starting with http:// or https://");
        }
    }
    out->n_attachments = o->via.array.size;
    return 0;
}

static int
parse_create(const msgpack_object *body, int64_t now_ms, request_create *out,
                     gl_error *err)
{
    const msgpack_object *f[CR_COUNT];
    int64_t               latest;
    int                   v = 0;
    int                   rc;

    memset(out, 0, sizeof *out);
    out->urgency = URGENCY_NORMAL;

    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", create_fields, CR_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }

    if (f[CR_REQUEST_ID] == NULL) {
        return missing("request_id", err);
    }
    rc = str_get(f[CR_REQUEST_ID], "request_id", 1, REQUEST_MAX_ID, &out->request_id, err);
    if (rc != 0) {
        return rc;
    }

    /* The contract marks only request_id, description and location.district as
     * required: a case whose channel or category the sender does not know is still
     * registered, and the router falls back to the territorial unit. */
    out->channel = CHANNEL_NONE;
    if (f[CR_CHANNEL] != NULL) {
        rc = enum_get(f[CR_CHANNEL], "channel", &channel_enum, &v, err);
        if (rc != 0) {
            return rc;
        }
        out->channel = (case_channel)v;
    }

    if (f[CR_CATEGORY] != NULL) {
        rc = str_get(f[CR_CATEGORY], "category", 1, REQUEST_MAX_CODE, &out->category, err);
        if (rc != 0) {
            return rc;
        }
    }

    if (f[CR_URGENCY] != NULL) {
        rc = enum_get(f[CR_URGENCY], "urgency", &urgency_enum, &v, err);
        if (rc != 0) {
            return rc;
        }
        out->urgency = (case_urgency)v;
    }

    if (f[CR_TITLE] != NULL) {
        rc = str_get(f[CR_TITLE], "title", 0, REQUEST_MAX_TITLE, &out->title, err);
        if (rc != 0) {
            return rc;
        }
    }

    if (f[CR_DESCRIPTION] == NULL) {
        return missing("description", err);
    }
    rc = str_get(f[CR_DESCRIPTION], "description", 1, REQUEST_MAX_DESCRIPTION,
                 &out->description, err);
    if (rc != 0) {
        return rc;
    }

    if (f[CR_LOCATION] == NULL) {
        return missing("location", err);
    }
    rc = location_parse(f[CR_LOCATION], &out->location, err);
    if (rc != 0) {
        return rc;
    }

    if (f[CR_REPORTER] != NULL) {
        rc = reporter_parse(f[CR_REPORTER], out, err);
        if (rc != 0) {
            return rc;
        }
    }

    if (f[CR_ATTACHMENTS] != NULL) {
        rc = attachments_parse(f[CR_ATTACHMENTS], out, err);
        if (rc != 0) {
            return rc;
        }
    }

    if (f[CR_REPORTED_AT] != NULL) {
        latest = now_ms > INT64_MAX - REQUEST_MAX_FUTURE_MS ? INT64_MAX
                                                            : now_ms + REQUEST_MAX_FUTURE_MS;
        rc = int_get(f[CR_REPORTED_AT], "reported_at", 0, latest,
                     "must be an integer time in milliseconds since the epoch, "
                     "not more than 5 minutes ahead of the server's clock",
                     &out->reported_at, err);
        if (rc != 0) {
            return rc;
        }
    }

    if (f[CR_RESOLVED_ON_SPOT] != NULL) {
        rc = bool_get(f[CR_RESOLVED_ON_SPOT], "resolved_on_spot", &out->resolved_on_spot, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[CR_AGENT] != NULL) {
        rc = str_get(f[CR_AGENT], "agent", 1, REQUEST_MAX_CODE, &out->agent, err);
        if (rc != 0) {
            return rc;
        }
        if (out->resolved_on_spot) {
            return gl_error_set(err, GL_EINVALID, "agent", "is for a case handled on the "
                                "resident's behalf (代办), not one resolved on the spot");
        }
    }
    return 0;
}

/* ---- fingerprint ------------------------------------------------------------------ */

/*
 * Every value goes in with a fixed width or a length prefix, so no two different
 * requests can produce the same byte stream by moving bytes from one field into the
 * next. Integers are written little-endian byte by byte so the stream, and the stored
 * fingerprints, are the same on every host. Changing this order or encoding changes
 * every fingerprint: a stored request_id would then be taken as reused.
 */
static uint64_t
fp_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    int           i;

    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    return mp_fnv1a64(h, b, sizeof b);
}

static uint64_t
fp_str(uint64_t h, gl_str s)
{
    h = fp_u64(h, s.n);
    if (s.n > 0) {
        h = mp_fnv1a64(h, s.p, s.n);
    }
    return h;
}

static uint64_t
fp_double(uint64_t h, double d)
{
    uint64_t bits;

    memcpy(&bits, &d, sizeof bits);
    return fp_u64(h, bits);
}

uint64_t
request_create_fingerprint(const request_create *r)
{
    static const char tag[] = "gridline.case.create.1";
    uint64_t          h = MP_FNV1A64_INIT;
    uint32_t          i;

    h = mp_fnv1a64(h, tag, sizeof tag - 1);
    h = fp_str(h, r->request_id);
    h = fp_u64(h, (uint64_t)r->channel);
    h = fp_str(h, r->category);
    h = fp_u64(h, (uint64_t)r->urgency);
    h = fp_str(h, r->title);
    h = fp_str(h, r->description);
    h = fp_str(h, r->location.district);
    h = fp_str(h, r->location.street);
    h = fp_str(h, r->location.community);
    h = fp_str(h, r->location.grid);
    h = fp_str(h, r->location.address);
    h = fp_u64(h, r->location.has_coords ? 1 : 0);
    if (r->location.has_coords) {
        h = fp_double(h, r->location.lat);
        h = fp_double(h, r->location.lon);
    }
    h = fp_str(h, r->reporter_name);
    h = fp_str(h, r->reporter_phone);
    h = fp_u64(h, r->n_attachments);
    for (i = 0; i < r->n_attachments && i < CASE_MAX_ATTACHMENTS; i++) {
        h = fp_str(h, r->attachments[i]);
    }
    h = fp_u64(h, (uint64_t)r->reported_at);
    h = fp_u64(h, r->resolved_on_spot ? 1 : 0);
    /* Only when given, so that requests from before the field fingerprint as they did. */
    if (r->agent.n > 0) {
        h = fp_str(h, r->agent);
    }
    return h;
}

/* ---- case.get --------------------------------------------------------------------- */

enum { GE_RID, GE_ID, GE_CODE, GE_HISTORY, GE_COUNT };
static const char *const get_fields[GE_COUNT] = { "rid", "id", "code", "history" };

static int
parse_get(const msgpack_object *body, request_get *out, gl_error *err)
{
    const msgpack_object *f[GE_COUNT];
    int                   rc;

    memset(out, 0, sizeof *out);

    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", get_fields, GE_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[GE_ID] != NULL) {
        if (f[GE_ID]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[GE_ID]->via.u64 == 0) {
            return gl_error_set(err, GL_EINVALID, "id", "must be a positive integer");
        }
        out->id = f[GE_ID]->via.u64;
    }
    if (f[GE_CODE] != NULL) {
        rc = str_get(f[GE_CODE], "code", 1, REQUEST_MAX_CODE, &out->code, err);
        if (rc != 0) {
            return rc;
        }
    }
    if ((f[GE_ID] == NULL) == (f[GE_CODE] == NULL)) {
        return gl_error_set(err, GL_EINVALID, "id", "give exactly one of id and code");
    }
    if (f[GE_HISTORY] != NULL) {
        rc = bool_get(f[GE_HISTORY], "history", &out->history, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- case.list -------------------------------------------------------------------- */

enum { LI_RID, LI_FILTER, LI_AFTER, LI_LIMIT, LI_COUNT };
static const char *const list_fields[LI_COUNT] = { "rid", "filter", "after", "limit" };

enum {
    FI_STATE, FI_UNIT, FI_DISTRICT, FI_STREET, FI_COMMUNITY, FI_GRID, FI_CATEGORY,
    FI_CHANNEL, FI_OVERDUE, FI_SUPERVISED, FI_REPORTER_PHONE, FI_CREATED_FROM, FI_CREATED_TO,
    FI_COUNT
};
static const char *const filter_fields[FI_COUNT] = {
    "state", "unit", "district", "street", "community", "grid", "category", "channel",
    "overdue", "supervised", "reporter_phone", "created_from", "created_to"
};

static int
tristate_get(const msgpack_object *v, const char *field, int *out, gl_error *err)
{
    bool b = false;
    int  rc;

    rc = bool_get(v, field, &b, err);
    if (rc == 0) {
        *out = b ? 1 : 0;
    }
    return rc;
}

static int
filter_parse(const msgpack_object *o, request_filter *flt, gl_error *err)
{
    const msgpack_object *f[FI_COUNT];
    gl_str               *codes[] = { &flt->unit, &flt->district, &flt->street,
                                      &flt->community, &flt->grid, &flt->category };
    char                  field[FIELD_CAP];
    int                   rc;
    int                   i;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EINVALID, "filter", "must be a map");
    }
    rc = map_collect(o, "filter", filter_fields, FI_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[FI_STATE] != NULL) {
        rc = enum_get(f[FI_STATE], "filter.state", &state_enum, &flt->state, err);
        if (rc != 0) {
            return rc;
        }
    }
    for (i = 0; i < 6; i++) {
        if (f[FI_UNIT + i] == NULL) {
            continue;
        }
        path_join(field, "filter", filter_fields[FI_UNIT + i]);
        rc = str_get(f[FI_UNIT + i], field, 1, REQUEST_MAX_CODE, codes[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_CHANNEL] != NULL) {
        rc = enum_get(f[FI_CHANNEL], "filter.channel", &channel_enum, &flt->channel, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_OVERDUE] != NULL) {
        rc = tristate_get(f[FI_OVERDUE], "filter.overdue", &flt->overdue, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_SUPERVISED] != NULL) {
        rc = tristate_get(f[FI_SUPERVISED], "filter.supervised", &flt->supervised, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_REPORTER_PHONE] != NULL) {
        rc = str_get(f[FI_REPORTER_PHONE], "filter.reporter_phone", 1, REQUEST_MAX_PHONE,
                     &flt->reporter_phone, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_CREATED_FROM] != NULL) {
        rc = int_get(f[FI_CREATED_FROM], "filter.created_from", INT64_MIN, INT64_MAX,
                     "must be an integer time in milliseconds since the epoch",
                     &flt->created_from, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[FI_CREATED_TO] != NULL) {
        rc = int_get(f[FI_CREATED_TO], "filter.created_to", INT64_MIN, INT64_MAX,
                     "must be an integer time in milliseconds since the epoch",
                     &flt->created_to, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (flt->created_from > flt->created_to) {
        return gl_error_set(err, GL_EINVALID, "filter.created_from",
                            "must not be later than filter.created_to");
    }
    return 0;
}

static int
parse_list(const msgpack_object *body, request_list *out, gl_error *err)
{
    const msgpack_object *f[LI_COUNT];
    int64_t               limit = REQUEST_LIST_DEFAULT;
    int                   rc;

    memset(out, 0, sizeof *out);
    out->filter.state = -1;
    out->filter.channel = -1;
    out->filter.overdue = -1;
    out->filter.supervised = -1;
    out->filter.created_from = INT64_MIN;
    out->filter.created_to = INT64_MAX;
    out->after = 0;
    out->limit = REQUEST_LIST_DEFAULT;

    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", list_fields, LI_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[LI_FILTER] != NULL) {
        rc = filter_parse(f[LI_FILTER], &out->filter, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[LI_AFTER] != NULL) {
        if (f[LI_AFTER]->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return gl_error_set(err, GL_EINVALID, "after",
                                "must be a non-negative integer (the next of a previous list)");
        }
        out->after = f[LI_AFTER]->via.u64;
    }
    if (f[LI_LIMIT] != NULL) {
        rc = int_get(f[LI_LIMIT], "limit", 1, REQUEST_LIST_MAX,
                     "must be an integer from 1 to 500", &limit, err);
        if (rc != 0) {
            return rc;
        }
        out->limit = (uint32_t)limit;
    }
    return 0;
}

/* ---- rid -------------------------------------------------------------------------- */

static uint32_t
be_read(const unsigned char *p, size_t n)
{
    uint32_t v = 0;
    size_t   i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* True when the k bytes at p encode the str "rid", in any of the str formats. */
static bool
raw_is_rid(const unsigned char *p, size_t k)
{
    size_t head;

    if (p[0] >= 0xa0 && p[0] <= 0xbf) {
        head = 1;
    } else if (p[0] == 0xd9) {
        head = 2;
    } else if (p[0] == 0xda) {
        head = 3;
    } else if (p[0] == 0xdb) {
        head = 5;
    } else {
        return false;
    }
    return k == head + 3 && memcmp(p + head, "rid", 3) == 0;
}

/* nil, bool, int, float, str or bin: what a rid may be. */
static bool
raw_is_scalar(unsigned char b)
{
    return b <= 0x7f || b >= 0xe0                  /* fixints */
           || (b >= 0xa0 && b <= 0xbf)             /* fixstr */
           || b == 0xc0 || b == 0xc2 || b == 0xc3  /* nil, false, true */
           || (b >= 0xc4 && b <= 0xc6)             /* bin */
           || (b >= 0xca && b <= 0xd3)             /* float, uint, int */
           || (b >= 0xd9 && b <= 0xdb);            /* str */
}

void
request_find_rid(const char *body_buf, size_t body_len, const char **rid, size_t *rid_len)
{
    const unsigned char *p = (const unsigned char *)body_buf;
    size_t               pos;
    size_t               n;
    size_t               i;

    *rid = NULL;
    *rid_len = 0;
    if (body_buf == NULL || body_len == 0) {
        return;
    }
    if (p[0] >= 0x80 && p[0] <= 0x8f) {
        n = p[0] & 0x0f;
        pos = 1;
    } else if (p[0] == 0xde && body_len >= 3) {
        n = be_read(p + 1, 2);
        pos = 3;
    } else if (p[0] == 0xdf && body_len >= 5) {
        n = be_read(p + 1, 4);
        pos = 5;
    } else {
        return;
    }

    for (i = 0; i < n; i++) {
        size_t k = mp_guard_skip(p + pos, body_len - pos);
        size_t v;
        bool   is_rid;

        if (k == 0) {
            return;
        }
        is_rid = raw_is_rid(p + pos, k);
        pos += k;
        v = mp_guard_skip(p + pos, body_len - pos);
        if (v == 0) {
            return;
        }
        if (is_rid) {
            if (raw_is_scalar(p[pos]) && v <= REQUEST_MAX_RID) {
                *rid = body_buf + pos;
                *rid_len = v;
            }
            return;
        }
        pos += v;
    }
}


/* ---- case.act --------------------------------------------------------------------- */

static const char *const action_names[ACT_COUNT] = {
    "accept", "note", "resolve", "return", "extend", "approve_extension",
    "reject_extension", "urge", "supervise", "escalate", "reassign", "merge", "callback",
    "withdraw"
};

const char *
case_action_name(case_action a)
{
    return (unsigned)a < ACT_COUNT ? action_names[a] : "note";
}

static int
case_action_parse(gl_str s)
{
    for (int i = 0; i < ACT_COUNT; i++) {
        if (gl_str_eq(s, action_names[i])) {
            return i;
        }
    }
    return -1;
}

static const char *action_name_at(int v) { return case_action_name((case_action)v); }
static const char *satisfaction_name_at(int v)
{
    return case_satisfaction_name((case_satisfaction)v);
}

static const enum_desc action_enum = { case_action_parse, action_name_at, ACT_COUNT };
static const enum_desc satisfaction_enum = {
    case_satisfaction_parse, satisfaction_name_at, SATISFACTION_COUNT
};

enum {
    AC_RID, AC_ID, AC_ACTION, AC_VERSION, AC_NOTE, AC_REPLY, AC_REASON, AC_UNTIL, AC_UNIT,
    AC_INTO, AC_SATISFACTION, AC_COUNT
};
static const char *const act_fields[AC_COUNT] = {
    "rid", "id", "action", "version", "note", "reply", "reason", "until", "unit", "into",
    "satisfaction"
};

/* Which of the action-specific fields each action takes; all of them are required. */
static bool
act_uses(case_action a, int field)
{
    switch (field) {
    case AC_REPLY:        return a == ACT_RESOLVE;
    case AC_REASON:       return a == ACT_RETURN || a == ACT_EXTEND;
    case AC_UNTIL:        return a == ACT_EXTEND;
    case AC_UNIT:         return a == ACT_REASSIGN;
    case AC_INTO:         return a == ACT_MERGE;
    case AC_SATISFACTION: return a == ACT_CALLBACK;
    default:              return true;
    }
}

static int
parse_act(const msgpack_object *body, int64_t now_ms, request_act *out, gl_error *err)
{
    const msgpack_object *f[AC_COUNT];
    int64_t               x = 0;
    int                   v = 0;
    int                   rc;

    memset(out, 0, sizeof *out);
    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", act_fields, AC_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[AC_ID] == NULL) {
        return missing("id", err);
    }
    if (f[AC_ID]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[AC_ID]->via.u64 == 0) {
        return gl_error_set(err, GL_EINVALID, "id", "must be a positive integer");
    }
    out->id = f[AC_ID]->via.u64;
    if (f[AC_ACTION] == NULL) {
        return missing("action", err);
    }
    rc = enum_get(f[AC_ACTION], "action", &action_enum, &v, err);
    if (rc != 0) {
        return rc;
    }
    out->action = (case_action)v;
    if (f[AC_VERSION] != NULL) {
        rc = int_get(f[AC_VERSION], "version", 1, INT64_MAX, "must be a positive integer",
                     &x, err);
        if (rc != 0) {
            return rc;
        }
        out->version = (uint64_t)x;
    }
    for (int i = AC_REPLY; i < AC_COUNT; i++) {
        if (!act_uses(out->action, i) && f[i] != NULL) {
            return gl_error_set(err, GL_EINVALID, act_fields[i], "is not used by action %s",
                                case_action_name(out->action));
        }
        if (act_uses(out->action, i) && f[i] == NULL) {
            return gl_error_set(err, GL_EINVALID, act_fields[i], "is required by action %s",
                                case_action_name(out->action));
        }
    }
    if (f[AC_NOTE] != NULL) {
        rc = str_get(f[AC_NOTE], "note", 0, REQUEST_MAX_NOTE, &out->note, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (out->action == ACT_NOTE && out->note.n == 0) {
        return gl_error_set(err, GL_EINVALID, "note", "is required by action note");
    }
    if (f[AC_REPLY] != NULL
        && (rc = str_get(f[AC_REPLY], "reply", 1, REQUEST_MAX_REPLY, &out->reply, err)) != 0) {
        return rc;
    }
    if (f[AC_REASON] != NULL
        && (rc = str_get(f[AC_REASON], "reason", 1, REQUEST_MAX_NOTE, &out->reason, err)) != 0) {
        return rc;
    }
    if (f[AC_UNTIL] != NULL) {
        rc = int_get(f[AC_UNTIL], "until", now_ms + 1, now_ms + REQUEST_MAX_EXTENSION_MS,
                     "must be a time in the future, at most a year ahead, in ms since the "
                     "epoch", &out->until, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (f[AC_UNIT] != NULL
        && (rc = str_get(f[AC_UNIT], "unit", 1, REQUEST_MAX_CODE, &out->unit, err)) != 0) {
        return rc;
    }
    if (f[AC_INTO] != NULL) {
        if (f[AC_INTO]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[AC_INTO]->via.u64 == 0) {
            return gl_error_set(err, GL_EINVALID, "into", "must be a positive integer");
        }
        out->into = f[AC_INTO]->via.u64;
        if (out->into == out->id) {
            return gl_error_set(err, GL_EINVALID, "into", "must be another case");
        }
    }
    if (f[AC_SATISFACTION] != NULL) {
        rc = enum_get(f[AC_SATISFACTION], "satisfaction", &satisfaction_enum, &v, err);
        if (rc != 0) {
            return rc;
        }
        out->satisfaction = (case_satisfaction)v;
    }
    return 0;
}

/*
 * The checks above say what is wrong with a field ("is required"); a person reading
 * the reply alone should not have to join it to the field, so the message is made a
 * sentence that names it: "location.district is required".
 */
static int
name_the_field(int rc, gl_error *err)
{
    char msg[sizeof err->message + sizeof err->field + 1];
    size_t n;

    if (rc == 0 || err == NULL) {
        return rc;
    }
    n = strlen(err->field);
    if (n == 0 || strncmp(err->message, err->field, n) == 0) {
        return rc;
    }
    snprintf(msg, sizeof msg, "%s %s", err->field, err->message);
    n = strlen(msg);
    if (n >= sizeof err->message) {
        n = sizeof err->message - 1;
        while (n > 0 && ((unsigned char)msg[n] & 0xc0) == 0x80) {
            n--;    /* never split a character: the reply must stay UTF-8 */
        }
    }
    memcpy(err->message, msg, n);
    err->message[n] = '\0';
    return rc;
}

int
request_parse_create(const msgpack_object *body, int64_t now_ms, request_create *out,
                     gl_error *err)
{
    return name_the_field(parse_create(body, now_ms, out, err), err);
}

int
request_parse_get(const msgpack_object *body, request_get *out, gl_error *err)
{
    return name_the_field(parse_get(body, out, err), err);
}

int
request_parse_list(const msgpack_object *body, request_list *out, gl_error *err)
{
    return name_the_field(parse_list(body, out, err), err);
}

int
request_parse_act(const msgpack_object *body, int64_t now_ms, request_act *out,
                  gl_error *err)
{
    return name_the_field(parse_act(body, now_ms, out, err), err);
}

/* ---- stats.query ------------------------------------------------------------------ */

static const char *const stats_group_names[STATS_BY_COUNT] = {
    "unit", "district", "category", "street", "community"
};

const char *
stats_group_name(stats_group g)
{
    return (unsigned)g < STATS_BY_COUNT ? stats_group_names[g] : NULL;
}

static int
stats_group_parse(gl_str s)
{
    for (int i = 0; i < STATS_BY_COUNT; i++) {
        if (gl_str_eq(s, stats_group_names[i])) {
            return i;
        }
    }
    return -1;
}

static const char *stats_group_name_at(int v) { return stats_group_name((stats_group)v); }

static const enum_desc stats_group_enum = {
    stats_group_parse, stats_group_name_at, STATS_BY_COUNT
};

enum { ST_RID, ST_GROUP_BY, ST_FROM, ST_TO, ST_COUNT };
static const char *const stats_fields[ST_COUNT] = { "rid", "group_by", "from", "to" };

static int
parse_stats(const msgpack_object *body, request_stats *out, gl_error *err)
{
    const msgpack_object *f[ST_COUNT];
    int                   v = 0;
    int                   rc;

    memset(out, 0, sizeof *out);
    out->from = INT64_MIN;
    out->to = INT64_MAX;
    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", stats_fields, ST_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[ST_GROUP_BY] == NULL) {
        return gl_error_set(err, GL_EINVALID, "group_by",
                            "is required: one of unit, district, category, street, community");
    }
    rc = enum_get(f[ST_GROUP_BY], "group_by", &stats_group_enum, &v, err);
    if (rc != 0) {
        return rc;
    }
    out->group_by = (stats_group)v;
    if (f[ST_FROM] != NULL) {
        rc = int_get(f[ST_FROM], "from", 0, INT64_MAX,
                     "must be an integer time in milliseconds since the epoch", &out->from, err);
        if (rc != 0) {
            return rc;
        }
        out->has_from = true;
    }
    if (f[ST_TO] != NULL) {
        rc = int_get(f[ST_TO], "to", 0, INT64_MAX,
                     "must be an integer time in milliseconds since the epoch", &out->to, err);
        if (rc != 0) {
            return rc;
        }
        out->has_to = true;
    }
    if (out->has_from && out->has_to && out->to <= out->from) {
        return gl_error_set(err, GL_EINVALID, "to", "must be later than from (the range is "
                            "[from, to), created_at from inclusive, to exclusive)");
    }
    return 0;
}

int
request_parse_stats(const msgpack_object *body, request_stats *out, gl_error *err)
{
    return name_the_field(parse_stats(body, out, err), err);
}

/* ---- feed.pull -------------------------------------------------------------------- */

enum { FE_RID, FE_AFTER, FE_LIMIT, FE_WAIT, FE_FILTER, FE_COUNT };
static const char *const feed_fields[FE_COUNT] = { "rid", "after", "limit", "wait_ms", "filter" };
enum { FF_UNIT, FF_DISTRICT, FF_CATEGORY, FF_COUNT };
static const char *const feed_filter_fields[FF_COUNT] = { "unit", "district", "category" };

static int
parse_feed(const msgpack_object *body, request_feed *out, gl_error *err)
{
    const msgpack_object *f[FE_COUNT], *ff[FF_COUNT];
    int64_t               x = 0;
    int                   rc;

    memset(out, 0, sizeof *out);
    out->limit = REQUEST_FEED_DEFAULT;
    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    rc = map_collect(body, "", feed_fields, FE_COUNT, f, err);
    if (rc != 0) {
        return rc;
    }
    if (f[FE_AFTER] != NULL) {
        rc = int_get(f[FE_AFTER], "after", 0, INT64_MAX,
                     "must be a sequence number (an integer, 0 or more)", &x, err);
        if (rc != 0) {
            return rc;
        }
        out->after = (uint64_t)x;
    }
    if (f[FE_LIMIT] != NULL) {
        rc = int_get(f[FE_LIMIT], "limit", 1, REQUEST_FEED_MAX,
                     "must be an integer from 1 to 1000", &x, err);
        if (rc != 0) {
            return rc;
        }
        out->limit = (uint32_t)x;
    }
    if (f[FE_WAIT] != NULL) {
        rc = int_get(f[FE_WAIT], "wait_ms", 0, REQUEST_FEED_MAX_WAIT,
                     "must be an integer from 0 to 30000", &x, err);
        if (rc != 0) {
            return rc;
        }
        out->wait_ms = (uint32_t)x;
    }
    if (f[FE_FILTER] != NULL) {
        if (f[FE_FILTER]->type != MSGPACK_OBJECT_MAP) {
            return gl_error_set(err, GL_EINVALID, "filter", "must be a map of unit, district "
                                "and category");
        }
        rc = map_collect(f[FE_FILTER], "filter", feed_filter_fields, FF_COUNT, ff, err);
        if (rc != 0) {
            return rc;
        }
        gl_str *dst[FF_COUNT] = { &out->unit, &out->district, &out->category };
        static const char *const names[FF_COUNT] = {
            "filter.unit", "filter.district", "filter.category"
        };
        for (int i = 0; i < FF_COUNT; i++) {
            if (ff[i] != NULL
                && (rc = str_get(ff[i], names[i], 1, REQUEST_MAX_CODE, dst[i], err)) != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int
request_parse_feed(const msgpack_object *body, request_feed *out, gl_error *err)
{
    return name_the_field(parse_feed(body, out, err), err);
}
