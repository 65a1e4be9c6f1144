/*
 * test_shaping - the reactions to providers' replies and IP warm-up
 * (queuerun/shaping.c) over a real spool: what is in force when, what
 * ends it, what is logged, the warm-up day and cap, and the "probably
 * listed" warning after a day of nothing but blocks (which the
 * integration tests cannot wait for).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/util.h"
#include "queuerun/shaping.h"
#include "spool/spool.h"
#include "unit.h"

static char dir[] = "/tmp/mxl-test-shaping-XXXXXX";
static char logpath[128];

/* Lines of the log containing needle. */
static int
log_count(const char *needle)
{
	FILE *f = fopen(logpath, "r");
	char line[2048];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

static void
test_suspend(struct spool *sp)
{
	struct reply_rule rule = {.name = "tss04", .class = "spam-block",
	    .action = REPLY_ACTION_SUSPEND, .action_seconds = 3600};
	int64_t t = 1800000000, until;
	char why[512];
	int ended;

	CHECK(shaping_source_ready(sp, "yahoo", NULL, t, &until, why,
	    sizeof(why)));
	CHECK_INT(shaping_react(sp, "yahoo", "192.0.2.1", &rule,
	    "421 4.7.0 [TSS04] go away", t, &until), SHAPING_SOURCE_STOPPED);
	CHECK_INT(until, t + 3600);
	CHECK_INT(log_count("source 192.0.2.1 suspended for yahoo until "
	    "2027-01-15 09:00:00 UTC by rule tss04: 421 4.7.0 [TSS04] go "
	    "away"), 1);
	/* Again (another connection of the moment): in force, not again. */
	CHECK_INT(shaping_react(sp, "yahoo", "192.0.2.1", &rule, "421 again",
	    t + 5, &until), SHAPING_SOURCE_STOPPED);
	CHECK_INT(until, t + 3600);
	CHECK_INT(log_count("suspended for yahoo"), 1);

	struct mxl_source src = {.address = "192.0.2.1"};
	struct mxl_source other = {.address = "192.0.2.2"};
	CHECK(!shaping_source_ready(sp, "yahoo", &src, t + 10, &until, why,
	    sizeof(why)));
	CHECK_INT(until, t + 3600);
	CHECK(strstr(why, "suspended for yahoo") != NULL);
	CHECK(shaping_source_ready(sp, "yahoo", &other, t + 10, &until, why,
	    sizeof(why)));
	CHECK(shaping_source_ready(sp, "gmail", &src, t + 10, &until, why,
	    sizeof(why)));
	/* Its time runs out: ready again, and the end is logged once. */
	CHECK(shaping_source_ready(sp, "yahoo", &src, t + 3600, &until, why,
	    sizeof(why)));
	CHECK_INT(log_count("source 192.0.2.1 no longer suspended for yahoo "
	    "(rule tss04): its time ran out"), 1);
	shaping_expire(sp, t + 3700);
	CHECK_INT(log_count("no longer suspended"), 1);

	/* resume ends it early; only the source named. */
	(void)shaping_react(sp, "yahoo", "192.0.2.1", &rule, "421 x", t + 4000,
	    &until);
	(void)shaping_react(sp, "yahoo", "192.0.2.2", &rule, "421 y", t + 4000,
	    &until);
	CHECK_INT(shaping_resume(sp, "yahoo", "192.0.2.2", &ended), 0);
	CHECK_INT(ended, 1);
	CHECK(shaping_source_ready(sp, "yahoo", &other, t + 4001, &until, why,
	    sizeof(why)));
	CHECK(!shaping_source_ready(sp, "yahoo", &src, t + 4001, &until, why,
	    sizeof(why)));
	CHECK_INT(shaping_resume(sp, "yahoo", NULL, &ended), 0);
	CHECK_INT(ended, 1);
	CHECK_INT(log_count("resumed by queuerun resume"), 2);
}

static void
test_after_and_throttle(struct spool *sp)
{
	struct reply_rule rule = {.name = "slow", .class = "rate-limit",
	    .action = REPLY_ACTION_THROTTLE, .action_seconds = 600,
	    .rate_count = 10, .rate_period = 3600, .after_count = 2,
	    .after_window = 60};
	struct reply_rule defer = {.name = "away", .class = "rate-limit",
	    .action = REPLY_ACTION_DEFER_PROVIDER, .action_seconds = 60};
	int64_t t = 1800100000, until;
	struct mxl_limits l = {.rate_count = 20, .rate_period = 1};
	char why[512];

	CHECK_INT(shaping_react(sp, "gmail", "192.0.2.1", &rule, "421 4.7.28",
	    t, &until), SHAPING_NONE);
	shaping_limits(sp, "gmail", "192.0.2.1", t, &l);
	CHECK_INT(l.rate_count, 20);
	/* 61 s later the first has left the window: still one. */
	CHECK_INT(shaping_react(sp, "gmail", "192.0.2.1", &rule, "421 4.7.28",
	    t + 61, &until), SHAPING_NONE);
	CHECK_INT(shaping_react(sp, "gmail", "192.0.2.1", &rule, "421 4.7.28",
	    t + 62, &until), SHAPING_THROTTLED);
	shaping_limits(sp, "gmail", "192.0.2.1", t + 70, &l);
	CHECK_INT(l.rate_count, 10);
	CHECK_INT(l.rate_period, 3600);
	/* Never faster than the configured rate. */
	struct mxl_limits slow = {.rate_count = 1, .rate_period = 3600};
	shaping_limits(sp, "gmail", "192.0.2.1", t + 70, &slow);
	CHECK_INT(slow.rate_count, 1);
	struct mxl_limits after = {.rate_count = 20, .rate_period = 1};
	shaping_limits(sp, "gmail", "192.0.2.1", t + 62 + 600, &after);
	CHECK_INT(after.rate_count, 20);
	CHECK_INT(log_count("no longer throttled for gmail (rule slow)"), 1);

	CHECK_INT(shaping_react(sp, "gmail", "192.0.2.3", &defer, "421 away",
	    t, &until), SHAPING_PROVIDER_STOPPED);
	CHECK(!shaping_provider_ready(sp, "gmail", t + 1, &until, why,
	    sizeof(why)));
	CHECK(strstr(why, "provider gmail deferred until") != NULL);
	CHECK(shaping_provider_ready(sp, "gmail", t + 60, &until, why,
	    sizeof(why)));
	CHECK_INT(log_count("provider gmail no longer deferred (rule away)"),
	    1);
}

static void
test_warmup(struct spool *sp)
{
	long caps[] = {3, 5};
	int64_t start = 1800000000 - 1800000000 % 86400;	/* 00:00 UTC */
	struct mxl_source src = {.address = "192.0.2.9", .warmup_start = start,
	    .warmup_caps = caps, .nwarmup = 2};
	int64_t day, until;
	long cap;
	char why[512];

	CHECK(shaping_warm_cap(&src, start - 10, &day, &cap));
	CHECK_INT(day, 0);
	CHECK(shaping_warm_cap(&src, start + 86399, &day, &cap));
	CHECK_INT(cap, 3);
	CHECK(shaping_warm_cap(&src, start + 86400, &day, &cap));
	CHECK_INT(day, 1);
	CHECK_INT(cap, 5);
	CHECK(!shaping_warm_cap(&src, start + 2 * 86400, &day, &cap));

	int64_t t = start + 100;
	CHECK_INT(shaping_warm_take(sp, "yahoo", &src, t, 2), 2);
	CHECK(shaping_source_ready(sp, "yahoo", &src, t, &until, why,
	    sizeof(why)));
	CHECK_INT(shaping_warm_take(sp, "yahoo", &src, t, 2), 1);
	CHECK(!shaping_source_ready(sp, "yahoo", &src, t, &until, why,
	    sizeof(why)));
	CHECK_INT(until, start + 86400);
	CHECK(strstr(why, "day 1's cap of 3 for yahoo reached") != NULL);
	/* Per provider. */
	CHECK(shaping_source_ready(sp, "gmail", &src, t, &until, why,
	    sizeof(why)));
	/* What did not go is given back. */
	shaping_warm_give_back(sp, "yahoo", &src, t, 1);
	CHECK(shaping_source_ready(sp, "yahoo", &src, t, &until, why,
	    sizeof(why)));
	CHECK_INT(shaping_warm_take(sp, "yahoo", &src, t, 9), 1);
	/* The next day starts at 0 with the next cap. */
	CHECK_INT(shaping_warm_take(sp, "yahoo", &src, start + 86400, 9), 5);
	/* Warm: no cap. */
	CHECK_INT(shaping_warm_take(sp, "yahoo", &src, start + 3 * 86400, 9),
	    9);
}

static void
test_listed(struct spool *sp)
{
	int64_t t = 1800200000;

	shaping_note_connection(sp, "aol", "192.0.2.5", true, "554 blocked", t);
	shaping_note_connection(sp, "aol", "192.0.2.5", true, "554 blocked",
	    t + 86399);
	CHECK_INT(log_count("probably listed"), 0);
	/* Something else in between starts the day again. */
	shaping_note_connection(sp, "aol", "192.0.2.5", false, NULL, t + 86399);
	shaping_note_connection(sp, "aol", "192.0.2.5", true, "554 blocked",
	    t + 86400);
	CHECK_INT(log_count("probably listed"), 0);
	shaping_note_connection(sp, "aol", "192.0.2.5", true, "554 blocked",
	    t + 2 * 86400);
	CHECK_INT(log_count("source 192.0.2.5 probably listed by aol: nothing "
	    "but blocks since 2027-01-18 15:33:20 UTC (last: 554 blocked)"), 1);
	/* Once. */
	shaping_note_connection(sp, "aol", "192.0.2.5", true, "554 blocked",
	    t + 3 * 86400);
	CHECK_INT(log_count("probably listed"), 1);
}

int
main(void)
{
	struct spool *sp;

	umask(077);
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(logpath, sizeof(logpath), "%s.log", dir);
	log_init("test_shaping");
	log_set_file(logpath);
	CHECK_INT(spool_open(dir, &sp), 0);
	test_suspend(sp);
	test_after_and_throttle(sp);
	test_warmup(sp);
	test_listed(sp);
	spool_close(sp);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, logpath);
	if (system(cmd) != 0)
		return 2;
	return unit_done("shaping");
}
