/*
 * route_task: the routing task and its decisions on the wire. See route_task.h.
 *
 * The two directions are read differently on purpose. A task comes from the daemon
 * and is read strictly: one wrong field refuses the whole task, with the path of the
 * field in the error, because a worker that guessed would route a case on data it did
 * not understand. Decisions come from a worker, possibly a foreign one, and are read
 * tolerantly: a decision that is not well-formed is skipped, so its case is simply
 * given out again, and the well-formed ones around it still count.
 *
 * Unpacking allocates only the items array, from the caller's zone; every string
 * borrows from the body, so the body must outlive the items and the decisions.
 */
#include "route_task.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- packing --------------------------------------------------------------------- */

int
route_task_pack_begin(msgpack_packer *pk, int64_t now, uint32_t n_items)
{
    if (msgpack_pack_map(pk, 2) != 0
        || mp_pack_cstr(pk, "now") != 0 || msgpack_pack_int64(pk, now) != 0
        || mp_pack_cstr(pk, "items") != 0 || msgpack_pack_array(pk, n_items) != 0) {
        return -1;
    }
    return 0;
}

static int
pack_candidate(msgpack_packer *pk, const route_candidate *k)
{
    if (msgpack_pack_map(pk, 7) != 0
        || mp_pack_cstr(pk, "id") != 0 || msgpack_pack_uint64(pk, k->id) != 0
        || mp_pack_cstr(pk, "category") != 0 || mp_pack_str(pk, k->category) != 0
        || mp_pack_cstr(pk, "grid") != 0 || mp_pack_str_or_nil(pk, k->grid) != 0
        || mp_pack_cstr(pk, "lat") != 0
        || (k->has_coords ? msgpack_pack_double(pk, k->lat) : msgpack_pack_nil(pk)) != 0
        || mp_pack_cstr(pk, "lon") != 0
        || (k->has_coords ? msgpack_pack_double(pk, k->lon) : msgpack_pack_nil(pk)) != 0
        || mp_pack_cstr(pk, "created_at") != 0
        || msgpack_pack_int64(pk, k->created_at) != 0
        || mp_pack_cstr(pk, "duplicate_of") != 0
        || (k->duplicate_of != 0 ? msgpack_pack_uint64(pk, k->duplicate_of)
                                 : msgpack_pack_nil(pk)) != 0) {
        return -1;
    }
    return 0;
}

