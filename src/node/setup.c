/*
 * A node's cluster settings before anything starts: the join (serve
 * --join URL --token T), DATA/cluster.json at every start, and the offer
 * this node hands a new one through POST /internal/join (api/join.c).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/join.h"
#include "http/listen.h"
#include "node/serve.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/xalloc.h"

void node_join_offer(const char *db, const char *origin, const char *data_dir,
		     struct join_config *out)
{
	char path[PATH_MAX + 8] = "", real[PATH_MAX];
	const char *dir = NULL;
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");

	memset(out, 0, sizeof(*out));
	out->db = xstrdup(db);
	/* A directory made absolute: a new node on the same machine or a
	 * shared file system opens the same one. */
	if (!origin || !*origin) {
		snprintf(path, sizeof(path), "%s/origin", data_dir);
		dir = path;
	} else if (strncmp(origin, "dir:", 4) == 0 && origin[4] != '/') {
		dir = origin + 4;
	}
	if (dir && realpath(dir, real)) {
		size_t n = strlen(real) + 5;
		out->origin = xmalloc(n);
		snprintf(out->origin, n, "dir:%s", real);
	} else {
		out->origin = xstrdup(origin && *origin ? origin : path);
	}
	/* The origin's credentials go together, or not at all. */
	if (id && secret) {
		out->aws_access_key_id = xstrdup(id);
		out->aws_secret_access_key = xstrdup(secret);
		if (token)
			out->aws_session_token = xstrdup(token);
	}
}

/* The port of "ADDR:PORT" (0 when unparsable, which chorus.c refused already). */
static int listen_port(const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (http_listen_parse(listen, &ss, &sl, NULL, 0) < 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

int serve_cluster_setup(struct serve_opts *o, struct join_config *jc)
{
	char err[2400];
	int rc;

	rc = join_config_load(o->data_dir, jc, err, sizeof(err));
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "chorus: %s\n", err);
		return -1;
	}
	if (rc == 0 && o->join) {
		log_info("serve: %s/%s exists: this node joined already; --join is ignored"
			 " (remove the file to join again)",
			 o->data_dir, JOIN_CONFIG_FILE);
	} else if (o->join) {
		/* Nothing is written unless the member let this node in. */
		rc = join_run(o->join, o->join_token, listen_port(o->listen), jc, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "chorus: join: %s\n", err);
			return -1;
		}
		if (o->advertise)
			jc->advertise = xstrdup(o->advertise);
		if (o->site)
			jc->site = xstrdup(o->site);
		if ((rc = fs_mkdir_p(o->data_dir, 0750)) < 0) {
			fprintf(stderr, "chorus: cannot create data directory %s: %s\n",
				o->data_dir, strerror(-rc));
			return -1;
		}
		if (join_config_save(o->data_dir, jc, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: join: %s\n", err);
			return -1;
		}
		log_info("serve: joined the cluster through %s; its configuration is in %s/%s",
			 o->join, o->data_dir, JOIN_CONFIG_FILE);
	} else if (rc == -ENOENT) {
		return 0;
	}
	/* The command line and the environment win over the file. */
	if (!o->db || !*o->db)
		o->db = jc->db;
	if (!o->origin || !*o->origin)
		o->origin = jc->origin;
	if (!o->advertise)
		o->advertise = jc->advertise;
	if (!o->site)
		o->site = jc->site;
	if (!o->advertise_host)
		o->advertise_host = jc->address;
	/* Credentials go together: a key of the environment is never paired
	 * with the file's secret. Single-threaded still, so setenv is safe. */
	if (jc->aws_access_key_id && !getenv("AWS_ACCESS_KEY_ID") &&
	    !getenv("AWS_SECRET_ACCESS_KEY")) {
		setenv("AWS_ACCESS_KEY_ID", jc->aws_access_key_id, 1);
		setenv("AWS_SECRET_ACCESS_KEY", jc->aws_secret_access_key, 1);
		if (jc->aws_session_token && !getenv("AWS_SESSION_TOKEN"))
			setenv("AWS_SESSION_TOKEN", jc->aws_session_token, 1);
	}
	return 0;
}
