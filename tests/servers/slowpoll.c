/*
 * NAME
 *	slowpoll.so - make libESMTP's "read or write?" polls late (LD_PRELOAD)
 * SYNOPSIS
 *	LD_PRELOAD=$MXL_BUILD/tests/servers/slowpoll.so SLOWPOLL_MS=50 queuerun ...
 * DESCRIPTION
 *	A test instrument, not a server: delays every poll() that asks one
 *	descriptor for both POLLIN and POLLOUT (libESMTP's wait before it
 *	flushes a command) by SLOWPOLL_MS milliseconds (default 50), then
 *	polls. Right after a STARTTLS handshake that is the poll that
 *	decides whether EHLO is flushed before anything is read; delayed,
 *	a TLS 1.3 server's session tickets are always on the socket by
 *	then, so a test meets every time the race that real networks meet
 *	now and then (queuerun/wire.h). queuerun's own poll() calls this
 *	one as "the next poll" (dlsym RTLD_NEXT), so both sides of its fix
 *	are exercised.
 */
#include <dlfcn.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

int poll(struct pollfd *fds, nfds_t nfds, int timeout);

int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	static int (*fn)(struct pollfd *, nfds_t, int);
	const char *ms = getenv("SLOWPOLL_MS");

	if (fn == NULL)
		fn = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT,
		    "poll");
	if (nfds == 2 && fds[0].fd == fds[1].fd && fds[0].events == POLLIN &&
	    fds[1].events == POLLOUT) {
		long d = ms ? strtol(ms, NULL, 10) : 50;
		struct timespec t = {d / 1000, (d % 1000) * 1000000};
		nanosleep(&t, NULL);
	}
	return fn(fds, nfds, timeout);
}
