#ifndef CHORUS_HTTP_TLS_H
#define CHORUS_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * HTTPS for the HTTP server, with OpenSSL: the server's context (a
 * certificate chain and its key, TLS 1.2 and 1.3 only, ECDHE with AEAD
 * ciphers, no compression, no renegotiation), reloadable while serving,
 * and non-blocking wrappers of one connection's SSL object.
 *
 * The wrappers return what the loop needs: bytes, or -EAGAIN with *want
 * set to LOOP_IN or LOOP_OUT (loop/loop.h) for the direction OpenSSL
 * waits for (a read can need to write and the other way round), or
 * another negative errno value for a connection that is dead: the
 * caller then closes it with tls_conn_free(ssl, false).
 */
typedef struct tls tls_t;
struct ssl_st;

/*
 * Loads cert (a PEM chain, the leaf first) and key (PEM, not encrypted),
 * which must match. 0, or -errno with a message in err for the
 * operator ("FILE: why"). One-shot setup: any thread.
 */
int tls_open(const char *cert, const char *key, tls_t **out, char *err, size_t errlen);

/* Whether cert and key load and match, as tls_open would take them. */
int tls_check(const char *cert, const char *key, char *err, size_t errlen);

/*
 * Reads the pair again from the same files and, when it loads, makes it
 * the context of every connection accepted from now on; connections
 * already open keep the one they started with until they close. When it
 * does not load, nothing changes. 0 (what was loaded described in info:
 * its subject and expiry) or -errno (why in err). Any thread.
 */
int tls_reload(tls_t *t, char *info, size_t infolen, char *err, size_t errlen);

/* Frees t; connections still open keep their context alive. NULL is
 * allowed. */
void tls_free(tls_t *t);

/* A server-side SSL object on fd (non-blocking, still the caller's), on
 * the current context. Any thread; the object is then the caller's. */
struct ssl_st *tls_conn_new(tls_t *t, int fd);

/* The handshake: 0 when done, -EAGAIN (see *want), TLS_PLAIN_HTTP when
 * the client spoke plain HTTP, or another -errno. */
#define TLS_PLAIN_HTTP (-10000)
int tls_conn_handshake(struct ssl_st *s, unsigned *want);

/* Bytes read (> 0), 0 when the peer closed, -EAGAIN (see *want) or
 * another -errno. */
ssize_t tls_conn_read(struct ssl_st *s, void *p, size_t n, unsigned *want);

/* Bytes taken (> 0; maybe fewer than n), -EAGAIN (see *want) or another
 * -errno. After -EAGAIN the next call must pass the same bytes again, at
 * least as many (they may move). */
ssize_t tls_conn_write(struct ssl_st *s, const void *p, size_t n, unsigned *want);

/* Ends s: when clean (no fatal error seen) and the handshake finished, a
 * close_notify is sent if the socket takes it now; then s is freed. NULL
 * is allowed. */
void tls_conn_free(struct ssl_st *s, bool clean);

#endif
