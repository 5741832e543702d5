#ifndef CHORUS_ORIGIN_ORIGIN_H
#define CHORUS_ORIGIN_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

/*
 * The origin holds sealed chunks, named by key. Implementations: "dir"
 * (a local directory, the default) and, later, "s3". Every operation is
 * blocking and safe to call from several threads at once.
 *
 * Errors are negative errno values: -ENOENT for a missing object, -EACCES
 * for refused credentials, -EIO and friends for the rest. A put is atomic:
 * a reader sees the whole object or none of it; when put returns 0 the
 * object is durable.
 */
typedef struct origin origin_t;

struct origin_ops {
	int (*put)(origin_t *o, const char *key, const void *data, size_t len);
	/* On success *data is malloc'd and owned by the caller. */
	int (*get)(origin_t *o, const char *key, char **data, size_t *len);
	int (*size)(origin_t *o, const char *key, uint64_t *len);
	/* Removing a missing object succeeds. */
	int (*remove)(origin_t *o, const char *key);
	void (*close)(origin_t *o);
};

struct origin {
	const struct origin_ops *ops;
	char desc[256]; /* for messages: "dir:/srv/chorus/origin" */
};

/*
 * Opens the origin named by spec: "dir:PATH", or NULL for the default,
 * DATA_DIR/origin. Returns 0, or -errno with a message in err.
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

/*
 * The object key of a chunk: "c/BB/BLOB/NNNNNNNN", BB being the blob id's
 * first two digits (so no directory grows past a few thousand entries) and
 * NNNNNNNN the chunk index in hex. out needs ORIGIN_KEY_MAX bytes.
 */
#define ORIGIN_KEY_MAX 64
void origin_chunk_key(const char *blob, uint32_t index, char out[ORIGIN_KEY_MAX]);

/* The dir implementation; origin_open calls it for "dir:" specs. */
int origin_dir_open(const char *path, origin_t **out, char *err, size_t errlen);

#endif
