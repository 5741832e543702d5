/*
 * The read model's replicator (see replica.h).
 *
 * A pass applies the deletions numbered above last_seq, then the current
 * rows numbered above it, table by table. That order is enough: a row
 * deleted and made again (an album emptied, then refilled) is in both
 * lists, and the row, being newer, wins. Rows are written with INSERT OR
 * REPLACE with foreign keys off and recursive triggers on, so
 *   - a stale local row that still holds a unique value (a file path, a
 *     name key) another row now takes is replaced; it is itself in the same
 *     pass, having changed since, and comes back in its current form;
 *   - the search index's triggers see the replace as a delete and an
 *     insert, and stay exact.
 * Rows stream from PostgreSQL in single-row mode, so a bootstrap of
 * millions of tracks holds one row at a time in memory.
 */
#include "catalog/replica.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/search_index.h"
#include "sql/pg.h"
#include "sql/schema.h"
#include "sql/sqlite.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define RESYNC_MS 5000     /* a pass even without a notification */
#define GONE_KEPT_MAX 4096 /* blobs gone kept while no one listens */
#define BACKOFF_MAX_MS 5000

/* The replicated tables, in the order a pass applies them, and the column
 * whose words feed search's typo terms (NULL: none). Their columns and
 * keys are the schema's (sql/schema.c): the same list selects the rows
 * from PostgreSQL and inserts them here, so they line up by position.
 * users and api_keys come too, so every node authenticates from its own
 * model, and a revocation (an update of api_keys) arrives like any change.
 * The audit trail stays in PostgreSQL. The record of ingest runs comes
 * too, so the console's library panel reads it here, PostgreSQL down or
 * not. */
static const struct feed_table {
	const char *name;
	const char *terms;
} tables[] = {{"artists", "name"}, {"albums", "title"},     {"covers", NULL},
	      {"tracks", "title"}, {"users", NULL},         {"api_keys", NULL},
	      {"ingests", NULL},   {"ingest_errors", NULL}, {"locations", NULL},
	      {"zones", NULL},     {"playlists", NULL},     {"devices", NULL}};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* A blob a pass made unreferenced (replica_on_blob_gone). */
struct gone_blob {
	char blob[33];
	uint32_t chunks;
};

struct gone_list {
	struct gone_blob *v;
	size_t n, cap;
};

/* What the schema says of one replicated table. */
struct feed {
	char *cols; /* "id, name, ..." */
	const char *key;
	int terms_col; /* -1: none */
};

struct replica {
	char *conninfo;
	sqlite3 *db;
	struct feed feed[NTABLES];
	sqlite3_stmt *upsert[NTABLES], *remove[NTABLES];
	/* The tracks table's place in tables[], its blob column's place in
	 * its feed, and the statement reading a track's blob before a pass
	 * changes it: the blobs a pass leaves go to gone_fn. */
	size_t tracks_t;
	int blob_col;
	sqlite3_stmt *blob_of;
	struct gone_list pass_gone; /* this pass's, until it commits */
	char cluster_id[33];        /* "" until known */
	uint8_t cluster_key[32];    /* guarded by lock */
	bool key_set;
	bool bulk; /* bootstrapping: search is indexed afterwards, in bulk */
	int64_t last_seq;
	/* Tables the next pass reads whole (from seq 0), not from last_seq:
	 * those empty here when the model was opened. A table a newer
	 * binary's schema added (ingests) may have rows in PostgreSQL,
	 * written while this node still ran an older binary, numbered below
	 * the last_seq it had reached reading the others. */
	bool from_start[NTABLES];
	pthread_t thread;
	int stop_pipe[2];

