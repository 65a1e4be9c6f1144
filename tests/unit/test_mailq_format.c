/*
 * NAME
 *	test_mailq_format - the mailq listing, byte for byte
 * DESCRIPTION
 *	Expected output is spelled out literally (not computed) so that a
 *	change to the layout that monitoring parses cannot slip through.
 *	The columns are Postfix 3.x postqueue -p with short queue ids.
 *
 *	This test defines its own spool_scan(), which replays fixtures (and
 *	an empty spool_scan_maildrop()), so
 *	it needs neither a spool on disk nor spool.c: the linker takes
 *	spool_scan from here and never pulls spool.o out of libspool.a.
 *	TZ is forced to UTC so arrival times print the same everywhere.
 */
#include <stdlib.h>
#include <sysexits.h>
#include <time.h>

#include "sendmail/mailq.h"
#include "tests/unit/unit.h"

#define SP10	"          "
#define INDENT	SP10 SP10 SP10 SP10 " "		/* 41 blanks */
#define HEADER	"-Queue ID-  --Size-- ----Arrival Time---- " \
		"-Sender/Recipient-------\n"

#define T_NOV25	1795612562	/* Wed Nov 25 13:16:02 2026 UTC */
#define T_DEC1	1796112000	/* Tue Dec  1 08:00:00 2026 UTC */

#define REFUSED	"connect to mx.example.com[192.0.2.1]:25: Connection refused"
#define GREYLISTED "host mx.example.com[192.0.2.1] said: 450 4.7.1 " \
		"<bob@example.com>: Recipient address rejected: greylisted " \
		"(in reply to RCPT TO command)"

struct fixture {
	struct spool_msg msg;
	const struct spool_rcpt *rcpts;
	size_t nrcpt;
};

static const struct fixture *scan_fixtures;
static size_t scan_count;
static bool scan_fails;

int
spool_scan(struct spool *sp, spool_scan_fn fn, void *ctx)
{
	(void)sp;
	for (size_t i = 0; i < scan_count; i++) {
		const struct fixture *f = &scan_fixtures[i];

		if (fn(ctx, &f->msg, f->rcpts, f->nrcpt) != 0)
			return SPOOL_OK;
	}
	return scan_fails ? SPOOL_ERR : SPOOL_OK;
}

/* The maildrop is empty here: everything is in the queue's fixtures. */
int
spool_scan_maildrop(struct spool *sp, spool_scan_fn fn, void *ctx)
{
	(void)sp;
	(void)fn;
	(void)ctx;
	return SPOOL_OK;
}

/* Runs mailq_print over fixtures; returns the output (caller frees). */
static char *
run(const struct fixture *f, size_t n, uid_t viewer, bool see_all, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	scan_fixtures = f;
	scan_count = n;
	*rc = mailq_print(NULL, out, viewer, see_all);
	fclose(out);
	return text;
}

static const struct spool_rcpt rcpts_alice[] = {
	{ .index = 0, .address = "bob@example.com", .state = RCPT_QUEUED,
	  .attempts = 2, .last_response = REFUSED },
	{ .index = 1, .address = "carol@example.com", .state = RCPT_QUEUED },
	{ .index = 2, .address = "done@example.com", .state = RCPT_SENT,
	  .attempts = 1, .last_response = "250 2.0.0 ok" },
	{ .index = 3, .address = "dave@example.com", .state = RCPT_QUEUED,
	  .attempts = 2, .last_response = REFUSED },
};

static const struct spool_rcpt rcpts_bounce[] = {
	{ .index = 0, .address = "alice@example.org", .state = RCPT_QUEUED,
	  .attempts = 0, .last_response = "ignored: no attempt yet" },
};

static const struct spool_rcpt rcpts_active[] = {
	{ .index = 0, .address = "erin@example.net", .state = RCPT_ACTIVE },
	{ .index = 1, .address = "frank@example.net", .state = RCPT_SENT },
};

