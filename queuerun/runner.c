/*
 * NAME
 *	runner - queue runs: claim what is due, hand it to delivery workers
 * DESCRIPTION
 *	See runner.h. The engine of a pass is one process that never
 *	talks SMTP itself: it claims due recipients from the spool in big
 *	batches, sorts them into destinations (dest.h), and hands them out
 *	as jobs to delivery worker processes (worker.h), one SMTP session
 *	each, as Postfix's qmgr hands them to smtp(8) processes. How many
 *	sessions a destination gets follows qmgr's feedback (dest.h): it
 *	starts at initial_destination_concurrency, grows toward
 *	destination_concurrency while servers answer, and shrinks when
 *	they do not (no connection, a 421 greeting, a time-out).
 *
 *	Before a domain's mail goes out, an idle worker is asked which
 *	host serves it (one DNS look-up): domains hosted together then
 *	share one destination, its sessions and its concurrency limit,
 *	however scattered their mail was claimed. The priority lane's
 *	mail has destinations of its own, is dispatched first, and may use
 *	PRIORITY_RESERVE sessions beyond delivery_concurrency, so a
 *	password reset never waits for a bulk session to end.
 *
 *	Claims the engine holds but has not handed out yet are renewed
 *	while they wait, and handed back (due at once) when the pass ends.
 *	What a worker was given is the worker's: it renews, records and
 *	hands back itself. If the engine is killed, its workers get
 *	SIGTERM and hand back; if everything is killed at once, the claims
 *	run out after delivery_lease_time and another pass takes them up.
 */
#include "queuerun/runner.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queuerun/connect.h"
#include "queuerun/deliver.h"
#include "queuerun/dest.h"
#include "queuerun/job.h"
#include "queuerun/metrics.h"
#include "queuerun/worker.h"
#include "queuerun/shaping.h"
#include "lib/log.h"
#include "lib/util.h"
#include "spool/stats.h"

#define CLAIM_CHUNK	500	/* recipients per claiming transaction */
#define CLAIM_AHEAD	50	/* claimed ahead: this many per session */
#define PRIORITY_RESERVE 5	/* sessions beyond delivery_concurrency,
				   for the priority lane alone */
#define RESOLVE_BATCH	16	/* domains a worker resolves at once */
#define TICK_MS		250	/* how often priority mail is looked for */
#define SUPPRESS_EXPIRE_BATCH 1000	/* expired list entries removed a pass */
#define STATS_EXPIRE_BATCH 1000		/* old counter records removed a pass */
#define URGENT_MAX	64	/* priority ids kept from the doorbell */
#define FINISH_EVERY_MS	500	/* finished messages removed this often */
#define FINISH_MOST	1000	/* ... this many at most at a time */
#define RECLAIM_MS	1000	/* a drained queue is asked again after */
#define STOP_GRACE_S	5	/* SIGTERM to SIGKILL for a worker */
#define PICKUP_HOLD_MS	500	/* jobs wait this long for a pickup */
#define DISPATCH_SLICE_MS 100	/* bulk dispatch, at most, between reads */
#define REPORT_EVERY_MS	1000	/* the runner's line for status (runners.c) */
#define DOORBELL_POLL_MS 5	/* between pieces, the doorbell at most this often */

static volatile sig_atomic_t stop_requested;

struct engine {
	const struct mxl_config *cfg;
	const struct runner_options *opt;
	struct spool *sp;
	struct job_context *jc;	/* what the engine does in-process */
	int fifo;		/* the daemon's doorbell, -1 without */
	time_t pass_started;
	time_t deadline;	/* --max-time; 0 = none */
	struct dest_table t;	/* where claimed mail waits */
	struct worker *workers;
	size_t nworkers, max_workers;
	size_t busy;		/* workers with a job */
	size_t busy_priority;	/* ... of the priority lane */
	size_t starving[2];	/* destinations with mail waiting and no
				   session yet: bulk [0], priority [1] */
	size_t most_busy;	/* of the pass, for its log line */
	double busy_seconds;	/* sum over time of workers busy */
	double busy_since;	/* when busy last changed */
	size_t rr;		/* where the next bulk dispatch round starts */
	bool drained;		/* the last claim found nothing more */
	size_t ahead;		/* recipients claimed ahead at most */
	struct worker *picking_up;	/* the worker taking the maildrop in */
	double pickup_started;
	bool pickup_left;	/* the last pickup left files behind */
	bool urgent_taken;	/* the doorbell brought mail since then */
	char urgent[URGENT_MAX][SPOOL_ID_SIZE];	/* rang the doorbell */
	size_t nurgent;
	double drained_at;
	double renewed_at;
	double finished_at;
	double priority_checked_at;
	double doorbell_polled_at;	/* doorbell_rang() */
	int64_t throttled_until_ms;	/* earliest retry of held-back mail */
	int64_t hold_until_ms;	/* the pass waits for short holds until then */
	size_t delivered;	/* recipients sent in the pass */
	bool spool_failed;
	int registration;	/* runners/PID for queuerun status, or -1 */
	struct spool_runner shown;	/* what that file says */
	double reported_at;
	bool dispatch_cut;	/* the last dispatch stopped with more to do */
};

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	deliver_stop = 1;
	/*
	 * In a worker (which inherits this handler): abandon the
	 * transaction in flight rather than wait for a slow server
	 * (shutdown(2) is async-signal-safe); what it carried is handed
	 * back and retried, at worst delivered twice.
	 */
	connect_abort_current();
}

