/*
 * GET /api/v1/zones/{id}/queue?from=T&hours=H: the zone's planned
 * sequence (schedule/schedule.h) with a signed stream URL per item,
 * answered from this loop's read model, so it works with PostgreSQL
 * down.
 *
 * Deterministic: the items depend on the zone's week, its playlists and
 * the catalog only, and the links' expiry on the window, so two nodes
 * answer the same request from the same key byte for byte.
 *
 * Cheap, because thousands of devices ask: what a zone's queue is made of
 * (its week parsed, its time zone, its playlists' pools, each track's
 * title, artist and type already as JSON) is kept per loop as its plan,
 * checked against the zone's version when the read model moves; a
 * window's answer is kept with the plan as a template whose only holes
 * are the signature; and the links are signed once per answer, for the
 * zone (auth_zone_url_sign: good for the tracks the plan plays, which
 * the stream checks with api_zone_plays). A repeated question costs a
 * signature and a copy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

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
#define WINDOWS_MAX 8                     /* answers kept per plan */
#define WINDOWS_BUDGET ((size_t)32 << 20) /* their bytes, per loop */
#define HOURS_DEFAULT 8
#define HOURS_MAX 24
/* A radio-style licence: no looking ahead past now plus this, and links
 * that die soon after their window. */
#define NONINTERACTIVE_AHEAD_MS (15 * 60 * 1000)
#define NONINTERACTIVE_LIFE_S (15 * 60)
#define INTERACTIVE_LIFE_S (24 * 3600)
#define SIG_HOLE '\x01' /* where a template takes the signature */

/* A track as the answer shows it: "title":...,"artist":...,"mime_type":... */
struct brief {
	int64_t id;
	char *json;
};

/* One window's answer with its signature's holes. */
struct window {
	int64_t from, to, exp;
	char *body; /* SIG_HOLE where the signature goes */
	size_t len;
	size_t *holes; /* their offsets */
	size_t nholes;
	uint64_t used; /* the loop's clock of last use */
};

/* What a zone's queue is made of, as of one version of it. */
struct plan {
	int64_t zone, location;
	char version[17];
	char licence[16];
	char timezone[65];
	int volume;
	bool has_week, stale;
	struct schedule s;
	const tz_t *tz;
	struct sched_pool *pools;
	int npools;
	struct sched_track *spots;
	int nspots;
	struct brief *briefs; /* open addressing by id, nbriefs a power of 2 */
	size_t nbriefs;
	struct window win[WINDOWS_MAX];
	int nwin;
};

struct api_plans {
	int64_t data_version;
	struct plan *v[PLANS_MAX];
	int n;
	size_t bytes; /* of every plan's windows */
	uint64_t clock;
};

static void windows_clear(struct api_plans *ps, struct plan *p)
{
	for (int i = 0; i < p->nwin; i++) {
		ps->bytes -= p->win[i].len;
		free(p->win[i].body);
		free(p->win[i].holes);
	}
	p->nwin = 0;
}

static void plan_free(struct api_plans *ps, struct plan *p)
{
	if (!p)
		return;
	windows_clear(ps, p);
	if (p->has_week)
		schedule_free(&p->s);
	for (int i = 0; i < p->npools; i++)
		free((void *)p->pools[i].t);
	free(p->pools);
	free(p->spots);
	for (size_t i = 0; i < p->nbriefs; i++)
		free(p->briefs[i].json);
	free(p->briefs);
	free(p);
}

void api_plans_free(struct api_plans *ps)
{
	if (!ps)
		return;
	for (int i = 0; i < ps->n; i++)
		plan_free(ps, ps->v[i]);
	free(ps);
}

static size_t slot(const struct plan *p, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 20) & (p->nbriefs - 1);
}

static struct brief *brief_find(const struct plan *p, int64_t id)
{
	if (!p->nbriefs)
		return NULL;
	for (size_t i = slot(p, id);; i = (i + 1) & (p->nbriefs - 1)) {
		if (p->briefs[i].id == id)
			return &p->briefs[i];
		if (!p->briefs[i].id)
			return NULL;
	}
}

/* The JSON of a track's brief (its three fields, no braces). */
static char *brief_json(catalog_zones_t *z, int64_t id)
{
	struct catalog_brief b;
	bool have = catalog_track_brief(z, id, &b) == 0;
	buf_t out;
	json_t j;

	buf_init(&out, 4096);
	json_init(&j, &out);
	json_obj_begin(&j);
	json_kstr(&j, "title", have ? b.title : NULL);
	json_kstr(&j, "artist", have ? b.artist : NULL);
	json_kstr(&j, "mime_type", have ? b.mime : NULL);
	json_obj_end(&j);
	if (json_failed(&j) || out.len < 2) {
		buf_free(&out);
		return xstrdup("\"title\":null,\"artist\":null,\"mime_type\":null");
	}
	out.data[out.len - 1] = '\0'; /* the closing brace */
	memmove(out.data, out.data + 1, out.len - 1);
	return (char *)out.data;
}

