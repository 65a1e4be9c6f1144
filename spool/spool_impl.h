/*
 * NAME
 *	spool_impl - what the spool's own source files share
 * DESCRIPTION
 *	The environment's handles (struct spool), the retry loop and the
 *	watchdog guard, all kept by spool.c and used by every file here.
 *	Reading and writing a message's records is txn.h's; their byte
 *	layout is record.h's.
 *
 *	Not for use outside spool/: callers go through spool.h and never
 *	see a BerkeleyDB handle.
 */
#ifndef MXLANE_SPOOL_IMPL_H
#define MXLANE_SPOOL_IMPL_H

#include <db.h>
#include <stdbool.h>
#include <time.h>

#include "spool/spool.h"

/* About 10 s of backing off before an operation gives up. */
#define SPOOL_TXN_RETRIES 400

struct aliasmap;

struct spool {
	char *dir;
	int dirfd;	/* the spool directory, for openat() */
	int maildrop;	/* its maildrop directory */
	DB_ENV *env;
	DB *messages;
	DB *recipients;
	DB *content;
	DB *schedule;
	DB *throttle;
	DB *pickup;
	DB *suppress;	/* the suppression list (suppress.c) */
	DB *shaping;	/* what providers said (shaping.c) */
	DB *stats;	/* delivery counters (stats.c) */
	struct aliasmap *aliasmap;	/* opened at the first look-up */
	int insert_lock;	/* fd of insert.lock, see spool_insert_turn() */
	struct timespec maildrop_seen;	/* its mtime at the last pickup */
	bool maildrop_left;	/* that pickup left files it could not take */
	int open_lock;	/* fd of open.lock, see spool_open_handles() */
};

/*
 * Whether to run a transaction again, given what the last run returned
 * (attempt 0: the first run, always). Transactions never wait for a
 * lock (DB_TXN_NOWAIT): a conflict returns at once and we back off and
 * retry here, rejoining the environment now and then so that a holder
 * that died is noticed and recovered. A process blocked inside the lock
 * manager could not be woken if the holder died; one that backs off can.
 * DB_RUNRECOVERY (another process recovered the environment) reopens
 * the handles and retries.
 */
bool spool_retryable(struct spool *sp, int rc, int attempt);

/*
 * Transactions that add new messages take turns (an flock, which the
 * kernel drops if a holder dies): every new message adds keys at the
 * same end of the same b-trees, and transactions that never wait for a
 * lock (DB_TXN_NOWAIT) collide there, back off, and can starve one
 * another. Only the spool owner's processes take it (a runner picking
 * up, a tool queueing directly), never a submitter. op: LOCK_EX or
 * LOCK_UN.
 */
void spool_insert_turn(struct spool *sp, int op);
#define SPOOL_RETRY(sp, rc, i) \
	for (int i = 0; i < SPOOL_TXN_RETRIES && spool_retryable(sp, rc, i); \
	    i++)

/*
 * After a change that wrote to the log: a checkpoint if 1 MiB of log or
 * 5 minutes have passed since the last one (cheap otherwise). Until a
 * checkpoint, changed pages stay in the cache and every log file is
 * kept; the logs it no longer needs go (DB_LOG_AUTO_REMOVE).
 */
void spool_checkpoint_due(struct spool *sp);

/*
 * What a spool call returns after its retries: SPOOL_OK for 0, else
 * SPOOL_ERR with "spool: WHAT: <BerkeleyDB's reason>" logged. A call
 * for which DB_NOTFOUND is an answer checks for it first.
 */
int spool_db_result(int rc, const char *fmt, ...) MXL_PRINTF(2, 3);

/*
 * Watchdog: a spool call that takes longer than the limit set with
 * spool_set_watchdog() raises SIGALRM (the program's handler decides),
 * because a process killed while holding a BerkeleyDB mutex leaves
 * waiters that nothing else would ever wake.
 */
struct spool_guard {
	int unused;
};
struct spool_guard spool_guard_begin(void);
void spool_guard_end(struct spool_guard *g);
#define SPOOL_GUARD \
	struct spool_guard spool_guard_ \
	    __attribute__((cleanup(spool_guard_end))) = spool_guard_begin()

#endif
