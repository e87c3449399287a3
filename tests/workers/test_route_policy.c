/*
 * test_route_policy: the router's policy, pinned with data: a small city written to a
 * file and read by city_new, and cases placed in it. Rule precedence, units that
 * returned a case, the territorial fallback step by step, max_returns, cases without a
 * category, and duplicates by grid, by distance, by time window and through chains.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "route_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The test city. Rules are written in an order that would give the wrong answer if
 * file order beat depth or category. Units at D1 are listed ROADS, LIGHTS, ANY so
 * that "any unit of the district" has a first one to find. */
static const char city_text[] =
    "max_returns = %d;\n"
    "duplicates = { window = \"24h\"; distance_m = 100.0; };\n"
    "categories = (\n"
    "  { code = \"roads\";  name = \"Roads\";  sla = \"standard\"; },\n"
    "  { code = \"lights\"; name = \"Lights\"; sla = \"standard\"; },\n"
    "  { code = \"noise\";  name = \"Noise\";  sla = \"standard\"; },\n"
    "  { code = \"water\";  name = \"Water\";  sla = \"standard\"; }\n"
    ");\n"
    "places = (\n"
    "  { code = \"D1\"; name = \"D1\"; streets = (\n"
    "    { code = \"S1\"; name = \"S1\"; communities = (\n"
    "      { code = \"C1\"; name = \"C1\"; grids = (\n"
    "        { code = \"G1\"; name = \"G1\"; }, { code = \"G2\"; name = \"G2\"; } ); },\n"
    "      { code = \"C2\"; name = \"C2\"; grids = ( { code = \"G3\"; name = \"G3\"; } ); }\n"
    "    ); },\n"
    "    { code = \"S2\"; name = \"S2\"; communities = (\n"
    "      { code = \"C3\"; name = \"C3\"; } ); }\n"
    "  ); },\n"
    "  { code = \"D2\"; name = \"D2\"; }\n"
    ");\n"
    "units = (\n"
    "  { code = \"SUP\"; name = \"Supervision\"; kind = \"supervision\"; },\n"
    "  { code = \"D1-ROADS\"; name = \"D1 roads\"; kind = \"department\"; place = \"D1\";\n"
    "    categories = [\"roads\"]; },\n"
    "  { code = \"D1-LIGHTS\"; name = \"D1 lights\"; kind = \"department\"; place = \"D1\";\n"
    "    categories = [\"lights\"]; },\n"
    "  { code = \"D1-ANY\"; name = \"D1 any\"; kind = \"department\"; place = \"D1\"; },\n"
    "  { code = \"S1-OFFICE\"; name = \"S1 office\"; kind = \"street_office\"; place = \"S1\"; },\n"
    "  { code = \"S2-OFFICE\"; name = \"S2 office\"; kind = \"street_office\"; place = \"S2\"; },\n"
    "  { code = \"C1-CENTRE\"; name = \"C1 centre\"; kind = \"community_centre\"; place = \"C1\"; },\n"
    "  { code = \"C2-CENTRE\"; name = \"C2 centre\"; kind = \"community_centre\"; place = \"C2\"; },\n"
    "  { code = \"D2-ROADS\"; name = \"D2 roads\"; kind = \"department\"; place = \"D2\";\n"
    "    categories = [\"roads\"]; },\n"
    "  { code = \"CITY-ROADS\"; name = \"City roads\"; kind = \"department\";\n"
    "    categories = [\"roads\"]; },\n"
    "  { code = \"FIXER\"; name = \"Grid fixer\"; kind = \"department\"; categories = [\"roads\"]; },\n"
    "  { code = \"SUP2\"; name = \"Second supervision\"; kind = \"supervision\"; }\n"
    ");\n"
    "routing = (\n"
    "  { category = \"roads\"; unit = \"CITY-ROADS\"; },\n"
    "  { category = \"roads\"; place = \"D1\"; unit = \"D1-ROADS\"; },\n"
    "  { category = \"roads\"; place = \"C1\"; unit = \"C1-CENTRE\"; },\n"
    "  { category = \"roads\"; place = \"G1\"; unit = \"FIXER\"; },\n"
    "  { place = \"S2\"; unit = \"S2-OFFICE\"; },\n"
    "  { category = \"lights\"; place = \"S2\"; unit = \"D1-LIGHTS\"; },\n"
    "  { category = \"noise\"; place = \"C2\"; unit = \"C2-CENTRE\"; },\n"
    "  { category = \"noise\"; place = \"C2\"; unit = \"S1-OFFICE\"; }\n"
    ");\n";

