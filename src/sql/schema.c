/*
 * The catalog tables, once (see schema.h).
 *
 * Rendering keeps SQLite's CREATE TABLE text exactly as catalog/db.c
 * wrote it before these tables had one definition (two spaces before each
 * column, the constraint words in the order PRIMARY KEY, NOT NULL, UNIQUE,
 * REFERENCES), so new and old catalogs read the same in sqlite_master;
 * PostgreSQL gets the same columns in its own types, plus the change
 * feed's seq on the feed tables. Indexes are shared where both dialects
 * want the same one; the rest are marked with the dialect that reads
 * through them (the API's pages read only SQLite).
 */
#include "sql/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

static const struct sql_column artists[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"name", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"name_key", SQL_TEXT, SQL_NOT_NULL | SQL_UNIQUE, NULL},
};

static const struct sql_column albums[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"title", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"title_key", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"artist_id", SQL_INT64, SQL_NOT_NULL, "artists(id)"},
	{"year", SQL_INT, 0, NULL},
};

static const struct sql_column covers[] = {
	{"album_id", SQL_INT64, SQL_PRIMARY_KEY, "albums(id)"},
	{"mime", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"sha256", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"data", SQL_BLOB, SQL_NOT_NULL, NULL},
};

/* A track with its manifest (size, chunking, key, blob) and the file it
 * was read from. */
static const struct sql_column tracks[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"title", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"title_key", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"artist_id", SQL_INT64, SQL_NOT_NULL, "artists(id)"},
	{"album_id", SQL_INT64, SQL_NOT_NULL, "albums(id)"},
	{"track_number", SQL_INT, 0, NULL},
	{"disc_number", SQL_INT, 0, NULL},
	{"year", SQL_INT, 0, NULL},
	{"genre", SQL_TEXT, 0, NULL},
	{"isrc", SQL_TEXT, 0, NULL},
	{"label", SQL_TEXT, 0, NULL},
	{"duration_ms", SQL_INT64, SQL_NOT_NULL, NULL},
	{"codec", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"mime_type", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"bitrate", SQL_INT, 0, NULL},
	{"sample_rate", SQL_INT, 0, NULL},
	{"channels", SQL_INT, 0, NULL},
	{"size", SQL_INT64, SQL_NOT_NULL, NULL},
	{"chunk_size", SQL_INT, SQL_NOT_NULL, NULL},
	{"chunk_count", SQL_INT, SQL_NOT_NULL, NULL},
	{"key", SQL_BLOB, SQL_NOT_NULL, NULL},
	{"blob", SQL_TEXT, SQL_NOT_NULL | SQL_UNIQUE, NULL},
	{"content_hash", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"source_path", SQL_TEXT, SQL_UNIQUE, NULL},
	{"source_size", SQL_INT64, 0, NULL},
	{"source_mtime_ns", SQL_INT64, 0, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
	/* Catalog editing (store/edit.c): explicit is 1, 0 or NULL (not
	 * said); edited is a mask of STORE_EDIT_* bits, the fields a person
	 * set, which a later ingest of the file keeps (store/store.c). */
	{"explicit", SQL_INT, 0, NULL},
	{"edited", SQL_INT, SQL_NOT_NULL, NULL},
};

/* A deleted track as reports still name it: plays keep its id, and the
 * royalty census needs its title, artist, album, ISRC, label and length
 * after the row is gone. Written in the deleting transaction; in the
 * source of truth only (reports read there), not a feed table. */
static const struct sql_column deleted_tracks[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"title", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"artist_id", SQL_INT64, 0, NULL},
	{"artist", SQL_TEXT, 0, NULL},
	{"album_id", SQL_INT64, 0, NULL},
	{"album", SQL_TEXT, 0, NULL},
	{"isrc", SQL_TEXT, 0, NULL},
	{"label", SQL_TEXT, 0, NULL},
	{"duration_ms", SQL_INT64, 0, NULL},
	{"deleted_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"deleted_by", SQL_TEXT, SQL_NOT_NULL, NULL},
};

/* Blobs being uploaded: reused by a re-run after a crash, removed at the
 * end of a run when nothing claimed them. run names the ingest run that
 * claimed the row. */
static const struct sql_column pending[] = {
	{"blob", SQL_TEXT, SQL_PRIMARY_KEY, NULL},
	{"key", SQL_BLOB, SQL_NOT_NULL, NULL},
	{"content_hash", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"chunk_count", SQL_INT, SQL_NOT_NULL, NULL},
	{"run", SQL_TEXT, SQL_NOT_NULL, NULL},
};

