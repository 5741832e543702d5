/*
 * POST /internal/join: a new server asks this member for the cluster's
 * configuration (cluster/join.h has the exchange). serve's side of it
 * (the join before anything starts, DATA/cluster.json at every start, the
 * offer this handler hands out) is node/setup.c.
 *
 * The member hands out the offer node/setup.c prepared at start-up (its
 * PostgreSQL conninfo, its origin spec, the origin's credentials), plus
 * the address it saw the request come from. The cluster key is not in it: the new node reads it
 * from PostgreSQL with its first replica pass, as every node does.
 *
 * Every refusal of a well-formed request is the same 401, whatever failed
 * (token, expiry, clock, proof, replayed nonce): a prober learns nothing.
 * Nonces are remembered in this process only; a request replayed to
 * another member is accepted there, and its answer opens only for a
 * holder of the token.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "cluster/join.h"
#include "util/log.h"

#define JSON_TYPE "application/json; charset=utf-8"

static struct join_replay replay = JOIN_REPLAY_INITIALIZER;

void api_join(struct api *api, http_conn_t *c, const struct http_request *req)
{
	struct join_request r;
	struct join_config cfg;
	uint8_t mac[JOIN_MAC_LEN];
	char host[80], *answer;
	int64_t now = (int64_t)time(NULL);
	size_t len;
	int rc;

	const struct join_config *offer = api->join_offer;

	if (!offer || !api->peer_key_set) {
		http_send_error(c, 404, "this node is not in a cluster");
		return;
	}
	if (req->method != HTTP_POST) {
		http_send_error(c, 405, "method not allowed");
		return;
	}
	if (join_request_parse(req->body.p, req->body.len, &r) < 0) {
		http_send_error(c, 400,
				"a join request is a JSON object of t, nonce, time, port"
				" and proof");
		return;
	}
	join_url_host(http_conn_peer(c), host, sizeof(host));
	rc = join_request_check(api->peer_key, &r, now, mac);
	if (rc == 0)
		rc = join_replay_add(&replay, r.nonce, now);
	if (rc == -EBUSY) {
		explicit_bzero(mac, sizeof(mac));
		http_send_error(c, 503, "too many joins at once; retry in a minute");
		return;
	}
	if (rc < 0) {
		log_warn("join: refused a request from %s", host);
		http_send_error(c, 401,
				"join refused: a wrong or expired token, or a stale or"
				" replayed request");
		return;
	}
	/* The offer is shared by the loops: the answer is made from a copy
	 * of its pointers with this request's address added. */
	cfg = *offer;
	cfg.address = host;
	answer = join_answer_make(mac, r.nonce, &cfg, &len);
	explicit_bzero(mac, sizeof(mac));
	log_info("join: sent the cluster's configuration to a new node at %s (port %d)", host,
		 r.port);
	http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", answer, len);
	free(answer);
}
