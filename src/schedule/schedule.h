#ifndef CHORUS_SCHEDULE_SCHEDULE_H
#define CHORUS_SCHEDULE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule/tz.h"
#include "util/buf.h"

/*
 * A zone's week, and the queue it makes. Pure: no I/O (the time zone is
 * loaded by the caller, schedule/tz.h; the playlists' tracks are handed
 * in), so the same inputs give the same queue on every node, byte for
 * byte, and the unit tests drive it without a server.
 *
 * The week: dayparts (days of the week, a local from-to, a playlist), in
 * the location's local time; dated overrides that replace a local date's
 * dayparts (a holiday closed, a sale week's playlist); announcements (a
 * spot every N minutes within a window, or at fixed local times, played
 * between tracks); and a separation: no track and no artist again within
 * that many minutes, while the playlist can avoid it.
 *
 * The plan of one local day is computed from the day's first daypart on,
 * whatever window is asked, so any node and any request see the same
 * items. Within a day a daypart's first track starts when the previous
 * one ends (soft boundaries); a track still playing at local midnight is
 * cut there (duration_ms shortened), so each day's plan depends on that
 * day alone. Shuffle is seeded by (zone, local date, playlist, round).
 */

#define SCHED_PARTS_MAX 168 /* dayparts in a week, and in one override */
#define SCHED_OVERRIDES_MAX 64
#define SCHED_ANNOUNCE_MAX 16
#define SCHED_SPOTS_MAX 64       /* tracks of one announcement, in rotation */
#define SCHED_AT_MAX 48          /* fixed times of one announcement */
#define SCHED_SEPARATION_MAX 720 /* minutes */
#define SCHED_SEPARATION_DEFAULT 60
/* Items (tracks and spots) one local day plans at most, a bound on a
 * pool of very short tracks: past it the day is silent. Tracks of 4.4 s
 * on average fill a day before it. */
#define SCHED_DAY_ITEMS_MAX 20000

enum {
	SCHED_MON = 1 << 0,
	SCHED_TUE = 1 << 1,
	SCHED_WED = 1 << 2,
	SCHED_THU = 1 << 3,
	SCHED_FRI = 1 << 4,
	SCHED_SAT = 1 << 5,
	SCHED_SUN = 1 << 6,
	SCHED_ALL_DAYS = 0x7f,
};

struct sched_part {
	unsigned days;    /* SCHED_MON... mask; SCHED_ALL_DAYS in an override */
	int from, to;     /* minutes of the local day: 0 <= from < to <= 1440 */
	int64_t playlist; /* a catalog-style id (16 hex digits in JSON) */
};

struct sched_override {
	int32_t first, last; /* local dates, days since 1970-01-01, inclusive */
	bool closed;         /* nothing plays on these dates */
	struct sched_part *parts;
	int nparts;
};

struct sched_announcement {
	unsigned days; /* SCHED_ALL_DAYS unless given */
	int every;     /* minutes between spots; 0: at fixed times */
	int from, to;  /* the window of `every`, minutes of the local day (0, 1440 by default) */
	int at[SCHED_AT_MAX];
	int nat;
	int64_t tracks[SCHED_SPOTS_MAX];
	int ntracks;
};

struct schedule {
	struct sched_part *parts;
	int nparts;
	struct sched_override *overrides;
	int noverrides;
	struct sched_announcement *ann;
	int nann;
	int separation; /* minutes */
};

