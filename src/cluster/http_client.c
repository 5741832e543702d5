/*
 * The shared setup of chorus's own HTTP requests (see http_client.h).
 * Only the options that must be the same everywhere live here; timeouts
 * are each caller's, since a probe, a chunk and a join wait for different
 * things.
 */
#include "cluster/http_client.h"

#include <errno.h>
#include <stdio.h>

#include "version.h"

int http_client_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void http_client_global_cleanup(void)
{
	curl_global_cleanup();
}

void http_client_setup(CURL *h, const char *url, long connect_ms, long total_ms)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "chorus/" CHORUS_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
}

CURL *http_client_new(const char *url, long connect_ms, long total_ms)
{
	CURL *h;

	if (http_client_global_init() < 0)
		return NULL;
	if (!(h = curl_easy_init())) {
		http_client_global_cleanup();
		return NULL;
	}
	http_client_setup(h, url, connect_ms, total_ms);
	return h;
}

void http_client_free(CURL *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h);
	http_client_global_cleanup();
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

void http_client_body_to(CURL *h, buf_t *b)
{
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
}

int http_client_perform(CURL *h, long *status, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	*status = 0;
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(h);
	/* cerr goes out of scope: libcurl must not write to it later. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return 0;
}
