/*
 * mp_guard: checks an untrusted MessagePack body before msgpack-c sees it.
 *
 * msgpack-c allocates arrays and maps from the counts the sender declares, before it
 * has read them: a five-byte body can ask for gigabytes. mp_guard walks the bytes
 * without allocating and refuses anything whose declared sizes exceed what is really
 * there (every array element needs at least one byte, every map entry two), anything
 * nested deeper than the limit, with more objects in all than the limit, truncated, or
 * followed by trailing bytes. A body that passes can be unpacked with memory bounded
 * by a small multiple of its length.
 */
#ifndef MP_GUARD_H
#define MP_GUARD_H

#include <stddef.h>

/* The guard keeps its stack of open containers on the C stack, so depth is capped:
 * a max_depth above MP_GUARD_MAX_DEPTH is treated as MP_GUARD_MAX_DEPTH. */
#define MP_GUARD_MAX_DEPTH 64

typedef struct {
    size_t max_depth;  /* containers inside containers; the top-level map is depth 1 */
    size_t max_items;  /* objects in all, containers and scalars */
    size_t max_str;    /* bytes in one str, bin or ext */
} mp_guard_limits;

/* Limits used for request bodies: depth 8, 4096 items, 64 KiB strings. */
extern const mp_guard_limits mp_guard_request_limits;

/* Returns 0 when buf[0..len) is exactly one complete MessagePack object within lim.
 * Otherwise returns -1 and, if why is not NULL, points it at a static sentence saying
 * what is wrong ("truncated", "declared array length exceeds the message", ...). */
int mp_guard_check(const void *buf, size_t len, const mp_guard_limits *lim, const char **why);

/* The encoded size of the first object in buf[0..len) (containers with everything in
 * them), or 0 if it is malformed or runs past len. No limits on depth or size beyond
 * len itself, and no recursion; meant for walking a body that already passed
 * mp_guard_check. */
size_t mp_guard_skip(const void *buf, size_t len);

#endif
