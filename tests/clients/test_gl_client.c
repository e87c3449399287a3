/*
 * gl_client against a scripted peer: a ZeroMQ ROUTER in a thread of this test, standing
 * in for gridlined, that records what the client sent and answers as each test tells it
 * (in order, out of order, late, malformed, or not at all). No daemon is involved.
 *
 * The peer binds tcp://127.0.0.1 on a port the kernel picks, so tests can run in
 * parallel with each other and with a real daemon.
 */
#include "gl_client.h"

#include "gl_error.h"
#include "mp_util.h"

#include <msgpack.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include <cmocka.h>

/* ---- the peer ---- */

#define PEER_MAX_REQ    16
#define PEER_MAX_FRAMES 8
#define PEER_MAX_FRAME  1024

typedef struct {
    size_t nframes;                             /* including the routing id */
    size_t len[PEER_MAX_FRAMES];
    char   data[PEER_MAX_FRAMES][PEER_MAX_FRAME];
    bool   has_rid;
    uint64_t rid;                               /* the body's integer "rid" */
} peer_req;

typedef struct peer peer;

/* Called in the peer's thread for request number i (from 0), already stored in
 * p->req[i]; answers it (or earlier ones) with peer_send / peer_reply, or not at all. */
typedef void (*peer_fn)(peer *p, size_t i);

struct peer {
    void          *ctx;
    void          *sock;
    char           endpoint[128];
    peer_fn        fn;
    pthread_t      thread;
    atomic_bool    stop;
    atomic_bool    send_failed;   /* cmocka's asserts must not run in the peer's thread */
    atomic_size_t  nreq;
    peer_req       req[PEER_MAX_REQ];
};

/* Reads the integer "rid" of a MessagePack map body, if it has one. */
static void peer_parse_rid(peer_req *r)
{
    msgpack_unpacked      u;
    size_t                off = 0;
    const msgpack_object *rid;

    r->has_rid = false;
    if (r->nframes < 5) {
        return;
    }
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, r->data[4], r->len[4], &off) == MSGPACK_UNPACK_SUCCESS) {
        rid = mp_map_get(&u.data, "rid");
        if (rid != NULL && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            r->has_rid = true;
            r->rid = rid->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
}

static void *peer_main(void *arg)
{
    peer *p = arg;

    while (!atomic_load(&p->stop)) {
        zmq_pollitem_t item = { .socket = p->sock, .events = ZMQ_POLLIN };
        size_t         i = atomic_load(&p->nreq);
        peer_req      *r;
        int            more = 1;

        if (zmq_poll(&item, 1, 20) <= 0) {
            continue;
        }
        r = i < PEER_MAX_REQ ? &p->req[i] : NULL;
        if (r != NULL) {
            r->nframes = 0;
        }
        while (more) {
            zmq_msg_t m;

            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, p->sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (r != NULL && r->nframes < PEER_MAX_FRAMES && zmq_msg_size(&m) <= PEER_MAX_FRAME) {
                memcpy(r->data[r->nframes], zmq_msg_data(&m), zmq_msg_size(&m));
                r->len[r->nframes++] = zmq_msg_size(&m);
            }
            zmq_msg_close(&m);
        }
        if (r == NULL) {
            continue;
        }
        peer_parse_rid(r);
        atomic_store(&p->nreq, i + 1);
        if (p->fn != NULL) {
            p->fn(p, i);
        }
    }
    return NULL;
}

/* The one peer of the running test. It is static, not on the test's stack, and
 * teardown stops it, so that a test failing half-way (cmocka longjmps out of it) leaves no
 * thread behind writing into a stack frame that is gone. */
static peer  the_peer;
static bool  peer_running;

static peer *peer_start(peer_fn fn)
{
    peer  *p = &the_peer;
    size_t len;
    int    linger = 0;

    memset(p, 0, sizeof(*p));
    p->fn = fn;
    atomic_init(&p->stop, false);
    atomic_init(&p->send_failed, false);
    atomic_init(&p->nreq, 0);
    p->ctx = zmq_ctx_new();
    assert_non_null(p->ctx);
    p->sock = zmq_socket(p->ctx, ZMQ_ROUTER);
    assert_non_null(p->sock);
    assert_int_equal(zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(zmq_bind(p->sock, "tcp://127.0.0.1:*"), 0);
    len = sizeof(p->endpoint);
    assert_int_equal(zmq_getsockopt(p->sock, ZMQ_LAST_ENDPOINT, p->endpoint, &len), 0);
    /* The socket is the thread's from here until peer_stop joins it. */
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
    peer_running = true;
    return p;
}

static void peer_stop(peer *p)
{
    if (!peer_running) {
        return;
    }
    peer_running = false;
    atomic_store(&p->stop, true);
    assert_int_equal(pthread_join(p->thread, NULL), 0);
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
    assert_false(atomic_load(&p->send_failed));
}

static int peer_teardown(void **state)
{
    peer_stop(&the_peer);
    return 0;
}

/* Sends frames to the client that sent request i: its routing id, then the n frames.
 * Runs in the peer's thread: a failure is recorded for peer_stop to report. */
static void peer_send(peer *p, size_t i, const void *const *frames, const size_t *lens, size_t n)
{
    const peer_req *r = &p->req[i];

    if (zmq_send(p->sock, r->data[0], r->len[0], ZMQ_SNDMORE) < 0) {
        atomic_store(&p->send_failed, true);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        if (zmq_send(p->sock, frames[k], lens[k], k + 1 < n ? ZMQ_SNDMORE : 0) < 0) {
            atomic_store(&p->send_failed, true);
        }
    }
}

/* Answers request i with an MDP client reply ["", "MDPC01", its service, body]. */
static void peer_reply(peer *p, size_t i, const void *body, size_t len)
{
    const peer_req *r = &p->req[i];
    const void     *f[4] = { "", "MDPC01", r->data[3], body };
    size_t          l[4] = { 0, 6, r->len[3], len };

    peer_send(p, i, f, l, 4);
}

/* ---- bodies ---- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
} body;

static msgpack_packer *body_begin(body *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
    return &b->pk;
}

static void body_free(body *b)
{
    msgpack_sbuffer_destroy(&b->sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* {"ok": true, "rid": rid, "n": n}, or without "rid" when rid is 0. */
static void peer_reply_ok(peer *p, size_t i, uint64_t rid, uint64_t n)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, rid != 0 ? 3 : 2);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "n");
    msgpack_pack_uint64(pk, n);
    if (rid != 0) {
        pk_str(pk, "rid");
        msgpack_pack_uint64(pk, rid);
    }
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

