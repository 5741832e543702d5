/*
 * The console's endpoints (docs/console.md). A node answers for itself
 * from memory: its figures, its ring of seconds, its recent warnings, its
 * streams, its drain. It answers for another node by asking it directly,
 * peer-signed (/internal/node/WHAT), on the worker pool, all nodes at
 * once with a deadline of a second: there is no collector to lose, and
 * with PostgreSQL down the console still sees every node that answers.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/figures.h"
#include "catalog/replica.h"
#include "cluster/http_client.h"
#include "cluster/join.h"
#include "crypto/sign.h"
#include "http/later.h"
#include "plays/plays.h"
#include "store/principals.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "version.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define NO_STORE "Cache-Control: no-store\r\n"
#define ANSWER_MAX ((size_t)4 << 20)
#define PEER_ANSWER_MAX ((size_t)2 << 20)
#define ASK_CONNECT_MS 500
#define ASK_TOTAL_MS 1000
#define RATE_WINDOW_S 10
#define LOG_PAGE 1000

/* What one node answers for itself: /api/v1/node[/WHAT] here, and
 * /internal/node/WHAT when another node asks. */
enum node_what { W_NODE, W_SERIES, W_LOG, W_LIVE, W_DRAIN, W_NONE };

static enum node_what what_of(struct http_str s)
{
	static const char *const names[] = {"node", "series", "log", "live", "drain"};

	for (int i = 0; i < W_NONE; i++)
		if (s.len == strlen(names[i]) && memcmp(s.p, names[i], s.len) == 0)
			return (enum node_what)i;
	return W_NONE;
}

static const char *what_name(enum node_what w)
{
	static const char *const names[] = {"node", "series", "log", "live", "drain"};

	return w < W_NONE ? names[w] : "";
}

static const char *self_id(struct api *api)
{
	return api->self.id;
}

static int64_t query_int(const struct http_request *req, const char *name, int64_t dflt)
{
	char v[32], *end;
	long long x;

	if (http_query_param(req->query, name, v, sizeof(v)) < 0 || !*v)
		return dflt;
	x = strtoll(v, &end, 10);
	return *end ? dflt : x;
}

/* ---- this node ---- */

static void node_figures(struct api *api, json_t *j)
{
	struct cache_stats cs;
	struct plays_stats pls;
	double rps, bps;

	cache_get_stats(api->cache, &cs);
	plays_get_stats(api->plays, &pls);
	series_rates(api->series, RATE_WINDOW_S, &rps, &bps);
	json_obj_begin(j);
	json_kstr(j, "id", api->self.id);
	json_kstr(j, "address", api->self.address);
	json_kstr(j, "site", api->self.site);
	json_kstr(j, "version", CHORUS_VERSION);
	json_kint(j, "started", (int64_t)api->started);
	json_kint(j, "uptime_s", (int64_t)(time(NULL) - api->started));
	json_kbool(j, "drained", atomic_load(&api->drained));
	json_kint(j, "connections", (int64_t)http_server_connections(api->server));
	json_key(j, "requests_per_s");
	json_double(j, rps);
	json_key(j, "bytes_out_per_s");
	json_double(j, bps);
	json_kint(j, "plays_accepted", (int64_t)pls.accepted);
	json_key(j, "cache");
	json_obj_begin(j);
	json_kint(j, "bytes", (int64_t)cs.bytes);
	json_kint(j, "budget_bytes", (int64_t)cs.budget_bytes);
	json_kint(j, "chunks", (int64_t)cs.chunks);
	json_kint(j, "hits", (int64_t)cs.hits);
	json_kint(j, "misses", (int64_t)cs.misses);
	json_kint(j, "fills", (int64_t)cs.fills);
	json_kint(j, "origin_reads", (int64_t)cs.origin_reads);
	json_kint(j, "origin_errors", (int64_t)cs.origin_errors);
	json_kint(j, "origin_bytes", (int64_t)cs.origin_bytes);
	json_kint(j, "evictions", (int64_t)cs.evictions);
	json_kint(j, "peer_reads", (int64_t)cs.peer_reads);
	json_kint(j, "peer_bytes", (int64_t)cs.peer_bytes);
	json_kint(j, "peer_served", (int64_t)atomic_load(&api->peer_served));
	json_obj_end(j);
	json_key(j, "origin");
	json_obj_begin(j);
	json_kstr(j, "kind", api->origin_kind ? api->origin_kind : "dir");
	json_kbool(j, "reachable", !cs.origin_failing);
	json_obj_end(j);
	json_key(j, "database");
	json_obj_begin(j);
	json_kstr(j, "kind", api->db ? "postgres" : "sqlite");
	json_kbool(j, "reachable", api->membership ? membership_connected(api->membership) : true);
	json_obj_end(j);
	json_key(j, "replication");
	if (api->replica) {
		struct replica_status rs;
		replica_status(api->replica, &rs);
		json_obj_begin(j);
		json_kint(j, "last_seq", rs.last_seq);
		json_key(j, "lag_ms");
		if (rs.lag_ms < 0)
			json_nil(j);
		else
			json_int(j, rs.lag_ms);
		json_kbool(j, "connected", rs.connected);
		json_kint(j, "applied", (int64_t)rs.applied);
		json_kint(j, "bootstrap_ms", rs.bootstrap_ms);
		json_obj_end(j);
	} else {
		json_nil(j);
	}
	if (api->shipper) {
		struct plays_ship_stats ps;
		plays_shipper_stats(api->shipper, &ps);
		json_key(j, "plays_shipping");
		json_obj_begin(j);
		json_kint(j, "queued", ps.queued);
		json_kint(j, "shipped", (int64_t)ps.shipped);
		json_kint(j, "batches", (int64_t)ps.batches);
		json_kbool(j, "connected", ps.connected);
		json_obj_end(j);
	}
	json_obj_end(j);
}

