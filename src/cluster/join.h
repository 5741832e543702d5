#ifndef CHORUS_CLUSTER_JOIN_H
#define CHORUS_CLUSTER_JOIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Joining a cluster with a token: `chorus cluster token` on a member
 * prints one, `chorus serve --join URL --token TOKEN` on a new server is
 * the whole setup.
 *
 * A token is stateless: "chorus1." hex(t) "." hex(mac), with t = 8 bytes
 * of expiry (Unix seconds, big-endian) and 8 random bytes, and mac =
 * HMAC-SHA256(cluster key, "chorus join token" || t). Any member, holding
 * the cluster key, checks one without having seen it made.
 *
 * The token never crosses the wire. The new node sends t, a fresh nonce,
 * its clock and its listening port, with proof = HMAC-SHA256(mac,
 * "join\nNONCE\nTIME\nPORT"). The member recomputes mac from t, checks
 * the expiry, the clock (within JOIN_WINDOW_S), the proof (constant time)
 * and that the nonce is new (JOIN_REPLAY_S), and answers with a nonce of
 * its own and the node's configuration sealed (ChaCha20-Poly1305) under
 * HMAC-SHA256(mac, "join config\nNONCE\nNONCE_MEMBER"): only a holder of
 * the token opens it, and a member's answer cannot be replayed to a later
 * join. An eavesdropper sees t (an expiry and random bytes), nonces, a
 * proof and ciphertext.
 *
 * Everything but join_run and join_token_command is pure (no I/O besides
 * the CSPRNG and, for load/save, the one file), for the unit tests and
 * the fuzzer.
 */
#define JOIN_KEY_LEN 32
#define JOIN_T_LEN 16
#define JOIN_MAC_LEN 32
#define JOIN_TOKEN_PREFIX "chorus1."
/* "chorus1." + 32 hex + "." + 64 hex */
#define JOIN_TOKEN_LEN (8 + 2 * JOIN_T_LEN + 1 + 2 * JOIN_MAC_LEN)
#define JOIN_NONCE_HEX 32 /* 16 random bytes */
#define JOIN_WINDOW_S 60  /* the new node's clock against the member's */
#define JOIN_REPLAY_S 120 /* a nonce is remembered this long (> 2 windows) */
#define JOIN_REPLAY_MAX 1024
#define JOIN_CONFIG_MAX ((size_t)64 << 10)
#define JOIN_TTL_DEFAULT_H 24
#define JOIN_CONFIG_FILE "cluster.json"

struct join_token {
	uint8_t t[JOIN_T_LEN];
	uint8_t mac[JOIN_MAC_LEN];
};

/* mac of t under the cluster key. */
void join_token_mac(const uint8_t key[JOIN_KEY_LEN], const uint8_t t[JOIN_T_LEN],
		    uint8_t mac[JOIN_MAC_LEN]);

/* A new token expiring at expires_s, into tok and its text into out. */
void join_token_make(const uint8_t key[JOIN_KEY_LEN], int64_t expires_s, struct join_token *tok,
		     char out[JOIN_TOKEN_LEN + 1]);

/* The text of a token (surrounding white space allowed) into out; checks
 * the syntax only. 0 or -EINVAL. */
int join_token_parse(const char *s, struct join_token *out);

/* The expiry written in t (Unix seconds). */
int64_t join_token_expiry(const uint8_t t[JOIN_T_LEN]);

/* ---- the request ---- */

struct join_request {
	uint8_t t[JOIN_T_LEN];
	char nonce[JOIN_NONCE_HEX + 1]; /* lower-case hex */
	int64_t time_s;
	int port; /* the new node's listening port; 0 when it picks one */
	char proof[65];
};

/* The proof of a request: 64 hex digits plus NUL. */
void join_proof(const uint8_t mac[JOIN_MAC_LEN], const char *nonce, int64_t time_s, int port,
		char out[65]);

/* A new request for tok (a fresh nonce, time now_s). */
void join_request_make(const struct join_token *tok, int64_t now_s, int port,
		       struct join_request *out);

/* The request as JSON; malloc'd, NUL-terminated. */
char *join_request_json(const struct join_request *r);

