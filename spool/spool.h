/*
 * NAME
 *	spool - the transactional BerkeleyDB mail queue
 * SYNOPSIS
 *	#include "spool/spool.h"
 * DESCRIPTION
 *	One BerkeleyDB environment (locking, logging, transactions, mpool)
 *	under spool_directory. Any number of short-lived processes open it
 *	at once; the first one after a crash runs recovery by itself
 *	(DB_REGISTER + DB_RECOVER), so nobody ever runs db_recover by hand.
 *
 *	A message is stored as separate records, all written in one
 *	transaction: the envelope (struct spool_msg), one record per
 *	recipient (struct spool_rcpt, each with its own delivery state), and
 *	the content in chunks. spool_submit() returns 0 only once that
 *	transaction is durable on disk. Those two types, and the calls that
 *	free them, are in spool_types.h, which this header includes.
 *
 *	Nothing here loads the whole queue: spool_scan() walks the envelope
 *	table with a cursor and hands over one message at a time.
 * DIAGNOSTICS
 *	Functions return 0 on success, SPOOL_NOTFOUND for a missing record,
 *	or SPOOL_ERR after logging what went wrong. A caller maps SPOOL_ERR
 *	to EX_TEMPFAIL: the spool is unusable right now, nothing was stored.
 */
#ifndef MXLANE_SPOOL_H
#define MXLANE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "spool/spool_types.h"

#define SPOOL_OK	0
#define SPOOL_NOTFOUND	1
#define SPOOL_STALE	2	/* read again and decide again (spool_finish) */
#define SPOOL_ERR	(-1)

struct spool;

/*
 * Opens (creating if need be) the environment in dir. Runs recovery
 * when a previous user of the environment died inside it.
 */
int spool_open(const char *dir, struct spool **out);
void spool_close(struct spool *sp);
const char *spool_directory(const struct spool *sp);
/* The spool directory, opened: for openat() of what lives beside the queue. */
int spool_directory_fd(const struct spool *sp);

/*
 * Stores a new message straight into the queue (submissions go
 * through the maildrop instead; this is for the tests and tools that
 * run as the spool's owner). msg->id is filled in; msg->size and
 * msg->nrcpt are set from the content and rcpts. prefix(), when not
 * NULL, is called inside the transaction once the queue id is known,
 * to put header lines that name it before body (the tests also use it
 * to die inside a transaction). Returns once the transaction is
 * durable.
 */
typedef void (*spool_prefix_fn)(void *ctx, const char *queue_id,
    struct buf *out);
int spool_submit(struct spool *sp, struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt,
    spool_prefix_fn prefix, void *prefix_ctx,
    const char *body, size_t body_len);

/*
 * Reads one message's envelope and recipients (free with the _free
 * calls in spool_types.h).
 */
int spool_get(struct spool *sp, const char *id, struct spool_msg *msg,
    struct spool_rcpt **rcpts, size_t *nrcpt);

/*
 * Streams the stored content in chunks of at most 64 KiB; stops early
 * and returns fn's value when fn returns non-zero.
 */
int spool_read_content(struct spool *sp, const char *id,
    int (*fn)(void *ctx, const char *data, size_t len), void *ctx);
/* Reads chunk number index of a message's content into out (replacing). */
int spool_read_chunk(struct spool *sp, const char *id, uint32_t index,
    struct buf *out);
/* Content is stored in chunks of at most this many bytes. */
#define SPOOL_CHUNK_SIZE (64 * 1024 - 512)

/*
 * Walks the queue in arrival order, one message at a time, without
 * holding locks between messages. fn returning non-zero stops the walk.
 */
typedef int (*spool_scan_fn)(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt);
int spool_scan(struct spool *sp, spool_scan_fn fn, void *ctx);

/*
 * Adds marks (SPOOL_MSG_*) that leave the schedule alone to a message's
 * envelope (msgflags.c); SPOOL_MSG_HELD is refused: a hold goes through
 * spool_admin_apply().
 */
int spool_msg_add_flags(struct spool *sp, const char *id, uint32_t flags);

/* Removes a message and all its records in one transaction. */
int spool_remove(struct spool *sp, const char *id);