static void brief_add(struct plan *p, catalog_zones_t *z, int64_t id)
{
	size_t i;

	if (brief_find(p, id))
		return;
	for (i = slot(p, id); p->briefs[i].id; i = (i + 1) & (p->nbriefs - 1))
		;
	p->briefs[i].id = id;
	p->briefs[i].json = brief_json(z, id);
}

/* Every track the plan may play, with its brief, in one read
 * transaction (a statement each otherwise takes SQLite's locks anew). */
static void briefs_make(struct plan *p, struct api_loop *al)
{
	size_t n = (size_t)p->nspots;

	for (int i = 0; i < p->npools; i++)
		n += (size_t)p->pools[i].n;
	for (p->nbriefs = 16; p->nbriefs < 2 * n; p->nbriefs *= 2)
		;
	p->briefs = xcalloc(p->nbriefs, sizeof(*p->briefs));
	if (catalog_reader_begin(al->reader) == 0) {
		for (int i = 0; i < p->npools; i++)
			for (int k = 0; k < p->pools[i].n; k++)
				brief_add(p, al->zones, p->pools[i].t[k].id);
		for (int i = 0; i < p->nspots; i++)
			brief_add(p, al->zones, p->spots[i].id);
	}
	catalog_reader_end(al->reader);
}

static int plan_make(struct api_loop *al, int64_t id, struct plan **out)
{
	catalog_zones_t *z = al->zones;
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
		plan_free(NULL, p);
		return st;
	}
	briefs_make(p, al);
	*out = p;
	return 200;
}

/* The loop's plan of zone id: made when missing; when the read model
 * moved since, kept if the zone's version did not (most changes are of
 * other things: devices' rows, other zones), else made again. */
static int plan_get(struct api_loop *al, int64_t id, struct plan **out)
{
	struct api_plans *ps = al->plans;
	int64_t v = catalog_reader_version(al->reader);
	char version[17];
	int st, i;

	if (!ps)
		ps = al->plans = xcalloc(1, sizeof(*ps));
	if (v < 0 || v != ps->data_version) {
		for (i = 0; i < ps->n; i++)
			ps->v[i]->stale = true;
		ps->data_version = v;
	}
	for (i = 0; i < ps->n && ps->v[i]->zone != id; i++)
		;
	if (i < ps->n) {
		struct plan *p = ps->v[i];

		if (!p->stale) {
			*out = p;
			return 200;
		}
		if (catalog_zone_version(al->zones, id, version) == 0 &&
		    strcmp(version, p->version) == 0) {
			int volume;
			int64_t skip;

			/* The volume is the answer's but not the version's (a
			 * device is told it by its own event). */
			if (catalog_zone_live(al->zones, id, &volume, &skip) == 0 &&
			    volume != p->volume) {
				p->volume = volume;
				windows_clear(ps, p);
			}
			p->stale = false;
			*out = p;
			return 200;
		}
		plan_free(ps, p);
		ps->v[i] = ps->v[--ps->n];
	}
	if ((st = plan_make(al, id, out)) != 200)
		return st;
	if (ps->n == PLANS_MAX) {
		plan_free(ps, ps->v[0]);
		ps->v[0] = ps->v[--ps->n];
	}
	ps->v[ps->n++] = *out;
	return 200;
}

