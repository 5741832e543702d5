/*
 * /api/v1/uploads: tus 1.0.0 (core, creation, creation-with-upload,
 * termination, checksum with sha256, expiration) over uploads/uploads.h.
 *
 * The loop never blocks: every question to the source of truth and every
 * part written to the origin is a pool job. A PATCH is checked first (the
 * offset the client names must be the one committed), and only then is
 * its body taken (http_take_body): its bytes fill a part buffer, a full
 * part goes to the pool (sealed, written, committed) while the reading
 * pauses, and the reading goes on when it is durable. So the offset a
 * HEAD answers on any node never runs ahead of bytes that are in the
 * origin, and a node killed mid-PATCH loses only the part in flight; the
 * client's next HEAD says where to go on. A PATCH with Upload-Checksum
 * commits its parts only once the whole body's digest matched (460
 * otherwise, and its parts are removed).
 *
 * The connection may close while a part is in the pool: the sink's end
 * says so, and the job's done (on the same loop) then commits what it
 * has (without a checksum the bytes received are kept, as tus asks) and
 * frees the context instead of answering.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "crypto/seal.h"
#include "http/later.h"
#include "uploads/tus.h"
#include "uploads/uploads.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define OCTETS "application/offset+octet-stream"
#define TUS "Tus-Resumable: 1.0.0\r\n"
#define LIST_MAX 200

/* ---- headers ---- */

