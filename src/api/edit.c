/*
 * Editing the catalog: PATCH /api/v1/tracks/{id}, /albums/{id} and
 * /artists/{id}, PUT /api/v1/albums/{id}/cover, DELETE /api/v1/tracks/{id}
 * and /albums/{id}, for editors and admins (the router's rule).
 *
 * The loop thread checks what it can without blocking: the body
 * (api/edit_body.c: 400, 422 with every field's problem) or the picture
 * (util/image.h: 413, 415, 422). The write is one job on the worker pool
 * against the source of truth (store/edit.c, with its audit row), never
 * on a loop: SQLite's write lock or PostgreSQL may take milliseconds or,
 * during a failover, seconds. The answer is the object as this node's
 * catalog shows it afterwards, so the job waits (a cluster node) until
 * the node's read model has applied the commit's change number.
 *
 * A deletion's blobs leave the caches and the origin off the request
 * path: on a single node the job drops them from this node's cache; in a
 * cluster every node, this one included, drops them when its read model
 * applies the deletion (catalog/replica.h's blob hook, api_blob_gone).
 * The job then sweeps the garbage ledger (store_collect_garbage), which
 * removes the chunks from the origin before it answers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "api/edit_body.h"
#include "catalog/replica.h"
#include "http/later.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/image.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define ANSWER_MAX ((size_t)4 << 20)
/* How long an answer waits for this node's read model to show the
 * change (it takes milliseconds; past this the answer says what the
 * model shows then). */
#define APPLIED_WAIT_MS 2000

enum edit_op { OP_EDIT, OP_DELETE, OP_COVER };

struct edit_job {
	struct api *api;
	http_later_t *later;
	enum edit_op op;
	enum edit_kind kind;
	int64_t id;
	char actor[sizeof(((struct principal *)0)->actor)];
	/* Who the answer's stream URLs are signed for, as the router signs
	 * catalog answers ("" for none). */
	char who_id[ACCESS_ID_MAX];
	int64_t url_expires;
	struct store_edit e;
	char *detail;
	void *image; /* OP_COVER: the body */
	size_t image_len;
	const char *mime; /* OP_COVER: the Content-Type given */
	struct image_info info;
	struct store_change out;
	int rc;
};

static void job_free(struct edit_job *job)
{
	store_change_free(&job->out);
	free(job->detail);
	free(job->image);
	free(job);
}

store_t *api_catalog_store(struct api *api)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	store_t *s;
	char err[512];

	pthread_mutex_lock(&lock);
	if (!api->store && store_open(api->data_dir, api->db, &api->store, err, sizeof(err)) < 0)
		log_warn("api: the catalog cannot be changed now: %s", err);
	s = api->store;
	pthread_mutex_unlock(&lock);
	return s;
}

/* ---- the blobs a deletion leaves ---- */

struct drop_job {
	cache_t *cache;
	char blob[BLOB_ID_LEN + 1];
	uint32_t chunks;
};

static void drop_work(void *arg)
{
	struct drop_job *d = arg;
	uint32_t n = cache_drop_blob(d->cache, d->blob, d->chunks);

	if (n)
		log_debug("cache: dropped %u chunks of blob %s, gone from the catalog", n, d->blob);
}

static void drop_done(void *arg, int status)
{
	free(arg);
}

void api_blob_gone(void *ud, const char *blob, uint32_t chunks)
{
	struct api *api = ud;
	struct drop_job *d = xcalloc(1, sizeof(*d));

	d->cache = api->cache;
	snprintf(d->blob, sizeof(d->blob), "%s", blob);
	d->chunks = chunks;
	/* A full or stopped pool: this is the replica's thread, not a
	 * request's, so the files may go from here. */
	if (pool_submit(api->pool, NULL, POOL_FAST, drop_work, drop_done, d) < 0) {
		drop_work(d);
		free(d);
	}
}

/* ---- the job ---- */

