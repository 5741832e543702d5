/*
 * GET /api/v1/cluster: every node this one knows, as the membership view
 * (cluster/membership.h) holds it; on a standalone node, itself alone. The
 * figures of this node are read now; a peer's are those it published with
 * its last heartbeat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "catalog/replica.h"
#include "cluster/membership.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"

void api_cluster_stats(void *ud, struct member_stats *out)
{
	struct api *api = ud;
	struct cache_stats cs;

	cache_get_stats(api->cache, &cs);
	out->known = true;
	out->cache_bytes = (int64_t)cs.bytes;
	out->cache_budget_bytes = (int64_t)cs.budget_bytes;
	out->cache_chunks = (int64_t)cs.chunks;
	out->cache_hits = (int64_t)cs.hits;
	out->cache_misses = (int64_t)cs.misses;
	out->cache_origin_reads = (int64_t)cs.origin_reads;
	out->cache_origin_bytes = (int64_t)cs.origin_bytes;
	out->cache_evictions = (int64_t)cs.evictions;
	out->replication_lag_ms = -1;
	if (api->replica) {
		struct replica_status rs;
		replica_status(api->replica, &rs);
		out->replication_lag_ms = rs.lag_ms;
	}
}

static void member_json(json_t *j, const struct member_info *mi)
{
	const struct member *m = &mi->m;
	const struct member_stats *s = &mi->stats;
	char when[CLOCK_UTC_LEN];

	json_obj_begin(j);
	json_kstr(j, "id", m->id);
	json_kstr(j, "address", m->address);
	json_kstr(j, "site", m->site);
	json_kstr(j, "state", membership_state_name(m->state));
	json_key(j, "last_heartbeat");
	if (mi->last_heartbeat_ms > 0) {
		clock_utc_ms(mi->last_heartbeat_ms, when);
		json_str(j, when);
	} else {
		json_nil(j);
	}
	json_key(j, "heartbeat_age_ms");
	if (m->heartbeat_age_ms >= 0)
		json_int(j, m->heartbeat_age_ms);
	else
		json_nil(j);
	json_kbool(j, "self", m->self);
	json_key(j, "cache");
	if (s->known) {
		json_obj_begin(j);
		json_kint(j, "bytes", s->cache_bytes);
		json_kint(j, "budget_bytes", s->cache_budget_bytes);
		json_kint(j, "chunks", s->cache_chunks);
		json_kint(j, "hits", s->cache_hits);
		json_kint(j, "misses", s->cache_misses);
		json_kint(j, "origin_reads", s->cache_origin_reads);
		json_kint(j, "origin_bytes", s->cache_origin_bytes);
		json_kint(j, "evictions", s->cache_evictions);
		json_obj_end(j);
	} else {
		json_nil(j);
	}
	json_key(j, "replication_lag_ms");
	if (s->known && s->replication_lag_ms >= 0)
		json_int(j, s->replication_lag_ms);
	else
		json_nil(j);
	json_obj_end(j);
}

void api_cluster(struct api *api, http_conn_t *c)
{
	struct member_info *mi;
	size_t n;
	buf_t b;
	json_t j;

	if (api->membership) {
		mi = xcalloc(MEMBERSHIP_MAX, sizeof(*mi));
		n = membership_snapshot_info(api->membership, mi, MEMBERSHIP_MAX);
	} else {
		mi = xcalloc(1, sizeof(*mi));
		mi->m = api->self;
		mi->m.state = MEMBER_ALIVE;
		mi->m.heartbeat_age_ms = -1;
		n = 1;
	}
	buf_init(&b, (size_t)1 << 20);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "nodes");
	json_arr_begin(&j);
	for (size_t i = 0; i < n; i++) {
		/* This node's figures as they are now. */
		if (mi[i].m.self) {
			memset(&mi[i].stats, 0, sizeof(mi[i].stats));
			api_cluster_stats(api, &mi[i].stats);
		}
		member_json(&j, &mi[i]);
	}
	json_arr_end(&j);
	json_key(&j, "postgres_connected");
	if (api->membership)
		json_bool(&j, membership_connected(api->membership));
	else
		json_nil(&j);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		http_send_error(c, 500, "internal error");
	else
		http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	buf_free(&b);
	free(mi);
}
