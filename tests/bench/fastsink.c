/*
 * NAME
 *	fastsink - a minimal, fast SMTP sink for the drain benchmark
 * SYNOPSIS
 *	fastsink -l ADDR:PORT -r READY-FILE -s STATS-FILE [-w PID] [-t SECONDS]
 * DESCRIPTION
 *	Accepts any number of SMTP connections on one loopback address and
 *	answers every command at once: 220 greeting, EHLO offering
 *	PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES, 250 to HELO,
 *	MAIL, RCPT, RSET and NOOP, 354 to DATA, 250 after the final dot,
 *	221 to QUIT, 502 to anything else. Pipelined commands are answered
 *	together, in one write. It keeps nothing but counts: messages,
 *	octets of content, connections, most connections at once.
 *
 *	It exists so that `make bench` measures the queue runner, not the
 *	test sink: tests/servers/smtpsink.py (Python, one JSON line and a
 *	checksum per message) tops out near the rate the runner aims at.
 *
 *	One thread, epoll, non-blocking sockets. -l must name an address in
 *	127.0.0.0/8; port 0 picks a free port. Once listening, it writes
 *	"port=N" to READY-FILE (by rename). On SIGTERM or SIGINT, when
 *	process PID (-w) is gone, or after SECONDS (-t, default 3600) it
 *	writes "messages=N octets=N connections=N max_concurrent=N" to
 *	STATS-FILE (by rename) and exits 0.
 * EXIT STATUS
 *	0 on a clean stop, 2 on a usage error, 3 when it cannot listen.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE	4096

struct conn {
	int fd;
	int in_data;
	int dot_state;		/* where we are in "\r\n.\r\n" */
	int quitting;
	char line[MAX_LINE];
	size_t linelen;
	char *out;
	size_t outlen, outcap, outoff;
};

static volatile sig_atomic_t stop;
static unsigned long long messages, octets, connections;
static long active, max_active;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
die(int code, const char *what)
{
	fprintf(stderr, "fastsink: %s: %s\n", what, strerror(errno));
	exit(code);
}

static void
write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		die(3, tmp);
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die(3, path);
}

static void
reply(struct conn *c, const char *text)
{
	size_t len = strlen(text);

	if (c->outlen + len > c->outcap) {
		c->outcap = (c->outlen + len) * 2 + 256;
		c->out = realloc(c->out, c->outcap);
		if (c->out == NULL)
			die(1, "realloc");
	}
	memcpy(c->out + c->outlen, text, len);
	c->outlen += len;
}

static void
command(struct conn *c)
{
	char *l = c->line;

	if (strncasecmp(l, "EHLO", 4) == 0)
		reply(c, "250-fastsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		    "250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n");
	else if (strncasecmp(l, "HELO", 4) == 0)
		reply(c, "250 fastsink\r\n");
	else if (strncasecmp(l, "MAIL", 4) == 0)
		reply(c, "250 2.1.0 Ok\r\n");
	else if (strncasecmp(l, "RCPT", 4) == 0)
		reply(c, "250 2.1.5 Ok\r\n");
	else if (strncasecmp(l, "DATA", 4) == 0) {
		reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		c->in_data = 1;
		c->dot_state = 2;	/* the DATA line ended with CRLF */
	} else if (strncasecmp(l, "RSET", 4) == 0 ||
	    strncasecmp(l, "NOOP", 4) == 0)
		reply(c, "250 2.0.0 Ok\r\n");
	else if (strncasecmp(l, "QUIT", 4) == 0) {
		reply(c, "221 2.0.0 Bye\r\n");
		c->quitting = 1;
	} else
		reply(c, "502 5.5.2 Command not recognized\r\n");
}

/* Content up to the end of DATA; returns the octets it used. */
static size_t
data(struct conn *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		switch (c->dot_state) {
		case 2:		/* at the start of a line */
			c->dot_state = ch == '.' ? 3 : ch == '\r' ? 1 : 0;
			break;
		case 3:		/* "." at the start of a line */
			c->dot_state = ch == '\r' ? 4 : 0;
			break;
		case 4:		/* ".\r" */
			if (ch == '\n') {
				c->in_data = 0;
				messages++;
				reply(c, "250 2.0.0 Ok: queued\r\n");
				return i + 1;
			}
			c->dot_state = ch == '\r' ? 1 : 0;
			break;
		case 1:		/* "\r" */
			c->dot_state = ch == '\n' ? 2 : ch == '\r' ? 1 : 0;
			break;
		default:
			c->dot_state = ch == '\r' ? 1 : 0;
			break;
		}
		octets++;
	}
	return n;
}

