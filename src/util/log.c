#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int debug_enabled = -1;

/* A message is one line: what a library ends with a newline (libpq's
 * errors do) loses it, and a newline or tab inside becomes a space, so
 * neither stderr nor the console's ring holds a line broken in two. */
static void one_line(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

/* The ring of recent warnings and errors: rare, so one mutex is enough. */
static struct {
	pthread_mutex_t lock;
	struct log_entry e[LOG_RECENT_MAX];
	uint64_t next_seq; /* of the next entry; entries are seq % MAX */
	uint64_t counts[2];
} recent = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_seq = 1};

static void remember(enum log_level level, int64_t time_ms, const char *msg)
{
	struct log_entry *e;

	pthread_mutex_lock(&recent.lock);
	e = &recent.e[recent.next_seq % LOG_RECENT_MAX];
	e->seq = recent.next_seq++;
	e->time_ms = time_ms;
	e->level = level;
	snprintf(e->message, sizeof(e->message), "%s", msg);
	recent.counts[level == LOG_ERROR]++;
	pthread_mutex_unlock(&recent.lock);
}

size_t log_recent(uint64_t since, struct log_entry *out, size_t max)
{
	size_t n = 0;
	uint64_t first;

	pthread_mutex_lock(&recent.lock);
	first = recent.next_seq > LOG_RECENT_MAX ? recent.next_seq - LOG_RECENT_MAX : 1;
	if (since + 1 > first)
		first = since + 1;
	for (uint64_t s = first; s < recent.next_seq && n < max; s++)
		out[n++] = recent.e[s % LOG_RECENT_MAX];
	pthread_mutex_unlock(&recent.lock);
	return n;
}

void log_counts(uint64_t out[2])
{
	pthread_mutex_lock(&recent.lock);
	out[0] = recent.counts[0];
	out[1] = recent.counts[1];
	pthread_mutex_unlock(&recent.lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level == LOG_DEBUG) {
		if (debug_enabled < 0)
			debug_enabled = getenv("CHORUS_DEBUG") != NULL;
		if (!debug_enabled)
			return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
			      names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	one_line(line + n);
	if (level >= LOG_WARN)
		remember(level, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, line + n);
	n = strlen(line);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "chorus: %s\n", msg);
	exit(1);
}
