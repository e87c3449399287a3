/*
 * mp_fast: MessagePack written into and read from plain byte buffers, without
 * msgpack-c's per-object callbacks (writing) or object trees (reading).
 *
 * For the hot paths only: a case is packed and unpacked several times on its way from
 * a request to the disk and back, and with msgpack-c every key and value is a call
 * through a function pointer, every read an allocation in a zone. Elsewhere use
 * msgpack-c.
 *
 * Writing: mp_out over a buffer the caller sized. A write that would not fit sets
 * `full` and writes nothing more: check it once at the end. Integers take their
 * shortest form, as msgpack-c's pack_int64/pack_uint64 do.
 *
 * Reading: mp_in over untrusted bytes. Every read checks the bounds and the type; the
 * first failure sets `bad`, after which reads return zeros. Strings point into the
 * buffer. mp_in_skip skips any object.
 */
#ifndef MP_FAST_H
#define MP_FAST_H

#include "mp_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    unsigned char *p;
    size_t         n, cap;
    bool           full;
} mp_out;

static inline unsigned char *mp_out_room(mp_out *o, size_t need)
{
    if (o->full || o->cap - o->n < need) {
        o->full = true;
        return NULL;
    }
    unsigned char *at = o->p + o->n;
    o->n += need;
    return at;
}

