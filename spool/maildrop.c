/*
 * NAME
 *	maildrop - one private file per submission, picked up later
 * DESCRIPTION
 *	See maildrop.h for the contract and the file layout.
 *
 *	Durability costs one journal commit: the file is written whole,
 *	then fsync(2) makes its data, inode and directory entry durable
 *	together (ext4 and xfs commit the creating transaction with it);
 *	the fsync of the directory afterwards is what POSIX asks for and
 *	is nearly free once that commit is done.
 *
 *	A reader never removes a file a live writer may still be writing:
 *	the writer holds an flock from creation to close, and an
 *	incomplete file is only removed once it is MAILDROP_STALE_AGE
 *	seconds old and unlocked.
 */
#include "spool/maildrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "spool/record.h"

#define MAGIC		"MXLDROP1"
#define END_MAGIC	"MXLDEND1"
#define TRAILER_LEN	24
/* Nothing we write comes near this; a bigger file is not ours. */
#define MAX_FILE	(4ULL << 30)

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static uint64_t
fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* Everything before the content bytes. */
static void
encode_prefix(const struct spool_msg *msg, const struct spool_rcpt *rcpts,
    size_t nrcpt, uint64_t nonce, size_t content_len, struct buf *out)
{
	struct buf rec = BUF_INIT;

	buf_append(out, MAGIC, 8);
	buf_put_be64(out, nonce);
	record_encode_msg(msg, &rec);
	buf_put_be32(out, (uint32_t)rec.len);
	buf_append(out, rec.data, rec.len);
	buf_put_be32(out, (uint32_t)nrcpt);
	for (size_t i = 0; i < nrcpt; i++) {
		struct spool_rcpt r = rcpts[i];
		r.index = (uint32_t)i;
		buf_reset(&rec);
		record_encode_rcpt(&r, &rec);
		buf_put_be32(out, (uint32_t)rec.len);
		buf_append(out, rec.data, rec.len);
	}
	buf_put_be64(out, content_len);
	buf_free(&rec);
}

static void
encode_trailer(uint64_t length, uint64_t hash, struct buf *out)
{
	buf_put_be64(out, length);
	buf_put_be64(out, hash);
	buf_append(out, END_MAGIC, 8);
}

void
maildrop_encode(const struct spool_msg *msg, const struct spool_rcpt *rcpts,
    size_t nrcpt, uint64_t nonce, const char *head, size_t head_len,
    const char *body, size_t body_len, struct buf *out)
{
	size_t start = out->len;

	encode_prefix(msg, rcpts, nrcpt, nonce, head_len + body_len, out);
	buf_append(out, head, head_len);
	buf_append(out, body, body_len);
	uint64_t len = out->len - start;
	encode_trailer(len, fnv1a(FNV_OFFSET, out->data + start, len), out);
}

void
maildrop_msg_free(struct maildrop_msg *m)
{
	spool_msg_free(&m->msg);
	spool_rcpts_free(m->rcpts, m->nrcpt);
	free(m->content);
	memset(m, 0, sizeof(*m));
}

int
maildrop_decode(const char *data, size_t len, struct maildrop_msg *out)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t pos, cap = 0;

	memset(out, 0, sizeof(*out));
	if (len < 8 + 8 + 4 + 4 + 8 + TRAILER_LEN ||
	    memcmp(p, MAGIC, 8) != 0 ||
	    memcmp(p + len - 8, END_MAGIC, 8) != 0)
		return -1;
	size_t body_end = len - TRAILER_LEN;
	if (get_be64(p + body_end) != body_end ||
	    get_be64(p + body_end + 8) != fnv1a(FNV_OFFSET, p, body_end))
		return -1;
	out->nonce = get_be64(p + 8);
	pos = 16;
