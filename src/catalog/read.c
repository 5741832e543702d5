#include "catalog/read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/db.h"
#include "sql/sqlite.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

/*
 * Every statement is prepared once, at open, so a schema this code does not
 * match fails there and not on the first request. Each query's columns come
 * in the fixed order its writer (write_artist, write_album, write_track)
 * reads them.
 *
 * The list queries pick the page's ids in a subquery that walks only a
 * covering index on the sort key (artists.name_key, albums.title_key,
 * tracks.title_key; the rowid is every index's last column, so "key, id"
 * needs no sort), then join and count for those <= limit rows alone. Without
 * the subquery SQLite runs the joins for every skipped OFFSET row: at
 * offset 900000 of 1M tracks that took 8 s against 40 ms. The counts are
 * correlated subqueries on the *_artist / *_album indexes. The outer ORDER BY
 * re-sorts only the page.
 */

#define ARTIST_COLS                                                                                \
	"SELECT ar.id, ar.name,"                                                                   \
	" (SELECT COUNT(*) FROM albums WHERE artist_id = ar.id),"                                  \
	" (SELECT COUNT(*) FROM tracks WHERE artist_id = ar.id)"

/* LEFT JOINs: an album whose artist row is missing (a replica caught
 * mid-way) is still shown, with a null artist, rather than vanishing. */
#define ALBUM_COLS                                                                                 \
	"SELECT al.id, al.title, ar.name, al.artist_id, al.year,"                                  \
	" (SELECT COUNT(*) FROM tracks WHERE album_id = al.id),"                                   \
	" (SELECT IFNULL(SUM(duration_ms), 0) FROM tracks WHERE album_id = al.id),"                \
	" EXISTS (SELECT 1 FROM covers WHERE album_id = al.id)"
#define ALBUM_JOINS " LEFT JOIN artists ar ON ar.id = al.artist_id "

#define TRACK_COLS                                                                                 \
	"SELECT t.id, t.title, ar.name, t.artist_id, al.title, t.album_id, aa.name,"               \
	" t.track_number, t.disc_number, t.year, t.genre, t.isrc, t.label, t.duration_ms,"         \
	" t.codec, t.mime_type, t.bitrate, t.sample_rate, t.channels, t.size, t.content_hash,"     \
	" t.explicit"
