/* principals and access: the keys file is read strictly (every error names the file and
 * line, or the client), and each role may use the services, actions and cases of
 * protocol/README.md's "Security" table and no others. */
#include "access.h"
#include "city.h"
#include "gl_error.h"
#include "keyfile.h"
#include "principals.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Public keys: 40 characters of the Z85 alphabet each, all different. */
#define KEY_A "07elszGNU-*[#6dkryFMT./)$5cjqxELSZ!(%4bi"
#define KEY_B "bipwDKRY^>@3ahovCJQX=<}29gnuBIPW+&{18fmt"
#define KEY_C "mtAHOV:?]07elszGNU-*[#6dkryFMT./)$5cjqxE"
#define KEY_D "xELSZ!(%4bipwDKRY^>@3ahovCJQX=<}29gnuBIP"
#define KEY_E "IPW+&{18fmtAHOV:?]07elszGNU-*[#6dkryFMT."
#define KEY_F "T./)$5cjqxELSZ!(%4bipwDKRY^>@3ahovCJQX=<"
#define KEY_G "=<}29gnuBIPW+&{18fmtAHOV:?]07elszGNU-*[#"
#define KEY_H "[#6dkryFMT./)$5cjqxELSZ!(%4bipwDKRY^>@3a"
#define KEY_I "07elszGNU-*[#6dkryFMT./)$5cjqxELSZ!(%4bj"
/* Not keys: 39 characters, and a '~' (outside Z85) in place of the last one. */
#define KEY_39 "07elszGNU-*[#6dkryFMT./)$5cjqxELSZ!(%4b"
#define KEY_TILDE "07elszGNU-*[#6dkryFMT./)$5cjqxELSZ!(%4~"

/* Names of 64 bytes (the most) and 65. */
#define NAME_64 "n123456789012345678901234567890123456789012345678901234567890123"
#define NAME_65 NAME_64 "4"

/* The first line of every keys file below and a valid entry on its second, so that the
 * entry under test is on line 3. */
#define HEAD "clients = (\n  { name = \"ok\"; key = \"" KEY_H "\"; role = \"admin\"; },\n"
#define TAIL ");\n"

typedef struct {
    city *town;
    char  dir[64];
    char  path[160];   /* the last file written */
    char  err[512];
} fixture;

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    if (f == NULL) {
        return -1;
    }
    f->town = city_new(NULL, err, sizeof err);
    snprintf(f->dir, sizeof f->dir, "/tmp/gridline-access-XXXXXX");
    if (f->town == NULL || mkdtemp(f->dir) == NULL) {
        city_destroy(&f->town);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    city_destroy(&f->town);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
    }
}

/* Writes text to dir/name (replacing it) and returns the path (f->path). */
static const char *write_file(fixture *f, const char *name, const char *text)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return f->path;
}

static principals *load(fixture *f, const char *text)
{
    write_file(f, "keys.cfg", text);
    f->err[0] = '\0';
    return principals_load(f->path, f->town, f->err, sizeof f->err);
}

static principals *load_ok(fixture *f, const char *text)
{
    principals *p = load(f, text);
    if (p == NULL) {
        fail_msg("keys file refused: %s", f->err);
    }
    return p;
}

/* The keys file is refused with a message naming it and, when line > 0, the line, and
 * holding each of the non-NULL needles. */
static void assert_refused(fixture *f, const char *text, int line, const char *needle1,
                           const char *needle2)
{
    char want[200];
    principals *p = load(f, text);
    if (p != NULL) {
        principals_destroy(&p);
        fail_msg("keys file accepted:\n%s", text);
    }
    if (line > 0) {
        snprintf(want, sizeof want, "%s:%d:", f->path, line);
    } else {
        snprintf(want, sizeof want, "%s", f->path);
    }
    assert_contains(f->err, want);
    if (needle1 != NULL) {
        assert_contains(f->err, needle1);
    }
    if (needle2 != NULL) {
        assert_contains(f->err, needle2);
    }
}

static principal *by_name(principals *p, const char *name)
{
    principal *pr = principals_by_name(p, gl_str_c(name));
    if (pr == NULL) {
        fail_msg("no principal \"%s\"", name);
    }
    return pr;
}

/* ---- principals: loading ---- */

static void test_keys_file_loads_roles_scopes_and_limits(void **state)
{
    fixture *f = *state;
    principals *p = load_ok(f,
        "clients = (\n"
        "  { name = \"hotline-desk-1\"; key = \"" KEY_A "\"; role = \"hotline\"; },\n"
        "  { name = \"d1-housing\"; key = \"" KEY_B "\"; role = \"unit\";\n"
        "    scope = \"D01-HOUSING\"; },\n"
        "  { name = \"d1-supervision\"; key = \"" KEY_C "\"; role = \"supervisor\";\n"
        "    scope = \"D01\"; rate = 200; burst = 400; max_in_flight = 64; },\n"
        "  { name = \"ca-feed\"; key = \"" KEY_D "\"; role = \"observer\"; rate = 2.5; },\n"
        "  { name = \"gw-c01\"; key = \"" KEY_E "\"; role = \"grid\"; scope = \"D01-S01-C01\"; },\n"
        "  { name = \"root\"; key = \"" KEY_F "\"; role = \"admin\"; rate = 0.25; },\n"
        "  { name = \"window-1\"; key = \"" KEY_G "\"; role = \"window\"; burst = 3; rate = 10; }\n"
        ");\n");
    const city *town = f->town;

    assert_true(principals_secure(p));
    assert_int_equal(principals_count(p), 7);
    assert_null(principals_dev_principal(p));

    principal *h = by_name(p, "hotline-desk-1");
    assert_int_equal(h->role, ROLE_HOTLINE);
    assert_string_equal(h->key, KEY_A);
    assert_int_equal(h->unit, -1);
    assert_int_equal(h->place, -1);
    assert_true(h->sees_reporter);
    assert_true(h->rate == 0);                 /* no limit by default */
    assert_int_equal(h->max_in_flight, 1024);

    principal *u = by_name(p, "d1-housing");
    assert_int_equal(u->role, ROLE_UNIT);
    assert_int_equal(u->unit, city_unit_find(town, gl_str_c("D01-HOUSING")));
    assert_true(u->unit >= 0);
    assert_int_equal(u->place, -1);
    assert_true(u->sees_reporter);

    principal *s = by_name(p, "d1-supervision");
    assert_int_equal(s->role, ROLE_SUPERVISOR);
    assert_int_equal(s->place, city_place_find(town, gl_str_c("D01")));
    assert_true(s->place >= 0);
    assert_false(s->sees_reporter);
    assert_true(s->rate == 200 && s->burst == 400);
    assert_int_equal(s->max_in_flight, 64);

    principal *o = by_name(p, "ca-feed");
    assert_int_equal(o->role, ROLE_OBSERVER);
    assert_false(o->sees_reporter);
    assert_true(o->rate == 2.5 && o->burst == 5);   /* burst defaults to 2 x rate */

    principal *g = by_name(p, "gw-c01");
    assert_int_equal(g->role, ROLE_GRID);
    assert_int_equal(g->place, city_place_find(town, gl_str_c("D01-S01-C01")));
    assert_true(g->sees_reporter);

    principal *a = by_name(p, "root");
    assert_int_equal(a->role, ROLE_ADMIN);
    assert_true(a->sees_reporter);
    assert_true(a->rate == 0.25 && a->burst == 1);  /* a bucket holds one request at least */

    principal *w = by_name(p, "window-1");
    assert_int_equal(w->role, ROLE_WINDOW);
    assert_true(w->rate == 10 && w->burst == 3);

    principals_destroy(&p);
    assert_null(p);
    principals_destroy(&p);   /* safe twice */
}