/* A request body (JSON: t, nonce, time, port, proof; nothing else) into
 * out. 0 or -EINVAL. */
int join_request_parse(const char *body, size_t len, struct join_request *out);

/*
 * The member's check of r under the cluster key at now_s: a token not
 * expired, a clock within JOIN_WINDOW_S, a right proof. 0 with the
 * token's mac in mac_out, or -EACCES whatever the reason (a refusal tells
 * nothing). The nonce's novelty is join_replay_add's.
 */
int join_request_check(const uint8_t key[JOIN_KEY_LEN], const struct join_request *r, int64_t now_s,
		       uint8_t mac_out[JOIN_MAC_LEN]);

/* The nonces of recent joins, one table per member process. */
struct join_replay {
	pthread_mutex_t lock;
	size_t n;
	struct {
		char nonce[JOIN_NONCE_HEX + 1];
		int64_t at;
	} seen[JOIN_REPLAY_MAX];
};
#define JOIN_REPLAY_INITIALIZER                                                                    \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}

/* Remembers nonce at now_s: 0 when it is new, -EALREADY when seen within
 * JOIN_REPLAY_S, -EBUSY when JOIN_REPLAY_MAX newer ones fill the table.
 * Any thread. */
int join_replay_add(struct join_replay *r, const char *nonce, int64_t now_s);

/* ---- the configuration ---- */

/* What a new node needs, and what DATA/cluster.json holds. Strings are
 * malloc'd or NULL. */
struct join_config {
	char *db;                /* PostgreSQL conninfo (required) */
	char *origin;            /* origin spec (required) */
	char *aws_access_key_id; /* the origin's credentials, when it has any */
	char *aws_secret_access_key;
	char *aws_session_token;
	char *address;   /* the host the member saw the new node at: the default
			    advertised address is http://ADDRESS:PORT */
	char *advertise; /* serve --advertise at the join (file only) */
	char *site;      /* serve --site at the join (file only) */
};

/* Frees c's strings, zeroing them first. */
void join_config_free(struct join_config *c);

/* c as JSON (members NULL are left out); malloc'd, NUL-terminated, *len
 * its length. The caller zeroes it before freeing it. */
char *join_config_json(const struct join_config *c, size_t *len);

/* JSON into out (unknown members ignored, for newer writers). 0 or
 * -EINVAL (malformed, db or origin missing, a bad address, advertise or
 * site). */
int join_config_parse(const char *json, size_t len, struct join_config *out);

/* The member's answer: {"nonce_member": hex, "sealed": hex}, the config
 * sealed for the request's nonce under mac. malloc'd; *len its length. */
char *join_answer_make(const uint8_t mac[JOIN_MAC_LEN], const char *nonce,
		       const struct join_config *c, size_t *len);

/* Opens an answer into out. 0, -EINVAL (not an answer), -EBADMSG (it
 * does not open under this mac and nonce: a refusal). */
int join_answer_open(const uint8_t mac[JOIN_MAC_LEN], const char *nonce, const char *body,
		     size_t len, struct join_config *out);

/* DATA/cluster.json, written atomically with mode 0600. 0 or -errno with
 * err. */
int join_config_save(const char *data_dir, const struct join_config *c, char *err, size_t errlen);

/* DATA/cluster.json into out. 0, -ENOENT (no file), or -errno with err. */
int join_config_load(const char *data_dir, struct join_config *out, char *err, size_t errlen);

/* ---- the commands ---- */

/*
 * The new node's side: POSTs a request for token to URL/internal/join and
 * opens the answer into out. port: the node's listening port. 0, or -errno
 * with a message for the operator in err (a malformed or expired token,
 * an unreachable member, a refusal, a member not in a cluster).
 */
int join_run(const char *url, const char *token, int port, struct join_config *out, char *err,
	     size_t errlen);

/* `chorus cluster token`: prints a token made with the cluster key in
 * DATA/catalog.db, valid ttl_hours, on the last line. The exit status. */
int join_token_command(const char *data_dir, int ttl_hours);

/* The host of an address seen on a connection as it goes in a URL:
 * IPv4-mapped IPv6 addresses as IPv4, other IPv6 ones in brackets. */
void join_url_host(const char *addr, char *out, size_t outlen);

#endif
