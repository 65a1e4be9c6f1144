/*
 * NAME
 *	status - "queuerun status": the queue as it is now
 * DESCRIPTION
 *	See status.h. One walk of the queue, figures kept per message
 *	first so that a message counts once per state, then added to its
 *	lane's and providers' rows.
 */
#include "queuerun/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "lib/escape.h"
#include "lib/log.h"
#include "queuerun/limits.h"
#include "queuerun/shaping.h"
#include "route/route.h"
#include "spool/stats.h"

const char *const status_state_names[STATUS_NSTATES] = {"due", "active",
	"deferred", "held"};

struct gather {
	const struct mxl_config *cfg;
	struct queue_status *st;
};

static enum status_state
state_of(const struct spool_msg *msg, const struct spool_rcpt *r, int64_t now)
{
	if (msg->flags & SPOOL_MSG_HELD)
		return STATUS_HELD;
	if (r->state == RCPT_ACTIVE && r->lease_until > now)
		return STATUS_ACTIVE;
	if (r->state == RCPT_ACTIVE || r->next_try <= now)
		return STATUS_DUE;
	return STATUS_DEFERRED;
}

static const char *
provider_of(const struct mxl_config *cfg, const char *address)
{
	const char *at = strrchr(address, '@');
	char why[256];
	char domain[256];

	snprintf(domain, sizeof(domain), "%s", at ? at + 1 : "");
	str_lower(domain);
	const struct mxl_provider *p = route_provider(cfg, domain, NULL, 0, why,
	    sizeof(why));
	return p ? p->name : STATS_NONE;
}

static void
add_state(struct stats_table *t, const char *key, enum status_state s,
    uint64_t msgs, uint64_t rcpts)
{
	char name[32];

	snprintf(name, sizeof(name), "%s_messages", status_state_names[s]);
	stats_table_add(t, key, name, msgs);
	snprintf(name, sizeof(name), "%s_recipients", status_state_names[s]);
	stats_table_add(t, key, name, rcpts);
}

/*
 * The source a pending recipient is tied to: the one a move sends the
 * message from, else the one its last attempt left from, else none
 * yet (the source is chosen per connection).
 */
static const char *
source_of(const struct mxl_config *cfg, const struct spool_msg *msg,
    const struct spool_rcpt *r)
{
	if (msg->move_source && (msg->move_provider == NULL ||
	    strcmp(msg->move_provider, provider_of(cfg, r->address)) == 0))
		return msg->move_source;
	return r->last_source ? r->last_source : STATS_NONE;
}

/* One message's per-key state counts (mine) into t: 1 message each. */
static void
add_rows(struct stats_table *t, const struct stats_table *mine)
{
	for (size_t p = 0; p < mine->n; p++)
		for (size_t k = 0; k < mine->rows[p].n; k++)
			for (int s = 0; s < STATUS_NSTATES; s++)
				if (strcmp(mine->rows[p].names[k],
				    status_state_names[s]) == 0)
					add_state(t, mine->rows[p].key,
					    (enum status_state)s, 1,
					    mine->rows[p].values[k]);
}

