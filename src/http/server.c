/*
 * The HTTP server's event loops and connections.
 *
 * Each loop thread owns an epoll instance, a listener bound with
 * SO_REUSEPORT (the kernel spreads new connections over the loops), an
 * eventfd for work posted by other threads, and the list of its
 * connections. Sockets are registered once, edge-triggered, for input and
 * output; a connection's state says which of the two matters now.
 *
 * A connection reads into a buffer that exists only while a request is
 * partly received, so an idle keep-alive connection costs its struct and
 * nothing else. Requests are parsed in place, answered, and the bytes
 * after them (pipelined requests) are parsed once the answer is written.
 *
 * Writing is bounded per wake-up (WRITE_BUDGET): a connection that still
 * has data after its budget goes on the loop's ready list and continues
 * after the other connections had their turn, so one fast reader of a
 * large file cannot starve the rest.
 *
 * Timeouts are checked by a sweep of the loop's connections once a second:
 * cheap at ten thousand connections, and simpler than a timer wheel.
 * Connections are never freed inside their own event handling: closing
 * marks them and the loop frees them after the batch of events.
 */
#include "http/server.h"
#include "http/listen.h"

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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#define WRITE_BUDGET (1u << 20) /* bytes per connection per wake-up */
#define READ_CHUNK 4096
#define ACCEPT_BUDGET 64
#define MAX_EVENTS 256

enum conn_state {
	C_READ,    /* waiting for (more of) a request */
	C_HANDLER, /* a handler owns the request and has not answered yet */
	C_WRITE,   /* writing a response */
	C_WAIT,    /* a streamed body waits for its source */
	C_CLOSED,
};

enum body_kind { BODY_NONE, BODY_DEFER, BODY_STREAM };

struct http_conn {
	int fd;
	enum conn_state state;
	struct loop *loop;
	struct http_conn *prev, *next;       /* the loop's connections */
	struct http_conn *ready_next;        /* the loop's ready list */
	bool on_ready, keep_alive, head, close_after, served_one;
	int64_t deadline_ms;
	buf_t in;
	buf_t out;
	size_t out_off;
	/* a streamed body */
	enum body_kind body;
	const struct http_body_ops *ops;
	void *ctx;
	uint64_t body_left;
	struct http_segment seg;
	/* for the access log */
	int status;
	uint64_t sent;
	int64_t started_ms;
	char *logline;
	struct in6_addr peer;
	bool peer_v6;
	char peer_text[INET6_ADDRSTRLEN];
};

struct post {
	void (*fn)(void *);
	void *arg;
	struct post *next;
};

struct loop {
	struct http_server *server;
	int index;
	int epfd, listen_fd, event_fd;
	pthread_t thread;
	struct http_conn head; /* list sentinel */
	struct http_conn *ready;
	struct http_conn *dead; /* closed, freed after the event batch */
	pthread_mutex_t post_lock;
	struct post *posts;
	void *data;
	char date[40];
	time_t date_at;
	int64_t now_ms;
	bool stopping;
};

struct http_server {
	struct http_server_config cfg;
	struct loop *loops;
	int nloops, port;
	atomic_uint_fast64_t conns;
	atomic_bool draining;
};

const char *http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
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

static void update_date(struct loop *l)
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

static void make_ready(struct http_conn *c)
{
	if (c->on_ready || c->state == C_CLOSED)
		return;
	c->on_ready = true;
	c->ready_next = c->loop->ready;
	c->loop->ready = c;
}

/* ---- responses ---- */

