#ifndef CHORUS_HTTP_LISTEN_H
#define CHORUS_HTTP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * A listen address, "ADDR:PORT": ADDR an IPv4 address, an IPv6 address in
 * brackets ("[::1]:8080"), or empty or "*" for every IPv4 address; PORT a
 * number from 0 to 65535, 0 letting the kernel pick a free one. Host names
 * are not looked up: a node listens where it is told.
 *
 * One parser for the server and for the command line, which checks
 * --listen before anything is created. Fills *ss and *sl and returns 0, or
 * returns -EINVAL with what is wrong in err (the part named: "port 99999 is
 * out of range (0-65535)"); err may be NULL. Any thread; allocates nothing.
 */
int http_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		      size_t errlen);

/*
 * The host a client on this machine reaches spec at, as a URL writes it
 * ("127.0.0.1", "[::1]"), into host. Returns true when spec names every
 * address ("", "*", "0.0.0.0", "[::]"): host is then loopback, and a
 * caller that wants an address for other machines picks one itself.
 * An unparsable spec gives loopback and true.
 */
bool http_listen_local_host(const char *spec, char *host, size_t n);

/*
 * Refuses a port another process listens on: 0, or -EADDRINUSE ("port
 * 8080 is already in use: another process listens on 127.0.0.1:8080"
 * in err) or another -errno. The server's listeners set SO_REUSEPORT, so
 * a second chorus given the same port would bind it too and take half the
 * connections without a word; a socket without the option cannot bind a
 * port someone listens on, so one such bind, closed at once, tells. Port
 * 0 picks a free port: nothing to check. spec names the address in err.
 */
int http_listen_check_free(const struct sockaddr_storage *ss, socklen_t sl, const char *spec,
			   char *err, size_t errlen);

#endif
