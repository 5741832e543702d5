/*
 * GET /api/v1/zones/{id}/queue?from=T&hours=H: the zone's planned
 * sequence (schedule/schedule.h) with a signed stream URL per item,
 * answered from this loop's read model, so it works with PostgreSQL
 * down.
 *
 * Deterministic: the items depend on the zone's week, its playlists and
 * the catalog only, and each URL's expiry on its item's end, so two nodes
 * answer the same request from the same key byte for byte. What a zone's
 * queue is made of (its week parsed, its time zone, its playlists'
 * pools) is kept per loop until the read model changes: a device's
 * request then costs the plan of the hours it asks, microseconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "catalog/model.h"
#include "schedule/schedule.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define ANSWER_MAX ((size_t)8 << 20)
#define PLANS_MAX 512
#define HOURS_DEFAULT 8
#define HOURS_MAX 24
/* A radio-style licence: no looking ahead past now plus this, and links
 * that die soon after their item. */
#define NONINTERACTIVE_AHEAD_MS (15 * 60 * 1000)
#define NONINTERACTIVE_LIFE_S (15 * 60)
#define INTERACTIVE_LIFE_S (24 * 3600)

/* What a zone's queue is made of, as of one read-model version. */
struct plan {
	int64_t zone, location;
	char version[17];
	char licence[16];
	char timezone[65];
	int volume;
	bool has_week;
	struct schedule s;
	const tz_t *tz;
	struct sched_pool *pools;
	int npools;
	struct sched_track *spots;
	int nspots;
};

struct api_plans {
	int64_t data_version;
	struct plan *v[PLANS_MAX];
	int n;
};

static void plan_free(struct plan *p)
{
	if (!p)
		return;
	if (p->has_week)
		schedule_free(&p->s);
	for (int i = 0; i < p->npools; i++)
		free((void *)p->pools[i].t);
	free(p->pools);
	free(p->spots);
	free(p);
}

static void plans_clear(struct api_plans *ps)
{
	for (int i = 0; i < ps->n; i++)
		plan_free(ps->v[i]);
	ps->n = 0;
}

void api_plans_free(struct api_plans *ps)
{
	if (!ps)
		return;
	plans_clear(ps);
	free(ps);
}

/* The zone's plan from the read model: 200, 404, 500. */
static int plan_make(catalog_zones_t *z, int64_t id, struct plan **out)
{
	struct plan *p = xcalloc(1, sizeof(*p));
	struct catalog_zone zone;
	char err[256];
	int st = catalog_zone_get(z, id, &zone);

	if (st != 200) {
		free(p);
		return st;
	}
	p->zone = id;
	p->location = zone.location_id;
	p->volume = zone.volume;
	snprintf(p->licence, sizeof(p->licence), "%s", zone.licence);
	snprintf(p->timezone, sizeof(p->timezone), "%s", zone.timezone);
	if (catalog_zone_version(z, id, p->version) < 0 ||
	    tz_get(zone.timezone, &p->tz, err, sizeof(err)) < 0) {
		log_error("api: zone %016llx cannot be planned: %s", (unsigned long long)id,
			  "its version or time zone cannot be read");
		st = 500;
	} else if (zone.schedule) {
		if (schedule_parse(zone.schedule, strlen(zone.schedule), &p->s, err, sizeof(err)) <
		    0) {
			log_error("api: zone %016llx's stored week does not parse: %s",
				  (unsigned long long)id, err);
			st = 500;
		} else {
			int64_t ids[SCHED_PARTS_MAX * 2];
			int n = schedule_playlists(&p->s, ids, (int)(sizeof(ids) / sizeof(ids[0])));
			int nspots = 0;

			p->has_week = true;
			p->pools = xcalloc((size_t)n + 1, sizeof(*p->pools));
			/* A playlist deleted since is silence, not an error. */
			for (int i = 0; i < n && st == 200; i++) {
				int ps = catalog_playlist_pool(z, ids[i], &p->pools[p->npools]);

				if (ps == 200)
					p->npools++;
				else if (ps != 404)
					st = 500;
			}
			for (int a = 0; a < p->s.nann; a++)
				nspots += p->s.ann[a].ntracks;
			p->spots = xcalloc((size_t)nspots + 1, sizeof(*p->spots));
			for (int a = 0; a < p->s.nann; a++)
				p->nspots +=
					catalog_spots(z, p->s.ann[a].tracks, p->s.ann[a].ntracks,
						      p->spots + p->nspots);
		}
	}
	catalog_zone_free(&zone);
	if (st != 200) {
		plan_free(p);
		return st;
	}
	*out = p;
	return 200;
}

/* The loop's plan of zone id, made when missing or stale. */
static int plan_get(struct api_loop *al, int64_t id, struct plan **out)
{
	struct api_plans *ps = al->plans;
	int64_t v = catalog_reader_version(al->reader);
	int st;

	if (!ps)
		ps = al->plans = xcalloc(1, sizeof(*ps));
	if (v < 0 || v != ps->data_version) {
		plans_clear(ps);
		ps->data_version = v;
	}
	for (int i = 0; i < ps->n; i++)
		if (ps->v[i]->zone == id) {
			*out = ps->v[i];
			return 200;
		}
	if ((st = plan_make(al->zones, id, out)) != 200)
		return st;
	if (ps->n == PLANS_MAX) {
		plan_free(ps->v[0]);
		memmove(ps->v, ps->v + 1, sizeof(ps->v[0]) * (PLANS_MAX - 1));
		ps->n--;
	}
	ps->v[ps->n++] = *out;
	return 200;
}