static void number_or_null(json_t *j, const char *key, double v)
{
	json_key(j, key);
	if (v < 0)
		json_nil(j);
	else
		json_double(j, v);
}

static void node_series(struct api *api, int64_t since, json_t *j)
{
	struct series_point *p = xcalloc(SERIES_MAX, sizeof(*p));
	size_t n = series_read(api->series, since, p);
	static const char *const lat[3] = {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms"};
	static const char *const ttfb[3] = {"ttfb_p50_ms", "ttfb_p95_ms", "ttfb_p99_ms"};

	json_obj_begin(j);
	json_kstr(j, "node", self_id(api));
#define COLUMN(name, expr)                                                                         \
	do {                                                                                       \
		json_key(j, name);                                                                 \
		json_arr_begin(j);                                                                 \
		for (size_t i = 0; i < n; i++)                                                     \
			json_int(j, (int64_t)(expr));                                              \
		json_arr_end(j);                                                                   \
	} while (0)
	COLUMN("t", p[i].t);
	COLUMN("requests", p[i].requests);
	COLUMN("bytes_out", p[i].bytes_out);
	COLUMN("errors_4xx", p[i].errors_4xx);
	COLUMN("errors_5xx", p[i].errors_5xx);
	COLUMN("cache_hits", p[i].cache_hits);
	COLUMN("cache_misses", p[i].cache_misses);
#undef COLUMN
	for (int q = 0; q < 6; q++) {
		json_key(j, q < 3 ? lat[q] : ttfb[q - 3]);
		json_arr_begin(j);
		for (size_t i = 0; i < n; i++) {
			double v = q < 3 ? p[i].latency_ms[q] : p[i].ttfb_ms[q - 3];
			if (v < 0)
				json_nil(j);
			else
				json_double(j, v);
		}
		json_arr_end(j);
	}
	json_obj_end(j);
	free(p);
}

static void node_log(struct api *api, int64_t since, json_t *j)
{
	struct log_entry *e = xcalloc(LOG_PAGE, sizeof(*e));
	size_t n = log_recent(since > 0 ? (uint64_t)since : 0, e, LOG_PAGE);
	uint64_t next = since > 0 ? (uint64_t)since : 0;
	char when[CLOCK_UTC_LEN];

	json_obj_begin(j);
	json_kstr(j, "node", self_id(api));
	json_key(j, "entries");
	json_arr_begin(j);
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(j);
		json_kint(j, "seq", (int64_t)e[i].seq);
		clock_utc_ms(e[i].time_ms, when);
		json_kstr(j, "time", when);
		json_kstr(j, "level", e[i].level == LOG_ERROR ? "error" : "warn");
		json_kstr(j, "message", e[i].message);
		json_obj_end(j);
		next = e[i].seq;
	}
	json_arr_end(j);
	json_kint(j, "next", (int64_t)next);
	json_obj_end(j);
	free(e);
}

