/*
 * supervisor: the worker processes the daemon starts and keeps running.
 *
 * Each slot runs one program (exec via uv_spawn: never a bare fork after LMDB is
 * open). A process that exits is logged with how it died and started again after a
 * backoff that doubles from 100 ms to 10 s, and resets once a process has stayed up for
 * 30 s. Each process gets `--id NAME` so that its MDP identity is known: when it exits,
 * the supervisor tells the caller the name, so that its task can be given out at once.
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stddef.h>
#include <uv.h>

typedef struct supervisor supervisor;

/* Called on the loop thread when the process with identity `name` has exited. */
typedef void (*supervisor_exit_fn)(void *arg, const char *name);

/* Starts count processes of program with args (a NULL-terminated list, without
 * argv[0] and without --id), named PREFIX-1 .. PREFIX-count. Returns NULL with a
 * message in err if the program cannot be started at all. */
supervisor *supervisor_new(uv_loop_t *loop, const char *program, const char *const *args,
                           const char *prefix, size_t count, supervisor_exit_fn on_exit,
                           void *arg, char *err, size_t errlen);

/* Processes running now. */
size_t supervisor_running(const supervisor *s);

/* Stops restarting, sends SIGTERM to every process (SIGKILL after grace_ms), and calls
 * done(arg) once all have exited and the handles are closed. */
void supervisor_stop(supervisor *s, int grace_ms, void (*done)(void *arg), void *arg);

/* Frees s after supervisor_stop has called back. Sets *s to NULL; safe twice. */
void supervisor_destroy(supervisor **s);

#endif
