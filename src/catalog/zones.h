#ifndef CHORUS_CATALOG_ZONES_H
#define CHORUS_CATALOG_ZONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/read.h"
#include "schedule/schedule.h"
#include "util/buf.h"

/*
 * The stores as a node's read model has them (the tables store/zones.c
 * writes, replicated in a cluster): what the API answers about
 * locations, zones, playlists and devices, and what a queue is made of,
 * with no PostgreSQL round trip, so a device's queue works while
 * PostgreSQL is down.
 *
 * A set is opened on a reader and shares its connection and its thread
 * (one per event loop), as catalog/principals.h; close it before the
 * reader. JSON functions return an HTTP status as catalog/read.h's do:
 * 200 with the body appended, 404, or 500.
 */
typedef struct catalog_zones catalog_zones_t;

int catalog_zones_open(catalog_reader_t *r, catalog_zones_t **out, char *err, size_t errlen);
void catalog_zones_close(catalog_zones_t *z);

/* A zone with what its queue needs of its location. */
struct catalog_zone {
	int64_t id, location_id;
	char name[129];
	int volume;
	char *schedule; /* canonical JSON, malloc'd; NULL for none */
	char timezone[65];
	char licence[16];
	char location_name[129];
};

/* 200, 404 or 500; catalog_zone_free after a 200. */
int catalog_zone_get(catalog_zones_t *z, int64_t id, struct catalog_zone *out);
void catalog_zone_free(struct catalog_zone *zone);

struct catalog_location {
	char name[129], address[1025], country[3], timezone[65], licence[16];
};
/* 200, 404 or 500. */
int catalog_location_get(catalog_zones_t *z, int64_t id, struct catalog_location *out);

/* {"items":[location...]} by name; one location with "zones" (objects). */
int catalog_json_locations(catalog_zones_t *z, buf_t *out);
int catalog_json_location(catalog_zones_t *z, int64_t id, buf_t *out);
/* {"items":[zone...]} by location, then name (location_id 0: all). */
int catalog_json_zones(catalog_zones_t *z, int64_t location_id, buf_t *out);
/* One zone, with its location's name, timezone and licence, its schedule
 * (null for none) and version (catalog_zone_version). */
int catalog_json_zone(catalog_zones_t *z, int64_t id, buf_t *out);
/* The zone's week alone: {"zone_id","version", the schedule's keys}; an
 * empty week when none was set. */
int catalog_json_schedule(catalog_zones_t *z, int64_t id, buf_t *out);

/* {"items":[playlist...]} by name (with track_count, duration_ms); one
 * playlist with "track_ids", its rules evaluated now. */
int catalog_json_playlists(catalog_zones_t *z, buf_t *out);
int catalog_json_playlist(catalog_zones_t *z, int64_t id, buf_t *out);

/* A playlist's playable tracks now, in its order (a rules playlist's by
 * id), as the scheduler takes them: 200 with out->t malloc'd (free it),
 * 404, 500. */
int catalog_playlist_pool(catalog_zones_t *z, int64_t id, struct sched_pool *out);

/* Whether every id is a track of the catalog: 0, or 1 with the first
 * missing in *missing; -1 on error. */
int catalog_tracks_missing(catalog_zones_t *z, const int64_t *ids, int n, int64_t *missing);
/* The announcements' tracks that exist, as sched_tracks, into out (n
 * at most): how many. */
int catalog_spots(catalog_zones_t *z, const int64_t *ids, int n, struct sched_track *out);

/* What a queue item shows of its track: 0, or -1 when it is gone. */
struct catalog_brief {
	char title[256], artist[256], mime[64];
};
int catalog_track_brief(catalog_zones_t *z, int64_t id, struct catalog_brief *out);

/*
 * The zone's version: 16 hex digits that change whenever its queue may
 * (its week, name or location, any playlist, the catalog's tracks; not
 * its volume or a skip, catalog_zone_live).
 * 0, -ENOENT for no such zone, -EIO.
 */
int catalog_zone_version(catalog_zones_t *z, int64_t id, char out[17]);

/* What the zone's devices are told at once rather than by a new queue:
 * its volume, and when it was last told to skip (Unix ms, 0 never).
 * 0, -ENOENT, -EIO. */
int catalog_zone_live(catalog_zones_t *z, int64_t id, int *volume, int64_t *skip_at);

/* A number that changes whenever a key is revoked (-1 on error): event
 * streams check their keys again only then. */
int64_t catalog_revocations(catalog_zones_t *z);

/* The zone's location (for the access rule): 0, -ENOENT, -EIO. */
int catalog_zone_location(catalog_zones_t *z, int64_t id, int64_t *location_id);

/* Every store key, revoked or not, with what its device last said:
 * {"items":[...]}, a device online when it was seen within online_ms of
 * now_ms and not marked offline since. location_id 0: all. */
int catalog_json_devices(catalog_zones_t *z, int64_t location_id, int64_t now_ms, int64_t online_ms,
			 buf_t *out);

#endif
