/*
 * NAME
 *	shaping - what providers told us, kept for every runner
 * DESCRIPTION
 *	shaping.db (see spool.h) holds, under short keys:
 *
 *	"s|PROVIDER|SOURCE"	the state of one (provider, source address):
 *				suspended until, a lowered rate until,
 *				when its run of nothing but blocks began;
 *	"s|PROVIDER|*"		the provider's own: deferred until;
 *	"a|PROVIDER|SOURCE|RULE" the times of a rule's last matches, for
 *				"after N in WINDOW";
 *	"w|SOURCE|PROVIDER"	warm-up: the day index and what the source
 *				sent that day (one record, reset when the
 *				day changes, so the table never grows).
 *
 *	The spool keeps the records and does each change in one
 *	transaction; what they mean (queuerun/shaping.c) is not its
 *	business. A crash loses nothing committed; a record that does not
 *	decode reads as no state at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define SHAPING_VERSION	1
#define KEY_MAX		400
#define MAX_MATCHES	1000

static void
encode(const struct spool_shaping *st, struct buf *b)
{
	buf_put_be64(b, SHAPING_VERSION);
	buf_put_be64(b, (uint64_t)st->suspended_until);
	buf_put_be64(b, (uint64_t)st->throttle_until);
	buf_put_be64(b, (uint64_t)st->rate_count);
	buf_put_be64(b, (uint64_t)st->rate_period);
	buf_put_be64(b, (uint64_t)st->blocked_since);
	buf_put_be64(b, (uint64_t)st->listed_warned);
	record_put_str(b, st->rule);
	record_put_str(b, st->reply);
	record_put_str(b, st->throttle_rule);
	record_put_str(b, st->throttle_reply);
}

/* A string of the record into a fixed field, cut to fit. */
static void
get_field(struct record_reader *r, char *out, size_t size)
{
	char *s = record_get_str(r);

	snprintf(out, size, "%s", s ? s : "");
	free(s);
}

static bool
decode(const unsigned char *p, size_t len, struct spool_shaping *st)
{
	struct record_reader r = { p, len, false };

	memset(st, 0, sizeof(*st));
	if (record_get_i64(&r) != SHAPING_VERSION)
		return false;
	st->suspended_until = record_get_i64(&r);
	st->throttle_until = record_get_i64(&r);
	st->rate_count = (long)record_get_i64(&r);
	st->rate_period = (int)record_get_i64(&r);
	st->blocked_since = record_get_i64(&r);
	st->listed_warned = record_get_i64(&r) != 0;
	get_field(&r, st->rule, sizeof(st->rule));
	get_field(&r, st->reply, sizeof(st->reply));
	get_field(&r, st->throttle_rule, sizeof(st->throttle_rule));
	get_field(&r, st->throttle_reply, sizeof(st->throttle_reply));
	if (!r.bad)
		return true;
	memset(st, 0, sizeof(*st));
	return false;
}

static int
state_key(const char *provider, const char *source, char *key)
{
	int n = snprintf(key, KEY_MAX, "s|%s|%s", provider, source ? source :
	    "*");

	return n > 0 && n < KEY_MAX ? 0 : -1;
}

static int
get_raw(struct spool *sp, DB_TXN *txn, const char *key, struct buf *out,
    u_int32_t flags)
{
	DBT k, v;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.flags = DB_DBT_MALLOC;
	int rc = sp->shaping->get(sp->shaping, txn, &k, &v, flags);
	if (rc == 0) {
		buf_reset(out);
		buf_append(out, v.data, v.size);
		free(v.data);
	}
	return rc;
}

static int
del_raw(struct spool *sp, DB_TXN *txn, const char *key)
{
	DBT k;

	memset(&k, 0, sizeof(k));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	int rc = sp->shaping->del(sp->shaping, txn, &k, 0);
	return rc == DB_NOTFOUND ? 0 : rc;
}

