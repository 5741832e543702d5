#ifndef CHORUS_API_MEMO_H
#define CHORUS_API_MEMO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Rendered API answers, per event loop, keyed by request target. The
 * catalog changes rarely and is read constantly: an album's JSON is
 * rendered once and then served from memory until the catalog's data
 * version moves (memo_sync), which empties the memo. Past its byte budget
 * the memo is emptied too: simpler than an LRU, and a catalog that does
 * not fit is mostly read at random anyway. Not thread-safe: one per loop.
 */
struct memo_entry {
	struct memo_entry *next;
	uint64_t hash;
	int status;
	char *ctype; /* points into data */
	char *key;   /* points into data */
	size_t keylen;
	char *body; /* points into data */
	size_t len;
	char data[];
};

struct memo {
	struct memo_entry **buckets;
	size_t nbuckets, count, bytes, budget;
	int64_t version;
};

void memo_init(struct memo *m, size_t budget);
void memo_free(struct memo *m);
/* Empties the memo when version differs from the one it was filled at. */
void memo_sync(struct memo *m, int64_t version);
const struct memo_entry *memo_get(const struct memo *m, const char *key, size_t keylen);
void memo_put(struct memo *m, const char *key, size_t keylen, int status, const char *ctype,
	      const void *body, size_t len);

#endif