/*
 * Aliases table (compiled by newaliases). spool_aliases_replace()
 * swaps the whole table in one transaction: readers see the old or the
 * new table, never half of one. targets is a list of n strings.
 */
struct spool_alias {
	const char *name;
	const char *const *targets;
	size_t ntargets;
};
int spool_aliases_replace(struct spool *sp, const struct spool_alias *aliases,
    size_t n);
/* Fills *targets (caller frees each and the array) or SPOOL_NOTFOUND. */
int spool_alias_lookup(struct spool *sp, const char *name, char ***targets,
    size_t *ntargets);
/* True once newaliases has built the table at least once. */
bool spool_has_aliases(struct spool *sp);

/*
 * The same table without the queue (aliasdb.c): a submitter reads it
 * with no lock and without joining the environment. spool_dirfd is
 * the opened spool directory. aliasmap_open() returns NULL when no
 * table was ever built; look-ups in NULL find nothing.
 */
struct aliasmap;
struct aliasmap *aliasmap_open(int spool_dirfd);
int aliasmap_lookup(struct aliasmap *map, const char *name, char ***targets,
    size_t *ntargets);
bool aliasmap_built(struct aliasmap *map);
void aliasmap_close(struct aliasmap *map);
int aliasmap_replace(int spool_dirfd, const struct spool_alias *aliases,
    size_t n);

/*
 * Scheduling. Every recipient still to be delivered has one entry in a
 * due-time index, ordered priority lane first, then by due time, so a
 * runner finds due work in O(log n) whatever the queue size. A claimed
 * recipient's entry moves to its lease expiry: a runner that dies simply
 * lets its claims come due again. When the last recipient of a message
 * is final, a "finish" entry asks a runner to send the bounce owed and
 * remove the message; it survives a crash between the two steps.
 */
struct spool_work {
	char id[SPOOL_ID_SIZE];
	uint32_t index;		/* recipient index */
	char *address;
	char *domain;		/* lower-case */
	int64_t due;		/* when it was due */
	uint32_t attempts;	/* before this attempt */
	bool held;		/* it comes back from a throttle's booking */
	bool priority;		/* in the priority lane's schedule */
	int64_t lease_until;	/* our claim: ours while this is its lease */
};

struct spool_claim_filter {
	const char *domain;	/* only recipients at this domain */
	const char *sender;	/* only messages from this sender */
	const char *lane;	/* only messages in this lane */
	bool flush;		/* ignore retry times (postqueue -f) */
	/*
	 * Not 0: a recipient that an attempt deferred to a time after this
	 * (the start of the pass) is left for a later pass, so that one
	 * pass tries each recipient at most once, as Postfix's queue
	 * manager does. Mail a throttle held back is not affected.
	 */
	int64_t tried_since;
};

/*
 * Claims up to max due recipients (priority lane first) for lease
 * seconds. With filter->flush, deferred recipients count as due.
 */
int spool_claim_due(struct spool *sp, const struct spool_claim_filter *filter,
    int64_t now, int lease, size_t max, struct spool_work **out, size_t *n);
/* Claims the due (or, with flush, all pending) recipients of one message. */
int spool_claim_message(struct spool *sp, const char *id, bool flush,
    int64_t now, int lease, struct spool_work **out, size_t *n);
void spool_work_free(struct spool_work *work, size_t n);

/*
 * Before a connection: extends our claims on these recipients to
 * now + lease, and tells which are still ours. A claim whose lease ran
 * out may have been taken by another runner, who now delivers it: we
 * must not. One transaction for the lot. A claim on a message put on
 * hold since is given back (queued, held) and is not ours, unless
 * in_session: a session under way may have sent it already, and
 * giving it back would have it sent again after the release.
 */
struct spool_claim_ref {
	const char *id;
	uint32_t index;
	int64_t lease_until;	/* in: our lease; out: the new one */
	bool in_session;	/* in: handed to a session under way */
	bool ours;		/* out */
};
int spool_renew_claims(struct spool *sp, struct spool_claim_ref *refs,
    size_t n, int64_t now, int lease);

