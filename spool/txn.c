/*
 * NAME
 *	txn - a message's records, read and written inside a transaction
 * DESCRIPTION
 *	See txn.h. Keys and values are made and taken apart by record.c;
 *	this file moves them in and out of the tables, in this order:
 *	single records, walks over a message's recipients or chunks, the
 *	schedule index, and whole messages stored or removed.
 */
#include "spool/txn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/config.h"
#include "lib/log.h"
#include "spool/record.h"
#include "spool/stats.h"

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

/* The schedule index: one key per pending recipient (see schedule.c). */

int
spool_lane_class(const char *lane)
{
	return lane && strcmp(lane, MXL_PRIORITY_LANE) == 0 ? SCHED_PRIORITY :
	    SCHED_NORMAL;
}

void
txn_domain_of(const char *address, struct buf *out)
{
	const char *at = address ? strrchr(address, '@') : NULL;

	buf_reset(out);
	buf_puts(out, at ? at + 1 : "");
	str_lower(out->data);
}

int
spool_schedule_put(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index, const char *address)
{
	unsigned char k[RECORD_SCHED_KEY_LEN];
	struct buf domain = BUF_INIT;

	record_sched_key(k, cls, due, id, index);
	txn_domain_of(address, &domain);
	int rc = spool_put(sp->schedule, txn, k, sizeof(k), domain.data,
	    domain.len, 0);
	buf_free(&domain);
	return rc;
}

