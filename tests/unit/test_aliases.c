/*
 * NAME
 *	test_aliases - unit tests for sendmail/aliases.c
 * DESCRIPTION
 *	Writes aliases and include files under a mkdtemp(3) directory,
 *	compiles them through a collecting callback, and expands recipients
 *	against the collected table; warnings are captured and asserted.
 *	The directory is removed at the end.
 */
#include <ftw.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sendmail/aliases.h"
#include "lib/util.h"
#include "tests/unit/unit.h"

struct alias {
	char *name;
	char *joined;		/* targets joined by " | " */
	char **targets;
	size_t n;
};

struct table {
	struct alias *v;
	size_t n;
	size_t cap;
	struct buf warnings;	/* each warning followed by '\n' */
	int nwarn;
	struct buf lookups;	/* each key looked up followed by ' ' */
};

static char dir[] = "/tmp/mxlane-test-aliases.XXXXXX";
static char err[512];

static void
collect(void *ctx, const char *name, char **targets, size_t n)
{
	struct table *t = ctx;
	struct alias *a;
	struct buf b = BUF_INIT;
	size_t i;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	a = &t->v[t->n++];
	a->name = xstrdup(name);
	a->n = n;
	a->targets = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		a->targets[i] = xstrdup(targets[i]);
		buf_printf(&b, "%s%s", i ? " | " : "", targets[i]);
	}
	a->joined = buf_steal(&b);
}

static void
warned(void *ctx, const char *message)
{
	struct table *t = ctx;

	buf_printf(&t->warnings, "%s\n", message);
	t->nwarn++;
}

static const struct alias *
find(const struct table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

static int
lookup(void *ctx, const char *name, char ***targets, size_t *n)
{
	struct table *t = ctx;
	const struct alias *a;
	size_t i;

	buf_printf(&t->lookups, "%s ", name);
	if ((a = find(t, name)) == NULL)
		return 1;
	*targets = xcalloc(a->n + 1, sizeof(char *));
	for (i = 0; i < a->n; i++)
		(*targets)[i] = xstrdup(a->targets[i]);
	*n = a->n;
	return 0;
}

static void
table_free(struct table *t)
{
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].joined);
		for (k = 0; k < t->v[i].n; k++)
			free(t->v[i].targets[k]);
		free(t->v[i].targets);
	}
	free(t->v);
	buf_free(&t->warnings);
	buf_free(&t->lookups);
	memset(t, 0, sizeof(*t));
}

static const char *
warnings(const struct table *t)
{
	return t->warnings.data ? t->warnings.data : "";
}

static char *
path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void
put(const char *name, const char *text)
{
	char *p = path_of(name);
	FILE *fp = fopen(p, "w");

	CHECK(fp != NULL);
	if (fp != NULL) {
		fwrite(text, 1, strlen(text), fp);
		fclose(fp);
	}
	free(p);
}

static int
parse(const char *name, struct table *t, struct aliases_stats *st)
{
	char *p = path_of(name);
	int rc;

	err[0] = '\0';
	rc = aliases_parse_file(p, collect, warned, t, st, err, sizeof(err));
	free(p);
	return rc;
}

/* The error must be exactly "DIR/file:line: reason". */
static void
parse_err(const char *name, const char *want)
{
	struct table t = {0};
	char *full = xasprintf("%s/%s", dir, want);

	CHECK_INT(parse(name, &t, NULL), -1);
	CHECK_STR(err, full);
	CHECK_INT(t.n, 0);
	free(full);
	table_free(&t);
}

static const char *
joined(const struct table *t, const char *name)
{
	const struct alias *a = find(t, name);

	return a ? a->joined : "(no such alias)";
}

