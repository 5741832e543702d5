/* libFuzzer: the HTTP request-head parser. Checks invariants on success:
 * every slice lies inside the input, the head length is what was parsed,
 * and parsing a prefix of a complete head never claims completion. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static void inside(const uint8_t *data, size_t size, struct http_str s)
{
	if (s.len && ((const uint8_t *)s.p < data || (const uint8_t *)s.p + s.len > data + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	const char *why = NULL;
	char out[256];
	int rc = http_parse_request((const char *)data, size, &req, &why);

	if (rc < 0) {
		if (!why || (-rc != 400 && -rc != 414 && -rc != 431 && -rc != 501 && -rc != 505))
			abort();
		return 0;
	}
	if (rc == 0)
		return 0;
	if ((size_t)rc != req.head_len || req.head_len > size || req.nheaders > HTTP_MAX_HEADERS)
		abort();
	inside(data, size, req.target);
	inside(data, size, req.path);
	inside(data, size, req.query);
	for (size_t i = 0; i < req.nheaders; i++) {
		inside(data, size, req.headers[i].name);
		inside(data, size, req.headers[i].value);
	}
	if (req.head_len > 1) {
		struct http_request again;
		if (http_parse_request((const char *)data, req.head_len - 1, &again, NULL) > 0)
			abort();
	}
	(void)http_query_param(req.query, "limit", out, sizeof(out));
	(void)http_query_has(req.query, "offset");
	(void)http_percent_decode(req.path, out, sizeof(out), false);
	return 0;
}
