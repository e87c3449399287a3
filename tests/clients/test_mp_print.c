/*
 * mp_print: what gridline shows to scripts (JSON) and to people (tables, key: value lines,
 * the catalogue), pinned against the promises of mp_print.h. Output is captured with
 * open_memstream; MessagePack inputs are packed here and unpacked, as a reply would be.
 *
 * Column checks measure display cells with a width function of this file's own (ASCII
 * and U+2026 one cell, CJK ideographs two), so that they do not trust mp_print_width to
 * check mp_print_width.
 */
#include "mp_print.h"

#include <math.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ---- building MessagePack inputs ---- */

typedef struct {
    msgpack_sbuffer  sb;
    msgpack_packer   pk;
    msgpack_unpacked u;
    bool             unpacked;
} mp_doc;

static msgpack_packer *doc_begin(mp_doc *d)
{
    memset(d, 0, sizeof(*d));
    msgpack_sbuffer_init(&d->sb);
    msgpack_packer_init(&d->pk, &d->sb, msgpack_sbuffer_write);
    return &d->pk;
}

/* Unpacks what was packed: exactly one object. */
static const msgpack_object *doc_end(mp_doc *d)
{
    size_t off = 0;

    msgpack_unpacked_init(&d->u);
    d->unpacked = true;
    assert_int_equal(msgpack_unpack_next(&d->u, d->sb.data, d->sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, d->sb.size);
    return &d->u.data;
}

static void doc_free(mp_doc *d)
{
    if (d->unpacked) {
        msgpack_unpacked_destroy(&d->u);
    }
    msgpack_sbuffer_destroy(&d->sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A string, or nil for NULL. */
static void pk_str_or_nil(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        msgpack_pack_nil(pk);
    } else {
        pk_str(pk, s);
    }
}

typedef struct {
    uint64_t    id;
    const char *code, *state, *category, *urgency, *district, *unit, *title, *description;
    int64_t     created_at;
} case_in;

/* A case map with the keys of protocol.md, "The case" (those the table reads, and a few
 * more so that the printer has to pick). */
static void pk_case(msgpack_packer *pk, const case_in *c)
{
    msgpack_pack_map(pk, 14);
    pk_str(pk, "id");
    msgpack_pack_uint64(pk, c->id);
    pk_str(pk, "code");
    pk_str_or_nil(pk, c->code);
    pk_str(pk, "version");
    msgpack_pack_uint64(pk, 1);
    pk_str(pk, "state");
    pk_str_or_nil(pk, c->state);
    pk_str(pk, "channel");
    pk_str(pk, "hotline");
    pk_str(pk, "category");
    pk_str_or_nil(pk, c->category);
    pk_str(pk, "urgency");
    pk_str_or_nil(pk, c->urgency);
    pk_str(pk, "title");
    pk_str_or_nil(pk, c->title);
    pk_str(pk, "description");
    pk_str_or_nil(pk, c->description);
    pk_str(pk, "location");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "district");
    pk_str_or_nil(pk, c->district);
    pk_str(pk, "street");
    msgpack_pack_nil(pk);
    pk_str(pk, "unit");
    pk_str_or_nil(pk, c->unit);
    pk_str(pk, "created_at");
    msgpack_pack_int64(pk, c->created_at);
    pk_str(pk, "updated_at");
    msgpack_pack_int64(pk, c->created_at);
    pk_str(pk, "supervised");
    msgpack_pack_false(pk);
}

/* ---- capturing output ---- */

typedef struct {
    char  *buf;
    size_t len;
    FILE  *f;
} capture;

static FILE *cap_open(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    return c->f;
}

/* Closes the stream; the text stays in c->buf (the caller frees it). */
static char *cap_close(capture *c)
{
    assert_int_equal(fclose(c->f), 0);
    c->f = NULL;
    assert_non_null(c->buf);
    return c->buf;
}

/* mp_print_json of o, compact or pretty, as a malloc'd string. */
static char *json_of(const msgpack_object *o, unsigned flags)
{
    capture c;

    assert_int_equal(mp_print_json(cap_open(&c), o, flags), 0);
    return cap_close(&c);
}

/* Prints o as compact JSON and compares. */
static void assert_json(const msgpack_object *o, const char *want)
{
    char *got = json_of(o, 0);

    assert_string_equal(got, want);
    free(got);
}

/* ---- measuring output ---- */

/* Whether p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF): what a terminal or a JSON parser receives. */
static bool valid_utf8(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;

    for (size_t i = 0; i < n;) {
        size_t   len;
        uint32_t v;

        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xc2 && s[i] <= 0xdf) {
            len = 2, v = s[i] & 0x1fu;
        } else if (s[i] >= 0xe0 && s[i] <= 0xef) {
            len = 3, v = s[i] & 0x0fu;
        } else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
            len = 4, v = s[i] & 0x07u;
        } else {
            return false;
        }
        if (i + len > n) {
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            v = (v << 6) | (s[i + k] & 0x3fu);
        }
        if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff))
            || (v >= 0xd800 && v <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

/* Display cells of p[0..n) for the characters these tests use: CJK ideographs
 * (U+4E00-U+9FFF) take two, everything else one. */
static size_t cells(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t               w = 0;

    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : 4;

        if (len == 3 && i + 2 < n) {
            uint32_t cp = ((s[i] & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3fu);

            w += cp >= 0x4e00 && cp <= 0x9fff ? 2 : 1;
        } else {
            w += 1;
        }
        i += len;
    }
    return w;
}

#define MAX_LINES 64

/* Splits text at '\n' in place; returns the number of lines (a final empty one is not
 * counted). */
static size_t split_lines(char *text, char *lines[MAX_LINES])
{
    size_t n = 0;

    for (char *p = text; *p != '\0' && n < MAX_LINES;) {
        char *nl = strchr(p, '\n');

        lines[n++] = p;
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* The display column at which needle first starts in line. */
static size_t col_of(const char *line, const char *needle)
{
    const char *at = strstr(line, needle);

    if (at == NULL) {
        fail_msg("'%s' not found in line '%s'", needle, line);
    }
    return cells(line, (size_t)(at - line));
}

/* Fails if text holds a byte a terminal would act on: C0 controls (other than the
 * newlines that end lines), DEL, or a C1 control (U+0080-U+009F, in UTF-8 \xc2\x80 to
 * \xc2\x9f). */
static void assert_no_terminal_controls(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;

    for (size_t i = 0; i < n; i++) {
        if ((s[i] < 0x20 && s[i] != '\n') || s[i] == 0x7f) {
            fail_msg("control byte 0x%02x at offset %zu of:\n%s", s[i], i, text);
        }
        if (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
            fail_msg("C1 control U+00%02X at offset %zu of:\n%s", s[i + 1], i, text);
        }
    }
}

/* ---- JSON: scalars ---- */

static void test_json_nil_and_booleans(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 3);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    assert_json(doc_end(&d), "[null,true,false]");
    doc_free(&d);
}

static void test_json_integers_keep_the_full_64_bit_range(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 6);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_uint64(pk, 127);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int64(pk, -1);
    msgpack_pack_int64(pk, -129);
    msgpack_pack_int64(pk, INT64_MIN);
    assert_json(doc_end(&d),
                "[0,127,18446744073709551615,-1,-129,-9223372036854775808]");
    doc_free(&d);
}

static void test_json_floats_are_shortest_that_read_back(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 7);
    msgpack_pack_double(pk, 0.1);
    msgpack_pack_double(pk, -2.5);
    msgpack_pack_double(pk, 1e300);
    msgpack_pack_double(pk, 31.2304);
    msgpack_pack_double(pk, 1.0 / 3.0);
    msgpack_pack_double(pk, 5e-324);
    msgpack_pack_float(pk, 0.1f);
    assert_json(doc_end(&d), "[0.1,-2.5,1e+300,31.2304,0.3333333333333333,"
                             "5e-324,0.1]");
    doc_free(&d);
}

