/*
 * NAME
 *	job - deliver a batch of claimed recipients in this process
 * DESCRIPTION
 *	See job.h. Log lines follow Postfix (smtp: to=..., relay=...,
 *	delays=..., status=...; notice.c logs qmgr: removed and bounce:
 *	sender non-delivery notification) so that pflogsumm and the
 *	admins' grep habits keep working.
 *
 *	Claims not attempted go back through hand_back() alone: due again
 *	at a given time, not logged, no backoff.
 */
#include "queuerun/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>

#include "queuerun/bounce.h"
#include "queuerun/deliver.h"
#include "queuerun/dkim.h"
#include "queuerun/nexthop.h"
#include "queuerun/notice.h"
#include "queuerun/shaping.h"
#include "queuerun/spamcheck.h"
#include "dns/dns.h"
#include "route/replies.h"
#include "route/route.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "spool/stats.h"

#define FINISH_BATCH	64

struct job_context {
	const struct mxl_config *cfg;
	struct spool *sp;
	struct dns_resolver dns;
	struct dlv_config dlv;
	const char *pickup_id;	/* what pick_up() takes from the maildrop */
	bool alone;		/* not a worker of the engine (run --id) */
	time_t deadline;	/* no new connection after it; 0 = none */
	struct job_report *rep;	/* of the job in progress */
	int64_t claimed_at;	/* when the batch was claimed */
	double claimed_mono;
	struct txn **in_flight;	/* the transactions of the open session */
	size_t nin_flight;
	int64_t *went_ms;	/* when each message of it was done (unix ms) */
	size_t nwent;
	const char *provider;	/* of the destination being delivered to */
	const char *pool;	/* and its pool, NULL: none */
	struct session_shaping *shaping;	/* of the open session */
	/*
	 * Messages signed in this job: one signature serves every
	 * transaction of a message (recipients split by domain or by
	 * recipients_per_message), since the content is the same.
	 */
	struct signed_msg *signed_msgs;
	size_t nsigned;
	struct strmap signed_index;	/* queue id -> signed_msgs index */
};

struct signed_msg {
	char *fields;			/* DKIM-Signature fields, or NULL */
	char *signer;			/* "example.org/s2026,ed2026" */
};

/*
 * What the open session's replies did (shaping.h): a reply whose rule
 * has an action is applied once per session and rule, for the provider
 * and the source that got it.
 */
#define SESSION_RULES	8
struct session_shaping {
	const char *provider;
	const struct mxl_source *src, *other;	/* by address family */
	const struct reply_rule *rules[SESSION_RULES];
	enum shaping_effect effects[SESSION_RULES];
	int64_t untils[SESSION_RULES];
	size_t nrules;
	bool blocked, other_outcome;	/* spam-block replies; anything else */
	char last_block[300];
};

/* What the runner keeps per message while it is being delivered. */
struct msg_slot {
	struct spool_msg env;
	const struct mxl_lane *lane;	/* NULL: no longer configured */
	struct spool_rcpt *rcpts;	/* all recipients, from the spool */
	size_t nrcpts;
};

/*
 * One SMTP transaction: a message and some of its recipients at one
 * destination (recipients_per_message may split a message). The
 * dlv_msg comes first so the done callback can find the rest.
 */
struct txn {
	struct dlv_msg m;
	struct msg_slot *slot;
	uint32_t *attempts;		/* per recipient, before this attempt */
	int64_t *due;			/* per recipient */
	int64_t *lease;			/* per recipient: our claim's lease */
	bool booked;			/* came back from a throttle booking */
	size_t hop;			/* job_deliver(): its next hop */
	/* "queuerun move" for this next hop's provider (move_of), or NULL */
	const char *move_pool, *move_source;
	const char *signer;		/* how it was DKIM-signed, or NULL */
	bool sign_decided;
};

static bool
out_of_time(const struct job_context *jc)
{
	return jc->deadline > 0 && time(NULL) >= jc->deadline;
}

/*
 * A process that delivers alone (run --id) still lets priority mail
 * overtake bulk mail between connections: it picks up what waits in
 * the maildrop and asks whether priority mail is due. Workers leave
 * that to the engine, which watches for priority mail all the time.
 */
static bool
priority_waiting(struct job_context *jc)
{
	if (!jc->alone)
		return false;
	if (spool_pickup(jc->sp, jc->pickup_id, NULL) != SPOOL_OK)
		jc->rep->spool_failed = true;
	return spool_priority_due(jc->sp, time(NULL));
}

/* Postfix prints delays with two significant digits, never exponents. */
static void
fmt_delay(char *out, size_t len, double v)
{
	if (v < 0.005)
		snprintf(out, len, "0");
	else if (v < 10)
		snprintf(out, len, "%.2g", v);
	else if (v < 100)
		snprintf(out, len, "%.1f", v);
	else
		snprintf(out, len, "%.0f", v);
}

static int
backoff(const struct mxl_config *cfg, uint32_t previous_attempts)
{
	long long t = cfg->minimal_backoff_time;

	for (uint32_t i = 0; i < previous_attempts && t < cfg->maximal_backoff_time;
	    i++)
		t *= 2;
	return (int)(t > cfg->maximal_backoff_time ? cfg->maximal_backoff_time :
	    t);
}

/* "5.1.1"-style status for a recipient's outcome. */
static void
outcome_status(const struct dlv_rcpt *r, enum spool_rcpt_state state,
    char out[16])
{
	if (r->smtp_reply && r->reply) {
		bounce_status_from_reply(r->reply, out);
		return;
	}
	if (r->status) {
		snprintf(out, 16, "%s", r->status);
		return;
	}
	/* "host X said: 451 4.3.0 ..." from the last host tried. */
	char *said = bounce_reply_of(r->reply);
	if (said) {
		bounce_status_from_reply(said, out);
		free(said);
		return;
	}
	snprintf(out, 16, "%s", state == RCPT_SENT ? "2.0.0" :
	    state == RCPT_BOUNCED ? "5.4.4" : "4.4.1");
}

/* The human text kept as last_response and shown by mailq. */
static char *
outcome_text(const struct dlv_rcpt *r, const char *relay)
{
	if (r->reply == NULL)
		return xstrdup("no reason given");
	if (r->smtp_reply && r->stage)
		return xasprintf("host %s said: %s (in reply to %s command)",
		    relay, r->reply, r->stage);
	return xstrdup(r->reply);
}

static void
log_rcpt(struct job_context *jc, const struct txn *t, const struct dlv_rcpt *r,
    size_t k, const char *status_word, const char *dsn, const char *text,
    const char *class, int64_t now)
{
	const struct dlv_msg *m = &t->m;
	const struct msg_slot *slot = t->slot;
	char d[16], a[16], b[16], c[16], e[16];
	double total = (double)(now - slot->env.arrival);
	double before = (double)(jc->claimed_at - t->due[k]);

	fmt_delay(d, sizeof(d), total < 0 ? 0 : total);
	fmt_delay(a, sizeof(a), before < 0 ? 0 : before);
	fmt_delay(b, sizeof(b), mono_seconds() - jc->claimed_mono -
	    m->connect_seconds - m->transfer_seconds);
	fmt_delay(c, sizeof(c), m->connect_seconds);
	fmt_delay(e, sizeof(e), m->transfer_seconds);
	log_set_component("smtp");
	/*
	 * Extra fields (the class, the DKIM signer) go after the reason,
	 * where no Postfix log reader looks (pflogsumm reads up to
	 * "status=WORD (reason").
	 */
	log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, "
	    "dsn=%s, status=%s (%s)%s%s%s%s", slot->env.id, r->address,
	    m->relay[0] ? m->relay : "none", d, a, b, c, e, dsn, status_word,
	    text, class ? ", class=" : "", class ? class : "",
	    t->signer ? ", dkim=" : "", t->signer ? t->signer : "");
	log_set_component(NULL);
}

