/*
 * Session cookies, CSRF tokens and signed stream URLs (auth/auth.h): MACs
 * that any node checks from its own memory, so a login on one node is
 * good on every other and a player keeps streaming with the database down.
 *
 * Each MAC's message starts with its purpose ("session", "csrf",
 * "stream") and separates fields with newlines, which none of the fields
 * can hold (numbers, or a principal checked to be [ku][0-9a-f]+), so no
 * two messages of different meaning are ever equal. Parsers accept only
 * the canonical form they print (no leading zeros or signs), so a value
 * has exactly one spelling and a MAC check covers all of it.
 */
#include "auth/auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/text.h"

/*
 * HMAC-SHA256 with a context kept per thread and keyed once: OpenSSL 3's
 * one-shot HMAC() fetches the algorithm and derives the key's pads at
 * every call, which a queue answer (a signed link per item, a hundred
 * and more) paid a hundred times (docs/benchmarks.md, store devices).
 * Re-initialising a keyed context with no key keeps its pads.
 */
struct mac_tls {
	EVP_MAC_CTX *ctx;
	uint8_t key[AUTH_MAC_KEY_LEN];
};

static pthread_key_t mac_key;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;

static void mac_tls_free(void *p)
{
	struct mac_tls *t = p;

	EVP_MAC_CTX_free(t->ctx);
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t);
}

static void mac_init(void)
{
	if (pthread_key_create(&mac_key, mac_tls_free) != 0)
		abort();
}

/* The thread's context, keyed with key; NULL when OpenSSL has none. */
static EVP_MAC_CTX *mac_ctx(const uint8_t key[AUTH_MAC_KEY_LEN])
{
	struct mac_tls *t;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	pthread_once(&mac_once, mac_init);
	t = pthread_getspecific(mac_key);
	if (!t) {
		EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);

		t = calloc(1, sizeof(*t));
		if (!t || !m || !(t->ctx = EVP_MAC_CTX_new(m)) ||
		    EVP_MAC_init(t->ctx, key, AUTH_MAC_KEY_LEN, params) != 1 ||
		    pthread_setspecific(mac_key, t) != 0) {
			EVP_MAC_free(m);
			if (t)
				EVP_MAC_CTX_free(t->ctx);
			free(t);
			return NULL;
		}
		EVP_MAC_free(m);
		memcpy(t->key, key, sizeof(t->key));
		return t->ctx;
	}
	if (CRYPTO_memcmp(t->key, key, sizeof(t->key)) != 0) {
		if (EVP_MAC_init(t->ctx, key, AUTH_MAC_KEY_LEN, params) != 1)
			return NULL;
		memcpy(t->key, key, sizeof(t->key));
		return t->ctx;
	}
	return EVP_MAC_init(t->ctx, NULL, 0, NULL) == 1 ? t->ctx : NULL;
}

static void mac_hex(const uint8_t key[AUTH_MAC_KEY_LEN], const char *msg, size_t len, char out[65])
{
	unsigned char mac[32];
	unsigned int maclen = 0;
	size_t outlen = 0;
	EVP_MAC_CTX *ctx = mac_ctx(key);

	if (!ctx || EVP_MAC_update(ctx, (const unsigned char *)msg, len) != 1 ||
	    EVP_MAC_final(ctx, mac, &outlen, sizeof(mac)) != 1 || outlen != sizeof(mac))
		HMAC(EVP_sha256(), key, AUTH_MAC_KEY_LEN, (const unsigned char *)msg, len, mac,
		     &maclen);
	text_hex(mac, sizeof(mac), out);
}

/* A canonical non-negative int64 in decimal ending at a '.' or the end:
 * its value and the bytes it took, or 0. */
static size_t parse_num(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	int64_t v = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (s[i++] - '0');
	}
	if (i == 0 || (s[0] == '0' && i > 1) || (i < len && s[i] != '.'))
		return 0;
	*out = v;
	return i;
}

