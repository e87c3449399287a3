/*
 * log: one line per notable event on stderr, with time, level and program name:
 *   2026-11-25T17:44:27.123Z INFO  gridlined: listening on tcp://127.0.0.1:7310
 */
#ifndef LOG_H
#define LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Sets the program name shown on each line and the lowest level printed. */
void log_init(const char *program, log_level level);

/* Parses "debug", "info", "warn", "error". Returns the level, or -1. */
int log_level_parse(const char *s);

void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
