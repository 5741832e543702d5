/*
 * POST /api/v1/plays and GET /api/v1/reports/plays.
 *
 * A post is validated on the loop (plays_body_parse, then every distinct
 * track id looked up in this loop's catalog reader), then handed to the
 * play store's writer with the answer deferred (http/later.h). The writer
 * commits it together with whatever else is queued and calls back on its
 * own thread; the answer is posted to the connection's loop, and if the
 * connection died meanwhile, the context is just freed. So a 2xx is only
 * ever sent after the commit that made the batch durable returned.
 *
 * A report runs on the node's worker pool (loop/pool.h) as a slow job and
 * answers through the loop, like a post: it reads plays.db and the catalog
 * (or, in a cluster, PostgreSQL) with a connection of its own, in one
 * snapshot. Reports are rare operator
 * requests; a very large one (the census of a busy year) belongs to
 * `chorus report`, and the HTTP answer is capped at REPORT_MAX.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "http/later.h"
#include "plays/plays.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define REPORT_MAX ((size_t)60 << 20) /* under the server's 64 MiB output cap */

struct post {
	http_later_t *later;
	int rc, accepted, duplicates;
};

/* On the connection's loop, after the commit (or its failure); c NULL:
 * the client is gone. */
static void answer(void *arg, http_conn_t *c)
{
	struct post *p = arg;
	char body[96];
	int n;

	if (!c) {
		free(p);
		return;
	}
	if (p->rc < 0) {
		http_send_error(c, 503,
				p->rc == -ESHUTDOWN ? "the node is shutting down; retry"
						    : "plays could not be stored; retry");
	} else {
		n = snprintf(body, sizeof(body), "{\"accepted\":%d,\"duplicates\":%d}\n",
			     p->accepted, p->duplicates);
		http_send(c, p->accepted > 0 ? 201 : 200, JSON_TYPE, "Cache-Control: no-store\r\n",
			  body, (size_t)n);
	}
	free(p);
}

/* On the writer thread. */
static void committed(void *arg, int rc, int accepted, int duplicates)
{
	struct post *p = arg;

	p->rc = rc;
	p->accepted = accepted;
	p->duplicates = duplicates;
	http_later_post(p->later, answer, p);
}

