/*
 * Peer fill (see peer.h). Requests are blocking libcurl calls made on the
 * cache's fill threads, with handles from a small pool so connections to
 * peers are kept alive between chunks.
 */
#include "cluster/peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/http_client.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAX_MEMBERS 256
#define POOL_MAX 8
#define PEER_CONNECT_MS 300
/* A peer sends one sealed chunk: at most 1 MiB and its tag (chunk sizes
 * are the manifest's; anything longer is not a chunk). */
#define BODY_MAX (((size_t)1 << 20) + 4096)

struct peers {
	membership_t *members;
	char site[64];
	uint8_t key[SIGN_KEY_LEN];
	int timeout_ms;

	pthread_mutex_t lock; /* guards the pool */
	CURL *pool[POOL_MAX];
	int npool;
};

uint64_t peers_score(const char *node_id, const char *blob, uint32_t index)
{
	/* FNV-1a over id, a separator, blob and index, then a 64-bit
	 * finaliser (splitmix64) so scores of near-identical inputs are
	 * independent: the ranking must spread chunks evenly. */
	uint64_t h = hash_fnv1a_str(HASH_FNV1A_INIT, node_id);

	h = hash_fnv1a(h, "/", 1);
	h = hash_fnv1a_str(h, blob);
	h = hash_fnv1a_u32(h, index);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

struct ranked {
	struct member m;
	bool near;
	uint64_t score;
};

static int by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->near != y->near)
		return x->near ? -1 : 1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return strcmp(x->m.id, y->m.id);
}

void peers_rank(struct member *m, size_t n, const char *site, const char *blob, uint32_t index)
{
	struct ranked *r = xcalloc(n ? n : 1, sizeof(*r));

	for (size_t i = 0; i < n; i++) {
		r[i].m = m[i];
		r[i].near = strcmp(m[i].site, site) == 0;
		r[i].score = peers_score(m[i].id, blob, index);
	}
	qsort(r, n, sizeof(*r), by_rank);
	for (size_t i = 0; i < n; i++)
		m[i] = r[i].m;
	free(r);
}

static CURL *handle_get(struct peers *p)
{
	CURL *h = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->npool > 0)
		h = p->pool[--p->npool];
	pthread_mutex_unlock(&p->lock);
	return h ? h : curl_easy_init();
}

static void handle_put(struct peers *p, CURL *h)
{
	pthread_mutex_lock(&p->lock);
	if (p->npool < POOL_MAX) {
		p->pool[p->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (h)
		curl_easy_cleanup(h);
}

struct body {
	char *data;
	size_t len, cap;
	bool too_long;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > BODY_MAX) {
		b->too_long = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + n > b->cap) {
		b->cap = b->len + n > ((size_t)1 << 20) + 64 ? BODY_MAX : ((size_t)1 << 20) + 64;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* GET one chunk from one peer. 0 with the body, or < 0. */
static int ask(struct peers *p, const struct member *to, const struct chunk_ref *ref, char **data,
	       size_t *len)
{
	char path[128], url[512], sig[65], hdr[3][160];
	struct curl_slist *headers = NULL;
	struct body b = {0};
	int64_t now = (int64_t)time(NULL);
	long status = 0;
	CURLcode cc;
	CURL *h;
	int rc;

	snprintf(path, sizeof(path), "/internal/chunks/%s/%08" PRIx32, ref->blob, ref->index);
	snprintf(url, sizeof(url), "%s%s", to->address, path);
	sign_request(p->key, "GET", path, now, membership_self_id(p->members), sig);
	snprintf(hdr[0], sizeof(hdr[0]), "X-Chorus-Node: %s", membership_self_id(p->members));
	snprintf(hdr[1], sizeof(hdr[1]), "X-Chorus-Time: %" PRId64, now);
	snprintf(hdr[2], sizeof(hdr[2]), "X-Chorus-Signature: %s", sig);
	for (int i = 0; i < 3; i++)
		headers = curl_slist_append(headers, hdr[i]);
	if (!(h = handle_get(p))) {
		curl_slist_free_all(headers);
		return -ENOMEM;
	}
	curl_easy_reset(h);
	/* Connecting is where a dead or cut-off peer shows: tight. The
	 * answer may take an origin read at the owner: the whole timeout. */
	http_client_setup(h, url,
			  (long)(p->timeout_ms < PEER_CONNECT_MS ? p->timeout_ms : PEER_CONNECT_MS),
			  (long)p->timeout_ms);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	handle_put(p, h);
	curl_slist_free_all(headers);

	if (cc == CURLE_OK && status == 200) {
		membership_ok(p->members, to->id);
		*data = b.data;
		*len = b.len;
		return 0;
	}
	free(b.data);
	if (cc != CURLE_OK) {
		/* Down, cut off or stalled: skip it until it answers again. (A
		 * 5xx is an answer: the peer is up but could not get the chunk,
		 * from the origin most likely.) */
		log_warn("peer %s (%s): %s; asking the next", to->id, to->address,
			 cc != CURLE_OK ? curl_easy_strerror(cc) : "server error");
		membership_suspect(p->members, to->id);
		rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	} else if (status == 401) {
		log_error("peer %s (%s) refused this node's signature: is the cluster key the"
			  " same?",
			  to->id, to->address);
		rc = -EACCES;
	} else {
		/* 404: its catalog may be behind; 503: it could not fill. */
		rc = status == 404 ? -ENOENT : -EIO;
	}
	return rc;
}

/* The cache's fetch: the n-th node ranked before this one. */
static int fetch(void *ud, const struct chunk_ref *ref, int n, char **data, size_t *len)
{
	struct peers *p = ud;
	struct member *m = xcalloc(MAX_MEMBERS, sizeof(*m));
	size_t total = membership_snapshot(p->members, m, MAX_MEMBERS), live = 0;
	int rc = -ENODATA;

	for (size_t i = 0; i < total; i++)
		if (m[i].self || m[i].state == MEMBER_ALIVE)
			m[live++] = m[i];
	peers_rank(m, live, p->site, ref->blob, ref->index);
	for (size_t i = 0; i < live && !m[i].self; i++) {
		if ((int)i == n) {
			rc = ask(p, &m[i], ref, data, len);
			break;
		}
	}
	free(m);
	return rc;
}

struct cache_peers peers_source(peers_t *p)
{
	return (struct cache_peers){.fetch = fetch, .ud = p};
}

int peers_open(const struct peers_opts *o, peers_t **out)
{
	struct peers *p = xcalloc(1, sizeof(*p));

	p->members = o->members;
	snprintf(p->site, sizeof(p->site), "%s", o->site ? o->site : "");
	memcpy(p->key, o->key, SIGN_KEY_LEN);
	p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void peers_close(peers_t *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->npool; i++)
		curl_easy_cleanup(p->pool[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
