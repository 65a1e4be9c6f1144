/*
 * NAME
 *	fuzz_smtpd - libFuzzer harness for "sendmail -bs", smtpd_run()
 * SYNOPSIS
 *	build-fuzz/tests/fuzz/fuzz_smtpd [libFuzzer options] [corpus ...]
 * DESCRIPTION
 *	Each input is everything a client writes in one session, pipelined
 *	as far as the server can tell: it is read through fmemopen(3) and
 *	the replies are collected with open_memstream(3). The session runs
 *	twice, without a size limit and with a 512-byte one, so that both
 *	delivery and the oversize path see the same dialogue.
 *
 *	The hooks decide as sendmail/main.c's do, but store nothing: a
 *	sender or recipient is accepted when address_envelope_parse()
 *	takes it, a message when message_parse() does. Some of their
 *	replies are deliberately sloppy, because smtpd.h promises to
 *	repair those: an address or HELO name that starts with a digit
 *	makes the hook answer a refusal with a 2xx text, an acceptance
 *	with a 5xx text, or a reply with a CRLF and a second line in it;
 *	one that starts with '!' fills the reply buffer without a NUL.
 *	Each such text contains "fuzz sloppy", which no client can make
 *	the server echo (it has a blank), so it must never reach the
 *	output.
 *
 *	Besides memory errors and undefined behaviour it checks:
 *	-	the output is SMTP replies only: lines of a three-digit code
 *		and ' ', '-' or nothing, each ending in CRLF, with no other
 *		CR, LF or NUL, starting with the 220 greeting;
 *	-	a message handed to the hook has 1 to 1000 recipients, none
 *		empty, is NUL-terminated, and fits the size limit;
 *	-	smtpd_run() returns 0 (in-memory streams neither fail
 *		to read nor to write).
 *
 *	With FUZZ_SHOW set in the environment, the replies of each
 *	session go to standard error, to read what a finding did.
 * SEE ALSO
 *	sendmail/smtpd.h, sendmail/main.c, tests/fuzz/README
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail/address.h"
#include "sendmail/message.h"
#include "sendmail/smtpd.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

#define SLOPPY		"fuzz sloppy"

struct session {
	long long limit;
	size_t messages;
};

/* A hook reply that smtpd_run() must not pass on as it is. */
static bool
sloppy_reply(const char *trigger, bool refusing, char *reply, size_t len)
{
	if (trigger[0] == '!') {
		memset(reply, refusing ? '5' : '2', len);
		return true;
	}
	if (trigger[0] < '0' || trigger[0] > '9')
		return false;
	switch (trigger[0] % 3) {
	case 0:
		snprintf(reply, len, refusing ? "250 2.0.0 " SLOPPY :
		    "554 5.0.0 " SLOPPY);
		break;
	case 1:
		snprintf(reply, len, refusing ? "553 5.1.3 no\r\n250 " SLOPPY :
		    "250 ok\r\n554 " SLOPPY);
		break;
	default:
		snprintf(reply, len, refusing ? "5" SLOPPY : "2" SLOPPY);
		break;
	}
	return true;
}

static int
check_address(const char *address, bool is_sender, char *reply,
    size_t len)
{
	char *out = NULL, err[256];

	if (address_envelope_parse(address, is_sender, &out, err,
	    sizeof(err)) == 0) {
		free(out);
		return 0;
	}
	if (!sloppy_reply(address, true, reply, len))
		snprintf(reply, len, is_sender ?
		    "553 5.1.7 Bad sender address syntax" :
		    "553 5.1.3 Bad recipient address syntax");
	return -1;
}

static int
check_sender(void *ctx, const char *address, char *reply, size_t len)
{
	(void)ctx;
	return check_address(address, true, reply, len);
}

static int
check_rcpt(void *ctx, const char *address, char *reply, size_t len)
{
	(void)ctx;
	return check_address(address, false, reply, len);
}

