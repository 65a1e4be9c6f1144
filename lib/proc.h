/*
 * NAME
 *	proc - process set-up both programs share: descriptors, signals,
 *	resource limits, and whose privileges a program runs with
 * SYNOPSIS
 *	#include "lib/proc.h"
 * DESCRIPTION
 *	sendmail is installed set-user-id and set-group-id to the mxlane
 *	account. A caller other than root is dropped to that account at
 *	once and for good (real, effective and saved ids), so the caller
 *	can no longer signal, trace or stop the process that works with
 *	the queue. Root (cron, admins) may choose the configuration; a
 *	root-started program then becomes the owner of the spool directory
 *	before it opens anything in it, so root never creates, opens or
 *	chmods a path in a directory another account can write.
 *
 *	proc_start() must run first thing in main(): it gives the process
 *	valid descriptors 0, 1 and 2 (so that no file the program opens
 *	can become "standard output"), a strict umask, and the signal
 *	dispositions both programs want.
 * DIAGNOSTICS
 *	Functions that can fail return 0, or a sysexits code with a
 *	one-line reason in err.
 */
#ifndef MXLANE_PROC_H
#define MXLANE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who started us, as the kernel says, taken before any id changes. */
struct proc_caller {
	uid_t uid;		/* real uid */
	gid_t gid;		/* real gid */
	gid_t groups[64];	/* supplementary groups (the first 64) */
	int ngroups;
	bool setid;		/* running with ids the caller does not have */
};

/*
 * Descriptors 0-2 opened on /dev/null when closed, umask 077, and the
 * dispositions: SIGPIPE and SIGXFSZ ignored (a closed pipe or a file
 * size limit becomes an error return, not death), terminal stop
 * signals ignored (a terminal can still stop a set-id process, whatever
 * its uid). Fills *who.
 */
void proc_start(struct proc_caller *who);

/* Is the caller root, or a member (real or supplementary) of gid? */
bool proc_caller_in_group(const struct proc_caller *who, gid_t gid);

/*
 * Set-id start by a caller other than root: become the program's own
 * account (its effective ids) for real, effective and saved ids. For
 * root, or without set-id, nothing changes. Returns 0 or EX_OSERR.
 */
int proc_drop_setid(const struct proc_caller *who, char *err, size_t errlen);

/*
 * Root started a set-user-id copy: take back uid and gid 0 for the
 * real, effective and saved ids, so root's own choices (-C) are read
 * with root's rights before proc_become_owner() switches again.
 */
int proc_regain_root(const struct proc_caller *who, char *err, size_t errlen);

/*
 * Opens directory path (the spool) and makes sure this process may
 * work in it safely: a root process switches to the directory's owner
 * (uid, the owner's primary group, no supplementary groups) unless the
 * owner is root; any other process must own it. The directory must not
 * be writable by group or others, and each directory above it must be
 * owned by root or by the owner and not writable by others unless
 * sticky (as /tmp), so nobody else can swap it. *dirfd gets an
 * O_DIRECTORY descriptor to open everything inside with openat().
 * Returns 0, EX_TEMPFAIL (cannot open it) or EX_NOPERM (unsafe or not
 * ours), with the reason in err.
 */
int proc_become_owner(const char *path, int *dirfd, char *err,
    size_t errlen);

/*
 * Resource limits the caller set must not cut a queue operation in
 * half: soft limits are raised to the hard ones, and a hard limit below
 * what the work needs (file size at least min_fsize bytes, CPU time,
 * address space, descriptors) is refused before anything is touched.
 * Returns 0 or EX_TEMPFAIL with the limit named in err.
 */
int proc_check_limits(unsigned long long min_fsize, char *err, size_t errlen);
/* Does the file size limit leave room for a file of size bytes? */
bool proc_fsize_allows(unsigned long long size);

/*
 * SIGBUS (a memory-mapped spool file on a full file system) and SIGALRM
 * (the spool's watchdog: a call stuck on a dead process's mutex) end
 * the program with one line on stderr and exit 75, or with exit 0 once
 * proc_committed is set: after its work is durable, a submission must
 * not report a failure, or the client would send the message again.
 */
void proc_fatal_signals(const char *progname);
#include <signal.h>
extern volatile sig_atomic_t proc_committed;

/*
 * Starts argv (path first) detached: in a new session, with no
 * descriptor of ours but /dev/null on 0-2 (and keep_fd as descriptor 3
 * when it is not -1, with the locks on it), and without waiting for it.
 * Returns false when it could not be started.
 */
bool proc_spawn_detached(const char *path, char *const argv[], int keep_fd);

#endif