static void
test_parse_basic(void)
{
	struct table t = {0};
	struct aliases_stats st;
	size_t total = 0, longest = 0, i, k, size;

	put("basic",
	    "# /etc/aliases for tests\n"
	    "\n"
	    "postmaster: root\n"
	    "   # an indented comment is a comment\n"
	    "MAILER-DAEMON:\tpostmaster\n"
	    "root: admin@example.com, \"Ops Team\" <ops@example.com>,\n"
	    "\tbackup@example.net (night shift),\n"
	    "# a comment between continuation lines\n"
	    "\n"
	    "  last@example.org,\n"
	    "staff : alice,bob , carol ,,\n"
	    "\"quoted name\": dave\n"
	    "prog: \"|/usr/bin/prog --opt a,b\", /var/log/mail.copy\n"
	    "crlf: x@example.com,\r\n"
	    " y@example.com\r\n"
	    "nofurther: \\root, \\\"j doe\"\n"
	    "dots: \"john..doe\"@docomo.ne.jp, Jane <jane.@docomo.ne.jp>\n"
	    "UPPER: Someone@Example.COM\n");
	CHECK_INT(parse("basic", &t, &st), 0);
	CHECK_STR(err, "");
	CHECK_INT(t.n, 10);
	CHECK_INT(t.nwarn, 0);
	CHECK_STR(joined(&t, "postmaster"), "root");
	CHECK_STR(joined(&t, "mailer-daemon"), "postmaster");
	CHECK(find(&t, "MAILER-DAEMON") == NULL);
	CHECK_STR(joined(&t, "root"), "admin@example.com | ops@example.com | "
	    "backup@example.net | last@example.org");
	CHECK_STR(joined(&t, "staff"), "alice | bob | carol");
	CHECK_STR(joined(&t, "\"quoted name\""), "dave");
	CHECK_STR(joined(&t, "prog"),
	    "|/usr/bin/prog --opt a,b | /var/log/mail.copy");
	CHECK_STR(joined(&t, "crlf"), "x@example.com | y@example.com");
	CHECK_STR(joined(&t, "nofurther"), "\\root | \\\"j doe\"");
	CHECK_STR(joined(&t, "dots"),
	    "\"john..doe\"@docomo.ne.jp | \"jane.\"@docomo.ne.jp");
	CHECK_STR(joined(&t, "upper"), "Someone@Example.COM");
	/* File order is kept. */
	CHECK_STR(t.v[0].name, "postmaster");
	CHECK_STR(t.v[9].name, "upper");

	/* Sizes are those of "name: t1, t2", recomputed here. */
	for (i = 0; i < t.n; i++) {
		size = strlen(t.v[i].name) + 1;
		for (k = 0; k < t.v[i].n; k++)
			size += strlen(t.v[i].targets[k]) + (k ? 2 : 1);
		total += size;
		if (size > longest)
			longest = size;
	}
	CHECK_INT(st.count, 10);
	CHECK_INT(st.longest, longest);
	CHECK_INT(st.total, total);
	CHECK_INT(strlen("postmaster: root"), 16);
	CHECK_INT(st.longest, strlen("root: admin@example.com, "
	    "ops@example.com, backup@example.net, last@example.org"));
	table_free(&t);
}

static void
test_parse_stats_small(void)
{
	struct table t = {0};
	struct aliases_stats st;
	char *p;

	put("small", "a: b\nlonger: x@y, z\n");
	CHECK_INT(parse("small", &t, &st), 0);
	CHECK_INT(st.count, 2);
	CHECK_INT(st.longest, strlen("longer: x@y, z"));
	CHECK_INT(st.total, strlen("a: b") + strlen("longer: x@y, z"));
	table_free(&t);

	/* Callbacks and stats are optional. */
	p = path_of("small");
	CHECK_INT(aliases_parse_file(p, NULL, NULL, NULL, NULL, err,
	    sizeof(err)), 0);
	free(p);

	put("empty", "# nothing here\n\n");
	CHECK_INT(parse("empty", &t, &st), 0);
	CHECK_INT(st.count, 0);
	CHECK_INT(st.total, 0);
	CHECK_INT(t.n, 0);
	table_free(&t);
}

