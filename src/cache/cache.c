/*
 * The chunk cache.
 *
 * One mutex guards everything in memory: the index of cached chunks (a
 * chained hash table keyed by (blob, index) plus an intrusive LRU list),
 * the table of fills in flight with their waiter lists, and two work
 * queues. A hit holds it for one hash lookup and an LRU move; the open()
 * happens outside it. Work done per chunk (origin read, AEAD open, file
 * write) runs on the cache's own threads without the lock, so a slow
 * origin never stalls hits. A finer lock would only pay off past the tens
 * of thousands of hits per second a node's disks and NICs can serve.
 *
 * Invariants that make the file handling race-free:
 * - a chunk's key is in at most one of the index and the fill table;
 * - only an index entry's file is ever unlinked, and only under the lock;
 * - so a fill owns its chunk's final name until it inserts the entry: it
 *   renames its temporary file there and opens one fd per waiter (each its
 *   own open file description, so offsets are not shared) without the
 *   lock, and no eviction can remove the file underneath it.
 * An fd handed out stays readable after eviction: unlink frees the blocks
 * only when the last fd closes. Files are not fsync'd: a cache file is
 * only a copy, and the rename makes a crash leave the whole file or none.
 *
 * Demand fills go before prefetches: a stream waiting for a chunk must not
 * queue behind the read-ahead of other streams.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BLOB_MAX (sizeof(((struct chunk_ref *)0)->blob) - 1)
#define TMP_SUFFIX ".tmp"
/* "/BB/" + blob + "-IIIIIIII" + ".tmp" + NUL, with room to spare */
#define NAME_MAX_LEN 64

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* A chunk's identity, and its link in a hash chain. */
struct cnode {
	struct cnode *hnext;
	uint64_t hash;
	uint32_t index;
	char blob[BLOB_MAX + 1];
};

struct table {
	struct cnode **b;
	size_t mask; /* buckets - 1, a power of two minus one */
	size_t n;
};

/* A chunk on disk. */
struct entry {
	struct cnode node;
	struct entry *prev, *next; /* LRU: head is the most recently used */
	uint64_t size;
};

struct waiter {
	struct waiter *next;
	cache_ready_fn fn;
	void *arg;
	int fd; /* or -errno, once known */
};

struct fqueue {
	struct fill *head, *tail;
};

/* A chunk being fetched. Queued (q set) until a thread takes it. */
struct fill {
	struct cnode node;
	struct fill *qprev, *qnext;
	struct fqueue *q;
	struct chunk_ref ref;
	struct waiter *waiters, **wtail;
};

#define OWNER_THREADS 2 /* fill threads kept for peers' requests */

struct cache {
	char dir[PATH_MAX - NAME_MAX_LEN];
	uint64_t budget;
	origin_t *origin;
	int lock_fd;

	pthread_mutex_t lock;
	pthread_cond_t work;
	bool stopping;
	struct table index, fills;
	struct entry *lru_head, *lru_tail;
	/* owner: fills a peer asked for (no_peers). They never wait on
	 * another node, and OWNER_THREADS threads take only them, so a node
	 * whose other fill threads all wait on peers still answers its own
	 * peers: fills waiting on each other across nodes cannot all block. */
	struct fqueue owner, demand, ahead;
	uint64_t bytes, chunks, misses, origin_reads, origin_bytes, evictions;
	uint64_t peer_reads, peer_bytes;
	struct cache_peers peers; /* fetch NULL: no peers (one node) */
	atomic_uint_fast64_t hits; /* counted after the open, outside the lock */

	pthread_t *threads;
	int nthreads;
};

/* FNV-1a over the blob, then the index mixed in. Blobs are random, so
 * this is only to spread them over the buckets. */
