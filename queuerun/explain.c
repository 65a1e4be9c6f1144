/*
 * NAME
 *	explain - "queuerun route ADDRESS...": how mail to an address goes
 * DESCRIPTION
 *	See explain.h. The same route/ calls as the runner make the same
 *	decisions, so what this prints is what a delivery would do now.
 */
#include "queuerun/explain.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "dns/dns.h"
#include "route/route.h"
#include "lib/log.h"
#include "spool/spool.h"

static void
print_hosts(FILE *out, const struct dns_mx *mx)
{
	for (size_t h = 0; h < mx->nhosts; h++) {
		const struct dns_host *host = &mx->hosts[h];
		fprintf(out, "  %s %s", mx->implicit ? "host:" : "mx:",
		    host->name);
		if (host->preference >= 0)
			fprintf(out, " (preference %d)", host->preference);
		for (size_t a = 0; a < host->naddrs; a++) {
			char ip[64];
			dns_addr_string(&host->addrs[a], ip, sizeof(ip));
			fprintf(out, "%s%s", a ? ", " : " ", ip);
		}
		fputc('\n', out);
	}
}

static void
print_pool(FILE *out, struct spool *sp, const struct mxl_pool *pool,
    const char *why)
{
	if (pool == NULL) {
		fprintf(out, "  pool: none (%s)\n", why);
		return;
	}
	fprintf(out, "  pool: %s (%s):", pool->name, why);
	for (size_t i = 0; i < pool->nsources; i++) {
		const struct mxl_source *s = &pool->sources[i];
		fprintf(out, "%s %s weight %d%s", i ? "," : "", s->address,
		    s->weight, s->enabled ? "" : " disabled");
	}
	fputc('\n', out);
	int next = route_choose_source(sp, pool);
	if (next >= 0)
		fprintf(out, "  source: %s (helo %s), next by weighted round "
		    "robin\n", pool->sources[next].address,
		    pool->sources[next].helo);
	else
		fprintf(out, "  source: none enabled: mail for this pool "
		    "waits\n");
}

static int
explain_one(const struct mxl_config *cfg, struct spool *sp,
    const struct dns_resolver *dns, const char *lane_name,
    const char *sender, const char *user, const char *address, FILE *out)
{
	const char *at = strrchr(address, '@');
	char why[256], err[512];
	struct dns_mx mx;
	enum dns_status st;

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
	const struct mxl_provider *p = route_provider_by_domain(cfg, domain,
	    why, sizeof(why));
	memset(&mx, 0, sizeof(mx));
	if (p && p->relay) {
		fprintf(out, "  provider: %s (%s)\n", p->name, why);
		fprintf(out, "  relay: %s (%s)\n", p->relay, p->relay_no_mx ?
		    "fixed next hop, no MX look-up" : "MX of the relay host");
	} else {
		st = dns_find_mx(dns, domain, false, &mx, err, sizeof(err));
		if (p == NULL)
			p = route_provider(cfg, domain, st == DNS_OK ? &mx :
			    NULL, why, sizeof(why));
		fprintf(out, "  provider: %s (%s)\n", p ? p->name : "none",
		    why);
		if (st == DNS_OK)
			print_hosts(out, &mx);
		else
			fprintf(out, "  mx: %s (%s)\n", err, st ==
			    DNS_TEMPFAIL ? "would be deferred" :
			    "would bounce");
	}
	const struct mxl_lane *l = config_lane(cfg, lane);
	print_pool(out, sp, route_pool(cfg, l, p, why, sizeof(why)), why);
	struct mxl_limits lim = route_limits(l, p);
	char text[256];
	route_limits_text(&lim, text, sizeof(text));
	fprintf(out, "  limits: %s%s\n", text, l && l->has_limits ?
	    " (the lane's)" : "");
	dns_mx_free(&mx);
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
