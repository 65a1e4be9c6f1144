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
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* An EHLO keyword line: "250-" or "250 " and the keyword. */
#define HEAD_MAX 12

static struct {
	int fd;			/* the session's socket, or -1 */
	bool tls;		/* STARTTLS sent: plain I/O is TLS records */
	SSL *ssl;		/* handshake done: poll() asks this */
	bool drop;		/* dropping libESMTP's generated fields */
	int dropped;		/* octets dropped so far */
	int blank;		/* progress through "\r\n\r\n" */
	char head[HEAD_MAX];	/* start of the reply line being read */
	int hlen;
	bool ehlo_8bitmime;
	bool chunking_hidden;
} w = {.fd = -1};

void
wire_attach(int fd)
{
	memset(&w, 0, sizeof(w));
	w.fd = fd;
}

void
wire_drop_generated_header(void)
{
	w.drop = true;
	w.dropped = 0;
	w.blank = 0;
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

/* Reads: look at each reply line's start, rename CHUNKING in place. */
static void
filter_read(char *buf, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			w.hlen = 0;
			continue;
		}
		if (w.hlen >= HEAD_MAX)
			continue;
		w.head[w.hlen++] = (char)toupper((unsigned char)buf[i]);
		if (w.hlen != HEAD_MAX || memcmp(w.head, "250", 3) != 0 ||
		    (w.head[3] != '-' && w.head[3] != ' '))
			continue;
		if (memcmp(w.head + 4, "CHUNKING", 8) == 0) {
			/* The line's last octet is still in our hands. */
			buf[i] = 'X';
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

/*
 * One write of libESMTP's: drops the generated prefix, if any, writes
 * the rest with real(), and reports the whole buffer as written.
 */
static ssize_t
filter_write(write_fn real, void *obj, const void *buf, size_t len)
{
	if (!w.drop)
		return real(obj, buf, len);
	int blank;
	int skip = generated_prefix(buf, len, &blank);
	if (skip < 0) {
		log_error("libESMTP chose BDAT although CHUNKING was hidden; "
		    "connection abandoned");
		(void)shutdown(w.fd, SHUT_RDWR);
		errno = EPIPE;
		return -1;
	}
	ssize_t n = 0;
	if ((size_t)skip < len) {
		n = real(obj, (const char *)buf + skip, len - (size_t)skip);
		if (n <= 0)
			return n;	/* retried with the same octets */
	}
	w.dropped += skip;
	w.blank = blank;
	if (w.blank == 4)
		w.drop = false;
	return skip + n;
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
real_ssl_write(void *obj, const void *buf, size_t len)
{
	static int (*fn)(SSL *, const void *, int);

	if (fn == NULL)
		fn = (int (*)(SSL *, const void *, int))dlsym(RTLD_NEXT,
		    "SSL_write");
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
	return filter_write(real_write, &fd, buf, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	static ssize_t (*fn)(int, void *, size_t);

	if (fn == NULL)
		fn = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT,
		    "read");
	ssize_t n = fn(fd, buf, len);
	if (n > 0 && ours(fd) && !w.tls)
		filter_read(buf, n);
	return n;
}

int
SSL_write(SSL *ssl, const void *buf, int num)
{
	if (num <= 0 || !ours(SSL_get_fd(ssl)))
		return (int)real_ssl_write(ssl, buf, num > 0 ? (size_t)num : 0);
	return (int)filter_write(real_ssl_write, ssl, buf, (size_t)num);
}

int
SSL_read(SSL *ssl, void *buf, int num)
{
	static int (*fn)(SSL *, void *, int);

	if (fn == NULL)
		fn = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
	int n = fn(ssl, buf, num);
	if (n > 0 && ours(SSL_get_fd(ssl)))
		filter_read(buf, n);
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

int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	static int (*fn)(struct pollfd *, nfds_t, int);

	if (fn == NULL)
		fn = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT,
		    "poll");
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
