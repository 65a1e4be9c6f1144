/*
 * test_config - defaults, every key, and the errors that must stop
 * sendmail before it queues anything: file:line messages, exit 78.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/gate.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-config-XXXXXX";

static const char *
dir_sub(void)
{
	static char sub[sizeof(dir) + 4];

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	return sub;
}

static char *
write_conf(const char *name, const char *text)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_all_keys(void)
{
	struct mxl_config cfg;
	char err[512];
	char *p = write_conf("all.conf",
	    "# comment\n"
	    "spool_directory = \"/tmp/spool\"\n"
	    "myhostname = \"mx.example.org\"\n"
	    "myorigin = \"example.org\"\n"
	    "alias_maps = \"/etc/mail/aliases\"\n"
	    "message_size_limit = 1000\n"
	    "default_lane = \"bulk\"\n"
	    "log_file = \"/tmp/x.log\"\n"
	    "smtpd_timeout = \"2m\"\n"
	    "lane newsletters { }\n");

	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.spool_directory, "/tmp/spool");
	CHECK_STR(cfg.myhostname, "mx.example.org");
	CHECK_STR(cfg.myorigin, "example.org");
	CHECK_STR(cfg.alias_maps, "/etc/mail/aliases");
	CHECK_INT(cfg.message_size_limit, 1000);
	CHECK_STR(cfg.default_lane, "bulk");
	CHECK_STR(cfg.log_file, "/tmp/x.log");
	CHECK_INT(cfg.smtpd_timeout, 120);
	CHECK(config_has_lane(&cfg, "priority"));
	CHECK(config_has_lane(&cfg, "bulk"));
	CHECK(config_has_lane(&cfg, "newsletters"));
	CHECK(!config_has_lane(&cfg, "nosuch"));
	/* The priority lane is the built-in one, whatever default_lane says. */
	CHECK(config_lane(&cfg, "priority")->priority);
	CHECK(config_lane_is_priority(&cfg, "priority"));
	CHECK(!config_lane_is_priority(&cfg, "bulk"));
	CHECK(!config_lane_is_priority(&cfg, "newsletters"));
	CHECK(!config_lane_is_priority(&cfg, "nosuch"));
	config_free(&cfg);
	free(p);
}

static void
test_defaults(void)
{
	struct mxl_config cfg;
	char err[512];
	char *p = write_conf("empty.conf", "");

	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.spool_directory, "/var/spool/mxlane");
	CHECK_STR(cfg.alias_maps, "/etc/aliases");
	CHECK_INT(cfg.message_size_limit, 52428800);
	CHECK_STR(cfg.default_lane, "priority");
	CHECK_STR(cfg.log_file, "");
	CHECK_INT(cfg.smtpd_timeout, 300);
	CHECK(strlen(cfg.myhostname) > 0);
	/* myorigin follows myhostname when unset. */
	CHECK_STR(cfg.myorigin, cfg.myhostname);
	config_free(&cfg);
	free(p);
}

static void
expect_error(const char *name, const char *text, const char *needle)
{
	struct mxl_config cfg;
	char err[512] = "";
	char *p = write_conf(name, text);

	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), EX_CONFIG);
	if (strstr(err, needle) == NULL) {
		fprintf(stderr, "%s: error \"%s\" lacks \"%s\"\n", name, err,
		    needle);
		unit_failed++;
	} else {
		unit_passed++;
	}
	free(p);
}

static void
test_errors(void)
{
	char where[600];

	snprintf(where, sizeof(where), "%s/unknown.conf:2:", dir);
	expect_error("unknown.conf", "myhostname = \"a\"\nno_such_key = 1\n",
	    where);
	snprintf(where, sizeof(where), "%s/syntax.conf:1:", dir);
	expect_error("syntax.conf", "myhostname = \n = \"x\"\n", "syntax.conf");
	expect_error("badint.conf", "message_size_limit = \"big\"\n",
	    "badint.conf:1:");
	expect_error("neg.conf", "message_size_limit = -5\n",
	    "message_size_limit");
	expect_error("lane.conf", "default_lane = \"nosuch\"\n", "nosuch");
	expect_error("rel.conf", "spool_directory = \"spool\"\n",
	    "absolute");
	expect_error("smtpdt.conf", "smtpd_timeout = \"0\"\n",
	    "smtpd_timeout");
	expect_error("smtpdt2.conf", "smtpd_timeout = \"soon\"\n",
	    "smtpdt2.conf:1:");
	expect_error("lanename.conf", "lane \"Bad Name\" { }\n", "lane");

	struct mxl_config cfg;
	char err[512];
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", dir);
	CHECK_INT(config_load(missing, false, &cfg, err, sizeof(err)),
	    EX_CONFIG);
	CHECK(strstr(err, "does-not-exist.conf") != NULL);
}

