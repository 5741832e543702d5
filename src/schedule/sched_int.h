#ifndef CHORUS_SCHEDULE_SCHED_INT_H
#define CHORUS_SCHEDULE_SCHED_INT_H

/* What parse.c and schedule.c share: dates and times as a person reads them. */
#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian). */
int64_t sched__days(int64_t y, int m, int d);
/* "YYYY-MM-DD" of a day (out: 11 bytes). */
void sched__date_str(int32_t day, char *out);
/* "HH:MM" of a minute of the day, "24:00" for 1440 (out: 6 bytes). */
void sched__time_str(int minute, char *out);
/* "mon,tue" of a SCHED_* mask, "" for none. */
void sched__days_str(unsigned days, char *out, size_t len);
/* The weekday of a day as a SCHED_MON... bit (1970-01-01 was a Thursday). */
unsigned sched__weekday(int32_t day);
/* The id as 16 lowercase hex digits (out: 17 bytes). */
void sched__id_str(int64_t id, char *out);

#endif
