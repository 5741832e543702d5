/*
 * GET /metrics: the node's figures in Prometheus text (metrics/prom.h),
 * read when asked from the counters the loops, the cache, the plays
 * writer and the replica keep anyway; and the sample the series thread
 * takes once a second for the console's charts. Labels are route and
 * status classes, states and levels: never a track, a user or an address.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "uploads/uploads.h"
#include "catalog/replica.h"
#include "metrics/prom.h"
#include "plays/plays.h"
#include "util/log.h"
#include "version.h"

#define METRICS_MAX ((size_t)1 << 20)

static const char *const class_names[API_NCLASSES] = {
	[API_OTHER] = "other",     [API_CONSOLE] = "console", [API_HEALTH] = "health",
	[API_SESSION] = "session", [API_CATALOG] = "catalog", [API_SEARCH] = "search",
	[API_STREAM] = "stream",   [API_PLAYS] = "plays",     [API_REPORTS] = "reports",
	[API_ADMIN] = "admin",     [API_CLUSTER] = "cluster", [API_INTERNAL] = "internal",
	[API_METRICS] = "metrics", [API_UPLOADS] = "uploads", [API_STORES] = "stores",
};

const char *api_class_name(int cls)
{
	return cls >= 0 && cls < API_NCLASSES ? class_names[cls] : "other";
}

void api_series_sample(void *ud, struct series_sample *out)
{
	struct api *api = ud;
	struct http_stats *hs = calloc(1, sizeof(*hs));
	struct cache_stats cs;

	if (!hs)
		return;
	http_server_read_stats(api->server, hs);
	for (int k = 0; k < API_NCLASSES; k++) {
		const struct http_class_stats *c = &hs->cls[k];
		for (int i = 0; i < 5; i++)
			out->requests += c->codes[i];
		out->errors_4xx += c->codes[3];
		out->errors_5xx += c->codes[4];
		out->bytes_out += c->bytes;
		/* Latency is the time to answer; a stream's whole transfer
		 * is the listener's pace, so streams count by first byte. */
		if (k == API_STREAM) {
			for (int i = 0; i < HIST_BUCKETS; i++)
				out->ttfb.n[i] += c->ttfb.n[i];
			out->ttfb.sum_us += c->ttfb.sum_us;
		} else {
			for (int i = 0; i < HIST_BUCKETS; i++)
				out->latency.n[i] += c->duration.n[i];
			out->latency.sum_us += c->duration.sum_us;
		}
	}
	cache_get_stats(api->cache, &cs);
	out->cache_hits = cs.hits;
	out->cache_misses = cs.misses;
	free(hs);
}

static void counter(prom_t *p, const char *name, const char *help, uint64_t v)
{
	prom_family(p, name, "counter", help);
	prom_u64(p, name, NULL, v);
}

static void gauge(prom_t *p, const char *name, const char *help, double v)
{
	prom_family(p, name, "gauge", help);
	prom_f64(p, name, NULL, v);
}

static void http_families(prom_t *p, const struct http_stats *hs)
{
	static const char *const codes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	char labels[96];

	prom_family(p, "chorus_http_requests_total", "counter",
		    "Answers by route class and status class.");
	for (int k = 0; k < API_NCLASSES; k++)
		for (int i = 0; i < 5; i++) {
			snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%s\"", class_names[k],
				 codes[i]);
			prom_u64(p, "chorus_http_requests_total", labels, hs->cls[k].codes[i]);
		}
	prom_family(p, "chorus_http_request_duration_seconds", "histogram",
		    "From the complete request to the last byte written.");
	for (int k = 0; k < API_NCLASSES; k++) {
		snprintf(labels, sizeof(labels), "route=\"%s\"", class_names[k]);
		prom_hist(p, "chorus_http_request_duration_seconds", labels, &hs->cls[k].duration);
	}
	prom_family(p, "chorus_stream_ttfb_seconds", "histogram",
		    "Streams: from the complete request to the first byte written.");
	prom_hist(p, "chorus_stream_ttfb_seconds", NULL, &hs->cls[API_STREAM].ttfb);
	prom_family(p, "chorus_http_response_bytes_total", "counter",
		    "Bytes written, headers and bodies, by route class.");
	for (int k = 0; k < API_NCLASSES; k++) {
		snprintf(labels, sizeof(labels), "route=\"%s\"", class_names[k]);
		prom_u64(p, "chorus_http_response_bytes_total", labels, hs->cls[k].bytes);
	}
	gauge(p, "chorus_http_connections", "Connections open now.", (double)hs->connections);
	counter(p, "chorus_http_connections_accepted_total", "Connections accepted.", hs->accepted);
}

static void cache_families(prom_t *p, struct api *api)
{
	struct cache_stats cs;

	cache_get_stats(api->cache, &cs);
	counter(p, "chorus_cache_hits_total", "Chunks asked of the cache and found there.",
		cs.hits);
	counter(p, "chorus_cache_misses_total", "Chunks asked of the cache and not there.",
		cs.misses);
	counter(p, "chorus_cache_fills_total", "Chunks filled, from a peer or the origin.",
		cs.fills);
	counter(p, "chorus_cache_evictions_total", "Chunks evicted to keep to the budget.",
		cs.evictions);
	gauge(p, "chorus_cache_bytes", "Plaintext bytes the cache holds.", (double)cs.bytes);
	gauge(p, "chorus_cache_budget_bytes", "The cache's budget.", (double)cs.budget_bytes);
	gauge(p, "chorus_cache_chunks", "Chunks the cache holds.", (double)cs.chunks);
	counter(p, "chorus_origin_reads_total",
		"Chunk reads from the origin, failed ones included.", cs.origin_reads);
	counter(p, "chorus_origin_read_errors_total", "Chunk reads from the origin that failed.",
		cs.origin_errors);
	counter(p, "chorus_origin_read_bytes_total", "Sealed bytes read from the origin.",
		cs.origin_bytes);
	counter(p, "chorus_peer_reads_total", "Chunks asked of peers, failed asks included.",
		cs.peer_reads);
	counter(p, "chorus_peer_read_bytes_total", "Sealed bytes peers returned.", cs.peer_bytes);
	counter(p, "chorus_peer_served_total", "Chunks served to peers.",
		atomic_load(&api->peer_served));
	counter(p, "chorus_peer_served_bytes_total", "Sealed bytes served to peers.",
		atomic_load(&api->peer_served_bytes));
}

