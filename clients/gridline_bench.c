/*
 * gridline-bench: offers gridlined a load of case.create requests and reports how
 * many it acknowledged per second and how long they took.
 *
 * N threads, each with its own gl_client (a DEALER), keep W requests in flight: a new
 * one goes out as soon as a reply comes back, or, with --rate, when the schedule says
 * so. Replies are matched to requests by the rid gl_client adds, so they may come back
 * in any order. Every request_id is unique (the time, and random bits per run), so each
 * create registers a new case; the body uses the first category and the first
 * district/street/community/grid of the daemon's own catalogue, so it is valid against
 * any city.
 *
 * Latency is kept per request and sorted at the end, so percentiles are exact. With
 * --rate, it counts from when the request was due rather than when it was sent, so a
 * daemon that falls behind cannot hide the queueing it causes (coordinated omission).
 */
#include "gl_client.h"

#include "gl_error.h"
#include "mp_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define EXIT_FAILED 1
#define EXIT_USAGE  2

#define MAX_CLIENTS  1024
#define MAX_INFLIGHT 1000       /* ZeroMQ's default send queue per socket */
#define KNOWN_IDS    4096       /* ids of created cases a thread remembers for reads */

/* Error counters: the GL_E* codes by -code, then the failures that are not a reply. */
enum {
    ERR_TIMEOUT = 11,   /* no reply by the end of the drain */
    ERR_MALFORMED,      /* a reply that is not MDP or not a reply map */
    ERR_UNMATCHED,      /* a reply whose rid matches no request in flight */
    ERR_SEND,           /* the request could not be queued */
    ERR_COUNT
};

static const char usage_text[] =
    "usage: gridline-bench [--endpoint EP] [--clients N] [--inflight W] [--seconds S]\n"
    "                      [--rate R] [--mix-reads PCT] [--timeout MS]\n"
    "                      [--ids uuid7|counter|random]\n"
    "\n"
    "Offers gridlined a load of case.create requests and reports the acknowledged rate,\n"
    "the errors by code and the latency (p50, p99, max).\n"
    "\n"
    "  -e, --endpoint EP    the daemon (default: $GRIDLINE_ENDPOINT, else\n"
    "                       tcp://127.0.0.1:7310)\n"
    "  -c, --clients N      connections (default 8)\n"
    "  -T, --threads T      threads driving them, sharing one ZeroMQ I/O thread (default\n"
    "                       1: the bench shares the machine with the daemon, and one\n"
    "                       thread waiting on every connection costs it the least)\n"
    "  -w, --inflight W     requests each keeps in flight (default 16, at most 1000)\n"
    "  -s, --seconds S      how long to offer load (default 10)\n"
    "  -r, --rate R         requests offered per second over all clients, reads included\n"
    "                       (default 0: as fast as replies allow); latency then counts\n"
    "                       from when each request was due, so queueing behind a slow\n"
    "                       daemon shows\n"
    "  -m, --mix-reads PCT  this share of requests are case.get of a case created earlier\n"
    "                       in the run (default 0)\n"
    "  -t, --timeout MS     wait this long for the first catalog.get, and after S seconds\n"
    "                       for replies still due (default 5000); those that do not\n"
    "                       come count as 'timeout'\n"
    "  -d, --dispatch-sample N\n"
    "                       after the run, read the history of N acknowledged cases\n"
    "                       (spread over the run) and report how long each took from\n"
    "                       created to dispatched, by the daemon's clock (default 500;\n"
    "                       0: skip). Cases not dispatched within 10 s count as\n"
    "                       undispatched\n"
    "  -i, --ids KIND       how request_ids are made: uuid7 (default) as libgridline's\n"
    "                       gl_client_request_id makes them, time first, so every\n"
    "                       client's new ids sort after the ones before; counter: each\n"
    "                       connection its own prefix and counter, so eight clients add\n"
    "                       keys at eight places of the daemon's idempotency index;\n"
    "                       random: in random order, as UUIDv4s come, a place of their\n"
    "                       own for almost every create\n"
    "  -u, --random-ids     the same as --ids random\n"
    "  -h, --help           show this help\n"
    "\n"
    "The last line is for scripts:\n"
    "  bench: creates=N reads=N seconds=S rate=R/s p50_ms=X p99_ms=X max_ms=X errors=N\n"
    "         dispatch_p50_ms=X dispatch_p99_ms=X undispatched=N   (one line)\n"
    "A daemon with keys: $GRIDLINE_KEY and $GRIDLINE_SERVER_KEY name the key files.\n"
    "Exit status: 0 when the daemon acknowledged at least one create, 1 otherwise,\n"
    "2 bad usage.\n";

/* Set by SIGINT/SIGTERM so a run stopped early still reports. A signal handler can only
 * reach a global. */
static volatile sig_atomic_t stop_requested;

typedef enum { IDS_UUID7, IDS_COUNTER, IDS_RANDOM } bench_ids;

typedef struct {
    const char *endpoint;
    int         clients;
    int         threads;
    int         inflight;
    double      seconds;
    double      rate;
    int         mix_reads;
    int         timeout_ms;
    int         dispatch_sample;
    bench_ids   ids;
    uint16_t    run_bits;      /* 12 bits of run_id, in every uuid7 id of the run ... */
    uint16_t    run_bits2;     /* ... and 12 more */
    /* From the catalogue. */
    char       *category, *district, *street, *community, *grid;
    char        run_id[GL_CLIENT_REQUEST_ID_LEN + 1];
} bench_config;

