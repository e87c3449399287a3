/* zap: the ZAP handler (see zap.h). */
#include "zap.h"

#include "access.h"
#include "log.h"
#include "zwatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES   7     /* version, request id, domain, address, identity, mechanism,
                            * credentials */

struct zap {
    void       *sock;
    zwatch     *watch;
    principals *table;
    uint64_t    refused;
    uint64_t    last_log_ms;
    uv_loop_t  *loop;
};

static void send_reply(zap *z, const zmq_msg_t *request_id, const char *code,
                       const char *text, const char *user)
{
    const int more = ZMQ_SNDMORE;
    zmq_send(z->sock, "1.0", 3, more);
    zmq_send(z->sock, zmq_msg_data((zmq_msg_t *)request_id),
             zmq_msg_size((zmq_msg_t *)request_id), more);
    zmq_send(z->sock, code, strlen(code), more);
    zmq_send(z->sock, text, strlen(text), more);
    zmq_send(z->sock, user, strlen(user), more);
    zmq_send(z->sock, "", 0, 0);
}

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

static void refuse_log(zap *z, zmq_msg_t *address, const char *why)
{
    z->refused++;
    uint64_t now = uv_now(z->loop);
    /* A stranger retrying every 100 ms must not fill the log. */
    if (now - z->last_log_ms >= 1000 || z->last_log_ms == 0) {
        z->last_log_ms = now;
        log_warn("zap: refused a client from %.*s: %s (%llu refused so far)",
                 (int)(zmq_msg_size(address) > 64 ? 64 : zmq_msg_size(address)),
                 (const char *)zmq_msg_data(address), why, (unsigned long long)z->refused);
    }
}

static void on_request(void *arg)
{
    zap *z = arg;
    zmq_msg_t f[ZAP_FRAMES + 1];
    size_t n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m) != 0;
        if (n < ZAP_FRAMES + 1) {
            f[n++] = m;
        } else {
            zmq_msg_close(&m);
        }
    }
    if (n == 0) {
        return;
    }
    /* REP must answer every request it takes, or it stops taking them. */
    if (n < 6 || !frame_is(&f[0], "1.0")) {
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        send_reply(z, n >= 2 ? &f[1] : &empty, "500", "malformed ZAP request", "");
        zmq_msg_close(&empty);
    } else if (!frame_is(&f[5], "CURVE") || n != ZAP_FRAMES || zmq_msg_size(&f[6]) != 32) {
        refuse_log(z, &f[3], "not a CURVE handshake");
        send_reply(z, &f[1], "400", "CURVE required", "");
    } else {
        char z85[KEYFILE_Z85_LEN + 1];
        zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
        principal *p = principals_by_key(z->table, z85);
        bool tap = frame_is(&f[2], ZAP_DOMAIN_TAP);
        if (p == NULL) {
            char why[96];
            snprintf(why, sizeof why, "unknown public key %s", z85);
            refuse_log(z, &f[3], why);
            send_reply(z, &f[1], "400", "unknown key", "");
        } else if (tap && !access_tap(p)) {
            char why[160];
            snprintf(why, sizeof why, "%s may not subscribe to the tap (scoped; it uses "
                     "feed.pull)", p->name);
            refuse_log(z, &f[3], why);
            send_reply(z, &f[1], "400", "not allowed on the tap", "");
        } else {
            send_reply(z, &f[1], "200", "OK", p->name);
        }
    }
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&f[i]);
    }
    zwatch_kick(z->watch);
}

void zap_set_table(zap *z, principals *table)
{
    z->table = table;
}

zap *zap_new(uv_loop_t *loop, void *zctx, principals *table, char *err, size_t errlen)
{
    zap *z = calloc(1, sizeof *z);
    if (z == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    z->table = table;
    z->loop = loop;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (z->sock == NULL || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) != 0
        || zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        zap_destroy(&z);
        return NULL;
    }
    z->watch = zwatch_new(loop, z->sock, 64, on_request, z);
    if (z->watch == NULL) {
        snprintf(err, errlen, "cannot watch the ZAP socket");
        zap_destroy(&z);
        return NULL;
    }
    return z;
}

void zap_destroy(zap **zp)
{
    if (zp == NULL || *zp == NULL) {
        return;
    }
    zap *z = *zp;
    zwatch_destroy(&z->watch);
    if (z->sock != NULL) {
        zmq_close(z->sock);
    }
    free(z);
    *zp = NULL;
}
