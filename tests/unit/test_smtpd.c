/*
 * NAME
 *	test_smtpd - scripted "sendmail -bs" sessions against smtpd_run()
 * DESCRIPTION
 *	Each test feeds a whole client script through fmemopen() (so every
 *	session is pipelined as far as the server can tell), captures the
 *	replies with open_memstream(), and compares them byte for byte.
 *	Fake hooks record what would have been queued, deep-copied because
 *	smtpd frees the envelope as soon as the hook returns.
 */
#include "sendmail/smtpd.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "spool/spool.h"
#include "lib/util.h"
#include "tests/unit/unit.h"

#define MAX_MSG		4
#define MAX_RCPT	3

#define GREETING	"220 mx.example ESMTP mxlane\r\n"
#define EHLO_REPLY(size) \
	"250-mx.example\r\n250-PIPELINING\r\n250-SIZE" size "\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n"
#define OK_MAIL		"250 2.1.0 Ok\r\n"
#define OK_RCPT		"250 2.1.5 Ok\r\n"
#define GO_AHEAD	"354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED		"250 2.0.0 Ok: queued as 0123456789ABC\r\n"
#define OK		"250 2.0.0 Ok\r\n"
#define BYE		"221 2.0.0 Bye\r\n"

struct got {
	char *sender;
	char *envid;
	char *helo;
	int ret;
	int body;
	size_t nrcpt;
	char *rcpt[MAX_RCPT];
	char *orcpt[MAX_RCPT];
	uint32_t notify[MAX_RCPT];
	char *data;
	size_t len;
};

struct fake {
	int nmsg;
	struct got msg[MAX_MSG];
	const char *message_reply;	/* NULL: queue it */
	int message_rc;
	const char *bad_sender;
	const char *bad_rcpt;
	const char *check_reply;
	long long size_limit;
	int timeout;		/* hooks->timeout, seconds */
	bool use_sync;		/* give smtpd a sync hook */
	int sync_rc;		/* what it returns */
	int syncs;		/* how often it was called */
	int synced_msgs[8];	/* messages accepted before each call */
};

struct result {
	char *out;
	size_t outlen;
	int rc;
};

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int
fake_check_sender(void *ctx, const char *address, char *reply,
    size_t replylen)
{
	struct fake *f = ctx;

	if (f->bad_sender == NULL || strcmp(address, f->bad_sender) != 0)
		return 0;
	snprintf(reply, replylen, "%s", f->check_reply);
	return -1;
}

static int
fake_check_rcpt(void *ctx, const char *address, char *reply,
    size_t replylen)
{
	struct fake *f = ctx;

	if (f->bad_rcpt == NULL || strcmp(address, f->bad_rcpt) != 0)
		return 0;
	snprintf(reply, replylen, "%s", f->check_reply);
	return -1;
}

static int
fake_message(void *ctx, const struct smtpd_envelope *env, const char *data,
    size_t len, char *reply, size_t replylen)
{
	struct fake *f = ctx;
	struct got *g;
	size_t i;

	if (f->message_reply != NULL) {
		snprintf(reply, replylen, "%s", f->message_reply);
		return f->message_rc;
	}
	if (f->nmsg == MAX_MSG)
		return -1;
	g = &f->msg[f->nmsg++];
	g->sender = xstrdup(env->sender);
	g->envid = dup_or_null(env->envid);
	g->helo = dup_or_null(env->helo);
	g->ret = env->ret;
	g->body = env->body;
	g->nrcpt = env->nrcpt;
	for (i = 0; i < env->nrcpt && i < MAX_RCPT; i++) {
		g->rcpt[i] = xstrdup(env->rcpts[i].address);
		g->orcpt[i] = dup_or_null(env->rcpts[i].orcpt);
		g->notify[i] = env->rcpts[i].notify;
	}
	g->data = xmalloc(len + 1);
	memcpy(g->data, data, len);
	g->data[len] = '\0';
	g->len = len;
	snprintf(reply, replylen, "250 2.0.0 Ok: queued as 0123456789ABC");
	return 0;
}

static void
fake_free(struct fake *f)
{
	int m;
	size_t i;

	for (m = 0; m < f->nmsg; m++) {
		struct got *g = &f->msg[m];

		free(g->sender);
		free(g->envid);
		free(g->helo);
		for (i = 0; i < MAX_RCPT; i++) {
			free(g->rcpt[i]);
			free(g->orcpt[i]);
		}
		free(g->data);
	}
	memset(f, 0, sizeof(*f));
}

