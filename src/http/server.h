#ifndef CHORUS_HTTP_SERVER_H
#define CHORUS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"
#include "loop/loop.h"
#include "metrics/hist.h"

/*
 * The HTTP/1.1 server: one event loop (loop/loop.h) per thread, each
 * with its own SO_REUSEPORT listener, non-blocking sockets, keep-alive and
 * pipelining, bodies from memory or pulled from files and written with
 * sendfile; or, with a certificate, HTTPS (http/tls.h), bodies then read
 * with pread and written with SSL_write.
 *
 * Threads: handlers, body pulls and http_* response calls run on the
 * connection's loop thread. Other threads reach a loop with loop_post, or
 * answer a deferred request through http/later.h.
 */
typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;

/*
 * Called for every complete request, on the connection's loop. req and
 * everything it points to are valid only during the call. The handler
 * must answer, now or later (http/later.h), with exactly one http_send*
 * call.
 */
typedef void (*http_handler_fn)(void *ud, http_conn_t *c, const struct http_request *req);

struct http_server_config {
	const char *listen; /* "ADDR:PORT"; port 0 picks a free port */
	int threads;        /* event loops; 0: one per core */
	int max_conns;      /* beyond this, new connections get 503 and are closed */
	int header_timeout_ms;
	int idle_timeout_ms;
	int write_timeout_ms; /* without any progress */
	size_t max_body;      /* request bodies above this get 413 */
	int access_log_fd;    /* -1: no access log */
	/* Both or neither: HTTPS with this PEM chain and key (http/tls.h),
	 * loaded before anything listens; the handshake runs under
	 * header_timeout_ms. */
	const char *tls_cert, *tls_key;
	http_handler_fn handler;
	void *handler_ud;
	/* Optional: whether the request whose head this is takes its body as
	 * it arrives (http_take_body) rather than whole, from memory. Asked
	 * only for heads that announce a body; such a request goes to the
	 * handler at once, with req->body_streamed set and no max_body
	 * limit (the handler sets its own). */
	bool (*stream_body)(void *ud, const struct http_request *req);
	/* Per-loop state for handlers (a database connection, say): made on
	 * the loop's thread before it serves, freed there when it stops. */
	void *(*loop_data_new)(void *ud, int index);
	void (*loop_data_free)(void *ud, void *data);
};

void http_server_config_defaults(struct http_server_config *cfg);

int http_server_start(const struct http_server_config *cfg, http_server_t **out, char *err,
		      size_t errlen);
/* The port actually bound. */
int http_server_port(const http_server_t *s);
/* Connections open now, over all loops. */
uint64_t http_server_connections(const http_server_t *s);
/*
 * The server's figures. A handler names its request's class (a route
 * class of the application, < HTTP_CLASSES; 0 until named, and for
 * requests refused before any handler) with http_conn_set_class; the
 * server counts each request once, when its answer is written or its
 * connection closes under it: the status class, the bytes written, the
 * time from the complete request to the last byte, and to the first.
 * Each loop keeps its own counts; reading sums them (any thread).
 */
#define HTTP_CLASSES 16

struct http_class_stats {
	uint64_t codes[5]; /* answers with status 1xx ... 5xx */
	uint64_t bytes;    /* written, headers included */
	struct hist_snap duration, ttfb;
};

struct http_stats {
	struct http_class_stats cls[HTTP_CLASSES];
	uint64_t accepted, connections;
};

void http_server_read_stats(const http_server_t *s, struct http_stats *out);
void http_conn_set_class(http_conn_t *c, int cls);

/* Stops accepting and ends keep-alive; requests in flight go on. */
void http_server_drain(http_server_t *s);
/* Waits until no connection is left or timeout_ms passed; returns the
 * number left. */
uint64_t http_server_wait_idle(http_server_t *s, int timeout_ms);
/* Closes every connection left, with the loops still running (so what
 * other threads post back to them is still taken), and waits for it.
 * After it, no handler or body pull runs until a new connection, which a
 * drained server no longer accepts. */
void http_server_close_all(http_server_t *s);
/* Stops the loops (closing what is left) and frees everything. NULL is
 * a no-op. */
void http_server_stop(http_server_t *s);
/* HTTPS: reads the certificate and key again, for the connections
 * accepted from now on (those open keep theirs); a pair that does not
 * load leaves the old one. Logs one line either way. Any thread. */
void http_server_tls_reload(http_server_t *s);

/* ---- answering ---- */

/* Header lines ("Name: value\r\n"..., a string that outlives the
 * response: a literal) for the answer to the request in hand, whichever
 * call sends it: what a router decides for every route alike (CORS). */
void http_conn_also(http_conn_t *c, const char *lines);

