/*
 * gridline: the command-line client for gridlined. Registers cases, acts on them, shows
 * them, lists them (and the overdue ones), shows the rates units are judged by and the
 * catalogue, checks that the daemon is there, follows the event feed (watch, through
 * gl_feed) and serves the hotline (calls, callback).
 *
 * Output is for people by default (tables, "key: value" lines) and for scripts with
 * --json (the reply body as it came, as JSON). Exit status: 0 done; 1 the daemon
 * refused the request or could not be reached; 2 the command line was wrong.
 * Everything that talks to the daemon goes through gl_client; everything that shows a
 * reply goes through mp_print, but for the stats table, laid out here (with mp_print's
 * measure of terminal columns) until mp_print has one.
 */
#include "gl_client.h"
#include "gl_feed.h"
#include "mp_print.h"

#include "gl_error.h"
#include "keyfile.h"
#include "mp_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE   2

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS     3600000
/* With --all and no --limit, pages are as large as the daemon allows: fewer round trips. */
#define ALL_PAGE_LIMIT 500

static const char usage_main[] =
    "usage: gridline [--endpoint EP] [--json] [--timeout MS] COMMAND [ARGS...]\n"
    "\n"
    "Talks to gridlined, the city's community-service case daemon.\n"
    "\n"
    "Commands:\n"
    "  create    register a case\n"
    "  get       show one case, by id or code\n"
    "  list      list cases matching a filter\n"
    "  overdue   list the cases past a deadline\n"
    "  act       take an action on a case: accept, resolve, return, callback, ...\n"
    "  stats     counts and rates by unit, district, category, street or community\n"
    "  catalog   show the categories, units, places and SLA classes\n"
    "  ping      check that the daemon is up and serves case.create\n"
    "  watch     follow the event feed, one line per event; resumes from a saved position\n"
    "  calls     list a caller's cases, by phone number (hotline)\n"
    "  callback  record a callback's answer on a resolved case (hotline)\n"
    "  keygen    make a CURVE key pair: NAME.key (secret) and NAME.pub\n"
    "\n"
    "Options:\n"
    "  -e, --endpoint EP  the daemon's ZeroMQ endpoint (default: $GRIDLINE_ENDPOINT,\n"
    "                     else tcp://127.0.0.1:7310)\n"
    "  --key FILE         this client's secret key file, for a daemon with keys\n"
    "                     (default: $GRIDLINE_KEY)\n"
    "  --server-key FILE  the daemon's public key file (default: $GRIDLINE_SERVER_KEY)\n"
    "  -j, --json         print the reply body as JSON (indented when stdout is a terminal)\n"
    "  -t, --timeout MS   how long to wait for each reply (default 5000)\n"
    "  -h, --help         show this help; 'gridline COMMAND --help' shows a command's\n"
    "\n"
    "Exit status: 0 done, 1 the daemon refused or did not answer, 2 bad usage.\n";

static const char usage_create[] =
    "usage: gridline create --description TEXT --district D [--channel C] [--category X]\n"
    "                       [--street S] [--community C] [--grid G] [--address A]\n"
    "                       [--lat N --lon N] [--urgency U] [--title T] [--name N]\n"
    "                       [--phone P] [--attachment URL]... [--reported-at MS]\n"
    "                       [--on-spot | --agent COMMUNITY] [--request-id ID]\n"
    "\n"
    "Registers a case (service case.create).\n"
    "\n"
    "  --channel C         hotline, window, grid, web, app or transfer\n"
    "  --category X        a category code from 'gridline catalog'\n"
    "  --description TEXT  what the caller reported\n"
    "  --district D        a district code; --street, --community and --grid narrow the\n"
    "                      place down the tree (a community needs its street)\n"
    "  --address A         the street address, free text\n"
    "  --lat N --lon N     coordinates, in degrees (both or neither)\n"
    "  --urgency U         emergency, urgent or normal (the daemon's default: normal)\n"
    "  --title T           a short title\n"
    "  --name N --phone P  the reporter\n"
    "  --attachment URL    a photo or file; repeat for more\n"
    "  --reported-at MS    when it was reported, ms since the epoch (offline replay)\n"
    "  --on-spot           resolved on the spot (window channel)\n"
    "  --agent COMMUNITY   代办: the community that follows the case for the resident\n"
    "  --request-id ID     the key that makes a retry safe; without it one is made (a\n"
    "                      UUIDv7: the time, then random bits) and printed: if no reply\n"
    "                      comes, run the same command again with --request-id ID and the\n"
    "                      case is registered at most once\n";

static const char usage_get[] =
    "usage: gridline get ID|CODE [--history]\n"
    "\n"
    "Shows one case (service case.get): by id when the argument is all digits, else by\n"
    "code (e.g. GL-20261125-000123).\n"
    "\n"
    "  --history   also show the case's events\n";

static const char usage_act[] =
    "usage: gridline act ID ACTION [--note TEXT] [--version V] [ACTION'S OPTIONS]\n"
    "\n"
    "Takes an action on a case (service case.act) and shows the case after it.\n"
    "\n"
    "  accept                        sign for a dispatched case\n"
    "  note --note TEXT              add a note\n"
    "  resolve --reply TEXT          resolve, with the reply to the resident\n"
    "  return --reason TEXT          return a wrongly assigned case for routing again\n"
    "  extend --until MS --reason T  ask for more time (until: ms since the epoch)\n"
    "  approve_extension, reject_extension, urge, supervise, escalate, withdraw\n"
    "  reassign --unit CODE          dispatch to another unit\n"
    "  merge --into ID               merge into another case\n"
    "  callback --satisfaction S     satisfied, basically_satisfied or unsatisfied\n"
    "\n"
    "  --version V   refuse if the case is no longer at version V (someone acted first)\n"
    "  --note TEXT   a note for the action's event\n";

static const char usage_list[] =
    "usage: gridline list [--state S] [--unit U] [--district D] [--street S]\n"
    "                     [--community C] [--grid G] [--category X] [--channel C]\n"
    "                     [--phone P] [--overdue] [--supervised] [--from MS] [--to MS]\n"
    "                     [--limit N] [--after CURSOR] [--all]\n"
    "\n"
    "Lists cases (service case.list), oldest first, a page at a time.\n"
    "\n"
    "  --state S        registered, dispatched, accepted, resolved, closed, returned,\n"
    "                   merged or withdrawn\n"
    "  --unit U         handled by this unit now\n"
    "  --district D, --street S, --community C, --grid G   located there\n"
    "  --category X, --channel C   of this category, come in through this channel\n"
    "  --phone P        reported from this phone number\n"
    "  --overdue        past a deadline\n"
    "  --supervised     under supervision\n"
    "  --from MS        created at or after (ms since the epoch)\n"
    "  --to MS          created before (ms since the epoch)\n"
    "  --limit N        cases per page, 1-500 (the daemon's default: 50)\n"
    "  --after CURSOR   the page after this cursor (the 'next' of the previous page)\n"
    "  --all            follow the cursors to the end and show every page\n";

static const char usage_overdue[] =
    "usage: gridline overdue [--unit U] [--district D] [--limit N] [--after CURSOR] [--all]\n"
    "\n"
    "Lists the cases past a deadline they have not met (service case.list with the filter\n"
    "overdue): dispatched and not signed for after accept_by, or not resolved after\n"
    "resolve_by. Oldest first, a page at a time, as 'gridline list' shows them.\n"
    "\n"
    "  --unit U         handled by this unit now\n"
    "  --district D     located in this district\n"
    "  --limit N        cases per page, 1-500 (the daemon's default: 50)\n"
    "  --after CURSOR   the page after this cursor (the 'next' of the previous page)\n"
    "  --all            follow the cursors to the end and show every page\n";

static const char usage_stats[] =
    "usage: gridline stats --by GROUP [--from TIME] [--to TIME]\n"
    "\n"
    "Shows the counts and rates units are judged by (service stats.query) over the cases\n"
    "created in [--from, --to), one row per unit, district, category, street or community.\n"
    "\n"
    "  --by GROUP    unit, district, category, street or community\n"
    "  --from TIME   created at or after TIME: ms since the epoch, or YYYY-MM-DD (00:00 UTC)\n"
    "  --to TIME     created before TIME, in the same forms: --from 2026-11-01\n"
    "                --to 2026-12-01 is November (UTC)\n"
    "\n"
    "Columns: RECEIVED cases, DISPATCHED ones, and the four rates as percentages ('-' when\n"
    "there is nothing to divide by): RESPONSE signed for by accept_by / dispatched;\n"
    "ON TIME resolved by resolve_by / resolved; RESOLUTION resolved or closed / received;\n"
    "SATISFACTION satisfied or basically satisfied / callbacks. With --by community,\n"
    "STARS: the stars (3, 4, 5) the community earns by the city's thresholds. Cases with\n"
    "no value for GROUP (no unit yet, no street given, ...) are counted apart. With --json,\n"
    "the reply: every count of every row.\n";