static void test_key_file_is_read_relative_to_the_keys_file_folder(void **state)
{
    fixture *f = *state;
    keyfile_keys k;
    gl_error ge;
    char path[200], text[600];

    memset(&k, 0, sizeof k);
    memcpy(k.public_key, KEY_A, sizeof k.public_key);
    snprintf(path, sizeof path, "%s/pub", f->dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/pub/desk-1.pub", f->dir);
    assert_int_equal(keyfile_write(path, &k, "desk-1", &ge), 0);

    /* A secret file serves too: its public half is the client's key. */
    memcpy(k.public_key, KEY_B, sizeof k.public_key);
    memcpy(k.secret_key, KEY_G, sizeof k.secret_key);
    snprintf(path, sizeof path, "%s/desk-2.key", f->dir);
    assert_int_equal(keyfile_write(path, &k, "desk-2", &ge), 0);

    /* And an absolute path. */
    memset(&k, 0, sizeof k);
    memcpy(k.public_key, KEY_C, sizeof k.public_key);
    snprintf(path, sizeof path, "%s/pub/desk-3.pub", f->dir);
    assert_int_equal(keyfile_write(path, &k, "desk-3", &ge), 0);

    snprintf(text, sizeof text,
             "clients = (\n"
             "  { name = \"desk-1\"; key_file = \"pub/desk-1.pub\"; role = \"hotline\"; },\n"
             "  { name = \"desk-2\"; key_file = \"desk-2.key\"; role = \"window\"; },\n"
             "  { name = \"desk-3\"; key_file = \"%s\"; role = \"observer\"; }\n"
             ");\n", path);
    principals *p = load_ok(f, text);
    assert_string_equal(by_name(p, "desk-1")->key, KEY_A);
    assert_string_equal(by_name(p, "desk-2")->key, KEY_B);
    assert_string_equal(by_name(p, "desk-3")->key, KEY_C);
    assert_ptr_equal(principals_by_key(p, KEY_B), by_name(p, "desk-2"));
    principals_destroy(&p);

    /* Relative to the keys file's folder, not to the working directory. */
    assert_refused(f, HEAD "  { name = \"desk-9\"; key_file = \"desk-9.pub\"; "
                   "role = \"hotline\"; }\n" TAIL, 3, "\"desk-9\"", "desk-9.pub");
    char want[200];
    snprintf(want, sizeof want, "%s/desk-9.pub", f->dir);
    assert_contains(f->err, want);
}

static void test_unknown_role_names_file_line_and_client(void **state)
{
    assert_refused(*state, HEAD "  { name = \"mayor\"; key = \"" KEY_A "\"; role = \"mayor\"; }\n"
                   TAIL, 3, "\"mayor\"", "role");
    assert_refused(*state, HEAD "  { name = \"nobody\"; key = \"" KEY_A "\"; }\n" TAIL, 3,
                   "\"nobody\"", "role");
}

static void test_unit_needs_a_unit_code_as_its_scope(void **state)
{
    /* No scope. */
    assert_refused(*state, HEAD "  { name = \"u\"; key = \"" KEY_A "\"; role = \"unit\"; }\n"
                   TAIL, 3, "\"u\"", "unit codes");
    /* A place, not a unit. */
    assert_refused(*state, HEAD "  { name = \"u\"; key = \"" KEY_A "\"; role = \"unit\"; "
                   "scope = \"D01\"; }\n" TAIL, 3, "\"u\"", "\"D01\"");
    /* No such unit. */
    assert_refused(*state, HEAD "  { name = \"u\"; key = \"" KEY_A "\"; role = \"unit\"; "
                   "scope = \"D09-HOUSING\"; }\n" TAIL, 3, "\"u\"", "D09-HOUSING");
}

static void test_admin_with_a_scope_is_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"boss\"; key = \"" KEY_A "\"; role = \"admin\"; "
                   "scope = \"D01\"; }\n" TAIL, 3, "\"boss\"", "admin");
}

static void test_scope_that_is_not_a_place_is_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"sup\"; key = \"" KEY_A "\"; "
                   "role = \"supervisor\"; scope = \"D09\"; }\n" TAIL, 3, "\"sup\"", "\"D09\"");
    /* A unit code is not a place. */
    assert_refused(*state, HEAD "  { name = \"obs\"; key = \"" KEY_A "\"; "
                   "role = \"observer\"; scope = \"D01-HOUSING\"; }\n" TAIL, 3, "\"obs\"",
                   "D01-HOUSING");
}

/* BUG (daemon/principals.c, read_entry): a scope that is not a string (`scope = 310101;`,
 * an administrative division code written without quotes, or `scope = ["D01"];`) is
 * read as no scope, so a supervisor meant for one place is given the whole city without
 * a word. A setting of the wrong type should be refused with the file and line, as an
 * unknown setting is. */
static void test_scope_that_is_not_a_string_is_refused_not_widened(void **state)
{
    assert_refused(*state, HEAD "  { name = \"sup\"; key = \"" KEY_A "\"; "
                   "role = \"supervisor\"; scope = 310101; }\n" TAIL, 3, "\"sup\"", "scope");
    assert_refused(*state, HEAD "  { name = \"sup\"; key = \"" KEY_A "\"; "
                   "role = \"supervisor\"; scope = [\"D01\"]; }\n" TAIL, 3, "\"sup\"", "scope");
}

