/*
 * A person's edits and deletions of the catalog (store.h, "catalog
 * editing"), over the same driver and in the same source of truth as
 * ingest's rules (store.c): DATA_DIR/catalog.db on one node, PostgreSQL in
 * a cluster, where the change feed carries every row changed here to
 * every node's read model.
 *
 * Each call is one write transaction: the rows, the track's edited mask
 * (the fields ingest must keep from then on, store.c's kept_edits), and
 * the audit row. Artist and album ids are derived from names
 * (decisions.md), so a rename that changes a name's key moves the
 * tracks to the artist or album the new name derives, merging with one
 * that exists, and the emptied one goes; the answer names the new id.
 * A deletion keeps what reports need in deleted_tracks and hands the
 * blob to the garbage ledger, whose sweep removes it from the origin
 * (store_collect_garbage); the caches are the caller's (api/edit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/search_index.h"
#include "crypto/seal.h"
#include "store/principals.h"
#include "store/store_int.h"
#include "util/text.h"
#include "util/xalloc.h"

void store_change_free(struct store_change *ch)
{
	free(ch->blobs);
	ch->blobs = NULL;
	ch->nblobs = 0;
}

/* The change number of this transaction's last write: the catalog lock
 * is held (sql_tx), so nobody else numbered since. 0 on SQLite. */
int store__last_seq(sql_t *db, int64_t *seq)
{
	sql_stmt_t *st;
	int rc;

	*seq = 0;
	if (sql_dialect(db) != SQL_PG)
		return 0;
	st = sql_prepare(db, "SELECT last_value FROM catalog_seq");
	rc = sql_step(st);
	if (rc == SQL_ROW)
		*seq = sql_column_int64(st, 0);
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

/* SQLite's typo terms for names written (store.c's hook), none on
 * PostgreSQL: every node's read model indexes for itself. */
static int index_names(store_t *s, sql_t *db, const char *title, const char *artist,
		       const char *album, const char *album_artist)
{
	struct track_meta m = {.title = (char *)title,
			       .artist = (char *)artist,
			       .album = (char *)album,
			       .album_artist = (char *)album_artist};

	if (!s->track_written)
		return 0;
	if (!m.title)
		m.title = (char *)"";
	if (!m.artist)
		m.artist = (char *)"";
	if (!m.album)
		m.album = (char *)"";
	if (!m.album_artist)
		m.album_artist = (char *)"";
	return s->track_written(db, &m);
}

static void id_hex(int64_t id, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)id);
}

static int audit(sql_t *db, const char *actor, const char *action, int64_t id, const char *detail)
{
	char hex[17];

	id_hex(id, hex);
	return principals_audit_in(db, actor, action, hex, detail);
}

/* ---- moving tracks between albums ---- */

/* The album's cover goes with it to new_id unless that one has one. */
static int copy_cover(sql_t *db, int64_t from, int64_t to)
{
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO covers (album_id, mime, sha256, data)"
					 " SELECT ?2, mime, sha256, data FROM covers"
					 " WHERE album_id = ?1 ON CONFLICT DO NOTHING");

	sql_bind_int(st, 1, from);
	sql_bind_int(st, 2, to);
	return sql_run(st);
}

/*
 * Gives album old the title and album artist given (year: its year, 0
 * for none): the same row when the names derive the same id (a change of
 * case or accents), else every track moves to the album the names derive
 * (made, or merged into), marked with mark in its edited mask, with the
 * cover, and the old album goes. *new_id is the album's id now.
 */