static int
take_message(void *ctx, const struct smtpd_envelope *env, const char *data,
    size_t len, char *reply, size_t replylen)
{
	struct session *s = ctx;
	struct message m;
	char err[256];
	size_t i;
	int rc;

	FUZZ_ASSERT(env->sender != NULL && env->helo != NULL,
	    "envelope has sender and HELO name");
	FUZZ_ASSERT(env->nrcpt >= 1 && env->nrcpt <= 1000,
	    "1 to 1000 recipients");
	for (i = 0; i < env->nrcpt; i++)
		FUZZ_ASSERT(env->rcpts[i].address != NULL &&
		    env->rcpts[i].address[0] != '\0', "recipient not empty");
	FUZZ_ASSERT(data[len] == '\0', "data is NUL-terminated");
	if (s->limit > 0)
		FUZZ_ASSERT(len <= (size_t)s->limit, "data within the limit");
	s->messages++;

	rc = message_parse(data, len, s->limit, &m, err, sizeof(err));
	message_free(&m);
	if (sloppy_reply(env->helo, rc != 0, reply, replylen))
		return rc == 0 ? 0 : -1;
	if (rc != 0) {
		snprintf(reply, replylen, "554 5.6.0 message refused");
		return -1;
	}
	snprintf(reply, replylen, "250 2.0.0 Ok: queued as FUZZ%zu",
	    s->messages);
	return 0;
}

/* Replies only: "ddd", "ddd text" or "ddd-text", each ending in CRLF. */
static void
check_output(const char *out, size_t len)
{
	const char *p = out, *end = out + len, *eol;

	FUZZ_ASSERT(len >= 4 && memcmp(out, "220 ", 4) == 0,
	    "session starts with the greeting");
	FUZZ_ASSERT(memchr(out, '\0', len) == NULL, "no NUL in replies");
	FUZZ_ASSERT(memmem(out, len, SLOPPY, strlen(SLOPPY)) == NULL,
	    "sloppy hook reply was repaired");
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		FUZZ_ASSERT(eol != NULL, "reply ends in a line end");
		FUZZ_ASSERT(eol - p >= 4 && eol[-1] == '\r',
		    "reply line ends in CRLF");
		FUZZ_ASSERT(memchr(p, '\r', (size_t)(eol - 1 - p)) == NULL,
		    "no CR inside a reply line");
		FUZZ_ASSERT(p[0] >= '2' && p[0] <= '5' &&
		    p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9',
		    "reply starts with a code");
		FUZZ_ASSERT(p[3] == ' ' || p[3] == '-' || p + 3 == eol - 1,
		    "code is followed by ' ', '-' or the line end");
		p = eol + 1;
	}
}

static void
session(const uint8_t *data, size_t size, long long limit)
{
	struct session s = { limit, 0 };
	struct smtpd_hooks hooks = {
		.check_rcpt = check_rcpt,
		.check_sender = check_sender,
		.message = take_message,
		.ctx = &s,
		.hostname = "mx.example",
		.size_limit = limit,
	};
	FILE *in, *out;
	char *text = NULL;
	size_t textlen = 0;
	int rc;

	if ((in = fmemopen((void *)data, size, "r")) == NULL ||
	    (out = open_memstream(&text, &textlen)) == NULL)
		abort();
	rc = smtpd_run(in, out, &hooks);
	fclose(in);
	fclose(out);
	/* To read a finding: the replies, as the client would see them. */
	if (getenv("FUZZ_SHOW") != NULL)
		fprintf(stderr, "--- size limit %lld\n%.*s", limit, (int)textlen,
		    text);
	FUZZ_ASSERT(rc == 0, "smtpd_run() returns 0 on memory streams");
	check_output(text, textlen);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* fmemopen() of zero bytes is EINVAL; EOF at once is dull anyway. */
	if (size == 0)
		return 0;
	session(data, size, 0);
	session(data, size, 512);
	return 0;
}