	pthread_mutex_t lock; /* guards the status below */
	bool connected, current;
	int64_t current_at_ms; /* when the model was last known current; 0 never */
	uint64_t applied;
	int64_t bootstrap_ms;
	/* gone_lock is held while gone_fn runs, so once replica_on_blob_gone
	 * returns the old fn runs no more; gone_fn and gone_ud are guarded by
	 * both locks (either to read). */
	pthread_mutex_t gone_lock;
	replica_blob_fn gone_fn;
	void *gone_ud;
	struct gone_list kept; /* gone before gone_fn was set; guarded by lock */
};

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	log_error("replica: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -EIO;
}

static void unprepare(struct replica *r)
{
	for (size_t t = 0; t < NTABLES; t++) {
		sqlite3_finalize(r->upsert[t]);
		sqlite3_finalize(r->remove[t]);
		r->upsert[t] = r->remove[t] = NULL;
	}
	sqlite3_finalize(r->blob_of);
	r->blob_of = NULL;
}

static int prepare(struct replica *r, char *err, size_t errlen)
{
	for (size_t t = 0; t < NTABLES; t++) {
		char sql[1024], marks[128] = "?";
		int n = 1;

		for (const char *c = r->feed[t].cols; *c; c++)
			n += *c == ',';
		for (int i = 1; i < n; i++)
			strcat(marks, ",?");
		snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO %s (%s) VALUES (%s)",
			 tables[t].name, r->feed[t].cols, marks);
		if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->upsert[t],
				       NULL) != SQLITE_OK)
			goto fail;
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?", tables[t].name,
			 r->feed[t].key);
		if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->remove[t],
				       NULL) != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_prepare_v3(r->db, "SELECT blob, chunk_count FROM tracks WHERE id = ?", -1,
			       SQLITE_PREPARE_PERSISTENT, &r->blob_of, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "replica: %s", sqlite3_errmsg(r->db));
	return -EIO;
}

static void gone_push(struct gone_list *l, const char *blob, uint32_t chunks)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	snprintf(l->v[l->n].blob, sizeof(l->v[l->n].blob), "%s", blob);
	l->v[l->n++].chunks = chunks;
}

/* Before track id changes: its blob goes unless the row keeps it
 * (new_blob, NULL for a deletion). Not during a bootstrap: nothing is
 * cached for a model never filled. */
static void note_blob(struct replica *r, int64_t id, const char *new_blob)
{
	sqlite3_stmt *st = r->blob_of;

	if (r->bulk || !st)
		return;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(st, 0);

		if (old && (!new_blob || strcmp(old, new_blob) != 0))
			gone_push(&r->pass_gone, old, (uint32_t)sqlite3_column_int64(st, 1));
	}
	sqlite3_reset(st);
}

/* After a pass committed: its blobs to gone_fn, or kept for it. */
static void deliver_gone(struct replica *r)
{
	pthread_mutex_lock(&r->gone_lock);
	if (r->gone_fn) {
		for (size_t i = 0; i < r->pass_gone.n; i++)
			r->gone_fn(r->gone_ud, r->pass_gone.v[i].blob, r->pass_gone.v[i].chunks);
	} else {
		pthread_mutex_lock(&r->lock);
		for (size_t i = 0; i < r->pass_gone.n && r->kept.n < GONE_KEPT_MAX; i++)
			gone_push(&r->kept, r->pass_gone.v[i].blob, r->pass_gone.v[i].chunks);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->gone_lock);
	r->pass_gone.n = 0;
}

void replica_on_blob_gone(replica_t *r, replica_blob_fn fn, void *ud)
{
	struct gone_list kept = {0};

	pthread_mutex_lock(&r->gone_lock);
	pthread_mutex_lock(&r->lock);
	r->gone_fn = fn;
	r->gone_ud = ud;
	if (fn) {
		kept = r->kept;
		memset(&r->kept, 0, sizeof(r->kept));
	}
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < kept.n; i++)
		fn(ud, kept.v[i].blob, kept.v[i].chunks);
	pthread_mutex_unlock(&r->gone_lock);
	free(kept.v);
}

