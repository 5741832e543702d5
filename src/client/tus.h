#ifndef CHORUS_CLIENT_TUS_H
#define CHORUS_CLIENT_TUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/*
 * A tus 1.0.0 client (https://tus.io/protocols/resumable-upload), over one
 * libcurl easy handle whose connections are kept between requests: the
 * core protocol (HEAD, PATCH), creation (POST) and, when the server
 * advertises it for sha256, checksum. One thread; blocking calls.
 *
 * Every request carries "Tus-Resumable: 1.0.0" and, with a key,
 * "Authorization: Bearer KEY". The key is never written anywhere else:
 * not in an error message, not in a URL.
 */

#define TUS_URL_MAX 2048

typedef struct tus tus_t;

struct tus_opts {
	const char *endpoint; /* the creation URL (POST here); copied */
	const char *key;      /* API key, or NULL; copied, wiped at tus_close */
	uint64_t chunk_bytes; /* the most one PATCH carries (each its own checksum) */
	int retries;          /* failures in a row, without progress, before giving up */
	long stall_s;         /* a request moving no byte for this long fails (retried) */
	/* Called from inside the transfer, often: the file's bytes the
	 * server has or is being sent, for a progress line. May be NULL. */
	void (*progress)(void *ud, uint64_t offset);
	void *ud;
};

enum tus_result {
	TUS_OK,        /* every byte is on the server */
	TUS_FAILED,    /* this file failed (err says why); others may go on */
	TUS_TOO_LARGE, /* 413: the file is over the server's limit */
	TUS_REFUSED,   /* 401, 403: the key is missing, wrong, or without the right */
	TUS_STOP,      /* nothing more can work: no tus server there, or none reached */
};

/* A new client, or NULL when libcurl cannot start. */
tus_t *tus_open(const struct tus_opts *o);
void tus_close(tus_t *t);

/* One file to send. */
struct tus_upload {
	int fd;               /* read with pread from offsets; the caller's */
	uint64_t size;        /* Upload-Length */
	const char *filename; /* sent as Upload-Metadata "filename" */
	/* In: an upload URL from an earlier run, to resume, or "". Out: the
	 * upload's URL (a new one when the old one was gone). */
	char url[TUS_URL_MAX];
	/* Called once a new upload exists on the server, before its first
	 * byte is sent (so a run killed from then on can resume it). */
	void (*created)(void *ud, const char *url);
	void *ud;
	/* Out. */
	uint64_t resumed_at; /* the server's offset when this run first asked, 0 if new */
	uint64_t sent;       /* body bytes this run sent, those lost to failures too */
	int recovered;       /* failures retried */
};

/*
 * Sends u's file: creates the upload when u->url is empty (or gone: 404
 * or 410 on HEAD), otherwise asks the server's offset with HEAD and goes
 * on from there; then PATCHes chunk after chunk. A connection error, a
 * timeout, a 5xx, 423, 429, 460 (checksum mismatch) or 409 (offset
 * mismatch) ask HEAD for the offset and go on from it, after a backoff
 * of 0.5 s doubling to 8 s; opts.retries failures in a row give up. The
 * first call also asks the server's options (OPTIONS). err holds the
 * reason of anything but TUS_OK (no key in it).
 */
enum tus_result tus_send(tus_t *t, struct tus_upload *u, char *err, size_t errlen);

/*
 * GET url with the client's headers, the answer's body into body (its cap
 * bounds it). 0 with the HTTP status in *status, or -1 with the reason in
 * err.
 */
int tus_get(tus_t *t, const char *url, buf_t *body, long *status, char *err, size_t errlen);

/* The tus metadata value of one pair: "KEY BASE64(value)" into out.
 * 0, or -1 when it does not fit. */
int tus_metadata_pair(const char *key, const char *value, char *out, size_t outlen);

/* The absolute URL that location (absolute or relative, from a Location
 * header) names, seen from base, into out. 0, or -1 when it is not an
 * http(s) URL, does not fit, or would send an https request's headers
 * over plain http. */
int tus_resolve(const char *base, const char *location, char *out, size_t outlen);

#endif
