/*
 * mp_util: small helpers over msgpack-c shared by every process: borrowed strings,
 * map look-up, and packing of C strings.
 */
#ifndef MP_UTIL_H
#define MP_UTIL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed run of bytes (not NUL-terminated). Its owner is whoever owns the buffer it
 * points into: a received message, an LMDB page inside a transaction, a config. */
typedef struct {
    const char *p;
    uint32_t    n;
} gl_str;

#define GL_STR_NULL ((gl_str){ NULL, 0 })

static inline gl_str gl_str_of(const char *p, size_t n) { return (gl_str){ p, (uint32_t)n }; }
gl_str gl_str_c(const char *s);                      /* from a C string; NULL -> empty */
bool   gl_str_eq2(gl_str a, gl_str b);

/* Equal to a C string. Inline so that, for a literal, strlen folds to a constant: the
 * codecs compare every key of every map this way. */
static inline bool gl_str_eq(gl_str a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

/* The value under key in a MessagePack map, or NULL if o is not a map or has no such
 * string key. */
const msgpack_object *mp_map_get(const msgpack_object *o, const char *key);

/* Pack helpers; each returns 0 or -1 when the packer's writer failed. */
int mp_pack_str(msgpack_packer *pk, gl_str s);
/* A C string; inline for the same reason as gl_str_eq (keys are literals). */
static inline int mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0) {
        return -1;
    }
    return msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}
/* A string, or nil when s is empty. */
int mp_pack_str_or_nil(msgpack_packer *pk, gl_str s);

/* Unpacks exactly one object from p[0..n) into o, allocating from zone (clear it to
 * reuse). Strings in o point into p. Returns 0, or -1 if p is not exactly one object.
 * Untrusted bytes must pass mp_guard_check first. */
int mp_unpack(const char *p, size_t n, msgpack_zone *zone, msgpack_object *o);

/* A 64-bit FNV-1a hash, for fingerprints of requests (not for security). */
uint64_t mp_fnv1a64(uint64_t h, const void *p, size_t n);
#define MP_FNV1A64_INIT 0xcbf29ce484222325ULL

/* Writes v big-endian into 8 bytes / reads it back. Keys in LMDB and the tap's
 * sequence frame use this order so that byte order is numeric order. */
void     mp_put_be64(unsigned char *out, uint64_t v);
uint64_t mp_get_be64(const unsigned char *in);

#endif
