/*
 * Unit tests for route/replies.c and lib/replyrules.c: taking a reply
 * apart, the order rules are tried in (admin before shipped, a shipped
 * rule replaced by name, the built-in unknown last), provider rules,
 * a local failure's own status, and the action and after fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/replyrules.h"
#include "route/replies.h"
#include "tests/unit/unit.h"

static void
check_split(const char *reply, const char *code, const char *status)
{
	char c[4], s[16];

	replies_split(reply, c, s);
	CHECK_STR(c, code);
	CHECK_STR(s, status);
}

static void
test_split(void)
{
	check_split("550 5.1.1 <a@b>: user unknown", "550", "5.1.1");
	check_split("550-5.1.1 The email account does not exist", "550",
	    "5.1.1");
	check_split("452 4.2.2 Mailbox full", "452", "4.2.2");
	check_split("556 5.1.10 null MX", "556", "5.1.10");
	check_split("550 5.7.515 Access denied", "550", "5.7.515");
	check_split("421 Max message per connection reached", "421", "");
	/* A status whose class is not the code's is not one. */
	check_split("550 4.1.1 odd", "550", "");
	check_split("550 5.1 short", "550", "");
	check_split("550 5.1.1.2 too long", "550", "");
	check_split("554", "554", "");
	/* A failure of ours quoting the server. */
	check_split("host mx.example.com[192.0.2.1]:25 said: 451 4.3.0 try "
	    "later (in reply to MAIL FROM command)", "451", "4.3.0");
	check_split("host mx[192.0.2.1]:25 refused to talk to me: 554 5.7.1 "
	    "go away", "554", "5.7.1");
	/* No reply at all. */
	check_split("connect to mx.example.com[192.0.2.1]:25: Connection "
	    "refused", "", "");
	check_split("Host or domain name not found. Name service error for "
	    "name=x.test type=MX: Host not found", "", "");
	check_split("", "", "");
	check_split(NULL, "", "");
}