static const char usage_catalog[] =
    "usage: gridline catalog\n"
    "\n"
    "Shows the city's catalogue (service catalog.get): categories with their SLA class\n"
    "per urgency, handling units, the place tree and the SLA classes.\n";

static const char usage_ping[] =
    "usage: gridline ping [SERVICE]\n"
    "\n"
    "Asks the daemon whether it serves SERVICE (default case.create) through\n"
    "mmi.service. Exits 0 when it does, 1 when it does not or does not answer.\n";

static const char usage_watch[] =
    "usage: gridline watch [--after N] [--position FILE] [--unit U] [--district D]\n"
    "                      [--category X] [--count N] [--wait-ms MS]\n"
    "\n"
    "Follows the event feed (service feed.pull), one line per event: sequence number,\n"
    "time (UTC), type, case code, state, unit, actor, note; with --json one JSON object\n"
    "per line. Runs until --count events or until interrupted; while the daemon does not\n"
    "answer it says so on stderr and keeps trying.\n"
    "\n"
    "  --position FILE  resume after the position saved in FILE (the start when it does\n"
    "                   not exist) and save it there after each batch shown, durably\n"
    "  --after N        start after sequence number N (and save that to --position)\n"
    "  --unit U, --district D, --category X   only the events that match\n"
    "  --count N        stop after N events (the position saved is the N-th's)\n"
    "  --wait-ms MS     how long one pull waits for new events, 0-30000 (default 25000)\n";

static const char usage_calls[] =
    "usage: gridline calls PHONE [--limit N] [--after CURSOR]\n"
    "\n"
    "Lists the cases reported from a phone number (service case.list, filter\n"
    "reporter_phone), every page unless --limit or --after is given: a caller's history\n"
    "for the hotline.\n";

static const char usage_callback[] =
    "usage: gridline callback ID --satisfaction S [--note TEXT] [--version V]\n"
    "\n"
    "Records a callback (回访) on a resolved case (service case.act, action callback)\n"
    "and shows the case after it. S is satisfied, basically_satisfied (the case is\n"
    "closed) or unsatisfied (it goes back to its unit).\n";

typedef struct {
    const char *endpoint;
    gl_client_keys keys;
    bool        json;
    int         timeout_ms;
    int         width;       /* columns for tables; 0 = do not cut */
    gl_client  *client;      /* connected on first use */
} cli;

/* ---- command-line helpers ---- */

static int usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "gridline: MESSAGE" and a hint where to look, returns EXIT_USAGE. */
static int usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    fputs("gridline: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'gridline %s%s--help'.\n", command != NULL ? command : "",
            command != NULL ? " " : "");
    return EXIT_USAGE;
}

/* The usage error for what getopt_long returned as '?' or ':' (opterr is off). */
static int option_error(const char *command, int ch, char *const argv[])
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (ch == ':') {
        return usage_error(command, "option %s needs a value", arg);
    }
    if (optopt > ' ' && optopt < 127 && arg[0] == '-' && arg[1] != '-') {
        return usage_error(command, "unknown option -%c", optopt);
    }
    /* An unknown long option, or a value given to one that takes none. */
    return usage_error(command, "unknown option or unexpected value: %s", arg);
}

static bool parse_i64(const char *s, int64_t *out)
{
    char     *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (s[0] == '\0' || end == NULL || *end != '\0' || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

static bool all_digits(const char *s)
{
    if (s[0] == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char              *end = NULL;
    unsigned long long v;

    if (!all_digits(s)) {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char  *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v)) {
        return false;
    }
    *out = v;
    return true;
}

/* Columns available for tables: the terminal's, else $COLUMNS, else 0 (do not cut:
 * output into a pipe keeps whole titles). */
static int output_width(void)
{
    struct winsize ws;
    const char    *env = getenv("COLUMNS");
    int64_t        v;

    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    if (env != NULL && parse_i64(env, &v) && v > 0 && v < 10000) {
        return (int)v;
    }
    return 0;
}

/* ---- packing ---- */

/* A string member that is packed only when set. */
typedef struct {
    const char *key;
    const char *val;
} str_member;

static uint32_t str_members_set(const str_member *m, size_t n)
{
    uint32_t k = 0;

    for (size_t i = 0; i < n; i++) {
        k += m[i].val != NULL;
    }
    return k;
}

static int pack_str_members(msgpack_packer *pk, const str_member *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].val != NULL && (mp_pack_cstr(pk, m[i].key) != 0 || mp_pack_cstr(pk, m[i].val) != 0)) {
            return -1;
        }
    }
    return 0;
}

/* ---- calling the daemon and showing replies ---- */

static void print_error(const gl_error *err)
{
    fprintf(stderr, "gridline: %s: %s", gl_error_name(err->code), err->message);
    if (err->field[0] != '\0') {
        fprintf(stderr, " (field %s)", err->field);
    }
    fputc('\n', stderr);
}

/* Prints a reply body as JSON. The top-level "rid" is left out: gl_client added it to
 * match the reply and the user never asked for it. */
static int print_json(const msgpack_object *o)
{
    unsigned           flags = isatty(STDOUT_FILENO) ? MP_PRINT_PRETTY : 0;
    msgpack_object_kv *kv = NULL;
    msgpack_object     shown = *o;
    int                rc = -1;

    if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > 0) {
        kv = calloc(o->via.map.size, sizeof(*kv));
        if (kv == NULL) {
            goto done;
        }
        shown.via.map.size = 0;
        shown.via.map.ptr = kv;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;

            if (k->type == MSGPACK_OBJECT_STR
                && gl_str_eq(gl_str_of(k->via.str.ptr, k->via.str.size), "rid")) {
                continue;
            }
            kv[shown.via.map.size++] = o->via.map.ptr[i];
        }
    }
    if (mp_print_json(stdout, &shown, flags) != 0 || fputc('\n', stdout) == EOF) {
        goto done;
    }
    rc = 0;
done:
    free(kv);
    return rc;
}

/* Connects on first use. Returns 0, or EXIT_REFUSED with the reason printed. */
static int ensure_client(cli *c)
{
    char err[256];

    if (c->client != NULL) {
        return 0;
    }
    c->client = gl_client_new_keys(c->endpoint, &c->keys, err, sizeof(err));
    if (c->client == NULL) {
        fprintf(stderr, "gridline: %s\n", err);
        return EXIT_REFUSED;
    }
    return 0;
}

/* A reply, kept with the buffer its objects point into. */
typedef struct {
    char             *buf;
    size_t            len;
    msgpack_unpacked  u;
    const msgpack_object *body;
} reply;

static void reply_free(reply *r)
{
    if (r->buf != NULL) {
        msgpack_unpacked_destroy(&r->u);
        free(r->buf);
        r->buf = NULL;
    }
    r->body = NULL;
}

/* Calls service with the packed body. On success returns 0 with r filled (free it with
 * reply_free). On failure prints the error (and, with --json, the reply body on stdout)
 * and returns EXIT_REFUSED; *answered says whether the daemon replied at all. */
static int call(cli *c, const char *service, const msgpack_sbuffer *body, reply *r,
                bool *answered)
{
    gl_error err;
    size_t   off = 0;
    int      rc;

    memset(r, 0, sizeof(*r));
    if (answered != NULL) {
        *answered = false;
    }
    rc = ensure_client(c);
    if (rc != 0) {
        return rc;
    }
    rc = gl_client_call(c->client, service, body->data, body->size, c->timeout_ms, &r->buf,
                        &r->len, &err);
    if (r->buf != NULL) {
        if (answered != NULL) {
            *answered = true;
        }
        /* gl_client has checked that the body is one map. */
        msgpack_unpacked_init(&r->u);
        if (msgpack_unpack_next(&r->u, r->buf, r->len, &off) == MSGPACK_UNPACK_SUCCESS) {
            r->body = &r->u.data;
        }
    }
    if (rc != 0) {
        if (c->json && r->body != NULL) {
            print_json(r->body);
        }
        print_error(&err);
        reply_free(r);
        return EXIT_REFUSED;
    }
    if (r->body == NULL) {
        fprintf(stderr, "gridline: bad_request: the reply could not be read\n");
        reply_free(r);
        return EXIT_REFUSED;
    }
    return 0;
}

/* Exit status after writing the output: a failed stdout (a full disk, a closed pipe)
 * must not look like success. */
static int finish_output(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gridline: cannot write the output: %s\n", strerror(errno));
        return EXIT_REFUSED;
    }
    return rc;
}

/* ---- create ---- */

enum {
    OPT_CHANNEL = 256, OPT_CATEGORY, OPT_DESCRIPTION, OPT_DISTRICT, OPT_STREET,
    OPT_COMMUNITY, OPT_GRID, OPT_ADDRESS, OPT_LAT, OPT_LON, OPT_URGENCY, OPT_TITLE,
    OPT_NAME, OPT_PHONE, OPT_ATTACHMENT, OPT_REPORTED_AT, OPT_ON_SPOT, OPT_REQUEST_ID,
    OPT_HISTORY, OPT_STATE, OPT_UNIT, OPT_CATEGORY_F, OPT_OVERDUE, OPT_SUPERVISED,
    OPT_FROM, OPT_TO, OPT_LIMIT, OPT_AFTER, OPT_ALL,
    OPT_NOTE, OPT_REPLY, OPT_REASON, OPT_UNTIL, OPT_INTO, OPT_SATISFACTION, OPT_VERSION,
    OPT_BY, OPT_AGENT, OPT_POSITION, OPT_COUNT, OPT_WAIT_MS
};