static void begin_head(struct http_conn *c, int status, const char *content_type,
		       const char *extra, uint64_t content_length)
{
	struct loop *l = c->loop;
	int rc;

	update_date(l);
	buf_reset(&c->out);
	c->out_off = 0;
	c->status = status;
	if (atomic_load(&l->server->draining))
		c->keep_alive = false;
	rc = buf_printf(&c->out,
			"HTTP/1.1 %d %s\r\nServer: chorus\r\nDate: %s\r\n"
			"Content-Length: %llu\r\n",
			status, http_status_text(status), l->date, (unsigned long long)content_length);
	if (rc == 0 && content_type)
		rc = buf_printf(&c->out, "Content-Type: %s\r\n", content_type);
	if (rc == 0 && extra)
		rc = buf_appends(&c->out, extra);
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

void http_defer(http_conn_t *c, const struct http_body_ops *ops, void *ctx)
{
	c->body = BODY_DEFER;
	c->ops = ops;
	c->ctx = ctx;
}

void http_send(http_conn_t *c, int status, const char *content_type, const char *extra_headers,
	       const void *body, size_t len)
{
	/* A deferred handler answering by itself owns its context. */
	c->ops = NULL;
	begin_head(c, status, content_type, extra_headers, len);
	if (!c->head && len && buf_append(&c->out, body, len) < 0) {
		log_error("http: response body of %zu bytes over the buffer cap", len);
		c->keep_alive = false;
	}
	c->body = BODY_NONE;
	c->state = C_WRITE;
	c->deadline_ms = c->loop->now_ms + c->loop->server->cfg.write_timeout_ms;
	make_ready(c);
}

void http_send_error(http_conn_t *c, int status, const char *message)
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
	http_send(c, status, "application/json; charset=utf-8",
		  status == 405 ? "Allow: GET, HEAD\r\n" : NULL, b.data, b.len);
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
	c->deadline_ms = c->loop->now_ms + c->loop->server->cfg.write_timeout_ms;
	make_ready(c);
}

void http_stream_wake(http_conn_t *c)
{
	if (c->state != C_WAIT)
		return;
	c->state = C_WRITE;
	c->deadline_ms = c->loop->now_ms + c->loop->server->cfg.write_timeout_ms;
	make_ready(c);
}

loop_t *http_conn_loop(http_conn_t *c)
{
	return c->loop;
}

void *http_conn_loop_data(http_conn_t *c)
{
	return c->loop->data;
}

const char *http_conn_peer(http_conn_t *c)
{
	if (!c->peer_text[0])
		inet_ntop(c->peer_v6 ? AF_INET6 : AF_INET, &c->peer, c->peer_text,
			  sizeof(c->peer_text));
	return c->peer_text;
}

/* ---- the connection state machine ---- */

