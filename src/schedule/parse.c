/*
 * A zone's schedule as JSON (see schedule.h): parsed strictly (jansson,
 * duplicate keys refused), every rule checked with the field named, and
 * written back canonically: keys in one order, ids lowercase, times
 * "HH:MM", so what is stored and compared is the same bytes for the same
 * schedule.
 *
 * This file includes jansson, whose json_t clashes with util/json.h.
 */
#include "schedule/schedule.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule/sched_int.h"
#include "util/xalloc.h"

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- Shared with schedule.c ---- */

int64_t sched__days(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

void sched__date_str(int32_t day, char *out)
{
	int64_t z = (int64_t)day + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	int64_t y = yoe + era * 400 + (m <= 2);

	unsigned yy = (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);

	/* By hand: printf's %d would make the compiler fear for 11 bytes. */
	out[0] = (char)('0' + yy / 1000);
	out[1] = (char)('0' + yy / 100 % 10);
	out[2] = (char)('0' + yy / 10 % 10);
	out[3] = (char)('0' + yy % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = 0;
}

void sched__time_str(int minute, char *out)
{
	if (minute < 0 || minute > 1440)
		minute = 0;
	snprintf(out, 6, "%02d:%02d", minute / 60, minute % 60);
}

void sched__days_str(unsigned days, char *out, size_t len)
{
	size_t o = 0;

	if (len)
		out[0] = 0;
	for (int i = 0; i < 7; i++)
		if (days & (1u << i) && o + 5 < len)
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", day_names[i]);
}

unsigned sched__weekday(int32_t day)
{
	/* 1970-01-01 was a Thursday: day 0 is bit 3. */
	return 1u << (int)((((int64_t)day + 3) % 7 + 7) % 7);
}

void sched__id_str(int64_t id, char *out)
{
	snprintf(out, 17, "%016llx", (unsigned long long)id);
}

/* ---- Parsing ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Where an error is: "dayparts[2].from", or "" at the top. */
struct at {
	char s[128];
};

static struct at at_index(const char *parent, const char *key, size_t i)
{
	struct at a;

	snprintf(a.s, sizeof(a.s), "%.60s%s%.20s[%zu]", parent, *parent ? "." : "", key, i);
	return a;
}

static struct at at_key(const char *parent, const char *key)
{
	struct at a;

	snprintf(a.s, sizeof(a.s), "%.60s%s%.20s", parent, *parent ? "." : "", key);
	return a;
}

static int check_keys(json_t *o, const char *at, const char *const *allowed, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		bool ok = false;
		for (const char *const *k = allowed; *k && !ok; k++)
			ok = strcmp(key, *k) == 0;
		if (!ok)
			return fail(err, errlen, "%s%sunknown key \"%.40s\"", at, *at ? ": " : "",
				    key);
	}
	return 0;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "HH:MM" of 00:00-23:59, or 24:00 when end is allowed. */
static int time_value(json_t *v, bool end, int *out)
{
	const char *s = json_string_value(v);
	int h, m;

	if (!s || json_string_length(v) != 5 || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
		return -1;
	*out = h * 60 + m;
	return 0;
}

static int get_time(json_t *o, const char *key, const char *at, bool end, bool required, int *out,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	struct at a = at_key(at, key);

	if (!v) {
		if (required)
			return fail(err, errlen, "%s: required", a.s);
		return 0;
	}
	if (time_value(v, end, out) < 0) {
		if (!json_is_string(v))
			return fail(err, errlen, "%s: not a string", a.s);
		return fail(err, errlen, "%s: \"%.16s\" is not a time (HH:MM, 00:00 to %s)", a.s,
			    json_string_value(v), end ? "24:00" : "23:59");
	}
	return 0;
}

static int id_value(json_t *v, int64_t *out)
{
	const char *s = json_string_value(v);
	uint64_t id = 0;

	if (!s || json_string_length(v) != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		id = id << 4 | (uint64_t)d;
	}
	if (id == 0)
		return -1; /* 0 is no id: an item's playlist 0 is an announcement */
	*out = (int64_t)id;
	return 0;
}

static int get_id(json_t *o, const char *key, const char *at, int64_t *out, char *err,
		  size_t errlen)
{
	json_t *v = json_object_get(o, key);
	struct at a = at_key(at, key);

	if (!v)
		return fail(err, errlen, "%s: required", a.s);
	if (id_value(v, out) < 0)
		return fail(err, errlen, "%s: not an id (16 hex digits)", a.s);
	return 0;
}

static int get_days(json_t *o, const char *at, bool required, unsigned *out, char *err,
		    size_t errlen)
{
	json_t *v = json_object_get(o, "days"), *d;
	struct at a = at_key(at, "days");
	size_t i;

	if (!v) {
		if (required)
			return fail(err, errlen, "%s: required", a.s);
		*out = SCHED_ALL_DAYS;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(err, errlen, "%s: not a list of days (\"mon\" to \"sun\")", a.s);
	*out = 0;
	json_array_foreach(v, i, d)
	{
		const char *s = json_string_value(d);
		int k = 0;
		while (s && k < 7 && strcmp(s, day_names[k]) != 0)
			k++;
		if (!s || k == 7)
			return fail(err, errlen, "%s[%zu]: not a day (\"mon\" to \"sun\")", a.s, i);
		if (*out & (1u << k))
			return fail(err, errlen, "%s[%zu]: %s again", a.s, i, day_names[k]);
		*out |= 1u << k;
	}
	return 0;
}

/* "YYYY-MM-DD", 1970-01-01 to 9999-12-31. */
static int date_value(json_t *v, int32_t *out)
{
	const char *s = json_string_value(v);
	int y, m, d;

	if (!s || json_string_length(v) != 10 || !digits(s, 4) || s[4] != '-' ||
	    !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
		return -1;
	y = atoi(s);
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return -1;
	if (d >
	    (int)(sched__days(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - sched__days(y, m, 1)))
		return -1;
	*out = (int32_t)sched__days(y, m, d);
	return 0;
}

static int get_date(json_t *o, const char *key, const char *at, bool required, int32_t *out,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	struct at a = at_key(at, key);

	if (!v) {
		if (required)
			return fail(err, errlen, "%s: required", a.s);
		return 1;
	}
	if (date_value(v, out) < 0)
		return fail(err, errlen, "%s: not a date (YYYY-MM-DD, 1970 to 9999)", a.s);
	return 0;
}

static int get_int(json_t *o, const char *key, const char *at, int min, int max, int *out,
		   char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	struct at a = at_key(at, key);
	json_int_t n;

	if (!v)
		return 1;
	n = json_integer_value(v);
	if (!json_is_integer(v) || n < min || n > max)
		return fail(err, errlen, "%s: not a whole number from %d to %d", a.s, min, max);
	*out = (int)n;
	return 0;
}

static json_t *get_array(json_t *o, const char *key, const char *at, size_t max, char *err,
			 size_t errlen, int *rc)
{
	json_t *v = json_object_get(o, key);
	struct at a = at_key(at, key);

	*rc = 0;
	if (!v)
		return NULL;
	if (!json_is_array(v))
		*rc = fail(err, errlen, "%s: not a list", a.s);
	else if (json_array_size(v) > max)
		*rc = fail(err, errlen, "%s: more than %zu", a.s, max);
	return *rc ? NULL : v;
}

/* A daypart object; weekly ones have days, an override's do not. */
static int parse_part(json_t *v, const char *at, bool weekly, struct sched_part *p, char *err,
		      size_t errlen)
{
	static const char *const weekly_keys[] = {"days", "from", "to", "playlist_id", NULL};
	static const char *const override_keys[] = {"from", "to", "playlist_id", NULL};
	int rc;

	if (!json_is_object(v))
		return fail(err, errlen, "%s: not an object", at);
	rc = check_keys(v, at, weekly ? weekly_keys : override_keys, err, errlen);
	if (rc < 0)
		return rc;
	p->days = SCHED_ALL_DAYS;
	if (weekly && (rc = get_days(v, at, true, &p->days, err, errlen)) < 0)
		return rc;
	if ((rc = get_time(v, "from", at, false, true, &p->from, err, errlen)) < 0 ||
	    (rc = get_time(v, "to", at, true, true, &p->to, err, errlen)) < 0)
		return rc;
	if (p->from >= p->to) {
		char f[6], t[6];
		sched__time_str(p->from, f);
		sched__time_str(p->to, t);
		return fail(err, errlen, "%s: from %s is not before to %s", at, f, t);
	}
	return get_id(v, "playlist_id", at, &p->playlist, err, errlen);
}

/* The dayparts list at key of o into *parts, checked for overlaps. */
static int parse_parts(json_t *o, const char *at, bool weekly, struct sched_part **parts,
		       int *nparts, char *err, size_t errlen)
{
	json_t *arr, *v;
	size_t i;
	int rc;

	arr = get_array(o, "dayparts", at, SCHED_PARTS_MAX, err, errlen, &rc);
	if (!arr)
		return rc;
	*parts = xcalloc(json_array_size(arr) + 1, sizeof(**parts));
	json_array_foreach(arr, i, v)
	{
		struct at a = at_index(at, "dayparts", i);
		struct sched_part *p = &(*parts)[i];
		if ((rc = parse_part(v, a.s, weekly, p, err, errlen)) < 0)
			return rc;
		*nparts = (int)i + 1;
		for (size_t j = 0; j < i; j++) {
			const struct sched_part *q = &(*parts)[j];
			unsigned common = p->days & q->days;
			char f[6], t[6], d[32];
			if (!common || p->from >= q->to || q->from >= p->to)
				continue;
			sched__time_str(p->from > q->from ? p->from : q->from, f);
			sched__time_str(p->to < q->to ? p->to : q->to, t);
			sched__days_str(common & -common, d, sizeof(d));
			struct at b = at_index(at, "dayparts", j);
			if (weekly)
				return fail(err, errlen, "%s: overlaps %s on %s %s-%s", a.s, b.s, d,
					    f, t);
			return fail(err, errlen, "%s: overlaps %s at %s-%s", a.s, b.s, f, t);
		}
	}
	return 0;
}

static int parse_override(json_t *v, const char *at, struct sched_override *ov, char *err,
			  size_t errlen)
{
	static const char *const keys[] = {"date", "to_date", "closed", "dayparts", NULL};
	json_t *closed;
	int rc;

	if (!json_is_object(v))
		return fail(err, errlen, "%s: not an object", at);
	if ((rc = check_keys(v, at, keys, err, errlen)) < 0)
		return rc;
	if ((rc = get_date(v, "date", at, true, &ov->first, err, errlen)) < 0)
		return rc;
	rc = get_date(v, "to_date", at, false, &ov->last, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 1)
		ov->last = ov->first;
	else if (ov->last < ov->first)
		return fail(err, errlen, "%s.to_date: before date", at);
	closed = json_object_get(v, "closed");
	if (closed && !json_is_boolean(closed))
		return fail(err, errlen, "%s.closed: not true or false", at);
	ov->closed = json_is_true(closed);
	if (ov->closed) {
		if (json_object_get(v, "dayparts"))
			return fail(err, errlen, "%s: closed, and dayparts given", at);
		return 0;
	}
	if (!json_object_get(v, "dayparts"))
		return fail(err, errlen, "%s: neither closed nor dayparts", at);
	if ((rc = parse_parts(v, at, false, &ov->parts, &ov->nparts, err, errlen)) < 0)
		return rc;
	if (ov->nparts == 0)
		return fail(err, errlen, "%s.dayparts: empty (a date with none is closed: true)",
			    at);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static int parse_announcement(json_t *v, const char *at, struct sched_announcement *an, char *err,
			      size_t errlen)
{
	static const char *const keys[] = {"every_minutes", "at",     "from", "to",
					   "days",          "tracks", NULL};
	json_t *arr, *e;
	size_t i;
	int rc;

	if (!json_is_object(v))
		return fail(err, errlen, "%s: not an object", at);
	if ((rc = check_keys(v, at, keys, err, errlen)) < 0)
		return rc;
	if ((rc = get_days(v, at, false, &an->days, err, errlen)) < 0)
		return rc;
	bool every = json_object_get(v, "every_minutes") != NULL;
	bool fixed = json_object_get(v, "at") != NULL;
	if (every == fixed)
		return fail(err, errlen, "%s: every_minutes or at, %s", at,
			    every ? "not both" : "one is required");
	an->from = 0;
	an->to = 1440;
	if (every) {
		if ((rc = get_int(v, "every_minutes", at, 1, 1440, &an->every, err, errlen)) < 0)
			return rc;
		if ((rc = get_time(v, "from", at, false, false, &an->from, err, errlen)) < 0 ||
		    (rc = get_time(v, "to", at, true, false, &an->to, err, errlen)) < 0)
			return rc;
		if (an->from >= an->to) {
			char f[6], t[6];
			sched__time_str(an->from, f);
			sched__time_str(an->to, t);
			return fail(err, errlen, "%s: from %s is not before to %s", at, f, t);
		}
	} else {
		if (json_object_get(v, "from") || json_object_get(v, "to"))
			return fail(err, errlen, "%s: from and to go with every_minutes, not at",
				    at);
		arr = get_array(v, "at", at, SCHED_AT_MAX, err, errlen, &rc);
		if (!arr)
			return rc;
		if (json_array_size(arr) == 0)
			return fail(err, errlen, "%s.at: empty", at);
		json_array_foreach(arr, i, e)
		{
			if (time_value(e, false, &an->at[i]) < 0)
				return fail(err, errlen,
					    "%s.at[%zu]: not a time (HH:MM, 00:00 to 23:59)", at,
					    i);
			for (size_t j = 0; j < i; j++)
				if (an->at[j] == an->at[i])
					return fail(err, errlen, "%s.at[%zu]: repeats at[%zu]", at,
						    i, j);
			an->nat = (int)i + 1;
		}
		/* In order of the day: the planner walks them so. */
		qsort(an->at, (size_t)an->nat, sizeof(an->at[0]), cmp_int);
	}
	if (!json_object_get(v, "tracks"))
		return fail(err, errlen, "%s.tracks: required", at);
	arr = get_array(v, "tracks", at, SCHED_SPOTS_MAX, err, errlen, &rc);
	if (!arr)
		return rc;
	if (json_array_size(arr) == 0)
		return fail(err, errlen, "%s.tracks: empty", at);
	json_array_foreach(arr, i, e)
	{
		if (id_value(e, &an->tracks[i]) < 0)
			return fail(err, errlen, "%s.tracks[%zu]: not an id (16 hex digits)", at,
				    i);
		an->ntracks = (int)i + 1;
	}
	return 0;
}

static int parse_root(json_t *root, struct schedule *out, char *err, size_t errlen)
{
	static const char *const keys[] = {"dayparts", "overrides", "announcements",
					   "separation_minutes", NULL};
	json_t *arr, *v;
	size_t i;
	int rc;

	if (!json_is_object(root)) {
		fail(err, errlen, "not a JSON object");
		return -EBADMSG;
	}
	if ((rc = check_keys(root, "", keys, err, errlen)) < 0)
		return rc;
	if ((rc = parse_parts(root, "", true, &out->parts, &out->nparts, err, errlen)) < 0)
		return rc;

	arr = get_array(root, "overrides", "", SCHED_OVERRIDES_MAX, err, errlen, &rc);
	if (rc < 0)
		return rc;
	if (arr) {
		out->overrides = xcalloc(json_array_size(arr) + 1, sizeof(*out->overrides));
		json_array_foreach(arr, i, v)
		{
			struct at a = at_index("", "overrides", i);
			struct sched_override *ov = &out->overrides[i];
			out->noverrides = (int)i + 1;
			if ((rc = parse_override(v, a.s, ov, err, errlen)) < 0)
				return rc;
			for (size_t j = 0; j < i; j++) {
				const struct sched_override *o = &out->overrides[j];
				char d[11];
				if (ov->first > o->last || o->first > ov->last)
					continue;
				sched__date_str(ov->first > o->first ? ov->first : o->first, d);
				return fail(err, errlen, "%s: dates overlap overrides[%zu] (%s)",
					    a.s, j, d);
			}
		}
	}

	arr = get_array(root, "announcements", "", SCHED_ANNOUNCE_MAX, err, errlen, &rc);
	if (rc < 0)
		return rc;
	if (arr) {
		out->ann = xcalloc(json_array_size(arr) + 1, sizeof(*out->ann));
		json_array_foreach(arr, i, v)
		{
			struct at a = at_index("", "announcements", i);
			out->nann = (int)i + 1;
			if ((rc = parse_announcement(v, a.s, &out->ann[i], err, errlen)) < 0)
				return rc;
		}
	}

	out->separation = SCHED_SEPARATION_DEFAULT;
	rc = get_int(root, "separation_minutes", "", 0, SCHED_SEPARATION_MAX, &out->separation, err,
		     errlen);
	return rc < 0 ? rc : 0;
}

int schedule_parse(const void *json, size_t len, struct schedule *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = 0;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		fail(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
		return -EBADMSG;
	}
	rc = parse_root(root, out, err, errlen);
	json_decref(root);
	if (rc < 0)
		schedule_free(out);
	return rc;
}

void schedule_free(struct schedule *s)
{
	if (!s)
		return;
	free(s->parts);
	for (int i = 0; i < s->noverrides; i++)
		free(s->overrides[i].parts);
	free(s->overrides);
	free(s->ann);
	memset(s, 0, sizeof(*s));
}

/* ---- Canonical JSON ---- */

static int put_days(buf_t *b, unsigned days)
{
	int rc = buf_appends(b, "\"days\":[");

	for (int i = 0, n = 0; i < 7; i++)
		if (days & (1u << i))
			rc |= buf_printf(b, "%s\"%s\"", n++ ? "," : "", day_names[i]);
	return rc | buf_appends(b, "]");
}

static int put_parts(buf_t *b, const struct sched_part *parts, int n, bool weekly)
{
	int rc = buf_appends(b, "\"dayparts\":[");

	for (int i = 0; i < n; i++) {
		const struct sched_part *p = &parts[i];
		char f[6], t[6], id[17];
		sched__time_str(p->from, f);
		sched__time_str(p->to, t);
		sched__id_str(p->playlist, id);
		rc |= buf_appends(b, i ? ",{" : "{");
		if (weekly) {
			rc |= put_days(b, p->days);
			rc |= buf_appends(b, ",");
		}
		rc |= buf_printf(b, "\"from\":\"%s\",\"to\":\"%s\",\"playlist_id\":\"%s\"}", f, t,
				 id);
	}
	return rc | buf_appends(b, "]");
}

int schedule_json(const struct schedule *s, buf_t *b)
{
	size_t len0 = b->len;
	int rc = buf_appends(b, "{");

	rc |= put_parts(b, s->parts, s->nparts, true);
	rc |= buf_appends(b, ",\"overrides\":[");
	for (int i = 0; i < s->noverrides; i++) {
		const struct sched_override *o = &s->overrides[i];
		char d[11];
		sched__date_str(o->first, d);
		rc |= buf_printf(b, "%s{\"date\":\"%s\"", i ? "," : "", d);
		if (o->last != o->first) {
			sched__date_str(o->last, d);
			rc |= buf_printf(b, ",\"to_date\":\"%s\"", d);
		}
		if (o->closed)
			rc |= buf_appends(b, ",\"closed\":true}");
		else {
			rc |= buf_appends(b, ",");
			rc |= put_parts(b, o->parts, o->nparts, false);
			rc |= buf_appends(b, "}");
		}
	}
	rc |= buf_appends(b, "],\"announcements\":[");
	for (int i = 0; i < s->nann; i++) {
		const struct sched_announcement *a = &s->ann[i];
		char f[6], t[6], id[17];
		rc |= buf_appends(b, i ? ",{" : "{");
		if (a->every > 0) {
			sched__time_str(a->from, f);
			sched__time_str(a->to, t);
			rc |= buf_printf(b, "\"every_minutes\":%d,\"from\":\"%s\",\"to\":\"%s\",",
					 a->every, f, t);
		} else {
			rc |= buf_appends(b, "\"at\":[");
			for (int k = 0; k < a->nat; k++) {
				sched__time_str(a->at[k], f);
				rc |= buf_printf(b, "%s\"%s\"", k ? "," : "", f);
			}
			rc |= buf_appends(b, "],");
		}
		rc |= put_days(b, a->days);
		rc |= buf_appends(b, ",\"tracks\":[");
		for (int k = 0; k < a->ntracks; k++) {
			sched__id_str(a->tracks[k], id);
			rc |= buf_printf(b, "%s\"%s\"", k ? "," : "", id);
		}
		rc |= buf_appends(b, "]}");
	}
	rc |= buf_printf(b, "],\"separation_minutes\":%d}", s->separation);
	if (rc) {
		/* Nothing half-written stays behind. */
		b->len = len0;
		if (b->data)
			b->data[len0] = 0;
		return -1;
	}
	return 0;
}

/* ---- Playlists ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int schedule_playlists(const struct schedule *s, int64_t *ids, int max)
{
	size_t total = (size_t)s->nparts, cap = 16;
	int64_t *set;
	int n = 0;

	for (int i = 0; i < s->noverrides; i++)
		total += (size_t)s->overrides[i].nparts;
	while (cap < total * 2)
		cap *= 2;
	/* A set of the ids met (0 marks a free slot: no playlist is 0). */
	set = xcalloc(cap, sizeof(*set));
	for (int o = -1; o < s->noverrides; o++) {
		const struct sched_part *parts = o < 0 ? s->parts : s->overrides[o].parts;
		int np = o < 0 ? s->nparts : s->overrides[o].nparts;
		for (int i = 0; i < np; i++) {
			int64_t id = parts[i].playlist;
			size_t h = mix64((uint64_t)id) & (cap - 1);
			while (set[h] && set[h] != id)
				h = (h + 1) & (cap - 1);
			if (set[h] || !id)
				continue;
			set[h] = id;
			if (n < max)
				ids[n] = id;
			n++;
		}
	}
	free(set);
	return n;
}
