/*
 * NAME
 *	wire - what libESMTP reads from and writes to the SMTP socket
 * DESCRIPTION
 *	See wire.h for why these functions replace the C library's and
 *	OpenSSL's for one socket. Every other file descriptor and every
 *	other SSL object goes straight to the real function.
 */
#include "queuerun/wire.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "queuerun/pipeline.h"

/* An EHLO keyword line: "250-" or "250 ", the keyword, what follows. */
#define HEAD_MAX 15

static struct {
	int fd;			/* the session's socket, or -1 */
	bool tls;		/* STARTTLS sent: plain I/O is TLS records */
	bool content;		/* libESMTP is writing a message's content */
	int dot;		/* progress through "\r\n.\r\n" */
	SSL *ssl;		/* handshake done: poll() asks this */
	bool drop;		/* dropping libESMTP's generated fields */
	int dropped;		/* octets dropped so far */
	int blank;		/* progress through "\r\n\r\n" */
	char head[HEAD_MAX];	/* start of the reply line being read */
	int hlen;
	bool ehlo_8bitmime;
	bool chunking_hidden;
	bool abandoned;		/* pipelining went wrong: socket shut */
	struct buf joined;	/* held MAIL and libESMTP's next write */
} w = {.fd = -1};

void
wire_attach(int fd)
{
	buf_free(&w.joined);
	memset(&w, 0, sizeof(w));
	w.fd = fd;
	pipeline_reset();
}

void
wire_drop_generated_header(void)
{
	w.drop = true;
	w.dropped = 0;
	w.blank = 0;
	w.content = true;
	w.dot = 0;
}

void
wire_tls_ready(SSL *ssl)
{
	if (w.fd >= 0 && ssl != NULL && SSL_get_fd(ssl) == w.fd)
		w.ssl = ssl;
}

bool
wire_ehlo_8bitmime(void)
{
	return w.ehlo_8bitmime;
}

bool
wire_chunking_hidden(void)
{
	return w.chunking_hidden;
}

bool
wire_mail_pipelined(void)
{
	return pipeline_mail_held();
}

const char *
wire_mail_reply(void)
{
	return pipeline_mail_reply();
}

static bool
keyword(const char *word, size_t len)
{
	return w.hlen >= 4 + (int)len &&
	    memcmp(w.head + 4, word, len) == 0 &&
	    (w.hlen == 4 + (int)len || w.head[4 + len] == '\r' ||
	    w.head[4 + len] == ' ');
}

/*
 * Reads, as libESMTP is to see them: look at each reply line's start,
 * rename CHUNKING in place, note 8BITMIME and PIPELINING.
 */
static void
filter_read(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			if (w.hlen >= 4 && memcmp(w.head, "250", 3) == 0 &&
			    (w.head[3] == '-' || w.head[3] == ' ') &&
			    keyword("PIPELINING", 10))
				pipeline_offered(true);
			w.hlen = 0;
			continue;
		}
		if (w.hlen >= HEAD_MAX)
			continue;
		w.head[w.hlen++] = (char)toupper((unsigned char)buf[i]);
		if (w.hlen != 12 || memcmp(w.head, "250", 3) != 0 ||
		    (w.head[3] != '-' && w.head[3] != ' '))
			continue;
		if (memcmp(w.head + 4, "CHUNKING", 8) == 0) {
			/* The line's last octet is still in our hands. */
			buf[i] = 'X';
			w.head[11] = 'X';
			w.chunking_hidden = true;
		} else if (memcmp(w.head + 4, "8BITMIME", 8) == 0) {
			w.ehlo_8bitmime = true;
		}
	}
}

/*
 * Writes while dropping: how many leading octets of buf are libESMTP's
 * own fields, -1 if it is not writing what deliver.c arranged (BDAT).
 * Nothing is committed to w until the real write succeeded.
 */
static int
generated_prefix(const char *buf, size_t len, int *blank)
{
	static const char end[] = "\r\n\r\n";
	size_t i;

	if (w.dropped == 0 && len >= 5 && memcmp(buf, "BDAT ", 5) == 0)
		return -1;
	*blank = w.blank;
	for (i = 0; i < len && *blank < 4; i++)
		*blank = buf[i] == end[*blank] ? *blank + 1 :
		    buf[i] == '\r' ? 1 : 0;
	return (int)i;
}

typedef ssize_t (*write_fn)(void *obj, const void *buf, size_t len);
typedef ssize_t (*read_fn)(void *obj, void *buf, size_t len);

/* Pipelining went wrong (pipeline.h): no more replies can be trusted. */
static void
abandon(const char *why)
{
	if (w.abandoned)
		return;
	w.abandoned = true;
	log_error("pipelining: %s; connection abandoned", why);
	(void)shutdown(w.fd, SHUT_RDWR);
}

/* The end of the content: libESMTP's final dot. */
static void
track_content(const char *buf, size_t len)
{
	static const char end[] = "\r\n.\r\n";

	for (size_t i = 0; i < len && w.content; i++) {
		w.dot = buf[i] == end[w.dot] ? w.dot + 1 :
		    buf[i] == '\r' ? 1 : 0;
		if (w.dot == 5)
			w.content = false;
	}
}