static void cluster_families(prom_t *p, struct api *api)
{
	struct plays_stats ps;
	size_t by_state[3] = {0, 0, 0};

	if (api->replica) {
		struct replica_status rs;
		replica_status(api->replica, &rs);
		prom_family(p, "chorus_replication_lag_seconds", "gauge",
			    "How far the node's read model is behind PostgreSQL.");
		if (rs.lag_ms >= 0)
			prom_f64(p, "chorus_replication_lag_seconds", NULL,
				 (double)rs.lag_ms / 1000.0);
		gauge(p, "chorus_replication_connected",
		      "1 while the read model follows PostgreSQL.", rs.connected);
	}
	plays_get_stats(api->plays, &ps);
	counter(p, "chorus_plays_accepted_total", "Plays acknowledged (durable on this node).",
		ps.accepted);
	if (api->shipper) {
		struct plays_ship_stats ss;
		plays_shipper_stats(api->shipper, &ss);
		gauge(p, "chorus_plays_queued", "Plays waiting to ship to PostgreSQL.",
		      (double)(ss.queued > 0 ? ss.queued : 0));
		counter(p, "chorus_plays_shipped_total", "Plays shipped to PostgreSQL.",
			ss.shipped);
	}
	if (api->membership) {
		struct member *m = calloc(MEMBERSHIP_MAX, sizeof(*m));
		size_t n = m ? membership_snapshot(api->membership, m, MEMBERSHIP_MAX) : 0;
		for (size_t i = 0; i < n; i++)
			if (m[i].state >= 0 && m[i].state < 3)
				by_state[m[i].state]++;
		free(m);
	} else {
		by_state[MEMBER_ALIVE] = 1;
	}
	if (api->uploads) {
		struct uploads_stats us;
		uploads_get_stats(api->uploads, &us);
		counter(p, "chorus_upload_bytes_total",
			"Upload bytes this node made durable in the origin.", us.bytes);
		prom_family(p, "chorus_uploads_ingested_total", "counter",
			    "Finished uploads this node ingested, by outcome.");
		prom_u64(p, "chorus_uploads_ingested_total", "outcome=\"done\"", us.ingested);
		prom_u64(p, "chorus_uploads_ingested_total", "outcome=\"failed\"", us.failed);
	}
	prom_family(p, "chorus_cluster_nodes", "gauge", "Nodes by state, as this node sees them.");
	for (int s = 0; s < 3; s++) {
		char labels[32];
		snprintf(labels, sizeof(labels), "state=\"%s\"", membership_state_name(s));
		prom_u64(p, "chorus_cluster_nodes", labels, by_state[s]);
	}
}

int api_metrics_text(struct api *api, buf_t *b)
{
	prom_t p = {b, false};
	struct http_stats *hs = calloc(1, sizeof(*hs));
	uint64_t logs[2];

	if (!hs)
		return 500;
	prom_family(&p, "chorus_build_info", "gauge", "The version this node runs.");
	prom_u64(&p, "chorus_build_info", "version=\"" CHORUS_VERSION "\"", 1);
	gauge(&p, "chorus_start_time_seconds", "When the node started, Unix time.",
	      (double)api->started);
	http_server_read_stats(api->server, hs);
	http_families(&p, hs);
	free(hs);
	cache_families(&p, api);
	cluster_families(&p, api);
	gauge(&p, "chorus_node_drained", "1 while the node is drained.",
	      atomic_load(&api->drained) ? 1 : 0);
	log_counts(logs);
	prom_family(&p, "chorus_log_messages_total", "counter", "Warnings and errors logged.");
	prom_u64(&p, "chorus_log_messages_total", "level=\"warn\"", logs[0]);
	prom_u64(&p, "chorus_log_messages_total", "level=\"error\"", logs[1]);
	return p.failed ? 500 : 200;
}

void api_metrics(struct api_call *x)
{
	buf_t b;

	buf_init(&b, METRICS_MAX);
	if (api_metrics_text(x->api, &b) == 200)
		http_send(x->c, 200, PROM_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	else
		http_send_error(x->c, 500, "the figures did not fit their buffer");
	buf_free(&b);
}

void api_metrics_listener(void *ud, http_conn_t *c, const struct http_request *req)
{
	struct api *api = ud;
	buf_t b;

	if (!(req->path.len == 8 && memcmp(req->path.p, "/metrics", 8) == 0)) {
		http_send_error(c, 404, "this listener serves /metrics only");
		return;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		static const char body[] =
			"{\"error\":{\"status\":405,\"message\":\"method not allowed\"}}\n";
		http_send(c, 405, "application/json; charset=utf-8", "Allow: GET, HEAD\r\n", body,
			  sizeof(body) - 1);
		return;
	}
	buf_init(&b, METRICS_MAX);
	if (api_metrics_text(api, &b) == 200)
		http_send(c, 200, PROM_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	else
		http_send_error(c, 500, "the figures did not fit their buffer");
	buf_free(&b);
}
