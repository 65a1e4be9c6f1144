/*
 * NAME
 *	headercheck - the header rules, applied to a submission
 * DESCRIPTION
 *	See headercheck.h. The log lines follow Postfix's cleanup:
 *	"QUEUEID: warning: header Subject: ... from local; from=<...>"
 *	(with the user and the rule's name added), so that what admins
 *	grep for today keeps working. The header is shown with control
 *	characters as '?' and cut at 250 characters, as Postfix cuts it.
 */
#include "sendmail/headercheck.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gate.h"
#include "lib/log.h"
#include "lib/util.h"

#define LOGGED_HEADER	250

/* "Name: value", the folding CRLFs taken out. */
static char *
header_line(const struct header *h)
{
	char *s = xmalloc(h->raw_len + 1);
	size_t n = 0;

	for (size_t i = 0; i < h->raw_len; i++)
		if (h->raw[i] != '\r' && h->raw[i] != '\n')
			s[n++] = h->raw[i];
	s[n] = '\0';
	return s;
}

/* What of a header the log may show. */
static char *
loggable(const char *line)
{
	size_t n = strlen(line);
	char *s;

	if (n > LOGGED_HEADER)
		n = LOGGED_HEADER;
	s = xstrndup(line, n);
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 32 || (unsigned char)*p == 127)
			*p = '?';
	return s;
}

static bool
applies(const struct header_rule *r, const char *user, const char *lane)
{
	if (r->only_user && (user == NULL || strcmp(r->only_user, user) != 0))
		return false;
	if (r->only_lane && (lane == NULL || strcmp(r->only_lane, lane) != 0))
		return false;
	return true;
}

static void
add_log(struct header_verdict *v, char *line)
{
	v->logs = xrealloc(v->logs, (v->nlogs + 1) * sizeof(*v->logs));
	v->logs[v->nlogs++] = line;
}

void
headercheck_apply(const struct mxl_config *cfg, const char *user,
    const char *lane, const char *from, struct message *m,
    struct header_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (cfg->nheader_rules == 0)
		return;
	for (size_t k = 0; k < m->nheaders && v->reject == NULL; k++) {
		struct header *h = &m->headers[k];
		if (h->deleted)
			continue;
		char *line = header_line(h);
		const char *now_lane = v->lane ? v->lane : lane;
		for (size_t i = 0; i < cfg->nheader_rules; i++) {
			const struct header_rule *r = &cfg->header_rules[i];
			if (!applies(r, user, now_lane) ||
			    regexec(&r->re, line, 0, NULL, 0) != 0)
				continue;
			char *shown = loggable(line);
			switch (r->action) {
			case HEADER_IGNORE:
				h->deleted = true;
				break;
			case HEADER_WARN:
			case HEADER_HOLD:
				add_log(v, xasprintf("%s: header %s from local; "
				    "from=<%s> user=%s (rule %s)",
				    r->action == HEADER_WARN ? "warning" :
				    "hold", shown, from, user ? user : "",
				    r->name));
				if (r->action == HEADER_HOLD)
					v->hold = true;
				break;
			case HEADER_REJECT:
				v->reject = r->arg;
				log_set_component("cleanup");
				log_info("NOQUEUE: reject: header %s from local; "
				    "from=<%s> user=%s: %s (rule %s)", shown,
				    from, user ? user : "", r->arg, r->name);
				log_set_component(NULL);
				break;
			case HEADER_LANE:
				v->lane = r->arg;
				break;
			}
			free(shown);
			/* Gone, or the message with it: nothing more to try. */
			if (r->action == HEADER_IGNORE || v->reject)
				break;
			now_lane = v->lane ? v->lane : lane;
		}
		free(line);
	}
}

void
headercheck_log(const struct header_verdict *v, const char *queue_id)
{
	if (v->nlogs == 0)
		return;
	log_set_component("cleanup");
	for (size_t i = 0; i < v->nlogs; i++)
		log_info("%s: %s", queue_id, v->logs[i]);
	log_set_component(NULL);
}

void
headercheck_free(struct header_verdict *v)
{
	for (size_t i = 0; i < v->nlogs; i++)
		free(v->logs[i]);
	free(v->logs);
	memset(v, 0, sizeof(*v));
}
