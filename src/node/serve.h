#ifndef CHORUS_NODE_SERVE_H
#define CHORUS_NODE_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "version.h"

struct serve_opts {
	const char *data_dir;
	const char *origin;
	const char *db; /* PostgreSQL conninfo: a cluster node; NULL: embedded */
	const char *listen;
	uint64_t cache_bytes;
	int threads;
	int max_conns;
	int drain_ms;
	int access_log_fd;          /* -1: none */
	const char *advertise;      /* URL peers reach this node at; NULL: from listen */
	const char *site;           /* its data centre; NULL: none */
	int dead_after_ms;          /* a peer not heard from for this long is dead; 0: default */
	int peer_timeout_ms;        /* a whole peer request; 0: default (5000) */
	const char *join;           /* a member's URL: join its cluster first (node/setup.c) */
	const char *join_token;     /* with join: `chorus cluster token`'s */
	const char *advertise_host; /* without advertise: http://HOST:PORT is advertised */
	bool public_read;           /* anonymous catalog reads and streams */
	int plays_per_minute;       /* per principal */
	const char *tls_cert;       /* with tls_key: HTTPS (URLs then https://); SIGHUP reloads */
	const char *tls_key;
	const char *metrics_listen; /* ADDR:PORT: /metrics alone, no credentials; NULL: none */
	uint64_t upload_max;        /* bytes of one upload */
	int upload_expiry_s;        /* an unfinished upload's life after its last byte */
};

/* `chorus serve`; returns the exit status. */
int serve_run(const struct serve_opts *o);

/*
 * Before anything starts (node/setup.c): with o->join, joins the cluster and
 * writes DATA/cluster.json (nothing is written if the join is refused);
 * then, when DATA/cluster.json exists, fills in what the command line and
 * the environment left unset (db, origin, advertise, site, the AWS_*
 * credentials; advertise_host). jc holds the strings o then points to:
 * join_config_free it after serving. 0, or -1 after a message on stderr.
 */
struct join_config;
int serve_cluster_setup(struct serve_opts *o, struct join_config *jc);

/* What this node hands a new one through /internal/join: db, the origin
 * spec as another host opens it (a directory made absolute), and the
 * origin's credentials from the environment. join_config_free it. */
void node_join_offer(const char *db, const char *origin, const char *data_dir,
		     struct join_config *out);

#endif
