/* Joining a cluster: tokens, proofs, the replay table, the sealed answer and
 * DATA/cluster.json (cluster/join.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/join.h"
#include "crypto/seal.h"
#include "util/fsutil.h"
#include "unit.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

static uint8_t key[JOIN_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_token_round_trip(void)
{
	struct join_token tok, back;
	char text[JOIN_TOKEN_LEN + 1], spaced[JOIN_TOKEN_LEN + 8];
	uint8_t mac[JOIN_MAC_LEN];

	join_token_make(key, NOW + 3600, &tok, text);
	CHECK(strlen(text) == JOIN_TOKEN_LEN);
	CHECK(strncmp(text, "chorus1.", 8) == 0);
	CHECK(text[40] == '.');
	CHECK(join_token_parse(text, &back) == 0);
	CHECK(memcmp(&tok, &back, sizeof(tok)) == 0);
	CHECK(join_token_expiry(back.t) == NOW + 3600);
	join_token_mac(key, back.t, mac);
	CHECK(memcmp(mac, back.mac, sizeof(mac)) == 0);
	/* Pasted with a newline around it. */
	snprintf(spaced, sizeof(spaced), "  %s\n", text);
	CHECK(join_token_parse(spaced, &back) == 0);
	CHECK(memcmp(&tok, &back, sizeof(tok)) == 0);
	/* Two tokens differ by their random part. */
	{
		struct join_token t2;
		char text2[JOIN_TOKEN_LEN + 1];
		join_token_make(key, NOW + 3600, &t2, text2);
		CHECK(strcmp(text, text2) != 0);
	}
}

static void test_token_syntax(void)
{
	struct join_token tok;
	char text[JOIN_TOKEN_LEN + 1], bad[JOIN_TOKEN_LEN + 2];

	join_token_make(key, NOW, &tok, text);
	CHECK(join_token_parse("", &tok) == -EINVAL);
	CHECK(join_token_parse("chorus1.", &tok) == -EINVAL);
	memcpy(bad, text, sizeof(text));
	bad[6] = '2'; /* another version */
	CHECK(join_token_parse(bad, &tok) == -EINVAL);
	memcpy(bad, text, sizeof(text));
	bad[40] = ':';
	CHECK(join_token_parse(bad, &tok) == -EINVAL);
	memcpy(bad, text, sizeof(text));
	bad[50] = 'g';
	CHECK(join_token_parse(bad, &tok) == -EINVAL);
	memcpy(bad, text, sizeof(text));
	bad[JOIN_TOKEN_LEN - 1] = '\0'; /* one digit short */
	CHECK(join_token_parse(bad, &tok) == -EINVAL);
	snprintf(bad, sizeof(bad), "%s0", text); /* one too many */
	CHECK(join_token_parse(bad, &tok) == -EINVAL);
}

/* A request as the new node makes it, checked as the member does. */
static void test_request_check(void)
{
	struct join_token tok;
	struct join_request r, p;
	char text[JOIN_TOKEN_LEN + 1], *json;
	uint8_t mac[JOIN_MAC_LEN], other[JOIN_KEY_LEN];

	join_token_make(key, NOW + 3600, &tok, text);
	join_request_make(&tok, NOW, 8080, &r);
	CHECK(strlen(r.nonce) == JOIN_NONCE_HEX);
	json = join_request_json(&r);
	CHECK(strstr(json, text + 41) == NULL); /* the mac is not in it */
	CHECK(join_request_parse(json, strlen(json), &p) == 0);
	free(json);
	CHECK(memcmp(&r, &p, sizeof(r)) == 0);
	CHECK(join_request_check(key, &p, NOW, mac) == 0);
	CHECK(memcmp(mac, tok.mac, sizeof(mac)) == 0);
	/* The clock: within the window either way, not beyond. */
	CHECK(join_request_check(key, &p, NOW + JOIN_WINDOW_S, mac) == 0);
	CHECK(join_request_check(key, &p, NOW - JOIN_WINDOW_S, mac) == 0);
	CHECK(join_request_check(key, &p, NOW + JOIN_WINDOW_S + 1, mac) == -EACCES);
	CHECK(join_request_check(key, &p, NOW - JOIN_WINDOW_S - 1, mac) == -EACCES);
	/* Another cluster's key. */
	memcpy(other, key, sizeof(other));
	other[31] ^= 1;
	CHECK(join_request_check(other, &p, NOW, mac) == -EACCES);
	/* Each field is bound by the proof. */
	p = r;
	p.port = 8081;
	CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	p = r;
	p.time_s = NOW + 1;
	CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	p = r;
	p.nonce[0] = p.nonce[0] == 'a' ? 'b' : 'a';
	CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	p = r;
	p.t[15] ^= 1;
	CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	p = r;
	p.proof[63] = p.proof[63] == '0' ? '1' : '0';
	CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	/* A proof made without the mac (from t alone) fails. */
	{
		struct join_token forged = tok;
		memset(forged.mac, 0, sizeof(forged.mac));
		join_request_make(&forged, NOW, 8080, &p);
		CHECK(join_request_check(key, &p, NOW, mac) == -EACCES);
	}
	/* Expired: past its expiry, whatever the clock of the request. */
	join_token_make(key, NOW - 1, &tok, text);
	join_request_make(&tok, NOW, 8080, &r);
	CHECK(join_request_check(key, &r, NOW, mac) == -EACCES);
	CHECK(join_request_check(key, &r, NOW - 1, mac) == 0);
}

