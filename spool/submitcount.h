/*
 * NAME
 *	submitcount - what each Unix user submitted in the current
 *	windows, for the submitter limits
 * SYNOPSIS
 *	#include "spool/submitcount.h"
 * DESCRIPTION
 *	The counts must be known at submission, and a submission never
 *	joins the queue's database (maildrop.h). So, like the maildrop,
 *	they are plain files beside it: limits/UID in the spool directory,
 *	one per submitting uid, written only by sendmail (running as the
 *	mail system's account, the caller's ids dropped) and read by
 *	queuerun limits. The uid in the name is the kernel's real uid of
 *	the caller, never anything the caller says; the directory is the
 *	mail system's (0700), so no user can read, reset or forge a count.
 *
 *	A submitter takes an flock on its file, reads the record, decides,
 *	writes it back and lets go: submissions of one user are counted
 *	one after the other, those of different users never wait for each
 *	other. The record is one small write at offset 0, not synced: a
 *	crash may lose the last counts (the window then starts again), a
 *	torn or foreign record reads as empty.
 *
 *	Layout (big-endian): "MXLCNT01", uid (4), user (64, NUL-padded),
 *	then six 8-byte fields: messages' window start, messages counted,
 *	recipients' window start, recipients counted, and the window
 *	starts in which going over each limit was logged; last, an FNV-1a
 *	64-bit hash of all before it.
 */
#ifndef MXLANE_SUBMITCOUNT_H
#define MXLANE_SUBMITCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUBMITCOUNT_DIR	"limits"

struct submit_count {
	uint32_t uid;
	char user[64];
	int64_t msg_window;		/* unix time the window began */
	uint64_t msgs;
	int64_t rcpt_window;
	uint64_t rcpts;
	int64_t msg_logged;		/* window whose excess was logged */
	int64_t rcpt_logged;
};

/*
 * Opens (creating it and the directory if need be) and locks uid's
 * file, waiting at most wait_ms for the lock. Returns the descriptor,
 * or -1 with errno (ETIMEDOUT: still locked).
 */
int submitcount_lock(int spool_dirfd, uint32_t uid, int wait_ms);
/* Reads the record of a locked file; an empty or bad one reads as 0s. */
void submitcount_read(int fd, uint32_t uid, struct submit_count *c);
int submitcount_write(int fd, const struct submit_count *c);
/* Unlocks and closes. */
void submitcount_unlock(int fd);

/*
 * Every record, for queuerun limits (no lock: a record is written in
 * one piece, and a torn one is skipped). fn returning non-zero stops.
 * Returns 0, or -1 when the directory cannot be read (none: 0).
 */
int submitcount_scan(int spool_dirfd,
    int (*fn)(void *ctx, const struct submit_count *c), void *ctx);

/* Encoding, for the tests. */
#define SUBMITCOUNT_SIZE (8 + 4 + 64 + 6 * 8 + 8)
void submitcount_encode(const struct submit_count *c,
    unsigned char out[SUBMITCOUNT_SIZE]);
bool submitcount_decode(const unsigned char *in, size_t len,
    struct submit_count *c);

#endif
