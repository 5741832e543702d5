/*
 * The PostgreSQL store: ingest's writes in a cluster.
 *
 * The same identity rules as the SQLite store (store/sqlite.c), in the
 * same order, so a library ingested into either gets the same catalog.
 * Several ingest runs, on several hosts, may write at once: every write
 * transaction first takes PG_LOCK_CATALOG, which serializes them exactly
 * as SQLite's BEGIN IMMEDIATE does on one host (and orders the change
 * feed, see sql/pg.c).
 *
 * Pending uploads belong to a run. A run holds a session advisory lock
 * named after its run id for as long as it lives, so "a crashed run's
 * upload" is a pending row whose run holds no lock: only those are reused
 * by another run or swept as garbage, never another live run's.
 *
 * The connection is reopened when lost (a failover): each operation is one
 * transaction, retried whole on a new connection for up to RECONNECT_S.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sql/pg.h"
#include "store/store.h"
#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

#define RECONNECT_S 60 /* a Patroni failover takes about 10 s */
#define STR_(x) #x
#define STR(x) STR_(x)
#define LOCK_CATALOG_SQL "SELECT pg_advisory_xact_lock(" STR(PG_LOCK_CATALOG) ")"
/* Runs: advisory locks (class, hashtext(run)); the class is "chr". */
#define RUN_LOCK_CLASS 6514802
/* A pending row whose run is alive (its lock is held by some session). */
#define RUN_ALIVE(col)                                                                             \
	"EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"             \
	" AND l.classid = " STR(RUN_LOCK_CLASS) "::oid AND l.objid = hashtext(" col ")::oid"       \
	" AND l.objsubid = 2)"

struct pg_store {
	struct store base;
	char *conninfo;
	PGconn *conn;
	pthread_mutex_t lock;
	bool lost; /* the last statement lost the connection */
	char run[33];
};

/* Positional parameters of one statement. */
#define MAXP 32
struct params {
	const char *v[MAXP];
	int len[MAXP], fmt[MAXP];
	char num[MAXP][24];
	int n;
};

static void p_text(struct params *p, const char *v)
{
	p->v[p->n] = v;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_int(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, v);
	p_text(p, p->num[p->n]);
}

/* 0 means unknown for tags: NULL. */
static void p_int_or_null(struct params *p, int64_t v)
{
	if (v)
		p_int(p, v);
	else
		p_text(p, NULL);
}

static void p_bytes(struct params *p, const void *b, int n)
{
	p->v[p->n] = b;
	p->len[p->n] = n;
	p->fmt[p->n++] = 1;
}

/* Runs sql; NULL on failure (logged; s->lost set when the connection is
 * gone). The caller clears the result. */
static PGresult *q(struct pg_store *s, const char *sql, const struct params *p)
{
	PGresult *res = PQexecParams(s->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
				     p ? p->len : NULL, p ? p->fmt : NULL, 0);

	if (pg_ok(res))
		return res;
	if (pg_lost(s->conn, res)) {
		s->lost = true;
		log_warn("postgres: connection lost: %s",
			 res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
	} else
		log_error("postgres: %s: %s", sql, res ? PQresultErrorMessage(res) : "no result");
	PQclear(res);
	return NULL;
}

/* A statement whose rows do not matter. 0, or -ENOTCONN / -EIO. */
static int run(struct pg_store *s, const char *sql, const struct params *p)
{
	PGresult *res = q(s, sql, p);

	if (!res)
		return s->lost ? -ENOTCONN : -EIO;
	PQclear(res);
	return 0;
}

static int fail(struct pg_store *s)
{
	return s->lost ? -ENOTCONN : -EIO;
}

/* Opens a connection and takes this run's lock; 0 or -ENOTCONN. */
static int connect_locked(struct pg_store *s, char *err, size_t errlen)
{
	char sql[128];

	s->conn = pg_connect(s->conninfo, err, errlen);
	if (!s->conn)
		return -ENOTCONN;
	s->lost = false;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d, hashtext('%s'))", RUN_LOCK_CLASS,
		 s->run);
	if (pg_exec(s->conn, "run lock", sql) < 0) {
		snprintf(err, errlen, "postgres: cannot take the run lock");
		PQfinish(s->conn);
		s->conn = NULL;
		return -ENOTCONN;
	}
	return 0;
}

