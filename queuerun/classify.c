/*
 * NAME
 *	classify - "queuerun classify REPLY": which class, by which rule
 * DESCRIPTION
 *	Runs the delivery path's own classification (route/replies.h,
 *	replies_classify_line) on a reply text given on the command line,
 *	so that what it prints is what a delivery would log: the class,
 *	the rule with its file and line, the code and enhanced status read
 *	from the text, and the rule's action, if any.
 */
#include "queuerun/classify.h"

#include <stdio.h>
#include <sysexits.h>

#include "route/replies.h"

static void
print_action(const struct reply_rule *r, FILE *out)
{
	if (r->action == REPLY_ACTION_NONE) {
		fprintf(out, "action: none\n");
		return;
	}
	fprintf(out, "action: %s", r->action_text ? r->action_text : "?");
	if (r->after_count > 0)
		fprintf(out, " (after %s)", r->after_text);
	fprintf(out, "\n");
}

int
classify_replies(const struct mxl_config *cfg, const char *provider,
    char **replies, int n, FILE *out)
{
	for (int i = 0; i < n; i++) {
		char code[4], status[16];
		const struct reply_rule *r = replies_classify_line(cfg,
		    provider, replies[i], NULL);
		replies_split(replies[i], code, status);
		if (n > 1)
			fprintf(out, "%sreply: %s\n", i ? "\n" : "",
			    replies[i]);
		fprintf(out, "class: %s\n", r->class);
		if (r->line > 0)
			fprintf(out, "rule: %s (%s:%d)\n", r->name, r->file,
			    r->line);
		else
			fprintf(out, "rule: %s (%s)\n", r->name, r->file);
		fprintf(out, "code: %s\nstatus: %s\n", code[0] ? code : "none",
		    status[0] ? status : "none");
		print_action(r, out);
	}
	return fflush(out) == 0 ? 0 : EX_IOERR;
}
