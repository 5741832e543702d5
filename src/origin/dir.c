/*
 * The directory origin: one file per object under a root directory, the
 * key being the relative path. Puts go through fs_write_atomic (temporary
 * file, fdatasync, rename, directory fsync), so a crash leaves either the
 * whole object or none. Batched puts rename first and sync at the flush:
 * a crash before it can leave a short file at a final name, which no
 * catalog row refers to yet (ingest commits after the flush) and which a
 * re-run's size check replaces. Temporary files live apart, in ROOT/.tmp, where
 * the next open removes those whose writer died: a kill -9 leaves nothing
 * behind among the objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "origin/origin.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

struct dir_origin {
	origin_t base;
	char root[PATH_MAX];
	char tmp[PATH_MAX]; /* ROOT/.tmp: temporaries, never read as objects */
};

/* Keys come from chorus itself, but a key that could leave the root is
 * refused all the same. */
static int key_path(struct dir_origin *d, const char *key, char *out, size_t outlen)
{
	if (!*key || key[0] == '/' || strstr(key, "..") || strstr(key, ".tmp."))
		return -EINVAL;
	if ((size_t)snprintf(out, outlen, "%s/%s", d->root, key) >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

/* Remembers a directory to fsync at the flush (once). */
static void batch_dir(struct origin_batch *b, const char *dir)
{
	for (size_t i = b->ndirs; i > 0; i--)
		if (strcmp(b->dirs[i - 1], dir) == 0)
			return;
	if (b->ndirs == b->capdirs) {
		b->capdirs = b->capdirs ? b->capdirs * 2 : 8;
		b->dirs = xrealloc(b->dirs, b->capdirs * sizeof(*b->dirs));
	}
	b->dirs[b->ndirs++] = xstrdup(dir);
}

/* One write: durable now (b == NULL) or at the batch's flush. */
static int write_one(struct dir_origin *d, struct origin_batch *b, const char *path,
		     const void *data, size_t len)
{
	char dir[PATH_MAX];
	int fd, rc;

	if (!b)
		return fs_write_atomic(path, d->tmp, data, len, 0640);
	rc = fs_write_renamed(path, d->tmp, data, len, 0640, &fd);
	if (rc < 0)
		return rc;
	if (b->nfds == b->capfds) {
		b->capfds = b->capfds ? b->capfds * 2 : 16;
		b->fds = xrealloc(b->fds, b->capfds * sizeof(*b->fds));
	}
	b->fds[b->nfds++] = fd;
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	batch_dir(b, dir);
	return 0;
}

static int dir_put_batch(origin_t *o, struct origin_batch *b, const char *key, const void *data,
			 size_t len)
{
	struct dir_origin *d = (struct dir_origin *)o;
	char path[PATH_MAX], parent[PATH_MAX];
	int rc = key_path(d, key, path, sizeof(path));

	if (rc < 0)
		return rc;
	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = '\0';
	/* Asked before the write, not after a failed rename: the first
	 * object of a directory is then written once, not twice. */
	if (access(parent, F_OK) == 0)
		return write_one(d, b, path, data, len);
	/* The first chunk of a blob (part of an upload): make its
	 * directories first. */
	rc = fs_mkdir_p(parent, 0750);
	if (rc < 0)
		return rc;
	/* The new directories' entries must be durable too: the blob's and
	 * its fan-out's, in their parents. */
	for (int i = 0; i < 2; i++) {
		*strrchr(parent, '/') = '\0';
		if (b)
			batch_dir(b, parent);
		else if ((rc = fs_sync_dir(parent)) < 0)
			return rc;
	}
	return write_one(d, b, path, data, len);
}

static int dir_put(origin_t *o, const char *key, const void *data, size_t len)
{
	return dir_put_batch(o, NULL, key, data, len);
}

static int dir_flush(origin_t *o, struct origin_batch *b)
{
	int rc = 0;

	/* Data first, then the names that point at it. */
	for (size_t i = 0; i < b->nfds; i++)
		if (fdatasync(b->fds[i]) < 0 && rc == 0)
			rc = -errno;
	for (size_t i = b->ndirs; i > 0 && rc == 0; i--)
		rc = fs_sync_dir(b->dirs[i - 1]);
	origin_batch_free(b);
	return rc;
}

static int dir_get(origin_t *o, const char *key, char **data, size_t *len)
{
	struct dir_origin *d = (struct dir_origin *)o;
	char path[PATH_MAX];
	int rc = key_path(d, key, path, sizeof(path));

	if (rc < 0)
		return rc;
	return fs_read_all(path, (size_t)1 << 30, data, len);
}

static int dir_size(origin_t *o, const char *key, uint64_t *len)
{
	struct dir_origin *d = (struct dir_origin *)o;
	char path[PATH_MAX];
	struct stat st;
	int rc = key_path(d, key, path, sizeof(path));

	if (rc < 0)
		return rc;
	if (stat(path, &st) < 0)
		return -errno;
	*len = (uint64_t)st.st_size;
	return 0;
}

static int dir_remove(origin_t *o, const char *key)
{
	struct dir_origin *d = (struct dir_origin *)o;
	char path[PATH_MAX];
	char *slash;
	int rc = key_path(d, key, path, sizeof(path));

	if (rc < 0)
		return rc;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	/* Drop the blob's directory once its last chunk is gone. */
	slash = strrchr(path, '/');
	*slash = '\0';
	if (rmdir(path) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
		return -errno;
	return 0;
}

static void dir_close(origin_t *o)
{
	free(o);
}

static const struct origin_ops dir_ops = {
	.put = dir_put,
	.put_batch = dir_put_batch,
	.flush = dir_flush,
	.get = dir_get,
	.size = dir_size,
	.remove = dir_remove,
	.close = dir_close,
};

int origin_dir_open(const char *path, origin_t **out, char *err, size_t errlen)
{
	struct dir_origin *d;
	int rc;

	if (strlen(path) >= PATH_MAX - ORIGIN_KEY_MAX - 32) {
		snprintf(err, errlen, "origin path too long: %s", path);
		return -ENAMETOOLONG;
	}
	rc = fs_mkdir_p(path, 0750);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create origin directory %s: %s", path, strerror(-rc));
		return rc;
	}
	if (access(path, W_OK | X_OK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "origin directory %s is not writable: %s", path,
			 strerror(errno));
		return rc;
	}
	d = xcalloc(1, sizeof(*d));
	d->base.ops = &dir_ops;
	snprintf(d->root, sizeof(d->root), "%s", path);
	snprintf(d->tmp, sizeof(d->tmp), "%s/.tmp", path);
	rc = fs_mkdir_p(d->tmp, 0750);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create %s: %s", d->tmp, strerror(-rc));
		free(d);
		return rc;
	}
	/* A writer killed between its write and its rename left a file here. */
	fs_sweep_temporaries(d->tmp);
	snprintf(d->base.desc, sizeof(d->base.desc), "dir:%s", path);
	*out = &d->base;
	return 0;
}
