/* libFuzzer: what one node reads of another's answers and of a console's
 * body (api/figures.h): a peer's figures for the overview, the check of
 * an answer spliced in whole, a token's ttl_hours. Whatever comes, the
 * readers return, the figures are -1 or what the JSON said, and an
 * integer field is inside its bounds or refused with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/figures.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_figures f;
	int64_t hours = -7;
	char err[128];

	if (api_figures_parse((const char *)data, size, &f) == 0) {
		if (strlen(f.version) >= sizeof(f.version) || f.origin_reachable < -1 ||
		    f.origin_reachable > 1)
			abort();
		if (!api_json_is_object((const char *)data, size))
			abort();
	}
	err[0] = '\0';
	if (api_body_int(data, size, "ttl_hours", 1, 168, &hours, err, sizeof(err)) == 0) {
		if (hours != -7 && (hours < 1 || hours > 168))
			abort();
	} else if (!err[0]) {
		abort();
	}
	return 0;
}
