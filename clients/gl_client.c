/*
 * gl_client: the client side of the wire contract. See gl_client.h for the API.
 *
 * Trade-offs: each gl_client owns its ZeroMQ context, so a program with many clients
 * (gridline-bench) pays one I/O thread per client; in exchange a client is
 * self-contained and nothing lives in globals. Replies are unpacked once here to read
 * "ok", "error" and "rid", and handed back raw, so callers unpack them again if they
 * want more; replies are small next to the round trip.
 */
#include "gl_client.h"
#include "keyfile.h"

#include "mdp.h"
#include "mp_fast.h"
#include "mp_guard.h"
#include "mp_util.h"

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zmq.h>

/* A reply bigger than this is refused by ZeroMQ before it is buffered: a wrong endpoint
 * (or a hostile one) cannot make a client allocate without bound. case.list at its
 * largest page is far below. */
#define GL_CLIENT_MAX_REPLY (64 * 1024 * 1024)

/* Frames in a reply: optional "", "MDPC01", service, body. Anything longer is wrong. */
#define GL_CLIENT_MAX_FRAMES 4

#define GL_CLIENT_MMI_SERVICE "mmi.service"

struct gl_client {
    void     *ctx;
    bool      own_ctx;    /* made by gl_client_new_keys, not given to gl_client_new_in */
    void     *sock;
    uint64_t  next_rid;
    char     *endpoint;
    bool      curve;      /* keys given: a silent daemon may be refusing them */
};

/* Replies come from the daemon, which we trust more than it trusts us, but a client
 * pointed at the wrong port should still not be made to allocate gigabytes by a few
 * bytes that declare huge arrays; hence the guard, with limits sized for replies. */
static const mp_guard_limits reply_limits = {
    .max_depth = 32,
    .max_items = 4 * 1024 * 1024,
    .max_str   = GL_CLIENT_MAX_REPLY,
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

gl_client *gl_client_new(const char *endpoint, char *err, size_t errlen)
{
    return gl_client_new_keys(endpoint, NULL, err, errlen);
}

/* Sets the CURVE client options from the two key files. Returns 0 or -1 with err set. */
static int set_curve(void *sock, const gl_client_keys *keys, char *err, size_t errlen)
{
    keyfile_keys mine, server;
    gl_error e;
    if ((keys->key_file == NULL) != (keys->server_key_file == NULL)) {
        snprintf(err, errlen, "CURVE needs both this client's key file and the daemon's "
                 "public key file (--key and --server-key)");
        return -1;
    }
    if (keyfile_read(keys->key_file, true, &mine, &e) != 0
        || keyfile_read(keys->server_key_file, false, &server, &e) != 0) {
        snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server.public_key, KEYFILE_Z85_LEN + 1) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, mine.public_key, KEYFILE_Z85_LEN + 1) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, mine.secret_key, KEYFILE_Z85_LEN + 1)
               != 0) {
        snprintf(err, errlen, "cannot use CURVE keys: %s (is libzmq built with CURVE?)",
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

void gl_client_keys_from_env(gl_client_keys *k)
{
    const char *key = getenv(GL_CLIENT_KEY_ENV), *server = getenv(GL_CLIENT_SERVER_KEY_ENV);
    k->key_file = key != NULL && key[0] != '\0' ? key : NULL;
    k->server_key_file = server != NULL && server[0] != '\0' ? server : NULL;
}

gl_client *gl_client_new_env_keys(const char *endpoint, char *err, size_t errlen)
{
    gl_client_keys k;
    gl_client_keys_from_env(&k);
    return gl_client_new_keys(endpoint, &k, err, errlen);
}

static gl_client *client_open(void *ctx, const char *endpoint, const gl_client_keys *keys,
                              char *err, size_t errlen);

gl_client *gl_client_new_keys(const char *endpoint, const gl_client_keys *keys, char *err,
                              size_t errlen)
{
    return client_open(NULL, endpoint, keys, err, errlen);
}

gl_client *gl_client_new_in(void *zmq_ctx, const char *endpoint, const gl_client_keys *keys,
                            char *err, size_t errlen)
{
    if (zmq_ctx == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "no ZeroMQ context given");
        }
        return NULL;
    }
    return client_open(zmq_ctx, endpoint, keys, err, errlen);
}

void *gl_client_socket(gl_client *c)
{
    return c->sock;
}