static int
fake_sync(void *ctx)
{
	struct fake *f = ctx;

	if (f->syncs < 8)
		f->synced_msgs[f->syncs] = f->nmsg;
	f->syncs++;
	return f->sync_rc;
}

static struct result
run_streams(struct fake *f, FILE *in, FILE *out)
{
	struct smtpd_hooks h = {
		.check_rcpt = fake_check_rcpt,
		.check_sender = fake_check_sender,
		.message = fake_message,
		.ctx = f,
		.hostname = "mx.example",
		.size_limit = f->size_limit,
		.sync = f->use_sync ? fake_sync : NULL,
		.timeout = f->timeout,
	};
	struct result r = { NULL, 0, 0 };

	r.rc = smtpd_run(in, out, &h);
	return r;
}

static struct result
session(struct fake *f, const char *input, size_t len)
{
	struct result r;
	char *out = NULL;
	size_t outlen = 0;
	FILE *in = fmemopen((void *)input, len, "r");
	FILE *o = open_memstream(&out, &outlen);

	if (in == NULL || o == NULL) {
		perror("test_smtpd: stream");
		exit(2);
	}
	r = run_streams(f, in, o);
	fclose(in);
	fclose(o);
	r.out = out;
	r.outlen = outlen;
	return r;
}

/* Literal scripts may hold NUL bytes, so their length comes from sizeof. */
#define RUN(f, script)	session((f), (script), sizeof(script) - 1)

static void
test_full_session(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "EHLO client.example\r\n"
	    "MAIL FROM:<from@example.com>\r\n"
	    "RCPT TO:<to@example.com>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "body\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING EHLO_REPLY("") OK_MAIL OK_RCPT GO_AHEAD
	    QUEUED BYE);
	CHECK_INT(r.rc, 0);
	CHECK_INT(f.nmsg, 1);
	CHECK_STR(f.msg[0].sender, "from@example.com");
	CHECK_STR(f.msg[0].helo, "client.example");
	CHECK_INT(f.msg[0].nrcpt, 1);
	CHECK_STR(f.msg[0].rcpt[0], "to@example.com");
	CHECK(f.msg[0].orcpt[0] == NULL);
	CHECK_INT(f.msg[0].notify[0], 0);
	CHECK(f.msg[0].envid == NULL);
	CHECK_INT(f.msg[0].ret, SPOOL_RET_DEFAULT);
	CHECK_INT(f.msg[0].body, SPOOL_BODY_DEFAULT);
	CHECK_STR(f.msg[0].data, "Subject: hi\r\n\r\nbody\r\n");
	CHECK_INT(f.msg[0].len, 21);
	free(r.out);
	fake_free(&f);
}

static void
test_pipelined_params(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "ehlo c\r\n"
	    "MAIL FROM:<a@x> BODY=8BITMIME RET=hdrs ENVID=QQ+2B1+3d2 "
	    "SIZE=20\r\n"
	    "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bz@y\r\n"
	    "RCPT TO:<c@y> NOTIFY=never\r\n"
	    "rcpt to:<d@y> notify=delay,Success orcpt=RFC822;d@y\r\n"
	    "DATA\r\n"
	    "x\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING EHLO_REPLY("") OK_MAIL OK_RCPT OK_RCPT
	    OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 1);
	CHECK_INT(f.msg[0].body, SPOOL_BODY_8BITMIME);
	CHECK_INT(f.msg[0].ret, SPOOL_RET_HDRS);
	CHECK_STR(f.msg[0].envid, "QQ+1=2");
	CHECK_INT(f.msg[0].nrcpt, 3);
	CHECK_INT(f.msg[0].notify[0],
	    SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE);
	CHECK_STR(f.msg[0].orcpt[0], "rfc822;b+z@y");
	CHECK_INT(f.msg[0].notify[1], SPOOL_NOTIFY_NEVER);
	CHECK(f.msg[0].orcpt[1] == NULL);
	CHECK_INT(f.msg[0].notify[2],
	    SPOOL_NOTIFY_DELAY | SPOOL_NOTIFY_SUCCESS);
	CHECK_STR(f.msg[0].orcpt[2], "RFC822;d@y");
	CHECK_STR(f.msg[0].data, "x\r\n");
	free(r.out);
	fake_free(&f);
}

