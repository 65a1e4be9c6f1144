/*
 * NAME
 *	mailq - the queue listing in Postfix's mailq layout
 * DESCRIPTION
 *	mailq_print() streams the queue (spool_scan) and prints it the way
 *	Postfix's mailq does, so monitoring that parses mailq keeps working:
 *
 *	-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
 *	1A2B3C4D5E6F7*    4242 Wed Nov 25 13:16:02  alice@example.org
 *	                 (connect to mx.example.com[192.0.2.1]:25: Connection refused)
 *	                                         bob@example.com
 *
 *	-- 4 Kbytes in 1 Request.
 *
 *	'*' after the id marks a message with a recipient in delivery now,
 *	'!' a held message. Only recipients still pending are listed; a
 *	deferral reason in parentheses precedes the recipients it applies
 *	to. An empty (or, for this viewer, empty-looking) queue prints
 *	"Mail queue is empty".
 *
 *	Unless see_all, only messages whose submitting uid is viewer_uid
 *	are shown: on shared hosting one site user must not read another's
 *	recipients.
 */
#ifndef MXLANE_MAILQ_H
#define MXLANE_MAILQ_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "spool/spool.h"

/*
 * Returns 0, EX_TEMPFAIL if the spool could not be read (the listing is
 * then cut short, without a trailer), or EX_IOERR if out could not be
 * written. Prints nothing on stderr: the caller tells the user.
 */
int mailq_print(struct spool *sp, FILE *out, uid_t viewer_uid, bool see_all);

/*
 * The same messages as mailq_print(), one JSON object a line, like
 * Postfix's "postqueue -j" (queuerun.8 documents the fields). route,
 * when not NULL, names each pending recipient's provider and pool
 * (queuerun list --json asks the next-hop decision); without it they
 * are null: sendmail never looks anything up.
 */
typedef void (*mailq_route_fn)(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *r, const char **provider, const char **pool);
int mailq_print_json(struct spool *sp, FILE *out, uid_t viewer_uid,
    bool see_all, mailq_route_fn route, void *route_ctx);
/* One message's line (no newline) into out: for the above, and tests. */
void mailq_json_message(struct buf *out, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, bool in_maildrop,
    mailq_route_fn route, void *route_ctx);

#endif
