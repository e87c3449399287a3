/*
 * gridlined: the Gridline daemon. Parses the command line, reads the city, opens the
 * store, serves until SIGTERM or SIGINT, then stops gracefully: no new requests, the
 * writes in flight committed and answered, the store closed. SIGHUP reads the keys
 * file again.
 */
#include "broker.h"
#include "keyfile.h"
#include "principals.h"
#include "zap.h"
#include "deadlines.h"
#include "city.h"
#include "log.h"
#include "route_task.h"
#include "routing.h"
#include "server.h"
#include "store.h"
#include "supervisor.h"
#include "tap.h"
#include "writer.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7310"
#define DEFAULT_TAP      "tcp://127.0.0.1:7311"
#define DEFAULT_DATA     "gridline-data"

typedef struct {
    uv_loop_t   *loop;
    server      *srv;
    writer      *writer;
    broker      *broker;
    routing     *routing;
    deadlines   *deadlines;
    tap         *tap;
    zap         *zap;
    supervisor  *workers, *escalators;
    int          supervisors_running;
    uv_signal_t  sigterm, sigint, sighup;
    bool         stopping;
    /* The keys file and the table read from it. A reload keeps the tables it replaces
     * (requests in flight point into them) until the daemon exits. */
    const char  *keys_path;
    const city  *town;
    principals  *who;
    principals **retired;
    size_t       n_retired;
    bool         workers_stopped, writes_drained;
} daemon_state;

static void usage(FILE *out)
{
    fprintf(out,
        "usage: gridlined [--data DIR] [--config FILE] [--endpoint EP] [options]\n"
        "\n"
        "Serves Gridline's case protocol (MDP/0.1 + MessagePack over ZeroMQ).\n"
        "\n"
        "  --data DIR            the store's directory, created if missing (default ./%s)\n"
        "  --config FILE         the city: places, categories, units, SLA classes, routing\n"
        "                        (libconfig format; default: the built-in small city)\n"
        "  --endpoint EP         request socket (default %s)\n"
        "  --tap EP              the live tap, PUB (default %s)\n"
        "  --worker-endpoint EP  where workers connect, MDP/0.1 worker protocol\n"
        "                        (default ipc://DIR/workers.ipc; ipc or loopback only)\n"
        "  --keys FILE           the clients' public keys and principals (role, scope,\n"
        "                        limits); with --server-key, turns on CURVE and ZAP.\n"
        "                        Without both: development mode, loopback only.\n"
        "                        SIGHUP reads FILE again (a bad file keeps the old one)\n"
        "  --server-key FILE     the daemon's own key pair (`gridline keygen`)\n"
        "  --routers N           gridline-router processes to run (default 1; 0 = none,\n"
        "                        for a deployment that brings its own routing worker)\n"
        "  --router PATH         the router program (default: gridline-router beside\n"
        "                        this program)\n"
        "  --escalators N        gridline-escalator processes to run (default 1; 0 = none)\n"
        "  --escalator PATH      the escalation program (default: beside this program)\n"
        "  --task-timeout MS     how long a worker may hold a task before it goes to\n"
        "                        another (default 2000)\n"
        "  --map-size MIB        LMDB map size in MiB at start (default 65536; the file\n"
        "                        grows as used, and the map doubles when it is full)\n"
        "  --map-max MIB         the most the map may grow to (default 1048576, 1 TiB, or\n"
        "                        --map-size if larger; then writes are refused with\n"
        "                        `unavailable`)\n"
        "  --max-batch N         writes per transaction, for group commit (default 4096)\n"
        "  --log-level LEVEL     debug, info, warn or error (default info)\n"
        "  --check-config        read the configuration, print a summary and exit\n"
        "  --backup DEST         copy the store in --data to the new or empty folder DEST\n"
        "                        (compacted, as of one commit; the daemon may be running)\n"
        "                        and exit. To restore: stop the daemon, use DEST as --data\n"
        "  --version, --help\n",
        DEFAULT_DATA, DEFAULT_ENDPOINT, DEFAULT_TAP);
}

/* The last steps of a graceful stop, once the workers have exited and every write in
 * flight has been committed and answered. */
