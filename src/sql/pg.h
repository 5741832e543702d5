#ifndef CHORUS_STORE_PG_H
#define CHORUS_STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * PostgreSQL, the cluster's source of truth: connections and the schema.
 *
 * Every user (the ingest store, the catalog replicator, the plays shipper,
 * reports) holds connections of its own, opened with pg_connect and
 * dropped on any connection-class error (pg_lost): the next call opens a
 * new one, which a multi-host connection string with
 * target_session_attrs=read-write points at the current primary after a
 * Patroni failover. Nothing here retries by itself; callers decide.
 */

/*
 * The schema version this binary writes. pg_connect upgrades an older
 * schema (under an advisory lock, so nodes starting together do it once)
 * and refuses a newer one.
 */
#define PG_SCHEMA_VERSION 7

/* Every writer of catalog rows holds this transaction-level advisory lock
 * (the change triggers take it too), so change sequence numbers are
 * assigned in commit order: a reader that has seen seq N has seen every
 * change numbered below N. */
#define PG_LOCK_CATALOG 7163097744720199681 /* "chorus" 1 */
#define PG_LOCK_SCHEMA 7163097744720199682  /* "chorus" 2 */

/* The LISTEN channel notified by every catalog change. */
#define PG_CHANNEL_CATALOG "chorus_catalog"
/* Notified when a node joins or leaves (cluster/membership.c). */
#define PG_CHANNEL_NODES "chorus_nodes"

/*
 * Connects (connect_timeout 3 s unless conninfo says otherwise), checks
 * that the server is writable, and creates or upgrades the schema. Returns
 * a connection or NULL with a message in err. Blocking.
 */
PGconn *pg_connect(const char *conninfo, char *err, size_t errlen);

/* True when res (or the connection) shows the session is unusable or the
 * server no longer accepts writes (a demoted primary): drop it and
 * reconnect. res may be NULL. */
bool pg_lost(PGconn *c, const PGresult *res);

/* Runs sql (no parameters) expecting no rows or rows; 0, or -EIO with
 * the server's message logged under what. */
int pg_exec(PGconn *c, const char *what, const char *sql);

/* True when res is a successful command or query result. */
bool pg_ok(const PGresult *res);

/* The identity of the cluster's database, made once with the schema:
 * a read model records it, so a data directory is never fed by two
 * different clusters. out >= 33 bytes. 0 or -EIO. */
int pg_cluster_id(PGconn *c, char out[33]);

/* The cluster key (32 bytes), made with the schema: peer requests are
 * signed with it. 0 or -EIO. */
int pg_cluster_key(PGconn *c, uint8_t out[32]);

/* A text column as int64 (0 when NULL). */
int64_t pg_col_i64(const PGresult *res, int row, int col);

/* A conninfo with its password replaced by "***", for messages. */
void pg_describe(const char *conninfo, char *out, size_t outlen);

#endif
