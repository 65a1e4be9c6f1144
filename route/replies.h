/*
 * NAME
 *	replies - what a server's reply means (class) and what to do (action)
 * DESCRIPTION
 *	STAND-IN (i9-shaping): the real classifier, conf/replies.conf and
 *	"queuerun classify" come from i9-replies, whose version of this
 *	file replaces this one at merge. The struct, enum and prototype
 *	are the ones fixed in the issue 9 interface; this file only parses
 *	the "reply" sections' keys and matches them, enough for the
 *	shaping reactions and their tests.
 *
 *	replies_classify() returns the first rule that matches the reply
 *	(rules in configuration order); every key a rule has must match:
 *	provider (exact, any case), code (glob over the three digits),
 *	status (glob over X.Y.Z), text (POSIX ERE, case-insensitive, over
 *	the whole reply). When none matches, a built-in rule "unknown" of
 *	class "unknown" with no action.
 */
#ifndef MXLANE_REPLIES_H
#define MXLANE_REPLIES_H

#include <stddef.h>

#include "lib/config.h"

enum reply_action { REPLY_ACTION_NONE = 0, REPLY_ACTION_SUSPEND,
	REPLY_ACTION_THROTTLE, REPLY_ACTION_DEFER_PROVIDER };

struct reply_rule {
	char *name;			/* "yahoo-tss04" */
	char *class;			/* "spam-block" */
	enum reply_action action;
	long long action_seconds;	/* DURATION */
	long rate_count;		/* THROTTLE: rate_count per rate_period s */
	int rate_period;
	unsigned after_count;		/* 0 = at once */
	long long after_window;		/* seconds */
	int line;			/* file:line for messages */
	char *file;
	/* Stand-in only: the match keys as written ("" = any). */
	char *provider, *code, *status, *text;
};

/* The first rule that matches; never NULL (a built-in "unknown" rule last). */
const struct reply_rule *replies_classify(const struct mxl_config *cfg,
    const char *provider, const char *code, const char *status,
    const char *text);

#endif
