/*
 * The stores, read from a node's read model (see zones.h). Statements are
 * prepared once per reader; a call that reads several runs them inside
 * one read transaction (catalog_reader_begin), so an answer is one
 * snapshot even while the replicator commits.
 */
#include "catalog/zones.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/model.h"
#include "catalog/rules.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

enum {
	ST_ZONE,
	ST_ZONE_LOCATION,
	ST_LOCATIONS,
	ST_LOCATION,
	ST_LOCATION_ZONES,
	ST_ZONES,
	ST_PLAYLISTS,
	ST_PLAYLIST,
	ST_TRACK_PLAY,
	ST_TRACKS_ALL,
	ST_TRACK_BRIEF,
	ST_VERSION,
	ST_LIVE,
	ST_REVOKED,
	ST_DEVICES,
	ST_N
};

#define LOCATION_COLS "id, name, address, country, timezone, licence, created_at, updated_at"
#define ZONE_COLS "id, location_id, name, volume, schedule IS NOT NULL, created_at, updated_at"

static const char *const stmt_sql[ST_N] = {
	[ST_ZONE] = ("SELECT z.id, z.location_id, z.name, z.volume, z.schedule, l.timezone,"
		     " l.licence, l.name FROM zones z JOIN locations l ON l.id = z.location_id"
		     " WHERE z.id = ?1"),
	/* The access rule's, on every request of a device: the one column. */
	[ST_ZONE_LOCATION] = "SELECT location_id FROM zones WHERE id = ?1",
	[ST_LOCATIONS] = "SELECT " LOCATION_COLS " FROM locations ORDER BY name_key, id",
	[ST_LOCATION] = "SELECT " LOCATION_COLS " FROM locations WHERE id = ?1",
	[ST_LOCATION_ZONES] = ("SELECT " ZONE_COLS " FROM zones WHERE location_id = ?1"
			       " ORDER BY name_key, id"),
	[ST_ZONES] = ("SELECT " ZONE_COLS " FROM zones WHERE ?1 = 0 OR location_id = ?1"
		      " ORDER BY location_id, name_key, id"),
	[ST_PLAYLISTS] = ("SELECT id, name, kind, shuffle, tracks, rules, created_at, updated_at"
			  " FROM playlists ORDER BY name_key, id"),
	[ST_PLAYLIST] = ("SELECT id, name, kind, shuffle, tracks, rules, created_at, updated_at"
			 " FROM playlists WHERE id = ?1"),
	[ST_TRACK_PLAY] = "SELECT artist_id, duration_ms FROM tracks WHERE id = ?1",
	[ST_TRACKS_ALL] = ("SELECT id, artist_id, duration_ms, year, genre, label, explicit"
			   " FROM tracks ORDER BY id"),
	[ST_TRACK_BRIEF] = ("SELECT t.title, a.name, t.mime_type FROM tracks t"
			    " JOIN artists a ON a.id = t.artist_id WHERE t.id = ?1"),
	/* Everything a zone's queue depends on, in one row. */
	[ST_LIVE] = "SELECT volume, coalesce(skip_at, 0) FROM zones WHERE id = ?1",
	[ST_REVOKED] = ("SELECT count(*) * 1000003 + coalesce(max(revoked_at), 0) FROM api_keys"
			" WHERE revoked_at IS NOT NULL"),
	[ST_VERSION] = ("SELECT z.name, z.schedule_at, z.location_id, l.updated_at,"
			" (SELECT count(*) || '.' || coalesce(max(updated_at), 0) FROM playlists),"
			" (SELECT count(*) || '.' || coalesce(max(updated_at), 0) FROM tracks)"
			" FROM zones z JOIN locations l ON l.id = z.location_id WHERE z.id = ?1"),
	[ST_DEVICES] = ("SELECT k.id, k.name, k.location, k.zone, k.revoked_at, d.zone_id, d.node,"
			" d.connected, d.last_seen_at, d.offline_since, d.playing, d.position_ms,"
			" d.buffered_s, d.last_error, d.version, t.title, a.name, l.name, z.name"
			" FROM api_keys k LEFT JOIN devices d ON d.key_id = k.id"
			" LEFT JOIN tracks t ON t.id = d.playing"
			" LEFT JOIN artists a ON a.id = t.artist_id"
			" LEFT JOIN locations l ON printf('%016x', l.id) = k.location"
			" LEFT JOIN zones z ON z.id = coalesce(d.zone_id, -1)"
			" WHERE k.role = 'store' ORDER BY k.created_at, k.id"),
};

