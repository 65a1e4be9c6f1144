/*
 * NAME
 *	shaping - reacting to what providers say, and IP warm-up
 * DESCRIPTION
 *	See shaping.h. The records are the spool's (spool_shaping_*); this
 *	file decides what they mean and logs every start and end. Updates
 *	go through spool_shaping_update(), whose callbacks only decide
 *	(they may run twice when a transaction is retried): the logging is
 *	done afterwards from what they reported.
 */
#include "queuerun/shaping.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"

#define DAY	86400

static void
fmt_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
log_shaping(bool warn, const char *fmt, ...) MXL_PRINTF(2, 3);

static void
log_shaping(bool warn, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_set_component("shaping");
	if (warn)
		log_warn("%s", line);
	else
		log_info("%s", line);
	log_set_component(NULL);
}

/* What ran out (or was ended) in one record, for the log. */
struct ending {
	int64_t now;
	bool all;			/* resume: end everything */
	bool suspension, throttle;	/* out: they ended */
	struct spool_shaping old;	/* out: the record before */
};

static bool
record_empty(const struct spool_shaping *st)
{
	return st->suspended_until == 0 && st->throttle_until == 0 &&
	    st->blocked_since == 0;
}

static enum spool_shaping_do
end_states(void *ctx, struct spool_shaping *st, bool found)
{
	struct ending *e = ctx;

	e->suspension = e->throttle = false;
	e->old = *st;
	if (!found)
		return SPOOL_SHAPING_KEEP;
	if (st->suspended_until && (e->all || st->suspended_until <= e->now)) {
		st->suspended_until = 0;
		e->suspension = true;
	}
	if (st->throttle_until && (e->all || st->throttle_until <= e->now)) {
		st->throttle_until = 0;
		st->rate_count = 0;
		st->rate_period = 0;
		e->throttle = true;
	}
	if (!e->suspension && !e->throttle)
		return SPOOL_SHAPING_KEEP;
	return record_empty(st) ? SPOOL_SHAPING_DELETE : SPOOL_SHAPING_STORE;
}

static void
log_endings(const struct ending *e, const char *provider, const char *source,
    const char *how)
{
	if (e->suspension && source == NULL)
		log_shaping(false, "provider %s no longer deferred (rule %s): "
		    "%s", provider, e->old.rule, how);
	else if (e->suspension)
		log_shaping(false, "source %s no longer suspended for %s (rule "
		    "%s): %s", source, provider, e->old.rule, how);
	if (e->throttle)
		log_shaping(false, "source %s no longer throttled for %s (rule "
		    "%s): %s", source ? source : SHAPING_NO_SOURCE, provider,
		    e->old.throttle_rule, how);
}

/* Ends what has run out in one record; true if something is left. */
static void
expire_one(struct spool *sp, const char *provider, const char *source,
    int64_t now)
{
	struct ending e = {.now = now};

	if (spool_shaping_update(sp, provider, source, end_states, &e) ==
	    SPOOL_OK)
		log_endings(&e, provider, source, "its time ran out");
}

/* The record as in force now; what ran out is ended (and logged). */
static bool
current(struct spool *sp, const char *provider, const char *source,
    int64_t now, struct spool_shaping *st)
{
	if (spool_shaping_get(sp, provider, source, st) != SPOOL_OK)
		return false;
	if ((st->suspended_until && st->suspended_until <= now) ||
	    (st->throttle_until && st->throttle_until <= now)) {
		expire_one(sp, provider, source, now);
		if (spool_shaping_get(sp, provider, source, st) != SPOOL_OK)
			return false;
	}
	return true;
}

struct reaction {
	const struct reply_rule *rule;
	const char *reply;
	int64_t now;
	int64_t already;	/* out: in force by this rule until then */
};

