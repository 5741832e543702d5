/*
 * Fills: getting a chunk that is not cached onto the disk, verified.
 *
 * A miss becomes a fill in c->fills, queued for the cache's own threads;
 * every get of the chunk while it is in flight joins its waiter list, so
 * one read serves them all (single flight). A fill thread asks the peers
 * that the cluster ranks before this node, then the origin; opens the
 * sealed copy in place (AEAD: a copy that fails to verify is never
 * written); writes plaintext and tag under a temporary name and renames
 * it to the final one. By the invariants at the top of index.c the fill
 * then owns that name until it inserts the index entry, so it opens one fd
 * per waiter without the lock, and only then inserts and evicts to the
 * budget. Waiters are called without the lock. cache_read_sealed, the way
 * back for a peer (the cached plaintext sealed again, its tag checked
 * against the kept one), is here too.
 *
 * Three queues: fills a peer asked for, which OWNER_THREADS threads take
 * and nothing else (see struct cache), then demand fills, then
 * prefetches. Demand goes before read-ahead: a stream waiting for a chunk
 * must not queue behind the read-ahead of other streams.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

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

	cache__cnode_set(&f->node, ref->blob, ref->index);
	f->ref = *ref;
	f->wtail = &f->waiters;
	cache__table_insert(&c->fills, &f->node);
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
	cache__chunk_path(c, ref->blob, ref->index, true, tmp);
	cache__chunk_path(c, ref->blob, ref->index, false, path);
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
 * round. origin_read: the fill read the origin (sealed_bytes of it).
 */
static void fill_complete(struct cache *c, struct fill *f, int rc, bool origin_read,
			  uint64_t sealed_bytes)
{
	struct waiter *done = NULL, **dtail = &done, *w;
	char path[PATH_MAX];

	cache__chunk_path(c, f->ref.blob, f->ref.index, false, path);
	pthread_mutex_lock(&c->lock);
	c->origin_reads += origin_read;
	c->origin_bytes += sealed_bytes;
	c->filled += rc == 0;
	if (origin_read) {
		c->origin_errors += rc < 0;
		c->origin_failing = rc < 0;
	}
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
	cache__table_remove(&c->fills, &f->node);
	if (rc == 0) {
		cache__index_add(c, f->ref.blob, f->ref.index, f->ref.len);
		cache__evict_to_budget(c);
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
static int from_peers(struct cache *c, const struct cache_peers *peers, const struct chunk_ref *ref,
		      char **sealed)
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
			log_warn("cache: a peer's copy of %s-%08x failed verification; asking the "
				 "next",
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
		uint64_t h = cache__key_hash(ref->blob, ref->index);
		struct cnode *node;

		log_warn("cache: %s-%08x changed on disk since it was verified; dropping it",
			 ref->blob, ref->index);
		cache__chunk_path(c, ref->blob, ref->index, false, path);
		pthread_mutex_lock(&c->lock);
		node = cache__table_find(&c->index, h, ref->blob, ref->index);
		if (node)
			cache__index_drop(c, container_of(node, struct entry, node), true);
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

int cache__fill_miss(struct cache *c, const struct chunk_ref *ref, uint64_t h, cache_ready_fn fn,
		     void *arg)
{
	struct cnode *n = cache__table_find(&c->fills, h, ref->blob, ref->index);
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

void cache_prefetch(cache_t *c, const struct chunk_ref *ref)
{
	struct fill *f;
	uint64_t h;

	if (!cache__ref_ok(ref))
		return;
	h = cache__key_hash(ref->blob, ref->index);
	pthread_mutex_lock(&c->lock);
	if (!c->stopping && !cache__table_find(&c->index, h, ref->blob, ref->index) &&
	    !cache__table_find(&c->fills, h, ref->blob, ref->index)) {
		f = fill_new(c, ref);
		fq_push(&c->ahead, f);
		pthread_cond_broadcast(&c->work);
	}
	pthread_mutex_unlock(&c->lock);
}

int cache__fills_start(struct cache *c, int threads)
{
	c->threads = xcalloc((size_t)threads + OWNER_THREADS, sizeof(*c->threads));
	for (; c->nthreads < threads + OWNER_THREADS; c->nthreads++) {
		int rc = thread_start(&c->threads[c->nthreads],
				      c->nthreads < threads ? worker : owner_worker, c);
		if (rc)
			return -rc;
	}
	return 0;
}

void cache__fills_stop(struct cache *c)
{
	struct waiter *done = NULL, **dtail = &done;
	struct fill *f;

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
		cache__table_remove(&c->fills, &f->node);
		*dtail = fill_take_waiters(f);
		for (; *dtail; dtail = &(*dtail)->next)
			(*dtail)->fd = -ECANCELED;
		fill_free(f);
	}
	pthread_mutex_unlock(&c->lock);
	deliver(done);
}
