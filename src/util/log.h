#ifndef CHORUS_UTIL_LOG_H
#define CHORUS_UTIL_LOG_H

/*
 * Logging to stderr. One line per call, written with a single write(2) so
 * lines from several threads never interleave. Errors always go to stderr;
 * LOG_DEBUG lines appear only when CHORUS_DEBUG is set in the environment.
 */

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/*
 * The last LOG_RECENT_MAX warnings and errors, kept in memory for the
 * console (any thread). Each has a sequence number, counting from 1 for
 * the process; log_recent copies those after since, oldest first, into
 * out (at most max) and returns how many.
 */
#define LOG_RECENT_MAX 1000
#define LOG_RECENT_LEN 512

struct log_entry {
	uint64_t seq;
	int64_t time_ms; /* wall clock */
	enum log_level level;
	char message[LOG_RECENT_LEN];
};

size_t log_recent(uint64_t since, struct log_entry *out, size_t max);
/* Warnings and errors logged since start: [0] warn, [1] error. */
void log_counts(uint64_t out[2]);

/* Prints "chorus: MESSAGE" to stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