static enum spool_shaping_do
start_state(void *ctx, struct spool_shaping *st, bool found)
{
	struct reaction *r = ctx;
	int64_t until = r->now + r->rule->action_seconds;
	bool suspends = r->rule->action != REPLY_ACTION_THROTTLE;

	(void)found;
	/*
	 * Connections opened before it started meet the same reply: the
	 * reaction in force stands, and is not logged again.
	 */
	r->already = 0;
	if (suspends && st->suspended_until > r->now &&
	    strcmp(st->rule, r->rule->name) == 0)
		r->already = st->suspended_until;
	else if (!suspends && st->throttle_until > r->now &&
	    strcmp(st->throttle_rule, r->rule->name) == 0)
		r->already = st->throttle_until;
	if (r->already)
		return SPOOL_SHAPING_KEEP;
	switch (r->rule->action) {
	case REPLY_ACTION_SUSPEND:
	case REPLY_ACTION_DEFER_PROVIDER:
		if (st->suspended_until < until)
			st->suspended_until = until;
		snprintf(st->rule, sizeof(st->rule), "%s", r->rule->name);
		snprintf(st->reply, sizeof(st->reply), "%s", r->reply);
		break;
	case REPLY_ACTION_THROTTLE:
		if (st->throttle_until < until)
			st->throttle_until = until;
		st->rate_count = r->rule->rate_count;
		st->rate_period = r->rule->rate_period;
		snprintf(st->throttle_rule, sizeof(st->throttle_rule), "%s",
		    r->rule->name);
		snprintf(st->throttle_reply, sizeof(st->throttle_reply), "%s",
		    r->reply);
		break;
	default:
		return SPOOL_SHAPING_KEEP;
	}
	return SPOOL_SHAPING_STORE;
}

static const char *
rate_unit(int period)
{
	return period == 1 ? "s" : period == 60 ? "m" : period == 3600 ? "h" :
	    "d";
}

enum shaping_effect
shaping_react(struct spool *sp, const char *provider, const char *source,
    const struct reply_rule *rule, const char *reply, int64_t now,
    int64_t *until)
{
	bool fire = false;
	char when[64];

	*until = 0;
	if (rule == NULL || rule->action == REPLY_ACTION_NONE)
		return SHAPING_NONE;
	if (spool_shaping_match(sp, provider, source, rule->name, now,
	    rule->after_count, rule->after_window, &fire) != SPOOL_OK || !fire)
		return SHAPING_NONE;
	struct reaction r = {rule, reply ? reply : "", now, 0};
	bool whole = rule->action == REPLY_ACTION_DEFER_PROVIDER;
	if (spool_shaping_update(sp, provider, whole ? NULL : source,
	    start_state, &r) != SPOOL_OK)
		return SHAPING_NONE;
	*until = r.already ? r.already : now + rule->action_seconds;
	if (r.already)
		return rule->action == REPLY_ACTION_SUSPEND ?
		    SHAPING_SOURCE_STOPPED : rule->action ==
		    REPLY_ACTION_DEFER_PROVIDER ? SHAPING_PROVIDER_STOPPED :
		    SHAPING_THROTTLED;
	fmt_time(*until, when, sizeof(when));
	switch (rule->action) {
	case REPLY_ACTION_SUSPEND:
		log_shaping(false, "source %s suspended for %s until %s by rule "
		    "%s: %s", source, provider, when, rule->name, r.reply);
		return SHAPING_SOURCE_STOPPED;
	case REPLY_ACTION_DEFER_PROVIDER:
		log_shaping(false, "provider %s deferred until %s by rule %s "
		    "(reply to source %s): %s", provider, when, rule->name,
		    source, r.reply);
		return SHAPING_PROVIDER_STOPPED;
	case REPLY_ACTION_THROTTLE:
		log_shaping(false, "source %s throttled to %ld/%s for %s until "
		    "%s by rule %s: %s", source, rule->rate_count,
		    rate_unit(rule->rate_period), provider, when, rule->name,
		    r.reply);
		return SHAPING_THROTTLED;
	default:
		return SHAPING_NONE;
	}
}

bool
shaping_provider_ready(struct spool *sp, const char *provider, int64_t now,
    int64_t *until, char *why, size_t whylen)
{
	struct spool_shaping st;
	char when[64];

	*until = 0;
	if (!current(sp, provider, NULL, now, &st) || st.suspended_until <= now)
		return true;
	*until = st.suspended_until;
	fmt_time(st.suspended_until, when, sizeof(when));
	snprintf(why, whylen, "provider %s deferred until %s by rule %s",
	    provider, when, st.rule);
	return false;
}

bool
shaping_warm_cap(const struct mxl_source *src, int64_t now, int64_t *day,
    long *cap)
{
	if (src == NULL || src->nwarmup == 0)
		return false;
	int64_t k = now < src->warmup_start ? 0 : (now - src->warmup_start) /
	    DAY;
	if (k >= (int64_t)src->nwarmup)
		return false;	/* warm */
	*day = k;
	*cap = src->warmup_caps[k];
	return true;
}

/* The start of the next UTC day. */
static int64_t
next_day(int64_t now)
{
	return (now / DAY + 1) * DAY;
}

