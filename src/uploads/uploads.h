#ifndef CHORUS_UPLOADS_UPLOADS_H
#define CHORUS_UPLOADS_UPLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop/pool.h"
#include "origin/origin.h"
#include "store/uploads.h"

/*
 * Uploads on a node: the parts of resumable uploads (api/uploads.c speaks
 * tus over this) kept in the origin, where every node reaches them, and
 * their rows in the source of truth (store/uploads.h); and the ingest of
 * a finished upload, on the worker pool, through the same pipeline as
 * `chorus ingest` (ingest/pipeline.h). An archive of an album is unpacked
 * (uploads/archive.h) and each of its files ingested.
 *
 * A sweep, every few seconds on the pool, takes on what no node is doing:
 * finished uploads waiting for an ingest (their node died, or the pool was
 * full), uploads that stopped arriving before their expiry (removed, parts
 * and all), and finished ones past a week (forgotten).
 *
 * The calls below block (database, origin): pool workers only.
 */
typedef struct uploads uploads_t;

struct uploads_config {
	const char *data_dir;
	const char *db; /* PostgreSQL conninfo, NULL: DATA_DIR/catalog.db */
	origin_t *origin;
	pool_t *pool;
	const char *node;   /* this node's id, for claims */
	uint64_t max_size;  /* of one upload */
	int64_t expire_ms;  /* an unfinished upload's life after its last byte */
	int max_unfinished; /* per owner */
};

#define UPLOADS_PART_MAX ((size_t)8 << 20) /* bytes of one part object */
#define UPLOADS_UNFINISHED_MAX 200         /* receiving uploads per owner */

int uploads_open(const struct uploads_config *cfg, uploads_t **out, char *err, size_t errlen);
/* Stops the sweep; after pool_stop, so no job of it runs. NULL is a no-op. */
void uploads_close(uploads_t *u);

const struct uploads_config *uploads_config(const uploads_t *u);
upload_store_t *uploads_store(uploads_t *u);

/* Writes data as the part at pos of upload id: a row, then the sealed
 * object, durable when this returns 0 (*out says what to commit).
 * -errno otherwise, with err. */
int uploads_put_part(uploads_t *u, const char *id, uint64_t pos, const void *data, size_t len,
		     struct upload_part *out, char *err, size_t errlen);
/* Removes parts' objects, then their rows. */
void uploads_drop_parts(uploads_t *u, const struct upload_part *parts, size_t n);
/* Removes an upload: every part's object, then its rows. 0 or -ENOENT /
 * -EIO. */
int uploads_remove(uploads_t *u, const char *id);
/* What this node did with uploads since it started. */
struct uploads_stats {
	uint64_t bytes;    /* committed (durable in the origin) */
	uint64_t parts;    /* committed */
	uint64_t ingested; /* finished uploads ingested into one or more tracks */
	uint64_t failed;   /* finished uploads refused (not audio, a bad archive) */
};
void uploads_get_stats(uploads_t *u, struct uploads_stats *out);
/* Counts parts a commit made durable (api/uploads.c's). */
void uploads_count_commit(uploads_t *u, size_t parts, uint64_t bytes);

/* Queues the ingest of a finished upload on the pool (the sweep takes it
 * on if the pool refuses). Any thread. */
void uploads_kick(uploads_t *u, const char *id);

#endif