static void test_request_parse_strict(void)
{
	struct join_request r;
	const char *t = "\"t\":\"00000000695565000102030405060708\"";
	const char *nonce = "\"nonce\":\"0123456789abcdef0123456789abcdef\"";
	const char *proof = "\"proof\":\"0123456789abcdef0123456789abcdef"
			    "0123456789abcdef0123456789abcdef\"";
	char body[512];

	snprintf(body, sizeof(body), "{%s,%s,\"time\":1,\"port\":0,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == 0);
	CHECK(r.port == 0 && r.time_s == 1);
	/* An extra member, a duplicate, a missing one, bad types and ranges. */
	snprintf(body, sizeof(body), "{%s,%s,\"time\":1,\"port\":0,%s,\"x\":1}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body), "{%s,%s,\"time\":1,\"time\":1,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body), "{%s,%s,\"time\":1,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body), "{%s,%s,\"time\":\"1\",\"port\":0,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body), "{%s,%s,\"time\":1,\"port\":65536,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body), "{%s,%s,\"time\":-1,\"port\":0,%s}", t, nonce, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL);
	snprintf(body, sizeof(body),
		 "{%s,\"nonce\":\"0123456789ABCDEF0123456789abcdef\","
		 "\"time\":1,\"port\":0,%s}",
		 t, proof);
	CHECK(join_request_parse(body, strlen(body), &r) == -EINVAL); /* upper case */
	CHECK(join_request_parse("[]", 2, &r) == -EINVAL);
	CHECK(join_request_parse("", 0, &r) == -EINVAL);
}

static void test_replay(void)
{
	static struct join_replay r = JOIN_REPLAY_INITIALIZER;
	char nonce[JOIN_NONCE_HEX + 1];

	CHECK(join_replay_add(&r, "0123456789abcdef0123456789abcdef", NOW) == 0);
	CHECK(join_replay_add(&r, "0123456789abcdef0123456789abcdef", NOW + 1) == -EALREADY);
	CHECK(join_replay_add(&r, "0123456789abcdef0123456789abcdee", NOW + 1) == 0);
	CHECK(join_replay_add(&r, "0123456789abcdef0123456789abcdef", NOW + JOIN_REPLAY_S) ==
	      -EALREADY);
	/* Forgotten after JOIN_REPLAY_S: the clock window refuses it by then. */
	CHECK(join_replay_add(&r, "0123456789abcdef0123456789abcdef", NOW + JOIN_REPLAY_S + 2) ==
	      0);
	/* Full: refused rather than forgetting a live nonce. */
	for (int i = 0; i < JOIN_REPLAY_MAX; i++) {
		snprintf(nonce, sizeof(nonce), "%032x", i);
		join_replay_add(&r, nonce, NOW + 1000);
	}
	CHECK(join_replay_add(&r, "ffffffffffffffffffffffffffffffff", NOW + 1000) == -EBUSY);
	CHECK(join_replay_add(&r, "ffffffffffffffffffffffffffffffff",
			      NOW + 1000 + JOIN_REPLAY_S + 1) == 0);
}

static void test_answer_round_trip_and_tampering(void)
{
	struct join_token tok;
	struct join_request r;
	struct join_config c = {0}, back;
	char text[JOIN_TOKEN_LEN + 1], *answer, *copy, *p;
	uint8_t mac[JOIN_MAC_LEN];
	size_t len;

	c.db = "host=pg1 dbname=chorus user=chorus password=hunter2-secret";
	c.origin = "s3://music/chorus?endpoint=http://s3:9000&region=eu-1";
	c.aws_access_key_id = "AKIAEXAMPLE";
	c.aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	c.address = "10.0.0.7";
	join_token_make(key, NOW + 3600, &tok, text);
	join_request_make(&tok, NOW, 8080, &r);
	CHECK(join_request_check(key, &r, NOW, mac) == 0);
	answer = join_answer_make(mac, r.nonce, &c, &len);
	CHECK(strlen(answer) == len);
	CHECK(strstr(answer, "hunter2") == NULL && strstr(answer, "wJalr") == NULL &&
	      strstr(answer, "AKIA") == NULL && strstr(answer, "s3://") == NULL);
	CHECK(join_answer_open(tok.mac, r.nonce, answer, len, &back) == 0);
	CHECK_STR(back.db, c.db);
	CHECK_STR(back.origin, c.origin);
	CHECK_STR(back.aws_access_key_id, c.aws_access_key_id);
	CHECK_STR(back.aws_secret_access_key, c.aws_secret_access_key);
	CHECK(back.aws_session_token == NULL);
	CHECK_STR(back.address, "10.0.0.7");
	join_config_free(&back);

	/* Another nonce (a replayed answer), another mac: refused. */
	{
		char nonce[JOIN_NONCE_HEX + 1];
		uint8_t m2[JOIN_MAC_LEN];
		memcpy(nonce, r.nonce, sizeof(nonce));
		nonce[0] = nonce[0] == 'a' ? 'b' : 'a';
		CHECK(join_answer_open(tok.mac, nonce, answer, len, &back) == -EBADMSG);
		memcpy(m2, tok.mac, sizeof(m2));
		m2[0] ^= 1;
		CHECK(join_answer_open(m2, r.nonce, answer, len, &back) == -EBADMSG);
	}
	/* A flipped digit of the ciphertext, of the tag, of the member's nonce. */
	copy = strdup(answer);
	p = strstr(copy, "\"sealed\":\"") + 10;
	p[4] = p[4] == '0' ? '1' : '0';
	CHECK(join_answer_open(tok.mac, r.nonce, copy, len, &back) == -EBADMSG);
	memcpy(copy, answer, len);
	p = strrchr(copy, '"') - 1;
	*p = *p == '0' ? '1' : '0';
	CHECK(join_answer_open(tok.mac, r.nonce, copy, len, &back) == -EBADMSG);
	memcpy(copy, answer, len);
	p = strstr(copy, "\"nonce_member\":\"") + 16;
	p[0] = p[0] == '0' ? '1' : '0';
	CHECK(join_answer_open(tok.mac, r.nonce, copy, len, &back) == -EBADMSG);
	/* Truncated: no longer an answer, or no longer opens. */
	memcpy(copy, answer, len);
	p = strstr(copy, "\"sealed\":\"") + 10;
	memmove(p, p + 2, strlen(p + 2) + 1);
	CHECK(join_answer_open(tok.mac, r.nonce, copy, strlen(copy), &back) == -EBADMSG);
	CHECK(join_answer_open(tok.mac, r.nonce, "{}", 2, &back) == -EINVAL);
	CHECK(join_answer_open(tok.mac, r.nonce, "nope", 4, &back) == -EINVAL);
	free(copy);
	free(answer);
}

static void test_config_rules(void)
{
	struct join_config c;
	const char *ok = "{\"db\":\"dbname=x\",\"origin\":\"dir:/srv/o\",\"future\":[1]}";

	CHECK(join_config_parse(ok, strlen(ok), &c) == 0);
	CHECK_STR(c.db, "dbname=x");
	join_config_free(&c);
	CHECK(join_config_parse("{\"db\":\"x\"}", 10, &c) == -EINVAL);
	CHECK(c.db == NULL);
#define BAD(s) CHECK(join_config_parse(s, strlen(s), &c) == -EINVAL)
	BAD("{\"db\":\"x\",\"origin\":\"\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"db\":\"y\"}");
	BAD("{\"db\":\"x\",\"origin\":1}");
	BAD("{\"db\":\"x\\n\",\"origin\":\"o\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"address\":\"a b\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"address\":\"::1\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"advertise\":\"ftp://x\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"aws_access_key_id\":\"k\"}");
	BAD("{\"db\":\"x\",\"origin\":\"o\",\"aws_session_token\":\"t\"}");
#undef BAD
}

static void test_url_host(void)
{
	char out[80];

	join_url_host("10.1.2.3", out, sizeof(out));
	CHECK_STR(out, "10.1.2.3");
	join_url_host("::ffff:10.1.2.3", out, sizeof(out));
	CHECK_STR(out, "10.1.2.3");
	join_url_host("2001:db8::5", out, sizeof(out));
	CHECK_STR(out, "[2001:db8::5]");
}

static void test_save_load(void)
{
	char dir[] = "/tmp/chorus-test-join-XXXXXX", path[128];
	struct join_config c = {0}, back;
	struct stat st;
	char err[256];

	CHECK(mkdtemp(dir) != NULL);
	CHECK(join_config_load(dir, &back, err, sizeof(err)) == -ENOENT);
	c.db = "host=10.0.0.2 password=p";
	c.origin = "dir:/srv/o";
	c.address = "[2001:db8::5]";
	c.site = "eu-1";
	CHECK(join_config_save(dir, &c, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/cluster.json", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(join_config_load(dir, &back, err, sizeof(err)) == 0);
	CHECK_STR(back.db, c.db);
	CHECK_STR(back.origin, c.origin);
	CHECK_STR(back.address, c.address);
	CHECK_STR(back.site, "eu-1");
	CHECK(back.advertise == NULL);
	join_config_free(&back);
	CHECK(fs_write_atomic(path, NULL, "{", 1, 0600) == 0);
	CHECK(join_config_load(dir, &back, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "cluster.json") != NULL);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	crypto_warm_up();
	TEST_RUN(test_token_round_trip);
	TEST_RUN(test_token_syntax);
	TEST_RUN(test_request_check);
	TEST_RUN(test_request_parse_strict);
	TEST_RUN(test_replay);
	TEST_RUN(test_answer_round_trip_and_tampering);
	TEST_RUN(test_config_rules);
	TEST_RUN(test_url_host);
	TEST_RUN(test_save_load);
	TEST_EXIT();
}
