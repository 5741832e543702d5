/* libFuzzer: what a join reads from the network or the disk (cluster/join.h):
 * a request body, a member's answer, a configuration, a token. A request
 * that parses must round-trip and never pass the member's check without
 * the key; an answer must never open under a mac it was not sealed for; a
 * configuration that parses must obey its rules and round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/join.h"
#include "util/xalloc.h"

#define NOW 1767225600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[JOIN_KEY_LEN] = {42};
	static const uint8_t mac[JOIN_MAC_LEN] = {7};
	struct join_request r, again;
	struct join_config c, c2;
	struct join_token tok;
	uint8_t out[JOIN_MAC_LEN];
	char *s, *text;
	size_t len;

	if (join_request_parse((const char *)data, size, &r) == 0) {
		if (strlen(r.nonce) != JOIN_NONCE_HEX || strlen(r.proof) != 64 || r.port < 0 ||
		    r.port > 65535 || r.time_s < 0)
			abort();
		s = join_request_json(&r);
		if (join_request_parse(s, strlen(s), &again) != 0 || memcmp(&r, &again, sizeof(r)))
			abort();
		free(s);
		/* A forger does not know the key: a pass here is a broken check
		 * (or a 2^-256 event). */
		if (join_request_check(key, &r, NOW, out) == 0)
			abort();
	}
	if (join_answer_open(mac, "0123456789abcdef0123456789abcdef", (const char *)data, size,
			     &c) == 0)
		abort(); /* nothing the fuzzer makes is sealed under mac */
	if (join_config_parse((const char *)data, size, &c) == 0) {
		if (!c.db || !*c.db || !c.origin || !*c.origin || (c.site && strlen(c.site) > 63) ||
		    (!c.aws_access_key_id != !c.aws_secret_access_key))
			abort();
		s = join_config_json(&c, &len);
		if (join_config_parse(s, len, &c2) != 0 || strcmp(c.db, c2.db) ||
		    strcmp(c.origin, c2.origin))
			abort();
		free(s);
		join_config_free(&c2);
		join_config_free(&c);
	}
	text = xstrndup((const char *)data, size);
	if (join_token_parse(text, &tok) == 0) {
		char back[JOIN_TOKEN_LEN + 1];
		struct join_token t2;
		join_token_make(key, join_token_expiry(tok.t), &t2, back);
		if (join_token_parse(back, &t2) != 0)
			abort();
	}
	free(text);
	return 0;
}
