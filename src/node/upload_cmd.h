#ifndef CHORUS_NODE_UPLOAD_CMD_H
#define CHORUS_NODE_UPLOAD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * `chorus upload URL PATH...` (chorus.c parses the arguments): sends audio
 * files and archives, and the folders holding them, to a node's tus
 * endpoint (client/tus.h), resuming what an earlier run left unfinished
 * (client/resume.h), and with wait, follows each upload's ingest on the
 * node to its end. In node/: the command joins the walk (ingest/walk.h)
 * and the tus client to the terminal.
 */
struct upload_cmd {
	const char *url;      /* a node's base URL, or its tus endpoint (".../uploads") */
	const char *key;      /* API key, or NULL */
	uint64_t chunk_bytes; /* per PATCH */
	int retries;          /* failures in a row before a file is given up */
	int timeout_s;        /* a request moving nothing for this long fails */
	bool wait;            /* poll each upload's status until ingested */
	int wait_timeout_s;   /* for all of them together */
	bool progress;        /* a line redrawn on stderr */
	bool lines;           /* a line per file on stdout */
};

/* The tus endpoint URL names into out: URL itself when its path ends with
 * "/uploads", else URL + "/api/v1/uploads" (trailing slashes dropped).
 * 0, or -1 when URL is not an http(s) URL or is too long. */
int upload_cmd_endpoint(const char *url, char *out, size_t outlen);

/* Whether key may be sent in a header: 1 to 512 printable ASCII
 * characters, no spaces. */
bool upload_cmd_key_ok(const char *key);

/* Runs the command; the exit status: 0 when every file was uploaded (and,
 * waiting, ingested), 1 when any failed. */
int upload_cmd_run(const struct upload_cmd *c, char *const *paths, int npaths);

#endif
