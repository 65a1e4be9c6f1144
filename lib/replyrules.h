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
 *	"3 in 10m". See route/replies.h for what the rules are for.
 */
#ifndef MXLANE_REPLYRULES_H
#define MXLANE_REPLYRULES_H

#include "route/replies.h"

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
 * the configuration with it. A rule whose text is not compiled matches
 * nothing.
 */
int reply_rule_compile(struct reply_rule *r, char *err, size_t errlen);
int replies_compile(struct mxl_config *cfg, char *err, size_t errlen);
void reply_rule_free(struct reply_rule *r);
int reply_rule_parse_action(const char *text, struct reply_rule *r);
int reply_rule_parse_after(const char *text, struct reply_rule *r);

#endif
