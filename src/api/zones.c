/*
 * The stores' endpoints (docs/api.md, "In the store"): locations, zones,
 * their weeks and commands, and playlists.
 *
 * Reads come from this loop's read model (catalog/zones.h). A change is
 * checked on the loop as far as the read model can (the body, the
 * schedule against the playlists and tracks it names), then written by
 * one job on the worker pool against the source of truth
 * (store/zones.h, with its audit row), never on a loop: SQLite's write
 * lock or a PostgreSQL failover may take seconds. The answer is the
 * object as this node's read model shows it afterwards, so the job waits
 * (a cluster node) until the model has applied the commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/zones_body.h"
#include "catalog/model.h"
#include "http/later.h"
#include "schedule/schedule.h"
#include "store/zones.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define ANSWER_MAX ((size_t)8 << 20)

enum zop {
	OP_LOCATION_PUT,
	OP_LOCATION_DELETE,
	OP_ZONE_PUT,
	OP_ZONE_DELETE,
	OP_SCHEDULE,
	OP_COMMAND,
	OP_PLAYLIST_PUT,
	OP_PLAYLIST_DELETE,
};

struct zjob {
	struct api *api;
	http_later_t *later;
	enum zop op;
	int64_t id;
	char actor[sizeof(((struct principal *)0)->actor)];
	struct store_location location;
	struct store_zone zone;
	struct store_playlist playlist;
	char *text; /* a schedule's canonical JSON; a playlist's tracks */
	char *rules;
	bool skip;
	int volume;
	struct store_change out;
	char err[256];
	int rc;
	int status; /* of a creation: 201 */
};

static void zjob_free(struct zjob *j)
{
	free(j->text);
	free(j->rules);
	free(j);
}

static void work(void *arg)
{
	struct zjob *j = arg;
	store_t *s = api_catalog_store(j->api);
	char *e = j->err;
	size_t n = sizeof(j->err);

	if (!s) {
		j->rc = -ENOTCONN;
		return;
	}
	switch (j->op) {
	case OP_LOCATION_PUT:
		j->rc = store_location_put(s, j->actor, &j->location, &j->out, e, n);
		break;
	case OP_LOCATION_DELETE:
		j->rc = store_location_delete(s, j->actor, j->id, &j->out, e, n);
		break;
	case OP_ZONE_PUT:
		j->rc = store_zone_put(s, j->actor, &j->zone, &j->out, e, n);
		break;
	case OP_ZONE_DELETE:
		j->rc = store_zone_delete(s, j->actor, j->id, &j->out, e, n);
		break;
	case OP_SCHEDULE:
		j->rc = store_zone_schedule(s, j->actor, j->id, j->text, &j->out, e, n);
		break;
	case OP_COMMAND:
		j->rc = store_zone_command(s, j->actor, j->id, j->skip, j->volume, &j->out, e, n);
		break;
	case OP_PLAYLIST_PUT:
		j->rc = store_playlist_put(s, j->actor, &j->playlist, &j->out, e, n);
		break;
	case OP_PLAYLIST_DELETE:
		j->rc = store_playlist_delete(s, j->actor, j->id, &j->out, e, n);
		break;
	}
	if (j->rc == 0)
		api_wait_applied(j->api, j->out.seq);
}

static void send_body(http_conn_t *c, int status, int rendered, buf_t *b)
{
	if (rendered == 200 && buf_append(b, "\n", 1) == 0)
		http_send(c, status, JSON_TYPE, "Cache-Control: no-store\r\n", b->data, b->len);
	else if (rendered == 404)
		http_send_error(c, 404, "it was deleted meanwhile");
	else
		http_send_error(c, 500, "internal error");
}

