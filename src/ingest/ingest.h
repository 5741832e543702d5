#ifndef CHORUS_INGEST_INGEST_H
#define CHORUS_INGEST_INGEST_H

#include <stdbool.h>

struct ingest_opts {
	const char *data_dir;
	const char *origin; /* origin spec, NULL for DATA_DIR/origin */
	const char *db;     /* PostgreSQL conninfo, NULL for DATA_DIR/catalog.db */
	int jobs;           /* worker threads; 0: two per core */
	bool progress;      /* a progress line on stderr */
	bool file_lines;    /* a line per file on stdout (for logs: not on a terminal) */
};

/*
 * `chorus ingest`: walks paths, reads each audio file once, seals its
 * chunks into the origin and commits its catalog rows. Prints a summary on
 * stdout, after a line per file with file_lines ("ingest: PATH: RESULT,
 * BYTES bytes, MS ms[: DETAIL]", RESULT added, updated, unchanged,
 * duplicate or failed, DETAIL the reason or the other file). Returns the process exit status: 0
 * when every file was ingested or unchanged, 1 when any failed.
 */
int ingest_run(const struct ingest_opts *opts, char *const *paths, int npaths);

#endif