typedef struct {
    uint64_t *v;
    size_t    n, cap;
} sample_list;

typedef struct {
    uint64_t rid;
    int64_t  started_ns;
    bool     used;
    bool     read;
} slot;

typedef struct {
    const bench_config *cfg;
    int                 index;
    pthread_barrier_t  *barrier;
    const int64_t      *start_ns, *end_ns;
    /* Results. */
    sample_list         create_lat, read_lat;   /* ns */
    uint64_t            creates, reads;
    uint64_t            errors[ERR_COUNT];
    int64_t             last_reply_ns;
    uint64_t            sample_ids[KNOWN_IDS];  /* created case ids, one every `stride` */
    size_t              n_sample_ids;
    char                setup_error[256];
} worker;

/* Created-to-dispatched times of a sample of cases, by the daemon's clock. */
typedef struct {
    sample_list lat;            /* ms, as ns for percentile_ms */
    uint64_t    undispatched;
    bool        ran;
} dispatch_result;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int sample_add(sample_list *s, uint64_t v)
{
    if (s->n == s->cap) {
        size_t    cap = s->cap == 0 ? 65536 : s->cap * 2;
        uint64_t *grown = realloc(s->v, cap * sizeof(*grown));

        if (grown == NULL) {
            return -1;
        }
        s->v = grown;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted v, in ms. */
static double percentile_ms(const sample_list *s, double p)
{
    size_t rank;

    if (s->n == 0) {
        return 0.0;
    }
    rank = (size_t)ceil(p * (double)s->n);
    rank = rank == 0 ? 0 : rank - 1;
    if (rank >= s->n) {
        rank = s->n - 1;
    }
    return (double)s->v[rank] / 1e6;
}

/* xorshift64: the read/create choice and the case to read need no more than this. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* ---- the catalogue ---- */

static char *dup_code(const msgpack_object *o)
{
    const msgpack_object *code = mp_map_get(o, "code");

    if (code == NULL || code->type != MSGPACK_OBJECT_STR || code->via.str.size == 0) {
        return NULL;
    }
    return strndup(code->via.str.ptr, code->via.str.size);
}

static const msgpack_object *first_of(const msgpack_object *o, const char *key)
{
    const msgpack_object *list = mp_map_get(o, key);

    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size == 0) {
        return NULL;
    }
    return &list->via.array.ptr[0];
}

/* Fetches the catalogue and picks the first category and the first place path. Returns
 * 0, or -1 with the reason printed. */
static int load_catalog(bench_config *cfg)
{
    gl_client            *c;
    gl_error              err;
    char                  msg[256];
    char                 *buf = NULL;
    size_t                len = 0, off = 0;
    msgpack_unpacked      u;
    const msgpack_object *district, *street = NULL, *community = NULL, *grid = NULL;
    int                   rc = -1;

    msgpack_unpacked_init(&u);
    c = gl_client_new_env_keys(cfg->endpoint, msg, sizeof(msg));
    if (c == NULL) {
        fprintf(stderr, "gridline-bench: %s\n", msg);
        goto done;
    }
    /* An empty map, 0x80: catalog.get takes no arguments. */
    if (gl_client_call(c, "catalog.get", "\x80", 1, cfg->timeout_ms, &buf, &len, &err) != 0) {
        fprintf(stderr, "gridline-bench: catalog.get: %s: %s\n", gl_error_name(err.code),
                err.message);
        goto done;
    }
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        fprintf(stderr, "gridline-bench: catalog.get: the reply could not be read\n");
        goto done;
    }
    district = first_of(&u.data, "places");
    if (district != NULL) {
        street = first_of(district, "streets");
    }
    if (street != NULL) {
        community = first_of(street, "communities");
    }
    if (community != NULL) {
        grid = first_of(community, "grids");
    }
    cfg->category = dup_code(first_of(&u.data, "categories"));
    cfg->district = dup_code(district);
    cfg->street = street != NULL ? dup_code(street) : NULL;
    cfg->community = community != NULL ? dup_code(community) : NULL;
    cfg->grid = grid != NULL ? dup_code(grid) : NULL;
    if (cfg->category == NULL || cfg->district == NULL) {
        fprintf(stderr, "gridline-bench: the catalogue has no category or no district to "
                        "build a case from\n");
        goto done;
    }
    rc = 0;
done:
    msgpack_unpacked_destroy(&u);
    free(buf);
    gl_client_destroy(&c);
    return rc;
}

/* ---- one connection's load ---- */

