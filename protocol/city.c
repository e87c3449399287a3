/*
 * city: reads the city model from libconfig, validates it, and answers look-ups.
 *
 * Both configs (the built-in default and the deployment's file) are read before
 * anything is parsed. Each top-level section is then taken whole from the file if it
 * has it, else from the default, and the sections are parsed in dependency order
 * (places and SLA classes, then categories, then units, then routing rules), so a
 * reference is resolved against the merged city whichever file it was written in.
 *
 * Every string is copied out of libconfig, so both configs are freed before city_new
 * returns and nothing in the city points into them. Look-ups go through one sorted
 * (code, index) array per table, built once: O(log n) with no hashing, and the sort
 * finds duplicate codes for free. Places are stored in depth-first pre-order and the
 * index keeps where each place's subtree ends, so the children of a place are found by
 * hopping from one subtree to the next: catalog.get packs the tree in O(n) without any
 * per-node child lists.
 */
#include "city.h"
#include "utf8.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default city, default_city.cfg embedded by cmake/embed.cmake. */
extern const char city_default_text[];

#define CITY_BUILTIN         "built-in"
#define CITY_CODE_MAX        64
#define CITY_NAME_MAX        256
#define CITY_PREFIX_MAX      16
#define CITY_MAX_RETURNS_MAX 100
#define CITY_DURATION_MAX_S  (366LL * 86400)
#define CITY_WARN_DEFAULT    0.8
#define CITY_DUP_WINDOW_MS   (24LL * 3600 * 1000)
#define CITY_DUP_DISTANCE_M  100.0
#define CITY_DUP_DIST_MAX_M  100000.0   /* 100 km: "the same spot" means nothing beyond */
#define CITY_MIN_CASES_MAX   1000000000   /* stars: a threshold no period could reach */

typedef struct {
    const char *code;        /* the table's own copy */
    uint32_t    len;
    int         at;          /* index into the table */
} code_entry;

typedef struct {
    code_entry *places;
    code_entry *sla;
    code_entry *categories;
    code_entry *units;
    int        *place_end;   /* one past the last place of each place's subtree */
} city_index;

typedef struct {
    city                    *c;
    city_index              *ix;
    const char              *path;      /* the deployment's file, or NULL */
    const char              *file;      /* the file of the section being parsed */
    size_t                   places_cap;
    /* Where each entry was written, to name the line of a duplicate code. */
    const config_setting_t **place_src;
    const config_setting_t **sla_src;
    const config_setting_t **cat_src;
    const config_setting_t **unit_src;
    char                     msg[512];
} parse_ctx;

static const char *const section_names[] = {
    "city", "max_returns", "places", "sla", "categories", "units", "routing",
    "duplicates", "calendar", "stars", NULL
};

/* The star thresholds when no file has a stars section (default_city.cfg's values). */
static const city_stars stars_default[CITY_STARS_MAX - CITY_STARS_MIN + 1] = {
    { 0.80, 0.80, 0.80, 5 },     /* three */
    { 0.90, 0.90, 0.90, 10 },    /* four */
    { 0.95, 0.95, 0.95, 20 },    /* five */
};
/* Indexed like city.stars; NULL-terminated for check_keys. */
static const char *const star_level_names[] = { "three", "four", "five", NULL };

/* The key holding the level below, per level; grids have none. */
static const char *const place_child_key[] = { "streets", "communities", "grids", NULL };
static const char *const place_level_name[] = { "district", "street", "community", "grid" };

static const char *const unit_kind_names[] = {
    "department", "street_office", "community_centre", "supervision"
};

const char *
unit_kind_name(unit_kind k)
{
    if ((unsigned)k >= sizeof unit_kind_names / sizeof unit_kind_names[0]) {
        return "unknown";
    }
    return unit_kind_names[k];
}

/* ---- errors ---------------------------------------------------------------------- */

static int fail(parse_ctx *x, const config_setting_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "FILE:LINE: message" into x->msg and returns -1. The file is the one the
 * setting came from (an @include'd file names itself), else the section's file. */
static int
fail(parse_ctx *x, const config_setting_t *at, const char *fmt, ...)
{
    const char *file = NULL;
    unsigned    line = 0;
    int         n;
    va_list     ap;

    if (at != NULL) {
        file = config_setting_source_file(at);
        line = config_setting_source_line(at);
    }
    if (file == NULL) {
        file = x->file != NULL ? x->file : CITY_BUILTIN;
    }
    if (line > 0) {
        n = snprintf(x->msg, sizeof x->msg, "%s:%u: ", file, line);
    } else {
        n = snprintf(x->msg, sizeof x->msg, "%s: ", file);
    }
    if (n < 0 || (size_t)n >= sizeof x->msg) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(x->msg + n, sizeof x->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int
fail_oom(parse_ctx *x)
{
    snprintf(x->msg, sizeof x->msg, "out of memory reading the city");
    return -1;
}

/* calloc that never returns NULL for an empty table, so NULL always means no memory. */
static void *
alloc_table(size_t n, size_t size)
{
    return calloc(n > 0 ? n : 1, size);
}

/* ---- settings -------------------------------------------------------------------- */

static bool
is_list(const config_setting_t *s)
{
    /* An empty [] reads as well as an empty (): both say "none". */
    return config_setting_is_list(s)
           || (config_setting_is_array(s) && config_setting_length(s) == 0);
}

static bool
in_names(const char *name, const char *const *names)
{
    size_t i;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void
join_names(const char *const *names, char *out, size_t cap)
{
    size_t i, n = 0;
    int    w;

    out[0] = '\0';
    for (i = 0; names[i] != NULL && n < cap; i++) {
        w = snprintf(out + n, cap - n, "%s%s", i > 0 ? ", " : "", names[i]);
        if (w < 0) {
            return;
        }
        n += (size_t)w;
    }
}

/* Refuses any member of g not in keys: a misspelt optional key would otherwise be
 * silently ignored and its default used. */
static int
check_keys(parse_ctx *x, const config_setting_t *g, const char *what,
           const char *const *keys)
{
    int  i, n = config_setting_length(g);
    char expected[160];

    for (i = 0; i < n; i++) {
        const config_setting_t *m    = config_setting_get_elem(g, (unsigned)i);
        const char             *name = config_setting_name(m);

        if (name == NULL || !in_names(name, keys)) {
            join_names(keys, expected, sizeof expected);
            return fail(x, m, "%s: unknown key \"%s\" (expected %s)", what,
                        name != NULL ? name : "", expected);
        }
    }
    return 0;
}

static int
expect_group(parse_ctx *x, const config_setting_t *e, const char *what)
{
    if (!config_setting_is_group(e)) {
        return fail(x, e, "each %s must be a group { ... }", what);
    }
    return 0;
}

/* The string under key, or *out = NULL when it is absent and not required. */
static int
get_string(parse_ctx *x, const config_setting_t *g, const char *what, const char *key,
           bool required, const config_setting_t **at, const char **out)
{
    const config_setting_t *m = config_setting_get_member(g, key);

    *out = NULL;
    if (at != NULL) {
        *at = m != NULL ? m : g;
    }
    if (m == NULL) {
        if (required) {
            return fail(x, g, "%s: \"%s\" is missing", what, key);
        }
        return 0;
    }
    if (config_setting_type(m) != CONFIG_TYPE_STRING) {
        return fail(x, m, "%s: \"%s\" must be a string", what, key);
    }
    *out = config_setting_get_string(m);
    return 0;
}

static int
check_code(parse_ctx *x, const config_setting_t *at, const char *what, const char *key,
           const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0) {
        return fail(x, at, "%s: \"%s\" is empty", what, key);
    }
    if (n > CITY_CODE_MAX) {
        return fail(x, at, "%s: \"%s\" is %zu bytes; at most %d", what, key, n,
                    CITY_CODE_MAX);
    }
    for (i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-')) {
            return fail(x, at, "%s: %s \"%.64s\" holds a character other than "
                        "A-Z a-z 0-9 _ . -", what, key, s);
        }
    }
    return 0;
}

static int
get_code(parse_ctx *x, const config_setting_t *g, const char *what, const char *key,
         bool required, const config_setting_t **at, const char **out)
{
    const config_setting_t *m;

    if (get_string(x, g, what, key, required, &m, out) != 0) {
        return -1;
    }
    if (at != NULL) {
        *at = m;
    }
    if (*out == NULL) {
        return 0;
    }
    return check_code(x, m, what, key, *out);
}

static int
get_name(parse_ctx *x, const config_setting_t *g, const char *what, const char **out)
{
    const config_setting_t *m;
    size_t                  n;

    if (get_string(x, g, what, "name", true, &m, out) != 0) {
        return -1;
    }
    n = strlen(*out);
    if (n == 0) {
        return fail(x, m, "%s: \"name\" is empty", what);
    }
    if (n > CITY_NAME_MAX) {
        return fail(x, m, "%s: \"name\" is %zu bytes; at most %d", what, n, CITY_NAME_MAX);
    }
    if (!utf8_valid(*out, n)) {
        return fail(x, m, "%s: \"name\" is not valid UTF-8", what);
    }
    return 0;
}

/* "90s", "30m", "2h", "7d" or an integer number of seconds, into milliseconds. */
static int
get_duration(parse_ctx *x, const config_setting_t *g, const char *what, const char *key,
             int64_t *ms)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    long long               secs = 0;
    const char             *s;
    size_t                  i;

    if (m == NULL) {
        return fail(x, g, "%s: \"%s\" is missing", what, key);
    }
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        secs = config_setting_get_int64(m);
        break;
    case CONFIG_TYPE_STRING:
        s = config_setting_get_string(m);
        for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
            /* Nine digits of days still fit in 64 bits of milliseconds. */
            if (i == 9) {
                return fail(x, m, "%s: \"%s\" is longer than 366 days", what, key);
            }
            secs = secs * 10 + (s[i] - '0');
        }
        if (i == 0 || s[i] == '\0' || s[i + 1] != '\0'
            || strchr("smhd", s[i]) == NULL) {
            return fail(x, m, "%s: \"%s\" is \"%.32s\"; write a duration such as \"90s\", "
                        "\"30m\", \"2h\", \"7d\" or a number of seconds", what, key, s);
        }
        secs *= s[i] == 's' ? 1 : s[i] == 'm' ? 60 : s[i] == 'h' ? 3600 : 86400;
        break;
    default:
        return fail(x, m, "%s: \"%s\" must be a duration such as \"2h\" or a number of "
                    "seconds", what, key);
    }
    if (secs <= 0) {
        return fail(x, m, "%s: \"%s\" must be more than zero", what, key);
    }
    if (secs > CITY_DURATION_MAX_S) {
        return fail(x, m, "%s: \"%s\" is longer than 366 days", what, key);
    }
    *ms = (int64_t)secs * 1000;
    return 0;
}

