/* Schedules: zones from TZif (offsets against known values, the POSIX
 * footer, slim files), the JSON contract, and the queue: DST days,
 * overrides, separation, announcements, determinism, windows as slices
 * of the day plan, and what one hour over a 10,000-track pool costs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule/sched_int.h"
#include "schedule/schedule.h"
#include "schedule/tz.h"
#include "schedule/tz_int.h"
#include "unit.h"
#include "util/buf.h"
#include "util/fsutil.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS_T (24 * HOUR_MS)
#define PL_A 0xa1
#define PL_B 0xb2
#define SPOT1 0x5001
#define SPOT2 0x5002

/* Unix ms of a UTC wall time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	return (sched__days(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static const tz_t *zone(const char *name)
{
	const tz_t *tz = NULL;
	char err[128];

	if (tz_get(name, &tz, err, sizeof(err)) != 0)
		fprintf(stderr, "  zone %s: %s\n", name, err);
	return tz;
}

/* n tracks by nartists artists, 3:00 to 3:59 long. */
static struct sched_track *tracks(int n, int nartists, int64_t first_id)
{
	struct sched_track *t = calloc((size_t)n, sizeof(*t));

	for (int i = 0; i < n; i++) {
		t[i].id = first_id + i;
		t[i].artist = 0x10000 + i % nartists;
		t[i].duration_ms = (int32_t)(180000 + (i * 7919) % 60000);
	}
	return t;
}

static int parse(const char *json, struct schedule *s, char *err, size_t errlen)
{
	return schedule_parse(json, strlen(json), s, err, errlen);
}

/* The error a body is refused with ("" when it is not). */
static const char *parse_err(const char *json)
{
	static char err[256];
	struct schedule s;

	if (parse(json, &s, err, sizeof(err)) == 0) {
		schedule_free(&s);
		return "";
	}
	return err;
}

