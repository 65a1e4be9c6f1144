/*
 * NAME
 *	units - durations and rates as the configuration writes them
 * SYNOPSIS
 *	#include "lib/units.h"
 * DESCRIPTION
 *	"30s", "5m", "4h", "5d", "1w" or plain seconds; "20/s", "100/h".
 *	Apart from config.c because the reply rules' parser
 *	(replyrules.c), which config.c calls, reads them too.
 */
#ifndef MXLANE_UNITS_H
#define MXLANE_UNITS_H

#include <stdbool.h>

/* Parses "30s", "5m", "4h", "5d", "1w" or plain seconds; -1 if bad. */
long long config_parse_time(const char *text);
/* Parses "20/s", "100/h"...; returns false if malformed. */
bool config_parse_rate(const char *text, long *count, int *period);

#endif