static int rehome_album(sql_t *db, int64_t old, const char *title, const char *album_artist,
			int year, unsigned mark, int64_t *new_id, uint32_t *moved)
{
	int64_t artist_id, old_artist = 0;
	sql_stmt_t *st;
	int rc;

	st = sql_prepare(db, "SELECT artist_id FROM albums WHERE id = ?1");
	sql_bind_int(st, 1, old);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		old_artist = sql_column_int64(st, 0);
	sql_finalize(st);
	if (rc < 0)
		return rc;
	if ((rc = store__upsert_artist(db, album_artist, &artist_id)) < 0 ||
	    (rc = store__upsert_album(db, artist_id, title, year, new_id)) < 0)
		return rc;
	if (*new_id == old) {
		char *key = text_name_key(title);

		st = sql_prepare(db, "UPDATE albums SET title = ?1, title_key = ?2 WHERE id = ?3"
				     " AND title <> ?1");
		sql_bind_text(st, 1, title);
		sql_bind_text(st, 2, key);
		sql_bind_int(st, 3, old);
		rc = sql_run(st);
		free(key);
		if (rc == 0 && mark) {
			st = sql_prepare(db, "UPDATE tracks SET edited = edited | ?1 WHERE"
					     " album_id = ?2");
			sql_bind_int(st, 1, mark);
			sql_bind_int(st, 2, old);
			rc = sql_run(st);
		}
		return rc;
	}
	if ((rc = copy_cover(db, old, *new_id)) < 0)
		return rc;
	st = sql_prepare(db, "UPDATE tracks SET album_id = ?1, edited = edited | ?2,"
			     " updated_at = ?3 WHERE album_id = ?4 RETURNING id");
	sql_bind_int(st, 1, *new_id);
	sql_bind_int(st, 2, mark);
	sql_bind_int(st, 3, (int64_t)time(NULL));
	sql_bind_int(st, 4, old);
	while ((rc = sql_step(st)) == SQL_ROW)
		(*moved)++;
	sql_finalize(st);
	if (rc < 0)
		return rc;
	return store__drop_orphans(db, old, 0, old_artist);
}

/* ---- tracks ---- */

struct edit_arg {
	store_t *s;
	const char *actor, *detail;
	int64_t id;
	const struct store_edit *e;
	const char *mime;
	const void *data;
	size_t len;
	struct store_change *out;
};

/* A track's names and ids, as an edit starts from them. */
struct track_now {
	char *title, *artist, *album, *album_artist;
	int64_t artist_id, album_id, album_artist_id;
	int year;
};

static void track_now_free(struct track_now *t)
{
	free(t->title);
	free(t->artist);
	free(t->album);
	free(t->album_artist);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int track_now(sql_t *db, int64_t id, struct track_now *t)
{
	sql_stmt_t *st = sql_prepare(
		db, "SELECT t.title, ar.name, al.title, aa.name, t.artist_id, t.album_id,"
		    " al.artist_id, t.year FROM tracks t JOIN artists ar ON ar.id = t.artist_id"
		    " JOIN albums al ON al.id = t.album_id JOIN artists aa ON aa.id = al.artist_id"
		    " WHERE t.id = ?1");
	int rc;

	memset(t, 0, sizeof(*t));
	sql_bind_int(st, 1, id);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		t->title = dup_or_null(sql_column_text(st, 0));
		t->artist = dup_or_null(sql_column_text(st, 1));
		t->album = dup_or_null(sql_column_text(st, 2));
		t->album_artist = dup_or_null(sql_column_text(st, 3));
		t->artist_id = sql_column_int64(st, 4);
		t->album_id = sql_column_int64(st, 5);
		t->album_artist_id = sql_column_int64(st, 6);
		t->year = (int)sql_column_int64(st, 7);
	}
	sql_finalize(st);
	if (rc < 0)
		return rc;
	return rc == SQL_ROW ? 0 : -ENOENT;
}

/* ", a = ?n, b = ?n+1 ..." for the fields of e, appended to sql (cap
 * bytes); bind_fields binds them in the same order. */
static void set_clause(char *sql, size_t cap, const struct store_edit *e, unsigned mask, int *n)
{
	static const struct {
		unsigned bit;
		const char *col;
	} cols[] = {
		{STORE_EDIT_TRACK_NUMBER, "track_number"},
		{STORE_EDIT_DISC_NUMBER, "disc_number"},
		{STORE_EDIT_YEAR, "year"},
		{STORE_EDIT_GENRE, "genre"},
		{STORE_EDIT_ISRC, "isrc"},
		{STORE_EDIT_LABEL, "label"},
		{STORE_EDIT_EXPLICIT, "explicit"},
	};
	size_t at = strlen(sql);

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]) && at < cap; i++) {
		if (!(e->set & mask & cols[i].bit))
			continue;
		at += (size_t)snprintf(sql + at, cap - at, ", %s = ?%d", cols[i].col, (*n)++);
	}
}

