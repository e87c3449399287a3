/*
 * mp_print: JSON and tables from MessagePack. See mp_print.h.
 *
 * Trade-offs: display widths come from a small table of East Asian wide ranges rather
 * than wcwidth(), which depends on the process locale and says -1 for CJK in the C
 * locale that tools usually run in; "roughly right everywhere" beats "exact only after
 * setlocale". Tables are built in memory and measured before anything is written, since
 * a column's width depends on its widest cell.
 */
#include "mp_print.h"

#include "mp_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ELLIPSIS     "\xe2\x80\xa6"   /* U+2026, one column */
#define ELLIPSIS_LEN 3
#define REPLACEMENT  "\xef\xbf\xbd"   /* U+FFFD, shown for bytes that are not UTF-8 */

/* The narrowest a cut column may get; below this a title says nothing. */
#define MIN_FLEX_WIDTH 10

/* ---- UTF-8 and display width ---- */

/* Decodes one character at p (n > 0 bytes left). Returns the bytes it takes (1 for a
 * byte that does not start a well-formed sequence, with *cp = U+FFFD). Overlongs,
 * surrogates and values above U+10FFFF are not well-formed. */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    uint32_t v, min;
    size_t   len;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2, v = p[0] & 0x1fu, min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3, v = p[0] & 0x0fu, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4, v = p[0] & 0x07u, min = 0x10000;
    } else {
        goto bad;
    }
    if (n < len) {
        goto bad;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            goto bad;
        }
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        goto bad;
    }
    *cp = v;
    return len;
bad:
    *cp = 0xfffd;
    return 1;
}

typedef struct {
    uint32_t lo, hi;
} cp_range;

static const cp_range zero_width[] = {
    { 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd }, { 0x0610, 0x061a },
    { 0x064b, 0x065f }, { 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff }, { 0x200b, 0x200f },
    { 0x202a, 0x202e }, { 0x2060, 0x2064 }, { 0x20d0, 0x20ff }, { 0xfe00, 0xfe0f },
    { 0xfe20, 0xfe2f }, { 0xfeff, 0xfeff }, { 0xe0100, 0xe01ef },
};

static const cp_range wide[] = {
    { 0x1100, 0x115f },   { 0x231a, 0x231b },   { 0x2329, 0x232a },   { 0x23e9, 0x23ec },
    { 0x25fd, 0x25fe },   { 0x2614, 0x2615 },   { 0x2e80, 0x303e },   { 0x3041, 0x33ff },
    { 0x3400, 0x4dbf },   { 0x4e00, 0x9fff },   { 0xa000, 0xa4cf },   { 0xa960, 0xa97f },
    { 0xac00, 0xd7a3 },   { 0xf900, 0xfaff },   { 0xfe10, 0xfe19 },   { 0xfe30, 0xfe6f },
    { 0xff00, 0xff60 },   { 0xffe0, 0xffe6 },   { 0x1f300, 0x1f64f }, { 0x1f680, 0x1f6ff },
    { 0x1f900, 0x1f9ff }, { 0x20000, 0x2fffd }, { 0x30000, 0x3fffd },
};

static bool in_ranges(uint32_t cp, const cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cp >= r[i].lo && cp <= r[i].hi) {
            return true;
        }
    }
    return false;
}

/* Columns one (already sanitised, so printable) character takes. */
static size_t cp_width(uint32_t cp)
{
    if (cp < 0x300) {
        return 1;
    }
    if (in_ranges(cp, zero_width, sizeof(zero_width) / sizeof(zero_width[0]))) {
        return 0;
    }
    if (in_ranges(cp, wide, sizeof(wide) / sizeof(wide[0]))) {
        return 2;
    }
    return 1;
}

/* Characters a terminal would act on rather than show. */
static bool cp_is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