/* A whole response from memory (copied). For HEAD the body is left out
 * but Content-Length stays. extra_headers: "Name: value\r\n"... or NULL. */
void http_send(http_conn_t *c, int status, const char *content_type, const char *extra_headers,
	       const void *body, size_t len);

/* The same, the body given in parts (copied once, in order): an answer
 * assembled from a template and what fills its holes. */
struct iovec;
void http_send_parts(http_conn_t *c, int status, const char *content_type,
		     const char *extra_headers, const struct iovec *parts, int n);

/* {"error":{"status":N,"message":"..."}} with the same status. */
void http_send_error(http_conn_t *c, int status, const char *message);
/* The same with header lines of the caller's (a protocol's own, such as
 * tus's Tus-Resumable), or NULL. */
void http_send_error_with(http_conn_t *c, int status, const char *extra_headers,
			  const char *message);

/* A body pulled in segments of files. */
struct http_segment {
	int fd; /* not closed by the server */
	uint64_t offset, len;
};

enum http_pull {
	HTTP_PULL_READY, /* seg is filled in */
	HTTP_PULL_WAIT,  /* not yet: call http_stream_wake when it is */
	HTTP_PULL_ERROR, /* give up: the connection is closed */
};

struct http_body_ops {
	enum http_pull (*pull)(void *ctx, struct http_segment *seg);
	/* Called once when the response ends, completed or not; after it
	 * the connection must not be touched through ctx. */
	void (*done)(void *ctx, bool completed);
};

/*
 * Starts a response whose content_length bytes come from pull. For HEAD,
 * pull is never called. The server calls done in every case.
 */
void http_send_stream(http_conn_t *c, int status, const char *content_type,
		      const char *extra_headers, uint64_t content_length,
		      const struct http_body_ops *ops, void *ctx);

/*
 * An event stream (Server-Sent Events): a chunked body written piece by
 * piece, as long as the handler wants. http_events_write sends one piece
 * (one chunk), http_events_end the last; the connection can be kept
 * after it. ops->pull is never called; ops->done is, once, when the
 * stream ends either way (the client went away, a write timed out, the
 * server closes), and c must not be used after it. A reader more than
 * HTTP_EVENTS_BACKLOG bytes behind is cut off. Loop thread only.
 */
#define HTTP_EVENTS_BACKLOG ((size_t)256 << 10)
void http_send_events(http_conn_t *c, int status, const char *content_type,
		      const char *extra_headers, const struct http_body_ops *ops, void *ctx);
void http_events_write(http_conn_t *c, const void *p, size_t n);
void http_events_end(http_conn_t *c);

/* After HTTP_PULL_WAIT: the body can go on. Loop thread only. */
void http_stream_wake(http_conn_t *c);

/* ---- request bodies taken as they arrive (uploads) ---- */

struct http_sink_ops {
	/* The next n > 0 bytes of the body, on the loop. Returns how many
	 * it took: fewer than n pauses the reading (the rest stays with
	 * the server) until http_body_resume. */
	size_t (*data)(void *ctx, const char *p, size_t n);
	/* Once. complete: every byte of the body was taken; the request is
	 * the sink's to answer, now or later, with one http_send*.
	 * !complete: the connection closed first (the client went away, a
	 * timeout, a shutdown); nothing may be sent, and c is gone once
	 * end returns. */
	void (*end)(void *ctx, bool complete);
};

/*
 * For a request with req->body_streamed, in its handler or later on its
 * loop while it is unanswered: the body goes to ops, from the bytes
 * already read on. The sink may answer before the body's end (an error
 * found mid-body): end is then not called, and the rest of the body is
 * dropped (or, over 1 MiB, the connection closes after the answer). A client that asked for
 * "Expect: 100-continue" is told to send it now. A handler that answers
 * without taking the body closes the connection after its answer, unless
 * the rest of the body is small (<= 1 MiB), which is then read and
 * dropped so the connection can be kept.
 */
void http_take_body(http_conn_t *c, const struct http_sink_ops *ops, void *ctx);
/* After a sink's data took fewer bytes than offered: reading goes on.
 * Loop thread only; a no-op when the connection is not paused. */
void http_body_resume(http_conn_t *c);

/* The connection's loop: where its callbacks run and where other threads
 * post to reach it. */
loop_t *http_conn_loop(http_conn_t *c);
void *http_conn_loop_data(http_conn_t *c);
/* The peer's address as text ("127.0.0.1"). */
const char *http_conn_peer(http_conn_t *c);
/* Whether the request came over TLS (the server has a certificate): for
 * what only HTTPS may carry, such as a cookie's Secure attribute. */
bool http_conn_tls(http_conn_t *c);

const char *http_status_text(int status);

#endif