static gl_client *client_open(void *ctx, const char *endpoint, const gl_client_keys *keys,
                              char *err, size_t errlen)
{
    gl_client *c = NULL;
    char       scratch[1];
    int        linger = 0;
    int64_t    maxmsg = GL_CLIENT_MAX_REPLY;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (endpoint == NULL || endpoint[0] == '\0') {
        if (err != NULL) {
            snprintf(err, errlen, "no endpoint given");
        }
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto oom;
    }
    c->next_rid = 1;
    c->endpoint = strdup(endpoint);
    if (c->endpoint == NULL) {
        goto oom;
    }
    c->own_ctx = ctx == NULL;
    c->ctx = ctx != NULL ? ctx : zmq_ctx_new();
    if (c->ctx == NULL) {
        goto zmq_fail;
    }
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->sock == NULL) {
        goto zmq_fail;
    }
    if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0
        || zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0) {
        goto zmq_fail;
    }
    if (keys != NULL && (keys->key_file != NULL || keys->server_key_file != NULL)) {
        if (set_curve(c->sock, keys, err != NULL ? err : scratch,
                      err != NULL ? errlen : sizeof scratch) != 0) {
            goto fail;
        }
        c->curve = true;
    }
    if (zmq_connect(c->sock, endpoint) != 0) {
        if (err != NULL) {
            snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        }
        goto fail;
    }
    return c;

oom:
    if (err != NULL) {
        snprintf(err, errlen, "out of memory");
    }
    goto fail;
zmq_fail:
    if (err != NULL) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
    }
fail:
    gl_client_destroy(&c);
    return NULL;
}

void gl_client_destroy(gl_client **c)
{
    if (c == NULL || *c == NULL) {
        return;
    }
    if ((*c)->sock != NULL) {
        zmq_close((*c)->sock);
    }
    if ((*c)->ctx != NULL && (*c)->own_ctx) {
        zmq_ctx_term((*c)->ctx);
    }
    free((*c)->endpoint);
    free(*c);
    *c = NULL;
}

const char *gl_client_endpoint(const gl_client *c)
{
    return c->endpoint;
}

/* Packs body with "rid": rid added (an existing "rid" dropped) into out; no body packs
 * just {"rid": rid}. The body's other pairs are copied as they are, byte for byte, not
 * unpacked and packed again. Returns 0, or GL_EINVALID when body is not exactly one map,
 * GL_EINTERNAL when memory ran out. */
static int body_with_rid(const void *body, size_t len, uint64_t rid, msgpack_sbuffer *out,
                         gl_error *err)
{
    msgpack_packer pk;
    mp_in          in = mp_in_of(body, body != NULL ? len : 0);
    uint32_t       n = 0, keep = 0;

    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (body != NULL && len > 0) {
        n = mp_in_map(&in);
        for (uint32_t i = 0; i < n && !in.bad; i++) {   /* count and check */
            keep += !gl_str_eq(mp_in_key(&in), "rid");
            mp_in_skip(&in);
        }
        if (in.bad || in.p != in.end) {
            return gl_error_set(err, GL_EINVALID, "body",
                                "the request body is not one MessagePack map");
        }
        in = mp_in_of(body, len);
        mp_in_map(&in);
    }
    if (msgpack_pack_map(&pk, keep + 1) != 0) {
        goto oom;
    }
    for (uint32_t i = 0; i < n; i++) {   /* copy */
        const unsigned char *pair = in.p;
        bool rid_key = gl_str_eq(mp_in_key(&in), "rid");

        mp_in_skip(&in);
        if (!rid_key && msgpack_sbuffer_write(out, (const char *)pair,
                                              (size_t)(in.p - pair)) != 0) {
            goto oom;
        }
    }
    if (mp_pack_cstr(&pk, "rid") != 0 || msgpack_pack_uint64(&pk, rid) != 0) {
        goto oom;
    }
    return 0;
oom:
    return gl_error_set(err, GL_EINTERNAL, NULL, "out of memory packing a request");
}

/* Sends the four client frames. The first frame goes with ZMQ_DONTWAIT so a full queue
 * (nobody reading) fails at once instead of blocking; once it is accepted, ZeroMQ
 * takes the rest of the multipart message atomically. */