/* Finishes up to rounds * FINISH_BATCH messages whose work is done. */
static void
finish_pending(struct job_context *jc, int rounds, bool (*stop)(void *),
    void *stop_ctx)
{
	char ids[FINISH_BATCH][SPOOL_ID_SIZE];
	size_t n;

	for (int round = 0; round < rounds && !deliver_stop; round++) {
		if (spool_pending_finish(jc->sp, ids, FINISH_BATCH, &n) !=
		    SPOOL_OK || n == 0)
			return;
		for (size_t i = 0; i < n; i++) {
			/* The rest stay pending, for the next time. */
			if (stop && stop(stop_ctx))
				return;
			notice_finish(jc->sp, jc->cfg, ids[i]);
		}
	}
}

static bool
in_list(char **list, size_t n, const char *class)
{
	for (size_t i = 0; class && i < n; i++)
		if (strcmp(list[i], class) == 0)
			return true;
	return false;
}

/*
 * What a failure teaches the suppression list: a bounce of a class in
 * suppress_classes suppresses the address for suppress_time; a failure
 * of a class in suppress_soft_classes (a full mailbox) counts, once per
 * message, and the suppress_soft_count'th within suppress_soft_window
 * suppresses it for suppress_soft_time. Its own transaction, after the
 * outcome's: a crash between the two loses the lesson, not the mail.
 */
static void
learn_suppression(struct job_context *jc, const char *id, const char *address,
    const char *reply, const char *class, bool bounced, int64_t now)
{
	const struct mxl_config *cfg = jc->cfg;
	char norm[SUPPRESS_ADDRESS_MAX + 1];
	int seconds = 0;

	if (spool_suppress_normalize(address, norm, sizeof(norm)) != 0)
		return;
	if (bounced && in_list(cfg->suppress_classes, cfg->nsuppress_classes,
	    class))
		seconds = cfg->suppress_time;
	else if (in_list(cfg->suppress_soft_classes,
	    cfg->nsuppress_soft_classes, class)) {
		bool reached = false;
		if (spool_suppress_soft(jc->sp, norm, id, now,
		    cfg->suppress_soft_window, cfg->suppress_soft_count,
		    &reached) != SPOOL_OK || !reached)
			return;
		seconds = cfg->suppress_soft_time;
	}
	if (seconds <= 0)
		return;
	struct spool_suppression e = {norm, (char *)(reply ? reply : ""),
	    (char *)class, now, now + seconds, SUPPRESS_BOUNCE};
	if (spool_suppress_add(jc->sp, &e) != SPOOL_OK)
		return;
	char until[32];
	time_t t = (time_t)(now + seconds);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	log_set_component("qmgr");
	log_info("%s: <%s> suppressed until %s, class=%s", id, norm, until,
	    class);
	log_set_component(NULL);
}

/* The source a reply came to: the one of the relay address's family. */
static const char *
session_source(const struct session_shaping *ss, const struct dlv_msg *m)
{
	const struct mxl_source *src = ss->src;
	const char *ip = strchr(m->relay, '[');
	const char *colon = ip ? strchr(ip, ':') : NULL;
	const char *end = ip ? strchr(ip, ']') : NULL;
	int family = colon && end && colon < end ? AF_INET6 : AF_INET;

	if (ss->other && ss->other->sa.ss_family == family)
		src = ss->other;
	return src ? src->address : SHAPING_NO_SOURCE;
}

/* What rule, classifying reply, does to the open session. */
static enum shaping_effect
react_to_rule(struct job_context *jc, const struct dlv_msg *m,
    const struct reply_rule *rule, const char *reply, int64_t now,
    int64_t *until)
{
	struct session_shaping *ss = jc->shaping;

	if (rule->class && strcmp(rule->class, "spam-block") == 0) {
		ss->blocked = true;
		snprintf(ss->last_block, sizeof(ss->last_block), "%s", reply);
	} else {
		ss->other_outcome = true;
	}
	if (rule->action == REPLY_ACTION_NONE)
		return SHAPING_NONE;
	for (size_t i = 0; i < ss->nrules; i++)
		if (ss->rules[i] == rule) {
			*until = ss->untils[i];
			return ss->effects[i];
		}
	enum shaping_effect e = shaping_react(jc->sp, ss->provider,
	    session_source(ss, m), rule, reply, now, until);
	if (ss->nrules < SESSION_RULES) {
		ss->rules[ss->nrules] = rule;
		ss->effects[ss->nrules] = e;
		ss->untils[ss->nrules++] = *until;
	}
	return e;
}

/*
 * Applies the rule a recipient's failure was classified by
 * (route/replies.h) once per session (shaping.h). Returns what it did, and
 * *until when it ends.
 */
static enum shaping_effect
react_to_reply(struct job_context *jc, const struct dlv_msg *m,
    const struct dlv_rcpt *r, const struct reply_rule *rule, int64_t now,
    int64_t *until)
{
	struct session_shaping *ss = jc->shaping;

	*until = 0;
	if (ss == NULL || rule == NULL)
		return SHAPING_NONE;	/* no session: DNS, or shutting down */
	/* The server's own words: a greeting's are inside our sentence. */
	char *said = r->smtp_reply ? NULL : bounce_reply_of(r->reply);
	const char *reply = said ? said : r->reply ? r->reply : "";
	enum shaping_effect e = react_to_rule(jc, m, rule, reply, now, until);
	free(said);
	return e;
}

