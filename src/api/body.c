#include "api/body.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void wipe(json_t *root)
{
	const char *key;
	json_t *v;

	json_object_foreach(root, key, v)
	{
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
}

static int fill(json_t *root, struct body_field *f, size_t n, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(root, key, v)
	{
		for (i = 0; i < n && strcmp(f[i].name, key) != 0; i++)
			;
		if (i == n) {
			snprintf(err, errlen, "unknown field \"%.64s\"", key);
			return -1;
		}
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s: must be a string", f[i].name);
			return -1;
		}
		if (json_string_length(v) >= f[i].cap ||
		    memchr(json_string_value(v), '\0', json_string_length(v))) {
			snprintf(err, errlen, "%s: at most %zu bytes, and no NUL", f[i].name,
				 f[i].cap - 1);
			return -1;
		}
		memcpy(f[i].out, json_string_value(v), json_string_length(v));
		f[i].out[json_string_length(v)] = '\0';
		if (f[i].len)
			*f[i].len = json_string_length(v);
		f[i].present = true;
	}
	for (i = 0; i < n; i++)
		if (f[i].required && !f[i].present) {
			snprintf(err, errlen, "%s: required", f[i].name);
			return -1;
		}
	return 0;
}

int api_body_fields(const void *body, size_t len, struct body_field *f, size_t n, char *err,
		    size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	for (size_t i = 0; i < n; i++) {
		f[i].present = false;
		f[i].out[0] = '\0';
		if (f[i].len)
			*f[i].len = 0;
	}
	if (len == 0)
		root = json_object();
	else
		root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "the body is not JSON: %.128s", jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "the body must be a JSON object");
		return -1;
	}
	rc = fill(root, f, n, err, errlen);
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			explicit_bzero(f[i].out, f[i].cap);
	wipe(root);
	json_decref(root);
	return rc;
}
