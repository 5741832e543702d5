/*
 * The SQLite store: ingest's writes to DATA_DIR/catalog.db.
 *
 * Identity rules, applied under one mutex and inside one transaction per
 * file so that two workers can never both add the same track:
 *   - the same bytes (content hash) are the same track, wherever the file is;
 *   - otherwise a file is the same recording as a track when they share the
 *     ISRC, or artist, album, disc, track number and title; the match is
 *     taken only if that track's own file is this one or is gone, so two
 *     different files with equal tags never take turns owning one track.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/search_index.h"
#include "store/store.h"
#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t lock;
	char run[33]; /* this process's run id, marks the pending rows it claimed */
};

/* A prepared statement with positional binds; finalised by the caller. */
static sqlite3_stmt *prep(struct sqlite_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("catalog: %s: %s", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no rows. 0 or -EIO. */
static int run(struct sqlite_store *s, sqlite3_stmt *st)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("catalog: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	return 0;
}

static int exec(struct sqlite_store *s, const char *sql)
{
	return run(s, prep(s, sql));
}

static const struct store_ops sqlite_ops;

int store_sqlite_open(const char *data_dir, store_t **out, char *err, size_t errlen)
{
	char path[4096];
	unsigned char r[16];
	struct sqlite_store *s;
	int rc;

	s = xcalloc(1, sizeof(*s));
	snprintf(path, sizeof(path), "%s/catalog.db", data_dir);
	rc = catalog_db_open(path, true, &s->db, err, errlen);
	if (rc < 0) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->lock, NULL);
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), s->run);
	s->base.ops = &sqlite_ops;
	*out = &s->base;
	return 0;
}

static void sq_close(store_t *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;

	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static bool sq_file_unchanged(store_t *base, const struct store_file *f)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	bool same = false;

	pthread_mutex_lock(&s->lock);
	st = prep(s, "SELECT 1 FROM tracks WHERE source_path = ? AND source_size = ?"
		     " AND source_mtime_ns = ?");
	if (st) {
		bind_text(st, 1, f->path);
		sqlite3_bind_int64(st, 2, (int64_t)f->size);
		sqlite3_bind_int64(st, 3, f->mtime_ns);
		same = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->lock);
	return same;
}

static bool path_gone(const char *p)
{
	return p == NULL || access(p, F_OK) != 0;
}

/* Drops path from whichever track other than keep_id claims it. */
static int release_path(struct sqlite_store *s, const char *path, int64_t keep_id)
{
	sqlite3_stmt *st = prep(s, "UPDATE tracks SET source_path = NULL"
				   " WHERE source_path = ? AND id != ?");
	if (!st)
		return -EIO;
	bind_text(st, 1, path);
	sqlite3_bind_int64(st, 2, keep_id);
	return run(s, st);
}

/* store_settle's body; the caller holds the lock and, for writes, a
 * transaction. */
static int settle_locked(struct sqlite_store *s, const struct store_file *f, const char *content_hash,
			 struct store_result *res)
{
	sqlite3_stmt *st;
	char *other = NULL;
	int64_t id = 0, size = 0, mtime = 0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	res->outcome = STORE_NEW;
	/* Prefer the row already at this path when several hold these bytes. */
	st = prep(s, "SELECT id, source_path, source_size, source_mtime_ns FROM tracks"
		     " WHERE content_hash = ?1 ORDER BY source_path IS NOT ?2 LIMIT 1");
	if (!st)
		return -EIO;
	bind_text(st, 1, content_hash);
	bind_text(st, 2, f->path);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			other = xstrdup((const char *)sqlite3_column_text(st, 1));
		size = sqlite3_column_int64(st, 2);
		mtime = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (!id)
		return 0;
	res->track_id = id;
	if (other && strcmp(other, f->path) == 0) {
		res->outcome = STORE_UNCHANGED;
		if (size != (int64_t)f->size || mtime != f->mtime_ns) {
			st = prep(s, "UPDATE tracks SET source_size = ?, source_mtime_ns = ?"
				     " WHERE id = ?");
			if (!st) {
				rc = -EIO;
				goto out;
			}
			sqlite3_bind_int64(st, 1, (int64_t)f->size);
			sqlite3_bind_int64(st, 2, f->mtime_ns);
			sqlite3_bind_int64(st, 3, id);
			rc = run(s, st);
		}
	} else if (path_gone(other)) {
		/* The file moved (or its track had lost its file): follow it. */
		res->outcome = STORE_UNCHANGED;
		rc = release_path(s, f->path, id);
		if (rc == 0) {
			st = prep(s, "UPDATE tracks SET source_path = ?, source_size = ?,"
				     " source_mtime_ns = ? WHERE id = ?");
			if (!st) {
				rc = -EIO;
				goto out;
			}
			bind_text(st, 1, f->path);
			sqlite3_bind_int64(st, 2, (int64_t)f->size);
			sqlite3_bind_int64(st, 3, f->mtime_ns);
			sqlite3_bind_int64(st, 4, id);
			rc = run(s, st);
		}
	} else {
		res->outcome = STORE_DUPLICATE;
		snprintf(res->other_path, sizeof(res->other_path), "%s", other);
	}
out:
	free(other);
	return rc;
}

