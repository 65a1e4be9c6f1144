/*
 * test_record - envelope and recipient records survive a round trip,
 * damaged records are refused rather than half-read, and keys keep the
 * byte layout (and so the order) that spools on disk have.
 */
#include <stdlib.h>
#include <string.h>

#include "spool/record.h"
#include "tests/unit/unit.h"

static void
test_msg_roundtrip(void)
{
	struct spool_msg in, out;
	struct buf b = BUF_INIT;

	memset(&in, 0, sizeof(in));
	strcpy(in.id, "0123456789ABC");
	in.sender = "alice@example.org";
	in.envid = "env-1";
	in.ret = SPOOL_RET_HDRS;
	in.body = SPOOL_BODY_8BITMIME;
	in.lane = "bulk";
	in.arrival = 1795613231;
	in.uid = 33;
	in.user = "www-data";
	in.size = 5000000000ULL;
	in.nrcpt = 3;
	in.flags = SPOOL_MSG_HELD;
	record_encode_msg(&in, &b);
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK_STR(out.id, "0123456789ABC");
	CHECK_STR(out.sender, "alice@example.org");
	CHECK_STR(out.envid, "env-1");
	CHECK_INT(out.ret, SPOOL_RET_HDRS);
	CHECK_INT(out.body, SPOOL_BODY_8BITMIME);
	CHECK_STR(out.lane, "bulk");
	CHECK_INT(out.arrival, 1795613231);
	CHECK_INT(out.uid, 33);
	CHECK_STR(out.user, "www-data");
	CHECK(out.size == 5000000000ULL);
	CHECK_INT(out.nrcpt, 3);
	CHECK_INT(out.flags, SPOOL_MSG_HELD);
	spool_msg_free(&out);

	/* Every truncation must be refused, never read past the end. */
	int refused = 0;
	for (size_t len = 0; len < b.len; len++)
		if (record_decode_msg(b.data, len, &out) != 0)
			refused++;
		else
			spool_msg_free(&out);
	CHECK_INT(refused, b.len);
	/* Trailing garbage is refused too. */
	buf_putc(&b, 'x');
	CHECK(record_decode_msg(b.data, b.len, &out) != 0);
	/* Unknown version. */
	b.data[3] = 9;
	CHECK(record_decode_msg(b.data, b.len - 1, &out) != 0);
	buf_free(&b);

	/* Null sender and no envid round-trip as "" and NULL. */
	in.sender = "";
	in.envid = NULL;
	record_encode_msg(&in, &b);
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK_STR(out.sender, "");
	CHECK(out.envid == NULL);
	spool_msg_free(&out);
	buf_free(&b);

	/* A bad queue id inside the record is refused. */
	strcpy(in.id, "0123456789abc");
	record_encode_msg(&in, &b);
	CHECK(record_decode_msg(b.data, b.len, &out) != 0);
	buf_free(&b);
}

static void
test_rcpt_roundtrip(void)
{
	struct spool_rcpt in, out;
	struct buf b = BUF_INIT;

	memset(&in, 0, sizeof(in));
	in.index = 7;
	in.address = "bob@example.com";
	in.orcpt = "rfc822;bob@example.com";
	in.notify = SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_DELAY;
	in.state = RCPT_ACTIVE;
	in.attempts = 4;
	in.next_try = 1795613300;
	in.lease_until = -5;
	in.done_time = 12;
	in.last_response = "451 4.3.0 try again";
	in.last_relay = "mx.example.com[192.0.2.1]:25";
	in.status = "4.3.0";
	in.flags = SPOOL_RCPT_NOTIFIED;
	record_encode_rcpt(&in, &b);
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK_INT(out.index, 7);
	CHECK_STR(out.address, "bob@example.com");
	CHECK_STR(out.orcpt, "rfc822;bob@example.com");
	CHECK_INT(out.notify, SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_DELAY);
	CHECK_INT(out.state, RCPT_ACTIVE);
	CHECK_INT(out.attempts, 4);
	CHECK_INT(out.next_try, 1795613300);
	CHECK_INT(out.lease_until, -5);
	CHECK_INT(out.done_time, 12);
	CHECK_STR(out.last_response, "451 4.3.0 try again");
	CHECK_STR(out.last_relay, "mx.example.com[192.0.2.1]:25");
	CHECK_STR(out.status, "4.3.0");
	CHECK_INT(out.flags, SPOOL_RCPT_NOTIFIED);
	spool_rcpt_clear(&out);

	int refused = 0;
	for (size_t len = 0; len < b.len; len++)
		if (record_decode_rcpt(b.data, len, &out) != 0)
			refused++;
		else
			spool_rcpt_clear(&out);
	CHECK_INT(refused, b.len);
	buf_free(&b);

	/* Out-of-range state is refused. */
	in.state = (enum spool_rcpt_state)42;
	record_encode_rcpt(&in, &b);
	CHECK(record_decode_rcpt(b.data, b.len, &out) != 0);
	buf_free(&b);
	/* A NUL inside a string is refused. */
	in.state = RCPT_QUEUED;
	record_encode_rcpt(&in, &b);
	char *at = memmem(b.data, b.len, "bob@", 4);
	at[1] = '\0';
	CHECK(record_decode_rcpt(b.data, b.len, &out) != 0);
	buf_free(&b);
}

