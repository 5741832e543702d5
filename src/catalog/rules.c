/*
 * A rules playlist's rules (see rules.h). jansson parses, strictly
 * (duplicate keys refused), and every key is checked against its rule.
 * This file includes jansson, whose json_t clashes with util/json.h: the
 * canonical JSON is written by hand, with util/json.h's escaping rules
 * kept by writing strings through a tiny escaper of its own.
 */
#include "catalog/rules.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/model.h"
#include "util/text.h"
#include "util/xalloc.h"

static int fail(char *err, size_t errlen, const char *fmt, const char *field)
{
	snprintf(err, errlen, fmt, field);
	return -EINVAL;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* A list of 1..RULES_LIST_MAX texts, 1..RULES_TEXT_MAX bytes of UTF-8
 * without controls. keys gets the folded copies (NULL: not wanted);
 * fold makes out itself folded. */
static int texts(json_t *v, const char *field, char ***out, char ***keys, int *n, bool fold,
		 char *err, size_t errlen)
{
	size_t i, count = json_is_array(v) ? json_array_size(v) : 0;

	if (!json_is_array(v) || count < 1 || count > RULES_LIST_MAX)
		return fail(err, errlen, "rules.%s: must be a list of 1 to 256 texts", field);
	*out = xcalloc(count, sizeof(char *));
	if (keys)
		*keys = xcalloc(count, sizeof(char *));
	*n = (int)count;
	for (i = 0; i < count; i++) {
		json_t *e = json_array_get(v, i);
		const char *s = json_string_value(e);
		size_t len = s ? json_string_length(e) : 0;

		if (!s || len < 1 || len > RULES_TEXT_MAX || strlen(s) != len ||
		    !text_is_utf8(s, len))
			return fail(err, errlen, "rules.%s: each must be 1 to 128 bytes of text",
				    field);
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
				return fail(err, errlen, "rules.%s: no control characters", field);
		(*out)[i] = fold ? text_name_key(s) : xstrdup(s);
		if (keys)
			(*keys)[i] = text_name_key(s);
	}
	return 0;
}

static int ids(json_t *v, const char *field, int64_t **out, int *n, char *err, size_t errlen)
{
	size_t count = json_is_array(v) ? json_array_size(v) : 0;

	if (!json_is_array(v) || count < 1 || count > RULES_LIST_MAX)
		return fail(err, errlen, "rules.%s: must be a list of 1 to 256 ids", field);
	*out = xcalloc(count, sizeof(int64_t));
	*n = (int)count;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_array_get(v, i);
		const char *s = json_string_value(e);

		if (!s || catalog_id_parse(s, json_string_length(e), &(*out)[i]) < 0)
			return fail(err, errlen, "rules.%s: each must be an id (16 hex digits)",
				    field);
	}
	return 0;
}

static int year(json_t *v, const char *field, int *out, char *err, size_t errlen)
{
	json_int_t y;

	if (!json_is_integer(v) || (y = json_integer_value(v)) < 1000 || y > 9999)
		return fail(err, errlen, "rules.years.%s: must be a year from 1000 to 9999", field);
	*out = (int)y;
	return 0;
}

static int years(json_t *v, struct rules *r, char *err, size_t errlen)
{
	const char *k;
	json_t *e;
	int rc = 0;

	if (!json_is_object(v) || json_object_size(v) == 0)
		return fail(err, errlen, "rules.%s: must be an object with from, to or both",
			    "years");
	json_object_foreach(v, k, e)
	{
		if (strcmp(k, "from") == 0)
			rc = year(e, "from", &r->year_from, err, errlen);
		else if (strcmp(k, "to") == 0)
			rc = year(e, "to", &r->year_to, err, errlen);
		else
			rc = fail(err, errlen, "rules.years: unknown key \"%s\" (from, to)", k);
		if (rc < 0)
			return rc;
	}
	if (r->year_from && r->year_to && r->year_from > r->year_to)
		return fail(err, errlen, "rules.%s: from is after to", "years");
	return 0;
}

static int parse_obj(json_t *root, struct rules *r, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	int rc = 0;

	if (!json_is_object(root))
		return fail(err, errlen, "%s: must be an object", "rules");
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "genres") == 0 && !r->genres)
			rc = texts(v, k, &r->genres, &r->genre_keys, &r->ngenres, false, err,
				   errlen);
		else if (strcmp(k, "artists") == 0 && !r->artists)
			rc = ids(v, k, &r->artists, &r->nartists, err, errlen);
		else if (strcmp(k, "years") == 0)
			rc = years(v, r, err, errlen);
		else if (strcmp(k, "tags") == 0 && !r->tags)
			rc = texts(v, k, &r->tags, NULL, &r->ntags, true, err, errlen);
		else if (strcmp(k, "exclude_explicit") == 0) {
			if (!json_is_boolean(v))
				rc = fail(err, errlen, "rules.%s: must be true or false", k);
			r->exclude_explicit = json_is_true(v);
		} else if (strcmp(k, "exclude") == 0 && !r->exclude)
			rc = ids(v, k, &r->exclude, &r->nexclude, err, errlen);
		else
			rc = fail(err, errlen,
				  "rules: unknown key \"%s\" (genres, artists, years, tags,"
				  " exclude_explicit, exclude)",
				  k);
		if (rc < 0)
			return rc;
	}
	/* Tags are words: one with a space would never match. */
	for (int i = 0; i < r->ntags; i++)
		for (const char *p = r->tags[i]; *p; p++)
			if (*p == ' ' || *p == ',' || *p == '/')
				return fail(err, errlen, "rules.%s: a tag is one word", "tags");
	if (r->nexclude)
		qsort(r->exclude, (size_t)r->nexclude, sizeof(int64_t), cmp_id);
	return 0;
}

