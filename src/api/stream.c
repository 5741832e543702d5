/*
 * Streams: a track's bytes, whole or in one range, chunk after chunk from
 * the cache, each chunk's file going to the socket with sendfile.
 *
 * The first chunk is fetched before the head is sent, so a chunk that
 * cannot be had (origin down, copy that fails verification) is a clean
 * 503 rather than a cut response. After that, a chunk that is not cached
 * yet pauses the body (HTTP_PULL_WAIT) until its fill completes, and the
 * chunks after the current one are prefetched so they usually are.
 *
 * Fills complete on cache threads; their result is posted to the
 * connection's loop. A connection can die while a fill is pending: the
 * fill's result then finds no connection (http/later.h) and frees the
 * context.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "http/later.h"
#include "http/range.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

struct stream {
	struct api *api;
	struct api_loop *al;
	struct cache_file *cur; /* the current chunk's, shared in al->files */
	http_conn_t *conn;
	loop_t *loop;
	struct catalog_stream info;
	struct manifest m;
	uint64_t pos, end; /* the bytes still to send: [pos, end) */
	int fd;            /* the current chunk's file, or -1 */
	uint32_t fd_index;
	uint32_t want_index; /* the chunk a pending fill brings */
	int ready_fd;        /* result of the pending fill */
	bool waiting;        /* a fill's callback is due */
	http_later_t *later; /* while waiting: whether the connection lives */
	bool started;        /* the head was sent */
	int error;           /* a fill failed after the head: the body cannot go on */
	int status;
	char headers[512];
	struct api_live_stream live; /* linked while a body is sent */
};

static const struct http_body_ops stream_ops;

static void set_cur(struct stream *s, struct cache_file *f, uint32_t index)
{
	if (s->cur)
		cache_file_release(s->al->files, s->cur);
	s->cur = f;
	s->fd = f->fd;
	s->fd_index = index;
}

static void stream_free(struct stream *s)
{
	api_live_remove(s->api, &s->live);
	if (s->cur)
		cache_file_release(s->al->files, s->cur);
	free(s);
}

static void chunk_ref(const struct stream *s, uint32_t index, struct chunk_ref *ref)
{
	memcpy(ref->blob, s->info.blob, sizeof(ref->blob));
	ref->index = index;
	ref->len = manifest_chunk_len(&s->m, index);
	memcpy(ref->key, s->info.key, SEAL_KEY_LEN);
	ref->no_peers = false;
}

static void prefetch_after(struct stream *s, uint32_t index)
{
	uint32_t last = manifest_chunk_at(&s->m, s->end - 1);

	for (int i = 1; i <= s->api->prefetch && index + (uint32_t)i <= last; i++) {
		struct chunk_ref ref;
		chunk_ref(s, index + (uint32_t)i, &ref);
		cache_prefetch(s->api->cache, &ref);
	}
}

static void start_response(struct stream *s)
{
	s->started = true;
	http_send_stream(s->conn, s->status, s->info.mime_type, s->headers, s->end - s->pos,
			 &stream_ops, s);
}

/* The error JSON of http_send_error, plus Retry-After: an origin that is
 * down or refusing us is usually back soon, and players may try again. */
static void fail_response(struct stream *s, int err)
{
	char msg[128];
	buf_t b;
	json_t j;

	snprintf(msg, sizeof(msg), "audio not available now: %s", strerror(-err));
	log_warn("stream %s chunk %u: %s", s->info.blob, s->want_index, strerror(-err));
	buf_init(&b, 1024);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_obj_begin(&j);
	json_kint(&j, "status", 503);
	json_kstr(&j, "message", msg);
	json_obj_end(&j);
	json_obj_end(&j);
	if (json_failed(&j) || buf_append(&b, "\n", 1) < 0)
		buf_reset(&b); /* a 1 KiB cap and a short message: not reached */
	http_send(s->conn, 503, "application/json; charset=utf-8",
		  "Retry-After: 5\r\nCache-Control: no-store\r\n", b.data, b.len);
	buf_free(&b);
	stream_free(s);
}

/* On the loop, after a fill this stream waited for completed. */
static void fill_done(void *arg)
{
	struct stream *s = arg;
	int fd = s->ready_fd;
	http_conn_t *c = http_later_end(s->later);

	s->later = NULL;
	s->waiting = false;
	if (!c) {
		if (fd >= 0)
			close(fd);
		stream_free(s);
		return;
	}
	if (fd >= 0) {
		set_cur(s, cache_file_adopt(s->al->files, s->info.blob, s->want_index, fd),
			s->want_index);
		prefetch_after(s, s->fd_index);
	}
	if (!s->started) {
		if (fd < 0)
			fail_response(s, fd);
		else
			start_response(s);
		return;
	}
	if (fd < 0) {
		log_warn("stream %s chunk %u: %s; closing", s->info.blob, s->want_index,
			 strerror(-fd));
		s->error = fd;
	}
	/* After an error the next pull fails and the connection closes. */
	http_stream_wake(s->conn);
}

/* On a cache thread. */
static void fill_ready(void *arg, int fd)
{
	struct stream *s = arg;

	s->ready_fd = fd;
	loop_post(s->loop, fill_done, s);
}

/* Makes the chunk holding s->pos current: 1 when it is, 0 when a fill was
 * started (the callback follows), -errno on error. */