struct catalog_zones {
	catalog_reader_t *r;
	sqlite3 *db;
	sqlite3_stmt *st[ST_N];
};

int catalog_zones_open(catalog_reader_t *r, catalog_zones_t **out, char *err, size_t errlen)
{
	catalog_zones_t *z = xcalloc(1, sizeof(*z));

	z->r = r;
	z->db = catalog_reader_db(r);
	for (int i = 0; i < ST_N; i++) {
		if (sqlite3_prepare_v3(z->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &z->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "catalog: zones: %s", sqlite3_errmsg(z->db));
			catalog_zones_close(z);
			return -EIO;
		}
	}
	*out = z;
	return 0;
}

void catalog_zones_close(catalog_zones_t *z)
{
	if (!z)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(z->st[i]);
	free(z);
}

static sqlite3_stmt *stmt(catalog_zones_t *z, int i, int64_t id)
{
	sqlite3_stmt *st = z->st[i];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, id);
	return st;
}

static void reset_all(catalog_zones_t *z)
{
	for (int i = 0; i < ST_N; i++)
		sqlite3_reset(z->st[i]);
}

static int begin(catalog_zones_t *z)
{
	return catalog_reader_begin(z->r);
}

static void end(catalog_zones_t *z)
{
	reset_all(z);
	catalog_reader_end(z->r);
}

static const char *text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t n)
{
	const char *v = text(st, col);

	snprintf(dst, n, "%s", v ? v : "");
}

static void kid(json_t *j, const char *key, int64_t id)
{
	char hex[17];

	catalog_id_str(id, hex);
	json_kstr(j, key, hex);
}

/* A step's result as a status: SQLITE_ROW 200, SQLITE_DONE 404. */
static int step_status(catalog_zones_t *z, sqlite3_stmt *st, int rc)
{
	if (rc == SQLITE_ROW)
		return 200;
	if (rc == SQLITE_DONE)
		return 404;
	log_error("catalog: zones: %s", sqlite3_errmsg(z->db));
	return 500;
}

/* ---- a zone ---- */

int catalog_zone_get(catalog_zones_t *z, int64_t id, struct catalog_zone *out)
{
	sqlite3_stmt *st = stmt(z, ST_ZONE, id);
	int status = step_status(z, st, sqlite3_step(st));

	memset(out, 0, sizeof(*out));
	if (status == 200) {
		const char *sch = text(st, 4);

		out->id = sqlite3_column_int64(st, 0);
		out->location_id = sqlite3_column_int64(st, 1);
		copy_col(st, 2, out->name, sizeof(out->name));
		out->volume = sqlite3_column_int(st, 3);
		out->schedule = sch ? xstrdup(sch) : NULL;
		copy_col(st, 5, out->timezone, sizeof(out->timezone));
		copy_col(st, 6, out->licence, sizeof(out->licence));
		copy_col(st, 7, out->location_name, sizeof(out->location_name));
	}
	sqlite3_reset(st);
	return status;
}

void catalog_zone_free(struct catalog_zone *zone)
{
	free(zone->schedule);
	zone->schedule = NULL;
}

