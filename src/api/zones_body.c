/*
 * The stores' bodies (see zones_body.h). This file includes jansson.
 */
#include "api/zones_body.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/model.h"
#include "catalog/rules.h"
#include "schedule/tz.h"
#include "util/buf.h"
#include "util/text.h"
#include "util/xalloc.h"

static int bad(char *err, size_t errlen, const char *fmt, const char *field)
{
	snprintf(err, errlen, fmt, field);
	return 422;
}

/* The body as an object: 200 with *root, or 400. */
static int load(const void *body, size_t len, json_t **root, char *err, size_t errlen)
{
	json_error_t jerr;

	*root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*root) {
		snprintf(err, errlen, "the body is not JSON: %s", jerr.text);
		return 400;
	}
	if (!json_is_object(*root)) {
		json_decref(*root);
		snprintf(err, errlen, "the body must be a JSON object");
		return 400;
	}
	return 200;
}

/* A text of 1..max bytes of UTF-8 without control characters. */
static int text(json_t *v, const char *field, size_t max, char *out, size_t cap, char *err,
		size_t errlen)
{
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;

	if (!s || n < 1 || n > max || n >= cap || strlen(s) != n || !text_is_utf8(s, n)) {
		snprintf(err, errlen, "%s: must be text of 1 to %zu bytes", field, max);
		return 422;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return bad(err, errlen, "%s: no control characters", field);
	memcpy(out, s, n + 1);
	return 200;
}

static int unknown(const char *key, const char *known, char *err, size_t errlen)
{
	snprintf(err, errlen, "unknown field \"%.64s\" (%s)", key, known);
	return 422;
}

static int volume(json_t *v, int *out, char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 || n > 100)
		return bad(err, errlen, "%s: must be an integer from 0 to 100", "volume");
	*out = (int)n;
	return 200;
}

int zones_body_location(const void *body, size_t len, bool patch, struct store_location *l,
			char *err, size_t errlen)
{
	json_t *root, *v;
	const char *k;
	int st = load(body, len, &root, err, errlen);
	bool name = false, tz = false, country = false;

	if (st != 200)
		return st;
	if (!patch)
		snprintf(l->licence, sizeof(l->licence), "interactive");
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "name") == 0) {
			st = text(v, k, STORE_NAME_MAX, l->name, sizeof(l->name), err, errlen);
			name = true;
		} else if (strcmp(k, "address") == 0) {
			if (json_is_null(v))
				l->address[0] = '\0';
			else
				st = text(v, k, STORE_TEXT_MAX, l->address, sizeof(l->address), err,
					  errlen);
		} else if (strcmp(k, "country") == 0) {
			const char *s = json_string_value(v);

			if (!s || strlen(s) != 2 || !isalpha((unsigned char)s[0]) ||
			    !isalpha((unsigned char)s[1]))
				st = bad(err, errlen, "%s: must be an ISO 3166 code of two letters",
					 k);
			else
				snprintf(l->country, sizeof(l->country), "%c%c",
					 toupper((unsigned char)s[0]),
					 toupper((unsigned char)s[1]));
			country = true;
		} else if (strcmp(k, "timezone") == 0) {
			const char *s = json_string_value(v);
			const tz_t *zone;
			char why[128];

			if (!s || !tz_name_ok(s) || tz_get(s, &zone, why, sizeof(why)) < 0)
				st = bad(err, errlen,
					 "%s: must be an IANA time zone this node knows, such as"
					 " \"Europe/Berlin\"",
					 k);
			else
				snprintf(l->timezone, sizeof(l->timezone), "%s", s);
			tz = true;
		} else if (strcmp(k, "licence") == 0) {
			const char *s = json_string_value(v);

			if (!s ||
			    (strcmp(s, "interactive") != 0 && strcmp(s, "non-interactive") != 0))
				st = bad(err, errlen,
					 "%s: must be \"interactive\" or \"non-interactive\"", k);
			else
				snprintf(l->licence, sizeof(l->licence), "%s", s);
		} else {
			st = unknown(k, "name, address, country, timezone, licence", err, errlen);
		}
		if (st != 200)
			break;
	}
	json_decref(root);
	if (st == 200 && !patch && (!name || !tz || !country))
		st = bad(err, errlen, "%s are required", "name, timezone and country");
	return st;
}