/*
 * Flush (postqueue -f): queued recipients (matching filter, may be
 * NULL) that wait for a later retry become due now. Claimed ones are
 * left alone. A pass then tries each of them once.
 */
int spool_flush(struct spool *sp, const struct spool_claim_filter *filter,
    int64_t now, size_t *moved);
int spool_flush_message(struct spool *sp, const char *id, int64_t now);

/* What became of one claimed recipient. */
struct spool_result {
	uint32_t index;
	enum spool_rcpt_state state;	/* QUEUED (deferred), SENT, BOUNCED */
	int64_t next_try;		/* for QUEUED */
	bool attempted;			/* counts as a delivery attempt */
	const char *response;		/* reply or reason, or NULL */
	const char *relay;		/* host[ip]:port, or NULL */
	const char *status;		/* RFC 3463 X.Y.Z, or NULL */
	bool held;			/* QUEUED because a throttle held it */
	const char *class;		/* reply class (route/replies.h), or NULL */
	const char *source;		/* source address it left from, or NULL */
};

/*
 * Records results for claimed recipients of one message in one
 * transaction. *all_final tells whether no recipient is pending any
 * more; the message then has a finish entry (see spool_finish).
 */
int spool_record_results(struct spool *sp, const char *id,
    const struct spool_result *results, size_t n, int64_t now,
    bool *all_final);

/*
 * Messages whose recipients are all final and that wait for
 * spool_finish(): up to max ids, oldest first.
 */
int spool_pending_finish(struct spool *sp, char (*ids)[SPOOL_ID_SIZE],
    size_t max, size_t *n);

/*
 * In one durable transaction: queues notice (a bounce or delay report,
 * may be NULL), then does what: removes message id, sets its "delay
 * warning sent" mark, or marks the recipients in notified[] as having
 * had their bounce (a bounce sent while others are still pending).
 * A bounce (what is not WARNED) reports the recipients in notified[]:
 * when one of them had its bounce meanwhile, or the message is gone,
 * nothing is done and SPOOL_STALE says to read the message again (a
 * worker's prompt bounce and the runner's removal decide from what
 * they read before, and would both send one).
 */
enum spool_finish_what {
	SPOOL_FINISH_REMOVE,
	SPOOL_FINISH_WARNED,
	SPOOL_FINISH_NOTIFIED,
};
struct spool_notice {
	struct spool_msg *msg;
	const struct spool_rcpt *rcpts;
	size_t nrcpt;
	const char *content;
	size_t len;
	char id[SPOOL_ID_SIZE];		/* filled in: the notice's queue id */
};
int spool_finish(struct spool *sp, const char *id, struct spool_notice *notice,
    enum spool_finish_what what, const uint32_t *notified, size_t nnotified);

/*
 * Throttle state, shared by every runner through the spool, so limits
 * hold across concurrent runners and separate cron passes. A key names
 * what a receiving provider sees (provider and source address). The
 * spool does not know what a provider is; it keeps the counts.
 */
struct spool_throttle_limits {
	int concurrency;	/* simultaneous connections, 0 = any */
	long rate_count;	/* deliveries per rate_period, 0 = any */
	int rate_period;	/* seconds */
	int delay_ms;		/* minimum gap between deliveries */
};

struct spool_throttle_grant {
	int granted;		/* deliveries allowed now (0 = wait) */
	int slot;		/* connection slot held, -1 if none */
	int64_t retry_ms;	/* when 0 granted: try again then (unix ms) */
	int64_t granted_ms;	/* when they were granted (unix ms) */
};

/*
 * Asks for a connection and up to want deliveries. A connection slot
 * is leased for lease seconds and tied to this process: a dead holder's
 * slot is freed by the next caller. priority marks a priority-lane
 * caller: one that must wait leaves a note that makes other lanes wait
 * too, so the next free delivery goes to it.
 */
int spool_throttle_acquire(struct spool *sp, const char *key,
    const struct spool_throttle_limits *limits, bool priority, int want,
    int lease, struct spool_throttle_grant *grant);
/*
 * Frees the slot, gives back the deliveries granted but not used, and
 * moves the used ones to when they went (used_ms, nused of them): a
 * rate counts deliveries when the server got them, not when they were
 * granted, which is a connection and a greeting earlier.
 */
