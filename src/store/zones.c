/*
 * The stores' writes (see zones.h), once for both dialects over
 * sql/sql.h. Each is one write transaction: the checks that need the
 * database (a name taken, a location that does not exist, a playlist a
 * schedule plays), the change, its audit row, and the change number the
 * caller waits for. sql_tx serializes it with every other writer, so a
 * check cannot be overtaken between it and the change; the unique
 * name_key columns are the backstop. A fn may run again on PostgreSQL
 * after a lost connection: each starts from scratch and redraws its ids.
 */
#include "store/zones.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/model.h"
#include "sql/sql.h"
#include "store/principals.h"
#include "store/store_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/text.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The audit row of an action on object id; detail a JSON object or NULL. */
static int audit(sql_t *db, const char *actor, const char *action, int64_t id, const char *detail)
{
	char hex[17];

	catalog_id_str(id, hex);
	return principals_audit_in(db, actor, action, hex, detail);
}

/* {"name":N} for the audit (malloc'd, or NULL when it does not fit). */
static char *name_detail(const char *name)
{
	buf_t b;
	json_t j;

	buf_init(&b, 4096);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_kstr(&j, "name", name);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* An int64 that the statement's first column holds, -ENOENT for no row. */
static int one_int(sql_stmt_t *st, int64_t *v)
{
	int rc = sql_step(st);

	if (rc == SQL_ROW)
		*v = sql_column_int64(st, 0);
	sql_finalize(st);
	return rc == SQL_ROW ? 0 : rc == SQL_DONE ? -ENOENT : rc;
}

/* Whether a row exists: 1, 0, or the error. */
static int exists(sql_t *db, const char *sql, int64_t a, const char *b, int64_t c)
{
	sql_stmt_t *st = sql_prepare(db, sql);
	int64_t v;
	int rc;

	sql_bind_int(st, 1, a);
	if (b)
		sql_bind_text(st, 2, b);
	if (c)
		sql_bind_int(st, 3, c);
	rc = one_int(st, &v);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

struct op {
	const char *actor;
	const void *obj;
	int64_t id;
	const char *text;
	struct store_change *out;
	char *err;
	size_t errlen;
};

static int finish(sql_t *db, struct op *o, const char *action, int64_t id, const char *name)
{
	char *detail = name ? name_detail(name) : NULL;
	int rc = audit(db, o->actor, action, id, detail);

	free(detail);
	o->out->id = id;
	return rc < 0 ? rc : store__last_seq(db, &o->out->seq);
}

static int run(store_t *s, sql_tx_fn fn, struct op *o)
{
	int rc;

	memset(o->out, 0, sizeof(*o->out));
	o->err[0] = '\0';
	rc = sql_tx(s->db, true, fn, o);
	if (rc < 0 && !o->err[0])
		snprintf(o->err, o->errlen, "%s",
			 rc == -ENOENT ? "it does not exist" : "the database refused the change");
	return rc;
}

/* ---- locations ---- */

static int location_put_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	const struct store_location *l = o->obj;
	char *key = text_name_key(l->name);
	int64_t id = l->id ? l->id : catalog_random_id(), t = now_ms();
	sql_stmt_t *st;
	int rc;

	rc = exists(db, "SELECT id FROM locations WHERE name_key = ?2 AND id <> ?1", id, key, 0);
	if (rc > 0) {
		snprintf(o->err, o->errlen, "a location named \"%s\" exists already", l->name);
		rc = -EEXIST;
	}
	if (rc == 0 && l->id) {
		rc = exists(db, "SELECT id FROM locations WHERE id = ?1", id, NULL, 0);
		rc = rc > 0 ? 0 : rc == 0 ? -ENOENT : rc;
	}
	if (rc < 0) {
		free(key);
		return rc;
	}
	if (l->id)
		st = sql_prepare(db, "UPDATE locations SET name = ?2, name_key = ?3, address = ?4,"
				     " country = ?5, timezone = ?6, licence = ?7, updated_at = ?8"
				     " WHERE id = ?1");
	else
		st = sql_prepare(db, "INSERT INTO locations (id, name, name_key, address, country,"
				     " timezone, licence, created_at, updated_at)"
				     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)");
	sql_bind_int(st, 1, id);
	sql_bind_text(st, 2, l->name);
	sql_bind_text(st, 3, key);
	sql_bind_text(st, 4, l->address[0] ? l->address : NULL);
	sql_bind_text(st, 5, l->country);
	sql_bind_text(st, 6, l->timezone);
	sql_bind_text(st, 7, l->licence);
	sql_bind_int(st, 8, t);
	free(key);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, l->id ? "location.edit" : "location.add", id, l->name);
}