static void
test_two_messages(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL FROM:<one@x> RET=FULL ENVID=e1\r\n"
	    "RCPT TO:<r1@y> NOTIFY=FAILURE\r\n"
	    "RCPT TO:<r2@y>\r\n"
	    "DATA\r\n"
	    "first\r\n"
	    ".\r\n"
	    "mail from: <>\r\n"
	    "rcpt to: <r3@y>\r\n"
	    "data\r\n"
	    "second\r\n"
	    ".\r\n"
	    "quit\r\n");

	/* MAIL before HELO/EHLO is fine for a local client. */
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 2);
	CHECK_STR(f.msg[0].sender, "one@x");
	CHECK_STR(f.msg[0].helo, "");
	CHECK_INT(f.msg[0].ret, SPOOL_RET_FULL);
	CHECK_STR(f.msg[0].envid, "e1");
	CHECK_INT(f.msg[0].nrcpt, 2);
	CHECK_STR(f.msg[0].rcpt[1], "r2@y");
	CHECK_STR(f.msg[0].data, "first\r\n");
	/* Nothing of the first transaction leaks into the second. */
	CHECK_STR(f.msg[1].sender, "");
	CHECK_INT(f.msg[1].ret, SPOOL_RET_DEFAULT);
	CHECK(f.msg[1].envid == NULL);
	CHECK_INT(f.msg[1].nrcpt, 1);
	CHECK_STR(f.msg[1].rcpt[0], "r3@y");
	CHECK_INT(f.msg[1].notify[0], 0);
	CHECK_STR(f.msg[1].data, "second\r\n");
	free(r.out);
	fake_free(&f);
}

static void
test_rset_and_helo_reset(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "HELO c\r\n"
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<old@y>\r\n"
	    "RSET\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "MAIL FROM:<a2@x>\r\n"
	    "EHLO again\r\n"
	    "RCPT TO:<c@y>\r\n"
	    "MAIL FROM:<a3@x>\r\n"
	    "RCPT TO:<new@y>\r\n"
	    "DATA\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING "250 mx.example\r\n" OK_MAIL OK_RCPT OK
	    "503 5.5.1 Error: need MAIL command\r\n"
	    OK_MAIL EHLO_REPLY("")
	    "503 5.5.1 Error: need MAIL command\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 1);
	CHECK_STR(f.msg[0].sender, "a3@x");
	CHECK_STR(f.msg[0].helo, "again");
	CHECK_INT(f.msg[0].nrcpt, 1);
	CHECK_STR(f.msg[0].rcpt[0], "new@y");
	/* A message that is only the end dot is empty, not absent. */
	CHECK_INT(f.msg[0].len, 0);
	CHECK_STR(f.msg[0].data, "");
	free(r.out);
	fake_free(&f);
}

static void
test_sequence_errors(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "RCPT TO:<a@y>\r\n"
	    "DATA\r\n"
	    "MAIL FROM:<a@x>\r\n"
	    "MAIL FROM:<b@x>\r\n"
	    "DATA\r\n"
	    "DATA now\r\n"
	    "RCPT TO:<>\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: need RCPT command\r\n"
	    OK_MAIL
	    "503 5.5.1 Error: nested MAIL command\r\n"
	    "554 5.5.1 Error: no valid recipients\r\n"
	    "501 5.5.4 Syntax: DATA\r\n"
	    "501 5.1.3 Bad recipient address syntax\r\n"
	    BYE);
	CHECK_INT(f.nmsg, 0);
	free(r.out);
	fake_free(&f);
}

