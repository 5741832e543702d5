/*
 * The store devices a node talks to: POST /api/v1/zones/{id}/status (what
 * a device says it does), its event streams (it is online while one is
 * open), and GET /api/v1/devices (every device of the cluster, from the
 * read model).
 *
 * What devices say is kept in memory and written to the source of truth
 * by one thread in batches (every FLUSH_MS, only what changed, and a
 * connected device's row again every REFRESH_MS so that it stays
 * "seen"): a device's report never waits for a database, and thousands
 * of devices cost a write transaction every couple of seconds, not one
 * each. The devices table is a feed table, so every node's console sees
 * every device; a row is only replaced by a newer sighting (store/zones.c),
 * so two nodes that both saw a device agree on the later one. A node that
 * dies leaves its rows, whose sightings then age past ONLINE_MS: offline.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/zones_body.h"
#include "catalog/model.h"
#include "store/zones.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define FLUSH_MS 2000
#define REFRESH_MS 60000
#define ONLINE_MS 150000 /* a device unheard for longer is offline */
#define BATCH_MAX 1000

struct device {
	struct store_device d;
	int conns;  /* event streams open on this node */
	bool dirty; /* changed since written */
	int64_t written_ms;
};

struct api_devices {
	struct api *api;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool stop, started;
	struct device *v;
	size_t n, cap;
};

/* The device of key, made when missing; under the lock. */
static struct device *find(struct api_devices *ds, const char *key)
{
	for (size_t i = 0; i < ds->n; i++)
		if (strcmp(ds->v[i].d.key_id, key) == 0)
			return &ds->v[i];
	if (ds->n == ds->cap) {
		ds->cap = ds->cap ? ds->cap * 2 : 64;
		ds->v = xrealloc(ds->v, ds->cap * sizeof(*ds->v));
	}
	memset(&ds->v[ds->n], 0, sizeof(ds->v[0]));
	snprintf(ds->v[ds->n].d.key_id, sizeof(ds->v[0].d.key_id), "%s", key);
	snprintf(ds->v[ds->n].d.node, sizeof(ds->v[0].d.node), "%s", ds->api->self.id);
	return &ds->v[ds->n++];
}

static void seen(struct device *dv, int64_t zone)
{
	dv->d.zone_id = zone;
	dv->d.last_seen_at = wall_ms();
	dv->d.offline_since = 0;
	dv->dirty = true;
}

void api_device_connect(struct api *api, const char *key, int64_t zone)
{
	struct api_devices *ds = api->devices;
	struct device *dv;

	if (!ds)
		return;
	pthread_mutex_lock(&ds->lock);
	dv = find(ds, key);
	dv->conns++;
	dv->d.connected = true;
	seen(dv, zone);
	pthread_mutex_unlock(&ds->lock);
}

void api_device_disconnect(struct api *api, const char *key)
{
	struct api_devices *ds = api->devices;
	struct device *dv;

	if (!ds)
		return;
	pthread_mutex_lock(&ds->lock);
	dv = find(ds, key);
	if (dv->conns > 0 && --dv->conns == 0) {
		dv->d.connected = false;
		dv->d.offline_since = wall_ms();
		dv->dirty = true;
	}
	pthread_mutex_unlock(&ds->lock);
}

/* The rows to write now into out (at most BATCH_MAX); under the lock. */
static size_t collect(struct api_devices *ds, struct store_device *out, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < ds->n && k < BATCH_MAX; i++) {
		struct device *dv = &ds->v[i];

		if (dv->conns > 0 && now - dv->written_ms >= REFRESH_MS) {
			dv->d.last_seen_at = wall_ms();
			dv->dirty = true;
		}
		if (!dv->dirty)
			continue;
		out[k++] = dv->d;
		dv->dirty = false;
		dv->written_ms = now;
	}
	return k;
}

/* Rows that could not be written are tried again at the next flush. */
static void mark_dirty(struct api_devices *ds, const struct store_device *rows, size_t n)
{
	pthread_mutex_lock(&ds->lock);
	for (size_t i = 0; i < n; i++)
		find(ds, rows[i].key_id)->dirty = true;
	pthread_mutex_unlock(&ds->lock);
}

