#ifndef CHORUS_SQL_SQL_H
#define CHORUS_SQL_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;

/* The two SQL dialects chorus speaks: SQLite (a node's own catalog.db,
 * the source of truth on a single node) and PostgreSQL (a cluster's). */
enum sql_dialect { SQL_SQLITE, SQL_PG };

/*
 * A thin statement driver over both dialects, so that rules written once,
 * in SQL both accept, run on either (the ingest store, store/store.c).
 *
 * SQL is written with SQLite's numbered placeholders, ?1, ?2, ... (a bare
 * ? is the next number, as in SQLite); the PostgreSQL driver rewrites them
 * to $1, $2, ... and sends every value as text (blobs as binary), so the
 * server infers each parameter's type from where it stands: write
 * CAST(?N AS type) where it cannot (IS NOT DISTINCT FROM ?N).
 *
 * A connection serves one thread at a time: sql_tx takes its mutex, and
 * every statement runs inside an sql_tx's fn.
 *
 * Errors: 0 or SQL_ROW/SQL_DONE on success, -EIO for an error (logged
 * with the statement), -ENOTCONN when the PostgreSQL connection was lost
 * (logged once; sql_tx retries the whole fn on a new connection).
 */
typedef struct sql sql_t;
typedef struct sql_stmt sql_stmt_t;

/* Wraps an open SQLite connection (SQLITE_OPEN_NOMUTEX is fine: sql_tx
 * serializes); sql_close closes it. */
sql_t *sql_sqlite_adopt(struct sqlite3 *db);

/*
 * Connects to PostgreSQL with pg_connect (the schema made or upgraded).
 * With run not NULL, every connection it opens (the first and each one
 * after a loss) first takes run's session advisory lock, held for as long
 * as the session lives, so that other sessions can tell the run is alive
 * (sql_run_alive). The first connection is not retried: a wrong string or
 * a database that is down is reported at once. 0, or -EIO with err.
 */
int sql_pg_open(const char *conninfo, const char *run, sql_t **out, char *err, size_t errlen);

void sql_close(sql_t *db);

enum sql_dialect sql_dialect(const sql_t *db);

/* The SQLite connection under db (NULL for PostgreSQL), for a step only
 * one dialect has; only inside sql_tx. */
struct sqlite3 *sql_sqlite_handle(sql_t *db);

/*
 * An SQL boolean expression, true when the run named by the row's column
 * `run` is alive. PostgreSQL: some session holds that run's lock (see
 * sql_pg_open). SQLite: false, as only one process writes a catalog.db at
 * a time (DATA/ingest.lock), so any other run has ended.
 */
const char *sql_run_alive(const sql_t *db);

/* ---- statements ---- */

#define SQL_ROW 1
#define SQL_DONE 0

/* NULL on an error (logged). Every other call accepts a NULL statement
 * and fails with -EIO, so a sequence needs one check, at the end. */
sql_stmt_t *sql_prepare(sql_t *db, const char *sql);

/* Bind parameter i (1-based); the value is copied. A NULL text binds
 * NULL. 0, or -ERANGE for an i the statement has not, or -EIO. */
int sql_bind_text(sql_stmt_t *st, int i, const char *v);
int sql_bind_int(sql_stmt_t *st, int i, int64_t v);
/* 0 binds NULL: the tags' "unknown". */
int sql_bind_int_or_null(sql_stmt_t *st, int i, int64_t v);
int sql_bind_blob(sql_stmt_t *st, int i, const void *p, size_t n);
int sql_bind_null(sql_stmt_t *st, int i);

/* SQL_ROW with the next row current, SQL_DONE, -EIO or -ENOTCONN. */
int sql_step(sql_stmt_t *st);

/* Columns of the current row (0-based). Values stay valid until the next
 * step or the finalize. NULL reads as 0, or as a NULL pointer. */
int64_t sql_column_int64(sql_stmt_t *st, int col);
const char *sql_column_text(sql_stmt_t *st, int col);
const void *sql_column_blob(sql_stmt_t *st, int col, size_t *len);
bool sql_column_is_null(sql_stmt_t *st, int col);

void sql_finalize(sql_stmt_t *st);

/* Steps st to its end (rows ignored) and finalizes it: 0 or the error. */
int sql_run(sql_stmt_t *st);
/* sql_run of a statement without parameters. */
int sql_exec(sql_t *db, const char *sql);

/* ---- transactions ---- */

typedef int (*sql_tx_fn)(sql_t *db, void *arg);

/*
 * Runs fn under db's mutex. With write, as one write transaction that
 * serializes with every other catalog writer: SQLite's BEGIN IMMEDIATE;
 * PostgreSQL's BEGIN and the transaction advisory lock PG_LOCK_CATALOG
 * (which also orders the change feed, see sql/pg.c). It commits when fn
 * returns 0 and rolls back otherwise. Without write, fn's statements
 * run each on its own.
 *
 * PostgreSQL: when fn fails with -ENOTCONN the connection is reopened and
 * fn run again, whole, for up to 60 s, so fn must start from scratch each
 * time (reset its outputs, redo its random choices). Returns fn's result,
 * or -EIO (the commit failed, or no connection within the 60 s).
 */
int sql_tx(sql_t *db, bool write, sql_tx_fn fn, void *arg);

/* From now on, a transaction waiting for PostgreSQL to come back gives up
 * (-EIO) at its next try, within a second or so: a stopping node must
 * not wait a minute for a database that is down. Any thread; for good. */
void sql_stop_waiting(void);

#endif
