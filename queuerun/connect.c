/*
 * NAME
 *	connect - the local end and the time limit of SMTP connections
 * DESCRIPTION
 *	See connect.h for why this file defines connect().
 */
#include "queuerun/connect.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "queuerun/wire.h"

static struct {
	int armed;
	int fd;			/* socket of the last armed connect, or -1 */
	struct sockaddr_storage source;
	socklen_t source_len;
	int timeout_s;
	int last_errno;
	char peer[64];		/* what CONNECT_ARMED_HOST stands for */
} arm;

void
connect_arm(const struct sockaddr *source, socklen_t source_len,
    int timeout_s, const char *peer)
{
	memset(&arm, 0, sizeof(arm));
	arm.armed = 1;
	if (peer)
		snprintf(arm.peer, sizeof(arm.peer), "%s", peer);
	if (source && source_len <= sizeof(arm.source)) {
		memcpy(&arm.source, source, source_len);
		arm.source_len = source_len;
	}
	arm.timeout_s = timeout_s;
	arm.fd = -1;
}

void
connect_abort_current(void)
{
	if (arm.fd >= 0)
		(void)shutdown(arm.fd, SHUT_RDWR);
}

void
connect_disarm(void)
{
	arm.armed = 0;
	arm.fd = -1;
	wire_attach(-1);
}

int
connect_last_errno(void)
{
	return arm.last_errno;
}

static int
kernel_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, addr, len);
}

static int
fail(int err)
{
	arm.last_errno = err;
	errno = err;
	return -1;
}

/* Waits for a non-blocking connect to finish, at most timeout_s. */
static int
finish_connect(int fd)
{
	struct pollfd p = {fd, POLLOUT, 0};
	int ms = arm.timeout_s > 0 ? arm.timeout_s * 1000 : -1;
	int err = 0;
	socklen_t len = sizeof(err);

	for (;;) {
		int n = poll(&p, 1, ms);
		if (n > 0)
			break;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!arm.armed)
		return kernel_connect(fd, addr, len);
	arm.fd = fd;
	wire_attach(fd);
	if (arm.source_len > 0 && arm.source.ss_family == addr->sa_family &&
	    bind(fd, (const struct sockaddr *)&arm.source,
	    arm.source_len) != 0)
		return fail(errno);

	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		return fail(errno);
	int rc = kernel_connect(fd, addr, len);
	int err = rc == 0 ? 0 : errno;
	if (rc != 0 && err == EINPROGRESS)
		err = finish_connect(fd);
	(void)fcntl(fd, F_SETFL, flags);
	if (err != 0)
		return fail(err);
	/*
	 * libESMTP writes a pipelined batch in pieces; with Nagle's
	 * algorithm each small write waits for the peer's delayed ACK
	 * (40 ms), which would cap a connection at a few dozen messages
	 * a second.
	 */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	arm.last_errno = 0;
	return 0;
}

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*fn)(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

	if (fn == NULL)
		fn = (int (*)(const char *, const char *,
		    const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT,
		    "getaddrinfo");
	if (!arm.armed || arm.peer[0] == '\0' || node == NULL ||
	    strcmp(node, CONNECT_ARMED_HOST) != 0)
		return fn(node, service, hints, res);
	struct addrinfo h;
	if (hints)
		h = *hints;
	else
		memset(&h, 0, sizeof(h));
	h.ai_flags |= AI_NUMERICHOST;
	return fn(arm.peer, service, &h, res);
}
