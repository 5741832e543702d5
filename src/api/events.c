/*
 * GET /api/v1/zones/{id}/events: Server-Sent Events for a zone's
 * devices (docs/api.md, "In the store").
 *
 * Every change reaches a node as a change of its read model (an edit on
 * this node commits to the same catalog; one on another arrives by the
 * change feed), so each loop watches its own reader rather than being
 * told: every TICK_MS it asks whether the model moved (SQLite's
 * data_version, one call), and only then reads the state of the zones
 * its streams follow, once per zone, and tells each stream what differs
 * from what it last said: "changed" (a new version: ask for the queue),
 * "volume", "skip", or "gone" (the zone deleted or the key revoked; the
 * stream ends). A loop with no stream has no timer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "catalog/model.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICK_MS 200
#define KEEPALIVE_MS 15000
#define TICK_ZONES 256 /* zones read once per tick; more are read per stream */

struct stream {
	struct stream *prev, *next;
	struct api_events *ev;
	http_conn_t *c;
	int64_t zone;
	char version[17];
	int volume;
	int64_t skip_at;
	int64_t written_ms;
	char key[17]; /* a store key's id: its device's state; "" otherwise */
};

struct api_events {
	struct api *api;
	struct api_loop *al;
	loop_t *loop;
	struct loop_timer timer;
	struct stream head; /* list sentinel */
	int64_t data_version;
	int64_t revocations; /* catalog_revocations when the keys were checked */
	int n;
};

/* A zone's state as one tick read it. */
struct zone_state {
	int64_t zone;
	int rc; /* 0, -ENOENT, -EIO */
	char version[17];
	int volume;
	int64_t skip_at;
};

static void send_event(struct stream *s, const char *event, const char *data)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "event: %s\ndata: %s\n\n", event, data);

	http_events_write(s->c, msg, (size_t)n);
	s->written_ms = mono_ms();
}

static void read_state(struct api_events *ev, int64_t zone, struct zone_state *st)
{
	st->zone = zone;
	st->rc = catalog_zone_version(ev->al->zones, zone, st->version);
	if (st->rc == 0)
		st->rc = catalog_zone_live(ev->al->zones, zone, &st->volume, &st->skip_at);
}

static void tell(struct stream *s, const struct zone_state *st)
{
	char data[96];

	if (st->rc == -ENOENT) {
		send_event(s, "gone", "{\"reason\":\"the zone was deleted\"}");
		http_events_end(s->c);
		return;
	}
	if (st->rc < 0)
		return; /* the next change tries again */
	if (strcmp(st->version, s->version) != 0) {
		snprintf(s->version, sizeof(s->version), "%s", st->version);
		snprintf(data, sizeof(data), "{\"version\":\"%s\"}", s->version);
		send_event(s, "changed", data);
	}
	if (st->volume != s->volume) {
		s->volume = st->volume;
		snprintf(data, sizeof(data), "{\"volume\":%d}", s->volume);
		send_event(s, "volume", data);
	}
	if (st->skip_at > s->skip_at) {
		s->skip_at = st->skip_at;
		snprintf(data, sizeof(data), "{\"at\":%lld}", (long long)s->skip_at);
		send_event(s, "skip", data);
	}
}

/* Whether the stream's key still holds (a revocation ends its stream). */
static bool key_holds(struct api_events *ev, const struct stream *s)
{
	struct catalog_key k;

	return !s->key[0] || (catalog_key_find(ev->al->principals, s->key, &k) == 0 && !k.revoked);
}

