/* The HTTP server on its loops, driven over real sockets: a body far
 * larger than one wake-up's read budget, pipelined requests behind it,
 * and a loop that keeps serving others meanwhile; answers that come later
 * (http/later.h) in every order of answer and close; bodies taken as they
 * arrive (http_take_body), paused, refused, with Expect: 100-continue. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/later.h"
#include "http/server.h"
#include "loop_runner.h"
#include "unit.h"
#include "util/clock.h"

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

static bool send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
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
	snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
		 n);
	b->ok = send_all(b->fd, head, strlen(head)) && send_all(b->fd, body, n) &&
		send_str(b->fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
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
	CHECK(send_str(other, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n"));
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

/* ---- later answers ---- */

/* What the tests observe: one handler context at a time. */
static struct {
	http_later_t *_Atomic held;  /* taken by a handler, not yet ended */
	http_later_t *_Atomic stale; /* taken, but the handler answered anyway */
	loop_t *loop;                /* the last handler's */
	pthread_t loop_thread;
	_Atomic int calls, freed, null_calls, wrong_thread;
} lt;

struct ctx {
	int magic;
};

/* A client that crashes: RST, not FIN. A FIN alone while a handler has
 * the request is not a close (the client may only have shut its side),
 * so the server notices the reset. */
static void reset_close(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void later_reset(void)
{
	atomic_store(&lt.held, NULL);
	atomic_store(&lt.stale, NULL);
	atomic_store(&lt.calls, 0);
	atomic_store(&lt.freed, 0);
	atomic_store(&lt.null_calls, 0);
	atomic_store(&lt.wrong_thread, 0);
}

static void ctx_free(struct ctx *x)
{
	CHECK(x->magic == 42);
	x->magic = 0;
	free(x);
	atomic_fetch_add(&lt.freed, 1);
}

/* The one callback: answers if it can, frees its context either way. */
static void answer_later(void *arg, http_conn_t *c)
{
	struct ctx *x = arg;

	atomic_fetch_add(&lt.calls, 1);
	if (!pthread_equal(pthread_self(), lt.loop_thread))
		atomic_fetch_add(&lt.wrong_thread, 1);
	if (c)
		http_send(c, 200, "text/plain", NULL, "late\n", 5);
	else
		atomic_fetch_add(&lt.null_calls, 1);
	ctx_free(x);
}

struct poster {
	http_later_t *h;
	struct ctx *x;
	int delay_ms;
};

static void *post_after(void *arg)
{
	struct poster *p = arg;

	sleep_ms(p->delay_ms);
	http_later_post(p->h, answer_later, p->x);
	free(p);
	return NULL;
}

/*
 * /thread: another thread posts the answer 50 ms later.
 * /hold: the handle is left in lt.held for the test to end.
 * /now-too: the handler takes a later (lt.stale) and answers at once
 *   anyway; the later must then find no connection, not the next
 *   request's.
 * anything else: 200 "now".
 */
static void later_handler(void *ud, http_conn_t *c, const struct http_request *req)
{
	struct ctx *x;

	lt.loop_thread = pthread_self();
	lt.loop = http_conn_loop(c);
	if (http_str_eq(req->path, "/thread")) {
		struct poster *p = calloc(1, sizeof(*p));
		pthread_t t;
		x = calloc(1, sizeof(*x));
		x->magic = 42;
		p->h = http_later(c);
		p->x = x;
		p->delay_ms = 50;
		pthread_create(&t, NULL, post_after, p);
		pthread_detach(t);
	} else if (http_str_eq(req->path, "/hold")) {
		atomic_store(&lt.held, http_later(c));
	} else if (http_str_eq(req->path, "/now-too")) {
		atomic_store(&lt.stale, http_later(c));
		http_send(c, 200, "text/plain", NULL, "now\n", 4);
	} else {
		http_send(c, 200, "text/plain", NULL, "now\n", 4);
	}
}

static void test_later_answered_from_another_thread(void)
{
	http_server_t *s = start(later_handler, NULL, 2);
	char out[4096];
	int fd;

	later_reset();
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /thread HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nlate\n") != NULL);
	/* Keep-alive goes on after a later answer. */
	CHECK(send_str(fd, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nnow\n") != NULL);
	close(fd);
	http_server_stop(s);
	CHECK(atomic_load(&lt.calls) == 1);
	CHECK(atomic_load(&lt.freed) == 1);
	CHECK(atomic_load(&lt.null_calls) == 0);
	CHECK(atomic_load(&lt.wrong_thread) == 0);
}

/* The client goes away first: the callback learns it, and frees once. */
static void test_later_after_the_connection_closed(void)
{
	http_server_t *s = start(later_handler, NULL, 1);
	struct poster *p;
	struct ctx *x;
	pthread_t t;
	int fd;

	later_reset();
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&lt.held) != NULL, 5000);
	reset_close(fd);
	WAIT_FOR(http_server_connections(s) == 0, 5000);
	CHECK(http_server_connections(s) == 0);
	CHECK(atomic_load(&lt.calls) == 0);
	x = calloc(1, sizeof(*x));
	x->magic = 42;
	p = calloc(1, sizeof(*p));
	p->h = atomic_exchange(&lt.held, NULL);
	p->x = x;
	pthread_create(&t, NULL, post_after, p);
	pthread_join(t, NULL);
	WAIT_FOR(atomic_load(&lt.calls) == 1, 5000);
	http_server_stop(s);
	CHECK(atomic_load(&lt.calls) == 1);
	CHECK(atomic_load(&lt.null_calls) == 1);
	CHECK(atomic_load(&lt.freed) == 1);
	CHECK(atomic_load(&lt.wrong_thread) == 0);
}

/* Ended on the loop (as a pool job's done does): first with the
 * connection alive, then with it closed. */
struct end_on_loop {
	http_later_t *h;
	_Atomic int state; /* 1: the connection, 2: NULL */
};

static void end_it(void *arg)
{
	struct end_on_loop *e = arg;
	http_conn_t *c = http_later_end(e->h);

	if (c)
		http_send(c, 200, "text/plain", NULL, "ended\n", 6);
	atomic_store(&e->state, c ? 1 : 2);
}

static void test_later_ended_on_the_loop(void)
{
	http_server_t *s = start(later_handler, NULL, 1);
	struct end_on_loop e = {0};
	char out[4096];
	int fd;

	later_reset();
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&lt.held) != NULL, 5000);
	e.h = atomic_exchange(&lt.held, NULL);
	loop_post(lt.loop, end_it, &e);
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nended\n") != NULL);
	CHECK(atomic_load(&e.state) == 1);

	CHECK(send_str(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&lt.held) != NULL, 5000);
	reset_close(fd);
	WAIT_FOR(http_server_connections(s) == 0, 5000);
	e.h = atomic_exchange(&lt.held, NULL);
	atomic_store(&e.state, 0);
	loop_post(lt.loop, end_it, &e);
	WAIT_FOR(atomic_load(&e.state) != 0, 5000);
	CHECK(atomic_load(&e.state) == 2);
	http_server_stop(s);
}