/* The done callback: record what happened to one message's recipients. */
static void
on_message_done(void *ctx, struct dlv_msg *m)
{
	struct job_context *jc = ctx;
	struct txn *t = (struct txn *)m;
	struct msg_slot *slot = t->slot;
	/* For the throttle's rate: when the server had it (spool.h). */
	if (jc->went_ms != NULL && jc->nwent < jc->nin_flight)
		jc->went_ms[jc->nwent++] = wall_ms();
	struct spool_result *results = xcalloc(m->nrcpts + 1,
	    sizeof(*results));
	char **texts = xcalloc(m->nrcpts + 1, sizeof(char *));
	int64_t now = time(NULL);
	bool deferred = false, bounced = false, all_final = false;
	char (*dsns)[16] = xcalloc(m->nrcpts + 1, sizeof(*dsns));

	size_t nres = 0;
	for (size_t k = 0; k < m->nrcpts; k++) {
		struct dlv_rcpt *r = &m->rcpts[k];
		const char *word;
		char dsn[16];

		if (r->outcome == DLV_SKIP)
			continue;	/* another runner's now */
		struct spool_result *res = &results[nres++];

		res->index = r->index;
		res->relay = m->relay;
		/* What "queuerun move --source" and mailq --json look at. */
		if (jc->shaping && jc->shaping->src)
			res->source = session_source(jc->shaping, m);
		res->attempted = true;
		texts[k] = outcome_text(r, m->relay);
		res->response = texts[k];
		/* Every failure, ours or the server's, gets its class. */
		const struct reply_rule *rule = NULL;
		if (r->outcome != DLV_SENT)
			rule = replies_classify_line(jc->cfg, jc->provider,
			    r->reply, r->status);
		res->class = rule ? rule->class : NULL;
		enum shaping_effect effect = SHAPING_NONE;
		int64_t until = 0;
		/* A session we cut short said nothing about the source. */
		if ((r->outcome == DLV_DEFER || r->outcome == DLV_BOUNCE) &&
		    !(deliver_stop && !r->smtp_reply))
			effect = react_to_reply(jc, m, r, rule, now, &until);
		else if (r->outcome == DLV_SENT && jc->shaping)
			jc->shaping->other_outcome = true;
		switch (r->outcome) {
		case DLV_SENT:
			res->state = RCPT_SENT;
			word = "sent";
			free(texts[k]);
			texts[k] = xstrdup(r->reply ? r->reply : "250 Ok");
			res->response = texts[k];
			break;
		case DLV_BOUNCE:
			res->state = RCPT_BOUNCED;
			word = "bounced";
			bounced = true;
			break;
		case DLV_DEFER:
		case DLV_PENDING:
		default:
			if (deliver_stop && !r->smtp_reply) {
				/* Shutting down: hand it back untouched. */
				res->state = RCPT_QUEUED;
				res->next_try = now;
				res->attempted = false;
				res->response = NULL;
				res->class = NULL;
				word = NULL;
				break;
			}
			if (now - slot->env.arrival >=
			    jc->cfg->maximal_queue_lifetime) {
				res->state = RCPT_BOUNCED;
				word = "expired";
				bounced = true;
				char *why = xasprintf("message expired in the "
				    "queue: %s", texts[k]);
				free(texts[k]);
				texts[k] = why;
				res->response = why;
				break;
			}
			res->state = RCPT_QUEUED;
			res->next_try = now + backoff(jc->cfg, t->attempts[k]);
			word = "deferred";
			deferred = true;
			if (effect == SHAPING_SOURCE_STOPPED ||
			    effect == SHAPING_PROVIDER_STOPPED) {
				/*
				 * The reply was about the source (or the
				 * provider), not this mail: no attempt
				 * counted, no backoff. Due again at once for
				 * the pool's other sources (held, so this
				 * pass takes it again), or when the provider
				 * takes mail again.
				 */
				res->attempted = false;
				res->held = true;
				res->next_try = effect ==
				    SHAPING_SOURCE_STOPPED ? now : until;
				deferred = false;
				char *why = xasprintf("%s (%s; no backoff)",
				    texts[k], effect == SHAPING_SOURCE_STOPPED ?
				    "source suspended, due again at once" :
				    "provider deferred");
				free(texts[k]);
				texts[k] = why;
				res->response = why;
			}
			break;
		}
		if (word == NULL)
			continue;
		outcome_status(r, res->state, dsn);
		memcpy(dsns[k], dsn, sizeof(dsn));
		res->status = dsns[k];
		log_rcpt(jc, t, r, k, strcmp(word, "expired") == 0 ?
		    "bounced" : word, dsn, res->response, res->class, now);
	}
	struct spool_stats_where where = {jc->provider, jc->shaping ?
	    session_source(jc->shaping, m) : NULL, jc->pool, false};
	bool recorded = nres > 0 && spool_record_outcomes(jc->sp,
	    slot->env.id, &where, results, nres, now, &all_final) == SPOOL_OK;
	for (size_t k = 0, i = 0; recorded && k < m->nrcpts; k++) {
		struct dlv_rcpt *r = &m->rcpts[k];
		if (r->outcome == DLV_SKIP)
			continue;
		struct spool_result *res = &results[i++];
		if (res->class && res->attempted && (r->outcome == DLV_BOUNCE ||
		    r->outcome == DLV_DEFER))
			learn_suppression(jc, slot->env.id, r->address,
			    r->reply, res->class, r->outcome == DLV_BOUNCE,
			    now);
	}
	if (recorded) {
		/*
		 * A worker leaves finished messages to the engine, which
		 * removes them a batch at a time: a hundred workers removing
		 * their own would fight over the content table's pages.
		 */
		if (all_final && jc->alone)
			notice_finish(jc->sp, jc->cfg, slot->env.id);
		else if (bounced)
			notice_bounce_now(jc->sp, jc->cfg, slot->env.id);
		if (!all_final && deferred)
			notice_delay_if_due(jc->sp, jc->cfg, slot->env.id,
			    now);
	}
	free(dsns);
	for (size_t k = 0; k < m->nrcpts; k++)
		free(texts[k]);
	free(texts);
	free(results);
}

/*
 * Hands claimed recipients (indexes) of message id back to the queue
 * without an attempt: due again at next_try, not logged, no backoff,
 * in one transaction. held: they wait for a throttle's booking.
 */
static void
hand_back(struct job_context *jc, const char *id, const uint32_t *indexes,
    size_t n, int64_t next_try, bool held)
{
	struct spool_result *res = xcalloc(n + 1, sizeof(*res));
	bool all_final;

	for (size_t i = 0; i < n; i++) {
		res[i].index = indexes[i];
		res[i].state = RCPT_QUEUED;
		res[i].next_try = next_try;
		res[i].held = held;
	}
	if (n > 0)
		(void)spool_record_results(jc->sp, id, res, n, time(NULL),
		    &all_final);
	free(res);
}

/* Loads the envelopes of one domain's work items, one slot per message. */
static size_t
load_slots(struct job_context *jc, struct spool_work *work, size_t n,
    struct msg_slot *slots, size_t *first)
{
	size_t k = 0;

	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(work[j].id, work[i].id) == 0)
			j++;
		int rc = spool_get(jc->sp, work[i].id, &slots[k].env,
		    &slots[k].rcpts, &slots[k].nrcpts);
		if (rc == SPOOL_OK && (slots[k].env.flags & SPOOL_MSG_HELD)) {
			/*
			 * Put on hold since it was claimed: not attempted.
			 * Handed back, a held message's recipients get no
			 * schedule key (spool/admin.c).
			 */
			for (size_t w = i; w < j; w++)
				hand_back(jc, work[w].id, &work[w].index, 1,
				    time(NULL), false);
			spool_msg_free(&slots[k].env);
			spool_rcpts_free(slots[k].rcpts, slots[k].nrcpts);
		} else if (rc == SPOOL_OK) {
			slots[k].lane = config_lane(jc->cfg,
			    slots[k].env.lane);
			first[k++] = i;
		} else if (rc != SPOOL_NOTFOUND) {
			/*
			 * Could not read it now: hand the claims back, due at
			 * once, rather than leave them to their lease. (Gone
			 * for good, its claims went with it.)
			 */
			int64_t now = time(NULL);
			for (size_t w = i; w < j; w++)
				hand_back(jc, work[w].id, &work[w].index, 1,
				    now, work[w].held);
		}
		i = j;
	}
	first[k] = n;
	return k;
}

/* Transactions of one message: chunks of at most per recipients. */
static size_t
add_txns(struct msg_slot *slot, struct spool_work *work, size_t nwork,
    int per, struct txn **txns, size_t *ntxns, size_t *cap)
{
	size_t made = 0;

	if (per <= 0)
		per = (int)nwork;
	for (size_t i = 0; i < nwork; i += (size_t)per) {
		size_t cnt = nwork - i < (size_t)per ? nwork - i : (size_t)per;
		if (*ntxns == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*txns = xrealloc(*txns, *cap * sizeof(**txns));
		}
		struct txn *t = &(*txns)[(*ntxns)++];
		memset(t, 0, sizeof(*t));
		t->slot = slot;
		t->m.env = &slot->env;
		t->m.rcpts = xcalloc(cnt, sizeof(*t->m.rcpts));
		t->attempts = xcalloc(cnt, sizeof(uint32_t));
		t->due = xcalloc(cnt, sizeof(int64_t));
		t->lease = xcalloc(cnt, sizeof(int64_t));
		for (size_t w = i; w < i + cnt; w++) {
			struct dlv_rcpt *r = &t->m.rcpts[t->m.nrcpts];
			r->index = work[w].index;
			r->address = work[w].address;
			for (size_t q = 0; q < slot->nrcpts; q++)
				if (slot->rcpts[q].index == work[w].index) {
					r->orcpt = slot->rcpts[q].orcpt;
					r->notify = slot->rcpts[q].notify;
				}
			t->attempts[t->m.nrcpts] = work[w].attempts;
			t->due[t->m.nrcpts] = work[w].due;
			t->lease[t->m.nrcpts] = work[w].lease_until;
			if (work[w].held)	/* booked by a throttle */
				t->booked = true;
			t->m.nrcpts++;
		}
		made++;
	}
	return made;
}

static void
free_txns(struct txn *txns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < txns[i].m.nrcpts; r++)
			free(txns[i].m.rcpts[r].reply);
		free(txns[i].m.rcpts);
		free(txns[i].m.last_error);
		free(txns[i].attempts);
		free(txns[i].due);
		free(txns[i].lease);
	}
	free(txns);
}

/*
 * Hands the transactions not done yet back (hand_back()), the k-th due
 * again at when_ms + k * step_ms: throttled mail comes back at the pace
 * it can go.
 */
