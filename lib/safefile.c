/*
 * NAME
 *	safefile - open and read a file that someone else controls
 * DESCRIPTION
 *	See safefile.h. The walk holds a descriptor of each directory and
 *	opens the next component relative to it, so nothing found once can
 *	be swapped for a symbolic link afterwards; the checks on ownership
 *	and modes are made on what was opened (fstat), not on names.
 *
 *	The reading child is the only code that ever runs with a user's
 *	privileges: it keeps nothing of the parent's but the reply pipe,
 *	is not dumpable, and may be stopped or killed by that user, which
 *	the parent's time bound turns into a refusal. Its reply is "D",
 *	the reader's uid and a newline, then the bytes; or "E" and the
 *	reason.
 */
#include "lib/safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPLY_FD	3	/* the reply pipe, in the child */
#define REPLY_HEAD_MAX	32	/* "D" uid "\n" */
#define READ_CHUNK	65536

struct dir {
	uid_t uid;
	gid_t gid;
	mode_t mode;
	size_t end;		/* the directory is path[0..end) */
};

struct walk {
	const char *path;	/* absolute */
	struct dir *dirs;
	size_t n;
	size_t cap;
	char *why;
	size_t whylen;
};


/*
 * The owner's private group: the owner's primary group, and nobody else
 * listed in it. Then "writable by the group" means the owner (or root).
 */
static bool
group_is_owners(gid_t gid, uid_t owner)
{
	struct passwd *pw;
	struct group *gr;
	char *name;
	char **m;
	bool only = true;

	if ((pw = getpwuid(owner)) == NULL || pw->pw_gid != gid)
		return false;
	name = xstrdup(pw->pw_name);
	if ((gr = getgrgid(gid)) == NULL)
		only = false;
	else
		for (m = gr->gr_mem; *m != NULL && only; m++)
			only = strcmp(*m, name) == 0;
	free(name);
	return only;
}

/* Who besides root and owner may write: NULL, or a phrase for why. */
static const char *
others_can_write(mode_t mode, gid_t gid, uid_t owner, char *tmp,
    size_t tmplen)
{
	if (mode & S_IWOTH)
		return "all users";
	if ((mode & S_IWGRP) && !group_is_owners(gid, owner)) {
		snprintf(tmp, tmplen, "group %lu", (unsigned long)gid);
		return tmp;
	}
	return NULL;
}

static int
walk_push(struct walk *w, int fd, size_t end)
{
	struct stat sb;

	if (fstat(fd, &sb) == -1) {
		printable_printf(w->why, w->whylen, "%.*s: %s", (int)end, w->path,
		    strerror(errno));
		return -1;
	}
	if (S_ISLNK(sb.st_mode)) {
		printable_printf(w->why, w->whylen, "%.*s is a symbolic link", (int)end,
		    w->path);
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		printable_printf(w->why, w->whylen, "%.*s is not a directory", (int)end,
		    w->path);
		return -1;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->dirs = xrealloc(w->dirs, w->cap * sizeof(*w->dirs));
	}
	w->dirs[w->n].uid = sb.st_uid;
	w->dirs[w->n].gid = sb.st_gid;
	w->dirs[w->n].mode = sb.st_mode;
	w->dirs[w->n].end = end;
	w->n++;
	return 0;
}

/*
 * Opens every directory of the path from "/", without following
 * symbolic links; returns the descriptor of the last one and sets
 * *name to the offset of the file's name.
 */
