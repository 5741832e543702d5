/*
 * Listen addresses (see listen.h). The port is split at the last colon,
 * so a bracketed IPv6 address keeps its own colons; one without brackets
 * is refused with that said, rather than taken apart at the wrong colon.
 */
#include "http/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* PORT: digits only (no sign, space or suffix strtol would let by). */
static int parse_port(const char *s, long *port, char *err, size_t errlen)
{
	bool negative = *s == '-';
	const char *d = negative ? s + 1 : s;
	size_t n = strspn(d, "0123456789");

	if (!*s)
		return bad(err, errlen, "no port after the colon (want ADDR:PORT)");
	if (n == 0 || d[n])
		return bad(err, errlen, "port \"%s\" is not a number (0-65535)", s);
	/* Leading zeros aside, more than five digits is out of range anyway. */
	while (*d == '0' && d[1])
		d++;
	if (negative || strlen(d) > 5 || (*port = strtol(d, NULL, 10)) > 65535)
		return bad(err, errlen, "port %s is out of range (0-65535)", s);
	return 0;
}

int http_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		      size_t errlen)
{
	char host[256];
	const char *colon, *bracket;
	size_t hlen;
	long port = 0;
	int rc;

	if (!spec || !*spec)
		return bad(err, errlen, "no address (want ADDR:PORT, e.g. 127.0.0.1:8080)");
	colon = strrchr(spec, ':');
	bracket = spec[0] == '[' ? strchr(spec, ']') : NULL;
	if (spec[0] == '[' && !bracket)
		return bad(err, errlen, "\"%s\" has no closing bracket (want [IPv6]:PORT)", spec);
	if (!colon || (bracket && colon < bracket))
		return bad(err, errlen, "\"%s\" has no port (want ADDR:PORT, e.g. 127.0.0.1:8080)",
			   spec);
	hlen = (size_t)(colon - spec);
	if (hlen >= sizeof(host))
		return bad(err, errlen, "the address is longer than %zu bytes", sizeof(host) - 1);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if ((rc = parse_port(colon + 1, &port, err, errlen)) < 0)
		return rc;

	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (host[hlen - 1] != ']')
			return bad(err, errlen, "\"%s\" has text after the closing bracket", host);
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return bad(err, errlen, "\"%s\" is not an IPv6 address", host + 1);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (strchr(host, ':'))
			return bad(err, errlen,
				   "an IPv6 address goes in brackets: [%s]:PORT, not \"%s\"", host,
				   spec);
		if (!*host || strcmp(host, "*") == 0)
			a->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return bad(
				err, errlen,
				"\"%s\" is not an IPv4 address (or [IPv6], * or nothing for every"
				" address; host names are not looked up)",
				host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*sl = sizeof(*a);
	}
	return 0;
}

int http_listen_check_free(const struct sockaddr_storage *ss, socklen_t sl, const char *spec,
			   char *err, size_t errlen)
{
	int fd, one = 1, rc = 0;
	in_port_t port = ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
						   : ((const struct sockaddr_in *)ss)->sin_port;

	if (port == 0)
		return 0;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen: %s", strerror(errno));
	} else if (bind(fd, (const struct sockaddr *)ss, sl) < 0) {
		rc = -errno;
		if (errno == EADDRINUSE)
			snprintf(err, errlen,
				 "port %u is already in use: another process listens on %s",
				 (unsigned)ntohs(port), spec);
		else
			snprintf(err, errlen, "cannot listen: %s", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

bool http_listen_local_host(const char *spec, char *host, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char a[INET6_ADDRSTRLEN];

	if (http_listen_parse(spec, &ss, &sl, NULL, 0) < 0) {
		snprintf(host, n, "127.0.0.1");
		return true;
	}
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(v6)) {
			snprintf(host, n, "[::1]");
			return true;
		}
		inet_ntop(AF_INET6, v6, a, sizeof(a));
		snprintf(host, n, "[%s]", a);
		return false;
	}
	const struct in_addr *v4 = &((const struct sockaddr_in *)&ss)->sin_addr;
	if (v4->s_addr == htonl(INADDR_ANY)) {
		snprintf(host, n, "127.0.0.1");
		return true;
	}
	inet_ntop(AF_INET, v4, a, sizeof(a));
	snprintf(host, n, "%s", a);
	return false;
}
