/*
 * test_config - defaults, every key, and the errors that must stop
 * sendmail before it queues anything: file:line messages, exit 78.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "lib/config.h"
#include "tests/unit/unit.h"

static char dir[] = "/tmp/mxl-test-config-XXXXXX";

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
	    "lane newsletters { }\n");

	CHECK_INT(config_load(p, false, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.spool_directory, "/tmp/spool");
	CHECK_STR(cfg.myhostname, "mx.example.org");
	CHECK_STR(cfg.myorigin, "example.org");
	CHECK_STR(cfg.alias_maps, "/etc/mail/aliases");
	CHECK_INT(cfg.message_size_limit, 1000);
	CHECK_STR(cfg.default_lane, "bulk");
	CHECK_STR(cfg.log_file, "/tmp/x.log");
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
	expect_error("lanename.conf", "lane \"Bad Name\" { }\n", "lane");

	struct mxl_config cfg;
	char err[512];
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", dir);
	CHECK_INT(config_load(missing, false, &cfg, err, sizeof(err)),
	    EX_CONFIG);
	CHECK(strstr(err, "does-not-exist.conf") != NULL);
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
	/* Untrusted callers (setgid) do not get to choose via environment. */
	CHECK_INT(config_load(NULL, false, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.path == NULL || strcmp(cfg.path, p) != 0);
	config_free(&cfg);
	unsetenv("MXLANE_CONFIG");
	free(p);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	test_all_keys();
	test_defaults();
	test_errors();
	test_environment();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	return unit_done("config");
}
