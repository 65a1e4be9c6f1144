/*
 * NAME
 *	msgflags - marks on a message's envelope
 * DESCRIPTION
 *	spool_msg_add_flags() sets SPOOL_MSG_* marks that change nothing
 *	of the message's schedule (SPOOL_MSG_SCANNED: the content gate
 *	has scored it). Putting a message on hold changes its schedule,
 *	and goes through spool_admin_apply() (admin.c), for the content
 *	gate as for "queuerun hold".
 */
#include <string.h>

#include "lib/log.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

static int
update_once(struct spool *sp, const char *id, uint32_t set)
{
	DB_TXN *txn;
	struct spool_msg msg;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = txn_read_msg(sp, txn, id, &msg, DB_RMW)) != 0)
		goto err;
	msg.flags |= set;
	rc = txn_write_msg(sp, txn, &msg);
	spool_msg_free(&msg);
	if (rc != 0)
		goto err;
	/* A lost mark costs one more scan. */
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
err:
	txn->abort(txn);
	return rc;
}

int
spool_msg_add_flags(struct spool *sp, const char *id, uint32_t flags)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	if (!spool_id_valid(id) || (flags & SPOOL_MSG_HELD))
		return SPOOL_ERR;
	SPOOL_RETRY(sp, rc, i)
		rc = update_once(sp, id, flags);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return spool_db_result(rc, "cannot mark %s", id);
}
