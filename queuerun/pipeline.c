/*
 * NAME
 *	pipeline - MAIL FROM in the same write as the RCPTs and DATA
 * DESCRIPTION
 *	See pipeline.h. Two streams are kept apart: the server's replies
 *	as they arrive (fed, parsed a line at a time across reads), and
 *	what libESMTP is to read (out), which is the server's replies in
 *	order with the real MAIL reply taken out and ours put in.
 */
#include "queuerun/pipeline.h"

#include <ctype.h>
#include <string.h>

#include "lib/util.h"

#define HELD_MAX 2048
/* Longer MAIL refusals are replayed as their first line only. */
#define CAPTURE_MAX 1024

static const char synthetic_ok[] = "250 2.1.0 Ok\r\n";
static const char data_refused[] =
    "503 5.5.1 No valid recipients: MAIL FROM was refused\r\n";

/* DISCARD: a reply to nothing libESMTP or we sent; it goes nowhere. */
enum fate { PASS, MAIL_REPLY, DROP, DISCARD };

static struct {
	bool offered;

	/* The transaction whose MAIL was held, until its DATA reply. */
	bool txn;
	char held[HELD_MAX];
	size_t held_len;
	size_t held_off;	/* octets of held already written */
	bool mail_sent;
	bool synth_due;		/* libESMTP waits for our 250 */
	int before;		/* real replies libESMTP reads before it */
	size_t after;		/* commands written after MAIL */
	bool data_written;	/* DATA was the last of them */
	char cmd[4];		/* start of the command line being written */
	size_t cmd_len;
	bool mail_replied;
	bool mail_refused;
	struct buf capture;	/* the real MAIL reply */
	bool capture_cut;
	size_t dropped;		/* real replies dropped after MAIL's */
	size_t generated;	/* replacements put in out */

	/* The server's stream. */
	bool mid_reply;
	enum fate fate;
	char line[4];		/* first octets of the line being read */
	size_t line_len;
	char code[3];		/* the reply's code, from its first line */
	bool first_line;

	/* What libESMTP reads. */
	struct buf out;
	size_t out_off;

	bool last_held;		/* the last MAIL FROM was held */

	const char *abandon;
} p;

void
pipeline_reset(void)
{
	buf_free(&p.capture);
	buf_free(&p.out);
	memset(&p, 0, sizeof(p));
}

void
pipeline_offered(bool offered)
{
	p.offered = offered;
}

static void
fail(const char *why)
{
	if (p.abandon == NULL)
		p.abandon = why;
}

bool
pipeline_abandon(void)
{
	return p.abandon != NULL;
}

const char *
pipeline_abandon_reason(void)
{
	return p.abandon ? p.abandon : "";
}

static bool
starts(const char *buf, size_t len, const char *word)
{
	size_t n = strlen(word);

	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (toupper((unsigned char)buf[i]) != word[i])
			return false;
	return true;
}

long
pipeline_mail_start(const char *buf, size_t len)
{
	size_t at = 0;

	for (size_t i = 0; i + 10 <= len; i++)
		if ((i == 0 || buf[i - 1] == '\n') &&
		    starts(buf + i, len - i, "MAIL FROM:"))
			p.last_held = false;
	if (!p.offered || p.txn || p.mid_reply || p.abandon ||
	    p.out_off < p.out.len)
		return -1;
	while (len - at >= 6 && starts(buf + at, len - at, "RSET\r\n"))
		at += 6;
	if (!starts(buf + at, len - at, "MAIL FROM:") ||
	    len - at > HELD_MAX || len - at < 12 || buf[len - 2] != '\r' ||
	    buf[len - 1] != '\n')
		return -1;
	/* One command only: its line end is the buffer's. */
	if (memchr(buf + at, '\n', len - at - 1) != NULL)
		return -1;
	return (long)at;
}

static void
put_out(const char *s, size_t n)
{
	if (p.out_off == p.out.len) {
		buf_reset(&p.out);
		p.out_off = 0;
	}
	buf_append(&p.out, s, n);
}

static void
give_synthetic(void)
{
	if (p.synth_due && p.before == 0) {
		p.synth_due = false;
		put_out(synthetic_ok, sizeof(synthetic_ok) - 1);
	}
}

void
pipeline_hold(const char *before, size_t before_len, const char *mail,
    size_t mail_len)
{
	memcpy(p.held, mail, mail_len);
	p.held_len = mail_len;
	p.held_off = 0;
	p.txn = true;
	p.last_held = true;
	p.mail_sent = false;
	p.synth_due = true;
	p.before = 0;
	for (size_t i = 0; i < before_len; i++)
		if (before[i] == '\n')
			p.before++;
	p.after = 0;
	p.data_written = false;
	p.cmd_len = 0;
	p.mail_replied = false;
	p.mail_refused = false;
	buf_reset(&p.capture);
	p.capture_cut = false;
	p.dropped = 0;
	p.generated = 0;
	give_synthetic();
}

const char *
pipeline_held(size_t *len)
{
	if (!p.txn || p.mail_sent) {
		*len = 0;
		return NULL;
	}
	*len = p.held_len - p.held_off;
	return p.held + p.held_off;
}

void
pipeline_held_sent(size_t n)
{
	p.held_off += n;
	if (p.held_off >= p.held_len)
		p.mail_sent = true;
}

