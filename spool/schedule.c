/*
 * NAME
 *	schedule - which recipient is due, who is delivering it, and what
 *	became of it
 * DESCRIPTION
 *	schedule.db holds one key per pending recipient:
 *
 *	    class(1) due(8, big-endian) queue-id(13) index(4) -> domain
 *
 *	Class 0 is the priority lane and sorts first, so a runner that
 *	takes the first due keys always serves password resets before a
 *	newsletter. A queued recipient's key sits at its next_try; a claimed
 *	(active) one's at its lease expiry. Claiming moves the key, so a
 *	runner killed mid-delivery needs no clean-up: when its lease runs
 *	out the recipient is simply due again, and is retried.
 *
 *	Class 2 holds "finish" keys (due 0, index 0xffffffff): messages
 *	whose recipients are all final and that still owe a bounce and a
 *	removal. spool_finish() does both in one transaction.
 *
 *	record.c lays the keys out and txn.c writes them: when a message is
 *	stored or removed, and for this file, which moves a recipient's key
 *	(and rewrites its record, also through txn.c) as it is claimed,
 *	flushed or given its result.
 *
 *	Claims and results are committed without waiting for the disk
 *	(DB_TXN_WRITE_NOSYNC): the log reaches the kernel at commit, which
 *	is all a killed runner needs. Only an operating system crash can
 *	lose the last of them, and then the recipient is retried, which
 *	costs a duplicate at worst, never a lost message. What creates mail
 *	(bounces) commits durably.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/spool_impl.h"
#include "spool/stats.h"
#include "spool/txn.h"

/* Claiming. */

struct claim {
	struct spool *sp;
	DB_TXN *txn;
	const struct spool_claim_filter *filter;
	int64_t now;
	int lease;
	size_t max;
	struct spool_work *out;
	size_t n;
	size_t cap;
	/* The envelope of the message last looked at, for sender/lane. */
	char cached_id[SPOOL_ID_SIZE];
	struct spool_msg cached;
	bool have_cached;
};

static void
claim_reset(struct claim *cl)
{
	spool_work_free(cl->out, cl->n);
	cl->out = NULL;
	cl->n = cl->cap = 0;
	if (cl->have_cached)
		spool_msg_free(&cl->cached);
	cl->have_cached = false;
}

/* Does the message pass the sender and lane filters? */
static int
claim_msg_ok(struct claim *cl, const char *id, bool *ok)
{
	const struct spool_claim_filter *f = cl->filter;
	int rc;

	*ok = true;
	if (f == NULL || (f->sender == NULL && f->lane == NULL))
		return 0;
	if (!cl->have_cached || strcmp(cl->cached_id, id) != 0) {
		if (cl->have_cached)
			spool_msg_free(&cl->cached);
		cl->have_cached = false;
		if ((rc = txn_read_msg(cl->sp, cl->txn, id, &cl->cached,
		    0)) != 0)
			return rc == DB_NOTFOUND ? (*ok = false, 0) : rc;
		memcpy(cl->cached_id, id, SPOOL_ID_SIZE);
		cl->have_cached = true;
	}
	if (f->sender && str_casecmp_ascii(f->sender, cl->cached.sender) != 0)
		*ok = false;
	if (f->lane && strcmp(f->lane, cl->cached.lane) != 0)
		*ok = false;
	return 0;
}

/*
 * Claims one recipient whose schedule key the cursor c is on (or, when
 * c is NULL, whose key is at cls/due). Skips, without error, what is
 * not claimable.
 */