static char *canonical(const struct schedule *s)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	if (schedule_json(s, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* A queue as text, every field: what "the same queue" compares. */
static char *serialize(const struct sched_item *it, size_t n)
{
	buf_t b;

	buf_init(&b, 64 << 20);
	for (size_t i = 0; i < n; i++)
		if (buf_printf(&b, "%016llx %016llx %lld %d %d %d\n",
			       (unsigned long long)it[i].track, (unsigned long long)it[i].playlist,
			       (long long)it[i].start_ms, it[i].duration_ms, it[i].announcement,
			       it[i].relaxed) < 0)
			break;
	if (!b.data && buf_appends(&b, "") < 0)
		return NULL;
	return buf_steal(&b);
}

/* ---- Zones ---- */

static void test_tz_offsets(void)
{
	const tz_t *b = zone("Europe/Berlin"), *ny = zone("America/New_York");
	const tz_t *lh = zone("Australia/Lord_Howe"), *kol = zone("Asia/Kolkata");
	const tz_t *nuuk = zone("America/Nuuk"), *u = zone("UTC");
	const tz_t *again = NULL;
	char err[128];

	CHECK(b && ny && lh && kol && nuuk && u);
	if (!b || !ny || !lh || !kol || !nuuk || !u)
		return;
	CHECK_STR(tz_name(b), "Europe/Berlin");
	CHECK(tz_get("Europe/Berlin", &again, err, sizeof(err)) == 0 && again == b); /* cached */
	CHECK(tz_offset(b, utc(2026, 1, 15, 12, 0) / 1000) == 3600);
	CHECK(tz_offset(b, utc(2026, 7, 15, 12, 0) / 1000) == 7200);
	CHECK(tz_offset(b, utc(1975, 7, 15, 12, 0) / 1000) == 3600); /* no DST in 1975 */
	CHECK(tz_offset(b, utc(2026, 3, 29, 1, 0) / 1000 - 1) == 3600);
	CHECK(tz_offset(b, utc(2026, 3, 29, 1, 0) / 1000) == 7200);
	CHECK(tz_offset(b, utc(2026, 10, 25, 1, 0) / 1000 - 1) == 7200);
	CHECK(tz_offset(b, utc(2026, 10, 25, 1, 0) / 1000) == 3600);
	CHECK(tz_offset(b, utc(2090, 7, 1, 0, 0) / 1000) == 7200); /* past the table: the rule */
	CHECK(tz_offset(ny, utc(2026, 3, 8, 7, 0) / 1000 - 1) == -18000);
	CHECK(tz_offset(ny, utc(2026, 3, 8, 7, 0) / 1000) == -14400);
	CHECK(tz_offset(ny, utc(2026, 11, 1, 6, 0) / 1000 - 1) == -14400);
	CHECK(tz_offset(ny, utc(2026, 11, 1, 6, 0) / 1000) == -18000);
	CHECK(tz_offset(lh, utc(2026, 1, 15, 0, 0) / 1000) == 11 * 3600);        /* +11 in summer */
	CHECK(tz_offset(lh, utc(2026, 7, 15, 0, 0) / 1000) == 10 * 3600 + 1800); /* +10:30 */
	CHECK(tz_offset(kol, utc(2026, 7, 15, 0, 0) / 1000) == 5 * 3600 + 1800);
	/* Nuuk's footer has a negative rule time (v3): "<-02>2<-01>,M3.5.0/-1,M10.5.0/0". */
	CHECK(tz_offset(nuuk, utc(2026, 1, 15, 0, 0) / 1000) == -7200);
	CHECK(tz_offset(nuuk, utc(2026, 3, 29, 1, 0) / 1000 - 1) == -7200);
	CHECK(tz_offset(nuuk, utc(2026, 3, 29, 1, 0) / 1000) == -3600);
	CHECK(tz_offset(u, utc(2026, 7, 15, 0, 0) / 1000) == 0);

	/* Wall times: a gap reads the same distance after the change, an
	 * overlap's first occurrence. */
	int64_t l = (sched__days(2026, 3, 29) * 86400) + 2 * 3600 + 1800; /* 02:30 */
	CHECK(tz_local_to_utc(b, l) * 1000 == utc(2026, 3, 29, 1, 30));   /* = 03:30 CEST */
	l = (sched__days(2026, 10, 25) * 86400) + 2 * 3600 + 1800;
	CHECK(tz_local_to_utc(b, l) * 1000 == utc(2026, 10, 25, 0, 30)); /* the CEST one */
	l = sched__days(2026, 7, 1) * 86400 + 8 * 3600;
	CHECK(tz_local_to_utc(ny, l) * 1000 == utc(2026, 7, 1, 12, 0));
	CHECK(tz_local_day(b, utc(2026, 7, 1, 22, 30) / 1000) == sched__days(2026, 7, 2));
	CHECK(tz_local_day(ny, utc(2026, 7, 2, 2, 0) / 1000) == sched__days(2026, 7, 1));

	/* Names. */
	CHECK(tz_name_ok("America/Argentina/Buenos_Aires"));
	CHECK(tz_name_ok("Etc/GMT+5"));
	CHECK(!tz_name_ok(""));
	CHECK(!tz_name_ok("/etc/passwd"));
	CHECK(!tz_name_ok("../etc/passwd"));
	CHECK(!tz_name_ok("Europe/./Berlin"));
	CHECK(!tz_name_ok("Europe//Berlin"));
	CHECK(!tz_name_ok("Europe/Berlin/"));
	CHECK(!tz_name_ok("Europe/Ber lin"));
	CHECK(!tz_name_ok("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	CHECK(tz_get("../etc/passwd", &again, err, sizeof(err)) == -EINVAL);
	CHECK(tz_get("Nowhere/Atlantis", &again, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "Nowhere/Atlantis") != NULL);
	CHECK(tz_get("America", &again, err, sizeof(err)) == -ENOENT);  /* a directory */
	CHECK(tz_get("zone.tab", &again, err, sizeof(err)) == -EINVAL); /* '.': not a name */
}

/* A TZif file by hand: version v ('\0', '2', '3'), the given transitions
 * to types, and a footer (v2+). Returns its length in out. */
static size_t tzif(unsigned char *out, char v, const int64_t *trans, const int *idx, int ntrans,
		   const int32_t *offs, const int *isdst, int ntypes, const char *footer)
{
	size_t o = 0;

	for (int pass = 0; pass < (v ? 2 : 1); pass++) {
		size_t ts = pass == 0 ? 4 : 8;
		uint32_t cnt[6] = {0, 0, 0, (uint32_t)ntrans, (uint32_t)ntypes, 4};
		memcpy(out + o, "TZif", 4);
		out[o + 4] = (unsigned char)v;
		memset(out + o + 5, 0, 15);
		o += 20;
		for (int i = 0; i < 6; i++) {
			out[o++] = (unsigned char)(cnt[i] >> 24);
			out[o++] = (unsigned char)(cnt[i] >> 16);
			out[o++] = (unsigned char)(cnt[i] >> 8);
			out[o++] = (unsigned char)cnt[i];
		}
		for (int i = 0; i < ntrans; i++)
			for (size_t k = 0; k < ts; k++)
				out[o++] =
					(unsigned char)((uint64_t)trans[i] >> (8 * (ts - 1 - k)));
		for (int i = 0; i < ntrans; i++)
			out[o++] = (unsigned char)idx[i];
		for (int i = 0; i < ntypes; i++) {
			uint32_t x = (uint32_t)offs[i];
			out[o++] = (unsigned char)(x >> 24);
			out[o++] = (unsigned char)(x >> 16);
			out[o++] = (unsigned char)(x >> 8);
			out[o++] = (unsigned char)x;
			out[o++] = (unsigned char)isdst[i];
			out[o++] = 0;
		}
		memcpy(out + o, "LMT", 4);
		o += 4;
	}
	if (v) {
		size_t n = strlen(footer);
		out[o++] = '\n';
		memcpy(out + o, footer, n);
		o += n;
		out[o++] = '\n';
	}
	return o;
}

static void test_tz_files(void)
{
	const tz_t *sys = zone("Europe/Berlin");
	unsigned char f[512];
	char err[128];
	tz_t *tz;
	size_t n;

	if (!sys)
		return;
	/* Slim: one transition (to CET in 1996), the rule for everything after. */
	int64_t tr[] = {820454400};
	int idx[] = {1};
	int32_t offs[] = {3208, 3600};
	int dst[] = {0, 0};
	n = tzif(f, '2', tr, idx, 1, offs, dst, 2, "CET-1CEST,M3.5.0,M10.5.0/3");
	CHECK(tz_parse(f, n, "slim", &tz, err, sizeof(err)) == 0);
	if (tz) {
		for (int64_t t = utc(1997, 1, 1, 0, 0) / 1000; t < utc(2040, 1, 1, 0, 0) / 1000;
		     t += 86400 * 3 + 3607)
			if (tz_offset(tz, t) != tz_offset(sys, t)) {
				CHECK(tz_offset(tz, t) == tz_offset(sys, t));
				break;
			}
		CHECK(tz_offset(tz, 0) == 3208);
		CHECK(tz_local_to_utc(tz, sched__days(2026, 3, 29) * 86400 + 9000) ==
		      tz_local_to_utc(sys, sched__days(2026, 3, 29) * 86400 + 9000));
		tz_free(tz);
	}
	/* A real slim file (zic -b slim, a fuzz seed): transitions to 1996 only. */
	char *slim = NULL;
	size_t slen = 0;
	CHECK(fs_read_all("tests/fuzz/corpus/fuzz_tzif/slim_berlin", 1 << 16, &slim, &slen) == 0);
	CHECK(slim && tz_parse(slim, slen, "slim", &tz, err, sizeof(err)) == 0);
	if (slim && tz) {
		for (int64_t t = utc(1997, 1, 1, 0, 0) / 1000; t < utc(2100, 1, 1, 0, 0) / 1000;
		     t += 86400 * 5 + 1799)
			if (tz_offset(tz, t) != tz_offset(sys, t)) {
				CHECK(tz_offset(tz, t) == tz_offset(sys, t));
				break;
			}
		tz_free(tz);
	}
	free(slim);

	/* v1: 32-bit transitions only, no footer: the last offset stays. */
	int64_t tr1[] = {100000, 200000};
	int idx1[] = {1, 0};
	int32_t offs1[] = {-18000, -14400};
	int dst1[] = {0, 1};
	n = tzif(f, 0, tr1, idx1, 2, offs1, dst1, 2, "");
	CHECK(tz_parse(f, n, "v1", &tz, err, sizeof(err)) == 0);
	if (tz) {
		CHECK(tz_offset(tz, 99999) == -18000);
		CHECK(tz_offset(tz, 100000) == -14400);
		CHECK(tz_offset(tz, 4000000000LL) == -18000);
		tz_free(tz);
	}
	/* Refused: bad magic, truncation, transitions out of order, bad footer. */
	CHECK(tz_parse("TZxf", 4, "x", &tz, err, sizeof(err)) == -EINVAL);
	n = tzif(f, '2', tr, idx, 1, offs, dst, 2, "CET-1CEST,M3.5.0,M10.5.0/3");
	CHECK(tz_parse(f, n - 20, "x", &tz, err, sizeof(err)) == -EINVAL);
	int64_t bad[] = {200000, 100000};
	n = tzif(f, '2', bad, idx1, 2, offs1, dst1, 2, "");
	CHECK(tz_parse(f, n, "x", &tz, err, sizeof(err)) == -EINVAL);
	n = tzif(f, '3', tr, idx, 1, offs, dst, 2, "CET-1CEST,M13.5.0,M10.5.0/3");
	CHECK(tz_parse(f, n, "x", &tz, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "footer") != NULL);

	/* POSIX rules, RFC 8536's extensions: DST all year; a time past 24 h. */
	CHECK(tz_parse_posix("EST5EDT,0/0,J365/25", "x", &tz) == 0);
	if (tz) {
		CHECK(tz_offset(tz, utc(2026, 1, 1, 0, 0) / 1000) == -14400);
		CHECK(tz_offset(tz, utc(2026, 12, 31, 23, 59) / 1000) == -14400);
		CHECK(tz_offset(tz, utc(2027, 7, 1, 0, 0) / 1000) == -14400);
		tz_free(tz);
	}
	CHECK(tz_parse_posix("IST-2IDT,M3.4.4/26,M10.5.0", "x", &tz) == 0);
	if (tz) {
		/* Thursday 26:00 is Friday 2026-03-27 02:00 IST = 00:00 UTC. */
		CHECK(tz_offset(tz, utc(2026, 3, 27, 0, 0) / 1000 - 1) == 7200);
		CHECK(tz_offset(tz, utc(2026, 3, 27, 0, 0) / 1000) == 10800);
		const tz_t *jer = zone("Asia/Jerusalem");
		if (jer)
			CHECK(tz_offset(jer, utc(2026, 3, 27, 0, 0) / 1000) == 10800);
		tz_free(tz);
	}
	CHECK(tz_parse_posix("<+0330>-3:30", "x", &tz) == 0);
	if (tz) {
		CHECK(tz_offset(tz, 0) == 12600);
		tz_free(tz);
	}
	CHECK(tz_parse_posix("CET-1CEST,M3.5.0,M10.5.0/168", "x", &tz) == -EINVAL);
	CHECK(tz_parse_posix("CET-25", "x", &tz) == -EINVAL);
	CHECK(tz_parse_posix("C-1", "x", &tz) == -EINVAL);
}

/* ---- JSON ---- */

static void test_parse_canonical(void)
{
	const char *in = "{\"separation_minutes\": 45,"
			 " \"dayparts\": [{\"days\": [\"sun\", \"mon\"], \"from\": \"08:00\","
			 " \"to\": \"24:00\", \"playlist_id\": \"00000000000000A1\"}],"
			 " \"overrides\": [{\"date\": \"2026-12-24\", \"to_date\": \"2026-12-26\","
			 " \"closed\": true}, {\"date\": \"2026-12-31\", \"dayparts\": [{\"from\":"
			 " \"20:00\", \"to\": \"24:00\", \"playlist_id\": \"00000000000000b2\"}]}],"
			 " \"announcements\": [{\"every_minutes\": 30, \"from\": \"09:00\", \"to\":"
			 " \"18:00\", \"tracks\": [\"0000000000005001\"]},"
			 " {\"at\": [\"12:00\", \"09:00\"], \"days\": [\"fri\"], \"tracks\":"
			 " [\"0000000000005002\", \"0000000000005001\"]}]}";
	const char *want =
		"{\"dayparts\":[{\"days\":[\"mon\",\"sun\"],\"from\":\"08:00\",\"to\":\"24:00\","
		"\"playlist_id\":\"00000000000000a1\"}],\"overrides\":[{\"date\":\"2026-12-24\","
		"\"to_date\":\"2026-12-26\",\"closed\":true},{\"date\":\"2026-12-31\",\"dayparts\":"
		"[{\"from\":\"20:00\",\"to\":\"24:00\",\"playlist_id\":\"00000000000000b2\"}]}],"
		"\"announcements\":[{\"every_minutes\":30,\"from\":\"09:00\",\"to\":\"18:00\","
		"\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"],\"tracks\":"
		"[\"0000000000005001\"]},{\"at\":[\"09:00\",\"12:00\"],\"days\":[\"fri\"],"
		"\"tracks\":[\"0000000000005002\",\"0000000000005001\"]}],\"separation_minutes\":"
		"45}";
	struct schedule s, s2;
	char err[256], *j, *j2;
	int64_t ids[4];
	buf_t small;

	CHECK(parse(in, &s, err, sizeof(err)) == 0);
	CHECK(s.nparts == 1 && s.parts[0].days == (SCHED_MON | SCHED_SUN) &&
	      s.parts[0].from == 480 && s.parts[0].to == 1440 && s.parts[0].playlist == PL_A);
	CHECK(s.noverrides == 2 && s.overrides[0].closed &&
	      s.overrides[0].first == sched__days(2026, 12, 24) &&
	      s.overrides[0].last == sched__days(2026, 12, 26));
	CHECK(s.nann == 2 && s.ann[0].every == 30 && s.ann[1].nat == 2 && s.ann[1].at[0] == 540);
	CHECK(s.separation == 45);
	j = canonical(&s);
	CHECK_STR(j, want);
	CHECK(j && parse(j, &s2, err, sizeof(err)) == 0);
	j2 = canonical(&s2);
	CHECK_STR(j2, j);
	CHECK(schedule_playlists(&s, ids, 4) == 2 && ids[0] == PL_A && ids[1] == PL_B);
	CHECK(schedule_playlists(&s, ids, 1) == 2 && ids[0] == PL_A);
	buf_init(&small, 40);
	CHECK(schedule_json(&s, &small) == -1 && small.len == 0);
	buf_free(&small);
	free(j);
	free(j2);
	schedule_free(&s2);
	schedule_free(&s);

	/* The empty schedule, and the default separation. */
	CHECK(parse("{}", &s, err, sizeof(err)) == 0);
	j = canonical(&s);
	CHECK_STR(j, "{\"dayparts\":[],\"overrides\":[],\"announcements\":[],"
		     "\"separation_minutes\":60}");
	free(j);
	schedule_free(&s);
}

#define PART(days, from, to)                                                                       \
	"{\"days\": [" days "], \"from\": \"" from "\", \"to\": \"" to                             \
	"\", \"playlist_id\": \"00000000000000a1\"}"

static void test_parse_errors(void)
{
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "08:00", "11:00") "," PART(
			  "\"tue\"", "08:00", "11:00") "," PART("\"mon\", \"wed\"", "10:00",
								"12:00") "]}"),
		  "dayparts[2]: overlaps dayparts[0] on mon 10:00-11:00");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "25:00", "26:00") "]}"),
		  "dayparts[0].from: \"25:00\" is not a time (HH:MM, 00:00 to 23:59)");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "8:00", "11:00") "]}"),
		  "dayparts[0].from: \"8:00\" is not a time (HH:MM, 00:00 to 23:59)");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "08:00", "24:01") "]}"),
		  "dayparts[0].to: \"24:01\" is not a time (HH:MM, 00:00 to 24:00)");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "24:00", "24:00") "]}"),
		  "dayparts[0].from: \"24:00\" is not a time (HH:MM, 00:00 to 23:59)");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\"", "11:00", "08:00") "]}"),
		  "dayparts[0]: from 11:00 is not before to 08:00");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\", \"funday\"", "08:00", "11:00") "]}"),
		  "dayparts[0].days[1]: not a day (\"mon\" to \"sun\")");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("\"mon\", \"mon\"", "08:00", "11:00") "]}"),
		  "dayparts[0].days[1]: mon again");
	CHECK_STR(parse_err("{\"dayparts\": [" PART("", "08:00", "11:00") "]}"),
		  "dayparts[0].days: not a list of days (\"mon\" to \"sun\")");
	CHECK_STR(parse_err("{\"dayparts\": [{\"days\": [\"mon\"], \"from\": \"08:00\", \"to\":"
			    " \"09:00\", \"playlist_id\": \"00000000000000a1\", \"colour\": 1}]}"),
		  "dayparts[0]: unknown key \"colour\"");
	CHECK_STR(parse_err("{\"dayparts\": [{\"days\": [\"mon\"], \"from\": \"08:00\", \"to\":"
			    " \"09:00\", \"playlist_id\": \"a1\"}]}"),
		  "dayparts[0].playlist_id: not an id (16 hex digits)");
	CHECK_STR(parse_err("{\"dayparts\": [{\"days\": [\"mon\"], \"from\": \"08:00\","
			    " \"playlist_id\": \"00000000000000a1\"}]}"),
		  "dayparts[0].to: required");
	CHECK_STR(parse_err("{\"day_parts\": []}"), "unknown key \"day_parts\"");
	CHECK_STR(parse_err("{\"separation_minutes\": 721}"),
		  "separation_minutes: not a whole number from 0 to 720");
	CHECK_STR(parse_err("{\"separation_minutes\": 6.5}"),
		  "separation_minutes: not a whole number from 0 to 720");
	CHECK_STR(parse_err("[]"), "not a JSON object");
	CHECK(strncmp(parse_err("{\"dayparts\": "), "not JSON: ", 10) == 0);
	CHECK(strncmp(parse_err("{\"dayparts\": [], \"dayparts\": []}"), "not JSON: ", 10) == 0);
	{ /* not JSON, or not an object: a 400, not a 422 */
		struct schedule s;
		char err[256];

		CHECK(parse("{\"dayparts\": ", &s, err, sizeof(err)) == -EBADMSG);
		CHECK(parse("[]", &s, err, sizeof(err)) == -EBADMSG);
		CHECK(parse("{\"day_parts\": []}", &s, err, sizeof(err)) == -EINVAL);
	}
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-12-24\", \"to_date\":"
			    " \"2026-12-26\", \"closed\": true}, {\"date\": \"2026-12-26\","
			    " \"closed\": true}]}"),
		  "overrides[1]: dates overlap overrides[0] (2026-12-26)");
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-02-29\", \"closed\": true}]}"),
		  "overrides[0].date: not a date (YYYY-MM-DD, 1970 to 9999)");
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-12-24\", \"to_date\":"
			    " \"2026-12-23\", \"closed\": true}]}"),
		  "overrides[0].to_date: before date");
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-12-24\"}]}"),
		  "overrides[0]: neither closed nor dayparts");
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-12-24\", \"dayparts\": [{\"from\":"
			    " \"08:00\", \"to\": \"10:00\", \"playlist_id\": \"00000000000000a1\"},"
			    " {\"from\": \"09:00\", \"to\": \"11:00\", \"playlist_id\":"
			    " \"00000000000000a1\"}]}]}"),
		  "overrides[0].dayparts[1]: overlaps overrides[0].dayparts[0] at 09:00-10:00");
	CHECK_STR(parse_err("{\"overrides\": [{\"date\": \"2026-12-24\", \"dayparts\": [{\"days\":"
			    " [\"mon\"], \"from\": \"08:00\", \"to\": \"10:00\", \"playlist_id\":"
			    " \"00000000000000a1\"}]}]}"),
		  "overrides[0].dayparts[0]: unknown key \"days\"");
	CHECK_STR(parse_err("{\"announcements\": [{\"every_minutes\": 30, \"at\": [\"09:00\"],"
			    " \"tracks\": [\"0000000000005001\"]}]}"),
		  "announcements[0]: every_minutes or at, not both");
	CHECK_STR(parse_err("{\"announcements\": [{\"every_minutes\": 0,"
			    " \"tracks\": [\"0000000000005001\"]}]}"),
		  "announcements[0].every_minutes: not a whole number from 1 to 1440");
	CHECK_STR(parse_err("{\"announcements\": [{\"at\": [\"09:00\", \"09:00\"],"
			    " \"tracks\": [\"0000000000005001\"]}]}"),
		  "announcements[0].at[1]: repeats at[0]");
	CHECK_STR(parse_err("{\"announcements\": [{\"at\": [\"09:00\"], \"tracks\": []}]}"),
		  "announcements[0].tracks: empty");
	CHECK_STR(parse_err("{\"announcements\": [{\"at\": [\"09:00\"]}]}"),
		  "announcements[0].tracks: required");
}

