/*
 * test_city: the city model: the built-in default, look-ups, location checks, a
 * deployment's file replacing sections, the errors that name file and line, the
 * duplicates, calendar and stars sections and the catalog.get form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "city.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char path[64];
} tmp_cfg;

/* Writes text to a fresh temporary file; the test removes it with tmp_cfg_remove. */
static void
tmp_cfg_write(tmp_cfg *t, const char *text)
{
    int    fd;
    size_t n = strlen(text);

    snprintf(t->path, sizeof t->path, "/tmp/gridline_city_XXXXXX");
    fd = mkstemp(t->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static void
tmp_cfg_remove(tmp_cfg *t)
{
    unlink(t->path);
}

/* Loads text as a deployment's file and expects it refused with an error starting
 * "PATH:LINE: " and holding want. */
static void
expect_refused(const char *text, int line, const char *want)
{
    tmp_cfg t;
    char    err[512] = "", prefix[96];
    city   *c;

    tmp_cfg_write(&t, text);
    c = city_new(t.path, err, sizeof err);
    assert_null(c);
    snprintf(prefix, sizeof prefix, "%s:%d: ", t.path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, want) == NULL) {
        fail_msg("error \"%s\" does not start with \"%s\" and hold \"%s\"", err, prefix,
                 want);
    }
    tmp_cfg_remove(&t);
}

static city *
load_default(void)
{
    char  err[512] = "";
    city *c        = city_new(NULL, err, sizeof err);

    if (c == NULL) {
        fail_msg("the default city does not load: %s", err);
    }
    return c;
}

static gl_str
code_of(const char *s)
{
    return gl_str_c(s);
}

/* ---- the default ------------------------------------------------------------------ */

static void
test_default_loads_with_three_districts(void **state)
{
    city  *c = load_default();
    size_t i, districts = 0;

    for (i = 0; i < c->n_places; i++) {
        districts += c->places[i].level == PLACE_DISTRICT;
    }
    assert_int_equal(districts, 3);
    assert_string_equal(c->source, "built-in");
    assert_string_equal(c->code_prefix, "GL");
    assert_int_equal(c->utc_offset_min, 8 * 60);
    assert_int_equal(c->max_returns, 2);
    city_destroy(&c);
}

static void
test_default_has_every_catalogue_category(void **state)
{
    static const char *const want[] = {
        "civil_affairs", "social_security", "employment", "family_planning", "health",
        "elderly_care", "veterans", "legal_aid", "dispute_mediation", "public_security",
        "sanitation", "property_repairs", "street_lights", "roads", "water_supply",
        "sewers", "culture_sport", "education", "information_services",
    };
    city  *c = load_default();
    size_t i;

    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (city_category_find(c, code_of(want[i])) < 0) {
            fail_msg("category %s is missing", want[i]);
        }
    }
    city_destroy(&c);
}

static void
test_default_has_a_city_wide_supervision_unit(void **state)
{
    city *c = load_default();
    int   u = city_unit_find(c, code_of("CITY-SUPERVISION"));

    assert_true(u >= 0);
    assert_int_equal(c->units[u].kind, UNIT_SUPERVISION);
    assert_int_equal(c->units[u].place, -1);
    assert_string_equal(unit_kind_name(c->units[u].kind), "supervision");
    city_destroy(&c);
}

static void
test_default_sla_classes_follow_beijing(void **state)
{
    city *c = load_default();
    int   e = city_sla_find(c, code_of("emergency"));
    int   s = city_sla_find(c, code_of("standard"));

    assert_true(e >= 0 && s >= 0);
    assert_int_equal(c->sla[e].accept_ms, 3600 * 1000);
    assert_int_equal(c->sla[e].resolve_ms, 2 * 3600 * 1000);
    assert_false(c->sla[e].working_time);
    assert_int_equal(c->sla[s].resolve_ms, 49LL * 3600 * 1000);   /* 7 working days of 7 h */
    assert_true(c->sla[s].working_time);
    assert_true(c->sla[s].warn_ratio > 0.79 && c->sla[s].warn_ratio < 0.81);
    city_destroy(&c);
}

static void
test_default_routes_street_lights_to_the_district_department(void **state)
{
    city  *c     = load_default();
    int    light = city_category_find(c, code_of("street_lights"));
    int    d02   = city_place_find(c, code_of("D02"));
    size_t i;

    for (i = 0; i < c->n_rules; i++) {
        if (c->rules[i].category == light && c->rules[i].place == d02) {
            assert_string_equal(c->units[c->rules[i].unit].code, "D02-HOUSING");
            city_destroy(&c);
            return;
        }
    }
    fail_msg("no rule for street_lights in D02");
}

/* ---- look-ups --------------------------------------------------------------------- */