static int
claim_rcpt(struct claim *cl, DBC *c, int cls, const char *id, uint32_t index)
{
	struct spool_rcpt r;
	int rc = txn_read_rcpt(cl->sp, cl->txn, id, index, &r, DB_RMW);

	if (rc == DB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	bool flush = cl->filter && cl->filter->flush;
	bool claimable =
	    (r.state == RCPT_QUEUED && (r.next_try <= cl->now || flush)) ||
	    (r.state == RCPT_ACTIVE && r.lease_until <= cl->now);
	bool tried = cl->filter && cl->filter->tried_since > 0 &&
	    r.state == RCPT_QUEUED && r.attempts > 0 &&
	    !(r.flags & SPOOL_RCPT_HELD) &&
	    r.next_try > cl->filter->tried_since;
	if (!claimable || tried) {
		spool_rcpt_clear(&r);
		return 0;
	}
	int64_t old_due = txn_rcpt_key_due(&r);
	/*
	 * A lease that ran out in a message held meanwhile: the runner
	 * that had it died, and the recipient now waits for a release,
	 * without a key, like the rest of the message.
	 */
	if (r.state == RCPT_ACTIVE) {
		struct spool_msg msg;
		if ((rc = txn_read_msg(cl->sp, cl->txn, id, &msg, 0)) != 0) {
			spool_rcpt_clear(&r);
			return rc == DB_NOTFOUND ? 0 : rc;
		}
		bool held = (msg.flags & SPOOL_MSG_HELD) != 0;
		spool_msg_free(&msg);
		if (held) {
			rc = c != NULL ? c->del(c, 0) : spool_schedule_del(
			    cl->sp, cl->txn, cls, old_due, id, index);
			r.state = RCPT_QUEUED;
			r.lease_until = 0;
			if (rc == 0)
				rc = txn_write_rcpt(cl->sp, cl->txn, id, &r);
			spool_rcpt_clear(&r);
			return rc;
		}
	}
	if (c != NULL)
		rc = c->del(c, 0);
	else
		rc = spool_schedule_del(cl->sp, cl->txn, cls, old_due, id,
		    index);
	if (rc == 0) {
		r.state = RCPT_ACTIVE;
		r.lease_until = cl->now + cl->lease;
		rc = txn_write_rcpt(cl->sp, cl->txn, id, &r);
	}
	if (rc == 0)
		rc = spool_schedule_put(cl->sp, cl->txn, cls, r.lease_until,
		    id, index, r.address);
	if (rc == 0) {
		if (cl->n == cl->cap) {
			cl->cap = cl->cap ? cl->cap * 2 : 32;
			cl->out = xrealloc(cl->out, cl->cap * sizeof(*cl->out));
		}
		struct spool_work *w = &cl->out[cl->n++];
		struct buf domain = BUF_INIT;
		memcpy(w->id, id, SPOOL_ID_SIZE);
		w->index = index;
		w->address = xstrdup(r.address);
		txn_domain_of(r.address, &domain);
		w->domain = buf_steal(&domain);
		w->due = old_due;
		w->attempts = r.attempts;
		w->held = (r.flags & SPOOL_RCPT_HELD) != 0;
		w->lease_until = r.lease_until;
		w->priority = cls == SCHED_PRIORITY;
	}
	spool_rcpt_clear(&r);
	return rc;
}

static int
claim_class(struct claim *cl, int cls)
{
	unsigned char k[RECORD_SCHED_KEY_LEN];
	DBT key, val;
	DBC *c;
	int rc;
	u_int32_t op = DB_SET_RANGE;
	bool flush = cl->filter && cl->filter->flush;

	if ((rc = cl->sp->schedule->cursor(cl->sp->schedule, cl->txn, &c, 0)))
		return rc;
	record_sched_key(k, cls, 0, "0000000000000", 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_REALLOC;
	while (cl->n < cl->max && (rc = c->get(c, &key, &val,
	    op | DB_RMW)) == 0) {
		struct sched_key sk;

		op = DB_NEXT;
		if (!record_sched_key_parse(key.data, key.size, &sk) ||
		    sk.cls != cls)
			break;
		if (sk.due > cl->now && !flush)
			break;
		if (cl->filter && cl->filter->domain &&
		    (val.size != strlen(cl->filter->domain) ||
		    str_ncasecmp_ascii(val.data, cl->filter->domain,
		    val.size) != 0))
			continue;
		bool ok;
		if ((rc = claim_msg_ok(cl, sk.id, &ok)) != 0)
			break;
		if (ok && (rc = claim_rcpt(cl, c, cls, sk.id, sk.index)) != 0)
			break;
	}
	free(val.data);
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

static int
commit_nosync(DB_TXN *txn)
{
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_claim_due(struct spool *sp, const struct spool_claim_filter *filter,
    int64_t now, int lease, size_t max, struct spool_work **out, size_t *n)
{
	SPOOL_GUARD;
	struct claim cl;
	int rc = DB_LOCK_DEADLOCK;

	memset(&cl, 0, sizeof(cl));
	cl.sp = sp;
	cl.filter = filter;
	cl.now = now;
	cl.lease = lease;
	cl.max = max;
	SPOOL_RETRY(sp, rc, i) {
		claim_reset(&cl);
		if ((rc = sp->env->txn_begin(sp->env, NULL, &cl.txn, 0)) != 0)
			break;
		if ((rc = claim_class(&cl, SCHED_PRIORITY)) == 0 &&
		    (rc = claim_class(&cl, SCHED_NORMAL)) == 0)
			rc = commit_nosync(cl.txn);
		else
			cl.txn->abort(cl.txn);
	}
	if (cl.have_cached)
		spool_msg_free(&cl.cached);
	if (rc != 0) {
		spool_work_free(cl.out, cl.n);
		log_error("spool: cannot claim due recipients: %s",
		    db_strerror(rc));
		return SPOOL_ERR;
	}
	*out = cl.out;
	*n = cl.n;
	return SPOOL_OK;
}

struct claim_msg_ctx {
	struct claim *cl;
	int cls;
	const char *id;
};

static int
claim_msg_rcpt(void *vctx, struct spool_rcpt *r)
{
	struct claim_msg_ctx *m = vctx;

	if (!txn_rcpt_pending(r))
		return 0;
	return claim_rcpt(m->cl, NULL, m->cls, m->id, r->index);
}

int
spool_claim_message(struct spool *sp, const char *id, bool flush,
    int64_t now, int lease, struct spool_work **out, size_t *n)
{
	SPOOL_GUARD;
	struct spool_claim_filter filter = {NULL, NULL, NULL, flush, 0};
	struct claim cl;
	int rc = DB_LOCK_DEADLOCK;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	memset(&cl, 0, sizeof(cl));
	cl.sp = sp;
	cl.filter = &filter;
	cl.now = now;
	cl.lease = lease;
	cl.max = (size_t)-1;
	SPOOL_RETRY(sp, rc, i) {
		struct spool_msg msg;

		claim_reset(&cl);
		if ((rc = sp->env->txn_begin(sp->env, NULL, &cl.txn, 0)) != 0)
			break;
		if ((rc = txn_read_msg(sp, cl.txn, id, &msg, 0)) == 0) {
			struct claim_msg_ctx m = {&cl,
			    spool_lane_class(msg.lane), id};
			bool held = (msg.flags & SPOOL_MSG_HELD) != 0;
			spool_msg_free(&msg);
			/*
			 * Collect indexes first: claim_rcpt rewrites records
			 * under the cursor each_rcpt holds. Held mail is
			 * never attempted, not even when asked for by id.
			 */
			if (!held)
				rc = txn_each_rcpt(sp, cl.txn, id,
				    claim_msg_rcpt, &m);
		}
		if (rc == 0)
			rc = commit_nosync(cl.txn);
		else
			cl.txn->abort(cl.txn);
	}
	if (rc != 0) {
		spool_work_free(cl.out, cl.n);
		if (rc == DB_NOTFOUND)
			return SPOOL_NOTFOUND;
		log_error("spool: cannot claim %s: %s", id, db_strerror(rc));
		return SPOOL_ERR;
	}
	*out = cl.out;
	*n = cl.n;
	return SPOOL_OK;
}

void
spool_work_free(struct spool_work *work, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(work[i].address);
		free(work[i].domain);
	}
	free(work);
}

static int
renew_once(struct spool *sp, struct spool_claim_ref *refs, size_t n,
    int64_t now, int lease)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct spool_claim_ref *c = &refs[i];
		struct spool_msg msg;
		struct spool_rcpt r;

		c->ours = false;
		rc = txn_read_rcpt(sp, txn, c->id, c->index, &r, DB_RMW);
		if (rc == DB_NOTFOUND) {
			rc = 0;		/* removed meanwhile: not ours */
			continue;
		}
		if (rc != 0)
			break;
		if (r.state == RCPT_ACTIVE && r.lease_until == c->lease_until &&
		    (rc = txn_read_msg(sp, txn, c->id, &msg, 0)) == 0) {
			int cls = spool_lane_class(msg.lane);
			bool give_back = (msg.flags & SPOOL_MSG_HELD) &&
			    !c->in_session;
			spool_msg_free(&msg);
			rc = spool_schedule_del(sp, txn, cls, r.lease_until,
			    c->id, c->index);
			if (give_back) {
				/* Held meanwhile: it waits, without a key. */
				r.state = RCPT_QUEUED;
				r.lease_until = 0;
			} else {
				r.lease_until = now + lease;
			}
			if (rc == 0)
				rc = txn_write_rcpt(sp, txn, c->id, &r);
			if (rc == 0 && !give_back)
				rc = spool_schedule_put(sp, txn, cls,
				    r.lease_until, c->id, c->index, r.address);
			if (rc == 0)
				c->ours = !give_back;
		}
		spool_rcpt_clear(&r);
	}
	if (rc == DB_NOTFOUND)
		rc = 0;
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	if ((rc = commit_nosync(txn)) != 0)
		return rc;
	/*
	 * Only now hand out the new leases: an attempt that aborted (a
	 * deadlock, retried) must leave the refs as they were, or the
	 * retry would not recognise our own claims and skip them.
	 */
	for (size_t i = 0; i < n; i++)
		if (refs[i].ours)
			refs[i].lease_until = now + lease;
	return 0;
}

int
spool_renew_claims(struct spool *sp, struct spool_claim_ref *refs, size_t n,
    int64_t now, int lease)
{
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	SPOOL_RETRY(sp, rc, i)
		rc = renew_once(sp, refs, n, now, lease);
	if (rc != 0) {
		log_error("spool: cannot renew claims: %s", db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

/* Results. */

static int
count_pending(void *vctx, struct spool_rcpt *r)
{
	size_t *pending = vctx;

	if (txn_rcpt_pending(r))
		(*pending)++;
	return 0;
}

static int
apply_result(struct spool *sp, DB_TXN *txn, const struct spool_msg *msg,
    const struct spool_result *res, int64_t now)
{
	int cls = spool_lane_class(msg->lane);
	const char *id = msg->id;
	struct spool_rcpt r;
	int rc = txn_read_rcpt(sp, txn, id, res->index, &r, DB_RMW);

	if (rc != 0)
		return rc == DB_NOTFOUND ? 0 : rc;
	if (!txn_rcpt_pending(&r)) {
		/* Already final (a duplicate runner): keep the first word. */
		spool_rcpt_clear(&r);
		return 0;
	}
	rc = spool_schedule_del(sp, txn, cls, txn_rcpt_key_due(&r), id,
	    r.index);
	if (rc == 0) {
		r.state = res->state;
		r.lease_until = 0;
		if (res->attempted)
			r.attempts++;
		if (res->held)
			r.flags |= SPOOL_RCPT_HELD;
		else
			r.flags &= ~(uint32_t)SPOOL_RCPT_HELD;
		if (res->state == RCPT_QUEUED)
			r.next_try = res->next_try;
		else
			r.done_time = now;
		if (res->response) {
			free(r.last_response);
			r.last_response = xstrdup(res->response);
		}
		if (res->relay) {
			free(r.last_relay);
			r.last_relay = xstrdup(res->relay);
		}
		if (res->status) {
			free(r.status);
			r.status = xstrdup(res->status);
		}
		if (res->source) {
			free(r.last_source);
			r.last_source = xstrdup(res->source);
		}
		/* A success leaves no class; an attempt's failure its own. */
		if (res->class || (res->attempted && res->state == RCPT_SENT)) {
			free(r.class);
			r.class = res->class ? xstrdup(res->class) : NULL;
		}
		rc = txn_write_rcpt(sp, txn, id, &r);
	}
	if (rc == 0 && txn_rcpt_scheduled(msg, &r))
		rc = spool_schedule_put(sp, txn, cls, r.next_try, id, r.index,
		    r.address);
	spool_rcpt_clear(&r);
	return rc;
}

static int
record_once(struct spool *sp, const char *id,
    const struct spool_stats_where *where, const struct spool_result *results,
    size_t n, int64_t now, bool *all_final)
{
	DB_TXN *txn;
	struct spool_msg msg;
	size_t pending = 0;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = txn_read_msg(sp, txn, id, &msg, 0)) != 0)
		goto err;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = apply_result(sp, txn, &msg, &results[i], now);
	/* The counters commit with the outcome, or not at all. */
	if (rc == 0)
		rc = stats_count_outcomes(sp, txn, where, msg.lane, msg.arrival,
		    results, n, now);
	spool_msg_free(&msg);
	if (rc == 0)
		rc = txn_each_rcpt(sp, txn, id, count_pending, &pending);
	if (rc == 0 && pending == 0)
		rc = spool_schedule_put(sp, txn, SCHED_FINISH, 0, id,
		    SCHED_FINISH_INDEX, NULL);
	if (rc != 0)
		goto err;
	*all_final = pending == 0;
	return commit_nosync(txn);
err:
	txn->abort(txn);
	return rc;
}

int
spool_record_results(struct spool *sp, const char *id,
    const struct spool_result *results, size_t n, int64_t now,
    bool *all_final)
{
	return spool_record_outcomes(sp, id, NULL, results, n, now, all_final);
}

int
spool_record_outcomes(struct spool *sp, const char *id,
    const struct spool_stats_where *where, const struct spool_result *results,
    size_t n, int64_t now, bool *all_final)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	*all_final = false;
	SPOOL_RETRY(sp, rc, i)
		rc = record_once(sp, id, where, results, n, now, all_final);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot record results for %s: %s", id,
		    db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

/*
 * Finish keys are read committed: acting on one whose insertion then
 * rolled back would remove a message that still has work.
 */
static int
pending_once(struct spool *sp, char (*ids)[SPOOL_ID_SIZE], size_t max,
    size_t *n)
{
	unsigned char k[RECORD_SCHED_KEY_LEN];
	DBT key, val;
	DB_TXN *txn;
	DBC *c;
	int rc;
	u_int32_t op = DB_SET_RANGE;

	*n = 0;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn,
	    DB_READ_COMMITTED)) != 0)
		return rc;
	if ((rc = sp->schedule->cursor(sp->schedule, txn, &c, 0)) != 0) {
		txn->abort(txn);
		return rc;
	}
	record_sched_key(k, SCHED_FINISH, 0, "0000000000000", 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_PARTIAL;
	while (*n < max && (rc = c->get(c, &key, &val, op)) == 0) {
		struct sched_key sk;

		op = DB_NEXT;
		if (!record_sched_key_parse(key.data, key.size, &sk) ||
		    sk.cls != SCHED_FINISH)
			break;
		memcpy(ids[(*n)++], sk.id, SPOOL_ID_SIZE);
	}
	c->close(c);
	if (rc != 0 && rc != DB_NOTFOUND) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

int
spool_pending_finish(struct spool *sp, char (*ids)[SPOOL_ID_SIZE], size_t max,
    size_t *n)
{
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	SPOOL_RETRY(sp, rc, i)
		rc = pending_once(sp, ids, max, n);
	if (rc != 0) {
		log_error("spool: cannot list finished messages: %s",
		    db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

static int
mark_notified(struct spool *sp, DB_TXN *txn, const char *id,
    const uint32_t *notified, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct spool_rcpt r;
		int rc = txn_read_rcpt(sp, txn, id, notified[i], &r, DB_RMW);
		if (rc == DB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		r.flags |= SPOOL_RCPT_NOTIFIED;
		rc = txn_write_rcpt(sp, txn, id, &r);
		spool_rcpt_clear(&r);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The notice's own code for "already notified, or gone": see spool.h. */
#define NOTICE_STALE	(-1)

/*
 * Are the recipients a bounce reports still without one? Read for
 * update, so that of two processes deciding at once the second is
 * refused the lock, tries again, and then sees what the first did.
 */
static int
still_unnotified(struct spool *sp, DB_TXN *txn, const char *id,
    const uint32_t *reported, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct spool_rcpt r;
		int rc = txn_read_rcpt(sp, txn, id, reported[i], &r, DB_RMW);
		if (rc == DB_NOTFOUND)
			return NOTICE_STALE;
		if (rc != 0)
			return rc;
		bool notified = (r.flags & SPOOL_RCPT_NOTIFIED) != 0;
		spool_rcpt_clear(&r);
		if (notified)
			return NOTICE_STALE;
	}
	return 0;
}

static int
finish_once(struct spool *sp, const char *id, struct spool_notice *notice,
    enum spool_finish_what what, const uint32_t *notified, size_t nnotified)
{
	DB_TXN *txn;
	struct spool_msg msg;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if (notice && what != SPOOL_FINISH_WARNED &&
	    (rc = still_unnotified(sp, txn, id, notified, nnotified)) != 0)
		goto err;
	if (notice && (rc = spool_submit_txn(sp, txn, notice->msg,
	    notice->rcpts, notice->nrcpt, NULL, NULL, notice->content,
	    notice->len)) != 0)
		goto err;
	switch (what) {
	case SPOOL_FINISH_REMOVE:
		rc = spool_remove_txn(sp, txn, id);
		break;
	case SPOOL_FINISH_WARNED:
		if ((rc = txn_read_msg(sp, txn, id, &msg, DB_RMW)) == 0) {
			msg.warned = 1;
			rc = txn_write_msg(sp, txn, &msg);
			spool_msg_free(&msg);
		}
		break;
	case SPOOL_FINISH_NOTIFIED:
		rc = mark_notified(sp, txn, id, notified, nnotified);
		break;
	}
	if (rc != 0)
		goto err;
	/*
	 * A notice is new mail: it must be on disk like a submission. A
	 * bare removal need not wait for the disk: lost in an operating
	 * system crash, it costs one repeated delivery, never a message.
	 */
	if ((rc = txn->commit(txn, notice ? 0 : DB_TXN_WRITE_NOSYNC)) == 0 &&
	    notice)
		memcpy(notice->id, notice->msg->id, SPOOL_ID_SIZE);
	return rc;
err:
	txn->abort(txn);
	return rc;
}

int
spool_finish(struct spool *sp, const char *id, struct spool_notice *notice,
    enum spool_finish_what what, const uint32_t *notified, size_t nnotified)
{
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	SPOOL_RETRY(sp, rc, i)
		rc = finish_once(sp, id, notice, what, notified, nnotified);
	if (rc == NOTICE_STALE)
		return SPOOL_STALE;
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot finish %s: %s", id, db_strerror(rc));
		return SPOOL_ERR;
	}
	spool_checkpoint_due(sp);
	return SPOOL_OK;
}

/* The first key of class cls: its due time, or false if none. */
static bool
first_due(struct spool *sp, int cls, int64_t *due)
{
	unsigned char k[RECORD_SCHED_KEY_LEN];
	DBT key, val;
	DBC *c;
	bool found = false;

	if (sp->schedule->cursor(sp->schedule, NULL, &c, DB_READ_UNCOMMITTED))
		return false;
	record_sched_key(k, cls, 0, "0000000000000", 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_PARTIAL;
	if (c->get(c, &key, &val, DB_SET_RANGE) == 0) {
		struct sched_key sk;
		if (record_sched_key_parse(key.data, key.size, &sk) &&
		    sk.cls == cls) {
			*due = sk.due;
			found = true;
		}
	}
	c->close(c);
	return found;
}

bool
spool_priority_due(struct spool *sp, int64_t now)
{
	SPOOL_GUARD;
	int64_t due;

	return first_due(sp, SCHED_PRIORITY, &due) && due <= now;
}

bool
spool_next_due(struct spool *sp, int64_t *when)
{
	SPOOL_GUARD;
	int64_t a, b;
	bool has_a = first_due(sp, SCHED_PRIORITY, &a);
	bool has_b = first_due(sp, SCHED_NORMAL, &b);

	if (!has_a && !has_b)
		return false;
	*when = !has_a ? b : !has_b ? a : (a < b ? a : b);
	return true;
}

/* Flush: what is queued for later becomes due now (postqueue -f). */

struct flush {
	struct spool *sp;
	DB_TXN *txn;
	const struct spool_claim_filter *filter;
	int64_t now;
	size_t moved;
	struct claim cl;	/* for the sender/lane filter's envelope cache */
};

/* Moves one queued recipient's key to now; the cursor sits on it. */
static int
flush_rcpt(struct flush *f, DBC *c, int cls, const char *id, uint32_t index)
{
	struct spool_rcpt r;
	int rc = txn_read_rcpt(f->sp, f->txn, id, index, &r, DB_RMW);

	if (rc == DB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (r.state == RCPT_QUEUED && r.next_try > f->now) {
		if (c)
			rc = c->del(c, 0);
		else
			rc = spool_schedule_del(f->sp, f->txn, cls, r.next_try,
			    id, index);
		r.next_try = f->now;
		if (rc == 0)
			rc = txn_write_rcpt(f->sp, f->txn, id, &r);
		if (rc == 0)
			rc = spool_schedule_put(f->sp, f->txn, cls, f->now, id,
			    index, r.address);
		if (rc == 0)
			f->moved++;
	}
	spool_rcpt_clear(&r);
	return rc;
}

/*
 * One transaction's worth (at most 500 keys) of a class, from key
 * 'from' on; *done when the class is finished, else 'from' is where to
 * go on. Keeps transactions short on a big queue.
 */
static int
flush_some(struct flush *f, int cls, unsigned char from[RECORD_SCHED_KEY_LEN],
    bool *done)
{
	DBT key, val;
	DBC *c;
	int rc, seen = 0;
	u_int32_t op = DB_SET_RANGE;

	*done = false;
	if ((rc = f->sp->schedule->cursor(f->sp->schedule, f->txn, &c, 0)))
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = from;
	key.size = RECORD_SCHED_KEY_LEN;
	key.ulen = RECORD_SCHED_KEY_LEN;
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_REALLOC;
	while ((rc = c->get(c, &key, &val, op | DB_RMW)) == 0) {
		struct sched_key sk;

		op = DB_NEXT;
		if (!record_sched_key_parse(key.data, key.size, &sk) ||
		    sk.cls != cls) {
			*done = true;
			break;
		}
		if (++seen > 500)
			break;		/* 'from' holds the next key */
		if (sk.due <= f->now)
			continue;	/* due already */
		const struct spool_claim_filter *flt = f->filter;
		if (flt && flt->domain && (val.size != strlen(flt->domain) ||
		    str_ncasecmp_ascii(val.data, flt->domain, val.size) != 0))
			continue;
		bool ok;
		if ((rc = claim_msg_ok(&f->cl, sk.id, &ok)) != 0)
			break;
		if (ok && (rc = flush_rcpt(f, c, cls, sk.id, sk.index)) != 0)
			break;
	}
	if (rc == DB_NOTFOUND) {
		*done = true;
		rc = 0;
	}
	free(val.data);
	c->close(c);
	return rc;
}

static int
flush_txn(struct flush *f, int cls, unsigned char from[RECORD_SCHED_KEY_LEN],
    bool *done)
{
	SPOOL_GUARD;
	unsigned char at[RECORD_SCHED_KEY_LEN];
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(f->sp, rc, i) {
		memcpy(at, from, RECORD_SCHED_KEY_LEN);
		if ((rc = f->sp->env->txn_begin(f->sp->env, NULL, &f->txn,
		    0)) != 0)
			continue;
		f->cl.txn = f->txn;
		rc = flush_some(f, cls, at, done);
		if (rc == 0)
			rc = commit_nosync(f->txn);
		else
			f->txn->abort(f->txn);
		if (f->cl.have_cached)
			spool_msg_free(&f->cl.cached);
		f->cl.have_cached = false;
	}
	if (rc == 0)
		memcpy(from, at, RECORD_SCHED_KEY_LEN);
	return rc;
}

int
spool_flush(struct spool *sp, const struct spool_claim_filter *filter,
    int64_t now, size_t *moved)
{
	struct flush f;

	memset(&f, 0, sizeof(f));
	f.sp = sp;
	f.filter = filter;
	f.now = now;
	f.cl.sp = sp;
	f.cl.filter = filter;
	for (int cls = SCHED_PRIORITY; cls <= SCHED_NORMAL; cls++) {
		unsigned char from[RECORD_SCHED_KEY_LEN];
		bool done = false;
		record_sched_key(from, cls, 0, "0000000000000", 0);
		while (!done)
			if (flush_txn(&f, cls, from, &done) != 0) {
				log_error("spool: flush failed");
				return SPOOL_ERR;
			}
	}
	*moved = f.moved;
	return SPOOL_OK;
}

struct flush_msg_ctx {
	struct flush *f;
	int cls;
	const char *id;
};

static int
flush_msg_rcpt(void *vctx, struct spool_rcpt *r)
{
	struct flush_msg_ctx *m = vctx;

	if (r->state != RCPT_QUEUED)
		return 0;
	return flush_rcpt(m->f, NULL, m->cls, m->id, r->index);
}

static int
flush_message_once(struct flush *f, const char *id)
{
	struct spool_msg msg;
	int rc;

	if ((rc = f->sp->env->txn_begin(f->sp->env, NULL, &f->txn, 0)) != 0)
		return rc;
	if ((rc = txn_read_msg(f->sp, f->txn, id, &msg, 0)) == 0) {
		struct flush_msg_ctx m = {f, spool_lane_class(msg.lane), id};
		bool held = (msg.flags & SPOOL_MSG_HELD) != 0;
		spool_msg_free(&msg);
		/* A flush is no release: held mail stays without keys. */
		if (!held)
			rc = txn_each_rcpt(f->sp, f->txn, id, flush_msg_rcpt,
			    &m);
	}
	if (rc == 0)
		return commit_nosync(f->txn);
	f->txn->abort(f->txn);
	return rc;
}

int
spool_flush_message(struct spool *sp, const char *id, int64_t now)
{
	struct flush f;
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	memset(&f, 0, sizeof(f));
	f.sp = sp;
	f.now = now;
	SPOOL_RETRY(sp, rc, i)
		rc = flush_message_once(&f, id);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return rc == 0 ? SPOOL_OK : SPOOL_ERR;
}
