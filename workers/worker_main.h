/*
 * worker_main: what every Gridline policy worker shares: the command line, the city,
 * signals, being stopped with the daemon that started it, the MDP/0.1 worker session
 * and the loop that answers one task at a time.
 *
 * A worker holds no state beyond the city, which it reads at start from the same file
 * as the daemon, so the daemon can kill and restart it at any moment; a task it did not
 * answer is simply given out again. A task it cannot read is answered {"error": "..."}
 * rather than dropped, so the daemon learns why at once instead of after a timeout.
 * SIGTERM and SIGINT let the task in hand finish and be answered, then say DISCONNECT.
 */
#ifndef WORKER_MAIN_H
#define WORKER_MAIN_H

#include "city.h"
#include "mp_guard.h"

#include <msgpack.h>
#include <stddef.h>

/* A task is at most some hundreds of cases of a few hundred objects each: 2 Mi objects
 * leave room for the largest honest task while bounding what a broken one can make a
 * worker allocate. */
extern const mp_guard_limits worker_task_limits;

typedef struct {
    const char *program;     /* "gridline-router" */
    const char *service;     /* the default MDP service */
    const char *purpose;     /* one line for --help */
    /* Answers one task (body, len): packs the reply into out (cleared first): the
     * decisions, or {"error": ...} (worker_refuse). zone is cleared after each task.
     * Returns the number of items decided, or -1 when even a refusal could not be
     * packed (out of memory). */
    int (*handle)(const city *c, const void *body, size_t len, msgpack_zone *zone,
                  msgpack_sbuffer *out);
} worker_spec;

/* Packs {"error": message} into out and logs it. Returns 0, or -1 (out of memory). */
int worker_refuse(msgpack_sbuffer *out, const char *message);

/* The whole program: returns main's exit status (0, 1 on failure, 2 on bad usage). */
int worker_main(const worker_spec *spec, int argc, char **argv);

#endif
