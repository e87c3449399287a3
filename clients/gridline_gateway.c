/*
 * gridline-gateway: a grid gateway. It reads grid managers' events as JSON lines (one
 * case.create body per line) from stdin, a file, or *.jsonl files dropped into a watch
 * folder, and registers each one as a case, exactly once, through daemon outages and
 * its own crashes.
 *
 * The spool (--spool DIR) holds:
 *   spool.jsonl   every accepted line, as one compact JSON object with its request_id,
 *                 appended and fsync'd BEFORE it is sent;
 *   spool.done    the byte offset in spool.jsonl up to which the daemon has answered
 *                 (20 digits, rewritten in place and fsync'd after each answer);
 *   rejects.jsonl lines that will never be sent again, each with the error;
 *   gateway-id    this gateway's id (made once), part of derived request ids;
 *   lock          flock'd while a gateway runs on the folder.
 * Lines are sent in spool order, one at a time. A line counts as done only on the
 * daemon's answer: ok (replayed or not), or a refusal that resending cannot fix
 * (invalid_argument, bad_request, conflict, ...), which goes to rejects.jsonl. No reply
 * (timeout), overloaded, unavailable or internal: the line stays and is sent again after
 * a backoff, with the same request_id, so a resend never makes a second case. When every
 * line is done the spool is truncated.
 *
 * A line without request_id gets "gw:GATEWAY-ID:HASH", HASH a 128-bit hash of the line's
 * canonical JSON (keys sorted, compact) without request_id, so the same line fed twice
 * (a watch file re-read after a crash, a resent stdin) is the same case.
 *
 * Memory stays bounded: lines longer than 1 MiB are rejected, the spool is read one
 * record at a time.
 */
#include "gl_client.h"
#include "gl_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE       (1024 * 1024)
#define READ_CHUNK     65536
#define INGEST_BUDGET  (4 * READ_CHUNK)
#define SCAN_EVERY_MS  500
#define PROGRESS_MS    1000
#define MAX_BACKOFF_MS 10000
#define GWID_MAX       64

static const char usage_text[] =
    "usage: gridline-gateway [--endpoint EP] --spool DIR [--input FILE|-] [--watch-dir DIR]\n"
    "                        [--timeout MS] [--retry-ms MS] [--max-retries N]\n"
    "                        [--gateway-id ID] [--once]\n"
    "\n"
    "Reads case.create bodies as JSON lines and registers each as a case exactly once.\n"
    "Every line is appended to DIR/spool.jsonl and fsync'd before it is sent; it is done\n"
    "only when the daemon answers. While the daemon is unreachable the gateway keeps\n"
    "spooling and retries with backoff; refused lines go to DIR/rejects.jsonl.\n"
    "\n"
    "  -e, --endpoint EP     the daemon (default $GRIDLINE_ENDPOINT or tcp://127.0.0.1:7310;\n"
    "                        with keys: $GRIDLINE_KEY and $GRIDLINE_SERVER_KEY)\n"
    "  -s, --spool DIR       the spool folder (created if missing)\n"
    "  -i, --input FILE|-    read lines from FILE (- : stdin; the default without --watch-dir)\n"
    "  -w, --watch-dir DIR   also take new *.jsonl files from DIR (renamed *.jsonl.spooled\n"
    "                        once spooled; write them under a dot name and rename them in)\n"
    "  -t, --timeout MS      wait this long for each reply (default 5000)\n"
    "  -r, --retry-ms MS     first retry delay, doubled up to 10 s (default 500)\n"
    "  -n, --max-retries N   with --once: give up after N failed attempts in a row (default 10)\n"
    "  -g, --gateway-id ID   the id in derived request ids (default: DIR/gateway-id, made once)\n"
    "  -1, --once            process the input, drain the spool and exit: 0 when the spool is\n"
    "                        empty, 1 when the daemon stayed unreachable (lines stay spooled)\n"
    "\n"
    "Without --once the gateway runs until the input ends and the spool is drained (with\n"
    "--watch-dir: until SIGTERM/SIGINT). Progress goes to stderr, at most once a second:\n"
    "  gridline-gateway: spooled N, sent N, replayed N, rejected N, pending N\n";