/* ---- The queue ---- */

struct fixture {
	struct schedule s;
	struct sched_track *a, *b, spots[2];
	struct sched_pool pools[2];
	struct sched_input in;
};

static int fixture(struct fixture *f, const char *json, const char *zone_name, int na, int nb)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	if (parse(json, &f->s, err, sizeof(err)) != 0) {
		fprintf(stderr, "  parse: %s\n", err);
		return -1;
	}
	f->a = tracks(na, na / 2 > 0 ? na / 2 : 1, 0x1000);
	f->b = tracks(nb, nb / 2 > 0 ? nb / 2 : 1, 0x9000);
	f->pools[0] = (struct sched_pool){PL_A, true, f->a, na};
	f->pools[1] = (struct sched_pool){PL_B, true, f->b, nb};
	f->spots[0] = (struct sched_track){SPOT1, 0, 20000};
	f->spots[1] = (struct sched_track){SPOT2, 0, 30000};
	f->in = (struct sched_input){&f->s, zone(zone_name), 42, f->pools, 2, f->spots, 2};
	return f->in.tz ? 0 : -1;
}

static void fixture_free(struct fixture *f)
{
	schedule_free(&f->s);
	free(f->a);
	free(f->b);
}

static void check_contiguous(const struct sched_item *it, size_t n, int64_t from, int64_t to)
{
	CHECK(n > 0);
	if (n == 0)
		return;
	CHECK(it[0].start_ms == from);
	for (size_t i = 1; i < n; i++)
		if (it[i].start_ms != it[i - 1].start_ms + it[i - 1].duration_ms) {
			CHECK(it[i].start_ms == it[i - 1].start_ms + it[i - 1].duration_ms);
			break;
		}
	CHECK(it[n - 1].start_ms + it[n - 1].duration_ms == to);
}

