/*
 * NAME
 *	message - reading a submitted message and handling its headers
 * DESCRIPTION
 *	See message.h. The input is read whole into memory (bounded by
 *	message_size_limit), so the spool transaction that follows is short
 *	and never waits on a slow client.
 */
#include "sendmail/message.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static int
fail(char *err, size_t errlen, int code, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return code;
}

/* Field name: printable ASCII except ':' and space (RFC 5322 ftext). */
static size_t
field_name_len(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == ':')
			return i;
		if (c < 33 || c > 126)
			return 0;
	}
	return 0;
}

static bool
has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 32 && c != '\t') || c == 127)
			return true;
	}
	return false;
}

static void
add_header(struct message *m, const char *line, size_t len, size_t name_len)
{
	if (m->nheaders == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->headers = xrealloc(m->headers, m->cap * sizeof(*m->headers));
	}
	struct header *h = &m->headers[m->nheaders++];
	h->name = xstrndup(line, name_len);
	h->raw = xmalloc(len + 3);
	memcpy(h->raw, line, len);
	memcpy(h->raw + len, "\r\n", 3);
	h->raw_len = len + 2;
	h->deleted = false;
}

static void
continue_header(struct header *h, const char *line, size_t len)
{
	h->raw = xrealloc(h->raw, h->raw_len + len + 3);
	memcpy(h->raw + h->raw_len, line, len);
	memcpy(h->raw + h->raw_len + len, "\r\n", 3);
	h->raw_len += len + 2;
}

/* Appends a body line, turning a lone CR inside it into a line break. */
static void
add_body_line(struct buf *body, const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\r')
			buf_append(body, "\r\n", 2);
		else
			buf_putc(body, line[i]);
	}
	buf_append(body, "\r\n", 2);
}

int
message_parse(const char *data, size_t len, long long limit,
    struct message *m, char *err, size_t errlen)
{
	const char *p = data, *end = data + len;
	enum { START, HEADERS, BODY } where = START;
	size_t lineno = 0;

	memset(m, 0, sizeof(*m));
	m->input_size = len;
	if (limit > 0 && (long long)len > limit)
		return fail(err, errlen, EX_DATAERR,
		    "message exceeds message_size_limit");
	if (memchr(data, '\0', len) != NULL)
		return fail(err, errlen, EX_DATAERR,
		    "message contains a NUL byte");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		lineno++;
		if (where == START && lineno == 1 && n >= 5 &&
		    memcmp(p, "From ", 5) == 0) {
			p = next;	/* mbox separator, not a header */
			continue;
		}
		if (where != BODY) {
			size_t name_len = field_name_len(p, n);
			if (n == 0) {
				where = BODY;
			} else if ((p[0] == ' ' || p[0] == '\t') &&
			    where == HEADERS) {
				if (has_control(p, n))
					goto garbage;
				continue_header(&m->headers[m->nheaders - 1],
				    p, n);
			} else if (name_len > 0) {
				if (has_control(p, n))
					goto garbage;
				add_header(m, p, n, name_len);
				where = HEADERS;
			} else if (where == START) {
				/* No header section at all: all body. */
				where = BODY;
				add_body_line(&m->body, p, n);
			} else {
				snprintf(err, errlen, "line %zu is neither a "
				    "header nor the empty line that ends the "
				    "headers", lineno);
				return EX_DATAERR;
			}
		} else {
			add_body_line(&m->body, p, n);
		}
		p = next;
	}
	return 0;
garbage:
	snprintf(err, errlen, "header on line %zu contains control "
	    "characters", lineno);
	return EX_DATAERR;
}

int
message_read(int fd, bool dot_ends, long long limit, struct message *m,
    char *err, size_t errlen)
{
	struct buf in = BUF_INIT;
	char chunk[65536];
	size_t line_start = 0;
	bool done = false;

	memset(m, 0, sizeof(*m));
	while (!done) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read message: %s",
			    strerror(errno));
			buf_free(&in);
			return EX_TEMPFAIL;
		}
		if (n == 0)
			break;
		buf_append(&in, chunk, (size_t)n);
		if (limit > 0 && (long long)in.len > limit + 3) {
			buf_free(&in);
			return fail(err, errlen, EX_DATAERR,
			    "message exceeds message_size_limit");
		}
		if (!dot_ends)
			continue;
		/* Without -i a line holding only "." ends the input. */
		for (;;) {
			char *nl = memchr(in.data + line_start, '\n',
			    in.len - line_start);
			if (nl == NULL)
				break;
			size_t llen = (size_t)(nl - (in.data + line_start));
			const char *l = in.data + line_start;
			if ((llen == 1 && l[0] == '.') ||
			    (llen == 2 && l[0] == '.' && l[1] == '\r')) {
				in.len = line_start;
				done = true;
				break;
			}
			line_start += llen + 1;
		}
	}
	if (dot_ends && !done && in.len - line_start == 1 &&
	    in.data[line_start] == '.')
		in.len = line_start;	/* "." as the last, unterminated line */
	int rc = message_parse(in.data ? in.data : "", in.len, limit, m, err,
	    errlen);
	buf_free(&in);
	return rc;
}

struct header *
message_find(struct message *m, const char *name, size_t *pos)
{
	for (size_t i = *pos; i < m->nheaders; i++) {
		if (!m->headers[i].deleted &&
		    str_casecmp_ascii(m->headers[i].name, name) == 0) {
			*pos = i + 1;
			return &m->headers[i];
		}
	}
	*pos = m->nheaders;
	return NULL;
}

bool
message_has(struct message *m, const char *name)
{
	size_t pos = 0;

	return message_find(m, name, &pos) != NULL;
}

char *
header_value(const struct header *h)
{
	struct buf v = BUF_INIT;
	const char *p = h->raw + strlen(h->name) + 1;
	const char *end = h->raw + h->raw_len;

	for (; p < end; p++)
		if (*p != '\r' && *p != '\n')
			buf_putc(&v, *p);
	return str_trim(buf_steal(&v));
}

size_t
message_delete(struct message *m, const char *name)
{
	size_t pos = 0, n = 0;
	struct header *h;

	while ((h = message_find(m, name, &pos)) != NULL) {
		h->deleted = true;
		n++;
	}
	return n;
}

void
message_free(struct message *m)
{
	for (size_t i = 0; i < m->nheaders; i++) {
		free(m->headers[i].name);
		free(m->headers[i].raw);
	}
	free(m->headers);
	buf_free(&m->body);
	memset(m, 0, sizeof(*m));
}
