/*
 * NAME
 *	options - the sendmail command line, as real clients write it
 * DESCRIPTION
 *	options_parse() accepts every flag of sendmail(8) / Postfix's
 *	sendmail(1) that PHP, PHPMailer, Symfony, PEAR Mail, cron, mutt,
 *	mailx and git send-email pass. Option values may be glued ("-fa@b")
 *	or separate ("-f a@b"); "--" ends the options; options may also
 *	follow recipients (GNU getopt order, as Postfix on Linux). Flags with
 *	no meaning for mxlane (-oem, -odb, -h 5, -L x, -U, -G, -m, -n, -X f,
 *	-A*) are accepted and ignored, never refused.
 */
#ifndef MXLANE_OPTIONS_H
#define MXLANE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sm_mode {
	MODE_DELIVER,		/* -bm: read a message, queue it */
	MODE_SMTP,		/* -bs */
	MODE_PRINTQ,		/* -bp, mailq */
	MODE_NEWALIASES,	/* -bi, -I, newaliases */
	MODE_QUEUE,		/* -q... */
	MODE_VERIFY,		/* -bv: show how addresses would be routed */
};

struct sm_options {
	enum sm_mode mode;
	bool extract_rcpts;	/* -t */
	bool ignore_dots;	/* -i, -oi */
	bool verbose;		/* -v */
	const char *sender;	/* -f / -r as given, or NULL */
	const char *fullname;	/* -F */
	uint32_t notify;	/* -N, SPOOL_NOTIFY_* bits, 0 = none */
	int ret;		/* -R, enum spool_ret */
	const char *envid;	/* -V */
	int body;		/* -B, enum spool_body */
	const char *config;	/* -C */
	const char *lane;	/* -O Lane=NAME */
	const char *queue_arg;	/* what followed -q ("" for plain -q) */
	bool json;		/* --json: mailq as JSON lines */
	char **rcpts;		/* recipients from the command line */
	size_t nrcpts;
};

/*
 * progname selects mailq/newaliases behaviour. Returns 0, or EX_USAGE
 * with the reason in err. o->rcpts points into argv (array is malloced).
 */
int options_parse(const char *progname, int argc, char **argv,
    struct sm_options *o, char *err, size_t errlen);
/* Parses a -N / NOTIFY= value into bits; -1 when malformed. */
int options_parse_notify(const char *value);

#endif