/* BUG (daemon/principals.c, read_entry): `reporter`, `rate`, `burst` and
 * `max_in_flight` of the wrong type are ignored and the defaults used: `reporter =
 * "false";` leaves a hotline seeing reporters it was meant not to, `reporter = 1;` a
 * supervisor not seeing them, `rate = "10";` leaves the client unthrottled. They
 * should be refused with the file and line. */
static void test_settings_of_the_wrong_type_are_refused_not_ignored(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; reporter = \"false\"; }\n" TAIL, 3, "\"desk\"",
                   "reporter");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; rate = \"10\"; }\n" TAIL, 3, "\"desk\"", "rate");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; max_in_flight = 1.5; }\n" TAIL, 3, "\"desk\"",
                   "max_in_flight");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; rate = 5; burst = \"x\"; }\n" TAIL, 3, "\"desk\"",
                   "burst");
    assert_refused(*state, HEAD "  { name = \"sup\"; key = \"" KEY_A "\"; "
                   "role = \"supervisor\"; reporter = 1; }\n" TAIL, 3, "\"sup\"",
                   "reporter");
}

static void test_bad_key_is_refused(void **state)
{
    const char *keys[] = { KEY_A, KEY_B, KEY_C, KEY_D, KEY_E, KEY_F, KEY_G, KEY_H, KEY_I };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_true(keyfile_z85_valid(keys[i]));
    }
    assert_false(keyfile_z85_valid(KEY_39));
    assert_false(keyfile_z85_valid(KEY_TILDE));
    /* 39 characters. */
    assert_refused(*state, HEAD "  { name = \"k\"; key = \"" KEY_39 "\"; "
                   "role = \"hotline\"; }\n" TAIL, 3, "\"k\"", "40 Z85");
    /* A character outside Z85. */
    assert_refused(*state, HEAD "  { name = \"k\"; key = \"" KEY_TILDE "\"; "
                   "role = \"hotline\"; }\n" TAIL, 3, "\"k\"", "40 Z85");
}

static void test_key_and_key_file_are_one_or_the_other(void **state)
{
    assert_refused(*state, HEAD "  { name = \"both\"; key = \"" KEY_A "\"; key_file = \"x.pub\"; "
                   "role = \"hotline\"; }\n" TAIL, 3, "\"both\"", "key_file");
    assert_refused(*state, HEAD "  { name = \"neither\"; role = \"hotline\"; }\n" TAIL, 3,
                   "\"neither\"", "key_file");
}

static void test_names_must_be_present_short_and_without_spaces(void **state)
{
    assert_refused(*state, HEAD "  { key = \"" KEY_A "\"; role = \"hotline\"; }\n" TAIL, 3,
                   "name", NULL);
    assert_refused(*state, HEAD "  { name = \"\"; key = \"" KEY_A "\"; role = \"hotline\"; }\n"
                   TAIL, 3, "name", NULL);
    assert_refused(*state, HEAD "  { name = \"desk 1\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; }\n" TAIL, 3, "\"desk 1\"", NULL);
    assert_refused(*state, HEAD "  { name = \"" NAME_65 "\"; "
                   "key = \"" KEY_A "\"; role = \"hotline\"; }\n" TAIL, 3, "name", NULL);
    /* 64 bytes is the limit, and it is allowed. */
    fixture *f = *state;
    principals *p = load_ok(f, HEAD "  { name = \"" NAME_64 "\"; key = \"" KEY_A "\"; "
                            "role = \"hotline\"; }\n" TAIL);
    assert_int_equal(strlen(NAME_64), 64);
    assert_non_null(by_name(p, NAME_64));
    principals_destroy(&p);
}

static void test_duplicate_names_are_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; },\n"
                   "  { name = \"desk\"; key = \"" KEY_B "\"; role = \"window\"; }\n" TAIL, 0,
                   "\"desk\"", NULL);
}

static void test_duplicate_keys_are_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk-1\"; key = \"" KEY_A "\"; "
                   "role = \"hotline\"; },\n"
                   "  { name = \"desk-2\"; key = \"" KEY_A "\"; role = \"window\"; }\n" TAIL, 0,
                   "\"desk-1\"", "\"desk-2\"");
    /* The same key given once inline and once through a file is the same key. */
    fixture *f = *state;
    keyfile_keys k;
    gl_error ge;
    char path[200];
    memset(&k, 0, sizeof k);
    memcpy(k.public_key, KEY_H, sizeof k.public_key);
    snprintf(path, sizeof path, "%s/same-as-ok.pub", f->dir);
    assert_int_equal(keyfile_write(path, &k, "dup", &ge), 0);
    assert_refused(f, HEAD "  { name = \"dup\"; key_file = \"same-as-ok.pub\"; "
                   "role = \"hotline\"; }\n" TAIL, 0, "\"ok\"", "\"dup\"");
}

static void test_unknown_setting_is_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "colour = \"blue\"; }\n" TAIL, 3, "\"desk\"", "\"colour\"");
    /* A misspelt limit is not silently ignored either. */
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "max_inflight = 4; }\n" TAIL, 3, "\"desk\"", "max_inflight");
}

static void test_negative_rate_or_burst_is_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "rate = -1; }\n" TAIL, 3, "\"desk\"", "rate");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "rate = -0.5; }\n" TAIL, 3, "\"desk\"", "rate");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "rate = 5; burst = -2; }\n" TAIL, 3, "\"desk\"", "burst");
}

static void test_max_in_flight_zero_is_refused(void **state)
{
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "max_in_flight = 0; }\n" TAIL, 3, "\"desk\"", "max_in_flight");
    assert_refused(*state, HEAD "  { name = \"desk\"; key = \"" KEY_A "\"; role = \"hotline\"; "
                   "max_in_flight = -5; }\n" TAIL, 3, "\"desk\"", "max_in_flight");
}

static void test_empty_or_missing_clients_list_is_refused(void **state)
{
    assert_refused(*state, "clients = ();\n", 0, "at least one client", NULL);
    assert_refused(*state, "# nothing here\n", 0, "clients", NULL);
    assert_refused(*state, "clients = { name = \"x\"; };\n", 0, "clients", NULL);
    /* A client that is not a group: libconfig places a scalar on the line where it
     * ends (here the ')' on line 3), so only "file:<line>:" is asked for. */
    fixture *f = *state;
    char want[200];
    assert_refused(f, "clients = (\n  \"desk\"\n);\n", 0, "group", NULL);
    snprintf(want, sizeof want, "%s:", f->path);
    const char *at = strstr(f->err, want);
    assert_non_null(at);
    assert_true(at[strlen(want)] >= '1' && at[strlen(want)] <= '9');
}

