/* escalate_policy: due deadline -> outcome (see escalate_policy.h). */
#include "escalate_policy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A deadline as a person reads it in an event's note, in the city's clock. */
static const char *when(const city *c, int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000) + (time_t)c->utc_offset_min * 60;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static bool handles(const city_unit *u, int category)
{
    if (u->n_categories == 0) {
        return true;
    }
    for (size_t i = 0; i < u->n_categories; i++) {
        if (u->categories[i] == category) {
            return true;
        }
    }
    return false;
}

static int supervision(const city *c)
{
    for (size_t i = 0; i < c->n_units; i++) {
        if (c->units[i].kind == UNIT_SUPERVISION) {
            return (int)i;
        }
    }
    return -1;
}

/* The street and district of the case, from its location or from the unit's place. */
static void places_of(const city *c, const case_record *cs, int unit, int *street,
                      int *district)
{
    *street = cs->location.street.n > 0 ? city_place_find(c, cs->location.street) : -1;
    *district = city_place_find(c, cs->location.district);
    int p = unit >= 0 ? c->units[unit].place : -1;
    while (p >= 0) {
        if (*street < 0 && c->places[p].level == PLACE_STREET) {
            *street = p;
        }
        if (*district < 0 && c->places[p].level == PLACE_DISTRICT) {
            *district = p;
        }
        p = c->places[p].parent;
    }
}

static int unit_at(const city *c, int place, unit_kind kind, int category, bool need_category)
{
    for (size_t i = 0; i < c->n_units && place >= 0; i++) {
        const city_unit *u = &c->units[i];
        if (u->place == place && u->kind == kind
            && (!need_category || category < 0 || handles(u, category))) {
            return (int)i;
        }
    }
    return -1;
}

int escalate_policy_next_unit(const city *c, const case_record *cs)
{
    int unit = cs->unit.n > 0 ? city_unit_find(c, cs->unit) : -1;
    int category = cs->category.n > 0 ? city_category_find(c, cs->category) : -1;
    int street, district, next = -1;
    if (unit >= 0 && c->units[unit].kind == UNIT_SUPERVISION) {
        return -1;   /* the top */
    }
    places_of(c, cs, unit, &street, &district);
    unit_kind kind = unit >= 0 ? c->units[unit].kind : UNIT_DEPARTMENT;
    if (unit >= 0 && kind == UNIT_COMMUNITY_CENTRE) {
        next = unit_at(c, street, UNIT_STREET_OFFICE, category, false);
    }
    if (next < 0 && unit >= 0 && kind != UNIT_DEPARTMENT) {
        /* A street office, or a centre whose street has none: the district's department
         * for the category, else whatever unit the district has. */
        next = unit_at(c, district, UNIT_DEPARTMENT, category, true);
        if (next < 0) {
            next = unit_at(c, district, UNIT_DEPARTMENT, category, false);
        }
    }
    if (next < 0 || next == unit) {
        next = supervision(c);
    }
    return next == unit ? -1 : next;
}

int escalate_policy_decide(const city *c, const escalate_item *item, escalate_decision *out,
                           char *reason, size_t cap)
{
    const case_record *cs = &item->c;
    char t[32];
    memset(out, 0, sizeof *out);
    out->id = cs->id;
    out->version = cs->version;
    out->kind = item->kind;
    switch (item->kind) {
    case DEADLINE_WARN:
        out->outcome = OUTCOME_WARN;
        snprintf(reason, cap, "超时预警: %.*s has until %s to resolve it",
                 (int)cs->unit.n, cs->unit.p, when(c, cs->resolve_by, t, sizeof t));
        break;
    case DEADLINE_ACCEPT:
        out->outcome = OUTCOME_URGE;
        snprintf(reason, cap, "催办: %.*s has not signed for it by %s", (int)cs->unit.n,
                 cs->unit.p, when(c, cs->accept_by, t, sizeof t));
        break;
    default: {
        int next = escalate_policy_next_unit(c, cs);
        if (next >= 0) {
            out->outcome = OUTCOME_ESCALATE;
            out->unit = gl_str_c(c->units[next].code);
            snprintf(reason, cap, "not resolved by %s: escalated from %.*s to %s",
                     when(c, cs->resolve_by, t, sizeof t), (int)cs->unit.n, cs->unit.p,
                     c->units[next].code);
        } else if (!cs->supervised) {
            out->outcome = OUTCOME_SUPERVISE;
            snprintf(reason, cap, "督办: not resolved by %s at the top of the hierarchy",
                     when(c, cs->resolve_by, t, sizeof t));
        } else {
            out->outcome = OUTCOME_URGE;
            snprintf(reason, cap, "催办: still not resolved, under supervision");
        }
        break;
    }
    }
    out->reason = gl_str_c(reason);
    return 0;
}
