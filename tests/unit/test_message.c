/*
 * test_message - splitting input into headers and body: line ends,
 * folding, lone-dot handling, and the inputs that must be refused.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail/message.h"
#include "tests/unit/unit.h"

static int
parse(const char *text, long long limit, struct message *m)
{
	char err[256];

	return message_parse(text, strlen(text), limit, m, err, sizeof(err));
}

static void
test_basic(void)
{
	struct message m;

	CHECK_INT(parse("Subject: hi\nTo: a@b,\n  c@d\n\nline1\r\nline2", 0,
	    &m), 0);
	CHECK_INT(m.nheaders, 2);
	CHECK_STR(m.headers[0].name, "Subject");
	CHECK_STR(m.headers[1].raw, "To: a@b,\r\n  c@d\r\n");
	char *v = header_value(&m.headers[1]);
	CHECK_STR(v, "a@b,  c@d");
	free(v);
	/* LF, CRLF and a missing final newline all end up as CRLF. */
	CHECK_STR(m.body.data, "line1\r\nline2\r\n");
	size_t pos = 0;
	CHECK(message_find(&m, "to", &pos) == &m.headers[1]);
	CHECK_INT(message_delete(&m, "TO"), 1);
	CHECK(!message_has(&m, "To"));
	message_free(&m);
}