static void bind_fields(sql_stmt_t *st, const struct store_edit *e, unsigned mask, int *n)
{
	const unsigned set = e->set & mask;

#define BIND_INT(bit, v)                                                                           \
	if (set & (bit)) {                                                                         \
		if (e->nulls & (bit))                                                              \
			sql_bind_null(st, (*n)++);                                                 \
		else                                                                               \
			sql_bind_int(st, (*n)++, (v));                                             \
	}
#define BIND_TEXT(bit, v)                                                                          \
	if (set & (bit))                                                                           \
		sql_bind_text(st, (*n)++, (e->nulls & (bit)) ? NULL : (v));
	BIND_INT(STORE_EDIT_TRACK_NUMBER, e->track_number)
	BIND_INT(STORE_EDIT_DISC_NUMBER, e->disc_number)
	BIND_INT(STORE_EDIT_YEAR, e->year)
	BIND_TEXT(STORE_EDIT_GENRE, e->genre)
	BIND_TEXT(STORE_EDIT_ISRC, e->isrc)
	BIND_TEXT(STORE_EDIT_LABEL, e->label)
	BIND_INT(STORE_EDIT_EXPLICIT, e->explicit_flag)
#undef BIND_INT
#undef BIND_TEXT
}

/* The simple fields of e (numbers, year, genre, ISRC, label, explicit)
 * on the tracks selected by where (one parameter, ?1: an id), each track
 * marked as edited in them. */
static int update_fields(sql_t *db, const struct store_edit *e, unsigned mask, const char *where,
			 int64_t id, uint32_t *rows)
{
	char sql[512] = "UPDATE tracks SET edited = edited | ?2, updated_at = ?3";
	sql_stmt_t *st;
	int n = 4, rc;

	if (!(e->set & mask))
		return 0;
	set_clause(sql, sizeof(sql), e, mask, &n);
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE %s RETURNING id", where);
	st = sql_prepare(db, sql);
	sql_bind_int(st, 1, id);
	sql_bind_int(st, 2, e->set & mask);
	sql_bind_int(st, 3, (int64_t)time(NULL));
	n = 4;
	bind_fields(st, e, mask, &n);
	while ((rc = sql_step(st)) == SQL_ROW)
		if (rows)
			(*rows)++;
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

#define TRACK_SIMPLE                                                                               \
	(STORE_EDIT_TRACK_NUMBER | STORE_EDIT_DISC_NUMBER | STORE_EDIT_YEAR | STORE_EDIT_GENRE |   \
	 STORE_EDIT_ISRC | STORE_EDIT_LABEL | STORE_EDIT_EXPLICIT)
#define TRACK_NAMES (STORE_EDIT_ARTIST | STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST)

static int track_edit_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	const struct store_edit *e = a->e;
	struct track_now t;
	sql_stmt_t *st;
	uint32_t rows = 0;
	int rc;

	memset(a->out, 0, sizeof(*a->out));
	if ((rc = track_now(db, a->id, &t)) < 0)
		return rc;
	if (e->set & STORE_EDIT_TITLE) {
		char *key = text_name_key(e->title);

		st = sql_prepare(db, "UPDATE tracks SET title = ?1, title_key = ?2,"
				     " edited = edited | ?3, updated_at = ?4 WHERE id = ?5");
		sql_bind_text(st, 1, e->title);
		sql_bind_text(st, 2, key);
		sql_bind_int(st, 3, STORE_EDIT_TITLE);
		sql_bind_int(st, 4, (int64_t)time(NULL));
		sql_bind_int(st, 5, a->id);
		rc = sql_run(st);
		free(key);
	}
	if (rc == 0 && (e->set & TRACK_NAMES)) {
		const char *artist = e->set & STORE_EDIT_ARTIST ? e->artist : t.artist;
		const char *album = e->set & STORE_EDIT_ALBUM ? e->album : t.album;
		const char *album_artist =
			e->set & STORE_EDIT_ALBUM_ARTIST ? e->album_artist : t.album_artist;
		int year = e->set & STORE_EDIT_YEAR ? (e->nulls & STORE_EDIT_YEAR ? 0 : e->year)
						    : t.year;
		int64_t artist_id, album_artist_id, album_id;

		if ((rc = store__upsert_artist(db, artist, &artist_id)) == 0 &&
		    (rc = store__upsert_artist(db, album_artist, &album_artist_id)) == 0 &&
		    (rc = store__upsert_album(db, album_artist_id, album, year, &album_id)) == 0 &&
		    album_id != t.album_id)
			rc = copy_cover(db, t.album_id, album_id);
		if (rc == 0) {
			st = sql_prepare(db,
					 "UPDATE tracks SET artist_id = ?1, album_id = ?2,"
					 " edited = edited | ?3, updated_at = ?4 WHERE id = ?5");
			sql_bind_int(st, 1, artist_id);
			sql_bind_int(st, 2, album_id);
			sql_bind_int(st, 3, e->set & TRACK_NAMES);
			sql_bind_int(st, 4, (int64_t)time(NULL));
			sql_bind_int(st, 5, a->id);
			rc = sql_run(st);
		}
		if (rc == 0)
			rc = store__drop_orphans(db, t.album_id, t.artist_id, t.album_artist_id);
		if (rc == 0)
			rc = index_names(a->s, db, NULL, artist, album, album_artist);
	}
	if (rc == 0 && (e->set & STORE_EDIT_TITLE))
		rc = index_names(a->s, db, e->title, NULL, NULL, NULL);
	if (rc == 0)
		rc = update_fields(db, e, TRACK_SIMPLE, "id = ?1", a->id, &rows);
	if (rc == 0)
		rc = audit(db, a->actor, "track.edit", a->id, a->detail);
	if (rc == 0)
		rc = store__last_seq(db, &a->out->seq);
	a->out->id = a->id;
	a->out->tracks = 1;
	track_now_free(&t);
	return rc;
}

