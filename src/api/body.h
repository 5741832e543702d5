#ifndef CHORUS_API_BODY_H
#define CHORUS_API_BODY_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The string fields of a small JSON object body (a login, a new user or
 * key). Apart from util/json.h because jansson's json_t is another type
 * of the same name.
 *
 * Each field names a key; its value, when present, must be a string of
 * at most cap - 1 bytes with no NUL, copied NUL-terminated to out (len,
 * when set, gets its length). A key not in fields is refused (a typo
 * must not pass as an absent option). jansson's copies are wiped before
 * they are freed: a field may be a password.
 */
struct body_field {
	const char *name;
	bool required;
	char *out;
	size_t cap;
	size_t *len;
	bool present; /* set by api_body_fields */
};

/* 0, or -1 with a sentence for the client in err. An empty body is an
 * empty object. */
int api_body_fields(const void *body, size_t len, struct body_field *f, size_t n, char *err,
		    size_t errlen);

#endif