static int
gather_message(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt)
{
	struct gather *g = ctx;
	struct queue_status *st = g->st;
	struct stats_table mine = {NULL, 0, 0};	/* provider -> state counts */
	struct stats_table by_src = {NULL, 0, 0};	/* source -> the same */
	uint64_t per_state[STATUS_NSTATES] = {0};
	bool pending = false;

	for (size_t i = 0; i < nrcpt; i++) {
		const struct spool_rcpt *r = &rcpts[i];
		if (r->state == RCPT_SENT || r->state == RCPT_BOUNCED)
			continue;
		enum status_state s = state_of(msg, r, st->now);
		stats_table_add(&mine, provider_of(g->cfg, r->address),
		    status_state_names[s], 1);
		stats_table_add(&by_src, source_of(g->cfg, msg, r),
		    status_state_names[s], 1);
		per_state[s]++;
		st->recipients++;
		pending = true;
	}
	if (!pending) {
		stats_table_free(&mine);
		stats_table_free(&by_src);
		return 0;	/* all final: only its removal is left */
	}
	add_rows(&st->sources, &by_src);
	st->messages++;
	if (st->oldest_arrival == 0 || msg->arrival < st->oldest_arrival) {
		st->oldest_arrival = msg->arrival;
		memcpy(st->oldest_id, msg->id, SPOOL_ID_SIZE);
	}
	const char *lane = msg->lane && *msg->lane ? msg->lane : STATS_NONE;
	for (int s = 0; s < STATUS_NSTATES; s++) {
		if (per_state[s] == 0)
			continue;
		st->states[s][0]++;
		st->states[s][1] += per_state[s];
		add_state(&st->lanes, lane, (enum status_state)s, 1,
		    per_state[s]);
	}
	for (size_t p = 0; p < mine.n; p++) {
		char *both = xasprintf("%s\t%s", lane, mine.rows[p].key);
		for (size_t k = 0; k < mine.rows[p].n; k++)
			for (int s = 0; s < STATUS_NSTATES; s++)
				if (strcmp(mine.rows[p].names[k],
				    status_state_names[s]) == 0) {
					add_state(&st->providers,
					    mine.rows[p].key,
					    (enum status_state)s, 1,
					    mine.rows[p].values[k]);
					add_state(&st->lane_providers, both,
					    (enum status_state)s, 1,
					    mine.rows[p].values[k]);
				}
		free(both);
	}
	stats_table_free(&mine);
	stats_table_free(&by_src);
	return 0;
}

static int
count_incoming(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt)
{
	struct queue_status *st = ctx;
	(void)msg;
	(void)rcpts;
	(void)nrcpt;
	st->incoming++;
	return 0;
}

static void
add_shaping(struct queue_status *st, const char *provider, const char *source,
    const char *what, int64_t until, const char *rule, const char *reply)
{
	st->shaping = xrealloc(st->shaping, (st->nshaping + 1) *
	    sizeof(*st->shaping));
	struct status_shaping *s = &st->shaping[st->nshaping++];
	memset(s, 0, sizeof(*s));
	s->provider = xstrdup(provider);
	s->source = source ? xstrdup(source) : NULL;
	s->what = what;
	s->until = until;
	s->rule = xstrdup(rule);
	s->reply = xstrdup(reply);
}

static int
gather_shaping(void *ctx, const char *provider, const char *source,
    const struct spool_shaping *sh)
{
	struct queue_status *st = ctx;

	/* What has run out is not in force, whether or not yet removed. */
	if (sh->suspended_until > st->now)
		add_shaping(st, provider, source, source ? "suspended" :
		    "deferred", sh->suspended_until, sh->rule, sh->reply);
	if (sh->throttle_until > st->now) {
		add_shaping(st, provider, source, "throttled",
		    sh->throttle_until, sh->throttle_rule, sh->throttle_reply);
		st->shaping[st->nshaping - 1].rate_count = sh->rate_count;
		st->shaping[st->nshaping - 1].rate_period = sh->rate_period;
	}
	return 0;
}

static void
gather_warmup(struct spool *sp, const struct mxl_config *cfg,
    struct queue_status *st)
{
	for (size_t p = 0; p < cfg->npools; p++) {
		const struct mxl_pool *pool = &cfg->pools[p];
		for (size_t s = 0; s < pool->nsources; s++) {
			const struct mxl_source *src = &pool->sources[s];
			int64_t day;
			long cap;
			if (!shaping_warm_cap(src, st->now, &day, &cap))
				continue;
			st->warmup = xrealloc(st->warmup, (st->nwarmup + 1) *
			    sizeof(*st->warmup));
			struct status_warmup *w = &st->warmup[st->nwarmup++];
			memset(w, 0, sizeof(*w));
			w->source = src->address;
			w->pool = pool->name;
			w->day = day;
			w->cap = cap;
			for (size_t v = 0; v < cfg->nproviders; v++) {
				uint64_t count = 0;
				int64_t granted = 0;
				const char *name = cfg->providers[v].name;
				if (spool_shaping_warm(sp, src->address, name,
				    day, -1, 0, &count, &granted) != SPOOL_OK)
					continue;
				stats_table_add(&w->sent, "", name, count);
			}
		}
	}
}