/* dkim sections: names only; the key files are queuerun's (dkim.h). */
static void
test_dkim(void)
{
	struct mxl_config cfg;
	char err[512];
	char *p = write_conf("dkim.conf",
	    "dkim \"Example.ORG.\" {\n"
	    "  key \"s2026\" { private_key = \"/nonexistent/a.pem\" }\n"
	    "  key \"ed2026\" { private_key = \"/nonexistent/b.pem\" }\n"
	    "}\n"
	    "dkim \"bulk.example.net\" { key \"fb\" {\n"
	    "  private_key = \"/nonexistent/c.pem\" } }\n"
	    "dkim_fallback_domain = \"Bulk.Example.Net\"\n"
	    "dkim_headers = { \"Subject\", \"from\", \"List-Unsubscribe\" }\n");

	/* Files that do not exist are no error here: sendmail loads this. */
	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.ndkim_domains, 2);
	CHECK_STR(cfg.dkim_domains[0].domain, "example.org");
	CHECK_INT(cfg.dkim_domains[0].nkeys, 2);
	CHECK_STR(cfg.dkim_domains[0].keys[1].selector, "ed2026");
	CHECK_STR(cfg.dkim_domains[0].keys[1].private_key,
	    "/nonexistent/b.pem");
	CHECK_INT(cfg.dkim_domains[0].keys[1].line, 3);
	CHECK_INT(cfg.dkim_domains[1].keys[0].line, 5);
	CHECK(strstr(cfg.dkim_domains[1].keys[0].file, "dkim.conf") != NULL);
	CHECK_STR(cfg.dkim_fallback_domain, "bulk.example.net");
	CHECK(config_dkim_domain(&cfg, "EXAMPLE.org") == &cfg.dkim_domains[0]);
	CHECK(config_dkim_domain(&cfg, "sub.example.org") == NULL);
	/* From first and once, whatever the list says. */
	CHECK_INT(cfg.ndkim_headers, 3);
	CHECK_STR(cfg.dkim_headers[0], "From");
	CHECK_STR(cfg.dkim_headers[1], "Subject");
	CHECK_STR(cfg.dkim_headers[2], "List-Unsubscribe");
	config_free(&cfg);
	free(p);

	p = write_conf("nodkim.conf", "myhostname = \"a.example\"\n");
	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.ndkim_domains, 0);
	CHECK_STR(cfg.dkim_fallback_domain, "");
	CHECK_INT(cfg.ndkim_headers, 16);
	CHECK_STR(cfg.dkim_headers[0], "From");
	CHECK_STR(cfg.dkim_headers[15], "Feedback-ID");
	config_free(&cfg);
	free(p);

	char where[600];
	snprintf(where, sizeof(where), "%s/dkimrel.conf:3: dkim example.org: "
	    "key s1: private_key must be an absolute path", dir);
	expect_error("dkimrel.conf", "# x\ndkim \"example.org\" {\n"
	    "  key \"s1\" { private_key = \"keys/a.pem\" }\n}\n", where);
	expect_error("dkimsel.conf", "dkim \"example.org\" { key \"a b\" { "
	    "private_key = \"/a.pem\" } }\n", "dkimsel.conf:1: dkim "
	    "example.org: key \"a b\": a selector");
	expect_error("dkimnokey.conf", "dkim \"example.org\" { }\n",
	    "dkimnokey.conf:1: dkim \"example.org\": no key section");
	expect_error("dkimdom.conf", "dkim \"exa mple.org\" { key \"s\" { "
	    "private_key = \"/a.pem\" } }\n", "not a domain name");
	expect_error("dkimtwice.conf", "dkim \"a.example\" { key \"s\" { "
	    "private_key = \"/a.pem\" } }\ndkim \"A.example\" { key \"t\" { "
	    "private_key = \"/b.pem\" } }\n", "a second section");
	expect_error("dkimfb.conf", "dkim_fallback_domain = \"x.example\"\n",
	    "dkim_fallback_domain \"x.example\" has no dkim section");
	expect_error("dkimhdr.conf", "dkim_headers = { \"Sub:ject\" }\n",
	    "dkim_headers: \"Sub:ject\" is not a header field name");
}

