/*
 * route_policy: which unit gets a case (派单) and whether it repeats an older one, as a
 * pure function of the city and one task item. No I/O, no clock, no state: the same
 * city and item give the same decision, so a task given out twice (a worker died
 * mid-task) is decided the same way twice, and the tests pin the policy with data.
 *
 * The unit, first rule that applies:
 *   1. Returned too often: a case returned (退单) return_count >= max_returns times
 *      (and at least once) goes to the supervision unit, which decides where it goes.
 *      max_returns 0 therefore acts as 1: the first return goes to supervision.
 *   2. Routing rules (city.rules): a rule matches when it has no category or the
 *      case's category, has no place or the case's place or one above it, and its unit
 *      has not returned the case. The case's place is its most specific location code
 *      the city knows (grid, else community, street, district). The deepest place
 *      wins (grid > community > street > district > no place); at the same depth a rule
 *      naming the category beats one without; then the first written. A case without
 *      a category, or with one the city does not know, matches only rules without one.
 *   3. The territorial fallback (属地管理), skipping units that returned the case: the
 *      community's service centre, else the street's office, else a department placed
 *      at the district that handles the category (lists it, or lists none), else any
 *      unit placed at the district.
 *   4. The supervision unit.
 *   "The supervision unit" is the first unit of kind supervision that has not returned
 *   the case, else the first one: supervision is the last resort and is never skipped.
 *
 * Duplicates, decided beside the unit (which is still chosen as above):
 *   A candidate is the same problem when it has the case's (non-empty) category, lies
 *   in the case's (non-empty) grid cell or, when both have coordinates, within
 *   city.dup_distance_m metres (haversine), and was created at most city.dup_window_ms
 *   before the case (at the same millisecond, only a smaller id counts as older, so two
 *   cases never point at each other). The oldest such candidate wins; if it is itself a
 *   duplicate, the decision points at the case it joined (followed through the other
 *   candidates as far as they go), so links always lead to a root.
 *   A case that already carries duplicate_of (it was linked when first routed, then
 *   returned) keeps that link: the caller was told which case they joined, and the
 *   older case may no longer be open, hence no longer a candidate.
 */
#ifndef ROUTE_POLICY_H
#define ROUTE_POLICY_H

#include "city.h"
#include "route_task.h"

#include <stddef.h>

/* Room for any reason route_policy_decide writes; a smaller buffer truncates it. */
#define ROUTE_POLICY_REASON_MAX 256

/* Decides item's case: fills out->id, ->version (the case's), ->unit (a code borrowed
 * from c: valid while c lives), ->duplicate_of (0 = none) and ->reason (text written
 * into reason_buf, cap bytes, e.g. "rule: street_lights in D01"; borrowed from it).
 * Returns 0; GL_EINVALID if an argument is NULL or cap is 0; GL_EINTERNAL if the city
 * has no supervision unit (city_new never builds one without). */
int route_policy_decide(const city *c, const route_item *item, route_decision *out,
                        char *reason_buf, size_t cap);

/* The great-circle distance in metres between two points given in degrees, on a
 * sphere of the Earth's mean radius. Exposed for the tests. */
double route_policy_distance_m(double lat1, double lon1, double lat2, double lon2);

#endif
