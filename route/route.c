/*
 * NAME
 *	route - which lane, which provider, which source address, how fast
 * DESCRIPTION
 *	See route.h. Everything here is read-only over the configuration
 *	and what the caller hands in.
 */
#include "route/route.h"

#include <fnmatch.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static bool
glob_match(const char *pattern, const char *text)
{
	return fnmatch(pattern, text, FNM_CASEFOLD) == 0;
}

static bool
header_matches(const char *rule, const char *name, const char *value)
{
	const char *colon = strchr(rule, ':');
	size_t nlen = (size_t)(colon - rule);

	if (strlen(name) != nlen || str_ncasecmp_ascii(rule, name, nlen) != 0)
		return false;
	char *want = xstrdup(colon + 1);
	char *have = xstrdup(value);
	str_trim(want);
	str_trim(have);
	/* Values are globs too: "Precedence: bulk" or "X-Mailer: CiviCRM*". */
	bool ok = glob_match(want, have);
	free(want);
	free(have);
	return ok;
}

static bool
lane_rules_match(const struct mxl_lane *lane, const char *sender,
    const char *user, route_header_fn headers, void *ctx, char *why,
    size_t whylen)
{
	for (size_t i = 0; i < lane->nmatch_sender; i++)
		if (sender && glob_match(lane->match_sender[i], sender)) {
			snprintf(why, whylen, "sender %s matches %s", sender,
			    lane->match_sender[i]);
			return true;
		}
	for (size_t i = 0; i < lane->nmatch_user; i++)
		if (user && str_casecmp_ascii(lane->match_user[i], user) == 0) {
			snprintf(why, whylen, "user %s", user);
			return true;
		}
	for (size_t h = 0; headers && lane->nmatch_header; h++) {
		char *value = NULL;
		const char *name = headers(ctx, h, &value);
		if (name == NULL)
			break;
		for (size_t i = 0; i < lane->nmatch_header; i++)
			if (header_matches(lane->match_header[i], name,
			    value)) {
				snprintf(why, whylen, "header %s", lane->
				    match_header[i]);
				free(value);
				return true;
			}
		free(value);
	}
	return false;
}

static bool
lane_allows_user(const struct mxl_lane *lane, const char *user)
{
	for (size_t i = 0; i < lane->nallow_users; i++)
		if (user && str_casecmp_ascii(lane->allow_users[i], user) == 0)
			return true;
	return false;
}

/* May this submitter have the lane it asked for? See route.h. */
static bool
may_choose(const struct mxl_config *cfg, const char *requested,
    const struct route_submitter *who)
{
	const struct mxl_lane *want = config_lane(cfg, requested);
	char why[256];

	if (who->admin)
		return true;
	if (want == NULL)
		return false;
	if (want->nallow_users > 0)
		return lane_allows_user(want, who->user);
	/* Without headers: only the user and sender rules pin a lane. */
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (lane_rules_match(&cfg->lanes[i], who->sender, who->user,
		    NULL, NULL, why, sizeof(why)))
			return strcmp(cfg->lanes[i].name, requested) == 0;
	return true;
}

const char *
route_lane(const struct mxl_config *cfg, const char *requested,
    const struct route_submitter *who, route_header_fn headers, void *ctx,
    bool *refused, char *why, size_t whylen)
{
	*refused = false;
	if (requested) {
		if (may_choose(cfg, requested, who)) {
			snprintf(why, whylen, "-O Lane=%s", requested);
			return requested;
		}
		*refused = true;
	}
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (lane_rules_match(&cfg->lanes[i], who->sender, who->user,
		    headers, ctx, why, whylen))
			return cfg->lanes[i].name;
	snprintf(why, whylen, "default_lane");
	return cfg->default_lane;
}

const struct mxl_provider *
route_provider_by_domain(const struct mxl_config *cfg, const char *domain,
    char *why, size_t whylen)
{
	size_t dlen = strlen(domain);

	for (size_t i = 0; i < cfg->nproviders; i++) {
		const struct mxl_provider *p = &cfg->providers[i];
		for (size_t k = 0; k < p->ndomains; k++) {
			const char *d = p->domains[k];
			size_t len = strlen(d);
			bool hit = false;
			if (d[0] == '.')	/* every subdomain */
				hit = dlen > len && str_casecmp_ascii(domain +
				    dlen - len, d) == 0;
			else
				hit = str_casecmp_ascii(domain, d) == 0;
			if (hit) {
				snprintf(why, whylen, "domain %s listed as %s",
				    domain, d);
				return p;
			}
		}
	}
	return NULL;
}

