/*
 * NAME
 *	replyrules - the reply sections of the configuration, checked
 * SYNOPSIS
 *	#include "lib/replyrules.h"
 * DESCRIPTION
 *	Turns one reply "NAME" { ... } section, as written, into a struct
 *	reply_rule (replyrules.h), refusing what cannot be right: an
 *	unknown class, a regular expression that does not compile, a glob
 *	with characters a reply code never has, an action or an "after"
 *	that does not parse. config.c reads the sections and puts them in
 *	the order they are tried; route/replies.c matches.
 *
 *	Kept in lib/ because every program reads the whole configuration
 *	(sendmail too, which never classifies anything), and lib/ links
 *	nothing above it.
 */
#include "lib/replyrules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/units.h"
#include "lib/util.h"

const char *const replies_classes[] = {
	"bad-mailbox", "bad-domain", "inactive-mailbox", "quota",
	"spam-block", "spam-content", "policy", "auth", "rate-limit",
	"transient", "protocol", "routing", "unknown", NULL,
};

bool
replies_class_valid(const char *name)
{
	for (size_t i = 0; name && replies_classes[i]; i++)
		if (strcmp(replies_classes[i], name) == 0)
			return true;
	return false;
}

/* A glob over a reply code or status: digits, dots and glob characters. */
static bool
glob_ok(const char *g, const char *extra)
{
	if (*g == '\0' || strlen(g) > 40)
		return false;
	for (; *g; g++)
		if (!(*g >= '0' && *g <= '9') && strchr("*?[]-!", *g) == NULL &&
		    strchr(extra, *g) == NULL)
			return false;
	return true;
}

static const char *
skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The next blank-separated word of *p, copied into w. */
static bool
next_word(const char **p, char *w, size_t len)
{
	const char *s = skip_blank(*p);
	size_t n = strcspn(s, " \t");

	if (n == 0 || n >= len)
		return false;
	memcpy(w, s, n);
	w[n] = '\0';
	*p = s + n;
	return true;
}

int
reply_rule_parse_action(const char *text, struct reply_rule *r)
{
	const char *p = text;
	char verb[32], a[32], b[32], c[32];

	r->action = REPLY_ACTION_NONE;
	if (!next_word(&p, verb, sizeof(verb)) ||
	    !next_word(&p, a, sizeof(a)))
		return -1;
	if (strcmp(verb, "suspend") == 0 ||
	    strcmp(verb, "defer-provider") == 0) {
		r->action_seconds = config_parse_time(a);
		if (r->action_seconds <= 0 || *skip_blank(p) != '\0')
			return -1;
		r->action = verb[0] == 's' ? REPLY_ACTION_SUSPEND :
		    REPLY_ACTION_DEFER_PROVIDER;
		return 0;
	}
	if (strcmp(verb, "throttle") == 0) {
		if (!config_parse_rate(a, &r->rate_count, &r->rate_period) ||
		    !next_word(&p, b, sizeof(b)) || strcmp(b, "for") != 0 ||
		    !next_word(&p, c, sizeof(c)) || *skip_blank(p) != '\0')
			return -1;
		r->action_seconds = config_parse_time(c);
		if (r->action_seconds <= 0)
			return -1;
		r->action = REPLY_ACTION_THROTTLE;
		return 0;
	}
	return -1;
}

int
reply_rule_parse_after(const char *text, struct reply_rule *r)
{
	const char *p = text;
	char n[32], in[32], w[32];
	char *end;

	if (!next_word(&p, n, sizeof(n)) || !next_word(&p, in, sizeof(in)) ||
	    strcmp(in, "in") != 0 || !next_word(&p, w, sizeof(w)) ||
	    *skip_blank(p) != '\0')
		return -1;
	long v = strtol(n, &end, 10);
	if (*end != '\0' || v < 1 || v > 1000000)
		return -1;
	r->after_count = (unsigned)v;
	r->after_window = config_parse_time(w);
	return r->after_window > 0 ? 0 : -1;
}