typedef struct {
    const char  *channel, *category, *urgency, *title, *description;
    const char  *district, *street, *community, *grid, *address;
    bool         has_lat, has_lon;
    double       lat, lon;
    const char  *name, *phone;
    const char **attachments;
    size_t       n_attachments;
    bool         has_reported_at;
    int64_t      reported_at;
    bool         on_spot;
    const char  *agent;
    const char  *request_id;
} create_args;

static int pack_create(msgpack_packer *pk, const create_args *a)
{
    const str_member top[] = {
        { "request_id", a->request_id }, { "channel", a->channel },
        { "category", a->category },     { "urgency", a->urgency },
        { "title", a->title },           { "description", a->description },
        { "agent", a->agent },
    };
    const str_member loc[] = {
        { "district", a->district }, { "street", a->street }, { "community", a->community },
        { "grid", a->grid },         { "address", a->address },
    };
    const str_member who[] = { { "name", a->name }, { "phone", a->phone } };
    uint32_t n = str_members_set(top, 7) + 1;
    uint32_t n_who = str_members_set(who, 2);

    n += n_who > 0;
    n += a->n_attachments > 0;
    n += a->has_reported_at;
    n += a->on_spot;
    if (msgpack_pack_map(pk, n) != 0 || pack_str_members(pk, top, 7) != 0) {
        return -1;
    }
    if (mp_pack_cstr(pk, "location") != 0
        || msgpack_pack_map(pk, str_members_set(loc, 5) + (a->has_lat ? 2 : 0)) != 0
        || pack_str_members(pk, loc, 5) != 0) {
        return -1;
    }
    if (a->has_lat
        && (mp_pack_cstr(pk, "lat") != 0 || msgpack_pack_double(pk, a->lat) != 0
            || mp_pack_cstr(pk, "lon") != 0 || msgpack_pack_double(pk, a->lon) != 0)) {
        return -1;
    }
    if (n_who > 0
        && (mp_pack_cstr(pk, "reporter") != 0 || msgpack_pack_map(pk, n_who) != 0
            || pack_str_members(pk, who, 2) != 0)) {
        return -1;
    }
    if (a->n_attachments > 0) {
        if (mp_pack_cstr(pk, "attachments") != 0
            || msgpack_pack_array(pk, a->n_attachments) != 0) {
            return -1;
        }
        for (size_t i = 0; i < a->n_attachments; i++) {
            if (mp_pack_cstr(pk, a->attachments[i]) != 0) {
                return -1;
            }
        }
    }
    if (a->has_reported_at
        && (mp_pack_cstr(pk, "reported_at") != 0 || msgpack_pack_int64(pk, a->reported_at) != 0)) {
        return -1;
    }
    if (a->on_spot && (mp_pack_cstr(pk, "resolved_on_spot") != 0 || msgpack_pack_true(pk) != 0)) {
        return -1;
    }
    return 0;
}