/* A whole day's play (00:00-24:00) starts at local midnight and ends at
 * the next: 23 h and 25 h on the days of the changes; a morning part
 * starts at its local 08:00 on either side. */
static void check_dst_day(const char *zn, int64_t mid0, int64_t mid1, int64_t eight_before,
			  int64_t eight_on)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;

	if (fixture(&f,
		    "{\"dayparts\": [" PART(
			    "\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"", "00:00",
			    "24:00") "]}",
		    zn, 200, 0) < 0)
		return;
	CHECK(schedule_queue(&f.in, mid0, mid1, &it, &n) == 0);
	check_contiguous(it, n, mid0, mid1);
	free(it);
	fixture_free(&f);

	const char *morning = "{\"dayparts\": [{\"days\": [\"mon\",\"tue\",\"wed\",\"thu\","
			      "\"fri\",\"sat\",\"sun\"], \"from\": \"08:00\", \"to\": \"09:00\","
			      " \"playlist_id\": \"00000000000000a1\"}]}";
	if (fixture(&f, morning, zn, 200, 0) < 0)
		return;
	CHECK(schedule_queue(&f.in, mid0 - DAY_MS_T, mid1, &it, &n) == 0);
	CHECK(n > 2);
	if (n > 2) {
		size_t k = 0;
		CHECK(it[0].start_ms == eight_before);
		while (k < n && it[k].start_ms < mid0)
			k++;
		CHECK(k < n && it[k].start_ms == eight_on);
	}
	free(it);
	fixture_free(&f);
}

