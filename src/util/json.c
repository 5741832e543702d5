#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/text.h"

void json_init(json_t *j, buf_t *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

static void raw(json_t *j, const char *s, size_t n)
{
	if (!j->failed && buf_append(j->out, s, n) < 0)
		j->failed = true;
}

/* Separator before a value (or key) at the current depth. */
static void sep(json_t *j)
{
	if (j->need_comma[j->depth])
		raw(j, ",", 1);
	j->need_comma[j->depth] = true;
}

static void open_(json_t *j, char c)
{
	sep(j);
	raw(j, &c, 1);
	if (j->depth + 1 >= JSON_DEPTH_MAX) {
		j->failed = true;
		return;
	}
	j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_(json_t *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	raw(j, &c, 1);
}

void json_obj_begin(json_t *j)
{
	open_(j, '{');
}
void json_obj_end(json_t *j)
{
	close_(j, '}');
}
void json_arr_begin(json_t *j)
{
	open_(j, '[');
}
void json_arr_end(json_t *j)
{
	close_(j, ']');
}

static void escaped(json_t *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;

	raw(j, "\"", 1);
	while (i < len) {
		unsigned char c = p[i];
		char esc[8];
		size_t n = 0;

		if (c >= 0x80) {
			/* Find the sequence length and keep it if it is valid. */
			size_t l = (c & 0xe0) == 0xc0   ? 2
				   : (c & 0xf0) == 0xe0 ? 3
				   : (c & 0xf8) == 0xf0 ? 4
							: 1;
			if (l > 1 && i + l <= len && text_is_utf8(s + i, l)) {
				i += l;
				continue;
			}
			raw(j, s + start, i - start);
			raw(j, "\xef\xbf\xbd", 3);
			i++;
			start = i;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			i++;
			continue;
		}
		raw(j, s + start, i - start);
		raw(j, esc, n);
		i++;
		start = i;
	}
	raw(j, s + start, i - start);
	raw(j, "\"", 1);
}

void json_key(json_t *j, const char *key)
{
	sep(j);
	escaped(j, key, strlen(key));
	raw(j, ":", 1);
	/* The value that follows takes no comma of its own. */
	j->need_comma[j->depth] = false;
}

void json_strn(json_t *j, const char *s, size_t len)
{
	sep(j);
	escaped(j, s, len);
}

void json_str(json_t *j, const char *s)
{
	if (!s) {
		json_nil(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_int(json_t *j, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

	sep(j);
	raw(j, tmp, (size_t)n);
}

void json_double(json_t *j, double v)
{
	char tmp[64];
	int n;

	if (!isfinite(v)) {
		json_nil(j);
		return;
	}
	n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	sep(j);
	raw(j, tmp, (size_t)n);
}

void json_bool(json_t *j, bool v)
{
	sep(j);
	raw(j, v ? "true" : "false", v ? 4 : 5);
}

void json_nil(json_t *j)
{
	sep(j);
	raw(j, "null", 4);
}

void json_raw(json_t *j, const char *s, size_t len)
{
	sep(j);
	raw(j, s, len);
}

void json_kstr(json_t *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_kint(json_t *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void json_kbool(json_t *j, const char *key, bool v)
{
	json_key(j, key);
	json_bool(j, v);
}

void json_knull(json_t *j, const char *key)
{
	json_key(j, key);
	json_nil(j);
}

bool json_failed(const json_t *j)
{
	return j->failed;
}
