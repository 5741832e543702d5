/* metrics/: the histogram's buckets and quantiles, a series point from two
 * samples, the Prometheus writer (promtool checks the whole /metrics in
 * tests/system/test_metrics.py), the log's ring of warnings. */
#include <stdlib.h>
#include <time.h>

#include "metrics/hist.h"
#include "metrics/prom.h"
#include "metrics/series.h"
#include "util/clock.h"
#include "util/log.h"
#include "unit.h"

static struct hist h; /* static: zeroed, and large */

static void test_bounds(void)
{
	/* Ten a decade from 10 µs, increasing; the exported ones among them. */
	CHECK(hist_bound_us(0) == 10);
	CHECK(hist_bound_us(10) == 100);
	CHECK(hist_bound_us(14) == 250);
	CHECK(hist_bound_us(69) == 80000000);
	CHECK(hist_bound_us(70) == UINT64_MAX);
	for (int i = 1; i < HIST_BUCKETS - 1; i++)
		CHECK(hist_bound_us(i) > hist_bound_us(i - 1));
}

static void test_add_and_quantiles(void)
{
	struct hist_snap s = {0}, empty = {0}, d;

	memset(&h, 0, sizeof(h));
	CHECK(hist_quantile_ms(&empty, 0.5) < 0);
	/* 90 fast (1 ms), 10 slow (1 s). */
	for (int i = 0; i < 90; i++)
		hist_add(&h, 1000);
	for (int i = 0; i < 10; i++)
		hist_add(&h, 1000000);
	hist_read(&h, &s);
	CHECK(hist_count(&s) == 100);
	CHECK(s.sum_us == 90 * 1000 + 10 * 1000000);
	CHECK(hist_quantile_ms(&s, 0.5) == 1.0);
	CHECK(hist_quantile_ms(&s, 0.95) == 1000.0);
	/* A value between bounds counts in the bucket above it. */
	CHECK(hist_count_le(&s, 1000) == 90);
	CHECK(hist_count_le(&s, 800) == 0);
	CHECK(hist_count_le(&s, 1000000) == 100);
	/* Past the last bound: the overflow, counted only by the total. */
	hist_add(&h, 500000000);
	memset(&d, 0, sizeof(d));
	hist_read(&h, &d);
	CHECK(hist_count(&d) == 101);
	CHECK(hist_count_le(&d, 50000000) == 100);
	hist_diff(&d, &s, &d);
	CHECK(hist_count(&d) == 1);
	CHECK(d.n[HIST_BUCKETS - 1] == 1);
	/* 0 µs is the first bucket's. */
	memset(&h, 0, sizeof(h));
	hist_add(&h, 0);
	memset(&d, 0, sizeof(d));
	hist_read(&h, &d);
	CHECK(d.n[0] == 1);
}

static void test_series_point(void)
{
	struct series_sample *a = calloc(2, sizeof(*a)), *b = a + 1;
	struct series_point p;

	a->requests = 100;
	a->bytes_out = 1000;
	a->errors_4xx = 3;
	b->requests = 150;
	b->bytes_out = 5000;
	b->errors_4xx = 4;
	b->errors_5xx = 2;
	b->cache_hits = 7;
	b->ttfb.n[20] = 5; /* 1 ms */
	series_point_of(a, b, 1234, &p);
	CHECK(p.t == 1234);
	CHECK(p.requests == 50);
	CHECK(p.bytes_out == 4000);
	CHECK(p.errors_4xx == 1);
	CHECK(p.errors_5xx == 2);
	CHECK(p.cache_hits == 7);
	CHECK(p.latency_ms[0] < 0); /* no requests of that kind: no percentile */
	CHECK(p.ttfb_ms[0] == 1.0 && p.ttfb_ms[2] == 1.0);
	/* Counters never run backwards into a huge difference. */
	series_point_of(b, a, 1235, &p);
	CHECK(p.requests == 0 && p.bytes_out == 0);
	free(a);
}

static uint64_t counter;

static void sample(void *ud, struct series_sample *out)
{
	(void)ud;
	counter += 10;
	out->requests = counter;
	out->bytes_out = counter * 100;
}

