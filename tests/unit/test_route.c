/*
 * test_route - lanes, providers, pools, limits and the weighted round
 * robin, from a configuration like the sample. route/ is pure
 * policy: MX names and sent counts are handed in, nothing is fetched.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route/route.h"
#include "lib/log.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-route-XXXXXX";

static const char sample[] =
    "pool default { source \"127.0.0.1\" { } }\n"
    "pool gmail {\n"
    "  source \"127.0.0.11\" { helo = \"gm1.example.org\" weight = 3 }\n"
    "  source \"127.0.0.12\" { helo = \"gm2.example.org\" weight = 1 }\n"
    "  source \"127.0.0.13\" { helo = \"gm3.example.org\" enabled = false }\n"
    "}\n"
    "pool transactional { source \"127.0.0.20\" { helo = \"tx.example.org\" } }\n"
    "provider gmail {\n"
    "  domains = { \"gmail.com\", \"googlemail.com\" }\n"
    "  mx      = { \"*.google.com\", \"*.googlemail.com\" }\n"
    "  pool    = \"gmail\"\n"
    "  concurrency = 4\n"
    "  rate    = \"20/s\"\n"
    "  recipients_per_message  = 50\n"
    "  messages_per_connection = 100\n"
    "}\n"
    "provider internal {\n"
    "  domains = { \"example.org\", \".corp.example\" }\n"
    "  relay   = \"[127.0.0.30]:2525\"\n"
    "}\n"
    "provider therest { pool = \"default\" concurrency = 20 }\n"
    "lane priority { pool = \"transactional\" }\n"
    "lane bulk {\n"
    "  match_sender = { \"*@lists.example.org\" }\n"
    "  match_user   = { \"civicrm\" }\n"
    "  match_header = { \"Precedence: bulk\", \"Precedence: list\" }\n"
    "}\n"
    "lane slow { rate = \"1/m\" }\n"
    "lane vip { allow_users = { \"shop\" } }\n";

static const char *hdr_names[] = {"Subject", "Precedence", NULL};
static const char *hdr_values[] = {"news", " bulk ", NULL};

static const char *
headers(void *ctx, size_t i, char **value)
{
	(void)ctx;
	if (hdr_names[i] == NULL)
		return NULL;
	*value = strdup(hdr_values[i]);
	return hdr_names[i];
}

/* route_lane for a user (admin: may choose any lane) and sender. */
static const char *
lane_for(const struct mxl_config *cfg, const char *requested,
    const char *sender, const char *user, bool admin, route_header_fn hdrs,
    bool *refused, char *why, size_t whylen)
{
	struct route_submitter who = {user, sender, admin};

	return route_lane(cfg, requested, &who, hdrs, NULL, refused, why,
	    whylen);
}

static void
test_lanes(const struct mxl_config *cfg)
{
	char why[256];
	bool refused;

	CHECK_STR(lane_for(cfg, NULL, "a@lists.example.org", "www", false,
	    NULL, &refused, why, sizeof(why)), "bulk");
	CHECK(strstr(why, "lists.example.org") != NULL);
	CHECK_STR(lane_for(cfg, NULL, "a@example.org", "civicrm", false, NULL,
	    &refused, why, sizeof(why)), "bulk");
	CHECK_STR(lane_for(cfg, NULL, "a@example.org", "www", false, headers,
	    &refused, why, sizeof(why)), "bulk");
	CHECK_STR(lane_for(cfg, NULL, "a@example.org", "www", false, NULL,
	    &refused, why, sizeof(why)), "priority");
	CHECK_STR(why, "default_lane");
	CHECK(!refused);
	/* An administrator names any lane. */
	CHECK_STR(lane_for(cfg, "priority", "a@lists.example.org", "civicrm",
	    true, headers, &refused, why, sizeof(why)), "priority");
	CHECK(!refused);
	/* A user the rules put in bulk cannot escape to priority... */
	CHECK_STR(lane_for(cfg, "priority", "a@example.org", "civicrm", false,
	    NULL, &refused, why, sizeof(why)), "bulk");
	CHECK(refused);
	/* ...nor a sender the rules put there. */
	CHECK_STR(lane_for(cfg, "priority", "a@lists.example.org", "www",
	    false, NULL, &refused, why, sizeof(why)), "bulk");
	CHECK(refused);
	/* Header rules are the user's own doing: they pin nothing. */
	CHECK_STR(lane_for(cfg, "priority", "a@example.org", "www", false,
	    headers, &refused, why, sizeof(why)), "priority");
	CHECK(!refused);
	/* A user with no rule of their own may pick a lane without a list. */
	CHECK_STR(lane_for(cfg, "slow", "a@example.org", "www", false, NULL,
	    &refused, why, sizeof(why)), "slow");
	CHECK(!refused);
	/* allow_users: only those. */
	CHECK_STR(lane_for(cfg, "vip", "a@example.org", "www", false, NULL,
	    &refused, why, sizeof(why)), "priority");
	CHECK(refused);
	CHECK_STR(lane_for(cfg, "vip", "a@example.org", "shop", false, NULL,
	    &refused, why, sizeof(why)), "vip");
	CHECK(!refused);
	CHECK_STR(lane_for(cfg, "vip", "a@example.org", "civicrm", false, NULL,
	    &refused, why, sizeof(why)), "bulk");
	CHECK(refused);
}