static void test_dst(void)
{
	/* Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 -> 02:00. */
	check_dst_day("Europe/Berlin", utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0),
		      utc(2026, 3, 28, 7, 0), utc(2026, 3, 29, 6, 0));
	check_dst_day("Europe/Berlin", utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0),
		      utc(2026, 10, 24, 6, 0), utc(2026, 10, 25, 7, 0));
	/* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 -> 01:00. */
	check_dst_day("America/New_York", utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0),
		      utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0));
	check_dst_day("America/New_York", utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 5, 0),
		      utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 13, 0));
	CHECK(utc(2026, 3, 29, 22, 0) - utc(2026, 3, 28, 23, 0) == 23 * HOUR_MS);
	CHECK(utc(2026, 10, 25, 23, 0) - utc(2026, 10, 24, 22, 0) == 25 * HOUR_MS);
}

#define ALL "\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\""

static void test_overrides(void)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;
	const char *json = "{\"dayparts\": [" PART(
		ALL, "08:00",
		"12:00") "], \"overrides\": [{\"date\":"
			 " \"2026-12-24\", \"to_date\": \"2026-12-25\", \"closed\": true}, "
			 "{\"date\":"
			 " \"2026-12-31\", \"dayparts\": [{\"from\": \"20:00\", \"to\": \"22:00\","
			 " \"playlist_id\": \"00000000000000b2\"}]}]}";

	if (fixture(&f, json, "UTC", 100, 100) < 0)
		return;
	/* Closed on the 24th and 25th, open again on the 26th. */
	CHECK(schedule_queue(&f.in, utc(2026, 12, 23, 0, 0), utc(2026, 12, 27, 0, 0), &it, &n) ==
	      0);
	bool open23 = false, open26 = false, closed = true;
	for (size_t i = 0; i < n; i++) {
		if (it[i].start_ms < utc(2026, 12, 24, 0, 0))
			open23 = true;
		else if (it[i].start_ms < utc(2026, 12, 26, 0, 0))
			closed = false;
		else
			open26 = true;
	}
	CHECK(open23 && open26 && closed);
	free(it);
	/* The 31st plays B from 20:00 to 22:00 (soft end) and nothing else. */
	CHECK(schedule_queue(&f.in, utc(2026, 12, 31, 0, 0), utc(2027, 1, 1, 0, 0), &it, &n) == 0);
	CHECK(n > 10);
	if (n > 0) {
		CHECK(it[0].start_ms == utc(2026, 12, 31, 20, 0));
		CHECK(it[n - 1].start_ms < utc(2026, 12, 31, 22, 0));
		CHECK(it[n - 1].start_ms + it[n - 1].duration_ms >= utc(2026, 12, 31, 22, 0));
	}
	for (size_t i = 0; i < n; i++)
		if (it[i].playlist != PL_B) {
			CHECK(it[i].playlist == PL_B);
			break;
		}
	free(it);
	fixture_free(&f);
}

