/*
 * GET /api/v1/search?q=...&limit=N: the parameters are checked here, the
 * search itself is catalog/search.c on this loop's reader. A 200 answer
 * goes to the loop's memo like every catalog read: the memo empties on any
 * catalog commit, so a remembered answer never outlives the index it came
 * from, and a search box's repeated prefixes cost one lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/text.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define SEARCH_BODY_MAX ((size_t)4 << 20)
#define SEARCH_LIMIT_DEFAULT 10

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' && s[i] != '\f' &&
		    s[i] != '\v')
			return false;
	return true;
}

void api_search(struct api_call *x)
{
	struct api_loop *al = x->al;
	http_conn_t *c = x->c;
	const struct http_request *req = x->req;
	char q[SEARCH_QUERY_MAX + 1], v[32];
	long limit = SEARCH_LIMIT_DEFAULT;
	int qlen, st;
	buf_t b;

	qlen = http_query_param(req->query, "q", q, sizeof(q));
	if (qlen < 0) {
		if (!http_query_has(req->query, "q"))
			http_send_error(c, 400, "q is required");
		else
			http_send_error(c, 400, "q must be at most 256 bytes, percent-encoded");
		return;
	}
	if (blank(q, (size_t)qlen)) {
		http_send_error(c, 400, "q is empty");
		return;
	}
	if (!text_is_utf8(q, (size_t)qlen)) {
		http_send_error(c, 400, "q is not UTF-8");
		return;
	}
	if (http_query_has(req->query, "limit")) {
		char *end;
		if (http_query_param(req->query, "limit", v, sizeof(v)) < 0)
			v[0] = '\0';
		errno = 0;
		limit = strtol(v, &end, 10);
		if (!*v || *end || errno || limit < 1 || limit > SEARCH_LIMIT_MAX) {
			http_send_error(c, 400, "limit must be an integer from 1 to 50");
			return;
		}
	}
	buf_init(&b, SEARCH_BODY_MAX);
	st = search_json(al->search, q, (size_t)qlen, (int)limit, &b);
	if (st == 200 && buf_append(&b, "\n", 1) < 0)
		st = 500;
	if (st == 200) {
		api_memo_put(x, 200, JSON_TYPE, b.data, b.len);
		http_send(c, 200, JSON_TYPE, NULL, b.data, b.len);
	} else {
		http_send_error(c, st, st == 400 ? "bad search query" : "internal error");
	}
	buf_free(&b);
}