int store_location_put(store_t *s, const char *actor, const struct store_location *l,
		       struct store_change *out, char *err, size_t errlen)
{
	struct op o = {actor, l, 0, NULL, out, err, errlen};

	return run(s, location_put_op, &o);
}

static int location_delete_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	sql_stmt_t *st;
	int rc = exists(db, "SELECT id FROM locations WHERE id = ?1", o->id, NULL, 0);

	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	rc = exists(db, "SELECT id FROM zones WHERE location_id = ?1 LIMIT 1", o->id, NULL, 0);
	if (rc > 0) {
		snprintf(o->err, o->errlen, "the location still has zones: delete them first");
		return -ENOTEMPTY;
	}
	if (rc < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM locations WHERE id = ?1");
	sql_bind_int(st, 1, o->id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, "location.delete", o->id, NULL);
}

int store_location_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
			  char *err, size_t errlen)
{
	struct op o = {actor, NULL, id, NULL, out, err, errlen};

	return run(s, location_delete_op, &o);
}

/* ---- zones ---- */

static int zone_put_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	const struct store_zone *z = o->obj;
	char *key = text_name_key(z->name);
	int64_t id = z->id ? z->id : catalog_random_id(), t = now_ms();
	sql_stmt_t *st;
	int rc = exists(db, "SELECT id FROM locations WHERE id = ?1", z->location_id, NULL, 0);

	if (rc == 0) {
		snprintf(o->err, o->errlen, "no such location");
		rc = -ENOENT;
	}
	if (rc > 0 && z->id) {
		rc = exists(db, "SELECT id FROM zones WHERE id = ?1", id, NULL, 0);
		rc = rc == 0 ? -ENOENT : rc;
	}
	if (rc > 0) {
		rc = exists(db,
			    "SELECT id FROM zones WHERE location_id = ?3 AND name_key = ?2"
			    " AND id <> ?1",
			    id, key, z->location_id);
		if (rc > 0) {
			snprintf(o->err, o->errlen, "the location has a zone named \"%s\" already",
				 z->name);
			rc = -EEXIST;
		}
	}
	if (rc < 0) {
		free(key);
		return rc;
	}
	if (z->id)
		st = sql_prepare(db, "UPDATE zones SET name = ?2, name_key = ?3, volume = ?4,"
				     " updated_at = ?6 WHERE id = ?1 AND location_id = ?5");
	else
		st = sql_prepare(db, "INSERT INTO zones (id, name, name_key, volume, location_id,"
				     " schedule, schedule_at, created_at, updated_at)"
				     " VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?6)");
	sql_bind_int(st, 1, id);
	sql_bind_text(st, 2, z->name);
	sql_bind_text(st, 3, key);
	sql_bind_int(st, 4, z->volume);
	sql_bind_int(st, 5, z->location_id);
	sql_bind_int(st, 6, t);
	free(key);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, z->id ? "zone.edit" : "zone.add", id, z->name);
}

int store_zone_put(store_t *s, const char *actor, const struct store_zone *z,
		   struct store_change *out, char *err, size_t errlen)
{
	struct op o = {actor, z, 0, NULL, out, err, errlen};

	return run(s, zone_put_op, &o);
}

static int zone_delete_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	sql_stmt_t *st;
	int rc = exists(db, "SELECT id FROM zones WHERE id = ?1", o->id, NULL, 0);

	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	st = sql_prepare(db, "DELETE FROM zones WHERE id = ?1");
	sql_bind_int(st, 1, o->id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, "zone.delete", o->id, NULL);
}

int store_zone_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
		      char *err, size_t errlen)
{
	struct op o = {actor, NULL, id, NULL, out, err, errlen};

	return run(s, zone_delete_op, &o);
}

static int zone_schedule_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "UPDATE zones SET schedule = ?2, schedule_at = ?3,"
					 " updated_at = ?3 WHERE id = ?1");
	int rc = exists(db, "SELECT id FROM zones WHERE id = ?1", o->id, NULL, 0);

	if (rc <= 0) {
		sql_finalize(st);
		return rc == 0 ? -ENOENT : rc;
	}
	sql_bind_int(st, 1, o->id);
	sql_bind_text(st, 2, o->text);
	sql_bind_int(st, 3, now_ms());
	if ((rc = sql_run(st)) < 0)
		return rc;
	/* The week itself is in the row; the audit says it changed. */
	return finish(db, o, "zone.schedule", o->id, NULL);
}

int store_zone_schedule(store_t *s, const char *actor, int64_t zone, const char *schedule,
			struct store_change *out, char *err, size_t errlen)
{
	struct op o = {actor, NULL, zone, schedule, out, err, errlen};

	return run(s, zone_schedule_op, &o);
}

struct command {
	bool skip;
	int volume;
};

