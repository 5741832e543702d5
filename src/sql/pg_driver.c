/*
 * The statement driver on PostgreSQL (see sql.h).
 *
 * A statement is its SQL with ?N rewritten to $N and its parameters,
 * copied as they are bound (values as text, blobs as binary); the first
 * step sends it with PQexecParams and the steps walk the rows of the one
 * result. Results come as text: integers are parsed, bytea is unescaped
 * when read as a blob.
 *
 * The connection is reopened when lost (a failover): a statement that
 * finds it gone fails with -ENOTCONN without sending anything, and sql_tx
 * runs its fn again, whole, on a new connection for up to RECONNECT_S.
 * Write transactions take PG_LOCK_CATALOG, which serializes them exactly
 * as SQLite's BEGIN IMMEDIATE does on one host, and orders the change
 * feed (sql/pg.c).
 *
 * A run holds a session advisory lock named after its id, (RUN_LOCK_CLASS,
 * hashtext(run)), taken on each connection: sql_run_alive asks pg_locks
 * whether some session holds it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sql/driver.h"
#include "sql/pg.h"
#include "util/log.h"
#include "util/xalloc.h"

#define RECONNECT_S 60 /* a Patroni failover takes about 10 s */
#define STR_(x) #x
#define STR(x) STR_(x)
/* Runs: advisory locks (class, hashtext(run)); the class is "chr". */
#define RUN_LOCK_CLASS 6514802
#define BYTEA_OID 17
#define LOCK_CATALOG_SQL "SELECT pg_advisory_xact_lock(" STR(PG_LOCK_CATALOG) ")"

struct pg_db {
	struct sql base;
	char *conninfo;
	char *run; /* NULL: no run lock */
	PGconn *conn;
	bool lost; /* the last statement lost the connection */
};

struct pg_stmt {
	struct sql_stmt base;
	char *sql; /* with $N */
	int nparams;
	char **val;
	int *len, *fmt;
	PGresult *res;
	int row; /* the current one; -1 before the first */
	int err; /* the failure of the first step, returned again after */
	bool sent;
	unsigned char **bytea; /* unescaped blobs of the current row, per column */
	size_t *bytea_len;
	int ncols;
};

/* ---- statements ---- */

/*
 * SQLite's placeholders as PostgreSQL's: ?N is $N, a bare ? the number
 * after the largest so far. Quoted strings and identifiers are copied
 * as they are. The number of parameters, or -1 for a number out of range.
 */
static int rewrite(const char *in, char **out)
{
	/* "?" becomes at most "$999". */
	char *o = xmalloc(4 * strlen(in) + 1), *p = o;
	int max = 0;
	long v;

	while (*in) {
		if (*in == '\'' || *in == '"') {
			char q = *in;
			*p++ = *in++;
			while (*in && *in != q)
				*p++ = *in++;
			if (*in)
				*p++ = *in++;
			continue;
		}
		if (*in != '?') {
			*p++ = *in++;
			continue;
		}
		in++;
		if (*in >= '0' && *in <= '9') {
			char *end;
			v = strtol(in, &end, 10);
			in = end;
		} else {
			v = max + 1;
		}
		if (v < 1 || v > 999) {
			free(o);
			return -1;
		}
		if (v > max)
			max = (int)v;
		p += sprintf(p, "$%ld", v);
	}
	*p = '\0';
	*out = o;
	return max;
}

static sql_stmt_t *pg_prepare(sql_t *db, const char *sql)
{
	struct pg_stmt *s = xcalloc(1, sizeof(*s));

	s->nparams = rewrite(sql, &s->sql);
	if (s->nparams < 0) {
		log_error("postgres: bad placeholder in %s", sql);
		free(s);
		return NULL;
	}
	s->base.db = db;
	s->val = xcalloc((size_t)s->nparams + 1, sizeof(*s->val));
	s->len = xcalloc((size_t)s->nparams + 1, sizeof(*s->len));
	s->fmt = xcalloc((size_t)s->nparams + 1, sizeof(*s->fmt));
	s->row = -1;
	return &s->base;
}