/* An unsigned decimal header: 0, or -1 when absent or malformed. */
static int header_u64(const struct http_request *req, const char *name, uint64_t *out)
{
	const struct http_str *h = http_header_get(req, name);
	uint64_t v = 0;

	if (!h || h->len == 0 || h->len > 19)
		return -1;
	for (size_t i = 0; i < h->len; i++) {
		if (h->p[i] < '0' || h->p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(h->p[i] - '0');
	}
	*out = v;
	return 0;
}

static void http_date(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* An error in tus's terms: the JSON of http_send_error, with
 * Tus-Resumable (and extra header lines, or NULL). */
static void tus_error_with(http_conn_t *c, int status, const char *extra, const char *message)
{
	char hdr[128];

	snprintf(hdr, sizeof(hdr), TUS "%s", extra ? extra : "");
	http_send_error_with(c, status, hdr, message);
}

static void tus_error(http_conn_t *c, int status, const char *message)
{
	tus_error_with(c, status, NULL, message);
}

/* Every tus request but OPTIONS names the version; false after a 412. */
static bool tus_version_ok(struct api_call *x)
{
	const struct http_str *v = http_header_get(x->req, "Tus-Resumable");

	if (v && http_str_eq(*v, "1.0.0"))
		return true;
	tus_error_with(x->c, 412, "Tus-Version: 1.0.0\r\n", "Tus-Resumable: 1.0.0 is required");
	return false;
}

/* The path's upload id: 32 lower-case hex digits. */
static bool id_ok(struct http_str s)
{
	if (s.len != UPLOAD_ID_LEN)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
			return false;
	return true;
}

/* ---- JSON of an upload ---- */

static void upload_json(json_t *j, const struct upload_row *r)
{
	json_obj_begin(j);
	json_kstr(j, "id", r->id);
	json_kstr(j, "filename", r->filename);
	json_kstr(j, "state", r->state);
	json_kint(j, "offset", (int64_t)r->received);
	json_kint(j, "length", (int64_t)r->length);
	json_kstr(j, "owner", r->owner);
	json_kint(j, "created_at", r->created_at);
	json_kint(j, "updated_at", r->updated_at);
	if (strcmp(r->state, "receiving") == 0)
		json_kint(j, "expires_at", r->expires_at);
	if (r->node[0])
		json_kstr(j, "node", r->node);
	json_key(j, "track_ids");
	json_arr_begin(j);
	for (const char *p = r->track_ids; *p;) {
		size_t n = strcspn(p, " ");
		char id[32];
		snprintf(id, sizeof(id), "%.*s", (int)(n < sizeof(id) - 1 ? n : sizeof(id) - 1), p);
		json_str(j, id);
		p += n;
		while (*p == ' ')
			p++;
	}
	json_arr_end(j);
	if (r->error[0])
		json_kstr(j, "error", r->error);
	json_obj_end(j);
}

/* ---- jobs that only ask (HEAD, status, list, create, delete) ---- */

enum ask { ASK_HEAD, ASK_STATUS, ASK_LIST, ASK_CREATE, ASK_DELETE, ASK_PATCH };

struct patch {
	struct api *api;
	loop_t *loop;        /* the connection's: where the jobs come back */
	http_conn_t *c;      /* while the body arrives (gone: NULL) */
	http_later_t *later; /* after it, until answered */
	char id[UPLOAD_ID_LEN + 1];
	uint64_t offset; /* the client's Upload-Offset */
	uint64_t length; /* the upload's */
	uint64_t body;   /* this request's body */
	/* Two part buffers: one fills from the socket while the other is
	 * in the pool, so reading goes on while a part is stored. */
	unsigned char *buf[2];
	size_t cap;
	int fill;                     /* the buffer filling */
	size_t len;                   /* its bytes */
	uint64_t pos;                 /* where they go in the upload */
	const unsigned char *job_buf; /* the part in the pool */
	size_t job_len;
	uint64_t job_pos;
	/* checksum: parts held uncommitted until the digest matched */
	EVP_MD_CTX *md;
	unsigned char want[32];
	struct upload_part *held;
	size_t nheld;
	/* the job in the pool, and what it brought back */
	bool busy, ended, complete_body, gone;
	bool job_final; /* the job in the pool is the request's last */
	bool created;   /* creation-with-upload: the answer is a 201 */
	struct upload_part part;
	int rc;
	bool commit_stale, upload_complete;
	uint64_t received;
	int64_t expires_at;
	char err[256];
};

struct ask_job {
	struct api *api;
	http_later_t *later;
	enum ask what;
	bool head; /* a HEAD: no body */
	char id[UPLOAD_ID_LEN + 1];
	char owner[UPLOAD_OWNER_MAX + 1];
	bool all; /* the list: everyone's */
	int limit;
	struct upload_row row;
	int rc;
	buf_t out;           /* ASK_LIST's JSON */
	struct patch *patch; /* ASK_PATCH, ASK_CREATE with a body: goes on after */
	uint64_t offset;     /* ASK_PATCH without a body: the client's */
};

static void patch_begin(struct patch *p, http_conn_t *c, const struct upload_row *row);
static void patch_free(struct patch *p);

static int list_one(void *ud, const struct upload_row *r)
{
	json_t *j = ud;

	upload_json(j, r);
	return 0;
}

static void ask_work(void *arg)
{
	struct ask_job *a = arg;
	uploads_t *u = a->api->uploads;
	upload_store_t *s = uploads_store(u);

	switch (a->what) {
	case ASK_CREATE:
		a->rc = upload_store_create(s, &a->row, uploads_config(u)->max_unfinished);
		break;
	case ASK_LIST: {
		json_t j;
		buf_init(&a->out, (size_t)4 << 20);
		json_init(&j, &a->out);
		json_obj_begin(&j);
		json_key(&j, "uploads");
		json_arr_begin(&j);
		a->rc = upload_store_list(s, a->all ? NULL : a->owner, a->limit, list_one, &j);
		json_arr_end(&j);
		json_obj_end(&j);
		if (json_failed(&j))
			a->rc = -EIO;
		break;
	}
	case ASK_DELETE:
		a->rc = upload_store_get(s, a->id, &a->row);
		if (a->rc == 0 &&
		    (strcmp(a->row.state, "queued") == 0 || strcmp(a->row.state, "ingesting") == 0))
			a->rc = -EBUSY;
		else if (a->rc == 0)
			a->rc = uploads_remove(u, a->id);
		break;
	default:
		a->rc = upload_store_get(s, a->id, &a->row);
		break;
	}
}

static void expires_header(const struct upload_row *r, char *out, size_t len)
{
	char date[64];

	out[0] = '\0';
	if (strcmp(r->state, "receiving") != 0)
		return;
	http_date(r->expires_at, date, sizeof(date));
	snprintf(out, len, "Upload-Expires: %s\r\n", date);
}

static void ask_done(void *arg, int status)
{
	struct ask_job *a = arg;
	http_conn_t *c = http_later_end(a->later);
	char hdr[UPLOAD_METADATA_MAX + 512], exp[96];

	if (!c)
		goto out;
	if (status < 0) {
		tus_error(c, 503, "the node is stopping");
		goto out;
	}
	if (a->rc == -ENOENT) {
		tus_error(c, 404, "no such upload");
		goto out;
	}
	if (a->rc == -EDQUOT) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "too many unfinished uploads (%d): finish or delete some first",
			 uploads_config(a->api->uploads)->max_unfinished);
		tus_error(c, 429, msg);
		goto out;
	}
	if (a->rc == -EBUSY) {
		tus_error(c, 409, "the upload is being ingested; delete it once it is done");
		goto out;
	}
	if (a->rc < 0) {
		tus_error(c, 503, "the catalog's database is not available; retry");
		goto out;
	}
	expires_header(&a->row, exp, sizeof(exp));
	switch (a->what) {
	case ASK_HEAD:
	case ASK_STATUS: {
		buf_t b;
		json_t j;

		snprintf(hdr, sizeof(hdr),
			 TUS "Upload-Offset: %llu\r\nUpload-Length: %llu\r\n%s%s%s%s"
			     "Cache-Control: no-store\r\n",
			 (unsigned long long)a->row.received, (unsigned long long)a->row.length,
			 exp, a->row.metadata[0] ? "Upload-Metadata: " : "", a->row.metadata,
			 a->row.metadata[0] ? "\r\n" : "");
		if (a->head) {
			http_send(c, 200, NULL, hdr, NULL, 0);
			break;
		}
		buf_init(&b, 64 << 10);
		json_init(&j, &b);
		upload_json(&j, &a->row);
		if (json_failed(&j) || buf_append(&b, "\n", 1) < 0) {
			tus_error(c, 500, "the upload's record does not fit an answer");
			buf_free(&b);
			break;
		}
		http_send(c, 200, JSON_TYPE, hdr, b.data, b.len);
		buf_free(&b);
		break;
	}
	case ASK_LIST:
		if (buf_append(&a->out, "\n", 1) < 0) {
			http_send_error(c, 500, "the list does not fit an answer");
			break;
		}
		http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", a->out.data,
			  a->out.len);
		break;
	case ASK_DELETE:
		http_send(c, 204, NULL, TUS, NULL, 0);
		break;
	case ASK_CREATE:
		snprintf(hdr, sizeof(hdr), TUS "Location: /api/v1/uploads/%s\r\n%s", a->row.id,
			 exp);
		if (a->patch) {
			/* creation-with-upload: the body is the first PATCH. */
			struct patch *p = a->patch;
			a->patch = NULL;
			p->created = true;
			patch_begin(p, c, &a->row);
			break;
		}
		http_send(c, 201, NULL, hdr, NULL, 0);
		break;
	case ASK_PATCH: {
		struct patch *p = a->patch;
		char msg[160];

		if (p) {
			a->patch = NULL;
			patch_begin(p, c, &a->row);
			break;
		}
		/* A PATCH of no bytes: only its offset to check. */
		if (a->offset != a->row.received) {
			snprintf(
				msg, sizeof(msg), "Upload-Offset is %llu but the upload is at %llu",
				(unsigned long long)a->offset, (unsigned long long)a->row.received);
			tus_error(c, 409, msg);
			break;
		}
		snprintf(hdr, sizeof(hdr), TUS "Upload-Offset: %llu\r\n%s",
			 (unsigned long long)a->row.received, exp);
		http_send(c, 204, NULL, hdr, NULL, 0);
		break;
	}
	}