static int zone_command_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	const struct command *cmd = o->obj;
	sql_stmt_t *st = sql_prepare(db, "UPDATE zones SET skip_at = CASE WHEN ?2 = 1 THEN ?4"
					 " ELSE skip_at END, volume = CASE WHEN ?3 >= 0 THEN ?3"
					 " ELSE volume END, updated_at = ?4 WHERE id = ?1");
	int rc = exists(db, "SELECT id FROM zones WHERE id = ?1", o->id, NULL, 0);
	char detail[64];

	if (rc <= 0) {
		sql_finalize(st);
		return rc == 0 ? -ENOENT : rc;
	}
	sql_bind_int(st, 1, o->id);
	sql_bind_int(st, 2, cmd->skip);
	sql_bind_int(st, 3, cmd->volume);
	sql_bind_int(st, 4, now_ms());
	if ((rc = sql_run(st)) < 0)
		return rc;
	if (cmd->skip)
		snprintf(detail, sizeof(detail), "{\"skip\":true}");
	else
		snprintf(detail, sizeof(detail), "{\"volume\":%d}", cmd->volume);
	rc = audit(db, o->actor, "zone.command", o->id, detail);
	o->out->id = o->id;
	return rc < 0 ? rc : store__last_seq(db, &o->out->seq);
}

int store_zone_command(store_t *s, const char *actor, int64_t zone, bool skip, int volume,
		       struct store_change *out, char *err, size_t errlen)
{
	struct command cmd = {skip, volume};
	struct op o = {actor, &cmd, zone, NULL, out, err, errlen};

	return run(s, zone_command_op, &o);
}

/* ---- playlists ---- */

static int playlist_put_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	const struct store_playlist *p = o->obj;
	char *key = text_name_key(p->name);
	int64_t id = p->id ? p->id : catalog_random_id(), t = now_ms();
	sql_stmt_t *st;
	int rc;

	rc = exists(db, "SELECT id FROM playlists WHERE name_key = ?2 AND id <> ?1", id, key, 0);
	if (rc > 0) {
		snprintf(o->err, o->errlen, "a playlist named \"%s\" exists already", p->name);
		rc = -EEXIST;
	}
	if (rc == 0 && p->id) {
		rc = exists(db, "SELECT id FROM playlists WHERE id = ?1", id, NULL, 0);
		rc = rc > 0 ? 0 : rc == 0 ? -ENOENT : rc;
	}
	if (rc < 0) {
		free(key);
		return rc;
	}
	if (p->id)
		st = sql_prepare(db, "UPDATE playlists SET name = ?2, name_key = ?3, kind = ?4,"
				     " shuffle = ?5, tracks = ?6, rules = ?7, updated_at = ?8"
				     " WHERE id = ?1");
	else
		st = sql_prepare(db, "INSERT INTO playlists (id, name, name_key, kind, shuffle,"
				     " tracks, rules, created_at, updated_at)"
				     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)");
	sql_bind_int(st, 1, id);
	sql_bind_text(st, 2, p->name);
	sql_bind_text(st, 3, key);
	sql_bind_text(st, 4, p->rules_kind ? "rules" : "tracks");
	sql_bind_int(st, 5, p->shuffle);
	sql_bind_text(st, 6, p->rules_kind ? NULL : p->tracks ? p->tracks : "");
	sql_bind_text(st, 7, p->rules_kind ? p->rules : NULL);
	sql_bind_int(st, 8, t);
	free(key);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, p->id ? "playlist.edit" : "playlist.add", id, p->name);
}

int store_playlist_put(store_t *s, const char *actor, const struct store_playlist *p,
		       struct store_change *out, char *err, size_t errlen)
{
	struct op o = {actor, p, 0, NULL, out, err, errlen};

	return run(s, playlist_put_op, &o);
}