/*
 * Runs one operation as a transaction holding the catalog lock (or, with
 * write false, outside any), reconnecting and retrying it whole after a
 * lost connection. The caller holds s->lock.
 */
typedef int (*op_fn)(struct pg_store *s, void *arg);

static int with_conn(struct pg_store *s, bool write, op_fn fn, void *arg)
{
	time_t deadline = time(NULL) + RECONNECT_S;
	int delay_ms = 100, rc;
	char err[512];

	for (;;) {
		if (!s->conn || s->lost) {
			PQfinish(s->conn);
			s->conn = NULL;
			if (connect_locked(s, err, sizeof(err)) < 0) {
				if (time(NULL) >= deadline) {
					log_error("ingest: %s", err);
					return -EIO;
				}
				log_warn("ingest: %s; retrying", err);
				usleep((useconds_t)delay_ms * 1000);
				delay_ms = delay_ms < 2000 ? delay_ms * 2 : 2000;
				continue;
			}
		}
		if (write) {
			rc = run(s, "BEGIN", NULL);
			if (rc == 0)
				rc = run(s, LOCK_CATALOG_SQL, NULL);
			if (rc == 0)
				rc = fn(s, arg);
			if (rc == 0)
				rc = run(s, "COMMIT", NULL);
			else if (!s->lost)
				run(s, "ROLLBACK", NULL);
		} else {
			rc = fn(s, arg);
		}
		if (rc != -ENOTCONN)
			return rc;
		if (time(NULL) >= deadline)
			return -EIO;
		log_warn("ingest: lost the PostgreSQL connection; reconnecting");
	}
}

/* ---- operations ---- */

struct file_arg {
	const struct store_file *f;
	const char *content_hash;
	struct store_result *res;
	bool same;
};