/* The value of an unsigned integer key of a reply body; fails when there is none. */
static uint64_t reply_uint(const char *reply, size_t len, const char *key)
{
    msgpack_unpacked      u;
    size_t                off = 0;
    const msgpack_object *v;
    uint64_t              out;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, reply, len, &off), MSGPACK_UNPACK_SUCCESS);
    v = mp_map_get(&u.data, key);
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    out = v->via.u64;
    msgpack_unpacked_destroy(&u);
    return out;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to 2 s for the peer to have received n requests. */
static void wait_requests(peer *p, size_t n)
{
    for (int i = 0; i < 200 && atomic_load(&p->nreq) < n; i++) {
        struct timespec ts = { 0, 10 * 1000000 };

        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&p->nreq) >= n);
}

static gl_client *client_for(const peer *p)
{
    char       err[256];
    gl_client *c = gl_client_new(p->endpoint, err, sizeof(err));

    if (c == NULL) {
        fail_msg("gl_client_new(%s): %s", p->endpoint, err);
    }
    return c;
}

/* ---- scripts ---- */

static void answer_each(peer *p, size_t i)
{
    peer_reply_ok(p, i, p->req[i].rid, i);
}

static void answer_nothing(peer *p, size_t i)
{
    (void)p;
    (void)i;
}

/* ---- framing and rid ---- */

static void test_call_sends_mdp_frames_and_adds_rid_to_the_body(void **state)
{
    peer           *p;
    gl_client      *c;
    body            b;
    msgpack_packer *pk = body_begin(&b);
    char           *reply = NULL;
    size_t          len = 0;
    gl_error        err;
    msgpack_unpacked u;
    size_t          off = 0;
    const msgpack_object *sent;

    p = peer_start(answer_each);
    c = client_for(p);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "id");
    msgpack_pack_uint64(pk, 7);
    pk_str(pk, "history");
    msgpack_pack_true(pk);
    assert_int_equal(gl_client_call(c, "case.get", b.sb.data, b.sb.size, 2000, &reply, &len,
                                    &err), 0);
    assert_non_null(reply);
    peer_stop(p);

    /* What went out: routing id, "", "MDPC01", service, body. */
    assert_int_equal(p->req[0].nframes, 5);
    assert_int_equal(p->req[0].len[1], 0);
    assert_memory_equal(p->req[0].data[2], "MDPC01", 6);
    assert_int_equal(p->req[0].len[3], strlen("case.get"));
    assert_memory_equal(p->req[0].data[3], "case.get", strlen("case.get"));
    /* The body: the caller's keys, unchanged, and an integer rid. */
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, p->req[0].data[4], p->req[0].len[4], &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, p->req[0].len[4]);
    sent = &u.data;
    assert_int_equal(sent->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(sent->via.map.size, 3);
    assert_int_equal(mp_map_get(sent, "id")->via.u64, 7);
    assert_true(mp_map_get(sent, "history")->via.boolean);
    assert_true(p->req[0].has_rid);
    msgpack_unpacked_destroy(&u);

    /* What came back is the body as the peer sent it. */
    assert_int_equal(reply_uint(reply, len, "rid"), p->req[0].rid);
    free(reply);
    body_free(&b);
    gl_client_destroy(&c);
}