static void
test_find_returns_the_entry_with_that_code(void **state)
{
    city *c = load_default();
    int   p = city_place_find(c, code_of("D01-S02-C01"));

    assert_true(p >= 0);
    assert_string_equal(c->places[p].code, "D01-S02-C01");
    assert_int_equal(c->places[p].level, PLACE_COMMUNITY);
    assert_string_equal(c->places[c->places[p].parent].code, "D01-S02");
    assert_string_equal(c->units[city_unit_find(c, code_of("D03-POLICE"))].code, "D03-POLICE");
    assert_string_equal(c->categories[city_category_find(c, code_of("roads"))].code, "roads");
    city_destroy(&c);
}

static void
test_find_returns_minus_one_for_an_unknown_or_partial_code(void **state)
{
    city *c = load_default();

    assert_int_equal(city_place_find(c, code_of("D09")), -1);
    assert_int_equal(city_place_find(c, code_of("D0")), -1);
    assert_int_equal(city_place_find(c, code_of("")), -1);
    assert_int_equal(city_place_find(c, gl_str_of("D01X", 3)), 0);
    assert_int_equal(city_category_find(c, code_of("street_light")), -1);
    assert_int_equal(city_unit_find(c, code_of("nobody")), -1);
    assert_int_equal(city_sla_find(c, code_of("never")), -1);
    city_destroy(&c);
}

/* ---- location check --------------------------------------------------------------- */

static case_location
loc_of(const char *d, const char *s, const char *m, const char *g)
{
    case_location l;

    memset(&l, 0, sizeof l);
    l.district  = code_of(d);
    l.street    = code_of(s);
    l.community = code_of(m);
    l.grid      = code_of(g);
    return l;
}

static void
test_location_accepts_a_valid_path(void **state)
{
    city         *c = load_default();
    gl_error      err;
    case_location l = loc_of("D02", "D02-S01", "D02-S01-C02", "D02-S01-C02-G02");

    gl_error_clear(&err);
    assert_int_equal(city_location_check(c, &l, &err), 0);
    l = loc_of("D03", NULL, NULL, NULL);
    assert_int_equal(city_location_check(c, &l, &err), 0);
    city_destroy(&c);
}

static void
test_location_refuses_a_street_of_another_district(void **state)
{
    city         *c = load_default();
    gl_error      err;
    case_location l = loc_of("D01", "D02-S01", NULL, NULL);

    gl_error_clear(&err);
    assert_int_equal(city_location_check(c, &l, &err), GL_EINVALID);
    assert_int_equal(err.code, GL_EINVALID);
    assert_string_equal(err.field, "location.street");
    city_destroy(&c);
}

static void
test_location_refuses_a_grid_of_another_community(void **state)
{
    city         *c = load_default();
    gl_error      err;
    case_location l = loc_of("D01", "D01-S01", "D01-S01-C01", "D01-S01-C02-G01");

    gl_error_clear(&err);
    assert_int_equal(city_location_check(c, &l, &err), GL_EINVALID);
    assert_string_equal(err.field, "location.grid");
    city_destroy(&c);
}

static void
test_location_refuses_an_unknown_district(void **state)
{
    city         *c = load_default();
    gl_error      err;
    case_location l = loc_of("D09", NULL, NULL, NULL);

    gl_error_clear(&err);
    assert_int_equal(city_location_check(c, &l, &err), GL_EINVALID);
    assert_string_equal(err.field, "location.district");
    l = loc_of("D01-S01", NULL, NULL, NULL);
    assert_int_equal(city_location_check(c, &l, &err), GL_EINVALID);
    assert_string_equal(err.field, "location.district");
    city_destroy(&c);
}

static void
test_location_refuses_a_community_without_its_street(void **state)
{
    city         *c = load_default();
    gl_error      err;
    case_location l = loc_of("D01", NULL, "D01-S01-C01", NULL);

    gl_error_clear(&err);
    assert_int_equal(city_location_check(c, &l, &err), GL_EINVALID);
    assert_string_equal(err.field, "location.street");
    city_destroy(&c);
}

/* ---- a deployment's file ---------------------------------------------------------- */

