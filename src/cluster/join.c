/*
 * Joining a cluster with a token (see join.h).
 *
 * JSON is read and written with jansson here (util/json.h's json_t is not
 * included), strictly where it comes from the network: duplicate keys are
 * refused, a request has exactly its five members. The configuration
 * tolerates members it does not know, so an older node reads a newer
 * member's answer.
 *
 * Secrets (the mac, derived keys, the configuration's text) are zeroed
 * before their memory is freed, as far as this file holds them; jansson's
 * own copies of a parsed configuration are freed by it unzeroed, which is
 * no worse than the process environment that holds the same values.
 */
#include "cluster/join.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cluster/http_client.h"
#include "crypto/seal.h"
#include "sql/sqlite.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/text.h"
#include "util/xalloc.h"

#define STR_MAX 4096 /* any string of the configuration */
#define ANSWER_MAX (2 * JOIN_CONFIG_MAX + 4096)

static void hmac(const uint8_t key[32], const void *msg, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	HMAC(EVP_sha256(), key, 32, msg, len, out, &n);
}

/* ---- tokens ---- */

void join_token_mac(const uint8_t key[JOIN_KEY_LEN], const uint8_t t[JOIN_T_LEN],
		    uint8_t mac[JOIN_MAC_LEN])
{
	static const char label[] = "chorus join token";
	uint8_t msg[sizeof(label) - 1 + JOIN_T_LEN];

	memcpy(msg, label, sizeof(label) - 1);
	memcpy(msg + sizeof(label) - 1, t, JOIN_T_LEN);
	hmac(key, msg, sizeof(msg), mac);
}

void join_token_make(const uint8_t key[JOIN_KEY_LEN], int64_t expires_s, struct join_token *tok,
		     char out[JOIN_TOKEN_LEN + 1])
{
	uint64_t e = (uint64_t)expires_s;

	for (int i = 0; i < 8; i++)
		tok->t[i] = (uint8_t)(e >> (56 - 8 * i));
	crypto_random(tok->t + 8, JOIN_T_LEN - 8);
	join_token_mac(key, tok->t, tok->mac);
	memcpy(out, JOIN_TOKEN_PREFIX, 8);
	text_hex(tok->t, JOIN_T_LEN, out + 8);
	out[8 + 2 * JOIN_T_LEN] = '.';
	text_hex(tok->mac, JOIN_MAC_LEN, out + 8 + 2 * JOIN_T_LEN + 1);
}

