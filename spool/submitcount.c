/*
 * NAME
 *	submitcount - what each Unix user submitted in the current
 *	windows, for the submitter limits
 * DESCRIPTION
 *	See submitcount.h. Opened like maildrop files: relative to the
 *	spool directory, never following a symlink, and checked to be a
 *	plain file of the running account with one link.
 */
#include "spool/submitcount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define MAGIC		"MXLCNT01"
#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static uint64_t
fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

void
submitcount_encode(const struct submit_count *c,
    unsigned char out[SUBMITCOUNT_SIZE])
{
	unsigned char *p = out;

	memset(out, 0, SUBMITCOUNT_SIZE);
	memcpy(p, MAGIC, 8);
	p += 8;
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(c->uid >> (24 - 8 * i));
	p += 4;
	memcpy(p, c->user, strnlen(c->user, sizeof(c->user) - 1));
	p += 64;
	uint64_t f[6] = {(uint64_t)c->msg_window, c->msgs,
	    (uint64_t)c->rcpt_window, c->rcpts, (uint64_t)c->msg_logged,
	    (uint64_t)c->rcpt_logged};
	for (int i = 0; i < 6; i++, p += 8)
		put64(p, f[i]);
	put64(p, fnv1a(out, (size_t)(p - out)));
}

bool
submitcount_decode(const unsigned char *in, size_t len, struct submit_count *c)
{
	memset(c, 0, sizeof(*c));
	if (len != SUBMITCOUNT_SIZE || memcmp(in, MAGIC, 8) != 0 ||
	    get_be64(in + SUBMITCOUNT_SIZE - 8) != fnv1a(in,
	    SUBMITCOUNT_SIZE - 8))
		return false;
	const unsigned char *p = in + 8;
	c->uid = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	p += 4;
	memcpy(c->user, p, sizeof(c->user) - 1);
	c->user[sizeof(c->user) - 1] = '\0';
	p += 64;
	c->msg_window = (int64_t)get_be64(p);
	c->msgs = get_be64(p + 8);
	c->rcpt_window = (int64_t)get_be64(p + 16);
	c->rcpts = get_be64(p + 24);
	c->msg_logged = (int64_t)get_be64(p + 32);
	c->rcpt_logged = (int64_t)get_be64(p + 40);
	return true;
}

static int
open_dir(int spool_dirfd, bool create)
{
	int fd = openat(spool_dirfd, SUBMITCOUNT_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(spool_dirfd, SUBMITCOUNT_DIR, 0700) != 0 &&
		    errno != EEXIST)
			return -1;
		fd = openat(spool_dirfd, SUBMITCOUNT_DIR, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

/* A plain file of ours, with one name. */
static bool
file_ok(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && st.st_nlink == 1 &&
	    st.st_size <= 4096;
}

int
submitcount_lock(int spool_dirfd, uint32_t uid, int wait_ms)
{
	char name[16];
	int dfd = open_dir(spool_dirfd, true), fd;

	if (dfd < 0)
		return -1;
	snprintf(name, sizeof(name), "%u", (unsigned)uid);
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
	int e = errno;
	close(dfd);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	if (!file_ok(fd)) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	/* Only this user's other submissions can hold it, briefly. */
	for (int waited = 0;; waited += 5) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (waited >= wait_ms) {
			errno = ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

void
submitcount_read(int fd, uint32_t uid, struct submit_count *c)
{
	unsigned char b[SUBMITCOUNT_SIZE];

	if (pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
	    !submitcount_decode(b, sizeof(b), c) || c->uid != uid) {
		memset(c, 0, sizeof(*c));
		c->uid = uid;
	}
}

int
submitcount_write(int fd, const struct submit_count *c)
{
	unsigned char b[SUBMITCOUNT_SIZE];

	submitcount_encode(c, b);
	return pwrite(fd, b, sizeof(b), 0) == (ssize_t)sizeof(b) ? 0 : -1;
}

void
submitcount_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* the lock goes with it */
}

int
submitcount_scan(int spool_dirfd,
    int (*fn)(void *ctx, const struct submit_count *c), void *ctx)
{
	int dfd = open_dir(spool_dirfd, false);
	DIR *d;
	struct dirent *de;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long uid = strtoul(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end ||
		    uid > UINT32_MAX)
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		unsigned char b[SUBMITCOUNT_SIZE];
		struct submit_count c;
		bool ok = file_ok(fd) && pread(fd, b, sizeof(b), 0) ==
		    (ssize_t)sizeof(b) && submitcount_decode(b, sizeof(b), &c) &&
		    c.uid == uid;
		close(fd);
		if (ok && fn(ctx, &c) != 0)
			break;
	}
	closedir(d);
	return 0;
}
