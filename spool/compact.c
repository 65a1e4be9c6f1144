/*
 * NAME
 *	compact - give the disk back once the queue has drained
 * SYNOPSIS
 *	#include "spool/spool.h"
 *
 *	int spool_compact(struct spool *sp, struct spool_compact_stats *st);
 *	int spool_compact_when_idle(struct spool *sp);
 *	int spool_disk_usage(struct spool *sp, struct spool_usage *u);
 * DESCRIPTION
 *	BerkeleyDB never shrinks a table file by itself: pages freed by
 *	removed messages go on the table's free list and are reused, so a
 *	burst of 200,000 messages leaves content.db at its high-water mark
 *	for ever. The logs are not the problem (spool.c sets
 *	DB_LOG_AUTO_REMOVE: a checkpoint removes every log it no longer
 *	needs).
 *
 *	spool_compact() runs DB->compact with DB_FREE_SPACE on each table:
 *	records move into fewer pages, pages move towards the start of the
 *	file, and the free pages at its end are cut off (ftruncate). Each
 *	call frees at most COMPACT_PAGES pages and passes no transaction,
 *	so BerkeleyDB runs it as a series of short transactions of its own,
 *	each committed before the next; the next call resumes at the key
 *	where the last stopped. A conflict with a submitter or another
 *	runner (our transactions never wait for a lock, see spool.c) ends
 *	that short transaction early instead of waiting, so nobody is held
 *	up for longer than one small piece of work, and nothing here needs
 *	the queue to be still: it is safe beside pickup, runners and
 *	mailq. A checkpoint at the end lets the logs that compaction wrote
 *	go too. One process compacts at a time (an flock on compact.stamp;
 *	another one skips rather than waits).
 *
 *	spool_compact_when_idle() is the policy the queue runner applies at
 *	the end of each pass. It compacts only when all of these hold:
 *	  - fewer than COMPACT_QUEUE_MAX recipients (schedule entries) are
 *	    queued: compacting a big queue would move pages that are about
 *	    to be freed anyway;
 *	  - the table files take at least COMPACT_GROWTH bytes more than
 *	    right after the last compaction (compact.stamp remembers it):
 *	    with nothing to give back there is nothing to do;
 *	  - the last compaction is at least COMPACT_INTERVAL seconds old,
 *	    unless the tables have more than doubled since (a burst that
 *	    has drained: its cost was paid by the writes that grew them).
 *	Each of these is one stat() or a cursor walk of at most
 *	COMPACT_QUEUE_MAX keys, so a pass that compacts nothing pays
 *	nothing noticeable.
 * DIAGNOSTICS
 *	SPOOL_OK, or SPOOL_ERR after logging. A compaction cut short (an
 *	error, a conflict that would not clear) leaves every table
 *	consistent: each piece of work is its own committed transaction.
 * FILES
 *	compact.stamp in the spool directory: "bytes seconds", the size of
 *	the tables after the last compaction and when it ended.
 */
#include "spool/spool.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool_impl.h"

#define COMPACT_QUEUE_MAX	1000	/* recipients queued */
#define COMPACT_GROWTH		(4LL * 1024 * 1024)
#define COMPACT_INTERVAL	300	/* seconds */
/*
 * Pages freed per DB->compact call: 256 pages is 16 MiB of content.db
 * (64 KiB pages) or 1 MiB of the other tables, a few milliseconds of
 * work; the watchdog (spool_set_watchdog) guards each call alone.
 */
#define COMPACT_PAGES		256
/* Calls per table: far more than a table of 2^32 pages could need. */
#define COMPACT_CALLS_MAX	100000

#define STAMP_FILE	"compact.stamp"
#define FILE_MODE	0600

/*
 * Compacts one table in pieces; adds to *freed and *truncated. The
 * handle is read through dbp at each call: a retry may reopen it.
 */
static int
compact_table(struct spool *sp, DB **dbp, uint64_t *freed,
    uint64_t *truncated)
{
	DBT start, end;
	DB_COMPACT c;
	int rc = 0, calls;

	memset(&start, 0, sizeof(start));
	memset(&end, 0, sizeof(end));
	end.flags = DB_DBT_REALLOC;
	for (calls = 0; calls < COMPACT_CALLS_MAX; calls++) {
		SPOOL_GUARD;
		memset(&c, 0, sizeof(c));
		c.compact_pages = COMPACT_PAGES;
		DB *db = *dbp;
		rc = db->compact(db, NULL, calls > 0 ? &start : NULL, NULL, &c,
		    DB_FREE_SPACE, &end);
		if (rc == DB_LOCK_DEADLOCK || rc == DB_LOCK_NOTGRANTED) {
			/* Busy: the pieces done so far stay done. */
			if (spool_retryable(sp, rc, calls + 1))
				continue;
		}
		if (rc != 0)
			break;
		*freed += c.compact_pages_free;
		*truncated += c.compact_pages_truncated;
		/*
		 * Fewer pages freed than allowed: the walk reached the end
		 * of the table (end is then past its last key).
		 */
		if (c.compact_pages_free < COMPACT_PAGES || end.size == 0)
			break;
		free(start.data);
		start = end;
		start.flags = 0;
		memset(&end, 0, sizeof(end));
		end.flags = DB_DBT_REALLOC;
	}
	if (calls > 0)
		free(start.data);
	free(end.data);
	return rc;
}

