/*
 * The plays shipper: plays.db (the node's durable queue) to PostgreSQL.
 *
 * A batch is the oldest SHIP_BATCH rows, sent with COPY into a temporary
 * table and moved with INSERT ... ON CONFLICT (event_id) DO NOTHING, all in
 * one transaction; once it committed the rows leave the queue. Rows are
 * never changed after they are written, and the writer only appends rows
 * numbered above the batch's while the batch's rows exist, so "delete what
 * was shipped" is "delete ids up to the batch's last".
 */
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

#include "sql/pg.h"
#include "plays/plays.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define SHIP_BATCH 5000
#define IDLE_MS 200 /* a look at the queue when it was empty */
#define BACKOFF_MAX_MS 5000

struct plays_shipper {
	sqlite3 *db;
	char *conninfo, *node;
	pthread_t thread;
	int stop_pipe[2];
	int64_t drain_until_ms; /* set by stop: ship until then */

	pthread_mutex_t lock; /* guards the figures */
	struct plays_ship_stats stats;
};

/* COPY's text format: backslash escapes; NULL is \N. */
static int copy_text(buf_t *b, const unsigned char *s)
{
	int rc = 0;

	if (!s)
		return buf_append(b, "\\N", 2);
	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '\\':
			rc = buf_append(b, "\\\\", 2);
			break;
		case '\t':
			rc = buf_append(b, "\\t", 2);
			break;
		case '\n':
			rc = buf_append(b, "\\n", 2);
			break;
		case '\r':
			rc = buf_append(b, "\\r", 2);
			break;
		default:
			rc = buf_append(b, (const char *)s, 1);
			break;
		}
	}
	return rc;
}

/*
 * Reads the next batch into b as COPY text for
 * (event_id, track_id, started_at, ms_played, location, zone, device,
 * offline, received_at, node). Returns the number of rows (0: the queue is
 * empty) with *last_id, or -EIO.
 */
static int read_batch(struct plays_shipper *s, buf_t *b, int64_t *last_id)
{
	sqlite3_stmt *st = NULL;
	char num[96];
	int n = 0, rc;

	buf_reset(b);
	if (sqlite3_prepare_v2(
		    s->db,
		    "SELECT id, event_id, track_id, started_at, ms_played, location, zone,"
		    " device, offline, received_at FROM plays ORDER BY id LIMIT ?",
		    -1, &st, NULL) != SQLITE_OK) {
		log_error("plays: shipper: %s", sqlite3_errmsg(s->db));
		return -EIO;
	}
	sqlite3_bind_int(st, 1, SHIP_BATCH);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*last_id = sqlite3_column_int64(st, 0);
		if (copy_text(b, sqlite3_column_text(st, 1)) < 0)
			goto full;
		snprintf(num, sizeof(num), "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t",
			 (int64_t)sqlite3_column_int64(st, 2), (int64_t)sqlite3_column_int64(st, 3),
			 (int64_t)sqlite3_column_int64(st, 4));
		if (buf_append(b, num, strlen(num)) < 0)
			goto full;
		for (int i = 5; i <= 7; i++)
			if (copy_text(b, sqlite3_column_text(st, i)) < 0 ||
			    buf_append(b, "\t", 1) < 0)
				goto full;
		snprintf(num, sizeof(num), "%s\t%" PRId64 "\t",
			 sqlite3_column_int(st, 8) ? "t" : "f",
			 (int64_t)sqlite3_column_int64(st, 9));
		if (buf_append(b, num, strlen(num)) < 0 ||
		    copy_text(b, (const unsigned char *)s->node) < 0 || buf_append(b, "\n", 1) < 0)
			goto full;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("plays: shipper: %s", sqlite3_errmsg(s->db));
		return -EIO;
	}
	return n;
full:
	/* Cannot happen with the caps on a play's fields; ship what fits. */
	sqlite3_finalize(st);
	return n ? n : -EIO;
}

/* Sends a batch in one transaction. 0, -ENOTCONN or -EIO. */
static int ship(PGconn *c, const buf_t *b)
{
	PGresult *res;
	int rc = -EIO;

	if (pg_exec(c, "plays", "BEGIN") < 0 ||
	    pg_exec(c, "plays",
		    "CREATE TEMP TABLE IF NOT EXISTS plays_in (LIKE plays) ON COMMIT DELETE ROWS") <
		    0)
		goto out;
	res = PQexec(c, "COPY plays_in (event_id, track_id, started_at, ms_played, location, zone,"
			" device, offline, received_at, node) FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		log_error("plays: shipper: COPY: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (PQputCopyData(c, b->data, (int)b->len) != 1 || PQputCopyEnd(c, NULL) != 1)
		goto out;
	res = PQgetResult(c);
	if (!pg_ok(res)) {
		log_error("plays: shipper: COPY: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	if (pg_exec(c, "plays",
		    "INSERT INTO plays SELECT * FROM plays_in ON CONFLICT (event_id) DO NOTHING") <
		    0 ||
	    pg_exec(c, "plays", "COMMIT") < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		if (pg_lost(c, NULL))
			return -ENOTCONN;
		pg_exec(c, "plays", "ROLLBACK");
	}
	return rc;
}

static int forget(struct plays_shipper *s, int64_t last_id)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM plays WHERE id <= ?", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_bind_int64(st, 1, last_id) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		log_error("plays: shipper: cannot drop shipped rows: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return rc;
}

