/*
 * NAME
 *	suppress - the suppression list: addresses not to send to, until
 * DESCRIPTION
 *	See spool.h. One b-tree, suppress.db, in the spool's transactional
 *	environment, so every runner and admin command sees one list and a
 *	crash leaves it as the last committed transaction did. Keys:
 *
 *	"a" ADDRESS		the entry (record below); ADDRESS is
 *				lower-case, "@domain" for a whole domain
 *	"s" ADDRESS		soft failures counted for ADDRESS: count,
 *				end of the window, last message counted
 *	"e" WHEN(8) KIND ADDRESS	expiry index: KIND 'a' or 's',
 *				WHEN big-endian seconds, so a cursor walks
 *				them in the order they expire
 *
 *	An entry or a counter and its index key are always written and
 *	removed in one transaction. An entry that never expires has no
 *	index key.
 *
 *	Entry record: version(4) how(4) added(8) expires(8) reason class
 *	(strings as 32-bit length and bytes, 0xffffffff for none). Counter
 *	record: version(4) count(4) until(8) last_id.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define ENTRY_VERSION	1
#define SOFT_VERSION	1
#define KEY_MAX		(1 + 8 + 1 + SUPPRESS_ADDRESS_MAX + 1)

/* ------------------------------------------------------------ records */

static void
encode_entry(const struct spool_suppression *e, struct buf *b)
{
	buf_put_be32(b, ENTRY_VERSION);
	buf_put_be32(b, (uint32_t)e->how);
	buf_put_be64(b, (uint64_t)e->added);
	buf_put_be64(b, (uint64_t)e->expires);
	record_put_str(b, e->reason);
	record_put_str(b, e->class);
}

static int
decode_entry(const char *address, const void *data, size_t len,
    struct spool_suppression *e)
{
	struct record_reader r = {data, len, false};

	memset(e, 0, sizeof(*e));
	if (record_get_u32(&r) != ENTRY_VERSION)
		return -1;
	uint32_t how = record_get_u32(&r);
	e->added = record_get_i64(&r);
	e->expires = record_get_i64(&r);
	e->reason = record_get_str(&r);
	e->class = record_get_str(&r);
	if (r.bad || r.left != 0 || how > SUPPRESS_IMPORT) {
		spool_suppression_clear(e);
		return -1;
	}
	e->how = (enum spool_suppress_how)how;
	e->address = xstrdup(address);
	return 0;
}

void
spool_suppression_clear(struct spool_suppression *e)
{
	free(e->address);
	free(e->reason);
	free(e->class);
	memset(e, 0, sizeof(*e));
}

const char *
spool_suppress_how_name(enum spool_suppress_how how)
{
	switch (how) {
	case SUPPRESS_BOUNCE:
		return "bounce";
	case SUPPRESS_ADMIN:
		return "admin";
	case SUPPRESS_IMPORT:
		return "import";
	}
	return "?";
}

/*
 * The list's form of an address: lower-case, without angle brackets.
 * Every big mailbox provider treats the local part without case, and a
 * list that missed "John@" after "john@" bounced would go on sending
 * to a dead mailbox; the price is that two mailboxes differing only by
 * case, on a host that tells them apart, share one entry.
 */
int
spool_suppress_normalize(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
		in++;
		n -= 2;
	}
	if (n == 0 || n > SUPPRESS_ADDRESS_MAX || n >= outlen)
		return -1;
	const char *at = memchr(in, '@', n);
	if (at == NULL || at == in + n - 1 || memchr(at + 1, '@',
	    (size_t)(in + n - at - 1)) != NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= ' ' || c == 0x7f)
			return -1;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------ keys */

static size_t
entry_key(char kind, const char *address, unsigned char *k)
{
	size_t n = strlen(address);

	k[0] = (unsigned char)kind;
	memcpy(k + 1, address, n);
	return n + 1;
}

static size_t
expiry_key(int64_t when, char kind, const char *address, unsigned char *k)
{
	uint64_t u = (uint64_t)(when < 0 ? 0 : when);
	size_t n = strlen(address);

	k[0] = 'e';
	for (int i = 0; i < 8; i++)
		k[1 + i] = (unsigned char)(u >> (56 - 8 * i));
	k[9] = (unsigned char)kind;
	memcpy(k + 10, address, n);
	return 10 + n;
}