int
status_gather(struct spool *sp, const struct mxl_config *cfg, int64_t now,
    struct queue_status *st)
{
	struct gather g = {cfg, st};

	memset(st, 0, sizeof(*st));
	st->now = now;
	if (spool_scan(sp, gather_message, &g) != SPOOL_OK ||
	    spool_scan_maildrop(sp, count_incoming, st) != SPOOL_OK ||
	    spool_shaping_scan(sp, gather_shaping, st) != SPOOL_OK)
		return SPOOL_ERR;
	gather_warmup(sp, cfg, st);
	st->nrunners = spool_runners_list(sp, &st->runners);
	for (size_t i = 0; i < st->nrunners; i++)
		st->sessions += st->runners[i].sessions;
	stats_table_sort(&st->lanes);
	stats_table_sort(&st->providers);
	stats_table_sort(&st->lane_providers);
	stats_table_sort(&st->sources);
	return SPOOL_OK;
}

void
status_free(struct queue_status *st)
{
	stats_table_free(&st->lanes);
	stats_table_free(&st->providers);
	stats_table_free(&st->lane_providers);
	stats_table_free(&st->sources);
	for (size_t i = 0; i < st->nshaping; i++) {
		free(st->shaping[i].provider);
		free(st->shaping[i].source);
		free(st->shaping[i].rule);
		free(st->shaping[i].reply);
	}
	free(st->shaping);
	for (size_t i = 0; i < st->nwarmup; i++)
		stats_table_free(&st->warmup[i].sent);
	free(st->warmup);
	free(st->runners);
	memset(st, 0, sizeof(*st));
}

/* ----------------------------------------------------------- printing */

static void
json_states(const struct stats_row *r, FILE *out)
{
	char name[32];

	for (int s = 0; s < STATUS_NSTATES; s++) {
		snprintf(name, sizeof(name), "%s_messages",
		    status_state_names[s]);
		uint64_t m = r ? stats_row_get(r, name) : 0;
		snprintf(name, sizeof(name), "%s_recipients",
		    status_state_names[s]);
		uint64_t n = r ? stats_row_get(r, name) : 0;
		fprintf(out, "%s\"%s\":{\"messages\":%llu,\"recipients\":%llu}",
		    s ? "," : "", status_state_names[s], (unsigned long long)m,
		    (unsigned long long)n);
	}
}

static void
json_rows(const struct stats_table *t, const char *what, FILE *out)
{
	fprintf(out, "\"%ss\":[", what);
	for (size_t i = 0; i < t->n; i++) {
		fprintf(out, "%s{\"%s\":", i ? "," : "", what);
		escape_json(out, t->rows[i].key);
		fputc(',', out);
		json_states(&t->rows[i], out);
		fputc('}', out);
	}
	fputc(']', out);
}