size_t mp_print_width(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t               w = 0;

    for (size_t i = 0; i < n;) {
        uint32_t cp;

        i += utf8_next(s + i, n - i, &cp);
        w += cp_is_control(cp) ? 1 : cp_width(cp);
    }
    return w;
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;

    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t   len = utf8_next(s + i, n - i, &cp);

        switch (cp) {
        case '"':  fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case 0x2028:
        case 0x2029:
            /* Valid JSON, but not valid inside a JavaScript string literal. */
            fprintf(f, "\\u%04" PRIx32, cp);
            break;
        default:
            if (cp_is_control(cp)) {
                /* C1 controls too (U+0080-U+009F): U+009B is CSI to a terminal. */
                fprintf(f, "\\u%04" PRIx32, cp);
            } else if (cp == 0xfffd && len == 1) {
                fputs(REPLACEMENT, f);
            } else {
                fwrite(s + i, 1, len, f);
            }
        }
        i += len;
    }
    fputc('"', f);
}

static void base64_write(FILE *f, const unsigned char *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t   left = n - i;

        if (left > 1) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (left > 2) {
            v |= p[i + 2];
        }
        fputc(tab[(v >> 18) & 63], f);
        fputc(tab[(v >> 12) & 63], f);
        fputc(left > 1 ? tab[(v >> 6) & 63] : '=', f);
        fputc(left > 2 ? tab[v & 63] : '=', f);
    }
}

/* The shortest decimal that reads back as the same value (as a float when is_float32),
 * marked as a float with ".0" when it would otherwise look like an integer. */
static void json_double(FILE *f, double v, bool is_float32)
{
    char buf[64];

    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        double back;

        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        back = strtod(buf, NULL);
        if (is_float32 ? (float)back == (float)v : back == v) {
            break;
        }
    }
    fputs(buf, f);
    if (strpbrk(buf, ".eE") == NULL) {
        fputs(".0", f);
    }
}

static void json_newline(FILE *f, unsigned flags, int depth)
{
    if ((flags & MP_PRINT_PRETTY) != 0) {
        fputc('\n', f);
        for (int i = 0; i < depth; i++) {
            fputs("  ", f);
        }
    }
}

static void json_value(FILE *f, const msgpack_object *o, unsigned flags, int depth);

/* JSON object keys must be strings: anything else is written as the string of its
 * compact JSON. */
static void json_key(FILE *f, const msgpack_object *k)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *m;

    if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN) {
        json_value(f, k, 0, 0);
        return;
    }
    m = open_memstream(&buf, &len);
    if (m == NULL) {
        fputs("\"?\"", f);
        return;
    }
    json_value(m, k, 0, 0);
    if (fclose(m) != 0 || buf == NULL) {
        fputs("\"?\"", f);
    } else {
        json_str(f, buf, len);
    }
    free(buf);
}

static void json_value(FILE *f, const msgpack_object *o, unsigned flags, int depth)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
        json_double(f, o->via.f64, true);
        break;
    case MSGPACK_OBJECT_FLOAT64:
        json_double(f, o->via.f64, false);
        break;
    case MSGPACK_OBJECT_STR:
        json_str(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fputc('"', f);
        base64_write(f, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_EXT:
        fprintf(f, (flags & MP_PRINT_PRETTY) != 0 ? "{\"ext\": %d, \"base64\": \""
                                                  : "{\"ext\":%d,\"base64\":\"",
                (int)o->via.ext.type);
        base64_write(f, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        fputs("\"}", f);
        break;
    case MSGPACK_OBJECT_ARRAY:
        if (o->via.array.size == 0) {
            fputs("[]", f);
            break;
        }
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            json_newline(f, flags, depth + 1);
            json_value(f, &o->via.array.ptr[i], flags, depth + 1);
        }
        json_newline(f, flags, depth);
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        if (o->via.map.size == 0) {
            fputs("{}", f);
            break;
        }
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            json_newline(f, flags, depth + 1);
            json_key(f, &o->via.map.ptr[i].key);
            fputs((flags & MP_PRINT_PRETTY) != 0 ? ": " : ":", f);
            json_value(f, &o->via.map.ptr[i].val, flags, depth + 1);
        }
        json_newline(f, flags, depth);
        fputc('}', f);
        break;
    default:
        fputs("null", f);
        break;
    }
}

