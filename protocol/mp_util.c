/* mp_util: borrowed strings and small msgpack-c helpers. */
#include "mp_util.h"

#include <string.h>

gl_str gl_str_c(const char *s)
{
    if (s == NULL) {
        return GL_STR_NULL;
    }
    return gl_str_of(s, strlen(s));
}

bool gl_str_eq2(gl_str a, gl_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

const msgpack_object *mp_map_get(const msgpack_object *o, const char *key)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    size_t n = strlen(key);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n
            && memcmp(k->via.str.ptr, key, n) == 0) {
            return &o->via.map.ptr[i].val;
        }
    }
    return NULL;
}

int mp_pack_str(msgpack_packer *pk, gl_str s)
{
    if (msgpack_pack_str(pk, s.n) != 0) {
        return -1;
    }
    return msgpack_pack_str_body(pk, s.p, s.n) != 0 ? -1 : 0;
}

int mp_pack_str_or_nil(msgpack_packer *pk, gl_str s)
{
    if (s.n == 0) {
        return msgpack_pack_nil(pk) != 0 ? -1 : 0;
    }
    return mp_pack_str(pk, s);
}

uint64_t mp_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void mp_put_be64(unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t mp_get_be64(const unsigned char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

int mp_unpack(const char *p, size_t n, msgpack_zone *zone, msgpack_object *o)
{
    size_t off = 0;
    if (msgpack_unpack(p, n, &off, zone, o) != MSGPACK_UNPACK_SUCCESS || off != n) {
        return -1;
    }
    return 0;
}