static void send_422(http_conn_t *c, const char *message, const struct plays_errors *errs)
{
	buf_t b;
	json_t j;

	buf_init(&b, (size_t)1 << 20);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_obj_begin(&j);
	json_kint(&j, "status", 422);
	json_kstr(&j, "message", message);
	json_key(&j, "items");
	json_arr_begin(&j);
	for (size_t i = 0; i < errs->n; i++) {
		json_obj_begin(&j);
		json_kint(&j, "index", (int64_t)errs->items[i].index);
		if (errs->items[i].field[0])
			json_kstr(&j, "field", errs->items[i].field);
		else
			json_knull(&j, "field");
		json_kstr(&j, "message", errs->items[i].message);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (errs->dropped)
		json_kint(&j, "more_errors", (int64_t)errs->dropped);
	json_obj_end(&j);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		http_send_error(c, 422, message);
	else
		http_send(c, 422, JSON_TYPE, NULL, b.data, b.len);
	buf_free(&b);
}

/* "application/json", any case, optionally with parameters. */
static bool json_content_type(const struct http_request *req)
{
	const struct http_str *ct = http_header_get(req, "Content-Type");
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1, i;

	if (!ct || ct->len < n || strncasecmp(ct->p, want, n) != 0)
		return false;
	for (i = n; i < ct->len && (ct->p[i] == ' ' || ct->p[i] == '\t'); i++)
		;
	return i == ct->len || ct->p[i] == ';';
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* A play's length may pass its track's by a decoder's rounding and a
 * player's last buffer. */
#define DURATION_SLACK_MS 5000

/*
 * Adds "no such track" for every play whose track is not in the catalog,
 * and "longer than the track" for one whose ms_played passes the track's
 * duration. Each distinct id is looked up once. 200, or 500 on a catalog
 * error.
 */
static int check_tracks(catalog_reader_t *r, const struct plays_batch *b, struct plays_errors *errs)
{
	struct known {
		int64_t id, duration_ms; /* duration -1: no such track */
	} *ids = xmalloc(b->n * sizeof(*ids));
	size_t n = 0;
	int st = 200;

	for (size_t i = 0; i < b->n; i++)
		ids[i].id = b->items[i].track_id;
	qsort(ids, b->n, sizeof(*ids), cmp_i64); /* id is the first member */
	for (size_t i = 0; i < b->n; i++)
		if (i == 0 || ids[i].id != ids[i - 1].id)
			ids[n++] = ids[i];
	for (size_t i = 0; i < n && st == 200; i++) {
		struct catalog_stream info;
		int rc = catalog_stream_info(r, ids[i].id, &info);
		if (rc == 404)
			ids[i].duration_ms = -1;
		else if (rc == 200)
			ids[i].duration_ms = info.duration_ms;
		else
			st = 500;
		explicit_bzero(info.key, sizeof(info.key));
	}
	for (size_t i = 0; i < b->n && st == 200; i++) {
		const struct play *p = &b->items[i];
		const struct known *k = bsearch(&p->track_id, ids, n, sizeof(*ids), cmp_i64);
		char msg[96];

		if (k->duration_ms < 0) {
			plays_errors_add(errs, i, "track_id", "no such track");
		} else if (k->duration_ms > 0 &&
			   p->ms_played > k->duration_ms + DURATION_SLACK_MS) {
			snprintf(msg, sizeof(msg), "is longer than the track (%lld ms)",
				 (long long)k->duration_ms);
			plays_errors_add(errs, i, "ms_played", msg);
		}
	}
	free(ids);
	return st;
}

/* Whether a play's location (or zone) given is the key's: its id or its
 * name; the play then carries the name. */
static bool same_place(char **given, const char *id_hex, const char *name)
{
	if (strcmp(*given, id_hex) != 0 && strcasecmp(*given, name) != 0)
		return false;
	free(*given);
	*given = xstrdup(name);
	return true;
}

/*
 * Who posted the plays decides what they may say. A store key's plays are
 * its location's (and zone's, when it has one), by id or by name, and
 * carry the names: one left out is filled in, another one is refused as a
 * whole (403). Every event id is scoped by the principal ("<principal>/
 * <event id>"), so a device can neither pre-empt nor replay another
 * one's events. false after answering.
 */
static bool bind_to(http_conn_t *c, struct api_loop *al, const struct principal *who,
		    struct plays_batch *b)
{
	char location[CATALOG_LABEL_MAX + 1], zone[CATALOG_LABEL_MAX + 1];

	if (who->role == AUTH_STORE) {
		api_place_name(al, who->location, false, location, sizeof(location));
		api_place_name(al, who->zone, true, zone, sizeof(zone));
	}
	for (size_t i = 0; i < b->n && who->role == AUTH_STORE; i++) {
		struct play *p = &b->items[i];
		char msg[CATALOG_LABEL_MAX + 64];

		if (p->location && !same_place(&p->location, who->location, location)) {
			snprintf(msg, sizeof(msg), "this key posts plays for location %s only",
				 location);
			http_send_error(c, 403, msg);
			return false;
		}
		if (who->zone[0] && p->zone && !same_place(&p->zone, who->zone, zone)) {
			snprintf(msg, sizeof(msg), "this key posts plays for zone %s only", zone);
			http_send_error(c, 403, msg);
			return false;
		}
		if (!p->location)
			p->location = xstrdup(location);
		if (who->zone[0] && !p->zone)
			p->zone = xstrdup(zone);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct play *p = &b->items[i];
		size_t n = strlen(who->id) + 1 + strlen(p->event_id) + 1;
		char *scoped = xmalloc(n);

		snprintf(scoped, n, "%s/%s", who->id, p->event_id);
		free(p->event_id);
		p->event_id = scoped;
	}
	return true;
}

void api_plays_post(struct api_call *x)
{
	struct api *api = x->api;
	http_conn_t *c = x->c;
	const struct http_request *req = x->req;
	struct plays_batch batch = {0};
	struct plays_errors errs;
	struct post *p;
	char msg[256];
	int st, wait;

	if (!json_content_type(req)) {
		http_send_error(c, 415, "Content-Type must be application/json");
		return;
	}
	st = plays_body_parse(req->body.p, req->body.len, wall_ms(), &batch, &errs, msg,
			      sizeof(msg));
	if (st == 400) {
		http_send_error(c, 400, msg);
		return;
	}
	if (st == 422) {
		send_422(c, msg, &errs);
		plays_errors_free(&errs);
		return;
	}
	st = check_tracks(x->al->reader, &batch, &errs);
	if (st != 200 || errs.n) {
		if (st != 200) {
			http_send_error(c, 500, "catalog error");
		} else {
			size_t bad = 0;
			for (size_t i = 0; i < errs.n; i++)
				bad += i == 0 || errs.items[i].index != errs.items[i - 1].index;
			snprintf(msg, sizeof(msg),
				 "%zu of %zu plays are invalid; nothing was stored", bad, batch.n);
			send_422(c, msg, &errs);
		}
		plays_errors_free(&errs);
		plays_batch_free(&batch);
		return;
	}
	plays_errors_free(&errs);
	if (!bind_to(c, x->al, &x->who, &batch)) {
		plays_batch_free(&batch);
		return;
	}
	/* The quota counts plays, not requests: a batch is taken whole or
	 * refused whole. Admins have none: they make keys at will. */
	if (x->who.role != AUTH_ADMIN && batch.n > (size_t)api->plays_per_minute) {
		char why[160];
		snprintf(why, sizeof(why),
			 "a batch of %zu plays is more than this principal may post in a minute"
			 " (%d); send smaller batches",
			 batch.n, api->plays_per_minute);
		http_send_error(c, 413, why);
		plays_batch_free(&batch);
		return;
	}
	wait = x->who.role == AUTH_ADMIN
		       ? 0
		       : auth_limit_take_n(api->plays_quota, x->who.id, strlen(x->who.id),
					   (double)batch.n, mono_ms());
	if (wait > 0) {
		char hdr[64];
		static const char body[] = "{\"error\":{\"status\":429,\"message\":"
					   "\"this principal's play quota is used up; retry"
					   " later\"}}\n";
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", wait);
		http_send(c, 429, JSON_TYPE, hdr, body, sizeof(body) - 1);
		plays_batch_free(&batch);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->later = http_later(c);
	plays_submit(api->plays, &batch, committed, p);
}

/* ---- reports ---- */

static int buf_sink(void *ud, const void *data, size_t n)
{
	return buf_append(ud, data, n) < 0 ? -EFBIG : 0;
}

/* A query parameter: 1 present (decoded into out), 0 absent, -1 bad. */
static int param(const struct http_request *req, const char *name, char *out, size_t outlen)
{
	if (http_query_param(req->query, name, out, outlen) >= 0)
		return 1;
	return http_query_has(req->query, name) ? -1 : 0;
}

/* A '+' before the offset that arrived unencoded decodes as a space:
 * "2024-05-01T12:00:00 02:00" is read as "+02:00". */
static void restore_plus(char *t)
{
	char *sp = strrchr(t, ' ');

	if (sp && sp - t >= 19 && strlen(sp) == 6)
		*sp = '+';
}

/*
 * A report runs on a worker, the answer deferred: it may scan a year of
 * plays, or wait for PostgreSQL, and a loop thread must do neither. The
 * pool brings the job back to the connection's loop.
 */
struct report_job {
	struct api *api;
	http_later_t *later;
	struct plays_query q;
	buf_t b;
	int rc;
	char err[512];
};

/* On the connection's loop; c NULL: the client is gone. */
static void report_answer(void *arg, http_conn_t *c)
{
	struct report_job *job = arg;
	struct api *api = job->api;

	if (!c)
		;
	else if (job->rc == 0)
		http_send(c, 200,
			  job->q.format == PLAYS_FORMAT_CSV
				  ? "text/csv; charset=utf-8; header=present"
				  : JSON_TYPE,
			  "Cache-Control: no-store\r\n", job->b.data, job->b.len);
	else if (job->rc == -EFBIG)
		http_send_error(c, 500, "report too large for HTTP; use chorus report");
	else if (job->rc == -ECANCELED || job->rc == -ESHUTDOWN)
		http_send_error(c, 503, "the node is shutting down; retry");
	else if (job->rc == -EAGAIN)
		http_send_error(c, 503, "too many reports in progress; retry");
	else if (api->db)
		http_send_error(c, 503, "the plays database is unreachable; retry");
	else
		http_send_error(c, 500, "report failed");
	buf_free(&job->b);
	free(job);
}

/* On a worker. */
static void report_work(void *arg)
{
	struct report_job *job = arg;

	job->rc = plays_report(job->api->data_dir, job->api->db, &job->q, buf_sink, &job->b,
			       job->err, sizeof(job->err));
	if (job->rc < 0 && job->rc != -EFBIG)
		log_error("report: %s", job->err);
}

/* On the connection's loop: the report ran, or the pool stopped first. */
static void report_done(void *arg, int status)
{
	struct report_job *job = arg;

	if (status < 0)
		job->rc = status;
	report_answer(job, http_later_end(job->later));
}

void api_plays_report(struct api_call *x)
{
	struct api *api = x->api;
	http_conn_t *c = x->c;
	const struct http_request *req = x->req;
	static const char *const names[5] = {"from", "to", "group", "format", "location"};
	char v[5][PLAYS_TEXT_MAX + 1], err[256];
	const char *arg[5];
	struct plays_query q;
	struct report_job *job;
	int rc;

	for (int i = 0; i < 5; i++) {
		rc = param(req, names[i], v[i], sizeof(v[i]));
		if (rc < 0) {
			snprintf(err, sizeof(err), "%s: bad value", names[i]);
			http_send_error(c, 400, err);
			return;
		}
		arg[i] = rc ? v[i] : NULL;
	}
	for (int i = 0; i < 2; i++)
		if (arg[i])
			restore_plus(v[i]);
	if (plays_query_parse(arg[0], arg[1], arg[2], arg[3], &q, err, sizeof(err)) < 0) {
		http_send_error(c, 400, err);
		return;
	}
	/* A store key sees its own location's figures, whatever it asks. */
	if (x->who.role == AUTH_STORE) {
		char name[CATALOG_LABEL_MAX + 1];

		api_place_name(x->al, x->who.location, false, name, sizeof(name));
		if (arg[4] && strcmp(arg[4], x->who.location) != 0 &&
		    strcasecmp(arg[4], name) != 0) {
			http_send_error(c, 403, "a store key reads its own location's plays only");
			return;
		}
		snprintf(v[4], sizeof(v[4]), "%s", name);
		arg[4] = v[4];
	}
	if (arg[4])
		snprintf(q.location, sizeof(q.location), "%s", arg[4]);
	job = xcalloc(1, sizeof(*job));
	job->api = api;
	job->q = q;
	buf_init(&job->b, REPORT_MAX);
	job->later = http_later(c);
	rc = pool_submit(api->pool, http_conn_loop(c), POOL_SLOW, report_work, report_done, job);
	if (rc < 0) {
		job->rc = rc; /* -EAGAIN: the queue is full; -ESHUTDOWN */
		report_answer(job, http_later_end(job->later));
	}
}
