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
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("config");
}