int join_token_parse(const char *s, struct join_token *out)
{
	size_t n;

	while (*s && strchr(" \t\r\n", *s))
		s++;
	n = strlen(s);
	while (n > 0 && strchr(" \t\r\n", s[n - 1]))
		n--;
	if (n != JOIN_TOKEN_LEN || memcmp(s, JOIN_TOKEN_PREFIX, 8) != 0 ||
	    s[8 + 2 * JOIN_T_LEN] != '.' || text_unhex(s + 8, out->t, JOIN_T_LEN) < 0 ||
	    text_unhex(s + 8 + 2 * JOIN_T_LEN + 1, out->mac, JOIN_MAC_LEN) < 0) {
		explicit_bzero(out, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

int64_t join_token_expiry(const uint8_t t[JOIN_T_LEN])
{
	uint64_t e = 0;

	for (int i = 0; i < 8; i++)
		e = e << 8 | t[i];
	return e > INT64_MAX ? INT64_MAX : (int64_t)e;
}

/* ---- requests ---- */

void join_proof(const uint8_t mac[JOIN_MAC_LEN], const char *nonce, int64_t time_s, int port,
		char out[65])
{
	char msg[128];
	uint8_t p[32];
	int n;

	/* The nonce is hex (checked by the parser): no part holds a newline. */
	n = snprintf(msg, sizeof(msg), "join\n%.*s\n%" PRId64 "\n%d", JOIN_NONCE_HEX, nonce, time_s,
		     port);
	hmac(mac, msg, n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : 0, p);
	text_hex(p, sizeof(p), out);
}

void join_request_make(const struct join_token *tok, int64_t now_s, int port,
		       struct join_request *out)
{
	uint8_t nonce[JOIN_NONCE_HEX / 2];

	memset(out, 0, sizeof(*out));
	memcpy(out->t, tok->t, JOIN_T_LEN);
	crypto_random(nonce, sizeof(nonce));
	text_hex(nonce, sizeof(nonce), out->nonce);
	out->time_s = now_s;
	out->port = port;
	join_proof(tok->mac, out->nonce, now_s, port, out->proof);
}

char *join_request_json(const struct join_request *r)
{
	char t[2 * JOIN_T_LEN + 1];
	json_t *o;
	char *s;

	text_hex(r->t, JOIN_T_LEN, t);
	o = json_pack("{s:s, s:s, s:I, s:i, s:s}", "t", t, "nonce", r->nonce, "time",
		      (json_int_t)r->time_s, "port", r->port, "proof", r->proof);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		abort(); /* only allocation fails here */
	return s;
}

static bool is_hex(const char *s, size_t want)
{
	if (strlen(s) != want)
		return false;
	for (size_t i = 0; i < want; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A string member of o that is hex of exactly want digits. */
static const char *hex_member(json_t *o, const char *key, size_t want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && is_hex(s, want) ? s : NULL;
}

int join_request_parse(const char *body, size_t len, struct join_request *out)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *tm, *pt;
	const char *t, *nonce, *proof;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root) || json_object_size(root) != 5)
		goto out;
	t = hex_member(root, "t", 2 * JOIN_T_LEN);
	nonce = hex_member(root, "nonce", JOIN_NONCE_HEX);
	proof = hex_member(root, "proof", 64);
	tm = json_object_get(root, "time");
	pt = json_object_get(root, "port");
	if (!t || !nonce || !proof || !json_is_integer(tm) || !json_is_integer(pt) ||
	    json_integer_value(tm) < 0 || json_integer_value(pt) < 0 ||
	    json_integer_value(pt) > 65535)
		goto out;
	text_unhex(t, out->t, JOIN_T_LEN);
	memcpy(out->nonce, nonce, JOIN_NONCE_HEX + 1);
	memcpy(out->proof, proof, 65);
	out->time_s = (int64_t)json_integer_value(tm);
	out->port = (int)json_integer_value(pt);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int join_request_check(const uint8_t key[JOIN_KEY_LEN], const struct join_request *r, int64_t now_s,
		       uint8_t mac_out[JOIN_MAC_LEN])
{
	uint8_t mac[JOIN_MAC_LEN];
	char want[65];
	bool ok;

	join_token_mac(key, r->t, mac);
	join_proof(mac, r->nonce, r->time_s, r->port, want);
	/* Every check is made whatever the others gave: the time taken says
	 * nothing about which failed. */
	ok = CRYPTO_memcmp(want, r->proof, 64) == 0;
	ok &= join_token_expiry(r->t) >= now_s;
	ok &= r->time_s >= now_s - JOIN_WINDOW_S && r->time_s <= now_s + JOIN_WINDOW_S;
	ok &= is_hex(r->nonce, JOIN_NONCE_HEX);
	if (ok)
		memcpy(mac_out, mac, JOIN_MAC_LEN);
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(want, sizeof(want));
	return ok ? 0 : -EACCES;
}

int join_replay_add(struct join_replay *r, const char *nonce, int64_t now_s)
{
	size_t kept = 0;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (r->seen[i].at + JOIN_REPLAY_S < now_s || r->seen[i].at > now_s + JOIN_REPLAY_S)
			continue; /* forgotten (or from a clock since set back) */
		if (strcmp(r->seen[i].nonce, nonce) == 0)
			rc = -EALREADY;
		r->seen[kept++] = r->seen[i];
	}
	r->n = kept;
	if (rc == 0 && r->n == JOIN_REPLAY_MAX)
		rc = -EBUSY;
	if (rc == 0) {
		snprintf(r->seen[r->n].nonce, sizeof(r->seen[r->n].nonce), "%s", nonce);
		r->seen[r->n].at = now_s;
		r->n++;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- the configuration ---- */

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void join_config_free(struct join_config *c)
{
	free_secret(c->db);
	free_secret(c->origin);
	free_secret(c->aws_access_key_id);
	free_secret(c->aws_secret_access_key);
	free_secret(c->aws_session_token);
	free_secret(c->address);
	free_secret(c->advertise);
	free_secret(c->site);
	memset(c, 0, sizeof(*c));
}

/* The members in file order. */
/* clang-format off: one member a line, which it would join */
#define CONFIG_FIELDS(X)                                                                           \
	X(db)                                                                                      \
	X(origin)                                                                                  \
	X(aws_access_key_id)                                                                       \
	X(aws_secret_access_key)                                                                   \
	X(aws_session_token)                                                                       \
	X(address)                                                                                 \
	X(advertise)                                                                               \
	X(site)
/* clang-format on */

char *join_config_json(const struct join_config *c, size_t *len)
{
	json_t *o = json_object();
	char *s;

#define PUT(f)                                                                                     \
	if (c->f && json_object_set_new(o, #f, json_string(c->f)) < 0)                             \
		abort();
	CONFIG_FIELDS(PUT)
#undef PUT
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		abort();
	*len = strlen(s);
	return s;
}

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* An address as join_url_host makes it: IPv4, a host name, or [IPv6]. */
static bool address_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || strchr(".:-[]%", ch)))
			return false;
	}
	return !strchr(s, ':') || (s[0] == '[' && s[n - 1] == ']');
}

static bool advertise_ok(const char *s)
{
	return (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
	       strlen(s) <= 255 && !strpbrk(s, " \t\r\n") && printable(s, 255);
}

int join_config_parse(const char *json, size_t len, struct join_config *out)
{
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL), *v;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root))
		goto out;
#define GET(f)                                                                                     \
	if ((v = json_object_get(root, #f)) != NULL) {                                             \
		if (!json_is_string(v) || !printable(json_string_value(v), STR_MAX))               \
			goto out;                                                                  \
		out->f = xstrdup(json_string_value(v));                                            \
	}
	CONFIG_FIELDS(GET)
#undef GET
	if (!out->db || !*out->db || !out->origin || !*out->origin ||
	    (out->address && !address_ok(out->address)) ||
	    (out->advertise && !advertise_ok(out->advertise)) ||
	    (out->site && strlen(out->site) > 63) ||
	    (!out->aws_access_key_id != !out->aws_secret_access_key) ||
	    (out->aws_session_token && !out->aws_access_key_id))
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		join_config_free(out);
	return rc;
}

static void config_key(const uint8_t mac[JOIN_MAC_LEN], const char *nonce, const char *nonce_member,
		       uint8_t key[SEAL_KEY_LEN])
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "join config\n%.*s\n%.*s", JOIN_NONCE_HEX, nonce,
			 JOIN_NONCE_HEX, nonce_member);

	hmac(mac, msg, n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : 0, key);
}

