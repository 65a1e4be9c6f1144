/*
 * NAME
 *	nexthop - where mail for a domain goes, and from which address
 * SYNOPSIS
 *	#include "queuerun/nexthop.h"
 * DESCRIPTION
 *	The one next-hop decision of mxlane. Delivery (runner.c) makes it
 *	for each destination domain of a claimed batch; "queuerun route",
 *	and so "sendmail -bv", makes it for each address it is asked about
 *	and prints it (explain.c). Both run this code, so what route says is
 *	what a delivery would do now.
 *
 *	nexthop_find() decides what depends on the recipient domain only:
 *	  - the hosts to try, in order, and the port:
 *	    a domain literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" is that
 *	    one host, with no look-up (any other literal bounces);
 *	    a domain listed by a provider that has a relay goes to the
 *	    relay: "[host]" or "[address]" (IPv4 or IPv6) is that host
 *	    alone (its A and AAAA records, no MX look-up), a bare "host"
 *	    its MX hosts, on the relay's port, else smtp_port;
 *	    any other domain goes to its MX hosts (dns_find_mx(), A and
 *	    AAAA records) on smtp_port;
 *	    the addresses are then put in the order to try them by
 *	    smtp_address_preference, as Postfix does: among hosts of
 *	    equal MX preference, "ipv4" or "ipv6" puts that family first,
 *	    "any" (the default) shuffles them (a host may then appear
 *	    more than once in hosts, each time with some of its
 *	    addresses); these answers, failures included, are kept for a
 *	    minute, since a batch claimed in due order visits the same
 *	    domains again and again (relay look-ups are not kept).
 *	    A look-up that fails is part of the decision: status says
 *	    whether the mail waits (DNS_TEMPFAIL) or bounces, and err says
 *	    why in the words that go to the log, mailq and the bounce;
 *	  - the provider, and why: by the providers' domains lists, then
 *	    by the names of the MX hosts found, then "therest"
 *	    (route_provider()). The names of a relay's or an implicit MX's
 *	    hosts are not matched: they are not the domain's MX.
 *
 *	nexthop_apply_mta_sts() adds the recipient domain's MTA-STS policy
 *	(mtasts.h) to a decision made by nexthop_find(), for MX delivery
 *	only (a relay or a domain literal is not the domain's MX), when
 *	mta_sts is on: in mode enforce, the MX hosts that match none of the
 *	policy's mx patterns are dropped, and when none is left the mail
 *	waits (DNS_TEMPFAIL, with err saying why); in mode testing they
 *	stay and sts_unmatched names them, for the log. Delivery then
 *	requires verified TLS in mode enforce (deliver.h). It is separate
 *	from nexthop_find() because it may fetch a policy over HTTPS: the
 *	engine's grouping of domains by MX host (job_next_hop_key()) needs
 *	the hosts only.
 *
 *	nexthop_set_lane() adds what depends on the message's lane as well:
 *	whether the lane has priority, the pool of source addresses and
 *	why (route_pool()), and the limits (route_limits()).
 *	nexthop_set_move() then puts in the pool, or the one source, that
 *	"queuerun move" gave the message (spool_msg's move_pool and
 *	move_source): it leaves from there, with the lane's and
 *	provider's limits; a pool or source no longer configured is
 *	ignored (the lane and provider decide again).
 *
 *	nexthop_next_source() names the pool source the next connection
 *	leaves from (nexthop_next_source_family(): among the sources of
 *	one address family, since a connection to an IPv6 host leaves from
 *	an IPv6 source; a pool without a source of a family has the
 *	addresses of that family skipped, nexthop_family_usable()), by
 *	weighted round robin (route_choose_source()) over what each source
 *	has sent; nexthop_count_sent() adds a connection's transactions to
 *	those counts (reserved when it starts). The counts live in the
 *	spool, so the weights hold across runners, passes and processes,
 *	and route names
 *	the source the next delivery will really use.
 * SEE ALSO
 *	route.h for the policy, dns.h for the look-ups, RFC 5321 section 5.1
 */
#ifndef MXLANE_NEXTHOP_H
#define MXLANE_NEXTHOP_H

#include <stdbool.h>

#include "dns/dns.h"
#include "lib/config.h"
#include "queuerun/mtasts.h"
#include "spool/spool.h"

