#ifndef CHORUS_API_SERVE_H
#define CHORUS_API_SERVE_H

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
	int access_log_fd; /* -1: none */
	const char *advertise; /* URL peers reach this node at; NULL: from listen */
	const char *site;      /* its data centre; NULL: none */
	int dead_after_ms;     /* a peer not heard from for this long is dead; 0: default */
	int peer_timeout_ms;   /* a whole peer request; 0: default (5000) */
};

/* `chorus serve`; returns the exit status. */
int serve_run(const struct serve_opts *o);

#endif
