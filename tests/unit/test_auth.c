/* Unit tests of src/auth: roles, API keys, passwords, sessions, CSRF,
 * signed stream URLs and the rate limiter. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/limit.h"
#include "unit.h"

static const uint8_t cluster_key[32] = {1, 2, 3, 4, 5, 6, 7, 8};

static void test_roles(void)
{
	enum auth_role r = AUTH_ANONYMOUS;

	CHECK(auth_role_parse("admin", &r) == 0 && r == AUTH_ADMIN);
	CHECK(auth_role_parse("store", &r) == 0 && r == AUTH_STORE);
	CHECK(auth_role_parse("listener", &r) == 0 && r == AUTH_LISTENER);
	CHECK(auth_role_parse("editor", &r) == 0 && r == AUTH_EDITOR);
	CHECK(auth_role_parse("anonymous", &r) == -EINVAL);
	CHECK(auth_role_parse("Admin", &r) == -EINVAL);
	CHECK(auth_role_parse("", &r) == -EINVAL);
	CHECK_STR(auth_role_name(AUTH_EDITOR), "editor");
	CHECK_STR(auth_role_name((enum auth_role)99), "?");
}

static void test_derive(void)
{
	uint8_t a[AUTH_MAC_KEY_LEN], b[AUTH_MAC_KEY_LEN], c[AUTH_MAC_KEY_LEN];

	auth_derive(cluster_key, "chorus stream url v1", a);
	auth_derive(cluster_key, "chorus stream url v1", b);
	auth_derive(cluster_key, "chorus session v1", c);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(memcmp(a, c, sizeof(a)) != 0);
	CHECK(memcmp(a, cluster_key, sizeof(a)) != 0);
}

static void test_keys(void)
{
	char key[AUTH_KEY_LEN + 1], id[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1];
	char id2[AUTH_KEY_ID_LEN + 1], hash2[AUTH_HASH_HEX_LEN + 1];
	char key2[AUTH_KEY_LEN + 1], bad[AUTH_KEY_LEN + 2];

	auth_key_make(key, id, hash);
	CHECK(strlen(key) == AUTH_KEY_LEN);
	CHECK(strncmp(key, "chorus_", 7) == 0);
	CHECK(strncmp(key + 7, id, AUTH_KEY_ID_LEN) == 0);
	CHECK(auth_key_parse(key, strlen(key), id2, hash2) == 0);
	CHECK_STR(id2, id);
	CHECK(auth_hash_equal(hash, hash2));
	/* The stored hash is not the secret. */
	CHECK(strstr(key, hash) == NULL);

	auth_key_make(key2, id2, hash2);
	CHECK(strcmp(key, key2) != 0 && strcmp(id, id2) != 0 && !auth_hash_equal(hash, hash2));

	/* A wrong secret parses but hashes differently. */
	memcpy(bad, key, sizeof(key));
	bad[AUTH_KEY_LEN - 1] = bad[AUTH_KEY_LEN - 1] == 'a' ? 'b' : 'a';
	CHECK(auth_key_parse(bad, AUTH_KEY_LEN, id2, hash2) == 0);
	CHECK(!auth_hash_equal(hash, hash2));
	/* Malformed: truncated, too long, uppercase, wrong prefix, wrong separator. */
	CHECK(auth_key_parse(key, AUTH_KEY_LEN - 1, id2, hash2) == -EINVAL);
	memcpy(bad, key, sizeof(key));
	bad[AUTH_KEY_LEN] = 'a';
	bad[AUTH_KEY_LEN + 1] = '\0';
	CHECK(auth_key_parse(bad, AUTH_KEY_LEN + 1, id2, hash2) == -EINVAL);
	memcpy(bad, key, sizeof(key));
	bad[10] = 'A';
	CHECK(auth_key_parse(bad, AUTH_KEY_LEN, id2, hash2) == -EINVAL);
	memcpy(bad, key, sizeof(key));
	bad[0] = 'C';
	CHECK(auth_key_parse(bad, AUTH_KEY_LEN, id2, hash2) == -EINVAL);
	memcpy(bad, key, sizeof(key));
	bad[7 + AUTH_KEY_ID_LEN] = '-';
	CHECK(auth_key_parse(bad, AUTH_KEY_LEN, id2, hash2) == -EINVAL);
	CHECK(auth_key_parse("", 0, id2, hash2) == -EINVAL);
}