int spool_throttle_release(struct spool *sp, const char *key,
    const struct spool_throttle_grant *grant, int unused,
    const int64_t *used_ms, size_t nused);
/*
 * Books count deliveries that a throttle holds back: the k-th of them
 * is due at first_ms + k * step_ms, after those booked before, at the
 * throttle's pace, and not before the *first_ms passed in (0: any). Held-back mail comes back when it can go, instead of
 * being looked at again and again.
 */
int spool_throttle_book(struct spool *sp, const char *key,
    const struct spool_throttle_limits *limits, int count, int64_t *first_ms,
    int64_t *step_ms);
/*
 * A shared counter (weighted round robin): *value gets its value, then
 * add is added (0: just look; less than 0: a reservation given back,
 * never below 0).
 */
int spool_counter_take(struct spool *sp, const char *key, int64_t add,
    uint64_t *value);
/*
 * Small values kept between runs under a name (cache.c): what the queue
 * runner learnt and may reuse, such as MTA-STS policies. get: SPOOL_OK
 * with the value in *value, or SPOOL_NOTFOUND. put: value NULL removes.
 */
int spool_cache_get(struct spool *sp, const char *name, struct buf *value);
int spool_cache_put(struct spool *sp, const char *name, const void *value,
    size_t len);
/*
 * Traffic shaping (shaping.c): what providers said, kept for every
 * runner and pass. A record per (provider, source address), and one
 * per provider (source NULL) for the provider-wide deferral. Times are
 * unix seconds, 0 = none. The spool keeps them; queuerun/shaping.c
 * decides what they mean.
 */
struct spool_shaping {
	int64_t suspended_until;	/* provider record: deferred until */
	char rule[64];			/* the rule that did it */
	char reply[300];		/* the reply that did it */
	int64_t throttle_until;		/* a lowered rate until then */
	long rate_count;		/* rate_count per rate_period s */
	int rate_period;
	char throttle_rule[64];
	char throttle_reply[300];
	int64_t blocked_since;		/* nothing but blocks since then */
	bool listed_warned;		/* "probably listed" was logged */
};
int spool_shaping_get(struct spool *sp, const char *provider,
    const char *source, struct spool_shaping *st);
/*
 * Read, decide, write in one transaction: fn gets the record (zeroed
 * when found is false) and says what to do with it. fn may be called
 * again if the transaction is retried: it must only decide (no logs).
 */
enum spool_shaping_do { SPOOL_SHAPING_KEEP, SPOOL_SHAPING_STORE,
	SPOOL_SHAPING_DELETE };
typedef enum spool_shaping_do (*spool_shaping_fn)(void *ctx,
    struct spool_shaping *st, bool found);
int spool_shaping_update(struct spool *sp, const char *provider,
    const char *source, spool_shaping_fn fn, void *ctx);
/* Every record; source NULL for a provider's own. fn != 0 stops. */
typedef int (*spool_shaping_scan_fn)(void *ctx, const char *provider,
    const char *source, const struct spool_shaping *st);
int spool_shaping_scan(struct spool *sp, spool_shaping_scan_fn fn, void *ctx);
/*
 * One more match of rule for (provider, source) at now: *fire is true
 * when it is the count-th within window seconds (the count then starts
 * again). count <= 1 fires at once without touching the spool.
 */
int spool_shaping_match(struct spool *sp, const char *provider,
    const char *source, const char *rule, int64_t now, unsigned count,
    int64_t window, bool *fire);
/*
 * Warm-up counts, one per (source, provider) for day (an index that
 * changes once a day: a new day starts at 0). add > 0 takes up to add
 * within cap (cap < 0: no cap; *granted says how many), add < 0 gives
 * back, add 0 just reads. *count is the day's count afterwards.
 */
int spool_shaping_warm(struct spool *sp, const char *source,
    const char *provider, int64_t day, int64_t cap, int64_t add,
    uint64_t *count, int64_t *granted);

/* Is any priority-lane recipient due now? (A bulk runner yields.) */
bool spool_priority_due(struct spool *sp, int64_t now);
/* Earliest due time of any pending recipient; false if none. */
bool spool_next_due(struct spool *sp, int64_t *when);