static void
release_list(struct job_context *jc, struct txn **list, size_t n,
    int64_t when_ms, int64_t step_ms, bool held)
{
	for (size_t i = 0; i < n; i++) {
		struct txn *t = list[i];
		if (t->m.done)
			continue;
		/*
		 * Due times are whole seconds: round down, so it is due by
		 * the moment the throttle allows it; send_group() then waits
		 * out the rest of that second to the millisecond.
		 */
		int64_t at = (when_ms + (int64_t)i * step_ms) / 1000;
		uint32_t *ours = xcalloc(t->m.nrcpts + 1, sizeof(*ours));
		size_t k = 0;
		for (size_t r = 0; r < t->m.nrcpts; r++)
			if (t->m.rcpts[r].outcome != DLV_SKIP)
				ours[k++] = t->m.rcpts[r].index;
		/* Once booked, still booked when handed back early. */
		hand_back(jc, t->slot->env.id, ours, k, at, held || t->booked);
		free(ours);
		t->m.done = true;
	}
}

static void
release_txns(struct job_context *jc, struct txn *txns, size_t n,
    int64_t when_ms)
{
	for (size_t i = 0; i < n; i++) {
		struct txn *t = &txns[i];
		release_list(jc, &t, 1, when_ms, 0, false);
	}
}

static bool
limits_set(const struct mxl_limits *l)
{
	return l->concurrency || l->rate_count || l->delay_ms;
}

static void
throttle_key(const struct nexthop *nh, const struct mxl_source *src,
    char *key, size_t len)
{
	snprintf(key, len, "%s|%s", nh->provider ? nh->provider->name : "-",
	    src ? src->address : "-");
}

/*
 * Makes sure the claims are still ours right before they go on the
 * wire, and extends them: a batch can take longer than a lease (a slow
 * MX), and a claim that ran out may be another runner's by now.
 * Recipients no longer ours are skipped; a transaction left with none
 * is done.
 */
static void renew_claims(struct job_context *jc, struct txn **list, size_t n,
    bool in_session);

/* Claims are renewed at most this often (seconds) during a session. */
#define KEEPALIVE_MIN_S	0.25

/* Seconds a throttle's connection slot is held at most (see its use). */
#define SLOT_LEASE	1800

static void
keep_claims(void *ctx)
{
	struct job_context *jc = ctx;

	if (jc->nin_flight > 0)
		renew_claims(jc, jc->in_flight, jc->nin_flight, true);
}

/*
 * in_session: the session has begun and may have sent them (a hold
 * then comes too late for them: spool_renew_claims).
 */
static void
renew_claims(struct job_context *jc, struct txn **list, size_t n,
    bool in_session)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		total += list[i]->m.nrcpts;
	struct spool_claim_ref *refs = xcalloc(total + 1, sizeof(*refs));
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < list[i]->m.nrcpts; r++) {
			refs[k].id = list[i]->slot->env.id;
			refs[k].index = list[i]->m.rcpts[r].index;
			refs[k].lease_until = list[i]->lease[r];
			refs[k].in_session = in_session;
			k++;
		}
	if (spool_renew_claims(jc->sp, refs, total, time(NULL),
	    jc->cfg->delivery_lease_time) != SPOOL_OK) {
		free(refs);
		return;		/* leases as they were; deliver anyway */
	}
	k = 0;
	for (size_t i = 0; i < n; i++) {
		struct txn *t = list[i];
		size_t left = 0;
		for (size_t r = 0; r < t->m.nrcpts; r++, k++) {
			if (refs[k].ours) {
				t->lease[r] = refs[k].lease_until;
				left++;
			} else {
				t->m.rcpts[r].outcome = DLV_SKIP;
			}
		}
		if (left == 0)
			t->m.done = true;
	}
	free(refs);
}

static void
set_source(struct dlv_config *dcfg, const struct mxl_source *src)
{
	struct dlv_source *to = src->sa.ss_family == AF_INET6 ?
	    &dcfg->source6 : &dcfg->source4;

	to->sa = (const struct sockaddr *)&src->sa;
	to->len = src->sa_len;
	to->helo = src->helo;
}

/*
 * Signs the message of t, once per job (dkim.h): the first of its
 * transactions signs, the others find the signature here.
 */
static void
sign_txn(struct job_context *jc, struct txn *t)
{
	const char *id = t->slot->env.id;
	struct signed_msg *s;
	size_t at;

	if (t->sign_decided || jc->cfg->ndkim_domains == 0)
		return;
	t->sign_decided = true;
	if (strmap_get(&jc->signed_index, id, &at)) {
		s = &jc->signed_msgs[at];
	} else {
		jc->signed_msgs = xrealloc(jc->signed_msgs, (jc->nsigned + 1) *
		    sizeof(*jc->signed_msgs));
		strmap_put(&jc->signed_index, id, jc->nsigned);
		s = &jc->signed_msgs[jc->nsigned++];
		s->fields = dkim_sign_message(jc->cfg, jc->sp, &t->slot->env,
		    &s->signer);
	}
	t->m.signature = s->fields;
	t->signer = s->signer;
}

static void
forget_signatures(struct job_context *jc)
{
	for (size_t i = 0; i < jc->nsigned; i++) {
		free(jc->signed_msgs[i].fields);
		free(jc->signed_msgs[i].signer);
	}
	free(jc->signed_msgs);
	jc->signed_msgs = NULL;
	jc->nsigned = 0;
	strmap_free(&jc->signed_index);
}

/*
 * One connection from src with as many of list as its throttle allows
 * now; other, when not NULL, is the source of the other address family,
 * for the addresses of that family (the connection is counted and
 * throttled as src's). Returns how many were handed to it (0: the
 * throttle said wait, *retry_ms tells until when).
 */
static size_t
send_one_connection(struct job_context *jc, const struct nexthop *nh,
    const struct mxl_source *src, const struct mxl_source *other,
    struct txn **list, size_t n, int64_t *retry_ms, bool *warm_spent)
{
	const char *provider = nh->provider ? nh->provider->name : "-";
	struct session_shaping ss;
	struct spool_throttle_limits tl = {nh->limits.concurrency,
	    nh->limits.rate_count, nh->limits.rate_period, nh->limits.delay_ms};
	bool throttled = limits_set(&nh->limits);
	char key[400];
	size_t want = n;

