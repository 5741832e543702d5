/* util/notify: datagrams to a real AF_UNIX socket, as systemd receives them. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/notify.h"
#include "unit.h"

/* A datagram socket bound to name ("/path" or "@abstract"), receiving
 * senders' credentials as systemd's does; -1 on failure. */
static int listen_at(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One datagram into buf (NUL-terminated); its sender's pid in *pid.
 * Returns its length, or -1 when none arrived within 2 s. */
static ssize_t receive(int fd, char *buf, size_t cap, pid_t *pid)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(fd, &msg, 0);

	*pid = 0;
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			*pid = cred.pid;
		}
	}
	return n;
}

/* Nothing waiting on fd. */
static int quiet(int fd)
{
	char b[16];
	return recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void check_messages(const char *name)
{
	char buf[1024];
	pid_t pid;
	int fd = listen_at(name);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	setenv("NOTIFY_SOCKET", name, 1);

	notify_ready();
	CHECK(receive(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR(buf, "READY=1\nSTATUS=serving");
	CHECK(pid == getpid()); /* systemd accepts only the main pid's messages */

	notify_status("draining %d connections\nX=1", 3);
	CHECK(receive(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR(buf, "STATUS=draining 3 connections X=1"); /* no second assignment */

	notify_stopping();
	CHECK(receive(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR(buf, "STOPPING=1\nSTATUS=draining");

	CHECK(notify_send("WATCHDOG=1") == 0);
	CHECK(receive(fd, buf, sizeof(buf), &pid) > 0);
	CHECK_STR(buf, "WATCHDOG=1");
	CHECK(quiet(fd));
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void test_path_socket(void)
{
	char dir[] = "/tmp/chorus-notify-XXXXXX", path[256];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/notify", dir);
	check_messages(path);
	unlink(path);
	rmdir(dir);
}

static void test_abstract_socket(void)
{
	char name[64];

	snprintf(name, sizeof(name), "@chorus-notify-test/%d", (int)getpid());
	check_messages(name);
}

static void test_unset_is_a_no_op(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK(notify_send("READY=1") == 1);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK(notify_send("READY=1") == 1);
	notify_ready(); /* nothing to check but that it returns */
	notify_stopping();
	unsetenv("NOTIFY_SOCKET");
}

static void test_errors_are_not_fatal(void)
{
	char longname[200];

	/* Nobody listening: logged, -ENOENT / -ECONNREFUSED, and the caller goes on. */
	setenv("NOTIFY_SOCKET", "/tmp/chorus-notify-nonexistent/socket", 1);
	CHECK(notify_send("READY=1") == -ENOENT);
	notify_ready();
	setenv("NOTIFY_SOCKET", "@chorus-notify-nobody-listens-here", 1);
	CHECK(notify_send("READY=1") == -ECONNREFUSED);
	/* Not an address this protocol knows, or too long for sun_path. */
	setenv("NOTIFY_SOCKET", "relative/socket", 1);
	CHECK(notify_send("READY=1") == -EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	CHECK(notify_send("READY=1") == -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	CHECK(notify_send("READY=1") == -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	TEST_RUN(test_path_socket);
	TEST_RUN(test_abstract_socket);
	TEST_RUN(test_unset_is_a_no_op);
	TEST_RUN(test_errors_are_not_fatal);
	TEST_EXIT();
}