/* A query integer, or def when absent: 0, or -1 when malformed. */
static int query_int(const struct http_request *req, const char *name, int64_t def, int64_t *out)
{
	char q[32], *end;
	int n = http_query_param(req->query, name, q, sizeof(q));
	long long v;

	*out = def;
	if (n < 0)
		return http_query_has(req->query, name) ? -1 : 0;
	if (n == 0)
		return -1;
	errno = 0;
	v = strtoll(q, &end, 10);
	if (*end || errno)
		return -1;
	*out = v;
	return 0;
}

static void item_json(json_t *j, struct api_call *x, const struct plan *p,
		      const struct sched_item *it, bool interactive)
{
	struct catalog_brief brief;
	char hex[17], sig[AUTH_URL_SIG_MAX], url[256];
	int64_t end_s = (it->start_ms + it->duration_ms + 999) / 1000, exp;
	bool have = catalog_track_brief(x->al->zones, it->track, &brief) == 0;

	/* An expiry cut at a round time after the item's end, the same on
	 * every node. */
	if (interactive)
		exp = (end_s + INTERACTIVE_LIFE_S + 3599) / 3600 * 3600;
	else
		exp = (end_s + NONINTERACTIVE_LIFE_S + 299) / 300 * 300;
	json_obj_begin(j);
	catalog_id_str(it->track, hex);
	json_kstr(j, "track_id", hex);
	if (it->playlist) {
		catalog_id_str(it->playlist, hex);
		json_kstr(j, "playlist_id", hex);
	} else {
		json_knull(j, "playlist_id");
	}
	json_kint(j, "starts_at", it->start_ms);
	json_kint(j, "duration_ms", it->duration_ms);
	json_kbool(j, "announcement", it->announcement);
	json_kstr(j, "title", have ? brief.title : NULL);
	json_kstr(j, "artist", have ? brief.artist : NULL);
	json_kstr(j, "mime_type", have ? brief.mime : NULL);
	catalog_id_str(it->track, hex);
	if (x->who.id[0]) {
		auth_url_sign(x->api->url_key, it->track, x->who.id, exp, sig);
		snprintf(url, sizeof(url), "/api/v1/tracks/%s/stream?exp=%lld&sig=%s", hex,
			 (long long)exp, sig);
	} else {
		snprintf(url, sizeof(url), "/api/v1/tracks/%s/stream", hex);
	}
	json_kstr(j, "stream_url", url);
	json_kint(j, "expires_at", exp * 1000);
	json_obj_end(j);
}

void api_zone_queue(struct api_call *x)
{
	int64_t now = wall_ms(), from, hours, to;
	struct sched_item *items = NULL;
	struct plan *p;
	size_t n = 0;
	bool interactive;
	char hex[17];
	json_t j;
	buf_t b;
	int st;

	if (query_int(x->req, "from", now, &from) < 0 || from < 0 ||
	    from > (int64_t)253402300799000) {
		http_send_error(x->c, 400, "from must be a time in Unix milliseconds");
		return;
	}
	if (query_int(x->req, "hours", HOURS_DEFAULT, &hours) < 0 || hours < 1 ||
	    hours > HOURS_MAX) {
		http_send_error(x->c, 400, "hours must be an integer from 1 to 24");
		return;
	}
	st = plan_get(x->al, x->id, &p);
	if (st != 200) {
		http_send_error(x->c, st, st == 404 ? "no such zone" : "internal error");
		return;
	}
	interactive = strcmp(p->licence, "non-interactive") != 0;
	to = from + hours * 3600 * 1000;
	/* Radio-style: nothing past what plays now and soon, whatever is
	 * asked. */
	if (!interactive && to > now + NONINTERACTIVE_AHEAD_MS)
		to = now + NONINTERACTIVE_AHEAD_MS;
	if (p->has_week && from < to) {
		struct sched_input in = {
			.s = &p->s,
			.tz = p->tz,
			.zone = p->zone,
			.pools = p->pools,
			.npools = p->npools,
			.spots = p->spots,
			.nspots = p->nspots,
		};
		int rc = schedule_queue(&in, from, to, &items, &n);

		if (rc < 0) {
			http_send_error(x->c, rc == -EINVAL ? 400 : 500,
					rc == -EINVAL ? "from is out of range" : "internal error");
			return;
		}
	}
	buf_init(&b, ANSWER_MAX);
	json_init(&j, &b);
	json_obj_begin(&j);
	catalog_id_str(p->zone, hex);
	json_kstr(&j, "zone_id", hex);
	catalog_id_str(p->location, hex);
	json_kstr(&j, "location_id", hex);
	json_kstr(&j, "timezone", p->timezone);
	json_kstr(&j, "licence", p->licence);
	json_kstr(&j, "version", p->version);
	json_kint(&j, "volume", p->volume);
	json_kint(&j, "from", from);
	json_kint(&j, "to", to > from ? to : from);
	json_key(&j, "items");
	json_arr_begin(&j);
	for (size_t i = 0; i < n; i++)
		item_json(&j, x, p, &items[i], interactive);
	json_arr_end(&j);
	json_obj_end(&j);
	free(items);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		http_send_error(x->c, 500, "internal error");
	else
		http_send(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	buf_free(&b);
}
