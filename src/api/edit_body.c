/*
 * A PATCH body to a store_edit (see edit_body.h). jansson parses,
 * strictly (duplicate keys and NUL in strings are refused: 400); every
 * field is then checked against its rule, and every failure is listed
 * by field, so an editor's form can mark each one in one round trip.
 *
 * This file includes jansson, whose json_t clashes with util/json.h.
 */
#include "api/edit_body.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

enum field_type { F_TEXT, F_NUMBER, F_YEAR, F_ISRC, F_FLAG };

/* A field of the body: its name for kind, its type, the edit bit it sets
 * and where its text goes. */
struct field {
	const char *name;
	enum edit_kind kind;
	enum field_type type;
	unsigned bit;
	size_t text; /* offsetof the text in struct store_edit; F_TEXT only */
	bool nullable;
};

#define T(f) offsetof(struct store_edit, f)

static const struct field fields[] = {
	{"title", EDIT_TRACK, F_TEXT, STORE_EDIT_TITLE, T(title), false},
	{"artist", EDIT_TRACK, F_TEXT, STORE_EDIT_ARTIST, T(artist), false},
	{"album", EDIT_TRACK, F_TEXT, STORE_EDIT_ALBUM, T(album), false},
	{"album_artist", EDIT_TRACK, F_TEXT, STORE_EDIT_ALBUM_ARTIST, T(album_artist), false},
	{"track_number", EDIT_TRACK, F_NUMBER, STORE_EDIT_TRACK_NUMBER, 0, true},
	{"disc_number", EDIT_TRACK, F_NUMBER, STORE_EDIT_DISC_NUMBER, 0, true},
	{"year", EDIT_TRACK, F_YEAR, STORE_EDIT_YEAR, 0, true},
	{"genre", EDIT_TRACK, F_TEXT, STORE_EDIT_GENRE, T(genre), true},
	{"isrc", EDIT_TRACK, F_ISRC, STORE_EDIT_ISRC, 0, true},
	{"label", EDIT_TRACK, F_TEXT, STORE_EDIT_LABEL, T(label), true},
	{"explicit", EDIT_TRACK, F_FLAG, STORE_EDIT_EXPLICIT, 0, true},
	/* An album's title and artist are its tracks' album and album artist. */
	{"title", EDIT_ALBUM, F_TEXT, STORE_EDIT_ALBUM, T(album), false},
	{"artist", EDIT_ALBUM, F_TEXT, STORE_EDIT_ALBUM_ARTIST, T(album_artist), false},
	{"year", EDIT_ALBUM, F_YEAR, STORE_EDIT_YEAR, 0, true},
	{"genre", EDIT_ALBUM, F_TEXT, STORE_EDIT_GENRE, T(genre), true},
	{"label", EDIT_ALBUM, F_TEXT, STORE_EDIT_LABEL, T(label), true},
	{"name", EDIT_ARTIST, F_TEXT, STORE_EDIT_ARTIST, T(artist), false},
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define NUMBER_MAX 999

const char *edit_kind_name(enum edit_kind kind)
{
	return kind == EDIT_ALBUM ? "album" : kind == EDIT_ARTIST ? "artist" : "track";
}

static void add_error(struct edit_errors *errs, const char *field, const char *message)
{
	struct edit_error *it;
	size_t n = strlen(field);

	if (errs->n >= EDIT_ERRORS_MAX)
		return;
	it = &errs->items[errs->n++];
	/* A name cut short must not end inside a UTF-8 sequence. */
	if (n > EDIT_FIELD_MAX) {
		n = EDIT_FIELD_MAX;
		while (n > 0 && ((unsigned char)field[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(it->field, field, n);
	it->field[n] = '\0';
	snprintf(it->message, sizeof(it->message), "%s", message);
}

/* A name or title: 1 to STORE_TEXT_MAX bytes of UTF-8 (jansson checked
 * that), not blank, no control characters. NULL when good. */
static const char *check_text(const char *s, size_t n)
{
	bool blank = true;

	if (n == 0)
		return "must not be empty";
	if (n > STORE_TEXT_MAX)
		return "must be at most 1024 bytes";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return "must not hold control characters";
		if (c != ' ')
			blank = false;
	}
	return blank ? "must not be blank" : NULL;
}

/* CC-RRR-YY-NNNNN, dashes and spaces optional, any case, to 12
 * upper-case characters (as ingest stores a tagged one). */
static bool isrc_parse(const char *s, char out[13])
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '-' || c == ' ')
			continue;
		if (n == 12 || !isalnum(c) || c > 0x7f)
			return false;
		out[n++] = (char)toupper(c);
	}
	if (n != 12)
		return false;
	out[12] = '\0';
	for (int i = 0; i < 2; i++)
		if (!isalpha((unsigned char)out[i]))
			return false;
	for (int i = 5; i < 12; i++)
		if (!isdigit((unsigned char)out[i]))
			return false;
	return true;
}

static void check_field(const struct field *f, json_t *v, struct store_edit *e,
			struct edit_errors *errs)
{
	const char *why = NULL;

	if (json_is_null(v)) {
		if (!f->nullable) {
			add_error(errs, f->name,
				  "must be a non-empty string (it cannot be cleared)");
			return;
		}
		e->set |= f->bit;
		e->nulls |= f->bit;
		return;
	}
	switch (f->type) {
	case F_TEXT:
		if (!json_is_string(v)) {
			why = "must be a string";
			break;
		}
		why = check_text(json_string_value(v), json_string_length(v));
		if (!why)
			memcpy((char *)e + f->text, json_string_value(v),
			       json_string_length(v) + 1);
		break;
	case F_NUMBER:
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > NUMBER_MAX)
			why = "must be an integer from 1 to 999, or null";
		else if (f->bit == STORE_EDIT_TRACK_NUMBER)
			e->track_number = (int)json_integer_value(v);
		else
			e->disc_number = (int)json_integer_value(v);
		break;
	case F_YEAR:
		if (!json_is_integer(v) || json_integer_value(v) < 1000 ||
		    json_integer_value(v) > 9999)
			why = "must be 1000-9999, or null";
		else
			e->year = (int)json_integer_value(v);
		break;
	case F_ISRC:
		if (!json_is_string(v) || !isrc_parse(json_string_value(v), e->isrc))
			why = "must be an ISRC: CC-RRR-YY-NNNNN (12 letters and digits), or null";
		break;
	case F_FLAG:
		if (!json_is_boolean(v))
			why = "must be true, false or null";
		else
			e->explicit_flag = json_is_true(v) ? 1 : 0;
		break;
	}
	if (why)
		add_error(errs, f->name, why);
	else
		e->set |= f->bit;
}

