/*
 * NAME
 *	gate - the header rules and submitter limits of the configuration,
 *	checked
 * SYNOPSIS
 *	#include "lib/gate.h"
 * DESCRIPTION
 *	header_rule "NAME" { match = ERE action = ... only_lane = ...
 *	only_user = ... } and submitter_limit "USER" { messages = "200/h"
 *	recipients = "1000/d" action = "hold" | "tempfail" }, as config.c
 *	reads them: header_rule_build() and submitter_limit_build() turn a
 *	section's strings into the struct, or return -1 with the reason in
 *	err (without file:line, which the caller adds). What the rules do
 *	to a submission is sendmail's (sendmail/headercheck.c,
 *	sendmail/limits.c).
 *
 *	A header rule's expression is compiled when the configuration is
 *	read, since a bad one must stop every program with file:line; a
 *	configuration without header rules compiles nothing.
 */
#ifndef MXLANE_GATE_H
#define MXLANE_GATE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

enum header_action {
	HEADER_IGNORE,		/* the header is removed */
	HEADER_WARN,		/* logged with the queue id */
	HEADER_HOLD,		/* the message is queued on hold */
	HEADER_REJECT,		/* the submission is refused */
	HEADER_LANE,		/* the message goes on lane arg */
};

struct header_rule {
	char *name;
	char *match;			/* the ERE as written */
	regex_t re;			/* compiled: REG_EXTENDED | REG_ICASE */
	bool compiled;
	enum header_action action;
	/* REJECT: "5.7.1 text" (status always there); LANE: its name. */
	char *arg;
	char *action_text;		/* as written, for display */
	char *only_lane;		/* NULL: any lane */
	char *only_user;		/* NULL: any submitting user */
	char *file;
	int line;
};

/* One header_rule section as written ("" or NULL: not given). */
struct header_rule_text {
	const char *name, *file;
	int line;
	const char *match, *action, *only_lane, *only_user;
};
int header_rule_build(struct header_rule *r, const struct header_rule_text *t,
    char *err, size_t errlen);
void header_rule_free(struct header_rule *r);
/* "ignore", "warn", "hold", "reject [X.Y.Z] TEXT", "lane NAME". */
int header_rule_parse_action(const char *text, struct header_rule *r);

enum limit_action {
	LIMIT_HOLD = 0,			/* queued but held (the default) */
	LIMIT_TEMPFAIL,			/* refused: exit 75, 451 4.7.1 */
};

/* 0 in a count: no limit of that kind. */
struct submitter_limit {
	char *user;			/* a login name, or "*" */
	long messages;			/* messages per messages_period s */
	int messages_period;
	long recipients;		/* recipients per recipients_period s */
	int recipients_period;
	enum limit_action action;
	char *file;
	int line;
};

struct submitter_limit_text {
	const char *user, *file;
	int line;
	const char *messages, *recipients, *action;
};
int submitter_limit_build(struct submitter_limit *l,
    const struct submitter_limit_text *t, char *err, size_t errlen);
void submitter_limit_free(struct submitter_limit *l);


/*
 * The limit for a submitting user: their own section, else "*" -
 * except for root (uid 0), limited only by a section named "root".
 * NULL: not limited. limits is cfg->submitter_limits.
 */
const struct submitter_limit *submitter_limit_for(
    const struct submitter_limit *limits, size_t n, const char *user,
    unsigned uid);
/* Where the window of a limit with this period began (UTC-aligned). */
long long submitter_window(long long now, int period);
/* "hour", "day", "minute", "second": for the log and queuerun limits. */
const char *submitter_period_name(int period);

#endif
