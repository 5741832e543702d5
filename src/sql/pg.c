/*
 * PostgreSQL connections and the cluster schema.
 *
 * The catalog tables are those of the SQLite catalog, from the one
 * definition in sql/schema.c, plus a `seq` on each row of the feed tables:
 * the change feed. A BEFORE trigger
 * stamps every inserted or updated row with the next value of catalog_seq
 * and an AFTER DELETE trigger records a tombstone in `deletions`, so every
 * change, deletions included, has a number; a statement trigger notifies
 * PG_CHANNEL_CATALOG. The triggers take PG_LOCK_CATALOG before numbering,
 * so numbers are handed out in commit order whoever writes (chorus or a
 * person with psql), which is what lets a replica ask for "everything
 * after N" and never miss a change committed late with a smaller number.
 */
#include "sql/pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/seal.h"
#include "sql/schema.h"
#include "util/log.h"
#include "util/text.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Version 1 beside the catalog tables (sql/schema.c, with the seq
 * column on the feed tables): the change feed's sequence and tombstones,
 * every node's plays, and the trigger functions. */
static const char schema_v1[] =
	"CREATE SEQUENCE catalog_seq;"
	"CREATE TABLE deletions ("
	"  seq bigint PRIMARY KEY,"
	"  tbl text NOT NULL,"
	"  id bigint NOT NULL);"
	/* Plays from every node; event_id makes shipping idempotent. */
	"CREATE TABLE plays ("
	"  event_id text PRIMARY KEY,"
	"  track_id bigint NOT NULL,"
	"  started_at bigint NOT NULL,"
	"  ms_played bigint NOT NULL,"
	"  location text,"
	"  zone text,"
	"  device text,"
	"  offline boolean NOT NULL,"
	"  received_at bigint NOT NULL,"
	"  node text NOT NULL);"
	"CREATE INDEX plays_started ON plays(started_at);"
	"CREATE FUNCTION catalog_stamp() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  PERFORM pg_advisory_xact_lock(" STR(
		PG_LOCK_CATALOG) ");"
				 "  NEW.seq := nextval('catalog_seq');"
				 "  RETURN NEW;"
				 " END $$;"
				 "CREATE FUNCTION catalog_tombstone() RETURNS trigger LANGUAGE "
				 "plpgsql AS $$"
				 " BEGIN"
				 "  PERFORM pg_advisory_xact_lock(" STR(
					 PG_LOCK_CATALOG) ");"
							  "  INSERT INTO deletions (seq, tbl, id) "
							  "VALUES (nextval('catalog_seq'), "
							  "TG_TABLE_NAME,"
							  "    (to_jsonb(OLD) ->> "
							  "TG_ARGV[0])::bigint);"
							  "  RETURN OLD;"
							  " END $$;"
							  "CREATE FUNCTION catalog_notify() "
							  "RETURNS trigger LANGUAGE plpgsql AS $$"
							  " BEGIN"
							  "  PERFORM pg_notify('" PG_CHANNEL_CATALOG
							  "', '');"
							  "  RETURN NULL;"
							  " END $$;";

/* Cluster membership (cluster/membership.c): one row per node, its
 * heartbeat stamped with the server's clock, so ages are judged by one
 * clock whatever the nodes' own say. */
static const char schema_v2[] = "CREATE TABLE nodes ("
				"  id text PRIMARY KEY,"
				"  address text NOT NULL,"
				"  site text NOT NULL,"
				"  started_at bigint NOT NULL,"
				"  heartbeat_at timestamptz NOT NULL,"
				"  stats jsonb);";

/* Version 3: the principals (sql/schema.c's second set), and the trigger
 * that keeps API keys from being deleted: a key is revoked, and the
 * revocation, an update, reaches every node. */
static const char schema_v3[] =
	"CREATE FUNCTION catalog_keep() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  RAISE EXCEPTION 'rows of % are never deleted (revoke a key instead)', TG_TABLE_NAME;"
	" END $$;";

bool pg_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE;
}

bool pg_lost(PGconn *c, const PGresult *res)
{
	const char *state;

	if (!c || PQstatus(c) != CONNECTION_OK)
		return true;
	if (!res)
		return false;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (!state)
		return PQresultStatus(res) == PGRES_FATAL_ERROR && PQstatus(c) != CONNECTION_OK;
	/* 08: connection exceptions (but 08P01, a protocol violation, is a
	 * bug to report, not a reason to reconnect); 57P0x: the server is
	 * shutting down; 25006: read-only transaction, the primary was
	 * demoted under us. */
	return (strncmp(state, "08", 2) == 0 && strcmp(state, "08P01") != 0) ||
	       strncmp(state, "57P0", 4) == 0 || strcmp(state, "25006") == 0;
}

