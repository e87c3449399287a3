/*
 * gridline-router: the routing worker. Registers with the daemon's broker for
 * "gridline.route" (MDP/0.1 worker protocol), and answers each task (route_task.h)
 * with one decision per case: the unit and any duplicate, by route_policy.
 *
 * It holds no state beyond the city, which it reads at start from the same file as
 * the daemon, so the daemon can kill and restart it at any moment; a task it did not
 * answer is simply given out again. A task it cannot read is answered {"error": "..."}
 * rather than dropped, so the daemon learns why at once instead of after a timeout.
 * SIGTERM and SIGINT let the task in hand finish and be answered, then say DISCONNECT.
 */
#include "city.h"
#include "log.h"
#include "mdp.h"
#include "mdp_worker.h"
#include "mp_guard.h"
#include "route_policy.h"
#include "route_task.h"

#include <errno.h>
#include <getopt.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ROUTER_PROGRAM    "gridline-router"
#define ROUTER_WAIT_MS    1000     /* the longest a signal waits to be noticed */
#define ROUTER_SUMMARY_MS 10000    /* the info summary, when anything happened */

/* A task is at most ROUTE_MAX_ITEMS cases of a few hundred objects each (the case,
 * its location, up to ROUTE_MAX_CANDIDATES candidates): 2 Mi objects leave room for
 * the largest honest task while bounding what a broken one can make us allocate. */
static const mp_guard_limits task_limits = {
    .max_depth = 16,
    .max_items = 2 * 1024 * 1024,
    .max_str   = 1024 * 1024,
};

static volatile sig_atomic_t stop_signal;

typedef struct {
    unsigned long tasks, cases, duplicates, supervision, refused, lost_replies;
} router_stats;

static void
on_signal(int signum)
{
    stop_signal = signum;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: " ROUTER_PROGRAM " --endpoint EP [--config FILE] [options]\n"
        "\n"
        "Gridline's routing worker: decides which unit handles each registered case and\n"
        "whether it repeats an older one. Normally started by gridlined.\n"
        "\n"
        "  --endpoint EP       the daemon's worker socket, e.g. ipc:///run/gridline/w.ipc\n"
        "                      (required)\n"
        "  --config FILE       the city file gridlined reads (default: the built-in city)\n"
        "  --service NAME      the MDP service to serve (default %s)\n"
        "  --id NAME           this worker's MDP identity; gridlined names each process\n"
        "                      it starts, and such a process stops when its parent\n"
        "                      exits (default: ZeroMQ picks an identity)\n"
        "  --log-level LEVEL   debug, info, warn or error (default info)\n"
        "  --help\n",
        ROUTE_SERVICE);
}

/* ---- one task -------------------------------------------------------------------- */

static int
pack_refusal(msgpack_sbuffer *out, const char *message)
{
    msgpack_packer pk;

    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 1) != 0 || mp_pack_cstr(&pk, "error") != 0
        || mp_pack_cstr(&pk, message) != 0) {
        return -1;
    }
    return 0;
}

/* Decides every case of the task in body and packs the reply into out: the decisions,
 * or {"error": ...} when the task cannot be read. Returns 0, or -1 when even the
 * reply could not be packed (out of memory). */