static void *flusher(void *arg)
{
	struct api_devices *ds = arg;
	struct store_device *rows = xmalloc(BATCH_MAX * sizeof(*rows));
	bool last = false;

	while (!last) {
		struct timespec until;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += FLUSH_MS / 1000;
		pthread_mutex_lock(&ds->lock);
		while (!ds->stop &&
		       pthread_cond_timedwait(&ds->cond, &ds->lock, &until) != ETIMEDOUT)
			;
		last = ds->stop; /* one more flush: the offline marks of a shutdown */
		n = collect(ds, rows, mono_ms());
		pthread_mutex_unlock(&ds->lock);
		if (n) {
			store_t *s = api_catalog_store(ds->api);

			if (!s || store_devices_put(s, rows, n) < 0) {
				log_debug("devices: %zu devices' state not written; retrying", n);
				mark_dirty(ds, rows, n);
			}
		}
	}
	free(rows);
	return NULL;
}

struct api_devices *api_devices_new(struct api *api)
{
	struct api_devices *ds = xcalloc(1, sizeof(*ds));

	ds->api = api;
	pthread_mutex_init(&ds->lock, NULL);
	pthread_cond_init(&ds->cond, NULL);
	if (thread_start(&ds->thread, flusher, ds) == 0)
		ds->started = true;
	else
		log_warn("devices: no thread to record them; the console will not list them");
	return ds;
}

void api_devices_free(struct api_devices *ds)
{
	if (!ds)
		return;
	pthread_mutex_lock(&ds->lock);
	ds->stop = true;
	/* The streams are closed: whoever is still marked connected is not. */
	for (size_t i = 0; i < ds->n; i++)
		if (ds->v[i].conns > 0) {
			ds->v[i].conns = 0;
			ds->v[i].d.connected = false;
			ds->v[i].d.offline_since = wall_ms();
			ds->v[i].dirty = true;
		}
	pthread_cond_signal(&ds->cond);
	pthread_mutex_unlock(&ds->lock);
	if (ds->started)
		pthread_join(ds->thread, NULL);
	pthread_mutex_destroy(&ds->lock);
	pthread_cond_destroy(&ds->cond);
	free(ds->v);
	free(ds);
}

/* ---- the endpoints ---- */

void api_zone_status(struct api_call *x)
{
	struct api_devices *ds = x->api->devices;
	struct zones_status st;
	struct device *dv;
	char err[256];
	int rc;

	if (x->who.role != AUTH_STORE || x->who.id[0] != 'k') {
		http_send_error(x->c, 403, "only a store key's device reports its status");
		return;
	}
	if (!api_content_type_is(x->req, "application/json")) {
		http_send_error(x->c, 415, "Content-Type must be application/json");
		return;
	}
	rc = zones_body_status(x->req->body.p, x->req->body.len, &st, err, sizeof(err));
	if (rc != 200) {
		http_send_error(x->c, rc, err);
		return;
	}
	if (ds) {
		pthread_mutex_lock(&ds->lock);
		dv = find(ds, x->who.id + 1);
		seen(dv, x->id);
		dv->d.playing = st.playing;
		dv->d.position_ms = st.position_ms;
		dv->d.buffered_s = st.buffered_s;
		snprintf(dv->d.last_error, sizeof(dv->d.last_error), "%s", st.error);
		snprintf(dv->d.version, sizeof(dv->d.version), "%s", st.version);
		pthread_mutex_unlock(&ds->lock);
	}
	http_send(x->c, 204, NULL, "Cache-Control: no-store\r\n", NULL, 0);
}

void api_devices_list(struct api_call *x)
{
	char q[32];
	int64_t location = 0;
	int n = http_query_param(x->req->query, "location_id", q, sizeof(q));
	buf_t b;
	int st;

	if (n > 0 && catalog_id_parse(q, (size_t)n, &location) < 0) {
		http_send_error(x->c, 400, "location_id must be a location's id");
		return;
	}
	buf_init(&b, (size_t)32 << 20);
	st = catalog_json_devices(x->al->zones, location, wall_ms(), ONLINE_MS, &b);
	if (st == 200 && buf_append(&b, "\n", 1) == 0)
		http_send(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	else
		http_send_error(x->c, 500, "internal error");
	buf_free(&b);
}
