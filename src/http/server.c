/*
 * The HTTP server's connections, on event loops of loop/loop.h.
 *
 * Each server thread runs one loop and owns a listener bound with
 * SO_REUSEPORT (the kernel spreads new connections over the loops) and the
 * list of its connections. Sockets are registered once, edge-triggered,
 * for input and output; a connection's state says which of the two
 * matters now.
 *
 * A connection reads into a buffer that exists only while a request is
 * partly received, so an idle keep-alive connection costs its struct and
 * nothing else. Requests are parsed in place, answered, and the bytes
 * after them (pipelined requests) are parsed once the answer is written.
 *
 * Reading and writing are bounded per wake-up (READ_BUDGET, WRITE_BUDGET):
 * a connection that used its budget goes on the ready list and continues
 * from the loop's before-sleep hook, after the other connections had
 * their turn, so one fast reader of a large file or one client sending a
 * large body cannot starve the rest.
 *
 * Timeouts are checked by a sweep of the loop's connections once a second
 * (a loop timer): cheap at ten thousand connections, and simpler than a
 * timer wheel. Connections are never freed inside their own event
 * handling: closing unlinks them and the loop frees them at the end of
 * its round (loop_defer).
 */
#include "http/server.h"
#include "http/later.h"
#include "http/listen.h"
#include "http/tls.h"
#include "metrics/hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define WRITE_BUDGET (1u << 20) /* bytes per connection per wake-up */
#define READ_CHUNK 4096
#define BODY_CHUNK (64u << 10) /* a streamed body's reads */
#define READ_BUDGET 16         /* reads per connection per wake-up: 64 KiB (libuv reads 32 times) */
#define ACCEPT_BUDGET 64
#define SWEEP_MS 1000
/* Over TLS, bodies are read from their files into a buffer of this size
 * and written with SSL_write: 64 KiB, four full records per read
 * (docs/benchmarks.md has the sizes measured). */
#define TLS_BUF (64u << 10)

enum conn_state {
	C_HANDSHAKE, /* TLS: before the first request */
	C_READ,      /* waiting for (more of) a request */
	C_HANDLER,   /* a handler owns the request and has not answered yet */
	C_WRITE,     /* writing a response */
	C_WAIT,      /* a streamed body waits for its source */
	C_BODY,      /* a request body goes to a sink (or is dropped) as it arrives */
	C_EVENTS,    /* an event stream's answer waits for its next event */
	C_CLOSED,
};

enum body_kind { BODY_NONE, BODY_STREAM, BODY_EVENTS };

struct http_conn {
	struct loop_io io; /* io.fd: the socket, -1 once closed */
	enum conn_state state;
	struct http_loop *hl;
	struct http_conn *prev, *next; /* the loop's connections */
	/* The ready list: next, and the pointer that points here (NULL: not
	 * on it), so a close unlinks in O(1) wherever the list is. */
	struct http_conn *ready_next, **ready_prev;
	struct loop_deferred dead; /* the free after the round */
	bool keep_alive, head, close_after, served_one;
	int64_t deadline_ms;
	buf_t in;
	buf_t out;
	size_t out_off;
	/* a streamed body */
	enum body_kind body;
	const struct http_body_ops *ops;
	void *ctx;
	http_later_t *later; /* an answer or a fill on its way (http/later.h) */
	uint64_t body_left;
	struct http_segment seg;
	bool events_ended; /* BODY_EVENTS: the last chunk is written */
	/* a request body taken as it arrives (http_take_body) */
	const struct http_sink_ops *sink; /* NULL in C_BODY: the rest is dropped */
	void *sink_ctx;
	uint64_t body_rest; /* of the request in hand, not yet read */
	bool sink_paused, expect_continue, keep_alive_asked;
	/* for the access log and the figures */
	int status;
	uint64_t sent;
	bool in_request;         /* dispatched or refused, not yet counted */
	int cls;                 /* http_conn_set_class */
	int64_t req_us, ttfb_us; /* mono_us at dispatch; first byte after it (0: none yet) */
	const char *also;        /* http_conn_also's header lines, for this response */
	int64_t started_ms;
	char *logline;
	struct in6_addr peer;
	bool peer_v6;
	char peer_text[INET6_ADDRSTRLEN];
	/* over TLS (NULL: plain HTTP) */
	struct ssl_st *ssl;
	unsigned tls_want; /* LOOP_IN or LOOP_OUT: what OpenSSL waits for */
	bool tls_failed;   /* a fatal error: no close_notify */
	char *tb;          /* TLS_BUF bytes while a response is written */
	size_t tb_off, tb_len;
};

/* One server thread: its loop, listener and connections. */
struct http_loop {
	struct http_loop_stats {
		struct http_class_figures {
			_Atomic uint64_t codes[5]; /* 1xx ... 5xx */
			_Atomic uint64_t bytes;
			struct hist duration, ttfb;
		} cls[HTTP_CLASSES];
		_Atomic uint64_t accepted;
	} stats; /* written by this loop only */
	struct http_server *server;
	loop_t *loop;
	int index;
	pthread_t thread;
	struct loop_io listen; /* listen.fd -1 once closed */
	struct http_conn head; /* list sentinel */
	struct http_conn *ready;
	struct loop_timer sweep;
	void *data;
	char date[40];
	time_t date_at;
};

struct http_server {
	struct http_server_config cfg;
	struct http_loop *loops;
	int nloops, port;
	atomic_uint_fast64_t conns;
	atomic_bool draining;
	tls_t *tls; /* NULL: plain HTTP */
};

const char *http_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 460:
		return "Checksum Mismatch"; /* tus 1.0's checksum extension */
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

void http_server_config_defaults(struct http_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:8080";
	cfg->max_conns = 19000; /* the machine's open-file limit is 20,000 */
	cfg->header_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->write_timeout_ms = 30000;
	cfg->max_body = 1 << 20;
	cfg->access_log_fd = -1;
}

/* ---- small helpers ---- */

static int64_t now_ms(const struct http_conn *c)
{
	return loop_now_ms(c->hl->loop);
}

