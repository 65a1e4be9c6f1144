/*
 * NAME
 *	headercheck - the header rules, applied to a submission
 * SYNOPSIS
 *	#include "sendmail/headercheck.h"
 * DESCRIPTION
 *	headercheck_apply() tries the configuration's header_rule sections
 *	(lib/gate.h), in the order written, on every live header of the
 *	message, each as one line "Name: value" with its folding line
 *	breaks taken out (the white space after them kept), as Postfix's
 *	header_checks do. Unlike header_checks, every rule that applies
 *	(only_lane, only_user) and matches acts, in order, so that a rule
 *	logging every Subject does not hide one rejecting some; only
 *	ignore and reject end the header's turn:
 *
 *	    ignore   the header is deleted from the message
 *	    warn     logged, with the queue id, once the message is queued
 *	    hold     the message is queued on hold (logged likewise)
 *	    reject   nothing is queued: the verdict carries the reply text
 *	    lane     the message goes on that lane (a later lane rule's
 *	             lane replaces an earlier one's)
 *
 *	It runs in sendmail after the caller's ids are gone (sendmail(8),
 *	INSTALL section 3), so the submitting user can neither skip it nor
 *	change what it decided: the file it writes into the maildrop,
 *	hold flag and lane included, is the mail system's.
 */
#ifndef MXLANE_HEADERCHECK_H
#define MXLANE_HEADERCHECK_H

#include <stdbool.h>

#include "lib/config.h"
#include "sendmail/message.h"

struct header_verdict {
	const char *reject;	/* "5.7.1 text": refuse, or NULL */
	const char *lane;	/* a lane rule's lane, or NULL */
	bool hold;
	char **logs;		/* "warning: header ..." / "hold: header ..." */
	size_t nlogs;
};

/*
 * lane: the lane the lane rules chose. from: the envelope sender, for
 * the log. Returns the verdict (free with headercheck_free). Logs a
 * rejection itself (there is no queue id to wait for).
 */
void headercheck_apply(const struct mxl_config *cfg, const char *user,
    const char *lane, const char *from, struct message *m,
    struct header_verdict *v);
/* Logs the warn and hold lines under the message's queue id. */
void headercheck_log(const struct header_verdict *v, const char *queue_id);
void headercheck_free(struct header_verdict *v);

#endif