static int unchanged_op(struct pg_store *s, void *arg)
{
	struct file_arg *a = arg;
	struct params p = {0};
	PGresult *res;

	p_text(&p, a->f->path);
	p_int(&p, (int64_t)a->f->size);
	p_int(&p, a->f->mtime_ns);
	res = q(s,
		"SELECT 1 FROM tracks WHERE source_path = $1 AND source_size = $2"
		" AND source_mtime_ns = $3",
		&p);
	if (!res)
		return fail(s);
	a->same = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

static bool pg_file_unchanged(store_t *base, const struct store_file *f)
{
	struct pg_store *s = (struct pg_store *)base;
	struct file_arg a = {.f = f};

	pthread_mutex_lock(&s->lock);
	with_conn(s, false, unchanged_op, &a);
	pthread_mutex_unlock(&s->lock);
	return a.same;
}

static bool path_gone(const char *p)
{
	return p == NULL || access(p, F_OK) != 0;
}

/* Drops path from whichever track other than keep_id claims it. */
static int release_path(struct pg_store *s, const char *path, int64_t keep_id)
{
	struct params p = {0};

	p_text(&p, path);
	p_int(&p, keep_id);
	return run(s, "UPDATE tracks SET source_path = NULL WHERE source_path = $1 AND id <> $2",
		   &p);
}

/* store_settle's body, inside a write transaction. */
static int settle_tx(struct pg_store *s, const struct store_file *f, const char *content_hash,
		     struct store_result *out)
{
	struct params p = {0};
	PGresult *res;
	char *other = NULL;
	int64_t id = 0, size = 0, mtime = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->outcome = STORE_NEW;
	p_text(&p, content_hash);
	p_text(&p, f->path);
	/* Prefer the row already at this path when several hold these bytes. */
	res = q(s,
		"SELECT id, source_path, source_size, source_mtime_ns FROM tracks"
		" WHERE content_hash = $1 ORDER BY source_path IS DISTINCT FROM $2::text LIMIT 1",
		&p);
	if (!res)
		return fail(s);
	if (PQntuples(res) > 0) {
		id = pg_col_i64(res, 0, 0);
		if (!PQgetisnull(res, 0, 1))
			other = xstrdup(PQgetvalue(res, 0, 1));
		size = pg_col_i64(res, 0, 2);
		mtime = pg_col_i64(res, 0, 3);
	}
	PQclear(res);
	if (!id)
		return 0;
	out->track_id = id;
	memset(&p, 0, sizeof(p));
	if (other && strcmp(other, f->path) == 0) {
		out->outcome = STORE_UNCHANGED;
		if (size != (int64_t)f->size || mtime != f->mtime_ns) {
			p_int(&p, (int64_t)f->size);
			p_int(&p, f->mtime_ns);
			p_int(&p, id);
			rc = run(s,
				 "UPDATE tracks SET source_size = $1, source_mtime_ns = $2"
				 " WHERE id = $3",
				 &p);
		}
	} else if (path_gone(other)) {
		/* The file moved (or its track had lost its file): follow it. */
		out->outcome = STORE_UNCHANGED;
		rc = release_path(s, f->path, id);
		if (rc == 0) {
			p_text(&p, f->path);
			p_int(&p, (int64_t)f->size);
			p_int(&p, f->mtime_ns);
			p_int(&p, id);
			rc = run(s,
				 "UPDATE tracks SET source_path = $1, source_size = $2,"
				 " source_mtime_ns = $3 WHERE id = $4",
				 &p);
		}
	} else {
		out->outcome = STORE_DUPLICATE;
		snprintf(out->other_path, sizeof(out->other_path), "%s", other);
	}
	free(other);
	return rc;
}

static int settle_op(struct pg_store *s, void *arg)
{
	struct file_arg *a = arg;

	return settle_tx(s, a->f, a->content_hash, a->res);
}

static int pg_settle(store_t *base, const struct store_file *f, const char *content_hash,
		     struct store_result *res)
{
	struct pg_store *s = (struct pg_store *)base;
	struct file_arg a = {.f = f, .content_hash = content_hash, .res = res};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, settle_op, &a);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

struct claim_arg {
	struct manifest *m;
	bool reused;
};

static int claim_op(struct pg_store *s, void *arg)
{
	struct claim_arg *a = arg;
	struct manifest *m = a->m;
	unsigned char r[BLOB_ID_LEN / 2];
	struct params p = {0};
	PGresult *res;

	a->reused = false;
	/* A dead run's upload of the same bytes. The chunk count is part of
	 * the match: it fixes the chunk size used. */
	p_text(&p, s->run);
	p_text(&p, m->content_hash);
	p_int(&p, m->chunk_count);
	res = q(s,
		"UPDATE pending SET run = $1 WHERE blob = (SELECT blob FROM pending"
		" WHERE content_hash = $2 AND chunk_count = $3 AND run <> $1"
		" AND NOT " RUN_ALIVE("run") " LIMIT 1) RETURNING blob, key",
		&p);
	if (!res)
		return fail(s);
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == BLOB_ID_LEN) {
		size_t klen = 0;
		unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1),
						     &klen);
		if (key && klen == SEAL_KEY_LEN) {
			memcpy(m->blob, PQgetvalue(res, 0, 0), BLOB_ID_LEN + 1);
			memcpy(m->key, key, SEAL_KEY_LEN);
			a->reused = true;
		}
		PQfreemem(key);
	}
	PQclear(res);
	if (a->reused)
		return 0;
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), m->blob);
	crypto_random(m->key, sizeof(m->key));
	memset(&p, 0, sizeof(p));
	p_text(&p, m->blob);
	p_bytes(&p, m->key, SEAL_KEY_LEN);
	p_text(&p, m->content_hash);
	p_int(&p, m->chunk_count);
	p_text(&p, s->run);
	return run(s,
		   "INSERT INTO pending (blob, key, content_hash, chunk_count, run)"
		   " VALUES ($1, $2, $3, $4, $5)",
		   &p);
}