static void
input(struct conn *c, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && !c->quitting) {
		if (c->in_data) {
			i += data(c, p + i, n - i);
			continue;
		}
		char ch = p[i++];
		if (ch == '\n') {
			if (c->linelen > 0 && c->line[c->linelen - 1] == '\r')
				c->linelen--;
			c->line[c->linelen] = '\0';
			command(c);
			c->linelen = 0;
		} else if (c->linelen < MAX_LINE - 1) {
			c->line[c->linelen++] = ch;
		}
	}
}

/* Returns -1 when the connection is finished. */
static int
flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff,
		    c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		c->outoff += (size_t)w;
	}
	c->outlen = c->outoff = 0;
	return c->quitting ? -1 : 0;
}

static void
close_conn(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	active--;
}

static void
write_stats(const char *path)
{
	char text[256];

	snprintf(text, sizeof(text), "messages=%llu octets=%llu "
	    "connections=%llu max_concurrent=%ld\n", messages, octets,
	    connections, max_active);
	write_file(path, text);
}

int
main(int argc, char **argv)
{
	const char *listen_at = NULL, *ready = NULL, *stats = NULL;
	pid_t watch = 0;
	long lifetime = 3600;
	int opt;

	while ((opt = getopt(argc, argv, "l:r:s:w:t:")) != -1) {
		switch (opt) {
		case 'l': listen_at = optarg; break;
		case 'r': ready = optarg; break;
		case 's': stats = optarg; break;
		case 'w': watch = (pid_t)atol(optarg); break;
		case 't': lifetime = atol(optarg); break;
		default:
			fprintf(stderr, "usage: fastsink -l ADDR:PORT -r READY "
			    "-s STATS [-w PID] [-t SECONDS]\n");
			return 2;
		}
	}
	const char *colon = listen_at ? strrchr(listen_at, ':') : NULL;
	char addr[64];
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (colon == NULL || ready == NULL || stats == NULL ||
	    (size_t)(colon - listen_at) >= sizeof(addr)) {
		fprintf(stderr, "fastsink: -l ADDR:PORT, -r and -s are needed\n");
		return 2;
	}
	memcpy(addr, listen_at, (size_t)(colon - listen_at));
	addr[colon - listen_at] = '\0';
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "fastsink: %s is not a loopback address\n", addr);
		return 2;
	}
	sin.sin_port = htons((unsigned short)atoi(colon + 1));

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	if (ls < 0)
		die(3, "socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(ls, 1024) != 0)
		die(3, listen_at);
	socklen_t slen = sizeof(sin);
	getsockname(ls, (struct sockaddr *)&sin, &slen);
	char text[64];
	snprintf(text, sizeof(text), "port=%d\n", ntohs(sin.sin_port));
	write_file(ready, text);

	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0)
		die(3, "epoll");
	time_t deadline = time(NULL) + lifetime;
	char buf[65536];
	struct epoll_event evs[64];

	while (!stop && time(NULL) < deadline) {
		if (watch > 0 && kill(watch, 0) != 0 && errno == ESRCH)
			break;
		int n = epoll_wait(ep, evs, 64, 1000);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (c == NULL) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL,
				    SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (c == NULL)
						die(1, "calloc");
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					struct epoll_event cev = {
						.events = EPOLLIN | EPOLLOUT |
						    EPOLLET,
						.data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
					connections++;
					if (++active > max_active)
						max_active = active;
					reply(c, "220 fastsink ESMTP\r\n");
					if (flush_out(c) < 0)
						close_conn(ep, c);
				}
				continue;
			}
			int gone = 0;
			if (evs[k].events & EPOLLIN) {
				for (;;) {
					ssize_t r = recv(c->fd, buf, sizeof(buf),
					    0);
					if (r > 0) {
						input(c, buf, (size_t)r);
						continue;
					}
					if (r < 0 && (errno == EAGAIN ||
					    errno == EINTR))
						break;
					gone = 1;	/* EOF or error */
					break;
				}
			}
			if (!gone && flush_out(c) < 0)
				gone = 1;
			if (gone || (evs[k].events & (EPOLLHUP | EPOLLERR)))
				close_conn(ep, c);
		}
	}
	write_stats(stats);
	return 0;
}
