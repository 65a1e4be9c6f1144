/*
 * NAME
 *	spool_impl - what the spool's own source files share
 * DESCRIPTION
 *	Not for use outside spool/: callers go through spool.h and never
 *	see a BerkeleyDB handle.
 */
#ifndef MXLANE_SPOOL_IMPL_H
#define MXLANE_SPOOL_IMPL_H

#include <db.h>
#include <stdbool.h>

#include "spool/spool.h"

#define SPOOL_TXN_RETRIES 20

struct spool {
	char *dir;
	DB_ENV *env;
	DB *messages;
	DB *recipients;
	DB *content;
	DB *aliases;
	DB *schedule;
	DB *throttle;
	int open_lock;	/* fd of open.lock, see spool_open_handles() */
};

/* Shared between spool.c and schedule.c; all work inside txn. */
int spool_put(DB *db, DB_TXN *txn, const void *k, size_t klen, const void *v,
    size_t vlen, u_int32_t flags);
int spool_submit_txn(struct spool *sp, DB_TXN *txn, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, spool_prefix_fn prefix,
    void *prefix_ctx, const char *body, size_t body_len);
int spool_remove_txn(struct spool *sp, DB_TXN *txn, const char *id);

/* Schedule classes: the first byte of a schedule key. */
#define SCHED_PRIORITY	0	/* the priority lane, always looked at first */
#define SCHED_NORMAL	1	/* every other lane */
#define SCHED_FINISH	2	/* messages waiting for spool_finish() */
int spool_lane_class(const char *lane);
int spool_schedule_put(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index, const char *address);
int spool_schedule_del(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index);
int spool_schedule_drop_message(struct spool *sp, DB_TXN *txn,
    const char *id);

/* Deadlock victims and lock time-outs: abort and run the txn again. */
static inline bool
spool_retryable(int rc)
{
	return rc == DB_LOCK_DEADLOCK || rc == DB_LOCK_NOTGRANTED;
}

#endif