static void test_json_integral_floats_stay_floats(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    /* A float that happens to be whole must not read back as an integer. */
    msgpack_pack_array(pk, 3);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, -0.0);
    msgpack_pack_float(pk, 121.0f);
    assert_json(doc_end(&d), "[1.0,-0.0,121.0]");
    doc_free(&d);
}

static void test_json_nan_and_infinities_are_null(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 5);
    msgpack_pack_double(pk, NAN);
    msgpack_pack_double(pk, INFINITY);
    msgpack_pack_double(pk, -INFINITY);
    msgpack_pack_float(pk, NAN);
    msgpack_pack_float(pk, INFINITY);
    assert_json(doc_end(&d), "[null,null,null,null,null]");
    doc_free(&d);
}

/* ---- JSON: strings ---- */

static void test_json_escapes_quote_and_backslash(void **state)
{
    mp_doc d;

    pk_str(doc_begin(&d), "say \"hi\" C:\\dir\\");
    assert_json(doc_end(&d), "\"say \\\"hi\\\" C:\\\\dir\\\\\"");
    doc_free(&d);
}

static void test_json_escapes_every_control_character(void **state)
{
    static const char in[] = "\b\f\n\r\t\x01\x1b\x1f\x7f/";
    mp_doc            d;

    msgpack_pack_str_with_body(doc_begin(&d), in, sizeof(in) - 1);
    assert_json(doc_end(&d), "\"\\b\\f\\n\\r\\t\\u0001\\u001b\\u001f\\u007f/\"");
    doc_free(&d);
}

static void test_json_escapes_nul_inside_a_string(void **state)
{
    mp_doc d;

    msgpack_pack_str_with_body(doc_begin(&d), "a\0b", 3);
    assert_json(doc_end(&d), "\"a\\u0000b\"");
    doc_free(&d);
}

static void test_json_escapes_c1_controls(void **state)
{
    /* U+009B is CSI: raw, a terminal showing `gridline --json` output would act on it. */
    mp_doc d;

    pk_str(doc_begin(&d), "a\xc2\x9b" "2Jb\xc2\x85" "c");
    assert_json(doc_end(&d), "\"a\\u009b2Jb\\u0085c\"");
    doc_free(&d);
}

static void test_json_passes_non_ascii_utf8_through(void **state)
{
    static const char text[] = "\xe8\xa1\x97\xe9\x81\x93 caf\xc3\xa9 \xf0\x9f\x98\x80 "
                               "\xef\xbf\xbd";   /* 街道 café 😀 U+FFFD */
    mp_doc            d;
    char              want[64];

    pk_str(doc_begin(&d), text);
    snprintf(want, sizeof(want), "\"%s\"", text);
    assert_json(doc_end(&d), want);
    doc_free(&d);
}

static void test_json_escapes_line_and_paragraph_separators(void **state)
{
    mp_doc d;

    pk_str(doc_begin(&d), "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c");
    assert_json(doc_end(&d), "\"a\\u2028b\\u2029c\"");
    doc_free(&d);
}

static void test_json_replaces_each_invalid_utf8_byte(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        { "a\xff" "b", "\"a\xef\xbf\xbd" "b\"" },                        /* never valid */
        { "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },                  /* overlong '/' */
        { "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },  /* a surrogate */
        { "x\xe8\xa1", "\"x\xef\xbf\xbd\xef\xbf\xbd\"" },                /* cut short */
        { "\x80" "\"", "\"\xef\xbf\xbd\\\"\"" },                          /* lone continuation */
        { "\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mp_doc d;
        char  *got;

        pk_str(doc_begin(&d), cases[i].in);
        got = json_of(doc_end(&d), 0);
        assert_true(valid_utf8(got, strlen(got)));
        assert_string_equal(got, cases[i].want);
        free(got);
        doc_free(&d);
    }
}

/* ---- JSON: bin, ext, containers ---- */

static void test_json_bin_is_base64_with_padding(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 5);
    msgpack_pack_bin_with_body(pk, "", 0);
    msgpack_pack_bin_with_body(pk, "f", 1);
    msgpack_pack_bin_with_body(pk, "fo", 2);
    msgpack_pack_bin_with_body(pk, "foo", 3);
    msgpack_pack_bin_with_body(pk, "\x00\xfb\xff\x10", 4);
    assert_json(doc_end(&d), "[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"APv/EA==\"]");
    doc_free(&d);
}

static void test_json_ext_is_type_and_base64(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_array(pk, 2);
    msgpack_pack_ext_with_body(pk, "foo", 3, 5);
    msgpack_pack_ext_with_body(pk, "\x00\x00\x00\x01", 4, -1);
    assert_json(doc_end(&d),
                "[{\"ext\":5,\"base64\":\"Zm9v\"},{\"ext\":-1,\"base64\":\"AAAAAQ==\"}]");
    doc_free(&d);
}

static void test_json_nested_maps_and_arrays_compact(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_map(pk, 4);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "cases");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "id");
    msgpack_pack_uint64(pk, 1);
    pk_str(pk, "location");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "district");
    pk_str(pk, "D1");
    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 0);
    msgpack_pack_map(pk, 0);
    pk_str(pk, "next");
    msgpack_pack_nil(pk);
    pk_str(pk, "empty");
    msgpack_pack_array(pk, 0);
    assert_json(doc_end(&d), "{\"ok\":true,\"cases\":[{\"id\":1,"
                             "\"location\":{\"district\":\"D1\"}},[[],{}]],"
                             "\"next\":null,\"empty\":[]}");
    doc_free(&d);
}

