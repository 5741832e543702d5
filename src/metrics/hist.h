#ifndef CHORUS_METRICS_HIST_H
#define CHORUS_METRICS_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A latency histogram of fixed log-scale buckets: ten a decade (the R10
 * series 1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8) from 10 µs to 80 s,
 * and one beyond. Fine enough for a percentile within one step (about
 * 25%), and every Prometheus bucket chorus exports (0.0001 s ... 50 s in
 * 1-2.5-5 steps) is one of its bounds, so the exported counts are exact.
 *
 * One writer: each event loop owns its histograms (no lock, no atomic
 * read-modify-write on the hot path); readers on other threads load the
 * counts with relaxed atomics and sum the loops' copies. A reader may see
 * a count a moment before the sum that goes with it; both only grow.
 */
#define HIST_BUCKETS 71 /* 70 bounds, then the overflow */

struct hist {
	_Atomic uint64_t n[HIST_BUCKETS];
	_Atomic uint64_t sum_us;
};

/* A plain copy, summed or subtracted at leisure. */
struct hist_snap {
	uint64_t n[HIST_BUCKETS];
	uint64_t sum_us;
};

/* The upper bound of bucket i in microseconds; UINT64_MAX for the last. */
uint64_t hist_bound_us(int i);

/* Records one observation; the owning thread only. */
void hist_add(struct hist *h, uint64_t us);

/* Adds h's counts into out (a reader, any thread). */
void hist_read(const struct hist *h, struct hist_snap *out);

/* out = a - b, bucket by bucket (a taken after b). */
void hist_diff(const struct hist_snap *a, const struct hist_snap *b, struct hist_snap *out);

/* Observations in s. */
uint64_t hist_count(const struct hist_snap *s);

/* The q-quantile (0 < q < 1) in milliseconds, as the upper bound of the
 * bucket it falls in; -1 when s is empty. */
double hist_quantile_ms(const struct hist_snap *s, double q);

/* Observations up to and including bound_us, which must be a bound. */
uint64_t hist_count_le(const struct hist_snap *s, uint64_t bound_us);

#endif
