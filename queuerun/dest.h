/*
 * NAME
 *	dest - where claimed mail waits for a worker, and how many
 *	sessions each destination may have
 * DESCRIPTION
 *	The engine's queues, as Postfix's qmgr keeps them (qmgr_queue.c,
 *	qmgr_feedback.c): claimed recipients wait in their destination
 *	until the engine hands a job of them to a delivery worker.
 *
 *	A destination is named by a key: a recipient domain, or, once the
 *	engine knows which host serves a domain (dest_learn_host(), from a
 *	worker's resolution or report), "host:port" for every domain that
 *	host serves; "!" in front for the priority lane's mail, which has
 *	destinations of its own. Learning a domain's host moves what waits
 *	for the domain to the host's destination. The hosts learned are
 *	kept from pass to pass (dest_table_end_pass() forgets only the
 *	destinations), the rest is the pass's.
 *
 *	Each destination has a window of sessions (dest_feedback()): it
 *	starts at the initial window, grows by one for each window's worth
 *	of transactions that servers answered, up to the most, shrinks by
 *	one for each job that met no server, and at window one, DEAD_AFTER
 *	such jobs in a row make it dead for the pass.
 */
#ifndef MXLANE_DEST_H
#define MXLANE_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/strmap.h"
#include "queuerun/job.h"
#include "spool/spool.h"

/* A claimed recipient waiting for a worker. */
struct pending {
	struct spool_work w;
	int64_t claimed_ms;
};

struct dest {
	char *key;		/* "domain" or "host:port"; "!" first: priority */
	bool priority;
	struct pending *items;	/* waiting: items[head .. n) */
	size_t head, n, cap;
	double window;		/* sessions it may have now */
	int inflight;		/* jobs out */
	int unanswered_in_row;
	bool dead;		/* no server answers: the rest waits */
	bool unresolved;	/* a domain whose host is not known yet */
	bool resolving;		/* a worker is asking DNS */
};

struct dest_table {
	struct dest *dests;
	size_t ndests, cap;
	size_t *priority;	/* indexes of the priority lane's dests */
	size_t npriority;
	size_t waiting;		/* recipients waiting in all */
	int initial_window, most_window;
	size_t sessions;	/* the most for the whole host */
	struct strmap by_key;	/* key -> index in dests */
	struct strmap host_of;	/* domain -> index in hosts */
	struct strmap host_index;	/* host key -> index in hosts */
	char **hosts;
	size_t nhosts;
};

void dest_table_init(struct dest_table *t, int initial_window,
    int most_window, int sessions);
/* Index of w's destination, made if new (t->dests may move). */
size_t dest_find(struct dest_table *t, const struct spool_work *w);
/* Takes w (and its strings) into destination di. */
void dest_push(struct dest_table *t, size_t di, const struct spool_work *w,
    int64_t claimed_ms);
size_t dest_waiting(const struct dest *d);
/* Forgets the first n waiting recipients of d, freeing their strings. */
void dest_drop(struct dest_table *t, struct dest *d, size_t n);
/* Domain is served by host key ("" = unknown): see DESCRIPTION. */
void dest_learn_host(struct dest_table *t, const char *domain,
    const char *key);
/*
 * Renews the claims of everything waiting (one transaction), and drops
 * what is not ours any more.
 */
void dest_renew(struct dest_table *t, struct spool *sp, int lease);
/*
 * How many recipients the next job of d should take: its mail spread
 * over the most sessions it may grow to, but at least a fair share of
 * all that waits over the sessions free now (free_sessions), and at
 * least JOB_MIN.
 */
size_t dest_job_size(const struct dest_table *t, const struct dest *d,
    size_t free_sessions);
/* Applies a job's outcome to d's window; true when d just became dead. */
bool dest_feedback(const struct dest_table *t, struct dest *d,
    const struct job_report *rep);
/* The pass is over: the destinations go (nothing may wait), hosts stay. */
void dest_table_end_pass(struct dest_table *t);
void dest_table_free(struct dest_table *t);

#endif
