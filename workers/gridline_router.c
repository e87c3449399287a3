/*
 * gridline-router: the routing worker. Registers with the daemon's broker for
 * "gridline.route" (MDP/0.1 worker protocol), and answers each task (route_task.h)
 * with one decision per case: the unit and any duplicate, by route_policy. The rest of
 * a worker's life (command line, signals, the session) is worker_main's.
 */
#include "city.h"
#include "log.h"
#include "mp_guard.h"
#include "route_policy.h"
#include "route_task.h"
#include "worker_main.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

/* Decides every case of the task in body and packs the reply into out: the decisions,
 * or {"error": ...} when the task cannot be read. Returns 0, or -1 when even the
 * reply could not be packed (out of memory). */
static int
route_task(const city *c, const void *body, size_t len, msgpack_zone *zone,
           msgpack_sbuffer *out)
{
    msgpack_object  task;
    msgpack_packer  pk;
    route_item     *items = NULL;
    route_decision *d;
    char           *reasons, msg[400];
    const char     *why = NULL;
    gl_error        err;
    int64_t         now;
    uint32_t        n = 0, i, nd = 0, dups = 0;

    gl_error_clear(&err);
    if (mp_guard_check(body, len, &worker_task_limits, &why) != 0
        || mp_unpack(body, len, zone, &task) != 0) {
        snprintf(msg, sizeof msg, "the task is not one MessagePack object%s%s",
                 why != NULL ? ": " : "", why != NULL ? why : "");
        goto refuse;
    }
    if (route_task_unpack(&task, zone, &now, &items, &n, &err) != 0) {
        snprintf(msg, sizeof msg, "%s%s%s", err.field, err.field[0] != '\0' ? ": " : "",
                 err.message);
        goto refuse;
    }
    d       = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * sizeof *d);
    reasons = msgpack_zone_malloc(zone, (n > 0 ? n : 1) * (size_t)ROUTE_POLICY_REASON_MAX);
    if (d == NULL || reasons == NULL) {
        snprintf(msg, sizeof msg, "out of memory deciding a task of %u cases", n);
        goto refuse;
    }
    for (i = 0; i < n; i++) {
        char *reason = reasons + (size_t)i * ROUTE_POLICY_REASON_MAX;

        /* A case the policy cannot decide gets no decision: the daemon gives it out
         * again rather than dispatching it anywhere. */
        if (route_policy_decide(c, &items[i], &d[nd], reason, ROUTE_POLICY_REASON_MAX)
            != 0) {
            log_warn("case %llu: no decision", (unsigned long long)items[i].c.id);
            continue;
        }
        dups += d[nd].duplicate_of != 0;
        nd++;
    }
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (route_decisions_pack(&pk, d, nd) != 0) {
        snprintf(msg, sizeof msg, "out of memory packing %u decisions", nd);
        goto refuse;
    }
    log_debug("decided %u case(s), %u duplicate(s)", nd, dups);
    return (int)nd;

refuse:
    return worker_refuse(out, msg);
}

int
main(int argc, char **argv)
{
    static const worker_spec spec = {
        .program = "gridline-router",
        .service = ROUTE_SERVICE,
        .purpose = "Gridline's routing worker: decides which unit handles each registered\n"
                   "case and whether it repeats an older one.",
        .handle = route_task,
    };
    return worker_main(&spec, argc, argv);
}