static uint64_t key_hash(const char *blob, uint32_t index)
{
	uint64_t h = hash_fnv1a_str(HASH_FNV1A_INIT, blob);

	h = (h ^ index) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static void table_init(struct table *t)
{
	t->mask = 63;
	t->b = xcalloc(t->mask + 1, sizeof(*t->b));
	t->n = 0;
}

static struct cnode *table_find(const struct table *t, uint64_t h, const char *blob, uint32_t index)
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

static void table_insert(struct table *t, struct cnode *n)
{
	if (t->n > t->mask)
		table_grow(t);
	n->hnext = t->b[n->hash & t->mask];
	t->b[n->hash & t->mask] = n;
	t->n++;
}

static void table_remove(struct table *t, struct cnode *n)
{
	struct cnode **p = &t->b[n->hash & t->mask];

	while (*p != n)
		p = &(*p)->hnext;
	*p = n->hnext;
	t->n--;
}

static void cnode_set(struct cnode *n, const char *blob, uint32_t index)
{
	snprintf(n->blob, sizeof(n->blob), "%s", blob);
	n->index = index;
	n->hash = key_hash(n->blob, index);
}

/* Blob ids become file names: only what chorus makes (lower-case hex) is
 * accepted, so no reference can name a path outside the cache. */
static bool blob_ok(const char *blob, size_t maxlen)
{
	size_t n = strnlen(blob, maxlen + 1);

	if (n < 2 || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((blob[i] >= '0' && blob[i] <= '9') || (blob[i] >= 'a' && blob[i] <= 'f')))
			return false;
	return true;
}

/* Fits: cache_open bounds the directory's length. */
static void chunk_path(const struct cache *c, const char *blob, uint32_t index, bool tmp,
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

static void index_add(struct cache *c, const char *blob, uint32_t index, uint64_t size)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	cnode_set(&e->node, blob, index);
	e->size = size;
	table_insert(&c->index, &e->node);
	lru_push_head(c, e);
	c->bytes += size;
	c->chunks++;
}

/* Forgets an entry; with unlink_file, removes its file too. Lock held. */
static void index_drop(struct cache *c, struct entry *e, bool unlink_file)
{
	char path[PATH_MAX];

	if (unlink_file) {
		chunk_path(c, e->node.blob, e->node.index, false, path);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cache: cannot remove %s: %s", path, strerror(errno));
	}
	table_remove(&c->index, &e->node);
	lru_unlink(c, e);
	c->bytes -= e->size;
	c->chunks--;
	free(e);
}

/* Lock held. The newest entry goes too when it alone is over the budget:
 * whoever waited for it already holds an fd. */
static void evict_to_budget(struct cache *c)
{
	while (c->bytes > c->budget && c->lru_tail) {
		index_drop(c, c->lru_tail, true);
		c->evictions++;
	}
}

static void fq_push(struct fqueue *q, struct fill *f)
{
	f->q = q;
	f->qnext = NULL;
	f->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = f;
	else
		q->head = f;
	q->tail = f;
}

static void fq_remove(struct fill *f)
{
	struct fqueue *q = f->q;

	if (f->qprev)
		f->qprev->qnext = f->qnext;
	else
		q->head = f->qnext;
	if (f->qnext)
		f->qnext->qprev = f->qprev;
	else
		q->tail = f->qprev;
	f->q = NULL;
	f->qprev = f->qnext = NULL;
}

/* Lock held. Peers' fills first, then demand, then read-ahead; an
 * owner-only thread takes only peers'. */
static struct fill *fq_pop(struct cache *c, bool owner_only)
{
	struct fill *f = c->owner.head;

	if (!f && !owner_only)
		f = c->demand.head ? c->demand.head : c->ahead.head;
	if (f)
		fq_remove(f);
	return f;
}

static struct fill *fill_new(struct cache *c, const struct chunk_ref *ref)
{
	struct fill *f = xcalloc(1, sizeof(*f));

	cnode_set(&f->node, ref->blob, ref->index);
	f->ref = *ref;
	f->wtail = &f->waiters;
	table_insert(&c->fills, &f->node);
	return f;
}

static void fill_free(struct fill *f)
{
	explicit_bzero(f->ref.key, sizeof(f->ref.key));
	free(f);
}

static void fill_add_waiter(struct fill *f, cache_ready_fn fn, void *arg)
{
	struct waiter *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	w->fd = -EIO;
	*f->wtail = w;
	f->wtail = &w->next;
}

static struct waiter *fill_take_waiters(struct fill *f)
{
	struct waiter *w = f->waiters;

	f->waiters = NULL;
	f->wtail = &f->waiters;
	return w;
}

/* Without the lock: callbacks may call back into the cache. */
static void deliver(struct waiter *w)
{
	while (w) {
		struct waiter *next = w->next;

		w->fn(w->arg, w->fd);
		free(w);
		w = next;
	}
}

/* Writes the plaintext and its tag (the opened copy: ref->len bytes of
 * plaintext, then the 16 of the tag) under a temporary name and renames it
 * into place, so the final name only ever holds a whole chunk. */
static int write_chunk(struct cache *c, const struct chunk_ref *ref, const void *plain)
{
	char tmp[PATH_MAX], path[PATH_MAX], sub[PATH_MAX];
	int fd, rc;

	/* Single flight makes this process the only writer of tmp, and the
	 * directory lock keeps other processes out. */
	chunk_path(c, ref->blob, ref->index, true, tmp);
	chunk_path(c, ref->blob, ref->index, false, path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) {
		snprintf(sub, sizeof(sub), "%s/%.2s", c->dir, ref->blob);
		if (mkdir(sub, 0750) < 0 && errno != EEXIST)
			return -errno;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	}
	if (fd < 0)
		return -errno;
	rc = fs_write_full(fd, plain, (size_t)ref->len + SEAL_TAG_LEN);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/*
 * Hands the result to every waiter and retires the fill. On success the
 * file is at its final name but not yet in the index, so nothing evicts it
 * while waiters' fds are opened without the lock; the fill stays in the
 * table meanwhile so late comers still join it, and are served by the next
 * round.
 */
/* origin_read: the fill read the origin (sealed_bytes of it). */
static void fill_complete(struct cache *c, struct fill *f, int rc, bool origin_read,
			  uint64_t sealed_bytes)
{
	struct waiter *done = NULL, **dtail = &done, *w;
	char path[PATH_MAX];

	chunk_path(c, f->ref.blob, f->ref.index, false, path);
	pthread_mutex_lock(&c->lock);
	c->origin_reads += origin_read;
	c->origin_bytes += sealed_bytes;
	while (rc == 0 && f->waiters) {
		w = fill_take_waiters(f);
		pthread_mutex_unlock(&c->lock);
		*dtail = w;
		for (; w; w = w->next) {
			w->fd = open(path, O_RDONLY | O_CLOEXEC);
			if (w->fd < 0)
				w->fd = -errno;
			dtail = &w->next;
		}
		pthread_mutex_lock(&c->lock);
	}
	table_remove(&c->fills, &f->node);
	if (rc == 0) {
		index_add(c, f->ref.blob, f->ref.index, f->ref.len);
		evict_to_budget(c);
	} else {
		*dtail = fill_take_waiters(f);
		for (w = *dtail; w; w = w->next)
			w->fd = rc;
	}
	pthread_mutex_unlock(&c->lock);
	deliver(done);
	fill_free(f);
}

/* Opens a sealed copy in place; 0 or -EBADMSG. A length other than the
 * manifest's is a damaged copy, whatever the tag says. */
static int open_copy(const struct chunk_ref *ref, char *sealed, size_t sealed_len)
{
	if (sealed_len != (size_t)ref->len + SEAL_TAG_LEN)
		return -EBADMSG;
	/* In place: the plaintext is the sealed buffer minus its tag, one
	 * 1 MiB copy less on the way to the first byte. */
	return seal_open(ref->key, ref->index, sealed, sealed_len, (unsigned char *)sealed);
}

/* Asks the peers in their ranking for a copy that verifies; 0 with it in
 * *sealed (opened), or < 0: fill from the origin. */
static int from_peers(struct cache *c, const struct cache_peers *peers,
		      const struct chunk_ref *ref, char **sealed)
{
	for (int n = 0;; n++) {
		size_t len = 0;
		int rc = peers->fetch(peers->ud, ref, n, sealed, &len);

		if (rc == -ENODATA)
			return rc;
		pthread_mutex_lock(&c->lock);
		c->peer_reads++;
		c->peer_bytes += rc == 0 ? len : 0;
		pthread_mutex_unlock(&c->lock);
		if (rc == 0 && (rc = open_copy(ref, *sealed, len)) == 0)
			return 0;
		if (rc == -EBADMSG)
			log_warn("cache: a peer's copy of %s-%08x failed verification; asking the next",
				 ref->blob, ref->index);
		free(*sealed);
		*sealed = NULL;
	}
}

/* Fetches, verifies and stores one chunk: from a peer when the cluster
 * ranks one first, else from the origin. Blocking; no lock held. */
static void fill_run(struct cache *c, struct fill *f)
{
	const struct chunk_ref *ref = &f->ref;
	char key[ORIGIN_KEY_MAX];
	char *sealed = NULL;
	size_t sealed_len = 0;
	bool origin_read = false;
	struct cache_peers peers;
	int rc = -ENODATA;

	pthread_mutex_lock(&c->lock);
	peers = c->peers;
	pthread_mutex_unlock(&c->lock);
	if (peers.fetch && !ref->no_peers)
		rc = from_peers(c, &peers, ref, &sealed);
	if (rc < 0) {
		origin_read = true;
		origin_chunk_key(ref->blob, ref->index, key);
		rc = origin_get(c->origin, key, &sealed, &sealed_len);
		if (rc < 0) {
			if (rc != -ENOENT)
				log_warn("cache: cannot read %s from %s: %s", key, c->origin->desc,
					 strerror(-rc));
			sealed_len = 0;
			goto out;
		}
		if ((rc = open_copy(ref, sealed, sealed_len)) < 0) {
			log_warn("cache: chunk %s in %s failed verification; not cached", key,
				 c->origin->desc);
			goto out;
		}
	}
	rc = write_chunk(c, ref, (unsigned char *)sealed);
	if (rc < 0)
		log_warn("cache: cannot write chunk %s-%08x under %s: %s", ref->blob, ref->index,
			 c->dir, strerror(-rc));
out:
	free(sealed);
	fill_complete(c, f, rc, origin_read, sealed_len);
}

int cache_read_sealed(cache_t *c, const struct chunk_ref *ref, int fd, unsigned char *out)
{
	size_t n = (size_t)ref->len + SEAL_TAG_LEN;
	unsigned char *file = xmalloc(n);
	int rc = 0;

	if (fs_pread_full(fd, file, n, 0) < 0) {
		rc = -EIO;
	} else if (seal_chunk(ref->key, ref->index, file, ref->len, out) < 0) {
		rc = -EIO;
	} else if (CRYPTO_memcmp(out + ref->len, file + ref->len, SEAL_TAG_LEN) != 0) {
		/* The plaintext is not what was verified when it was cached. */
		char path[PATH_MAX];
		uint64_t h = key_hash(ref->blob, ref->index);
		struct cnode *node;

		log_warn("cache: %s-%08x changed on disk since it was verified; dropping it",
			 ref->blob, ref->index);
		chunk_path(c, ref->blob, ref->index, false, path);
		pthread_mutex_lock(&c->lock);
		node = table_find(&c->index, h, ref->blob, ref->index);
		if (node)
			index_drop(c, container_of(node, struct entry, node), true);
		pthread_mutex_unlock(&c->lock);
		rc = -EBADMSG;
	}
	free(file);
	return rc;
}

void cache_set_peers(cache_t *c, const struct cache_peers *p)
{
	pthread_mutex_lock(&c->lock);
	c->peers = p ? *p : (struct cache_peers){0};
	pthread_mutex_unlock(&c->lock);
}

static void work(struct cache *c, bool owner_only)
{
	struct fill *f;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		while (!c->stopping && !c->owner.head &&
		       (owner_only || (!c->demand.head && !c->ahead.head)))
			pthread_cond_wait(&c->work, &c->lock);
		f = c->stopping ? NULL : fq_pop(c, owner_only);
		pthread_mutex_unlock(&c->lock);
		if (!f)
			return;
		fill_run(c, f);
	}
}

static void *worker(void *arg)
{
	work(arg, false);
	return NULL;
}

static void *owner_worker(void *arg)
{
	work(arg, true);
	return NULL;
}

static bool ref_ok(const struct chunk_ref *ref)
{
	return blob_ok(ref->blob, BLOB_MAX);
}

/* Lock held. Joins the fill in flight or starts one. */
static int miss(struct cache *c, const struct chunk_ref *ref, uint64_t h, cache_ready_fn fn,
		void *arg)
{
	struct cnode *n = table_find(&c->fills, h, ref->blob, ref->index);
	struct fill *f;

	if (c->stopping)
		return -ECANCELED;
	c->misses++;
	if (n) {
		f = container_of(n, struct fill, node);
		/* Somebody now waits for a read-ahead: promote it. */
		if (f->q == &c->ahead) {
			fq_remove(f);
			fq_push(ref->no_peers ? &c->owner : &c->demand, f);
		}
	} else {
		f = fill_new(c, ref);
		fq_push(ref->no_peers ? &c->owner : &c->demand, f);
		/* All: an owner-only thread may be the one waiting. */
		pthread_cond_broadcast(&c->work);
	}
	fill_add_waiter(f, fn, arg);
	return -EINPROGRESS;
}

int cache_get(cache_t *c, const struct chunk_ref *ref, cache_ready_fn fn, void *arg)
{
	char path[PATH_MAX];
	struct cnode *n;
	struct entry *e;
	uint64_t h;
	int fd, rc;

	if (!fn || !ref_ok(ref))
		return -EINVAL;
	h = key_hash(ref->blob, ref->index);
	chunk_path(c, ref->blob, ref->index, false, path);

	pthread_mutex_lock(&c->lock);
	n = table_find(&c->index, h, ref->blob, ref->index);
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
		n = table_find(&c->index, h, ref->blob, ref->index);
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
			index_drop(c, e, false);
			e = NULL;
		}
	}
	/* A size other than the manifest's: not the chunk asked for. */
	if (e) {
		log_warn("cache: %s has %llu bytes, expected %u; fetching it again", path,
			 (unsigned long long)e->size, ref->len);
		index_drop(c, e, true);
	}
	rc = miss(c, ref, h, fn, arg);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void cache_touch(cache_t *c, const struct chunk_ref *ref)
{
	uint64_t h;
	struct cnode *n;

	if (!ref_ok(ref))
		return;
	h = key_hash(ref->blob, ref->index);
	pthread_mutex_lock(&c->lock);
	n = table_find(&c->index, h, ref->blob, ref->index);
	if (n) {
		struct entry *e = container_of(n, struct entry, node);
		lru_unlink(c, e);
		lru_push_head(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	c->hits++;
}

void cache_prefetch(cache_t *c, const struct chunk_ref *ref)
{
	struct fill *f;
	uint64_t h;

	if (!ref_ok(ref))
		return;
	h = key_hash(ref->blob, ref->index);
	pthread_mutex_lock(&c->lock);
	if (!c->stopping && !table_find(&c->index, h, ref->blob, ref->index) &&
	    !table_find(&c->fills, h, ref->blob, ref->index)) {
		f = fill_new(c, ref);
		fq_push(&c->ahead, f);
		pthread_cond_broadcast(&c->work);
	}
	pthread_mutex_unlock(&c->lock);
}

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
	};
	pthread_mutex_unlock(&c->lock);
}