/* A handler that answers at once while a later is out: that later's
 * callback must find no connection, not answer the next request. */
static void test_later_orphaned_by_its_own_response(void)
{
	http_server_t *s = start(later_handler, NULL, 1);
	struct end_on_loop e = {0};
	struct poster *p;
	char out[4096];
	pthread_t t;
	int fd;

	later_reset();
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /now-too HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nnow\n") != NULL);
	/* The same connection, a request held open. */
	CHECK(send_str(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&lt.held) != NULL, 5000);
	p = calloc(1, sizeof(*p));
	p->h = atomic_exchange(&lt.stale, NULL);
	p->x = calloc(1, sizeof(*p->x));
	p->x->magic = 42;
	pthread_create(&t, NULL, post_after, p);
	pthread_join(t, NULL);
	WAIT_FOR(atomic_load(&lt.calls) == 1, 5000);
	CHECK(atomic_load(&lt.null_calls) == 1);
	/* Only now the held request is answered: with "ended", not "late". */
	e.h = atomic_exchange(&lt.held, NULL);
	loop_post(lt.loop, end_it, &e);
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nended\n") != NULL);
	CHECK(strstr(out, "late") == NULL);
	close(fd);
	http_server_stop(s);
	CHECK(atomic_load(&lt.freed) == 1);
}

/* ---- bodies taken as they arrive (http_take_body) ---- */

/* A sink that takes at most 1000 bytes a call (taking fewer than offered
 * pauses the reading) and resumes from the loop's next round; and pauses
 * taking nothing after every 64 KiB. It sums what it got. */
struct sink {
	http_conn_t *c;
	uint64_t got, since_pause, sum;
	int pauses;
	bool ended, complete, midway;
};

static void resume_it(void *arg)
{
	struct sink *k = arg;

	http_body_resume(k->c);
}

static void answer_midway(void *arg)
{
	struct sink *k = arg;

	http_send(k->c, 413, "text/plain", NULL, "midway\n", 7);
}

