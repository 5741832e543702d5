#ifndef CHORUS_STORE_UPLOADS_H
#define CHORUS_STORE_UPLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/seal.h"

/*
 * Resumable uploads in the catalog's source of truth (the uploads and
 * upload_parts tables of sql/schema.c): DATA_DIR/catalog.db on one node,
 * PostgreSQL in a cluster, so that whichever node a client reaches next
 * answers the same offset. The rules once, over sql/sql.h.
 *
 * An upload's bytes are parts, each an origin object written by
 * uploads/uploads.c. A part's row is written first, uncommitted, then its
 * object; a commit then moves the upload's received offset over parts
 * that are all durable, in one transaction that also checks nobody moved
 * it meanwhile (a PATCH on another node): the offset a client is told is
 * never ahead of the bytes.
 *
 * Errors: -ENOENT (no such upload), -ESTALE (the offset moved: another
 * request won), -EDQUOT (the owner has too many unfinished uploads),
 * -EIO (also for every call on a NULL store: one not opened yet). Calls are serialized on one
 * connection; any thread.
 */
typedef struct upload_store upload_store_t;

#define UPLOAD_ID_LEN 32     /* hex digits */
#define UPLOAD_OWNER_MAX 160 /* a principal's actor (api/access.h) */
#define UPLOAD_FILENAME_MAX 255
#define UPLOAD_METADATA_MAX 4096 /* the Upload-Metadata header as sent */
#define UPLOAD_OBJECT_MAX 64
#define UPLOAD_TRACKS_MAX 1024 /* track ids, space separated */
#define UPLOAD_ERROR_MAX 512

struct upload_row {
	char id[UPLOAD_ID_LEN + 1];
	char owner[UPLOAD_OWNER_MAX + 1];
	char filename[UPLOAD_FILENAME_MAX + 1];
	char metadata[UPLOAD_METADATA_MAX + 1];
	uint64_t length, received;
	char state[12]; /* receiving, queued, ingesting, done, failed */
	int64_t created_at, updated_at, expires_at, heartbeat_at; /* ms since the epoch */
	char node[128];
	char track_ids[UPLOAD_TRACKS_MAX + 1];
	char error[UPLOAD_ERROR_MAX + 1];
};

struct upload_part {
	char object[UPLOAD_OBJECT_MAX]; /* origin key: u/ID/RANDOM */
	uint64_t pos, len;
	uint8_t key[SEAL_KEY_LEN]; /* the part is sealed as chunk 0 under it */
};

/* PostgreSQL when conninfo is set, else DATA_DIR/catalog.db. */
int upload_store_open(const char *data_dir, const char *conninfo, upload_store_t **out, char *err,
		      size_t errlen);
void upload_store_close(upload_store_t *s);

/* A new upload (r->state "receiving", received 0), unless its owner has
 * max_unfinished receiving already (-EDQUOT). */
int upload_store_create(upload_store_t *s, const struct upload_row *r, int max_unfinished);
int upload_store_get(upload_store_t *s, const char *id, struct upload_row *out);

/* Records part p of upload id, uncommitted, before its object is written. */
int upload_store_part_begin(upload_store_t *s, const char *id, const struct upload_part *p);

/*
 * Commits n parts of upload id that are durable in the origin and follow
 * each other from the upload's received offset: received moves to their
 * end (*received), expires_at to expires_at, and when that is the whole
 * length the state becomes "queued" (*complete). -ESTALE when received
 * was not parts[0].pos, or the upload is no longer receiving.
 */
int upload_store_commit(upload_store_t *s, const char *id, const struct upload_part *parts,
			size_t n, int64_t expires_at, uint64_t *received, bool *complete);

/* Every part row of id (committed ones, or all), by position; *out is
 * malloc'd. */
int upload_store_parts(upload_store_t *s, const char *id, bool committed_only,
		       struct upload_part **out, size_t *n);
/* Forgets part rows (their objects are gone). */
int upload_store_parts_forget(upload_store_t *s, const struct upload_part *parts, size_t n);

/* Takes a queued upload (or one whose ingesting node stopped beating for
 * stale_ms) for node: 1 when taken, 0 when another has it or it is not
 * waiting. */
int upload_store_claim(upload_store_t *s, const char *id, const char *node, int64_t now,
		       int64_t stale_ms);
int upload_store_beat(upload_store_t *s, const char *id, const char *node, int64_t now);
/* The end of an ingest: state "done" (track_ids) or "failed" (error). */
int upload_store_finish(upload_store_t *s, const char *id, bool done, const char *track_ids,
			const char *error, int64_t now);
/* Removes the upload's row and its part rows (objects removed first). */
int upload_store_remove(upload_store_t *s, const char *id);

/*
 * What a sweep has to do, at now: ids of uploads waiting for an ingest
 * (queued, or ingesting with no beat for stale_ms), of receiving ones past
 * expires_at, and of finished ones updated before forget_before. At most
 * max of each; *n set for each.
 */
struct upload_due {
	char (*ingest)[UPLOAD_ID_LEN + 1];
	size_t ningest;
	char (*expired)[UPLOAD_ID_LEN + 1];
	size_t nexpired;
	char (*forget)[UPLOAD_ID_LEN + 1];
	size_t nforget;
};
int upload_store_due(upload_store_t *s, int64_t now, int64_t stale_ms, int64_t forget_before,
		     size_t max, struct upload_due *out);
void upload_due_free(struct upload_due *d);

/* The newest uploads (of owner, or everyone's with NULL), at most limit:
 * fn's non-zero result stops and is returned. */
int upload_store_list(upload_store_t *s, const char *owner, int limit,
		      int (*fn)(void *ud, const struct upload_row *r), void *ud);

#endif
