/*
 * route_policy: the router's policy. See route_policy.h for the rules.
 *
 * Every step is a linear scan over the rules, the units or the candidates. A city has
 * tens to a few hundred of each and a case at most ROUTE_MAX_CANDIDATES candidates, so
 * a scan costs a few microseconds: far below the daemon's commit, and with no index to
 * build or keep in step with the city. The rule scan keeps the best match seen so far
 * instead of sorting the rules once, because "best" depends on which units returned
 * the case.
 */
#include "route_policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EARTH_RADIUS_M 6371008.8   /* mean radius (IUGG) */
#define DEG_TO_RAD     (3.14159265358979323846 / 180.0)

/* Where a case is, as indexes into city.places; -1 where it has no such level. */
typedef struct {
    int place;        /* the most specific place the city knows */
    int district, street, community;
    int category;     /* -1: no category, or one the city does not know */
} case_where;

/* ---- helpers --------------------------------------------------------------------- */

static void
say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* Appends to what buf already holds; truncates quietly, the reason is only a note. */
static void
say_more(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
say_more(char *buf, size_t cap, const char *fmt, ...)
{
    size_t  n = strlen(buf);
    va_list ap;

    if (n + 1 >= cap) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static bool
has_returned(const case_record *k, const char *unit_code)
{
    uint32_t i;

    for (i = 0; i < k->n_returned_by && i < CASE_MAX_RETURNED; i++) {
        if (gl_str_eq(k->returned_by[i], unit_code)) {
            return true;
        }
    }
    return false;
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

/* 0 for no place, then 1 (district) to 4 (grid): deeper is nearer the case. */
static int
place_depth(const city *c, int p)
{
    return p < 0 ? 0 : (int)c->places[p].level + 1;
}

static bool
unit_handles(const city_unit *u, int category)
{
    size_t i;

    if (u->n_categories == 0) {
        return true;
    }
    for (i = 0; i < u->n_categories; i++) {
        if (category >= 0 && u->categories[i] == category) {
            return true;
        }
    }
    return false;
}

/* The case's place is its most specific code the city knows; its ancestors come from
 * the tree, not from the case's other codes, so the two can never disagree. */
static void
case_locate(const city *c, const case_record *k, case_where *w)
{
    const gl_str codes[] = { k->location.grid, k->location.community, k->location.street,
                             k->location.district };
    size_t       i;
    int          p;

    w->place = w->district = w->street = w->community = -1;
    for (i = 0; i < sizeof codes / sizeof codes[0] && w->place < 0; i++) {
        if (codes[i].n > 0) {
            w->place = city_place_find(c, codes[i]);
        }
    }
    for (p = w->place; p >= 0; p = c->places[p].parent) {
        switch (c->places[p].level) {
        case PLACE_DISTRICT:  w->district = p; break;
        case PLACE_STREET:    w->street = p; break;
        case PLACE_COMMUNITY: w->community = p; break;
        case PLACE_GRID:      break;
        }
    }
    w->category = k->category.n > 0 ? city_category_find(c, k->category) : -1;
}

static int
supervision_unit(const city *c, const case_record *k)
{
    size_t i;
    int    first = -1;

    for (i = 0; i < c->n_units; i++) {
        if (c->units[i].kind != UNIT_SUPERVISION) {
            continue;
        }
        if (!has_returned(k, c->units[i].code)) {
            return (int)i;
        }
        if (first < 0) {
            first = (int)i;
        }
    }
    return first;
}

/* ---- the unit -------------------------------------------------------------------- */

/* The best matching rule's index, or -1. */
static int
rule_match(const city *c, const case_record *k, const case_where *w)
{
    size_t i;
    int    best = -1, best_depth = -1;
    bool   best_cat = false;

    for (i = 0; i < c->n_rules; i++) {
        const city_rule *r = &c->rules[i];
        int              depth;
        bool             cat;

        if (r->category >= 0 && r->category != w->category) {
            continue;
        }
        if (r->place >= 0 && (w->place < 0 || !place_within(c, w->place, r->place))) {
            continue;
        }
        if (has_returned(k, c->units[r->unit].code)) {
            continue;
        }
        depth = place_depth(c, r->place);
        cat   = r->category >= 0;
        /* Strictly better only, so that among equals the first written stays. */
        if (depth > best_depth || (depth == best_depth && cat && !best_cat)) {
            best       = (int)i;
            best_depth = depth;
            best_cat   = cat;
        }
    }
    return best;
}

typedef enum { FALL_COMMUNITY, FALL_STREET, FALL_DEPARTMENT, FALL_DISTRICT } fall_step;

/* The first unit, in file order, that the step accepts for the case; -1 if none. */
static int
fallback_find(const city *c, const case_record *k, const case_where *w, fall_step step)
{
    size_t i;

    for (i = 0; i < c->n_units; i++) {
        const city_unit *u  = &c->units[i];
        bool             ok = false;

        switch (step) {
        case FALL_COMMUNITY:
            ok = u->kind == UNIT_COMMUNITY_CENTRE && w->community >= 0
                 && u->place == w->community;
            break;
        case FALL_STREET:
            ok = u->kind == UNIT_STREET_OFFICE && w->street >= 0 && u->place == w->street;
            break;
        case FALL_DEPARTMENT:
            ok = u->kind == UNIT_DEPARTMENT && w->district >= 0 && u->place == w->district
                 && unit_handles(u, w->category);
            break;
        case FALL_DISTRICT:
            ok = w->district >= 0 && u->place == w->district;
            break;
        }
        if (ok && !has_returned(k, u->code)) {
            return (int)i;
        }
    }
    return -1;
}

/* The territorial unit for the case, with the reason written; -1 if there is none. */
static int
fallback_unit(const city *c, const case_record *k, const case_where *w, char *buf,
              size_t cap)
{
    int u;

    if ((u = fallback_find(c, k, w, FALL_COMMUNITY)) >= 0) {
        say(buf, cap, "territorial: community centre of %s", c->places[w->community].code);
    } else if ((u = fallback_find(c, k, w, FALL_STREET)) >= 0) {
        say(buf, cap, "territorial: street office of %s", c->places[w->street].code);
    } else if ((u = fallback_find(c, k, w, FALL_DEPARTMENT)) >= 0) {
        say(buf, cap, "territorial: department of %s for %s", c->places[w->district].code,
            w->category >= 0 ? c->categories[w->category].code : "any category");
    } else if ((u = fallback_find(c, k, w, FALL_DISTRICT)) >= 0) {
        say(buf, cap, "territorial: unit of %s", c->places[w->district].code);
    }
    return u;
}

/* ---- duplicates ------------------------------------------------------------------ */

double
route_policy_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double dlat = (lat2 - lat1) * DEG_TO_RAD;
    double dlon = (lon2 - lon1) * DEG_TO_RAD;
    double a    = sin(dlat / 2) * sin(dlat / 2)
                  + cos(lat1 * DEG_TO_RAD) * cos(lat2 * DEG_TO_RAD)
                    * sin(dlon / 2) * sin(dlon / 2);

    /* Rounding can push a just past 1 for antipodes; asin would give NaN. */
    if (a > 1.0) {
        a = 1.0;
    }
    return 2.0 * EARTH_RADIUS_M * asin(sqrt(a));
}

/* True when k was created before the case (at the same ms: has a smaller id) and at
 * most window ms before it. Compared in unsigned arithmetic: the times come off the
 * wire and their difference may not fit in int64_t. */
static bool
in_window(const case_record *cs, const route_candidate *k, int64_t window)
{
    uint64_t age;

    if (k->created_at > cs->created_at
        || (k->created_at == cs->created_at && k->id >= cs->id)) {
        return false;
    }
    age = (uint64_t)cs->created_at - (uint64_t)k->created_at;
    return age <= (uint64_t)window;
}

static bool
older(const route_candidate *a, const route_candidate *b)
{
    return a->created_at < b->created_at || (a->created_at == b->created_at && a->id < b->id);
}

/* The oldest candidate that repeats the case, or NULL; *dist is its distance in metres
 * when it matched by coordinates only, else -1. */
static const route_candidate *
duplicate_find(const city *c, const route_item *it, double *dist)
{
    const case_record     *cs   = &it->c;
    const route_candidate *best = NULL;
    uint32_t               i;

    *dist = -1.0;
    if (cs->category.n == 0) {
        return NULL;
    }
    for (i = 0; i < it->n_candidates && i < ROUTE_MAX_CANDIDATES; i++) {
        const route_candidate *k    = &it->candidates[i];
        bool                   grid = false;
        double                 d    = -1.0;

        if (k->id == cs->id || !gl_str_eq2(k->category, cs->category)
            || !in_window(cs, k, c->dup_window_ms)) {
            continue;
        }
        grid = cs->location.grid.n > 0 && gl_str_eq2(k->grid, cs->location.grid);
        if (!grid) {
            if (!cs->location.has_coords || !k->has_coords) {
                continue;
            }
            d = route_policy_distance_m(cs->location.lat, cs->location.lon, k->lat, k->lon);
            /* Written so that a NaN distance (odd coordinates) is no match. */
            if (!(d <= c->dup_distance_m)) {
                continue;
            }
        }
        if (best == NULL || older(k, best)) {
            best  = k;
            *dist = grid ? -1.0 : d;
        }
    }
    return best;
}

/* The case the duplicate chain from k ends at: k's own duplicate_of, followed through
 * the other candidates while they are duplicates too. Bounded by the number of
 * candidates, so a cycle in the data cannot loop. */
static uint64_t
duplicate_root(const route_item *it, const route_candidate *k)
{
    uint64_t root = k->duplicate_of != 0 ? k->duplicate_of : k->id;
    uint32_t hop, i;

    for (hop = 0; hop < it->n_candidates; hop++) {
        const route_candidate *next = NULL;

        for (i = 0; i < it->n_candidates && i < ROUTE_MAX_CANDIDATES; i++) {
            if (it->candidates[i].id == root && it->candidates[i].duplicate_of != 0) {
                next = &it->candidates[i];
                break;
            }
        }
        if (next == NULL) {
            break;
        }
        root = next->duplicate_of;
    }
    /* A chain leading back to the case itself is bad data: link to the one it repeats. */
    return root == it->c.id ? k->id : root;
}

static void
duplicates_decide(const city *c, const route_item *it, route_decision *out, char *buf,
                  size_t cap)
{
    const route_candidate *k;
    double                 dist;

    if (it->c.duplicate_of != 0) {
        out->duplicate_of = it->c.duplicate_of;
        say_more(buf, cap, "; still duplicate of %llu",
                 (unsigned long long)it->c.duplicate_of);
        return;
    }
    k = duplicate_find(c, it, &dist);
    if (k == NULL) {
        return;
    }
    out->duplicate_of = duplicate_root(it, k);
    say_more(buf, cap, "; duplicate of %llu", (unsigned long long)out->duplicate_of);
    if (out->duplicate_of != k->id) {
        say_more(buf, cap, " (via %llu)", (unsigned long long)k->id);
    }
    if (dist < 0) {
        say_more(buf, cap, ": same grid %.*s, same %.*s", (int)it->c.location.grid.n,
                 it->c.location.grid.p, (int)it->c.category.n, it->c.category.p);
    } else {
        say_more(buf, cap, ": %.0f m away, same %.*s", dist, (int)it->c.category.n,
                 it->c.category.p);
    }
}

/* ---- the decision ---------------------------------------------------------------- */

int
route_policy_decide(const city *c, const route_item *item, route_decision *out,
                    char *reason_buf, size_t cap)
{
    const case_record *k;
    case_where         w;
    int                u = -1, r;

    if (c == NULL || item == NULL || out == NULL || reason_buf == NULL || cap == 0) {
        return GL_EINVALID;
    }
    k = &item->c;
    memset(out, 0, sizeof *out);
    out->id      = k->id;
    out->version = k->version;
    reason_buf[0] = '\0';
    case_locate(c, k, &w);

    if (k->return_count > 0 && k->return_count >= c->max_returns) {
        u = supervision_unit(c, k);
        say(reason_buf, cap, "returned %u times: supervision decides", k->return_count);
    } else if ((r = rule_match(c, k, &w)) >= 0) {
        const city_rule *rule = &c->rules[r];

        u = rule->unit;
        say(reason_buf, cap, "rule: %s in %s",
            rule->category >= 0 ? c->categories[rule->category].code : "any category",
            rule->place >= 0 ? c->places[rule->place].code : "any place");
    } else if ((u = fallback_unit(c, k, &w, reason_buf, cap)) < 0) {
        u = supervision_unit(c, k);
        say(reason_buf, cap, "no rule or territorial unit: supervision decides");
    }
    if (u < 0) {
        return GL_EINTERNAL;
    }
    out->unit = gl_str_c(c->units[u].code);
    duplicates_decide(c, item, out, reason_buf, cap);
    out->reason = gl_str_c(reason_buf);
    return 0;
}