static int
db_get(DB *db, DB_TXN *txn, const void *k, size_t klen, struct buf *val,
    u_int32_t flags)
{
	DBT key, v;

	memset(&key, 0, sizeof(key));
	memset(&v, 0, sizeof(v));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	v.flags = DB_DBT_MALLOC;
	int rc = db->get(db, txn, &key, &v, flags);
	if (rc == 0) {
		buf_reset(val);
		buf_append(val, v.data, v.size);
		free(v.data);
	}
	return rc;
}

static int
db_del(DB *db, DB_TXN *txn, const void *k, size_t klen)
{
	DBT key;

	memset(&key, 0, sizeof(key));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	int rc = db->del(db, txn, &key, 0);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* Removes an entry or counter and its expiry key; DB_NOTFOUND if none. */
static int
remove_record(struct spool *sp, DB_TXN *txn, char kind, const char *address)
{
	unsigned char k[KEY_MAX];
	struct buf val = BUF_INIT;
	size_t klen = entry_key(kind, address, k);
	int rc = db_get(sp->suppress, txn, k, klen, &val, DB_RMW);

	if (rc != 0) {
		buf_free(&val);
		return rc;
	}
	/* An entry's expiry is at offset 16, a counter's window end at 8. */
	int64_t when = 0;
	if (kind == 'a' && val.len >= 24)
		when = (int64_t)get_be64((const unsigned char *)val.data + 16);
	else if (kind == 's' && val.len >= 16)
		when = (int64_t)get_be64((const unsigned char *)val.data + 8);
	buf_free(&val);
	if ((rc = db_del(sp->suppress, txn, k, klen)) != 0)
		return rc;
	if (when != 0) {
		unsigned char e[KEY_MAX];
		rc = db_del(sp->suppress, txn, e, expiry_key(when, kind,
		    address, e));
	}
	return rc;
}

static int
put_entry(struct spool *sp, DB_TXN *txn, const struct spool_suppression *e)
{
	unsigned char k[KEY_MAX];
	struct buf rec = BUF_INIT;
	int rc = remove_record(sp, txn, 'a', e->address);

	if (rc != 0 && rc != DB_NOTFOUND)
		return rc;
	encode_entry(e, &rec);
	rc = spool_put(sp->suppress, txn, k, entry_key('a', e->address, k),
	    rec.data, rec.len, 0);
	buf_free(&rec);
	if (rc == 0 && e->expires != 0)
		rc = spool_put(sp->suppress, txn, k, expiry_key(e->expires,
		    'a', e->address, k), "", 0, 0);
	return rc;
}

/* ------------------------------------------------------------ verbs */

static int
add_once(struct spool *sp, const struct spool_suppression *e, bool keep_longer)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if (keep_longer) {
		/* A bounce never shortens what is there (an admin's "never"). */
		unsigned char k[KEY_MAX];
		struct buf val = BUF_INIT;
		struct spool_suppression old;
		rc = db_get(sp->suppress, txn, k, entry_key('a', e->address, k),
		    &val, DB_RMW);
		if (rc == 0 && decode_entry(e->address, val.data, val.len,
		    &old) == 0) {
			bool longer = old.expires == 0 || old.expires >=
			    e->expires;
			spool_suppression_clear(&old);
			if (longer) {
				buf_free(&val);
				return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
			}
		}
		buf_free(&val);
		if (rc != 0 && rc != DB_NOTFOUND) {
			txn->abort(txn);
			return rc;
		}
	}
	if ((rc = put_entry(sp, txn, e)) != 0) {
		txn->abort(txn);
		return rc;
	}
	/* What the runner learns from bounces may be lost in a crash. */
	return txn->commit(txn, keep_longer ? DB_TXN_WRITE_NOSYNC : 0);
}

int
spool_suppress_add(struct spool *sp, const struct spool_suppression *e)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = add_once(sp, e, e->how == SUPPRESS_BOUNCE);
	return spool_db_result(rc, "cannot add %s to the suppression list",
	    e->address);
}

static int
add_many_once(struct spool *sp, const struct spool_suppression *e, size_t n)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_entry(sp, txn, &e[i]);
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

int
spool_suppress_add_many(struct spool *sp, const struct spool_suppression *e,
    size_t n)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = add_many_once(sp, e, n);
	return spool_db_result(rc, "cannot add %zu addresses to the "
	    "suppression list", n);
}

static int
remove_once(struct spool *sp, const char *address)
{
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = remove_record(sp, txn, 'a', address);
	if (rc == 0 || rc == DB_NOTFOUND) {
		/* Its soft count goes too: a fresh start. */
		int rs = remove_record(sp, txn, 's', address);
		if (rs != 0 && rs != DB_NOTFOUND)
			rc = rs;
	}
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, 0);
}