static const struct spool_rcpt rcpts_done[] = {
	{ .index = 0, .address = "gone@example.com", .state = RCPT_SENT },
	{ .index = 1, .address = "lost@example.com", .state = RCPT_BOUNCED },
};

static const struct fixture queue[] = {
	{ { .id = "1A2B3C4D5E6F7", .sender = "alice@example.org",
	    .arrival = T_NOV25, .uid = 33, .size = 4242 },
	  rcpts_alice, 4 },
	{ { .id = "1A2B3C4D5E6F8", .sender = "", .arrival = T_DEC1,
	    .uid = 33, .size = 1100, .flags = SPOOL_MSG_HELD },
	  rcpts_bounce, 1 },
	{ { .id = "1A2B3C4D5E6F9", .sender = "mallory@example.net",
	    .arrival = T_DEC1, .uid = 1000, .size = 3000,
	    .flags = SPOOL_MSG_HELD },
	  rcpts_active, 2 },
	{ { .id = "1A2B3C4D5E6FA", .sender = "alice@example.org",
	    .arrival = T_DEC1, .uid = 33, .size = 99999 },
	  rcpts_done, 2 },
};

/*
 * Postfix prints "%-11s %7ld": an id with '*' or '!' appended is one
 * column wider than a bare one, so the size moves right by one.
 */
#define ALICE \
	"1A2B3C4D5E6F7    4242 Wed Nov 25 13:16:02  alice@example.org\n" \
	SP10 "       (" REFUSED ")\n" \
	INDENT "bob@example.com\n" \
	INDENT "dave@example.com\n" \
	SP10 SP10 SP10 SP10 SP10 "        (reason unavailable)\n" \
	INDENT "carol@example.com\n"
#define BOUNCE \
	"1A2B3C4D5E6F8!    1100 Tue Dec  1 08:00:00  MAILER-DAEMON\n" \
	INDENT "alice@example.org\n"
#define ACTIVE \
	"1A2B3C4D5E6F9*    3000 Tue Dec  1 08:00:00  mallory@example.net\n" \
	INDENT "erin@example.net\n"

static void
test_empty(void)
{
	int rc;
	char *text = run(NULL, 0, 33, false, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, "Mail queue is empty\n");
	free(text);
}

/* Another user's messages and finished ones count as absent. */
static void
test_nothing_visible(void)
{
	int rc;
	char *text = run(&queue[2], 2, 33, false, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, "Mail queue is empty\n");
	free(text);
}

static void
test_own_messages(void)
{
	int rc;
	char *text = run(queue, 4, 33, false, &rc);

	CHECK_INT(rc, 0);
	/* (4242 + 1100) / 1024 rounds down to 5. */
	CHECK_STR(text, HEADER ALICE "\n" BOUNCE
	    "\n-- 5 Kbytes in 2 Requests.\n");
	free(text);
}

static void
test_see_all(void)
{
	int rc;
	char *text = run(queue, 4, 0, true, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, HEADER ALICE "\n" BOUNCE "\n" ACTIVE
	    "\n-- 8 Kbytes in 3 Requests.\n");
	free(text);
}

static void
test_one_request(void)
{
	int rc;
	char *text = run(&queue[2], 1, 1000, false, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, HEADER ACTIVE "\n-- 2 Kbytes in 1 Request.\n");
	free(text);
}

/* Postfix never truncates: a long reason just loses its padding. */
static void
test_long_reason(void)
{
	static const struct spool_rcpt rcpts[] = {
		{ .address = "bob@example.com", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = GREYLISTED },
		{ .address = "b\033[2Jb@example.com\nX", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = "451 4.3.0 try\rlater" },
	};
	static const struct fixture f[] = {
		{ { .id = "00000000000AB", .sender = "a@b", .arrival = T_NOV25,
		    .uid = 5, .size = 100000000 },
		  rcpts, 2 },
	};
	int rc;
	char *text = run(f, 1, 5, false, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, HEADER
	    "00000000000AB 100000000 Wed Nov 25 13:16:02  a@b\n"
	    "(" GREYLISTED ")\n"
	    INDENT "bob@example.com\n"
	    SP10 SP10 SP10 SP10 SP10 "       (451 4.3.0 try?later)\n"
	    INDENT "b?[2Jb@example.com?X\n"
	    "\n-- 97656 Kbytes in 1 Request.\n");
	free(text);
}