static void test_syntax_error_and_missing_file_name_the_file(void **state)
{
    fixture *f = *state;
    assert_refused(f, "clients = (\n  { name = \"desk\" key = \"x\"; }\n);\n", 2, NULL, NULL);

    char path[200];
    snprintf(path, sizeof path, "%s/no-such-keys.cfg", f->dir);
    assert_null(principals_load(path, f->town, f->err, sizeof f->err));
    assert_contains(f->err, path);
}

/* ---- principals: look-ups and development mode ---- */

static void test_lookups_find_entries_and_not_strangers(void **state)
{
    fixture *f = *state;
    principals *p = load_ok(f,
        "clients = (\n"
        "  { name = \"zeta\"; key = \"" KEY_C "\"; role = \"hotline\"; },\n"
        "  { name = \"alpha\"; key = \"" KEY_A "\"; role = \"observer\"; },\n"
        "  { name = \"mid\"; key = \"" KEY_B "\"; role = \"admin\"; }\n"
        ");\n");

    assert_string_equal(principals_by_key(p, KEY_A)->name, "alpha");
    assert_string_equal(principals_by_key(p, KEY_B)->name, "mid");
    assert_string_equal(principals_by_key(p, KEY_C)->name, "zeta");
    assert_null(principals_by_key(p, KEY_D));
    assert_null(principals_by_key(p, ""));

    assert_string_equal(by_name(p, "zeta")->key, KEY_C);
    assert_ptr_equal(by_name(p, "alpha"), principals_by_key(p, KEY_A));
    assert_null(principals_by_name(p, gl_str_c("stranger")));
    assert_null(principals_by_name(p, gl_str_c("")));
    assert_null(principals_by_name(p, gl_str_c("alph")));
    assert_null(principals_by_name(p, gl_str_c("alphaa")));
    /* A borrowed name, not NUL-terminated. */
    assert_ptr_equal(principals_by_name(p, gl_str_of("midnight", 3)), by_name(p, "mid"));
    char longname[200];
    memset(longname, 'a', sizeof longname);
    assert_null(principals_by_name(p, gl_str_of(longname, sizeof longname)));
    /* No development principal in a keyed table, and "dev" is nobody. */
    assert_null(principals_dev_principal(p));
    assert_null(principals_by_name(p, gl_str_c("dev")));
    principals_destroy(&p);
}

static void test_dev_table_has_one_admin_named_dev(void **state)
{
    (void)state;
    principals *p = principals_dev();
    assert_non_null(p);
    assert_false(principals_secure(p));
    assert_int_equal(principals_count(p), 1);

    principal *d = principals_dev_principal(p);
    assert_non_null(d);
    assert_string_equal(d->name, "dev");
    assert_int_equal(d->role, ROLE_ADMIN);
    assert_int_equal(d->unit, -1);
    assert_int_equal(d->place, -1);
    assert_true(d->sees_reporter);
    assert_ptr_equal(principals_by_name(p, gl_str_c("dev")), d);
    /* Its empty key is no key: nobody is admitted by key in development mode. */
    assert_null(principals_by_key(p, ""));
    assert_null(principals_by_key(p, KEY_A));
    assert_int_equal(access_pack_flags(d), 0);
    principals_destroy(&p);
    assert_null(p);
    principals_destroy(&p);
}

/* ---- access: the policy table ---- */

static principal who(const city *town, principal_role role, const char *name,
                     const char *scope)
{
    principal p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.role = role;
    p.unit = -1;
    p.place = -1;
    if (role == ROLE_UNIT) {
        p.unit = city_unit_find(town, gl_str_c(scope));
        assert_true(p.unit >= 0);
    } else if (scope != NULL) {
        p.place = city_place_find(town, gl_str_c(scope));
        assert_true(p.place >= 0);
    }
    p.sees_reporter = role != ROLE_SUPERVISOR && role != ROLE_OBSERVER;
    p.max_in_flight = 1024;
    return p;
}

static void assert_forbidden(int rc, const gl_error *err)
{
    assert_int_equal(rc, GL_EFORBIDDEN);
    assert_int_equal(err->code, GL_EFORBIDDEN);
    assert_true(err->message[0] != '\0');
}

#define SVC(x) (1u << (x))
#define ACT(x) (1u << (x))

static const unsigned all_services = SVC(SVC_COUNT) - 1u;
static const unsigned all_actions = ACT(ACT_COUNT) - 1u;

static void test_each_role_uses_the_services_of_the_table(void **state)
{
    fixture *f = *state;
    const unsigned allowed[ROLE_COUNT] = {
        [ROLE_HOTLINE] = all_services,
        [ROLE_WINDOW] = all_services,
        [ROLE_GRID] = SVC(SVC_CREATE) | SVC(SVC_GET) | SVC(SVC_LIST) | SVC(SVC_CATALOG),
        [ROLE_UNIT] = all_services & ~SVC(SVC_CREATE),
        [ROLE_SUPERVISOR] = all_services & ~SVC(SVC_CREATE),
        [ROLE_OBSERVER] = all_services & ~SVC(SVC_CREATE),
        [ROLE_ADMIN] = all_services,
    };
    for (int r = 0; r < ROLE_COUNT; r++) {
        principal p = who(f->town, (principal_role)r, "someone",
                          r == ROLE_UNIT ? "D01-HOUSING" : NULL);
        for (int s = 0; s < SVC_COUNT; s++) {
            gl_error err;
            gl_error_clear(&err);
            int rc = access_service_allowed(&p, (access_service)s, &err);
            if ((allowed[r] & SVC(s)) != 0) {
                if (rc != 0) {
                    fail_msg("role %s refused service %d: %s", principal_role_name(p.role),
                             s, err.message);
                }
            } else {
                if (rc != GL_EFORBIDDEN) {
                    fail_msg("role %s allowed service %d", principal_role_name(p.role), s);
                }
                assert_forbidden(rc, &err);
                assert_contains(err.message, "someone");
            }
        }
    }
}

