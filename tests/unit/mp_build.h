/* Builds MessagePack bodies for the request tests from a printf-like format, so that a
 * test reads as the body it sends. Header-only: shared by the test programs. */
#ifndef MP_BUILD_H
#define MP_BUILD_H

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* ---- packing from a format ---------------------------------------------------------
 *
 * { } a map, [ ] an array; ',' ':' and spaces separate and are ignored.
 * s const char *        S const char *, size_t (a str with exact bytes)
 * i int                 I int64_t         u uint64_t
 * d double              f double, packed as float32
 * b int (bool)          n nil             x const char *, size_t (bin)
 */

typedef struct {
    const char *fmt;
    va_list     ap;
} fmt_state;

/* The number of values directly inside the container whose body starts at f. */
static uint32_t
fmt_count(const char *f)
{
    uint32_t n = 0;
    int      depth = 0;

    for (; *f != '\0'; f++) {
        if (*f == '{' || *f == '[') {
            if (depth == 0) {
                n++;
            }
            depth++;
        } else if (*f == '}' || *f == ']') {
            if (depth == 0) {
                return n;
            }
            depth--;
        } else if (depth == 0 && strchr("sSiIudfbnx", *f) != NULL) {
            n++;
        }
    }
    return n;
}

static void pack_value(msgpack_packer *pk, fmt_state *st);

static void
pack_items(msgpack_packer *pk, fmt_state *st, char close)
{
    for (;;) {
        char c = *st->fmt;

        if (c == ',' || c == ':' || c == ' ') {
            st->fmt++;
            continue;
        }
        if (c == close) {
            st->fmt++;
            return;
        }
        if (c == '\0') {
            return;
        }
        pack_value(pk, st);
    }
}

static void
pack_value(msgpack_packer *pk, fmt_state *st)
{
    char        c = *st->fmt++;
    const char *s;
    size_t      n;

    switch (c) {
    case '{':
        msgpack_pack_map(pk, fmt_count(st->fmt) / 2);
        pack_items(pk, st, '}');
        break;
    case '[':
        msgpack_pack_array(pk, fmt_count(st->fmt));
        pack_items(pk, st, ']');
        break;
    case 's':
        s = va_arg(st->ap, const char *);
        msgpack_pack_str_with_body(pk, s, strlen(s));
        break;
    case 'S':
        s = va_arg(st->ap, const char *);
        n = va_arg(st->ap, size_t);
        msgpack_pack_str_with_body(pk, s, n);
        break;
    case 'x':
        s = va_arg(st->ap, const char *);
        n = va_arg(st->ap, size_t);
        msgpack_pack_bin_with_body(pk, s, n);
        break;
    case 'i': msgpack_pack_int(pk, va_arg(st->ap, int)); break;
    case 'I': msgpack_pack_int64(pk, va_arg(st->ap, int64_t)); break;
    case 'u': msgpack_pack_uint64(pk, va_arg(st->ap, uint64_t)); break;
    case 'd': msgpack_pack_double(pk, va_arg(st->ap, double)); break;
    case 'f': msgpack_pack_float(pk, (float)va_arg(st->ap, double)); break;
    case 'b':
        if (va_arg(st->ap, int) != 0) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        break;
    case 'n': msgpack_pack_nil(pk); break;
    default:
        fail_msg("bad format character '%c'", c);
    }
}

#endif
