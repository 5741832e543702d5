#ifndef CHORUS_SQL_SCHEMA_H
#define CHORUS_SQL_SCHEMA_H

#include <stddef.h>

#include "sql/sql.h"

/*
 * The catalog's tables, defined once for both dialects: the SQLite
 * catalog (catalog/db.c, schema version 1) and the PostgreSQL one
 * (sql/pg.c) are rendered from this, and the replica copies the feed
 * tables' columns by these lists (catalog/replica.c).
 *
 * A small type vocabulary, rendered per dialect so that the meaning of a
 * column is the same in both: int64 is SQLite INTEGER / bigint, int is
 * INTEGER / integer, text is TEXT / text, blob is BLOB / bytea. An int64
 * PRIMARY KEY stays INTEGER PRIMARY KEY in SQLite: the rowid.
 */

enum sql_type { SQL_INT64, SQL_INT, SQL_TEXT, SQL_BLOB };

enum {
	SQL_PRIMARY_KEY = 1 << 0,
	SQL_NOT_NULL = 1 << 1,
	SQL_UNIQUE = 1 << 2,
};

struct sql_column {
	const char *name;
	enum sql_type type;
	unsigned flags;
	const char *references; /* "artists(id)", or NULL */
};

struct sql_table {
	const char *name;
	const struct sql_column *cols;
	int ncols;
	const char *constraint; /* a table constraint, or NULL */
	/* A change-feed table's key column, NULL for the others. PostgreSQL
	 * numbers every change of a feed table (a seq column, triggers; see
	 * sql/pg.c) and the replica copies these tables by their columns. */
	const char *feed_key;
};

extern const struct sql_table sql_catalog_tables[];
extern const size_t sql_catalog_ntables;

/* The table named name, or NULL. */
const struct sql_table *sql_catalog_table(const char *name);

/* CREATE TABLE statements of every catalog table (PostgreSQL's feed
 * tables with their seq column), ';'-separated: malloc'd, the caller
 * frees it. */
char *sql_schema_tables(enum sql_dialect d);
/* Their CREATE INDEX statements for d (PostgreSQL's include one on each
 * feed table's seq). Apart from the tables so that a bulk load can build
 * them after its rows. malloc'd. */
char *sql_schema_indexes(enum sql_dialect d);
/* "col1, col2, ..." of t, in order; malloc'd. */
char *sql_schema_columns(const struct sql_table *t);

#endif