/*
 * The reply class follows the reason inside its parentheses, the pair
 * still ending in column 78; recipients with the same reason but
 * another class get a reason line of their own.
 */
static void
test_class(void)
{
	static const struct spool_rcpt rcpts[] = {
		{ .address = "a@example.com", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = "452 4.2.2 full",
		  .class = "quota" },
		{ .address = "b@example.com", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = "452 4.2.2 full",
		  .class = "quota" },
		{ .address = "c@example.com", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = "452 4.2.2 full",
		  .class = "transient" },
		{ .address = "d@example.com", .state = RCPT_QUEUED,
		  .attempts = 1, .last_response = "452 4.2.2 full" },
	};
	static const struct fixture f[] = {
		{ { .id = "00000000000AC", .sender = "a@b", .arrival = T_NOV25,
		    .uid = 5, .size = 1024 },
		  rcpts, 4 },
	};
	int rc;
	char *text = run(f, 1, 5, false, &rc);

	CHECK_INT(rc, 0);
	CHECK_STR(text, HEADER
	    "00000000000AC    1024 Wed Nov 25 13:16:02  a@b\n"
	    SP10 SP10 SP10 SP10 "         (452 4.2.2 full; class=quota)\n"
	    INDENT "a@example.com\n"
	    INDENT "b@example.com\n"
	    SP10 SP10 SP10 SP10 "     (452 4.2.2 full; class=transient)\n"
	    INDENT "c@example.com\n"
	    SP10 SP10 SP10 SP10 SP10 SP10 "  (452 4.2.2 full)\n"
	    INDENT "d@example.com\n"
	    "\n-- 1 Kbytes in 1 Request.\n");
	free(text);
}

/* A partial listing must not end in a trailer that looks complete. */
static void
test_scan_error(void)
{
	int rc;
	char *text;

	scan_fails = true;
	text = run(queue, 1, 33, false, &rc);
	scan_fails = false;
	CHECK_INT(rc, EX_TEMPFAIL);
	CHECK(text != NULL && strstr(text, "Request") == NULL);
	CHECK(text != NULL && strstr(text, "empty") == NULL);
	free(text);
}

/* mailq | head: stop walking once the reader is gone. */
static void
test_write_error(void)
{
	FILE *out = fopen("/dev/full", "w");

	if (out == NULL)
		return;
	scan_fixtures = queue;
	scan_count = 4;
	CHECK_INT(mailq_print(NULL, out, 0, true), EX_IOERR);
	fclose(out);
}

/*
 * mailq --json, byte for byte: hostile text (quotes, backslashes,
 * control characters, bytes that are not UTF-8, an overlong form, a
 * surrogate) comes out as a valid JSON string; only pending recipients;
 * a route callback's names; a viewer sees their own messages only.
 */
static const struct spool_rcpt rcpts_hostile[] = {
	{ .index = 0, .address = "\"q\\\"\"@example.com", .state = RCPT_QUEUED,
	  .attempts = 1, .next_try = 1800000000, .class = "transient",
	  .last_source = "203.0.113.44",
	  .last_response = "451 \x01tab\there\x7f \xff\xc0\xaf\xed\xa0\x80 "
	      "\xc3\xbc ok" },
	{ .index = 1, .address = "sent@example.com", .state = RCPT_SENT },
	{ .index = 2, .address = "new@example.com", .state = RCPT_QUEUED,
	  .next_try = 1700000000 },
};

