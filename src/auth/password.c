/*
 * Passwords (auth/auth.h): Argon2id through Debian's libargon2.
 *
 * A hash takes 19 MiB and tens of milliseconds by design: callers run it
 * on the worker pool, never on an event loop, and rate-limit logins
 * before they get here.
 */
#include "auth/auth.h"

#include <argon2.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto/seal.h"

#define SALT_LEN 16
#define HASH_LEN 32

int auth_password_hash(const char *pw, size_t len, char out[AUTH_PW_ENCODED_MAX])
{
	unsigned char salt[SALT_LEN];
	int rc;

	if (len == 0 || len > AUTH_PW_MAX)
		return -EINVAL;
	crypto_random(salt, sizeof(salt));
	rc = argon2id_hash_encoded(AUTH_PW_T, AUTH_PW_M_KIB, AUTH_PW_P, pw, len, salt, sizeof(salt),
				   HASH_LEN, out, AUTH_PW_ENCODED_MAX);
	return rc == ARGON2_OK ? 0 : rc == ARGON2_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -EINVAL;
}

bool auth_password_verify(const char *encoded, const char *pw, size_t len)
{
	/* libargon2 compares the hashes in constant time. An encoded string
	 * that is not Argon2id (or is damaged) matches nothing. */
	if (len == 0 || len > AUTH_PW_MAX || strncmp(encoded, "$argon2id$", 10) != 0)
		return false;
	return argon2id_verify(encoded, pw, len) == ARGON2_OK;
}

bool auth_password_needs_rehash(const char *encoded)
{
	unsigned v, m, t, p;

	if (sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t, &p) != 4)
		return true;
	return v < ARGON2_VERSION_13 || m < AUTH_PW_M_KIB || t < AUTH_PW_T || p < AUTH_PW_P;
}

void auth_password_generate(char out[AUTH_PW_GENERATED_LEN + 1])
{
	/* 32 symbols, no 0/O, 1/l/I: 5 bits each, taken without modulo bias. */
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789-";
	unsigned char r[AUTH_PW_GENERATED_LEN];

	crypto_random(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		out[i] = alphabet[r[i] & 31];
	out[AUTH_PW_GENERATED_LEN] = '\0';
}