int mp_print_json(FILE *f, const msgpack_object *o, unsigned flags)
{
    json_value(f, o, flags, 0);
    return ferror(f) ? -1 : 0;
}

/* ---- cells and tables ---- */

/* Text cleaned for a terminal: NUL-terminated, with its width in columns. */
typedef struct {
    char  *s;
    size_t len;
    size_t w;     /* widest line when the text keeps its newlines */
} cell;

/* Cleans p[0..n) into out: control characters become spaces (newlines are kept when
 * keep_newlines; carriage returns are then dropped), bytes that are not UTF-8 become
 * U+FFFD. Room is left for an ellipsis. Returns 0, or -1 when out of memory. */
static int cell_make(const char *p, size_t n, bool keep_newlines, cell *out)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t               line_w = 0;
    char                *d;

    out->s = malloc(n * 3 + ELLIPSIS_LEN + 1);
    out->len = 0;
    out->w = 0;
    if (out->s == NULL) {
        return -1;
    }
    d = out->s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t   len = utf8_next(s + i, n - i, &cp);

        if (keep_newlines && cp == '\n') {
            *d++ = '\n';
            line_w = 0;
        } else if (keep_newlines && cp == '\r') {
            /* dropped: "\r\n" is one line break */
        } else if (cp_is_control(cp)) {
            *d++ = ' ';
            line_w++;
        } else if (cp == 0xfffd && len == 1) {
            memcpy(d, REPLACEMENT, 3);
            d += 3;
            line_w++;
        } else {
            memcpy(d, s + i, len);
            d += len;
            line_w += cp_width(cp);
        }
        if (line_w > out->w) {
            out->w = line_w;
        }
        i += len;
    }
    *d = '\0';
    out->len = (size_t)(d - out->s);
    return 0;
}

/* Cuts a one-line cell between characters so that it takes at most maxw columns,
 * ending in an ellipsis when anything was cut. */
static void cell_fit(cell *c, size_t maxw)
{
    const unsigned char *s = (const unsigned char *)c->s;
    size_t               w = 0;
    size_t               i = 0;

    if (c->w <= maxw) {
        return;
    }
    if (maxw == 0) {
        c->s[0] = '\0';
        c->len = 0;
        c->w = 0;
        return;
    }
    while (i < c->len) {
        uint32_t cp;
        size_t   len = utf8_next(s + i, c->len - i, &cp);
        size_t   cw = cp_width(cp);

        if (w + cw > maxw - 1) {
            break;
        }
        w += cw;
        i += len;
    }
    memcpy(c->s + i, ELLIPSIS, ELLIPSIS_LEN);
    c->s[i + ELLIPSIS_LEN] = '\0';
    c->len = i + ELLIPSIS_LEN;
    c->w = w + 1;
}

typedef struct {
    size_t             ncols;
    const char *const *head;    /* column titles, or NULL for no header line */
    size_t             flex;    /* the column cut to fit the width; ncols for none */
    size_t             indent;  /* spaces before each line */
    cell              *cells;
    size_t             ncells, cap;
    bool               failed;  /* out of memory: the table prints nothing */
} table;

static void table_init(table *t, size_t ncols, const char *const *head, size_t flex,
                       size_t indent)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->head = head;
    t->flex = flex;
    t->indent = indent;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->ncells; i++) {
        free(t->cells[i].s);
    }
    free(t->cells);
    t->cells = NULL;
    t->ncells = t->cap = 0;
}

/* The next free cell, growing the table; NULL (and the table marked failed) when out of
 * memory. The caller fills it and then counts it with t->ncells++. */