static void test_json_pretty_puts_one_member_per_line_indented_by_two(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *got;

    msgpack_pack_map(pk, 3);
    pk_str(pk, "a");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_map(pk, 1);
    pk_str(pk, "b");
    msgpack_pack_nil(pk);
    pk_str(pk, "c");
    msgpack_pack_map(pk, 0);
    pk_str(pk, "d");
    msgpack_pack_array(pk, 0);
    got = json_of(doc_end(&d), MP_PRINT_PRETTY);
    assert_string_equal(got, "{\n"
                             "  \"a\": [\n"
                             "    1,\n"
                             "    {\n"
                             "      \"b\": null\n"
                             "    }\n"
                             "  ],\n"
                             "  \"c\": {},\n"
                             "  \"d\": []\n"
                             "}");
    free(got);
    doc_free(&d);
}

static void test_json_non_string_map_keys_become_strings_of_their_json(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_map(pk, 6);
    msgpack_pack_uint64(pk, 1);
    pk_str(pk, "one");
    msgpack_pack_int64(pk, -7);
    pk_str(pk, "minus seven");
    msgpack_pack_true(pk);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_nil(pk);
    msgpack_pack_uint64(pk, 3);
    msgpack_pack_array(pk, 2);
    pk_str(pk, "x");
    msgpack_pack_uint64(pk, 4);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_double(pk, 1.5);
    msgpack_pack_uint64(pk, 6);
    /* A key holding quotes must still make one valid JSON string. */
    assert_json(doc_end(&d), "{\"1\":\"one\",\"-7\":\"minus seven\",\"true\":2,\"null\":3,"
                             "\"[\\\"x\\\",4]\":5,\"1.5\":6}");
    doc_free(&d);
}

static void test_json_string_keys_are_escaped_like_values(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);

    msgpack_pack_map(pk, 1);
    pk_str(pk, "k\"\n\xff");
    msgpack_pack_uint64(pk, 1);
    assert_json(doc_end(&d), "{\"k\\\"\\n\xef\xbf\xbd\":1}");
    doc_free(&d);
}

/* ---- display width ---- */

static void test_width_counts_cjk_and_emoji_as_two_columns(void **state)
{
    assert_int_equal(mp_print_width("abc", 3), 3);
    assert_int_equal(mp_print_width("\xe4\xb8\x9c\xe5\x9f\x8e", 6), 4);          /* 东城 */
    assert_int_equal(mp_print_width("\xea\xb0\x80", 3), 2);                      /* 가 */
    assert_int_equal(mp_print_width("\xef\xbc\xa1", 3), 2);                      /* Ａ */
    assert_int_equal(mp_print_width("\xf0\x9f\x98\x80", 4), 2);                  /* 😀 */
    assert_int_equal(mp_print_width("caf\xc3\xa9", 5), 4);                       /* café */
    assert_int_equal(mp_print_width("\xe2\x80\xa6", 3), 1);                      /* … */
}

static void test_width_counts_combining_marks_as_zero(void **state)
{
    assert_int_equal(mp_print_width("e\xcc\x81", 3), 1);              /* e + U+0301 */
    assert_int_equal(mp_print_width("a\xe2\x80\x8b" "b", 5), 2);      /* zero-width space */
}

static void test_width_counts_controls_and_bad_bytes_as_one_each(void **state)
{
    /* As they are shown: a control as a space, a bad byte as U+FFFD. */
    assert_int_equal(mp_print_width("\x1b[2J", 4), 4);
    assert_int_equal(mp_print_width("\xff\xfe", 2), 2);
    assert_int_equal(mp_print_width("\xe4\xb8", 2), 2);
    assert_int_equal(mp_print_width("", 0), 0);
}

/* ---- times ---- */

static void test_time_is_utc_minutes_or_seconds(void **state)
{
    char buf[32];

    assert_int_equal(mp_print_time(buf, sizeof(buf), 0, false), 16);
    assert_string_equal(buf, "1970-01-01 00:00");
    assert_int_equal(mp_print_time(buf, sizeof(buf), 1700000000999, true), 19);
    assert_string_equal(buf, "2023-11-14 22:13:20");
    assert_true(mp_print_time(buf, sizeof(buf), 1700000000999, false) > 0);
    assert_string_equal(buf, "2023-11-14 22:13");
}

static void test_time_before_epoch_rounds_down(void **state)
{
    char buf[32];

    assert_true(mp_print_time(buf, sizeof(buf), -1, true) > 0);
    assert_string_equal(buf, "1969-12-31 23:59:59");
    assert_true(mp_print_time(buf, sizeof(buf), -1000, true) > 0);
    assert_string_equal(buf, "1969-12-31 23:59:59");
    assert_true(mp_print_time(buf, sizeof(buf), -1001, true) > 0);
    assert_string_equal(buf, "1969-12-31 23:59:58");
}

static void test_time_returns_zero_when_buffer_is_too_small(void **state)
{
    char buf[16];

    assert_int_equal(mp_print_time(buf, sizeof(buf), 0, false), 0);   /* needs 17 */
    assert_int_equal(mp_print_time(buf, 0, 0, false), 0);
}

/* ---- the case table ---- */

static const char *const table_head[] = {
    "ID", "CODE", "STATE", "CATEGORY", "URGENCY", "DISTRICT", "UNIT", "CREATED", "TITLE",
};
#define TABLE_COLS (sizeof(table_head) / sizeof(table_head[0]))