static void update_date(struct http_loop *l)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now == l->date_at)
		return;
	l->date_at = now;
	gmtime_r(&now, &tm);
	strftime(l->date, sizeof(l->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void conn_close(struct http_conn *c);
static void conn_flush(struct http_conn *c);
static void conn_read(struct http_conn *c);
static void body_read(struct http_conn *c);
static ssize_t conn_recv(struct http_conn *c, char *dst, size_t n);

static void ready_unlink(struct http_conn *c)
{
	if (!c->ready_prev)
		return;
	*c->ready_prev = c->ready_next;
	if (c->ready_next)
		c->ready_next->ready_prev = c->ready_prev;
	c->ready_next = NULL;
	c->ready_prev = NULL;
}

/* Continue c in this round's before-sleep pass (or the next one's). */
static void make_ready(struct http_conn *c)
{
	struct http_loop *l = c->hl;

	if (c->ready_prev || c->state == C_CLOSED)
		return;
	c->ready_next = l->ready;
	if (l->ready)
		l->ready->ready_prev = &c->ready_next;
	l->ready = c;
	c->ready_prev = &l->ready;
}

/* ---- responses ---- */

/* begin_head's content_length for a chunked body (an event stream). */
#define CHUNKED UINT64_MAX

static void begin_head(struct http_conn *c, int status, const char *content_type, const char *extra,
		       uint64_t content_length)
{
	struct http_loop *l = c->hl;
	int rc;

	update_date(l);
	buf_reset(&c->out);
	c->out_off = 0;
	c->status = status;
	if (c->state == C_BODY) {
		/* A sink answers before the body's end (an error mid-body):
		 * the rest is dropped if small, else the connection ends. */
		c->sink = NULL;
		if (c->body_rest > (1u << 20))
			c->keep_alive = false;
	}
	if (atomic_load(&l->server->draining))
		c->keep_alive = false;
	if (content_length == CHUNKED)
		rc = buf_printf(&c->out,
				"HTTP/1.1 %d %s\r\nServer: chorus\r\nDate: %s\r\n"
				"Transfer-Encoding: chunked\r\n",
				status, http_status_text(status), l->date);
	else
		rc = buf_printf(&c->out,
				"HTTP/1.1 %d %s\r\nServer: chorus\r\nDate: %s\r\n"
				"Content-Length: %llu\r\n",
				status, http_status_text(status), l->date,
				(unsigned long long)content_length);
	if (rc == 0 && content_type)
		rc = buf_printf(&c->out, "Content-Type: %s\r\n", content_type);
	if (rc == 0 && extra)
		rc = buf_appends(&c->out, extra);
	if (rc == 0 && c->also)
		rc = buf_appends(&c->out, c->also);
	if (rc == 0 && !c->keep_alive)
		rc = buf_appends(&c->out, "Connection: close\r\n");
	if (rc == 0)
		rc = buf_appends(&c->out, "\r\n");
	if (rc < 0) {
		/* Cannot happen with the caps used; refuse rather than send half a head. */
		buf_reset(&c->out);
		c->keep_alive = false;
		if (buf_appends(&c->out, "HTTP/1.1 500 Internal Server Error\r\n"
					 "Content-Length: 0\r\nConnection: close\r\n\r\n") < 0)
			abort(); /* an empty buffer always takes this */
		c->status = 500;
	}
}

void http__conn_set_later(http_conn_t *c, http_later_t *h)
{
	c->later = h;
}

void http_send(http_conn_t *c, int status, const char *content_type, const char *extra_headers,
	       const void *body, size_t len)
{
	begin_head(c, status, content_type, extra_headers, len);
	if (!c->head && len && buf_append(&c->out, body, len) < 0) {
		log_error("http: response body of %zu bytes over the buffer cap", len);
		c->keep_alive = false;
	}
	c->body = BODY_NONE;
	c->state = C_WRITE;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	make_ready(c);
}

void http_send_parts(http_conn_t *c, int status, const char *content_type,
		     const char *extra_headers, const struct iovec *parts, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += parts[i].iov_len;
	begin_head(c, status, content_type, extra_headers, len);
	if (!c->head && len) {
		char *p = buf_reserve(&c->out, len);

		if (!p) {
			log_error("http: response body of %zu bytes over the buffer cap", len);
			c->keep_alive = false;
		} else {
			for (int i = 0; i < n; i++) {
				memcpy(p, parts[i].iov_base, parts[i].iov_len);
				p += parts[i].iov_len;
			}
			c->out.len += len;
		}
	}
	c->body = BODY_NONE;
	c->state = C_WRITE;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	make_ready(c);
}

void http_send_error(http_conn_t *c, int status, const char *message)
{
	http_send_error_with(c, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL, message);
}

void http_send_error_with(http_conn_t *c, int status, const char *extra_headers,
			  const char *message)
{
	buf_t b;
	json_t j;

	buf_init(&b, 4096);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_obj_begin(&j);
	json_kint(&j, "status", status);
	json_kstr(&j, "message", message);
	json_obj_end(&j);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		buf_reset(&b); /* a 4 KiB cap and a short message: not reached */
	http_send(c, status, "application/json; charset=utf-8", extra_headers, b.data, b.len);
	buf_free(&b);
}

void http_send_stream(http_conn_t *c, int status, const char *content_type,
		      const char *extra_headers, uint64_t content_length,
		      const struct http_body_ops *ops, void *ctx)
{
	begin_head(c, status, content_type, extra_headers, content_length);
	c->body = BODY_STREAM;
	c->ops = ops;
	c->ctx = ctx;
	c->body_left = c->head ? 0 : content_length;
	c->seg.len = 0;
	c->state = C_WRITE;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	make_ready(c);
}

void http_send_events(http_conn_t *c, int status, const char *content_type,
		      const char *extra_headers, const struct http_body_ops *ops, void *ctx)
{
	begin_head(c, status, content_type, extra_headers, c->head ? 0 : CHUNKED);
	c->body = BODY_EVENTS;
	c->ops = ops;
	c->ctx = ctx;
	c->events_ended = c->head;
	c->state = C_WRITE;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	make_ready(c);
}

/* The chunk goes after what is not yet written; a reader that lets more
 * than HTTP_EVENTS_BACKLOG pile up is cut off (it would only grow). */
static void events_append(struct http_conn *c, const char *p, size_t n, bool last)
{
	int rc = 0;

	if (c->state == C_CLOSED || c->body != BODY_EVENTS || c->events_ended)
		return;
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
	if (c->out.len - c->out_off + n > HTTP_EVENTS_BACKLOG) {
		log_warn("http: an event stream's reader is %zu bytes behind; closing it",
			 c->out.len - c->out_off);
		conn_close(c);
		return;
	}
	if (n)
		rc = buf_printf(&c->out, "%zx\r\n", n);
	if (rc == 0 && n)
		rc = buf_append(&c->out, p, n);
	if (rc == 0 && n)
		rc = buf_appends(&c->out, "\r\n");
	if (rc == 0 && last)
		rc = buf_appends(&c->out, "0\r\n\r\n");
	if (rc < 0) {
		conn_close(c);
		return;
	}
	c->events_ended = last;
	if (c->state == C_EVENTS) {
		c->state = C_WRITE;
		c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
		make_ready(c);
	}
}

void http_events_write(http_conn_t *c, const void *p, size_t n)
{
	if (n)
		events_append(c, p, n, false);
}

void http_events_end(http_conn_t *c)
{
	events_append(c, NULL, 0, true);
}

/* Between events: what the client sends is dropped (it has nothing to
 * say on this connection), and its end is the stream's. */
static void events_drain(struct http_conn *c)
{
	char tmp[512];

	while (c->state == C_EVENTS) {
		ssize_t n = conn_recv(c, tmp, sizeof(tmp));

		if (n > 0 || n == -EINTR)
			continue;
		if (n != -EAGAIN)
			conn_close(c);
		return;
	}
}

/* All written so far: an event stream waits for its next event. */
static bool events_idle(struct http_conn *c)
{
	if (c->body != BODY_EVENTS || c->events_ended)
		return false;
	c->state = C_EVENTS;
	c->deadline_ms = 0; /* the handler's keepalives are its liveness */
	buf_reset(&c->out);
	c->out_off = 0;
	c->tls_want = LOOP_IN;
	/* A hang-up that came while writing left no edge to wake us. */
	events_drain(c);
	return true;
}

void http_stream_wake(http_conn_t *c)
{
	if (c->state != C_WAIT)
		return;
	c->state = C_WRITE;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	make_ready(c);
}

loop_t *http_conn_loop(http_conn_t *c)
{
	return c->hl->loop;
}

void *http_conn_loop_data(http_conn_t *c)
{
	return c->hl->data;
}

const char *http_conn_peer(http_conn_t *c)
{
	if (!c->peer_text[0])
		inet_ntop(c->peer_v6 ? AF_INET6 : AF_INET, &c->peer, c->peer_text,
			  sizeof(c->peer_text));
	return c->peer_text;
}

bool http_conn_tls(http_conn_t *c)
{
	return c->ssl != NULL;
}

/* ---- the connection state machine ---- */

/* One writer per loop: a load and a store, no locked instruction. */
static void bump(_Atomic uint64_t *x, uint64_t n)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static void wrote(struct http_conn *c, uint64_t n)
{
	c->sent += n;
	if (!c->ttfb_us && n)
		c->ttfb_us = mono_us() - c->req_us + 1; /* never 0 once written */
}

/* A request from here on: its figures start, its answer has no extra
 * lines yet. */
static void begin_request(struct http_conn *c)
{
	c->sent = 0;
	c->in_request = true;
	c->cls = 0;
	c->req_us = mono_us();
	c->ttfb_us = 0;
	c->also = NULL;
}

/* The request's figures, once: when its answer is written or its
 * connection closes under it. */
static void account(struct http_conn *c)
{
	struct http_class_figures *f;
	int code = c->status / 100;

	if (!c->in_request)
		return;
	c->in_request = false;
	f = &c->hl->stats.cls[c->cls];
	if (code >= 1 && code <= 5)
		bump(&f->codes[code - 1], 1);
	bump(&f->bytes, c->sent);
	hist_add(&f->duration, (uint64_t)(mono_us() - c->req_us));
	if (c->ttfb_us)
		hist_add(&f->ttfb, (uint64_t)c->ttfb_us);
}

void http_conn_also(http_conn_t *c, const char *lines)
{
	c->also = lines;
}

void http_conn_set_class(http_conn_t *c, int cls)
{
	if (cls >= 0 && cls < HTTP_CLASSES)
		c->cls = cls;
}

static void access_log(struct http_conn *c)
{
	struct http_server *s = c->hl->server;
	char line[2048];
	int n;

	if (s->cfg.access_log_fd < 0 || !c->logline)
		return;
	update_date(c->hl);
	n = snprintf(line, sizeof(line), "%s [%s] \"%s\" %d %llu %lldms\n", http_conn_peer(c),
		     c->hl->date, c->logline, c->status, (unsigned long long)c->sent,
		     (long long)(mono_ms() - c->started_ms));
	if (n > 0 && write(s->cfg.access_log_fd, line,
			   (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}

static void end_body(struct http_conn *c, bool completed)
{
	if (c->later) {
		/* Whatever comes back for this response finds no connection. */
		http__later_orphan(c->later);
		c->later = NULL;
	}
	if (c->body != BODY_NONE && c->ops) {
		const struct http_body_ops *ops = c->ops;
		c->ops = NULL;
		ops->done(c->ctx, completed);
	}
	c->body = BODY_NONE;
}

static void response_done(struct http_conn *c)
{
	account(c);
	access_log(c);
	free(c->logline);
	c->logline = NULL;
	end_body(c, true);
	buf_free(&c->out);
	c->out_off = 0;
	free(c->tb); /* an idle keep-alive connection owns no buffer */
	c->tb = NULL;
	c->served_one = true;
	if (!c->keep_alive || c->close_after) {
		conn_close(c);
		return;
	}
	if (c->body_rest) {
		/* Answered without taking its (small) body: it is read and
		 * dropped before the next request. */
		c->state = C_BODY;
		c->sink = NULL;
		c->sink_paused = false; /* a sink that answered may have paused it */
		c->deadline_ms = now_ms(c) + c->hl->server->cfg.idle_timeout_ms;
		body_read(c);
		return;
	}
	c->state = C_READ;
	c->deadline_ms = now_ms(c) + (c->in.len ? c->hl->server->cfg.header_timeout_ms
						: c->hl->server->cfg.idle_timeout_ms);
	/* Pipelined requests may be waiting in the buffer or the socket; with
	 * edge-triggered events nothing else would tell us. */
	conn_read(c);
}

/* An error answer to a request that could not be parsed: the connection
 * closes after it, as the framing of what follows is unknown. */
static void refuse(struct http_conn *c, int status, const char *why)
{
	/* The access log shows refused requests too, with no request line. */
	if (c->hl->server->cfg.access_log_fd >= 0 && !c->logline) {
		c->logline = xstrdup("-");
		c->started_ms = now_ms(c);
	}
	begin_request(c); /* counted too: class 0, "other" */
	c->body_rest = 0;
	c->keep_alive = false;
	c->close_after = true;
	c->head = false;
	buf_reset(&c->in);
	http_send_error(c, status, why);
}

/* A signed stream link is a credential: the access log keeps its path
 * and expiry, never its sig= value (line is a NUL-terminated log line). */
static void redact_sig(char *line)
{
	static const char mark[] = "[redacted]";
	char *q = strchr(line, '?'), *v, *end;

	while (q && (v = strstr(q, "sig=")) && v[-1] != '?' && v[-1] != '&')
		q = v + 4;
	if (!q || !v)
		return;
	v += 4;
	end = v + strcspn(v, "& ");
	if ((size_t)(end - v) < sizeof(mark) - 1)
		return;
	memcpy(v, mark, sizeof(mark) - 1);
	memmove(v + sizeof(mark) - 1, end, strlen(end) + 1);
}

static void dispatch(struct http_conn *c, const struct http_request *req)
{
	struct http_server *s = c->hl->server;

	c->head = req->method == HTTP_HEAD;
	c->keep_alive = req->keep_alive && !atomic_load(&s->draining);
	c->started_ms = now_ms(c);
	begin_request(c);
	if (s->cfg.access_log_fd >= 0) {
		size_t n = req->method_str.len + req->target.len + 16;
		c->logline = xmalloc(n);
		snprintf(c->logline, n, "%.*s %.*s HTTP/1.%d", (int)req->method_str.len,
			 req->method_str.p, (int)req->target.len, req->target.p, req->minor);
		redact_sig(c->logline);
	}
	c->state = C_HANDLER;
	if (req->method == HTTP_OTHER) {
		http_send_error(c, 501, "chorus does not support this method");
		return;
	}
	c->body_rest = 0;
	if (req->body_streamed) {
		const struct http_str *ex = http_header_get(req, "Expect");
		c->body_rest = req->content_length;
		c->expect_continue = ex && http_str_eq(*ex, "100-continue");
		/* Until the body is taken, an answer ends the connection
		 * unless the body's rest is small enough to drop. */
		c->keep_alive_asked = c->keep_alive;
		c->keep_alive = c->keep_alive && !c->expect_continue && c->body_rest <= (1u << 20);
	}
	s->cfg.handler(s->cfg.handler_ud, c, req);
}

void http_take_body(http_conn_t *c, const struct http_sink_ops *ops, void *ctx)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (c->state != C_HANDLER || !c->body_rest)
		return;
	c->sink = ops;
	c->sink_ctx = ctx;
	c->sink_paused = false;
	c->keep_alive = c->keep_alive_asked;
	c->state = C_BODY;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.idle_timeout_ms;
	if (c->expect_continue) {
		/* Nothing else is on the wire yet: the interim answer fits
		 * an empty send buffer, or the connection is in trouble. */
		ssize_t n = c->ssl ? tls_conn_write(c->ssl, cont, sizeof(cont) - 1, &c->tls_want)
				   : send(c->io.fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
		c->expect_continue = false;
		if (n != (ssize_t)sizeof(cont) - 1) {
			c->tls_failed = c->ssl != NULL;
			conn_close(c);
			return;
		}
	}
	make_ready(c); /* the bytes already read go first, after the handler returns */
}

void http_body_resume(http_conn_t *c)
{
	if (c->state != C_BODY || !c->sink_paused)
		return;
	c->sink_paused = false;
	c->deadline_ms = now_ms(c) + c->hl->server->cfg.idle_timeout_ms;
	make_ready(c);
}

/* The body's last byte was taken: the sink answers, or (dropped) the
 * connection goes on to the next request. */
static void body_complete(struct http_conn *c)
{
	const struct http_sink_ops *ops = c->sink;

	c->sink = NULL;
	if (!ops) {
		c->state = C_READ;
		c->deadline_ms = now_ms(c) + (c->in.len ? c->hl->server->cfg.header_timeout_ms
							: c->hl->server->cfg.idle_timeout_ms);
		conn_read(c);
		return;
	}
	c->state = C_HANDLER;
	c->deadline_ms = 0;
	ops->end(c->sink_ctx, true);
}

/* Gives the body's bytes in c->in to the sink: false when the reading
 * stops here (paused, complete, closed). */
static bool body_feed(struct http_conn *c)
{
	size_t n = c->in.len < c->body_rest ? c->in.len : (size_t)c->body_rest;
	size_t took = c->sink ? c->sink->data(c->sink_ctx, c->in.data, n) : n;

	if (took > n)
		took = n;
	memmove(c->in.data, c->in.data + took, c->in.len - took);
	c->in.len -= took;
	c->body_rest -= took;
	if (c->state != C_BODY)
		return false; /* the sink answered (see begin_head) */
	if (c->body_rest == 0) {
		body_complete(c);
		return false;
	}
	if (took < n) {
		c->sink_paused = true;
		c->deadline_ms = 0; /* the sink's work (a write to the origin) is not timed here */
		return false;
	}
	return true;
}

/* Reads a body in C_BODY, within the read budget. */
static void body_read(struct http_conn *c)
{
	struct http_server *s = c->hl->server;
	int budget = READ_BUDGET;

	while (c->state == C_BODY && !c->sink_paused) {
		char *dst;
		ssize_t n;
		size_t want;

		if (c->in.len && !body_feed(c))
			return;
		if (budget-- == 0) {
			make_ready(c);
			return;
		}
		want = c->body_rest < BODY_CHUNK ? (size_t)c->body_rest : BODY_CHUNK;
		dst = buf_reserve(&c->in, want);
		if (!dst) {
			conn_close(c);
			return;
		}
		n = conn_recv(c, dst, want);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->deadline_ms = now_ms(c) + s->cfg.idle_timeout_ms;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN) {
			if (c->in.len == 0)
				buf_free(&c->in);
			return;
		}
		if (n < 0)
			c->tls_failed = true;
		conn_close(c); /* the client went away mid-body */
		return;
	}
}

/* Parses and dispatches what the input buffer holds. */
static void process_input(struct http_conn *c)
{
	struct http_server *s = c->hl->server;
	struct http_request req;
	const char *why = NULL;
	size_t used;
	int rc;

	if (c->state != C_READ || c->in.len == 0)
		return;
	rc = http_parse_request(c->in.data, c->in.len, &req, &why);
	if (rc == 0)
		return; /* incomplete: the header timeout runs */
	if (rc < 0) {
		refuse(c, -rc, why);
		return;
	}
	if (req.content_length && s->cfg.stream_body &&
	    s->cfg.stream_body(s->cfg.handler_ud, &req)) {
		req.body_streamed = true;
		req.body = (struct http_str){c->in.data + req.head_len, 0};
		dispatch(c, &req);
		/* req is dead: drop its head; what follows is its body. */
		if (c->state != C_CLOSED) {
			memmove(c->in.data, c->in.data + req.head_len, c->in.len - req.head_len);
			c->in.len -= req.head_len;
		}
		return;
	}
	if (req.content_length > s->cfg.max_body) {
		refuse(c, 413, "request body too large");
		return;
	}
	used = req.head_len + req.content_length;
	if (c->in.len < used) {
		if (!buf_reserve(&c->in, used - c->in.len)) {
			refuse(c, 413, "request body too large");
		}
		return; /* read the rest of the body */
	}
	req.body = (struct http_str){c->in.data + req.head_len, (size_t)req.content_length};
	dispatch(c, &req);
	/* req is dead now: drop its bytes, keep what was pipelined after it. */
	if (c->state != C_CLOSED) {
		memmove(c->in.data, c->in.data + used, c->in.len - used);
		c->in.len -= used;
		if (c->in.len == 0)
			buf_free(&c->in);
	}
}

/* recv, or SSL_read over TLS: bytes, 0 at the end, or -errno (-EAGAIN:
 * wait for the next event, over TLS the one in c->tls_want). */
static ssize_t conn_recv(struct http_conn *c, char *dst, size_t n)
{
	ssize_t got;

	if (c->ssl)
		return tls_conn_read(c->ssl, dst, n, &c->tls_want);
	got = recv(c->io.fd, dst, n, 0);
	return got < 0 ? -errno : got;
}

static void conn_read(struct http_conn *c)
{
	struct http_server *s = c->hl->server;
	int budget = READ_BUDGET;

	while (c->state == C_READ) {
		char *dst;
		ssize_t n;

		/* What is buffered first: a pipelined request needs no read. */
		if (c->in.len) {
			size_t before = c->in.len;
			process_input(c);
			if (c->state != C_READ)
				return;
			if (c->in.len != before)
				continue;
		}
		if (budget-- == 0) {
			/* More may wait in the socket, and no new edge will say
			 * so: the ready pass reads on, after the others. */
			make_ready(c);
			return;
		}
		dst = buf_reserve(&c->in, READ_CHUNK);
		if (!dst) {
			/* Only a body can outgrow the cap here; heads are
			 * refused by the parser first. */
			refuse(c, 413, "request too large");
			return;
		}
		n = conn_recv(c, dst, READ_CHUNK);
		if (n > 0) {
			if (c->in.len == 0)
				c->deadline_ms = now_ms(c) + s->cfg.header_timeout_ms;
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			process_input(c);
			continue;
		}
		if (n == 0) {
			conn_close(c);
			return;
		}
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN) {
			c->tls_failed = true;
			conn_close(c);
			return;
		}
		if (c->in.len == 0)
			buf_free(&c->in);
		return;
	}
}

/* The next piece of a streamed body into c->seg: true when there is one;
 * false when the body waits for its source (C_WAIT) or failed (closed). */
static bool next_segment(struct http_conn *c)
{
	enum http_pull p;

	if (c->seg.len)
		return true;
	p = c->ops->pull(c->ctx, &c->seg);
	if (p == HTTP_PULL_WAIT) {
		c->state = C_WAIT;
		c->deadline_ms = now_ms(c) + 60000;
		return false;
	}
	if (p != HTTP_PULL_READY || c->seg.len == 0) {
		conn_close(c);
		return false;
	}
	if (c->seg.len > c->body_left)
		c->seg.len = c->body_left;
	return true;
}

/* Over TLS: writes what c->tb holds. 1 when all is written, 0 when the
 * socket is full or the budget used (the connection is ready again), -1
 * when the connection is closed. */
static int tls_write_staged(struct http_conn *c, size_t *budget)
{
	while (c->tb_off < c->tb_len) {
		ssize_t n;

		if (*budget == 0) {
			make_ready(c);
			return 0;
		}
		n = tls_conn_write(c->ssl, c->tb + c->tb_off, c->tb_len - c->tb_off, &c->tls_want);
		if (n == -EAGAIN)
			return 0; /* the event OpenSSL waits for calls us again */
		if (n < 0) {
			c->tls_failed = true;
			conn_close(c);
			return -1;
		}
		c->tb_off += (size_t)n;
		wrote(c, (uint64_t)n);
		*budget -= (size_t)n < *budget ? (size_t)n : *budget;
		c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
	}
	c->tb_off = c->tb_len = 0;
	return 1;
}

/*
 * conn_flush over TLS. There is no sendfile into OpenSSL (this kernel has
 * no kTLS), so the head and the body go through c->tb: the head is copied
 * in, the body's bytes are read in with pread right behind it (a small
 * head shares its records with the first body bytes, as MSG_MORE makes
 * it share a segment on plain HTTP), and SSL_write sends the buffer,
 * which is only refilled once all of it is taken (OpenSSL wants a write
 * that waited repeated with the same bytes).
 */
static void tls_flush(struct http_conn *c)
{
	size_t budget = WRITE_BUDGET;

	while (c->state == C_WRITE) {
		size_t room, want;
		ssize_t n;
		int rc = tls_write_staged(c, &budget);

		if (rc <= 0)
			return;
		if (!c->tb)
			c->tb = xmalloc(TLS_BUF);
		if (c->out_off < c->out.len) {
			size_t k = c->out.len - c->out_off < TLS_BUF ? c->out.len - c->out_off
								     : TLS_BUF;
			memcpy(c->tb, c->out.data + c->out_off, k);
			c->out_off += k;
			c->tb_len = k;
			if (c->out_off < c->out.len)
				continue;
		}
		if (c->body != BODY_STREAM || c->body_left == 0) {
			if (c->tb_len)
				continue;
			if (!events_idle(c))
				response_done(c);
			return;
		}
		if (c->tb_len == TLS_BUF)
			continue;
		if (!next_segment(c)) {
			/* Waiting: the head goes out now, not with the body. */
			if (c->state == C_WAIT && c->tb_len)
				tls_write_staged(c, &budget);
			return;
		}
		room = TLS_BUF - c->tb_len;
		want = c->seg.len < room ? (size_t)c->seg.len : room;
		n = pread(c->seg.fd, c->tb + c->tb_len, want, (off_t)c->seg.offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Shorter than promised, or unreadable: never send
			 * anything else in its place. */
			log_error("http: body file %s; closing the connection",
				  n == 0 ? "ended early" : strerror(errno));
			conn_close(c);
			return;
		}
		c->tb_len += (size_t)n;
		c->seg.offset += (uint64_t)n;
		c->seg.len -= (uint64_t)n;
		c->body_left -= (uint64_t)n;
	}
}

static void conn_flush(struct http_conn *c)
{
	size_t budget = WRITE_BUDGET;

	if (c->ssl) {
		tls_flush(c);
		return;
	}
	while (c->state == C_WRITE) {
		ssize_t n;

		if (c->out_off < c->out.len) {
			/* MSG_MORE: the body follows at once, keep one segment. */
			int more = c->body == BODY_STREAM && c->body_left ? MSG_MORE : 0;
			n = send(c->io.fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | more);
			if (n < 0)
				goto io_error;
			c->out_off += (size_t)n;
			wrote(c, (uint64_t)n);
			c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
			continue;
		}
		if (c->body != BODY_STREAM || c->body_left == 0) {
			if (!events_idle(c))
				response_done(c);
			return;
		}
		if (!next_segment(c))
			return;
		if (budget == 0) {
			make_ready(c);
			return;
		}
		{
			off_t off = (off_t)c->seg.offset;
			size_t want = c->seg.len < budget ? (size_t)c->seg.len : budget;
			n = sendfile(c->io.fd, c->seg.fd, &off, want);
			if (n == 0) {
				/* The file is shorter than promised: never send
				 * anything else in its place. */
				log_error("http: body file ended early; closing the connection");
				conn_close(c);
				return;
			}
			if (n < 0)
				goto io_error;
			c->seg.offset += (uint64_t)n;
			c->seg.len -= (uint64_t)n;
			c->body_left -= (uint64_t)n;
			wrote(c, (uint64_t)n);
			budget -= (size_t)n;
			c->deadline_ms = now_ms(c) + c->hl->server->cfg.write_timeout_ms;
		}
	}
	return;
io_error:
	if (errno == EAGAIN || errno == EINTR)
		return; /* EPOLLOUT will call us again */
	conn_close(c);
}

static void conn_free(struct loop_deferred *d)
{
	struct http_conn *c = (struct http_conn *)((char *)d - offsetof(struct http_conn, dead));

	buf_free(&c->in);
	buf_free(&c->out);
	free(c->logline);
	free(c->tb);
	free(c);
}

static void conn_close(struct http_conn *c)
{
	struct http_loop *l = c->hl;
	int fd = c->io.fd;

	if (c->state == C_CLOSED)
		return;
	end_body(c, false);
	if (c->state == C_BODY && c->sink) {
		const struct http_sink_ops *ops = c->sink;
		c->sink = NULL;
		ops->end(c->sink_ctx, false);
	}
	account(c);
	if (c->logline)
		access_log(c);
	c->state = C_CLOSED;
	loop_io_stop(l->loop, &c->io);
	tls_conn_free(c->ssl, !c->tls_failed); /* before the socket closes */
	c->ssl = NULL;
	close(fd);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	ready_unlink(c);
	atomic_fetch_sub(&l->server->conns, 1);
	/* Its callers, and events later in this round, may still hold it. */
	loop_defer(l->loop, &c->dead, conn_free);
}

/* ---- accepting ---- */

static void refuse_busy(int fd)
{
	static const char msg[] =
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		"Content-Length: 67\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
		"{\"error\":{\"status\":503,\"message\":\"too many connections, retry\"}}";

	if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;
	close(fd);
}

/* A plain HTTP request on the TLS port: a plain answer saying so, as
 * nginx gives, sent if the socket takes it now. What the client sent is
 * read first so the close is less likely to reset the answer away. */
static void refuse_plain(struct http_conn *c)
{
	static const char msg[] =
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
		"Content-Length: 70\r\nConnection: close\r\n\r\n"
		"{\"error\":{\"status\":400,\"message\":\"this port speaks HTTPS, not HTTP\"}}\n";
	char sink[4096];

	for (int i = 0; i < 16 && recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (send(c->io.fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		shutdown(c->io.fd, SHUT_WR);
}

/* The TLS handshake, non-blocking, under the header timeout; then the
 * first request is read. */
static void conn_handshake(struct http_conn *c)
{
	int rc = tls_conn_handshake(c->ssl, &c->tls_want);

	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		if (rc == TLS_PLAIN_HTTP)
			refuse_plain(c);
		c->tls_failed = true;
		conn_close(c);
		return;
	}
	c->state = C_READ;
	conn_read(c);
}

static void conn_event(struct loop_io *io, unsigned events)
{
	struct http_conn *c = io->ud;

	if (events & LOOP_ERR) {
		c->tls_failed = true;
		conn_close(c);
		return;
	}
	if (c->ssl) {
		/* The state's step goes on when the event OpenSSL waited for
		 * came, whichever the step is (a read may have to write). */
		if (!(events & c->tls_want))
			return;
		if (c->state == C_HANDSHAKE)
			conn_handshake(c);
		else if (c->state == C_READ)
			conn_read(c);
		else if (c->state == C_BODY)
			body_read(c);
		else if (c->state == C_WRITE)
			conn_flush(c);
		else if (c->state == C_EVENTS)
			events_drain(c);
		return;
	}
	if ((events & LOOP_IN) && c->state == C_EVENTS)
		events_drain(c);
	if ((events & LOOP_IN) && c->state == C_READ)
		conn_read(c);
	if ((events & LOOP_IN) && c->state == C_BODY)
		body_read(c);
	if ((events & LOOP_OUT) && c->state == C_WRITE)
		conn_flush(c);
}

static void do_accept(struct loop_io *io, unsigned events)
{
	struct http_loop *l = io->ud;
	struct http_server *s = l->server;

	for (int i = 0; i < ACCEPT_BUDGET && l->listen.fd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct http_conn *c;
		int fd, one = 1;

		fd = accept4(l->listen.fd, (struct sockaddr *)&ss, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				log_warn("http: accept: %s", strerror(errno));
			return;
		}
		if (atomic_load(&s->conns) >= (uint64_t)s->cfg.max_conns) {
			if (s->tls)
				close(fd); /* a plain 503 would be garbage to a TLS client */
			else
				refuse_busy(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->hl = l;
		c->state = C_READ;
		if (s->tls) {
			c->ssl = tls_conn_new(s->tls, fd);
			if (!c->ssl) {
				log_warn("http: cannot make a TLS connection object");
				close(fd);
				free(c);
				continue;
			}
			c->state = C_HANDSHAKE;
			c->tls_want = LOOP_IN;
		}
		buf_init(&c->in, HTTP_MAX_HEADER_BYTES + s->cfg.max_body);
		buf_init(&c->out, (size_t)64 << 20);
		if (ss.ss_family == AF_INET6) {
			c->peer_v6 = true;
			c->peer = ((struct sockaddr_in6 *)&ss)->sin6_addr;
		} else {
			memcpy(&c->peer, &((struct sockaddr_in *)&ss)->sin_addr,
			       sizeof(struct in_addr));
		}
		c->deadline_ms = loop_now_ms(l->loop) + s->cfg.header_timeout_ms;
		c->next = l->head.next;
		c->prev = &l->head;
		l->head.next->prev = c;
		l->head.next = c;
		atomic_fetch_add(&s->conns, 1);
		bump(&l->stats.accepted, 1);
		if (loop_io_start(l->loop, &c->io, fd, LOOP_IN | LOOP_OUT | LOOP_EDGE, conn_event,
				  c) < 0) {
			c->io.fd = fd; /* conn_close closes it */
			conn_close(c);
			continue;
		}
		if (c->ssl)
			conn_handshake(c);
		else
			conn_read(c);
	}
}

/* ---- the loop's phases for HTTP ---- */

/* Before sleeping: the connections that used their budget go on, after
 * everyone had a turn. Those made ready during the pass wait for the
 * next one. True while some are left: the loop polls without sleeping. */
static bool ready_pass(void *ud)
{
	struct http_loop *l = ud;
	struct http_conn *list = l->ready;

	l->ready = NULL;
	if (list)
		list->ready_prev = &list;
	while (list) {
		struct http_conn *r = list;
		ready_unlink(r);
		if (r->state == C_WRITE)
			conn_flush(r);
		else if (r->state == C_READ)
			conn_read(r);
		else if (r->state == C_BODY)
			body_read(r);
		else if (r->state == C_HANDSHAKE)
			conn_handshake(r);
	}
	return l->ready != NULL;
}

static void sweep(struct loop_timer *t)
{
	struct http_loop *l = t->ud;
	struct http_conn *c = l->head.next;
	int64_t now = loop_now_ms(l->loop);

	while (c != &l->head) {
		struct http_conn *next = c->next;
		if (c->deadline_ms && now > c->deadline_ms) {
			if (c->state == C_READ && c->in.len > 0) {
				/* A head that never finished (slowloris). */
				refuse(c, 408, "request head not received in time");
				conn_flush(c);
				if (c->state != C_CLOSED)
					conn_close(c);
			} else if (c->state != C_HANDLER) {
				conn_close(c);
			}
		}
		c = next;
	}
	loop_timer_start(l->loop, &l->sweep, SWEEP_MS, sweep, l);
}

static void close_listener(struct http_loop *l)
{
	int fd = l->listen.fd;

	if (fd < 0)
		return;
	loop_io_stop(l->loop, &l->listen);
	close(fd);
}

static void drain_loop(void *arg)
{
	struct http_loop *l = arg;
	struct http_conn *c = l->head.next;

	close_listener(l);
	while (c != &l->head) {
		struct http_conn *next = c->next;
		c->keep_alive = false;
		if ((c->state == C_READ && c->in.len == 0) || c->state == C_HANDSHAKE)
			conn_close(c);
		c = next;
	}
}

/* Closes every connection left (their bodies' done runs now); the loop
 * frees them at the end of this round. */
static void close_all(struct http_loop *l)
{
	close_listener(l);
	while (l->head.next != &l->head)
		conn_close(l->head.next);
}

static void close_loop(void *arg)
{
	close_all(arg);
}

static void stop_loop(void *arg)
{
	struct http_loop *l = arg;

	close_all(l);
	loop_timer_stop(l->loop, &l->sweep);
	loop_stop(l->loop);
}

static void *loop_main(void *arg)
{
	struct http_loop *l = arg;
	struct http_server *s = l->server;

	if (s->cfg.loop_data_new)
		l->data = s->cfg.loop_data_new(s->cfg.handler_ud, l->index);
	loop_timer_start(l->loop, &l->sweep, SWEEP_MS, sweep, l);
	loop_run(l->loop);
	if (s->cfg.loop_data_free)
		s->cfg.loop_data_free(s->cfg.handler_ud, l->data);
	return NULL;
}

/* ---- the server ---- */

static int open_listener(struct sockaddr_storage *ss, socklen_t sl, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)ss, sl) < 0 || listen(fd, 4096) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot listen: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int http_server_start(const struct http_server_config *cfg, http_server_t **out, char *err,
		      size_t errlen)
{
	struct http_server *s;
	struct sockaddr_storage ss;
	socklen_t sl;
	int n = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN), taken;

	if (n < 1)
		n = 1;
	if (http_listen_parse(cfg->listen, &ss, &sl, err, errlen) < 0)
		return -EINVAL;
	if ((taken = http_listen_check_free(&ss, sl, cfg->listen, err, errlen)) < 0)
		return taken;
	signal(SIGPIPE, SIG_IGN);
	s = xcalloc(1, sizeof(*s));
	s->cfg = *cfg;
	if (cfg->tls_cert && tls_open(cfg->tls_cert, cfg->tls_key, &s->tls, err, errlen) < 0) {
		free(s);
		return -EINVAL;
	}
	s->nloops = n;
	s->loops = xcalloc((size_t)n, sizeof(*s->loops));
	for (int i = 0; i < n; i++) {
		struct http_loop *l = &s->loops[i];
		int fd, rc;

		l->server = s;
		l->index = i;
		l->head.next = l->head.prev = &l->head;
		l->listen.fd = -1;
		fd = open_listener(&ss, sl, err, errlen);
		if (fd < 0)
			goto fail;
		rc = loop_new(&l->loop);
		if (rc == 0)
			rc = loop_io_start(l->loop, &l->listen, fd, LOOP_IN, do_accept, l);
		if (rc < 0) {
			close(fd);
			snprintf(err, errlen, "event loop: %s", strerror(-rc));
			goto fail;
		}
		loop_before_sleep(l->loop, ready_pass, l);
		if (i == 0) {
			/* Port 0: the others bind the port the first one got. */
			struct sockaddr_storage got;
			socklen_t gl = sizeof(got);
			getsockname(fd, (struct sockaddr *)&got, &gl);
			s->port = ntohs(got.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
			if (ss.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)s->port);
			else
				((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)s->port);
		}
	}
	for (int i = 0; i < n; i++)
		if (thread_start(&s->loops[i].thread, loop_main, &s->loops[i]) != 0)
			die("cannot start event loop threads");
	*out = s;
	return 0;
fail:
	for (int i = 0; i < n; i++) {
		struct http_loop *l = &s->loops[i];
		if (!l->server)
			break; /* not reached by the set-up */
		if (l->listen.fd >= 0)
			close(l->listen.fd);
		loop_free(l->loop);
	}
	free(s->loops);
	tls_free(s->tls);
	free(s);
	return -EADDRINUSE;
}

int http_server_port(const http_server_t *s)
{
	return s->port;
}

uint64_t http_server_connections(const http_server_t *s)
{
	return atomic_load(&((http_server_t *)s)->conns);
}

void http_server_read_stats(const http_server_t *s, struct http_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < s->nloops; i++) {
		const struct http_loop_stats *ls = &s->loops[i].stats;
		out->accepted += atomic_load_explicit(&ls->accepted, memory_order_relaxed);
		for (int k = 0; k < HTTP_CLASSES; k++) {
			const struct http_class_figures *f = &ls->cls[k];
			struct http_class_stats *o = &out->cls[k];
			for (int j = 0; j < 5; j++)
				o->codes[j] +=
					atomic_load_explicit(&f->codes[j], memory_order_relaxed);
			o->bytes += atomic_load_explicit(&f->bytes, memory_order_relaxed);
			hist_read(&f->duration, &o->duration);
			hist_read(&f->ttfb, &o->ttfb);
		}
	}
	out->connections = http_server_connections(s);
}

void http_server_drain(http_server_t *s)
{
	atomic_store(&s->draining, true);
	for (int i = 0; i < s->nloops; i++)
		loop_post(s->loops[i].loop, drain_loop, &s->loops[i]);
}

uint64_t http_server_wait_idle(http_server_t *s, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	uint64_t left;

	while ((left = atomic_load(&s->conns)) > 0 && mono_ms() < until)
		usleep(20000);
	return left;
}

void http_server_close_all(http_server_t *s)
{
	for (int i = 0; i < s->nloops; i++)
		loop_post(s->loops[i].loop, close_loop, &s->loops[i]);
	/* Each loop takes the post within one round; this only waits for it. */
	http_server_wait_idle(s, 2000);
}

void http_server_stop(http_server_t *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nloops; i++)
		loop_post(s->loops[i].loop, stop_loop, &s->loops[i]);
	for (int i = 0; i < s->nloops; i++) {
		struct http_loop *l = &s->loops[i];
		pthread_join(l->thread, NULL);
		/* Runs what was posted after the loop stopped, so it is freed. */
		loop_free(l->loop);
	}
	free(s->loops);
	tls_free(s->tls);
	free(s);
}

void http_server_tls_reload(http_server_t *s)
{
	char info[512], err[512];

	if (!s->tls) {
		log_info("http: SIGHUP: nothing to reload (no --tls-cert)");
		return;
	}
	if (tls_reload(s->tls, info, sizeof(info), err, sizeof(err)) < 0)
		log_error("http: SIGHUP: keeping the certificate in use: %s", err);
	else
		log_info("http: SIGHUP: certificate reloaded for new connections: %s", info);
}
