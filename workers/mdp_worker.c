/*
 * mdp_worker: the MDP/0.1 worker session. See mdp_worker.h for the API.
 *
 * The session is a small state machine driven from mdp_worker_recv: connected (a
 * socket, READY sent, heartbeat kept) or waiting to reconnect (no socket, a time to
 * try again). Every wait is one zmq_poll (or poll, with no socket) bounded by the
 * nearest of three times: the next heartbeat due, the moment the broker counts as
 * dead, and the caller's deadline. Nothing runs on a thread or a timer of its own, so
 * the caller's signal handler only has to set a flag: the interrupted wait returns 0.
 *
 * A dead broker costs the socket: the new DEALER starts with empty queues, so neither
 * a stale REPLY nor a stale READY reaches a broker that restarted meanwhile.
 */
#include "mdp_worker.h"

#include "log.h"
#include "mdp.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MDP_WORKER_DEAD_MS     (MDP_WORKER_HEARTBEAT_MS * MDP_WORKER_LIVENESS)
#define MDP_WORKER_MAX_FRAMES  6     /* a REQUEST: "", MDPW01, 0x02, address, "", body */
#define MDP_WORKER_LINGER_MS   500   /* how long DISCONNECT may take to leave at the end */

struct mdp_worker {
    void         *ctx;
    bool          own_ctx;
    void         *sock;           /* NULL while waiting to reconnect */
    char         *endpoint;
    char         *service;
    char         *identity;       /* NULL: ZeroMQ picks one per socket */
    int64_t       heard_at;       /* when the broker last sent anything */
    int64_t       sent_at;        /* when we last sent a command */
    int64_t       reconnect_at;   /* without a socket: when to connect again */
    int           backoff_ms;     /* the next pause before reconnecting */
    unsigned long reconnects;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sending --------------------------------------------------------------------- */

/* Sends "", "MDPW01", command, then the extra frames. The first frame goes with
 * ZMQ_DONTWAIT so that a full queue fails at once instead of blocking the heartbeat;
 * once one frame is in, ZeroMQ takes the whole multipart message. */
static int
send_command(mdp_worker *w, const char *command, const mdp_frame *extra, size_t n_extra)
{
    size_t i;

    if (w->sock == NULL) {
        return GL_EUNAVAILABLE;
    }
    if (zmq_send(w->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return errno == EAGAIN ? GL_EUNAVAILABLE : GL_EINTERNAL;
    }
    if (zmq_send(w->sock, MDP_WORKER, strlen(MDP_WORKER), ZMQ_SNDMORE) < 0
        || zmq_send(w->sock, command, 1, n_extra > 0 ? ZMQ_SNDMORE : 0) < 0) {
        return GL_EINTERNAL;
    }
    for (i = 0; i < n_extra; i++) {
        if (zmq_send(w->sock, extra[i].p, extra[i].n, i + 1 < n_extra ? ZMQ_SNDMORE : 0)
            < 0) {
            return GL_EINTERNAL;
        }
    }
    w->sent_at = now_ms();
    return 0;
}

/* ---- the connection -------------------------------------------------------------- */

static void
drop_socket(mdp_worker *w)
{
    if (w->sock != NULL) {
        zmq_close(w->sock);
        w->sock = NULL;
    }
}

/* A new DEALER, connected, READY sent. Returns 0, or -1 with errno set. */
static int
connect_broker(mdp_worker *w)
{
    int       linger = 0;
    int64_t   maxmsg = MDP_WORKER_MAX_MSG;
    mdp_frame service = { w->service, strlen(w->service) };
    int       saved;

    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    if (w->sock == NULL) {
        return -1;
    }
    /* Linger 0: a socket dropped for a dead broker must not hold the context's
     * termination hostage to messages nobody will read. */
    if (zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger) != 0
        || zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0
        || (w->identity != NULL
            && zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, w->identity, strlen(w->identity))
                   != 0)
        || zmq_connect(w->sock, w->endpoint) != 0) {
        goto fail;
    }
    if (send_command(w, MDPW_READY, &service, 1) != 0) {
        goto fail;
    }
    w->heard_at = now_ms();
    return 0;

fail:
    saved = errno;
    drop_socket(w);
    errno = saved;
    return -1;
}

/* Drops the connection and schedules the next one, the pause doubling each time. */
static void
schedule_reconnect(mdp_worker *w, const char *why)
{
    log_warn("broker at %s %s: reconnecting in %d ms", w->endpoint, why, w->backoff_ms);
    drop_socket(w);
    w->reconnect_at = now_ms() + w->backoff_ms;
    w->backoff_ms   = w->backoff_ms * 2 > MDP_WORKER_RECONNECT_MAX_MS
                          ? MDP_WORKER_RECONNECT_MAX_MS
                          : w->backoff_ms * 2;
}

