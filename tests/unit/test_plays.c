/* Plays: RFC 3339, body validation (every rule, the per-item error list),
 * and the store's group commit and reports on a temporary directory. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/db.h"
#include "plays/plays.h"
#include "unit.h"
#include "util/buf.h"

#define NOW 1749945600000LL /* 2025-06-15T00:00:00Z */
#define TID "00000000000000aa"

static int64_t ts(const char *s)
{
	int64_t ms = -1;

	if (plays_rfc3339_parse(s, strlen(s), &ms) < 0)
		return -1;
	return ms;
}

static void test_rfc3339(void)
{
	char out[32];

	CHECK(ts("1970-01-01T00:00:00Z") == 0);
	CHECK(ts("2024-05-01T12:00:00Z") == 1714564800000LL);
	CHECK(ts("2024-05-01T14:00:00+02:00") == 1714564800000LL);
	CHECK(ts("2024-05-01T07:30:00-04:30") == 1714564800000LL);
	CHECK(ts("2024-05-01t12:00:00z") == 1714564800000LL);
	CHECK(ts("2024-05-01 12:00:00Z") == 1714564800000LL);
	CHECK(ts("2024-05-01T12:00:00.5Z") == 1714564800500LL);
	CHECK(ts("2024-05-01T12:00:00.123456789Z") == 1714564800123LL);
	CHECK(ts("2024-02-29T00:00:00Z") == 1709164800000LL);
	CHECK(ts("2000-02-29T00:00:00Z") == 951782400000LL);
	CHECK(ts("2016-12-31T23:59:60Z") == ts("2017-01-01T00:00:00Z")); /* leap second */
	/* Invalid: no zone, bad zone, bad fields, extra bytes. */
	CHECK(ts("2024-05-01T12:00:00") == -1);
	CHECK(ts("2024-05-01T12:00:00+0200") == -1);
	CHECK(ts("2024-05-01T12:00:00+24:00") == -1);
	CHECK(ts("2024-05-01T12:00:00+02:60") == -1);
	CHECK(ts("2024-05-01T12:00:00.Z") == -1);
	CHECK(ts("2024-05-01T12:00:00ZZ") == -1);
	CHECK(ts("2024-05-01") == -1);
	CHECK(ts("2024-13-01T12:00:00Z") == -1);
	CHECK(ts("2024-00-01T12:00:00Z") == -1);
	CHECK(ts("2024-04-31T12:00:00Z") == -1);
	CHECK(ts("2023-02-29T12:00:00Z") == -1);
	CHECK(ts("1900-02-29T12:00:00Z") == -1);
	CHECK(ts("2024-05-01T24:00:00Z") == -1);
	CHECK(ts("2024-05-01T12:60:00Z") == -1);
	CHECK(ts("2024-05-01T12:00:61Z") == -1);
	CHECK(ts("2024-05-01X12:00:00Z") == -1);
	CHECK(ts("+024-05-01T12:00:00Z") == -1);
	CHECK(ts("") == -1);
	CHECK(plays_rfc3339_parse("2024-05-01T12:00:00Z", 19, &(int64_t){0}) < 0);

	plays_rfc3339_format(1714564800250LL, out);
	CHECK_STR(out, "2024-05-01T12:00:00.250Z");
	plays_rfc3339_format(0, out);
	CHECK_STR(out, "1970-01-01T00:00:00.000Z");
	plays_rfc3339_format(951868799999LL, out);
	CHECK_STR(out, "2000-02-29T23:59:59.999Z");
	CHECK(ts(out) == 951868799999LL);
}

/* Parses body; returns the status and leaves errs/batch for inspection. */
static int parse(const char *body, struct plays_batch *b, struct plays_errors *e)
{
	char msg[256];

	memset(b, 0, sizeof(*b));
	return plays_body_parse(body, strlen(body), NOW, b, e, msg, sizeof(msg));
}

/* True when errs has (index, field) with message containing want. */
static bool has_error(const struct plays_errors *e, size_t index, const char *field,
		      const char *want)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->items[i].index == index && strcmp(e->items[i].field, field) == 0 &&
		    strstr(e->items[i].message, want))
			return true;
	return false;
}

