/* The HTTP server on its loops, driven over real sockets: a body far
 * larger than one wake-up's read budget, pipelined requests behind it,
 * and a loop that keeps serving others meanwhile. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/server.h"
#include "unit.h"

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads until want responses' heads and bodies (Content-Length) are in
 * out, or the peer closes, or 5 s pass. Returns the responses read. */
static int read_responses(int fd, char *out, size_t cap, int want)
{
	size_t len = 0, at = 0;
	int got = 0;

	out[0] = '\0';
	while (got < want) {
		char *end = strstr(out + at, "\r\n\r\n");
		if (end) {
			const char *cl = strstr(out + at, "Content-Length: ");
			size_t body = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
			size_t total = (size_t)(end + 4 - out) + body;
			if (len >= total) {
				got++;
				at = total;
				continue;
			}
		}
		if (len + 1 >= cap)
			break;
		ssize_t n = recv(fd, out + len, cap - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
	}
	return got;
}

/* ---- a server whose handler answers with the body's length ---- */

static _Atomic int requests;

static void length_handler(void *ud, http_conn_t *c, const struct http_request *req)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%zu\n", req->body.len);

	atomic_fetch_add(&requests, 1);
	http_send(c, 200, "text/plain", NULL, body, (size_t)n);
}

static http_server_t *start(http_handler_fn fn, void *ud, int threads)
{
	struct http_server_config cfg;
	http_server_t *s = NULL;
	char err[256];

	http_server_config_defaults(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.threads = threads;
	cfg.max_body = 2 << 20;
	cfg.handler = fn;
	cfg.handler_ud = ud;
	if (http_server_start(&cfg, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "  start: %s\n", err);
		return NULL;
	}
	return s;
}

/* A body of 2 MiB takes 512 reads, 32 wake-up budgets: the connection
 * must be resumed each time without a new edge from the socket, and
 * the pipelined request behind the body must be answered too. */
struct big_sender {
	int fd;
	bool ok;
};

static void *send_big(void *arg)
{
	struct big_sender *b = arg;
	size_t n = (size_t)2 << 20;
	char head[128], *body = malloc(n);

	memset(body, 'x', n);
	snprintf(head, sizeof(head),
		 "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
	b->ok = send_all(b->fd, head, strlen(head)) && send_all(b->fd, body, n) &&
		send_all(b->fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", 33);
	free(body);
	return NULL;
}

static void test_body_larger_than_the_read_budget(void)
{
	http_server_t *s = start(length_handler, NULL, 1);
	struct big_sender b;
	pthread_t t;
	char out[4096];
	int other, got;

	CHECK(s != NULL);
	if (!s)
		return;
	b.fd = connect_to(http_server_port(s));
	CHECK(b.fd >= 0);
	pthread_create(&t, NULL, send_big, &b);
	/* Another client of the same (single) loop is served meanwhile. */
	other = connect_to(http_server_port(s));
	CHECK(send_all(other, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 33));
	CHECK(read_responses(other, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\n0\n") != NULL);
	close(other);
	got = read_responses(b.fd, out, sizeof(out), 2);
	pthread_join(t, NULL);
	CHECK(b.ok);
	CHECK(got == 2);
	CHECK(strstr(out, "HTTP/1.1 200 OK") == out);
	CHECK(strstr(out, "\r\n\r\n2097152\n") != NULL);
	CHECK(strstr(out, "\r\n\r\n0\n") != NULL); /* the pipelined GET */
	close(b.fd);
	http_server_stop(s);
}

/* Many pipelined requests in one write: each is answered, in order. */
static void test_pipelined_requests(void)
{
	http_server_t *s = start(length_handler, NULL, 1);
	char req[64 * 40], out[64 * 1024];
	size_t n = 0;
	int fd;

	CHECK(s != NULL);
	if (!s)
		return;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
	fd = connect_to(http_server_port(s));
	CHECK(send_all(fd, req, n));
	CHECK(read_responses(fd, out, sizeof(out), 40) == 40);
	close(fd);
	http_server_stop(s);
}

int main(void)
{
	TEST_RUN(test_body_larger_than_the_read_budget);
	TEST_RUN(test_pipelined_requests);
	TEST_EXIT();
}
