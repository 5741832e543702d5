/*
 * /api/v1/users, /api/v1/keys and /api/v1/audit: an admin's view of the
 * principals (store/principals.h), the same calls `chorus user` and
 * `chorus key` make. Each request is one job on the worker pool: a write
 * hashes a password (Argon2id, tens of milliseconds) or waits for
 * PostgreSQL, and a loop thread must do neither. The actor in the audit
 * trail is who asked: a user's name, or "key:<id>".
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/body.h"
#include "http/later.h"
#include "store/principals.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define ANSWER_MAX ((size_t)8 << 20)
#define AUDIT_DEFAULT 100
#define AUDIT_MAX 1000

enum admin_op {
	USERS_LIST,
	USER_ADD,
	USER_REMOVE,
	USER_PASSWD,
	KEYS_LIST,
	KEY_CREATE,
	KEY_REVOKE,
	AUDIT
};

struct admin_job {
	struct api *api;
	http_later_t *later;
	enum admin_op op;
	char actor[sizeof(((struct principal *)0)->actor)];
	char name[PRINCIPAL_NAME_MAX + 1]; /* a user's name or a key's id */
	char role[16];
	char label[PRINCIPAL_LABEL_MAX + 1], location[PRINCIPAL_LABEL_MAX + 1],
		zone[PRINCIPAL_LABEL_MAX + 1];
	char pw[AUTH_PW_MAX + 1];
	size_t pwlen;
	bool generated; /* pw was made here: the answer shows it, once */
	int64_t before;
	int limit, rows;
	int rc;
	int status; /* of a success */
	char err[512];
	buf_t b;
	json_t j;
};

static void job_free(struct admin_job *job)
{
	buf_free(&job->b);
	explicit_bzero(job, sizeof(*job));
	free(job);
}

/* The principals' store: opened at the start, or at the first request
 * after a cluster node started with PostgreSQL down. */
principals_t *api_principals_store(struct api *api)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	principals_t *p;
	char err[512];

	pthread_mutex_lock(&lock);
	if (!api->principals &&
	    principals_open(api->data_dir, api->db, &api->principals, err, sizeof(err)) < 0)
		log_warn("api: %s", err);
	p = api->principals;
	pthread_mutex_unlock(&lock);
	return p;
}

static int user_row(void *ud, const struct principal_user *u)
{
	json_t *j = ud;

	json_obj_begin(j);
	json_kstr(j, "name", u->name);
	json_kstr(j, "role", auth_role_name(u->role));
	json_kint(j, "created_at", u->created_at);
	json_kint(j, "updated_at", u->updated_at);
	json_obj_end(j);
	return json_failed(j) ? -EFBIG : 0;
}

static void kstr_or_null(json_t *j, const char *key, const char *s)
{
	if (s && *s)
		json_kstr(j, key, s);
	else
		json_knull(j, key);
}

static int key_row(void *ud, const struct principal_key *k)
{
	json_t *j = ud;

	json_obj_begin(j);
	json_kstr(j, "id", k->id);
	kstr_or_null(j, "name", k->name);
	json_kstr(j, "role", auth_role_name(k->role));
	kstr_or_null(j, "location", k->location);
	kstr_or_null(j, "zone", k->zone);
	json_kint(j, "created_at", k->created_at);
	if (k->revoked_at)
		json_kint(j, "revoked_at", k->revoked_at);
	else
		json_knull(j, "revoked_at");
	kstr_or_null(j, "created_by", k->created_by);
	json_obj_end(j);
	return json_failed(j) ? -EFBIG : 0;
}

static int audit_row(void *ud, const struct principal_audit *a)
{
	struct admin_job *job = ud;
	json_t *j = &job->j;

	json_obj_begin(j);
	json_kint(j, "id", a->id);
	json_kint(j, "at", a->at);
	json_kstr(j, "actor", a->actor);
	json_kstr(j, "action", a->action);
	json_kstr(j, "object", a->object);
	json_key(j, "detail");
	if (a->detail && *a->detail)
		json_raw(j, a->detail, strlen(a->detail));
	else
		json_nil(j);
	json_obj_end(j);
	job->before = a->id;
	job->rows++;
	return json_failed(j) ? -EFBIG : 0;
}

