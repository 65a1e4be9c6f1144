/*
 * NAME
 *	gate - the header rules and submitter limits of the configuration,
 *	checked
 * DESCRIPTION
 *	See gate.h. Kept in lib/ beside replyrules.c for the same reason:
 *	every program reads the whole configuration, and a mistake must be
 *	reported with file:line before anything is queued.
 */
#include "lib/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/units.h"
#include "lib/util.h"

static char *
dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

static const char *
skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* An RFC 3463 status "5.X.Y" (X up to 3 digits, Y up to 3). */
static size_t
status_len(const char *p)
{
	const char *s = p;
	int digits;

	if (*p != '5' || p[1] != '.')
		return 0;
	p += 2;
	for (digits = 0; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (digits < 1 || digits > 3 || *p != '.')
		return 0;
	p++;
	for (digits = 0; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (digits < 1 || digits > 3 || (*p != '\0' && *p != ' ' &&
	    *p != '\t'))
		return 0;
	return (size_t)(p - s);
}

/* What goes after "550 " in a reply: printable ASCII only. */
static bool
reply_text_ok(const char *t)
{
	if (strlen(t) > 200)
		return false;
	for (; *t; t++)
		if ((unsigned char)*t < 32 || (unsigned char)*t > 126)
			return false;
	return true;
}

int
header_rule_parse_action(const char *text, struct header_rule *r)
{
	const char *p = skip_blank(text);
	size_t n = strcspn(p, " \t");
	const char *rest = skip_blank(p + n);

	free(r->arg);
	r->arg = NULL;
#define VERB(w) (n == strlen(w) && strncmp(p, w, n) == 0)
	if (VERB("ignore") || VERB("warn") || VERB("hold")) {
		if (*rest != '\0')
			return -1;
		r->action = VERB("ignore") ? HEADER_IGNORE : VERB("warn") ?
		    HEADER_WARN : HEADER_HOLD;
		return 0;
	}
	if (VERB("reject")) {
		size_t sl = status_len(rest);
		const char *why = skip_blank(rest + sl);
		if (!reply_text_ok(rest))
			return -1;
		/* A status that is not 5.X.Y: a temporary one is a mistake. */
		if (sl == 0 && rest[0] >= '0' && rest[0] <= '9' &&
		    rest[1] == '.')
			return -1;
		r->action = HEADER_REJECT;
		r->arg = xasprintf("%.*s %s", sl ? (int)sl : 5,
		    sl ? rest : "5.7.1", *why ? why :
		    "message content rejected");
		return 0;
	}
	if (VERB("lane")) {
		size_t ln = strcspn(rest, " \t");
		if (ln == 0 || *skip_blank(rest + ln) != '\0')
			return -1;
		r->action = HEADER_LANE;
		r->arg = xstrndup(rest, ln);
		return 0;
	}
#undef VERB
	return -1;
}

int
header_rule_build(struct header_rule *r, const struct header_rule_text *t,
    char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(t->name);
	r->file = xstrdup(t->file ? t->file : "");
	r->line = t->line;
	r->match = dup_or_null(t->match);
	r->action_text = dup_or_null(t->action);
	r->only_lane = dup_or_null(t->only_lane);
	r->only_user = dup_or_null(t->only_user);
	if (*t->name == '\0' || strlen(t->name) > 64) {
		snprintf(err, errlen, "header_rule \"%s\": a rule name is 1 "
		    "to 64 characters", t->name);
		return -1;
	}
	if (r->match == NULL) {
		snprintf(err, errlen, "header_rule %s: match is missing (a "
		    "regular expression over \"Name: value\")", t->name);
		return -1;
	}
	if (r->action_text == NULL ||
	    header_rule_parse_action(r->action_text, r) != 0) {
		snprintf(err, errlen, "header_rule %s: action \"%s\": expected "
		    "ignore, warn, hold, \"reject [5.X.Y] TEXT\" (printable "
		    "ASCII, up to 200 characters) or \"lane NAME\"", t->name,
		    r->action_text ? r->action_text : "");
		return -1;
	}
	int rc = regcomp(&r->re, r->match, REG_EXTENDED | REG_ICASE |
	    REG_NOSUB);
	if (rc != 0) {
		char why[200];
		regerror(rc, &r->re, why, sizeof(why));
		snprintf(err, errlen, "header_rule %s: match \"%s\": not a "
		    "regular expression: %s", t->name, r->match, why);
		return -1;
	}
	r->compiled = true;
	return 0;
}

void
header_rule_free(struct header_rule *r)
{
	if (r->compiled)
		regfree(&r->re);
	free(r->name);
	free(r->match);
	free(r->arg);
	free(r->action_text);
	free(r->only_lane);
	free(r->only_user);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

int
submitter_limit_build(struct submitter_limit *l,
    const struct submitter_limit_text *t, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->user = xstrdup(t->user);
	l->file = xstrdup(t->file ? t->file : "");
	l->line = t->line;
	if (*t->user == '\0' || strlen(t->user) > 64 ||
	    strpbrk(t->user, " \t/:") != NULL) {
		snprintf(err, errlen, "submitter_limit \"%s\": expected a user "
		    "name or \"*\"", t->user);
		return -1;
	}
	if (t->messages && *t->messages &&
	    !config_parse_rate(t->messages, &l->messages,
	    &l->messages_period)) {
		snprintf(err, errlen, "submitter_limit %s: messages = \"%s\": "
		    "expected N/s, N/m, N/h or N/d", t->user, t->messages);
		return -1;
	}
	if (t->recipients && *t->recipients &&
	    !config_parse_rate(t->recipients, &l->recipients,
	    &l->recipients_period)) {
		snprintf(err, errlen, "submitter_limit %s: recipients = "
		    "\"%s\": expected N/s, N/m, N/h or N/d", t->user,
		    t->recipients);
		return -1;
	}
	if (l->messages == 0 && l->recipients == 0) {
		snprintf(err, errlen, "submitter_limit %s: neither messages "
		    "nor recipients is given", t->user);
		return -1;
	}
	const char *a = t->action && *t->action ? t->action : "hold";
	if (strcmp(a, "hold") == 0) {
		l->action = LIMIT_HOLD;
	} else if (strcmp(a, "tempfail") == 0) {
		l->action = LIMIT_TEMPFAIL;
	} else {
		snprintf(err, errlen, "submitter_limit %s: action \"%s\": "
		    "expected hold or tempfail", t->user, a);
		return -1;
	}
	return 0;
}

void
submitter_limit_free(struct submitter_limit *l)
{
	free(l->user);
	free(l->file);
	memset(l, 0, sizeof(*l));
}

const struct submitter_limit *
submitter_limit_for(const struct submitter_limit *limits, size_t n,
    const char *user, unsigned uid)
{
	const struct submitter_limit *any = NULL;

	for (size_t i = 0; i < n; i++) {
		if (user && strcmp(limits[i].user, user) == 0)
			return &limits[i];
		if (strcmp(limits[i].user, "*") == 0)
			any = &limits[i];
	}
	return uid == 0 ? NULL : any;
}

long long
submitter_window(long long now, int period)
{
	return period > 0 ? now - now % period : now;
}

const char *
submitter_period_name(int period)
{
	switch (period) {
	case 1:
		return "second";
	case 60:
		return "minute";
	case 3600:
		return "hour";
	default:
		return "day";
	}
}