static bool
out_of_time(const struct engine *e)
{
	return e->deadline > 0 && time(NULL) >= e->deadline;
}

/*
 * The doorbell rang: look for priority mail at once, and note the ids
 * of priority messages that rang it, for pick_up() to take first.
 */
static void
answer_doorbell(struct engine *e)
{
	char (*ids)[SPOOL_ID_SIZE] = e->urgent + e->nurgent;

	e->nurgent += spool_wakeup_drain(e->fifo, ids,
	    URGENT_MAX - e->nurgent);
	e->priority_checked_at = 0;
}

/*
 * Has priority mail rung while the engine was busy? Claiming ahead,
 * removing finished mail and forking workers take a spool transaction
 * or a fork at a time, and under 100 busy sessions on two cores the
 * pieces add up to seconds: the engine asks between pieces and leaves
 * the rest for later when a priority message is waiting to be taken.
 */
static bool
doorbell_rang(struct engine *e)
{
	struct pollfd p = {e->fifo, POLLIN, 0};

	if (e->nurgent > 0)
		return true;
	if (e->fifo < 0)
		return false;
	/* Asked between every two finished messages: a poll() each is waste. */
	double now = mono_seconds();
	if (now - e->doorbell_polled_at < DOORBELL_POLL_MS / 1000.0)
		return false;
	e->doorbell_polled_at = now;
	if (poll(&p, 1, 0) <= 0)
		return false;
	/* Bulk mail rings too, without an id: that is no reason to stop. */
	answer_doorbell(e);
	return e->nurgent > 0;
}

/*
 * Priority mail to hand out now: rung for, or claimed, resolved and
 * waiting with no session yet (resolving is a worker's task: the
 * answer is read between the pieces too).
 */
static bool
priority_waiting(struct engine *e)
{
	if (doorbell_rang(e))
		return true;
	/* With no session to give it, nothing is won by stopping. */
	if (e->busy >= (size_t)e->cfg->delivery_concurrency + PRIORITY_RESERVE)
		return false;
	for (size_t i = 0; i < e->t.npriority; i++) {
		const struct dest *d = &e->t.dests[e->t.priority[i]];
		if (!d->unresolved && d->inflight == 0 && dest_waiting(d) > 0)
			return true;
	}
	return false;
}

static bool
priority_waiting_cb(void *e)
{
	return priority_waiting(e);
}

/* Hands every waiting recipient of d back, due at next_try. */
static void
dest_hand_back(struct engine *e, struct dest *d, int64_t next_try)
{
	for (size_t i = d->head; i < d->n; i++)
		job_hand_back(e->jc, &d->items[i].w, next_try);
	dest_drop(&e->t, d, dest_waiting(d));
}

/*
 * Takes the claimed recipients into their destinations (the array is
 * freed, its strings are kept).
 */
static void
take_claimed(struct engine *e, struct spool_work *work, size_t n,
    int64_t claimed_ms)
{
	for (size_t i = 0; i < n; i++) {
		size_t di = dest_find(&e->t, &work[i]);
		if (e->t.dests[di].dead) {
			struct spool_work one = work[i];
			job_hand_back(e->jc, &one, time(NULL) +
			    e->cfg->minimal_backoff_time);
			free(one.address);
			free(one.domain);
			continue;
		}
		dest_push(&e->t, di, &work[i], claimed_ms);
	}
	free(work);
}

/* Claims up to max due recipients; returns how many came. */
static size_t
claim(struct engine *e, size_t max)
{
	const struct runner_options *opt = e->opt;
	struct spool_claim_filter filter = {opt->domain, opt->sender,
	    opt->lane, false, e->pass_started};
	struct spool_work *work = NULL;
	size_t n = 0;
	int64_t now_ms = wall_ms();

	if (spool_claim_due(e->sp, &filter, now_ms / 1000,
	    e->cfg->delivery_lease_time, max, &work, &n) != SPOOL_OK) {
		e->spool_failed = true;
		return 0;
	}
	take_claimed(e, work, n, now_ms);
	return n;
}

