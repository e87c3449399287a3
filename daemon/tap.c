/* tap: committed events on a PUB socket (see tap.h). */
#include "tap.h"

#include "case_event.h"
#include "log.h"
#include "server.h"
#include "zap.h"
#include "zwatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define TAP_HWM        10000   /* messages queued per subscriber before the tap drops */
#define TAP_PER_CALL   20000   /* events per commit; more than a batch makes */

struct tap {
    void        *sock;
    zwatch      *watch;
    int64_t      topics;       /* topics someone subscribes to (XPUB tells us) */
    store       *store;
    uint64_t     published;    /* the last seq sent */
    msgpack_zone zone;
    uint64_t     dropped;
};

/* A subscription message from XPUB: 1 + topic when the first subscriber takes a topic,
 * 0 + topic when the last one leaves it (or disconnects). */
static void on_subscription(void *arg)
{
    tap *t = arg;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, t->sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&m) > 0) {
        unsigned char b = *(unsigned char *)zmq_msg_data(&m);
        t->topics += b == 1 ? 1 : b == 0 ? -1 : 0;
        if (t->topics < 0) {
            t->topics = 0;
        }
    }
    zmq_msg_close(&m);
}

tap *tap_new(uv_loop_t *loop, void *zctx, const char *endpoint, const char *secret_key,
             store *st, char *err, size_t errlen)
{
    tap *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->store = st;
    /* XPUB rather than PUB only to hear about subscriptions: with none, committed events
     * are not read back and packed for nobody. */
    t->sock = zmq_socket(zctx, ZMQ_XPUB);
    /* A short linger, not 0: libzmq 4.3 aborts (clean_pipes, session_base.cpp) when a
     * subscriber drops mid multipart message just as a linger-0 close cuts the pipe. A
     * lingering pipe stays readable, so the half-sent message is drained instead. */
    int hwm = TAP_HWM, linger = 100;
    zmq_setsockopt(t->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(t->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (secret_key != NULL && server_set_curve(t->sock, secret_key, ZAP_DOMAIN_TAP) != 0) {
        snprintf(err, errlen, "cannot set CURVE on the tap: %s", zmq_strerror(errno));
        zmq_close(t->sock);
        free(t);
        return NULL;
    }
    if (zmq_bind(t->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind the tap on %s: %s (use --tap)", endpoint,
                 zmq_strerror(errno));
        zmq_close(t->sock);
        free(t);
        return NULL;
    }
    t->watch = zwatch_new(loop, t->sock, 64, on_subscription, t);
    if (t->watch == NULL) {
        snprintf(err, errlen, "cannot watch the tap socket");
        zmq_close(t->sock);
        free(t);
        return NULL;
    }
    msgpack_zone_init(&t->zone, 2048);
    store_reader *r = NULL;
    if (store_read_begin(st, &r) == 0) {
        t->published = store_read_head(r);   /* history is feed.pull's, not the tap's */
        store_read_end(&r);
    }
    return t;
}

typedef struct {
    tap     *t;
    uint64_t last;
} publish_ctx;

static int publish_one(void *arg, gl_str raw)
{
    publish_ctx *p = arg;
    case_event e;
    if (case_event_decode(raw, &p->t->zone, &e) != 0) {
        return 0;
    }
    char topic[3 + 2 * 64 + 32 + 4];
    int n = snprintf(topic, sizeof topic, "ev.%.*s.%.*s.%s", (int)e.district.n, e.district.p,
                     (int)e.category.n, e.category.p, case_event_type_name(e.type));
    unsigned char seq[8];
    mp_put_be64(seq, e.seq);
    p->last = e.seq;
    if (zmq_send(p->t->sock, topic, (size_t)n < sizeof topic ? (size_t)n : sizeof topic - 1,
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        p->t->dropped++;   /* PUB drops rather than block; the seq shows the gap */
        return 0;
    }
    zmq_send(p->t->sock, seq, 8, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(p->t->sock, raw.p, raw.n, ZMQ_DONTWAIT);
    return 0;
}

void tap_publish(tap *t)
{
    store_reader *r = NULL;
    if (t == NULL) {
        return;
    }
    if (t->topics == 0) {
        t->published = store_last_seq(t->store);   /* nobody listens: nothing to drop */
        return;
    }
    if (store_read_begin(t->store, &r) != 0) {
        return;
    }
    uint64_t examined = t->published;
    publish_ctx p = { t, t->published };
    store_read_events(r, t->published, TAP_PER_CALL, GL_STR_NULL, GL_STR_NULL, GL_STR_NULL,
                      TAP_PER_CALL, publish_one, &p, &examined);
    store_read_end(&r);
    t->published = examined;
}

void tap_close(tap *t)
{
    if (t != NULL) {
        zwatch_destroy(&t->watch);
    }
}

void tap_destroy(tap **tp)
{
    if (tp == NULL || *tp == NULL) {
        return;
    }
    zwatch_destroy(&(*tp)->watch);
    zmq_close((*tp)->sock);
    msgpack_zone_destroy(&(*tp)->zone);
    free(*tp);
    *tp = NULL;
}
