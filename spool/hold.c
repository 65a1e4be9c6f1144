/*
 * NAME
 *	hold - the spool's side of a held message (a stand-in, see below)
 * DESCRIPTION
 *	A message is on hold when its envelope has SPOOL_MSG_HELD: its
 *	pending recipients then have no schedule key, so no runner claims
 *	them (spool_submit_txn, apply_result, spool_claim_message and
 *	spool_flush_message all leave a held message's keys out). A
 *	submission puts a message on hold by writing the flag into its
 *	maildrop file (header rules, submitter limits); a runner does it
 *	here, for the content gate.
 *
 *	This is the minimum issue 10's header rules and content gate need;
 *	hold and release as admin verbs are built apart (queuerun hold /
 *	release), and release must give each pending recipient its
 *	schedule key back when it clears the flag.
 */
#include <string.h>

#include "lib/log.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

struct hold_ctx {
	struct spool *sp;
	DB_TXN *txn;
	int cls;
	const char *id;
	int64_t now;
};

/* A pending recipient loses its key; a claimed one is claimed no more. */
static int
unschedule_one(void *vctx, struct spool_rcpt *r)
{
	struct hold_ctx *h = vctx;
	int rc;

	if (!txn_rcpt_pending(r))
		return 0;
	if ((rc = spool_schedule_del(h->sp, h->txn, h->cls,
	    txn_rcpt_key_due(r), h->id, r->index)) != 0)
		return rc;
	if (r->state != RCPT_ACTIVE)
		return 0;
	r->state = RCPT_QUEUED;
	r->lease_until = 0;
	r->next_try = h->now;
	return txn_write_rcpt(h->sp, h->txn, h->id, r);
}

static int
update_once(struct spool *sp, const char *id, uint32_t set, int64_t now)
{
	DB_TXN *txn;
	struct spool_msg msg;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = txn_read_msg(sp, txn, id, &msg, DB_RMW)) != 0)
		goto err;
	bool hold = (set & SPOOL_MSG_HELD) && !(msg.flags & SPOOL_MSG_HELD);
	msg.flags |= set;
	rc = txn_write_msg(sp, txn, &msg);
	if (rc == 0 && hold) {
		struct hold_ctx h = {sp, txn, spool_lane_class(msg.lane), id,
		    now};
		rc = txn_each_rcpt(sp, txn, id, unschedule_one, &h);
	}
	spool_msg_free(&msg);
	if (rc != 0)
		goto err;
	/* A hold must last; a lost "scanned" mark costs one more scan. */
	return txn->commit(txn, hold ? 0 : DB_TXN_WRITE_NOSYNC);
err:
	txn->abort(txn);
	return rc;
}

int
spool_msg_add_flags(struct spool *sp, const char *id, uint32_t flags,
    int64_t now)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = update_once(sp, id, flags, now);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot mark %s: %s", id, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}
