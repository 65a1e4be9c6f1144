/*
 * NAME
 *	pickup - from the maildrop into the queue
 * DESCRIPTION
 *	See spool_pickup() in spool.h. Files are taken (locked, see
 *	maildrop.c) a batch at a time and queued in one durable
 *	transaction, then removed.
 *
 *	Each file leaves a tombstone in pickup.db (its name and nonce),
 *	written in the same transaction as its message: a crash after the
 *	commit and before the file is removed would otherwise queue the
 *	message twice, perhaps after the first copy was delivered. A file
 *	whose tombstone matches is removed without being queued again.
 *	Tombstones go once the removal of their files is durable.
 *
 *	A file named by a queue id already in use (the clock went back)
 *	is queued under a new id and logged: its Received: header names
 *	the old one.
 */
#include <db.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/maildrop.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define BATCH_FILES	128
#define BATCH_BYTES	(16u << 20)

struct taken {
	int fd;				/* holds the file's lock */
	struct maildrop_msg m;
	bool done_before;		/* its tombstone says: queued already */
	char queued_as[SPOOL_ID_SIZE];
};

static int
tombstone_matches(struct spool *sp, DB_TXN *txn, const struct taken *t,
    bool *match)
{
	DBT key, val;
	unsigned char stored[8];

	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)t->m.msg.id;
	key.size = SPOOL_ID_LEN;
	val.data = stored;
	val.ulen = sizeof(stored);
	val.flags = DB_DBT_USERMEM;
	int rc = sp->pickup->get(sp->pickup, txn, &key, &val, DB_RMW);
	*match = false;
	if (rc == DB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	uint64_t nonce = 0;
	for (int i = 0; i < 8 && i < (int)val.size; i++)
		nonce = nonce << 8 | stored[i];
	*match = val.size == 8 && nonce == t->m.nonce;
	return 0;
}

static int
tombstone_put(struct spool *sp, DB_TXN *txn, const struct taken *t)
{
	unsigned char v[8];

	for (int i = 0; i < 8; i++)
		v[i] = (unsigned char)(t->m.nonce >> (56 - 8 * i));
	return spool_put(sp->pickup, txn, t->m.msg.id, SPOOL_ID_LEN, v,
	    sizeof(v), 0);
}

static int
queue_one(struct spool *sp, DB_TXN *txn, struct taken *t)
{
	struct spool_msg msg = t->m.msg;	/* shallow: strings are t's */
	bool match;
	int rc;

	if ((rc = tombstone_matches(sp, txn, t, &match)) != 0)
		return rc;
	if (match) {
		t->done_before = true;
		return 0;
	}
	rc = spool_submit_txn(sp, txn, &msg, t->m.rcpts, t->m.nrcpt, NULL,
	    NULL, t->m.content, t->m.len);
	if (rc == DB_KEYEXIST) {
		msg.id[0] = '\0';	/* a new id, from the clock */
		rc = spool_submit_txn(sp, txn, &msg, t->m.rcpts, t->m.nrcpt,
		    NULL, NULL, t->m.content, t->m.len);
	}
	if (rc != 0)
		return rc;
	memcpy(t->queued_as, msg.id, SPOOL_ID_SIZE);
	return tombstone_put(sp, txn, t);
}

static int
queue_batch_once(struct spool *sp, struct taken *batch, size_t n)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		batch[i].done_before = false;
		if ((rc = queue_one(sp, txn, &batch[i])) != 0) {
			txn->abort(txn);
			return rc;
		}
	}
	return txn->commit(txn, 0);
}

static void
forget_tombstones(struct spool *sp, struct taken *batch, size_t n)
{
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, attempt) {
		DB_TXN *txn;
		if ((rc = sp->env->txn_begin(sp->env, NULL, &txn,
		    DB_TXN_NOSYNC)) != 0)
			continue;
		for (size_t i = 0; i < n && rc == 0; i++) {
			DBT key;
			memset(&key, 0, sizeof(key));
			key.data = batch[i].m.msg.id;
			key.size = SPOOL_ID_LEN;
			rc = sp->pickup->del(sp->pickup, txn, &key, 0);
			if (rc == DB_NOTFOUND)
				rc = 0;
		}
		if (rc == 0)
			rc = txn->commit(txn, 0);
		else
			txn->abort(txn);
	}
	/* Left behind, a tombstone only costs a few bytes. */
}

static void
release_batch(struct taken *batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		close(batch[i].fd);
		maildrop_msg_free(&batch[i].m);
	}
}

static int
pickup_batch(struct spool *sp, struct taken *batch, size_t n, size_t *count)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, attempt) {
		spool_insert_turn(sp, LOCK_EX);
		rc = queue_batch_once(sp, batch, n);
		spool_insert_turn(sp, LOCK_UN);
	}
	if (rc != 0) {
		log_error("spool: cannot pick up %zu new message(s): %s", n,
		    rc > 0 ? strerror(rc) : db_strerror(rc));
		release_batch(batch, n);
		return SPOOL_ERR;
	}
	/* A backlog of files is megabytes of log: see spool_impl.h. */
	spool_checkpoint_due(sp);
	for (size_t i = 0; i < n; i++) {
		struct taken *t = &batch[i];
		if (!t->done_before) {
			(*count)++;
			if (strcmp(t->queued_as, t->m.msg.id) != 0)
				log_warn("%s: queue id in use, queued as %s",
				    t->m.msg.id, t->queued_as);
		}
		if (unlinkat(sp->maildrop, t->m.msg.id, 0) != 0)
			log_error("spool: cannot remove %s/%s/%s: %s",
			    sp->dir, MAILDROP_DIR, t->m.msg.id,
			    strerror(errno));
	}
	/* The removals must be durable before their tombstones go. */
	if (fsync(sp->maildrop) == 0)
		forget_tombstones(sp, batch, n);
	release_batch(batch, n);
	return SPOOL_OK;
}