static int send_frames(gl_client *c, const char *service, const void *body, size_t len,
                       gl_error *err)
{
    if (zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN) {
            return gl_error_set(err, GL_EUNAVAILABLE, NULL,
                                "cannot queue a request to %s: too many are waiting; "
                                "is gridlined running?%s", c->endpoint, c->curve ?
                                " (and does it know this client's public key?)" : "");
        }
        goto fail;
    }
    if (zmq_send(c->sock, MDP_CLIENT, strlen(MDP_CLIENT), ZMQ_SNDMORE) < 0
        || zmq_send(c->sock, service, strlen(service), ZMQ_SNDMORE) < 0
        || zmq_send(c->sock, body, len, 0) < 0) {
        goto fail;
    }
    return 0;
fail:
    return gl_error_set(err, GL_EINTERNAL, NULL, "cannot send to %s: %s", c->endpoint,
                        zmq_strerror(errno));
}

int gl_client_send(gl_client *c, const char *service, const void *body, size_t len,
                   uint64_t *rid, gl_error *err)
{
    msgpack_sbuffer sb;
    uint64_t        r = c->next_rid;
    int             rc;

    gl_error_clear(err);
    if (service == NULL || service[0] == '\0' || strlen(service) > MDP_MAX_SERVICE) {
        return gl_error_set(err, GL_EINVALID, "service", "a service name is 1-%d bytes",
                            MDP_MAX_SERVICE);
    }
    msgpack_sbuffer_init(&sb);
    rc = body_with_rid(body, len, r, &sb, err);
    if (rc == 0) {
        rc = send_frames(c, service, sb.data, sb.size, err);
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        c->next_rid++;
        if (rid != NULL) {
            *rid = r;
        }
    }
    return rc;
}

/* Waits until the socket is readable or the deadline (< 0: none) passes, riding out
 * signals. Returns 1 when readable, 0 on timeout, -1 on a ZeroMQ failure. */
static int wait_readable(gl_client *c, int64_t deadline)
{
    zmq_pollitem_t item = { .socket = c->sock, .events = ZMQ_POLLIN };

    for (;;) {
        long wait = -1;
        int  n;

        if (deadline >= 0) {
            int64_t left = deadline - now_ms();

            wait = left > 0 ? (long)left : 0;
        }
        n = zmq_poll(&item, 1, wait);
        if (n > 0) {
            return 1;
        }
        if (n == 0) {
            if (deadline < 0 || now_ms() < deadline) {
                continue;
            }
            return 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

/* Reads one whole message (all its parts, so a bad one never desynchronises the
 * stream) and checks its MDP client framing. On 0, *service is a NUL-terminated copy of
 * the service frame and *body a malloc'd copy of the body, both the caller's to free.
 * Returns 0, GL_EUNAVAILABLE (nothing before deadline), GL_EBAD_REQUEST, GL_EINTERNAL. */
static int recv_frames(gl_client *c, int64_t deadline, char **service, char **body,
                       size_t *body_len, gl_error *err)
{
    zmq_msg_t parts[GL_CLIENT_MAX_FRAMES];
    size_t    n = 0;
    bool      too_many = false;
    size_t    first = 0;
    int       more = 1;
    int       rc;

    *service = NULL;
    *body = NULL;
    *body_len = 0;
    rc = wait_readable(c, deadline);
    if (rc == 0) {
        return GL_EUNAVAILABLE;
    }
    if (rc < 0) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "cannot poll the socket: %s",
                            zmq_strerror(errno));
    }
    while (more) {
        zmq_msg_t  spare;
        zmq_msg_t *m = n < GL_CLIENT_MAX_FRAMES ? &parts[n] : &spare;

        zmq_msg_init(m);
        if (zmq_msg_recv(m, c->sock, 0) < 0) {
            zmq_msg_close(m);
            if (errno == EINTR) {
                continue;
            }
            rc = gl_error_set(err, GL_EINTERNAL, NULL, "cannot receive from %s: %s",
                              c->endpoint, zmq_strerror(errno));
            goto done;
        }
        more = zmq_msg_more(m);
        if (m == &spare) {
            too_many = true;
            zmq_msg_close(m);
        } else {
            n++;
        }
    }
    if (n > 0 && zmq_msg_size(&parts[0]) == 0) {
        first = 1;
    }
    if (too_many || n - first != 3) {
        rc = gl_error_set(err, GL_EBAD_REQUEST, NULL,
                          "malformed reply from %s: expected frames \"\", \"%s\", service, body",
                          c->endpoint, MDP_CLIENT);
        goto done;
    }
    if (zmq_msg_size(&parts[first]) != strlen(MDP_CLIENT)
        || memcmp(zmq_msg_data(&parts[first]), MDP_CLIENT, strlen(MDP_CLIENT)) != 0) {
        rc = gl_error_set(err, GL_EBAD_REQUEST, NULL,
                          "malformed reply from %s: wrong protocol header: expected %s",
                          c->endpoint, MDP_CLIENT);
        goto done;
    }
    *service = strndup(zmq_msg_data(&parts[first + 1]), zmq_msg_size(&parts[first + 1]));
    *body_len = zmq_msg_size(&parts[first + 2]);
    /* One byte more, so an empty body still gets a real allocation. */
    *body = malloc(*body_len + 1);
    if (*service == NULL || *body == NULL) {
        free(*service);
        free(*body);
        *service = NULL;
        *body = NULL;
        *body_len = 0;
        rc = gl_error_set(err, GL_EINTERNAL, NULL, "out of memory reading a reply");
        goto done;
    }
    memcpy(*body, zmq_msg_data(&parts[first + 2]), *body_len);
    (*body)[*body_len] = '\0';
    rc = 0;
done:
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&parts[i]);
    }
    return rc;
}