/* This node's answer to what (method: of a drain, POST or DELETE): its
 * status, the JSON in b. */
static int node_answer(struct api *api, enum node_what what, enum http_method method,
		       const struct http_request *req, buf_t *b)
{
	json_t j;

	json_init(&j, b);
	switch (what) {
	case W_NODE:
		node_figures(api, &j);
		break;
	case W_SERIES:
		node_series(api, query_int(req, "since", 0), &j);
		break;
	case W_LOG:
		node_log(api, query_int(req, "since", 0), &j);
		break;
	case W_LIVE:
		json_obj_begin(&j);
		json_kstr(&j, "node", self_id(api));
		json_key(&j, "streams");
		api_live_json(api, &j);
		json_obj_end(&j);
		break;
	case W_DRAIN:
		if (method != HTTP_POST && method != HTTP_DELETE)
			return 405;
		if (atomic_exchange(&api->drained, method == HTTP_POST) != (method == HTTP_POST))
			log_info("node: %s", method == HTTP_POST
						     ? "drained: /health fails and new "
						       "streams go elsewhere"
						     : "undrained: taking streams again");
		json_obj_begin(&j);
		json_kstr(&j, "node", self_id(api));
		json_kbool(&j, "drained", atomic_load(&api->drained));
		json_obj_end(&j);
		break;
	default:
		return 404;
	}
	if (json_failed(&j) || buf_append(b, "\n", 1) < 0)
		return 500;
	return 200;
}

static void send_answer(http_conn_t *c, int status, buf_t *b)
{
	if (status == 200)
		http_send(c, 200, JSON_TYPE, NO_STORE, b->data, b->len);
	else if (status == 405)
		http_send_error(c, 405, "method not allowed");
	else if (status == 404)
		http_send_error(c, 404, "no such resource");
	else
		http_send_error(c, 500, "the answer did not fit its buffer");
}

static void answer_local(struct api_call *x, enum node_what what)
{
	buf_t b;

	buf_init(&b, ANSWER_MAX);
	send_answer(x->c, node_answer(x->api, what, x->req->method, x->req, &b), &b);
	buf_free(&b);
}

void api_node(struct api_call *x)
{
	answer_local(x, W_NODE);
}

void api_node_series(struct api_call *x)
{
	answer_local(x, W_SERIES);
}

void api_node_log(struct api_call *x)
{
	answer_local(x, W_LOG);
}

void api_node_live(struct api_call *x)
{
	answer_local(x, W_LIVE);
}

/* ---- asking other nodes ---- */

/*
 * The asks of every console call share one connection cache (and DNS
 * and TLS sessions), so a node asks its peers on connections kept open
 * rather than a new TCP connection, and its teardown, per ask: most of an
 * overview's cost was the kernel opening and closing them
 * (docs/benchmarks.md, "The console's cost"). The share is used from
 * several pool workers at once: libcurl takes its locks, one per data.
 */
