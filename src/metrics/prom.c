#include "metrics/prom.h"

#include <math.h>
#include <stdio.h>

/* The exported bounds in microseconds (1-2.5-5 steps, each a bound of
 * metrics/hist.h) and as Prometheus writes them. */
static const struct {
	uint64_t us;
	const char *le;
} les[] = {
	{100, "0.0001"},  {250, "0.00025"}, {500, "0.0005"},  {1000, "0.001"},  {2500, "0.0025"},
	{5000, "0.005"},  {10000, "0.01"},  {25000, "0.025"}, {50000, "0.05"},  {100000, "0.1"},
	{250000, "0.25"}, {500000, "0.5"},  {1000000, "1"},   {2500000, "2.5"}, {5000000, "5"},
	{10000000, "10"}, {25000000, "25"}, {50000000, "50"},
};

static void out(prom_t *p, int rc)
{
	if (rc < 0)
		p->failed = true;
}

void prom_family(prom_t *p, const char *name, const char *type, const char *help)
{
	out(p, buf_printf(p->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type));
}

static const char *open_brace(const char *labels)
{
	return labels && *labels ? "{" : "";
}

static const char *close_brace(const char *labels)
{
	return labels && *labels ? "}" : "";
}

void prom_u64(prom_t *p, const char *name, const char *labels, uint64_t v)
{
	out(p, buf_printf(p->b, "%s%s%s%s %llu\n", name, open_brace(labels), labels ? labels : "",
			  close_brace(labels), (unsigned long long)v));
}

void prom_f64(prom_t *p, const char *name, const char *labels, double v)
{
	if (isnan(v))
		out(p, buf_printf(p->b, "%s%s%s%s NaN\n", name, open_brace(labels),
				  labels ? labels : "", close_brace(labels)));
	else
		out(p, buf_printf(p->b, "%s%s%s%s %.17g\n", name, open_brace(labels),
				  labels ? labels : "", close_brace(labels), v));
}

void prom_hist(prom_t *p, const char *name, const char *labels, const struct hist_snap *h)
{
	const char *sep = labels && *labels ? "," : "";
	const char *l = labels ? labels : "";
	uint64_t total = hist_count(h);

	for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++)
		out(p, buf_printf(p->b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, l, sep, les[i].le,
				  (unsigned long long)hist_count_le(h, les[i].us)));
	out(p, buf_printf(p->b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l, sep,
			  (unsigned long long)total));
	out(p, buf_printf(p->b, "%s_sum%s%s%s %.6f\n", name, open_brace(labels), l,
			  close_brace(labels), (double)h->sum_us / 1e6));
	out(p, buf_printf(p->b, "%s_count%s%s%s %llu\n", name, open_brace(labels), l,
			  close_brace(labels), (unsigned long long)total));
}