/* The GL_E* code for a wire error name; GL_EINTERNAL for a name this client does not
 * know (a newer daemon's). */
static int code_from_name(gl_str name)
{
    for (int code = GL_EBAD_REQUEST; code >= GL_EINTERNAL; code--) {
        if (gl_str_eq(name, gl_error_name(code))) {
            return code;
        }
    }
    return GL_EINTERNAL;
}

static void copy_str(char *dst, size_t cap, gl_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;

    if (n > 0) {
        memcpy(dst, s.p, n);
    }
    dst[n] = '\0';
}

/* The "error" map of a refusal: its code, field and message (other keys skipped). */
static void read_error(mp_in *in, gl_str *code, gl_str *field, gl_str *message)
{
    uint32_t n = mp_in_map(in);

    for (uint32_t i = 0; i < n && !in->bad; i++) {
        gl_str  key = mp_in_key(in);
        gl_str *slot = gl_str_eq(key, "code")      ? code
                       : gl_str_eq(key, "field")   ? field
                       : gl_str_eq(key, "message") ? message
                                                   : NULL;

        if (slot != NULL && slot->p == NULL && mp_in_next_is_str(in)) {
            *slot = mp_in_str(in);
        } else {
            mp_in_skip(in);
        }
    }
}

/* Reads "ok", "error" and "rid" from a reply body. Sets *has_rid and *rid, and *answered
 * when the body is a well-formed reply (so a daemon's own bad_request can be told from
 * bytes that are not a reply at all). Returns 0 for ok: true, the daemon's code (err
 * filled) for ok: false, GL_EBAD_REQUEST when the body is not such a map. */
static int reply_parse(gl_client *c, const char *body, size_t len, bool *has_rid,
                       uint64_t *rid, bool *answered, gl_error *err)
{
    /* Read in place, without an object tree: replies carry whole cases, and a bench
     * client reads tens of thousands a second. The guard stays: callers unpack the body
     * with msgpack-c, which must not be made to allocate what a few bytes declare. */
    const char *why = NULL;
    mp_in       in = mp_in_of(body, len);
    bool        guarded = mp_guard_check(body, len, &reply_limits, &why) == 0;
    uint32_t    n = guarded ? mp_in_map(&in) : 0;
    bool     seen_rid = false, seen_ok = false, seen_error = false;
    bool     has_ok = false, ok = false, has_error = false;
    gl_str   code = GL_STR_NULL, field = GL_STR_NULL, message = GL_STR_NULL;
    int      rc;

    *has_rid = false;
    *rid = 0;
    *answered = false;
    /* The first of each key counts, as a look-up would find it. */
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        gl_str key = mp_in_key(&in);

        if (!seen_rid && gl_str_eq(key, "rid")) {
            seen_rid = true;
            if (mp_in_next_is_uint(&in)) {
                *has_rid = true;
                *rid = mp_in_uint(&in);
                continue;
            }
        } else if (!seen_ok && gl_str_eq(key, "ok")) {
            seen_ok = true;
            if (mp_in_next_is_bool(&in)) {
                has_ok = true;
                ok = mp_in_bool(&in);
                continue;
            }
        } else if (!seen_error && gl_str_eq(key, "error")) {
            seen_error = true;
            if (mp_in_next_is_map(&in)) {
                has_error = true;
                read_error(&in, &code, &field, &message);
                continue;
            }
        }
        mp_in_skip(&in);
    }
    if (!guarded || in.bad || in.p != in.end) {
        *has_rid = false;
        *rid = 0;
        return gl_error_set(err, GL_EBAD_REQUEST, NULL,
                            "malformed reply from %s: the body is not a MessagePack map%s%s",
                            c->endpoint, why != NULL ? ": " : "", why != NULL ? why : "");
    }
    if (!has_ok) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL,
                            "malformed reply from %s: no boolean \"ok\"", c->endpoint);
    }
    if (ok) {
        *answered = true;
        return 0;
    }
    if (!has_error) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL,
                            "malformed reply from %s: \"ok\" is false but there is no "
                            "\"error\" map", c->endpoint);
    }
    *answered = true;
    rc = code_from_name(code);
    if (err != NULL) {
        err->code = rc;
        copy_str(err->field, sizeof(err->field), field);
        copy_str(err->message, sizeof(err->message), message);
        if (!gl_str_eq(code, gl_error_name(rc))) {
            /* A code this client does not know: keep its name in sight. */
            char   prefix[48];
            size_t k, keep;

            snprintf(prefix, sizeof(prefix), "[%.*s] ", (int)(code.n > 40 ? 40 : code.n),
                     code.p != NULL ? code.p : "");
            k = strlen(prefix);
            keep = strlen(err->message);
            if (keep > sizeof(err->message) - 1 - k) {
                keep = sizeof(err->message) - 1 - k;
            }
            memmove(err->message + k, err->message, keep);
            memcpy(err->message, prefix, k);
            err->message[k + keep] = '\0';
        }
    }
    return rc;
}

