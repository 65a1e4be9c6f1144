/*
 * NAME
 *	submit - from a parsed message and envelope to a queued message
 * DESCRIPTION
 *	submit_message() is shared by "sendmail" and "sendmail -bs": it
 *	adds the -t recipients from To/Cc/Bcc (or Resent-To/Cc/Bcc when the
 *	message has Resent- headers), qualifies unqualified addresses with
 *	myorigin, expands local aliases, removes duplicates, strips Bcc:,
 *	adds Received:, and the From:, Date: and Message-ID: a message lacks,
 *	then writes it durably into the maildrop (spool/maildrop.h) and logs
 *	it the way Postfix's pickup, cleanup and qmgr do. It takes no lock
 *	another submission could wait for.
 * DIAGNOSTICS
 *	Returns 0 with the queue id, or a sysexits code with a one-line
 *	reason in err: EX_USAGE (no recipients), EX_NOUSER (a bad recipient
 *	address), EX_DATAERR (a header rule rejected it; req->reply gets
 *	"550 5.7.1 TEXT"), EX_TEMPFAIL (the maildrop could not store it;
 *	nothing was).
 *
 *	The header rules (headercheck.h) are applied here, after the lane
 *	rules chose the lane and before the file is created.
 */
#ifndef MXLANE_SUBMIT_H
#define MXLANE_SUBMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sendmail/message.h"
#include "lib/config.h"
#include "spool/maildrop.h"
#include "spool/spool.h"

struct submit_rcpt {
	const char *address;	/* bare address, maybe unqualified */
	const char *orcpt;	/* DSN ORCPT or NULL */
	uint32_t notify;	/* SPOOL_NOTIFY_* or 0 */
};

struct submitter {
	const struct mxl_config *cfg;
	int spool_dirfd;		/* the opened spool directory */
	struct aliasmap *aliases;	/* NULL: no table built */
	/*
	 * NULL: each message is durable when submit_message() returns.
	 * Else messages join this batch, durable at maildrop_sync().
	 */
	struct maildrop_batch *batch;
	uid_t uid;
	const char *user;	/* login name of uid */
	bool admin;		/* root, the mail system or its group */
	const char *fullname;	/* for a generated From:, or NULL */
};

struct submit_request {
	const char *sender;	/* qualified; "" = null sender */
	const struct submit_rcpt *rcpts;
	size_t nrcpts;
	bool extract_rcpts;	/* -t */
	uint32_t header_notify;	/* NOTIFY for -t recipients */
	int ret;		/* enum spool_ret */
	int body;		/* enum spool_body */
	const char *envid;
	const char *lane;	/* -O Lane=NAME, or NULL: the lane rules decide */
	/*
	 * Where a refusal by the site's policy puts the SMTP reply for
	 * sendmail -bs ("550 5.7.1 ..."), or NULL. Left empty otherwise.
	 */
	char *reply;
	size_t replylen;
};

/* lane_out (may be NULL) gets the lane the message was queued in. */
int submit_message(const struct submitter *who,
    const struct submit_request *req, struct message *m,
    char queue_id[SPOOL_ID_SIZE], const char **lane_out, char *err,
    size_t errlen);

/*
 * Checks and normalises one envelope address given by a client: CR/LF
 * (EX_DATAERR), syntax (EX_NOUSER for recipients, EX_DATAERR for the
 * sender). *out gets the qualified address ("" for <> when allowed).
 */
int submit_check_address(const struct mxl_config *cfg, const char *text,
    bool is_sender, char **out, char *err, size_t errlen);

#endif
