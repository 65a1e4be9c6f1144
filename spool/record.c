/*
 * NAME
 *	record - the byte layout of envelope and recipient records
 * DESCRIPTION
 *	See record.h. Strings are stored as a 32-bit length and bytes;
 *	length 0xffffffff stands for NULL. Every read checks the remaining
 *	length first, so a damaged record yields an error, never an
 *	out-of-bounds read.
 *
 *	Also here, since they are about the same values and nothing more:
 *	freeing a decoded envelope or recipient, and checking a queue id's
 *	form.
 */
#include "spool/record.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/*
 * Envelopes: version 2 adds the administrator's move (pool, source) at
 * the end; version 1 records (and maildrop files written by an older
 * sendmail) still decode, unmoved. New records are always version 2.
 */
#define RECORD_MSG_VERSION	3
#define RECORD_MSG_VERSION_NOMOVE	1	/* before queuerun move */
#define RECORD_MSG_VERSION_MOVE_ALL	2	/* before move_provider */
/*
 * Recipient records: version 3 adds the reply class at the end, version
 * 4 the source address of the last attempt after it; version 2 and 3
 * records (written before) still decode, without them. New records are
 * always version 4.
 */
#define RECORD_RCPT_VERSION	4
#define RECORD_RCPT_VERSION_NOCLASS	2
#define NULL_STRING		0xffffffffu



void
record_put_str(struct buf *out, const char *s)
{
	if (s == NULL) {
		buf_put_be32(out, NULL_STRING);
		return;
	}
	size_t len = strlen(s);
	buf_put_be32(out, (uint32_t)len);
	buf_append(out, s, len);
}

uint32_t
record_get_u32(struct record_reader *r)
{
	if (r->bad || r->left < 4) {
		r->bad = true;
		return 0;
	}
	uint32_t v = get_be32(r->p);
	r->p += 4;
	r->left -= 4;
	return v;
}

int64_t
record_get_i64(struct record_reader *r)
{
	uint64_t hi = record_get_u32(r);
	uint64_t lo = record_get_u32(r);

	return (int64_t)(hi << 32 | lo);
}

char *
record_get_str(struct record_reader *r)
{
	uint32_t len = record_get_u32(r);

	if (r->bad || len == NULL_STRING)
		return NULL;
	if (len > r->left || memchr(r->p, '\0', len) != NULL) {
		r->bad = true;
		return NULL;
	}
	char *s = xstrndup((const char *)r->p, len);
	r->p += len;
	r->left -= len;
	return s;
}

void
record_encode_msg(const struct spool_msg *msg, struct buf *out)
{
	buf_put_be32(out, RECORD_MSG_VERSION);
	record_put_str(out, msg->id);
	record_put_str(out, msg->sender);
	record_put_str(out, msg->envid);
	buf_put_be32(out, msg->ret);
	buf_put_be32(out, msg->body);
	record_put_str(out, msg->lane);
	buf_put_be64(out, (uint64_t)msg->arrival);
	buf_put_be32(out, msg->uid);
	record_put_str(out, msg->user);
	buf_put_be64(out, msg->size);
	buf_put_be32(out, msg->nrcpt);
	buf_put_be32(out, msg->flags);
	buf_put_be32(out, msg->warned);
	record_put_str(out, msg->move_pool);
	record_put_str(out, msg->move_source);
	record_put_str(out, msg->move_provider);
}