int edit_body_parse(const void *body, size_t len, enum edit_kind kind, struct store_edit *e,
		    struct edit_errors *errs, char *msg, size_t msglen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int st = 200;

	memset(e, 0, sizeof(*e));
	errs->n = 0;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		snprintf(msg, msglen, "the body is not JSON: %s", jerr.text);
		return 400;
	}
	if (!json_is_object(root)) {
		snprintf(msg, msglen, "the body must be a JSON object of the fields to change");
		json_decref(root);
		return 400;
	}
	json_object_foreach(root, key, v)
	{
		const struct field *f = NULL;

		for (size_t i = 0; i < NFIELDS && !f; i++)
			if (fields[i].kind == kind && strcmp(fields[i].name, key) == 0)
				f = &fields[i];
		if (!f) {
			add_error(errs, key, "unknown field");
			continue;
		}
		check_field(f, v, e, errs);
	}
	json_decref(root);
	if (errs->n) {
		snprintf(msg, msglen, "%zu field%s of the %s %s invalid; nothing was changed",
			 errs->n, errs->n == 1 ? "" : "s", edit_kind_name(kind),
			 errs->n == 1 ? "is" : "are");
		st = 422;
	} else if (!e->set) {
		snprintf(msg, msglen, "nothing to change: name at least one field");
		st = 422;
	}
	if (st != 200)
		memset(e, 0, sizeof(*e));
	return st;
}

char *edit_body_detail(const struct store_edit *e, enum edit_kind kind)
{
	json_t *o = json_object();
	char *out;

	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		json_t *v = NULL;

		if (f->kind != kind || !(e->set & f->bit))
			continue;
		if (e->nulls & f->bit) {
			v = json_null();
		} else {
			switch (f->type) {
			case F_TEXT:
				v = json_string((const char *)e + f->text);
				break;
			case F_NUMBER:
				v = json_integer(f->bit == STORE_EDIT_TRACK_NUMBER
							 ? e->track_number
							 : e->disc_number);
				break;
			case F_YEAR:
				v = json_integer(e->year);
				break;
			case F_ISRC:
				v = json_string(e->isrc);
				break;
			case F_FLAG:
				v = json_boolean(e->explicit_flag);
				break;
			}
		}
		json_object_set_new(o, f->name, v ? v : json_null());
	}
	/* jansson allocates with malloc (no json_set_alloc_funcs here). */
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out ? out : xstrdup("{}");
}