static void tick(struct loop_timer *t)
{
	struct api_events *ev = t->ud;
	int64_t v = catalog_reader_version(ev->al->reader), now = mono_ms();
	struct zone_state seen[TICK_ZONES];
	int nseen = 0;
	bool keys = false;

	/* The keys are looked up again only after a revocation. */
	if (v != ev->data_version) {
		int64_t r = catalog_revocations(ev->al->zones);

		keys = r != ev->revocations;
		ev->revocations = r;
	}

	for (struct stream *s = ev->head.next, *next; s != &ev->head; s = next) {
		next = s->next; /* an ended stream leaves the list */
		if (atomic_load(&ev->api->stopping)) {
			http_events_end(s->c); /* its device reconnects elsewhere */
			continue;
		}
		if (v != ev->data_version) {
			struct zone_state one, *st = NULL;

			if (keys && !key_holds(ev, s)) {
				send_event(s, "gone", "{\"reason\":\"the key was revoked\"}");
				http_events_end(s->c);
				continue;
			}
			for (int i = 0; i < nseen && !st; i++)
				if (seen[i].zone == s->zone)
					st = &seen[i];
			if (!st) {
				st = nseen < TICK_ZONES ? &seen[nseen++] : &one;
				read_state(ev, s->zone, st);
			}
			tell(s, st);
		}
		if (s->c && now - s->written_ms >= KEEPALIVE_MS) {
			http_events_write(s->c, ": keepalive\n\n", 13);
			s->written_ms = now;
		}
	}
	ev->data_version = v;
	if (ev->n)
		loop_timer_start(ev->loop, &ev->timer, TICK_MS, tick, ev);
}

static void stream_done(void *ctx, bool completed)
{
	struct stream *s = ctx;
	struct api_events *ev = s->ev;

	s->prev->next = s->next;
	s->next->prev = s->prev;
	ev->n--;
	if (ev->n == 0)
		loop_timer_stop(ev->loop, &ev->timer);
	if (s->key[0])
		api_device_disconnect(ev->api, s->key);
	free(s);
}

static enum http_pull no_pull(void *ctx, struct http_segment *seg)
{
	return HTTP_PULL_ERROR;
}

static const struct http_body_ops stream_ops = {no_pull, stream_done};

void api_events_free(struct api_events *ev)
{
	/* The server closed every connection first: no stream is left. */
	free(ev);
}

void api_zone_events(struct api_call *x)
{
	struct api_events *ev = x->al->events;
	struct zone_state st;
	struct stream *s;
	char hello[160], hex[17];

	if (!ev) {
		ev = x->al->events = xcalloc(1, sizeof(*ev));
		ev->api = x->api;
		ev->al = x->al;
		ev->loop = http_conn_loop(x->c);
		ev->head.next = ev->head.prev = &ev->head;
		ev->data_version = catalog_reader_version(x->al->reader);
		ev->revocations = catalog_revocations(x->al->zones);
	}
	read_state(ev, x->id, &st);
	if (st.rc < 0) {
		http_send_error(x->c, st.rc == -ENOENT ? 404 : 500,
				st.rc == -ENOENT ? "no such zone" : "internal error");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->ev = ev;
	s->c = x->c;
	s->zone = x->id;
	snprintf(s->version, sizeof(s->version), "%s", st.version);
	s->volume = st.volume;
	s->skip_at = st.skip_at;
	s->next = &ev->head;
	s->prev = ev->head.prev;
	ev->head.prev->next = s;
	ev->head.prev = s;
	if (ev->n++ == 0)
		loop_timer_start(ev->loop, &ev->timer, TICK_MS, tick, ev);
	http_send_events(x->c, 200, "text/event-stream",
			 "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n", &stream_ops, s);
	if (x->req->method == HTTP_HEAD)
		return; /* done() runs when the head is written */
	/* A device: the node says it is online while its stream is open. */
	if (x->who.role == AUTH_STORE && x->who.id[0] == 'k')
		snprintf(s->key, sizeof(s->key), "%s", x->who.id + 1);
	catalog_id_str(x->id, hex);
	snprintf(hello, sizeof(hello),
		 "retry: 2000\nevent: hello\ndata: {\"zone_id\":\"%s\",\"version\":\"%s\","
		 "\"volume\":%d}\n\n",
		 hex, s->version, s->volume);
	http_events_write(x->c, hello, strlen(hello));
	s->written_ms = mono_ms();
	if (s->key[0])
		api_device_connect(x->api, s->key, x->id);
}
