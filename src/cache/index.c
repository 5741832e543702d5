/*
 * The chunk cache's index: which chunks are on disk, in LRU order, and the
 * lookups of cache_get.
 *
 * One mutex, c->lock, guards everything in memory: the index of cached
 * chunks (a chained hash table keyed by (blob, index) plus an intrusive
 * LRU list), the table of fills in flight with their waiter lists
 * (fill.c), and the work queues. A hit holds it for one hash lookup and an
 * LRU move; the open() happens outside it. Work done per chunk (origin
 * read, AEAD open, file write) runs on the cache's own threads without the
 * lock, so a slow origin never stalls hits. A finer lock would only pay
 * off past the tens of thousands of hits per second a node's disks and
 * NICs can serve; a loop's streams sharing an open chunk (files.c) do not
 * open it again at all.
 *
 * Invariants that make the file handling race-free:
 * - a chunk's key is in at most one of the index and the fill table;
 * - only an index entry's file is ever unlinked, and only under the lock
 *   (cache__index_drop, here; the start-up scan removes temporaries before
 *   any thread runs);
 * - so a fill owns its chunk's final name until it inserts the entry: it
 *   renames its temporary file there and opens one fd per waiter (each its
 *   own open file description, so offsets are not shared) without the
 *   lock, and no eviction can remove the file underneath it.
 * An fd handed out stays readable after eviction: unlink frees the blocks
 * only when the last fd closes. Files are not fsync'd: a cache file is
 * only a copy, and the rename makes a crash leave the whole file or none.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/hash.h"
#include "util/log.h"
#include "util/xalloc.h"

/* FNV-1a over the blob, then the index mixed in. Blobs are random, so
 * this is only to spread them over the buckets. */