static void test_call_replaces_a_caller_rid(void **state)
{
    peer           *p;
    gl_client      *c;
    body            b;
    msgpack_packer *pk = body_begin(&b);
    char           *reply = NULL;
    gl_error        err;
    msgpack_unpacked u;
    size_t          off = 0;
    size_t          rids = 0;

    p = peer_start(answer_each);
    c = client_for(p);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "rid");
    pk_str(pk, "mine");
    pk_str(pk, "x");
    msgpack_pack_nil(pk);
    assert_int_equal(gl_client_call(c, "case.list", b.sb.data, b.sb.size, 2000, &reply, NULL,
                                    &err), 0);
    peer_stop(p);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, p->req[0].data[4], p->req[0].len[4], &off),
                     MSGPACK_UNPACK_SUCCESS);
    /* Exactly one "rid", the client's integer, so the reply can be matched. */
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;

        rids += k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3
                && memcmp(k->via.str.ptr, "rid", 3) == 0;
    }
    assert_int_equal(rids, 1);
    assert_true(p->req[0].has_rid);
    assert_non_null(mp_map_get(&u.data, "x"));
    msgpack_unpacked_destroy(&u);
    free(reply);
    body_free(&b);
    gl_client_destroy(&c);
}

/* The body's pairs are copied byte for byte: a "rid" inside a value is the caller's. */
static void test_call_keeps_a_rid_nested_in_a_value(void **state)
{
    peer           *p;
    gl_client      *c;
    body            b;
    msgpack_packer *pk = body_begin(&b);
    char           *reply = NULL;
    gl_error        err;
    msgpack_unpacked u;
    size_t          off = 0;
    const msgpack_object *filter, *inner;

    p = peer_start(answer_each);
    c = client_for(p);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "filter");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, 5);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, 9);
    assert_int_equal(gl_client_call(c, "case.list", b.sb.data, b.sb.size, 2000, &reply, NULL,
                                    &err), 0);
    peer_stop(p);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, p->req[0].data[4], p->req[0].len[4], &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, p->req[0].len[4]);
    assert_int_equal(u.data.via.map.size, 2);
    filter = mp_map_get(&u.data, "filter");
    assert_non_null(filter);
    inner = mp_map_get(filter, "rid");
    assert_non_null(inner);
    assert_int_equal(inner->via.u64, 5);
    assert_true(p->req[0].has_rid);
    assert_true(p->req[0].rid != 9);
    msgpack_unpacked_destroy(&u);
    free(reply);
    body_free(&b);
    gl_client_destroy(&c);
}

/* A reply whose case holds "ok" and "rid" keys of its own: only the top level counts. */
static void answer_with_nested_keys(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, 3);
    pk_str(pk, "case");
    msgpack_pack_map(pk, 3);
    pk_str(pk, "ok");
    msgpack_pack_false(pk);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid + 7);
    pk_str(pk, "error");
    msgpack_pack_nil(pk);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid);
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

static void test_reply_keys_nested_in_a_value_are_not_the_replys(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    p = peer_start(answer_with_nested_keys);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, &len, &err), 0);
    assert_non_null(reply);
    peer_stop(p);
    free(reply);
    gl_client_destroy(&c);
}

static void test_call_with_no_body_sends_a_map_holding_only_rid(void **state)
{
    peer       *p;
    gl_client  *c;
    char       *reply = NULL;
    gl_error    err;
    msgpack_unpacked u;
    size_t      off = 0;

    p = peer_start(answer_each);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "catalog.get", NULL, 0, 2000, &reply, NULL, &err), 0);
    peer_stop(p);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, p->req[0].data[4], p->req[0].len[4], &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, 1);
    assert_true(p->req[0].has_rid);
    msgpack_unpacked_destroy(&u);
    free(reply);
    gl_client_destroy(&c);
}

static void test_each_call_carries_a_different_rid(void **state)
{
    peer      *p;
    gl_client *c;
    gl_error   err;

    p = peer_start(answer_each);
    c = client_for(p);
    for (int i = 0; i < 3; i++) {
        char *reply = NULL;

        assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, NULL, &err), 0);
        free(reply);
    }
    peer_stop(p);
    assert_int_equal(atomic_load(&p->nreq), 3);
    assert_true(p->req[0].rid != p->req[1].rid);
    assert_true(p->req[1].rid != p->req[2].rid);
    assert_true(p->req[0].rid != p->req[2].rid);
    gl_client_destroy(&c);
}

/* Answers request i with a reply for another rid first, then its own. */
static void answer_stale_first(peer *p, size_t i)
{
    peer_reply_ok(p, i, p->req[i].rid + 1000, 111);
    peer_reply_ok(p, i, p->req[i].rid, 222);
}

