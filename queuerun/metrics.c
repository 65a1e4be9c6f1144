/*
 * NAME
 *	metrics - Prometheus text exposition of the counters and the queue
 * DESCRIPTION
 *	See metrics.h. Keys of the tables below join label values with
 *	TABs (a TAB never reaches a label: names come from the
 *	configuration, whose names have none, and escape_prom_label()
 *	would make it a space anyway).
 */
#include "queuerun/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lib/escape.h"
#include "lib/log.h"
#include "queuerun/stats.h"
#include "queuerun/status.h"
#include "spool/stats.h"

#define MAX_LABELS	4

struct totals {
	struct stats_table by_route;	/* provider TAB source TAB lane */
	struct stats_table by_lane;	/* lane: received, suppressed */
	struct stats_table delivery;	/* provider TAB lane: histogram */
};

static int
collect_total(void *ctx, const struct stats_record *r)
{
	struct totals *t = ctx;

	if (r->kind != 'c' || r->day != STATS_ALL_TIME)
		return 0;
	char *route = xasprintf("%s\t%s\t%s", r->provider, r->source, r->lane);
	char *pl = xasprintf("%s\t%s", r->provider, r->lane);
	for (size_t i = 0; i < r->ncounters; i++) {
		const char *name = r->counters[i].name;
		uint64_t v = r->counters[i].value;
		if (strncmp(name, "dly", 3) == 0)
			stats_table_add(&t->delivery, pl, name, v);
		else if (strncmp(name, "received", 8) == 0 ||
		    strcmp(name, "suppressed") == 0)
			stats_table_add(&t->by_lane, r->lane, name, v);
		else
			stats_table_add(&t->by_route, route, name, v);
	}
	free(pl);
	free(route);
	return 0;
}

/* Splits a TAB-joined key into up to max parts (s is changed). */
static size_t
split_key(char *s, char **parts, size_t max)
{
	size_t n = 0;

	while (n < max) {
		parts[n++] = s;
		char *tab = strchr(s, '\t');
		if (tab == NULL)
			break;
		*tab = '\0';
		s = tab + 1;
	}
	return n;
}

static void
sample(FILE *out, const char *metric, const char *const *names,
    const char *const *values, size_t n, const char *value)
{
	fputs(metric, out);
	if (n > 0) {
		fputc('{', out);
		for (size_t i = 0; i < n; i++) {
			fprintf(out, "%s%s=", i ? "," : "", names[i]);
			escape_prom_label(out, values[i]);
		}
		fputc('}', out);
	}
	fprintf(out, " %s\n", value);
}

static void
sample_u64(FILE *out, const char *metric, const char *const *names,
    const char *const *values, size_t n, uint64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	sample(out, metric, names, values, n, num);
}

static void
family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One counter per route (provider, source, lane) row, from its name. */
static void
route_counter(FILE *out, const struct stats_table *t, const char *metric,
    const char *counter, const char *help)
{
	static const char *const names[] = {"provider", "source", "lane"};

	family(out, metric, "counter", help);
	for (size_t i = 0; i < t->n; i++) {
		char *key = xstrdup(t->rows[i].key);
		char *parts[3] = {"", "", ""};
		split_key(key, parts, 3);
		sample_u64(out, metric, names, (const char *const *)parts, 3,
		    stats_row_get(&t->rows[i], counter));
		free(key);
	}
}

/* One counter per lane row, from its name. */
static void
lane_counter(FILE *out, const struct stats_table *t, const char *metric,
    const char *counter, const char *help)
{
	static const char *const names[] = {"lane"};

	family(out, metric, "counter", help);
	for (size_t i = 0; i < t->n; i++)
		sample_u64(out, metric, names,
		    (const char *const *)&t->rows[i].key, 1,
		    stats_row_get(&t->rows[i], counter));
}

static void
print_counters(const struct totals *t, FILE *out)
{
	lane_counter(out, &t->by_lane, "mxlane_messages_received_total",
	    "received", "Messages queued (submissions, and mxlane's own "
	    "bounces and delay notices), by lane.");
	lane_counter(out, &t->by_lane, "mxlane_recipients_received_total",
	    "received_rcpts", "Recipients of the messages queued, by lane.");
	route_counter(out, &t->by_route, "mxlane_messages_sent_total", "sent",
	    "Recipients accepted by the receiving server.");
	route_counter(out, &t->by_route, "mxlane_messages_deferred_total",
	    "deferred", "Delivery attempts of a recipient that failed "
	    "temporarily.");
	family(out, "mxlane_messages_bounced_total", "counter",
	    "Recipients that failed for good, by reply class.");
	static const char *const bnames[] = {"provider", "source", "lane",
		"class"};
	for (size_t i = 0; i < t->by_route.n; i++) {
		const struct stats_row *r = &t->by_route.rows[i];
		for (size_t k = 0; k < r->n; k++) {
			if (strncmp(r->names[k], "bounced:", 8) != 0)
				continue;
			char *key = xstrdup(r->key);
			char *parts[4] = {"", "", "", ""};
			split_key(key, parts, 3);
			parts[3] = r->names[k] + 8;
			sample_u64(out, "mxlane_messages_bounced_total", bnames,
			    (const char *const *)parts, 4, r->values[k]);
			free(key);
		}
	}
	lane_counter(out, &t->by_lane, "mxlane_messages_suppressed_total",
	    "suppressed", "Recipients bounced without an attempt: on the "
	    "suppression list.");
}

