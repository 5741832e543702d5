#ifndef CHORUS_API_ZONES_BODY_H
#define CHORUS_API_ZONES_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/zones.h"

/*
 * The bodies of the stores' endpoints (docs/api.md, "In the store"),
 * parsed strictly: jansson, duplicate keys refused, unknown keys refused
 * (a misspelt "timezone" must not pass as absent). Each returns 200, 400
 * (not a JSON object) or 422, with the reason for a person in err naming
 * the field. Apart from api/zones.c because jansson's json_t clashes with
 * util/json.h.
 *
 * A PATCH is merged into the object as it is (the caller fills *l or *z
 * first); patch false requires what a new object needs.
 */
#define ZONES_BODY_TRACKS_MAX 10000 /* tracks of a playlist */

int zones_body_location(const void *body, size_t len, bool patch, struct store_location *l,
			char *err, size_t errlen);
int zones_body_zone(const void *body, size_t len, bool patch, struct store_zone *z, char *err,
		    size_t errlen);

/* A playlist: tracks (ids into *ids, malloc'd, *n) or rules (their
 * canonical JSON into *rules, malloc'd); p's text pointers are set to
 * them. The caller frees *ids, *tracks and *rules. */
int zones_body_playlist(const void *body, size_t len, struct store_playlist *p, int64_t **ids,
			int *n, char **tracks, char **rules, char *err, size_t errlen);

/* {"type":"skip"} or {"type":"volume","volume":0-100}. */
int zones_body_command(const void *body, size_t len, bool *skip, int *volume, char *err,
		       size_t errlen);

/* A device's report: what it plays, where, how much it holds, its last
 * error. */
struct zones_status {
	int64_t playing; /* 0: nothing */
	int64_t position_ms, buffered_s;
	char error[256]; /* "" for none */
	char version[33];
};
int zones_body_status(const void *body, size_t len, struct zones_status *s, char *err,
		      size_t errlen);

#endif