static void
test_mail_syntax(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL\r\n"
	    "MAIL TO:<a@x>\r\n"
	    "MAIL FROM:<a@x\r\n"
	    "MAIL FROM:<a@x>junk\r\n"
	    "MAIL FROM:\r\n"
	    "MAIL FROM:<a@x> FOO=bar\r\n"
	    "MAIL FROM:<a@x> SMTPUTF8\r\n"
	    "MAIL FROM:<a@x> SIZE=12a\r\n"
	    "MAIL FROM:<a@x> SIZE\r\n"
	    "MAIL FROM:<a@x> BODY=BINARYMIME\r\n"
	    "MAIL FROM:<a@x> RET=ALL\r\n"
	    "MAIL FROM:<a@x> RET=FULL RET=HDRS\r\n"
	    "MAIL FROM:<a@x> ENVID=a+2\r\n"
	    "MAIL FROM:<a@x> ENVID=a+ZZ\r\n"
	    "MAIL FROM:<a@x> ENVID=a+0Ab\r\n"
	    "MAIL FROM:<a@x> ENVID=a=b\r\n"
	    "MAIL FROM:<a@x> ENVID=\r\n"
	    "MAIL FROM:<a@x> ENVID=0123456789012345678901234567890123456789"
	    "012345678901234567890123456789012345678901234567890123456789X\r\n"
	    /* After all that the transaction is still closed. */
	    "RCPT TO:<b@y>\r\n"
	    "MAILFROM:<a@x>\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "555 5.5.4 Unsupported option: FOO\r\n"
	    "555 5.5.4 Unsupported option: SMTPUTF8\r\n"
	    "501 5.5.4 Bad SIZE syntax\r\n"
	    "501 5.5.4 Bad SIZE syntax\r\n"
	    "501 5.5.4 Bad BODY keyword value\r\n"
	    "501 5.5.4 Bad RET parameter syntax\r\n"
	    "501 5.5.4 Bad RET parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "501 5.5.4 Bad ENVID parameter syntax\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    BYE);
	CHECK_INT(r.rc, 0);
	free(r.out);
	fake_free(&f);
}

static void
test_rcpt_syntax(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y> NOTIFY=NEVER,SUCCESS\r\n"
	    "RCPT TO:<b@y> NOTIFY=SUCCESS,NEVER\r\n"
	    "RCPT TO:<b@y> NOTIFY=BOGUS\r\n"
	    "RCPT TO:<b@y> NOTIFY=\r\n"
	    "RCPT TO:<b@y> NOTIFY=SUCCESS,,DELAY\r\n"
	    "RCPT TO:<b@y> NOTIFY=SUCCESS,\r\n"
	    "RCPT TO:<b@y> NOTIFY=DELAY,DELAY\r\n"
	    "RCPT TO:<b@y> ORCPT=b@y\r\n"
	    "RCPT TO:<b@y> ORCPT=;b@y\r\n"
	    "RCPT TO:<b@y> ORCPT=rfc822;\r\n"
	    "RCPT TO:<b@y> ORCPT=rfc 822;b@y\r\n"
	    "RCPT TO:<b@y> ORCPT=rfc822;b+0D+0A@y\r\n"
	    "RCPT TO:<b@y> ORCPT=rfc822;a@y ORCPT=rfc822;b@y\r\n"
	    "RCPT TO:<b@y> RET=FULL\r\n"
	    "RCPT FROM:<b@y>\r\n"
	    "RCPT TO:<\"a >b\"@y>\r\n"
	    "RCPT TO:<@hop1,@hop2:routed@y>\r\n"
	    "RCPT TO:bare@y NOTIFY=NEVER\r\n"
	    "DATA\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING OK_MAIL
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "501 5.5.4 Bad ORCPT parameter syntax\r\n"
	    "555 5.5.4 Unsupported option: RET\r\n"
	    "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
	    OK_RCPT OK_RCPT OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 1);
	CHECK_INT(f.msg[0].nrcpt, 3);
	CHECK_STR(f.msg[0].rcpt[0], "\"a >b\"@y");
	CHECK_STR(f.msg[0].rcpt[1], "routed@y");
	CHECK_STR(f.msg[0].rcpt[2], "bare@y");
	CHECK_INT(f.msg[0].notify[2], SPOOL_NOTIFY_NEVER);
	free(r.out);
	fake_free(&f);
}

