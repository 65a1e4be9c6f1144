/*
 * NAME
 *	runner - queue runs: claim what is due, deliver it, record it
 * DESCRIPTION
 *	runner_run() makes one pass (or, with daemon_interval, passes for
 *	ever: every interval and whenever the wakeup FIFO rings). A pass
 *	first finishes messages whose recipients are all final (bounce,
 *	removal: notice.h), then claims due recipients in batches, priority
 *	lane first, groups them by destination domain, decides each
 *	domain's next hop (nexthop.h: hosts, provider; per lane the pool,
 *	limits and source), and delivers each lane's mail over as few
 *	connections as its throttle allows.
 *
 *	Deferred recipients wait minimal_backoff_time, doubling per attempt
 *	up to maximal_backoff_time; after maximal_queue_lifetime they
 *	bounce. After delay_warning_time the sender gets one delay notice
 *	(notice.h).
 *
 *	SIGTERM or SIGINT: the transaction in flight is finished or
 *	abandoned, claims not yet attempted are handed back (due at once),
 *	and the runner exits 0.
 */
#ifndef MXLANE_RUNNER_H
#define MXLANE_RUNNER_H

#include <stdbool.h>

#include "lib/config.h"
#include "spool/spool.h"

struct runner_options {
	bool flush;			/* ignore retry times */
	const char *id;			/* only this message */
	const char *domain;		/* only recipients at this domain */
	const char *sender;		/* only messages from this sender */
	const char *lane;		/* only messages in this lane */
	int max_time;			/* seconds per pass, 0 = no limit */
	int daemon_interval;		/* seconds; 0 = one pass and exit */
};

/* Returns a sysexits code. */
int runner_run(const struct mxl_config *cfg, const struct runner_options *opt);

#endif