static void
test_parse_duplicates(void)
{
	struct table t = {0};
	struct aliases_stats st;
	char *w;

	put("dups",
	    "admin: first@x\n"
	    "other: o@x\n"
	    "Admin: second@x\n"
	    "third: t@x\n"
	    "ADMIN: last@x,\n"
	    "  last2@x\n"
	    "\"other\": o2@x\n");
	CHECK_INT(parse("dups", &t, &st), 0);
	CHECK_INT(t.n, 3);
	CHECK_STR(joined(&t, "admin"), "last@x | last2@x");
	CHECK_STR(joined(&t, "other"), "o2@x");
	CHECK_INT(st.count, 3);
	CHECK_INT(st.total, strlen("third: t@x") +
	    strlen("admin: last@x, last2@x") + strlen("other: o2@x"));
	/* One warning per overriding entry, in file order. */
	CHECK_INT(t.nwarn, 3);
	w = xasprintf("%s/dups:3: duplicate alias \"admin\" overrides line 1\n"
	    "%s/dups:5: duplicate alias \"admin\" overrides line 3\n"
	    "%s/dups:7: duplicate alias \"other\" overrides line 2\n", dir,
	    dir, dir);
	CHECK_STR(warnings(&t), w);
	free(w);
	/* Survivors in file order; the winner where it was defined last. */
	CHECK_STR(t.v[0].name, "third");
	CHECK_STR(t.v[1].name, "admin");
	CHECK_STR(t.v[2].name, "other");
	table_free(&t);
}

static void
test_parse_include(void)
{
	struct table t = {0};
	char *p, *text;

	put("members",
	    "# list members\n"
	    "a@x, b@y\n"
	    "\n"
	    "   c@z\n"
	    "\"|/bin/archive\"\n"
	    "local1,\n");
	put("sub.list", "sub1@x\n:include:sub2.list\n");
	put("sub2.list", "sub2@x\n");
	put("empty.list", "# nobody yet\n");
	p = path_of("members");
	text = xasprintf(
	    "list: first@x, :include:%s, last@x\n"
	    "rel: :include:sub.list\n"
	    "quoted: \":include:sub2.list\"\n"
	    "CaseInc: :INCLUDE: sub2.list\n"
	    "nobody: :include:empty.list\n", p);
	put("inc", text);
	free(text);
	free(p);
	CHECK_INT(parse("inc", &t, NULL), 0);
	CHECK_STR(err, "");
	CHECK_STR(joined(&t, "list"), "first@x | a@x | b@y | c@z | "
	    "|/bin/archive | local1 | last@x");
	CHECK_STR(joined(&t, "rel"), "sub1@x | sub2@x");
	CHECK_STR(joined(&t, "quoted"), "sub2@x");
	CHECK_STR(joined(&t, "caseinc"), "sub2@x");
	CHECK(find(&t, "nobody") != NULL);
	CHECK_INT(find(&t, "nobody")->n, 0);
	table_free(&t);
}