/* On the connection's loop: the object as this node's model shows it. */
static void answer(struct zjob *j, http_conn_t *c)
{
	catalog_zones_t *z;
	buf_t b;
	int st = 500;

	if (!c)
		return;
	if (j->rc < 0) {
		switch (j->rc) {
		case -ENOENT:
			http_send_error(c, 404, j->err[0] ? j->err : "no such object");
			return;
		case -EEXIST:
		case -ENOTEMPTY:
		case -EBUSY:
			http_send_error(c, 409, j->err);
			return;
		case -EAGAIN:
			http_send_error(c, 503, "the node is busy; retry");
			return;
		default:
			http_send_error(c, j->api->db ? 503 : 500,
					j->api->db ? "the catalog database is unreachable; retry"
						   : "the change could not be stored");
			return;
		}
	}
	if (j->op == OP_LOCATION_DELETE || j->op == OP_ZONE_DELETE || j->op == OP_PLAYLIST_DELETE) {
		http_send(c, 204, NULL, "Cache-Control: no-store\r\n", NULL, 0);
		return;
	}
	if (j->op == OP_COMMAND) {
		static const char ok[] = "{\"sent\":true}\n";

		http_send(c, 202, JSON_TYPE, "Cache-Control: no-store\r\n", ok, sizeof(ok) - 1);
		return;
	}
	z = ((struct api_loop *)http_conn_loop_data(c))->zones;
	buf_init(&b, ANSWER_MAX);
	switch (j->op) {
	case OP_LOCATION_PUT:
		st = catalog_json_location(z, j->out.id, &b);
		break;
	case OP_ZONE_PUT:
		st = catalog_json_zone(z, j->out.id, &b);
		break;
	case OP_SCHEDULE:
		st = catalog_json_schedule(z, j->out.id, &b);
		break;
	case OP_PLAYLIST_PUT:
		st = catalog_json_playlist(z, j->out.id, &b);
		break;
	default:
		break;
	}
	send_body(c, j->status ? j->status : 200, st, &b);
	buf_free(&b);
}

static void done(void *arg, int status)
{
	struct zjob *j = arg;

	if (status < 0)
		j->rc = status;
	answer(j, http_later_end(j->later));
	zjob_free(j);
}

static struct zjob *job_new(struct api_call *x, enum zop op)
{
	struct zjob *j = xcalloc(1, sizeof(*j));

	j->api = x->api;
	j->op = op;
	j->id = x->id;
	snprintf(j->actor, sizeof(j->actor), "%s", x->who.actor);
	return j;
}

static void submit(struct api_call *x, struct zjob *j)
{
	int rc;

	j->later = http_later(x->c);
	rc = pool_submit(x->api->pool, http_conn_loop(x->c), POOL_SLOW, work, done, j);
	if (rc < 0) {
		j->rc = rc;
		answer(j, http_later_end(j->later));
		zjob_free(j);
	}
}

/* 415 unless the body is JSON; true when it is. */
static bool json_body(struct api_call *x)
{
	if (api_content_type_is(x->req, "application/json"))
		return true;
	http_send_error(x->c, 415, "Content-Type must be application/json");
	return false;
}

/* A read's answer: missing says what a 404 did not find. */
static void send_read(struct api_call *x, int st, buf_t *b, const char *missing)
{
	if (st == 404)
		http_send_error(x->c, 404, missing);
	else
		send_body(x->c, 200, st, b);
}

static void refuse(struct api_call *x, int st, const char *msg, struct zjob *j)
{
	http_send_error(x->c, st, msg);
	if (j)
		zjob_free(j);
}

/*
 * The name a store key's location (or zone) has now, for its plays: a
 * royalty report names where music was heard as it was called then. The
 * key holds the id (store/principals.h); a key whose location is gone
 * keeps its id. Into out.
 */
void api_place_name(struct api_loop *al, const char *id_hex, bool zone, char *out, size_t n)
{
	int64_t id;

	snprintf(out, n, "%s", id_hex);
	if (catalog_id_parse(id_hex, strlen(id_hex), &id) < 0)
		return;
	if (zone) {
		struct catalog_zone z;

		if (catalog_zone_get(al->zones, id, &z) == 200) {
			snprintf(out, n, "%s", z.name);
			catalog_zone_free(&z);
		}
	} else {
		struct catalog_location l;

		if (catalog_location_get(al->zones, id, &l) == 200)
			snprintf(out, n, "%s", l.name);
	}
}

/* ---- locations ---- */

void api_locations(struct api_call *x)
{
	struct zjob *j;
	buf_t b;
	int st;

	if (x->req->method != HTTP_POST) {
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_locations(x->al->zones, &b), &b, NULL);
		buf_free(&b);
		return;
	}
	if (!json_body(x))
		return;
	j = job_new(x, OP_LOCATION_PUT);
	j->status = 201;
	st = zones_body_location(x->req->body.p, x->req->body.len, false, &j->location, j->err,
				 sizeof(j->err));
	if (st != 200)
		return refuse(x, st, j->err, j);
	submit(x, j);
}

