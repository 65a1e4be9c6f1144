/*
 * NAME
 *	log - one line per event, to syslog (mail facility) or to log_file
 * DESCRIPTION
 *	See log.h. A log file line carries the same prefix syslog would
 *	write, so pflogsumm reads either. Each line is built in memory and
 *	appended with a single write(2) on an O_APPEND descriptor: lines from
 *	many concurrent submitters never interleave.
 */
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_tag[64] = "mxlane";
static const char *log_prog = "mxlane";
static int log_fd = -1;
static char log_host[256];

void
log_init(const char *progname)
{
	log_prog = progname;
	snprintf(log_tag, sizeof(log_tag), "mxlane/%s", progname);
	openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
	if (gethostname(log_host, sizeof(log_host) - 1) != 0)
		strcpy(log_host, "localhost");
	/* syslog shows the short host name; so do we. */
	char *dot = strchr(log_host, '.');
	if (dot)
		*dot = '\0';
}

void
log_set_file(const char *path)
{
	if (log_fd >= 0) {
		close(log_fd);
		log_fd = -1;
	}
	if (path == NULL || *path == '\0')
		return;
	/*
	 * Opened as the spool's owner, who writes it for every program
	 * (lib/proc.h); an existing file keeps the mode the admin gave it.
	 */
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0640);
	if (log_fd < 0)
		log_stderr("warning: cannot open log file %s: %s; logging to "
		    "syslog", path, strerror(errno));
}

void
log_set_component(const char *component)
{
	snprintf(log_tag, sizeof(log_tag), "mxlane/%s",
	    component ? component : log_prog);
	if (log_fd < 0) {
		closelog();
		openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

const char *
log_progname(void)
{
	return log_prog;
}

static void
log_emit(int priority, const char *fmt, va_list ap)
{
	struct buf line = BUF_INIT;
	const char *level = "";

	if (priority == LOG_WARNING)
		level = "warning: ";
	else if (priority <= LOG_ERR)
		level = "error: ";

	if (log_fd < 0) {
		buf_puts(&line, level);
		buf_vprintf(&line, fmt, ap);
		syslog(priority, "%s", line.data);
		buf_free(&line);
		return;
	}
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	buf_printf(&line, "%s %s %s[%ld]: %s", stamp, log_host, log_tag,
	    (long)getpid(), level);
	buf_vprintf(&line, fmt, ap);
	/* One record per line: a stray newline would forge a log entry. */
	for (size_t i = 0; i < line.len; i++)
		if (line.data[i] == '\n' || line.data[i] == '\r')
			line.data[i] = ' ';
	buf_putc(&line, '\n');
	(void)write_full(log_fd, line.data, line.len);
	buf_free(&line);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_ERR, fmt, ap);
	va_end(ap);
}

static void
stderr_line(const char *fmt, va_list ap)
{
	struct buf line = BUF_INIT;

	buf_printf(&line, "%s: ", log_prog);
	buf_vprintf(&line, fmt, ap);
	buf_putc(&line, '\n');
	(void)write_full(2, line.data, line.len);
	buf_free(&line);
}

void
log_stderr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stderr_line(fmt, ap);
	va_end(ap);
}

void
log_fatal(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stderr_line(fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	log_emit(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(code);
}