char *join_answer_make(const uint8_t mac[JOIN_MAC_LEN], const char *nonce,
		       const struct join_config *c, size_t *len)
{
	uint8_t key[SEAL_KEY_LEN], nm[JOIN_NONCE_HEX / 2];
	char nonce_member[JOIN_NONCE_HEX + 1], *plain, *hex, *s;
	unsigned char *sealed;
	size_t plen;
	json_t *o;

	crypto_random(nm, sizeof(nm));
	text_hex(nm, sizeof(nm), nonce_member);
	config_key(mac, nonce, nonce_member, key);
	plain = join_config_json(c, &plen);
	sealed = xmalloc(plen + SEAL_TAG_LEN);
	/* A key made for this one answer: index 0 is its only use. */
	if (seal_chunk(key, 0, plain, plen, sealed) < 0)
		abort(); /* crypto_warm_up proved the cipher works */
	explicit_bzero(plain, plen);
	free(plain);
	explicit_bzero(key, sizeof(key));
	hex = xmalloc(2 * (plen + SEAL_TAG_LEN) + 1);
	text_hex(sealed, plen + SEAL_TAG_LEN, hex);
	free(sealed);
	o = json_pack("{s:s, s:s}", "nonce_member", nonce_member, "sealed", hex);
	free(hex);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		abort();
	*len = strlen(s);
	return s;
}

