/* libFuzzer: the Range header parser. The first 8 bytes give the
 * representation's size; every range returned must lie inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct range_set rs;
	uint64_t len = 0;
	enum range_result r;

	if (size < 8)
		return 0;
	memcpy(&len, data, 8);
	len %= (1ull << 40);
	r = range_parse((const char *)data + 8, size - 8, len, &rs);
	if (r == RANGE_SINGLE && rs.n != 1)
		abort();
	if (r == RANGE_MULTI && (rs.n < 2 || rs.n > RANGE_MAX))
		abort();
	if (r == RANGE_SINGLE || r == RANGE_MULTI)
		for (size_t i = 0; i < rs.n; i++)
			if (rs.r[i].first > rs.r[i].last || rs.r[i].last >= len)
				abort();
	return 0;
}