/* "BLOB-IIIIIIII" in fan-out directory BB, as chunk_path writes it. */
static int parse_name(const char *name, const char *fanout, char blob[BLOB_MAX + 1],
		      uint32_t *index)
{
	const char *dash = strrchr(name, '-');
	size_t blen;

	if (!dash || strlen(dash + 1) != 8)
		return -1;
	blen = (size_t)(dash - name);
	if (blen < 2 || blen > BLOB_MAX || strncmp(name, fanout, 2) != 0)
		return -1;
	memcpy(blob, name, blen);
	blob[blen] = '\0';
	if (!blob_ok(blob, BLOB_MAX) || !blob_ok(dash + 1, 8))
		return -1;
	*index = (uint32_t)strtoul(dash + 1, NULL, 16);
	return 0;
}

static bool is_fanout(const char *name)
{
	return strlen(name) == 2 && blob_ok(name, 2);
}

static bool is_tmp(const char *name)
{
	size_t n = strlen(name), s = strlen(TMP_SUFFIX);

	return n >= s && strcmp(name + n - s, TMP_SUFFIX) == 0;
}

struct found {
	struct entry *e;
	struct timespec t;
};

static int found_cmp(const void *a, const void *b)
{
	const struct timespec *x = &((const struct found *)a)->t, *y = &((const struct found *)b)->t;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return (x->tv_nsec > y->tv_nsec) - (x->tv_nsec < y->tv_nsec);
}