static void test_each_role_takes_the_actions_of_the_table(void **state)
{
    fixture *f = *state;
    const unsigned allowed[ROLE_COUNT] = {
        [ROLE_HOTLINE] = ACT(ACT_CALLBACK) | ACT(ACT_WITHDRAW) | ACT(ACT_NOTE),
        [ROLE_WINDOW] = ACT(ACT_CALLBACK) | ACT(ACT_WITHDRAW) | ACT(ACT_NOTE),
        [ROLE_GRID] = 0,
        [ROLE_UNIT] = ACT(ACT_ACCEPT) | ACT(ACT_NOTE) | ACT(ACT_RESOLVE) | ACT(ACT_RETURN)
                      | ACT(ACT_EXTEND),
        [ROLE_SUPERVISOR] = ACT(ACT_APPROVE_EXTENSION) | ACT(ACT_REJECT_EXTENSION)
                            | ACT(ACT_URGE) | ACT(ACT_SUPERVISE) | ACT(ACT_ESCALATE)
                            | ACT(ACT_REASSIGN) | ACT(ACT_MERGE) | ACT(ACT_NOTE),
        [ROLE_OBSERVER] = ACT(ACT_NOTE),
        [ROLE_ADMIN] = all_actions,
    };
    for (int r = 0; r < ROLE_COUNT; r++) {
        principal p = who(f->town, (principal_role)r, "someone",
                          r == ROLE_UNIT ? "D01-HOUSING" : NULL);
        for (int a = 0; a < ACT_COUNT; a++) {
            gl_error err;
            gl_error_clear(&err);
            int rc = access_action(&p, (case_action)a, &err);
            if ((allowed[r] & ACT(a)) != 0) {
                if (rc != 0) {
                    fail_msg("role %s refused %s: %s", principal_role_name(p.role),
                             case_action_name((case_action)a), err.message);
                }
            } else {
                if (rc != GL_EFORBIDDEN) {
                    fail_msg("role %s allowed %s", principal_role_name(p.role),
                             case_action_name((case_action)a));
                }
                assert_forbidden(rc, &err);
                assert_string_equal(err.field, "action");
                assert_contains(err.message, case_action_name((case_action)a));
            }
        }
    }
}

static void test_service_names_parse(void **state)
{
    (void)state;
    assert_int_equal(access_service_parse(gl_str_c("case.create")), SVC_CREATE);
    assert_int_equal(access_service_parse(gl_str_c("case.get")), SVC_GET);
    assert_int_equal(access_service_parse(gl_str_c("case.list")), SVC_LIST);
    assert_int_equal(access_service_parse(gl_str_c("case.act")), SVC_ACT);
    assert_int_equal(access_service_parse(gl_str_c("feed.pull")), SVC_FEED);
    assert_int_equal(access_service_parse(gl_str_c("stats.query")), SVC_STATS);
    assert_int_equal(access_service_parse(gl_str_c("catalog.get")), SVC_CATALOG);
    assert_int_equal(access_service_parse(gl_str_c("mmi.service")), -1);
    assert_int_equal(access_service_parse(gl_str_c("case.creat")), -1);
    assert_int_equal(access_service_parse(gl_str_c("")), -1);
}

/* ---- access: which cases ---- */

static case_record kase(const char *unit, const char *created_by, const char *district,
                        const char *street, const char *community, const char *grid)
{
    case_record c;
    memset(&c, 0, sizeof c);
    c.id = 1;
    c.unit = gl_str_c(unit);
    c.created_by = gl_str_c(created_by);
    c.location.district = gl_str_c(district);
    c.location.street = gl_str_c(street);
    c.location.community = gl_str_c(community);
    c.location.grid = gl_str_c(grid);
    return c;
}

static int sees(const principal *p, const city *town, const case_record *c)
{
    gl_error err;
    gl_error_clear(&err);
    int rc = access_case(p, town, c, &err);
    if (rc != 0) {
        assert_forbidden(rc, &err);
    }
    return rc == 0;
}

static void test_unit_sees_only_the_cases_it_handles(void **state)
{
    fixture *f = *state;
    principal u = who(f->town, ROLE_UNIT, "d1-housing", "D01-HOUSING");
    case_record mine = kase("D01-HOUSING", "desk", "D01", "D01-S01", NULL, NULL);
    case_record other = kase("D01-CIVIL", "desk", "D01", "D01-S01", NULL, NULL);
    case_record undispatched = kase(NULL, "desk", "D01", NULL, NULL, NULL);
    /* Wherever the case is: a unit follows its cases, not a place. */
    case_record far = kase("D01-HOUSING", "desk", "D02", NULL, NULL, NULL);
    case_record prefix = kase("D01-HOUSIN", "desk", "D01", NULL, NULL, NULL);

    assert_true(sees(&u, f->town, &mine));
    assert_true(sees(&u, f->town, &far));
    assert_false(sees(&u, f->town, &other));
    assert_false(sees(&u, f->town, &undispatched));
    assert_false(sees(&u, f->town, &prefix));
    /* Without an err to fill, the answer is the same. */
    assert_int_equal(access_case(&u, f->town, &other, NULL), GL_EFORBIDDEN);
}

static void test_grid_sees_only_what_it_registered_within_its_place(void **state)
{
    fixture *f = *state;
    principal g = who(f->town, ROLE_GRID, "gw-c01", "D01-S01-C01");
    principal any = who(f->town, ROLE_GRID, "gw-c01", NULL);
    case_record mine = kase("D01-HOUSING", "gw-c01", "D01", "D01-S01", "D01-S01-C01", NULL);
    case_record theirs = kase("D01-HOUSING", "gw-c02", "D01", "D01-S01", "D01-S01-C01", NULL);
    case_record mine_elsewhere = kase(NULL, "gw-c01", "D01", "D01-S01", "D01-S01-C02", NULL);
    case_record anonymous = kase(NULL, NULL, "D01", "D01-S01", "D01-S01-C01", NULL);

    assert_true(sees(&g, f->town, &mine));
    assert_false(sees(&g, f->town, &theirs));
    assert_false(sees(&g, f->town, &mine_elsewhere));
    assert_false(sees(&g, f->town, &anonymous));

    assert_true(sees(&any, f->town, &mine));
    assert_true(sees(&any, f->town, &mine_elsewhere));
    assert_false(sees(&any, f->town, &theirs));
    assert_false(sees(&any, f->town, &anonymous));
}

