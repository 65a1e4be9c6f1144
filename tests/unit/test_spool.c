/*
 * test_spool - the spool API against a real BerkeleyDB environment:
 * submit/get/scan/content/remove, aliases, concurrent writers, and a
 * writer killed inside its transaction (the next opener recovers, the
 * message is wholly absent, nothing needs db_recover by hand).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-spool-XXXXXX";

static void
prefix_headers(void *ctx, const char *id, struct buf *out)
{
	(void)ctx;
	buf_printf(out, "Received: id %s\r\n\r\n", id);
}

static void
prefix_then_die(void *ctx, const char *id, struct buf *out)
{
	(void)ctx;
	(void)id;
	(void)out;
	/* Crash in the middle of the transaction, locks and log held. */
	raise(SIGKILL);
}

static int
submit_one(struct spool *sp, const char *sender, const char *rcpt,
    const char *body, size_t len, spool_prefix_fn prefix, char *id_out)
{
	struct spool_msg msg;
	struct spool_rcpt r[2];

	memset(&msg, 0, sizeof(msg));
	memset(r, 0, sizeof(r));
	msg.sender = (char *)sender;
	msg.lane = "priority";
	msg.uid = 1000;
	msg.user = "tester";
	r[0].address = (char *)rcpt;
	r[0].notify = SPOOL_NOTIFY_FAILURE;
	r[1].address = "second@example.net";
	r[1].orcpt = "rfc822;orig@example.net";
	int rc = spool_submit(sp, &msg, r, 2, prefix, NULL, body, len);
	if (rc == 0 && id_out)
		memcpy(id_out, msg.id, SPOOL_ID_SIZE);
	return rc;
}

struct collect {
	struct buf data;
};

static int
collect_content(void *ctx, const char *data, size_t len)
{
	struct collect *c = ctx;

	buf_append(&c->data, data, len);
	return 0;
}

/* Takes one chunk, then stops the read with a code of its own. */
static int
first_chunk_only(void *ctx, const char *data, size_t len)
{
	struct collect *c = ctx;

	buf_append(&c->data, data, len);
	return 7;
}

struct scan_count {
	int messages;
	char last[SPOOL_ID_SIZE];
	int ordered;
};

static int
count_scan(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t n)
{
	struct scan_count *c = ctx;

	c->messages++;
	if (strcmp(c->last, msg->id) >= 0)
		c->ordered = 0;
	memcpy(c->last, msg->id, SPOOL_ID_SIZE);
	if (n != msg->nrcpt || n != 2 || rcpts[1].index != 1)
		c->ordered = 0;
	return 0;
}

static void
test_roundtrip(struct spool *sp)
{
	char id[SPOOL_ID_SIZE];
	struct spool_msg msg;
	struct spool_rcpt *rcpts;
	size_t n;

	CHECK_INT(submit_one(sp, "alice@example.org", "bob@example.com",
	    "hello\r\n", 7, prefix_headers, id), 0);
	CHECK(spool_id_valid(id));
	CHECK_INT(spool_get(sp, id, &msg, &rcpts, &n), SPOOL_OK);
	CHECK_STR(msg.sender, "alice@example.org");
	CHECK_STR(msg.lane, "priority");
	CHECK_INT(msg.uid, 1000);
	CHECK_STR(msg.user, "tester");
	CHECK_INT(msg.nrcpt, 2);
	CHECK_INT(n, 2);
	CHECK_STR(rcpts[0].address, "bob@example.com");
	CHECK_INT(rcpts[0].notify, SPOOL_NOTIFY_FAILURE);
	CHECK_INT(rcpts[0].state, RCPT_QUEUED);
	CHECK(rcpts[0].next_try == msg.arrival);
	CHECK_STR(rcpts[1].orcpt, "rfc822;orig@example.net");

	struct collect c = {BUF_INIT};
	CHECK_INT(spool_read_content(sp, id, collect_content, &c), SPOOL_OK);
	char expect[128];
	snprintf(expect, sizeof(expect), "Received: id %s\r\n\r\nhello\r\n",
	    id);
	CHECK_STR(c.data.data, expect);
	CHECK_INT(msg.size, strlen(expect));
	buf_free(&c.data);
	spool_msg_free(&msg);
	spool_rcpts_free(rcpts, n);

	CHECK_INT(spool_remove(sp, id), SPOOL_OK);
	CHECK_INT(spool_get(sp, id, &msg, &rcpts, &n), SPOOL_NOTFOUND);
	CHECK_INT(spool_remove(sp, id), SPOOL_NOTFOUND);
	CHECK_INT(spool_get(sp, "not-an-id", &msg, NULL, NULL),
	    SPOOL_NOTFOUND);
}