static void
print_histogram(const struct totals *t, FILE *out)
{
	static const char *const names[] = {"provider", "lane", "le"};

	family(out, "mxlane_delivery_seconds", "histogram",
	    "Time from arrival to delivery of each recipient sent.");
	for (size_t i = 0; i < t->delivery.n; i++) {
		const struct stats_row *r = &t->delivery.rows[i];
		char *key = xstrdup(r->key);
		char *parts[3] = {"", "", ""};
		char name[32], le[32];
		uint64_t cum = 0;
		split_key(key, parts, 2);
		for (size_t b = 0; b < stats_ndelivery_buckets; b++) {
			snprintf(name, sizeof(name), "dly:%lld",
			    (long long)stats_delivery_buckets[b]);
			snprintf(le, sizeof(le), "%lld",
			    (long long)stats_delivery_buckets[b]);
			cum += stats_row_get(r, name);
			parts[2] = le;
			sample_u64(out, "mxlane_delivery_seconds_bucket", names,
			    (const char *const *)parts, 3, cum);
		}
		cum += stats_row_get(r, "dly:inf");
		parts[2] = "+Inf";
		sample_u64(out, "mxlane_delivery_seconds_bucket", names,
		    (const char *const *)parts, 3, cum);
		sample_u64(out, "mxlane_delivery_seconds_sum", names,
		    (const char *const *)parts, 2, stats_row_get(r, "dly_sum"));
		sample_u64(out, "mxlane_delivery_seconds_count", names,
		    (const char *const *)parts, 2, cum);
		free(key);
	}
}

static void
print_queue(const struct queue_status *st, FILE *out)
{
	static const char *const qn[] = {"state", "lane", "provider"};
	char name[32];

	family(out, "mxlane_queue_messages", "gauge",
	    "Messages in the queue with a recipient in that state, by lane.");
	for (size_t i = 0; i < st->lanes.n; i++)
		for (int s = 0; s < STATUS_NSTATES; s++) {
			const char *v[2] = {status_state_names[s],
			    st->lanes.rows[i].key};
			snprintf(name, sizeof(name), "%s_messages",
			    status_state_names[s]);
			sample_u64(out, "mxlane_queue_messages", qn, v, 2,
			    stats_row_get(&st->lanes.rows[i], name));
		}
	family(out, "mxlane_queue_recipients", "gauge",
	    "Recipients in the queue, by state, lane and provider.");
	for (size_t i = 0; i < st->lane_providers.n; i++) {
		char *key = xstrdup(st->lane_providers.rows[i].key);
		char *parts[3] = {NULL, "", ""};
		split_key(key, parts + 1, 2);
		for (int s = 0; s < STATUS_NSTATES; s++) {
			parts[0] = (char *)status_state_names[s];
			snprintf(name, sizeof(name), "%s_recipients",
			    status_state_names[s]);
			sample_u64(out, "mxlane_queue_recipients", qn,
			    (const char *const *)parts, 3,
			    stats_row_get(&st->lane_providers.rows[i], name));
		}
		free(key);
	}
	family(out, "mxlane_queue_incoming_messages", "gauge",
	    "Submissions in the maildrop, not yet picked up.");
	sample_u64(out, "mxlane_queue_incoming_messages", NULL, NULL, 0,
	    st->incoming);
	family(out, "mxlane_oldest_message_age_seconds", "gauge",
	    "Age of the oldest message in the queue (0: empty).");
	sample_u64(out, "mxlane_oldest_message_age_seconds", NULL, NULL, 0,
	    st->oldest_arrival && st->now > st->oldest_arrival ?
	    (uint64_t)(st->now - st->oldest_arrival) : 0);
	static const char *const sn[] = {"provider", "source", "what"};
	family(out, "mxlane_shaping_until_timestamp_seconds", "gauge",
	    "Suspensions, provider deferrals and lowered rates in force: "
	    "when each ends (unix time).");
	for (size_t i = 0; i < st->nshaping; i++) {
		const struct status_shaping *s = &st->shaping[i];
		const char *v[3] = {s->provider, s->source ? s->source :
		    STATS_NONE, s->what};
		sample_u64(out, "mxlane_shaping_until_timestamp_seconds", sn, v,
		    3, (uint64_t)s->until);
	}
	family(out, "mxlane_suspensions", "gauge",
	    "How many suspensions, provider deferrals and lowered rates are "
	    "in force, by kind.");
	static const char *const kinds[] = {"suspended", "deferred",
		"throttled"};
	static const char *const wn[] = {"what"};
	for (size_t k = 0; k < 3; k++) {
		uint64_t n = 0;
		for (size_t i = 0; i < st->nshaping; i++)
			n += strcmp(st->shaping[i].what, kinds[k]) == 0;
		sample_u64(out, "mxlane_suspensions", wn, &kinds[k], 1, n);
	}
	static const char *const warmn[] = {"source", "pool"};
	family(out, "mxlane_warmup_cap", "gauge",
	    "Today's cap of a warming source, per provider.");
	for (size_t i = 0; i < st->nwarmup; i++) {
		const char *v[2] = {st->warmup[i].source, st->warmup[i].pool};
		sample_u64(out, "mxlane_warmup_cap", warmn, v, 2,
		    (uint64_t)st->warmup[i].cap);
	}
	static const char *const wsn[] = {"source", "provider"};
	family(out, "mxlane_warmup_sent_today", "gauge",
	    "Messages a warming source sent to a provider today.");
	for (size_t i = 0; i < st->nwarmup; i++) {
		const struct stats_row *r = st->warmup[i].sent.n ?
		    &st->warmup[i].sent.rows[0] : NULL;
		for (size_t k = 0; r && k < r->n; k++) {
			const char *v[2] = {st->warmup[i].source, r->names[k]};
			sample_u64(out, "mxlane_warmup_sent_today", wsn, v, 2,
			    r->values[k]);
		}
	}
	static const char *const rkinds[] = {"daemon", "pass", "message"};
	static const char *const kn[] = {"kind"};
	family(out, "mxlane_runners", "gauge",
	    "Queue runners at work, by kind (a daemon, a cron or admin pass, "
	    "a submission's immediate delivery).");
	for (size_t k = 0; k < 3; k++) {
		uint64_t n = 0;
		for (size_t i = 0; i < st->nrunners; i++)
			n += strcmp(st->runners[i].kind, rkinds[k]) == 0;
		sample_u64(out, "mxlane_runners", kn, &rkinds[k], 1, n);
	}
	family(out, "mxlane_smtp_sessions", "gauge",
	    "SMTP sessions in flight, summed over the runners.");
	sample_u64(out, "mxlane_smtp_sessions", NULL, NULL, 0, st->sessions);
}

