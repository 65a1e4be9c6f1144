/*
 * NAME
 *	nexthop - where mail for a domain goes, and from which address
 * DESCRIPTION
 *	See nexthop.h. The policy (which provider, pool, limits, source) is
 *	route/'s; this file fetches what the policy is handed: the hosts
 *	from dns/ (and the MX cache here), the round-robin counts from the
 *	spool.
 */
#include "queuerun/nexthop.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"
#include "route/route.h"

/* A domain literal "[192.0.2.1]" is its own single host. */
static enum dns_status
literal_host(const char *domain, struct dns_mx *mx, char *err, size_t errlen)
{
	size_t len = strlen(domain);
	char ip[64];

	if (len < 3 || len - 2 >= sizeof(ip) || domain[len - 1] != ']') {
		snprintf(err, errlen, "malformed address literal %s", domain);
		return DNS_PERMFAIL;
	}
	memcpy(ip, domain + 1, len - 2);
	ip[len - 2] = '\0';
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "unsupported address literal %s",
		    domain);
		return DNS_PERMFAIL;
	}
	mx->hosts = xcalloc(1, sizeof(*mx->hosts));
	mx->nhosts = 1;
	mx->implicit = true;
	mx->hosts[0].name = xstrdup(ip);
	mx->hosts[0].preference = -1;
	memcpy(&mx->hosts[0].addrs[0], &sin, sizeof(sin));
	mx->hosts[0].addr_lens[0] = sizeof(sin);
	mx->hosts[0].naddrs = 1;
	return DNS_OK;
}

/*
 * MX answers, kept for a minute: a batch claimed in due order visits
 * the same domains again and again, and each look-up costs a round
 * trip to the resolver. Failures are kept too (a SERVFAIL is not asked
 * again a hundred times a second). The table is split into sets by a
 * hash of the domain, oldest out first within a set: a queue for
 * thousands of domains must not evict the answer it needs next.
 */
#define MX_CACHE_WAYS	8
#define MX_CACHE_SETS	1024
#define MX_CACHE_SIZE	(MX_CACHE_WAYS * MX_CACHE_SETS)
#define MX_CACHE_TTL	60

struct mx_cache_entry {
	char *domain;
	time_t expires;
	enum dns_status status;
	struct dns_mx mx;
	char err[512];
};

static struct mx_cache_entry mx_cache[MX_CACHE_SIZE];

static void
copy_mx(struct dns_mx *to, const struct dns_mx *from)
{
	*to = *from;
	to->hosts = xcalloc(from->nhosts + 1, sizeof(*to->hosts));
	for (size_t i = 0; i < from->nhosts; i++) {
		to->hosts[i] = from->hosts[i];
		to->hosts[i].name = xstrdup(from->hosts[i].name);
	}
}

static enum dns_status
cached_mx(const struct dns_resolver *dns, const char *domain,
    struct dns_mx *mx, char *err, size_t errlen)
{
	time_t now = time(NULL);
	uint32_t hash = 2166136261u;	/* FNV-1a */

	for (const char *c = domain; *c; c++)
		hash = (hash ^ (unsigned char)tolower((unsigned char)*c)) *
		    16777619u;
	struct mx_cache_entry *set = &mx_cache[(hash % MX_CACHE_SETS) *
	    MX_CACHE_WAYS];
	struct mx_cache_entry *slot = &set[0];

	for (size_t i = 0; i < MX_CACHE_WAYS; i++) {
		struct mx_cache_entry *e = &set[i];
		if (e->domain && strcasecmp(e->domain, domain) == 0 &&
		    e->expires > now) {
			copy_mx(mx, &e->mx);
			snprintf(err, errlen, "%s", e->err);
			return e->status;
		}
		if (e->expires < slot->expires)
			slot = e;	/* the oldest, or an empty one */
	}
	enum dns_status st = dns_find_mx(dns, domain, false, mx, err, errlen);
	free(slot->domain);
	dns_mx_free(&slot->mx);
	slot->domain = xstrdup(domain);
	slot->expires = now + MX_CACHE_TTL;
	slot->status = st;
	copy_mx(&slot->mx, mx);
	snprintf(slot->err, sizeof(slot->err), "%s", err);
	return st;
}

/* Relay hosts: "[127.0.0.30]" is an address, "[host]" A/AAAA only. */
static enum dns_status
relay_hosts(const struct dns_resolver *dns, const struct mxl_provider *p,
    struct dns_mx *mx, char *err, size_t errlen)
{
	if (!p->relay_no_mx)
		return dns_find_mx(dns, p->relay_host, false, mx, err, errlen);
	char literal[300];
	snprintf(literal, sizeof(literal), "[%s]", p->relay_host);
	if (literal_host(literal, mx, err, errlen) == DNS_OK)
		return DNS_OK;
	mx->hosts = xcalloc(1, sizeof(*mx->hosts));
	mx->nhosts = 1;
	mx->implicit = true;
	enum dns_status st = dns_find_addrs(dns, p->relay_host, false,
	    &mx->hosts[0], err, errlen);
	if (st != DNS_OK)
		dns_mx_free(mx);
	return st;
}