static void
test_big_content(struct spool *sp)
{
	size_t len = 3 * 1024 * 1024 + 12345;
	char *body = malloc(len), id[SPOOL_ID_SIZE];

	for (size_t i = 0; i < len; i++)
		body[i] = (char)('a' + (i * 7) % 26);
	CHECK_INT(submit_one(sp, "", "big@example.com", body, len, NULL, id),
	    0);
	struct collect c = {BUF_INIT};
	CHECK_INT(spool_read_content(sp, id, collect_content, &c), SPOOL_OK);
	CHECK_INT(c.data.len, len);
	CHECK(c.data.len == len && memcmp(c.data.data, body, len) == 0);
	buf_free(&c.data);
	/* The chunks are what spool_read_chunk reads, in order. */
	struct buf chunk = BUF_INIT;
	CHECK_INT(spool_read_chunk(sp, id, 1, &chunk), SPOOL_OK);
	CHECK_INT(chunk.len, SPOOL_CHUNK_SIZE);
	CHECK(memcmp(chunk.data, body + SPOOL_CHUNK_SIZE, chunk.len) == 0);
	CHECK_INT(spool_read_chunk(sp, id, len / SPOOL_CHUNK_SIZE + 1, &chunk),
	    SPOOL_NOTFOUND);
	buf_free(&chunk);
	/* A callback's non-zero return stops the read and is returned. */
	CHECK_INT(spool_read_content(sp, id, first_chunk_only, &c), 7);
	CHECK_INT(c.data.len, SPOOL_CHUNK_SIZE);
	buf_free(&c.data);
	CHECK_INT(spool_remove(sp, id), SPOOL_OK);
	/* Removing it removed every chunk. */
	CHECK_INT(spool_read_content(sp, id, collect_content, &c), SPOOL_OK);
	CHECK_INT(c.data.len, 0);
	buf_free(&c.data);
	free(body);
}

static void
test_scan_and_concurrency(void)
{
	enum { WRITERS = 6, EACH = 50 };

	for (int w = 0; w < WRITERS; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct spool *child;
			if (spool_open(dir, &child) != 0)
				_exit(3);
			for (int i = 0; i < EACH; i++)
				if (submit_one(child, "w@example.org",
				    "r@example.com", "x\r\n", 3, NULL,
				    NULL) != 0)
					_exit(4);
			spool_close(child);
			_exit(0);
		}
	}
	int failures = 0, status;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failures++;
	CHECK_INT(failures, 0);

	struct spool *sp;
	CHECK_INT(spool_open(dir, &sp), 0);
	struct scan_count c = {0, "", 1};
	CHECK_INT(spool_scan(sp, count_scan, &c), SPOOL_OK);
	CHECK_INT(c.messages, WRITERS * EACH);
	CHECK(c.ordered);
	spool_close(sp);
}

static void
test_crash_inside_transaction(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct spool *child;
		if (spool_open(dir, &child) != 0)
			_exit(3);
		submit_one(child, "dying@example.org", "r@example.com",
		    "x\r\n", 3, prefix_then_die, NULL);
		_exit(5);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* The next opener recovers by itself; the dead txn left nothing. */
	struct spool *sp;
	CHECK_INT(spool_open(dir, &sp), 0);
	struct scan_count before = {0, "", 1};
	CHECK_INT(spool_scan(sp, count_scan, &before), SPOOL_OK);
	char id[SPOOL_ID_SIZE];
	CHECK_INT(submit_one(sp, "after@example.org", "r@example.com",
	    "y\r\n", 3, NULL, id), 0);
	struct scan_count after = {0, "", 1};
	CHECK_INT(spool_scan(sp, count_scan, &after), SPOOL_OK);
	CHECK_INT(after.messages, before.messages + 1);
	spool_close(sp);
}