#define HOUR_MS (3600LL * 1000)
#define T0      1790000000000LL   /* the case's created_at in most tests */

/* ---- fixtures -------------------------------------------------------------------- */

static city *
city_with_max_returns(int max_returns)
{
    char  path[] = "/tmp/gridline_policy_XXXXXX";
    char  text[sizeof city_text + 16], err[512] = "";
    city *c;
    int   fd, n;

    n  = snprintf(text, sizeof text, city_text, max_returns);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, (size_t)n), n);
    assert_int_equal(close(fd), 0);
    c = city_new(path, err, sizeof err);
    unlink(path);
    if (c == NULL) {
        fail_msg("the test city does not load: %s", err);
    }
    return c;
}

static int
setup(void **state)
{
    *state = city_with_max_returns(10);
    return 0;
}

static int
teardown(void **state)
{
    city *c = *state;

    city_destroy(&c);
    return 0;
}

/* A registered case of category cat (NULL: none) at the given place codes (NULL: not
 * given), created at T0. route_item is large: it lives on the heap. */
static route_item *
item_new(uint64_t id, const char *cat, const char *d, const char *s, const char *m,
         const char *g)
{
    route_item *it = calloc(1, sizeof *it);

    assert_non_null(it);
    it->c.id                 = id;
    it->c.version            = 1;
    it->c.state              = CASE_REGISTERED;
    it->c.urgency            = URGENCY_NORMAL;
    it->c.category           = gl_str_c(cat);
    it->c.location.district  = gl_str_c(d);
    it->c.location.street    = gl_str_c(s);
    it->c.location.community = gl_str_c(m);
    it->c.location.grid      = gl_str_c(g);
    it->c.created_at         = T0;
    return it;
}

/* Records that unit returned the case (退单), as the daemon would. */
static void
item_returned_by(route_item *it, const char *unit)
{
    assert_true(it->c.n_returned_by < CASE_MAX_RETURNED);
    it->c.returned_by[it->c.n_returned_by++] = gl_str_c(unit);
    it->c.return_count++;
}

static route_candidate *
candidate_add(route_item *it, uint64_t id, const char *cat, const char *grid,
              int64_t created_at)
{
    route_candidate *k;

    assert_true(it->n_candidates < ROUTE_MAX_CANDIDATES);
    k = &it->candidates[it->n_candidates++];
    memset(k, 0, sizeof *k);
    k->id         = id;
    k->category   = gl_str_c(cat);
    k->grid       = gl_str_c(grid);
    k->created_at = created_at;
    return k;
}

typedef struct {
    char           unit[65];
    char           reason[ROUTE_POLICY_REASON_MAX];
    route_decision d;
} decided;

static void
decide(const city *c, const route_item *it, decided *out)
{
    memset(out, 0, sizeof *out);
    assert_int_equal(route_policy_decide(c, it, &out->d, out->reason, sizeof out->reason), 0);
    assert_true(out->d.unit.n > 0 && out->d.unit.n < sizeof out->unit);
    memcpy(out->unit, out->d.unit.p, out->d.unit.n);
    assert_int_equal(out->d.id, it->c.id);
    assert_int_equal(out->d.version, it->c.version);
    assert_true(out->d.reason.p == out->reason);
    assert_int_equal(out->d.reason.n, strlen(out->reason));
}

/* The unit the policy picks for it. */
static const char *
unit_for(const city *c, const route_item *it)
{
    static decided d;

    decide(c, it, &d);
    return d.unit;
}