static int pg_bind(sql_stmt_t *st, int i, const struct sql_value *v)
{
	struct pg_stmt *s = (struct pg_stmt *)st;
	char num[24];

	if (i < 1 || i > s->nparams)
		return -ERANGE;
	if (s->sent)
		return -EIO;
	i--;
	free(s->val[i]);
	s->val[i] = NULL;
	s->len[i] = s->fmt[i] = 0;
	switch (v->kind) {
	case SQL_V_INT:
		snprintf(num, sizeof(num), "%" PRId64, v->i);
		s->val[i] = xstrdup(num);
		break;
	case SQL_V_TEXT:
		s->val[i] = xstrdup(v->p);
		break;
	case SQL_V_BLOB:
		if (v->n > INT32_MAX)
			return -EIO;
		s->val[i] = xmalloc(v->n ? v->n : 1);
		memcpy(s->val[i], v->p, v->n);
		s->len[i] = (int)v->n;
		s->fmt[i] = 1;
		break;
	default:
		break;
	}
	return 0;
}

static void drop_bytea(struct pg_stmt *s)
{
	for (int c = 0; c < s->ncols; c++) {
		PQfreemem(s->bytea[c]);
		s->bytea[c] = NULL;
	}
}

/* Sends the statement. 0, or -ENOTCONN (db->lost set) or -EIO, logged. */
static int send(struct pg_stmt *s)
{
	struct pg_db *db = (struct pg_db *)s->base.db;
	PGresult *res;

	if (!db->conn || db->lost)
		return -ENOTCONN;
	res = PQexecParams(db->conn, s->sql, s->nparams, NULL, (const char *const *)s->val, s->len,
			   s->fmt, 0);
	if (pg_ok(res)) {
		s->res = res;
		s->ncols = PQnfields(res);
		s->bytea = xcalloc((size_t)s->ncols + 1, sizeof(*s->bytea));
		s->bytea_len = xcalloc((size_t)s->ncols + 1, sizeof(*s->bytea_len));
		return 0;
	}
	if (pg_lost(db->conn, res)) {
		db->lost = true;
		log_warn("postgres: connection lost: %s",
			 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
		PQclear(res);
		return -ENOTCONN;
	}
	log_error("postgres: %s: %s", s->sql, res ? PQresultErrorMessage(res) : "no result");
	PQclear(res);
	return -EIO;
}

static int pg_step(sql_stmt_t *st)
{
	struct pg_stmt *s = (struct pg_stmt *)st;

	if (!s->sent) {
		s->sent = true;
		s->err = send(s);
	}
	if (s->err)
		return s->err;
	drop_bytea(s);
	if (s->row < PQntuples(s->res))
		s->row++;
	return s->row < PQntuples(s->res) ? SQL_ROW : SQL_DONE;
}

/* True when (row, col) is a value of the result. */
static bool have(const struct pg_stmt *s, int col)
{
	return s->res && s->row >= 0 && s->row < PQntuples(s->res) && col >= 0 && col < s->ncols;
}

static int64_t pg_column_int64(sql_stmt_t *st, int col)
{
	struct pg_stmt *s = (struct pg_stmt *)st;

	return have(s, col) ? pg_col_i64(s->res, s->row, col) : 0;
}

static bool pg_column_is_null(sql_stmt_t *st, int col)
{
	struct pg_stmt *s = (struct pg_stmt *)st;

	return !have(s, col) || PQgetisnull(s->res, s->row, col);
}

static const char *pg_column_text(sql_stmt_t *st, int col)
{
	struct pg_stmt *s = (struct pg_stmt *)st;

	return pg_column_is_null(st, col) ? NULL : PQgetvalue(s->res, s->row, col);
}

static const void *pg_column_blob(sql_stmt_t *st, int col, size_t *len)
{
	struct pg_stmt *s = (struct pg_stmt *)st;
	const char *v = pg_column_text(st, col);

	*len = 0;
	if (!v)
		return NULL;
	if (PQftype(s->res, col) != BYTEA_OID) {
		*len = (size_t)PQgetlength(s->res, s->row, col);
		return v;
	}
	if (!s->bytea[col])
		s->bytea[col] = PQunescapeBytea((const unsigned char *)v, &s->bytea_len[col]);
	*len = s->bytea[col] ? s->bytea_len[col] : 0;
	return s->bytea[col];
}

static void pg_finalize(sql_stmt_t *st)
{
	struct pg_stmt *s = (struct pg_stmt *)st;

	if (s->bytea)
		drop_bytea(s);
	free(s->bytea);
	free(s->bytea_len);
	PQclear(s->res);
	for (int i = 0; i < s->nparams; i++)
		free(s->val[i]);
	free(s->val);
	free(s->len);
	free(s->fmt);
	free(s->sql);
	free(s);
}

/* ---- connections and transactions ---- */

/* Opens a connection and takes the run's lock; 0 or -ENOTCONN. */
static int connect_db(struct pg_db *db, char *err, size_t errlen)
{
	char sql[128];

	db->conn = pg_connect(db->conninfo, err, errlen);
	if (!db->conn)
		return -ENOTCONN;
	db->lost = false;
	if (!db->run)
		return 0;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d, hashtext('%s'))", RUN_LOCK_CLASS,
		 db->run);
	if (pg_exec(db->conn, "run lock", sql) < 0) {
		snprintf(err, errlen, "postgres: cannot take the run lock");
		PQfinish(db->conn);
		db->conn = NULL;
		return -ENOTCONN;
	}
	return 0;
}