	throttle_key(nh, src, key, sizeof(key));
	if (nh->limits.messages_per_connection > 0 &&
	    want > (size_t)nh->limits.messages_per_connection)
		want = (size_t)nh->limits.messages_per_connection;
	struct spool_throttle_grant grant = {(int)want, -1, 0, 0};
	/*
	 * A connection slot is not renewed during the session as claims
	 * are: it lasts as long as the longest session may, and is freed
	 * at once when its holder is found dead.
	 */
	int slot_lease = jc->cfg->delivery_lease_time > SLOT_LEASE ?
	    jc->cfg->delivery_lease_time : SLOT_LEASE;
	if (throttled && spool_throttle_acquire(jc->sp, key, &tl,
	    nh->priority, (int)want, slot_lease, &grant) != SPOOL_OK)
		return 0;
	if (grant.granted <= 0) {
		*retry_ms = grant.retry_ms;
		return 0;
	}
	/* A warming source sends no more than what is left of its cap. */
	int64_t warm = shaping_warm_take(jc->sp, provider, src, time(NULL),
	    grant.granted);
	if (warm < grant.granted) {
		if (throttled)
			(void)spool_throttle_release(jc->sp, key, &grant,
			    grant.granted - (int)warm, NULL, 0);
		if (warm == 0) {
			*warm_spent = true;
			return 0;
		}
		grant.granted = (int)warm;
	}
	struct dlv_config dcfg = jc->dlv;
	dcfg.port = nh->port;
	char policy[400];
	if (nh->sts.have) {
		snprintf(policy, sizeof(policy), "MTA-STS policy of %s (mode "
		    "%s, id %s)", nh->sts_domain,
		    mtasts_mode_name(nh->sts.policy.mode), nh->sts.policy.id);
		dcfg.policy = policy;
		dcfg.ca_file = jc->cfg->smtp_tls_CAfile;
		dcfg.tls_policy = nh->sts.policy.mode == MTASTS_ENFORCE ?
		    DLV_TLS_VERIFY : DLV_TLS_TEST;
	}
	/* Claims are short: they are extended while the session lasts. */
	jc->in_flight = list;
	jc->nin_flight = (size_t)grant.granted;
	/* Only a throttle's rate needs to know when each message went. */
	jc->went_ms = throttled ? xcalloc((size_t)grant.granted,
	    sizeof(*jc->went_ms)) : NULL;
	jc->nwent = 0;
	dcfg.keepalive = keep_claims;
	dcfg.keepalive_ctx = jc;
	/*
	 * Leases end on whole seconds, so a claim renewed just before the
	 * second turns lasts lease - 1 s: two renewals within that keep it
	 * ours even when one comes late (a callback waits for a slow
	 * reply). With a 2 s lease and a renewal every second, a claim
	 * ran out under a session that had sent it, and another session
	 * sent it again.
	 */
	dcfg.keepalive_interval = (jc->cfg->delivery_lease_time - 1) / 2.0;
	if (dcfg.keepalive_interval < KEEPALIVE_MIN_S)
		dcfg.keepalive_interval = KEEPALIVE_MIN_S;
	dcfg.sourced = nh->pool != NULL;
	if (src)
		set_source(&dcfg, src);
	if (other)
		set_source(&dcfg, other);
	renew_claims(jc, list, (size_t)grant.granted, false);
	struct dlv_msg **ptrs = xcalloc((size_t)grant.granted, sizeof(*ptrs));
	size_t nptrs = 0;
	for (int i = 0; i < grant.granted; i++)
		if (!list[i]->m.done) {
			sign_txn(jc, list[i]);
			ptrs[nptrs++] = &list[i]->m;
		}
	memset(&ss, 0, sizeof(ss));
	ss.provider = provider;
	ss.src = src;
	ss.other = other;
	jc->shaping = &ss;
	jc->provider = nh->provider ? nh->provider->name : NULL;
	jc->pool = nh->pool ? nh->pool->name : NULL;
	if (nptrs > 0)
		deliver_to_hosts(&dcfg, jc->sp, nh->hosts.hosts,
		    nh->hosts.nhosts, ptrs, nptrs, on_message_done, jc);
	jc->provider = NULL;
	jc->pool = NULL;
	jc->shaping = NULL;
	jc->in_flight = NULL;
	jc->nin_flight = 0;
	int unused = (int)((size_t)grant.granted - nptrs);
	int64_t accepted = 0;
	for (size_t i = 0; i < nptrs; i++) {
		if (!ptrs[i]->done)
			unused++;
		for (size_t r = 0; r < ptrs[i]->nrcpts; r++)
			if (ptrs[i]->rcpts[r].outcome == DLV_SENT) {
				accepted++;
				break;
			}
	}
	free(ptrs);
	/* The cap counts messages that left; the rest is given back. */
	shaping_warm_give_back(jc->sp, provider, src, time(NULL),
	    warm - accepted);
	if (ss.blocked || ss.other_outcome)
		shaping_note_connection(jc->sp, provider, src ? src->address :
		    SHAPING_NO_SOURCE, ss.blocked && !ss.other_outcome,
		    ss.last_block, time(NULL));
	if (throttled) {
		/* Every used grant has a time: those without, now. */
		size_t used = (size_t)(grant.granted - unused);
		for (size_t i = jc->nwent; i < used; i++)
			jc->went_ms[i] = wall_ms();
		(void)spool_throttle_release(jc->sp, key, &grant, unused,
		    jc->went_ms, used);
	}
	free(jc->went_ms);
	jc->went_ms = NULL;
	jc->nwent = 0;
	return (size_t)grant.granted;
}

/* Sleeps until ms (unix time in ms) unless told to stop. */
static void
sleep_until_ms(int64_t ms)
{
	int64_t left = ms - wall_ms();
	if (left <= 0 || deliver_stop)
		return;
	struct timespec d = {left / 1000, (left % 1000) * 1000000};
	nanosleep(&d, NULL);	/* a signal ends it early: fine */
}

/*
 * Puts back what a throttle held. Mail held for the first time is
 * booked at the throttle's pace after what was booked before, so a big
 * backlog comes back a little at a time, as it can go; mail that comes
 * back from a booking and must wait again only waits for the throttle
 * (booking it again would push it behind the whole backlog). at_once:
 * due again now (priority mail took the turn, or the runner stops).
 */
static void
hold_back(struct job_context *jc, const struct nexthop *nh,
    const struct mxl_source *src, struct txn **list, size_t n,
    int64_t retry_ms, bool at_once)
{
	int64_t now_ms = wall_ms();
	int64_t first = retry_ms > now_ms ? retry_ms : now_ms;
	struct txn **fresh = xcalloc(n + 1, sizeof(*fresh));
	struct txn **again = xcalloc(n + 1, sizeof(*again));
	size_t nfresh = 0, nagain = 0;

	if (n == 0)
		goto out;
	if (at_once) {
		release_list(jc, list, n, now_ms, 0, false);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (list[i]->booked || nh->priority || !limits_set(&nh->limits))
			again[nagain++] = list[i];
		else
			fresh[nfresh++] = list[i];
	}
	/* The throttle's pace: one delivery every step. */
	int64_t step = 0;
	if (nh->limits.rate_count > 0)
		step = (int64_t)nh->limits.rate_period * 1000 /
		    nh->limits.rate_count;
	if (nh->limits.delay_ms > step)
		step = nh->limits.delay_ms;
	release_list(jc, again, nagain, first, step, true);
	int64_t until = nagain ? first : 0;
	if (nagain > 0) {
		int64_t last = first + step * (int64_t)(nagain - 1);
		if (last > jc->rep->hold_until_ms &&
		    last - now_ms <= JOB_HOLD_WAIT_MS)
			jc->rep->hold_until_ms = last;
	}
	if (nfresh > 0) {
		struct spool_throttle_limits tl = {nh->limits.concurrency,
		    nh->limits.rate_count, nh->limits.rate_period,
		    nh->limits.delay_ms};
		char key[400];
		int64_t booked = first;	/* not before the throttle allows */
		throttle_key(nh, src, key, sizeof(key));
		if (spool_throttle_book(jc->sp, key, &tl, (int)nfresh,
		    &booked, &step) != SPOOL_OK || booked < first)
			booked = first;
		int64_t last = booked + step * (int64_t)(nfresh - 1);
		if (last > jc->rep->hold_until_ms &&
		    last - now_ms <= JOB_HOLD_WAIT_MS)
			jc->rep->hold_until_ms = last;
		release_list(jc, fresh, nfresh, booked, step, true);
		if (until == 0 || booked < until)
			until = booked;
	}
	if (jc->rep->throttled_until_ms == 0 || until < jc->rep->throttled_until_ms)
		jc->rep->throttled_until_ms = until;
out:
	free(fresh);
	free(again);
}