bool
shaping_source_ready(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t *until, char *why,
    size_t whylen)
{
	const char *name = src ? src->address : SHAPING_NO_SOURCE;
	struct spool_shaping st;
	char when[64];
	int64_t day;
	long cap;

	*until = 0;
	if (current(sp, provider, name, now, &st) &&
	    st.suspended_until > now) {
		*until = st.suspended_until;
		fmt_time(st.suspended_until, when, sizeof(when));
		snprintf(why, whylen, "source %s suspended for %s until %s by "
		    "rule %s", name, provider, when, st.rule);
		return false;
	}
	if (shaping_warm_cap(src, now, &day, &cap)) {
		uint64_t count = 0;
		if (spool_shaping_warm(sp, name, provider, day, cap, 0, &count,
		    NULL) == SPOOL_OK && (int64_t)count >= cap) {
			*until = next_day(now);
			snprintf(why, whylen, "source %s warming up: day %lld's "
			    "cap of %ld for %s reached", name,
			    (long long)day + 1, cap, provider);
			return false;
		}
	}
	*until = 0;
	return true;
}

void
shaping_limits(struct spool *sp, const char *provider, const char *source,
    int64_t now, struct mxl_limits *l)
{
	struct spool_shaping st;

	if (!current(sp, provider, source, now, &st) ||
	    st.throttle_until <= now || st.rate_count <= 0 ||
	    st.rate_period <= 0)
		return;
	/* The lower of the two rates: a reaction never speeds things up. */
	if (l->rate_count == 0 || (double)st.rate_count / st.rate_period <
	    (double)l->rate_count / l->rate_period) {
		l->rate_count = st.rate_count;
		l->rate_period = st.rate_period;
	}
}

int64_t
shaping_warm_take(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t want)
{
	int64_t day, granted = 0;
	long cap;
	uint64_t count;

	if (!shaping_warm_cap(src, now, &day, &cap))
		return want;
	if (spool_shaping_warm(sp, src->address, provider, day, cap, want,
	    &count, &granted) != SPOOL_OK)
		return 0;	/* unknown: the cap holds */
	if ((int64_t)count >= cap && granted > 0)
		log_shaping(false, "source %s warming up: day %lld's cap of %ld "
		    "for %s reached; the pool's other sources take over until "
		    "the next day", src->address, (long long)day + 1, cap,
		    provider);
	return granted;
}

void
shaping_warm_give_back(struct spool *sp, const char *provider,
    const struct mxl_source *src, int64_t now, int64_t n)
{
	int64_t day;
	long cap;
	uint64_t count;

	if (n > 0 && shaping_warm_cap(src, now, &day, &cap))
		(void)spool_shaping_warm(sp, src->address, provider, day, cap,
		    -n, &count, NULL);
}

struct block_note {
	bool blocked;
	const char *reply;
	int64_t now;
	bool warn;		/* out */
	int64_t since;		/* out */
};

static enum spool_shaping_do
note_blocks(void *ctx, struct spool_shaping *st, bool found)
{
	struct block_note *b = ctx;

	b->warn = false;
	if (!b->blocked) {
		if (!found || (st->blocked_since == 0 && !st->listed_warned))
			return SPOOL_SHAPING_KEEP;
		st->blocked_since = 0;
		st->listed_warned = false;
		return record_empty(st) ? SPOOL_SHAPING_DELETE :
		    SPOOL_SHAPING_STORE;
	}
	if (st->blocked_since == 0) {
		st->blocked_since = b->now;
		return SPOOL_SHAPING_STORE;
	}
	if (st->listed_warned || b->now - st->blocked_since < DAY)
		return SPOOL_SHAPING_KEEP;
	st->listed_warned = true;
	b->warn = true;
	b->since = st->blocked_since;
	return SPOOL_SHAPING_STORE;
}

void
shaping_note_connection(struct spool *sp, const char *provider,
    const char *source, bool blocked, const char *reply, int64_t now)
{
	struct block_note b = {blocked, reply, now, false, 0};
	struct spool_shaping st;
	char since[64];

	/* The common case, nothing to forget, costs a read, not a write. */
	if (!blocked && (spool_shaping_get(sp, provider, source, &st) !=
	    SPOOL_OK || (st.blocked_since == 0 && !st.listed_warned)))
		return;
	if (spool_shaping_update(sp, provider, source, note_blocks, &b) !=
	    SPOOL_OK || !b.warn)
		return;
	fmt_time(b.since, since, sizeof(since));
	log_shaping(true, "source %s probably listed by %s: nothing but blocks "
	    "since %s (last: %s)", source, provider, since, reply ? reply :
	    "");
}

