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
#include "queuerun/shaping.h"
#include "route/route.h"

/*
 * A domain literal is its own single host: "[192.0.2.1]", or
 * "[IPv6:2001:db8::1]" (RFC 5321 section 4.1.3; the tag in any case).
 * A relay's "[2001:db8::1]" has no tag: bare_ipv6 allows that.
 */
static enum dns_status
literal_host(const char *domain, bool bare_ipv6, struct dns_mx *mx,
    char *err, size_t errlen)
{
	size_t len = strlen(domain);
	struct sockaddr_storage ss;
	socklen_t sslen;
	char ip[64];

	if (len < 3 || len - 2 >= sizeof(ip) || domain[len - 1] != ']') {
		snprintf(err, errlen, "malformed address literal %s", domain);
		return DNS_PERMFAIL;
	}
	memcpy(ip, domain + 1, len - 2);
	ip[len - 2] = '\0';
	const char *text = ip;
	bool tagged = strncasecmp(ip, "IPv6:", 5) == 0;
	if (tagged)
		text = ip + 5;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (!tagged && inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sslen = sizeof(*sin);
	} else if ((tagged || bare_ipv6) &&
	    inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sslen = sizeof(*sin6);
	} else {
		snprintf(err, errlen, "unsupported address literal %s",
		    domain);
		return DNS_PERMFAIL;
	}
	mx->hosts = xcalloc(1, sizeof(*mx->hosts));
	mx->nhosts = 1;
	mx->implicit = true;
	mx->hosts[0].name = xstrdup(text);
	mx->hosts[0].preference = -1;
	memcpy(&mx->hosts[0].addrs[0], &ss, sslen);
	mx->hosts[0].addr_lens[0] = sslen;
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
	enum dns_status st = dns_find_mx(dns, domain, true, mx, err, errlen);
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
		return dns_find_mx(dns, p->relay_host, true, mx, err, errlen);
	char literal[300];
	snprintf(literal, sizeof(literal), "[%s]", p->relay_host);
	if (literal_host(literal, true, mx, err, errlen) == DNS_OK)
		return DNS_OK;
	mx->hosts = xcalloc(1, sizeof(*mx->hosts));
	mx->nhosts = 1;
	mx->implicit = true;
	enum dns_status st = dns_find_addrs(dns, p->relay_host, true,
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
		return literal_host(domain, false, &nh->hosts, nh->err,
		    sizeof(nh->err));
	}
	return cached_mx(dns, domain, &nh->hosts, nh->err, sizeof(nh->err));
}

/* One address to try, for order_addresses(). */
struct try_addr {
	size_t host;			/* index in the look-up's order */
	size_t addr;
	size_t group;			/* hosts of one MX preference */
	int rank;			/* 0: the preferred family */
	uint32_t key;			/* random, or the look-up's order */
};

static int
try_cmp(const void *a, const void *b)
{
	const struct try_addr *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return 0;
}

/*
 * smtp_address_preference, as Postfix applies it: among the addresses
 * of the hosts of one MX preference, those of the preferred family
 * first, each family in the look-up's order; with "any", all of them
 * in random order. A host whose addresses are no longer together is
 * split into several entries of the same name, so that the list is the
 * order delivery tries, as route prints it.
 */
static void
order_addresses(struct dns_mx *mx, enum mxl_address_preference pref)
{
	size_t total = 0, k = 0, group = 0;

	for (size_t h = 0; h < mx->nhosts; h++)
		total += mx->hosts[h].naddrs;
	if (total < 2)
		return;
	struct try_addr *t = xcalloc(total, sizeof(*t));
	for (size_t h = 0; h < mx->nhosts; h++) {
		const struct dns_host *host = &mx->hosts[h];
		if (h > 0 && host->preference != mx->hosts[h - 1].preference)
			group++;
		for (size_t a = 0; a < host->naddrs; a++, k++) {
			int fam = host->addrs[a].ss_family;
			t[k].host = h;
			t[k].addr = a;
			t[k].group = group;
			t[k].rank = pref == MXL_PREFER_IPV4 ? fam != AF_INET :
			    pref == MXL_PREFER_IPV6 ? fam != AF_INET6 : 0;
			t[k].key = pref == MXL_PREFER_ANY ? arc4random() :
			    (uint32_t)k;
		}
	}
	qsort(t, total, sizeof(*t), try_cmp);
	struct dns_host *hosts = xcalloc(total, sizeof(*hosts));
	size_t n = 0;
	for (k = 0; k < total; k++) {
		const struct dns_host *from = &mx->hosts[t[k].host];
		if (k == 0 || t[k].host != t[k - 1].host) {
			hosts[n].name = xstrdup(from->name);
			hosts[n].preference = from->preference;
			n++;
		}
		struct dns_host *to = &hosts[n - 1];
		to->addrs[to->naddrs] = from->addrs[t[k].addr];
		to->addr_lens[to->naddrs] = from->addr_lens[t[k].addr];
		to->naddrs++;
	}
	bool implicit = mx->implicit;
	dns_mx_free(mx);
	mx->hosts = hosts;
	mx->nhosts = n;
	mx->implicit = implicit;
	free(t);
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
		if (nh->status == DNS_OK)
			order_addresses(&nh->hosts, cfg->smtp_address_preference);
		return;
	}
	nh->status = domain_hosts(dns, domain, nh);
	if (nh->status == DNS_OK)
		order_addresses(&nh->hosts, cfg->smtp_address_preference);
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