/* Until this node's read model has applied change seq (a cluster node),
 * or APPLIED_WAIT_MS. */
void api_wait_applied(struct api *api, int64_t seq)
{
	int64_t deadline = mono_ms() + APPLIED_WAIT_MS;

	if (!api->replica || seq <= 0)
		return;
	for (;;) {
		struct replica_status st;

		replica_status(api->replica, &st);
		if (st.last_seq >= seq)
			return;
		if (mono_ms() >= deadline) {
			log_warn("api: the read model has not applied change %lld after %d ms",
				 (long long)seq, APPLIED_WAIT_MS);
			return;
		}
		usleep(2000);
	}
}

/* On a worker. */
static void edit_work(void *arg)
{
	struct edit_job *job = arg;
	struct api *api = job->api;
	store_t *s = api_catalog_store(api);

	if (!s) {
		job->rc = -EIO;
		return;
	}
	switch (job->op) {
	case OP_EDIT:
		job->rc = job->kind == EDIT_TRACK
				  ? store_track_edit(s, job->actor, job->id, &job->e, job->detail,
						     &job->out)
			  : job->kind == EDIT_ALBUM
				  ? store_album_edit(s, job->actor, job->id, &job->e, job->detail,
						     &job->out)
				  : store_artist_edit(s, job->actor, job->id, &job->e, job->detail,
						      &job->out);
		break;
	case OP_COVER:
		job->rc = store_cover_put(s, job->actor, job->id, job->info.mime, job->image,
					  job->image_len, &job->out);
		break;
	case OP_DELETE:
		job->rc = job->kind == EDIT_TRACK
				  ? store_track_delete(s, job->actor, job->id, &job->out)
				  : store_album_delete(s, job->actor, job->id, &job->out);
		break;
	}
	if (job->rc < 0)
		return;
	api_wait_applied(api, job->out.seq);
	if (job->op != OP_DELETE)
		return;
	/* A single node has no read model to tell it: its own cache now. */
	for (size_t i = 0; !api->replica && i < job->out.nblobs; i++)
		cache_drop_blob(api->cache, job->out.blobs[i].blob, job->out.blobs[i].chunks);
	if (api->origin && job->out.nblobs && store_collect_garbage(s, api->origin, false) < 0)
		log_warn("api: a deleted track's chunks are still in the origin; the next"
			 " deletion or ingest removes them");
}

static void answer_error(struct edit_job *job, http_conn_t *c)
{
	char msg[96];

	switch (job->rc) {
	case -ENOENT:
		snprintf(msg, sizeof(msg), "no such %s", edit_kind_name(job->kind));
		http_send_error(c, 404, msg);
		break;
	case -EAGAIN:
		http_send_error(c, 503, "the node is busy; retry");
		break;
	case -ECANCELED:
	case -ESHUTDOWN:
		http_send_error(c, 503, "the node is shutting down; retry");
		break;
	default:
		http_send_error(c, job->api->db ? 503 : 500,
				job->api->db ? "the catalog database is unreachable; retry"
					     : "the change could not be stored");
	}
}

/* On the connection's loop: the object as this node's catalog shows it. */
static void edit_answer(struct edit_job *job, http_conn_t *c)
{
	struct api_loop *al;
	buf_t b;
	int st;

	if (!c)
		return;
	if (job->rc < 0) {
		answer_error(job, c);
		return;
	}
	al = http_conn_loop_data(c);
	buf_init(&b, ANSWER_MAX);
	if (job->op == OP_DELETE) {
		json_t j;
		char hex[17];

		catalog_id_str(job->id, hex);
		json_init(&j, &b);
		json_obj_begin(&j);
		json_kstr(&j, "deleted", edit_kind_name(job->kind));
		json_kstr(&j, "id", hex);
		json_kint(&j, "tracks", job->out.tracks);
		json_obj_end(&j);
		st = json_failed(&j) ? 500 : 200;
	} else {
		struct catalog_signer signer = {job->api->url_key, job->who_id, job->url_expires};

		if (job->who_id[0])
			catalog_reader_sign(al->reader, &signer);
		if (job->kind == EDIT_TRACK)
			st = catalog_json_track(al->reader, job->out.id, &b);
		else if (job->kind == EDIT_ALBUM)
			st = catalog_json_album(al->reader, job->out.id, &b);
		else
			st = catalog_json_artist(al->reader, job->out.id, &b);
		catalog_reader_sign(al->reader, NULL);
	}
	if (st == 200 && buf_append(&b, "\n", 1) == 0)
		http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	else if (st == 404) /* deleted again meanwhile */
		http_send_error(c, 404, "it was deleted meanwhile");
	else
		http_send_error(c, 500, "internal error");
	buf_free(&b);
}