/* Prints the cases as a table with width; returns the text (caller frees). */
static char *case_table(const case_in *in, size_t n, int width)
{
    mp_doc                d;
    msgpack_packer       *pk = doc_begin(&d);
    const msgpack_object *arr;
    const msgpack_object *ptrs[16];
    capture               c;

    assert_true(n <= 16);
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        pk_case(pk, &in[i]);
    }
    arr = doc_end(&d);
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = &arr->via.array.ptr[i];
    }
    assert_int_equal(mp_print_case_table(cap_open(&c), ptrs, n, width), 0);
    cap_close(&c);
    doc_free(&d);
    return c.buf;
}

static const case_in case_a = {
    .id = 7, .code = "GL-20231114-000007", .state = "registered", .category = "roads",
    .urgency = "normal", .district = "D1", .unit = "U-roads", .title = "Pothole",
    .description = "A deep pothole", .created_at = 1700000000000,
};

static const case_in case_b = {
    .id = 12345, .code = "GL-20231115-000120", .state = "dispatched",
    .category = "street_lights", .urgency = "emergency", .district = "\xe4\xb8\x9c\xe5\x9f\x8e",
    .unit = "U-lights-east", .title = "Light out", .description = "x", .created_at = 0,
};

static void test_case_table_has_header_in_documented_order(void **state)
{
    char  *out = case_table(&case_a, 1, 0);
    char  *lines[MAX_LINES];
    size_t n = split_lines(out, lines);
    size_t prev = 0;

    assert_int_equal(n, 2);
    for (size_t c = 0; c < TABLE_COLS; c++) {
        size_t at = col_of(lines[0], table_head[c]);

        assert_true(c == 0 || at > prev);
        prev = at;
    }
    assert_non_null(strstr(lines[0], "UTC"));
    free(out);
}

static void test_case_table_aligns_columns_across_rows(void **state)
{
    const case_in in[] = { case_a, case_b };
    char         *out = case_table(in, 2, 0);
    char         *lines[MAX_LINES];
    size_t        n = split_lines(out, lines);
    const char   *a_cells[TABLE_COLS] = {
        "7", "GL-20231114-000007", "registered", "roads", "normal", "D1", "U-roads",
        "2023-11-14 22:13", "Pothole",
    };
    const char   *b_cells[TABLE_COLS] = {
        "12345", "GL-20231115-000120", "dispatched", "street_lights", "emergency",
        "\xe4\xb8\x9c\xe5\x9f\x8e", "U-lights-east", "1970-01-01 00:00", "Light out",
    };

    assert_int_equal(n, 3);
    for (size_t c = 0; c < TABLE_COLS; c++) {
        size_t at = col_of(lines[0], table_head[c]);

        assert_int_equal(col_of(lines[1], a_cells[c]), at);
        assert_int_equal(col_of(lines[2], b_cells[c]), at);
    }
    free(out);
}

static void test_case_table_counts_cjk_as_two_columns(void **state)
{
    /* 东城 takes 4 cells in 6 bytes; the UNIT column after it must still line up. */
    case_in     wide = case_b, narrow = case_a;
    case_in     in[2];
    char       *out;
    char       *lines[MAX_LINES];

    narrow.district = "D123";                 /* 4 cells, 4 bytes */
    wide.district = "\xe4\xb8\x9c\xe5\x9f\x8e";
    narrow.unit = wide.unit = "UNIT-X";
    in[0] = narrow;
    in[1] = wide;
    out = case_table(in, 2, 0);
    assert_int_equal(split_lines(out, lines), 3);
    assert_int_equal(col_of(lines[1], "UNIT-X"), col_of(lines[0], "UNIT"));
    assert_int_equal(col_of(lines[2], "UNIT-X"), col_of(lines[0], "UNIT"));
    /* The same column, at a byte offset two further on. */
    assert_int_equal(strstr(lines[2], "UNIT-X") - lines[2],
                     strstr(lines[1], "UNIT-X") - lines[1] + 2);
    free(out);
}

static void test_case_table_keeps_whole_titles_when_width_is_zero(void **state)
{
    char    title[301];
    case_in c = case_a;
    char   *out;

    memset(title, 'T', 300);
    title[300] = '\0';
    c.title = title;
    out = case_table(&c, 1, 0);
    assert_non_null(strstr(out, title));
    assert_null(strstr(out, "\xe2\x80\xa6"));
    free(out);
}

static void test_case_table_cuts_long_title_to_fit_width_with_ellipsis(void **state)
{
    char    title[301];
    case_in c = case_a;

    memset(title, 'T', 300);
    title[300] = '\0';
    c.title = title;
    for (int width = 120; width <= 140; width++) {
        char  *out = case_table(&c, 1, width);
        char  *lines[MAX_LINES];
        size_t n = split_lines(out, lines);

        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(cells(lines[i], strlen(lines[i])) <= (size_t)width);
        }
        /* Cut to fit exactly: the width is used, not wasted. */
        assert_int_equal(cells(lines[1], strlen(lines[1])), width);
        assert_non_null(strstr(lines[1], "TTTT\xe2\x80\xa6"));
        assert_int_equal(strcmp(lines[1] + strlen(lines[1]) - 3, "\xe2\x80\xa6"), 0);
        free(out);
    }
}

static void test_case_table_cuts_cjk_title_between_characters(void **state)
{
    /* 60 ideographs: whatever the width, the cut must not split one, nor let a
     * two-column character stick out past the width. */
    char    title[60 * 3 + 1];
    case_in c = case_a;

    for (size_t i = 0; i < 60; i++) {
        memcpy(title + 3 * i, "\xe8\xb7\xaf", 3);   /* 路 */
    }
    title[sizeof(title) - 1] = '\0';
    c.title = title;
    for (int width = 110; width <= 130; width++) {
        char  *out = case_table(&c, 1, width);
        char  *lines[MAX_LINES];
        size_t n = split_lines(out, lines);
        size_t len = strlen(lines[1]);

        assert_int_equal(n, 2);
        assert_true(valid_utf8(lines[1], len));
        assert_true(cells(lines[1], len) <= (size_t)width);
        assert_true(cells(lines[1], len) >= (size_t)width - 1);
        assert_int_equal(strcmp(lines[1] + len - 6, "\xe8\xb7\xaf\xe2\x80\xa6"), 0);
        free(out);
    }
}

static void test_case_table_leaves_short_titles_alone_when_width_is_ample(void **state)
{
    char *out = case_table(&case_a, 1, 400);

    assert_non_null(strstr(out, "Pothole\n"));
    assert_null(strstr(out, "\xe2\x80\xa6"));
    free(out);
}

