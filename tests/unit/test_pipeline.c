/*
 * test_pipeline - the reply stream of a pipelined MAIL FROM (pipeline.h)
 * on plain buffers: the 250 of ours, the real reply taken out however
 * the server's octets are split, a refusal replayed to every RCPT and
 * 503 to DATA, RSET before MAIL, and what makes the connection go.
 * The sockets are delivery_pipelining.sh's business.
 */
#include <stdio.h>
#include <string.h>

#include "queuerun/pipeline.h"
#include "tests/unit/unit.h"

static char got[8192];

/* Feeds the server's octets step at a time, then takes what is out. */
static const char *
exchange(const char *server, size_t step)
{
	size_t len = strlen(server), n = 0;

	for (size_t i = 0; i < len; i += step)
		pipeline_feed(server + i, len - i < step ? len - i : step);
	while (pipeline_readable() && n < sizeof(got) - 1)
		n += pipeline_take(got + n, 7);	/* small reads too */
	got[n] = '\0';
	return got;
}

/* libESMTP writes a lone MAIL, then its RCPTs and DATA. */
static void
transaction(const char *before, const char *rcpts)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%sMAIL FROM:<a@example.org> SIZE=10\r\n",
	    before);
	long at = pipeline_mail_start(buf, strlen(buf));
	CHECK_INT(at, (long)strlen(before));
	pipeline_hold(buf, (size_t)at, buf + at, strlen(buf) - (size_t)at);
	CHECK(pipeline_mail_held());
	size_t hl;
	const char *held = pipeline_held(&hl);
	CHECK(held != NULL && hl == strlen(buf) - (size_t)at);
	if (rcpts) {
		CHECK(pipeline_next_write_ok(rcpts, strlen(rcpts)));
		pipeline_held_sent(hl);
		CHECK(pipeline_sent(rcpts, strlen(rcpts)));
		CHECK(pipeline_held(&hl) == NULL);
	}
}

static void
test_off(void)
{
	static const char mail[] = "MAIL FROM:<a@example.org>\r\n";

	pipeline_reset();
	CHECK_INT(pipeline_mail_start(mail, strlen(mail)), -1);
	pipeline_offered(true);
	CHECK_INT(pipeline_mail_start(mail, strlen(mail)), 0);
	/* Not a lone MAIL: as it is. */
	CHECK_INT(pipeline_mail_start("MAIL FROM:<a>\r\nRCPT TO:<b>\r\n", 28),
	    -1);
	CHECK_INT(pipeline_mail_start("MAIL FROM:<a>", 13), -1);
	CHECK_INT(pipeline_mail_start("QUIT\r\n", 6), -1);
	CHECK(!pipeline_mail_held());
}

static void
test_accepted(size_t step)
{
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n");
	CHECK_STR(exchange("", 1), "250 2.1.0 Ok\r\n");
	CHECK(!pipeline_readable());
	CHECK(pipeline_mail_reply() == NULL);
	CHECK_STR(exchange("250-2.1.0 Sender\r\n250-2.1.0 is\r\n250 2.1.0 ok\r\n"
	    "250 2.1.5 b\r\n550 5.1.1 c unknown\r\n354 go ahead\r\n", step),
	    "250 2.1.5 b\r\n550 5.1.1 c unknown\r\n354 go ahead\r\n");
	CHECK_STR(pipeline_mail_reply(),
	    "250-2.1.0 Sender\r\n250-2.1.0 is\r\n250 2.1.0 ok\r\n");
	/* The next transaction, after the content. */
	CHECK_STR(exchange("250 2.0.0 queued\r\n", step), "250 2.0.0 queued\r\n");
	transaction("", "RCPT TO:<d@x>\r\nDATA\r\n");
	CHECK_STR(exchange("250 ok\r\n250 ok\r\n354 go\r\n", step),
	    "250 2.1.0 Ok\r\n250 ok\r\n354 go\r\n");
	CHECK(!pipeline_abandon());
}

