/*
 * gridlined: the Gridline daemon. Parses the command line, reads the city, opens the
 * store, serves until SIGTERM or SIGINT, then stops gracefully: no new requests, the
 * writes in flight committed and answered, the store closed.
 */
#include "city.h"
#include "log.h"
#include "server.h"
#include "store.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7310"
#define DEFAULT_DATA     "gridline-data"

typedef struct {
    uv_loop_t   *loop;
    server      *srv;
    uv_signal_t  sigterm, sigint;
    bool         stopping;
} daemon_state;

static void usage(FILE *out)
{
    fprintf(out,
        "usage: gridlined [--data DIR] [--config FILE] [--endpoint EP] [options]\n"
        "\n"
        "Serves Gridline's case protocol (MDP/0.1 + MessagePack over ZeroMQ).\n"
        "\n"
        "  --data DIR          the store's directory, created if missing (default ./%s)\n"
        "  --config FILE       the city: places, categories, units, SLA classes, routing\n"
        "                      (libconfig format; default: the built-in small city)\n"
        "  --endpoint EP       request socket (default %s)\n"
        "  --map-size MIB      LMDB map size in MiB (default 65536; the file grows as used)\n"
        "  --max-batch N       writes per transaction, for group commit (default 4096)\n"
        "  --log-level LEVEL   debug, info, warn or error (default info)\n"
        "  --check-config      read the configuration, print a summary and exit\n"
        "  --version, --help\n",
        DEFAULT_DATA, DEFAULT_ENDPOINT);
}

static void on_stopped(void *arg)
{
    daemon_state *d = arg;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
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
    server_stop(d->srv, on_stopped, d);
}

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

int main(int argc, char **argv)
{
    const char *data = DEFAULT_DATA, *config = NULL, *endpoint = DEFAULT_ENDPOINT;
    unsigned long long map_mib = 65536, max_batch = 4096;
    bool check_only = false;
    int level = LOG_INFO;
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'c' },
        { "endpoint", required_argument, NULL, 'e' },
        { "map-size", required_argument, NULL, 'm' },
        { "max-batch", required_argument, NULL, 'b' },
        { "log-level", required_argument, NULL, 'l' },
        { "check-config", no_argument, NULL, 'C' },
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
        case 'V': printf("gridlined %s\n", GRIDLINE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case 'm':
            if (parse_size(optarg, &map_mib) != 0) {
                fprintf(stderr, "gridlined: --map-size takes a number of MiB, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'b':
            if (parse_size(optarg, &max_batch) != 0 || max_batch > 1000000) {
                fprintf(stderr, "gridlined: --max-batch takes 1 to 1000000, not \"%s\"\n", optarg);
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
    log_init("gridlined", (log_level)level);
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
    if (check_only) {
        city_destroy(&c);
        return 0;
    }

    store_options so = { map_mib << 20, c->code_prefix, c->utc_offset_min };
    store *st = store_new(data, &so, err, sizeof err);
    if (st == NULL) {
        log_error("%s", err);
        city_destroy(&c);
        return 1;
    }
    log_info("store %s: %llu case(s), %llu event(s)", data,
             (unsigned long long)store_case_count(st), (unsigned long long)store_last_seq(st));

    int rc = 1;
    daemon_state d;
    memset(&d, 0, sizeof d);
    d.loop = uv_default_loop();
    void *zctx = zmq_ctx_new();
    server_options sopt = { endpoint, (size_t)max_batch, 200000 };
    d.srv = server_new(d.loop, zctx, st, c, &sopt, err, sizeof err);
    if (d.srv == NULL) {
        log_error("%s", err);
        goto out;
    }
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    log_warn("development mode: no keys configured, every client is trusted; serve on "
             "loopback only");
    log_info("serving %s (MDP/0.1, MessagePack)", endpoint);

    uv_run(d.loop, UV_RUN_DEFAULT);
    rc = 0;
    log_info("stopped");
out:
    server_destroy(&d.srv);
    uv_loop_close(d.loop);
    zmq_ctx_term(zctx);
    store_destroy(&st);
    city_destroy(&c);
    return rc;
}