static int
walk_dirs(struct walk *w, size_t *name)
{
	const char *p = w->path;
	size_t start, end;
	char *comp;
	int dfd, fd;

	if ((dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		printable_printf(w->why, w->whylen, "/: %s", strerror(errno));
		return -1;
	}
	if (walk_push(w, dfd, 1) == -1)
		goto fail;
	for (start = 0;;) {
		while (p[start] == '/')
			start++;
		end = start + strcspn(p + start, "/");
		if (p[end + strspn(p + end, "/")] == '\0')
			break;
		if (end - start == 1 && p[start] == '.') {
			start = end;
			continue;
		}
		comp = xstrndup(p + start, end - start);
		fd = openat(dfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		free(comp);
		if (fd == -1) {
			printable_printf(w->why, w->whylen, "%.*s: %s", (int)end, p,
			    strerror(errno));
			goto fail;
		}
		close(dfd);
		dfd = fd;
		if (walk_push(w, dfd, end) == -1)
			goto fail;
		start = end;
	}
	if (end == start || p[end] != '\0' || strcmp(p + start, ".") == 0 ||
	    strcmp(p + start, "..") == 0) {
		printable_printf(w->why, w->whylen, "%s does not name a file", p);
		goto fail;
	}
	*name = start;
	return dfd;
fail:
	close(dfd);
	return -1;
}

/* The checks that need the file's owner, made once the file is open. */
static int
check_owner_and_modes(struct walk *w, const struct stat *st)
{
	const char *who;
	char tmp[64];
	size_t i;
	bool own_dir, sticky;

	if (st->st_nlink > 1) {
		printable_printf(w->why, w->whylen, "%s has %ju hard links", w->path,
		    (uintmax_t)st->st_nlink);
		return -1;
	}
	if ((who = others_can_write(st->st_mode, st->st_gid, st->st_uid, tmp,
	    sizeof(tmp))) != NULL) {
		printable_printf(w->why, w->whylen, "%s is writable by %s", w->path,
		    who);
		return -1;
	}
	for (i = 0; i < w->n; i++) {
		const struct dir *d = &w->dirs[i];

		if (d->uid != 0 && d->uid != st->st_uid) {
			if (st->st_uid == 0)
				printable_printf(w->why, w->whylen, "%s is owned by root "
				    "but directory %.*s is owned by uid %lu",
				    w->path, (int)d->end, w->path,
				    (unsigned long)d->uid);
			else
				printable_printf(w->why, w->whylen, "directory %.*s is "
				    "owned by uid %lu, neither root nor the "
				    "owner of %s (uid %lu)", (int)d->end,
				    w->path, (unsigned long)d->uid, w->path,
				    (unsigned long)st->st_uid);
			return -1;
		}
		own_dir = i + 1 == w->n;
		sticky = (d->mode & S_ISVTX) != 0;
		if (sticky && !own_dir)
			continue;
		if ((who = others_can_write(d->mode, d->gid, st->st_uid, tmp,
		    sizeof(tmp))) != NULL) {
			printable_printf(w->why, w->whylen, "%s is in%s directory %.*s, "
			    "which %s can write", w->path, own_dir ? "" :
			    " and under", (int)d->end, w->path, who);
			return -1;
		}
	}
	return 0;
}

int
safefile_open(const char *path, struct stat *st, char *why, size_t whylen)
{
	struct walk w;
	struct stat first;
	char *abs = NULL, *cwd;
	size_t name;
	int dfd, pfd = -1, fd = -1;

	memset(&w, 0, sizeof(w));
	w.why = why;
	w.whylen = whylen;
	if (path[0] != '/') {
		if ((cwd = getcwd(NULL, 0)) == NULL) {
			printable_printf(why, whylen, "%s: the working directory: %s",
			    path, strerror(errno));
			return -1;
		}
		abs = xasprintf("%s/%s", cwd, path);
		free(cwd);
	}
	w.path = abs != NULL ? abs : path;
	if ((dfd = walk_dirs(&w, &name)) == -1)
		goto done;
	/* Look before opening: a FIFO or a device is never opened. */
	if ((pfd = openat(dfd, w.path + name, O_PATH | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(pfd, &first) == -1) {
		printable_printf(why, whylen, "%s: %s", w.path, strerror(errno));
		goto done;
	}
	if (S_ISLNK(first.st_mode)) {
		printable_printf(why, whylen, "%s is a symbolic link", w.path);
		goto done;
	}
	if (!S_ISREG(first.st_mode)) {
		printable_printf(why, whylen, "%s is not a regular file", w.path);
		goto done;
	}
	fd = openat(dfd, w.path + name, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ELOOP)
			printable_printf(why, whylen, "%s is a symbolic link", w.path);
		else
			printable_printf(why, whylen, "%s: %s", w.path, strerror(errno));
		goto done;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode) ||
	    st->st_dev != first.st_dev || st->st_ino != first.st_ino) {
		printable_printf(why, whylen, "%s was replaced while it was opened",
		    w.path);
		goto fail;
	}
	if (check_owner_and_modes(&w, st) == 0)
		goto done;
fail:
	close(fd);
	fd = -1;
done:
	if (pfd != -1)
		close(pfd);
	if (dfd != -1)
		close(dfd);
	free(w.dirs);
	free(abs);
	return fd;
}

/* Switches for good to uid, with the gid and groups of its passwd entry. */
static int
become(uid_t uid, char *why, size_t whylen)
{
	struct passwd *pw;
	gid_t gid, *groups = NULL;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int ngroups;

	if ((pw = getpwuid(uid)) == NULL) {
		printable_printf(why, whylen, "uid %lu has no passwd entry to read "
		    "with", (unsigned long)uid);
		return -1;
	}
	gid = pw->pw_gid;
	ngroups = 16;
	groups = xcalloc((size_t)ngroups, sizeof(*groups));
	if (getgrouplist(pw->pw_name, gid, groups, &ngroups) == -1) {
		groups = xrealloc(groups, (size_t)ngroups * sizeof(*groups));
		if (getgrouplist(pw->pw_name, gid, groups, &ngroups) == -1) {
			printable_printf(why, whylen, "cannot list the groups of uid %lu",
			    (unsigned long)uid);
			free(groups);
			return -1;
		}
	}
	if (setgroups((size_t)ngroups, groups) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1) {
		printable_printf(why, whylen, "cannot switch to uid %lu: %s",
		    (unsigned long)uid, strerror(errno));
		free(groups);
		return -1;
	}
	free(groups);
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid || (uid != 0 && setuid(0) == 0)) {
		printable_printf(why, whylen, "switching to uid %lu did not take",
		    (unsigned long)uid);
		return -1;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}

static int
read_all(int fd, const char *path, size_t max, struct buf *out, char *why,
    size_t whylen)
{
	ssize_t n;

	for (;;) {
		buf_reserve(out, READ_CHUNK);
		if ((n = read(fd, out->data + out->len, READ_CHUNK)) == 0)
			return 0;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			printable_printf(why, whylen, "%s: %s", path, strerror(errno));
			return -1;
		}
		out->len += (size_t)n;
		out->data[out->len] = '\0';
		if (out->len > max) {
			printable_printf(why, whylen, "%s is larger than %zu bytes",
			    path, max);
			return -1;
		}
	}
}

static void __attribute__((noreturn))
child(int wfd, const char *path, uid_t as, size_t max)
{
	struct buf data = BUF_INIT;
	struct stat st, again;
	char why[512], head[REPLY_HEAD_MAX];
	int fd;

	if (wfd != REPLY_FD && dup2(wfd, REPLY_FD) == -1)
		_exit(2);
	closefrom(REPLY_FD + 1);
	if (geteuid() == 0 && as != SAFEFILE_OWNER && as != 0 &&
	    become(as, why, sizeof(why)) == -1)
		goto fail;
	if ((fd = safefile_open(path, &st, why, sizeof(why))) == -1)
		goto fail;
	if (geteuid() == 0 && st.st_uid != 0) {
		close(fd);
		if (become(st.st_uid, why, sizeof(why)) == -1)
			goto fail;
		if ((fd = safefile_open(path, &again, why, sizeof(why))) == -1)
			goto fail;
		if (again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
			printable_printf(why, sizeof(why), "%s was replaced while it "
			    "was checked", path);
			goto fail;
		}
	}
	if ((size_t)st.st_size > max) {
		printable_printf(why, sizeof(why), "%s is larger than %zu bytes", path,
		    max);
		goto fail;
	}
	if (read_all(fd, path, max, &data, why, sizeof(why)) == -1)
		goto fail;
	snprintf(head, sizeof(head), "D%lu\n", (unsigned long)geteuid());
	if (write_full(REPLY_FD, head, strlen(head)) == -1 ||
	    write_full(REPLY_FD, data.data, data.len) == -1)
		_exit(2);
	_exit(0);
fail:
	(void)write_full(REPLY_FD, "E", 1);
	(void)write_full(REPLY_FD, why, strlen(why));
	_exit(1);
}

/* Reads the child's reply until EOF, max bytes or the deadline. */
static int
collect(int fd, size_t max, int timeout_ms, struct buf *reply,
    const char **failed)
{
	int64_t deadline = mono_ms() + timeout_ms, left;
	struct pollfd pfd;
	ssize_t n;
	int rc;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0) {
			*failed = "timeout";
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1) {
			*failed = strerror(errno);
			return -1;
		}
		if (rc == 0)
			continue;
		buf_reserve(reply, READ_CHUNK);
		n = read(fd, reply->data + reply->len, READ_CHUNK);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			*failed = strerror(errno);
			return -1;
		}
		if (n == 0)
			return 0;
		reply->len += (size_t)n;
		reply->data[reply->len] = '\0';
		if (reply->len > max + REPLY_HEAD_MAX) {
			*failed = "too big";
			return -1;
		}
	}
}

