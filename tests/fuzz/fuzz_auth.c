/* libFuzzer: the credentials a client sends (auth/auth.h): an
 * Authorization header, an API key, a session cookie, a CSRF token, a
 * signed URL's sig. Nothing may crash or read out of bounds, and a forger
 * without the key never passes a MAC check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[AUTH_MAC_KEY_LEN] = {42};
	const char *s = (const char *)data, *tok;
	char id[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1], who[AUTH_URL_SIG_MAX];
	int64_t user, gen;
	size_t toklen;

	if (auth_bearer(s, size, &tok, &toklen) == 0) {
		if (tok < s || tok + toklen > s + size || toklen == 0)
			abort();
		if (auth_key_parse(tok, toklen, id, hash) == 0 &&
		    (strlen(id) != AUTH_KEY_ID_LEN || strlen(hash) != AUTH_HASH_HEX_LEN))
			abort();
	}
	if (auth_key_parse(s, size, id, hash) == 0 && size != AUTH_KEY_LEN)
		abort();
	switch (auth_session_check(key, s, size, 1000, &user, &gen)) {
	case AUTH_OK:
	case AUTH_EXPIRED:
		abort(); /* a forgery passed (or a 2^-256 event) */
	default:
		break;
	}
	if (auth_csrf_check(key, "1.1.1.x", 7, s, size))
		abort();
	switch (auth_url_check(key, 42, 5000, s, size, 1000, who, sizeof(who))) {
	case AUTH_OK:
	case AUTH_EXPIRED:
		abort();
	default:
		break;
	}
	return 0;
}