/* Converts a timeout in ms to a deadline on the monotonic clock; < 0 stays "none". */
static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* One reply from the socket, parsed. The common tail of gl_client_recv and
 * gl_client_call; *service is the caller's to free when not NULL. */
static int recv_reply(gl_client *c, int64_t deadline, int timeout_ms, char **service,
                      bool *has_rid, uint64_t *rid, char **reply, size_t *reply_len,
                      gl_error *err)
{
    char  *body = NULL;
    size_t len = 0;
    bool   answered;
    int    rc;

    *has_rid = false;
    *rid = 0;
    rc = recv_frames(c, deadline, service, &body, &len, err);
    if (rc == GL_EUNAVAILABLE) {
        return gl_error_set(err, GL_EUNAVAILABLE, NULL,
                            "no reply from %s within %d ms: is gridlined running?%s",
                            c->endpoint, timeout_ms, c->curve ? " (and does it know this "
                            "client's public key, and is --server-key its key?)" : "");
    }
    if (rc != 0) {
        return rc;
    }
    rc = reply_parse(c, body, len, has_rid, rid, &answered, err);
    if (!answered) {
        free(body);
        free(*service);
        *service = NULL;
        return rc;
    }
    *reply = body;
    if (reply_len != NULL) {
        *reply_len = len;
    }
    return rc;
}

int gl_client_recv(gl_client *c, int timeout_ms, uint64_t *rid, char **reply,
                   size_t *reply_len, gl_error *err)
{
    char    *service = NULL;
    bool     has_rid;
    uint64_t r;
    int      rc;

    gl_error_clear(err);
    *reply = NULL;
    if (reply_len != NULL) {
        *reply_len = 0;
    }
    rc = recv_reply(c, deadline_of(timeout_ms), timeout_ms, &service, &has_rid, &r, reply,
                    reply_len, err);
    free(service);
    if (rid != NULL) {
        *rid = r;
    }
    return rc;
}

int gl_client_call(gl_client *c, const char *service, const void *body, size_t len,
                   int timeout_ms, char **reply, size_t *reply_len, gl_error *err)
{
    uint64_t want;
    int64_t  deadline;
    int      rc;

    *reply = NULL;
    if (reply_len != NULL) {
        *reply_len = 0;
    }
    rc = gl_client_send(c, service, body, len, &want, err);
    if (rc != 0) {
        return rc;
    }
    deadline = deadline_of(timeout_ms);
    for (;;) {
        char    *got_service = NULL;
        bool     has_rid;
        uint64_t rid;

        gl_error_clear(err);
        rc = recv_reply(c, deadline, timeout_ms, &got_service, &has_rid, &rid, reply,
                        reply_len, err);
        if (*reply == NULL) {
            free(got_service);
            return rc;
        }
        /* A reply without a rid cannot be matched; if it is a refusal, the daemon most
         * likely could not read the request far enough to find our rid, so it is about
         * this call. A success without one is a daemon that does not echo rid. */
        if (has_rid ? rid == want : rc != 0) {
            bool same = strcmp(got_service, service) == 0;

            free(got_service);
            if (!same) {
                free(*reply);
                *reply = NULL;
                if (reply_len != NULL) {
                    *reply_len = 0;
                }
                return gl_error_set(err, GL_EBAD_REQUEST, NULL,
                                    "malformed reply from %s: it answers another service",
                                    c->endpoint);
            }
            return rc;
        }
        free(got_service);
        free(*reply);
        *reply = NULL;
        if (reply_len != NULL) {
            *reply_len = 0;
        }
        if (!has_rid) {
            return gl_error_set(err, GL_EBAD_REQUEST, NULL,
                                "malformed reply from %s: it carries no \"rid\"", c->endpoint);
        }
        /* Otherwise a late answer to an earlier call that timed out: drop it. */
    }
}