const struct mxl_source *
nexthop_source_named(const struct mxl_config *cfg, const char *address,
    const struct mxl_pool **pool)
{
	for (size_t p = 0; p < cfg->npools; p++)
		for (size_t s = 0; s < cfg->pools[p].nsources; s++)
			if (strcmp(cfg->pools[p].sources[s].address,
			    address) == 0) {
				*pool = &cfg->pools[p];
				return &cfg->pools[p].sources[s];
			}
	return NULL;
}

void
nexthop_set_move(const struct mxl_config *cfg, struct nexthop *nh,
    const char *pool, const char *source)
{
	const struct mxl_pool *p = NULL;

	if (source) {
		const struct mxl_source *s = nexthop_source_named(cfg, source,
		    &p);
		if (s == NULL)
			return;
		/* Its pool's name: the round robin counts stay the pool's. */
		nh->moved.name = p->name;
		nh->moved.sources = (struct mxl_source *)s;
		nh->moved.nsources = 1;
		nh->pool = &nh->moved;
		snprintf(nh->pool_why, sizeof(nh->pool_why), "source %s, "
		    "moved there by the administrator", source);
	} else if (pool && (p = config_pool(cfg, pool)) != NULL) {
		nh->pool = p;
		snprintf(nh->pool_why, sizeof(nh->pool_why), "pool %s, moved "
		    "there by the administrator", pool);
	}
}

bool
nexthop_move_applies(const struct spool_msg *msg, const struct nexthop *nh)
{
	return msg->move_provider == NULL || (nh->provider &&
	    strcmp(msg->move_provider, nh->provider->name) == 0);
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
	return nexthop_next_source_family(sp, nh, AF_UNSPEC);
}

int
nexthop_next_source_family(struct spool *sp, const struct nexthop *nh,
    int family)
{
	int64_t until;
	char why[8];

	return nexthop_ready_source(sp, nh, family, time(NULL), &until, why,
	    sizeof(why));
}

int
nexthop_ready_source(struct spool *sp, const struct nexthop *nh, int family,
    int64_t now, int64_t *wait_until, char *why, size_t whylen)
{
	const struct mxl_pool *pool = nh->pool;
	const char *provider = nh->provider ? nh->provider->name : "-";

	*wait_until = 0;
	if (whylen)
		why[0] = '\0';
	if (pool == NULL)
		return -1;
	if (sp && !shaping_provider_ready(sp, provider, now, wait_until, why,
	    whylen))
		return -1;
	uint64_t *sent = xcalloc(pool->nsources + 1, sizeof(*sent));
	bool *skip = xcalloc(pool->nsources + 1, sizeof(*skip));
	for (size_t i = 0; i < pool->nsources; i++) {
		char key[400];
		const struct mxl_source *s = &pool->sources[i];
		if (!s->enabled || (family != AF_UNSPEC &&
		    s->sa.ss_family != family))
			continue;
		int64_t until = 0;
		char because[512];
		if (sp && !shaping_source_ready(sp, provider, s, now, &until,
		    because, sizeof(because))) {
			skip[i] = true;
			if (*wait_until == 0 || until < *wait_until) {
				*wait_until = until;
				snprintf(why, whylen, "%s", because);
			}
			continue;
		}
		sent_key(pool, &pool->sources[i], key, sizeof(key));
		/* Unreadable counts are 0: the weights still decide. */
		if (sp == NULL || spool_counter_take(sp, key, 0, &sent[i]) !=
		    SPOOL_OK)
			sent[i] = 0;
	}
	int best = route_choose_source_except(pool, sent, family, skip);
	free(sent);
	free(skip);
	if (best >= 0) {
		*wait_until = 0;
		if (whylen)
			why[0] = '\0';
	}
	return best;
}

bool
nexthop_family_usable(const struct nexthop *nh, int family)
{
	if (nh->pool == NULL)
		return true;
	for (size_t i = 0; i < nh->pool->nsources; i++)
		if (nh->pool->sources[i].enabled &&
		    nh->pool->sources[i].sa.ss_family == family)
			return true;
	return false;
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

int
nexthop_first_family(const struct nexthop *nh)
{
	if (nh->status != DNS_OK)
		return AF_UNSPEC;
	for (size_t h = 0; h < nh->hosts.nhosts; h++)
		for (size_t a = 0; a < nh->hosts.hosts[h].naddrs; a++) {
			int fam = nh->hosts.hosts[h].addrs[a].ss_family;
			if (nexthop_family_usable(nh, fam))
				return fam;
		}
	return AF_UNSPEC;
}
