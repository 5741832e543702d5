#include "http/parser.h"

#include <string.h>
#include <strings.h>

#include "util/text.h"

/* RFC 9110 tchar. */
static const unsigned char tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
	['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
	['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
	['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
	['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
	['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
	['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool http_str_eq(struct http_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* Does the comma-separated list s contain token tok? */
static bool list_has(struct http_str s, const char *tok)
{
	size_t i = 0;

	while (i < s.len) {
		size_t start, end;
		while (i < s.len && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
			i++;
		start = i;
		while (i < s.len && s.p[i] != ',')
			i++;
		end = i;
		while (end > start && (s.p[end - 1] == ' ' || s.p[end - 1] == '\t'))
			end--;
		if (http_str_eq((struct http_str){s.p + start, end - start}, tok))
			return true;
	}
	return false;
}

static enum http_method method_of(struct http_str m)
{
	static const struct {
		const char *name;
		enum http_method method;
	} methods[] = {
		{"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
		{"PUT", HTTP_PUT},     {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
		{"PATCH", HTTP_PATCH},
	};

	/* Methods are case-sensitive. */
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (m.len == strlen(methods[i].name) && memcmp(m.p, methods[i].name, m.len) == 0)
			return methods[i].method;
	return HTTP_OTHER;
}

#define FAIL(status, msg)                                                                          \
	do {                                                                                       \
		if (why)                                                                           \
			*why = (msg);                                                              \
		return -(status);                                                                  \
	} while (0)

int http_parse_request(const char *buf, size_t len, struct http_request *req, const char **why)
{
	const char *p = buf, *end, *eol, *sp;
	size_t limit = len < HTTP_MAX_HEADER_BYTES ? len : HTTP_MAX_HEADER_BYTES;
	const struct http_str *cl = NULL;

	memset(req, 0, sizeof(*req));
	/* Request line. RFC 9112 lets a server skip empty lines before it;
	 * at most one CRLF is tolerated here. */
	if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
		p += 2;
	end = buf + limit;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol) {
		if ((size_t)(end - p) >= HTTP_MAX_REQUEST_LINE)
			FAIL(414, "request line too long");
		if (len >= HTTP_MAX_HEADER_BYTES)
			FAIL(431, "request head too large");
		/* Fail early on bytes that can never start a request. */
		for (const char *q = p; q < end; q++)
			if (*q == ' ')
				break;
			else if (!tchar[(unsigned char)*q])
				FAIL(400, "malformed request line");
		return 0;
	}
	if ((size_t)(eol - p) >= HTTP_MAX_REQUEST_LINE)
		FAIL(414, "request line too long");
	if (eol == p || eol[-1] != '\r')
		FAIL(400, "request line must end with CRLF");

	sp = p;
	while (sp < eol && tchar[(unsigned char)*sp])
		sp++;
	if (sp == p || *sp != ' ')
		FAIL(400, "malformed method");
	req->method_str = (struct http_str){p, (size_t)(sp - p)};
	req->method = method_of(req->method_str);
	p = sp + 1;
	sp = p;
	while (sp < eol && (unsigned char)*sp > ' ' && *sp != 0x7f)
		sp++;
	if (sp == p || *sp != ' ')
		FAIL(400, "malformed request target");
	if (*p != '/') {
		/* Absolute-form is for proxies; "*" only for OPTIONS. */
		if (!(sp - p == 1 && *p == '*' && req->method == HTTP_OPTIONS))
			FAIL(400, "request target must be an absolute path");
	}
	req->target = (struct http_str){p, (size_t)(sp - p)};
	{
		const char *q = memchr(p, '?', (size_t)(sp - p));
		req->path = (struct http_str){p, (size_t)((q ? q : sp) - p)};
		req->query = q ? (struct http_str){q + 1, (size_t)(sp - q - 1)}
			       : (struct http_str){sp, 0};
		const char *h = memchr(p, '#', (size_t)(sp - p));
		if (h)
			FAIL(400, "fragment in request target");
	}
	p = sp + 1;
	if (eol - 1 - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' ||
	    p[5] > '9' || p[7] < '0' || p[7] > '9')
		FAIL(400, "malformed HTTP version");
	if (p[5] != '1')
		FAIL(505, "only HTTP/1.x is supported");
	req->minor = p[7] - '0';
	req->keep_alive = req->minor >= 1;

	/* Header fields. */
	p = eol + 1;
	for (;;) {
		const char *colon, *v, *ve;
		struct http_header *h;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol) {
			if (len >= HTTP_MAX_HEADER_BYTES)
				FAIL(431, "request head too large");
			return 0;
		}
		if (eol == p || eol[-1] != '\r')
			FAIL(400, "header line must end with CRLF");
		if (eol - 1 == p) { /* the empty line ending the head */
			p = eol + 1;
			break;
		}
		if (*p == ' ' || *p == '\t')
			FAIL(400, "obsolete header line folding");
		if (req->nheaders == HTTP_MAX_HEADERS)
			FAIL(431, "too many header fields");
		colon = p;
		while (colon < eol && tchar[(unsigned char)*colon])
			colon++;
		if (colon == p || *colon != ':')
			FAIL(400, "malformed header field name");
		v = colon + 1;
		ve = eol - 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *c = v; c < ve; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				FAIL(400, "control character in header value");
		h = &req->headers[req->nheaders++];
		h->name = (struct http_str){p, (size_t)(colon - p)};
		h->value = (struct http_str){v, (size_t)(ve - v)};
		p = eol + 1;
	}
	req->head_len = (size_t)(p - buf);

	for (size_t i = 0; i < req->nheaders; i++) {
		struct http_header *h = &req->headers[i];
		if (http_str_eq(h->name, "Content-Length")) {
			uint64_t n = 0;
			if (cl)
				FAIL(400, "more than one Content-Length");
			cl = &h->value;
			if (h->value.len == 0 || h->value.len > 15)
				FAIL(400, "invalid Content-Length");
			for (size_t k = 0; k < h->value.len; k++) {
				char c = h->value.p[k];
				if (c < '0' || c > '9')
					FAIL(400, "invalid Content-Length");
				n = n * 10 + (uint64_t)(c - '0');
			}
			req->content_length = n;
			req->has_body = n > 0;
		} else if (http_str_eq(h->name, "Transfer-Encoding")) {
			FAIL(501, "transfer codings in requests are not supported");
		} else if (http_str_eq(h->name, "Connection")) {
			if (list_has(h->value, "close"))
				req->keep_alive = false;
			else if (list_has(h->value, "keep-alive"))
				req->keep_alive = true;
		}
	}
	if (req->minor >= 1 && !http_header_get(req, "Host"))
		FAIL(400, "missing Host header");
	return (int)req->head_len;
}

const struct http_str *http_header_get(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (http_str_eq(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

int http_percent_decode(struct http_str s, char *out, size_t outlen, bool plus_is_space)
{
	size_t o = 0;

	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		if (o + 1 >= outlen)
			return -1;
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= s.len)
				return -1;
			hi = text_hexval(s.p[i + 1]);
			lo = text_hexval(s.p[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			out[o++] = ' ';
		} else {
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return (int)o;
}

bool http_query_has(struct http_str query, const char *name)
{
	size_t nlen = strlen(name), i = 0;

	while (i < query.len) {
		size_t start = i;
		while (i < query.len && query.p[i] != '&')
			i++;
		if (i - start >= nlen && memcmp(query.p + start, name, nlen) == 0 &&
		    (i - start == nlen || query.p[start + nlen] == '='))
			return true;
		i++;
	}
	return false;
}

int http_query_param(struct http_str query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), i = 0;

	while (i < query.len) {
		size_t start = i, eq, stop;
		while (i < query.len && query.p[i] != '&')
			i++;
		stop = i;
		i++; /* past '&' */
		eq = start;
		while (eq < stop && query.p[eq] != '=')
			eq++;
		if (eq - start != nlen || memcmp(query.p + start, name, nlen) != 0)
			continue;
		if (eq == stop) { /* "name" alone: an empty value */
			if (outlen == 0)
				return -1;
			out[0] = '\0';
			return 0;
		}
		return http_percent_decode((struct http_str){query.p + eq + 1, stop - eq - 1}, out,
					   outlen, true);
	}
	return -1;
}
