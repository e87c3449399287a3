/* case_event: the event's type names and its MessagePack map. */
#include "case_event.h"

#include <string.h>

static const char *const type_names[EVENT_TYPE_COUNT] = {
    "created", "dispatched", "accepted", "noted", "resolved", "returned",
    "extension_requested", "extension_approved", "extension_rejected", "urged",
    "supervised", "warned", "escalated", "reassigned", "callback", "reopened", "closed",
    "withdrawn", "merged"
};

const char *case_event_type_name(case_event_type t)
{
    return (unsigned)t < EVENT_TYPE_COUNT ? type_names[t] : "noted";
}

int case_event_type_parse(gl_str s)
{
    for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
        if (gl_str_eq(s, type_names[i])) {
            return i;
        }
    }
    return -1;
}

int case_event_pack(msgpack_packer *pk, const case_event *e)
{
    int rc = msgpack_pack_map(pk, 11);
    rc |= mp_pack_cstr(pk, "seq") | msgpack_pack_uint64(pk, e->seq);
    rc |= mp_pack_cstr(pk, "at") | msgpack_pack_int64(pk, e->at);
    rc |= mp_pack_cstr(pk, "case_id") | msgpack_pack_uint64(pk, e->case_id);
    rc |= mp_pack_cstr(pk, "code") | mp_pack_str(pk, e->code);
    rc |= mp_pack_cstr(pk, "type") | mp_pack_cstr(pk, case_event_type_name(e->type));
    rc |= mp_pack_cstr(pk, "state") | mp_pack_cstr(pk, case_state_name(e->state));
    rc |= mp_pack_cstr(pk, "unit") | mp_pack_str_or_nil(pk, e->unit);
    rc |= mp_pack_cstr(pk, "district") | mp_pack_str_or_nil(pk, e->district);
    rc |= mp_pack_cstr(pk, "category") | mp_pack_str_or_nil(pk, e->category);
    rc |= mp_pack_cstr(pk, "actor") | mp_pack_str_or_nil(pk, e->actor);
    rc |= mp_pack_cstr(pk, "note") | mp_pack_str_or_nil(pk, e->note);
    return rc != 0 ? -1 : 0;
}

static gl_str str_of(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR ? gl_str_of(o->via.str.ptr, o->via.str.size)
                                         : GL_STR_NULL;
}

int case_event_unpack(const msgpack_object *o, case_event *e)
{
    memset(e, 0, sizeof *e);
    if (o->type != MSGPACK_OBJECT_MAP) {
        return -1;
    }
    int type = -1, state = -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        gl_str key = str_of(k);
        if (gl_str_eq(key, "seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) e->seq = v->via.u64;
        else if (gl_str_eq(key, "at") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) e->at = (int64_t)v->via.u64;
        else if (gl_str_eq(key, "case_id") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) e->case_id = v->via.u64;
        else if (gl_str_eq(key, "code")) e->code = str_of(v);
        else if (gl_str_eq(key, "type")) type = case_event_type_parse(str_of(v));
        else if (gl_str_eq(key, "state")) state = case_state_parse(str_of(v));
        else if (gl_str_eq(key, "unit")) e->unit = str_of(v);
        else if (gl_str_eq(key, "district")) e->district = str_of(v);
        else if (gl_str_eq(key, "category")) e->category = str_of(v);
        else if (gl_str_eq(key, "actor")) e->actor = str_of(v);
        else if (gl_str_eq(key, "note")) e->note = str_of(v);
    }
    if (type < 0 || state < 0 || e->seq == 0) {
        return -1;
    }
    e->type = (case_event_type)type;
    e->state = (case_state)state;
    return 0;
}
