/*
 * test_submitcount - the submitter limits' count records (a round trip,
 * a torn or foreign record read as empty), the lock and the scan, and
 * which limit applies to whom (root exempt unless named).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/gate.h"
#include "spool/submitcount.h"
#include "tests/unit/unit.h"

static int
count_one(void *ctx, const struct submit_count *c)
{
	int *n = ctx;

	if (c->uid == 1001 && c->msgs == 7)
		(*n)++;
	return 0;
}

int
main(void)
{
	struct submit_count c, d;
	unsigned char b[SUBMITCOUNT_SIZE];

	memset(&c, 0, sizeof(c));
	c.uid = 1001;
	snprintf(c.user, sizeof(c.user), "www-data");
	c.msg_window = 1764975600;
	c.msgs = 7;
	c.rcpt_window = 1764892800;
	c.rcpts = 1234567890123ULL;
	c.msg_logged = 1764975600;
	c.rcpt_logged = -1;
	submitcount_encode(&c, b);
	CHECK(submitcount_decode(b, sizeof(b), &d));
	CHECK(memcmp(&c, &d, sizeof(c)) == 0);
	b[20] ^= 1;
	CHECK(!submitcount_decode(b, sizeof(b), &d));
	CHECK(!submitcount_decode(b, sizeof(b) - 1, &d));

	char dir[] = "/tmp/mxl-test-submitcount-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = submitcount_lock(dfd, 1001, 100);
	CHECK(fd >= 0);
	submitcount_read(fd, 1001, &d);		/* new: empty */
	CHECK_INT(d.uid, 1001);
	CHECK_INT(d.msgs, 0);
	CHECK_INT(submitcount_write(fd, &c), 0);
	/* Held by us: a second taker times out (flock is per open file). */
	CHECK_INT(submitcount_lock(dfd, 1001, 20), -1);
	submitcount_unlock(fd);
	fd = submitcount_lock(dfd, 1001, 100);
	CHECK(fd >= 0);
	submitcount_read(fd, 1001, &d);
	CHECK_INT(d.msgs, 7);
	submitcount_read(fd, 1002, &d);		/* not this uid's record */
	CHECK_INT(d.msgs, 0);
	submitcount_unlock(fd);
	int n = 0;
	CHECK_INT(submitcount_scan(dfd, count_one, &n), 0);
	CHECK_INT(n, 1);
	close(dfd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);

	struct submitter_limit l[2];
	memset(l, 0, sizeof(l));
	l[0].user = (char *)"www-data";
	l[1].user = (char *)"*";
	CHECK(submitter_limit_for(l, 2, "www-data", 33) == &l[0]);
	CHECK(submitter_limit_for(l, 2, "alice", 1000) == &l[1]);
	CHECK(submitter_limit_for(l, 2, "root", 0) == NULL);
	l[0].user = (char *)"root";
	CHECK(submitter_limit_for(l, 2, "root", 0) == &l[0]);
	CHECK(submitter_limit_for(l, 1, "alice", 1000) == NULL);
	CHECK_INT(submitter_window(1764975600 + 59, 3600), 1764975600);
	CHECK_INT(submitter_window(1764975600 + 3600, 3600), 1764979200);
	CHECK_INT(submitter_window(1764979199, 86400), 1764892800);
	return unit_done("submitcount");
}
