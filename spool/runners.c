/*
 * NAME
 *	runners - which queue runners are at work, and their sessions
 * SYNOPSIS
 *	#include "spool/spool.h"
 *
 *	int spool_runner_register(struct spool *sp,
 *	    const struct spool_runner *r);
 *	void spool_runner_update(int fd, const struct spool_runner *r);
 *	void spool_runner_unregister(struct spool *sp, int fd);
 *	size_t spool_runners_list(struct spool *sp, struct spool_runner **out);
 * DESCRIPTION
 *	"queuerun status" says how many runners work and how many SMTP
 *	sessions they hold, which only the runners know. Each runner
 *	keeps one small file, runners/PID in the spool directory, under
 *	an flock for as long as it lives, and rewrites the file's one line
 *	in place (pid, kind, started, sessions, priority sessions,
 *	recipients delivered in the pass, updated) at most once a second:
 *	one pwrite, no transaction, nothing a delivery waits for.
 *
 *	A reader believes a file only while its flock is held: the kernel
 *	drops the lock of a runner that was killed, so a file left behind
 *	by a crash is seen as stale and removed by the next reader (or
 *	overwritten by a new runner with the same pid) and never counted.
 *	The lock is not inherited by the delivery workers: the descriptor
 *	is closed in them (O_CLOEXEC does not cover a fork), so the lock
 *	ends with the runner.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool_impl.h"

#define RUNNERS_DIR	"runners"
#define RUNNERS_MAX	4096	/* files read at most */
#define LINE_SIZE	160	/* the line, padded: always overwritten whole */

int
spool_runner_register(struct spool *sp, const struct spool_runner *r)
{
	char name[64];
	int fd;

	if (mkdirat(sp->dirfd, RUNNERS_DIR, 0700) != 0 && errno != EEXIST) {
		log_error("spool: cannot create %s/%s: %s", sp->dir,
		    RUNNERS_DIR, strerror(errno));
		return -1;
	}
	snprintf(name, sizeof(name), RUNNERS_DIR "/%ld", (long)getpid());
	fd = openat(sp->dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		log_error("spool: cannot create %s/%s: %s", sp->dir, name,
		    strerror(errno));
		return -1;
	}
	/* A file of a dead runner with our pid: its lock is gone. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_error("spool: %s/%s is locked by another process", sp->dir,
		    name);
		close(fd);
		return -1;
	}
	spool_runner_update(fd, r);
	return fd;
}

void
spool_runner_update(int fd, const struct spool_runner *r)
{
	char line[LINE_SIZE];

	if (fd < 0)
		return;
	int n = snprintf(line, sizeof(line), "%ld %s %lld %zu %zu %llu %lld",
	    r->pid, r->kind, (long long)r->started, r->sessions,
	    r->priority_sessions, (unsigned long long)r->delivered,
	    (long long)time(NULL));
	if (n < 0 || n >= LINE_SIZE - 1)
		return;
	memset(line + n, ' ', LINE_SIZE - 1 - n);
	line[LINE_SIZE - 1] = '\n';
	/* A status reader sees the old line or the new one: one write. */
	(void)!pwrite(fd, line, sizeof(line), 0);
}

void
spool_runner_unregister(struct spool *sp, int fd)
{
	char name[64];

	if (fd < 0)
		return;
	snprintf(name, sizeof(name), RUNNERS_DIR "/%ld", (long)getpid());
	(void)unlinkat(sp->dirfd, name, 0);
	close(fd);
}

/* Reads runners/NAME into r; false when it is not a live runner's. */
static bool
read_runner(int dirfd, const char *name,
    struct spool_runner *r)
{
	char line[LINE_SIZE + 1];
	long long started, updated;
	unsigned long long delivered;
	bool live = false;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		/*
		 * Nobody holds it: the runner is gone without cleaning up.
		 * A reader who may not remove it just leaves it.
		 */
		(void)unlinkat(dirfd, name, 0);
		close(fd);
		return false;
	}
	ssize_t n = pread(fd, line, LINE_SIZE, 0);
	close(fd);
	if (n <= 0)
		return false;
	line[n] = '\0';
	memset(r, 0, sizeof(*r));
	if (sscanf(line, "%ld %15s %lld %zu %zu %llu %lld", &r->pid, r->kind,
	    &started, &r->sessions, &r->priority_sessions, &delivered,
	    &updated) == 7) {
		r->started = started;
		r->updated = updated;
		r->delivered = delivered;
		live = true;
	}
	return live;
}

static int
by_pid(const void *a, const void *b)
{
	const struct spool_runner *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

size_t
spool_runners_list(struct spool *sp, struct spool_runner **out)
{
	struct spool_runner *list = NULL;
	size_t n = 0, cap = 0;
	int fd = openat(sp->dirfd, RUNNERS_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return 0;	/* no runner has started in this spool yet */
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return 0;
	}
	struct dirent *de;
	size_t seen = 0;
	while ((de = readdir(d)) != NULL && seen < RUNNERS_MAX) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		seen++;
		struct spool_runner r;
		if (!read_runner(dirfd(d), de->d_name, &r))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			list = xrealloc(list, cap * sizeof(*list));
		}
		list[n++] = r;
	}
	closedir(d);
	if (n > 1)
		qsort(list, n, sizeof(*list), by_pid);
	*out = list;
	return n;
}