out:
	if (a->patch)
		patch_free(a->patch);
	buf_free(&a->out);
	free(a);
}

static void ask(struct api_call *x, struct ask_job *a)
{
	a->api = x->api;
	a->later = http_later(x->c);
	buf_init(&a->out, 0);
	/* Slow: with PostgreSQL down a question waits for it (up to a
	 * minute), and must not hold the workers fast jobs need. */
	if (pool_submit(x->api->pool, http_conn_loop(x->c), POOL_SLOW, ask_work, ask_done, a) < 0) {
		http_conn_t *c = http_later_end(a->later);
		if (a->patch)
			patch_free(a->patch);
		free(a);
		http_send_error(c, 503, "the node is busy; retry");
	}
}

static struct ask_job *ask_new(struct api_call *x, enum ask what)
{
	struct ask_job *a = xcalloc(1, sizeof(*a));

	a->what = what;
	a->head = x->req->method == HTTP_HEAD;
	if (x->name.len == UPLOAD_ID_LEN)
		memcpy(a->id, x->name.p, UPLOAD_ID_LEN);
	return a;
}

/* ---- PATCH: the body into parts ---- */

static const struct http_sink_ops patch_sink;

static void patch_free(struct patch *p)
{
	if (p->md)
		EVP_MD_CTX_free(p->md);
	free(p->held);
	free(p->buf[0]);
	free(p->buf[1]);
	free(p);
}