struct api_asker {
	CURLSH *share;
	bool global; /* holds libcurl's global state */
	pthread_mutex_t lock[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct api_asker *k = ud;

	(void)h;
	(void)access;
	pthread_mutex_lock(&k->lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct api_asker *k = ud;

	(void)h;
	pthread_mutex_unlock(&k->lock[data]);
}

struct api_asker *api_asker_new(void)
{
	struct api_asker *k = xcalloc(1, sizeof(*k));

	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&k->lock[i], NULL);
	k->global = http_client_global_init() == 0;
	if (!k->global || !(k->share = curl_share_init()) ||
	    curl_share_setopt(k->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(k->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(k->share, CURLSHOPT_USERDATA, k) != CURLSHE_OK ||
	    curl_share_setopt(k->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(k->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(k->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		    CURLSHE_OK) {
		/* Asks still work, each on a connection of its own. */
		log_warn("console: no shared connection cache for peer asks");
		if (k->share)
			curl_share_cleanup(k->share);
		k->share = NULL;
	}
	return k;
}

void api_asker_free(struct api_asker *k)
{
	if (!k)
		return;
	if (k->share)
		curl_share_cleanup(k->share);
	if (k->global)
		http_client_global_cleanup();
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&k->lock[i]);
	free(k);
}

struct ask {
	char id[17];
	char url[512];
	long status; /* 0: no answer */
	buf_t body;
};

/*
 * Asks every target's /internal/node/WHAT (query passed on) at once, with
 * method, each signed with the cluster key, and waits at most
 * ASK_TOTAL_MS for them all. On a worker.
 */
static void ask_all(struct api *api, struct ask *a, size_t n, const char *method,
		    enum node_what what, const char *query)
{
	CURLM *m = curl_multi_init();
	CURL **h = xcalloc(n ? n : 1, sizeof(*h));
	struct curl_slist **hdrs = xcalloc(n ? n : 1, sizeof(*hdrs));
	char path[64], sig[65], line[128];
	int64_t now = (int64_t)time(NULL);
	int running = 0;

	snprintf(path, sizeof(path), "/internal/node/%s", what_name(what));
	sign_request(api->peer_key, method, path, now, self_id(api), sig);
	for (size_t i = 0; m && i < n; i++) {
		char url[700];
		buf_init(&a[i].body, PEER_ANSWER_MAX);
		snprintf(url, sizeof(url), "%s%s%s%s", a[i].url, path, query && *query ? "?" : "",
			 query ? query : "");
		if (!(h[i] = curl_easy_init()))
			continue;
		http_client_setup(h[i], url, ASK_CONNECT_MS, ASK_TOTAL_MS);
		if (api->asker && api->asker->share)
			curl_easy_setopt(h[i], CURLOPT_SHARE, api->asker->share);
		http_client_body_to(h[i], &a[i].body);
		snprintf(line, sizeof(line), "X-Chorus-Node: %s", self_id(api));
		hdrs[i] = curl_slist_append(hdrs[i], line);
		snprintf(line, sizeof(line), "X-Chorus-Time: %" PRId64, now);
		hdrs[i] = curl_slist_append(hdrs[i], line);
		snprintf(line, sizeof(line), "X-Chorus-Signature: %s", sig);
		hdrs[i] = curl_slist_append(hdrs[i], line);
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdrs[i]);
		if (strcmp(method, "GET") != 0) {
			curl_easy_setopt(h[i], CURLOPT_CUSTOMREQUEST, method);
			if (strcmp(method, "POST") == 0)
				curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, "");
		}
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, &a[i]);
		curl_multi_add_handle(m, h[i]);
	}
	if (m) {
		do {
			curl_multi_perform(m, &running);
			if (running)
				curl_multi_poll(m, NULL, 0, 100, NULL);
		} while (running);
		for (CURLMsg *msg; (msg = curl_multi_info_read(m, &running));) {
			struct ask *ai = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ai);
			if (ai && msg->data.result == CURLE_OK)
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
						  &ai->status);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (h[i]) {
			if (m)
				curl_multi_remove_handle(m, h[i]);
			curl_easy_cleanup(h[i]);
		}
		curl_slist_free_all(hdrs[i]);
	}
	curl_multi_cleanup(m);
	free(h);
	free(hdrs);
}

static void asks_free(struct ask *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_free(&a[i].body);
	free(a);
}

/* The members this node knows: itself alone outside a cluster. */
static size_t members(struct api *api, struct member_info **out)
{
	if (api->membership) {
		*out = xcalloc(MEMBERSHIP_MAX, sizeof(**out));
		return membership_snapshot_info(api->membership, *out, MEMBERSHIP_MAX);
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->m = api->self;
	(*out)->m.state = MEMBER_ALIVE;
	(*out)->m.self = true;
	(*out)->m.heartbeat_age_ms = -1;
	return 1;
}

enum job_kind { J_ONE, J_OVERVIEW, J_LIVE, J_TOKEN };

struct job {
	struct api *api;
	http_later_t *later;
	enum job_kind kind;
	enum node_what what;
	enum http_method method;
	char target[17]; /* J_ONE: the node asked */
	char url[512];
	char query[512];
	char actor[sizeof(((struct principal *)0)->actor)];
	int ttl_hours;
	int status;
	char err[160];
	buf_t b;
};

static const char *method_name(enum http_method m)
{
	return m == HTTP_POST ? "POST" : m == HTTP_DELETE ? "DELETE" : "GET";
}

/* An audit row for a drain or a token, written after the answer on a
 * slow worker: the action stands, and is answered, even while the
 * database cannot take its row (then the log says so). */
struct audit_job {
	struct api *api;
	char actor[sizeof(((struct principal *)0)->actor)];
	char action[32], object[17], detail[96];
};

static void audit_work(void *arg)
{
	struct audit_job *a = arg;
	principals_t *p = api_principals_store(a->api);

	if (!p || principals_audit_add(p, a->actor, a->action, a->object,
				       a->detail[0] ? a->detail : NULL) < 0)
		log_warn("console: %s of %s by %s is not in the audit trail (the database did not "
			 "take it)",
			 a->action, a->object, a->actor);
}

static void audit_free(void *arg, int status)
{
	(void)status;
	free(arg);
}

static void audit_later(struct api *api, const char *actor, const char *action, const char *object,
			const char *detail)
{
	struct audit_job *a = xcalloc(1, sizeof(*a));

	a->api = api;
	snprintf(a->actor, sizeof(a->actor), "%s", actor);
	snprintf(a->action, sizeof(a->action), "%s", action);
	snprintf(a->object, sizeof(a->object), "%s", object);
	snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
	if (pool_submit(api->pool, NULL, POOL_SLOW, audit_work, audit_free, a) < 0) {
		log_warn("console: %s of %s by %s is not in the audit trail (no worker for it)",
			 action, object, actor);
		free(a);
	}
}

static void drain_audit(struct api *api, const char *actor, enum http_method m, const char *id)
{
	audit_later(api, actor, m == HTTP_POST ? "node.drain" : "node.undrain", id, NULL);
}

static void work_one(struct job *job)
{
	struct ask *a = xcalloc(1, sizeof(*a));

	snprintf(a->id, sizeof(a->id), "%s", job->target);
	snprintf(a->url, sizeof(a->url), "%s", job->url);
	ask_all(job->api, a, 1, method_name(job->method), job->what, job->query);
	job->status = (int)a->status;
	if (a->status && buf_append(&job->b, a->body.data, a->body.len) < 0)
		job->status = 500;
	asks_free(a, 1);
}

static void overview_node(json_t *j, const struct member_info *mi, const struct node_figures *f)
{
	double hits = f ? f->cache_hits : -1, misses = f ? f->cache_misses : -1;

	json_obj_begin(j);
	json_kstr(j, "id", mi->m.id);
	json_kstr(j, "address", mi->m.address);
	json_kstr(j, "site", mi->m.site);
	json_kstr(j, "state", membership_state_name(mi->m.state));
	json_kbool(j, "self", mi->m.self);
	json_key(j, "heartbeat_age_ms");
	if (mi->m.heartbeat_age_ms >= 0)
		json_int(j, mi->m.heartbeat_age_ms);
	else
		json_nil(j);
	json_kbool(j, "answered", f != NULL);
	json_key(j, "drained");
	if (f)
		json_bool(j, f->drained);
	else
		json_nil(j);
	json_key(j, "version");
	json_str(j, f ? f->version : NULL);
	number_or_null(j, "uptime_s", f ? f->uptime_s : -1);
	number_or_null(j, "connections", f ? f->connections : -1);
	number_or_null(j, "requests_per_s", f ? f->requests_per_s : -1);
	number_or_null(j, "bytes_out_per_s", f ? f->bytes_out_per_s : -1);
	number_or_null(j, "cache_bytes", f ? f->cache_bytes : -1);
	number_or_null(j, "cache_budget_bytes", f ? f->cache_budget_bytes : -1);
	number_or_null(j, "cache_hit_ratio",
		       hits >= 0 && misses >= 0 && hits + misses > 0 ? hits / (hits + misses) : -1);
	number_or_null(j, "replication_lag_ms", f ? f->replication_lag_ms : -1);
	number_or_null(j, "plays_queued", f ? f->plays_queued : -1);
	json_obj_end(j);
}

/* The members (into *mi, n of them), and every one not dead nor this
 * node asked for what at once (into *a, *na of them). */
static size_t ask_members(struct api *api, enum node_what what, struct member_info **mi,
			  struct ask **a, size_t *na)
{
	size_t n = members(api, mi);

	*a = xcalloc(n ? n : 1, sizeof(**a));
	*na = 0;
	for (size_t i = 0; i < n; i++) {
		if ((*mi)[i].m.self || (*mi)[i].m.state == MEMBER_DEAD)
			continue;
		snprintf((*a)[*na].id, sizeof((*a)[*na].id), "%s", (*mi)[i].m.id);
		snprintf((*a)[*na].url, sizeof((*a)[*na].url), "%s", (*mi)[i].m.address);
		(*na)++;
	}
	if (*na)
		ask_all(api, *a, *na, "GET", what, NULL);
	return n;
}

/* The overview: every member not dead asked for its figures (this node
 * answers from memory), then the health line over what came back. */
static void work_overview(struct job *job)
{
	struct api *api = job->api;
	struct member_info *mi;
	struct ask *a;
	size_t na, n = ask_members(api, W_NODE, &mi, &a, &na);
	struct node_figures *fig = xcalloc(n ? n : 1, sizeof(*fig));
	bool *got = xcalloc(n ? n : 1, sizeof(*got));
	size_t by_state[3] = {0, 0, 0};
	bool origin_ok = true, any_origin = false;
	double lag = -1;
	json_t j;
	buf_t self;

	for (size_t i = 0; i < n; i++)
		if (mi[i].m.state >= 0 && mi[i].m.state < 3)
			by_state[mi[i].m.state]++;
	buf_init(&self, ANSWER_MAX);
	for (size_t i = 0; i < n; i++) {
		if (mi[i].m.self) {
			buf_reset(&self);
			got[i] = node_answer(api, W_NODE, HTTP_GET, NULL, &self) == 200 &&
				 api_figures_parse(self.data, self.len, &fig[i]) == 0;
			continue;
		}
		for (size_t k = 0; k < na; k++)
			if (strcmp(a[k].id, mi[i].m.id) == 0 && a[k].status == 200)
				got[i] = api_figures_parse(a[k].body.data, a[k].body.len,
							   &fig[i]) == 0;
	}
	buf_free(&self);
	for (size_t i = 0; i < n; i++) {
		if (!got[i])
			continue;
		if (fig[i].origin_reachable >= 0) {
			any_origin = true;
			origin_ok = origin_ok && fig[i].origin_reachable;
		}
		if (fig[i].replication_lag_ms > lag)
			lag = fig[i].replication_lag_ms;
	}
	json_init(&j, &job->b);
	json_obj_begin(&j);
	json_key(&j, "health");
	json_obj_begin(&j);
	json_kint(&j, "alive", (int64_t)by_state[MEMBER_ALIVE]);
	json_kint(&j, "suspect", (int64_t)by_state[MEMBER_SUSPECT]);
	json_kint(&j, "dead", (int64_t)by_state[MEMBER_DEAD]);
	json_key(&j, "database");
	json_obj_begin(&j);
	json_kstr(&j, "kind", api->db ? "postgres" : "sqlite");
	json_kbool(&j, "reachable", api->membership ? membership_connected(api->membership) : true);
	json_obj_end(&j);
	json_key(&j, "origin");
	json_obj_begin(&j);
	json_kstr(&j, "kind", api->origin_kind ? api->origin_kind : "dir");
	json_key(&j, "reachable");
	if (any_origin)
		json_bool(&j, origin_ok);
	else
		json_nil(&j);
	json_obj_end(&j);
	number_or_null(&j, "replication_lag_ms", api->replica ? lag : -1);
	json_obj_end(&j);
	json_key(&j, "nodes");
	json_arr_begin(&j);
	for (size_t i = 0; i < n; i++)
		overview_node(&j, &mi[i], got[i] ? &fig[i] : NULL);
	json_arr_end(&j);
	json_obj_end(&j);
	job->status = json_failed(&j) || buf_append(&job->b, "\n", 1) < 0 ? 500 : 200;
	free(fig);
	free(got);
	asks_free(a, na);
	free(mi);
}

/* Every node's streams in flight: {"nodes": [each node's answer],
 * "unanswered": [ids]}; the answers are spliced in as they came. */
static void work_live(struct job *job)
{
	struct api *api = job->api;
	struct member_info *mi;
	struct ask *a;
	size_t na;
	json_t j;
	buf_t self;

	ask_members(api, W_LIVE, &mi, &a, &na);
	buf_init(&self, ANSWER_MAX);
	json_init(&j, &job->b);
	json_obj_begin(&j);
	json_key(&j, "nodes");
	json_arr_begin(&j);
	if (node_answer(api, W_LIVE, HTTP_GET, NULL, &self) == 200)
		json_raw(&j, self.data, self.len - 1); /* without its newline */
	for (size_t k = 0; k < na; k++) {
		/* Only a well-formed answer is spliced in. */
		if (a[k].status == 200 && api_json_is_object(a[k].body.data, a[k].body.len))
			json_raw(&j, a[k].body.data, a[k].body.len - 1);
		else
			a[k].status = 0;
	}
	json_arr_end(&j);
	json_key(&j, "unanswered");
	json_arr_begin(&j);
	for (size_t k = 0; k < na; k++)
		if (a[k].status != 200)
			json_str(&j, a[k].id);
	json_arr_end(&j);
	json_obj_end(&j);
	job->status = json_failed(&j) || buf_append(&job->b, "\n", 1) < 0 ? 500 : 200;
	buf_free(&self);
	asks_free(a, na);
	free(mi);
}

static void work_token(struct job *job)
{
	struct api *api = job->api;
	struct join_token tok;
	char text[JOIN_TOKEN_LEN + 1], when[CLOCK_UTC_LEN], detail[96];
	int64_t expires = (int64_t)time(NULL) + (int64_t)job->ttl_hours * 3600;
	json_t j;

	join_token_make(api->peer_key, expires, &tok, text);
	explicit_bzero(&tok, sizeof(tok));
	clock_utc(expires, when);
	json_init(&j, &job->b);
	json_obj_begin(&j);
	json_kstr(&j, "token", text);
	json_kstr(&j, "expires", when);
	json_key(&j, "command");
	{
		char cmd[JOIN_TOKEN_LEN + 700];
		snprintf(cmd, sizeof(cmd),
			 "chorus serve --data /var/lib/chorus --join %s --token %s",
			 api->self.address, text);
		json_str(&j, cmd);
		explicit_bzero(cmd, sizeof(cmd));
	}
	json_obj_end(&j);
	explicit_bzero(text, sizeof(text));
	job->status = json_failed(&j) || buf_append(&job->b, "\n", 1) < 0 ? 500 : 201;
	if (job->status == 201) {
		/* The expiry, never the token. */
		snprintf(detail, sizeof(detail), "{\"expires\":\"%s\"}", when);
		audit_later(api, job->actor, "token.create", api->self.id, detail);
	}
}

static void job_work(void *arg)
{
	struct job *job = arg;

	switch (job->kind) {
	case J_ONE:
		work_one(job);
		break;
	case J_OVERVIEW:
		work_overview(job);
		break;
	case J_LIVE:
		work_live(job);
		break;
	case J_TOKEN:
		work_token(job);
		break;
	}
}

static void job_free(void *arg, int status)
{
	struct job *job = arg;

	(void)status;
	buf_free(&job->b);
	explicit_bzero(job, sizeof(*job));
	free(job);
}

static void job_done(void *arg, int status)
{
	struct job *job = arg;
	http_conn_t *c = http_later_end(job->later);

	if (job->kind == J_ONE && job->what == W_DRAIN && job->status == 200)
		drain_audit(job->api, job->actor, job->method, job->target);
	if (c) {
		if (status < 0)
			http_send_error(c, 503, "the node is stopping");
		else if (job->status == 200 || job->status == 201)
			http_send(c, job->status, JSON_TYPE, NO_STORE, job->b.data, job->b.len);
		else if (job->kind == J_ONE && job->status == 0)
			http_send_error(c, 502, job->err);
		else if (job->kind == J_ONE && job->status >= 400 && job->status < 600 &&
			 job->b.len)
			/* The other node's own error, passed on. */
			http_send(c, job->status, JSON_TYPE, NO_STORE, job->b.data, job->b.len);
		else
			http_send_error(c, 500, "internal error");
	}
	job_free(job, status);
}

static struct job *job_new(struct api_call *x, enum job_kind kind)
{
	struct job *job = xcalloc(1, sizeof(*job));

	job->api = x->api;
	job->kind = kind;
	job->method = x->req->method;
	snprintf(job->actor, sizeof(job->actor), "%s", x->who.actor);
	buf_init(&job->b, ANSWER_MAX);
	return job;
}

static void submit(struct api_call *x, struct job *job)
{
	job->later = http_later(x->c);
	if (pool_submit(x->api->pool, http_conn_loop(x->c), POOL_FAST, job_work, job_done, job) <
	    0) {
		http_conn_t *c = http_later_end(job->later);
		if (c)
			http_send_error(c, 503, "too busy; retry");
		job_free(job, 0);
	}
}

void api_node_drain(struct api_call *x)
{
	buf_t b;
	int st;

	/* The drain itself at once; its audit row after, off the loop. */
	buf_init(&b, ANSWER_MAX);
	st = node_answer(x->api, W_DRAIN, x->req->method, x->req, &b);
	if (st == 200)
		drain_audit(x->api, x->who.actor, x->req->method, self_id(x->api));
	send_answer(x->c, st, &b);
	buf_free(&b);
}

/* /api/v1/nodes/{id}[/WHAT]: this node's answer, or the node id's. */
void api_nodes_one(struct api_call *x)
{
	struct http_str seg = {0};
	const char *p = x->req->path.p + strlen("/api/v1/nodes/");
	size_t left = x->req->path.len - strlen("/api/v1/nodes/");
	enum node_what what = W_NODE;
	struct member_info *mi;
	size_t n;
	struct job *job;
	bool found = false;

	if (x->name.len != 16) {
		http_send_error(x->c, 404, "no such node");
		return;
	}
	if (left > 17 && p[16] == '/') {
		seg = (struct http_str){p + 17, left - 17};
		what = what_of(seg);
		if (what == W_NODE || what == W_NONE) {
			http_send_error(x->c, 404, "no such resource");
			return;
		}
	}
	if ((what == W_DRAIN) != (x->req->method == HTTP_POST || x->req->method == HTTP_DELETE)) {
		http_send_error(x->c, 405, "method not allowed");
		return;
	}
	if (memcmp(x->name.p, self_id(x->api), 16) == 0) {
		if (what == W_DRAIN)
			api_node_drain(x);
		else
			answer_local(x, what);
		return;
	}
	job = job_new(x, J_ONE);
	job->what = what;
	memcpy(job->target, x->name.p, 16);
	n = members(x->api, &mi);
	for (size_t i = 0; i < n && !found; i++)
		if (strcmp(mi[i].m.id, job->target) == 0) {
			snprintf(job->url, sizeof(job->url), "%s", mi[i].m.address);
			found = true;
		}
	free(mi);
	if (!found || !x->api->peer_key_set) {
		job_free(job, 0);
		http_send_error(x->c, 404, "no such node");
		return;
	}
	if (x->req->query.len < sizeof(job->query))
		memcpy(job->query, x->req->query.p, x->req->query.len);
	snprintf(job->err, sizeof(job->err), "node %s did not answer", job->target);
	submit(x, job);
}

/* /internal/node/WHAT: another node asks for this one's answer. */
void api_node_internal(struct api_call *x)
{
	char path[64];
	enum node_what what = what_of(x->name);

	if (!x->api->peer_key_set || what == W_NONE) {
		http_send_error(x->c, 404, "no such resource");
		return;
	}
	snprintf(path, sizeof(path), "/internal/node/%s", what_name(what));
	if (!api_peer_signed(x->api, x->req, method_name(x->req->method), path)) {
		http_send_error(x->c, 401, "peer requests must be signed with the cluster key");
		return;
	}
	if ((what == W_DRAIN) != (x->req->method == HTTP_POST || x->req->method == HTTP_DELETE)) {
		http_send_error(x->c, 405, "method not allowed");
		return;
	}
	answer_local(x, what);
}

void api_overview(struct api_call *x)
{
	submit(x, job_new(x, J_OVERVIEW));
}

void api_live_all(struct api_call *x)
{
	submit(x, job_new(x, J_LIVE));
}

void api_cluster_token(struct api_call *x)
{
	struct job *job;
	int64_t hours = JOIN_TTL_DEFAULT_H;
	char err[128];

	if (!x->api->peer_key_set) {
		http_send_error(x->c, 409, "a standalone node has no cluster to join");
		return;
	}
	if (api_body_int(x->req->body.p, x->req->body.len, "ttl_hours", 1, 168, &hours, err,
			 sizeof(err)) < 0) {
		http_send_error(x->c, 400, err);
		return;
	}
	job = job_new(x, J_TOKEN);
	job->ttl_hours = (int)hours;
	submit(x, job);
}
