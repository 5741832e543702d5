#include "metrics/hist.h"

/* The bounds in microseconds: the R10 series, decade after decade. */
static const uint64_t bounds[HIST_BUCKETS - 1] = {
	10,       12,       16,       20,       25,       31,       40,       50,       63,
	80,       100,      125,      160,      200,      250,      315,      400,      500,
	630,      800,      1000,     1250,     1600,     2000,     2500,     3150,     4000,
	5000,     6300,     8000,     10000,    12500,    16000,    20000,    25000,    31500,
	40000,    50000,    63000,    80000,    100000,   125000,   160000,   200000,   250000,
	315000,   400000,   500000,   630000,   800000,   1000000,  1250000,  1600000,  2000000,
	2500000,  3150000,  4000000,  5000000,  6300000,  8000000,  10000000, 12500000, 16000000,
	20000000, 25000000, 31500000, 40000000, 50000000, 63000000, 80000000,
};

uint64_t hist_bound_us(int i)
{
	return i >= 0 && i < HIST_BUCKETS - 1 ? bounds[i] : UINT64_MAX;
}

/* The bucket of us: the first whose bound is >= us (a binary search of
 * 70: seven comparisons). */
static int bucket(uint64_t us)
{
	int lo = 0, hi = HIST_BUCKETS - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (us <= bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void hist_add(struct hist *h, uint64_t us)
{
	_Atomic uint64_t *n = &h->n[bucket(us)];

	/* Single writer: a load and a store, no locked instruction. */
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->sum_us,
			      atomic_load_explicit(&h->sum_us, memory_order_relaxed) + us,
			      memory_order_relaxed);
}

void hist_read(const struct hist *h, struct hist_snap *out)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		out->n[i] += atomic_load_explicit(&h->n[i], memory_order_relaxed);
	out->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

void hist_diff(const struct hist_snap *a, const struct hist_snap *b, struct hist_snap *out)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		out->n[i] = a->n[i] >= b->n[i] ? a->n[i] - b->n[i] : 0;
	out->sum_us = a->sum_us >= b->sum_us ? a->sum_us - b->sum_us : 0;
}

uint64_t hist_count(const struct hist_snap *s)
{
	uint64_t t = 0;

	for (int i = 0; i < HIST_BUCKETS; i++)
		t += s->n[i];
	return t;
}

double hist_quantile_ms(const struct hist_snap *s, double q)
{
	uint64_t total = hist_count(s), seen = 0, rank;

	if (total == 0)
		return -1;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (int i = 0; i < HIST_BUCKETS - 1; i++) {
		seen += s->n[i];
		if (seen > rank)
			return (double)hist_bound_us(i) / 1000.0;
	}
	return (double)hist_bound_us(HIST_BUCKETS - 2) / 1000.0;
}

uint64_t hist_count_le(const struct hist_snap *s, uint64_t bound_us)
{
	uint64_t t = 0;

	for (int i = 0; i < HIST_BUCKETS - 1 && hist_bound_us(i) <= bound_us; i++)
		t += s->n[i];
	return t;
}
