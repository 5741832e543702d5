#include "api/figures.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : -1;
}

int api_figures_parse(const char *json, size_t len, struct node_figures *out)
{
	json_t *root = json_loadb(json, len, 0, NULL), *cache, *repl, *ship, *origin;
	const char *version;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	cache = json_object_get(root, "cache");
	repl = json_object_get(root, "replication");
	ship = json_object_get(root, "plays_shipping");
	origin = json_object_get(root, "origin");
	out->drained = json_is_true(json_object_get(root, "drained"));
	version = json_string_value(json_object_get(root, "version"));
	snprintf(out->version, sizeof(out->version), "%s", version ? version : "");
	out->uptime_s = num(root, "uptime_s");
	out->connections = num(root, "connections");
	out->requests_per_s = num(root, "requests_per_s");
	out->bytes_out_per_s = num(root, "bytes_out_per_s");
	out->cache_bytes = num(cache, "bytes");
	out->cache_budget_bytes = num(cache, "budget_bytes");
	out->cache_hits = num(cache, "hits");
	out->cache_misses = num(cache, "misses");
	out->replication_lag_ms = num(repl, "lag_ms");
	out->plays_queued = num(ship, "queued");
	out->origin_reachable = json_is_boolean(json_object_get(origin, "reachable"))
					? json_is_true(json_object_get(origin, "reachable"))
					: -1;
	json_decref(root);
	return 0;
}

bool api_json_is_object(const char *json, size_t len)
{
	json_t *v = json_loadb(json, len, 0, NULL);
	bool ok = json_is_object(v);

	json_decref(v);
	return ok;
}

int api_body_int(const void *body, size_t len, const char *name, int64_t min, int64_t max,
		 int64_t *out, char *err, size_t errlen)
{
	json_t *root, *v;
	int rc = 0;

	if (len == 0)
		return 0;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the body must be a JSON object");
		rc = -1;
	} else if ((v = json_object_get(root, name))) {
		if (!json_is_integer(v) || json_integer_value(v) < min ||
		    json_integer_value(v) > max) {
			snprintf(err, errlen, "%s must be an integer from %lld to %lld", name,
				 (long long)min, (long long)max);
			rc = -1;
		} else {
			*out = json_integer_value(v);
		}
	}
	json_decref(root);
	return rc;
}
