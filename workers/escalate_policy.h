/*
 * escalate_policy: what a due deadline means (超时预警, 催办, 升级, 督办), as a pure
 * function of the city and the case.
 *
 *   warn     (warn_at passed)    -> warn: a `warned` event for the unit and supervisors;
 *   accept   (accept_by passed)  -> urge (催办): the unit has not signed for the case;
 *   resolve  (resolve_by passed) -> escalate to the unit above in the hierarchy:
 *                community service centre -> the street office of the case's street
 *                street office -> the district's department for the category (else any
 *                                 unit placed at the district)
 *                district or city department -> the city's supervision unit
 *              and at the top (the supervision unit has the case) -> supervise (督办) if
 *              not yet supervised, else urge.
 * The unit above takes the case and signs for it again under new deadlines, so an
 * unresolved case keeps climbing until supervision holds it.
 */
#ifndef ESCALATE_POLICY_H
#define ESCALATE_POLICY_H

#include "city.h"
#include "escalate_task.h"

#include <stddef.h>

#define ESCALATE_POLICY_REASON_MAX 200

/* The unit above the case's current unit (an index into c->units), or -1 at the top. */
int escalate_policy_next_unit(const city *c, const case_record *cs);

/* Decides item into out; reason (cap bytes) holds the note, and out->reason points at it.
 * Returns 0. */
int escalate_policy_decide(const city *c, const escalate_item *item, escalate_decision *out,
                           char *reason, size_t cap);

#endif