/*
 * One write of content: drops the generated prefix, if any, writes the
 * rest with real(), and reports the whole buffer as written.
 */
static ssize_t
content_write(write_fn real, void *obj, const void *buf, size_t len)
{
	ssize_t n;

	if (!w.drop) {
		n = real(obj, buf, len);
		if (n > 0)
			track_content(buf, (size_t)n);
		return n;
	}
	int blank;
	int skip = generated_prefix(buf, len, &blank);
	if (skip < 0) {
		log_error("libESMTP chose BDAT although CHUNKING was hidden; "
		    "connection abandoned");
		(void)shutdown(w.fd, SHUT_RDWR);
		errno = EPIPE;
		return -1;
	}
	n = 0;
	if ((size_t)skip < len) {
		n = real(obj, (const char *)buf + skip, len - (size_t)skip);
		if (n <= 0)
			return n;	/* retried with the same octets */
	}
	w.dropped += skip;
	w.blank = blank;
	if (w.blank == 4)
		w.drop = false;
	track_content(buf, (size_t)skip + (size_t)n);
	return skip + n;
}

/* libESMTP's commands that reached the server. */
static ssize_t
sent(const void *buf, ssize_t n)
{
	if (n > 0 && !pipeline_sent(buf, (size_t)n))
		abandon(pipeline_abandon_reason());
	return n;
}

/*
 * The write after a held MAIL: both in one write. When the socket takes
 * only part of the MAIL, libESMTP is told to try again (EAGAIN); TLS
 * writes all or nothing, and a retry rebuilds the same octets in the
 * same place, as OpenSSL requires.
 */
static ssize_t
write_after_held(write_fn real, void *obj, const char *held, size_t hlen,
    const void *buf, size_t len)
{
	buf_reset(&w.joined);
	buf_append(&w.joined, held, hlen);
	buf_append(&w.joined, buf, len);
	ssize_t n = real(obj, w.joined.data, w.joined.len);
	if (n <= 0)
		return n;
	if ((size_t)n < hlen) {
		pipeline_held_sent((size_t)n);
		errno = EAGAIN;
		return -1;
	}
	pipeline_held_sent(hlen);
	return sent(buf, n - (ssize_t)hlen);
}

/* One write of commands. */
static ssize_t
command_write(write_fn real, void *obj, const void *buf, size_t len)
{
	const char *b = buf;
	size_t hlen;
	const char *held = pipeline_held(&hlen);

	if (w.abandoned) {
		errno = EPIPE;
		return -1;
	}
	if (held != NULL) {
		if (pipeline_next_write_ok(b, len))
			return write_after_held(real, obj, held, hlen, buf,
			    len);
		abandon("libESMTP followed MAIL FROM with another command");
		errno = EPIPE;
		return -1;
	}
	if ((len >= 5 && (strncasecmp(b, "EHLO ", 5) == 0 ||
	    strncasecmp(b, "HELO ", 5) == 0)) ||
	    (len >= 8 && strncasecmp(b, "STARTTLS", 8) == 0))
		pipeline_offered(false);
	long at = pipeline_mail_start(b, len);
	if (at < 0)
		return sent(buf, real(obj, buf, len));
	if (at > 0) {
		/* The RSETs before it go now; a short write is retried. */
		ssize_t n = real(obj, buf, (size_t)at);
		if (n < at)
			return n;
	}
	pipeline_hold(b, (size_t)at, b + at, len - (size_t)at);
	return (ssize_t)len;
}

static ssize_t
session_write(write_fn real, void *obj, const void *buf, size_t len)
{
	if (w.content)
		return content_write(real, obj, buf, len);
	return command_write(real, obj, buf, len);
}

/*
 * One read of libESMTP's: what pipeline.c has for it, or else what the
 * server sent, through pipeline.c. A read whose every octet was taken
 * out reads again, so that libESMTP sees EAGAIN (it then polls), the
 * end of the connection or TLS's own error state, never an empty read.
 */
static ssize_t
session_read(read_fn real, void *obj, void *buf, size_t len)
{
	for (;;) {
		if (pipeline_readable()) {
			size_t n = pipeline_take(buf, len);
			filter_read(buf, n);
			return (ssize_t)n;
		}
		/* Abandoned: what was sound has been read; the rest is lost. */
		if (w.abandoned)
			return 0;
		ssize_t n = real(obj, buf, len);
		if (n <= 0)
			return n;
		pipeline_feed(buf, (size_t)n);
		if (pipeline_abandon())
			abandon(pipeline_abandon_reason());
	}
}

static ssize_t
real_write(void *obj, const void *buf, size_t len)
{
	static ssize_t (*fn)(int, const void *, size_t);

	if (fn == NULL)
		fn = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
		    "write");
	return fn(*(int *)obj, buf, len);
}

static ssize_t
real_read(void *obj, void *buf, size_t len)
{
	static ssize_t (*fn)(int, void *, size_t);

	if (fn == NULL)
		fn = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT,
		    "read");
	return fn(*(int *)obj, buf, len);
}

