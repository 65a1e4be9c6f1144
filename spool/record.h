/*
 * NAME
 *	record - the byte layout of envelope and recipient records
 * DESCRIPTION
 *	Records are versioned, length-counted and validated when read back:
 *	a record that does not decode cleanly (truncated, trailing bytes,
 *	unknown version, out-of-range enum, string with a NUL inside) is
 *	refused rather than half-used. Integers are big-endian.
 *
 *	Pure functions of bytes and values: nothing here knows BerkeleyDB
 *	or the spool, only the types in spool_types.h.
 */
#ifndef MXLANE_RECORD_H
#define MXLANE_RECORD_H

#include "lib/util.h"
#include "spool/spool_types.h"

/*
 * The pieces records are made of, for the spool's other tables too:
 * integers big-endian, a string as its length (0xffffffff for none)
 * and its octets. A reader that runs short, or meets a NUL inside a
 * string, turns bad and gives zeros and NULLs from then on.
 */
struct record_reader {
	const unsigned char *p;
	size_t left;
	bool bad;
};
void record_put_str(struct buf *out, const char *s);
uint32_t record_get_u32(struct record_reader *r);
int64_t record_get_i64(struct record_reader *r);
char *record_get_str(struct record_reader *r);	/* NULL: none, or bad */

void record_encode_msg(const struct spool_msg *msg, struct buf *out);
int record_decode_msg(const void *data, size_t len, struct spool_msg *msg);
void record_encode_rcpt(const struct spool_rcpt *rcpt, struct buf *out);
int record_decode_rcpt(const void *data, size_t len, struct spool_rcpt *rcpt);

/* Recipient and content keys: queue id, NUL, 32-bit big-endian index. */
#define RECORD_SUBKEY_LEN (SPOOL_ID_SIZE + 4)
void record_subkey(const char *id, uint32_t index,
    unsigned char key[RECORD_SUBKEY_LEN]);

/*
 * Schedule keys (schedule.db, see schedule.c): class(1) due(8) id(13)
 * index(4), integers big-endian, so b-tree order is class, then due
 * time, then queue id and index. A due time before 1970 is stored as 0.
 */
#define SCHED_PRIORITY	0	/* the priority lane, always looked at first */
#define SCHED_NORMAL	1	/* every other lane */
#define SCHED_FINISH	2	/* messages waiting for spool_finish() */
#define SCHED_FINISH_INDEX 0xffffffffu	/* the index of a finish key */
#define RECORD_SCHED_KEY_LEN (1 + 8 + SPOOL_ID_LEN + 4)
struct sched_key {
	int cls;
	int64_t due;
	char id[SPOOL_ID_SIZE];
	uint32_t index;
};
void record_sched_key(unsigned char k[RECORD_SCHED_KEY_LEN], int cls,
    int64_t due, const char *id, uint32_t index);
/* False unless len and the queue id are right. */
bool record_sched_key_parse(const void *data, size_t len,
    struct sched_key *out);

#endif
