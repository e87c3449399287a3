/* escalate_task: the escalation task and decisions codec (see escalate_task.h). */
#include "escalate_task.h"

#include <string.h>

static const char *const kind_names[DEADLINE_COUNT] = { "warn", "accept", "resolve" };
static const char *const outcome_names[OUTCOME_COUNT] = {
    "warn", "urge", "escalate", "supervise"
};

const char *deadline_kind_name(deadline_kind k)
{
    return (unsigned)k < DEADLINE_COUNT ? kind_names[k] : "warn";
}

int deadline_kind_parse(gl_str s)
{
    for (int i = 0; i < DEADLINE_COUNT; i++) {
        if (gl_str_eq(s, kind_names[i])) {
            return i;
        }
    }
    return -1;
}

const char *escalate_outcome_name(escalate_outcome o)
{
    return (unsigned)o < OUTCOME_COUNT ? outcome_names[o] : "warn";
}

int escalate_outcome_parse(gl_str s)
{
    for (int i = 0; i < OUTCOME_COUNT; i++) {
        if (gl_str_eq(s, outcome_names[i])) {
            return i;
        }
    }
    return -1;
}

int escalate_task_pack_begin(msgpack_packer *pk, int64_t now, uint32_t n_items)
{
    int rc = msgpack_pack_map(pk, 2);
    rc |= mp_pack_cstr(pk, "now") | msgpack_pack_int64(pk, now);
    rc |= mp_pack_cstr(pk, "items") | msgpack_pack_array(pk, n_items);
    return rc != 0 ? -1 : 0;
}

int escalate_task_pack_item(msgpack_packer *pk, gl_str raw_case, deadline_kind kind)
{
    int rc = msgpack_pack_map(pk, 2);
    rc |= mp_pack_cstr(pk, "case");
    rc |= pk->callback(pk->data, raw_case.p, raw_case.n);
    rc |= mp_pack_cstr(pk, "deadline") | mp_pack_cstr(pk, deadline_kind_name(kind));
    return rc != 0 ? -1 : 0;
}

static gl_str str_of(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_STR
               ? gl_str_of(o->via.str.ptr, o->via.str.size) : GL_STR_NULL;
}

int escalate_task_unpack(const msgpack_object *body, msgpack_zone *zone, int64_t *now,
                         escalate_item **items, uint32_t *n_items, gl_error *err)
{
    const msgpack_object *n = mp_map_get(body, "now"), *arr = mp_map_get(body, "items");
    if (n == NULL || n->type != MSGPACK_OBJECT_POSITIVE_INTEGER || arr == NULL
        || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size > ESCALATE_MAX_ITEMS) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "a task is {now, items: [...]} with "
                            "at most %d items", ESCALATE_MAX_ITEMS);
    }
    uint32_t count = arr->via.array.size;
    escalate_item *out = msgpack_zone_malloc(zone, (count > 0 ? count : 1) * sizeof *out);
    if (out == NULL) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "out of memory");
    }
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *it = &arr->via.array.ptr[i];
        int kind = deadline_kind_parse(str_of(mp_map_get(it, "deadline")));
        const msgpack_object *c = mp_map_get(it, "case");
        if (kind < 0 || c == NULL || case_record_unpack(c, &out[i].c) != 0) {
            return gl_error_set(err, GL_EBAD_REQUEST, NULL, "item %u is not {case, deadline}",
                                i);
        }
        out[i].kind = (deadline_kind)kind;
    }
    *now = (int64_t)n->via.u64;
    *items = out;
    *n_items = count;
    return 0;
}

int escalate_decisions_pack(msgpack_packer *pk, const escalate_decision *d, uint32_t n)
{
    int rc = msgpack_pack_map(pk, 1);
    rc |= mp_pack_cstr(pk, "decisions") | msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        rc |= msgpack_pack_map(pk, 6);
        rc |= mp_pack_cstr(pk, "id") | msgpack_pack_uint64(pk, d[i].id);
        rc |= mp_pack_cstr(pk, "version") | msgpack_pack_uint64(pk, d[i].version);
        rc |= mp_pack_cstr(pk, "deadline") | mp_pack_cstr(pk, deadline_kind_name(d[i].kind));
        rc |= mp_pack_cstr(pk, "outcome") | mp_pack_cstr(pk, escalate_outcome_name(d[i].outcome));
        rc |= mp_pack_cstr(pk, "unit") | mp_pack_str_or_nil(pk, d[i].unit);
        rc |= mp_pack_cstr(pk, "reason") | mp_pack_str_or_nil(pk, d[i].reason);
    }
    return rc != 0 ? -1 : 0;
}

int escalate_decisions_unpack(const msgpack_object *body, escalate_decision *out, uint32_t cap,
                              uint32_t *n, gl_error *err)
{
    const msgpack_object *arr = mp_map_get(body, "decisions");
    *n = 0;
    if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
        gl_str e = str_of(mp_map_get(body, "error"));
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "no decisions%s%.*s",
                            e.n > 0 ? ": " : "", (int)(e.n > 200 ? 200 : e.n), e.p);
    }
    for (uint32_t i = 0; i < arr->via.array.size && *n < cap; i++) {
        const msgpack_object *d = &arr->via.array.ptr[i];
        const msgpack_object *id = mp_map_get(d, "id"), *ver = mp_map_get(d, "version");
        int kind = deadline_kind_parse(str_of(mp_map_get(d, "deadline")));
        int outcome = escalate_outcome_parse(str_of(mp_map_get(d, "outcome")));
        if (id == NULL || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || ver == NULL
            || ver->type != MSGPACK_OBJECT_POSITIVE_INTEGER || kind < 0 || outcome < 0) {
            continue;
        }
        escalate_decision *x = &out[(*n)++];
        memset(x, 0, sizeof *x);
        x->id = id->via.u64;
        x->version = ver->via.u64;
        x->kind = (deadline_kind)kind;
        x->outcome = (escalate_outcome)outcome;
        x->unit = str_of(mp_map_get(d, "unit"));
        x->reason = str_of(mp_map_get(d, "reason"));
    }
    return 0;
}
