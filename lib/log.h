/*
 * NAME
 *	log - one line per event, to syslog (mail facility) or to log_file
 * DESCRIPTION
 *	Lines follow Postfix's formats so pflogsumm and grep habits work.
 *	With log_file set, each line gets a syslog-style prefix
 *	("Nov 25 13:16:02 host mxlane/sendmail[pid]: ") and is appended with
 *	one write(2), so lines from concurrent processes never interleave.
 *
 *	log_fatal() is for the top of a program: it prints "prog: message"
 *	on stderr, logs it, and exits with the given sysexits code.
 */
#ifndef MXLANE_LOG_H
#define MXLANE_LOG_H

#include "lib/util.h"

/* progname is e.g. "sendmail"; the syslog tag becomes "mxlane/sendmail". */
void log_init(const char *progname);
/* Switches to a log file ("" or NULL = syslog). Call after config load. */
void log_set_file(const char *path);
const char *log_progname(void);
/*
 * Names the part of mxlane a line comes from, as Postfix's daemons do
 * ("pickup", "cleanup", "qmgr", "smtp"), so pflogsumm --syslog-name=mxlane
 * counts it. NULL goes back to the program name.
 */
void log_set_component(const char *component);

void log_info(const char *fmt, ...) MXL_PRINTF(1, 2);
void log_warn(const char *fmt, ...) MXL_PRINTF(1, 2);
void log_error(const char *fmt, ...) MXL_PRINTF(1, 2);
/* Prints "prog: message" on stderr only (for the person at the terminal). */
void log_stderr(const char *fmt, ...) MXL_PRINTF(1, 2);
/* stderr + log, then exit(code). */
_Noreturn void log_fatal(int code, const char *fmt, ...) MXL_PRINTF(2, 3);

#endif