static int pg_pending_claim(store_t *base, struct manifest *m, bool *reused)
{
	struct pg_store *s = (struct pg_store *)base;
	struct claim_arg a = {.m = m};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, claim_op, &a);
	pthread_mutex_unlock(&s->lock);
	*reused = rc == 0 && a.reused;
	return rc;
}

/* Moves a pending blob to the garbage ledger. */
static int pending_to_garbage(struct pg_store *s, const char *blob)
{
	struct params p = {0};
	int rc;

	p_text(&p, blob);
	rc = run(s,
		 "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count FROM pending"
		 " WHERE blob = $1 ON CONFLICT DO NOTHING",
		 &p);
	if (rc == 0)
		rc = run(s, "DELETE FROM pending WHERE blob = $1", &p);
	return rc;
}

static int abandon_op(struct pg_store *s, void *arg)
{
	return pending_to_garbage(s, arg);
}

static int pg_pending_abandon(store_t *base, const struct manifest *m)
{
	struct pg_store *s = (struct pg_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, abandon_op, (void *)m->blob);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Inserts an artist unless one with the same key exists; its id or 0. */
static int64_t upsert_artist(struct pg_store *s, const char *name)
{
	char *key = text_name_key(name);
	int64_t id = catalog_artist_id(key);
	struct params p = {0};

	p_int(&p, id);
	p_text(&p, name);
	p_text(&p, key);
	if (run(s, "INSERT INTO artists (id, name, name_key) VALUES ($1, $2, $3)"
		   " ON CONFLICT DO NOTHING",
		&p) < 0)
		id = 0;
	free(key);
	return id;
}

static int64_t upsert_album(struct pg_store *s, int64_t artist_id, const char *title, int year)
{
	char *key = text_name_key(title);
	int64_t id = catalog_album_id(artist_id, key);
	struct params p = {0};

	p_int(&p, id);
	p_text(&p, title);
	p_text(&p, key);
	p_int(&p, artist_id);
	p_int_or_null(&p, year);
	/* An album takes the first year any of its tracks is tagged with. */
	if (run(s, "INSERT INTO albums (id, title, title_key, artist_id, year)"
		   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET year = excluded.year"
		   " WHERE albums.year IS NULL AND excluded.year IS NOT NULL",
		&p) < 0)
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

/* Row columns: id, isrc, artist_id, album_id, disc, track, title_key, path. */
static bool row_same_recording(const PGresult *res, int r, const struct identity *want)
{
	if (want->isrc && !PQgetisnull(res, r, 1) && strcmp(want->isrc, PQgetvalue(res, r, 1)) == 0)
		return true;
	return pg_col_i64(res, r, 2) == want->artist_id && pg_col_i64(res, r, 3) == want->album_id &&
	       pg_col_i64(res, r, 4) == want->disc && pg_col_i64(res, r, 5) == want->track &&
	       strcmp(PQgetvalue(res, r, 6), want->title_key) == 0;
}

/* Finds the track a changed file replaces: its id, 0, or -ENOTCONN/-EIO.
 * The same three questions, in the same order, as the SQLite store. */
static int64_t find_recording(struct pg_store *s, const char *path, const struct identity *want)
{
#define COLS "SELECT id, isrc, artist_id, album_id, disc_number, track_number, title_key,"  \
	     " source_path FROM tracks WHERE "
	static const char *const queries[] = {
		COLS "source_path = $1",
		COLS "isrc = $1",
		COLS "artist_id = $1 AND album_id = $2 AND disc_number IS NOT DISTINCT FROM"
		     " $3::integer AND track_number IS NOT DISTINCT FROM $4::integer"
		     " AND title_key = $5",
	};
#undef COLS
	int64_t found = 0;

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]) && !found; i++) {
		struct params p = {0};
		PGresult *res;

		if (i == 0) {
			p_text(&p, path);
		} else if (i == 1) {
			if (!want->isrc)
				continue;
			p_text(&p, want->isrc);
		} else {
			p_int(&p, want->artist_id);
			p_int(&p, want->album_id);
			p_int_or_null(&p, want->disc);
			p_int_or_null(&p, want->track);
			p_text(&p, want->title_key);
		}
		res = q(s, queries[i], &p);
		if (!res)
			return fail(s);
		for (int r = 0; r < PQntuples(res) && !found; r++) {
			const char *sp = PQgetisnull(res, r, 7) ? NULL : PQgetvalue(res, r, 7);
			if (!row_same_recording(res, r, want))
				continue;
			if (sp == NULL || strcmp(sp, path) == 0 || path_gone(sp))
				found = pg_col_i64(res, r, 0);
		}
		PQclear(res);
	}
	return found;
}