int join_answer_open(const uint8_t mac[JOIN_MAC_LEN], const char *nonce, const char *body,
		     size_t len, struct join_config *out)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	const char *nonce_member, *hex;
	unsigned char *sealed = NULL;
	uint8_t key[SEAL_KEY_LEN];
	size_t hlen, slen;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root))
		goto out;
	nonce_member = hex_member(root, "nonce_member", JOIN_NONCE_HEX);
	hex = json_string_value(json_object_get(root, "sealed"));
	if (!nonce_member || !hex)
		goto out;
	hlen = strlen(hex);
	if (hlen % 2 || hlen / 2 < SEAL_TAG_LEN || hlen / 2 > JOIN_CONFIG_MAX + SEAL_TAG_LEN)
		goto out;
	slen = hlen / 2;
	sealed = xmalloc(slen);
	if (text_unhex(hex, sealed, slen) < 0)
		goto out;
	config_key(mac, nonce, nonce_member, key);
	rc = seal_open(key, 0, sealed, slen, sealed);
	explicit_bzero(key, sizeof(key));
	if (rc < 0) {
		rc = -EBADMSG;
		goto out;
	}
	rc = join_config_parse((const char *)sealed, slen - SEAL_TAG_LEN, out);
	explicit_bzero(sealed, slen);
out:
	free(sealed);
	json_decref(root);
	return rc;
}

