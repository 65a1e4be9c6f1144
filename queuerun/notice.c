/*
 * NAME
 *	notice - which bounces and delay notices a message owes, queued
 * DESCRIPTION
 *	See notice.h. The report itself is bounce_build()'s (bounce.c);
 *	this file decides which recipients it covers and whom it goes to,
 *	and hands it to spool_finish() together with what the spool must
 *	remember (removed, warned, or those recipients reported).
 */
#include "queuerun/notice.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queuerun/bounce.h"
#include "lib/log.h"
#include "lib/util.h"

/* Bounces decided again at most this often (notice_failures). */
#define NOTICE_ROUNDS	3

/* Remote-MTA: the host name of "host[ip]:port". */
static char *
remote_mta_of(const char *relay)
{
	if (relay == NULL || strcmp(relay, "none") == 0)
		return NULL;
	const char *bracket = strchr(relay, '[');
	return bracket ? xstrndup(relay, (size_t)(bracket - relay)) :
	    xstrdup(relay);
}

struct original {
	struct spool *sp;
	const char *id;
};

static int
read_original(void *ctx, int (*fn)(void *, const char *, size_t), void *fnctx)
{
	struct original *o = ctx;

	return spool_read_content(o->sp, o->id, fn, fnctx) == SPOOL_OK ? 0 : -1;
}

static bool
wants(const struct spool_rcpt *r, uint32_t bit)
{
	if (r->notify & SPOOL_NOTIFY_NEVER)
		return false;
	return r->notify == 0 || (r->notify & bit);
}

static int
alias_lookup(void *sp, const char *name, char ***targets, size_t *n)
{
	return spool_alias_lookup(sp, name, targets, n) == SPOOL_OK ? 0 : -1;
}

/*
 * The addresses a bounce of message id goes to: the postmaster alias,
 * expanded (bounce_postmaster). 0, logged, when there are none.
 */
static size_t
postmaster_rcpts(struct spool *sp, const struct mxl_config *cfg,
    const char *id, char ***rcpts)
{
	size_t n = 0;
	int rc = bounce_postmaster(cfg->myorigin, alias_lookup, sp, rcpts, &n);

	log_set_component("bounce");
	if (rc < 0)
		log_info("%s: undeliverable postmaster notification "
		    "discarded (no postmaster alias)", id);
	else if (n == 0)
		log_info("%s: undeliverable postmaster notification "
		    "discarded (the postmaster alias has no address)", id);
	else if (rc > 0)
		log_warn("%s: postmaster alias expansion cut short (more than "
		    "%d levels or %d names); notifying %zu addresses", id,
		    BOUNCE_ALIAS_DEPTH, BOUNCE_ALIAS_MAX, n);
	log_set_component(NULL);
	return n;
}

/*
 * Builds a notice about msg (failure or delay) for the recipients that
 * are owed one, and queues it in the transaction that does what: remove
 * the message, mark it warned, or mark those recipients as reported.
 * Returns the notice id in notice_id ("" when none was owed).
 */