static cell *table_slot(table *t)
{
    if (t->failed) {
        return NULL;
    }
    if (t->ncells == t->cap) {
        size_t cap = t->cap == 0 ? 64 : t->cap * 2;
        cell  *cells = realloc(t->cells, cap * sizeof(*cells));

        if (cells == NULL) {
            t->failed = true;
            return NULL;
        }
        t->cells = cells;
        t->cap = cap;
    }
    return &t->cells[t->ncells];
}

static void table_push(table *t, const char *p, size_t n)
{
    cell *c = table_slot(t);

    if (c == NULL) {
        return;
    }
    if (cell_make(p, n, false, c) != 0) {
        t->failed = true;
        return;
    }
    t->ncells++;
}

static void table_push_cstr(table *t, const char *s)
{
    table_push(t, s, strlen(s));
}

/* The compact JSON of o, for values a table has no better way to show. */
static void table_push_json(table *t, const msgpack_object *o)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *m = open_memstream(&buf, &len);

    if (m == NULL) {
        t->failed = true;
        return;
    }
    json_value(m, o, 0, 0);
    if (fclose(m) != 0 || buf == NULL) {
        t->failed = true;
    } else {
        table_push(t, buf, len);
    }
    free(buf);
}

/* A scalar as a person reads it: nil, a missing value and "" as "-". */
static void table_push_obj(table *t, const msgpack_object *o)
{
    char buf[64];

    if (o == NULL || o->type == MSGPACK_OBJECT_NIL
        || (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0)) {
        table_push_cstr(t, "-");
        return;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        table_push(t, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        table_push_cstr(t, o->via.boolean ? "yes" : "no");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, sizeof(buf), "%" PRIu64, o->via.u64);
        table_push_cstr(t, buf);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, sizeof(buf), "%" PRId64, o->via.i64);
        table_push_cstr(t, buf);
        break;
    default:
        /* Floats too: the shortest form that reads back the same, not "%g", which
         * keeps 6 digits and moved a longitude of 121.473712 to 121.474. */
        table_push_json(t, o);
        break;
    }
}

