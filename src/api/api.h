#ifndef CHORUS_API_API_H
#define CHORUS_API_API_H

#include <stdint.h>
#include <time.h>

#include "api/memo.h"
#include "cache/cache.h"
#include "catalog/read.h"
#include "catalog/search.h"
#include "cluster/join.h"
#include "cluster/membership.h"
#include "http/server.h"
#include "loop/pool.h"

/*
 * The node's HTTP API: routing, the catalog endpoints, streams and the
 * node's own figures. One struct api per process; per-loop state (the
 * catalog reader) comes from api_loop_data_new.
 */
struct api {
	char db_path[4096];
	cache_t *cache;
	http_server_t *server;
	time_t started;
	int prefetch; /* chunks read ahead of a stream */
	char data_dir[4096];
	struct plays *plays; /* plays/plays.h */
	/* A cluster node (serve --db): */
	const char *db;                /* PostgreSQL conninfo; NULL when embedded */
	struct replica *replica;       /* catalog/replica.h */
	struct plays_shipper *shipper; /* plays/plays.h */
	pool_t *pool;                  /* blocking work: reports, peer reseals (node-owned) */
	struct membership *membership; /* cluster/membership.h; NULL when embedded */
	struct member self;            /* this node (id, address, site), embedded or not */
	/* Peer fill (a cluster node): the key peer requests are signed with. */
	uint8_t peer_key[32];
	bool peer_key_set;
	_Atomic uint64_t peer_served; /* chunks sent to peers */
	/* What /internal/join hands a new node (api/join.c), prepared by
	 * node/setup.c; NULL outside a cluster. */
	const struct join_config *join_offer;
};

struct api_loop {
	catalog_reader_t *reader;
	cache_files_t *files; /* chunk fds shared by this loop's streams */
	struct memo memo;     /* rendered catalog answers */
	search_t *search;     /* on reader's connection */
};

void api_handle(void *ud, http_conn_t *c, const struct http_request *req);
void *api_loop_data_new(void *ud, int index);
void api_loop_data_free(void *ud, void *data);

/* The dashboard page, embedded at build time from web/index.html. */
extern const unsigned char web_index_html[];
extern const size_t web_index_html_len;

/* GET/HEAD /api/v1/search (api/search.c), after the memo missed. */
void api_search(struct api_loop *al, http_conn_t *c, const struct http_request *req);

/* GET/HEAD /api/v1/tracks/{id}/stream */
void api_stream(struct api *api, http_conn_t *c, const struct http_request *req, int64_t id);

/* GET /internal/chunks/BLOB/INDEX: a peer's request (api/internal.c). */
void api_internal(struct api *api, struct api_loop *al, http_conn_t *c,
		  const struct http_request *req);

/* POST /internal/join: a new node asks for the cluster's configuration
 * (api/join.c): api->join_offer with the address the request came from. */
void api_join(struct api *api, http_conn_t *c, const struct http_request *req);

/* GET /api/v1/cluster (api/cluster.c), and this node's figures as the
 * membership thread publishes them (a membership_stats_fn; ud: the api). */
void api_cluster(struct api *api, http_conn_t *c);
void api_cluster_stats(void *ud, struct member_stats *out);

/* POST /api/v1/plays; GET /api/v1/reports/plays (api/plays.c). */
void api_plays_post(struct api *api, http_conn_t *c, const struct http_request *req);
void api_plays_report(struct api *api, http_conn_t *c, const struct http_request *req);

#endif