static void
test_environment(void)
{
	struct mxl_config cfg;
	char err[512];
	char *p = write_conf("env.conf", "myhostname = \"from-env.example\"\n");

	setenv("MXLANE_CONFIG", p, 1);
	CHECK_INT(config_load(NULL, true, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.myhostname, "from-env.example");
	config_free(&cfg);
	/* Untrusted callers (set-id) do not get to choose via environment. */
	CHECK_INT(config_load(NULL, false, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.path == NULL || strcmp(cfg.path, p) != 0);
	config_free(&cfg);
	unsetenv("MXLANE_CONFIG");
	free(p);
}

/*
 * include("file"): a relative name is found beside the main file, an
 * absolute one where it says (libconfuse 3.3's search path alone would
 * glue the absolute name onto the directory and not find it).
 */
static void
test_include(void)
{
	struct mxl_config cfg;
	char err[512] = "";
	char text[800];

	if (mkdir(dir_sub(), 0700) != 0) {
		unit_failed++;
		return;
	}
	char *prov = write_conf("abs-providers.conf",
	    "provider gmail { domains = {\"gmail.com\"} }\n");
	snprintf(text, sizeof(text), "include(\"%s\")\n", prov);
	char *p = write_conf("sub/abs.conf", text);
	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK(config_provider(&cfg, "gmail") != NULL);
	config_free(&cfg);
	free(p);

	/* Relative: beside the main file, also from an included file. */
	char *rel = write_conf("sub/rel-providers.conf",
	    "provider yahoo { domains = {\"yahoo.com\"} }\n"
	    "include(\"rel-more.conf\")\n");
	char *more = write_conf("sub/rel-more.conf",
	    "provider aol { domains = {\"aol.com\"} }\n");
	p = write_conf("sub/rel.conf", "include(\"rel-providers.conf\")\n");
	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK(config_provider(&cfg, "yahoo") != NULL);
	CHECK(config_provider(&cfg, "aol") != NULL);
	config_free(&cfg);
	free(p);

	/* A missing file, absolute or relative, is an error naming it. */
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/sub/nosuch.conf", dir);
	snprintf(text, sizeof(text), "include(\"%s\")\n", missing);
	expect_error("sub/abs-missing.conf", text, "nosuch.conf");
	expect_error("sub/rel-missing.conf", "include(\"nosuch.conf\")\n",
	    "nosuch.conf");
	free(prov);
	free(rel);
	free(more);
}

/* warmup = "DATE: N/d, ...": the schedule, and what is refused. */
static void
test_warmup(void)
{
	int64_t start;
	long *caps;
	size_t n;

	CHECK(config_parse_warmup("2026-12-01: 200/d, 500/d,1000/d", &start,
	    &caps, &n));
	CHECK_INT(start, 1796083200);	/* 2026-12-01 00:00 UTC */
	CHECK_INT(n, 3);
	CHECK_INT(caps[0], 200);
	CHECK_INT(caps[2], 1000);
	free(caps);
	const char *bad[] = {"", "2026-12-01", "2026-12-01:", "2026-13-01: 1/d",
	    "2026-12-01 1/d", "2026-12-01: 1/h", "2026-12-01: 0/d",
	    "2026-12-01: 1/d,", "2026-12-01: x", "1969-12-31: 1/d",
	    "2026-12-01x: 1/d"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!config_parse_warmup(bad[i], &start, &caps, &n));
		CHECK(caps == NULL && n == 0);
	}

	char *path = write_conf("warm.conf", "spool_directory = \"/tmp/x\"\n"
	    "pool p {\n"
	    "  source \"127.0.0.1\" { warmup = \"2026-12-01: 5/d, 7/d\" }\n"
	    "  source \"127.0.0.2\" { }\n"
	    "}\n");
	struct mxl_config cfg;
	char err[512];
	CHECK_INT(config_load(path, false, &cfg, err, sizeof(err)), 0);
	const struct mxl_pool *pool = config_pool(&cfg, "p");
	CHECK(pool != NULL && pool->nsources == 2);
	if (pool && pool->nsources == 2) {
		CHECK_INT(pool->sources[0].nwarmup, 2);
		CHECK_INT(pool->sources[0].warmup_caps[1], 7);
		CHECK_INT(pool->sources[0].warmup_start, 1796083200);
		CHECK_INT(pool->sources[1].nwarmup, 0);
	}
	config_free(&cfg);
	free(path);
	path = write_conf("warmbad.conf", "spool_directory = \"/tmp/x\"\n"
	    "pool p {\n"
	    "  source \"127.0.0.1\" {\n"
	    "    warmup = \"2026-12-01: 5/h\"\n"
	    "  }\n"
	    "}\n");
	CHECK_INT(config_load(path, false, &cfg, err, sizeof(err)), EX_CONFIG);
	CHECK(strstr(err, "warmbad.conf:4: source \"127.0.0.1\": warmup = "
	    "\"2026-12-01: 5/h\"") != NULL);
	free(path);
}


/* header_rule, submitter_limit and a lane's content gate (lib/gate.h). */
static void
test_gate(void)
{
	struct mxl_config cfg;
	char err[512];
	char *p = write_conf("gate.conf",
	    "lane web { spam_check = \"127.0.0.1:783\" spam_threshold = 4.5\n"
	    "  spam_check_timeout = \"3s\" spam_check_failure = \"deliver\" }\n"
	    "header_rule \"a\" { match = \"^Received: from [^ ]+\\\\.internal\\\\b\""
	    " action = \"ignore\" }\n"
	    "header_rule \"b\" { match = \"^Subject:\" action = \"warn\" }\n"
	    "header_rule \"c\" { match = \"^Subject:.*viagra\" action = "
	    "\"reject 5.7.1 message content refused\" only_user = \"www-data\" }\n"
	    "header_rule \"d\" { match = \"^X-A:\" action = \"reject\" }\n"
	    "header_rule \"e\" { match = \"^X-B:\" action = \"lane web\" "
	    "only_lane = \"bulk\" }\n"
	    "header_rule \"f\" { match = \"^X-C:\" action = \"hold\" }\n"
	    "submitter_limit \"www-data\" { messages = \"200/h\" "
	    "recipients = \"1000/d\" action = \"hold\" }\n"
	    "submitter_limit \"*\" { messages = \"100/h\" action = \"tempfail\" }\n");

	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nheader_rules, 6);
	if (cfg.nheader_rules == 6) {
		struct header_rule *r = cfg.header_rules;
		CHECK_STR(r[0].name, "a");
		CHECK_INT(r[0].action, HEADER_IGNORE);
		CHECK_INT(regexec(&r[0].re, "received: FROM web1.INTERNAL (x)",
		    0, NULL, 0), 0);
		CHECK(regexec(&r[0].re, "Received: from web1.internalx", 0,
		    NULL, 0) != 0);
		CHECK_INT(r[1].action, HEADER_WARN);
		CHECK_INT(r[2].action, HEADER_REJECT);
		CHECK_STR(r[2].arg, "5.7.1 message content refused");
		CHECK_STR(r[2].only_user, "www-data");
		CHECK_STR(r[3].arg, "5.7.1 message content rejected");
		CHECK_INT(r[4].action, HEADER_LANE);
		CHECK_STR(r[4].arg, "web");
		CHECK_STR(r[4].only_lane, "bulk");
		CHECK_INT(r[5].action, HEADER_HOLD);
		CHECK(r[5].only_user == NULL && r[5].only_lane == NULL);
	}
	CHECK_INT(cfg.nsubmitter_limits, 2);
	if (cfg.nsubmitter_limits == 2) {
		struct submitter_limit *l = cfg.submitter_limits;
		CHECK_STR(l[0].user, "www-data");
		CHECK_INT(l[0].messages, 200);
		CHECK_INT(l[0].messages_period, 3600);
		CHECK_INT(l[0].recipients, 1000);
		CHECK_INT(l[0].recipients_period, 86400);
		CHECK_INT(l[0].action, LIMIT_HOLD);
		CHECK_STR(l[1].user, "*");
		CHECK_INT(l[1].recipients, 0);
		CHECK_INT(l[1].action, LIMIT_TEMPFAIL);
	}
	const struct mxl_lane *web = config_lane(&cfg, "web");
	CHECK(web != NULL && web->spam_check != NULL);
	if (web && web->spam_check) {
		CHECK_STR(web->spam_check, "127.0.0.1:783");
		CHECK(web->spam_threshold > 4.49 && web->spam_threshold < 4.51);
		CHECK_INT(web->spam_check_timeout, 3);
		CHECK(web->spam_failure_deliver);
	}
	const struct mxl_lane *bulk = config_lane(&cfg, "bulk");
	CHECK(bulk != NULL && bulk->spam_check == NULL);
	config_free(&cfg);
	free(p);

	/* Without any: nothing compiled, nothing allocated to speak of. */
	p = write_conf("nogate.conf", "myhostname = \"a.example\"\n");
	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nheader_rules, 0);
	CHECK_INT(cfg.nsubmitter_limits, 0);
	config_free(&cfg);
	free(p);

	char where[600];
	snprintf(where, sizeof(where), "%s/hre.conf:2: header_rule x: match", dir);
	expect_error("hre.conf", "myhostname = \"a\"\nheader_rule \"x\" "
	    "{ match = \"^Subject: (\" action = \"warn\" }\n", where);
	snprintf(where, sizeof(where), "%s/hra.conf:3: header_rule y: action "
	    "\"discard\"", dir);
	expect_error("hra.conf", "\n\nheader_rule \"y\" { match = \"x\" "
	    "action = \"discard\" }\n", where);
	expect_error("hrl.conf", "header_rule \"z\" { match = \"x\" "
	    "action = \"lane nosuch\" }\n", "hrl.conf:1: header_rule z: lane "
	    "\"nosuch\" is not declared");
	expect_error("hrol.conf", "header_rule \"z\" { match = \"x\" "
	    "action = \"warn\" only_lane = \"nosuch\" }\n", "only_lane");
	expect_error("hrw.conf", "header_rule \"z\" { match = \"x\" "
	    "action = \"warn now\" }\n", "hrw.conf:1:");
	expect_error("hrr.conf", "header_rule \"z\" { match = \"x\" "
	    "action = \"reject bad\\ttab\" }\n", "hrr.conf:1:");
	expect_error("sl1.conf", "submitter_limit \"u\" { messages = \"5/x\" }\n",
	    "sl1.conf:1: submitter_limit u: messages = \"5/x\"");
	expect_error("sl2.conf", "submitter_limit \"u\" { action = \"hold\" }\n",
	    "neither messages nor recipients");
	expect_error("sl3.conf", "submitter_limit \"u\" { messages = \"1/h\" "
	    "action = \"drop\" }\n", "action \"drop\"");
	expect_error("sl4.conf", "\nsubmitter_limit \"u\" { messages = \"1/h\" }\n"
	    "submitter_limit \"u\" { messages = \"2/h\" }\n", "sl4.conf:");
	expect_error("sc1.conf", "lane w { spam_check = \"localhost:783\" }\n",
	    "sc1.conf:1: lane w: spam_check");
	expect_error("sc2.conf", "lane w { spam_check = \"127.0.0.1\" }\n",
	    "spam_check");
	expect_error("sc3.conf", "lane w { spam_check_failure = \"drop\" }\n",
	    "spam_check_failure");
	expect_error("sc4.conf", "lane w { spam_check_timeout = \"0\" }\n",
	    "spam_check_timeout");
	struct header_rule r;
	memset(&r, 0, sizeof(r));
	CHECK_INT(header_rule_parse_action("reject 5.7.9", &r), 0);
	CHECK_STR(r.arg, "5.7.9 message content rejected");
	CHECK(header_rule_parse_action("reject 4.7.1 soft", &r) != 0);
	CHECK(header_rule_parse_action("reject 5.7 short", &r) != 0);
	CHECK_INT(header_rule_parse_action("reject 550 no", &r), 0);
	CHECK_STR(r.arg, "5.7.1 550 no");
	CHECK(header_rule_parse_action("lane a b", &r) != 0);
	CHECK(header_rule_parse_action("ignore me", &r) != 0);
	CHECK(header_rule_parse_action("", &r) != 0);
	header_rule_free(&r);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	test_all_keys();
	test_defaults();
	test_errors();
	test_dkim();
	test_environment();
	test_include();
	test_warmup();
	test_gate();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("config");
}