static void
test_aliases(struct spool *sp)
{
	const char *postmaster[] = {"root"};
	const char *root[] = {"admin@example.com", "ops@example.com"};
	struct spool_alias table[] = {
		{"postmaster", postmaster, 1},
		{"root", root, 2},
	};
	char **targets;
	size_t n;

	CHECK(!spool_has_aliases(sp));
	CHECK_INT(spool_alias_lookup(sp, "root", &targets, &n),
	    SPOOL_NOTFOUND);
	CHECK_INT(spool_aliases_replace(sp, table, 2), SPOOL_OK);
	CHECK(spool_has_aliases(sp));
	CHECK_INT(spool_alias_lookup(sp, "root", &targets, &n), SPOOL_OK);
	CHECK_INT(n, 2);
	CHECK_STR(targets[0], "admin@example.com");
	CHECK_STR(targets[1], "ops@example.com");
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
	/* Replacing drops names that are gone. */
	CHECK_INT(spool_aliases_replace(sp, table, 1), SPOOL_OK);
	CHECK_INT(spool_alias_lookup(sp, "root", &targets, &n),
	    SPOOL_NOTFOUND);
	CHECK_INT(spool_alias_lookup(sp, "@built", &targets, &n),
	    SPOOL_NOTFOUND);
	CHECK(spool_has_aliases(sp));
}

static void
test_file_modes(void)
{
	struct stat st;
	char path[256];

	snprintf(path, sizeof(path), "%s/messages.db", dir);
	CHECK_INT(stat(path, &st), 0);
	/* The owner's alone, whatever the umask: nobody else opens it. */
	CHECK_INT(st.st_mode & 0777, 0600);
}

static uint64_t
tables_bytes(struct spool *sp)
{
	struct spool_usage u;

	CHECK_INT(spool_disk_usage(sp, &u), SPOOL_OK);
	return u.tables;
}

/* A submitter that runs while the parent compacts: nothing may be lost. */
static pid_t
start_submitter(const char *path, int n)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	struct spool *child;
	if (spool_open(path, &child) != 0)
		_exit(3);
	for (int i = 0; i < n; i++)
		if (submit_one(child, "c@example.org", "r@example.com",
		    "during compaction\r\n", 19, NULL, NULL) != 0)
			_exit(4);
	spool_close(child);
	_exit(0);
}

/*
 * The disk comes back: a queue of 600 messages (1,200 recipients) and
 * one of 3 MB grows the tables; the idle policy leaves a queue that big
 * alone; once all but one message are removed it compacts, the tables
 * shrink to a fraction, and the kept message reads back whole.
 * spool_compact() runs beside a submitter whose messages all arrive.
 */
