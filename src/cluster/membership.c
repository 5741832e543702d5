/*
 * Cluster membership (see membership.h).
 *
 * Two threads share the view under one mutex. The heartbeat thread holds
 * its own PostgreSQL connection: once a second it upserts this node's row,
 * four times a second it reads every row back (so that the age of a live
 * peer, as seen here, stays well below the dead interval: it is at most a
 * heartbeat interval plus a read interval), and in between it sleeps on the connection's
 * socket, LISTENing, so a node joining or leaving (which NOTIFY) is seen at
 * once rather than at the next read. Queries have a deadline (half the dead
 * interval): a server that stops answering without closing the connection
 * is noticed as quickly as one that is gone.
 *
 * The probe thread asks peers directly, with libcurl's multi interface so
 * that every peer of a round is asked at once and a round takes at most
 * the probe timeout. While PostgreSQL answers it probes only suspects
 * (a suspect is skipped by the peer code, so nothing else would ever clear
 * it); when the heartbeat thread loses PostgreSQL it wakes the prober at
 * once and every peer is probed each second, before the last heartbeats
 * read age past the dead interval.
 *
 * The view stores for each node the local monotonic time it was last heard
 * from: PostgreSQL's age of its heartbeat subtracted from the time the
 * read was sent (so ages err on the old side by the round trip), or the
 * time a probe answered. While PostgreSQL answers its rows are the
 * authority and replace the probes' word; rows that disappear (an operator
 * deleted them) leave the view.
 *
 * One process per id: the upsert only takes over a row written by another
 * incarnation once that one is dead, so a copied data directory shows up as
 * a warning instead of two nodes fighting over one row.
 *
 * The published figures are a jsonb object, {"cache":{...},
 * "replication_lag_ms":N}, written and read with jansson.
 */
#include "cluster/membership.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/http_client.h"
#include "crypto/seal.h"
#include "http/listen.h"
#include "sql/pg.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/text.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct entry {
	struct member_info info;
	int64_t heard;   /* monotonic ms it was last heard from; 0: never */
	bool gone;       /* its row says it stopped cleanly */
	bool suspect;    /* a request to it failed */
	bool unanswered; /* a probe failed while PostgreSQL was unreachable */
	int logged;      /* the state last logged; -1: none yet */
};

struct membership {
	char id[17];
	char address[256];
	char site[64];
	char *conninfo;
	int dead_after_ms, query_ms;
	int64_t started_at; /* wall clock ms: tells this process's row from another's */
	membership_stats_fn stats;
	void *stats_ud;

	int probe_ms; /* between probe rounds */
	pthread_t beat_thread, probe_thread;
	bool beat_running, probe_running;
	int stop_pipe[2];

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t wake;  /* the prober's: stopping, or PostgreSQL lost */
	bool stopping, probe_now, pg_up;
	struct entry *v;
	size_t n;
};

static const char upsert_sql[] =
	"INSERT INTO nodes (id, address, site, started_at, heartbeat_at, stats)"
	" VALUES ($1, $2, $3, $4::bigint, now(), $5::jsonb)"
	" ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, site = EXCLUDED.site,"
	"  started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,"
	"  stats = EXCLUDED.stats"
	" WHERE nodes.started_at = EXCLUDED.started_at"
	"  OR nodes.heartbeat_at < now() - $6::bigint * interval '1 millisecond'";

static const char read_sql[] =
	"SELECT id, address, site,"
	" greatest((extract(epoch FROM now() - heartbeat_at) * 1000)::bigint, 0),"
	" (extract(epoch FROM heartbeat_at) * 1000)::bigint, stats::text"
	" FROM nodes ORDER BY heartbeat_at DESC, id LIMIT " STR(MEMBERSHIP_MAX);

const char *membership_state_name(int state)
{
	switch (state) {
	case MEMBER_ALIVE:
		return "alive";
	case MEMBER_SUSPECT:
		return "suspect";
	default:
		return "dead";
	}
}

/* ---- identity ---- */

