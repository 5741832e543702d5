/*
 * Later answers (later.h has the contract).
 *
 * The handle is the one place that knows whether the connection it was
 * taken for is still there: server.c orphans it (conn = NULL) when that
 * response ends or the connection closes, and the handle, not the
 * handler, is what the other thread holds. So the handler's context has
 * a single owner at every moment (the other thread, then the callback)
 * and a single free, with no flag shared between the loop and the
 * connection's ops->done.
 *
 * Threads: conn is written and read only on the loop's thread (the
 * orphaning, the ending); the thread that posts writes fn and ctx, which
 * the loop reads after loop_post's lock. loop is set before the handle
 * leaves the loop thread and never changes.
 */
#include "http/later.h"

#include <stdlib.h>

#include "util/xalloc.h"

struct http_later {
	http_conn_t *conn; /* NULL once orphaned */
	loop_t *loop;
	http_later_fn fn;
	void *ctx;
};

http_later_t *http_later(http_conn_t *c)
{
	struct http_later *h = xcalloc(1, sizeof(*h));

	h->conn = c;
	h->loop = http_conn_loop(c);
	http__conn_set_later(c, h);
	return h;
}

http_conn_t *http_later_end(http_later_t *h)
{
	http_conn_t *c = h->conn;

	if (c)
		http__conn_set_later(c, NULL);
	free(h);
	return c;
}

static void landed(void *arg)
{
	struct http_later *h = arg;
	http_later_fn fn = h->fn;
	void *ctx = h->ctx;

	fn(ctx, http_later_end(h));
}

void http_later_post(http_later_t *h, http_later_fn fn, void *ctx)
{
	h->fn = fn;
	h->ctx = ctx;
	loop_post(h->loop, landed, h);
}

void http__later_orphan(http_later_t *h)
{
	h->conn = NULL;
}