static char *
dup_str(parse_ctx *x, const char *s, int *rc)
{
    char *d = strdup(s);

    if (d == NULL) {
        *rc = fail_oom(x);
    }
    return d;
}

/* ---- the code indexes ------------------------------------------------------------ */

static int
bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);

    if (r != 0) {
        return r;
    }
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static int
entry_cmp(const void *pa, const void *pb)
{
    const code_entry *a = pa, *b = pb;

    return bytes_cmp(a->code, a->len, b->code, b->len);
}

static int
entry_key_cmp(const void *pk, const void *pe)
{
    const gl_str     *k = pk;
    const code_entry *e = pe;

    return bytes_cmp(k->p, k->n, e->code, e->len);
}

static void
entry_set(code_entry *e, const char *code, int at)
{
    e->code = code;
    e->len  = (uint32_t)strlen(code);
    e->at   = at;
}

/* Sorts a table's index and refuses a code written twice, naming both lines. */
static int
index_finish(parse_ctx *x, code_entry *e, size_t n, const config_setting_t **src,
             const char *what)
{
    size_t i;

    if (n < 2) {
        return 0;
    }
    qsort(e, n, sizeof *e, entry_cmp);
    for (i = 1; i < n; i++) {
        if (entry_cmp(&e[i - 1], &e[i]) == 0) {
            int first  = e[i - 1].at < e[i].at ? e[i - 1].at : e[i].at;
            int second = e[i - 1].at < e[i].at ? e[i].at : e[i - 1].at;

            return fail(x, src[second], "%s \"%s\": duplicate code (first at line %u)",
                        what, e[i].code, config_setting_source_line(src[first]));
        }
    }
    return 0;
}

static int
index_find(const code_entry *e, size_t n, gl_str code)
{
    const code_entry *hit;

    if (e == NULL || n == 0 || code.p == NULL || code.n == 0) {
        return -1;
    }
    hit = bsearch(&code, e, n, sizeof *e, entry_key_cmp);
    return hit != NULL ? hit->at : -1;
}

int
city_place_find(const city *c, gl_str code)
{
    const city_index *ix = c != NULL ? c->index : NULL;

    return ix != NULL ? index_find(ix->places, c->n_places, code) : -1;
}

int
city_category_find(const city *c, gl_str code)
{
    const city_index *ix = c != NULL ? c->index : NULL;

    return ix != NULL ? index_find(ix->categories, c->n_categories, code) : -1;
}

int
city_unit_find(const city *c, gl_str code)
{
    const city_index *ix = c != NULL ? c->index : NULL;

    return ix != NULL ? index_find(ix->units, c->n_units, code) : -1;
}

int
city_sla_find(const city *c, gl_str code)
{
    const city_index *ix = c != NULL ? c->index : NULL;

    return ix != NULL ? index_find(ix->sla, c->n_sla, code) : -1;
}

/* True when place p is anc or lies below it. */
static bool
place_within(const city *c, int p, int anc)
{
    while (p >= 0) {
        if (p == anc) {
            return true;
        }
        p = c->places[p].parent;
    }
    return false;
}

/* ---- sections -------------------------------------------------------------------- */

static int
parse_city(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = { "name", "code_prefix", "utc_offset", NULL };
    const config_setting_t  *at;
    const char              *name, *prefix, *off;
    size_t                   i, n;
    int                      rc = 0, hh, mm;

    if (!config_setting_is_group(s)) {
        return fail(x, s, "city must be a group { name; code_prefix; utc_offset; }");
    }
    if (check_keys(x, s, "city", keys) != 0 || get_name(x, s, "city", &name) != 0
        || get_string(x, s, "city", "code_prefix", true, &at, &prefix) != 0) {
        return -1;
    }
    n = strlen(prefix);
    if (n == 0 || n > CITY_PREFIX_MAX) {
        return fail(x, at, "city: \"code_prefix\" must be 1 to %d letters or digits",
                    CITY_PREFIX_MAX);
    }
    for (i = 0; i < n; i++) {
        char ch = prefix[i];

        /* Case codes are PREFIX-YYYYMMDD-NNNNNN: a '-' in the prefix would blur them. */
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9'))) {
            return fail(x, at, "city: \"code_prefix\" \"%.32s\" may hold only letters and "
                        "digits", prefix);
        }
    }
    if (get_string(x, s, "city", "utc_offset", true, &at, &off) != 0) {
        return -1;
    }
    if (strlen(off) != 6 || (off[0] != '+' && off[0] != '-') || off[3] != ':'
        || off[1] < '0' || off[1] > '9' || off[2] < '0' || off[2] > '9'
        || off[4] < '0' || off[4] > '5' || off[5] < '0' || off[5] > '9') {
        return fail(x, at, "city: \"utc_offset\" is \"%.32s\"; write \"+HH:MM\" or "
                    "\"-HH:MM\", e.g. \"+08:00\"", off);
    }
    hh = (off[1] - '0') * 10 + (off[2] - '0');
    mm = (off[4] - '0') * 10 + (off[5] - '0');
    if (hh > 14 || (hh == 14 && mm > 0)) {
        return fail(x, at, "city: \"utc_offset\" \"%s\" is beyond 14 hours", off);
    }
    x->c->utc_offset_min = (off[0] == '-' ? -1 : 1) * (hh * 60 + mm);
    x->c->name = dup_str(x, name, &rc);
    if (rc == 0) {
        x->c->code_prefix = dup_str(x, prefix, &rc);
    }
    return rc;
}

