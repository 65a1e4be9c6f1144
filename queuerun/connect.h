/*
 * NAME
 *	connect - the local end and the time limit of SMTP connections
 * DESCRIPTION
 *	libESMTP 1.1 opens its socket and calls connect(2) itself, with no
 *	way to choose the local address or to bound the connect time. The
 *	queue runner therefore defines connect() in its own executable. By
 *	the ELF symbol lookup rules the executable's definition comes first,
 *	so libESMTP's call (through its PLT) reaches ours, which binds the
 *	socket to the source address chosen for this connection, connects
 *	without blocking and waits at most the connect time-out, then calls
 *	the kernel's connect. Every other caller of connect() in the
 *	process (syslog, libraries) gets the plain kernel call, because a
 *	source is only armed around one SMTP session. The resolver does not
 *	come here at all: dns/dns.c connects its sockets with the system
 *	call directly, so a look-up never depends on what is armed.
 *
 *	libESMTP 1.1 also takes its server as "host:port", cut at the first
 *	colon, so an IPv6 address cannot be named to it. For an IPv6 peer
 *	deliver.c names CONNECT_ARMED_HOST instead, and this file defines
 *	getaddrinfo() as well: while a session is armed, that one name is
 *	looked up as the armed peer's numeric address (AI_NUMERICHOST, no
 *	query); every other name goes to the C library's getaddrinfo().
 *
 *	The mechanism is checked by the test suite: the test MX records the
 *	peer address of every session, and the tests require the configured
 *	source addresses.
 */
#ifndef MXLANE_CONNECT_H
#define MXLANE_CONNECT_H

#include <sys/socket.h>

/* The server name that stands for the armed peer (see above). */
#define CONNECT_ARMED_HOST "armed-peer.mxlane.invalid"

/*
 * Arms the next connections (until connect_disarm()): bind to source
 * (NULL = let the kernel choose) and give up after timeout_s seconds;
 * peer is the numeric address CONNECT_ARMED_HOST stands for, or NULL.
 */
void connect_arm(const struct sockaddr *source, socklen_t source_len,
    int timeout_s, const char *peer);
void connect_disarm(void);
/* Shuts down the socket of the current session (content unreadable). */
void connect_abort_current(void);
/* errno of the last armed connect() that failed, 0 if none. */
int connect_last_errno(void);

#endif