static void
print_json(const struct queue_status *st, FILE *out)
{
	fprintf(out, "{\"version\":1,\"time\":%lld,\"messages\":%llu,"
	    "\"recipients\":%llu,\"incoming\":%llu,\"oldest_age_seconds\":"
	    "%lld,\"oldest_queue_id\":", (long long)st->now,
	    (unsigned long long)st->messages,
	    (unsigned long long)st->recipients,
	    (unsigned long long)st->incoming,
	    (long long)(st->oldest_arrival ? st->now - st->oldest_arrival :
	    0));
	escape_json(out, st->oldest_arrival ? st->oldest_id : NULL);
	fputs(",\"states\":{", out);
	for (int s = 0; s < STATUS_NSTATES; s++)
		fprintf(out, "%s\"%s\":{\"messages\":%llu,\"recipients\":%llu}",
		    s ? "," : "", status_state_names[s],
		    (unsigned long long)st->states[s][0],
		    (unsigned long long)st->states[s][1]);
	fputs("},", out);
	json_rows(&st->lanes, "lane", out);
	fputc(',', out);
	json_rows(&st->providers, "provider", out);
	fputc(',', out);
	json_rows(&st->sources, "source", out);
	fputs(",\"shaping\":[", out);
	for (size_t i = 0; i < st->nshaping; i++) {
		const struct status_shaping *s = &st->shaping[i];
		fprintf(out, "%s{\"provider\":", i ? "," : "");
		escape_json(out, s->provider);
		fputs(",\"source\":", out);
		escape_json(out, s->source);
		fprintf(out, ",\"what\":\"%s\",\"until\":%lld,\"rule\":",
		    s->what, (long long)s->until);
		escape_json(out, s->rule);
		fputs(",\"reply\":", out);
		escape_json(out, s->reply);
		if (strcmp(s->what, "throttled") == 0)
			fprintf(out, ",\"rate\":\"%ld/%ds\"", s->rate_count,
			    s->rate_period);
		fputc('}', out);
	}
	fputs("],\"warmup\":[", out);
	for (size_t i = 0; i < st->nwarmup; i++) {
		const struct status_warmup *w = &st->warmup[i];
		fprintf(out, "%s{\"source\":", i ? "," : "");
		escape_json(out, w->source);
		fputs(",\"pool\":", out);
		escape_json(out, w->pool);
		fprintf(out, ",\"day\":%lld,\"cap\":%ld,\"sent_today\":{",
		    (long long)w->day, w->cap);
		const struct stats_row *r = w->sent.n ? &w->sent.rows[0] :
		    NULL;
		for (size_t k = 0; r && k < r->n; k++) {
			fputs(k ? "," : "", out);
			escape_json(out, r->names[k]);
			fprintf(out, ":%llu", (unsigned long long)r->values[k]);
		}
		fputs("}}", out);
	}
	fprintf(out, "],\"sessions\":%zu,\"runners\":[", st->sessions);
	for (size_t i = 0; i < st->nrunners; i++) {
		const struct spool_runner *r = &st->runners[i];
		fprintf(out, "%s{\"pid\":%ld,\"kind\":", i ? "," : "",
		    r->pid);
		escape_json(out, r->kind);
		fprintf(out, ",\"started\":%lld,\"sessions\":%zu,"
		    "\"priority_sessions\":%zu,\"delivered\":%llu,"
		    "\"updated\":%lld}", (long long)r->started, r->sessions,
		    r->priority_sessions, (unsigned long long)r->delivered,
		    (long long)r->updated);
	}
	fputc(']', out);	/* the caller adds the rest and the "}" */
}

