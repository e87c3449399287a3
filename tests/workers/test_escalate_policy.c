/*
 * test_escalate_policy: what a due deadline means (workers/escalate_policy.h), pinned
 * with data: the built-in default city (protocol/default_city.cfg) and a small city
 * written to a file, with streets that have no street office and districts that have
 * no department.
 *
 *   warn    -> warn;   accept -> urge (催办);
 *   resolve -> escalate to the unit above: community centre -> the street office of the
 *              case's street; street office -> the district's department for the
 *              category (else a department of the district); department -> the city's
 *              supervision unit; at the top: supervise (督办) once, then urge.
 * Every decision carries the case's id and version, the deadline kind and a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "escalate_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1790000000000LL   /* 2026-09-21 14:13:20 UTC, 22:13:20 in the city's clock */

/* A small city: D1 has a street with a street office (S1) and one without (S2), and two
 * departments listed ROADS before LIGHTS; D2 has a street office but no department; D3
 * has neither. CITY-ROADS is a city-wide department. */
static const char small_city_text[] =
    "categories = (\n"
    "  { code = \"roads\";  name = \"Roads\";  sla = \"standard\"; },\n"
    "  { code = \"lights\"; name = \"Lights\"; sla = \"standard\"; },\n"
    "  { code = \"noise\";  name = \"Noise\";  sla = \"standard\"; }\n"
    ");\n"
    "places = (\n"
    "  { code = \"D1\"; name = \"D1\"; streets = (\n"
    "    { code = \"S1\"; name = \"S1\"; communities = (\n"
    "      { code = \"C1\"; name = \"C1\"; }, { code = \"C2\"; name = \"C2\"; } ); },\n"
    "    { code = \"S2\"; name = \"S2\"; communities = ( { code = \"C3\"; name = \"C3\"; } ); }\n"
    "  ); },\n"
    "  { code = \"D2\"; name = \"D2\"; streets = (\n"
    "    { code = \"S3\"; name = \"S3\"; communities = ( { code = \"C4\"; name = \"C4\"; } ); }\n"
    "  ); },\n"
    "  { code = \"D3\"; name = \"D3\"; streets = (\n"
    "    { code = \"S4\"; name = \"S4\"; communities = ( { code = \"C5\"; name = \"C5\"; } ); }\n"
    "  ); }\n"
    ");\n"
    "units = (\n"
    "  { code = \"C1-CENTRE\"; name = \"C1 centre\"; kind = \"community_centre\"; place = \"C1\"; },\n"
    "  { code = \"D1-ROADS\"; name = \"D1 roads\"; kind = \"department\"; place = \"D1\";\n"
    "    categories = [\"roads\"]; },\n"
    "  { code = \"D1-LIGHTS\"; name = \"D1 lights\"; kind = \"department\"; place = \"D1\";\n"
    "    categories = [\"lights\"]; },\n"
    "  { code = \"S1-OFFICE\"; name = \"S1 office\"; kind = \"street_office\"; place = \"S1\"; },\n"
    "  { code = \"C2-CENTRE\"; name = \"C2 centre\"; kind = \"community_centre\"; place = \"C2\"; },\n"
    "  { code = \"C3-CENTRE\"; name = \"C3 centre\"; kind = \"community_centre\"; place = \"C3\"; },\n"
    "  { code = \"S3-OFFICE\"; name = \"S3 office\"; kind = \"street_office\"; place = \"S3\"; },\n"
    "  { code = \"C4-CENTRE\"; name = \"C4 centre\"; kind = \"community_centre\"; place = \"C4\"; },\n"
    "  { code = \"C5-CENTRE\"; name = \"C5 centre\"; kind = \"community_centre\"; place = \"C5\"; },\n"
    "  { code = \"CITY-ROADS\"; name = \"City roads\"; kind = \"department\";\n"
    "    categories = [\"roads\"]; },\n"
    "  { code = \"SUP\"; name = \"Supervision\"; kind = \"supervision\"; }\n"
    ");\n"
    "routing = (\n"
    "  { category = \"roads\"; unit = \"CITY-ROADS\"; }\n"
    ");\n";

typedef struct {
    city *dflt;    /* the built-in default */
    city *small;   /* small_city_text */
} cities;