#define NEED(n) do { if (body_end - pos < (size_t)(n)) goto bad; } while (0)
	NEED(4);
	uint32_t elen = get_be32(p + pos);
	pos += 4;
	NEED(elen);
	if (record_decode_msg(p + pos, elen, &out->msg) != 0)
		goto bad;
	pos += elen;
	NEED(4);
	uint32_t nrcpt = get_be32(p + pos);
	pos += 4;
	for (uint32_t i = 0; i < nrcpt; i++) {
		NEED(4);
		uint32_t rlen = get_be32(p + pos);
		pos += 4;
		NEED(rlen);
		if (out->nrcpt == cap) {
			cap = cap ? cap * 2 : 8;
			out->rcpts = xrealloc(out->rcpts,
			    cap * sizeof(*out->rcpts));
		}
		if (record_decode_rcpt(p + pos, rlen,
		    &out->rcpts[out->nrcpt]) != 0)
			goto bad;
		out->nrcpt++;
		pos += rlen;
	}
	NEED(8);
	uint64_t clen = get_be64(p + pos);
	pos += 8;
	if (clen != body_end - pos)
		goto bad;
#undef NEED
	out->content = xmalloc(clen + 1);
	memcpy(out->content, p + pos, clen);
	out->content[clen] = '\0';
	out->len = clen;
	if (nrcpt == 0 || out->msg.nrcpt != nrcpt)
		goto bad;
	return 0;
bad:
	maildrop_msg_free(out);
	return -1;
}

int
maildrop_open_dir(int spool_dirfd)
{
	int fd = openat(spool_dirfd, MAILDROP_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(spool_dirfd, MAILDROP_DIR, 0700) != 0 &&
		    errno != EEXIST)
			return -1;
		fd = openat(spool_dirfd, MAILDROP_DIR, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

int
maildrop_create(int spool_dirfd, struct maildrop_file *f)
{
	struct spool_id_seq seq;

	f->fd = -1;
	f->dirfd = maildrop_open_dir(spool_dirfd);
	if (f->dirfd < 0)
		return -1;
	f->arrival = spool_id_start(&seq, f->id);
	for (int tries = 0; tries < 10000; tries++) {
		f->fd = openat(f->dirfd, f->id, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f->fd >= 0 || errno != EEXIST)
			break;
		/* Another submission in the same microsecond: the next. */
		spool_id_next(&seq, f->id);
	}
	if (f->fd < 0) {
		int e = errno;
		close(f->dirfd);
		f->dirfd = -1;
		errno = e;
		return -1;
	}
	/* Held until the file is whole and durable: see maildrop.h. */
	while (flock(f->fd, LOCK_EX) != 0 && errno == EINTR)
		;
	return 0;
}

void
maildrop_abort(struct maildrop_file *f)
{
	int e = errno;

	if (f->fd >= 0) {
		(void)unlinkat(f->dirfd, f->id, 0);
		close(f->fd);
	}
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->fd = f->dirfd = -1;
	errno = e;
}

static int
writev_full(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Durable, and still ours alone (nobody removed it meanwhile)? */
static int
make_durable(struct maildrop_file *f)
{
	struct stat st;

	if (fsync(f->fd) != 0)
		return -1;
	if (fstat(f->fd, &st) != 0 || st.st_nlink == 0) {
		errno = ESTALE;
		return -1;
	}
	return 0;
}

static void
release(struct maildrop_file *f)
{
	close(f->fd);
	close(f->dirfd);
	f->fd = f->dirfd = -1;
}

int
maildrop_commit(struct maildrop_file *f, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, const char *head,
    size_t head_len, const char *body, size_t body_len,
    struct maildrop_batch *batch)
{
	struct buf prefix = BUF_INIT, trailer = BUF_INIT;
	uint64_t nonce = 0;
	int rc = -1;

	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		nonce = (uint64_t)tv.tv_usec << 32 ^ (uint64_t)getpid();
	}
	encode_prefix(msg, rcpts, nrcpt, nonce, head_len + body_len, &prefix);
	uint64_t h = fnv1a(FNV_OFFSET, prefix.data, prefix.len);
	h = fnv1a(h, head, head_len);
	h = fnv1a(h, body, body_len);
	encode_trailer(prefix.len + head_len + body_len, h, &trailer);

	struct iovec iov[4] = {
		{prefix.data, prefix.len},
		{(void *)head, head_len},
		{(void *)body, body_len},
		{trailer.data, trailer.len},
	};
	if (writev_full(f->fd, iov, 4) != 0)
		goto out;
	if (batch) {
		if (batch->n == batch->cap) {
			batch->cap = batch->cap ? batch->cap * 2 : 16;
			batch->files = xrealloc(batch->files,
			    batch->cap * sizeof(*batch->files));
		}
		batch->files[batch->n++] = *f;
		f->fd = f->dirfd = -1;
		rc = 0;
		goto out;
	}
	if (make_durable(f) != 0 || fsync(f->dirfd) != 0)
		goto out;
	release(f);
	rc = 0;
out:
	buf_free(&prefix);
	buf_free(&trailer);
	if (rc != 0)
		maildrop_abort(f);
	return rc;
}

int
maildrop_sync(struct maildrop_batch *b)
{
	int rc = 0;

	/* The first fsync commits the journal for all: the rest are cheap. */
	for (size_t i = 0; i < b->n && rc == 0; i++)
		rc = make_durable(&b->files[i]);
	if (rc == 0 && b->n > 0 && fsync(b->files[0].dirfd) != 0)
		rc = -1;
	for (size_t i = 0; i < b->n; i++) {
		if (rc == 0)
			release(&b->files[i]);
		else
			maildrop_abort(&b->files[i]);
	}
	b->n = 0;
	return rc;
}

static int
compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, SPOOL_ID_SIZE);
}

