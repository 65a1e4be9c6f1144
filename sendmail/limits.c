/*
 * NAME
 *	limits - the submitter limits, counted at submission
 * DESCRIPTION
 *	See limits.h. Windows are fixed and aligned to UTC: "200/h" is at
 *	most 200 messages from hh:00:00 to hh:59:59, "1000/d" per UTC day.
 *	The count file's lock is held only while the record is read and
 *	written, never while the message is: a user's submissions wait
 *	for each other for a moment, nobody else's ever do.
 */
#include "sendmail/limits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/gate.h"
#include "lib/log.h"
#include "spool/submitcount.h"

/* How long a submission waits for the same user's others. */
#define LOCK_WAIT_MS	5000

static const struct submitter_limit *
limit_of(const struct submitter *who)
{
	const struct mxl_config *cfg = who->cfg;

	if (cfg->nsubmitter_limits == 0)
		return NULL;
	return submitter_limit_for(cfg->submitter_limits,
	    cfg->nsubmitter_limits, who->user, (unsigned)who->uid);
}

static void
log_over(const struct submitter *who, const struct submitter_limit *l,
    const char *what, long count, int period, long long window)
{
	char until[32];
	time_t end = (time_t)(window + period);
	struct tm tm;

	gmtime_r(&end, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	log_warn("user %s (uid %u) is over its limit of %ld %s per %s "
	    "(submitter_limit %s): its mail is %s until %s", who->user,
	    (unsigned)who->uid, count, what, submitter_period_name(period),
	    l->user, l->action == LIMIT_HOLD ? "held" : "refused (451 4.7.1)",
	    until);
}

enum limits_verdict
limits_take(const struct submitter *who, size_t nrcpt,
    struct limits_ticket *t, char *err, size_t errlen)
{
	const struct submitter_limit *l = limit_of(who);
	struct submit_count c;

	memset(t, 0, sizeof(*t));
	if (l == NULL)
		return LIMITS_PASS;
	int fd = submitcount_lock(who->spool_dirfd, (uint32_t)who->uid,
	    LOCK_WAIT_MS);
	if (fd < 0) {
		snprintf(err, errlen, "cannot count %s's submissions in "
		    "%s/%s: %s; message not queued, try again later",
		    who->user, who->cfg->spool_directory, SUBMITCOUNT_DIR,
		    strerror(errno));
		log_error("%s", err);
		return LIMITS_REFUSE;
	}
	submitcount_read(fd, (uint32_t)who->uid, &c);
	snprintf(c.user, sizeof(c.user), "%s", who->user);
	long long now = time(NULL);
	long long mw = submitter_window(now, l->messages_period);
	long long rw = submitter_window(now, l->recipients_period);
	if (l->messages && c.msg_window != mw) {
		c.msg_window = mw;
		c.msgs = 0;
	}
	if (l->recipients && c.rcpt_window != rw) {
		c.rcpt_window = rw;
		c.rcpts = 0;
	}
	bool over_m = l->messages && c.msgs + 1 > (uint64_t)l->messages;
	bool over_r = l->recipients && c.rcpts + nrcpt >
	    (uint64_t)l->recipients;
	if (over_m && c.msg_logged != mw) {
		log_over(who, l, "messages", l->messages, l->messages_period,
		    mw);
		c.msg_logged = mw;
	}
	if (over_r && c.rcpt_logged != rw) {
		log_over(who, l, "recipients", l->recipients,
		    l->recipients_period, rw);
		c.rcpt_logged = rw;
	}
	enum limits_verdict v = LIMITS_PASS;
	if ((over_m || over_r) && l->action == LIMIT_TEMPFAIL) {
		snprintf(err, errlen, "%s is over its limit of %ld %s per %s; "
		    "message not queued, try again later", who->user,
		    over_m ? l->messages : l->recipients, over_m ? "messages" :
		    "recipients", submitter_period_name(over_m ?
		    l->messages_period : l->recipients_period));
		v = LIMITS_REFUSE;
	} else {
		if (l->messages)
			c.msgs++;
		if (l->recipients)
			c.rcpts += nrcpt;
		t->counted = true;
		t->msg_window = mw;
		t->rcpt_window = rw;
		t->nrcpt = nrcpt;
		if (over_m || over_r) {
			snprintf(t->why, sizeof(t->why), "over its limit of "
			    "%ld %s per %s", over_m ? l->messages :
			    l->recipients, over_m ? "messages" : "recipients",
			    submitter_period_name(over_m ? l->messages_period :
			    l->recipients_period));
			v = LIMITS_HOLD;
		}
	}
	if (submitcount_write(fd, &c) != 0 && v != LIMITS_REFUSE) {
		/* Not counted is not limited: refuse rather than let go. */
		snprintf(err, errlen, "cannot count %s's submissions: %s; "
		    "message not queued, try again later", who->user,
		    strerror(errno));
		log_error("%s", err);
		t->counted = false;
		v = LIMITS_REFUSE;
	}
	submitcount_unlock(fd);
	return v;
}

void
limits_give_back(const struct submitter *who, const struct limits_ticket *t)
{
	struct submit_count c;

	if (!t->counted)
		return;
	int fd = submitcount_lock(who->spool_dirfd, (uint32_t)who->uid,
	    LOCK_WAIT_MS);
	if (fd < 0)
		return;		/* counted once too often: errs on the safe side */
	submitcount_read(fd, (uint32_t)who->uid, &c);
	if (c.msg_window == t->msg_window && c.msgs > 0)
		c.msgs--;
	if (c.rcpt_window == t->rcpt_window)
		c.rcpts = c.rcpts > t->nrcpt ? c.rcpts - t->nrcpt : 0;
	(void)submitcount_write(fd, &c);
	submitcount_unlock(fd);
}

void
limits_log(const struct submitter *who, const struct limits_ticket *t,
    const char *queue_id)
{
	if (t->why[0] == '\0')
		return;
	log_set_component("cleanup");
	log_info("%s: hold: user %s (uid %u) %s", queue_id, who->user,
	    (unsigned)who->uid, t->why);
	log_set_component(NULL);
}
