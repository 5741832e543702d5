#ifndef CHORUS_SQL_DRIVER_H
#define CHORUS_SQL_DRIVER_H

#include <pthread.h>

#include "sql/sql.h"

/*
 * What a dialect implements behind sql.h (sql/sqlite_driver.c,
 * sql/pg_driver.c); sql/sql.c holds what both share. Internal to sql/.
 */

struct sql_value {
	enum { SQL_V_NULL, SQL_V_INT, SQL_V_TEXT, SQL_V_BLOB } kind;
	int64_t i;
	const void *p; /* text (NUL-terminated) or blob */
	size_t n;      /* blob bytes */
};

struct sql_driver {
	enum sql_dialect dialect;
	const char *run_alive;
	sql_stmt_t *(*prepare)(sql_t *db, const char *sql);
	int (*bind)(sql_stmt_t *st, int i, const struct sql_value *v);
	int (*step)(sql_stmt_t *st);
	int64_t (*column_int64)(sql_stmt_t *st, int col);
	const char *(*column_text)(sql_stmt_t *st, int col);
	const void *(*column_blob)(sql_stmt_t *st, int col, size_t *len);
	bool (*column_is_null)(sql_stmt_t *st, int col);
	void (*finalize)(sql_stmt_t *st);
	/* sql_tx's body, under db->lock. */
	int (*tx)(sql_t *db, bool write, sql_tx_fn fn, void *arg);
	void (*close)(sql_t *db);
};

/* The head of each driver's connection and statement. */
struct sql {
	const struct sql_driver *drv;
	pthread_mutex_t lock;
};

struct sql_stmt {
	sql_t *db;
};

/* Sets up the shared head of a new connection. */
void sql__init(sql_t *db, const struct sql_driver *drv);

#endif