/* The first admin's password file goes with its first change (as
 * `chorus user passwd admin` does). */
static void forget_admin_password(struct admin_job *job)
{
	char path[4200];

	if (strcasecmp(job->name, "admin") != 0)
		return;
	snprintf(path, sizeof(path), "%s/admin-password", job->api->data_dir);
	if (unlink(path) == 0)
		log_info("api: removed %s: the admin's password changed", path);
}

static void set_password(struct admin_job *job)
{
	if (job->pwlen == 0) {
		char pw[AUTH_PW_GENERATED_LEN + 1];

		auth_password_generate(pw);
		job->pwlen = strlen(pw);
		memcpy(job->pw, pw, job->pwlen + 1);
		explicit_bzero(pw, sizeof(pw));
		job->generated = true;
	}
	job->rc = job->op == USER_ADD
			  ? principals_user_add(api_principals_store(job->api), job->actor,
						job->name, job->role, job->pw, job->pwlen, job->err,
						sizeof(job->err))
			  : principals_user_passwd(api_principals_store(job->api), job->actor,
						   job->name, job->pw, job->pwlen, job->err,
						   sizeof(job->err));
	if (job->rc < 0)
		return;
	if (job->op == USER_PASSWD)
		forget_admin_password(job);
	json_obj_begin(&job->j);
	json_kstr(&job->j, "user", job->name);
	if (job->op == USER_ADD)
		json_kstr(&job->j, "role", job->role);
	else
		json_kbool(&job->j, "password_changed", true);
	if (job->generated)
		json_kstr(&job->j, "password", job->pw);
	json_obj_end(&job->j);
	job->status = job->op == USER_ADD ? 201 : 200;
}

static void create_key(struct admin_job *job)
{
	struct principal_key_spec s = {.role = job->role,
				       .name = job->label[0] ? job->label : NULL,
				       .location = job->location[0] ? job->location : NULL,
				       .zone = job->zone[0] ? job->zone : NULL};
	char key[AUTH_KEY_LEN + 1], id[AUTH_KEY_ID_LEN + 1];

	job->rc = principals_key_create(api_principals_store(job->api), job->actor, &s, key, id,
					job->err, sizeof(job->err));
	if (job->rc < 0)
		return;
	json_obj_begin(&job->j);
	json_kstr(&job->j, "id", id);
	json_kstr(&job->j, "key", key);
	json_kstr(&job->j, "role", job->role);
	kstr_or_null(&job->j, "location", s.location);
	kstr_or_null(&job->j, "zone", s.zone);
	kstr_or_null(&job->j, "name", s.name);
	json_obj_end(&job->j);
	explicit_bzero(key, sizeof(key));
	job->status = 201;
}

/* On a worker. */
static void admin_work(void *arg)
{
	struct admin_job *job = arg;
	principals_t *p = api_principals_store(job->api);
	json_t *j = &job->j;

	if (!p) {
		job->rc = -EIO;
		return;
	}
	json_init(j, &job->b);
	job->status = 200;
	switch (job->op) {
	case USERS_LIST:
		json_obj_begin(j);
		json_key(j, "users");
		json_arr_begin(j);
		job->rc = principals_user_list(p, user_row, j);
		json_arr_end(j);
		json_obj_end(j);
		break;
	case KEYS_LIST:
		json_obj_begin(j);
		json_key(j, "keys");
		json_arr_begin(j);
		job->rc = principals_key_list(p, key_row, j);
		json_arr_end(j);
		json_obj_end(j);
		break;
	case AUDIT: {
		int64_t asked = job->before;

		json_obj_begin(j);
		json_key(j, "audit");
		json_arr_begin(j);
		job->before = 0;
		job->rc = principals_audit_list(p, asked, job->limit, audit_row, job);
		json_arr_end(j);
		/* The next page: rows older than the last one sent. */
		if (job->before && job->rows == job->limit)
			json_kint(j, "next_before", job->before);
		else
			json_knull(j, "next_before");
		json_obj_end(j);
		break;
	}
	case USER_ADD:
	case USER_PASSWD:
		set_password(job);
		break;
	case USER_REMOVE:
		job->rc = principals_user_remove(p, job->actor, job->name, job->err,
						 sizeof(job->err));
		if (job->rc == 0) {
			forget_admin_password(job);
			json_obj_begin(j);
			json_kstr(j, "removed", job->name);
			json_obj_end(j);
		}
		break;
	case KEY_CREATE:
		create_key(job);
		break;
	case KEY_REVOKE:
		job->rc =
			principals_key_revoke(p, job->actor, job->name, job->err, sizeof(job->err));
		if (job->rc == 0) {
			json_obj_begin(j);
			json_kstr(j, "revoked", job->name);
			json_obj_end(j);
		}
		break;
	}
	if (job->rc == 0 && (json_failed(j) || buf_append(&job->b, "\n", 1) < 0))
		job->rc = -EFBIG;
	explicit_bzero(job->pw, sizeof(job->pw));
}

