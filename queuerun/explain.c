/*
 * NAME
 *	explain - "queuerun route ADDRESS...": how mail to an address goes
 * DESCRIPTION
 *	See explain.h. This file chooses the lane and prints; the decision
 *	itself is nexthop_find() and nexthop_set_lane(), which the runner
 *	calls for every delivery, so what this prints is what a delivery
 *	would do now.
 */
#include "queuerun/explain.h"

#include <pwd.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queuerun/nexthop.h"
#include "queuerun/shaping.h"
#include "dns/dns.h"
#include "route/route.h"
#include "lib/log.h"
#include "spool/spool.h"

static const char *
family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

static const char *const preference_text[] = {
	"any: random order among hosts of equal MX preference",
	"ipv4 first among hosts of equal MX preference",
	"ipv6 first among hosts of equal MX preference",
};

/* The hosts in the order delivery tries them, or why there are none. */
static void
print_hosts(FILE *out, const struct mxl_config *cfg, const struct nexthop *nh)
{
	bool by_mx = nh->via == NEXTHOP_MX || (nh->via == NEXTHOP_RELAY &&
	    !nh->provider->relay_no_mx);
	bool fams[2] = {false, false};

	if (nh->via == NEXTHOP_RELAY)
		fprintf(out, "  relay: %s (%s)\n", nh->provider->relay, by_mx ?
		    "MX of the relay host" : "fixed next hop, no MX look-up");
	if (nh->status != DNS_OK) {
		fprintf(out, "  %s %s (%s)\n", by_mx ? "mx:" : "host:", nh->err,
		    nh->status == DNS_TEMPFAIL ? "would be deferred" :
		    "would bounce");
		return;
	}
	for (size_t h = 0; h < nh->hosts.nhosts; h++) {
		const struct dns_host *host = &nh->hosts.hosts[h];
		fprintf(out, "  %s %s", nh->hosts.implicit ? "host:" : "mx:",
		    host->name);
		if (host->preference >= 0)
			fprintf(out, " (preference %d)", host->preference);
		for (size_t a = 0; a < host->naddrs; a++) {
			char ip[64];
			int fam = host->addrs[a].ss_family;
			dns_addr_string(&host->addrs[a], ip, sizeof(ip));
			fprintf(out, "%s%s", a ? ", " : " ", ip);
			if (!nexthop_family_usable(nh, fam))
				fprintf(out, " (not tried: pool %s has no %s "
				    "source)", nh->pool->name,
				    family_name(fam));
			fams[fam == AF_INET6] = true;
		}
		fputc('\n', out);
	}
	if (fams[0] && fams[1])
		fprintf(out, "  address order: smtp_address_preference = %s\n",
		    preference_text[cfg->smtp_address_preference]);
}

static void
print_source(FILE *out, const struct mxl_pool *pool, int index,
    const char *label, int family)
{
	if (index < 0)
		return;
	fprintf(out, "  %s %s (helo %s), next by weighted round robin",
	    label, pool->sources[index].address, pool->sources[index].helo);
	if (family != AF_UNSPEC)
		fprintf(out, ", for the %s addresses", family_name(family));
	fputc('\n', out);
}

/* The MTA-STS policy in force, what it allows, and why. */
static void
print_mta_sts(FILE *out, const struct mxl_config *cfg,
    const struct nexthop *nh)
{
	const struct mtasts_state *st = &nh->sts;

	if (!cfg->mta_sts) {
		fprintf(out, "  mta-sts: off (mta_sts = no)\n");
		return;
	}
	if (nh->sts_domain[0] == '\0') {
		fprintf(out, "  mta-sts: not looked up (%s)\n",
		    nh->via != NEXTHOP_MX ? "not delivered to the domain's MX" :
		    "no MX host");
		return;
	}
	if (!st->have) {
		fprintf(out, "  mta-sts: none (%s)\n", st->why);
		return;
	}
	fprintf(out, "  mta-sts: %s (%s), max_age %ld, mx:",
	    mtasts_mode_name(st->policy.mode), st->why, st->policy.max_age);
	for (size_t i = 0; i < st->policy.nmx; i++)
		fprintf(out, "%s %s", i ? "," : "", st->policy.mx[i]);
	fputc('\n', out);
	if (st->policy.mode == MTASTS_ENFORCE)
		fprintf(out, "  tls: required, certificate verified against "
		    "%s for the MX host name\n", cfg->smtp_tls_CAfile);
	else
		fprintf(out, "  tls: %s; what would fail under enforce is "
		    "logged\n", cfg->smtp_tls ? "opportunistic" : "off");
	if (nh->sts_unmatched[0])
		fprintf(out, "  mta-sts: MX hosts not in the policy: %s (%s)\n",
		    nh->sts_unmatched, st->policy.mode == MTASTS_ENFORCE ?
		    "not used" : "used, logged");
}