static void
test_no_headers(void)
{
	struct message m;

	/* "echo hi | sendmail root": all body, as with Postfix. */
	CHECK_INT(parse("hello world\nsecond\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 0);
	CHECK_STR(m.body.data, "hello world\r\nsecond\r\n");
	message_free(&m);
	/* Headers only, no body at all, is a valid message. */
	CHECK_INT(parse("Subject: only\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 1);
	CHECK_INT(m.body.len, 0);
	message_free(&m);
	/* An mbox From_ line is dropped. */
	CHECK_INT(parse("From alice Wed Nov 25 13:00:00 2026\nSubject: x\n\nb\n",
	    0, &m), 0);
	CHECK_INT(m.nheaders, 1);
	CHECK_STR(m.headers[0].name, "Subject");
	message_free(&m);
}

static void
test_8bit_and_cr(void)
{
	struct message m;

	CHECK_INT(parse("Subject: =?utf-8?q?x?= \xc3\xa9t\xc3\xa9\n\n"
	    "caf\xc3\xa9 \xff\xfe\n", 0, &m), 0);
	CHECK_STR(m.body.data, "caf\xc3\xa9 \xff\xfe\r\n");
	message_free(&m);
	/* A lone CR in the body becomes a line break: valid on the wire. */
	CHECK_INT(parse("Subject: x\n\na\rb\n", 0, &m), 0);
	CHECK_STR(m.body.data, "a\r\nb\r\n");
	message_free(&m);
}

static void
test_refused(void)
{
	struct message m;
	char err[256];

	CHECK_INT(message_parse("Subject: x\n\na\0b\n", 14, 0, &m, err,
	    sizeof(err)), EX_DATAERR);
	CHECK(strstr(err, "NUL") != NULL);
	message_free(&m);
	CHECK_INT(parse("Subject: x\nthis is not a header\n", 0, &m),
	    EX_DATAERR);
	message_free(&m);
	CHECK_INT(parse("Subject: ok\n\x1b[31m: x\n\nbody\n", 0, &m),
	    EX_DATAERR);
	message_free(&m);
	CHECK_INT(parse("Subject: x\n\n0123456789", 22, &m), 0);
	message_free(&m);
	CHECK_INT(parse("Subject: x\n\n0123456789", 21, &m), EX_DATAERR);
	message_free(&m);
}

/*
 * CR CR LF (CRLF text converted once more) and other stray CRs: taken,
 * as Postfix takes them, and made into what is valid on the wire.
 */
static void
test_cr_cr_lf(void)
{
	struct message m;

	CHECK_INT(parse("Subject: twice\r\r\nTo: a@b.example,\r\r\n"
	    " c@d.example\r\r\n\r\r\nline1\r\r\nline2\r\r\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 2);
	CHECK_STR(m.headers[0].raw, "Subject: twice\r\n");
	CHECK_STR(m.headers[1].raw, "To: a@b.example,\r\n c@d.example\r\n");
	CHECK_STR(m.body.data, "line1\r\nline2\r\n");
	message_free(&m);
	/* A CR inside a header line is a space, never a line end. */
	CHECK_INT(parse("Subject: a\rBcc: x@y.example\n\nb\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 1);
	CHECK_STR(m.headers[0].raw, "Subject: a Bcc: x@y.example\r\n");
	message_free(&m);
	/* Other control characters in a field body pass (ISO-2022-JP). */
	CHECK_INT(parse("Subject: \x1b$B0\x21\x1b(B \x01\x7f\n\nb\n", 0, &m),
	    0);
	CHECK_STR(m.headers[0].raw, "Subject: \x1b$B0\x21\x1b(B \x01\x7f\r\n");
	message_free(&m);
}

/* "Subject : text": RFC 5322 section 4.5, white space before the colon. */
static void
test_obsolete_colon(void)
{
	struct message m;
	size_t pos = 0;

	CHECK_INT(parse("Subject : spaced\nTo\t:\ta@b.example\n"
	    "X-Y:z\n\nbody\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 3);
	CHECK_STR(m.headers[0].name, "Subject");
	CHECK_STR(m.headers[0].raw, "Subject : spaced\r\n");
	CHECK_STR(m.headers[1].name, "To");
	CHECK(message_find(&m, "subject", &pos) == &m.headers[0]);
	char *v = header_value(&m.headers[0]);
	CHECK_STR(v, "spaced");
	free(v);
	v = header_value(&m.headers[1]);
	CHECK_STR(v, "a@b.example");
	free(v);
	CHECK_STR(m.body.data, "body\r\n");
	message_free(&m);
	/* "From :" is the obsolete From:, not an mbox From_ line. */
	CHECK_INT(parse("From : a@b.example\n\nbody\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 1);
	CHECK_STR(m.headers[0].name, "From");
	message_free(&m);
	/* A word, white space and then no colon is no header. */
	CHECK_INT(parse("Dear John: hello\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 0);
	message_free(&m);
	/*
	 * A script's "Key : value" report without headers stays all body
	 * (as before the obsolete form was read), not refused.
	 */
	CHECK_INT(parse("Disk : 90%\nLoad : 3\nall is well\n", 0, &m), 0);
	CHECK_INT(m.nheaders, 0);
	CHECK_STR(m.body.data, "Disk : 90%\r\nLoad : 3\r\nall is well\r\n");
	message_free(&m);
	/* Still refused when a proper header started the section. */
	CHECK_INT(parse("Subject: x\nDisk : 90%\nall is well\n", 0, &m),
	    EX_DATAERR);
	message_free(&m);
}

static int
read_text(const char *text, bool dot_ends, struct message *m)
{
	int fds[2];
	char err[256];

	if (pipe(fds) != 0)
		return -1;
	if (write(fds[1], text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	close(fds[1]);
	int rc = message_read(fds[0], dot_ends, 0, m, err, sizeof(err));
	close(fds[0]);
	return rc;
}

static void
test_lone_dot(void)
{
	struct message m;

	CHECK_INT(read_text("Subject: x\n\nbefore\n.\nafter\n", true, &m), 0);
	CHECK_STR(m.body.data, "before\r\n");
	message_free(&m);
	CHECK_INT(read_text("Subject: x\n\nbefore\r\n.\r\nafter\n", true,
	    &m), 0);
	CHECK_STR(m.body.data, "before\r\n");
	message_free(&m);
	/* With -i the dot is data. */
	CHECK_INT(read_text("Subject: x\n\nbefore\n.\nafter\n", false, &m), 0);
	CHECK_STR(m.body.data, "before\r\n.\r\nafter\r\n");
	message_free(&m);
	/* ".." is not a lone dot. */
	CHECK_INT(read_text("Subject: x\n\n..\n", true, &m), 0);
	CHECK_STR(m.body.data, "..\r\n");
	message_free(&m);
}

int
main(void)
{
	test_basic();
	test_no_headers();
	test_8bit_and_cr();
	test_refused();
	test_cr_cr_lf();
	test_obsolete_colon();
	test_lone_dot();
	return unit_done("message");
}
