/*
 * Request routing and the JSON endpoints. Paths are matched segment by
 * segment; ids are the catalog's 16-hex-digit strings. Every read is a
 * GET (or HEAD) answered from this node's catalog file.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "catalog/replica.h"
#include "plays/plays.h"
#include "util/clock.h"
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
	if (catalog_principals_open(al->reader, &al->principals, err, sizeof(err)) < 0)
		die("loop %d: %s", index, err);
	if (catalog_zones_open(al->reader, &al->zones, err, sizeof(err)) < 0)
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
	catalog_principals_close(al->principals);
	api_plans_free(al->plans);
	api_events_free(al->events);
	catalog_zones_close(al->zones);
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

/* A 200 answer of the catalog, remembered for the next identical request
 * by the same principal (its stream URLs are signed for it). */
static void send_memo(struct api_call *x, const char *ctype, const void *body, size_t len)
{
	api_memo_put(x, 200, ctype, body, len);
	http_send(x->c, 200, ctype, NULL, body, len);
}

static void send_json(struct api_call *x, int status, buf_t *b)
{
	if (status == 200) {
		if (buf_append(b, "\n", 1) == 0) {
			if (x->al)
				send_memo(x, JSON_TYPE, b->data, b->len);
			else
				http_send(x->c, 200, JSON_TYPE, NULL, b->data, b->len);
			return;
		}
		status = 500;
	}
	http_send_error(x->c, status, status == 404 ? "not found" : "internal error");
}

/* ---- the routes' handlers ---- */

static void r_console(struct api_call *x)
{
	http_send(x->c, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
		  web_index_html, web_index_html_len);
}

static void r_health(struct api_call *x)
{
	/* A drained node fails its check, so a balancer sends it nothing new. */
	if (atomic_load(&x->api->drained))
		http_send(x->c, 503, JSON_TYPE, "Cache-Control: no-store\r\n",
			  "{\"status\":\"drained\"}\n", 21);
	else
		http_send(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n",
			  "{\"status\":\"ok\"}\n", 16);
}

static void r_cluster(struct api_call *x)
{
	api_cluster(x->api, x->c);
}

static void r_stream(struct api_call *x)
{
	api_stream(x->api, x->c, x->req, x->id, &x->who);
}

static void r_join(struct api_call *x)
{
	api_join(x->api, x->c, x->req);
}

static void r_internal(struct api_call *x)
{
	api_internal(x->api, x->al, x->c, x->req);
}

/* The catalog's lists and objects: which one is the path's third
 * segment. */
static int kind_of(const struct http_request *req)
{
	struct http_str seg[4];

	if (segments(req->path, seg, 4) < 3)
		return -1;
	if (seg_is(seg[2], "artists"))
		return CATALOG_ARTIST;
	if (seg_is(seg[2], "albums"))
		return CATALOG_ALBUM;
	return CATALOG_TRACK;
}

static void r_list(struct api_call *x)
{
	int64_t limit, offset;
	buf_t b;
	int st;

	if (!paging(x->c, x->req, &limit, &offset))
		return;
	buf_init(&b, BODY_MAX);
	switch (kind_of(x->req)) {
	case CATALOG_ARTIST:
		st = catalog_json_artists(x->al->reader, limit, offset, &b);
		break;
	case CATALOG_ALBUM:
		st = catalog_json_albums(x->al->reader, limit, offset, &b);
		break;
	default:
		st = catalog_json_tracks(x->al->reader, limit, offset, &b);
	}
	send_json(x, st, &b);
	buf_free(&b);
}

static void r_one(struct api_call *x)
{
	buf_t b;
	int st;

	buf_init(&b, BODY_MAX);
	switch (kind_of(x->req)) {
	case CATALOG_ARTIST:
		st = catalog_json_artist(x->al->reader, x->id, &b);
		break;
	case CATALOG_ALBUM:
		st = catalog_json_album(x->al->reader, x->id, &b);
		break;
	default:
		st = catalog_json_track(x->al->reader, x->id, &b);
	}
	send_json(x, st, &b);
	buf_free(&b);
}

static void r_cover(struct api_call *x)
{
	char mime[64];
	buf_t b;
	int st;

	buf_init(&b, BODY_MAX);
	st = catalog_cover(x->al->reader, x->id, &b, mime, sizeof(mime));
	if (st == 200)
		send_memo(x, mime, b.data, b.len);
	else
		http_send_error(x->c, st, st == 404 ? "no cover for this album" : "internal error");
	buf_free(&b);
}