static int cmd_create(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "channel", required_argument, NULL, OPT_CHANNEL },
        { "category", required_argument, NULL, OPT_CATEGORY },
        { "description", required_argument, NULL, OPT_DESCRIPTION },
        { "district", required_argument, NULL, OPT_DISTRICT },
        { "street", required_argument, NULL, OPT_STREET },
        { "community", required_argument, NULL, OPT_COMMUNITY },
        { "grid", required_argument, NULL, OPT_GRID },
        { "address", required_argument, NULL, OPT_ADDRESS },
        { "lat", required_argument, NULL, OPT_LAT },
        { "lon", required_argument, NULL, OPT_LON },
        { "urgency", required_argument, NULL, OPT_URGENCY },
        { "title", required_argument, NULL, OPT_TITLE },
        { "name", required_argument, NULL, OPT_NAME },
        { "phone", required_argument, NULL, OPT_PHONE },
        { "attachment", required_argument, NULL, OPT_ATTACHMENT },
        { "reported-at", required_argument, NULL, OPT_REPORTED_AT },
        { "on-spot", no_argument, NULL, OPT_ON_SPOT },
        { "agent", required_argument, NULL, OPT_AGENT },
        { "request-id", required_argument, NULL, OPT_REQUEST_ID },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    create_args     a;
    char            request_id[GL_CLIENT_REQUEST_ID_LEN + 1];
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    reply           r = { 0 };
    bool            answered = false;
    int             ch;
    int             rc = EXIT_USAGE;

    memset(&a, 0, sizeof(a));
    msgpack_sbuffer_init(&sb);
    /* Every argument could be an --attachment; the daemon enforces the real limit. */
    a.attachments = calloc((size_t)argc + 1, sizeof(*a.attachments));
    if (a.attachments == NULL) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_CHANNEL:     a.channel = optarg; break;
        case OPT_CATEGORY:    a.category = optarg; break;
        case OPT_DESCRIPTION: a.description = optarg; break;
        case OPT_DISTRICT:    a.district = optarg; break;
        case OPT_STREET:      a.street = optarg; break;
        case OPT_COMMUNITY:   a.community = optarg; break;
        case OPT_GRID:        a.grid = optarg; break;
        case OPT_ADDRESS:     a.address = optarg; break;
        case OPT_URGENCY:     a.urgency = optarg; break;
        case OPT_TITLE:       a.title = optarg; break;
        case OPT_NAME:        a.name = optarg; break;
        case OPT_PHONE:       a.phone = optarg; break;
        case OPT_REQUEST_ID:  a.request_id = optarg; break;
        case OPT_ON_SPOT:     a.on_spot = true; break;
        case OPT_AGENT:       a.agent = optarg; break;
        case OPT_ATTACHMENT:  a.attachments[a.n_attachments++] = optarg; break;
        case OPT_LAT:
            if (!parse_double(optarg, &a.lat)) {
                rc = usage_error("create", "--lat wants degrees, e.g. 31.2304; got '%s'", optarg);
                goto done;
            }
            a.has_lat = true;
            break;
        case OPT_LON:
            if (!parse_double(optarg, &a.lon)) {
                rc = usage_error("create", "--lon wants degrees, e.g. 121.4737; got '%s'", optarg);
                goto done;
            }
            a.has_lon = true;
            break;
        case OPT_REPORTED_AT:
            if (!parse_i64(optarg, &a.reported_at)) {
                rc = usage_error("create", "--reported-at wants ms since the epoch; got '%s'",
                                 optarg);
                goto done;
            }
            a.has_reported_at = true;
            break;
        case 'h':
            fputs(usage_create, stdout);
            rc = finish_output(0);
            goto done;
        default:
            rc = option_error("create", ch, argv);
            goto done;
        }
    }
    if (optind < argc) {
        rc = usage_error("create", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    /* The protocol requires only these two (and the request_id, made below). */
    if (a.description == NULL || a.district == NULL) {
        rc = usage_error("create", "create needs%s%s",
                         a.description == NULL ? " --description" : "",
                         a.district == NULL ? " --district" : "");
        goto done;
    }
    if (a.has_lat != a.has_lon) {
        rc = usage_error("create", "--lat and --lon go together");
        goto done;
    }
    if (a.request_id == NULL) {
        if (gl_client_request_id(request_id, sizeof(request_id)) != 0) {
            fprintf(stderr, "gridline: cannot make a request id: %s; pass --request-id\n",
                    strerror(errno));
            rc = EXIT_REFUSED;
            goto done;
        }
        a.request_id = request_id;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack_create(&pk, &a) != 0) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = call(c, "case.create", &sb, &r, &answered);
    if (rc != 0) {
        if (!answered) {
            fprintf(stderr,
                    "gridline: the case may or may not have been registered; to retry without "
                    "registering it twice, run the same command with --request-id %s\n",
                    a.request_id);
        }
        goto done;
    }
    if (c->json) {
        print_json(r.body);
    } else {
        const msgpack_object *kase = mp_map_get(r.body, "case");
        const msgpack_object *replayed = mp_map_get(r.body, "replayed");
        const msgpack_object *code = mp_map_get(kase, "code");
        const msgpack_object *id = mp_map_get(kase, "id");
        bool                  again = replayed != NULL && replayed->type == MSGPACK_OBJECT_BOOLEAN
                                      && replayed->via.boolean;

        printf("%s %.*s (id %" PRIu64 "), request_id %s%s\n", again ? "replayed" : "created",
               code != NULL && code->type == MSGPACK_OBJECT_STR ? (int)code->via.str.size : 1,
               code != NULL && code->type == MSGPACK_OBJECT_STR ? code->via.str.ptr : "?",
               id != NULL && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? id->via.u64 : 0,
               a.request_id,
               again ? ": already registered under this request_id; nothing new stored" : "");
        mp_print_case(stdout, kase);
    }
    rc = finish_output(0);
done:
    reply_free(&r);
    msgpack_sbuffer_destroy(&sb);
    free(a.attachments);
    return rc;
}

/* ---- get ---- */

static int cmd_get(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "history", no_argument, NULL, OPT_HISTORY },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char     *which = NULL;
    bool            history = false;
    uint64_t        id = 0;
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    reply           r = { 0 };
    int             ch;
    int             rc = EXIT_USAGE;

    msgpack_sbuffer_init(&sb);
    optind = 0;
    /* Without "+", getopt moves the id behind the options: "get 12 --history" works. */
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_HISTORY:
            history = true;
            break;
        case 'h':
            fputs(usage_get, stdout);
            rc = finish_output(0);
            goto done;
        default:
            rc = option_error("get", ch, argv);
            goto done;
        }
    }
    if (optind < argc) {
        which = argv[optind++];
    }
    if (optind < argc) {
        rc = usage_error("get", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (which == NULL) {
        rc = usage_error("get", "get needs a case id or code");
        goto done;
    }
    if (all_digits(which) && !parse_u64(which, &id)) {
        rc = usage_error("get", "case id '%s' is too large", which);
        goto done;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, history ? 2 : 1) != 0
        || (all_digits(which)
                ? mp_pack_cstr(&pk, "id") != 0 || msgpack_pack_uint64(&pk, id) != 0
                : mp_pack_cstr(&pk, "code") != 0 || mp_pack_cstr(&pk, which) != 0)
        || (history && (mp_pack_cstr(&pk, "history") != 0 || msgpack_pack_true(&pk) != 0))) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = call(c, "case.get", &sb, &r, NULL);
    if (rc != 0) {
        goto done;
    }
    if (c->json) {
        print_json(r.body);
    } else {
        const msgpack_object *events = mp_map_get(r.body, "history");

        mp_print_case(stdout, mp_map_get(r.body, "case"));
        if (history) {
            uint32_t n = events != NULL && events->type == MSGPACK_OBJECT_ARRAY
                             ? events->via.array.size
                             : 0;

            printf("\nHistory (%" PRIu32 " event%s)\n", n, n == 1 ? "" : "s");
            mp_print_history(stdout, events, c->width);
        }
    }
    rc = finish_output(0);
done:
    reply_free(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- act ---- */

/* Sends a packed case.act body and shows the case after the action (act, callback). */
static int act_call(cli *c, const msgpack_sbuffer *sb)
{
    reply r = { 0 };
    int   rc = call(c, "case.act", sb, &r, NULL);
    if (rc == 0) {
        if (c->json) {
            print_json(r.body);
        } else {
            mp_print_case(stdout, mp_map_get(r.body, "case"));
        }
        rc = finish_output(0);
    }
    reply_free(&r);
    return rc;
}

static int cmd_act(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "note", required_argument, NULL, OPT_NOTE },
        { "reply", required_argument, NULL, OPT_REPLY },
        { "reason", required_argument, NULL, OPT_REASON },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "unit", required_argument, NULL, OPT_UNIT },
        { "into", required_argument, NULL, OPT_INTO },
        { "satisfaction", required_argument, NULL, OPT_SATISFACTION },
        { "version", required_argument, NULL, OPT_VERSION },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    /* The text options, in the order they are packed. */
    const char     *text[5] = { NULL, NULL, NULL, NULL, NULL };
    static const char *const text_keys[5] = { "note", "reply", "reason", "unit", "satisfaction" };
    bool            has_until = false, has_into = false, has_version = false;
    int64_t         until = 0;
    uint64_t        into = 0, version = 0, id = 0;
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    int             ch;
    int             rc = EXIT_USAGE;

    msgpack_sbuffer_init(&sb);
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_NOTE: text[0] = optarg; break;
        case OPT_REPLY: text[1] = optarg; break;
        case OPT_REASON: text[2] = optarg; break;
        case OPT_UNIT: text[3] = optarg; break;
        case OPT_SATISFACTION: text[4] = optarg; break;
        case OPT_UNTIL:
            if (!parse_i64(optarg, &until)) {
                rc = usage_error("act", "--until wants ms since the epoch; got '%s'", optarg);
                goto done;
            }
            has_until = true;
            break;
        case OPT_INTO:
            if (!all_digits(optarg) || !parse_u64(optarg, &into)) {
                rc = usage_error("act", "--into wants a case id; got '%s'", optarg);
                goto done;
            }
            has_into = true;
            break;
        case OPT_VERSION:
            if (!all_digits(optarg) || !parse_u64(optarg, &version)) {
                rc = usage_error("act", "--version wants a number; got '%s'", optarg);
                goto done;
            }
            has_version = true;
            break;
        case 'h':
            fputs(usage_act, stdout);
            rc = finish_output(0);
            goto done;
        default:
            rc = option_error("act", ch, argv);
            goto done;
        }
    }
    if (argc - optind != 2) {
        rc = usage_error("act", "act needs a case id and an action");
        goto done;
    }
    if (!all_digits(argv[optind]) || !parse_u64(argv[optind], &id)) {
        rc = usage_error("act", "'%s' is not a case id", argv[optind]);
        goto done;
    }
    uint32_t pairs = 2 + has_until + has_into + has_version;
    for (int i = 0; i < 5; i++) {
        pairs += text[i] != NULL;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int bad = msgpack_pack_map(&pk, pairs);
    bad |= mp_pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, id);
    bad |= mp_pack_cstr(&pk, "action") | mp_pack_cstr(&pk, argv[optind + 1]);
    for (int i = 0; i < 5; i++) {
        if (text[i] != NULL) {
            bad |= mp_pack_cstr(&pk, text_keys[i]) | mp_pack_cstr(&pk, text[i]);
        }
    }
    if (has_until) {
        bad |= mp_pack_cstr(&pk, "until") | msgpack_pack_int64(&pk, until);
    }
    if (has_into) {
        bad |= mp_pack_cstr(&pk, "into") | msgpack_pack_uint64(&pk, into);
    }
    if (has_version) {
        bad |= mp_pack_cstr(&pk, "version") | msgpack_pack_uint64(&pk, version);
    }
    if (bad != 0) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = act_call(c, &sb);
done:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- list ---- */

typedef struct {
    str_member strs[9];      /* the filter's string members */
    bool       overdue, supervised;
    bool       has_from, has_to;
    int64_t    from, to;
    bool       has_limit;
    int64_t    limit;
    uint64_t   after;
    bool       all;
} list_args;

static int pack_list(msgpack_packer *pk, const list_args *a, uint64_t after, int64_t limit)
{
    uint32_t nf = str_members_set(a->strs, 9) + a->overdue + a->supervised + a->has_from
                  + a->has_to;
    uint32_t n = (nf > 0) + (after != 0) + (limit > 0);

    if (msgpack_pack_map(pk, n) != 0) {
        return -1;
    }
    if (nf > 0) {
        if (mp_pack_cstr(pk, "filter") != 0 || msgpack_pack_map(pk, nf) != 0
            || pack_str_members(pk, a->strs, 9) != 0) {
            return -1;
        }
        if ((a->overdue && (mp_pack_cstr(pk, "overdue") != 0 || msgpack_pack_true(pk) != 0))
            || (a->supervised
                && (mp_pack_cstr(pk, "supervised") != 0 || msgpack_pack_true(pk) != 0))
            || (a->has_from
                && (mp_pack_cstr(pk, "created_from") != 0 || msgpack_pack_int64(pk, a->from) != 0))
            || (a->has_to
                && (mp_pack_cstr(pk, "created_to") != 0 || msgpack_pack_int64(pk, a->to) != 0))) {
            return -1;
        }
    }
    if (after != 0 && (mp_pack_cstr(pk, "after") != 0 || msgpack_pack_uint64(pk, after) != 0)) {
        return -1;
    }
    if (limit > 0 && (mp_pack_cstr(pk, "limit") != 0 || msgpack_pack_int64(pk, limit) != 0)) {
        return -1;
    }
    return 0;
}

/* The page's "next" cursor: 0 at the end (nil), -1 when it is neither nil nor a cursor. */
static int next_cursor(const msgpack_object *body, uint64_t *next)
{
    const msgpack_object *o = mp_map_get(body, "next");

    *next = 0;
    if (o == NULL || o->type == MSGPACK_OBJECT_NIL) {
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > 0) {
        *next = o->via.u64;
        return 0;
    }
    return -1;
}

/* The pages fetched so far, kept whole because the cases point into them. */
typedef struct {
    reply                 *pages;
    size_t                 n_pages;
    const msgpack_object **cases;
    size_t                 n_cases, cap_cases;
} page_set;