typedef struct {
    char  *buf;
    size_t len;
    size_t cap;
    bool   overflow;
} linebuf;

typedef struct {
    const char *endpoint;
    const char *spool_dir;
    const char *input;
    const char *watch_dir;
    const char *gateway_id;
    int         timeout_ms;
    int         retry_ms;
    int         max_retries;
    bool        once;

    char        gwid[GWID_MAX + 1];
    char       *spool_path;
    char       *done_path;
    char       *rejects_path;
    int         lock_fd;
    int         spool_fd;
    int         done_fd;
    int         rejects_fd;
    FILE       *rd;
    bool        spool_dirty;
    bool        rejects_dirty;

    off_t       spool_size;
    off_t       done_off;
    uint64_t    pending;
    uint64_t    spooled, sent, replayed, rejected;

    int         in_fd;
    bool        in_open;
    linebuf     in_line;

    gl_client  *client;
    bool        unreachable; /* waiting to retry: no reply, or the daemon was busy */
    bool        busy;        /* the daemon answered overloaded/unavailable/internal */
    int         failures;
    int64_t     next_try;
    char        last_error[320];

    int64_t     last_progress;
    bool        changed;
} gateway;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gridline-gateway: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL) {
        die("out of memory");
    }
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* ---- progress ------------------------------------------------------------------ */

static void progress(gateway *g, bool force)
{
    int64_t t = now_ms();
    if (!force && !(g->changed || g->unreachable)) {
        return;
    }
    if (!force && t - g->last_progress < PROGRESS_MS) {
        return;
    }
    char tail[400] = "";
    if (g->unreachable) {
        int64_t left = g->next_try - t;
        snprintf(tail, sizeof tail, " (daemon %s, retry in %" PRId64 " ms: %s)",
                 g->busy ? "busy" : "unreachable", left > 0 ? left : 0, g->last_error);
    }
    fprintf(stderr,
            "gridline-gateway: spooled %" PRIu64 ", sent %" PRIu64 ", replayed %" PRIu64
            ", rejected %" PRIu64 ", pending %" PRIu64 "%s\n",
            g->spooled, g->sent, g->replayed, g->rejected, g->pending, tail);
    g->last_progress = t;
    g->changed = false;
}

/* ---- the spool --------------------------------------------------------------- */

static void write_done_offset(gateway *g)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%020jd\n", (intmax_t)g->done_off);
    if (pwrite(g->done_fd, buf, (size_t)n, 0) != n || fdatasync(g->done_fd) != 0) {
        die("cannot write %s: %s", g->done_path, strerror(errno));
    }
}

static void sync_files(gateway *g)
{
    if (g->spool_dirty) {
        if (fdatasync(g->spool_fd) != 0) {
            die("cannot fsync %s: %s", g->spool_path, strerror(errno));
        }
        g->spool_dirty = false;
    }
    if (g->rejects_dirty) {
        if (fdatasync(g->rejects_fd) != 0) {
            die("cannot fsync %s: %s", g->rejects_path, strerror(errno));
        }
        g->rejects_dirty = false;
    }
}