static void
assert_reason_has(const decided *d, const char *want)
{
    if (strstr(d->reason, want) == NULL) {
        fail_msg("reason \"%s\" does not hold \"%s\"", d->reason, want);
    }
}

/* ---- rules ----------------------------------------------------------------------- */

static void
test_grid_rule_beats_community_beats_district_beats_category_only(void **state)
{
    const city *c = *state;
    route_item *it;
    decided     d;

    it = item_new(1, "roads", "D1", "S1", "C1", "G1");
    decide(c, it, &d);
    assert_string_equal(d.unit, "FIXER");
    assert_string_equal(d.reason, "rule: roads in G1");
    free(it);
    it = item_new(2, "roads", "D1", "S1", "C1", "G2");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    free(it);
    it = item_new(3, "roads", "D1", "S1", "C2", "G3");
    assert_string_equal(unit_for(c, it), "D1-ROADS");
    free(it);
    it = item_new(4, "roads", "D2", NULL, NULL, NULL);
    decide(c, it, &d);
    assert_string_equal(d.unit, "CITY-ROADS");
    assert_string_equal(d.reason, "rule: roads in any place");
    free(it);
}

static void
test_deeper_place_beats_a_named_category(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "roads", "D1", "S2", "C3", NULL);

    /* The category-less rule at S2 is nearer than the roads rule at D1. */
    assert_string_equal(unit_for(c, it), "S2-OFFICE");
    free(it);
}

static void
test_category_rule_beats_category_less_rule_at_the_same_place(void **state)
{
    const city *c = *state;
    route_item *it;
    decided     d;

    /* Written after the category-less S2 rule, and still wins. */
    it = item_new(1, "lights", "D1", "S2", "C3", NULL);
    assert_string_equal(unit_for(c, it), "D1-LIGHTS");
    free(it);
    it = item_new(2, "water", "D1", "S2", NULL, NULL);
    decide(c, it, &d);
    assert_string_equal(d.unit, "S2-OFFICE");
    assert_string_equal(d.reason, "rule: any category in S2");
    free(it);
}

static void
test_equal_rules_first_written_wins(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "noise", "D1", "S1", "C2", "G3");

    assert_string_equal(unit_for(c, it), "C2-CENTRE");
    free(it);
}

static void
test_rule_place_is_read_from_the_tree_not_the_case_codes(void **state)
{
    const city *c = *state;
    route_item *it;

    /* Only the grid given: its community and district come from the tree. */
    it = item_new(1, "roads", "D1", NULL, NULL, "G2");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    free(it);
    /* A grid the city does not know: the community is the most specific place. */
    it = item_new(2, "roads", "D1", "S1", "C1", "G99");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    free(it);
}

/* ---- units that returned the case ------------------------------------------------ */

static void
test_returned_by_skips_to_the_next_best_rule_then_the_fallback(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    item_returned_by(it, "FIXER");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    item_returned_by(it, "C1-CENTRE");
    assert_string_equal(unit_for(c, it), "D1-ROADS");
    item_returned_by(it, "D1-ROADS");
    assert_string_equal(unit_for(c, it), "CITY-ROADS");
    item_returned_by(it, "CITY-ROADS");
    /* No rule left; the community centre returned it too: the street office. */
    decide(c, it, &d);
    assert_string_equal(d.unit, "S1-OFFICE");
    assert_string_equal(d.reason, "territorial: street office of S1");
    free(it);
}

/* ---- the territorial fallback ---------------------------------------------------- */

