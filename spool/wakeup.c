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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool.h"

static char *
fifo_path(const char *dir)
{
	return xasprintf("%s/wakeup", dir);
}

int
spool_wakeup_listen(const char *dir)
{
	char *path = fifo_path(dir);
	struct stat st;

	if (lstat(path, &st) != 0 && mkfifo(path, 0660) != 0 &&
	    errno != EEXIST) {
		log_error("spool: cannot create %s", path);
		free(path);
		return -1;
	}
	(void)chmod(path, 0660);
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		log_error("spool: cannot open %s", path);
	free(path);
	return fd;
}

bool
spool_wakeup_notify(const char *dir)
{
	char *path = fifo_path(dir);
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	free(path);
	if (fd < 0)
		return false;	/* ENXIO: nobody listening; ENOENT: never */
	bool ok = write(fd, "", 1) == 1 || errno == EAGAIN;
	close(fd);
	return ok;
}

void
spool_wakeup_drain(int fd)
{
	char junk[512];

	while (read(fd, junk, sizeof(junk)) > 0)
		;
}