static void test_series_ring(void)
{
	struct series_point *p = calloc(SERIES_MAX, sizeof(*p));
	series_t *s = series_start(sample, NULL);
	double r = 0, bps = 0;
	size_t n = 0;

	CHECK(s != NULL);
	for (int i = 0; i < 40 && (n = series_read(s, 0, p)) < 2; i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	CHECK(n >= 2);
	CHECK(p[0].requests == 10 && p[0].bytes_out == 1000);
	CHECK(p[1].t >= p[0].t);
	series_rates(s, 10, &r, &bps);
	CHECK(r == 10.0 && bps == 1000.0);
	/* since: only the points after it. */
	{
		int64_t t0 = p[0].t;
		size_t m = series_read(s, t0, p);
		for (size_t i = 0; i < m; i++)
			CHECK(p[i].t > t0);
		CHECK(series_read(s, INT64_MAX, p) == 0);
	}
	series_stop(s);
	free(p);
}

static void test_prom(void)
{
	buf_t b;
	prom_t p;
	struct hist_snap s = {0};

	buf_init(&b, 1 << 16);
	p = (prom_t){&b, false};
	prom_family(&p, "chorus_x_total", "counter", "Things.");
	prom_u64(&p, "chorus_x_total", "route=\"a\"", 7);
	prom_f64(&p, "chorus_y", NULL, 0.5);
	s.n[20] = 2; /* 1 ms */
	s.sum_us = 2000;
	prom_hist(&p, "chorus_z_seconds", "route=\"a\"", &s);
	CHECK(!p.failed);
	CHECK(buf_append(&b, "", 1) == 0);
	CHECK(strstr(b.data, "# TYPE chorus_x_total counter\n") != NULL);
	CHECK(strstr(b.data, "chorus_x_total{route=\"a\"} 7\n") != NULL);
	CHECK(strstr(b.data, "chorus_y 0.5\n") != NULL);
	CHECK(strstr(b.data, "chorus_z_seconds_bucket{route=\"a\",le=\"0.0005\"} 0\n") != NULL);
	CHECK(strstr(b.data, "chorus_z_seconds_bucket{route=\"a\",le=\"0.001\"} 2\n") != NULL);
	CHECK(strstr(b.data, "chorus_z_seconds_bucket{route=\"a\",le=\"+Inf\"} 2\n") != NULL);
	CHECK(strstr(b.data, "chorus_z_seconds_sum{route=\"a\"} 0.002000\n") != NULL);
	CHECK(strstr(b.data, "chorus_z_seconds_count{route=\"a\"} 2\n") != NULL);
	buf_free(&b);
	/* Past its cap the writer says so. */
	buf_init(&b, 16);
	p = (prom_t){&b, false};
	prom_family(&p, "chorus_a_long_name_total", "counter", "A help text longer than 16.");
	CHECK(p.failed);
	buf_free(&b);
}

static void test_log_ring(void)
{
	struct log_entry *e = calloc(LOG_RECENT_MAX, sizeof(*e));
	uint64_t before[2], after[2];
	size_t n;

	log_counts(before);
	log_info("not kept");
	log_warn("unit: warned %d", 1);
	log_error("unit: failed %d", 2);
	log_counts(after);
	CHECK(after[0] == before[0] + 1 && after[1] == before[1] + 1);
	n = log_recent(0, e, LOG_RECENT_MAX);
	CHECK(n >= 2);
	CHECK_STR(e[n - 2].message, "unit: warned 1");
	CHECK(e[n - 2].level == LOG_WARN);
	CHECK_STR(e[n - 1].message, "unit: failed 2");
	CHECK(e[n - 1].seq == e[n - 2].seq + 1);
	CHECK(log_recent(e[n - 1].seq, e, LOG_RECENT_MAX) == 0);
	/* One line each: a library's trailing newline dropped, inner ones
	 * and tabs made spaces. */
	log_warn("unit: two\n\tlines\n");
	n = log_recent(0, e, LOG_RECENT_MAX);
	CHECK_STR(e[n - 1].message, "unit: two  lines");
	/* The ring keeps the newest LOG_RECENT_MAX. */
	for (int i = 0; i < LOG_RECENT_MAX + 5; i++)
		log_warn("unit: many %d", i);
	n = log_recent(0, e, LOG_RECENT_MAX);
	CHECK(n == LOG_RECENT_MAX);
	CHECK_STR(e[n - 1].message, "unit: many 1004");
	CHECK_STR(e[0].message, "unit: many 5");
	free(e);
}

static void test_clock_utc(void)
{
	char out[CLOCK_UTC_LEN];

	clock_utc(0, out);
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	clock_utc(1796643862, out);
	CHECK_STR(out, "2026-12-07T11:44:22Z");
	clock_utc_ms(1796643862123, out);
	CHECK_STR(out, "2026-12-07T11:44:22.123Z");
	clock_utc_ms(-1, out); /* before the epoch: the second before it */
	CHECK_STR(out, "1969-12-31T23:59:59.999Z");
}

int main(void)
{
	TEST_RUN(test_clock_utc);
	TEST_RUN(test_bounds);
	TEST_RUN(test_add_and_quantiles);
	TEST_RUN(test_series_point);
	TEST_RUN(test_series_ring);
	TEST_RUN(test_prom);
	TEST_RUN(test_log_ring);
	TEST_EXIT();
}
