/*
 * NAME
 *	bounce - RFC 3464 delivery status notifications
 * DESCRIPTION
 *	bounce_build() writes a complete message (headers and body, CRLF
 *	line ends, ready for spool_submit()) reporting on some recipients
 *	of one queued message: a multipart/report; report-type=
 *	delivery-status with
 *	  1. a human-readable text/plain part in the spirit of Postfix's
 *	     ("This is the mail system at host ... I'm sorry to have to
 *	     inform you that your message could not be delivered ..."),
 *	     listing each recipient with the reason;
 *	  2. a message/delivery-status part: per-message fields
 *	     (Reporting-MTA: dns; HOST, X-Mxlane-Queue-ID, Original-Envelope-Id
 *	     when given, Arrival-Date) and, per recipient, Final-Recipient:
 *	     rfc822; ADDR, Original-Recipient when ORCPT was given, Action
 *	     (failed, delayed, delivered, relayed, expanded), Status (X.Y.Z),
 *	     Remote-MTA: dns; HOST when known, Diagnostic-Code: smtp; REPLY
 *	     when there was a reply, Last-Attempt-Date, and Will-Retry-Until
 *	     for delayed;
 *	  3. the original message: text/rfc822-headers with only its
 *	     header section when ret is SPOOL_RET_HDRS, otherwise
 *	     message/rfc822 with the whole content (8bit; long lines left
 *	     for the sender to deal with, as Postfix does).
 *	The message is From: MAILER-DAEMON@HOST (Mail Delivery System),
 *	To: the original envelope sender, Subject: "Undelivered Mail
 *	Returned to Sender" (failed), "Delayed Mail (still being retried)"
 *	(delayed), or "Successful Mail Delivery Report" (delivered/relayed),
 *	with Auto-Submitted: auto-replied, a Date:, a Message-ID:
 *	<DATE.QUEUEID@HOST> and a MIME boundary that cannot occur in the
 *	content it wraps.
 *
 *	Folded or non-ASCII text in diagnostics is kept to one line and to
 *	ASCII so the report stays valid.
 */
#ifndef MXLANE_BOUNCE_H
#define MXLANE_BOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spool/util.h"

enum bounce_kind { BOUNCE_FAILED, BOUNCE_DELAYED, BOUNCE_SUCCESS };

struct bounce_rcpt {
	const char *address;		/* Final-Recipient */
	const char *orcpt;		/* "rfc822;x@y" or NULL */
	const char *action;		/* "failed", "delayed", "relayed"... */
	const char *status;		/* "5.1.1" */
	const char *remote_mta;		/* host name, or NULL */
	const char *diagnostic;		/* SMTP reply "550 5.1.1 ...", or NULL */
	const char *reason;		/* human text when no SMTP reply */
	time_t last_attempt;		/* 0 = unknown */
};

struct bounce_info {
	enum bounce_kind kind;
	const char *reporting_mta;	/* myhostname */
	const char *queue_id;		/* of the original message */
	const char *envid;		/* Original-Envelope-Id or NULL */
	const char *original_sender;	/* goes in To: */
	time_t arrival;
	time_t retry_until;		/* for BOUNCE_DELAYED */
	int ret;			/* enum spool_ret of the original */
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	/*
	 * Streams the original content (CRLF); returns 0 when all of it was
	 * handed to fn, non-zero on error. fn returns non-zero to stop.
	 */
	int (*read_original)(void *ctx, int (*fn)(void *fnctx,
	    const char *data, size_t len), void *fnctx);
	void *read_ctx;
	size_t max_original;		/* bytes of original to include, 0 = all */
};

/* Returns 0, or -1 when the original could not be read. */
int bounce_build(const struct bounce_info *info, time_t now,
    struct buf *out);

/* "5.1.1" from a reply "550 5.1.1 ..." or a default from the code. */
void bounce_status_from_reply(const char *reply, char out[16]);

#endif