int
spool_suppress_remove(struct spool *sp, const char *address)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = remove_once(sp, address);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return spool_db_result(rc, "cannot remove %s from the suppression "
	    "list", address);
}

static int
get_entry(struct spool *sp, const char *address, int64_t now,
    struct spool_suppression *out)
{
	unsigned char k[KEY_MAX];
	struct buf val = BUF_INIT;
	int rc = db_get(sp->suppress, NULL, k, entry_key('a', address, k),
	    &val, 0);

	if (rc == 0) {
		if (decode_entry(address, val.data, val.len, out) != 0) {
			log_error("spool: damaged suppression entry for %s "
			    "ignored", address);
			rc = DB_NOTFOUND;
		} else if (out->expires != 0 && out->expires <= now) {
			spool_suppression_clear(out);
			rc = DB_NOTFOUND;	/* expired: the runner removes it */
		}
	}
	buf_free(&val);
	return rc;
}

int
spool_suppress_check(struct spool *sp, const char *address, int64_t now,
    struct spool_suppression *out)
{
	SPOOL_GUARD;
	char norm[SUPPRESS_ADDRESS_MAX + 1];
	int rc = DB_LOCK_DEADLOCK;

	memset(out, 0, sizeof(*out));
	if (spool_suppress_normalize(address, norm, sizeof(norm)) != 0)
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i) {
		rc = get_entry(sp, norm, now, out);
		if (rc == DB_NOTFOUND)
			rc = get_entry(sp, strchr(norm, '@'), now, out);
	}
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return spool_db_result(rc, "cannot read the suppression list");
}

int
spool_suppress_get(struct spool *sp, const char *address,
    struct spool_suppression *out)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	memset(out, 0, sizeof(*out));
	SPOOL_RETRY(sp, rc, i)
		rc = get_entry(sp, address, 0, out);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	return rc == 0 ? SPOOL_OK : SPOOL_ERR;
}

/*
 * Walks the entries after 'after' (exclusive; "" = from the first), a
 * batch at a time with no lock held between batches, as spool_scan does.
 */
#define SCAN_BATCH 256

static int
scan_batch(struct spool *sp, const char *after, struct spool_suppression *out,
    size_t *n)
{
	DBC *c;
	DBT key, val;
	unsigned char k[KEY_MAX];
	int rc;

	*n = 0;
	if ((rc = sp->suppress->cursor(sp->suppress, NULL, &c,
	    DB_READ_UNCOMMITTED)) != 0)
		return rc;
	size_t klen = entry_key('a', after, k);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = (u_int32_t)klen;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_MALLOC;
	rc = c->get(c, &key, &val, DB_SET_RANGE);
	while (rc == 0 && *n < SCAN_BATCH) {
		if (key.size < 2 || k[0] != 'a') {
			free(val.data);
			rc = DB_NOTFOUND;
			break;
		}
		char *addr = xstrndup((const char *)k + 1, key.size - 1);
		if (strcmp(addr, after) > 0 &&
		    decode_entry(addr, val.data, val.size, &out[*n]) == 0)
			(*n)++;
		free(addr);
		free(val.data);
		val.data = NULL;
		rc = c->get(c, &key, &val, DB_NEXT);
	}
	if (rc == 0)
		free(val.data);
	c->close(c);
	return rc == DB_NOTFOUND || rc == 0 ? 0 : rc;
}

int
spool_suppress_scan(struct spool *sp, spool_suppress_fn fn, void *ctx)
{
	struct spool_suppression *batch = xcalloc(SCAN_BATCH,
	    sizeof(*batch));
	char *after = xstrdup("");
	int result = SPOOL_OK;

	for (;;) {
		SPOOL_GUARD;
		size_t n = 0;
		int rc = DB_LOCK_DEADLOCK;
		SPOOL_RETRY(sp, rc, i) {
			for (size_t k = 0; k < n; k++)
				spool_suppression_clear(&batch[k]);
			rc = scan_batch(sp, after, batch, &n);
		}
		if (rc != 0) {
			log_error("spool: cannot read the suppression list: %s",
			    db_strerror(rc));
			result = SPOOL_ERR;
			break;
		}
		int stop = 0;
		for (size_t k = 0; k < n; k++) {
			if (!stop)
				stop = fn(ctx, &batch[k]);
			if (k + 1 == n) {
				free(after);
				after = xstrdup(batch[k].address);
			}
			spool_suppression_clear(&batch[k]);
		}
		if (stop || n < SCAN_BATCH)
			break;
	}
	free(after);
	free(batch);
	return result;
}

