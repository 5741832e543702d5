#ifndef CHORUS_STORE_PLAYS_H
#define CHORUS_STORE_PLAYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Plays: what was listened to, where and for how long. On one node the
 * source of truth is DATA_DIR/plays.db (SQLite, WAL, synchronous=FULL), a
 * file of its own so ingest and plays never wait on one write lock. In a
 * cluster the same table is the node's durable queue: rows stay until the
 * shipper has written them to PostgreSQL, then leave it (the `shipped`
 * column of schema 1 is unused).
 *
 * Three parts:
 *   - plays_body_parse: a request body to a validated batch, or a list of
 *     per-item errors. Pure (no I/O, the clock passed in), so it can be
 *     fuzzed and unit-tested alone.
 *   - plays_t: one writer thread owning the write connection. Batches
 *     submitted from any thread are committed together (group commit: one
 *     transaction and one fsync for everything queued); each submitter's
 *     callback runs after the commit returned.
 *   - plays_report: the report queries (per track, artist, album,
 *     location, UTC day or hour, or one line per play), JSON or CSV.
 */

/* ---- one play, and a batch of them ---- */

#define PLAYS_BATCH_MAX 1000
#define PLAYS_EVENT_ID_MAX 128 /* bytes */
#define PLAYS_TEXT_MAX 256     /* location, zone, device: bytes */
#define PLAYS_MS_PLAYED_MAX (24LL * 3600 * 1000)
/* started_at: an offline player catches up within a month; a clock may
 * run ahead by minutes. */
#define PLAYS_MAX_AGE_MS (30LL * 24 * 3600 * 1000)
#define PLAYS_SKEW_MS (10LL * 60 * 1000)
#define PLAYS_ERRORS_MAX 1000 /* per-item errors reported; the rest are counted */

struct play {
	char *event_id; /* never NULL */
	int64_t track_id;
	int64_t started_at_ms; /* UTC, ms since the epoch */
	int64_t ms_played;
	char *location, *zone, *device; /* NULL when absent or null */
	bool offline;
	bool dup; /* the same event_id came earlier in this batch */
};

struct plays_batch {
	struct play *items;
	size_t n;
};

void plays_batch_free(struct plays_batch *b);

struct plays_item_error {
	size_t index;   /* in the request's array (0 for a single object) */
	char field[64]; /* "" for the item as a whole */
	char message[96];
};

struct plays_errors {
	struct plays_item_error *items;
	size_t n, cap;
	size_t dropped; /* errors beyond PLAYS_ERRORS_MAX, not listed */
};

void plays_errors_free(struct plays_errors *e);
/* Appends one error (or counts it as dropped past PLAYS_ERRORS_MAX). */
void plays_errors_add(struct plays_errors *e, size_t index, const char *field, const char *msg);

/*
 * Parses and validates a POST /api/v1/plays body: one play object or an
 * array of 1..PLAYS_BATCH_MAX of them. now_ms is the current time (the
 * upper bound for started_at is now + 1 day). Returns
 *   200  *out holds the batch (free with plays_batch_free); track ids are
 *        well-formed but not checked against the catalog here;
 *   400  the body is not JSON; msg says why;
 *   422  msg says what is wrong; per-item errors (if any) are in *errs.
 * Rules: track_id 16 hex digits; started_at RFC 3339 with a time zone, at
 * most PLAYS_MAX_AGE_MS ago, and the play (started_at + ms_played) over by
 * now + PLAYS_SKEW_MS; ms_played integer 0..24 h; event_id a string
 * of 1..128 bytes; location, zone, device strings of <= 256 bytes or null;
 * offline a boolean; any other field is an error. A repeated event_id in
 * one batch is marked dup (stored and counted once).
 * errs is always initialised (empty unless 422); *out only on 200.
 */
int plays_body_parse(const char *body, size_t len, int64_t now_ms, struct plays_batch *out,
		     struct plays_errors *errs, char *msg, size_t msglen);

/*
 * RFC 3339 date-time ("2024-05-01T12:00:00Z", "...T12:00:00.250+02:00"):
 * 0 with *ms_utc (milliseconds since the epoch, fractions past ms cut), or
 * -EINVAL. A time zone (Z or +-hh:mm) is required; 't', 'z' and a space
 * for 'T' are accepted; second 60 (a leap second) counts as the next one.
 */
int plays_rfc3339_parse(const char *s, size_t len, int64_t *ms_utc);
/* "2024-05-01T10:00:00.250Z": always UTC with milliseconds. out >= 32. */
void plays_rfc3339_format(int64_t ms_utc, char out[32]);

/* ---- the store and its writer ---- */

typedef struct plays plays_t;

/* Opens (creating or upgrading) DATA_DIR/plays.db and starts the writer. */
int plays_open(const char *data_dir, plays_t **out, char *err, size_t errlen);

