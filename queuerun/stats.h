/*
 * NAME
 *	stats - "queuerun stats" and "queuerun report": the counters
 * DESCRIPTION
 *	Both read the counters the spool keeps with every outcome
 *	(spool/stats.h), never a log.
 *
 *	stats_command() runs "stats [--since WHEN] [--by provider|source|
 *	lane|pool] [--json]": one row per provider (source, lane, pool)
 *	with received, total, sent, bounced, deferred and suppressed, and
 *	the bounces by class; queuerun(8) documents the table and JSON.
 *
 *	report_command() runs "report [--since WHEN]": a pflogsumm-style
 *	summary: grand totals, per provider and per source, the top
 *	deferral and bounce reasons.
 *
 *	WHEN is a duration back from now ("24h", "7d") or a date
 *	(YYYY-MM-DD, UTC); counters are kept per UTC day, so it is rounded
 *	down to the start of its day. Default: 24h.
 *
 *	Both return 0 or a sysexits code; EX_USAGE means the caller prints
 *	the usage.
 */
#ifndef MXLANE_STATS_CMD_H
#define MXLANE_STATS_CMD_H

#include <stdint.h>

#include "lib/config.h"

int stats_command(const struct mxl_config *cfg, int argc, char **argv);
int report_command(const struct mxl_config *cfg, int argc, char **argv);

/* The first UTC day --since WHEN covers, at now; -1 if WHEN is bad. */
int64_t stats_since_day(const char *when, int64_t now);

/*
 * Counters added up under one name each (a provider, a source...):
 * what both verbs, and metrics.c, print from.
 */
struct stats_row {
	char *key;
	char **names;
	uint64_t *values;
	size_t n;
};
struct stats_table {
	struct stats_row *rows;
	size_t n, cap;
};
void stats_table_add(struct stats_table *t, const char *key,
    const char *name, uint64_t value);
uint64_t stats_row_get(const struct stats_row *r, const char *name);
/* Sum of the counters whose name starts with prefix ("bounced:"). */
uint64_t stats_row_sum(const struct stats_row *r, const char *prefix);
void stats_table_sort(struct stats_table *t);
void stats_table_free(struct stats_table *t);

#endif