static void test_call_skips_a_reply_with_another_rid(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    p = peer_start(answer_stale_first);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, &len, &err), 0);
    assert_int_equal(reply_uint(reply, len, "n"), 222);
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

/* Holds request 0; on request 1 answers 0 (now late) and then 1. */
static void answer_late(peer *p, size_t i)
{
    if (i == 1) {
        peer_reply_ok(p, 0, p->req[0].rid, 1000);
        peer_reply_ok(p, 1, p->req[1].rid, 1001);
    }
}

static void test_late_reply_to_a_timed_out_call_is_not_taken_for_the_next(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    p = peer_start(answer_late);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.create", NULL, 0, 150, &reply, &len, &err),
                     GL_EUNAVAILABLE);
    assert_null(reply);
    assert_int_equal(gl_client_call(c, "case.create", NULL, 0, 2000, &reply, &len, &err), 0);
    assert_int_equal(reply_uint(reply, len, "n"), 1001);
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

/* Answers requests 0..2 only once the third is in, in reverse order. */
static void answer_reversed(peer *p, size_t i)
{
    if (i == 2) {
        for (size_t k = 3; k-- > 0;) {
            peer_reply_ok(p, k, p->req[k].rid, k);
        }
    }
}

static void test_send_and_recv_match_out_of_order_replies_by_rid(void **state)
{
    peer      *p;
    gl_client *c;
    uint64_t   rid[3];
    gl_error   err;
    bool       seen[3] = { false, false, false };

    p = peer_start(answer_reversed);
    c = client_for(p);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gl_client_send(c, "case.get", NULL, 0, &rid[i], &err), 0);
    }
    assert_true(rid[0] != rid[1] && rid[1] != rid[2] && rid[0] != rid[2]);
    for (int i = 0; i < 3; i++) {
        char    *reply = NULL;
        size_t   len = 0;
        uint64_t got = 0;
        size_t   n;

        assert_int_equal(gl_client_recv(c, 2000, &got, &reply, &len, &err), 0);
        n = (size_t)reply_uint(reply, len, "n");
        /* recv hands replies over as they come: the last request's first. */
        assert_int_equal(n, 2 - (size_t)i);
        /* The rid recv reports is the one send gave that request. */
        assert_int_equal(got, rid[n]);
        assert_false(seen[n]);
        seen[n] = true;
        free(reply);
    }
    peer_stop(p);
    gl_client_destroy(&c);
}

/* ---- timeouts ---- */

static void test_timeout_returns_unavailable_naming_the_endpoint(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = (char *)"untouched";
    size_t     len = 99;
    gl_error   err;
    int64_t    t0, took;

    p = peer_start(answer_nothing);
    c = client_for(p);
    t0 = now_ms();
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 200, &reply, &len, &err),
                     GL_EUNAVAILABLE);
    took = now_ms() - t0;
    assert_null(reply);
    assert_int_equal(len, 0);
    assert_int_equal(err.code, GL_EUNAVAILABLE);
    assert_non_null(strstr(err.message, p->endpoint));
    assert_non_null(strstr(err.message, "200 ms"));
    assert_true(took >= 190);
    assert_true(took < 1500);
    /* The request did reach the peer: the time ran out waiting for the answer. */
    wait_requests(p, 1);
    peer_stop(p);
    gl_client_destroy(&c);
}

static void test_timeout_with_nobody_listening_returns_unavailable(void **state)
{
    peer      *p;
    char       endpoint[128];
    char       errbuf[256];
    gl_client *c;
    char      *reply = NULL;
    gl_error   err;
    int64_t    t0, took;

    /* A port that was just free: bind, read the endpoint, close. */
    p = peer_start(answer_nothing);
    snprintf(endpoint, sizeof(endpoint), "%s", p->endpoint);
    peer_stop(p);
    c = gl_client_new(endpoint, errbuf, sizeof(errbuf));
    assert_non_null(c);
    assert_string_equal(gl_client_endpoint(c), endpoint);
    t0 = now_ms();
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 200, &reply, NULL, &err),
                     GL_EUNAVAILABLE);
    took = now_ms() - t0;
    assert_null(reply);
    assert_non_null(strstr(err.message, endpoint));
    assert_true(took >= 190 && took < 1500);
    /* And mmi says the same thing. */
    assert_int_equal(gl_client_mmi(c, "case.create", 100), GL_EUNAVAILABLE);
    gl_client_destroy(&c);
}