static void
send_group(struct job_context *jc, const struct nexthop *nh, struct txn *txns,
    size_t n)
{
	/*
	 * The source is chosen, by weighted round robin, among those of the
	 * family tried first; the other family's addresses, if any, leave
	 * from the next source of that family. With no address the pool
	 * can send to, any source: delivery then says why nothing was
	 * tried.
	 */
	int fam = nexthop_first_family(nh);
	int other_fam = fam == AF_INET ? AF_INET6 : AF_INET;
	struct txn **list = xcalloc(n + 1, sizeof(*list));
	size_t next = 0;
	int64_t paced_ms = 0;

	for (size_t i = 0; i < n; i++)
		list[i] = &txns[i];
	const char *provider = nh->provider ? nh->provider->name : "-";
	size_t rechosen = 0;
	while (next < n) {
		int64_t now = time(NULL), wait = 0;
		char why[512] = "";
		int si = nexthop_ready_source(jc->sp, nh, fam, now, &wait, why,
		    sizeof(why));
		int so = fam == AF_UNSPEC ? -1 :
		    nexthop_next_source_family(jc->sp, nh, other_fam);
		if ((nh->pool && si < 0) || (nh->pool == NULL &&
		    (!shaping_provider_ready(jc->sp, provider, now, &wait, why,
		    sizeof(why)) || !shaping_source_ready(jc->sp, provider,
		    NULL, now, &wait, why, sizeof(why))))) {
			/*
			 * No source may send to the provider now (suspended,
			 * warmed up for the day, the provider deferred): the
			 * mail waits until one may, with no attempt counted;
			 * with every source switched off, for one.
			 */
			if (wait > 0) {
				log_set_component("shaping");
				log_info("%zu message%s for %s wait until the "
				    "provider takes mail again: %s", n - next,
				    n - next == 1 ? "" : "s", provider, why);
				log_set_component(NULL);
			}
			release_list(jc, list + next, n - next, (wait > 0 ?
			    wait : (int64_t)time(NULL) + 60) * 1000, 0, false);
			break;
		}
		const struct mxl_source *src = si >= 0 ?
		    &nh->pool->sources[si] : NULL;
		/* A lowered rate from a provider's reply, while it lasts. */
		struct nexthop shaped = *nh;
		shaping_limits(jc->sp, provider, src ? src->address :
		    SHAPING_NO_SOURCE, now, &shaped.limits);
		int64_t planned = (int64_t)(n - next);
		if (nh->limits.messages_per_connection > 0 &&
		    planned > nh->limits.messages_per_connection)
			planned = nh->limits.messages_per_connection;
		nexthop_count_sent(jc->sp, nh, si, planned);
		int64_t retry_ms = 0;
		size_t sent = 0;
		bool warm_spent = false;
		if (!deliver_stop)
			sent = send_one_connection(jc, &shaped, src, so >= 0 ?
			    &nh->pool->sources[so] : NULL, list + next,
			    n - next, &retry_ms, &warm_spent);
		if (warm_spent && rechosen++ <= (nh->pool ?
		    nh->pool->nsources : 0)) {
			/* Its cap was used up meanwhile: choose again. */
			nexthop_count_sent(jc->sp, nh, si, -planned);
			continue;
		}
		/*
		 * Mail back from a booking, and the throttle frees a delivery
		 * within the next moment: wait for it here (a few seconds a
		 * group at most), which paces "20/s" to the millisecond though
		 * due times are whole seconds. Mail held for the first time is
		 * booked instead, so a big backlog is sorted out quickly.
		 */
		int64_t now_ms = wall_ms();
		if (sent == 0 && retry_ms > 0 && !deliver_stop &&
		    (list[next]->booked || nh->priority) &&
		    retry_ms - now_ms <= 1500 && paced_ms < 3000 &&
		    (nh->priority || !priority_waiting(jc))) {
			nexthop_count_sent(jc->sp, nh, si, -planned);
			paced_ms += retry_ms > now_ms ? retry_ms - now_ms : 10;
			sleep_until_ms(retry_ms);
			continue;
		}
		nexthop_count_sent(jc->sp, nh, si, (int64_t)sent - planned);
		next += sent;
		/*
		 * Bulk yields to priority mail between connections, and
		 * --max-time ends the pass between connections too.
		 */
		bool preempt = next < n && (out_of_time(jc) ||
		    (!nh->priority && priority_waiting(jc)));
		if (sent == 0 || preempt || deliver_stop) {
			hold_back(jc, &shaped, src, list + next, n - next,
			    retry_ms, preempt || deliver_stop);
			break;
		}
	}
	free(list);
}

static int
compare_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

/* Moved mail ("queuerun move") goes in sessions of its own. */
static int
compare_move(const struct txn *x, const struct txn *y)
{
	int c = compare_opt(x->move_pool, y->move_pool);

	return c != 0 ? c : compare_opt(x->move_source, y->move_source);
}

/*
 * Where a move sends t at the next hop nh: a move made for one
 * provider's mail leaves the message's other recipients to their own
 * pools.
 */
static void
move_of(struct txn *t, const struct nexthop *nh)
{
	const struct spool_msg *env = &t->slot->env;
	bool applies = nexthop_move_applies(env, nh);

	t->move_pool = applies ? env->move_pool : NULL;
	t->move_source = applies ? env->move_source : NULL;
}

/*
 * Next hop first, then the priority lane, then lane by lane, then by
 * where a move sends them.
 */
static int
compare_txn(const void *a, const void *b)
{
	const struct txn *x = a, *y = b;
	int px = !(x->slot->lane && x->slot->lane->priority);
	int py = !(y->slot->lane && y->slot->lane->priority);

	if (x->hop != y->hop)
		return (x->hop > y->hop) - (x->hop < y->hop);
	if (px != py)
		return px - py;
	int c = strcmp(x->slot->env.lane, y->slot->env.lane);
	return c != 0 ? c : compare_move(x, y);
}

static void
fail_txns(struct job_context *jc, struct txn *txns, size_t n,
    enum dns_status st, const char *err)
{
	for (size_t i = 0; i < n; i++) {
		struct dlv_msg *m = &txns[i].m;
		for (size_t r = 0; r < m->nrcpts; r++) {
			m->rcpts[r].outcome = st == DNS_TEMPFAIL ? DLV_DEFER :
			    DLV_BOUNCE;
			m->rcpts[r].reply = xstrdup(err);
			/* RFC 3463 / RFC 7505 codes for DNS outcomes. */
			m->rcpts[r].status = st == DNS_TEMPFAIL ? "4.4.3" :
			    st == DNS_NULLMX ? "5.1.10" : "5.1.2";
		}
		snprintf(m->relay, sizeof(m->relay), "none");
		m->done = true;
		on_message_done(jc, m);
	}
}

/*
 * What the engine learns from a transaction: whether a server answered
 * (a 421 greeting counts as not, as in Postfix's qmgr), and how many
 * recipients went. Transactions handed back untried count for nothing.
 */
static void
count_outcome(struct job_report *rep, const struct txn *t)
{
	bool tried = false, answered = false;

	for (size_t r = 0; r < t->m.nrcpts; r++) {
		const struct dlv_rcpt *x = &t->m.rcpts[r];
		if (x->outcome == DLV_PENDING || x->outcome == DLV_SKIP)
			continue;
		tried = true;
		if (x->outcome == DLV_SENT)
			rep->delivered++;
		if (x->smtp_reply && !(x->reply && strncmp(x->reply, "421",
		    3) == 0))
			answered = true;
	}
	if (!tried || (deliver_stop && !answered))
		return;
	if (answered)
		rep->answered++;
	else
		rep->unanswered++;
}

/* One recipient domain of a job: its next hop and its messages. */
struct domain_part {
	struct nexthop nh;
	struct msg_slot *slots;
	size_t nslots;
	struct txn *txns;
	size_t ntxns, cap;
	size_t hop;		/* the part whose next hop it shares */
};

/*
 * Two domains go the same way when they reach the same hosts, in the
 * same order, on the same port, for the same provider: then one
 * connection carries mail for both (a.test and b.test hosted on one MX).
 */
static bool
same_next_hop(const struct nexthop *a, const struct nexthop *b)
{
	if (a->status != DNS_OK || b->status != DNS_OK || a->via != b->via ||
	    a->port != b->port || a->provider != b->provider ||
	    a->hosts.nhosts != b->hosts.nhosts)
		return false;
	/* Not under two MTA-STS policies, nor one and none. */
	if (a->sts.have != b->sts.have || (a->sts.have &&
	    a->sts.policy.mode != b->sts.policy.mode))
		return false;
	for (size_t i = 0; i < a->hosts.nhosts; i++)
		if (strcasecmp(a->hosts.hosts[i].name,
		    b->hosts.hosts[i].name) != 0)
			return false;
	return true;
}