int store_track_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		     const char *detail, struct store_change *out)
{
	struct edit_arg a = {
		.s = s, .actor = actor, .detail = detail, .id = id, .e = e, .out = out};

	return sql_tx(s->db, true, track_edit_op, &a);
}

/* ---- albums ---- */

static int album_edit_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	const struct store_edit *e = a->e;
	sql_stmt_t *st;
	char *title = NULL, *artist = NULL;
	int64_t id = a->id;
	int year = 0, rc;

	memset(a->out, 0, sizeof(*a->out));
	st = sql_prepare(db, "SELECT al.title, aa.name, al.year FROM albums al"
			     " JOIN artists aa ON aa.id = al.artist_id WHERE al.id = ?1");
	sql_bind_int(st, 1, id);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		title = dup_or_null(sql_column_text(st, 0));
		artist = dup_or_null(sql_column_text(st, 1));
		year = (int)sql_column_int64(st, 2);
	}
	sql_finalize(st);
	if (rc != SQL_ROW) {
		rc = rc < 0 ? rc : -ENOENT;
		goto out;
	}
	rc = 0;
	if (e->set & STORE_EDIT_YEAR)
		year = e->nulls & STORE_EDIT_YEAR ? 0 : e->year;
	if (e->set & (STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST)) {
		const char *t = e->set & STORE_EDIT_ALBUM ? e->album : title;
		const char *aa = e->set & STORE_EDIT_ALBUM_ARTIST ? e->album_artist : artist;
		unsigned mark = e->set & (STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST);

		rc = rehome_album(db, a->id, t, aa, year, mark, &id, &a->out->tracks);
		if (rc == 0)
			rc = index_names(a->s, db, NULL, NULL, t, aa);
	}
	if (rc == 0 && (e->set & STORE_EDIT_YEAR)) {
		st = sql_prepare(db, "UPDATE albums SET year = ?1 WHERE id = ?2");
		sql_bind_int_or_null(st, 1, year);
		sql_bind_int(st, 2, id);
		rc = sql_run(st);
	}
	if (rc == 0)
		rc = update_fields(db, e, STORE_EDIT_GENRE | STORE_EDIT_LABEL, "album_id = ?1", id,
				   NULL);
	if (rc == 0)
		rc = audit(db, a->actor, "album.edit", a->id, a->detail);
	if (rc == 0)
		rc = store__last_seq(db, &a->out->seq);
	a->out->id = id;
