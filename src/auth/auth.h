#ifndef CHORUS_AUTH_AUTH_H
#define CHORUS_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Who is asking: the credentials of the product layer, as pure functions
 * over bytes (no database, no I/O but the OS RNG), so that every node
 * checks them from its replica alone and each is unit-tested and fuzzed.
 *
 *   - roles, from least to most: anonymous, listener, store, editor, admin;
 *   - API keys "chorus_<id>_<secret>": a 64-bit id (16 hex digits) and a
 *     256-bit secret (64 hex digits); only SHA-256 of the secret is stored,
 *     which is right for a high-entropy secret (a slow hash buys nothing);
 *   - passwords: Argon2id (libargon2) in its encoded form, which records
 *     its own parameters so they can be raised later;
 *   - sessions: a cookie that any node verifies without a round trip, an
 *     HMAC over (user, generation, expiry); bumping the user's generation
 *     (password change, removal) ends every session at once;
 *   - signed stream URLs: an HMAC over (track, principal, expiry).
 *
 * Every comparison of a secret or a MAC is constant-time. Keys passed in
 * are AUTH_MAC_KEY_LEN bytes derived from the cluster key (auth_derive).
 */

enum auth_role {
	AUTH_ANONYMOUS = 0,
	AUTH_LISTENER,
	AUTH_STORE,
	AUTH_EDITOR,
	AUTH_ADMIN,
};

/* "anonymous", "listener", "store", "editor", "admin". */
const char *auth_role_name(enum auth_role r);
/* 0, or -EINVAL for anything but the four names a principal may hold
 * (never "anonymous"). */
int auth_role_parse(const char *s, enum auth_role *out);

#define AUTH_MAC_KEY_LEN 32

/* A purpose-bound key from the cluster key (HKDF-SHA256, info = label):
 * signed URLs and sessions never share a key with peer requests. */
void auth_derive(const uint8_t cluster_key[32], const char *label, uint8_t out[AUTH_MAC_KEY_LEN]);

/* ---- API keys ---- */

#define AUTH_KEY_ID_LEN 16     /* hex digits */
#define AUTH_KEY_SECRET_LEN 64 /* hex digits */
#define AUTH_KEY_LEN (7 + AUTH_KEY_ID_LEN + 1 + AUTH_KEY_SECRET_LEN)
#define AUTH_HASH_HEX_LEN 64

/* A new key from the OS RNG: the whole key (shown once), its id and the
 * hash to store. */
void auth_key_make(char key[AUTH_KEY_LEN + 1], char id[AUTH_KEY_ID_LEN + 1],
		   char hash[AUTH_HASH_HEX_LEN + 1]);

/* Splits "chorus_<id>_<secret>" (exactly, lowercase hex) into its id and
 * the hash of its secret. 0, or -EINVAL. */
int auth_key_parse(const char *s, size_t len, char id[AUTH_KEY_ID_LEN + 1],
		   char hash[AUTH_HASH_HEX_LEN + 1]);

/* Constant-time equality of two hex hashes of AUTH_HASH_HEX_LEN digits. */
bool auth_hash_equal(const char *a, const char *b);

/* The credentials of an Authorization header value: "Bearer TOKEN"
 * (scheme case-insensitive, one or more spaces). 0 with tok and toklen set,
 * or -EINVAL. */
int auth_bearer(const char *value, size_t len, const char **tok, size_t *toklen);

/* ---- passwords ---- */

/* OWASP's Argon2id minimum (2023): 19 MiB, 2 passes, 1 lane. */
#define AUTH_PW_M_KIB 19456
#define AUTH_PW_T 2
#define AUTH_PW_P 1
#define AUTH_PW_ENCODED_MAX 128
#define AUTH_PW_MAX 1024 /* longer passwords are refused, not truncated */

/* Argon2id of pw with a fresh 16-byte salt, encoded ("$argon2id$v=19$m=..."
 * with salt and hash). 0, -EINVAL (empty or too long), or -ENOMEM. */
int auth_password_hash(const char *pw, size_t len, char out[AUTH_PW_ENCODED_MAX]);
/* True when pw matches encoded (constant time in the hash). */
bool auth_password_verify(const char *encoded, const char *pw, size_t len);
/* True when encoded was made with weaker parameters than today's. */
bool auth_password_needs_rehash(const char *encoded);
/* A password for a person to type once: 20 characters of an alphabet
 * without look-alikes (100 bits). */
#define AUTH_PW_GENERATED_LEN 20
void auth_password_generate(char out[AUTH_PW_GENERATED_LEN + 1]);

/* ---- sessions ---- */

/* "<user id>.<generation>.<expiry>.<mac>": decimal numbers, 64 hex MAC. */
#define AUTH_SESSION_MAX 128

void auth_session_make(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t user_id, int64_t generation,
		       int64_t expires_s, char out[AUTH_SESSION_MAX]);

enum auth_verdict {
	AUTH_OK = 0,
	AUTH_MALFORMED, /* not one of ours at all */
	AUTH_FORGED,    /* well-formed, the MAC does not match */
	AUTH_EXPIRED,   /* genuine, past its expiry */
};

/* Checks a session cookie's value: on AUTH_OK (and AUTH_EXPIRED) the user
 * and generation it names; the caller compares the generation with the
 * user's current one. */
enum auth_verdict auth_session_check(const uint8_t key[AUTH_MAC_KEY_LEN], const char *s, size_t len,
				     int64_t now_s, int64_t *user_id, int64_t *generation);

/* The CSRF token that goes with a session: HMAC of the cookie value, sent
 * back by the console in X-CSRF-Token on writes. 64 hex digits. */
void auth_csrf_token(const uint8_t key[AUTH_MAC_KEY_LEN], const char *session, size_t len,
		     char out[65]);
bool auth_csrf_check(const uint8_t key[AUTH_MAC_KEY_LEN], const char *session, size_t len,
		     const char *token, size_t toklen);

/* ---- signed stream URLs ---- */

/* The sig parameter of /api/v1/tracks/{id}/stream?exp=T&sig=S: the
 * principal ("k<key id>" or "u<user id in hex>"), a dot, and 64 hex
 * digits. */
#define AUTH_URL_SIG_MAX (2 + AUTH_KEY_ID_LEN + 20 + 64)

void auth_url_sign(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t track_id, const char *principal,
		   int64_t expires_s, char out[AUTH_URL_SIG_MAX]);

/* The same for a zone's queue (api/queue.c): one signature good for
 * every track the zone plays (the stream checks that it does), so an
 * answer of a hundred links signs once. Its message names its scope:
 * a track's signature never passes for a zone's, nor the reverse. */
void auth_zone_url_sign(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t zone_id, const char *principal,
			int64_t expires_s, char out[AUTH_URL_SIG_MAX]);
enum auth_verdict auth_zone_url_check(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t zone_id,
				      int64_t expires_s, const char *sig, size_t len, int64_t now_s,
				      char *principal, size_t principal_len);

/* AUTH_OK with the principal copied out (principal_len >= AUTH_KEY_ID_LEN
 * + 22), AUTH_EXPIRED (a genuine signature past exp: 410), AUTH_FORGED or
 * AUTH_MALFORMED (403). */
enum auth_verdict auth_url_check(const uint8_t key[AUTH_MAC_KEY_LEN], int64_t track_id,
				 int64_t expires_s, const char *sig, size_t len, int64_t now_s,
				 char *principal, size_t principal_len);

#endif
