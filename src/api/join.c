/*
 * POST /internal/join: a new server asks this member for the cluster's
 * configuration (cluster/join.h has the exchange), and serve's side of it:
 * the join before anything starts, DATA/cluster.json at every start.
 *
 * The member hands out its own settings: its PostgreSQL conninfo, its
 * origin spec (a directory made absolute: a new node on the same machine
 * or a shared file system opens the same one) and the origin's
 * credentials from its environment, plus the address it saw the request
 * come from. The cluster key is not in it: the new node reads it from
 * PostgreSQL with its first replica pass, as every node does.
 *
 * Every refusal of a well-formed request is the same 401, whatever failed
 * (token, expiry, clock, proof, replayed nonce): a prober learns nothing.
 * Nonces are remembered in this process only; a request replayed to
 * another member is accepted there, and its answer opens only for a
 * holder of the token.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/serve.h"
#include "cluster/join.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"

static struct join_replay replay = JOIN_REPLAY_INITIALIZER;

void api_join(struct api *api, http_conn_t *c, const struct http_request *req)
{
	struct join_request r;
	struct join_config cfg = {0};
	uint8_t mac[JOIN_MAC_LEN];
	char host[80], *answer;
	int64_t now = (int64_t)time(NULL);
	size_t len;
	int rc;

	if (!api->db || !api->peer_key_set) {
		http_send_error(c, 404, "this node is not in a cluster");
		return;
	}
	if (req->method != HTTP_POST) {
		http_send_error(c, 405, "method not allowed");
		return;
	}
	if (join_request_parse(req->body.p, req->body.len, &r) < 0) {
		http_send_error(c, 400, "a join request is a JSON object of t, nonce, time, port"
					" and proof");
		return;
	}
	join_url_host(http_conn_peer(c), host, sizeof(host));
	rc = join_request_check(api->peer_key, &r, now, mac);
	if (rc == 0)
		rc = join_replay_add(&replay, r.nonce, now);
	if (rc == -EBUSY) {
		explicit_bzero(mac, sizeof(mac));
		http_send_error(c, 503, "too many joins at once; retry in a minute");
		return;
	}
	if (rc < 0) {
		log_warn("join: refused a request from %s", host);
		http_send_error(c, 401, "join refused: a wrong or expired token, or a stale or"
					" replayed request");
		return;
	}
	cfg.db = xstrdup(api->db);
	cfg.origin = xstrdup(api->join_origin);
	if (api->aws_access_key_id && api->aws_secret_access_key) {
		cfg.aws_access_key_id = xstrdup(api->aws_access_key_id);
		cfg.aws_secret_access_key = xstrdup(api->aws_secret_access_key);
		if (api->aws_session_token)
			cfg.aws_session_token = xstrdup(api->aws_session_token);
	}
	cfg.address = xstrdup(host);
	answer = join_answer_make(mac, r.nonce, &cfg, &len);
	explicit_bzero(mac, sizeof(mac));
	join_config_free(&cfg);
	log_info("join: sent the cluster's configuration to a new node at %s (port %d)", host,
		 r.port);
	http_send(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", answer, len);
	free(answer);
}

void api_join_setup(struct api *api, const char *origin, const char *data_dir)
{
	char path[PATH_MAX + 8] = "", real[PATH_MAX];
	const char *dir = NULL;

	if (!origin || !*origin) {
		snprintf(path, sizeof(path), "%s/origin", data_dir);
		dir = path;
	} else if (strncmp(origin, "dir:", 4) == 0 && origin[4] != '/') {
		dir = origin + 4;
	}
	if (dir && realpath(dir, real))
		snprintf(api->join_origin, sizeof(api->join_origin), "dir:%s", real);
	else
		snprintf(api->join_origin, sizeof(api->join_origin), "%s",
			 origin && *origin ? origin : path);
	api->aws_access_key_id = getenv("AWS_ACCESS_KEY_ID");
	api->aws_secret_access_key = getenv("AWS_SECRET_ACCESS_KEY");
	api->aws_session_token = getenv("AWS_SESSION_TOKEN");
}

/* The port of "ADDR:PORT" (0 when none or unparsable). */
static int listen_port(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long v;

	if (!colon)
		return 0;
	v = strtol(colon + 1, &end, 10);
	return *end || v < 0 || v > 65535 ? 0 : (int)v;
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
