/*
 * The cache's life: cache_open takes the directory (creating it, locking
 * it against a second process), rebuilds the index from it (scan.c) and
 * starts the fill threads (fill.c); cache_close stops them and frees
 * everything. The lock and the invariants of the file handling are at
 * the top of index.c; cache/cache_int.h lists the files.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/xalloc.h"

void cache_get_stats(cache_t *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = (struct cache_stats){
		.bytes = c->bytes,
		.budget_bytes = c->budget,
		.hits = c->hits,
		.misses = c->misses,
		.origin_reads = c->origin_reads,
		.origin_bytes = c->origin_bytes,
		.peer_reads = c->peer_reads,
		.peer_bytes = c->peer_bytes,
		.evictions = c->evictions,
		.chunks = c->chunks,
		.fills = c->filled,
		.origin_errors = c->origin_errors,
		.origin_failing = c->origin_failing,
	};
	pthread_mutex_unlock(&c->lock);
}

static void cache_free(struct cache *c)
{
	struct entry *e, *next;

	for (e = c->lru_head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(c->index.b);
	free(c->fills.b);
	free(c->threads);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int cache_open(const char *dir, uint64_t budget_bytes, origin_t *origin, int threads, cache_t **out,
	       char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct cache *c;
	int rc;

	if (threads < 1) {
		snprintf(err, errlen, "cache needs at least one fill thread");
		return -EINVAL;
	}
	if (strlen(dir) >= sizeof(((struct cache *)0)->dir)) {
		snprintf(err, errlen, "cache path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	rc = fs_mkdir_p(dir, 0750);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create cache directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	c = xcalloc(1, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	c->budget = budget_bytes;
	c->origin = origin;
	c->lock_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	cache__table_init(&c->index);
	cache__table_init(&c->fills);

	/* Two processes on one directory would delete each other's
	 * temporaries and break each other's budget. */
	snprintf(path, sizeof(path), "%s/.lock", dir);
	c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (c->lock_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "cache directory %s is in use by another process", dir);
		goto fail;
	}
	rc = cache__scan(c, err, errlen);
	if (rc < 0)
		goto fail;
	rc = cache__fills_start(c, threads);
	if (rc < 0) {
		snprintf(err, errlen, "cannot start cache threads: %s", strerror(-rc));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	cache_close(c);
	return rc;
}

void cache_close(cache_t *c)
{
	if (!c)
		return;
	cache__fills_stop(c);
	cache_free(c);
}
