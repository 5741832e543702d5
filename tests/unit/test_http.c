/* The request parser and the Range parser, against the RFC's rules; listen addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "http/listen.h"
#include "http/parser.h"
#include "http/range.h"
#include "unit.h"

static int parse(const char *s, struct http_request *req)
{
	return http_parse_request(s, strlen(s), req, NULL);
}

static void test_simple_get(void)
{
	struct http_request r;
	const char *s = "GET /api/v1/tracks?limit=5 HTTP/1.1\r\nHost: x\r\nX-A:  b c \r\n\r\nNEXT";

	CHECK(parse(s, &r) == (int)(strlen(s) - 4));
	CHECK(r.method == HTTP_GET);
	CHECK(r.minor == 1 && r.keep_alive);
	CHECK(r.path.len == 14 && memcmp(r.path.p, "/api/v1/tracks", 14) == 0);
	CHECK(r.query.len == 7 && memcmp(r.query.p, "limit=5", 7) == 0);
	CHECK(http_str_eq(*http_header_get(&r, "x-a"), "b c"));
	CHECK(http_header_get(&r, "Range") == NULL);
}

static void test_incomplete(void)
{
	struct http_request r;
	const char *full = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	for (size_t n = 0; n < strlen(full); n++)
		CHECK(http_parse_request(full, n, &r, NULL) == 0);
}

static void test_errors(void)
{
	struct http_request r;
	char big[HTTP_MAX_HEADER_BYTES + 100];

	CHECK(parse("GET / HTTP/1.1\nHost: x\n\n", &r) == -400);        /* bare LF */
	CHECK(parse("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", &r) == -400); /* two spaces */
	CHECK(parse("GET / HTTP/1.1\r\n\r\n", &r) == -400);             /* no Host */
	CHECK(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n", &r) == -505);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", &r) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		    &r) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", &r) == -400);
	CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &r) ==
	      -501);
	CHECK(parse("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", &r) == -400);
	CHECK(parse("\x16\x03\x01", &r) == -400); /* TLS to a plain port: fail at once */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	CHECK(http_parse_request(big, HTTP_MAX_REQUEST_LINE + 10, &r, NULL) == -414);
	memcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX: ", 28);
	CHECK(http_parse_request(big, sizeof(big), &r, NULL) == -431);
}

static void test_too_many_headers(void)
{
	struct http_request r;
	char s[4096];
	size_t n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: x\r\n");

	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "H%d: v\r\n", i);
	n += (size_t)snprintf(s + n, sizeof(s) - n, "\r\n");
	CHECK(http_parse_request(s, n, &r, NULL) == -431);
}

static void test_connection_and_version(void)
{
	struct http_request r;

	CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0 && !r.keep_alive);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0 && r.keep_alive);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", &r) > 0 &&
	      !r.keep_alive);
	CHECK(parse("BREW / HTTP/1.1\r\nHost: x\r\n\r\n", &r) > 0 && r.method == HTTP_OTHER);
	CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", &r) > 0 &&
	      r.has_body && r.content_length == 12);
}

static void test_query(void)
{
	struct http_str q = {"a=1&limit=20&name=Sigur+R%C3%B3s&empty=&flag&bad=%zz", 52};
	char out[64];

	CHECK(http_query_param(q, "limit", out, sizeof(out)) == 2 && strcmp(out, "20") == 0);
	CHECK(http_query_param(q, "name", out, sizeof(out)) > 0 &&
	      strcmp(out, "Sigur R\xc3\xb3s") == 0);
	CHECK(http_query_param(q, "empty", out, sizeof(out)) == 0);
	CHECK(http_query_param(q, "flag", out, sizeof(out)) == 0);
	CHECK(http_query_param(q, "bad", out, sizeof(out)) == -1);
	CHECK(http_query_param(q, "missing", out, sizeof(out)) == -1);
	CHECK(http_query_param(q, "name", out, 4) == -1); /* does not fit */
	CHECK(http_query_has(q, "bad") && http_query_has(q, "flag") && !http_query_has(q, "lim"));
}

static void test_ranges(void)
{
	struct range_set rs;

#define R(v, size) range_parse(v, strlen(v), size, &rs)
	CHECK(R("bytes=0-1", 100) == RANGE_SINGLE && rs.r[0].first == 0 && rs.r[0].last == 1);
	CHECK(R("bytes=0-", 100) == RANGE_SINGLE && rs.r[0].last == 99);
	CHECK(R("bytes=-10", 100) == RANGE_SINGLE && rs.r[0].first == 90 && rs.r[0].last == 99);
	CHECK(R("bytes=-1000", 100) == RANGE_SINGLE && rs.r[0].first == 0);
	CHECK(R("bytes=50-1000", 100) == RANGE_SINGLE && rs.r[0].last == 99);
	CHECK(R("bytes=100-", 100) == RANGE_UNSATISFIABLE);
	CHECK(R("bytes=-0", 100) == RANGE_UNSATISFIABLE);
	CHECK(R("bytes=100-200, 300-", 100) == RANGE_UNSATISFIABLE);
	CHECK(R("bytes=5-1", 100) == RANGE_NONE); /* invalid: ignored */
	CHECK(R("items=0-1", 100) == RANGE_NONE);
	CHECK(R("bytes=", 100) == RANGE_NONE);
	CHECK(R("bytes=-", 100) == RANGE_NONE);
	CHECK(R("bytes=1-2x", 100) == RANGE_NONE);
	CHECK(R("bytes=99999999999999999999999-", 100) == RANGE_NONE);
	CHECK(R("bytes=0-1, 5-9", 100) == RANGE_MULTI && rs.n == 2);
	CHECK(R("bytes=0-1, 200-300", 100) == RANGE_SINGLE); /* the unsatisfiable one drops */
	CHECK(R("bytes=0-10, 5-20", 100) == RANGE_NONE);     /* overlapping */
	CHECK(R("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,"
		"15-15,16-16",
		100) == RANGE_NONE); /* too many */
#undef R
}