/* Cuts a torn last record (a crash mid-append) back to the last newline. */
static void cut_torn_tail(gateway *g)
{
    off_t end = g->spool_size;
    char buf[4096];
    while (end > 0) {
        size_t n = end > (off_t)sizeof buf ? sizeof buf : (size_t)end;
        off_t from = end - (off_t)n;
        ssize_t r = pread(g->spool_fd, buf, n, from);
        if (r != (ssize_t)n) {
            die("cannot read %s: %s", g->spool_path, r < 0 ? strerror(errno) : "short read");
        }
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                off_t keep = from + (off_t)i;
                if (keep != g->spool_size) {
                    fprintf(stderr, "gridline-gateway: cutting a torn record (%jd bytes) "
                            "off the end of %s\n", (intmax_t)(g->spool_size - keep),
                            g->spool_path);
                    if (ftruncate(g->spool_fd, keep) != 0 || fsync(g->spool_fd) != 0) {
                        die("cannot truncate %s: %s", g->spool_path, strerror(errno));
                    }
                    g->spool_size = keep;
                }
                return;
            }
        }
        end = from;
    }
    if (g->spool_size > 0) {
        if (ftruncate(g->spool_fd, 0) != 0 || fsync(g->spool_fd) != 0) {
            die("cannot truncate %s: %s", g->spool_path, strerror(errno));
        }
        g->spool_size = 0;
    }
}

/* Counts the records between done_off and the end. */
static uint64_t count_pending(gateway *g)
{
    uint64_t n = 0;
    char buf[65536];
    off_t at = g->done_off;
    while (at < g->spool_size) {
        ssize_t r = pread(g->spool_fd, buf, sizeof buf, at);
        if (r <= 0) {
            die("cannot read %s: %s", g->spool_path, r < 0 ? strerror(errno) : "short read");
        }
        for (ssize_t i = 0; i < r; i++) {
            n += buf[i] == '\n';
        }
        at += r;
    }
    return n;
}

