/*
 * NAME
 *	stats - delivery counters kept in the spool
 * SYNOPSIS
 *	#include "spool/stats.h"
 * DESCRIPTION
 *	Counters of what became of the mail, kept in stats.db and written
 *	in the very transaction that records each outcome (a delivery, a
 *	deferral, a bounce, a suppressed recipient, a message queued), so
 *	they can never disagree with the queue and need no log to be read.
 *
 *	A counter record belongs to one UTC day and one combination of
 *	provider, source address, lane and pool (STATS_NONE for what is
 *	not known, such as the provider of a message just received). Its
 *	counters are named: sent, deferred, suppressed, received,
 *	received_rcpts, "bounced:CLASS" (CLASS "other" when the reply had
 *	none), and the delivery-time histogram of sent recipients
 *	("dly:SECONDS" for each bucket, "dly_sum" their total seconds).
 *	Besides a record per day, each combination has an all-time record
 *	(day STATS_ALL_TIME) that retention never removes: it is what
 *	Prometheus counters are made of, and they must never go down.
 *
 *	The reasons of deferrals and bounces are counted per day and
 *	provider too, normalized (stats_reason_normalize) and capped at
 *	STATS_REASONS_MAX distinct texts per day; the rest count as
 *	"(other reasons)".
 *
 *	Writers spread over STATS_SHARDS shards, by process id, so that
 *	concurrent runners and workers rarely update the same page;
 *	readers add the shards up.
 * DIAGNOSTICS
 *	SPOOL_OK or SPOOL_ERR after logging, as everywhere in spool.h.
 */
#ifndef MXLANE_STATS_H
#define MXLANE_STATS_H

#include <stdint.h>
#include <stddef.h>

#include "spool/spool.h"

#define STATS_NONE	"-"
#define STATS_ALL_TIME	((int64_t)0xffffffff)
#define STATS_SHARDS	8
#define STATS_REASONS_MAX	50
#define STATS_REASON_LEN	120
#define STATS_OTHER_REASONS	"(other reasons)"

/* Upper bounds (seconds) of the delivery-time histogram's buckets. */
extern const int64_t stats_delivery_buckets[];
extern const size_t stats_ndelivery_buckets;

/* The UTC day (days since 1970-01-01) a unix time falls in. */
int64_t stats_day(int64_t t);
/*
 * A reply made into a reason worth counting: addresses and queue ids
 * taken out (each recipient's own would make every reply distinct),
 * control characters made spaces, white space squeezed, at most
 * STATS_REASON_LEN bytes. out has room for STATS_REASON_LEN + 1.
 */
void stats_reason_normalize(const char *reply, char *out);

/*
 * Where the outcomes recorded by spool_record_outcomes() happened. Any
 * field may be NULL (not known: counted under STATS_NONE). suppressed:
 * the bounces are of suppressed recipients (counted as suppressed, not
 * as bounced).
 */
struct spool_stats_where {
	const char *provider;
	const char *source;
	const char *pool;
	bool suppressed;
};
/*
 * spool_record_results() (spool.h) that also counts each attempted
 * outcome in the same transaction. spool_record_results() is this with
 * where NULL.
 */
int spool_record_outcomes(struct spool *sp, const char *id,
    const struct spool_stats_where *where, const struct spool_result *results,
    size_t n, int64_t now, bool *all_final);

/* Reading: one counter record, its shards already added up. */
struct stats_counter {
	char *name;
	uint64_t value;
};
struct stats_record {
	int64_t day;		/* or STATS_ALL_TIME */
	char kind;		/* 'c' counters, 'd'/'b' deferral/bounce reason */
	const char *provider;
	const char *source;	/* 'c' only */
	const char *lane;	/* 'c' only */
	const char *pool;	/* 'c' only */
	const char *reason;	/* 'd', 'b' only */
	const struct stats_counter *counters;
	size_t ncounters;
};
typedef int (*spool_stats_fn)(void *ctx, const struct stats_record *r);
/*
 * Every record of day since_day and later (the all-time records too
 * when all_time), shards added up. Read without isolation, as mailq
 * reads the queue: a count may be one transaction ahead of another.
 */
int spool_stats_scan(struct spool *sp, int64_t since_day, bool all_time,
    spool_stats_fn fn, void *ctx);
/* Removes up to max records of days before before_day, in one transaction. */
int spool_stats_expire(struct spool *sp, int64_t before_day, size_t max,
    size_t *removed);

/* For spool/ only: stats.db's page size (see stats.c). */
#define STATS_PAGESIZE	1024
/* For spool/ only: counts a message queued (inside txn). */
struct __db_txn;
int stats_count_received(struct spool *sp, struct __db_txn *txn,
    const struct spool_msg *msg, int64_t now);
/*
 * For spool/ only: counts the attempted outcomes among results, for a
 * message that arrived at arrival in lane, inside txn: one record
 * update for the day, one for all time, and one or two per deferral or
 * bounce reason.
 */
int stats_count_outcomes(struct spool *sp, struct __db_txn *txn,
    const struct spool_stats_where *where, const char *lane, int64_t arrival,
    const struct spool_result *results, size_t n, int64_t now);

#endif