static int pack_create(msgpack_packer *pk, const bench_config *cfg, int thread, uint64_t n)
{
    char     request_id[128];
    uint32_t nloc = 1 + (cfg->street != NULL) + (cfg->community != NULL) + (cfg->grid != NULL);

    if (cfg->ids == IDS_UUID7) {
        /* The connection and its counter keep every id of the run distinct; 24 bits of
         * run_id (rand_a and the top of rand_b), those of two runs at once. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        gl_client_request_id_format(request_id, sizeof(request_id),
                                    (uint64_t)now.tv_sec * 1000
                                        + (uint64_t)now.tv_nsec / 1000000,
                                    cfg->run_bits,
                                    (uint64_t)cfg->run_bits2 << 50 | (uint64_t)thread << 40 | n);
    } else if (cfg->ids == IDS_RANDOM) {
        /* splitmix64's finaliser is a bijection: distinct (thread, n), distinct ids. */
        uint64_t h = ((uint64_t)thread << 48 | n) + 0x9e3779b97f4a7c15ULL;
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
        snprintf(request_id, sizeof(request_id), "%016" PRIx64 "-bench-%s", h, cfg->run_id);
    } else {
        snprintf(request_id, sizeof(request_id), "bench-%s-%d-%" PRIu64, cfg->run_id, thread, n);
    }
    if (msgpack_pack_map(pk, 7) != 0
        || mp_pack_cstr(pk, "request_id") != 0 || mp_pack_cstr(pk, request_id) != 0
        || mp_pack_cstr(pk, "channel") != 0 || mp_pack_cstr(pk, "hotline") != 0
        || mp_pack_cstr(pk, "category") != 0 || mp_pack_cstr(pk, cfg->category) != 0
        || mp_pack_cstr(pk, "urgency") != 0 || mp_pack_cstr(pk, "normal") != 0
        || mp_pack_cstr(pk, "title") != 0 || mp_pack_cstr(pk, "gridline-bench") != 0
        || mp_pack_cstr(pk, "description") != 0
        || mp_pack_cstr(pk, "Load test case from gridline-bench; safe to close.") != 0
        || mp_pack_cstr(pk, "location") != 0 || msgpack_pack_map(pk, nloc) != 0
        || mp_pack_cstr(pk, "district") != 0 || mp_pack_cstr(pk, cfg->district) != 0) {
        return -1;
    }
    if ((cfg->street != NULL
         && (mp_pack_cstr(pk, "street") != 0 || mp_pack_cstr(pk, cfg->street) != 0))
        || (cfg->community != NULL
            && (mp_pack_cstr(pk, "community") != 0 || mp_pack_cstr(pk, cfg->community) != 0))
        || (cfg->grid != NULL
            && (mp_pack_cstr(pk, "grid") != 0 || mp_pack_cstr(pk, cfg->grid) != 0))) {
        return -1;
    }
    return 0;
}

static int pack_get(msgpack_packer *pk, uint64_t id)
{
    if (msgpack_pack_map(pk, 1) != 0 || mp_pack_cstr(pk, "id") != 0
        || msgpack_pack_uint64(pk, id) != 0) {
        return -1;
    }
    return 0;
}

/* The id of the case in a create reply, or 0. */
static uint64_t reply_case_id(const char *buf, size_t len)
{
    msgpack_unpacked      u;
    size_t                off = 0;
    const msgpack_object *id = NULL;
    uint64_t              v = 0;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) {
        id = mp_map_get(mp_map_get(&u.data, "case"), "id");
    }
    if (id != NULL && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = id->via.u64;
    }
    msgpack_unpacked_destroy(&u);
    return v;
}

typedef struct {
    worker   *w;
    gl_client *client;
    slot     *slots;
    int       inflight;
    uint64_t  known[KNOWN_IDS];
    uint64_t  n_known;
    bool      oom;
} run_state;

/* Takes one reply (waiting up to timeout_ms) and accounts for it. Returns 1 when one
 * was handled, 0 when none came. */
static int take_reply(run_state *st, int timeout_ms)
{
    gl_error err;
    char    *buf = NULL;
    size_t   len = 0;
    uint64_t rid = 0;
    int      rc = gl_client_recv(st->client, timeout_ms, &rid, &buf, &len, &err);
    int64_t  now;
    slot    *s = NULL;

    if (buf == NULL && rc == GL_EUNAVAILABLE) {
        return 0;
    }
    now = now_ns();
    if (buf == NULL) {
        st->w->errors[rc == GL_EBAD_REQUEST ? ERR_MALFORMED : -GL_EINTERNAL]++;
        return 1;
    }
    for (int i = 0; i < st->w->cfg->inflight; i++) {
        if (st->slots[i].used && st->slots[i].rid == rid) {
            s = &st->slots[i];
            break;
        }
    }
    if (s == NULL) {
        /* Nothing in flight has this rid (a reply without rid, or a second reply): if it
         * answers a request of ours, that request will be counted as a timeout. */
        st->w->errors[ERR_UNMATCHED]++;
        free(buf);
        return 1;
    }
    s->used = false;
    st->inflight--;
    if (rc != 0) {
        st->w->errors[-rc > 0 && -rc < ERR_TIMEOUT ? -rc : -GL_EINTERNAL]++;
    } else if (s->read) {
        st->w->reads++;
        st->oom |= sample_add(&st->w->read_lat, (uint64_t)(now - s->started_ns)) != 0;
    } else {
        /* Every 16th id is kept, so the dispatch sample spreads over the whole run; with
         * a read mix, every id may be read back. Only those replies are read for the id:
         * the bench shares the cores with the daemon it measures. */
        bool sample = st->w->creates % 16 == 0 && st->w->n_sample_ids < KNOWN_IDS;
        uint64_t id = sample || st->w->cfg->mix_reads > 0 ? reply_case_id(buf, len) : 0;

        st->w->creates++;
        st->oom |= sample_add(&st->w->create_lat, (uint64_t)(now - s->started_ns)) != 0;
        if (id != 0) {
            st->known[st->n_known++ % KNOWN_IDS] = id;
            if (sample) {
                st->w->sample_ids[st->w->n_sample_ids++] = id;
            }
        }
        st->w->last_reply_ns = now;
    }
    free(buf);
    return 1;
}