/* ---- fixtures -------------------------------------------------------------------- */

static city *city_from_text(const char *text)
{
    char  path[] = "/tmp/gridline_escalate_XXXXXX";
    char  err[512] = "";
    size_t n = strlen(text);
    int   fd = mkstemp(path);
    city *c;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    c = city_new(path, err, sizeof err);
    unlink(path);
    if (c == NULL) {
        fail_msg("the test city does not load: %s", err);
    }
    return c;
}

static int setup(void **state)
{
    char    err[512] = "";
    cities *cs = calloc(1, sizeof *cs);

    if (cs == NULL) {
        return -1;
    }
    cs->dflt = city_new(NULL, err, sizeof err);
    if (cs->dflt == NULL) {
        fprintf(stderr, "the default city does not load: %s\n", err);
        free(cs);
        return -1;
    }
    cs->small = city_from_text(small_city_text);
    *state = cs;
    return 0;
}

static int teardown(void **state)
{
    cities *cs = *state;

    city_destroy(&cs->dflt);
    city_destroy(&cs->small);
    city_destroy(&cs->small);   /* safe twice */
    free(cs);
    return 0;
}

/* A dispatched case at `unit`, of category cat (NULL: none), located at the given place
 * codes (NULL: not given). escalate_item is large: it lives on the heap. */
static escalate_item *item_new(deadline_kind kind, const char *unit, const char *cat,
                               const char *district, const char *street,
                               const char *community)
{
    escalate_item *it = calloc(1, sizeof *it);

    assert_non_null(it);
    it->kind                 = kind;
    it->c.id                 = 41;
    it->c.version            = 7;
    it->c.state              = CASE_DISPATCHED;
    it->c.urgency            = URGENCY_NORMAL;
    it->c.category           = gl_str_c(cat);
    it->c.location.district  = gl_str_c(district);
    it->c.location.street    = gl_str_c(street);
    it->c.location.community = gl_str_c(community);
    it->c.unit               = gl_str_c(unit);
    it->c.created_at         = T0;
    it->c.dispatched_at      = T0;
    it->c.warn_at            = T0 + 800;
    it->c.accept_by          = T0 + 500;
    it->c.resolve_by         = T0 + 1000;
    return it;
}

/* The code of the unit above, or NULL at the top. */
static const char *next_code(const city *c, const escalate_item *it)
{
    int n = escalate_policy_next_unit(c, &it->c);

    if (n < 0) {
        assert_int_equal(n, -1);
        return NULL;
    }
    assert_true((size_t)n < c->n_units);
    return c->units[n].code;
}

static void assert_next(const city *c, const char *unit, const char *cat, const char *district,
                        const char *street, const char *community, const char *want)
{
    escalate_item *it = item_new(DEADLINE_RESOLVE, unit, cat, district, street, community);
    const char    *got = next_code(c, it);

    if (want == NULL) {
        if (got != NULL) {
            fail_msg("above %s (%s at %s/%s/%s): %s, expected the top", unit,
                     cat ? cat : "-", district ? district : "-", street ? street : "-",
                     community ? community : "-", got);
        }
    } else if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("above %s (%s at %s/%s/%s): %s, expected %s", unit, cat ? cat : "-",
                 district ? district : "-", street ? street : "-",
                 community ? community : "-", got ? got : "the top", want);
    }
    free(it);
}

/* Decides it; checks what every decision carries. */
static void decide(const city *c, const escalate_item *it, escalate_decision *d, char *reason,
                   size_t cap)
{
    /* Garbage in, so that a field the policy forgets to set shows. */
    memset(d, 0x5a, sizeof *d);
    d->unit = gl_str_c("GARBAGE");
    memset(reason, 'x', cap);
    assert_int_equal(escalate_policy_decide(c, it, d, reason, cap), 0);
    assert_int_equal(d->id, it->c.id);
    assert_int_equal(d->version, it->c.version);
    assert_int_equal(d->kind, it->kind);
    assert_ptr_equal(d->reason.p, reason);
    assert_true(strlen(reason) < cap);
    assert_int_equal(d->reason.n, strlen(reason));
    assert_true(d->reason.n > 0);
}

