/*
 * NAME
 *	replies - what a reply (or a local failure) means: its class
 * DESCRIPTION
 *	See replies.h. Matching is a walk down the rules in order: a few
 *	dozen string compares and at most one regexec per rule that got
 *	past its code and status, for each reply that is not a success.
 */
#include "route/replies.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const struct reply_rule builtin_unknown = {
	.name = "unknown", .class = "unknown", .file = "built-in",
};

static bool
rule_matches(const struct reply_rule *r, const char *provider,
    const char *code, const char *status, const char *text)
{
	if (r->provider && (provider == NULL ||
	    strcasecmp(r->provider, provider) != 0))
		return false;
	if (r->code && fnmatch(r->code, code, 0) != 0)
		return false;
	if (r->status && fnmatch(r->status, status, 0) != 0)
		return false;
	if (r->text && (!r->compiled ||
	    regexec(&r->re, text, 0, NULL, 0) != 0))
		return false;
	return true;
}

const struct reply_rule *
replies_classify(const struct mxl_config *cfg, const char *provider,
    const char *code, const char *status, const char *text)
{
	if (code == NULL)
		code = "";
	if (status == NULL)
		status = "";
	if (text == NULL)
		text = "";
	if (provider && *provider == '\0')
		provider = NULL;
	for (size_t i = 0; cfg && i < cfg->nreply_rules; i++)
		if (rule_matches(&cfg->reply_rules[i], provider, code, status,
		    text))
			return &cfg->reply_rules[i];
	return &builtin_unknown;
}

/* An RFC 3463 code "C.S.D" at s (C 2, 4 or 5): its length, else 0. */
static size_t
status_len(const char *s)
{
	const char *p = s;
	size_t n;

	if (*p != '2' && *p != '4' && *p != '5')
		return 0;
	p++;
	for (int part = 0; part < 2; part++) {
		if (*p++ != '.')
			return 0;
		for (n = 0; isdigit((unsigned char)p[n]) && n < 3; n++)
			;
		if (n == 0)
			return 0;
		p += n;
	}
	if (isalnum((unsigned char)*p) || (*p == '.' &&
	    isdigit((unsigned char)p[1])))
		return 0;
	return (size_t)(p - s);
}

/* A reply "NNN[ -]..." at s? */
static bool
reply_at(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && isdigit((unsigned char)s[1]) &&
	    isdigit((unsigned char)s[2]) && (s[3] == ' ' || s[3] == '-' ||
	    s[3] == '\0');
}

void
replies_split(const char *reply, char code[4], char status[16])
{
	const char *p = reply;

	code[0] = status[0] = '\0';
	if (reply == NULL)
		return;
	if (!reply_at(p)) {
		/* "host X said: 451 ...", "... refused to talk to me: 554 ..." */
		const char *q = strstr(reply, ": ");
		while (q && !reply_at(q + 2))
			q = strstr(q + 2, ": ");
		if (q == NULL)
			return;
		p = q + 2;
	}
	memcpy(code, p, 3);
	code[3] = '\0';
	if (p[3] == '\0')
		return;
	p += 4;
	size_t n = status_len(p);
	if (n > 0 && n < 16 && p[0] == code[0]) {
		memcpy(status, p, n);
		status[n] = '\0';
	}
}

const struct reply_rule *
replies_classify_line(const struct mxl_config *cfg, const char *provider,
    const char *reply, const char *local_status)
{
	char code[4], status[16];

	replies_split(reply, code, status);
	if (status[0] == '\0' && local_status)
		snprintf(status, sizeof(status), "%s", local_status);
	return replies_classify(cfg, provider, code, status, reply);
}

int
replies_compile(struct mxl_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nreply_rules; i++) {
		struct reply_rule *r = &cfg->reply_rules[i];
		char why[512];
		if (reply_rule_compile(r, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", r->file, r->line,
			    why);
			return -1;
		}
	}
	return 0;
}
