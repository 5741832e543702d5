#include "metrics/series.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

struct series {
	series_sample_fn fn;
	void *ud;
	pthread_t thread;
	pthread_mutex_t lock; /* guards ring, n, head */
	pthread_cond_t wake;
	bool stop;
	struct series_point ring[SERIES_MAX];
	size_t n, head; /* points held; where the next goes */
};

static uint32_t u32(uint64_t a, uint64_t b)
{
	uint64_t d = b >= a ? b - a : 0;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

void series_point_of(const struct series_sample *a, const struct series_sample *b, int64_t t,
		     struct series_point *out)
{
	static const double q[3] = {0.50, 0.95, 0.99};
	struct hist_snap lat, ttfb;

	memset(out, 0, sizeof(*out));
	out->t = t;
	out->requests = u32(a->requests, b->requests);
	out->errors_4xx = u32(a->errors_4xx, b->errors_4xx);
	out->errors_5xx = u32(a->errors_5xx, b->errors_5xx);
	out->cache_hits = u32(a->cache_hits, b->cache_hits);
	out->cache_misses = u32(a->cache_misses, b->cache_misses);
	out->bytes_out = b->bytes_out >= a->bytes_out ? b->bytes_out - a->bytes_out : 0;
	hist_diff(&b->latency, &a->latency, &lat);
	hist_diff(&b->ttfb, &a->ttfb, &ttfb);
	for (int i = 0; i < 3; i++) {
		out->latency_ms[i] = hist_quantile_ms(&lat, q[i]);
		out->ttfb_ms[i] = hist_quantile_ms(&ttfb, q[i]);
	}
}

static void *run(void *arg)
{
	series_t *s = arg;
	struct series_sample *prev = xcalloc(2, sizeof(*prev)), *cur = prev + 1;
	struct timespec at;

	s->fn(s->ud, prev);
	clock_gettime(CLOCK_MONOTONIC, &at);
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct series_point p;
		struct series_sample *t;
		at.tv_sec++;
		while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &at) != ETIMEDOUT)
			;
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		memset(cur, 0, sizeof(*cur));
		s->fn(s->ud, cur);
		series_point_of(prev, cur, wall_ms() / 1000, &p);
		t = prev;
		prev = cur;
		cur = t;
		pthread_mutex_lock(&s->lock);
		s->ring[s->head] = p;
		s->head = (s->head + 1) % SERIES_MAX;
		if (s->n < SERIES_MAX)
			s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	free(prev < cur ? prev : cur);
	return NULL;
}

series_t *series_start(series_sample_fn fn, void *ud)
{
	series_t *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;

	s->fn = fn;
	s->ud = ud;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (thread_start(&s->thread, run, s) != 0) {
		log_warn("series: cannot start its thread: the console will have no charts");
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}

void series_stop(series_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t series_read(series_t *s, int64_t since, struct series_point *out)
{
	size_t n = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct series_point *p =
			&s->ring[(s->head + SERIES_MAX - s->n + i) % SERIES_MAX];
		if (p->t > since)
			out[n++] = *p;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

void series_rates(series_t *s, int n, double *requests_per_s, double *bytes_per_s)
{
	double r = 0, b = 0;
	int k = 0;

	*requests_per_s = *bytes_per_s = 0;
	if (!s || n <= 0)
		return;
	pthread_mutex_lock(&s->lock);
	for (; k < n && (size_t)k < s->n; k++) {
		const struct series_point *p =
			&s->ring[(s->head + SERIES_MAX - 1 - (size_t)k) % SERIES_MAX];
		r += p->requests;
		b += (double)p->bytes_out;
	}
	pthread_mutex_unlock(&s->lock);
	if (k) {
		*requests_per_s = r / k;
		*bytes_per_s = b / k;
	}
}
