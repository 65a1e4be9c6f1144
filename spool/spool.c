/*
 * NAME
 *	spool - the transactional BerkeleyDB mail queue
 * DESCRIPTION
 *	See spool.h for the contract. How it is kept:
 *
 *	messages.db	btree, queue id -> envelope record
 *	recipients.db	btree, id NUL index -> recipient record
 *	content.db	btree, id NUL chunk -> up to 64 KiB of content
 *	pickup.db	btree, maildrop file name -> nonce (see pickup.c)
 *	schedule.db	btree, class due id index -> domain (see schedule.c)
 *	throttle.db	btree, name -> counters and leases (see throttle.c),
 *			and "cache|name" -> a kept value (see cache.c)
 *	suppress.db	btree, the suppression list (see suppress.c)
 *	shaping.db	btree, what providers said: suspensions, lowered
 *			rates, deferrals, warm-up counts (see shaping.c)
 *	stats.db	btree of small pages, delivery counters written with
 *			each outcome (see stats.c)
 *
 *	Queue ids are the arrival time, so btree order is arrival order and
 *	mailq lists oldest first without sorting anything.
 *
 *	This file keeps the environment (opening, recovery, retries, the
 *	watchdog) and the message verbs: submit, get, scan, remove, and
 *	reading content back. The records themselves are read and written
 *	by txn.c and laid out by record.c; schedule.c and throttle.c hold
 *	the verbs of their own tables.
 *
 *	Every process opens the environment with DB_REGISTER | DB_RECOVER:
 *	BerkeleyDB then notices on its own when a process died inside the
 *	environment and runs recovery before letting the next one in.
 *	Processes that were inside during such a recovery get
 *	DB_RUNRECOVERY; spool_submit() reopens and tries again rather than
 *	failing the caller.
 *
 *	New messages arrive through the maildrop (maildrop.c, pickup.c),
 *	never straight from a submitter; the aliases table is a file of its
 *	own beside the environment (aliasdb.c). Only the spool's owner
 *	opens anything here: files are 0600 and the directory 0700.
 * DIAGNOSTICS
 *	BerkeleyDB's own messages go to the log through an error callback.
 */
#include "spool/spool.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/maildrop.h"
#include "spool/spool_impl.h"
#include "spool/stats.h"
#include "spool/txn.h"

/*
 * Content pages of 64 KiB: a message up to about 16 KiB is stored in the
 * b-tree leaf itself, many to a page, and a bigger one in chunks that
 * fill one overflow page each (the chunk, SPOOL_CHUNK_SIZE, leaves room
 * for the page's header; txn.c writes them). Smaller pages waste half of
 * each overflow page on the 4 KB messages that are most of the mail.
 */
/* Only the spool's owner ever opens its files (see lib/proc.h). */
#define FILE_MODE	0600

static void
bdb_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
	(void)env;
	(void)prefix;
	log_error("spool: %s", msg);
}

static int
open_db(struct spool *sp, DB_TXN *txn, DB **dbp, const char *file,
    DBTYPE type, u_int32_t pagesize)
{
	DB *db;
	int rc = db_create(&db, sp->env, 0);

	if (rc != 0)
		return rc;
	if (pagesize)
		db->set_pagesize(db, pagesize);
	/* Readers that need no isolation (mailq) never wait on writers. */
	rc = db->open(db, txn, file, NULL, type, DB_CREATE |
	    DB_READ_UNCOMMITTED, FILE_MODE);
	if (rc != 0) {
		db->close(db, DB_NOSYNC);
		return rc;
	}
	*dbp = db;
	return 0;
}

/*
 * Opens the tables in one transaction. It need not be durable
 * (recovery recreates what it did), so it costs no fsync: a submission
 * pays for exactly one, its own commit.
 */
