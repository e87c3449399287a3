/* sla: class look-up and deadlines (see sla.h). */
#include "sla.h"

#include "log.h"

#include <stdatomic.h>

const city_sla *sla_class_for(const city *c, gl_str category, case_urgency urgency)
{
    if (c->n_sla == 0) {
        return NULL;
    }
    int cat = category.n > 0 ? city_category_find(c, category) : -1;
    if (cat >= 0 && (unsigned)urgency < URGENCY_COUNT) {
        int cls = c->categories[cat].sla[urgency];
        if (cls >= 0 && (size_t)cls < c->n_sla) {
            return &c->sla[cls];
        }
    }
    return &c->sla[0];
}

/* from + span_ms of working time. city_new refuses a calendar without working days or
 * hours, so the wall-clock fallback needs years of listed holidays in a row: said once
 * per process, since the same calendar would say it again for every case. */
static int64_t working_add(const city *c, const city_sla *cls, int64_t from, int64_t span_ms)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    bool fell_back;
    int64_t at = calendar_add_checked(&c->calendar, c->utc_offset_min, from, span_ms,
                                      &fell_back);
    if (fell_back && !atomic_flag_test_and_set(&warned)) {
        log_warn("sla: class %s: the business calendar has no working time within %d days "
                 "of %lld; its deadlines count wall-clock time", cls->code,
                 CALENDAR_GIVE_UP_DAYS, (long long)from);
    }
    return at;
}

void sla_deadlines(const city *c, const city_sla *cls, int64_t from, sla_times *out)
{
    int64_t warn_ms = (int64_t)((double)cls->resolve_ms * cls->warn_ratio);
    if (!cls->working_time) {
        out->accept_by = from + cls->accept_ms;
        out->resolve_by = from + cls->resolve_ms;
        out->warn_at = from + warn_ms;
        return;
    }
    out->accept_by = working_add(c, cls, from, cls->accept_ms);
    out->resolve_by = working_add(c, cls, from, cls->resolve_ms);
    out->warn_at = working_add(c, cls, from, warn_ms);
}