static void
test_parse_include_depth(void)
{
	struct table t = {0};
	char name[32], text[64], *p;
	int i;

	/* inc0 -> inc1 -> ... -> inc10: ten levels are allowed. */
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "inc%d", i);
		snprintf(text, sizeof(text), "l%d@x, :include:inc%d\n", i,
		    i + 1);
		put(name, text);
	}
	put("inc10", "bottom@x\n");
	put("deep", "deep: :include:inc1\n");
	CHECK_INT(parse("deep", &t, NULL), 0);
	CHECK_STR(joined(&t, "deep"), "l1@x | l2@x | l3@x | l4@x | l5@x | "
	    "l6@x | l7@x | l8@x | l9@x | bottom@x");
	table_free(&t);
	/* One more is a warning; that include adds nothing, the rest stays. */
	put("deeper", "deeper: :include:inc0\n");
	CHECK_INT(parse("deeper", &t, NULL), 0);
	CHECK_STR(joined(&t, "deeper"), "l0@x | l1@x | l2@x | l3@x | l4@x | "
	    "l5@x | l6@x | l7@x | l8@x | l9@x");
	CHECK_INT(t.nwarn, 1);
	p = xasprintf("%s/inc9:1: :include: nested deeper than 10 levels, "
	    "ignored\n", dir);
	CHECK_STR(warnings(&t), p);
	free(p);
	table_free(&t);

	put("loop1", ":include:loop2\n");
	put("loop2", "x@y, :include:loop1\n");
	put("loop", "loop: :include:loop1, z@y\n");
	CHECK_INT(parse("loop", &t, NULL), 0);
	CHECK_INT(t.nwarn, 1);
	CHECK(strstr(warnings(&t), "nested deeper than 10 levels") != NULL);
	CHECK_STR(joined(&t, "loop"), "x@y | x@y | x@y | x@y | x@y | z@y");
	table_free(&t);

	/* A file including itself twice: a budget of files ends it. */
	put("twice", ":include:twice, :include:twice\n");
	put("fork", "fork: :include:twice, w@y\n");
	CHECK_INT(parse("fork", &t, NULL), 0);
	CHECK_STR(joined(&t, "fork"), "w@y");
	CHECK(strstr(warnings(&t), "more than 100 files or 10 seconds for "
	    "one :include:") != NULL);
	table_free(&t);
}

/* No warning may carry the secret or a control character. */
static void
check_clean(const struct table *t, const char *secret)
{
	const char *w = warnings(t), *p;
	size_t i, k;

	CHECK(strstr(w, secret) == NULL);
	for (p = w; *p != '\0'; p++)
		if (*p != '\n' && ((unsigned char)*p < 0x20 || *p == 0x7f))
			break;
	CHECK(*p == '\0');
	for (i = 0; i < t->n; i++)
		for (k = 0; k < t->v[i].n; k++)
			CHECK(strstr(t->v[i].targets[k], secret) == NULL);
}

