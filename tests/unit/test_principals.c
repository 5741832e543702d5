/*
 * Users and API keys over SQLite: the store's rules (validation, duplicate
 * names case folded, revocations, audit rows in the same transaction and
 * never a secret in them, the first admin made once), then the read
 * model's lookups on the same catalog.db.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth.h"
#include "catalog/db.h"
#include "catalog/principals.h"
#include "catalog/read.h"
#include "catalog/model.h"
#include "store/principals.h"
#include "store/zones.h"
#include "unit.h"

static char dir[] = "/tmp/chorus-test-principals-XXXXXX";
static char path[256];
static char paris_id[17]; /* the location the store key is bound to */
static principals_t *store;
static char key_a[AUTH_KEY_LEN + 1], id_a[AUTH_KEY_ID_LEN + 1];
static char key_b[AUTH_KEY_LEN + 1], id_b[AUTH_KEY_ID_LEN + 1];

/* One column of one row of catalog.db, as text ("" for none). */
static void query(const char *sql, char *out, size_t n)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	out[0] = '\0';
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int count_user(void *ud, const struct principal_user *u)
{
	(*(int *)ud)++;
	return 0;
}

static int count_key(void *ud, const struct principal_key *k)
{
	(*(int *)ud)++;
	return 0;
}

static void test_users(void)
{
	char err[256] = "", buf[4096];
	int n = 0;

	CHECK(principals_user_add(store, "cli", "Ana", "editor", "pw-ana", 6, err, sizeof(err)) ==
	      0);
	err[0] = '\0';
	CHECK(principals_user_add(store, "cli", "ana", "listener", "x", 1, err, sizeof(err)) ==
	      -EEXIST);
	CHECK(strstr(err, "exists") != NULL);
	err[0] = '\0';
	CHECK(principals_user_add(store, "cli", "bo b", "editor", "x", 1, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(principals_user_add(store, "cli", "", "editor", "x", 1, err, sizeof(err)) == -EINVAL);
	CHECK(principals_user_add(
		      store, "cli",
		      "a1234567890123456789012345678901234567890123456789012345678901234", "editor",
		      "x", 1, err, sizeof(err)) == -EINVAL);
	CHECK(principals_user_add(store, "cli", "bob", "root", "x", 1, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(principals_user_add(store, "cli", "bob", "anonymous", "x", 1, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(principals_user_add(store, "cli", "bob", "listener", "", 0, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(principals_user_add(store, "cli", "b.o_b@x-y", "listener", "pw-bob", 6, err,
				  sizeof(err)) == 0);
	CHECK(principals_user_list(store, count_user, &n) == 0);
	CHECK(n == 2);
	query("SELECT generation FROM users WHERE name_key = 'ana'", buf, sizeof(buf));
	CHECK_STR(buf, "1");
	CHECK(principals_user_passwd(store, "cli", "ANA", "pw-new", 6, err, sizeof(err)) == 0);
	query("SELECT generation FROM users WHERE name_key = 'ana'", buf, sizeof(buf));
	CHECK_STR(buf, "2");
	query("SELECT name FROM users WHERE name_key = 'ana'", buf, sizeof(buf));
	CHECK_STR(buf, "Ana");
	query("SELECT substr(password, 1, 10) FROM users WHERE name_key = 'ana'", buf, sizeof(buf));
	CHECK_STR(buf, "$argon2id$");
	CHECK(principals_user_passwd(store, "cli", "nobody", "x", 1, err, sizeof(err)) == -ENOENT);
	CHECK(principals_user_remove(store, "cli", "nobody", err, sizeof(err)) == -ENOENT);
	CHECK(principals_user_remove(store, "cli", "b.o_b@x-y", err, sizeof(err)) == 0);
	n = 0;
	CHECK(principals_user_list(store, count_user, &n) == 0);
	CHECK(n == 1);
	query("SELECT group_concat(action || ' ' || object || ' ' || actor, ',') FROM"
	      " (SELECT * FROM audit ORDER BY id)",
	      buf, sizeof(buf));
	CHECK_STR(buf, "user.add Ana cli,user.add b.o_b@x-y cli,user.passwd Ana cli,"
		       "user.remove b.o_b@x-y cli");
	/* Never a password or its hash in the audit trail. */
	query("SELECT count(*) FROM audit WHERE detail LIKE '%pw-%' OR detail LIKE '%argon%'", buf,
	      sizeof(buf));
	CHECK_STR(buf, "0");
}

static void test_keys(void)
{
	struct principal_key_spec store_key = {
		.role = "store", .location = "Paris 1", .name = "till"};
	struct principal_key_spec listener = {.role = "listener"};
	struct principal_key_spec bad = {.role = "store"};
	char err[256] = "", buf[4096], hid[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1];
	char spare[AUTH_KEY_LEN + 1], sql[512];
	struct store_location paris = {.name = "Paris 1",
				       .country = "FR",
				       .timezone = "Europe/Paris",
				       .licence = "interactive"};
	struct store_change ch = {0};
	store_t *cat = NULL;
	int n = 0;

	/* A store key is bound to a location that exists: by name or id. */
	CHECK(principals_key_create(store, "cli", &store_key, key_a, id_a, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "no location \"Paris 1\"") != NULL);
	CHECK(store_open(dir, NULL, &cat, err, sizeof(err)) == 0);
	if (!cat)
		return;
	CHECK(store_location_put(cat, "cli", &paris, &ch, err, sizeof(err)) == 0);
	catalog_id_str(ch.id, paris_id);
	store_close(cat);
	store_key.location = "paris 1";
	CHECK(principals_key_create(store, "cli", &store_key, key_a, id_a, err, sizeof(err)) == 0);
	CHECK(auth_key_parse(key_a, strlen(key_a), hid, hash) == 0);
	CHECK_STR(hid, id_a);
	CHECK(principals_key_create(store, "cli", &listener, key_b, id_b, err, sizeof(err)) == 0);
	CHECK(principals_key_create(store, "cli", &bad, spare, hid, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "--location") != NULL);
	bad.role = "editor";
	bad.location = "Paris";
	CHECK(principals_key_create(store, "cli", &bad, spare, hid, err, sizeof(err)) == -EINVAL);
	bad.role = "superuser";
	CHECK(principals_key_create(store, "cli", &bad, spare, hid, err, sizeof(err)) == -EINVAL);
	bad.role = "store";
	bad.location = "bad\nlocation";
	CHECK(principals_key_create(store, "cli", &bad, spare, hid, err, sizeof(err)) == -EINVAL);
	CHECK(principals_key_list(store, count_key, &n) == 0);
	CHECK(n == 2);
	snprintf(sql, sizeof(sql), "SELECT secret_hash FROM api_keys WHERE id = '%s'", id_a);
	query(sql, buf, sizeof(buf));
	CHECK_STR(buf, hash);
	CHECK(principals_key_revoke(store, "cli", id_b, err, sizeof(err)) == 0);
	CHECK(principals_key_revoke(store, "cli", id_b, err, sizeof(err)) == -EALREADY);
	CHECK(strstr(err, "revoked already") != NULL);
	CHECK(principals_key_revoke(store, "cli", "0000000000000000", err, sizeof(err)) == -ENOENT);
	CHECK(principals_key_revoke(store, "cli", "xyz", err, sizeof(err)) == -EINVAL);
	query("SELECT count(*) FROM audit WHERE action LIKE 'key.%'", buf, sizeof(buf));
	CHECK_STR(buf, "3");
	/* Neither the key nor its secret's hash is in the audit trail. */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audit WHERE detail LIKE '%%%.20s%%' OR detail LIKE "
		 "'%%%.20s%%'",
		 key_a + 24, hash);
	query(sql, buf, sizeof(buf));
	CHECK_STR(buf, "0");
	snprintf(sql, sizeof(sql), "SELECT detail FROM audit WHERE object = '%s'", id_a);
	query(sql, buf, sizeof(buf));
	snprintf(sql, sizeof(sql), "{\"role\":\"store\",\"name\":\"till\",\"location\":\"%s\"}",
		 paris_id);
	CHECK_STR(buf, sql);
}

static void test_first_admin(void)
{
	char pw[AUTH_PW_GENERATED_LEN + 1] = "", buf[256];
	bool created = true;

	/* Users were made already (test_users): no admin appears. */
	CHECK(principals_first_admin(store, pw, &created) == 0);
	CHECK(!created);
	query("SELECT count(*) FROM users WHERE name = 'admin'", buf, sizeof(buf));
	CHECK_STR(buf, "0");
}

/* A fresh catalog: the admin once, then never again, even once removed. */
static void test_first_admin_fresh(void)
{
	char d2[] = "/tmp/chorus-test-principals2-XXXXXX", err[256], pw[AUTH_PW_GENERATED_LEN + 1];
	char cmd[512];
	principals_t *p = NULL;
	bool created = false;

	CHECK(mkdtemp(d2) != NULL);
	CHECK(principals_open(d2, NULL, &p, err, sizeof(err)) == 0);
	if (!p)
		return;
	CHECK(principals_first_admin(p, pw, &created) == 0);
	CHECK(created);
	CHECK(strlen(pw) == AUTH_PW_GENERATED_LEN);
	CHECK(principals_first_admin(p, pw, &created) == 0);
	CHECK(!created);
	CHECK(principals_user_remove(p, "cli", "admin", err, sizeof(err)) == 0);
	CHECK(principals_first_admin(p, pw, &created) == 0);
	CHECK(!created);
	principals_close(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d2);
	CHECK(system(cmd) == 0);
}

static void test_lookups(void)
{
	catalog_reader_t *r = NULL;
	catalog_principals_t *p = NULL;
	struct catalog_key k;
	struct catalog_user u;
	char err[256], hid[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1];
	char wrong[AUTH_HASH_HEX_LEN + 1];

	CHECK(catalog_reader_open(path, &r, err, sizeof(err)) == 0);
	if (!r)
		return;
	CHECK(catalog_principals_open(r, &p, err, sizeof(err)) == 0);
	if (!p) {
		catalog_reader_close(r);
		return;
	}
	CHECK(auth_key_parse(key_a, strlen(key_a), hid, hash) == 0);
	CHECK(catalog_key_find(p, id_a, &k) == 0);
	CHECK(k.role == AUTH_STORE);
	CHECK_STR(k.location, paris_id); /* bound by id */
	CHECK_STR(k.zone, "");
	CHECK_STR(k.secret_hash, hash);
	CHECK(!k.revoked);
	CHECK(catalog_key_check(p, hid, hash, &k) == 0);
	memcpy(wrong, hash, sizeof(wrong));
	wrong[10] = wrong[10] == '0' ? '1' : '0';
	CHECK(catalog_key_check(p, hid, wrong, &k) == -EACCES);
	CHECK(catalog_key_check(p, "0123456789abcdef", hash, &k) == -ENOENT);
	CHECK(auth_key_parse(key_b, strlen(key_b), hid, hash) == 0);
	CHECK(catalog_key_find(p, id_b, &k) == 0);
	CHECK(k.revoked);
	CHECK(k.role == AUTH_LISTENER);
	CHECK(catalog_key_check(p, hid, hash, &k) == -EKEYREVOKED);

	CHECK(catalog_user_find(p, "aNA", &u) == 0);
	CHECK_STR(u.name, "Ana");
	CHECK(u.role == AUTH_EDITOR);
	CHECK(u.generation == 2);
	CHECK(u.id > 0);
	CHECK(auth_password_verify(u.password, "pw-new", 6));
	CHECK(!auth_password_verify(u.password, "pw-ana", 6));
	{
		int64_t id = u.id;
		CHECK(catalog_user_find_id(p, id, &u) == 0);
		CHECK_STR(u.name, "Ana");
		CHECK(catalog_user_find_id(p, id + 1, &u) == -ENOENT);
	}
	CHECK(catalog_user_find(p, "b.o_b@x-y", &u) == -ENOENT);
	CHECK(catalog_user_find(p, "nobody", &u) == -ENOENT);
	/* A revocation committed after the reader opened is seen. */
	CHECK(principals_key_revoke(store, "cli", id_a, err, sizeof(err)) == 0);
	CHECK(catalog_key_find(p, id_a, &k) == 0);
	CHECK(k.revoked);
	catalog_principals_close(p);
	catalog_reader_close(r);
}

int main(void)
{
	char err[256], cmd[512];

	if (!mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	if (principals_open(dir, NULL, &store, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return 2;
	}
	TEST_RUN(test_users);
	TEST_RUN(test_keys);
	TEST_RUN(test_first_admin);
	TEST_RUN(test_first_admin_fresh);
	TEST_RUN(test_lookups);
	principals_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	TEST_EXIT();
}
