/*
 * A POST /api/v1/plays body to a validated batch: pure (no I/O, the clock
 * passed in), so libFuzzer and the unit tests call it without a server.
 *
 * JSON is parsed by jansson, strictly: duplicate keys and NUL in strings
 * are not JSON we accept (400). Every item is checked against every rule
 * and every failure is listed, so a client fixes a batch in one round trip.
 * Unknown fields are errors rather than ignored: a client sending
 * "startedAt" must hear about it, not lose the field silently.
 *
 * This file includes jansson, whose json_t clashes with util/json.h; the
 * JSON we write lives elsewhere.
 */
#include "plays/plays.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/model.h"
#include "util/xalloc.h"

#define DAY_MS 86400000LL

void plays_batch_free(struct plays_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].event_id);
		free(b->items[i].location);
		free(b->items[i].zone);
		free(b->items[i].device);
	}
	free(b->items);
	b->items = NULL;
	b->n = 0;
}

void plays_errors_free(struct plays_errors *e)
{
	free(e->items);
	memset(e, 0, sizeof(*e));
}

void plays_errors_add(struct plays_errors *e, size_t index, const char *field, const char *msg)
{
	struct plays_item_error *it;

	if (e->n >= PLAYS_ERRORS_MAX) {
		e->dropped++;
		return;
	}
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
	}
	it = &e->items[e->n++];
	it->index = index;
	snprintf(it->field, sizeof(it->field), "%s", field ? field : "");
	snprintf(it->message, sizeof(it->message), "%s", msg);
}

/* ---- RFC 3339 ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int plays_rfc3339_parse(const char *s, size_t len, int64_t *ms_utc)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
	size_t i;
	int64_t t;

	/* YYYY-MM-DDTHH:MM:SS is 19 bytes; the zone at least one more. */
	if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -EINVAL;
	i = 19;
	if (i < len && s[i] == '.') {
		size_t start = ++i;
		int scale = 100;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			ms += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start)
			return -EINVAL;
	}
	if (i == len)
		return -EINVAL; /* no time zone */
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (len - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*ms_utc = t * 1000 + ms;
	return 0;
}

void plays_rfc3339_format(int64_t ms_utc, char out[32])
{
	int64_t days = ms_utc >= 0 ? ms_utc / DAY_MS : -((-ms_utc + DAY_MS - 1) / DAY_MS);
	int64_t rest = ms_utc - days * DAY_MS;
	char tmp[96];
	int y, m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
		 (int)(rest / 3600000), (int)(rest / 60000 % 60), (int)(rest / 1000 % 60),
		 (int)(rest % 1000));
	/* 24 bytes for any year 0..9999, which is all a play can hold. */
	memcpy(out, tmp, 31);
	out[31] = '\0';
}

/* ---- the body ---- */

static const char *const known_fields[] = {"track_id", "started_at", "ms_played", "location",
					   "zone",     "device",     "offline",   "event_id"};

/* location, zone, device: absent or null gives NULL. */
static bool opt_text(json_t *item, size_t index, const char *name, char **dst,
		     struct plays_errors *errs)
{
	json_t *v = json_object_get(item, name);
	char msg[96];

	*dst = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		plays_errors_add(errs, index, name, "must be a string or null");
		return false;
	}
	if (json_string_length(v) > PLAYS_TEXT_MAX) {
		snprintf(msg, sizeof(msg), "must be at most %d bytes", PLAYS_TEXT_MAX);
		plays_errors_add(errs, index, name, msg);
		return false;
	}
	*dst = xstrdup(json_string_value(v));
	return true;
}

/* One item into *p; false (errors added) when it breaks a rule. On false,
 * what was allocated in *p is still owned by *p. */