/* After an update moved a track elsewhere, drops the album and artists
 * nothing refers to any more. */
static int drop_orphans(struct pg_store *s, int64_t album_id, int64_t artist_id,
			int64_t album_artist_id)
{
	struct params p = {0};
	int rc;

	p_int(&p, album_id);
	rc = run(s,
		 "DELETE FROM covers WHERE album_id = $1 AND NOT EXISTS"
		 " (SELECT 1 FROM tracks WHERE album_id = $1)",
		 &p);
	if (rc == 0)
		rc = run(s,
			 "DELETE FROM albums WHERE id = $1 AND NOT EXISTS"
			 " (SELECT 1 FROM tracks WHERE album_id = $1)",
			 &p);
	for (int i = 0; i < 2 && rc == 0; i++) {
		memset(&p, 0, sizeof(p));
		p_int(&p, i == 0 ? artist_id : album_artist_id);
		rc = run(s,
			 "DELETE FROM artists WHERE id = $1"
			 " AND NOT EXISTS (SELECT 1 FROM tracks WHERE artist_id = $1)"
			 " AND NOT EXISTS (SELECT 1 FROM albums WHERE artist_id = $1)",
			 &p);
	}
	return rc;
}

static int write_track(struct pg_store *s, int64_t id, bool update, const struct store_file *f,
		       const struct track_meta *meta, const struct manifest *m,
		       const struct identity *idn)
{
	static const char insert_sql[] =
		"INSERT INTO tracks (title, title_key, artist_id, album_id, track_number,"
		" disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate,"
		" sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash,"
		" source_path, source_size, source_mtime_ns, updated_at, id, created_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
		" $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $26)";
	static const char update_sql[] =
		"UPDATE tracks SET title = $1, title_key = $2, artist_id = $3, album_id = $4,"
		" track_number = $5, disc_number = $6, year = $7, genre = $8, isrc = $9,"
		" label = $10, duration_ms = $11, codec = $12, mime_type = $13, bitrate = $14,"
		" sample_rate = $15, channels = $16, size = $17, chunk_size = $18,"
		" chunk_count = $19, key = $20, blob = $21, content_hash = $22,"
		" source_path = $23, source_size = $24, source_mtime_ns = $25, updated_at = $26"
		" WHERE id = $27";
	struct params p = {0};

	p_text(&p, meta->title);
	p_text(&p, idn->title_key);
	p_int(&p, idn->artist_id);
	p_int(&p, idn->album_id);
	p_int_or_null(&p, meta->track_number);
	p_int_or_null(&p, meta->disc_number);
	p_int_or_null(&p, meta->year);
	p_text(&p, meta->genre);
	p_text(&p, meta->isrc);
	p_text(&p, meta->label);
	p_int(&p, meta->duration_ms);
	p_text(&p, meta->codec);
	p_text(&p, meta->mime_type);
	p_int_or_null(&p, meta->bitrate);
	p_int_or_null(&p, meta->sample_rate);
	p_int_or_null(&p, meta->channels);
	p_int(&p, (int64_t)m->size);
	p_int(&p, m->chunk_size);
	p_int(&p, m->chunk_count);
	p_bytes(&p, m->key, SEAL_KEY_LEN);
	p_text(&p, m->blob);
	p_text(&p, m->content_hash);
	p_text(&p, f->path);
	p_int(&p, (int64_t)f->size);
	p_int(&p, f->mtime_ns);
	p_int(&p, (int64_t)time(NULL));
	p_int(&p, id);
	return run(s, update ? update_sql : insert_sql, &p);
}

