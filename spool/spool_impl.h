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
	int open_lock;	/* fd of open.lock, see spool_open_handles() */
};

/* Deadlock victims and lock time-outs: abort and run the txn again. */
static inline bool
spool_retryable(int rc)
{
	return rc == DB_LOCK_DEADLOCK || rc == DB_LOCK_NOTGRANTED;
}

#endif