int
record_decode_msg(const void *data, size_t len, struct spool_msg *msg)
{
	struct record_reader r = {data, len, false};

	memset(msg, 0, sizeof(*msg));
	uint32_t version = record_get_u32(&r);
	if (version != RECORD_MSG_VERSION &&
	    version != RECORD_MSG_VERSION_NOMOVE &&
	    version != RECORD_MSG_VERSION_MOVE_ALL)
		return -1;
	char *id = record_get_str(&r);
	if (id == NULL || !spool_id_valid(id)) {
		free(id);
		return -1;
	}
	memcpy(msg->id, id, SPOOL_ID_SIZE);
	free(id);
	msg->sender = record_get_str(&r);
	msg->envid = record_get_str(&r);
	uint32_t ret = record_get_u32(&r);
	uint32_t body = record_get_u32(&r);
	msg->lane = record_get_str(&r);
	msg->arrival = record_get_i64(&r);
	msg->uid = record_get_u32(&r);
	msg->user = record_get_str(&r);
	msg->size = (uint64_t)record_get_i64(&r);
	msg->nrcpt = record_get_u32(&r);
	msg->flags = record_get_u32(&r);
	msg->warned = record_get_u32(&r);
	if (version >= RECORD_MSG_VERSION_MOVE_ALL) {
		msg->move_pool = record_get_str(&r);
		msg->move_source = record_get_str(&r);
	}
	if (version >= RECORD_MSG_VERSION)
		msg->move_provider = record_get_str(&r);
	if (r.bad || r.left != 0 || msg->sender == NULL || msg->lane == NULL ||
	    ret > SPOOL_RET_HDRS || body > SPOOL_BODY_8BITMIME) {
		spool_msg_free(msg);
		return -1;
	}
	msg->ret = (enum spool_ret)ret;
	msg->body = (enum spool_body)body;
	return 0;
}

void
record_encode_rcpt(const struct spool_rcpt *rcpt, struct buf *out)
{
	buf_put_be32(out, RECORD_RCPT_VERSION);
	buf_put_be32(out, rcpt->index);
	record_put_str(out, rcpt->address);
	record_put_str(out, rcpt->orcpt);
	buf_put_be32(out, rcpt->notify);
	buf_put_be32(out, rcpt->state);
	buf_put_be32(out, rcpt->attempts);
	buf_put_be64(out, (uint64_t)rcpt->next_try);
	buf_put_be64(out, (uint64_t)rcpt->lease_until);
	buf_put_be64(out, (uint64_t)rcpt->done_time);
	record_put_str(out, rcpt->last_response);
	record_put_str(out, rcpt->last_relay);
	record_put_str(out, rcpt->status);
	buf_put_be32(out, rcpt->flags);
	record_put_str(out, rcpt->class);
	record_put_str(out, rcpt->last_source);
}

int
record_decode_rcpt(const void *data, size_t len, struct spool_rcpt *rcpt)
{
	struct record_reader r = {data, len, false};

	memset(rcpt, 0, sizeof(*rcpt));
	uint32_t version = record_get_u32(&r);
	if (version < RECORD_RCPT_VERSION_NOCLASS ||
	    version > RECORD_RCPT_VERSION)
		return -1;
	rcpt->index = record_get_u32(&r);
	rcpt->address = record_get_str(&r);
	rcpt->orcpt = record_get_str(&r);
	rcpt->notify = record_get_u32(&r);
	uint32_t state = record_get_u32(&r);
	rcpt->attempts = record_get_u32(&r);
	rcpt->next_try = record_get_i64(&r);
	rcpt->lease_until = record_get_i64(&r);
	rcpt->done_time = record_get_i64(&r);
	rcpt->last_response = record_get_str(&r);
	rcpt->last_relay = record_get_str(&r);
	rcpt->status = record_get_str(&r);
	rcpt->flags = record_get_u32(&r);
	if (version >= 3)
		rcpt->class = record_get_str(&r);
	if (version >= 4)
		rcpt->last_source = record_get_str(&r);
	if (r.bad || r.left != 0 || rcpt->address == NULL ||
	    state > RCPT_BOUNCED || (rcpt->notify & ~0x0fu) != 0) {
		spool_rcpt_clear(rcpt);
		return -1;
	}
	rcpt->state = (enum spool_rcpt_state)state;
	return 0;
}