static void load_gateway_id(gateway *g)
{
    if (g->gateway_id != NULL) {
        size_t n = strlen(g->gateway_id);
        if (n == 0 || n > GWID_MAX) {
            fprintf(stderr, "gridline-gateway: --gateway-id must be 1-%d bytes\n", GWID_MAX);
            exit(2);
        }
        for (size_t i = 0; i < n; i++) {
            char c = g->gateway_id[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.')) {
                fprintf(stderr, "gridline-gateway: --gateway-id: letters, digits, - _ . only\n");
                exit(2);
            }
        }
        memcpy(g->gwid, g->gateway_id, n + 1);
        return;
    }
    char *path = path_join(g->spool_dir, "gateway-id");
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char buf[GWID_MAX + 2] = "";
        if (fgets(buf, sizeof buf, f) != NULL) {
            buf[strcspn(buf, "\r\n")] = '\0';
        }
        fclose(f);
        if (buf[0] != '\0') {
            /* At most GWID_MAX bytes were read; copy what fits and end it. */
            size_t n = strlen(buf);
            if (n >= sizeof g->gwid) {
                n = sizeof g->gwid - 1;
            }
            memcpy(g->gwid, buf, n);
            g->gwid[n] = '\0';
            free(path);
            return;
        }
    }
    char rid[GL_CLIENT_REQUEST_ID_LEN + 1];
    if (gl_client_request_id(rid, sizeof rid) != 0) {
        die("no random bytes for a gateway id");
    }
    /* The last 16 digits: a request_id begins with the time, and ends with random bits. */
    memmove(rid, rid + GL_CLIENT_REQUEST_ID_LEN - 16, 17);
    char *tmp = path_join(g->spool_dir, ".gateway-id.tmp");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write_all(fd, rid, strlen(rid)) != 0 || write_all(fd, "\n", 1) != 0 ||
        fsync(fd) != 0 || rename(tmp, path) != 0) {
        die("cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
    fsync_dir(g->spool_dir);
    snprintf(g->gwid, sizeof g->gwid, "%s", rid);
    free(tmp);
    free(path);
}

static void spool_open(gateway *g)
{
    if (mkdir(g->spool_dir, 0755) != 0 && errno != EEXIST) {
        die("cannot create %s: %s", g->spool_dir, strerror(errno));
    }
    char *lock = path_join(g->spool_dir, "lock");
    g->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (g->lock_fd < 0) {
        die("cannot open %s: %s", lock, strerror(errno));
    }
    if (flock(g->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        die("%s is in use by another gridline-gateway (%s)", g->spool_dir, strerror(errno));
    }
    free(lock);
    load_gateway_id(g);

    g->spool_path = path_join(g->spool_dir, "spool.jsonl");
    g->done_path = path_join(g->spool_dir, "spool.done");
    g->rejects_path = path_join(g->spool_dir, "rejects.jsonl");
    g->spool_fd = open(g->spool_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    g->done_fd = open(g->done_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    g->rejects_fd = open(g->rejects_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g->spool_fd < 0 || g->done_fd < 0 || g->rejects_fd < 0) {
        die("cannot open the spool in %s: %s", g->spool_dir, strerror(errno));
    }
    fsync_dir(g->spool_dir);
    struct stat st;
    if (fstat(g->spool_fd, &st) != 0) {
        die("cannot stat %s: %s", g->spool_path, strerror(errno));
    }
    g->spool_size = st.st_size;
    cut_torn_tail(g);

    char buf[32] = "";
    ssize_t r = pread(g->done_fd, buf, sizeof buf - 1, 0);
    g->done_off = 0;
    if (r > 0) {
        buf[r] = '\0';
        char *end = NULL;
        long long v = strtoll(buf, &end, 10);
        if (end != buf && v > 0) {
            g->done_off = (off_t)v;
        }
    }
    if (g->done_off > g->spool_size) {
        /* A crash between truncating the spool and resetting the offset. */
        g->done_off = g->spool_size;
    }
    if (g->done_off > 0) {
        char c;
        if (pread(g->spool_fd, &c, 1, g->done_off - 1) != 1 || c != '\n') {
            /* Not at a record boundary: start over; resending is harmless. */
            g->done_off = 0;
        }
    }
    g->pending = count_pending(g);
    g->rd = fopen(g->spool_path, "r");
    if (g->rd == NULL) {
        die("cannot open %s: %s", g->spool_path, strerror(errno));
    }
}

/* Empties the spool once every record in it is done. */
static void spool_compact(gateway *g)
{
    if (g->pending != 0 || g->done_off != g->spool_size || g->spool_size == 0) {
        return;
    }
    if (ftruncate(g->spool_fd, 0) != 0 || fsync(g->spool_fd) != 0) {
        die("cannot truncate %s: %s", g->spool_path, strerror(errno));
    }
    g->spool_size = 0;
    g->done_off = 0;
    write_done_offset(g);
}

/* ---- rejects ----------------------------------------------------------------- */

/* A JSON string of bytes that may not be UTF-8 (bad input): invalid bytes become '?'. */
static json_t *lossy_string(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j != NULL) {
        return j;
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        copy[i] = (c >= 0x80 || c == 0) ? '?' : (char)c;
    }
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

static void reject(gateway *g, const char *code, const char *field, const char *message,
                   const char *line, size_t len, const char *request_id)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", lossy_string(message, strlen(message)));
    if (field != NULL && field[0] != '\0') {
        json_object_set_new(err, "field", lossy_string(field, strlen(field)));
    }
    json_t *rec = json_object();
    json_object_set_new(rec, "at", json_integer(wall_ms()));
    json_object_set_new(rec, "error", err);
    if (request_id != NULL) {
        json_object_set_new(rec, "request_id", lossy_string(request_id, strlen(request_id)));
    }
    json_t *l = lossy_string(line, len);
    json_object_set_new(rec, "line", l != NULL ? l : json_string(""));
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (text == NULL) {
        die("out of memory");
    }
    size_t n = strlen(text);
    text[n] = '\n';
    if (write_all(g->rejects_fd, text, n + 1) != 0) {
        die("cannot write %s: %s", g->rejects_path, strerror(errno));
    }
    free(text);
    g->rejects_dirty = true;
    g->rejected++;
    g->changed = true;
}

/* ---- ingest: one input line into the spool ------------------------------------ */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void derive_request_id(const gateway *g, const char *canon, char *out, size_t cap)
{
    size_t n = strlen(canon);
    uint64_t a = fnv1a(0xcbf29ce484222325ULL, g->gwid, strlen(g->gwid));
    a = fnv1a(a, "\n", 1);
    a = fnv1a(a, canon, n);
    uint64_t b = fnv1a(0x84222325cbf29ce4ULL ^ (uint64_t)n, canon, n);
    b = fnv1a(b, g->gwid, strlen(g->gwid));
    snprintf(out, cap, "gw:%s:%016" PRIx64 "%016" PRIx64, g->gwid, mix64(a ^ (b >> 1)),
             mix64(b + a));
}

static void ingest_line(gateway *g, const char *s, size_t n, bool overflow)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t')) {
        lead++;
    }
    if (overflow) {
        char msg[96];
        snprintf(msg, sizeof msg, "the line is longer than %d bytes", MAX_LINE);
        reject(g, "bad_json", NULL, msg, s, n > 200 ? 200 : n, NULL);
        return;
    }
    if (lead == n) {
        return; /* blank line */
    }
    json_error_t jerr;
    json_t *obj = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "not JSON: %s (column %d)", jerr.text, jerr.column);
        reject(g, "bad_json", NULL, msg, s, n, NULL);
        return;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        reject(g, "bad_json", NULL, "the line is JSON but not an object", s, n, NULL);
        return;
    }
    json_t *rid = json_object_get(obj, "request_id");
    if (rid == NULL || json_is_null(rid)) {
        json_object_del(obj, "request_id");
        char *canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (canon == NULL) {
            die("out of memory");
        }
        char id[160];
        derive_request_id(g, canon, id, sizeof id);
        free(canon);
        json_object_set_new(obj, "request_id", json_string(id));
    }
    char *rec = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (rec == NULL) {
        die("out of memory");
    }
    size_t len = strlen(rec);
    rec[len] = '\n';
    if (write_all(g->spool_fd, rec, len + 1) != 0) {
        int e = errno;
        (void)ftruncate(g->spool_fd, g->spool_size);
        die("cannot append to %s: %s", g->spool_path, strerror(e));
    }
    free(rec);
    g->spool_size += (off_t)(len + 1);
    g->spool_dirty = true;
    g->pending++;
    g->spooled++;
    g->changed = true;
}