static void commit(struct patch *p, const struct upload_part *parts, size_t n)
{
	uploads_t *u = p->api->uploads;
	bool complete = false;

	p->expires_at = wall_ms() + uploads_config(u)->expire_ms;
	p->rc = upload_store_commit(uploads_store(u), p->id, parts, n, p->expires_at, &p->received,
				    &complete);
	p->upload_complete = complete;
	if (p->rc == 0) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < n; i++)
			bytes += parts[i].len;
		uploads_count_commit(u, n, bytes);
	}
	if (p->rc == -ESTALE) {
		p->commit_stale = true;
		uploads_drop_parts(u, parts, n);
	} else if (p->rc < 0) {
		snprintf(p->err, sizeof(p->err),
			 "the catalog cannot commit the part (see the log)");
	}
}

/*
 * The pool's half: the job's bytes as a part (unless empty), then,
 * without a checksum, its commit (parts are committed in order: one job
 * at a time); with one, at the body's end, the digest's check
 * and the commit of every part held; or their removal.
 */
static void part_work(void *arg)
{
	struct patch *p = arg;
	uploads_t *u = p->api->uploads;
	bool final = p->job_final;

	p->rc = 0;
	p->commit_stale = false;
	if (p->job_len) {
		p->rc = uploads_put_part(u, p->id, p->job_pos, p->job_buf, p->job_len, &p->part,
					 p->err, sizeof(p->err));
		if (p->rc < 0)
			return;
		if (!p->md) {
			commit(p, &p->part, 1);
			return;
		}
		p->held = xrealloc(p->held, (p->nheld + 1) * sizeof(*p->held));
		p->held[p->nheld++] = p->part;
	}
	if (!p->md || !final)
		return;
	if (p->gone || !p->complete_body) {
		uploads_drop_parts(u, p->held, p->nheld); /* unverified: not kept */
		p->nheld = 0;
		return;
	}
	unsigned char got[EVP_MAX_MD_SIZE];
	unsigned int gl = 0;
	EVP_DigestFinal_ex(p->md, got, &gl);
	if (gl != 32 || memcmp(got, p->want, 32) != 0) {
		uploads_drop_parts(u, p->held, p->nheld);
		p->nheld = 0;
		p->rc = -EBADMSG;
		return;
	}
	if (p->nheld) /* none: an empty body matched an empty digest */
		commit(p, p->held, p->nheld);
	p->nheld = 0;
}

