/*
 * chorus: one binary, a few subcommands. This file only parses arguments
 * and hands over to the subsystem that does the work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "version.h"

static const char usage_text[] =
	"usage: chorus COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  ingest [--data DIR] [--origin SPEC] [--jobs N] PATH...\n"
	"        read audio files and folders into the catalog and the origin\n"
	"  version\n"
	"        print the version\n"
	"\n"
	"DIR defaults to $CHORUS_DATA, or ./chorus-data.\n"
	"SPEC is dir:PATH (default: DIR/origin).\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static const char *default_data_dir(void)
{
	const char *d = getenv("CHORUS_DATA");

	return d && *d ? d : "./chorus-data";
}

static int cmd_ingest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},
		{"origin", required_argument, NULL, 'o'},
		{"jobs", required_argument, NULL, 'j'},
		{"progress", no_argument, NULL, 'p'},
		{"no-progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ingest_opts opts = {
		.data_dir = default_data_dir(),
		.origin = getenv("CHORUS_ORIGIN"),
		.progress = isatty(STDERR_FILENO),
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
		case 'j': {
			char *end;
			long j = strtol(optarg, &end, 10);
			if (*end || j < 1 || j > 256) {
				fprintf(stderr, "chorus: ingest: --jobs wants 1..256, not \"%s\"\n",
					optarg);
				return 2;
			}
			opts.jobs = (int)j;
			break;
		}
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
