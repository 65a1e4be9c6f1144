/*
 * NAME
 *	spamcheck - a message's score from SpamAssassin's spamd
 * SYNOPSIS
 *	#include "queuerun/spamcheck.h"
 * DESCRIPTION
 *	spamcheck_score() speaks spamd's SPAMC/1.5 protocol itself (the
 *	SYMBOLS command: the score and the names of the rules that hit, in
 *	one exchange): it connects to addr, sends the content, and reads
 *	the reply, all within timeout seconds in total, whatever spamd
 *	does (a spamd that accepts and never answers, or answers a byte a
 *	second, costs no more than that). The threshold spamd reports is
 *	ignored: the lane's spam_threshold decides (job.c).
 * DIAGNOSTICS
 *	0, with the score and the rules (comma-separated, possibly empty);
 *	-1 with the reason in err: cannot connect, timed out, a reply that
 *	is not spamd's or says it failed.
 */
#ifndef MXLANE_SPAMCHECK_H
#define MXLANE_SPAMCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct spam_verdict {
	double score;
	char rules[1024];	/* "GTUBE,MISSING_DATE", cut if longer */
};

int spamcheck_score(const struct sockaddr *addr, socklen_t addrlen,
    int timeout, const char *content, size_t len, struct spam_verdict *v,
    char *err, size_t errlen);

/* Parses spamd's whole reply (for the tests): 0 or -1 with err. */
int spamcheck_parse_reply(const char *reply, size_t len,
    struct spam_verdict *v, char *err, size_t errlen);


#include "lib/config.h"
#include "spool/spool.h"

/*
 * The content gate of one claimed message (job.c), once per message:
 * a message already scored (SPOOL_MSG_SCANNED) or on a lane without
 * spam_check passes at once. Otherwise spamd scores its content:
 * above the lane's spam_threshold the message is put on hold
 * (spool_admin_apply), else it is marked scanned; both are logged
 * with the score and the rules. A spamd that fails or times out:
 * spam_check_failure says pass (deliver) or defer.
 */
enum spam_gate { SPAM_GATE_PASS, SPAM_GATE_HELD, SPAM_GATE_DEFER };
enum spam_gate spamcheck_gate(struct spool *sp, const struct mxl_config *cfg,
    const struct spool_msg *msg, char *why, size_t whylen);
/* Does any lane of cfg have a content gate? */
bool spamcheck_configured(const struct mxl_config *cfg);

#endif
