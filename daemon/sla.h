/*
 * sla: which SLA class governs a case, and when its deadlines fall.
 *
 * The class comes from the city's catalogue: the category's class for the case's
 * urgency; a case without a known category gets the city's first class. Deadlines
 * count from the dispatch. Classes counted in working time need the business calendar
 * (the closed-loop issue); until then every class counts wall-clock time, which is
 * the earlier (stricter) deadline.
 */
#ifndef SLA_H
#define SLA_H

#include "city.h"

#include <stdint.h>

/* The class for a case; NULL only if the city has no classes (city_new refuses that). */
const city_sla *sla_class_for(const city *c, gl_str category, case_urgency urgency);

/* accept_by and resolve_by for a case dispatched at `from`. */
void sla_deadlines(const city_sla *cls, int64_t from, int64_t *accept_by, int64_t *resolve_by);

#endif