static void edit_done(void *arg, int status)
{
	struct edit_job *job = arg;

	if (status < 0)
		job->rc = status;
	edit_answer(job, http_later_end(job->later));
	job_free(job);
}

static struct edit_job *job_new(struct api_call *x, enum edit_op op, enum edit_kind kind)
{
	struct edit_job *job = xcalloc(1, sizeof(*job));

	job->api = x->api;
	job->op = op;
	job->kind = kind;
	job->id = x->id;
	snprintf(job->actor, sizeof(job->actor), "%s", x->who.actor);
	if (x->signer.principal) {
		snprintf(job->who_id, sizeof(job->who_id), "%s", x->signer.principal);
		job->url_expires = x->signer.expires_s;
	}
	return job;
}

static void submit_on(http_conn_t *c, struct edit_job *job)
{
	int rc;

	job->later = http_later(c);
	rc = pool_submit(job->api->pool, http_conn_loop(c), POOL_SLOW, edit_work, edit_done, job);
	if (rc < 0) {
		job->rc = rc;
		edit_answer(job, http_later_end(job->later));
		job_free(job);
	}
}

static void submit(struct api_call *x, struct edit_job *job)
{
	submit_on(x->c, job);
}

/* ---- the handlers ---- */

bool api_content_type_is(const struct http_request *req, const char *want)
{
	const struct http_str *ct = http_header_get(req, "Content-Type");
	size_t n = strlen(want), i;

	if (!ct || ct->len < n || strncasecmp(ct->p, want, n) != 0)
		return false;
	for (i = n; i < ct->len && (ct->p[i] == ' ' || ct->p[i] == '\t'); i++)
		;
	return i == ct->len || ct->p[i] == ';';
}

/* 422 {"error":{"status":422,"message":M,"fields":{"year":"...",...}}} */
static void send_422(http_conn_t *c, const char *message, const struct edit_errors *errs)
{
	buf_t b;
	json_t j;

	buf_init(&b, 64 << 10);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_obj_begin(&j);
	json_kint(&j, "status", 422);
	json_kstr(&j, "message", message);
	json_key(&j, "fields");
	json_obj_begin(&j);
	for (size_t i = 0; i < errs->n; i++)
		json_kstr(&j, errs->items[i].field, errs->items[i].message);
	json_obj_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		http_send_error(c, 422, message);
	else
		http_send(c, 422, JSON_TYPE, NULL, b.data, b.len);
	buf_free(&b);
}

static void patch(struct api_call *x, enum edit_kind kind)
{
	struct edit_job *job;
	struct edit_errors errs;
	char msg[256];
	int st;

	if (!api_content_type_is(x->req, "application/json")) {
		http_send_error(x->c, 415, "Content-Type must be application/json");
		return;
	}
	job = job_new(x, OP_EDIT, kind);
	st = edit_body_parse(x->req->body.p, x->req->body.len, kind, &job->e, &errs, msg,
			     sizeof(msg));
	if (st != 200) {
		if (st == 422 && errs.n)
			send_422(x->c, msg, &errs);
		else
			http_send_error(x->c, st, msg);
		job_free(job);
		return;
	}
	job->detail = edit_body_detail(&job->e, kind);
	submit(x, job);
}