static void test_recv_with_zero_timeout_does_not_wait(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    gl_error   err;
    int64_t    t0;

    p = peer_start(answer_nothing);
    c = client_for(p);
    t0 = now_ms();
    assert_int_equal(gl_client_recv(c, 0, NULL, &reply, NULL, &err), GL_EUNAVAILABLE);
    assert_true(now_ms() - t0 < 100);
    assert_null(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

/* ---- malformed replies ---- */

static void answer_not_msgpack(peer *p, size_t i)
{
    peer_reply(p, i, "\xc1", 1);   /* 0xc1 is never used in MessagePack */
}

static void answer_array(peer *p, size_t i)
{
    peer_reply(p, i, "\x92\x01\x02", 3);   /* [1, 2] */
}

static void answer_two_objects(peer *p, size_t i)
{
    peer_reply(p, i, "\x80\x80", 2);   /* {} {} */
}

static void answer_map_without_ok(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, 2);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid);
    pk_str(pk, "ok");
    pk_str(pk, "yes");
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

static void answer_without_mdp_header(peer *p, size_t i)
{
    const void *f[3] = { "", p->req[i].data[3], p->req[i].data[4] };
    size_t      l[3] = { 0, p->req[i].len[3], p->req[i].len[4] };

    peer_send(p, i, f, l, 3);
}

static void answer_wrong_header(peer *p, size_t i)
{
    const void *f[4] = { "", "MDPW01", p->req[i].data[3], "\x80" };
    size_t      l[4] = { 0, 6, p->req[i].len[3], 1 };

    peer_send(p, i, f, l, 4);
}

static void answer_ok_without_rid(peer *p, size_t i)
{
    peer_reply_ok(p, i, 0, 5);
}

static void expect_bad_request(peer_fn script)
{
    peer      *p;
    gl_client *c;
    char      *reply = (char *)"untouched";
    size_t     len = 99;
    gl_error   err;

    p = peer_start(script);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, &len, &err),
                     GL_EBAD_REQUEST);
    assert_null(reply);
    assert_int_equal(len, 0);
    assert_int_equal(err.code, GL_EBAD_REQUEST);
    assert_non_null(strstr(err.message, p->endpoint));
    peer_stop(p);
    gl_client_destroy(&c);
}

static void test_reply_that_is_not_messagepack_is_bad_request(void **state)
{
    expect_bad_request(answer_not_msgpack);
}

static void test_reply_that_is_not_a_map_is_bad_request(void **state)
{
    expect_bad_request(answer_array);
}

static void test_reply_holding_two_objects_is_bad_request(void **state)
{
    expect_bad_request(answer_two_objects);
}

static void test_reply_without_boolean_ok_is_bad_request(void **state)
{
    expect_bad_request(answer_map_without_ok);
}

static void test_reply_without_mdp_header_is_bad_request(void **state)
{
    expect_bad_request(answer_without_mdp_header);
}

static void test_reply_with_wrong_protocol_header_is_bad_request(void **state)
{
    expect_bad_request(answer_wrong_header);
}

static void test_success_reply_without_rid_is_bad_request(void **state)
{
    /* It cannot be matched, so it must not be taken for this call's answer. */
    expect_bad_request(answer_ok_without_rid);
}

/* Request 0 gets a reply with extra frames; later ones a good reply. */
static void answer_too_many_frames_first(peer *p, size_t i)
{
    if (i == 0) {
        const void *f[6] = { "", "MDPC01", p->req[i].data[3], "\x80", "extra", "more" };
        size_t      l[6] = { 0, 6, p->req[i].len[3], 1, 5, 4 };

        peer_send(p, i, f, l, 6);
    } else {
        peer_reply_ok(p, i, p->req[i].rid, 77);
    }
}

static void test_client_keeps_working_after_a_malformed_reply(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    /* The bad message must have been read whole, not left behind for the next call. */
    p = peer_start(answer_too_many_frames_first);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, &len, &err),
                     GL_EBAD_REQUEST);
    assert_null(reply);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, &len, &err), 0);
    assert_int_equal(reply_uint(reply, len, "n"), 77);
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

/* ---- error replies ---- */

static void answer_error(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, 3);
    pk_str(pk, "ok");
    msgpack_pack_false(pk);
    pk_str(pk, "error");
    msgpack_pack_map(pk, 3);
    pk_str(pk, "code");
    pk_str(pk, "invalid_argument");
    pk_str(pk, "message");
    pk_str(pk, "is 300 bytes; at most 200");
    pk_str(pk, "field");
    pk_str(pk, "title");
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid);
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

static void test_error_reply_returns_its_code_with_err_filled_and_reply_set(void **state)
{
    peer                 *p;
    gl_client            *c;
    char                 *reply = NULL;
    size_t                len = 0;
    gl_error              err;
    msgpack_unpacked      u;
    size_t                off = 0;
    const msgpack_object *e;

    p = peer_start(answer_error);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.create", NULL, 0, 2000, &reply, &len, &err),
                     GL_EINVALID);
    assert_int_equal(err.code, GL_EINVALID);
    assert_string_equal(err.field, "title");
    assert_string_equal(err.message, "is 300 bytes; at most 200");
    /* The body as it came, for a caller that shows it. */
    assert_non_null(reply);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, reply, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    assert_false(mp_map_get(&u.data, "ok")->via.boolean);
    e = mp_map_get(&u.data, "error");
    assert_non_null(e);
    assert_non_null(mp_map_get(e, "field"));
    msgpack_unpacked_destroy(&u);
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