int zones_body_zone(const void *body, size_t len, bool patch, struct store_zone *z, char *err,
		    size_t errlen)
{
	json_t *root, *v;
	const char *k;
	int st = load(body, len, &root, err, errlen);
	bool name = false, location = false;

	if (st != 200)
		return st;
	if (!patch)
		z->volume = 100;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "name") == 0) {
			st = text(v, k, STORE_NAME_MAX, z->name, sizeof(z->name), err, errlen);
			name = true;
		} else if (strcmp(k, "volume") == 0) {
			st = volume(v, &z->volume, err, errlen);
		} else if (strcmp(k, "location_id") == 0 && !patch) {
			const char *s = json_string_value(v);

			if (!s || catalog_id_parse(s, json_string_length(v), &z->location_id) < 0)
				st = bad(err, errlen, "%s: must be a location's id", k);
			location = true;
		} else {
			st = unknown(k, patch ? "name, volume" : "location_id, name, volume", err,
				     errlen);
		}
		if (st != 200)
			break;
	}
	json_decref(root);
	if (st == 200 && !patch && (!name || !location))
		st = bad(err, errlen, "%s are required", "location_id and name");
	return st;
}

/* The list's ids, space separated, as the playlists table keeps them. */
static char *ids_text(const int64_t *ids, int n)
{
	char *s = xmalloc((size_t)n * 17 + 1);

	s[0] = '\0';
	for (int i = 0; i < n; i++) {
		catalog_id_str(ids[i], s + (size_t)i * 17);
		s[(size_t)i * 17 + 16] = i + 1 < n ? ' ' : '\0';
	}
	return s;
}

int zones_body_playlist(const void *body, size_t len, struct store_playlist *p, int64_t **ids,
			int *n, char **tracks, char **rules, char *err, size_t errlen)
{
	json_t *root, *v, *tv = NULL, *rv = NULL;
	const char *k;
	int st = load(body, len, &root, err, errlen);
	bool name = false;

	*ids = NULL;
	*n = 0;
	*tracks = *rules = NULL;
	if (st != 200)
		return st;
	p->shuffle = false;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "name") == 0) {
			st = text(v, k, STORE_NAME_MAX, p->name, sizeof(p->name), err, errlen);
			name = true;
		} else if (strcmp(k, "shuffle") == 0) {
			if (!json_is_boolean(v))
				st = bad(err, errlen, "%s: must be true or false", k);
			p->shuffle = json_is_true(v);
		} else if (strcmp(k, "tracks") == 0) {
			tv = v;
		} else if (strcmp(k, "rules") == 0) {
			rv = v;
		} else {
			st = unknown(k, "name, tracks, rules, shuffle", err, errlen);
		}
		if (st != 200)
			goto out;
	}
	if (!name || (!tv) == (!rv)) {
		st = bad(err, errlen, "%s", "a playlist needs a name and either tracks or rules");
		goto out;
	}
	if (tv) {
		size_t count = json_is_array(tv) ? json_array_size(tv) : 0;

		if (!json_is_array(tv) || count > ZONES_BODY_TRACKS_MAX) {
			st = bad(err, errlen, "%s: must be a list of at most 10000 track ids",
				 "tracks");
			goto out;
		}
		*ids = xcalloc(count ? count : 1, sizeof(int64_t));
		for (size_t i = 0; i < count; i++) {
			json_t *e = json_array_get(tv, i);
			const char *s = json_string_value(e);

			if (!s || catalog_id_parse(s, json_string_length(e), &(*ids)[i]) < 0) {
				snprintf(err, errlen,
					 "tracks[%zu]: must be a track id (16 hex digits)", i);
				st = 422;
				goto out;
			}
		}
		*n = (int)count;
		*tracks = ids_text(*ids, *n);
		p->rules_kind = false;
		p->tracks = *tracks;
		p->rules = NULL;
	} else {
		char *text_rules = json_dumps(rv, JSON_COMPACT);
		struct rules r;
		buf_t b;

		if (!text_rules ||
		    rules_parse(text_rules, strlen(text_rules), &r, err, errlen) < 0) {
			free(text_rules);
			st = 422;
			goto out;
		}
		free(text_rules);
		buf_init(&b, 1 << 20);
		if (rules_json(&r, &b) < 0 || buf_append(&b, "", 1) < 0) {
			buf_free(&b);
			rules_free(&r);
			st = bad(err, errlen, "%s: too long", "rules");
			goto out;
		}
		rules_free(&r);
		*rules = (char *)b.data;
		p->rules_kind = true;
		p->shuffle = true; /* a pool is never an order */
		p->rules = *rules;
		p->tracks = NULL;
	}