static int
send_notice(struct spool *sp, const struct mxl_config *cfg,
    const struct spool_msg *msg, const struct spool_rcpt *rcpts, size_t n,
    enum bounce_kind kind, enum spool_finish_what what,
    char notice_id[SPOOL_ID_SIZE])
{
	struct bounce_rcpt *brs = xcalloc(n + 1, sizeof(*brs));
	char (*status)[16] = xcalloc(n + 1, sizeof(*status));
	char **owned = xcalloc(2 * n + 1, sizeof(char *));
	uint32_t *reported = xcalloc(n + 1, sizeof(uint32_t));
	size_t nb = 0, nowned = 0;
	int64_t now = time(NULL);
	int rc = SPOOL_OK;

	notice_id[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const struct spool_rcpt *r = &rcpts[i];
		/* A recipient whose bounce went out earlier is not repeated. */
		bool failed = kind == BOUNCE_FAILED &&
		    r->state == RCPT_BOUNCED &&
		    !(r->flags & SPOOL_RCPT_NOTIFIED) &&
		    wants(r, SPOOL_NOTIFY_FAILURE);
		bool delayed = kind == BOUNCE_DELAYED &&
		    r->state == RCPT_QUEUED && r->attempts > 0 &&
		    wants(r, SPOOL_NOTIFY_DELAY);
		if (!failed && !delayed)
			continue;
		struct bounce_rcpt *b = &brs[nb];
		char *diag = bounce_reply_of(r->last_response);
		b->address = r->address;
		b->orcpt = r->orcpt;
		b->action = failed ? "failed" : "delayed";
		if (r->status)
			snprintf(status[nb], 16, "%s", r->status);
		else if (diag)
			bounce_status_from_reply(diag, status[nb]);
		else
			snprintf(status[nb], 16, "%s", failed ? "5.4.4" :
			    "4.4.1");
		reported[nb] = r->index;
		b->status = status[nb];
		b->remote_mta = owned[nowned++] = remote_mta_of(r->last_relay);
		b->diagnostic = owned[nowned++] = diag;
		b->reason = r->last_response;
		b->last_attempt = (time_t)(r->done_time ? r->done_time : now);
		nb++;
	}
	const char *to = msg->sender;
	char *postmaster = NULL, **pm_rcpts = NULL;
	size_t npm = 0;
	bool postmaster_notice = msg->uid == 0 && msg->user != NULL &&
	    strcmp(msg->user, BOUNCE_POSTMASTER_USER) == 0;
	if (nb > 0 && *to == '\0' && postmaster_notice) {
		log_set_component("bounce");
		log_info("%s: undeliverable postmaster notification discarded "
		    "(a notice about it would go to postmaster again)",
		    msg->id);
		log_set_component(NULL);
		to = NULL;
	} else if (nb > 0 && *to == '\0') {
		/* A bounce of a bounce goes where postmaster's alias says. */
		npm = postmaster_rcpts(sp, cfg, msg->id, &pm_rcpts);
		if (npm > 0)
			postmaster = xasprintf("postmaster@%s",
			    cfg->myorigin);
		to = postmaster;
	}
	struct spool_notice notice;
	struct spool_notice *np = NULL;
	struct buf content = BUF_INIT;
	struct spool_msg nmsg;
	struct spool_rcpt *nrcpts = NULL;
	if (nb > 0 && to != NULL) {
		struct original orig = {sp, msg->id};
		struct bounce_info info = {
			.kind = kind, .reporting_mta = cfg->myhostname,
			.queue_id = msg->id, .envid = msg->envid,
			.original_sender = to, .arrival = (time_t)msg->arrival,
			.retry_until = (time_t)(msg->arrival +
			    cfg->maximal_queue_lifetime),
			.ret = msg->ret, .rcpts = brs, .nrcpts = nb,
			.read_original = read_original, .read_ctx = &orig,
			.max_original = (size_t)cfg->bounce_size_limit,
		};
		if (bounce_build(&info, (time_t)now, &content) != 0) {
			rc = SPOOL_ERR;
			goto out;
		}
		memset(&nmsg, 0, sizeof(nmsg));
		nmsg.sender = "";
		nmsg.lane = msg->lane;
		nmsg.uid = 0;
		nmsg.user = postmaster ? BOUNCE_POSTMASTER_USER :
		    "MAILER-DAEMON";
		nmsg.body = SPOOL_BODY_8BITMIME;
		/* postmaster@myorigin stays in To:, the alias's addresses get it. */
		size_t nr = postmaster ? npm : 1;
		nrcpts = xcalloc(nr, sizeof(*nrcpts));
		for (size_t i = 0; i < nr; i++)
			nrcpts[i].address = postmaster ? pm_rcpts[i] :
			    (char *)to;
		memset(&notice, 0, sizeof(notice));
		notice.msg = &nmsg;
		notice.rcpts = nrcpts;
		notice.nrcpt = nr;
		notice.content = content.data;
		notice.len = content.len;
		np = &notice;
	}
	if (np == NULL && what != SPOOL_FINISH_REMOVE)
		goto out;	/* no notice owed after all */
	rc = spool_finish(sp, msg->id, np, what, reported, nb);
	if (rc == SPOOL_OK && np) {
		memcpy(notice_id, notice.id, SPOOL_ID_SIZE);
		log_set_component("bounce");
		log_info("%s: sender %s notification: %s", msg->id,
		    kind == BOUNCE_FAILED ? "non-delivery" : "delay",
		    notice_id);
		log_set_component(NULL);
	}
out:
	buf_free(&content);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(status);
	free(brs);
	free(reported);
	free(postmaster);
	free(nrcpts);
	for (size_t i = 0; i < npm; i++)
		free(pm_rcpts[i]);
	free(pm_rcpts);
	return rc;
}

/*
 * A bounce for the failed recipients of id that had none yet, and then
 * what; decided again from a fresh read when another process sent one
 * meanwhile (SPOOL_STALE: a worker's prompt bounce and the runner's
 * removal of the same message).
 */
static int
notice_failures(struct spool *sp, const struct mxl_config *cfg,
    const char *id, enum spool_finish_what what)
{
	int rc = SPOOL_STALE;

	for (int round = 0; round < NOTICE_ROUNDS && rc == SPOOL_STALE;
	    round++) {
		struct spool_msg msg;
		struct spool_rcpt *rcpts;
		size_t n;
		char notice_id[SPOOL_ID_SIZE];

		if (spool_get(sp, id, &msg, &rcpts, &n) != SPOOL_OK)
			return SPOOL_NOTFOUND;
		rc = send_notice(sp, cfg, &msg, rcpts, n, BOUNCE_FAILED, what,
		    notice_id);
		spool_msg_free(&msg);
		spool_rcpts_free(rcpts, n);
	}
	return rc;
}

void
notice_finish(struct spool *sp, const struct mxl_config *cfg, const char *id)
{
	if (notice_failures(sp, cfg, id, SPOOL_FINISH_REMOVE) == SPOOL_OK) {
		log_set_component("qmgr");
		log_info("%s: removed", id);
		log_set_component(NULL);
	}
}

void
notice_bounce_now(struct spool *sp, const struct mxl_config *cfg,
    const char *id)
{
	(void)notice_failures(sp, cfg, id, SPOOL_FINISH_NOTIFIED);
}

void
notice_delay_if_due(struct spool *sp, const struct mxl_config *cfg,
    const char *id, int64_t now)
{
	struct spool_msg msg;
	struct spool_rcpt *rcpts;
	size_t n;
	char notice_id[SPOOL_ID_SIZE];

	if (cfg->delay_warning_time <= 0)
		return;
	if (spool_get(sp, id, &msg, &rcpts, &n) != SPOOL_OK)
		return;
	if (!msg.warned && *msg.sender &&
	    now - msg.arrival >= cfg->delay_warning_time)
		(void)send_notice(sp, cfg, &msg, rcpts, n, BOUNCE_DELAYED,
		    SPOOL_FINISH_WARNED, notice_id);
	spool_msg_free(&msg);
	spool_rcpts_free(rcpts, n);
}