static bool parse_item(json_t *item, size_t index, int64_t now_ms, struct play *p,
		       struct plays_errors *errs)
{
	const char *key;
	json_t *v;
	bool ok = true, when_ok = false;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(item)) {
		plays_errors_add(errs, index, "", "must be an object");
		return false;
	}
	json_object_foreach(item, key, v)
	{
		bool known = false;
		for (size_t k = 0; k < sizeof(known_fields) / sizeof(known_fields[0]); k++)
			known = known || strcmp(key, known_fields[k]) == 0;
		if (!known) {
			plays_errors_add(errs, index, key, "unknown field");
			ok = false;
		}
	}

	v = json_object_get(item, "event_id");
	if (!v) {
		plays_errors_add(errs, index, "event_id", "is required");
		ok = false;
	} else if (!json_is_string(v) || json_string_length(v) == 0 ||
		   json_string_length(v) > PLAYS_EVENT_ID_MAX) {
		plays_errors_add(errs, index, "event_id", "must be a string of 1 to 128 bytes");
		ok = false;
	} else {
		p->event_id = xstrdup(json_string_value(v));
	}

	v = json_object_get(item, "track_id");
	if (!v) {
		plays_errors_add(errs, index, "track_id", "is required");
		ok = false;
	} else if (!json_is_string(v) ||
		   catalog_id_parse(json_string_value(v), json_string_length(v), &p->track_id) <
			   0) {
		plays_errors_add(errs, index, "track_id", "must be a track id (16 hex digits)");
		ok = false;
	}

	v = json_object_get(item, "started_at");
	if (!v) {
		plays_errors_add(errs, index, "started_at", "is required");
		ok = false;
	} else if (!json_is_string(v) ||
		   plays_rfc3339_parse(json_string_value(v), json_string_length(v),
				       &p->started_at_ms) < 0) {
		plays_errors_add(errs, index, "started_at",
				 "must be an RFC 3339 date-time with a time zone");
		ok = false;
	} else if (p->started_at_ms < now_ms - PLAYS_MAX_AGE_MS) {
		plays_errors_add(errs, index, "started_at", "is more than 30 days ago");
		ok = false;
	} else {
		when_ok = true;
	}

	v = json_object_get(item, "ms_played");
	if (!v) {
		plays_errors_add(errs, index, "ms_played", "is required");
		ok = false;
	} else if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		   json_integer_value(v) > PLAYS_MS_PLAYED_MAX) {
		plays_errors_add(errs, index, "ms_played",
				 "must be an integer from 0 to 86400000 (24 h)");
		ok = false;
	} else {
		p->ms_played = json_integer_value(v);
		/* A play is reported once it ended: it cannot end in the future
		 * (past a clock's skew). */
		if (when_ok && p->started_at_ms + p->ms_played > now_ms + PLAYS_SKEW_MS) {
			plays_errors_add(errs, index, "started_at",
					 "with ms_played, ends in the future");
			ok = false;
		}
	}

	v = json_object_get(item, "offline");
	if (v && !json_is_null(v) && !json_is_boolean(v)) {
		plays_errors_add(errs, index, "offline", "must be true or false");
		ok = false;
	} else {
		p->offline = v && json_is_true(v);
	}

	ok = opt_text(item, index, "location", &p->location, errs) && ok;
	ok = opt_text(item, index, "zone", &p->zone, errs) && ok;
	ok = opt_text(item, index, "device", &p->device, errs) && ok;
	return ok;
}

static int cmp_event(const void *a, const void *b)
{
	const struct play *x = *(const struct play *const *)a, *y = *(const struct play *const *)b;
	int c = strcmp(x->event_id, y->event_id);

	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/* Marks every play whose event_id came earlier in the batch. */
static void mark_dups(struct plays_batch *b)
{
	struct play **order;

	if (b->n < 2)
		return;
	order = xmalloc(b->n * sizeof(*order));
	for (size_t i = 0; i < b->n; i++)
		order[i] = &b->items[i];
	/* Ties by address: the first in the batch is the one kept. */
	qsort(order, b->n, sizeof(*order), cmp_event);
	for (size_t i = 1; i < b->n; i++)
		if (strcmp(order[i]->event_id, order[i - 1]->event_id) == 0)
			order[i]->dup = true;
	free(order);
}

int plays_body_parse(const char *body, size_t len, int64_t now_ms, struct plays_batch *out,
		     struct plays_errors *errs, char *msg, size_t msglen)
{
	json_error_t jerr;
	json_t *root;
	struct plays_batch b = {0};
	size_t n;
	size_t bad = 0;

	memset(errs, 0, sizeof(*errs));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		snprintf(msg, msglen, "body is not valid JSON: %s (at byte %d)", jerr.text,
			 jerr.position);
		return 400;
	}
	if (json_is_array(root)) {
		n = json_array_size(root);
		if (n == 0 || n > PLAYS_BATCH_MAX) {
			snprintf(msg, msglen, "a batch holds 1 to %d plays, not %zu",
				 PLAYS_BATCH_MAX, n);
			json_decref(root);
			return 422;
		}
	} else if (json_is_object(root)) {
		n = 1;
	} else {
		snprintf(msg, msglen, "body must be a play object or an array of plays");
		json_decref(root);
		return 422;
	}
	b.items = xcalloc(n, sizeof(*b.items));
	b.n = n;
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_is_array(root) ? json_array_get(root, i) : root;
		bad += !parse_item(item, i, now_ms, &b.items[i], errs);
	}
	json_decref(root);
	if (bad) {
		snprintf(msg, msglen, "%zu of %zu plays are invalid; nothing was stored", bad, n);
		plays_batch_free(&b);
		return 422;
	}
	mark_dups(&b);
	*out = b;
	return 200;
}