static void
test_compact(void)
{
	enum { N = 600, SUBMITTED_DURING = 100 };
	char (*ids)[SPOOL_ID_SIZE] = xcalloc(N, SPOOL_ID_SIZE);
	char keep[SPOOL_ID_SIZE];
	size_t biglen = 3 * 1024 * 1024;
	char *body = xmalloc(biglen);
	struct spool *sp;
	char cdir[sizeof(dir) + 16];

	/* A spool of its own: the other tests' free pages would blur it. */
	snprintf(cdir, sizeof(cdir), "%s/compact", dir);
	CHECK(mkdir(cdir, 0700) == 0);
	for (size_t i = 0; i < biglen; i++)
		body[i] = (char)('a' + (i * 11) % 26);
	CHECK_INT(spool_open(cdir, &sp), 0);
	uint64_t empty = tables_bytes(sp);
	for (int i = 0; i < N; i++)
		CHECK_INT(submit_one(sp, "a@example.org", "b@example.com",
		    body, 4000, NULL, ids[i]), 0);
	CHECK_INT(submit_one(sp, "a@example.org", "big@example.com", body,
	    biglen, NULL, keep), 0);
	uint64_t full = tables_bytes(sp);
	CHECK(full > empty + 5 * 1024 * 1024);

	/* 1,202 recipients queued: not idle, nothing is compacted. */
	CHECK_INT(spool_compact_when_idle(sp), SPOOL_OK);
	struct stat st;
	CHECK(fstatat(spool_directory_fd(sp), "compact.stamp", &st, 0) == 0 &&
	    st.st_size == 0);

	for (int i = 0; i < N; i++)
		CHECK_INT(spool_remove(sp, ids[i]), SPOOL_OK);
	CHECK(tables_bytes(sp) >= full - 1024 * 1024);	/* freed, not given back */

	/* Now the queue is small and the tables hold 5 MB of free pages. */
	CHECK_INT(spool_compact_when_idle(sp), SPOOL_OK);
	uint64_t after = tables_bytes(sp);
	fprintf(stderr, "test_compact: tables %ju KiB empty, %ju KiB full, %ju KiB compacted\n", (uintmax_t)empty / 1024, (uintmax_t)full / 1024, (uintmax_t)after / 1024);
	CHECK(after < empty + biglen + 1024 * 1024);
	CHECK(after + 2 * 1024 * 1024 < full);
	CHECK(fstatat(spool_directory_fd(sp), "compact.stamp", &st, 0) == 0 &&
	    st.st_size > 0);
	struct collect c = {BUF_INIT};
	CHECK_INT(spool_read_content(sp, keep, collect_content, &c), SPOOL_OK);
	CHECK(c.data.len >= biglen &&
	    memcmp(c.data.data + c.data.len - biglen, body, biglen) == 0);
	buf_free(&c.data);

	/* Nothing grew since: the policy does not compact again. */
	struct stat st2;
	CHECK_INT(spool_compact_when_idle(sp), SPOOL_OK);
	CHECK(fstatat(spool_directory_fd(sp), "compact.stamp", &st2, 0) == 0 &&
	    st2.st_mtim.tv_sec == st.st_mtim.tv_sec &&
	    st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec);

	/* Compaction beside a submitter: each of its messages arrives. */
	struct scan_count before = {0, "", 1}, now = {0, "", 1};
	CHECK_INT(spool_scan(sp, count_scan, &before), SPOOL_OK);
	pid_t pid = start_submitter(cdir, SUBMITTED_DURING);
	struct spool_compact_stats cs;
	for (int i = 0; i < 20; i++)
		CHECK_INT(spool_compact(sp, &cs), SPOOL_OK);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	CHECK_INT(spool_scan(sp, count_scan, &now), SPOOL_OK);
	CHECK_INT(now.messages, before.messages + SUBMITTED_DURING);
	spool_close(sp);
	free(body);
	free(ids);
}

/*
 * The doorbell: plain rings and priority ids, as submitters write
 * them, come out as the ids alone; a malformed record (too short, not
 * an id) is only a ring; without a listener, notify says so.
 */
static void
test_doorbell(struct spool *sp)
{
	int dirfd = spool_directory_fd(sp);
	char ids[4][SPOOL_ID_SIZE];

	int fd = spool_wakeup_listen(dirfd);
	CHECK(fd >= 0);
	CHECK(spool_wakeup_notify(dirfd));
	CHECK(spool_wakeup_notify_id(dirfd, "6B13BACFDA8D0"));
	CHECK(spool_wakeup_notify(dirfd));
	CHECK(write(fd, "XYZ\n", 4) == 4);
	CHECK(write(fd, "6B13BACFDA8D0Q\n", 15) == 15);
	CHECK(spool_wakeup_notify_id(dirfd, "6B13BACFDB977"));
	CHECK_INT(spool_wakeup_drain(fd, ids, 4), 2);
	CHECK_STR(ids[0], "6B13BACFDA8D0");
	CHECK_STR(ids[1], "6B13BACFDB977");
	CHECK_INT(spool_wakeup_drain(fd, ids, 4), 0);
	close(fd);
}

static enum spool_shaping_do
suspend_until_100(void *ctx, struct spool_shaping *st, bool found)
{
	(void)ctx;
	(void)found;
	st->suspended_until = 100;
	snprintf(st->rule, sizeof(st->rule), "r1");
	return SPOOL_SHAPING_STORE;
}