/*
 * Called on the writer thread once the batch is committed (rc 0, with the
 * counts: accepted = rows new to the store, duplicates = the rest) or could
 * not be (rc < 0, nothing of it stored). Must not block: post to a loop.
 */
typedef void (*plays_done_fn)(void *arg, int rc, int accepted, int duplicates);

/*
 * Queues batch (taken over: the store frees it) for the next commit. Any
 * thread. After plays_close the callback runs at once, on the caller's
 * thread, with -ESHUTDOWN.
 */
void plays_submit(plays_t *p, struct plays_batch *batch, plays_done_fn done, void *arg);

/* Commits what is queued (running its callbacks), stops the writer and
 * closes the database. Later submits fail with -ESHUTDOWN. */
void plays_close(plays_t *p);
/* Frees p; after plays_close, once nothing can submit any more. */
void plays_free(plays_t *p);

/* Counters since open (any thread). */
struct plays_stats {
	uint64_t commits, batches, accepted, duplicates, failed;
};
void plays_get_stats(plays_t *p, struct plays_stats *out);

/*
 * Opens (creating or upgrading) DATA_DIR/plays.db on a connection of the
 * caller's, for the writer, the shipper and reports.
 */
struct sqlite3;
int plays_db_open(const char *data_dir, struct sqlite3 **out, char *err, size_t errlen);
/* Runs sql on such a connection; 0, or -EIO with "plays: WHY" in err. */
int plays_db_exec(struct sqlite3 *db, const char *sql, char *err, size_t errlen);

/* ---- shipping to PostgreSQL (a cluster node) ---- */

/*
 * In a cluster, plays.db is the node's durable queue. The shipper (one
 * thread) copies the oldest rows to PostgreSQL in batches, inserting with
 * ON CONFLICT (event_id) DO NOTHING, and deletes them from the queue only
 * after PostgreSQL committed: a crash between the two ships them again and
 * PostgreSQL keeps one of each. While PostgreSQL is unreachable the queue
 * grows and the node keeps acknowledging plays.
 */
typedef struct plays_shipper plays_shipper_t;

/* node names this node in the rows it ships. */
int plays_shipper_start(const char *data_dir, const char *conninfo, const char *node,
			plays_shipper_t **out, char *err, size_t errlen);

struct plays_ship_stats {
	uint64_t shipped; /* rows PostgreSQL committed (duplicates included) */
	uint64_t batches;
	int64_t queued; /* rows waiting, as of the last look */
	bool connected;
};
void plays_shipper_stats(plays_shipper_t *s, struct plays_ship_stats *out);

/* Ships what it can within timeout_ms (0: nothing more), then stops the
 * thread and frees s. */
void plays_shipper_stop(plays_shipper_t *s, int timeout_ms);

/* ---- reports ---- */

enum plays_group {
	PLAYS_GROUP_NONE, /* one row per play: the census report */
	PLAYS_GROUP_TRACK,
	PLAYS_GROUP_ARTIST,
	PLAYS_GROUP_ALBUM,
	PLAYS_GROUP_LOCATION,
	PLAYS_GROUP_DAY,  /* UTC date of started_at */
	PLAYS_GROUP_HOUR, /* UTC hour of started_at: "2026-12-07T11" */
};

enum plays_format { PLAYS_FORMAT_JSON, PLAYS_FORMAT_CSV };

struct plays_query {
	bool has_from, has_to;
	int64_t from_ms, to_ms; /* started_at in [from, to) */
	enum plays_group group;
	enum plays_format format;
	char location[PLAYS_TEXT_MAX + 1]; /* only this location's plays; "" for all */
};

/*
 * The report's parameters as text (NULL: absent; defaults group=track,
 * format=json). 0, or -EINVAL with a message in err.
 */
int plays_query_parse(const char *from, const char *to, const char *group, const char *format,
		      struct plays_query *q, char *err, size_t errlen);

/* Receives the report in pieces; returns 0, or < 0 to stop it. */
typedef int (*plays_write_fn)(void *ud, const void *p, size_t n);

/*
 * Runs a report on DATA_DIR/plays.db with DATA_DIR/catalog.db attached for
 * names, ISRC, label and durations (read-only use; creates an empty
 * plays.db if there is none), or, with conninfo, on PostgreSQL: the plays
 * every node has shipped. Blocking; any thread.
 *
 * JSON: {"from":T|null,"to":T|null,"group":G,"rows":[{"id","name","plays",
 * "ms_played"}]} (group=none: one row per play with its fields). CSV: a
 * header row, RFC 4180 quoting, CRLF line ends. Grouped rows come by plays
 * (most first), then time played, then id; day and hour rows by time.
 * 0, -EIO (message in err), or the writer's error.
 */
int plays_report(const char *data_dir, const char *conninfo, const struct plays_query *q,
		 plays_write_fn write, void *ud, char *err, size_t errlen);

#endif
