#ifndef CHORUS_METRICS_PROM_H
#define CHORUS_METRICS_PROM_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics/hist.h"
#include "util/buf.h"

/*
 * The Prometheus text exposition format, version 0.0.4: a family's HELP
 * and TYPE lines, then its samples. Labels are passed preformatted
 * (`route="stream",code="2xx"`) from constants chorus chooses, never from
 * what a client sent, so they need no escaping. A write that does not fit
 * the buffer marks the writer failed; the caller answers 500.
 */
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct prom {
	buf_t *b;
	bool failed;
} prom_t;

void prom_family(prom_t *p, const char *name, const char *type, const char *help);
/* name{labels} value; labels NULL or "" for none. */
void prom_u64(prom_t *p, const char *name, const char *labels, uint64_t v);
void prom_f64(prom_t *p, const char *name, const char *labels, double v);
/* name_bucket{labels,le=...} for the exported bounds, name_sum (seconds)
 * and name_count. */
void prom_hist(prom_t *p, const char *name, const char *labels, const struct hist_snap *h);

#endif