/*
 * The reply class (version 3) round-trips; a version 2 record, written
 * before classes existed, still decodes, with no class.
 */
static void
test_rcpt_class(void)
{
	struct spool_rcpt in, out;
	struct buf b = BUF_INIT;

	memset(&in, 0, sizeof(in));
	in.index = 2;
	in.address = "gone@example.com";
	in.state = RCPT_BOUNCED;
	in.last_response = "550 5.1.1 <gone@example.com>: user unknown";
	in.status = "5.1.1";
	in.class = "bad-mailbox";
	record_encode_rcpt(&in, &b);
	CHECK_INT(get_be32((const unsigned char *)b.data), 4);
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK_STR(out.class, "bad-mailbox");
	CHECK_STR(out.status, "5.1.1");
	spool_rcpt_clear(&out);
	buf_free(&b);

	/* No class: NULL back. */
	in.class = NULL;
	record_encode_rcpt(&in, &b);
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK(out.class == NULL);
	CHECK(out.last_source == NULL);
	spool_rcpt_clear(&out);

	/* The same record as version 2 wrote it: no class field at all. */
	CHECK(b.len > 8);
	b.len -= 8;	/* the NULL class's and source's length words */
	((unsigned char *)b.data)[3] = 2;
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK_STR(out.address, "gone@example.com");
	CHECK_STR(out.last_response,
	    "550 5.1.1 <gone@example.com>: user unknown");
	CHECK_INT(out.state, RCPT_BOUNCED);
	CHECK(out.class == NULL);
	spool_rcpt_clear(&out);
	/* Version 2 with trailing bytes (a class it cannot have) refused. */
	buf_put_be32(&b, 0);
	CHECK(record_decode_rcpt(b.data, b.len, &out) != 0);
	/* Version 5 is unknown. */
	((unsigned char *)b.data)[3] = 5;
	CHECK(record_decode_rcpt(b.data, b.len, &out) != 0);
	buf_free(&b);
}

/*
 * Version 4 keeps the source of the last attempt; version 3 records
 * (with a class, without it) still decode.
 */
static void
test_rcpt_source(void)
{
	struct spool_rcpt in, out;
	struct buf b = BUF_INIT;

	memset(&in, 0, sizeof(in));
	in.address = "a@example.com";
	in.class = "transient";
	in.last_source = "203.0.113.44";
	record_encode_rcpt(&in, &b);
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK_STR(out.last_source, "203.0.113.44");
	spool_rcpt_clear(&out);
	buf_free(&b);
	in.last_source = NULL;
	record_encode_rcpt(&in, &b);
	b.len -= 4;
	((unsigned char *)b.data)[3] = 3;
	CHECK_INT(record_decode_rcpt(b.data, b.len, &out), 0);
	CHECK_STR(out.class, "transient");
	CHECK(out.last_source == NULL);
	spool_rcpt_clear(&out);
	buf_free(&b);
}

/*
 * Envelope version 3 keeps an administrator's move and the provider it
 * is for; version 2 records decode as a move for every recipient,
 * version 1 records (and maildrop files of an older sendmail) unmoved.
 */
