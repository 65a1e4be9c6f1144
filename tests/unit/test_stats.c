/*
 * test_stats - the counters' pure parts (day bucketing, reason
 * normalization, --since, JSON and Prometheus label escaping) and
 * stats.db against a real spool: outcomes counted with the results,
 * shards added up, all-time records, retention, the reasons' cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/escape.h"
#include "lib/log.h"
#include "queuerun/stats.h"
#include "spool/spool.h"
#include "spool/stats.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-stats-XXXXXX";

static void
test_day(void)
{
	CHECK_INT(stats_day(0), 0);
	CHECK_INT(stats_day(86399), 0);
	CHECK_INT(stats_day(86400), 1);
	CHECK_INT(stats_day(-1), -1);
	CHECK_INT(stats_day(-86400), -1);
	CHECK_INT(stats_day(-86401), -2);
	/* 2026-12-05 12:00:00 UTC */
	CHECK_INT(stats_day(1796472000), 20792);
}

static void
test_since(void)
{
	int64_t now = 1796472000;	/* 2026-12-05 12:00 UTC */

	CHECK_INT(stats_since_day(NULL, now), 20791);	/* 24h: yesterday */
	CHECK_INT(stats_since_day("24h", now), 20791);
	CHECK_INT(stats_since_day("7d", now), 20785);
	CHECK_INT(stats_since_day("1h", now), 20792);
	CHECK_INT(stats_since_day("2026-12-01", now), 20788);
	CHECK_INT(stats_since_day("yesterday", now), -1);
	CHECK_INT(stats_since_day("2026-13-01", now), -1);
}

static void
test_reason(void)
{
	char out[STATS_REASON_LEN + 1];

	stats_reason_normalize("host mx.test[127.0.0.1] said: 550 5.1.1 "
	    "<gone@rcpt.test>: User unknown", out);
	CHECK_STR(out, "host mx.test[127.0.0.1] said: 550 5.1.1 <>: User "
	    "unknown");
	/* Two recipients' replies are one reason. */
	char other[STATS_REASON_LEN + 1];
	stats_reason_normalize("host mx.test[127.0.0.1] said: 550 5.1.1 "
	    "<x@rcpt.test>: User unknown", other);
	CHECK_STR(out, other);
	stats_reason_normalize("452  4.2.2\r\n mailbox\tfull for bob@x.test "
	    "queued as 6B143AF7395B7", out);
	CHECK_STR(out, "452 4.2.2 mailbox full for ... queued as ...");
	stats_reason_normalize(NULL, out);
	CHECK_STR(out, "");
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	stats_reason_normalize(big, out);
	CHECK_INT(strlen(out), STATS_REASON_LEN);
	stats_reason_normalize("bad\x01" "ctl <unterminated", out);
	CHECK_STR(out, "bad ctl <unterminated");
}

static char *
escaped(void (*fn)(FILE *, const char *), const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fn(f, s);
	fclose(f);
	return buf;
}

static void
test_escape(void)
{
	char *s = escaped(escape_prom_label, "a\"b\\c\nd\te");
	CHECK_STR(s, "\"a\\\"b\\\\c\\nd e\"");
	free(s);
	s = escaped(escape_prom_label, "");
	CHECK_STR(s, "\"\"");
	free(s);
	s = escaped(escape_json, "q\"\\\n\x7f");
	CHECK_STR(s, "\"q\\\"\\\\\\u000a\\u007f\"");
	free(s);
	s = escaped(escape_json, NULL);
	CHECK_STR(s, "null");
	free(s);
}

struct seen {
	int64_t day;
	char kind;
	const char *provider;
	uint64_t sent, deferred, bounced_quota, received, suppressed, dly_sum;
	uint64_t reasons, records;
};

static int
look(void *ctx, const struct stats_record *r)
{
	struct seen *s = ctx;

	s->records++;
	if (r->day != s->day)
		return 0;
	if (r->kind == 'd' || r->kind == 'b') {
		s->reasons++;
		return 0;
	}
	if (strcmp(r->provider, s->provider) != 0)
		return 0;
	for (size_t i = 0; i < r->ncounters; i++) {
		const char *n = r->counters[i].name;
		uint64_t v = r->counters[i].value;
		if (strcmp(n, "sent") == 0)
			s->sent += v;
		else if (strcmp(n, "deferred") == 0)
			s->deferred += v;
		else if (strcmp(n, "bounced:quota") == 0)
			s->bounced_quota += v;
		else if (strcmp(n, "received") == 0)
			s->received += v;
		else if (strcmp(n, "suppressed") == 0)
			s->suppressed += v;
		else if (strcmp(n, "dly_sum") == 0)
			s->dly_sum += v;
	}
	return 0;
}

static void
queue(struct spool *sp, int64_t arrival, char *id)
{
	struct spool_msg msg;
	struct spool_rcpt r[3];

	memset(&msg, 0, sizeof(msg));
	memset(r, 0, sizeof(r));
	msg.sender = "s@example.org";
	msg.lane = "bulk";
	msg.user = "t";
	msg.arrival = arrival;
	r[0].address = "a@one.test";
	r[1].address = "b@one.test";
	r[2].address = "c@one.test";
	CHECK_INT(spool_submit(sp, &msg, r, 3, NULL, NULL, "x\r\n", 3), 0);
	memcpy(id, msg.id, SPOOL_ID_SIZE);
}

