#ifndef CHORUS_API_API_H
#define CHORUS_API_API_H

#include <stdint.h>
#include <time.h>

#include "api/memo.h"
#include "cache/cache.h"
#include "catalog/read.h"
#include "http/server.h"

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
};

struct api_loop {
	catalog_reader_t *reader;
	struct memo memo; /* rendered catalog answers */
};

void api_handle(void *ud, http_conn_t *c, const struct http_request *req);
void *api_loop_data_new(void *ud, int index);
void api_loop_data_free(void *ud, void *data);

/* The dashboard page, embedded at build time from web/index.html. */
extern const unsigned char web_index_html[];
extern const size_t web_index_html_len;

/* GET/HEAD /api/v1/tracks/{id}/stream */
void api_stream(struct api *api, http_conn_t *c, const struct http_request *req, int64_t id);

#endif
