/*
 * NAME
 *	txn - a message's records, read and written inside a transaction
 * DESCRIPTION
 *	See txn.h. Keys and values are made and taken apart by record.c;
 *	this file only moves them in and out of the tables.
 */
#include "spool/txn.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/record.h"

int
spool_put(DB *db, DB_TXN *txn, const void *k, size_t klen, const void *v,
    size_t vlen, u_int32_t flags)
{
	DBT key, data;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	data.data = (void *)v;
	data.size = (u_int32_t)vlen;
	return db->put(db, txn, &key, &data, flags);
}

int
txn_read_msg(struct spool *sp, DB_TXN *txn, const char *id,
    struct spool_msg *msg, u_int32_t flags)
{
	DBT key, val;
	int rc;

	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)id;
	key.size = SPOOL_ID_LEN;
	val.flags = DB_DBT_MALLOC;
	if ((rc = sp->messages->get(sp->messages, txn, &key, &val, flags)))
		return rc;
	rc = record_decode_msg(val.data, val.size, msg);
	free(val.data);
	if (rc != 0) {
		log_error("%s: damaged envelope record", id);
		return DB_NOTFOUND;
	}
	return 0;
}

int
txn_write_msg(struct spool *sp, DB_TXN *txn, const struct spool_msg *msg)
{
	struct buf rec = BUF_INIT;

	record_encode_msg(msg, &rec);
	int rc = spool_put(sp->messages, txn, msg->id, SPOOL_ID_LEN, rec.data,
	    rec.len, 0);
	buf_free(&rec);
	return rc;
}

int
txn_read_rcpt(struct spool *sp, DB_TXN *txn, const char *id, uint32_t index,
    struct spool_rcpt *r, u_int32_t flags)
{
	unsigned char k[RECORD_SUBKEY_LEN];
	DBT key, val;
	int rc;

	record_subkey(id, index, k);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	val.flags = DB_DBT_MALLOC;
	if ((rc = sp->recipients->get(sp->recipients, txn, &key, &val,
	    flags)) != 0)
		return rc;
	rc = record_decode_rcpt(val.data, val.size, r);
	free(val.data);
	if (rc != 0) {
		log_error("%s: damaged recipient record %u", id, index);
		return DB_NOTFOUND;
	}
	return 0;
}

int
txn_write_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    const struct spool_rcpt *r)
{
	unsigned char k[RECORD_SUBKEY_LEN];
	struct buf rec = BUF_INIT;

	record_subkey(id, r->index, k);
	record_encode_rcpt(r, &rec);
	int rc = spool_put(sp->recipients, txn, k, sizeof(k), rec.data,
	    rec.len, 0);
	buf_free(&rec);
	return rc;
}

int
txn_each_subkey(DB *db, DB_TXN *txn, const char *id, unsigned flags,
    txn_subkey_fn fn, void *ctx)
{
	unsigned char k[RECORD_SUBKEY_LEN];
	DBT key, val;
	DBC *c;
	u_int32_t op = DB_SET_RANGE;
	u_int32_t rmw = flags & SUBKEY_RMW ? DB_RMW : 0;
	int rc;

	if ((rc = db->cursor(db, txn, &c, flags & SUBKEY_READ_UNCOMMITTED ?
	    DB_READ_UNCOMMITTED : 0)) != 0)
		return rc;
	record_subkey(id, 0, k);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	/* Keys only: no 64 KiB content chunks dragged through memory. */
	val.flags = flags & SUBKEY_KEYS_ONLY ? DB_DBT_PARTIAL : DB_DBT_REALLOC;
	while ((rc = c->get(c, &key, &val, op | rmw)) == 0) {
		op = DB_NEXT;
		if (key.size != RECORD_SUBKEY_LEN ||
		    memcmp(k, id, SPOOL_ID_SIZE) != 0)
			break;
		if ((rc = fn(ctx, c, val.data, val.size)) != 0)
			break;
	}
	if (!(flags & SUBKEY_KEYS_ONLY))
		free(val.data);
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

struct each_rcpt {
	int (*fn)(void *ctx, struct spool_rcpt *r);
	void *ctx;
};

static int
each_rcpt_one(void *vctx, DBC *c, const void *data, size_t len)
{
	struct each_rcpt *e = vctx;
	struct spool_rcpt r;

	(void)c;
	if (record_decode_rcpt(data, len, &r) != 0)
		return 0;
	int rc = e->fn(e->ctx, &r);
	spool_rcpt_clear(&r);
	return rc;
}

int
txn_each_rcpt(struct spool *sp, DB_TXN *txn, const char *id,
    int (*fn)(void *ctx, struct spool_rcpt *r), void *ctx)
{
	struct each_rcpt e = {fn, ctx};

	return txn_each_subkey(sp->recipients, txn, id, 0, each_rcpt_one, &e);
}

struct rcpt_list {
	const char *id;
	struct spool_rcpt *list;
	size_t n, cap;
};

static int
rcpt_list_add(void *vctx, DBC *c, const void *data, size_t len)
{
	struct rcpt_list *l = vctx;

	(void)c;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->list = xrealloc(l->list, l->cap * sizeof(*l->list));
	}
	if (record_decode_rcpt(data, len, &l->list[l->n]) != 0) {
		log_error("%s: damaged recipient record skipped", l->id);
		return 0;
	}
	l->n++;
	return 0;
}

int
txn_read_rcpts(struct spool *sp, const char *id, struct spool_rcpt **out,
    size_t *nout)
{
	struct rcpt_list l = {id, NULL, 0, 0};
	int rc = txn_each_subkey(sp->recipients, NULL, id,
	    SUBKEY_READ_UNCOMMITTED, rcpt_list_add, &l);

	if (rc != 0) {
		spool_rcpts_free(l.list, l.n);
		return rc;
	}
	*out = l.list;
	*nout = l.n;
	return 0;
}

static int
delete_one(void *ctx, DBC *c, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return c->del(c, 0);
}

int
txn_delete_subkeys(DB *db, DB_TXN *txn, const char *id)
{
	return txn_each_subkey(db, txn, id, SUBKEY_RMW | SUBKEY_KEYS_ONLY,
	    delete_one, NULL);
}