static void test_place_scoped_roles_see_the_cases_at_their_place(void **state)
{
    fixture *f = *state;
    const city *t = f->town;
    case_record d1 = kase("D01-HOUSING", "desk", "D01", NULL, NULL, NULL);
    case_record d1s1 = kase("D01-HOUSING", "desk", "D01", "D01-S01", NULL, NULL);
    case_record d1s2 = kase("D01-HOUSING", "desk", "D01", "D01-S02", NULL, NULL);
    case_record c01 = kase("D01-HOUSING", "desk", "D01", "D01-S01", "D01-S01-C01", NULL);
    case_record c02 = kase("D01-HOUSING", "desk", "D01", "D01-S01", "D01-S01-C02", NULL);
    case_record g01 = kase(NULL, "desk", "D01", "D01-S01", "D01-S01-C01", "D01-S01-C01-G01");
    case_record g02 = kase(NULL, "desk", "D01", "D01-S01", "D01-S01-C01", "D01-S01-C01-G02");
    case_record d2 = kase("D02-HOUSING", "desk", "D02", "D02-S01", NULL, NULL);

    /* A district. */
    principal_role place_roles[] = { ROLE_SUPERVISOR, ROLE_OBSERVER, ROLE_HOTLINE,
                                     ROLE_WINDOW };
    for (size_t i = 0; i < sizeof place_roles / sizeof place_roles[0]; i++) {
        principal p = who(t, place_roles[i], "p", "D01");
        assert_true(sees(&p, t, &d1));
        assert_true(sees(&p, t, &d1s2));
        assert_true(sees(&p, t, &g02));
        assert_false(sees(&p, t, &d2));

        principal city_wide = who(t, place_roles[i], "p", NULL);
        assert_true(sees(&city_wide, t, &d1));
        assert_true(sees(&city_wide, t, &d2));
    }

    /* A street: a case known only by its district is not in it. */
    principal st = who(t, ROLE_SUPERVISOR, "s1", "D01-S01");
    assert_true(sees(&st, t, &d1s1));
    assert_true(sees(&st, t, &c02));
    assert_false(sees(&st, t, &d1s2));
    assert_false(sees(&st, t, &d1));
    assert_false(sees(&st, t, &d2));

    /* A community. */
    principal co = who(t, ROLE_OBSERVER, "c1", "D01-S01-C01");
    assert_true(sees(&co, t, &c01));
    assert_true(sees(&co, t, &g02));
    assert_false(sees(&co, t, &c02));
    assert_false(sees(&co, t, &d1s1));

    /* A grid cell. */
    principal gc = who(t, ROLE_SUPERVISOR, "g1", "D01-S01-C01-G01");
    assert_true(sees(&gc, t, &g01));
    assert_false(sees(&gc, t, &g02));
    assert_false(sees(&gc, t, &c01));
}

static void test_admin_sees_every_case(void **state)
{
    fixture *f = *state;
    principal a = who(f->town, ROLE_ADMIN, "root", NULL);
    case_record cases[] = {
        kase("D01-HOUSING", "desk", "D01", NULL, NULL, NULL),
        kase(NULL, NULL, "D02", "D02-S01", "D02-S01-C01", "D02-S01-C01-G01"),
        kase("D01-CIVIL", "gw-9", "D03", NULL, NULL, NULL),
        kase(NULL, NULL, NULL, NULL, NULL, NULL),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(sees(&a, f->town, &cases[i]));
    }
}

static void test_create_within_the_place_only(void **state)
{
    fixture *f = *state;
    const city *t = f->town;
    gl_error err;
    case_location in_d1 = { .district = gl_str_c("D01") };
    case_location in_d2 = { .district = gl_str_c("D02") };
    case_location in_c01 = { .district = gl_str_c("D01"), .street = gl_str_c("D01-S01"),
                             .community = gl_str_c("D01-S01-C01") };
    case_location in_g01 = { .district = gl_str_c("D01"), .street = gl_str_c("D01-S01"),
                             .community = gl_str_c("D01-S01-C01"),
                             .grid = gl_str_c("D01-S01-C01-G01") };

    principal city_wide = who(t, ROLE_HOTLINE, "desk", NULL);
    assert_int_equal(access_create(&city_wide, t, &in_d1, &err), 0);
    assert_int_equal(access_create(&city_wide, t, &in_d2, &err), 0);

    principal d1 = who(t, ROLE_WINDOW, "window-d1", "D01");
    assert_int_equal(access_create(&d1, t, &in_d1, &err), 0);
    assert_int_equal(access_create(&d1, t, &in_c01, &err), 0);
    gl_error_clear(&err);
    assert_forbidden(access_create(&d1, t, &in_d2, &err), &err);
    assert_string_equal(err.field, "location.district");
    assert_contains(err.message, "D01");

    principal gw = who(t, ROLE_GRID, "gw-c01", "D01-S01-C01");
    assert_int_equal(access_create(&gw, t, &in_c01, &err), 0);
    assert_int_equal(access_create(&gw, t, &in_g01, &err), 0);
    gl_error_clear(&err);
    assert_forbidden(access_create(&gw, t, &in_d1, &err), &err);
    assert_string_equal(err.field, "location.community");

    principal cell = who(t, ROLE_GRID, "gw-g01", "D01-S01-C01-G01");
    assert_int_equal(access_create(&cell, t, &in_g01, &err), 0);
    gl_error_clear(&err);
    assert_forbidden(access_create(&cell, t, &in_c01, &err), &err);
    assert_string_equal(err.field, "location.grid");

    principal admin = who(t, ROLE_ADMIN, "root", NULL);
    assert_int_equal(access_create(&admin, t, &in_d2, &err), 0);
}

/* ---- access: narrowing list and feed filters ---- */

static request_filter empty_filter(void)
{
    request_filter fl;
    memset(&fl, 0, sizeof fl);
    fl.state = -1;
    fl.channel = -1;
    fl.overdue = -1;
    fl.supervised = -1;
    return fl;
}

static void test_list_is_narrowed_to_the_unit(void **state)
{
    fixture *f = *state;
    gl_error err;
    principal u = who(f->town, ROLE_UNIT, "d1-housing", "D01-HOUSING");

    request_filter fl = empty_filter();
    assert_int_equal(access_list(&u, f->town, &fl, &err), 0);
    assert_true(gl_str_eq(fl.unit, "D01-HOUSING"));
    assert_int_equal(fl.district.n, 0);

    fl = empty_filter();
    fl.unit = gl_str_c("D01-HOUSING");
    fl.district = gl_str_c("D02");   /* narrower within the unit: its business */
    assert_int_equal(access_list(&u, f->town, &fl, &err), 0);
    assert_true(gl_str_eq(fl.unit, "D01-HOUSING"));
    assert_true(gl_str_eq(fl.district, "D02"));

    fl = empty_filter();
    fl.unit = gl_str_c("D01-CIVIL");
    gl_error_clear(&err);
    assert_forbidden(access_list(&u, f->town, &fl, &err), &err);
    assert_true(gl_str_eq(fl.unit, "D01-CIVIL"));   /* a refusal changes nothing */
}

