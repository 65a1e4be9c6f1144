/*
 * test_schedule - claiming, leases, results, finish entries and the
 * throttle state, against a real spool: what the queue runner relies on
 * for "no two runners deliver the same recipient" and "a dead runner's
 * claims come back".
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-schedule-XXXXXX";

static void
queue(struct spool *sp, const char *lane, const char *rcpt1, const char *rcpt2,
    char *id)
{
	struct spool_msg msg;
	struct spool_rcpt r[2];

	memset(&msg, 0, sizeof(msg));
	memset(r, 0, sizeof(r));
	msg.sender = "s@example.org";
	msg.lane = (char *)lane;
	msg.user = "t";
	r[0].address = (char *)rcpt1;
	r[1].address = (char *)rcpt2;
	CHECK_INT(spool_submit(sp, &msg, r, rcpt2 ? 2 : 1, NULL, NULL, "x\r\n",
	    3), 0);
	memcpy(id, msg.id, SPOOL_ID_SIZE);
}

static void
test_claim_order_and_lease(struct spool *sp)
{
	char bulk[SPOOL_ID_SIZE], prio[SPOOL_ID_SIZE];
	struct spool_work *w;
	size_t n;
	int64_t now = time(NULL);

	queue(sp, "bulk", "a@one.test", "b@two.test", bulk);
	queue(sp, "priority", "c@one.test", NULL, prio);
	/* Priority first, although it arrived later. */
	CHECK_INT(spool_claim_due(sp, NULL, now + 1, 60, 100, &w, &n), 0);
	CHECK_INT(n, 3);
	CHECK_STR(w[0].id, prio);
	CHECK_STR(w[0].domain, "one.test");
	CHECK_STR(w[1].id, bulk);
	spool_work_free(w, n);
	/* Claimed: nobody else gets them while the lease runs. */
	CHECK_INT(spool_claim_due(sp, NULL, now + 30, 60, 100, &w, &n), 0);
	CHECK_INT(n, 0);
	spool_work_free(w, n);
	/* Lease over (runner died): they come back. */
	CHECK_INT(spool_claim_due(sp, NULL, now + 62, 60, 100, &w, &n), 0);
	CHECK_INT(n, 3);
	spool_work_free(w, n);

	/* Results: one sent, one deferred, one bounced. */
	struct spool_result r1[] = {
		{0, RCPT_SENT, 0, true, "250 ok", "mx[127.0.0.1]:25", "2.0.0", false,
		    NULL, NULL},
		{1, RCPT_QUEUED, now + 600, true, "451 later", NULL, "4.0.0",
		    false, "transient", NULL},
	};
	bool all_final;
	CHECK_INT(spool_record_results(sp, bulk, r1, 2, now + 62, &all_final),
	    0);
	CHECK(!all_final);
	struct spool_msg msg;
	struct spool_rcpt *rc;
	size_t nr;
	CHECK_INT(spool_get(sp, bulk, &msg, &rc, &nr), 0);
	CHECK_INT(rc[0].state, RCPT_SENT);
	CHECK_INT(rc[1].state, RCPT_QUEUED);
	CHECK_INT(rc[1].attempts, 1);
	CHECK_STR(rc[1].last_response, "451 later");
	CHECK_STR(rc[1].status, "4.0.0");
	CHECK_STR(rc[0].status, "2.0.0");
	CHECK_INT(rc[1].flags, 0);
	spool_msg_free(&msg);
	spool_rcpts_free(rc, nr);
	/* Deferred: not due before next_try, due with --flush. */
	CHECK_INT(spool_claim_message(sp, bulk, false, now + 100, 60, &w, &n),
	    0);
	CHECK_INT(n, 0);
	spool_work_free(w, n);
	CHECK_INT(spool_claim_message(sp, bulk, true, now + 100, 60, &w, &n),
	    0);
	CHECK_INT(n, 1);
	spool_work_free(w, n);
	struct spool_result r2[] = {
		{1, RCPT_BOUNCED, 0, true, "550 no", NULL, "5.1.1", false,
		    "bad-mailbox", NULL},
	};
	CHECK_INT(spool_record_results(sp, bulk, r2, 1, now + 100, &all_final),
	    0);
	CHECK(all_final);
	/* Each recipient keeps its own class; a success none. */
	{
		struct spool_msg m2;
		struct spool_rcpt *rc2;
		size_t nr2;
		CHECK_INT(spool_get(sp, bulk, &m2, &rc2, &nr2), SPOOL_OK);
		CHECK_INT(nr2, 2);
		CHECK(rc2[0].class == NULL);
		CHECK_STR(rc2[1].class, "bad-mailbox");
		spool_msg_free(&m2);
		spool_rcpts_free(rc2, nr2);
	}
	char ids[4][SPOOL_ID_SIZE];
	CHECK_INT(spool_pending_finish(sp, ids, 4, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(ids[0], bulk);
	CHECK_INT(spool_finish(sp, bulk, NULL, SPOOL_FINISH_REMOVE, NULL, 0), 0);
	CHECK_INT(spool_get(sp, bulk, &msg, NULL, NULL), SPOOL_NOTFOUND);
	CHECK_INT(spool_pending_finish(sp, ids, 4, &n), 0);
	CHECK_INT(n, 0);

	/* The priority one is still claimed (lease to now+122). */
	CHECK(spool_priority_due(sp, now + 200));
	CHECK(!spool_priority_due(sp, now + 100));
	int64_t when;
	CHECK(spool_next_due(sp, &when));
	CHECK_INT(when, now + 62 + 60);
	CHECK_INT(spool_remove(sp, prio), 0);
	CHECK(!spool_next_due(sp, &when));
}

static void
test_filters(struct spool *sp)
{
	char a[SPOOL_ID_SIZE], b[SPOOL_ID_SIZE];
	struct spool_work *w;
	size_t n;
	int64_t now = time(NULL) + 1;
	struct spool_claim_filter by_domain = {"two.test", NULL, NULL, false, 0};
	struct spool_claim_filter by_lane = {NULL, NULL, "priority", false, 0};

	queue(sp, "bulk", "a@one.test", "b@two.test", a);
	queue(sp, "priority", "c@two.test", NULL, b);
	CHECK_INT(spool_claim_due(sp, &by_lane, now, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(w[0].id, b);
	spool_work_free(w, n);
	CHECK_INT(spool_claim_due(sp, &by_domain, now, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(w[0].address, "b@two.test");
	spool_work_free(w, n);
	CHECK_INT(spool_remove(sp, a), 0);
	CHECK_INT(spool_remove(sp, b), 0);
}

/*
 * One pass tries a recipient once: deferred by an attempt of this pass
 * (next_try after the pass began), it is left for the next pass even
 * when it comes due; new mail and held-back mail are still claimed.
 */
static void
test_tried_since(struct spool *sp)
{
	char a[SPOOL_ID_SIZE], b[SPOOL_ID_SIZE];
	struct spool_work *w;
	size_t n;
	bool all_final;
	int64_t start = time(NULL) + 1;
	struct spool_claim_filter pass = {NULL, NULL, NULL, false, start};

	queue(sp, "bulk", "a@one.test", NULL, a);
	CHECK_INT(spool_claim_due(sp, &pass, start, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	spool_work_free(w, n);
	struct spool_result deferred[] = {
		{0, RCPT_QUEUED, start + 1, true, "451 later", NULL, "4.0.0",
		    false, NULL, NULL},
	};
	CHECK_INT(spool_record_results(sp, a, deferred, 1, start, &all_final),
	    0);
	queue(sp, "bulk", "b@one.test", NULL, b);
	/* Due again at start + 1, but this pass tried it: only b. */
	CHECK_INT(spool_claim_due(sp, &pass, start + 2, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(n ? w[0].id : "", b);
	spool_work_free(w, n);
	/* The next pass (or no filter) takes it. */
	struct spool_claim_filter next = {NULL, NULL, NULL, false, start + 2};
	CHECK_INT(spool_claim_due(sp, &next, start + 2, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(n ? w[0].id : "", a);
	spool_work_free(w, n);
	/* Held back by a throttle (not an attempt): the same pass again. */
	struct spool_result held[] = {
		{0, RCPT_QUEUED, start + 3, false, NULL, NULL, NULL, true, NULL, NULL},
	};
	CHECK_INT(spool_record_results(sp, a, held, 1, start + 2, &all_final),
	    0);
	CHECK_INT(spool_claim_due(sp, &next, start + 3, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	spool_work_free(w, n);
	CHECK_INT(spool_remove(sp, a), 0);
	CHECK_INT(spool_remove(sp, b), 0);
}

/* Two processes claiming at once never get the same recipient. */
static void
test_concurrent_claims(void)
{
	struct spool *sp;
	char id[SPOOL_ID_SIZE];
	int fds[2];

	CHECK_INT(spool_open(dir, &sp), 0);
	for (int i = 0; i < 200; i++)
		queue(sp, "bulk", "x@c.test", NULL, id);
	spool_close(sp);
	if (pipe(fds) != 0)
		return;
	for (int p = 0; p < 4; p++) {
		if (fork() == 0) {
			struct spool *child;
			struct spool_work *w;
			size_t n, total = 0;
			if (spool_open(dir, &child) != 0)
				_exit(3);
			do {
				if (spool_claim_due(child, NULL, time(NULL) + 1,
				    600, 7, &w, &n) != 0)
					_exit(4);
				for (size_t i = 0; i < n; i++)
					if (write(fds[1], w[i].id,
					    SPOOL_ID_LEN) != SPOOL_ID_LEN)
						_exit(5);
				total += n;
				spool_work_free(w, n);
			} while (n > 0 && total < 1000);
			spool_close(child);
			_exit(0);
		}
	}
	close(fds[1]);
	char buf[SPOOL_ID_LEN];
	char (*seen)[SPOOL_ID_SIZE] = calloc(1000, SPOOL_ID_SIZE);
	size_t nseen = 0, dups = 0;
	while (read(fds[0], buf, SPOOL_ID_LEN) == SPOOL_ID_LEN && nseen < 1000) {
		for (size_t i = 0; i < nseen; i++)
			if (memcmp(seen[i], buf, SPOOL_ID_LEN) == 0)
				dups++;
		memcpy(seen[nseen], buf, SPOOL_ID_LEN);
		seen[nseen++][SPOOL_ID_LEN] = '\0';
	}
	close(fds[0]);
	int status, bad = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	CHECK_INT(bad, 0);
	CHECK_INT(nseen, 200);
	CHECK_INT(dups, 0);
	free(seen);
}

static void
test_throttle(struct spool *sp)
{
	struct spool_throttle_limits rate = {0, 10, 60, 0};
	struct spool_throttle_grant g;

	/* 10 per minute: 10 now, then nothing, across calls. */
	CHECK_INT(spool_throttle_acquire(sp, "p|a", &rate, false, 7, 60, &g),
	    0);
	CHECK_INT(g.granted, 7);
	CHECK_INT(spool_throttle_acquire(sp, "p|a", &rate, false, 7, 60, &g),
	    0);
	CHECK_INT(g.granted, 3);
	CHECK_INT(spool_throttle_acquire(sp, "p|a", &rate, false, 7, 60, &g),
	    0);
	CHECK_INT(g.granted, 0);
	CHECK(g.retry_ms > 0);
	/* Unused grants come back; the used one counts when it went. */
	struct spool_throttle_grant seven;
	CHECK_INT(spool_throttle_acquire(sp, "p|c", &rate, false, 7, 60,
	    &seven), 0);
	CHECK_INT(spool_throttle_acquire(sp, "p|c", &rate, false, 7, 60, &g),
	    0);
	CHECK_INT(g.granted, 3);
	int64_t went = wall_ms();
	CHECK_INT(spool_throttle_release(sp, "p|c", &g, 2, &went, 1), 0);
	CHECK_INT(spool_throttle_acquire(sp, "p|c", &rate, false, 7, 60, &g),
	    0);
	CHECK_INT(g.granted, 2);

	/*
	 * Used grants move to when they went: 10 granted now and sent
	 * longer ago than the window (as far as the spool can tell) free
	 * the budget at once; sent now, they hold it.
	 */
	struct spool_throttle_limits per_second = {0, 10, 1, 0};
	int64_t sent[10];
	CHECK_INT(spool_throttle_acquire(sp, "s|a", &per_second, false, 10,
	    60, &g), 0);
	CHECK_INT(g.granted, 10);
	for (int i = 0; i < 10; i++)
		sent[i] = wall_ms() - 5000;
	CHECK_INT(spool_throttle_release(sp, "s|a", &g, 0, sent, 10), 0);
	CHECK_INT(spool_throttle_acquire(sp, "s|a", &per_second, false, 10,
	    60, &g), 0);
	CHECK_INT(g.granted, 10);
	for (int i = 0; i < 10; i++)
		sent[i] = wall_ms();
	CHECK_INT(spool_throttle_release(sp, "s|a", &g, 0, sent, 10), 0);
	CHECK_INT(spool_throttle_acquire(sp, "s|a", &per_second, false, 10,
	    60, &g), 0);
	CHECK_INT(g.granted, 0);
	CHECK(g.retry_ms >= sent[9]);
	/* Another key has its own budget. */
	CHECK_INT(spool_throttle_acquire(sp, "p|b", &rate, false, 20, 60, &g),
	    0);
	CHECK_INT(g.granted, 10);

	/* Concurrency: slots held until released. */
	struct spool_throttle_limits conc = {2, 0, 0, 0};
	struct spool_throttle_grant g1, g2, g3;
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, false, 5, 60, &g1),
	    0);
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, false, 5, 60, &g2),
	    0);
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, false, 5, 60, &g3),
	    0);
	CHECK_INT(g1.granted, 5);
	CHECK_INT(g2.granted, 5);
	CHECK_INT(g3.granted, 0);
	CHECK_INT(spool_throttle_release(sp, "c|a", &g1, 0, NULL, 0), 0);
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, false, 5, 60, &g3),
	    0);
	CHECK_INT(g3.granted, 5);

	/* A waiting priority delivery stops bulk from taking the next slot. */
	struct spool_throttle_grant gp, gb;
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, true, 1, 60, &gp),
	    0);
	CHECK_INT(gp.granted, 0);
	CHECK_INT(spool_throttle_release(sp, "c|a", &g2, 0, NULL, 0), 0);
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, false, 1, 60, &gb),
	    0);
	CHECK_INT(gb.granted, 0);
	CHECK_INT(spool_throttle_acquire(sp, "c|a", &conc, true, 1, 60, &gp),
	    0);
	CHECK_INT(gp.granted, 1);

	/* Delay: one at a time, then a wait. */
	struct spool_throttle_limits gap = {0, 0, 0, 60000};
	CHECK_INT(spool_throttle_acquire(sp, "d|a", &gap, false, 9, 60, &g), 0);
	CHECK_INT(g.granted, 1);
	CHECK_INT(spool_throttle_acquire(sp, "d|a", &gap, false, 9, 60, &g), 0);
	CHECK_INT(g.granted, 0);

	/* Booking spaces held mail at the throttle's pace. */
	int64_t first = 0, step, first2 = 0;
	CHECK_INT(spool_throttle_book(sp, "p|a", &rate, 5, &first, &step), 0);
	CHECK_INT(step, 6000);
	CHECK_INT(spool_throttle_book(sp, "p|a", &rate, 5, &first2, &step), 0);
	CHECK_INT(first2, first + 5 * 6000);

	uint64_t v;
	CHECK_INT(spool_counter_take(sp, "k", 0, &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(spool_counter_take(sp, "k", 5, &v), 0);
	CHECK_INT(spool_counter_take(sp, "k", 0, &v), 0);
	CHECK_INT(v, 5);
}


/*
 * A held message (spool/admin.c): never claimed, by a pass, by id or
 * after a flush; held while claimed, its claims stay with their runner,
 * and the result it hands back does not schedule it again. A message
 * queued held (as a maildrop file with the flag) has no key at all.
 */
static void
test_hold(void)
{
	char sub[sizeof(dir) + 8], id[SPOOL_ID_SIZE], id2[SPOOL_ID_SIZE];
	struct spool *sp;
	struct spool_work *w;
	size_t n;
	int64_t now = time(NULL);

	snprintf(sub, sizeof(sub), "%s/hold", dir);
	CHECK_INT(mkdir(sub, 0700), 0);
	CHECK_INT(spool_open(sub, &sp), 0);
	queue(sp, "bulk", "a@one.test", "b@two.test", id);
	CHECK_INT(spool_claim_due(sp, NULL, now + 1, 60, 1, &w, &n), 0);
	CHECK_INT(n, 1);		/* one claimed, one still due */
	struct spool_admin_how how = {0};
	struct spool_admin_item item = {0};
	memcpy(item.id, id, SPOOL_ID_SIZE);
	CHECK_INT(spool_admin_apply(sp, SPOOL_ADMIN_HOLD, &how, &item, 1,
	    now + 1), 0);
	CHECK(item.found);
	struct spool_msg msg;
	struct spool_rcpt *rc;
	size_t nr;
	CHECK_INT(spool_get(sp, id, &msg, &rc, &nr), 0);
	CHECK(msg.flags & SPOOL_MSG_HELD);
	CHECK_INT(rc[0].state, RCPT_ACTIVE);	/* left to its claimer */
	CHECK_INT(rc[1].state, RCPT_QUEUED);
	spool_msg_free(&msg);
	spool_rcpts_free(rc, nr);
	/* The claimer's hand-back does not bring it back. */
	struct spool_result back = {w[0].index, RCPT_QUEUED, now + 1, false,
	    NULL, NULL, NULL, false, NULL, NULL};
	bool all_final;
	CHECK_INT(spool_record_results(sp, id, &back, 1, now + 1, &all_final),
	    0);
	spool_work_free(w, n);
	CHECK_INT(spool_get(sp, id, &msg, &rc, &nr), 0);
	CHECK_INT(rc[0].state, RCPT_QUEUED);
	spool_msg_free(&msg);
	spool_rcpts_free(rc, nr);
	struct spool_claim_filter flush = {NULL, NULL, NULL, true, 0};
	CHECK_INT(spool_claim_due(sp, &flush, now + 7200, 60, 100, &w, &n), 0);
	CHECK_INT(n, 0);
	spool_work_free(w, n);
	CHECK_INT(spool_flush_message(sp, id, now + 2), 0);
	CHECK_INT(spool_claim_message(sp, id, true, now + 2, 60, &w, &n), 0);
	CHECK_INT(n, 0);
	spool_work_free(w, n);
	int64_t when;
	CHECK(!spool_next_due(sp, &when));

	/* Queued held from the start (as the pickup of a held file). */
	struct spool_rcpt r;
	memset(&msg, 0, sizeof(msg));
	memset(&r, 0, sizeof(r));
	msg.sender = "s@example.org";
	msg.lane = "priority";
	msg.user = "t";
	msg.flags = SPOOL_MSG_HELD;
	r.address = "c@one.test";
	CHECK_INT(spool_submit(sp, &msg, &r, 1, NULL, NULL, "x\r\n", 3), 0);
	memcpy(id2, msg.id, SPOOL_ID_SIZE);
	CHECK(!spool_next_due(sp, &when));
	CHECK_INT(spool_claim_message(sp, id2, true, now + 2, 60, &w, &n), 0);
	CHECK_INT(n, 0);
	spool_work_free(w, n);
	/* "Scanned" is only a mark: the message stays due. */
	queue(sp, "bulk", "d@one.test", NULL, id);
	CHECK_INT(spool_msg_add_flags(sp, id, SPOOL_MSG_SCANNED), 0);
	CHECK_INT(spool_claim_due(sp, NULL, now + 1, 60, 100, &w, &n), 0);
	CHECK_INT(n, 1);
	spool_work_free(w, n);
	spool_close(sp);
}

int
main(void)
{
	struct spool *sp;

	log_init("test_schedule");
	log_set_file("/dev/null");
	if (mkdtemp(dir) == NULL)
		return 2;
	CHECK_INT(spool_open(dir, &sp), 0);
	test_claim_order_and_lease(sp);
	test_filters(sp);
	test_tried_since(sp);
	test_throttle(sp);
	spool_close(sp);
	test_concurrent_claims();
	test_hold();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("schedule");
}