static int playlist_delete_op(sql_t *db, void *arg)
{
	struct op *o = arg;
	char pattern[32];
	sql_stmt_t *st;
	int rc = exists(db, "SELECT id FROM playlists WHERE id = ?1", o->id, NULL, 0);

	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	/* A schedule names its playlists as "playlist_id":"<hex>" in its
	 * canonical JSON (schedule_json). */
	catalog_id_str(o->id, pattern + 1);
	pattern[0] = '%';
	strcat(pattern, "%");
	st = sql_prepare(db, "SELECT z.name, l.name FROM zones z JOIN locations l"
			     " ON l.id = z.location_id WHERE z.schedule LIKE ?1 LIMIT 1");
	sql_bind_text(st, 1, pattern);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		snprintf(
			o->err, o->errlen,
			"the schedule of zone \"%s\" of \"%s\" plays it: change the schedule first",
			sql_column_text(st, 0), sql_column_text(st, 1));
		rc = -EBUSY;
	}
	sql_finalize(st);
	if (rc < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM playlists WHERE id = ?1");
	sql_bind_int(st, 1, o->id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return finish(db, o, "playlist.delete", o->id, NULL);
}

int store_playlist_delete(store_t *s, const char *actor, int64_t id, struct store_change *out,
			  char *err, size_t errlen)
{
	struct op o = {actor, NULL, id, NULL, out, err, errlen};

	return run(s, playlist_delete_op, &o);
}

/* ---- names ---- */

static int resolve(sql_t *db, const char *by_id, const char *by_name, int64_t scope,
		   const char *ref, int64_t *id)
{
	int64_t want;
	char *key;
	sql_stmt_t *st;
	int rc;

	if (catalog_id_parse(ref, strlen(ref), &want) == 0) {
		st = sql_prepare(db, by_id);
		sql_bind_int(st, 1, want);
		sql_bind_int(st, 2, scope);
		if ((rc = one_int(st, id)) != -ENOENT)
			return rc;
	}
	key = text_name_key(ref);
	st = sql_prepare(db, by_name);
	sql_bind_text(st, 1, key);
	sql_bind_int(st, 2, scope);
	free(key);
	return one_int(st, id);
}

int store__location_resolve(sql_t *db, const char *ref, int64_t *id)
{
	return resolve(db, "SELECT id FROM locations WHERE id = ?1 AND ?2 = 0",
		       "SELECT id FROM locations WHERE name_key = ?1 AND ?2 = 0", 0, ref, id);
}

int store__zone_resolve(sql_t *db, int64_t location, const char *ref, int64_t *id)
{
	return resolve(db, "SELECT id FROM zones WHERE id = ?1 AND location_id = ?2",
		       "SELECT id FROM zones WHERE name_key = ?1 AND location_id = ?2", location,
		       ref, id);
}

struct resolve_op {
	int64_t location;
	const char *ref;
	int64_t *id;
};

static int location_resolve_op(sql_t *db, void *arg)
{
	struct resolve_op *o = arg;

	return store__location_resolve(db, o->ref, o->id);
}

static int zone_resolve_op(sql_t *db, void *arg)
{
	struct resolve_op *o = arg;

	return store__zone_resolve(db, o->location, o->ref, o->id);
}

int store_location_resolve(store_t *s, const char *ref, int64_t *id)
{
	struct resolve_op o = {0, ref, id};

	return sql_tx(s->db, false, location_resolve_op, &o);
}

int store_zone_resolve(store_t *s, int64_t location, const char *ref, int64_t *id)
{
	struct resolve_op o = {location, ref, id};

	return sql_tx(s->db, false, zone_resolve_op, &o);
}

/* ---- devices ---- */

struct devices_op {
	const struct store_device *d;
	size_t n;
};

static int devices_op(sql_t *db, void *arg)
{
	struct devices_op *o = arg;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < o->n; i++) {
		const struct store_device *d = &o->d[i];
		/* Both dialects have ON CONFLICT ... DO UPDATE. */
		sql_stmt_t *st = sql_prepare(
			db,
			"INSERT INTO devices (key_id, zone_id, node, connected, last_seen_at,"
			" offline_since, playing, position_ms, buffered_s, last_error, version,"
			" updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
			" ON CONFLICT (key_id) DO UPDATE SET zone_id = excluded.zone_id,"
			" node = excluded.node, connected = excluded.connected,"
			" last_seen_at = excluded.last_seen_at,"
			" offline_since = excluded.offline_since, playing = excluded.playing,"
			" position_ms = excluded.position_ms, buffered_s = excluded.buffered_s,"
			" last_error = excluded.last_error, version = excluded.version,"
			" updated_at = excluded.updated_at"
			/* Two nodes saw the device: the later sighting stays. */
			" WHERE excluded.last_seen_at >= devices.last_seen_at");

		sql_bind_text(st, 1, d->key_id);
		sql_bind_int_or_null(st, 2, d->zone_id);
		sql_bind_text(st, 3, d->node);
		sql_bind_int(st, 4, d->connected);
		sql_bind_int(st, 5, d->last_seen_at);
		sql_bind_int_or_null(st, 6, d->offline_since);
		sql_bind_int_or_null(st, 7, d->playing);
		sql_bind_int(st, 8, d->position_ms);
		sql_bind_int(st, 9, d->buffered_s);
		sql_bind_text(st, 10, d->last_error[0] ? d->last_error : NULL);
		sql_bind_text(st, 11, d->version[0] ? d->version : NULL);
		sql_bind_int(st, 12, now_ms());
		rc = sql_run(st);
	}
	return rc;
}

int store_devices_put(store_t *s, const struct store_device *d, size_t n)
{
	struct devices_op o = {d, n};

	return n ? sql_tx(s->db, true, devices_op, &o) : 0;
}
