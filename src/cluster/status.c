/*
 * `chorus status` (see status.h). The answer is parsed with jansson (the
 * one JSON this file writes, node.json, is one string member, so
 * util/json.h's json_t need not be in the way) and printed as a table
 * sized to its contents. Text from the node (sites, addresses) is printed
 * with control characters replaced, so a strange row in the database
 * cannot drive the terminal.
 *
 * Which node to ask: a node started on another port or address than the
 * default leaves its URL in its data directory, so `chorus status --data
 * DIR` (or just `chorus status` with $CHORUS_DATA) finds it without the
 * operator repeating --listen.
 */
#include "cluster/status.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/http_client.h"
#include "util/buf.h"
#include "util/fsutil.h"

#define ANSWER_MAX ((size_t)16 << 20)
#define NCOLS 14

/* GET url into body, with $CHORUS_KEY (an API key) when set: the member
 * list is for principals. The key goes in a header, never in argv, where
 * `ps` would show it. 0, or -1 with the reason in err. */
static int fetch(const char *url, buf_t *body, long *status, char *err, size_t errlen)
{
	CURL *h = http_client_new(url, 3000, 10000);
	const char *key = getenv("CHORUS_KEY");
	struct curl_slist *hdrs = NULL;
	char line[512];
	int rc;

	if (!h) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	if (key && *key && strlen(key) < sizeof(line) - 32) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", key);
		hdrs = curl_slist_append(NULL, line);
		explicit_bzero(line, sizeof(line));
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	}
	http_client_body_to(h, body);
	rc = http_client_perform(h, status, err, errlen);
	http_client_free(h);
	curl_slist_free_all(hdrs);
	return rc;
}

/* s with control characters replaced by '?', into out. */
static void printable(const char *s, char *out, size_t outlen)
{
	size_t i = 0;

	for (; s && *s && i + 1 < outlen; s++, i++)
		out[i] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	out[i] = '\0';
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A number member, or -1 when absent or null. */
static long long int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? (long long)json_number_value(v) : -1;
}

static double num_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : -1;
}

static void human_bytes(long long v, char *out, size_t outlen)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%lld B", v);
	else
		snprintf(out, outlen, "%.1f %s", d, units[u]);
}

static void human_ms(long long ms, char *out, size_t outlen)
{
	if (ms < 0)
		snprintf(out, outlen, "-");
	else if (ms < 1000)
		snprintf(out, outlen, "%lld ms", ms);
	else if (ms < 100000)
		snprintf(out, outlen, "%.1f s", (double)ms / 1000);
	else if (ms < 2LL * 3600 * 1000)
		snprintf(out, outlen, "%lld min", ms / 60000);
	else if (ms < 3LL * 86400 * 1000)
		snprintf(out, outlen, "%lld h", ms / 3600000);
	else
		snprintf(out, outlen, "%lld days", ms / 86400000);
}