/* Sends one request due at due_ns. Returns 0, or -1 when it could not be queued. */
static int send_one(run_state *st, msgpack_sbuffer *sb, uint64_t *seq, uint64_t *rnd,
                    int64_t due_ns)
{
    const bench_config *cfg = st->w->cfg;
    msgpack_packer      pk;
    gl_error            err;
    bool                read = false;
    uint64_t            rid;
    int                 rc;

    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (cfg->mix_reads > 0 && st->n_known > 0
        && (int)(next_random(rnd) % 100) < cfg->mix_reads) {
        uint64_t have = st->n_known < KNOWN_IDS ? st->n_known : KNOWN_IDS;

        read = true;
        rc = pack_get(&pk, st->known[next_random(rnd) % have]);
    } else {
        rc = pack_create(&pk, cfg, st->w->index, (*seq)++);
    }
    if (rc != 0) {
        st->oom = true;
        return -1;
    }
    rc = gl_client_send(st->client, read ? "case.get" : "case.create", sb->data, sb->size,
                        &rid, &err);
    if (rc != 0) {
        st->w->errors[ERR_SEND]++;
        return -1;
    }
    for (int i = 0; i < cfg->inflight; i++) {
        if (!st->slots[i].used) {
            st->slots[i] = (slot){ .rid = rid, .started_ns = due_ns, .used = true, .read = read };
            break;
        }
    }
    st->inflight++;
    return 0;
}

/* One thread's share of the clients: workers[first .. first + n). */
typedef struct {
    worker            *workers;
    int                first, n;
    void              *zmq_ctx;   /* shared by every client of the run */
    pthread_barrier_t *barrier;
} driver;

/* Sends what client st may send now. Returns when its next request is due (INT64_MAX:
 * when a reply frees a slot). */
static int64_t offer(run_state *st, msgpack_sbuffer *sb, uint64_t *seq, uint64_t *rnd,
                     int64_t interval, int64_t *next_at)
{
    const bench_config *cfg = st->w->cfg;
    int64_t now = now_ns();
    while (st->inflight < cfg->inflight && (interval == 0 || *next_at <= now)) {
        if (send_one(st, sb, seq, rnd, interval == 0 ? now_ns() : *next_at) != 0) {
            break;
        }
        *next_at += interval;
    }
    return interval > 0 && st->inflight < cfg->inflight ? *next_at : INT64_MAX;
}

/* What offer needs for each of a driver's clients. */
typedef struct {
    msgpack_sbuffer *sb;
    uint64_t        *seq, *rnd;
    int64_t         *next_at;
    int64_t          interval;
    int64_t          end;        /* no new request from this time on */
} refill;

/* Waits up to wait_ns for replies on any of the n clients and takes every one that has
 * come. With rf, each answered request is replaced at once (a client keeps its W in
 * flight), not after the replies of every client are read. Returns how many were
 * taken. */
static int take_replies(run_state **st, zmq_pollitem_t *items, int n, int64_t wait_ns,
                        const refill *rf)
{
    int taken = 0;
    for (int i = 0; i < n; i++) {
        items[i].revents = 0;
    }
    /* zmq_poll counts in milliseconds: a shorter wait polls and then sleeps. */
    if (zmq_poll(items, n, wait_ns >= 1000000 ? (long)(wait_ns / 1000000) : 0) == 0
        && wait_ns > 0 && wait_ns < 1000000) {
        struct timespec pause = { 0, (long)wait_ns };
        nanosleep(&pause, NULL);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if ((items[i].revents & ZMQ_POLLIN) == 0) {
            continue;
        }
        while (take_reply(st[i], 0) == 1) {
            taken++;
            if (rf != NULL && !stop_requested && now_ns() < rf->end) {
                offer(st[i], rf->sb, &rf->seq[i], &rf->rnd[i], rf->interval, &rf->next_at[i]);
            }
        }
    }
    return taken;
}