int pg_exec(PGconn *c, const char *what, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int rc = 0;

	if (!pg_ok(res)) {
		log_error("postgres: %s: %s", what,
			  res ? PQresultErrorMessage(res) : PQerrorMessage(c));
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

int64_t pg_col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void pg_describe(const char *conninfo, char *out, size_t outlen)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	size_t n = 0;

	if (!opts) {
		snprintf(out, outlen, "(unparsable connection string)");
		return;
	}
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword && n < outlen; o++) {
		if (!o->val || !*o->val)
			continue;
		bool secret = strcmp(o->keyword, "password") == 0;
		n += (size_t)snprintf(out + n, outlen - n, "%s%s=%s", n ? " " : "", o->keyword,
				      secret ? "***" : o->val);
	}
	PQconninfoFree(opts);
}

/*
 * One set of sql/schema.c's tables with their indexes, then extra (the
 * version's own statements: the trigger functions in version 1), then the
 * change feed's triggers on the set's feed tables: every row stamped,
 * every deletion kept. A feed table keyed by text (api_keys) cannot have
 * tombstones (deletions.id is a bigint): its rows are never deleted, and
 * a trigger refuses a DELETE rather than let one go unreplicated.
 */
static int create_set(PGconn *c, enum sql_set set, const char *extra, const char *what)
{
	char *tables = sql_schema_tables(SQL_PG, set), *indexes = sql_schema_indexes(SQL_PG, set);
	char sql[1024];
	/* A set may have no index (an empty query is an error to libpq). */
	bool ok = pg_exec(c, what, tables) == 0 && (!*indexes || pg_exec(c, what, indexes) == 0) &&
		  (!extra || !*extra || pg_exec(c, what, extra) == 0);

	free(tables);
	free(indexes);
	for (size_t i = 0; ok && i < sql_catalog_ntables; i++) {
		const struct sql_table *t = &sql_catalog_tables[i];
		const struct sql_column *key = NULL;

		if (!t->feed_key || t->set != set)
			continue;
		for (int k = 0; k < t->ncols; k++)
			if (strcmp(t->cols[k].name, t->feed_key) == 0)
				key = &t->cols[k];
		snprintf(sql, sizeof(sql),
			 "CREATE TRIGGER %1$s_stamp BEFORE INSERT OR UPDATE ON %1$s"
			 " FOR EACH ROW EXECUTE FUNCTION catalog_stamp();"
			 "CREATE TRIGGER %1$s_notify AFTER INSERT OR UPDATE OR DELETE ON %1$s"
			 " FOR EACH STATEMENT EXECUTE FUNCTION catalog_notify();",
			 t->name);
		ok = pg_exec(c, what, sql) == 0;
		if (key && key->type == SQL_TEXT)
			snprintf(sql, sizeof(sql),
				 "CREATE TRIGGER %1$s_keep BEFORE DELETE ON %1$s"
				 " FOR EACH ROW EXECUTE FUNCTION catalog_keep();",
				 t->name);
		else
			snprintf(sql, sizeof(sql),
				 "CREATE TRIGGER %1$s_tombstone AFTER DELETE ON %1$s"
				 " FOR EACH ROW EXECUTE FUNCTION catalog_tombstone('%2$s');",
				 t->name, t->feed_key);
		ok = ok && pg_exec(c, what, sql) == 0;
	}
	return ok ? 0 : -EIO;
}

/* True when the schema is already this binary's: every connection checks,
 * and only a database behind takes the lock and the DDL path. */
static bool schema_current(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT version FROM chorus_schema"
				  " WHERE to_regclass('chorus_schema') IS NOT NULL");
	bool current =
		pg_ok(res) && PQntuples(res) == 1 && pg_col_i64(res, 0, 0) == PG_SCHEMA_VERSION;

	PQclear(res);
	return current;
}

