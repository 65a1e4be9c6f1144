/*
 * NAME
 *	status - "queuerun status": the queue as it is now
 * DESCRIPTION
 *	status_gather() walks the queue once (spool_scan, no lock held
 *	between messages) and reads the shaping state: recipients and
 *	messages by state per lane and per provider, the oldest message,
 *	the maildrop's backlog, suspensions, lowered rates and warm-up,
 *	and the runners at work with their SMTP sessions (each runner's
 *	own report, at most a second old: spool_runners_list).
 *	metrics.c prints the same figures for Prometheus.
 *
 *	A pending recipient's state (STATUS_STATES, in this order):
 *	  held      its message is on hold (SPOOL_MSG_HELD);
 *	  active    claimed by a runner whose lease has not run out (in
 *	            flight: a session is delivering it now);
 *	  due       waiting for a runner: due now, or a claim whose runner
 *	            died and whose lease has run out;
 *	  deferred  waiting for its next retry time (or a throttle's
 *	            booking).
 *	A message counts once in each state one of its recipients is in.
 *	The provider of a recipient is the one its domain routes to
 *	without an MX look-up (route_provider with no MX names): mail for
 *	providers recognized by MX host name only counts under the default
 *	provider here. Source addresses are chosen per connection and not
 *	kept with queued mail, so there is no per-source queue.
 *
 *	status_command() runs "status [--json]"; queuerun(8) documents both
 *	layouts. Returns 0 or a sysexits code (EX_USAGE: print the usage).
 */
#ifndef MXLANE_STATUS_H
#define MXLANE_STATUS_H

#include <stdint.h>

#include "lib/config.h"
#include "queuerun/stats.h"
#include "spool/spool.h"

enum status_state { STATUS_DUE, STATUS_ACTIVE, STATUS_DEFERRED, STATUS_HELD,
	STATUS_NSTATES };
extern const char *const status_state_names[STATUS_NSTATES];

struct status_shaping {
	char *provider;
	char *source;		/* NULL: the provider as a whole */
	const char *what;	/* "suspended", "deferred", "throttled" */
	int64_t until;
	char *rule;
	char *reply;
	long rate_count;	/* "throttled": the lowered rate */
	int rate_period;
};

struct status_warmup {
	const char *source;	/* the configuration's */
	const char *pool;
	int64_t day;		/* of the schedule */
	long cap;		/* per provider today */
	struct stats_table sent;	/* one row: provider -> sent today */
};

struct queue_status {
	int64_t now;
	uint64_t messages, recipients;	/* pending recipients only */
	uint64_t incoming;		/* maildrop files not picked up */
	int64_t oldest_arrival;		/* 0: empty queue */
	char oldest_id[SPOOL_ID_SIZE];
	uint64_t states[STATUS_NSTATES][2];	/* [state][0 msgs, 1 rcpts] */
	/* Names "due_messages", "due_recipients", ... per key. */
	struct stats_table lanes;
	struct stats_table providers;
	struct stats_table lane_providers;	/* key: lane TAB provider */
	struct stats_table sources;	/* see source_of() in status.c */
	struct status_shaping *shaping;
	size_t nshaping;
	struct status_warmup *warmup;
	size_t nwarmup;
	struct spool_runner *runners;	/* live ones, by pid (runners.c) */
	size_t nrunners;
	size_t sessions;		/* in flight, summed over runners */
};

int status_gather(struct spool *sp, const struct mxl_config *cfg,
    int64_t now, struct queue_status *st);
void status_free(struct queue_status *st);

int status_command(const struct mxl_config *cfg, int argc, char **argv);

#endif