static void *driver_run(void *arg)
{
    driver          *d = arg;
    const bench_config *cfg = d->workers[d->first].cfg;
    run_state      **st = calloc((size_t)d->n, sizeof(*st));
    zmq_pollitem_t  *items = calloc((size_t)d->n, sizeof(*items));
    uint64_t        *seq = calloc((size_t)d->n, sizeof(*seq));
    uint64_t        *rnd = calloc((size_t)d->n, sizeof(*rnd));
    int64_t         *next_at = calloc((size_t)d->n, sizeof(*next_at));
    msgpack_sbuffer  sb;
    /* Each client offers its share of the rate, staggered so they do not fire together. */
    int64_t          interval = cfg->rate > 0 ? (int64_t)(1e9 * cfg->clients / cfg->rate) : 0;
    bool             ready = st != NULL && items != NULL && seq != NULL && rnd != NULL
                             && next_at != NULL;
    int64_t          end, drain_end;

    msgpack_sbuffer_init(&sb);
    for (int i = 0; ready && i < d->n; i++) {
        worker *w = &d->workers[d->first + i];
        st[i] = calloc(1, sizeof(*st[i]));
        if (st[i] == NULL) {
            snprintf(w->setup_error, sizeof(w->setup_error), "out of memory");
            ready = false;
            break;
        }
        st[i]->w = w;
        st[i]->slots = calloc((size_t)cfg->inflight, sizeof(*st[i]->slots));
        gl_client_keys keys;
        gl_client_keys_from_env(&keys);
        st[i]->client = gl_client_new_in(d->zmq_ctx, cfg->endpoint, &keys, w->setup_error,
                                         sizeof(w->setup_error));
        if (st[i]->slots == NULL) {
            snprintf(w->setup_error, sizeof(w->setup_error), "out of memory");
        }
        if (st[i]->slots == NULL || st[i]->client == NULL) {
            ready = false;
            break;
        }
        items[i] = (zmq_pollitem_t){ .socket = gl_client_socket(st[i]->client),
                                     .events = ZMQ_POLLIN };
        rnd[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->index + 1);
    }
    if (!ready && d->workers[d->first].setup_error[0] == '\0') {
        snprintf(d->workers[d->first].setup_error, sizeof(d->workers[d->first].setup_error),
                 "out of memory");
    }
    /* Everyone waits, ready or not, so the main thread never waits for ever. */
    pthread_barrier_wait(d->barrier);
    pthread_barrier_wait(d->barrier);
    if (!ready) {
        goto done;
    }
    end = *d->workers[d->first].end_ns;
    refill fill = { &sb, seq, rnd, next_at, interval, end };
    for (int i = 0; i < d->n; i++) {
        next_at[i] = *d->workers[d->first].start_ns
                     + interval * d->workers[d->first + i].index / cfg->clients;
    }
    for (;;) {
        int64_t now = now_ns(), due = end;
        bool oom = false;
        if (stop_requested || now >= end) {
            break;
        }
        for (int i = 0; i < d->n; i++) {
            int64_t at = offer(st[i], &sb, &seq[i], &rnd[i], interval, &next_at[i]);
            due = at < due ? at : due;
            oom |= st[i]->oom;
        }
        if (oom) {
            break;
        }
        int64_t wait_ns = due - now_ns();
        if (wait_ns > 100000000) {
            wait_ns = 100000000;   /* look at the stop flag now and then */
        }
        take_replies(st, items, d->n, wait_ns > 0 ? wait_ns : 0, &fill);
    }
    drain_end = now_ns() + (int64_t)cfg->timeout_ms * 1000000;
    for (;;) {
        int left_inflight = 0;
        for (int i = 0; i < d->n; i++) {
            left_inflight += st[i]->oom ? 0 : st[i]->inflight;
        }
        int64_t left = drain_end - now_ns();
        if (left_inflight == 0 || left <= 0) {
            break;
        }
        take_replies(st, items, d->n, left > 100000000 ? 100000000 : left, NULL);
    }
    for (int i = 0; i < d->n; i++) {
        st[i]->w->errors[ERR_TIMEOUT] += (uint64_t)st[i]->inflight;
        if (st[i]->oom) {
            snprintf(st[i]->w->setup_error, sizeof(st[i]->w->setup_error),
                     "out of memory during the run");
        }
    }
done:
    for (int i = 0; st != NULL && i < d->n; i++) {
        if (st[i] != NULL) {
            gl_client_destroy(&st[i]->client);
            free(st[i]->slots);
            free(st[i]);
        }
    }
    free(st);
    free(items);
    free(seq);
    free(rnd);
    free(next_at);
    msgpack_sbuffer_destroy(&sb);
    return NULL;
}

/* ---- dispatch latency ---- */

/* The `at` of the first event of type `type` in a case.get history reply, or -1. */
static int64_t event_at(const msgpack_object *history, const char *type)
{
    if (history == NULL || history->type != MSGPACK_OBJECT_ARRAY) {
        return -1;
    }
    for (uint32_t i = 0; i < history->via.array.size; i++) {
        const msgpack_object *e = &history->via.array.ptr[i];
        const msgpack_object *t = mp_map_get(e, "type"), *at = mp_map_get(e, "at");
        if (t != NULL && t->type == MSGPACK_OBJECT_STR && at != NULL
            && at->type == MSGPACK_OBJECT_POSITIVE_INTEGER
            && gl_str_eq(gl_str_of(t->via.str.ptr, t->via.str.size), type)) {
            return (int64_t)at->via.u64;
        }
    }
    return -1;
}

/* Reads case id's history; sets *ms to created->dispatched, or returns 1 when the case
 * is not dispatched yet, -1 on error. */
