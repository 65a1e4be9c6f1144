/*
 * NAME
 *	smtpd - "sendmail -bs": an SMTP conversation on stdin/stdout
 * DESCRIPTION
 *	smtpd_run() speaks RFC 5321 server side over two stdio streams:
 *	220 greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY
 *	(252), HELP; EHLO advertises PIPELINING, SIZE <limit>,
 *	ENHANCEDSTATUSCODES, 8BITMIME and DSN (not SMTPUTF8, STARTTLS or
 *	AUTH: there is no UTF-8 downgrade path and no TLS or login on a
 *	pipe). It parses MAIL FROM parameters SIZE=, BODY=7BIT|8BITMIME,
 *	RET=FULL|HDRS, ENVID= (xtext-decoded) and RCPT TO parameters
 *	NOTIFY=NEVER|SUCCESS,FAILURE,DELAY and ORCPT= (xtext-decoded). DATA
 *	is read with dot-unstuffing up to the lone dot and handed over with
 *	line ends as received. When the DATA command ended in CRLF only
 *	CRLF ends a line and only CRLF "." CRLF ends the data (a bare LF is
 *	content, so LF "." LF in a relayed message cannot smuggle commands);
 *	when it ended in a bare LF, LF and CRLF both end lines. A message
 *	over the size limit is read to the end and then refused with 552.
 *	Each complete message is handed to hooks->message(); its return
 *	decides the reply to the final dot, which is sent only once the
 *	message is durably spooled (after hooks->sync() when there is one).
 *	Replies are held while the client has pipelined more input, and
 *	sent whenever the server is about to wait for input (or has held
 *	64 messages' worth), so a pipelining client never waits for a reply
 *	held back, and many pipelined messages cost one sync.
 *
 *	The conversation ends on QUIT (221), EOF, or after 100 protocol
 *	errors (421; delivering a message resets the count). Command lines
 *	longer than 2048 bytes (line end not counted) get 500, as do lines
 *	with NUL, CR or other control characters. A transaction still open
 *	at EOF, or cut short by EOF inside DATA, is discarded, never queued.
 *
 *	A client silent for hooks->timeout seconds while the server waits
 *	for it gets 421 4.4.2 and the session ends (an unfinished message
 *	is discarded). smtpd_run() does not catch SIGPIPE: the caller sets
 *	that policy for the process.
 */
#ifndef MXLANE_SMTPD_H
#define MXLANE_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct smtpd_rcpt {
	char *address;		/* inside <>, no source route, unqualified */
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
	char *helo;		/* name given in HELO/EHLO, "" if none */
};

/*
 * Replies written by hooks must be one line starting with a code of the
 * promised class (2xx for 0; 4xx/5xx for -1), without CRLF; anything
 * else is replaced with a generic reply of the right class. The check
 * hooks may be NULL (accept everything); message may not.
 */
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
	 * received, len bytes; NUL-terminated for convenience but it may
	 * hold NUL bytes, which are this hook's to refuse or keep: the
	 * same policy then covers -bs and command-line submission).
	 * Returns 0 with reply "250 2.0.0 Ok: queued as ID", or -1 with
	 * a 4xx/5xx reply in reply. env and data are freed on return.
	 */
	int (*message)(void *ctx, const struct smtpd_envelope *env,
	    const char *data, size_t len, char *reply, size_t replylen);
	/*
	 * May be NULL. When set, message() may leave its message not yet
	 * durable, and sync() makes every such message durable; it is
	 * called before any reply after them leaves. It returns 0, or -1
	 * when they could not be kept: their replies are then never sent,
	 * the client gets 421 and the session ends.
	 */
	int (*sync)(void *ctx);
	void *ctx;
	const char *hostname;		/* greeting, EHLO; NULL = "localhost" */
	long long size_limit;		/* content bytes; 0 (or less) = none */
	int timeout;			/* seconds of silence; 0 = no limit */
};

/*
 * Returns 0 after QUIT, EOF or the 421 for too many errors; EX_TEMPFAIL
 * after the 421 for a client silent for hooks->timeout; EX_IOERR if a
 * reply could not be written or in could not be read.
 */
int smtpd_run(FILE *in, FILE *out, const struct smtpd_hooks *hooks);

#endif