static void answer(struct patch *p, http_conn_t *c)
{
	char hdr[256], date[64];

	if (p->created && p->rc == 0 && !p->commit_stale) {
		snprintf(hdr, sizeof(hdr),
			 TUS "Location: /api/v1/uploads/%s\r\nUpload-Offset: %llu\r\n", p->id,
			 (unsigned long long)p->received);
		http_send(c, 201, NULL, hdr, NULL, 0);
	} else if (p->rc == -EBADMSG) {
		tus_error(c, 460,
			  "Upload-Checksum does not match the body; nothing of it was kept");
	} else if (p->commit_stale) {
		tus_error(c, 409, "another request moved the upload's offset; HEAD it and go on");
	} else if (p->rc < 0) {
		tus_error(c, 503, p->err[0] ? p->err : "cannot store the part; retry");
	} else {
		http_date(p->expires_at ? p->expires_at
					: wall_ms() + uploads_config(p->api->uploads)->expire_ms,
			  date, sizeof(date));
		snprintf(hdr, sizeof(hdr), TUS "Upload-Offset: %llu\r\n%s%s%s",
			 (unsigned long long)p->received,
			 p->upload_complete ? "" : "Upload-Expires: ",
			 p->upload_complete ? "" : date, p->upload_complete ? "" : "\r\n");
		http_send(c, 204, NULL, hdr, NULL, 0);
	}
}

static void part_submit(struct patch *p);

static void part_done(void *arg, int status)
{
	struct patch *p = arg;
	bool failed;

	p->busy = false;
	if (status < 0) {
		p->rc = -ECANCELED;
		snprintf(p->err, sizeof(p->err), "the node is stopping");
	}
	failed = p->rc < 0 || p->commit_stale;
	if (!failed && p->upload_complete)
		uploads_kick(p->api->uploads, p->id);
	if (p->gone) {
		/* The client went away: what was received is kept (a part
		 * still buffered goes too; unverified parts do not). */
		if (!failed && !p->job_final && (p->len || (p->md && p->nheld))) {
			part_submit(p);
			return;
		}
		patch_free(p);
		return;
	}
	if (p->ended && !failed && !p->job_final) {
		part_submit(p);
		return;
	}
	if (p->ended) {
		http_conn_t *c = http_later_end(p->later);
		if (c)
			answer(p, c);
		patch_free(p);
		return;
	}
	if (failed) {
		/* Mid-body: answered now, the rest of the body unread (the
		 * sink's end does not come after an answer). */
		answer(p, p->c);
		patch_free(p);
		return;
	}
	/* The other buffer may have filled meanwhile: on to the pool. */
	if (p->len == p->cap && p->pos + p->len < p->offset + p->body)
		part_submit(p);
	http_body_resume(p->c);
}

/* The filling buffer goes to the pool; the other one fills next. */
static void part_submit(struct patch *p)
{
	p->job_buf = p->buf[p->fill];
	p->job_len = p->len;
	p->job_pos = p->pos;
	p->fill ^= 1;
	p->pos += p->len;
	p->len = 0;
	if (!p->buf[p->fill] && p->pos < p->offset + p->body)
		p->buf[p->fill] = xmalloc(p->cap);
	p->busy = true;
	p->job_final = p->ended || p->gone;
	if (pool_submit(p->api->pool, p->loop, POOL_SLOW, part_work, part_done, p) < 0) {
		p->busy = false;
		p->rc = -EAGAIN;
		snprintf(p->err, sizeof(p->err), "the node is busy; retry");
		p->job_final = true;
		part_done(p, 0);
	}
}

static size_t patch_data(void *ctx, const char *data, size_t n)
{
	struct patch *p = ctx;
	size_t room, take;

	if (!p->buf[0]) {
		p->cap = p->body < UPLOADS_PART_MAX ? (size_t)p->body : UPLOADS_PART_MAX;
		p->buf[0] = xmalloc(p->cap ? p->cap : 1);
	}
	room = p->cap - p->len;
	if (room == 0)
		return 0; /* both buffers full: part_done resumes */
	take = n < room ? n : room;
	memcpy(p->buf[p->fill] + p->len, data, take);
	p->len += take;
	if (p->md)
		EVP_DigestUpdate(p->md, data, take);
	/* A full part, more to come: stored while the other buffer fills. */
	if (p->len == p->cap && p->pos + p->len < p->offset + p->body && !p->busy)
		part_submit(p);
	return take;
}

