/*
 * NAME
 *	rtsink - a fast SMTP sink with a round-trip delay, for tests and bench
 * SYNOPSIS
 *	rtsink -l ADDR:PORT [-l ADDR:PORT ...] -r READY-FILE -s STATS-FILE
 *	    [-d DELAY-MS] [-R RECORD-FILE] [-w PID] [-t SECONDS]
 * DESCRIPTION
 *	Accepts any number of SMTP connections on up to 256 loopback
 *	addresses (-l, repeated; each in 127.0.0.0/8, each address once)
 *	and answers every command: 220 greeting, EHLO offering PIPELINING,
 *	8BITMIME, SIZE and ENHANCEDSTATUSCODES, 250 to HELO, MAIL, RCPT,
 *	RSET and NOOP, 354 to DATA, 250 after the final dot, 221 to QUIT,
 *	502 to anything else. It keeps nothing of a message but its
 *	X-Test-Id header (for -R) and counts.
 *
 *	-d DELAY-MS holds every reply, the greeting included, until
 *	DELAY-MS after the read that brought its command (after the
 *	accept, for the greeting): a server one round trip away. Commands
 *	read together, as a pipelining client sends them, get their
 *	replies together after one delay. The held replies wait in a timer
 *	heap (one entry per connection, keyed by its earliest due time)
 *	that sets epoll_wait's time-out, so thousands of sessions wait at
 *	once in one thread. Without -d replies go out at once.
 *
 *	A message is accepted, counted and recorded once the 250 after its
 *	final dot has been written to the socket; a client that goes away
 *	before that (while the reply is held) has delivered nothing.
 *
 *	PORT 0 on the first -l picks a free port; PORT 0 on a later -l
 *	means the port the first listener has, so `-l 127.0.1.1:0 -l
 *	127.0.1.2:0 ...` listens on one free port on every address. Once
 *	listening, it writes "port=N" (the first listener's port), "pid=N"
 *	and one "listen=ADDR:PORT" line per listener to READY-FILE (by
 *	rename).
 *
 *	-R RECORD-FILE: one line per accepted message, "ADDR ID", ADDR
 *	the listen address the client connected to and ID the value of
 *	the message's first X-Test-Id header ("-" when it has none;
 *	octets that are blank or not printable become "_"). Lines are
 *	appended in batches, at the latest before the sink waits for
 *	events again, so the file is complete whenever the sink is idle.
 *
 *	On SIGTERM or SIGINT, when process PID (-w) is gone, or after
 *	SECONDS (-t, default 3600) it writes STATS-FILE (by rename) and
 *	exits 0; SIGUSR1 writes it and goes on. Its first line is
 *	"messages=N octets=N connections=N max_concurrent=N active=N"
 *	(octets of content as sent, dot-stuffed; active: sessions open
 *	now), then one line per listener in -l order:
 *	"addr=ADDR sessions=N max_concurrent=N messages=N active=N".
 *
 *	It exists so that `make bench` measures the queue runner, not the
 *	test sink (tests/servers/smtpsink.py, Python, tops out near the
 *	rate the runner aims at), and so that delivery tests can give each
 *	domain its own MX address at a realistic distance. One thread,
 *	epoll, non-blocking sockets.
 * EXIT STATUS
 *	0 on a clean stop, 2 on a usage error, 3 when it cannot listen or
 *	write its files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE	4096
#define MAX_LISTENERS	256
#define MAX_ID		200		/* octets of X-Test-Id kept */
#define RECORD_BATCH	65536		/* record octets written at once */

enum kind { LISTENER, CONN };

struct listener {
	enum kind kind;			/* first: epoll hands back either */
	int fd;
	char addr[INET_ADDRSTRLEN];
	struct sockaddr_in sin;
	unsigned long long sessions, messages;
	long active, max_active;
};

/* A queue of fixed-size entries, oldest first. */
struct fifo {
	char *v;
	size_t size, head, len, cap;
};

/* Replies up to stream offset end may be written from due (µs) on. */
struct held {
	uint64_t end, due;
};

/* A message whose 250 ends at stream offset end. */
struct pending_msg {
	uint64_t end;
	char id[MAX_ID + 1];
};

struct conn {
	enum kind kind;
	int fd;
	struct listener *l;
	struct conn *prev, *next;	/* every open connection */
	size_t heap_at;			/* timer heap index + 1; 0: not in it */
	int in_data, dot_state, quitting, eof;
	char line[MAX_LINE];
	size_t linelen;
	/* the header section of the message in DATA, for X-Test-Id */
	int in_header;
	char hline[MAX_ID + 16];
	size_t hlen;
	char id[MAX_ID + 1];
	/*
	 * Output as a stream: out[0] is stream offset base; everything
	 * below sent is written, everything below ready may be.
	 */
	char *out;
	size_t outlen, outcap;
	uint64_t base, sent, ready;
	struct fifo held;		/* struct held, due times ascending */
	struct fifo msgs;		/* struct pending_msg */
};

