/* supervisor: spawn, watch and restart worker processes (see supervisor.h). */
#include "supervisor.h"

#include "log.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS      30000   /* up this long: the next crash starts the backoff over */

typedef struct {
    supervisor  *sup;
    uv_process_t proc;
    uv_timer_t   restart;
    char         name[64];
    bool         running;     /* a process is alive (its exit not yet seen) */
    bool         proc_open;   /* proc handle initialised and not yet closed */
    uint64_t     started_at;
    int          backoff_ms;
} slot;

struct supervisor {
    uv_loop_t         *loop;
    char             **argv;   /* program, args..., "--id", NULL (the name), NULL */
    size_t             argc;
    slot              *slots;
    size_t             count;
    supervisor_exit_fn on_exit;
    void              *arg;
    bool               stopping;
    uv_timer_t         kill_timer;
    void             (*done)(void *);
    void              *done_arg;
    size_t             open_timers;
};

static void spawn(slot *sl);

static void maybe_done(supervisor *s);

static void on_timer_closed(uv_handle_t *h)
{
    supervisor *s = h->data;
    if (--s->open_timers == 0 && s->done != NULL) {
        s->done(s->done_arg);
    }
}

static void on_proc_closed(uv_handle_t *h)
{
    slot *sl = h->data;
    sl->proc_open = false;
    if (sl->sup->stopping) {
        maybe_done(sl->sup);
    }
}

static void on_restart(uv_timer_t *t)
{
    slot *sl = t->data;
    if (!sl->sup->stopping && !sl->running && !sl->proc_open) {
        spawn(sl);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signo)
{
    slot *sl = p->data;
    supervisor *s = sl->sup;
    uint64_t lived = uv_now(s->loop) - sl->started_at;
    sl->running = false;
    if (signo != 0) {
        log_warn("worker %s (pid %d) was killed by signal %d (%s) after %llu ms", sl->name,
                 p->pid, signo, strsignal(signo), (unsigned long long)lived);
    } else if (s->stopping && status == 0) {
        log_info("worker %s (pid %d) stopped", sl->name, p->pid);
    } else {
        log_warn("worker %s (pid %d) exited with status %lld after %llu ms", sl->name, p->pid,
                 (long long)status, (unsigned long long)lived);
    }
    uv_close((uv_handle_t *)p, on_proc_closed);
    if (s->on_exit != NULL) {
        s->on_exit(s->arg, sl->name);
    }
    if (s->stopping) {
        return;
    }
    sl->backoff_ms = lived >= STABLE_MS ? BACKOFF_MIN_MS
                     : sl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                     : sl->backoff_ms * 2;
    log_info("restarting worker %s in %d ms", sl->name, sl->backoff_ms);
    uv_timer_start(&sl->restart, on_restart, (uint64_t)sl->backoff_ms, 0);
}

static void spawn(slot *sl)
{
    supervisor *s = sl->sup;
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    memset(&o, 0, sizeof o);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    s->argv[s->argc - 2] = sl->name;
    o.file = s->argv[0];
    o.args = s->argv;
    o.exit_cb = on_exit_cb;
    o.stdio = stdio;
    o.stdio_count = 3;
    sl->proc.data = sl;
    int rc = uv_spawn(s->loop, &sl->proc, &o);
    sl->proc_open = true;   /* uv_spawn initialises the handle even when it fails */
    sl->started_at = uv_now(s->loop);
    if (rc != 0) {
        log_error("cannot start worker %s (%s): %s; retrying in %d ms", sl->name, s->argv[0],
                  uv_strerror(rc), sl->backoff_ms);
        uv_close((uv_handle_t *)&sl->proc, on_proc_closed);
        sl->backoff_ms = sl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sl->backoff_ms * 2;
        uv_timer_start(&sl->restart, on_restart, (uint64_t)sl->backoff_ms, 0);
        return;
    }
    sl->running = true;
    log_info("started worker %s (pid %d)", sl->name, sl->proc.pid);
}

supervisor *supervisor_new(uv_loop_t *loop, const char *program, const char *const *args,
                           const char *prefix, size_t count, supervisor_exit_fn on_exit,
                           void *arg, char *err, size_t errlen)
{
    supervisor *s = calloc(1, sizeof *s);
    size_t nargs = 0;
    while (args != NULL && args[nargs] != NULL) {
        nargs++;
    }
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->on_exit = on_exit;
    s->arg = arg;
    s->count = count;
    s->argc = nargs + 4;   /* program, args, "--id", name, NULL */
    s->argv = calloc(s->argc, sizeof *s->argv);
    s->slots = calloc(count > 0 ? count : 1, sizeof *s->slots);
    if (s->argv == NULL || s->slots == NULL) {
        snprintf(err, errlen, "out of memory");
        free(s->argv);
        free(s->slots);
        free(s);
        return NULL;
    }
    s->argv[0] = (char *)program;
    for (size_t i = 0; i < nargs; i++) {
        s->argv[1 + i] = (char *)args[i];
    }
    s->argv[1 + nargs] = (char *)"--id";
    uv_timer_init(loop, &s->kill_timer);
    s->kill_timer.data = s;
    s->open_timers = 1;
    for (size_t i = 0; i < count; i++) {
        slot *sl = &s->slots[i];
        sl->sup = s;
        sl->backoff_ms = BACKOFF_MIN_MS;
        snprintf(sl->name, sizeof sl->name, "%s-%zu", prefix, i + 1);
        uv_timer_init(loop, &sl->restart);
        sl->restart.data = sl;
        s->open_timers++;
        spawn(sl);
    }
    return s;
}

size_t supervisor_running(const supervisor *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) {
        n += s->slots[i].running;
    }
    return n;
}

static void maybe_done(supervisor *s)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->slots[i].running || s->slots[i].proc_open) {
            return;
        }
    }
    if (uv_is_closing((uv_handle_t *)&s->kill_timer)) {
        return;
    }
    uv_timer_stop(&s->kill_timer);
    s->kill_timer.data = s;
    uv_close((uv_handle_t *)&s->kill_timer, on_timer_closed);
    for (size_t i = 0; i < s->count; i++) {
        s->slots[i].restart.data = s;
        uv_close((uv_handle_t *)&s->slots[i].restart, on_timer_closed);
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    supervisor *s = t->data;
    for (size_t i = 0; i < s->count; i++) {
        if (s->slots[i].running) {
            log_warn("worker %s did not stop in time: killing it", s->slots[i].name);
            uv_process_kill(&s->slots[i].proc, SIGKILL);
        }
    }
}

void supervisor_stop(supervisor *s, int grace_ms, void (*done)(void *arg), void *arg)
{
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (size_t i = 0; i < s->count; i++) {
        uv_timer_stop(&s->slots[i].restart);
        if (s->slots[i].running) {
            uv_process_kill(&s->slots[i].proc, SIGTERM);
        }
    }
    uv_timer_start(&s->kill_timer, on_kill_timer, (uint64_t)(grace_ms > 0 ? grace_ms : 1), 0);
    maybe_done(s);
}

void supervisor_destroy(supervisor **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    free((*sp)->argv);
    free((*sp)->slots);
    free(*sp);
    *sp = NULL;
}
