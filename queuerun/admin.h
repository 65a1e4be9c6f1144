/*
 * NAME
 *	admin - queue administration: hold, release, requeue, delete, move
 * SYNOPSIS
 *	#include "queuerun/admin.h"
 * DESCRIPTION
 *	admin_command() runs "queuerun hold|release|requeue|delete|move
 *	[SELECTORS] QUEUEID...|ALL" (queuerun.8): it chooses the mail with
 *	admin_select_*, then has the spool change it in batches
 *	(spool_admin_apply), logs each message like postsuper, and prints
 *	what it did ("held: 127 messages").
 *
 *	The choice is made here and only here: a message is chosen when
 *	its queue id was named (or ALL) and its envelope passes the
 *	message selectors (--lane, --sender, --older-than), and one of its
 *	pending recipients passes the recipient selectors (--domain,
 *	--recipient, --deferred, --class, --source, --provider, --pool).
 *	hold, release and move act on whole messages; requeue and delete
 *	on the chosen recipients only when a recipient selector was given,
 *	else on every pending recipient.
 */
#ifndef MXLANE_ADMIN_H
#define MXLANE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"
#include "spool/spool.h"

struct admin_select {
	bool all;			/* ALL */
	char **ids;			/* else these queue ids */
	size_t nids;
	const char *lane;
	const char *sender;		/* "" or "<>": the null sender */
	int64_t older_than;		/* seconds, 0: any */
	const char *domain;
	const char *recipient;
	bool deferred;			/* attempted at least once */
	const char *class;		/* the last failure's reply class */
	const char *source;		/* moved to, else last left from */
	const char *provider;		/* nexthop's decision for the domain */
	const char *pool;
};

/* Whether a recipient selector was given. */
bool admin_select_by_rcpt(const struct admin_select *s);
/* The message selectors, on the envelope. */
bool admin_select_msg(const struct admin_select *s,
    const struct spool_msg *msg, int64_t now);
/*
 * The recipient selectors but --provider and --pool, which need the
 * next-hop decision (admin.c asks nexthop for them).
 */
bool admin_select_rcpt(const struct admin_select *s,
    const struct spool_msg *msg, const struct spool_rcpt *r);

/* argv[0] is the verb. Returns a sysexits code. */
int admin_command(const struct mxl_config *cfg, int argc, char **argv);
/*
 * "queuerun list [--json]": the whole queue as mailq prints it, or as
 * mailq --json does with each recipient's provider and pool filled in.
 */
int admin_list(const struct mxl_config *cfg, int argc, char **argv);

#endif
