#ifndef CHORUS_CLUSTER_HTTP_CLIENT_H
#define CHORUS_CLUSTER_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>

#include "util/buf.h"

/*
 * What every request chorus makes to another chorus node (probes, peer
 * fills, joins, `chorus status`) has in common, set in one place; callers
 * add their own options (headers, a body, a write callback) after it.
 */

/* libcurl's global state. libcurl counts these: each 0 from init is paired
 * with one cleanup, and the last cleanup frees it. 0, or -EIO. */
int http_client_global_init(void);
void http_client_global_cleanup(void);

/*
 * Sets up h, fresh from curl_easy_init or just curl_easy_reset, for a
 * request to url: http and https only; no signals (chorus has threads and
 * libcurl's resolver timeouts would raise SIGALRM); no proxy whatever the
 * environment says (nodes are asked directly); User-Agent chorus/VERSION;
 * connect_ms to connect and total_ms for the whole request.
 */
void http_client_setup(CURL *h, const char *url, long connect_ms, long total_ms);

/*
 * For a one-off request: the global state taken and a handle set up as
 * above, or NULL when libcurl cannot start. http_client_free ends both.
 */
CURL *http_client_new(const char *url, long connect_ms, long total_ms);
void http_client_free(CURL *h);

/* The answer's body appended to b, whose cap bounds it (past the cap the
 * transfer fails). b must outlive the transfer. */
void http_client_body_to(CURL *h, buf_t *b);

/* Performs the request: 0 with the HTTP status in *status, or -1 with
 * libcurl's reason in err. */
int http_client_perform(CURL *h, long *status, char *err, size_t errlen);

#endif