static volatile sig_atomic_t stop, dump;
static unsigned long long messages, octets, connections;
static long active, max_active;
static uint64_t delay_us;

static struct listener listeners[MAX_LISTENERS];
static size_t nlisteners;

static struct conn *conns;		/* open connections, for the end */
static struct conn **heap;		/* min-heap on the first held due */
static size_t heaplen, heapcap;

static int record_fd = -1;
static char *record_buf;
static size_t record_len, record_cap;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		stop = 1;
}

static void
die(int code, const char *what)
{
	fprintf(stderr, "rtsink: %s: %s\n", what, strerror(errno));
	exit(code);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die(1, "realloc");
	return p;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- fifo */

static void *
fifo_first(struct fifo *f)
{
	return f->head < f->len ? f->v + f->head * f->size : NULL;
}

static void *
fifo_last(struct fifo *f)
{
	return f->head < f->len ? f->v + (f->len - 1) * f->size : NULL;
}

static void
fifo_pop(struct fifo *f)
{
	if (++f->head == f->len)
		f->head = f->len = 0;
}

static void *
fifo_push(struct fifo *f)
{
	if (f->len == f->cap) {
		if (f->head > 0) {
			memmove(f->v, f->v + f->head * f->size,
			    (f->len - f->head) * f->size);
			f->len -= f->head;
			f->head = 0;
		} else {
			f->cap = f->cap ? f->cap * 2 : 4;
			f->v = xrealloc(f->v, f->cap * f->size);
		}
	}
	return f->v + f->len++ * f->size;
}

/* ---------------------------------------------------------------- timer heap */

static uint64_t
due_of(struct conn *c)
{
	return ((struct held *)fifo_first(&c->held))->due;
}

static void
heap_set(size_t i, struct conn *c)
{
	heap[i] = c;
	c->heap_at = i + 1;
}

static void
heap_up(size_t i)
{
	struct conn *c = heap[i];

	while (i > 0 && due_of(heap[(i - 1) / 2]) > due_of(c)) {
		heap_set(i, heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(i, c);
}

static void
heap_down(size_t i)
{
	struct conn *c = heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= heaplen)
			break;
		if (k + 1 < heaplen && due_of(heap[k + 1]) < due_of(heap[k]))
			k++;
		if (due_of(heap[k]) >= due_of(c))
			break;
		heap_set(i, heap[k]);
		i = k;
	}
	heap_set(i, c);
}

static void
heap_push(struct conn *c)
{
	if (heaplen == heapcap) {
		heapcap = heapcap ? heapcap * 2 : 64;
		heap = xrealloc(heap, heapcap * sizeof(*heap));
	}
	heap[heaplen] = c;
	heap_up(heaplen++);
}

static void
heap_remove(struct conn *c)
{
	size_t i = c->heap_at - 1;
	struct conn *last;

	c->heap_at = 0;
	if (--heaplen == i)
		return;
	last = heap[heaplen];
	heap_set(i, last);
	heap_up(i);
	heap_down(last->heap_at - 1);
}

/* ---------------------------------------------------------------- files */

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
write_stats(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		die(1, "open_memstream");
	fprintf(f, "messages=%llu octets=%llu connections=%llu "
	    "max_concurrent=%ld active=%ld\n", messages, octets, connections,
	    max_active, active);
	for (size_t i = 0; i < nlisteners; i++) {
		struct listener *l = &listeners[i];

		fprintf(f, "addr=%s sessions=%llu max_concurrent=%ld "
		    "messages=%llu active=%ld\n", l->addr, l->sessions,
		    l->max_active, l->messages, l->active);
	}
	if (fclose(f) != 0)
		die(1, "open_memstream");
	write_file(path, text);
	free(text);
}

static void
record_flush(void)
{
	size_t off = 0;

	while (off < record_len) {
		ssize_t w = write(record_fd, record_buf + off,
		    record_len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die(3, "record file");
		}
		off += (size_t)w;
	}
	record_len = 0;
}

static void
record(const char *addr, const char *id)
{
	size_t need = strlen(addr) + strlen(id) + 2;

	if (record_fd < 0)
		return;
	if (record_len + need > record_cap) {
		record_cap = record_cap ? record_cap * 2 : 2 * RECORD_BATCH;
		record_buf = xrealloc(record_buf, record_cap);
	}
	record_len += (size_t)sprintf(record_buf + record_len, "%s %s\n",
	    addr, id);
	if (record_len >= RECORD_BATCH)
		record_flush();
}

/* ---------------------------------------------------------------- SMTP */

static void
reply(struct conn *c, const char *text)
{
	size_t len = strlen(text);

	if (c->outlen + len > c->outcap) {
		c->outcap = (c->outlen + len) * 2 + 256;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, text, len);
	c->outlen += len;
}

static void
command(struct conn *c)
{
	char *l = c->line;

	if (strncasecmp(l, "EHLO", 4) == 0)
		reply(c, "250-rtsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		    "250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n");
	else if (strncasecmp(l, "HELO", 4) == 0)
		reply(c, "250 rtsink\r\n");
	else if (strncasecmp(l, "MAIL", 4) == 0)
		reply(c, "250 2.1.0 Ok\r\n");
	else if (strncasecmp(l, "RCPT", 4) == 0)
		reply(c, "250 2.1.5 Ok\r\n");
	else if (strncasecmp(l, "DATA", 4) == 0) {
		reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		c->in_data = 1;
		c->dot_state = 2;	/* the DATA line ended with CRLF */
		c->in_header = 1;
		c->hlen = 0;
		c->id[0] = '\0';
	} else if (strncasecmp(l, "RSET", 4) == 0 ||
	    strncasecmp(l, "NOOP", 4) == 0)
		reply(c, "250 2.0.0 Ok\r\n");
	else if (strncasecmp(l, "QUIT", 4) == 0) {
		reply(c, "221 2.0.0 Bye\r\n");
		c->quitting = 1;
	} else
		reply(c, "502 5.5.2 Command not recognized\r\n");
}

/* One complete header line (CRLF stripped) of the message in DATA. */
static void
header_line(struct conn *c)
{
	static const char name[] = "X-Test-Id:";
	char *v = c->hline, *e;

	c->hline[c->hlen] = '\0';
	if (c->hlen == 0) {
		c->in_header = 0;
		return;
	}
	if (c->id[0] != '\0' || strncasecmp(v, name, sizeof(name) - 1) != 0)
		return;
	v += sizeof(name) - 1;
	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	for (char *p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			*p = '_';
	snprintf(c->id, sizeof(c->id), "%s", v);
}

static void
header_octet(struct conn *c, char ch)
{
	if (ch == '\n') {
		if (c->hlen > 0 && c->hline[c->hlen - 1] == '\r')
			c->hlen--;
		header_line(c);
		c->hlen = 0;
	} else if (c->hlen < sizeof(c->hline) - 1) {
		c->hline[c->hlen++] = ch;
	}
}

static void
message_done(struct conn *c)
{
	struct pending_msg *m;

	c->in_data = 0;
	reply(c, "250 2.0.0 Ok: queued\r\n");
	m = fifo_push(&c->msgs);
	m->end = c->base + c->outlen;
	snprintf(m->id, sizeof(m->id), "%s", c->id[0] ? c->id : "-");
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
				message_done(c);
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
		if (c->in_header)
			header_octet(c, ch);
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

/* ---------------------------------------------------------------- connections */

/*
 * The replies appended since the last call go out after the delay,
 * counted from now: from after the read (or the accept), not from when
 * epoll_wait returned, which may be well before a busy loop gets here.
 */
static void
schedule(struct conn *c)
{
	uint64_t end = c->base + c->outlen;
	struct held *h = fifo_last(&c->held);

	if (delay_us == 0) {
		c->ready = end;
		return;
	}
	if (end == c->ready || (h != NULL && h->end == end))
		return;
	h = fifo_push(&c->held);
	h->end = end;
	h->due = now_us() + delay_us;
	if (c->heap_at == 0)
		heap_push(c);
}

/* Messages whose 250 is now written are accepted. */
static void
accept_sent(struct conn *c)
{
	struct pending_msg *m;

	while ((m = fifo_first(&c->msgs)) != NULL && m->end <= c->sent) {
		messages++;
		c->l->messages++;
		record(c->l->addr, m->id);
		fifo_pop(&c->msgs);
	}
}

/* Writes what may be written; returns -1 when the connection is done. */
static int
flush_out(struct conn *c)
{
	while (c->sent < c->ready) {
		ssize_t w = send(c->fd, c->out + (c->sent - c->base),
		    (size_t)(c->ready - c->sent), MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		c->sent += (uint64_t)w;
	}
	accept_sent(c);
	if (c->sent > c->base) {
		size_t done = (size_t)(c->sent - c->base);

		memmove(c->out, c->out + done, c->outlen - done);
		c->outlen -= done;
		c->base = c->sent;
	}
	if ((c->quitting || c->eof) && c->outlen == 0 && c->heap_at == 0)
		return -1;
	return 0;
}

static void
close_conn(int ep, struct conn *c)
{
	if (c->heap_at != 0)
		heap_remove(c);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->l->active--;
	active--;
	free(c->out);
	free(c->held.v);
	free(c->msgs.v);
	free(c);
}

/* Releases the replies that are due; closes connections that are done. */
static void
run_timers(int ep, uint64_t now)
{
	while (heaplen > 0 && due_of(heap[0]) <= now) {
		struct conn *c = heap[0];
		struct held *h;

		heap_remove(c);
		while ((h = fifo_first(&c->held)) != NULL && h->due <= now) {
			c->ready = h->end;
			fifo_pop(&c->held);
		}
		if (h != NULL)
			heap_push(c);
		if (flush_out(c) < 0)
			close_conn(ep, c);
	}
}

static void
accept_all(int ep, struct listener *l)
{
	static int told;
	int fd, one = 1;

	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct conn *c = calloc(1, sizeof(*c));

		if (c == NULL)
			die(1, "calloc");
		c->kind = CONN;
		c->fd = fd;
		c->l = l;
		c->held.size = sizeof(struct held);
		c->msgs.size = sizeof(struct pending_msg);
		if ((c->next = conns) != NULL)
			conns->prev = c;
		conns = c;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event cev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLET,
			.data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0)
			die(1, "epoll_ctl");
		connections++;
		l->sessions++;
		if (++active > max_active)
			max_active = active;
		if (++l->active > l->max_active)
			l->max_active = l->active;
		reply(c, "220 rtsink ESMTP\r\n");
		schedule(c);
		if (flush_out(c) < 0)
			close_conn(ep, c);
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
	    !told) {
		told = 1;
		fprintf(stderr, "rtsink: accept: %s\n", strerror(errno));
	}
}

static void
conn_event(int ep, struct conn *c, uint32_t events)
{
	static char buf[65536];
	int gone = 0, got = 0;

	while ((events & EPOLLIN) && !c->eof) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

		if (r > 0) {
			if (!c->quitting)
				input(c, buf, (size_t)r);
			got = 1;
		} else if (r == 0) {
			c->eof = 1;	/* answer what came, then close */
		} else if (errno == EAGAIN) {
			break;
		} else if (errno != EINTR) {
			gone = 1;
			break;
		}
	}
	if (got)
		schedule(c);
	if (gone || (events & (EPOLLHUP | EPOLLERR)) || flush_out(c) < 0)
		close_conn(ep, c);
}

/* ---------------------------------------------------------------- set-up */

static int
parse_listen(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	struct listener *l = &listeners[nlisteners];
	char *end;
	long port;

	if (nlisteners == MAX_LISTENERS) {
		fprintf(stderr, "rtsink: more than %d -l\n", MAX_LISTENERS);
		return -1;
	}
	if (colon == NULL || (size_t)(colon - arg) >= sizeof(l->addr)) {
		fprintf(stderr, "rtsink: -l %s: not ADDR:PORT\n", arg);
		return -1;
	}
	memcpy(l->addr, arg, (size_t)(colon - arg));
	l->addr[colon - arg] = '\0';
	l->sin.sin_family = AF_INET;
	if (inet_pton(AF_INET, l->addr, &l->sin.sin_addr) != 1 ||
	    (ntohl(l->sin.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "rtsink: %s is not a loopback address\n",
		    l->addr);
		return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 ||
	    port > 65535) {
		fprintf(stderr, "rtsink: -l %s: bad port\n", arg);
		return -1;
	}
	l->sin.sin_port = htons((unsigned short)port);
	for (size_t i = 0; i < nlisteners; i++)
		if (listeners[i].sin.sin_addr.s_addr ==
		    l->sin.sin_addr.s_addr) {
			fprintf(stderr, "rtsink: %s given twice\n", l->addr);
			return -1;
		}
	/* canonical form, so that stats and records match what tests expect */
	inet_ntop(AF_INET, &l->sin.sin_addr, l->addr, sizeof(l->addr));
	l->kind = LISTENER;
	nlisteners++;
	return 0;
}

static long
number(const char *arg, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > max)
		return -1;
	return v;
}

static void
start_listening(int ep, const char *ready)
{
	int one = 1;
	unsigned short first_port = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		die(1, "open_memstream");
	for (size_t i = 0; i < nlisteners; i++) {
		struct listener *l = &listeners[i];
		socklen_t slen = sizeof(l->sin);
		char what[64];

		if (i > 0 && l->sin.sin_port == 0)
			l->sin.sin_port = first_port;
		snprintf(what, sizeof(what), "cannot listen on %s:%d",
		    l->addr, ntohs(l->sin.sin_port));
		l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (l->fd < 0)
			die(3, "socket");
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l->fd, (struct sockaddr *)&l->sin,
		    sizeof(l->sin)) != 0 || listen(l->fd, 1024) != 0 ||
		    getsockname(l->fd, (struct sockaddr *)&l->sin,
		    &slen) != 0)
			die(3, what);
		if (i == 0)
			first_port = l->sin.sin_port;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev) != 0)
			die(3, "epoll_ctl");
		if (i == 0)
			fprintf(f, "port=%d\npid=%ld\n", ntohs(first_port),
			    (long)getpid());
		fprintf(f, "listen=%s:%d\n", l->addr, ntohs(l->sin.sin_port));
	}
	if (fclose(f) != 0)
		die(1, "open_memstream");
	write_file(ready, text);
	free(text);
}