static void
test_include_problems(void)
{
	struct table t = {0};
	char *p, *q, *want;

	/* Missing files: a warning each, the alias keeps the rest. */
	put("i_missing", "list: x@y,\n  :include:/nonexistent/mxl\n"
	    "rel: :include:nothere, r@y\n"
	    "gone: :include:nothere\n");
	CHECK_INT(parse("i_missing", &t, NULL), 0);
	CHECK_STR(joined(&t, "list"), "x@y");
	CHECK_STR(joined(&t, "rel"), "r@y");
	/* Nothing left: the alias stays, without targets. */
	CHECK(find(&t, "gone") != NULL);
	CHECK_INT(find(&t, "gone")->n, 0);
	/* The line of an entry is its first line. */
	want = xasprintf("%s/i_missing:1: include file /nonexistent/mxl "
	    "ignored: /nonexistent: No such file or directory\n"
	    "%s/i_missing:3: include file %s/nothere ignored: "
	    "%s/nothere: No such file or directory\n"
	    "%s/i_missing:4: include file %s/nothere ignored: "
	    "%s/nothere: No such file or directory\n", dir, dir, dir, dir,
	    dir, dir, dir);
	CHECK_STR(warnings(&t), want);
	free(want);
	table_free(&t);

	/*
	 * Lines that do not parse: "FILE:LINE: reason", never the line;
	 * the line is skipped, the others are kept.
	 */
	put("i_bad.list", "good1@x\n"
	    "secret-token and more@x\n"
	    "good2@x, x@secret-token..example\n"
	    "\"|/bin/secret-token \033]0;title\007\"\n"
	    "good3@x\n");
	put("i_bad", "bad: :include:i_bad.list, last@x\n");
	CHECK_INT(parse("i_bad", &t, NULL), 0);
	CHECK_STR(err, "");
	CHECK_STR(joined(&t, "bad"), "good1@x | good3@x | last@x");
	want = xasprintf("%s/i_bad.list:2: target 1: unexpected text, line "
	    "skipped\n"
	    "%s/i_bad.list:3: target 2: invalid domain, line skipped\n"
	    "%s/i_bad.list:4: target 1: control character in a command or "
	    "file name, line skipped\n", dir, dir, dir);
	CHECK_STR(warnings(&t), want);
	free(want);
	check_clean(&t, "secret-token");
	table_free(&t);

	/* A NUL byte: that line is skipped, reading goes on. */
	p = path_of("i_nul.list");
	{
		FILE *fp = fopen(p, "w");

		CHECK(fp != NULL);
		if (fp != NULL) {
			fwrite("n1@x\nsecret-token\0@x\nn2@x\n", 1, 26, fp);
			fclose(fp);
		}
	}
	free(p);
	put("i_nul", "nul: :include:i_nul.list\n");
	CHECK_INT(parse("i_nul", &t, NULL), 0);
	CHECK_STR(joined(&t, "nul"), "n1@x | n2@x");
	want = xasprintf("%s/i_nul.list:2: NUL byte in line, line skipped\n",
	    dir);
	CHECK_STR(warnings(&t), want);
	free(want);
	check_clean(&t, "secret-token");
	table_free(&t);

	/* A symlink to a file: refused, none of its lines read. */
	put("i_secret", "secret-token@example.org\n");
	p = path_of("i_secret");
	q = path_of("i_link.list");
	CHECK_INT(symlink(p, q), 0);
	put("i_link", "linked: :include:i_link.list, kept@x\n");
	CHECK_INT(parse("i_link", &t, NULL), 0);
	CHECK_STR(joined(&t, "linked"), "kept@x");
	want = xasprintf("%s/i_link:1: include file %s ignored: %s is a "
	    "symbolic link\n", dir, q, q);
	CHECK_STR(warnings(&t), want);
	free(want);
	check_clean(&t, "secret-token");
	table_free(&t);
	free(p);
	free(q);

	/* A path with control characters, named in an include file. */
	put("i_ctl.list", "c1@x, \":include:/nonexistent/\033[2Jx\"\n");
	put("i_ctl", "ctl: :include:i_ctl.list\n");
	CHECK_INT(parse("i_ctl", &t, NULL), 0);
	CHECK_STR(joined(&t, "ctl"), "c1@x");
	want = xasprintf("%s/i_ctl.list:1: include file /nonexistent/?[2Jx "
	    "ignored: /nonexistent: No such file or directory\n", dir);
	CHECK_STR(warnings(&t), want);
	free(want);
	check_clean(&t, "\033");
	table_free(&t);
}

/*
 * As root: a list owned by nobody is read as nobody, and so are the
 * files it includes; root's own 0600 file is out of its reach.
 */
static void
test_include_as_owner(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct table t = {0};
	char *p, *want;

	if (geteuid() != 0) {
		printf("not root: reading as the owner not tested\n");
		return;
	}
	CHECK(pw != NULL);
	if (pw == NULL)
		return;
	CHECK_INT(chmod(dir, 0711), 0);
	p = path_of("nob");
	CHECK_INT(mkdir(p, 0700), 0);
	CHECK_INT(chown(p, pw->pw_uid, pw->pw_gid), 0);
	free(p);
	put("nob/list", "mine@x\n:include:../i_rootonly\n");
	put("i_rootonly", "secret-token@x\n");
	p = path_of("i_rootonly");
	CHECK_INT(chmod(p, 0600), 0);
	free(p);
	p = path_of("nob/list");
	CHECK_INT(chmod(p, 0600), 0);
	CHECK_INT(chown(p, pw->pw_uid, pw->pw_gid), 0);
	free(p);
	put("i_owner", "owned: :include:nob/list\n"
	    "direct: :include:i_rootonly\n");
	CHECK_INT(parse("i_owner", &t, NULL), 0);
	/* nobody's 0600 list is read; root's file named in it is not. */
	CHECK_STR(joined(&t, "owned"), "mine@x");
	want = xasprintf("%s/nob/list:2: include file %s/nob/../i_rootonly "
	    "ignored: %s/nob/../i_rootonly: Permission denied\n", dir, dir,
	    dir);
	CHECK_STR(warnings(&t), want);
	free(want);
	/* Named in root's aliases file, root's own file is read. */
	CHECK_STR(joined(&t, "direct"), "secret-token@x");
	table_free(&t);
	CHECK_INT(chmod(dir, 0700), 0);
}