static int page_set_add(page_set *s, reply *r)
{
    const msgpack_object *cases = mp_map_get(r->body, "cases");
    reply                *pages = realloc(s->pages, (s->n_pages + 1) * sizeof(*pages));
    uint32_t              n = 0;

    if (pages == NULL) {
        return -1;
    }
    s->pages = pages;
    s->pages[s->n_pages++] = *r;
    memset(r, 0, sizeof(*r));
    if (cases != NULL && cases->type == MSGPACK_OBJECT_ARRAY) {
        n = cases->via.array.size;
    }
    if (s->n_cases + n > s->cap_cases) {
        size_t                 cap = (s->n_cases + n) * 2;
        const msgpack_object **grown = realloc(s->cases, cap * sizeof(*grown));

        if (grown == NULL) {
            return -1;
        }
        s->cases = grown;
        s->cap_cases = cap;
    }
    for (uint32_t i = 0; i < n; i++) {
        s->cases[s->n_cases++] = &cases->via.array.ptr[i];
    }
    return 0;
}

static void page_set_free(page_set *s)
{
    for (size_t i = 0; i < s->n_pages; i++) {
        reply_free(&s->pages[i]);
    }
    free(s->pages);
    free(s->cases);
    memset(s, 0, sizeof(*s));
}

static msgpack_object obj_cstr(const char *s)
{
    msgpack_object o;

    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    return o;
}

/* With --all --json: one reply-shaped object, {"ok": true, "cases": [every case],
 * "next": nil}, so a script sees the same shape as for a single page. */
static int print_all_json(const page_set *s)
{
    msgpack_object_kv kv[3];
    msgpack_object    root;
    msgpack_object   *cases = calloc(s->n_cases + 1, sizeof(*cases));
    int               rc;

    if (cases == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->n_cases; i++) {
        cases[i] = *s->cases[i];
    }
    kv[0].key = obj_cstr("ok");
    kv[0].val.type = MSGPACK_OBJECT_BOOLEAN;
    kv[0].val.via.boolean = true;
    kv[1].key = obj_cstr("cases");
    kv[1].val.type = MSGPACK_OBJECT_ARRAY;
    kv[1].val.via.array.size = (uint32_t)s->n_cases;
    kv[1].val.via.array.ptr = cases;
    kv[2].key = obj_cstr("next");
    kv[2].val.type = MSGPACK_OBJECT_NIL;
    root.type = MSGPACK_OBJECT_MAP;
    root.via.map.size = 3;
    root.via.map.ptr = kv;
    rc = print_json(&root);
    free(cases);
    return rc;
}

/* Fetches the pages a filled list_args asks for and shows them: the list table, or the
 * reply as JSON. Used by list and overdue. */
static int run_list(cli *c, const list_args *a)
{
    page_set        pages = { 0 };
    reply           r = { 0 };
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    uint64_t        after, next = 0;
    int64_t         limit;
    int             rc;

    msgpack_sbuffer_init(&sb);
    limit = a->has_limit ? a->limit : a->all ? ALL_PAGE_LIMIT : 0;
    after = a->after;
    for (;;) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (pack_list(&pk, a, after, limit) != 0) {
            fprintf(stderr, "gridline: out of memory\n");
            rc = EXIT_REFUSED;
            goto done;
        }
        rc = call(c, "case.list", &sb, &r, NULL);
        if (rc != 0) {
            goto done;
        }
        if (next_cursor(r.body, &next) != 0) {
            fprintf(stderr, "gridline: bad_request: the reply's \"next\" is not a cursor\n");
            rc = EXIT_REFUSED;
            goto done;
        }
        if (!a->all && c->json) {
            print_json(r.body);
            rc = finish_output(0);
            goto done;
        }
        if (page_set_add(&pages, &r) != 0) {
            fprintf(stderr, "gridline: out of memory\n");
            rc = EXIT_REFUSED;
            goto done;
        }
        if (!a->all || next == 0) {
            break;
        }
        if (next <= after) {
            /* A cursor that does not move on would loop for ever. */
            fprintf(stderr, "gridline: internal: the daemon's cursor went from %" PRIu64
                            " to %" PRIu64 "; stopping\n", after, next);
            rc = EXIT_REFUSED;
            goto done;
        }
        after = next;
    }
    if (c->json) {
        print_all_json(&pages);
    } else if (pages.n_cases == 0) {
        printf("no cases\n");
    } else {
        mp_print_case_table(stdout, pages.cases, pages.n_cases, c->width);
        printf("%zu case%s", pages.n_cases, pages.n_cases == 1 ? "" : "s");
        if (next != 0) {
            printf("; more with --after %" PRIu64, next);
        }
        putchar('\n');
    }
    rc = finish_output(0);
done:
    reply_free(&r);
    page_set_free(&pages);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* The value of --limit or --after for command, into a; returns 0 or the usage error. */
static int page_option(const char *command, int ch, list_args *a)
{
    if (ch == OPT_LIMIT) {
        if (!parse_i64(optarg, &a->limit) || a->limit < 1) {
            return usage_error(command, "--limit wants a number of cases, 1-500; got '%s'",
                               optarg);
        }
        a->has_limit = true;
        return 0;
    }
    if (!parse_u64(optarg, &a->after)) {
        return usage_error(command, "--after wants a cursor (the 'next' of a page); got '%s'",
                           optarg);
    }
    return 0;
}

static int cmd_list(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "state", required_argument, NULL, OPT_STATE },
        { "unit", required_argument, NULL, OPT_UNIT },
        { "district", required_argument, NULL, OPT_DISTRICT },
        { "street", required_argument, NULL, OPT_STREET },
        { "community", required_argument, NULL, OPT_COMMUNITY },
        { "grid", required_argument, NULL, OPT_GRID },
        { "category", required_argument, NULL, OPT_CATEGORY_F },
        { "channel", required_argument, NULL, OPT_CHANNEL },
        { "phone", required_argument, NULL, OPT_PHONE },
        { "overdue", no_argument, NULL, OPT_OVERDUE },
        { "supervised", no_argument, NULL, OPT_SUPERVISED },
        { "from", required_argument, NULL, OPT_FROM },
        { "to", required_argument, NULL, OPT_TO },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER },
        { "all", no_argument, NULL, OPT_ALL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    list_args a = {
        .strs = {
            { "state", NULL },    { "unit", NULL },      { "district", NULL },
            { "street", NULL },   { "community", NULL }, { "grid", NULL },
            { "category", NULL }, { "channel", NULL },   { "reporter_phone", NULL },
        },
    };
    int       ch;
    int       rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_STATE:      a.strs[0].val = optarg; break;
        case OPT_UNIT:       a.strs[1].val = optarg; break;
        case OPT_DISTRICT:   a.strs[2].val = optarg; break;
        case OPT_STREET:     a.strs[3].val = optarg; break;
        case OPT_COMMUNITY:  a.strs[4].val = optarg; break;
        case OPT_GRID:       a.strs[5].val = optarg; break;
        case OPT_CATEGORY_F: a.strs[6].val = optarg; break;
        case OPT_CHANNEL:    a.strs[7].val = optarg; break;
        case OPT_PHONE:      a.strs[8].val = optarg; break;
        case OPT_OVERDUE:    a.overdue = true; break;
        case OPT_SUPERVISED: a.supervised = true; break;
        case OPT_ALL:        a.all = true; break;
        case OPT_FROM:
        case OPT_TO:
            if (!parse_i64(optarg, ch == OPT_FROM ? &a.from : &a.to)) {
                return usage_error("list", "--%s wants ms since the epoch; got '%s'",
                                   ch == OPT_FROM ? "from" : "to", optarg);
            }
            *(ch == OPT_FROM ? &a.has_from : &a.has_to) = true;
            break;
        case OPT_LIMIT:
        case OPT_AFTER:
            rc = page_option("list", ch, &a);
            if (rc != 0) {
                return rc;
            }
            break;
        case 'h':
            fputs(usage_list, stdout);
            return finish_output(0);
        default:
            return option_error("list", ch, argv);
        }
    }
    if (optind < argc) {
        return usage_error("list", "unexpected argument '%s'", argv[optind]);
    }
    return run_list(c, &a);
}

/* ---- overdue ---- */

static int cmd_overdue(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "unit", required_argument, NULL, OPT_UNIT },
        { "district", required_argument, NULL, OPT_DISTRICT },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER },
        { "all", no_argument, NULL, OPT_ALL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    /* case.list with filter overdue = true, and the unit and district if given. */
    list_args a = {
        .strs = { { "unit", NULL }, { "district", NULL } },
        .overdue = true,
    };
    int       ch;
    int       rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_UNIT:     a.strs[0].val = optarg; break;
        case OPT_DISTRICT: a.strs[1].val = optarg; break;
        case OPT_ALL:      a.all = true; break;
        case OPT_LIMIT:
        case OPT_AFTER:
            rc = page_option("overdue", ch, &a);
            if (rc != 0) {
                return rc;
            }
            break;
        case 'h':
            fputs(usage_overdue, stdout);
            return finish_output(0);
        default:
            return option_error("overdue", ch, argv);
        }
    }
    if (optind < argc) {
        return usage_error("overdue", "unexpected argument '%s'", argv[optind]);
    }
    return run_list(c, &a);
}

