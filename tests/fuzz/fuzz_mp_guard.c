/*
 * fuzz_mp_guard: the MessagePack guard (mp_guard_check, mp_guard_skip), the one thing
 * that stands between an untrusted body and msgpack-c's allocations.
 *
 * The whole input is the body. Besides surviving it, the guard is judged against
 * msgpack-c itself: whenever the input is one well-formed object that msgpack-c can
 * unpack, the harness measures the unpacked tree (depth, objects, longest str, bin or
 * ext) and requires mp_guard_check to accept exactly when those fit the limits. That
 * catches a guard that refuses good bodies as well as one that lets bad ones through.
 *
 * msgpack-c is only run on inputs mp_guard_skip found well-formed: skip checks every
 * declared count against the bytes left, so the unpacking stays small; running it on
 * anything else is the allocation bomb the guard exists to stop.
 *
 * mp_fast's reader (mp_in_skip, and the map walk the client library reads replies
 * with: mp_in_map, mp_in_key) is held to the same two judges: it must measure an object
 * as mp_guard_skip does, and walk a map msgpack-c unpacked to the same count and keys.
 */
#include "fuzz_target.h"

#include "mp_fast.h"
#include "mp_guard.h"
#include "mp_util.h"

#include <msgpack.h>
#include <msgpack/unpack_define.h>   /* MSGPACK_EMBED_STACK_SIZE: msgpack-c's depth limit */
#include <string.h>

/* What the guard limits, measured on a tree msgpack-c unpacked. */
typedef struct {
    size_t depth;      /* containers inside containers; a scalar alone is 0 */
    size_t items;      /* objects in all, map keys included */
    size_t max_blob;   /* longest str, bin or ext payload */
} tree_facts;

static void
blob_seen(tree_facts *f, size_t n)
{
    if (n > f->max_blob) {
        f->max_blob = n;
    }
}