static int
open_tables(struct spool *sp)
{
	DB_TXN *txn;
	int rc;

	/*
	 * This one transaction may wait for locks (DB_TXN_WAIT): opening
	 * a table needs its meta page, which a writer growing the table
	 * holds until it commits, a moment later. (A holder that died is
	 * recovered by DB_REGISTER before we get here, or the watchdog
	 * ends the wait.)
	 */
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, DB_TXN_NOSYNC |
	    DB_TXN_WAIT)))
		return rc;
	if ((rc = open_db(sp, txn, &sp->messages, "messages.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->recipients, "recipients.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->content, "content.db", DB_BTREE,
	    64 * 1024)) ||
	    (rc = open_db(sp, txn, &sp->schedule, "schedule.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->throttle, "throttle.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->pickup, "pickup.db", DB_BTREE, 0)) ||
	    (rc = open_db(sp, txn, &sp->suppress, "suppress.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->shaping, "shaping.db", DB_BTREE,
	    0)) ||
	    (rc = open_db(sp, txn, &sp->stats, "stats.db", DB_BTREE,
	    STATS_PAGESIZE))) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

/*
 * BerkeleyDB 5.3's DB_REGISTER reads a process's registry slot and only
 * then tries its lock; a process leaving the environment between the two
 * looks dead, and an innocent recovery panics everyone inside. Entering
 * and leaving the environment under one exclusive flock closes that
 * window. The kernel drops the flock of a killed process, so a crash
 * never leaves it held.
 */
static void
open_lock(struct spool *sp, int op)
{
	if (sp->open_lock < 0)
		return;
	while (flock(sp->open_lock, op) != 0 && errno == EINTR)
		;
}

static void
spool_close_handles(struct spool *sp)
{
	DB **dbs[] = {&sp->messages, &sp->recipients, &sp->content,
	    &sp->schedule, &sp->throttle, &sp->pickup, &sp->suppress,
	    &sp->shaping, &sp->stats};

	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		/* Committed work is in the log already; no page flush. */
		if (*dbs[i])
			(*dbs[i])->close(*dbs[i], DB_NOSYNC);
		*dbs[i] = NULL;
	}
	if (sp->env) {
		open_lock(sp, LOCK_EX);
		sp->env->close(sp->env, 0);
		open_lock(sp, LOCK_UN);
	}
	sp->env = NULL;
}

static int
spool_open_handles(struct spool *sp)
{
	DB_ENV *env;
	int rc;

	if ((rc = db_env_create(&env, 0)) != 0) {
		log_error("spool: db_env_create: %s", db_strerror(rc));
		return rc;
	}
	sp->env = env;
	env->set_errcall(env, bdb_errcall);
	/* Deadlocks between submitters and runners are broken at once. */
	env->set_lk_detect(env, DB_LOCK_DEFAULT);
	/*
	 * A process killed inside a transaction leaves locks behind. No
	 * transaction here ever waits for a lock (see spool_retryable), so
	 * nobody sleeps on a lock a dead process holds; recovery, run by
	 * the next process to join (DB_REGISTER), clears them.
	 */
	env->set_flags(env, DB_TXN_NOWAIT, 1);
	env->set_lk_max_locks(env, 20000);
	env->set_lk_max_objects(env, 20000);
	env->set_lk_max_lockers(env, 4000);
	env->set_cachesize(env, 0, 8 * 1024 * 1024, 1);
	/* Many more processes than cores: yield at once, never spin. */
	env->mutex_set_tas_spins(env, 1);
	env->set_lg_bsize(env, 1024 * 1024);
	env->set_lg_max(env, 8 * 1024 * 1024);
	env->set_lg_regionmax(env, 256 * 1024);
	/* Disk use stays bounded: logs go once a checkpoint covers them. */
	env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);
	open_lock(sp, LOCK_EX);
	rc = env->open(env, sp->dir, DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG |
	    DB_INIT_MPOOL | DB_INIT_TXN | DB_REGISTER | DB_RECOVER, FILE_MODE);
	open_lock(sp, LOCK_UN);
	if (rc != 0) {
		log_error("spool: cannot open environment %s: %s", sp->dir,
		    db_strerror(rc));
		goto err;
	}
	if ((rc = open_tables(sp)) != 0) {
		log_error("spool: cannot open the tables in %s: %s", sp->dir,
		    db_strerror(rc));
		goto err;
	}
	return 0;
err:
	spool_close_handles(sp);
	return rc;
}

