/*
 * NAME
 *	smtpd - "sendmail -bs": an SMTP conversation on stdin/stdout
 * DESCRIPTION
 *	smtpd_run() speaks RFC 5321 server side over two stdio streams:
 *	220 greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY
 *	(252), HELP; EHLO advertises PIPELINING, 8BITMIME, SIZE <limit> and
 *	DSN. It parses MAIL FROM parameters SIZE=, BODY=7BIT|8BITMIME,
 *	RET=FULL|HDRS, ENVID= (xtext-decoded) and RCPT TO parameters
 *	NOTIFY=NEVER|SUCCESS,FAILURE,DELAY and ORCPT= (xtext-decoded). DATA
 *	is read with dot-unstuffing, CRLF or bare LF line ends, up to the
 *	lone dot; a message over the size limit is read to the end and then
 *	refused with 552. Each complete message is handed to
 *	hooks->message(); its return decides the reply to the final dot,
 *	which is sent only after the hook returned, i.e. after the message
 *	is durably spooled. Replies are flushed when no further input is
 *	buffered, so pipelined clients get them in batches.
 *
 *	The conversation ends on QUIT (221), EOF, or after 100 protocol
 *	errors (421). Command lines longer than 2048 bytes get 500.
 */
#ifndef MXLANE_SMTPD_H
#define MXLANE_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct smtpd_rcpt {
	char *address;		/* as given inside <>, not yet qualified */
	char *orcpt;		/* decoded ORCPT value ("rfc822;x@y") or NULL */
	uint32_t notify;	/* SPOOL_NOTIFY_* bits, 0 = not given */
};

struct smtpd_envelope {
	char *sender;		/* "" for <> */
	int ret;		/* enum spool_ret */
	int body;		/* enum spool_body */
	char *envid;		/* decoded, or NULL */
	struct smtpd_rcpt *rcpts;
	size_t nrcpt;
	char *helo;		/* name given in HELO/EHLO */
};

struct smtpd_hooks {
	/*
	 * Checks one RCPT TO address; returns 0 to accept, or fills reply
	 * ("553 5.1.3 Bad recipient address syntax") and returns -1.
	 */
	int (*check_rcpt)(void *ctx, const char *address, char *reply,
	    size_t replylen);
	/* Same for MAIL FROM ("" is the null sender). */
	int (*check_sender)(void *ctx, const char *address, char *reply,
	    size_t replylen);
	/*
	 * Queues one message (data: unstuffed, LF or CRLF line ends as
	 * received). Returns 0 with reply "250 2.0.0 Ok: queued as ID",
	 * or -1 with a 4xx/5xx reply in reply.
	 */
	int (*message)(void *ctx, const struct smtpd_envelope *env,
	    const char *data, size_t len, char *reply, size_t replylen);
	void *ctx;
	const char *hostname;		/* for the greeting and EHLO */
	long long size_limit;		/* 0 = none */
};

/* Returns 0 after QUIT or EOF, EX_IOERR if output failed. */
int smtpd_run(FILE *in, FILE *out, const struct smtpd_hooks *hooks);

#endif