int
safefile_read(const char *path, uid_t as, size_t max, int timeout_ms,
    struct buf *out, uid_t *reader, char *why, size_t whylen)
{
	struct buf reply = BUF_INIT;
	const char *failed = NULL;
	char *nl, *end;
	unsigned long uid;
	int p[2], status = 0, got;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		printable_printf(why, whylen, "%s: cannot make a pipe: %s", path,
		    strerror(errno));
		return -1;
	}
	/* The child may exit(3) on out-of-memory: nothing to flush twice. */
	fflush(NULL);
	if ((pid = fork()) == -1) {
		printable_printf(why, whylen, "%s: cannot fork: %s", path,
		    strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child(p[1], path, as, max);
	}
	close(p[1]);
	got = collect(p[0], max, timeout_ms, &reply, &failed);
	close(p[0]);
	if (got == -1)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	got = -1;
	if (failed != NULL && strcmp(failed, "timeout") == 0)
		printable_printf(why, whylen, "%s: not read within %d seconds", path,
		    timeout_ms / 1000);
	else if (failed != NULL && strcmp(failed, "too big") == 0)
		printable_printf(why, whylen, "%s is larger than %zu bytes", path, max);
	else if (failed != NULL)
		printable_printf(why, whylen, "%s: reading the reply: %s", path,
		    failed);
	else if (WIFSIGNALED(status))
		printable_printf(why, whylen, "%s: the reading process was killed by "
		    "signal %d", path, WTERMSIG(status));
	else if (WEXITSTATUS(status) == 1 && reply.len > 0 &&
	    reply.data[0] == 'E')
		printable_printf(why, whylen, "%.*s", (int)(reply.len - 1),
		    reply.data + 1);
	else if (WEXITSTATUS(status) == 0 && reply.len > 0 &&
	    reply.data[0] == 'D' &&
	    (nl = memchr(reply.data, '\n', reply.len)) != NULL &&
	    (errno = 0, uid = strtoul(reply.data + 1, &end, 10),
	    end == nl && errno == 0)) {
		buf_append(out, nl + 1, reply.len - (size_t)(nl + 1 -
		    reply.data));
		*reader = (uid_t)uid;
		got = 0;
	} else
		printable_printf(why, whylen, "%s: the reading process failed (exit "
		    "%d)", path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	buf_free(&reply);
	return got;
}
