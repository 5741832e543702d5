/*
 * HTTPS with OpenSSL (see tls.h).
 *
 * The server holds one current SSL_CTX. A new connection takes a
 * reference to it under a mutex held for that only (SSL_new takes its
 * own reference, so the connection keeps its context whatever happens to
 * the current one); a reload builds a whole new context outside the lock
 * and swaps the pointer in under it, then drops the server's reference to
 * the old one, which lives on in the connections that still use it. So a
 * SIGHUP never waits on, or drops, a connection.
 *
 * The settings are Mozilla's "intermediate" profile without finite-field
 * Diffie-Hellman: TLS 1.2 and 1.3, for 1.2 only ECDHE key exchange with
 * AES-GCM or ChaCha20-Poly1305. No compression (CRIME), no renegotiation,
 * session tickets and the session cache on (OpenSSL's defaults). Partial
 * writes let the server count progress record by record, and released
 * buffers keep an idle keep-alive connection's SSL object small.
 *
 * OpenSSL's error queue is per thread and must be empty before an I/O
 * call for SSL_get_error to be right: every wrapper clears it first, and
 * nothing is left in it after a connection's error (its text is not
 * logged: a client can cause as many as it likes).
 */
#include "http/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"
#include "util/xalloc.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

struct tls {
	char *cert, *key;
	pthread_mutex_t lock; /* guards ctx */
	SSL_CTX *ctx;
};

/* OpenSSL's first error as text (the root cause, "no start line" rather
 * than the "PEM lib" that follows it), the queue emptied. Codes only:
 * never the data of what was parsed. */
static void ssl_error_text(char *out, size_t n)
{
	unsigned long e = ERR_peek_error();

	if (e)
		ERR_error_string_n(e, out, n);
	else
		snprintf(out, n, "unknown error");
	ERR_clear_error();
}

/* An encrypted key must not make a daemon prompt on its terminal. */
static int no_password(char *buf, int size, int rwflag, void *ud)
{
	(void)buf, (void)size, (void)rwflag, (void)ud;
	return 0;
}

static int readable(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	fclose(f);
	return 0;
}

static SSL_CTX *ctx_load(const char *cert, const char *key, char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = NULL;

	ERR_clear_error();
	if (readable(cert, "certificate", err, errlen) < 0 || readable(key, "key", err, errlen) < 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, "cannot make a TLS context: %s", why);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
	    !SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, "TLS settings: %s", why);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, "certificate %s does not load: %s", cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL checks the key against the certificate here already. */
		bool mismatch = ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_X509 &&
				ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;
		ssl_error_text(why, sizeof(why));
		if (mismatch)
			snprintf(err, errlen, "key %s does not match certificate %s", key, cert);
		else
			snprintf(err, errlen, "key %s does not load (PEM, not encrypted): %s", key,
				 why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, "key %s does not match certificate %s: %s", key, cert, why);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* "subject ..., expires ..." of ctx's certificate. */
static void describe(SSL_CTX *ctx, char *out, size_t n)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subject[256] = "?", expires[64] = "?";
	BIO *b;

	if (!x) {
		snprintf(out, n, "no certificate");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	if ((b = BIO_new(BIO_s_mem()))) {
		if (ASN1_TIME_print(b, X509_get0_notAfter(x)) > 0) {
			int len = BIO_read(b, expires, (int)sizeof(expires) - 1);
			expires[len > 0 ? len : 0] = '\0';
		}
		BIO_free(b);
	}
	snprintf(out, n, "subject %s, expires %s", subject, expires);
}

int tls_open(const char *cert, const char *key, tls_t **out, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_load(cert, key, err, errlen);
	struct tls *t;

	if (!ctx)
		return -EINVAL;
	t = xcalloc(1, sizeof(*t));
	t->cert = xstrdup(cert);
	t->key = xstrdup(key);
	t->ctx = ctx;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

int tls_check(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_load(cert, key, err, errlen);

	if (!ctx)
		return -EINVAL;
	SSL_CTX_free(ctx);
	return 0;
}

int tls_reload(tls_t *t, char *info, size_t infolen, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_load(t->cert, t->key, err, errlen), *old;

	if (!ctx)
		return -EINVAL;
	describe(ctx, info, infolen);
	pthread_mutex_lock(&t->lock);
	old = t->ctx;
	t->ctx = ctx;
	pthread_mutex_unlock(&t->lock);
	SSL_CTX_free(old); /* the connections on it hold their own references */
	return 0;
}

void tls_free(tls_t *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t->cert);
	free(t->key);
	free(t);
}

struct ssl_st *tls_conn_new(tls_t *t, int fd)
{
	SSL_CTX *ctx;
	SSL *s;

	pthread_mutex_lock(&t->lock);
	ctx = t->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	s = SSL_new(ctx); /* takes a reference of its own */
	SSL_CTX_free(ctx);
	if (!s || !SSL_set_fd(s, fd)) {
		SSL_free(s);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(s);
	return s;
}

/* What SSL_get_error says of a call that returned rc, as tls.h has it. */
static int io_result(SSL *s, int rc, unsigned *want)
{
	int saved = errno; /* the socket call's, before anything else runs */
	int e = SSL_get_error(s, rc);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = LOOP_IN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = LOOP_OUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 0;
	case SSL_ERROR_SYSCALL:
		/* errno is zeroed before every call: 0 is an EOF in the middle
		 * of a record. EAGAIN here would only be a stale value, and
		 * would leave the connection waiting for nothing. */
		ERR_clear_error();
		return saved && saved != EAGAIN ? -saved : -ECONNRESET;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

int tls_conn_handshake(struct ssl_st *s, unsigned *want)
{
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(s);
	if (rc == 1)
		return 0;
	if (SSL_get_error(s, rc) == SSL_ERROR_SSL &&
	    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_HTTP_REQUEST) {
		ERR_clear_error();
		return TLS_PLAIN_HTTP;
	}
	rc = io_result(s, rc, want);
	return rc == 0 ? -ECONNRESET : rc;
}

ssize_t tls_conn_read(struct ssl_st *s, void *p, size_t n, unsigned *want)
{
	size_t got = 0;
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_read_ex(s, p, n, &got);
	if (rc == 1)
		return (ssize_t)got;
	return io_result(s, rc, want);
}

ssize_t tls_conn_write(struct ssl_st *s, const void *p, size_t n, unsigned *want)
{
	size_t put = 0;
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_write_ex(s, p, n, &put);
	if (rc == 1)
		return (ssize_t)put;
	rc = io_result(s, rc, want);
	return rc == 0 ? -ECONNRESET : rc;
}

void tls_conn_free(struct ssl_st *s, bool clean)
{
	if (!s)
		return;
	if (clean && SSL_is_init_finished(s)) {
		ERR_clear_error();
		if (SSL_shutdown(s) < 0)
			ERR_clear_error(); /* best effort: the socket closes anyway */
	}
	SSL_free(s);
}