static bool obj_int(const msgpack_object *o, int64_t *v)
{
    if (o == NULL) {
        return false;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

/* An integer time as UTC; anything else as it is. */
static void table_push_time(table *t, const msgpack_object *o, bool with_seconds)
{
    char    buf[64];
    int64_t ms;

    if (obj_int(o, &ms) && mp_print_time(buf, sizeof(buf), ms, with_seconds) > 0) {
        table_push_cstr(t, buf);
    } else {
        table_push_obj(t, o);
    }
}

/* Prints the table and frees its cells. The flex column is cut so that lines fit in
 * width columns, though never below MIN_FLEX_WIDTH. */
static int table_print(FILE *f, table *t, int width)
{
    size_t  nrows = t->ncols > 0 ? t->ncells / t->ncols : 0;
    size_t *w = NULL;
    int     rc = -1;

    if (t->failed) {
        goto done;
    }
    w = calloc(t->ncols, sizeof(*w));
    if (w == NULL) {
        goto done;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        if (t->head != NULL) {
            w[c] = mp_print_width(t->head[c], strlen(t->head[c]));
        }
        for (size_t r = 0; r < nrows; r++) {
            size_t cw = t->cells[r * t->ncols + c].w;

            w[c] = cw > w[c] ? cw : w[c];
        }
    }
    if (width > 0 && t->flex < t->ncols) {
        size_t total = t->indent + 2 * (t->ncols - 1);
        size_t others;

        for (size_t c = 0; c < t->ncols; c++) {
            total += w[c];
        }
        others = total - w[t->flex];
        if (total > (size_t)width) {
            size_t avail = (size_t)width > others + MIN_FLEX_WIDTH ? (size_t)width - others
                                                                   : MIN_FLEX_WIDTH;

            if (avail < w[t->flex]) {
                w[t->flex] = avail;
                for (size_t r = 0; r < nrows; r++) {
                    cell_fit(&t->cells[r * t->ncols + t->flex], avail);
                }
            }
        }
    }
    for (size_t r = 0; r <= nrows; r++) {
        bool header = r == 0;

        if (header && t->head == NULL) {
            continue;
        }
        fprintf(f, "%*s", (int)t->indent, "");
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = header ? t->head[c] : t->cells[(r - 1) * t->ncols + c].s;
            size_t      sw = header ? mp_print_width(s, strlen(s))
                                    : t->cells[(r - 1) * t->ncols + c].w;

            fputs(s, f);
            if (c + 1 < t->ncols) {
                fprintf(f, "%*s", (int)(w[c] > sw ? w[c] - sw + 2 : 2), "");
            }
        }
        fputc('\n', f);
    }
    rc = ferror(f) ? -1 : 0;
done:
    free(w);
    table_free(t);
    return rc;
}

/* ---- times and durations ---- */

size_t mp_print_time(char *out, size_t cap, int64_t ms, bool with_seconds)
{
    /* Floor, so that times before the epoch do not round towards it. */
    time_t    secs = (time_t)(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
    struct tm tm;

    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    if (gmtime_r(&secs, &tm) == NULL) {
        return 0;
    }
    return strftime(out, cap, with_seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
}

/* A duration in the largest unit that divides it: "3d", "4h", "30m", "90s", "250ms". */
static void format_duration(char *out, size_t cap, int64_t ms)
{
    static const struct {
        int64_t     unit;
        const char *name;
    } units[] = {
        { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
    };

    if (ms == 0) {
        snprintf(out, cap, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].unit == 0) {
            snprintf(out, cap, "%" PRId64 "%s", ms / units[i].unit, units[i].name);
            return;
        }
    }
    snprintf(out, cap, "%" PRId64 "ms", ms);
}

/* ---- cases ---- */

static const msgpack_object *map_get2(const msgpack_object *o, const char *a, const char *b)
{
    const msgpack_object *inner = mp_map_get(o, a);

    return inner != NULL ? mp_map_get(inner, b) : NULL;
}

static bool obj_is_empty_str(const msgpack_object *o)
{
    return o == NULL || o->type == MSGPACK_OBJECT_NIL
           || (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0);
}

int mp_print_case_table(FILE *f, const msgpack_object *const *cases, size_t n, int width)
{
    static const char *const head[] = {
        "ID", "CODE", "STATE", "CATEGORY", "URGENCY", "DISTRICT", "UNIT", "CREATED (UTC)",
        "TITLE",
    };
    table t;

    if (n == 0) {
        return 0;
    }
    table_init(&t, 9, head, 8, 0);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *c = cases[i];
        const msgpack_object *title;

        if (c == NULL || c->type != MSGPACK_OBJECT_MAP) {
            continue;
        }
        title = mp_map_get(c, "title");
        if (obj_is_empty_str(title)) {
            title = mp_map_get(c, "description");
        }
        table_push_obj(&t, mp_map_get(c, "id"));
        table_push_obj(&t, mp_map_get(c, "code"));
        table_push_obj(&t, mp_map_get(c, "state"));
        table_push_obj(&t, mp_map_get(c, "category"));
        table_push_obj(&t, mp_map_get(c, "urgency"));
        table_push_obj(&t, map_get2(c, "location", "district"));
        table_push_obj(&t, mp_map_get(c, "unit"));
        table_push_time(&t, mp_map_get(c, "created_at"), false);
        table_push_obj(&t, title);
    }
    return table_print(f, &t, width);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* One "key: value" line's value, as text (newlines kept). Returns 0 or -1. */
static int case_value(const char *key, size_t keylen, const msgpack_object *v, cell *out)
{
    char    buf[96];
    int64_t ms;

    if ((ends_with(key, keylen, "_at") || ends_with(key, keylen, "_by")) && obj_int(v, &ms)
        && mp_print_time(buf, sizeof(buf) - 4, ms, true) > 0) {
        strcat(buf, " UTC");
        return cell_make(buf, strlen(buf), false, out);
    }
    if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0) {
        return cell_make(v->via.str.ptr, v->via.str.size, true, out);
    }
    if (v->type == MSGPACK_OBJECT_MAP && v->via.map.size == 0) {
        return cell_make("-", 1, false, out);
    }
    if (v->type == MSGPACK_OBJECT_ARRAY) {
        table  t;
        char  *joined = NULL;
        size_t len = 0;
        FILE  *m;
        int    rc = -1;

        if (v->via.array.size == 0) {
            return cell_make("-", 1, false, out);
        }
        /* Scalars are joined with ", "; a list holding containers is shown as JSON. */
        table_init(&t, 1, NULL, 1, 0);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            table_push_obj(&t, &v->via.array.ptr[i]);
        }
        m = open_memstream(&joined, &len);
        if (m != NULL && !t.failed) {
            for (size_t i = 0; i < t.ncells; i++) {
                fprintf(m, "%s%s", i > 0 ? ", " : "", t.cells[i].s);
            }
        }
        if (m != NULL && fclose(m) == 0 && joined != NULL && !t.failed) {
            rc = cell_make(joined, len, false, out);
        }
        free(joined);
        table_free(&t);
        return rc;
    }
    {
        table t;
        int   rc = -1;

        table_init(&t, 1, NULL, 1, 0);
        table_push_obj(&t, v);
        if (!t.failed && t.ncells == 1) {
            *out = t.cells[0];
            t.ncells = 0;
            rc = 0;
        }
        table_free(&t);
        return rc;
    }
}

/* Collects the map's entries as (key, value) cells, flattening nested maps. */
static void case_collect(table *t, const char *prefix, const msgpack_object *map, int depth)
{
    for (uint32_t i = 0; i < map->via.map.size && !t->failed; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;
        char                  key[256];
        size_t                keylen;
        cell                 *slot;

        if (k->type == MSGPACK_OBJECT_STR) {
            snprintf(key, sizeof(key), "%s%s%.*s", prefix, prefix[0] != '\0' ? "." : "",
                     (int)(k->via.str.size > 200 ? 200 : k->via.str.size), k->via.str.ptr);
        } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(key, sizeof(key), "%s%s%" PRIu64, prefix, prefix[0] != '\0' ? "." : "",
                     k->via.u64);
        } else {
            snprintf(key, sizeof(key), "%s%s?", prefix, prefix[0] != '\0' ? "." : "");
        }
        keylen = strlen(key);
        if (v->type == MSGPACK_OBJECT_MAP && v->via.map.size > 0 && depth < 4) {
            case_collect(t, key, v, depth + 1);
            continue;
        }
        table_push(t, key, keylen);
        /* The value keeps its newlines, so it is made here rather than by table_push. */
        slot = table_slot(t);
        if (slot == NULL) {
            return;
        }
        if (case_value(key, keylen, v, slot) != 0) {
            t->failed = true;
            return;
        }
        t->ncells++;
    }
}

