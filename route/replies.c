/*
 * NAME
 *	replies - match a reply against the configured reply rules
 * DESCRIPTION
 *	STAND-IN (i9-shaping), replaced by i9-replies' classifier at merge.
 *	See replies.h. The rules are parsed by lib/config.c.
 */
#include "route/replies.h"

#include <fnmatch.h>
#include <regex.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const struct reply_rule unknown_rule = {
	.name = "unknown", .class = "unknown",
};

static bool
key_matches(const char *pattern, const char *value)
{
	return pattern == NULL || *pattern == '\0' || (value != NULL &&
	    fnmatch(pattern, value, 0) == 0);
}

static bool
text_matches(const char *ere, const char *text)
{
	regex_t re;

	if (ere == NULL || *ere == '\0')
		return true;
	if (text == NULL ||
	    regcomp(&re, ere, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)
		return false;
	bool hit = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return hit;
}

const struct reply_rule *
replies_classify(const struct mxl_config *cfg, const char *provider,
    const char *code, const char *status, const char *text)
{
	for (size_t i = 0; cfg && i < cfg->nreply_rules; i++) {
		const struct reply_rule *r = &cfg->reply_rules[i];
		if (r->provider && *r->provider && (provider == NULL ||
		    strcasecmp(r->provider, provider) != 0))
			continue;
		if (key_matches(r->code, code) && key_matches(r->status,
		    status) && text_matches(r->text, text))
			return r;
	}
	return &unknown_rule;
}
