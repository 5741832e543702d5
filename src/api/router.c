/*
 * Request routing and the JSON endpoints. Paths are matched segment by
 * segment; ids are the catalog's 16-hex-digit strings. Every read is a
 * GET (or HEAD) answered from this node's catalog file.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "catalog/replica.h"
#include "plays/plays.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "version.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define BODY_MAX ((size_t)16 << 20)
#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500
#define MEMO_BUDGET ((size_t)32 << 20) /* per loop */

void *api_loop_data_new(void *ud, int index)
{
	struct api *api = ud;
	struct api_loop *al = xcalloc(1, sizeof(*al));
	char err[512];

	if (catalog_reader_open(api->db_path, &al->reader, err, sizeof(err)) < 0)
		die("loop %d: %s", index, err);
	if (search_open(al->reader, &al->search, err, sizeof(err)) < 0)
		die("loop %d: %s", index, err);
	memo_init(&al->memo, MEMO_BUDGET);
	al->files = cache_files_new(api->cache);
	return al;
}

void api_loop_data_free(void *ud, void *data)
{
	struct api_loop *al = data;

	if (!al)
		return;
	search_close(al->search);
	catalog_reader_close(al->reader);
	memo_free(&al->memo);
	cache_files_free(al->files);
	free(al);
}

/* Splits path into at most max segments (pointing into path). */
static int segments(struct http_str path, struct http_str *seg, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < path.len) {
		size_t start;
		if (path.p[i] == '/') {
			i++;
			continue;
		}
		if (n == max)
			return -1;
		start = i;
		while (i < path.len && path.p[i] != '/')
			i++;
		seg[n++] = (struct http_str){path.p + start, i - start};
	}
	return n;
}

