/*
 * NAME
 *	shaping - reacting to what providers say, and IP warm-up
 * SYNOPSIS
 *	#include "queuerun/shaping.h"
 * DESCRIPTION
 *	A reply rule (route/replies.h) may carry an action for the provider
 *	and the source address that got the reply. shaping_react() applies
 *	it, once the rule's "after N in WINDOW" count is reached (counted
 *	per (provider, source) in the spool):
 *	  - suspend DURATION: the source opens no new connection to the
 *	    provider until then; the pool's other sources carry its mail,
 *	    or it waits when none is left;
 *	  - throttle RATE for DURATION: the (provider, source) throttle
 *	    uses RATE instead of the provider's rate until then, when RATE
 *	    is the lower;
 *	  - defer-provider DURATION: no source sends to the provider.
 *	The state lives in the spool (shaping.db), so every runner and pass
 *	sees it; it is logged when it starts and when it ends (run out,
 *	seen by the first runner that looks, or ended by "queuerun resume").
 *
 *	shaping_source_ready() is asked before a source gets a new
 *	connection to a provider: not while the provider is deferred, the
 *	source suspended, or a warming source has sent its day's cap to
 *	the provider; *until then says when it may be ready again.
 *
 *	IP warm-up: a source with warmup = "DATE: N/d, ..." may send, on
 *	day k (whole UTC days since 00:00 UTC of DATE; before DATE, day 0),
 *	the k-th cap of messages (SMTP transactions accepted) to each
 *	provider; after the last step it is warm. The counts are kept per
 *	day index, so a schedule whose start date is moved back one day
 *	(the tests' way of simulating the next day) starts a fresh count.
 *
 *	"Probably listed": a (provider, source) whose connections met
 *	nothing but replies of class spam-block for a whole day (86400 s,
 *	from the first such reply, with no other outcome since) is
 *	reported once with a warning in the log.
 * SEE ALSO
 *	spool.h (shaping.db), job.c (where replies are classified)
 */
#ifndef MXLANE_SHAPING_H
#define MXLANE_SHAPING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/config.h"
#include "route/replies.h"
#include "spool/spool.h"

/* The source name of a connection whose source the kernel picks. */
#define SHAPING_NO_SOURCE	"-"

enum shaping_effect {
	SHAPING_NONE = 0,		/* no action, or not yet (after N) */
	SHAPING_THROTTLED,
	SHAPING_SOURCE_STOPPED,		/* suspended */
	SHAPING_PROVIDER_STOPPED,	/* defer-provider */
};

/* reply: the server's words, for the log and the record. */
enum shaping_effect shaping_react(struct spool *sp, const char *provider,
    const char *source, const struct reply_rule *rule, const char *reply,
    int64_t now, int64_t *until);

/*
 * May src (NULL: the kernel's choice) open a connection to provider
 * now, as far as the source goes (suspended? its warm-up cap?)? If
 * not, *until (unix s) is when it may, and why says why. The
 * provider's own deferral is shaping_provider_ready()'s.
 */
bool shaping_source_ready(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t *until, char *why,
    size_t whylen);
/* Is the provider deferred as a whole? Same outputs. */
bool shaping_provider_ready(struct spool *sp, const char *provider,
    int64_t now, int64_t *until, char *why, size_t whylen);

/* l with the lowered rate of a throttle reaction in force, if any. */
void shaping_limits(struct spool *sp, const char *provider,
    const char *source, int64_t now, struct mxl_limits *l);

/*
 * Warm-up: src's day index and cap for now; false when it has no
 * schedule or is warm (day and cap then untouched).
 */
bool shaping_warm_cap(const struct mxl_source *src, int64_t now,
    int64_t *day, long *cap);
/* Takes up to want of today's cap (want when not warming). */
int64_t shaping_warm_take(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t want);
/* Gives back n taken but not sent. */
void shaping_warm_give_back(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t n);

/*
 * After a connection: blocked says it met nothing but spam-block
 * replies (reply: the last one), false that something else happened.
 */
void shaping_note_connection(struct spool *sp, const char *provider,
    const char *source, bool blocked, const char *reply, int64_t now);

/*
 * Ends the suspensions, lowered rates and deferral of provider (and
 * only those of source, when not NULL) now, logged. *ended gets how
 * many ended. Returns 0 or SPOOL_ERR.
 */
int shaping_resume(struct spool *sp, const char *provider,
    const char *source, int *ended);
/* Logs and removes what has run out, everywhere (a pass's start). */
void shaping_expire(struct spool *sp, int64_t now);

/* "  shaping: ..." lines for route: what is in force for provider. */
void shaping_describe(struct spool *sp, const char *provider,
    const struct mxl_pool *pool, int64_t now, FILE *out);

#endif
