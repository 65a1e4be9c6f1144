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
	char name[32], text[64];
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
	put("deeper", "deeper: :include:inc0\n");
	parse_err("deeper", "inc9:1: :include: nested deeper than 10 levels");

	put("loop1", ":include:loop2\n");
	put("loop2", "x@y, :include:loop1\n");
	put("loop", "loop: :include:loop1\n");
	CHECK_INT(parse("loop", &t, NULL), -1);
	CHECK(strstr(err, "nested deeper than 10 levels") != NULL);
	table_free(&t);
}

static void
test_parse_errors(void)
{
	struct table t = {0};
	char *p, *want;
	FILE *fp;

	put("e_missing_inc", "a: b\nlist: x@y,\n  :include:/nonexistent/mxl\n");
	parse_err("e_missing_inc", "e_missing_inc:2: cannot open include file "
	    "/nonexistent/mxl: No such file or directory");
	put("e_missing_rel", "list: :include:nothere\n");
	p = xasprintf("e_missing_rel:1: cannot open include file %s/nothere: "
	    "No such file or directory", dir);
	parse_err("e_missing_rel", p);
	free(p);

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
	parse_err("e_space", "e_space:1: bad alias name \"two words\": space "
	    "outside quotes");
	put("e_domain", "user@example.com: x\n");
	parse_err("e_domain", "e_domain:1: alias name \"user@example.com\" "
	    "has a domain; aliases are local parts");
	put("e_angle", "<root>: x\n");
	parse_err("e_angle", "e_angle:1: bad alias name \"<root>\"");
	put("e_target", "a: good@x, bad target@x\n");
	parse_err("e_target", "e_target:1: bad target \"bad target@x\": "
	    "unexpected \"target\" in \"bad target@x\"");
	put("e_target2", "a: x@y..z\n");
	parse_err("e_target2", "e_target2:1: bad target \"x@y..z\": invalid "
	    "domain \"y..z\" in \"x@y..z\"");
	/*
	 * A good address, then a bad one in the same target: the list
	 * parser had allocated its array before it failed, and the target
	 * must still free it (found by tests/fuzz/fuzz_aliases; the leak
	 * shows under make check-sanitize).
	 */
	put("e_target3", "a: good@x; bad target@x\n");
	parse_err("e_target3", "e_target3:1: bad target \"good@x; bad "
	    "target@x\": unexpected \"target\" in \"bad target@x\"");
	put("e_group", "a: empty:;\n");
	parse_err("e_group", "e_group:1: target \"empty:;\" has no address");
	put("e_bs", "a: \\bad user\n");
	parse_err("e_bs", "e_bs:1: bad target \"\\bad user\": space outside "
	    "quotes");
	put("e_incempty", "a: :include:\n");
	parse_err("e_incempty", "e_incempty:1: empty :include: path");
	put("e_inc_bad", "bad target line\n");
	put("e_inc", "a: :include:e_inc_bad\n");
	want = xasprintf("e_inc_bad:1: bad target \"bad target line\": "
	    "unexpected \"target\" in \"bad target line\"");
	parse_err("e_inc", want);
	free(want);
	put("e_quote", "a: \"unterminated@x\n");
	parse_err("e_quote", "e_quote:1: bad target \"\"unterminated@x\": "
	    "unterminated quoted string");

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
	CHECK_STR(warnings(&t), "alias raw: bad target \"bad address?with?"
	    "controls\", skipped\n"
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
	test_expand();
	test_expand_deep();
	test_expand_raw();
	cleanup();
	return unit_done("aliases");
}