static int
route_task(const city *c, const void *body, size_t len, msgpack_zone *zone,
           msgpack_sbuffer *out, router_stats *st)
{
    msgpack_object  task;
    msgpack_packer  pk;
    route_item     *items = NULL;
    route_decision *d;
    char           *reasons, msg[400];
    const char     *why = NULL;
    gl_error        err;
    int64_t         now;
    uint32_t        n = 0, i, nd = 0, dups = 0;

    gl_error_clear(&err);
    if (mp_guard_check(body, len, &task_limits, &why) != 0
        || mp_unpack(body, len, zone, &task) != 0) {
        snprintf(msg, sizeof msg, "the task is not one MessagePack object%s%s",
                 why != NULL ? ": " : "", why != NULL ? why : "");
        goto refuse;
    }
    if (route_task_unpack(&task, zone, &now, &items, &n, &err) != 0) {
        snprintf(msg, sizeof msg, "%s%s%s", err.field, err.field[0] != '\0' ? ": " : "",
                 err.message);
        goto refuse;
    }
    d       = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * sizeof *d);
    reasons = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * (size_t)ROUTE_POLICY_REASON_MAX);
    if (d == NULL || reasons == NULL) {
        snprintf(msg, sizeof msg, "out of memory deciding a task of %u cases", n);
        goto refuse;
    }
    for (i = 0; i < n; i++) {
        char *reason = reasons + (size_t)i * ROUTE_POLICY_REASON_MAX;

        /* A case the policy cannot decide gets no decision: the daemon gives it out
         * again rather than dispatching it anywhere. */
        if (route_policy_decide(c, &items[i], &d[nd], reason, ROUTE_POLICY_REASON_MAX)
            != 0) {
            log_warn("case %llu: no decision", (unsigned long long)items[i].c.id);
            continue;
        }
        dups += d[nd].duplicate_of != 0;
        st->supervision += c->units[city_unit_find(c, d[nd].unit)].kind == UNIT_SUPERVISION;
        nd++;
    }
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (route_decisions_pack(&pk, d, nd) != 0) {
        snprintf(msg, sizeof msg, "out of memory packing %u decisions", nd);
        goto refuse;
    }
    st->tasks++;
    st->cases += nd;
    st->duplicates += dups;
    return 0;

refuse:
    st->refused++;
    log_warn("refused a task: %s", msg);
    return pack_refusal(out, msg);
}

/* ---- main ------------------------------------------------------------------------ */

static void
log_summary(const router_stats *st, router_stats *last, int64_t span_ms)
{
    if (st->tasks == last->tasks && st->refused == last->refused
        && st->lost_replies == last->lost_replies) {
        return;
    }
    log_info("last %lld s: %lu task(s), %lu case(s) decided, %lu duplicate(s), "
             "%lu to supervision, %lu task(s) refused, %lu reply(s) lost",
             (long long)(span_ms / 1000), st->tasks - last->tasks, st->cases - last->cases,
             st->duplicates - last->duplicates, st->supervision - last->supervision,
             st->refused - last->refused, st->lost_replies - last->lost_replies);
    *last = *st;
}

typedef struct {
    const city     *c;
    mdp_worker     *w;
    msgpack_zone    zone;    /* the task's objects and the decisions, cleared per task */
    msgpack_sbuffer out;     /* the reply */
    router_stats    st;
} router;

/* Waits up to timeout_ms for one task and answers it. Returns what mdp_worker_recv
 * returned: 1 (a task was answered, or its reply lost), 0, or a negative code. */
static int
serve_one(router *r, int timeout_ms)
{
    zmq_msg_t     body;
    char          addr[MDP_WORKER_ADDR_MAX];
    size_t        alen = sizeof addr;
    int64_t       t0;
    unsigned long before = r->st.cases;
    int           got, sent;

    zmq_msg_init(&body);
    got = mdp_worker_recv(r->w, &body, addr, &alen, timeout_ms);
    if (got != 1) {
        zmq_msg_close(&body);
        return got;
    }
    t0 = now_us();
    if (route_task(r->c, zmq_msg_data(&body), zmq_msg_size(&body), &r->zone, &r->out,
                   &r->st) != 0) {
        log_error("out of memory packing a reply");
    } else if ((sent = mdp_worker_reply(r->w, addr, alen, r->out.data, r->out.size)) != 0) {
        r->st.lost_replies++;
        log_warn("a reply was lost (%s): the daemon will give the task out again",
                 gl_error_name(sent));
    }
    log_debug("task: %lu case(s) decided in %lld us", r->st.cases - before,
              (long long)(now_us() - t0));
    msgpack_zone_clear(&r->zone);
    zmq_msg_close(&body);
    return got;
}

