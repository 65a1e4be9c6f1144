/*
 * NAME
 *	admin - hold, release, requeue and delete queued mail
 * SYNOPSIS
 *	#include "spool/spool.h"
 *
 *	int spool_admin_apply(struct spool *sp, enum spool_admin_op op,
 *	    const struct spool_admin_how *how, struct spool_admin_item *items,
 *	    size_t n, int64_t now);
 * DESCRIPTION
 *	What "queuerun hold", "release", "requeue" and "delete" do to the
 *	spool, for a batch of messages chosen by the caller, in one
 *	durable transaction (an administrator's word must survive a
 *	crash): either every message of the batch is changed or none is.
 *	The caller chose the messages and recipients from a scan made
 *	without locks; here each record is read again under its write
 *	lock, and only what is still pending is touched.
 *
 *	A recipient that a runner has claimed (active, under a lease) is
 *	in a delivery that may already be in its SMTP transaction, which
 *	nothing can call back. So, as Postfix does with a message its
 *	queue manager has in the active queue:
 *	  hold     marks the message; the queued recipients lose their
 *	           schedule keys at once, the active ones when their
 *	           runner records the attempt (or their lease runs out):
 *	           what that attempt does not deliver then waits, held;
 *	  release  gives the queued recipients a key due now;
 *	  requeue  makes the queued ones due now; the active ones are left
 *	           to their attempt (what it leaves behind is retried);
 *	  move     the same, and the message leaves from the new pool or
 *	           source from its next session on (job.c reads it when it
 *	           groups a batch);
 *	  delete   makes them final all the same: the runner's result then
 *	           finds a final recipient and is dropped (schedule.c keeps
 *	           the first word), so a delivery under way may still
 *	           complete, once, and nothing is attempted after.
 *	Deleted recipients become bounced with the administrator's reason;
 *	without how->bounce they are also marked notified, so no bounce is
 *	ever owed for them. So is one in delivery now even with
 *	how->bounce: its session may have delivered it, and a DSN saying
 *	that it failed could be false. A message left with nothing pending is removed
 *	here, unless a bounce is owed (by this delete with how->bounce, or
 *	an earlier failure): then it gets a finish key, and a runner (or
 *	the caller, at once) sends the bounce and removes it.
 * DIAGNOSTICS
 *	SPOOL_OK, or SPOOL_ERR once logged; a message gone meanwhile is
 *	skipped (items[i].found false).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

struct admin_msg {
	struct spool *sp;
	DB_TXN *txn;
	enum spool_admin_op op;
	const struct spool_admin_how *how;
	struct spool_admin_item *item;
	const struct spool_msg *msg;
	int cls;		/* the schedule class of its keys now */
	int put_cls;		/* and of the keys it is given */
	int64_t now;
	uint32_t changed;	/* recipients changed */
	size_t pending;		/* left pending afterwards */
	bool bounce_owed;	/* a final failure not yet notified */
};

static bool
chosen(const struct spool_admin_item *item, uint32_t index)
{
	if (item->indexes == NULL)
		return true;
	for (size_t i = 0; i < item->nindexes; i++)
		if (item->indexes[i] == index)
			return true;
	return false;
}

static int
admin_rcpt(struct admin_msg *a, struct spool_rcpt *r)
{
	int rc = 0;
	bool change = txn_rcpt_pending(r) && chosen(a->item, r->index);

	switch (a->op) {
	case SPOOL_ADMIN_HOLD:
		/* The envelope's flag holds it; the queued lose their key. */
		change = change && r->state == RCPT_QUEUED;
		if (change)
			rc = spool_schedule_del(a->sp, a->txn, a->cls,
			    r->next_try, a->msg->id, r->index);
		break;
	case SPOOL_ADMIN_RELEASE:
	case SPOOL_ADMIN_REQUEUE:
	case SPOOL_ADMIN_MOVE:
		change = change && r->state == RCPT_QUEUED;
		if (!change)
			break;
		/* (Released: the flag is off already, and it had no key.) */
		if (txn_rcpt_scheduled(a->msg, r))
			rc = spool_schedule_del(a->sp, a->txn, a->cls,
			    r->next_try, a->msg->id, r->index);
		r->next_try = a->now;
		/* Due now means now, not at a throttle's booking. */
		r->flags &= ~(uint32_t)SPOOL_RCPT_HELD;
		if (rc == 0)
			rc = txn_write_rcpt(a->sp, a->txn, a->msg->id, r);
		if (rc == 0 && txn_rcpt_scheduled(a->msg, r))
			rc = spool_schedule_put(a->sp, a->txn, a->put_cls,
			    a->now, a->msg->id, r->index, r->address);
		break;
	case SPOOL_ADMIN_DELETE:
		if (!change)
			break;
		rc = spool_schedule_del(a->sp, a->txn, a->cls,
		    txn_rcpt_key_due(r), a->msg->id, r->index);
		if (!a->how->bounce || r->state == RCPT_ACTIVE)
			r->flags |= SPOOL_RCPT_NOTIFIED;
		r->state = RCPT_BOUNCED;
		r->lease_until = 0;
		r->done_time = a->now;
		free(r->last_response);
		r->last_response = xstrdup(a->how->reason);
		free(r->status);
		r->status = xstrdup(a->how->status);
		free(r->class);
		r->class = NULL;
		r->flags &= ~(uint32_t)SPOOL_RCPT_HELD;
		if (rc == 0)
			rc = txn_write_rcpt(a->sp, a->txn, a->msg->id, r);
		break;
	}
	if (change)
		a->changed++;
	if (txn_rcpt_pending(r))
		a->pending++;
	else if (r->state == RCPT_BOUNCED && !(r->flags & SPOOL_RCPT_NOTIFIED))
		a->bounce_owed = true;
	return rc;
}

