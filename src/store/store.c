/*
 * The ingest store: the catalog's identity rules, written once, over the
 * statement driver (sql/sql.h) of either dialect: DATA_DIR/catalog.db on
 * one node, PostgreSQL in a cluster. Every statement is in SQL both
 * accept, so a library ingested into either gets the same catalog.
 *
 * Identity rules, applied in one write transaction per file (sql_tx:
 * SQLite's BEGIN IMMEDIATE, PostgreSQL's catalog lock), so that two
 * workers, or two runs on two hosts, can never both add the same track:
 *   - the same bytes (content hash) are the same track, wherever the file is;
 *   - otherwise a file is the same recording as a track when they share the
 *     ISRC, or artist, album, disc, track number and title; the match is
 *     taken only if that track's own file is this one or is gone, so two
 *     different files with equal tags never take turns owning one track.
 *
 * Pending uploads belong to a run (a random id per store_open). "A crashed
 * run's upload" is a pending row of another run that is not alive
 * (sql_run_alive: on PostgreSQL the run's session lock is free; on SQLite
 * every other run has ended, one ingest at a time): only those are reused
 * by another run or swept as garbage, never another live run's.
 *
 * What one dialect alone has is a hook, set by store_open: SQLite's
 * search index keeps its typo terms from C after a track is written, and
 * merges its FTS5 segments after a large ingest. PostgreSQL has no search
 * index (each node's read model builds its own).
 */
#include "store/store.h"

#include <errno.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/search_index.h"
#include "sql/sql.h"
#include "store/store_int.h"
#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

/* Statements that name the dialect's run-alive test are formatted with
 * it into a buffer of this size. */
#define ALIVE_SQL_MAX 1024

/* ---- the rules ---- */

static bool path_gone(const char *p)
{
	return p == NULL || access(p, F_OK) != 0;
}

/* Drops path from whichever track other than keep_id claims it. */
static int release_path(sql_t *db, const char *path, int64_t keep_id)
{
	sql_stmt_t *st = sql_prepare(db, "UPDATE tracks SET source_path = NULL"
					 " WHERE source_path = ?1 AND id <> ?2");

	sql_bind_text(st, 1, path);
	sql_bind_int(st, 2, keep_id);
	return sql_run(st);
}

/* store_settle's body, inside a write transaction. */
static int settle(sql_t *db, const struct store_file *f, const char *content_hash,
		  struct store_result *res)
{
	sql_stmt_t *st;
	char *other = NULL;
	int64_t id = 0, size = 0, mtime = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	res->outcome = STORE_NEW;
	/* Prefer the row already at this path when several hold these bytes. */
	st = sql_prepare(db, "SELECT id, source_path, source_size, source_mtime_ns FROM tracks"
			     " WHERE content_hash = ?1"
			     " ORDER BY source_path IS DISTINCT FROM CAST(?2 AS TEXT) LIMIT 1");
	sql_bind_text(st, 1, content_hash);
	sql_bind_text(st, 2, f->path);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		id = sql_column_int64(st, 0);
		if (sql_column_text(st, 1))
			other = xstrdup(sql_column_text(st, 1));
		size = sql_column_int64(st, 2);
		mtime = sql_column_int64(st, 3);
	}
	sql_finalize(st);
	if (rc < 0 || !id)
		return rc < 0 ? rc : 0;
	rc = 0;
	res->track_id = id;
	if (other && strcmp(other, f->path) == 0) {
		res->outcome = STORE_UNCHANGED;
		if (size != (int64_t)f->size || mtime != f->mtime_ns) {
			st = sql_prepare(db, "UPDATE tracks SET source_size = ?1,"
					     " source_mtime_ns = ?2 WHERE id = ?3");
			sql_bind_int(st, 1, (int64_t)f->size);
			sql_bind_int(st, 2, f->mtime_ns);
			sql_bind_int(st, 3, id);
			rc = sql_run(st);
		}
	} else if (path_gone(other)) {
		/* The file moved (or its track had lost its file): follow it. */
		res->outcome = STORE_UNCHANGED;
		rc = release_path(db, f->path, id);
		if (rc == 0) {
			st = sql_prepare(db, "UPDATE tracks SET source_path = ?1, source_size = ?2,"
					     " source_mtime_ns = ?3 WHERE id = ?4");
			sql_bind_text(st, 1, f->path);
			sql_bind_int(st, 2, (int64_t)f->size);
			sql_bind_int(st, 3, f->mtime_ns);
			sql_bind_int(st, 4, id);
			rc = sql_run(st);
		}
	} else {
		res->outcome = STORE_DUPLICATE;
		snprintf(res->other_path, sizeof(res->other_path), "%s", other);
	}
	free(other);
	return rc;
}