/* No track or artist again within sep minutes of its last end. */
static int separation_breaks(const struct sched_item *it, size_t n, const struct sched_track *t,
			     int nt, int sep)
{
	int breaks = 0;

	for (size_t i = 0; i < n; i++) {
		const struct sched_track *x = NULL;
		for (int k = 0; k < nt; k++)
			if (t[k].id == it[i].track)
				x = &t[k];
		for (size_t j = 0; j < i && x; j++) {
			const struct sched_track *y = NULL;
			for (int k = 0; k < nt; k++)
				if (t[k].id == it[j].track)
					y = &t[k];
			if (!y || (y->id != x->id && y->artist != x->artist))
				continue;
			if (it[i].start_ms - (it[j].start_ms + it[j].duration_ms) < sep * MIN_MS)
				breaks++;
		}
	}
	return breaks;
}

static void test_separation(void)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;
	char err[256];
	const char *json =
		"{\"separation_minutes\": 60, \"dayparts\": [" PART(ALL, "08:00", "20:00") "]}";

	/* 60 tracks by 30 artists: every artist's pair is 2 tracks, the pool
	 * holds 3 hours; the separation is kept, nothing relaxed. */
	if (fixture(&f, json, "Europe/Berlin", 60, 0) < 0)
		return;
	CHECK(schedule_queue(&f.in, utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0), &it, &n) == 0);
	CHECK(n > 150);
	CHECK(separation_breaks(it, n, f.a, 60, 60) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(!it[i].relaxed);
	free(it);
	CHECK(schedule_check(&f.in, err, sizeof(err)) == 0);
	fixture_free(&f);

	/* 3 tracks by 2 artists (11 minutes): impossible; picks are relaxed
	 * and schedule_check says why. */
	if (fixture(&f, json, "Europe/Berlin", 3, 0) < 0)
		return;
	f.a[0].duration_ms = 200000;
	f.a[1].duration_ms = 220000;
	f.a[2].duration_ms = 240000;
	f.a[1].artist = f.a[0].artist + 1;
	CHECK(schedule_queue(&f.in, utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0), &it, &n) == 0);
	size_t relaxed = 0;
	for (size_t i = 0; i < n; i++)
		relaxed += it[i].relaxed;
	CHECK(relaxed > 0 && n > 100);
	/* Relaxed picks still spread: never the same track twice running. */
	for (size_t i = 1; i < n; i++)
		CHECK(it[i].track != it[i - 1].track);
	free(it);
	CHECK(schedule_check(&f.in, err, sizeof(err)) == -EINVAL);
	CHECK_STR(err, "dayparts[0] (mon,tue,wed,thu,fri,sat,sun 08:00-20:00): playlist "
		       "00000000000000a1 has 3 tracks by 2 artists, 11 minutes: not enough for a "
		       "60-minute separation");
	/* With no separation, nothing is relaxed. */
	f.s.separation = 0;
	CHECK(schedule_check(&f.in, err, sizeof(err)) == 0);
	f.s.separation = 60;
	/* An empty playlist, and one that does not exist. */
	f.pools[0].n = 0;
	CHECK(schedule_check(&f.in, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "playlist 00000000000000a1 has no playable tracks") != NULL);
	f.in.npools = 0;
	CHECK(schedule_check(&f.in, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "no playlist 00000000000000a1") != NULL);
	CHECK(schedule_queue(&f.in, utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0), &it, &n) == 0);
	CHECK(n == 0); /* silent */
	free(it);
	fixture_free(&f);
}

