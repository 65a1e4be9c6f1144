/*
 * NAME
 *	replies - what a reply (or a local failure) means: its class
 * SYNOPSIS
 *	#include "route/replies.h"
 *
 *	const struct reply_rule *replies_classify(const struct mxl_config *cfg,
 *	    const char *provider, const char *code, const char *status,
 *	    const char *text);
 * DESCRIPTION
 *	Every SMTP reply that is not a success, and every local failure
 *	(DNS, connection, time-out), gets a class from the configuration's
 *	reply rules (reply "NAME" { ... } sections: conf/replies.conf ships
 *	them, an administrator adds or replaces some). The rules are read
 *	and checked by lib/config.c (lib/replyrules.c) and hang off struct
 *	mxl_config in the order they are tried: the administrator's rules
 *	first, then the shipped ones (those read from a file named
 *	replies.conf), each in file order; a rule named like a shipped one
 *	replaces it. The first rule that matches wins; a built-in rule named
 *	"unknown" ends the list, so replies_classify() never returns NULL.
 *
 *	A rule matches when each of its optional conditions holds: the
 *	provider (the name the reply's host maps to; NULL or "" matches
 *	only a rule without one), the basic code (a glob over the three
 *	digits, "4*"), the enhanced status (a glob, "5.1.*") and the text
 *	(a POSIX extended regular expression, case-insensitive, searched in
 *	the whole reply as the log shows it). Local failures have code "".
 *
 *	replies_split() takes a reply line apart: "550 5.1.1 text" gives
 *	code "550" and status "5.1.1"; a local failure that quotes a
 *	server ("host X said: 451 4.3.0 ...") gives the quoted reply's.
 *
 *	The action fields are parsed and checked here but acted upon by the
 *	traffic shaping code (see the interface note of issue 9).
 */
#ifndef MXLANE_REPLIES_H
#define MXLANE_REPLIES_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/config.h"
#include "lib/replyrules.h"	/* struct reply_rule */


/*
 * Compiles every rule's regular expression (lib/replyrules.h says why
 * apart); a bad one: -1 and "file:line: ..." in err.
 */
int replies_compile(struct mxl_config *cfg, char *err, size_t errlen);

const struct reply_rule *replies_classify(const struct mxl_config *cfg,
    const char *provider, const char *code, const char *status,
    const char *text);

/*
 * code (4 bytes) and status (16 bytes) of a reply line; "" where there
 * is none.
 */
void replies_split(const char *reply, char code[4], char status[16]);

/*
 * Classifies a whole reply line (replies_split, then replies_classify);
 * local_status: an RFC 3463 code our own failure was given (DNS
 * NXDOMAIN 5.1.2), used when the text has none.
 */
const struct reply_rule *replies_classify_line(const struct mxl_config *cfg,
    const char *provider, const char *reply, const char *local_status);

#endif