int catalog_zone_live(catalog_zones_t *z, int64_t id, int *volume, int64_t *skip_at)
{
	sqlite3_stmt *st = stmt(z, ST_LIVE, id);
	int status = step_status(z, st, sqlite3_step(st));

	if (status == 200) {
		*volume = sqlite3_column_int(st, 0);
		*skip_at = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return status == 200 ? 0 : status == 404 ? -ENOENT : -EIO;
}

int64_t catalog_revocations(catalog_zones_t *z)
{
	sqlite3_stmt *st = stmt(z, ST_REVOKED, 0);
	int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;

	sqlite3_reset(st);
	return v;
}

int catalog_zone_location(catalog_zones_t *z, int64_t id, int64_t *location_id)
{
	sqlite3_stmt *st = stmt(z, ST_ZONE_LOCATION, id);
	int status = step_status(z, st, sqlite3_step(st));

	if (status == 200)
		*location_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return status == 200 ? 0 : status == 404 ? -ENOENT : -EIO;
}

int catalog_zone_version(catalog_zones_t *z, int64_t id, char out[17])
{
	sqlite3_stmt *st = stmt(z, ST_VERSION, id);
	int status = step_status(z, st, sqlite3_step(st));
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over the row's text */

	if (status == 200) {
		for (int c = 0; c < 6; c++) {
			const char *v = text(st, c);

			for (; v && *v; v++)
				h = (h ^ (unsigned char)*v) * 1099511628211ULL;
			h = (h ^ '|') * 1099511628211ULL;
		}
		catalog_id_str((int64_t)h, out);
	}
	sqlite3_reset(st);
	return status == 200 ? 0 : status == 404 ? -ENOENT : -EIO;
}

static void zone_obj(json_t *j, sqlite3_stmt *st)
{
	json_obj_begin(j);
	kid(j, "id", sqlite3_column_int64(st, 0));
	kid(j, "location_id", sqlite3_column_int64(st, 1));
	json_kstr(j, "name", text(st, 2));
	json_kint(j, "volume", sqlite3_column_int(st, 3));
	json_kbool(j, "scheduled", sqlite3_column_int(st, 4) != 0);
	json_kint(j, "created_at", sqlite3_column_int64(st, 5));
	json_kint(j, "updated_at", sqlite3_column_int64(st, 6));
	json_obj_end(j);
}

static int finish_json(catalog_zones_t *z, json_t *j, int status, buf_t *out, size_t mark)
{
	if (status == 200 && json_failed(j))
		status = 500;
	if (status != 200)
		out->len = mark;
	end(z);
	return status;
}

int catalog_json_zones(catalog_zones_t *z, int64_t location_id, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int rc, status = 200;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_ZONES, location_id);
	json_init(&j, out);
	json_obj_begin(&j);
	json_key(&j, "items");
	json_arr_begin(&j);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		zone_obj(&j, st);
	if (rc != SQLITE_DONE)
		status = step_status(z, st, rc);
	json_arr_end(&j);
	json_obj_end(&j);
	return finish_json(z, &j, status, out, mark);
}

static void zone_full(catalog_zones_t *z, json_t *j, const struct catalog_zone *zone,
		      const char *version)
{
	json_obj_begin(j);
	kid(j, "id", zone->id);
	kid(j, "location_id", zone->location_id);
	json_kstr(j, "name", zone->name);
	json_kint(j, "volume", zone->volume);
	json_kstr(j, "location_name", zone->location_name);
	json_kstr(j, "timezone", zone->timezone);
	json_kstr(j, "licence", zone->licence);
	json_kstr(j, "version", version);
	json_key(j, "schedule");
	if (zone->schedule)
		json_raw(j, zone->schedule, strlen(zone->schedule));
	else
		json_nil(j);
	json_obj_end(j);
}

int catalog_json_zone(catalog_zones_t *z, int64_t id, buf_t *out)
{
	struct catalog_zone zone;
	size_t mark = out->len;
	char version[17] = "";
	json_t j;
	int status;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	json_init(&j, out);
	status = catalog_zone_get(z, id, &zone);
	if (status != 200)
		return finish_json(z, &j, status, out, mark);
	if (catalog_zone_version(z, id, version) < 0)
		status = 500;
	zone_full(z, &j, &zone, version);
	catalog_zone_free(&zone);
	return finish_json(z, &j, status, out, mark);
}

int catalog_json_schedule(catalog_zones_t *z, int64_t id, buf_t *out)
{
	struct catalog_zone zone;
	size_t mark = out->len;
	char version[17] = "", hex[17];
	const char *body = "{\"dayparts\":[],\"overrides\":[],\"announcements\":[],"
			   "\"separation_minutes\":60}";
	int status;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	status = catalog_zone_get(z, id, &zone);
	if (status == 200 && catalog_zone_version(z, id, version) < 0)
		status = 500;
	if (status == 200) {
		const char *s = zone.schedule ? zone.schedule : body;
		char head[96];

		/* The stored week is an object: its keys follow ours. */
		catalog_id_str(id, hex);
		snprintf(head, sizeof(head), "{\"zone_id\":\"%s\",\"version\":\"%s\"%s", hex,
			 version, strlen(s) > 2 ? "," : "");
		if (buf_append(out, head, strlen(head)) < 0 ||
		    buf_append(out, s + 1, strlen(s) - 1) < 0)
			status = 500;
		catalog_zone_free(&zone);
	}
	if (status != 200)
		out->len = mark;
	end(z);
	return status;
}

/* ---- locations ---- */

static void location_head(json_t *j, sqlite3_stmt *st)
{
	kid(j, "id", sqlite3_column_int64(st, 0));
	json_kstr(j, "name", text(st, 1));
	json_kstr(j, "address", text(st, 2));
	json_kstr(j, "country", text(st, 3));
	json_kstr(j, "timezone", text(st, 4));
	json_kstr(j, "licence", text(st, 5));
	json_kint(j, "created_at", sqlite3_column_int64(st, 6));
	json_kint(j, "updated_at", sqlite3_column_int64(st, 7));
}