enum nexthop_via {
	NEXTHOP_MX,			/* the domain's MX hosts */
	NEXTHOP_LITERAL,		/* a domain literal: that address */
	NEXTHOP_RELAY,			/* the provider's relay */
};

struct nexthop {
	/* By domain: nexthop_find(). */
	const struct mxl_provider *provider;	/* NULL: none */
	char provider_why[256];
	enum nexthop_via via;
	enum dns_status status;		/* DNS_OK: hosts holds where to go */
	char err[512];			/* otherwise why not */
	struct dns_mx hosts;		/* in the order to try them */
	int port;
	/* MTA-STS: nexthop_apply_mta_sts(). */
	struct mtasts_state sts;	/* sts.have: a policy applies */
	char sts_domain[256];		/* whose policy */
	char sts_unmatched[512];	/* MX hosts outside the policy */
	/* By lane as well: nexthop_set_lane(). */
	const struct mxl_lane *lane;	/* NULL: no longer configured */
	bool priority;			/* the lane's priority flag */
	const struct mxl_pool *pool;	/* NULL: the kernel picks */
	char pool_why[256];
	struct mxl_limits limits;
	struct mxl_pool moved;		/* a move's one source, as a pool */
};

/* domain is lower case, as the spool keeps it; "" is a permanent failure. */
void nexthop_find(const struct mxl_config *cfg,
    const struct dns_resolver *dns, const char *domain, struct nexthop *nh);
/* sp may be NULL: no policy kept or read, only fetched. */
void nexthop_apply_mta_sts(const struct mxl_config *cfg,
    const struct dns_resolver *dns, struct spool *sp, const char *domain,
    struct nexthop *nh);
void nexthop_set_lane(const struct mxl_config *cfg, struct nexthop *nh,
    const struct mxl_lane *lane);
void nexthop_set_move(const struct mxl_config *cfg, struct nexthop *nh,
    const char *pool, const char *source);
/*
 * Whether msg's move is for mail to nh's provider: a move made with
 * "--provider P" is for P's recipients only (move_provider).
 */
bool nexthop_move_applies(const struct spool_msg *msg,
    const struct nexthop *nh);
/*
 * The configured source whose address is address (as written in the
 * configuration), in the first pool that has it (*pool), or NULL.
 */
const struct mxl_source *nexthop_source_named(const struct mxl_config *cfg,
    const char *address, const struct mxl_pool **pool);
void nexthop_free(struct nexthop *nh);

/*
 * Index into nh->pool->sources of the next connection's source; -1 when
 * there is no pool or none of its sources is enabled. sp may be NULL
 * (nothing counted yet).
 */
int nexthop_next_source(struct spool *sp, const struct nexthop *nh);
/* The same among the enabled sources of family (AF_INET, AF_INET6). */
int nexthop_next_source_family(struct spool *sp, const struct nexthop *nh,
    int family);
/*
 * The same, among the sources ready for the provider now (shaping.h:
 * the provider not deferred, the source not suspended, not a warming
 * source at its day's cap). -1 with a pool
 * whose enabled sources are none of them ready: *wait_until (unix s)
 * is when the first may be, why says why (0 and "" when none is
 * enabled). family AF_UNSPEC: any. sp NULL: every source is ready.
 */
int nexthop_ready_source(struct spool *sp, const struct nexthop *nh,
    int family, int64_t now, int64_t *wait_until, char *why,
    size_t whylen);
/*
 * Whether addresses of family may be tried: there is no pool (the
 * kernel picks the source), or it has an enabled source of that family.
 */
bool nexthop_family_usable(const struct nexthop *nh, int family);
/*
 * The family of the first address that will be tried, whose source the
 * connection is counted and throttled as; AF_UNSPEC when none can be.
 */
int nexthop_first_family(const struct nexthop *nh);
/*
 * Counts count transactions sent from nh->pool->sources[source]. A
 * connection counts what it plans to send as soon as its source is
 * chosen, and gives back what it did not send (a negative count)
 * afterwards, so that sessions starting at once in several workers
 * see one another and the weights hold.
 */
void nexthop_count_sent(struct spool *sp, const struct nexthop *nh,
    int source, int64_t count);

#endif