int mp_print_case(FILE *f, const msgpack_object *kase)
{
    table  t;
    size_t kw = 0;
    int    rc = -1;

    if (kase == NULL || kase->type != MSGPACK_OBJECT_MAP) {
        return 0;
    }
    table_init(&t, 2, NULL, 2, 0);
    case_collect(&t, "", kase, 0);
    if (t.failed) {
        goto done;
    }
    for (size_t i = 0; i < t.ncells; i += 2) {
        kw = t.cells[i].w > kw ? t.cells[i].w : kw;
    }
    for (size_t i = 0; i + 1 < t.ncells; i += 2) {
        const cell *k = &t.cells[i];
        const char *v = t.cells[i + 1].s;

        fprintf(f, "%s:%*s", k->s, (int)(kw - k->w + 1), "");
        for (const char *nl; (nl = strchr(v, '\n')) != NULL; v = nl + 1) {
            fprintf(f, "%.*s\n%*s", (int)(nl - v), v, (int)(kw + 2), "");
        }
        fprintf(f, "%s\n", v);
    }
    rc = ferror(f) ? -1 : 0;
done:
    table_free(&t);
    return rc;
}

int mp_print_history(FILE *f, const msgpack_object *events, int width)
{
    static const char *const head[] = {
        "SEQ", "AT (UTC)", "TYPE", "STATE", "UNIT", "ACTOR", "NOTE",
    };
    table t;

    if (events == NULL || events->type != MSGPACK_OBJECT_ARRAY || events->via.array.size == 0) {
        return 0;
    }
    table_init(&t, 7, head, 6, 0);
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *e = &events->via.array.ptr[i];

        if (e->type != MSGPACK_OBJECT_MAP) {
            continue;
        }
        table_push_obj(&t, mp_map_get(e, "seq"));
        table_push_time(&t, mp_map_get(e, "at"), true);
        table_push_obj(&t, mp_map_get(e, "type"));
        table_push_obj(&t, mp_map_get(e, "state"));
        table_push_obj(&t, mp_map_get(e, "unit"));
        table_push_obj(&t, mp_map_get(e, "actor"));
        table_push_obj(&t, mp_map_get(e, "note"));
    }
    return table_print(f, &t, width);
}