/* "zones": the location's zones, objects or ids. */
static int location_zones(catalog_zones_t *z, json_t *j, int64_t id, bool objects)
{
	sqlite3_stmt *st = stmt(z, ST_LOCATION_ZONES, id);
	char hex[17];
	int rc;

	json_key(j, "zones");
	json_arr_begin(j);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (objects) {
			zone_obj(j, st);
		} else {
			catalog_id_str(sqlite3_column_int64(st, 0), hex);
			json_str(j, hex);
		}
	}
	json_arr_end(j);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 200 : step_status(z, st, rc);
}

int catalog_location_get(catalog_zones_t *z, int64_t id, struct catalog_location *out)
{
	sqlite3_stmt *st = stmt(z, ST_LOCATION, id);
	int status = step_status(z, st, sqlite3_step(st));

	if (status == 200) {
		copy_col(st, 1, out->name, sizeof(out->name));
		copy_col(st, 2, out->address, sizeof(out->address));
		copy_col(st, 3, out->country, sizeof(out->country));
		copy_col(st, 4, out->timezone, sizeof(out->timezone));
		copy_col(st, 5, out->licence, sizeof(out->licence));
	}
	sqlite3_reset(st);
	return status;
}

int catalog_json_locations(catalog_zones_t *z, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int rc, status = 200;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_LOCATIONS, 0);
	json_init(&j, out);
	json_obj_begin(&j);
	json_key(&j, "items");
	json_arr_begin(&j);
	while (status == 200 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_obj_begin(&j);
		location_head(&j, st);
		status = location_zones(z, &j, sqlite3_column_int64(st, 0), false);
		json_obj_end(&j);
	}
	if (status == 200 && rc != SQLITE_DONE)
		status = step_status(z, st, rc);
	json_arr_end(&j);
	json_obj_end(&j);
	return finish_json(z, &j, status, out, mark);
}

int catalog_json_location(catalog_zones_t *z, int64_t id, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int status;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_LOCATION, id);
	status = step_status(z, st, sqlite3_step(st));
	json_init(&j, out);
	if (status == 200) {
		json_obj_begin(&j);
		location_head(&j, st);
		status = location_zones(z, &j, id, true);
		json_obj_end(&j);
	}
	return finish_json(z, &j, status, out, mark);
}

/* ---- playlists ---- */

/* The tracks of a "tracks" playlist that exist, in its order; a rules
 * playlist's matching tracks by id. Into *t (malloc'd) and *n. */
static int pool_of(catalog_zones_t *z, sqlite3_stmt *pl, struct sched_track **t, int *n)
{
	const char *kind = text(pl, 2);
	size_t cap = 64, count = 0;
	struct sched_track *v = xmalloc(cap * sizeof(*v));
	int rc;

	if (kind && strcmp(kind, "rules") == 0) {
		struct rules rules;
		const char *rtext = text(pl, 5);
		char err[256];
		sqlite3_stmt *st;

		if (!rtext || rules_parse(rtext, strlen(rtext), &rules, err, sizeof(err)) < 0) {
			log_error("catalog: a rules playlist's rules do not parse: %s", err);
			free(v);
			return 500;
		}
		st = stmt(z, ST_TRACKS_ALL, 0);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct rules_track rt = {
				.id = sqlite3_column_int64(st, 0),
				.artist = sqlite3_column_int64(st, 1),
				.year = sqlite3_column_int(st, 3),
				.genre = text(st, 4),
				.label = text(st, 5),
				.explicit_flag = sqlite3_column_type(st, 6) == SQLITE_NULL
							 ? -1
							 : sqlite3_column_int(st, 6),
			};
			int64_t dur = sqlite3_column_int64(st, 2);

			if (dur <= 0 || dur > INT32_MAX || !rules_match(&rules, &rt))
				continue;
			if (count == cap)
				v = xrealloc(v, (cap *= 2) * sizeof(*v));
			v[count++] = (struct sched_track){rt.id, rt.artist, (int32_t)dur};
		}
		rules_free(&rules);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			free(v);
			return step_status(z, st, rc);
		}
	} else {
		const char *p = text(pl, 4);

		for (; p && *p;) {
			int64_t id;
			sqlite3_stmt *st;

			while (*p == ' ')
				p++;
			if (strlen(p) < 16 || catalog_id_parse(p, 16, &id) < 0)
				break;
			p += 16;
			st = stmt(z, ST_TRACK_PLAY, id);
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0 &&
			    sqlite3_column_int64(st, 1) <= INT32_MAX) {
				if (count == cap)
					v = xrealloc(v, (cap *= 2) * sizeof(*v));
				v[count++] =
					(struct sched_track){id, sqlite3_column_int64(st, 0),
							     (int32_t)sqlite3_column_int64(st, 1)};
			}
			sqlite3_reset(st);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				free(v);
				return step_status(z, st, rc);
			}
		}
	}
	*t = v;
	*n = (int)count;
	return 200;
}

