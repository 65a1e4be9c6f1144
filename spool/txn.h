/*
 * NAME
 *	txn - a message's records, read and written inside a transaction
 * SYNOPSIS
 *	#include "spool/txn.h"
 * DESCRIPTION
 *	The one place that reads and writes the records of messages.db and
 *	recipients.db (spool.c and schedule.c both go through it). Every
 *	call works inside the caller's transaction (or, where it says so,
 *	none) and neither retries nor logs a BerkeleyDB error: the caller
 *	owns the transaction and knows what failed. A record that does not
 *	decode is logged here and reads as missing (DB_NOTFOUND).
 *
 *	Not for use outside spool/.
 */
#ifndef MXLANE_TXN_H
#define MXLANE_TXN_H

#include "spool/spool_impl.h"

/* Stores one key and value in db. */
int spool_put(DB *db, DB_TXN *txn, const void *k, size_t klen, const void *v,
    size_t vlen, u_int32_t flags);

/*
 * One envelope or recipient. flags go to DB->get: DB_RMW to lock it for
 * the write that follows, DB_READ_UNCOMMITTED (txn NULL) for a reader
 * that needs no isolation.
 */
int txn_read_msg(struct spool *sp, DB_TXN *txn, const char *id,
    struct spool_msg *msg, u_int32_t flags);
int txn_write_msg(struct spool *sp, DB_TXN *txn, const struct spool_msg *msg);
int txn_read_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    uint32_t index, struct spool_rcpt *r, u_int32_t flags);
int txn_write_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    const struct spool_rcpt *r);

/*
 * Calls fn for every recipient record of id, in index order (damaged
 * ones are skipped); r is freed after fn returns. Stops at fn's first
 * non-zero return, and returns it.
 */
int txn_each_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    u_int32_t flags, int (*fn)(void *ctx, struct spool_rcpt *r), void *ctx);

#endif