int rules_parse(const void *json, size_t len, struct rules *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!root)
		return fail(err, errlen, "rules: %s", jerr.text);
	rc = parse_obj(root, out, err, errlen);
	json_decref(root);
	if (rc < 0)
		rules_free(out);
	return rc;
}

static void free_texts(char **v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void rules_free(struct rules *r)
{
	free_texts(r->genres, r->ngenres);
	free_texts(r->genre_keys, r->ngenres);
	free_texts(r->tags, r->ntags);
	free(r->artists);
	free(r->exclude);
	memset(r, 0, sizeof(*r));
}

/* ---- the canonical JSON ---- */

static void put_str(buf_t *b, const char *s, int *bad)
{
	*bad |= buf_append(b, "\"", 1);
	for (; *s; s++) {
		char esc[8];
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20)
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			esc[0] = (char)c, esc[1] = '\0';
		*bad |= buf_append(b, esc, strlen(esc));
	}
	*bad |= buf_append(b, "\"", 1);
}

/* Each key after the first is preceded by a comma: start is where the
 * object began in b. */
static const char *sep(const buf_t *b, size_t start)
{
	return b->len - start > 1 ? "," : "";
}

static void put_texts(buf_t *b, size_t start, const char *key, char **v, int n, int *bad)
{
	char head[32];

	snprintf(head, sizeof(head), "%s\"%s\":[", sep(b, start), key);
	*bad |= buf_append(b, head, strlen(head));
	for (int i = 0; i < n; i++) {
		if (i)
			*bad |= buf_append(b, ",", 1);
		put_str(b, v[i], bad);
	}
	*bad |= buf_append(b, "]", 1);
}

static void put_ids(buf_t *b, size_t start, const char *key, const int64_t *v, int n, int *bad)
{
	char head[32], hex[17];

	snprintf(head, sizeof(head), "%s\"%s\":[", sep(b, start), key);
	*bad |= buf_append(b, head, strlen(head));
	for (int i = 0; i < n; i++) {
		catalog_id_str(v[i], hex);
		*bad |= buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
		*bad |= buf_append(b, hex, 16);
		*bad |= buf_append(b, "\"", 1);
	}
	*bad |= buf_append(b, "]", 1);
}

int rules_json(const struct rules *r, buf_t *b)
{
	size_t start = b->len;
	int bad = buf_append(b, "{", 1);
	char t[64];

	if (r->ngenres)
		put_texts(b, start, "genres", r->genres, r->ngenres, &bad);
	if (r->nartists)
		put_ids(b, start, "artists", r->artists, r->nartists, &bad);
	if (r->year_from || r->year_to) {
		int n = 0;

		n += snprintf(t + n, sizeof(t) - (size_t)n, "%s\"years\":{", sep(b, start));
		if (r->year_from)
			n += snprintf(t + n, sizeof(t) - (size_t)n, "\"from\":%d", r->year_from);
		if (r->year_to)
			n += snprintf(t + n, sizeof(t) - (size_t)n, "%s\"to\":%d",
				      r->year_from ? "," : "", r->year_to);
		snprintf(t + n, sizeof(t) - (size_t)n, "}");
		bad |= buf_append(b, t, strlen(t));
	}
	if (r->ntags)
		put_texts(b, start, "tags", r->tags, r->ntags, &bad);
	if (r->exclude_explicit) {
		snprintf(t, sizeof(t), "%s\"exclude_explicit\":true", sep(b, start));
		bad |= buf_append(b, t, strlen(t));
	}
	if (r->nexclude)
		put_ids(b, start, "exclude", r->exclude, r->nexclude, &bad);
	bad |= buf_append(b, "}", 1);
	return bad ? -1 : 0;
}

/* ---- matching ---- */

static bool has_word(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = text; (p = strstr(p, word)); p++) {
		bool start = p == text || !isalnum((unsigned char)p[-1]);
		bool end = !isalnum((unsigned char)p[n]);

		if (start && end)
			return true;
	}
	return false;
}

bool rules_match(const struct rules *r, const struct rules_track *t)
{
	char *genre = NULL, *label = NULL;
	bool ok = true;

	if (r->exclude_explicit && t->explicit_flag == 1)
		return false;
	if (r->year_from && (!t->year || t->year < r->year_from))
		return false;
	if (r->year_to && (!t->year || t->year > r->year_to))
		return false;
	if (r->nexclude &&
	    bsearch(&t->id, r->exclude, (size_t)r->nexclude, sizeof(int64_t), cmp_id))
		return false;
	if (r->nartists) {
		int i;

		for (i = 0; i < r->nartists && r->artists[i] != t->artist; i++)
			;
		if (i == r->nartists)
			return false;
	}
	if (!r->ngenres && !r->ntags)
		return true;
	genre = t->genre ? text_name_key(t->genre) : NULL;
	if (r->ngenres) {
		int i;

		for (i = 0; genre && i < r->ngenres && strcmp(genre, r->genre_keys[i]) != 0; i++)
			;
		ok = genre && i < r->ngenres;
	}
	if (ok && r->ntags) {
		label = t->label ? text_name_key(t->label) : NULL;
		for (int i = 0; ok && i < r->ntags; i++)
			ok = (genre && has_word(genre, r->tags[i])) ||
			     (label && has_word(label, r->tags[i]));
	}
	free(genre);
	free(label);
	return ok;
}