/* Blobs no track refers to any more, to be removed from the origin. */
static const struct sql_column garbage[] = {
	{"blob", SQL_TEXT, SQL_PRIMARY_KEY, NULL},
	{"chunk_count", SQL_INT, SQL_NOT_NULL, NULL},
};

/* People (the console, Subsonic clients): name_key is the name folded to
 * lower case, so "Ana" and "ana" are one user; password is Argon2id's
 * encoded string; generation grows at each password change, and every
 * session names the generation it was made under (auth/auth.h). A user
 * removed is deleted: the change feed's tombstone removes it everywhere. */
static const struct sql_column users[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"name", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"name_key", SQL_TEXT, SQL_NOT_NULL | SQL_UNIQUE, NULL},
	{"role", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"password", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"generation", SQL_INT64, SQL_NOT_NULL, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
};

/* API keys: id is the key's 16 hex digits, secret_hash SHA-256 of its
 * secret in hex. A key is revoked (revoked_at set), never deleted, so its
 * revocation travels the change feed like any update. */
static const struct sql_column api_keys[] = {
	{"id", SQL_TEXT, SQL_PRIMARY_KEY, NULL},
	{"name", SQL_TEXT, 0, NULL},
	{"role", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"location", SQL_TEXT, 0, NULL},
	{"zone", SQL_TEXT, 0, NULL},
	{"secret_hash", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"revoked_at", SQL_INT64, 0, NULL},
	{"created_by", SQL_TEXT, SQL_NOT_NULL, NULL},
};

/* Who did what to a principal, and when: in the source of truth only
 * (not a feed table). id counts up from 1; detail is JSON, never a
 * secret. */
static const struct sql_column audit[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL}, {"at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"actor", SQL_TEXT, SQL_NOT_NULL, NULL},  {"action", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"object", SQL_TEXT, SQL_NOT_NULL, NULL}, {"detail", SQL_TEXT, 0, NULL},
};

/* One row per `chorus ingest` run, written when it starts, again every
 * CATALOG_RUN_HEARTBEAT_MS with its counts so far (heartbeat_at), and when
 * it ends (finished_at). A run killed or crashed keeps finished_at NULL
 * and stops beating, which is how a reader tells it from one still going
 * (catalog/model.h). Times are ms since the epoch by the ingest host's
 * clock; rows are kept, one per run, as the library's history. */
static const struct sql_column ingests[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"host", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"started_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"heartbeat_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"finished_at", SQL_INT64, 0, NULL},
	{"added", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated", SQL_INT64, SQL_NOT_NULL, NULL},
	{"unchanged", SQL_INT64, SQL_NOT_NULL, NULL},
	{"failed", SQL_INT64, SQL_NOT_NULL, NULL},
};

/* A run's first CATALOG_RUN_ERRORS_MAX failures, n counting from 0 in the
 * order they happened. A row per error rather than a JSON column: each is
 * committed as it happens, so a run that crashes keeps the errors it had;
 * readers render path and message as any text, escaped, with no stored
 * JSON to trust or parse; and the change feed copies rows as they are. */
static const struct sql_column ingest_errors[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"ingest_id", SQL_INT64, SQL_NOT_NULL, "ingests(id)"},
	{"n", SQL_INT, SQL_NOT_NULL, NULL},
	{"path", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"message", SQL_TEXT, SQL_NOT_NULL, NULL},
};

/* A resumable upload (tus) in the source of truth, so any node can take
 * it on: received is the offset every node answers, moved only by a
 * commit of parts already durable in the origin. state: receiving, queued
 * (every byte in; waiting for a worker), ingesting (node claimed it,
 * beating heartbeat_at), done (track_ids: the tracks it made, space
 * separated), failed (error). Times are ms since the epoch. Not a feed
 * table: readers ask the source of truth, never a replica that lags. */
