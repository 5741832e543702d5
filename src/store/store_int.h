#ifndef CHORUS_STORE_STORE_INT_H
#define CHORUS_STORE_STORE_INT_H

/*
 * What store.c (ingest's rules), edit.c (a person's edits and deletions),
 * principals.c and uploads.c share; nothing outside src/store/ includes this. Each
 * function runs inside the caller's write transaction.
 */
#include "sql/sql.h"
#include "store/store.h"

struct store {
	sql_t *db;
	char run[33]; /* this process's run id, marks the pending rows it claimed */
	/* Inside a track's write transaction, after its row: NULL for none. */
	int (*track_written)(sql_t *db, const struct track_meta *meta);
	/* store_search_optimize's fn: NULL for none. */
	sql_tx_fn optimize;
};

/* A connection to the source of truth: PostgreSQL when conninfo is set
 * (with run's session lock when run is not NULL, see sql_pg_open), else
 * DATA_DIR/catalog.db, created or upgraded. 0, or -errno with err. */
int store__source_open(const char *data_dir, const char *conninfo, const char *run, sql_t **out,
		       char *err, size_t errlen);

/* Inserts an artist unless one with the same name key exists; *id is its
 * id (derived from the key). */
int store__upsert_artist(sql_t *db, const char *name, int64_t *id);
/* Inserts the album (artist_id, title) unless it exists, taking year when
 * it has none; *id is its id (derived). */
int store__upsert_album(sql_t *db, int64_t artist_id, const char *title, int year, int64_t *id);
/* Drops the album (and its cover) and the two artists when nothing refers
 * to them any more. */
int store__drop_orphans(sql_t *db, int64_t album_id, int64_t artist_id, int64_t album_artist_id);

/* A location named by ref (its id, 16 hex digits, or its name, case
 * folded) and a zone of it (the same): 0 with *id, -ENOENT, or the
 * error. */
int store__location_resolve(sql_t *db, const char *ref, int64_t *id);
int store__zone_resolve(sql_t *db, int64_t location, const char *ref, int64_t *id);

/* The change number the caller's write transaction ends at (PostgreSQL's
 * catalog_seq, which only the writer holding the catalog lock moves), for
 * a read model to wait for; 0 on SQLite. */
int store__last_seq(sql_t *db, int64_t *seq);

#endif
