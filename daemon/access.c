/* access: the policy table and the scope checks (see access.h). */
#include "access.h"

#include <stdio.h>
#include <string.h>

#define BIT(x) (1u << (x))
#define ALL_ACTIONS (BIT(ACT_COUNT) - 1u)

static const char *const service_names[SVC_COUNT] = {
    "case.create", "case.get", "case.list", "case.act", "feed.pull", "stats.query",
    "catalog.get"
};

/* The policy, after protocol.md's "Actions and who may take them": the handling unit
 * works its cases, the supervisor steers them, the hotline and window speak for the
 * resident, anyone who may see a case may note on it, and a grid gateway only reports.
 * stats.query gives counts and rates, nothing about a person, so every role but the
 * gateway may ask. */
static const struct {
    unsigned services;
    unsigned actions;
} policy[ROLE_COUNT] = {
    [ROLE_HOTLINE] = {
        BIT(SVC_CREATE) | BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_ACT) | BIT(SVC_FEED)
            | BIT(SVC_STATS) | BIT(SVC_CATALOG),
        BIT(ACT_CALLBACK) | BIT(ACT_WITHDRAW) | BIT(ACT_NOTE) },
    [ROLE_WINDOW] = {
        BIT(SVC_CREATE) | BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_ACT) | BIT(SVC_FEED)
            | BIT(SVC_STATS) | BIT(SVC_CATALOG),
        BIT(ACT_CALLBACK) | BIT(ACT_WITHDRAW) | BIT(ACT_NOTE) },
    [ROLE_GRID] = {
        BIT(SVC_CREATE) | BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_CATALOG),
        0 },
    [ROLE_UNIT] = {
        BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_ACT) | BIT(SVC_FEED) | BIT(SVC_STATS)
            | BIT(SVC_CATALOG),
        BIT(ACT_ACCEPT) | BIT(ACT_NOTE) | BIT(ACT_RESOLVE) | BIT(ACT_RETURN)
            | BIT(ACT_EXTEND) },
    [ROLE_SUPERVISOR] = {
        BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_ACT) | BIT(SVC_FEED) | BIT(SVC_STATS)
            | BIT(SVC_CATALOG),
        BIT(ACT_APPROVE_EXTENSION) | BIT(ACT_REJECT_EXTENSION) | BIT(ACT_URGE)
            | BIT(ACT_SUPERVISE) | BIT(ACT_ESCALATE) | BIT(ACT_REASSIGN) | BIT(ACT_MERGE)
            | BIT(ACT_NOTE) },
    [ROLE_OBSERVER] = {
        BIT(SVC_GET) | BIT(SVC_LIST) | BIT(SVC_ACT) | BIT(SVC_FEED) | BIT(SVC_STATS)
            | BIT(SVC_CATALOG),
        BIT(ACT_NOTE) },
    [ROLE_ADMIN] = { BIT(SVC_COUNT) - 1u, ALL_ACTIONS },
};

int access_service_parse(gl_str name)
{
    for (int i = 0; i < SVC_COUNT; i++) {
        if (gl_str_eq(name, service_names[i])) {
            return i;
        }
    }
    return -1;
}

int access_service_allowed(const principal *p, access_service s, gl_error *err)
{
    if ((policy[p->role].services & BIT(s)) != 0) {
        return 0;
    }
    return gl_error_set(err, GL_EFORBIDDEN, NULL, "%s (role %s) may not use %s", p->name,
                        principal_role_name(p->role), service_names[s]);
}

int access_action(const principal *p, case_action a, gl_error *err)
{
    if ((policy[p->role].actions & BIT(a)) != 0) {
        return 0;
    }
    char may[256];
    size_t n = 0;
    may[0] = '\0';
    for (int i = 0; i < ACT_COUNT; i++) {
        if ((policy[p->role].actions & BIT(i)) != 0 && n < sizeof may) {
            n += (size_t)snprintf(may + n, sizeof may - n, "%s%s", n > 0 ? ", " : "",
                                  case_action_name((case_action)i));
        }
    }
    return gl_error_set(err, GL_EFORBIDDEN, "action", "%s (role %s) may not %s a case; it "
                        "may: %s", p->name, principal_role_name(p->role),
                        case_action_name(a), n > 0 ? may : "no action");
}

/* The location's code at a level. */
static gl_str location_at(const case_location *loc, place_level level)
{
    switch (level) {
    case PLACE_DISTRICT:  return loc->district;
    case PLACE_STREET:    return loc->street;
    case PLACE_COMMUNITY: return loc->community;
    case PLACE_GRID:      return loc->grid;
    }
    return GL_STR_NULL;
}

static gl_str *filter_at(request_filter *f, place_level level)
{
    switch (level) {
    case PLACE_DISTRICT:  return &f->district;
    case PLACE_STREET:    return &f->street;
    case PLACE_COMMUNITY: return &f->community;
    case PLACE_GRID:      return &f->grid;
    }
    return &f->district;
}