/* Outcomes of one message, in a child (another shard, maybe). */
static void
outcomes(struct spool *sp, const char *id, int64_t now)
{
	struct spool_result res[3];
	struct spool_stats_where where = {"prov\"x", "192.0.2.1", "pool1",
		false};
	bool all_final;

	memset(res, 0, sizeof(res));
	res[0] = (struct spool_result){0, RCPT_SENT, 0, true, "250 ok",
		"mx", "2.0.0", false, NULL, NULL};
	res[1] = (struct spool_result){1, RCPT_QUEUED, now + 60, true,
		"451 4.3.0 <b@one.test> try later", "mx", "4.3.0", false, NULL, NULL};
	res[2] = (struct spool_result){2, RCPT_BOUNCED, 0, true,
		"552 5.2.2 <c@one.test> mailbox full", "mx", "5.2.2", false,
		"quota", NULL};
	CHECK_INT(spool_record_outcomes(sp, id, &where, res, 3, now,
	    &all_final), 0);
}

static void
test_spool_counters(void)
{
	struct spool *sp;
	int64_t now = time(NULL);
	int64_t old = now - 10 * 86400;
	char id[4][SPOOL_ID_SIZE];

	CHECK_INT(spool_open(dir, &sp), 0);
	queue(sp, old - 100, id[0]);
	queue(sp, now - 30, id[1]);
	queue(sp, now - 30, id[2]);
	outcomes(sp, id[0], old);
	outcomes(sp, id[1], now);
	spool_close(sp);
	/* Another process: most likely another shard, added up on reading. */
	pid_t pid = fork();
	if (pid == 0) {
		struct spool *csp;
		if (spool_open(dir, &csp) != 0)
			_exit(1);
		outcomes(csp, id[2], now);
		spool_close(csp);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	CHECK_INT(spool_open(dir, &sp), 0);

	struct seen today = {stats_day(now), 'c', "prov\"x", 0, 0, 0, 0, 0, 0,
		0, 0};
	CHECK_INT(spool_stats_scan(sp, stats_day(now), false, look, &today), 0);
	CHECK_INT(today.sent, 2);
	CHECK_INT(today.deferred, 2);
	CHECK_INT(today.bounced_quota, 2);
	/* spool_submit stamps arrival itself: delivered within seconds. */
	CHECK(today.dly_sum <= 4);
	/* Both messages' replies name their own recipient: one reason each. */
	CHECK_INT(today.reasons, 2);
	struct seen recv = {stats_day(now), 'c', STATS_NONE, 0, 0, 0, 0, 0, 0,
		0, 0};
	CHECK_INT(spool_stats_scan(sp, stats_day(now), false, look, &recv), 0);
	CHECK_INT(recv.received, 3);	/* all three queued today */

	struct seen ever = {STATS_ALL_TIME, 'c', "prov\"x", 0, 0, 0, 0, 0, 0, 0,
		0};
	CHECK_INT(spool_stats_scan(sp, STATS_ALL_TIME, true, look, &ever), 0);
	CHECK_INT(ever.sent, 3);
	CHECK_INT(ever.deferred, 3);

	/* Retention: the old day goes, a batch at a time; all-time stays. */
	size_t removed = 0, total = 0;
	for (int i = 0; i < 10; i++) {
		CHECK_INT(spool_stats_expire(sp, stats_day(now) - 5, 1,
		    &removed), 0);
		total += removed;
		if (removed == 0)
			break;
	}
	CHECK(total >= 3);	/* counters, received, reasons of that day */
	struct seen gone = {stats_day(old), 'c', "prov\"x", 0, 0, 0, 0, 0, 0,
		0, 0};
	CHECK_INT(spool_stats_scan(sp, stats_day(old), false, look, &gone), 0);
	CHECK_INT(gone.sent, 0);
	CHECK_INT(gone.reasons, 0);
	struct seen still = {STATS_ALL_TIME, 'c', "prov\"x", 0, 0, 0, 0, 0, 0,
		0, 0};
	CHECK_INT(spool_stats_scan(sp, STATS_ALL_TIME, true, look, &still), 0);
	CHECK_INT(still.sent, 3);
	today.sent = 0;
	CHECK_INT(spool_stats_scan(sp, stats_day(now), false, look, &today), 0);
	CHECK_INT(today.sent, 2);

	/* The reasons' cap: distinct texts beyond it count as one. */
	for (int i = 0; i < STATS_REASONS_MAX + 10; i++) {
		char reply[64];
		char mid[SPOOL_ID_SIZE];
		struct spool_result r = {0, RCPT_QUEUED, now + 60, true, reply,
			"mx", "4.0.0", false, NULL, NULL};
		bool all_final;
		snprintf(reply, sizeof(reply), "451 reason number %c%c", 'a' +
		    i / 26, 'a' + i % 26);
		queue(sp, now, mid);
		CHECK_INT(spool_record_outcomes(sp, mid, NULL, &r, 1, now,
		    &all_final), 0);
	}
	struct seen capped = {stats_day(now), 'c', "none", 0, 0, 0, 0, 0, 0, 0,
		0};
	CHECK_INT(spool_stats_scan(sp, stats_day(now), false, look, &capped),
	    0);
	CHECK(capped.reasons <= 2 + STATS_REASONS_MAX * 2 + 2);
	CHECK(capped.reasons >= STATS_REASONS_MAX);
	spool_close(sp);
}

int
main(void)
{
	log_init("test_stats");
	log_set_file("/dev/null");
	if (mkdtemp(dir) == NULL)
		return 2;
	test_day();
	test_since();
	test_reason();
	test_escape();
	test_spool_counters();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("stats");
}