struct resume_ctx {
	struct spool *sp;
	const char *provider;
	const char *source;
	char (*keys)[2][300];
	size_t n;
};

static int
collect(void *ctx, const char *provider, const char *source,
    const struct spool_shaping *st)
{
	struct resume_ctx *r = ctx;

	if ((r->provider && strcmp(provider, r->provider) != 0) ||
	    (r->source && (source == NULL || strcmp(source, r->source) != 0)))
		return 0;
	if (st->suspended_until == 0 && st->throttle_until == 0)
		return 0;
	r->keys = xrealloc(r->keys, (r->n + 1) * sizeof(*r->keys));
	snprintf(r->keys[r->n][0], 300, "%s", provider);
	snprintf(r->keys[r->n][1], 300, "%s", source ? source : "");
	r->n++;
	return 0;
}

static int
end_matching(struct spool *sp, const char *provider, const char *source,
    bool all, int64_t now, int *ended, const char *how)
{
	struct resume_ctx r = {sp, provider, source, NULL, 0};
	int rc = 0;

	if (ended)
		*ended = 0;
	if (spool_shaping_scan(sp, collect, &r) != SPOOL_OK)
		return SPOOL_ERR;
	for (size_t i = 0; i < r.n; i++) {
		struct ending e = {.now = now, .all = all};
		const char *src = r.keys[i][1][0] ? r.keys[i][1] : NULL;
		if (spool_shaping_update(sp, r.keys[i][0], src, end_states,
		    &e) != SPOOL_OK) {
			rc = SPOOL_ERR;
			continue;
		}
		log_endings(&e, r.keys[i][0], src, how);
		if (ended)
			*ended += e.suspension + e.throttle;
	}
	free(r.keys);
	return rc;
}

int
shaping_resume(struct spool *sp, const char *provider, const char *source,
    int *ended)
{
	return end_matching(sp, provider, source, true, time(NULL), ended,
	    "resumed by queuerun resume");
}

void
shaping_expire(struct spool *sp, int64_t now)
{
	(void)end_matching(sp, NULL, NULL, false, now, NULL,
	    "its time ran out");
}

void
shaping_describe(struct spool *sp, const char *provider,
    const struct mxl_pool *pool, int64_t now, FILE *out)
{
	struct spool_shaping st;
	char when[64];

	if (sp == NULL)
		return;
	if (spool_shaping_get(sp, provider, NULL, &st) == SPOOL_OK &&
	    st.suspended_until > now) {
		fmt_time(st.suspended_until, when, sizeof(when));
		fprintf(out, "  shaping: provider %s deferred until %s by rule "
		    "%s: %s\n", provider, when, st.rule, st.reply);
	}
	size_t n = pool ? pool->nsources : 0;
	for (size_t i = 0; i <= n; i++) {
		const struct mxl_source *src = i < n ? &pool->sources[i] : NULL;
		const char *name = src ? src->address : SHAPING_NO_SOURCE;
		if (i == n && pool != NULL)
			break;	/* the kernel's choice only without a pool */
		if (spool_shaping_get(sp, provider, name, &st) == SPOOL_OK) {
			if (st.suspended_until > now) {
				fmt_time(st.suspended_until, when,
				    sizeof(when));
				fprintf(out, "  shaping: source %s suspended "
				    "for %s until %s by rule %s: %s\n", name,
				    provider, when, st.rule, st.reply);
			}
			if (st.throttle_until > now) {
				fmt_time(st.throttle_until, when,
				    sizeof(when));
				fprintf(out, "  shaping: source %s throttled to "
				    "%ld/%s for %s until %s by rule %s: %s\n",
				    name, st.rate_count,
				    rate_unit(st.rate_period), provider, when,
				    st.throttle_rule, st.throttle_reply);
			}
		}
		int64_t day;
		long cap;
		uint64_t count = 0;
		if (src && shaping_warm_cap(src, now, &day, &cap)) {
			(void)spool_shaping_warm(sp, name, provider, day, cap,
			    0, &count, NULL);
			fprintf(out, "  warmup: source %s day %lld of %zu, cap "
			    "%ld/d for %s, sent today %llu%s\n", name,
			    (long long)day + 1, src->nwarmup, cap, provider,
			    (unsigned long long)count, (int64_t)count >= cap ?
			    " (cap reached: the pool's other sources take "
			    "over)" : "");
		} else if (src && src->nwarmup > 0) {
			fprintf(out, "  warmup: source %s warm (schedule of %zu "
			    "days done)\n", name, src->nwarmup);
		}
	}
}