void api_location_one(struct api_call *x)
{
	struct catalog_location cur;
	struct zjob *j;
	buf_t b;
	int st;

	switch (x->req->method) {
	case HTTP_DELETE:
		submit(x, job_new(x, OP_LOCATION_DELETE));
		return;
	case HTTP_PATCH:
		if (!json_body(x))
			return;
		st = catalog_location_get(x->al->zones, x->id, &cur);
		if (st != 200)
			return refuse(x, st, st == 404 ? "no such location" : "internal error",
				      NULL);
		j = job_new(x, OP_LOCATION_PUT);
		j->location.id = x->id;
		snprintf(j->location.name, sizeof(j->location.name), "%s", cur.name);
		snprintf(j->location.address, sizeof(j->location.address), "%s", cur.address);
		snprintf(j->location.country, sizeof(j->location.country), "%s", cur.country);
		snprintf(j->location.timezone, sizeof(j->location.timezone), "%s", cur.timezone);
		snprintf(j->location.licence, sizeof(j->location.licence), "%s", cur.licence);
		st = zones_body_location(x->req->body.p, x->req->body.len, true, &j->location,
					 j->err, sizeof(j->err));
		if (st != 200)
			return refuse(x, st, j->err, j);
		submit(x, j);
		return;
	default:
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_location(x->al->zones, x->id, &b), &b,
			  "no such location");
		buf_free(&b);
	}
}

/* ---- zones ---- */

void api_zones(struct api_call *x)
{
	struct zjob *j;
	char q[32];
	int64_t location = 0;
	buf_t b;
	int st;

	if (x->req->method != HTTP_POST) {
		int n = http_query_param(x->req->query, "location_id", q, sizeof(q));

		if (n > 0 && catalog_id_parse(q, (size_t)n, &location) < 0)
			return refuse(x, 400, "location_id must be a location's id", NULL);
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_zones(x->al->zones, location, &b), &b, NULL);
		buf_free(&b);
		return;
	}
	if (!json_body(x))
		return;
	j = job_new(x, OP_ZONE_PUT);
	j->status = 201;
	st = zones_body_zone(x->req->body.p, x->req->body.len, false, &j->zone, j->err,
			     sizeof(j->err));
	if (st != 200)
		return refuse(x, st, j->err, j);
	submit(x, j);
}

void api_zone_one(struct api_call *x)
{
	struct catalog_zone cur;
	struct zjob *j;
	buf_t b;
	int st;

	switch (x->req->method) {
	case HTTP_DELETE:
		submit(x, job_new(x, OP_ZONE_DELETE));
		return;
	case HTTP_PATCH:
		if (!json_body(x))
			return;
		st = catalog_zone_get(x->al->zones, x->id, &cur);
		if (st != 200)
			return refuse(x, st, st == 404 ? "no such zone" : "internal error", NULL);
		j = job_new(x, OP_ZONE_PUT);
		j->zone.id = x->id;
		j->zone.location_id = cur.location_id;
		snprintf(j->zone.name, sizeof(j->zone.name), "%s", cur.name);
		j->zone.volume = cur.volume;
		catalog_zone_free(&cur);
		st = zones_body_zone(x->req->body.p, x->req->body.len, true, &j->zone, j->err,
				     sizeof(j->err));
		if (st != 200)
			return refuse(x, st, j->err, j);
		submit(x, j);
		return;
	default:
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_zone(x->al->zones, x->id, &b), &b, "no such zone");
		buf_free(&b);
	}
}

void api_zone_commands(struct api_call *x)
{
	struct zjob *j;
	int st;

	if (!json_body(x))
		return;
	j = job_new(x, OP_COMMAND);
	st = zones_body_command(x->req->body.p, x->req->body.len, &j->skip, &j->volume, j->err,
				sizeof(j->err));
	if (st != 200)
		return refuse(x, st, j->err, j);
	submit(x, j);
}

/* ---- a zone's week ---- */

/* The week s checked against the read model: its playlists exist and can
 * fill their dayparts, its announcements' tracks exist. 200, or 422 with
 * err. */
static int check_week(catalog_zones_t *z, const struct schedule *s, const tz_t *tz, int64_t zone,
		      char *err, size_t errlen)
{
	int64_t ids[SCHED_PARTS_MAX * 2];
	struct sched_pool pools[SCHED_PARTS_MAX * 2];
	int n = schedule_playlists(s, ids, (int)(sizeof(ids) / sizeof(ids[0]))), np = 0;
	int status = 200;

	for (int i = 0; i < n && status == 200; i++) {
		char hex[17];
		int st = catalog_playlist_pool(z, ids[i], &pools[np]);

		catalog_id_str(ids[i], hex);
		if (st == 404) {
			snprintf(err, errlen, "no playlist %s", hex);
			status = 422;
		} else if (st != 200) {
			snprintf(err, errlen, "the playlists could not be read");
			status = 500;
		} else {
			np++;
		}
	}
	for (int a = 0; a < s->nann && status == 200; a++) {
		int64_t missing;
		char hex[17];
		int rc = catalog_tracks_missing(z, s->ann[a].tracks, s->ann[a].ntracks, &missing);

		if (rc > 0) {
			catalog_id_str(missing, hex);
			snprintf(err, errlen, "announcements[%d]: no track %s", a, hex);
			status = 422;
		} else if (rc < 0) {
			status = 500;
		}
	}
	if (status == 200) {
		struct sched_input in = {
			.s = s, .tz = tz, .zone = zone, .pools = pools, .npools = np};

		if (schedule_check(&in, err, errlen) < 0)
			status = 422;
	}
	for (int i = 0; i < np; i++)
		free((void *)pools[i].t);
	return status;
}