static void admin_answer(struct admin_job *job, http_conn_t *c)
{
	struct api *api = job->api;
	int rc = job->rc;

	if (!c)
		return;
	if (rc == 0) {
		http_send(c, job->status, JSON_TYPE, "Cache-Control: no-store\r\n", job->b.data,
			  job->b.len);
		return;
	}
	switch (rc) {
	case -EINVAL:
		http_send_error(c, 422, job->err);
		break;
	case -EEXIST:
	case -EALREADY:
		http_send_error(c, 409, job->err);
		break;
	case -ENOENT:
		http_send_error(c, 404, job->err);
		break;
	case -EFBIG:
		http_send_error(c, 500, "the answer is too large");
		break;
	case -EAGAIN:
		http_send_error(c, 503, "the node is busy; retry");
		break;
	case -ECANCELED:
	case -ESHUTDOWN:
		http_send_error(c, 503, "the node is shutting down; retry");
		break;
	default:
		http_send_error(c, api->db ? 503 : 500,
				api->db ? "the catalog database is unreachable; retry"
					: "the change could not be stored");
	}
}

/* On the connection's loop: the job ran, or the pool stopped first. */
static void admin_done(void *arg, int status)
{
	struct admin_job *job = arg;

	if (status < 0)
		job->rc = status;
	admin_answer(job, http_later_end(job->later));
	job_free(job);
}

static struct admin_job *job_new(struct api_call *x, enum admin_op op)
{
	struct admin_job *job = xcalloc(1, sizeof(*job));

	job->api = x->api;
	job->op = op;
	/* The actor: a person by name, a program by its key's id. */
	snprintf(job->actor, sizeof(job->actor), "%s", x->who.actor);
	buf_init(&job->b, ANSWER_MAX);
	return job;
}

static void submit(struct api_call *x, struct admin_job *job)
{
	int rc;

	job->later = http_later(x->c);
	rc = pool_submit(x->api->pool, http_conn_loop(x->c), POOL_SLOW, admin_work, admin_done,
			 job);
	if (rc < 0) {
		job->rc = rc;
		admin_answer(job, http_later_end(job->later));
		job_free(job);
	}
}

/* The path's {name}, percent-decoded (a client may send "@" as %40). */
static int path_name(const struct api_call *x, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < x->name.len; i++) {
		int ch = (unsigned char)x->name.p[i];

		if (ch == '%') {
			unsigned v;
			char hex[3];

			if (i + 2 >= x->name.len)
				return -1;
			hex[0] = x->name.p[i + 1];
			hex[1] = x->name.p[i + 2];
			hex[2] = '\0';
			if (sscanf(hex, "%2x", &v) != 1 ||
			    strspn(hex, "0123456789abcdefABCDEF") != 2)
				return -1;
			ch = (int)v;
			i += 2;
		}
		if (ch == 0 || n + 1 >= cap)
			return -1;
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return n ? 0 : -1;
}

