/*
 * sla: which SLA class governs a case, and when its deadlines fall.
 *
 * The class comes from the city's catalogue: the category's class for the case's
 * urgency; a case without a known category gets the city's first class. Deadlines
 * count from the dispatch: in wall-clock time, or, for a class with clock "working"
 * (city_sla.working_time), in the working time of the city's business calendar
 * (city.calendar, in the city's clock): a dispatch outside working hours starts
 * counting at the next working moment, and weekends, public holidays and the hours
 * outside the working spans do not count, while swapped working days (调休) do.
 */
#ifndef SLA_H
#define SLA_H

#include "city.h"

#include <stdint.h>

/* The class for a case; NULL only if the city has no classes (city_new refuses that). */
const city_sla *sla_class_for(const city *c, gl_str category, case_urgency urgency);

/* The deadlines of a case dispatched at `from` (ms since the epoch): accept_by,
 * resolve_by, and warn_at, when warn_ratio of the time to resolve_by has been used.
 * For a working-time class each is calendar_add(from, its span), so warn_at is when
 * warn_ratio of the working time has been used. Should the calendar have no working
 * time for CALENDAR_GIVE_UP_DAYS in a row, the class counts wall-clock time and a
 * warning is logged (once per process). Allocates nothing. */
typedef struct {
    int64_t accept_by, resolve_by, warn_at;
} sla_times;

void sla_deadlines(const city *c, const city_sla *cls, int64_t from, sla_times *out);

#endif