out:
	free(title);
	free(artist);
	return rc;
}

int store_album_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		     const char *detail, struct store_change *out)
{
	struct edit_arg a = {
		.s = s, .actor = actor, .detail = detail, .id = id, .e = e, .out = out};

	return sql_tx(s->db, true, album_edit_op, &a);
}

/* ---- artists ---- */

static int artist_edit_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	const struct store_edit *e = a->e;
	sql_stmt_t *st;
	int64_t new_id = a->id, *albums = NULL;
	size_t nalbums = 0, cap = 0;
	char *key = NULL;
	int rc;

	memset(a->out, 0, sizeof(*a->out));
	st = sql_prepare(db, "SELECT 1 FROM artists WHERE id = ?1");
	sql_bind_int(st, 1, a->id);
	rc = sql_step(st);
	sql_finalize(st);
	if (rc != SQL_ROW)
		return rc < 0 ? rc : -ENOENT;
	rc = 0;
	if (!(e->set & STORE_EDIT_ARTIST))
		goto done;
	key = text_name_key(e->artist);
	if ((rc = store__upsert_artist(db, e->artist, &new_id)) < 0)
		goto out;
	if (new_id == a->id) {
		/* The same artist by its key: the spelling changes. */
		st = sql_prepare(db, "UPDATE artists SET name = ?1 WHERE id = ?2 AND name <> ?1");
		sql_bind_text(st, 1, e->artist);
		sql_bind_int(st, 2, a->id);
		if ((rc = sql_run(st)) < 0)
			goto out;
	} else {
		/* The tracks by the artist, then the albums by it, each moved to
		 * the album of the same title by the new name. */
		st = sql_prepare(db, "UPDATE tracks SET artist_id = ?1, edited = edited | ?2,"
				     " updated_at = ?3 WHERE artist_id = ?4 RETURNING id");
		sql_bind_int(st, 1, new_id);
		sql_bind_int(st, 2, STORE_EDIT_ARTIST);
		sql_bind_int(st, 3, (int64_t)time(NULL));
		sql_bind_int(st, 4, a->id);
		while ((rc = sql_step(st)) == SQL_ROW)
			a->out->tracks++;
		sql_finalize(st);
		if (rc < 0)
			goto out;
		st = sql_prepare(db, "SELECT id FROM albums WHERE artist_id = ?1");
		sql_bind_int(st, 1, a->id);
		while ((rc = sql_step(st)) == SQL_ROW) {
			if (nalbums == cap) {
				cap = cap ? cap * 2 : 16;
				albums = xrealloc(albums, cap * sizeof(*albums));
			}
			albums[nalbums++] = sql_column_int64(st, 0);
		}
		sql_finalize(st);
		if (rc < 0)
			goto out;
		rc = 0;
		for (size_t i = 0; i < nalbums && rc == 0; i++) {
			char *title = NULL;
			int year = 0;
			int64_t moved_to;
			uint32_t moved = 0;

			st = sql_prepare(db, "SELECT title, year FROM albums WHERE id = ?1");
			sql_bind_int(st, 1, albums[i]);
			rc = sql_step(st);
			if (rc == SQL_ROW) {
				title = dup_or_null(sql_column_text(st, 0));
				year = (int)sql_column_int64(st, 1);
			}
			sql_finalize(st);
			if (rc == SQL_ROW)
				rc = rehome_album(db, albums[i], title, e->artist, year,
						  STORE_EDIT_ALBUM_ARTIST, &moved_to, &moved);
			else if (rc == SQL_DONE)
				rc = 0;
			free(title);
		}
		if (rc == 0)
			rc = store__drop_orphans(db, 0, a->id, a->id);
	}
	if (rc == 0)
		rc = index_names(a->s, db, NULL, e->artist, NULL, NULL);