/*
 * txn_each_rcpt holds a cursor on the records: collect them first,
 * then rewrite them one by one.
 */
struct collect {
	struct spool_rcpt *r;
	size_t n;
};

static int
collect_rcpt(void *ctx, struct spool_rcpt *r)
{
	struct collect *c = ctx;

	c->r = xrealloc(c->r, (c->n + 1) * sizeof(*c->r));
	c->r[c->n++] = *r;
	memset(r, 0, sizeof(*r));	/* now ours */
	return 0;
}

static bool
same_opt(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Sets the message's move; whether that changed it. */
static bool
set_move(struct spool_msg *msg, const char *pool, const char *source,
    const char *provider)
{
	if (same_opt(pool, msg->move_pool) && same_opt(source,
	    msg->move_source) && same_opt(provider, msg->move_provider))
		return false;
	free(msg->move_pool);
	free(msg->move_source);
	free(msg->move_provider);
	msg->move_pool = pool ? xstrdup(pool) : NULL;
	msg->move_source = source ? xstrdup(source) : NULL;
	msg->move_provider = provider ? xstrdup(provider) : NULL;
	return true;
}

static int
admin_message(struct spool *sp, DB_TXN *txn, enum spool_admin_op op,
    const struct spool_admin_how *how, struct spool_admin_item *item,
    int64_t now)
{
	struct spool_msg msg;
	struct collect c = {NULL, 0};
	int rc;

	item->found = item->removed = item->finished = false;
	item->lane_changed = false;
	item->changed = 0;
	if ((rc = txn_read_msg(sp, txn, item->id, &msg, DB_RMW)) != 0)
		return rc == DB_NOTFOUND ? 0 : rc;
	item->found = true;
	bool was_held = (msg.flags & SPOOL_MSG_HELD) != 0;
	if ((op == SPOOL_ADMIN_HOLD && was_held) ||
	    (op == SPOOL_ADMIN_RELEASE && !was_held))
		goto out;
	if ((rc = txn_each_rcpt(sp, txn, item->id, collect_rcpt, &c)) != 0)
		goto out;
	int cls = spool_lane_class(msg.lane);
	bool new_lane = op == SPOOL_ADMIN_REQUEUE && item->lane &&
	    item->indexes == NULL && (msg.lane == NULL ||
	    strcmp(item->lane, msg.lane) != 0);
	/*
	 * A recipient in delivery keeps its lease key in the lane's class
	 * until its runner records the attempt: the lane stays then.
	 */
	for (size_t i = 0; new_lane && i < c.n; i++)
		if (c.r[i].state == RCPT_ACTIVE)
			new_lane = false;
	bool msg_changed = true;
	if (op == SPOOL_ADMIN_HOLD)
		msg.flags |= SPOOL_MSG_HELD;
	else if (op == SPOOL_ADMIN_RELEASE)
		msg.flags &= ~(uint32_t)SPOOL_MSG_HELD;
	else if (op == SPOOL_ADMIN_MOVE)
		set_move(&msg, how->pool, how->source, how->provider);
	else if (op == SPOOL_ADMIN_REQUEUE)
		msg_changed = set_move(&msg, NULL, NULL, NULL) | new_lane;
	else
		msg_changed = false;
	if (new_lane) {
		free(msg.lane);
		msg.lane = xstrdup(item->lane);
		item->lane_changed = true;
	}
	if (msg_changed && (rc = txn_write_msg(sp, txn, &msg)) != 0)
		goto out;
	struct admin_msg a = {sp, txn, op, how, item, &msg, cls,
	    spool_lane_class(msg.lane), now, 0, 0, false};
	for (size_t i = 0; i < c.n && rc == 0; i++)
		rc = admin_rcpt(&a, &c.r[i]);
	/* Hold, release and move are counted in messages, the rest not. */
	if (op == SPOOL_ADMIN_HOLD || op == SPOOL_ADMIN_RELEASE ||
	    op == SPOOL_ADMIN_MOVE)
		item->changed = 1;
	else
		item->changed = a.changed;
	if (rc != 0 || op != SPOOL_ADMIN_DELETE || item->changed == 0 ||
	    a.pending > 0)
		goto out;
	if (a.bounce_owed) {
		rc = spool_schedule_put(sp, txn, SCHED_FINISH, 0, item->id,
		    SCHED_FINISH_INDEX, NULL);
		item->finished = true;
	} else {
		rc = spool_remove_txn(sp, txn, item->id);
		item->removed = true;
	}
out:
	spool_rcpts_free(c.r, c.n);
	spool_msg_free(&msg);
	return rc;
}

static int
apply_once(struct spool *sp, enum spool_admin_op op,
    const struct spool_admin_how *how, struct spool_admin_item *items,
    size_t n, int64_t now)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = admin_message(sp, txn, op, how, &items[i], now);
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

int
spool_admin_apply(struct spool *sp, enum spool_admin_op op,
    const struct spool_admin_how *how, struct spool_admin_item *items,
    size_t n, int64_t now)
{
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	SPOOL_RETRY(sp, rc, i)
		rc = apply_once(sp, op, how, items, n, now);
	if (rc != 0) {
		log_error("spool: cannot change %zu queued message%s: %s", n,
		    n == 1 ? "" : "s", db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}
