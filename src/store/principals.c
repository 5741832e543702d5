/*
 * Users and API keys (see principals.h), written once for both dialects
 * over sql/sql.h.
 *
 * Each change is one write transaction: the check (does the name exist,
 * is the key revoked), the change, and its audit row. sql_tx serializes
 * it with every other writer of the source of truth (SQLite's BEGIN
 * IMMEDIATE, PostgreSQL's catalog lock), so a check cannot be overtaken
 * by another process between it and the change; the unique name_key is
 * the backstop. Audit ids count up as max(id) + 1, which is exact under
 * that same serialization. Argon2id hashing (tens of milliseconds) runs
 * before the transaction, so the lock is never held for it, except for
 * the first admin, which must draw its password only once it knows it
 * creates the user. A fn may run again on PostgreSQL after a lost
 * connection: each starts from scratch and redraws its random ids.
 */
#include "store/principals.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/model.h"
#include "crypto/seal.h"
#include "sql/sql.h"
#include "store/store_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/text.h"
#include "util/xalloc.h"

struct principals {
	sql_t *db;
	pthread_mutex_t lock; /* one connection: one call at a time */
};

/* Every call is one transaction on the one connection. */
static int tx(principals_t *p, bool write, sql_tx_fn fn, void *arg)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = sql_tx(p->db, write, fn, arg);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int principals_open(const char *data_dir, const char *conninfo, principals_t **out, char *err,
		    size_t errlen)
{
	principals_t *p = xcalloc(1, sizeof(*p));
	int rc;

	rc = store__source_open(data_dir, conninfo, NULL, &p->db, err, errlen);
	if (rc < 0) {
		free(p);
		return rc;
	}
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void principals_close(principals_t *p)
{
	if (!p)
		return;
	sql_close(p->db);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- validation ---- */

bool principals_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > PRINCIPAL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* Labels (key names, locations, zones): 1-128 bytes of UTF-8 without
 * control characters. */
static bool label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > PRINCIPAL_LABEL_MAX || !text_is_utf8(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void name_key(const char *name, char out[PRINCIPAL_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] && i < PRINCIPAL_NAME_MAX; i++)
		out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	out[i] = '\0';
}

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* ---- the audit trail ---- */

/* One audit row; detail is a JSON object or NULL. */
static int audit(sql_t *db, const char *actor, const char *action, const char *object,
		 const char *detail)
{
	sql_stmt_t *st = sql_prepare(
		db, "INSERT INTO audit (id, at, actor, action, object, detail)"
		    " SELECT coalesce(max(id), 0) + 1, CAST(?1 AS BIGINT), CAST(?2 AS TEXT),"
		    " CAST(?3 AS TEXT), CAST(?4 AS TEXT), CAST(?5 AS TEXT) FROM audit");

	sql_bind_int(st, 1, (int64_t)time(NULL));
	sql_bind_text(st, 2, actor);
	sql_bind_text(st, 3, action);
	sql_bind_text(st, 4, object);
	sql_bind_text(st, 5, detail);
	return sql_run(st);
}

/* {"role":R[,"name":N,"location":L,"zone":Z]} for the audit (malloc'd). */
static char *detail_json(const char *role, const char *name, const char *location, const char *zone)
{
	buf_t b;
	json_t j;

	buf_init(&b, 4096);
	json_init(&j, &b);
	json_obj_begin(&j);
	if (role)
		json_kstr(&j, "role", role);
	if (name)
		json_kstr(&j, "name", name);
	if (location)
		json_kstr(&j, "location", location);
	if (zone)
		json_kstr(&j, "zone", zone);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		return xstrdup("{}");
	}
	return buf_steal(&b);
}

int principals_audit_in(struct sql *db, const char *actor, const char *action, const char *object,
			const char *detail)
{
	return audit(db, actor, action, object, detail);
}

/* ---- users ---- */

struct user_op {
	const char *actor, *name, *role;
	char key[PRINCIPAL_NAME_MAX + 1];
	const char *hash; /* Argon2id encoded */
	char *err;
	size_t errlen;
	bool exists; /* out: for first_admin */
};

/* The user's id, 0 when there is none, or a negative error; the name
 * as stored into name when given (the audit names it so). */
static int64_t user_id(sql_t *db, const char *key, char name[PRINCIPAL_NAME_MAX + 1])
{
	sql_stmt_t *st = sql_prepare(db, "SELECT id, name FROM users WHERE name_key = ?1");
	int64_t id = 0;
	int rc;

	sql_bind_text(st, 1, key);
	rc = sql_step(st);
	if (rc == SQL_ROW) {
		id = sql_column_int64(st, 0);
		if (name)
			copy(name, PRINCIPAL_NAME_MAX + 1, sql_column_text(st, 1));
	}
	sql_finalize(st);
	return rc < 0 ? rc : id;
}

/* A random positive id: a session names it in decimal. */
static int64_t random_id(void)
{
	uint64_t v = 0;

	while ((v & INT64_MAX) == 0)
		crypto_random(&v, sizeof(v));
	return (int64_t)(v & INT64_MAX);
}

static int insert_user(sql_t *db, struct user_op *o)
{
	sql_stmt_t *st = sql_prepare(db, "INSERT INTO users (id, name, name_key, role, password,"
					 " generation, created_at, updated_at)"
					 " VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)");
	char *detail;
	int rc;

	sql_bind_int(st, 1, random_id());
	sql_bind_text(st, 2, o->name);
	sql_bind_text(st, 3, o->key);
	sql_bind_text(st, 4, o->role);
	sql_bind_text(st, 5, o->hash);
	sql_bind_int(st, 6, (int64_t)time(NULL));
	if ((rc = sql_run(st)) < 0)
		return rc;
	detail = detail_json(o->role, NULL, NULL, NULL);
	rc = audit(db, o->actor, "user.add", o->name, detail);
	free(detail);
	return rc;
}

static int user_add_op(sql_t *db, void *arg)
{
	struct user_op *o = arg;
	int64_t id = user_id(db, o->key, NULL);

	if (id < 0)
		return (int)id;
	if (id > 0) {
		snprintf(o->err, o->errlen, "a user named \"%s\" exists already", o->name);
		return -EEXIST;
	}
	return insert_user(db, o);
}

/* Runs op (user_add_op, user_passwd_op) as one write transaction with
 * o->hash the Argon2id of pw, which is wiped after. */
static int with_password(principals_t *p, sql_tx_fn op, struct user_op *o, const char *pw,
			 size_t len)
{
	char hash[AUTH_PW_ENCODED_MAX];
	int rc;

	if (len == 0 || len > AUTH_PW_MAX || memchr(pw, '\0', len)) {
		snprintf(o->err, o->errlen, "a password is 1 to %d bytes", AUTH_PW_MAX);
		return -EINVAL;
	}
	if (auth_password_hash(pw, len, hash) < 0) {
		snprintf(o->err, o->errlen, "cannot hash the password");
		return -EIO;
	}
	o->hash = hash;
	name_key(o->name, o->key);
	rc = tx(p, true, op, o);
	explicit_bzero(hash, sizeof(hash));
	o->hash = NULL;
	if (rc == -EIO && !*o->err)
		snprintf(o->err, o->errlen, "the database refused the change (see the log)");
	return rc;
}

int principals_user_add(principals_t *p, const char *actor, const char *name, const char *role,
			const char *pw, size_t len, char *err, size_t errlen)
{
	struct user_op o = {.actor = actor, .name = name, .err = err, .errlen = errlen};
	enum auth_role r;

	if (!principals_name_ok(name)) {
		snprintf(err, errlen, "a user name is 1 to %d of A-Z a-z 0-9 . _ @ -",
			 PRINCIPAL_NAME_MAX);
		return -EINVAL;
	}
	if (!role || auth_role_parse(role, &r) < 0) {
		snprintf(err, errlen, "unknown role \"%s\" (admin, editor, store or listener)",
			 role ? role : "");
		return -EINVAL;
	}
	o.role = auth_role_name(r);
	return with_password(p, user_add_op, &o, pw, len);
}

static int user_passwd_op(sql_t *db, void *arg)
{
	struct user_op *o = arg;
	char name[PRINCIPAL_NAME_MAX + 1];
	int64_t id = user_id(db, o->key, name);
	sql_stmt_t *st;
	int rc;

	if (id < 0)
		return (int)id;
	if (id == 0) {
		snprintf(o->err, o->errlen, "no user named \"%s\"", o->name);
		return -ENOENT;
	}
	st = sql_prepare(db, "UPDATE users SET password = ?1, generation = generation + 1,"
			     " updated_at = ?2 WHERE id = ?3");
	sql_bind_text(st, 1, o->hash);
	sql_bind_int(st, 2, (int64_t)time(NULL));
	sql_bind_int(st, 3, id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return audit(db, o->actor, "user.passwd", name, NULL);
}

int principals_user_passwd(principals_t *p, const char *actor, const char *name, const char *pw,
			   size_t len, char *err, size_t errlen)
{
	struct user_op o = {.actor = actor, .name = name, .err = err, .errlen = errlen};

	if (!principals_name_ok(name)) {
		snprintf(err, errlen, "no user named \"%s\"", name ? name : "");
		return -ENOENT;
	}
	return with_password(p, user_passwd_op, &o, pw, len);
}

static int user_remove_op(sql_t *db, void *arg)
{
	struct user_op *o = arg;
	char name[PRINCIPAL_NAME_MAX + 1];
	int64_t id = user_id(db, o->key, name);
	sql_stmt_t *st;
	int rc;

	if (id < 0)
		return (int)id;
	if (id == 0) {
		snprintf(o->err, o->errlen, "no user named \"%s\"", o->name);
		return -ENOENT;
	}
	st = sql_prepare(db, "DELETE FROM users WHERE id = ?1");
	sql_bind_int(st, 1, id);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return audit(db, o->actor, "user.remove", name, NULL);
}

int principals_user_remove(principals_t *p, const char *actor, const char *name, char *err,
			   size_t errlen)
{
	struct user_op o = {.actor = actor, .name = name, .err = err, .errlen = errlen};
	int rc;

	if (!principals_name_ok(name)) {
		snprintf(err, errlen, "no user named \"%s\"", name ? name : "");
		return -ENOENT;
	}
	name_key(name, o.key);
	rc = tx(p, true, user_remove_op, &o);
	if (rc == -EIO && !*err)
		snprintf(err, errlen, "the database refused the change (see the log)");
	return rc;
}

struct list_op {
	int (*user_fn)(void *ud, const struct principal_user *u);
	int (*key_fn)(void *ud, const struct principal_key *k);
	void *ud;
};

static int user_list_op(sql_t *db, void *arg)
{
	struct list_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT id, name, role, generation, created_at,"
					 " updated_at FROM users ORDER BY name_key");
	int rc, stop = 0;

	while ((rc = sql_step(st)) == SQL_ROW) {
		struct principal_user u = {0};

		u.id = sql_column_int64(st, 0);
		copy(u.name, sizeof(u.name), sql_column_text(st, 1));
		if (auth_role_parse(sql_column_text(st, 2) ? sql_column_text(st, 2) : "", &u.role) <
		    0)
			u.role = AUTH_ANONYMOUS; /* a row someone wrote by hand */
		u.generation = sql_column_int64(st, 3);
		u.created_at = sql_column_int64(st, 4);
		u.updated_at = sql_column_int64(st, 5);
		if ((stop = o->user_fn(o->ud, &u)) != 0)
			break;
	}
	sql_finalize(st);
	return stop ? stop : rc < 0 ? rc : 0;
}

int principals_user_list(principals_t *p, int (*fn)(void *ud, const struct principal_user *u),
			 void *ud)
{
	struct list_op o = {.user_fn = fn, .ud = ud};

	return tx(p, false, user_list_op, &o);
}

/* ---- API keys ---- */

struct key_op {
	const char *actor;
	const struct principal_key_spec *spec;
	const char *role;
	const char *id_in;
	char key[AUTH_KEY_LEN + 1], id[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1];
	char location[17], zone[17]; /* a store key's, resolved to ids */
	char *err;
	size_t errlen;
};

/* A store key's location and zone, named by id or name, as ids: 0, or
 * -ENOENT with the reason in err. */
static int bind_device(sql_t *db, struct key_op *o)
{
	const struct principal_key_spec *s = o->spec;
	int64_t location, zone;
	int rc;

	o->location[0] = o->zone[0] = '\0';
	if (!s->location)
		return 0;
	rc = store__location_resolve(db, s->location, &location);
	if (rc == -ENOENT)
		snprintf(o->err, o->errlen,
			 "no location \"%s\": create it first (POST /api/v1/locations, or"
			 " chorus location add)",
			 s->location);
	if (rc < 0)
		return rc;
	catalog_id_str(location, o->location);
	if (!s->zone)
		return 0;
	rc = store__zone_resolve(db, location, s->zone, &zone);
	if (rc == -ENOENT)
		snprintf(o->err, o->errlen, "location \"%s\" has no zone \"%s\"", s->location,
			 s->zone);
	if (rc < 0)
		return rc;
	catalog_id_str(zone, o->zone);
	return 0;
}

static int key_create_op(sql_t *db, void *arg)
{
	struct key_op *o = arg;
	const struct principal_key_spec *s = o->spec;
	sql_stmt_t *st;
	char *detail;
	int rc;

	if ((rc = bind_device(db, o)) < 0)
		return rc;
	/* A new key each run: a retried fn never reuses a secret. */
	auth_key_make(o->key, o->id, o->hash);
	st = sql_prepare(db, "INSERT INTO api_keys (id, name, role, location, zone, secret_hash,"
			     " created_at, revoked_at, created_by)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)");
	sql_bind_text(st, 1, o->id);
	sql_bind_text(st, 2, s->name);
	sql_bind_text(st, 3, o->role);
	sql_bind_text(st, 4, o->location[0] ? o->location : NULL);
	sql_bind_text(st, 5, o->zone[0] ? o->zone : NULL);
	sql_bind_text(st, 6, o->hash);
	sql_bind_int(st, 7, (int64_t)time(NULL));
	sql_bind_text(st, 8, o->actor);
	if ((rc = sql_run(st)) < 0)
		return rc;
	detail = detail_json(o->role, s->name, o->location[0] ? o->location : NULL,
			     o->zone[0] ? o->zone : NULL);
	rc = audit(db, o->actor, "key.create", o->id, detail);
	free(detail);
	return rc;
}

int principals_key_create(principals_t *p, const char *actor, const struct principal_key_spec *s,
			  char key[AUTH_KEY_LEN + 1], char id[AUTH_KEY_ID_LEN + 1], char *err,
			  size_t errlen)
{
	struct key_op o = {.actor = actor, .spec = s, .err = err, .errlen = errlen};
	enum auth_role r;
	int rc;

	err[0] = '\0';
	if (!s->role || auth_role_parse(s->role, &r) < 0) {
		snprintf(err, errlen, "unknown role \"%s\" (admin, editor, store or listener)",
			 s->role ? s->role : "");
		return -EINVAL;
	}
	if (r == AUTH_STORE && !s->location) {
		snprintf(err, errlen, "a store key needs --location");
		return -EINVAL;
	}
	if (r != AUTH_STORE && (s->location || s->zone)) {
		snprintf(err, errlen, "--location and --zone are for store keys only");
		return -EINVAL;
	}
	if ((s->location && !label_ok(s->location)) || (s->zone && !label_ok(s->zone)) ||
	    (s->name && !label_ok(s->name))) {
		snprintf(err, errlen,
			 "a name, location or zone is 1 to %d bytes of UTF-8 without control "
			 "characters",
			 PRINCIPAL_LABEL_MAX);
		return -EINVAL;
	}
	o.role = auth_role_name(r);
	rc = tx(p, true, key_create_op, &o);
	if (rc == -ENOENT)
		rc = -EINVAL; /* no such location or zone: the request's fault */
	if (rc == 0) {
		memcpy(key, o.key, sizeof(o.key));
		memcpy(id, o.id, sizeof(o.id));
	} else if (!*err) {
		snprintf(err, errlen, "the database refused the change (see the log)");
	}
	explicit_bzero(o.key, sizeof(o.key));
	return rc;
}

static int key_revoke_op(sql_t *db, void *arg)
{
	struct key_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT revoked_at FROM api_keys WHERE id = ?1");
	bool revoked = false;
	int rc;

	sql_bind_text(st, 1, o->id_in);
	rc = sql_step(st);
	if (rc == SQL_ROW)
		revoked = !sql_column_is_null(st, 0);
	sql_finalize(st);
	if (rc < 0)
		return rc;
	if (rc == SQL_DONE) {
		snprintf(o->err, o->errlen, "no key %s", o->id_in);
		return -ENOENT;
	}
	if (revoked) {
		snprintf(o->err, o->errlen, "key %s is revoked already", o->id_in);
		return -EALREADY;
	}
	st = sql_prepare(db, "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2");
	sql_bind_int(st, 1, (int64_t)time(NULL));
	sql_bind_text(st, 2, o->id_in);
	if ((rc = sql_run(st)) < 0)
		return rc;
	return audit(db, o->actor, "key.revoke", o->id_in, NULL);
}

int principals_key_revoke(principals_t *p, const char *actor, const char *id, char *err,
			  size_t errlen)
{
	struct key_op o = {.actor = actor, .id_in = id, .err = err, .errlen = errlen};
	int rc;
	size_t n = id ? strlen(id) : 0;

	for (size_t i = 0; i < n; i++)
		if (text_hexval(id[i]) < 0 || (id[i] >= 'A' && id[i] <= 'F'))
			n = 0;
	if (n != AUTH_KEY_ID_LEN) {
		snprintf(err, errlen, "a key id is %d lower-case hex digits", AUTH_KEY_ID_LEN);
		return -EINVAL;
	}
	rc = tx(p, true, key_revoke_op, &o);
	if (rc == -EIO && !*err)
		snprintf(err, errlen, "the database refused the change (see the log)");
	return rc;
}

/* ---- actions that change no table: drains, join tokens ---- */

struct audit_row {
	const char *actor, *action, *object, *detail;
};

static int audit_add_op(sql_t *db, void *arg)
{
	struct audit_row *o = arg;

	return audit(db, o->actor, o->action, o->object, o->detail);
}

int principals_audit_add(principals_t *p, const char *actor, const char *action, const char *object,
			 const char *detail)
{
	struct audit_row o = {actor, action, object, detail};

	return tx(p, true, audit_add_op, &o);
}

static int key_list_op(sql_t *db, void *arg)
{
	struct list_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT id, name, role, location, zone, created_at,"
					 " revoked_at, created_by FROM api_keys"
					 " ORDER BY created_at, id");
	int rc, stop = 0;

	while ((rc = sql_step(st)) == SQL_ROW) {
		struct principal_key k = {0};

		copy(k.id, sizeof(k.id), sql_column_text(st, 0));
		copy(k.name, sizeof(k.name), sql_column_text(st, 1));
		if (auth_role_parse(sql_column_text(st, 2) ? sql_column_text(st, 2) : "", &k.role) <
		    0)
			k.role = AUTH_ANONYMOUS;
		copy(k.location, sizeof(k.location), sql_column_text(st, 3));
		copy(k.zone, sizeof(k.zone), sql_column_text(st, 4));
		k.created_at = sql_column_int64(st, 5);
		k.revoked_at = sql_column_int64(st, 6);
		copy(k.created_by, sizeof(k.created_by), sql_column_text(st, 7));
		if ((stop = o->key_fn(o->ud, &k)) != 0)
			break;
	}
	sql_finalize(st);
	return stop ? stop : rc < 0 ? rc : 0;
}