#define PLAY(extra)                                                                                \
	"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00+02:00\","                  \
	"\"ms_played\":1234,\"event_id\":\"ev-1\"" extra "}"

static void test_body_ok(void)
{
	struct plays_batch b;
	struct plays_errors e;

	CHECK(parse(PLAY(",\"location\":\"Store 7\",\"zone\":null,\"device\":\"d\","
			 "\"offline\":true"),
		    &b, &e) == 200);
	CHECK(b.n == 1 && e.n == 0);
	if (b.n == 1) {
		CHECK(b.items[0].track_id == 0xaa);
		CHECK(b.items[0].started_at_ms == ts("2025-06-01T08:00:00Z"));
		CHECK(b.items[0].ms_played == 1234);
		CHECK_STR(b.items[0].event_id, "ev-1");
		CHECK_STR(b.items[0].location, "Store 7");
		CHECK(b.items[0].zone == NULL);
		CHECK_STR(b.items[0].device, "d");
		CHECK(b.items[0].offline);
		CHECK(!b.items[0].dup);
	}
	plays_batch_free(&b);
	plays_errors_free(&e);

	/* An array; the repeated event_id is marked, the first kept. */
	CHECK(parse("[" PLAY("") "," PLAY(",\"offline\":false") "]", &b, &e) == 200);
	CHECK(b.n == 2);
	if (b.n == 2)
		CHECK(!b.items[0].dup && b.items[1].dup && !b.items[1].offline);
	plays_batch_free(&b);
	plays_errors_free(&e);

	/* Bounds that pass: ms_played 0 and 24 h, 128-byte event id, 256-byte text,
	 * a play 30 days old, one that ends 10 minutes from now (clock skew). */
	{
		char body[2048], id[129], text[257];
		memset(id, 'x', 128);
		id[128] = '\0';
		memset(text, 'y', 256);
		text[256] = '\0';
		snprintf(body, sizeof(body),
			 "[{\"track_id\":\"" TID "\",\"started_at\":\"2025-05-16T00:00:00Z\","
			 "\"ms_played\":0,\"event_id\":\"%s\",\"location\":\"%s\"},"
			 "{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-14T00:10:00Z\","
			 "\"ms_played\":86400000,\"event_id\":\"b\"}]",
			 id, text);
		CHECK(parse(body, &b, &e) == 200);
		CHECK(b.n == 2);
		plays_batch_free(&b);
		plays_errors_free(&e);
	}
}