static void
test_parse_errors(void)
{
	struct table t = {0};
	char *p;
	FILE *fp;

	put("e_colon", "ok: x\nno colon here\n");
	parse_err("e_colon", "e_colon:2: missing ':' after the alias name");
	put("e_noname", ": x@y\n");
	parse_err("e_noname", "e_noname:1: missing alias name");
	put("e_orphan", "# top\n  x@y\n");
	parse_err("e_orphan", "e_orphan:2: continuation line without an "
	    "alias name");
	put("e_empty", "a: b\nempty:\n# c\n\nnext: x\n");
	parse_err("e_empty", "e_empty:2: alias \"empty\" has no targets");
	put("e_space", "two words: x\n");
	/* No message quotes the line, not even the name. */
	parse_err("e_space", "e_space:1: bad alias name: space outside quotes");
	put("e_domain", "user@example.com: x\n");
	parse_err("e_domain", "e_domain:1: alias name has a domain; aliases "
	    "are local parts");
	put("e_angle", "<root>: x\n");
	parse_err("e_angle", "e_angle:1: bad alias name: angle brackets");
	put("e_target", "a: good@x, bad target@x\n");
	parse_err("e_target", "e_target:1: target 2: unexpected text");
	put("e_target2", "a: x@y..z\n");
	parse_err("e_target2", "e_target2:1: target 1: invalid domain");
	/* A target that fails after an address: nothing left behind. */
	put("e_after", "root: a@b.example; x y z\n");
	parse_err("e_after", "e_after:1: target 1: unexpected text");
	put("e_group", "a: empty:;\n");
	parse_err("e_group", "e_group:1: target 1 has no address");
	put("e_bs", "a: \\bad user\n");
	parse_err("e_bs", "e_bs:1: target 1: space outside quotes");
	put("e_char", "a: b@x,\n  c,\n  d\"@x\n");
	parse_err("e_char", "e_char:1: target 3: unterminated quoted string");
	put("e_incempty", "a: :include:\n");
	parse_err("e_incempty", "e_incempty:1: empty :include: path");
	put("e_quote", "a: \"unterminated@x\n");
	parse_err("e_quote", "e_quote:1: target 1: unterminated quoted string");
	/* Commands and files are stored and printed as written. */
	put("e_ctl", "a: \"|/bin/prog \033[2J\"\n");
	parse_err("e_ctl", "e_ctl:1: target 1: control character in a "
	    "command or file name");
	put("e_ctl2", "a: x@y, /var/mail/x\ty\n");
	parse_err("e_ctl2", "e_ctl2:1: target 2: control character in a "
	    "command or file name");

	/* A NUL byte is refused, not silently cut. */
	p = path_of("e_nul");
	fp = fopen(p, "w");
	CHECK(fp != NULL);
	if (fp != NULL) {
		fwrite("a: b\nc: d\0e\n", 1, 12, fp);
		fclose(fp);
	}
	free(p);
	parse_err("e_nul", "e_nul:2: NUL byte in line");

	/* A missing aliases file: "path: strerror". */
	CHECK_INT(parse("does-not-exist", &t, NULL), -1);
	p = xasprintf("%s/does-not-exist: No such file or directory", dir);
	CHECK_STR(err, p);
	free(p);
	table_free(&t);
}

/* Expands the space-separated recipients; returns " | "-joined output. */
static char *
expand(struct table *t, const char *rcpts)
{
	struct addr_list in = ADDR_LIST_INIT, out = ADDR_LIST_INIT;
	struct buf b = BUF_INIT;
	char *copy = xstrdup(rcpts), *tok, *save = NULL;
	size_t i;

	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save))
		addr_list_add_unique(&in, tok);
	aliases_expand(&in, "host.example", lookup, warned, t, &out);
	for (i = 0; i < out.n; i++)
		buf_printf(&b, "%s%s", i ? " | " : "", out.addrs[i]);
	addr_list_free(&in);
	addr_list_free(&out);
	free(copy);
	return buf_steal(&b);
}