/* The later of access and modification: a fill sets the mtime, a read
 * the atime (at least daily under relatime), so this is when the chunk
 * was last known to be used. */
static struct timespec last_use(const struct stat *st)
{
	const struct timespec *a = &st->st_atim, *m = &st->st_mtim;

	if (a->tv_sec != m->tv_sec)
		return a->tv_sec > m->tv_sec ? *a : *m;
	return a->tv_nsec > m->tv_nsec ? *a : *m;
}

/* Scans one fan-out directory: removes temporaries, collects chunks. */
static int scan_fanout(struct cache *c, int topfd, const char *fanout, struct found **v, size_t *n,
		       size_t *cap, size_t *tmps)
{
	struct dirent *de;
	struct stat st;
	char blob[BLOB_MAX + 1];
	uint32_t index;
	DIR *d;
	int fd;

	fd = openat(topfd, fanout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (is_tmp(de->d_name)) {
			if (unlinkat(fd, de->d_name, 0) == 0)
				(*tmps)++;
			continue;
		}
		if (parse_name(de->d_name, fanout, blob, &index) < 0 ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		/* The same name cannot appear twice in one directory. */
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*v = xrealloc(*v, *cap * sizeof(**v));
		}
		(*v)[*n].e = xcalloc(1, sizeof(struct entry));
		cnode_set(&(*v)[*n].e->node, blob, index);
		/* The plaintext's size: the file ends with the tag. (A shorter
		 * file has a size no manifest asks for, and is fetched again.) */
		(*v)[*n].e->size = st.st_size >= SEAL_TAG_LEN ? (uint64_t)st.st_size - SEAL_TAG_LEN
							      : UINT64_MAX;
		(*v)[*n].t = last_use(&st);
		(*n)++;
	}
	closedir(d);
	return 0;
}