static void access_log(struct http_conn *c)
{
	struct http_server *s = c->loop->server;
	char line[2048];
	int n;

	if (s->cfg.access_log_fd < 0 || !c->logline)
		return;
	update_date(c->loop);
	n = snprintf(line, sizeof(line), "%s [%s] \"%s\" %d %llu %lldms\n", http_conn_peer(c),
		     c->loop->date, c->logline, c->status, (unsigned long long)c->sent,
		     (long long)(mono_ms() - c->started_ms));
	if (n > 0 && write(s->cfg.access_log_fd, line,
			   (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}

static void end_body(struct http_conn *c, bool completed)
{
	if (c->body != BODY_NONE && c->ops) {
		const struct http_body_ops *ops = c->ops;
		c->ops = NULL;
		ops->done(c->ctx, completed);
	}
	c->body = BODY_NONE;
}

static void response_done(struct http_conn *c)
{
	access_log(c);
	free(c->logline);
	c->logline = NULL;
	end_body(c, true);
	buf_free(&c->out);
	c->out_off = 0;
	c->served_one = true;
	if (!c->keep_alive || c->close_after) {
		conn_close(c);
		return;
	}
	c->state = C_READ;
	c->deadline_ms = c->loop->now_ms + (c->in.len ? c->loop->server->cfg.header_timeout_ms
						       : c->loop->server->cfg.idle_timeout_ms);
	/* Pipelined requests may be waiting in the buffer or the socket; with
	 * edge-triggered events nothing else would tell us. */
	conn_read(c);
}

/* An error answer to a request that could not be parsed: the connection
 * closes after it, as the framing of what follows is unknown. */
static void refuse(struct http_conn *c, int status, const char *why)
{
	/* The access log shows refused requests too, with no request line. */
	if (c->loop->server->cfg.access_log_fd >= 0 && !c->logline) {
		c->logline = xstrdup("-");
		c->started_ms = c->loop->now_ms;
		c->sent = 0;
	}
	c->keep_alive = false;
	c->close_after = true;
	c->head = false;
	buf_reset(&c->in);
	http_send_error(c, status, why);
}

static void dispatch(struct http_conn *c, const struct http_request *req)
{
	struct http_server *s = c->loop->server;

	c->head = req->method == HTTP_HEAD;
	c->keep_alive = req->keep_alive && !atomic_load(&s->draining);
	c->started_ms = c->loop->now_ms;
	c->sent = 0;
	if (s->cfg.access_log_fd >= 0) {
		size_t n = req->method_str.len + req->target.len + 16;
		c->logline = xmalloc(n);
		snprintf(c->logline, n, "%.*s %.*s HTTP/1.%d", (int)req->method_str.len,
			 req->method_str.p, (int)req->target.len, req->target.p, req->minor);
	}
	c->state = C_HANDLER;
	if (req->method == HTTP_OTHER) {
		http_send_error(c, 501, "chorus does not support this method");
		return;
	}
	s->cfg.handler(s->cfg.handler_ud, c, req);
}

/* Parses and dispatches what the input buffer holds. */
static void process_input(struct http_conn *c)
{
	struct http_server *s = c->loop->server;
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

static void conn_read(struct http_conn *c)
{
	struct http_server *s = c->loop->server;

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
		dst = buf_reserve(&c->in, READ_CHUNK);
		if (!dst) {
			/* Only a body can outgrow the cap here; heads are
			 * refused by the parser first. */
			refuse(c, 413, "request too large");
			return;
		}
		n = recv(c->fd, dst, READ_CHUNK, 0);
		if (n > 0) {
			if (c->in.len == 0)
				c->deadline_ms = c->loop->now_ms + s->cfg.header_timeout_ms;
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			process_input(c);
			continue;
		}
		if (n == 0) {
			conn_close(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			conn_close(c);
			return;
		}
		if (c->in.len == 0)
			buf_free(&c->in);
		return;
	}
}

static void conn_flush(struct http_conn *c)
{
	size_t budget = WRITE_BUDGET;

	while (c->state == C_WRITE) {
		ssize_t n;

		if (c->out_off < c->out.len) {
			/* MSG_MORE: the body follows at once, keep one segment. */
			int more = c->body == BODY_STREAM && c->body_left ? MSG_MORE : 0;
			n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | more);
			if (n < 0)
				goto io_error;
			c->out_off += (size_t)n;
			c->sent += (uint64_t)n;
			c->deadline_ms = c->loop->now_ms + c->loop->server->cfg.write_timeout_ms;
			continue;
		}
		if (c->body != BODY_STREAM || c->body_left == 0) {
			response_done(c);
			return;
		}
		if (c->seg.len == 0) {
			enum http_pull p = c->ops->pull(c->ctx, &c->seg);
			if (p == HTTP_PULL_WAIT) {
				c->state = C_WAIT;
				c->deadline_ms = c->loop->now_ms + 60000;
				return;
			}
			if (p != HTTP_PULL_READY || c->seg.len == 0) {
				conn_close(c);
				return;
			}
			if (c->seg.len > c->body_left)
				c->seg.len = c->body_left;
		}
		if (budget == 0) {
			make_ready(c);
			return;
		}
		{
			off_t off = (off_t)c->seg.offset;
			size_t want = c->seg.len < budget ? (size_t)c->seg.len : budget;
			n = sendfile(c->fd, c->seg.fd, &off, want);
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
			c->sent += (uint64_t)n;
			budget -= (size_t)n;
			c->deadline_ms = c->loop->now_ms + c->loop->server->cfg.write_timeout_ms;
		}
	}
	return;
io_error:
	if (errno == EAGAIN || errno == EINTR)
		return; /* EPOLLOUT will call us again */
	conn_close(c);
}

static void conn_close(struct http_conn *c)
{
	struct loop *l = c->loop;

	if (c->state == C_CLOSED)
		return;
	end_body(c, false);
	if (c->logline)
		access_log(c);
	c->state = C_CLOSED;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	atomic_fetch_sub(&l->server->conns, 1);
	/* Freed after the current batch of events (see the top). */
	c->next = l->dead;
	l->dead = c;
}

static void free_dead(struct loop *l)
{
	struct http_conn *keep = NULL;

	while (l->dead) {
		struct http_conn *c = l->dead;
		l->dead = c->next;
		if (c->on_ready) {
			/* Still linked in the ready list (closed after it was made
			 * ready): the ready pass unlinks it, a later call frees it. */
			c->next = keep;
			keep = c;
			continue;
		}
		buf_free(&c->in);
		buf_free(&c->out);
		free(c->logline);
		free(c);
	}
	l->dead = keep;
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

static void do_accept(struct loop *l)
{
	struct http_server *s = l->server;

	for (int i = 0; i < ACCEPT_BUDGET; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev;
		struct http_conn *c;
		int fd, one = 1;

		fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				log_warn("http: accept: %s", strerror(errno));
			return;
		}
		if (atomic_load(&s->conns) >= (uint64_t)s->cfg.max_conns) {
			refuse_busy(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->loop = l;
		c->state = C_READ;
		buf_init(&c->in, HTTP_MAX_HEADER_BYTES + s->cfg.max_body);
		buf_init(&c->out, (size_t)64 << 20);
		if (ss.ss_family == AF_INET6) {
			c->peer_v6 = true;
			c->peer = ((struct sockaddr_in6 *)&ss)->sin6_addr;
		} else {
			memcpy(&c->peer, &((struct sockaddr_in *)&ss)->sin_addr,
			       sizeof(struct in_addr));
		}
		c->deadline_ms = l->now_ms + s->cfg.header_timeout_ms;
		c->next = l->head.next;
		c->prev = &l->head;
		l->head.next->prev = c;
		l->head.next = c;
		atomic_fetch_add(&s->conns, 1);
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conn_close(c);
			continue;
		}
		conn_read(c);
	}
}

/* ---- the loop ---- */

void loop_post(loop_t *l, void (*fn)(void *arg), void *arg)
{
	struct post *p = xmalloc(sizeof(*p));
	uint64_t one = 1;

	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&l->post_lock);
	p->next = l->posts;
	l->posts = p;
	pthread_mutex_unlock(&l->post_lock);
	if (write(l->event_fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is saturated: a wake-up is pending anyway */
}

static void run_posts(struct loop *l)
{
	struct post *p, *rev = NULL;
	uint64_t v;

	if (read(l->event_fd, &v, sizeof(v)) < 0)
		(void)0;
	pthread_mutex_lock(&l->post_lock);
	p = l->posts;
	l->posts = NULL;
	pthread_mutex_unlock(&l->post_lock);
	while (p) { /* run in posting order */
		struct post *n = p->next;
		p->next = rev;
		rev = p;
		p = n;
	}
	while (rev) {
		struct post *n = rev->next;
		rev->fn(rev->arg);
		free(rev);
		rev = n;
	}
}

static void sweep(struct loop *l)
{
	struct http_conn *c = l->head.next;

	while (c != &l->head) {
		struct http_conn *next = c->next;
		if (c->deadline_ms && l->now_ms > c->deadline_ms) {
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
}

static void drain_loop(void *arg)
{
	struct loop *l = arg;
	struct http_conn *c = l->head.next;

	if (l->listen_fd >= 0) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL);
		close(l->listen_fd);
		l->listen_fd = -1;
	}
	while (c != &l->head) {
		struct http_conn *next = c->next;
		c->keep_alive = false;
		if (c->state == C_READ && c->in.len == 0)
			conn_close(c);
		c = next;
	}
}

static void stop_loop(void *arg)
{
	struct loop *l = arg;

	l->stopping = true;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct epoll_event events[MAX_EVENTS];
	int64_t next_sweep;

	if (l->server->cfg.loop_data_new)
		l->data = l->server->cfg.loop_data_new(l->server->cfg.handler_ud, l->index);
	l->now_ms = mono_ms();
	next_sweep = l->now_ms + 1000;
	while (!l->stopping) {
		int n = epoll_wait(l->epfd, events, MAX_EVENTS, l->ready ? 0 : 1000);

		l->now_ms = mono_ms();
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			uint32_t e = events[i].events;
			struct http_conn *c;

			if (p == &l->listen_fd) {
				do_accept(l);
				continue;
			}
			if (p == &l->event_fd) {
				run_posts(l);
				continue;
			}
			c = p;
			if (c->state == C_CLOSED)
				continue;
			if (e & (EPOLLERR | EPOLLHUP)) {
				conn_close(c);
				continue;
			}
			if ((e & EPOLLIN) && c->state == C_READ)
				conn_read(c);
			if ((e & EPOLLOUT) && c->state == C_WRITE)
				conn_flush(c);
		}
		/* Connections with more to write, after everyone had a turn. */
		while (l->ready) {
			struct http_conn *r = l->ready, *list = l->ready;
			l->ready = NULL;
			while (list) {
				r = list;
				list = r->ready_next;
				r->on_ready = false;
				if (r->state == C_WRITE)
					conn_flush(r);
			}
			break; /* newly readied ones wait for the next turn */
		}
		free_dead(l);
		if (l->now_ms >= next_sweep) {
			sweep(l);
			free_dead(l);
			next_sweep = l->now_ms + 1000;
		}
	}
	/* Stopping: close what is left. */
	while (l->head.next != &l->head)
		conn_close(l->head.next);
	for (struct http_conn *r = l->ready; r; r = r->ready_next)
		r->on_ready = false;
	l->ready = NULL;
	free_dead(l);
	if (l->server->cfg.loop_data_free)
		l->server->cfg.loop_data_free(l->server->cfg.handler_ud, l->data);
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
	int n = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (http_listen_parse(cfg->listen, &ss, &sl, err, errlen) < 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	s = xcalloc(1, sizeof(*s));
	s->cfg = *cfg;
	s->nloops = n;
	s->loops = xcalloc((size_t)n, sizeof(*s->loops));
	for (int i = 0; i < n; i++) {
		struct loop *l = &s->loops[i];
		struct epoll_event ev = {.events = EPOLLIN};

		l->server = s;
		l->index = i;
		l->head.next = l->head.prev = &l->head;
		l->epfd = l->event_fd = l->listen_fd = -1;
		pthread_mutex_init(&l->post_lock, NULL);
		l->listen_fd = open_listener(&ss, sl, err, errlen);
		if (l->listen_fd < 0)
			goto fail;
		if (i == 0) {
			/* Port 0: the others bind the port the first one got. */
			struct sockaddr_storage got;
			socklen_t gl = sizeof(got);
			getsockname(l->listen_fd, (struct sockaddr *)&got, &gl);
			s->port = ntohs(got.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
			if (ss.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)s->port);
			else
				((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)s->port);
		}
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->epfd < 0 || l->event_fd < 0) {
			snprintf(err, errlen, "epoll: %s", strerror(errno));
			goto fail;
		}
		ev.data.ptr = &l->listen_fd;
		epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev);
		ev.data.ptr = &l->event_fd;
		epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->event_fd, &ev);
	}
	for (int i = 0; i < n; i++)
		if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) != 0)
			die("cannot start event loop threads");
	*out = s;
	return 0;
fail:
	for (int i = 0; i < n; i++) {
		struct loop *l = &s->loops[i];
		if (l->listen_fd >= 0)
			close(l->listen_fd);
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->event_fd >= 0)
			close(l->event_fd);
		if (l->server)
			pthread_mutex_destroy(&l->post_lock);
	}
	free(s->loops);
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

void http_server_drain(http_server_t *s)
{
	atomic_store(&s->draining, true);
	for (int i = 0; i < s->nloops; i++)
		loop_post(&s->loops[i], drain_loop, &s->loops[i]);
}

uint64_t http_server_wait_idle(http_server_t *s, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	uint64_t left;

	while ((left = atomic_load(&s->conns)) > 0 && mono_ms() < until)
		usleep(20000);
	return left;
}

void http_server_stop(http_server_t *s)
{
	for (int i = 0; i < s->nloops; i++)
		loop_post(&s->loops[i], stop_loop, &s->loops[i]);
	for (int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];
		pthread_join(l->thread, NULL);
		run_posts(l); /* free what was posted after the loop stopped */
		if (l->listen_fd >= 0)
			close(l->listen_fd);
		close(l->epfd);
		close(l->event_fd);
		pthread_mutex_destroy(&l->post_lock);
	}
	free(s->loops);
	free(s);
}
