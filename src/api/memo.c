#include "api/memo.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/xalloc.h"

void memo_init(struct memo *m, size_t budget)
{
	memset(m, 0, sizeof(*m));
	m->nbuckets = 1024;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	m->budget = budget;
	m->version = -1;
}

static void memo_clear(struct memo *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct memo_entry *e = m->buckets[i];
		while (e) {
			struct memo_entry *next = e->next;
			free(e);
			e = next;
		}
		m->buckets[i] = NULL;
	}
	m->count = m->bytes = 0;
}

void memo_free(struct memo *m)
{
	if (!m->buckets)
		return;
	memo_clear(m);
	free(m->buckets);
	m->buckets = NULL;
}

void memo_sync(struct memo *m, int64_t version)
{
	if (version != m->version || version < 0) {
		memo_clear(m);
		m->version = version;
	}
}

const struct memo_entry *memo_get(const struct memo *m, const char *key, size_t keylen)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, key, keylen);

	for (const struct memo_entry *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
			return e;
	return NULL;
}

static void grow(struct memo *m)
{
	size_t n = m->nbuckets * 2;
	struct memo_entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct memo_entry *e = m->buckets[i];
		while (e) {
			struct memo_entry *next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void memo_put(struct memo *m, const char *key, size_t keylen, int status, const char *ctype,
	      const void *body, size_t len)
{
	size_t clen = strlen(ctype) + 1;
	size_t size = sizeof(struct memo_entry) + keylen + clen + len;
	struct memo_entry *e;

	if (m->version < 0 || size > m->budget / 8 || memo_get(m, key, keylen))
		return;
	if (m->bytes + size > m->budget)
		memo_clear(m);
	if (m->count >= m->nbuckets)
		grow(m);
	e = xmalloc(size);
	e->hash = hash_fnv1a(HASH_FNV1A_INIT, key, keylen);
	e->status = status;
	e->key = e->data;
	memcpy(e->key, key, keylen);
	e->keylen = keylen;
	e->ctype = e->data + keylen;
	memcpy(e->ctype, ctype, clen);
	e->body = e->ctype + clen;
	memcpy(e->body, body, len);
	e->len = len;
	e->next = m->buckets[e->hash & (m->nbuckets - 1)];
	m->buckets[e->hash & (m->nbuckets - 1)] = e;
	m->count++;
	m->bytes += size;
}
