/*
 * gridline-store-bench: the store alone, at the sizes a city reaches. Fills a data
 * folder with cases through the daemon's own store calls (create, then dispatch to a
 * unit; a share accepted and resolved), committing in batches with full durability,
 * then measures what the issue holds the store to: how long the store takes to open,
 * how long one unit's open cases take to list, and the bytes on disk per case.
 *
 *   gridline-store-bench --data DIR [--cases N] [--resolved PCT] [--batch N] [--lists N]
 *
 * Run it again on the same folder to add more or only measure (--cases 0). The last
 * line is for scripts.
 */
#include "city.h"
#include "store.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static unsigned long long dir_bytes(const char *dir)
{
    unsigned long long total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    struct stat st;
    while (d != NULL && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            total += (unsigned long long)st.st_blocks * 512;   /* allocated, not apparent */
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return total;
}

/* The grid cells of the city: cases are spread over them. */
static int grid_cells(const city *c, int *out, int cap)
{
    int n = 0;
    for (size_t i = 0; i < c->n_places && n < cap; i++) {
        if (c->places[i].level == PLACE_GRID) {
            out[n++] = (int)i;
        }
    }
    return n;
}

static void location_of(const city *c, int grid, case_location *loc)
{
    memset(loc, 0, sizeof *loc);
    int p = grid;
    while (p >= 0) {
        gl_str code = gl_str_c(c->places[p].code);
        switch (c->places[p].level) {
        case PLACE_GRID: loc->grid = code; break;
        case PLACE_COMMUNITY: loc->community = code; break;
        case PLACE_STREET: loc->street = code; break;
        case PLACE_DISTRICT: loc->district = code; break;
        }
        p = c->places[p].parent;
    }
}

/* Adds n cases in batches. Returns 0 or -1. */
static int fill(store *st, const city *c, uint64_t n, unsigned resolved_pct, uint64_t batch)
{
    int grids[4096];
    int n_grids = grid_cells(c, grids, 4096);
    uint64_t start_id = store_case_count(st);
    double t0 = now_s(), applying = 0, committing = 0;
    uint64_t batches = 0;
    char rid[64], phone[32];
    gl_error err;
    for (uint64_t done = 0; done < n;) {
        store_txn *txn;
        if (store_write_begin(st, &txn) != 0) {
            fprintf(stderr, "store-bench: cannot begin a transaction\n");
            return -1;
        }
        uint64_t upto = done + batch < n ? done + batch : n;
        double ta = now_s();
        for (; done < upto; done++) {
            uint64_t k = start_id + done;
            request_create r;
            memset(&r, 0, sizeof r);
            snprintf(rid, sizeof rid, "bench-%" PRIu64, k);
            snprintf(phone, sizeof phone, "138%08" PRIu64, k % 100000000);
            r.request_id = gl_str_c(rid);
            r.channel = (case_channel)(k % 3);
            const city_category *cat = &c->categories[k % c->n_categories];
            r.category = gl_str_c(cat->code);
            r.urgency = URGENCY_NORMAL;
            r.title = gl_str_c("Street light out");
            r.description = gl_str_c("The street light at the corner has been dark for three "
                                     "nights; the lane is unsafe after dusk.");
            location_of(c, grids[k % (uint64_t)n_grids], &r.location);
            r.reporter_name = gl_str_c("Wang Xiaoming");
            r.reporter_phone = gl_str_c(phone);
            int64_t at = wall_ms();
            store_created made;
            if (store_case_create(txn, gl_str_c("bench"), &r, at, &made, &err) != 0) {
                fprintf(stderr, "store-bench: create: %s\n", err.message);
                store_write_abort(&txn);
                return -1;
            }
            route_decision d = { made.id, 1, gl_str_c(c->units[k % c->n_units].code), 0,
                                 gl_str_c("bench") };
            free(made.data);
            if (store_case_dispatch(txn, c, &d, at, gl_str_c("router"), &err) != 0) {
                fprintf(stderr, "store-bench: dispatch: %s\n", err.message);
                store_write_abort(&txn);
                return -1;
            }
            if (k % 100 < resolved_pct) {
                store_actor unit = { d.unit, NULL, NULL };
                request_act a;
                memset(&a, 0, sizeof a);
                a.id = made.id;
                a.action = ACT_ACCEPT;
                store_created out;
                int rc = store_case_act(txn, c, &a, &unit, at, &out, &err);
                free(out.data);
                a.action = ACT_RESOLVE;
                a.reply = gl_str_c("Repaired the lamp.");
                if (rc == 0) {
                    rc = store_case_act(txn, c, &a, &unit, at, &out, &err);
                    free(out.data);
                }
                if (rc != 0) {
                    fprintf(stderr, "store-bench: act: %s\n", err.message);
                    store_write_abort(&txn);
                    return -1;
                }
            }
        }
        double tc = now_s();
        if (store_write_commit(&txn) != 0) {
            fprintf(stderr, "store-bench: commit failed (disk or map full? --map-size)\n");
            return -1;
        }
        applying += tc - ta;
        committing += now_s() - tc;
        batches++;
        if (done % (batch * 100) == 0 || done == n) {
            double el = now_s() - t0;
            fprintf(stderr, "store-bench: %" PRIu64 " cases in %.1f s (%.0f/s)\n", done, el,
                    (double)done / el);
        }
    }
    double el = now_s() - t0;
    printf("fill: %" PRIu64 " cases in %.1f s, %.0f cases/s (create + dispatch%s, batches of "
           "%" PRIu64 "): applying %.2f us a case, committing %.2f ms a batch\n", n, el,
           (double)n / el, resolved_pct > 0 ? " + accept + resolve" : "", batch,
           n > 0 ? applying * 1e6 / (double)n : 0.0,
           batches > 0 ? committing * 1e3 / (double)batches : 0.0);
    return 0;
}

static int count_one(void *arg, gl_str raw, const case_record *c)
{
    (*(uint32_t *)arg)++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = NULL;
    unsigned long long cases = 0, batch = 10000, map_mib = 65536, lists = 200;
    unsigned resolved = 0;
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' }, { "cases", required_argument, NULL, 'n' },
        { "resolved", required_argument, NULL, 'r' }, { "batch", required_argument, NULL, 'b' },
        { "map-size", required_argument, NULL, 'm' }, { "lists", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "d:n:r:b:m:l:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 'n': cases = strtoull(optarg, NULL, 10); break;
        case 'r': resolved = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'm': map_mib = strtoull(optarg, NULL, 10); break;
        case 'l': lists = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(ch == 'h' ? stdout : stderr,
                    "usage: gridline-store-bench --data DIR [--cases N] [--resolved PCT]\n"
                    "                            [--batch N] [--map-size MIB] [--lists N]\n"
                    "Adds N cases (created, dispatched; PCT%% also accepted and resolved) to\n"
                    "the store in DIR, then prints how long the store takes to open, how\n"
                    "long a unit's open cases take to list, and the bytes per case.\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (data == NULL || batch == 0 || resolved > 100 || lists == 0) {
        fprintf(stderr, "store-bench: --data DIR is required; --batch and --lists > 0; "
                "--resolved 0-100 (see --help)\n");
        return 2;
    }
    char err[512];
    city *c = city_new(NULL, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "store-bench: %s\n", err);
        return 1;
    }
    store_options so = { map_mib << 20, c->code_prefix, c->utc_offset_min, 0 };
    store *st = store_new(data, &so, err, sizeof err);
    if (st == NULL || (cases > 0 && fill(st, c, cases, resolved, batch) != 0)) {
        fprintf(stderr, "store-bench: %s\n", st == NULL ? err : "fill failed");
        store_destroy(&st);
        city_destroy(&c);
        return 1;
    }
    store_destroy(&st);

    /* Opening: what a restarted daemon waits for before it serves. */
    double opens[5];
    for (int i = 0; i < 5; i++) {
        double t0 = now_s();
        st = store_new(data, &so, err, sizeof err);
        opens[i] = (now_s() - t0) * 1000;
        if (st == NULL) {
            fprintf(stderr, "store-bench: %s\n", err);
            city_destroy(&c);
            return 1;
        }
        if (i < 4) {
            store_destroy(&st);
        }
    }
    qsort(opens, 5, sizeof opens[0], cmp_double);
    uint64_t total = store_case_count(st);

    /* A unit's open cases, first page of 50 and a full page of 500, for units in turn. */
    double *t50 = calloc(lists, sizeof *t50), *t500 = calloc(lists, sizeof *t500);
    uint32_t got50 = 0;
    for (unsigned long long i = 0; i < lists && t50 != NULL && t500 != NULL; i++) {
        request_filter f;
        memset(&f, 0, sizeof f);
        f.channel = f.overdue = f.supervised = -1;
        f.state = CASE_DISPATCHED;
        f.created_from = INT64_MIN;
        f.created_to = INT64_MAX;
        f.unit = gl_str_c(c->units[i % c->n_units].code);
        for (int pass = 0; pass < 2; pass++) {
            store_reader *r;
            uint32_t n = 0;
            uint64_t next;
            double t0 = now_s();
            if (store_read_begin(st, &r) != 0
                || store_list(r, &f, 0, pass == 0 ? 50 : 500, wall_ms(), 20000, count_one, &n,
                              &next) != 0) {
                fprintf(stderr, "store-bench: list failed\n");
                return 1;
            }
            store_read_end(&r);
            (pass == 0 ? t50 : t500)[i] = (now_s() - t0) * 1000;
            if (pass == 0) {
                got50 += n;
            }
        }
    }
    qsort(t50, lists, sizeof *t50, cmp_double);
    qsort(t500, lists, sizeof *t500, cmp_double);
    unsigned long long bytes = dir_bytes(data);
    printf("store: %" PRIu64 " cases, %.1f MiB on disk, %.0f bytes/case\n", total,
           (double)bytes / 1048576.0, total > 0 ? (double)bytes / (double)total : 0.0);
    printf("open: median %.2f ms, max %.2f ms (5 opens)\n", opens[2], opens[4]);
    printf("unit open cases (state dispatched), %llu lists over %zu units: limit 50 p50 %.3f "
           "ms p99 %.3f ms (%.1f cases/list); limit 500 p50 %.3f ms p99 %.3f ms\n", lists,
           c->n_units, t50[lists / 2], t50[lists * 99 / 100], (double)got50 / (double)lists,
           t500[lists / 2], t500[lists * 99 / 100]);
    printf("store-bench: cases=%" PRIu64 " bytes_per_case=%.0f open_ms=%.2f list50_p99_ms=%.3f "
           "list500_p99_ms=%.3f\n", total, total > 0 ? (double)bytes / (double)total : 0.0,
           opens[2], t50[lists * 99 / 100], t500[lists * 99 / 100]);
    free(t50);
    free(t500);
    store_destroy(&st);
    city_destroy(&c);
    return 0;
}
