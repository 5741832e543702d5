#ifndef CHORUS_CATALOG_PRINCIPALS_H
#define CHORUS_CATALOG_PRINCIPALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "catalog/read.h"

/*
 * Who a credential belongs to, from the node's read model (the users and
 * api_keys rows store/principals.c writes, replicated in a cluster): no
 * PostgreSQL round trip, so a node authenticates while PostgreSQL is down.
 *
 * A lookup set is opened on a reader and shares its connection and its
 * thread (one per event loop); close it before the reader. Each call is
 * one statement, so it reads one consistent row. Calls return 0, -ENOENT
 * (no such key or user) or -EIO (logged).
 */
typedef struct catalog_principals catalog_principals_t;

int catalog_principals_open(catalog_reader_t *r, catalog_principals_t **out, char *err,
			    size_t errlen);
void catalog_principals_close(catalog_principals_t *p);

#define CATALOG_LABEL_MAX 128

struct catalog_key {
	enum auth_role role;
	char location[CATALOG_LABEL_MAX + 1]; /* "" for none */
	char zone[CATALOG_LABEL_MAX + 1];     /* "" for none */
	char secret_hash[AUTH_HASH_HEX_LEN + 1];
	bool revoked;
};

/* The key whose id is the 16 hex digits id. */
int catalog_key_find(catalog_principals_t *p, const char *id, struct catalog_key *out);

/*
 * An API key as presented (auth_key_parse's id and hash): 0 with *out
 * filled when the key exists, is not revoked and its secret's hash
 * matches (compared in constant time); -ENOENT unknown id, -EACCES wrong
 * secret, -EKEYREVOKED revoked (checked after the secret, so a revoked
 * key's holder learns nothing a guesser does not), -EIO.
 */
int catalog_key_check(catalog_principals_t *p, const char *id, const char *hash,
		      struct catalog_key *out);

struct catalog_user {
	int64_t id;
	char name[65];
	enum auth_role role;
	char password[AUTH_PW_ENCODED_MAX]; /* Argon2id encoded */
	int64_t generation;
};

/* By name, case folded as the store folds it ("Admin" finds "admin"). */
int catalog_user_find(catalog_principals_t *p, const char *name, struct catalog_user *out);
/* By id: a session cookie names the id and the generation. */
int catalog_user_find_id(catalog_principals_t *p, int64_t id, struct catalog_user *out);

#endif