static void patch_end(void *ctx, bool complete)
{
	struct patch *p = ctx;

	if (!complete) {
		p->c = NULL;
		p->gone = true;
		if (p->busy)
			return; /* part_done finishes */
		if (p->len || (p->md && p->nheld)) {
			part_submit(p);
			return;
		}
		patch_free(p);
		return;
	}
	p->ended = true;
	p->complete_body = true;
	p->later = http_later(p->c);
	if (p->busy)
		return;
	part_submit(p); /* the last part (and the checksum's verdict) */
}

static const struct http_sink_ops patch_sink = {patch_data, patch_end};

/* After the row's check: the body is taken, or the request refused. */
static void patch_begin(struct patch *p, http_conn_t *c, const struct upload_row *row)
{
	if (strcmp(row->state, "receiving") != 0) {
		tus_error(c, 409, "the upload is complete");
		patch_free(p);
		return;
	}
	if (p->offset != row->received) {
		char msg[160];
		snprintf(msg, sizeof(msg), "Upload-Offset is %llu but the upload is at %llu",
			 (unsigned long long)p->offset, (unsigned long long)row->received);
		tus_error(c, 409, msg);
		patch_free(p);
		return;
	}
	if (p->body > row->length - row->received) {
		tus_error(c, 413, "the body goes past Upload-Length");
		patch_free(p);
		return;
	}
	memcpy(p->id, row->id, sizeof(p->id));
	p->length = row->length;
	p->pos = row->received;
	p->received = row->received;
	p->c = c;
	http_take_body(c, &patch_sink, p);
}

/* A PATCH's (or a creation's body's) checks of its own headers; NULL
 * after answering. */
static struct patch *patch_new(struct api_call *x, uint64_t offset)
{
	const struct http_str *ct = http_header_get(x->req, "Content-Type");
	const struct http_str *ck = http_header_get(x->req, "Upload-Checksum");
	struct patch *p;

	if (!ct || !http_str_eq(*ct, OCTETS)) {
		tus_error(x->c, 415, "Content-Type must be " OCTETS);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->api = x->api;
	p->loop = http_conn_loop(x->c);
	p->offset = offset;
	p->body = x->req->content_length;
	if (ck) {
		char err[128];
		if (tus_checksum_parse(ck->p, ck->len, p->want, err, sizeof(err)) < 0) {
			tus_error(x->c, 400, err);
			free(p);
			return NULL;
		}
		p->md = EVP_MD_CTX_new();
		if (!p->md || !EVP_DigestInit_ex(p->md, EVP_sha256(), NULL)) {
			tus_error(x->c, 500, "cannot start a digest");
			patch_free(p);
			return NULL;
		}
	}
	return p;
}

/* ---- the routes ---- */

static bool is_admin(const struct api_call *x)
{
	return x->who.role == AUTH_ADMIN;
}

/* OPTIONS /api/v1/uploads: what this server speaks. */
void api_uploads_options(struct api_call *x)
{
	char hdr[512];

	snprintf(hdr, sizeof(hdr),
		 TUS
		 "Tus-Version: 1.0.0\r\nTus-Max-Size: %llu\r\n"
		 "Tus-Extension: creation,creation-with-upload,termination,checksum,expiration\r\n"
		 "Tus-Checksum-Algorithm: sha256\r\n",
		 (unsigned long long)uploads_config(x->api->uploads)->max_size);
	http_send(x->c, 204, NULL, hdr, NULL, 0);
}

/* POST: a new upload (with its first bytes, maybe); GET: the newest. */
void api_uploads(struct api_call *x)
{
	const struct http_request *req = x->req;
	const struct uploads_config *cfg = uploads_config(x->api->uploads);
	struct ask_job *a;
	uint64_t length;
	char err[160];
	const struct http_str *md;

	if (req->method == HTTP_GET || req->method == HTTP_HEAD) {
		char v[16];
		a = ask_new(x, ASK_LIST);
		a->limit = 50;
		if (http_query_param(req->query, "limit", v, sizeof(v)) > 0) {
			a->limit = atoi(v);
			if (a->limit < 1 || a->limit > LIST_MAX) {
				free(a);
				http_send_error(x->c, 400,
						"limit must be an integer from 1 to 200");
				return;
			}
		}
		a->all = is_admin(x);
		snprintf(a->owner, sizeof(a->owner), "%s", x->who.actor);
		ask(x, a);
		return;
	}
	if (!tus_version_ok(x))
		return;
	if (http_header_get(req, "Upload-Defer-Length")) {
		tus_error(x->c, 400, "Upload-Defer-Length is not supported: send Upload-Length");
		return;
	}
	if (header_u64(req, "Upload-Length", &length) < 0) {
		tus_error(x->c, 400, "Upload-Length must be a non-negative integer");
		return;
	}
	if (length > cfg->max_size) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the upload is over this node's limit of %llu bytes",
			 (unsigned long long)cfg->max_size);
		tus_error(x->c, 413, msg);
		return;
	}
	if (length == 0) {
		tus_error(x->c, 400, "an empty file is not audio");
		return;
	}
	a = ask_new(x, ASK_CREATE);
	md = http_header_get(req, "Upload-Metadata");
	if (md && tus_metadata_filename(md->p, md->len, a->row.filename, sizeof(a->row.filename),
					err, sizeof(err)) < 0) {
		free(a);
		tus_error(x->c, 400, err);
		return;
	}
	if (!md)
		snprintf(a->row.filename, sizeof(a->row.filename), "upload");
	if (md)
		snprintf(a->row.metadata, sizeof(a->row.metadata), "%.*s", (int)md->len, md->p);
	if (req->body_streamed && !(a->patch = patch_new(x, 0))) {
		free(a);
		return;
	}
	{
		unsigned char r[16];
		crypto_random(r, sizeof(r));
		text_hex(r, sizeof(r), a->row.id);
	}
	snprintf(a->row.owner, sizeof(a->row.owner), "%s", x->who.actor);
	a->row.length = length;
	a->row.created_at = wall_ms();
	a->row.updated_at = a->row.created_at;
	a->row.expires_at = a->row.created_at + cfg->expire_ms;
	snprintf(a->row.state, sizeof(a->row.state), "receiving");
	ask(x, a);
}

