/*
 * NAME
 *	explain - "queuerun route ADDRESS...": how mail to an address goes
 * DESCRIPTION
 *	For each address: the lane (and the rule that chose it, as at
 *	submission), then the next-hop decision of nexthop.h, the code a
 *	delivery runs: the provider and why (domain list, MX pattern, or
 *	therest), the relay when there is one, the hosts in the order they
 *	would be tried (MX hosts, a relay's hosts, or a domain literal's
 *	address) or the look-up's failure and whether the mail would wait
 *	or bounce, the pool and why, the source address the next connection
 *	would use, and the limits that apply. Look-ups go to the configured
 *	resolver, exactly as for a delivery.
 */
#ifndef MXLANE_EXPLAIN_H
#define MXLANE_EXPLAIN_H

#include <stdio.h>

#include "lib/config.h"

/* Returns 0, or EX_NOUSER when an address is not valid. */
int explain_routes(const struct mxl_config *cfg, const char *lane,
    const char *sender, char **addresses, int n, FILE *out);

#endif