static int
parse_max_returns(parse_ctx *x, const config_setting_t *s)
{
    long long v;

    if (config_setting_type(s) != CONFIG_TYPE_INT
        && config_setting_type(s) != CONFIG_TYPE_INT64) {
        return fail(x, s, "max_returns must be an integer");
    }
    v = config_setting_get_int64(s);
    if (v < 0 || v > CITY_MAX_RETURNS_MAX) {
        return fail(x, s, "max_returns is %lld; it must be 0 to %d", v,
                    CITY_MAX_RETURNS_MAX);
    }
    x->c->max_returns = (uint32_t)v;
    return 0;
}

/* duplicates = { window; distance_m; }: either key left out keeps its default, like
 * warn_ratio in an SLA class. */
static int
parse_duplicates(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = { "window", "distance_m", NULL };
    const config_setting_t  *m;
    double                   d;

    if (!config_setting_is_group(s)) {
        return fail(x, s, "duplicates must be a group { window; distance_m; }");
    }
    if (check_keys(x, s, "duplicates", keys) != 0) {
        return -1;
    }
    if (config_setting_get_member(s, "window") != NULL
        && get_duration(x, s, "duplicates", "window", &x->c->dup_window_ms) != 0) {
        return -1;
    }
    m = config_setting_get_member(s, "distance_m");
    if (m != NULL) {
        if (!config_setting_is_number(m)) {
            return fail(x, m, "duplicates: \"distance_m\" must be a number of metres");
        }
        d = config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                                                        : (double)config_setting_get_int64(m);
        /* Written as a negation so that a NaN is refused too. */
        if (!(d > 0.0 && d <= CITY_DUP_DIST_MAX_M)) {
            return fail(x, m, "duplicates: \"distance_m\" must be more than 0 and at most "
                        "%.0f metres, e.g. 100.0", CITY_DUP_DIST_MAX_M);
        }
        x->c->dup_distance_m = d;
    }
    return 0;
}

/* ---- calendar -------------------------------------------------------------------- */

static const char *const weekday_names[] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
};

static bool
is_array_or_list(const config_setting_t *m)
{
    return config_setting_is_array(m) || config_setting_is_list(m);
}

static int
parse_workdays(parse_ctx *x, const config_setting_t *m, calendar *cal)
{
    int     i, len;
    uint8_t days = 0;

    if (!is_array_or_list(m)) {
        return fail(x, m, "calendar: \"workdays\" must be an array [ ... ] of days of the "
                    "week, 1 (Monday) to 7 (Sunday)");
    }
    len = config_setting_length(m);
    if (len == 0) {
        /* A working-time SLA class would then fall due only on swapped days. */
        return fail(x, m, "calendar: \"workdays\" is empty; at least one day of the week "
                    "must be a working day");
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        long long               d;

        if (config_setting_type(e) != CONFIG_TYPE_INT
            && config_setting_type(e) != CONFIG_TYPE_INT64) {
            return fail(x, e, "calendar: \"workdays\" must hold days of the week as "
                        "numbers, 1 (Monday) to 7 (Sunday)");
        }
        d = config_setting_get_int64(e);
        if (d < 1 || d > 7) {
            return fail(x, e, "calendar: workday %lld is not 1 (Monday) to 7 (Sunday)", d);
        }
        if (days & (1u << (d - 1))) {
            return fail(x, e, "calendar: workday %lld (%s) is listed twice", d,
                        weekday_names[d - 1]);
        }
        days |= (uint8_t)(1u << (d - 1));
    }
    cal->workdays = days;
    return 0;
}

static void
span_text(const calendar_span *sp, char *out, size_t cap)
{
    snprintf(out, cap, "%02d:%02d-%02d:%02d", sp->start_min / 60, sp->start_min % 60,
             sp->end_min / 60, sp->end_min % 60);
}

static int
parse_hours(parse_ctx *x, const config_setting_t *m, calendar *cal)
{
    calendar_span spans[CALENDAR_MAX_SPANS];
    char          prev[32];
    int           i, len;

    if (!is_array_or_list(m)) {
        return fail(x, m, "calendar: \"hours\" must be an array [ ... ] of spans such as "
                    "\"09:00-12:00\"");
    }
    len = config_setting_length(m);
    if (len == 0) {
        return fail(x, m, "calendar: \"hours\" is empty; a working day needs at least one "
                    "span such as \"09:00-12:00\"");
    }
    if (len > CALENDAR_MAX_SPANS) {
        return fail(x, m, "calendar: \"hours\" has %d spans; at most %d", len,
                    CALENDAR_MAX_SPANS);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        const char             *t;

        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            return fail(x, e, "calendar: \"hours\" must hold spans (strings) such as "
                        "\"09:00-12:00\"");
        }
        t = config_setting_get_string(e);
        if (calendar_parse_span(t, &spans[i]) != 0) {
            return fail(x, e, "calendar: hours \"%.32s\" is not a span HH:MM-HH:MM on the "
                        "24-hour clock ending after it starts, such as \"13:30-17:30\"", t);
        }
        if (i == 0) {
            continue;
        }
        span_text(&spans[i - 1], prev, sizeof prev);
        /* The counting walks the spans in order and would count an overlap twice. */
        if (spans[i].start_min < spans[i - 1].start_min) {
            return fail(x, e, "calendar: hours \"%s\" starts before \"%s\" listed before "
                        "it; list the spans in the order of the day", t, prev);
        }
        if (spans[i].start_min < spans[i - 1].end_min) {
            return fail(x, e, "calendar: hours \"%s\" overlaps \"%s\"", t, prev);
        }
    }
    memcpy(cal->spans, spans, (size_t)len * sizeof spans[0]);
    cal->n_spans = (size_t)len;
    return 0;
}

typedef struct {
    int32_t                 day;
    const config_setting_t *at;
} dated;

static int
dated_cmp(const void *pa, const void *pb)
{
    const dated *a = pa, *b = pb;

    return a->day < b->day ? -1 : a->day > b->day;
}

/* Reads an array of "YYYY-MM-DD" under key into *out (sorted, with where each was
 * written), refusing a bad or repeated date. *out is NULL when the key is absent. */
static int
parse_dates(parse_ctx *x, const config_setting_t *g, const char *key, const char *one,
            dated **out, size_t *n)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    int                     i, len;

    *out = NULL;
    *n   = 0;
    if (m == NULL) {
        return 0;
    }
    if (!is_array_or_list(m)) {
        return fail(x, m, "calendar: \"%s\" must be an array [ ... ] of dates such as "
                    "\"2026-10-01\"", key);
    }
    len  = config_setting_length(m);
    *out = alloc_table((size_t)len, sizeof **out);
    if (*out == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        const char             *t;

        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            return fail(x, e, "calendar: \"%s\" must hold dates (strings) such as "
                        "\"2026-10-01\"", key);
        }
        t = config_setting_get_string(e);
        if (calendar_parse_date(t, &(*out)[i].day) != 0) {
            return fail(x, e, "calendar: %s \"%.32s\" is not a date YYYY-MM-DD that "
                        "exists (from 1970 on)", one, t);
        }
        (*out)[i].at = e;
        *n = (size_t)i + 1;
    }
    qsort(*out, *n, sizeof **out, dated_cmp);
    for (i = 1; (size_t)i < *n; i++) {
        const dated *a = &(*out)[i - 1], *b = &(*out)[i];

        if (a->day == b->day) {
            /* Name the later line: that is the one to delete. */
            const dated *first  = config_setting_source_line(a->at)
                                  <= config_setting_source_line(b->at) ? a : b;
            const dated *second = first == a ? b : a;

            return fail(x, second->at, "calendar: %s \"%s\" is listed twice (first at "
                        "line %u)", one, config_setting_get_string(second->at),
                        config_setting_source_line(first->at));
        }
    }
    return 0;
}