static void test_case_table_neutralises_control_characters(void **state)
{
    case_in c = case_a;
    char   *out;
    char   *lines[MAX_LINES];

    c.title = "A\x1b]0;owned\x07" "B\x1b[2J\r\n\tC\x08\x7f" "D\xc2\x9b" "31mE\xc2\x85" "F";
    c.district = "D\x1b[1m";
    c.unit = "U\r";
    c.code = "GL\x07-1";
    out = case_table(&c, 1, 0);
    assert_no_terminal_controls(out, strlen(out));
    /* Still one row, and still aligned: each control took one cell as a space. */
    assert_int_equal(split_lines(out, lines), 2);
    assert_int_equal(col_of(lines[1], "A ]0;owned B [2J"), col_of(lines[0], "TITLE"));
    assert_int_equal(col_of(lines[1], "U "), col_of(lines[0], "UNIT"));
    free(out);
}

static void test_case_table_neutralises_controls_in_description_fallback(void **state)
{
    case_in c = case_a;
    char   *out;
    char   *lines[MAX_LINES];

    c.title = NULL;
    c.description = "first line\nsecond\x1b[H line";
    out = case_table(&c, 1, 0);
    assert_no_terminal_controls(out, strlen(out));
    assert_int_equal(split_lines(out, lines), 2);
    assert_non_null(strstr(lines[1], "first line second [H line"));
    free(out);
}

static void test_case_table_shows_invalid_utf8_as_replacement_char(void **state)
{
    case_in c = case_a;
    char   *out;

    c.title = "bad\xff\xc3";
    out = case_table(&c, 1, 0);
    assert_true(valid_utf8(out, strlen(out)));
    assert_non_null(strstr(out, "bad\xef\xbf\xbd\xef\xbf\xbd"));
    free(out);
}

static void test_case_table_uses_description_when_title_is_empty(void **state)
{
    case_in in[2] = { case_a, case_a };
    char   *out;

    in[0].title = "";
    in[0].description = "From the description";
    in[1].title = NULL;
    in[1].description = "Also from the description";
    out = case_table(in, 2, 0);
    assert_non_null(strstr(out, "From the description"));
    assert_non_null(strstr(out, "Also from the description"));
    free(out);
}

static void test_case_table_shows_nil_as_dash(void **state)
{
    case_in c = case_a;
    char   *out;
    char   *lines[MAX_LINES];

    c.unit = NULL;
    c.category = NULL;
    out = case_table(&c, 1, 0);
    assert_int_equal(split_lines(out, lines), 2);
    assert_int_equal(col_of(lines[1], "- "), col_of(lines[0], "CATEGORY"));
    assert_int_equal(strncmp(lines[1] + strlen(lines[1]) - strlen("Pothole"), "Pothole", 7), 0);
    free(out);
}

static void test_case_table_writes_nothing_for_no_cases(void **state)
{
    capture c;

    assert_int_equal(mp_print_case_table(cap_open(&c), NULL, 0, 80), 0);
    cap_close(&c);
    assert_int_equal(c.len, 0);
    free(c.buf);
}

static void test_case_table_skips_entries_that_are_not_maps(void **state)
{
    mp_doc                d;
    msgpack_packer       *pk = doc_begin(&d);
    const msgpack_object *arr;
    const msgpack_object *ptrs[3];
    capture               c;
    char                 *lines[MAX_LINES];

    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 99);
    pk_case(pk, &case_a);
    pk_str(pk, "not a case");
    arr = doc_end(&d);
    for (size_t i = 0; i < 3; i++) {
        ptrs[i] = &arr->via.array.ptr[i];
    }
    assert_int_equal(mp_print_case_table(cap_open(&c), ptrs, 3, 0), 0);
    cap_close(&c);
    assert_int_equal(split_lines(c.buf, lines), 2);
    assert_non_null(strstr(lines[1], "GL-20231114-000007"));
    free(c.buf);
    doc_free(&d);
}

/* ---- one case as key: value lines ---- */

static char *case_lines(const msgpack_object *o)
{
    capture c;

    assert_int_equal(mp_print_case(cap_open(&c), o), 0);
    return cap_close(&c);
}

static void test_case_lines_align_values_and_flatten_nested_maps(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 4);
    pk_str(pk, "id");
    msgpack_pack_uint64(pk, 12);
    pk_str(pk, "location");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "district");
    pk_str(pk, "D1");
    pk_str(pk, "street");
    msgpack_pack_nil(pk);
    pk_str(pk, "supervised");
    msgpack_pack_false(pk);
    pk_str(pk, "level");
    msgpack_pack_int64(pk, -2);
    out = case_lines(doc_end(&d));
    assert_string_equal(out, "id:                12\n"
                             "location.district: D1\n"
                             "location.street:   -\n"
                             "supervised:        no\n"
                             "level:             -2\n");
    free(out);
    doc_free(&d);
}

static void test_case_lines_show_times_as_utc_and_other_integers_as_numbers(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 4);
    pk_str(pk, "created_at");
    msgpack_pack_int64(pk, 1700000000000);
    pk_str(pk, "resolve_by");
    msgpack_pack_int64(pk, 1700000000000 + 7 * 86400000LL);
    pk_str(pk, "reported_at");
    msgpack_pack_nil(pk);
    pk_str(pk, "version");
    msgpack_pack_int64(pk, 1700000000000);
    out = case_lines(doc_end(&d));
    assert_string_equal(out, "created_at:  2023-11-14 22:13:20 UTC\n"
                             "resolve_by:  2023-11-21 22:13:20 UTC\n"
                             "reported_at: -\n"
                             "version:     1700000000000\n");
    free(out);
    doc_free(&d);
}

static void test_case_lines_show_coordinates_without_rounding(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 1);
    pk_str(pk, "location");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "lat");
    msgpack_pack_double(pk, 31.230412);
    pk_str(pk, "lon");
    msgpack_pack_double(pk, 121.473712);
    out = case_lines(doc_end(&d));
    assert_string_equal(out, "location.lat: 31.230412\n"
                             "location.lon: 121.473712\n");
    free(out);
    doc_free(&d);
}

