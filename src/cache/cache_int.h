#ifndef CHORUS_CACHE_CACHE_INT_H
#define CHORUS_CACHE_CACHE_INT_H

/*
 * What the files of src/cache/ share; nothing outside src/cache/ includes
 * this (cache/cache.h is the API). Names shared across these files take a
 * double underscore, cache__, so they cannot be taken for the API.
 *
 *   cache.c   open and close: the directory lock, the scan, the threads
 *   index.c   the index and LRU: lookup, insert, evict to the budget
 *   fill.c    fills: threads, single flight, peer/origin reads, verify
 *   scan.c    the start-up scan of the directory
 *   files.c   the open-chunk table of one event loop
 *
 * The lock and the invariants that make the file handling race-free are
 * set out at the top of index.c: every function here that touches struct
 * cache's index, fills or queues says whether it wants c->lock held.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "loop/pool.h"

#define BLOB_MAX (sizeof(((struct chunk_ref *)0)->blob) - 1)
#define TMP_SUFFIX ".tmp"
/* An evicted chunk renamed aside for the pool to unlink: BLOB-IIIIIIII.N.gone */
#define GONE_SUFFIX ".gone"
/* "/BB/" + blob + "-IIIIIIII" + ".tmp" + NUL, with room to spare */
#define NAME_MAX_LEN 64
#define OWNER_THREADS 2 /* fill threads kept for peers' requests */

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* A chunk's identity, and its link in a hash chain. */
struct cnode {
	struct cnode *hnext;
	uint64_t hash;
	uint32_t index;
	char blob[BLOB_MAX + 1];
};

/* A chained hash table of cnodes; grows, never shrinks. Not locked: its
 * owner's lock (or thread) covers it. */
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

struct cache {
	char dir[PATH_MAX - NAME_MAX_LEN];
	uint64_t budget;
	origin_t *origin;
	int lock_fd;

	pthread_mutex_t lock; /* guards what follows, up to hits */
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
	uint64_t filled, origin_errors; /* fills completed; origin reads that failed */
	bool origin_failing;            /* the last origin read failed */
	struct cache_peers peers;       /* fetch NULL: no peers (one node) */
	atomic_uint_fast64_t hits;      /* counted after the open, outside the lock */

	pthread_t *threads;
	int nthreads;

	/* Evictions unlink on this pool (cache_set_pool); NULL: in place. */
	pool_t *pool;
	uint64_t gone_seq; /* names the files renamed aside; under lock */
};

/* index.c: keys, tables and names. They take no lock: a table is guarded
 * by its owner (c->lock for c->index and c->fills, the loop's thread for
 * an open-chunk table). */
uint64_t cache__key_hash(const char *blob, uint32_t index);
void cache__table_init(struct table *t);
struct cnode *cache__table_find(const struct table *t, uint64_t h, const char *blob,
				uint32_t index);
void cache__table_insert(struct table *t, struct cnode *n);
void cache__table_remove(struct table *t, struct cnode *n);
void cache__cnode_set(struct cnode *n, const char *blob, uint32_t index);
bool cache__blob_ok(const char *blob, size_t maxlen);
bool cache__ref_ok(const struct chunk_ref *ref);
void cache__chunk_path(const struct cache *c, const char *blob, uint32_t index, bool tmp,
		       char out[PATH_MAX]);

/* index.c: the index and LRU, lock held. insert takes e (allocated, its
 * node and size set) at the LRU head; drop frees e, and unlinks its file
 * with unlink_file; evict_to_budget drops from the LRU tail. */
void cache__index_insert(struct cache *c, struct entry *e);
void cache__index_add(struct cache *c, const char *blob, uint32_t index, uint64_t size);
void cache__index_drop(struct cache *c, struct entry *e, bool unlink_file);
void cache__evict_to_budget(struct cache *c);

/* index.c: cache_get with the reference checked and its hash known
 * (files.c looks the chunk up in its own table first), and a use of a
 * chunk the table already holds open: counts a hit and refreshes the
 * chunk's place in the LRU. Both take the lock. */
int cache__get(struct cache *c, const struct chunk_ref *ref, uint64_t h, cache_ready_fn fn,
	       void *arg);
void cache__touch(struct cache *c, const struct chunk_ref *ref, uint64_t h);

/* fill.c: a miss joins the fill in flight or queues one (lock held;
 * returns -EINPROGRESS, or -ECANCELED when stopping). */
int cache__fill_miss(struct cache *c, const struct chunk_ref *ref, uint64_t h, cache_ready_fn fn,
		     void *arg);

/* fill.c: starts the fill threads (c->nthreads counts those started;
 * 0 or -errno); stops them, letting running fills finish, and calls the
 * waiters of the fills never started with -ECANCELED (lock not held). */
int cache__fills_start(struct cache *c, int threads);
void cache__fills_stop(struct cache *c);

/* scan.c: rebuilds the index from the directory (lock not needed: no
 * thread runs yet). 0, or -errno with a message in err. */
int cache__scan(struct cache *c, char *err, size_t errlen);

#endif