done:
	if (rc == 0)
		rc = audit(db, a->actor, "artist.edit", a->id, a->detail);
	if (rc == 0)
		rc = store__last_seq(db, &a->out->seq);
	a->out->id = new_id;
out:
	free(albums);
	free(key);
	return rc;
}

int store_artist_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		      const char *detail, struct store_change *out)
{
	struct edit_arg a = {
		.s = s, .actor = actor, .detail = detail, .id = id, .e = e, .out = out};

	return sql_tx(s->db, true, artist_edit_op, &a);
}

/* ---- deletions ---- */

/* Deletes one track: its tombstone for reports, its blob to the garbage,
 * its row; the album and artists it leaves empty go too. */
static int delete_track(sql_t *db, const char *actor, int64_t id, struct store_change *out)
{
	sql_stmt_t *st;
	int64_t artist = 0, album = 0, album_artist = 0;
	char blob[BLOB_ID_LEN + 1] = "";
	uint32_t chunks = 0;
	int rc;

	st = sql_prepare(db, "SELECT t.blob, t.chunk_count, t.artist_id, t.album_id, al.artist_id"
			     " FROM tracks t LEFT JOIN albums al ON al.id = t.album_id"
			     " WHERE t.id = ?1");
	sql_bind_int(st, 1, id);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		const char *b = sql_column_text(st, 0);

		if (b && strlen(b) == BLOB_ID_LEN)
			memcpy(blob, b, BLOB_ID_LEN + 1);
		chunks = (uint32_t)sql_column_int64(st, 1);
		artist = sql_column_int64(st, 2);
		album = sql_column_int64(st, 3);
		album_artist = sql_column_int64(st, 4);
	}
	sql_finalize(st);
	if (rc != SQL_ROW)
		return rc < 0 ? rc : -ENOENT;
	st = sql_prepare(db, "INSERT INTO deleted_tracks (id, title, artist_id, artist, album_id,"
			     " album, isrc, label, duration_ms, deleted_at, deleted_by)"
			     " SELECT t.id, t.title, t.artist_id, ar.name, t.album_id, al.title,"
			     " t.isrc, t.label, t.duration_ms, CAST(?2 AS BIGINT), CAST(?3 AS TEXT)"
			     " FROM tracks t LEFT JOIN artists ar ON ar.id = t.artist_id"
			     " LEFT JOIN albums al ON al.id = t.album_id WHERE t.id = ?1"
			     " ON CONFLICT (id) DO NOTHING");
	sql_bind_int(st, 1, id);
	sql_bind_int(st, 2, (int64_t)time(NULL));
	sql_bind_text(st, 3, actor);
	if ((rc = sql_run(st)) < 0)
		return rc;
	st = sql_prepare(db, "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count"
			     " FROM tracks WHERE id = ?1 ON CONFLICT DO NOTHING");
	sql_bind_int(st, 1, id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM tracks WHERE id = ?1");
	sql_bind_int(st, 1, id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	if (blob[0]) {
		out->blobs = xrealloc(out->blobs, (out->nblobs + 1) * sizeof(*out->blobs));
		memcpy(out->blobs[out->nblobs].blob, blob, sizeof(blob));
		out->blobs[out->nblobs++].chunks = chunks;
	}
	out->tracks++;
	return store__drop_orphans(db, album, artist, album_artist);
}

static int track_delete_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	int rc;

	store_change_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	a->out->id = a->id;
	if ((rc = delete_track(db, a->actor, a->id, a->out)) < 0 ||
	    (rc = audit(db, a->actor, "track.delete", a->id, NULL)) < 0)
		return rc;
	return store__last_seq(db, &a->out->seq);
}

