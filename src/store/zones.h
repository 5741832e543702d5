#ifndef CHORUS_STORE_ZONES_H
#define CHORUS_STORE_ZONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/*
 * The stores in the source of truth (the locations, zones, playlists and
 * devices tables of sql/schema.c): each change of a person is one write
 * transaction on the catalog's store with its audit row, as a catalog
 * edit is (store/edit.c). The tables are change-feed tables, so every
 * node's read model gets them (catalog/zones.h reads them there).
 *
 * The caller validates shapes (api/zones_body.c); these check what needs
 * the database, in the same transaction as the change: -EEXIST (a name
 * taken: a location's or playlist's, a zone's within its location),
 * -ENOENT (no such location, zone or playlist), -ENOTEMPTY (a location
 * that still has zones), -EBUSY (a playlist a schedule plays; err names
 * the zone), -EIO or -ENOTCONN. out->id is the object's id, out->seq the
 * commit's change number (0 on SQLite).
 */

#define STORE_NAME_MAX 128

struct store_location {
	int64_t id; /* 0: a new one (store_location_put makes its id) */
	char name[STORE_NAME_MAX + 1];
	char address[STORE_TEXT_MAX + 1]; /* "" for none */
	char country[3];                  /* ISO 3166 alpha-2, upper case */
	char timezone[65];                /* IANA */
	char licence[16];                 /* "interactive" or "non-interactive" */
};

struct store_zone {
	int64_t id; /* 0: a new one */
	int64_t location_id;
	char name[STORE_NAME_MAX + 1];
	int volume; /* 0-100 */
};

struct store_playlist {
	int64_t id; /* 0: a new one */
	char name[STORE_NAME_MAX + 1];
	bool rules_kind; /* rules, else an ordered list of tracks */
	bool shuffle;
	const char *tracks; /* the ids, 16 hex digits each, space separated */
	const char *rules;  /* catalog/rules.h's canonical JSON */
};

int store_location_put(store_t *s, const char *actor, const struct store_location *l,
		       struct store_change *out, char *err, size_t errlen);
int store_location_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
			  char *err, size_t errlen);
int store_zone_put(store_t *s, const char *actor, const struct store_zone *z,
		   struct store_change *out, char *err, size_t errlen);
int store_zone_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
		      char *err, size_t errlen);
/* The zone's week: schedule_json's canonical text (the caller checked it
 * against the read model), or NULL for none. */
int store_zone_schedule(store_t *s, const char *actor, int64_t zone, const char *schedule,
			struct store_change *out, char *err, size_t errlen);
/* A command to the zone's devices: skip (skip_at = now), a volume (0-100;
 * -1: unchanged). */
int store_zone_command(store_t *s, const char *actor, int64_t zone, bool skip, int volume,
		       struct store_change *out, char *err, size_t errlen);
int store_playlist_put(store_t *s, const char *actor, const struct store_playlist *p,
		       struct store_change *out, char *err, size_t errlen);
int store_playlist_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
			  char *err, size_t errlen);

/* The location ref names (its id or its name) and its zone ref names:
 * 0 with *id, -ENOENT, -EIO. */
int store_location_resolve(store_t *s, const char *ref, int64_t *id);
int store_zone_resolve(store_t *s, int64_t location, const char *ref, int64_t *id);

/* What a device last said, as its node keeps it (api/devices.c). */
struct store_device {
	char key_id[17];
	int64_t zone_id; /* 0: none */
	char node[65];
	bool connected;
	int64_t last_seen_at, offline_since; /* Unix ms; 0: none */
	int64_t playing;                     /* a track id; 0: nothing */
	int64_t position_ms, buffered_s;
	char last_error[256]; /* "" for none */
	char version[33];
};

/* Writes n devices' rows in one transaction, without audit rows (a
 * device's report is not a person's change). 0, -EIO or -ENOTCONN. */
int store_devices_put(store_t *s, const struct store_device *d, size_t n);

#endif
