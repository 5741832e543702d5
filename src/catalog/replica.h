#ifndef CHORUS_CATALOG_REPLICA_H
#define CHORUS_CATALOG_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A cluster node's read model: DATA_DIR/catalog.db kept current from
 * PostgreSQL's change feed (sql/pg.c). Reads (API, search, stream
 * manifests) never leave the node; this is the only thing that copies the
 * catalog in.
 *
 * One thread holds a connection that LISTENs on the catalog channel, and on
 * each notification (or every few seconds, or after reconnecting) applies
 * every change numbered above the last one applied: in one PostgreSQL
 * snapshot, in one SQLite transaction that also records the new number, so
 * a crash anywhere leaves the model at a consistent earlier point and the
 * next pass resumes from it. An empty model is filled the same way, from 0
 * (the bootstrap). While PostgreSQL is unreachable the model stays as it
 * was and keeps serving; the thread reconnects with backoff.
 */
typedef struct replica replica_t;

/*
 * Opens db_path (creating the schema) and checks that it may follow this
 * database: a catalog with rows of its own but no replication state (a
 * standalone node's) is refused, so is one that followed another
 * PostgreSQL database. A model never filled is bootstrapped before this
 * returns (retrying while PostgreSQL is unreachable); then the thread is
 * started. 0, or -errno with a message in err.
 */
int replica_start(const char *db_path, const char *conninfo, replica_t **out, char *err,
		  size_t errlen);

struct replica_status {
	int64_t last_seq;     /* the last change applied */
	int64_t lag_ms;       /* 0 when current; else ms since it last was */
	bool connected;       /* holding a live connection to PostgreSQL */
	uint64_t applied;     /* rows applied since start (changes and deletions) */
	int64_t bootstrap_ms; /* how long the bootstrap took (0: none this run) */
};

/* Any thread. */
void replica_status(replica_t *r, struct replica_status *out);

/* The cluster key (peer requests are signed with it), known once the
 * model followed PostgreSQL once. 0 or -ENOENT. Any thread. */
int replica_cluster_key(replica_t *r, uint8_t out[32]);

/*
 * A track's blob the model no longer refers to: the track was deleted, or
 * took a new blob (its file re-ingested). fn(ud, blob, chunks) is called
 * on the replica's thread after the pass that applied it committed, for
 * the node to drop the blob's cached chunks (off the request path); fn
 * must not block for long. Blobs gone while no fn is set are kept (up to
 * a few thousand) and handed to the next one. fn NULL stops the calls:
 * once this returns, the old fn is not running and will not run again
 * (call it so before freeing what ud points to). Any thread.
 */
typedef void (*replica_blob_fn)(void *ud, const char *blob, uint32_t chunks);
void replica_on_blob_gone(replica_t *r, replica_blob_fn fn, void *ud);

/* Stops the thread and frees r. */
void replica_stop(replica_t *r);

#endif
