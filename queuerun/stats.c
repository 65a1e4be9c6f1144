/*
 * NAME
 *	stats - "queuerun stats" and "queuerun report": the counters
 * DESCRIPTION
 *	See stats.h. The spool hands over one record per day and
 *	combination (provider, source, lane, pool); here they are added
 *	up under the key asked for, into a stats_table.
 */
#include "queuerun/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "lib/escape.h"
#include "lib/log.h"
#include "spool/stats.h"

/* ------------------------------------------------------------- tables */

void
stats_table_add(struct stats_table *t, const char *key, const char *name,
    uint64_t value)
{
	struct stats_row *r = NULL;

	for (size_t i = t->n; i > 0; i--)
		if (strcmp(t->rows[i - 1].key, key) == 0) {
			r = &t->rows[i - 1];
			break;
		}
	if (r == NULL) {
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 16;
			t->rows = xrealloc(t->rows, t->cap * sizeof(*t->rows));
		}
		r = &t->rows[t->n++];
		memset(r, 0, sizeof(*r));
		r->key = xstrdup(key);
	}
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->names[i], name) == 0) {
			r->values[i] += value;
			return;
		}
	r->names = xrealloc(r->names, (r->n + 1) * sizeof(*r->names));
	r->values = xrealloc(r->values, (r->n + 1) * sizeof(*r->values));
	r->names[r->n] = xstrdup(name);
	r->values[r->n++] = value;
}

uint64_t
stats_row_get(const struct stats_row *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->names[i], name) == 0)
			return r->values[i];
	return 0;
}

uint64_t
stats_row_sum(const struct stats_row *r, const char *prefix)
{
	uint64_t sum = 0;
	size_t len = strlen(prefix);

	for (size_t i = 0; i < r->n; i++)
		if (strncmp(r->names[i], prefix, len) == 0)
			sum += r->values[i];
	return sum;
}

static int
compare_rows(const void *a, const void *b)
{
	const struct stats_row *x = a, *y = b;
	return strcmp(x->key, y->key);
}

void
stats_table_sort(struct stats_table *t)
{
	if (t->n > 1)
		qsort(t->rows, t->n, sizeof(*t->rows), compare_rows);
}

void
stats_table_free(struct stats_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		for (size_t k = 0; k < t->rows[i].n; k++)
			free(t->rows[i].names[k]);
		free(t->rows[i].names);
		free(t->rows[i].values);
		free(t->rows[i].key);
	}
	free(t->rows);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------ reading */

int64_t
stats_since_day(const char *when, int64_t now)
{
	struct tm tm;
	const char *end;

	if (when == NULL)
		when = "24h";
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(when, "%Y-%m-%d", &tm)) != NULL && *end == '\0')
		return stats_day((int64_t)timegm(&tm));
	long long s = config_parse_time(when);
	if (s < 0)
		return -1;
	return stats_day(now - s);
}

enum stats_by { BY_PROVIDER, BY_SOURCE, BY_LANE, BY_POOL };
static const char *const by_names[] = {"provider", "source", "lane", "pool"};

struct collect {
	enum stats_by by;
	struct stats_table rows;
	struct stats_table sources;	/* the report's second table */
	struct stats_table deferrals;	/* key: reason TAB provider */
	struct stats_table bounces;
};

static const char *
key_of(const struct stats_record *r, enum stats_by by)
{
	switch (by) {
	case BY_SOURCE:
		return r->source;
	case BY_LANE:
		return r->lane;
	case BY_POOL:
		return r->pool;
	case BY_PROVIDER:
	default:
		return r->provider;
	}
}

