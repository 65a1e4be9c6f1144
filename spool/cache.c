/*
 * NAME
 *	cache - small values the queue runner keeps between runs
 * DESCRIPTION
 *	See spool.h. The values live in throttle.db under "cache|KEY",
 *	beside the throttles' records: a few per destination domain, each
 *	one short transaction, committed without waiting for the disk (a
 *	value lost in a crash is fetched again). The spool does not know
 *	what they mean: MTA-STS policies (queuerun/mtasts.c) are the one
 *	user for now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define CACHE_KEY_MAX	300

static int
cache_key(const char *name, char *key)
{
	int n = snprintf(key, CACHE_KEY_MAX, "cache|%s", name);

	return n > 0 && n < CACHE_KEY_MAX ? 0 : -1;
}

static int
get_once(struct spool *sp, const char *key, struct buf *value)
{
	DBT k, v;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.flags = DB_DBT_MALLOC;
	int rc = sp->throttle->get(sp->throttle, NULL, &k, &v, 0);
	if (rc == 0) {
		buf_reset(value);
		buf_append(value, v.data, v.size);
		free(v.data);
	}
	return rc;
}

int
spool_cache_get(struct spool *sp, const char *name, struct buf *value)
{
	SPOOL_GUARD;
	char key[CACHE_KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;

	if (cache_key(name, key) != 0)
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = get_once(sp, key, value);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return spool_db_result(rc, "cache %s", name);
}

static int
put_once(struct spool *sp, const char *key, const void *value, size_t len)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = value ? spool_put(sp->throttle, txn, key, strlen(key), value,
	    len, 0) : 0;
	if (value == NULL) {
		DBT k;
		memset(&k, 0, sizeof(k));
		k.data = (void *)key;
		k.size = (u_int32_t)strlen(key);
		rc = sp->throttle->del(sp->throttle, txn, &k, 0);
		if (rc == DB_NOTFOUND)
			rc = 0;
	}
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_cache_put(struct spool *sp, const char *name, const void *value,
    size_t len)
{
	SPOOL_GUARD;
	char key[CACHE_KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;

	if (cache_key(name, key) != 0)
		return SPOOL_ERR;
	SPOOL_RETRY(sp, rc, i)
		rc = put_once(sp, key, value, len);
	return spool_db_result(rc, "cache %s", name);
}
