/*
 * mp_guard: a walk over untrusted MessagePack bytes that allocates nothing.
 *
 * Every object is read as a head (the type byte and its length fields) followed by a
 * payload (str, bin and ext bytes) or by children (array elements, map keys and
 * values). A declared count is compared with the bytes really left before it is
 * believed: each child needs at least one byte, so a count larger than what remains
 * cannot be honest, and refusing it here is what keeps msgpack-c from allocating for it.
 *
 * mp_guard_check keeps the remaining child count of each open container in a fixed
 * array on the stack (MP_GUARD_MAX_DEPTH entries), so its depth is bounded whatever the
 * input. mp_guard_skip needs no depth at all: it counts the objects still owed, which
 * is enough to find where the first object ends.
 */
#include "mp_guard.h"

#include <stdbool.h>
#include <stdint.h>

const mp_guard_limits mp_guard_request_limits = { 8, 4096, 65536 };

typedef struct {
    size_t head;       /* bytes of the type byte, length fields and ext type */
    size_t payload;    /* str, bin or ext data bytes after the head */
    size_t children;   /* objects inside an array (n) or a map (2n) */
    bool   container;
    bool   blob;       /* str, bin or ext: payload is limited by max_str */
} mp_head;

static const char *const why_truncated     = "the message is truncated";
static const char *const why_c1            = "0xc1 is not a valid MessagePack type byte";
static const char *const why_array_len     = "declared array length exceeds the message";
static const char *const why_map_len       = "declared map size exceeds the message";
static const char *const why_blob_len      = "declared str, bin or ext length exceeds the message";
static const char *const why_blob_limit    = "a str, bin or ext is longer than the limit";
static const char *const why_depth         = "containers are nested deeper than the limit";
static const char *const why_items         = "the message holds more objects than the limit";
static const char *const why_trailing      = "trailing bytes follow the object";

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

/*
 * Reads the head of the object at p (rem bytes available, rem >= 1) into h and checks
 * that what it declares fits in rem. Returns 0, or -1 with *why set.
 */
static int
head_read(const unsigned char *p, size_t rem, mp_head *h, const char **why)
{
    unsigned char b = p[0];
    size_t        lenbytes = 0;   /* width of a length field that follows the type byte */
    size_t        after;

    h->head = 1;
    h->payload = 0;
    h->children = 0;
    h->container = false;
    h->blob = false;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        return 0;                                   /* fixint, nil, false, true */
    }
    if (b >= 0xa0 && b <= 0xbf) {                   /* fixstr */
        h->payload = b & 0x1f;
        h->blob = true;
        goto check_blob;
    }
    if (b >= 0x90 && b <= 0x9f) {                   /* fixarray */
        h->children = b & 0x0f;
        h->container = true;
        goto check_array;
    }
    if (b >= 0x80 && b <= 0x8f) {                   /* fixmap */
        h->children = b & 0x0f;
        h->container = true;
        goto check_map;
    }

    switch (b) {
    case 0xc1:
        *why = why_c1;
        return -1;

    case 0xca: h->head = 5; goto check_head;        /* float32 */
    case 0xcb: h->head = 9; goto check_head;        /* float64 */
    case 0xcc: case 0xd0: h->head = 2; goto check_head;
    case 0xcd: case 0xd1: h->head = 3; goto check_head;
    case 0xce: case 0xd2: h->head = 5; goto check_head;
    case 0xcf: case 0xd3: h->head = 9; goto check_head;

    case 0xd4: h->head = 2; h->payload = 1;  h->blob = true; goto check_head;  /* fixext */
    case 0xd5: h->head = 2; h->payload = 2;  h->blob = true; goto check_head;
    case 0xd6: h->head = 2; h->payload = 4;  h->blob = true; goto check_head;
    case 0xd7: h->head = 2; h->payload = 8;  h->blob = true; goto check_head;
    case 0xd8: h->head = 2; h->payload = 16; h->blob = true; goto check_head;

    case 0xd9: case 0xc4: lenbytes = 1; break;      /* str8, bin8 */
    case 0xda: case 0xc5: lenbytes = 2; break;      /* str16, bin16 */
    case 0xdb: case 0xc6: lenbytes = 4; break;      /* str32, bin32 */
    case 0xc7: lenbytes = 1; break;                 /* ext8 */
    case 0xc8: lenbytes = 2; break;                 /* ext16 */
    case 0xc9: lenbytes = 4; break;                 /* ext32 */

    case 0xdc: case 0xdd:                           /* array16, array32 */
        lenbytes = b == 0xdc ? 2 : 4;
        if (rem < 1 + lenbytes) {
            goto truncated;
        }
        h->head = 1 + lenbytes;
        h->children = be_read(p + 1, lenbytes);
        h->container = true;
        goto check_array;

    case 0xde: case 0xdf:                           /* map16, map32 */
        lenbytes = b == 0xde ? 2 : 4;
        if (rem < 1 + lenbytes) {
            goto truncated;
        }
        h->head = 1 + lenbytes;
        h->children = be_read(p + 1, lenbytes);
        h->container = true;
        goto check_map;

    default:
        /* Every byte value is covered above; this keeps the compiler and readers sure. */
        *why = why_c1;
        return -1;
    }

    /* str, bin and ext with a length field; ext has one more byte, its type. */
    if (rem < 1 + lenbytes) {
        goto truncated;
    }
    h->payload = be_read(p + 1, lenbytes);
    h->head = 1 + lenbytes + (b >= 0xc7 && b <= 0xc9 ? 1 : 0);
    h->blob = true;

