/*
 * NAME
 *	job - deliver a batch of claimed recipients in this process
 * DESCRIPTION
 *	A job is what one delivery worker does at a time (runner.h,
 *	worker.h): recipients already claimed from the spool, usually for
 *	one destination. job_deliver() groups them by domain, decides each
 *	domain's next hop (nexthop.h), merges domains whose next hops are
 *	the same MX hosts so that they share connections, and sends each
 *	lane's mail over as few connections as its throttle allows,
 *	priority lane first. It records every outcome in the spool itself
 *	(sent, bounced, deferred with backoff, handed back), logs it in
 *	Postfix's format, and starts bounces and delay notices (notice.h).
 *
 *	Deferred recipients wait minimal_backoff_time, doubling per attempt
 *	up to maximal_backoff_time; after maximal_queue_lifetime they
 *	bounce.
 *
 *	When deliver_stop is set (a signal, or --max-time), the transaction
 *	in flight is abandoned and what is left is handed back, due at once.
 */
#ifndef MXLANE_JOB_H
#define MXLANE_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/config.h"
#include "spool/spool.h"

struct job_context;

/*
 * A pass waits for mail a throttle held back for at most this long
 * (ms); mail held longer is left to the next pass or the daemon.
 */
#define JOB_HOLD_WAIT_MS	5000

/* What a job tells the engine, which steers concurrency by it. */
struct job_report {
	uint32_t answered;	/* SMTP transactions that had a conversation
				   with a server */
	uint32_t unanswered;	/* ... that met no server, a 421 greeting or
				   a time-out (Postfix's negative feedback) */
	uint32_t delivered;	/* recipients sent */
	bool spool_failed;	/* the queue could not be read or written */
	int64_t throttled_until_ms;	/* earliest retry of held-back mail */
	int64_t hold_until_ms;	/* a pass should wait for holds until then */
	char mx_key[256];	/* the first MX host of the job's next hop, ""
				   when none: lets the engine send domains
				   that share an MX host to one worker */
};

/*
 * alone: a process that delivers by itself (run --id), not a worker of
 * the engine: its bulk mail yields to waiting priority mail between
 * connections, and it finishes (removes, bounces) each message as soon
 * as every recipient is final; workers leave both to the engine.
 * deadline: unix time after which no new connection is opened, 0 =
 * none.
 */
struct job_context *job_context_new(const struct mxl_config *cfg,
    struct spool *sp, const char *pickup_id, bool alone, time_t deadline);
void job_context_free(struct job_context *ctx);

/*
 * Delivers work (claimed at claimed_ms, unix ms), in any order; every
 * item's claim is settled (recorded, or handed back) when it returns.
 */
void job_deliver(struct job_context *ctx, struct spool_work *work, size_t n,
    int64_t claimed_ms, struct job_report *rep);

/*
 * Hands a claimed recipient back untried: due again at next_try (unix
 * time), not logged, no backoff, a throttle's booking kept.
 */
void job_hand_back(struct job_context *ctx, const struct spool_work *w,
    int64_t next_try);

/*
 * The key of domain's next hop: its first MX host (or relay) and port,
 * "" when there is none (DNS failed). Domains with the same key are
 * delivered over the same connections.
 */
void job_next_hop_key(struct job_context *ctx, const char *domain, char *out,
    size_t len);

/*
 * Finishes messages whose recipients are all final (notice.h): up to
 * about most of them, 0 = all, one transaction each; stops early when
 * stop (may be NULL) says so between two.
 */
void job_finish_pending(struct job_context *ctx, size_t most,
    bool (*stop)(void *), void *stop_ctx);

#endif