/* What a daemon sends when it could not read the request far enough to find its rid. */
static void answer_error_without_rid(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, 2);
    pk_str(pk, "ok");
    msgpack_pack_false(pk);
    pk_str(pk, "error");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "code");
    pk_str(pk, "bad_request");
    pk_str(pk, "message");
    pk_str(pk, "the body is larger than 65536 bytes");
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

static void test_error_reply_without_rid_is_taken_as_the_answer(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    gl_error   err;

    p = peer_start(answer_error_without_rid);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.create", NULL, 0, 2000, &reply, NULL, &err),
                     GL_EBAD_REQUEST);
    /* A daemon's bad_request, told from a malformed reply by *reply being set. */
    assert_non_null(reply);
    assert_string_equal(err.field, "");
    assert_non_null(strstr(err.message, "65536"));
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

static void answer_unknown_code(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);

    msgpack_pack_map(pk, 3);
    pk_str(pk, "ok");
    msgpack_pack_false(pk);
    pk_str(pk, "error");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "code");
    pk_str(pk, "rate_limited");
    pk_str(pk, "message");
    pk_str(pk, "slow down");
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid);
    peer_reply(p, i, b.sb.data, b.sb.size);
    body_free(&b);
}

static void test_error_reply_with_a_code_unknown_here_keeps_its_name(void **state)
{
    peer      *p;
    gl_client *c;
    char      *reply = NULL;
    gl_error   err;

    p = peer_start(answer_unknown_code);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "case.get", NULL, 0, 2000, &reply, NULL, &err),
                     GL_EINTERNAL);
    assert_non_null(reply);
    assert_non_null(strstr(err.message, "rate_limited"));
    assert_non_null(strstr(err.message, "slow down"));
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

static void answer_other_service(peer *p, size_t i)
{
    body            b;
    msgpack_packer *pk = body_begin(&b);
    const void     *f[4];
    size_t          l[4] = { 0, 6, strlen("case.list"), 0 };

    msgpack_pack_map(pk, 2);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, p->req[i].rid);
    f[0] = "";
    f[1] = "MDPC01";
    f[2] = "case.list";
    f[3] = b.sb.data;
    l[3] = b.sb.size;
    peer_send(p, i, f, l, 4);
    body_free(&b);
}

static void test_reply_for_another_service_is_bad_request(void **state)
{
    expect_bad_request(answer_other_service);
}

/* ---- refused before sending ---- */

static void test_body_that_is_not_one_map_is_refused_without_sending(void **state)
{
    peer  *p;
    static const struct {
        const char *p;
        size_t      n;
    } bad[] = {
        { "\x92\x01\x02", 3 },   /* an array */
        { "\x80\x80", 2 },       /* two maps */
        { "\x81\xa1", 2 },       /* cut short */
        { "\xc1", 1 },           /* not MessagePack */
    };
    gl_client *c;

    p = peer_start(answer_each);
    c = client_for(p);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char    *reply = (char *)"untouched";
        gl_error err;

        assert_int_equal(gl_client_call(c, "case.get", bad[i].p, bad[i].n, 500, &reply, NULL,
                                        &err), GL_EINVALID);
        assert_null(reply);
        assert_string_equal(err.field, "body");
    }
    {
        struct timespec ts = { 0, 100 * 1000000 };

        nanosleep(&ts, NULL);
    }
    peer_stop(p);
    assert_int_equal(atomic_load(&p->nreq), 0);
    gl_client_destroy(&c);
}

