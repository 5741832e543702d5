/*
 * The play store: DATA_DIR/plays.db and its writer thread (reports are in
 * plays/report.c, shipping to PostgreSQL in plays/ship.c).
 *
 * Group commit. Loop threads validate a request and submit its batch; one
 * writer thread owns the write connection, takes everything queued at once,
 * inserts it in one transaction (INSERT ... ON CONFLICT(event_id) DO
 * NOTHING: a retried upload is a duplicate, not a second play) and commits
 * once. The commit itself does not wait for the disk (synchronous=NORMAL
 * in WAL mode): a second thread, the syncer, fdatasyncs the WAL file and
 * only then acknowledges the group. So the writer inserts group N+1 while
 * group N's flush is in flight, and one flush covers every group committed
 * before it. Callbacks run only after the WAL holding their commit is on
 * disk, so nothing is acknowledged before it would survive a power loss.
 * (NORMAL keeps checkpoints fully synced; only the per-commit sync moves
 * to the syncer.)
 *
 * The table is also the seam for the cluster: rows stay until the shipper
 * has written them to PostgreSQL (it walks id, which grows in commit
 * order, and deletes what it shipped). Reports on a single node read this
 * table directly.
 */
#include "plays/plays.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/model.h"
#include "sql/sqlite.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define PLAYS_SCHEMA_VERSION 1

static const char schema_v1[] = "CREATE TABLE plays ("
				"  id INTEGER PRIMARY KEY,"
				"  event_id TEXT NOT NULL UNIQUE,"
				"  track_id INTEGER NOT NULL,"
				"  started_at INTEGER NOT NULL," /* ms since the epoch, UTC */
				"  ms_played INTEGER NOT NULL,"
				"  location TEXT,"
				"  zone TEXT,"
				"  device TEXT,"
				"  offline INTEGER NOT NULL DEFAULT 0,"
				"  received_at INTEGER NOT NULL,"
				"  shipped INTEGER NOT NULL DEFAULT 0);";
/* No index on started_at: it cost 40 % of the insert time (a second B-tree
 * written at random places, as offline devices upload old plays), and
 * reports, rare and run by operators, scan the table instead. See
 * docs/decisions.md. */

int plays_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	return sql_sqlite_exec(db, "plays", sql, err, errlen);
}

static int upgrade(sqlite3 *db, int from, void *arg, char *err, size_t errlen)
{
	return from < 1 ? plays_db_exec(db, schema_v1, err, errlen) : 0;
}

static int init(sqlite3 *db, void *arg, char *err, size_t errlen)
{
	/* The syncer holds an fd of the WAL: it must stay the same file. */
	int persist = 1;

	sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	/* The write lock is taken only when the schema is not there yet, so a
	 * report opening the file does not wait for the writer. */
	return sql_sqlite_migrate(db, "plays", PLAYS_SCHEMA_VERSION, upgrade, NULL, err, errlen);
}

int plays_db_open(const char *data_dir, sqlite3 **out, char *err, size_t errlen)
{
	/* NORMAL: the syncer thread makes each commit durable (see the top).
	 * A 16 MiB page cache keeps a large group's index pages from spilling
	 * to the WAL before its commit. */
	struct sql_sqlite_open o = {
		.what = "plays",
		.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
		.busy_ms = 10000,
		.pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			   " PRAGMA cache_size=-16384;",
		.init = init,
	};
	char path[4096];

	snprintf(path, sizeof(path), "%s/plays.db", data_dir);
	return sql_sqlite_open(path, &o, out, err, errlen);
}

/* ---- the writer ---- */

struct job {
	struct job *next;
	struct plays_batch batch;
	plays_done_fn done;
	void *arg;
	int accepted, duplicates;
};

/* Committed groups waiting for the syncer's flush. */
struct group {
	struct group *next;
	struct job *jobs;
};