static bool seg_is(struct http_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* limit and offset from the query; false (after answering 400) when bad. */
static bool paging(http_conn_t *c, const struct http_request *req, int64_t *limit, int64_t *offset)
{
	char v[32];
	const char *names[2] = {"limit", "offset"};
	int64_t *dst[2] = {limit, offset};

	*limit = LIMIT_DEFAULT;
	*offset = 0;
	for (int i = 0; i < 2; i++) {
		char *end;
		long long x;
		if (http_query_param(req->query, names[i], v, sizeof(v)) < 0) {
			if (!http_query_has(req->query, names[i]))
				continue; /* absent: the default */
			v[0] = '\0';      /* present but undecodable or too long */
		}
		errno = 0;
		x = strtoll(v, &end, 10);
		if (!*v || *end || errno || x < 0 || (i == 0 && (x < 1 || x > LIMIT_MAX)) ||
		    x > INT64_MAX / 2) {
			char msg[96];
			snprintf(msg, sizeof(msg), "%s must be %s", names[i],
				 i == 0 ? "an integer from 1 to 500" : "a non-negative integer");
			http_send_error(c, 400, msg);
			return false;
		}
		*dst[i] = x;
	}
	return true;
}

/* A 200 answer of the catalog, remembered for the next identical request. */
static void send_memo(struct api_loop *al, http_conn_t *c, const struct http_request *req,
		      const char *ctype, const void *body, size_t len)
{
	memo_put(&al->memo, req->target.p, req->target.len, 200, ctype, body, len);
	http_send(c, 200, ctype, NULL, body, len);
}

static void send_json(struct api_loop *al, http_conn_t *c, const struct http_request *req,
		      int status, buf_t *b)
{
	if (status == 200) {
		if (buf_append(b, "\n", 1) == 0) {
			if (al)
				send_memo(al, c, req, JSON_TYPE, b->data, b->len);
			else
				http_send(c, 200, JSON_TYPE, NULL, b->data, b->len);
			return;
		}
		status = 500;
	}
	http_send_error(c, status, status == 404 ? "not found" : "internal error");
}

static void node_json(struct api *api, http_conn_t *c)
{
	struct cache_stats cs;
	buf_t b;
	json_t j;

	cache_get_stats(api->cache, &cs);
	buf_init(&b, 4096);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_kstr(&j, "version", CHORUS_VERSION);
	json_kint(&j, "uptime_s", (int64_t)(time(NULL) - api->started));
	json_kint(&j, "connections", (int64_t)http_server_connections(api->server));
	json_key(&j, "cache");
	json_obj_begin(&j);
	json_kint(&j, "bytes", (int64_t)cs.bytes);
	json_kint(&j, "budget_bytes", (int64_t)cs.budget_bytes);
	json_kint(&j, "chunks", (int64_t)cs.chunks);
	json_kint(&j, "hits", (int64_t)cs.hits);
	json_kint(&j, "misses", (int64_t)cs.misses);
	json_kint(&j, "origin_reads", (int64_t)cs.origin_reads);
	json_kint(&j, "origin_bytes", (int64_t)cs.origin_bytes);
	json_kint(&j, "evictions", (int64_t)cs.evictions);
	json_kint(&j, "peer_reads", (int64_t)cs.peer_reads);
	json_kint(&j, "peer_bytes", (int64_t)cs.peer_bytes);
	json_kint(&j, "peer_served", (int64_t)atomic_load(&api->peer_served));
	json_obj_end(&j);
	json_key(&j, "replication");
	if (api->replica) {
		struct replica_status rs;
		replica_status(api->replica, &rs);
		json_obj_begin(&j);
		json_kint(&j, "last_seq", rs.last_seq);
		json_key(&j, "lag_ms");
		if (rs.lag_ms < 0)
			json_nil(&j);
		else
			json_int(&j, rs.lag_ms);
		json_kbool(&j, "connected", rs.connected);
		json_kint(&j, "applied", (int64_t)rs.applied);
		json_kint(&j, "bootstrap_ms", rs.bootstrap_ms);
		json_obj_end(&j);
	} else {
		json_nil(&j);
	}
	if (api->shipper) {
		struct plays_ship_stats ps;
		plays_shipper_stats(api->shipper, &ps);
		json_key(&j, "plays_shipping");
		json_obj_begin(&j);
		json_kint(&j, "queued", ps.queued);
		json_kint(&j, "shipped", (int64_t)ps.shipped);
		json_kint(&j, "batches", (int64_t)ps.batches);
		json_kbool(&j, "connected", ps.connected);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	send_json(NULL, c, NULL, json_failed(&j) ? 500 : 200, &b);
	buf_free(&b);
}

static void cover(struct api_loop *al, http_conn_t *c, const struct http_request *req, int64_t id)
{
	char mime[64];
	buf_t b;
	int st;

	buf_init(&b, BODY_MAX);
	st = catalog_cover(al->reader, id, &b, mime, sizeof(mime));
	if (st == 200)
		send_memo(al, c, req, mime, b.data, b.len);
	else
		http_send_error(c, st, st == 404 ? "no cover for this album" : "internal error");
	buf_free(&b);
}

void api_handle(void *ud, http_conn_t *c, const struct http_request *req)
{
	struct api *api = ud;
	struct api_loop *al = http_conn_loop_data(c);
	struct http_str seg[6];
	int n = segments(req->path, seg, 6);
	int64_t id = 0, limit, offset;
	const struct memo_entry *e;
	buf_t b;
	int st;

	if (n == 0) {
		if (req->method != HTTP_GET && req->method != HTTP_HEAD)
			goto method;
		http_send(c, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
			  web_index_html, web_index_html_len);
		return;
	}
	if (n == 1 && seg_is(seg[0], "health")) {
		if (req->method != HTTP_GET && req->method != HTTP_HEAD)
			goto method;
		http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", "{\"status\":\"ok\"}\n",
			  16);
		return;
	}
	if (n == 2 && seg_is(seg[0], "internal") && seg_is(seg[1], "join")) {
		api_join(api, c, req);
		return;
	}
	if (n >= 1 && seg_is(seg[0], "internal")) {
		api_internal(api, al, c, req);
		return;
	}
	if (n < 3 || !seg_is(seg[0], "api") || !seg_is(seg[1], "v1"))
		goto not_found;
	/* Plays in, reports out (api/plays.c, which checks the method). */
	if (n == 3 && seg_is(seg[2], "plays")) {
		api_plays_post(api, c, req);
		return;
	}
	if (n == 4 && seg_is(seg[2], "reports") && seg_is(seg[3], "plays")) {
		api_plays_report(api, c, req);
		return;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		goto method;
	if (n >= 4 && catalog_id_parse(seg[3].p, seg[3].len, &id) < 0) {
		http_send_error(c, 404, "no such id");
		return;
	}
	if (n == 3 && seg_is(seg[2], "node")) {
		node_json(api, c);
		return;
	}
	if (n == 3 && seg_is(seg[2], "cluster")) {
		api_cluster(api, c);
		return;
	}
	if (n == 5 && seg_is(seg[2], "tracks") && seg_is(seg[4], "stream")) {
		api_stream(api, c, req, id);
		return;
	}
	/* Catalog reads: from the memo while the catalog has not changed. */
	memo_sync(&al->memo, catalog_reader_version(al->reader));
	if ((e = memo_get(&al->memo, req->target.p, req->target.len))) {
		http_send(c, e->status, e->ctype, NULL, e->body, e->len);
		return;
	}
	if (n == 3 && seg_is(seg[2], "search")) {
		api_search(al, c, req);
		return;
	}
	if (n == 5 && seg_is(seg[2], "albums") && seg_is(seg[4], "cover")) {
		cover(al, c, req, id);
		return;
	}
	if (n > 4)
		goto not_found;
	buf_init(&b, BODY_MAX);
	if (n == 3) {
		if (!paging(c, req, &limit, &offset)) {
			buf_free(&b);
			return;
		}
		if (seg_is(seg[2], "artists"))
			st = catalog_json_artists(al->reader, limit, offset, &b);
		else if (seg_is(seg[2], "albums"))
			st = catalog_json_albums(al->reader, limit, offset, &b);
		else if (seg_is(seg[2], "tracks"))
			st = catalog_json_tracks(al->reader, limit, offset, &b);
		else
			st = 404;
	} else {
		if (seg_is(seg[2], "artists"))
			st = catalog_json_artist(al->reader, id, &b);
		else if (seg_is(seg[2], "albums"))
			st = catalog_json_album(al->reader, id, &b);
		else if (seg_is(seg[2], "tracks"))
			st = catalog_json_track(al->reader, id, &b);
		else
			st = 404;
	}
	send_json(al, c, req, st, &b);
	buf_free(&b);
	return;
not_found:
	http_send_error(c, 404, "no such resource");
	return;
method:
	http_send_error(c, 405, "method not allowed");
}