static bool hex64(const char *s, size_t len)
{
	if (len != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int session_msg(int64_t user, int64_t gen, int64_t exp, char *msg, size_t n)
{
	return snprintf(msg, n, "session\n%" PRId64 "\n%" PRId64 "\n%" PRId64, user, gen, exp);
}

void auth_session_make(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t user_id, int64_t generation,
		       int64_t expires_s, char out[AUTH_SESSION_MAX])
{
	char msg[96], mac[65];
	int n = session_msg(user_id, generation, expires_s, msg, sizeof(msg));

	mac_hex(key, msg, (size_t)n, mac);
	snprintf(out, AUTH_SESSION_MAX, "%" PRId64 ".%" PRId64 ".%" PRId64 ".%s", user_id,
		 generation, expires_s, mac);
}

enum auth_verdict auth_session_check(const uint8_t key[AUTH_MAC_KEY_LEN], const char *s, size_t len,
				     int64_t now_s, int64_t *user_id, int64_t *generation)
{
	int64_t f[3];
	size_t at = 0, n;
	char msg[96], want[65];

	for (int i = 0; i < 3; i++) {
		n = parse_num(s + at, len - at, &f[i]);
		if (n == 0 || at + n >= len)
			return AUTH_MALFORMED;
		at += n + 1;
	}
	if (!hex64(s + at, len - at))
		return AUTH_MALFORMED;
	n = (size_t)session_msg(f[0], f[1], f[2], msg, sizeof(msg));
	mac_hex(key, msg, n, want);
	if (CRYPTO_memcmp(want, s + at, 64) != 0)
		return AUTH_FORGED;
	*user_id = f[0];
	*generation = f[1];
	return f[2] <= now_s ? AUTH_EXPIRED : AUTH_OK;
}

void auth_csrf_token(const uint8_t key[AUTH_MAC_KEY_LEN], const char *session, size_t len,
		     char out[65])
{
	char msg[8 + AUTH_SESSION_MAX];

	if (len >= AUTH_SESSION_MAX)
		len = 0; /* never one of ours: its token matches no real session's */
	memcpy(msg, "csrf\n", 5);
	memcpy(msg + 5, session, len);
	mac_hex(key, msg, 5 + len, out);
}

bool auth_csrf_check(const uint8_t key[AUTH_MAC_KEY_LEN], const char *session, size_t len,
		     const char *token, size_t toklen)
{
	char want[65];

	if (toklen != 64 || len >= AUTH_SESSION_MAX)
		return false;
	auth_csrf_token(key, session, len, want);
	return CRYPTO_memcmp(want, token, 64) == 0;
}

static bool principal_ok(const char *p, size_t len)
{
	if (len < 2 || len > AUTH_KEY_ID_LEN + 1 || (p[0] != 'k' && p[0] != 'u'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* What a link signs: its scope ("stream" for one track, "zone" for the
 * tracks a zone plays), the object, who, and until when. */
static size_t url_msg(const char *scope, int64_t id, const char *principal, size_t plen,
		      int64_t exp, char *msg, size_t n)
{
	int k = snprintf(msg, n, "%s\n%" PRId64 "\n%.*s\n%" PRId64, scope, id, (int)plen, principal,
			 exp);
	return k > 0 && (size_t)k < n ? (size_t)k : 0;
}

static void url_sign(const char *scope, const uint8_t key[AUTH_MAC_KEY_LEN], int64_t id,
		     const char *principal, int64_t expires_s, char out[AUTH_URL_SIG_MAX])
{
	char msg[128], mac[65];
	size_t plen = strlen(principal), n;

	if (!principal_ok(principal, plen))
		plen = 0; /* a URL for nobody: it never checks */
	n = url_msg(scope, id, principal, plen, expires_s, msg, sizeof(msg));
	mac_hex(key, msg, n, mac);
	snprintf(out, AUTH_URL_SIG_MAX, "%.*s.%s", (int)plen, principal, mac);
}

static enum auth_verdict url_check(const char *scope, const uint8_t key[AUTH_MAC_KEY_LEN],
				   int64_t id, int64_t expires_s, const char *sig, size_t len,
				   int64_t now_s, char *principal, size_t principal_len)
{
	const char *dot = memchr(sig, '.', len);
	size_t plen, n;
	char msg[128], want[65];

	if (!dot)
		return AUTH_MALFORMED;
	plen = (size_t)(dot - sig);
	if (!principal_ok(sig, plen) || !hex64(dot + 1, len - plen - 1) || plen >= principal_len ||
	    expires_s < 0)
		return AUTH_MALFORMED;
	n = url_msg(scope, id, sig, plen, expires_s, msg, sizeof(msg));
	mac_hex(key, msg, n, want);
	if (CRYPTO_memcmp(want, dot + 1, 64) != 0)
		return AUTH_FORGED;
	memcpy(principal, sig, plen);
	principal[plen] = '\0';
	return expires_s <= now_s ? AUTH_EXPIRED : AUTH_OK;
}

void auth_url_sign(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t track_id, const char *principal,
		   int64_t expires_s, char out[AUTH_URL_SIG_MAX])
{
	url_sign("stream", key, track_id, principal, expires_s, out);
}

enum auth_verdict auth_url_check(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t track_id,
				 int64_t expires_s, const char *sig, size_t len, int64_t now_s,
				 char *principal, size_t principal_len)
{
	return url_check("stream", key, track_id, expires_s, sig, len, now_s, principal,
			 principal_len);
}

void auth_zone_url_sign(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t zone_id, const char *principal,
			int64_t expires_s, char out[AUTH_URL_SIG_MAX])
{
	url_sign("zone", key, zone_id, principal, expires_s, out);
}

enum auth_verdict auth_zone_url_check(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t zone_id,
				      int64_t expires_s, const char *sig, size_t len, int64_t now_s,
				      char *principal, size_t principal_len)
{
	return url_check("zone", key, zone_id, expires_s, sig, len, now_s, principal,
			 principal_len);
}