/* 0 and the address, or the error's text in err. */
static int listen_of(const char *spec, char *addr, int *port, char *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int rc;

	err[0] = '\0';
	rc = http_listen_parse(spec, &ss, &sl, err, 200);
	if (rc < 0)
		return rc;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		CHECK(sl == sizeof(*a));
		inet_ntop(AF_INET6, &a->sin6_addr, addr, 64);
		*port = ntohs(a->sin6_port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		CHECK(ss.ss_family == AF_INET && sl == sizeof(*a));
		inet_ntop(AF_INET, &a->sin_addr, addr, 64);
		*port = ntohs(a->sin_port);
	}
	return 0;
}

static void test_listen(void)
{
	static const struct {
		const char *spec, *addr;
		int port;
	} good[] = {
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"0.0.0.0:0", "0.0.0.0", 0},
		{":9000", "0.0.0.0", 9000},
		{"*:65535", "0.0.0.0", 65535},
		{"[::1]:80", "::1", 80},
		{"[::]:0080", "::", 80},
	};
	static const struct {
		const char *spec, *says;
	} bad[] = {
		{"127.0.0.1:99999", "port 99999 is out of range (0-65535)"},
		{"127.0.0.1:65536", "port 65536 is out of range"},
		{"127.0.0.1:-1", "port -1 is out of range"},
		{"127.0.0.1:123456789012345678901234", "out of range"},
		{"127.0.0.1:", "no port"},
		{"127.0.0.1:8o", "port \"8o\" is not a number"},
		{"127.0.0.1: 80", "is not a number"},
		{"127.0.0.1:+80", "is not a number"},
		{"127.0.0.1", "has no port"},
		{"[::1]", "has no port"},
		{"", "no address"},
		{"localhost:80", "host names are not looked up"},
		{"300.1.1.1:80", "not an IPv4 address"},
		{"::1:80", "in brackets"},
		{"[::1:80", "no closing bracket"},
		{"[::1]x:80", "after the closing bracket"},
		{"[nope]:80", "not an IPv6 address"},
	};
	char addr[64], err[200];
	int port;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		port = -1;
		CHECK(listen_of(good[i].spec, addr, &port, err) == 0);
		CHECK_STR(addr, good[i].addr);
		CHECK(port == good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(listen_of(bad[i].spec, addr, &port, err) == -EINVAL);
		if (!strstr(err, bad[i].says))
			fprintf(stderr, "  %s: \"%s\" does not say \"%s\"\n", bad[i].spec, err,
				bad[i].says);
		CHECK(strstr(err, bad[i].says) != NULL);
	}
	/* err is optional. */
	{
		struct sockaddr_storage ss;
		socklen_t sl;
		CHECK(http_listen_parse("x:1", &ss, &sl, NULL, 0) == -EINVAL);
		CHECK(http_listen_parse(NULL, &ss, &sl, NULL, 0) == -EINVAL);
	}
}

static void test_listen_local_host(void)
{
	char h[64];

	CHECK(http_listen_local_host("0.0.0.0:80", h, sizeof(h)));
	CHECK_STR(h, "127.0.0.1");
	CHECK(http_listen_local_host(":80", h, sizeof(h)));
	CHECK_STR(h, "127.0.0.1");
	CHECK(http_listen_local_host("*:80", h, sizeof(h)));
	CHECK_STR(h, "127.0.0.1");
	CHECK(http_listen_local_host("[::]:80", h, sizeof(h)));
	CHECK_STR(h, "[::1]");
	CHECK(!http_listen_local_host("10.1.2.3:80", h, sizeof(h)));
	CHECK_STR(h, "10.1.2.3");
	CHECK(!http_listen_local_host("[::1]:0", h, sizeof(h)));
	CHECK_STR(h, "[::1]");
	CHECK(http_listen_local_host("nonsense", h, sizeof(h)));
	CHECK_STR(h, "127.0.0.1");
}

int main(void)
{
	TEST_RUN(test_simple_get);
	TEST_RUN(test_incomplete);
	TEST_RUN(test_errors);
	TEST_RUN(test_too_many_headers);
	TEST_RUN(test_connection_and_version);
	TEST_RUN(test_query);
	TEST_RUN(test_ranges);
	TEST_RUN(test_listen);
	TEST_RUN(test_listen_local_host);
	TEST_EXIT();
}
