#ifndef CHORUS_STORE_STORE_H
#define CHORUS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/model.h"
#include "origin/origin.h"

/*
 * The catalog's source of truth, as ingest writes it: DATA_DIR/catalog.db
 * (SQLite) on one node, PostgreSQL in a cluster, with one set of rules
 * over either (store/store.c, on sql/sql.h). All calls are thread-safe
 * (the store serializes them, which is fine because every call is small
 * next to the file I/O around it).
 *
 * A track is committed in one transaction, only after all its chunks are in
 * the origin. Blobs being uploaded are recorded first in the pending ledger,
 * so a crashed run's chunks are found again (and reused, or removed); blobs
 * a commit made unreachable go to the garbage ledger in the same
 * transaction and are removed from the origin after it.
 */
typedef struct store store_t;

/*
 * Opens the store: PostgreSQL when conninfo is set (any libpq connection
 * string), else DATA_DIR/catalog.db. Returns 0, or -errno with a message
 * in err.
 */
int store_open(const char *data_dir, const char *conninfo, store_t **out, char *err, size_t errlen);
void store_close(store_t *s);

/* What the catalog knows of a file's path. */
struct store_file {
	const char *path; /* absolute */
	uint64_t size;
	int64_t mtime_ns;
};

enum store_outcome {
	STORE_ADDED,
	STORE_UPDATED,
	STORE_UNCHANGED,
	STORE_DUPLICATE, /* same bytes as another file already in the catalog */
	STORE_NEW,       /* store_settle: unknown content, upload it */
};

struct store_result {
	enum store_outcome outcome;
	int64_t track_id;
	char other_path[512]; /* STORE_DUPLICATE: the file holding these bytes */
};

/* True when path is in the catalog with exactly this size and mtime: the
 * file need not even be read. */
bool store_file_unchanged(store_t *s, const struct store_file *f);

/*
 * Settles a file whose content hash is known without uploading anything:
 * STORE_UNCHANGED (the bytes are in the catalog for this path, or for a path
 * that no longer exists: the file moved), STORE_DUPLICATE, or STORE_NEW.
 * Records a move or a new mtime, nothing else. 0 or -EIO.
 */
int store_settle(store_t *s, const struct store_file *f, const char *content_hash,
		 struct store_result *res);

/*
 * Chooses where content_hash's chunks go: the blob and key of a pending
 * upload of the same bytes left by an earlier run that crashed (*reused is
 * true: chunks already present with the right size can be kept), or a new
 * random blob and key recorded as pending. Fills m->blob and m->key.
 */
int store_pending_claim(store_t *s, struct manifest *m, bool *reused);

/* Gives a claimed blob up (its upload failed): it goes to the garbage. */
int store_pending_abandon(store_t *s, const struct manifest *m);

/*
 * Commits a track whose chunks are all in the origin: adds it, or updates
 * the same recording in place (same ISRC, or same artist, album, disc,
 * track number and title) keeping its id. If another file committed the
 * same bytes meanwhile, the upload is garbage and the outcome is
 * STORE_UNCHANGED or STORE_DUPLICATE.
 */
int store_commit_track(store_t *s, const struct store_file *f, const struct track_meta *meta,
		       const struct manifest *m, struct store_result *res);

/*
 * The record of one ingest run (the ingests table; catalog/model.h says
 * when a run writes it). id is the caller's, from catalog_random_id, and
 * the same for every record of the run; times are ms since the epoch;
 * finished_at 0 means not finished yet.
 */
struct store_run {
	int64_t id;
	char host[256];
	int64_t started_at, heartbeat_at, finished_at;
	uint64_t added, updated, unchanged, failed;
};

/* Writes run's row: inserted the first time, its times and counts
 * updated after. 0 or -EIO. */
int store_run_record(store_t *s, const struct store_run *run);

/* Records failure n (0-based, below CATALOG_RUN_ERRORS_MAX) of run_id:
 * the path that failed and why. 0 or -EIO. */
int store_run_error(store_t *s, int64_t run_id, int n, const char *path, const char *message);

/* Compacts the search index after a large ingest (see search_optimize). */
int store_search_optimize(store_t *s);

/*
 * Removes garbage blobs from the origin, then their ledger rows. With
 * include_pending, every pending upload is first declared garbage: call it
 * so only when no upload is in flight (the end of a run).
 */
int store_collect_garbage(store_t *s, origin_t *o, bool include_pending);

#endif