static atomic_bool stop_waiting;

void sql_stop_waiting(void)
{
	atomic_store(&stop_waiting, true);
}

/* Sleeps ms in steps, false at once when waiting should stop. */
static bool wait_ms(int ms)
{
	for (; ms > 0 && !atomic_load(&stop_waiting); ms -= 100)
		usleep((useconds_t)(ms < 100 ? ms : 100) * 1000);
	return !atomic_load(&stop_waiting);
}

static int pg_tx(sql_t *base, bool write, sql_tx_fn fn, void *arg)
{
	struct pg_db *db = (struct pg_db *)base;
	time_t deadline = time(NULL) + RECONNECT_S;
	int delay_ms = 100, rc;
	char err[512];

	for (;;) {
		if (!db->conn || db->lost) {
			PQfinish(db->conn);
			db->conn = NULL;
			if (connect_db(db, err, sizeof(err)) < 0) {
				if (time(NULL) >= deadline || atomic_load(&stop_waiting)) {
					log_error("postgres: %s", err);
					return -EIO;
				}
				log_warn("postgres: %s; retrying", err);
				if (!wait_ms(delay_ms))
					return -EIO;
				delay_ms = delay_ms < 2000 ? delay_ms * 2 : 2000;
				continue;
			}
		}
		if (write) {
			rc = sql_exec(base, "BEGIN");
			if (rc == 0)
				rc = sql_exec(base, LOCK_CATALOG_SQL);
			if (rc == 0)
				rc = fn(base, arg);
			if (rc == 0)
				rc = sql_exec(base, "COMMIT");
			else if (!db->lost)
				sql_exec(base, "ROLLBACK");
		} else {
			rc = fn(base, arg);
		}
		if (rc != -ENOTCONN)
			return rc;
		if (time(NULL) >= deadline || atomic_load(&stop_waiting))
			return -EIO;
		log_warn("postgres: lost the connection; reconnecting");
	}
}

static void pg_close(sql_t *base)
{
	struct pg_db *db = (struct pg_db *)base;

	PQfinish(db->conn);
	free(db->conninfo);
	free(db->run);
	free(db);
}

static const struct sql_driver pg_driver = {
	.dialect = SQL_PG,
	.run_alive =
		"EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'"
		" AND l.granted AND l.classid = " STR(
			RUN_LOCK_CLASS) "::oid"
					" AND l.objid = hashtext(run)::oid AND l.objsubid = 2)",
	.prepare = pg_prepare,
	.bind = pg_bind,
	.step = pg_step,
	.column_int64 = pg_column_int64,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.column_is_null = pg_column_is_null,
	.finalize = pg_finalize,
	.tx = pg_tx,
	.close = pg_close,
};

int sql_pg_open(const char *conninfo, const char *run, sql_t **out, char *err, size_t errlen)
{
	struct pg_db *db = xcalloc(1, sizeof(*db));

	sql__init(&db->base, &pg_driver);
	db->conninfo = xstrdup(conninfo);
	db->run = run ? xstrdup(run) : NULL;
	if (connect_db(db, err, errlen) < 0) {
		sql_close(&db->base);
		return -EIO;
	}
	*out = &db->base;
	return 0;
}
