/*
 * The catalog's SQLite schema, every version of it in one place: version 1
 * is the catalog tables as sql/schema.c defines them for both dialects,
 * version 2 the search index (SQLite only: FTS5), version 3 a cluster
 * node's replication state, version 4 the principals (users, API keys and
 * the audit trail, sql/schema.c's second set), version 5 the record of
 * ingest runs (the third set), version 6 resumable uploads (the fourth),
 * version 7 catalog editing (the fifth: tracks' explicit and edited
 * columns, the deleted tracks' tombstones), version 8 the stores
 * (the sixth: locations, zones, playlists, devices).
 * Versions are PRAGMA user_version, upgraded by sql_sqlite_migrate in one
 * transaction.
 */
#include "catalog/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>

#include "catalog/search_index.h"
#include "sql/schema.h"
#include "sql/sqlite.h"

/*
 * Version 2: search (catalog/search.c reads it, catalog/search_index.c
 * fills it). Three FTS5 tables, rowid = the entity id, kept by triggers on
 * artists, albums and tracks, so whatever writes the catalog keeps them in
 * its own transaction: a track is findable the moment its commit is.
 * detail=column and columnsize=0: no positions and no column sizes, since
 * no query needs them (no phrases of several words, no NEAR, no bm25),
 * which makes the index and every prefix merge smaller. prefix='1 2 3 4 5
 * 6': a prefix of up to 6 characters is a term of its own, read as a
 * stream that stops at the LIMIT, where without it FTS5 first merges the
 * rows of every term starting with it ("love"* was 12 ms on 1M tracks,
 * 0.3 ms with the prefix index). search_terms holds the typo terms.
 */
#define FTS_OPTS                                                                                   \
	", tokenize=\"" SEARCH_TOKENIZE_OPTION "\", prefix='1 2 3 4 5 6', detail=column,"          \
	" columnsize=0);"
#define TRACK_ROW                                                                                  \
	"INSERT INTO search_tracks (rowid, title, artist, album) VALUES (new.id, new.title,"       \
	" (SELECT name FROM artists WHERE id = new.artist_id),"                                    \
	" (SELECT title FROM albums WHERE id = new.album_id));"
#define ALBUM_ROW                                                                                  \
	"INSERT INTO search_albums (rowid, title, artist) VALUES (new.id, new.title,"              \
	" (SELECT name FROM artists WHERE id = new.artist_id));"
/* A replica may get a track before its artist or album: their rows fill
 * the names in once they come. */
#define ARTIST_NAME_FILL                                                                           \
	" UPDATE search_albums SET artist = new.name WHERE rowid IN"                               \
	" (SELECT id FROM albums WHERE artist_id = new.id);"                                       \
	" UPDATE search_tracks SET artist = new.name WHERE rowid IN"                               \
	" (SELECT id FROM tracks WHERE artist_id = new.id);"
#define ALBUM_TITLE_FILL                                                                           \
	" UPDATE search_tracks SET album = new.title WHERE rowid IN"                               \
	" (SELECT id FROM tracks WHERE album_id = new.id);"