/* Rebuilds the index from the directory, oldest use at the LRU tail, and
 * applies the budget (it may have shrunk since the last run). */
static int index_scan(struct cache *c, char *err, size_t errlen)
{
	struct found *v = NULL;
	size_t n = 0, cap = 0, tmps = 0;
	struct dirent *de;
	DIR *top;
	int rc = 0;

	top = opendir(c->dir);
	if (!top) {
		rc = -errno;
		snprintf(err, errlen, "cannot read cache directory %s: %s", c->dir, strerror(errno));
		return rc;
	}
	while (rc == 0 && (de = readdir(top)))
		if (is_fanout(de->d_name))
			rc = scan_fanout(c, dirfd(top), de->d_name, &v, &n, &cap, &tmps);
	closedir(top);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read cache directory %s: %s", c->dir, strerror(-rc));
		for (size_t i = 0; i < n; i++)
			free(v[i].e);
		goto out;
	}
	if (n)
		qsort(v, n, sizeof(*v), found_cmp);
	for (size_t i = 0; i < n; i++) {
		table_insert(&c->index, &v[i].e->node);
		lru_push_head(c, v[i].e);
		c->bytes += v[i].e->size;
		c->chunks++;
	}
	evict_to_budget(c);
	log_info("cache: %s: %llu chunks, %llu bytes (%zu temporary files removed)", c->dir,
		 (unsigned long long)c->chunks, (unsigned long long)c->bytes, tmps);