static void
test_fallback_goes_community_street_department_district_supervision(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "water", "D1", "S1", "C1", "G1");
    decided     d;

    decide(c, it, &d);
    assert_string_equal(d.unit, "C1-CENTRE");
    assert_string_equal(d.reason, "territorial: community centre of C1");
    item_returned_by(it, "C1-CENTRE");
    assert_string_equal(unit_for(c, it), "S1-OFFICE");
    item_returned_by(it, "S1-OFFICE");
    /* D1-ROADS and D1-LIGHTS do not handle water; D1-ANY handles everything. */
    decide(c, it, &d);
    assert_string_equal(d.unit, "D1-ANY");
    assert_string_equal(d.reason, "territorial: department of D1 for water");
    item_returned_by(it, "D1-ANY");
    decide(c, it, &d);
    assert_string_equal(d.unit, "D1-ROADS");
    assert_string_equal(d.reason, "territorial: unit of D1");
    item_returned_by(it, "D1-ROADS");
    assert_string_equal(unit_for(c, it), "D1-LIGHTS");
    item_returned_by(it, "D1-LIGHTS");
    decide(c, it, &d);
    assert_string_equal(d.unit, "SUP");
    assert_string_equal(d.reason, "no rule or territorial unit: supervision decides");
    free(it);
}

static void
test_fallback_in_a_district_without_streets_takes_its_unit(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "water", "D2", NULL, NULL, NULL);

    /* D2-ROADS does not handle water, but it is the unit placed at D2. */
    assert_string_equal(unit_for(c, it), "D2-ROADS");
    free(it);
}

static void
test_unknown_place_goes_to_supervision(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "water", "D9", NULL, NULL, NULL);

    assert_string_equal(unit_for(c, it), "SUP");
    free(it);
}

static void
test_supervision_that_returned_the_case_gives_way_to_another(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(1, "water", "D9", NULL, NULL, NULL);

    item_returned_by(it, "SUP");
    assert_string_equal(unit_for(c, it), "SUP2");
    item_returned_by(it, "SUP2");
    /* Supervision is the last resort: never skipped altogether. */
    assert_string_equal(unit_for(c, it), "SUP");
    free(it);
}

/* ---- max_returns ----------------------------------------------------------------- */

static void
test_max_returns_sends_the_case_to_supervision(void **state)
{
    city       *c  = city_with_max_returns(2);
    route_item *it = item_new(1, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    assert_string_equal(unit_for(c, it), "FIXER");
    item_returned_by(it, "FIXER");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    item_returned_by(it, "C1-CENTRE");
    decide(c, it, &d);
    assert_string_equal(d.unit, "SUP");
    assert_string_equal(d.reason, "returned 2 times: supervision decides");
    free(it);
    city_destroy(&c);
}

static void
test_max_returns_zero_sends_the_first_return_to_supervision(void **state)
{
    city       *c  = city_with_max_returns(0);
    route_item *it = item_new(1, "roads", "D1", "S1", "C1", "G1");

    /* Never returned: routed as usual, not straight to supervision. */
    assert_string_equal(unit_for(c, it), "FIXER");
    item_returned_by(it, "FIXER");
    assert_string_equal(unit_for(c, it), "SUP");
    free(it);
    city_destroy(&c);
}

/* ---- cases without a category ---------------------------------------------------- */

static void
test_case_without_category_matches_only_category_less_rules(void **state)
{
    const city *c = *state;
    route_item *it;

    it = item_new(1, NULL, "D1", "S2", "C3", NULL);
    assert_string_equal(unit_for(c, it), "S2-OFFICE");
    free(it);
    /* In G1 the roads rules do not apply: the territorial fallback does. */
    it = item_new(2, NULL, "D1", "S1", "C1", "G1");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    item_returned_by(it, "C1-CENTRE");
    item_returned_by(it, "S1-OFFICE");
    /* Only a department that handles every category handles no category. */
    assert_string_equal(unit_for(c, it), "D1-ANY");
    free(it);
    /* A category the city does not know is treated as none. */
    it = item_new(3, "potholes", "D1", "S1", "C1", "G1");
    assert_string_equal(unit_for(c, it), "C1-CENTRE");
    free(it);
    it = item_new(4, NULL, "D2", NULL, NULL, NULL);
    assert_string_equal(unit_for(c, it), "D2-ROADS");
    free(it);
}

/* ---- duplicates ------------------------------------------------------------------ */

static void
test_duplicate_in_the_same_grid(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    candidate_add(it, 5, "roads", "G1", T0 - HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 5);
    /* The unit is still decided by the rules. */
    assert_string_equal(d.unit, "FIXER");
    assert_reason_has(&d, "rule: roads in G1; duplicate of 5");
    assert_reason_has(&d, "same grid G1");
    free(it);
}

static void
test_duplicate_by_distance_inside_and_outside_the_radius(void **state)
{
    const city      *c  = *state;
    route_item      *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    route_candidate *near, *far;
    decided          d;

    it->c.location.has_coords = true;
    it->c.location.lat        = 31.2304;
    it->c.location.lon        = 121.4737;
    /* 0.00045 degrees of latitude is 50 m; 0.00135 is 150 m. Other grids, so only
     * the distance can make them match. */
    far = candidate_add(it, 4, "roads", "G2", T0 - 2 * HOUR_MS);
    far->has_coords = true;
    far->lat        = 31.2304 + 0.00135;
    far->lon        = 121.4737;
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    assert_null(strstr(d.reason, "duplicate"));

    near = candidate_add(it, 6, "roads", NULL, T0 - HOUR_MS);
    near->has_coords = true;
    near->lat        = 31.2304 + 0.00045;
    near->lon        = 121.4737;
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 6);
    assert_reason_has(&d, "50 m away");
    free(it);
}