static void test_case_lines_join_lists_and_show_empty_ones_as_dash(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 3);
    pk_str(pk, "attachments");
    msgpack_pack_array(pk, 2);
    pk_str(pk, "https://a.example/1.jpg");
    pk_str(pk, "https://a.example/2.jpg");
    pk_str(pk, "tags");
    msgpack_pack_array(pk, 0);
    pk_str(pk, "reporter");
    msgpack_pack_map(pk, 0);
    out = case_lines(doc_end(&d));
    assert_string_equal(out, "attachments: https://a.example/1.jpg, https://a.example/2.jpg\n"
                             "tags:        -\n"
                             "reporter:    -\n");
    free(out);
    doc_free(&d);
}

static void test_case_lines_indent_continuation_lines_under_the_value(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 2);
    pk_str(pk, "id");
    msgpack_pack_uint64(pk, 1);
    pk_str(pk, "description");
    pk_str(pk, "first\r\nsecond\nthird");
    out = case_lines(doc_end(&d));
    assert_string_equal(out, "id:          1\n"
                             "description: first\n"
                             "             second\n"
                             "             third\n");
    free(out);
    doc_free(&d);
}

static void test_case_lines_neutralise_control_characters_in_keys_and_values(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    char           *out;

    msgpack_pack_map(pk, 2);
    pk_str(pk, "title");
    pk_str(pk, "a\x1b]2;x\x07" "b\xc2\x9b" "c");
    pk_str(pk, "k\x1b");
    pk_str(pk, "v\t\xff");
    out = case_lines(doc_end(&d));
    assert_no_terminal_controls(out, strlen(out));
    assert_true(valid_utf8(out, strlen(out)));
    assert_non_null(strstr(out, "a ]2;x b c"));
    free(out);
    doc_free(&d);
}

static void test_case_lines_print_nothing_for_a_non_map(void **state)
{
    mp_doc  d;
    capture c;

    pk_str(doc_begin(&d), "no");
    assert_int_equal(mp_print_case(cap_open(&c), doc_end(&d)), 0);
    cap_close(&c);
    assert_int_equal(c.len, 0);
    free(c.buf);
    assert_int_equal(mp_print_case(cap_open(&c), NULL), 0);
    cap_close(&c);
    assert_int_equal(c.len, 0);
    free(c.buf);
    doc_free(&d);
}

/* ---- history ---- */

static void pk_event(msgpack_packer *pk, uint64_t seq, int64_t at, const char *type,
                     const char *unit, const char *note)
{
    msgpack_pack_map(pk, 7);
    pk_str(pk, "seq");
    msgpack_pack_uint64(pk, seq);
    pk_str(pk, "at");
    msgpack_pack_int64(pk, at);
    pk_str(pk, "type");
    pk_str(pk, type);
    pk_str(pk, "state");
    pk_str(pk, "registered");
    pk_str(pk, "unit");
    pk_str_or_nil(pk, unit);
    pk_str(pk, "actor");
    pk_str(pk, "dev");
    pk_str(pk, "note");
    pk_str_or_nil(pk, note);
}

static void test_history_is_a_table_with_times_to_the_second(void **state)
{
    static const char *const head[] = { "SEQ", "AT", "TYPE", "STATE", "UNIT", "ACTOR", "NOTE" };
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    capture         c;
    char           *lines[MAX_LINES];

    msgpack_pack_array(pk, 2);
    pk_event(pk, 1, 1700000000000, "created", NULL, NULL);
    pk_event(pk, 2, 1700000061000, "dispatched", "U-roads", "sent to \xe9\x81\x93\xe8\xb7\xaf");
    assert_int_equal(mp_print_history(cap_open(&c), doc_end(&d), 0), 0);
    cap_close(&c);
    assert_int_equal(split_lines(c.buf, lines), 3);
    for (size_t i = 0; i < 7; i++) {
        assert_true(i == 0 || col_of(lines[0], head[i]) > col_of(lines[0], head[i - 1]));
    }
    assert_int_equal(col_of(lines[1], "2023-11-14 22:13:20"), col_of(lines[0], "AT"));
    assert_int_equal(col_of(lines[2], "2023-11-14 22:14:21"), col_of(lines[0], "AT"));
    assert_int_equal(col_of(lines[2], "U-roads"), col_of(lines[0], "UNIT"));
    assert_int_equal(col_of(lines[1], "dev"), col_of(lines[0], "ACTOR"));
    assert_int_equal(col_of(lines[2], "sent to"), col_of(lines[0], "NOTE"));
    free(c.buf);
    doc_free(&d);
}

static void test_history_cuts_long_notes_to_width(void **state)
{
    mp_doc          d;
    msgpack_packer *pk = doc_begin(&d);
    capture         c;
    char           *lines[MAX_LINES];
    char            note[400];
    size_t          n;

    memset(note, 'n', sizeof(note) - 1);
    note[sizeof(note) - 1] = '\0';
    msgpack_pack_array(pk, 1);
    pk_event(pk, 1, 1700000000000, "noted", "U-roads", note);
    assert_int_equal(mp_print_history(cap_open(&c), doc_end(&d), 100), 0);
    cap_close(&c);
    n = split_lines(c.buf, lines);
    assert_int_equal(n, 2);
    assert_int_equal(cells(lines[1], strlen(lines[1])), 100);
    assert_int_equal(strcmp(lines[1] + strlen(lines[1]) - 3, "\xe2\x80\xa6"), 0);
    free(c.buf);
    doc_free(&d);
}

static void test_history_prints_nothing_without_events(void **state)
{
    mp_doc  d;
    capture c;

    msgpack_pack_array(doc_begin(&d), 0);
    assert_int_equal(mp_print_history(cap_open(&c), doc_end(&d), 80), 0);
    cap_close(&c);
    assert_int_equal(c.len, 0);
    free(c.buf);
    doc_free(&d);
}

/* ---- catalogue ---- */

static void pk_sla(msgpack_packer *pk, const char *code, int64_t accept, int64_t resolve,
                   const char *clock)
{
    msgpack_pack_map(pk, 5);
    pk_str(pk, "code");
    pk_str(pk, code);
    pk_str(pk, "accept_within_ms");
    msgpack_pack_int64(pk, accept);
    pk_str(pk, "resolve_within_ms");
    msgpack_pack_int64(pk, resolve);
    pk_str(pk, "clock");
    pk_str(pk, clock);
    pk_str(pk, "warn_ratio");
    msgpack_pack_double(pk, 0.8);
}

