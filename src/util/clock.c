#include "util/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void clock_utc(int64_t s, char out[CLOCK_UTC_LEN])
{
	time_t t = (time_t)s;
	struct tm tm;

	if (gmtime_r(&t, &tm) && strftime(out, CLOCK_UTC_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return;
	snprintf(out, CLOCK_UTC_LEN, "%" PRId64, s);
}

void clock_utc_ms(int64_t ms, char out[CLOCK_UTC_LEN])
{
	int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	time_t t = (time_t)s;
	struct tm tm;

	if (gmtime_r(&t, &tm) && strftime(out, CLOCK_UTC_LEN, "%Y-%m-%dT%H:%M:%S", &tm)) {
		size_t n = strlen(out);
		snprintf(out + n, CLOCK_UTC_LEN - n, ".%03dZ", (int)(ms - s * 1000));
		return;
	}
	snprintf(out, CLOCK_UTC_LEN, "%" PRId64, ms);
}