uint64_t cache__key_hash(const char *blob, uint32_t index)
{
	uint64_t h = hash_fnv1a_str(HASH_FNV1A_INIT, blob);

	h = (h ^ index) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

void cache__table_init(struct table *t)
{
	t->mask = 63;
	t->b = xcalloc(t->mask + 1, sizeof(*t->b));
	t->n = 0;
}

struct cnode *cache__table_find(const struct table *t, uint64_t h, const char *blob, uint32_t index)
{
	for (struct cnode *n = t->b[h & t->mask]; n; n = n->hnext)
		if (n->hash == h && n->index == index && strcmp(n->blob, blob) == 0)
			return n;
	return NULL;
}

static void table_grow(struct table *t)
{
	size_t mask = t->mask * 2 + 1;
	struct cnode **b = xcalloc(mask + 1, sizeof(*b));

	for (size_t i = 0; i <= t->mask; i++) {
		struct cnode *n = t->b[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & mask];
			b[n->hash & mask] = n;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = mask;
}

void cache__table_insert(struct table *t, struct cnode *n)
{
	if (t->n > t->mask)
		table_grow(t);
	n->hnext = t->b[n->hash & t->mask];
	t->b[n->hash & t->mask] = n;
	t->n++;
}

void cache__table_remove(struct table *t, struct cnode *n)
{
	struct cnode **p = &t->b[n->hash & t->mask];

	while (*p != n)
		p = &(*p)->hnext;
	*p = n->hnext;
	t->n--;
}

void cache__cnode_set(struct cnode *n, const char *blob, uint32_t index)
{
	snprintf(n->blob, sizeof(n->blob), "%s", blob);
	n->index = index;
	n->hash = cache__key_hash(n->blob, index);
}

/* Blob ids become file names: only what chorus makes (lower-case hex) is
 * accepted, so no reference can name a path outside the cache. */
bool cache__blob_ok(const char *blob, size_t maxlen)
{
	size_t n = strnlen(blob, maxlen + 1);

	if (n < 2 || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((blob[i] >= '0' && blob[i] <= '9') || (blob[i] >= 'a' && blob[i] <= 'f')))
			return false;
	return true;
}

bool cache__ref_ok(const struct chunk_ref *ref)
{
	return cache__blob_ok(ref->blob, BLOB_MAX);
}

/* Fits: cache_open bounds the directory's length. */
void cache__chunk_path(const struct cache *c, const char *blob, uint32_t index, bool tmp,
		       char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%.32s-%08x%s", c->dir, blob, blob, index,
		 tmp ? TMP_SUFFIX : "");
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(struct cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

void cache__index_insert(struct cache *c, struct entry *e)
{
	cache__table_insert(&c->index, &e->node);
	lru_push_head(c, e);
	c->bytes += e->size;
	c->chunks++;
}

void cache__index_add(struct cache *c, const char *blob, uint32_t index, uint64_t size)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	cache__cnode_set(&e->node, blob, index);
	e->size = size;
	cache__index_insert(c, e);
}

/* Unlinking a chunk on a worker: a whole file's blocks freed can take
 * milliseconds, and the lock is held by whoever evicts. */
static void unlink_work(void *arg)
{
	if (unlink(arg) < 0 && errno != ENOENT)
		log_warn("cache: cannot remove %s: %s", (char *)arg, strerror(errno));
}

static void unlink_done(void *arg, int status)
{
	if (status != 0) /* cancelled at shutdown: do it here */
		unlink_work(arg);
	free(arg);
}

/*
 * Removes a chunk's file from its final name, lock held. With a pool, the
 * file is renamed aside (a directory entry changed, nothing freed) and
 * unlinked on a worker: the final name is free for a new fill the moment
 * the lock is released, as the invariants require, and the cost of
 * freeing the blocks is paid off the lock. The start-up scan removes what
 * a crash left renamed aside.
 */
static void remove_file(struct cache *c, const char *path)
{
	char gone[PATH_MAX];
	int n;

	if (c->pool) {
		n = snprintf(gone, sizeof(gone), "%s.%llu" GONE_SUFFIX, path,
			     (unsigned long long)++c->gone_seq);
		if (n > 0 && (size_t)n < sizeof(gone) && rename(path, gone) == 0) {
			char *arg = xstrdup(gone);
			if (pool_submit(c->pool, NULL, POOL_FAST, unlink_work, unlink_done, arg) ==
			    0)
				return;
			/* The pool is full or stopped: unlink it here. */
			free(arg);
			unlink_work(gone);
			return;
		}
	}
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cache: cannot remove %s: %s", path, strerror(errno));
}

void cache__index_drop(struct cache *c, struct entry *e, bool unlink_file)
{
	char path[PATH_MAX];

	if (unlink_file) {
		cache__chunk_path(c, e->node.blob, e->node.index, false, path);
		remove_file(c, path);
	}
	cache__table_remove(&c->index, &e->node);
	lru_unlink(c, e);
	c->bytes -= e->size;
	c->chunks--;
	free(e);
}

uint32_t cache_drop_blob(cache_t *c, const char *blob, uint32_t chunks)
{
	uint32_t dropped = 0;

	if (!cache__blob_ok(blob, BLOB_MAX))
		return 0;
	for (uint32_t i = 0; i < chunks; i++) {
		uint64_t h = cache__key_hash(blob, i);
		struct cnode *n;

		pthread_mutex_lock(&c->lock);
		n = cache__table_find(&c->index, h, blob, i);
		if (n) {
			cache__index_drop(c, container_of(n, struct entry, node), true);
			dropped++;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return dropped;
}

void cache_set_pool(cache_t *c, pool_t *p)
{
	pthread_mutex_lock(&c->lock);
	c->pool = p;
	pthread_mutex_unlock(&c->lock);
}

/* The newest entry goes too when it alone is over the budget: whoever
 * waited for it already holds an fd. */
void cache__evict_to_budget(struct cache *c)
{
	while (c->bytes > c->budget && c->lru_tail) {
		cache__index_drop(c, c->lru_tail, true);
		c->evictions++;
	}
}

int cache_get(cache_t *c, const struct chunk_ref *ref, cache_ready_fn fn, void *arg)
{
	if (!fn || !cache__ref_ok(ref))
		return -EINVAL;
	return cache__get(c, ref, cache__key_hash(ref->blob, ref->index), fn, arg);
}

int cache__get(struct cache *c, const struct chunk_ref *ref, uint64_t h, cache_ready_fn fn,
	       void *arg)
{
	char path[PATH_MAX];
	struct cnode *n;
	struct entry *e;
	int fd, rc;

	cache__chunk_path(c, ref->blob, ref->index, false, path);

	pthread_mutex_lock(&c->lock);
	n = cache__table_find(&c->index, h, ref->blob, ref->index);
	e = n ? container_of(n, struct entry, node) : NULL;
	if (e && e->size == ref->len) {
		lru_unlink(c, e);
		lru_push_head(c, e);
		pthread_mutex_unlock(&c->lock);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			c->hits++;
			return fd;
		}
		if (errno != ENOENT)
			return -errno;
		/* Evicted since the lookup, or removed behind our back: look
		 * again, this time opening under the lock so the answer holds. */
		pthread_mutex_lock(&c->lock);
		n = cache__table_find(&c->index, h, ref->blob, ref->index);
		e = n ? container_of(n, struct entry, node) : NULL;
		if (e && e->size == ref->len) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0 || errno != ENOENT) {
				rc = fd >= 0 ? fd : -errno;
				pthread_mutex_unlock(&c->lock);
				if (rc >= 0)
					c->hits++;
				return rc;
			}
			log_warn("cache: %s vanished; fetching it again", path);
			cache__index_drop(c, e, false);
			e = NULL;
		}
	}
	/* A size other than the manifest's: not the chunk asked for. */
	if (e) {
		log_warn("cache: %s has %llu bytes, expected %u; fetching it again", path,
			 (unsigned long long)e->size, ref->len);
		cache__index_drop(c, e, true);
	}
	rc = cache__fill_miss(c, ref, h, fn, arg);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void cache__touch(struct cache *c, const struct chunk_ref *ref, uint64_t h)
{
	struct cnode *n;

	pthread_mutex_lock(&c->lock);
	n = cache__table_find(&c->index, h, ref->blob, ref->index);
	if (n) {
		struct entry *e = container_of(n, struct entry, node);
		lru_unlink(c, e);
		lru_push_head(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	c->hits++;
}