struct commit_arg {
	const struct store_file *f;
	const struct track_meta *meta;
	const struct manifest *m;
	struct store_result *res;
};

static int commit_op(struct pg_store *s, void *arg)
{
	struct commit_arg *a = arg;
	const struct track_meta *meta = a->meta;
	const struct manifest *m = a->m;
	struct identity idn = {.isrc = meta->isrc, .disc = meta->disc_number,
			       .track = meta->track_number};
	char *title_key = NULL;
	int64_t album_artist_id, id;
	struct params p = {0};
	PGresult *res;
	int rc;

	rc = settle_tx(s, a->f, m->content_hash, a->res);
	if (rc < 0 || a->res->outcome != STORE_NEW)
		return rc < 0 ? rc : pending_to_garbage(s, m->blob);

	title_key = text_name_key(meta->title);
	idn.title_key = title_key;
	idn.artist_id = upsert_artist(s, meta->artist);
	album_artist_id = idn.artist_id ? upsert_artist(s, meta->album_artist) : 0;
	idn.album_id = album_artist_id ? upsert_album(s, album_artist_id, meta->album, meta->year)
				       : 0;
	rc = fail(s);
	if (!idn.artist_id || !idn.album_id)
		goto out;
	id = find_recording(s, a->f->path, &idn);
	if (id < 0) {
		rc = (int)id;
		goto out;
	}
	if ((rc = release_path(s, a->f->path, id)) < 0)
		goto out;
	if (id > 0) {
		int64_t old_album = 0, old_artist = 0, old_album_artist = 0;

		p_int(&p, id);
		res = q(s,
			"SELECT t.album_id, t.artist_id, a.artist_id FROM tracks t"
			" JOIN albums a ON a.id = t.album_id WHERE t.id = $1",
			&p);
		if (!res) {
			rc = fail(s);
			goto out;
		}
		if (PQntuples(res) == 1) {
			old_album = pg_col_i64(res, 0, 0);
			old_artist = pg_col_i64(res, 0, 1);
			old_album_artist = pg_col_i64(res, 0, 2);
		}
		PQclear(res);
		rc = run(s,
			 "INSERT INTO garbage (blob, chunk_count) SELECT blob, chunk_count"
			 " FROM tracks WHERE id = $1 ON CONFLICT DO NOTHING",
			 &p);
		if (rc == 0)
			rc = write_track(s, id, true, a->f, meta, m, &idn);
		if (rc == 0)
			rc = drop_orphans(s, old_album, old_artist, old_album_artist);
		a->res->outcome = STORE_UPDATED;
	} else {
		id = catalog_random_id();
		rc = write_track(s, id, false, a->f, meta, m, &idn);
		a->res->outcome = STORE_ADDED;
	}
	a->res->track_id = id;
	if (rc == 0 && meta->cover) {
		/* One picture per album: the first one ingested stays. */
		char sha[65];
		crypto_sha256_hex(meta->cover, meta->cover_len, sha);
		memset(&p, 0, sizeof(p));
		p_int(&p, idn.album_id);
		p_text(&p, meta->cover_mime);
		p_text(&p, sha);
		p_bytes(&p, meta->cover, (int)meta->cover_len);
		rc = run(s,
			 "INSERT INTO covers (album_id, mime, sha256, data) VALUES ($1, $2, $3, $4)"
			 " ON CONFLICT DO NOTHING",
			 &p);
	}
	if (rc == 0) {
		memset(&p, 0, sizeof(p));
		p_text(&p, m->blob);
		rc = run(s, "DELETE FROM pending WHERE blob = $1", &p);
	}
out:
	free(title_key);
	return rc;
}