static int
serve(const city *c, mdp_worker *w)
{
    router       r;
    router_stats last;
    int64_t      summary_at = now_ms();
    int          rc = 0;

    memset(&r, 0, sizeof r);
    memset(&last, 0, sizeof last);
    r.c = c;
    r.w = w;
    msgpack_sbuffer_init(&r.out);
    if (!msgpack_zone_init(&r.zone, 64 * 1024)) {
        log_error("out of memory");
        return 1;
    }
    while (stop_signal == 0) {
        if (serve_one(&r, ROUTER_WAIT_MS) < 0) {
            log_error("the worker session failed: %s", zmq_strerror(errno));
            rc = 1;
            break;
        }
        if (now_ms() - summary_at >= ROUTER_SUMMARY_MS) {
            log_summary(&r.st, &last, now_ms() - summary_at);
            summary_at = now_ms();
        }
    }
    /* A task the broker gave us just as the signal came is answered rather than left
     * for the daemon to take back and give out again. */
    if (rc == 0) {
        serve_one(&r, 0);
    }
    log_summary(&r.st, &last, now_ms() - summary_at);
    msgpack_zone_destroy(&r.zone);
    msgpack_sbuffer_destroy(&r.out);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "config", required_argument, NULL, 'c' },
        { "service", required_argument, NULL, 's' },
        { "id", required_argument, NULL, 'i' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char      *endpoint = NULL, *config = NULL, *service = ROUTE_SERVICE;
    const char      *id = NULL;
    int              level = LOG_INFO, ch, rc = 1;
    char             err[512], label[sizeof ROUTER_PROGRAM + MDP_WORKER_ADDR_MAX + 1];
    city            *c = NULL;
    void            *zctx = NULL;
    mdp_worker      *w = NULL;
    struct sigaction sa;
    pid_t            parent = getppid();   /* first, to see it die while we start */

    while ((ch = getopt_long(argc, argv, "e:c:s:i:l:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'e': endpoint = optarg; break;
        case 'c': config = optarg; break;
        case 's': service = optarg; break;
        case 'i': id = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, ROUTER_PROGRAM ": --log-level is debug, info, warn or "
                        "error, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, ROUTER_PROGRAM ": unexpected argument \"%s\" (see --help)\n",
                argv[optind]);
        return 2;
    }
    if (endpoint == NULL || endpoint[0] == '\0') {
        fprintf(stderr, ROUTER_PROGRAM ": --endpoint is required (see --help)\n");
        return 2;
    }
    if (service[0] == '\0' || strlen(service) > MDP_MAX_SERVICE) {
        fprintf(stderr, ROUTER_PROGRAM ": --service takes 1 to %d bytes\n", MDP_MAX_SERVICE);
        return 2;
    }
    if (id != NULL && (id[0] == '\0' || strlen(id) > MDP_WORKER_ADDR_MAX)) {
        fprintf(stderr, ROUTER_PROGRAM ": --id takes 1 to %d bytes\n", MDP_WORKER_ADDR_MAX);
        return 2;
    }
    /* Several routers share the daemon's stderr: the id tells their lines apart. */
    snprintf(label, sizeof label, "%s%s%s", ROUTER_PROGRAM, id != NULL ? " " : "",
             id != NULL ? id : "");
    log_init(label, (log_level)level);

    /* No SA_RESTART: the signal must interrupt the wait for a task, so it is seen. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (id != NULL) {
        /* A daemon killed with -9 cannot stop its workers: without this they would
         * outlive it, reconnecting to a broker that is gone. Its death sends us SIGTERM,
         * and we stop as usual. Only with --id: a router a deployment starts from a
         * script that then exits must not stop with the script. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
            log_warn("cannot ask to be stopped with the daemon: %s", strerror(errno));
        } else if (getppid() != parent) {
            /* It died before we asked: the signal will not come. */
            stop_signal = SIGTERM;
        }
    }

    c = city_new(config, err, sizeof err);
    if (c == NULL) {
        log_error("configuration: %s", err);
        goto out;
    }
    log_info("city \"%s\" from %s: %zu routing rules, %zu units; duplicates within "
             "%lld s and %.0f m", c->name, c->source, c->n_rules, c->n_units,
             (long long)(c->dup_window_ms / 1000), c->dup_distance_m);
    zctx = zmq_ctx_new();
    if (zctx == NULL) {
        log_error("cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        goto out;
    }
    w = mdp_worker_new(zctx, endpoint, service, id);
    if (w == NULL) {
        log_error("cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        goto out;
    }
    log_info("serving \"%s\" for the broker at %s%s%s", service, endpoint,
             id != NULL ? " as " : "", id != NULL ? id : "");
    rc = serve(c, w);
    if (stop_signal != 0) {
        log_info("%s: stopping", strsignal(stop_signal));
    }

out:
    mdp_worker_destroy(&w);
    if (zctx != NULL) {
        zmq_ctx_term(zctx);
    }
    city_destroy(&c);
    return rc;
}
