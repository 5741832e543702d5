/*
 * The read model's lookups of users and API keys (see principals.h). The
 * statements are prepared once, on the reader's connection; a row whose
 * role no longer parses (written by hand) is treated as absent rather than
 * as a principal of some default role.
 */
#include "catalog/principals.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

enum { ST_KEY, ST_USER, ST_USER_ID, ST_N };

static const char *const stmt_sql[ST_N] = {
	/* Parentheses: clang's -Wstring-concatenation in array initialisers. */
	[ST_KEY] = ("SELECT role, location, zone, secret_hash, revoked_at IS NOT NULL"
		    " FROM api_keys WHERE id = ?1"),
	[ST_USER] = "SELECT id, name, role, password, generation FROM users WHERE name_key = ?1",
	[ST_USER_ID] = "SELECT id, name, role, password, generation FROM users WHERE id = ?1",
};

struct catalog_principals {
	sqlite3 *db;
	sqlite3_stmt *st[ST_N];
};

int catalog_principals_open(catalog_reader_t *r, catalog_principals_t **out, char *err,
			    size_t errlen)
{
	catalog_principals_t *p = xcalloc(1, sizeof(*p));

	p->db = catalog_reader_db(r);
	for (int i = 0; i < ST_N; i++) {
		if (sqlite3_prepare_v3(p->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &p->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "catalog: principals: %s", sqlite3_errmsg(p->db));
			catalog_principals_close(p);
			return -EIO;
		}
	}
	*out = p;
	return 0;
}

void catalog_principals_close(catalog_principals_t *p)
{
	if (!p)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(p->st[i]);
	free(p);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t n)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static int done(catalog_principals_t *p, sqlite3_stmt *st, int rc)
{
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_error("catalog: principals: %s", sqlite3_errmsg(p->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int catalog_key_find(catalog_principals_t *p, const char *id, struct catalog_key *out)
{
	sqlite3_stmt *st = p->st[ST_KEY];
	int rc;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *role = sqlite3_column_text(st, 0);
		if (!role || auth_role_parse((const char *)role, &out->role) < 0)
			rc = SQLITE_DONE;
		copy_col(st, 1, out->location, sizeof(out->location));
		copy_col(st, 2, out->zone, sizeof(out->zone));
		copy_col(st, 3, out->secret_hash, sizeof(out->secret_hash));
		out->revoked = sqlite3_column_int(st, 4) != 0;
		if (strlen(out->secret_hash) != AUTH_HASH_HEX_LEN)
			rc = SQLITE_DONE;
	}
	return done(p, st, rc);
}

int catalog_key_check(catalog_principals_t *p, const char *id, const char *hash,
		      struct catalog_key *out)
{
	int rc = catalog_key_find(p, id, out);

	if (rc < 0)
		return rc;
	if (!auth_hash_equal(out->secret_hash, hash))
		return -EACCES;
	return out->revoked ? -EKEYREVOKED : 0;
}

static int user_row(catalog_principals_t *p, sqlite3_stmt *st, struct catalog_user *out)
{
	int rc = sqlite3_step(st);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_ROW) {
		const unsigned char *role = sqlite3_column_text(st, 2);
		out->id = sqlite3_column_int64(st, 0);
		copy_col(st, 1, out->name, sizeof(out->name));
		if (!role || auth_role_parse((const char *)role, &out->role) < 0)
			rc = SQLITE_DONE;
		copy_col(st, 3, out->password, sizeof(out->password));
		out->generation = sqlite3_column_int64(st, 4);
	}
	return done(p, st, rc);
}

int catalog_user_find(catalog_principals_t *p, const char *name, struct catalog_user *out)
{
	char key[65];
	size_t i;

	for (i = 0; name[i] && i < sizeof(key) - 1; i++)
		key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	key[i] = '\0';
	if (name[i]) {
		memset(out, 0, sizeof(*out));
		return -ENOENT;
	}
	sqlite3_bind_text(p->st[ST_USER], 1, key, -1, SQLITE_TRANSIENT);
	return user_row(p, p->st[ST_USER], out);
}

int catalog_user_find_id(catalog_principals_t *p, int64_t id, struct catalog_user *out)
{
	sqlite3_bind_int64(p->st[ST_USER_ID], 1, id);
	return user_row(p, p->st[ST_USER_ID], out);
}