/* Binds one PostgreSQL row (text format) by column type. */
static int bind_row(sqlite3_stmt *st, const PGresult *res, int ncols)
{
	for (int i = 0; i < ncols; i++) {
		const char *v = PQgetvalue(res, 0, i);
		int rc;

		if (PQgetisnull(res, 0, i)) {
			rc = sqlite3_bind_null(st, i + 1);
		} else if (PQftype(res, i) == 20 || PQftype(res, i) == 23 ||
			   PQftype(res, i) == 21) {
			rc = sqlite3_bind_int64(st, i + 1, strtoll(v, NULL, 10));
		} else if (PQftype(res, i) == 17) { /* bytea */
			size_t n = 0;
			unsigned char *b = PQunescapeBytea((const unsigned char *)v, &n);
			if (!b)
				return -ENOMEM;
			rc = sqlite3_bind_blob64(st, i + 1, b, n, SQLITE_TRANSIENT);
			PQfreemem(b);
		} else {
			rc = sqlite3_bind_text(st, i + 1, v, PQgetlength(res, 0, i),
					       SQLITE_TRANSIENT);
		}
		if (rc != SQLITE_OK)
			return -EIO;
	}
	return 0;
}

static int step_reset(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_error("replica: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

/* Applies one row of table t (its last column is seq). */
static int apply_row(struct replica *r, size_t t, const PGresult *res, int64_t *max_seq)
{
	int ncols = PQnfields(res) - 1;
	int64_t seq = strtoll(PQgetvalue(res, 0, ncols), NULL, 10);

	if (t == r->tracks_t && r->blob_col >= 0)
		note_blob(r, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
			  PQgetvalue(res, 0, r->blob_col));
	if (bind_row(r->upsert[t], res, ncols) < 0 || step_reset(r->db, r->upsert[t]) < 0)
		return -EIO;
	if (!r->bulk && r->feed[t].terms_col >= 0 &&
	    search_index_terms(r->db, PQgetvalue(res, 0, r->feed[t].terms_col)) < 0)
		return -EIO;
	if (seq > *max_seq)
		*max_seq = seq;
	return 0;
}

/* Applies one tombstone: seq, tbl, id. */
static int apply_deletion(struct replica *r, const PGresult *res, int64_t *max_seq)
{
	int64_t seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	const char *tbl = PQgetvalue(res, 0, 1);

	for (size_t t = 0; t < NTABLES; t++) {
		int64_t id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

		if (strcmp(tbl, tables[t].name) != 0)
			continue;
		if (t == r->tracks_t)
			note_blob(r, id, NULL);
		sqlite3_bind_int64(r->remove[t], 1, id);
		if (step_reset(r->db, r->remove[t]) < 0)
			return -EIO;
	}
	if (seq > *max_seq)
		*max_seq = seq;
	return 0;
}

/*
 * Streams the rows of sql (one parameter: the seq to read above) through fn, one at a
 * time. 0, -ENOTCONN (the connection is gone) or -EIO. The result is
 * always drained, so the connection stays usable after an apply error.
 */
static int stream(struct replica *r, PGconn *c, const char *sql, int64_t since, size_t t,
		  bool deletions, int64_t *max_seq, uint64_t *rows)
{
	char last[24];
	const char *params[1] = {last};
	PGresult *res;
	int rc = 0;

	snprintf(last, sizeof(last), "%" PRId64, since);
	if (!PQsendQueryParams(c, sql, 1, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(c))
		return pg_lost(c, NULL) ? -ENOTCONN : -EIO;
	while ((res = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && rc == 0) {
			rc = deletions ? apply_deletion(r, res, max_seq)
				       : apply_row(r, t, res, max_seq);
			(*rows)++;
		} else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == 0) {
			rc = pg_lost(c, res) ? -ENOTCONN : -EIO;
			if (rc == -EIO)
				log_error("replica: %s", PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	if (rc == 0 && PQstatus(c) != CONNECTION_OK)
		rc = -ENOTCONN;
	return rc;
}

/* One pass: every change above last_seq, in one snapshot and one local
 * transaction. 0, -ENOTCONN or -EIO. */
static int sync_once(struct replica *r, PGconn *c)
{
	char sql[1024];
	int64_t max_seq = r->last_seq, t0 = mono_ms();
	uint64_t rows = 0;
	int rc;

	if (pg_exec(c, "replica", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		return pg_lost(c, NULL) ? -ENOTCONN : -EIO;
	rc = exec(r->db, "BEGIN IMMEDIATE");
	if (rc == 0)
		rc = stream(r, c, "SELECT seq, tbl, id FROM deletions WHERE seq > $1::bigint",
			    r->last_seq, 0, true, &max_seq, &rows);
	for (size_t t = 0; t < NTABLES && rc == 0; t++) {
		snprintf(sql, sizeof(sql), "SELECT %s, seq FROM %s WHERE seq > $1::bigint",
			 r->feed[t].cols, tables[t].name);
		rc = stream(r, c, sql, r->from_start[t] ? 0 : r->last_seq, t, false, &max_seq,
			    &rows);
	}
	if (rc == 0 && max_seq > r->last_seq) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(r->db, "UPDATE replica SET last_seq = ?", -1, &st, NULL) !=
			    SQLITE_OK ||
		    sqlite3_bind_int64(st, 1, max_seq) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE)
			rc = -EIO;
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = exec(r->db, "COMMIT");
	else
		exec(r->db, "ROLLBACK");
	if (rc != -ENOTCONN)
		pg_exec(c, "replica", "COMMIT");
	if (rc < 0) {
		r->pass_gone.n = 0; /* rolled back: the next pass sees them again */
		return rc;
	}
	deliver_gone(r);
	if (rows)
		log_debug("replica: applied %" PRIu64 " changes up to %" PRId64 " in %" PRId64
			  " ms",
			  rows, max_seq, mono_ms() - t0);
	memset(r->from_start, 0, sizeof(r->from_start));
	pthread_mutex_lock(&r->lock);
	r->last_seq = max_seq;
	r->applied += rows;
	r->current = true;
	r->current_at_ms = mono_ms();
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Connects, checks the database is the one this model follows (recording
 * it the first time), and LISTENs. NULL on failure, message in err. */
static PGconn *connect_and_listen(struct replica *r, char *err, size_t errlen)
{
	char id[33];
	uint8_t key[32];
	PGconn *c = pg_connect(r->conninfo, err, errlen);

	if (!c)
		return NULL;
	if (pg_cluster_id(c, id) < 0 || pg_cluster_key(c, key) < 0 ||
	    pg_exec(c, "replica", "LISTEN " PG_CHANNEL_CATALOG) < 0) {
		snprintf(err, errlen, "replica: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	if (r->cluster_id[0] && strcmp(id, r->cluster_id) != 0) {
		snprintf(err, errlen,
			 "this data directory's catalog follows another chorus database (%s, not"
			 " %s); use an empty data directory",
			 r->cluster_id, id);
		PQfinish(c);
		return NULL;
	}
	if (!r->cluster_id[0]) {
		sqlite3_stmt *st = NULL;
		int ok = sqlite3_prepare_v2(
				 r->db, "INSERT INTO replica (cluster_id, last_seq) VALUES (?, 0)",
				 -1, &st, NULL) == SQLITE_OK &&
			 sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_step(st) == SQLITE_DONE;
		sqlite3_finalize(st);
		if (!ok) {
			snprintf(err, errlen, "replica: %s", sqlite3_errmsg(r->db));
			PQfinish(c);
			return NULL;
		}
		memcpy(r->cluster_id, id, sizeof(id));
	}
	/* Kept with the model, so a node restarting while PostgreSQL is down
	 * still answers its peers. */
	pthread_mutex_lock(&r->lock);
	if (!r->key_set || memcmp(key, r->cluster_key, sizeof(key)) != 0) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(r->db, "UPDATE replica SET cluster_key = ?", -1, &st,
				       NULL) != SQLITE_OK ||
		    sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE)
			log_warn("replica: cannot record the cluster key: %s",
				 sqlite3_errmsg(r->db));
		sqlite3_finalize(st);
		memcpy(r->cluster_key, key, sizeof(key));
		r->key_set = true;
	}
	pthread_mutex_unlock(&r->lock);
	explicit_bzero(key, sizeof(key));
	return c;
}

/* Opens the model for the replicator's writes. */
static int open_model(struct replica *r, const char *db_path, char *err, size_t errlen)
{
	int rc = catalog_db_open(db_path, true, &r->db, err, errlen);

	/* The model is rebuilt from PostgreSQL after a power loss: NORMAL is
	 * enough. Constraints were checked by PostgreSQL. */
	if (rc == 0 && exec(r->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;"
				   " PRAGMA recursive_triggers = ON") < 0) {
		snprintf(err, errlen, "replica: cannot set up %s", db_path);
		rc = -EIO;
	}
	return rc;
}

/*
 * The first fill of an empty model: into DB_PATH.bootstrap, with no
 * journal and no fsync until the end, the rows in key order, the search
 * index built in bulk afterwards by the schema upgrade (not row by row by
 * its triggers), then renamed over the empty model. A crash before the
 * rename leaves the empty model, and the next start begins again. The
 * caller has closed r->db; it is open again on return (0), on the new
 * model.
 */
static int create_base(sqlite3 *db, void *arg, char *err, size_t errlen)
{
	return catalog_db_create_base(db, err, errlen);
}

/* The bootstrap file is this process's alone until renamed: no journal,
 * no fsync, no other connection, a large cache. */
static const struct sql_sqlite_open bootstrap_open = {
	.what = "replica bootstrap",
	.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	.pragmas = "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
		   " PRAGMA locking_mode = EXCLUSIVE; PRAGMA cache_size = -262144;"
		   " PRAGMA foreign_keys = OFF",
	.init = create_base,
};

static int bootstrap(struct replica *r, PGconn *c, const char *db_path, char *err, size_t errlen)
{
	char tmp[4200], sql[1024], dir[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	PGresult *res;
	int64_t max_seq = 0, t0 = mono_ms();
	uint64_t rows = 0;
	int rc = -EIO, fd;

	snprintf(tmp, sizeof(tmp), "%s.bootstrap", db_path);
	unlink(tmp);
	if (sql_sqlite_open(tmp, &bootstrap_open, &db, err, errlen) < 0)
		goto fail;
	r->db = db;
	r->bulk = true;
	if (prepare(r, err, errlen) < 0)
		goto fail;
	if (pg_exec(c, "replica", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0) {
		rc = -ENOTCONN;
		goto fail;
	}
	rc = exec(db, "BEGIN");
	for (size_t t = 0; t < NTABLES && rc == 0; t++) {
		snprintf(sql, sizeof(sql),
			 "SELECT %s, seq FROM %s WHERE seq > $1::bigint ORDER BY %s",
			 r->feed[t].cols, tables[t].name, r->feed[t].key);
		rc = stream(r, c, sql, 0, t, false, &max_seq, &rows);
	}
	/* Tombstones matter only for their numbers: nothing is here to delete. */
	res = rc == 0 ? PQexec(c, "SELECT coalesce(max(seq), 0) FROM deletions") : NULL;
	if (rc == 0 && (!pg_ok(res) || PQntuples(res) != 1))
		rc = pg_lost(c, res) ? -ENOTCONN : -EIO;
	if (rc == 0 && pg_col_i64(res, 0, 0) > max_seq)
		max_seq = pg_col_i64(res, 0, 0);
	PQclear(res);
	if (rc == 0)
		rc = exec(db, "COMMIT");
	if (rc != -ENOTCONN)
		pg_exec(c, "replica", "COMMIT");
	unprepare(r);
	r->bulk = false;
	r->db = NULL;
	if (rc < 0)
		goto fail;
	rc = -EIO;
	log_info("replica: bootstrap: %" PRIu64 " rows copied in %" PRId64
		 " ms; indexing for search",
		 rows, mono_ms() - t0);
	if (catalog_db_index_base(db, err, errlen) < 0)
		goto fail;
	log_debug("replica: bootstrap: indexed in %" PRId64 " ms", mono_ms() - t0);
	if (catalog_db_migrate(db, err, errlen) < 0)
		goto fail;
	log_debug("replica: bootstrap: search indexed in %" PRId64 " ms", mono_ms() - t0);
	if (sqlite3_prepare_v2(
		    db, "INSERT INTO replica (cluster_id, cluster_key, last_seq) VALUES (?, ?, ?)",
		    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, r->cluster_id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, r->cluster_key, sizeof(r->cluster_key), SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, max_seq) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		snprintf(err, errlen, "replica: %s", sqlite3_errmsg(db));
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_close(db);
	db = NULL;
	/* Durable, then in place of the empty model (whose WAL goes with it). */
	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
		snprintf(err, errlen, "replica: fsync %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	if (rename(tmp, db_path) < 0) {
		snprintf(err, errlen, "replica: rename %s: %s", tmp, strerror(errno));
		goto fail;
	}
	snprintf(sql, sizeof(sql), "%s-wal", db_path);
	unlink(sql);
	snprintf(sql, sizeof(sql), "%s-shm", db_path);
	unlink(sql);
	snprintf(dir, sizeof(dir), "%s", db_path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	fs_sync_dir(dir);
	if ((rc = open_model(r, db_path, err, errlen)) < 0 || (rc = prepare(r, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	r->last_seq = max_seq;
	r->applied = rows;
	r->current = true;
	r->current_at_ms = mono_ms();
	pthread_mutex_unlock(&r->lock);
	return 0;
fail:
	unprepare(r);
	r->bulk = false;
	r->db = NULL;
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(tmp);
	if (rc == -ENOTCONN)
		return rc;
	if (!*err)
		snprintf(err, errlen, "replica: the bootstrap failed (see above)");
	return rc < 0 ? rc : -EIO;
}

static void set_connected(struct replica *r, bool connected)
{
	pthread_mutex_lock(&r->lock);
	r->connected = connected;
	if (!connected)
		r->current = false;
	pthread_mutex_unlock(&r->lock);
}

/* Waits up to ms for a notification (true), or a stop (false: r->stop_pipe
 * readable), or the timeout (true). */
static bool wait_for_change(struct replica *r, PGconn *c, int ms)
{
	struct pollfd fds[2] = {{.fd = r->stop_pipe[0], .events = POLLIN},
				{.fd = c ? PQsocket(c) : -1, .events = POLLIN}};
	int64_t deadline = mono_ms() + ms;

	/* A notification libpq already read (with a pass's results) is not on
	 * the socket any more: poll would sleep through it until the resync. */
	if (c) {
		PGnotify *n;
		bool any = false;

		PQconsumeInput(c);
		while ((n = PQnotifies(c)) != NULL) {
			any = true;
			PQfreemem(n);
		}
		if (any)
			return true;
	}
	for (;;) {
		int left = (int)(deadline - mono_ms());
		if (left <= 0)
			return true;
		if (poll(fds, c ? 2 : 1, left) < 0 && errno != EINTR)
			return true;
		if (fds[0].revents)
			return false;
		if (c && fds[1].revents) {
			PGnotify *n;
			bool any = false;
			if (!PQconsumeInput(c))
				return true; /* the pass will find the connection gone */
			while ((n = PQnotifies(c)) != NULL) {
				any = true;
				PQfreemem(n);
			}
			if (any || PQstatus(c) != CONNECTION_OK)
				return true;
		}
	}
}

static void *replica_main(void *arg)
{
	struct replica *r = arg;
	PGconn *c = NULL;
	int backoff = 100;
	char err[512];
	bool warned = false;

	for (;;) {
		if (!c) {
			c = connect_and_listen(r, err, sizeof(err));
			if (!c) {
				if (!warned)
					log_warn("replica: %s; serving the catalog as of change "
						 "%" PRId64 ", retrying",
						 err, r->last_seq);
				warned = true;
				if (!wait_for_change(r, NULL, backoff))
					break;
				backoff =
					backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			if (warned)
				log_info("replica: connected to PostgreSQL again");
			warned = false;
			backoff = 100;
			set_connected(r, true);
		}
		if (sync_once(r, c) == -ENOTCONN || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = NULL;
			set_connected(r, false);
			continue;
		}
		if (!wait_for_change(r, c, RESYNC_MS))
			break;
	}
	PQfinish(c);
	return NULL;
}

/* Each replicated table's columns and key, from the schema. */
static int feed_setup(struct replica *r, char *err, size_t errlen)
{
	for (size_t t = 0; t < NTABLES; t++) {
		const struct sql_table *st = sql_catalog_table(tables[t].name);

		if (!st || !st->feed_key) {
			snprintf(err, errlen, "replica: %s is not a feed table", tables[t].name);
			return -EINVAL;
		}
		r->feed[t].cols = sql_schema_columns(st);
		r->feed[t].key = st->feed_key;
		r->feed[t].terms_col = -1;
		for (int c = 0; c < st->ncols && tables[t].terms; c++)
			if (strcmp(st->cols[c].name, tables[t].terms) == 0)
				r->feed[t].terms_col = c;
		if (strcmp(tables[t].name, "tracks") == 0) {
			r->tracks_t = t;
			for (int c = 0; c < st->ncols; c++)
				if (strcmp(st->cols[c].name, "blob") == 0)
					r->blob_col = c;
		}
	}
	return 0;
}

static void replica_free(struct replica *r)
{
	explicit_bzero(r->cluster_key, sizeof(r->cluster_key));
	unprepare(r);
	free(r->pass_gone.v);
	free(r->kept.v);
	for (size_t t = 0; t < NTABLES; t++)
		free(r->feed[t].cols);
	sqlite3_close(r->db);
	if (r->stop_pipe[0] >= 0) {
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->gone_lock);
	free(r->conninfo);
	free(r);
}

/* Marks the tables this model has no row of, for the first pass to read
 * whole (see from_start). */
static int find_empty(struct replica *r, char *err, size_t errlen)
{
	for (size_t t = 0; t < NTABLES; t++) {
		char sql[128];
		sqlite3_stmt *st = NULL;
		int rc;

		snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM %s)", tables[t].name);
		rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
		if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
			r->from_start[t] = sqlite3_column_int(st, 0) == 0;
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW) {
			snprintf(err, errlen, "replica: %s", sqlite3_errmsg(r->db));
			return -EIO;
		}
	}
	return 0;
}

/* Reads the replication state; refuses a standalone node's catalog. */
static int load_state(struct replica *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(r->db, "SELECT cluster_id, last_seq, cluster_key FROM replica", -1,
			       &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "replica: %s", sqlite3_errmsg(r->db));
		return -EIO;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(r->cluster_id, sizeof(r->cluster_id), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		r->last_seq = sqlite3_column_int64(st, 1);
		if (sqlite3_column_bytes(st, 2) == sizeof(r->cluster_key)) {
			memcpy(r->cluster_key, sqlite3_column_blob(st, 2), sizeof(r->cluster_key));
			r->key_set = true;
		}
	}
	sqlite3_finalize(st);
	if (r->cluster_id[0])
		return find_empty(r, err, errlen);
	if (sqlite3_prepare_v2(
		    r->db, "SELECT EXISTS (SELECT 1 FROM artists) OR EXISTS (SELECT 1 FROM tracks)",
		    -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0)) {
		snprintf(err, errlen,
			 "the data directory holds a catalog of its own (ingested without --db); a"
			 " cluster node needs an empty data directory (ingest that library with"
			 " --db to bring it into the cluster)");
		rc = -EEXIST;
	}
	sqlite3_finalize(st);
	return rc;
}

int replica_start(const char *db_path, const char *conninfo, replica_t **out, char *err,
		  size_t errlen)
{
	struct replica *r = xcalloc(1, sizeof(*r));
	int rc;

	r->conninfo = xstrdup(conninfo);
	r->stop_pipe[0] = r->stop_pipe[1] = -1;
	r->tracks_t = NTABLES;
	r->blob_col = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->gone_lock, NULL);
	if ((rc = feed_setup(r, err, errlen)) < 0 ||
	    (rc = open_model(r, db_path, err, errlen)) < 0 || (rc = load_state(r, err, errlen)) < 0)
		goto fail;
	if (pipe2(r->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "replica: pipe: %s", strerror(errno));
		goto fail;
	}
	/* A model never filled: fill it before the node serves anything, or
	 * it would answer "no such track" for the whole catalog. */
	if (r->last_seq == 0) {
		int64_t t0 = mono_ms();
		int delay = 250;
		bool warned = false;

		for (;;) {
			PGconn *c = connect_and_listen(r, err, errlen);
			if (c) {
				sqlite3_close(r->db);
				r->db = NULL;
				err[0] = '\0';
				rc = bootstrap(r, c, db_path, err, errlen);
				PQfinish(c);
				if (rc == 0)
					break;
				if (rc != -ENOTCONN)
					goto fail;
				if ((rc = open_model(r, db_path, err, errlen)) < 0)
					goto fail;
				snprintf(err, errlen, "lost the connection during the bootstrap");
			} else if (strstr(err, "another chorus database")) {
				rc = -EEXIST;
				goto fail;
			}
			if (!warned)
				log_warn("replica: %s; retrying until PostgreSQL answers", err);
			warned = true;
			usleep((useconds_t)delay * 1000);
			delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
		}
		r->bootstrap_ms = mono_ms() - t0;
		log_info("replica: bootstrapped to change %" PRId64 " (%" PRIu64
			 " rows) in %" PRId64 " ms",
			 r->last_seq, r->applied, r->bootstrap_ms);
	} else if ((rc = prepare(r, err, errlen)) < 0) {
		goto fail;
	}
	if (thread_start(&r->thread, replica_main, r) != 0) {
		rc = -EAGAIN;
		snprintf(err, errlen, "replica: cannot start its thread");
		goto fail;
	}
	*out = r;
	return 0;
fail:
	replica_free(r);
	return rc;
}

void replica_status(replica_t *r, struct replica_status *out)
{
	pthread_mutex_lock(&r->lock);
	out->last_seq = r->last_seq;
	out->connected = r->connected;
	out->applied = r->applied;
	out->bootstrap_ms = r->bootstrap_ms;
	if (r->connected && r->current)
		out->lag_ms = 0;
	else
		out->lag_ms = r->current_at_ms ? mono_ms() - r->current_at_ms : -1;
	pthread_mutex_unlock(&r->lock);
}

int replica_cluster_key(replica_t *r, uint8_t out[32])
{
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	if (r->key_set) {
		memcpy(out, r->cluster_key, sizeof(r->cluster_key));
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void replica_stop(replica_t *r)
{
	if (!r)
		return;
	if (write(r->stop_pipe[1], "x", 1) < 0)
		log_warn("replica: cannot wake the thread: %s", strerror(errno));
	pthread_join(r->thread, NULL);
	replica_free(r);
}