static const struct sql_column uploads[] = {
	{"id", SQL_TEXT, SQL_PRIMARY_KEY, NULL},
	{"owner", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"filename", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"metadata", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"length", SQL_INT64, SQL_NOT_NULL, NULL},
	{"received", SQL_INT64, SQL_NOT_NULL, NULL},
	{"state", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"expires_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"node", SQL_TEXT, 0, NULL},
	{"heartbeat_at", SQL_INT64, 0, NULL},
	{"track_ids", SQL_TEXT, 0, NULL},
	{"error", SQL_TEXT, 0, NULL},
};

/* An upload's bytes [pos, pos + len), sealed under its own random key as
 * one origin object. A row is written before its object (committed 0),
 * so an object whose commit never came is still found and removed. */
static const struct sql_column upload_parts[] = {
	{"object", SQL_TEXT, SQL_PRIMARY_KEY, NULL}, {"upload_id", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"pos", SQL_INT64, SQL_NOT_NULL, NULL},      {"len", SQL_INT64, SQL_NOT_NULL, NULL},
	{"seal_key", SQL_BLOB, SQL_NOT_NULL, NULL},  {"committed", SQL_INT, SQL_NOT_NULL, NULL},
};

/* In the store (store/zones.c): a location is a shop, with the IANA
 * zone its schedules are in and the licence its music plays under. */
static const struct sql_column locations[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"name", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"name_key", SQL_TEXT, SQL_NOT_NULL | SQL_UNIQUE, NULL},
	{"address", SQL_TEXT, 0, NULL},
	{"country", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"timezone", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"licence", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
};

/* A sound area of a location. schedule is the week's canonical JSON
 * (schedule_json), NULL for none; schedule_at when it was last set. No
 * REFERENCES: the replica applies tables in its own order. */
static const struct sql_column zones[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"location_id", SQL_INT64, SQL_NOT_NULL, NULL},
	{"name", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"name_key", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"volume", SQL_INT, SQL_NOT_NULL, NULL},
	/* The last "skip" an operator sent its devices (Unix ms): a column,
	 * so the command reaches the devices of every node by the feed. */
	{"skip_at", SQL_INT64, 0, NULL},
	{"schedule", SQL_TEXT, 0, NULL},
	{"schedule_at", SQL_INT64, 0, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
};

/* kind "tracks": tracks holds the ids in order, space separated (one
 * row, one write, one feed change however long the list); kind "rules":
 * rules holds their canonical JSON (catalog/rules.h). */
static const struct sql_column playlists[] = {
	{"id", SQL_INT64, SQL_PRIMARY_KEY, NULL},
	{"name", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"name_key", SQL_TEXT, SQL_NOT_NULL | SQL_UNIQUE, NULL},
	{"kind", SQL_TEXT, SQL_NOT_NULL, NULL},
	{"shuffle", SQL_INT, SQL_NOT_NULL, NULL},
	{"tracks", SQL_TEXT, 0, NULL},
	{"rules", SQL_TEXT, 0, NULL},
	{"created_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
};

/* What a store key's device last said, as the node it talks to wrote
 * it (api/devices.c, in batches): a feed table, so the console on any
 * node lists every device. Times are Unix ms. */
static const struct sql_column devices[] = {
	{"key_id", SQL_TEXT, SQL_PRIMARY_KEY, NULL},
	{"zone_id", SQL_INT64, 0, NULL},
	{"node", SQL_TEXT, 0, NULL},
	{"connected", SQL_INT, SQL_NOT_NULL, NULL},
	{"last_seen_at", SQL_INT64, SQL_NOT_NULL, NULL},
	{"offline_since", SQL_INT64, 0, NULL},
	{"playing", SQL_INT64, 0, NULL},
	{"position_ms", SQL_INT64, 0, NULL},
	{"buffered_s", SQL_INT64, 0, NULL},
	{"last_error", SQL_TEXT, 0, NULL},
	{"version", SQL_TEXT, 0, NULL},
	{"updated_at", SQL_INT64, SQL_NOT_NULL, NULL},
};

#define CAT SQL_SET_CATALOG
#define PRN SQL_SET_PRINCIPALS
#define ING SQL_SET_INGESTS
#define UPL SQL_SET_UPLOADS
#define EDT SQL_SET_EDITS
#define STO SQL_SET_STORES

const struct sql_table sql_catalog_tables[] = {
	{"artists", artists, N(artists), NULL, "id", CAT},
	{"albums", albums, N(albums), "UNIQUE (artist_id, title_key)", "id", CAT},
	{"covers", covers, N(covers), NULL, "album_id", CAT},
	{"tracks", tracks, N(tracks), NULL, "id", CAT},
	{"pending", pending, N(pending), NULL, NULL, CAT},
	{"garbage", garbage, N(garbage), NULL, NULL, CAT},
	{"users", users, N(users), NULL, "id", PRN},
	{"api_keys", api_keys, N(api_keys), NULL, "id", PRN},
	{"audit", audit, N(audit), NULL, NULL, PRN},
	{"ingests", ingests, N(ingests), NULL, "id", ING},
	{"ingest_errors", ingest_errors, N(ingest_errors), "UNIQUE (ingest_id, n)", "id", ING},
	{"uploads", uploads, N(uploads), NULL, NULL, UPL},
	{"upload_parts", upload_parts, N(upload_parts), NULL, NULL, UPL},
	{"deleted_tracks", deleted_tracks, N(deleted_tracks), NULL, NULL, EDT},
	{"locations", locations, N(locations), NULL, "id", STO},
	{"zones", zones, N(zones), "UNIQUE (location_id, name_key)", "id", STO},
	{"playlists", playlists, N(playlists), NULL, "id", STO},
	{"devices", devices, N(devices), NULL, "key_id", STO},
};
const size_t sql_catalog_ntables = N(sql_catalog_tables);

/* Columns a later set adds to an older set's table: CREATE TABLE leaves
 * them out and the set's migration adds them, so a table made fresh and
 * one upgraded are the same. */
static const struct {
	const char *table, *column;
	enum sql_set set;
	const char *def;
} added[] = {
	{"tracks", "explicit", SQL_SET_EDITS, NULL},
	{"tracks", "edited", SQL_SET_EDITS, "0"},
};

enum sql_set sql_column_set(const struct sql_table *t, const struct sql_column *col,
			    const char **def)
{
	for (int i = 0; i < N(added); i++)
		if (strcmp(added[i].table, t->name) == 0 &&
		    strcmp(added[i].column, col->name) == 0) {
			if (def)
				*def = added[i].def;
			return added[i].set;
		}
	if (def)
		*def = NULL;
	return 0;
}

#define BOTH ((1u << SQL_SQLITE) | (1u << SQL_PG))
#define ONLY(d) (1u << (d))

static const struct {
	unsigned dialects;
	enum sql_set set;
	const char *sql;
} indexes[] = {
	/* The API lists an artist's albums, and albums and tracks by title:
	 * pages without a sort. */
	{ONLY(SQL_SQLITE), CAT, "CREATE INDEX albums_artist ON albums(artist_id)"},
	{ONLY(SQL_SQLITE), CAT, "CREATE INDEX albums_title ON albums(title_key)"},
	/* An album's tracks in order (the API); PostgreSQL only finds them. */
	{ONLY(SQL_SQLITE), CAT,
	 "CREATE INDEX tracks_album ON tracks(album_id, disc_number, track_number)"},
	{ONLY(SQL_PG), CAT, "CREATE INDEX tracks_album ON tracks(album_id)"},
	{BOTH, CAT, "CREATE INDEX tracks_artist ON tracks(artist_id)"},
	{ONLY(SQL_SQLITE), CAT, "CREATE INDEX tracks_title ON tracks(title_key)"},
	/* Ingest's identity rules (store/store.c). */
	{BOTH, CAT, "CREATE INDEX tracks_hash ON tracks(content_hash)"},
	{BOTH, CAT, "CREATE INDEX tracks_isrc ON tracks(isrc) WHERE isrc IS NOT NULL"},
	{BOTH, CAT,
	 "CREATE INDEX tracks_identity ON tracks(artist_id, album_id, disc_number,"
	 " track_number, title_key)"},
	{BOTH, CAT, "CREATE INDEX pending_hash ON pending(content_hash)"},
	/* The audit trail is read by time. */
	{BOTH, PRN, "CREATE INDEX IF NOT EXISTS audit_at ON audit(at)"},
	/* The library panel reads the latest runs (an error's run is found
	 * by the UNIQUE (ingest_id, n) index), and sums the tracks' durations
	 * and sizes from this covering index rather than their wide rows. */
	{BOTH, ING, "CREATE INDEX IF NOT EXISTS ingests_started ON ingests(started_at)"},
	{ONLY(SQL_SQLITE), ING,
	 "CREATE INDEX IF NOT EXISTS tracks_library ON tracks(duration_ms, size, chunk_count)"},
	/* An upload's parts in order; the sweep finds work and stale ones. */
	{BOTH, UPL,
	 "CREATE INDEX IF NOT EXISTS upload_parts_upload ON upload_parts(upload_id, pos)"},
	{BOTH, UPL, "CREATE INDEX IF NOT EXISTS uploads_state ON uploads(state, expires_at)"},
	{BOTH, UPL, "CREATE INDEX IF NOT EXISTS uploads_created ON uploads(created_at)"},
	/* A location's zones. */
	{BOTH, STO, "CREATE INDEX IF NOT EXISTS zones_location ON zones(location_id)"},
};

static const char *type_name(enum sql_dialect d, enum sql_type t)
{
	static const char *const names[][4] = {
		[SQL_SQLITE] = {"INTEGER", "INTEGER", "TEXT", "BLOB"},
		[SQL_PG] = {"bigint", "integer", "text", "bytea"},
	};

	return names[d][t];
}

/* A memory stream, for building statements; aborts when out of memory,
 * as xalloc does. */
static FILE *stream(char **p, size_t *n)
{
	FILE *f = open_memstream(p, n);

	if (!f)
		abort();
	return f;
}

/* *p is only set by the close. */
static char *finish(FILE *f, char **p)
{
	if (fclose(f) != 0)
		abort();
	return *p;
}

char *sql_schema_tables(enum sql_dialect d, enum sql_set set)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = stream(&p, &n);

	for (size_t i = 0; i < sql_catalog_ntables; i++) {
		const struct sql_table *t = &sql_catalog_tables[i];

		if (t->set != set)
			continue;
		fprintf(f, "CREATE TABLE %s%s (", set > SQL_SET_CATALOG ? "IF NOT EXISTS " : "",
			t->name);
		for (int c = 0; c < t->ncols; c++) {
			const struct sql_column *col = &t->cols[c];

			if (sql_column_set(t, col, NULL)) /* its set's migration adds it */
				continue;
			fprintf(f, "%s  %s %s%s%s%s", c ? "," : "", col->name,
				type_name(d, col->type),
				col->flags & SQL_PRIMARY_KEY ? " PRIMARY KEY" : "",
				col->flags & SQL_NOT_NULL ? " NOT NULL" : "",
				col->flags & SQL_UNIQUE ? " UNIQUE" : "");
			if (col->references)
				fprintf(f, " REFERENCES %s", col->references);
		}
		if (d == SQL_PG && t->feed_key)
			fputs(",  seq bigint NOT NULL DEFAULT 0", f);
		if (t->constraint)
			fprintf(f, ",  %s", t->constraint);
		fputs(");", f);
	}
	return finish(f, &p);
}

char *sql_schema_indexes(enum sql_dialect d, enum sql_set set)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = stream(&p, &n);

	for (int i = 0; i < N(indexes); i++)
		if (indexes[i].dialects & ONLY(d) && indexes[i].set == set)
			fprintf(f, "%s;", indexes[i].sql);
	/* A replica asks for the rows changed after the last number it saw. */
	for (size_t i = 0; d == SQL_PG && i < sql_catalog_ntables; i++)
		if (sql_catalog_tables[i].feed_key && sql_catalog_tables[i].set == set)
			fprintf(f, "CREATE INDEX %1$s_seq ON %1$s(seq);",
				sql_catalog_tables[i].name);
	return finish(f, &p);
}

