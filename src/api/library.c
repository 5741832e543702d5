/*
 * GET /api/v1/library: the console's library panel. The figures and the
 * latest ingest runs come from this loop's catalog reader
 * (catalog_library), so a cluster node answers from its read model, with
 * PostgreSQL down as well as up; this file renders them and judges which
 * unfinished runs are still going.
 *
 * A run's row says when it last beat (catalog/model.h). An unfinished
 * run is "running" while its last beat is recent by this node's clock,
 * and "unfinished" once it is older than CATALOG_RUN_STALE_MS: it was
 * killed or crashed, and will never finish. The answer is not memoized:
 * a running ingest beats, and the state of its row changes with the
 * clock, not with the catalog.
 */
#include <stdio.h>

#include "api/api.h"
#include "plays/plays.h"
#include "util/clock.h"
#include "util/json.h"

#define JSON_TYPE "application/json; charset=utf-8"
/* 20 runs of 20 errors of a 4 KiB path and a 1 KiB message, escaped:
 * well under this. */
#define LIBRARY_BODY_MAX ((size_t)16 << 20)

static void k_time(json_t *j, const char *key, int64_t ms)
{
	char ts[32];

	if (!ms) {
		json_knull(j, key);
		return;
	}
	plays_rfc3339_format(ms, ts);
	json_kstr(j, key, ts);
}

static const char *run_state(const struct catalog_ingest *in, int64_t now_ms)
{
	if (in->finished_at)
		return "finished";
	return now_ms - in->heartbeat_at <= CATALOG_RUN_STALE_MS ? "running" : "unfinished";
}

static void write_run(json_t *j, const struct catalog_ingest *in, int64_t now_ms)
{
	char id[17];

	catalog_id_str(in->id, id);
	json_obj_begin(j);
	json_kstr(j, "id", id);
	k_time(j, "started", in->started_at);
	k_time(j, "finished", in->finished_at);
	json_kstr(j, "state", run_state(in, now_ms));
	json_kstr(j, "host", in->host);
	json_kint(j, "added", in->added);
	json_kint(j, "updated", in->updated);
	json_kint(j, "unchanged", in->unchanged);
	json_kint(j, "failed", in->failed);
	json_key(j, "errors");
	json_arr_begin(j);
	for (int e = 0; e < in->nerrors; e++) {
		json_obj_begin(j);
		json_kstr(j, "path", in->errors[e].path);
		json_kstr(j, "message", in->errors[e].message);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

void api_library(struct api_call *x)
{
	struct catalog_library lib;
	int64_t now_ms = wall_ms();
	buf_t b;
	json_t j;

	if (catalog_library(x->al->reader, &lib) != 200) {
		http_send_error(x->c, 500, "internal error");
		return;
	}
	buf_init(&b, LIBRARY_BODY_MAX);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_kint(&j, "artists", lib.artists);
	json_kint(&j, "albums", lib.albums);
	json_kint(&j, "tracks", lib.tracks);
	json_kint(&j, "duration_ms", lib.duration_ms);
	json_kint(&j, "origin_bytes", lib.origin_bytes);
	json_key(&j, "ingests");
	json_arr_begin(&j);
	for (int i = 0; i < lib.ningests; i++)
		write_run(&j, &lib.ingests[i], now_ms);
	json_arr_end(&j);
	json_obj_end(&j);
	catalog_library_free(&lib);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		http_send_error(x->c, 500, "internal error");
	else
		http_send(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	buf_free(&b);
}
