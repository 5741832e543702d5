#ifndef CHORUS_UTIL_JSON_H
#define CHORUS_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

/*
 * A JSON writer into a buf_t. It tracks nesting so commas are placed for
 * the caller; strings are escaped (control characters, quotes, and any
 * invalid UTF-8 replaced by U+FFFD, so the output is always valid JSON).
 * Errors (the buffer cap) are sticky: check json_failed() once at the end.
 */
#define JSON_DEPTH_MAX 32

typedef struct json {
	buf_t *out;
	int depth;
	bool need_comma[JSON_DEPTH_MAX];
	bool failed;
} json_t;

void json_init(json_t *j, buf_t *out);
void json_obj_begin(json_t *j);
void json_obj_end(json_t *j);
void json_arr_begin(json_t *j);
void json_arr_end(json_t *j);
/* An object key; the next value call writes its value. */
void json_key(json_t *j, const char *key);
void json_str(json_t *j, const char *s); /* NULL writes null */
void json_strn(json_t *j, const char *s, size_t len);
void json_int(json_t *j, int64_t v);
void json_double(json_t *j, double v);
void json_bool(json_t *j, bool v);
/* (Not json_null: jansson exports that name, and one binary links both.) */
void json_nil(json_t *j);
/* A value already in JSON (our own, never a client's: it is not checked). */
void json_raw(json_t *j, const char *s, size_t len);
/* key + value in one call. */
void json_kstr(json_t *j, const char *key, const char *s);
void json_kint(json_t *j, const char *key, int64_t v);
void json_kbool(json_t *j, const char *key, bool v);
void json_knull(json_t *j, const char *key);
bool json_failed(const json_t *j);

#endif
