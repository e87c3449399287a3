/* worker_main: the shared body of the policy workers (see worker_main.h). */
#include "worker_main.h"

#include "log.h"
#include "mdp.h"
#include "mdp_worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define WORKER_WAIT_MS    1000     /* the longest a signal waits to be noticed */
#define WORKER_SUMMARY_MS 10000    /* the info summary, when anything happened */

const mp_guard_limits worker_task_limits = {
    .max_depth = 16,
    .max_items = 2 * 1024 * 1024,
    .max_str   = 1024 * 1024,
};

static volatile sig_atomic_t stop_signal;

typedef struct {
    unsigned long tasks, items, refused, lost_replies;
} worker_stats;

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
usage(const worker_spec *spec, FILE *out)
{
    fprintf(out,
        "usage: %s --endpoint EP [--config FILE] [options]\n"
        "\n"
        "%s Normally started by gridlined.\n"
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
        spec->program, spec->purpose, spec->service);
}

int
worker_refuse(msgpack_sbuffer *out, const char *message)
{
    msgpack_packer pk;

    log_warn("refused a task: %s", message);
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 1) != 0 || mp_pack_cstr(&pk, "error") != 0
        || mp_pack_cstr(&pk, message) != 0) {
        return -1;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static void
log_summary(const worker_stats *st, worker_stats *last, int64_t span_ms)
{
    if (st->tasks == last->tasks && st->refused == last->refused
        && st->lost_replies == last->lost_replies) {
        return;
    }
    log_info("last %lld s: %lu task(s), %lu case(s) decided, %lu task(s) refused, "
             "%lu reply(s) lost", (long long)(span_ms / 1000), st->tasks - last->tasks,
             st->items - last->items, st->refused - last->refused,
             st->lost_replies - last->lost_replies);
    *last = *st;
}

typedef struct {
    const worker_spec *spec;
    const city     *c;
    mdp_worker     *w;
    msgpack_zone    zone;    /* the task's objects and the decisions, cleared per task */
    msgpack_sbuffer out;     /* the reply */
    worker_stats    st;
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
    int           got, sent, decided;

    zmq_msg_init(&body);
    got = mdp_worker_recv(r->w, &body, addr, &alen, timeout_ms);
    if (got != 1) {
        zmq_msg_close(&body);
        return got;
    }
    t0 = now_us();
    msgpack_sbuffer_clear(&r->out);
    decided = r->spec->handle(r->c, zmq_msg_data(&body), zmq_msg_size(&body), &r->zone,
                              &r->out);
    if (decided < 0) {
        r->st.refused++;
        log_error("out of memory packing a reply");
    } else if ((sent = mdp_worker_reply(r->w, addr, alen, r->out.data, r->out.size)) != 0) {
        r->st.lost_replies++;
        log_warn("a reply was lost (%s): the daemon will give the task out again",
                 gl_error_name(sent));
    }
    if (decided >= 0) {
        r->st.tasks++;
        r->st.items += (unsigned long)decided;
    }
    log_debug("task: %d case(s) decided in %lld us", decided, (long long)(now_us() - t0));
    msgpack_zone_clear(&r->zone);
    zmq_msg_close(&body);
    return got;
}

static int
serve(const worker_spec *spec, const city *c, mdp_worker *w)
{
    router       r;
    worker_stats last;
    int64_t      summary_at = now_ms();
    int          rc = 0;

    memset(&r, 0, sizeof r);
    memset(&last, 0, sizeof last);
    r.spec = spec;
    r.c = c;
    r.w = w;
    msgpack_sbuffer_init(&r.out);
    if (!msgpack_zone_init(&r.zone, 64 * 1024)) {
        log_error("out of memory");
        return 1;
    }
    while (stop_signal == 0) {
        if (serve_one(&r, WORKER_WAIT_MS) < 0) {
            log_error("the worker session failed: %s", zmq_strerror(errno));
            rc = 1;
            break;
        }
        if (now_ms() - summary_at >= WORKER_SUMMARY_MS) {
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
worker_main(const worker_spec *spec, int argc, char **argv)
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
    const char      *endpoint = NULL, *config = NULL, *service = spec->service;
    const char      *id = NULL;
    int              level = LOG_INFO, ch, rc = 1;
    char             err[512], label[64 + MDP_WORKER_ADDR_MAX + 1];
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
        case 'h': usage(spec, stdout); return 0;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "%s: --log-level is debug, info, warn or "
                        "error, not \"%s\"\n", spec->program, optarg);
                return 2;
            }
            break;
        default:
            usage(spec, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", spec->program,
                argv[optind]);
        return 2;
    }
    if (endpoint == NULL || endpoint[0] == '\0') {
        fprintf(stderr, "%s: --endpoint is required (see --help)\n", spec->program);
        return 2;
    }
    if (service[0] == '\0' || strlen(service) > MDP_MAX_SERVICE) {
        fprintf(stderr, "%s: --service takes 1 to %d bytes\n", spec->program,
                MDP_MAX_SERVICE);
        return 2;
    }
    if (id != NULL && (id[0] == '\0' || strlen(id) > MDP_WORKER_ADDR_MAX)) {
        fprintf(stderr, "%s: --id takes 1 to %d bytes\n", spec->program,
                MDP_WORKER_ADDR_MAX);
        return 2;
    }
    /* Several routers share the daemon's stderr: the id tells their lines apart. */
    snprintf(label, sizeof label, "%.63s%s%s", spec->program, id != NULL ? " " : "",
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
    log_info("city \"%s\" from %s: %zu routing rules, %zu units", c->name, c->source,
             c->n_rules, c->n_units);
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
    rc = serve(spec, c, w);
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