static void
test_refused(size_t step)
{
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n");
	CHECK_STR(exchange("", 1), "250 2.1.0 Ok\r\n");
	CHECK_STR(exchange("550-5.7.1 Sender refused\r\n550 5.7.1 by policy\r\n"
	    "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
	    "554 5.5.1 no valid recipients\r\n", step),
	    "550-5.7.1 Sender refused\r\n550 5.7.1 by policy\r\n"
	    "550-5.7.1 Sender refused\r\n550 5.7.1 by policy\r\n"
	    "503 5.5.1 No valid recipients: MAIL FROM was refused\r\n");
	CHECK_STR(pipeline_mail_reply(),
	    "550-5.7.1 Sender refused\r\n550 5.7.1 by policy\r\n");
	/* After it, RSET and the next MAIL, held behind the RSET's reply. */
	transaction("RSET\r\n", NULL);
	CHECK(!pipeline_readable());
	CHECK_STR(exchange("250 2.0.0 reset\r\n", step),
	    "250 2.0.0 reset\r\n250 2.1.0 Ok\r\n");
	CHECK(!pipeline_abandon());
}

/* The refusal comes before libESMTP has written all its commands. */
static void
test_refused_early(void)
{
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\n");
	CHECK_STR(exchange("", 1), "250 2.1.0 Ok\r\n");
	CHECK_STR(exchange("451 4.7.1 later\r\n", 3), "451 4.7.1 later\r\n");
	CHECK(pipeline_sent("RCPT TO:<c@x>\r\nDA", 17));
	CHECK(pipeline_sent("TA\r\n", 4));
	CHECK_STR(exchange("", 1), "451 4.7.1 later\r\n"
	    "503 5.5.1 No valid recipients: MAIL FROM was refused\r\n");
	/* The server's own three replies go nowhere. */
	CHECK_STR(exchange("503 a\r\n503 b\r\n503 c\r\n", 2), "");
	CHECK(!pipeline_abandon());
	CHECK_STR(exchange("221 bye\r\n", 2), "221 bye\r\n");
}

/* 421 and close: libESMTP still reads a reply for every command. */
static void
test_closed(void)
{
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\nDATA\r\n");
	CHECK_STR(exchange("421 4.3.2 closing\r\n", 100),
	    "250 2.1.0 Ok\r\n421 4.3.2 closing\r\n"
	    "503 5.5.1 No valid recipients: MAIL FROM was refused\r\n");
}

static void
test_odd(void)
{
	/* Neither yes nor no to MAIL: a temporary refusal, in its words. */
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\nDATA\r\n");
	CHECK_STR(exchange("354-what\r\n354 now\r\n", 1),
	    "250 2.1.0 Ok\r\n451-what\r\n451 now\r\n"
	    "503 5.5.1 No valid recipients: MAIL FROM was refused\r\n");
	/* 354 to DATA after a refused MAIL: the connection must go. */
	CHECK_STR(exchange("503 no\r\n354 go\r\n", 1), "");
	CHECK(pipeline_abandon());

	/* Another command after the held MAIL. */
	pipeline_reset();
	pipeline_offered(true);
	transaction("", NULL);
	CHECK(!pipeline_next_write_ok("QUIT\r\n", 6));
	size_t hl;
	pipeline_held(&hl);
	pipeline_held_sent(hl);
	CHECK(!pipeline_sent("RCPT TO:<b@x>\r\nQUIT\r\n", 21));
	CHECK(pipeline_abandon());

	/* A reply to nothing sent. */
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\n");
	CHECK_STR(exchange("550 no\r\n503 a\r\n250 extra\r\n", 4),
	    "250 2.1.0 Ok\r\n550 no\r\n");
	CHECK(pipeline_abandon());

	/* A MAIL that went as it was is not pipelined. */
	pipeline_reset();
	pipeline_offered(true);
	transaction("", "RCPT TO:<b@x>\r\nDATA\r\n");
	CHECK(pipeline_mail_held());
	pipeline_offered(false);
	CHECK_INT(pipeline_mail_start("MAIL FROM:<a>\r\n", 15), -1);
	CHECK(!pipeline_mail_held());
}

int
main(void)
{
	test_off();
	for (size_t step = 1; step <= 64; step *= 4) {
		test_accepted(step);
		test_refused(step);
	}
	test_refused_early();
	test_closed();
	test_odd();
	pipeline_reset();
	return unit_done("test_pipeline");
}