/*
 * The daemon's doorbell (a FIFO in the spool): listen returns an fd to
 * poll; notify returns false when no daemon is listening; notify_id
 * rings for one priority message, whose id drain then returns (up to
 * max of them; everything is read).
 */
int spool_wakeup_listen(int spool_dirfd);
bool spool_wakeup_notify(int spool_dirfd);
bool spool_wakeup_notify_id(int spool_dirfd, const char *id);
size_t spool_wakeup_drain(int fd, char (*ids)[SPOOL_ID_SIZE], size_t max);

/*
 * After n seconds inside one spool call, SIGALRM is raised (0: never);
 * the program's handler decides (lib/proc.h).
 */
void spool_set_watchdog(int seconds);

/*
 * Disk use (compact.c). spool_compact() gives the pages that removed
 * messages freed back to the file system, table by table, in short
 * transactions that wait for nobody: safe while others submit and
 * deliver. spool_compact_when_idle() is the runner's policy: compact
 * when the queue is small and the tables have grown since the last
 * compaction (at most every few minutes, unless they doubled).
 * spool_disk_usage() adds up the bytes on disk of the spool's files.
 */
struct spool_compact_stats {
	uint64_t pages_freed;		/* emptied by moving records */
	uint64_t pages_truncated;	/* cut off the ends of the files */
};
struct spool_usage {
	uint64_t tables;		/* *.db */
	uint64_t logs;			/* log.* */
	uint64_t other;			/* regions, locks, stamps */
};
int spool_compact(struct spool *sp, struct spool_compact_stats *st);
int spool_compact_when_idle(struct spool *sp);
int spool_disk_usage(struct spool *sp, struct spool_usage *u);

/*
 * The queue runners at work (runners.c). A runner registers once with
 * its first line (kind "daemon", "pass" or "message"; returns a
 * descriptor, or -1,
 * logged, and then simply is not listed), updates its line now and
 * then, and unregisters when it ends; a runner killed on the way is
 * not listed (its flock is gone). spool_runners_list() returns the
 * live runners by pid, in a malloc'd array the caller frees.
 */
struct spool_runner {
	long pid;
	char kind[16];
	int64_t started;
	size_t sessions;		/* SMTP sessions in flight */
	size_t priority_sessions;	/* ... of them for the priority lane */
	uint64_t delivered;		/* recipients sent in this pass */
	int64_t updated;
};
int spool_runner_register(struct spool *sp, const struct spool_runner *r);
void spool_runner_update(int fd, const struct spool_runner *r);
void spool_runner_unregister(struct spool *sp, int fd);
size_t spool_runners_list(struct spool *sp, struct spool_runner **out);

/*
 * Pickup: moves complete maildrop files (maildrop.h) into the queue,
 * a batch per durable transaction, and removes them. only_id: just
 * that file (a runner about to deliver it), or NULL for all. *count
 * (may be NULL) gets how many messages were queued. Safe to run in any
 * number of processes at once: each file is taken by one of them.
 */
int spool_pickup(struct spool *sp, const char *only_id, size_t *count);
/* The last spool_pickup() of all left files it could not take yet. */
bool spool_pickup_left(const struct spool *sp);
/*
 * For a runner that has the maildrop picked up by another process:
 * whether it may hold files no pickup has seen (the check
 * spool_pickup() makes first; left: the last pickup left some). When
 * true, what is there now counts as seen by the pickup about to run.
 */
bool spool_maildrop_changed(struct spool *sp, bool left);

/*
 * The suppression list (suppress.c): addresses, and whole domains
 * ("@example.com"), that no delivery is attempted to until the entry
 * expires. Addresses are kept lower-case (spool_suppress_normalize).
 * expires 0 = never.
 */