int join_config_save(const char *data_dir, const struct join_config *c, char *err, size_t errlen)
{
	char path[4200], *s;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", data_dir, JOIN_CONFIG_FILE);
	s = join_config_json(c, &len);
	s = xrealloc(s, len + 2);
	s[len++] = '\n';
	s[len] = '\0';
	rc = fs_write_atomic(path, NULL, s, len, 0600);
	explicit_bzero(s, len);
	free(s);
	/* fs_write_atomic creates the file 0600; a umask could only narrow it. */
	if (rc < 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

int join_config_load(const char *data_dir, struct join_config *out, char *err, size_t errlen)
{
	char path[4200], *s = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/%s", data_dir, JOIN_CONFIG_FILE);
	rc = fs_read_all(path, JOIN_CONFIG_MAX, &s, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = join_config_parse(s, len, out);
	if (rc < 0)
		snprintf(err, errlen,
			 "%s is not a cluster configuration (db and origin are required)", path);
	explicit_bzero(s, len);
	free(s);
	return rc;
}

void join_url_host(const char *addr, char *out, size_t outlen)
{
	if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.') && !strchr(addr + 7, ':'))
		snprintf(out, outlen, "%s", addr + 7);
	else if (strchr(addr, ':'))
		snprintf(out, outlen, "[%s]", addr);
	else
		snprintf(out, outlen, "%s", addr);
}

/* ---- the new node's side ---- */

/* POSTs body to url; the answer's status and body. 0, or -EHOSTUNREACH
 * with libcurl's reason in err. */
static int post(const char *url, const char *body, long *status, buf_t *answer, char *err,
		size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	CURL *h = http_client_new(url, 5000, 30000);
	int rc;

	if (!h) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -EIO;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	http_client_body_to(h, answer);
	rc = http_client_perform(h, status, err, errlen);
	http_client_free(h);
	curl_slist_free_all(hdrs);
	return rc < 0 ? -EHOSTUNREACH : 0;
}

int join_run(const char *url, const char *token, int port, struct join_config *out, char *err,
	     size_t errlen)
{
	struct join_token tok;
	struct join_request req;
	char full[2200], why[CURL_ERROR_SIZE + 64], when[CLOCK_UTC_LEN], *body = NULL;
	size_t base = strlen(url);
	int64_t now = (int64_t)time(NULL);
	long status = 0;
	buf_t answer;
	int rc;

	memset(out, 0, sizeof(*out));
	while (base > 0 && url[base - 1] == '/')
		base--;
	if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || base > 2000) {
		snprintf(err, errlen, "the member's URL must be http:// or https://, not \"%s\"",
			 url);
		return -EINVAL;
	}
	if (join_token_parse(token, &tok) < 0) {
		snprintf(err, errlen,
			 "that is not a join token (`chorus cluster token` on a"
			 " member prints one)");
		return -EINVAL;
	}
	if (join_token_expiry(tok.t) < now) {
		clock_utc(join_token_expiry(tok.t), when);
		snprintf(err, errlen, "the token expired at %s; make a new one on a member", when);
		explicit_bzero(&tok, sizeof(tok));
		return -EKEYEXPIRED;
	}
	snprintf(full, sizeof(full), "%.*s/internal/join", (int)base, url);
	join_request_make(&tok, now, port, &req);
	body = join_request_json(&req);
	buf_init(&answer, ANSWER_MAX);
	rc = post(full, body, &status, &answer, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "cannot reach the member at %.*s: %s", (int)base, url, why);
		goto out;
	}
	rc = -EACCES;
	if (status == 401) {
		snprintf(err, errlen,
			 "the member refused the join: the token is wrong or expired (or this"
			 " machine's clock is more than %d s from the member's)",
			 JOIN_WINDOW_S);
		goto out;
	}
	if (status == 404) {
		snprintf(err, errlen,
			 "%.*s is not a member of a cluster (a node serving with --db answers"
			 " joins)",
			 (int)base, url);
		rc = -ENOENT;
		goto out;
	}
	if (status != 200) {
		snprintf(err, errlen, "the member answered HTTP %ld", status);
		rc = -EPROTO;
		goto out;
	}
	rc = join_answer_open(tok.mac, req.nonce, answer.data, answer.len, out);
	if (rc == -EBADMSG)
		snprintf(err, errlen,
			 "the member's answer does not open with this token: refused (is the URL"
			 " a member of the token's cluster?)");
	else if (rc < 0)
		snprintf(err, errlen, "the member's answer is not a cluster configuration");
out:
	explicit_bzero(&tok, sizeof(tok));
	if (answer.data)
		explicit_bzero(answer.data, answer.len);
	buf_free(&answer);
	free(body);
	return rc;
}

/* ---- `chorus cluster token` ---- */

/* The cluster key from DATA/catalog.db's replica row. 0, or -ENOENT with
 * err. */
static int read_cluster_key(const char *data_dir, uint8_t key[JOIN_KEY_LEN], char *err,
			    size_t errlen)
{
	const struct sql_sqlite_open o = {
		.what = "catalog", .flags = SQLITE_OPEN_READONLY, .busy_ms = 5000};
	char path[4200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/catalog.db", data_dir);
	if (stat(path, &sb) < 0) {
		snprintf(err, errlen, "no catalog in %s: is it a cluster member's data directory?",
			 data_dir);
		return -ENOENT;
	}
	if (sql_sqlite_open(path, &o, &db, err, errlen) < 0 ||
	    sqlite3_prepare_v2(db, "SELECT cluster_key FROM replica", -1, &st, NULL) != SQLITE_OK) {
		/* A catalog without the table is a standalone node's (or older). */
		snprintf(err, errlen,
			 "%s is not a cluster member's data directory (it has no cluster key; a"
			 " node serving with --db has one)",
			 data_dir);
		goto out;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == JOIN_KEY_LEN) {
		memcpy(key, sqlite3_column_blob(st, 0), JOIN_KEY_LEN);
		rc = 0;
	} else {
		snprintf(err, errlen,
			 "%s is not a cluster member's data directory (it has no cluster key; a"
			 " node serving with --db has one)",
			 data_dir);
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int join_token_command(const char *data_dir, int ttl_hours)
{
	uint8_t key[JOIN_KEY_LEN];
	struct join_token tok;
	char text[JOIN_TOKEN_LEN + 1], err[600], when[CLOCK_UTC_LEN];
	int64_t expires = (int64_t)time(NULL) + (int64_t)ttl_hours * 3600;

	if (read_cluster_key(data_dir, key, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: cluster token: %s\n", err);
		return 1;
	}
	join_token_make(key, expires, &tok, text);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(&tok, sizeof(tok));
	clock_utc(expires, when);
	printf("A join token, valid until %s. Keep it secret: it lets a server into the cluster.\n"
	       "On the new server: chorus serve --join http://THIS-NODE:PORT --token TOKEN\n"
	       "%s\n",
	       when, text);
	explicit_bzero(text, sizeof(text));
	return fflush(stdout) == 0 ? 0 : 1;
}
