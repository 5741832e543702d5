/* libFuzzer: POST /api/v1/plays body validation (plays_body_parse, which
 * parses with jansson and applies every rule), and the RFC 3339 parser on
 * the same bytes. A batch that passes must obey every rule; the error list
 * must stay within its cap; a parsed time must survive format + parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plays/plays.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plays_batch b = {0};
	struct plays_errors e;
	char msg[256], out[32];
	int64_t ms, again;
	int st;

	st = plays_body_parse((const char *)data, size, NOW, &b, &e, msg, sizeof(msg));
	if (st != 200 && st != 400 && st != 422)
		abort();
	if (st == 200) {
		if (b.n < 1 || b.n > PLAYS_BATCH_MAX || e.n)
			abort();
		for (size_t i = 0; i < b.n; i++) {
			const struct play *p = &b.items[i];
			size_t n = p->event_id ? strlen(p->event_id) : 0;
			if (n < 1 || n > PLAYS_EVENT_ID_MAX)
				abort();
			if (p->ms_played < 0 || p->ms_played > PLAYS_MS_PLAYED_MAX)
				abort();
			if (p->started_at_ms < 946684800000LL ||
			    p->started_at_ms > NOW + 86400000LL)
				abort();
			if ((p->location && strlen(p->location) > PLAYS_TEXT_MAX) ||
			    (p->zone && strlen(p->zone) > PLAYS_TEXT_MAX) ||
			    (p->device && strlen(p->device) > PLAYS_TEXT_MAX))
				abort();
		}
		plays_batch_free(&b);
	} else {
		if (b.items || e.n > PLAYS_ERRORS_MAX || (st == 400 && e.n))
			abort();
		for (size_t i = 0; i < e.n; i++)
			if (e.items[i].index >= PLAYS_BATCH_MAX)
				abort();
	}
	plays_errors_free(&e);

	if (plays_rfc3339_parse((const char *)data, size, &ms) == 0 && ms >= 0 &&
	    ms < 253402300800000LL) {
		plays_rfc3339_format(ms, out);
		if (plays_rfc3339_parse(out, strlen(out), &again) != 0 || again != ms)
			abort();
	}
	return 0;
}
