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

/* ---- catalog editing (store/edit.c) ---- */

/* The fields a person may set, as bits of a track's edited mask (the
 * tracks.edited column): a field edited is kept when the file is ingested
 * again, and the other fields follow the file's tags. */
enum {
	STORE_EDIT_TITLE = 1u << 0,
	STORE_EDIT_ARTIST = 1u << 1,
	STORE_EDIT_ALBUM = 1u << 2,
	STORE_EDIT_ALBUM_ARTIST = 1u << 3,
	STORE_EDIT_TRACK_NUMBER = 1u << 4,
	STORE_EDIT_DISC_NUMBER = 1u << 5,
	STORE_EDIT_YEAR = 1u << 6,
	STORE_EDIT_GENRE = 1u << 7,
	STORE_EDIT_ISRC = 1u << 8,
	STORE_EDIT_LABEL = 1u << 9,
	STORE_EDIT_EXPLICIT = 1u << 10,
	STORE_EDIT_ALL = (1u << 11) - 1,
};

#define STORE_TEXT_MAX 1024 /* bytes of a title, name, genre or label */

/*
 * An edit: the fields named by set, with their new values; a field in
 * nulls too is cleared (only those that may be unknown: numbers, year,
 * genre, ISRC, label, explicit). Texts are UTF-8 without controls, 1 to
 * STORE_TEXT_MAX bytes; isrc is 12 upper-case letters and digits;
 * explicit is 0 or 1. For an album, title and album_artist name the
 * album, year is the album's, genre and label go to each of its tracks;
 * for an artist, artist is the new name (api/edit_body.c validates).
 */
struct store_edit {
	unsigned set, nulls;
	char title[STORE_TEXT_MAX + 1], artist[STORE_TEXT_MAX + 1];
	char album[STORE_TEXT_MAX + 1], album_artist[STORE_TEXT_MAX + 1];
	char genre[STORE_TEXT_MAX + 1], label[STORE_TEXT_MAX + 1];
	char isrc[13];
	int track_number, disc_number, year, explicit_flag;
};

/* A blob a deletion left to the garbage ledger, for the caches. */
struct store_blob {
	char blob[BLOB_ID_LEN + 1];
	uint32_t chunks;
};

/* What an edit or deletion did: the id of the object now (an album or
 * artist renamed takes the id its new name derives, decisions.md), and,
 * in a cluster, the change number of its commit (0 on SQLite), which a
 * node's read model has applied once replica_status's last_seq is there. */
struct store_change {
	int64_t id;
	int64_t seq;
	uint32_t tracks; /* tracks changed or deleted */
	size_t nblobs;
	struct store_blob *blobs; /* a deletion's; malloc'd, store_change_free */
};

void store_change_free(struct store_change *ch);

/*
 * Each is one write transaction with its audit row (actor: who asked, as
 * the principals' audit names them; detail: a JSON object or NULL).
 * 0, -ENOENT (no such track, album or artist), -EIO or -ENOTCONN.
 */
int store_track_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		     const char *detail, struct store_change *out);
int store_album_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		     const char *detail, struct store_change *out);
int store_artist_edit(store_t *s, const char *actor, int64_t id, const struct store_edit *e,
		      const char *detail, struct store_change *out);
/* A deleted track leaves a row in deleted_tracks (reports still name its
 * plays) and its blob in the garbage ledger (out->blobs); an album takes
 * its tracks and cover with it. Artists and albums left empty go. */
int store_track_delete(store_t *s, const char *actor, int64_t id, struct store_change *out);
int store_album_delete(store_t *s, const char *actor, int64_t id, struct store_change *out);
/* The album's cover, in place of any it had (an ingest never replaces
 * one). mime is image/jpeg or image/png, checked by the caller. */
int store_cover_put(store_t *s, const char *actor, int64_t album_id, const char *mime,
		    const void *data, size_t len, struct store_change *out);

/*
 * Removes garbage blobs from the origin, then their ledger rows. With
 * include_pending, every pending upload is first declared garbage: call it
 * so only when no upload is in flight (the end of a run).
 */
int store_collect_garbage(store_t *s, origin_t *o, bool include_pending);

#endif