static void test_list_is_narrowed_to_the_place(void **state)
{
    fixture *f = *state;
    const city *t = f->town;
    gl_error err;

    principal sup = who(t, ROLE_SUPERVISOR, "d1-sup", "D01");
    request_filter fl = empty_filter();
    assert_int_equal(access_list(&sup, t, &fl, &err), 0);
    assert_true(gl_str_eq(fl.district, "D01"));
    assert_int_equal(fl.unit.n, 0);
    assert_int_equal(fl.street.n, 0);

    fl = empty_filter();
    fl.district = gl_str_c("D01");
    fl.street = gl_str_c("D01-S02");
    fl.unit = gl_str_c("D01-CIVIL");
    assert_int_equal(access_list(&sup, t, &fl, &err), 0);
    assert_true(gl_str_eq(fl.district, "D01"));
    assert_true(gl_str_eq(fl.street, "D01-S02"));
    assert_true(gl_str_eq(fl.unit, "D01-CIVIL"));

    fl = empty_filter();
    fl.district = gl_str_c("D02");
    gl_error_clear(&err);
    assert_forbidden(access_list(&sup, t, &fl, &err), &err);
    assert_true(gl_str_eq(fl.district, "D02"));

    principal st = who(t, ROLE_OBSERVER, "s1-obs", "D01-S01");
    fl = empty_filter();
    assert_int_equal(access_list(&st, t, &fl, &err), 0);
    assert_true(gl_str_eq(fl.street, "D01-S01"));
    assert_int_equal(fl.district.n, 0);

    principal co = who(t, ROLE_HOTLINE, "c1-desk", "D01-S01-C01");
    fl = empty_filter();
    assert_int_equal(access_list(&co, t, &fl, &err), 0);
    assert_true(gl_str_eq(fl.community, "D01-S01-C01"));
    fl = empty_filter();
    fl.community = gl_str_c("D01-S01-C02");
    gl_error_clear(&err);
    assert_forbidden(access_list(&co, t, &fl, &err), &err);

    principal gc = who(t, ROLE_GRID, "gw-g01", "D01-S01-C01-G01");
    fl = empty_filter();
    assert_int_equal(access_list(&gc, t, &fl, &err), 0);
    assert_true(gl_str_eq(fl.grid, "D01-S01-C01-G01"));
}

static void test_list_of_unscoped_principals_is_untouched(void **state)
{
    fixture *f = *state;
    gl_error err;
    principal_role roles[] = { ROLE_HOTLINE, ROLE_WINDOW, ROLE_GRID, ROLE_SUPERVISOR,
                               ROLE_OBSERVER, ROLE_ADMIN };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        principal p = who(f->town, roles[i], "p", NULL);
        request_filter fl = empty_filter();
        assert_int_equal(access_list(&p, f->town, &fl, &err), 0);
        assert_int_equal(fl.unit.n + fl.district.n + fl.street.n + fl.community.n
                         + fl.grid.n, 0);
        fl.unit = gl_str_c("D02-HOUSING");
        fl.district = gl_str_c("D03");
        assert_int_equal(access_list(&p, f->town, &fl, &err), 0);
        assert_true(gl_str_eq(fl.unit, "D02-HOUSING"));
        assert_true(gl_str_eq(fl.district, "D03"));
    }
}

static request_feed empty_feed(void)
{
    request_feed fd;
    memset(&fd, 0, sizeof fd);
    fd.limit = REQUEST_FEED_DEFAULT;
    return fd;
}

static void test_feed_is_cut_by_unit_or_district(void **state)
{
    fixture *f = *state;
    const city *t = f->town;
    gl_error err;

    principal u = who(t, ROLE_UNIT, "d1-housing", "D01-HOUSING");
    request_feed fd = empty_feed();
    assert_int_equal(access_feed(&u, t, &fd, &err), 0);
    assert_true(gl_str_eq(fd.unit, "D01-HOUSING"));
    fd = empty_feed();
    fd.unit = gl_str_c("D01-CIVIL");
    gl_error_clear(&err);
    assert_forbidden(access_feed(&u, t, &fd, &err), &err);
    assert_true(gl_str_eq(fd.unit, "D01-CIVIL"));

    principal d1 = who(t, ROLE_SUPERVISOR, "d1-sup", "D01");
    fd = empty_feed();
    fd.category = gl_str_c("roads");
    assert_int_equal(access_feed(&d1, t, &fd, &err), 0);
    assert_true(gl_str_eq(fd.district, "D01"));
    assert_true(gl_str_eq(fd.category, "roads"));
    assert_int_equal(fd.unit.n, 0);
    fd = empty_feed();
    fd.district = gl_str_c("D01");
    assert_int_equal(access_feed(&d1, t, &fd, &err), 0);
    fd = empty_feed();
    fd.district = gl_str_c("D02");
    gl_error_clear(&err);
    assert_forbidden(access_feed(&d1, t, &fd, &err), &err);
    assert_true(gl_str_eq(fd.district, "D02"));
}

static void test_feed_of_a_scope_smaller_than_a_district_is_checked_by_case(void **state)
{
    fixture *f = *state;
    const city *t = f->town;
    const char *scopes[] = { "D01-S01", "D01-S01-C01", "D01-S01-C01-G01" };
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        principal p = who(t, ROLE_OBSERVER, "small", scopes[i]);
        request_feed fd = empty_feed();
        gl_error err;
        gl_error_clear(&err);
        /* narrowed to the district above it; each event's case is checked after */
        assert_int_equal(access_feed(&p, t, &fd, &err), 0);
        assert_true(gl_str_eq(fd.district, "D01"));
        assert_true(access_feed_by_case(&p, t));
        fd = empty_feed();
        fd.district = gl_str_c("D02");
        gl_error_clear(&err);
        assert_forbidden(access_feed(&p, t, &fd, &err), &err);
    }
    principal d1 = who(t, ROLE_OBSERVER, "d1", "D01");
    principal u = who(t, ROLE_UNIT, "u", "D01-HOUSING");
    principal city_wide = who(t, ROLE_OBSERVER, "all", NULL);
    assert_false(access_feed_by_case(&d1, t));
    assert_false(access_feed_by_case(&u, t));
    assert_false(access_feed_by_case(&city_wide, t));
}