static void
test_coordinates_on_one_side_only_do_not_match(void **state)
{
    const city      *c  = *state;
    route_item      *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    route_candidate *k  = candidate_add(it, 6, "roads", "G2", T0 - HOUR_MS);
    decided          d;

    k->has_coords = true;
    k->lat        = 31.2304;
    k->lon        = 121.4737;
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    free(it);
}

static void
test_candidate_outside_the_window_is_not_a_duplicate(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    candidate_add(it, 3, "roads", "G1", T0 - 25 * HOUR_MS);
    /* Created after the case: it cannot be the one the case repeats. */
    candidate_add(it, 12, "roads", "G1", T0 + 1);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    candidate_add(it, 4, "roads", "G1", T0 - 24 * HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 4);
    free(it);
}

static void
test_oldest_duplicate_wins(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    candidate_add(it, 8, "roads", "G1", T0 - 1 * HOUR_MS);
    candidate_add(it, 7, "roads", "G1", T0 - 3 * HOUR_MS);
    candidate_add(it, 9, "roads", "G1", T0 - 2 * HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 7);
    free(it);
}

static void
test_same_millisecond_only_a_smaller_id_is_older(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    candidate_add(it, 11, "roads", "G1", T0);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    candidate_add(it, 9, "roads", "G1", T0);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 9);
    free(it);
}

static void
test_duplicate_points_at_the_root_of_a_chain(void **state)
{
    const city      *c  = *state;
    route_item      *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    route_candidate *k;
    decided          d;

    /* 7 joined 3, which is not open any more (not a candidate): link to 3. */
    k = candidate_add(it, 7, "roads", "G1", T0 - 2 * HOUR_MS);
    k->duplicate_of = 3;
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 3);
    assert_reason_has(&d, "duplicate of 3 (via 7)");
    free(it);

    /* A chain through the candidates, 7 -> 5 -> 2, is followed to its end. */
    it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    k  = candidate_add(it, 7, "roads", "G1", T0 - 2 * HOUR_MS);
    k->duplicate_of = 5;
    k  = candidate_add(it, 5, "water", "G2", T0 - 30 * HOUR_MS);
    k->duplicate_of = 2;
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 2);
    free(it);
}