static int playlist_obj(catalog_zones_t *z, json_t *j, sqlite3_stmt *pl, bool with_ids)
{
	struct sched_track *t = NULL;
	const char *kind = text(pl, 2), *rules = text(pl, 5);
	int64_t dur = 0;
	int n = 0, status = pool_of(z, pl, &t, &n);
	char hex[17];

	if (status != 200)
		return status;
	for (int i = 0; i < n; i++)
		dur += t[i].duration_ms;
	json_obj_begin(j);
	kid(j, "id", sqlite3_column_int64(pl, 0));
	json_kstr(j, "name", text(pl, 1));
	json_kstr(j, "kind", kind);
	json_kbool(j, "shuffle", sqlite3_column_int(pl, 3) != 0);
	if (kind && strcmp(kind, "rules") == 0) {
		json_key(j, "rules");
		json_raw(j, rules ? rules : "{}", rules ? strlen(rules) : 2);
	} else {
		const char *p = text(pl, 4);

		/* The list as given, missing tracks too: the editor sees them. */
		json_key(j, "tracks");
		json_arr_begin(j);
		for (; p && strlen(p) >= 16; p += p[16] ? 17 : 16)
			json_strn(j, p, 16);
		json_arr_end(j);
	}
	json_kint(j, "track_count", n);
	json_kint(j, "duration_ms", dur);
	json_kint(j, "created_at", sqlite3_column_int64(pl, 6));
	json_kint(j, "updated_at", sqlite3_column_int64(pl, 7));
	if (with_ids) {
		json_key(j, "track_ids");
		json_arr_begin(j);
		for (int i = 0; i < n; i++) {
			catalog_id_str(t[i].id, hex);
			json_str(j, hex);
		}
		json_arr_end(j);
	}
	json_obj_end(j);
	free(t);
	return 200;
}

int catalog_json_playlists(catalog_zones_t *z, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int rc, status = 200;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_PLAYLISTS, 0);
	json_init(&j, out);
	json_obj_begin(&j);
	json_key(&j, "items");
	json_arr_begin(&j);
	while (status == 200 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		status = playlist_obj(z, &j, st, false);
	if (status == 200 && rc != SQLITE_DONE)
		status = step_status(z, st, rc);
	json_arr_end(&j);
	json_obj_end(&j);
	return finish_json(z, &j, status, out, mark);
}

int catalog_json_playlist(catalog_zones_t *z, int64_t id, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int status;

	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_PLAYLIST, id);
	status = step_status(z, st, sqlite3_step(st));
	json_init(&j, out);
	if (status == 200)
		status = playlist_obj(z, &j, st, true);
	return finish_json(z, &j, status, out, mark);
}

int catalog_playlist_pool(catalog_zones_t *z, int64_t id, struct sched_pool *out)
{
	sqlite3_stmt *st;
	struct sched_track *t = NULL;
	int n = 0, status;

	memset(out, 0, sizeof(*out));
	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_PLAYLIST, id);
	status = step_status(z, st, sqlite3_step(st));
	if (status == 200) {
		const char *kind = text(st, 2);

		out->playlist = id;
		/* A rules playlist is a pool, never an order. */
		out->shuffle =
			sqlite3_column_int(st, 3) != 0 || (kind && strcmp(kind, "rules") == 0);
		status = pool_of(z, st, &t, &n);
		out->t = t;
		out->n = n;
	}
	end(z);
	return status;
}

/* ---- tracks ---- */

int catalog_tracks_missing(catalog_zones_t *z, const int64_t *ids, int n, int64_t *missing)
{
	for (int i = 0; i < n; i++) {
		sqlite3_stmt *st = stmt(z, ST_TRACK_PLAY, ids[i]);
		int rc = sqlite3_step(st);

		sqlite3_reset(st);
		if (rc == SQLITE_DONE) {
			*missing = ids[i];
			return 1;
		}
		if (rc != SQLITE_ROW)
			return step_status(z, st, rc) == 500 ? -1 : 1;
	}
	return 0;
}