static void
test_size_declared(void)
{
	struct fake f = { 0 };
	struct result r;

	f.size_limit = 100;
	r = RUN(&f,
	    "EHLO c\r\n"
	    "MAIL FROM:<a@x> SIZE=101\r\n"
	    "MAIL FROM:<a@x> SIZE=99999999999999999999999999\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "MAIL FROM:<a@x> SIZE=100\r\n"
	    "QUIT\r\n");
	CHECK_STR(r.out, GREETING EHLO_REPLY(" 100")
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    OK_MAIL BYE);
	free(r.out);
	fake_free(&f);

	/* Without a limit any declared size goes. */
	r = RUN(&f, "MAIL FROM:<a@x> SIZE=99999999999999999999999\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL);
	free(r.out);
	fake_free(&f);
}

#define BYTES_50 "012345678901234567890123456789012345678901234567\r\n"

static void
test_size_data(void)
{
	struct fake f = { 0 };
	struct result r;

	f.size_limit = 100;
	r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    BYTES_50 BYTES_50 "!\r\n"
	    ".\r\n"
	    /* The transaction is gone, the session is in step. */
	    "RCPT TO:<b@y>\r\n"
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    BYTES_50 BYTES_50
	    ".\r\n"
	    "QUIT\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD
	    "552 5.3.4 Error: message file too big\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 1);
	CHECK_INT(f.msg[0].len, 100);
	CHECK_STR(f.msg[0].data, BYTES_50 BYTES_50);
	free(r.out);
	fake_free(&f);

	/*
	 * Bare-LF session, limit 10: exactly 10 bytes then the end dot
	 * fits; a stuffed ".\n" line after them does not, although until
	 * its line end it looked like the end dot.
	 */
	f.size_limit = 10;
	r = RUN(&f,
	    "MAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\n"
	    "123456789\n.\n"
	    "MAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\n"
	    "123456789\n..\n.\n"
	    "MAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\n"
	    "one line far longer than the limit without any line end");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD
	    "552 5.3.4 Error: message file too big\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD);
	CHECK_INT(f.nmsg, 1);
	CHECK_STR(f.msg[0].data, "123456789\n");
	free(r.out);
	fake_free(&f);
}

static void
test_eof(void)
{
	struct fake f = { 0 };
	struct result r;

	r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    "Subject: cut short\r\n"
	    "\r\n"
	    "no end dot");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD);
	CHECK_INT(r.rc, 0);
	CHECK_INT(f.nmsg, 0);
	free(r.out);
	fake_free(&f);

	/* A last command without its line end is not run. */
	r = RUN(&f, "NOOP\r\nMAIL FROM:<a@x>");
	CHECK_STR(r.out, GREETING OK);
	CHECK_INT(r.rc, 0);
	free(r.out);
	fake_free(&f);
}

static void
test_dot_stuffing(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    "..leading\r\n"
	    "...\r\n"
	    ".x\r\n"
	    ". \r\n"
	    "..\r\n"
	    "mid.dle.\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_STR(f.msg[0].data,
	    ".leading\r\n..\r\nx\r\n \r\n.\r\nmid.dle.\r\n");
	free(r.out);
	fake_free(&f);
}

static void
test_bare_lf(void)
{
	struct fake f = { 0 };
	struct result r;

	r = RUN(&f,
	    "HELO c\n"
	    "MAIL FROM:<a@x>\n"
	    "RCPT TO:<b@y>\n"
	    "DATA\n"
	    "line1\n"
	    "..dot\n"
	    "mixed\r\n"
	    "bare\rcr\n"
	    ".\n"
	    "MAIL FROM:<a@x>\n"
	    "RCPT TO:<b@y>\n"
	    "DATA\n"
	    "crlf end\n"
	    ".\r\n"
	    "QUIT\n");
	/* Replies are CRLF whatever the client uses. */
	CHECK_STR(r.out, GREETING "250 mx.example\r\n" OK_MAIL OK_RCPT
	    GO_AHEAD QUEUED OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 2);
	CHECK_STR(f.msg[0].data, "line1\n.dot\nmixed\r\nbare\rcr\n");
	CHECK_STR(f.msg[1].data, "crlf end\n");
	free(r.out);
	fake_free(&f);
}

/*
 * A CRLF client (Symfony) stuffs dots only after CRLF. LF "." LF in a
 * message it relays must stay content, not end DATA and run the rest
 * as commands.
 */
static void
test_no_smuggling(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    "a\r\n"
	    "\n.\n"
	    "MAIL FROM:<evil@x>\n"
	    "RCPT TO:<victim@y>\r\n"
	    "DATA\r\n"
	    "evil\r\n"
	    ".\n"
	    "\r\n"
	    "x\n.\r\n"
	    ".\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 1);
	CHECK_INT(f.msg[0].nrcpt, 1);
	/* Only "." right after CRLF is unstuffed: ".\n\r\n" became "\n\r\n". */
	CHECK_STR(f.msg[0].data,
	    "a\r\n\n.\nMAIL FROM:<evil@x>\nRCPT TO:<victim@y>\r\n"
	    "DATA\r\nevil\r\n\n\r\nx\n.\r\n");
	free(r.out);
	fake_free(&f);
}