static char *
dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

int
reply_rule_build(struct reply_rule *r, const struct reply_rule_text *t,
    char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(t->name);
	r->file = xstrdup(t->file ? t->file : "");
	r->line = t->line;
	r->shipped = t->shipped;
	r->provider = dup_or_null(t->provider);
	if (r->provider)
		str_lower(r->provider);
	r->code = dup_or_null(t->code);
	r->status = dup_or_null(t->status);
	r->text = dup_or_null(t->text);
	r->class = dup_or_null(t->class);
	r->action_text = dup_or_null(t->action);
	r->after_text = dup_or_null(t->after);
	if (*t->name == '\0' || strlen(t->name) > 64) {
		snprintf(err, errlen, "reply \"%s\": a rule name is 1 to 64 "
		    "characters", t->name);
		return -1;
	}
	if (r->class == NULL) {
		snprintf(err, errlen, "reply %s: class is missing (one of "
		    "bad-mailbox, bad-domain, inactive-mailbox, quota, "
		    "spam-block, spam-content, policy, auth, rate-limit, "
		    "transient, protocol, routing, unknown)", t->name);
		return -1;
	}
	if (!replies_class_valid(r->class)) {
		snprintf(err, errlen, "reply %s: class \"%s\" is not one of "
		    "bad-mailbox, bad-domain, inactive-mailbox, quota, "
		    "spam-block, spam-content, policy, auth, rate-limit, "
		    "transient, protocol, routing, unknown", t->name, r->class);
		return -1;
	}
	if (r->code && !glob_ok(r->code, "")) {
		snprintf(err, errlen, "reply %s: code \"%s\": expected a glob "
		    "over the three digits, like \"550\" or \"4*\"", t->name,
		    r->code);
		return -1;
	}
	if (r->status && !glob_ok(r->status, ".")) {
		snprintf(err, errlen, "reply %s: status \"%s\": expected a "
		    "glob over an enhanced status code, like \"5.1.*\"",
		    t->name, r->status);
		return -1;
	}
	if (r->action_text && reply_rule_parse_action(r->action_text, r) != 0) {
		snprintf(err, errlen, "reply %s: action \"%s\": expected "
		    "\"suspend DURATION\", \"throttle RATE for DURATION\" or "
		    "\"defer-provider DURATION\" (RATE like 100/h, DURATION "
		    "like 1h)", t->name, r->action_text);
		return -1;
	}
	if (r->after_text && r->action == REPLY_ACTION_NONE) {
		snprintf(err, errlen, "reply %s: after \"%s\" without an "
		    "action", t->name, r->after_text);
		return -1;
	}
	if (r->after_text && reply_rule_parse_after(r->after_text, r) != 0) {
		snprintf(err, errlen, "reply %s: after \"%s\": expected "
		    "\"N in DURATION\", like \"3 in 10m\"", t->name,
		    r->after_text);
		return -1;
	}
	return 0;
}

int
reply_rule_compile(struct reply_rule *r, char *err, size_t errlen)
{
	if (r->text == NULL || r->compiled)
		return 0;
	int rc = regcomp(&r->re, r->text, REG_EXTENDED | REG_ICASE |
	    REG_NOSUB);
	if (rc != 0) {
		char why[200];
		regerror(rc, &r->re, why, sizeof(why));
		snprintf(err, errlen, "reply %s: text \"%s\": not a regular "
		    "expression: %s", r->name, r->text, why);
		return -1;
	}
	r->compiled = true;
	return 0;
}

void
reply_rule_free(struct reply_rule *r)
{
	if (r->compiled)
		regfree(&r->re);
	free(r->name);
	free(r->file);
	free(r->provider);
	free(r->code);
	free(r->status);
	free(r->text);
	free(r->class);
	free(r->action_text);
	free(r->after_text);
	memset(r, 0, sizeof(*r));
}
