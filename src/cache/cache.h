#ifndef CHORUS_CACHE_CACHE_H
#define CHORUS_CACHE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/seal.h"
#include "origin/origin.h"

/*
 * The chunk cache: plaintext chunks on the node's disk under DIR/cache, so
 * cache hits go from file to socket with sendfile.
 *
 * - A chunk enters the cache only after its AEAD tag verified (it is read
 *   sealed from the origin and opened by a fill thread).
 * - Fills are atomic (temporary name, rename); a file at its final name is
 *   always a whole, verified chunk, also after kill -9.
 * - Concurrent misses for one chunk share one origin read (single flight).
 * - LRU eviction keeps the total under a byte budget. Evicting unlinks the
 *   file; a stream holding its fd keeps reading it.
 * - The index is rebuilt from the directory at start: the cache stays warm
 *   across restarts.
 *
 * Thread-safe. Fills run on the cache's own threads; callbacks run there
 * (or, for fills cancelled by cache_close, on the thread calling it),
 * never with the cache's lock held, so a callback may call cache_get or
 * cache_prefetch, but not cache_close.
 *
 * Layout: DIR/BB/BLOB-IIIIIIII (BB the blob's first two digits, IIIIIIII
 * the index in hex), holding the plaintext and then the 16-byte tag it was
 * verified with (streams send the plaintext part; cache_read_sealed checks
 * it against the tag before a peer gets it); fills write BLOB-IIIIIIII.tmp first, and cache_open
 * removes any such file a crash left. DIR/.lock keeps a second process
 * off the same directory.
 */
typedef struct cache cache_t;

/* Which chunk: the blob (origin prefix), index and the key to open it. */
struct chunk_ref {
	char blob[33];
	uint32_t index;
	uint32_t len; /* plaintext length */
	uint8_t key[SEAL_KEY_LEN];
	bool no_peers; /* fill from the origin only (a peer asked: it ranked us first) */
};

struct cache_stats {
	uint64_t bytes, budget_bytes; /* plaintext bytes held now; the budget */
	uint64_t hits, misses;        /* chunks asked for through cache_get */
	uint64_t origin_reads;        /* origin gets made, failed ones included */
	uint64_t origin_bytes;        /* sealed bytes those gets returned */
	uint64_t peer_reads;          /* chunks asked of peers, failed asks included */
	uint64_t peer_bytes;          /* sealed bytes peers returned */
	uint64_t evictions;           /* chunks evicted to keep to the budget */
	uint64_t chunks;              /* chunks held now */
	uint64_t fills;               /* chunks filled (from a peer or the origin) */
	uint64_t origin_errors;       /* origin reads that failed */
	bool origin_failing;          /* the last origin read failed */
};

/* fd >= 0: an open, read-only fd of the chunk's file, owned by the callee
 * of the callback; < 0: -errno (-EBADMSG: the origin's copy failed to
 * verify, -ENOENT: not in the origin, -EIO...). */
typedef void (*cache_ready_fn)(void *arg, int fd);

/*
 * Opens (creating it) the cache directory dir, indexes the chunks already
 * there (least recently used by file times first), evicts down to
 * budget_bytes and starts threads (>= 1) fill threads reading from origin,
 * which must outlive the cache. Returns 0, or -errno with a message in err
 * (-EBUSY: another cache, in this process or another, has dir open).
 */
int cache_open(const char *dir, uint64_t budget_bytes, origin_t *origin, int threads, cache_t **out,
	       char *err, size_t errlen);

/* Lets running fills finish, calls the waiters of fills not started with
 * -ECANCELED, stops the threads and frees the cache. */
void cache_close(cache_t *c);

/*
 * Gets a chunk. On a hit returns an open fd (>= 0, the caller closes it)
 * and counts a hit.
 *
 * Returns:
 *   fd >= 0        hit: the caller owns fd;
 *   -EINPROGRESS   miss: fn(arg, fd_or_err) is called exactly once, later,
 *                  on a cache thread, when the fill completes;
 *   other < 0      error before any fill was started (-EINVAL: fn is NULL
 *                  or the blob is not 2-32 lower-case hex digits;
 *                  -ECANCELED: the cache is closing).
 *
 * A hit is a chunk indexed with ref->len bytes; one indexed with another
 * size is dropped and fetched again.
 */
int cache_get(cache_t *c, const struct chunk_ref *ref, cache_ready_fn fn, void *arg);

/* Starts a fill for the chunk if it is neither cached nor being filled;
 * nobody waits for it. Used to read ahead of a stream. */
void cache_prefetch(cache_t *c, const struct chunk_ref *ref);

void cache_get_stats(cache_t *c, struct cache_stats *out);