/* One node's cells, from its row of /api/v1/overview. */
static void cells(json_t *node, char cell[NCOLS][300])
{
	double ratio = num_of(node, "cache_hit_ratio"), rps = num_of(node, "requests_per_s");
	double bps = num_of(node, "bytes_out_per_s");
	long long queued = int_of(node, "plays_queued");
	char a[64], b[64];

	for (int c = 0; c < NCOLS; c++)
		snprintf(cell[c], 300, "-");
	snprintf(cell[0], 300, "%s%s", json_is_true(json_object_get(node, "self")) ? "*" : " ",
		 str_of(node, "id"));
	printable(str_of(node, "address"), cell[1], 300);
	printable(str_of(node, "site"), cell[2], 300);
	if (!cell[2][0])
		snprintf(cell[2], 300, "-");
	printable(str_of(node, "state"), cell[3], 300);
	if (json_is_true(json_object_get(node, "drained")))
		strcat(cell[3], ", drained");
	human_ms(int_of(node, "heartbeat_age_ms"), cell[4], 290);
	if (strcmp(cell[4], "-") != 0)
		strcat(cell[4], " ago");
	if (!json_is_true(json_object_get(node, "answered")))
		return; /* the rest are its own figures: none came */
	printable(str_of(node, "version"), cell[5], 300);
	human_ms(int_of(node, "uptime_s") * 1000, cell[6], 300);
	snprintf(cell[7], 300, "%lld", int_of(node, "connections"));
	if (rps >= 0)
		snprintf(cell[8], 300, "%.1f", rps);
	if (bps >= 0) {
		human_bytes((long long)bps, a, sizeof(a));
		snprintf(cell[9], 300, "%s/s", a);
	}
	if (int_of(node, "cache_bytes") >= 0) {
		human_bytes(int_of(node, "cache_bytes"), a, sizeof(a));
		human_bytes(int_of(node, "cache_budget_bytes"), b, sizeof(b));
		snprintf(cell[10], 300, "%s of %s", a, b);
	}
	if (ratio >= 0)
		snprintf(cell[11], 300, "%.0f%%", 100.0 * ratio);
	human_ms(int_of(node, "replication_lag_ms"), cell[12], 300);
	if (queued >= 0)
		snprintf(cell[13], 300, "%lld", queued);
}

static bool is_http_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

int cluster_status_record(const char *data_dir, const char *url, char *err, size_t errlen)
{
	char path[4200];
	json_t *rec = json_pack("{s:s}", "url", url);
	char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	int rc;

	if (!text)
		abort(); /* allocation failure, as xalloc would */
	snprintf(path, sizeof(path), "%s/%s", data_dir, STATUS_NODE_FILE);
	rc = fs_write_atomic(path, NULL, text, strlen(text), 0644);
	if (rc < 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
	free(text);
	json_decref(rec);
	return rc;
}

/* The URL in data_dir/node.json into out: 1, 0 when there is no such
 * file, -1 after a message on stderr when it is there but unreadable. */
static int recorded_url(const char *data_dir, char *out, size_t outlen, char *path, size_t plen)
{
	char *data = NULL;
	const char *url;
	json_t *rec;
	size_t len;
	int rc;

	snprintf(path, plen, "%s/%s", data_dir, STATUS_NODE_FILE);
	rc = fs_read_all(path, 4096, &data, &len);
	if (rc == -ENOENT || rc == -ENOTDIR)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "chorus: status: cannot read %s: %s\n", path, strerror(-rc));
		return -1;
	}
	rec = json_loadb(data, len, 0, NULL);
	free(data);
	url = json_string_value(json_object_get(rec, "url"));
	if (!url || !is_http_url(url) || strlen(url) >= outlen) {
		fprintf(stderr, "chorus: status: %s holds no node URL (remove it, or give --url)\n",
			path);
		json_decref(rec);
		return -1;
	}
	snprintf(out, outlen, "%s", url);
	json_decref(rec);
	return 1;
}

