/*
 * NAME
 *	proc - process set-up both programs share
 * DESCRIPTION
 *	See proc.h. Why each step is there:
 *
 *	Descriptors 0-2: a caller may start us with stdout closed. The
 *	first file we open would then be descriptor 1, and the next
 *	printf() would write into it (a queue file). They are opened on
 *	/dev/null first.
 *
 *	Signals: once the ids are dropped the caller cannot send us
 *	signals, but its terminal still can (^Z sends SIGTSTP to the
 *	foreground process group whatever the uid), so the stop signals
 *	are ignored. SIGINT and SIGQUIT from the terminal still end a
 *	submission; nothing it holds is shared, so that only ends the
 *	caller's own message.
 *
 *	Resource limits: they are inherited through a set-id exec. A
 *	caller who set RLIMIT_FSIZE to 1000 bytes or RLIMIT_CPU to 1 s
 *	could otherwise make us die half way through a write at a moment of
 *	their choosing.
 *
 *	The owner switch: the privilege that matters is the spool owner's,
 *	not root's. Root that works in a directory another account can
 *	write can be led by a planted symlink to create or chmod any file
 *	on the host; the owner of the directory risks only its own files.
 */
#include "lib/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

void
proc_start(struct proc_caller *who)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (null < 0)
			_exit(EX_OSERR);
		if (null != fd) {
			/* A lower descriptor was free: cannot happen in order. */
			(void)dup2(null, fd);
			close(null);
		}
	}
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);

	memset(who, 0, sizeof(*who));
	who->uid = getuid();
	who->gid = getgid();
	int n = getgroups(0, NULL);
	if (n > 0 && n <= (int)(sizeof(who->groups) / sizeof(who->groups[0])))
		who->ngroups = getgroups(n, who->groups);
	else if (n > 0) {
		gid_t *all = calloc((size_t)n, sizeof(gid_t));
		if (all && getgroups(n, all) == n) {
			who->ngroups = (int)(sizeof(who->groups) /
			    sizeof(who->groups[0]));
			memcpy(who->groups, all, sizeof(who->groups));
		}
		free(all);
	}
	if (who->ngroups < 0)
		who->ngroups = 0;
	who->setid = geteuid() != getuid() || getegid() != getgid();
}

bool
proc_caller_in_group(const struct proc_caller *who, gid_t gid)
{
	if (who->uid == 0 || who->gid == gid)
		return true;
	for (int i = 0; i < who->ngroups; i++)
		if (who->groups[i] == gid)
			return true;
	return false;
}

static int
fail(char *err, size_t errlen, int code, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, strerror(errno));
	return code;
}

int
proc_drop_setid(const struct proc_caller *who, char *err, size_t errlen)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (!who->setid || who->uid == 0)
		return 0;
	/*
	 * Group first: once the uid is dropped we could no longer change
	 * it. Supplementary groups stay the caller's (changing them needs
	 * CAP_SETGID); nothing here opens files by group permission.
	 */
	if (setresgid(gid, gid, gid) != 0)
		return fail(err, errlen, EX_OSERR, "setresgid");
	if (setresuid(uid, uid, uid) != 0)
		return fail(err, errlen, EX_OSERR, "setresuid");
	if (getuid() != uid || geteuid() != uid || getgid() != gid) {
		snprintf(err, errlen, "could not drop the caller's ids");
		return EX_OSERR;
	}
	return 0;
}

int
proc_regain_root(const struct proc_caller *who, char *err, size_t errlen)
{
	if (!who->setid || who->uid != 0)
		return 0;
	if (setresuid(0, 0, 0) != 0)
		return fail(err, errlen, EX_OSERR, "setresuid(0)");
	if (setresgid(who->gid, who->gid, who->gid) != 0)
		return fail(err, errlen, EX_OSERR, "setresgid");
	return 0;
}

/* Nobody but root and owner may rename or replace what is below dir. */
static bool
safe_ancestor(const struct stat *st, uid_t owner)
{
	if (st->st_uid != 0 && st->st_uid != owner)
		return false;
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0)
		return true;
	return (st->st_mode & S_ISVTX) != 0;
}

static int
check_ancestors(const char *path, uid_t owner, char *err, size_t errlen)
{
	char *copy = strdup(path);
	struct stat st;

	if (copy == NULL)
		return EX_TEMPFAIL;
	for (char *slash = strrchr(copy, '/'); slash; slash = strrchr(copy,
	    '/')) {
		*slash = '\0';
		const char *dir = *copy ? copy : "/";
		if (stat(dir, &st) != 0 || !safe_ancestor(&st, owner)) {
			snprintf(err, errlen, "unsafe spool directory %s: %s "
			    "can be written by another account", path, dir);
			free(copy);
			return EX_NOPERM;
		}
		if (*copy == '\0')
			break;
	}
	free(copy);
	return 0;
}