static void
test_nul_in_data(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\n"
	    "DATA\r\n"
	    "a\0b\r\n"
	    ".\r\n");

	/* NUL is the message hook's business: it sees every byte. */
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED);
	CHECK_INT(f.msg[0].len, 5);
	CHECK(memcmp(f.msg[0].data, "a\0b\r\n", 5) == 0);
	free(r.out);
	fake_free(&f);
}

static void
test_hook_refusals(void)
{
	struct fake f = { 0 };
	struct result r;

	f.bad_sender = "bad@x";
	f.bad_rcpt = "nobody@y";
	f.check_reply = "550 5.1.1 <nobody@y>: Recipient address rejected";
	r = RUN(&f,
	    "MAIL FROM:<bad@x>\r\n"
	    "MAIL FROM:<a@x>\r\n"
	    "RCPT TO:<nobody@y>\r\n"
	    "DATA\r\n"
	    "QUIT\r\n");
	CHECK_STR(r.out, GREETING
	    "550 5.1.1 <nobody@y>: Recipient address rejected\r\n"
	    OK_MAIL
	    "550 5.1.1 <nobody@y>: Recipient address rejected\r\n"
	    "554 5.5.1 Error: no valid recipients\r\n" BYE);
	free(r.out);
	fake_free(&f);

	f.message_reply = "452 4.3.1 Insufficient system storage";
	f.message_rc = -1;
	r = RUN(&f,
	    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\n"
	    "RCPT TO:<b@y>\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD
	    "452 4.3.1 Insufficient system storage\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n");
	free(r.out);
	fake_free(&f);

	/* A sloppy hook cannot make a failure look like success. */
	f.message_reply = "250 all fine";
	f.message_rc = -1;
	r = RUN(&f, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD
	    "451 4.3.0 Error: queue file write error\r\n");
	free(r.out);
	fake_free(&f);

	/* Nor add reply lines of its own. */
	f.message_reply = "250 2.0.0 Ok\r\n250 injected";
	f.message_rc = 0;
	r = RUN(&f, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD OK);
	free(r.out);
	fake_free(&f);

	/* An empty refusal gets a generic one. */
	f.bad_rcpt = "b@y";
	f.check_reply = "";
	r = RUN(&f, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	CHECK_STR(r.out, GREETING OK_MAIL
	    "553 5.1.3 Bad recipient address syntax\r\n");
	free(r.out);
	fake_free(&f);
}

static void
test_other_commands(void)
{
	struct fake f = { 0 };
	struct result r = RUN(&f,
	    "NOOP\r\n"
	    "noop with args\r\n"
	    "VRFY root\r\n"
	    "VRFY\r\n"
	    "HELP\r\n"
	    "STARTTLS\r\n"
	    "AUTH PLAIN AGFAYg==\r\n"
	    "EXPN staff\r\n"
	    "FOO\r\n"
	    "\r\n"
	    "   \r\n"
	    "NOOP\0 hidden\r\n"
	    "NOOP\ttab\r\n"
	    "NO\rOP\r\n"
	    "EHLO\r\n"
	    "HELO\r\n"
	    "  HELO  spaced  \r\n"
	    "QUIT\r\n"
	    "NOOP\r\n");

	CHECK_STR(r.out, GREETING OK OK
	    "252 2.0.0 Send some mail, I'll try my best\r\n"
	    "501 5.5.4 Syntax: VRFY address\r\n"
	    "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT "
	    "VRFY HELP\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "503 5.5.1 Error: authentication not enabled\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "500 5.5.2 Error: bad syntax\r\n"
	    "500 5.5.2 Error: bad syntax\r\n"
	    "500 5.5.2 Error: bad syntax\r\n"
	    OK
	    "500 5.5.2 Error: bad syntax\r\n"
	    "501 Syntax: EHLO hostname\r\n"
	    "501 Syntax: HELO hostname\r\n"
	    "250 mx.example\r\n"
	    BYE);
	CHECK_INT(r.rc, 0);
	free(r.out);
	fake_free(&f);
}

static void
test_long_lines(void)
{
	struct fake f = { 0 };
	struct buf in = BUF_INIT;
	struct result r;
	size_t i;

	/* 2048 bytes is the most a command line may have... */
	buf_puts(&in, "NOOP ");
	for (i = 0; i < 2043; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\r\n");
	/* ...2049 is too long, however the line ends... */
	buf_puts(&in, "NOOP ");
	for (i = 0; i < 2044; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\n");
	/* ...and a huge one gets one reply and leaves us in step. */
	buf_puts(&in, "MAIL FROM:<");
	for (i = 0; i < 100000; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, ">\r\nQUIT\r\n");

	r = session(&f, in.data, in.len);
	CHECK_STR(r.out, GREETING OK
	    "500 5.5.0 Error: line too long\r\n"
	    "500 5.5.0 Error: line too long\r\n" BYE);
	free(r.out);
	buf_free(&in);
	fake_free(&f);
}

static void
test_error_limit(void)
{
	struct fake f = { 0 };
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct result r;
	int i;

	for (i = 0; i < 100; i++) {
		buf_puts(&in, "FOO\r\n");
		buf_puts(&want, "502 5.5.2 Error: command not recognized\r\n");
	}
	buf_puts(&in, "NOOP\r\n");
	r = session(&f, in.data, in.len);
	buf_puts(&want, "421 4.7.0 mx.example Error: too many errors\r\n");
	CHECK(strncmp(r.out, GREETING, strlen(GREETING)) == 0);
	CHECK_STR(r.out + strlen(GREETING), want.data);
	CHECK_INT(r.rc, 0);
	free(r.out);
	buf_reset(&in);
	buf_reset(&want);
	fake_free(&f);

	/* Delivering a message wipes the slate, as in Postfix. */
	for (i = 0; i < 99; i++)
		buf_puts(&in, "FOO\r\n");
	buf_puts(&in, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
	for (i = 0; i < 99; i++)
		buf_puts(&in, "FOO\r\n");
	buf_puts(&in, "NOOP\r\n");
	r = session(&f, in.data, in.len);
	CHECK_INT(f.nmsg, 1);
	CHECK(r.outlen > strlen(OK) && strcmp(r.out + r.outlen - strlen(OK),
	    OK) == 0);
	free(r.out);
	buf_free(&in);
	buf_free(&want);
	fake_free(&f);
}

static void
test_rcpt_limit(void)
{
	struct fake f = { 0 };
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct result r;
	int i;

	buf_puts(&in, "MAIL FROM:<a@x>\r\n");
	buf_puts(&want, GREETING OK_MAIL);
	for (i = 0; i < 1001; i++)
		buf_printf(&in, "RCPT TO:<r%d@y>\r\n", i);
	for (i = 0; i < 1000; i++)
		buf_puts(&want, OK_RCPT);
	buf_puts(&want, "452 4.5.3 Error: too many recipients\r\n");
	buf_puts(&in, "DATA\r\nx\r\n.\r\n");
	buf_puts(&want, GO_AHEAD QUEUED);

	r = session(&f, in.data, in.len);
	CHECK_STR(r.out, want.data);
	CHECK_INT(f.msg[0].nrcpt, 1000);
	CHECK_STR(f.msg[0].rcpt[2], "r2@y");
	free(r.out);
	buf_free(&in);
	buf_free(&want);
	fake_free(&f);
}

static void
test_io_errors(void)
{
	struct fake f = { 0 };
	struct result r;
	FILE *in, *out;

	/* The client is gone: the reply cannot be written. */
	in = fmemopen((void *)"QUIT\r\n", 6, "r");
	out = fopen("/dev/full", "w");
	if (in == NULL || out == NULL) {
		perror("test_smtpd: stream");
		exit(2);
	}
	r = run_streams(&f, in, out);
	CHECK_INT(r.rc, EX_IOERR);
	fclose(in);
	fclose(out);

	/* stdin that cannot be read is not an orderly EOF. */
	in = fopen("/dev/null", "w");
	out = fopen("/dev/null", "w");
	if (in == NULL || out == NULL) {
		perror("test_smtpd: stream");
		exit(2);
	}
	r = run_streams(&f, in, out);
	CHECK_INT(r.rc, EX_IOERR);
	fclose(in);
	fclose(out);
	fake_free(&f);
}

/*
 * A client that sends several transactions without waiting: one sync
 * makes them all durable, before any of their replies is sent.
 */
static void
test_pipelined_batch(void)
{
	struct fake f = { .use_sync = true };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\nRCPT TO:<r1@y>\r\nDATA\r\none\r\n.\r\n"
	    "MAIL FROM:<b@x>\r\nRCPT TO:<r2@y>\r\nDATA\r\ntwo\r\n.\r\n"
	    "MAIL FROM:<c@x>\r\nRCPT TO:<r3@y>\r\nDATA\r\nthree\r\n.\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED BYE);
	CHECK_INT(f.nmsg, 3);
	CHECK_INT(f.syncs, 1);
	CHECK_INT(f.synced_msgs[0], 3);
	fake_free(&f);
	free(r.out);
}

/* A client that waits for each reply gets each message synced first. */
static void
test_sync_each_waited_reply(void)
{
	struct fake f = { .use_sync = true };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\nRCPT TO:<r1@y>\r\nDATA\r\none\r\n.\r\n");

	CHECK_STR(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED);
	CHECK_INT(f.syncs, 1);
	fake_free(&f);
	free(r.out);
}

/* If the sync fails, no reply for the lost messages is ever sent. */
static void
test_sync_failure(void)
{
	struct fake f = { .use_sync = true, .sync_rc = -1 };
	struct result r = RUN(&f,
	    "MAIL FROM:<a@x>\r\nRCPT TO:<r1@y>\r\nDATA\r\none\r\n.\r\n"
	    "MAIL FROM:<b@x>\r\nRCPT TO:<r2@y>\r\nDATA\r\ntwo\r\n.\r\n"
	    "QUIT\r\n");

	CHECK_STR(r.out, GREETING "421 4.3.0 mx.example Error: queue file "
	    "write error\r\n");
	CHECK_INT(f.syncs, 1);
	CHECK_INT(r.rc, EX_IOERR);
	fake_free(&f);
	free(r.out);
}

/*
 * A client that stops talking, in the middle of DATA, on a real pipe
 * (the write end stays open, so no EOF comes): the session ends with
 * 421 4.4.2 after the time-out, and the unfinished message is not
 * handed over. The message it finished before is.
 */
static void
test_timeout(void)
{
	static const char script[] =
	    "MAIL FROM:<a@x>\r\nRCPT TO:<r1@y>\r\nDATA\r\none\r\n.\r\n"
	    "MAIL FROM:<b@x>\r\nRCPT TO:<r2@y>\r\nDATA\r\nhalf a mess";
	struct fake f = { .timeout = 1 };
	struct result r;
	char *out = NULL;
	size_t outlen = 0;
	int fds[2];
	FILE *in, *o;
	int64_t t0;

	if (pipe(fds) != 0 || write(fds[1], script, sizeof(script) - 1) !=
	    (ssize_t)(sizeof(script) - 1) ||
	    (in = fdopen(fds[0], "r")) == NULL ||
	    (o = open_memstream(&out, &outlen)) == NULL) {
		perror("test_smtpd: pipe");
		exit(2);
	}
	t0 = mono_ms();
	r = run_streams(&f, in, o);
	int64_t took = mono_ms() - t0;
	fclose(in);
	close(fds[1]);
	fclose(o);
	CHECK_INT(r.rc, EX_TEMPFAIL);
	CHECK_STR(out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD
	    "421 4.4.2 mx.example Error: timeout exceeded\r\n");
	CHECK_INT(f.nmsg, 1);
	CHECK(took >= 900 && took < 5000);
	free(out);
	fake_free(&f);
}

int
main(void)
{
	test_full_session();
	test_pipelined_batch();
	test_sync_each_waited_reply();
	test_sync_failure();
	test_pipelined_params();
	test_two_messages();
	test_rset_and_helo_reset();
	test_sequence_errors();
	test_mail_syntax();
	test_rcpt_syntax();
	test_size_declared();
	test_size_data();
	test_eof();
	test_dot_stuffing();
	test_bare_lf();
	test_no_smuggling();
	test_nul_in_data();
	test_hook_refusals();
	test_other_commands();
	test_long_lines();
	test_error_limit();
	test_rcpt_limit();
	test_io_errors();
	test_timeout();
	return unit_done("smtpd");
}