/* Up to max entries and counters whose time has come, in one transaction. */
static int
expire_once(struct spool *sp, int64_t now, size_t max, size_t *removed)
{
	DB_TXN *txn;
	DBC *c;
	DBT key, val;
	unsigned char k[KEY_MAX];
	int rc;

	*removed = 0;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = sp->suppress->cursor(sp->suppress, txn, &c, 0)) != 0) {
		txn->abort(txn);
		return rc;
	}
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	k[0] = 'e';
	key.data = k;
	key.size = 1;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_PARTIAL;	/* the keys are all we need */
	rc = c->get(c, &key, &val, DB_SET_RANGE | DB_RMW);
	while (rc == 0 && *removed < max) {
		if (key.size < 11 || k[0] != 'e')
			break;
		int64_t when = (int64_t)get_be64(k + 1);
		if (when > now)
			break;
		char kind = (char)k[9];
		char *addr = xstrndup((const char *)k + 10, key.size - 10);
		rc = c->del(c, 0);
		if (rc == 0) {
			unsigned char rk[KEY_MAX];
			rc = db_del(sp->suppress, txn, rk, entry_key(kind, addr,
			    rk));
		}
		free(addr);
		if (rc == 0) {
			(*removed)++;
			rc = c->get(c, &key, &val, DB_NEXT | DB_RMW);
		}
	}
	c->close(c);
	if (rc != 0 && rc != DB_NOTFOUND) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_suppress_expire(struct spool *sp, int64_t now, size_t max,
    size_t *removed)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;
	size_t n = 0;

	*removed = 0;
	SPOOL_RETRY(sp, rc, i)
		rc = expire_once(sp, now, max, &n);
	if (rc == 0)
		*removed = n;
	return spool_db_result(rc, "cannot remove expired suppression "
	    "entries");
}

/*
 * Soft failures: count one per message within the window; at the
 * count'th, the counter goes and *reached says so (the caller then adds
 * the entry).
 */
static int
soft_once(struct spool *sp, const char *address, const char *id, int64_t now,
    int window, int count, bool *reached)
{
	DB_TXN *txn;
	unsigned char k[KEY_MAX];
	struct buf val = BUF_INIT, rec = BUF_INIT;
	uint32_t have = 0;
	int64_t until = now + window;
	char *last = NULL;
	int rc;

	*reached = false;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	rc = db_get(sp->suppress, txn, k, entry_key('s', address, k), &val,
	    DB_RMW);
	if (rc == 0) {
		struct record_reader r = {(const unsigned char *)val.data, val.len, false};
		if (record_get_u32(&r) == SOFT_VERSION) {
			have = record_get_u32(&r);
			until = record_get_i64(&r);
			last = record_get_str(&r);
		}
		if (r.bad || until <= now) {
			have = 0;	/* damaged, or its window is over */
			until = now + window;
		}
	}
	buf_free(&val);
	if (rc != 0 && rc != DB_NOTFOUND)
		goto out;
	if (last && strcmp(last, id) == 0) {
		rc = 0;		/* this message counted already */
		goto out;
	}
	if ((rc = remove_record(sp, txn, 's', address)) != 0 &&
	    rc != DB_NOTFOUND)
		goto out;
	have++;
	if ((int)have >= count) {
		*reached = true;
		rc = 0;
		goto out;
	}
	buf_put_be32(&rec, SOFT_VERSION);
	buf_put_be32(&rec, have);
	buf_put_be64(&rec, (uint64_t)until);
	record_put_str(&rec, id);
	rc = spool_put(sp->suppress, txn, k, entry_key('s', address, k),
	    rec.data, rec.len, 0);
	if (rc == 0)
		rc = spool_put(sp->suppress, txn, k, expiry_key(until, 's',
		    address, k), "", 0, 0);
out:
	free(last);
	buf_free(&rec);
	if (rc != 0) {
		txn->abort(txn);
		*reached = false;
		return rc;
	}
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_suppress_soft(struct spool *sp, const char *address, const char *id,
    int64_t now, int window, int count, bool *reached)
{
	SPOOL_GUARD;
	char norm[SUPPRESS_ADDRESS_MAX + 1];
	int rc = DB_LOCK_DEADLOCK;

	*reached = false;
	if (spool_suppress_normalize(address, norm, sizeof(norm)) != 0)
		return SPOOL_NOTFOUND;
	SPOOL_RETRY(sp, rc, i)
		rc = soft_once(sp, norm, id, now, window, count, reached);
	return spool_db_result(rc, "cannot count a soft failure of %s", norm);
}