static int
switch_to(uid_t uid, char *err, size_t errlen)
{
	struct passwd *pw = getpwuid(uid);
	gid_t gid;

	if (pw == NULL) {
		snprintf(err, errlen, "the spool's owner (uid %u) has no "
		    "passwd entry", (unsigned)uid);
		return EX_NOPERM;
	}
	gid = pw->pw_gid;
	if (setgroups(1, &gid) != 0)
		return fail(err, errlen, EX_OSERR, "setgroups");
	if (setresgid(gid, gid, gid) != 0)
		return fail(err, errlen, EX_OSERR, "setresgid");
	if (setresuid(uid, uid, uid) != 0)
		return fail(err, errlen, EX_OSERR, "setresuid");
	if (geteuid() != uid || getuid() != uid) {
		snprintf(err, errlen, "could not become uid %u",
		    (unsigned)uid);
		return EX_OSERR;
	}
	return 0;
}

int
proc_become_owner(const char *path, int *dirfd, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	*dirfd = -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the spool directory %s: "
		    "%s", path, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_TEMPFAIL;
	}
	if (fstat(fd, &st) != 0) {
		rc = fail(err, errlen, EX_TEMPFAIL, path);
		goto err;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "unsafe spool directory %s: writable by "
		    "group or others (mode %04o); it must be 0700",
		    path, (unsigned)(st.st_mode & 07777));
		rc = EX_NOPERM;
		goto err;
	}
	if ((rc = check_ancestors(path, st.st_uid, err, errlen)) != 0)
		goto err;
	if (geteuid() == 0 && st.st_uid != 0) {
		if ((rc = switch_to(st.st_uid, err, errlen)) != 0)
			goto err;
	} else if (geteuid() != st.st_uid) {
		struct passwd *pw = getpwuid(st.st_uid);
		snprintf(err, errlen, "the spool directory %s belongs to %s, "
		    "not to this user (uid %u)", path, pw ? pw->pw_name :
		    "another user", (unsigned)geteuid());
		rc = EX_NOPERM;
		goto err;
	}
	*dirfd = fd;
	return 0;
err:
	close(fd);
	return rc;
}

struct limit_rule {
	int resource;
	const char *name;
	rlim_t minimum;		/* 0: only raise the soft limit */
};

int
proc_check_limits(unsigned long long min_fsize, char *err, size_t errlen)
{
	const struct limit_rule rules[] = {
		{RLIMIT_FSIZE, "file size (RLIMIT_FSIZE)", (rlim_t)min_fsize},
		{RLIMIT_CPU, "CPU time (RLIMIT_CPU)", 60},
		{RLIMIT_NOFILE, "open files (RLIMIT_NOFILE)", 64},
		{RLIMIT_AS, "address space (RLIMIT_AS)", 256ULL << 20},
		{RLIMIT_DATA, "data size (RLIMIT_DATA)", 128ULL << 20},
		{RLIMIT_STACK, "stack size (RLIMIT_STACK)", 1ULL << 20},
		{RLIMIT_NPROC, "processes (RLIMIT_NPROC)", 0},
	};
	struct rlimit rl;

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (getrlimit(rules[i].resource, &rl) != 0)
			continue;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <
		    rules[i].minimum) {
			snprintf(err, errlen, "the %s limit of %llu is too low "
			    "to work with the mail queue safely (at least "
			    "%llu needed)", rules[i].name,
			    (unsigned long long)rl.rlim_max,
			    (unsigned long long)rules[i].minimum);
			return EX_TEMPFAIL;
		}
		if (rl.rlim_cur != rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(rules[i].resource, &rl);
		}
	}
	/* A core of a process holding other users' mail helps nobody. */
	rl.rlim_cur = rl.rlim_max = 0;
	(void)setrlimit(RLIMIT_CORE, &rl);
	return 0;
}

volatile sig_atomic_t proc_committed;
static char fatal_bus[160];
static char fatal_hang[160];

static void
on_fatal_signal(int sig)
{
	const char *msg = sig == SIGBUS ? fatal_bus : fatal_hang;

	if (proc_committed)
		_exit(0);
	(void)!write(2, msg, strlen(msg));
	_exit(EX_TEMPFAIL);
}

void
proc_fatal_signals(const char *progname)
{
	/* Formatted now: a handler may only write(2). */
	snprintf(fatal_bus, sizeof(fatal_bus), "%s: cannot write the mail "
	    "queue (file system full or I/O error); nothing done\n",
	    progname);
	snprintf(fatal_hang, sizeof(fatal_hang), "%s: the mail queue is not "
	    "responding; nothing done, try again later\n", progname);
	signal(SIGBUS, on_fatal_signal);
	signal(SIGALRM, on_fatal_signal);
}

bool
proc_fsize_allows(unsigned long long size)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_FSIZE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || (unsigned long long)rl.rlim_cur >=
	    size;
}

bool
proc_spawn_detached(const char *path, char *const argv[], int keep_fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return false;
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	/* Child: a session of its own, so the caller's terminal is gone. */
	setsid();
	pid = fork();
	if (pid != 0)
		_exit(pid > 0 ? 0 : 1);
	if (keep_fd >= 0) {
		/* dup2 clears close-on-exec; a descriptor already 3 needs it. */
		if (keep_fd != 3 ? dup2(keep_fd, 3) != 3 :
		    fcntl(3, F_SETFD, 0) != 0)
			_exit(EX_OSERR);
		close_range(4, ~0U, 0);
	} else {
		close_range(3, ~0U, 0);
	}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	signal(SIGPIPE, SIG_DFL);
	signal(SIGXFSZ, SIG_DFL);
	execv(path, argv);
	_exit(EX_UNAVAILABLE);
}