static void
prepare_domain(struct job_context *jc, struct spool_work *work, size_t n,
    struct domain_part *part)
{
	nexthop_find(jc->cfg, &jc->dns, work[0].domain, &part->nh);
	nexthop_apply_mta_sts(jc->cfg, &jc->dns, jc->sp, work[0].domain,
	    &part->nh);
	if (part->nh.sts.have && part->nh.sts.policy.mode == MTASTS_TESTING &&
	    part->nh.sts_unmatched[0]) {
		log_set_component("smtp");
		log_warn("MTA-STS policy of %s (mode testing, id %s) would have "
		    "failed: MX hosts not in the policy: %s", work[0].domain,
		    part->nh.sts.policy.id, part->nh.sts_unmatched);
		log_set_component(NULL);
	}
	part->slots = xcalloc(n + 1, sizeof(*part->slots));
	size_t *first = xcalloc(n + 1, sizeof(size_t));
	part->nslots = load_slots(jc, work, n, part->slots, first);
	for (size_t i = 0; i < part->nslots; i++) {
		/* first[i] indexes work; items of slot i run to the next id. */
		size_t from = first[i], to = from;
		while (to < n && strcmp(work[to].id,
		    part->slots[i].env.id) == 0)
			to++;
		struct mxl_limits lim = route_limits(part->slots[i].lane,
		    part->nh.provider);
		add_txns(&part->slots[i], &work[from], to - from,
		    lim.recipients_per_message, &part->txns, &part->ntxns,
		    &part->cap);
	}
	free(first);
}

static int
compare_work(const void *a, const void *b)
{
	const struct spool_work *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);

	if (c == 0)
		c = strcmp(x->id, y->id);
	if (c == 0)
		c = (x->index > y->index) - (x->index < y->index);
	return c;
}

/*
 * "host:port" for nh, "" when it has no host: of the hosts of the most
 * preferred MX level, the first by name (their order is random), so
 * every look-up of a domain gives the same key.
 */
static void
next_hop_key(const struct nexthop *nh, char *out, size_t len)
{
	const char *first = NULL;

	out[0] = '\0';
	if (nh->status != DNS_OK || nh->hosts.nhosts == 0)
		return;
	for (size_t i = 0; i < nh->hosts.nhosts; i++)
		if (nh->hosts.hosts[i].preference ==
		    nh->hosts.hosts[0].preference && (first == NULL ||
		    strcasecmp(nh->hosts.hosts[i].name, first) < 0))
			first = nh->hosts.hosts[i].name;
	snprintf(out, len, "%s:%d", first, nh->port);
}

void
job_next_hop_key(struct job_context *jc, const char *domain, char *out,
    size_t len)
{
	struct nexthop nh;

	nexthop_find(jc->cfg, &jc->dns, domain, &nh);
	next_hop_key(&nh, out, len);
	nexthop_free(&nh);
}

static void
note_mx_key(struct job_context *jc, const struct nexthop *nh)
{
	if (jc->rep->mx_key[0] == '\0')
		next_hop_key(nh, jc->rep->mx_key, sizeof(jc->rep->mx_key));
}

static char *suppressed_why(const struct spool_suppression *e);

/* One suppressed recipient: bounced, logged, its bounce on its way. */
static void
bounce_one_suppressed(struct job_context *jc, const struct spool_work *w,
    const struct spool_msg *msg, const struct spool_suppression *e,
    int64_t now)
{
	char *why = suppressed_why(e);
	char *text = xasprintf("recipient suppressed %s", why);
	const char *class = e->class && *e->class ? e->class : "policy";
	struct spool_result res = {w->index, RCPT_BOUNCED, 0, false, text,
	    "none", "5.1.1", false, class, NULL};
	bool all_final = false;
	char d[16], a[16];

	/*
	 * Before routing: no source yet; the provider is the one the
	 * domain names without an MX look-up (as queuerun status counts).
	 */
	char pwhy[256];
	const struct mxl_provider *prov = route_provider(jc->cfg, w->domain,
	    NULL, 0, pwhy, sizeof(pwhy));
	struct spool_stats_where where = {prov ? prov->name : NULL, NULL,
	    NULL, true};
	if (spool_record_outcomes(jc->sp, w->id, &where, &res, 1, now,
	    &all_final) == SPOOL_OK) {
		fmt_delay(d, sizeof(d), now > msg->arrival ?
		    (double)(now - msg->arrival) : 0);
		fmt_delay(a, sizeof(a), now > w->due ? (double)(now - w->due) :
		    0);
		log_set_component("smtp");
		log_info("%s: to=<%s>, relay=none, delay=%s, delays=%s/0/0/0, "
		    "dsn=5.1.1, status=bounced (suppressed %s), class=%s", w->id,
		    w->address, d, a, why, class);
		log_set_component(NULL);
		if (all_final && jc->alone)
			notice_finish(jc->sp, jc->cfg, w->id);
		else
			notice_bounce_now(jc->sp, jc->cfg, w->id);
	}
	free(text);
	free(why);
}

/*
 * "until 2026-12-12 10:00:00 UTC (550 5.1.1 ... user unknown)": why a
 * suppressed recipient is not tried.
 */
static char *
suppressed_why(const struct spool_suppression *e)
{
	char until[48] = "indefinitely";
	const char *reason = e->reason && *e->reason ? e->reason :
	    e->how == SUPPRESS_BOUNCE ? "an earlier bounce" :
	    "added by the administrator";

	if (e->expires != 0) {
		time_t t = (time_t)e->expires;
		strftime(until, sizeof(until), "until %Y-%m-%d %H:%M:%S UTC",
		    gmtime(&t));
	}
	return xasprintf("%s (%s)", until, reason);
}

/*
 * A recipient on the suppression list is bounced here, when a runner
 * has claimed it and before any look-up or connection: a new message's
 * recipients are claimed right after pickup, so they bounce at once,
 * and one queued before its address was suppressed bounces at its next
 * attempt instead of being sent. A lane with suppress = false is not
 * looked at. Returns how many items of work are left to deliver (the
 * bounced ones are moved to the end, for the caller to free).
 */
static size_t
bounce_suppressed(struct job_context *jc, struct spool_work *work, size_t n)
{
	size_t kept = 0;
	int64_t now = time(NULL);

	for (size_t i = 0; i < n; i++) {
		struct spool_suppression e;
		struct spool_msg msg;
		bool bounce = false;

		if (spool_suppress_check(jc->sp, work[i].address, now, &e) ==
		    SPOOL_OK) {
			if (spool_get(jc->sp, work[i].id, &msg, NULL, NULL) ==
			    SPOOL_OK) {
				const struct mxl_lane *lane = config_lane(jc->cfg,
				    msg.lane);
				bounce = lane == NULL || lane->suppress;
				if (bounce)
					bounce_one_suppressed(jc, &work[i], &msg,
					    &e, now);
				spool_msg_free(&msg);
			}
			spool_suppression_clear(&e);
		}
		if (!bounce) {
			if (kept != i) {
				struct spool_work tmp = work[kept];
				work[kept] = work[i];
				work[i] = tmp;
			}
			kept++;
		}
	}
	return kept;
}

/* Moves work[i] to the end of the kept part (see gate_content). */
static void
keep_work(struct spool_work *work, size_t i, size_t *kept)
{
	if (*kept != i) {
		struct spool_work tmp = work[*kept];
		work[*kept] = work[i];
		work[i] = tmp;
	}
	(*kept)++;
}

/*
 * The content check gave no verdict and the lane says defer: each of
 * the message's claimed recipients is deferred as after a failed
 * attempt, or, once the message has been queued for
 * maximal_queue_lifetime, bounces as expired (with its notice).
 */