int catalog_spots(catalog_zones_t *z, const int64_t *ids, int n, struct sched_track *out)
{
	int count = 0;

	for (int i = 0; i < n; i++) {
		sqlite3_stmt *st = stmt(z, ST_TRACK_PLAY, ids[i]);

		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0 &&
		    sqlite3_column_int64(st, 1) <= INT32_MAX)
			out[count++] = (struct sched_track){ids[i], sqlite3_column_int64(st, 0),
							    (int32_t)sqlite3_column_int64(st, 1)};
		sqlite3_reset(st);
	}
	return count;
}

int catalog_track_brief(catalog_zones_t *z, int64_t id, struct catalog_brief *out)
{
	sqlite3_stmt *st = stmt(z, ST_TRACK_BRIEF, id);
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		copy_col(st, 0, out->title, sizeof(out->title));
		copy_col(st, 1, out->artist, sizeof(out->artist));
		copy_col(st, 2, out->mime, sizeof(out->mime));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* ---- devices ---- */

int catalog_json_devices(catalog_zones_t *z, int64_t location_id, int64_t now_ms, int64_t online_ms,
			 buf_t *out)
{
	size_t mark = out->len;
	char want[17] = "";
	sqlite3_stmt *st;
	json_t j;
	int rc, status = 200;

	if (location_id)
		catalog_id_str(location_id, want);
	if (begin(z) < 0) {
		end(z);
		return 500;
	}
	st = stmt(z, ST_DEVICES, 0);
	json_init(&j, out);
	json_obj_begin(&j);
	json_key(&j, "items");
	json_arr_begin(&j);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *loc = text(st, 2);
		bool seen = sqlite3_column_type(st, 8) != SQLITE_NULL;
		int64_t last = sqlite3_column_int64(st, 8);
		bool revoked = sqlite3_column_type(st, 4) != SQLITE_NULL;
		/* Marked offline by the node it left (its stream closed), or
		 * unheard for too long (the node died): offline. A connected
		 * device's row is rewritten every minute. */
		bool online = !revoked && seen && sqlite3_column_type(st, 9) == SQLITE_NULL &&
			      now_ms - last <= online_ms;

		if (want[0] && (!loc || strcmp(loc, want) != 0))
			continue;
		json_obj_begin(&j);
		json_kstr(&j, "key", text(st, 0));
		json_kstr(&j, "name", text(st, 1));
		json_kstr(&j, "location_id", loc);
		json_kstr(&j, "location_name", text(st, 17));
		/* The zone the key is bound to, else the one it last played. */
		if (text(st, 3)) {
			json_kstr(&j, "zone_id", text(st, 3));
		} else if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			kid(&j, "zone_id", sqlite3_column_int64(st, 5));
		} else {
			json_knull(&j, "zone_id");
		}
		json_kstr(&j, "zone_name", text(st, 18));
		json_kbool(&j, "revoked", revoked);
		json_kbool(&j, "online", online);
		if (seen)
			json_kint(&j, "last_seen_at", last);
		else
			json_knull(&j, "last_seen_at");
		if (!online && seen)
			json_kint(&j, "offline_since",
				  sqlite3_column_type(st, 9) != SQLITE_NULL
					  ? sqlite3_column_int64(st, 9)
					  : last);
		else
			json_knull(&j, "offline_since");
		json_key(&j, "playing");
		if (sqlite3_column_type(st, 10) != SQLITE_NULL && text(st, 15)) {
			json_obj_begin(&j);
			kid(&j, "track_id", sqlite3_column_int64(st, 10));
			json_kstr(&j, "title", text(st, 15));
			json_kstr(&j, "artist", text(st, 16));
			json_kint(&j, "position_ms", sqlite3_column_int64(st, 11));
			json_obj_end(&j);
		} else {
			json_nil(&j);
		}
		if (seen)
			json_kint(&j, "buffered_s", sqlite3_column_int64(st, 12));
		else
			json_knull(&j, "buffered_s");
		json_kstr(&j, "last_error", text(st, 13));
		json_kstr(&j, "version", text(st, 14));
		json_kstr(&j, "node", text(st, 6));
		json_obj_end(&j);
	}
	if (rc != SQLITE_DONE)
		status = step_status(z, st, rc);
	json_arr_end(&j);
	json_obj_end(&j);
	return finish_json(z, &j, status, out, mark);
}