out:
	free(v);
	return rc;
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

int cache_open(const char *dir, uint64_t budget_bytes, origin_t *origin, int threads,
	       cache_t **out, char *err, size_t errlen)
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
	table_init(&c->index);
	table_init(&c->fills);
	c->threads = xcalloc((size_t)threads + OWNER_THREADS, sizeof(*c->threads));

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
	rc = index_scan(c, err, errlen);
	if (rc < 0)
		goto fail;
	for (; c->nthreads < threads + OWNER_THREADS; c->nthreads++) {
		rc = -pthread_create(&c->threads[c->nthreads], NULL,
				     c->nthreads < threads ? worker : owner_worker, c);
		if (rc < 0) {
			snprintf(err, errlen, "cannot start cache threads: %s", strerror(-rc));
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	cache_close(c);
	return rc;
}

void cache_close(cache_t *c)
{
	struct waiter *done = NULL, **dtail = &done;
	struct fill *f;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	/* Fills already running finish and call their waiters. */
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);

	/* No thread is left: what is in the queues never started. */
	pthread_mutex_lock(&c->lock);
	while ((f = fq_pop(c, false))) {
		table_remove(&c->fills, &f->node);
		*dtail = fill_take_waiters(f);
		for (; *dtail; dtail = &(*dtail)->next)
			(*dtail)->fd = -ECANCELED;
		fill_free(f);
	}
	pthread_mutex_unlock(&c->lock);
	deliver(done);
	cache_free(c);
}
