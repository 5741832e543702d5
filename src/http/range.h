#ifndef CHORUS_HTTP_RANGE_H
#define CHORUS_HTTP_RANGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The Range request header (RFC 9110 14.2), for a representation of size
 * bytes. Only the "bytes" unit exists.
 */
enum range_result {
	RANGE_NONE,          /* no usable Range: answer 200 with everything */
	RANGE_SINGLE,        /* one satisfiable range: 206 [first, last] */
	RANGE_MULTI,         /* several satisfiable ranges: see ranges[] */
	RANGE_UNSATISFIABLE, /* valid syntax, nothing inside the size: 416 */
};

#define RANGE_MAX 16 /* more ranges than this are answered with the whole file */

struct byte_range {
	uint64_t first, last; /* inclusive */
};

struct range_set {
	size_t n;
	struct byte_range r[RANGE_MAX];
};

/*
 * Parses value (the header's value, len bytes) against size. A syntax
 * error makes the header ignored (RANGE_NONE), as the RFC asks. Ranges are
 * returned in request order; overlapping or too many ranges (a classic
 * amplification attack) give RANGE_NONE.
 */
enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range_set *out);

#endif
