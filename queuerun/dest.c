/*
 * NAME
 *	dest - where claimed mail waits for a worker, and how many
 *	sessions each destination may have
 * DESCRIPTION
 *	See dest.h.
 */
#include "queuerun/dest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

#define JOB_MIN		10	/* recipients per job at least, if there */
#define JOB_MAX		100	/* recipients per job at most */
#define DEAD_AFTER	3	/* unanswered jobs in a row, at window 1 */

void
dest_table_init(struct dest_table *t, int initial_window, int most_window,
    int sessions)
{
	memset(t, 0, sizeof(*t));
	t->initial_window = initial_window;
	t->most_window = most_window;
	t->sessions = (size_t)sessions;
}

size_t
dest_find(struct dest_table *t, const struct spool_work *w)
{
	char key[400];
	size_t at;
	const char *where = w->domain;

	if (strmap_get(&t->host_of, w->domain, &at))
		where = t->hosts[at];
	snprintf(key, sizeof(key), "%s%s", w->priority ? "!" : "", where);
	if (strmap_get(&t->by_key, key, &at))
		return at;
	if (t->ndests == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->dests = xrealloc(t->dests, t->cap * sizeof(*t->dests));
	}
	struct dest *d = &t->dests[t->ndests];
	memset(d, 0, sizeof(*d));
	d->key = xstrdup(key);
	d->priority = w->priority;
	d->window = t->initial_window;
	/*
	 * A domain's host is asked first (one DNS look-up, which its
	 * delivery then finds in the resolver's cache), so that domains
	 * hosted together start out sharing sessions.
	 */
	d->unresolved = where == w->domain;
	strmap_put(&t->by_key, key, t->ndests);
	if (d->priority) {
		/* Few: the engine looks at them between every two pieces. */
		t->priority = xrealloc(t->priority,
		    (t->npriority + 1) * sizeof(*t->priority));
		t->priority[t->npriority++] = t->ndests;
	}
	return t->ndests++;
}

void
dest_push(struct dest_table *t, size_t di, const struct spool_work *w,
    int64_t claimed_ms)
{
	struct dest *d = &t->dests[di];

	if (d->head > 0 && d->head == d->n) {
		d->head = 0;	/* emptied: start over at the front */
		d->n = 0;
	}
	if (d->n == d->cap) {
		if (d->head > d->cap / 2) {
			memmove(d->items, d->items + d->head,
			    (d->n - d->head) * sizeof(*d->items));
			d->n -= d->head;
			d->head = 0;
		} else {
			d->cap = d->cap ? d->cap * 2 : 16;
			d->items = xrealloc(d->items, d->cap *
			    sizeof(*d->items));
		}
	}
	d->items[d->n].w = *w;
	d->items[d->n++].claimed_ms = claimed_ms;
	t->waiting++;
}

size_t
dest_waiting(const struct dest *d)
{
	return d->n - d->head;
}

void
dest_drop(struct dest_table *t, struct dest *d, size_t n)
{
	for (size_t i = d->head; i < d->head + n && i < d->n; i++) {
		free(d->items[i].w.address);
		free(d->items[i].w.domain);
	}
	n = n < dest_waiting(d) ? n : dest_waiting(d);
	d->head += n;
	t->waiting -= n;
}

void
dest_learn_host(struct dest_table *t, const char *domain, const char *key)
{
	size_t at;

	if (key[0] == '\0' || strmap_get(&t->host_of, domain, &at))
		return;
	if (!strmap_get(&t->host_index, key, &at)) {
		t->hosts = xrealloc(t->hosts, (t->nhosts + 1) * sizeof(char *));
		t->hosts[t->nhosts] = xstrdup(key);
		at = t->nhosts++;
		strmap_put(&t->host_index, key, at);
	}
	strmap_put(&t->host_of, domain, at);
	/* What waits for the domain joins the host's destination now. */
	for (int priority = 0; priority < 2; priority++) {
		char dkey[300];
		size_t from;
		snprintf(dkey, sizeof(dkey), "%s%s", priority ? "!" : "",
		    domain);
		if (!strmap_get(&t->by_key, dkey, &from))
			continue;
		struct dest *d = &t->dests[from];
		size_t n = dest_waiting(d);
		struct pending *moving = xcalloc(n + 1, sizeof(*moving));
		memcpy(moving, d->items + d->head, n * sizeof(*moving));
		d->head = d->n = 0;	/* d may move: not used below */
		t->waiting -= n;
		for (size_t i = 0; i < n; i++)
			dest_push(t, dest_find(t, &moving[i].w), &moving[i].w,
			    moving[i].claimed_ms);
		free(moving);
	}
}