static void test_feed_of_unscoped_principals_is_untouched(void **state)
{
    fixture *f = *state;
    gl_error err;
    principal_role roles[] = { ROLE_HOTLINE, ROLE_WINDOW, ROLE_SUPERVISOR, ROLE_OBSERVER,
                               ROLE_ADMIN };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        principal p = who(f->town, roles[i], "p", NULL);
        request_feed fd = empty_feed();
        assert_int_equal(access_feed(&p, f->town, &fd, &err), 0);
        assert_int_equal(fd.unit.n + fd.district.n + fd.category.n, 0);
        fd.unit = gl_str_c("D02-HOUSING");
        fd.district = gl_str_c("D03");
        assert_int_equal(access_feed(&p, f->town, &fd, &err), 0);
        assert_true(gl_str_eq(fd.unit, "D02-HOUSING"));
        assert_true(gl_str_eq(fd.district, "D03"));
    }
}

static void test_tap_only_for_the_whole_city_feed(void **state)
{
    fixture *f = *state;
    const city *t = f->town;

    principal_role whole[] = { ROLE_HOTLINE, ROLE_WINDOW, ROLE_SUPERVISOR, ROLE_OBSERVER,
                               ROLE_ADMIN };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        principal p = who(t, whole[i], "p", NULL);
        assert_true(access_tap(&p));
    }
    principal unit = who(t, ROLE_UNIT, "u", "D01-HOUSING");
    principal grid = who(t, ROLE_GRID, "g", NULL);
    principal sup_d1 = who(t, ROLE_SUPERVISOR, "s", "D01");
    principal desk_c1 = who(t, ROLE_HOTLINE, "h", "D01-S01-C01");
    principal obs_d2 = who(t, ROLE_OBSERVER, "o", "D02");
    assert_false(access_tap(&unit));
    assert_false(access_tap(&grid));
    assert_false(access_tap(&sup_d1));
    assert_false(access_tap(&desk_c1));
    assert_false(access_tap(&obs_d2));
}

static void test_reporters_masked_for_supervisors_and_observers_unless_the_file_says(
    void **state)
{
    fixture *f = *state;
    const unsigned masked = CASE_PACK_MASK_NAME | CASE_PACK_MASK_PHONE;
    principals *p = load_ok(f,
        "clients = (\n"
        "  { name = \"sup\"; key = \"" KEY_A "\"; role = \"supervisor\"; },\n"
        "  { name = \"obs\"; key = \"" KEY_B "\"; role = \"observer\"; },\n"
        "  { name = \"obs-ok\"; key = \"" KEY_C "\"; role = \"observer\"; reporter = true; },\n"
        "  { name = \"sup-ok\"; key = \"" KEY_D "\"; role = \"supervisor\"; scope = \"D01\";\n"
        "    reporter = true; },\n"
        "  { name = \"desk\"; key = \"" KEY_E "\"; role = \"hotline\"; },\n"
        "  { name = \"desk-no\"; key = \"" KEY_F "\"; role = \"window\"; reporter = false; },\n"
        "  { name = \"unit\"; key = \"" KEY_G "\"; role = \"unit\"; scope = \"D01-CIVIL\"; },\n"
        "  { name = \"gw\"; key = \"" KEY_H "\"; role = \"grid\"; },\n"
        "  { name = \"root\"; key = \"" KEY_I "\"; role = \"admin\"; }\n"
        ");\n");

    assert_int_equal(access_pack_flags(by_name(p, "sup")), masked);
    assert_int_equal(access_pack_flags(by_name(p, "obs")), masked);
    assert_int_equal(access_pack_flags(by_name(p, "obs-ok")), 0);
    assert_int_equal(access_pack_flags(by_name(p, "sup-ok")), 0);
    assert_int_equal(access_pack_flags(by_name(p, "desk")), 0);
    assert_int_equal(access_pack_flags(by_name(p, "desk-no")), masked);
    assert_int_equal(access_pack_flags(by_name(p, "unit")), 0);
    assert_int_equal(access_pack_flags(by_name(p, "gw")), 0);
    assert_int_equal(access_pack_flags(by_name(p, "root")), 0);
    principals_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_file_loads_roles_scopes_and_limits),
        cmocka_unit_test(test_key_file_is_read_relative_to_the_keys_file_folder),
        cmocka_unit_test(test_unknown_role_names_file_line_and_client),
        cmocka_unit_test(test_unit_needs_a_unit_code_as_its_scope),
        cmocka_unit_test(test_admin_with_a_scope_is_refused),
        cmocka_unit_test(test_scope_that_is_not_a_place_is_refused),
        cmocka_unit_test(test_scope_that_is_not_a_string_is_refused_not_widened),
        cmocka_unit_test(test_settings_of_the_wrong_type_are_refused_not_ignored),
        cmocka_unit_test(test_bad_key_is_refused),
        cmocka_unit_test(test_key_and_key_file_are_one_or_the_other),
        cmocka_unit_test(test_names_must_be_present_short_and_without_spaces),
        cmocka_unit_test(test_duplicate_names_are_refused),
        cmocka_unit_test(test_duplicate_keys_are_refused),
        cmocka_unit_test(test_unknown_setting_is_refused),
        cmocka_unit_test(test_negative_rate_or_burst_is_refused),
        cmocka_unit_test(test_max_in_flight_zero_is_refused),
        cmocka_unit_test(test_empty_or_missing_clients_list_is_refused),
        cmocka_unit_test(test_syntax_error_and_missing_file_name_the_file),
        cmocka_unit_test(test_lookups_find_entries_and_not_strangers),
        cmocka_unit_test(test_dev_table_has_one_admin_named_dev),
        cmocka_unit_test(test_each_role_uses_the_services_of_the_table),
        cmocka_unit_test(test_each_role_takes_the_actions_of_the_table),
        cmocka_unit_test(test_service_names_parse),
        cmocka_unit_test(test_unit_sees_only_the_cases_it_handles),
        cmocka_unit_test(test_grid_sees_only_what_it_registered_within_its_place),
        cmocka_unit_test(test_place_scoped_roles_see_the_cases_at_their_place),
        cmocka_unit_test(test_admin_sees_every_case),
        cmocka_unit_test(test_create_within_the_place_only),
        cmocka_unit_test(test_list_is_narrowed_to_the_unit),
        cmocka_unit_test(test_list_is_narrowed_to_the_place),
        cmocka_unit_test(test_list_of_unscoped_principals_is_untouched),
        cmocka_unit_test(test_feed_is_cut_by_unit_or_district),
        cmocka_unit_test(test_feed_of_a_scope_smaller_than_a_district_is_checked_by_case),
        cmocka_unit_test(test_feed_of_unscoped_principals_is_untouched),
        cmocka_unit_test(test_tap_only_for_the_whole_city_feed),
        cmocka_unit_test(test_reporters_masked_for_supervisors_and_observers_unless_the_file_says),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