/* Recursion is fine here: msgpack-c refuses trees deeper than MSGPACK_EMBED_STACK_SIZE. */
static void
tree_measure(const msgpack_object *o, size_t level, tree_facts *f)
{
    uint32_t i;

    f->items++;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        blob_seen(f, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        blob_seen(f, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        blob_seen(f, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        if (level + 1 > f->depth) {
            f->depth = level + 1;
        }
        for (i = 0; i < o->via.array.size; i++) {
            tree_measure(&o->via.array.ptr[i], level + 1, f);
        }
        break;
    case MSGPACK_OBJECT_MAP:
        if (level + 1 > f->depth) {
            f->depth = level + 1;
        }
        for (i = 0; i < o->via.map.size; i++) {
            tree_measure(&o->via.map.ptr[i].key, level + 1, f);
            tree_measure(&o->via.map.ptr[i].val, level + 1, f);
        }
        break;
    default:
        break;
    }
}

/* What mp_guard_check must answer for a tree with facts f, by its header. */
static bool
fits(const tree_facts *f, const mp_guard_limits *lim)
{
    size_t max_depth = lim->max_depth < MP_GUARD_MAX_DEPTH ? lim->max_depth
                                                           : MP_GUARD_MAX_DEPTH;

    return f->depth <= max_depth && f->items <= lim->max_items && f->max_blob <= lim->max_str;
}

/* The map o (unpacked from buf by msgpack-c) walked with mp_fast: the same pair count,
 * the same string keys, and the walk ends where the object does. */
static void
map_walk_agrees(const unsigned char *buf, size_t size, const msgpack_object *o)
{
    mp_in    in = mp_in_of(buf, size);
    uint32_t n = mp_in_map(&in);

    fuzz_expect(!in.bad && n == o->via.map.size, "mp_in_map reads msgpack-c's count");
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        gl_str key = mp_in_key(&in);

        if (k->type == MSGPACK_OBJECT_STR) {
            fuzz_expect(key.n == k->via.str.size
                            && (key.n == 0 || memcmp(key.p, k->via.str.ptr, key.n) == 0),
                        "mp_in_key reads a string key as msgpack-c does");
        } else {
            fuzz_expect(key.p == NULL, "mp_in_key passes over a key that is not a string");
        }
        mp_in_skip(&in);
    }
    fuzz_expect(!in.bad && in.p == buf + size, "the map walk ends where the map does");
}

enum { LIM_REQUEST, LIM_LOOSE, LIM_UNPACKABLE, LIM_TIGHT, LIM_COUNT };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mp_guard_limits lims[LIM_COUNT];
    int             rc[LIM_COUNT];
    unsigned char  *buf;
    const char     *why;
    size_t          skip;
    size_t          i;
    msgpack_zone    zone;
    msgpack_object  o;
    tree_facts      facts;

    lims[LIM_REQUEST] = mp_guard_request_limits;
    /* Above MP_GUARD_MAX_DEPTH on purpose: the header says it is capped there. */
    lims[LIM_LOOSE] = (mp_guard_limits){ MP_GUARD_MAX_DEPTH * 2, SIZE_MAX, SIZE_MAX };
    /* Whatever passes these, msgpack-c must be able to unpack. */
    lims[LIM_UNPACKABLE] = (mp_guard_limits){ MSGPACK_EMBED_STACK_SIZE, SIZE_MAX, SIZE_MAX };
    /* Small limits that move with the input, so the edges of every limit get hit. */
    lims[LIM_TIGHT] = (mp_guard_limits){ size % 10, size % 97, size % 41 };

    buf = fuzz_copy(data, size);
    if (buf == NULL) {
        return 0;
    }

    skip = mp_guard_skip(buf, size);
    fuzz_expect(skip <= size, "mp_guard_skip stays inside the buffer");
    {
        mp_in in = mp_in_of(buf, size);

        mp_in_skip(&in);
        fuzz_expect(in.bad == (skip == 0), "mp_in_skip fails exactly where mp_guard_skip does");
        fuzz_expect(in.bad || (size_t)(in.p - buf) == skip,
                    "mp_in_skip measures an object as mp_guard_skip does");
    }
    if (skip > 0) {
        fuzz_expect(mp_guard_skip(buf, skip) == skip,
                    "mp_guard_skip needs no byte past the object it measured");
    }

    for (i = 0; i < LIM_COUNT; i++) {
        why = NULL;
        rc[i] = mp_guard_check(buf, size, &lims[i], &why);
        fuzz_expect(rc[i] == 0 || rc[i] == -1, "mp_guard_check returns 0 or -1");
        if (rc[i] != 0) {
            fuzz_expect(why != NULL && why[0] != '\0', "a refusal says why");
        } else {
            fuzz_expect(skip == size, "what passes the guard is exactly one object");
        }
    }
    fuzz_expect(mp_guard_check(buf, size, &lims[LIM_REQUEST], NULL) == rc[LIM_REQUEST],
                "why may be NULL and changes nothing");
    fuzz_expect(rc[LIM_REQUEST] != 0 || rc[LIM_LOOSE] == 0,
                "what passes the request limits passes looser ones");

    if (size == 0 || skip != size) {
        goto done;
    }
    if (!msgpack_zone_init(&zone, 2048)) {
        goto done;
    }
    if (mp_unpack((const char *)buf, size, &zone, &o) == 0) {
        memset(&facts, 0, sizeof facts);
        tree_measure(&o, 0, &facts);
        if (o.type == MSGPACK_OBJECT_MAP) {
            map_walk_agrees(buf, size, &o);
        }
        for (i = 0; i < LIM_COUNT; i++) {
            fuzz_expect((rc[i] == 0) == fits(&facts, &lims[i]),
                        "mp_guard_check accepts exactly the trees within the limits");
        }
    } else {
        fuzz_expect(rc[LIM_UNPACKABLE] != 0,
                    "a body within msgpack-c's depth that passes the guard unpacks");
    }
    msgpack_zone_destroy(&zone);

done:
    free(buf);
    return 0;
}