/* ---- warn and accept ------------------------------------------------------------- */

static void test_warn_deadline_is_a_warning_naming_the_unit(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_WARN, "D01-S01-C01-CENTRE", "sanitation", "D01",
                                 "D01-S01", "D01-S01-C01");
    escalate_decision d;
    char reason[ESCALATE_POLICY_REASON_MAX];

    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_WARN);
    assert_int_equal(d.unit.n, 0);
    assert_non_null(strstr(reason, "D01-S01-C01-CENTRE"));
    /* resolve_by, the limit warned of, as a date in the city's clock (UTC+08:00). */
    assert_non_null(strstr(reason, "2026-09-21 22:13:21"));

    /* The same at the top and when supervised: a warning is a warning. */
    it->c.unit = gl_str_c("CITY-SUPERVISION");
    it->c.supervised = true;
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_WARN);
    assert_int_equal(d.unit.n, 0);
    free(it);
}

static void test_accept_deadline_is_an_urge_naming_the_unit(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_ACCEPT, "D01-HOUSING", "roads", "D01", "D01-S01",
                                 NULL);
    escalate_decision d;
    char reason[ESCALATE_POLICY_REASON_MAX];

    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_URGE);
    assert_int_equal(d.unit.n, 0);
    assert_non_null(strstr(reason, "D01-HOUSING"));
    assert_non_null(strstr(reason, "2026-09-21 22:13:20"));   /* accept_by */

    /* An accept deadline never escalates, not even at the top. */
    it->c.unit = gl_str_c("CITY-SUPERVISION");
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_URGE);
    assert_int_equal(d.unit.n, 0);
    free(it);
}

/* ---- resolve: up the hierarchy, in the default city ------------------------------ */

static void test_community_centre_goes_to_the_street_office_of_the_cases_street(void **state)
{
    cities *cs = *state;

    assert_next(cs->dflt, "D01-S01-C01-CENTRE", "sanitation", "D01", "D01-S01", "D01-S01-C01",
                "D01-S01-OFFICE");
    assert_next(cs->dflt, "D01-S02-C02-CENTRE", "roads", "D01", "D01-S02", "D01-S02-C02",
                "D01-S02-OFFICE");
    assert_next(cs->dflt, "D02-S02-C01-CENTRE", NULL, "D02", "D02-S02", "D02-S02-C01",
                "D02-S02-OFFICE");
    assert_next(cs->dflt, "D03-S02-C02-CENTRE", "education", "D03", "D03-S02", "D03-S02-C02",
                "D03-S02-OFFICE");
    /* The case's street, not the centre's, when they differ (a case reassigned to a
     * centre of another street). */
    assert_next(cs->dflt, "D01-S01-C01-CENTRE", "sanitation", "D01", "D01-S02", "D01-S02-C01",
                "D01-S02-OFFICE");
    /* A case located only by its district: the street of the centre's place. */
    assert_next(cs->dflt, "D02-S01-C02-CENTRE", "sanitation", "D02", NULL, NULL,
                "D02-S01-OFFICE");
}

static void test_street_office_goes_to_the_districts_department_for_the_category(void **state)
{
    cities *cs = *state;

    assert_next(cs->dflt, "D01-S01-OFFICE", "sanitation", "D01", "D01-S01", "D01-S01-C01",
                "D01-URBAN");
    assert_next(cs->dflt, "D01-S02-OFFICE", "roads", "D01", "D01-S02", NULL, "D01-HOUSING");
    assert_next(cs->dflt, "D02-S01-OFFICE", "health", "D02", "D02-S01", NULL, "D02-HEALTH");
    assert_next(cs->dflt, "D03-S02-OFFICE", "dispute_mediation", "D03", "D03-S02", NULL,
                "D03-JUSTICE");
    assert_next(cs->dflt, "D03-S01-OFFICE", "employment", "D03", "D03-S01", NULL, "D03-HRSS");
    /* The case's district decides. */
    assert_next(cs->dflt, "D01-S01-OFFICE", "veterans", "D02", "D02-S01", NULL, "D02-CIVIL");
}