static bool is_id(const char *s, size_t len)
{
	if (len != 16)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int membership_load_id(const char *data_dir, char id[17], char *err, size_t errlen)
{
	char path[4200], tmp[4240], fresh[18];
	unsigned char r[8];
	char *data = NULL;
	size_t len;
	int rc, fd;

	snprintf(path, sizeof(path), "%s/node.id", data_dir);
	/* Made aside and linked into place: link fails when another process
	 * made one first, and then both use that one. */
	for (int attempt = 0; attempt < 3; attempt++) {
		rc = fs_read_all(path, 64, &data, &len);
		if (rc == 0) {
			while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
				len--;
			if (!is_id(data, len)) {
				snprintf(err, errlen,
					 "%s does not hold a node id (16 lower-case hex digits)",
					 path);
				free(data);
				return -EINVAL;
			}
			memcpy(id, data, 16);
			id[16] = '\0';
			free(data);
			return 0;
		}
		if (rc != -ENOENT)
			break;
		crypto_random(r, sizeof(r));
		text_hex(r, sizeof(r), fresh);
		fresh[16] = '\n';
		snprintf(tmp, sizeof(tmp), "%s/node.id.%ld.tmp", data_dir, (long)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		if (fchmod(fd, 0600) < 0 || fs_write_full(fd, fresh, 17) < 0 || fsync(fd) < 0) {
			rc = errno ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			break;
		}
		close(fd);
		if (link(tmp, path) < 0 && errno != EEXIST) {
			rc = -errno;
			unlink(tmp);
			break;
		}
		unlink(tmp);
		fs_sync_dir(data_dir);
	}
	snprintf(err, errlen, "cannot read or create %s: %s", path, strerror(-rc));
	return rc < 0 ? rc : -EIO;
}

void membership_default_advertise(const char *scheme, const char *listen, int port, char *out,
				  size_t outlen)
{
	char host[256];

	/* Every address: the first IPv4 address of an interface that is up
	 * and not loopback, which other machines can reach. */
	if (http_listen_local_host(listen, host, sizeof(host))) {
		struct ifaddrs *ifs = NULL;

		snprintf(host, sizeof(host), "127.0.0.1");
		if (getifaddrs(&ifs) == 0) {
			for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
				struct sockaddr_in sin;
				if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
				    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
					continue;
				memcpy(&sin, i->ifa_addr, sizeof(sin));
				inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
				break;
			}
			freeifaddrs(ifs);
		}
	}
	snprintf(out, outlen, "%s://%s:%d", scheme, host, port);
}

/* ---- the view ---- */

static struct entry *find(struct membership *m, const char *id)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].info.m.id, id) == 0)
			return &m->v[i];
	return NULL;
}

/* Fills the state and age of e as of now. */
static void judge(struct membership *m, struct entry *e, int64_t now)
{
	struct member *mb = &e->info.m;

	mb->heartbeat_age_ms = e->heard ? now - e->heard : -1;
	if (mb->heartbeat_age_ms < -1)
		mb->heartbeat_age_ms = 0;
	if (mb->self)
		mb->state = MEMBER_ALIVE;
	else if (e->gone || e->unanswered || !e->heard || mb->heartbeat_age_ms > m->dead_after_ms)
		mb->state = MEMBER_DEAD;
	else if (e->suspect)
		mb->state = MEMBER_SUSPECT;
	else
		mb->state = MEMBER_ALIVE;
}

/* Logs the nodes whose state changed since the last look (not the first
 * look at each: the view's start says nothing). Under the lock. */
static void log_changes(struct membership *m)
{
	int64_t now = mono_ms();

	for (size_t i = 0; i < m->n; i++) {
		struct entry *e = &m->v[i];
		judge(m, e, now);
		if (e->logged >= 0 && e->logged != e->info.m.state)
			log_info("membership: node %s (%s) is %s", e->info.m.id, e->info.m.address,
				 membership_state_name(e->info.m.state));
		e->logged = e->info.m.state;
	}
}

static int by_site_address(const void *a, const void *b)
{
	const struct member *x = &((const struct entry *)a)->info.m;
	const struct member *y = &((const struct entry *)b)->info.m;
	int c = strcmp(x->site, y->site);

	if (c == 0)
		c = strcmp(x->address, y->address);
	return c ? c : strcmp(x->id, y->id);
}