static int
collect_record(void *ctx, const struct stats_record *r)
{
	struct collect *c = ctx;

	if (r->kind == 'd' || r->kind == 'b') {
		char *key = xasprintf("%s\t%s", r->reason, r->provider);
		for (size_t i = 0; i < r->ncounters; i++)
			stats_table_add(r->kind == 'd' ? &c->deferrals :
			    &c->bounces, key, "n", r->counters[i].value);
		free(key);
		return 0;
	}
	if (r->kind != 'c')
		return 0;
	for (size_t i = 0; i < r->ncounters; i++) {
		stats_table_add(&c->rows, key_of(r, c->by),
		    r->counters[i].name, r->counters[i].value);
		stats_table_add(&c->sources, r->source, r->counters[i].name,
		    r->counters[i].value);
	}
	return 0;
}

static int
collect(const struct mxl_config *cfg, int64_t since_day, struct collect *c)
{
	struct spool *sp;

	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK) {
		log_stderr("cannot open the mail queue in %s",
		    cfg->spool_directory);
		return EX_TEMPFAIL;
	}
	int rc = spool_stats_scan(sp, since_day, false, collect_record, c);
	spool_close(sp);
	if (rc != SPOOL_OK)
		return EX_TEMPFAIL;
	stats_table_sort(&c->rows);
	stats_table_sort(&c->sources);
	return 0;
}

static void
collect_free(struct collect *c)
{
	stats_table_free(&c->rows);
	stats_table_free(&c->sources);
	stats_table_free(&c->deferrals);
	stats_table_free(&c->bounces);
}

/* ----------------------------------------------------------- printing */

/* The old per-instance stats: what was tried, and what became of it. */
static uint64_t
row_total(const struct stats_row *r)
{
	return stats_row_get(r, "sent") + stats_row_sum(r, "bounced:") +
	    stats_row_get(r, "deferred") + stats_row_get(r, "suppressed");
}

static void
print_table(const struct stats_table *t, const char *heading, FILE *out)
{
	struct stats_row sum;
	struct stats_table all = {NULL, 0, 0};

	fprintf(out, "%-24s %10s %10s %10s %10s %10s %10s\n", heading,
	    "received", "total", "sent", "bounced", "deferred", "suppressed");
	for (size_t i = 0; i < t->n; i++) {
		const struct stats_row *r = &t->rows[i];
		fprintf(out, "%-24s %10llu %10llu %10llu %10llu %10llu %10llu\n",
		    r->key, (unsigned long long)stats_row_get(r, "received"),
		    (unsigned long long)row_total(r),
		    (unsigned long long)stats_row_get(r, "sent"),
		    (unsigned long long)stats_row_sum(r, "bounced:"),
		    (unsigned long long)stats_row_get(r, "deferred"),
		    (unsigned long long)stats_row_get(r, "suppressed"));
		for (size_t k = 0; k < r->n; k++)
			stats_table_add(&all, "TOTAL", r->names[k], r->values[k]);
	}
	if (all.n == 0)
		stats_table_add(&all, "TOTAL", "sent", 0);
	sum = all.rows[0];
	fprintf(out, "%-24s %10llu %10llu %10llu %10llu %10llu %10llu\n",
	    "TOTAL", (unsigned long long)stats_row_get(&sum, "received"),
	    (unsigned long long)row_total(&sum),
	    (unsigned long long)stats_row_get(&sum, "sent"),
	    (unsigned long long)stats_row_sum(&sum, "bounced:"),
	    (unsigned long long)stats_row_get(&sum, "deferred"),
	    (unsigned long long)stats_row_get(&sum, "suppressed"));
	stats_table_free(&all);
}

/* Bounces by class, over every row. */
static void
print_classes(const struct stats_table *t, FILE *out)
{
	struct stats_table classes = {NULL, 0, 0};

	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->rows[i].n; k++)
			if (strncmp(t->rows[i].names[k], "bounced:", 8) == 0)
				stats_table_add(&classes,
				    t->rows[i].names[k] + 8, "n",
				    t->rows[i].values[k]);
	stats_table_sort(&classes);
	if (classes.n > 0)
		fprintf(out, "\nbounces by class:\n");
	for (size_t i = 0; i < classes.n; i++)
		fprintf(out, "  %-22s %10llu\n", classes.rows[i].key,
		    (unsigned long long)classes.rows[i].values[0]);
	stats_table_free(&classes);
}

