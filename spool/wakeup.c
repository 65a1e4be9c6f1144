/*
 * NAME
 *	wakeup - telling a queue runner daemon that new mail has arrived
 * DESCRIPTION
 *	A FIFO named "wakeup" in the spool directory, like Postfix's
 *	public/pickup. A daemon holds it open for reading (and writing, so
 *	it never sees end-of-file) and sleeps in poll(2) on it; a submitter
 *	opens it without blocking and writes one byte. When no daemon is
 *	listening the open fails with ENXIO, which tells the submitter to
 *	start a runner itself if the mail cannot wait.
 *
 *	Priority-lane mail rings with its queue id and a newline instead
 *	(one write of 14 octets, which a FIFO never splits or mixes with
 *	another's): a daemon that is busy picking up thousands of bulk
 *	files from the maildrop takes that one first. Anything else read
 *	is just a ring; an id that names no maildrop file is harmless (the
 *	pickup finds nothing to take).
 *
 *	Both sides are the spool's owner and open the FIFO relative to the
 *	spool directory they opened, without following a symlink, and make
 *	sure it is a FIFO before using it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool.h"

#define FIFO_NAME "wakeup"

static int
open_fifo(int dirfd, int flags)
{
	struct stat st;
	int fd = openat(dirfd, FIFO_NAME, flags | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int
spool_wakeup_listen(int dirfd)
{
	if (mkfifoat(dirfd, FIFO_NAME, 0600) != 0 && errno != EEXIST) {
		log_error("spool: cannot create the %s FIFO: %s", FIFO_NAME,
		    strerror(errno));
		return -1;
	}
	int fd = open_fifo(dirfd, O_RDWR);
	if (fd < 0)
		log_error("spool: cannot open the %s FIFO: %s", FIFO_NAME,
		    strerror(errno));
	return fd;
}

bool
spool_wakeup_notify(int dirfd)
{
	int fd = open_fifo(dirfd, O_WRONLY);

	if (fd < 0)
		return false;	/* ENXIO: nobody listening; ENOENT: never */
	bool ok = write(fd, "", 1) == 1 || errno == EAGAIN;
	close(fd);
	return ok;
}

bool
spool_wakeup_notify_id(int dirfd, const char *id)
{
	char rec[SPOOL_ID_SIZE + 1];
	int fd = open_fifo(dirfd, O_WRONLY);

	if (fd < 0)
		return false;
	int len = snprintf(rec, sizeof(rec), "%s\n", id);
	bool ok = write(fd, rec, (size_t)len) == len || errno == EAGAIN;
	close(fd);
	return ok;
}

size_t
spool_wakeup_drain(int fd, char (*ids)[SPOOL_ID_SIZE], size_t max)
{
	char buf[4096];
	size_t nids = 0, run = 0;
	char word[SPOOL_ID_SIZE];
	ssize_t n;

	/* Ids are runs of id characters ended by a newline. */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (c == '\n') {
				word[run < sizeof(word) ? run : 0] = '\0';
				if (run == SPOOL_ID_SIZE - 1 && nids < max &&
				    spool_id_valid(word))
					memcpy(ids[nids++], word, SPOOL_ID_SIZE);
				run = 0;
			} else if (c == '\0') {
				run = 0;	/* a plain ring */
			} else {
				if (run < sizeof(word) - 1)
					word[run] = c;
				run++;
			}
		}
	}
	return nids;
}