void
dest_renew(struct dest_table *t, struct spool *sp, int lease)
{
	struct spool_claim_ref *refs;
	size_t k = 0;

	if (t->waiting == 0)
		return;
	refs = xcalloc(t->waiting, sizeof(*refs));
	for (size_t d = 0; d < t->ndests; d++)
		for (size_t i = t->dests[d].head; i < t->dests[d].n; i++) {
			struct spool_work *w = &t->dests[d].items[i].w;
			refs[k].id = w->id;
			refs[k].index = w->index;
			refs[k++].lease_until = w->lease_until;
		}
	if (spool_renew_claims(sp, refs, k, time(NULL), lease) != SPOOL_OK) {
		free(refs);
		return;		/* as they were; the workers check again */
	}
	k = 0;
	for (size_t d = 0; d < t->ndests; d++) {
		struct dest *dst = &t->dests[d];
		size_t keep = dst->head;
		for (size_t i = dst->head; i < dst->n; i++, k++) {
			struct pending *p = &dst->items[i];
			if (!refs[k].ours) {
				free(p->w.address);
				free(p->w.domain);
				t->waiting--;
				continue;
			}
			p->w.lease_until = refs[k].lease_until;
			dst->items[keep++] = *p;
		}
		dst->n = keep;
	}
	free(refs);
}

/*
 * Its mail spread over as many sessions as it may grow to, so that a
 * growing window finds work for its new sessions; but no smaller than
 * a fair share of all that waits over the sessions free now (when
 * they are the limit, each session should carry as much as it can:
 * one session costs a few round trips before its first message, and
 * sessions given equal shares end together rather than leave a tail
 * of a few busy ones), and at least JOB_MIN, or what is left.
 */
size_t
dest_job_size(const struct dest_table *t, const struct dest *d,
    size_t free_sessions)
{
	size_t waiting = dest_waiting(d);
	size_t most = (size_t)t->most_window;
	size_t k = (waiting + most - 1) / most;
	size_t over = free_sessions > 0 ? free_sessions : 1;
	size_t share = (t->waiting + over - 1) / over;

	if (k < share)
		k = share;
	if (k < JOB_MIN)
		k = JOB_MIN;
	if (k > JOB_MAX)
		k = JOB_MAX;
	/*
	 * What would be left is taken along when it is less than a job:
	 * a job of a few costs a session its set-up, and ends late.
	 */
	if (k > waiting || waiting - k < JOB_MIN)
		k = waiting;
	/*
	 * A message's recipients at one destination go together: one
	 * transaction, one copy of the content on the wire.
	 */
	while (d->head + k < d->n && k < 4 * JOB_MAX &&
	    strcmp(d->items[d->head + k].w.id,
	    d->items[d->head + k - 1].w.id) == 0)
		k++;
	return k;
}

/*
 * Postfix's qmgr feedback: each answered transaction adds 1/window
 * (so a window grows by one per window's worth of success), a job that
 * met no server at all takes one away.
 */
bool
dest_feedback(const struct dest_table *t, struct dest *d,
    const struct job_report *rep)
{
	if (rep->answered > 0) {
		d->window += (double)rep->answered / d->window;
		if (d->window > t->most_window)
			d->window = t->most_window;
		d->unanswered_in_row = 0;
		return false;
	}
	if (rep->unanswered == 0)
		return false;
	d->window = d->window - 1 < 1 ? 1 : d->window - 1;
	if (++d->unanswered_in_row < DEAD_AFTER || d->window > 1 || d->dead)
		return false;
	d->dead = true;
	return true;
}

void
dest_table_end_pass(struct dest_table *t)
{
	for (size_t d = 0; d < t->ndests; d++) {
		dest_drop(t, &t->dests[d], dest_waiting(&t->dests[d]));
		free(t->dests[d].key);
		free(t->dests[d].items);
	}
	free(t->dests);
	t->dests = NULL;
	t->ndests = t->cap = 0;
	free(t->priority);
	t->priority = NULL;
	t->npriority = 0;
	strmap_free(&t->by_key);
}

void
dest_table_free(struct dest_table *t)
{
	dest_table_end_pass(t);
	strmap_free(&t->host_of);
	strmap_free(&t->host_index);
	for (size_t i = 0; i < t->nhosts; i++)
		free(t->hosts[i]);
	free(t->hosts);
	t->hosts = NULL;
	t->nhosts = 0;
}