static void
json_counts(const struct stats_row *r, FILE *out)
{
	fprintf(out, "\"received\":%llu,\"received_recipients\":%llu,"
	    "\"total\":%llu,\"sent\":%llu,\"bounced\":%llu,\"deferred\":%llu,"
	    "\"suppressed\":%llu,\"bounced_by_class\":{",
	    (unsigned long long)stats_row_get(r, "received"),
	    (unsigned long long)stats_row_get(r, "received_rcpts"),
	    (unsigned long long)row_total(r),
	    (unsigned long long)stats_row_get(r, "sent"),
	    (unsigned long long)stats_row_sum(r, "bounced:"),
	    (unsigned long long)stats_row_get(r, "deferred"),
	    (unsigned long long)stats_row_get(r, "suppressed"));
	bool first = true;
	for (size_t k = 0; k < r->n; k++)
		if (strncmp(r->names[k], "bounced:", 8) == 0) {
			fputs(first ? "" : ",", out);
			escape_json(out, r->names[k] + 8);
			fprintf(out, ":%llu", (unsigned long long)r->values[k]);
			first = false;
		}
	fputc('}', out);
}

static void
print_json(const struct stats_table *t, enum stats_by by, int64_t since_day,
    FILE *out)
{
	struct stats_table all = {NULL, 0, 0};
	char since[16];
	time_t s = (time_t)(since_day * 86400);

	strftime(since, sizeof(since), "%Y-%m-%d", gmtime(&s));
	fprintf(out, "{\"since\":\"%s\",\"by\":\"%s\",\"rows\":[", since,
	    by_names[by]);
	for (size_t i = 0; i < t->n; i++) {
		const struct stats_row *r = &t->rows[i];
		fprintf(out, "%s{\"%s\":", i ? "," : "", by_names[by]);
		escape_json(out, r->key);
		fputc(',', out);
		json_counts(r, out);
		fputc('}', out);
		for (size_t k = 0; k < r->n; k++)
			stats_table_add(&all, "", r->names[k], r->values[k]);
	}
	if (all.n == 0)
		stats_table_add(&all, "", "sent", 0);
	fputs("],\"total\":{", out);
	json_counts(&all.rows[0], out);
	fputs("}}\n", out);
	stats_table_free(&all);
}

/* The first day --since asks for, or -1 (said on stderr). */
static int64_t
since_day_of(const char *since)
{
	int64_t day = stats_since_day(since, time(NULL));

	if (day < 0)
		log_stderr("--since %s: a duration (24h, 7d) or a date "
		    "(YYYY-MM-DD)", since);
	return day;
}

int
stats_command(const struct mxl_config *cfg, int argc, char **argv)
{
	const char *since = NULL;
	enum stats_by by = BY_PROVIDER;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			since = argv[++i];
		} else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc) {
			size_t b = 0;
			i++;
			while (b < 4 && strcmp(argv[i], by_names[b]) != 0)
				b++;
			if (b == 4) {
				log_stderr("--by %s: provider, source, lane or "
				    "pool", argv[i]);
				return EX_USAGE;
			}
			by = (enum stats_by)b;
		} else {
			return EX_USAGE;
		}
	}
	int64_t since_day = since_day_of(since);
	if (since_day < 0)
		return EX_USAGE;
	struct collect c;
	memset(&c, 0, sizeof(c));
	c.by = by;
	int rc = collect(cfg, since_day, &c);
	if (rc == 0 && json) {
		print_json(&c.rows, by, since_day, stdout);
	} else if (rc == 0) {
		print_table(&c.rows, by_names[by], stdout);
		print_classes(&c.rows, stdout);
	}
	collect_free(&c);
	return rc;
}

