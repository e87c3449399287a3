/* case_event: the event's type names and its MessagePack map. */
#include "case_event.h"

#include "mp_fast.h"

#include <stdlib.h>
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

/* Written into one buffer and handed to the packer's writer at once (mp_fast): the
 * writer thread packs an event for every change. */
int case_event_pack(msgpack_packer *pk, const case_event *e)
{
    unsigned char stack[4096];
    size_t cap = 512 + e->code.n + e->unit.n + e->district.n + e->category.n + e->actor.n
                 + e->note.n;
    unsigned char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (buf == NULL) {
        return -1;
    }
    mp_out o = { buf, 0, cap, false };
    mp_out_map(&o, 11);
    mp_out_cstr(&o, "seq");
    mp_out_uint(&o, e->seq);
    mp_out_cstr(&o, "at");
    mp_out_int(&o, e->at);
    mp_out_cstr(&o, "case_id");
    mp_out_uint(&o, e->case_id);
    mp_out_cstr(&o, "code");
    mp_out_gl_str(&o, e->code);
    mp_out_cstr(&o, "type");
    mp_out_cstr(&o, case_event_type_name(e->type));
    mp_out_cstr(&o, "state");
    mp_out_cstr(&o, case_state_name(e->state));
    mp_out_cstr(&o, "unit");
    mp_out_str_or_nil(&o, e->unit);
    mp_out_cstr(&o, "district");
    mp_out_str_or_nil(&o, e->district);
    mp_out_cstr(&o, "category");
    mp_out_str_or_nil(&o, e->category);
    mp_out_cstr(&o, "actor");
    mp_out_str_or_nil(&o, e->actor);
    mp_out_cstr(&o, "note");
    mp_out_str_or_nil(&o, e->note);
    int rc = o.full || pk->callback(pk->data, (const char *)buf, o.n) != 0 ? -1 : 0;
    if (buf != stack) {
        free(buf);
    }
    return rc;
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

int case_event_decode(gl_str raw, msgpack_zone *zone, case_event *e)
{
    msgpack_object o;
    msgpack_zone_clear(zone);
    return mp_unpack(raw.p, raw.n, zone, &o) != 0 || case_event_unpack(&o, e) != 0 ? -1 : 0;
}
