#ifndef CHORUS_STORE_PRINCIPALS_H
#define CHORUS_STORE_PRINCIPALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

/*
 * Users and API keys in the catalog's source of truth: DATA_DIR/catalog.db
 * on one node, PostgreSQL in a cluster (the rules once, over sql/sql.h, as
 * store/store.c). Every change is one write transaction with its audit row
 * (audit: at, actor, action, object, detail as JSON, never a secret), so a
 * change without its audit row cannot commit. users and api_keys are
 * change-feed tables: every node's read model gets them (catalog/replica.c),
 * and the lookups that authenticate a request read there
 * (catalog/principals.h).
 *
 * Errors, with a sentence for a person in err: -EINVAL (a malformed name,
 * role, location or password; a location for a role other than store, or
 * none for store), -EEXIST (a user of that name, case folded), -ENOENT (no
 * such user or key), -EALREADY (the key is revoked already), -EIO.
 * Calls are serialized (one connection, one call at a time): any thread
 * may call, a node's API handlers do so from its worker pool.
 */
typedef struct principals principals_t;

#define PRINCIPAL_NAME_MAX 64   /* user names: [A-Za-z0-9._@-] */
#define PRINCIPAL_LABEL_MAX 128 /* key names, locations, zones: UTF-8, no controls */

/* PostgreSQL when conninfo is set, else DATA_DIR/catalog.db (created or
 * upgraded). 0, or -errno with a message in err. */
int principals_open(const char *data_dir, const char *conninfo, principals_t **out, char *err,
		    size_t errlen);
void principals_close(principals_t *p);

/* True when name is a valid user name (1-64 of [A-Za-z0-9._@-]). */
bool principals_name_ok(const char *name);

struct principal_user {
	int64_t id;
	char name[PRINCIPAL_NAME_MAX + 1];
	enum auth_role role;
	int64_t generation;
	int64_t created_at, updated_at; /* Unix seconds */
};

struct principal_key {
	char id[AUTH_KEY_ID_LEN + 1];
	char name[PRINCIPAL_LABEL_MAX + 1]; /* "" for none */
	enum auth_role role;
	char location[PRINCIPAL_LABEL_MAX + 1]; /* "" for none */
	char zone[PRINCIPAL_LABEL_MAX + 1];     /* "" for none */
	int64_t created_at;
	int64_t revoked_at; /* 0 while valid */
	char created_by[PRINCIPAL_NAME_MAX + 1];
};

/* actor names who asks, for the audit: a user name, a key id, "cli". */

/* Adds a user with password pw (len bytes, hashed here with Argon2id). */
int principals_user_add(principals_t *p, const char *actor, const char *name, const char *role,
			const char *pw, size_t len, char *err, size_t errlen);
/* A new password; the user's generation grows (every session ends). */
int principals_user_passwd(principals_t *p, const char *actor, const char *name, const char *pw,
			   size_t len, char *err, size_t errlen);
/* Deletes the user (the change feed carries the deletion to every node). */
int principals_user_remove(principals_t *p, const char *actor, const char *name, char *err,
			   size_t errlen);
/* Calls fn for each user by name; fn's non-zero result stops and is
 * returned. */
int principals_user_list(principals_t *p, int (*fn)(void *ud, const struct principal_user *u),
			 void *ud);

/* What a new key is for: role is a role's name; location for role store
 * only (and required), zone optional with it; name an optional label. */
struct principal_key_spec {
	const char *role, *name, *location, *zone;
};

/* Makes a key (auth_key_make) and stores its id and the hash of its
 * secret. key receives the whole key, to be shown once: it is stored
 * nowhere. */
int principals_key_create(principals_t *p, const char *actor, const struct principal_key_spec *s,
			  char key[AUTH_KEY_LEN + 1], char id[AUTH_KEY_ID_LEN + 1], char *err,
			  size_t errlen);
int principals_key_revoke(principals_t *p, const char *actor, const char *id, char *err,
			  size_t errlen);
/* Keys by creation time, then id; as principals_user_list. */
int principals_key_list(principals_t *p, int (*fn)(void *ud, const struct principal_key *k),
			void *ud);

/* One row of the audit trail; detail is its JSON object or NULL, valid
 * during the callback only. */
struct principal_audit {
	int64_t id, at;
	char actor[PRINCIPAL_NAME_MAX + 1];
	char action[32];
	char object[PRINCIPAL_LABEL_MAX + 1];
	const char *detail;
};

/* An audit row for an action outside these tables (a node drained, a
 * join token made); detail a JSON object or NULL. 0 or -EIO. */
int principals_audit_add(principals_t *p, const char *actor, const char *action, const char *object,
			 const char *detail);

/* The newest limit rows with id < before (before <= 0: from the newest),
 * newest first; as principals_user_list. */
/* The same row written inside a caller's own write transaction on db
 * (sql/sql.h), so that a change of another store (a catalog edit,
 * store/edit.c) commits with its audit row or not at all. */
struct sql;
int principals_audit_in(struct sql *db, const char *actor, const char *action, const char *object,
			const char *detail);
int principals_audit_list(principals_t *p, int64_t before, int limit,
			  int (*fn)(void *ud, const struct principal_audit *a), void *ud);

/*
 * The first start: when no user was ever made (no users, and no user.*
 * row in the audit trail, so removing every user later does not bring an
 * admin back), adds "admin" with a generated password, copied to pw with
 * *created true. One write transaction, serialized with every other writer
 * (PostgreSQL's catalog lock), so of nodes starting together on a new
 * database exactly one creates it. 0 or -EIO.
 */
int principals_first_admin(principals_t *p, char pw[AUTH_PW_GENERATED_LEN + 1], bool *created);

#endif