static void
test_user_file_with_only_units_keeps_default_places(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    tmp_cfg_write(&t,
        "units = (\n"
        "  { code = \"D01-ALL\"; name = \"Riverside all-in-one bureau\"; kind = \"department\";\n"
        "    place = \"D01\"; },\n"
        "  { code = \"SUP\"; name = \"督办\"; kind = \"supervision\"; }\n"
        ");\n"
        "routing = ( { category = \"roads\"; place = \"D01-S01\"; unit = \"D01-ALL\"; } );\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_string_equal(c->source, t.path);
    assert_int_equal(c->n_units, 2);
    assert_int_equal(c->units[city_unit_find(c, code_of("D01-ALL"))].place,
                     city_place_find(c, code_of("D01")));
    assert_true(city_place_find(c, code_of("D03-S02-C02-G03")) >= 0);
    assert_true(city_category_find(c, code_of("sewers")) >= 0);
    assert_int_equal(c->n_rules, 1);
    assert_int_equal(city_unit_find(c, code_of("D01-HOUSING")), -1);
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

static void
test_user_file_replaces_the_city_section(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    tmp_cfg_write(&t, "city = { name = \"Harbin\"; code_prefix = \"HRB\"; "
                      "utc_offset = \"-03:30\"; };\nmax_returns = 0;\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_string_equal(c->name, "Harbin");
    assert_string_equal(c->code_prefix, "HRB");
    assert_int_equal(c->utc_offset_min, -(3 * 60 + 30));
    assert_int_equal(c->max_returns, 0);
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

static void
test_syntax_error_names_file_and_line(void **state)
{
    expect_refused("max_returns = 3;\n\nsla = ( { code = \"x\" ; \n", 4, "");
    expect_refused("max_returns = 3;\nmax_returns = 4;\n", 2, "duplicate");
}

static void
test_missing_file_is_refused_with_its_path(void **state)
{
    char  err[512] = "";
    city *c        = city_new("/nonexistent/gridline/city.cfg", err, sizeof err);

    assert_null(c);
    assert_non_null(strstr(err, "/nonexistent/gridline/city.cfg: "));
}

static void
test_unknown_reference_names_file_and_line(void **state)
{
    expect_refused("units = (\n"
                   "  { code = \"SUP\"; name = \"Sup\"; kind = \"supervision\"; },\n"
                   "  { code = \"D9-X\"; name = \"X\"; kind = \"department\";\n"
                   "    place = \"D9\"; }\n"
                   ");\n",
                   4, "unit \"D9-X\": place \"D9\" is not in places");
    expect_refused("categories = (\n"
                   "  { code = \"a\"; name = \"A\"; sla = \"standard\"; },\n"
                   "  { code = \"b\"; name = \"B\"; sla = { emergency = \"emergency\";\n"
                   "    urgent = \"fast\"; normal = \"standard\"; }; }\n"
                   ");\n",
                   4, "SLA class \"fast\" is not in sla");
    expect_refused("routing = ( { category = \"roads\";\n"
                   "  unit = \"D01-CIVIL\"; } );\n",
                   1, "does not handle category \"roads\"");
    expect_refused("routing = (\n"
                   "  { category = \"roads\"; place = \"D02\"; unit = \"D01-HOUSING\"; } );\n",
                   2, "outside unit \"D01-HOUSING\"");
}

static void
test_references_are_resolved_after_the_merge(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    /* The default's units list the default's categories: replacing the catalogue
     * alone leaves them pointing at codes that are gone, and the error names the
     * default's line. */
    tmp_cfg_write(&t, "categories = ( { code = \"only\"; name = \"Only\"; sla = \"standard\"; } );\n");
    c = city_new(t.path, err, sizeof err);
    assert_null(c);
    assert_true(strncmp(err, "built-in:", 9) == 0);
    assert_non_null(strstr(err, "is not in categories"));
    tmp_cfg_remove(&t);
}

static void
test_bad_duration_is_refused(void **state)
{
    static const char *const bad[] = { "\"2w\"", "\"h\"", "\"0h\"", "0", "-5", "\"1.5h\"",
                                       "\"2 h\"", "\"9999999999d\"", "\"400d\"", "1.5" };
    size_t i;
    char   text[256];

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text,
                 "sla = (\n  { code = \"x\"; accept_within = \"1h\";\n"
                 "    resolve_within = %s; } );\n", bad[i]);
        expect_refused(text, 3, "SLA class \"x\": \"resolve_within\"");
    }
    expect_refused("sla = (\n  { code = \"x\"; accept_within = \"2d\"; resolve_within = 3600; } );\n",
                   2, "accept_within is longer than resolve_within");
}

static void
test_duplicate_code_is_refused(void **state)
{
    expect_refused("places = (\n"
                   "  { code = \"A\"; name = \"A\"; streets = (\n"
                   "    { code = \"A-1\"; name = \"A one\"; } ); },\n"
                   "  { code = \"B\"; name = \"B\"; streets = (\n"
                   "    { code = \"A-1\"; name = \"B one\"; } ); }\n"
                   ");\n"
                   "units = ( { code = \"SUP\"; name = \"Sup\"; kind = \"supervision\"; } );\n"
                   "routing = ();\n",
                   5, "place \"A-1\": duplicate code (first at line 3)");
    expect_refused("sla = (\n"
                   "  { code = \"s\"; accept_within = 60; resolve_within = 60; },\n"
                   "  { code = \"s\"; accept_within = 60; resolve_within = 60; } );\n",
                   3, "SLA class \"s\": duplicate code");
}

static void
test_bad_code_is_refused(void **state)
{
    char text[256];

    expect_refused("units = ( { code = \"has space\"; name = \"x\"; kind = \"supervision\"; } );\n",
                   1, "character other than");
    expect_refused("units = ( { code = \"\"; name = \"x\"; kind = \"supervision\"; } );\n",
                   1, "\"code\" is empty");
    snprintf(text, sizeof text, "units = ( { code = \"%065d\";\n"
             "  name = \"x\"; kind = \"supervision\"; } );\n", 7);
    expect_refused(text, 1, "is 65 bytes");
}

static void
test_unknown_key_is_refused(void **state)
{
    expect_refused("units = (\n"
                   "  { code = \"SUP\"; name = \"Sup\"; kind = \"supervision\";\n"
                   "    catgories = [\"roads\"]; } );\n",
                   3, "unknown key \"catgories\"");
    expect_refused("max_returns = 2;\nrouting_rules = ();\n", 2, "unknown key \"routing_rules\"");
}

static void
test_wrong_type_and_missing_key_are_refused(void **state)
{
    expect_refused("max_returns = \"two\";\n", 1, "max_returns must be an integer");
    expect_refused("units = (\n  { code = \"SUP\"; kind = \"supervision\"; } );\n",
                   2, "unit \"SUP\": \"name\" is missing");
    expect_refused("city = { name = \"X\"; code_prefix = \"GL\"; utc_offset = \"8\"; };\n",
                   1, "utc_offset");
    expect_refused("sla = ( { code = \"s\"; accept_within = 60; resolve_within = 60;\n"
                   "  warn_ratio = 1.0; } );\n", 2, "warn_ratio");
}

static void
test_units_without_supervision_are_refused(void **state)
{
    expect_refused("units = (\n  { code = \"U\"; name = \"U\"; kind = \"department\"; } );\n",
                   1, "supervision");
}

static void
test_invalid_utf8_name_is_refused(void **state)
{
    expect_refused("units = ( { code = \"S\"; name = \"\xc3\x28\"; kind = \"supervision\"; } );\n",
                   1, "not valid UTF-8");
}

/* ---- duplicates ------------------------------------------------------------------- */

static void
test_default_duplicates_are_a_day_and_100_metres(void **state)
{
    city *c = load_default();

    assert_int_equal(c->dup_window_ms, 24LL * 3600 * 1000);
    assert_true(c->dup_distance_m > 99.99 && c->dup_distance_m < 100.01);
    city_destroy(&c);
}

static void
test_user_file_replaces_duplicates(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    /* An integer distance reads as well as a float one. */
    tmp_cfg_write(&t, "duplicates = { window = \"2h\"; distance_m = 250; };\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_int_equal(c->dup_window_ms, 2LL * 3600 * 1000);
    assert_true(c->dup_distance_m > 249.99 && c->dup_distance_m < 250.01);
    assert_int_equal(c->max_returns, 2);
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

static void
test_duplicates_key_left_out_keeps_its_default(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    tmp_cfg_write(&t, "duplicates = { distance_m = 30.5; };\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_int_equal(c->dup_window_ms, 24LL * 3600 * 1000);
    assert_true(c->dup_distance_m > 30.49 && c->dup_distance_m < 30.51);
    city_destroy(&c);
    tmp_cfg_remove(&t);

    tmp_cfg_write(&t, "duplicates = { window = 600; };\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_int_equal(c->dup_window_ms, 600LL * 1000);
    assert_true(c->dup_distance_m > 99.99 && c->dup_distance_m < 100.01);
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

static void
test_bad_duplicates_are_refused(void **state)
{
    expect_refused("max_returns = 2;\nduplicates = {\n  distance_m = 0;\n};\n",
                   3, "duplicates: \"distance_m\" must be more than 0");
    expect_refused("duplicates = { window = \"1h\";\n  distance_m = -12.5; };\n",
                   2, "\"distance_m\" must be more than 0");
    expect_refused("duplicates = { distance_m = 100001; };\n", 1, "at most 100000");
    expect_refused("duplicates = {\n  distance_m = \"100m\"; };\n",
                   2, "\"distance_m\" must be a number");
    expect_refused("duplicates = {\n  window = \"2w\"; };\n",
                   2, "duplicates: \"window\" is \"2w\"");
    expect_refused("duplicates = { window = 0; };\n", 1, "\"window\" must be more than zero");
    expect_refused("duplicates = {\n  window = \"1h\";\n  radius = 50; };\n",
                   3, "duplicates: unknown key \"radius\"");
    expect_refused("max_returns = 1;\nduplicates = 100;\n", 2, "duplicates must be a group");
    expect_refused("duplicate = { window = \"1h\"; };\n", 1, "unknown key \"duplicate\"");
}

/* ---- calendar --------------------------------------------------------------------- */

static int32_t
date_of(const char *s)
{
    int32_t d = 0;

    assert_int_equal(calendar_parse_date(s, &d), 0);
    return d;
}

static void
test_default_calendar_has_office_hours_and_2026_holidays(void **state)
{
    city           *c   = load_default();
    const calendar *cal = &c->calendar;

    assert_int_equal(cal->workdays, 0x1f);
    assert_int_equal(cal->n_spans, 2);
    assert_int_equal(cal->spans[0].start_min, 9 * 60);
    assert_int_equal(cal->spans[1].end_min, 17 * 60 + 30);
    /* National Day is off, its swapped Saturday works, an ordinary Saturday does not. */
    assert_false(calendar_is_working_day(cal, date_of("2026-10-01")));
    assert_false(calendar_is_working_day(cal, date_of("2026-02-17")));
    assert_true(calendar_is_working_day(cal, date_of("2026-10-10")));
    assert_true(calendar_is_working_day(cal, date_of("2026-02-14")));
    assert_false(calendar_is_working_day(cal, date_of("2026-03-14")));
    assert_true(calendar_is_working_day(cal, date_of("2026-03-16")));
    assert_true(cal->n_holidays >= 20 && cal->n_working_weekends >= 4);
    city_destroy(&c);
}

static void
test_user_calendar_replaces_the_default_and_fills_left_out_keys(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    /* Only holidays: the week and hours are the built-in ones, and the default's 2026
     * dates are gone (the section is replaced whole). */
    tmp_cfg_write(&t, "calendar = { holidays = [\"2027-01-01\", \"2026-12-31\"]; };\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_int_equal(c->calendar.workdays, 0x1f);
    assert_int_equal(c->calendar.n_spans, 2);
    assert_int_equal(c->calendar.n_holidays, 2);
    assert_int_equal(c->calendar.holidays[0], date_of("2026-12-31"));   /* sorted */
    assert_int_equal(c->calendar.n_working_weekends, 0);
    assert_true(calendar_is_working_day(&c->calendar, date_of("2026-10-01")));
    city_destroy(&c);
    tmp_cfg_remove(&t);

    tmp_cfg_write(&t, "calendar = {\n"
                      "  workdays = [7, 1, 2, 3, 4];\n"
                      "  hours = [\"08:00-12:00\", \"12:00-16:00\", \"18:00-24:00\"];\n"
                      "  holidays = [];\n"
                      "  working_weekends = [\"2026-10-09\"];\n"
                      "};\n");
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_int_equal(c->calendar.workdays, 0x4f);
    assert_int_equal(c->calendar.n_spans, 3);
    assert_int_equal(c->calendar.spans[2].end_min, 24 * 60);
    assert_int_equal(c->calendar.n_holidays, 0);
    assert_true(calendar_is_working_day(&c->calendar, date_of("2026-10-09")));   /* Fri */
    assert_true(calendar_is_working_day(&c->calendar, date_of("2026-10-11")));   /* Sun */
    assert_false(calendar_is_working_day(&c->calendar, date_of("2026-10-16")));  /* Fri */
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

static void
test_bad_calendar_hours_are_refused(void **state)
{
    expect_refused("calendar = {\n  hours = [\"09:00-12:00\",\n    \"9:00-12:00\"]; };\n",
                   3, "calendar: hours \"9:00-12:00\" is not a span");
    expect_refused("calendar = {\n  hours = [\"12:00-09:00\"]; };\n", 2, "is not a span");
    expect_refused("calendar = {\n  hours = [\"25:00-26:00\"]; };\n", 2, "is not a span");
    expect_refused("calendar = {\n  hours = [\"09:00-12:30\",\n    \"12:00-17:00\"]; };\n",
                   3, "hours \"12:00-17:00\" overlaps \"09:00-12:30\"");
    expect_refused("calendar = {\n  hours = [\"13:30-17:30\",\n    \"09:00-12:00\"]; };\n",
                   3, "hours \"09:00-12:00\" starts before \"13:30-17:30\"");
    expect_refused("calendar = {\n  hours = [];\n};\n", 2, "\"hours\" is empty");
    expect_refused("calendar = {\n  hours = \"09:00-17:00\"; };\n", 2,
                   "\"hours\" must be an array");
    expect_refused("calendar = {\n  hours = [900]; };\n", 2, "\"hours\" must hold spans");
    expect_refused("calendar = { hours = [\"00:00-01:00\", \"01:00-02:00\", \"02:00-03:00\",\n"
                   "  \"03:00-04:00\", \"04:00-05:00\", \"05:00-06:00\", \"06:00-07:00\",\n"
                   "  \"07:00-08:00\", \"08:00-09:00\"]; };\n", 1, "at most 8");
}

static void
test_bad_calendar_days_are_refused(void **state)
{
    expect_refused("calendar = {\n  workdays = [1, 2, 8]; };\n", 2,
                   "calendar: workday 8 is not 1 (Monday) to 7 (Sunday)");
    expect_refused("calendar = {\n  workdays = [1, 2, 2]; };\n", 2,
                   "workday 2 (Tuesday) is listed twice");
    expect_refused("calendar = {\n  workdays = [];\n};\n", 2, "\"workdays\" is empty");
    expect_refused("calendar = {\n  workdays = [\"Mon\"]; };\n", 2,
                   "\"workdays\" must hold days of the week");
    expect_refused("calendar = {\n  workdays = 5; };\n", 2, "\"workdays\" must be an array");
    expect_refused("max_returns = 1;\ncalendar = {\n  weekdays = [1]; };\n", 3,
                   "calendar: unknown key \"weekdays\"");
    expect_refused("calendar = [1, 2];\n", 1, "calendar must be a group");
}

static void
test_bad_calendar_dates_are_refused(void **state)
{
    expect_refused("calendar = {\n  holidays = [\"2026-10-01\",\n    \"2026-02-30\"]; };\n",
                   3, "calendar: holiday \"2026-02-30\" is not a date YYYY-MM-DD");
    expect_refused("calendar = {\n  holidays = [\"2026/10/01\"]; };\n", 2,
                   "holiday \"2026/10/01\" is not a date");
    expect_refused("calendar = {\n  working_weekends = [\"2026-10-1\"]; };\n", 2,
                   "working weekend \"2026-10-1\" is not a date");
    expect_refused("calendar = {\n  holidays = [20261001]; };\n", 2,
                   "\"holidays\" must hold dates");
    expect_refused("calendar = {\n"
                   "  holidays = [\"2026-10-02\",\n"
                   "    \"2026-10-01\",\n"
                   "    \"2026-10-02\"]; };\n",
                   4, "holiday \"2026-10-02\" is listed twice (first at line 2)");
    expect_refused("calendar = {\n"
                   "  holidays = [\"2026-10-10\"];\n"
                   "  working_weekends = [\"2026-09-20\",\n"
                   "    \"2026-10-10\"]; };\n",
                   4, "\"2026-10-10\" is both a holiday (line 2) and a working weekend");
    expect_refused("calendar = {\n  working_weekends = [\"2026-10-12\"]; };\n", 2,
                   "working weekend \"2026-10-12\" is a Monday, already a working day");
}

/* ---- stars ------------------------------------------------------------------------ */

static void
test_default_stars_rise_from_three_to_five(void **state)
{
    city             *c     = load_default();
    const city_stars *three = &c->stars[3 - CITY_STARS_MIN];
    const city_stars *five  = &c->stars[5 - CITY_STARS_MIN];

    assert_true(five->response_rate > 0.949 && five->response_rate < 0.951);
    assert_true(five->satisfaction_rate > 0.949 && five->satisfaction_rate < 0.951);
    assert_int_equal(five->min_cases, 20);
    assert_true(three->on_time_rate > 0.799 && three->on_time_rate < 0.801);
    assert_int_equal(three->min_cases, 5);
    assert_true(c->stars[1].on_time_rate >= three->on_time_rate
                && c->stars[1].on_time_rate <= five->on_time_rate);
    city_destroy(&c);
}

static const char stars_ok[] =
    "stars = {\n"
    "  five = { response_rate = 1; on_time_rate = 0.99; satisfaction_rate = 0.98; min_cases = 50; };\n"
    "  four = { response_rate = 0.9; on_time_rate = 0.9; satisfaction_rate = 0.9; min_cases = 50; };\n"
    "  three = { response_rate = 0; on_time_rate = 0.5; satisfaction_rate = 0.5; min_cases = 0; };\n"
    "};\n";

static void
test_user_stars_replace_the_default(void **state)
{
    tmp_cfg t;
    char    err[512] = "";
    city   *c;

    tmp_cfg_write(&t, stars_ok);
    c = city_new(t.path, err, sizeof err);
    if (c == NULL) {
        fail_msg("refused: %s", err);
    }
    assert_true(c->stars[2].response_rate > 0.999);
    assert_int_equal(c->stars[2].min_cases, 50);
    assert_int_equal(c->stars[1].min_cases, 50);
    assert_true(c->stars[0].response_rate < 0.001);
    assert_int_equal(c->stars[0].min_cases, 0);
    /* The calendar is still the default's. */
    assert_false(calendar_is_working_day(&c->calendar, date_of("2026-10-01")));
    city_destroy(&c);
    tmp_cfg_remove(&t);
}

/* stars_ok with one line's text replaced. */
static void
expect_stars_refused(const char *from, const char *to, int line, const char *want)
{
    char        text[1024];
    const char *hit = strstr(stars_ok, from);
    size_t      pre;

    assert_non_null(hit);
    pre = (size_t)(hit - stars_ok);
    snprintf(text, sizeof text, "%.*s%s%s", (int)pre, stars_ok, to, hit + strlen(from));
    expect_refused(text, line, want);
}

static void
test_bad_stars_are_refused(void **state)
{
    expect_stars_refused("four = { response_rate = 0.9;", "four = { response_rate = 1.5;", 3,
                         "stars: four: \"response_rate\" must be from 0 to 1");
    expect_stars_refused("three = { response_rate = 0;", "three = { response_rate = -0.1;", 4,
                         "must be from 0 to 1");
    expect_stars_refused("five = { response_rate = 1;", "five = { response_rate = \"95%\";",
                         2, "stars: five: \"response_rate\" must be a number");
    expect_stars_refused("on_time_rate = 0.99;", "on_time_rate = 0.8;", 2,
                         "stars: five's \"on_time_rate\" (0.8) is below four's (0.9)");
    expect_stars_refused("satisfaction_rate = 0.5; min_cases = 0;",
                         "satisfaction_rate = 0.95; min_cases = 0;", 3,
                         "four's \"satisfaction_rate\" (0.9) is below three's (0.95)");
    expect_stars_refused("satisfaction_rate = 0.98; min_cases = 50;",
                         "satisfaction_rate = 0.98; min_cases = 49;", 2,
                         "five's \"min_cases\" (49) is below four's (50)");
    expect_stars_refused("min_cases = 0;", "min_cases = -1;", 4,
                         "stars: three: \"min_cases\" is -1");
    expect_stars_refused("min_cases = 0;", "min_cases = 0.5;", 4,
                         "\"min_cases\" must be an integer");
    expect_stars_refused(" min_cases = 0;", "", 4, "stars: three: \"min_cases\" is missing");
    expect_stars_refused("min_cases = 0;", "min_cases = 0; max_cases = 9;", 4,
                         "stars: three: unknown key \"max_cases\"");
    expect_stars_refused("  four = { response_rate = 0.9; on_time_rate = 0.9; "
                         "satisfaction_rate = 0.9; min_cases = 50; };\n", "", 1,
                         "stars: \"four\" is missing");
    expect_stars_refused("three = {", "two = {", 4, "stars: unknown key \"two\"");
    expect_refused("stars = (\n);\n", 1, "stars must be a group");
    expect_refused("stars = {\n  five = 5; };\n", 2, "stars: five must be a group");
}

/* ---- catalog.get ------------------------------------------------------------------ */

static const msgpack_object *
arr_at(const msgpack_object *o, uint32_t i)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_true(i < o->via.array.size);
    return &o->via.array.ptr[i];
}

static const msgpack_object *
find_by_code(const msgpack_object *list, const char *code)
{
    uint32_t i;

    assert_int_equal(list->type, MSGPACK_OBJECT_ARRAY);
    for (i = 0; i < list->via.array.size; i++) {
        const msgpack_object *c = mp_map_get(&list->via.array.ptr[i], "code");

        if (c != NULL && c->type == MSGPACK_OBJECT_STR
            && gl_str_eq(gl_str_of(c->via.str.ptr, c->via.str.size), code)) {
            return &list->via.array.ptr[i];
        }
    }
    fail_msg("no entry with code %s", code);
    return NULL;
}

static void
assert_str(const msgpack_object *o, const char *want)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_true(gl_str_eq(gl_str_of(o->via.str.ptr, o->via.str.size), want));
}

static void
test_catalog_packs_categories_units_places_and_sla(void **state)
{
    city              *c = load_default();
    msgpack_sbuffer    buf;
    msgpack_packer     pk;
    msgpack_unpacked   up;
    size_t             off = 0;
    const msgpack_object *root, *places, *d01, *street, *community, *o;

    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, 4), 0);
    assert_int_equal(city_pack_catalog(c, &pk), 0);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, buf.data, buf.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, buf.size);
    root = &up.data;
    assert_int_equal(root->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(root->via.map.size, 4);

    o = find_by_code(mp_map_get(root, "categories"), "water_supply");
    assert_str(mp_map_get(mp_map_get(o, "sla"), "normal"), "utility");
    assert_str(mp_map_get(mp_map_get(o, "sla"), "emergency"), "emergency");
    assert_int_equal(mp_map_get(root, "categories")->via.array.size, c->n_categories);

    o = find_by_code(mp_map_get(root, "units"), "CITY-SUPERVISION");
    assert_str(mp_map_get(o, "kind"), "supervision");
    assert_int_equal(mp_map_get(o, "place")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(mp_map_get(o, "categories")->via.array.size, 0);
    o = find_by_code(mp_map_get(root, "units"), "D01-POLICE");
    assert_str(mp_map_get(o, "place"), "D01");
    assert_str(arr_at(mp_map_get(o, "categories"), 0), "public_security");

    places = mp_map_get(root, "places");
    assert_int_equal(places->via.array.size, 3);
    d01 = arr_at(places, 0);
    assert_str(mp_map_get(d01, "code"), "D01");
    assert_int_equal(mp_map_get(d01, "streets")->via.array.size, 2);
    street = arr_at(mp_map_get(d01, "streets"), 1);
    assert_str(mp_map_get(street, "code"), "D01-S02");
    community = arr_at(mp_map_get(street, "communities"), 1);
    assert_str(mp_map_get(community, "code"), "D01-S02-C02");
    assert_int_equal(mp_map_get(community, "grids")->via.array.size, 3);
    o = arr_at(mp_map_get(community, "grids"), 2);
    assert_str(mp_map_get(o, "code"), "D01-S02-C02-G03");
    assert_null(mp_map_get(o, "grids"));
    assert_str(mp_map_get(arr_at(places, 2), "code"), "D03");

    o = find_by_code(mp_map_get(root, "sla"), "complex");
    assert_int_equal(mp_map_get(o, "accept_within_ms")->via.u64, 7ULL * 3600 * 1000);
    assert_int_equal(mp_map_get(o, "resolve_within_ms")->via.u64, 105ULL * 3600 * 1000);
    assert_str(mp_map_get(o, "clock"), "working");
    assert_true(mp_map_get(o, "warn_ratio")->via.f64 > 0.79);

    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);
    city_destroy(&c);
}

static void
test_destroy_twice_is_safe(void **state)
{
    city *c = load_default();

    city_destroy(&c);
    assert_null(c);
    city_destroy(&c);
    city_destroy(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_loads_with_three_districts),
        cmocka_unit_test(test_default_has_every_catalogue_category),
        cmocka_unit_test(test_default_has_a_city_wide_supervision_unit),
        cmocka_unit_test(test_default_sla_classes_follow_beijing),
        cmocka_unit_test(test_default_routes_street_lights_to_the_district_department),
        cmocka_unit_test(test_find_returns_the_entry_with_that_code),
        cmocka_unit_test(test_find_returns_minus_one_for_an_unknown_or_partial_code),
        cmocka_unit_test(test_location_accepts_a_valid_path),
        cmocka_unit_test(test_location_refuses_a_street_of_another_district),
        cmocka_unit_test(test_location_refuses_a_grid_of_another_community),
        cmocka_unit_test(test_location_refuses_an_unknown_district),
        cmocka_unit_test(test_location_refuses_a_community_without_its_street),
        cmocka_unit_test(test_user_file_with_only_units_keeps_default_places),
        cmocka_unit_test(test_user_file_replaces_the_city_section),
        cmocka_unit_test(test_syntax_error_names_file_and_line),
        cmocka_unit_test(test_missing_file_is_refused_with_its_path),
        cmocka_unit_test(test_unknown_reference_names_file_and_line),
        cmocka_unit_test(test_references_are_resolved_after_the_merge),
        cmocka_unit_test(test_bad_duration_is_refused),
        cmocka_unit_test(test_duplicate_code_is_refused),
        cmocka_unit_test(test_bad_code_is_refused),
        cmocka_unit_test(test_unknown_key_is_refused),
        cmocka_unit_test(test_wrong_type_and_missing_key_are_refused),
        cmocka_unit_test(test_units_without_supervision_are_refused),
        cmocka_unit_test(test_invalid_utf8_name_is_refused),
        cmocka_unit_test(test_default_duplicates_are_a_day_and_100_metres),
        cmocka_unit_test(test_user_file_replaces_duplicates),
        cmocka_unit_test(test_duplicates_key_left_out_keeps_its_default),
        cmocka_unit_test(test_bad_duplicates_are_refused),
        cmocka_unit_test(test_default_calendar_has_office_hours_and_2026_holidays),
        cmocka_unit_test(test_user_calendar_replaces_the_default_and_fills_left_out_keys),
        cmocka_unit_test(test_bad_calendar_hours_are_refused),
        cmocka_unit_test(test_bad_calendar_days_are_refused),
        cmocka_unit_test(test_bad_calendar_dates_are_refused),
        cmocka_unit_test(test_default_stars_rise_from_three_to_five),
        cmocka_unit_test(test_user_stars_replace_the_default),
        cmocka_unit_test(test_bad_stars_are_refused),
        cmocka_unit_test(test_catalog_packs_categories_units_places_and_sla),
        cmocka_unit_test(test_destroy_twice_is_safe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