/* ---- stats ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t  era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* ms since the epoch (>= 0), or YYYY-MM-DD as 00:00 UTC that day. */
static bool parse_time(const char *s, int64_t *out)
{
    static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    unsigned y, m, d;

    if (all_digits(s)) {
        return parse_i64(s, out);
    }
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
        return false;
    }
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
            return false;
        }
    }
    y = (unsigned)((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
    m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]
        || (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
        return false;
    }
    *out = days_from_civil(y, m, d) * 86400000;
    return true;
}

/* A cell of the stats table: text fit to show (control characters and bytes that are
 * not UTF-8 become spaces and '?'), cut with "…" to at most max columns (0: no limit). */
typedef struct {
    char  *s;
    size_t w;      /* columns */
} stats_cell;

static int cell_set(stats_cell *c, const char *p, size_t n, size_t max)
{
    bool   cut = max > 0 && mp_print_width(p, n) > max;
    size_t o = 0, i = 0;

    c->s = malloc(n + 4);
    c->w = 0;
    if (c->s == NULL) {
        return -1;
    }
    while (i < n) {
        unsigned char b = (unsigned char)p[i];
        size_t        len = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2
                            : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
        const char   *ch = p + i;
        size_t        chlen = len;
        size_t        w;

        for (size_t k = 1; k < len && len <= n - i; k++) {
            if (((unsigned char)p[i + k] & 0xc0) != 0x80) {
                len = 0;
            }
        }
        if (len == 0 || len > n - i) {
            ch = "?";
            chlen = len = 1;
        } else if ((len == 1 && (b < 0x20 || b == 0x7f))
                   || (len == 2 && b == 0xc2 && (unsigned char)p[i + 1] < 0xa0)) {
            ch = " ";   /* C0 and C1 controls: U+009B is CSI to a terminal */
            chlen = 1;
        }
        w = mp_print_width(ch, chlen);
        if (cut && c->w + w > max - 1) {
            memcpy(c->s + o, "\xe2\x80\xa6", 3);   /* … */
            o += 3;
            c->w += 1;
            break;
        }
        memcpy(c->s + o, ch, chlen);
        o += chlen;
        c->w += w;
        i += len;
    }
    c->s[o] = '\0';
    return 0;
}

static int cell_printf(stats_cell *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cell_printf(stats_cell *c, const char *fmt, ...)
{
    char    buf[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return cell_set(c, buf, strlen(buf), 0);
}

static uint64_t obj_u64(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

/* A rate as a percentage, "-" for nil. */
static int cell_rate(stats_cell *c, const msgpack_object *o)
{
    if (o != NULL && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)) {
        return cell_printf(c, "%.1f%%", o->via.f64 * 100.0);
    }
    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return cell_printf(c, "%.1f%%", (double)o->via.u64 * 100.0);
    }
    return cell_printf(c, "-");
}

#define STATS_COLS 9

/* The rows of a stats.query reply as a table: KEY, RECEIVED, DISPATCHED, the four
 * rates, STARS (by community), NAME (cut to fit width). */
static int print_stats_table(const msgpack_object *body, int width)
{
    static const char *const head[STATS_COLS] = {
        "KEY", "RECEIVED", "DISPATCHED", "RESPONSE", "ON TIME", "RESOLUTION", "SATISFACTION",
        "STARS", "NAME"
    };
    static const char *const rates[4] = {
        "response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate"
    };
    const msgpack_object *rows = mp_map_get(body, "rows");
    const msgpack_object *by = mp_map_get(body, "group_by");
    uint32_t              n = rows != NULL && rows->type == MSGPACK_OBJECT_ARRAY
                              ? rows->via.array.size : 0;
    bool                  stars = by != NULL && by->type == MSGPACK_OBJECT_STR
                                  && gl_str_eq(gl_str_of(by->via.str.ptr, by->via.str.size),
                                               "community");
    stats_cell           *cells = calloc((size_t)n * STATS_COLS + 1, sizeof(*cells));
    size_t                w[STATS_COLS];
    uint64_t              ungrouped = obj_u64(mp_map_get(body, "ungrouped"));
    int                   bad = 0;

    if (cells == NULL) {
        return -1;
    }
    for (int k = 0; k < STATS_COLS; k++) {
        w[k] = strlen(head[k]);
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *row = &rows->via.array.ptr[i];
        const msgpack_object *key = mp_map_get(row, "key");
        const msgpack_object *name = mp_map_get(row, "name");
        const msgpack_object *st = mp_map_get(row, "stars");
        stats_cell           *c = &cells[(size_t)i * STATS_COLS];

        bad |= key != NULL && key->type == MSGPACK_OBJECT_STR
               ? cell_set(&c[0], key->via.str.ptr, key->via.str.size, 0)
               : cell_printf(&c[0], "?");
        bad |= cell_printf(&c[1], "%" PRIu64, obj_u64(mp_map_get(row, "received")));
        bad |= cell_printf(&c[2], "%" PRIu64, obj_u64(mp_map_get(row, "dispatched")));
        for (int k = 0; k < 4; k++) {
            bad |= cell_rate(&c[3 + k], mp_map_get(row, rates[k]));
        }
        bad |= st != NULL && st->type == MSGPACK_OBJECT_POSITIVE_INTEGER
               ? cell_printf(&c[7], "%" PRIu64, st->via.u64) : cell_printf(&c[7], "-");
        bad |= name != NULL && name->type == MSGPACK_OBJECT_STR
               ? cell_set(&c[8], name->via.str.ptr, name->via.str.size, 0)
               : cell_printf(&c[8], "-");
        if (bad != 0) {
            goto done;
        }
        for (int k = 0; k < STATS_COLS - 1; k++) {
            w[k] = c[k].w > w[k] ? c[k].w : w[k];
        }
    }
    if (width > 0) {
        /* NAME takes what the other columns leave, down to 12 columns. */
        size_t used = 0;

        for (int k = 0; k < STATS_COLS - 1; k++) {
            used += k == 7 && !stars ? 0 : w[k] + 2;
        }
        size_t avail = (size_t)width > used + 12 ? (size_t)width - used : 12;

        for (uint32_t i = 0; i < n; i++) {
            stats_cell *c = &cells[(size_t)i * STATS_COLS + 8];

            const msgpack_object *name = mp_map_get(&rows->via.array.ptr[i], "name");

            if (c->w > avail && name != NULL && name->type == MSGPACK_OBJECT_STR) {
                free(c->s);
                c->s = NULL;
                if (cell_set(c, name->via.str.ptr, name->via.str.size, avail) != 0) {
                    bad = -1;
                    goto done;
                }
            }
        }
    }
    if (n == 0 && ungrouped == 0) {
        printf("no cases in the range\n");
    }
    for (uint32_t r = 0; r <= n && n > 0; r++) {
        for (int k = 0; k < STATS_COLS; k++) {
            const char *s = r == 0 ? head[k] : cells[(size_t)(r - 1) * STATS_COLS + k].s;
            size_t      sw = r == 0 ? strlen(s) : cells[(size_t)(r - 1) * STATS_COLS + k].w;
            size_t      pad = w[k] > sw ? w[k] - sw : 0;

            if (k == 7 && !stars) {
                continue;
            }
            if (k == 0 || k == STATS_COLS - 1) {
                /* Text left-aligned; NAME, last, is not padded. */
                printf("%s%*s", s, k == 0 ? (int)(pad + 2) : 0, "");
            } else {
                /* Numbers right-aligned. */
                printf("%*s%s  ", (int)pad, "", s);
            }
        }
        putchar('\n');
    }
    if (n > 0 || ungrouped > 0) {
        if (n > 0) {
            printf("%" PRIu32 " row%s", n, n == 1 ? "" : "s");
        } else {
            printf("no rows");
        }
        if (ungrouped > 0) {
            printf("; %" PRIu64 " case%s without a %.*s not counted in any row", ungrouped,
                   ungrouped == 1 ? "" : "s",
                   by != NULL && by->type == MSGPACK_OBJECT_STR ? (int)by->via.str.size : 5,
                   by != NULL && by->type == MSGPACK_OBJECT_STR ? by->via.str.ptr : "group");
        }
        putchar('\n');
    }
done:
    for (size_t i = 0; i < (size_t)n * STATS_COLS; i++) {
        free(cells[i].s);
    }
    free(cells);
    return bad != 0 ? -1 : 0;
}

static int cmd_stats(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "by", required_argument, NULL, OPT_BY },
        { "from", required_argument, NULL, OPT_FROM },
        { "to", required_argument, NULL, OPT_TO },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char     *by = NULL;
    bool            has_from = false, has_to = false;
    int64_t         from = 0, to = 0;
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    reply           r = { 0 };
    int             ch;
    int             bad;
    int             rc = EXIT_USAGE;

    msgpack_sbuffer_init(&sb);
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_BY:
            by = optarg;
            break;
        case OPT_FROM:
        case OPT_TO:
            if (!parse_time(optarg, ch == OPT_FROM ? &from : &to)) {
                rc = usage_error("stats", "--%s wants ms since the epoch or a date YYYY-MM-DD; "
                                 "got '%s'", ch == OPT_FROM ? "from" : "to", optarg);
                goto done;
            }
            *(ch == OPT_FROM ? &has_from : &has_to) = true;
            break;
        case 'h':
            fputs(usage_stats, stdout);
            rc = finish_output(0);
            goto done;
        default:
            rc = option_error("stats", ch, argv);
            goto done;
        }
    }
    if (optind < argc) {
        rc = usage_error("stats", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (by == NULL) {
        rc = usage_error("stats", "stats needs --by unit, district, category, street or "
                         "community");
        goto done;
    }
    if (has_from && has_to && to <= from) {
        rc = usage_error("stats", "--to must be later than --from");
        goto done;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bad = msgpack_pack_map(&pk, 1 + has_from + has_to);
    bad |= mp_pack_cstr(&pk, "group_by") | mp_pack_cstr(&pk, by);
    if (has_from) {
        bad |= mp_pack_cstr(&pk, "from") | msgpack_pack_int64(&pk, from);
    }
    if (has_to) {
        bad |= mp_pack_cstr(&pk, "to") | msgpack_pack_int64(&pk, to);
    }
    if (bad != 0) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = call(c, "stats.query", &sb, &r, NULL);
    if (rc != 0) {
        goto done;
    }
    if (c->json) {
        print_json(r.body);
    } else if (print_stats_table(r.body, c->width) != 0) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = finish_output(0);
done:
    reply_free(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- catalog ---- */

static int cmd_catalog(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    reply           r = { 0 };
    int             ch;
    int             rc = EXIT_USAGE;

    msgpack_sbuffer_init(&sb);
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage_catalog, stdout);
            rc = finish_output(0);
            goto done;
        }
        rc = option_error("catalog", ch, argv);
        goto done;
    }
    if (optind < argc) {
        rc = usage_error("catalog", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 0) != 0) {
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = call(c, "catalog.get", &sb, &r, NULL);
    if (rc != 0) {
        goto done;
    }
    if (c->json) {
        print_json(r.body);
    } else {
        mp_print_catalog(stdout, r.body, c->width);
    }
    rc = finish_output(0);
done:
    reply_free(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- ping ---- */

static int cmd_ping(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *service = "case.create";
    int         ch;
    int         served;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage_ping, stdout);
            return finish_output(0);
        }
        return option_error("ping", ch, argv);
    }
    if (optind < argc) {
        service = argv[optind++];
    }
    if (optind < argc) {
        return usage_error("ping", "unexpected argument '%s'", argv[optind]);
    }
    if (ensure_client(c) != 0) {
        return EXIT_REFUSED;
    }
    served = gl_client_mmi(c->client, service, c->timeout_ms);
    if (served < 0) {
        gl_error err;

        if (served == GL_EUNAVAILABLE) {
            gl_error_set(&err, served, NULL, "no reply from %s within %d ms: is gridlined running?",
                         c->endpoint, c->timeout_ms);
        } else {
            gl_error_set(&err, served, NULL, "the mmi.service reply from %s is neither 200 nor 404",
                         c->endpoint);
        }
        print_error(&err);
        return EXIT_REFUSED;
    }
    if (c->json) {
        msgpack_object_kv kv[3];
        msgpack_object    root;

        kv[0].key = obj_cstr("endpoint");
        kv[0].val = obj_cstr(c->endpoint);
        kv[1].key = obj_cstr("service");
        kv[1].val = obj_cstr(service);
        kv[2].key = obj_cstr("served");
        kv[2].val.type = MSGPACK_OBJECT_BOOLEAN;
        kv[2].val.via.boolean = served == 1;
        root.type = MSGPACK_OBJECT_MAP;
        root.via.map.size = 3;
        root.via.map.ptr = kv;
        print_json(&root);
    } else if (served == 1) {
        printf("%s: %s is served\n", c->endpoint, service);
    } else {
        printf("%s: %s is not served\n", c->endpoint, service);
    }
    return finish_output(served == 1 ? 0 : EXIT_REFUSED);
}

/* ---- watch ---- */

#define WATCH_DEFAULT_WAIT_MS 25000
#define WATCH_MAX_WAIT_MS     30000

/* Writes a string or integer field, control characters as spaces, nil as "-", padded
 * with spaces to width bytes and followed by one space (none when width is 0). */
static void put_field(const msgpack_object *o, int width)
{
    int n = 0;

    if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
        for (uint32_t i = 0; i < o->via.str.size; i++) {
            unsigned char ch = (unsigned char)o->via.str.ptr[i];

            putchar(ch < 0x20 || ch == 0x7f ? ' ' : ch);
        }
        n = (int)o->via.str.size;
    } else if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        n = printf("%" PRIu64, o->via.u64);
    } else if (o != NULL && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        n = printf("%" PRId64, o->via.i64);
    } else {
        n = printf("-");
    }
    if (width > 0) {
        printf("%*s", width > n ? width - n + 1 : 1, "");
    }
}