static void test_bearer(void)
{
	const char *t = NULL;
	size_t n = 0;

	CHECK(auth_bearer("Bearer abc", 10, &t, &n) == 0 && n == 3 && memcmp(t, "abc", 3) == 0);
	CHECK(auth_bearer("bearer   abc  ", 14, &t, &n) == 0 && n == 3);
	CHECK(auth_bearer("Basic abc", 9, &t, &n) == -EINVAL);
	CHECK(auth_bearer("Bearer", 6, &t, &n) == -EINVAL);
	CHECK(auth_bearer("Bearer ", 7, &t, &n) == -EINVAL);
	CHECK(auth_bearer("Bearerabc", 9, &t, &n) == -EINVAL);
	CHECK(auth_bearer("Bearer a b", 10, &t, &n) == -EINVAL);
	CHECK(auth_bearer("Bearer a\x01", 9, &t, &n) == -EINVAL);
}

static void test_passwords(void)
{
	char enc[AUTH_PW_ENCODED_MAX], enc2[AUTH_PW_ENCODED_MAX], gen[AUTH_PW_GENERATED_LEN + 1];
	char *huge;

	CHECK(auth_password_hash("correct horse", 13, enc) == 0);
	CHECK(strncmp(enc, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	CHECK(auth_password_verify(enc, "correct horse", 13));
	CHECK(!auth_password_verify(enc, "correct hors", 12));
	CHECK(!auth_password_verify(enc, "correct horsf", 13));
	CHECK(!auth_password_needs_rehash(enc));
	/* Salted: the same password hashes differently. */
	CHECK(auth_password_hash("correct horse", 13, enc2) == 0 && strcmp(enc, enc2) != 0);
	/* Weaker parameters, or another algorithm, want a new hash. */
	CHECK(auth_password_needs_rehash("$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA"));
	CHECK(auth_password_needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"));
	CHECK(!auth_password_verify("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x", 1));
	CHECK(!auth_password_verify("garbage", "x", 1));
	CHECK(auth_password_hash("", 0, enc2) == -EINVAL);
	huge = malloc(AUTH_PW_MAX + 1);
	memset(huge, 'a', AUTH_PW_MAX + 1);
	CHECK(auth_password_hash(huge, AUTH_PW_MAX + 1, enc2) == -EINVAL);
	free(huge);

	auth_password_generate(gen);
	CHECK(strlen(gen) == AUTH_PW_GENERATED_LEN);
	CHECK(strspn(gen, "abcdefghjkmnpqrstuvwxyz23456789-") == AUTH_PW_GENERATED_LEN);
}

static void test_sessions(void)
{
	uint8_t key[AUTH_MAC_KEY_LEN], other[AUTH_MAC_KEY_LEN];
	char s[AUTH_SESSION_MAX], t[AUTH_SESSION_MAX], csrf[65];
	int64_t user = 0, gen = 0;

	auth_derive(cluster_key, "chorus session v1", key);
	auth_derive(cluster_key, "chorus other", other);
	auth_session_make(key, 9007199254740993, 4, 2000, s);
	CHECK(auth_session_check(key, s, strlen(s), 1000, &user, &gen) == AUTH_OK);
	CHECK(user == 9007199254740993 && gen == 4);
	CHECK(auth_session_check(key, s, strlen(s), 2000, &user, &gen) == AUTH_EXPIRED);
	CHECK(auth_session_check(other, s, strlen(s), 1000, &user, &gen) == AUTH_FORGED);
	/* Any altered field is forged; a non-canonical number is malformed. */
	memcpy(t, s, sizeof(s));
	t[0] = t[0] == '1' ? '2' : '1';
	CHECK(auth_session_check(key, t, strlen(t), 1000, &user, &gen) == AUTH_FORGED);
	memcpy(t, "0", 1);
	memcpy(t + 1, s, strlen(s) + 1);
	CHECK(auth_session_check(key, t, strlen(t), 1000, &user, &gen) == AUTH_MALFORMED);
	CHECK(auth_session_check(key, s, strlen(s) - 1, 1000, &user, &gen) == AUTH_MALFORMED);
	CHECK(auth_session_check(key, "", 0, 1000, &user, &gen) == AUTH_MALFORMED);
	CHECK(auth_session_check(key, "1.2.3.", 6, 1000, &user, &gen) == AUTH_MALFORMED);
	CHECK(auth_session_check(key, "99999999999999999999.1.1.x", 26, 0, &user, &gen) ==
	      AUTH_MALFORMED);

	auth_csrf_token(key, s, strlen(s), csrf);
	CHECK(auth_csrf_check(key, s, strlen(s), csrf, 64));
	CHECK(!auth_csrf_check(key, s, strlen(s), csrf, 63));
	auth_session_make(key, 1, 4, 2000, t);
	CHECK(!auth_csrf_check(key, t, strlen(t), csrf, 64));
	CHECK(!auth_csrf_check(other, s, strlen(s), csrf, 64));
}

static void test_signed_urls(void)
{
	uint8_t key[AUTH_MAC_KEY_LEN], other[AUTH_MAC_KEY_LEN];
	char sig[AUTH_URL_SIG_MAX], t[AUTH_URL_SIG_MAX], who[32];

	auth_derive(cluster_key, "chorus stream url v1", key);
	auth_derive(cluster_key, "chorus session v1", other);
	auth_url_sign(key, 42, "k0123456789abcdef", 5000, sig);
	CHECK(strncmp(sig, "k0123456789abcdef.", 18) == 0 && strlen(sig) == 18 + 64);
	CHECK(auth_url_check(key, 42, 5000, sig, strlen(sig), 4000, who, sizeof(who)) == AUTH_OK);
	CHECK_STR(who, "k0123456789abcdef");
	CHECK(auth_url_check(key, 42, 5000, sig, strlen(sig), 5000, who, sizeof(who)) ==
	      AUTH_EXPIRED);
	/* Bound to the track, the expiry, the principal and the key. */
	CHECK(auth_url_check(key, 43, 5000, sig, strlen(sig), 4000, who, sizeof(who)) ==
	      AUTH_FORGED);
	CHECK(auth_url_check(key, 42, 5001, sig, strlen(sig), 4000, who, sizeof(who)) ==
	      AUTH_FORGED);
	CHECK(auth_url_check(other, 42, 5000, sig, strlen(sig), 4000, who, sizeof(who)) ==
	      AUTH_FORGED);
	memcpy(t, sig, sizeof(sig));
	t[1] = t[1] == '0' ? '1' : '0';
	CHECK(auth_url_check(key, 42, 5000, t, strlen(t), 4000, who, sizeof(who)) == AUTH_FORGED);
	memcpy(t, sig, sizeof(sig));
	t[0] = 'u';
	CHECK(auth_url_check(key, 42, 5000, t, strlen(t), 4000, who, sizeof(who)) == AUTH_FORGED);
	/* Malformed: no dot, short MAC, bad principal, no room for it. */
	CHECK(auth_url_check(key, 42, 5000, "abc", 3, 4000, who, sizeof(who)) == AUTH_MALFORMED);
	CHECK(auth_url_check(key, 42, 5000, sig, strlen(sig) - 1, 4000, who, sizeof(who)) ==
	      AUTH_MALFORMED);
	memcpy(t, sig, sizeof(sig));
	t[0] = 'x';
	CHECK(auth_url_check(key, 42, 5000, t, strlen(t), 4000, who, sizeof(who)) ==
	      AUTH_MALFORMED);
	CHECK(auth_url_check(key, 42, 5000, sig, strlen(sig), 4000, who, 5) == AUTH_MALFORMED);
	/* A principal that cannot be one signs a URL that never checks. */
	auth_url_sign(key, 42, "k\nx", 5000, sig);
	CHECK(auth_url_check(key, 42, 5000, sig, strlen(sig), 4000, who, sizeof(who)) != AUTH_OK);
}

static void test_limit(void)
{
	auth_limit_t *l = auth_limit_new(64, 5, 1.0);
	int allowed = 0, wait = 0;

	for (int i = 0; i < 100; i++) {
		int w = auth_limit_take(l, "alice", 5, 1000);
		if (w == 0)
			allowed++;
		else
			wait = w;
	}
	CHECK(allowed == 5);
	CHECK(wait == 1);
	/* Another name has its own bucket. */
	CHECK(auth_limit_take(l, "bob", 3, 1000) == 0);
	/* A token a second comes back: 2.5 s later, two more. */
	CHECK(auth_limit_take(l, "alice", 5, 3500) == 0);
	CHECK(auth_limit_take(l, "alice", 5, 3500) == 0);
	CHECK(auth_limit_take(l, "alice", 5, 3500) >= 1);
	auth_limit_reset(l, "alice", 5);
	CHECK(auth_limit_take(l, "alice", 5, 3500) == 0);
	/* Many names at once: memory stays bounded, a draining name keeps its
	 * limit while the others are full. */
	for (int i = 0; i < 5; i++)
		auth_limit_take(l, "mallory", 7, 10000);
	for (int i = 0; i < 10000; i++) {
		char n[16];
		int k = snprintf(n, sizeof(n), "n%d", i);
		auth_limit_take(l, n, (size_t)k, 10000);
	}
	CHECK(auth_limit_take(l, "mallory", 7, 10000) >= 1);
	auth_limit_free(l);
}

/* A batch is taken whole or refused whole, with the wait for all of it. */
static void test_limit_n(void)
{
	auth_limit_t *l = auth_limit_new(64, 100, 100 / 60.0);

	CHECK(auth_limit_take_n(l, "k1", 2, 60, 0) == 0);
	CHECK(auth_limit_take_n(l, "k1", 2, 40, 0) == 0);
	/* Empty: 30 more take 18 s at 100 a minute. */
	CHECK(auth_limit_take_n(l, "k1", 2, 30, 0) == 18);
	/* Refused whole: nothing was taken, so 1 still waits 0.6 s -> 1. */
	CHECK(auth_limit_take_n(l, "k1", 2, 1, 0) == 1);
	CHECK(auth_limit_take_n(l, "k1", 2, 30, 18000) == 0);
	CHECK(auth_limit_take_n(l, "k1", 2, 1, 18000) >= 1);
	/* Another name has its own bucket; a burst never exceeds its size. */
	CHECK(auth_limit_take_n(l, "k2", 2, 100, 18000) == 0);
	CHECK(auth_limit_take_n(l, "k3", 2, 50, 18000) == 0);
	CHECK(auth_limit_take_n(l, "k3", 2, 50, 10000000) == 0);
	CHECK(auth_limit_take_n(l, "k3", 2, 100, 10030000) == 0); /* 30 s: 50 back */
	auth_limit_free(l);
}

int main(void)
{
	TEST_RUN(test_roles);
	TEST_RUN(test_derive);
	TEST_RUN(test_keys);
	TEST_RUN(test_bearer);
	TEST_RUN(test_passwords);
	TEST_RUN(test_sessions);
	TEST_RUN(test_signed_urls);
	TEST_RUN(test_limit);
	TEST_RUN(test_limit_n);
	TEST_EXIT();
}
