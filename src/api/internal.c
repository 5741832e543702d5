/*
 * GET /internal/chunks/BLOB/IIIIIIII: a peer asks this node for a sealed
 * chunk (cluster/peer.h). Only in a cluster, only with a valid signature
 * under the cluster key (401 otherwise).
 *
 * The chunk comes through this node's cache like a stream's, with no_peers
 * set: the asker ranked this node first, so a miss here goes to the origin
 * (once, however many peers ask: the cache is single-flight) and never on
 * to another peer, which could ask back. The plaintext from the cache is
 * sealed again under the track's key with the chunk's index as nonce,
 * which gives exactly the origin's bytes: peers only ever carry sealed
 * chunks, and the asker verifies them like the origin's.
 *
 * Resealing reads a whole chunk and runs the cipher over it, so it is a
 * fast job on the worker pool, never on the loop; the answer comes back to
 * the loop through http/later.h, hit or miss. A full queue or a stopping
 * pool is a 503 like any other failure here: the asker tries its next
 * source.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "crypto/seal.h"
#include "crypto/sign.h"
#include "http/later.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/xalloc.h"

struct ask {
	struct api *api;
	http_later_t *later;
	loop_t *loop; /* the asker's connection's: where the reseal comes back */
	struct chunk_ref ref;
	int fd;                /* the chunk's, or -errno from the cache */
	int rc;                /* the reseal's: 0 or -errno */
	unsigned char *sealed; /* ref.len + SEAL_TAG_LEN bytes, after the reseal */
};

/* On the loop: the chunk's fd (or an error) and its reseal to an answer,
 * if the asker (c) is still there. */
static void answer(void *arg, http_conn_t *c)
{
	struct ask *a = arg;

	if (!c)
		goto out;
	if (a->fd < 0) {
		http_send_error(c, a->fd == -ENOENT ? 404 : 503,
				a->fd == -ENOENT ? "no such chunk" : "chunk unavailable");
		goto out;
	}
	if (a->rc < 0) {
		/* Damaged here, or no worker for it: the asker goes on to its
		 * next source. */
		http_send_error(c, 503, "chunk unavailable");
		goto out;
	}
	http_send(c, 200, "application/octet-stream", "Cache-Control: no-store\r\n", a->sealed,
		  a->ref.len + SEAL_TAG_LEN);
	atomic_fetch_add(&a->api->peer_served, 1);
	atomic_fetch_add(&a->api->peer_served_bytes, a->ref.len + SEAL_TAG_LEN);
out:
	if (a->fd >= 0)
		close(a->fd);
	explicit_bzero(&a->ref, sizeof(a->ref));
	free(a->sealed);
	free(a);
}

/* On a worker: a 1 MiB read and seal. */
static void reseal_work(void *arg)
{
	struct ask *a = arg;

	a->sealed = xmalloc(a->ref.len + SEAL_TAG_LEN);
	a->rc = cache_read_sealed(a->api->cache, &a->ref, a->fd, a->sealed);
}

/* On the loop: resealed, or cancelled by the pool's stop. */
static void reseal_done(void *arg, int status)
{
	struct ask *a = arg;

	if (status < 0)
		a->rc = status;
	answer(a, http_later_end(a->later));
}

/* With the chunk's fd, on the loop (a hit) or a fill thread (a miss). */
static void reseal(struct ask *a)
{
	int rc = pool_submit(a->api->pool, a->loop, POOL_FAST, reseal_work, reseal_done, a);

	if (rc < 0) {
		a->rc = rc;
		http_later_post(a->later, answer, a);
	}
}

/* On a fill thread. */
static void ready(void *arg, int fd)
{
	struct ask *a = arg;

	a->fd = fd;
	if (fd < 0)
		http_later_post(a->later, answer, a);
	else
		reseal(a);
}

/* A header as a NUL-terminated string, or false if absent or too long. */
static bool header(const struct http_request *req, const char *name, char *out, size_t outlen)
{
	const struct http_str *v = http_header_get(req, name);

	if (!v || v->len == 0 || v->len >= outlen)
		return false;
	memcpy(out, v->p, v->len);
	out[v->len] = '\0';
	return true;
}

static bool hex_ok(const char *s, size_t want)
{
	size_t n = strlen(s);

	if (n != want)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool api_peer_signed(struct api *api, const struct http_request *req, const char *method,
		     const char *path)
{
	char node[64], when[32], sig[80], *end;
	long long t;

	if (!api->peer_key_set || !header(req, "X-Chorus-Node", node, sizeof(node)) ||
	    !header(req, "X-Chorus-Time", when, sizeof(when)) ||
	    !header(req, "X-Chorus-Signature", sig, sizeof(sig)) || !hex_ok(node, strlen(node)))
		return false;
	t = strtoll(when, &end, 10);
	return *end == '\0' && sign_check(api->peer_key, method, path, t, node, sig, strlen(sig),
					  (int64_t)time(NULL));
}

void api_internal(struct api *api, struct api_loop *al, http_conn_t *c,
		  const struct http_request *req)
{
	char path[128], blob[BLOB_ID_LEN + 1], idx[9];
	struct catalog_stream info;
	struct manifest m;
	struct ask *a;
	uint32_t index;
	int rc;

	if (!api->peer_key_set) {
		http_send_error(c, 404, "no such resource");
		return;
	}
	if (req->method != HTTP_GET) {
		http_send_error(c, 405, "method not allowed");
		return;
	}
	/* /internal/chunks/ + 32 + / + 8 */
	if (req->path.len != 17 + BLOB_ID_LEN + 1 + 8 ||
	    memcmp(req->path.p, "/internal/chunks/", 17) != 0 ||
	    req->path.p[17 + BLOB_ID_LEN] != '/') {
		http_send_error(c, 404, "no such resource");
		return;
	}
	memcpy(path, req->path.p, req->path.len);
	path[req->path.len] = '\0';
	memcpy(blob, path + 17, BLOB_ID_LEN);
	blob[BLOB_ID_LEN] = '\0';
	memcpy(idx, path + 18 + BLOB_ID_LEN, 8);
	idx[8] = '\0';
	if (!api_peer_signed(api, req, "GET", path)) {
		http_send_error(c, 401, "peer requests must be signed with the cluster key");
		return;
	}
	if (!hex_ok(blob, BLOB_ID_LEN) || !hex_ok(idx, 8)) {
		http_send_error(c, 404, "no such chunk");
		return;
	}
	index = (uint32_t)strtoul(idx, NULL, 16);
	rc = catalog_stream_info_blob(al->reader, blob, &info);
	if (rc != 200 || index >= info.chunk_count) {
		explicit_bzero(&info, sizeof(info));
		http_send_error(c, rc == 500 ? 500 : 404,
				rc == 500 ? "internal error" : "no such chunk");
		return;
	}
	catalog_stream_manifest(&info, &m);
	a = xcalloc(1, sizeof(*a));
	a->api = api;
	memcpy(a->ref.blob, blob, sizeof(blob));
	a->ref.index = index;
	a->ref.len = manifest_chunk_len(&m, index);
	memcpy(a->ref.key, info.key, SEAL_KEY_LEN);
	a->ref.no_peers = true;
	explicit_bzero(&info, sizeof(info));
	explicit_bzero(&m, sizeof(m));
	a->loop = http_conn_loop(c);
	/* Before cache_get: a fill may call ready() before it returns. */
	a->later = http_later(c);
	rc = cache_get(api->cache, &a->ref, ready, a);
	if (rc == -EINPROGRESS)
		return;
	a->fd = rc;
	if (rc < 0)
		answer(a, http_later_end(a->later));
	else
		reseal(a);
}