bool
pipeline_next_write_ok(const char *buf, size_t len)
{
	return starts(buf, len, "RCPT TO:");
}

/* Replacements for the commands written after a refused MAIL. */
static void
generate(void)
{
	if (!p.mail_refused)
		return;
	for (; p.generated < p.after; p.generated++) {
		if (p.data_written && p.generated + 1 == p.after)
			put_out(data_refused, sizeof(data_refused) - 1);
		else
			put_out(p.capture.data, p.capture.len);
	}
}

bool
pipeline_sent(const char *buf, size_t len)
{
	if (!p.txn || !p.mail_sent || p.data_written)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (p.cmd_len < sizeof(p.cmd))
			p.cmd[p.cmd_len++] = (char)toupper((unsigned char)buf[i]);
		if (buf[i] != '\n')
			continue;
		bool data = p.cmd_len == 4 && memcmp(p.cmd, "DATA", 4) == 0;
		bool rcpt = p.cmd_len == 4 && memcmp(p.cmd, "RCPT", 4) == 0;
		p.cmd_len = 0;
		if (!rcpt && !data) {
			fail("a command other than RCPT or DATA followed the "
			    "pipelined MAIL FROM");
			return false;
		}
		p.after++;
		if (data) {
			p.data_written = true;
			break;	/* what follows is content or a new command */
		}
	}
	generate();
	return true;
}

/* The server's real MAIL reply is complete, in p.capture. */
static void
mail_replied(void)
{
	p.mail_replied = true;
	if (p.code[0] == '2') {
		p.txn = false;	/* the rest is libESMTP's own business */
		return;
	}
	p.mail_refused = true;
	if (p.capture_cut) {
		/* Its first line alone, as a last line. */
		char *nl = memchr(p.capture.data, '\n', p.capture.len);
		if (nl != NULL)
			p.capture.len = (size_t)(nl - p.capture.data) + 1;
		if (p.capture.len > 4)
			p.capture.data[3] = ' ';
	}
	if (p.code[0] != '4' && p.code[0] != '5') {
		/* Neither yes nor no: a temporary failure, in its words. */
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < p.capture.len; ) {
			char *nl = memchr(p.capture.data + i, '\n',
			    p.capture.len - i);
			size_t end = nl ? (size_t)(nl - p.capture.data) + 1 :
			    p.capture.len;
			size_t skip = end - i > 4 ? 4 : end - i;
			buf_printf(&b, "451%c", p.capture.data[i + 3] == '-' &&
			    end - i > 4 ? '-' : ' ');
			buf_append(&b, p.capture.data + i + skip,
			    end - i - skip);
			i = end;
		}
		buf_free(&p.capture);
		p.capture = b;
	}
	/* libESMTP parses line by line: always end on CRLF. */
	if (p.capture.len == 0 || p.capture.data[p.capture.len - 1] != '\n')
		buf_puts(&p.capture, "\r\n");
	generate();
}

static enum fate
next_fate(void)
{
	if (!p.txn || !p.mail_sent)
		return PASS;
	if (p.before > 0)
		return PASS;
	if (!p.mail_replied)
		return MAIL_REPLY;
	if (p.dropped < p.after)
		return DROP;
	fail("the server sent a reply to a command never sent");
	return DISCARD;
}

static void
reply_done(void)
{
	switch (p.fate) {
	case PASS:
		if (p.txn && p.before > 0) {
			p.before--;
			give_synthetic();
		}
		break;
	case MAIL_REPLY:
		mail_replied();
		break;
	case DROP:
		p.dropped++;
		if (p.data_written && p.dropped == p.after) {
			if (p.code[0] == '3')
				fail("the server invited the content although "
				    "MAIL FROM and so every RCPT was refused");
			p.txn = false;
		}
		break;
	case DISCARD:
		break;
	}
}

void
pipeline_feed(const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (!p.mid_reply) {
			p.mid_reply = true;
			p.fate = next_fate();
			p.first_line = true;
			p.line_len = 0;
			memset(p.line, 0, sizeof(p.line));
		}
		if (p.fate == PASS) {
			put_out(&c, 1);
		} else if (p.fate == MAIL_REPLY) {
			if (p.capture.len < CAPTURE_MAX)
				buf_putc(&p.capture, c);
			else
				p.capture_cut = true;
		}
		if (p.line_len < sizeof(p.line))
			p.line[p.line_len] = c;
		p.line_len++;
		if (c != '\n')
			continue;
		if (p.first_line)
			memcpy(p.code, p.line, sizeof(p.code));
		p.first_line = false;
		bool more = p.line_len > 4 && p.line[3] == '-';
		p.line_len = 0;
		memset(p.line, 0, sizeof(p.line));
		if (!more) {
			p.mid_reply = false;
			reply_done();
		}
	}
}

size_t
pipeline_take(char *buf, size_t len)
{
	size_t n = p.out.len - p.out_off;

	if (n > len)
		n = len;
	memcpy(buf, p.out.data + p.out_off, n);
	p.out_off += n;
	return n;
}

bool
pipeline_mail_held(void)
{
	return p.last_held;
}

const char *
pipeline_mail_reply(void)
{
	return p.last_held && p.mail_replied ? p.capture.data : NULL;
}

bool
pipeline_readable(void)
{
	return p.out_off < p.out.len;
}
