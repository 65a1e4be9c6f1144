/*
 * NAME
 *	options - the sendmail command line, as real clients write it
 * DESCRIPTION
 *	See options.h. Hand-written rather than getopt(3) because sendmail
 *	flags are not getopt-shaped: "-bp", "-oem", "-qR<domain>" and
 *	"-O Lane=bulk" carry their argument inside the flag, while "-f" may
 *	be given an empty separate argument meaning the null sender.
 */
#include "sendmail/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "spool/spool.h"
#include "lib/util.h"

static int
usage_error(char *err, size_t errlen, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg);
	return EX_USAGE;
}

int
options_parse_notify(const char *value)
{
	char *copy = xstrdup(value), *save = NULL;
	int bits = 0;

	for (char *w = strtok_r(copy, ",", &save); w;
	    w = strtok_r(NULL, ",", &save)) {
		str_trim(w);
		if (str_casecmp_ascii(w, "never") == 0)
			bits |= SPOOL_NOTIFY_NEVER;
		else if (str_casecmp_ascii(w, "success") == 0)
			bits |= SPOOL_NOTIFY_SUCCESS;
		else if (str_casecmp_ascii(w, "failure") == 0)
			bits |= SPOOL_NOTIFY_FAILURE;
		else if (str_casecmp_ascii(w, "delay") == 0)
			bits |= SPOOL_NOTIFY_DELAY;
		else
			bits = -1;
		if (bits < 0)
			break;
	}
	free(copy);
	/* RFC 3461: NEVER stands alone. */
	if (bits == 0 || (bits > 0 && (bits & SPOOL_NOTIFY_NEVER) &&
	    bits != SPOOL_NOTIFY_NEVER))
		return -1;
	return bits;
}

/* Flags that take a value, glued or as the next argument. */
static bool
takes_value(char flag)
{
	return strchr("fFrNRVBCOhLXo", flag) != NULL;
}

static int
apply_b(struct sm_options *o, const char *mode, char *err, size_t errlen)
{
	if (strcmp(mode, "m") == 0)
		o->mode = MODE_DELIVER;
	else if (strcmp(mode, "s") == 0)
		o->mode = MODE_SMTP;
	else if (strcmp(mode, "p") == 0)
		o->mode = MODE_PRINTQ;
	else if (strcmp(mode, "i") == 0)
		o->mode = MODE_NEWALIASES;
	else if (strcmp(mode, "v") == 0)
		o->mode = MODE_VERIFY;
	else
		return usage_error(err, errlen, "unsupported mode -b%s", mode);
	return 0;
}

static int
apply_o(struct sm_options *o, const char *opt)
{
	/* -oi is the only -o option with a meaning here; others are legacy. */
	if (strcmp(opt, "i") == 0)
		o->ignore_dots = true;
	return 0;
}

static int
apply_O(struct sm_options *o, const char *opt, char *err, size_t errlen)
{
	const char *eq = strchr(opt, '=');

	if (eq == NULL)
		return usage_error(err, errlen, "-O %s: expected option=value",
		    opt);
	if ((size_t)(eq - opt) == 4 && str_ncasecmp_ascii(opt, "lane", 4) == 0)
		o->lane = eq + 1;
	/* Other sendmail.cf options have no meaning for mxlane. */
	return 0;
}