static int pg_commit_track(store_t *base, const struct store_file *f,
			   const struct track_meta *meta, const struct manifest *m,
			   struct store_result *res)
{
	struct pg_store *s = (struct pg_store *)base;
	struct commit_arg a = {.f = f, .meta = meta, .m = m, .res = res};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, commit_op, &a);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

struct garbage_arg {
	bool include_pending;
	char (*blobs)[BLOB_ID_LEN + 1];
	uint32_t *counts;
	size_t n;
};

static int garbage_list_op(struct pg_store *s, void *arg)
{
	struct garbage_arg *a = arg;
	struct params p = {0};
	PGresult *res;
	int rc = 0;

	/* This run's unclaimed uploads, and those of dead runs; never the
	 * uploads of another run still going. */
	if (a->include_pending) {
		p_text(&p, s->run);
		rc = run(s,
			 "WITH gone AS (DELETE FROM pending WHERE run = $1 OR NOT " RUN_ALIVE("run")
			 " RETURNING blob, chunk_count)"
			 " INSERT INTO garbage SELECT blob, chunk_count FROM gone"
			 " ON CONFLICT DO NOTHING",
			 &p);
		if (rc < 0)
			return rc;
	}
	res = q(s, "SELECT blob, chunk_count FROM garbage", NULL);
	if (!res)
		return fail(s);
	free(a->blobs);
	free(a->counts);
	a->blobs = xcalloc((size_t)PQntuples(res) + 1, sizeof(*a->blobs));
	a->counts = xcalloc((size_t)PQntuples(res) + 1, sizeof(*a->counts));
	a->n = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		if (PQgetlength(res, r, 0) != BLOB_ID_LEN)
			continue;
		memcpy(a->blobs[a->n], PQgetvalue(res, r, 0), BLOB_ID_LEN + 1);
		a->counts[a->n++] = (uint32_t)pg_col_i64(res, r, 1);
	}
	PQclear(res);
	return 0;
}

static int pg_garbage_list(store_t *base, bool include_pending, char (**blobs)[BLOB_ID_LEN + 1],
			   uint32_t **counts, size_t *n)
{
	struct pg_store *s = (struct pg_store *)base;
	struct garbage_arg a = {.include_pending = include_pending};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, garbage_list_op, &a);
	pthread_mutex_unlock(&s->lock);
	*blobs = a.blobs;
	*counts = a.counts;
	*n = rc == 0 ? a.n : 0;
	return rc;
}

static int forget_op(struct pg_store *s, void *arg)
{
	struct params p = {0};

	p_text(&p, arg);
	return run(s, "DELETE FROM garbage WHERE blob = $1", &p);
}

static int pg_garbage_forget(store_t *base, const char *blob)
{
	struct pg_store *s = (struct pg_store *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = with_conn(s, true, forget_op, (void *)blob);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void pg_close(store_t *base)
{
	struct pg_store *s = (struct pg_store *)base;

	PQfinish(s->conn);
	pthread_mutex_destroy(&s->lock);
	free(s->conninfo);
	free(s);
}

static const struct store_ops pg_ops = {
	.file_unchanged = pg_file_unchanged,
	.settle = pg_settle,
	.pending_claim = pg_pending_claim,
	.pending_abandon = pg_pending_abandon,
	.commit_track = pg_commit_track,
	.garbage_list = pg_garbage_list,
	.garbage_forget = pg_garbage_forget,
	.close = pg_close,
};

int store_pg_open(const char *conninfo, store_t **out, char *err, size_t errlen)
{
	struct pg_store *s = xcalloc(1, sizeof(*s));
	unsigned char r[16];

	s->base.ops = &pg_ops;
	s->conninfo = xstrdup(conninfo);
	pthread_mutex_init(&s->lock, NULL);
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), s->run);
	/* The first connection is not retried: a wrong string or a database
	 * that is down is reported at once. */
	if (connect_locked(s, err, errlen) < 0) {
		pg_close(&s->base);
		return -EIO;
	}
	*out = &s->base;
	return 0;
}