static void pk_unit(msgpack_packer *pk, const char *code, const char *place,
                    const char *const *cats, uint32_t ncats)
{
    msgpack_pack_map(pk, 5);
    pk_str(pk, "code");
    pk_str(pk, code);
    pk_str(pk, "name");
    pk_str(pk, "Unit name");
    pk_str(pk, "kind");
    pk_str(pk, "department");
    pk_str(pk, "place");
    pk_str_or_nil(pk, place);
    pk_str(pk, "categories");
    msgpack_pack_array(pk, ncats);
    for (uint32_t i = 0; i < ncats; i++) {
        pk_str(pk, cats[i]);
    }
}

static void pk_place(msgpack_packer *pk, const char *code, const char *name, const char *kids)
{
    msgpack_pack_map(pk, kids != NULL ? 3 : 2);
    pk_str(pk, "code");
    pk_str(pk, code);
    pk_str(pk, "name");
    pk_str(pk, name);
    if (kids != NULL) {
        pk_str(pk, kids);
        msgpack_pack_array(pk, 1);
    }
}

/* A small catalog.get reply: one category, two units, one district down to a grid,
 * three SLA classes. */
static const msgpack_object *small_catalog(mp_doc *d)
{
    static const char *const cats[] = { "roads", "street_lights" };
    msgpack_packer          *pk = doc_begin(d);

    msgpack_pack_map(pk, 5);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "categories");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    pk_str(pk, "code");
    pk_str(pk, "roads");
    pk_str(pk, "name");
    pk_str(pk, "Roads and pavements");
    pk_str(pk, "sla");
    msgpack_pack_map(pk, 3);
    pk_str(pk, "emergency");
    pk_str(pk, "fast");
    pk_str(pk, "urgent");
    pk_str(pk, "fast");
    pk_str(pk, "normal");
    pk_str(pk, "slow");
    pk_str(pk, "units");
    msgpack_pack_array(pk, 2);
    pk_unit(pk, "U-city", NULL, NULL, 0);
    pk_unit(pk, "U-east", "D1", cats, 2);
    pk_str(pk, "places");
    msgpack_pack_array(pk, 1);
    pk_place(pk, "D1", "East \xe4\xb8\x9c\xe5\x9f\x8e", "streets");
    pk_place(pk, "S1", "First street", "communities");
    pk_place(pk, "C1", "Garden community", "grids");
    pk_place(pk, "G1", "Grid one", NULL);
    pk_str(pk, "sla");
    msgpack_pack_array(pk, 3);
    pk_sla(pk, "fast", 3600000, 2 * 3600000, "wall");
    pk_sla(pk, "slow", 86400000, 7 * 86400000LL, "working");
    pk_sla(pk, "odd", 90000, 1500, "wall");
    return doc_end(d);
}

static void test_catalog_has_four_sections_with_counts(void **state)
{
    mp_doc  d;
    capture c;
    char   *cat, *units, *places, *sla;

    assert_int_equal(mp_print_catalog(cap_open(&c), small_catalog(&d), 0), 0);
    cap_close(&c);
    cat = strstr(c.buf, "Categories (1)\n");
    units = strstr(c.buf, "Units (2)\n");
    places = strstr(c.buf, "Places (1 districts)\n");
    sla = strstr(c.buf, "SLA classes (3)\n");
    assert_true(cat == c.buf);
    assert_true(units != NULL && units > cat);
    assert_true(places != NULL && places > units);
    assert_true(sla != NULL && sla > places);
    free(c.buf);
    doc_free(&d);
}

/* The line of text that starts with `start` (after indentation), copied into out. */
static void line_with(const char *text, const char *start, char *out, size_t cap)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t      len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        size_t      sp = strspn(p, " ");

        if (sp < len && strncmp(p + sp, start, strlen(start)) == 0) {
            assert_true(len < cap);
            memcpy(out, p, len);
            out[len] = '\0';
            return;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    fail_msg("no line starts with '%s' in:\n%s", start, text);
}

static void test_catalog_shows_sla_times_as_durations(void **state)
{
    mp_doc  d;
    capture c;
    char    line[256];

    assert_int_equal(mp_print_catalog(cap_open(&c), small_catalog(&d), 0), 0);
    cap_close(&c);
    line_with(strstr(c.buf, "SLA classes"), "fast ", line, sizeof(line));
    assert_non_null(strstr(line, " 1h "));
    assert_non_null(strstr(line, " 2h "));
    assert_non_null(strstr(line, "wall"));
    line_with(strstr(c.buf, "SLA classes"), "slow ", line, sizeof(line));
    assert_non_null(strstr(line, " 1d "));
    assert_non_null(strstr(line, " 7d "));
    assert_non_null(strstr(line, "working"));
    line_with(strstr(c.buf, "SLA classes"), "odd ", line, sizeof(line));
    assert_non_null(strstr(line, " 90s "));
    assert_non_null(strstr(line, " 1500ms "));
    free(c.buf);
    doc_free(&d);
}

static void test_catalog_shows_category_sla_per_urgency(void **state)
{
    mp_doc  d;
    capture c;
    char    line[256];

    assert_int_equal(mp_print_catalog(cap_open(&c), small_catalog(&d), 0), 0);
    cap_close(&c);
    line_with(c.buf, "roads ", line, sizeof(line));
    assert_non_null(strstr(line, "Roads and pavements"));
    assert_true(strstr(line, "fast") < strstr(line, "slow"));
    free(c.buf);
    doc_free(&d);
}

static void test_catalog_marks_city_wide_units_and_units_taking_every_category(void **state)
{
    mp_doc  d;
    capture c;
    char    line[256];

    assert_int_equal(mp_print_catalog(cap_open(&c), small_catalog(&d), 0), 0);
    cap_close(&c);
    line_with(c.buf, "U-city ", line, sizeof(line));
    assert_non_null(strstr(line, "city-wide"));
    assert_non_null(strstr(line, "all"));
    line_with(c.buf, "U-east ", line, sizeof(line));
    assert_null(strstr(line, "city-wide"));
    assert_non_null(strstr(line, " D1 "));
    assert_non_null(strstr(line, "roads"));
    assert_non_null(strstr(line, "street_lights"));
    free(c.buf);
    doc_free(&d);
}