bool api_zone_plays(struct api_loop *al, int64_t zone, int64_t track)
{
	struct plan *p;

	return plan_get(al, zone, &p) == 200 && brief_find(p, track) != NULL;
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

/* The window's answer, its signature a SIG_HOLE: 200 or 500. */
static int window_render(const struct plan *p, int64_t from, int64_t to, int64_t exp, buf_t *b)
{
	struct sched_item *items = NULL;
	size_t n = 0;
	char zone[17], hex[17];
	json_t j;
	int bad = 0;

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

		if (rc < 0)
			return rc == -EINVAL ? 400 : 500;
	}
	catalog_id_str(p->zone, zone);
	json_init(&j, b);
	json_obj_begin(&j);
	json_kstr(&j, "zone_id", zone);
	catalog_id_str(p->location, hex);
	json_kstr(&j, "location_id", hex);
	json_kstr(&j, "timezone", p->timezone);
	json_kstr(&j, "licence", p->licence);
	json_kstr(&j, "version", p->version);
	json_kint(&j, "volume", p->volume);
	json_kint(&j, "from", from);
	json_kint(&j, "to", to > from ? to : from);
	json_kint(&j, "expires_at", exp * 1000);
	json_key(&j, "items");
	json_arr_begin(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	if (json_failed(&j) || b->len < 3)
		bad = 1;
	else
		b->len -= 3; /* "]}" and the empty list's "[": the items go there */
	bad |= buf_appends(b, "[");
	/* Written by hand: each item's fields are ids, numbers and a brief
	 * already escaped. */
	for (size_t i = 0; i < n && !bad; i++) {
		const struct sched_item *it = &items[i];
		const struct brief *br = brief_find(p, it->track);
		char pl[20] = "null";

		catalog_id_str(it->track, hex);
		if (it->playlist) {
			pl[0] = '"';
			catalog_id_str(it->playlist, pl + 1);
			pl[17] = '"';
			pl[18] = '\0';
		}
		bad |= buf_printf(b,
				  "%s{\"track_id\":\"%s\",\"playlist_id\":%s,\"starts_at\":%lld,"
				  "\"duration_ms\":%d,\"announcement\":%s,%s,\"stream_url\":"
				  "\"/api/v1/tracks/%s/stream?zone=%s&exp=%lld&sig=%c\"}",
				  i ? "," : "", hex, pl, (long long)it->start_ms,
				  (int)it->duration_ms, it->announcement ? "true" : "false",
				  br ? br->json
				     : "\"title\":null,\"artist\":null,\"mime_type\":null",
				  hex, zone, (long long)exp, SIG_HOLE);
	}
	bad |= buf_appends(b, "]}\n");
	free(items);
	return bad ? 500 : 200;
}

/* The window's template, from the plan's or made and kept there. */
static const struct window *window_get(struct api_plans *ps, struct plan *p, int64_t from,
				       int64_t to, int64_t exp, int *status)
{
	struct window *w;
	buf_t b;

	for (int i = 0; i < p->nwin; i++)
		if (p->win[i].from == from && p->win[i].to == to && p->win[i].exp == exp) {
			p->win[i].used = ++ps->clock;
			return &p->win[i];
		}
	buf_init(&b, ANSWER_MAX);
	if ((*status = window_render(p, from, to, exp, &b)) != 200) {
		buf_free(&b);
		return NULL;
	}
	/* Room: the plan's least used window, then other plans' windows. */
	if (p->nwin == WINDOWS_MAX) {
		int old = 0;

		for (int i = 1; i < p->nwin; i++)
			if (p->win[i].used < p->win[old].used)
				old = i;
		ps->bytes -= p->win[old].len;
		free(p->win[old].body);
		free(p->win[old].holes);
		p->win[old] = p->win[--p->nwin];
	}
	for (int i = 0; i < ps->n && ps->bytes + b.len > WINDOWS_BUDGET; i++)
		if (ps->v[i] != p)
			windows_clear(ps, ps->v[i]);
	w = &p->win[p->nwin++];
	*w = (struct window){from, to, exp, (char *)b.data, b.len, NULL, 0, ++ps->clock};
	for (const char *h = w->body; (h = memchr(h, SIG_HOLE, w->len - (size_t)(h - w->body)));
	     h++)
		w->nholes++;
	w->holes = xcalloc(w->nholes + 1, sizeof(*w->holes));
	w->nholes = 0;
	for (const char *h = w->body; (h = memchr(h, SIG_HOLE, w->len - (size_t)(h - w->body)));
	     h++)
		w->holes[w->nholes++] = (size_t)(h - w->body);
	ps->bytes += b.len;
	return w;
}

void api_zone_queue(struct api_call *x)
{
	/* "Now" to the minute: a device's default question is the same for
	 * a minute, and its answer is kept. */
	int64_t now = wall_ms() / 60000 * 60000, from, hours, to, exp;
	const struct window *w;
	struct plan *p;
	char sig[AUTH_URL_SIG_MAX];
	size_t siglen, n = 0;
	struct iovec *parts;
	bool interactive;
	int st = 200;

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
	 * asked; links that die 15 minutes after the window (and its last
	 * item, which may end up to 10 minutes after it). Interactive: links
	 * that outlive the window (and its last item) by a day, for playing
	 * the buffer offline. Cut at round times, so every node signs alike. */
	if (!interactive && to > now + NONINTERACTIVE_AHEAD_MS)
		to = now + NONINTERACTIVE_AHEAD_MS;
	if (interactive)
		exp = ((to / 1000 + 3600 + INTERACTIVE_LIFE_S) + 3599) / 3600 * 3600;
	else
		exp = ((to / 1000 + 600 + NONINTERACTIVE_LIFE_S) + 299) / 300 * 300;
	if (!(w = window_get(x->al->plans, p, from, to, exp, &st))) {
		http_send_error(x->c, st, st == 400 ? "from is out of range" : "internal error");
		return;
	}
	if (x->who.id[0])
		auth_zone_url_sign(x->api->url_key, p->zone, x->who.id, exp, sig);
	else
		sig[0] = '\0';
	siglen = strlen(sig);
	/* The template with the signature in its holes, copied once, into
	 * the connection's buffer. */
	parts = xmalloc((2 * w->nholes + 1) * sizeof(*parts));
	for (size_t i = 0, at = 0; i <= w->nholes; i++) {
		size_t end = i < w->nholes ? w->holes[i] : w->len;

		parts[n++] = (struct iovec){w->body + at, end - at};
		if (i < w->nholes)
			parts[n++] = (struct iovec){sig, siglen};
		at = end + 1;
	}
	http_send_parts(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", parts, (int)n);
	free(parts);
}
