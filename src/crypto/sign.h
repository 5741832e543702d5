#ifndef CHORUS_CRYPTO_SIGN_H
#define CHORUS_CRYPTO_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Peer requests (/internal/...) are signed with the cluster key: an
 * HMAC-SHA256 over the method, the path, a Unix time and the asking node's
 * id, sent as X-Chorus-Time, X-Chorus-Node and X-Chorus-Signature. A
 * request is accepted within SIGN_WINDOW_S of the receiver's clock. The
 * body needs no signature: peers only ever GET sealed chunks, which
 * verify themselves.
 */
#define SIGN_KEY_LEN 32
#define SIGN_WINDOW_S 30

/* The signature as 64 hex digits plus NUL. */
void sign_request(const uint8_t key[SIGN_KEY_LEN], const char *method, const char *path,
		  int64_t time_s, const char *node, char out[65]);

/* True when sig (len bytes) is the signature of these, and time_s is
 * within the window of now_s. Constant time in the signature. */
bool sign_check(const uint8_t key[SIGN_KEY_LEN], const char *method, const char *path,
		int64_t time_s, const char *node, const char *sig, size_t len, int64_t now_s);

#endif