static int
get_state_once(struct spool *sp, const char *key, struct spool_shaping *st)
{
	struct buf b = BUF_INIT;
	int rc = get_raw(sp, NULL, key, &b, 0);

	if (rc == 0 && !decode((unsigned char *)b.data, b.len, st))
		rc = DB_NOTFOUND;
	buf_free(&b);
	return rc;
}

int
spool_shaping_get(struct spool *sp, const char *provider, const char *source,
    struct spool_shaping *st)
{
	SPOOL_GUARD;
	char key[KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;

	memset(st, 0, sizeof(*st));
	if (state_key(provider, source, key) != 0)
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = get_state_once(sp, key, st);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return spool_db_result(rc, "shaping %s", key);
}

static int
update_once(struct spool *sp, const char *key, spool_shaping_fn fn,
    void *ctx)
{
	struct spool_shaping st;
	struct buf b = BUF_INIT;
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = get_raw(sp, txn, key, &b, DB_RMW);
	bool found = rc == 0 && decode((unsigned char *)b.data, b.len, &st);
	if (rc == DB_NOTFOUND || (rc == 0 && !found)) {
		memset(&st, 0, sizeof(st));
		rc = 0;
	}
	if (rc != 0)
		goto err;
	switch (fn(ctx, &st, found)) {
	case SPOOL_SHAPING_KEEP:
		txn->abort(txn);
		buf_free(&b);
		return 0;
	case SPOOL_SHAPING_DELETE:
		rc = del_raw(sp, txn, key);
		break;
	case SPOOL_SHAPING_STORE:
		buf_reset(&b);
		encode(&st, &b);
		rc = spool_put(sp->shaping, txn, key, strlen(key), b.data,
		    b.len, 0);
		break;
	}
	if (rc != 0)
		goto err;
	buf_free(&b);
	return txn->commit(txn, 0);
err:
	buf_free(&b);
	txn->abort(txn);
	return rc;
}

int
spool_shaping_update(struct spool *sp, const char *provider,
    const char *source, spool_shaping_fn fn, void *ctx)
{
	SPOOL_GUARD;
	char key[KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;

	if (state_key(provider, source, key) != 0)
		return SPOOL_ERR;
	/* fn may run more than once (a retry): it must only decide. */
	SPOOL_RETRY(sp, rc, i)
		rc = update_once(sp, key, fn, ctx);
	return spool_db_result(rc, "shaping %s", key);
}

static int
scan_once(struct spool *sp, spool_shaping_scan_fn fn, void *ctx)
{
	DBC *c;
	DBT k, v;
	int rc;

	if ((rc = sp->shaping->cursor(sp->shaping, NULL, &c, 0)) != 0)
		return rc;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)"s|";
	k.size = 2;
	rc = c->get(c, &k, &v, DB_SET_RANGE);
	while (rc == 0 && k.size > 2 && memcmp(k.data, "s|", 2) == 0) {
		char key[KEY_MAX];
		struct spool_shaping st;
		size_t n = k.size < KEY_MAX - 1 ? k.size : KEY_MAX - 1;
		memcpy(key, k.data, n);
		key[n] = '\0';
		char *provider = key + 2, *source = strchr(provider, '|');
		if (source && decode(v.data, v.size, &st)) {
			*source++ = '\0';
			if (fn(ctx, provider, strcmp(source, "*") == 0 ? NULL :
			    source, &st) != 0)
				break;
		}
		rc = c->get(c, &k, &v, DB_NEXT);
	}
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

int
spool_shaping_scan(struct spool *sp, spool_shaping_scan_fn fn, void *ctx)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	/* fn is called afresh on a retry: a scan that failed half-way. */
	SPOOL_RETRY(sp, rc, i)
		rc = scan_once(sp, fn, ctx);
	return spool_db_result(rc, "shaping");
}

/* "after N in WINDOW": the times of the last matches, oldest first. */
static int
match_once(struct spool *sp, const char *key, int64_t now, unsigned count,
    int64_t window, bool *fire)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	DB_TXN *txn;
	int rc;