int
spool_compact(struct spool *sp, struct spool_compact_stats *st)
{
	struct {
		const char *name;
		DB **db;
	} tables[] = {
		{"content.db", &sp->content}, {"messages.db", &sp->messages},
		{"recipients.db", &sp->recipients},
		{"schedule.db", &sp->schedule}, {"throttle.db", &sp->throttle},
		{"pickup.db", &sp->pickup}, {"suppress.db", &sp->suppress},
		{"shaping.db", &sp->shaping}, {"stats.db", &sp->stats},
	};
	struct spool_compact_stats s;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if ((rc = compact_table(sp, tables[i].db, &s.pages_freed,
		    &s.pages_truncated)) != 0) {
			log_error("spool: cannot compact %s/%s: %s", sp->dir,
			    tables[i].name, db_strerror(rc));
			break;
		}
	}
	/* Compaction is logged; the checkpoint lets those logs go too. */
	{
		SPOOL_GUARD;
		(void)sp->env->txn_checkpoint(sp->env, 0, 0, DB_FORCE);
	}
	if (st)
		*st = s;
	return rc == 0 ? SPOOL_OK : SPOOL_ERR;
}

static bool
is_table(const char *name)
{
	size_t n = strlen(name);

	return n > 3 && strcmp(name + n - 3, ".db") == 0;
}

int
spool_disk_usage(struct spool *sp, struct spool_usage *u)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd;

	memset(u, 0, sizeof(*u));
	if ((fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || (d = fdopendir(fd)) == NULL) {
		log_error("spool: cannot read %s: %s", sp->dir,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return SPOOL_ERR;
	}
	while ((e = readdir(d)) != NULL) {
		if (fstatat(sp->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
		    0 || !S_ISREG(st.st_mode))
			continue;
		uint64_t bytes = (uint64_t)st.st_blocks * 512;
		if (strncmp(e->d_name, "log.", 4) == 0)
			u->logs += bytes;
		else if (is_table(e->d_name))
			u->tables += bytes;
		else
			u->other += bytes;
	}
	closedir(d);
	return SPOOL_OK;
}

/* Counts schedule entries, stopping at max: is the queue small? */
static size_t
queued_at_most(struct spool *sp, size_t max)
{
	DBT key, val;
	DBC *c;
	size_t n = 0;

	if (sp->schedule->cursor(sp->schedule, NULL, &c, DB_READ_UNCOMMITTED))
		return max;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.flags = DB_DBT_PARTIAL;
	val.flags = DB_DBT_PARTIAL;
	while (n < max && c->get(c, &key, &val, DB_NEXT) == 0)
		n++;
	c->close(c);
	return n;
}

int
spool_compact_when_idle(struct spool *sp)
{
	struct spool_usage before, after;
	struct spool_compact_stats st;
	long long last_size = 0, last_time = 0;
	char text[64];
	ssize_t len;
	int fd, rc = SPOOL_OK;

	if (spool_disk_usage(sp, &before) != SPOOL_OK)
		return SPOOL_ERR;
	fd = openat(sp->dirfd, STAMP_FILE, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, FILE_MODE);
	if (fd < 0) {
		log_error("spool: cannot open %s/%s: %s", sp->dir, STAMP_FILE,
		    strerror(errno));
		return SPOOL_ERR;
	}
	/* Another process compacts now: nothing for us to add. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		goto out;
	if ((len = pread(fd, text, sizeof(text) - 1, 0)) > 0) {
		text[len] = '\0';
		if (sscanf(text, "%lld %lld", &last_size, &last_time) != 2)
			last_size = last_time = 0;
	}
	long long now = (long long)time(NULL);
	long long size = (long long)before.tables;
	if (size - last_size < COMPACT_GROWTH)
		goto out;
	if (now - last_time < COMPACT_INTERVAL && now >= last_time &&
	    size <= 2 * last_size)
		goto out;
	if (queued_at_most(sp, COMPACT_QUEUE_MAX) >= COMPACT_QUEUE_MAX)
		goto out;
	int64_t t0 = mono_ms();
	rc = spool_compact(sp, &st);
	if (spool_disk_usage(sp, &after) != SPOOL_OK)
		after = before;
	log_info("spool compacted: tables %" PRIu64 " KiB -> %" PRIu64
	    " KiB, logs %" PRIu64 " KiB -> %" PRIu64 " KiB, %" PRIu64
	    " pages freed, %" PRIu64 " cut off, %" PRId64 " ms",
	    before.tables / 1024, after.tables / 1024, before.logs / 1024,
	    after.logs / 1024, st.pages_freed, st.pages_truncated,
	    mono_ms() - t0);
	len = snprintf(text, sizeof(text), "%llu %lld\n",
	    (unsigned long long)after.tables, (long long)time(NULL));
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
		log_error("spool: cannot write %s/%s: %s", sp->dir,
		    STAMP_FILE, strerror(errno));
out:
	close(fd);
	return rc;
}