/* Creates or upgrades the schema in one transaction. */
static int migrate(PGconn *c, char *err, size_t errlen)
{
	PGresult *res;
	char sql[512];
	int version = 0, rc = -EIO;

	if (schema_current(c))
		return 0;
	if (pg_exec(c, "schema", "BEGIN") < 0)
		goto fail;
	if (pg_exec(c, "schema", "SELECT pg_advisory_xact_lock(" STR(PG_LOCK_SCHEMA) ")") < 0 ||
	    pg_exec(c, "schema",
		    "SET LOCAL client_min_messages = warning;"
		    "CREATE TABLE IF NOT EXISTS chorus_schema (version integer NOT NULL,"
		    " cluster_id text NOT NULL, cluster_key bytea NOT NULL)") < 0)
		goto fail;
	res = PQexec(c, "SELECT version FROM chorus_schema");
	if (!pg_ok(res)) {
		PQclear(res);
		goto fail;
	}
	if (PQntuples(res) > 0)
		version = (int)pg_col_i64(res, 0, 0);
	PQclear(res);
	if (version > PG_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "the database's chorus schema is version %d, newer than this chorus "
			 "understands (%d): upgrade chorus",
			 version, PG_SCHEMA_VERSION);
		pg_exec(c, "schema", "ROLLBACK");
		return -EPROTO;
	}
	if (version < 1) {
		unsigned char r[16], k[32];
		char id[33], key[65];

		if (create_set(c, SQL_SET_CATALOG, schema_v1, "schema v1") < 0)
			goto fail;
		/* The cluster's identity, and the key peers sign requests with
		 * (every node reads it here: they trust this database with the
		 * tracks' keys already). */
		crypto_random(r, sizeof(r));
		text_hex(r, sizeof(r), id);
		crypto_random(k, sizeof(k));
		text_hex(k, sizeof(k), key);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO chorus_schema VALUES (0, '%s', decode('%s', 'hex'))", id,
			 key);
		explicit_bzero(k, sizeof(k));
		explicit_bzero(key, sizeof(key));
		if (pg_exec(c, "schema", sql) < 0)
			goto fail;
	}
	if (version < 2 && pg_exec(c, "schema v2", schema_v2) < 0)
		goto fail;
	if (version < 3 && create_set(c, SQL_SET_PRINCIPALS, schema_v3, "schema v3") < 0)
		goto fail;
	/* Version 4: the record of ingest runs (sql/schema.c's third set),
	 * feed tables keyed by bigint like the catalog's. */
	if (version < 4 && create_set(c, SQL_SET_INGESTS, NULL, "schema v4") < 0)
		goto fail;
	/* Version 5: resumable uploads (the fourth set), no feed tables. */
	if (version < 5 && create_set(c, SQL_SET_UPLOADS, NULL, "schema v5") < 0)
		goto fail;
	/* Version 6: catalog editing (the fifth set): the deleted tracks'
	 * tombstones, and the columns it adds to tracks. */
	if (version < 6) {
		char *cols = sql_schema_add_columns(SQL_PG, SQL_SET_EDITS);
		int set_rc = create_set(c, SQL_SET_EDITS, cols, "schema v6");

		free(cols);
		if (set_rc < 0)
			goto fail;
	}
	/* Version 7: the stores (the sixth set), feed tables every node's
	 * read model holds, so a device's queue needs no PostgreSQL. */
	if (version < 7 && create_set(c, SQL_SET_STORES, NULL, "schema v7") < 0)
		goto fail;
	if (version < PG_SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "UPDATE chorus_schema SET version = %d",
			 PG_SCHEMA_VERSION);
		if (pg_exec(c, "schema", sql) < 0)
			goto fail;
		log_info("postgres: schema upgraded from version %d to %d", version,
			 PG_SCHEMA_VERSION);
	}
	if (pg_exec(c, "schema", "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create the chorus schema: %s", PQerrorMessage(c));
	pg_exec(c, "schema", "ROLLBACK");
	return rc;
}

/* Server notices ("relation already exists, skipping") are not errors;
 * libpq would print them on stderr. */
static void on_notice(void *arg, const char *message)
{
	log_debug("postgres: %s", message);
}

PGconn *pg_connect(const char *conninfo, char *err, size_t errlen)
{
	/* Keywords are applied in order and dbname expands conninfo: the
	 * defaults come first so that conninfo overrides them. */
	static const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
					   NULL};
	const char *vals[] = {"3", "chorus", conninfo, NULL};
	PGconn *c;
	char where[512];
	PGresult *res;

	c = PQconnectdbParams(keys, vals, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		pg_describe(conninfo, where, sizeof(where));
		snprintf(err, errlen, "cannot connect to PostgreSQL (%s): %s", where,
			 c ? PQerrorMessage(c) : "out of memory");
		/* libpq's messages end with a newline. */
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, on_notice, NULL);
	/* A standby accepts connections but not writes: chorus needs the
	 * primary (target_session_attrs=read-write finds it among hosts). */
	res = PQexec(c, "SELECT pg_is_in_recovery()");
	if (pg_ok(res) && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		pg_describe(conninfo, where, sizeof(where));
		snprintf(err, errlen,
			 "PostgreSQL (%s) is a read-only standby; list every host and add"
			 " target_session_attrs=read-write",
			 where);
		PQclear(res);
		PQfinish(c);
		return NULL;
	}
	PQclear(res);
	if (migrate(c, err, errlen) < 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

int pg_cluster_key(PGconn *c, uint8_t out[32])
{
	PGresult *res = PQexecParams(c, "SELECT cluster_key FROM chorus_schema", 0, NULL, NULL,
				     NULL, NULL, 1);
	int rc = -EIO;

	if (pg_ok(res) && PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 32) {
		memcpy(out, PQgetvalue(res, 0, 0), 32);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

int pg_cluster_id(PGconn *c, char out[33])
{
	PGresult *res = PQexec(c, "SELECT cluster_id FROM chorus_schema");
	int rc = -EIO;

	if (pg_ok(res) && PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 32) {
		memcpy(out, PQgetvalue(res, 0, 0), 33);
		rc = 0;
	}
	PQclear(res);
	return rc;
}