static bool at_place(const principal *p, const city *town, const case_location *loc)
{
    if (p->place < 0) {
        return true;
    }
    const city_place *pl = &town->places[p->place];
    return gl_str_eq(location_at(loc, pl->level), pl->code);
}

static int outside(const principal *p, const city *town, gl_error *err, const char *what)
{
    if (p->role == ROLE_UNIT) {
        return gl_error_set(err, GL_EFORBIDDEN, NULL, "%s: %s sees only the cases unit %s "
                            "handles", what, p->name, town->units[p->unit].code);
    }
    if (p->role == ROLE_GRID) {
        return gl_error_set(err, GL_EFORBIDDEN, NULL, "%s: %s sees only the cases it "
                            "registered%s%s", what, p->name, p->place >= 0 ? " in " : "",
                            p->place >= 0 ? town->places[p->place].code : "");
    }
    return gl_error_set(err, GL_EFORBIDDEN, NULL, "%s: %s sees only the cases in %s", what,
                        p->name, town->places[p->place].code);
}

int access_case(const principal *p, const city *town, const case_record *c, gl_error *err)
{
    bool ok;
    switch (p->role) {
    case ROLE_ADMIN:
        return 0;
    case ROLE_UNIT:
        ok = gl_str_eq(c->unit, town->units[p->unit].code);
        break;
    case ROLE_GRID:
        ok = gl_str_eq(c->created_by, p->name) && at_place(p, town, &c->location);
        break;
    default:
        ok = at_place(p, town, &c->location);
        break;
    }
    return ok ? 0 : outside(p, town, err, "that case is outside your scope");
}

int access_create(const principal *p, const city *town, const case_location *loc,
                  gl_error *err)
{
    if (at_place(p, town, loc)) {
        return 0;
    }
    const city_place *pl = &town->places[p->place];
    static const char *const field[] = {
        [PLACE_DISTRICT] = "location.district", [PLACE_STREET] = "location.street",
        [PLACE_COMMUNITY] = "location.community", [PLACE_GRID] = "location.grid"
    };
    return gl_error_set(err, GL_EFORBIDDEN, field[pl->level], "%s registers cases in %s "
                        "only: give %s = \"%s\" (or a place inside it)", p->name, pl->code,
                        field[pl->level], pl->code);
}

/* Puts want into *slot, unless the caller asked for something else there. */
static int narrow(gl_str *slot, const char *want, const principal *p, const city *town,
                  gl_error *err, const char *what)
{
    if (slot->n > 0 && !gl_str_eq(*slot, want)) {
        return outside(p, town, err, what);
    }
    *slot = gl_str_c(want);
    return 0;
}

/* Whether place a is b or one of its ancestors. */
static bool place_within(const city *town, int a, int b)
{
    for (int i = b; i >= 0; i = town->places[i].parent) {
        if (i == a) {
            return true;
        }
    }
    return false;
}

int access_list(const principal *p, const city *town, request_filter *f, gl_error *err)
{
    if (p->role == ROLE_UNIT) {
        return narrow(&f->unit, town->units[p->unit].code, p, town, err,
                      "filter.unit is outside your scope");
    }
    if (p->role != ROLE_ADMIN && p->place >= 0) {
        const city_place *pl = &town->places[p->place];
        /* A place filter at another level than the scope's is refused when the two
         * places do not nest (a D01 supervisor asking for street D02-S01): narrowing
         * alone would answer an empty list, which reads as "no cases there". */
        for (int level = PLACE_DISTRICT; level <= PLACE_GRID; level++) {
            gl_str want = *filter_at(f, (place_level)level);
            int at = want.n > 0 ? city_place_find(town, want) : -1;
            if (at >= 0 && !place_within(town, at, p->place)
                && !place_within(town, p->place, at)) {
                return outside(p, town, err, "the filter's place is outside your scope");
            }
        }
        return narrow(filter_at(f, pl->level), pl->code, p, town, err,
                      "the filter's place is outside your scope");
    }
    return 0;
}

int access_feed(const principal *p, const city *town, request_feed *f, gl_error *err)
{
    if (p->role == ROLE_UNIT) {
        return narrow(&f->unit, town->units[p->unit].code, p, town, err,
                      "filter.unit is outside your scope");
    }
    if (p->role == ROLE_ADMIN || p->place < 0) {
        return 0;
    }
    int district = p->place;
    while (town->places[district].parent >= 0) {
        district = town->places[district].parent;
    }
    return narrow(&f->district, town->places[district].code, p, town, err,
                  "filter.district is outside your scope");
}

bool access_feed_by_case(const principal *p, const city *town)
{
    return p->role != ROLE_ADMIN && p->role != ROLE_UNIT && p->place >= 0
           && town->places[p->place].level != PLACE_DISTRICT;
}

bool access_tap(const principal *p)
{
    return (policy[p->role].services & BIT(SVC_FEED)) != 0 && p->role != ROLE_UNIT
           && (p->role == ROLE_ADMIN || p->place < 0);
}

unsigned access_pack_flags(const principal *p)
{
    return p->sees_reporter ? 0u : CASE_PACK_MASK_PHONE | CASE_PACK_MASK_NAME;
}