const struct mxl_provider *
route_provider(const struct mxl_config *cfg, const char *domain,
    const char *const *mx_names, size_t nmx, char *why, size_t whylen)
{
	const struct mxl_provider *p = route_provider_by_domain(cfg, domain,
	    why, whylen);

	if (p)
		return p;
	for (size_t h = 0; h < nmx; h++)
		for (size_t i = 0; i < cfg->nproviders; i++)
			for (size_t k = 0; k < cfg->providers[i].nmx; k++)
				if (glob_match(cfg->providers[i].mx[k],
				    mx_names[h])) {
					snprintf(why, whylen, "MX %s matches "
					    "%s", mx_names[h],
					    cfg->providers[i].mx[k]);
					return &cfg->providers[i];
				}
	p = config_provider(cfg, "therest");
	snprintf(why, whylen, "%s", p ? "no domain or MX match: therest" :
	    "no domain or MX match, and no provider \"therest\"");
	return p;
}

const struct mxl_pool *
route_pool(const struct mxl_config *cfg, const struct mxl_lane *lane,
    const struct mxl_provider *provider, char *why, size_t whylen)
{
	if (lane && lane->pool) {
		snprintf(why, whylen, "lane %s", lane->name);
		return config_pool(cfg, lane->pool);
	}
	if (provider && provider->pool) {
		snprintf(why, whylen, "provider %s", provider->name);
		return config_pool(cfg, provider->pool);
	}
	const struct mxl_pool *def = config_pool(cfg, "default");
	snprintf(why, whylen, "%s", def ? "pool default" :
	    "no pool: the kernel picks the source address");
	return def;
}

struct mxl_limits
route_limits(const struct mxl_lane *lane, const struct mxl_provider *provider)
{
	struct mxl_limits none;

	if (lane && lane->has_limits)
		return lane->limits;
	if (provider)
		return provider->limits;
	memset(&none, 0, sizeof(none));
	return none;
}

/* An enabled source of the family (AF_UNSPEC: of either). */
static bool
usable(const struct mxl_source *s, int family)
{
	return s->enabled && (family == AF_UNSPEC ||
	    s->sa.ss_family == family);
}

static long
pool_weight(const struct mxl_pool *pool, int family, const bool *skip)
{
	long total = 0;

	for (size_t i = 0; pool && i < pool->nsources; i++)
		if (usable(&pool->sources[i], family) && !(skip && skip[i]))
			total += pool->sources[i].weight;
	return total;
}

/*
 * Weighted round robin by deficit: the enabled source furthest behind
 * its share (weight / total weight) of what the pool has sent so far.
 * Counting what was sent, rather than handing out turns, keeps the
 * shares exact when connections carry different numbers of messages,
 * and when one source waits for its throttle the others do not run
 * ahead of their share.
 */
int
route_choose_source(const struct mxl_pool *pool, const uint64_t *sent)
{
	return route_choose_source_family(pool, sent, AF_UNSPEC);
}

int
route_choose_source_family(const struct mxl_pool *pool, const uint64_t *sent,
    int family)
{
	return route_choose_source_except(pool, sent, family, NULL);
}

int
route_choose_source_except(const struct mxl_pool *pool, const uint64_t *sent,
    int family, const bool *skip)
{
	long total = pool_weight(pool, family, skip);
	uint64_t all = 0;
	int best = -1;
	double best_deficit = 0;

	if (total == 0)
		return -1;
	for (size_t i = 0; i < pool->nsources; i++)
		if (usable(&pool->sources[i], family) && !(skip && skip[i]))
			all += sent[i];
	for (size_t i = 0; i < pool->nsources; i++) {
		const struct mxl_source *s = &pool->sources[i];
		if (!usable(s, family) || (skip && skip[i]))
			continue;
		double deficit = (double)s->weight * (double)(all + 1) /
		    (double)total - (double)sent[i];
		if (best < 0 || deficit > best_deficit) {
			best = (int)i;
			best_deficit = deficit;
		}
	}
	return best;
}

void
route_limits_text(const struct mxl_limits *l, char *out, size_t len)
{
	struct buf b = BUF_INIT;
	const char *unit = "s";

	if (l->concurrency)
		buf_printf(&b, "concurrency %d, ", l->concurrency);
	if (l->rate_count) {
		unit = l->rate_period == 60 ? "m" : l->rate_period == 3600 ?
		    "h" : l->rate_period == 86400 ? "d" : "s";
		buf_printf(&b, "rate %ld/%s, ", l->rate_count, unit);
	}
	if (l->recipients_per_message)
		buf_printf(&b, "recipients_per_message %d, ",
		    l->recipients_per_message);
	if (l->messages_per_connection)
		buf_printf(&b, "messages_per_connection %d, ",
		    l->messages_per_connection);
	if (l->delay_ms)
		buf_printf(&b, "delay %dms, ", l->delay_ms);
	if (b.len >= 2)
		b.data[b.len - 2] = '\0';
	snprintf(out, len, "%s", b.len ? b.data : "none (unthrottled)");
	buf_free(&b);
}
