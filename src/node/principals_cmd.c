/*
 * The principals' commands (see principals_cmd.h). Secrets never pass
 * through argv (which `ps` shows) or the log: a password comes from
 * standard input when it is not a terminal, one line, and is otherwise
 * generated and printed alone on the last line of stdout; a new key is
 * printed once the same way. Only their hashes are stored.
 */
#include "node/principals_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "auth/auth.h"
#include "catalog/db.h"
#include "store/principals.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"

#define ACTOR "cli"

static principals_t *open_store(const char *what, const struct principals_cmd *c)
{
	principals_t *p = NULL;
	char err[512];

	if (!(c->db && *c->db) && fs_mkdir_p(c->data_dir, 0750) < 0) {
		fprintf(stderr, "chorus: %s: cannot create data directory %s: %s\n", what,
			c->data_dir, strerror(errno));
		return NULL;
	}
	if (principals_open(c->data_dir, c->db, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s: %s\n", what, err);
		return NULL;
	}
	return p;
}

/* The password to set: a line of standard input when it is not a
 * terminal (a script, a pipe), else a generated one (*generated true).
 * 0, or -1 (printed). */
static int read_password(const char *what, char pw[AUTH_PW_MAX + 2], size_t *len, bool *generated)
{
	size_t n;

	*generated = false;
	if (isatty(STDIN_FILENO)) {
		auth_password_generate(pw);
		*len = strlen(pw);
		*generated = true;
		return 0;
	}
	if (!fgets(pw, AUTH_PW_MAX + 2, stdin)) {
		fprintf(stderr, "chorus: %s: no password on standard input\n", what);
		return -1;
	}
	n = strlen(pw);
	if (n && pw[n - 1] == '\n')
		pw[--n] = '\0';
	else if (n > AUTH_PW_MAX) {
		fprintf(stderr, "chorus: %s: a password is at most %d bytes\n", what, AUTH_PW_MAX);
		return -1;
	}
	if (n && pw[n - 1] == '\r')
		pw[--n] = '\0';
	if (n == 0) {
		fprintf(stderr, "chorus: %s: the password on standard input is empty\n", what);
		return -1;
	}
	*len = n;
	return 0;
}

/* DATA/admin-password holds the first admin's password until it changes. */
static void forget_admin_password(const char *data_dir, const char *user)
{
	char path[4096];

	if (strcasecmp(user, "admin") != 0)
		return;
	snprintf(path, sizeof(path), "%s/admin-password", data_dir);
	if (unlink(path) == 0)
		printf("removed %s\n", path);
	else if (errno != ENOENT)
		fprintf(stderr, "chorus: cannot remove %s: %s\n", path, strerror(errno));
}

static void format_time(int64_t t, char out[CLOCK_UTC_LEN])
{
	if (t <= 0)
		snprintf(out, CLOCK_UTC_LEN, "-");
	else
		clock_utc(t, out);
}

static int print_user(void *ud, const struct principal_user *u)
{
	char created[CLOCK_UTC_LEN], updated[CLOCK_UTC_LEN];

	format_time(u->created_at, created);
	format_time(u->updated_at, updated);
	printf("%-24s %-9s %-21s %s\n", u->name, auth_role_name(u->role), created, updated);
	return 0;
}

static int set_password(principals_t *p, const struct principals_cmd *c, const char *what, bool add)
{
	char pw[AUTH_PW_MAX + 2], err[512] = "";
	size_t len = 0;
	bool generated;
	int rc;

	if (read_password(what, pw, &len, &generated) < 0)
		return 1;
	rc = add ? principals_user_add(p, ACTOR, c->operand, c->role, pw, len, err, sizeof(err))
		 : principals_user_passwd(p, ACTOR, c->operand, pw, len, err, sizeof(err));
	if (rc < 0) {
		explicit_bzero(pw, sizeof(pw));
		fprintf(stderr, "chorus: %s: %s\n", what, err);
		return 1;
	}
	if (add)
		printf("user %s added as %s\n", c->operand, c->role);
	else
		printf("password of %s changed; its sessions end\n", c->operand);
	if (!add)
		forget_admin_password(c->data_dir, c->operand);
	if (generated)
		printf("password (shown once):\n%s\n", pw);
	explicit_bzero(pw, sizeof(pw));
	return 0;
}

int principals_cmd_user(const struct principals_cmd *c)
{
	const char *v = c->verb;
	char what[64], err[512] = "";
	principals_t *p;
	int status = 1;

	snprintf(what, sizeof(what), "user %s", v);
	if (strcmp(v, "list") == 0 ? c->operand != NULL : c->operand == NULL) {
		fprintf(stderr, "chorus: %s: %s\n", what,
			c->operand ? "takes no NAME" : "which user? (a NAME)");
		return 2;
	}
	if (strcmp(v, "add") == 0 && !c->role) {
		fprintf(stderr, "chorus: user add: --role is required (admin, editor, store or "
				"listener)\n");
		return 2;
	}
	if (c->location || c->zone || c->name || (c->role && strcmp(v, "add") != 0)) {
		fprintf(stderr,
			"chorus: %s: unexpected option (--role only with add; --location,"
			" --zone and --name are for keys)\n",
			what);
		return 2;
	}
	if (strcmp(v, "add") && strcmp(v, "list") && strcmp(v, "passwd") && strcmp(v, "remove")) {
		fprintf(stderr,
			"chorus: user: unknown subcommand \"%s\" (add, list, passwd, "
			"remove)\n",
			v);
		return 2;
	}
	if (!(p = open_store(what, c)))
		return 1;
	if (strcmp(v, "add") == 0 || strcmp(v, "passwd") == 0) {
		status = set_password(p, c, what, strcmp(v, "add") == 0);
	} else if (strcmp(v, "remove") == 0) {
		if (principals_user_remove(p, ACTOR, c->operand, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: %s: %s\n", what, err);
		} else {
			printf("user %s removed\n", c->operand);
			forget_admin_password(c->data_dir, c->operand);
			status = 0;
		}
	} else {
		printf("%-24s %-9s %-21s %s\n", "NAME", "ROLE", "CREATED", "UPDATED");
		if (principals_user_list(p, print_user, NULL) < 0)
			fprintf(stderr, "chorus: user list: cannot read the users (see above)\n");
		else
			status = 0;
	}
	principals_close(p);
	return status;
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int print_key(void *ud, const struct principal_key *k)
{
	char created[CLOCK_UTC_LEN], revoked[CLOCK_UTC_LEN];

	format_time(k->created_at, created);
	format_time(k->revoked_at, revoked);
	printf("%-16s %-9s %-16s %-10s %-16s %-21s %-21s %s\n", k->id, auth_role_name(k->role),
	       or_dash(k->location), or_dash(k->zone), or_dash(k->name), created,
	       k->revoked_at ? revoked : "-", or_dash(k->created_by));
	return 0;
}

int principals_cmd_key(const struct principals_cmd *c)
{
	const char *v = c->verb;
	char what[64], err[512] = "";
	principals_t *p;
	int status = 1;

	snprintf(what, sizeof(what), "key %s", v);
	if (strcmp(v, "create") && strcmp(v, "list") && strcmp(v, "revoke")) {
		fprintf(stderr, "chorus: key: unknown subcommand \"%s\" (create, list, revoke)\n",
			v);
		return 2;
	}
	if (strcmp(v, "revoke") == 0 ? c->operand == NULL : c->operand != NULL) {
		fprintf(stderr, "chorus: %s: %s\n", what,
			c->operand ? "unexpected argument" : "which key? (its ID)");
		return 2;
	}
	if (strcmp(v, "create") == 0 && !c->role) {
		fprintf(stderr, "chorus: key create: --role is required (admin, editor, store or "
				"listener)\n");
		return 2;
	}
	if (strcmp(v, "create") != 0 && (c->role || c->location || c->zone || c->name)) {
		fprintf(stderr,
			"chorus: %s: --role, --location, --zone and --name are for create\n", what);
		return 2;
	}
	if (!(p = open_store(what, c)))
		return 1;
	if (strcmp(v, "create") == 0) {
		struct principal_key_spec s = {
			.role = c->role, .name = c->name, .location = c->location, .zone = c->zone};
		char key[AUTH_KEY_LEN + 1], id[AUTH_KEY_ID_LEN + 1];

		if (principals_key_create(p, ACTOR, &s, key, id, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: key create: %s\n", err);
		} else {
			printf("key %s created (%s%s%s); the key, shown once:\n%s\n", id, c->role,
			       c->location ? ", location " : "", c->location ? c->location : "",
			       key);
			status = 0;
		}
		explicit_bzero(key, sizeof(key));
	} else if (strcmp(v, "revoke") == 0) {
		if (principals_key_revoke(p, ACTOR, c->operand, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: key revoke: %s\n", err);
		} else {
			printf("key %s revoked\n", c->operand);
			status = 0;
		}
	} else {
		printf("%-16s %-9s %-16s %-10s %-16s %-21s %-21s %s\n", "ID", "ROLE", "LOCATION",
		       "ZONE", "NAME", "CREATED", "REVOKED", "CREATED_BY");
		if (principals_key_list(p, print_key, NULL) < 0)
			fprintf(stderr, "chorus: key list: cannot read the keys (see above)\n");
		else
			status = 0;
	}
	principals_close(p);
	return status;
}

/* True when the read model holds a user already: a cluster node then has
 * nothing to ask PostgreSQL at its start. */
static bool model_has_users(const char *data_dir)
{
	char path[4096], err[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool any = false;

	snprintf(path, sizeof(path), "%s/catalog.db", data_dir);
	if (catalog_db_open(path, false, &db, err, sizeof(err)) < 0)
		return false;
	if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM users)", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		any = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return any;
}

int principals_first_start(const char *data_dir, const char *db)
{
	char pw[AUTH_PW_GENERATED_LEN + 1], path[4096], line[AUTH_PW_GENERATED_LEN + 2], err[512];
	principals_t *p = NULL;
	bool created = false;
	int rc;

	/* A cluster node restarted while PostgreSQL is down must still
	 * start: its read model shows the users it needs; and a node that
	 * cannot reach PostgreSQL now cannot be the one that made its schema
	 * (the replica's bootstrap just did, or found it made). */
	if (db && *db && model_has_users(data_dir))
		return 0;
	if (principals_open(data_dir, db, &p, err, sizeof(err)) < 0) {
		if (db && *db) {
			log_warn("serve: cannot check for the first admin user: %s", err);
			return 0;
		}
		fprintf(stderr, "chorus: %s\n", err);
		return -1;
	}
	rc = principals_first_admin(p, pw, &created);
	principals_close(p);
	if (rc < 0 && db && *db) {
		log_warn("serve: cannot check for the first admin user (see above)");
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "chorus: cannot make the first admin user (see above)\n");
		return -1;
	}
	if (!created)
		return 0;
	snprintf(path, sizeof(path), "%s/admin-password", data_dir);
	snprintf(line, sizeof(line), "%s\n", pw);
	if ((rc = fs_write_atomic(path, NULL, line, strlen(line), 0600)) < 0)
		log_warn("serve: cannot write %s: %s (the password is printed once, below)", path,
			 strerror(-rc));
	else
		log_info("serve: made the admin user; its one-time password is in %s", path);
	printf("admin password: %s\n", pw);
	fflush(stdout);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(line, sizeof(line));
	return 0;
}