int
metrics_print(struct spool *sp, const struct mxl_config *cfg, int64_t now,
    FILE *out)
{
	struct totals t;
	struct queue_status st;

	memset(&t, 0, sizeof(t));
	int rc = spool_stats_scan(sp, STATS_ALL_TIME, true, collect_total, &t);
	if (rc == SPOOL_OK)
		rc = status_gather(sp, cfg, now, &st);
	else
		memset(&st, 0, sizeof(st));
	if (rc == SPOOL_OK) {
		stats_table_sort(&t.by_route);
		stats_table_sort(&t.by_lane);
		stats_table_sort(&t.delivery);
		print_counters(&t, out);
		print_histogram(&t, out);
		print_queue(&st, out);
	}
	status_free(&st);
	stats_table_free(&t.by_route);
	stats_table_free(&t.by_lane);
	stats_table_free(&t.delivery);
	return rc;
}

int
metrics_command(const struct mxl_config *cfg, int argc, char **argv)
{
	struct spool *sp;

	(void)argv;
	if (argc != 1)
		return EX_USAGE;
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK) {
		log_stderr("cannot open the mail queue in %s",
		    cfg->spool_directory);
		return EX_TEMPFAIL;
	}
	int rc = metrics_print(sp, cfg, time(NULL), stdout);
	spool_close(sp);
	if (fflush(stdout) != 0)
		return EX_IOERR;
	return rc == SPOOL_OK ? 0 : EX_TEMPFAIL;
}

int
metrics_textfile_write(struct spool *sp, const struct mxl_config *cfg)
{
	const char *path = cfg->metrics_textfile;

	if (path == NULL || *path == '\0')
		return 0;
	/*
	 * Beside the file, so rename() is atomic; node_exporter's
	 * collector reads *.prom only, and this name does not end so.
	 */
	char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	int rc = -1;

	if (out == NULL) {
		log_error("metrics_textfile: cannot write %s: %s", tmp,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return -1;
	}
	/* The umask must not make it unreadable for node_exporter. */
	(void)fchmod(fd, 0644);
	if (metrics_print(sp, cfg, time(NULL), out) == SPOOL_OK &&
	    fflush(out) == 0 && fsync(fd) == 0)
		rc = 0;
	if (fclose(out) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0) {
		log_error("metrics_textfile: cannot rename %s to %s: %s", tmp,
		    path, strerror(errno));
		rc = -1;
	} else if (rc != 0) {
		log_error("metrics_textfile: cannot write %s", tmp);
	}
	if (rc != 0)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

void
metrics_textfile_tick(struct spool *sp, const struct mxl_config *cfg)
{
	static int64_t last;
	int64_t now = mono_ms() / 1000;

	if (cfg->metrics_textfile[0] == '\0' ||
	    (last != 0 && now - last < METRICS_INTERVAL))
		return;
	last = now;
	(void)metrics_textfile_write(sp, cfg);
}
