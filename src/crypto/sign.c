#include "crypto/sign.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "util/text.h"

void sign_request(const uint8_t key[SIGN_KEY_LEN], const char *method, const char *path,
		  int64_t time_s, const char *node, char out[65])
{
	unsigned char mac[32];
	unsigned int maclen = 0;
	char msg[1024];
	int n;

	/* Newlines separate the parts: none of them may hold one (paths and
	 * ids are checked by their parsers), so no two requests share a
	 * message. */
	n = snprintf(msg, sizeof(msg), "%s\n%s\n%" PRId64 "\n%s", method, path, time_s, node);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0; /* an impossible request: its signature matches nothing real */
	HMAC(EVP_sha256(), key, SIGN_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac, &maclen);
	text_hex(mac, sizeof(mac), out);
}

bool sign_check(const uint8_t key[SIGN_KEY_LEN], const char *method, const char *path,
		int64_t time_s, const char *node, const char *sig, size_t len, int64_t now_s)
{
	char want[65];

	if (len != 64 || time_s < now_s - SIGN_WINDOW_S || time_s > now_s + SIGN_WINDOW_S ||
	    strchr(node, '\n') || strchr(path, '\n'))
		return false;
	sign_request(key, method, path, time_s, node, want);
	return CRYPTO_memcmp(want, sig, 64) == 0;
}
