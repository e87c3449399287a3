/* sla: class look-up and deadlines (see sla.h). */
#include "sla.h"

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

void sla_deadlines(const city *c, const city_sla *cls, int64_t from, sla_times *out)
{
    (void)c;   /* the business calendar, for working-time classes: not read yet */
    out->accept_by = from + cls->accept_ms;
    out->resolve_by = from + cls->resolve_ms;
    out->warn_at = from + (int64_t)((double)cls->resolve_ms * cls->warn_ratio);
}