static void lb_feed(gateway *g, linebuf *lb, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) : n;
        if (!lb->overflow) {
            if (lb->len + take > MAX_LINE) {
                lb->overflow = true;
                size_t room = MAX_LINE - lb->len;
                take = room < take ? room : take; /* keep a prefix for the reject */
            }
            if (lb->len + take > lb->cap) {
                size_t cap = lb->cap ? lb->cap : 4096;
                while (cap < lb->len + take) {
                    cap *= 2;
                }
                char *nb = realloc(lb->buf, cap);
                if (nb == NULL) {
                    die("out of memory");
                }
                lb->buf = nb;
                lb->cap = cap;
            }
            memcpy(lb->buf + lb->len, p, take);
            lb->len += take;
        }
        if (nl == NULL) {
            return;
        }
        ingest_line(g, lb->buf, lb->len, lb->overflow);
        lb->len = 0;
        lb->overflow = false;
        n -= (size_t)(nl - p) + 1;
        p = nl + 1;
    }
}

static void lb_finish(gateway *g, linebuf *lb)
{
    if (lb->len > 0 || lb->overflow) {
        ingest_line(g, lb->buf, lb->len, lb->overflow);
    }
    lb->len = 0;
    lb->overflow = false;
}

/* Reads what the input has now (up to a budget) into the spool. */
static void ingest_input(gateway *g)
{
    static char chunk[READ_CHUNK];
    size_t got = 0;
    while (g->in_open && got < INGEST_BUDGET) {
        struct pollfd pfd = {.fd = g->in_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 0);
        if (pr < 0) {
            if (errno == EINTR) {
                break;
            }
            die("poll: %s", strerror(errno));
        }
        if (pr == 0) {
            break;
        }
        ssize_t r = read(g->in_fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                break;
            }
            die("cannot read the input: %s", strerror(errno));
        }
        if (r == 0) {
            lb_finish(g, &g->in_line);
            g->in_open = false;
            if (g->in_fd != STDIN_FILENO) {
                close(g->in_fd);
            }
            g->in_fd = -1;
            break;
        }
        lb_feed(g, &g->in_line, chunk, (size_t)r);
        got += (size_t)r;
    }
    sync_files(g);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Spools every *.jsonl file in the watch folder (in name order), then renames it
 * NAME.spooled. A crash between the two re-reads the file: its lines carry the same
 * request ids, so nothing is registered twice. */