static void test_announcements(void)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;
	/* Every 30 minutes 09:00-12:00 (SPOT1, then the missing 0x5999, skipped);
	 * at 10:15 and 12:40 (SPOT2), in a 08:00-13:00 part. */
	const char *json = "{\"dayparts\": [" PART(
		ALL, "08:00",
		"13:00") "],"
			 " \"announcements\": [{\"every_minutes\": 30, \"from\": \"09:00\","
			 " \"to\": \"12:00\", \"tracks\": [\"0000000000005001\","
			 " \"0000000000005999\"]}, {\"at\": [\"12:40\", \"10:15\"], \"tracks\":"
			 " [\"0000000000005002\"]}, {\"at\": [\"07:00\"], \"tracks\":"
			 " [\"0000000000005002\"]}]}";
	int64_t due1[] = {9 * 60, 9 * 60 + 30, 10 * 60, 10 * 60 + 30, 11 * 60, 11 * 60 + 30};
	int64_t due2[] = {10 * 60 + 15, 12 * 60 + 40};
	int n1 = 0, n2 = 0;

	if (fixture(&f, json, "America/New_York", 100, 0) < 0)
		return;
	int64_t day0 = utc(2026, 7, 1, 4, 0); /* local midnight, EDT */
	CHECK(schedule_queue(&f.in, day0, day0 + DAY_MS_T, &it, &n) == 0);
	check_contiguous(it, n, day0 + 8 * HOUR_MS, it[n - 1].start_ms + it[n - 1].duration_ms);
	for (size_t i = 0; i < n; i++) {
		if (!it[i].announcement) {
			CHECK(it[i].playlist == PL_A);
			continue;
		}
		CHECK(it[i].playlist == 0 && i > 0);
		int64_t due;
		if (it[i].track == SPOT1) {
			CHECK(it[i].duration_ms == 20000);
			due = n1 < 6 ? day0 + due1[n1] * MIN_MS : -1;
			n1++;
		} else {
			CHECK(it[i].track == SPOT2 && it[i].duration_ms == 30000);
			due = n2 < 2 ? day0 + due2[n2] * MIN_MS : -1;
			n2++;
		}
		/* At the first boundary at or after its time: the track before
		 * it started before the due time. */
		CHECK(it[i].start_ms >= due);
		CHECK(i > 0 && it[i - 1].start_ms < due);
	}
	CHECK(n1 == 6); /* every 30 min from 09:00, before 12:00 */
	CHECK(n2 == 2); /* 10:15, 12:40; 07:00 is before the zone plays: dropped */
	free(it);

	/* A window from 10:00 sees the same spots as the day. */
	struct sched_item *w;
	size_t nw;
	CHECK(schedule_queue(&f.in, day0, day0 + DAY_MS_T, &it, &n) == 0);
	CHECK(schedule_queue(&f.in, day0 + 10 * HOUR_MS, day0 + 11 * HOUR_MS, &w, &nw) == 0);
	size_t k = 0;
	while (k < n && it[k].start_ms + it[k].duration_ms <= day0 + 10 * HOUR_MS)
		k++;
	CHECK(nw > 0 && k + nw <= n && memcmp(&it[k], w, nw * sizeof(*w)) == 0);
	free(w);
	free(it);
	fixture_free(&f);
}

static char *queue_text(const char *json, int64_t from, int64_t to)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;
	char *s;

	if (fixture(&f, json, "Europe/Berlin", 500, 50) < 0)
		return NULL;
	if (schedule_queue(&f.in, from, to, &it, &n) != 0) {
		fixture_free(&f);
		return NULL;
	}
	s = serialize(it, n);
	free(it);
	fixture_free(&f);
	return s;
}

static void test_determinism(void)
{
	/* The same schedule written two ways (key order, spacing, hex case). */
	const char *j1 = "{\"dayparts\": [" PART(
		"\"mon\",\"tue\"", "07:00",
		"12:00") ","
			 " {\"days\": [\"mon\"], \"from\": \"12:00\", \"to\": \"18:00\","
			 " \"playlist_id\": \"00000000000000b2\"}], \"announcements\":"
			 " [{\"every_minutes\": 45, \"tracks\": [\"0000000000005001\"]}],"
			 " \"separation_minutes\": 30}";
	const char *j2 = "{\"separation_minutes\":30,\"announcements\":[{\"tracks\":"
			 "[\"0000000000005001\"],\"every_minutes\":45}],\"dayparts\":[{"
			 "\"playlist_id\":\"00000000000000A1\",\"to\":\"12:00\",\"from\":\"07:00\","
			 "\"days\":[\"tue\",\"mon\"]},{\"playlist_id\":\"00000000000000B2\","
			 "\"from\":\"12:00\",\"to\":\"18:00\",\"days\":[\"mon\"]}]}";
	struct schedule s1, s2;
	char err[256];
	int64_t from = utc(2026, 6, 1, 0, 0), to = utc(2026, 6, 9, 0, 0); /* Mon..Mon */

	CHECK(parse(j1, &s1, err, sizeof(err)) == 0);
	CHECK(parse(j2, &s2, err, sizeof(err)) == 0);
	char *c1 = canonical(&s1), *c2 = canonical(&s2);
	CHECK_STR(c1, c2);
	free(c1);
	free(c2);
	schedule_free(&s1);
	schedule_free(&s2);

	char *q1 = queue_text(j1, from, to), *q2 = queue_text(j2, from, to);
	CHECK(q1 && strlen(q1) > 1000);
	CHECK_STR(q1, q2);
	free(q2);
	q2 = queue_text(j1, from, to); /* and again */
	CHECK_STR(q1, q2);
	free(q1);
	free(q2);

	/* Another zone id shuffles otherwise; another date too. */
	struct fixture f;
	struct sched_item *a, *b;
	size_t na, nb;
	if (fixture(&f, j1, "Europe/Berlin", 500, 50) < 0)
		return;
	CHECK(schedule_queue(&f.in, from, from + DAY_MS_T, &a, &na) == 0);
	f.in.zone = 43;
	CHECK(schedule_queue(&f.in, from, from + DAY_MS_T, &b, &nb) == 0);
	CHECK(na > 5 && nb > 5 && a[0].start_ms == b[0].start_ms &&
	      (a[0].track != b[0].track || a[1].track != b[1].track || a[2].track != b[2].track));
	free(a);
	free(b);
	fixture_free(&f);
}