#define TRACK_JOINS                                                                                \
	" LEFT JOIN artists ar ON ar.id = t.artist_id"                                             \
	" LEFT JOIN albums al ON al.id = t.album_id"                                               \
	" LEFT JOIN artists aa ON aa.id = al.artist_id "

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ARTIST_TOTAL,
	ST_ARTISTS,
	ST_ARTIST,
	ST_ARTIST_ALBUMS,
	ST_ALBUM_TOTAL,
	ST_ALBUMS,
	ST_ALBUM,
	ST_ALBUM_TRACKS,
	ST_TRACK_TOTAL,
	ST_TRACKS,
	ST_TRACK,
	ST_COVER,
	ST_STREAM,
	ST_STREAM_BLOB,
	ST_DATA_VERSION,
	ST_LIBRARY,
	ST_INGESTS,
	ST_INGEST_ERRORS,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ARTIST_TOTAL] = "SELECT COUNT(*) FROM artists",
	[ST_ARTISTS] = ARTIST_COLS " FROM (SELECT id FROM artists ORDER BY name_key, id"
				   " LIMIT ?1 OFFSET ?2) p JOIN artists ar ON ar.id = p.id"
				   " ORDER BY ar.name_key, ar.id",
	[ST_ARTIST] = ARTIST_COLS " FROM artists ar WHERE ar.id = ?1",
	/* Unknown years last: a discography reads oldest to newest. */
	[ST_ARTIST_ALBUMS] = ALBUM_COLS " FROM albums al" ALBUM_JOINS "WHERE al.artist_id = ?1"
					" ORDER BY al.year IS NULL, al.year, al.title_key, al.id",
	[ST_ALBUM_TOTAL] = "SELECT COUNT(*) FROM albums",
	[ST_ALBUMS] = ALBUM_COLS " FROM (SELECT id FROM albums ORDER BY title_key, id"
				 " LIMIT ?1 OFFSET ?2) p JOIN albums al ON al.id = p.id" ALBUM_JOINS
				 "ORDER BY al.title_key, al.id",
	[ST_ALBUM] = ALBUM_COLS " FROM albums al" ALBUM_JOINS "WHERE al.id = ?1",
	/* Unknown disc and track numbers after the known ones, not before. */
	[ST_ALBUM_TRACKS] = TRACK_COLS " FROM tracks t" TRACK_JOINS "WHERE t.album_id = ?1"
				       " ORDER BY t.disc_number IS NULL, t.disc_number,"
				       " t.track_number IS NULL, t.track_number, t.title_key, t.id",
	[ST_TRACK_TOTAL] = "SELECT COUNT(*) FROM tracks",
	[ST_TRACKS] = TRACK_COLS " FROM (SELECT id FROM tracks ORDER BY title_key, id"
				 " LIMIT ?1 OFFSET ?2) p JOIN tracks t ON t.id = p.id" TRACK_JOINS
				 "ORDER BY t.title_key, t.id",
	[ST_TRACK] = TRACK_COLS " FROM tracks t" TRACK_JOINS "WHERE t.id = ?1",
	[ST_COVER] = "SELECT mime, data FROM covers WHERE album_id = ?1",
	/* Parentheses: clang's -Wstring-concatenation in array initialisers. */
	[ST_STREAM] = ("SELECT size, chunk_size, chunk_count, key, blob, content_hash, mime_type,"
		       " id, duration_ms FROM tracks WHERE id = ?1"),
	[ST_STREAM_BLOB] = ("SELECT size, chunk_size, chunk_count, key, blob, content_hash,"
			    " mime_type, id, duration_ms FROM tracks WHERE blob = ?1"),
	[ST_DATA_VERSION] = "PRAGMA data_version",
	/* The sums read the tracks_library index, not the rows; ?1 is
	 * SEAL_TAG_LEN, what sealing adds to each chunk. */
	[ST_LIBRARY] = ("SELECT (SELECT COUNT(*) FROM artists), (SELECT COUNT(*) FROM albums),"
			" COUNT(*), IFNULL(SUM(duration_ms), 0),"
			" IFNULL(SUM(size + chunk_count * ?1), 0) FROM tracks"),
	[ST_INGESTS] = ("SELECT id, host, started_at, heartbeat_at, finished_at, added, updated,"
			" unchanged, failed FROM ingests ORDER BY started_at DESC, id DESC"
			" LIMIT ?1"),
	[ST_INGEST_ERRORS] = ("SELECT path, message FROM ingest_errors WHERE ingest_id = ?1"
			      " ORDER BY n LIMIT ?2"),
};

struct catalog_reader {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	const struct catalog_signer *signer; /* for the request being answered */
	/* The library's figures, kept while the catalog's data_version stays
	 * what it was before they were summed: their scan of the tracks took
	 * 0.13 s on 1M tracks, on the event loop. */
	struct {
		int64_t artists, albums, tracks, duration_ms, origin_bytes;
	} figures;
	int64_t figures_version; /* -1: none kept */
};

/* Readers run on event-loop threads: a rare SQLITE_BUSY (WAL recovery after
 * a crashed writer) must cost a failed request, not a stalled loop. */
#define READER_BUSY_MS 200

