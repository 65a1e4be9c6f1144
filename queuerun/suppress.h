/*
 * NAME
 *	suppress - "queuerun suppress ...": the suppression list, by hand
 * DESCRIPTION
 *	suppress_command() runs "list [--json] [PATTERN]", "add ADDRESS
 *	[--for TIME] [--reason TEXT]", "remove ADDRESS", "import FILE" and
 *	"export" (argv[0] is the verb). Returns 0 or a sysexits code;
 *	EX_USAGE means the caller prints the usage.
 */
#ifndef MXLANE_SUPPRESS_CMD_H
#define MXLANE_SUPPRESS_CMD_H

#include "lib/config.h"

int suppress_command(const struct mxl_config *cfg, int argc, char **argv);

#endif
