/*
 * `chorus serve`: opens the catalog, the origin, the cache and the play store, starts the
 * worker pool and the HTTP server's loops, and waits for SIGTERM or SIGINT. Then it
 * drains: no new connections, keep-alive ends, responses in flight get until the
 * drain deadline to finish, and the process exits 0.
 */
#include "node/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "catalog/db.h"
#include "catalog/replica.h"
#include "cluster/join.h"
#include "cluster/membership.h"
#include "cluster/peer.h"
#include "cluster/status.h"
#include "crypto/seal.h"
#include "http/listen.h"
#include "ingest/probe.h"
#include "loop/pool.h"
#include "node/principals_cmd.h"
#include "origin/origin.h"
#include "uploads/uploads.h"
#include "store/principals.h"
#include "store/store.h"
#include "plays/plays.h"
#include "sql/sql.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/notify.h"

/* Reports take at most half the workers (loop/pool.h), so two can run at
 * once and two workers stay for peer reseals. A queued job holds little
 * (a reseal: one fd), so the queue can be deep; past it, a 503. */
#define POOL_THREADS 4
#define POOL_QUEUE 256

/* Failed logins: a guesser of one name gets 5 at once, then one every
 * 2 s; one address 20, then one a second (a shop's staff behind one NAT
 * typing badly must not lock each other out for long). Tables sized for
 * more names than a node sees at once (auth/limit.h). */
#define LOGIN_USER_BURST 5
#define LOGIN_USER_PER_S 0.5
#define LOGIN_ADDR_BURST 20
#define LOGIN_ADDR_PER_S 1.0
#define LIMIT_SLOTS 16384

/*
 * The secret this node's session cookies and stream URLs are derived
 * from. In a cluster it is the cluster key, so any node checks what
 * another signed; a single node keeps its own in DATA/node.key (0600),
 * made once, so sessions and links outlive a restart.
 */