/* Why no source may send now: none enabled, or none ready (shaping.h). */
static void
print_no_source(FILE *out, struct spool *sp, const struct nexthop *nh)
{
	int64_t until = 0;
	char why[512];

	(void)nexthop_ready_source(sp, nh, AF_UNSPEC, time(NULL), &until, why,
	    sizeof(why));
	if (until > 0)
		fprintf(out, "  source: none ready: mail for %s waits (%s)\n",
		    nh->provider ? nh->provider->name : "-", why);
	else
		fprintf(out, "  source: none enabled: mail for this pool "
		    "waits\n");
}

static void
print_pool(FILE *out, struct spool *sp, const struct nexthop *nh)
{
	const struct mxl_pool *pool = nh->pool;

	if (pool == NULL) {
		fprintf(out, "  pool: none (%s)\n", nh->pool_why);
		return;
	}
	fprintf(out, "  pool: %s (%s):", pool->name, nh->pool_why);
	for (size_t i = 0; i < pool->nsources; i++) {
		const struct mxl_source *s = &pool->sources[i];
		fprintf(out, "%s %s weight %d%s", i ? "," : "", s->address,
		    s->weight, s->enabled ? "" : " disabled");
	}
	fputc('\n', out);
	/* As send_group() in job.c chooses. */
	int fam = nexthop_first_family(nh);
	if (fam == AF_UNSPEC) {
		int next = nexthop_next_source(sp, nh);
		if (next >= 0 && nh->status == DNS_OK)
			fprintf(out, "  source: none of the pool's families: "
			    "mail would be deferred\n");
		else if (next >= 0)
			print_source(out, pool, next, "source:", AF_UNSPEC);
		else
			print_no_source(out, sp, nh);
		return;
	}
	int other = fam == AF_INET ? AF_INET6 : AF_INET;
	bool has_other = false;
	for (size_t h = 0; h < nh->hosts.nhosts; h++)
		for (size_t a = 0; a < nh->hosts.hosts[h].naddrs; a++)
			if (nh->hosts.hosts[h].addrs[a].ss_family == other)
				has_other = true;
	int first = nexthop_next_source_family(sp, nh, fam);
	if (first < 0)
		print_no_source(out, sp, nh);
	print_source(out, pool, first, "source:", has_other ? fam : AF_UNSPEC);
	if (has_other)
		print_source(out, pool, nexthop_next_source_family(sp, nh,
		    other), "source:", other);
}

static int
explain_one(const struct mxl_config *cfg, struct spool *sp,
    const struct dns_resolver *dns, const char *lane_name,
    const char *sender, const char *user, const char *address, FILE *out)
{
	const char *at = strrchr(address, '@');
	char why[256];
	struct nexthop nh;

	if (at == NULL || at[1] == '\0') {
		log_stderr("route: %s: not an address with a domain", address);
		return EX_NOUSER;
	}
	char *domain = xstrdup(at + 1);
	str_lower(domain);
	fprintf(out, "%s\n", address);
	/* queuerun runs as the mail system: it may name any lane. */
	struct route_submitter who = {user, sender, true};
	bool refused;
	const char *lane = route_lane(cfg, lane_name, &who, NULL, NULL,
	    &refused, why, sizeof(why));
	fprintf(out, "  lane: %s (%s)\n", lane, why);
	nexthop_find(cfg, dns, domain, &nh);
	nexthop_apply_mta_sts(cfg, dns, sp, domain, &nh);
	nexthop_set_lane(cfg, &nh, config_lane(cfg, lane));
	fprintf(out, "  provider: %s (%s)\n", nh.provider ? nh.provider->name :
	    "none", nh.provider_why);
	print_hosts(out, cfg, &nh);
	print_mta_sts(out, cfg, &nh);
	print_pool(out, sp, &nh);
	shaping_describe(sp, nh.provider ? nh.provider->name : "-", nh.pool,
	    time(NULL), out);
	char text[256];
	route_limits_text(&nh.limits, text, sizeof(text));
	fprintf(out, "  limits: %s%s\n", text, nh.lane && nh.lane->has_limits ?
	    " (the lane's)" : "");
	nexthop_free(&nh);
	free(domain);
	return 0;
}

int
explain_routes(const struct mxl_config *cfg, const char *lane,
    const char *sender, char **addresses, int n, FILE *out)
{
	struct dns_resolver dns;
	struct spool *sp = NULL;
	char err[256];
	int rc = 0;

	if (dns_resolver_init(&dns, cfg->resolver, err, sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "resolver = \"%s\": %s", cfg->resolver,
		    err);
	/* Without a readable spool the next source cannot be told. */
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		sp = NULL;
	struct passwd *pw = getpwuid(getuid());
	for (int i = 0; i < n; i++) {
		int r = explain_one(cfg, sp, &dns, lane, sender,
		    pw ? pw->pw_name : NULL, addresses[i], out);
		if (r != 0)
			rc = r;
	}
	spool_close(sp);
	return rc;
}
