/*
 * NAME
 *	limits - queuerun limits: the users over their submitter limits
 * DESCRIPTION
 *	See limits.h. A user is over a limit in a window when sendmail
 *	logged going over it in that window (the record's *_logged field),
 *	so a user who sent exactly the limit is not listed, and one whose
 *	window has ended is listed no more.
 */
#include "queuerun/limits.h"

#include <fcntl.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lib/gate.h"
#include "lib/escape.h"
#include "lib/log.h"
#include "spool/submitcount.h"

struct over_ctx {
	const struct mxl_config *cfg;
	int64_t now;
	void (*fn)(void *ctx, const struct limit_excess *e);
	void *ctx;
};

static int
one_user(void *vctx, const struct submit_count *c)
{
	struct over_ctx *o = vctx;
	const struct submitter_limit *l = submitter_limit_for(
	    o->cfg->submitter_limits, o->cfg->nsubmitter_limits, c->user,
	    c->uid);

	if (l == NULL)
		return 0;
	int64_t mw = submitter_window(o->now, l->messages_period);
	int64_t rw = submitter_window(o->now, l->recipients_period);
	const char *action = l->action == LIMIT_HOLD ? "hold" : "tempfail";
	if (l->messages && c->msg_window == mw && c->msg_logged == mw) {
		struct limit_excess e = {c->user, c->uid, "messages", c->msgs,
		    l->messages, l->messages_period, mw + l->messages_period,
		    action, l->user};
		o->fn(o->ctx, &e);
	}
	if (l->recipients && c->rcpt_window == rw && c->rcpt_logged == rw) {
		struct limit_excess e = {c->user, c->uid, "recipients",
		    c->rcpts, l->recipients, l->recipients_period,
		    rw + l->recipients_period, action, l->user};
		o->fn(o->ctx, &e);
	}
	return 0;
}

int
limits_over(const struct mxl_config *cfg, int spool_dirfd,
    void (*fn)(void *ctx, const struct limit_excess *e), void *ctx)
{
	struct over_ctx o = {cfg, (int64_t)time(NULL), fn, ctx};

	if (cfg->nsubmitter_limits == 0)
		return 0;
	return submitcount_scan(spool_dirfd, one_user, &o);
}

struct print_ctx {
	FILE *out;
	const char *indent;
	size_t n;
};

static const char *
period_unit(int period)
{
	return period == 1 ? "s" : period == 60 ? "m" : period == 3600 ? "h" :
	    "d";
}

static void
print_one(void *vctx, const struct limit_excess *e)
{
	struct print_ctx *p = vctx;
	char until[32];
	time_t end = (time_t)e->window_end;
	struct tm tm;

	gmtime_r(&end, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(p->out, "%s%s uid=%u %s=%llu limit=%ld/%s action=%s until=%s "
	    "rule=%s\n", p->indent, e->user, (unsigned)e->uid, e->what,
	    (unsigned long long)e->count, e->limit, period_unit(e->period),
	    e->action, until, e->section);
	p->n++;
}

static void
print_json_one(void *vctx, const struct limit_excess *e)
{
	struct print_ctx *p = vctx;

	fputs(p->n++ ? ",{\"user\":" : "{\"user\":", p->out);
	escape_json(p->out, e->user);
	fprintf(p->out, ",\"uid\":%u,\"what\":\"%s\",\"count\":%llu,"
	    "\"limit\":\"%ld/%s\",\"action\":\"%s\",\"until\":%lld,"
	    "\"rule\":", (unsigned)e->uid, e->what,
	    (unsigned long long)e->count, e->limit, period_unit(e->period),
	    e->action, (long long)e->window_end);
	escape_json(p->out, e->section);
	fputc('}', p->out);
}

int
limits_print(const struct mxl_config *cfg, bool json, const char *indent,
    FILE *out, size_t *n)
{
	struct print_ctx p = {out, indent, 0};
	int fd = open(cfg->spool_directory, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);

	*n = 0;
	if (fd < 0 || limits_over(cfg, fd, json ? print_json_one : print_one,
	    &p) != 0) {
		log_stderr("cannot read the submission counts in %s/%s",
		    cfg->spool_directory, SUBMITCOUNT_DIR);
		if (fd >= 0)
			close(fd);
		return EX_TEMPFAIL;
	}
	close(fd);
	*n = p.n;
	return 0;
}

int
limits_command(const struct mxl_config *cfg, int argc, char **argv,
    FILE *out)
{
	size_t n;

	(void)argv;
	if (argc != 0)
		return EX_USAGE;
	int rc = limits_print(cfg, false, "", out, &n);
	if (rc == 0 && n == 0)
		fprintf(out, "no user is over a submitter limit\n");
	return rc;
}