int catalog_reader_open(const char *db_path, catalog_reader_t **out, char *err, size_t errlen)
{
	catalog_reader_t *r = xcalloc(1, sizeof(*r));
	int rc, version;

	rc = catalog_db_open(db_path, false, &r->db, err, errlen);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->figures_version = -1;
	sqlite3_busy_timeout(r->db, READER_BUSY_MS);
	/* Pages straight from the OS cache: without mmap every page a search
	 * reads beyond the connection's small page cache is a pread copy, and
	 * that copying was most of a search's time on a 1M-track catalog.
	 * SQLite clamps the size to its compiled maximum. */
	sqlite3_exec(r->db, "PRAGMA mmap_size = 4294967296", NULL, NULL, NULL);
	/* A clear message for a file that is not (yet) a catalog or is too
	 * new, rather than "no such table" from the first prepare. */
	version = sql_sqlite_user_version(r->db);
	if (version < 0) {
		snprintf(err, errlen, "catalog %s: %s", db_path, sqlite3_errmsg(r->db));
		rc = -EIO;
		goto fail;
	}
	if (version != CATALOG_SCHEMA_VERSION) {
		snprintf(err, errlen, "catalog %s: schema version %d, this chorus reads %d",
			 db_path, version, CATALOG_SCHEMA_VERSION);
		rc = version == 0 ? -ENOENT : -EPROTO;
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(r->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "catalog %s: %s", db_path, sqlite3_errmsg(r->db));
			rc = -EIO;
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	catalog_reader_close(r);
	return rc;
}

void catalog_reader_close(catalog_reader_t *r)
{
	if (!r)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(r->st[i]);
	sqlite3_close(r->db);
	free(r);
}

/* SQLITE_ROW or SQLITE_DONE; anything else is logged and returned as -1. */
static int step(catalog_reader_t *r, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	log_error("catalog: %s (%d): %s", sqlite3_errmsg(r->db), rc, sqlite3_sql(st));
	return -1;
}

static sqlite3_stmt *stmt(catalog_reader_t *r, enum stmt which)
{
	sqlite3_stmt *st = r->st[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int begin(catalog_reader_t *r)
{
	return step(r, stmt(r, ST_BEGIN)) == SQLITE_DONE ? 0 : -1;
}

/* Ends the read transaction. Statements are reset first so none keeps a
 * read lock or a snapshot alive while the reader sits idle. */
static void end(catalog_reader_t *r)
{
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_reset(r->st[i]);
	if (step(r, r->st[ST_COMMIT]) != SQLITE_DONE && !sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_reset(r->st[ST_COMMIT]);
}

/* Finishes a request: on anything but 200 the body written so far is
 * dropped, so out is as the caller passed it. */
static int finish(catalog_reader_t *r, int status, json_t *j, buf_t *out, size_t mark)
{
	end(r);
	if (status == 200 && j && json_failed(j)) {
		log_error("catalog: response body over the %zu byte cap", out->max);
		status = 500;
	}
	if (status != 200) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
	}
	return status;
}

/* Column writers. Unknown values are null, never 0 or "": ingest stores
 * NULL for them, and 0 / "" coming from elsewhere mean the same. */

static void k_id(json_t *j, const char *key, sqlite3_stmt *st, int col)
{
	char hex[17];

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		json_knull(j, key);
		return;
	}
	catalog_id_str(sqlite3_column_int64(st, col), hex);
	json_kstr(j, key, hex);
}

static void k_text(json_t *j, const char *key, sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	json_key(j, key);
	if (!s || n <= 0)
		json_nil(j);
	else
		json_strn(j, s, (size_t)n);
}

/* A count or measure: null only when NULL. */
static void k_int(json_t *j, const char *key, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		json_knull(j, key);
	else
		json_kint(j, key, sqlite3_column_int64(st, col));
}

/* A tag number or stream property where 0 means unknown. */
static void k_pos(json_t *j, const char *key, sqlite3_stmt *st, int col)
{
	int64_t v = sqlite3_column_int64(st, col);

	if (sqlite3_column_type(st, col) == SQLITE_NULL || v <= 0)
		json_knull(j, key);
	else
		json_kint(j, key, v);
}

/* true, false, or null when not said. */
static void k_flag(json_t *j, const char *key, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		json_knull(j, key);
	else
		json_kbool(j, key, sqlite3_column_int64(st, col) != 0);
}

static void k_url(json_t *j, const char *key, const char *prefix, int64_t id, const char *suffix)
{
	char hex[17], url[96];

	catalog_id_str(id, hex);
	snprintf(url, sizeof(url), "%s%s%s", prefix, hex, suffix);
	json_kstr(j, key, url);
}

/* ARTIST_COLS */
static void write_artist(catalog_reader_t *r, json_t *j, sqlite3_stmt *st)
{
	k_id(j, "id", st, 0);
	k_text(j, "name", st, 1);
	k_int(j, "album_count", st, 2);
	k_int(j, "track_count", st, 3);
}

/* ALBUM_COLS */
static void write_album(catalog_reader_t *r, json_t *j, sqlite3_stmt *st)
{
	k_id(j, "id", st, 0);
	k_text(j, "title", st, 1);
	k_text(j, "artist", st, 2);
	k_id(j, "artist_id", st, 3);
	k_pos(j, "year", st, 4);
	k_int(j, "track_count", st, 5);
	k_int(j, "duration_ms", st, 6);
	if (sqlite3_column_int(st, 7))
		k_url(j, "cover_url", "/api/v1/albums/", sqlite3_column_int64(st, 0), "/cover");
	else
		json_knull(j, "cover_url");
}

/* A track's stream URL, signed for the asking principal when there is
 * one (catalog_reader_sign). */
static void k_stream_url(catalog_reader_t *r, json_t *j, int64_t id)
{
	const struct catalog_signer *s = r->signer;
	char hex[17], sig[AUTH_URL_SIG_MAX], url[96 + AUTH_URL_SIG_MAX];

	if (!s) {
		k_url(j, "stream_url", "/api/v1/tracks/", id, "/stream");
		return;
	}
	catalog_id_str(id, hex);
	auth_url_sign(s->key, id, s->principal, s->expires_s, sig);
	snprintf(url, sizeof(url), "/api/v1/tracks/%s/stream?exp=%lld&sig=%s", hex,
		 (long long)s->expires_s, sig);
	json_kstr(j, "stream_url", url);
}

/* TRACK_COLS */
static void write_track(catalog_reader_t *r, json_t *j, sqlite3_stmt *st)
{
	k_id(j, "id", st, 0);
	k_text(j, "title", st, 1);
	k_text(j, "artist", st, 2);
	k_id(j, "artist_id", st, 3);
	k_text(j, "album", st, 4);
	k_id(j, "album_id", st, 5);
	k_text(j, "album_artist", st, 6);
	k_pos(j, "track_number", st, 7);
	k_pos(j, "disc_number", st, 8);
	k_pos(j, "year", st, 9);
	k_text(j, "genre", st, 10);
	k_text(j, "isrc", st, 11);
	k_text(j, "label", st, 12);
	k_int(j, "duration_ms", st, 13);
	k_text(j, "codec", st, 14);
	k_text(j, "mime_type", st, 15);
	k_pos(j, "bitrate", st, 16);
	k_pos(j, "sample_rate", st, 17);
	k_pos(j, "channels", st, 18);
	k_int(j, "size_bytes", st, 19);
	k_stream_url(r, j, sqlite3_column_int64(st, 0));
	k_text(j, "etag", st, 20);
	k_flag(j, "explicit", st, 21);
}

typedef void (*row_writer)(catalog_reader_t *r, json_t *j, sqlite3_stmt *st);

/* Writes every row of st as an object into the open array; 0 or -1. */
static int write_rows(catalog_reader_t *r, json_t *j, sqlite3_stmt *st, row_writer write)
{
	int rc;

	while ((rc = step(r, st)) == SQLITE_ROW) {
		json_obj_begin(j);
		write(r, j, st);
		json_obj_end(j);
		/* Stop early once past the cap rather than run the query out. */
		if (json_failed(j))
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

static int json_list(catalog_reader_t *r, enum stmt total_st, enum stmt list_st, const char *name,
		     row_writer write, int64_t limit, int64_t offset, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	int64_t total;
	json_t j;

	/* SQLite reads a negative LIMIT as "no limit": a caller's bug must not
	 * become a dump of the whole table. */
	if (limit < 0 || offset < 0) {
		log_error("catalog: %s: bad paging limit %lld offset %lld", name, (long long)limit,
			  (long long)offset);
		return 500;
	}
	if (begin(r) < 0)
		return finish(r, 500, NULL, out, mark);
	st = stmt(r, total_st);
	if (step(r, st) != SQLITE_ROW)
		return finish(r, 500, NULL, out, mark);
	total = sqlite3_column_int64(st, 0);

	json_init(&j, out);
	json_obj_begin(&j);
	json_key(&j, name);
	json_arr_begin(&j);
	st = stmt(r, list_st);
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int64(st, 2, offset);
	if (write_rows(r, &j, st, write) < 0)
		return finish(r, 500, &j, out, mark);
	json_arr_end(&j);
	json_kint(&j, "total", total);
	json_kint(&j, "limit", limit);
	json_kint(&j, "offset", offset);
	json_obj_end(&j);
	return finish(r, 200, &j, out, mark);
}

/* One object by id, with the rows of a second query as the array key. */
static int json_one(catalog_reader_t *r, enum stmt one_st, row_writer write_one, const char *key,
		    enum stmt rows_st, row_writer write, int64_t id, buf_t *out)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	json_t j;
	int rc;

	if (begin(r) < 0)
		return finish(r, 500, NULL, out, mark);
	st = stmt(r, one_st);
	sqlite3_bind_int64(st, 1, id);
	rc = step(r, st);
	if (rc != SQLITE_ROW)
		return finish(r, rc == SQLITE_DONE ? 404 : 500, NULL, out, mark);

	json_init(&j, out);
	json_obj_begin(&j);
	write_one(r, &j, st);
	if (key) {
		json_key(&j, key);
		json_arr_begin(&j);
		st = stmt(r, rows_st);
		sqlite3_bind_int64(st, 1, id);
		if (write_rows(r, &j, st, write) < 0)
			return finish(r, 500, &j, out, mark);
		json_arr_end(&j);
	}
	json_obj_end(&j);
	return finish(r, 200, &j, out, mark);
}

int catalog_json_artists(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out)
{
	return json_list(r, ST_ARTIST_TOTAL, ST_ARTISTS, "artists", write_artist, limit, offset,
			 out);
}

int catalog_json_artist(catalog_reader_t *r, int64_t id, buf_t *out)
{
	return json_one(r, ST_ARTIST, write_artist, "albums", ST_ARTIST_ALBUMS, write_album, id,
			out);
}

int catalog_json_albums(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out)
{
	return json_list(r, ST_ALBUM_TOTAL, ST_ALBUMS, "albums", write_album, limit, offset, out);
}

int catalog_json_album(catalog_reader_t *r, int64_t id, buf_t *out)
{
	return json_one(r, ST_ALBUM, write_album, "tracks", ST_ALBUM_TRACKS, write_track, id, out);
}

int catalog_json_tracks(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out)
{
	return json_list(r, ST_TRACK_TOTAL, ST_TRACKS, "tracks", write_track, limit, offset, out);
}

int catalog_json_track(catalog_reader_t *r, int64_t id, buf_t *out)
{
	return json_one(r, ST_TRACK, write_track, NULL, ST_COUNT, NULL, id, out);
}

int catalog_cover(catalog_reader_t *r, int64_t album_id, buf_t *out, char *mime, size_t mimelen)
{
	size_t mark = out->len;
	sqlite3_stmt *st;
	const char *m;
	const void *data;
	int rc, n, mlen;

	if (begin(r) < 0)
		return finish(r, 500, NULL, out, mark);
	st = stmt(r, ST_COVER);
	sqlite3_bind_int64(st, 1, album_id);
	rc = step(r, st);
	if (rc != SQLITE_ROW)
		return finish(r, rc == SQLITE_DONE ? 404 : 500, NULL, out, mark);
	m = (const char *)sqlite3_column_text(st, 0);
	mlen = sqlite3_column_bytes(st, 0);
	data = sqlite3_column_blob(st, 1);
	n = sqlite3_column_bytes(st, 1);
	if (!m || mlen <= 0 || (size_t)mlen >= mimelen) {
		log_error("catalog: cover of album %016llx: bad MIME type or no room for it",
			  (unsigned long long)album_id);
		return finish(r, 500, NULL, out, mark);
	}
	if (n > 0 && buf_append(out, data, (size_t)n) < 0) {
		log_error("catalog: cover of album %016llx (%d bytes) is over the %zu byte cap",
			  (unsigned long long)album_id, n, out->max);
		return finish(r, 500, NULL, out, mark);
	}
	memcpy(mime, m, (size_t)mlen + 1);
	return finish(r, 200, NULL, out, mark);
}

/* Copies a text column of exactly len bytes (plus NUL) into dst; -1 when the
 * stored value is not that long, which would make a broken manifest. */
static int copy_exact(sqlite3_stmt *st, int col, char *dst, size_t len)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	if (!s || (size_t)sqlite3_column_bytes(st, col) != len)
		return -1;
	memcpy(dst, s, len + 1);
	return 0;
}

/* By id (blob NULL) or by blob. */
static int stream_info(catalog_reader_t *r, int64_t track_id, const char *blob,
		       struct catalog_stream *out)
{
	struct catalog_stream s = {.id = track_id};
	sqlite3_stmt *st;
	const char *mime;
	int64_t size, chunk_size, chunk_count;
	int rc, mlen;

	if (begin(r) < 0) {
		end(r);
		return 500;
	}
	if (blob) {
		st = stmt(r, ST_STREAM_BLOB);
		sqlite3_bind_text(st, 1, blob, -1, SQLITE_STATIC);
	} else {
		st = stmt(r, ST_STREAM);
		sqlite3_bind_int64(st, 1, track_id);
	}
	rc = step(r, st);
	if (rc != SQLITE_ROW) {
		end(r);
		return rc == SQLITE_DONE ? 404 : 500;
	}
	size = sqlite3_column_int64(st, 0);
	chunk_size = sqlite3_column_int64(st, 1);
	chunk_count = sqlite3_column_int64(st, 2);
	mime = (const char *)sqlite3_column_text(st, 6);
	mlen = sqlite3_column_bytes(st, 6);
	/* The streamer does chunk arithmetic and decryption with these: a row
	 * that does not add up is refused here rather than served wrong. */
	rc = 500;
	if (size < 0 || chunk_size <= 0 || chunk_size > UINT32_MAX || chunk_count < 0 ||
	    chunk_count > UINT32_MAX ||
	    chunk_count != manifest_chunk_count((uint64_t)size, (uint32_t)chunk_size) ||
	    sqlite3_column_bytes(st, 3) != SEAL_KEY_LEN ||
	    copy_exact(st, 4, s.blob, BLOB_ID_LEN) < 0 ||
	    copy_exact(st, 5, s.content_hash, sizeof(s.content_hash) - 1) < 0 || !mime ||
	    mlen <= 0 || (size_t)mlen >= sizeof(s.mime_type)) {
		log_error("catalog: track %016llx has a malformed manifest",
			  (unsigned long long)track_id);
		goto out;
	}
	s.size = (uint64_t)size;
	s.chunk_size = (uint32_t)chunk_size;
	s.chunk_count = (uint32_t)chunk_count;
	memcpy(s.key, sqlite3_column_blob(st, 3), SEAL_KEY_LEN);
	memcpy(s.mime_type, mime, (size_t)mlen + 1);
	s.id = sqlite3_column_int64(st, 7);
	s.duration_ms = sqlite3_column_int64(st, 8);
	*out = s;
	rc = 200;
out:
	end(r);
	/* The key was on this stack frame; do not leave it there. */
	explicit_bzero(&s, sizeof(s));
	return rc;
}

int catalog_stream_info(catalog_reader_t *r, int64_t track_id, struct catalog_stream *out)
{
	return stream_info(r, track_id, NULL, out);
}

int catalog_stream_info_blob(catalog_reader_t *r, const char *blob, struct catalog_stream *out)
{
	return stream_info(r, 0, blob, out);
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return xstrdup(s ? s : "");
}

int catalog_library(catalog_reader_t *r, struct catalog_library *out)
{
	struct catalog_library l = {0};
	/* Read before the snapshot begins: a commit in between only makes
	 * the figures kept newer than their version says, and the next call
	 * sums them again. */
	int64_t version = catalog_reader_version(r);
	sqlite3_stmt *st;
	int rc = SQLITE_DONE;

	if (begin(r) < 0)
		goto fail;
	if (version < 0 || version != r->figures_version) {
		st = stmt(r, ST_LIBRARY);
		sqlite3_bind_int(st, 1, SEAL_TAG_LEN);
		if (step(r, st) != SQLITE_ROW)
			goto fail;
		r->figures.artists = sqlite3_column_int64(st, 0);
		r->figures.albums = sqlite3_column_int64(st, 1);
		r->figures.tracks = sqlite3_column_int64(st, 2);
		r->figures.duration_ms = sqlite3_column_int64(st, 3);
		r->figures.origin_bytes = sqlite3_column_int64(st, 4);
		r->figures_version = version;
	}
	l.artists = r->figures.artists;
	l.albums = r->figures.albums;
	l.tracks = r->figures.tracks;
	l.duration_ms = r->figures.duration_ms;
	l.origin_bytes = r->figures.origin_bytes;
	st = stmt(r, ST_INGESTS);
	sqlite3_bind_int(st, 1, CATALOG_INGESTS_SHOWN);
	while (l.ningests < CATALOG_INGESTS_SHOWN && (rc = step(r, st)) == SQLITE_ROW) {
		struct catalog_ingest *in = &l.ingests[l.ningests++];

		in->id = sqlite3_column_int64(st, 0);
		in->host = column_dup(st, 1);
		in->started_at = sqlite3_column_int64(st, 2);
		in->heartbeat_at = sqlite3_column_int64(st, 3);
		in->finished_at = sqlite3_column_int64(st, 4);
		in->added = sqlite3_column_int64(st, 5);
		in->updated = sqlite3_column_int64(st, 6);
		in->unchanged = sqlite3_column_int64(st, 7);
		in->failed = sqlite3_column_int64(st, 8);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail;
	for (int i = 0; i < l.ningests; i++) {
		struct catalog_ingest *in = &l.ingests[i];

		st = stmt(r, ST_INGEST_ERRORS);
		sqlite3_bind_int64(st, 1, in->id);
		sqlite3_bind_int(st, 2, CATALOG_RUN_ERRORS_MAX);
		while (in->nerrors < CATALOG_RUN_ERRORS_MAX && (rc = step(r, st)) == SQLITE_ROW) {
			in->errors[in->nerrors].path = column_dup(st, 0);
			in->errors[in->nerrors++].message = column_dup(st, 1);
		}
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			goto fail;
	}
	end(r);
	*out = l;
	return 200;
fail:
	end(r);
	catalog_library_free(&l);
	return 500;
}

void catalog_library_free(struct catalog_library *l)
{
	for (int i = 0; i < l->ningests; i++) {
		free(l->ingests[i].host);
		for (int e = 0; e < l->ingests[i].nerrors; e++) {
			free(l->ingests[i].errors[e].path);
			free(l->ingests[i].errors[e].message);
		}
	}
	l->ningests = 0;
}

int64_t catalog_reader_version(catalog_reader_t *r)
{
	sqlite3_stmt *st = r->st[ST_DATA_VERSION];
	int64_t v = -1;

	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

sqlite3 *catalog_reader_db(catalog_reader_t *r)
{
	return r->db;
}

int catalog_reader_begin(catalog_reader_t *r)
{
	return begin(r);
}

void catalog_reader_end(catalog_reader_t *r)
{
	end(r);
}

void catalog_reader_sign(catalog_reader_t *r, const struct catalog_signer *s)
{
	r->signer = s;
}

int catalog_json_object(catalog_reader_t *r, enum catalog_kind kind, int64_t id, struct json *j)
{
	static const enum stmt which[] = {[CATALOG_ARTIST] = ST_ARTIST,
					  [CATALOG_ALBUM] = ST_ALBUM,
					  [CATALOG_TRACK] = ST_TRACK};
	static const row_writer writers[] = {[CATALOG_ARTIST] = write_artist,
					     [CATALOG_ALBUM] = write_album,
					     [CATALOG_TRACK] = write_track};
	sqlite3_stmt *st;
	int rc;

	if ((unsigned)kind > CATALOG_TRACK)
		return -1;
	st = stmt(r, which[kind]);
	sqlite3_bind_int64(st, 1, id);
	rc = step(r, st);
	if (rc == SQLITE_ROW) {
		json_obj_begin(j);
		writers[kind](r, j, st);
		json_obj_end(j);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}