/* The domain's own hosts: a literal's address, or its MX hosts. */
static enum dns_status
domain_hosts(const struct dns_resolver *dns, const char *domain,
    struct nexthop *nh)
{
	if (*domain == '\0') {
		snprintf(nh->err, sizeof(nh->err), "recipient address has no "
		    "domain");
		return DNS_PERMFAIL;
	}
	if (domain[0] == '[') {
		nh->via = NEXTHOP_LITERAL;
		return literal_host(domain, &nh->hosts, nh->err,
		    sizeof(nh->err));
	}
	return cached_mx(dns, domain, &nh->hosts, nh->err, sizeof(nh->err));
}

void
nexthop_find(const struct mxl_config *cfg, const struct dns_resolver *dns,
    const char *domain, struct nexthop *nh)
{
	memset(nh, 0, sizeof(*nh));
	nh->via = NEXTHOP_MX;
	nh->port = cfg->smtp_port;
	nh->provider = route_provider_by_domain(cfg, domain, nh->provider_why,
	    sizeof(nh->provider_why));
	if (nh->provider && nh->provider->relay) {
		nh->via = NEXTHOP_RELAY;
		nh->status = relay_hosts(dns, nh->provider, &nh->hosts,
		    nh->err, sizeof(nh->err));
		if (nh->provider->relay_port)
			nh->port = nh->provider->relay_port;
		return;
	}
	nh->status = domain_hosts(dns, domain, nh);
	if (nh->provider)
		return;
	/* An implicit MX's name is the domain's own: nothing to match. */
	size_t nmx = nh->status == DNS_OK && !nh->hosts.implicit ?
	    nh->hosts.nhosts : 0;
	const char **names = xcalloc(nmx + 1, sizeof(*names));
	for (size_t h = 0; h < nmx; h++)
		names[h] = nh->hosts.hosts[h].name;
	nh->provider = route_provider(cfg, domain, names, nmx,
	    nh->provider_why, sizeof(nh->provider_why));
	free(names);
}

void
nexthop_apply_mta_sts(const struct mxl_config *cfg,
    const struct dns_resolver *dns, struct spool *sp, const char *domain,
    struct nexthop *nh)
{
	if (!cfg->mta_sts || nh->via != NEXTHOP_MX || nh->status != DNS_OK)
		return;
	snprintf(nh->sts_domain, sizeof(nh->sts_domain), "%s", domain);
	mtasts_find(cfg, dns, sp, domain, &nh->sts);
	if (!nh->sts.have)
		return;
	struct buf out = BUF_INIT;
	size_t kept = 0;
	for (size_t h = 0; h < nh->hosts.nhosts; h++) {
		struct dns_host *host = &nh->hosts.hosts[h];
		if (mtasts_mx_match(&nh->sts.policy, host->name)) {
			if (kept != h)
				nh->hosts.hosts[kept] = *host;
			kept++;
			continue;
		}
		buf_printf(&out, "%s%s", out.len ? ", " : "", host->name);
		if (nh->sts.policy.mode == MTASTS_ENFORCE)
			dns_host_free(host);
		else
			kept++;
	}
	snprintf(nh->sts_unmatched, sizeof(nh->sts_unmatched), "%s",
	    out.len ? out.data : "");
	buf_free(&out);
	if (nh->sts.policy.mode != MTASTS_ENFORCE)
		return;
	nh->hosts.nhosts = kept;
	if (kept > 0)
		return;
	nh->status = DNS_TEMPFAIL;
	snprintf(nh->err, sizeof(nh->err), "MTA-STS policy of %s (mode "
	    "enforce, id %s) allows none of its MX hosts (%.200s)", domain,
	    nh->sts.policy.id, nh->sts_unmatched);
}

void
nexthop_set_lane(const struct mxl_config *cfg, struct nexthop *nh,
    const struct mxl_lane *lane)
{
	nh->lane = lane;
	nh->priority = lane && lane->priority;
	nh->pool = route_pool(cfg, lane, nh->provider, nh->pool_why,
	    sizeof(nh->pool_why));
	nh->limits = route_limits(lane, nh->provider);
}

void
nexthop_free(struct nexthop *nh)
{
	dns_mx_free(&nh->hosts);
	mtasts_state_free(&nh->sts);
}

/* The spool counter of what one source of a pool has sent. */
static void
sent_key(const struct mxl_pool *pool, const struct mxl_source *s, char *key,
    size_t len)
{
	snprintf(key, len, "sent|%s|%s", pool->name, s->address);
}

int
nexthop_next_source(struct spool *sp, const struct nexthop *nh)
{
	const struct mxl_pool *pool = nh->pool;

	if (pool == NULL)
		return -1;
	uint64_t *sent = xcalloc(pool->nsources + 1, sizeof(*sent));
	for (size_t i = 0; i < pool->nsources; i++) {
		char key[400];
		if (!pool->sources[i].enabled)
			continue;
		sent_key(pool, &pool->sources[i], key, sizeof(key));
		/* Unreadable counts are 0: the weights still decide. */
		if (sp == NULL || spool_counter_take(sp, key, 0, &sent[i]) !=
		    SPOOL_OK)
			sent[i] = 0;
	}
	int best = route_choose_source(pool, sent);
	free(sent);
	return best;
}

void
nexthop_count_sent(struct spool *sp, const struct nexthop *nh, int source,
    int64_t count)
{
	char key[400];
	uint64_t before;

	if (nh->pool == NULL || source < 0 || count == 0)
		return;
	sent_key(nh->pool, &nh->pool->sources[source], key, sizeof(key));
	(void)spool_counter_take(sp, key, count, &before);
}
