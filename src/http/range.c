#include "http/range.h"

#include <string.h>

/* Reads a decimal number; returns chars used, 0 when none or overflow. */
static size_t number(const char *p, size_t len, uint64_t *v)
{
	size_t i = 0;
	uint64_t n = 0;

	while (i < len && p[i] >= '0' && p[i] <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			return 0;
		n = n * 10 + (uint64_t)(p[i] - '0');
		i++;
	}
	*v = n;
	return i;
}

enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range_set *out)
{
	size_t i = 0, seen = 0;

	out->n = 0;
	if (len < 6 || strncmp(value, "bytes=", 6) != 0)
		return RANGE_NONE;
	i = 6;
	for (;;) {
		uint64_t first = 0, last = 0;
		size_t n;
		int has_first, has_last;

		while (i < len && (value[i] == ' ' || value[i] == '\t'))
			i++;
		n = number(value + i, len - i, &first);
		has_first = n > 0;
		i += n;
		if (i >= len || value[i] != '-')
			return RANGE_NONE;
		i++;
		n = number(value + i, len - i, &last);
		has_last = n > 0;
		i += n;
		if (!has_first && !has_last)
			return RANGE_NONE;
		if (has_first && has_last && last < first)
			return RANGE_NONE;
		if (++seen > RANGE_MAX)
			return RANGE_NONE;
		/* Resolve against the size; unsatisfiable ones are dropped. */
		if (!has_first) { /* suffix: the last "last" bytes */
			if (last > 0 && size > 0) {
				first = last >= size ? 0 : size - last;
				last = size - 1;
				out->r[out->n++] = (struct byte_range){first, last};
			}
		} else if (first < size) {
			if (!has_last || last >= size)
				last = size - 1;
			out->r[out->n++] = (struct byte_range){first, last};
		}
		while (i < len && (value[i] == ' ' || value[i] == '\t'))
			i++;
		if (i == len)
			break;
		if (value[i] != ',')
			return RANGE_NONE;
		i++;
	}
	if (out->n == 0)
		return RANGE_UNSATISFIABLE;
	if (out->n == 1)
		return RANGE_SINGLE;
	/* Overlapping ranges would let a client multiply the response. */
	for (size_t a = 0; a < out->n; a++)
		for (size_t b = a + 1; b < out->n; b++)
			if (out->r[a].first <= out->r[b].last && out->r[b].first <= out->r[a].last)
				return RANGE_NONE;
	return RANGE_MULTI;
}