int
route_task_pack_item(msgpack_packer *pk, gl_str raw_case, const route_candidate *cands,
                     uint32_t n_cands)
{
    uint32_t i;

    /* An empty raw case would leave the map one value short and shift every object
     * after it: refuse rather than write a stream the worker cannot read. */
    if (raw_case.p == NULL || raw_case.n == 0) {
        return -1;
    }
    /* The worker refuses a task with more: keep the first, which are the oldest. */
    if (n_cands > ROUTE_MAX_CANDIDATES) {
        n_cands = ROUTE_MAX_CANDIDATES;
    }
    if (msgpack_pack_map(pk, 2) != 0 || mp_pack_cstr(pk, "case") != 0
        || pk->callback(pk->data, raw_case.p, raw_case.n) != 0
        || mp_pack_cstr(pk, "candidates") != 0 || msgpack_pack_array(pk, n_cands) != 0) {
        return -1;
    }
    for (i = 0; i < n_cands; i++) {
        if (pack_candidate(pk, &cands[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

int
route_decisions_pack(msgpack_packer *pk, const route_decision *d, uint32_t n)
{
    uint32_t i;

    if (msgpack_pack_map(pk, 1) != 0 || mp_pack_cstr(pk, "decisions") != 0
        || msgpack_pack_array(pk, n) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (msgpack_pack_map(pk, 5) != 0
            || mp_pack_cstr(pk, "id") != 0 || msgpack_pack_uint64(pk, d[i].id) != 0
            || mp_pack_cstr(pk, "version") != 0
            || msgpack_pack_uint64(pk, d[i].version) != 0
            || mp_pack_cstr(pk, "unit") != 0 || mp_pack_str(pk, d[i].unit) != 0
            || mp_pack_cstr(pk, "duplicate_of") != 0
            || (d[i].duplicate_of != 0 ? msgpack_pack_uint64(pk, d[i].duplicate_of)
                                       : msgpack_pack_nil(pk)) != 0
            || mp_pack_cstr(pk, "reason") != 0 || mp_pack_str(pk, d[i].reason) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- reading values -------------------------------------------------------------- */

static bool
is_nil(const msgpack_object *o)
{
    return o == NULL || o->type == MSGPACK_OBJECT_NIL;
}

/* A positive integer (ids, versions): zero is nil's spelling on the wire, never an id. */
static bool
read_id(const msgpack_object *o, uint64_t *v)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 == 0) {
        return false;
    }
    *v = o->via.u64;
    return true;
}

static bool
read_int(const msgpack_object *o, int64_t *v)
{
    if (o == NULL) {
        return false;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

static bool
read_number(const msgpack_object *o, double *v)
{
    int64_t i;

    if (o != NULL && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)) {
        *v = o->via.f64;
        return isfinite(*v);
    }
    if (read_int(o, &i)) {
        *v = (double)i;
        return true;
    }
    return false;
}

static bool
read_str(const msgpack_object *o, gl_str *v)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
        return false;
    }
    *v = gl_str_of(o->via.str.ptr, o->via.str.size);
    return true;
}

/* ---- the task -------------------------------------------------------------------- */

static int
bad(gl_error *err, const char *field, const char *message)
{
    return gl_error_set(err, GL_EBAD_REQUEST, field, "%s", message);
}

/* Refuses candidate j of item i, naming its key. The path is written only here, on
 * failure: formatting it for every field read cost more than the reading. */
static int
bad_candidate(gl_error *err, uint32_t i, uint32_t j, const char *key, const char *message)
{
    char f[64];

    snprintf(f, sizeof f, "items[%u].candidates[%u]%s%s", i, j, key[0] != '\0' ? "." : "",
             key);
    return bad(err, f, message);
}

static int
unpack_candidate(const msgpack_object *o, uint32_t i, uint32_t j, route_candidate *k,
                 gl_error *err)
{
    const msgpack_object *lat, *lon, *v;

    memset(k, 0, sizeof *k);
    if (o->type != MSGPACK_OBJECT_MAP) {
        return bad_candidate(err, i, j, "", "a candidate must be a map");
    }
    if (!read_id(mp_map_get(o, "id"), &k->id)) {
        return bad_candidate(err, i, j, "id", "must be a case id (a positive integer)");
    }
    v = mp_map_get(o, "category");
    if (!is_nil(v) && !read_str(v, &k->category)) {
        return bad_candidate(err, i, j, "category", "must be a string or nil");
    }
    v = mp_map_get(o, "grid");
    if (!is_nil(v) && !read_str(v, &k->grid)) {
        return bad_candidate(err, i, j, "grid", "must be a string or nil");
    }
    lat = mp_map_get(o, "lat");
    lon = mp_map_get(o, "lon");
    if (is_nil(lat) != is_nil(lon)) {
        return bad_candidate(err, i, j, "lat", "lat and lon are given both or neither");
    }
    if (!is_nil(lat)) {
        if (!read_number(lat, &k->lat) || k->lat < -90.0 || k->lat > 90.0) {
            return bad_candidate(err, i, j, "lat", "must be a latitude in degrees, -90 to 90");
        }
        if (!read_number(lon, &k->lon) || k->lon < -180.0 || k->lon > 180.0) {
            return bad_candidate(err, i, j, "lon",
                                 "must be a longitude in degrees, -180 to 180");
        }
        k->has_coords = true;
    }
    if (!read_int(mp_map_get(o, "created_at"), &k->created_at)) {
        return bad_candidate(err, i, j, "created_at", "must be an integer time in ms");
    }
    v = mp_map_get(o, "duplicate_of");
    if (!is_nil(v) && !read_id(v, &k->duplicate_of)) {
        return bad_candidate(err, i, j, "duplicate_of", "must be a case id or nil");
    }
    return 0;
}

/* The path of item i's key, for an error. */
static const char *
item_field(char *f, size_t cap, uint32_t i, const char *key)
{
    snprintf(f, cap, "items[%u]%s%s", i, key[0] != '\0' ? "." : "", key);
    return f;
}

static int
unpack_item(const msgpack_object *o, uint32_t i, route_item *it, gl_error *err)
{
    const msgpack_object *cs, *cands;
    char                  f[64];
    uint32_t              j;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return bad(err, item_field(f, sizeof f, i, ""),
                   "an item must be a map {case, candidates}");
    }
    cs = mp_map_get(o, "case");
    if (cs == NULL || cs->type != MSGPACK_OBJECT_MAP) {
        return bad(err, item_field(f, sizeof f, i, "case"), "is missing or not a map");
    }
    /* case_record_unpack clears the record itself before filling it. */
    if (case_record_unpack(cs, &it->c) != 0) {
        return bad(err, item_field(f, sizeof f, i, "case"), "is not a case: it needs an "
                   "id and a known state, channel and urgency");
    }
    if (it->c.version == 0) {
        return bad(err, item_field(f, sizeof f, i, "case"),
                   "has no version: a decision must name the version it decides");
    }
    cands = mp_map_get(o, "candidates");
    if (cands == NULL || cands->type != MSGPACK_OBJECT_ARRAY) {
        return bad(err, item_field(f, sizeof f, i, "candidates"),
                   "is missing or not an array");
    }
    if (cands->via.array.size > ROUTE_MAX_CANDIDATES) {
        return gl_error_set(err, GL_EBAD_REQUEST, item_field(f, sizeof f, i, "candidates"),
                            "holds %u candidates; at most %d", cands->via.array.size,
                            ROUTE_MAX_CANDIDATES);
    }
    it->n_candidates = 0;
    for (j = 0; j < cands->via.array.size; j++) {
        if (unpack_candidate(&cands->via.array.ptr[j], i, j, &it->candidates[j], err) != 0) {
            return GL_EBAD_REQUEST;
        }
        it->n_candidates++;
    }
    return 0;
}

int
route_task_unpack(const msgpack_object *body, msgpack_zone *zone, int64_t *now,
                  route_item **items, uint32_t *n_items, gl_error *err)
{
    const msgpack_object *arr;
    route_item           *out;
    uint32_t              i, n;

    *items   = NULL;
    *n_items = 0;
    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return bad(err, NULL, "the task is not a map {now, items}");
    }
    if (!read_int(mp_map_get(body, "now"), now)) {
        return bad(err, "now", "must be an integer time in ms");
    }
    arr = mp_map_get(body, "items");
    if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
        return bad(err, "items", "is missing or not an array");
    }
    n = arr->via.array.size;
    if (n > ROUTE_MAX_ITEMS) {
        return gl_error_set(err, GL_EBAD_REQUEST, "items", "holds %u cases; at most %d", n,
                            ROUTE_MAX_ITEMS);
    }
    if (n == 0) {
        return 0;
    }
    out = msgpack_zone_malloc(zone, (size_t)n * sizeof *out);
    if (out == NULL) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "out of memory reading a task of %u "
                            "cases", n);
    }
    for (i = 0; i < n; i++) {
        if (unpack_item(&arr->via.array.ptr[i], i, &out[i], err) != 0) {
            return err != NULL && err->code != GL_OK ? err->code : GL_EBAD_REQUEST;
        }
    }
    *items   = out;
    *n_items = n;
    return 0;
}

