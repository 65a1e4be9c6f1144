/*
 * NAME
 *	test_safefile - unit tests for lib/safefile.c
 * DESCRIPTION
 *	Builds paths under a mkdtemp(3) directory the way a hostile owner
 *	of a list would (symbolic links to the file and to a directory, a
 *	FIFO, a device, a hard link, writable and sticky directories) and
 *	checks that safefile_open() refuses each with a reason naming the
 *	file or directory, and opens the plain cases. Run as root (as CI
 *	does), it also gives files and directories to other uids (nobody,
 *	and a uid without a passwd entry) and checks the ownership rules
 *	and that safefile_read() reads as the owner, or as the uid it is
 *	told to. The directory is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/safefile.h"
#include "lib/util.h"
#include "tests/unit/unit.h"

#define NOUSER_UID	((uid_t)4242420)	/* no passwd entry */

static char dir[] = "/tmp/mxlane-test-safefile.XXXXXX";
static char why[512];

static char *
path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void
put(const char *name, const char *text, mode_t mode)
{
	char *p = path_of(name);
	FILE *fp = fopen(p, "w");

	CHECK(fp != NULL);
	if (fp != NULL) {
		fputs(text, fp);
		fclose(fp);
	}
	CHECK_INT(chmod(p, mode), 0);
	free(p);
}

static void
mkdir_in(const char *name, mode_t mode)
{
	char *p = path_of(name);

	CHECK_INT(mkdir(p, 0700), 0);
	CHECK_INT(chmod(p, mode), 0);
	free(p);
}

/* safefile_open(DIR/name) must succeed. */
static void
opens(const char *name)
{
	char *p = path_of(name);
	struct stat st;
	int fd;

	why[0] = '\0';
	fd = safefile_open(p, &st, why, sizeof(why));
	if (fd == -1)
		fprintf(stderr, "  %s refused: %s\n", p, why);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(S_ISREG(st.st_mode));
		close(fd);
	}
	free(p);
}

/* safefile_open(DIR/name) must fail with why == want, DIR filled in. */
static void
refuses(const char *name, const char *want)
{
	char *p = path_of(name), *full = NULL;
	struct stat st;
	const char *d;
	struct buf b = BUF_INIT;
	int fd;

	/* "@" in want stands for the test directory. */
	for (d = want; *d != '\0'; d++)
		if (*d == '@')
			buf_puts(&b, dir);
		else
			buf_putc(&b, *d);
	full = buf_steal(&b);
	why[0] = '\0';
	fd = safefile_open(p, &st, why, sizeof(why));
	CHECK_INT(fd, -1);
	if (fd >= 0)
		close(fd);
	CHECK_STR(why, full);
	free(full);
	free(p);
}