static void
route_names(void *ctx, const struct spool_msg *msg, const struct spool_rcpt *r,
    const char **provider, const char **pool)
{
	(void)ctx;
	(void)msg;
	*provider = r->index == 0 ? "aol" : NULL;
	*pool = r->index == 0 ? "aol-a" : NULL;
}

static void
test_json(void)
{
	struct fixture f[] = {
		{ { .id = "1A2B3C4D5E6F7", .sender = "", .lane = "bulk",
		    .arrival = T_NOV25, .uid = 33, .size = 4242,
		    .flags = SPOOL_MSG_HELD },
		  rcpts_hostile, 3 },
		{ { .id = "1A2B3C4D5E6F8", .sender = "x@example.org",
		    .lane = "default", .arrival = T_DEC1, .uid = 34,
		    .size = 10, .move_source = "203.0.113.45" },
		  rcpts_hostile + 2, 1 },
	};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int rc;

	scan_fixtures = f;
	scan_count = 2;
	rc = mailq_print_json(NULL, out, 33, false, route_names, NULL);
	fclose(out);
	CHECK_INT(rc, 0);
	CHECK_STR(text,
	    "{\"queue_id\":\"1A2B3C4D5E6F7\",\"queue_name\":\"hold\","
	    "\"arrival_time\":1795612562,\"message_size\":4242,"
	    "\"sender\":\"\",\"lane\":\"bulk\",\"recipients\":["
	    "{\"address\":\"\\\"q\\\\\\\"\\\"@example.com\","
	    "\"provider\":\"aol\",\"pool\":\"aol-a\","
	    "\"source\":\"203.0.113.44\","
	    "\"delay_reason\":\"451 \\u0001tab\\u0009here\\u007f "
	    "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd \xc3\xbc ok\","
	    "\"class\":\"transient\",\"next_try\":1800000000},"
	    "{\"address\":\"new@example.com\",\"provider\":null,"
	    "\"pool\":null,\"source\":null,\"delay_reason\":null,"
	    "\"class\":null,\"next_try\":1700000000}]}\n");
	free(text);

	/* The moved message's source; every message for an admin. */
	text = NULL;
	out = open_memstream(&text, &len);
	rc = mailq_print_json(NULL, out, 0, true, NULL, NULL);
	fclose(out);
	CHECK_INT(rc, 0);
	const char *second = text ? strchr(text, '\n') : NULL;
	CHECK_STR(second ? second + 1 : "",
	    "{\"queue_id\":\"1A2B3C4D5E6F8\",\"queue_name\":\"incoming\","
	    "\"arrival_time\":1796112000,\"message_size\":10,"
	    "\"sender\":\"x@example.org\",\"lane\":\"default\","
	    "\"recipients\":[{\"address\":\"new@example.com\","
	    "\"provider\":null,\"pool\":null,"
	    "\"source\":\"203.0.113.45\",\"delay_reason\":null,"
	    "\"class\":null,\"next_try\":1700000000}]}\n");
	free(text);

	/* A recipient in delivery makes it active, even when held. */
	struct buf b = BUF_INIT;
	mailq_json_message(&b, &queue[2].msg, queue[2].rcpts, queue[2].nrcpt,
	    false, NULL, NULL);
	buf_putc(&b, '\0');
	CHECK(strstr(b.data, "\"queue_name\":\"active\"") != NULL);
	CHECK(strstr(b.data, "frank@") == NULL);	/* sent: not listed */
	buf_free(&b);
	mailq_json_message(&b, &f[1].msg, f[1].rcpts, f[1].nrcpt, true, NULL,
	    NULL);
	buf_putc(&b, '\0');
	CHECK(strstr(b.data, "\"queue_name\":\"incoming\"") != NULL);
	buf_free(&b);
}

int
main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	CHECK_INT(strlen(INDENT), 41);
	test_empty();
	test_nothing_visible();
	test_own_messages();
	test_see_all();
	test_one_request();
	test_long_reason();
	test_class();
	test_scan_error();
	test_write_error();
	test_json();
	return unit_done("mailq_format");
}
