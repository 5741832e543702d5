/*
 * Resumable uploads' rows (uploads.h), written once for both dialects
 * over sql/sql.h. Every change is one transaction; the commit is a write
 * transaction, so it serializes with every other writer of the source of
 * truth and its check (received is still where the parts begin) cannot be
 * overtaken.
 */
#include "store/uploads.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"
#include "store/store_int.h"
#include "util/clock.h"
#include "util/xalloc.h"

struct upload_store {
	sql_t *db;
	pthread_mutex_t lock; /* one connection: one call at a time */
};

static int tx(upload_store_t *s, bool write, sql_tx_fn fn, void *arg)
{
	int rc;

	if (!s)
		return -EIO; /* not connected (uploads/uploads.c opens it when it can) */
	pthread_mutex_lock(&s->lock);
	rc = sql_tx(s->db, write, fn, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int upload_store_open(const char *data_dir, const char *conninfo, upload_store_t **out, char *err,
		      size_t errlen)
{
	upload_store_t *s = xcalloc(1, sizeof(*s));
	int rc;

	rc = store__source_open(data_dir, conninfo, NULL, &s->db, err, errlen);
	if (rc < 0) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void upload_store_close(upload_store_t *s)
{
	if (!s)
		return;
	sql_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- create, get ---- */

struct create_op {
	const struct upload_row *r;
	int max_unfinished;
};

static int create_op(sql_t *db, void *arg)
{
	struct create_op *o = arg;
	const struct upload_row *r = o->r;
	sql_stmt_t *st = sql_prepare(db, "SELECT count(*) FROM uploads"
					 " WHERE owner = ?1 AND state = 'receiving'");
	int rc;

	sql_bind_text(st, 1, r->owner);
	rc = sql_step(st);
	if (rc == SQL_ROW && sql_column_int64(st, 0) >= o->max_unfinished)
		rc = -EDQUOT;
	sql_finalize(st);
	if (rc < 0)
		return rc;
	st = sql_prepare(db, "INSERT INTO uploads (id, owner, filename, metadata, length, received,"
			     " state, created_at, updated_at, expires_at)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, 0, 'receiving', ?6, ?6, ?7)");
	sql_bind_text(st, 1, r->id);
	sql_bind_text(st, 2, r->owner);
	sql_bind_text(st, 3, r->filename);
	sql_bind_text(st, 4, r->metadata);
	sql_bind_int(st, 5, (int64_t)r->length);
	sql_bind_int(st, 6, r->created_at);
	sql_bind_int(st, 7, r->expires_at);
	return sql_run(st);
}

int upload_store_create(upload_store_t *s, const struct upload_row *r, int max_unfinished)
{
	struct create_op o = {r, max_unfinished};

	return tx(s, true, create_op, &o);
}

#define ROW_COLUMNS                                                                                \
	"id, owner, filename, metadata, length, received, state, created_at, updated_at,"          \
	" expires_at, heartbeat_at, node, track_ids, error"

static void read_row(sql_stmt_t *st, struct upload_row *r)
{
	memset(r, 0, sizeof(*r));
	copy(r->id, sizeof(r->id), sql_column_text(st, 0));
	copy(r->owner, sizeof(r->owner), sql_column_text(st, 1));
	copy(r->filename, sizeof(r->filename), sql_column_text(st, 2));
	copy(r->metadata, sizeof(r->metadata), sql_column_text(st, 3));
	r->length = (uint64_t)sql_column_int64(st, 4);
	r->received = (uint64_t)sql_column_int64(st, 5);
	copy(r->state, sizeof(r->state), sql_column_text(st, 6));
	r->created_at = sql_column_int64(st, 7);
	r->updated_at = sql_column_int64(st, 8);
	r->expires_at = sql_column_int64(st, 9);
	r->heartbeat_at = sql_column_int64(st, 10);
	copy(r->node, sizeof(r->node), sql_column_text(st, 11));
	copy(r->track_ids, sizeof(r->track_ids), sql_column_text(st, 12));
	copy(r->error, sizeof(r->error), sql_column_text(st, 13));
}

struct get_op {
	const char *id;
	struct upload_row *out;
};

static int get_op(sql_t *db, void *arg)
{
	struct get_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT " ROW_COLUMNS " FROM uploads WHERE id = ?1");
	int rc;

	sql_bind_text(st, 1, o->id);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		read_row(st, o->out);
	sql_finalize(st);
	return rc == SQL_ROW ? 0 : rc == SQL_DONE ? -ENOENT : rc;
}

int upload_store_get(upload_store_t *s, const char *id, struct upload_row *out)
{
	struct get_op o = {id, out};

	return tx(s, false, get_op, &o);
}

/* ---- parts ---- */

struct part_op {
	const char *id;
	const struct upload_part *parts;
	size_t n;
	int64_t expires_at;
	uint64_t received;
	bool complete;
};

static int part_begin_op(sql_t *db, void *arg)
{
	struct part_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO upload_parts (object, upload_id, pos, len,"
					 " seal_key, committed) VALUES (?1, ?2, ?3, ?4, ?5, 0)");

	sql_bind_text(st, 1, o->parts->object);
	sql_bind_text(st, 2, o->id);
	sql_bind_int(st, 3, (int64_t)o->parts->pos);
	sql_bind_int(st, 4, (int64_t)o->parts->len);
	sql_bind_blob(st, 5, o->parts->key, SEAL_KEY_LEN);
	return sql_run(st);
}

int upload_store_part_begin(upload_store_t *s, const char *id, const struct upload_part *p)
{
	struct part_op o = {.id = id, .parts = p, .n = 1};

	return tx(s, true, part_begin_op, &o);
}

static int commit_op(sql_t *db, void *arg)
{
	struct part_op *o = arg;
	sql_stmt_t *st;
	int64_t length = 0, received = 0;
	uint64_t end;
	int rc;

	o->received = 0;
	o->complete = false;
	st = sql_prepare(db, "SELECT length, received FROM uploads"
			     " WHERE id = ?1 AND state = 'receiving'");
	sql_bind_text(st, 1, o->id);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		length = sql_column_int64(st, 0);
		received = sql_column_int64(st, 1);
	}
	sql_finalize(st);
	if (rc < 0)
		return rc;
	if (rc == SQL_DONE || o->n == 0 || o->parts[0].pos != (uint64_t)received)
		return -ESTALE;
	end = (uint64_t)received;
	for (size_t i = 0; i < o->n; i++) {
		if (o->parts[i].pos != end)
			return -ESTALE;
		end += o->parts[i].len;
	}
	if (end > (uint64_t)length)
		return -ESTALE;
	for (size_t i = 0; i < o->n && rc >= 0; i++) {
		st = sql_prepare(db, "UPDATE upload_parts SET committed = 1 WHERE object = ?1");
		sql_bind_text(st, 1, o->parts[i].object);
		rc = sql_run(st);
	}
	if (rc < 0)
		return rc;
	o->received = end;
	o->complete = end == (uint64_t)length;
	st = sql_prepare(db, "UPDATE uploads SET received = ?1, expires_at = ?2, updated_at = ?3,"
			     " state = ?4 WHERE id = ?5");
	sql_bind_int(st, 1, (int64_t)end);
	sql_bind_int(st, 2, o->expires_at);
	sql_bind_int(st, 3, wall_ms());
	sql_bind_text(st, 4, o->complete ? "queued" : "receiving");
	sql_bind_text(st, 5, o->id);
	return sql_run(st);
}

int upload_store_commit(upload_store_t *s, const char *id, const struct upload_part *parts,
			size_t n, int64_t expires_at, uint64_t *received, bool *complete)
{
	struct part_op o = {.id = id, .parts = parts, .n = n, .expires_at = expires_at};
	int rc = tx(s, true, commit_op, &o);

	*received = o.received;
	*complete = o.complete;
	return rc;
}

struct parts_op {
	const char *id;
	bool committed_only;
	struct upload_part *parts;
	size_t n, cap;
};

static int parts_op(sql_t *db, void *arg)
{
	struct parts_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT object, pos, len, seal_key FROM upload_parts"
					 " WHERE upload_id = ?1 AND (committed = 1 OR ?2 = 0)"
					 " ORDER BY pos, committed DESC");
	int rc;

	o->n = 0; /* a retried fn starts over */
	sql_bind_text(st, 1, o->id);
	sql_bind_int(st, 2, o->committed_only);
	while ((rc = sql_step(st)) == SQL_ROW) {
		struct upload_part *p;
		size_t klen;
		const void *key = sql_column_blob(st, 3, &klen);

		if (o->n == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 16;
			o->parts = xrealloc(o->parts, o->cap * sizeof(*o->parts));
		}
		p = &o->parts[o->n++];
		memset(p, 0, sizeof(*p));
		copy(p->object, sizeof(p->object), sql_column_text(st, 0));
		p->pos = (uint64_t)sql_column_int64(st, 1);
		p->len = (uint64_t)sql_column_int64(st, 2);
		if (key && klen == SEAL_KEY_LEN)
			memcpy(p->key, key, SEAL_KEY_LEN);
	}
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

int upload_store_parts(upload_store_t *s, const char *id, bool committed_only,
		       struct upload_part **out, size_t *n)
{
	struct parts_op o = {.id = id, .committed_only = committed_only};
	int rc = tx(s, false, parts_op, &o);

	if (rc < 0) {
		free(o.parts);
		o.parts = NULL;
		o.n = 0;
	}
	*out = o.parts;
	*n = o.n;
	return rc;
}

static int forget_op(sql_t *db, void *arg)
{
	struct part_op *o = arg;
	int rc = 0;

	for (size_t i = 0; i < o->n && rc >= 0; i++) {
		sql_stmt_t *st = sql_prepare(db, "DELETE FROM upload_parts WHERE object = ?1");
		sql_bind_text(st, 1, o->parts[i].object);
		rc = sql_run(st);
	}
	return rc;
}

int upload_store_parts_forget(upload_store_t *s, const struct upload_part *parts, size_t n)
{
	struct part_op o = {.parts = parts, .n = n};

	return n ? tx(s, true, forget_op, &o) : 0;
}

/* ---- ingest claims and the end ---- */

struct claim_op {
	const char *id, *node;
	int64_t now, stale_ms;
	bool done;
	const char *track_ids, *error;
	int taken;
};

static int claim_op(sql_t *db, void *arg)
{
	struct claim_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "UPDATE uploads SET state = 'ingesting', node = ?1,"
					 " heartbeat_at = ?2, updated_at = ?2 WHERE id = ?3 AND"
					 " (state = 'queued' OR (state = 'ingesting' AND"
					 " heartbeat_at < ?4))");
	int rc;

	o->taken = 0;
	sql_bind_text(st, 1, o->node);
	sql_bind_int(st, 2, o->now);
	sql_bind_text(st, 3, o->id);
	sql_bind_int(st, 4, o->now - o->stale_ms);
	rc = sql_run(st);
	if (rc < 0)
		return rc;
	/* Taken when the row now says so: one portable way to read the
	 * count of rows the update changed. */
	st = sql_prepare(db, "SELECT count(*) FROM uploads WHERE id = ?1 AND state = 'ingesting'"
			     " AND node = ?2 AND heartbeat_at = ?3");
	sql_bind_text(st, 1, o->id);
	sql_bind_text(st, 2, o->node);
	sql_bind_int(st, 3, o->now);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		o->taken = sql_column_int64(st, 0) > 0;
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

int upload_store_claim(upload_store_t *s, const char *id, const char *node, int64_t now,
		       int64_t stale_ms)
{
	struct claim_op o = {.id = id, .node = node, .now = now, .stale_ms = stale_ms};
	int rc = tx(s, true, claim_op, &o);

	return rc < 0 ? rc : o.taken;
}

static int beat_op(sql_t *db, void *arg)
{
	struct claim_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "UPDATE uploads SET heartbeat_at = ?1 WHERE id = ?2"
					 " AND node = ?3 AND state = 'ingesting'");

	sql_bind_int(st, 1, o->now);
	sql_bind_text(st, 2, o->id);
	sql_bind_text(st, 3, o->node);
	return sql_run(st);
}

int upload_store_beat(upload_store_t *s, const char *id, const char *node, int64_t now)
{
	struct claim_op o = {.id = id, .node = node, .now = now};

	return tx(s, true, beat_op, &o);
}

static int finish_op(sql_t *db, void *arg)
{
	struct claim_op *o = arg;
	sql_stmt_t *st =
		sql_prepare(db, "UPDATE uploads SET state = ?1, track_ids = ?2, error = ?3,"
				" updated_at = ?4 WHERE id = ?5");

	sql_bind_text(st, 1, o->done ? "done" : "failed");
	sql_bind_text(st, 2, o->track_ids && *o->track_ids ? o->track_ids : NULL);
	sql_bind_text(st, 3, o->error && *o->error ? o->error : NULL);
	sql_bind_int(st, 4, o->now);
	sql_bind_text(st, 5, o->id);
	return sql_run(st);
}

int upload_store_finish(upload_store_t *s, const char *id, bool done, const char *track_ids,
			const char *error, int64_t now)
{
	struct claim_op o = {
		.id = id, .now = now, .done = done, .track_ids = track_ids, .error = error};

	return tx(s, true, finish_op, &o);
}

static int remove_op(sql_t *db, void *arg)
{
	const char *id = arg;
	sql_stmt_t *st = sql_prepare(db, "DELETE FROM upload_parts WHERE upload_id = ?1");
	int rc;

	sql_bind_text(st, 1, id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	st = sql_prepare(db, "DELETE FROM uploads WHERE id = ?1");
	sql_bind_text(st, 1, id);
	return sql_run(st);
}

int upload_store_remove(upload_store_t *s, const char *id)
{
	return tx(s, true, remove_op, (void *)id);
}

/* ---- the sweep's work, the list ---- */

struct due_op {
	int64_t now, stale_ms, forget_before;
	size_t max;
	struct upload_due *out;
};

static int due_ids(sql_t *db, const char *sql, int64_t a, size_t max,
		   char (**ids)[UPLOAD_ID_LEN + 1], size_t *n)
{
	sql_stmt_t *st = sql_prepare(db, sql);
	int rc;

	*n = 0;
	sql_bind_int(st, 1, a);
	sql_bind_int(st, 2, (int64_t)max);
	while ((rc = sql_step(st)) == SQL_ROW) {
		if (!*ids)
			*ids = xcalloc(max, sizeof(**ids));
		copy((*ids)[(*n)++], UPLOAD_ID_LEN + 1, sql_column_text(st, 0));
	}
	sql_finalize(st);
	return rc < 0 ? rc : 0;
}

static int due_op(sql_t *db, void *arg)
{
	struct due_op *o = arg;
	struct upload_due *d = o->out;
	int rc;

	rc = due_ids(db,
		     "SELECT id FROM uploads WHERE state = 'queued' OR (state = 'ingesting'"
		     " AND heartbeat_at < ?1) ORDER BY updated_at LIMIT ?2",
		     o->now - o->stale_ms, o->max, &d->ingest, &d->ningest);
	if (rc == 0)
		rc = due_ids(db,
			     "SELECT id FROM uploads WHERE state = 'receiving' AND expires_at < ?1"
			     " ORDER BY expires_at LIMIT ?2",
			     o->now, o->max, &d->expired, &d->nexpired);
	if (rc == 0)
		rc = due_ids(db,
			     "SELECT id FROM uploads WHERE state IN ('done', 'failed')"
			     " AND updated_at < ?1 ORDER BY updated_at LIMIT ?2",
			     o->forget_before, o->max, &d->forget, &d->nforget);
	return rc;
}

int upload_store_due(upload_store_t *s, int64_t now, int64_t stale_ms, int64_t forget_before,
		     size_t max, struct upload_due *out)
{
	struct due_op o = {now, stale_ms, forget_before, max, out};

	memset(out, 0, sizeof(*out));
	return tx(s, false, due_op, &o);
}

void upload_due_free(struct upload_due *d)
{
	free(d->ingest);
	free(d->expired);
	free(d->forget);
	memset(d, 0, sizeof(*d));
}

struct list_op {
	const char *owner;
	int limit;
	int (*fn)(void *ud, const struct upload_row *r);
	void *ud;
};

static int list_op(sql_t *db, void *arg)
{
	struct list_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT " ROW_COLUMNS " FROM uploads"
					 " WHERE owner = ?1 OR CAST(?1 AS TEXT) IS NULL"
					 " ORDER BY created_at DESC, id LIMIT ?2");
	struct upload_row *r = xmalloc(sizeof(*r));
	int rc, stop = 0;

	sql_bind_text(st, 1, o->owner);
	sql_bind_int(st, 2, o->limit);
	while ((rc = sql_step(st)) == SQL_ROW) {
		read_row(st, r);
		if ((stop = o->fn(o->ud, r)) != 0)
			break;
	}
	sql_finalize(st);
	free(r);
	return stop ? stop : rc < 0 ? rc : 0;
}

int upload_store_list(upload_store_t *s, const char *owner, int limit,
		      int (*fn)(void *ud, const struct upload_row *r), void *ud)
{
	struct list_op o = {owner, limit, fn, ud};

	return tx(s, false, list_op, &o);
}