static void
test_different_category_is_not_a_duplicate(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    candidate_add(it, 5, "lights", "G1", T0 - HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    free(it);

    /* Nor is anything a duplicate of a case without a category. */
    it = item_new(11, NULL, "D1", "S1", "C1", "G1");
    candidate_add(it, 5, NULL, "G1", T0 - HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 0);
    free(it);
}

static void
test_case_already_linked_keeps_its_link(void **state)
{
    const city *c  = *state;
    route_item *it = item_new(10, "roads", "D1", "S1", "C1", "G1");
    decided     d;

    it->c.duplicate_of = 4;
    candidate_add(it, 2, "roads", "G1", T0 - HOUR_MS);
    decide(c, it, &d);
    assert_int_equal(d.d.duplicate_of, 4);
    assert_reason_has(&d, "still duplicate of 4");
    free(it);
}

/* ---- the rest -------------------------------------------------------------------- */

static void
test_distance_of_one_degree_of_latitude(void **state)
{
    double d = route_policy_distance_m(30.0, 120.0, 31.0, 120.0);

    assert_true(d > 111100.0 && d < 111300.0);
    assert_true(route_policy_distance_m(30.0, 120.0, 30.0, 120.0) == 0.0);
    d = route_policy_distance_m(0.0, 0.0, 0.0, 180.0);
    assert_true(d > 20015000.0 && d < 20016000.0);
}

static void
test_reason_is_truncated_to_the_buffer(void **state)
{
    const city    *c  = *state;
    route_item    *it = item_new(1, "roads", "D1", "S1", "C1", "G1");
    route_decision d;
    char           small[8];

    assert_int_equal(route_policy_decide(c, it, &d, small, sizeof small), 0);
    assert_string_equal(small, "rule: r");
    assert_int_equal(d.reason.n, 7);
    free(it);
}

static void
test_bad_arguments_are_refused(void **state)
{
    const city    *c  = *state;
    route_item    *it = item_new(1, "roads", "D1", "S1", "C1", "G1");
    route_decision d;
    char           reason[16];

    assert_int_equal(route_policy_decide(NULL, it, &d, reason, sizeof reason), GL_EINVALID);
    assert_int_equal(route_policy_decide(c, NULL, &d, reason, sizeof reason), GL_EINVALID);
    assert_int_equal(route_policy_decide(c, it, NULL, reason, sizeof reason), GL_EINVALID);
    assert_int_equal(route_policy_decide(c, it, &d, NULL, 0), GL_EINVALID);
    free(it);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_rule_beats_community_beats_district_beats_category_only),
        cmocka_unit_test(test_deeper_place_beats_a_named_category),
        cmocka_unit_test(test_category_rule_beats_category_less_rule_at_the_same_place),
        cmocka_unit_test(test_equal_rules_first_written_wins),
        cmocka_unit_test(test_rule_place_is_read_from_the_tree_not_the_case_codes),
        cmocka_unit_test(test_returned_by_skips_to_the_next_best_rule_then_the_fallback),
        cmocka_unit_test(test_fallback_goes_community_street_department_district_supervision),
        cmocka_unit_test(test_fallback_in_a_district_without_streets_takes_its_unit),
        cmocka_unit_test(test_unknown_place_goes_to_supervision),
        cmocka_unit_test(test_supervision_that_returned_the_case_gives_way_to_another),
        cmocka_unit_test(test_max_returns_sends_the_case_to_supervision),
        cmocka_unit_test(test_max_returns_zero_sends_the_first_return_to_supervision),
        cmocka_unit_test(test_case_without_category_matches_only_category_less_rules),
        cmocka_unit_test(test_duplicate_in_the_same_grid),
        cmocka_unit_test(test_duplicate_by_distance_inside_and_outside_the_radius),
        cmocka_unit_test(test_coordinates_on_one_side_only_do_not_match),
        cmocka_unit_test(test_candidate_outside_the_window_is_not_a_duplicate),
        cmocka_unit_test(test_oldest_duplicate_wins),
        cmocka_unit_test(test_same_millisecond_only_a_smaller_id_is_older),
        cmocka_unit_test(test_duplicate_points_at_the_root_of_a_chain),
        cmocka_unit_test(test_different_category_is_not_a_duplicate),
        cmocka_unit_test(test_case_already_linked_keeps_its_link),
        cmocka_unit_test(test_distance_of_one_degree_of_latitude),
        cmocka_unit_test(test_reason_is_truncated_to_the_buffer),
        cmocka_unit_test(test_bad_arguments_are_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
