/*
 * sd_notify(3) by hand: the protocol is one datagram on an AF_UNIX socket,
 * so a dependency on libsystemd buys nothing. A socket is opened per
 * message: chorus sends two or three in its life, and keeping none open
 * means nothing to close and no descriptor leaked into children.
 */
#include "util/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

int notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, e;

	if (!name || !*name)
		return 1;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len < 2 || len > sizeof(sa.sun_path)) {
		log_warn("notify: NOTIFY_SOCKET \"%s\" is not a socket path or @abstract name",
			 name);
		return -EINVAL;
	}
	/* An abstract name: a NUL in place of the '@', and its length counts
	 * (no terminating NUL). A path fits with or without one. */
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		log_warn("notify: socket: %s", strerror(e));
		return -e;
	}
	do
		n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	e = n < 0 ? errno : 0;
	close(fd);
	if (e) {
		log_warn("notify: sending \"%.*s\" to %s: %s", (int)strcspn(state, "\n"), state,
			 name, strerror(e));
		return -e;
	}
	return 0;
}

void notify_ready(void)
{
	notify_send("READY=1\nSTATUS=serving");
}

void notify_stopping(void)
{
	notify_send("STOPPING=1\nSTATUS=draining");
}

void notify_status(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	memcpy(msg, "STATUS=", 7);
	va_start(ap, fmt);
	vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	for (char *p = msg + 7; *p; p++)
		if (*p == '\n')
			*p = ' ';
	notify_send(msg);
}