/* One event as a line: seq, time, type, code, state, unit, actor, note. */
static void print_event_line(const msgpack_object *e)
{
    const msgpack_object *at = mp_map_get(e, "at");
    char                  when[96] = "-";

    if (at != NULL && at->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        time_t    secs = (time_t)(at->via.u64 / 1000);
        struct tm tm;

        if (gmtime_r(&secs, &tm) != NULL) {
            snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(at->via.u64 % 1000));
        }
    }
    put_field(mp_map_get(e, "seq"), 7);
    printf("%-24s ", when);
    put_field(mp_map_get(e, "type"), 19);
    put_field(mp_map_get(e, "code"), 18);
    put_field(mp_map_get(e, "state"), 10);
    put_field(mp_map_get(e, "unit"), 14);
    put_field(mp_map_get(e, "actor"), 10);
    put_field(mp_map_get(e, "note"), 0);
    putchar('\n');
}

static int cmd_watch(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "after", required_argument, NULL, OPT_AFTER },
        { "position", required_argument, NULL, OPT_POSITION },
        { "unit", required_argument, NULL, OPT_UNIT },
        { "district", required_argument, NULL, OPT_DISTRICT },
        { "category", required_argument, NULL, OPT_CATEGORY_F },
        { "count", required_argument, NULL, OPT_COUNT },
        { "wait-ms", required_argument, NULL, OPT_WAIT_MS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    gl_feed_filter flt = { NULL, NULL, NULL };
    const char    *position = NULL;
    bool           has_after = false, warned = false;
    uint64_t       after = 0, count = 0, shown = 0;
    int64_t        wait_ms = WATCH_DEFAULT_WAIT_MS;
    gl_feed       *feed = NULL;
    gl_feed_batch  b = { 0 };
    char           err[512];
    int            ch;
    int            rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_POSITION:   position = optarg; break;
        case OPT_UNIT:       flt.unit = optarg; break;
        case OPT_DISTRICT:   flt.district = optarg; break;
        case OPT_CATEGORY_F: flt.category = optarg; break;
        case OPT_AFTER:
            if (!all_digits(optarg) || !parse_u64(optarg, &after)) {
                return usage_error("watch", "--after wants a sequence number; got '%s'", optarg);
            }
            has_after = true;
            break;
        case OPT_COUNT:
            if (!all_digits(optarg) || !parse_u64(optarg, &count) || count == 0) {
                return usage_error("watch", "--count wants a number of events, 1 or more; "
                                            "got '%s'", optarg);
            }
            break;
        case OPT_WAIT_MS:
            if (!parse_i64(optarg, &wait_ms) || wait_ms < 0 || wait_ms > WATCH_MAX_WAIT_MS) {
                return usage_error("watch", "--wait-ms wants milliseconds, 0-%d; got '%s'",
                                   WATCH_MAX_WAIT_MS, optarg);
            }
            break;
        case 'h':
            fputs(usage_watch, stdout);
            return finish_output(0);
        default:
            return option_error("watch", ch, argv);
        }
    }
    if (optind < argc) {
        return usage_error("watch", "unexpected argument '%s'", argv[optind]);
    }
    rc = ensure_client(c);
    if (rc != 0) {
        return rc;
    }
    feed = gl_feed_new(c->client, position, &flt, err, sizeof(err));
    if (feed == NULL) {
        fprintf(stderr, "gridline: %s\n", err);
        return EXIT_REFUSED;
    }
    gl_feed_set_timeout(feed, c->timeout_ms);
    if (has_after && gl_feed_set_position(feed, after) != 0) {
        print_error(gl_feed_error(feed));
        rc = EXIT_REFUSED;
        goto done;
    }
    while (count == 0 || shown < count) {
        uint64_t left = count == 0 ? 1000 : count - shown;
        uint64_t seq = 0;
        bool     stopped = false;

        gl_feed_set_limit(feed, left > 1000 ? 1000 : (uint32_t)left);
        rc = gl_feed_next(feed, (int)wait_ms, &b);
        if (rc == GL_EUNAVAILABLE) {
            /* A follower outlives the daemon's restarts: a pull is safe to send again. */
            if (!warned) {
                fprintf(stderr, "gridline: %s; trying again\n", gl_feed_error(feed)->message);
                warned = true;
            }
            /* Not a busy loop when the send itself fails at once (queue full). */
            nanosleep(&(struct timespec){ .tv_sec = 0, .tv_nsec = 100000000 }, NULL);
            continue;
        }
        if (rc != 0) {
            print_error(gl_feed_error(feed));
            rc = EXIT_REFUSED;
            goto done;
        }
        if (warned) {
            fprintf(stderr, "gridline: %s answers again\n", c->endpoint);
            warned = false;
        }
        for (uint32_t i = 0; i < b.n_events; i++) {
            const msgpack_object *e = &b.events[i];
            const msgpack_object *s = mp_map_get(e, "seq");

            if (s == NULL || s->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                fprintf(stderr, "gridline: bad_request: an event without a sequence number\n");
                rc = EXIT_REFUSED;
                goto done;
            }
            if (c->json) {
                mp_print_json(stdout, e, 0);
                putchar('\n');
            } else {
                print_event_line(e);
            }
            seq = s->via.u64;
            if (++shown == count && i + 1 < b.n_events) {
                stopped = true;
                break;
            }
        }
        /* What is acknowledged must have been written out first. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            rc = finish_output(0);
            goto done;
        }
        rc = stopped ? gl_feed_ack_seq(feed, seq) : gl_feed_ack(feed);
        if (rc != 0) {
            print_error(gl_feed_error(feed));
            rc = EXIT_REFUSED;
            goto done;
        }
        gl_feed_batch_free(&b);
    }
    rc = finish_output(0);
done:
    gl_feed_batch_free(&b);
    gl_feed_destroy(&feed);
    return rc;
}

/* ---- calls, callback (the hotline) ---- */

static int cmd_calls(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    /* Only the filter's reporter_phone is set; the other members stay unset. */
    list_args a = { .strs = { [8] = { "reporter_phone", NULL } } };
    int       ch;
    int       rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_LIMIT:
        case OPT_AFTER:
            rc = page_option("calls", ch, &a);
            if (rc != 0) {
                return rc;
            }
            break;
        case 'h':
            fputs(usage_calls, stdout);
            return finish_output(0);
        default:
            return option_error("calls", ch, argv);
        }
    }
    if (argc - optind != 1) {
        return usage_error("calls", "calls needs one phone number");
    }
    a.strs[8].val = argv[optind];
    a.all = !a.has_limit && a.after == 0;
    return run_list(c, &a);
}

