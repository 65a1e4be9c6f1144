/*
 * NAME
 *	test_admin - which mail the admin verbs choose
 * DESCRIPTION
 *	admin_select_msg() and admin_select_rcpt() (queuerun/admin.h) on
 *	envelopes and recipients made here: each selector alone, the null
 *	sender, case, and that only pending recipients are ever chosen.
 *	--provider and --pool need the next-hop decision and are tested
 *	by tests/integration/queue_admin.sh.
 */
#include <stdlib.h>
#include <string.h>

#include "queuerun/admin.h"
#include "tests/unit/unit.h"

static struct spool_msg
msg(const char *id, const char *sender, const char *lane, int64_t arrival)
{
	struct spool_msg m;

	memset(&m, 0, sizeof(m));
	strcpy(m.id, id);
	m.sender = (char *)sender;
	m.lane = (char *)lane;
	m.arrival = arrival;
	return m;
}

static struct spool_rcpt
rcpt(const char *address, enum spool_rcpt_state state, uint32_t attempts,
    const char *class, const char *source)
{
	struct spool_rcpt r;

	memset(&r, 0, sizeof(r));
	r.address = (char *)address;
	r.state = state;
	r.attempts = attempts;
	r.class = (char *)class;
	r.last_source = (char *)source;
	return r;
}

static void
test_msg_selectors(void)
{
	struct admin_select s;
	char *ids[] = {"0123456789ABC"};
	struct spool_msg a = msg("0123456789ABC", "Alice@Example.org", "bulk",
	    1000);
	struct spool_msg b = msg("0123456789ABD", "", "default", 5000);

	memset(&s, 0, sizeof(s));
	s.ids = ids;
	s.nids = 1;
	CHECK(admin_select_msg(&s, &a, 6000));
	CHECK(!admin_select_msg(&s, &b, 6000));
	s.nids = 0;
	s.all = true;
	CHECK(admin_select_msg(&s, &b, 6000));
	s.lane = "bulk";
	CHECK(admin_select_msg(&s, &a, 6000));
	CHECK(!admin_select_msg(&s, &b, 6000));
	s.lane = NULL;
	s.sender = "alice@EXAMPLE.org";
	CHECK(admin_select_msg(&s, &a, 6000));
	CHECK(!admin_select_msg(&s, &b, 6000));
	s.sender = "<>";
	CHECK(!admin_select_msg(&s, &a, 6000));
	CHECK(admin_select_msg(&s, &b, 6000));
	s.sender = "";
	CHECK(admin_select_msg(&s, &b, 6000));
	s.sender = NULL;
	s.older_than = 3600;
	CHECK(admin_select_msg(&s, &a, 6000));	/* 5000 s old */
	CHECK(!admin_select_msg(&s, &b, 6000));	/* 1000 s */
	CHECK(admin_select_msg(&s, &b, 8600));	/* exactly the age */
}

static void
test_rcpt_selectors(void)
{
	struct admin_select s;
	struct spool_msg m = msg("0123456789ABC", "a@example.org", "bulk", 0);
	struct spool_rcpt fresh = rcpt("x@AOL.com", RCPT_QUEUED, 0, NULL,
	    NULL);
	struct spool_rcpt tried = rcpt("y@aol.com", RCPT_QUEUED, 2,
	    "transient", "203.0.113.44");
	struct spool_rcpt active = rcpt("z@gmail.com", RCPT_ACTIVE, 1,
	    "rate", "203.0.113.45");
	struct spool_rcpt sent = rcpt("w@aol.com", RCPT_SENT, 1, NULL,
	    "203.0.113.44");
	struct spool_rcpt bounced = rcpt("v@aol.com", RCPT_BOUNCED, 1,
	    "bad-mailbox", "203.0.113.44");

	memset(&s, 0, sizeof(s));
	s.all = true;
	CHECK(!admin_select_by_rcpt(&s));
	CHECK(admin_select_rcpt(&s, &m, &fresh));
	CHECK(admin_select_rcpt(&s, &m, &active));
	/* Final recipients are never chosen. */
	CHECK(!admin_select_rcpt(&s, &m, &sent));
	CHECK(!admin_select_rcpt(&s, &m, &bounced));
	s.domain = "aol.COM";
	CHECK(admin_select_by_rcpt(&s));
	CHECK(admin_select_rcpt(&s, &m, &fresh));
	CHECK(!admin_select_rcpt(&s, &m, &active));
	s.domain = NULL;
	s.recipient = "Y@aol.com";
	CHECK(admin_select_rcpt(&s, &m, &tried));
	CHECK(!admin_select_rcpt(&s, &m, &fresh));
	s.recipient = NULL;
	s.deferred = true;
	CHECK(!admin_select_rcpt(&s, &m, &fresh));
	CHECK(admin_select_rcpt(&s, &m, &tried));
	s.deferred = false;
	s.class = "transient";
	CHECK(admin_select_rcpt(&s, &m, &tried));
	CHECK(!admin_select_rcpt(&s, &m, &active));
	CHECK(!admin_select_rcpt(&s, &m, &fresh));
	s.class = NULL;
	s.source = "203.0.113.44";
	CHECK(admin_select_rcpt(&s, &m, &tried));
	CHECK(!admin_select_rcpt(&s, &m, &active));
	CHECK(!admin_select_rcpt(&s, &m, &fresh));
	/* A moved message leaves from its move's source from now on. */
	m.move_source = "203.0.113.45";
	CHECK(!admin_select_rcpt(&s, &m, &tried));
	s.source = "203.0.113.45";
	CHECK(admin_select_rcpt(&s, &m, &fresh));
	/* Combined: all must hold. */
	s.domain = "aol.com";
	s.deferred = true;
	CHECK(admin_select_rcpt(&s, &m, &tried));
	CHECK(!admin_select_rcpt(&s, &m, &fresh));
	CHECK(!admin_select_rcpt(&s, &m, &active));
}

int
main(void)
{
	test_msg_selectors();
	test_rcpt_selectors();
	return unit_done("admin");
}