/* ------------------------------------------------------------- report */

static int
compare_count_desc(const void *a, const void *b)
{
	const struct stats_row *x = a, *y = b;
	uint64_t vx = x->n ? x->values[0] : 0, vy = y->n ? y->values[0] : 0;
	if (vx != vy)
		return vx > vy ? -1 : 1;
	return strcmp(x->key, y->key);
}

#define REPORT_TOP	10

static void
print_reasons(struct stats_table *t, const char *title, FILE *out)
{
	fprintf(out, "\n%s\n", title);
	for (size_t i = strlen(title); i > 0; i--)
		fputc('-', out);
	fputc('\n', out);
	if (t->n > 1)
		qsort(t->rows, t->n, sizeof(*t->rows), compare_count_desc);
	if (t->n == 0)
		fprintf(out, "  none\n");
	for (size_t i = 0; i < t->n && i < REPORT_TOP; i++) {
		const char *tab = strchr(t->rows[i].key, '\t');
		int rlen = tab ? (int)(tab - t->rows[i].key) :
		    (int)strlen(t->rows[i].key);
		fprintf(out, "  %8llu  %-16s %.*s\n",
		    (unsigned long long)t->rows[i].values[0],
		    tab ? tab + 1 : "-", rlen, t->rows[i].key);
	}
}

static void
print_underlined(const char *title, FILE *out)
{
	fprintf(out, "\n%s\n", title);
	for (size_t i = strlen(title); i > 0; i--)
		fputc('-', out);
	fputc('\n', out);
}

int
report_command(const struct mxl_config *cfg, int argc, char **argv)
{
	const char *since = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
			since = argv[++i];
		else
			return EX_USAGE;
	}
	int64_t since_day = since_day_of(since);
	if (since_day < 0)
		return EX_USAGE;
	struct collect c;
	memset(&c, 0, sizeof(c));
	c.by = BY_PROVIDER;
	int rc = collect(cfg, since_day, &c);
	if (rc != 0) {
		collect_free(&c);
		return rc;
	}
	struct stats_table all = {NULL, 0, 0};
	for (size_t i = 0; i < c.rows.n; i++)
		for (size_t k = 0; k < c.rows.rows[i].n; k++)
			stats_table_add(&all, "", c.rows.rows[i].names[k],
			    c.rows.rows[i].values[k]);
	if (all.n == 0)
		stats_table_add(&all, "", "sent", 0);
	const struct stats_row *g = &all.rows[0];
	char day[16];
	time_t s = (time_t)(since_day * 86400);
	strftime(day, sizeof(day), "%Y-%m-%d", gmtime(&s));
	printf("mxlane report since %s 00:00 UTC (from the spool's counters)"
	    "\n", day);
	print_underlined("Grand Totals", stdout);
	printf("  %8llu  received (messages)\n",
	    (unsigned long long)stats_row_get(g, "received"));
	printf("  %8llu  received (recipients)\n",
	    (unsigned long long)stats_row_get(g, "received_rcpts"));
	printf("  %8llu  delivered\n",
	    (unsigned long long)stats_row_get(g, "sent"));
	printf("  %8llu  deferred\n",
	    (unsigned long long)stats_row_get(g, "deferred"));
	printf("  %8llu  bounced\n",
	    (unsigned long long)stats_row_sum(g, "bounced:"));
	printf("  %8llu  suppressed\n",
	    (unsigned long long)stats_row_get(g, "suppressed"));
	stats_table_free(&all);
	print_underlined("Per provider", stdout);
	print_table(&c.rows, "provider", stdout);
	print_classes(&c.rows, stdout);
	print_underlined("Per source", stdout);
	print_table(&c.sources, "source", stdout);
	print_reasons(&c.deferrals, "Top deferral reasons", stdout);
	print_reasons(&c.bounces, "Top bounce reasons", stdout);
	collect_free(&c);
	return 0;
}
