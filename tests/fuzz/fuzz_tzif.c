/* libFuzzer: the TZif reader (tz_parse) and the POSIX TZ string reader
 * (tz_parse_posix) on the same bytes. A zone that parses must answer
 * offsets within bounds, and every wall time that happens must map back
 * to its first instant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule/tz.h"
#include "schedule/tz_int.h"

static void probe(const tz_t *tz)
{
	static const int64_t at[] = {
		INT64_MIN,     -4000000000LL,    -1,         0,          1,
		820454400,     1774746000,       1792890000, 2147483647, 4102444800LL,
		32503680000LL, (int64_t)1 << 52, INT64_MAX};

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		for (int64_t d = -86400; d <= 86400; d += 3 * 3600 + 7) {
			int64_t u = at[i] > INT64_MAX - 86400 || at[i] < INT64_MIN + 86400
					    ? at[i]
					    : at[i] + d;
			int32_t off = tz_offset(tz, u);
			if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX)
				abort();
			if (u < -((int64_t)1 << 49) || u > ((int64_t)1 << 49))
				continue;
			int64_t l = u + off, r = tz_local_to_utc(tz, l);
			if (r > u || r + tz_offset(tz, r) != l)
				abort();
			(void)tz_local_day(tz, u);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128], str[256];
	tz_t *tz;

	if (tz_parse(data, size, "fuzz", &tz, err, sizeof(err)) == 0) {
		probe(tz);
		tz_free(tz);
	} else if (tz || !err[0]) {
		abort();
	}
	if (size < sizeof(str) && !memchr(data, 0, size)) {
		memcpy(str, data, size);
		str[size] = 0;
		if (tz_parse_posix(str, "fuzz", &tz) == 0) {
			probe(tz);
			tz_free(tz);
		}
	}
	return 0;
}