static void test_street_office_with_no_department_for_the_category_goes_to_one_of_the_district(
    void **state)
{
    cities *cs = *state;

    /* Education has a city-wide bureau only: no department of D01 handles it, so the
     * case goes to a department of the district (the first, D01-CIVIL). */
    assert_next(cs->dflt, "D01-S01-OFFICE", "education", "D01", "D01-S01", NULL, "D01-CIVIL");
    assert_next(cs->dflt, "D02-S02-OFFICE", "information_services", "D02", "D02-S02", NULL,
                "D02-CIVIL");
    /* No category, or one the city does not know: any department of the district. */
    assert_next(cs->dflt, "D03-S01-OFFICE", NULL, "D03", "D03-S01", NULL, "D03-CIVIL");
    assert_next(cs->dflt, "D01-S02-OFFICE", "no_such_category", "D01", "D01-S02", NULL,
                "D01-CIVIL");
}

static void test_department_goes_to_city_supervision(void **state)
{
    cities *cs = *state;
    static const char *depts[] = { "D01-CIVIL", "D01-HOUSING", "D02-POLICE", "D03-URBAN",
                                   "CITY-EDU", "CITY-INFO" };

    for (size_t i = 0; i < sizeof depts / sizeof depts[0]; i++) {
        assert_next(cs->dflt, depts[i], "roads", "D01", "D01-S01", "D01-S01-C01",
                    "CITY-SUPERVISION");
        assert_next(cs->dflt, depts[i], NULL, "D02", NULL, NULL, "CITY-SUPERVISION");
    }
}

static void test_supervision_is_the_top(void **state)
{
    cities *cs = *state;

    assert_next(cs->dflt, "CITY-SUPERVISION", "roads", "D01", "D01-S01", "D01-S01-C01", NULL);
    assert_next(cs->dflt, "CITY-SUPERVISION", NULL, "D03", NULL, NULL, NULL);
}

static void test_an_unresolved_case_climbs_to_supervision_and_stops(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_RESOLVE, "D02-S01-C01-CENTRE", "elderly_care",
                                 "D02", "D02-S01", "D02-S01-C01");
    static const char *want[] = { "D02-S01-OFFICE", "D02-CIVIL", "CITY-SUPERVISION" };
    escalate_decision d;
    char reason[ESCALATE_POLICY_REASON_MAX];

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char from[64];

        snprintf(from, sizeof from, "%.*s", (int)it->c.unit.n, it->c.unit.p);
        decide(cs->dflt, it, &d, reason, sizeof reason);
        assert_int_equal(d.outcome, OUTCOME_ESCALATE);
        if (!gl_str_eq(d.unit, want[i])) {
            fail_msg("step %zu: escalated from %s to %.*s, expected %s", i, from,
                     (int)d.unit.n, d.unit.p, want[i]);
        }
        /* The reason names both ends. */
        assert_non_null(strstr(reason, from));
        assert_non_null(strstr(reason, want[i]));
        /* As the daemon commits it: the unit above holds the case, level + 1. */
        it->c.unit = gl_str_c(want[i]);
        it->c.level++;
        it->c.version++;
    }
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_SUPERVISE);
    assert_int_equal(d.unit.n, 0);
    assert_non_null(strstr(reason, "督办"));
    it->c.supervised = true;
    it->c.version++;
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_URGE);
    assert_int_equal(d.unit.n, 0);
    assert_non_null(strstr(reason, "催办"));
    free(it);
}

static void test_resolve_at_supervision_supervises_once_then_urges(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_RESOLVE, "CITY-SUPERVISION", "roads", "D01",
                                 "D01-S01", NULL);
    escalate_decision d;
    char reason[ESCALATE_POLICY_REASON_MAX];

    it->c.level = 3;
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_SUPERVISE);
    assert_int_equal(d.unit.n, 0);
    it->c.supervised = true;
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_URGE);
    assert_int_equal(d.unit.n, 0);
    free(it);
}

static void test_supervised_case_below_the_top_still_escalates(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_RESOLVE, "D01-S01-OFFICE", "roads", "D01",
                                 "D01-S01", NULL);
    escalate_decision d;
    char reason[ESCALATE_POLICY_REASON_MAX];

    it->c.supervised = true;   /* put under supervision by hand (case.act supervise) */
    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_ESCALATE);
    assert_true(gl_str_eq(d.unit, "D01-HOUSING"));
    free(it);
}