static inline void mp_out_be(unsigned char *at, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        at[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline void mp_out_tagged(mp_out *o, unsigned char tag, uint64_t v, int bytes)
{
    unsigned char *at = mp_out_room(o, 1 + (size_t)bytes);
    if (at != NULL) {
        at[0] = tag;
        mp_out_be(at + 1, v, bytes);
    }
}

static inline void mp_out_byte(mp_out *o, unsigned char b)
{
    unsigned char *at = mp_out_room(o, 1);
    if (at != NULL) {
        *at = b;
    }
}

static inline void mp_out_nil(mp_out *o) { mp_out_byte(o, 0xc0); }
static inline void mp_out_bool(mp_out *o, bool b) { mp_out_byte(o, b ? 0xc3 : 0xc2); }

static inline void mp_out_uint(mp_out *o, uint64_t v)
{
    if (v < 128) mp_out_byte(o, (unsigned char)v);
    else if (v <= 0xff) mp_out_tagged(o, 0xcc, v, 1);
    else if (v <= 0xffff) mp_out_tagged(o, 0xcd, v, 2);
    else if (v <= 0xffffffffu) mp_out_tagged(o, 0xce, v, 4);
    else mp_out_tagged(o, 0xcf, v, 8);
}

static inline void mp_out_int(mp_out *o, int64_t v)
{
    if (v >= 0) mp_out_uint(o, (uint64_t)v);
    else if (v >= -32) mp_out_byte(o, (unsigned char)(int8_t)v);
    else if (v >= INT8_MIN) mp_out_tagged(o, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN) mp_out_tagged(o, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN) mp_out_tagged(o, 0xd2, (uint64_t)v, 4);
    else mp_out_tagged(o, 0xd3, (uint64_t)v, 8);
}

static inline void mp_out_double(mp_out *o, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    mp_out_tagged(o, 0xcb, bits, 8);
}

static inline void mp_out_str(mp_out *o, const char *s, size_t n)
{
    if (n < 32) mp_out_byte(o, (unsigned char)(0xa0 | n));
    else if (n <= 0xff) mp_out_tagged(o, 0xd9, n, 1);
    else if (n <= 0xffff) mp_out_tagged(o, 0xda, n, 2);
    else mp_out_tagged(o, 0xdb, n, 4);
    unsigned char *at = mp_out_room(o, n);
    if (at != NULL && n > 0) {
        memcpy(at, s, n);
    }
}

static inline void mp_out_gl_str(mp_out *o, gl_str s) { mp_out_str(o, s.p, s.n); }

/* A literal C string (a key): strlen folds to a constant. */
static inline void mp_out_cstr(mp_out *o, const char *s) { mp_out_str(o, s, strlen(s)); }

static inline void mp_out_str_or_nil(mp_out *o, gl_str s)
{
    if (s.n == 0) mp_out_nil(o);
    else mp_out_gl_str(o, s);
}

static inline void mp_out_container(mp_out *o, uint32_t n, unsigned char fix, unsigned char t16)
{
    if (n < 16) mp_out_byte(o, (unsigned char)(fix | n));
    else if (n <= 0xffff) mp_out_tagged(o, t16, n, 2);
    else mp_out_tagged(o, (unsigned char)(t16 + 1), n, 4);
}

static inline void mp_out_array(mp_out *o, uint32_t n) { mp_out_container(o, n, 0x90, 0xdc); }
static inline void mp_out_map(mp_out *o, uint32_t n) { mp_out_container(o, n, 0x80, 0xde); }

typedef struct {
    const unsigned char *p, *end;
    bool                 bad;
} mp_in;

static inline mp_in mp_in_of(const void *p, size_t n)
{
    return (mp_in){ p, (const unsigned char *)p + n, false };
}

/* The next n bytes, or NULL (and bad) when there are fewer. */
static inline const unsigned char *mp_in_take(mp_in *in, size_t n)
{
    if (in->bad || (size_t)(in->end - in->p) < n) {
        in->bad = true;
        return NULL;
    }
    const unsigned char *at = in->p;
    in->p += n;
    return at;
}

static inline uint64_t mp_in_be(mp_in *in, int bytes)
{
    const unsigned char *at = mp_in_take(in, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; at != NULL && i < bytes; i++) {
        v = v << 8 | at[i];
    }
    return v;
}

/* The next byte without taking it, or -1 at the end. */
static inline int mp_in_peek(const mp_in *in)
{
    return in->bad || in->p == in->end ? -1 : *in->p;
}

/* An integer, read as the object path reads one: unsigned values above INT64_MAX give
 * INT64_MAX. Anything but an integer is bad. */
static inline int64_t mp_in_int(mp_in *in)
{
    const unsigned char *t = mp_in_take(in, 1);
    if (t == NULL) return 0;
    unsigned char b = *t;
    uint64_t u;
    if (b < 0x80) return b;
    if (b >= 0xe0) return (int8_t)b;
    switch (b) {
    case 0xcc: return (int64_t)mp_in_be(in, 1);
    case 0xcd: return (int64_t)mp_in_be(in, 2);
    case 0xce: return (int64_t)mp_in_be(in, 4);
    case 0xcf: u = mp_in_be(in, 8); return u > INT64_MAX ? INT64_MAX : (int64_t)u;
    case 0xd0: return (int8_t)mp_in_be(in, 1);
    case 0xd1: return (int16_t)mp_in_be(in, 2);
    case 0xd2: return (int32_t)mp_in_be(in, 4);
    case 0xd3: return (int64_t)mp_in_be(in, 8);
    default: in->bad = true; return 0;
    }
}

static inline bool mp_in_is_nil(mp_in *in)
{
    if (mp_in_peek(in) == 0xc0) {
        in->p++;
        return true;
    }
    return false;
}

static inline bool mp_in_bool(mp_in *in)
{
    const unsigned char *t = mp_in_take(in, 1);
    if (t != NULL && (*t == 0xc2 || *t == 0xc3)) return *t == 0xc3;
    in->bad = true;
    return false;
}

/* A float64 or float32. */
static inline double mp_in_double(mp_in *in)
{
    const unsigned char *t = mp_in_take(in, 1);
    if (t != NULL && *t == 0xcb) {
        uint64_t bits = mp_in_be(in, 8);
        double d;
        memcpy(&d, &bits, 8);
        return d;
    }
    if (t != NULL && *t == 0xca) {
        uint32_t bits = (uint32_t)mp_in_be(in, 4);
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    in->bad = true;
    return 0;
}

/* A string (nil reads as empty). */
static inline gl_str mp_in_str(mp_in *in)
{
    const unsigned char *t = mp_in_take(in, 1);
    size_t n;
    if (t == NULL) return GL_STR_NULL;
    if ((*t & 0xe0) == 0xa0) n = *t & 0x1f;
    else if (*t == 0xd9) n = (size_t)mp_in_be(in, 1);
    else if (*t == 0xda) n = (size_t)mp_in_be(in, 2);
    else if (*t == 0xdb) n = (size_t)mp_in_be(in, 4);
    else if (*t == 0xc0) return GL_STR_NULL;
    else { in->bad = true; return GL_STR_NULL; }
    const unsigned char *s = mp_in_take(in, n);
    return s != NULL ? gl_str_of((const char *)s, n) : GL_STR_NULL;
}

/* A container's count: fix is its fix-format's high nibble (0x90 array, 0x80 map),
 * c16 its 16-bit type byte (0xdc, 0xde); the 32-bit one follows it. */
static inline uint32_t mp_in_count(mp_in *in, unsigned fix, unsigned c16)
{
    const unsigned char *t = mp_in_take(in, 1);
    if (t == NULL) return 0;
    if ((*t & 0xf0) == fix) return *t & 0x0f;
    if (*t == c16) return (uint32_t)mp_in_be(in, 2);
    if (*t == c16 + 1) return (uint32_t)mp_in_be(in, 4);
    in->bad = true;
    return 0;
}

/* An array's element count. */
static inline uint32_t mp_in_array(mp_in *in)
{
    return mp_in_count(in, 0x90, 0xdc);
}

/* A map's pair count. */
static inline uint32_t mp_in_map(mp_in *in)
{
    return mp_in_count(in, 0x80, 0xde);
}

/* What the next object is, without taking it (false at the end or once bad). */
static inline bool mp_in_next_is_uint(const mp_in *in)
{
    int b = mp_in_peek(in);
    return b >= 0 && (b < 0x80 || (b >= 0xcc && b <= 0xcf));
}

static inline bool mp_in_next_is_bool(const mp_in *in)
{
    int b = mp_in_peek(in);
    return b == 0xc2 || b == 0xc3;
}

static inline bool mp_in_next_is_str(const mp_in *in)
{
    int b = mp_in_peek(in);
    return b >= 0 && ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb));
}

static inline bool mp_in_next_is_map(const mp_in *in)
{
    int b = mp_in_peek(in);
    return b >= 0 && ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf);
}

/* An unsigned integer (positive fixint or uint 8-64); anything else is bad. */
static inline uint64_t mp_in_uint(mp_in *in)
{
    const unsigned char *t = mp_in_take(in, 1);
    if (t == NULL) return 0;
    if (*t < 0x80) return *t;
    switch (*t) {
    case 0xcc: return mp_in_be(in, 1);
    case 0xcd: return mp_in_be(in, 2);
    case 0xce: return mp_in_be(in, 4);
    case 0xcf: return mp_in_be(in, 8);
    default: in->bad = true; return 0;
    }
}

/* Skips one object of any type, however nested (without recursion: a count of the
 * objects still to skip, each of which needs at least one byte). */
void mp_in_skip(mp_in *in);

/* A map key: the string, or (NULL, 0) after skipping a key of another type. */
static inline gl_str mp_in_key(mp_in *in)
{
    if (mp_in_next_is_str(in)) {
        return mp_in_str(in);
    }
    mp_in_skip(in);
    return GL_STR_NULL;
}

#endif