/* HEAD, GET (its status as JSON too), PATCH, DELETE /api/v1/uploads/{id}. */
void api_upload_one(struct api_call *x)
{
	const struct http_request *req = x->req;
	struct ask_job *a;
	uint64_t offset;

	if (!id_ok(x->name)) {
		tus_error(x->c, 404, "no such upload");
		return;
	}
	switch (req->method) {
	case HTTP_GET:
	case HTTP_HEAD:
		if (req->method == HTTP_HEAD && !tus_version_ok(x))
			return;
		ask(x, ask_new(x, req->method == HTTP_HEAD ? ASK_HEAD : ASK_STATUS));
		return;
	case HTTP_DELETE:
		if (!tus_version_ok(x))
			return;
		ask(x, ask_new(x, ASK_DELETE));
		return;
	default:
		break;
	}
	if (!tus_version_ok(x))
		return;
	if (header_u64(req, "Upload-Offset", &offset) < 0) {
		tus_error(x->c, 400, "Upload-Offset must be a non-negative integer");
		return;
	}
	a = ask_new(x, ASK_PATCH);
	if (!(a->patch = patch_new(x, offset))) {
		free(a);
		return;
	}
	if (!req->body_streamed) {
		/* No bytes: the answer is only the offset, if it is right. */
		patch_free(a->patch);
		a->patch = NULL;
		a->offset = offset;
	}
	ask(x, a);
}

void api_upload_status(struct api_call *x)
{
	if (!id_ok(x->name)) {
		http_send_error(x->c, 404, "no such upload");
		return;
	}
	ask(x, ask_new(x, ASK_STATUS));
}

bool api_uploads_stream_body(void *ud, const struct http_request *req)
{
	static const char prefix[] = "/api/v1/uploads";

	return (req->method == HTTP_PATCH || req->method == HTTP_POST) &&
	       req->path.len >= sizeof(prefix) - 1 &&
	       memcmp(req->path.p, prefix, sizeof(prefix) - 1) == 0;
}