static int
apply_value(struct sm_options *o, char flag, const char *value, char *err,
    size_t errlen)
{
	int bits;

	switch (flag) {
	case 'f':
	case 'r':
		o->sender = value;
		break;
	case 'F':
		o->fullname = value;
		break;
	case 'N':
		if ((bits = options_parse_notify(value)) < 0)
			return usage_error(err, errlen, "-N %s: expected never "
			    "or a list of success,failure,delay", value);
		o->notify = (uint32_t)bits;
		break;
	case 'R':
		if (str_casecmp_ascii(value, "full") == 0)
			o->ret = SPOOL_RET_FULL;
		else if (str_casecmp_ascii(value, "hdrs") == 0)
			o->ret = SPOOL_RET_HDRS;
		else
			return usage_error(err, errlen, "-R %s: expected full "
			    "or hdrs", value);
		break;
	case 'V':
		for (const char *p = value; *p; p++)
			if (*p < 33 || *p > 126)
				return usage_error(err, errlen, "-V: envelope "
				    "id \"%s\" must be printable ASCII", value);
		if (*value == '\0' || strlen(value) > 100)
			return usage_error(err, errlen, "-V: envelope id must "
			    "be 1 to 100 characters%s", "");
		o->envid = value;
		break;
	case 'B':
		if (str_casecmp_ascii(value, "7bit") == 0)
			o->body = SPOOL_BODY_7BIT;
		else if (str_casecmp_ascii(value, "8bitmime") == 0)
			o->body = SPOOL_BODY_8BITMIME;
		else
			return usage_error(err, errlen, "-B %s: expected 7BIT "
			    "or 8BITMIME", value);
		break;
	case 'C':
		o->config = value;
		break;
	case 'O':
		return apply_O(o, value, err, errlen);
	case 'o':
		return apply_o(o, value);
	case 'h':
	case 'L':
	case 'X':
		break;		/* hop count, syslog label, traffic log */
	}
	return 0;
}

static void
add_rcpt(struct sm_options *o, char *arg)
{
	o->rcpts = xrealloc(o->rcpts, (o->nrcpts + 1) * sizeof(char *));
	o->rcpts[o->nrcpts++] = arg;
}

int
options_parse(const char *progname, int argc, char **argv,
    struct sm_options *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->mode = MODE_DELIVER;
	if (strcmp(progname, "mailq") == 0)
		o->mode = MODE_PRINTQ;
	else if (strcmp(progname, "newaliases") == 0)
		o->mode = MODE_NEWALIASES;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			while (++i < argc)
				add_rcpt(o, argv[i]);
			break;
		}
		if (strcmp(arg, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			add_rcpt(o, arg);
			continue;
		}
		char flag = arg[1];
		const char *rest = arg + 2;
		int rc = 0;

		if (takes_value(flag)) {
			if (*rest == '\0') {
				if (i + 1 >= argc)
					return usage_error(err, errlen,
					    "option -%s needs a value",
					    (char[]){flag, '\0'});
				rest = argv[++i];
			}
			rc = apply_value(o, flag, rest, err, errlen);
		} else {
			switch (flag) {
			case 't':
				o->extract_rcpts = true;
				break;
			case 'i':
				o->ignore_dots = true;
				break;
			case 'v':
				o->verbose = true;
				break;
			case 'b':
				rc = apply_b(o, rest, err, errlen);
				break;
			case 'I':
				o->mode = MODE_NEWALIASES;
				break;
			case 'q':
				o->mode = MODE_QUEUE;
				o->queue_arg = rest;
				break;
			case 'U':	/* initial user submission */
			case 'G':	/* gateway submission */
			case 'm':	/* me too: always so */
			case 'n':	/* no aliasing: ignored like Postfix */
			case 'A':	/* -Am / -Ac: which .cf file */
				break;
			default:
				return usage_error(err, errlen,
				    "unsupported option %s", arg);
			}
			/* Single-letter boolean flags may be bundled: -ti. */
			if (strchr("tivUGmn", flag) && *rest) {
				for (const char *p = rest; *p; p++)
					if (*p == 't')
						o->extract_rcpts = true;
					else if (*p == 'i')
						o->ignore_dots = true;
					else if (*p == 'v')
						o->verbose = true;
					else if (!strchr("UGmn", *p))
						return usage_error(err, errlen,
						    "unsupported option %s",
						    arg);
			}
		}
		if (rc != 0)
			return rc;
	}
	if (o->json && o->mode != MODE_PRINTQ)
		return usage_error(err, errlen, "%s is for mailq and -bp only",
		    "--json");
	return 0;
}
