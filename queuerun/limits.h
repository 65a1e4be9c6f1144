/*
 * NAME
 *	limits - queuerun limits: the users over their submitter limits
 * SYNOPSIS
 *	#include "queuerun/limits.h"
 * DESCRIPTION
 *	limits_over() reads the count files sendmail keeps
 *	(spool/submitcount.h) and calls fn for each limit a user went over
 *	in its current window: a message of theirs was held or refused
 *	(tempfail) in it. limits_command() prints them, one line each
 *	(queuerun(8)); queuerun status can list them through
 *	limits_over().
 */
#ifndef MXLANE_QR_LIMITS_H
#define MXLANE_QR_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/config.h"

struct limit_excess {
	const char *user;
	uint32_t uid;
	const char *what;		/* "messages" or "recipients" */
	uint64_t count;			/* counted in the window */
	long limit;
	int period;			/* seconds */
	int64_t window_end;		/* unix time */
	const char *action;		/* "hold" or "tempfail" */
	const char *section;		/* the submitter_limit's name */
};

int limits_over(const struct mxl_config *cfg, int spool_dirfd,
    void (*fn)(void *ctx, const struct limit_excess *e), void *ctx);
/*
 * limits_print() writes them, one line each after indent, or as JSON
 * objects separated by commas; *n says how many.
 */
int limits_print(const struct mxl_config *cfg, bool json, const char *indent,
    FILE *out, size_t *n);
int limits_command(const struct mxl_config *cfg, int argc, char **argv,
    FILE *out);

#endif