/* ---- catalogue ---- */

static uint32_t array_size(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0;
}

static int catalog_categories(FILE *f, const msgpack_object *list, int width)
{
    static const char *const head[] = { "CODE", "NAME", "EMERGENCY", "URGENT", "NORMAL" };
    table t;

    fprintf(f, "Categories (%" PRIu32 ")\n", array_size(list));
    table_init(&t, 5, head, 1, 2);
    for (uint32_t i = 0; i < array_size(list); i++) {
        const msgpack_object *c = &list->via.array.ptr[i];

        table_push_obj(&t, mp_map_get(c, "code"));
        table_push_obj(&t, mp_map_get(c, "name"));
        table_push_obj(&t, map_get2(c, "sla", "emergency"));
        table_push_obj(&t, map_get2(c, "sla", "urgent"));
        table_push_obj(&t, map_get2(c, "sla", "normal"));
    }
    return table_print(f, &t, width);
}

static void push_code_list(table *t, const msgpack_object *list, const char *if_empty)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *m;

    if (array_size(list) == 0) {
        table_push_cstr(t, if_empty);
        return;
    }
    m = open_memstream(&buf, &len);
    if (m == NULL) {
        t->failed = true;
        return;
    }
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];

        if (i > 0) {
            fputc(',', m);
        }
        if (o->type == MSGPACK_OBJECT_STR) {
            fwrite(o->via.str.ptr, 1, o->via.str.size, m);
        } else {
            json_value(m, o, 0, 0);
        }
    }
    if (fclose(m) != 0 || buf == NULL) {
        t->failed = true;
    } else {
        table_push(t, buf, len);
    }
    free(buf);
}

static int catalog_units(FILE *f, const msgpack_object *list, int width)
{
    static const char *const head[] = { "CODE", "NAME", "KIND", "PLACE", "CATEGORIES" };
    table t;

    fprintf(f, "Units (%" PRIu32 ")\n", array_size(list));
    table_init(&t, 5, head, 4, 2);
    for (uint32_t i = 0; i < array_size(list); i++) {
        const msgpack_object *u = &list->via.array.ptr[i];
        const msgpack_object *place = mp_map_get(u, "place");

        table_push_obj(&t, mp_map_get(u, "code"));
        table_push_obj(&t, mp_map_get(u, "name"));
        table_push_obj(&t, mp_map_get(u, "kind"));
        if (obj_is_empty_str(place)) {
            table_push_cstr(&t, "city-wide");
        } else {
            table_push_obj(&t, place);
        }
        push_code_list(&t, mp_map_get(u, "categories"), "all");
    }
    return table_print(f, &t, width);
}