/* ---- workers ---- */

/*
 * An idle worker: one that waits, else a new one in a free slot (a
 * slot is free when its worker is gone and reaped, or never used).
 *
 * The last worker that waits is the priority lane's spare: bulk work
 * (for_priority false) gets a new worker rather than that one while a
 * slot is free. A new worker first joins the spool, and when a pass
 * starts a hundred of them at once they join one after another, a
 * second or more for the last: a password reset that had to wait for
 * one would miss its two seconds. A daemon starts the spare before
 * any other at the start of each pass (run_engine_pass), and it is
 * back after each priority job.
 */
static struct worker *
idle_worker(struct engine *e, bool for_priority)
{
	struct worker *w = NULL, *waiting = NULL;
	size_t nwaiting = 0;

	for (size_t i = 0; i < e->nworkers; i++) {
		struct worker *x = &e->workers[i];
		if (x->fd >= 0 && !x->busy) {
			waiting = x;
			nwaiting++;
		}
		if (w == NULL && x->fd < 0 && !x->busy &&
		    waitpid(x->pid, NULL, WNOHANG) == x->pid)
			w = x;
	}
	bool slot_free = w != NULL || e->nworkers < e->max_workers;
	if (waiting != NULL && (for_priority || nwaiting > 1 || !slot_free))
		return waiting;
	if (w == NULL && e->nworkers == e->max_workers)
		return NULL;
	bool fresh = w == NULL;
	if (fresh)
		w = &e->workers[e->nworkers];
	free(w->domain);
	free(w->resolving);
	w->domain = NULL;
	w->resolving = NULL;
	int *fds = xcalloc(e->nworkers + 3, sizeof(int));
	size_t nfds = 0;
	for (size_t i = 0; i < e->nworkers; i++)
		fds[nfds++] = e->workers[i].fd;
	fds[nfds++] = e->fifo;
	fds[nfds++] = e->registration;	/* its flock ends with the engine */
	int rc = worker_spawn(e->cfg, e->deadline, fds, nfds, w);
	free(fds);
	if (rc != 0) {
		/* The slot stays free: nothing to wait for in it. */
		w->pid = -1;
		w->fd = -1;
		return NULL;
	}
	if (fresh)
		e->nworkers++;
	return w;
}

/*
 * New mail from the maildrop: the priority messages that rang the
 * doorbell at once, here; all the rest by a worker, so that the engine
 * goes on claiming and handing out what is queued while a backlog of
 * thousands of files is taken in (a part at a time would make mail
 * that arrives meanwhile wait behind the whole backlog). run --id
 * picks up its message itself.
 */
static void
pick_up(struct engine *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->nurgent && !e->opt->id; i++) {
		if (spool_pickup(e->sp, e->urgent[i], &n) != SPOOL_OK)
			e->spool_failed = true;
		if (n > 0)
			e->urgent_taken = true;
	}
	e->nurgent = 0;
	if (e->opt->id) {
		if (spool_pickup(e->sp, e->opt->id, &n) != SPOOL_OK)
			e->spool_failed = true;
		return;
	}
	if (e->picking_up != NULL ||
	    !spool_maildrop_changed(e->sp, e->pickup_left))
		return;
	struct worker *w = idle_worker(e, false);
	if (w == NULL || !worker_send_pickup(w)) {
		if (w != NULL)
			worker_close(w);
		e->pickup_left = true;	/* the next tick tries again */
		return;
	}
	w->busy = true;
	w->task = WORKER_PICKUP;
	e->busy++;
	e->picking_up = w;
	e->pickup_started = mono_seconds();
	e->urgent_taken = false;
	e->pickup_left = false;
}

/*
 * Jobs wait while a pickup has just begun and little is claimed, for
 * at most PICKUP_HOLD_MS: mail handed out a few messages at a time as
 * the files come in would cost a session per few messages. The
 * doorbell's priority mail never waits.
 */
static bool
waiting_for_pickup(const struct engine *e)
{
	return e->picking_up != NULL && !e->urgent_taken &&
	    e->t.waiting < e->ahead &&
	    mono_seconds() - e->pickup_started < PICKUP_HOLD_MS / 1000.0;
}

/*
 * Hands d's waiting mail to workers while d and the host allow. A
 * destination takes a second session only while sessions are left
 * for every other one of its lane class that has none yet (starving),
 * and its jobs are sized over the sessions those leave: when sessions
 * are the limit, one more for a destination that has one already is
 * one fewer for mail that waits with none, and that mail ends the
 * pass late.
 */
