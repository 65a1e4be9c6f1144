/*
 * test_nexthop - the next-hop decision that delivery and queuerun route
 * share: domain literals, fixed relays, addresses without a domain, the
 * lane's pool and limits, and the round-robin counts kept in the spool.
 * No look-up here reaches a DNS server (MX look-ups are tested by
 * test_dns and, through delivery and route, by the integration tests).
 */
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queuerun/nexthop.h"
#include "lib/log.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-nexthop-XXXXXX";

static const char sample[] =
    /* Nothing listens there: a look-up would fail, not leak out. */
    "resolver = \"127.0.0.1:9\"\n"
    "smtp_port = 2626\n"
    "pool default { source \"127.0.0.1\" { } }\n"
    "pool gmail {\n"
    "  source \"127.0.0.11\" { helo = \"gm1.example.org\" weight = 3 }\n"
    "  source \"127.0.0.12\" { helo = \"gm2.example.org\" weight = 1 }\n"
    "  source \"127.0.0.13\" { helo = \"gm3.example.org\" enabled = false }\n"
    "}\n"
    "pool transactional { source \"127.0.0.20\" { } }\n"
    "provider gmail {\n"
    "  domains = { \"gmail.com\" }\n"
    "  pool    = \"gmail\"\n"
    "  rate    = \"20/s\"\n"
    "  recipients_per_message = 50\n"
    "}\n"
    "provider internal {\n"
    "  domains = { \"example.org\" }\n"
    "  relay   = \"[127.0.0.30]:2525\"\n"
    "}\n"
    "provider therest { pool = \"default\" concurrency = 20 }\n"
    "lane priority { pool = \"transactional\" }\n"
    "lane slow { rate = \"1/m\" }\n";

static void
test_literal(const struct mxl_config *cfg, const struct dns_resolver *dns)
{
	struct nexthop nh;

	nexthop_find(cfg, dns, "[192.0.2.7]", &nh);
	CHECK_INT(nh.via, NEXTHOP_LITERAL);
	CHECK_INT(nh.status, DNS_OK);
	CHECK_INT(nh.port, 2626);
	CHECK_INT(nh.hosts.nhosts, 1);
	CHECK(nh.hosts.implicit);
	if (nh.hosts.nhosts == 1) {
		char ip[64];
		CHECK_STR(nh.hosts.hosts[0].name, "192.0.2.7");
		CHECK_INT(nh.hosts.hosts[0].naddrs, 1);
		dns_addr_string(&nh.hosts.hosts[0].addrs[0], ip, sizeof(ip));
		CHECK_STR(ip, "192.0.2.7");
	}
	CHECK(nh.provider && strcmp(nh.provider->name, "therest") == 0);
	CHECK_STR(nh.provider_why, "no domain or MX match: therest");
	nexthop_free(&nh);

	/* RFC 5321 IPv6 literals; the spool keeps the tag in lower case. */
	const char *v6[] = {"[ipv6:2001:db8::1]", "[IPv6:2001:DB8::1]"};
	for (size_t i = 0; i < 2; i++) {
		nexthop_find(cfg, dns, v6[i], &nh);
		CHECK_INT(nh.via, NEXTHOP_LITERAL);
		CHECK_INT(nh.status, DNS_OK);
		CHECK_INT(nh.hosts.nhosts, 1);
		if (nh.hosts.nhosts == 1) {
			char ip[64];
			CHECK_INT(nh.hosts.hosts[0].addrs[0].ss_family,
			    AF_INET6);
			dns_addr_string(&nh.hosts.hosts[0].addrs[0], ip,
			    sizeof(ip));
			CHECK_STR(ip, "2001:db8::1");
		}
		nexthop_free(&nh);
	}
	/* Untagged IPv6, tagged IPv4: not literals RFC 5321 knows. */
	const char *bad[] = {"[2001:db8::1]", "[IPv6:192.0.2.1]"};
	for (size_t i = 0; i < 2; i++) {
		nexthop_find(cfg, dns, bad[i], &nh);
		CHECK_INT(nh.status, DNS_PERMFAIL);
		nexthop_free(&nh);
	}

	nexthop_find(cfg, dns, "[1.2.3]", &nh);
	CHECK_INT(nh.status, DNS_PERMFAIL);
	CHECK_STR(nh.err, "unsupported address literal [1.2.3]");
	CHECK_INT(nh.hosts.nhosts, 0);
	nexthop_free(&nh);

	nexthop_find(cfg, dns, "", &nh);
	CHECK_INT(nh.status, DNS_PERMFAIL);
	CHECK_STR(nh.err, "recipient address has no domain");
	nexthop_free(&nh);
}