/* The children of a place at each level of the tree, by the key that holds them. */
static const char *const place_children[] = { "streets", "communities", "grids", NULL };

static void catalog_place(table *t, const msgpack_object *p, size_t level)
{
    const msgpack_object *code = mp_map_get(p, "code");
    const msgpack_object *kids;
    char                  buf[256];

    if (p->type != MSGPACK_OBJECT_MAP) {
        return;
    }
    if (code != NULL && code->type == MSGPACK_OBJECT_STR) {
        int n = code->via.str.size > 200 ? 200 : (int)code->via.str.size;

        snprintf(buf, sizeof(buf), "%*s%.*s", (int)(2 * level), "", n, code->via.str.ptr);
    } else {
        snprintf(buf, sizeof(buf), "%*s-", (int)(2 * level), "");
    }
    table_push_cstr(t, buf);
    table_push_obj(t, mp_map_get(p, "name"));
    if (level >= 3 || place_children[level] == NULL) {
        return;
    }
    kids = mp_map_get(p, place_children[level]);
    for (uint32_t i = 0; i < array_size(kids); i++) {
        catalog_place(t, &kids->via.array.ptr[i], level + 1);
    }
}

static int catalog_places(FILE *f, const msgpack_object *list, int width)
{
    static const char *const head[] = { "CODE", "NAME" };
    table t;

    fprintf(f, "Places (%" PRIu32 " districts)\n", array_size(list));
    table_init(&t, 2, head, 1, 2);
    for (uint32_t i = 0; i < array_size(list); i++) {
        catalog_place(&t, &list->via.array.ptr[i], 0);
    }
    return table_print(f, &t, width);
}

static void push_duration(table *t, const msgpack_object *o)
{
    char    buf[64];
    int64_t ms;

    if (obj_int(o, &ms)) {
        format_duration(buf, sizeof(buf), ms);
        table_push_cstr(t, buf);
    } else {
        table_push_obj(t, o);
    }
}

static int catalog_sla(FILE *f, const msgpack_object *list, int width)
{
    static const char *const head[] = { "CODE", "ACCEPT", "RESOLVE", "CLOCK", "WARN" };
    table t;

    fprintf(f, "SLA classes (%" PRIu32 ")\n", array_size(list));
    table_init(&t, 5, head, 5, 2);
    for (uint32_t i = 0; i < array_size(list); i++) {
        const msgpack_object *s = &list->via.array.ptr[i];
        const msgpack_object *warn = mp_map_get(s, "warn_ratio");

        table_push_obj(&t, mp_map_get(s, "code"));
        push_duration(&t, mp_map_get(s, "accept_within_ms"));
        push_duration(&t, mp_map_get(s, "resolve_within_ms"));
        table_push_obj(&t, mp_map_get(s, "clock"));
        if (warn != NULL
            && (warn->type == MSGPACK_OBJECT_FLOAT64 || warn->type == MSGPACK_OBJECT_FLOAT32)) {
            char buf[32];

            snprintf(buf, sizeof(buf), "%.0f%%", warn->via.f64 * 100.0);
            table_push_cstr(&t, buf);
        } else {
            table_push_obj(&t, warn);
        }
    }
    return table_print(f, &t, width);
}

int mp_print_catalog(FILE *f, const msgpack_object *catalog, int width)
{
    if (catalog_categories(f, mp_map_get(catalog, "categories"), width) != 0) {
        return -1;
    }
    fputc('\n', f);
    if (catalog_units(f, mp_map_get(catalog, "units"), width) != 0) {
        return -1;
    }
    fputc('\n', f);
    if (catalog_places(f, mp_map_get(catalog, "places"), width) != 0) {
        return -1;
    }
    fputc('\n', f);
    if (catalog_sla(f, mp_map_get(catalog, "sla"), width) != 0) {
        return -1;
    }
    return ferror(f) ? -1 : 0;
}
