#ifndef CHORUS_CLUSTER_PEER_H
#define CHORUS_CLUSTER_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "cluster/membership.h"
#include "crypto/sign.h"

/*
 * Peer fill: which node should hold a chunk, and asking it.
 *
 * Every chunk has an owner, the first node of its rendezvous ranking: live
 * nodes of this node's site first, then the others, each group by a hash
 * of (node id, blob, index), highest first. Every node computes the same
 * ranking from the same member list, so the cluster agrees on an owner
 * without talking about it, and a node joining or leaving moves only the
 * chunks it wins or held. A miss asks the nodes ranked before this one, in
 * order (GET /internal/chunks/BLOB/INDEX, signed with the cluster key); the
 * owner fills from the origin, once however many nodes ask, because its
 * cache is single-flight and peer requests never go on to other peers.
 * A peer that fails is suspect at once (membership_suspect) and skipped
 * until it answers again.
 */
typedef struct peers peers_t;

struct peers_opts {
	membership_t *members;
	const char *site;          /* this node's site ("" for none) */
	uint8_t key[SIGN_KEY_LEN]; /* the cluster key */
	int timeout_ms;            /* a whole peer request (connecting: at most
				      300 ms of it); default 5000 */
};

int peers_open(const struct peers_opts *o, peers_t **out);
void peers_close(peers_t *p);

/* The cache's peer source (struct cache_peers) for this cluster. */
struct cache_peers peers_source(peers_t *p);

/*
 * Orders members (live ones only: callers filter) for a chunk: site first,
 * then rendezvous score. Exposed for tests.
 */
void peers_rank(struct member *m, size_t n, const char *site, const char *blob, uint32_t index);

/* The rendezvous score of a node for a chunk. */
uint64_t peers_score(const char *node_id, const char *blob, uint32_t index);

#endif