int
maildrop_list(int dirfd, char (**ids)[SPOOL_ID_SIZE], size_t *n)
{
	int fd = dup(dirfd);
	DIR *d;
	struct dirent *de;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	if (fd < 0)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!spool_id_valid(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ids = xrealloc(*ids, cap * sizeof(**ids));
		}
		memcpy((*ids)[(*n)++], de->d_name, SPOOL_ID_SIZE);
	}
	closedir(d);
	if (*n > 1)
		qsort(*ids, *n, sizeof(**ids), compare_ids);
	return 0;
}

/* Reads the whole of fd (a regular file of size bytes). */
static char *
read_all(int fd, size_t size)
{
	char *data = xmalloc(size + 1);
	size_t got = 0;

	while (got < size) {
		ssize_t r = pread(fd, data + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != size) {
		free(data);
		return NULL;
	}
	return data;
}

/* Opens one file and checks it is a plain file of ours. */
static enum maildrop_state
open_file(int dirfd, const char *id, int *fd, struct stat *st)
{
	*fd = openat(dirfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? MAILDROP_GONE : MAILDROP_BAD;
	if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode) ||
	    st->st_uid != geteuid() || st->st_nlink != 1 ||
	    (unsigned long long)st->st_size > MAX_FILE) {
		close(*fd);
		*fd = -1;
		return MAILDROP_BAD;
	}
	return MAILDROP_READY;
}

enum maildrop_state
maildrop_take(int dirfd, const char *id, int *fdp, struct maildrop_msg *out)
{
	struct stat st;
	int fd;
	enum maildrop_state state = open_file(dirfd, id, &fd, &st);

	*fdp = -1;
	if (state != MAILDROP_READY)
		return state;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return MAILDROP_BUSY;
	}
	/* Locked now: its writer is done or dead, so the size is final. */
	if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
		close(fd);
		return MAILDROP_GONE;
	}
	char *data = read_all(fd, (size_t)st.st_size);
	if (data == NULL || maildrop_decode(data, (size_t)st.st_size,
	    out) != 0 || strcmp(out->msg.id, id) != 0) {
		free(data);
		if (out->content)
			maildrop_msg_free(out);
		close(fd);
		if (time(NULL) - st.st_mtime > MAILDROP_STALE_AGE)
			return MAILDROP_STALE;
		return MAILDROP_INCOMPLETE;
	}
	free(data);
	*fdp = fd;
	return MAILDROP_READY;
}

int
maildrop_peek(int dirfd, const char *id, struct maildrop_msg *out)
{
	struct stat st;
	int fd;

	if (open_file(dirfd, id, &fd, &st) != MAILDROP_READY)
		return -1;
	char *data = read_all(fd, (size_t)st.st_size);
	close(fd);
	int rc = data ? maildrop_decode(data, (size_t)st.st_size, out) : -1;
	free(data);
	return rc;
}
