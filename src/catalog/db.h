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

/* The schema version this binary writes. */
#define CATALOG_SCHEMA_VERSION 3

#endif