static int
dates_keep(parse_ctx *x, const dated *d, size_t n, int32_t **out, size_t *n_out)
{
    size_t i;

    *out = alloc_table(n, sizeof **out);
    if (*out == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < n; i++) {
        (*out)[i] = d[i].day;
    }
    *n_out = n;
    return 0;
}

/* calendar = { workdays; hours; holidays; working_weekends; }: a key left out keeps
 * its built-in value (Monday to Friday, 09:00-12:00 and 13:30-17:30, no dates), so a
 * deployment's section need only list its own year's dates. */
static int
parse_calendar(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = {
        "workdays", "hours", "holidays", "working_weekends", NULL
    };
    calendar               *cal = &x->c->calendar;
    const config_setting_t *m;
    dated                  *hol = NULL, *wk = NULL;
    size_t                  n_hol = 0, n_wk = 0, i, j;
    int                     rc = -1;

    if (!config_setting_is_group(s)) {
        return fail(x, s, "calendar must be a group { workdays; hours; holidays; "
                    "working_weekends; }");
    }
    if (check_keys(x, s, "calendar", keys) != 0) {
        return -1;
    }
    if ((m = config_setting_get_member(s, "workdays")) != NULL
        && parse_workdays(x, m, cal) != 0) {
        return -1;
    }
    if ((m = config_setting_get_member(s, "hours")) != NULL && parse_hours(x, m, cal) != 0) {
        return -1;
    }
    if (parse_dates(x, s, "holidays", "holiday", &hol, &n_hol) != 0
        || parse_dates(x, s, "working_weekends", "working weekend", &wk, &n_wk) != 0) {
        goto cleanup;
    }
    for (i = 0; i < n_wk; i++) {
        int wd = calendar_weekday(wk[i].day);

        /* Listing a working weekday here is a slip for some other date, and saying
         * nothing would leave the real swapped day a day off. */
        if (cal->workdays & (1u << (wd - 1))) {
            fail(x, wk[i].at, "calendar: working weekend \"%s\" is a %s, already a "
                 "working day", config_setting_get_string(wk[i].at), weekday_names[wd - 1]);
            goto cleanup;
        }
    }
    /* Both lists are sorted: one merge finds a date in both. */
    for (i = 0, j = 0; i < n_hol && j < n_wk;) {
        if (hol[i].day < wk[j].day) {
            i++;
        } else if (hol[i].day > wk[j].day) {
            j++;
        } else {
            fail(x, wk[j].at, "calendar: \"%s\" is both a holiday (line %u) and a working "
                 "weekend", config_setting_get_string(wk[j].at),
                 config_setting_source_line(hol[i].at));
            goto cleanup;
        }
    }
    if (dates_keep(x, hol, n_hol, &cal->holidays, &cal->n_holidays) != 0
        || dates_keep(x, wk, n_wk, &cal->working_weekends, &cal->n_working_weekends)
               != 0) {
        goto cleanup;
    }
    rc = 0;

cleanup:
    free(hol);
    free(wk);
    return rc;
}

/* ---- stars ----------------------------------------------------------------------- */

static const char *const star_keys[] = {
    "response_rate", "on_time_rate", "satisfaction_rate", "min_cases", NULL
};

static int
get_rate(parse_ctx *x, const config_setting_t *g, const char *what, const char *key,
         double *out)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    double                  v;

    if (m == NULL) {
        return fail(x, g, "%s: \"%s\" is missing", what, key);
    }
    if (!config_setting_is_number(m)) {
        return fail(x, m, "%s: \"%s\" must be a number from 0 to 1, e.g. 0.9", what, key);
    }
    v = config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                                                    : (double)config_setting_get_int64(m);
    /* Written as a negation so that a NaN is refused too. */
    if (!(v >= 0.0 && v <= 1.0)) {
        return fail(x, m, "%s: \"%s\" must be from 0 to 1, e.g. 0.9 for 90%%", what, key);
    }
    *out = v;
    return 0;
}

static int
parse_star_level(parse_ctx *x, const config_setting_t *s, int lvl, city_stars *out)
{
    const char             *name = star_level_names[lvl];
    const config_setting_t *g    = config_setting_get_member(s, name);
    const config_setting_t *m;
    char                    what[32];
    long long               n;

    snprintf(what, sizeof what, "stars: %s", name);
    if (!config_setting_is_group(g)) {
        return fail(x, g, "%s must be a group { response_rate; on_time_rate; "
                    "satisfaction_rate; min_cases; }", what);
    }
    if (check_keys(x, g, what, star_keys) != 0
        || get_rate(x, g, what, "response_rate", &out->response_rate) != 0
        || get_rate(x, g, what, "on_time_rate", &out->on_time_rate) != 0
        || get_rate(x, g, what, "satisfaction_rate", &out->satisfaction_rate) != 0) {
        return -1;
    }
    m = config_setting_get_member(g, "min_cases");
    if (m == NULL) {
        return fail(x, g, "%s: \"min_cases\" is missing", what);
    }
    if (config_setting_type(m) != CONFIG_TYPE_INT
        && config_setting_type(m) != CONFIG_TYPE_INT64) {
        return fail(x, m, "%s: \"min_cases\" must be an integer", what);
    }
    n = config_setting_get_int64(m);
    if (n < 0 || n > CITY_MIN_CASES_MAX) {
        return fail(x, m, "%s: \"min_cases\" is %lld; it must be 0 to %d", what, n,
                    CITY_MIN_CASES_MAX);
    }
    out->min_cases = (uint32_t)n;
    return 0;
}

/* stars = { three; four; five; }: all three levels and all their keys, since half a
 * rating rule taken from defaults would rate communities by a rule nobody wrote. */
static int
parse_stars(parse_ctx *x, const config_setting_t *s)
{
    city_stars st[CITY_STARS_MAX - CITY_STARS_MIN + 1];
    int        lvl, k;

    if (!config_setting_is_group(s)) {
        return fail(x, s, "stars must be a group { three = {...}; four = {...}; "
                    "five = {...}; }");
    }
    if (check_keys(x, s, "stars", star_level_names) != 0) {
        return -1;
    }
    /* A level that is missing is named after the errors in those written. */
    for (lvl = 0; lvl <= CITY_STARS_MAX - CITY_STARS_MIN; lvl++) {
        if (config_setting_get_member(s, star_level_names[lvl]) != NULL
            && parse_star_level(x, s, lvl, &st[lvl]) != 0) {
            return -1;
        }
    }
    for (lvl = 0; lvl <= CITY_STARS_MAX - CITY_STARS_MIN; lvl++) {
        if (config_setting_get_member(s, star_level_names[lvl]) == NULL) {
            return fail(x, s, "stars: \"%s\" is missing; a stars section names three, "
                        "four and five", star_level_names[lvl]);
        }
    }
    /* More stars must never ask for less: otherwise a community could reach five stars
     * while failing four, and its rating would depend on the order levels are tried. */
    for (lvl = 1; lvl <= CITY_STARS_MAX - CITY_STARS_MIN; lvl++) {
        const city_stars *lo = &st[lvl - 1], *hi = &st[lvl];
        const double      lo_v[3] = { lo->response_rate, lo->on_time_rate,
                                      lo->satisfaction_rate };
        const double      hi_v[3] = { hi->response_rate, hi->on_time_rate,
                                      hi->satisfaction_rate };
        const config_setting_t *g = config_setting_get_member(s, star_level_names[lvl]);

        for (k = 0; k < 3; k++) {
            if (hi_v[k] < lo_v[k]) {
                return fail(x, config_setting_get_member(g, star_keys[k]),
                            "stars: %s's \"%s\" (%g) is below %s's (%g); more stars must "
                            "not ask for less", star_level_names[lvl], star_keys[k],
                            hi_v[k], star_level_names[lvl - 1], lo_v[k]);
            }
        }
        if (hi->min_cases < lo->min_cases) {
            return fail(x, config_setting_get_member(g, "min_cases"),
                        "stars: %s's \"min_cases\" (%u) is below %s's (%u); more stars "
                        "must not ask for less", star_level_names[lvl], hi->min_cases,
                        star_level_names[lvl - 1], lo->min_cases);
        }
    }
    memcpy(x->c->stars, st, sizeof st);
    return 0;
}

