/* log: timestamped, levelled lines on stderr. One fprintf per line, so lines from
 * several threads do not interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_program = "gridline";
static log_level   log_min = LOG_INFO;

void log_init(const char *program, log_level level)
{
    log_program = program;
    log_min = level;
}

int log_level_parse(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void log_write(log_level level, const char *fmt, ...)
{
    static const char *tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    if (level < log_min) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L, tags[level],
            log_program, msg);
}