static void
expect(struct table *t, const char *rcpts, const char *want, int nwarn)
{
	char *got;

	buf_reset(&t->warnings);
	t->nwarn = 0;
	got = expand(t, rcpts);
	if (strcmp(got, want) != 0 || t->nwarn != nwarn)
		fprintf(stderr, "  expanding \"%s\"; warnings:\n%s", rcpts,
		    warnings(t));
	CHECK_STR(got, want);
	CHECK_INT(t->nwarn, nwarn);
	free(got);
}

static void
test_expand(void)
{
	struct table t = {0};

	put("exp",
	    "postmaster: root\n"
	    "root: root, admin@example.com\n"
	    "a: b\n"
	    "b: a\n"
	    "c: d, ext@example.org\n"
	    "d: e\n"
	    "e: c\n"
	    "team: alice, bob@HOST.example, carol@other.example\n"
	    "bob: robert\n"
	    "both: team, alice, postmaster\n"
	    "x: shared\n"
	    "y: shared\n"
	    "shared: s1, s2\n"
	    "diamond: x, y\n"
	    "prog: \"|/usr/bin/prog arg\", /var/log/copy, keep\n"
	    "onlypipe: |/bin/true\n"
	    "nofurther: \\bob, \\root\n"
	    "dup: keep, keep@host.example, KEEP@HOST.EXAMPLE\n"
	    "empty: :include:empty.list\n");
	put("empty.list", "\n");
	CHECK_INT(parse("exp", &t, NULL), 0);

	/* Not an alias, qualified or not; foreign domains untouched. */
	expect(&t, "nobody", "nobody@host.example", 0);
	expect(&t, "nobody@HOST.EXAMPLE", "nobody@HOST.EXAMPLE", 0);
	expect(&t, "root@elsewhere.example", "root@elsewhere.example", 0);
	/* Recursion and the self-reference idiom. */
	expect(&t, "postmaster", "root@host.example | admin@example.com", 0);
	expect(&t, "root", "root@host.example | admin@example.com", 0);
	/* The self-reference delivers the target as the file spells it. */
	expect(&t, "Root@Host.Example", "root@host.example | "
	    "admin@example.com", 0);
	/* Loops deliver to the name met again; nothing is lost. */
	expect(&t, "a", "a@host.example", 0);
	expect(&t, "b", "b@host.example", 0);
	expect(&t, "c", "c@host.example | ext@example.org", 0);
	expect(&t, "d", "d@host.example | ext@example.org", 0);
	/* Local by domain, case-insensitively; others not expanded. */
	expect(&t, "team", "alice@host.example | robert@host.example | "
	    "carol@other.example", 0);
	expect(&t, "team@other.example", "team@other.example", 0);
	/* De-duplication across recipients and branches. */
	expect(&t, "both team alice", "alice@host.example | "
	    "robert@host.example | carol@other.example | root@host.example | "
	    "admin@example.com", 0);
	expect(&t, "diamond", "s1@host.example | s2@host.example", 0);
	expect(&t, "dup", "keep@host.example | KEEP@HOST.EXAMPLE", 0);
	/* Pipes and files skipped, each with a warning; the rest kept. */
	expect(&t, "prog", "keep@host.example", 2);
	CHECK_STR(warnings(&t), "alias prog: |/usr/bin/prog arg target not "
	    "supported by mxlane (no local delivery), skipped\n"
	    "alias prog: /var/log/copy target not supported by mxlane (no "
	    "local delivery), skipped\n");
	expect(&t, "onlypipe", "", 1);
	/* "\user" delivers without further aliasing. */
	expect(&t, "nofurther", "bob@host.example | root@host.example", 0);
	/* Empty alias: reported, nothing delivered. */
	expect(&t, "empty", "", 1);
	CHECK_STR(warnings(&t), "alias empty: no targets\n");

	/* The lookup key is the lower-cased local part. */
	buf_reset(&t.lookups);
	expect(&t, "PostMaster@host.example", "root@host.example | "
	    "admin@example.com", 0);
	CHECK_STR(t.lookups.data, "postmaster root ");
	/* A shared sub-alias is looked up once, not per path. */
	buf_reset(&t.lookups);
	expect(&t, "diamond", "s1@host.example | s2@host.example", 0);
	CHECK_STR(t.lookups.data, "diamond x shared s1 s2 y ");
	table_free(&t);
}

