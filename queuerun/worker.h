/*
 * NAME
 *	worker - delivery worker processes
 * DESCRIPTION
 *	libESMTP's sessions block, so the engine (runner.h) keeps many
 *	SMTP sessions in flight with many processes, one session each:
 *	worker_spawn() forks a worker (no exec: it shares the runner's
 *	code and configuration, copy on write) that opens the spool for
 *	itself and then waits for jobs on a socket pair. A job is a list
 *	of recipients the engine has claimed (job.h); the worker delivers
 *	them, records every outcome in the spool itself, and answers with
 *	a job_report. A worker also picks up the maildrop when asked, so
 *	that the engine goes on claiming and handing out what is already
 *	queued while a backlog of files is taken in; and it answers the engine's questions of
 *	which host serves a domain (job_next_hop_key()), so that the
 *	engine, which never waits on DNS itself, can send domains that
 *	share an MX host to the same sessions. The claims are the
 *	spool's: a worker that dies leaves them to run out, and another
 *	pass takes them up, as after a kill -9 of a whole runner.
 *
 *	A worker exits when its socket closes (the engine ended the pass),
 *	on SIGTERM (the transaction in flight is abandoned and its
 *	recipients handed back, as for a runner), and when the engine
 *	dies (PR_SET_PDEATHSIG).
 */
#ifndef MXLANE_WORKER_H
#define MXLANE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/config.h"
#include "queuerun/job.h"
#include "spool/spool.h"

enum worker_task { WORKER_DELIVER = 1, WORKER_RESOLVE, WORKER_PICKUP };

struct worker {
	pid_t pid;
	int fd;			/* the engine's end; -1 when gone */
	bool busy;		/* a task is out */
	enum worker_task task;
	size_t dest;		/* the engine's destination of a delivery */
	size_t nitems;		/* recipients in it */
	char *domain;		/* its first domain (learning MX keys) */
	bool one_domain;	/* every item of it was at that domain */
	size_t *resolving;	/* the engine's destinations being resolved */
	size_t nresolving;
};

/* A worker's answer: a delivery's report, next-hop keys, a pickup's. */
struct worker_answer {
	enum worker_task task;
	struct job_report rep;		/* WORKER_DELIVER */
	char **domains, **keys;		/* WORKER_RESOLVE */
	size_t n;
	size_t picked_up;		/* WORKER_PICKUP: messages queued */
	bool pickup_failed;		/* ... the spool failed */
	bool pickup_left;		/* ... files it could not take yet */
};

/*
 * Starts a worker. close_fds: the engine's descriptors the child closes
 * at once (other workers' sockets, the doorbell), -1 terminated.
 * deadline: unix time after which the worker opens no new connection
 * (0 = none). Returns 0, or -1 (logged).
 */
int worker_spawn(const struct mxl_config *cfg, time_t deadline,
    const int *close_fds, size_t nclose, struct worker *w);

/*
 * Sends up to n items as one delivery job; returns how many went (a
 * frame has a bounded size), 0 when the worker is gone.
 */
size_t worker_send_job(struct worker *w, const struct spool_work *work,
    size_t n, int64_t claimed_ms);
/* Asks for the next-hop keys of up to n domains; returns how many. */
size_t worker_send_resolve(struct worker *w, char *const *domains, size_t n);

/* Asks it to pick up the maildrop; false when the worker is gone. */
bool worker_send_pickup(struct worker *w);

/* Reads a worker's answer: 1, or 0 when the worker is gone. */
int worker_read_answer(struct worker *w, struct worker_answer *a);
void worker_answer_free(struct worker_answer *a);

/* Closes the engine's end; the worker exits when its job is done. */
void worker_close(struct worker *w);

#endif
