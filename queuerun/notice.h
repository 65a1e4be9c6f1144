/*
 * NAME
 *	notice - which bounces and delay notices a message owes, queued
 * SYNOPSIS
 *	#include "queuerun/notice.h"
 * DESCRIPTION
 *	After a delivery attempt the runner records each recipient's
 *	outcome in the spool, then asks here what the sender is owed:
 *
 *	notice_finish(): every recipient is final. A bounce reports the
 *	recipients that failed and have not been reported yet, and the
 *	message is removed, both in one durable transaction
 *	(spool_finish()), so a runner killed in between neither loses the
 *	bounce nor sends it twice. Logged as "removed" (qmgr).
 *
 *	notice_bounce_now(): some recipients failed for good while others
 *	still wait. Their sender hears about those now, as with Postfix,
 *	not days later when the last recipient is done; they are marked as
 *	reported, so the final bounce does not repeat them.
 *
 *	notice_delay_if_due(): some recipients were deferred. Once the
 *	message has waited delay_warning_time (0: never), its sender gets
 *	one delay notice listing the recipients still queued after an
 *	attempt, and the message is marked as warned. A message from the
 *	null sender gets none.
 *
 *	Only recipients whose NOTIFY asks for it are reported (FAILURE,
 *	DELAY; no NOTIFY at all means both; NEVER means none). A notice
 *	goes to the envelope sender; a message from the null sender (a
 *	bounce itself) that fails is reported to postmaster@myorigin when
 *	the aliases have a postmaster, and otherwise only logged as
 *	discarded. A notice is a new message from <> in the lane of the
 *	message it reports on, formatted by bounce_build() (bounce.h) and
 *	logged as "sender non-delivery notification" or "sender delay
 *	notification" (bounce), with its queue id.
 * DIAGNOSTICS
 *	Nothing is returned. A notice that cannot be queued now (the spool
 *	failed, the original could not be read) is still owed: its
 *	recipients are not marked, so a later notice reports them, and
 *	notice_finish() leaves the message waiting to be finished, which
 *	the next pass tries again.
 * SEE ALSO
 *	bounce.h (the report), spool.h (spool_finish), RFC 3461, RFC 3464
 */
#ifndef MXLANE_NOTICE_H
#define MXLANE_NOTICE_H

#include <stdint.h>

#include "lib/config.h"
#include "spool/spool.h"

void notice_finish(struct spool *sp, const struct mxl_config *cfg,
    const char *id);
void notice_bounce_now(struct spool *sp, const struct mxl_config *cfg,
    const char *id);
void notice_delay_if_due(struct spool *sp, const struct mxl_config *cfg,
    const char *id, int64_t now);

#endif