size_t membership_snapshot_info(membership_t *m, struct member_info *out, size_t max)
{
	int64_t now = mono_ms();
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n < max ? m->n : max;
	for (size_t i = 0; i < n; i++) {
		judge(m, &m->v[i], now);
		out[i] = m->v[i].info;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t membership_snapshot(membership_t *m, struct member *out, size_t max)
{
	int64_t now = mono_ms();
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n < max ? m->n : max;
	for (size_t i = 0; i < n; i++) {
		judge(m, &m->v[i], now);
		out[i] = m->v[i].info.m;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

const char *membership_self_id(membership_t *m)
{
	return m->id;
}

bool membership_connected(membership_t *m)
{
	bool up;

	pthread_mutex_lock(&m->lock);
	up = m->pg_up;
	pthread_mutex_unlock(&m->lock);
	return up;
}

void membership_suspect(membership_t *m, const char *id)
{
	struct entry *e;

	pthread_mutex_lock(&m->lock);
	e = find(m, id);
	if (e && !e->info.m.self && !e->suspect) {
		e->suspect = true;
		judge(m, e, mono_ms());
		if (e->info.m.state == MEMBER_SUSPECT && e->logged != MEMBER_SUSPECT) {
			log_info("membership: node %s (%s) is suspect: a request to it failed", id,
				 e->info.m.address);
			e->logged = MEMBER_SUSPECT;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

void membership_ok(membership_t *m, const char *id)
{
	struct entry *e;

	pthread_mutex_lock(&m->lock);
	e = find(m, id);
	if (e && (e->suspect || e->unanswered)) {
		e->suspect = e->unanswered = false;
		log_changes(m);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- published figures ---- */

#define NSTATS 8
static const char *const stat_names[NSTATS] = {"bytes",        "budget_bytes", "chunks",
					       "hits",         "misses",       "origin_reads",
					       "origin_bytes", "evictions"};

static int64_t *stat_fields(struct member_stats *s, int i)
{
	int64_t *f[NSTATS] = {&s->cache_bytes,        &s->cache_budget_bytes,
			      &s->cache_chunks,       &s->cache_hits,
			      &s->cache_misses,       &s->cache_origin_reads,
			      &s->cache_origin_bytes, &s->cache_evictions};
	return f[i];
}

/* The stats object for PostgreSQL; malloc'd (free()). */
static char *stats_text(const struct member_stats *s)
{
	json_t *o = json_object(), *cache = json_object();
	struct member_stats c = *s;
	char *txt;

	for (int i = 0; i < NSTATS; i++)
		json_object_set_new(cache, stat_names[i], json_integer(*stat_fields(&c, i)));
	json_object_set_new(o, "cache", cache);
	json_object_set_new(o, "replication_lag_ms",
			    s->replication_lag_ms >= 0 ? json_integer(s->replication_lag_ms)
						       : json_null());
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt)
		abort(); /* allocation failure */
	return txt;
}

/* A row's stats: what is there and well-typed; the rest 0 (lag -1). */
static void parse_stats(const char *txt, struct member_stats *out)
{
	json_t *o = txt && *txt ? json_loads(txt, 0, NULL) : NULL, *cache, *x;

	memset(out, 0, sizeof(*out));
	out->replication_lag_ms = -1;
	if (!json_is_object(o))
		goto out;
	out->known = true;
	cache = json_object_get(o, "cache");
	for (int i = 0; i < NSTATS; i++) {
		x = json_object_get(cache, stat_names[i]);
		if (json_is_integer(x))
			*stat_fields(out, i) = (int64_t)json_integer_value(x);
	}
	x = json_object_get(o, "replication_lag_ms");
	if (json_is_integer(x) && json_integer_value(x) >= 0)
		out->replication_lag_ms = (int64_t)json_integer_value(x);
out:
	json_decref(o);
}

/* ---- PostgreSQL ---- */

/*
 * Runs one statement, waiting at most timeout_ms: its result (to clear;
 * possibly an error result), or NULL when the connection failed or the
 * deadline passed, after which the connection is unusable.
 */
static PGresult *query(PGconn *c, const char *sql, int n, const char *const *params, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	PGresult *res, *first = NULL;

	if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0))
		return NULL;
	for (;;) {
		struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
		int left;

		while (!PQisBusy(c)) {
			res = PQgetResult(c);
			if (!res)
				return first;
			if (first)
				PQclear(res);
			else
				first = res;
		}
		left = (int)(deadline - mono_ms());
		if (left <= 0 || p.fd < 0)
			break;
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(c))
			break;
	}
	PQclear(first);
	return NULL;
}

/* Runs sql; 0, or -ENOTCONN (drop the connection) or -EIO (logged). With
 * rows, the result is left in *out for the caller to clear. */
static int run(PGconn *c, int timeout_ms, const char *sql, int n, const char *const *params,
	       PGresult **out)
{
	PGresult *res = query(c, sql, n, params, timeout_ms);

	if (!res || pg_lost(c, res)) {
		PQclear(res);
		return -ENOTCONN;
	}
	if (!pg_ok(res)) {
		log_error("membership: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -EIO;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

static void set_pg_up(struct membership *m, bool up)
{
	pthread_mutex_lock(&m->lock);
	if (m->pg_up && !up) {
		m->probe_now = true;
		pthread_cond_signal(&m->wake);
	}
	m->pg_up = up;
	pthread_mutex_unlock(&m->lock);
}

/* Replaces the view with the rows of res (read with the query sent at
 * sent, monotonic ms), keeping what only this node knows of each. */
static void apply_rows(struct membership *m, PGresult *res, int64_t sent)
{
	int rows = PQntuples(res);
	struct entry *v = xcalloc((size_t)rows + 1, sizeof(*v));
	size_t n = 0;
	bool have_self = false;

	pthread_mutex_lock(&m->lock);
	for (int r = 0; r < rows; r++) {
		const char *id = PQgetvalue(res, r, 0);
		struct entry *e = &v[n], *old;
		int64_t age = pg_col_i64(res, r, 3);

		if (!is_id(id, strlen(id)))
			continue;
		old = find(m, id);
		if (old) {
			*e = *old;
		} else {
			e->logged = -1;
			memcpy(e->info.m.id, id, 17);
		}
		n++;
		snprintf(e->info.m.address, sizeof(e->info.m.address), "%s", PQgetvalue(res, r, 1));
		snprintf(e->info.m.site, sizeof(e->info.m.site), "%s", PQgetvalue(res, r, 2));
		e->info.last_heartbeat_ms = pg_col_i64(res, r, 4);
		e->gone = e->info.last_heartbeat_ms <= 0;
		e->heard = e->gone ? 0 : sent - age;
		if (e->heard <= 0 && !e->gone)
			e->heard = 1; /* heard, long before this host booted */
		e->unanswered = false;
		e->info.m.self = strcmp(id, m->id) == 0;
		if (e->info.m.self) {
			have_self = true;
			/* Ours as we are now, whatever the row says. */
			snprintf(e->info.m.address, sizeof(e->info.m.address), "%s", m->address);
			snprintf(e->info.m.site, sizeof(e->info.m.site), "%s", m->site);
			e->gone = false;
			if (old)
				e->info.stats = old->info.stats;
		} else {
			parse_stats(PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
				    &e->info.stats);
		}
	}
	if (!have_self) {
		struct entry *self = find(m, m->id);
		if (self)
			v[n++] = *self;
	}
	qsort(v, n, sizeof(*v), by_site_address);
	free(m->v);
	m->v = v;
	m->n = n;
	log_changes(m);
	pthread_mutex_unlock(&m->lock);
}

/* This node's heartbeat. 0, -ENOTCONN or -EIO; *taken: the row is ours
 * (false while another live process holds this id). */
static int beat(struct membership *m, PGconn *c, bool *taken)
{
	struct member_stats s = {.known = true, .replication_lag_ms = -1};
	char started[24], dead[24], *stats;
	const char *params[6];
	PGresult *res = NULL;
	int rc;

	if (m->stats)
		m->stats(m->stats_ud, &s);
	s.known = true;
	stats = stats_text(&s);
	snprintf(started, sizeof(started), "%" PRId64, m->started_at);
	snprintf(dead, sizeof(dead), "%d", m->dead_after_ms);
	params[0] = m->id;
	params[1] = m->address;
	params[2] = m->site;
	params[3] = started;
	params[4] = stats;
	params[5] = dead;
	rc = run(c, m->query_ms, upsert_sql, 6, params, &res);
	free(stats);
	if (rc < 0)
		return rc;
	*taken = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	pthread_mutex_lock(&m->lock);
	struct entry *self = find(m, m->id);
	if (self)
		self->info.stats = s;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int read_view(struct membership *m, PGconn *c)
{
	int64_t sent = mono_ms();
	PGresult *res = NULL;
	int rc = run(c, m->query_ms, read_sql, 0, NULL, &res);

	if (rc < 0)
		return rc;
	apply_rows(m, res, sent);
	PQclear(res);
	return 0;
}

enum wake { WAKE_STOP, WAKE_TIME, WAKE_NOTIFY, WAKE_LOST };

/* Sleeps until the monotonic time until, a notification, the connection's
 * loss or a stop. */
static enum wake sleep_until(struct membership *m, PGconn *c, int64_t until)
{
	struct pollfd p[2] = {{.fd = m->stop_pipe[0], .events = POLLIN},
			      {.fd = c ? PQsocket(c) : -1, .events = POLLIN}};

	for (;;) {
		int left = (int)(until - mono_ms());
		PGnotify *note;
		bool any = false;

		if (c) {
			while ((note = PQnotifies(c)) != NULL) {
				any = true;
				PQfreemem(note);
			}
			if (any)
				return WAKE_NOTIFY;
		}
		if (left <= 0)
			return WAKE_TIME;
		if (poll(p, c ? 2 : 1, left) < 0 && errno != EINTR)
			return WAKE_TIME;
		if (p[0].revents)
			return WAKE_STOP;
		if (c && p[1].revents && (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK))
			return WAKE_LOST;
	}
}

static PGconn *connect_pg(struct membership *m, bool *warned)
{
	char err[512];
	PGconn *c = pg_connect(m->conninfo, err, sizeof(err));

	if (c && run(c, m->query_ms, "LISTEN " PG_CHANNEL_NODES, 0, NULL, NULL) < 0) {
		snprintf(err, sizeof(err), "LISTEN: %s", PQerrorMessage(c));
		PQfinish(c);
		c = NULL;
	}
	if (!c && !*warned) {
		log_warn("membership: %s; keeping the last list of nodes and probing them"
			 " directly, retrying",
			 err);
		*warned = true;
	}
	return c;
}

/* Marks this node's row gone and tells the others. */
static void leave(struct membership *m, PGconn *c)
{
	char started[24];
	const char *params[2] = {m->id, started};

	snprintf(started, sizeof(started), "%" PRId64, m->started_at);
	if (run(c, 1000,
		"UPDATE nodes SET heartbeat_at = 'epoch' WHERE id = $1 AND started_at = $2::bigint",
		2, params, NULL) == 0 &&
	    run(c, 1000, "NOTIFY " PG_CHANNEL_NODES, 0, NULL, NULL) == 0)
		log_info("membership: left the cluster");
}

static void *beat_main(void *arg)
{
	struct membership *m = arg;
	PGconn *c = NULL;
	int64_t next = 0, next_read = 0, refused_since = 0;
	bool warned = false, announced = false, taken = true, dup_warned = false;
	enum wake w;

	for (;;) {
		int rc = 0;

		if (!c) {
			c = connect_pg(m, &warned);
			if (!c) {
				set_pg_up(m, false);
				if (sleep_until(m, NULL, mono_ms() + MEMBERSHIP_HEARTBEAT_MS) ==
				    WAKE_STOP)
					break;
				continue;
			}
			if (warned)
				log_info("membership: connected to PostgreSQL again");
			warned = announced = false;
			next = 0;
		}
		if (mono_ms() >= next) {
			next = mono_ms() + MEMBERSHIP_HEARTBEAT_MS;
			rc = beat(m, c, &taken);
			if (rc == 0 && taken) {
				refused_since = 0;
				dup_warned = false;
			} else if (rc == 0 && !refused_since) {
				refused_since = mono_ms();
			} else if (rc == 0 && !dup_warned &&
				   mono_ms() - refused_since > 3 * m->dead_after_ms) {
				log_warn("membership: another running node heartbeats with this"
					 " node's id %s (a copied data directory?); this node stays"
					 " out of the list until it stops",
					 m->id);
				dup_warned = true;
			}
			/* The others read at once when a node comes (back). */
			if (rc == 0 && taken && !announced)
				rc = run(c, m->query_ms, "NOTIFY " PG_CHANNEL_NODES, 0, NULL, NULL);
			announced = announced || (rc == 0 && taken);
		}
		if (rc == 0)
			rc = read_view(m, c);
		next_read = mono_ms() + MEMBERSHIP_READ_MS;
		set_pg_up(m, rc == 0);
		if (rc == -ENOTCONN)
			w = WAKE_LOST;
		else
			w = sleep_until(m, c, next < next_read ? next : next_read);
		if (w == WAKE_STOP)
			break;
		if (w == WAKE_LOST) {
			log_warn("membership: lost PostgreSQL; probing the nodes directly");
			PQfinish(c);
			c = NULL;
			set_pg_up(m, false);
			warned = true;
		}
	}
	if (c && PQstatus(c) == CONNECTION_OK && taken)
		leave(m, c);
	PQfinish(c);
	return NULL;
}

/* ---- probes ---- */

struct target {
	char id[17];
	char url[300];
	bool ok;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	return size * n;
}

/* Asks every target at once; each gets ok when it answered 200. */
static void probe_all(CURLM *multi, struct target *t, size_t n)
{
	CURL **h = xcalloc(n, sizeof(*h));
	CURLMsg *msg;
	int running = 1, left;

	for (size_t i = 0; i < n; i++) {
		h[i] = curl_easy_init();
		if (!h[i])
			continue;
		http_client_setup(h[i], t[i].url, MEMBERSHIP_PROBE_TIMEOUT_MS,
				  MEMBERSHIP_PROBE_TIMEOUT_MS);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, &t[i]);
		curl_multi_add_handle(multi, h[i]);
	}
	while (running) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct target *tg = NULL;
			long code = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&tg);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			/* A drained node answers 503 {"status":"drained"}: it is
			 * up and serves everything but new streams, so it is
			 * alive (haproxy's check is the one that takes it out). */
			if (tg)
				tg->ok = msg->data.result == CURLE_OK &&
					 (code == 200 || code == 503);
		}
		if (running && curl_multi_poll(multi, NULL, 0, 100, NULL) != CURLM_OK)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (!h[i])
			continue;
		curl_multi_remove_handle(multi, h[i]);
		curl_easy_cleanup(h[i]);
	}
	free(h);
}

static void *probe_main(void *arg)
{
	struct membership *m = arg;
	CURLM *multi = curl_multi_init();
	struct target *t = NULL;
	int64_t last = 0;

	if (!multi) {
		log_error("membership: cannot start libcurl; no direct probes");
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		int64_t now = mono_ms();
		size_t n = 0;
		bool down;

		if (!m->probe_now && now < last + m->probe_ms) {
			int64_t due = last + m->probe_ms;
			struct timespec ts = {.tv_sec = due / 1000,
					      .tv_nsec = (long)(due % 1000) * 1000000};
			pthread_cond_timedwait(&m->wake, &m->lock, &ts);
			continue;
		}
		m->probe_now = false;
		last = now;
		/* PostgreSQL answering: only suspects, to clear them; else all. */
		down = !m->pg_up;
		t = xrealloc(t, (m->n + 1) * sizeof(*t));
		for (size_t i = 0; i < m->n; i++) {
			const struct entry *e = &m->v[i];
			if (e->info.m.self || !e->info.m.address[0] || (!down && !e->suspect))
				continue;
			memcpy(t[n].id, e->info.m.id, 17);
			snprintf(t[n].url, sizeof(t[n].url), "%s/health", e->info.m.address);
			t[n].ok = false;
			n++;
		}
		if (!n)
			continue;
		pthread_mutex_unlock(&m->lock);
		probe_all(multi, t, n);
		pthread_mutex_lock(&m->lock);
		for (size_t i = 0; i < n; i++) {
			struct entry *e = find(m, t[i].id);
			if (!e)
				continue;
			if (t[i].ok) {
				e->suspect = e->unanswered = false;
				if (!m->pg_up) {
					e->heard = mono_ms();
					e->gone = false;
				}
			} else if (!m->pg_up) {
				/* PostgreSQL's rows rule again as soon as it answers. */
				e->unanswered = true;
			}
		}
		log_changes(m);
	}
	pthread_mutex_unlock(&m->lock);
	free(t);
	curl_multi_cleanup(multi);
	return NULL;
}

/* ---- start, stop ---- */

static bool valid_address(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n >= sizeof(((struct member *)0)->address) ||
	    (strncmp(a, "http://", 7) != 0 && strncmp(a, "https://", 8) != 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] <= 0x20 || a[i] == 0x7f)
			return false;
	return true;
}

int membership_describe_self(const struct membership_opts *o, struct member *out, char *err,
			     size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!o->advertise || !valid_address(o->advertise)) {
		snprintf(err, errlen,
			 "the advertised address \"%s\" is not an http:// or https:// URL of at"
			 " most 255 bytes",
			 o->advertise ? o->advertise : "");
		return -EINVAL;
	}
	if (o->site && strlen(o->site) >= sizeof(out->site)) {
		snprintf(err, errlen, "the site name is longer than 63 bytes");
		return -EINVAL;
	}
	snprintf(out->address, sizeof(out->address), "%s", o->advertise);
	for (size_t n = strlen(out->address); n > 0 && out->address[n - 1] == '/'; n--)
		out->address[n - 1] = '\0';
	snprintf(out->site, sizeof(out->site), "%s", o->site ? o->site : "");
	out->state = MEMBER_ALIVE;
	out->heartbeat_age_ms = -1;
	out->self = true;
	return membership_load_id(o->data_dir, out->id, err, errlen);
}

int membership_start(const struct membership_opts *o, membership_t **out, char *err, size_t errlen)
{
	struct membership *m;
	struct member self;
	pthread_condattr_t ca;
	int rc;

	if (o->dead_after_ms && o->dead_after_ms < MEMBERSHIP_DEAD_AFTER_MIN_MS) {
		snprintf(err, errlen, "the dead interval must be at least %d ms",
			 MEMBERSHIP_DEAD_AFTER_MIN_MS);
		return -EINVAL;
	}
	if ((rc = membership_describe_self(o, &self, err, errlen)) < 0)
		return rc;
	m = xcalloc(1, sizeof(*m));
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	m->conninfo = xstrdup(o->conninfo ? o->conninfo : "");
	memcpy(m->id, self.id, sizeof(m->id));
	memcpy(m->address, self.address, sizeof(m->address));
	memcpy(m->site, self.site, sizeof(m->site));
	m->dead_after_ms = o->dead_after_ms > 0 ? o->dead_after_ms : MEMBERSHIP_DEAD_AFTER_MS;
	/* A server that stops answering must be noticed, and peers probed,
	 * before the last heartbeats read age past dead_after_ms. */
	m->query_ms = m->dead_after_ms / 4;
	m->query_ms = m->query_ms < 250 ? 250 : m->query_ms > 5000 ? 5000 : m->query_ms;
	m->probe_ms = m->dead_after_ms / 2 < MEMBERSHIP_HEARTBEAT_MS ? m->dead_after_ms / 2
								     : MEMBERSHIP_HEARTBEAT_MS;
	m->started_at = wall_ms();
	m->stats = o->stats;
	m->stats_ud = o->stats_ud;
	/* The view starts with this node alone. */
	m->v = xcalloc(1, sizeof(*m->v));
	m->n = 1;
	m->v[0].info.m = self;
	m->v[0].info.stats.replication_lag_ms = -1;
	m->v[0].logged = -1;
	if (pipe2(m->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "membership: pipe: %s", strerror(errno));
		goto fail;
	}
	if (http_client_global_init() < 0) {
		rc = -EIO;
		snprintf(err, errlen, "membership: cannot initialise libcurl");
		goto fail;
	}
	if (thread_start(&m->beat_thread, beat_main, m) != 0) {
		rc = -EAGAIN;
		snprintf(err, errlen, "membership: cannot start its thread");
		goto fail_curl;
	}
	m->beat_running = true;
	if (thread_start(&m->probe_thread, probe_main, m) != 0) {
		rc = -EAGAIN;
		snprintf(err, errlen, "membership: cannot start its thread");
		membership_stop(m);
		goto fail_curl;
	}
	m->probe_running = true;
	log_info("membership: this node is %s at %s%s%s", m->id, m->address,
		 m->site[0] ? ", site " : "", m->site);
	*out = m;
	return 0;
fail_curl:
	http_client_global_cleanup();
fail:
	if (m->stop_pipe[0] >= 0) {
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
	}
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m->v);
	free(m->conninfo);
	free(m);
	return rc;
}

void membership_stop(membership_t *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->beat_running) {
		if (write(m->stop_pipe[1], "x", 1) < 0)
			log_warn("membership: cannot wake the thread: %s", strerror(errno));
		pthread_join(m->beat_thread, NULL);
		m->beat_running = false;
	}
	if (m->probe_running) {
		pthread_join(m->probe_thread, NULL);
		m->probe_running = false;
	}
}

void membership_free(membership_t *m)
{
	if (!m)
		return;
	membership_stop(m);
	http_client_global_cleanup();
	close(m->stop_pipe[0]);
	close(m->stop_pipe[1]);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m->v);
	free(m->conninfo);
	free(m);
}
