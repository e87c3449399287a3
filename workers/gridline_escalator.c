/*
 * gridline-escalator: the escalation worker. Registers with the daemon's broker for
 * "gridline.escalate" and answers each task (escalate_task.h) with one decision per due
 * deadline, by escalate_policy. The rest of a worker's life is worker_main's.
 */
#include "escalate_policy.h"
#include "escalate_task.h"
#include "log.h"
#include "worker_main.h"

#include <msgpack.h>
#include <stdio.h>

static int escalate_task(const city *c, const void *body, size_t len, msgpack_zone *zone,
                         msgpack_sbuffer *out)
{
    msgpack_object task;
    const char *why = NULL;
    char msg[400];
    gl_error err;
    escalate_item *items = NULL;
    uint32_t n = 0;
    int64_t now;

    gl_error_clear(&err);
    if (mp_guard_check(body, len, &worker_task_limits, &why) != 0
        || mp_unpack(body, len, zone, &task) != 0) {
        snprintf(msg, sizeof msg, "the task is not one MessagePack object%s%s",
                 why != NULL ? ": " : "", why != NULL ? why : "");
        return worker_refuse(out, msg);
    }
    if (escalate_task_unpack(&task, zone, &now, &items, &n, &err) != 0) {
        return worker_refuse(out, err.message);
    }
    escalate_decision *d = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * sizeof *d);
    char *reasons = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * (size_t)ESCALATE_POLICY_REASON_MAX);
    if (d == NULL || reasons == NULL) {
        return worker_refuse(out, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        escalate_policy_decide(c, &items[i], &d[i], reasons + (size_t)i * ESCALATE_POLICY_REASON_MAX,
                               ESCALATE_POLICY_REASON_MAX);
    }
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (escalate_decisions_pack(&pk, d, n) != 0) {
        return worker_refuse(out, "out of memory packing the decisions");
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    static const worker_spec spec = {
        .program = "gridline-escalator",
        .service = ESCALATE_SERVICE,
        .purpose = "Gridline's escalation worker: decides what each due deadline means:\n"
                   "warn, urge (催办), escalate up the hierarchy, or supervise (督办).",
        .handle = escalate_task,
    };
    return worker_main(&spec, argc, argv);
}