int store_track_delete(store_t *s, const char *actor, int64_t id, struct store_change *out)
{
	struct edit_arg a = {.s = s, .actor = actor, .id = id, .out = out};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = sql_tx(s->db, true, track_delete_op, &a);
	if (rc < 0)
		store_change_free(out);
	return rc;
}

static int album_delete_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	sql_stmt_t *st;
	int64_t *ids = NULL, album_artist = 0;
	size_t n = 0, cap = 0;
	char detail[64];
	int rc;

	store_change_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	a->out->id = a->id;
	st = sql_prepare(db, "SELECT artist_id FROM albums WHERE id = ?1");
	sql_bind_int(st, 1, a->id);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		album_artist = sql_column_int64(st, 0);
	sql_finalize(st);
	if (rc != SQL_ROW)
		return rc < 0 ? rc : -ENOENT;
	st = sql_prepare(db, "SELECT id FROM tracks WHERE album_id = ?1");
	sql_bind_int(st, 1, a->id);
	while ((rc = sql_step(st)) == SQL_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = sql_column_int64(st, 0);
	}
	sql_finalize(st);
	rc = rc < 0 ? rc : 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = delete_track(db, a->actor, ids[i], a->out);
	free(ids);
	/* The cover, and an album that had no track (its artist too, if that
	 * leaves it empty), go by themselves. */
	if (rc == 0) {
		st = sql_prepare(db, "DELETE FROM covers WHERE album_id = ?1");
		sql_bind_int(st, 1, a->id);
		rc = sql_run(st);
	}
	if (rc == 0)
		rc = store__drop_orphans(db, a->id, 0, album_artist);
	snprintf(detail, sizeof(detail), "{\"tracks\":%u}", a->out->tracks);
	if (rc == 0)
		rc = audit(db, a->actor, "album.delete", a->id, detail);
	if (rc == 0)
		rc = store__last_seq(db, &a->out->seq);
	return rc;
}

int store_album_delete(store_t *s, const char *actor, int64_t id, struct store_change *out)
{
	struct edit_arg a = {.s = s, .actor = actor, .id = id, .out = out};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = sql_tx(s->db, true, album_delete_op, &a);
	if (rc < 0)
		store_change_free(out);
	return rc;
}

/* ---- covers ---- */

static int cover_op(sql_t *db, void *arg)
{
	struct edit_arg *a = arg;
	sql_stmt_t *st;
	char sha[65], detail[160];
	int rc;

	memset(a->out, 0, sizeof(*a->out));
	a->out->id = a->id;
	st = sql_prepare(db, "SELECT 1 FROM albums WHERE id = ?1");
	sql_bind_int(st, 1, a->id);
	rc = sql_step(st);
	sql_finalize(st);
	if (rc != SQL_ROW)
		return rc < 0 ? rc : -ENOENT;
	crypto_sha256_hex(a->data, a->len, sha);
	st = sql_prepare(db, "INSERT INTO covers (album_id, mime, sha256, data)"
			     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (album_id) DO UPDATE"
			     " SET mime = excluded.mime, sha256 = excluded.sha256,"
			     " data = excluded.data");
	sql_bind_int(st, 1, a->id);
	sql_bind_text(st, 2, a->mime);
	sql_bind_text(st, 3, sha);
	sql_bind_blob(st, 4, a->data, a->len);
	if ((rc = sql_run(st)) < 0)
		return rc;
	snprintf(detail, sizeof(detail), "{\"mime\":\"%s\",\"bytes\":%zu,\"sha256\":\"%s\"}",
		 a->mime, a->len, sha);
	if ((rc = audit(db, a->actor, "album.cover", a->id, detail)) < 0)
		return rc;
	return store__last_seq(db, &a->out->seq);
}

int store_cover_put(store_t *s, const char *actor, int64_t album_id, const char *mime,
		    const void *data, size_t len, struct store_change *out)
{
	struct edit_arg a = {.s = s,
			     .actor = actor,
			     .id = album_id,
			     .mime = mime,
			     .data = data,
			     .len = len,
			     .out = out};

	return sql_tx(s->db, true, cover_op, &a);
}