static int
rule(struct reply_rule *r, const char *name, bool shipped,
    const char *provider, const char *code, const char *status,
    const char *text, const char *class)
{
	struct reply_rule_text t = {name, "test.conf", 1, shipped, provider,
	    code, status, text, class, NULL, NULL};
	char err[512];

	int rc = reply_rule_build(r, &t, err, sizeof(err));
	if (rc == 0)
		rc = reply_rule_compile(r, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

static void
test_order(void)
{
	struct mxl_config cfg;
	struct reply_rule rules[4];

	memset(&cfg, 0, sizeof(cfg));
	CHECK_INT(rule(&rules[0], "ours", false, "internal", NULL, NULL,
	    "over limit", "quota"), 0);
	CHECK_INT(rule(&rules[1], "tss04", true, NULL, "4*", NULL,
	    "\\[TSS04\\]", "spam-block"), 0);
	CHECK_INT(rule(&rules[2], "bad-mailbox", true, NULL, NULL, "5.1.1",
	    NULL, "bad-mailbox"), 0);
	CHECK_INT(rule(&rules[3], "dns", true, NULL, NULL, "5.1.2", NULL,
	    "bad-domain"), 0);
	cfg.reply_rules = rules;
	cfg.nreply_rules = 4;

	const struct reply_rule *r;
	r = replies_classify_line(&cfg, NULL, "550 5.1.1 <x@y>: no", NULL);
	CHECK_STR(r->name, "bad-mailbox");
	CHECK_STR(r->class, "bad-mailbox");
	/* The text is matched without case, anywhere. */
	r = replies_classify_line(&cfg, "yahoo", "421 4.7.0 [tss04] later",
	    NULL);
	CHECK_STR(r->class, "spam-block");
	/* code "4*" does not match a 5xx with the same tag. */
	r = replies_classify_line(&cfg, NULL, "554 [TSS04] x", NULL);
	CHECK_STR(r->class, "unknown");
	CHECK_STR(r->name, "unknown");
	CHECK_STR(r->file, "built-in");
	/* A provider rule needs that provider (any case). */
	r = replies_classify_line(&cfg, NULL, "550 5.1.1 over limit", NULL);
	CHECK_STR(r->class, "bad-mailbox");
	r = replies_classify_line(&cfg, "INTERNAL", "550 5.1.1 over limit",
	    NULL);
	CHECK_STR(r->class, "quota");
	/* A local failure: no code, its own status. */
	r = replies_classify_line(&cfg, "", "Host or domain name not found",
	    "5.1.2");
	CHECK_STR(r->class, "bad-domain");
	/* A status in the text wins over the local one. */
	r = replies_classify_line(&cfg, NULL, "host h said: 550 5.1.1 no",
	    "5.1.2");
	CHECK_STR(r->class, "bad-mailbox");
	/* No rules at all. */
	CHECK_STR(replies_classify(NULL, NULL, NULL, NULL, NULL)->class,
	    "unknown");
	for (int i = 0; i < 4; i++)
		reply_rule_free(&rules[i]);
}

static void
test_actions(void)
{
	struct reply_rule r;

	memset(&r, 0, sizeof(r));
	CHECK_INT(reply_rule_parse_action("suspend 1h", &r), 0);
	CHECK_INT(r.action, REPLY_ACTION_SUSPEND);
	CHECK_INT(r.action_seconds, 3600);
	CHECK_INT(reply_rule_parse_action("throttle 100/h for 2h", &r), 0);
	CHECK_INT(r.action, REPLY_ACTION_THROTTLE);
	CHECK_INT(r.rate_count, 100);
	CHECK_INT(r.rate_period, 3600);
	CHECK_INT(r.action_seconds, 7200);
	CHECK_INT(reply_rule_parse_action("  defer-provider   30m ", &r), 0);
	CHECK_INT(r.action, REPLY_ACTION_DEFER_PROVIDER);
	CHECK_INT(r.action_seconds, 1800);
	const char *bad[] = {"", "suspend", "suspend 0", "suspend 1h now",
	    "suspend forever", "throttle 100/h", "throttle 100/h 2h",
	    "throttle fast for 2h", "throttle 100/h for", "pause 1h",
	    "defer-provider -1h", NULL};
	for (int i = 0; bad[i]; i++) {
		memset(&r, 0, sizeof(r));
		CHECK(reply_rule_parse_action(bad[i], &r) != 0);
		CHECK_INT(r.action, REPLY_ACTION_NONE);
	}
	CHECK_INT(reply_rule_parse_after("3 in 10m", &r), 0);
	CHECK_INT(r.after_count, 3);
	CHECK_INT(r.after_window, 600);
	CHECK(reply_rule_parse_after("0 in 10m", &r) != 0);
	CHECK(reply_rule_parse_after("3 within 10m", &r) != 0);
	CHECK(reply_rule_parse_after("3 in", &r) != 0);
	CHECK(reply_rule_parse_after("three in 10m", &r) != 0);

	/* Whole rules: what reply_rule_build refuses. */
	struct reply_rule_text t = {"x", "f", 3, false, NULL, NULL, NULL,
	    NULL, "policy", NULL, NULL};
	char err[512];
	CHECK_INT(reply_rule_build(&r, &t, err, sizeof(err)), 0);
	reply_rule_free(&r);
	t.class = "nonsense";
	CHECK(reply_rule_build(&r, &t, err, sizeof(err)) != 0);
	CHECK(strstr(err, "\"nonsense\"") != NULL);
	reply_rule_free(&r);
	t.class = NULL;
	CHECK(reply_rule_build(&r, &t, err, sizeof(err)) != 0);
	reply_rule_free(&r);
	t.class = "policy";
	t.text = "a(b";
	CHECK_INT(reply_rule_build(&r, &t, err, sizeof(err)), 0);
	CHECK(reply_rule_compile(&r, err, sizeof(err)) != 0);
	CHECK(strstr(err, "not a regular expression") != NULL);
	reply_rule_free(&r);
	t.text = NULL;
	t.status = "5.1.x";
	CHECK(reply_rule_build(&r, &t, err, sizeof(err)) != 0);
	reply_rule_free(&r);
	t.status = NULL;
	t.after = "3 in 10m";
	CHECK(reply_rule_build(&r, &t, err, sizeof(err)) != 0);
	CHECK(strstr(err, "without an action") != NULL);
	reply_rule_free(&r);
	t.action = "suspend 2h";
	CHECK_INT(reply_rule_build(&r, &t, err, sizeof(err)), 0);
	CHECK_INT(r.after_count, 3);
	CHECK_INT(r.action_seconds, 7200);
	reply_rule_free(&r);
	CHECK(replies_class_valid("rate-limit"));
	CHECK(!replies_class_valid("rate_limit"));
	CHECK(!replies_class_valid(NULL));
}

/* Through config_load: order, replacement by name, file:line. */
static void
test_config(void)
{
	char dir[] = "/tmp/test_replies.XXXXXX", path[300], inc[300];
	struct mxl_config cfg;
	char err[1024];

	if (mkdtemp(dir) == NULL) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/mxlane.conf", dir);
	snprintf(inc, sizeof(inc), "%s/replies.conf", dir);
	FILE *f = fopen(inc, "w");
	fputs("reply \"a\" { status = \"5.1.1\" class = \"bad-mailbox\" }\n"
	    "reply \"b\" { code = \"4*\" class = \"transient\" }\n", f);
	fclose(f);
	f = fopen(path, "w");
	fprintf(f, "spool_directory = \"%s\"\n"
	    "reply \"b\" { code = \"4*\" class = \"rate-limit\" }\n"
	    "include(\"replies.conf\")\n"
	    "reply \"c\" { text = \"x\" class = \"policy\" }\n", dir);
	fclose(f);
	int rc = config_load(path, false, &cfg, err, sizeof(err));
	CHECK_INT(rc, 0);
	if (rc == 0)
		CHECK_INT(replies_compile(&cfg, err, sizeof(err)), 0);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	/* b (admin, replacing the shipped b), c (admin), a (shipped), unknown */
	CHECK_INT(cfg.nreply_rules, 4);
	CHECK_STR(cfg.reply_rules[0].name, "b");
	CHECK_STR(cfg.reply_rules[0].class, "rate-limit");
	CHECK_INT(cfg.reply_rules[0].line, 2);
	CHECK_STR(cfg.reply_rules[1].name, "c");
	CHECK_STR(cfg.reply_rules[2].name, "a");
	CHECK(cfg.reply_rules[2].shipped);
	CHECK_INT(cfg.reply_rules[2].line, 1);
	CHECK_STR(cfg.reply_rules[2].file, inc);
	CHECK_STR(cfg.reply_rules[3].name, "unknown");
	CHECK_STR(replies_classify_line(&cfg, NULL, "421 busy", NULL)->class,
	    "rate-limit");
	/* Defaults of the suppression keys. */
	CHECK_INT(cfg.nsuppress_classes, 3);
	CHECK_STR(cfg.suppress_classes[0], "bad-mailbox");
	CHECK_INT(cfg.suppress_time, 30 * 86400);
	CHECK_INT(cfg.nsuppress_soft_classes, 1);
	CHECK_STR(cfg.suppress_soft_classes[0], "quota");
	CHECK_INT(cfg.suppress_soft_count, 3);
	CHECK_INT(cfg.suppress_soft_window, 7 * 86400);
	CHECK_INT(cfg.suppress_soft_time, 3 * 86400);
	CHECK(config_lane(&cfg, "bulk")->suppress);
	CHECK(config_lane(&cfg, "priority")->suppress);
	config_free(&cfg);

	/* A bad rule in the included file: its file and line. */
	f = fopen(inc, "w");
	fputs("# shipped\n\nreply \"a\" {\n  class = \"bogus\"\n}\n", f);
	fclose(f);
	CHECK(config_load(path, false, &cfg, err, sizeof(err)) != 0);
	char want[400];
	snprintf(want, sizeof(want), "%s:3: reply a: class \"bogus\"", inc);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "got: %s\n", err);
	unlink(inc);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	test_split();
	test_order();
	test_actions();
	test_config();
	return unit_done("replies");
}