int gl_client_mmi(gl_client *c, const char *service_name, int timeout_ms)
{
    int64_t deadline;
    int     rc;

    rc = send_frames(c, GL_CLIENT_MMI_SERVICE, service_name, strlen(service_name), NULL);
    if (rc != 0) {
        return rc;
    }
    deadline = deadline_of(timeout_ms);
    for (;;) {
        char  *service = NULL;
        char  *body = NULL;
        size_t len = 0;
        bool   mmi;

        rc = recv_frames(c, deadline, &service, &body, &len, NULL);
        if (rc != 0) {
            return rc;
        }
        mmi = strcmp(service, GL_CLIENT_MMI_SERVICE) == 0;
        if (mmi) {
            rc = len == 3 && memcmp(body, "200", 3) == 0   ? 1
                 : len == 3 && memcmp(body, "404", 3) == 0 ? 0
                                                           : GL_EBAD_REQUEST;
        }
        free(service);
        free(body);
        if (mmi) {
            return rc;
        }
        /* A late answer to some earlier request: not ours. */
    }
}

int gl_client_request_id_format(char *out, size_t cap, uint64_t unix_ms, uint16_t rand_a,
                                uint64_t rand_b)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t          hi, lo;

    if (out == NULL || cap < GL_CLIENT_REQUEST_ID_LEN + 1) {
        if (out != NULL && cap > 0) {
            out[0] = '\0';
        }
        return -1;
    }
    hi = (unix_ms & 0xffffffffffffULL) << 16 | 0x7000u | (rand_a & 0xfffu);
    lo = 0x8000000000000000ULL | (rand_b & 0x3fffffffffffffffULL);
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(hi >> (60 - 4 * i)) & 0xf];
        out[16 + i] = hex[(lo >> (60 - 4 * i)) & 0xf];
    }
    out[GL_CLIENT_REQUEST_ID_LEN] = '\0';
    return 0;
}

int gl_client_request_id(char *out, size_t cap)
{
    unsigned char   raw[10];
    size_t          got = 0;
    struct timespec now;
    uint64_t        rand_b = 0;

    if (out == NULL || cap < GL_CLIENT_REQUEST_ID_LEN + 1) {
        return gl_client_request_id_format(out, cap, 0, 0, 0);
    }
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            out[0] = '\0';
            return -1;
        }
        got += (size_t)n;
    }
    for (size_t i = 2; i < sizeof(raw); i++) {
        rand_b = rand_b << 8 | raw[i];
    }
    clock_gettime(CLOCK_REALTIME, &now);
    return gl_client_request_id_format(out, cap,
                                       (uint64_t)now.tv_sec * 1000
                                           + (uint64_t)now.tv_nsec / 1000000,
                                       (uint16_t)(raw[0] << 8 | raw[1]), rand_b);
}

int gl_client_call_retry(gl_client *c, const char *service, const void *body, size_t len,
                         int timeout_ms, int attempts, char **reply, size_t *reply_len,
                         gl_error *err)
{
    long wait_ms = 100;
    int rc = GL_EUNAVAILABLE;
    for (int i = 0; i < (attempts > 0 ? attempts : 1); i++) {
        if (i > 0) {
            struct timespec pause = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
            nanosleep(&pause, NULL);
            wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
            if (reply != NULL && *reply != NULL) {
                free(*reply);   /* the answer of a refused try is not the caller's */
                *reply = NULL;
            }
        }
        rc = gl_client_call(c, service, body, len, timeout_ms, reply, reply_len, err);
        if (rc != GL_EUNAVAILABLE && rc != GL_EOVERLOADED) {
            break;
        }
    }
    return rc;
}