void api_track_edit(struct api_call *x)
{
	patch(x, EDIT_TRACK);
}

void api_album_edit(struct api_call *x)
{
	patch(x, EDIT_ALBUM);
}

void api_artist_edit(struct api_call *x)
{
	patch(x, EDIT_ARTIST);
}

void api_track_delete(struct api_call *x)
{
	submit(x, job_new(x, OP_DELETE, EDIT_TRACK));
}

void api_album_delete(struct api_call *x)
{
	submit(x, job_new(x, OP_DELETE, EDIT_ALBUM));
}

/* ---- covers: the body taken as it arrives ---- */

/* The picture's bytes, gathered into job->image (Content-Length of them,
 * at most API_COVER_MAX, known from the head). */
struct cover_body {
	struct edit_job *job;
	http_conn_t *c;
	size_t cap;
};

static size_t cover_data(void *ctx, const char *p, size_t n)
{
	struct cover_body *cb = ctx;
	struct edit_job *job = cb->job;
	size_t take = n < cb->cap - job->image_len ? n : cb->cap - job->image_len;

	memcpy((char *)job->image + job->image_len, p, take);
	job->image_len += take;
	return n; /* nothing past Content-Length reaches a sink */
}

static void cover_end(void *ctx, bool complete)
{
	struct cover_body *cb = ctx;
	struct edit_job *job = cb->job;
	http_conn_t *c = cb->c;
	const char *why = NULL;

	free(cb);
	if (!complete) {
		job_free(job);
		return;
	}
	if (image_probe(job->image, job->image_len, &job->info, &why) < 0) {
		http_send_error(c, 422, why);
		job_free(job);
		return;
	}
	if (strcmp(job->info.mime, job->mime) != 0) {
		http_send_error(c, 422,
				strcmp(job->info.mime, "image/png") == 0
					? "the body is a PNG image, not image/jpeg"
					: "the body is a JPEG image, not image/png");
		job_free(job);
		return;
	}
	submit_on(c, job);
}

static const struct http_sink_ops cover_sink = {cover_data, cover_end};

bool api_cover_streams(const struct http_request *req)
{
	static const char prefix[] = "/api/v1/albums/", suffix[] = "/cover";
	const struct http_str *p = &req->path;

	return req->method == HTTP_PUT && p->len > sizeof(prefix) - 1 + sizeof(suffix) - 1 &&
	       memcmp(p->p, prefix, sizeof(prefix) - 1) == 0 &&
	       memcmp(p->p + p->len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0;
}

/* PUT /api/v1/albums/{id}/cover: the picture's bytes, image/jpeg or
 * image/png, at most API_COVER_MAX, judged by its head before a byte of
 * the body is read (api_cover_streams made the server hand it over so). */
void api_cover_put(struct api_call *x)
{
	const struct http_request *req = x->req;
	struct edit_job *job;
	struct cover_body *cb;
	const char *mime = api_content_type_is(req, "image/jpeg")  ? "image/jpeg"
			   : api_content_type_is(req, "image/png") ? "image/png"
								   : NULL;

	if (req->content_length > API_COVER_MAX) {
		http_send_error(x->c, 413, "a cover is at most 10 MiB");
		return;
	}
	if (!mime) {
		http_send_error(x->c, 415, "Content-Type must be image/jpeg or image/png");
		return;
	}
	if (!req->body_streamed) { /* no body at all */
		http_send_error(x->c, 422, "the body is empty: send the picture");
		return;
	}
	job = job_new(x, OP_COVER, EDIT_ALBUM);
	job->mime = mime;
	job->image = xmalloc(req->content_length);
	cb = xcalloc(1, sizeof(*cb));
	cb->job = job;
	cb->c = x->c;
	cb->cap = req->content_length;
	http_take_body(x->c, &cover_sink, cb);
}
