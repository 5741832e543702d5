#ifndef CHORUS_NODE_PRINCIPALS_CMD_H
#define CHORUS_NODE_PRINCIPALS_CMD_H

#include <stdbool.h>

/*
 * `chorus user ...` and `chorus key ...` (chorus.c parses the arguments),
 * and the admin a node makes at its first start. In node/: the commands
 * join the principals' store (store/) to the terminal and to the data
 * directory's admin-password file, as serve joins the subsystems.
 */
struct principals_cmd {
	const char *data_dir;
	const char *db;      /* PostgreSQL conninfo, or NULL: DATA/catalog.db */
	const char *verb;    /* add, list, passwd, remove / create, list, revoke */
	const char *operand; /* NAME or ID, or NULL */
	const char *role, *location, *zone, *name;
};

/* Each returns the exit status: 0, 1 (refused or failed, with "chorus:
 * user add: why" on stderr), 2 (bad usage). */
int principals_cmd_user(const struct principals_cmd *c);
int principals_cmd_key(const struct principals_cmd *c);

/*
 * At `chorus serve`'s start, with the catalog (or read model) open: when
 * no user was ever made, adds "admin" with a one-time password, prints
 * "admin password: PW" on stdout and writes PW to DATA/admin-password
 * (mode 0600), which `chorus user passwd admin` removes. Of nodes starting
 * together on one database, exactly one makes it. 0, or -1 (printed).
 */
int principals_first_start(const char *data_dir, const char *db);

#endif