int principals_key_list(principals_t *p, int (*fn)(void *ud, const struct principal_key *k),
			void *ud)
{
	struct list_op o = {.key_fn = fn, .ud = ud};

	return tx(p, false, key_list_op, &o);
}

/* ---- the first admin ---- */

struct admin_op {
	char pw[AUTH_PW_GENERATED_LEN + 1];
	bool created;
};

static int first_admin_op(sql_t *db, void *arg)
{
	struct admin_op *a = arg;
	char hash[AUTH_PW_ENCODED_MAX], err[128];
	struct user_op o = {.actor = "first-start",
			    .name = "admin",
			    .key = "admin",
			    .role = "admin",
			    .err = err,
			    .errlen = sizeof(err)};
	sql_stmt_t *st =
		sql_prepare(db, "SELECT CASE WHEN EXISTS (SELECT 1 FROM users)"
				" OR EXISTS (SELECT 1 FROM audit WHERE action LIKE 'user.%')"
				" THEN 1 ELSE 0 END");
	bool any = true;
	int rc;

	a->created = false;
	rc = sql_step(st);
	if (rc == SQL_ROW)
		any = sql_column_int64(st, 0) != 0;
	sql_finalize(st);
	if (rc < 0 || any)
		return rc < 0 ? rc : 0;
	auth_password_generate(a->pw);
	if (auth_password_hash(a->pw, strlen(a->pw), hash) < 0)
		return -EIO;
	o.hash = hash;
	rc = insert_user(db, &o);
	explicit_bzero(hash, sizeof(hash));
	a->created = rc == 0;
	return rc;
}