/* Counts the groups of the place tree, so the table is allocated once. Entries that
 * are not groups are skipped here and refused by parse_places. */
static size_t
places_count(const config_setting_t *list, int level)
{
    size_t n = 0;
    int    i, len;

    if (list == NULL || !is_list(list)) {
        return 0;
    }
    len = config_setting_length(list);
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);

        if (!config_setting_is_group(e)) {
            continue;
        }
        n++;
        if (place_child_key[level] != NULL) {
            n += places_count(config_setting_get_member(e, place_child_key[level]),
                              level + 1);
        }
    }
    return n;
}

static int
parse_place_list(parse_ctx *x, const config_setting_t *list, place_level level,
                 int parent)
{
    const char *lname = place_level_name[level];
    const char *child = place_child_key[level];
    const char *keys[] = { "code", "name", child, NULL };
    int         i, len, rc = 0;

    if (!is_list(list)) {
        return fail(x, list, "\"%s\" must be a list ( ... ) of %s groups",
                    config_setting_name(list) != NULL ? config_setting_name(list) : "",
                    lname);
    }
    len = config_setting_length(list);
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        const config_setting_t *kids;
        const char             *code, *name;
        char                    what[96];
        city_place             *p;
        int                     at = (int)x->c->n_places;

        if (expect_group(x, e, lname) != 0 || check_keys(x, e, lname, keys) != 0
            || get_code(x, e, lname, "code", true, NULL, &code) != 0) {
            return -1;
        }
        snprintf(what, sizeof what, "%s \"%s\"", lname, code);
        if (get_name(x, e, what, &name) != 0) {
            return -1;
        }
        if ((size_t)at >= x->places_cap) {
            return fail(x, e, "%s: the place tree changed while it was read", what);
        }
        p = &x->c->places[at];
        x->c->n_places++;
        p->level  = level;
        p->parent = parent;
        p->code   = dup_str(x, code, &rc);
        if (rc == 0) {
            p->name = dup_str(x, name, &rc);
        }
        if (rc != 0) {
            return rc;
        }
        x->place_src[at] = e;
        entry_set(&x->ix->places[at], p->code, at);
        kids = child != NULL ? config_setting_get_member(e, child) : NULL;
        if (kids != NULL && parse_place_list(x, kids, level + 1, at) != 0) {
            return -1;
        }
        x->ix->place_end[at] = (int)x->c->n_places;
    }
    return 0;
}

static int
parse_places(parse_ctx *x, const config_setting_t *s)
{
    size_t n;

    if (!is_list(s) || config_setting_length(s) == 0) {
        return fail(x, s, "places must be a non-empty list ( ... ) of districts");
    }
    n = places_count(s, 0);
    x->c->places      = alloc_table(n, sizeof *x->c->places);
    x->ix->places     = alloc_table(n, sizeof *x->ix->places);
    x->ix->place_end  = alloc_table(n, sizeof *x->ix->place_end);
    x->place_src      = alloc_table(n, sizeof *x->place_src);
    if (x->c->places == NULL || x->ix->places == NULL || x->ix->place_end == NULL
        || x->place_src == NULL) {
        return fail_oom(x);
    }
    x->places_cap = n;
    if (parse_place_list(x, s, PLACE_DISTRICT, -1) != 0) {
        return -1;
    }
    return index_finish(x, x->ix->places, x->c->n_places, x->place_src, "place");
}

static int
parse_sla(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = {
        "code", "accept_within", "resolve_within", "clock", "warn_ratio", NULL
    };
    int len, i, rc = 0;

    if (!is_list(s) || config_setting_length(s) == 0) {
        return fail(x, s, "sla must be a non-empty list ( ... ) of SLA classes");
    }
    len = config_setting_length(s);
    x->c->sla     = alloc_table((size_t)len, sizeof *x->c->sla);
    x->ix->sla    = alloc_table((size_t)len, sizeof *x->ix->sla);
    x->sla_src    = alloc_table((size_t)len, sizeof *x->sla_src);
    if (x->c->sla == NULL || x->ix->sla == NULL || x->sla_src == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const config_setting_t *at;
        const char             *code, *clock;
        char                    what[96];
        city_sla               *k = &x->c->sla[i];

        if (expect_group(x, e, "SLA class") != 0
            || check_keys(x, e, "SLA class", keys) != 0
            || get_code(x, e, "SLA class", "code", true, NULL, &code) != 0) {
            return -1;
        }
        snprintf(what, sizeof what, "SLA class \"%s\"", code);
        if (get_duration(x, e, what, "accept_within", &k->accept_ms) != 0
            || get_duration(x, e, what, "resolve_within", &k->resolve_ms) != 0
            || get_string(x, e, what, "clock", false, &at, &clock) != 0) {
            return -1;
        }
        if (k->accept_ms > k->resolve_ms) {
            return fail(x, e, "%s: accept_within is longer than resolve_within", what);
        }
        if (clock == NULL || strcmp(clock, "wall") == 0) {
            k->working_time = false;
        } else if (strcmp(clock, "working") == 0) {
            k->working_time = true;
        } else {
            return fail(x, at, "%s: \"clock\" is \"%.32s\"; expected \"wall\" or "
                        "\"working\"", what, clock);
        }
        k->warn_ratio = CITY_WARN_DEFAULT;
        at = config_setting_get_member(e, "warn_ratio");
        if (at != NULL) {
            if (!config_setting_is_number(at)) {
                return fail(x, at, "%s: \"warn_ratio\" must be a number", what);
            }
            k->warn_ratio = config_setting_type(at) == CONFIG_TYPE_FLOAT
                                ? config_setting_get_float(at)
                                : (double)config_setting_get_int64(at);
            if (!(k->warn_ratio > 0.0 && k->warn_ratio < 1.0)) {
                return fail(x, at, "%s: \"warn_ratio\" must be between 0 and 1, "
                            "e.g. 0.8", what);
            }
        }
        x->c->n_sla++;
        k->code = dup_str(x, code, &rc);
        if (rc != 0) {
            return rc;
        }
        x->sla_src[i] = e;
        entry_set(&x->ix->sla[i], k->code, i);
    }
    return index_finish(x, x->ix->sla, x->c->n_sla, x->sla_src, "SLA class");
}

static int
resolve_sla(parse_ctx *x, const config_setting_t *at, const char *what, const char *code,
            int *out)
{
    *out = city_sla_find(x->c, gl_str_c(code));
    if (*out < 0) {
        return fail(x, at, "%s: SLA class \"%.64s\" is not in sla", what, code);
    }
    return 0;
}

