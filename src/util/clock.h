#ifndef CHORUS_UTIL_CLOCK_H
#define CHORUS_UTIL_CLOCK_H

#include <stdint.h>

/*
 * The two clocks. Durations, timeouts and deadlines use the monotonic
 * clock (it never jumps); what is stored or sent to another host (a
 * play's time, a heartbeat) uses the wall clock.
 */
int64_t mono_ms(void);
/* Microseconds, for latencies. */
int64_t mono_us(void);
int64_t wall_ms(void);
/* Monotonic seconds with a fraction, for rates and progress lines. */
double mono_s(void);

/* Unix time as RFC 3339 in UTC: "2026-12-07T11:44:22Z", and with
 * milliseconds, "2026-12-07T11:44:22.123Z". */
#define CLOCK_UTC_LEN 32
void clock_utc(int64_t s, char out[CLOCK_UTC_LEN]);
void clock_utc_ms(int64_t ms, char out[CLOCK_UTC_LEN]);

#endif