void api_zone_schedule(struct api_call *x)
{
	struct catalog_zone cur;
	struct schedule s;
	const tz_t *tz;
	struct zjob *j;
	buf_t b;
	int st;

	if (x->req->method != HTTP_PUT) {
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_schedule(x->al->zones, x->id, &b), &b, "no such zone");
		buf_free(&b);
		return;
	}
	if (!json_body(x))
		return;
	st = catalog_zone_get(x->al->zones, x->id, &cur);
	if (st != 200)
		return refuse(x, st, st == 404 ? "no such zone" : "internal error", NULL);
	j = job_new(x, OP_SCHEDULE);
	if (tz_get(cur.timezone, &tz, j->err, sizeof(j->err)) < 0) {
		catalog_zone_free(&cur);
		return refuse(x, 500, "the location's time zone cannot be read", j);
	}
	catalog_zone_free(&cur);
	st = schedule_parse(x->req->body.p, x->req->body.len, &s, j->err, sizeof(j->err));
	if (st < 0)
		return refuse(x, st == -EBADMSG ? 400 : 422, j->err, j);
	st = check_week(x->al->zones, &s, tz, x->id, j->err, sizeof(j->err));
	if (st == 200) {
		buf_init(&b, ANSWER_MAX);
		if (schedule_json(&s, &b) < 0 || buf_append(&b, "", 1) < 0) {
			buf_free(&b);
			st = 413;
			snprintf(j->err, sizeof(j->err), "the week is too large");
		} else {
			j->text = (char *)b.data;
		}
	}
	schedule_free(&s);
	if (st != 200)
		return refuse(x, st, j->err, j);
	submit(x, j);
}

/* ---- playlists ---- */

/* Parses a playlist body into j and checks its tracks exist: 200 or an
 * error status with j->err. */
static int playlist_body(struct api_call *x, struct zjob *j)
{
	int64_t *ids, missing;
	int n, st, rc;
	char hex[17];

	st = zones_body_playlist(x->req->body.p, x->req->body.len, &j->playlist, &ids, &n, &j->text,
				 &j->rules, j->err, sizeof(j->err));
	if (st != 200) {
		free(ids);
		return st;
	}
	rc = catalog_tracks_missing(x->al->zones, ids, n, &missing);
	free(ids);
	if (rc > 0) {
		catalog_id_str(missing, hex);
		snprintf(j->err, sizeof(j->err), "tracks: no track %s in the catalog", hex);
		return 422;
	}
	if (rc < 0) {
		snprintf(j->err, sizeof(j->err), "the catalog could not be read");
		return 500;
	}
	return 200;
}

void api_playlists(struct api_call *x)
{
	struct zjob *j;
	buf_t b;
	int st;

	if (x->req->method != HTTP_POST) {
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_playlists(x->al->zones, &b), &b, NULL);
		buf_free(&b);
		return;
	}
	if (!json_body(x))
		return;
	j = job_new(x, OP_PLAYLIST_PUT);
	j->status = 201;
	if ((st = playlist_body(x, j)) != 200)
		return refuse(x, st, j->err, j);
	submit(x, j);
}

void api_playlist_one(struct api_call *x)
{
	struct sched_pool pool;
	struct zjob *j;
	buf_t b;
	int st;

	switch (x->req->method) {
	case HTTP_DELETE:
		submit(x, job_new(x, OP_PLAYLIST_DELETE));
		return;
	case HTTP_PUT:
		if (!json_body(x))
			return;
		st = catalog_playlist_pool(x->al->zones, x->id, &pool);
		free((void *)pool.t);
		if (st != 200)
			return refuse(x, st, st == 404 ? "no such playlist" : "internal error",
				      NULL);
		j = job_new(x, OP_PLAYLIST_PUT);
		j->playlist.id = x->id;
		if ((st = playlist_body(x, j)) != 200)
			return refuse(x, st, j->err, j);
		submit(x, j);
		return;
	default:
		buf_init(&b, ANSWER_MAX);
		send_read(x, catalog_json_playlist(x->al->zones, x->id, &b), &b,
			  "no such playlist");
		buf_free(&b);
	}
}