/* ---- the decisions --------------------------------------------------------------- */

/* True when o is a decision the daemon can act on; fills d. */
static bool
decision_read(const msgpack_object *o, route_decision *d)
{
    const msgpack_object *v;

    memset(d, 0, sizeof *d);
    if (o->type != MSGPACK_OBJECT_MAP || !read_id(mp_map_get(o, "id"), &d->id)
        || !read_id(mp_map_get(o, "version"), &d->version)
        || !read_str(mp_map_get(o, "unit"), &d->unit) || d->unit.n == 0) {
        return false;
    }
    v = mp_map_get(o, "duplicate_of");
    if (!is_nil(v) && (!read_id(v, &d->duplicate_of) || d->duplicate_of == d->id)) {
        return false;
    }
    /* The reason is only a note for people: a missing or odd one does not cost the
     * decision. */
    v = mp_map_get(o, "reason");
    if (!read_str(v, &d->reason)) {
        d->reason = GL_STR_NULL;
    }
    return true;
}

int
route_decisions_unpack(const msgpack_object *body, route_decision *out, uint32_t cap,
                       uint32_t *n, gl_error *err)
{
    const msgpack_object *arr, *why;
    uint32_t              i;

    *n = 0;
    if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
        return bad(err, NULL, "the reply is not a map {decisions}");
    }
    arr = mp_map_get(body, "decisions");
    if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
        why = mp_map_get(body, "error");
        if (why != NULL && why->type == MSGPACK_OBJECT_STR) {
            /* The worker could not read the task: its reason is what to log. */
            return gl_error_set(err, GL_EBAD_REQUEST, NULL, "the worker refused the task: "
                                "%.*s", (int)(why->via.str.size > 200 ? 200
                                              : why->via.str.size), why->via.str.ptr);
        }
        return bad(err, "decisions", "is missing or not an array");
    }
    for (i = 0; i < arr->via.array.size && *n < cap; i++) {
        if (decision_read(&arr->via.array.ptr[i], &out[*n])) {
            (*n)++;
        }
    }
    return 0;
}