static void
fmt_age(int64_t s, char *out, size_t len)
{
	if (s >= 86400)
		snprintf(out, len, "%lldd %lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, len, "%lldh %lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else
		snprintf(out, len, "%lldm %llds", (long long)(s / 60),
		    (long long)(s % 60));
}

static void
text_rows(const struct stats_table *t, const char *what, FILE *out)
{
	char name[32], cell[48];

	fprintf(out, "\n%-24s", what);
	for (int s = 0; s < STATUS_NSTATES; s++)
		fprintf(out, " %15s", status_state_names[s]);
	fputs("   (messages/recipients)\n", out);
	for (size_t i = 0; i < t->n; i++) {
		fprintf(out, "%-24s", t->rows[i].key);
		for (int s = 0; s < STATUS_NSTATES; s++) {
			snprintf(name, sizeof(name), "%s_messages",
			    status_state_names[s]);
			uint64_t m = stats_row_get(&t->rows[i], name);
			snprintf(name, sizeof(name), "%s_recipients",
			    status_state_names[s]);
			uint64_t n = stats_row_get(&t->rows[i], name);
			snprintf(cell, sizeof(cell), "%llu/%llu",
			    (unsigned long long)m, (unsigned long long)n);
			fprintf(out, " %15s", cell);
		}
		fputc('\n', out);
	}
}

static void
print_text(const struct queue_status *st, FILE *out)
{
	char age[32] = "-";

	if (st->oldest_arrival)
		fmt_age(st->now - st->oldest_arrival, age, sizeof(age));
	fprintf(out, "queue: %llu messages, %llu recipients pending; oldest "
	    "%s%s%s%s; %llu in the maildrop\n",
	    (unsigned long long)st->messages,
	    (unsigned long long)st->recipients, age,
	    st->oldest_arrival ? " (" : "",
	    st->oldest_arrival ? st->oldest_id : "",
	    st->oldest_arrival ? ")" : "",
	    (unsigned long long)st->incoming);
	for (int s = 0; s < STATUS_NSTATES; s++)
		fprintf(out, "  %-9s %8llu messages %8llu recipients\n",
		    status_state_names[s],
		    (unsigned long long)st->states[s][0],
		    (unsigned long long)st->states[s][1]);
	text_rows(&st->lanes, "lane", out);
	text_rows(&st->providers, "provider", out);
	text_rows(&st->sources, "source", out);
	fputs("\nshaping:", out);
	if (st->nshaping == 0)
		fputs(" nothing in force", out);
	fputc('\n', out);
	for (size_t i = 0; i < st->nshaping; i++) {
		const struct status_shaping *s = &st->shaping[i];
		char until[40];
		time_t t = (time_t)s->until;
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC",
		    gmtime(&t));
		fprintf(out, "  %s %s%s%s until %s (rule %s: %s)\n", s->provider,
		    s->source ? "from " : "", s->source ? s->source : "",
		    s->source ? " " : "", until, s->rule, s->reply);
		if (strcmp(s->what, "throttled") == 0)
			fprintf(out, "    throttled to %ld/%ds\n", s->rate_count,
			    s->rate_period);
		else
			fprintf(out, "    %s\n", s->what);
	}
	fputs("warm-up:", out);
	if (st->nwarmup == 0)
		fputs(" no source warming", out);
	fputc('\n', out);
	for (size_t i = 0; i < st->nwarmup; i++) {
		const struct status_warmup *w = &st->warmup[i];
		fprintf(out, "  %s (pool %s): day %lld, cap %ld per provider",
		    w->source, w->pool, (long long)w->day, w->cap);
		const struct stats_row *r = w->sent.n ? &w->sent.rows[0] :
		    NULL;
		for (size_t k = 0; r && k < r->n; k++)
			if (r->values[k] > 0)
				fprintf(out, ", %s %llu", r->names[k],
				    (unsigned long long)r->values[k]);
		fputc('\n', out);
	}
	fprintf(out, "runners: %zu, SMTP sessions in flight: %zu\n",
	    st->nrunners, st->sessions);
	for (size_t i = 0; i < st->nrunners; i++) {
		const struct spool_runner *r = &st->runners[i];
		char up[32];
		fmt_age(st->now - r->started, up, sizeof(up));
		fprintf(out, "  pid %ld (%s, up %s): %zu session%s (%zu "
		    "priority), %llu recipients delivered this pass\n", r->pid,
		    r->kind, up, r->sessions, r->sessions == 1 ? "" : "s",
		    r->priority_sessions, (unsigned long long)r->delivered);
	}
}

int
status_command(const struct mxl_config *cfg, int argc, char **argv)
{
	bool json = false;
	struct queue_status st;
	struct spool *sp;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return EX_USAGE;
	}
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK) {
		log_stderr("cannot open the mail queue in %s",
		    cfg->spool_directory);
		return EX_TEMPFAIL;
	}
	int rc = status_gather(sp, cfg, time(NULL), &st);
	spool_close(sp);
	if (rc != SPOOL_OK) {
		status_free(&st);
		return EX_TEMPFAIL;
	}
	/* Users over their submitter limits (limits.h), after the queue. */
	size_t nover = 0;
	if (json) {
		print_json(&st, stdout);
		fputs(",\"over_limits\":[", stdout);
		rc = limits_print(cfg, true, "", stdout, &nover);
		fputs("]}\n", stdout);
	} else {
		print_text(&st, stdout);
		fputs("submitter limits:\n", stdout);
		rc = limits_print(cfg, false, "  ", stdout, &nover);
		if (rc == 0 && nover == 0)
			fputs("  no user over a limit\n", stdout);
	}
	status_free(&st);
	return rc;
}
