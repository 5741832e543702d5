#ifndef CHORUS_CATALOG_DB_H
#define CHORUS_CATALOG_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The catalog database file, DATA_DIR/catalog.db (SQLite, WAL). In a single
 * node it is the source of truth; in a cluster it is each node's read model.
 * catalog_db_open creates or upgrades the schema (versioned by
 * PRAGMA user_version) when writable is true.
 */
int catalog_db_open(const char *path, bool writable, sqlite3 **out, char *err, size_t errlen);

/*
 * Creates or upgrades the schema on an open connection, in one transaction
 * (BEGIN IMMEDIATE: two processes opening a new catalog at once create it
 * once). A new database is first made at version 1 (the catalog tables)
 * and then upgraded, so a caller may fill the tables of a version-1
 * database and let the upgrade build the search index over them in bulk
 * (the replica's bootstrap does). 0, or -errno with a message in err.
 */
int catalog_db_migrate(sqlite3 *db, char *err, size_t errlen);
/* Creates the version-1 tables in an empty database, and the principals'
 * of version 4, the ingest runs' of version 5 and catalog editing's of
 * version 7 (the tracks' columns it adds: a replica bootstrap copies them
 * too), without their indexes (no search index either);
 * catalog_db_index_base adds version 1's once the tables are filled, the
 * upgrade those of the later versions. */
int catalog_db_create_base(sqlite3 *db, char *err, size_t errlen);
int catalog_db_index_base(sqlite3 *db, char *err, size_t errlen);

/* The schema version this binary writes. */
#define CATALOG_SCHEMA_VERSION 8

#endif