static struct admin_job *named_job(struct api_call *x, enum admin_op op)
{
	struct admin_job *job = job_new(x, op);

	if (path_name(x, job->name, sizeof(job->name)) < 0) {
		http_send_error(x->c, 404, op == KEY_REVOKE ? "no such key" : "no such user");
		job_free(job);
		return NULL;
	}
	return job;
}

static bool body_or_422(struct api_call *x, struct admin_job *job, struct body_field *f, size_t n)
{
	if (api_body_fields(x->req->body.p, x->req->body.len, f, n, job->err, sizeof(job->err)) ==
	    0)
		return true;
	http_send_error(x->c, 422, job->err);
	job_free(job);
	return false;
}

void api_users_list(struct api_call *x)
{
	submit(x, job_new(x, USERS_LIST));
}

void api_keys_list(struct api_call *x)
{
	submit(x, job_new(x, KEYS_LIST));
}

/* POST /api/v1/users {"name", "role", "password"?}: no password makes
 * one, shown once in the answer. */
void api_users_add(struct api_call *x)
{
	struct admin_job *job = job_new(x, USER_ADD);
	struct body_field f[] = {
		{.name = "name", .required = true, .out = job->name, .cap = sizeof(job->name)},
		{.name = "role", .required = true, .out = job->role, .cap = sizeof(job->role)},
		{.name = "password", .out = job->pw, .cap = sizeof(job->pw), .len = &job->pwlen},
	};

	if (body_or_422(x, job, f, 3))
		submit(x, job);
}

/* PUT /api/v1/users/{name}/password {"password"?} */
void api_users_passwd(struct api_call *x)
{
	struct admin_job *job = named_job(x, USER_PASSWD);

	if (!job)
		return;
	struct body_field f[] = {
		{.name = "password", .out = job->pw, .cap = sizeof(job->pw), .len = &job->pwlen},
	};
	if (body_or_422(x, job, f, 1))
		submit(x, job);
}

void api_users_remove(struct api_call *x)
{
	struct admin_job *job = named_job(x, USER_REMOVE);

	if (job)
		submit(x, job);
}

/* POST /api/v1/keys {"role", "location"?, "zone"?, "name"?}: the answer
 * holds the key, the only time it is shown. */
void api_keys_create(struct api_call *x)
{
	struct admin_job *job = job_new(x, KEY_CREATE);
	struct body_field f[] = {
		{.name = "role", .required = true, .out = job->role, .cap = sizeof(job->role)},
		{.name = "location", .out = job->location, .cap = sizeof(job->location)},
		{.name = "zone", .out = job->zone, .cap = sizeof(job->zone)},
		{.name = "name", .out = job->label, .cap = sizeof(job->label)},
	};

	if (body_or_422(x, job, f, 4))
		submit(x, job);
}

void api_keys_revoke(struct api_call *x)
{
	struct admin_job *job = named_job(x, KEY_REVOKE);

	if (job)
		submit(x, job);
}

/* GET /api/v1/audit?before=ID&limit=N: newest first, a page at a time. */
void api_audit_list(struct api_call *x)
{
	struct admin_job *job = job_new(x, AUDIT);
	char v[32], *end;
	int rc;

	job->limit = AUDIT_DEFAULT;
	rc = http_query_param(x->req->query, "before", v, sizeof(v));
	if (rc > 0) {
		job->before = strtoll(v, &end, 10);
		if (*end || job->before <= 0) {
			http_send_error(x->c, 400, "before: an audit id (a positive integer)");
			job_free(job);
			return;
		}
	}
	rc = http_query_param(x->req->query, "limit", v, sizeof(v));
	if (rc > 0) {
		long n = strtol(v, &end, 10);

		if (*end || n < 1 || n > AUDIT_MAX) {
			http_send_error(x->c, 400, "limit: 1 to 1000");
			job_free(job);
			return;
		}
		job->limit = (int)n;
	}
	if (rc < 0 && http_query_has(x->req->query, "limit")) {
		http_send_error(x->c, 400, "limit: 1 to 1000");
		job_free(job);
		return;
	}
	submit(x, job);
}
