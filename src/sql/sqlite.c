/*
 * SQLite: opening a file, schema versions, and running SQL for setup.
 *
 * Every SQLite database of chorus is opened here, so each one gets the
 * same treatment: extended result codes (messages name the real cause,
 * SQLITE_IOERR_FSYNC rather than SQLITE_IOERR), a busy timeout chosen by
 * its user, its pragmas, then its own migration, all or nothing.
 */
#include "sql/sqlite.h"

#include <errno.h>
#include <stdio.h>

int sql_sqlite_exec(sqlite3 *db, const char *what, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -EIO;
}

int sql_sqlite_user_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int sql_sqlite_migrate(sqlite3 *db, const char *what, int version, sql_sqlite_upgrade_fn up,
		       void *arg, char *err, size_t errlen)
{
	char sql[64];
	int v, rc;

	if (sql_sqlite_user_version(db) == version)
		return 0;
	if ((rc = sql_sqlite_exec(db, what, "BEGIN IMMEDIATE", err, errlen)) < 0)
		return rc;
	v = sql_sqlite_user_version(db);
	if (v < 0) {
		snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
		rc = -EIO;
	} else if (v > version) {
		snprintf(err, errlen,
			 "%s schema version %d is newer than this chorus understands (%d)", what, v,
			 version);
		rc = -EPROTO;
	} else if (v < version) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
		if ((rc = up(db, v, arg, err, errlen)) == 0)
			rc = sql_sqlite_exec(db, what, sql, err, errlen);
	}
	if (rc == 0)
		return sql_sqlite_exec(db, what, "COMMIT", err, errlen);
	sql_sqlite_exec(db, what, "ROLLBACK", err, 0);
	return rc;
}

int sql_sqlite_open(const char *path, const struct sql_sqlite_open *o, sqlite3 **out, char *err,
		    size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = 0;

	if (sqlite3_open_v2(path, &db, o->flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s %s: %s", o->what, path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_extended_result_codes(db, 1);
	if (o->busy_ms > 0)
		sqlite3_busy_timeout(db, o->busy_ms);
	if (o->pragmas)
		rc = sql_sqlite_exec(db, o->what, o->pragmas, err, errlen);
	if (rc == 0 && o->init)
		rc = o->init(db, o->arg, err, errlen);
	if (rc < 0) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}
