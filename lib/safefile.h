/*
 * NAME
 *	safefile - open and read a file that someone else controls
 * SYNOPSIS
 *	#include "lib/safefile.h"
 * DESCRIPTION
 *	For files that root reads on a user's behalf (aliases(5)
 *	":include:" lists): the file must be the one its path names without
 *	any redirection, and reading it must not show anything its owner
 *	could not read.
 *
 *	safefile_open() walks path one component at a time from "/" (a
 *	relative path from the working directory) and opens it for reading.
 *	It refuses, with a reason in why:
 *	-	a symbolic link anywhere in the path;
 *	-	anything but a regular file: the last component is looked at
 *		through O_PATH first, so a FIFO or a device is never opened,
 *		and the open itself is O_NONBLOCK|O_NOCTTY|O_NOFOLLOW and must
 *		give the file that was looked at;
 *	-	a file with more than one hard link (a link to a file of
 *		someone else's);
 *	-	a file, or a directory on the way to it, that someone other
 *		than root and the file's owner can write: writable by all
 *		users, or by a group other than the owner's private group
 *		(the owner's primary group, with no other member listed).
 *		Above the file's own directory a sticky bit makes that safe
 *		(only the owner of the next component, which is checked too,
 *		can rename it); in the file's own directory it does not, since
 *		anyone could create the file while it is missing ("/tmp/list"
 *		is refused);
 *	-	a directory owned by anyone but root and the file's owner, so
 *		a root-owned file is only read through root's directories.
 *	On success it returns the descriptor and fills st.
 *
 *	safefile_read() reads such a file in a child process and returns
 *	its bytes in out (appended). Run by root, the child switches to the
 *	uid as (setgroups, setresgid, setresuid, each checked, with the
 *	groups of that user's passwd entry) before it opens anything. With
 *	as SAFEFILE_OWNER it first checks the path as root to learn the
 *	file's owner; when that is not root it switches to the owner and
 *	checks and opens the path again, which must lead to the same file.
 *	Not run by root, the child keeps the caller's privileges. The child
 *	passes the bytes back through a pipe; the caller takes at most max
 *	bytes and waits at most timeout_ms, then kills the child. *reader
 *	is the uid that read the file.
 * DIAGNOSTICS
 *	Both return -1 with a one-line reason in why that names the file or
 *	the directory at fault. No reason quotes the file's content.
 * BUGS
 *	ACLs and capabilities are not looked at. A user whose primary group
 *	is another user's private group is not noticed.
 */
#ifndef MXLANE_SAFEFILE_H
#define MXLANE_SAFEFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/util.h"

#define SAFEFILE_OWNER	((uid_t)-1)

int safefile_open(const char *path, struct stat *st, char *why,
    size_t whylen);
int safefile_read(const char *path, uid_t as, size_t max, int timeout_ms,
    struct buf *out, uid_t *reader, char *why, size_t whylen);

#endif