static void
test_providers(const struct mxl_config *cfg)
{
	char why[256];
	const struct mxl_provider *p;

	p = route_provider_by_domain(cfg, "GMail.com", why, sizeof(why));
	CHECK(p && strcmp(p->name, "gmail") == 0);
	p = route_provider_by_domain(cfg, "eu.corp.example", why, sizeof(why));
	CHECK(p && strcmp(p->name, "internal") == 0);
	CHECK(p && p->relay_no_mx && p->relay_port == 2525);
	CHECK(p && strcmp(p->relay_host, "127.0.0.30") == 0);
	CHECK(route_provider_by_domain(cfg, "corp.example", why,
	    sizeof(why)) == NULL);

	const char *google[] = {"mx.acme.test", "aspmx.l.google.com"};
	p = route_provider(cfg, "acme.test", google, 2, why, sizeof(why));
	CHECK(p && strcmp(p->name, "gmail") == 0);
	CHECK_STR(why, "MX aspmx.l.google.com matches *.google.com");
	const char *own[] = {"mx.acme.test"};
	p = route_provider(cfg, "acme.test", own, 1, why, sizeof(why));
	CHECK(p && strcmp(p->name, "therest") == 0);
	p = route_provider(cfg, "acme.test", NULL, 0, why, sizeof(why));
	CHECK(p && strcmp(p->name, "therest") == 0);
	/* The domain lists come before the MX names. */
	p = route_provider(cfg, "example.org", google, 2, why, sizeof(why));
	CHECK(p && strcmp(p->name, "internal") == 0);
}

static void
test_pools_and_limits(const struct mxl_config *cfg)
{
	char why[256];
	const struct mxl_provider *gmail = config_provider(cfg, "gmail");
	const struct mxl_provider *internal = config_provider(cfg, "internal");
	const struct mxl_lane *prio = config_lane(cfg, "priority");
	const struct mxl_lane *bulk = config_lane(cfg, "bulk");
	const struct mxl_lane *slow = config_lane(cfg, "slow");

	CHECK_STR(route_pool(cfg, prio, gmail, why, sizeof(why))->name,
	    "transactional");
	CHECK_STR(route_pool(cfg, bulk, gmail, why, sizeof(why))->name,
	    "gmail");
	CHECK_STR(route_pool(cfg, bulk, internal, why, sizeof(why))->name,
	    "default");
	struct mxl_limits l = route_limits(bulk, gmail);
	CHECK_INT(l.concurrency, 4);
	CHECK_INT(l.rate_count, 20);
	CHECK_INT(l.rate_period, 1);
	CHECK_INT(l.recipients_per_message, 50);
	CHECK_INT(l.messages_per_connection, 100);
	l = route_limits(slow, gmail);
	CHECK_INT(l.rate_count, 1);
	CHECK_INT(l.rate_period, 60);
	CHECK_INT(l.concurrency, 0);
	l = route_limits(bulk, internal);
	char text[200];
	route_limits_text(&l, text, sizeof(text));
	CHECK_STR(text, "none (unthrottled)");
}

static void
test_round_robin(const struct mxl_config *cfg)
{
	const struct mxl_pool *pool = config_pool(cfg, "gmail");
	/* A disabled source's count is not read: make it absurd. */
	uint64_t sent[3] = {0, 0, 1000000};

	/* Nothing sent yet: the heaviest source goes first. */
	CHECK_INT(route_choose_source(pool, sent), 0);
	/* Connections of uneven size: shares follow messages sent. */
	for (int i = 0; i < 200; i++) {
		int s = route_choose_source(pool, sent);
		CHECK(s >= 0 && s < 2);
		if (s >= 0)
			sent[s] += 1 + (unsigned)(i % 7);
	}
	uint64_t total = sent[0] + sent[1];
	/* 3:1 within a connection's worth. */
	CHECK(sent[0] * 4 + 28 >= total * 3 && sent[0] * 4 <= total * 3 + 28);
	fprintf(stderr, "round robin: %llu / %llu\n",
	    (unsigned long long)sent[0], (unsigned long long)sent[1]);
	/* A source far behind its share is chosen until it catches up. */
	uint64_t behind[3] = {300, 0, 0};
	CHECK_INT(route_choose_source(pool, behind), 1);
	/* A pool with nothing enabled has no source. */
	struct mxl_source off = pool->sources[2];
	struct mxl_pool dark = {"dark", &off, 1};
	uint64_t none[1] = {0};
	CHECK_INT(route_choose_source(&dark, none), -1);
	/* By family: the gmail pool has IPv4 sources only. */
	uint64_t zero[3] = {0, 0, 0};
	CHECK_INT(route_choose_source_family(pool, zero, AF_INET), 0);
	CHECK_INT(route_choose_source_family(pool, zero, AF_INET6), -1);
	/* A mixed pool: each family by its own weights. */
	struct mxl_source mixed[3] = {pool->sources[0], pool->sources[1],
	    pool->sources[1]};
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&mixed[2].sa;
	memset(&mixed[2].sa, 0, sizeof(mixed[2].sa));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_loopback;
	struct mxl_pool both = {"both", mixed, 3};
	uint64_t counts[3] = {0, 1000, 5};
	CHECK_INT(route_choose_source_family(&both, counts, AF_INET6), 2);
	CHECK_INT(route_choose_source_family(&both, counts, AF_INET), 0);
	CHECK_INT(route_choose_source_family(&both, counts, AF_UNSPEC), 0);
}

int
main(void)
{
	struct mxl_config cfg;
	char path[256], err[512];

	log_init("test_route");
	log_set_file("/dev/null");
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/r.conf", dir);
	FILE *f = fopen(path, "w");
	fputs(sample, f);
	fclose(f);
	int rc = config_load(path, false, &cfg, err, sizeof(err));
	CHECK_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return unit_done("route");
	}
	test_lanes(&cfg);
	test_providers(&cfg);
	test_pools_and_limits(&cfg);
	test_round_robin(&cfg);
	config_free(&cfg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("route");
}