static void
test_msg_move(void)
{
	struct spool_msg in, out;
	struct buf b = BUF_INIT;

	memset(&in, 0, sizeof(in));
	strcpy(in.id, "0123456789ABC");
	in.sender = "";
	in.lane = "bulk";
	in.move_source = "203.0.113.45";
	in.move_provider = "aol";
	record_encode_msg(&in, &b);
	CHECK_INT(get_be32((const unsigned char *)b.data), 3);
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK(out.move_pool == NULL);
	CHECK_STR(out.move_source, "203.0.113.45");
	CHECK_STR(out.move_provider, "aol");
	spool_msg_free(&out);
	buf_free(&b);
	in.move_provider = NULL;
	in.move_source = NULL;
	in.move_pool = "aol-b";
	record_encode_msg(&in, &b);
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK_STR(out.move_pool, "aol-b");
	CHECK(out.move_provider == NULL);
	spool_msg_free(&out);
	/* As version 2 wrote it: a move for every recipient. */
	b.len -= 4;
	((unsigned char *)b.data)[3] = 2;
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK_STR(out.move_pool, "aol-b");
	CHECK(out.move_provider == NULL);
	spool_msg_free(&out);
	buf_free(&b);
	in.move_pool = NULL;
	record_encode_msg(&in, &b);
	b.len -= 12;	/* as version 1 wrote it */
	((unsigned char *)b.data)[3] = 1;
	CHECK_INT(record_decode_msg(b.data, b.len, &out), 0);
	CHECK_STR(out.lane, "bulk");
	CHECK(out.move_pool == NULL && out.move_source == NULL);
	spool_msg_free(&out);
	/* Version 1 with the move's bytes after it: refused. */
	buf_put_be32(&b, 0xffffffffu);
	buf_put_be32(&b, 0xffffffffu);
	CHECK(record_decode_msg(b.data, b.len, &out) != 0);
	buf_free(&b);
}

static void
test_subkey(void)
{
	unsigned char a[RECORD_SUBKEY_LEN], b[RECORD_SUBKEY_LEN];

	record_subkey("0123456789ABC", 1, a);
	record_subkey("0123456789ABC", 256, b);
	/* Big-endian index: byte order sorts like numeric order. */
	CHECK(memcmp(a, b, sizeof(a)) < 0);
	CHECK(memcmp(a, "0123456789ABC", 14) == 0);
	CHECK(spool_id_valid("0123456789ABC"));
	CHECK(!spool_id_valid("0123456789AB"));
	CHECK(!spool_id_valid("0123456789ABCD"));
	CHECK(!spool_id_valid("0123456789ABG"));
	CHECK(!spool_id_valid("../../etc/pas"));
}

static void
test_sched_key(void)
{
	unsigned char a[RECORD_SCHED_KEY_LEN], b[RECORD_SCHED_KEY_LEN];
	static const unsigned char want[RECORD_SCHED_KEY_LEN] = {
	    SCHED_NORMAL, 0, 0, 0, 0, 0x6b, 0x06, 0x2b, 0x2f,
	    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C',
	    0, 0, 1, 2};
	struct sched_key sk;

	/* The layout on disk: class, due and index big-endian. */
	record_sched_key(a, SCHED_NORMAL, 1795566383, "0123456789ABC", 258);
	CHECK(memcmp(a, want, sizeof(a)) == 0);
	CHECK(record_sched_key_parse(a, sizeof(a), &sk));
	CHECK_INT(sk.cls, SCHED_NORMAL);
	CHECK_INT(sk.due, 1795566383);
	CHECK_STR(sk.id, "0123456789ABC");
	CHECK_INT(sk.index, 258);
	/* Class sorts before due time, due time before queue id. */
	record_sched_key(b, SCHED_PRIORITY, 1895566383, "0123456789ABC", 0);
	CHECK(memcmp(b, a, sizeof(a)) < 0);
	record_sched_key(b, SCHED_NORMAL, 1795566384, "0000000000000", 0);
	CHECK(memcmp(a, b, sizeof(a)) < 0);
	/* Before 1970 is stored as 0. */
	record_sched_key(b, SCHED_FINISH, -5, "0123456789ABC",
	    SCHED_FINISH_INDEX);
	CHECK(record_sched_key_parse(b, sizeof(b), &sk));
	CHECK_INT(sk.due, 0);
	CHECK(sk.index == SCHED_FINISH_INDEX);
	CHECK(!record_sched_key_parse(b, sizeof(b) - 1, &sk));
	b[9] = 'x';
	CHECK(!record_sched_key_parse(b, sizeof(b), &sk));
}

int
main(void)
{
	test_msg_roundtrip();
	test_rcpt_roundtrip();
	test_rcpt_class();
	test_rcpt_source();
	test_msg_move();
	test_subkey();
	test_sched_key();
	return unit_done("record");
}