int cluster_status_run(const char *url, const char *data_dir)
{
	static const char *const heads[NCOLS] = {" NODE",   "ADDRESS", "SITE",  "STATE",  "HEARD",
						 "VERSION", "UP",      "CONNS", "REQ/S",  "OUT/S",
						 "CACHE",   "HITS",    "LAG",   "TO SHIP"};
	char full[2200], err[CURL_ERROR_SIZE + 64], (*cell)[NCOLS][300] = NULL;
	char recorded[2048], path[4200], from[4300] = "";
	const char *env = getenv("CHORUS_URL");
	size_t base, n, counts[3] = {0, 0, 0};
	int width[NCOLS], rc = 1;
	json_t *root = NULL, *nodes, *health, *dbh, *orig;
	long long lag;
	long status = 0;
	buf_t body;

	/* --url, $CHORUS_URL, the node record, the default: the first there. */
	if (!url && env && *env) {
		url = env;
		snprintf(from, sizeof(from), " ($CHORUS_URL)");
	} else if (!url) {
		switch (recorded_url(data_dir, recorded, sizeof(recorded), path, sizeof(path))) {
		case 1:
			url = recorded;
			snprintf(from, sizeof(from), " (from %s)", path);
			break;
		case 0:
			url = "http://127.0.0.1:8080";
			break;
		default:
			return 1;
		}
	}
	base = strlen(url);
	while (base > 0 && url[base - 1] == '/')
		base--;
	if (base > 2000) {
		fprintf(stderr, "chorus: status: the URL is too long\n");
		return 1;
	}
	snprintf(full, sizeof(full), "%.*s/api/v1/overview", (int)base, url);
	buf_init(&body, ANSWER_MAX);
	if (fetch(full, &body, &status, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: status: cannot reach the node at %.*s%s: %s\n", (int)base,
			url, from, err);
		goto out;
	}
	if (status == 401 || status == 403) {
		fprintf(stderr,
			"chorus: status: %s answered HTTP %ld: set CHORUS_KEY to an admin's API key"
			" (chorus key create --role admin)\n",
			full, status);
		goto out;
	}
	if (status != 200) {
		fprintf(stderr, "chorus: status: %s answered HTTP %ld (is it a chorus node?)\n",
			full, status);
		goto out;
	}
	root = json_loadb(body.data, body.len, 0, NULL);
	nodes = json_object_get(root, "nodes");
	if (!json_is_array(nodes)) {
		fprintf(stderr, "chorus: status: %s did not answer with a list of nodes\n", full);
		goto out;
	}
	n = json_array_size(nodes);
	cell = calloc(n ? n : 1, sizeof(*cell));
	if (!cell)
		abort();
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(heads[c]);
	for (size_t i = 0; i < n; i++) {
		json_t *node = json_array_get(nodes, i);
		const char *st = str_of(node, "state");
		cells(node, cell[i]);
		for (int c = 0; c < NCOLS; c++)
			if ((int)strlen(cell[i][c]) > width[c])
				width[c] = (int)strlen(cell[i][c]);
		counts[strcmp(st, "alive") == 0 ? 0 : strcmp(st, "suspect") == 0 ? 1 : 2]++;
	}
	for (int c = 0; c < NCOLS; c++)
		printf("%-*s%s", c == NCOLS - 1 ? 0 : width[c], heads[c],
		       c == NCOLS - 1 ? "\n" : "  ");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < NCOLS; c++)
			printf("%-*s%s", c == NCOLS - 1 ? 0 : width[c], cell[i][c],
			       c == NCOLS - 1 ? "\n" : "  ");
	printf("%zu node%s: %zu alive, %zu suspect, %zu dead", n, n == 1 ? "" : "s", counts[0],
	       counts[1], counts[2]);
	health = json_object_get(root, "health");
	dbh = json_object_get(health, "database");
	orig = json_object_get(health, "origin");
	if (strcmp(str_of(dbh, "kind"), "sqlite") == 0)
		printf(" (a standalone node)");
	else if (json_is_false(json_object_get(dbh, "reachable")))
		printf(" (PostgreSQL unreachable from this node: states from direct probes)");
	printf("\n");
	/* The health line the console shows first. */
	printf("database %s %s; origin %s %s", str_of(dbh, "kind"),
	       json_is_false(json_object_get(dbh, "reachable")) ? "UNREACHABLE" : "reachable",
	       str_of(orig, "kind"),
	       json_is_false(json_object_get(orig, "reachable"))  ? "FAILING"
	       : json_is_true(json_object_get(orig, "reachable")) ? "reachable"
								  : "not read yet");
	if ((lag = int_of(health, "replication_lag_ms")) >= 0) {
		char l[64];
		human_ms(lag, l, sizeof(l));
		printf("; replication lag %s", l);
	}
	printf("\n");
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	free(cell);
	json_decref(root);
	buf_free(&body);
	return rc;
}