static void
test_relay(const struct mxl_config *cfg, const struct dns_resolver *dns)
{
	struct nexthop nh;

	nexthop_find(cfg, dns, "example.org", &nh);
	CHECK_INT(nh.via, NEXTHOP_RELAY);
	CHECK_INT(nh.status, DNS_OK);
	CHECK_INT(nh.port, 2525);
	CHECK(nh.provider && strcmp(nh.provider->name, "internal") == 0);
	CHECK_STR(nh.provider_why, "domain example.org listed as example.org");
	CHECK_INT(nh.hosts.nhosts, 1);
	if (nh.hosts.nhosts == 1)
		CHECK_STR(nh.hosts.hosts[0].name, "127.0.0.30");
	nexthop_set_lane(cfg, &nh, config_lane(cfg, "bulk"));
	CHECK(nh.pool && strcmp(nh.pool->name, "default") == 0);
	CHECK_STR(nh.pool_why, "pool default");
	nexthop_free(&nh);
}

static void
test_lanes(const struct mxl_config *cfg)
{
	struct nexthop nh;

	memset(&nh, 0, sizeof(nh));
	nh.provider = config_provider(cfg, "gmail");
	nexthop_set_lane(cfg, &nh, config_lane(cfg, "priority"));
	CHECK(nh.priority);
	CHECK(nh.pool && strcmp(nh.pool->name, "transactional") == 0);
	CHECK_STR(nh.pool_why, "lane priority");
	CHECK_INT(nh.limits.rate_count, 20);
	nexthop_set_lane(cfg, &nh, config_lane(cfg, "bulk"));
	CHECK(!nh.priority);
	CHECK(nh.pool && strcmp(nh.pool->name, "gmail") == 0);
	CHECK_INT(nh.limits.recipients_per_message, 50);
	nexthop_set_lane(cfg, &nh, config_lane(cfg, "slow"));
	CHECK_INT(nh.limits.rate_count, 1);
	CHECK_INT(nh.limits.rate_period, 60);
	/* A lane since removed from the configuration: the provider's. */
	nexthop_set_lane(cfg, &nh, NULL);
	CHECK(!nh.priority);
	CHECK(nh.pool && strcmp(nh.pool->name, "gmail") == 0);
	CHECK_INT(nh.limits.rate_count, 20);
}

static void
test_sources(const struct mxl_config *cfg)
{
	struct nexthop nh;
	struct spool *sp;
	int counts[3] = {0, 0, 0};

	memset(&nh, 0, sizeof(nh));
	nh.provider = config_provider(cfg, "gmail");
	nexthop_set_lane(cfg, &nh, config_lane(cfg, "bulk"));
	/* Without a spool nothing has been sent: the heaviest first. */
	CHECK_INT(nexthop_next_source(NULL, &nh), 0);
	/*
	 * The counts live in the spool: a new process (here, the spool
	 * opened again) goes on where the last one stopped.
	 */
	for (int round = 0; round < 4; round++) {
		CHECK_INT(spool_open(dir, &sp), 0);
		for (int i = 0; i < 10; i++) {
			int s = nexthop_next_source(sp, &nh);
			CHECK(s == 0 || s == 1);
			if (s < 0)
				break;
			counts[s]++;
			nexthop_count_sent(sp, &nh, s, 1);
		}
		spool_close(sp);
	}
	CHECK_INT(counts[0], 30);
	CHECK_INT(counts[1], 10);
	CHECK_INT(counts[2], 0);

	/* No pool: the kernel picks; nothing is counted. */
	nh.pool = NULL;
	CHECK_INT(spool_open(dir, &sp), 0);
	CHECK_INT(nexthop_next_source(sp, &nh), -1);
	nexthop_count_sent(sp, &nh, 0, 5);
	spool_close(sp);
}

int
main(void)
{
	struct mxl_config cfg;
	struct dns_resolver dns;
	char path[256], err[512];

	log_init("test_nexthop");
	log_set_file("/dev/null");
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/n.conf", dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return 2;
	fputs(sample, f);
	fclose(f);
	int rc = config_load(path, false, &cfg, err, sizeof(err));
	CHECK_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return unit_done("nexthop");
	}
	CHECK_INT(dns_resolver_init(&dns, cfg.resolver, err, sizeof(err)), 0);
	test_literal(&cfg, &dns);
	test_relay(&cfg, &dns);
	test_lanes(&cfg);
	test_sources(&cfg);
	config_free(&cfg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("nexthop");
}