static void
test_plain(void)
{
	char *cwd, *rel;

	put("list", "a@example.org\n", 0644);
	mkdir_in("sub", 0755);
	opens("list");
	opens("./list");
	opens("sub/../list");
	/* Relative paths are taken from the working directory. */
	cwd = getcwd(NULL, 0);
	CHECK(cwd != NULL);
	CHECK_INT(chdir(dir), 0);
	rel = xstrdup("list");
	{
		struct stat st;
		int fd = safefile_open(rel, &st, why, sizeof(why));

		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
	free(rel);
	if (cwd != NULL)
		CHECK_INT(chdir(cwd), 0);
	free(cwd);
	/* A file only its owner may read is still a plain file. */
	put("private", "b@example.org\n", 0600);
	opens("private");
	refuses("missing", "@/missing: No such file or directory");
	refuses("list/", "@/list/ does not name a file");
	refuses("sub/..", "@/sub/.. does not name a file");
}

static void
test_links(void)
{
	char *p, *target;

	/* The symlink to a root-only file, the attack that started this. */
	put("secret", "root-only@example.org\n", 0600);
	p = path_of("link");
	target = path_of("secret");
	CHECK_INT(symlink(target, p), 0);
	free(p);
	refuses("link", "@/link is a symbolic link");
	/* A relative symlink, a dangling one. */
	p = path_of("rel-link");
	CHECK_INT(symlink("secret", p), 0);
	free(p);
	refuses("rel-link", "@/rel-link is a symbolic link");
	p = path_of("dangling");
	CHECK_INT(symlink("/nonexistent/mxlane", p), 0);
	free(p);
	refuses("dangling", "@/dangling is a symbolic link");

	/* A symlinked directory anywhere in the path. */
	mkdir_in("real", 0755);
	put("real/list", "c@example.org\n", 0644);
	opens("real/list");
	p = path_of("linkdir");
	CHECK_INT(symlink("real", p), 0);
	free(p);
	refuses("linkdir/list", "@/linkdir is a symbolic link");
	mkdir_in("real/deeper", 0755);
	put("real/deeper/list", "d@example.org\n", 0644);
	refuses("linkdir/deeper/list", "@/linkdir is a symbolic link");
	refuses("real/list/x", "@/real/list is not a directory");

	/* A hard link to a file, and the file itself, now have 2 links. */
	p = path_of("hardlink");
	CHECK_INT(link(target, p), 0);
	free(p);
	refuses("hardlink", "@/hardlink has 2 hard links");
	refuses("secret", "@/secret has 2 hard links");
	free(target);
}

static void
test_not_regular(void)
{
	struct sockaddr_un sun;
	struct timespec t0, t1;
	char *p;
	int s;

	/* A FIFO nobody writes to: refused at once, not waited on. */
	p = path_of("fifo");
	CHECK_INT(mkfifo(p, 0644), 0);
	free(p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	refuses("fifo", "@/fifo is not a regular file");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 2);
	/* A directory, a socket, a device. */
	mkdir_in("adir", 0755);
	refuses("adir", "@/adir is not a regular file");
	p = path_of("sock");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(s >= 0);
	CHECK_INT(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(s);
	free(p);
	refuses("sock", "@/sock is not a regular file");
	{
		struct stat st;

		CHECK_INT(safefile_open("/dev/null", &st, why, sizeof(why)),
		    -1);
		CHECK_STR(why, "/dev/null is not a regular file");
	}
}

static void
test_writable(void)
{
	/* A file or directory that all users can write. */
	put("ww-file", "e@example.org\n", 0644);
	{
		char *p = path_of("ww-file");

		CHECK_INT(chmod(p, 0666), 0);
		free(p);
	}
	refuses("ww-file", "@/ww-file is writable by all users");
	mkdir_in("wwdir", 0777);
	put("wwdir/list", "f@example.org\n", 0644);
	refuses("wwdir/list", "@/wwdir/list is in directory @/wwdir, which "
	    "all users can write");
	/* Sticky (like /tmp) does not help the file in that directory... */
	mkdir_in("sticky", 01777);
	put("sticky/list", "g@example.org\n", 0644);
	refuses("sticky/list", "@/sticky/list is in directory @/sticky, "
	    "which all users can write");
	/* ...but does above it: only an entry's owner can rename it. */
	mkdir_in("sticky/own", 0755);
	put("sticky/own/list", "h@example.org\n", 0644);
	opens("sticky/own/list");
	/* A world-writable directory above, not sticky: refused. */
	mkdir_in("wwdir/own", 0755);
	put("wwdir/own/list", "i@example.org\n", 0644);
	refuses("wwdir/own/list", "@/wwdir/own/list is in and under directory "
	    "@/wwdir, which all users can write");
}

/* Gives DIR/name to uid:gid. */
static void
give(const char *name, uid_t uid, gid_t gid)
{
	char *p = path_of(name);

	CHECK_INT(lchown(p, uid, gid), 0);
	free(p);
}

static void
test_owners(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t nob;
	gid_t nobg;
	char *want;

	CHECK(pw != NULL);
	if (pw == NULL)
		return;
	nob = pw->pw_uid;
	nobg = pw->pw_gid;
	/* Root's file through a directory a user owns. */
	mkdir_in("udir", 0755);
	give("udir", nob, nobg);
	put("udir/rootfile", "j@example.org\n", 0644);
	want = xasprintf("@/udir/rootfile is owned by root but directory "
	    "@/udir is owned by uid %lu", (unsigned long)nob);
	refuses("udir/rootfile", want);
	free(want);
	/* The user's own file there is fine... */
	put("udir/list", "k@example.org\n", 0600);
	give("udir/list", nob, nobg);
	opens("udir/list");
	/* ...another user's file there is not. */
	put("udir/other", "l@example.org\n", 0644);
	give("udir/other", NOUSER_UID, NOUSER_UID);
	want = xasprintf("directory @/udir is owned by uid %lu, neither root "
	    "nor the owner of @/udir/other (uid %lu)", (unsigned long)nob,
	    (unsigned long)NOUSER_UID);
	refuses("udir/other", want);
	free(want);

	/* Group-writable: fine for the owner's private group only. */
	mkdir_in("gdir", 0775);
	give("gdir", nob, nobg);
	put("gdir/list", "m@example.org\n", 0664);
	give("gdir/list", nob, nobg);
	opens("gdir/list");
	mkdir_in("g2dir", 0775);
	give("g2dir", nob, NOUSER_UID);
	put("g2dir/list", "n@example.org\n", 0644);
	give("g2dir/list", nob, nobg);
	want = xasprintf("@/g2dir/list is in directory @/g2dir, which group "
	    "%lu can write", (unsigned long)NOUSER_UID);
	refuses("g2dir/list", want);
	free(want);
	put("gfile", "o@example.org\n", 0664);
	give("gfile", 0, NOUSER_UID);
	want = xasprintf("@/gfile is writable by group %lu",
	    (unsigned long)NOUSER_UID);
	refuses("gfile", want);
	free(want);
}

static int
read_as(const char *name, uid_t as, struct buf *out, uid_t *reader)
{
	char *p = path_of(name);
	int rc;

	buf_reset(out);
	why[0] = '\0';
	rc = safefile_read(p, as, 1024, 5000, out, reader, why, sizeof(why));
	free(p);
	return rc;
}

static void
test_read(void)
{
	struct buf out = BUF_INIT;
	struct passwd *pw;
	uid_t reader = 12345, nob;
	char *want;

	put("r-list", "p@example.org\n", 0644);
	CHECK_INT(read_as("r-list", SAFEFILE_OWNER, &out, &reader), 0);
	CHECK_STR(out.data, "p@example.org\n");
	CHECK_INT(reader, geteuid());
	/* Refusals come back with their reason; nothing is read. */
	CHECK_INT(read_as("link", SAFEFILE_OWNER, &out, &reader), -1);
	want = xasprintf("%s/link is a symbolic link", dir);
	CHECK_STR(why, want);
	free(want);
	CHECK_INT(out.len, 0);
	CHECK_INT(read_as("fifo", SAFEFILE_OWNER, &out, &reader), -1);
	/* At most max bytes. */
	{
		char big[1100];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		put("big", big, 0644);
	}
	CHECK_INT(read_as("big", SAFEFILE_OWNER, &out, &reader), -1);
	want = xasprintf("%s/big is larger than 1024 bytes", dir);
	CHECK_STR(why, want);
	free(want);
	put("empty", "", 0644);
	CHECK_INT(read_as("empty", SAFEFILE_OWNER, &out, &reader), 0);
	CHECK_INT(out.len, 0);

	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL) {
		buf_free(&out);
		return;
	}
	nob = pw->pw_uid;
	/* The owner (nobody) must get to the files: the directory too. */
	CHECK_INT(chmod(dir, 0711), 0);
	/* nobody's 0600 list is read, by nobody. */
	CHECK_INT(read_as("udir/list", SAFEFILE_OWNER, &out, &reader), 0);
	CHECK_STR(out.data, "k@example.org\n");
	CHECK_INT(reader, nob);
	/* Mode 000: root could read it, its owner cannot, so it is not. */
	put("udir/locked", "q@example.org\n", 0600);
	give("udir/locked", nob, pw->pw_gid);
	{
		char *p = path_of("udir/locked");

		CHECK_INT(chmod(p, 0), 0);
		free(p);
	}
	CHECK_INT(read_as("udir/locked", SAFEFILE_OWNER, &out, &reader), -1);
	want = xasprintf("%s/udir/locked: Permission denied", dir);
	CHECK_STR(why, want);
	free(want);
	CHECK_INT(out.len, 0);
	/* Told to read as nobody: root's 0600 file is out of reach. */
	put("rootonly", "r@example.org\n", 0600);
	CHECK_INT(read_as("rootonly", nob, &out, &reader), -1);
	want = xasprintf("%s/rootonly: Permission denied", dir);
	CHECK_STR(why, want);
	free(want);
	CHECK_INT(read_as("rootonly", SAFEFILE_OWNER, &out, &reader), 0);
	CHECK_INT(reader, 0);
	/* A world-readable root file is read as nobody when told so. */
	CHECK_INT(read_as("r-list", nob, &out, &reader), 0);
	CHECK_INT(reader, nob);
	/* An owner without a passwd entry: no privileges to read with. */
	mkdir_in("ghost", 0755);
	give("ghost", NOUSER_UID, NOUSER_UID);
	put("ghost/list", "s@example.org\n", 0644);
	give("ghost/list", NOUSER_UID, NOUSER_UID);
	CHECK_INT(read_as("ghost/list", SAFEFILE_OWNER, &out, &reader), -1);
	want = xasprintf("uid %lu has no passwd entry to read with",
	    (unsigned long)NOUSER_UID);
	CHECK_STR(why, want);
	free(want);
	CHECK_INT(chmod(dir, 0700), 0);
	buf_free(&out);
}

static int
remove_one(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_plain();
	test_links();
	test_not_regular();
	test_writable();
	if (geteuid() == 0)
		test_owners();
	else
		printf("not root: ownership cases not run\n");
	test_read();
	CHECK_INT(nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
	return unit_done("safefile");
}