struct plays {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, **tail;
	bool closing; /* no more submits */
	bool running; /* the writer thread exists */
	pthread_t thread;
	/* the syncer */
	pthread_cond_t sync_cv;
	struct group *synced_head, **synced_tail;
	bool writer_done;
	pthread_t syncer;
	int wal_fd;
	char wal_path[4096];
	sqlite3 *db;
	sqlite3_stmt *ins;
	atomic_uint_fast64_t commits, batches, accepted, duplicates, failed;
};

/* Inserts every queued batch in one transaction. 0 or -EIO. */
static int write_group(struct plays *p, struct job *jobs)
{
	char err[256];
	int64_t received = wall_ms();

	if (plays_db_exec(p->db, "BEGIN IMMEDIATE", err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -EIO;
	}
	for (struct job *j = jobs; j; j = j->next) {
		j->accepted = j->duplicates = 0;
		for (size_t i = 0; i < j->batch.n; i++) {
			const struct play *pl = &j->batch.items[i];
			sqlite3_stmt *st = p->ins;
			int rc;
			if (pl->dup) {
				j->duplicates++;
				continue;
			}
			sqlite3_bind_text(st, 1, pl->event_id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, pl->track_id);
			sqlite3_bind_int64(st, 3, pl->started_at_ms);
			sqlite3_bind_int64(st, 4, pl->ms_played);
			sqlite3_bind_text(st, 5, pl->location, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 6, pl->zone, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 7, pl->device, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 8, pl->offline);
			sqlite3_bind_int64(st, 9, received);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE) {
				log_error("plays: insert: %s", sqlite3_errmsg(p->db));
				plays_db_exec(p->db, "ROLLBACK", err, sizeof(err));
				return -EIO;
			}
			if (sqlite3_changes(p->db) == 1)
				j->accepted++;
			else
				j->duplicates++;
		}
	}
	if (plays_db_exec(p->db, "COMMIT", err, sizeof(err)) < 0) {
		log_error("%s", err);
		plays_db_exec(p->db, "ROLLBACK", err, sizeof(err));
		return -EIO;
	}
	return 0;
}

/* Acknowledges a group's jobs with rc. */
static void finish_jobs(struct plays *p, struct job *jobs, int rc)
{
	while (jobs) {
		struct job *j = jobs;
		jobs = j->next;
		atomic_fetch_add(&p->batches, 1);
		if (rc == 0) {
			atomic_fetch_add(&p->accepted, (uint64_t)j->accepted);
			atomic_fetch_add(&p->duplicates, (uint64_t)j->duplicates);
		} else {
			atomic_fetch_add(&p->failed, 1);
		}
		plays_batch_free(&j->batch);
		j->done(j->arg, rc, rc == 0 ? j->accepted : 0, rc == 0 ? j->duplicates : 0);
		free(j);
	}
}

