/*
 * The open-chunk table: one per event loop, mapping (blob, index) to an
 * open fd of the chunk's file and a count of its holders, after h2o's
 * filecache (lib/common/filecache.c).
 *
 * sendfile takes the offset as an argument, so one fd serves every stream
 * of a loop that sends the chunk: ten thousand listeners of one track hold
 * a handful of files open, not ten thousand (docs/benchmarks.md, the
 * serve_10k run that ran out of fds). The table belongs to its loop's
 * thread and takes no lock of its own; a hit costs a hash lookup here and
 * then cache__touch, which takes the cache's lock once to count the hit
 * and move the chunk up the LRU, as a hit that opens the file does. Only
 * the first holder of a chunk in a loop allocates (its entry) and opens
 * (through cache_get); the others take a reference.
 *
 * Entries live exactly as long as they have holders: the last release
 * closes the fd and frees the entry, so the table never keeps a file open
 * on its own and needs no budget or LRU of its own (h2o's filecache keeps
 * files open after their last user, up to a capacity). Eviction does not
 * reach into the table: unlinking a chunk's file leaves its open fd
 * readable, so a chunk evicted while streamed still streams, and until the
 * last holder lets go new streams of the loop share that fd too, with the
 * very bytes that were verified when it was filled.
 *
 * Failed opens are not remembered. Failures come from fills, and single
 * flight already makes the streams that miss a chunk together share one
 * origin read and its one result; a stream that asks again later should
 * get a fresh try (the origin may be back), and a 503 with Retry-After
 * already paces players.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

struct open_chunk {
	struct cache_file pub; /* what holders see */
	uint32_t refs;
	struct cnode node;
};

struct cache_files {
	struct cache *c;
	struct table open;
};

cache_files_t *cache_files_new(cache_t *c)
{
	struct cache_files *t = xcalloc(1, sizeof(*t));

	t->c = c;
	cache__table_init(&t->open);
	return t;
}

void cache_files_free(cache_files_t *t)
{
	if (!t)
		return;
	/* Holders outliving the table would be a bug in the caller; closing
	 * their fds here at least keeps the process from leaking them. */
	if (t->open.n)
		log_warn("cache: %zu open chunks not released before their table", t->open.n);
	for (size_t i = 0; i <= t->open.mask; i++) {
		struct cnode *n = t->open.b[i], *next;

		for (; n; n = next) {
			struct open_chunk *oc = container_of(n, struct open_chunk, node);

			next = n->hnext;
			close(oc->pub.fd);
			free(oc);
		}
	}
	free(t->open.b);
	free(t);
}

static struct open_chunk *find(const struct cache_files *t, uint64_t h, const char *blob,
			       uint32_t index)
{
	struct cnode *n = cache__table_find(&t->open, h, blob, index);

	return n ? container_of(n, struct open_chunk, node) : NULL;
}

static struct cache_file *add(struct cache_files *t, const char *blob, uint32_t index, int fd)
{
	struct open_chunk *oc = xcalloc(1, sizeof(*oc));

	cache__cnode_set(&oc->node, blob, index);
	oc->pub.fd = fd;
	oc->refs = 1;
	cache__table_insert(&t->open, &oc->node);
	return &oc->pub;
}

int cache_file_open(cache_files_t *t, const struct chunk_ref *ref, cache_ready_fn fn, void *arg,
		    struct cache_file **out)
{
	struct open_chunk *oc;
	uint64_t h;
	int fd;

	if (!fn || !cache__ref_ok(ref))
		return -EINVAL;
	h = cache__key_hash(ref->blob, ref->index);
	oc = find(t, h, ref->blob, ref->index);
	if (oc) {
		/* No open, no new fd; the cache still counts the hit and
		 * its recency. */
		oc->refs++;
		cache__touch(t->c, ref, h);
		*out = &oc->pub;
		return 0;
	}
	fd = cache__get(t->c, ref, h, fn, arg);
	if (fd < 0)
		return fd;
	*out = add(t, ref->blob, ref->index, fd);
	return 0;
}

struct cache_file *cache_file_adopt(cache_files_t *t, const char *blob, uint32_t index, int fd)
{
	struct open_chunk *oc = find(t, cache__key_hash(blob, index), blob, index);

	if (!oc)
		return add(t, blob, index, fd);
	/* Another stream's fill or hit came first: one fd is enough. */
	close(fd);
	oc->refs++;
	return &oc->pub;
}

void cache_file_release(cache_files_t *t, struct cache_file *f)
{
	struct open_chunk *oc = container_of(f, struct open_chunk, pub);

	if (--oc->refs)
		return;
	cache__table_remove(&t->open, &oc->node);
	close(oc->pub.fd);
	free(oc);
}
