/*
 * Roles, purpose keys and API keys (auth/auth.h).
 *
 * An API key is parsed strictly, without regard to what follows in a
 * header: exactly "chorus_", 16 lowercase hex digits, "_", 64 lowercase
 * hex digits. Any other byte or length is a malformed key, refused before
 * any lookup, so a key's id is always 16 clean hex digits when it reaches
 * a query or a log line.
 */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/seal.h"
#include "util/text.h"

static const char *const role_names[] = {
	[AUTH_ANONYMOUS] = "anonymous", [AUTH_LISTENER] = "listener", [AUTH_STORE] = "store",
	[AUTH_EDITOR] = "editor",       [AUTH_ADMIN] = "admin",
};

const char *auth_role_name(enum auth_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "?";
}

int auth_role_parse(const char *s, enum auth_role *out)
{
	for (int r = AUTH_LISTENER; r <= AUTH_ADMIN; r++) {
		if (strcmp(s, role_names[r]) == 0) {
			*out = (enum auth_role)r;
			return 0;
		}
	}
	return -EINVAL;
}

void auth_derive(const uint8_t cluster_key[32], const char *label, uint8_t out[AUTH_MAC_KEY_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = AUTH_MAC_KEY_LEN;

	/* Only allocation can fail here, and a node that cannot derive its
	 * keys must not run with a predictable one. */
	if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, cluster_key, 32) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)label, (int)strlen(label)) <=
		    0 ||
	    EVP_PKEY_derive(ctx, out, &n) <= 0 || n != AUTH_MAC_KEY_LEN)
		abort();
	EVP_PKEY_CTX_free(ctx);
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void secret_hash(const char *secret, char out[AUTH_HASH_HEX_LEN + 1])
{
	crypto_sha256_hex(secret, AUTH_KEY_SECRET_LEN, out);
}

void auth_key_make(char key[AUTH_KEY_LEN + 1], char id[AUTH_KEY_ID_LEN + 1],
		   char hash[AUTH_HASH_HEX_LEN + 1])
{
	unsigned char idb[AUTH_KEY_ID_LEN / 2], sec[AUTH_KEY_SECRET_LEN / 2];
	char secret[AUTH_KEY_SECRET_LEN + 1];

	crypto_random(idb, sizeof(idb));
	crypto_random(sec, sizeof(sec));
	text_hex(idb, sizeof(idb), id);
	text_hex(sec, sizeof(sec), secret);
	memcpy(key, "chorus_", 7);
	memcpy(key + 7, id, AUTH_KEY_ID_LEN);
	key[7 + AUTH_KEY_ID_LEN] = '_';
	memcpy(key + 8 + AUTH_KEY_ID_LEN, secret, AUTH_KEY_SECRET_LEN + 1);
	secret_hash(secret, hash);
	OPENSSL_cleanse(sec, sizeof(sec));
	OPENSSL_cleanse(secret, sizeof(secret));
}

int auth_key_parse(const char *s, size_t len, char id[AUTH_KEY_ID_LEN + 1],
		   char hash[AUTH_HASH_HEX_LEN + 1])
{
	const char *sid = s + 7, *secret = s + 8 + AUTH_KEY_ID_LEN;

	if (len != AUTH_KEY_LEN || memcmp(s, "chorus_", 7) != 0 || s[7 + AUTH_KEY_ID_LEN] != '_' ||
	    !lower_hex(sid, AUTH_KEY_ID_LEN) || !lower_hex(secret, AUTH_KEY_SECRET_LEN))
		return -EINVAL;
	memcpy(id, sid, AUTH_KEY_ID_LEN);
	id[AUTH_KEY_ID_LEN] = '\0';
	secret_hash(secret, hash);
	return 0;
}

bool auth_hash_equal(const char *a, const char *b)
{
	return CRYPTO_memcmp(a, b, AUTH_HASH_HEX_LEN) == 0;
}

int auth_bearer(const char *v, size_t len, const char **tok, size_t *toklen)
{
	size_t i = 6;

	if (len < 7 || strncasecmp(v, "Bearer", 6) != 0 || v[6] != ' ')
		return -EINVAL;
	while (i < len && v[i] == ' ')
		i++;
	while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (i == len)
		return -EINVAL;
	for (size_t j = i; j < len; j++)
		if ((unsigned char)v[j] <= ' ' || (unsigned char)v[j] >= 0x7f)
			return -EINVAL;
	*tok = v + i;
	*toklen = len - i;
	return 0;
}