static void test_catalog_indents_the_place_tree_by_level(void **state)
{
    static const char *const codes[] = { "D1", "S1", "C1", "G1" };
    mp_doc                   d;
    capture                  c;
    char                     line[256];
    const char              *places;

    assert_int_equal(mp_print_catalog(cap_open(&c), small_catalog(&d), 0), 0);
    cap_close(&c);
    places = strstr(c.buf, "Places");
    assert_non_null(places);
    for (size_t level = 0; level < 4; level++) {
        char want[16];

        line_with(places, codes[level], line, sizeof(line));
        snprintf(want, sizeof(want), "%*s%s ", (int)(2 * level), "", codes[level]);
        /* Each level two spaces further in than the one above it. */
        assert_non_null(strstr(line, want));
        if (level == 0) {
            char head[256];

            line_with(places, "CODE", head, sizeof(head));
            assert_int_equal(strstr(line, codes[0]) - line, strstr(head, "CODE") - head);
        } else {
            char above[256];

            line_with(places, codes[level - 1], above, sizeof(above));
            assert_int_equal(strstr(line, codes[level]) - line,
                             strstr(above, codes[level - 1]) - above + 2);
        }
    }
    free(c.buf);
    doc_free(&d);
}

/* ---- write failures ---- */

static void test_every_printer_reports_a_failed_write(void **state)
{
    mp_doc                d, cat;
    const msgpack_object *o, *catalog;
    const msgpack_object *one;
    FILE                 *ro = fopen("/dev/null", "r");   /* writes to it fail */

    assert_non_null(ro);
    setvbuf(ro, NULL, _IONBF, 0);
    msgpack_pack_array(doc_begin(&d), 1);
    pk_case(&d.pk, &case_a);
    o = doc_end(&d);
    one = &o->via.array.ptr[0];
    catalog = small_catalog(&cat);
    assert_int_equal(mp_print_json(ro, o, 0), -1);
    clearerr(ro);
    assert_int_equal(mp_print_case_table(ro, &one, 1, 80), -1);
    clearerr(ro);
    assert_int_equal(mp_print_case(ro, one), -1);
    clearerr(ro);
    assert_int_equal(mp_print_catalog(ro, catalog, 80), -1);
    fclose(ro);
    doc_free(&d);
    doc_free(&cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_nil_and_booleans),
        cmocka_unit_test(test_json_integers_keep_the_full_64_bit_range),
        cmocka_unit_test(test_json_floats_are_shortest_that_read_back),
        cmocka_unit_test(test_json_integral_floats_stay_floats),
        cmocka_unit_test(test_json_nan_and_infinities_are_null),
        cmocka_unit_test(test_json_escapes_quote_and_backslash),
        cmocka_unit_test(test_json_escapes_every_control_character),
        cmocka_unit_test(test_json_escapes_nul_inside_a_string),
        cmocka_unit_test(test_json_escapes_c1_controls),
        cmocka_unit_test(test_json_passes_non_ascii_utf8_through),
        cmocka_unit_test(test_json_escapes_line_and_paragraph_separators),
        cmocka_unit_test(test_json_replaces_each_invalid_utf8_byte),
        cmocka_unit_test(test_json_bin_is_base64_with_padding),
        cmocka_unit_test(test_json_ext_is_type_and_base64),
        cmocka_unit_test(test_json_nested_maps_and_arrays_compact),
        cmocka_unit_test(test_json_pretty_puts_one_member_per_line_indented_by_two),
        cmocka_unit_test(test_json_non_string_map_keys_become_strings_of_their_json),
        cmocka_unit_test(test_json_string_keys_are_escaped_like_values),
        cmocka_unit_test(test_width_counts_cjk_and_emoji_as_two_columns),
        cmocka_unit_test(test_width_counts_combining_marks_as_zero),
        cmocka_unit_test(test_width_counts_controls_and_bad_bytes_as_one_each),
        cmocka_unit_test(test_time_is_utc_minutes_or_seconds),
        cmocka_unit_test(test_time_before_epoch_rounds_down),
        cmocka_unit_test(test_time_returns_zero_when_buffer_is_too_small),
        cmocka_unit_test(test_case_table_has_header_in_documented_order),
        cmocka_unit_test(test_case_table_aligns_columns_across_rows),
        cmocka_unit_test(test_case_table_counts_cjk_as_two_columns),
        cmocka_unit_test(test_case_table_keeps_whole_titles_when_width_is_zero),
        cmocka_unit_test(test_case_table_cuts_long_title_to_fit_width_with_ellipsis),
        cmocka_unit_test(test_case_table_cuts_cjk_title_between_characters),
        cmocka_unit_test(test_case_table_leaves_short_titles_alone_when_width_is_ample),
        cmocka_unit_test(test_case_table_neutralises_control_characters),
        cmocka_unit_test(test_case_table_neutralises_controls_in_description_fallback),
        cmocka_unit_test(test_case_table_shows_invalid_utf8_as_replacement_char),
        cmocka_unit_test(test_case_table_uses_description_when_title_is_empty),
        cmocka_unit_test(test_case_table_shows_nil_as_dash),
        cmocka_unit_test(test_case_table_writes_nothing_for_no_cases),
        cmocka_unit_test(test_case_table_skips_entries_that_are_not_maps),
        cmocka_unit_test(test_case_lines_align_values_and_flatten_nested_maps),
        cmocka_unit_test(test_case_lines_show_times_as_utc_and_other_integers_as_numbers),
        cmocka_unit_test(test_case_lines_show_coordinates_without_rounding),
        cmocka_unit_test(test_case_lines_join_lists_and_show_empty_ones_as_dash),
        cmocka_unit_test(test_case_lines_indent_continuation_lines_under_the_value),
        cmocka_unit_test(test_case_lines_neutralise_control_characters_in_keys_and_values),
        cmocka_unit_test(test_case_lines_print_nothing_for_a_non_map),
        cmocka_unit_test(test_history_is_a_table_with_times_to_the_second),
        cmocka_unit_test(test_history_cuts_long_notes_to_width),
        cmocka_unit_test(test_history_prints_nothing_without_events),
        cmocka_unit_test(test_catalog_has_four_sections_with_counts),
        cmocka_unit_test(test_catalog_shows_sla_times_as_durations),
        cmocka_unit_test(test_catalog_shows_category_sla_per_urgency),
        cmocka_unit_test(test_catalog_marks_city_wide_units_and_units_taking_every_category),
        cmocka_unit_test(test_catalog_indents_the_place_tree_by_level),
        cmocka_unit_test(test_every_printer_reports_a_failed_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