out:
	json_decref(root);
	return st;
}

int zones_body_command(const void *body, size_t len, bool *skip, int *vol, char *err, size_t errlen)
{
	json_t *root, *v;
	const char *k, *type = NULL;
	int st = load(body, len, &root, err, errlen);
	bool has_volume = false;

	*skip = false;
	*vol = -1;
	if (st != 200)
		return st;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "type") == 0)
			type = json_string_value(v);
		else if (strcmp(k, "volume") == 0) {
			st = volume(v, vol, err, errlen);
			has_volume = true;
		} else
			st = unknown(k, "type, volume", err, errlen);
		if (st != 200)
			break;
	}
	if (st == 200) {
		if (type && strcmp(type, "skip") == 0 && !has_volume)
			*skip = true;
		else if (!(type && strcmp(type, "volume") == 0 && has_volume))
			st = bad(err, errlen, "%s",
				 "a command is {\"type\":\"skip\"} or"
				 " {\"type\":\"volume\",\"volume\":0-100}");
	}
	json_decref(root);
	return st;
}

static int count(json_t *v, const char *field, int64_t max, int64_t *out, char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 || n > max) {
		snprintf(err, errlen, "%s: must be an integer from 0 to %lld", field,
			 (long long)max);
		return 422;
	}
	*out = n;
	return 200;
}

int zones_body_status(const void *body, size_t len, struct zones_status *s, char *err,
		      size_t errlen)
{
	json_t *root, *v;
	const char *k;
	int st = load(body, len, &root, err, errlen);

	memset(s, 0, sizeof(*s));
	if (st != 200)
		return st;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "playing") == 0) {
			const char *id = json_string_value(v);

			if (!json_is_null(v) &&
			    (!id || catalog_id_parse(id, json_string_length(v), &s->playing) < 0))
				st = bad(err, errlen, "%s: must be a track id or null", k);
		} else if (strcmp(k, "position_ms") == 0) {
			st = count(v, k, 86400000, &s->position_ms, err, errlen);
		} else if (strcmp(k, "buffered_s") == 0) {
			st = count(v, k, 7 * 86400, &s->buffered_s, err, errlen);
		} else if (strcmp(k, "error") == 0) {
			if (!json_is_null(v))
				st = text(v, k, sizeof(s->error) - 1, s->error, sizeof(s->error),
					  err, errlen);
		} else if (strcmp(k, "version") == 0) {
			if (!json_is_null(v))
				st = text(v, k, sizeof(s->version) - 1, s->version,
					  sizeof(s->version), err, errlen);
		} else {
			st = unknown(k, "playing, position_ms, buffered_s, error, version", err,
				     errlen);
		}
		if (st != 200)
			break;
	}
	json_decref(root);
	return st;
}
