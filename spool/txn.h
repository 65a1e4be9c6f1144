/*
 * NAME
 *	txn - a message's records, read and written inside a transaction
 * SYNOPSIS
 *	#include "spool/txn.h"
 * DESCRIPTION
 *	The one place that reads and writes a message's records: its
 *	envelope (messages.db), recipients (recipients.db), content chunks
 *	(content.db; spool_read_chunk in spool.c reads them back) and
 *	schedule keys (schedule.db). spool.c and schedule.c both go through
 *	it, and it needs neither of them: below it is only record.c, which
 *	lays out the bytes.
 *
 *	Every call works inside the caller's transaction (or, where it says
 *	so, none) and neither retries nor logs a BerkeleyDB error: the
 *	caller owns the transaction and knows what failed. A record that
 *	does not decode is logged here and reads as missing (DB_NOTFOUND).
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
 * Walks the records of db (recipients or content) whose key is id NUL
 * index, in index order, calling fn with each value and the cursor c
 * on its record (fn may c->del it). Stops at fn's first non-zero
 * return and returns it; else 0, or BerkeleyDB's error.
 */
#define SUBKEY_READ_UNCOMMITTED	0x01	/* txn NULL: no isolation needed */
#define SUBKEY_RMW		0x02	/* lock each record for writing */
#define SUBKEY_KEYS_ONLY	0x04	/* fn gets no value (len 0) */
typedef int (*txn_subkey_fn)(void *ctx, DBC *c, const void *data,
    size_t len);
int txn_each_subkey(DB *db, DB_TXN *txn, const char *id, unsigned flags,
    txn_subkey_fn fn, void *ctx);

/*
 * Calls fn for every recipient record of id, in index order (damaged
 * ones are skipped); r is freed after fn returns. Stops at fn's first
 * non-zero return, and returns it.
 */
int txn_each_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    int (*fn)(void *ctx, struct spool_rcpt *r), void *ctx);
/*
 * All recipients of id in a new array (free with spool_rcpts_free),
 * read without a transaction or isolation, as mailq and spool_get do;
 * damaged ones are logged and left out.
 */
int txn_read_rcpts(struct spool *sp, const char *id, struct spool_rcpt **out,
    size_t *nout);
/* Deletes every record of db (recipients or content) of message id. */
int txn_delete_subkeys(DB *db, DB_TXN *txn, const char *id);

/*
 * The schedule index (schedule.db, see schedule.c): a pending
 * recipient's key is in the class of its message's lane (SCHED_*), at
 * txn_rcpt_key_due(); its value is the recipient's domain. A finish
 * key (SCHED_FINISH, due 0, SCHED_FINISH_INDEX) has no address (NULL).
 */
int spool_lane_class(const char *lane);
bool txn_rcpt_pending(const struct spool_rcpt *r);
/* Whether r has a schedule key: pending, and not queued in a held message. */
bool txn_rcpt_scheduled(const struct spool_msg *msg, const struct spool_rcpt *r);
int64_t txn_rcpt_key_due(const struct spool_rcpt *r);
/* The lower-cased domain of address ("" without one) into out. */
void txn_domain_of(const char *address, struct buf *out);
int spool_schedule_put(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index, const char *address);
int spool_schedule_del(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index);
/* Deletes every schedule key of message id, its finish key too. */
int spool_schedule_drop_message(struct spool *sp, DB_TXN *txn,
    const char *id);

/*
 * A whole message: stores a new one (envelope under a fresh queue id,
 * recipients, content chunks, schedule keys; see spool_submit), or
 * removes one with all of that.
 */
int spool_submit_txn(struct spool *sp, DB_TXN *txn, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, spool_prefix_fn prefix,
    void *prefix_ctx, const char *body, size_t body_len);
int spool_remove_txn(struct spool *sp, DB_TXN *txn, const char *id);

#endif
