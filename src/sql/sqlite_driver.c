/*
 * The statement driver on SQLite (see sql.h): statements are SQLite's
 * own, a write transaction is BEGIN IMMEDIATE (the file's write lock,
 * taken up front so two writers never deadlock upgrading a read), and
 * nothing is ever lost to reconnect.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "sql/driver.h"
#include "util/log.h"
#include "util/xalloc.h"

struct sqlite_db {
	struct sql base;
	sqlite3 *db;
};

struct sqlite_stmt {
	struct sql_stmt base;
	sqlite3_stmt *st;
};

static sqlite3 *conn(sql_stmt_t *st)
{
	return ((struct sqlite_db *)st->db)->db;
}

static sqlite3_stmt *raw(sql_stmt_t *st)
{
	return ((struct sqlite_stmt *)st)->st;
}

static sql_stmt_t *sq_prepare(sql_t *base, const char *sql)
{
	struct sqlite_db *db = (struct sqlite_db *)base;
	struct sqlite_stmt *s;
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("sqlite: %s: %s", sqlite3_errmsg(db->db), sql);
		sqlite3_finalize(st);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->base.db = base;
	s->st = st;
	return &s->base;
}

static int sq_bind(sql_stmt_t *st, int i, const struct sql_value *v)
{
	int rc;

	switch (v->kind) {
	case SQL_V_INT:
		rc = sqlite3_bind_int64(raw(st), i, v->i);
		break;
	case SQL_V_TEXT:
		rc = sqlite3_bind_text(raw(st), i, v->p, -1, SQLITE_TRANSIENT);
		break;
	case SQL_V_BLOB:
		rc = sqlite3_bind_blob64(raw(st), i, v->p, v->n, SQLITE_TRANSIENT);
		break;
	default:
		rc = sqlite3_bind_null(raw(st), i);
		break;
	}
	if (rc == SQLITE_OK)
		return 0;
	return rc == SQLITE_RANGE ? -ERANGE : -EIO;
}

static int sq_step(sql_stmt_t *st)
{
	int rc = sqlite3_step(raw(st));

	if (rc == SQLITE_ROW)
		return SQL_ROW;
	if (rc == SQLITE_DONE)
		return SQL_DONE;
	log_error("sqlite: %s: %s", sqlite3_errmsg(conn(st)), sqlite3_sql(raw(st)));
	return -EIO;
}

static int64_t sq_column_int64(sql_stmt_t *st, int col)
{
	return sqlite3_column_int64(raw(st), col);
}

static const char *sq_column_text(sql_stmt_t *st, int col)
{
	if (sqlite3_column_type(raw(st), col) == SQLITE_NULL)
		return NULL;
	return (const char *)sqlite3_column_text(raw(st), col);
}

static const void *sq_column_blob(sql_stmt_t *st, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(raw(st), col);

	*len = (size_t)sqlite3_column_bytes(raw(st), col);
	return p;
}

static bool sq_column_is_null(sql_stmt_t *st, int col)
{
	return sqlite3_column_type(raw(st), col) == SQLITE_NULL;
}

static void sq_finalize(sql_stmt_t *st)
{
	sqlite3_finalize(raw(st));
	free(st);
}

static int sq_tx(sql_t *base, bool write, sql_tx_fn fn, void *arg)
{
	struct sqlite_db *db = (struct sqlite_db *)base;
	int rc;

	if (!write)
		return fn(base, arg);
	if ((rc = sql_exec(base, "BEGIN IMMEDIATE")) < 0)
		return rc;
	rc = fn(base, arg);
	if (rc == 0 && sql_exec(base, "COMMIT") < 0)
		rc = -EIO;
	/* A failed COMMIT can leave the transaction open: never carry it
	 * into the next one. */
	if (rc < 0 && !sqlite3_get_autocommit(db->db))
		sql_exec(base, "ROLLBACK");
	return rc;
}

static void sq_close(sql_t *base)
{
	struct sqlite_db *db = (struct sqlite_db *)base;

	sqlite3_close(db->db);
	free(db);
}

static const struct sql_driver sqlite_driver = {
	.dialect = SQL_SQLITE,
	.run_alive = "FALSE",
	.prepare = sq_prepare,
	.bind = sq_bind,
	.step = sq_step,
	.column_int64 = sq_column_int64,
	.column_text = sq_column_text,
	.column_blob = sq_column_blob,
	.column_is_null = sq_column_is_null,
	.finalize = sq_finalize,
	.tx = sq_tx,
	.close = sq_close,
};

sql_t *sql_sqlite_adopt(sqlite3 *handle)
{
	struct sqlite_db *db = xcalloc(1, sizeof(*db));

	sql__init(&db->base, &sqlite_driver);
	db->db = handle;
	return &db->base;
}

sqlite3 *sql_sqlite_handle(sql_t *db)
{
	return db->drv == &sqlite_driver ? ((struct sqlite_db *)db)->db : NULL;
}
