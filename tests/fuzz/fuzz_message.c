/*
 * NAME
 *	fuzz_message - libFuzzer harness for the message and header parser
 * SYNOPSIS
 *	build-fuzz/tests/fuzz/fuzz_message [libFuzzer options] [corpus ...]
 * DESCRIPTION
 *	Each input is a message as "sendmail" reads it from a PHP mail(),
 *	Symfony or cron pipe, and goes through both entry points:
 *	message_parse() on the bytes in memory (the -bs DATA path), and
 *	message_read() on a memfd, as standard input is read, once to EOF
 *	(-i) and once with a line holding a single dot ending it, the
 *	latter under a size limit of half the input, so the limit paths
 *	run too. Then it does to the parsed message what submission does:
 *	header_value() of each header, the -t recipients of To/Cc/Bcc (or
 *	Resent-*) through address_list_parse(), and deleting Bcc.
 *
 *	It checks what message.h promises, because the parsed message is
 *	what is stored and sent:
 *	-	reading to EOF and parsing the same bytes give the same result;
 *	-	every line end in a header and in the body is CRLF, with no
 *		bare CR or LF left, and no NUL anywhere;
 *	-	each header's raw text starts with its name and a colon;
 *	-	header_value() has no CR or LF; message_delete() removes
 *		every match.
 * SEE ALSO
 *	sendmail/message.h, tests/fuzz/README
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail/address.h"
#include "sendmail/message.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

/* Every CR is followed by LF and every LF preceded by CR; no NUL. */
static bool
crlf_only(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return false;
		if (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n'))
			return false;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return false;
	}
	return true;
}

static void
check_message(struct message *m)
{
	static const char *plain[] = {"To", "Cc", "Bcc"};
	static const char *resent[] = {"Resent-To", "Resent-Cc", "Resent-Bcc"};
	const char **names = plain;
	struct addr_list rcpts = ADDR_LIST_INIT;
	struct header *h;
	char *value, err[256];
	size_t i, k, pos, nlen;

	FUZZ_ASSERT(m->body.len == 0 || crlf_only(m->body.data, m->body.len),
	    "body lines end in CRLF");
	FUZZ_ASSERT(m->body.len == 0 || (m->body.len >= 2 &&
	    memcmp(m->body.data + m->body.len - 2, "\r\n", 2) == 0),
	    "body ends with a line end");
	for (i = 0; i < m->nheaders; i++) {
		h = &m->headers[i];
		nlen = strlen(h->name);
		/* "Name:" or the obsolete "Name :" (RFC 5322 4.5.8). */
		size_t colon = nlen;
		while (colon < h->raw_len && (h->raw[colon] == ' ' ||
		    h->raw[colon] == '\t'))
			colon++;
		FUZZ_ASSERT(nlen > 0 && h->raw_len > colon &&
		    memcmp(h->raw, h->name, nlen) == 0 && h->raw[colon] == ':',
		    "raw header starts with \"name:\" or \"name :\"");
		FUZZ_ASSERT(strlen(h->raw) == h->raw_len,
		    "raw header is raw_len bytes without NUL");
		FUZZ_ASSERT(crlf_only(h->raw, h->raw_len) &&
		    memcmp(h->raw + h->raw_len - 2, "\r\n", 2) == 0,
		    "header lines end in CRLF");
		value = header_value(h);
		FUZZ_ASSERT(strpbrk(value, "\r\n") == NULL,
		    "header value is unfolded");
		free(value);
		if (str_ncasecmp_ascii(h->name, "Resent-", 7) == 0)
			names = resent;
	}
	/* What "sendmail -t" does with the recipient fields. */
	for (k = 0; k < 3; k++) {
		pos = 0;
		while ((h = message_find(m, names[k], &pos)) != NULL) {
			value = header_value(h);
			(void)address_list_parse(value, strlen(value), &rcpts,
			    err, sizeof(err));
			free(value);
		}
	}
	for (i = 0; i < rcpts.n; i++)
		FUZZ_ASSERT(address_valid(rcpts.addrs[i]),
		    "-t recipient is canonical");
	addr_list_free(&rcpts);
	message_delete(m, "Bcc");
	FUZZ_ASSERT(!message_has(m, "bcc"), "Bcc deleted");
}

static bool
same_message(const struct message *a, const struct message *b)
{
	size_t i;

	if (a->nheaders != b->nheaders || a->body.len != b->body.len ||
	    (a->body.len && memcmp(a->body.data, b->body.data, a->body.len)))
		return false;
	for (i = 0; i < a->nheaders; i++)
		if (a->headers[i].raw_len != b->headers[i].raw_len ||
		    strcmp(a->headers[i].name, b->headers[i].name) != 0 ||
		    memcmp(a->headers[i].raw, b->headers[i].raw,
		    a->headers[i].raw_len) != 0)
			return false;
	return true;
}

/* Standard input, as far as message_read() can tell. */
static int
input_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_message", 0);

	if (fd < 0 || write_full(fd, data, size) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message parsed, read_eof, read_dot;
	char err[256];
	int rc_parse, rc_eof, rc_dot, fd;

	rc_parse = message_parse((const char *)data, size, 0, &parsed, err,
	    sizeof(err));
	FUZZ_ASSERT(rc_parse == 0 || rc_parse == EX_DATAERR,
	    "parse result is 0 or EX_DATAERR");
	if (rc_parse == 0)
		check_message(&parsed);

	fd = input_fd(data, size);
	rc_eof = message_read(fd, false, 0, &read_eof, err, sizeof(err));
	FUZZ_ASSERT(rc_eof == rc_parse, "read to EOF agrees with parse");
	if (rc_eof == 0) {
		/* check_message() deleted Bcc in parsed: do the same. */
		message_delete(&read_eof, "Bcc");
		FUZZ_ASSERT(same_message(&parsed, &read_eof),
		    "read to EOF gives what parse gives");
	}
	message_free(&read_eof);
	message_free(&parsed);

	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	rc_dot = message_read(fd, true, (long long)(size / 2), &read_dot, err,
	    sizeof(err));
	FUZZ_ASSERT(rc_dot == 0 || rc_dot == EX_DATAERR,
	    "dot-ended read result is 0 or EX_DATAERR");
	if (rc_dot == 0)
		check_message(&read_dot);
	message_free(&read_dot);
	close(fd);
	return 0;
}
