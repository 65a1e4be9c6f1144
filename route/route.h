/*
 * NAME
 *	route - which lane, which provider, which source address, how fast
 * DESCRIPTION
 *	The policy of mxlane, kept apart from the spool, the DNS and SMTP:
 *	every function here decides from the configuration and what it is
 *	handed, and fetches nothing. The caller (queuerun/nexthop.c, and
 *	sendmail for the lane) looks up the MX host names and keeps the
 *	round-robin counts.
 *
 *
 *	route_lane() picks a message's lane, first match wins: the lane
 *	asked for with -O Lane=NAME, when the submitter may choose it; then
 *	each lane's rules in the order the lanes are declared (match_sender
 *	globs on the envelope sender, match_user on the submitting Unix
 *	user, match_header "Name: value" on the headers); else
 *	default_lane.
 *
 *	Who may choose: an administrator (root, the mail system's own
 *	account and its group) any lane; a user listed in the lane's
 *	allow_users that lane; any other user a lane without allow_users,
 *	unless a match_user or match_sender rule puts their mail in
 *	another lane: those rules are the administrator's, and a site
 *	user must not escape them (the priority lane's source addresses
 *	are not for a newsletter). A refused request is not an error: the
 *	rules decide, and *refused tells the caller to say so.
 *
 *	route_provider() maps a recipient domain to a provider: by the
 *	providers' domains lists (exact, or ".example.com" for every
 *	subdomain, like a transport map); else by the destination's MX host
 *	names, as handed in, against the providers' mx globs (so a company
 *	domain hosted at Google shares gmail's pool and limits); else the
 *	provider named "therest"; else none (no throttle, no pool).
 *
 *	route_pool() is the lane's pool if it names one, else the
 *	provider's, else the pool named "default", else none (the kernel
 *	chooses the source address). route_limits() is the lane's throttle
 *	keys when it has any, else the provider's.
 *
 *	route_choose_source() picks the source address of the next
 *	connection by weighted round robin over the pool's enabled sources:
 *	the one furthest behind its share of what the pool has sent, from
 *	the counts of what each source has sent that the caller hands in
 *	(and keeps, so that the weights hold across processes and passes).
 *	When that source is at its limit the mail waits for it rather than
 *	spilling onto another: the weights are the shares each address gets.
 *	route_choose_source_except() leaves out the sources the caller
 *	marks (suspended by a provider's reply, or a warming source that
 *	sent its day's cap): the others share the traffic by their weights.
 *	route_choose_source_family() does the same among the sources of one
 *	address family (AF_INET, AF_INET6), which share the family's
 *	traffic by their weights: a connection to an IPv6 host leaves from
 *	an IPv6 source.
 */
#ifndef MXLANE_ROUTE_H
#define MXLANE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

/* Headers are offered one at a time: next(ctx, i) or NULL after the last. */
typedef const char *(*route_header_fn)(void *ctx, size_t i, char **value);

struct route_submitter {
	const char *user;	/* login name of the real uid */
	const char *sender;	/* envelope sender, or NULL */
	bool admin;		/* may choose any lane */
};
const char *route_lane(const struct mxl_config *cfg, const char *requested,
    const struct route_submitter *who, route_header_fn headers, void *ctx,
    bool *refused, char *why, size_t whylen);

/* By domain only (no look-up needed); NULL when the domain lists miss. */
const struct mxl_provider *route_provider_by_domain(
    const struct mxl_config *cfg, const char *domain, char *why,
    size_t whylen);
/*
 * By domain, then the names of the domain's MX hosts (nmx 0: none, or
 * not known), then "therest".
 */
const struct mxl_provider *route_provider(const struct mxl_config *cfg,
    const char *domain, const char *const *mx_names, size_t nmx, char *why,
    size_t whylen);

const struct mxl_pool *route_pool(const struct mxl_config *cfg,
    const struct mxl_lane *lane, const struct mxl_provider *provider,
    char *why, size_t whylen);
struct mxl_limits route_limits(const struct mxl_lane *lane,
    const struct mxl_provider *provider);

/*
 * Index into pool->sources for the next connection; -1: none enabled.
 * sent[i] is what pool->sources[i] has sent (read for enabled ones only).
 */
int route_choose_source(const struct mxl_pool *pool, const uint64_t *sent);
/* The same among the sources of family only; AF_UNSPEC: all of them. */
int route_choose_source_family(const struct mxl_pool *pool,
    const uint64_t *sent, int family);

/* The same, leaving out the sources whose skip[i] is true (skip may be NULL). */
int route_choose_source_except(const struct mxl_pool *pool,
    const uint64_t *sent, int family, const bool *skip);

/* "concurrency 4, rate 20/s, ..." or "none". */
void route_limits_text(const struct mxl_limits *l, char *out, size_t len);

#endif