static int sq_settle(store_t *base, const struct store_file *f, const char *content_hash,
		 struct store_result *res)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = exec(s, "BEGIN IMMEDIATE");
	if (rc == 0) {
		rc = settle_locked(s, f, content_hash, res);
		if (exec(s, rc == 0 ? "COMMIT" : "ROLLBACK") < 0)
			rc = -EIO;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_pending_claim(store_t *base, struct manifest *m, bool *reused)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	unsigned char r[BLOB_ID_LEN / 2];
	int rc = -EIO;

	*reused = false;
	pthread_mutex_lock(&s->lock);
	/* A crashed run's upload of the same bytes, not yet claimed by us. The
	 * chunk count is part of the match: it fixes the chunk size used. */
	st = prep(s, "UPDATE pending SET run = ? WHERE blob = (SELECT blob FROM pending"
		     " WHERE content_hash = ? AND chunk_count = ? AND run != ?1 LIMIT 1)"
		     " RETURNING blob, key");
	if (!st)
		goto out;
	bind_text(st, 1, s->run);
	bind_text(st, 2, m->content_hash);
	sqlite3_bind_int64(st, 3, m->chunk_count);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == BLOB_ID_LEN &&
	    sqlite3_column_bytes(st, 1) == SEAL_KEY_LEN) {
		memcpy(m->blob, sqlite3_column_text(st, 0), BLOB_ID_LEN + 1);
		memcpy(m->key, sqlite3_column_blob(st, 1), SEAL_KEY_LEN);
		*reused = true;
	}
	if (sqlite3_reset(st) != SQLITE_OK) {
		log_error("catalog: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		goto out;
	}
	sqlite3_finalize(st);
	if (*reused) {
		rc = 0;
		goto out;
	}
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), m->blob);
	crypto_random(m->key, sizeof(m->key));
	st = prep(s, "INSERT INTO pending (blob, key, content_hash, chunk_count, run)"
		     " VALUES (?, ?, ?, ?, ?)");
	if (!st)
		goto out;
	bind_text(st, 1, m->blob);
	sqlite3_bind_blob(st, 2, m->key, SEAL_KEY_LEN, SQLITE_TRANSIENT);
	bind_text(st, 3, m->content_hash);
	sqlite3_bind_int64(st, 4, m->chunk_count);
	bind_text(st, 5, s->run);
	rc = run(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Moves a pending blob to the garbage ledger; caller holds the lock. */
static int pending_to_garbage(struct sqlite_store *s, const char *blob)
{
	sqlite3_stmt *st;
	int rc;

	st = prep(s, "INSERT OR IGNORE INTO garbage (blob, chunk_count)"
		     " SELECT blob, chunk_count FROM pending WHERE blob = ?");
	if (!st)
		return -EIO;
	bind_text(st, 1, blob);
	rc = run(s, st);
	if (rc < 0)
		return rc;
	st = prep(s, "DELETE FROM pending WHERE blob = ?");
	if (!st)
		return -EIO;
	bind_text(st, 1, blob);
	return run(s, st);
}

static int sq_pending_abandon(store_t *base, const struct manifest *m)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = pending_to_garbage(s, m->blob);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Inserts an artist unless one with the same key exists; returns its id. */
static int64_t upsert_artist(struct sqlite_store *s, const char *name)
{
	char *key = text_name_key(name);
	int64_t id = catalog_artist_id(key);
	sqlite3_stmt *st = prep(s, "INSERT INTO artists (id, name, name_key) VALUES (?, ?, ?)"
				   " ON CONFLICT DO NOTHING");

	if (st) {
		sqlite3_bind_int64(st, 1, id);
		bind_text(st, 2, name);
		bind_text(st, 3, key);
	}
	if (run(s, st) < 0)
		id = 0;
	free(key);
	return id;
}

static int64_t upsert_album(struct sqlite_store *s, int64_t artist_id, const char *title, int year)
{
	char *key = text_name_key(title);
	int64_t id = catalog_album_id(artist_id, key);
	sqlite3_stmt *st;

	/* An album takes the first year any of its tracks is tagged with. */
	st = prep(s, "INSERT INTO albums (id, title, title_key, artist_id, year)"
		     " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET year = excluded.year"
		     " WHERE albums.year IS NULL AND excluded.year IS NOT NULL");
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		bind_text(st, 2, title);
		bind_text(st, 3, key);
		sqlite3_bind_int64(st, 4, artist_id);
		bind_int_or_null(st, 5, year);
	}
	if (run(s, st) < 0)
		id = 0;
	free(key);
	return id;
}