static void
dispatch_dest(struct engine *e, size_t di, size_t limit)
{
	struct dest *d = &e->t.dests[di];
	size_t cap = (size_t)e->cfg->delivery_concurrency;

	/*
	 * Priority mail may go beyond delivery_concurrency while bulk
	 * sessions fill it, never beyond it on its own.
	 */
	while (dest_waiting(d) > 0 && e->busy < limit && !d->unresolved &&
	    (!d->priority || e->busy_priority < cap) &&
	    d->inflight < (int)d->window && !stop_requested) {
		size_t free_sessions = limit - e->busy;
		if (d->priority && cap - e->busy_priority < free_sessions)
			free_sessions = cap - e->busy_priority;
		size_t others = e->starving[d->priority];
		if (d->inflight == 0 && others > 0)
			others--;	/* d itself */
		if (d->inflight > 0 && free_sessions <= others)
			return;
		struct worker *w = idle_worker(e, d->priority);
		if (w == NULL)
			return;
		size_t k = dest_job_size(&e->t, d, free_sessions > others ?
		    free_sessions - others : 1);
		struct spool_work *work = xcalloc(k, sizeof(*work));
		int64_t claimed_ms = d->items[d->head].claimed_ms;
		for (size_t i = 0; i < k; i++)
			work[i] = d->items[d->head + i].w;
		size_t sent = worker_send_job(w, work, k, claimed_ms);
		free(work);
		if (sent == 0) {
			worker_close(w);	/* reaped at the end */
			continue;
		}
		w->busy = true;
		w->task = WORKER_DELIVER;
		w->dest = di;
		w->nitems = sent;
		free(w->domain);
		w->domain = xstrdup(d->items[d->head].w.domain);
		w->one_domain = true;
		for (size_t i = 0; i < sent; i++)
			if (strcmp(d->items[d->head + i].w.domain,
			    w->domain) != 0)
				w->one_domain = false;
		dest_drop(&e->t, d, sent);
		if (d->inflight == 0)
			e->starving[d->priority]--;
		d->inflight++;
		e->busy++;
		e->busy_priority += d->priority;
		if (e->busy > e->most_busy)
			e->most_busy = e->busy;
	}
}

/*
 * Asks idle workers which hosts serve the domains not resolved yet,
 * those of the priority lane (priority) or the others.
 */
static void
dispatch_resolutions(struct engine *e, bool priority, size_t limit)
{
	size_t *batch = xcalloc(RESOLVE_BATCH, sizeof(*batch));
	char **names = xcalloc(RESOLVE_BATCH, sizeof(*names));
	size_t i = 0;

	while (i < e->t.ndests && e->busy < limit) {
		size_t n = 0;
		for (; i < e->t.ndests && n < RESOLVE_BATCH; i++) {
			struct dest *d = &e->t.dests[i];
			if (d->unresolved && !d->resolving &&
			    d->priority == priority && dest_waiting(d) > 0) {
				batch[n] = i;
				/* The domain, without the priority mark. */
				names[n++] = d->key + (d->priority ? 1 : 0);
			}
		}
		if (n == 0)
			break;
		struct worker *w = idle_worker(e, priority);
		if (w == NULL)
			break;
		size_t sent = worker_send_resolve(w, names, n);
		if (sent == 0) {
			worker_close(w);
			break;
		}
		w->busy = true;
		w->task = WORKER_RESOLVE;
		w->resolving = xcalloc(sent, sizeof(size_t));
		for (size_t k = 0; k < sent; k++) {
			w->resolving[k] = batch[k];
			e->t.dests[batch[k]].resolving = true;
		}
		w->nresolving = sent;
		e->busy++;
		if (e->busy > e->most_busy)
			e->most_busy = e->busy;
	}
	free(batch);
	free(names);
}

