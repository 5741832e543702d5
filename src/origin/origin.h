#ifndef CHORUS_ORIGIN_ORIGIN_H
#define CHORUS_ORIGIN_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

/*
 * The origin holds sealed chunks, named by key. Implementations: "dir"
 * (a local directory, the default) and "s3" (a bucket of Amazon S3 or an
 * S3-compatible server). Every operation is
 * blocking and safe to call from several threads at once.
 *
 * Errors are negative errno values: -ENOENT for a missing object, -EACCES
 * for refused credentials, -EIO and friends for the rest. A put is atomic:
 * a reader sees the whole object or none of it; when put returns 0 the
 * object is durable.
 */
typedef struct origin origin_t;

/*
 * Puts whose durability is deferred to one origin_flush: a writer of many
 * objects (ingest writing a track's chunks) then pays for one flush
 * instead of one per object. Owned by one thread; zero-initialise it.
 */
struct origin_batch {
	int *fds; /* written, renamed, not yet synced */
	size_t nfds, capfds;
	char **dirs; /* directories that got new names */
	size_t ndirs, capdirs;
	void *impl; /* an implementation's own state (s3: puts in flight) */
	void (*impl_free)(void *impl);
};

struct origin_ops {
	int (*put)(origin_t *o, const char *key, const void *data, size_t len);
	/* On success *data is malloc'd and owned by the caller. */
	int (*get)(origin_t *o, const char *key, char **data, size_t *len);
	int (*size)(origin_t *o, const char *key, uint64_t *len);
	/* Removing a missing object succeeds. */
	int (*remove)(origin_t *o, const char *key);
	/* Optional: an atomic put made durable by flush. Without it,
	 * origin_put_batch is a durable put. */
	int (*put_batch)(origin_t *o, struct origin_batch *b, const char *key, const void *data,
			 size_t len);
	int (*flush)(origin_t *o, struct origin_batch *b);
	void (*close)(origin_t *o);
};

struct origin {
	const struct origin_ops *ops;
	char desc[256]; /* for messages: "dir:/srv/chorus/origin" */
};

/*
 * Opens the origin named by spec: "dir:PATH",
 * "s3://BUCKET[/PREFIX][?endpoint=URL&region=R...]" (see origin_s3_open),
 * or NULL for the default, DATA_DIR/origin. Returns 0, or -errno with a
 * message in err.
 */
int origin_open(const char *spec, const char *data_dir, origin_t **out, char *err, size_t errlen);

static inline int origin_put(origin_t *o, const char *key, const void *data, size_t len)
{
	return o->ops->put(o, key, data, len);
}
static inline int origin_get(origin_t *o, const char *key, char **data, size_t *len)
{
	return o->ops->get(o, key, data, len);
}
static inline int origin_size(origin_t *o, const char *key, uint64_t *len)
{
	return o->ops->size(o, key, len);
}
static inline int origin_remove(origin_t *o, const char *key)
{
	return o->ops->remove(o, key);
}
void origin_close(origin_t *o);

/* Like origin_put, atomic at once but durable only after origin_flush
 * (readers may see the object before). */
int origin_put_batch(origin_t *o, struct origin_batch *b, const char *key, const void *data,
		     size_t len);
/* Makes every put of the batch durable and empties it. 0 or -errno. */
int origin_flush(origin_t *o, struct origin_batch *b);
/* Forgets a batch without flushing (after an error). */
void origin_batch_free(struct origin_batch *b);

/*
 * The object key of a chunk: "c/BB/BLOB/NNNNNNNN", BB being the blob id's
 * first two digits (so no directory grows past a few thousand entries) and
 * NNNNNNNN the chunk index in hex. out needs ORIGIN_KEY_MAX bytes.
 */
#define ORIGIN_KEY_MAX 64
void origin_chunk_key(const char *blob, uint32_t index, char out[ORIGIN_KEY_MAX]);

/* The dir implementation; origin_open calls it for "dir:" specs. */
int origin_dir_open(const char *path, origin_t **out, char *err, size_t errlen);

/*
 * The S3 implementation; origin_open calls it for "s3://" specs (the
 * syntax is in origin/s3.h). Credentials come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, as awscli reads them;
 * without them it fails with -EACCES. Opening makes no request: a node
 * starts while S3 is unreachable. Call it before starting threads (it
 * initialises libcurl once).
 */
int origin_s3_open(const char *spec, origin_t **out, char *err, size_t errlen);

#endif