void
record_subkey(const char *id, uint32_t index,
    unsigned char key[RECORD_SUBKEY_LEN])
{
	memset(key, 0, SPOOL_ID_SIZE);
	memcpy(key, id, strnlen(id, SPOOL_ID_LEN));
	key[SPOOL_ID_SIZE + 0] = (unsigned char)(index >> 24);
	key[SPOOL_ID_SIZE + 1] = (unsigned char)(index >> 16);
	key[SPOOL_ID_SIZE + 2] = (unsigned char)(index >> 8);
	key[SPOOL_ID_SIZE + 3] = (unsigned char)index;
}

void
record_sched_key(unsigned char k[RECORD_SCHED_KEY_LEN], int cls, int64_t due,
    const char *id, uint32_t index)
{
	uint64_t u = (uint64_t)(due < 0 ? 0 : due);

	k[0] = (unsigned char)cls;
	for (int i = 0; i < 8; i++)
		k[1 + i] = (unsigned char)(u >> (56 - 8 * i));
	memcpy(k + 9, id, SPOOL_ID_LEN);
	for (int i = 0; i < 4; i++)
		k[9 + SPOOL_ID_LEN + i] = (unsigned char)(index >> (24 - 8 * i));
}

bool
record_sched_key_parse(const void *data, size_t len, struct sched_key *out)
{
	const unsigned char *k = data;
	uint64_t u = 0;

	if (len != RECORD_SCHED_KEY_LEN)
		return false;
	out->cls = k[0];
	for (int i = 0; i < 8; i++)
		u = u << 8 | k[1 + i];
	out->due = (int64_t)u;
	memcpy(out->id, k + 9, SPOOL_ID_LEN);
	out->id[SPOOL_ID_LEN] = '\0';
	out->index = 0;
	for (int i = 0; i < 4; i++)
		out->index = out->index << 8 | k[9 + SPOOL_ID_LEN + i];
	return spool_id_valid(out->id);
}

void
spool_msg_free(struct spool_msg *msg)
{
	free(msg->sender);
	free(msg->envid);
	free(msg->lane);
	free(msg->user);
	free(msg->move_pool);
	free(msg->move_source);
	free(msg->move_provider);
	msg->sender = msg->envid = msg->lane = msg->user = NULL;
	msg->move_pool = msg->move_source = msg->move_provider = NULL;
}

void
spool_rcpt_clear(struct spool_rcpt *rcpt)
{
	free(rcpt->address);
	free(rcpt->orcpt);
	free(rcpt->last_response);
	free(rcpt->last_relay);
	free(rcpt->status);
	free(rcpt->class);
	free(rcpt->last_source);
	memset(rcpt, 0, sizeof(*rcpt));
}

void
spool_rcpts_free(struct spool_rcpt *rcpts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		spool_rcpt_clear(&rcpts[i]);
	free(rcpts);
}

bool
spool_id_valid(const char *id)
{
	size_t i;

	for (i = 0; i < SPOOL_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'A' && id[i] <= 'F')))
			return false;
	return id[i] == '\0';
}

static void
id_format(char id[SPOOL_ID_SIZE], uint64_t sec, uint32_t usec)
{
	static const char hex[] = "0123456789ABCDEF";
	uint64_t v = (sec & 0xffffffffu) << 20 | (usec & 0xfffffu);

	for (int i = SPOOL_ID_LEN - 1; i >= 0; i--) {
		id[i] = hex[v & 0xf];
		v >>= 4;
	}
	id[SPOOL_ID_LEN] = '\0';
}

int64_t
spool_id_start(struct spool_id_seq *q, char id[SPOOL_ID_SIZE])
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	q->sec = (uint64_t)tv.tv_sec;
	q->usec = (uint32_t)tv.tv_usec;
	id_format(id, q->sec, q->usec);
	return tv.tv_sec;
}

void
spool_id_next(struct spool_id_seq *q, char id[SPOOL_ID_SIZE])
{
	if (++q->usec > 0xfffffu) {
		q->usec = 0;
		q->sec++;
	}
	id_format(id, q->sec, q->usec);
}
