#ifndef CHORUS_HTTP_LATER_H
#define CHORUS_HTTP_LATER_H

#include "http/server.h"

/*
 * An answer that comes later: a handler hands its request to another
 * thread (a cache fill, the plays writer, the worker pool) and answers
 * when the result is back on the connection's loop, if the connection is
 * still there to answer.
 *
 *   h = http_later(c);              in the handler (or a body's pull)
 *   ... another thread ...
 *   http_later_post(h, fn, ctx);    any thread: fn(ctx, c) on c's loop
 * or, once back on the loop by other means (a pool job's done):
 *   c = http_later_end(h);
 *
 * c is the connection to answer, or NULL when it closed (or its response
 * ended) meanwhile. Either way the handler's context is freed by that one
 * callback, so it is freed exactly once whatever came first: the answer
 * or the close. The handle itself is freed by the call that ends it.
 *
 * A later in a handler defers the connection: the server waits for an
 * http_send* call, with no timeout (handlers are not timed out). A later
 * taken while a pulled body waits (HTTP_PULL_WAIT) only tracks whether
 * the connection lives; the body's own ops->done still runs on a close.
 * At most one later per connection at a time.
 */
typedef struct http_later http_later_t;

/* c's answer comes later. c's loop thread. */
http_later_t *http_later(http_conn_t *c);

/* Ends h on its loop's thread: the connection to answer now, or NULL.
 * h is freed. */
http_conn_t *http_later_end(http_later_t *h);

/* fn(ctx, c) with c as http_later_end gives it. */
typedef void (*http_later_fn)(void *ctx, http_conn_t *c);

/* Ends h from any thread: fn(ctx, c) runs on the connection's loop (or,
 * if that loop has stopped, in loop_free, with c NULL). The caller must
 * not touch h after this. */
void http_later_post(http_later_t *h, http_later_fn fn, void *ctx);

/* ---- between later.c and server.c; nothing else calls these ---- */

/* The connection's response ended or it closed: h sees NULL from now. */
void http__later_orphan(http_later_t *h);
/* Links h to c, or unlinks with NULL: c orphans it when its response ends. */
void http__conn_set_later(http_conn_t *c, http_later_t *h);

#endif