static enum spool_shaping_do
drop_record(void *ctx, struct spool_shaping *st, bool found)
{
	(void)ctx;
	(void)st;
	return found ? SPOOL_SHAPING_DELETE : SPOOL_SHAPING_KEEP;
}

static int
count_records(void *ctx, const char *provider, const char *source,
    const struct spool_shaping *st)
{
	(void)provider;
	(void)source;
	(void)st;
	(*(int *)ctx)++;
	return 0;
}

/* shaping.db: records, "after N in WINDOW" counts, warm-up counts. */
static void
test_shaping(struct spool *sp)
{
	struct spool_shaping st;
	bool fire;
	uint64_t count;
	int64_t granted;
	int n = 0;

	CHECK_INT(spool_shaping_get(sp, "yahoo", "192.0.2.1", &st),
	    SPOOL_NOTFOUND);
	CHECK_INT(spool_shaping_update(sp, "yahoo", "192.0.2.1",
	    suspend_until_100, NULL), SPOOL_OK);
	CHECK_INT(spool_shaping_get(sp, "yahoo", "192.0.2.1", &st), SPOOL_OK);
	CHECK_INT(st.suspended_until, 100);
	CHECK_STR(st.rule, "r1");
	CHECK_INT(spool_shaping_get(sp, "yahoo", NULL, &st), SPOOL_NOTFOUND);
	CHECK_INT(spool_shaping_scan(sp, count_records, &n), SPOOL_OK);
	CHECK_INT(n, 1);
	CHECK_INT(spool_shaping_update(sp, "yahoo", "192.0.2.1", drop_record,
	    NULL), SPOOL_OK);
	CHECK_INT(spool_shaping_get(sp, "yahoo", "192.0.2.1", &st),
	    SPOOL_NOTFOUND);

	/* 3 in 10 s: the third within the window fires, then it restarts. */
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1000, 3, 10, &fire),
	    SPOOL_OK);
	CHECK(!fire);
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1005, 3, 10, &fire),
	    SPOOL_OK);
	CHECK(!fire);
	/* The first has left the window by 1011: two in it, not three. */
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1011, 3, 10, &fire),
	    SPOOL_OK);
	CHECK(!fire);
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1012, 3, 10, &fire),
	    SPOOL_OK);
	CHECK(fire);
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1013, 3, 10, &fire),
	    SPOOL_OK);
	CHECK(!fire);
	CHECK_INT(spool_shaping_match(sp, "p", "s", "r", 1013, 1, 10, &fire),
	    SPOOL_OK);
	CHECK(fire);

	/* Warm-up: at most the cap, given back, a new day starts at 0. */
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 0, 5, 3, &count, &granted),
	    SPOOL_OK);
	CHECK_INT(granted, 3);
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 0, 5, 3, &count, &granted),
	    SPOOL_OK);
	CHECK_INT(granted, 2);
	CHECK_INT(count, 5);
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 0, 5, 1, &count, &granted),
	    SPOOL_OK);
	CHECK_INT(granted, 0);
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 0, 5, -2, &count, NULL),
	    SPOOL_OK);
	CHECK_INT(count, 3);
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 1, 5, 0, &count, NULL),
	    SPOOL_OK);
	CHECK_INT(count, 0);
	CHECK_INT(spool_shaping_warm(sp, "s", "p", 1, -1, 7, &count, &granted),
	    SPOOL_OK);
	CHECK_INT(granted, 7);
}

int
main(void)
{
	struct spool *sp;

	log_init("test_spool");
	log_set_file("/dev/null");
	umask(077);	/* the spool must not depend on a friendly umask */
	if (mkdtemp(dir) == NULL)
		return 2;
	CHECK_INT(spool_open(dir, &sp), 0);
	test_roundtrip(sp);
	test_big_content(sp);
	test_aliases(sp);
	test_doorbell(sp);
	test_shaping(sp);
	spool_close(sp);
	test_file_modes();
	test_scan_and_concurrency();
	test_crash_inside_transaction();
	test_compact();

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("spool");
}