static int
parse_category_sla(parse_ctx *x, const config_setting_t *e, const char *what,
                   city_category *k)
{
    static const char *const keys[] = { "emergency", "urgent", "normal", NULL };
    const config_setting_t  *m = config_setting_get_member(e, "sla");
    const config_setting_t  *at;
    const char              *code;
    int                      u;

    if (m == NULL) {
        return fail(x, e, "%s: \"sla\" is missing", what);
    }
    if (config_setting_type(m) == CONFIG_TYPE_STRING) {
        if (resolve_sla(x, m, what, config_setting_get_string(m), &k->sla[0]) != 0) {
            return -1;
        }
        for (u = 1; u < URGENCY_COUNT; u++) {
            k->sla[u] = k->sla[0];
        }
        return 0;
    }
    if (!config_setting_is_group(m)) {
        return fail(x, m, "%s: \"sla\" must be an SLA class code or a group "
                    "{ emergency; urgent; normal; }", what);
    }
    if (check_keys(x, m, what, keys) != 0) {
        return -1;
    }
    for (u = 0; u < URGENCY_COUNT; u++) {
        if (get_string(x, m, what, keys[u], true, &at, &code) != 0
            || resolve_sla(x, at, what, code, &k->sla[u]) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
parse_categories(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = { "code", "name", "sla", NULL };
    int len, i, rc = 0;

    if (!is_list(s) || config_setting_length(s) == 0) {
        return fail(x, s, "categories must be a non-empty list ( ... ) of categories");
    }
    len = config_setting_length(s);
    x->c->categories = alloc_table((size_t)len, sizeof *x->c->categories);
    x->ix->categories = alloc_table((size_t)len, sizeof *x->ix->categories);
    x->cat_src = alloc_table((size_t)len, sizeof *x->cat_src);
    if (x->c->categories == NULL || x->ix->categories == NULL || x->cat_src == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char             *code, *name;
        char                    what[96];
        city_category          *k = &x->c->categories[i];

        if (expect_group(x, e, "category") != 0
            || check_keys(x, e, "category", keys) != 0
            || get_code(x, e, "category", "code", true, NULL, &code) != 0) {
            return -1;
        }
        snprintf(what, sizeof what, "category \"%s\"", code);
        if (get_name(x, e, what, &name) != 0 || parse_category_sla(x, e, what, k) != 0) {
            return -1;
        }
        x->c->n_categories++;
        k->code = dup_str(x, code, &rc);
        if (rc == 0) {
            k->name = dup_str(x, name, &rc);
        }
        if (rc != 0) {
            return rc;
        }
        x->cat_src[i] = e;
        entry_set(&x->ix->categories[i], k->code, i);
    }
    return index_finish(x, x->ix->categories, x->c->n_categories, x->cat_src,
                        "category");
}

static int
parse_unit_categories(parse_ctx *x, const config_setting_t *e, const char *what,
                      city_unit *u)
{
    const config_setting_t *m = config_setting_get_member(e, "categories");
    int                     len, i, j;

    if (m == NULL) {
        return 0;
    }
    if (!config_setting_is_array(m) && !config_setting_is_list(m)) {
        return fail(x, m, "%s: \"categories\" must be an array [ ... ] of category codes",
                    what);
    }
    len = config_setting_length(m);
    if (len == 0) {
        return 0;
    }
    u->categories = alloc_table((size_t)len, sizeof *u->categories);
    if (u->categories == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *el = config_setting_get_elem(m, (unsigned)i);
        const char             *code;
        int                     k;

        if (config_setting_type(el) != CONFIG_TYPE_STRING) {
            return fail(x, el, "%s: \"categories\" must hold category codes (strings)",
                        what);
        }
        code = config_setting_get_string(el);
        k    = city_category_find(x->c, gl_str_c(code));
        if (k < 0) {
            return fail(x, el, "%s: category \"%.64s\" is not in categories", what, code);
        }
        for (j = 0; j < i; j++) {
            if (u->categories[j] == k) {
                return fail(x, el, "%s: category \"%s\" is listed twice", what, code);
            }
        }
        u->categories[i] = k;
        u->n_categories  = (size_t)i + 1;
    }
    return 0;
}

static int
parse_unit_kind(parse_ctx *x, const config_setting_t *e, const char *what, city_unit *u)
{
    const config_setting_t *at;
    const char             *kind;
    size_t                  k;

    if (get_string(x, e, what, "kind", true, &at, &kind) != 0) {
        return -1;
    }
    for (k = 0; k < sizeof unit_kind_names / sizeof unit_kind_names[0]; k++) {
        if (strcmp(kind, unit_kind_names[k]) == 0) {
            u->kind = (unit_kind)k;
            return 0;
        }
    }
    return fail(x, at, "%s: \"kind\" is \"%.32s\"; expected department, street_office, "
                "community_centre or supervision", what, kind);
}

static int
parse_unit_place(parse_ctx *x, const config_setting_t *e, const char *what, city_unit *u)
{
    const config_setting_t *at;
    const char             *code;

    u->place = -1;
    if (get_code(x, e, what, "place", false, &at, &code) != 0) {
        return -1;
    }
    if (code != NULL) {
        u->place = city_place_find(x->c, gl_str_c(code));
        if (u->place < 0) {
            return fail(x, at, "%s: place \"%s\" is not in places", what, code);
        }
    }
    if (u->kind == UNIT_STREET_OFFICE
        && (u->place < 0 || x->c->places[u->place].level != PLACE_STREET)) {
        return fail(x, at, "%s: a street_office's place must be a street", what);
    }
    if (u->kind == UNIT_COMMUNITY_CENTRE
        && (u->place < 0 || x->c->places[u->place].level != PLACE_COMMUNITY)) {
        return fail(x, at, "%s: a community_centre's place must be a community", what);
    }
    return 0;
}

static int
parse_units(parse_ctx *x, const config_setting_t *s)
{
    static const char *const keys[] = {
        "code", "name", "kind", "place", "categories", NULL
    };
    int  len, i, rc = 0;
    bool supervision = false;

    if (!is_list(s) || config_setting_length(s) == 0) {
        return fail(x, s, "units must be a non-empty list ( ... ) of units");
    }
    len = config_setting_length(s);
    x->c->units   = alloc_table((size_t)len, sizeof *x->c->units);
    x->ix->units  = alloc_table((size_t)len, sizeof *x->ix->units);
    x->unit_src   = alloc_table((size_t)len, sizeof *x->unit_src);
    if (x->c->units == NULL || x->ix->units == NULL || x->unit_src == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char             *code, *name;
        char                    what[96];
        city_unit              *u = &x->c->units[i];

        if (expect_group(x, e, "unit") != 0 || check_keys(x, e, "unit", keys) != 0
            || get_code(x, e, "unit", "code", true, NULL, &code) != 0) {
            return -1;
        }
        snprintf(what, sizeof what, "unit \"%s\"", code);
        /* Counted before its parts are filled, so city_destroy frees what was. */
        x->c->n_units++;
        if (get_name(x, e, what, &name) != 0 || parse_unit_kind(x, e, what, u) != 0
            || parse_unit_place(x, e, what, u) != 0
            || parse_unit_categories(x, e, what, u) != 0) {
            return -1;
        }
        supervision = supervision || u->kind == UNIT_SUPERVISION;
        u->code = dup_str(x, code, &rc);
        if (rc == 0) {
            u->name = dup_str(x, name, &rc);
        }
        if (rc != 0) {
            return rc;
        }
        x->unit_src[i] = e;
        entry_set(&x->ix->units[i], u->code, i);
    }
    if (!supervision) {
        /* Repeatedly returned cases go to supervision: without one they would stall. */
        return fail(x, s, "units: no unit has kind \"supervision\"; one is needed to "
                    "decide cases returned more than max_returns times");
    }
    return index_finish(x, x->ix->units, x->c->n_units, x->unit_src, "unit");
}

static bool
unit_handles(const city_unit *u, int category)
{
    size_t i;

    if (u->n_categories == 0) {
        return true;
    }
    for (i = 0; i < u->n_categories; i++) {
        if (u->categories[i] == category) {
            return true;
        }
    }
    return false;
}

/* One rule; checks it can be obeyed: the unit handles the category and serves the
 * place, so the router never dispatches a case to a unit that would return it. */
static int
parse_rule(parse_ctx *x, const config_setting_t *e, city_rule *r)
{
    static const char *const keys[] = { "category", "place", "unit", NULL };
    const config_setting_t  *cat_at, *place_at, *unit_at;
    const char              *cat, *place, *unit;
    const city_unit         *u;

    if (expect_group(x, e, "routing rule") != 0
        || check_keys(x, e, "routing rule", keys) != 0
        || get_string(x, e, "routing rule", "category", false, &cat_at, &cat) != 0
        || get_string(x, e, "routing rule", "place", false, &place_at, &place) != 0
        || get_string(x, e, "routing rule", "unit", true, &unit_at, &unit) != 0) {
        return -1;
    }
    r->category = -1;
    r->place    = -1;
    if (cat != NULL && (r->category = city_category_find(x->c, gl_str_c(cat))) < 0) {
        return fail(x, cat_at, "routing rule: category \"%.64s\" is not in categories",
                    cat);
    }
    if (place != NULL && (r->place = city_place_find(x->c, gl_str_c(place))) < 0) {
        return fail(x, place_at, "routing rule: place \"%.64s\" is not in places", place);
    }
    if ((r->unit = city_unit_find(x->c, gl_str_c(unit))) < 0) {
        return fail(x, unit_at, "routing rule: unit \"%.64s\" is not in units", unit);
    }
    u = &x->c->units[r->unit];
    if (r->category >= 0 && !unit_handles(u, r->category)) {
        return fail(x, e, "routing rule: unit \"%s\" does not handle category \"%s\"",
                    unit, cat);
    }
    if (r->place >= 0 && u->place >= 0 && !place_within(x->c, r->place, u->place)) {
        return fail(x, e, "routing rule: place \"%s\" is outside unit \"%s\"'s place "
                    "\"%s\"", place, unit, x->c->places[u->place].code);
    }
    return 0;
}

static int
parse_routing(parse_ctx *x, const config_setting_t *s)
{
    int len, i;

    if (!is_list(s)) {
        return fail(x, s, "routing must be a list ( ... ) of rules");
    }
    len = config_setting_length(s);
    x->c->rules = alloc_table((size_t)len, sizeof *x->c->rules);
    if (x->c->rules == NULL) {
        return fail_oom(x);
    }
    for (i = 0; i < len; i++) {
        if (parse_rule(x, config_setting_get_elem(s, (unsigned)i), &x->c->rules[i]) != 0) {
            return -1;
        }
        x->c->n_rules++;
    }
    return 0;
}

/* ---- reading --------------------------------------------------------------------- */

static int
read_config(parse_ctx *x, config_t *cfg, const char *path)
{
    char dir[4096];
    int  saved;

    if (path == NULL) {
        if (config_read_string(cfg, city_default_text) == CONFIG_TRUE) {
            return 0;
        }
        x->file = CITY_BUILTIN;
        snprintf(x->msg, sizeof x->msg, "%s:%d: %s", CITY_BUILTIN, config_error_line(cfg),
                 config_error_text(cfg) != NULL ? config_error_text(cfg) : "syntax error");
        return -1;
    }
    /* @include "x.cfg" inside the file means the x.cfg beside it, not in our cwd. */
    if (strlen(path) < sizeof dir && strrchr(path, '/') != NULL) {
        memcpy(dir, path, (size_t)(strrchr(path, '/') - path));
        dir[strrchr(path, '/') - path] = '\0';
        config_set_include_dir(cfg, dir[0] != '\0' ? dir : "/");
    }
    errno = 0;
    if (config_read_file(cfg, path) == CONFIG_TRUE) {
        return 0;
    }
    saved = errno;
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
        snprintf(x->msg, sizeof x->msg, "%s: cannot read the city file: %s", path,
                 saved != 0 ? strerror(saved) : "I/O error");
        return -1;
    }
    snprintf(x->msg, sizeof x->msg, "%s:%d: %s",
             config_error_file(cfg) != NULL ? config_error_file(cfg) : path,
             config_error_line(cfg),
             config_error_text(cfg) != NULL ? config_error_text(cfg) : "syntax error");
    return -1;
}

/* Refuses a top-level setting that is no section: a misspelt section name would
 * otherwise leave the default in force without a word. */
static int
check_sections(parse_ctx *x, const config_t *cfg, const char *file)
{
    x->file = file;
    return check_keys(x, config_root_setting(cfg), "top level", section_names);
}

/* The section from the deployment's file if it has it, else the default's; NULL when
 * neither has it, with an error in x->msg unless the section is optional. */
static const config_setting_t *
pick_section(parse_ctx *x, const config_t *def, const config_t *usr, const char *name,
             bool optional)
{
    const config_setting_t *s = NULL;

    if (usr != NULL) {
        s = config_setting_get_member(config_root_setting(usr), name);
    }
    if (s != NULL) {
        x->file = x->path;
        return s;
    }
    x->file = CITY_BUILTIN;
    s = config_setting_get_member(config_root_setting(def), name);
    if (s == NULL && !optional) {
        fail(x, NULL, "section \"%s\" is missing", name);
    }
    return s;
}

typedef int (*section_parser)(parse_ctx *x, const config_setting_t *s);

static int
parse_all(parse_ctx *x, const config_t *def, const config_t *usr)
{
    /* Dependency order: each section refers only to those before it. */
    static const struct {
        const char    *name;
        section_parser parse;
        bool           optional;   /* absent from both files: the parser's defaults */
    } order[] = {
        { "city", parse_city, false },         { "max_returns", parse_max_returns, false },
        { "places", parse_places, false },     { "sla", parse_sla, false },
        { "categories", parse_categories, false }, { "units", parse_units, false },
        { "routing", parse_routing, false },   { "duplicates", parse_duplicates, true },
        { "calendar", parse_calendar, true },  { "stars", parse_stars, true },
    };
    size_t i;

    x->c->dup_window_ms  = CITY_DUP_WINDOW_MS;
    x->c->dup_distance_m = CITY_DUP_DISTANCE_M;
    calendar_set_default(&x->c->calendar);
    memcpy(x->c->stars, stars_default, sizeof x->c->stars);
    for (i = 0; i < sizeof order / sizeof order[0]; i++) {
        const config_setting_t *s = pick_section(x, def, usr, order[i].name,
                                                 order[i].optional);

        if (s == NULL) {
            if (order[i].optional) {
                continue;
            }
            return -1;
        }
        if (order[i].parse(x, s) != 0) {
            return -1;
        }
    }
    return 0;
}

city *
city_new(const char *path, char *err, size_t errlen)
{
    parse_ctx x;
    config_t  def, usr;
    city     *c   = NULL;
    int       rc  = -1;

    memset(&x, 0, sizeof x);
    x.path = path;
    config_init(&def);
    config_init(&usr);
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->index = calloc(1, sizeof(city_index))) == NULL) {
        fail_oom(&x);
        goto cleanup;
    }
    x.c  = c;
    x.ix = c->index;
    if (read_config(&x, &def, NULL) != 0
        || (path != NULL && read_config(&x, &usr, path) != 0)
        || check_sections(&x, &def, CITY_BUILTIN) != 0
        || (path != NULL && check_sections(&x, &usr, path) != 0)
        || parse_all(&x, &def, path != NULL ? &usr : NULL) != 0) {
        goto cleanup;
    }
    c->source = strdup(path != NULL ? path : CITY_BUILTIN);
    if (c->source == NULL) {
        fail_oom(&x);
        goto cleanup;
    }
    rc = 0;

cleanup:
    config_destroy(&def);
    config_destroy(&usr);
    free(x.place_src);
    free(x.sla_src);
    free(x.cat_src);
    free(x.unit_src);
    if (rc != 0) {
        city_destroy(&c);
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s", x.msg);
        }
    }
    return c;
}

