#ifndef CHORUS_SQL_SCHEMA_H
#define CHORUS_SQL_SCHEMA_H

#include <stddef.h>

#include "sql/sql.h"

/*
 * The catalog's tables, defined once for both dialects: the SQLite
 * catalog (catalog/db.c) and the PostgreSQL one (sql/pg.c) are rendered
 * from this, and the replica copies the feed tables' columns by these
 * lists (catalog/replica.c).
 *
 * Tables come in sets, each added by one schema version of each dialect
 * (the dialects number their versions apart, so a set is not a version):
 * SQL_SET_CATALOG is SQLite's version 1 and PostgreSQL's 1,
 * SQL_SET_PRINCIPALS (users, API keys, the audit trail) SQLite's 4 and
 * PostgreSQL's 3, SQL_SET_INGESTS (the record of ingest runs) SQLite's 5
 * and PostgreSQL's 4, SQL_SET_UPLOADS (resumable uploads) SQLite's 6 and
 * PostgreSQL's 5, SQL_SET_EDITS (catalog editing: columns added to tracks,
 * the deleted tracks' tombstones) SQLite's 7 and PostgreSQL's 6,
 * SQL_SET_STORES (locations, zones, playlists, devices) SQLite's 8 and
 * PostgreSQL's 7. A
 * migration creates the tables and indexes of each set its new version
 * adds, on fresh and existing databases alike. A set may also add columns
 * to an older set's table: such a column names its set, CREATE TABLE
 * leaves it out, and the set's migration adds it (ALTER TABLE ... ADD
 * COLUMN), so the table is the same whether it was made fresh or old.
 *
 * A small type vocabulary, rendered per dialect so that the meaning of a
 * column is the same in both: int64 is SQLite INTEGER / bigint, int is
 * INTEGER / integer, text is TEXT / text, blob is BLOB / bytea. An int64
 * PRIMARY KEY stays INTEGER PRIMARY KEY in SQLite: the rowid.
 */

enum sql_type { SQL_INT64, SQL_INT, SQL_TEXT, SQL_BLOB };

enum sql_set {
	SQL_SET_CATALOG = 1,    /* artists, albums, covers, tracks, pending, garbage */
	SQL_SET_PRINCIPALS = 2, /* users, api_keys, audit */
	SQL_SET_INGESTS = 3,    /* ingests, ingest_errors */
	SQL_SET_UPLOADS = 4,    /* uploads, upload_parts */
	SQL_SET_EDITS = 5,      /* tracks.explicit and .edited, deleted_tracks */
	SQL_SET_STORES = 6,     /* locations, zones, playlists, devices */
	SQL_SET_LAST = SQL_SET_STORES,
};

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
	enum sql_set set; /* the set (schema version) that adds it */
};

extern const struct sql_table sql_catalog_tables[];
extern const size_t sql_catalog_ntables;

/* The set that added column col of table (0: the table's own, made by
 * its CREATE TABLE), and its DEFAULT (SQL text, or NULL), which a NOT
 * NULL column added to a table with rows needs. */
enum sql_set sql_column_set(const struct sql_table *t, const struct sql_column *col,
			    const char **def);

/* The table named name, or NULL. */
const struct sql_table *sql_catalog_table(const char *name);

/* CREATE TABLE statements of the tables of set (PostgreSQL's feed tables
 * with their seq column), ';'-separated: malloc'd, the caller frees it.
 * Sets after the first say IF NOT EXISTS (SQLite drops those words from
 * the text it keeps), so a read model's bootstrap file, which has every
 * set's tables from the start, upgrades like any other catalog. */
char *sql_schema_tables(enum sql_dialect d, enum sql_set set);
/* Their CREATE INDEX statements for d (PostgreSQL's include one on each
 * feed table's seq). Apart from the tables so that a bulk load can build
 * them after its rows. malloc'd. */
char *sql_schema_indexes(enum sql_dialect d, enum sql_set set);
/* The ALTER TABLE ... ADD COLUMN statements of the columns set adds to
 * older tables, ';'-separated; PostgreSQL's say IF NOT EXISTS. SQLite has
 * no such words: its migration checks each column first (one statement
 * per column, sql_schema_add_column). malloc'd. */
char *sql_schema_add_columns(enum sql_dialect d, enum sql_set set);
/* The one ALTER TABLE statement adding t's column c; malloc'd. */
char *sql_schema_add_column(enum sql_dialect d, const struct sql_table *t, int c);
/* "col1, col2, ..." of t, in order; malloc'd. */
char *sql_schema_columns(const struct sql_table *t);

#endif
