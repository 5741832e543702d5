#ifndef CHORUS_SQL_SQLITE_H
#define CHORUS_SQL_SQLITE_H

#include <sqlite3.h>
#include <stddef.h>

/*
 * Opening a SQLite file, the one way every database of chorus is opened
 * (the catalog, its read model and bootstrap file, plays.db, and the
 * read-only looks of `chorus cluster token`): open with flags, extended
 * result codes on, a busy timeout, the connection's pragmas, then the
 * caller's setup (its schema migration). On failure nothing stays open.
 */

/* A setup step on the open connection: 0, or -errno with a message in err. */
typedef int (*sql_sqlite_init_fn)(sqlite3 *db, void *arg, char *err, size_t errlen);

struct sql_sqlite_open {
	const char *what;        /* names the database in messages ("catalog") */
	int flags;               /* SQLITE_OPEN_* */
	int busy_ms;             /* how long to wait for another connection's lock; 0: not at all */
	const char *pragmas;     /* run first (any SQL without results), or NULL */
	sql_sqlite_init_fn init; /* then this (a migration), or NULL */
	void *arg;               /* init's */
};

/* 0, or -errno with a message in err ("cannot open WHAT PATH: ..."). */
int sql_sqlite_open(const char *path, const struct sql_sqlite_open *o, sqlite3 **out, char *err,
		    size_t errlen);

/* Runs sql (no results wanted); 0, or -EIO with "WHAT: message" in err. */
int sql_sqlite_exec(sqlite3 *db, const char *what, const char *sql, char *err, size_t errlen);

/* PRAGMA user_version, or -1 (the error is db's). */
int sql_sqlite_user_version(sqlite3 *db);

/* Brings a database of schema version from (0: empty) to the caller's
 * current one, inside sql_sqlite_migrate's transaction. */
typedef int (*sql_sqlite_upgrade_fn)(sqlite3 *db, int from, void *arg, char *err, size_t errlen);

/*
 * Schema versions by PRAGMA user_version. A database already at version is
 * left alone without taking the write lock (a reader opening the file does
 * not wait for a writer); otherwise, in one BEGIN IMMEDIATE transaction
 * (two processes opening a new file at once create it once), the version
 * is read again, up runs from it, and user_version becomes version. A
 * newer version is refused (-EPROTO). 0, or -errno with a message in err.
 */
int sql_sqlite_migrate(sqlite3 *db, const char *what, int version, sql_sqlite_upgrade_fn up,
		       void *arg, char *err, size_t errlen);

#endif
