/*
 * NAME
 *	replyrules - the reply sections of the configuration, checked
 * SYNOPSIS
 *	#include "lib/replyrules.h"
 * DESCRIPTION
 *	reply_rule_build() turns a section's strings into a rule, or
 *	returns -1 with the reason in err (without file:line, which the
 *	caller adds). reply_rule_parse_action() and _after() parse
 *	"suspend 1h", "throttle 100/h for 2h", "defer-provider 30m" and
 *	"3 in 10m". The struct is here, with the configuration that fills it;
 *	route/replies.h says what the rules are for and matches them.
 */
#ifndef MXLANE_REPLYRULES_H
#define MXLANE_REPLYRULES_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

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
	/* What it matches on (NULL: anything). */
	char *provider;
	char *code;			/* glob over "550" */
	char *status;			/* glob over "5.1.1" */
	char *text;			/* the ERE as written */
	regex_t re;			/* compiled text, when compiled */
	bool compiled;			/* see reply_rule_compile() */
	char *action_text;		/* as written, for display */
	char *after_text;
	bool shipped;			/* from replies.conf */
};

/* The classes, in the order the manual lists them; NULL-terminated. */
extern const char *const replies_classes[];
bool replies_class_valid(const char *name);


/* One section as written ("" or NULL: not given). */
struct reply_rule_text {
	const char *name, *file;
	int line;
	bool shipped;
	const char *provider, *code, *status, *text, *class, *action, *after;
};

int reply_rule_build(struct reply_rule *r, const struct reply_rule_text *t,
    char *err, size_t errlen);
/*
 * The text's regular expression is compiled apart, when rules are about
 * to be used (queuerun), not when the configuration is read: sendmail
 * reads the same file on every submission and never classifies, and 60
 * regcomp()s were half of its start-up. reply_rule_compile() reports a
 * bad expression without file:line, replies_compile() every rule of
 * the configuration with it (route/replies.h). A rule whose text is
 * not compiled matches nothing.
 */
int reply_rule_compile(struct reply_rule *r, char *err, size_t errlen);
void reply_rule_free(struct reply_rule *r);
int reply_rule_parse_action(const char *text, struct reply_rule *r);
int reply_rule_parse_after(const char *text, struct reply_rule *r);

#endif