static void test_bad_service_name_is_refused_without_sending(void **state)
{
    peer      *p;
    gl_client *c;
    char       longname[300];
    gl_error   err;
    char      *reply = NULL;

    memset(longname, 's', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    p = peer_start(answer_each);
    c = client_for(p);
    assert_int_equal(gl_client_call(c, "", NULL, 0, 500, &reply, NULL, &err), GL_EINVALID);
    assert_string_equal(err.field, "service");
    assert_int_equal(gl_client_call(c, longname, NULL, 0, 500, &reply, NULL, &err), GL_EINVALID);
    assert_null(reply);
    {
        struct timespec ts = { 0, 100 * 1000000 };

        nanosleep(&ts, NULL);
    }
    peer_stop(p);
    assert_int_equal(atomic_load(&p->nreq), 0);
    gl_client_destroy(&c);
}

/* ---- mmi.service ---- */

static void answer_mmi(peer *p, size_t i)
{
    const peer_req *r = &p->req[i];
    const char     *answer = "404";

    if (r->len[4] == strlen("case.create") && memcmp(r->data[4], "case.create", r->len[4]) == 0) {
        answer = "200";
    } else if (r->len[4] == 4 && memcmp(r->data[4], "junk", 4) == 0) {
        answer = "hello";
    }
    peer_reply(p, i, answer, strlen(answer));
}

static void test_mmi_tells_served_from_not_served(void **state)
{
    peer      *p;
    gl_client *c;

    p = peer_start(answer_mmi);
    c = client_for(p);
    assert_int_equal(gl_client_mmi(c, "case.create", 2000), 1);
    assert_int_equal(gl_client_mmi(c, "case.act", 2000), 0);
    assert_int_equal(gl_client_mmi(c, "junk", 2000), GL_EBAD_REQUEST);
    peer_stop(p);
    /* RFC 8: service "mmi.service", the body the plain name. */
    assert_int_equal(p->req[0].len[3], strlen("mmi.service"));
    assert_memory_equal(p->req[0].data[3], "mmi.service", strlen("mmi.service"));
    assert_int_equal(p->req[0].len[4], strlen("case.create"));
    assert_memory_equal(p->req[0].data[4], "case.create", strlen("case.create"));
    gl_client_destroy(&c);
}

/* ---- request ids, life cycle ---- */

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static void test_request_id_is_32_lowercase_hex_chars_fresh_each_call(void **state)
{
    char ids[64][GL_CLIENT_REQUEST_ID_LEN + 1];

    assert_int_equal(GL_CLIENT_REQUEST_ID_LEN, 32);
    for (size_t i = 0; i < 64; i++) {
        memset(ids[i], 'X', sizeof(ids[i]));
        assert_int_equal(gl_client_request_id(ids[i], sizeof(ids[i])), 0);
        assert_int_equal(strlen(ids[i]), 32);
        assert_true(all_lower_hex(ids[i], 32));
        for (size_t k = 0; k < i; k++) {
            assert_string_not_equal(ids[i], ids[k]);
        }
    }
}

static uint64_t hex_value(const char *s, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = v << 4 | (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    }
    return v;
}

static uint64_t unix_ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The daemon keeps request_ids sorted: ids made a millisecond later must sort after. */
static void test_request_id_is_a_uuid7_that_sorts_by_time(void **state)
{
    char     a[GL_CLIENT_REQUEST_ID_LEN + 1], b[GL_CLIENT_REQUEST_ID_LEN + 1];
    uint64_t before = unix_ms_now();

    assert_int_equal(gl_client_request_id(a, sizeof(a)), 0);
    uint64_t after = unix_ms_now();
    uint64_t at = hex_value(a, 12);
    assert_true(at >= before && at <= after);
    assert_int_equal(a[12], '7');                         /* version */
    assert_true(a[16] >= '8' && a[16] <= 'b');            /* variant 0b10 */
    struct timespec two_ms = { 0, 2000000 };
    nanosleep(&two_ms, NULL);
    assert_int_equal(gl_client_request_id(b, sizeof(b)), 0);
    assert_true(strcmp(a, b) < 0);
}

static void test_request_id_format_lays_out_the_uuid7_bits(void **state)
{
    char out[GL_CLIENT_REQUEST_ID_LEN + 1];

    assert_int_equal(gl_client_request_id_format(out, sizeof(out), 0x0123456789abULL, 0xfcde,
                                                 0xffffffffffffffffULL),
                     0);
    /* 48 bits of time, '7', rand_a's low 12 bits, '1 0' then rand_b's low 62 bits */
    assert_string_equal(out, "0123456789ab7cdebfffffffffffffff");
    assert_int_equal(gl_client_request_id_format(out, sizeof(out), 0xff0000000000001ULL, 0, 5),
                     0);
    assert_string_equal(out, "00000000000170008000000000000005");
    assert_int_equal(gl_client_request_id_format(out, GL_CLIENT_REQUEST_ID_LEN, 1, 1, 1), -1);
    assert_string_equal(out, "");
}

static void test_request_id_refuses_a_small_buffer(void **state)
{
    char buf[GL_CLIENT_REQUEST_ID_LEN];

    memset(buf, 'X', sizeof(buf));
    assert_int_equal(gl_client_request_id(buf, sizeof(buf)), -1);
    assert_string_equal(buf, "");
    assert_int_equal(gl_client_request_id(NULL, 64), -1);
    assert_int_equal(gl_client_request_id(buf, 0), -1);
}

static void test_destroy_is_safe_twice(void **state)
{
    gl_client *c = gl_client_new("tcp://127.0.0.1:1", NULL, 0);

    assert_non_null(c);
    gl_client_destroy(&c);
    assert_null(c);
    gl_client_destroy(&c);
    assert_null(c);
    gl_client_destroy(NULL);
}

static void test_new_refuses_a_bad_endpoint_with_a_message(void **state)
{
    char err[256];

    memset(err, 'X', sizeof(err));
    assert_null(gl_client_new("not-an-endpoint", err, sizeof(err)));
    assert_non_null(strstr(err, "not-an-endpoint"));
    assert_null(gl_client_new("", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(gl_client_new(NULL, err, sizeof(err)));
    assert_null(gl_client_new("bogus://x", NULL, 0));
}

/* ---- retry ---- */

static void answer_all_but_the_first_two(peer *p, size_t i)
{
    if (i >= 2) {
        peer_reply_ok(p, i, p->req[i].rid, i);
    }
}

static void test_retry_resends_until_an_answer_comes(void **state)
{
    peer      *p = peer_start(answer_all_but_the_first_two);
    gl_client *c = client_for(p);
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    assert_int_equal(gl_client_call_retry(c, "case.get", NULL, 0, 150, 5, &reply, &len, &err),
                     0);
    assert_non_null(reply);
    wait_requests(p, 3);     /* two unanswered tries, then the one answered */
    free(reply);
    peer_stop(p);
    gl_client_destroy(&c);
}

static void test_retry_gives_up_after_its_attempts(void **state)
{
    peer      *p = peer_start(answer_nothing);
    gl_client *c = client_for(p);
    char      *reply = NULL;
    size_t     len = 0;
    gl_error   err;

    assert_int_equal(gl_client_call_retry(c, "case.get", NULL, 0, 100, 2, &reply, &len, &err),
                     GL_EUNAVAILABLE);
    assert_null(reply);
    wait_requests(p, 2);
    peer_stop(p);
    gl_client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_call_sends_mdp_frames_and_adds_rid_to_the_body, peer_teardown),
        cmocka_unit_test_teardown(test_call_replaces_a_caller_rid, peer_teardown),
        cmocka_unit_test_teardown(test_call_keeps_a_rid_nested_in_a_value, peer_teardown),
        cmocka_unit_test_teardown(test_reply_keys_nested_in_a_value_are_not_the_replys, peer_teardown),
        cmocka_unit_test_teardown(test_call_with_no_body_sends_a_map_holding_only_rid, peer_teardown),
        cmocka_unit_test_teardown(test_each_call_carries_a_different_rid, peer_teardown),
        cmocka_unit_test_teardown(test_call_skips_a_reply_with_another_rid, peer_teardown),
        cmocka_unit_test_teardown(test_late_reply_to_a_timed_out_call_is_not_taken_for_the_next, peer_teardown),
        cmocka_unit_test_teardown(test_send_and_recv_match_out_of_order_replies_by_rid, peer_teardown),
        cmocka_unit_test_teardown(test_timeout_returns_unavailable_naming_the_endpoint, peer_teardown),
        cmocka_unit_test_teardown(test_retry_resends_until_an_answer_comes, peer_teardown),
        cmocka_unit_test_teardown(test_retry_gives_up_after_its_attempts, peer_teardown),
        cmocka_unit_test_teardown(test_timeout_with_nobody_listening_returns_unavailable, peer_teardown),
        cmocka_unit_test_teardown(test_recv_with_zero_timeout_does_not_wait, peer_teardown),
        cmocka_unit_test_teardown(test_reply_that_is_not_messagepack_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_reply_that_is_not_a_map_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_reply_holding_two_objects_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_reply_without_boolean_ok_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_reply_without_mdp_header_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_reply_with_wrong_protocol_header_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_success_reply_without_rid_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_client_keeps_working_after_a_malformed_reply, peer_teardown),
        cmocka_unit_test_teardown(test_reply_for_another_service_is_bad_request, peer_teardown),
        cmocka_unit_test_teardown(test_error_reply_returns_its_code_with_err_filled_and_reply_set, peer_teardown),
        cmocka_unit_test_teardown(test_error_reply_without_rid_is_taken_as_the_answer, peer_teardown),
        cmocka_unit_test_teardown(test_error_reply_with_a_code_unknown_here_keeps_its_name, peer_teardown),
        cmocka_unit_test_teardown(test_body_that_is_not_one_map_is_refused_without_sending, peer_teardown),
        cmocka_unit_test_teardown(test_bad_service_name_is_refused_without_sending, peer_teardown),
        cmocka_unit_test_teardown(test_mmi_tells_served_from_not_served, peer_teardown),
        cmocka_unit_test_teardown(test_request_id_is_32_lowercase_hex_chars_fresh_each_call, peer_teardown),
        cmocka_unit_test_teardown(test_request_id_is_a_uuid7_that_sorts_by_time, peer_teardown),
        cmocka_unit_test_teardown(test_request_id_format_lays_out_the_uuid7_bits, peer_teardown),
        cmocka_unit_test_teardown(test_request_id_refuses_a_small_buffer, peer_teardown),
        cmocka_unit_test_teardown(test_destroy_is_safe_twice, peer_teardown),
        cmocka_unit_test_teardown(test_new_refuses_a_bad_endpoint_with_a_message, peer_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