static int64_t queued(struct plays_shipper *s)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM plays", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Sleeps ms; false when the shipper is stopping (then an idle queue or a
 * refusing PostgreSQL ends it). */
static bool nap(struct plays_shipper *s, int ms)
{
	struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};

	if (__atomic_load_n(&s->drain_until_ms, __ATOMIC_ACQUIRE))
		return false;
	return poll(&p, 1, ms) == 0;
}

static bool out_of_time(struct plays_shipper *s)
{
	int64_t until = __atomic_load_n(&s->drain_until_ms, __ATOMIC_ACQUIRE);

	return until && mono_ms() >= until;
}

static void *shipper_main(void *arg)
{
	struct plays_shipper *s = arg;
	PGconn *c = NULL;
	buf_t b;
	char err[512];
	int backoff = 100, n;
	int64_t last_id = 0;
	bool warned = false;

	buf_init(&b, (size_t)64 << 20);
	while (!out_of_time(s)) {
		n = read_batch(s, &b, &last_id);
		pthread_mutex_lock(&s->lock);
		s->stats.queued = n == SHIP_BATCH ? queued(s) : n > 0 ? n : 0;
		pthread_mutex_unlock(&s->lock);
		if (n <= 0) {
			if (!nap(s, IDLE_MS))
				break;
			continue;
		}
		if (!c) {
			c = pg_connect(s->conninfo, err, sizeof(err));
			pthread_mutex_lock(&s->lock);
			s->stats.connected = c != NULL;
			pthread_mutex_unlock(&s->lock);
			if (!c) {
				if (!warned)
					log_warn("plays: shipper: %s; plays stay queued on this "
						 "node",
						 err);
				warned = true;
				if (!nap(s, backoff))
					break;
				backoff =
					backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			if (warned)
				log_info("plays: shipper: connected to PostgreSQL again");
			warned = false;
			backoff = 100;
		}
		if (ship(c, &b) < 0) {
			/* Lost or refused: a new connection next time, after a pause. */
			PQfinish(c);
			c = NULL;
			pthread_mutex_lock(&s->lock);
			s->stats.connected = false;
			pthread_mutex_unlock(&s->lock);
			if (!nap(s, backoff))
				break;
			continue;
		}
		if (forget(s, last_id) < 0 && !nap(s, 1000))
			break;
		pthread_mutex_lock(&s->lock);
		s->stats.shipped += (uint64_t)n;
		s->stats.batches++;
		pthread_mutex_unlock(&s->lock);
	}
	PQfinish(c);
	buf_free(&b);
	return NULL;
}

/* Frees s, its thread stopped (or never started). */
static void shipper_free(struct plays_shipper *s)
{
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->conninfo);
	free(s->node);
	free(s);
}

int plays_shipper_start(const char *data_dir, const char *conninfo, const char *node,
			plays_shipper_t **out, char *err, size_t errlen)
{
	struct plays_shipper *s = xcalloc(1, sizeof(*s));
	int rc;

	s->conninfo = xstrdup(conninfo);
	s->node = xstrdup(node);
	pthread_mutex_init(&s->lock, NULL);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	if ((rc = plays_db_open(data_dir, &s->db, err, errlen)) < 0)
		goto fail;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "plays: shipper: pipe: %s", strerror(errno));
		goto fail;
	}
	if (thread_start(&s->thread, shipper_main, s) != 0) {
		rc = -EAGAIN;
		snprintf(err, errlen, "plays: cannot start the shipper");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	shipper_free(s);
	return rc;
}

void plays_shipper_stats(plays_shipper_t *s, struct plays_ship_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void plays_shipper_stop(plays_shipper_t *s, int timeout_ms)
{
	if (!s)
		return;
	__atomic_store_n(&s->drain_until_ms, mono_ms() + (timeout_ms > 0 ? timeout_ms : 0) + 1,
			 __ATOMIC_RELEASE);
	if (write(s->stop_pipe[1], "x", 1) < 0)
		log_warn("plays: cannot wake the shipper: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	shipper_free(s);
}
