/*
 * NAME
 *	maildrop - where submissions wait, one private file each, until a
 *	queue runner picks them up into the BerkeleyDB queue
 * SYNOPSIS
 *	#include "spool/maildrop.h"
 * DESCRIPTION
 *	Postfix's maildrop, for the same reason: a submitter must never
 *	hold anything another submitter waits for. Each submission creates
 *	its own file, named by its queue id (O_EXCL), holds an flock on it
 *	while writing, and is durable once the file and the directory are
 *	fsync'ed; it never joins the BerkeleyDB environment. A stopped or
 *	killed submitter leaves at worst its own incomplete file.
 *
 *	A file is complete when its trailer (length, checksum, end mark)
 *	checks out. Pickup (spool_pickup in spool.h) moves complete files
 *	into the queue in batches, one durable transaction each, and
 *	removes them; a file that is still incomplete after
 *	MAILDROP_STALE_AGE seconds, with nobody holding its lock, belonged
 *	to a writer that died and is removed.
 *
 *	Layout (integers big-endian): "MXLDROP1", nonce (8), envelope
 *	record (4-byte length + record.h bytes), recipient count (4) and
 *	records (each 4-byte length + bytes), content length (8) and
 *	content, then the trailer: length of all before it (8), its FNV-1a
 *	64-bit hash (8), "MXLDEND1".
 */
#ifndef MXLANE_MAILDROP_H
#define MXLANE_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spool/spool.h"

#define MAILDROP_DIR		"maildrop"
#define MAILDROP_STALE_AGE	600

/* A decoded maildrop file. */
struct maildrop_msg {
	struct spool_msg msg;		/* msg.id is the file's name */
	struct spool_rcpt *rcpts;
	size_t nrcpt;
	char *content;
	size_t len;
	uint64_t nonce;			/* tells this file from a namesake */
};
void maildrop_msg_free(struct maildrop_msg *m);

/* Opens (creating it if need be) the maildrop below the spool directory. */
int maildrop_open_dir(int spool_dirfd);

/* Writing: create (the queue id is chosen here), then commit or abort. */
struct maildrop_file {
	int dirfd;
	int fd;
	char id[SPOOL_ID_SIZE];
	int64_t arrival;
};
int maildrop_create(int spool_dirfd, struct maildrop_file *f);
/*
 * Writes the message and makes it durable; returns 0 only then. On
 * failure the file is removed and errno says why.
 *
 * With a batch, the file is written but not yet durable: it joins the
 * batch (still locked, so pickup leaves it alone) and maildrop_sync()
 * makes the whole batch durable at once, one journal commit for many
 * files, or removes every file of it. sendmail -bs uses this for
 * transactions a client pipelines, and holds their replies until then.
 */
struct maildrop_batch {
	struct maildrop_file *files;
	size_t n;
	size_t cap;
};
int maildrop_commit(struct maildrop_file *f, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, const char *head,
    size_t head_len, const char *body, size_t body_len,
    struct maildrop_batch *batch);
int maildrop_sync(struct maildrop_batch *batch);
void maildrop_abort(struct maildrop_file *f);

/* Reading. Queue ids of the files present, sorted (oldest first). */
int maildrop_list(int dirfd, char (**ids)[SPOOL_ID_SIZE], size_t *n);

enum maildrop_state {
	MAILDROP_READY,		/* decoded, and ours to import (locked) */
	MAILDROP_BUSY,		/* being written or picked up by another */
	MAILDROP_INCOMPLETE,	/* not (yet) whole: leave it */
	MAILDROP_STALE,		/* never finished by a writer long gone */
	MAILDROP_GONE,		/* no such file (picked up meanwhile) */
	MAILDROP_BAD,		/* not a file of ours: left for the admin */
};
/*
 * Opens and locks one file for pickup. READY: *fd holds the lock until
 * closed, *out is filled.
 */
enum maildrop_state maildrop_take(int dirfd, const char *id, int *fd,
    struct maildrop_msg *out);
/* Reads one file without locking it (mailq): 0 or -1. */
int maildrop_peek(int dirfd, const char *id, struct maildrop_msg *out);

/* Encoding, for the tests: the whole file as it is written. */
void maildrop_encode(const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, uint64_t nonce,
    const char *head, size_t head_len, const char *body, size_t body_len,
    struct buf *out);
int maildrop_decode(const char *data, size_t len, struct maildrop_msg *out);

#endif