void
city_destroy(city **cp)
{
    city       *c;
    city_index *ix;
    size_t      i;

    if (cp == NULL || *cp == NULL) {
        return;
    }
    c = *cp;
    for (i = 0; i < c->n_places; i++) {
        free(c->places[i].code);
        free(c->places[i].name);
    }
    for (i = 0; i < c->n_sla; i++) {
        free(c->sla[i].code);
    }
    for (i = 0; i < c->n_categories; i++) {
        free(c->categories[i].code);
        free(c->categories[i].name);
    }
    for (i = 0; i < c->n_units; i++) {
        free(c->units[i].code);
        free(c->units[i].name);
        free(c->units[i].categories);
    }
    free(c->places);
    free(c->sla);
    free(c->categories);
    free(c->units);
    free(c->rules);
    free(c->calendar.holidays);
    free(c->calendar.working_weekends);
    free(c->name);
    free(c->code_prefix);
    free(c->source);
    ix = c->index;
    if (ix != NULL) {
        free(ix->places);
        free(ix->sla);
        free(ix->categories);
        free(ix->units);
        free(ix->place_end);
        free(ix);
    }
    free(c);
    *cp = NULL;
}

/* ---- location check -------------------------------------------------------------- */

/* The code quoted for a message, or a neutral phrase when it is not a well-formed
 * code: what a client sent is echoed only when it cannot be invalid UTF-8. */