check_blob:
    if (rem < h->head) {
        goto truncated;
    }
    if (h->payload > rem - h->head) {
        *why = why_blob_len;
        return -1;
    }
    return 0;

check_head:
    if (rem < h->head + h->payload) {
        goto truncated;
    }
    return 0;

check_array:
    after = rem - h->head;
    if (h->children > after) {
        *why = why_array_len;
        return -1;
    }
    return 0;

check_map:
    after = rem - h->head;
    /* Written as a division so that 2 * n cannot overflow where size_t is 32 bits. */
    if (h->children > after / 2) {
        *why = why_map_len;
        return -1;
    }
    h->children *= 2;
    return 0;

truncated:
    *why = why_truncated;
    return -1;
}

int
mp_guard_check(const void *buf, size_t len, const mp_guard_limits *lim, const char **why)
{
    const unsigned char *p = buf;
    const char          *dummy;
    size_t               left[MP_GUARD_MAX_DEPTH];  /* children still to read, per level */
    size_t               depth = 0;
    size_t               max_depth;
    size_t               items = 0;
    size_t               pos = 0;
    mp_head              h;

    if (why == NULL) {
        why = &dummy;
    }
    max_depth = lim->max_depth < MP_GUARD_MAX_DEPTH ? lim->max_depth : MP_GUARD_MAX_DEPTH;

    do {
        if (pos >= len) {
            *why = why_truncated;
            return -1;
        }
        if (++items > lim->max_items) {
            *why = why_items;
            return -1;
        }
        if (head_read(p + pos, len - pos, &h, why) != 0) {
            return -1;
        }
        if (h.blob && h.payload > lim->max_str) {
            *why = why_blob_limit;
            return -1;
        }
        pos += h.head + h.payload;

        if (depth > 0) {
            left[depth - 1]--;
        }
        if (h.container) {
            if (depth + 1 > max_depth) {
                *why = why_depth;
                return -1;
            }
            left[depth++] = h.children;
        }
        /* Close every container whose last child has just been read. */
        while (depth > 0 && left[depth - 1] == 0) {
            depth--;
        }
    } while (depth > 0);

    if (pos != len) {
        *why = why_trailing;
        return -1;
    }
    return 0;
}

size_t
mp_guard_skip(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const char          *why;
    size_t               owed = 1;    /* objects still to read before the first one ends */
    size_t               pos = 0;
    mp_head              h;

    while (owed > 0) {
        if (pos >= len || head_read(p + pos, len - pos, &h, &why) != 0) {
            return 0;
        }
        pos += h.head + h.payload;
        owed--;
        /* Each owed object needs a byte; checking that keeps owed below len, so the
         * count cannot overflow however large the declared sizes are. */
        if (owed > len - pos || h.children > len - pos - owed) {
            return 0;
        }
        owed += h.children;
    }
    return pos;
}
