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

/*
 * The length of a header line's field name (printable ASCII except ':'
 * and space, RFC 5322 ftext), or 0 when the line is not a header. White
 * space between the name and the colon is the obsolete form ("Subject :
 * text", RFC 5322 section 4.5) that Postfix also reads as a header; it
 * is not part of the name, so look-ups by name find the field.
 */
static size_t
field_name_len(const char *line, size_t len)
{
	size_t i, name_len;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == ':' || c < 33 || c > 126)
			break;
	}
	name_len = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return name_len > 0 && i < len && line[i] == ':' ? name_len : 0;
}

/*
 * Copies one header line and its CRLF. A CR left inside the line (not
 * part of its end) becomes a space: the next hop could read it as a
 * line end and the rest of the line as a header of its own.
 */
static void
put_header_line(char *dst, const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = line[i] == '\r' ? ' ' : line[i];
	memcpy(dst + len, "\r\n", 3);
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
	put_header_line(h->raw, line, len);
	h->raw_len = len + 2;
	h->deleted = false;
}

static void
continue_header(struct header *h, const char *line, size_t len)
{
	h->raw = xrealloc(h->raw, h->raw_len + len + 3);
	put_header_line(h->raw + h->raw_len, line, len);
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
	const char *p, *end = data + len;
	enum { START, HEADERS, BODY } where;
	size_t lineno;
	bool obsolete_start = false, all_body = false;

	memset(m, 0, sizeof(*m));
	m->input_size = len;
	if (limit > 0 && (long long)len > limit)
		return fail(err, errlen, EX_DATAERR,
		    "message exceeds message_size_limit");
	if (memchr(data, '\0', len) != NULL)
		return fail(err, errlen, EX_DATAERR,
		    "message contains a NUL byte");
again:
	p = data;
	where = all_body ? BODY : START;
	lineno = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t n = (size_t)((nl ? nl : end) - p);
		/*
		 * Every CR before the LF is line end: CR CR LF is CRLF text
		 * converted once more (Windows-written templates), and
		 * Postfix takes it.
		 */
		while (n > 0 && p[n - 1] == '\r')
			n--;
		lineno++;
		if (lineno == 1 && n >= 5 && memcmp(p, "From ", 5) == 0 &&
		    field_name_len(p, n) == 0) {
			p = next;	/* mbox separator, not a header */
			continue;
		}
		if (where != BODY) {
			size_t name_len = field_name_len(p, n);
			if (n == 0) {
				where = BODY;
			} else if ((p[0] == ' ' || p[0] == '\t') &&
			    where == HEADERS) {
				continue_header(&m->headers[m->nheaders - 1],
				    p, n);
			} else if (name_len > 0) {
				if (where == START && p[name_len] != ':')
					obsolete_start = true;
				add_header(m, p, n, name_len);
				where = HEADERS;
			} else if (where == START) {
				/* No header section at all: all body. */
				where = BODY;
				add_body_line(&m->body, p, n);
			} else if (obsolete_start) {
				/*
				 * "Disk : 90%" from a script that sends text
				 * without headers was all body before the
				 * obsolete form was read as a header; it
				 * still is, rather than refused.
				 */
				message_free(m);
				m->input_size = len;
				all_body = true;
				goto again;
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
	const char *p = h->raw + strlen(h->name);
	const char *end = h->raw + h->raw_len;

	p += strspn(p, " \t") + 1;	/* the obsolete "Name :" too */

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
