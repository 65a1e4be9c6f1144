/*
 * NAME
 *	mtasts - MTA-STS (RFC 8461): which MX hosts, and TLS required
 * SYNOPSIS
 *	#include "queuerun/mtasts.h"
 * DESCRIPTION
 *	mtasts_find() tells the policy that applies to a recipient domain
 *	now, as RFC 8461 section 5 says a sending MTA finds it:
 *
 *	  - the TXT record _mta-sts.DOMAIN ("v=STSv1; id=..."), asked of
 *	    the configured resolver (dns.h). No such record, or more than
 *	    one, means no new policy;
 *	  - a policy kept in the spool (spool_cache_get(), name
 *	    "mta-sts|DOMAIN") serves until its max_age runs out, whatever
 *	    the TXT record says meanwhile (section 3.3: its absence does
 *	    not remove a policy);
 *	  - a TXT id other than the kept policy's, or no kept policy, makes
 *	    it fetched: https://mta-sts.DOMAIN/.well-known/mta-sts.txt with
 *	    libcurl, the name resolved by the configured resolver too and
 *	    handed to curl (CURLOPT_RESOLVE), the certificate verified
 *	    against smtp_tls_CAfile for that name, no redirects, at most
 *	    MTASTS_MAX_BODY octets within MTASTS_FETCH_SECONDS, status 200
 *	    and text/plain only;
 *	  - a fetch that fails keeps the kept policy if any, else none
 *	    (section 5: deliver as without MTA-STS), and is not tried
 *	    again for MTASTS_RETRY_SECONDS (the failure is kept too), so
 *	    a broken policy server does not slow every delivery down.
 *
 *	Answers are also kept in the process for a minute, as MX answers
 *	are (nexthop.c): a batch visits the same domains again and again.
 *
 *	mtasts_parse() and mtasts_mx_match() are the policy's grammar
 *	(section 3.2) and its MX patterns (section 4.1: "mx.example.net",
 *	or "*.example.net" for exactly one more label on the left).
 * DIAGNOSTICS
 *	A failed fetch is logged once, as a warning, where it happens;
 *	why says in one line what applies and why, for route and logs.
 * SEE ALSO
 *	RFC 8461; nexthop.h applies the policy, deliver.h requires TLS
 */
#ifndef MXLANE_MTASTS_H
#define MXLANE_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"
#include "lib/config.h"
#include "spool/spool.h"

#define MTASTS_MAX_BODY		65536	/* octets of a policy */
#define MTASTS_FETCH_SECONDS	10	/* the whole HTTPS fetch */
#define MTASTS_RETRY_SECONDS	300	/* after a failed fetch */
#define MTASTS_MAX_AGE		31557600	/* RFC 8461: one year */
#define MTASTS_MAX_MX		64	/* mx lines kept */

enum mtasts_mode {
	MTASTS_NONE = 0,	/* no policy, or mode none */
	MTASTS_TESTING,		/* deliver as usual, log what would fail */
	MTASTS_ENFORCE,		/* matching MX hosts, verified TLS only */
};

struct mtasts_policy {
	enum mtasts_mode mode;
	long max_age;			/* seconds */
	char *mx[MTASTS_MAX_MX];	/* patterns, lower case, no final dot */
	size_t nmx;
	char id[40];			/* the TXT id it was fetched under */
	int64_t fetched;		/* unix seconds */
	int64_t expires;		/* fetched + max_age */
};

struct mtasts_state {
	bool have;			/* a policy in testing or enforce */
	struct mtasts_policy policy;
	char why[512];			/* one line: what applies and why */
};

void mtasts_find(const struct mxl_config *cfg,
    const struct dns_resolver *dns, struct spool *sp, const char *domain,
    struct mtasts_state *st);
void mtasts_state_free(struct mtasts_state *st);

/* 0, or -1 with err set: the text is not a valid STSv1 policy. */
int mtasts_parse(const char *text, size_t len, struct mtasts_policy *p,
    char *err, size_t errlen);
void mtasts_policy_free(struct mtasts_policy *p);
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);
/*
 * The id of the one "v=STSv1" record among txt: 1 with id set, 0 when
 * there is none, -1 when there are several or it is malformed (both
 * mean no policy to fetch).
 */
int mtasts_txt_id(char *const *txt, size_t n, char *id, size_t idlen);
const char *mtasts_mode_name(enum mtasts_mode mode);

#endif