static void scan_watch_dir(gateway *g)
{
    DIR *d = opendir(g->watch_dir);
    if (d == NULL) {
        static int warned_errno;
        if (errno != warned_errno) { /* once per distinct failure, not every scan */
            warned_errno = errno;
            fprintf(stderr, "gridline-gateway: cannot open %s: %s\n", g->watch_dir,
                    strerror(errno));
        }
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 7 || strcmp(e->d_name + len - 6, ".jsonl") != 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (nn == NULL) {
                die("out of memory");
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            die("out of memory");
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    static char chunk[READ_CHUNK];
    for (size_t i = 0; i < n; i++) {
        char *path = path_join(g->watch_dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0) {
                close(fd);
            }
            free(path);
            free(names[i]);
            continue;
        }
        linebuf lb = {0};
        ssize_t r;
        while ((r = read(fd, chunk, sizeof chunk)) > 0) {
            lb_feed(g, &lb, chunk, (size_t)r);
        }
        if (r < 0) {
            die("cannot read %s: %s", path, strerror(errno));
        }
        lb_finish(g, &lb);
        free(lb.buf);
        close(fd);
        sync_files(g);
        size_t plen = strlen(path) + sizeof ".spooled";
        char *done = malloc(plen);
        if (done == NULL) {
            die("out of memory");
        }
        snprintf(done, plen, "%s.spooled", path);
        if (rename(path, done) != 0) {
            die("cannot rename %s: %s", path, strerror(errno));
        }
        fsync_dir(g->watch_dir);
        free(done);
        free(path);
        free(names[i]);
    }
    free(names);
}

/* ---- sending ----------------------------------------------------------------- */

static int pack_json(msgpack_packer *pk, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        if (msgpack_pack_map(pk, json_object_size(j)) != 0) {
            return -1;
        }
        json_object_foreach((json_t *)j, key, v) {
            size_t kl = strlen(key);
            if (msgpack_pack_str(pk, kl) != 0 || msgpack_pack_str_body(pk, key, kl) != 0 ||
                pack_json(pk, v) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (msgpack_pack_array(pk, json_array_size(j)) != 0) {
            return -1;
        }
        json_array_foreach(j, i, v) {
            if (pack_json(pk, v) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, json_string_value(j), n);
    }
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

/* Whether a reply body has "replayed": true. */
static bool reply_replayed(const char *reply, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    bool out = false;
    if (msgpack_unpack_next(&u, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 8 &&
                memcmp(k->via.str.ptr, "replayed", 8) == 0) {
                out = m->ptr[i].val.type == MSGPACK_OBJECT_BOOLEAN && m->ptr[i].val.via.boolean;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return out;
}

static void mark_done(gateway *g, off_t next)
{
    g->done_off = next;
    g->pending--;
    g->changed = true;
    write_done_offset(g);
    spool_compact(g);
}

static void schedule_retry(gateway *g, const char *why, bool busy)
{
    g->busy = busy;
    g->failures++;
    int shift = g->failures - 1 < 6 ? g->failures - 1 : 6;
    int64_t delay = (int64_t)g->retry_ms << shift;
    int64_t cap = g->retry_ms > MAX_BACKOFF_MS ? g->retry_ms : MAX_BACKOFF_MS;
    if (delay > cap) {
        delay = cap;
    }
    g->next_try = now_ms() + delay;
    snprintf(g->last_error, sizeof g->last_error, "%s", why);
    bool was = g->unreachable;
    g->unreachable = true;
    if (!was) {
        progress(g, true);
    }
}

static void reconnect(gateway *g)
{
    gl_client_destroy(&g->client); /* drops the unanswered request (linger 0) */
    char err[256];
    g->client = gl_client_new_env_keys(g->endpoint, err, sizeof err);
    if (g->client == NULL) {
        die("%s", err);
    }
}

/* Sends the oldest pending record and acts on the answer. */
static void send_one(gateway *g)
{
    char *line = NULL;
    size_t cap = 0;
    clearerr(g->rd);
    if (fseeko(g->rd, g->done_off, SEEK_SET) != 0) {
        die("cannot seek in %s: %s", g->spool_path, strerror(errno));
    }
    ssize_t n = getline(&line, &cap, g->rd);
    if (n <= 0 || line[n - 1] != '\n') {
        die("cannot read the record at %jd of %s: %s", (intmax_t)g->done_off, g->spool_path,
            n < 0 && ferror(g->rd) ? strerror(errno) : "truncated");
    }
    off_t next = g->done_off + (off_t)n;
    size_t len = (size_t)n - 1;
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        reject(g, "bad_json", NULL, "a spool record that does not read back", line, len, NULL);
        sync_files(g);
        json_decref(obj);
        free(line);
        mark_done(g, next);
        return;
    }
    json_t *rid = json_object_get(obj, "request_id");
    char ridbuf[200] = "";
    if (json_is_string(rid)) {
        snprintf(ridbuf, sizeof ridbuf, "%s", json_string_value(rid));
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack_json(&pk, obj) != 0) {
        die("out of memory");
    }
    json_decref(obj);

    char *reply = NULL;
    size_t rlen = 0;
    gl_error err;
    gl_error_clear(&err);
    int rc = gl_client_call(g->client, "case.create", sb.data, sb.size, g->timeout_ms, &reply,
                            &rlen, &err);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        if (reply_replayed(reply, rlen)) {
            g->replayed++;
        } else {
            g->sent++;
        }
        mark_done(g, next);
        g->failures = 0;
        if (g->unreachable) {
            g->unreachable = false;
            progress(g, true);
        }
    } else if (reply != NULL && rc != GL_EOVERLOADED && rc != GL_EUNAVAILABLE &&
               rc != GL_EINTERNAL) {
        /* The daemon refused this line; resending it cannot help. */
        reject(g, gl_error_name(rc), err.field, err.message, line, len,
               ridbuf[0] ? ridbuf : NULL);
        sync_files(g);
        mark_done(g, next);
        g->failures = 0;
        g->unreachable = false;
    } else if (reply == NULL && rc == GL_EINVALID) {
        reject(g, gl_error_name(rc), err.field, err.message, line, len,
               ridbuf[0] ? ridbuf : NULL);
        sync_files(g);
        mark_done(g, next);
    } else {
        char why[300];
        snprintf(why, sizeof why, "%s: %s", gl_error_name(rc), err.message);
        if (reply == NULL) {
            reconnect(g);
        }
        schedule_retry(g, why, reply != NULL);
    }
    free(reply);
    free(line);
}

/* ---- main -------------------------------------------------------------------- */

static int parse_int(const char *opt, const char *s, int min)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > INT_MAX) {
        fprintf(stderr, "gridline-gateway: %s wants an integer >= %d, not '%s'\n", opt, min, s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    static gateway gw;
    gateway *g = &gw;
    g->timeout_ms = 5000;
    g->retry_ms = 500;
    g->max_retries = 10;
    g->in_fd = -1;
    const char *env = getenv(GL_CLIENT_ENDPOINT_ENV);
    g->endpoint = env != NULL && env[0] != '\0' ? env : GL_CLIENT_DEFAULT_ENDPOINT;

    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"spool", required_argument, NULL, 's'},
        {"input", required_argument, NULL, 'i'},
        {"watch-dir", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"retry-ms", required_argument, NULL, 'r'},
        {"max-retries", required_argument, NULL, 'n'},
        {"gateway-id", required_argument, NULL, 'g'},
        {"once", no_argument, NULL, '1'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "e:s:i:w:t:r:n:g:1h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': g->endpoint = optarg; break;
        case 's': g->spool_dir = optarg; break;
        case 'i': g->input = optarg; break;
        case 'w': g->watch_dir = optarg; break;
        case 't': g->timeout_ms = parse_int("--timeout", optarg, 1); break;
        case 'r': g->retry_ms = parse_int("--retry-ms", optarg, 1); break;
        case 'n': g->max_retries = parse_int("--max-retries", optarg, 0); break;
        case 'g': g->gateway_id = optarg; break;
        case '1': g->once = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc || g->spool_dir == NULL) {
        fputs(g->spool_dir == NULL ? "gridline-gateway: --spool DIR is required\n"
                                   : "gridline-gateway: unexpected arguments\n", stderr);
        fputs(usage_text, stderr);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    spool_open(g);
    if (g->input != NULL && strcmp(g->input, "-") != 0) {
        g->in_fd = open(g->input, O_RDONLY | O_CLOEXEC);
        if (g->in_fd < 0) {
            die("cannot open %s: %s", g->input, strerror(errno));
        }
        g->in_open = true;
    } else if (g->input != NULL || g->watch_dir == NULL) {
        g->in_fd = STDIN_FILENO;
        g->in_open = true;
    }
    char err[256];
    g->client = gl_client_new_env_keys(g->endpoint, err, sizeof err);
    if (g->client == NULL) {
        die("%s", err);
    }
    if (g->pending > 0) {
        fprintf(stderr, "gridline-gateway: %" PRIu64 " lines pending in %s from before\n",
                g->pending, g->spool_path);
    }

    int64_t next_scan = 0;
    bool scanned_once = false;
    int status = 0;
    while (!stop_requested) {
        if (g->in_open) {
            ingest_input(g);
        }
        if (g->watch_dir != NULL && (!g->once || !scanned_once) && now_ms() >= next_scan) {
            scan_watch_dir(g);
            scanned_once = true;
            next_scan = now_ms() + SCAN_EVERY_MS;
        }
        progress(g, false);
        int64_t t = now_ms();
        if (g->pending > 0 && t >= g->next_try) {
            send_one(g);
            if (g->once && g->failures > g->max_retries) {
                /* --once: the input is finite; spool the rest of it before leaving. */
                while (g->in_open && !stop_requested) {
                    struct pollfd pfd = {.fd = g->in_fd, .events = POLLIN};
                    (void)poll(&pfd, 1, PROGRESS_MS);
                    ingest_input(g);
                }
                status = 1;
                break;
            }
            continue;
        }
        bool more_input = g->in_open || (g->watch_dir != NULL && !g->once);
        if (g->pending == 0 && !more_input) {
            break;
        }
        int64_t wait = PROGRESS_MS;
        if (g->pending > 0 && g->next_try - t < wait) {
            wait = g->next_try - t;
        }
        if (g->watch_dir != NULL && !g->once && next_scan - t < wait) {
            wait = next_scan - t;
        }
        if (wait < 0) {
            wait = 0;
        }
        struct pollfd pfd = {.fd = g->in_fd, .events = POLLIN};
        (void)poll(&pfd, g->in_open ? 1 : 0, (int)wait);
    }
    sync_files(g);
    progress(g, true);
    if (status == 1) {
        fprintf(stderr, "gridline-gateway: giving up after %d attempts (%s); %" PRIu64
                " lines pending in %s\n", g->failures, g->last_error, g->pending, g->spool_path);
    }
    gl_client_destroy(&g->client);
    if (g->rd != NULL) {
        fclose(g->rd);
    }
    free(g->in_line.buf);
    free(g->spool_path);
    free(g->done_path);
    free(g->rejects_path);
    return status;
}