static void
defer_unchecked(struct job_context *jc, struct spool_work *work, size_t n,
    size_t first, const struct spool_msg *msg, const char *why)
{
	int64_t now = time(NULL);
	bool expired = now - msg->arrival >= jc->cfg->maximal_queue_lifetime;
	char *text = expired ? xasprintf("message expired in the queue: %s",
	    why) : xstrdup(why);
	bool all_final = false, any = false;

	for (size_t k = first; k < n; k++) {
		if (strcmp(work[k].id, work[first].id) != 0)
			continue;
		struct spool_result res = {work[k].index, expired ?
		    RCPT_BOUNCED : RCPT_QUEUED, now + backoff(jc->cfg,
		    work[k].attempts), true, text, "none", expired ? "5.4.7" :
		    "4.7.0", false, NULL, NULL};
		if (spool_record_results(jc->sp, work[k].id, &res, 1, now,
		    &all_final) != SPOOL_OK)
			continue;
		any = any || expired;
		log_set_component("smtp");
		log_info("%s: to=<%s>, relay=none, delay=%lld, "
		    "delays=0/0/0/0, dsn=%s, status=%s (%s)", work[k].id,
		    work[k].address, (long long)(now - msg->arrival),
		    res.status, expired ? "expired" : "deferred", text);
		log_set_component(NULL);
	}
	if (any) {
		if (all_final && jc->alone)
			notice_finish(jc->sp, jc->cfg, msg->id);
		else
			notice_bounce_now(jc->sp, jc->cfg, msg->id);
	}
	free(text);
}

/*
 * The lanes' content gate (spamcheck.h), once for each message among
 * the claimed work, before any look-up or connection: a message held
 * leaves the job (its claims went with the hold), one deferred has
 * its recipients deferred (defer_unchecked). Returns how many items
 * are left to deliver, moved to the front like bounce_suppressed()
 * does.
 */
static size_t
gate_content(struct job_context *jc, struct spool_work *work, size_t n)
{
	struct strmap decided = {NULL, NULL, 0, 0};
	size_t kept = 0;

	if (!spamcheck_configured(jc->cfg))
		return n;
	for (size_t i = 0; i < n; i++) {
		size_t gate;
		if (!strmap_get(&decided, work[i].id, &gate)) {
			struct spool_msg msg;
			char why[300];
			gate = SPAM_GATE_PASS;
			if (spool_get(jc->sp, work[i].id, &msg, NULL, NULL) ==
			    SPOOL_OK) {
				gate = spamcheck_gate(jc->sp, jc->cfg, &msg,
				    why, sizeof(why));
				if (gate == SPAM_GATE_DEFER)
					defer_unchecked(jc, work, n, i, &msg,
					    why);
				spool_msg_free(&msg);
			}
			strmap_put(&decided, work[i].id, gate);
		}
		if (gate == SPAM_GATE_PASS)
			keep_work(work, i, &kept);
		else if (gate == SPAM_GATE_HELD)	/* settled: no key */
			hand_back(jc, work[i].id, &work[i].index, 1,
			    time(NULL), false);
	}
	strmap_free(&decided);
	return kept;
}

void
job_deliver(struct job_context *jc, struct spool_work *work, size_t n,
    int64_t claimed_ms, struct job_report *rep)
{
	struct domain_part *parts = xcalloc(n + 1, sizeof(*parts));
	size_t nparts = 0, total = 0;

	memset(rep, 0, sizeof(*rep));
	jc->rep = rep;
	jc->claimed_at = claimed_ms / 1000;
	jc->claimed_mono = mono_seconds() -
	    (double)(wall_ms() - claimed_ms) / 1000.0;
	n = bounce_suppressed(jc, work, n);
	n = gate_content(jc, work, n);
	qsort(work, n, sizeof(*work), compare_work);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(work[j].domain, work[i].domain) == 0)
			j++;
		struct domain_part *part = &parts[nparts];
		prepare_domain(jc, &work[i], j - i, part);
		note_mx_key(jc, &part->nh);
		part->hop = nparts;
		for (size_t p = 0; p < nparts; p++)
			if (same_next_hop(&parts[p].nh, &part->nh)) {
				part->hop = p;
				break;
			}
		if (part->nh.status != DNS_OK) {
			jc->provider = part->nh.provider ?
			    part->nh.provider->name : NULL;
			jc->pool = part->nh.pool ? part->nh.pool->name : NULL;
			fail_txns(jc, part->txns, part->ntxns, part->nh.status,
			    part->nh.err);
			jc->provider = NULL;
			jc->pool = NULL;
		}
		else
			total += part->ntxns;
		nparts++;
		i = j;
	}
	/* One list of every transaction, by next hop, then by lane. */
	struct txn *txns = xcalloc(total + 1, sizeof(*txns));
	size_t ntxns = 0;
	for (size_t p = 0; p < nparts; p++) {
		if (parts[p].nh.status == DNS_OK)
			for (size_t t = 0; t < parts[p].ntxns; t++) {
				txns[ntxns] = parts[p].txns[t];
				txns[ntxns].hop = parts[p].hop;
				move_of(&txns[ntxns++], &parts[p].nh);
			}
		else
			free_txns(parts[p].txns, parts[p].ntxns);
		/* The copies own what the transactions point to. */
		if (parts[p].nh.status == DNS_OK)
			free(parts[p].txns);
		parts[p].txns = NULL;
	}
	qsort(txns, ntxns, sizeof(*txns), compare_txn);
	for (size_t i = 0; i < ntxns && !deliver_stop;) {
		size_t j = i;
		while (j < ntxns && txns[j].hop == txns[i].hop &&
		    strcmp(txns[j].slot->env.lane, txns[i].slot->env.lane) ==
		    0 && compare_move(&txns[j], &txns[i]) == 0)
			j++;
		struct nexthop *nh = &parts[txns[i].hop].nh;
		nexthop_set_lane(jc->cfg, nh, txns[i].slot->lane);
		nexthop_set_move(jc->cfg, nh, txns[i].move_pool,
		    txns[i].move_source);
		send_group(jc, nh, &txns[i], j - i);
		i = j;
	}
	if (deliver_stop)
		release_txns(jc, txns, ntxns, (int64_t)time(NULL) * 1000);
	for (size_t i = 0; i < ntxns; i++)
		count_outcome(rep, &txns[i]);
	free_txns(txns, ntxns);
	for (size_t p = 0; p < nparts; p++) {
		for (size_t i = 0; i < parts[p].nslots; i++) {
			spool_msg_free(&parts[p].slots[i].env);
			spool_rcpts_free(parts[p].slots[i].rcpts,
			    parts[p].slots[i].nrcpts);
		}
		free(parts[p].slots);
		nexthop_free(&parts[p].nh);
	}
	free(parts);
	forget_signatures(jc);
	jc->rep = NULL;
}

struct job_context *
job_context_new(const struct mxl_config *cfg, struct spool *sp,
    const char *pickup_id, bool alone, time_t deadline)
{
	struct job_context *jc = xcalloc(1, sizeof(*jc));
	char err[256];

	jc->cfg = cfg;
	jc->sp = sp;
	jc->pickup_id = pickup_id;
	jc->alone = alone;
	jc->deadline = deadline;
	if (dns_resolver_init(&jc->dns, cfg->resolver, err, sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "resolver = \"%s\": %s", cfg->resolver,
		    err);
	jc->dlv = (struct dlv_config){
		.helo = cfg->smtp_helo_name, .port = cfg->smtp_port,
		.tls = cfg->smtp_tls,
		.connect_timeout = cfg->smtp_connect_timeout,
		.helo_timeout = cfg->smtp_helo_timeout,
		.mail_timeout = cfg->smtp_mail_timeout,
		.data_init_timeout = cfg->smtp_data_init_timeout,
		.data_xfer_timeout = cfg->smtp_data_xfer_timeout,
		.data_done_timeout = cfg->smtp_data_done_timeout,
	};
	return jc;
}

void
job_context_free(struct job_context *jc)
{
	free(jc);
}

void
job_finish_pending(struct job_context *jc, size_t most,
    bool (*stop)(void *), void *stop_ctx)
{
	struct job_report rep;
	size_t rounds = most == 0 ? 1000 : (most + FINISH_BATCH - 1) /
	    FINISH_BATCH;

	memset(&rep, 0, sizeof(rep));
	jc->rep = &rep;
	finish_pending(jc, (int)rounds, stop, stop_ctx);
	jc->rep = NULL;
}

void
job_hand_back(struct job_context *jc, const struct spool_work *w,
    int64_t next_try)
{
	hand_back(jc, w->id, &w->index, 1, next_try, w->held);
}
