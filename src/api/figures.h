#ifndef CHORUS_API_FIGURES_H
#define CHORUS_API_FIGURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Another node's answer to /internal/node/node, read back (jansson; apart
 * from util/json.h, whose json_t is another type of the same name) for
 * the overview. Numbers the answer lacks are -1.
 */
struct node_figures {
	bool drained;
	char version[32];
	double uptime_s, connections, requests_per_s, bytes_out_per_s;
	double cache_bytes, cache_budget_bytes, cache_hits, cache_misses;
	double replication_lag_ms, plays_queued;
	int origin_reachable; /* 1, 0, or -1: not said */
};

/* 0, or -1 when json is not an object. */
int api_figures_parse(const char *json, size_t len, struct node_figures *out);

/* Whether json (len bytes) is one JSON object, for an answer spliced
 * into another as it came. */
bool api_json_is_object(const char *json, size_t len);

/* The integer field name of a JSON object body, when present, within [min,
 * max] into *out (left alone when absent; an empty body is an empty
 * object). 0, or -1 with a sentence for the client in err. */
int api_body_int(const void *body, size_t len, const char *name, int64_t min, int64_t max,
		 int64_t *out, char *err, size_t errlen);

#endif