#define SUPPRESS_ADDRESS_MAX	320
enum spool_suppress_how { SUPPRESS_BOUNCE = 0, SUPPRESS_ADMIN, SUPPRESS_IMPORT };
struct spool_suppression {
	char *address;
	char *reason;		/* the reply that put it there, or the admin's */
	char *class;		/* reply class, or NULL */
	int64_t added;
	int64_t expires;
	enum spool_suppress_how how;
};
void spool_suppression_clear(struct spool_suppression *e);
const char *spool_suppress_how_name(enum spool_suppress_how how);
/* -1 unless in is "local@domain" or "@domain" (angle brackets allowed). */
int spool_suppress_normalize(const char *in, char *out, size_t outlen);
/*
 * Adds or replaces an entry (address already normalized). An entry of
 * how SUPPRESS_BOUNCE never shortens one that lasts longer.
 */
int spool_suppress_add(struct spool *sp, const struct spool_suppression *e);
/* n entries in one transaction (import). */
int spool_suppress_add_many(struct spool *sp,
    const struct spool_suppression *e, size_t n);
int spool_suppress_remove(struct spool *sp, const char *address);
/*
 * Is address (any form) suppressed at now, by its own entry or its
 * domain's? SPOOL_OK with the entry in *out (clear it), or
 * SPOOL_NOTFOUND.
 */
int spool_suppress_check(struct spool *sp, const char *address, int64_t now,
    struct spool_suppression *out);
/* The entry of exactly this (normalized) address, expired or not. */
int spool_suppress_get(struct spool *sp, const char *address,
    struct spool_suppression *out);
/* Every entry in address order; fn returning non-zero stops. */
typedef int (*spool_suppress_fn)(void *ctx, const struct spool_suppression *e);
int spool_suppress_scan(struct spool *sp, spool_suppress_fn fn, void *ctx);
/* Removes up to max expired entries and counters, in one transaction. */
int spool_suppress_expire(struct spool *sp, int64_t now, size_t max,
    size_t *removed);
/*
 * Counts a soft failure of address in message id (once per message)
 * within window seconds; *reached once count of them are in one window
 * (the count then starts again).
 */
int spool_suppress_soft(struct spool *sp, const char *address, const char *id,
    int64_t now, int window, int count, bool *reached);

/*
 * Queue administration (admin.c): hold, release, requeue or delete the
 * chosen recipients (indexes NULL: every pending one) of a batch of
 * messages, in one durable transaction. Safe while runners work; what
 * happens to a recipient in delivery now is said in admin.c. changed
 * counts messages for hold, release and move (0: it already was),
 * recipients for requeue and delete. Move and requeue make the queued
 * recipients due now; move sets the message's move_pool or move_source
 * (the other is cleared), requeue clears both, and puts a whole
 * message on item->lane when that differs and none of its recipients
 * is in delivery (its schedule keys move to that lane's class). A
 * delete that leaves nothing pending removes
 * the message (removed), or, when a bounce is owed, gives it a finish
 * key (finished) for notice_finish() or a runner.
 */
enum spool_admin_op {
	SPOOL_ADMIN_HOLD,
	SPOOL_ADMIN_RELEASE,
	SPOOL_ADMIN_REQUEUE,
	SPOOL_ADMIN_DELETE,
	SPOOL_ADMIN_MOVE,
};
struct spool_admin_how {
	const char *reason;	/* delete: the recipients' last response */
	const char *status;	/* delete: their RFC 3463 status */
	bool bounce;		/* delete: a bounce is owed for them */
	const char *pool;	/* move: to this pool, or */
	const char *source;	/* move: to this source address */
	const char *provider;	/* move: for this provider's recipients only */
};
struct spool_admin_item {
	char id[SPOOL_ID_SIZE];
	const uint32_t *indexes;
	size_t nindexes;
	const char *lane;	/* requeue of the whole message: its lane now */
	bool lane_changed;	/* out: it was put on that lane */
	bool found;		/* out: the message was there */
	uint32_t changed;	/* out */
	bool removed;		/* out */
	bool finished;		/* out */
};
int spool_admin_apply(struct spool *sp, enum spool_admin_op op,
    const struct spool_admin_how *how, struct spool_admin_item *items,
    size_t n, int64_t now);

/* Walks the messages still in the maildrop, oldest first (mailq). */
int spool_scan_maildrop(struct spool *sp, spool_scan_fn fn, void *ctx);

#endif
