/*
 * chorus: one binary, a few subcommands. This file only parses arguments
 * and hands over to the subsystem that does the work.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>

#include "api/api.h"
#include "node/principals_cmd.h"
#include "node/stores_cmd.h"
#include "node/serve.h"
#include "node/upload_cmd.h"
#include "cluster/join.h"
#include "cluster/status.h"
#include "http/listen.h"
#include "http/tls.h"
#include "ingest/ingest.h"
#include "plays/plays.h"
#include "util/fsutil.h"
#include "version.h"

static const char usage_text[] =
	"usage: chorus COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  ingest [--data DIR] [--origin SPEC] [--db CONNINFO] [--jobs N] PATH...\n"
	"        read audio files and folders into the catalog and the origin; on a\n"
	"        terminal a progress line, otherwise a line per file on stdout (PATH:\n"
	"        added, updated, unchanged, duplicate or failed, bytes, ms, why)\n"
	"  serve [--data DIR] [--listen ADDR:PORT] [--cache-size SIZE] [--origin SPEC]\n"
	"        [--db CONNINFO] [--threads N] [--max-conns N] [--drain-timeout SECONDS] "
	"[--access-log FILE|-]\n"
	"        [--advertise URL] [--site NAME] [--dead-after MS] [--peer-timeout MS]\n"
	"        [--join MEMBER-URL --token TOKEN] [--tls-cert FILE --tls-key FILE]\n"
	"        [--public-read] [--plays-per-minute N] [--metrics-listen ADDR:PORT]\n"
	"        [--upload-max SIZE] [--upload-expiry SECONDS]\n"
	"        run a node: the HTTP API and streams (default 127.0.0.1:8080, cache\n"
	"        1G; SIZE takes K, M, G suffixes); with --db, URL is where the other\n"
	"        nodes reach this one (default http://LISTEN-ADDRESS:PORT, https://\n"
	"        with TLS), NAME its data centre, and a node not heard from for MS\n"
	"        (default 2000) is dead; --join gets the cluster's settings from a\n"
	"        member (kept in DIR/cluster.json: later starts need no flags);\n"
	"        --tls-cert and --tls-key serve HTTPS only (TLS 1.2 and 1.3) with a PEM\n"
	"        certificate chain (leaf first) and its unencrypted key, read again on\n"
	"        SIGHUP (a pair that does not load then keeps the old one);\n"
	"        --public-read lets anonymous clients read the catalog and stream\n"
	"        (never write); N bounds the plays one key or user posts per minute\n"
	"        (default 600); --metrics-listen serves /metrics alone there, with no\n"
	"        credentials (a private address for Prometheus); uploads (tus, at\n"
	"        /api/v1/uploads) are at most SIZE (default 2G) and an unfinished one\n"
	"        is removed SECONDS (default 86400) after its last byte\n"
	"  upload URL [--key-file FILE] [--chunk-size SIZE] [--retries N]\n"
	"        [--timeout SECONDS] [--no-wait] [--wait-timeout SECONDS] [--no-progress] PATH...\n"
	"        send audio files, zip and tar archives, and the folders holding them\n"
	"        (walked recursively) to the node at URL over tus 1.0.0 (resumable:\n"
	"        run the same command again after a failure or a kill and it goes on\n"
	"        where the node stopped); URL is a node's base URL (the endpoint is\n"
	"        URL/api/v1/uploads) or a tus endpoint ending in /uploads; the API key\n"
	"        (an editor's or admin's) comes from $CHORUS_KEY, or the first line of\n"
	"        FILE (--key KEY works too, but ps shows it); each PATCH carries at\n"
	"        most SIZE (default 64M; with a sha256 checksum when the node takes\n"
	"        them); N failures in a row without progress (default 10; backoff\n"
	"        0.5 s doubling to 8 s) give a file up, a request moving nothing for\n"
	"        SECONDS (default 60) fails; then waits (at most --wait-timeout,\n"
	"        default 600 s) for the node to ingest each file, and prints its\n"
	"        tracks; on a terminal a progress line, otherwise a line per file on\n"
	"        stdout; exit status 0 when every file was uploaded, 1 otherwise\n"
	"  cluster token [--data DIR] [--ttl HOURS]\n"
	"        on a member: print a token for serve --join (valid HOURS, default\n"
	"        24), on the last line\n"
	"  status [--url URL] [--data DIR]\n"
	"        the cluster's nodes as the node at URL sees them (default:\n"
	"        $CHORUS_URL, else the node serving DIR, as recorded in\n"
	"        DIR/node.json, else http://127.0.0.1:8080), asked with the API\n"
	"        key in $CHORUS_KEY\n"
	"  routes\n"
	"        every endpoint of the API with who may call it\n"
	"  report [--data DIR] [--db CONNINFO] [--from TIME] [--to TIME] [--group G] [--format "
	"json|csv]\n"
	"        plays and time played per track, artist, album, location, day or hour\n"
	"        (G; default track), or one line per play (none: the census report);\n"
	"        TIME is RFC 3339 (2024-05-01T00:00:00Z), from inclusive, to exclusive\n"
	"  user add NAME --role ROLE | list | passwd NAME | remove NAME [--data DIR] [--db "
	"CONNINFO]\n"
	"        people: ROLE is admin, editor, store or listener; add and passwd read\n"
	"        the password from standard input when it is not a terminal, else\n"
	"        make one and print it on the last line\n"
	"  key create --role ROLE [--location L [--zone Z]] [--name N] | list | revoke ID\n"
	"        [--data DIR] [--db CONNINFO]\n"
	"        API keys for programs and store devices (a store key is bound to\n"
	"        an existing location, and zone, by id or name); create prints the\n"
	"        key, once, on the last line\n"
	"  location add NAME --timezone TZ --country CC [--licence interactive|\n"
	"        non-interactive] [--address A] [--data DIR] [--db CONNINFO]\n"
	"  zone add NAME --location L [--data DIR] [--db CONNINFO]\n"
	"        a store (TZ an IANA zone, CC ISO 3166) and a sound area of it, as\n"
	"        POST /api/v1/locations and /zones make them; each prints its id\n"
	"  version\n"
	"        print the version\n"
	"\n"
	"DIR defaults to $CHORUS_DATA, or ./chorus-data.\n"
	"SPEC is dir:PATH (default: DIR/origin; $CHORUS_ORIGIN) or\n"
	"s3://BUCKET[/PREFIX]?endpoint=URL&region=R (keys from $AWS_ACCESS_KEY_ID and\n"
	"$AWS_SECRET_ACCESS_KEY).\n"
	"CONNINFO is a libpq connection string (default: $CHORUS_DB); with it the\n"
	"catalog and plays live in PostgreSQL and DIR holds this node's replica.\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static const char *default_data_dir(void)
{
	const char *d = getenv("CHORUS_DATA");

	return d && *d ? d : "./chorus-data";
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "chorus: %s wants a number from %d to %d, not \"%s\"\n", opt, lo,
			hi, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int cmd_ingest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'}, {"origin", required_argument, NULL, 'o'},
		{"db", required_argument, NULL, 'D'},   {"jobs", required_argument, NULL, 'j'},
		{"progress", no_argument, NULL, 'p'},   {"no-progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
	};
	struct ingest_opts opts = {
		.data_dir = default_data_dir(),
		.origin = getenv("CHORUS_ORIGIN"),
		.db = getenv("CHORUS_DB"),
		.progress = isatty(STDERR_FILENO),
		.file_lines = !isatty(STDOUT_FILENO),
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:o:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opts.data_dir = optarg;
			break;
		case 'o':
			opts.origin = optarg;
			break;
		case 'D':
			opts.db = optarg;
			break;
		case 'j':
			if (parse_int("--jobs", optarg, 1, 256, &opts.jobs) < 0)
				return 2;
			break;
		case 'p':
			opts.progress = true;
			break;
		case 'P':
			opts.progress = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "chorus: ingest: no PATH given\n");
		usage(stderr);
		return 2;
	}
	return ingest_run(&opts, argv + optind, argc - optind);
}

/* "512M", "2G", "1048576": bytes, or 0 when malformed. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;

	if (end == s || *s == '-')
		return 0;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		end++;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		end++;
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > UINT64_MAX / mult)
		return 0;
	return v * mult;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},
		{"origin", required_argument, NULL, 'o'},
		{"db", required_argument, NULL, 'B'},
		{"listen", required_argument, NULL, 'l'},
		{"cache-size", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 't'},
		{"max-conns", required_argument, NULL, 'm'},
		{"drain-timeout", required_argument, NULL, 'D'},
		{"access-log", required_argument, NULL, 'a'},
		{"advertise", required_argument, NULL, 'A'},
		{"site", required_argument, NULL, 'S'},
		{"dead-after", required_argument, NULL, 'T'},
		{"peer-timeout", required_argument, NULL, 'P'},
		{"join", required_argument, NULL, 'J'},
		{"token", required_argument, NULL, 'K'},
		{"public-read", no_argument, NULL, 'R'},
		{"plays-per-minute", required_argument, NULL, 'Q'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'Y'},
		{"metrics-listen", required_argument, NULL, 'M'},
		{"upload-max", required_argument, NULL, 'U'},
		{"upload-expiry", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct serve_opts o = {
		.data_dir = default_data_dir(),
		.origin = getenv("CHORUS_ORIGIN"),
		.db = getenv("CHORUS_DB"),
		.listen = "127.0.0.1:8080",
		.cache_bytes = 1ull << 30,
		.drain_ms = 10000,
		.access_log_fd = -1,
		.plays_per_minute = 600,
		.upload_max = 2ull << 30,
		.upload_expiry_s = 24 * 3600,
	};
	const char *access_log = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	char err[256];
	int c, secs;

	while ((c = getopt_long(argc, argv, "d:o:l:c:t:m:D:a:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.data_dir = optarg;
			break;
		case 'o':
			o.origin = optarg;
			break;
		case 'B':
			o.db = optarg;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 'c':
			o.cache_bytes = parse_size(optarg);
			if (o.cache_bytes == 0) {
				fprintf(stderr, "chorus: --cache-size: bad size \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 't':
			if (parse_int("--threads", optarg, 1, 64, &o.threads) < 0)
				return 2;
			break;
		case 'm':
			if (parse_int("--max-conns", optarg, 1, 1000000, &o.max_conns) < 0)
				return 2;
			break;
		case 'D':
			if (parse_int("--drain-timeout", optarg, 0, 3600, &secs) < 0)
				return 2;
			o.drain_ms = secs * 1000;
			break;
		case 'a':
			access_log = optarg;
			break;
		case 'A':
			if ((strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) ||
			    strlen(optarg) > 255 || strpbrk(optarg, " \t\r\n")) {
				fprintf(stderr,
					"chorus: --advertise wants an http:// or https:// URL of at"
					" most 255 bytes, not \"%s\"\n",
					optarg);
				return 2;
			}
			o.advertise = optarg;
			break;
		case 'S':
			if (strlen(optarg) > 63) {
				fprintf(stderr, "chorus: --site: at most 63 bytes\n");
				return 2;
			}
			o.site = optarg;
			break;
		case 'T':
			if (parse_int("--dead-after", optarg, 1500, 600000, &o.dead_after_ms) < 0)
				return 2;
			break;
		case 'P':
			if (parse_int("--peer-timeout", optarg, 50, 60000, &o.peer_timeout_ms) < 0)
				return 2;
			break;
		case 'J':
			o.join = optarg;
			break;
		case 'K':
			o.join_token = optarg;
			break;
		case 'R':
			o.public_read = true;
			break;
		case 'Q':
			if (parse_int("--plays-per-minute", optarg, 1, 1000000,
				      &o.plays_per_minute) < 0)
				return 2;
			break;
		case 'C':
			o.tls_cert = optarg;
			break;
		case 'Y':
			o.tls_key = optarg;
			break;
		case 'M':
			o.metrics_listen = optarg;
			break;
		case 'U':
			o.upload_max = parse_size(optarg);
			if (o.upload_max == 0) {
				fprintf(stderr, "chorus: --upload-max: bad size \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'E':
			if (parse_int("--upload-expiry", optarg, 1, 365 * 24 * 3600,
				      &o.upload_expiry_s) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chorus: serve: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (!o.join != !o.join_token) {
		fprintf(stderr, "chorus: serve: --join and --token go together\n");
		return 2;
	}
	if (!o.tls_cert != !o.tls_key) {
		fprintf(stderr, "chorus: serve: --tls-cert and --tls-key go together\n");
		return 2;
	}
	/* Before anything is created: a typo in --listen must not leave a
	 * data directory, a joined cluster.json or an access log behind. */
	if (http_listen_parse(o.listen, &ss, &sl, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: serve: --listen \"%s\": %s\n", o.listen, err);
		return 2;
	}
	if (http_listen_check_free(&ss, sl, o.listen, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: serve: %s\n", err);
		return 1;
	}
	if (o.metrics_listen) {
		if (http_listen_parse(o.metrics_listen, &ss, &sl, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: serve: --metrics-listen \"%s\": %s\n",
				o.metrics_listen, err);
			return 2;
		}
		if (http_listen_check_free(&ss, sl, o.metrics_listen, err, sizeof(err)) < 0) {
			fprintf(stderr, "chorus: serve: %s\n", err);
			return 1;
		}
	}
	/* Loaded again by the server; checked here so a bad pair leaves
	 * nothing behind either. */
	if (o.tls_cert && tls_check(o.tls_cert, o.tls_key, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: serve: TLS: %s\n", err);
		return 1;
	}
	if (access_log && strcmp(access_log, "-") == 0) {
		o.access_log_fd = STDOUT_FILENO;
	} else if (access_log) {
		o.access_log_fd = open(access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (o.access_log_fd < 0) {
			fprintf(stderr, "chorus: --access-log %s: %m\n", access_log);
			return 1;
		}
	}
	return serve_run(&o);
}

static int report_write(void *ud, const void *p, size_t n)
{
	return fwrite(p, 1, n, ud) == n ? 0 : -EIO;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},   {"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},     {"group", required_argument, NULL, 'g'},
		{"format", required_argument, NULL, 'F'}, {"db", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *data_dir = default_data_dir(), *from = NULL, *to = NULL, *group = NULL,
		   *format = NULL, *db = getenv("CHORUS_DB");
	struct plays_query q;
	char err[512];
	int c;

	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data_dir = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'F':
			format = optarg;
			break;
		case 'B':
			db = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chorus: report: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (plays_query_parse(from, to, group, format, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: report: %s\n", err);
		return 2;
	}
	if (plays_report(data_dir, db, &q, report_write, stdout, err, sizeof(err)) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "chorus: report: %s\n", err);
		return 1;
	}
	return 0;
}

/* The first line of path, trimmed, into key: 0, or -1 after a message
 * (which never holds the file's contents). */
static int read_key_file(const char *path, char *key, size_t keylen)
{
	char *data = NULL;
	size_t len, n;
	int rc = fs_read_all(path, 4096, &data, &len);

	if (rc < 0) {
		fprintf(stderr, "chorus: upload: --key-file %s: %s\n", path,
			rc == -EFBIG ? "larger than a key" : strerror(-rc));
		return -1;
	}
	n = strcspn(data, "\r\n");
	while (n > 0 && (data[n - 1] == ' ' || data[n - 1] == '\t'))
		n--;
	rc = n < keylen ? 0 : -1;
	if (rc == 0) {
		memcpy(key, data, n);
		key[n] = '\0';
	} else {
		fprintf(stderr, "chorus: upload: --key-file %s: its first line is too long\n",
			path);
	}
	explicit_bzero(data, len);
	free(data);
	return rc;
}

static int cmd_upload(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"key-file", required_argument, NULL, 'K'},
		{"chunk-size", required_argument, NULL, 'c'},
		{"retries", required_argument, NULL, 'r'},
		{"timeout", required_argument, NULL, 't'},
		{"wait", no_argument, NULL, 'w'},
		{"no-wait", no_argument, NULL, 'W'},
		{"wait-timeout", required_argument, NULL, 'T'},
		{"progress", no_argument, NULL, 'p'},
		{"no-progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct upload_cmd u = {
		.key = getenv("CHORUS_KEY"),
		.chunk_bytes = 64ull << 20,
		.retries = 10,
		.timeout_s = 60,
		.wait = true,
		.wait_timeout_s = 600,
		.progress = isatty(STDERR_FILENO),
	};
	static char key[600];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			u.key = optarg;
			break;
		case 'K':
			if (read_key_file(optarg, key, sizeof(key)) < 0)
				return 2;
			u.key = key;
			break;
		case 'c':
			u.chunk_bytes = parse_size(optarg);
			if (u.chunk_bytes < 4096) {
				fprintf(stderr,
					"chorus: --chunk-size wants a size of 4K or more, not "
					"\"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 'r':
			if (parse_int("--retries", optarg, 0, 1000, &u.retries) < 0)
				return 2;
			break;
		case 't':
			if (parse_int("--timeout", optarg, 1, 3600, &u.timeout_s) < 0)
				return 2;
			break;
		case 'w':
			u.wait = true;
			break;
		case 'W':
			u.wait = false;
			break;
		case 'T':
			if (parse_int("--wait-timeout", optarg, 0, 86400, &u.wait_timeout_s) < 0)
				return 2;
			break;
		case 'p':
			u.progress = true;
			break;
		case 'P':
			u.progress = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "chorus: upload: want a URL and at least one PATH\n");
		usage(stderr);
		return 2;
	}
	if (u.key && !*u.key)
		u.key = NULL;
	/* Never echoed: only what is wrong with it. */
	if (u.key && !upload_cmd_key_ok(u.key)) {
		fprintf(stderr, "chorus: upload: the API key must be 1 to 512 printable characters"
				" without spaces\n");
		return 2;
	}
	u.url = argv[optind];
	u.lines = !isatty(STDOUT_FILENO) || !u.progress;
	rc = upload_cmd_run(&u, argv + optind + 1, argc - optind - 1);
	explicit_bzero(key, sizeof(key));
	return rc;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"data", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *url = NULL, *data_dir = default_data_dir();
	int c;

	while ((c = getopt_long(argc, argv, "u:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chorus: status: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	return cluster_status_run(url, data_dir);
}

/* The route table as a table: METHODS PATH RULE, one route a line. */
static int cmd_routes(int argc, char **argv)
{
	const struct api_route *r;
	char methods[64];
	size_t n;

	if (argc > 1) {
		fprintf(stderr, "chorus: routes: unexpected argument \"%s\"\n", argv[1]);
		return 2;
	}
	r = api_routes(&n);
	for (size_t i = 0; i < n; i++) {
		api_route_methods(r[i].methods, methods, sizeof(methods));
		printf("%-16s %-36s %s\n", methods, r[i].path, access_rule_name(r[i].rule));
	}
	return 0;
}

static int cmd_cluster(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},
		{"ttl", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *data_dir = default_data_dir();
	int c, ttl = JOIN_TTL_DEFAULT_H;

	if (argc < 2 || strcmp(argv[1], "token") != 0) {
		fprintf(stderr, "chorus: cluster: the one subcommand is \"token\"\n");
		usage(stderr);
		return 2;
	}
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data_dir = optarg;
			break;
		case 't':
			if (parse_int("--ttl", optarg, 1, 8760, &ttl) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chorus: cluster token: unexpected argument \"%s\"\n",
			argv[optind]);
		return 2;
	}
	return join_token_command(data_dir, ttl);
}

/* `chorus user VERB ...` and `chorus key VERB ...`: the bodies are in
 * node/principals_cmd.c. */
static int cmd_principals(int argc, char **argv, bool user)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'}, {"db", required_argument, NULL, 'B'},
		{"role", required_argument, NULL, 'r'}, {"location", required_argument, NULL, 'l'},
		{"zone", required_argument, NULL, 'z'}, {"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
	};
	struct principals_cmd pc = {.data_dir = default_data_dir(), .db = getenv("CHORUS_DB")};
	int c;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "chorus: %s: which subcommand? (%s)\n", argv[0],
			user ? "add, list, passwd, remove" : "create, list, revoke");
		return 2;
	}
	pc.verb = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			pc.data_dir = optarg;
			break;
		case 'B':
			pc.db = optarg;
			break;
		case 'r':
			pc.role = optarg;
			break;
		case 'l':
			pc.location = optarg;
			break;
		case 'z':
			pc.zone = optarg;
			break;
		case 'n':
			pc.name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		pc.operand = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "chorus: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	return user ? principals_cmd_user(&pc) : principals_cmd_key(&pc);
}

/* `chorus location add ...` and `chorus zone add ...` (node/stores_cmd.c). */
static int cmd_stores(int argc, char **argv, bool zone)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},
		{"db", required_argument, NULL, 'B'},
		{"timezone", required_argument, NULL, 't'},
		{"country", required_argument, NULL, 'c'},
		{"licence", required_argument, NULL, 'L'},
		{"address", required_argument, NULL, 'a'},
		{"location", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stores_cmd sc = {.data_dir = default_data_dir(), .db = getenv("CHORUS_DB")};
	int c;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "chorus: %s: which subcommand? (add)\n", argv[0]);
		return 2;
	}
	sc.verb = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			sc.data_dir = optarg;
			break;
		case 'B':
			sc.db = optarg;
			break;
		case 't':
			sc.timezone = optarg;
			break;
		case 'c':
			sc.country = optarg;
			break;
		case 'L':
			sc.licence = optarg;
			break;
		case 'a':
			sc.address = optarg;
			break;
		case 'l':
			sc.location = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		sc.name = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "chorus: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	return zone ? stores_cmd_zone(&sc) : stores_cmd_location(&sc);
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "ingest") == 0)
		return cmd_ingest(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(cmd, "upload") == 0)
		return cmd_upload(argc - 1, argv + 1);
	if (strcmp(cmd, "cluster") == 0)
		return cmd_cluster(argc - 1, argv + 1);
	if (strcmp(cmd, "routes") == 0)
		return cmd_routes(argc - 1, argv + 1);
	if (strcmp(cmd, "location") == 0 || strcmp(cmd, "zone") == 0)
		return cmd_stores(argc - 1, argv + 1, strcmp(cmd, "zone") == 0);
	if (strcmp(cmd, "user") == 0 || strcmp(cmd, "key") == 0)
		return cmd_principals(argc - 1, argv + 1, strcmp(cmd, "user") == 0);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("chorus %s\n", CHORUS_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "chorus: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
