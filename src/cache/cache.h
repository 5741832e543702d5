#ifndef CHORUS_CACHE_CACHE_H
#define CHORUS_CACHE_CACHE_H

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
 * Thread-safe. Fills run on the cache's own threads; callbacks run there.
 */
typedef struct cache cache_t;

/* Which chunk: the blob (origin prefix), index and the key to open it. */
struct chunk_ref {
	char blob[33];
	uint32_t index;
	uint32_t len; /* plaintext length */
	uint8_t key[SEAL_KEY_LEN];
};

struct cache_stats {
	uint64_t bytes, budget_bytes;
	uint64_t hits, misses; /* chunks */
	uint64_t origin_reads, origin_bytes;
	uint64_t evictions;
	uint64_t chunks; /* chunks held now */
};

/* fd >= 0: an open, read-only fd of the chunk's file, owned by the callee
 * of the callback; < 0: -errno (-EBADMSG: the origin's copy failed to
 * verify, -ENOENT: not in the origin, -EIO...). */
typedef void (*cache_ready_fn)(void *arg, int fd);

int cache_open(const char *dir, uint64_t budget_bytes, origin_t *origin, int threads,
	       cache_t **out, char *err, size_t errlen);
void cache_close(cache_t *c);


/*
 * Gets a chunk. On a hit returns an open fd (>= 0, the caller closes it)
 * and counts a hit.
 *
 * Returns:
 *   fd >= 0        hit: the caller owns fd;
 *   -EINPROGRESS   miss: fn(arg, fd_or_err) is called exactly once, later,
 *                  on a cache thread, when the fill completes;
 *   other < 0      error before any fill was started.
 */
int cache_get(cache_t *c, const struct chunk_ref *ref, cache_ready_fn fn, void *arg);

/* Starts a fill for the chunk if it is neither cached nor being filled;
 * nobody waits for it. Used to read ahead of a stream. */
void cache_prefetch(cache_t *c, const struct chunk_ref *ref);

void cache_get_stats(cache_t *c, struct cache_stats *out);

#endif
