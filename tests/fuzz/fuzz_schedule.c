/* libFuzzer: a zone's schedule body (schedule_parse), its canonical JSON
 * (schedule_json) read back and written again: the same bytes, or abort.
 * A schedule that parses is also planned for a day over a small pool,
 * and its queue must be in order, without overlaps, within the window. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule/schedule.h"
#include "util/buf.h"

#define DAY0 1774656000000LL /* 2026-03-28T00:00:00Z: Berlin's change is the next night */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sched_track t[5];
	static const tz_t *tz;
	struct schedule s, s2;
	char err[256];
	buf_t a, b;

	if (!tz) {
		if (tz_get("Europe/Berlin", &tz, err, sizeof(err)) != 0)
			abort();
		for (int i = 0; i < 5; i++)
			t[i] = (struct sched_track){0x1000 + i, 0x2000 + i % 2, 60000 + 30000 * i};
	}
	if (schedule_parse(data, size, &s, err, sizeof(err)) != 0) {
		if (!err[0] || s.parts || s.overrides || s.ann)
			abort();
		return 0;
	}
	buf_init(&a, 1 << 22);
	buf_init(&b, 1 << 22);
	if (schedule_json(&s, &a) != 0 || schedule_parse(a.data, a.len, &s2, err, sizeof(err)) != 0)
		abort();
	if (schedule_json(&s2, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();

	/* Every playlist it plays gets the pool; a spot exists for each. */
	int64_t ids[8];
	int np = schedule_playlists(&s, ids, 8);
	struct sched_pool pools[8];
	for (int i = 0; i < np && i < 8; i++)
		pools[i] = (struct sched_pool){ids[i], i % 2 == 0, t, 5};
	struct sched_input in = {&s, tz, 7, pools, np < 8 ? np : 8, t, 5};
	struct sched_item *it;
	size_t n;
	if (schedule_queue(&in, DAY0, DAY0 + 86400000LL * 2, &it, &n) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (it[i].duration_ms <= 0 || it[i].start_ms >= DAY0 + 86400000LL * 2 ||
		    it[i].start_ms + it[i].duration_ms <= DAY0)
			abort();
		if (i > 0 && it[i].start_ms < it[i - 1].start_ms + it[i - 1].duration_ms)
			abort();
	}
	free(it);
	schedule_check(&in, err, sizeof(err));
	buf_free(&a);
	buf_free(&b);
	schedule_free(&s);
	schedule_free(&s2);
	return 0;
}