static void
dispatch(struct engine *e)
{
	size_t bulk_limit = (size_t)e->cfg->delivery_concurrency;

	e->starving[0] = e->starving[1] = 0;
	for (size_t i = 0; i < e->t.ndests; i++) {
		const struct dest *d = &e->t.dests[i];
		if (d->inflight == 0 && dest_waiting(d) > 0)
			e->starving[d->priority]++;
	}
	dispatch_resolutions(e, true, bulk_limit + PRIORITY_RESERVE);
	bool hold = waiting_for_pickup(e);
	for (size_t i = 0; i < e->t.npriority && !hold; i++)
		dispatch_dest(e, e->t.priority[i], bulk_limit + PRIORITY_RESERVE);
	if (out_of_time(e))
		return;
	dispatch_resolutions(e, false, bulk_limit);
	if (hold)
		return;
	/*
	 * Starting a hundred sessions means forking a hundred workers:
	 * a slice at a time, so that answers (a priority destination's
	 * look-up among them) are read in between.
	 */
	double slice_end = mono_seconds() + DISPATCH_SLICE_MS / 1000.0;
	e->dispatch_cut = false;
	for (size_t k = 0; k < e->t.ndests && e->busy < bulk_limit; k++) {
		if (mono_seconds() >= slice_end || doorbell_rang(e)) {
			e->dispatch_cut = true;	/* the rest after a look */
			break;
		}
		size_t i = (e->rr + k) % e->t.ndests;
		if (!e->t.dests[i].priority)
			dispatch_dest(e, i, bulk_limit);
	}
	if (e->t.ndests > 0)
		e->rr = (e->rr + 1) % e->t.ndests;
}

/*
 * A job's outcome steers its destination's window (dest.h); a
 * destination that just died gives back what waits for it, untried,
 * for minimal_backoff_time.
 */
static void
feedback(struct engine *e, struct dest *d, const struct job_report *rep)
{
	if (!dest_feedback(&e->t, d, rep))
		return;
	size_t left = dest_waiting(d);
	if (left > 0)
		log_info("%s: no server answered %d sessions in a row; %zu "
		    "recipients wait %d s", d->key, d->unanswered_in_row,
		    left, e->cfg->minimal_backoff_time);
	dest_hand_back(e, d, time(NULL) + e->cfg->minimal_backoff_time);
}

/* A resolution came back: each domain's mail joins its host's. */
static void
resolved(struct engine *e, struct worker *w, struct worker_answer *a)
{
	if (a != NULL)
		for (size_t i = 0; i < a->n; i++)
			dest_learn_host(&e->t, a->domains[i], a->keys[i]);
	/* Those with no key (DNS failed) go as they are: the job says why. */
	for (size_t i = 0; i < w->nresolving; i++)
		e->t.dests[w->resolving[i]].unresolved = false;
	free(w->resolving);
	w->resolving = NULL;
	w->nresolving = 0;
}

static void
task_finished(struct engine *e, struct worker *w)
{
	struct worker_answer a;
	int got = worker_read_answer(w, &a);

	w->busy = false;
	e->busy--;
	if (w->task == WORKER_PICKUP) {
		e->picking_up = NULL;
		if (got && a.task == WORKER_PICKUP) {
			e->spool_failed |= a.pickup_failed;
			e->pickup_left = a.pickup_left;
			if (a.picked_up > 0)
				e->drained = false;	/* new mail to claim */
		} else {
			worker_close(w);
			e->pickup_left = true;
		}
		return;
	}
	if (w->task == WORKER_RESOLVE) {
		resolved(e, w, got && a.task == WORKER_RESOLVE ? &a : NULL);
		if (got)
			worker_answer_free(&a);
		else
			worker_close(w);
		return;
	}
	struct dest *d = &e->t.dests[w->dest];
	struct job_report rep = a.rep;
	d->inflight--;
	e->busy_priority -= d->priority;
	if (!got || a.task != WORKER_DELIVER) {
		/* Its claims run out and come back by themselves. */
		if (!stop_requested)
			log_error("delivery worker %ld ended with a job of %zu "
			    "recipients unfinished", (long)w->pid, w->nitems);
		worker_close(w);
		return;
	}
	e->delivered += rep.delivered;
	if (rep.spool_failed)
		e->spool_failed = true;
	if (rep.throttled_until_ms > 0 && (e->throttled_until_ms == 0 ||
	    rep.throttled_until_ms < e->throttled_until_ms))
		e->throttled_until_ms = rep.throttled_until_ms;
	if (rep.hold_until_ms > e->hold_until_ms)
		e->hold_until_ms = rep.hold_until_ms;
	if (w->one_domain)
		dest_learn_host(&e->t, w->domain, rep.mx_key);
	feedback(e, d, &rep);
}

/* Polls up to ms for answers, the doorbell or a signal. */
static void
wait_for_reports(struct engine *e, int ms)
{
	struct pollfd *p = xcalloc(e->nworkers + 1, sizeof(*p));
	size_t np = 0;

	for (size_t i = 0; i < e->nworkers; i++)
		if (e->workers[i].busy && e->workers[i].fd >= 0)
			p[np++] = (struct pollfd){e->workers[i].fd, POLLIN, 0};
	if (e->fifo >= 0)
		p[np++] = (struct pollfd){e->fifo, POLLIN, 0};
	int n = poll(p, np, ms);
	if (n > 0) {
		for (size_t i = 0, k = 0; i < e->nworkers; i++) {
			struct worker *w = &e->workers[i];
			if (!w->busy || w->fd < 0)
				continue;
			if (p[k++].revents)
				task_finished(e, w);
		}
		if (e->fifo >= 0 && p[np - 1].revents)
			answer_doorbell(e);
	}
	free(p);
}