static void test_body_rules(void)
{
	static const struct {
		const char *item; /* the second item of a two-item batch */
		const char *field, *want;
	} cases[] = {
		{"{\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,\"event_id\":\"a\"}",
		 "track_id", "required"},
		{"{\"track_id\":\"00AA\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "track_id", "track id"},
		{"{\"track_id\":170,\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "track_id", "track id"},
		{"{\"track_id\":\"" TID "\",\"ms_played\":1,\"event_id\":\"a\"}", "started_at",
		 "required"},
		{"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00\",\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "started_at", "RFC 3339"},
		{"{\"track_id\":\"" TID "\",\"started_at\":1748772000,\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "started_at", "RFC 3339"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-05-15T23:59:59Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "started_at", "30 days"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-15T00:10:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\"}",
		 "started_at", "future"},
		{"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00Z\","
		 "\"event_id\":\"a\"}",
		 "ms_played", "required"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":-1,"
		 "\"event_id\":\"a\"}",
		 "ms_played", "integer"},
		{"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00Z\","
		 "\"ms_played\":86400001,\"event_id\":\"a\"}",
		 "ms_played", "integer"},
		{"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00Z\","
		 "\"ms_played\":1.5,\"event_id\":\"a\"}",
		 "ms_played", "integer"},
		{"{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00Z\","
		 "\"ms_played\":\"1\",\"event_id\":\"a\"}",
		 "ms_played", "integer"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1}",
		 "event_id", "required"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"\"}",
		 "event_id", "1 to 128"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":7}",
		 "event_id", "1 to 128"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\",\"location\":5}",
		 "location", "string"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\",\"zone\":[]}",
		 "zone", "string"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\",\"device\":{}}",
		 "device", "string"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\",\"offline\":\"yes\"}",
		 "offline", "true or false"},
		{"{\"track_id\":\"" TID
		 "\",\"started_at\":\"2025-06-01T10:00:00Z\",\"ms_played\":1,"
		 "\"event_id\":\"a\",\"startedAt\":\"x\"}",
		 "startedAt", "unknown field"},
		{"[1]", "", "object"},
		{"\"play\"", "", "object"},
	};
	struct plays_batch b;
	struct plays_errors e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[1024];
		snprintf(body, sizeof(body), "[" PLAY("") ",%s]", cases[i].item);
		if (parse(body, &b, &e) != 422 ||
		    !has_error(&e, 1, cases[i].field, cases[i].want) || has_error(&e, 0, "", "") ||
		    b.n != 0) {
			fprintf(stderr, "  case %zu: %s\n", i, cases[i].item);
			unit_failed_checks++;
		}
		for (size_t k = 0; k < e.n; k++)
			CHECK(e.items[k].index == 1);
		plays_errors_free(&e);
	}

	/* Too long: event_id 129 bytes, location 257 bytes. */
	{
		char body[2048], id[130], text[258];
		memset(id, 'x', 129);
		id[129] = '\0';
		memset(text, 'y', 257);
		text[257] = '\0';
		snprintf(body, sizeof(body),
			 "{\"track_id\":\"" TID "\",\"started_at\":\"2025-06-01T10:00:00Z\","
			 "\"ms_played\":1,\"event_id\":\"%s\",\"location\":\"%s\"}",
			 id, text);
		CHECK(parse(body, &b, &e) == 422);
		CHECK(has_error(&e, 0, "event_id", "1 to 128"));
		CHECK(has_error(&e, 0, "location", "at most 256"));
		CHECK(e.n == 2);
		plays_errors_free(&e);
	}

	/* Several errors in one item are all listed. */
	CHECK(parse("{\"x\":1,\"y\":2}", &b, &e) == 422);
	CHECK(has_error(&e, 0, "x", "unknown") && has_error(&e, 0, "y", "unknown"));
	CHECK(has_error(&e, 0, "track_id", "required") && has_error(&e, 0, "event_id", "required"));
	CHECK(has_error(&e, 0, "started_at", "required") &&
	      has_error(&e, 0, "ms_played", "required"));
	CHECK(e.n == 6);
	plays_errors_free(&e);
}

static void test_body_shape(void)
{
	struct plays_batch b;
	struct plays_errors e;
	buf_t big;

	CHECK(parse("", &b, &e) == 400);
	plays_errors_free(&e);
	CHECK(parse("{\"track_id\":", &b, &e) == 400);
	plays_errors_free(&e);
	CHECK(parse("[] x", &b, &e) == 400);
	plays_errors_free(&e);
	CHECK(parse(PLAY(",\"ms_played\":5"), &b, &e) == 400); /* duplicate key */
	plays_errors_free(&e);
	CHECK(parse("[]", &b, &e) == 422 && e.n == 0);
	plays_errors_free(&e);
	CHECK(parse("42", &b, &e) == 422 && e.n == 0);
	plays_errors_free(&e);
	CHECK(parse("null", &b, &e) == 422);
	plays_errors_free(&e);

	/* 1000 items pass, 1001 do not; 1000 bad items list 1000 errors at most. */
	buf_init(&big, 1 << 20);
	for (int n = 1000; n <= 1001; n++) {
		int rc = 0;
		buf_reset(&big);
		rc |= buf_appends(&big, "[");
		for (int i = 0; i < n; i++)
			rc |= buf_printf(
				&big,
				"%s{\"track_id\":\"" TID "\",\"started_at\":"
				"\"2025-06-01T10:00:00Z\",\"ms_played\":1,\"event_id\":\"e%d\"}",
				i ? "," : "", i);
		rc |= buf_appends(&big, "]");
		CHECK(rc == 0);
		CHECK(parse(big.data, &b, &e) == (n == 1000 ? 200 : 422));
		CHECK(b.n == (n == 1000 ? 1000u : 0u));
		plays_batch_free(&b);
		plays_errors_free(&e);
	}
	buf_reset(&big);
	CHECK(buf_appends(&big, "[") == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(buf_printf(&big, "%s{\"a\":1,\"b\":2}", i ? "," : "") == 0);
	CHECK(buf_appends(&big, "]") == 0);
	CHECK(parse(big.data, &b, &e) == 422);
	CHECK(e.n == PLAYS_ERRORS_MAX && e.dropped == 6000 - PLAYS_ERRORS_MAX);
	plays_errors_free(&e);
	buf_free(&big);
}

/* ---- the store ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending, rc_sum, accepted, duplicates;
};

static void done_cb(void *arg, int rc, int accepted, int duplicates)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->pending--;
	w->rc_sum += rc;
	w->accepted += accepted;
	w->duplicates += duplicates;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void make_batch(struct plays_batch *b, int first, int n, const char *extra_dup)
{
	char body[1 << 16];
	struct plays_errors e;
	size_t len = 0;
	char msg[128];

	len += (size_t)snprintf(body + len, sizeof(body) - len, "[");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len,
					"%s{\"track_id\":\"" TID "\",\"started_at\":"
					"\"2025-06-0%dT10:00:00Z\",\"ms_played\":%d,"
					"\"event_id\":\"e%d\",\"location\":\"L%d\"}",
					i ? "," : "", 1 + (first + i) % 3, 1000 + first + i,
					first + i, (first + i) % 2);
	if (extra_dup)
		len += (size_t)snprintf(body + len, sizeof(body) - len, ",%s", extra_dup);
	snprintf(body + len, sizeof(body) - len, "]");
	CHECK(plays_body_parse(body, strlen(body), NOW, b, &e, msg, sizeof(msg)) == 200);
	plays_errors_free(&e);
}

static int sink(void *ud, const void *p, size_t n)
{
	return buf_append(ud, p, n) < 0 ? -EFBIG : 0;
}

static void test_store(void)
{
	char dir[] = "/tmp/chorus-test-plays-XXXXXX", path[256], err[256];
	struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct plays_query q;
	struct plays_stats st;
	plays_t *p = NULL;
	sqlite3 *cat = NULL;
	buf_t out;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	CHECK(catalog_db_open(path, true, &cat, err, sizeof(err)) == 0);
	sqlite3_close(cat);
	CHECK(plays_open(dir, &p, err, sizeof(err)) == 0);
	if (!p)
		return;
	/* 20 batches of 10 queued at once: group commit takes them together.
	 * Batch 0 repeats its own first play (a duplicate within the batch);
	 * the last repeats batch 0 entirely (a retried upload). */
	pthread_mutex_lock(&w.mu);
	w.pending = 21;
	pthread_mutex_unlock(&w.mu);
	for (int i = 0; i < 20; i++) {
		struct plays_batch b;
		make_batch(&b, i * 10, 10,
			   i == 0 ? "{\"track_id\":\"" TID "\",\"started_at\":"
				    "\"2025-06-01T10:00:00Z\",\"ms_played\":1,\"event_id\":\"e0\"}"
				  : NULL);
		plays_submit(p, &b, done_cb, &w);
		CHECK(b.items == NULL); /* taken over */
	}
	{
		struct plays_batch b;
		make_batch(&b, 0, 10, NULL);
		plays_submit(p, &b, done_cb, &w);
	}
	pthread_mutex_lock(&w.mu);
	while (w.pending)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	CHECK(w.rc_sum == 0);
	CHECK(w.accepted == 200);
	CHECK(w.duplicates == 11);
	plays_get_stats(p, &st);
	CHECK(st.batches == 21 && st.accepted == 200 && st.duplicates == 11);
	CHECK(st.commits >= 1 && st.commits <= 21);

	/* Reports: by day, with bounds; by location as CSV; the census. */
	buf_init(&out, 1 << 20);
	CHECK(plays_query_parse("2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z", "day", NULL, &q,
				err, sizeof(err)) == 0);
	CHECK(plays_report(dir, NULL, &q, sink, &out, err, sizeof(err)) == 0);
	{
		/* Plays i with i % 3 == 1: 67 of 0..199; ms 1000 + i. */
		long long ms = 0;
		char want[512];
		for (int i = 1; i < 200; i += 3)
			ms += 1000 + i;
		snprintf(want, sizeof(want),
			 "{\"from\":\"2025-06-02T00:00:00.000Z\",\"to\":\"2025-06-03T00:00:00."
			 "000Z\","
			 "\"group\":\"day\",\"rows\":[{\"id\":\"2025-06-02\",\"name\":\"2025-06-"
			 "02\","
			 "\"plays\":67,\"ms_played\":%lld}]}\n",
			 ms);
		CHECK_STR(out.data, want);
	}
	buf_reset(&out);
	CHECK(plays_query_parse(NULL, NULL, "location", "csv", &q, err, sizeof(err)) == 0);
	CHECK(plays_report(dir, NULL, &q, sink, &out, err, sizeof(err)) == 0);
	CHECK(strncmp(out.data, "id,name,plays,ms_played\r\nL", 26) == 0);
	CHECK(strstr(out.data, ",100,") != NULL);
	buf_reset(&out);
	CHECK(plays_query_parse(NULL, "2025-06-01T10:00:00.001Z", "none", "csv", &q, err,
				sizeof(err)) == 0);
	CHECK(plays_report(dir, NULL, &q, sink, &out, err, sizeof(err)) == 0);
	{
		static const char hdr[] = "artist,title,isrc,album,label,duration_ms,ms_played,"
					  "location,zone,started_at,track_id,event_id,device,"
					  "offline\r\n";
		CHECK(strncmp(out.data, hdr, sizeof(hdr) - 1) == 0);
	}
	{
		int lines = 0;
		for (char *c = out.data; *c; c++)
			lines += *c == '\n';
		CHECK(lines == 1 + 67); /* i % 3 == 0 */
	}
	buf_free(&out);

	CHECK(plays_query_parse("yesterday", NULL, NULL, NULL, &q, err, sizeof(err)) == -EINVAL);
	CHECK(plays_query_parse(NULL, NULL, "genre", NULL, &q, err, sizeof(err)) == -EINVAL);
	CHECK(plays_query_parse(NULL, NULL, NULL, "xml", &q, err, sizeof(err)) == -EINVAL);

	/* After close: submits fail at once, nothing is lost or leaked. */
	plays_close(p);
	pthread_mutex_lock(&w.mu);
	w.pending = 1;
	w.rc_sum = 0;
	pthread_mutex_unlock(&w.mu);
	{
		struct plays_batch b;
		make_batch(&b, 500, 3, NULL);
		plays_submit(p, &b, done_cb, &w);
	}
	CHECK(w.pending == 0 && w.rc_sum == -ESHUTDOWN);
	plays_free(p);

	/* Reopened: the 200 rows are there, a resubmit is all duplicates. */
	CHECK(plays_open(dir, &p, err, sizeof(err)) == 0);
	if (p) {
		struct plays_batch b;
		w.pending = 1;
		w.accepted = w.duplicates = 0;
		make_batch(&b, 190, 10, NULL);
		plays_submit(p, &b, done_cb, &w);
		pthread_mutex_lock(&w.mu);
		while (w.pending)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		CHECK(w.accepted == 0 && w.duplicates == 10);
		plays_free(p);
	}
	{
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0);
	}
}

int main(void)
{
	TEST_RUN(test_rfc3339);
	TEST_RUN(test_body_ok);
	TEST_RUN(test_body_rules);
	TEST_RUN(test_body_shape);
	TEST_RUN(test_store);
	TEST_EXIT();
}
