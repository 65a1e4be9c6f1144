/*
 * NAME
 *	bounce - RFC 3464 delivery status notifications
 * DESCRIPTION
 *	bounce_build() writes a complete message (headers and body, CRLF
 *	line ends, ready for spool_finish()) reporting on some recipients
 *	of one queued message: a multipart/report; report-type=
 *	delivery-status with
 *	  1. a human-readable text/plain part in the spirit of Postfix's
 *	     ("This is the mail system at host ... I'm sorry to have to
 *	     inform you that your message could not be delivered ..."),
 *	     listing each recipient with the reason;
 *	  2. a message/delivery-status part: per-message fields
 *	     (Original-Envelope-Id when given, Reporting-MTA: dns; HOST,
 *	     Arrival-Date, X-Mxlane-Queue-ID, X-Mxlane-Sender) and, per
 *	     recipient, Original-Recipient when ORCPT was given, Final-
 *	     Recipient: rfc822; ADDR, Action (failed, delayed, delivered,
 *	     relayed, expanded), Status (X.Y.Z), Remote-MTA: dns; HOST when
 *	     known, Diagnostic-Code: smtp; REPLY when there was a reply (or
 *	     X-mxlane; REASON when there was only a reason),
 *	     Last-Attempt-Date, and Will-Retry-Until for delayed;
 *	  3. the original message (none when read_original is NULL): for
 *	     a failed report, text/rfc822-headers with only its header
 *	     section when ret is SPOOL_RET_HDRS, otherwise message/rfc822
 *	     with the whole content (8bit when it has 8-bit octets; long
 *	     lines left for the SMTP client to deal with). RET=FULL asks
 *	     for the content of failed reports only (RFC 3461 section 4.3),
 *	     so delay and success reports carry the headers only, as
 *	     Postfix's do. At most max_original octets, cut at a line end;
 *	     the human-readable part says when it was cut.
 *	The message is From: MAILER-DAEMON@HOST (Mail Delivery System),
 *	To: the original envelope sender, Subject: "Undelivered Mail
 *	Returned to Sender" (failed), "Delayed Mail (still being retried)"
 *	(delayed), or "Successful Mail Delivery Report" (delivered/relayed),
 *	with Auto-Submitted: auto-replied, a Date:, a Message-ID:
 *	<DATE.QUEUEID.KPID.N@HOST> (K: F, D or S for the kind; PID and N
 *	keep two reports on one message in one second apart) and a MIME
 *	boundary that cannot occur in the content it wraps.
 *
 *	Folded or non-ASCII text in diagnostics is kept to one line and to
 *	ASCII so the report stays valid.
 */
#ifndef MXLANE_BOUNCE_H
#define MXLANE_BOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/util.h"

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
	 * handed to fn, non-zero on error. fn returns non-zero to stop;
	 * what read_original returns after that is ignored. NULL: the
	 * report has no third part.
	 */
	int (*read_original)(void *ctx, int (*fn)(void *fnctx,
	    const char *data, size_t len), void *fnctx);
	void *read_ctx;
	size_t max_original;		/* bytes of original to include, 0 = all */
};

/*
 * Appends the report to out and returns 0, or returns -1 with out
 * untouched when the original could not be read or nrcpts is 0.
 */
int bounce_build(const struct bounce_info *info, time_t now,
    struct buf *out);

/*
 * Where a bounce of a bounce goes: the recipients the postmaster alias
 * stands for. lookup(ctx, name, &targets, &n) returns 0 when the
 * lower-case name is an alias (as spool_alias_lookup(); the caller of
 * lookup frees what it hands out). A target with '@' is final; a bare
 * name is looked up again, and is final as name@origin when it is no
 * alias, names an alias it was expanded from (a loop), or lies more
 * than BOUNCE_ALIAS_DEPTH levels down; "\name" is name@origin without a
 * look-up; "|command" and "/file" targets are skipped (mxlane delivers
 * nothing locally). At most BOUNCE_ALIAS_MAX names are looked up and
 * BOUNCE_ALIAS_MAX addresses kept. *out gets the addresses, each once
 * (the caller frees them and the array), *n their number.
 * Returns -1 when postmaster is no alias (nothing in *out), 1 when a
 * limit cut the expansion short, else 0.
 */
/*
 * The user a postmaster notification is queued under (uid 0, null
 * sender), so that one that bounces can be told from any other bounce:
 * it is only logged, since a notice about it would go to postmaster
 * again, and bounce again, without end.
 */
#define BOUNCE_POSTMASTER_USER	"double-bounce"
#define BOUNCE_ALIAS_DEPTH	20
#define BOUNCE_ALIAS_MAX	1000
typedef int (*bounce_alias_fn)(void *ctx, const char *name, char ***targets,
    size_t *n);
int bounce_postmaster(const char *origin, bounce_alias_fn lookup, void *ctx,
    char ***out, size_t *n);

/*
 * "5.1.1" from a reply "550 5.1.1 ..." when the class matches the code,
 * else "5.0.0", "4.0.0" or "2.0.0" from the code; "4.0.0" for NULL or
 * a reply that does not start with a 2xx, 4xx or 5xx code.
 */
void bounce_status_from_reply(const char *reply, char out[16]);

/*
 * The server's reply inside a recipient's last response, for the
 * Diagnostic-Code: REPLY from "host X said: REPLY (in reply to ...)" or
 * "host X refused to talk to me: REPLY". NULL when there is none (the
 * response is our own reason); otherwise the caller frees it.
 */
char *bounce_reply_of(const char *response);

#endif