static void *writer_main(void *arg)
{
	struct plays *p = arg;

	for (;;) {
		struct job *jobs;
		struct group *g;
		int rc;

		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->closing)
			pthread_cond_wait(&p->cv, &p->mu);
		jobs = p->head;
		p->head = NULL;
		p->tail = &p->head;
		pthread_mutex_unlock(&p->mu);
		if (!jobs)
			break; /* closing and nothing left */
		rc = write_group(p, jobs);
		atomic_fetch_add(&p->commits, rc == 0);
		if (rc < 0) {
			finish_jobs(p, jobs, rc);
			continue;
		}
		g = xmalloc(sizeof(*g));
		g->jobs = jobs;
		g->next = NULL;
		pthread_mutex_lock(&p->mu);
		*p->synced_tail = g;
		p->synced_tail = &g->next;
		pthread_cond_signal(&p->sync_cv);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->writer_done = true;
	pthread_cond_signal(&p->sync_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *syncer_main(void *arg)
{
	struct plays *p = arg;

	for (;;) {
		struct group *groups;
		int rc = 0;

		pthread_mutex_lock(&p->mu);
		while (!p->synced_head && !p->writer_done)
			pthread_cond_wait(&p->sync_cv, &p->mu);
		groups = p->synced_head;
		p->synced_head = NULL;
		p->synced_tail = &p->synced_head;
		pthread_mutex_unlock(&p->mu);
		if (!groups)
			break; /* the writer is gone and everything is flushed */
		/* One flush for every group committed so far. The WAL exists
		 * once the first commit wrote to it. */
		if (p->wal_fd < 0)
			p->wal_fd = open(p->wal_path, O_RDONLY | O_CLOEXEC);
		if (p->wal_fd < 0 || fdatasync(p->wal_fd) < 0) {
			log_error("plays: cannot flush %s: %s", p->wal_path, strerror(errno));
			rc = -EIO;
		}
		while (groups) {
			struct group *g = groups;
			groups = g->next;
			finish_jobs(p, g->jobs, rc);
			free(g);
		}
	}
	return NULL;
}

int plays_open(const char *data_dir, plays_t **out, char *err, size_t errlen)
{
	struct plays *p = xcalloc(1, sizeof(*p));
	int rc;

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->sync_cv, NULL);
	p->tail = &p->head;
	p->synced_tail = &p->synced_head;
	p->wal_fd = -1;
	snprintf(p->wal_path, sizeof(p->wal_path), "%s/plays.db-wal", data_dir);
	rc = plays_db_open(data_dir, &p->db, err, errlen);
	if (rc < 0)
		goto fail;
	if (sqlite3_prepare_v2(p->db,
			       "INSERT INTO plays (event_id, track_id, started_at, ms_played,"
			       " location, zone, device, offline, received_at)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
			       " ON CONFLICT (event_id) DO NOTHING",
			       -1, &p->ins, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "plays: %s", sqlite3_errmsg(p->db));
		rc = -EIO;
		goto fail;
	}
	if ((rc = thread_start(&p->syncer, syncer_main, p)) != 0) {
		snprintf(err, errlen, "plays: cannot start the syncer: %s", strerror(rc));
		rc = -rc;
		goto fail;
	}
	if ((rc = thread_start(&p->thread, writer_main, p)) != 0) {
		snprintf(err, errlen, "plays: cannot start the writer: %s", strerror(rc));
		rc = -rc;
		/* Let the syncer end before the struct goes away. */
		pthread_mutex_lock(&p->mu);
		p->writer_done = true;
		pthread_cond_signal(&p->sync_cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->syncer, NULL);
		goto fail;
	}
	p->running = true;
	*out = p;
	return 0;
fail:
	sqlite3_finalize(p->ins);
	sqlite3_close(p->db);
	pthread_cond_destroy(&p->sync_cv);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return rc;
}

void plays_submit(plays_t *p, struct plays_batch *batch, plays_done_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->batch = *batch;
	*batch = (struct plays_batch){0};
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->closing) {
		pthread_mutex_unlock(&p->mu);
		plays_batch_free(&j->batch);
		free(j);
		done(arg, -ESHUTDOWN, 0, 0);
		return;
	}
	*p->tail = j;
	p->tail = &j->next;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void plays_close(plays_t *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->running) {
		pthread_join(p->thread, NULL);
		pthread_join(p->syncer, NULL); /* ends after the writer's last flush */
		p->running = false;
	}
	if (p->wal_fd >= 0) {
		close(p->wal_fd);
		p->wal_fd = -1;
	}
	sqlite3_finalize(p->ins);
	p->ins = NULL;
	sqlite3_close(p->db);
	p->db = NULL;
}

void plays_free(plays_t *p)
{
	if (!p)
		return;
	plays_close(p);
	pthread_cond_destroy(&p->sync_cv);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void plays_get_stats(plays_t *p, struct plays_stats *out)
{
	out->commits = atomic_load(&p->commits);
	out->batches = atomic_load(&p->batches);
	out->accepted = atomic_load(&p->accepted);
	out->duplicates = atomic_load(&p->duplicates);
	out->failed = atomic_load(&p->failed);
}