static void
test_expand_deep(void)
{
	struct table t = {0};
	struct buf b = BUF_INIT;
	int i;

	/* n0 -> n1 -> ... -> n25 -> end@example.org */
	for (i = 0; i < 25; i++)
		buf_printf(&b, "n%d: n%d\n", i, i + 1);
	buf_puts(&b, "n25: end@example.org\n");
	/* m0 -> ... -> m19 -> end@example.org: 20 aliases, just fits. */
	for (i = 0; i < 19; i++)
		buf_printf(&b, "m%d: m%d\n", i, i + 1);
	buf_puts(&b, "m19: end@example.org\n");
	put("deepexp", b.data);
	buf_free(&b);
	CHECK_INT(parse("deepexp", &t, NULL), 0);

	expect(&t, "m0", "end@example.org", 0);
	expect(&t, "n6", "end@example.org", 0);
	expect(&t, "n0", "n20@host.example", 1);
	CHECK_STR(warnings(&t), "alias n20: aliases nested deeper than 20, "
	    "delivering to the address itself\n");
	table_free(&t);
}

/* Tables not written by this parser may hold anything. */
static int
raw_lookup(void *ctx, const char *name, char ***targets, size_t *n)
{
	(void)ctx;
	if (strcmp(name, "raw") != 0)
		return 1;
	*targets = xcalloc(4, sizeof(char *));
	(*targets)[0] = xstrdup("bad address\twith\ncontrols");
	(*targets)[1] = xstrdup(":include:/etc/leftover");
	(*targets)[2] = xstrdup("fine@x.example");
	*n = 3;
	return 0;
}

static void
test_expand_raw(void)
{
	struct addr_list in = ADDR_LIST_INIT, out = ADDR_LIST_INIT;
	struct table t = {0};

	addr_list_add_unique(&in, "raw");
	addr_list_add_unique(&in, "plain");
	aliases_expand(&in, "host.example", raw_lookup, warned, &t, &out);
	CHECK_INT(out.n, 2);
	if (out.n == 2) {
		CHECK_STR(out.addrs[0], "fine@x.example");
		CHECK_STR(out.addrs[1], "plain@host.example");
	}
	CHECK_INT(t.nwarn, 2);
	CHECK_STR(warnings(&t), "alias raw: a target that is not an address, "
	    "skipped\n"
	    "alias raw: :include:/etc/leftover target not supported by "
	    "mxlane (no local delivery), skipped\n");
	addr_list_free(&out);

	/* No lookup and no warn callback: everything qualified as is. */
	aliases_expand(&in, "host.example", NULL, NULL, NULL, &out);
	CHECK_INT(out.n, 2);
	if (out.n == 2)
		CHECK_STR(out.addrs[0], "raw@host.example");
	addr_list_free(&out);
	addr_list_free(&in);
	table_free(&t);
}

static int
remove_one(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
cleanup(void)
{
	CHECK_INT(nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
	CHECK(access(dir, F_OK) == -1);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_parse_basic();
	test_parse_stats_small();
	test_parse_duplicates();
	test_parse_include();
	test_parse_include_depth();
	test_parse_errors();
	test_include_problems();
	test_include_as_owner();
	test_expand();
	test_expand_deep();
	test_expand_raw();
	cleanup();
	return unit_done("aliases");
}
