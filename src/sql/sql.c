/*
 * The statement driver's shared part (see sql.h): the calls dispatch to
 * the connection's dialect (sql/sqlite_driver.c, sql/pg_driver.c), and
 * what is the same for both is here once: NULL statements, the "0 is
 * unknown" binding of tags, running a statement to its end, the mutex.
 */
#include "sql/sql.h"

#include <errno.h>
#include <string.h>

#include "sql/driver.h"

void sql__init(sql_t *db, const struct sql_driver *drv)
{
	db->drv = drv;
	pthread_mutex_init(&db->lock, NULL);
}

void sql_close(sql_t *db)
{
	if (!db)
		return;
	pthread_mutex_destroy(&db->lock);
	db->drv->close(db);
}

enum sql_dialect sql_dialect(const sql_t *db)
{
	return db->drv->dialect;
}

const char *sql_run_alive(const sql_t *db)
{
	return db->drv->run_alive;
}

sql_stmt_t *sql_prepare(sql_t *db, const char *sql)
{
	return db->drv->prepare(db, sql);
}

static int bind(sql_stmt_t *st, int i, const struct sql_value *v)
{
	return st ? st->db->drv->bind(st, i, v) : -EIO;
}

int sql_bind_text(sql_stmt_t *st, int i, const char *v)
{
	struct sql_value val = {.kind = v ? SQL_V_TEXT : SQL_V_NULL, .p = v};

	return bind(st, i, &val);
}

int sql_bind_int(sql_stmt_t *st, int i, int64_t v)
{
	struct sql_value val = {.kind = SQL_V_INT, .i = v};

	return bind(st, i, &val);
}

int sql_bind_int_or_null(sql_stmt_t *st, int i, int64_t v)
{
	return v ? sql_bind_int(st, i, v) : sql_bind_null(st, i);
}

int sql_bind_blob(sql_stmt_t *st, int i, const void *p, size_t n)
{
	struct sql_value val = {.kind = SQL_V_BLOB, .p = p, .n = n};

	return bind(st, i, &val);
}

int sql_bind_null(sql_stmt_t *st, int i)
{
	struct sql_value val = {.kind = SQL_V_NULL};

	return bind(st, i, &val);
}

int sql_step(sql_stmt_t *st)
{
	return st ? st->db->drv->step(st) : -EIO;
}

int64_t sql_column_int64(sql_stmt_t *st, int col)
{
	return st ? st->db->drv->column_int64(st, col) : 0;
}

const char *sql_column_text(sql_stmt_t *st, int col)
{
	return st ? st->db->drv->column_text(st, col) : NULL;
}

const void *sql_column_blob(sql_stmt_t *st, int col, size_t *len)
{
	*len = 0;
	return st ? st->db->drv->column_blob(st, col, len) : NULL;
}

bool sql_column_is_null(sql_stmt_t *st, int col)
{
	return st ? st->db->drv->column_is_null(st, col) : true;
}

void sql_finalize(sql_stmt_t *st)
{
	if (st)
		st->db->drv->finalize(st);
}

int sql_run(sql_stmt_t *st)
{
	int rc;

	while ((rc = sql_step(st)) == SQL_ROW)
		;
	sql_finalize(st);
	return rc == SQL_DONE ? 0 : rc;
}

int sql_exec(sql_t *db, const char *sql)
{
	return sql_run(sql_prepare(db, sql));
}

int sql_tx(sql_t *db, bool write, sql_tx_fn fn, void *arg)
{
	int rc;

	pthread_mutex_lock(&db->lock);
	rc = db->drv->tx(db, write, fn, arg);
	pthread_mutex_unlock(&db->lock);
	return rc;
}