static int dispatch_time(gl_client *c, uint64_t id, int timeout_ms, int64_t *ms)
{
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    gl_error        err;
    char           *buf = NULL;
    size_t          len = 0;
    int             rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    mp_pack_cstr(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    mp_pack_cstr(&pk, "history");
    msgpack_pack_true(&pk);
    rc = gl_client_call(c, "case.get", sb.data, sb.size, timeout_ms, &buf, &len, &err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    rc = -1;
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *h = mp_map_get(&u.data, "history");
        int64_t created = event_at(h, "created"), dispatched = event_at(h, "dispatched");
        if (created >= 0 && dispatched >= 0) {
            *ms = dispatched - created;
            rc = 0;
        } else if (created >= 0) {
            rc = 1;
        }
    }
    msgpack_unpacked_destroy(&u);
    free(buf);
    return rc;
}

static void measure_dispatch(const bench_config *cfg, const worker *workers,
                             dispatch_result *out)
{
    size_t total = 0;
    memset(out, 0, sizeof *out);
    if (cfg->dispatch_sample <= 0) {
        return;
    }
    for (int i = 0; i < cfg->clients; i++) {
        total += workers[i].n_sample_ids;
    }
    if (total == 0) {
        return;
    }
    char err[256];
    gl_client *c = gl_client_new_env_keys(cfg->endpoint, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "gridline-bench: %s\n", err);
        return;
    }
    out->ran = true;
    size_t want = (size_t)cfg->dispatch_sample < total ? (size_t)cfg->dispatch_sample : total;
    int64_t give_up = now_ns() + 10LL * 1000000000;
    for (size_t k = 0; k < want; k++) {
        /* Evenly over all the ids the threads kept. */
        size_t pos = k * total / want, w = 0;
        while (pos >= workers[w].n_sample_ids) {
            pos -= workers[w].n_sample_ids;
            w++;
        }
        uint64_t id = workers[w].sample_ids[pos];
        int64_t ms = 0;
        int rc;
        while ((rc = dispatch_time(c, id, cfg->timeout_ms, &ms)) == 1 && now_ns() < give_up) {
            struct timespec pause = { 0, 20000000 };
            nanosleep(&pause, NULL);
        }
        if (rc == 0) {
            sample_add(&out->lat, (uint64_t)(ms < 0 ? 0 : ms) * 1000000);
        } else {
            out->undispatched++;
        }
    }
    gl_client_destroy(&c);
    if (out->lat.n > 0) {
        qsort(out->lat.v, out->lat.n, sizeof(*out->lat.v), cmp_u64);
    }
}

/* ---- the report ---- */

static const char *error_name(int i)
{
    switch (i) {
    case ERR_TIMEOUT:   return "timeout";
    case ERR_MALFORMED: return "malformed_reply";
    case ERR_UNMATCHED: return "unmatched_reply";
    case ERR_SEND:      return "send_failed";
    default:            return gl_error_name(-i);
    }
}

static int merge_samples(sample_list *all, const sample_list *part)
{
    if (part->n == 0) {
        return 0;
    }
    if (all->n + part->n > all->cap) {
        size_t    cap = all->n + part->n;
        uint64_t *grown = realloc(all->v, cap * sizeof(*grown));

        if (grown == NULL) {
            return -1;
        }
        all->v = grown;
        all->cap = cap;
    }
    memcpy(all->v + all->n, part->v, part->n * sizeof(*part->v));
    all->n += part->n;
    return 0;
}

/* Prints the totals and the machine-readable last line. Returns 0, or -1 when nothing
 * was acknowledged or stdout failed. */
static int report(const bench_config *cfg, worker *workers, int64_t start, int64_t stopped,
                  const dispatch_result *d)
{
    sample_list creates = { 0 }, reads = { 0 };
    uint64_t    errors[ERR_COUNT] = { 0 };
    uint64_t    n_creates = 0, n_reads = 0, n_errors = 0;
    int64_t     last = stopped;
    double      seconds;
    int         rc = -1;

    for (int i = 0; i < cfg->clients; i++) {
        if (merge_samples(&creates, &workers[i].create_lat) != 0
            || merge_samples(&reads, &workers[i].read_lat) != 0) {
            fprintf(stderr, "gridline-bench: out of memory for the report\n");
            goto done;
        }
        n_creates += workers[i].creates;
        n_reads += workers[i].reads;
        for (int e = 0; e < ERR_COUNT; e++) {
            errors[e] += workers[i].errors[e];
            n_errors += workers[i].errors[e];
        }
        if (workers[i].last_reply_ns > last) {
            last = workers[i].last_reply_ns;
        }
    }
    /* The load ran until the send window closed, and until the last acknowledgement when
     * replies trailed after it. */
    seconds = (double)(last - start) / 1e9;
    if (seconds <= 0.0) {
        seconds = 1e-9;
    }
    if (creates.n > 0) {
        qsort(creates.v, creates.n, sizeof(*creates.v), cmp_u64);
    }
    if (reads.n > 0) {
        qsort(reads.v, reads.n, sizeof(*reads.v), cmp_u64);
    }

    printf("creates: %" PRIu64 " acknowledged in %.2f s = %.1f/s\n", n_creates, seconds,
           (double)n_creates / seconds);
    printf("create latency ms: p50 %.3f  p99 %.3f  max %.3f\n", percentile_ms(&creates, 0.50),
           percentile_ms(&creates, 0.99), creates.n > 0 ? (double)creates.v[creates.n - 1] / 1e6 : 0.0);
    if (cfg->mix_reads > 0) {
        printf("reads: %" PRIu64 " in %.2f s = %.1f/s\n", n_reads, seconds,
               (double)n_reads / seconds);
        printf("read latency ms: p50 %.3f  p99 %.3f  max %.3f\n", percentile_ms(&reads, 0.50),
               percentile_ms(&reads, 0.99), reads.n > 0 ? (double)reads.v[reads.n - 1] / 1e6 : 0.0);
    }
    if (d->ran) {
        printf("created to dispatched ms (sample of %zu, daemon clock): p50 %.0f  p99 %.0f  "
               "max %.0f; not dispatched within 10 s: %" PRIu64 "\n", d->lat.n,
               percentile_ms(&d->lat, 0.50), percentile_ms(&d->lat, 0.99),
               d->lat.n > 0 ? (double)d->lat.v[d->lat.n - 1] / 1e6 : 0.0, d->undispatched);
    }
    printf("errors: %" PRIu64, n_errors);
    for (int e = 1; e < ERR_COUNT; e++) {
        if (errors[e] > 0) {
            printf(" %s=%" PRIu64, error_name(e), errors[e]);
        }
    }
    putchar('\n');
    printf("bench: creates=%" PRIu64 " reads=%" PRIu64 " seconds=%.3f rate=%.1f/s p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f errors=%" PRIu64,
           n_creates, n_reads, seconds, (double)n_creates / seconds,
           percentile_ms(&creates, 0.50), percentile_ms(&creates, 0.99),
           creates.n > 0 ? (double)creates.v[creates.n - 1] / 1e6 : 0.0, n_errors);
    if (d->ran) {
        printf(" dispatch_p50_ms=%.0f dispatch_p99_ms=%.0f undispatched=%" PRIu64,
               percentile_ms(&d->lat, 0.50), percentile_ms(&d->lat, 0.99), d->undispatched);
    }
    putchar('\n');
    rc = fflush(stdout) == 0 && n_creates > 0 ? 0 : -1;
done:
    free(creates.v);
    free(reads.v);
    return rc;
}