static int node_secret(const struct api *api, const char *data_dir, uint8_t out[32])
{
	char path[4200], *p = NULL;
	size_t len = 0;
	int rc;

	if (api->peer_key_set) {
		memcpy(out, api->peer_key, 32);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/node.key", data_dir);
	rc = fs_read_all(path, 64, &p, &len);
	if (rc == 0 && len == 32) {
		memcpy(out, p, 32);
		explicit_bzero(p, len);
		free(p);
		return 0;
	}
	if (p) {
		explicit_bzero(p, len);
		free(p);
	}
	if (rc == 0 || rc != -ENOENT) {
		fprintf(stderr, "chorus: %s: %s\n", path,
			rc == 0 ? "not a node key (32 bytes); remove it to make a new one"
				: strerror(-rc));
		return -1;
	}
	crypto_random(out, 32);
	rc = fs_write_atomic(path, NULL, out, 32, 0600);
	if (rc < 0) {
		fprintf(stderr, "chorus: cannot write %s: %s\n", path, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Who may do what (api/access.h): the keys, the principals' store, the
 * limits. 0, or -1 after a message. */
static int access_setup(struct api *api, const struct serve_opts *o)
{
	uint8_t secret[32];
	char err[512], pw[AUTH_PW_GENERATED_LEN + 1];

	if (node_secret(api, o->data_dir, secret) < 0)
		return -1;
	auth_derive(secret, "stream-url", api->url_key);
	auth_derive(secret, "session", api->session_key);
	explicit_bzero(secret, sizeof(secret));
	/* A cluster node starts with PostgreSQL down (it authenticates
	 * from its read model); the admin endpoints connect when asked. */
	if (principals_open(o->data_dir, api->db, &api->principals, err, sizeof(err)) < 0) {
		if (!api->db) {
			fprintf(stderr, "chorus: %s\n", err);
			return -1;
		}
		log_warn("serve: users and keys cannot be changed until PostgreSQL answers: %s",
			 err);
	}
	/* Unknown users are verified against this: the same time. */
	auth_password_generate(pw);
	if (auth_password_hash(pw, strlen(pw), api->dummy_password) < 0) {
		explicit_bzero(pw, sizeof(pw));
		fprintf(stderr, "chorus: cannot hash a password (out of memory?)\n");
		return -1;
	}
	explicit_bzero(pw, sizeof(pw));
	api->public_read = o->public_read;
	api->plays_per_minute = o->plays_per_minute > 0 ? o->plays_per_minute : 600;
	api->login_by_user = auth_limit_new(LIMIT_SLOTS, LOGIN_USER_BURST, LOGIN_USER_PER_S);
	api->login_by_addr = auth_limit_new(LIMIT_SLOTS, LOGIN_ADDR_BURST, LOGIN_ADDR_PER_S);
	/* A minute's plays at once (a store box back from a day offline
	 * sends its queue in batches of up to a minute's worth). */
	api->plays_quota =
		auth_limit_new(LIMIT_SLOTS, api->plays_per_minute, api->plays_per_minute / 60.0);
	return 0;
}

static void access_teardown(struct api *api)
{
	principals_close(api->principals);
	auth_limit_free(api->login_by_user);
	auth_limit_free(api->login_by_addr);
	auth_limit_free(api->plays_quota);
	explicit_bzero(api->url_key, sizeof(api->url_key));
	explicit_bzero(api->session_key, sizeof(api->session_key));
}

int serve_run(const struct serve_opts *opts)
{
	struct serve_opts eff = *opts; /* with DATA/cluster.json's settings */
	const struct serve_opts *o = &eff;
	struct join_config jc = {0}, offer = {0};
	struct http_server_config cfg;
	struct api api = {0};
	http_server_t *metrics = NULL;
	origin_t *origin = NULL;
	peers_t *peers = NULL;
	sqlite3 *db = NULL;
	sigset_t sigs;
	char err[512], path[4096];
	const char *scheme = opts->tls_cert ? "https" : "http";
	int sig = 0, status = 1, rc;
	uint64_t left;

	if (serve_cluster_setup(&eff, &jc) < 0)
		goto out;
	if (fs_mkdir_p(o->data_dir, 0750) < 0) {
		fprintf(stderr, "chorus: cannot create data directory %s: %s\n", o->data_dir,
			strerror(errno));
		goto out;
	}
	/* Creates or upgrades the schema, so a new node serves an empty
	 * catalog rather than failing. A cluster node's catalog is its read
	 * model, filled from PostgreSQL before the node listens. */
	snprintf(api.db_path, sizeof(api.db_path), "%s/catalog.db", o->data_dir);
	if (o->db && *o->db) {
		api.db = o->db;
		if (replica_start(api.db_path, o->db, &api.replica, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: %s\n", err);
			goto out;
		}
		api.peer_key_set = replica_cluster_key(api.replica, api.peer_key) == 0;
	} else {
		if (catalog_db_open(api.db_path, true, &db, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: %s\n", err);
			goto out;
		}
		sqlite3_close(db);
	}
	/* The first start of a database makes its admin (once, whichever
	 * node of a cluster gets there first). */
	if (principals_first_start(o->data_dir, api.db) < 0 || access_setup(&api, o) < 0)
		goto out;
	if (origin_open(o->origin, o->data_dir, &origin, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s\n", err);
		goto out;
	}
	if (api.db) {
		node_join_offer(api.db, o->origin, o->data_dir, &offer);
		api.join_offer = &offer;
	}
	crypto_warm_up();
	probe_log_setup(); /* uploads probe on the pool: libav's lines via the log */
	snprintf(path, sizeof(path), "%s/cache", o->data_dir);
	if (cache_open(path, o->cache_bytes, origin, 4, &api.cache, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s\n", err);
		goto out;
	}
	snprintf(api.data_dir, sizeof(api.data_dir), "%s", o->data_dir);
	if (plays_open(o->data_dir, &api.plays, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s\n", err);
		goto out;
	}
	api.started = time(NULL);
	api.prefetch = 2;
	api.origin_kind = o->origin && strncmp(o->origin, "s3://", 5) == 0 ? "s3" : "dir";
	api_live_init(&api);
	api.asker = api_asker_new();
	/* Blocking work off the loops: reports (slow) and peer reseals
	 * (fast). Before the server: handlers submit from their first
	 * request. */
	rc = pool_start("chorus-pool", POOL_THREADS, POOL_QUEUE, &api.pool);
	if (rc < 0) {
		fprintf(stderr, "chorus: worker pool: %s\n", strerror(-rc));
		goto out;
	}
	cache_set_pool(api.cache, api.pool); /* evictions unlink there */
	api.origin = origin;
	api.devices = api_devices_new(&api);
	/* Blobs the change feed deletes leave this node's cache. */
	if (api.replica)
		replica_on_blob_gone(api.replica, api_blob_gone, &api);
	{
		struct uploads_config uc = {
			.data_dir = o->data_dir,
			.db = api.db,
			.origin = origin,
			.pool = api.pool,
			.max_size = o->upload_max ? o->upload_max : 2ull << 30,
			.expire_ms =
				(int64_t)(o->upload_expiry_s > 0 ? o->upload_expiry_s : 86400) *
				1000,
			.max_unfinished = UPLOADS_UNFINISHED_MAX,
		};
		if (uploads_open(&uc, &api.uploads, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: uploads: %s\n", err);
			pool_stop(api.pool);
			goto out;
		}
	}

	/* Signals are taken by sigwait below, never by the loop threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP); /* reloads the TLS certificate */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	http_server_config_defaults(&cfg);
	cfg.listen = o->listen;
	cfg.threads = o->threads;
	cfg.access_log_fd = o->access_log_fd;
	cfg.tls_cert = o->tls_cert;
	cfg.tls_key = o->tls_key;
	if (o->max_conns > 0)
		cfg.max_conns = o->max_conns;
	cfg.handler = api_handle;
	cfg.handler_ud = &api;
	cfg.loop_data_new = api_loop_data_new;
	cfg.loop_data_free = api_loop_data_free;
	cfg.stream_body = api_stream_body; /* uploads' and covers' bodies */
	if (http_server_start(&cfg, &api.server, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s: %s\n", o->listen, err);
		goto out;
	}
	if (o->metrics_listen) {
		/* A scrape-only listener: one loop, /metrics and nothing else. */
		struct http_server_config mc;
		http_server_config_defaults(&mc);
		mc.listen = o->metrics_listen;
		mc.threads = 1;
		mc.max_conns = 64;
		mc.handler = api_metrics_listener;
		mc.handler_ud = &api;
		if (http_server_start(&mc, &metrics, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: --metrics-listen %s: %s\n", o->metrics_listen,
				err);
			pool_stop(api.pool);
			http_server_stop(api.server);
			goto out;
		}
	}
	if (api.db) {
		/* Plays name the node that took them: host and port. */
		char node[320], hn[256] = "";
		gethostname(hn, sizeof(hn) - 1);
		snprintf(node, sizeof(node), "%s:%d", hn, http_server_port(api.server));
		if (plays_shipper_start(o->data_dir, api.db, node, &api.shipper, err, sizeof(err)) <
		    0) {
			fprintf(stderr, "chorus: %s\n", err);
			pool_stop(api.pool);
			http_server_stop(api.server);
			goto out;
		}
	}
	{
		/* Who this node is; with --db, the others learn it by heartbeat. */
		struct membership_opts mo = {.conninfo = api.db,
					     .data_dir = o->data_dir,
					     .advertise = o->advertise,
					     .site = o->site,
					     .dead_after_ms = o->dead_after_ms,
					     .stats = api_cluster_stats,
					     .stats_ud = &api};
		char adv[256];
		if (!mo.advertise && o->advertise_host) {
			/* Where the member that let this node in saw it. */
			snprintf(adv, sizeof(adv), "%s://%s:%d", scheme, o->advertise_host,
				 http_server_port(api.server));
			mo.advertise = adv;
		}
		if (!mo.advertise) {
			membership_default_advertise(
				scheme, o->listen, http_server_port(api.server), adv, sizeof(adv));
			mo.advertise = adv;
		}
		if (membership_describe_self(&mo, &api.self, err, sizeof(err)) < 0 ||
		    (api.db && membership_start(&mo, &api.membership, err, sizeof(err)) < 0)) {
			fprintf(stderr, "chorus: %s\n", err);
			pool_stop(api.pool);
			http_server_stop(api.server);
			goto out;
		}
	}
	if (api.membership && api.peer_key_set) {
		/* Misses ask the chunk's owner before the origin. */
		struct peers_opts po = {.members = api.membership,
					.site = o->site,
					.timeout_ms = o->peer_timeout_ms};
		struct cache_peers src;
		memcpy(po.key, api.peer_key, sizeof(po.key));
		peers_open(&po, &peers);
		explicit_bzero(po.key, sizeof(po.key));
		src = peers_source(peers);
		cache_set_peers(api.cache, &src);
	}
	{
		/* Where this machine reaches the node: every address includes
		 * loopback. Recorded for `chorus status` on this machine. */
		char host[256], url[300];
		http_listen_local_host(o->listen, host, sizeof(host));
		snprintf(url, sizeof(url), "%s://%s:%d", scheme, host,
			 http_server_port(api.server));
		if (cluster_status_record(o->data_dir, url, err, sizeof(err)) < 0)
			log_warn("serve: %s; chorus status will not find this node by --data", err);
		printf("chorus %s serving %s on %s/\n", CHORUS_VERSION, o->data_dir, url);
		fflush(stdout);
	}
	api.series = series_start(api_series_sample, &api); /* the console's charts */
	notify_ready(); /* systemd (Type=notify): listening, read model in place */
	while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
		if (sig == SIGHUP) {
			http_server_tls_reload(api.server);
			sig = 0;
		}
	notify_stopping();
	/* Out of the cluster first: peers stop sending requests here. */
	membership_stop(api.membership);
	log_info("serve: %s: draining (up to %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		 o->drain_ms);
	atomic_store(&api.stopping, true); /* devices move to another node now */
	http_server_drain(api.server);
	left = http_server_wait_idle(api.server, o->drain_ms);
	if (left) {
		log_warn("serve: %llu connections still open at the drain deadline; closing them",
			 (unsigned long long)left);
		/* Before the cache closes: no stream may pull a chunk from a
		 * closed cache. */
		http_server_close_all(api.server);
	}
	/* Jobs waiting for a PostgreSQL that is down (an admin's write, an
	 * audit row) give up now rather than hold the stop for a minute. */
	sql_stop_waiting();
	/* The figures' readers before what they read. */
	http_server_stop(metrics);
	metrics = NULL;
	series_stop(api.series);
	api.series = NULL;
	/* The pool first: running jobs (a reseal reads the cache) finish,
	 * queued ones are cancelled, and their answers go to the loops, which
	 * must be running to take them. From here a submission gets
	 * -ESHUTDOWN and is answered 503 at once. */
	pool_stop(api.pool);
	/* Then the cache: fills still pending call back into the loops,
	 * which must be running to take (and free) what they post. The
	 * replica drops deleted blobs from it no more. */
	if (api.replica)
		replica_on_blob_gone(api.replica, NULL, NULL);
	cache_close(api.cache);
	api.cache = NULL;
	peers_close(peers);
	peers = NULL;
	/* Plays queued are committed and answered (the writer posts to the
	 * loops); a request arriving after this gets 503. */
	plays_close(api.plays);
	http_server_stop(api.server);
	/* What was acknowledged is durable here whatever happens next; a
	 * last shipping round only saves PostgreSQL a wait. */
	plays_shipper_stop(api.shipper, 2000);
	api.shipper = NULL;
	status = 0;
out:
	http_server_stop(metrics);
	/* After the server: no loop can submit any more (and the cache,
	 * closed below, no longer may). */
	if (api.cache)
		cache_set_pool(api.cache, NULL);
	uploads_close(api.uploads);    /* its sweep submits to the pool: before it is freed */
	api_devices_free(api.devices); /* its last write: before the store closes */
	pool_free(api.pool);
	api_asker_free(api.asker); /* no job is left to use it */
	membership_free(api.membership);
	plays_shipper_stop(api.shipper, 0);
	plays_free(api.plays);
	if (api.replica)
		replica_on_blob_gone(api.replica, NULL, NULL);
	cache_close(api.cache);
	peers_close(peers);
	store_close(api.store); /* after the pool: no job uses it */
	origin_close(origin);
	replica_stop(api.replica);
	access_teardown(&api);
	explicit_bzero(api.peer_key, sizeof(api.peer_key));
	join_config_free(&jc);
	join_config_free(&offer);
	return status;
}