/*
 * Drops chunks 0 .. chunks-1 of blob from the cache, their files removed
 * (a blob deleted from the catalog, or replaced by a new upload): returns
 * how many were held. A stream holding a chunk's fd keeps reading it; a
 * fill in flight for the blob still completes, and its chunk leaves
 * with the LRU. Takes the lock once per chunk; unlinks on the pool when
 * one is set (cache_set_pool), in place otherwise: call it off the
 * request path (a worker, the replica's thread).
 */
uint32_t cache_drop_blob(cache_t *c, const char *blob, uint32_t chunks);

/*
 * The open-chunk table (cache/files.c): the streams of one event loop that
 * send a chunk share one open fd of its file, sendfile taking the offset,
 * so ten thousand listeners of one track hold a handful of files open.
 *
 * A handle is reference-counted: cache_file_open and cache_file_adopt
 * give the caller one reference, cache_file_release drops it, and the last
 * release closes the fd and frees the handle. Until then the handle and
 * its fd stay valid whatever the cache does: a chunk evicted (its file
 * unlinked) while streamed still streams, and new streams of the loop
 * share that fd until the last holder lets go.
 *
 * Thread: a table and its handles belong to the thread that made the
 * table (its loop); nothing in them is locked. Only a hit on the cache
 * takes the cache's lock, as cache_get does.
 */
typedef struct cache_files cache_files_t;

struct cache_file {
	/* Read-only and shared by every holder: read it at an offset
	 * (sendfile, pread), never move its position. */
	int fd;
};

/* A table over c, for the calling thread. c must outlive every
 * cache_file_open on it; release and free do not use c. */
cache_files_t *cache_files_new(cache_t *c);

/* Frees the table. Every handle must have been released (one that was not
 * is closed, with a warning in the log). NULL is ignored. */
void cache_files_free(cache_files_t *t);

/*
 * A handle of the chunk. When the table has the chunk, takes a reference
 * and counts a hit (no open, no new fd); otherwise asks cache_get.
 *
 * Returns:
 *   0              *out is a handle, with one reference for the caller;
 *   -EINPROGRESS   miss: as for cache_get, fn(arg, fd_or_err) is called
 *                  once, later, on a cache thread; the fd it gets goes to
 *                  cache_file_adopt, on the table's thread;
 *   other < 0      as cache_get (-EINVAL: fn NULL or a bad blob).
 */
int cache_file_open(cache_files_t *t, const struct chunk_ref *ref, cache_ready_fn fn, void *arg,
		    struct cache_file **out);

/* Takes fd (>= 0, owned: from the callback of a cache_file_open) into the
 * table as chunk (blob, index) and returns a handle with one reference for
 * the caller. When the table has the chunk already (another stream's fill
 * or hit came first), fd is closed and that handle is shared. */
struct cache_file *cache_file_adopt(cache_files_t *t, const char *blob, uint32_t index, int fd);

/* Drops the caller's reference to f (from this table); the last one
 * closes the fd and frees f. */
void cache_file_release(cache_files_t *t, struct cache_file *f);

/*
 * The sealed form of a cached chunk, for a peer: reads fd (from cache_get),
 * seals the plaintext again (the same key and nonce give the origin's exact
 * bytes) into out (ref->len + SEAL_TAG_LEN bytes), and checks the tag
 * against the one kept with it. -EBADMSG when they differ (the file changed
 * since it was verified: it is dropped from the cache), -EIO on a read
 * error. Blocking (1 MiB read and seal); any thread.
 */
int cache_read_sealed(cache_t *c, const struct chunk_ref *ref, int fd, unsigned char *out);

/*
 * Other nodes that may hold a chunk (cluster/peer.c). A fill asks
 * fetch(ud, ref, 0, ...), then 1, 2...: the n-th peer in the chunk's
 * ranking, until one returns a copy that verifies; -ENODATA when no peer
 * is left to ask (this node comes next: it fills from the origin). Any
 * other error or a copy that fails to verify moves on to the next. Called
 * on fill threads; blocking.
 */
struct cache_peers {
	int (*fetch)(void *ud, const struct chunk_ref *ref, int n, char **data, size_t *len);
	void *ud;
};

/* Any time (NULL: none); what p->ud points to must outlive the cache, or
 * the next cache_set_peers(c, NULL). */
void cache_set_peers(cache_t *c, const struct cache_peers *p);

/* Evicted chunks' files are unlinked on pool p (loop/pool.h) instead of
 * under the cache's lock; NULL (the default): in place. Any time; p must
 * outlive the cache or be stopped first (a stopped pool refuses the job,
 * and the cache unlinks in place again). */
struct pool;
void cache_set_pool(cache_t *c, struct pool *p);

#endif