struct identity {
	const char *isrc;
	int64_t artist_id, album_id;
	int disc, track;
	const char *title_key;
};

/* The row of a track, as the identity rules need it. */
static bool row_same_recording(sqlite3_stmt *st, const struct identity *want)
{
	const char *isrc = (const char *)sqlite3_column_text(st, 1);
	const char *title_key = (const char *)sqlite3_column_text(st, 6);

	if (want->isrc && isrc && strcmp(want->isrc, isrc) == 0)
		return true;
	return sqlite3_column_int64(st, 2) == want->artist_id &&
	       sqlite3_column_int64(st, 3) == want->album_id &&
	       sqlite3_column_int(st, 4) == want->disc && sqlite3_column_int(st, 5) == want->track &&
	       title_key && strcmp(title_key, want->title_key) == 0;
}

/* Finds the track a changed file replaces, or 0. */
static int64_t find_recording(struct sqlite_store *s, const char *path, const struct identity *want)
{
	static const char *queries[] = {
		"SELECT id, isrc, artist_id, album_id, disc_number, track_number, title_key,"
		" source_path FROM tracks WHERE source_path = ?1",
		"SELECT id, isrc, artist_id, album_id, disc_number, track_number, title_key,"
		" source_path FROM tracks WHERE ?2 IS NOT NULL AND isrc = ?2",
		"SELECT id, isrc, artist_id, album_id, disc_number, track_number, title_key,"
		" source_path FROM tracks WHERE artist_id = ?3 AND album_id = ?4"
		" AND disc_number IS ?5 AND track_number IS ?6 AND title_key = ?7",
	};
	int64_t found = 0;

	for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]) && !found; q++) {
		sqlite3_stmt *st = prep(s, queries[q]);
		if (!st)
			return -1;
		bind_text(st, 1, path);
		bind_text(st, 2, want->isrc);
		sqlite3_bind_int64(st, 3, want->artist_id);
		sqlite3_bind_int64(st, 4, want->album_id);
		bind_int_or_null(st, 5, want->disc);
		bind_int_or_null(st, 6, want->track);
		bind_text(st, 7, want->title_key);
		while (!found && sqlite3_step(st) == SQLITE_ROW) {
			const char *sp = (const char *)sqlite3_column_text(st, 7);
			if (!row_same_recording(st, want))
				continue;
			if (sp == NULL || strcmp(sp, path) == 0 || path_gone(sp))
				found = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	return found;
}

/* After an update moved a track elsewhere, drops albums and artists that
 * nothing refers to any more. */
static int drop_orphans(struct sqlite_store *s, int64_t album_id, int64_t artist_id, int64_t album_artist_id)
{
	sqlite3_stmt *st;
	int rc;

	st = prep(s, "DELETE FROM covers WHERE album_id = ?1 AND NOT EXISTS"
		     " (SELECT 1 FROM tracks WHERE album_id = ?1)");
	if (st)
		sqlite3_bind_int64(st, 1, album_id);
	if ((rc = run(s, st)) < 0)
		return rc;
	st = prep(s, "DELETE FROM albums WHERE id = ?1 AND NOT EXISTS"
		     " (SELECT 1 FROM tracks WHERE album_id = ?1)");
	if (st)
		sqlite3_bind_int64(st, 1, album_id);
	if ((rc = run(s, st)) < 0)
		return rc;
	for (int i = 0; i < 2; i++) {
		st = prep(s, "DELETE FROM artists WHERE id = ?1"
			     " AND NOT EXISTS (SELECT 1 FROM tracks WHERE artist_id = ?1)"
			     " AND NOT EXISTS (SELECT 1 FROM albums WHERE artist_id = ?1)");
		if (st)
			sqlite3_bind_int64(st, 1, i == 0 ? artist_id : album_artist_id);
		if ((rc = run(s, st)) < 0)
			return rc;
	}
	return 0;
}

static int write_track(struct sqlite_store *s, int64_t id, bool update, const struct store_file *f,
		       const struct track_meta *meta, const struct manifest *m,
		       const struct identity *idn)
{
	static const char insert_sql[] =
		"INSERT INTO tracks (title, title_key, artist_id, album_id, track_number,"
		" disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate,"
		" sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash,"
		" source_path, source_size, source_mtime_ns, updated_at, id, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
		" ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?26)";
	static const char update_sql[] =
		"UPDATE tracks SET title = ?1, title_key = ?2, artist_id = ?3, album_id = ?4,"
		" track_number = ?5, disc_number = ?6, year = ?7, genre = ?8, isrc = ?9,"
		" label = ?10, duration_ms = ?11, codec = ?12, mime_type = ?13, bitrate = ?14,"
		" sample_rate = ?15, channels = ?16, size = ?17, chunk_size = ?18,"
		" chunk_count = ?19, key = ?20, blob = ?21, content_hash = ?22,"
		" source_path = ?23, source_size = ?24, source_mtime_ns = ?25, updated_at = ?26"
		" WHERE id = ?27";
	sqlite3_stmt *st = prep(s, update ? update_sql : insert_sql);

	if (!st)
		return -EIO;
	bind_text(st, 1, meta->title);
	bind_text(st, 2, idn->title_key);
	sqlite3_bind_int64(st, 3, idn->artist_id);
	sqlite3_bind_int64(st, 4, idn->album_id);
	bind_int_or_null(st, 5, meta->track_number);
	bind_int_or_null(st, 6, meta->disc_number);
	bind_int_or_null(st, 7, meta->year);
	bind_text(st, 8, meta->genre);
	bind_text(st, 9, meta->isrc);
	bind_text(st, 10, meta->label);
	sqlite3_bind_int64(st, 11, meta->duration_ms);
	bind_text(st, 12, meta->codec);
	bind_text(st, 13, meta->mime_type);
	bind_int_or_null(st, 14, meta->bitrate);
	bind_int_or_null(st, 15, meta->sample_rate);
	bind_int_or_null(st, 16, meta->channels);
	sqlite3_bind_int64(st, 17, (int64_t)m->size);
	sqlite3_bind_int64(st, 18, m->chunk_size);
	sqlite3_bind_int64(st, 19, m->chunk_count);
	sqlite3_bind_blob(st, 20, m->key, SEAL_KEY_LEN, SQLITE_TRANSIENT);
	bind_text(st, 21, m->blob);
	bind_text(st, 22, m->content_hash);
	bind_text(st, 23, f->path);
	sqlite3_bind_int64(st, 24, (int64_t)f->size);
	sqlite3_bind_int64(st, 25, f->mtime_ns);
	sqlite3_bind_int64(st, 26, (int64_t)time(NULL));
	sqlite3_bind_int64(st, 27, id);
	return run(s, st);
}

static int commit_locked(struct sqlite_store *s, const struct store_file *f, const struct track_meta *meta,
			 const struct manifest *m, struct store_result *res)
{
	struct identity idn = {.isrc = meta->isrc, .disc = meta->disc_number,
			       .track = meta->track_number};
	char *title_key = NULL;
	int64_t album_artist_id, id;
	sqlite3_stmt *st;
	int rc;

	rc = settle_locked(s, f, m->content_hash, res);
	if (rc < 0 || res->outcome != STORE_NEW)
		return rc < 0 ? rc : pending_to_garbage(s, m->blob);

	title_key = text_name_key(meta->title);
	idn.title_key = title_key;
	idn.artist_id = upsert_artist(s, meta->artist);
	album_artist_id = upsert_artist(s, meta->album_artist);
	idn.album_id = album_artist_id ? upsert_album(s, album_artist_id, meta->album, meta->year)
				       : 0;
	rc = -EIO;
	if (!idn.artist_id || !idn.album_id)
		goto out;
	id = find_recording(s, f->path, &idn);
	if (id < 0)
		goto out;
	if ((rc = release_path(s, f->path, id)) < 0)
		goto out;
	if (id > 0) {
		int64_t old_album = 0, old_artist = 0, old_album_artist = 0;

		st = prep(s, "SELECT t.album_id, t.artist_id, a.artist_id FROM tracks t"
			     " JOIN albums a ON a.id = t.album_id WHERE t.id = ?");
		rc = -EIO;
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			old_album = sqlite3_column_int64(st, 0);
			old_artist = sqlite3_column_int64(st, 1);
			old_album_artist = sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
		st = prep(s, "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count"
			     " FROM tracks WHERE id = ?");
		if (st)
			sqlite3_bind_int64(st, 1, id);
		rc = run(s, st);
		if (rc == 0)
			rc = write_track(s, id, true, f, meta, m, &idn);
		if (rc == 0)
			rc = drop_orphans(s, old_album, old_artist, old_album_artist);
		res->outcome = STORE_UPDATED;
	} else {
		id = catalog_random_id();
		rc = write_track(s, id, false, f, meta, m, &idn);
		res->outcome = STORE_ADDED;
	}
	res->track_id = id;
	/* Search's typo terms; its FTS5 tables follow the rows by triggers. */
	if (rc == 0 && (search_index_terms(s->db, meta->title) < 0 ||
			search_index_terms(s->db, meta->artist) < 0 ||
			search_index_terms(s->db, meta->album_artist) < 0 ||
			search_index_terms(s->db, meta->album) < 0))
		rc = -EIO;
	if (rc == 0 && meta->cover) {
		/* One picture per album: the first one ingested stays. */
		char sha[65];
		crypto_sha256_hex(meta->cover, meta->cover_len, sha);
		st = prep(s, "INSERT INTO covers (album_id, mime, sha256, data) VALUES (?, ?, ?, ?)"
			     " ON CONFLICT DO NOTHING");
		if (st) {
			sqlite3_bind_int64(st, 1, idn.album_id);
			bind_text(st, 2, meta->cover_mime);
			bind_text(st, 3, sha);
			sqlite3_bind_blob(st, 4, meta->cover, (int)meta->cover_len,
					  SQLITE_TRANSIENT);
		}
		rc = run(s, st);
	}
	if (rc == 0) {
		st = prep(s, "DELETE FROM pending WHERE blob = ?");
		if (st)
			bind_text(st, 1, m->blob);
		rc = run(s, st);
	}
out:
	free(title_key);
	return rc;
}

static int sq_commit_track(store_t *base, const struct store_file *f, const struct track_meta *meta,
		       const struct manifest *m, struct store_result *res)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = exec(s, "BEGIN IMMEDIATE");
	if (rc == 0) {
		rc = commit_locked(s, f, meta, m, res);
		if (rc < 0)
			exec(s, "ROLLBACK");
		else if (exec(s, "COMMIT") < 0)
			rc = -EIO;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_search_optimize(store_t *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = search_optimize(s->db);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_garbage_list(store_t *base, bool include_pending, char (**blobsp)[BLOB_ID_LEN + 1],
			   uint32_t **countsp, size_t *np)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	char (*blobs)[BLOB_ID_LEN + 1] = NULL;
	uint32_t *counts = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	/* Only write when there is something to sweep: even a DELETE of no
	 * rows dirties a page, and a run that changed nothing writes nothing. */
	if (include_pending && (st = prep(s, "SELECT 1 FROM pending LIMIT 1")) != NULL) {
		include_pending = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	if (include_pending) {
		rc = exec(s, "BEGIN IMMEDIATE");
		if (rc == 0)
			rc = exec(s, "INSERT OR IGNORE INTO garbage (blob, chunk_count)"
				     " SELECT blob, chunk_count FROM pending");
		if (rc == 0)
			rc = exec(s, "DELETE FROM pending");
		if (exec(s, rc == 0 ? "COMMIT" : "ROLLBACK") < 0)
			rc = -EIO;
	}
	st = rc == 0 ? prep(s, "SELECT blob, chunk_count FROM garbage") : NULL;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != BLOB_ID_LEN)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			blobs = xrealloc(blobs, cap * sizeof(*blobs));
			counts = xrealloc(counts, cap * sizeof(*counts));
		}
		memcpy(blobs[n], sqlite3_column_text(st, 0), BLOB_ID_LEN + 1);
		counts[n++] = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	*blobsp = blobs;
	*countsp = counts;
	*np = n;
	return rc;
}

static int sq_garbage_forget(store_t *base, const char *blob)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = prep(s, "DELETE FROM garbage WHERE blob = ?");
	if (st)
		bind_text(st, 1, blob);
	rc = run(s, st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static const struct store_ops sqlite_ops = {
	.file_unchanged = sq_file_unchanged,
	.settle = sq_settle,
	.pending_claim = sq_pending_claim,
	.pending_abandon = sq_pending_abandon,
	.commit_track = sq_commit_track,
	.search_optimize = sq_search_optimize,
	.garbage_list = sq_garbage_list,
	.garbage_forget = sq_garbage_forget,
	.close = sq_close,
};