/* ---- resolve: gaps in the hierarchy (the small city) ----------------------------- */

static void test_small_city_hierarchy(void **state)
{
    cities *cs = *state;

    /* A centre whose street has an office. */
    assert_next(cs->small, "C1-CENTRE", "roads", "D1", "S1", "C1", "S1-OFFICE");
    assert_next(cs->small, "C2-CENTRE", NULL, "D1", "S1", "C2", "S1-OFFICE");
    /* The street office: the department for the category, not merely the first one. */
    assert_next(cs->small, "S1-OFFICE", "roads", "D1", "S1", "C1", "D1-ROADS");
    assert_next(cs->small, "S1-OFFICE", "lights", "D1", "S1", "C1", "D1-LIGHTS");
    /* None for the category: a department of the district all the same. */
    assert_next(cs->small, "S1-OFFICE", "noise", "D1", "S1", "C1", "D1-ROADS");
    /* Departments, city-wide or not, go to supervision. */
    assert_next(cs->small, "D1-LIGHTS", "lights", "D1", "S1", "C1", "SUP");
    assert_next(cs->small, "CITY-ROADS", "roads", "D1", "S1", "C1", "SUP");
    assert_next(cs->small, "SUP", "roads", "D1", "S1", "C1", NULL);
}

static void test_centre_of_a_street_without_office_goes_to_the_districts_department(
    void **state)
{
    cities *cs = *state;

    assert_next(cs->small, "C3-CENTRE", "lights", "D1", "S2", "C3", "D1-LIGHTS");
    assert_next(cs->small, "C3-CENTRE", "roads", "D1", "S2", "C3", "D1-ROADS");
    assert_next(cs->small, "C3-CENTRE", "noise", "D1", "S2", "C3", "D1-ROADS");
}

static void test_district_without_department_goes_to_supervision(void **state)
{
    cities *cs = *state;

    /* D2: centre -> street office -> (no department) supervision. */
    assert_next(cs->small, "C4-CENTRE", "roads", "D2", "S3", "C4", "S3-OFFICE");
    assert_next(cs->small, "S3-OFFICE", "roads", "D2", "S3", "C4", "SUP");
    /* D3: neither street office nor department. */
    assert_next(cs->small, "C5-CENTRE", "noise", "D3", "S4", "C5", "SUP");
}

/* ---- the decision's reason ------------------------------------------------------- */

static void test_reason_is_cut_to_the_buffer(void **state)
{
    cities        *cs = *state;
    escalate_item *it = item_new(DEADLINE_RESOLVE, "D01-S01-C01-CENTRE", "sanitation", "D01",
                                 "D01-S01", "D01-S01-C01");
    escalate_decision d;
    char reason[12];

    decide(cs->dflt, it, &d, reason, sizeof reason);
    assert_int_equal(d.outcome, OUTCOME_ESCALATE);
    assert_true(gl_str_eq(d.unit, "D01-S01-OFFICE"));
    assert_int_equal(d.reason.n, sizeof reason - 1);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warn_deadline_is_a_warning_naming_the_unit),
        cmocka_unit_test(test_accept_deadline_is_an_urge_naming_the_unit),
        cmocka_unit_test(test_community_centre_goes_to_the_street_office_of_the_cases_street),
        cmocka_unit_test(test_street_office_goes_to_the_districts_department_for_the_category),
        cmocka_unit_test(
            test_street_office_with_no_department_for_the_category_goes_to_one_of_the_district),
        cmocka_unit_test(test_department_goes_to_city_supervision),
        cmocka_unit_test(test_supervision_is_the_top),
        cmocka_unit_test(test_an_unresolved_case_climbs_to_supervision_and_stops),
        cmocka_unit_test(test_resolve_at_supervision_supervises_once_then_urges),
        cmocka_unit_test(test_supervised_case_below_the_top_still_escalates),
        cmocka_unit_test(test_small_city_hierarchy),
        cmocka_unit_test(test_centre_of_a_street_without_office_goes_to_the_districts_department),
        cmocka_unit_test(test_district_without_department_goes_to_supervision),
        cmocka_unit_test(test_reason_is_cut_to_the_buffer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