/* "ALTER TABLE t ADD COLUMN [IF NOT EXISTS] c TYPE [NOT NULL] [DEFAULT x]
 * [REFERENCES r];" */
static void add_column(FILE *f, enum sql_dialect d, const struct sql_table *t, int c)
{
	const struct sql_column *col = &t->cols[c];
	const char *def;

	sql_column_set(t, col, &def);
	fprintf(f, "ALTER TABLE %s ADD COLUMN %s%s %s%s", t->name,
		d == SQL_PG ? "IF NOT EXISTS " : "", col->name, type_name(d, col->type),
		col->flags & SQL_NOT_NULL ? " NOT NULL" : "");
	if (def)
		fprintf(f, " DEFAULT %s", def);
	if (col->references)
		fprintf(f, " REFERENCES %s", col->references);
	fputs(";", f);
}

char *sql_schema_add_columns(enum sql_dialect d, enum sql_set set)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = stream(&p, &n);

	for (size_t i = 0; i < sql_catalog_ntables; i++)
		for (int c = 0; c < sql_catalog_tables[i].ncols; c++)
			if (sql_column_set(&sql_catalog_tables[i], &sql_catalog_tables[i].cols[c],
					   NULL) == set)
				add_column(f, d, &sql_catalog_tables[i], c);
	return finish(f, &p);
}

char *sql_schema_add_column(enum sql_dialect d, const struct sql_table *t, int c)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = stream(&p, &n);

	add_column(f, d, t, c);
	return finish(f, &p);
}

char *sql_schema_columns(const struct sql_table *t)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = stream(&p, &n);

	for (int c = 0; c < t->ncols; c++)
		fprintf(f, "%s%s", c ? ", " : "", t->cols[c].name);
	return finish(f, &p);
}

const struct sql_table *sql_catalog_table(const char *name)
{
	for (size_t i = 0; i < sql_catalog_ntables; i++)
		if (strcmp(sql_catalog_tables[i].name, name) == 0)
			return &sql_catalog_tables[i];
	return NULL;
}
