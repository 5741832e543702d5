#ifndef CHORUS_CLUSTER_MEMBERSHIP_H
#define CHORUS_CLUSTER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Who is in the cluster, and which of them answer.
 *
 * Every node (serve --db) writes a row of the PostgreSQL table `nodes`
 * every second: its id, the address peers reach it at, its site, and its
 * figures (cache, replication lag). The same thread reads every row back
 * into an in-memory view. Ages are computed by PostgreSQL (now() -
 * heartbeat_at), so no two hosts' clocks are ever compared; between reads
 * an age grows by this host's monotonic clock.
 *
 * A node is alive when heard from within dead_after_ms, dead otherwise
 * (the rows are read four times a second, so a node killed is dead here
 * dead_after_ms after its last heartbeat, give or take a round trip).
 * A peer whose request failed is suspect at once (membership_suspect),
 * until a request succeeds again (membership_ok) or it answers a direct
 * probe (GET ADDRESS/health), which suspects get every second. While
 * PostgreSQL is unreachable, the view keeps the last list and every peer
 * is probed every second: one that answers is alive, one that does not is
 * dead. A node that stops cleanly marks its row gone, and is dead to the
 * others at once (they are told with NOTIFY).
 *
 * A node's id is 16 hex digits, made at its first start and kept in
 * DATA_DIR/node.id, so a node restarted on the same data directory is the
 * same node.
 */
typedef struct membership membership_t;

enum member_state { MEMBER_ALIVE, MEMBER_SUSPECT, MEMBER_DEAD };

#define MEMBERSHIP_HEARTBEAT_MS 1000
/* How often the rows are read: a peer's age as seen here runs ahead of
 * its true age by up to this much (plus a round trip). */
#define MEMBERSHIP_READ_MS 250
#define MEMBERSHIP_DEAD_AFTER_MS 2000
/* Shorter, and a live peer between two heartbeats would look dead. */
#define MEMBERSHIP_DEAD_AFTER_MIN_MS 1500
#define MEMBERSHIP_PROBE_TIMEOUT_MS 500
/* Rows read (the most recently heard first): the view never holds more. */
#define MEMBERSHIP_MAX 256

struct member {
	char id[17];       /* 16 lower-case hex digits */
	char address[256]; /* the URL peers reach it at, no trailing slash: http://10.0.0.5:8080 */
	char site[64];     /* its data centre; "" when not set */
	int state;         /* enum member_state; self is always MEMBER_ALIVE */
	int64_t heartbeat_age_ms; /* since it was last heard from (heartbeat or, while
				     PostgreSQL is unreachable, probe); -1: never */
	bool self;                /* this node */
};

/* The figures a node publishes with its heartbeat. */
struct member_stats {
	bool known; /* false: none published (yet) */
	int64_t cache_bytes, cache_budget_bytes, cache_chunks, cache_hits, cache_misses,
		cache_origin_reads, cache_origin_bytes, cache_evictions;
	int64_t replication_lag_ms; /* -1: unknown */
};

/* A member with what /api/v1/cluster shows besides. */
struct member_info {
	struct member m;
	int64_t last_heartbeat_ms; /* PostgreSQL's time of its last heartbeat, ms since the
				      epoch; 0: none known, or it stopped cleanly */
	struct member_stats stats;
};

/* Fills out with this node's figures; called on the membership thread once
 * a second, so it must be thread-safe and quick. known is preset to true
 * and replication_lag_ms to -1. */
typedef void (*membership_stats_fn)(void *ud, struct member_stats *out);

struct membership_opts {
	const char *conninfo;      /* libpq connection string */
	const char *data_dir;      /* holds node.id */
	const char *advertise;     /* http[s]://HOST:PORT peers reach this node at */
	const char *site;          /* NULL or "": none */
	int dead_after_ms;         /* 0: MEMBERSHIP_DEAD_AFTER_MS */
	membership_stats_fn stats; /* NULL: none published */
	void *stats_ud;
};

/*
 * Loads this node's id (creating DATA_DIR/node.id, mode 0600, atomically,
 * when there is none) and starts the heartbeat and probe threads. Does not
 * wait for PostgreSQL: until the first read the view holds this node
 * alone. 0, or -errno with a message in err (a bad option, an unreadable
 * or malformed node.id).
 */
int membership_start(const struct membership_opts *o, membership_t **out, char *err, size_t errlen);

/* Copies every known node, this one included, into out (at most max, at
 * most MEMBERSHIP_MAX), sorted by site, address and id; returns how many.
 * Any thread, until membership_free. */
size_t membership_snapshot(membership_t *m, struct member *out, size_t max);

/* The same with the last heartbeat's time and the published figures. */
size_t membership_snapshot_info(membership_t *m, struct member_info *out, size_t max);

/* This node's id (16 hex digits), valid until membership_free. Any thread. */
const char *membership_self_id(membership_t *m);

/* True while the heartbeat thread holds a working connection to
 * PostgreSQL (else states come from direct probes). Any thread. */
bool membership_connected(membership_t *m);

/* A request to peer id failed: it is suspect, and skipped, until it
 * answers again. Unknown ids and this node's own are ignored. Any thread. */
void membership_suspect(membership_t *m, const char *id);

/* A request to peer id succeeded: no longer suspect (nor dead by a failed
 * probe). Any thread. */
void membership_ok(membership_t *m, const char *id);

/*
 * Stops both threads and, when PostgreSQL is reachable, marks this node's
 * row gone (heartbeat_at at the epoch) and notifies the others, who count
 * it dead at once. Blocks up to about a second (more only while a
 * connection attempt is under way). The view stays readable (snapshots
 * from request handlers still running are safe) until membership_free.
 * NULL is a no-op.
 */
void membership_stop(membership_t *m);

/* Frees m, stopping it first if needed. No other call may run or follow.
 * NULL is a no-op. */
void membership_free(membership_t *m);

/* "alive", "suspect" or "dead". */
const char *membership_state_name(int state);

/*
 * This node as o describes it, in out: its id (membership_load_id), the
 * advertised address without trailing slashes, the site; alive, never
 * heard, self. What a standalone node shows of itself. 0, or -errno with
 * err (a bad address or site, no id).
 */
int membership_describe_self(const struct membership_opts *o, struct member *out, char *err,
			     size_t errlen);

/*
 * This node's id from DATA_DIR/node.id, made (16 random hex digits, mode
 * 0600, written aside then linked into place, so two processes starting
 * together agree) when absent. id: 17 bytes. 0 or -errno with err.
 */
int membership_load_id(const char *data_dir, char id[17], char *err, size_t errlen);

/* The default advertised address: SCHEME://HOST:PORT with HOST the listen
 * address, or, when listening on every address (0.0.0.0, *, [::] or
 * none), this machine's first non-loopback IPv4 address (127.0.0.1 when
 * it has none). */
void membership_default_advertise(const char *scheme, const char *listen, int port, char *out,
				  size_t outlen);

#endif
