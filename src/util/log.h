#ifndef CHORUS_UTIL_LOG_H
#define CHORUS_UTIL_LOG_H

/*
 * Logging to stderr. One line per call, written with a single write(2) so
 * lines from several threads never interleave. Errors always go to stderr;
 * LOG_DEBUG lines appear only when CHORUS_DEBUG is set in the environment.
 */

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Prints "chorus: MESSAGE" to stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
