/*
 * NAME
 *	metrics - Prometheus text exposition of the counters and the queue
 * DESCRIPTION
 *	metrics_print() writes every mxlane_* metric (queuerun(8) lists
 *	them) in the text exposition format 0.0.4: the all-time counters
 *	of spool/stats.h (they never go down: retention removes per-day
 *	records only) and the queue as status_gather() sees it.
 *
 *	metrics_command() runs "metrics" (to standard output).
 *
 *	metrics_textfile_write() writes the same to cfg->metrics_textfile
 *	for node_exporter's textfile collector: a temporary file beside
 *	it, fsync, rename, so a scrape reads a whole file or the previous
 *	one. Mode 0644: node_exporter runs as its own user, and the file
 *	holds counts, provider names and source addresses, never a mail
 *	address. metrics_textfile_tick() is the daemon's: it writes at
 *	most once every METRICS_INTERVAL seconds.
 */
#ifndef MXLANE_METRICS_H
#define MXLANE_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "lib/config.h"
#include "spool/spool.h"

#define METRICS_INTERVAL	15

int metrics_print(struct spool *sp, const struct mxl_config *cfg,
    int64_t now, FILE *out);
int metrics_command(const struct mxl_config *cfg, int argc, char **argv);
/* Nothing when metrics_textfile is unset. 0, or -1 after logging. */
int metrics_textfile_write(struct spool *sp, const struct mxl_config *cfg);
void metrics_textfile_tick(struct spool *sp, const struct mxl_config *cfg);

#endif