/* Windows are slices of the day plans: any window's items are the full
 * days' items that overlap it. */
static void test_windows(void)
{
	struct fixture f;
	struct sched_item *day, *w;
	size_t nd, nw;
	const char *json = "{\"dayparts\": [" PART(
		ALL, "06:00",
		"11:00") ","
			 " {\"days\": [" ALL "], \"from\": \"11:00\", \"to\": \"24:00\","
			 " \"playlist_id\": \"00000000000000b2\"}], \"announcements\":"
			 " [{\"every_minutes\": 20, \"tracks\": [\"0000000000005001\","
			 " \"0000000000005002\"]}]}";

	if (fixture(&f, json, "Europe/Berlin", 300, 40) < 0)
		return;
	int64_t d0 = utc(2026, 10, 24, 22, 0), d2 = utc(2026, 10, 26, 23, 0); /* 25 h + 24 h */
	CHECK(schedule_queue(&f.in, d0, d2, &day, &nd) == 0);
	CHECK(nd > 300);
	int64_t wins[][2] = {
		{utc(2026, 10, 25, 9, 17), utc(2026, 10, 25, 10, 43)},
		{utc(2026, 10, 25, 9, 55), utc(2026, 10, 25, 10, 5)},  /* the parts' boundary */
		{utc(2026, 10, 25, 22, 30), utc(2026, 10, 26, 0, 30)}, /* across midnight */
		{utc(2026, 10, 25, 12, 0), utc(2026, 10, 25, 12, 0) + 1},
		{d0, d2},
	};
	for (size_t k = 0; k < sizeof(wins) / sizeof(wins[0]); k++) {
		size_t first = 0, last;
		CHECK(schedule_queue(&f.in, wins[k][0], wins[k][1], &w, &nw) == 0);
		while (first < nd && day[first].start_ms + day[first].duration_ms <= wins[k][0])
			first++;
		last = first;
		while (last < nd && day[last].start_ms < wins[k][1])
			last++;
		if (nw != last - first || nw == 0)
			fprintf(stderr, "  window %zu: %zu items, the day's slice %zu\n", k, nw,
				last - first);
		CHECK(nw == last - first && nw > 0);
		CHECK(nw == last - first && memcmp(&day[first], w, nw * sizeof(*w)) == 0);
		free(w);
	}
	/* Each day ends at local midnight exactly (the cut). */
	for (size_t i = 0; i < nd; i++)
		if (day[i].start_ms < utc(2026, 10, 25, 23, 0))
			CHECK(day[i].start_ms + day[i].duration_ms <= utc(2026, 10, 25, 23, 0));
	free(day);

	/* Bounds. */
	CHECK(schedule_queue(&f.in, d0, d0 + 8 * DAY_MS_T + 1, &w, &nw) == -E2BIG);
	CHECK(schedule_queue(&f.in, d0, d0 + 8 * DAY_MS_T, &w, &nw) == 0);
	free(w);
	CHECK(schedule_queue(&f.in, -1, d0, &w, &nw) == -EINVAL);
	CHECK(schedule_queue(&f.in, d0, d0 - 1, &w, &nw) == -EINVAL);
	CHECK(schedule_queue(&f.in, 253402300800000LL - HOUR_MS, 253402300800001LL, &w, &nw) ==
	      -EINVAL);
	CHECK(schedule_queue(&f.in, 253402300800000LL - HOUR_MS, 253402300800000LL, &w, &nw) == 0);
	free(w);
	CHECK(schedule_queue(&f.in, 0, HOUR_MS, &w, &nw) == 0); /* 1970 */
	free(w);
	fixture_free(&f);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* An hour at the end of a day over a 10,000-track pool: the day's plan
 * up to it is made each time (the worst hour). */
static void test_perf(void)
{
	struct fixture f;
	struct sched_item *it;
	size_t n;
	const char *json = "{\"dayparts\": [" PART(ALL, "00:00", "24:00") "]}";
	int reps = 50;

	if (fixture(&f, json, "Europe/Berlin", 10000, 0) < 0)
		return;
	int64_t from = utc(2026, 6, 1, 20, 0);
	double t0 = now_us();
	for (int r = 0; r < reps; r++) {
		CHECK(schedule_queue(&f.in, from, from + HOUR_MS, &it, &n) == 0);
		free(it);
	}
	double worst = (now_us() - t0) / reps;
	from = utc(2026, 6, 1, 0, 0) - 2 * HOUR_MS; /* the day's first hour */
	t0 = now_us();
	for (int r = 0; r < reps; r++) {
		CHECK(schedule_queue(&f.in, from, from + HOUR_MS, &it, &n) == 0);
		free(it);
	}
	double first = (now_us() - t0) / reps;
	printf("# perf: an hour of queue over 10,000 tracks: %.0f us (the day's last), %.0f us "
	       "(its first)\n",
	       worst, first);
	CHECK(worst < 50000); /* generous: sanitizer builds, a shared machine */
	fixture_free(&f);
}

int main(void)
{
	setenv("TZDIR", "/usr/share/zoneinfo", 1);
	TEST_RUN(test_tz_offsets);
	TEST_RUN(test_tz_files);
	TEST_RUN(test_parse_canonical);
	TEST_RUN(test_parse_errors);
	TEST_RUN(test_dst);
	TEST_RUN(test_overrides);
	TEST_RUN(test_separation);
	TEST_RUN(test_announcements);
	TEST_RUN(test_determinism);
	TEST_RUN(test_windows);
	TEST_RUN(test_perf);
	TEST_EXIT();
}