/*
 * Nothing new since the last look? A runner asks between connections,
 * so an idle maildrop must cost one fstat, not a directory read. The
 * directory's mtime moves when a file is added; a file that was still
 * being written at the last look does not move it, so then we look
 * again anyway, and so we do within a second of any change (mtime
 * ticks are coarser than submissions).
 */
static bool
maildrop_unchanged(struct spool *sp, struct timespec *now_seen)
{
	struct stat st;

	if (fstat(sp->maildrop, &st) != 0)
		return false;
	*now_seen = st.st_mtim;
	if (sp->maildrop_left || time(NULL) - st.st_mtim.tv_sec < 2)
		return false;
	return st.st_mtim.tv_sec == sp->maildrop_seen.tv_sec &&
	    st.st_mtim.tv_nsec == sp->maildrop_seen.tv_nsec;
}

int
spool_pickup(struct spool *sp, const char *only_id, size_t *countp)
{
	char (*ids)[SPOOL_ID_SIZE] = NULL;
	size_t nids = 0, count = 0, nbatch = 0, bytes = 0;
	struct taken *batch;
	struct timespec seen = {0, 0};
	bool left = false;
	int rc = SPOOL_OK;

	if (countp)
		*countp = 0;
	if (only_id == NULL && maildrop_unchanged(sp, &seen))
		return SPOOL_OK;
	batch = xcalloc(BATCH_FILES, sizeof(*batch));
	if (only_id) {
		ids = xmalloc(sizeof(*ids));
		snprintf(ids[0], SPOOL_ID_SIZE, "%s", only_id);
		nids = 1;
	} else if (maildrop_list(sp->maildrop, &ids, &nids) != 0) {
		log_error("spool: cannot read %s/%s: %s", sp->dir,
		    MAILDROP_DIR, strerror(errno));
		free(batch);
		return SPOOL_ERR;
	}
	for (size_t i = 0; i < nids && rc == SPOOL_OK; i++) {
		struct taken *t = &batch[nbatch];
		switch (maildrop_take(sp->maildrop, ids[i], &t->fd, &t->m)) {
		case MAILDROP_READY:
			nbatch++;
			bytes += t->m.len;
			break;
		case MAILDROP_STALE:
			log_warn("spool: removed %s/%s/%s: never completed by "
			    "its submitter", sp->dir, MAILDROP_DIR, ids[i]);
			(void)unlinkat(sp->maildrop, ids[i], 0);
			break;
		case MAILDROP_BAD:
			log_error("spool: %s/%s/%s is not a maildrop file of "
			    "this spool's owner; left alone", sp->dir,
			    MAILDROP_DIR, ids[i]);
			break;
		case MAILDROP_GONE:
			break;
		default:	/* busy or incomplete: another time */
			left = true;
			break;
		}
		if (nbatch == BATCH_FILES || bytes >= BATCH_BYTES ||
		    (i + 1 == nids && nbatch > 0)) {
			rc = pickup_batch(sp, batch, nbatch, &count);
			nbatch = 0;
			bytes = 0;
		}
	}
	free(ids);
	free(batch);
	if (only_id == NULL && rc == SPOOL_OK) {
		sp->maildrop_seen = seen;
		sp->maildrop_left = left;
	}
	if (countp)
		*countp = count;
	return rc;
}

bool
spool_pickup_left(const struct spool *sp)
{
	return sp->maildrop_left;
}

bool
spool_maildrop_changed(struct spool *sp, bool left)
{
	struct timespec seen = {0, 0};

	sp->maildrop_left = left;
	if (maildrop_unchanged(sp, &seen))
		return false;
	sp->maildrop_seen = seen;
	sp->maildrop_left = false;
	return true;
}

int
spool_scan_maildrop(struct spool *sp, spool_scan_fn fn, void *ctx)
{
	char (*ids)[SPOOL_ID_SIZE] = NULL;
	size_t n = 0;

	if (maildrop_list(sp->maildrop, &ids, &n) != 0) {
		log_error("spool: cannot read %s/%s: %s", sp->dir,
		    MAILDROP_DIR, strerror(errno));
		return SPOOL_ERR;
	}
	for (size_t i = 0; i < n; i++) {
		struct maildrop_msg m;
		/* Incomplete or gone meanwhile: not (or no longer) waiting. */
		if (maildrop_peek(sp->maildrop, ids[i], &m) != 0)
			continue;
		int stop = fn(ctx, &m.msg, m.rcpts, m.nrcpt);
		maildrop_msg_free(&m);
		if (stop)
			break;
	}
	free(ids);
	return SPOOL_OK;
}