static int need_chunk(struct stream *s)
{
	uint32_t index = manifest_chunk_at(&s->m, s->pos);
	struct chunk_ref ref;
	struct cache_file *f;
	int rc;

	if (s->cur && s->fd_index == index)
		return 1;
	if (s->waiting)
		return 0;
	chunk_ref(s, index, &ref);
	s->want_index = index;
	/* Shared with the loop's other streams of the chunk when one has it. */
	rc = cache_file_open(s->al->files, &ref, fill_ready, s, &f);
	if (rc == 0) {
		set_cur(s, f, index);
		prefetch_after(s, index);
		return 1;
	}
	if (rc == -EINPROGRESS) {
		/* fill_done comes through the loop, after this returns. */
		s->waiting = true;
		s->later = http_later(s->conn);
		return 0;
	}
	return rc;
}

static enum http_pull stream_pull(void *ctx, struct http_segment *seg)
{
	struct stream *s = ctx;
	uint64_t chunk_start, chunk_end;
	int rc = s->error ? s->error : need_chunk(s);

	if (rc == 0)
		return HTTP_PULL_WAIT;
	if (rc < 0) {
		log_warn("stream %s: %s; closing", s->info.blob, strerror(-rc));
		return HTTP_PULL_ERROR;
	}
	chunk_start = manifest_chunk_offset(&s->m, s->fd_index);
	chunk_end = chunk_start + manifest_chunk_len(&s->m, s->fd_index);
	seg->fd = s->fd;
	seg->offset = s->pos - chunk_start;
	seg->len = (chunk_end < s->end ? chunk_end : s->end) - s->pos;
	/* The server sends all of it or closes the connection. */
	s->pos += seg->len;
	return HTTP_PULL_READY;
}

static void stream_done(void *ctx, bool completed)
{
	struct stream *s = ctx;

	if (s->waiting)
		return; /* fill_done finds no connection and frees s */
	stream_free(s);
}

static const struct http_body_ops stream_ops = {
	.pull = stream_pull,
	.done = stream_done,
};

/* Strong comparison of an If-Range value with our ETag. A date never
 * matches: chorus sends no Last-Modified. */
static bool if_range_matches(const struct http_str *v, const char *etag)
{
	size_t n = strlen(etag);

	return v->len == n && memcmp(v->p, etag, n) == 0;
}

void api_stream(struct api *api, http_conn_t *c, const struct http_request *req, int64_t id,
		const struct principal *who)
{
	struct api_loop *al = http_conn_loop_data(c);
	const struct http_str *range, *if_range;
	struct range_set rs;
	enum range_result rr = RANGE_NONE;
	char etag[70];
	struct stream *s;
	int st, rc;

	s = xcalloc(1, sizeof(*s));
	s->fd = -1;
	s->ready_fd = -1;
	if (atomic_load_explicit(&api->drained, memory_order_relaxed)) {
		/* A drained node finishes its streams and starts none: the
		 * player moves to another node. */
		static const char body[] = "{\"error\":{\"status\":503,\"message\":"
					   "\"this node is drained; use another\"}}\n";
		free(s);
		http_send(c, 503, "application/json; charset=utf-8", "Retry-After: 5\r\n", body,
			  sizeof(body) - 1);
		return;
	}
	st = catalog_stream_info(al->reader, id, &s->info);
	if (st != 200) {
		free(s);
		http_send_error(c, st, st == 404 ? "no such track" : "catalog error");
		return;
	}
	s->api = api;
	s->al = al;
	s->conn = c;
	s->loop = http_conn_loop(c);
	catalog_stream_manifest(&s->info, &s->m);
	snprintf(etag, sizeof(etag), "\"%s\"", s->info.content_hash);

	range = http_header_get(req, "Range");
	if_range = http_header_get(req, "If-Range");
	if (range && !(if_range && !if_range_matches(if_range, etag)))
		rr = range_parse(range->p, range->len, s->info.size, &rs);
	s->pos = 0;
	s->end = s->info.size;
	s->status = 200;
	if (rr == RANGE_UNSATISFIABLE) {
		static const char body[] =
			"{\"error\":{\"status\":416,\"message\":\"range not satisfiable\"}}\n";
		char hdr[160];
		snprintf(hdr, sizeof(hdr), "Content-Range: bytes */%" PRIu64 "\r\nETag: %s\r\n",
			 s->info.size, etag);
		free(s);
		/* The error body is JSON, as for every error. */
		http_send(c, 416, "application/json; charset=utf-8", hdr, body, sizeof(body) - 1);
		return;
	}
	if (rr == RANGE_SINGLE) {
		s->pos = rs.r[0].first;
		s->end = rs.r[0].last + 1;
		s->status = 206;
	}
	/* RANGE_MULTI is answered with the whole file, as RFC 9110 allows. */
	rc = snprintf(
		s->headers, sizeof(s->headers),
		"Accept-Ranges: bytes\r\nETag: %s\r\nCache-Control: private, max-age=86400\r\n",
		etag);
	if (s->status == 206)
		snprintf(s->headers + rc, sizeof(s->headers) - (size_t)rc,
			 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", s->pos,
			 s->end - 1, s->info.size);

	if (req->method == HTTP_HEAD || s->end == s->pos) {
		start_response(s); /* nothing to pull: done() frees s */
		return;
	}
	s->live.track_id = id;
	s->live.started = (int64_t)time(NULL);
	snprintf(s->live.who, sizeof(s->live.who), "%s", who->actor);
	/* A store key is bound by ids: the console shows the names. */
	if (who->role == AUTH_STORE) {
		api_place_name(al, who->location, false, s->live.location,
			       sizeof(s->live.location));
		if (who->zone[0])
			api_place_name(al, who->zone, true, s->live.zone, sizeof(s->live.zone));
	}
	api_live_add(api, &s->live);
	rc = need_chunk(s);
	if (rc == 1) {
		start_response(s);
	} else if (rc == 0) {
		/* fill_done answers, through the later need_chunk took */
	} else {
		fail_response(s, rc);
	}
}