/* Moves a pending blob to the garbage ledger. */
static int pending_to_garbage(sql_t *db, const char *blob)
{
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO garbage (blob, chunk_count)"
					 " SELECT blob, chunk_count FROM pending WHERE blob = ?1"
					 " ON CONFLICT DO NOTHING");
	int rc;

	sql_bind_text(st, 1, blob);
	if ((rc = sql_run(st)) < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM pending WHERE blob = ?1");
	sql_bind_text(st, 1, blob);
	return sql_run(st);
}

int store__upsert_artist(sql_t *db, const char *name, int64_t *id)
{
	char *key = text_name_key(name);
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO artists (id, name, name_key)"
					 " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
	int rc;

	*id = catalog_artist_id(key);
	sql_bind_int(st, 1, *id);
	sql_bind_text(st, 2, name);
	sql_bind_text(st, 3, key);
	rc = sql_run(st);
	free(key);
	return rc;
}

int store__upsert_album(sql_t *db, int64_t artist_id, const char *title, int year, int64_t *id)
{
	char *key = text_name_key(title);
	sql_stmt_t *st;
	int rc;

	*id = catalog_album_id(artist_id, key);
	/* An album takes the first year any of its tracks is tagged with. */
	st = sql_prepare(db, "INSERT INTO albums (id, title, title_key, artist_id, year)"
			     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE"
			     " SET year = excluded.year"
			     " WHERE albums.year IS NULL AND excluded.year IS NOT NULL");
	sql_bind_int(st, 1, *id);
	sql_bind_text(st, 2, title);
	sql_bind_text(st, 3, key);
	sql_bind_int(st, 4, artist_id);
	sql_bind_int_or_null(st, 5, year);
	rc = sql_run(st);
	free(key);
	return rc;
}

struct identity {
	const char *isrc;
	int64_t artist_id, album_id;
	int disc, track;
	const char *title_key;
};

/* Row columns: id, isrc, artist_id, album_id, disc, track, title_key,
 * path, edited. A field a person edited is not the file's any more, so
 * it is left out of the comparison: the recording is judged by the
 * fields nobody edited (all of them edited: the path alone decides). */
static bool row_same_recording(sql_stmt_t *st, const struct identity *want)
{
	const char *isrc = sql_column_text(st, 1);
	const char *title_key = sql_column_text(st, 6);
	unsigned edited = (unsigned)sql_column_int64(st, 8);

	if (want->isrc && isrc && !(edited & STORE_EDIT_ISRC) && strcmp(want->isrc, isrc) == 0)
		return true;
	return ((edited & STORE_EDIT_ARTIST) || sql_column_int64(st, 2) == want->artist_id) &&
	       ((edited & (STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST)) ||
		sql_column_int64(st, 3) == want->album_id) &&
	       ((edited & STORE_EDIT_DISC_NUMBER) || sql_column_int64(st, 4) == want->disc) &&
	       ((edited & STORE_EDIT_TRACK_NUMBER) || sql_column_int64(st, 5) == want->track) &&
	       ((edited & STORE_EDIT_TITLE) ||
		(title_key && strcmp(title_key, want->title_key) == 0));
}

/* The track a changed file replaces: *found is its id, or 0. Three
 * questions, in this order: the track at this path, the track with this
 * ISRC, the track with these tags. */