static void finish_stop(daemon_state *d)
{
    if (!d->workers_stopped || !d->writes_drained) {
        return;
    }
    writer_stats ws;
    routing_stats rs;
    deadlines_stats ds;
    writer_get_stats(d->writer, &ws);
    routing_get_stats(d->routing, &rs);
    deadlines_get_stats(d->deadlines, &ds);
    log_info("this run: %llu write(s) in %llu batch(es), largest %zu, %.3f ms applying and "
             "%.3f ms committing a batch on average; %llu case(s) routed; %llu deadline(s) "
             "acted on", (unsigned long long)ws.ops, (unsigned long long)ws.batches, ws.largest,
             ws.batches > 0 ? (double)ws.apply_us / 1000.0 / (double)ws.batches : 0.0,
             ws.batches > 0 ? (double)ws.commit_us / 1000.0 / (double)ws.batches : 0.0,
             (unsigned long long)rs.routed, (unsigned long long)ds.acted);
    writer_on_batch(d->writer, NULL, NULL);
    broker_on_ready(d->broker, NULL, NULL);
    broker_destroy(&d->broker);
    routing_destroy(&d->routing);
    deadlines_destroy(&d->deadlines);
    writer_destroy(&d->writer);
    server_close(d->srv);
    zap_destroy(&d->zap);   /* after the sockets it judges for */
    tap_close(d->tap);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_workers_stopped(void *arg)
{
    daemon_state *d = arg;
    if (--d->supervisors_running == 0) {
        d->workers_stopped = true;
        finish_stop(d);
    }
}

static void on_drained(void *arg)
{
    daemon_state *d = arg;
    d->writes_drained = true;
    finish_stop(d);
}

/* SIGHUP: the keys file again. Principals added can connect at once; one removed is
 * refused at its next request, even on a connection already open (the server looks the
 * name up in the new table); a changed key counts from the next handshake. A file with
 * an error changes nothing. */
static void on_reload(uv_signal_t *h, int signum)
{
    (void)signum;
    daemon_state *d = h->data;
    if (d->keys_path == NULL) {
        log_warn("SIGHUP: development mode has no keys file to read again");
        return;
    }
    char err[512];
    principals *fresh = principals_load(d->keys_path, d->town, err, sizeof err);
    principals **grown = fresh != NULL
        ? realloc(d->retired, (d->n_retired + 1) * sizeof *d->retired) : NULL;
    if (grown == NULL) {
        log_error("SIGHUP: %s; still serving the %zu client(s) read before",
                  fresh == NULL ? err : "out of memory", principals_count(d->who));
        principals_destroy(&fresh);
        return;
    }
    d->retired = grown;
    d->retired[d->n_retired++] = d->who;
    d->who = fresh;
    zap_set_table(d->zap, fresh);
    server_set_principals(d->srv, fresh);
    log_info("keys: %zu client(s) from %s (read again on SIGHUP)", principals_count(fresh),
             d->keys_path);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state *d = h->data;
    if (d->stopping) {
        log_warn("%s again while stopping: still waiting for the writes in flight",
                 strsignal(signum));
        return;
    }
    d->stopping = true;
    log_info("%s: stopping", strsignal(signum));
    server_pause(d->srv);
    routing_stop(d->routing);
    deadlines_stop(d->deadlines);
    if (writer_pending(d->writer) > 0) {
        log_info("answering %zu write(s) in flight", writer_pending(d->writer));
    }
    d->supervisors_running = 2;
    supervisor_stop(d->workers, 2000, on_workers_stopped, d);
    supervisor_stop(d->escalators, 2000, on_workers_stopped, d);
    /* Decisions arriving while the routers stop are still committed; drain last. */
    writer_on_drained(d->writer, on_drained, d);
}

static void on_batch(void *arg)
{
    daemon_state *d = arg;
    server_on_commit(d->srv);
    tap_publish(d->tap);
    routing_kick(d->routing);
    deadlines_kick(d->deadlines);
}

static void on_worker_ready(void *arg)
{
    daemon_state *d = arg;
    routing_kick(d->routing);
    deadlines_worker_ready(d->deadlines);
}

static void on_worker_exit(void *arg, const char *name)
{
    daemon_state *d = arg;
    if (d->broker != NULL) {
        broker_forget(d->broker, name);
    }
}

/* A worker program: as given, else `name` beside this executable. */
static int worker_path(const char *given, const char *name, char *out, size_t cap)
{
    if (given != NULL) {
        snprintf(out, cap, "%s", given);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return -1;
    }
    self[n] = '\0';
    snprintf(out, cap, "%s/%s", dirname(self), name);
    return 0;
}

/* Whether an endpoint can only be reached from this machine. */
static bool is_local(const char *ep)
{
    static const char *const local[] = {
        "ipc://", "inproc://", "tcp://127.", "tcp://localhost:", "tcp://[::1]:"
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        if (strncmp(ep, local[i], strlen(local[i])) == 0) {
            return true;
        }
    }
    return false;
}

#define MAP_MIB_MAX (64ULL << 20)

static int parse_size(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* gridlined --backup: one copy of the store, a line saying what it holds. */
static int backup(const char *data, const char *dest)
{
    char err[512];
    store_backup_info info;
    if (store_backup(data, dest, &info, err, sizeof err) != 0) {
        fprintf(stderr, "gridlined: backup failed: %s\n", err);
        return 1;
    }
    printf("backup of %s written to %s: %llu cases, events to %llu, schema %u, %.1f MiB\n",
           data, dest, (unsigned long long)info.cases, (unsigned long long)info.last_seq,
           info.schema, (double)info.bytes / 1048576.0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = DEFAULT_DATA, *config = NULL, *endpoint = DEFAULT_ENDPOINT;
    const char *worker_endpoint = NULL, *router = NULL, *escalator = NULL;
    const char *tap_endpoint = DEFAULT_TAP, *keys_path = NULL, *server_key_path = NULL;
    unsigned long long map_mib = 65536, map_max_mib = 1048576, max_batch = 4096;
    unsigned long long routers = 1, escalators = 1, task_timeout = 2000;
    bool check_only = false, map_max_given = false;
    const char *backup_dest = NULL;
    int level = LOG_INFO;
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'c' },
        { "endpoint", required_argument, NULL, 'e' },
        { "map-size", required_argument, NULL, 'm' },
        { "map-max", required_argument, NULL, 'M' },
        { "max-batch", required_argument, NULL, 'b' },
        { "worker-endpoint", required_argument, NULL, 'w' },
        { "routers", required_argument, NULL, 'r' },
        { "router", required_argument, NULL, 'R' },
        { "escalators", required_argument, NULL, 'x' },
        { "tap", required_argument, NULL, 'T' },
        { "escalator", required_argument, NULL, 'X' },
        { "task-timeout", required_argument, NULL, 't' },
        { "log-level", required_argument, NULL, 'l' },
        { "check-config", no_argument, NULL, 'C' },
        { "backup", required_argument, NULL, 'B' },
        { "keys", required_argument, NULL, 'K' },
        { "server-key", required_argument, NULL, 'S' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "d:c:e:l:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 'c': config = optarg; break;
        case 'e': endpoint = optarg; break;
        case 'C': check_only = true; break;
        case 'B': backup_dest = optarg; break;
        case 'V': printf("gridlined %s\n", GRIDLINE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case 'm':
        case 'M':
            /* 64 TiB: LMDB's map lives in the 128 TiB of a process's address space. */
            map_max_given = map_max_given || ch == 'M';
            if (parse_size(optarg, ch == 'm' ? &map_mib : &map_max_mib) != 0
                || (ch == 'm' ? map_mib : map_max_mib) > MAP_MIB_MAX) {
                fprintf(stderr, "gridlined: %s takes 1 to %llu MiB, not \"%s\"\n",
                        ch == 'm' ? "--map-size" : "--map-max", MAP_MIB_MAX, optarg);
                return 2;
            }
            break;
        case 'b':
            if (parse_size(optarg, &max_batch) != 0 || max_batch > 1000000) {
                fprintf(stderr, "gridlined: --max-batch takes 1 to 1000000, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'w': worker_endpoint = optarg; break;
        case 'R': router = optarg; break;
        case 'X': escalator = optarg; break;
        case 'T': tap_endpoint = optarg; break;
        case 'K': keys_path = optarg; break;
        case 'S': server_key_path = optarg; break;
        case 'x':
            if (strcmp(optarg, "0") == 0) {
                escalators = 0;
            } else if (parse_size(optarg, &escalators) != 0 || escalators > 64) {
                fprintf(stderr, "gridlined: --escalators takes 0 to 64, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (strcmp(optarg, "0") == 0) {
                routers = 0;
            } else if (parse_size(optarg, &routers) != 0 || routers > 64) {
                fprintf(stderr, "gridlined: --routers takes 0 to 64, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_size(optarg, &task_timeout) != 0 || task_timeout > 3600000) {
                fprintf(stderr, "gridlined: --task-timeout takes 1 to 3600000 ms, not \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "gridlined: --log-level is debug, info, warn or error, not \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gridlined: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if (!map_max_given && map_max_mib < map_mib) {
        map_max_mib = map_mib;   /* a start above the default limit is the limit */
    }
    if (map_max_mib < map_mib) {
        fprintf(stderr, "gridlined: --map-max (%llu MiB) is below --map-size (%llu MiB): "
                "raise --map-max, or lower --map-size\n", map_max_mib, map_mib);
        return 2;
    }
    log_init("gridlined", (log_level)level);
    if (backup_dest != NULL) {
        return backup(data, backup_dest);
    }
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    city *c = city_new(config, err, sizeof err);
    if (c == NULL) {
        log_error("configuration: %s", err);
        return 1;
    }
    log_info("city \"%s\" from %s: %zu places, %zu categories, %zu units, %zu SLA classes, "
             "%zu routing rules", c->name, c->source, c->n_places, c->n_categories, c->n_units,
             c->n_sla, c->n_rules);

    /* Who may connect: the keys file, or development mode's single trusted "dev". */
    principals *who = NULL;
    keyfile_keys server_keys;
    memset(&server_keys, 0, sizeof server_keys);
    if ((keys_path == NULL) != (server_key_path == NULL)) {
        log_error("--keys and --server-key go together: the clients' keys and the daemon's "
                  "own key pair (make one with `gridline keygen`)");
        city_destroy(&c);
        return 2;
    }
    if (keys_path != NULL) {
        gl_error ke;
        if (keyfile_read(server_key_path, true, &server_keys, &ke) != 0) {
            log_error("--server-key: %s", ke.message);
            city_destroy(&c);
            return 1;
        }
        who = principals_load(keys_path, c, err, sizeof err);
        if (who == NULL) {
            log_error("--keys: %s", err);
            city_destroy(&c);
            return 1;
        }
        log_info("keys: %zu client(s) from %s; CURVE on the request socket and the tap",
                 principals_count(who), keys_path);
    } else {
        who = principals_dev();
        const char *open = !is_local(endpoint) ? endpoint : !is_local(tap_endpoint)
                           ? tap_endpoint : NULL;
        if (who == NULL) {
            log_error("out of memory");
            city_destroy(&c);
            return 1;
        }
        if (open != NULL) {
            log_error("development mode (no --keys) serves loopback only, and %s is not: "
                      "give --keys FILE and --server-key FILE to serve other machines, or "
                      "bind tcp://127.0.0.1", open);
            principals_destroy(&who);
            city_destroy(&c);
            return 2;
        }
    }
    if (worker_endpoint != NULL && !is_local(worker_endpoint)) {
        log_error("--worker-endpoint %s: workers connect over ipc:// or loopback only (the "
                  "worker socket carries cases unencrypted)", worker_endpoint);
        principals_destroy(&who);
        city_destroy(&c);
        return 2;
    }
    if (check_only) {
        principals_destroy(&who);
        city_destroy(&c);
        return 0;
    }

    store_options so = { map_mib << 20, c->code_prefix, c->utc_offset_min, map_max_mib << 20 };
    store *st = store_new(data, &so, err, sizeof err);
    if (st == NULL) {
        log_error("%s", err);
        principals_destroy(&who);
        city_destroy(&c);
        return 1;
    }
    log_info("store %s: %llu case(s), %llu event(s)", data,
             (unsigned long long)store_case_count(st), (unsigned long long)store_last_seq(st));

    int rc = 1;
    daemon_state d;
    memset(&d, 0, sizeof d);
    d.keys_path = keys_path;
    d.town = c;
    d.who = who;
    who = NULL;
    d.loop = uv_default_loop();
    void *zctx = zmq_ctx_new();

    char wep[PATH_MAX + 32], dir[PATH_MAX], program[PATH_MAX], esc_program[PATH_MAX];
    if (worker_endpoint == NULL) {
        if (realpath(data, dir) == NULL) {
            log_error("cannot resolve %s: %s", data, strerror(errno));
            goto out;
        }
        snprintf(wep, sizeof wep, "ipc://%s/workers.ipc", dir);
        /* A Unix socket path is at most 107 bytes. */
        if (strlen(wep) - 6 > 107) {
            log_error("the worker socket path %s is too long for a Unix socket; give "
                      "--worker-endpoint ipc:///a/shorter/path", wep + 6);
            goto out;
        }
        worker_endpoint = wep;
    }
    if (worker_path(router, "gridline-router", program, sizeof program) != 0
        || worker_path(escalator, "gridline-escalator", esc_program, sizeof esc_program) != 0) {
        log_error("cannot find the worker programs; give --router PATH and --escalator PATH");
        goto out;
    }

    d.writer = writer_new(d.loop, st, (size_t)max_batch);
    if (d.writer == NULL) {
        log_error("cannot start the writer thread");
        goto out;
    }
    const char *secret = principals_secure(d.who) ? server_keys.secret_key : NULL;
    if (secret != NULL) {
        /* The ZAP handler must be bound before a CURVE socket takes its first handshake. */
        d.zap = zap_new(d.loop, zctx, d.who, err, sizeof err);
        if (d.zap == NULL) {
            log_error("%s", err);
            goto out;
        }
    }
    server_options sopt = { endpoint, 200000, d.who, secret };
    d.srv = server_new(d.loop, zctx, st, c, d.writer, &sopt, err, sizeof err);
    if (d.srv == NULL) {
        log_error("%s", err);
        goto out;
    }
    d.tap = tap_new(d.loop, zctx, tap_endpoint, secret, st, err, sizeof err);
    if (d.tap == NULL) {
        log_error("%s", err);
        goto out;
    }
    d.broker = broker_new(d.loop, zctx, worker_endpoint, (int)task_timeout, err, sizeof err);
    if (d.broker == NULL) {
        log_error("%s", err);
        goto out;
    }
    d.routing = routing_new(d.loop, st, d.writer, d.broker, c);
    if (d.routing == NULL) {
        log_error("cannot start routing");
        goto out;
    }
    d.deadlines = deadlines_new(d.loop, st, d.writer, d.broker, c);
    if (d.deadlines == NULL) {
        log_error("cannot start the deadline timer");
        goto out;
    }
    writer_on_batch(d.writer, on_batch, &d);
    broker_on_ready(d.broker, on_worker_ready, &d);

    const char *args[8];
    size_t na = 0;
    args[na++] = "--endpoint";
    args[na++] = worker_endpoint;
    if (config != NULL) {
        args[na++] = "--config";
        args[na++] = config;
    }
    args[na++] = "--log-level";
    args[na++] = level == LOG_DEBUG ? "debug" : level == LOG_INFO ? "info"
                 : level == LOG_WARN ? "warn" : "error";
    args[na] = NULL;
    d.workers = supervisor_new(d.loop, program, args, "router", (size_t)routers, on_worker_exit,
                               &d, err, sizeof err);
    if (d.workers == NULL) {
        log_error("%s", err);
        goto out;
    }
    d.escalators = supervisor_new(d.loop, esc_program, args, "escalator", (size_t)escalators,
                                  on_worker_exit, &d, err, sizeof err);
    if (d.escalators == NULL) {
        log_error("%s", err);
        goto out;
    }
    /* Deadlines that fell due while the daemon was down are acted on once a worker is
     * ready; until then the timer waits for the earliest. */
    deadlines_kick(d.deadlines);

    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_init(d.loop, &d.sighup);
    d.sighup.data = &d;
    uv_signal_start(&d.sighup, on_reload, SIGHUP);
    if (secret == NULL) {
        log_warn("DEVELOPMENT MODE: no --keys, so there is no encryption and every client "
                 "is trusted as admin \"dev\"; serving loopback only");
    }
    log_info("serving %s (MDP/0.1, MessagePack); tap on %s; workers on %s; %llu router(s), "
             "%llu escalator(s)", endpoint, tap_endpoint, worker_endpoint, routers, escalators);

    uv_run(d.loop, UV_RUN_DEFAULT);
    rc = 0;
    log_info("stopped");
out:
    if (rc != 0) {
        /* Start-up failed part way: close what was opened, then let libuv finish. */
        if (d.workers != NULL) {
            supervisor_stop(d.workers, 100, NULL, NULL);
        }
        if (d.escalators != NULL) {
            supervisor_stop(d.escalators, 100, NULL, NULL);
        }
        broker_destroy(&d.broker);
        routing_destroy(&d.routing);
        deadlines_destroy(&d.deadlines);
        writer_destroy(&d.writer);
        if (d.srv != NULL) {
            server_close(d.srv);   /* its handles close in the run below, then it is freed */
        }
        zap_destroy(&d.zap);
        tap_close(d.tap);
        uv_run(d.loop, UV_RUN_DEFAULT);
    }
    supervisor_destroy(&d.workers);
    supervisor_destroy(&d.escalators);
    tap_destroy(&d.tap);
    server_destroy(&d.srv);
    uv_loop_close(d.loop);
    zmq_ctx_term(zctx);
    store_destroy(&st);
    principals_destroy(&d.who);
    for (size_t i = 0; i < d.n_retired; i++) {
        principals_destroy(&d.retired[i]);
    }
    free(d.retired);
    city_destroy(&c);
    return rc;
}