static const char schema_v2[] =
	"CREATE VIRTUAL TABLE search_artists USING fts5(name" FTS_OPTS
	"CREATE VIRTUAL TABLE search_albums USING fts5(title, artist" FTS_OPTS
	"CREATE VIRTUAL TABLE search_tracks USING fts5(title, artist, album" FTS_OPTS
	"CREATE TABLE search_terms (term TEXT PRIMARY KEY, rterm TEXT NOT NULL, len INTEGER NOT "
	"NULL)"
	" WITHOUT ROWID;"
	"CREATE INDEX search_terms_len ON search_terms(len, term);"
	"CREATE INDEX search_terms_rlen ON search_terms(len, rterm);"
	"CREATE TRIGGER search_artists_ins AFTER INSERT ON artists BEGIN"
	" INSERT INTO search_artists (rowid, name) VALUES (new.id, new.name);" ARTIST_NAME_FILL
	" END;"
	"CREATE TRIGGER search_artists_upd AFTER UPDATE OF id, name ON artists"
	" WHEN old.id IS NOT new.id OR old.name IS NOT new.name BEGIN"
	" DELETE FROM search_artists WHERE rowid = old.id;"
	" INSERT INTO search_artists (rowid, name) VALUES (new.id, new.name);" ARTIST_NAME_FILL
	" END;"
	"CREATE TRIGGER search_artists_del AFTER DELETE ON artists BEGIN"
	" DELETE FROM search_artists WHERE rowid = old.id; END;"
	"CREATE TRIGGER search_albums_ins AFTER INSERT ON albums BEGIN " ALBUM_ROW ALBUM_TITLE_FILL
	" END;"
	"CREATE TRIGGER search_albums_upd AFTER UPDATE OF id, title, artist_id ON albums"
	" WHEN old.id IS NOT new.id OR old.title IS NOT new.title"
	" OR old.artist_id IS NOT new.artist_id BEGIN"
	" DELETE FROM search_albums WHERE rowid = old.id; " ALBUM_ROW ALBUM_TITLE_FILL " END;"
	"CREATE TRIGGER search_albums_del AFTER DELETE ON albums BEGIN"
	" DELETE FROM search_albums WHERE rowid = old.id; END;"
	"CREATE TRIGGER search_tracks_ins AFTER INSERT ON tracks BEGIN " TRACK_ROW " END;"
	"CREATE TRIGGER search_tracks_upd AFTER UPDATE OF id, title, artist_id, album_id ON tracks"
	" WHEN old.id IS NOT new.id OR old.title IS NOT new.title"
	" OR old.artist_id IS NOT new.artist_id OR old.album_id IS NOT new.album_id BEGIN"
	" DELETE FROM search_tracks WHERE rowid = old.id; " TRACK_ROW " END;"
	"CREATE TRIGGER search_tracks_del AFTER DELETE ON tracks BEGIN"
	" DELETE FROM search_tracks WHERE rowid = old.id; END;";

/* Version 3: the replication state of a cluster node's read model (one
 * row, absent on a standalone node): which PostgreSQL database it follows,
 * that cluster's key, and the last change it applied. */
static const char schema_v3[] = "CREATE TABLE IF NOT EXISTS replica ("
				"  cluster_id TEXT NOT NULL,"
				"  cluster_key BLOB," /* peer requests are signed with it */
				"  last_seq INTEGER NOT NULL);";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	return sql_sqlite_exec(db, "catalog", sql, err, errlen);
}

/* One set of sql/schema.c's tables, with or without their indexes:
 * version 1 is the catalog's, version 4 the principals', version 5 the
 * ingest runs'. */
static int schema_set(sqlite3 *db, enum sql_set set, bool tables, bool indexes, char *err,
		      size_t errlen)
{
	char *sql = NULL;
	int rc = 0;

	if (tables) {
		sql = sql_schema_tables(SQL_SQLITE, set);
		rc = exec(db, sql, err, errlen);
		free(sql);
	}
	if (rc == 0 && indexes) {
		sql = sql_schema_indexes(SQL_SQLITE, set);
		rc = exec(db, sql, err, errlen);
		free(sql);
	}
	return rc;
}

/* The columns set adds to older tables, each unless the table has it: a
 * replica's bootstrap file has them from the start (catalog_db_create_base)
 * and SQLite has no ADD COLUMN IF NOT EXISTS. */
static int add_columns(sqlite3 *db, enum sql_set set, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; i < sql_catalog_ntables && rc == 0; i++) {
		const struct sql_table *t = &sql_catalog_tables[i];

		for (int c = 0; c < t->ncols && rc == 0; c++) {
			sqlite3_stmt *st = NULL;
			bool have = false;
			char *sql;

			if (sql_column_set(t, &t->cols[c], NULL) != set)
				continue;
			if (sqlite3_prepare_v2(
				    db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1,
				    &st, NULL) != SQLITE_OK) {
				snprintf(err, errlen, "catalog: %s", sqlite3_errmsg(db));
				return -EIO;
			}
			sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, t->cols[c].name, -1, SQLITE_STATIC);
			have = sqlite3_step(st) == SQLITE_ROW;
			sqlite3_finalize(st);
			if (have)
				continue;
			sql = sql_schema_add_column(SQL_SQLITE, t, c);
			rc = exec(db, sql, err, errlen);
			free(sql);
		}
	}
	return rc;
}