int
spool_open(const char *dir, struct spool **out)
{
	SPOOL_GUARD;
	struct spool *sp = xcalloc(1, sizeof(*sp));
	struct stat st;

	sp->open_lock = -1;
	sp->dirfd = -1;
	sp->insert_lock = -1;
	sp->dir = xstrdup(dir);
	sp->maildrop = -1;
	/*
	 * The caller made sure the directory is ours alone
	 * (proc_become_owner); the spool is never created here, so that
	 * nobody's mistake makes one with the wrong owner.
	 */
	if ((sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(sp->dirfd, &st) != 0) {
		log_error("spool: cannot use spool directory %s: %s", dir,
		    strerror(errno));
		goto err;
	}
	sp->open_lock = openat(sp->dirfd, "open.lock", O_RDWR | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
	if (sp->open_lock < 0) {
		log_error("spool: cannot open %s/open.lock: %s", dir,
		    strerror(errno));
		goto err;
	}
	if ((sp->maildrop = maildrop_open_dir(sp->dirfd)) < 0) {
		log_error("spool: cannot open %s/%s: %s", dir, MAILDROP_DIR,
		    strerror(errno));
		goto err;
	}
	/*
	 * A table file another process is growing can look torn for an
	 * instant (BerkeleyDB: "file size not a multiple of the pagesize"),
	 * and a recovery run by another process invalidates what we joined:
	 * both pass, so try again briefly before giving up.
	 */
	for (int attempt = 0;; attempt++) {
		int rc = spool_open_handles(sp);
		if (rc == 0)
			break;
		if (rc == EACCES || rc == EPERM || rc == ENOSPC ||
		    attempt >= 20)
			goto err;
		usleep(5000 + 5000 * attempt);
	}
	*out = sp;
	return SPOOL_OK;
err:
	if (sp->open_lock >= 0)
		close(sp->open_lock);
	if (sp->maildrop >= 0)
		close(sp->maildrop);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	free(sp->dir);
	free(sp);
	return SPOOL_ERR;
}

static int
spool_reopen(struct spool *sp)
{
	spool_close_handles(sp);
	return spool_open_handles(sp);
}

static int watchdog_seconds;
static int guard_depth;

void
spool_set_watchdog(int seconds)
{
	watchdog_seconds = seconds;
}

struct spool_guard
spool_guard_begin(void)
{
	struct spool_guard g = {0};

	if (guard_depth++ == 0 && watchdog_seconds > 0)
		alarm((unsigned)watchdog_seconds);
	return g;
}

void
spool_guard_end(struct spool_guard *g)
{
	(void)g;
	if (--guard_depth == 0 && watchdog_seconds > 0)
		alarm(0);
}

bool
spool_retryable(struct spool *sp, int rc, int attempt)
{
	if (attempt == 0)
		return true;
	if (rc == DB_RUNRECOVERY) {
		/* Another process recovered the environment: join the new one. */
		return spool_reopen(sp) == 0;
	}
	if (rc != DB_LOCK_DEADLOCK && rc != DB_LOCK_NOTGRANTED)
		return false;
	/*
	 * Still refused after a while: perhaps the holder is dead. Joining
	 * the environment again lets DB_REGISTER notice that and recover
	 * (failchk could do it in place, but it waits on the mutexes a dead
	 * process may hold, and would hang us instead).
	 */
	if (attempt % 64 == 0 && spool_reopen(sp) != 0)
		return false;
	/* Back off a little more each time, with jitter, up to 25 ms. */
	long us = 200L * (attempt < 100 ? attempt : 100);
	us += random() % (us + 1);
	if (us > 25000)
		us = 25000;
	usleep((useconds_t)us);
	return true;
}

int
spool_db_result(int rc, const char *fmt, ...)
{
	struct buf what = BUF_INIT;
	va_list ap;

	if (rc == 0)
		return SPOOL_OK;
	va_start(ap, fmt);
	buf_vprintf(&what, fmt, ap);
	va_end(ap);
	log_error("spool: %s: %s", what.data, db_strerror(rc));
	buf_free(&what);
	return SPOOL_ERR;
}

void
spool_close(struct spool *sp)
{
	SPOOL_GUARD;
	if (sp == NULL)
		return;
	if (sp->env)
		spool_checkpoint_due(sp);
	spool_close_handles(sp);
	close(sp->open_lock);
	close(sp->maildrop);
	close(sp->dirfd);
	if (sp->insert_lock >= 0)
		close(sp->insert_lock);
	aliasmap_close(sp->aliasmap);
	free(sp->dir);
	free(sp);
}

const char *
spool_directory(const struct spool *sp)
{
	return sp->dir;
}

int
spool_directory_fd(const struct spool *sp)
{
	return sp->dirfd;
}

void
spool_checkpoint_due(struct spool *sp)
{
	(void)sp->env->txn_checkpoint(sp->env, 1024, 5, 0);
}

void
spool_insert_turn(struct spool *sp, int op)
{
	if (sp->insert_lock < 0) {
		sp->insert_lock = openat(sp->dirfd, "insert.lock", O_RDWR |
		    O_CREAT | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
		if (sp->insert_lock < 0)
			return;		/* then BerkeleyDB's locks alone */
	}
	while (flock(sp->insert_lock, op) != 0 && errno == EINTR)
		;
}

static int
submit_once(struct spool *sp, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, spool_prefix_fn prefix,
    void *prefix_ctx, const char *body, size_t body_len)
{
	DB_TXN *txn = NULL;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = spool_submit_txn(sp, txn, msg, rcpts, nrcpt, prefix, prefix_ctx,
	    body, body_len);
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	/* The default commit flushes the log to disk: durable on return. */
	return txn->commit(txn, 0);
}

int
spool_submit(struct spool *sp, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, spool_prefix_fn prefix,
    void *prefix_ctx, const char *body, size_t body_len)
{
	int rc = DB_LOCK_DEADLOCK;
	SPOOL_GUARD;

	SPOOL_RETRY(sp, rc, attempt) {
		spool_insert_turn(sp, LOCK_EX);
		rc = submit_once(sp, msg, rcpts, nrcpt, prefix, prefix_ctx,
		    body, body_len);
		spool_insert_turn(sp, LOCK_UN);
		if (rc == 0) {
			spool_checkpoint_due(sp);
			return SPOOL_OK;
		}
	}
	log_error("spool: cannot queue message in %s: %s", sp->dir,
	    rc > 0 ? strerror(rc) : db_strerror(rc));
	return SPOOL_ERR;
}

static int
get_once(struct spool *sp, const char *id, struct spool_msg *msg,
    struct spool_rcpt **rcpts, size_t *nrcpt)
{
	int rc;

	if ((rc = txn_read_msg(sp, NULL, id, msg, DB_READ_UNCOMMITTED)) != 0)
		return rc;
	if (rcpts == NULL)
		return 0;
	if ((rc = txn_read_rcpts(sp, id, rcpts, nrcpt)) != 0)
		spool_msg_free(msg);
	return rc;
}

int
spool_get(struct spool *sp, const char *id, struct spool_msg *msg,
    struct spool_rcpt **rcpts, size_t *nrcpt)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = get_once(sp, id, msg, rcpts, nrcpt);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot read %s: %s", id, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

int
spool_read_chunk(struct spool *sp, const char *id, uint32_t index,
    struct buf *out)
{
	SPOOL_GUARD;
	unsigned char k[RECORD_SUBKEY_LEN];
	DBT key, val;
	int rc = DB_LOCK_DEADLOCK;

	record_subkey(id, index, k);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = sizeof(k);
	SPOOL_RETRY(sp, rc, i) {
		memset(&val, 0, sizeof(val));
		val.flags = DB_DBT_MALLOC;
		rc = sp->content->get(sp->content, NULL, &key, &val,
		    DB_READ_UNCOMMITTED);
	}
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot read %s chunk %u: %s", id, index,
		    db_strerror(rc));
		return SPOOL_ERR;
	}
	buf_reset(out);
	buf_append(out, val.data, val.size);
	free(val.data);
	return SPOOL_OK;
}

/* Chunks are numbered from 0 without a gap: the first missing one ends it. */
int
spool_read_content(struct spool *sp, const char *id,
    int (*fn)(void *ctx, const char *data, size_t len), void *ctx)
{
	SPOOL_GUARD;
	struct buf chunk = BUF_INIT;
	uint32_t index = 0;
	int rc, stop = 0;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	while ((rc = spool_read_chunk(sp, id, index++, &chunk)) == SPOOL_OK)
		if ((stop = fn(ctx, chunk.data, chunk.len)) != 0)
			break;
	buf_free(&chunk);
	if (stop)
		return stop;
	return rc == SPOOL_NOTFOUND ? SPOOL_OK : SPOOL_ERR;
}

/*
 * Finds the first message after 'after' (or the first of all), with its
 * recipients, then lets go of every lock before the caller sees it: a
 * slow reader (mailq into a pager) must not hold up submitters.
 */
static int
scan_next(struct spool *sp, const char *after, struct spool_msg *msg,
    struct spool_rcpt **rcpts, size_t *nrcpt)
{
	char k[SPOOL_ID_SIZE];
	DBT key, val;
	DBC *c;
	int rc;

	if ((rc = sp->messages->cursor(sp->messages, NULL, &c,
	    DB_READ_UNCOMMITTED)) != 0)
		return rc;
	memset(k, 0, sizeof(k));
	memcpy(k, after, strlen(after));
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = (u_int32_t)strlen(after);
	key.ulen = SPOOL_ID_LEN;
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_MALLOC;
	if (*after == '\0')
		rc = c->get(c, &key, &val, DB_FIRST);
	else {
		rc = c->get(c, &key, &val, DB_SET_RANGE);
		if (rc == 0 && key.size == SPOOL_ID_LEN &&
		    memcmp(k, after, SPOOL_ID_LEN) == 0) {
			free(val.data);
			val.data = NULL;
			rc = c->get(c, &key, &val, DB_NEXT);
		}
	}
	c->close(c);
	if (rc != 0)
		return rc;
	rc = record_decode_msg(val.data, val.size, msg);
	free(val.data);
	if (rc != 0) {
		/* Skip it, but keep walking from its key. */
		memset(msg, 0, sizeof(*msg));
		memcpy(msg->id, k, SPOOL_ID_LEN);
		log_error("spool: damaged envelope record %.*s skipped",
		    SPOOL_ID_LEN, k);
		*rcpts = NULL;
		*nrcpt = 0;
		return -1;
	}
	if ((rc = txn_read_rcpts(sp, msg->id, rcpts, nrcpt)) != 0)
		spool_msg_free(msg);
	return rc;
}

int
spool_scan(struct spool *sp, spool_scan_fn fn, void *ctx)
{
	char after[SPOOL_ID_SIZE] = "";

	for (;;) {
		struct spool_msg msg;
		struct spool_rcpt *rcpts = NULL;
		size_t n = 0;
		int rc;

		SPOOL_GUARD;
		rc = DB_LOCK_DEADLOCK;
		SPOOL_RETRY(sp, rc, i)
			rc = scan_next(sp, after, &msg, &rcpts, &n);
		if (rc == DB_NOTFOUND)
			return SPOOL_OK;
		if (rc == -1) {
			memcpy(after, msg.id, SPOOL_ID_SIZE);
			continue;
		}
		if (rc != 0) {
			log_error("spool: cannot scan queue: %s",
			    db_strerror(rc));
			return SPOOL_ERR;
		}
		memcpy(after, msg.id, SPOOL_ID_SIZE);
		int stop = fn(ctx, &msg, rcpts, n);
		spool_msg_free(&msg);
		spool_rcpts_free(rcpts, n);
		if (stop)
			return SPOOL_OK;
	}
}

static int
remove_once(struct spool *sp, const char *id)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = spool_remove_txn(sp, txn, id)) != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

int
spool_remove(struct spool *sp, const char *id)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	if (!spool_id_valid(id))
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = remove_once(sp, id);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: cannot remove %s: %s", id, db_strerror(rc));
		return SPOOL_ERR;
	}
	spool_checkpoint_due(sp);
	return SPOOL_OK;
}