static void
usage(void)
{
	fprintf(stderr, "usage: rtsink -l ADDR:PORT [-l ADDR:PORT ...] "
	    "-r READY -s STATS [-d DELAY-MS] [-R RECORD] [-w PID] "
	    "[-t SECONDS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *ready = NULL, *stats = NULL, *record_path = NULL;
	pid_t watch = 0;
	long lifetime = 3600, v;
	int opt;

	while ((opt = getopt(argc, argv, "l:r:s:w:t:d:R:")) != -1) {
		switch (opt) {
		case 'l':
			if (parse_listen(optarg) != 0)
				return 2;
			break;
		case 'r': ready = optarg; break;
		case 's': stats = optarg; break;
		case 'R': record_path = optarg; break;
		case 'w':
		case 't':
		case 'd':
			if ((v = number(optarg, opt == 'd' ? 600000 :
			    opt == 't' ? 10L * 365 * 86400 : 0x7fffffff)) < 0) {
				fprintf(stderr, "rtsink: -%c %s: bad number\n",
				    opt, optarg);
				return 2;
			}
			if (opt == 'w')
				watch = (pid_t)v;
			else if (opt == 't')
				lifetime = v;
			else
				delay_us = (uint64_t)v * 1000;
			break;
		default:
			usage();
		}
	}
	if (nlisteners == 0 || ready == NULL || stats == NULL ||
	    optind != argc) {
		fprintf(stderr, "rtsink: -l ADDR:PORT, -r and -s are needed\n");
		usage();
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* thousands of sessions at once need as many descriptors */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (record_path != NULL &&
	    (record_fd = open(record_path, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0644)) < 0)
		die(3, record_path);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die(3, "epoll_create1");
	start_listening(ep, ready);

	uint64_t now = now_us();
	uint64_t deadline = now + (uint64_t)lifetime * 1000000;
	uint64_t next_watch = now + 1000000;
	struct epoll_event evs[256];

	while (!stop) {
		now = now_us();
		run_timers(ep, now);
		record_flush();
		if (now >= deadline)
			break;
		if (watch > 0 && now >= next_watch) {
			if (kill(watch, 0) != 0 && errno == ESRCH)
				break;
			next_watch = now + 1000000;
		}
		uint64_t wake = next_watch < deadline ? next_watch : deadline;
		if (heaplen > 0 && due_of(heap[0]) < wake)
			wake = due_of(heap[0]);
		int timeout = wake > now ? (int)((wake - now + 999) / 1000) : 0;
		/* what came before a SIGUSR1 is counted in the stats it asks for */
		int n = epoll_wait(ep, evs, 256, dump ? 0 : timeout);
		if (n < 0 && errno != EINTR)
			die(1, "epoll_wait");
		for (int k = 0; k < n; k++) {
			enum kind *kind = evs[k].data.ptr;

			if (*kind == LISTENER)
				accept_all(ep, evs[k].data.ptr);
			else
				conn_event(ep, evs[k].data.ptr, evs[k].events);
		}
		if (dump && n >= 0 && n < 256) {
			dump = 0;
			write_stats(stats);
		}
	}
	record_flush();
	write_stats(stats);
	/* sessions still open are cut; nothing is left for a leak checker */
	while (conns != NULL)
		close_conn(ep, conns);
	for (size_t i = 0; i < nlisteners; i++)
		close(listeners[i].fd);
	close(ep);
	free(heap);
	free(record_buf);
	return 0;
}
