#ifndef CHORUS_METRICS_SERIES_H
#define CHORUS_METRICS_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/hist.h"

/*
 * The node's last hour, second by second, for the console's charts: a
 * thread reads the node's cumulative figures once a second (a
 * series_sample_fn) and keeps the differences in a ring of SERIES_MAX
 * points. Each node keeps its own; the console asks each node for its
 * ring, so there is no central collector. Nothing here runs on the
 * serving path: the figures it reads are counters the loops keep anyway.
 */
#define SERIES_MAX 3600

/* Cumulative figures since start. */
struct series_sample {
	uint64_t requests, bytes_out, errors_4xx, errors_5xx;
	uint64_t cache_hits, cache_misses;
	struct hist_snap latency; /* requests other than streams */
	struct hist_snap ttfb;    /* streams: request to first byte */
};

/* Fills out (zeroed by the caller) with the figures now; on the series
 * thread. */
typedef void (*series_sample_fn)(void *ud, struct series_sample *out);

/* One second. A percentile is -1 in a second without such requests. */
struct series_point {
	int64_t t; /* Unix time of the second's end */
	uint32_t requests, errors_4xx, errors_5xx, cache_hits, cache_misses;
	uint64_t bytes_out;
	double latency_ms[3], ttfb_ms[3]; /* p50, p95, p99 */
};

typedef struct series series_t;

/* Starts the thread; NULL when it cannot start (the node serves without
 * charts, and says so in the log). */
series_t *series_start(series_sample_fn fn, void *ud);
void series_stop(series_t *s);

/* The points after Unix time since, oldest first, into out (at most
 * SERIES_MAX); returns how many. Any thread. */
size_t series_read(series_t *s, int64_t since, struct series_point *out);

/* Requests and bytes out per second, the mean of the last n seconds
 * (fewer when the ring holds fewer). Any thread. */
void series_rates(series_t *s, int n, double *requests_per_s, double *bytes_per_s);

/* The point for the difference of two samples, b taken a second after a
 * (pure: the thread's step, and the unit tests'). */
void series_point_of(const struct series_sample *a, const struct series_sample *b, int64_t t,
		     struct series_point *out);

#endif