/* ---- main ---- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("gridline-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'gridline-bench --help'.\n", stderr);
    return EXIT_USAGE;
}

static bool parse_number(const char *s, double lo, double hi, double *out)
{
    char  *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_whole(const char *s, int lo, int hi, int *out)
{
    double v;

    if (!parse_number(s, lo, hi, &v) || v != floor(v)) {
        return false;
    }
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "clients", required_argument, NULL, 'c' },
        { "threads", required_argument, NULL, 'T' },
        { "inflight", required_argument, NULL, 'w' },
        { "seconds", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, 'r' },
        { "mix-reads", required_argument, NULL, 'm' },
        { "timeout", required_argument, NULL, 't' },
        { "dispatch-sample", required_argument, NULL, 'd' },
        { "ids", required_argument, NULL, 'i' },
        { "random-ids", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char        *env = getenv(GL_CLIENT_ENDPOINT_ENV);
    bench_config       cfg = {
        .endpoint = env != NULL && env[0] != '\0' ? env : GL_CLIENT_DEFAULT_ENDPOINT,
        .clients = 8,
        .threads = 1,
        .inflight = 16,
        .seconds = 10,
        .rate = 0,
        .mix_reads = 0,
        .timeout_ms = 5000,
        .dispatch_sample = 500,
    };
    worker            *workers = NULL;
    pthread_t         *threads = NULL;
    driver            *drivers = NULL;
    void              *zmq_ctx = NULL;
    int                n_threads;
    pthread_barrier_t  barrier;
    bool               barrier_ready = false;
    int                started = 0;
    int64_t            start = 0, end = 0, stopped;
    struct sigaction   sa;
    int                ch;
    int                rc = EXIT_FAILED;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":e:c:T:w:s:r:m:t:d:i:uh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            cfg.endpoint = optarg;
            break;
        case 'T':
            if (!parse_whole(optarg, 1, MAX_CLIENTS, &cfg.threads)) {
                return usage_error("--threads wants 1-%d; got '%s'", MAX_CLIENTS, optarg);
            }
            break;
        case 'c':
            if (!parse_whole(optarg, 1, MAX_CLIENTS, &cfg.clients)) {
                return usage_error("--clients wants 1-%d; got '%s'", MAX_CLIENTS, optarg);
            }
            break;
        case 'w':
            if (!parse_whole(optarg, 1, MAX_INFLIGHT, &cfg.inflight)) {
                return usage_error("--inflight wants 1-%d; got '%s'", MAX_INFLIGHT, optarg);
            }
            break;
        case 's':
            if (!parse_number(optarg, 0.001, 86400, &cfg.seconds)) {
                return usage_error("--seconds wants a duration in seconds; got '%s'", optarg);
            }
            break;
        case 'r':
            if (!parse_number(optarg, 0, 1e8, &cfg.rate) || (cfg.rate > 0 && cfg.rate < 0.01)) {
                return usage_error("--rate wants creates per second (0: unlimited); got '%s'",
                                   optarg);
            }
            break;
        case 'm':
            if (!parse_whole(optarg, 0, 100, &cfg.mix_reads)) {
                return usage_error("--mix-reads wants a percentage, 0-100; got '%s'", optarg);
            }
            break;
        case 't':
            if (!parse_whole(optarg, 1, 3600000, &cfg.timeout_ms)) {
                return usage_error("--timeout wants milliseconds; got '%s'", optarg);
            }
            break;
        case 'd':
            if (!parse_whole(optarg, 0, 100000, &cfg.dispatch_sample)) {
                return usage_error("--dispatch-sample wants 0-100000; got '%s'", optarg);
            }
            break;
        case 'i':
            if (strcmp(optarg, "uuid7") == 0) {
                cfg.ids = IDS_UUID7;
            } else if (strcmp(optarg, "counter") == 0) {
                cfg.ids = IDS_COUNTER;
            } else if (strcmp(optarg, "random") == 0) {
                cfg.ids = IDS_RANDOM;
            } else {
                return usage_error("--ids wants uuid7, counter or random; got '%s'", optarg);
            }
            break;
        case 'u':
            cfg.ids = IDS_RANDOM;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return fflush(stdout) == 0 ? 0 : EXIT_FAILED;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (gl_client_request_id(cfg.run_id, sizeof(cfg.run_id)) != 0) {
        fprintf(stderr, "gridline-bench: cannot make a run id: %s\n", strerror(errno));
        return EXIT_FAILED;
    }
    /* 16 hex digits keep request_ids of two runs apart and leave them short: the random
     * last 16 of a request_id, which begins with the time. */
    memmove(cfg.run_id, cfg.run_id + GL_CLIENT_REQUEST_ID_LEN - 16, 17);
    unsigned long last6 = strtoul(cfg.run_id + 10, NULL, 16);    /* its last 6 digits */
    cfg.run_bits = (uint16_t)(last6 & 0xfff);
    cfg.run_bits2 = (uint16_t)(last6 >> 12);
    if (load_catalog(&cfg) != 0) {
        goto done;
    }
    printf("gridline-bench: %s, %d clients x %d in flight on %d thread(s), %g s, ",
           cfg.endpoint, cfg.clients, cfg.inflight,
           cfg.threads < cfg.clients ? cfg.threads : cfg.clients, cfg.seconds);
    if (cfg.rate > 0) {
        printf("%g creates/s offered", cfg.rate);
    } else {
        printf("unlimited rate");
    }
    static const char *const id_kinds[] = { "uuid7", "counter", "random" };
    printf(", %d%% reads, request_ids %s\n", cfg.mix_reads, id_kinds[cfg.ids]);
    printf("body: category %s, place %s%s%s%s%s%s%s\n", cfg.category, cfg.district,
           cfg.street != NULL ? "/" : "", cfg.street != NULL ? cfg.street : "",
           cfg.community != NULL ? "/" : "", cfg.community != NULL ? cfg.community : "",
           cfg.grid != NULL ? "/" : "", cfg.grid != NULL ? cfg.grid : "");
    fflush(stdout);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    n_threads = cfg.threads < cfg.clients ? cfg.threads : cfg.clients;
    workers = calloc((size_t)cfg.clients, sizeof(*workers));
    threads = calloc((size_t)n_threads, sizeof(*threads));
    drivers = calloc((size_t)n_threads, sizeof(*drivers));
    zmq_ctx = zmq_ctx_new();
    if (workers == NULL || threads == NULL || drivers == NULL || zmq_ctx == NULL
        || pthread_barrier_init(&barrier, NULL, (unsigned)n_threads + 1) != 0) {
        fprintf(stderr, "gridline-bench: out of memory\n");
        goto done;
    }
    barrier_ready = true;
    for (int i = 0; i < cfg.clients; i++) {
        workers[i] = (worker){ .cfg = &cfg, .index = i, .barrier = &barrier,
                               .start_ns = &start, .end_ns = &end };
    }
    for (int i = 0; i < n_threads; i++) {
        /* Thread i drives clients [i * clients / threads, (i + 1) * clients / threads). */
        int first = (int)((long)i * cfg.clients / n_threads);
        int last = (int)((long)(i + 1) * cfg.clients / n_threads);
        drivers[i] = (driver){ .workers = workers, .first = first, .n = last - first,
                               .zmq_ctx = zmq_ctx, .barrier = &barrier };
        if (pthread_create(&threads[i], NULL, driver_run, &drivers[i]) != 0) {
            fprintf(stderr, "gridline-bench: cannot start thread %d\n", i);
            /* The barrier counts on every thread: the run cannot go on, so stop here. */
            exit(EXIT_FAILED);
        }
        started++;
    }
    pthread_barrier_wait(&barrier);
    start = now_ns();
    end = start + (int64_t)(cfg.seconds * 1e9);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }
    stopped = now_ns() < end ? now_ns() : end;
    for (int i = 0; i < cfg.clients; i++) {
        if (workers[i].setup_error[0] != '\0') {
            fprintf(stderr, "gridline-bench: client %d: %s\n", i, workers[i].setup_error);
        }
    }
    if (stop_requested) {
        fprintf(stderr, "gridline-bench: stopped early\n");
    }
    dispatch_result dr;
    measure_dispatch(&cfg, workers, &dr);
    if (report(&cfg, workers, start, stopped, &dr) == 0) {
        rc = 0;
    }
    free(dr.lat.v);
done:
    if (barrier_ready) {
        pthread_barrier_destroy(&barrier);
    }
    if (workers != NULL) {
        for (int i = 0; i < cfg.clients; i++) {
            free(workers[i].create_lat.v);
            free(workers[i].read_lat.v);
        }
    }
    free(workers);
    free(threads);
    free(drivers);
    if (zmq_ctx != NULL) {
        zmq_ctx_term(zmq_ctx);   /* every client was closed by its thread */
    }
    free(cfg.category);
    free(cfg.district);
    free(cfg.street);
    free(cfg.community);
    free(cfg.grid);
    return rc;
}