mdp_worker *
mdp_worker_new(void *zctx, const char *endpoint, const char *service,
               const char *identity)
{
    mdp_worker *w;

    /* An empty C string cannot carry the zero first byte ZeroMQ reserves, so checking
     * the length covers both rules. */
    if (endpoint == NULL || endpoint[0] == '\0' || service == NULL || service[0] == '\0'
        || strlen(service) > MDP_MAX_SERVICE
        || (identity != NULL
            && (identity[0] == '\0' || strlen(identity) > MDP_WORKER_ADDR_MAX))) {
        errno = EINVAL;
        return NULL;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->backoff_ms = MDP_WORKER_RECONNECT_MIN_MS;
    w->endpoint   = strdup(endpoint);
    w->service    = strdup(service);
    w->identity   = identity != NULL ? strdup(identity) : NULL;
    if (w->endpoint == NULL || w->service == NULL || (identity != NULL && w->identity == NULL)) {
        goto fail;
    }
    w->ctx = zctx;
    if (w->ctx == NULL) {
        w->ctx     = zmq_ctx_new();
        w->own_ctx = true;
        if (w->ctx == NULL) {
            goto fail;
        }
    }
    if (connect_broker(w) != 0) {
        goto fail;
    }
    return w;

fail:
    mdp_worker_destroy(&w);
    return NULL;
}

void
mdp_worker_destroy(mdp_worker **wp)
{
    mdp_worker *w;
    int         linger = MDP_WORKER_LINGER_MS;

    if (wp == NULL || *wp == NULL) {
        return;
    }
    w = *wp;
    if (w->sock != NULL) {
        /* The broker would notice the silence anyway, 7.5 s later; DISCONNECT tells it
         * now, so it stops giving this worker requests at once. */
        if (send_command(w, MDPW_DISCONNECT, NULL, 0) == 0) {
            zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
        }
        drop_socket(w);
    }
    if (w->own_ctx && w->ctx != NULL) {
        zmq_ctx_term(w->ctx);
    }
    free(w->endpoint);
    free(w->service);
    free(w->identity);
    free(w);
    *wp = NULL;
}

unsigned long
mdp_worker_reconnects(const mdp_worker *w)
{
    return w != NULL ? w->reconnects : 0;
}

/* ---- receiving ------------------------------------------------------------------- */

typedef enum { GOT_NOTHING, GOT_REQUEST, GOT_FAILURE } got;

static bool
frame_is(zmq_msg_t *m, const void *p, size_t n)
{
    return zmq_msg_size(m) == n && (n == 0 || memcmp(zmq_msg_data(m), p, n) == 0);
}

/* Handles one command from the broker, its frames in parts[0..n). */
static got
handle_command(mdp_worker *w, zmq_msg_t *parts, size_t n, bool too_many, zmq_msg_t *body,
               char *reply_to, size_t *reply_to_len)
{
    const char *cmd;

    if (n < 3 || !frame_is(&parts[0], "", 0)
        || !frame_is(&parts[1], MDP_WORKER, strlen(MDP_WORKER))
        || zmq_msg_size(&parts[2]) != 1) {
        log_warn("dropped a message from the broker that is not MDP/0.1 worker framing "
                 "(\"\", \"%s\", command, ...)", MDP_WORKER);
        return GOT_NOTHING;
    }
    cmd = zmq_msg_data(&parts[2]);
    if (cmd[0] == MDPW_DISCONNECT[0]) {
        /* Not a sign of life: a broker that keeps refusing us must not keep the
         * pause at its shortest. */
        schedule_reconnect(w, "sent DISCONNECT");
        return GOT_NOTHING;
    }
    w->heard_at   = now_ms();
    w->backoff_ms = MDP_WORKER_RECONNECT_MIN_MS;
    if (cmd[0] == MDPW_HEARTBEAT[0]) {
        return GOT_NOTHING;
    }
    if (cmd[0] != MDPW_REQUEST[0]) {
        log_warn("dropped an unexpected command 0x%02x from the broker", (unsigned)cmd[0]);
        return GOT_NOTHING;
    }
    if (too_many || n != 6 || !frame_is(&parts[4], "", 0)) {
        log_warn("dropped a REQUEST that is not \"\", \"%s\", 0x02, address, \"\", body "
                 "(one body frame)", MDP_WORKER);
        return GOT_NOTHING;
    }
    if (zmq_msg_size(&parts[3]) == 0 || zmq_msg_size(&parts[3]) > *reply_to_len) {
        log_warn("dropped a REQUEST whose client address is %zu bytes (1 to %zu fit)",
                 zmq_msg_size(&parts[3]), *reply_to_len);
        return GOT_NOTHING;
    }
    *reply_to_len = zmq_msg_size(&parts[3]);
    memcpy(reply_to, zmq_msg_data(&parts[3]), *reply_to_len);
    if (zmq_msg_move(body, &parts[5]) != 0) {
        return GOT_FAILURE;
    }
    return GOT_REQUEST;
}

/* Reads one whole message (every part, so that a bad one cannot desynchronise the
 * stream) and handles it. Only called when the socket is readable. */
static got
read_message(mdp_worker *w, zmq_msg_t *body, char *reply_to, size_t *reply_to_len)
{
    zmq_msg_t parts[MDP_WORKER_MAX_FRAMES];
    size_t    n = 0, i;
    bool      too_many = false;
    int       more = 1, flags = ZMQ_DONTWAIT;
    got       r = GOT_NOTHING;

    while (more) {
        zmq_msg_t  spare;
        zmq_msg_t *m = n < MDP_WORKER_MAX_FRAMES ? &parts[n] : &spare;

        zmq_msg_init(m);
        if (zmq_msg_recv(m, w->sock, flags) < 0) {
            int e = errno;

            zmq_msg_close(m);
            /* Readable but nothing to read: ZMQ_FD-style spurious wake-ups happen. */
            if (e == EAGAIN && n == 0) {
                goto done;
            }
            if (e == EINTR) {
                continue;
            }
            r = e == ETERM ? GOT_FAILURE : GOT_NOTHING;
            if (r == GOT_NOTHING) {
                schedule_reconnect(w, "broke the connection");
            }
            goto done;
        }
        /* The other parts of a multipart message are already here. */
        flags = 0;
        more  = zmq_msg_more(m);
        if (m == &spare) {
            too_many = true;
            zmq_msg_close(m);
        } else {
            n++;
        }
    }
    r = handle_command(w, parts, n, too_many, body, reply_to, reply_to_len);
done:
    for (i = 0; i < n; i++) {
        zmq_msg_close(&parts[i]);
    }
    return r;
}

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Waits, without a socket, until the time to reconnect or the deadline (-1: none).
 * Returns 0, or -1 when a signal interrupted the wait. */
static int
pause_until(int64_t until)
{
    int64_t left = until - now_ms();

    if (left <= 0) {
        return 0;
    }
    if (poll(NULL, 0, (int)min64(left, INT32_MAX)) < 0 && errno == EINTR) {
        return -1;
    }
    return 0;
}

int
mdp_worker_recv(mdp_worker *w, zmq_msg_t *body, char *reply_to, size_t *reply_to_len,
                int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    size_t  cap;

    if (w == NULL || body == NULL || reply_to == NULL || reply_to_len == NULL
        || *reply_to_len == 0) {
        return GL_EINVALID;
    }
    cap = *reply_to_len;
    for (;;) {
        zmq_pollitem_t item;
        int64_t        now = now_ms(), wake;
        int            rc;

        if (w->sock == NULL) {
            if (now >= w->reconnect_at) {
                if (connect_broker(w) != 0) {
                    if (errno == ETERM) {
                        return GL_EINTERNAL;
                    }
                    schedule_reconnect(w, zmq_strerror(errno));
                } else {
                    w->reconnects++;
                    log_info("reconnected to the broker at %s as a \"%s\" worker",
                             w->endpoint, w->service);
                }
                continue;
            }
            if (now >= deadline || pause_until(min64(w->reconnect_at, deadline)) != 0) {
                return 0;
            }
            continue;
        }
        if (now - w->sent_at >= MDP_WORKER_HEARTBEAT_MS) {
            rc = send_command(w, MDPW_HEARTBEAT, NULL, 0);
            if (rc == GL_EINTERNAL && errno == ETERM) {
                return GL_EINTERNAL;
            }
            /* A heartbeat that cannot be queued is skipped: the broker is not reading,
             * and its own silence will tell us so. */
            w->sent_at = now;
        }
        /* Past any of the three times the poll only looks (0 ms): messages that queued
         * up while the caller was busy are read before the broker is judged silent. */
        wake = min64(min64(w->sent_at + MDP_WORKER_HEARTBEAT_MS,
                           w->heard_at + MDP_WORKER_DEAD_MS), deadline);
        item.socket  = w->sock;
        item.fd      = 0;
        item.events  = ZMQ_POLLIN;
        item.revents = 0;
        rc = zmq_poll(&item, 1, (long)(wake > now ? wake - now : 0));
        if (rc < 0) {
            if (errno == EINTR) {
                return 0;
            }
            if (errno == ETERM) {
                return GL_EINTERNAL;
            }
            schedule_reconnect(w, zmq_strerror(errno));
            continue;
        }
        if (rc > 0 && (item.revents & ZMQ_POLLIN) != 0) {
            *reply_to_len = cap;
            switch (read_message(w, body, reply_to, reply_to_len)) {
            case GOT_REQUEST: return 1;
            case GOT_FAILURE: return GL_EINTERNAL;
            case GOT_NOTHING: break;
            }
        }
        now = now_ms();
        if (w->sock != NULL && now - w->heard_at >= MDP_WORKER_DEAD_MS) {
            schedule_reconnect(w, "has been silent for 3 heartbeats");
            continue;
        }
        if (now >= deadline) {
            return 0;
        }
    }
}

int
mdp_worker_reply(mdp_worker *w, const char *reply_to, size_t reply_to_len,
                 const void *body, size_t len)
{
    mdp_frame frames[3];

    if (w == NULL || reply_to == NULL || reply_to_len == 0
        || reply_to_len > MDP_WORKER_ADDR_MAX || (body == NULL && len > 0)) {
        return GL_EINVALID;
    }
    frames[0].p = reply_to;
    frames[0].n = reply_to_len;
    frames[1].p = "";
    frames[1].n = 0;
    frames[2].p = body != NULL ? body : "";
    frames[2].n = len;
    return send_command(w, MDPW_REPLY, frames, 3);
}