	*fire = false;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = get_raw(sp, txn, key, &b, DB_RMW);
	if (rc == DB_NOTFOUND) {
		buf_reset(&b);
		rc = 0;
	}
	if (rc != 0)
		goto err;
	size_t kept = 0;
	for (size_t off = 0; off + 8 <= b.len; off += 8) {
		int64_t t = (int64_t)get_be64((unsigned char *)b.data + off);
		if (t > now - window && t <= now) {
			buf_put_be64(&out, (uint64_t)t);
			kept++;
		}
	}
	buf_put_be64(&out, (uint64_t)now);
	kept++;
	if (kept >= count) {
		*fire = true;	/* and the count starts again */
		rc = del_raw(sp, txn, key);
	} else {
		rc = spool_put(sp->shaping, txn, key, strlen(key), out.data,
		    out.len, 0);
	}
	if (rc != 0)
		goto err;
	buf_free(&b);
	buf_free(&out);
	return txn->commit(txn, 0);
err:
	buf_free(&b);
	buf_free(&out);
	txn->abort(txn);
	return rc;
}

int
spool_shaping_match(struct spool *sp, const char *provider,
    const char *source, const char *rule, int64_t now, unsigned count,
    int64_t window, bool *fire)
{
	SPOOL_GUARD;
	char key[KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;
	int n = snprintf(key, sizeof(key), "a|%s|%s|%s", provider, source,
	    rule);

	*fire = count <= 1;
	if (count <= 1)
		return SPOOL_OK;
	if (count > MAX_MATCHES)
		count = MAX_MATCHES;
	if (n < 0 || n >= (int)sizeof(key))
		return SPOOL_ERR;
	SPOOL_RETRY(sp, rc, i)
		rc = match_once(sp, key, now, count, window, fire);
	return spool_db_result(rc, "shaping %s", key);
}

static int
warm_once(struct spool *sp, const char *key, int64_t day, int64_t cap,
    int64_t add, uint64_t *count, int64_t *granted)
{
	struct buf b = BUF_INIT;
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = get_raw(sp, txn, key, &b, add ? DB_RMW : 0);
	uint64_t have = 0;
	if (rc == 0 && b.len == 16 && (int64_t)get_be64((unsigned char *)
	    b.data) == day)
		have = get_be64((unsigned char *)b.data + 8);
	if (rc == DB_NOTFOUND)
		rc = 0;
	if (rc != 0)
		goto err;
	*granted = 0;
	if (add > 0) {
		int64_t left = cap >= 0 ? cap - (int64_t)have : add;
		*granted = left < add ? (left > 0 ? left : 0) : add;
		have += (uint64_t)*granted;
	} else if (add < 0) {
		have = (uint64_t)-add > have ? 0 : have + (uint64_t)add;
	}
	*count = have;
	if (add != 0) {
		buf_reset(&b);
		buf_put_be64(&b, (uint64_t)day);
		buf_put_be64(&b, have);
		rc = spool_put(sp->shaping, txn, key, strlen(key), b.data,
		    b.len, 0);
		if (rc != 0)
			goto err;
	}
	buf_free(&b);
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
err:
	buf_free(&b);
	txn->abort(txn);
	return rc;
}

int
spool_shaping_warm(struct spool *sp, const char *source, const char *provider,
    int64_t day, int64_t cap, int64_t add, uint64_t *count, int64_t *granted)
{
	SPOOL_GUARD;
	char key[KEY_MAX];
	int rc = DB_LOCK_DEADLOCK;
	int n = snprintf(key, sizeof(key), "w|%s|%s", source, provider);
	int64_t dummy;

	if (granted == NULL)
		granted = &dummy;
	*count = 0;
	*granted = 0;
	if (n < 0 || n >= (int)sizeof(key))
		return SPOOL_ERR;
	SPOOL_RETRY(sp, rc, i)
		rc = warm_once(sp, key, day, cap, add, count, granted);
	return spool_db_result(rc, "shaping %s", key);
}