static const char *
show_code(gl_str code, char *buf, size_t cap)
{
    uint32_t i;

    if (code.n == 0 || code.n > CITY_CODE_MAX) {
        return "the given code";
    }
    for (i = 0; i < code.n; i++) {
        char ch = code.p[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-')) {
            return "the given code";
        }
    }
    snprintf(buf, cap, "\"%.*s\"", (int)code.n, code.p);
    return buf;
}

/* Finds code as a place of level lvl under parent, or sets err for field. */
static int
location_find(const city *c, gl_str code, place_level lvl, int parent, const char *field,
              gl_error *err, int *out)
{
    char shown[CITY_CODE_MAX + 3];
    int  p = city_place_find(c, code);

    if (p < 0 || c->places[p].level != lvl) {
        return gl_error_set(err, GL_EINVALID, field, "%s is not a %s of this city",
                            show_code(code, shown, sizeof shown), place_level_name[lvl]);
    }
    if (parent >= 0 && c->places[p].parent != parent) {
        return gl_error_set(err, GL_EINVALID, field, "%s %s is in %s \"%s\", not in \"%s\"",
                            place_level_name[lvl], show_code(code, shown, sizeof shown),
                            place_level_name[lvl - 1],
                            c->places[c->places[p].parent].code, c->places[parent].code);
    }
    *out = p;
    return 0;
}

int
city_location_check(const city *c, const case_location *loc, gl_error *err)
{
    int d = -1, s = -1, m = -1, g = -1;

    if (loc->district.n == 0) {
        return gl_error_set(err, GL_EINVALID, "location.district", "is required");
    }
    if (location_find(c, loc->district, PLACE_DISTRICT, -1, "location.district", err, &d)
        != 0) {
        return GL_EINVALID;
    }
    if (loc->street.n > 0
        && location_find(c, loc->street, PLACE_STREET, d, "location.street", err, &s)
               != 0) {
        return GL_EINVALID;
    }
    if (loc->community.n > 0) {
        if (s < 0) {
            return gl_error_set(err, GL_EINVALID, "location.street",
                                "is required when location.community is given");
        }
        if (location_find(c, loc->community, PLACE_COMMUNITY, s, "location.community",
                          err, &m) != 0) {
            return GL_EINVALID;
        }
    }
    if (loc->grid.n > 0) {
        if (m < 0) {
            return gl_error_set(err, GL_EINVALID, "location.community",
                                "is required when location.grid is given");
        }
        if (location_find(c, loc->grid, PLACE_GRID, m, "location.grid", err, &g) != 0) {
            return GL_EINVALID;
        }
    }
    return 0;
}

/* ---- catalog.get ----------------------------------------------------------------- */

static int
pack_place(const city *c, msgpack_packer *pk, int p)
{
    const city_index *ix  = c->index;
    const city_place *pl  = &c->places[p];
    const char       *key = place_child_key[pl->level];
    uint32_t          n   = 0;
    int               j;

    if (msgpack_pack_map(pk, key != NULL ? 3 : 2) != 0
        || mp_pack_cstr(pk, "code") != 0 || mp_pack_cstr(pk, pl->code) != 0
        || mp_pack_cstr(pk, "name") != 0 || mp_pack_cstr(pk, pl->name) != 0) {
        return -1;
    }
    if (key == NULL) {
        return 0;
    }
    /* Children are the subtrees that follow p, one after the other, up to p's end. */
    for (j = p + 1; j < ix->place_end[p]; j = ix->place_end[j]) {
        n++;
    }
    if (mp_pack_cstr(pk, key) != 0 || msgpack_pack_array(pk, n) != 0) {
        return -1;
    }
    for (j = p + 1; j < ix->place_end[p]; j = ix->place_end[j]) {
        if (pack_place(c, pk, j) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
pack_places(const city *c, msgpack_packer *pk)
{
    const city_index *ix = c->index;
    uint32_t          n  = 0;
    int               j;

    for (j = 0; (size_t)j < c->n_places; j = ix->place_end[j]) {
        n++;
    }
    if (mp_pack_cstr(pk, "places") != 0 || msgpack_pack_array(pk, n) != 0) {
        return -1;
    }
    for (j = 0; (size_t)j < c->n_places; j = ix->place_end[j]) {
        if (pack_place(c, pk, j) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
pack_categories(const city *c, msgpack_packer *pk)
{
    size_t i;
    int    u;

    if (mp_pack_cstr(pk, "categories") != 0
        || msgpack_pack_array(pk, (uint32_t)c->n_categories) != 0) {
        return -1;
    }
    for (i = 0; i < c->n_categories; i++) {
        const city_category *k = &c->categories[i];

        if (msgpack_pack_map(pk, 3) != 0
            || mp_pack_cstr(pk, "code") != 0 || mp_pack_cstr(pk, k->code) != 0
            || mp_pack_cstr(pk, "name") != 0 || mp_pack_cstr(pk, k->name) != 0
            || mp_pack_cstr(pk, "sla") != 0 || msgpack_pack_map(pk, URGENCY_COUNT) != 0) {
            return -1;
        }
        for (u = 0; u < URGENCY_COUNT; u++) {
            if (mp_pack_cstr(pk, case_urgency_name((case_urgency)u)) != 0
                || mp_pack_cstr(pk, c->sla[k->sla[u]].code) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int
pack_units(const city *c, msgpack_packer *pk)
{
    size_t i, j;

    if (mp_pack_cstr(pk, "units") != 0
        || msgpack_pack_array(pk, (uint32_t)c->n_units) != 0) {
        return -1;
    }
    for (i = 0; i < c->n_units; i++) {
        const city_unit *u = &c->units[i];

        if (msgpack_pack_map(pk, 5) != 0
            || mp_pack_cstr(pk, "code") != 0 || mp_pack_cstr(pk, u->code) != 0
            || mp_pack_cstr(pk, "name") != 0 || mp_pack_cstr(pk, u->name) != 0
            || mp_pack_cstr(pk, "kind") != 0 || mp_pack_cstr(pk, unit_kind_name(u->kind)) != 0
            || mp_pack_cstr(pk, "place") != 0
            || (u->place >= 0 ? mp_pack_cstr(pk, c->places[u->place].code)
                              : msgpack_pack_nil(pk)) != 0
            || mp_pack_cstr(pk, "categories") != 0
            || msgpack_pack_array(pk, (uint32_t)u->n_categories) != 0) {
            return -1;
        }
        for (j = 0; j < u->n_categories; j++) {
            if (mp_pack_cstr(pk, c->categories[u->categories[j]].code) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int
pack_sla(const city *c, msgpack_packer *pk)
{
    size_t i;

    if (mp_pack_cstr(pk, "sla") != 0 || msgpack_pack_array(pk, (uint32_t)c->n_sla) != 0) {
        return -1;
    }
    for (i = 0; i < c->n_sla; i++) {
        const city_sla *k = &c->sla[i];

        if (msgpack_pack_map(pk, 5) != 0
            || mp_pack_cstr(pk, "code") != 0 || mp_pack_cstr(pk, k->code) != 0
            || mp_pack_cstr(pk, "accept_within_ms") != 0
            || msgpack_pack_int64(pk, k->accept_ms) != 0
            || mp_pack_cstr(pk, "resolve_within_ms") != 0
            || msgpack_pack_int64(pk, k->resolve_ms) != 0
            || mp_pack_cstr(pk, "clock") != 0
            || mp_pack_cstr(pk, k->working_time ? "working" : "wall") != 0
            || mp_pack_cstr(pk, "warn_ratio") != 0
            || msgpack_pack_double(pk, k->warn_ratio) != 0) {
            return -1;
        }
    }
    return 0;
}

int
city_pack_catalog(const city *c, msgpack_packer *pk)
{
    if (pack_categories(c, pk) != 0 || pack_units(c, pk) != 0
        || pack_places(c, pk) != 0 || pack_sla(c, pk) != 0) {
        return -1;
    }
    return 0;
}