static size_t sink_data(void *ctx, const char *p, size_t n)
{
	struct sink *k = ctx;
	size_t take = n < 1000 ? n : 1000;

	if (k->midway) {
		/* Paused, then answered from the loop, as a failed part is. */
		loop_post(http_conn_loop(k->c), answer_midway, k);
		return 0;
	}

	if (k->since_pause >= 65536) {
		k->since_pause = 0;
		k->pauses++;
		loop_post(http_conn_loop(k->c), resume_it, k);
		return 0;
	}
	for (size_t i = 0; i < take; i++)
		k->sum += (unsigned char)p[i];
	k->got += take;
	k->since_pause += take;
	if (take < n)
		loop_post(http_conn_loop(k->c), resume_it, k);
	return take;
}

static void sink_end(void *ctx, bool complete)
{
	struct sink *k = ctx;
	char body[96];
	int n;

	k->ended = true;
	k->complete = complete;
	if (!complete)
		return;
	n = snprintf(body, sizeof(body), "%llu %llu %d\n", (unsigned long long)k->got,
		     (unsigned long long)k->sum, k->pauses);
	http_send(k->c, 200, "text/plain", NULL, body, (size_t)n);
}

static const struct http_sink_ops sink_ops = {sink_data, sink_end};
static struct sink the_sink;

static bool streams(void *ud, const struct http_request *req)
{
	return req->path.len >= 5 && memcmp(req->path.p, "/sink", 5) == 0;
}

static void sink_handler(void *ud, http_conn_t *c, const struct http_request *req)
{
	if (!req->body_streamed) {
		http_send(c, 200, "text/plain", NULL, "plain\n", 6);
		return;
	}
	if (http_str_eq(req->path, "/sink/refuse")) {
		http_send(c, 409, "text/plain", NULL, "no\n", 3);
		return;
	}
	memset(&the_sink, 0, sizeof(the_sink));
	the_sink.c = c;
	the_sink.midway = http_str_eq(req->path, "/sink/midway");
	http_take_body(c, &sink_ops, &the_sink);
}