int
spool_schedule_del(struct spool *sp, DB_TXN *txn, int cls, int64_t due,
    const char *id, uint32_t index)
{
	unsigned char k[RECORD_SCHED_KEY_LEN];
	DBT key;

	record_sched_key(k, cls, due, id, index);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = sizeof(k);
	int rc = sp->schedule->del(sp->schedule, txn, &key, 0);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* Where a recipient's key is now, given its record. */
int64_t
txn_rcpt_key_due(const struct spool_rcpt *r)
{
	return r->state == RCPT_ACTIVE ? r->lease_until : r->next_try;
}

bool
txn_rcpt_pending(const struct spool_rcpt *r)
{
	return r->state == RCPT_QUEUED || r->state == RCPT_ACTIVE;
}

/*
 * A held message's queued recipients have no key, so that no claim,
 * flush or pass even looks at them; a claimed one keeps its lease key
 * while the attempt under way finishes (its result then puts no key
 * back, and an expired lease is not claimed: claim_rcpt).
 */
bool
txn_rcpt_scheduled(const struct spool_msg *msg, const struct spool_rcpt *r)
{
	if (r->state == RCPT_QUEUED)
		return !(msg->flags & SPOOL_MSG_HELD);
	return r->state == RCPT_ACTIVE;
}

struct drop_ctx {
	struct spool *sp;
	DB_TXN *txn;
	int cls;
	const char *id;
};

static int
drop_one(void *vctx, struct spool_rcpt *r)
{
	struct drop_ctx *d = vctx;

	if (!txn_rcpt_pending(r))
		return 0;
	return spool_schedule_del(d->sp, d->txn, d->cls,
	    txn_rcpt_key_due(r), d->id, r->index);
}

int
spool_schedule_drop_message(struct spool *sp, DB_TXN *txn, const char *id)
{
	struct spool_msg msg;
	int rc;

	if ((rc = txn_read_msg(sp, txn, id, &msg, DB_RMW)) != 0)
		return rc;
	struct drop_ctx d = {sp, txn, spool_lane_class(msg.lane), id};
	spool_msg_free(&msg);
	if ((rc = txn_each_rcpt(sp, txn, id, drop_one, &d)) != 0)
		return rc;
	return spool_schedule_del(sp, txn, SCHED_FINISH, 0, id,
	    SCHED_FINISH_INDEX);
}

/* Storing and removing a whole message. */


/* Chunks content made of two pieces without copying them together. */
struct content_writer {
	DB *db;
	DB_TXN *txn;
	const char *id;
	uint32_t chunk;
	char *stage;
	size_t staged;
};

static int
content_flush(struct content_writer *w)
{
	unsigned char k[RECORD_SUBKEY_LEN];
	DBT key, val;

	if (w->staged == 0)
		return 0;
	record_subkey(w->id, w->chunk++, k);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = sizeof(k);
	val.data = w->stage;
	val.size = (u_int32_t)w->staged;
	w->staged = 0;
	return w->db->put(w->db, w->txn, &key, &val, 0);
}

static int
content_write(struct content_writer *w, const char *data, size_t len)
{
	while (len > 0) {
		size_t n = SPOOL_CHUNK_SIZE - w->staged;
		if (n > len)
			n = len;
		memcpy(w->stage + w->staged, data, n);
		w->staged += n;
		data += n;
		len -= n;
		if (w->staged == SPOOL_CHUNK_SIZE) {
			int rc = content_flush(w);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* Claims a fresh queue id by inserting the envelope under it. */
static int
claim_id(struct spool *sp, DB_TXN *txn, struct spool_msg *msg,
    struct buf *rec)
{
	struct spool_id_seq seq;

	msg->arrival = spool_id_start(&seq, msg->id);
	for (int tries = 0; tries < 1000; tries++) {
		buf_reset(rec);
		record_encode_msg(msg, rec);
		int rc = spool_put(sp->messages, txn, msg->id, SPOOL_ID_LEN,
		    rec->data, rec->len, DB_NOOVERWRITE);
		if (rc != DB_KEYEXIST)
			return rc;
		/* Same microsecond as another submitter: take the next one. */
		spool_id_next(&seq, msg->id);
	}
	return DB_KEYEXIST;
}

int
spool_submit_txn(struct spool *sp, DB_TXN *txn, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, spool_prefix_fn prefix,
    void *prefix_ctx, const char *body, size_t body_len)
{
	struct buf rec = BUF_INIT, head = BUF_INIT;
	struct content_writer w = {sp->content, txn, msg->id, 0, NULL, 0};
	int rc;

	msg->size = 0;
	msg->nrcpt = (uint32_t)nrcpt;
	if (msg->id[0] != '\0') {
		/* Picked up from the maildrop: the id is the file's name. */
		record_encode_msg(msg, &rec);
		rc = spool_put(sp->messages, txn, msg->id, SPOOL_ID_LEN,
		    rec.data, rec.len, DB_NOOVERWRITE);
	} else {
		rc = claim_id(sp, txn, msg, &rec);
	}
	if (rc != 0)
		goto out;
	if (prefix)
		prefix(prefix_ctx, msg->id, &head);
	w.stage = xmalloc(SPOOL_CHUNK_SIZE);
	if ((rc = content_write(&w, head.data ? head.data : "", head.len)) ||
	    (rc = content_write(&w, body, body_len)) ||
	    (rc = content_flush(&w)))
		goto out;
	msg->size = head.len + body_len;

	int cls = spool_lane_class(msg->lane);
	for (size_t i = 0; i < nrcpt; i++) {
		struct spool_rcpt r = rcpts[i];

		r.index = (uint32_t)i;
		if (r.next_try == 0)
			r.next_try = msg->arrival;	/* due at once */
		if ((rc = txn_write_rcpt(sp, txn, msg->id, &r)) != 0)
			goto out;
		if (txn_rcpt_scheduled(msg, &r) && (rc = spool_schedule_put(sp,
		    txn, cls, r.next_try, msg->id, r.index, r.address)) != 0)
			goto out;
	}
	/* Again, now with the size: the first one only claimed the id. */
	if ((rc = txn_write_msg(sp, txn, msg)) != 0)
		goto out;
	/* Counted where it is queued, so the count is never off by a crash. */
	rc = stats_count_received(sp, txn, msg, msg->arrival);
out:
	free(w.stage);
	buf_free(&rec);
	buf_free(&head);
	return rc;
}

int
spool_remove_txn(struct spool *sp, DB_TXN *txn, const char *id)
{
	DBT key;
	int rc;

	memset(&key, 0, sizeof(key));
	key.data = (void *)id;
	key.size = SPOOL_ID_LEN;
	if ((rc = spool_schedule_drop_message(sp, txn, id)) != 0 ||
	    (rc = sp->messages->del(sp->messages, txn, &key, 0)) != 0 ||
	    (rc = txn_delete_subkeys(sp->recipients, txn, id)) != 0 ||
	    (rc = txn_delete_subkeys(sp->content, txn, id)) != 0)
		return rc;
	return 0;
}