static int cmd_callback(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "satisfaction", required_argument, NULL, OPT_SATISFACTION },
        { "note", required_argument, NULL, OPT_NOTE },
        { "version", required_argument, NULL, OPT_VERSION },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char     *satisfaction = NULL, *note = NULL;
    bool            has_version = false;
    uint64_t        id = 0, version = 0;
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    int             ch;
    int             rc = EXIT_USAGE;

    msgpack_sbuffer_init(&sb);
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_SATISFACTION: satisfaction = optarg; break;
        case OPT_NOTE:         note = optarg; break;
        case OPT_VERSION:
            if (!all_digits(optarg) || !parse_u64(optarg, &version)) {
                rc = usage_error("callback", "--version wants a number; got '%s'", optarg);
                goto done;
            }
            has_version = true;
            break;
        case 'h':
            fputs(usage_callback, stdout);
            rc = finish_output(0);
            goto done;
        default:
            rc = option_error("callback", ch, argv);
            goto done;
        }
    }
    if (argc - optind != 1) {
        rc = usage_error("callback", "callback needs one case id");
        goto done;
    }
    if (!all_digits(argv[optind]) || !parse_u64(argv[optind], &id)) {
        rc = usage_error("callback", "'%s' is not a case id", argv[optind]);
        goto done;
    }
    if (satisfaction == NULL) {
        rc = usage_error("callback", "callback needs --satisfaction satisfied, "
                                     "basically_satisfied or unsatisfied");
        goto done;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int bad = msgpack_pack_map(&pk, 3 + (note != NULL) + has_version);
    bad |= mp_pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, id);
    bad |= mp_pack_cstr(&pk, "action") | mp_pack_cstr(&pk, "callback");
    bad |= mp_pack_cstr(&pk, "satisfaction") | mp_pack_cstr(&pk, satisfaction);
    if (note != NULL) {
        bad |= mp_pack_cstr(&pk, "note") | mp_pack_cstr(&pk, note);
    }
    if (has_version) {
        bad |= mp_pack_cstr(&pk, "version") | msgpack_pack_uint64(&pk, version);
    }
    if (bad != 0) {
        fprintf(stderr, "gridline: out of memory\n");
        rc = EXIT_REFUSED;
        goto done;
    }
    rc = act_call(c, &sb);
done:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- main ---- */

typedef struct {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    const char *usage;
} command;

static const char usage_keygen[] =
    "usage: gridline keygen NAME\n"
    "Makes a CURVE key pair for a client or for the daemon: NAME.key holds both keys\n"
    "(mode 0600; give it to --key, or to gridlined --server-key) and NAME.pub the\n"
    "public key alone (list it in the daemon's keys file, or give it to clients as\n"
    "--server-key). Never overwrites a file. Prints the public key.\n";

static int cmd_keygen(cli *c, int argc, char **argv)
{
    keyfile_keys k;
    gl_error     err;
    char         path[4096];
    (void)c;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_keygen, stdout);
        return finish_output(0);
    }
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        return usage_error("keygen", "keygen needs one NAME (files NAME.key and NAME.pub)");
    }
    if (strlen(argv[1]) > sizeof path - 8) {
        return usage_error("keygen", "NAME is too long");
    }
    memset(&k, 0, sizeof k);
    if (zmq_curve_keypair(k.public_key, k.secret_key) != 0) {
        fprintf(stderr, "gridline: cannot make a key pair: %s (libzmq without CURVE?)\n",
                zmq_strerror(errno));
        return EXIT_REFUSED;
    }
    snprintf(path, sizeof path, "%s.key", argv[1]);
    if (keyfile_write(path, &k, "gridline keygen: secret key pair; keep this file private",
                      &err) != 0) {
        fprintf(stderr, "gridline: %s\n", err.message);
        return EXIT_REFUSED;
    }
    k.secret_key[0] = '\0';
    snprintf(path, sizeof path, "%s.pub", argv[1]);
    if (keyfile_write(path, &k, "gridline keygen: public key", &err) != 0) {
        fprintf(stderr, "gridline: %s\n", err.message);
        return EXIT_REFUSED;
    }
    printf("%s\n", k.public_key);
    return finish_output(0);
}

static const command commands[] = {
    { "create", cmd_create, usage_create },
    { "get", cmd_get, usage_get },
    { "list", cmd_list, usage_list },
    { "overdue", cmd_overdue, usage_overdue },
    { "act", cmd_act, usage_act },
    { "stats", cmd_stats, usage_stats },
    { "catalog", cmd_catalog, usage_catalog },
    { "ping", cmd_ping, usage_ping },
    { "watch", cmd_watch, usage_watch },
    { "calls", cmd_calls, usage_calls },
    { "callback", cmd_callback, usage_callback },
    { "keygen", cmd_keygen, usage_keygen },
};

static const command *command_find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "key", required_argument, NULL, 'k' },
        { "server-key", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    cli            c = { 0 };
    const command *cmd;
    const char    *env = getenv(GL_CLIENT_ENDPOINT_ENV);
    int64_t        v;
    int            ch;
    int            rc;

    opterr = 0;
    c.endpoint = env != NULL && env[0] != '\0' ? env : GL_CLIENT_DEFAULT_ENDPOINT;
    c.timeout_ms = DEFAULT_TIMEOUT_MS;
    gl_client_keys_from_env(&c.keys);
    /* "+": stop at the command, whose options are its own. */
    while ((ch = getopt_long(argc, argv, "+:e:jt:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            if (optarg[0] == '\0') {
                return usage_error(NULL, "--endpoint wants an endpoint, e.g. tcp://127.0.0.1:7310");
            }
            c.endpoint = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'k':
            c.keys.key_file = optarg;
            break;
        case 's':
            c.keys.server_key_file = optarg;
            break;
        case 't':
            if (!parse_i64(optarg, &v) || v < 1 || v > MAX_TIMEOUT_MS) {
                return usage_error(NULL, "--timeout wants milliseconds, 1-%d; got '%s'",
                                   MAX_TIMEOUT_MS, optarg);
            }
            c.timeout_ms = (int)v;
            break;
        case 'h':
            fputs(usage_main, stdout);
            return finish_output(0);
        default:
            return option_error(NULL, ch, argv);
        }
    }
    if (optind >= argc) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        cmd = optind + 1 < argc ? command_find(argv[optind + 1]) : NULL;
        fputs(cmd != NULL ? cmd->usage : usage_main, stdout);
        return finish_output(0);
    }
    cmd = command_find(argv[optind]);
    if (cmd == NULL) {
        return usage_error(NULL, "unknown command '%s'", argv[optind]);
    }
    c.width = output_width();
    /* The command sees its own name as argv[0], as getopt expects. */
    rc = cmd->run(&c, argc - optind, argv + optind);
    gl_client_destroy(&c.client);
    return rc;
}