int principals_first_admin(principals_t *p, char pw[AUTH_PW_GENERATED_LEN + 1], bool *created)
{
	struct admin_op a = {0};
	int rc = tx(p, true, first_admin_op, &a);

	*created = rc == 0 && a.created;
	if (*created)
		memcpy(pw, a.pw, sizeof(a.pw));
	explicit_bzero(a.pw, sizeof(a.pw));
	return rc;
}

/* ---- the audit trail, read ---- */

struct audit_op {
	int64_t before;
	int limit;
	int (*fn)(void *ud, const struct principal_audit *a);
	void *ud;
};

static int audit_list_op(sql_t *db, void *arg)
{
	struct audit_op *o = arg;
	sql_stmt_t *st = sql_prepare(db, "SELECT id, at, actor, action, object, detail FROM audit"
					 " WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
	int rc, stop = 0;

	sql_bind_int(st, 1, o->before);
	sql_bind_int(st, 2, o->limit);
	while ((rc = sql_step(st)) == SQL_ROW) {
		struct principal_audit a = {0};
		const char *d = sql_column_text(st, 5);

		a.id = sql_column_int64(st, 0);
		a.at = sql_column_int64(st, 1);
		copy(a.actor, sizeof(a.actor), sql_column_text(st, 2));
		copy(a.action, sizeof(a.action), sql_column_text(st, 3));
		copy(a.object, sizeof(a.object), sql_column_text(st, 4));
		a.detail = d;
		if ((stop = o->fn(o->ud, &a)) != 0)
			break;
	}
	sql_finalize(st);
	return stop ? stop : rc < 0 ? rc : 0;
}

int principals_audit_list(principals_t *p, int64_t before, int limit,
			  int (*fn)(void *ud, const struct principal_audit *a), void *ud)
{
	struct audit_op o = {
		.before = before > 0 ? before : INT64_MAX, .limit = limit, .fn = fn, .ud = ud};

	return tx(p, false, audit_list_op, &o);
}