/* ---- the route table ---- */

#define M(m) (1u << (m))
#define GET (M(HTTP_GET) | M(HTTP_HEAD))
#define POST M(HTTP_POST)
#define PUT M(HTTP_PUT)
#define DELETE M(HTTP_DELETE)
#define PATCH M(HTTP_PATCH)
#define OPTIONS M(HTTP_OPTIONS)

/* Catalog answers that come from the memo while the catalog is unchanged. */
#define MEMO 1

/*
 * Every endpoint, with the one rule that says who may call it
 * (api/access.h). Path segments are literals, {id} (a catalog id: 16 hex
 * digits, else 404) or {name} (any one segment). `chorus routes` prints
 * this table, and tests/system/test_access.py checks every row of it
 * against every role: a route added here without a row there fails.
 */
static const struct api_route routes[] = {
	{"/", GET, ACCESS_OPEN, 0, r_console},
	{"/health", GET, ACCESS_OPEN, 0, r_health},
	{"/player", GET, ACCESS_OPEN, 0, api_player},
	{"/player-sw.js", GET, ACCESS_OPEN, 0, api_player_sw},
	{"/api/v1/session", POST, ACCESS_OPEN, 0, api_session_login},
	{"/api/v1/session", GET, ACCESS_SELF, 0, api_session_get},
	{"/api/v1/session", DELETE, ACCESS_SELF, 0, api_session_logout},
	{"/api/v1/artists", GET, ACCESS_READ, MEMO, r_list},
	{"/api/v1/artists/{id}", GET, ACCESS_READ, MEMO, r_one},
	{"/api/v1/albums", GET, ACCESS_READ, MEMO, r_list},
	{"/api/v1/albums/{id}", GET, ACCESS_READ, MEMO, r_one},
	{"/api/v1/albums/{id}/cover", GET, ACCESS_READ, MEMO, r_cover},
	{"/api/v1/tracks", GET, ACCESS_READ, MEMO, r_list},
	{"/api/v1/tracks/{id}", GET, ACCESS_READ, MEMO, r_one},
	{"/api/v1/tracks/{id}/stream", GET, ACCESS_READ, 0, r_stream},
	{"/api/v1/search", GET, ACCESS_READ, MEMO, api_search},
	{"/api/v1/plays", POST, ACCESS_PLAYS, 0, api_plays_post},
	{"/api/v1/reports/plays", GET, ACCESS_REPORTS, 0, api_plays_report},
	{"/api/v1/node", GET, ACCESS_ADMIN, 0, api_node},
	{"/api/v1/node/series", GET, ACCESS_ADMIN, 0, api_node_series},
	{"/api/v1/node/log", GET, ACCESS_ADMIN, 0, api_node_log},
	{"/api/v1/node/live", GET, ACCESS_ADMIN, 0, api_node_live},
	{"/api/v1/node/drain", POST | DELETE, ACCESS_ADMIN, 0, api_node_drain},
	{"/api/v1/nodes/{name}", GET, ACCESS_ADMIN, 0, api_nodes_one},
	{"/api/v1/nodes/{name}/series", GET, ACCESS_ADMIN, 0, api_nodes_one},
	{"/api/v1/nodes/{name}/log", GET, ACCESS_ADMIN, 0, api_nodes_one},
	{"/api/v1/nodes/{name}/live", GET, ACCESS_ADMIN, 0, api_nodes_one},
	{"/api/v1/nodes/{name}/drain", POST | DELETE, ACCESS_ADMIN, 0, api_nodes_one},
	{"/api/v1/overview", GET, ACCESS_ADMIN, 0, api_overview},
	{"/api/v1/live", GET, ACCESS_ADMIN, 0, api_live_all},
	{"/api/v1/cluster/tokens", POST, ACCESS_ADMIN, 0, api_cluster_token},
	{"/metrics", GET, ACCESS_ADMIN, 0, api_metrics},
	{"/api/v1/cluster", GET, ACCESS_READ, 0, r_cluster}, /* players fail over with it */
	{"/api/v1/users", GET, ACCESS_ADMIN, 0, api_users_list},
	{"/api/v1/users", POST, ACCESS_ADMIN, 0, api_users_add},
	{"/api/v1/users/{name}", DELETE, ACCESS_ADMIN, 0, api_users_remove},
	{"/api/v1/users/{name}/password", PUT, ACCESS_ADMIN, 0, api_users_passwd},
	{"/api/v1/keys", GET, ACCESS_ADMIN, 0, api_keys_list},
	{"/api/v1/keys", POST, ACCESS_ADMIN, 0, api_keys_create},
	{"/api/v1/keys/{name}", DELETE, ACCESS_ADMIN, 0, api_keys_revoke},
	{"/api/v1/audit", GET, ACCESS_ADMIN, 0, api_audit_list},
	{"/api/v1/library", GET, ACCESS_EDITOR, 0, api_library},
	/* Editing the catalog: after the reads of the same paths. */
	{"/api/v1/tracks/{id}", PATCH, ACCESS_EDITOR, 0, api_track_edit},
	{"/api/v1/albums/{id}", PATCH, ACCESS_EDITOR, 0, api_album_edit},
	{"/api/v1/artists/{id}", PATCH, ACCESS_EDITOR, 0, api_artist_edit},
	{"/api/v1/albums/{id}/cover", PUT, ACCESS_EDITOR, 0, api_cover_put},
	{"/api/v1/tracks/{id}", DELETE, ACCESS_EDITOR, 0, api_track_delete},
	{"/api/v1/albums/{id}", DELETE, ACCESS_EDITOR, 0, api_album_delete},
	/* tus: OPTIONS is its discovery, open as the protocol has it. */
	{"/api/v1/uploads", OPTIONS, ACCESS_OPEN, 0, api_uploads_options},
	{"/api/v1/uploads", GET | POST, ACCESS_EDITOR, 0, api_uploads},
	{"/api/v1/uploads/{name}", GET | PATCH | DELETE, ACCESS_EDITOR, 0, api_upload_one},
	{"/api/v1/uploads/{name}/status", GET, ACCESS_EDITOR, 0, api_upload_status},
	{"/api/v1/locations", GET | POST, ACCESS_EDITOR, 0, api_locations},
	{"/api/v1/locations/{id}", GET | PATCH | DELETE, ACCESS_EDITOR, 0, api_location_one},
	{"/api/v1/zones", GET | POST, ACCESS_EDITOR, 0, api_zones},
	{"/api/v1/zones/{id}", GET, ACCESS_ZONE, 0, api_zone_one},
	{"/api/v1/zones/{id}", PATCH | DELETE, ACCESS_EDITOR, 0, api_zone_one},
	{"/api/v1/zones/{id}/schedule", GET, ACCESS_ZONE, 0, api_zone_schedule},
	{"/api/v1/zones/{id}/schedule", PUT, ACCESS_EDITOR, 0, api_zone_schedule},
	{"/api/v1/zones/{id}/queue", GET, ACCESS_ZONE, 0, api_zone_queue},
	{"/api/v1/zones/{id}/events", GET, ACCESS_ZONE, 0, api_zone_events},
	{"/api/v1/zones/{id}/status", POST, ACCESS_DEVICE, 0, api_zone_status},
	{"/api/v1/zones/{id}/commands", POST, ACCESS_EDITOR, 0, api_zone_commands},
	{"/api/v1/playlists", GET | POST, ACCESS_EDITOR, 0, api_playlists},
	{"/api/v1/playlists/{id}", GET | PUT | DELETE, ACCESS_EDITOR, 0, api_playlist_one},
	{"/api/v1/devices", GET, ACCESS_EDITOR, 0, api_devices_list},
	{"/internal/join", POST, ACCESS_PEER, 0, r_join},
	{"/internal/chunks/{name}/{name}", GET, ACCESS_PEER, 0, r_internal},
	{"/internal/node/{name}", GET | POST | DELETE, ACCESS_PEER, 0, api_node_internal},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

bool api_stream_body(void *ud, const struct http_request *req)
{
	return api_uploads_stream_body(ud, req) || api_cover_streams(req);
}

const struct api_route *api_routes(size_t *n)
{
	*n = NROUTES;
	return routes;
}

void api_route_methods(unsigned methods, char *out, size_t len)
{
	static const char *const names[] = {
		[HTTP_GET] = "GET",    [HTTP_HEAD] = "HEAD",     [HTTP_POST] = "POST",
		[HTTP_PUT] = "PUT",    [HTTP_DELETE] = "DELETE", [HTTP_OPTIONS] = "OPTIONS",
		[HTTP_PATCH] = "PATCH"};
	size_t at = 0;

	out[0] = '\0';
	for (unsigned m = 0; m < sizeof(names) / sizeof(names[0]); m++)
		if ((methods & M(m)) && names[m] && at < len)
			at += (size_t)snprintf(out + at, len - at, "%s%s", at ? ", " : "",
					       names[m]);
}

static bool prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The route's class for the figures, from its path and rule. */
static int class_of(const struct api_route *r)
{
	if (strcmp(r->path, "/") == 0)
		return API_CONSOLE;
	if (strcmp(r->path, "/health") == 0)
		return API_HEALTH;
	if (strcmp(r->path, "/metrics") == 0)
		return API_METRICS;
	if (prefix(r->path, "/internal/"))
		return API_INTERNAL;
	if (r->handler == r_stream)
		return API_STREAM;
	if (prefix(r->path, "/api/v1/session"))
		return API_SESSION;
	if (prefix(r->path, "/api/v1/search"))
		return API_SEARCH;
	if (prefix(r->path, "/api/v1/plays"))
		return API_PLAYS;
	if (prefix(r->path, "/api/v1/reports"))
		return API_REPORTS;
	if (prefix(r->path, "/api/v1/cluster"))
		return API_CLUSTER;
	if (prefix(r->path, "/api/v1/uploads"))
		return API_UPLOADS;
	if (prefix(r->path, "/api/v1/locations") || prefix(r->path, "/api/v1/zones") ||
	    prefix(r->path, "/api/v1/playlists") || prefix(r->path, "/api/v1/devices"))
		return API_STORES;
	if (r->rule == ACCESS_READ)
		return API_CATALOG;
	return API_ADMIN;
}

static int route_class[NROUTES];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static void classes_init(void)
{
	for (size_t i = 0; i < NROUTES; i++)
		route_class[i] = class_of(&routes[i]);
}

/* Does path match pattern? Fills the {id} and {name} values. -1: it
 * matches but the {id} is not an id (a 404 of its own). */
static int route_match(const char *pattern, const struct http_str *seg, int n, int64_t *id,
		       struct http_str *name)
{
	struct http_str pat[6];
	struct http_str p = {pattern, strlen(pattern)};
	int np = segments(p, pat, 6);

	if (np != n)
		return 0;
	for (int i = 0; i < n; i++) {
		if (seg_is(pat[i], "{id}")) {
			if (catalog_id_parse(seg[i].p, seg[i].len, id) < 0)
				return -1;
		} else if (seg_is(pat[i], "{name}")) {
			if (!name->p)
				*name = seg[i];
		} else if (!(pat[i].len == seg[i].len &&
			     memcmp(pat[i].p, seg[i].p, seg[i].len) == 0)) {
			return 0;
		}
	}
	return 1;
}

static void send_405(http_conn_t *c, unsigned allow)
{
	static const char body[] =
		"{\"error\":{\"status\":405,\"message\":\"method not allowed\"}}\n";
	char methods[64], hdr[96];

	api_route_methods(allow, methods, sizeof(methods));
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", methods);
	http_send(c, 405, JSON_TYPE, hdr, body, sizeof(body) - 1);
}

/* Signed stream URLs last a day or so; the hour they are cut at is part
 * of a memo key, so an hour's answers share their entries. */
#define URL_LIFE_S (24 * 3600)

int api_memo_key(const struct api_call *x, buf_t *key)
{
	char tail[ACCESS_ID_MAX + 32];
	int n;

	if (buf_append(key, x->req->target.p, x->req->target.len) < 0)
		return -1;
	if (!x->who.id[0])
		return 0;
	n = snprintf(tail, sizeof(tail), "%c%s %lld", '\0', x->who.id, (long long)x->url_expires);
	return buf_append(key, tail, (size_t)n);
}

void api_memo_put(struct api_call *x, int status, const char *ctype, const void *body, size_t len)
{
	buf_t key;

	buf_init(&key, 4096 + ACCESS_ID_MAX + 32);
	if (api_memo_key(x, &key) == 0)
		memo_put(&x->al->memo, key.data, key.len, status, ctype, body, len);
	buf_free(&key);
}

/*
 * Cross-origin requests to the API: a console that moved to another node
 * of the member list (its own node gone) calls it from the old page's
 * origin. Any origin may: the credential such a request carries is a
 * header the page adds ("Authorization: Session" or "Bearer"), never a
 * cookie (a wildcard origin makes the browser send and expose none), so
 * another site gains nothing by it.
 */
#define CORS                                                                                       \
	"Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Retry-After, ETag,"      \
	" Content-Range, Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata," \
	" Tus-Resumable, Tus-Version, Tus-Max-Size, Tus-Extension\r\n"

static bool preflight(http_conn_t *c, const struct http_request *req, unsigned allow)
{
	char methods[64], hdr[400];

	if (req->method != HTTP_OPTIONS || !allow ||
	    !http_header_get(req, "Access-Control-Request-Method"))
		return false;
	api_route_methods(allow, methods, sizeof(methods));
	snprintf(hdr, sizeof(hdr),
		 "Access-Control-Allow-Methods: %s\r\n"
		 "Access-Control-Allow-Headers: Authorization, Content-Type, X-CSRF-Token,"
		 " Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata,"
		 " Upload-Checksum\r\n"
		 "Access-Control-Max-Age: 600\r\nCache-Control: no-store\r\n",
		 methods);
	http_send(c, 204, NULL, hdr, NULL, 0);
	return true;
}

void api_handle(void *ud, http_conn_t *c, const struct http_request *req)
{
	struct api_call x = {.api = ud, .al = http_conn_loop_data(c), .c = c, .req = req};
	struct http_str seg[6];
	int n = segments(req->path, seg, 6), bad_id = 0;
	unsigned allow = 0;
	const struct api_route *r = NULL;
	struct access_denial why;
	int64_t object;

	if (n < 0) {
		http_send_error(c, 404, "no such resource");
		return;
	}
	if (n >= 2 && seg_is(seg[0], "api") && http_header_get(req, "Origin"))
		http_conn_also(c, CORS);
	for (size_t i = 0; i < NROUTES && !r; i++) {
		int m = route_match(routes[i].path, seg, n, &x.id, &x.name);
		if (m < 0)
			bad_id = 1;
		if (m <= 0)
			continue;
		allow |= routes[i].methods;
		if (routes[i].methods & M(req->method))
			r = &routes[i];
	}
	if (r) {
		pthread_once(&classes_once, classes_init);
		http_conn_set_class(c, route_class[r - routes]);
	}
	if (req->method == HTTP_OPTIONS && allow && preflight(c, req, allow))
		return; /* a browser's question, even where OPTIONS has a route */
	if (!r) {
		if (allow)
			send_405(c, allow);
		else
			http_send_error(c, 404, bad_id ? "no such id" : "no such resource");
		return;
	}
	object = r->handler == r_stream || r->rule == ACCESS_ZONE || r->rule == ACCESS_DEVICE ? x.id
											      : 0;
	if (!access_check(x.api, x.al, req, r->rule, object, &x.who, &why)) {
		access_deny(c, &why);
		return;
	}
	if (x.who.id[0] && x.who.via != VIA_URL) {
		/* Catalog answers carry stream URLs signed for who asked. */
		int64_t now = wall_ms() / 1000;
		x.url_expires = (now / 3600) * 3600 + URL_LIFE_S + 3600;
		x.signer = (struct catalog_signer){x.api->url_key, x.who.id, x.url_expires};
		catalog_reader_sign(x.al->reader, &x.signer);
	}
	if (r->flags & MEMO) {
		const struct memo_entry *e;
		buf_t key;

		memo_sync(&x.al->memo, catalog_reader_version(x.al->reader));
		buf_init(&key, 4096 + ACCESS_ID_MAX + 32);
		e = api_memo_key(&x, &key) == 0 ? memo_get(&x.al->memo, key.data, key.len) : NULL;
		buf_free(&key);
		if (e) {
			http_send(c, e->status, e->ctype, NULL, e->body, e->len);
			catalog_reader_sign(x.al->reader, NULL);
			return;
		}
	}
	r->handler(&x);
	catalog_reader_sign(x.al->reader, NULL);
}