static http_server_t *start_sink(void)
{
	struct http_server_config cfg;
	http_server_t *s = NULL;
	char err[256];

	http_server_config_defaults(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.threads = 1;
	cfg.handler = sink_handler;
	cfg.stream_body = streams;
	if (http_server_start(&cfg, &s, err, sizeof(err)) < 0)
		return NULL;
	return s;
}

/* 5 MiB through a sink that pauses 80 times, over max_body (1 MiB): every
 * byte in order, then the pipelined request behind it. */
static void test_streamed_body_paused_and_resumed(void)
{
	http_server_t *s = start_sink();
	size_t n = (size_t)5 << 20;
	char head[160], *body = malloc(n), want[96], out[4096];
	uint64_t sum = 0;
	int fd;
	bool sent;

	CHECK(s != NULL);
	if (!s)
		return;
	for (size_t i = 0; i < n; i++) {
		body[i] = (char)(i * 7 + 3);
		sum += (unsigned char)body[i];
	}
	fd = connect_to(http_server_port(s));
	snprintf(head, sizeof(head), "PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
		 n);
	CHECK(send_str(fd, head));
	sent = send_all(fd, body, n) && send_str(fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK(sent);
	CHECK(read_responses(fd, out, sizeof(out), 2) == 2);
	snprintf(want, sizeof(want), "\r\n\r\n%zu %llu ", n, (unsigned long long)sum);
	CHECK(strstr(out, want) != NULL);
	CHECK(the_sink.pauses >= 70);
	CHECK(strstr(out, "plain\n") != NULL);
	close(fd);
	free(body);
	http_server_stop(s);
}

/* Expect: 100-continue gets its interim answer once the body is taken,
 * and none when the handler refuses: then no body need come. */
static void test_streamed_body_expect_continue(void)
{
	http_server_t *s = start_sink();
	char out[4096];
	int fd;

	CHECK(s != NULL);
	if (!s)
		return;
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
			   "Expect: 100-continue\r\n\r\n"));
	CHECK(recv(fd, out, 25, MSG_WAITALL) == 25);
	CHECK(memcmp(out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
	CHECK(send_str(fd, "abc"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\n3 294 0\n") != NULL);
	close(fd);
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "PUT /sink/refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n"
			   "Expect: 100-continue\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "HTTP/1.1 409") == out);
	CHECK(strstr(out, "Connection: close") != NULL);
	close(fd);
	http_server_stop(s);
}

/* A refusal before the body is taken: a small body is read and dropped
 * and the connection serves the next request; a large one ends it. */
static void test_streamed_body_refused(void)
{
	http_server_t *s = start_sink();
	char out[4096], *body = calloc(1, 2 << 20);
	int fd;

	CHECK(s != NULL);
	if (!s)
		return;
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "PUT /sink/refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"));
	CHECK(send_all(fd, body, 5000));
	CHECK(send_str(fd, "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 2) == 2);
	CHECK(strstr(out, "HTTP/1.1 409") == out);
	CHECK(strstr(out, "Connection: close") == NULL);
	CHECK(strstr(out, "plain\n") != NULL);
	close(fd);
	/* Answered mid-body while paused: the small rest is dropped, the
	 * connection goes on. */
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "PUT /sink/midway HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"));
	CHECK(send_all(fd, body, 5000));
	CHECK(send_str(fd, "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 2) == 2);
	CHECK(strstr(out, "HTTP/1.1 413") == out);
	CHECK(strstr(out, "plain\n") != NULL);
	close(fd);
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd,
		       "PUT /sink/refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "HTTP/1.1 409") == out);
	CHECK(strstr(out, "Connection: close") != NULL);
	close(fd);
	free(body);
	http_server_stop(s);
}

/* ---- event streams ---- */

static struct {
	_Atomic(http_conn_t *) c;
	loop_t *loop;
	_Atomic int done; /* 1: completed, 2: cut */
} ev;

static void ev_done(void *ctx, bool completed)
{
	atomic_store(&ev.done, completed ? 1 : 2);
}

static enum http_pull ev_pull(void *ctx, struct http_segment *seg)
{
	return HTTP_PULL_ERROR; /* never called for an event stream */
}

static const struct http_body_ops ev_ops = {ev_pull, ev_done};

static void ev_handler(void *ud, http_conn_t *c, const struct http_request *req)
{
	if (req->target.len == 6 && memcmp(req->target.p, "/plain", 6) == 0) {
		http_send(c, 200, "text/plain", NULL, "plain\n", 6);
		return;
	}
	ev.loop = http_conn_loop(c);
	http_send_events(c, 200, "text/event-stream", NULL, &ev_ops, NULL);
	http_events_write(c, "data: one\n\n", 11);
	http_events_write(c, "data: two\n\n", 11);
	atomic_store(&ev.c, c);
}

static void ev_finish(void *arg)
{
	http_conn_t *c = atomic_exchange(&ev.c, NULL);

	http_events_write(c, "data: three\n\n", 13);
	http_events_end(c);
}

/* Pieces written now and later arrive as chunks, the last chunk ends the
 * answer, and the connection goes on with the next request; a client
 * that goes away mid-stream ends it (done, not completed). */
static void test_event_stream(void)
{
	http_server_t *s = start(ev_handler, NULL, 1);
	char out[8192] = "";
	size_t len = 0;
	int fd;

	memset(&ev, 0, sizeof(ev));
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&ev.c) != NULL, 5000);
	loop_post(ev.loop, ev_finish, NULL);
	while (!strstr(out, "0\r\n\r\n") && len + 1 < sizeof(out)) {
		ssize_t n = recv(fd, out + len, sizeof(out) - len - 1, 0);

		if (n <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
	}
	CHECK(strstr(out, "Transfer-Encoding: chunked\r\n") != NULL);
	CHECK(strstr(out, "Content-Length") == NULL);
	CHECK(strstr(out, "\r\n\r\nb\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n"
			  "d\r\ndata: three\n\n\r\n0\r\n\r\n") != NULL);
	WAIT_FOR(atomic_load(&ev.done) == 1, 5000);
	CHECK(send_str(fd, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
	CHECK(read_responses(fd, out, sizeof(out), 1) == 1);
	CHECK(strstr(out, "\r\n\r\nplain\n") != NULL);
	close(fd);

	memset(&ev, 0, sizeof(ev));
	fd = connect_to(http_server_port(s));
	CHECK(send_str(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
	WAIT_FOR(atomic_load(&ev.c) != NULL, 5000);
	close(fd);
	WAIT_FOR(atomic_load(&ev.done) == 2, 5000);
	WAIT_FOR(http_server_connections(s) == 0, 5000);
	http_server_stop(s);
}

int main(void)
{
	TEST_RUN(test_body_larger_than_the_read_budget);
	TEST_RUN(test_pipelined_requests);
	TEST_RUN(test_later_answered_from_another_thread);
	TEST_RUN(test_later_after_the_connection_closed);
	TEST_RUN(test_later_ended_on_the_loop);
	TEST_RUN(test_later_orphaned_by_its_own_response);
	TEST_RUN(test_streamed_body_paused_and_resumed);
	TEST_RUN(test_streamed_body_expect_continue);
	TEST_RUN(test_streamed_body_refused);
	TEST_RUN(test_event_stream);
	TEST_EXIT();
}