static int schema_v1(sqlite3 *db, bool tables, bool indexes, char *err, size_t errlen)
{
	return schema_set(db, SQL_SET_CATALOG, tables, indexes, err, errlen);
}

static int upgrade(sqlite3 *db, int from, void *arg, char *err, size_t errlen)
{
	int rc = 0;

	if (from < 1 && (rc = schema_v1(db, true, true, err, errlen)) < 0)
		return rc;
	/* Version 2: search. Catalogs made by version 1 are indexed here, in
	 * the same transaction, so they are searchable once upgraded. */
	if (from < 2 && ((rc = exec(db, schema_v2, err, errlen)) < 0 ||
			 (rc = search_schema_fill(db, err, errlen)) < 0))
		return rc;
	if (from < 3 && (rc = exec(db, schema_v3, err, errlen)) < 0)
		return rc;
	/* Version 4: the principals. IF NOT EXISTS: a replica's bootstrap
	 * file has them already (catalog_db_create_base). */
	if (from < 4 && (rc = schema_set(db, SQL_SET_PRINCIPALS, true, true, err, errlen)) < 0)
		return rc;
	/* Version 5: the ingest runs, IF NOT EXISTS for the same reason. */
	if (from < 5 && (rc = schema_set(db, SQL_SET_INGESTS, true, true, err, errlen)) < 0)
		return rc;
	/* Version 6: resumable uploads (only a node's own catalog uses them;
	 * a replica gets the empty tables, as every catalog file has them). */
	if (from < 6 && (rc = schema_set(db, SQL_SET_UPLOADS, true, true, err, errlen)) < 0)
		return rc;
	/* Version 7: catalog editing; its columns only where missing. */
	if (from < 7 && (rc = schema_set(db, SQL_SET_EDITS, true, true, err, errlen)) == 0)
		rc = add_columns(db, SQL_SET_EDITS, err, errlen);
	/* Version 8: the stores (locations, zones, playlists, devices). */
	if (rc == 0 && from < 8)
		rc = schema_set(db, SQL_SET_STORES, true, true, err, errlen);
	return rc;
}

int catalog_db_migrate(sqlite3 *db, char *err, size_t errlen)
{
	return sql_sqlite_migrate(db, "catalog", CATALOG_SCHEMA_VERSION, upgrade, NULL, err,
				  errlen);
}

static int migrate_fn(sqlite3 *db, void *arg, char *err, size_t errlen)
{
	return catalog_db_migrate(db, err, errlen);
}

int catalog_db_create_base(sqlite3 *db, char *err, size_t errlen)
{
	int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);

	/* Every set's tables: the bootstrap copies every feed table into it,
	 * the principals' and the ingest runs' too, before the upgrade from
	 * version 1. */
	if (rc == 0 && (rc = schema_v1(db, true, false, err, errlen)) == 0 &&
	    (rc = schema_set(db, SQL_SET_PRINCIPALS, true, false, err, errlen)) == 0 &&
	    (rc = schema_set(db, SQL_SET_INGESTS, true, false, err, errlen)) == 0 &&
	    (rc = schema_set(db, SQL_SET_EDITS, true, false, err, errlen)) == 0 &&
	    (rc = add_columns(db, SQL_SET_EDITS, err, errlen)) == 0 &&
	    (rc = schema_set(db, SQL_SET_STORES, true, false, err, errlen)) == 0 &&
	    (rc = exec(db, "PRAGMA user_version = 1", err, errlen)) == 0)
		return exec(db, "COMMIT", err, errlen);
	exec(db, "ROLLBACK", err, 0);
	return rc;
}

int catalog_db_index_base(sqlite3 *db, char *err, size_t errlen)
{
	return schema_v1(db, false, true, err, errlen);
}

int catalog_db_open(const char *path, bool writable, sqlite3 **out, char *err, size_t errlen)
{
	int mode = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
	/* FULL: a committed track survives power loss, not only a crash. */
	struct sql_sqlite_open o = {
		.what = "catalog",
		.flags = SQLITE_OPEN_NOMUTEX | mode,
		.busy_ms = 10000,
		.pragmas = writable ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				      " PRAGMA foreign_keys=ON;"
				    : NULL,
		.init = writable ? migrate_fn : NULL,
	};

	return sql_sqlite_open(path, &o, out, err, errlen);
}