/*
 * A PUT /api/v1/zones/{id}/schedule body:
 *   {"dayparts": [{"days": ["mon", ...], "from": "08:00", "to": "11:00",
 *                  "playlist_id": "16 hex"}],
 *    "overrides": [{"date": "2026-12-24", "to_date": "2026-12-26",
 *                   "closed": true} |
 *                  {"date": ..., "dayparts": [{"from", "to", "playlist_id"}]}],
 *    "announcements": [{"every_minutes": 30, "from": "09:00", "to": "18:00",
 *                       "days": [...], "tracks": ["16 hex", ...]} |
 *                      {"at": ["09:00", "12:00"], "tracks": [...]}],
 *    "separation_minutes": 60}
 * "to": "24:00" is the end of the day. 0; -EBADMSG when the body is not
 * JSON or not an object (a 400, as every other body); or -EINVAL with the
 * reason for a person in err, naming the field ("dayparts[2]: overlaps
 * dayparts[0] on mon 10:00-11:00"): unknown keys, bad days, times, dates or
 * ids, from >= to, overlapping dayparts (weekly ones on a shared day, or
 * within one override), overlapping override dates. Ids are 16 hex digits
 * of either case, not all zero; an override is closed (no dayparts) or
 * has at least one daypart; "at" times are kept in order of the day.
 * Whether the playlists exist and can fill their hours is the caller's
 * (schedule_check).
 */
int schedule_parse(const void *json, size_t len, struct schedule *out, char *err, size_t errlen);
/* The canonical JSON of s, the shape schedule_parse takes (what is stored
 * and answered): 0, or -1 past b's cap. */
int schedule_json(const struct schedule *s, buf_t *b);
void schedule_free(struct schedule *s);

/* The playlists s plays (dayparts and overrides), each once, in the order
 * first met; how many there are (up to max written). */
int schedule_playlists(const struct schedule *s, int64_t *ids, int max);

/* A playable track, as the caller found it in the catalog. */
struct sched_track {
	int64_t id, artist;  /* artist 0: unknown, kept apart by track only */
	int32_t duration_ms; /* > 0 (a track of no length is never picked) */
};

/* A playlist's tracks: shuffle (deterministically) or in the given order,
 * looping either way. */
struct sched_pool {
	int64_t playlist;
	bool shuffle;
	const struct sched_track *t;
	int n;
};

struct sched_item {
	int64_t track;
	int64_t playlist; /* 0 for an announcement */
	int64_t start_ms; /* Unix ms, UTC */
	int32_t duration_ms;
	bool announcement;
	bool relaxed; /* the separation could not be kept for this pick */
};

struct sched_input {
	const struct schedule *s;
	const tz_t *tz;
	int64_t zone; /* seeds the shuffle */
	const struct sched_pool *pools;
	int npools;
	const struct sched_track *spots; /* the announcements' tracks that exist */
	int nspots;
};

/*
 * The planned items that overlap [from_ms, to_ms), in order, into *out
 * (malloc'd, the caller frees) and *n. A daypart whose playlist has no
 * pool, or an empty one, is silent; an announcement track missing from
 * spots is skipped. 0, -E2BIG when the window is over 8 days, or -EINVAL
 * when from_ms > to_ms or either is outside 1970-01-01..9999-12-31.
 *
 * The separation runs from the end of a play to the start of the next
 * of the same track or artist. A spot falls due at its local time (one
 * that a change forward skips is not due that day) and plays at the
 * first track boundary at or after it while the zone plays, once however
 * many of its times passed during a track; one due while nothing plays
 * is dropped. An announcement's tracks rotate from its first each day.
 */
int schedule_queue(const struct sched_input *in, int64_t from_ms, int64_t to_ms,
		   struct sched_item **out, size_t *n);

/*
 * Whether every daypart can be filled by its pool: for each distinct
 * (daypart, pool), its plan on a reference day is made and checked for
 * silence (no pool or an empty one) and relaxed picks. The reference
 * plan is the daypart alone (of its length, in plain UTC, no spots):
 * what its pool can do, whatever its neighbours and the zone's changes.
 * 0, or -EINVAL with the reason in err ("dayparts[1] (mon 11:00-14:00): playlist
 * 00000000000000a1 has 3 tracks by 2 artists, 11 minutes: not enough for
 * a 60-minute separation").
 */
int schedule_check(const struct sched_input *in, char *err, size_t errlen);

#endif