static int find_recording(sql_t *db, const char *path, const struct identity *want, int64_t *found)
{
#define COLS                                                                                       \
	"SELECT id, isrc, artist_id, album_id, disc_number, track_number, title_key,"              \
	" source_path, edited FROM tracks WHERE "
	static const char *const queries[] = {
		COLS "source_path = ?1",
		COLS "isrc = ?1",
		COLS "artist_id = ?1 AND album_id = ?2"
		     " AND disc_number IS NOT DISTINCT FROM CAST(?3 AS INTEGER)"
		     " AND track_number IS NOT DISTINCT FROM CAST(?4 AS INTEGER)"
		     " AND title_key = ?5",
	};
#undef COLS
	int rc = 0;

	*found = 0;
	for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]) && !*found; q++) {
		sql_stmt_t *st;

		if (q == 1 && !want->isrc)
			continue;
		st = sql_prepare(db, queries[q]);
		if (q == 0) {
			sql_bind_text(st, 1, path);
		} else if (q == 1) {
			sql_bind_text(st, 1, want->isrc);
		} else {
			sql_bind_int(st, 1, want->artist_id);
			sql_bind_int(st, 2, want->album_id);
			sql_bind_int_or_null(st, 3, want->disc);
			sql_bind_int_or_null(st, 4, want->track);
			sql_bind_text(st, 5, want->title_key);
		}
		while (!*found && (rc = sql_step(st)) == SQL_ROW) {
			const char *sp = sql_column_text(st, 7);
			if (!row_same_recording(st, want))
				continue;
			if (sp == NULL || strcmp(sp, path) == 0 || path_gone(sp))
				*found = sql_column_int64(st, 0);
		}
		sql_finalize(st);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* After an update moved a track elsewhere, drops the album and artists
 * nothing refers to any more. */
int store__drop_orphans(sql_t *db, int64_t album_id, int64_t artist_id, int64_t album_artist_id)
{
	sql_stmt_t *st;
	int rc;

	st = sql_prepare(db, "DELETE FROM covers WHERE album_id = ?1 AND NOT EXISTS"
			     " (SELECT 1 FROM tracks WHERE album_id = ?1)");
	sql_bind_int(st, 1, album_id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM albums WHERE id = ?1 AND NOT EXISTS"
			     " (SELECT 1 FROM tracks WHERE album_id = ?1)");
	sql_bind_int(st, 1, album_id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	for (int i = 0; i < 2 && rc == 0; i++) {
		st = sql_prepare(db, "DELETE FROM artists WHERE id = ?1"
				     " AND NOT EXISTS (SELECT 1 FROM tracks WHERE artist_id = ?1)"
				     " AND NOT EXISTS (SELECT 1 FROM albums WHERE artist_id = ?1)");
		sql_bind_int(st, 1, i == 0 ? artist_id : album_artist_id);
		rc = sql_run(st);
	}
	return rc;
}

static int write_track(sql_t *db, int64_t id, bool update, const struct store_file *f,
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
	sql_stmt_t *st = sql_prepare(db, update ? update_sql : insert_sql);

	sql_bind_text(st, 1, meta->title);
	sql_bind_text(st, 2, idn->title_key);
	sql_bind_int(st, 3, idn->artist_id);
	sql_bind_int(st, 4, idn->album_id);
	sql_bind_int_or_null(st, 5, meta->track_number);
	sql_bind_int_or_null(st, 6, meta->disc_number);
	sql_bind_int_or_null(st, 7, meta->year);
	sql_bind_text(st, 8, meta->genre);
	sql_bind_text(st, 9, meta->isrc);
	sql_bind_text(st, 10, meta->label);
	sql_bind_int(st, 11, meta->duration_ms);
	sql_bind_text(st, 12, meta->codec);
	sql_bind_text(st, 13, meta->mime_type);
	sql_bind_int_or_null(st, 14, meta->bitrate);
	sql_bind_int_or_null(st, 15, meta->sample_rate);
	sql_bind_int_or_null(st, 16, meta->channels);
	sql_bind_int(st, 17, (int64_t)m->size);
	sql_bind_int(st, 18, m->chunk_size);
	sql_bind_int(st, 19, m->chunk_count);
	sql_bind_blob(st, 20, m->key, SEAL_KEY_LEN);
	sql_bind_text(st, 21, m->blob);
	sql_bind_text(st, 22, m->content_hash);
	sql_bind_text(st, 23, f->path);
	sql_bind_int(st, 24, (int64_t)f->size);
	sql_bind_int(st, 25, f->mtime_ns);
	sql_bind_int(st, 26, (int64_t)time(NULL));
	sql_bind_int(st, 27, id);
	return sql_run(st);
}

/* Track id takes the new file in place: its old blob becomes garbage, and
 * the album and artists it leaves go if nothing else holds them. */
static int update_track(sql_t *db, int64_t id, const struct store_file *f,
			const struct track_meta *meta, const struct manifest *m,
			const struct identity *idn)
{
	int64_t old_album = 0, old_artist = 0, old_album_artist = 0;
	sql_stmt_t *st;
	int rc;

	st = sql_prepare(db, "SELECT t.album_id, t.artist_id, a.artist_id FROM tracks t"
			     " JOIN albums a ON a.id = t.album_id WHERE t.id = ?1");
	sql_bind_int(st, 1, id);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		old_album = sql_column_int64(st, 0);
		old_artist = sql_column_int64(st, 1);
		old_album_artist = sql_column_int64(st, 2);
	}
	sql_finalize(st);
	if (rc < 0)
		return rc;
	st = sql_prepare(db, "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count"
			     " FROM tracks WHERE id = ?1 ON CONFLICT DO NOTHING");
	sql_bind_int(st, 1, id);
	rc = sql_run(st);
	if (rc == 0)
		rc = write_track(db, id, true, f, meta, m, idn);
	if (rc == 0)
		rc = store__drop_orphans(db, old_album, old_artist, old_album_artist);
	return rc;
}

struct file_arg {
	store_t *s;
	const struct store_file *f;
	const char *content_hash;
	const struct track_meta *meta;
	const struct manifest *m;
	struct store_result *res;
	bool same;
};

/* A track's edited fields (store.h's edit mask), kept in place of the
 * file's tags: eff is the file's meta with those fields replaced, by
 * strings held in text until kept_free. */
struct kept {
	struct track_meta eff;
	unsigned edited;
	char *text[7];
};

static void kept_free(struct kept *k)
{
	for (size_t i = 0; i < sizeof(k->text) / sizeof(k->text[0]); i++)
		free(k->text[i]);
}

static int kept_edits(sql_t *db, int64_t id, const struct track_meta *meta, struct kept *k)
{
	/* Column of each text field, and the field it replaces. */
	static const struct {
		unsigned bit;
		int col;
		size_t off;
	} texts[] = {
		{STORE_EDIT_TITLE, 1, offsetof(struct track_meta, title)},
		{STORE_EDIT_ARTIST, 2, offsetof(struct track_meta, artist)},
		{STORE_EDIT_ALBUM, 3, offsetof(struct track_meta, album)},
		{STORE_EDIT_ALBUM_ARTIST, 4, offsetof(struct track_meta, album_artist)},
		{STORE_EDIT_GENRE, 8, offsetof(struct track_meta, genre)},
		{STORE_EDIT_ISRC, 9, offsetof(struct track_meta, isrc)},
		{STORE_EDIT_LABEL, 10, offsetof(struct track_meta, label)},
	};
	sql_stmt_t *st = sql_prepare(
		db, "SELECT t.edited, t.title, ar.name, al.title, aa.name, t.track_number,"
		    " t.disc_number, t.year, t.genre, t.isrc, t.label FROM tracks t"
		    " JOIN artists ar ON ar.id = t.artist_id JOIN albums al ON al.id = t.album_id"
		    " JOIN artists aa ON aa.id = al.artist_id WHERE t.id = ?1");
	int rc;

	memset(k, 0, sizeof(*k));
	k->eff = *meta;
	sql_bind_int(st, 1, id);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		k->edited = (unsigned)sql_column_int64(st, 0) & STORE_EDIT_ALL;
	for (size_t i = 0; rc == SQL_ROW && i < sizeof(texts) / sizeof(texts[0]); i++) {
		const char *v = sql_column_text(st, texts[i].col);

		if (!(k->edited & texts[i].bit))
			continue;
		k->text[i] = v ? xstrdup(v) : NULL;
		*(char **)((char *)&k->eff + texts[i].off) = k->text[i];
	}
	if (rc == SQL_ROW && (k->edited & STORE_EDIT_TRACK_NUMBER))
		k->eff.track_number = (int)sql_column_int64(st, 5);
	if (rc == SQL_ROW && (k->edited & STORE_EDIT_DISC_NUMBER))
		k->eff.disc_number = (int)sql_column_int64(st, 6);
	if (rc == SQL_ROW && (k->edited & STORE_EDIT_YEAR))
		k->eff.year = (int)sql_column_int64(st, 7);
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

/* store_commit_track's body. */
static int commit_op(sql_t *db, void *arg)
{
	struct file_arg *a = arg;
	const struct track_meta *meta = a->meta;
	const struct manifest *m = a->m;
	struct identity idn = {
		.isrc = meta->isrc, .disc = meta->disc_number, .track = meta->track_number};
	struct kept k = {0};
	char *title_key = NULL;
	int64_t album_artist_id, id;
	sql_stmt_t *st;
	int rc;

	rc = settle(db, a->f, m->content_hash, a->res);
	if (rc < 0 || a->res->outcome != STORE_NEW)
		return rc < 0 ? rc : pending_to_garbage(db, m->blob);

	title_key = text_name_key(meta->title);
	idn.title_key = title_key;
	if ((rc = store__upsert_artist(db, meta->artist, &idn.artist_id)) < 0 ||
	    (rc = store__upsert_artist(db, meta->album_artist, &album_artist_id)) < 0 ||
	    (rc = store__upsert_album(db, album_artist_id, meta->album, meta->year,
				      &idn.album_id)) < 0 ||
	    (rc = find_recording(db, a->f->path, &idn, &id)) < 0 ||
	    (rc = release_path(db, a->f->path, id)) < 0)
		goto out;
	if (id > 0) {
		/* What a person edited stays; the other fields follow the file. The
		 * artist and album the file's tags named are dropped again if the
		 * edits leave them empty. */
		int64_t file_artist = idn.artist_id, file_album = idn.album_id,
			file_album_artist = album_artist_id;

		if ((rc = kept_edits(db, id, meta, &k)) < 0)
			goto out;
		if (k.edited) {
			meta = &k.eff;
			free(title_key);
			title_key = text_name_key(meta->title);
			idn = (struct identity){.isrc = meta->isrc,
						.disc = meta->disc_number,
						.track = meta->track_number,
						.title_key = title_key};
			if ((rc = store__upsert_artist(db, meta->artist, &idn.artist_id)) < 0 ||
			    (rc = store__upsert_artist(db, meta->album_artist, &album_artist_id)) <
				    0 ||
			    (rc = store__upsert_album(db, album_artist_id, meta->album, meta->year,
						      &idn.album_id)) < 0)
				goto out;
		}
		rc = update_track(db, id, a->f, meta, m, &idn);
		if (rc == 0 && k.edited)
			rc = store__drop_orphans(db, file_album, file_artist, file_album_artist);
		a->res->outcome = STORE_UPDATED;
	} else {
		id = catalog_random_id();
		rc = write_track(db, id, false, a->f, meta, m, &idn);
		a->res->outcome = STORE_ADDED;
	}
	a->res->track_id = id;
	if (rc == 0 && a->s->track_written)
		rc = a->s->track_written(db, meta);
	if (rc == 0 && meta->cover) {
		/* One picture per album: the first one ingested stays. */
		char sha[65];
		crypto_sha256_hex(meta->cover, meta->cover_len, sha);
		st = sql_prepare(db, "INSERT INTO covers (album_id, mime, sha256, data)"
				     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
		sql_bind_int(st, 1, idn.album_id);
		sql_bind_text(st, 2, meta->cover_mime);
		sql_bind_text(st, 3, sha);
		sql_bind_blob(st, 4, meta->cover, meta->cover_len);
		rc = sql_run(st);
	}
	if (rc == 0) {
		st = sql_prepare(db, "DELETE FROM pending WHERE blob = ?1");
		sql_bind_text(st, 1, m->blob);
		rc = sql_run(st);
	}
out:
	kept_free(&k);
	free(title_key);
	return rc;
}

/* ---- the public calls: each one transaction ---- */

static int unchanged_op(sql_t *db, void *arg)
{
	struct file_arg *a = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT 1 FROM tracks WHERE source_path = ?1"
					 " AND source_size = ?2 AND source_mtime_ns = ?3");
	int rc;

	sql_bind_text(st, 1, a->f->path);
	sql_bind_int(st, 2, (int64_t)a->f->size);
	sql_bind_int(st, 3, a->f->mtime_ns);
	rc = sql_step(st);
	a->same = rc == SQL_ROW;
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

bool store_file_unchanged(store_t *s, const struct store_file *f)
{
	struct file_arg a = {.s = s, .f = f};

	sql_tx(s->db, false, unchanged_op, &a);
	return a.same;
}

static int settle_op(sql_t *db, void *arg)
{
	struct file_arg *a = arg;

	return settle(db, a->f, a->content_hash, a->res);
}

int store_settle(store_t *s, const struct store_file *f, const char *content_hash,
		 struct store_result *res)
{
	struct file_arg a = {.s = s, .f = f, .content_hash = content_hash, .res = res};

	return sql_tx(s->db, true, settle_op, &a);
}

struct claim_arg {
	store_t *s;
	struct manifest *m;
	bool reused;
};

static int claim_op(sql_t *db, void *arg)
{
	struct claim_arg *a = arg;
	struct manifest *m = a->m;
	unsigned char r[BLOB_ID_LEN / 2];
	char sql[ALIVE_SQL_MAX];
	sql_stmt_t *st;
	int rc;

	a->reused = false;
	/* A crashed run's upload of the same bytes. The chunk count is part
	 * of the match: it fixes the chunk size used. */
	snprintf(sql, sizeof(sql),
		 "UPDATE pending SET run = ?1 WHERE blob = (SELECT blob FROM pending"
		 " WHERE content_hash = ?2 AND chunk_count = ?3 AND run <> ?1 AND NOT %s LIMIT 1)"
		 " RETURNING blob, key",
		 sql_run_alive(db));
	st = sql_prepare(db, sql);
	sql_bind_text(st, 1, a->s->run);
	sql_bind_text(st, 2, m->content_hash);
	sql_bind_int(st, 3, m->chunk_count);
	while ((rc = sql_step(st)) == SQL_ROW) {
		const char *blob = sql_column_text(st, 0);
		size_t klen;
		const void *key = sql_column_blob(st, 1, &klen);

		if (!a->reused && blob && strlen(blob) == BLOB_ID_LEN && key &&
		    klen == SEAL_KEY_LEN) {
			memcpy(m->blob, blob, BLOB_ID_LEN + 1);
			memcpy(m->key, key, SEAL_KEY_LEN);
			a->reused = true;
		}
	}
	sql_finalize(st);
	if (rc < 0 || a->reused)
		return rc < 0 ? rc : 0;
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), m->blob);
	crypto_random(m->key, sizeof(m->key));
	st = sql_prepare(db, "INSERT INTO pending (blob, key, content_hash, chunk_count, run)"
			     " VALUES (?1, ?2, ?3, ?4, ?5)");
	sql_bind_text(st, 1, m->blob);
	sql_bind_blob(st, 2, m->key, SEAL_KEY_LEN);
	sql_bind_text(st, 3, m->content_hash);
	sql_bind_int(st, 4, m->chunk_count);
	sql_bind_text(st, 5, a->s->run);
	return sql_run(st);
}

int store_pending_claim(store_t *s, struct manifest *m, bool *reused)
{
	struct claim_arg a = {.s = s, .m = m};
	int rc = sql_tx(s->db, true, claim_op, &a);

	*reused = rc == 0 && a.reused;
	return rc;
}

static int abandon_op(sql_t *db, void *arg)
{
	return pending_to_garbage(db, arg);
}

int store_pending_abandon(store_t *s, const struct manifest *m)
{
	return sql_tx(s->db, true, abandon_op, (void *)m->blob);
}

int store_commit_track(store_t *s, const struct store_file *f, const struct track_meta *meta,
		       const struct manifest *m, struct store_result *res)
{
	struct file_arg a = {.s = s, .f = f, .meta = meta, .m = m, .res = res};

	return sql_tx(s->db, true, commit_op, &a);
}

/* ---- the record of runs ---- */

static int run_op(sql_t *db, void *arg)
{
	const struct store_run *run = arg;
	sql_stmt_t *st = sql_prepare(
		db, "INSERT INTO ingests (id, host, started_at, heartbeat_at, finished_at, added,"
		    " updated, unchanged, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		    " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,"
		    " finished_at = excluded.finished_at, added = excluded.added,"
		    " updated = excluded.updated, unchanged = excluded.unchanged,"
		    " failed = excluded.failed");

	sql_bind_int(st, 1, run->id);
	sql_bind_text(st, 2, run->host);
	sql_bind_int(st, 3, run->started_at);
	sql_bind_int(st, 4, run->heartbeat_at);
	sql_bind_int_or_null(st, 5, run->finished_at);
	sql_bind_int(st, 6, (int64_t)run->added);
	sql_bind_int(st, 7, (int64_t)run->updated);
	sql_bind_int(st, 8, (int64_t)run->unchanged);
	sql_bind_int(st, 9, (int64_t)run->failed);
	return sql_run(st);
}

int store_run_record(store_t *s, const struct store_run *run)
{
	return sql_tx(s->db, true, run_op, (void *)run);
}

struct run_error_arg {
	int64_t run_id;
	int n;
	const char *path, *message;
};

static int run_error_op(sql_t *db, void *arg)
{
	const struct run_error_arg *a = arg;
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO ingest_errors (id, ingest_id, n, path,"
					 " message) VALUES (?1, ?2, ?3, ?4, ?5)"
					 " ON CONFLICT DO NOTHING");

	/* Drawn here: a retried transaction draws again (sql_tx). */
	sql_bind_int(st, 1, catalog_random_id());
	sql_bind_int(st, 2, a->run_id);
	sql_bind_int(st, 3, a->n);
	sql_bind_text(st, 4, a->path);
	sql_bind_text(st, 5, a->message);
	return sql_run(st);
}

int store_run_error(store_t *s, int64_t run_id, int n, const char *path, const char *message)
{
	/* For people to read: a file name that is not UTF-8, which
	 * PostgreSQL's text refuses, is kept read as Latin-1. */
	char *p = text_is_utf8(path, strlen(path)) ? NULL : text_clean(path, strlen(path));
	char *m = text_is_utf8(message, strlen(message)) ? NULL
							 : text_clean(message, strlen(message));
	struct run_error_arg a = {run_id, n, p ? p : path, m ? m : message};
	int rc = sql_tx(s->db, true, run_error_op, &a);

	free(p);
	free(m);
	return rc;
}

int store_search_optimize(store_t *s)
{
	return s->optimize ? sql_tx(s->db, false, s->optimize, NULL) : 0;
}

/* ---- the garbage ledger ---- */

struct garbage_arg {
	store_t *s;
	bool any;
	char (*blobs)[BLOB_ID_LEN + 1];
	uint32_t *counts;
	size_t n;
};

/* The pending rows a sweep takes: this run's unclaimed uploads, and those
 * of runs that are not alive; never the uploads of another run still
 * going. */
#define SWEPT "(run = ?1 OR NOT %s)"

static int sweep_any_op(sql_t *db, void *arg)
{
	struct garbage_arg *a = arg;
	char sql[ALIVE_SQL_MAX];
	sql_stmt_t *st;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM pending WHERE " SWEPT " LIMIT 1",
		 sql_run_alive(db));
	st = sql_prepare(db, sql);
	sql_bind_text(st, 1, a->s->run);
	rc = sql_step(st);
	a->any = rc == SQL_ROW;
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

/* Two statements (SQLite has no DML in a WITH): the rows are deleted only
 * once in the garbage, so a run that ends between the two keeps its rows
 * for the next sweep instead of losing them. */
static int sweep_op(sql_t *db, void *arg)
{
	struct garbage_arg *a = arg;
	char sql[ALIVE_SQL_MAX];
	sql_stmt_t *st;
	int rc;

	snprintf(sql, sizeof(sql),
		 "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count FROM pending"
		 " WHERE " SWEPT " ON CONFLICT DO NOTHING",
		 sql_run_alive(db));
	st = sql_prepare(db, sql);
	sql_bind_text(st, 1, a->s->run);
	if ((rc = sql_run(st)) < 0)
		return rc;
	snprintf(sql, sizeof(sql),
		 "DELETE FROM pending WHERE " SWEPT " AND blob IN (SELECT blob FROM garbage)",
		 sql_run_alive(db));
	st = sql_prepare(db, sql);
	sql_bind_text(st, 1, a->s->run);
	return sql_run(st);
}

static int list_op(sql_t *db, void *arg)
{
	struct garbage_arg *a = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT blob, chunk_count FROM garbage");
	size_t cap = 0;
	int rc;

	free(a->blobs);
	free(a->counts);
	a->blobs = NULL;
	a->counts = NULL;
	a->n = 0;
	while ((rc = sql_step(st)) == SQL_ROW) {
		const char *blob = sql_column_text(st, 0);

		if (!blob || strlen(blob) != BLOB_ID_LEN)
			continue;
		if (a->n == cap) {
			cap = cap ? cap * 2 : 16;
			a->blobs = xrealloc(a->blobs, cap * sizeof(*a->blobs));
			a->counts = xrealloc(a->counts, cap * sizeof(*a->counts));
		}
		memcpy(a->blobs[a->n], blob, BLOB_ID_LEN + 1);
		a->counts[a->n++] = (uint32_t)sql_column_int64(st, 1);
	}
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

static int forget_op(sql_t *db, void *arg)
{
	sql_stmt_t *st = sql_prepare(db, "DELETE FROM garbage WHERE blob = ?1");

	sql_bind_text(st, 1, arg);
	return sql_run(st);
}

/* The origin part is the same whatever holds the ledger. */
int store_collect_garbage(store_t *s, origin_t *o, bool include_pending)
{
	struct garbage_arg a = {.s = s};
	int rc = 0;

	/* Only write when there is something to sweep: even a DELETE of no
	 * rows dirties a page, and a run that changed nothing writes nothing. */
	if (include_pending)
		rc = sql_tx(s->db, false, sweep_any_op, &a);
	if (rc == 0 && a.any)
		rc = sql_tx(s->db, true, sweep_op, &a);
	if (rc == 0)
		rc = sql_tx(s->db, false, list_op, &a);
	if (rc < 0)
		a.n = 0;
	/* The origin is slow; the ledger is not locked meanwhile. A blob is
	 * forgotten only once all its chunks are gone. */
	for (size_t i = 0; i < a.n; i++) {
		int err = 0;
		for (uint32_t c = 0; c < a.counts[i] && !err; c++) {
			char key[ORIGIN_KEY_MAX];
			origin_chunk_key(a.blobs[i], c, key);
			err = origin_remove(o, key);
		}
		if (err) {
			log_warn("ingest: cannot remove blob %s from %s: %s", a.blobs[i], o->desc,
				 strerror(-err));
			rc = err;
			continue;
		}
		if (sql_tx(s->db, true, forget_op, a.blobs[i]) < 0)
			rc = -EIO;
	}
	free(a.blobs);
	free(a.counts);
	return rc;
}

/* ---- opening: the dialect, and its own steps ---- */

/* SQLite's search index: its FTS5 tables follow the rows by triggers, its
 * typo terms are written from C (catalog/search_index.h). */
static int index_terms(sql_t *db, const struct track_meta *meta)
{
	sqlite3 *h = sql_sqlite_handle(db);

	if (search_index_terms(h, meta->title) < 0 || search_index_terms(h, meta->artist) < 0 ||
	    search_index_terms(h, meta->album_artist) < 0 || search_index_terms(h, meta->album) < 0)
		return -EIO;
	return 0;
}

static int optimize_search(sql_t *db, void *arg)
{
	return search_optimize(sql_sqlite_handle(db));
}

int store__source_open(const char *data_dir, const char *conninfo, const char *run, sql_t **out,
		       char *err, size_t errlen)
{
	char path[4096];
	sqlite3 *h;
	int rc;

	if (conninfo && *conninfo)
		return sql_pg_open(conninfo, run, out, err, errlen);
	snprintf(path, sizeof(path), "%s/catalog.db", data_dir);
	rc = catalog_db_open(path, true, &h, err, errlen);
	if (rc == 0)
		*out = sql_sqlite_adopt(h);
	return rc;
}

int store_open(const char *data_dir, const char *conninfo, store_t **out, char *err, size_t errlen)
{
	store_t *s = xcalloc(1, sizeof(*s));
	unsigned char r[16];
	int rc;

	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), s->run);
	rc = store__source_open(data_dir, conninfo, s->run, &s->db, err, errlen);
	if (rc == 0 && sql_dialect(s->db) == SQL_SQLITE) {
		s->track_written = index_terms;
		s->optimize = optimize_search;
	}
	if (rc < 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(store_t *s)
{
	if (!s)
		return;
	sql_close(s->db);
	free(s);
}
