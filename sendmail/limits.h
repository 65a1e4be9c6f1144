/*
 * NAME
 *	limits - the submitter limits, counted at submission
 * SYNOPSIS
 *	#include "sendmail/limits.h"
 * DESCRIPTION
 *	limits_take() counts one message of nrcpt recipients against the
 *	submitting user's submitter_limit (lib/gate.h), in the count file
 *	of the caller's real uid (spool/submitcount.h), before the message
 *	is written:
 *
 *	    LIMITS_PASS     within the limits (counted)
 *	    LIMITS_HOLD     over a limit whose action is hold: counted,
 *	                    and the message is to be queued on hold
 *	    LIMITS_REFUSE   over a limit whose action is tempfail, or the
 *	                    count could not be kept: not counted, nothing
 *	                    is to be queued; err says why
 *
 *	Going over a limit is logged once per window (the first message
 *	over it); each held message is logged with its queue id by
 *	limits_log(). A message counted and then not queued (the maildrop
 *	failed) is given back with limits_give_back(). A user without a
 *	limit costs nothing: no file is opened.
 */
#ifndef MXLANE_LIMITS_H
#define MXLANE_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#include "sendmail/submit.h"

enum limits_verdict { LIMITS_PASS, LIMITS_HOLD, LIMITS_REFUSE };

struct limits_ticket {
	bool counted;
	long long msg_window, rcpt_window;
	size_t nrcpt;
	char why[200];		/* LIMITS_HOLD: what was exceeded */
};

enum limits_verdict limits_take(const struct submitter *who, size_t nrcpt,
    struct limits_ticket *t, char *err, size_t errlen);
void limits_give_back(const struct submitter *who,
    const struct limits_ticket *t);
void limits_log(const struct submitter *who, const struct limits_ticket *t,
    const char *queue_id);

#endif