/*
 * Waits up to ms for answers, the doorbell or a signal, and counts the
 * time workers were busy (the pass's log line gives the average).
 */
static void
wait_for_events(struct engine *e, int ms)
{
	double now = mono_seconds();

	e->busy_seconds += (double)e->busy * (now - e->busy_since);
	e->busy_since = now;
	wait_for_reports(e, ms);
	now = mono_seconds();
	e->busy_seconds += (double)e->busy * (now - e->busy_since);
	e->busy_since = now;
}

/*
 * The end of a pass: what waits goes back due at once; workers still
 * busy (a signal, or --max-time) are told to abandon their sessions,
 * and killed if they do not within STOP_GRACE_S.
 */
static void
end_workers(struct engine *e)
{
	/* Sessions are abandoned first: handing back takes a moment. */
	if (e->busy > 0 && (stop_requested || out_of_time(e)))
		for (size_t i = 0; i < e->nworkers; i++)
			if (e->workers[i].busy)
				kill(e->workers[i].pid, SIGTERM);
	for (size_t d = 0; d < e->t.ndests; d++)
		dest_hand_back(e, &e->t.dests[d], time(NULL));
	double give_up = mono_seconds() + STOP_GRACE_S;
	while (e->busy > 0 && mono_seconds() < give_up) {
		int left = (int)((give_up - mono_seconds()) * 1000) + 1;
		wait_for_events(e, left < TICK_MS ? left : TICK_MS);
	}
	for (size_t i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];
		if (w->busy) {
			log_error("delivery worker %ld did not stop; killed",
			    (long)w->pid);
			kill(w->pid, SIGKILL);
		}
		worker_close(w);
	}
	for (size_t i = 0; i < e->nworkers; i++) {
		while (e->workers[i].pid > 0 &&
		    waitpid(e->workers[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
		free(e->workers[i].domain);
		free(e->workers[i].resolving);
		memset(&e->workers[i], 0, sizeof(e->workers[i]));
	}
	e->nworkers = 0;
	e->busy = 0;
	e->busy_priority = 0;
	dest_table_end_pass(&e->t);
}

/*
 * Nothing is due, but a throttle held mail back for a moment: wait for
 * it rather than end the pass. A pass waits for holds that end within
 * JOB_HOLD_WAIT_MS of when they were made; longer ones are left to the
 * next pass or to the daemon.
 */
static bool
wait_for_throttle(struct engine *e)
{
	int64_t now = wall_ms();
	int64_t until = e->throttled_until_ms;
	int64_t due;

	e->throttled_until_ms = 0;
	if (now >= e->hold_until_ms && until == 0)
		return false;
	if (spool_next_due(e->sp, &due) && (until == 0 || due * 1000 < until))
		until = due * 1000;
	if (until == 0 || until - now > JOB_HOLD_WAIT_MS)
		return false;
	int64_t left = until > now ? until - now : 20;
	struct timespec d = {left / 1000, (left % 1000) * 1000000};
	nanosleep(&d, NULL);	/* a signal ends it early: fine */
	return !stop_requested;
}

/*
 * Tells "queuerun status" how many sessions this runner holds: its line
 * in the spool is rewritten when that changed, at most every
 * REPORT_EVERY_MS (and at once when force is set).
 */
static void
report_sessions(struct engine *e, bool force)
{
	size_t sessions = 0;
	double now = mono_seconds();

	if (!force && now - e->reported_at < REPORT_EVERY_MS / 1000.0)
		return;
	for (size_t i = 0; i < e->nworkers; i++)
		if (e->workers[i].busy && e->workers[i].task == WORKER_DELIVER)
			sessions++;
	if (!force && sessions == e->shown.sessions &&
	    e->delivered == e->shown.delivered)
		return;
	e->reported_at = now;
	e->shown.sessions = sessions;
	e->shown.priority_sessions = e->busy_priority;
	e->shown.delivered = e->delivered;
	spool_runner_update(e->registration, &e->shown);
}

/* The pass of a worker engine: claim, dispatch, listen, until done. */
static void
run_engine_pass(struct engine *e)
{
	size_t ahead = (size_t)e->cfg->delivery_concurrency * CLAIM_AHEAD;

	if (ahead < CLAIM_CHUNK)
		ahead = CLAIM_CHUNK;
	e->ahead = ahead;
	e->drained = false;
	/* The priority lane's spare (idle_worker), before any other. */
	if (e->fifo >= 0)
		(void)idle_worker(e, true);
	e->renewed_at = mono_seconds();
	e->priority_checked_at = 0;
	while (!stop_requested && !out_of_time(e)) {
		double now = mono_seconds();
		if (now - e->priority_checked_at >= TICK_MS / 1000.0) {
			e->priority_checked_at = now;
			pick_up(e);
			if (spool_priority_due(e->sp, time(NULL)))
				(void)claim(e, CLAIM_CHUNK);
		}
		/* While files come in, what they bring is claimed at once. */
		if (e->drained && (e->picking_up != NULL ||
		    now - e->drained_at >= RECLAIM_MS / 1000.0))
			e->drained = false;
		while (!e->drained && e->t.waiting + CLAIM_CHUNK <= ahead &&
		    !priority_waiting(e)) {
			size_t got = claim(e, CLAIM_CHUNK);
			if (got < CLAIM_CHUNK) {
				e->drained = true;
				e->drained_at = now;
			}
			if (e->spool_failed)
				break;
		}
		/* The doorbell's priority mail first (the top of the loop). */
		if (e->nurgent > 0)
			continue;
		dispatch(e);
		if (e->busy == 0 && e->t.waiting == 0) {
			if (e->spool_failed)
				break;
			if (claim(e, CLAIM_CHUNK) > 0)
				continue;
			if (wait_for_throttle(e))
				continue;
			break;
		}
		/* What the workers finished is removed a batch at a time. */
		if (now - e->finished_at >= FINISH_EVERY_MS / 1000.0) {
			e->finished_at = now;
			job_finish_pending(e->jc, FINISH_MOST,
			    priority_waiting_cb, e);
		}
		if (now - e->renewed_at >= e->cfg->delivery_lease_time / 3.0) {
			e->renewed_at = now;
			dest_renew(&e->t, e->sp, e->cfg->delivery_lease_time);
		}
		int ms = e->dispatch_cut ? 0 : TICK_MS;
		if (e->deadline > 0) {
			int64_t left = (int64_t)e->deadline * 1000 - wall_ms();
			if (left < ms)
				ms = left < 0 ? 0 : (int)left;
		}
		wait_for_events(e, ms);
		report_sessions(e, false);
	}
	end_workers(e);
}

/* run --id: that one message, in this process, now. */
static void
run_one_message(struct engine *e)
{
	struct spool_work *work = NULL;
	size_t n = 0;
	int64_t now_ms = wall_ms();
	struct job_report rep;

	if (spool_claim_message(e->sp, e->opt->id, false, now_ms / 1000,
	    e->cfg->delivery_lease_time, &work, &n) != SPOOL_OK) {
		e->spool_failed = true;
		return;
	}
	if (n > 0) {
		job_deliver(e->jc, work, n, now_ms, &rep);
		e->spool_failed |= rep.spool_failed;
	}
	spool_work_free(work, n);
}

static void
run_pass(struct engine *e)
{
	const struct runner_options *opt = e->opt;
	double started = mono_seconds();

	e->pass_started = time(NULL);
	e->deadline = opt->max_time > 0 ? e->pass_started + opt->max_time :
	    0;
	e->delivered = 0;
	e->most_busy = 0;
	e->busy_seconds = 0;
	e->busy_since = mono_seconds();
	pick_up(e);
	/* Suspensions and the like that ran out are ended, and logged. */
	shaping_expire(e->sp, e->pass_started);
	if (opt->flush) {
		/*
		 * --flush makes what waits for a retry due once, at the
		 * start of the pass; the pass then tries it once, like
		 * postqueue -f, rather than again and again.
		 */
		struct spool_claim_filter filter = {opt->domain, opt->sender,
		    opt->lane, false, e->pass_started};
		size_t moved = 0;
		if (opt->id)
			(void)spool_flush_message(e->sp, opt->id,
			    e->pass_started);
		else
			(void)spool_flush(e->sp, &filter, e->pass_started,
			    &moved);
	}
	job_finish_pending(e->jc, 0, NULL, NULL);
	if (opt->id)
		run_one_message(e);
	else
		run_engine_pass(e);
	job_finish_pending(e->jc, 0, NULL, NULL);
	report_sessions(e, true);
	double took = mono_seconds() - started;
	if (e->most_busy > 0)
		log_info("pass done: %zu recipients delivered in %.1f s, "
		    "sessions at most %zu, on average %.1f", e->delivered,
		    took, e->most_busy, took > 0 ? e->busy_seconds / took : 0);
	/*
	 * Expired suppression entries go a bounded batch a pass, so the
	 * list does not grow without end and no pass is held up by it.
	 */
	size_t expired = 0;
	if (!stop_requested && spool_suppress_expire(e->sp, time(NULL),
	    SUPPRESS_EXPIRE_BATCH, &expired) == SPOOL_OK && expired > 0)
		log_info("suppression list: %zu expired entr%s removed",
		    expired, expired == 1 ? "y" : "ies");
	/* Counters past stats_retention go the same way, by whole days. */
	size_t old = 0;
	if (!stop_requested && spool_stats_expire(e->sp,
	    stats_day(time(NULL) - e->cfg->stats_retention),
	    STATS_EXPIRE_BATCH, &old) == SPOOL_OK && old > 0)
		log_info("statistics: %zu counter record%s past stats_retention "
		    "removed", old, old == 1 ? "" : "s");
	/* Gives the disk back once a burst has drained (compact.c). */
	if (!stop_requested)
		(void)spool_compact_when_idle(e->sp);
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	/* No SA_RESTART: a blocked poll() must return so we can stop. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Sleeps until the next pass is due: the interval, or sooner when held
 * back or deferred mail comes due, or new mail rings the doorbell.
 */
static void
wait_for_work(struct engine *e, int seconds)
{
	struct pollfd p = {e->fifo, POLLIN, 0};
	double wait = seconds;
	int64_t due;

	if (spool_next_due(e->sp, &due)) {
		double until_due = (double)(due * 1000 - wall_ms()) / 1000.0;
		if (until_due < wait)
			wait = until_due;
	}
	if (wait < 0.2)
		wait = 0.2;
	double until = mono_seconds() + wait;

	while (!stop_requested) {
		double left = until - mono_seconds();
		if (left <= 0)
			return;
		int n = poll(&p, e->fifo >= 0 ? 1 : 0, (int)(left * 1000) + 1);
		if (n > 0) {
			answer_doorbell(e);
			return;
		}
	}
}

int
runner_run(const struct mxl_config *cfg, const struct runner_options *opt)
{
	struct engine e;

	memset(&e, 0, sizeof(e));
	e.cfg = cfg;
	e.opt = opt;
	e.fifo = -1;
	install_signals();
	if (spool_open(cfg->spool_directory, &e.sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	/* Alone (--id), bulk mail still yields to priority mail. */
	e.jc = job_context_new(cfg, e.sp, opt->id, opt->id != NULL, 0);
	/* One more: the worker picking the maildrop up. */
	e.max_workers = (size_t)cfg->delivery_concurrency + PRIORITY_RESERVE +
	    1;
	dest_table_init(&e.t, cfg->initial_destination_concurrency,
	    cfg->destination_concurrency, cfg->delivery_concurrency);
	e.workers = xcalloc(e.max_workers, sizeof(*e.workers));
	/* What queuerun status lists this runner as. */
	e.shown.pid = (long)getpid();
	e.shown.started = time(NULL);
	snprintf(e.shown.kind, sizeof(e.shown.kind), "%s",
	    opt->daemon_interval > 0 ? "daemon" : opt->id ? "message" : "pass");
	e.registration = spool_runner_register(e.sp, &e.shown);
	if (opt->daemon_interval > 0) {
		e.fifo = spool_wakeup_listen(spool_directory_fd(e.sp));
		log_info("daemon started: a pass every %d s and on new mail",
		    opt->daemon_interval);
	}
	do {
		run_pass(&e);
		/*
		 * The metrics file: after every pass of the daemon (at most
		 * every METRICS_INTERVAL s: it walks the whole queue) and of
		 * a cron pass; a run --id (immediate delivery, one message)
		 * leaves it to them.
		 */
		if (opt->daemon_interval > 0)
			metrics_textfile_tick(e.sp, cfg);
		else if (opt->id == NULL)
			(void)metrics_textfile_write(e.sp, cfg);
		if (opt->daemon_interval > 0)
			wait_for_work(&e, opt->daemon_interval);
	} while (opt->daemon_interval > 0 && !stop_requested);
	if (e.fifo >= 0)
		close(e.fifo);
	if (stop_requested)
		log_info("stopping on signal; unfinished claims handed back");
	spool_runner_unregister(e.sp, e.registration);
	job_context_free(e.jc);
	free(e.workers);
	dest_table_free(&e.t);
	spool_close(e.sp);
	/* Cron and systemd must see that the queue was not usable. */
	return e.spool_failed ? EX_TEMPFAIL : 0;
}
