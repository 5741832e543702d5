#ifndef CHORUS_HTTP_PARSER_H
#define CHORUS_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A strict, bounded HTTP/1.1 request-head parser. It never allocates: the
 * request's strings point into the caller's buffer. It accepts exactly
 * what RFC 9112 requires (CRLF line ends, token methods and header names,
 * no obsolete line folding, one Content-Length) and refuses the rest with
 * the status the client should get.
 */

#define HTTP_MAX_REQUEST_LINE 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_HEADER_BYTES 16384 /* the whole head, request line included */

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_PATCH,
	HTTP_OTHER, /* a valid token chorus does not implement: 501 */
};

struct http_str {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_str name, value;
};

struct http_request {
	enum http_method method;
	struct http_str method_str;
	struct http_str target; /* origin-form: /path?query */
	struct http_str path;   /* target up to '?' (still percent-encoded) */
	struct http_str query;  /* after '?', without it; empty when none */
	int minor;              /* HTTP/1.minor */
	bool keep_alive;        /* after Connection and the version's default */
	bool has_body;
	uint64_t content_length;
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t head_len;      /* bytes of the head, final CRLF included */
	struct http_str body; /* set by the server: the whole body, content_length bytes */
	bool body_streamed;   /* set by the server: the body comes through http_take_body */
};

/*
 * Parses the head at buf[0..len). Returns:
 *   > 0   the head is complete: its length (req->head_len);
 *   0     incomplete: read more (never when len reached the limits);
 *   < 0   -status: 400 malformed, 414 request line too long, 431 headers
 *         too large or too many, 501 unsupported (transfer codings),
 *         505 not HTTP/1.x.
 * On an error, *why (when not NULL) is set to a static explanation.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req, const char **why);

/* The first header named name (case-insensitive), or NULL. */
const struct http_str *http_header_get(const struct http_request *req, const char *name);

/* Case-insensitive compare of s with a NUL-terminated literal. */
bool http_str_eq(struct http_str s, const char *lit);

/*
 * Finds a query parameter (the raw value, percent-decoded into out).
 * Returns the decoded length, or -1 when absent or not decodable, or when
 * it does not fit in outlen-1 bytes. out is NUL-terminated.
 */
int http_query_param(struct http_str query, const char *name, char *out, size_t outlen);

/* True when the query has parameter name, with or without a value. */
bool http_query_has(struct http_str query, const char *name);

/* Percent-decodes s into out (outlen >= s.len + 1). -1 on a bad escape or
 * an encoded NUL. '+' is left alone (paths); see http_query_param. */
int http_percent_decode(struct http_str s, char *out, size_t outlen, bool plus_is_space);

#endif
