#ifndef CHORUS_SCHEDULE_TZ_H
#define CHORUS_SCHEDULE_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * IANA time zones from the system's TZif files (TZDIR, else
 * /usr/share/zoneinfo), read here rather than through TZ and localtime:
 * those are process-wide state, and a node serves many zones at once
 * from many threads. A file's transitions, then its footer's POSIX rule
 * (TZif v2+) for times past the last one, which "slim" files rely on for
 * every future date.
 */
typedef struct tz tz_t;

#define TZ_NAME_MAX 64

/* Whether name is a plausible zone name: 1-64 of [A-Za-z0-9_+-/], no
 * leading or trailing '/', no empty segment (and, '.' not being among
 * them, no "." or ".." one). It may still not exist. */
bool tz_name_ok(const char *name);

/* Loads the zone: 0, -EINVAL (a bad name, or not a TZif file, or one
 * that counts leap seconds: right/ zones, whose clock is not Unix time's),
 * -ENOENT (no such zone, or a directory of them); err says which for a
 * person. Loaded zones are kept
 * (by name) and shared: the result is never freed, valid for the
 * process's life, and safe to use from any thread. */
int tz_get(const char *name, const tz_t **out, char *err, size_t errlen);

/* The zone's name, as given. */
const char *tz_name(const tz_t *tz);

/* Seconds east of UTC at the instant utc_s (Unix seconds). */
int32_t tz_offset(const tz_t *tz, int64_t utc_s);

/*
 * The instant at which local wall time local_s (seconds since 1970-01-01
 * 00:00 of the local calendar, as if it were UTC) happens. A time that
 * does not exist (skipped by a change forward) is taken as the instant
 * the same distance after the change (02:30 in a 02:00->03:00 gap is
 * 03:30 local); a time that happens twice (a change back) is the first.
 */
int64_t tz_local_to_utc(const tz_t *tz, int64_t local_s);

/* The local date (days since 1970-01-01) at the instant utc_s. */
int32_t tz_local_day(const tz_t *tz, int64_t utc_s);

#endif