static ssize_t
real_ssl_write(void *obj, const void *buf, size_t len)
{
	static int (*fn)(SSL *, const void *, int);

	if (fn == NULL)
		fn = (int (*)(SSL *, const void *, int))dlsym(RTLD_NEXT,
		    "SSL_write");
	return fn(obj, buf, (int)len);
}

static ssize_t
real_ssl_read(void *obj, void *buf, size_t len)
{
	static int (*fn)(SSL *, void *, int);

	if (fn == NULL)
		fn = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
	return fn(obj, buf, (int)len);
}

static int
ours(int fd)
{
	return w.fd >= 0 && fd == w.fd;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	if (!ours(fd) || w.tls)
		return real_write(&fd, buf, len);
	if (len >= 10 && memcmp(buf, "STARTTLS\r\n", 10) == 0)
		w.tls = true;
	return session_write(real_write, &fd, buf, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	if (!ours(fd) || w.tls)
		return real_read(&fd, buf, len);
	return session_read(real_read, &fd, buf, len);
}

int
SSL_write(SSL *ssl, const void *buf, int num)
{
	if (num <= 0 || !ours(SSL_get_fd(ssl)))
		return (int)real_ssl_write(ssl, buf, num > 0 ? (size_t)num : 0);
	return (int)session_write(real_ssl_write, ssl, buf, (size_t)num);
}

int
SSL_read(SSL *ssl, void *buf, int num)
{
	if (num <= 0 || !ours(SSL_get_fd(ssl)))
		return (int)real_ssl_read(ssl, buf, num > 0 ? (size_t)num : 0);
	return (int)session_read(real_ssl_read, ssl, buf, (size_t)num);
}

/*
 * libESMTP polls before it reads: the socket must look readable while
 * pipeline.c has a reply of ours for it, which the server never sent.
 * Returns how many descriptors are ready then, or -2 when there is no
 * such reply (poll as usual).
 */
static int
poll_for_pipeline(int (*fn)(struct pollfd *, nfds_t, int),
    struct pollfd *fds, nfds_t nfds)
{
	bool ready = false;

	if (w.fd >= 0 && pipeline_readable())
		for (nfds_t i = 0; i < nfds; i++)
			if (fds[i].fd == w.fd && (fds[i].events & POLLIN))
				ready = true;
	if (!ready)
		return -2;
	if (fn(fds, nfds, 0) < 0)
		for (nfds_t i = 0; i < nfds; i++)
			fds[i].revents = 0;
	int n = 0;
	for (nfds_t i = 0; i < nfds; i++) {
		if (fds[i].fd == w.fd && (fds[i].events & POLLIN))
			fds[i].revents |= POLLIN;
		if (fds[i].revents != 0)
			n++;
	}
	return n;
}

/*
 * Whether the session's TLS layer has something for SSL_read(): data,
 * or an end or error it must report. Processes the records that are
 * there without waiting for more (libESMTP keeps the socket
 * non-blocking; a blocking one is not touched).
 */
static bool
tls_readable(void)
{
	char c;

	if (SSL_pending(w.ssl) > 0)
		return true;
	int flags = fcntl(w.fd, F_GETFL);
	if (flags == -1 || (flags & O_NONBLOCK) == 0 ||
	    !SSL_is_init_finished(w.ssl) || SSL_get_shutdown(w.ssl) != 0)
		return true;
	int n = SSL_peek(w.ssl, &c, 1);
	if (n > 0)
		return true;
	int err = SSL_get_error(w.ssl, n);
	/* SSL_read() meets an end or an error again, with a clean queue. */
	ERR_clear_error();
	return err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE;
}

/* Takes POLLIN out for the session's socket when TLS has nothing. */
static int
hide_records(struct pollfd *fds, nfds_t nfds)
{
	int ready = 0;

	for (nfds_t i = 0; i < nfds; i++) {
		if (fds[i].fd == w.fd && (fds[i].revents & POLLIN) &&
		    !(fds[i].revents & (POLLERR | POLLHUP)) && !tls_readable())
			fds[i].revents &= ~POLLIN;
		if (fds[i].revents != 0)
			ready++;
	}
	return ready;
}

/*
 * The one poll() of the process: for the session's socket it answers
 * for pipeline.c's replies first, then, once TLS is up, says readable
 * only when TLS has data (see tls_readable()).
 */
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	static int (*fn)(struct pollfd *, nfds_t, int);

	if (fn == NULL)
		fn = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT,
		    "poll");
	int ours_now = poll_for_pipeline(fn, fds, nfds);
	if (ours_now != -2)
		return ours_now;
	if (w.ssl == NULL)
		return fn(fds, nfds, timeout);
	long long deadline = timeout > 0 ? mono_ms() + timeout : 0;
	for (;;) {
		int n = fn(fds, nfds, timeout);
		if (n <= 0 || (n = hide_records(fds, nfds)) > 0)
			return n;
		if (timeout > 0) {
			long long left = deadline - mono_ms();
			if (left <= 0)
				return 0;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		} else if (timeout == 0) {
			return 0;
		}
	}
}
