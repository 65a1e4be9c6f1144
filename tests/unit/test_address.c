/*
 * NAME
 *	test_address - unit tests for sendmail/address.c
 * DESCRIPTION
 *	Header address-lists as real clients write them, the envelope forms
 *	of the command line and SMTP, and every rejection the header
 *	promises. A parsed list is compared joined with " | " so one check
 *	shows everything that came out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail/address.h"
#include "lib/util.h"
#include "tests/unit/unit.h"

static char err[256];

/* Parses text and returns the addresses joined by " | ", or "ERR: why". */
static char *
list(const char *text)
{
	struct addr_list l = ADDR_LIST_INIT;
	struct buf b = BUF_INIT;
	size_t i;

	err[0] = '\0';
	if (address_list_parse(text, strlen(text), &l, err,
	    sizeof(err)) == -1) {
		CHECK_INT(l.n, 0);
		addr_list_free(&l);
		return xasprintf("ERR: %s", err);
	}
	for (i = 0; i < l.n; i++)
		buf_printf(&b, "%s%s", i ? " | " : "", l.addrs[i]);
	addr_list_free(&l);
	return buf_steal(&b);
}

static void
list_is(const char *text, const char *want, int line)
{
	char *got = list(text);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "  (from line %d, input \"%s\")\n", line, text);
	CHECK_STR(got, want);
	free(got);
}

/* The parse must fail and the message must contain want. */
static void
list_err(const char *text, const char *want, int line)
{
	char *got = list(text);
	bool ok = strncmp(got, "ERR: ", 5) == 0 && strstr(got, want) != NULL;

	if (!ok)
		fprintf(stderr, "  line %d: \"%s\" gave \"%s\", wanted error "
		    "with \"%s\"\n", line, text, got, want);
	CHECK(ok);
	CHECK(strchr(got, '\n') == NULL && strchr(got, '\r') == NULL);
	free(got);
}

#define LIST(t, w)	list_is((t), (w), __LINE__)
#define LIST_ERR(t, w)	list_err((t), (w), __LINE__)

static void
test_list_basic(void)
{
	LIST("john@example.com", "john@example.com");
	LIST("  john@example.com  ", "john@example.com");
	LIST("John Doe <john@example.com>", "john@example.com");
	LIST("<john@example.com>", "john@example.com");
	LIST("John <john@x>,,jane@y", "john@x | jane@y");
	LIST("a@x, b@y , c@z", "a@x | b@y | c@z");
	LIST("a@x,b@y,", "a@x | b@y");
	LIST(",,,", "");
	LIST("", "");
	LIST("   \r\n ", "");
	LIST("root", "root");
	LIST("root, admin", "root | admin");
	LIST("Root <root>", "root");
	LIST("Jörg <jörg@bücher.example>", "jörg@bücher.example");
	LIST("=?UTF-8?B?SsO2cmc=?= <j@x.example>", "j@x.example");
	LIST("John Q. Public <jqp@x>", "jqp@x");
	LIST("john@x <john@x>", "john@x");
	LIST("A <a@EXAMPLE.com>, a@example.COM", "a@EXAMPLE.com");
	LIST("user@example.com.", "user@example.com");
	LIST("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk");
	LIST("o'brien@x", "o'brien@x");
	LIST("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~@x");
}

static void
test_list_quoting(void)
{
	LIST("\"Doe, John\" <john@x>", "john@x");
	LIST("\"Doe, John\" <john@x>, \"Roe; Jane\" <jane@y>",
	    "john@x | jane@y");
	LIST("\"John (not a comment)\" <john@x>", "john@x");
	LIST("\"a <b@c>\" <real@x>", "real@x");
	LIST("\"john\"@x", "john@x");
	LIST("\"john.doe\"@x", "john.doe@x");
	LIST("\"john doe\"@x", "\"john doe\"@x");
	LIST("\"john\\\"doe\"@x", "\"john\\\"doe\"@x");
	LIST("\"a\\\\b\"@x", "\"a\\\\b\"@x");
	LIST("\"a@b\"@x", "\"a@b\"@x");
	LIST("\"a,b\"@x, c@y", "\"a,b\"@x | c@y");
	LIST("john..doe@docomo.ne.jp", "\"john..doe\"@docomo.ne.jp");
	LIST("john.@docomo.ne.jp", "\"john.\"@docomo.ne.jp");
	LIST("\"john\".\"doe\"@x", "john.doe@x");
	LIST("john . doe @ x . example", "john.doe@x.example");
	LIST("Name <\"odd one\"@x>", "\"odd one\"@x");
	LIST("\"\\J\\o\\hn\" <j@x>", "j@x");
}

static void
test_list_comments(void)
{
	LIST("john@x (John Doe)", "john@x");
	LIST("(lead) john@x", "john@x");
	LIST("john(c1)@(c2)x(c3)", "john@x");
	LIST("john@x (John (the man) Doe)", "john@x");
	LIST("john@x (a \"quote\" inside)", "john@x");
	LIST("john@x (unbalanced \" quote)", "john@x");
	LIST("john@x (escaped \\) paren), jane@y", "john@x | jane@y");
	LIST("john@x (comma, inside), jane@y", "john@x | jane@y");
	LIST("John <john@x> (comment), jane@y (J)", "john@x | jane@y");
	LIST("(only a comment)", "");
	LIST("\"(not a comment\" <a@x>", "a@x");
	LIST("(<evil@x>) good@y", "good@y");
}

static void
test_list_groups(void)
{
	LIST("undisclosed-recipients:;", "");
	LIST("undisclosed-recipients: ;", "");
	LIST("team: a@x, b@y;", "a@x | b@y");
	LIST("team: a@x, b@y;, c@z", "a@x | b@y | c@z");
	LIST("c@z, team: a@x, b@y; d@w", "c@z | a@x | b@y | d@w");
	LIST("\"My Team\": A <a@x>, b@y;", "a@x | b@y");
	LIST("team: a@x", "a@x");
	LIST("Team (x): (y) a@x (z);", "a@x");
	LIST("one: a@x;, two: b@y;", "a@x | b@y");
	LIST("a@x; b@y", "a@x | b@y");
	LIST("empty:;, real@x", "real@x");
	LIST_ERR("outer: inner: a@x;;", "nested group");
	LIST_ERR("a@x: b@y;", "bad group name");
	LIST_ERR("<a@x>: b@y;", "bad group name");
}

static void
test_list_folding(void)
{
	LIST("a@x,\r\n b@y", "a@x | b@y");
	LIST("a@x,\n\tb@y", "a@x | b@y");
	LIST("John\r\n Doe\r\n <john@x>", "john@x");
	LIST("\"Doe,\r\n John\" <john@x>", "john@x");
	LIST("a@x (folded\r\n comment), b@y\r\n", "a@x | b@y");
	LIST("team:\r\n a@x,\r\n b@y;\r\n", "a@x | b@y");
	LIST("\"john\r\n doe\"@x", "\"john doe\"@x");
}

static void
test_list_routes_literals(void)
{
	LIST("<@a.example,@b.example:x@y>", "x@y");
	LIST("Name <@relay:x@y>", "x@y");
	LIST("<@a,,@b:x@y>", "x@y");
	LIST("user@[192.0.2.1]", "user@[192.0.2.1]");
	LIST("<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]");
	LIST("user@[ 192.0.2.1 ]", "user@[192.0.2.1]");
	LIST_ERR("user@[300.0.2.1]", "invalid domain literal");
	LIST_ERR("user@[example.com]", "invalid domain literal");
	LIST_ERR("user@[192.0.2.1", "unterminated domain literal");
	LIST_ERR("<@a.example x@y>", "bad source route");
}

static void
test_list_dedup(void)
{
	struct addr_list l = ADDR_LIST_INIT;

	LIST("a@x, a@x, A <a@X>", "a@x");
	LIST("a@x, A@x", "a@x | A@x");
	LIST("\"a\"@x, a@x", "a@x");
	LIST("root, root@x", "root | root@x");

	/* One list collects several fields; earlier entries stay put. */
	CHECK_INT(address_list_parse("a@x, b@y", 8, &l, err, sizeof(err)), 0);
	CHECK_INT(address_list_parse("b@Y, c@z", 8, &l, err, sizeof(err)), 0);
	CHECK_INT(l.n, 3);
	CHECK_STR(l.addrs[2], "c@z");
	/* A failing field leaves the list as it was. */
	CHECK_INT(address_list_parse("d@w, <bad", 9, &l, err, sizeof(err)),
	    -1);
	CHECK_INT(l.n, 3);
	/* len bounds the text: the rest is not read. */
	CHECK_INT(address_list_parse("e@v, junk junk", 3, &l, err,
	    sizeof(err)), 0);
	CHECK_INT(l.n, 4);
	CHECK_STR(l.addrs[3], "e@v");
	/* An empty list stays empty, with nothing allocated to free. */
	struct addr_list e = ADDR_LIST_INIT;
	CHECK_INT(address_list_parse("a@b.example; x y z", 18, &e, err,
	    sizeof(err)), -1);
	CHECK(e.addrs == NULL && e.n == 0 && e.cap == 0 && e.seen.n == 0 &&
	    e.seen.slots == NULL);
	/* After a failing field, d@w is gone from the set as well. */
	CHECK(addr_list_add_unique(&l, "d@w"));
	CHECK(!addr_list_add_unique(&l, "d@W"));
	CHECK(!addr_list_add_unique(&l, "b@y"));
	CHECK_INT(l.n, 5);
	addr_list_free(&l);
	CHECK(l.addrs == NULL && l.n == 0 && l.cap == 0);
}

/*
 * The hash set must say "duplicate" exactly when a linear scan with
 * address_equal() would: same address twice, domain case, local-part
 * case, quoted and bare local parts, with and without a domain, and
 * random awkward strings (not all of them canonical).
 */
static void
test_set_matches_address_equal(void)
{
	static const char *fixed[] = { "a@x", "a@X", "A@x", "\"a\"@x",
	    "\"A\"@X", "a", "A", "\"a\"", "a@", "\"a b\"@x", "\"a b\"@X",
	    "\"a\\b\"@x", "ab@x", "a@xy", "\"\"@x", "@x", "\"a@b\"@x",
	    "a@b@x", "\"a\"@b@x", "\"unterminated@x", "john.doe@Example.ORG",
	    "john.doe@example.org", "\"john.doe\"@EXAMPLE.org" };
	static const char *pieces[] = { "a", "A", "b", "@", ".", "\"", "\\",
	    " ", "x", "X", "\"a\"", "@x", "@X" };
	struct addr_list l = ADDR_LIST_INIT;
	char **all = NULL;
	size_t nall = 0, bad = 0;
	uint32_t seed = 777;

	all = malloc(6000 * sizeof(*all));
	for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
		all[nall++] = strdup(fixed[i]);
	while (nall < 6000) {
		char text[64] = "";
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 16) % 5;
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			strcat(text, pieces[(seed >> 16) % (sizeof(pieces) /
			    sizeof(*pieces))]);
		}
		all[nall++] = strdup(text);
	}
	/* Each string twice, second time in another order. */
	for (size_t round = 0; round < 2; round++)
		for (size_t i = 0; i < nall; i++) {
			const char *a = all[round ? nall - 1 - i : i];
			bool dup = false;
			for (size_t k = 0; k < l.n && !dup; k++)
				dup = address_equal(l.addrs[k], a);
			if (addr_list_add_unique(&l, a) == dup) {
				fprintf(stderr, "  \"%s\": set and scan "
				    "disagree\n", a);
				bad++;
			}
		}
	CHECK_INT(bad, 0);
	CHECK(l.n > 1000 && l.n < nall);	/* the random ones do repeat */
	/* The fixed ones, by address_equal: */
	addr_list_free(&l);
	CHECK(addr_list_add_unique(&l, "a@x"));
	CHECK(!addr_list_add_unique(&l, "a@x"));	/* the same twice */
	CHECK(!addr_list_add_unique(&l, "a@X"));	/* domain: any case */
	CHECK(addr_list_add_unique(&l, "A@x"));	/* local part: exact */
	CHECK(!addr_list_add_unique(&l, "\"a\"@X"));	/* quoted = bare */
	CHECK(addr_list_add_unique(&l, "a"));		/* no domain */
	CHECK(!addr_list_add_unique(&l, "\"a\""));
	CHECK_INT(l.n, 3);
	addr_list_free(&l);
	for (size_t i = 0; i < nall; i++)
		free(all[i]);
	free(all);

	struct addr_set set = ADDR_SET_INIT;
	CHECK(addr_set_add(&set, "u@x") == NULL);
	const char *first = "v@Y";
	CHECK(addr_set_add(&set, first) == NULL);
	CHECK(addr_set_add(&set, "v@y") == first);
	CHECK_INT(set.n, 2);
	addr_set_free(&set);
}

static void
test_list_errors(void)
{
	LIST_ERR("John <john@x", "unbalanced angle brackets");
	LIST_ERR("john@x>", "unbalanced angle brackets");
	LIST_ERR("<<john@x>>", "nested angle brackets");
	LIST_ERR("A <a@x> <b@y>", "more than one angle address");
	LIST_ERR("<a@x> trailing", "unexpected \"trailing\"");
	LIST_ERR("\"unterminated@x", "unterminated quoted string");
	LIST_ERR("a@x (unterminated", "unterminated comment");
	LIST_ERR("a@x (nested (unterminated)", "unterminated comment");
	/* Fails after a quoted string was read: check-sanitize sees leaks. */
	LIST_ERR("\"q\" (unterminated", "unterminated comment");
	LIST_ERR("\"q\" <a@x", "unbalanced angle brackets");
	LIST_ERR("\"q\" a@[1.2.3.4", "unterminated domain literal");
	LIST_ERR("a@x)", "unexpected ')'");
	LIST_ERR("a\\b@x", "unexpected '\\'");
	LIST_ERR("John Doe", "unexpected \"Doe\" in \"John Doe\"");
	LIST_ERR("a b@x", "unexpected \"b\"");
	LIST_ERR("a@b@c", "unexpected \"@\" in \"a@b@c\"");
	LIST_ERR("@x", "empty local part");
	LIST_ERR("<@x>", "bad source route");
	LIST_ERR("\"\"@x", "empty local part");
	LIST_ERR("<>", "empty address");
	LIST_ERR("Name <>", "empty address");
	LIST_ERR("a@", "empty domain");
	LIST_ERR("a@x..y", "invalid domain \"x..y\"");
	LIST_ERR("a@-x.example", "invalid domain");
	LIST_ERR("a@x-.example", "invalid domain");
	LIST_ERR("a@x_y.example", "invalid domain");
	LIST_ERR("a@.example", "invalid domain");
	LIST_ERR("a@\"x\"", "unexpected");
	LIST_ERR("a@x\001y", "control character in address");
	LIST_ERR("\"a\001\"@x", "control character in address");
	LIST_ERR("a@x\x7f", "control character in address");
	LIST_ERR("\xff@x", "invalid UTF-8");
	LIST_ERR("\xc3" "A@x", "invalid UTF-8");
	LIST_ERR("a@x.\xed\xa0\x80", "invalid domain");
	LIST_ERR("good@x, bad@@x", "unexpected");
	LIST_ERR("a@x]", "unexpected ']'");
	/* The message shows the element, on one line, cut when long. */
	LIST_ERR("ok@x, Foo\r\n Bar", "in \"Foo   Bar\"");
	LIST_ERR("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxx yyy", "xxx...\"");
}

static void
test_list_nul(void)
{
	struct addr_list l = ADDR_LIST_INIT;
	const char text[] = "a@x, b\0c@y";

	CHECK_INT(address_list_parse(text, sizeof(text) - 1, &l, err,
	    sizeof(err)), -1);
	CHECK_STR(err, "NUL in address");
	CHECK_INT(l.n, 0);
	CHECK_INT(address_list_parse("\"a\0b\"@x", 8, &l, err, sizeof(err)),
	    -1);
	CHECK_STR(err, "NUL in address");
	addr_list_free(&l);
}

static void
test_list_limits(void)
{
	char big[600];

	memset(big, 'a', 256);
	strcpy(big + 256, "@x");
	LIST(big, big);
	memset(big, 'a', 257);
	strcpy(big + 257, "@x");
	LIST_ERR(big, "local part too long");
	/* 63-byte label fine, 64 not. */
	strcpy(big, "u@");
	memset(big + 2, 'b', 63);
	strcpy(big + 65, ".example");
	LIST(big, big);
	memset(big + 2, 'b', 64);
	strcpy(big + 66, ".example");
	LIST_ERR(big, "invalid domain");
	/* 255 + 1 + 68: each part within its limit, 324 in all. */
	memset(big, 'a', 255);
	big[255] = '@';
	memset(big + 256, 'd', 60);
	strcpy(big + 316, ".example");
	LIST_ERR(big, "address too long");
	/* 251 + 1 + 68 = 320 exactly is fine. */
	memmove(big + 251, big + 255, strlen(big + 255) + 1);
	CHECK_INT(strlen(big), 320);
	LIST(big, big);
}

static int
env(const char *text, bool allow_null, const char *want)
{
	char *out = NULL;
	int rc;

	err[0] = '\0';
	rc = address_envelope_parse(text, allow_null, &out, err, sizeof(err));
	if (rc == 0) {
		if (strcmp(out, want) != 0)
			fprintf(stderr, "  input \"%s\"\n", text);
		CHECK_STR(out, want);
		free(out);
	} else {
		fprintf(stderr, "  input \"%s\": %s\n", text, err);
		CHECK(rc == 0);
	}
	return rc;
}

static void
env_err(const char *text, bool allow_null, const char *want, int line)
{
	char *out = NULL;
	int rc;

	err[0] = '\0';
	rc = address_envelope_parse(text, allow_null, &out, err, sizeof(err));
	if (rc != -1 || strcmp(err, want) != 0)
		fprintf(stderr, "  line %d: input \"%s\" gave %d \"%s\"\n",
		    line, text, rc, rc == 0 ? out : err);
	CHECK_INT(rc, -1);
	CHECK_STR(err, want);
	if (rc == 0)
		free(out);
}

#define ENV_ERR(t, n, w)	env_err((t), (n), (w), __LINE__)

static void
test_envelope_accept(void)
{
	env("user", false, "user");
	env("user@example.com", false, "user@example.com");
	env("<user@example.com>", false, "user@example.com");
	env("Name <user@example.com>", false, "user@example.com");
	env("\"Doe, John\" <user@example.com>", false, "user@example.com");
	env("\"a <b>\" <user@example.com>", false, "user@example.com");
	env("  user@example.com\t", false, "user@example.com");
	env("< user@example.com >", false, "user@example.com");
	env("<user>", false, "user");
	env("<>", true, "");
	env("", true, "");
	env("   ", true, "");
	env("Name <>", true, "");
	env("user@Example.COM", false, "user@Example.COM");
	env("user@example.com.", false, "user@example.com");
	env("\"john doe\"@x.example", false, "\"john doe\"@x.example");
	env("\"john\"@x.example", false, "john@x.example");
	env("\"a@b\"@x.example", false, "\"a@b\"@x.example");
	env("john..doe@docomo.ne.jp", false, "\"john..doe\"@docomo.ne.jp");
	env(".john@x", false, "\".john\"@x");
	env("<@relay.example:user@example.com>", false, "user@example.com");
	env("<@a,@b:user@example.com>", false, "user@example.com");
	env("user@[192.0.2.1]", false, "user@[192.0.2.1]");
	env("user@[IPv6:::1]", false, "user@[IPv6:::1]");
	env("пользователь@пример.рф", false, "пользователь@пример.рф");
	env("user@xn--80ak6aa92e.com", false, "user@xn--80ak6aa92e.com");
	env("a-b@1-2.example", false, "a-b@1-2.example");
	env("user@localhost", false, "user@localhost");
}

static void
test_envelope_reject(void)
{
	ENV_ERR("<>", false, "empty address");
	ENV_ERR("", false, "empty address");
	ENV_ERR("Name <>", false, "empty address");
	ENV_ERR("a@x\r\nRCPT TO:<b@y>", false, "CR or LF in address");
	ENV_ERR("a@x\n", true, "CR or LF in address");
	ENV_ERR("a\r@x", false, "CR or LF in address");
	ENV_ERR("a\001@x", false, "control character in address");
	ENV_ERR("a@x\033", false, "control character in address");
	ENV_ERR("a\x7f@x", false, "control character in address");
	ENV_ERR("\"a\tb\"@x", false, "control character in address");
	ENV_ERR("a b@x", false, "space outside quotes");
	ENV_ERR("a\tb@x", false, "space outside quotes");
	ENV_ERR("a@x y", false, "space outside quotes");
	ENV_ERR("\"a b\" @x", false, "space outside quotes");
	ENV_ERR("Name user@x", false, "space outside quotes");
	ENV_ERR("<a@x", false, "unbalanced angle brackets");
	ENV_ERR("a@x>", false, "unbalanced angle brackets");
	ENV_ERR(">a@x<", false, "unbalanced angle brackets");
	ENV_ERR("<a@x>>", false, "unbalanced angle brackets");
	ENV_ERR("<<a@x>>", false, "nested angle brackets");
	ENV_ERR("<a@x> junk", false, "text after angle brackets");
	ENV_ERR("@x", false, "empty local part");
	ENV_ERR("\"\"@x", false, "empty local part");
	ENV_ERR("<@x>", false, "bad source route");
	ENV_ERR("a@", false, "empty domain");
	ENV_ERR("a@x..y", false, "invalid domain \"x..y\"");
	ENV_ERR("a@.", false, "invalid domain \".\"");
	ENV_ERR("a@x..", false, "invalid domain \"x..\"");
	ENV_ERR("a@-x", false, "invalid domain \"-x\"");
	ENV_ERR("a@x-", false, "invalid domain \"x-\"");
	ENV_ERR("a@x_y", false, "invalid domain \"x_y\"");
	ENV_ERR("a@b@c", false, "invalid domain \"b@c\"");
	ENV_ERR("a@[1.2.3]", false, "invalid domain literal \"[1.2.3]\"");
	ENV_ERR("a@[IPv6:zz::1]", false,
	    "invalid domain literal \"[IPv6:zz::1]\"");
	ENV_ERR("a(b)@x", false, "invalid character '(' in local part");
	ENV_ERR("a,b@x", false, "invalid character ',' in local part");
	ENV_ERR("a\"b\"@x", false, "invalid character '\"' in local part");
	ENV_ERR("\"ab\"c@x", false, "text after quoted local part");
	ENV_ERR("\"abc@x", false, "unterminated quoted string");
	ENV_ERR("\"abc <a@x>", false, "unterminated quoted string");
	ENV_ERR("\xc0\xaf@x", false, "invalid UTF-8 in address");
	ENV_ERR("a@\xe2\x82", false, "invalid domain \"\xe2\x82\"");
}

static void
test_envelope_limits(void)
{
	char big[700];

	memset(big, 'a', 256);
	strcpy(big + 256, "@x.example");
	env(big, false, big);
	memset(big, 'a', 257);
	strcpy(big + 257, "@x.example");
	ENV_ERR(big, false, "local part too long");
	/* A 255-byte domain: four labels of 63 and one of 3. */
	strcpy(big, "u@");
	for (int i = 0; i < 4; i++) {
		memset(big + 2 + i * 64, 'd', 63);
		big[2 + i * 64 + 63] = '.';
	}
	strcpy(big + 2 + 256, "com");
	ENV_ERR(big, false, "domain too long");
	big[2 + 255] = '\0';	/* 255 bytes: d*63 . x4 and "c" gone */
	big[2 + 254] = 'c';
	env(big, false, big);
	/* Each part within its limit, the whole over 320. */
	memset(big, 'a', 200);
	big[200] = '@';
	for (int i = 0; i < 2; i++) {
		memset(big + 201 + i * 64, 'd', 63);
		big[201 + i * 64 + 63] = '.';
	}
	strcpy(big + 201 + 128, "com");
	ENV_ERR(big, false, "address too long");
}

static void
test_valid(void)
{
	CHECK(address_valid("user@example.com"));
	CHECK(address_valid("user"));
	CHECK(address_valid("\"john doe\"@x"));
	CHECK(address_valid("\"john..doe\"@x"));
	CHECK(address_valid("user@[192.0.2.1]"));
	CHECK(address_valid("jörg@bücher.example"));
	CHECK(address_valid("user@example.com."));
	CHECK(!address_valid(""));
	CHECK(!address_valid(NULL));
	CHECK(!address_valid("john..doe@x"));
	CHECK(!address_valid(".john@x"));
	CHECK(!address_valid("john.@x"));
	CHECK(!address_valid("<user@x>"));
	CHECK(!address_valid("a b@x"));
	CHECK(!address_valid("a@x y"));
	CHECK(!address_valid("a@"));
	CHECK(!address_valid("@x"));
	CHECK(!address_valid("a@x..y"));
	CHECK(!address_valid("a@b@c"));
	CHECK(!address_valid("a\r\n@x"));
	CHECK(!address_valid("\"a\"b@x"));
	/* '|' and '/' are atext: aliases must look for them first. */
	CHECK(address_valid("|/bin/sh"));
	CHECK(!address_valid(":include:/x"));
}

static void
test_helpers(void)
{
	char *s;

	CHECK_STR(address_domain("a@x.example"), "x.example");
	CHECK(address_domain("root") == NULL);
	CHECK(address_domain("\"a@b\"") == NULL);
	CHECK_STR(address_domain("\"a@b\"@c"), "c");
	CHECK_STR(address_domain("\"a\\\"@b\"@c"), "c");

	s = address_qualify("root", "host.example");
	CHECK_STR(s, "root@host.example");
	free(s);
	s = address_qualify("a@x", "host.example");
	CHECK_STR(s, "a@x");
	free(s);
	s = address_qualify("\"a@b\"", "host.example");
	CHECK_STR(s, "\"a@b\"@host.example");
	free(s);
	s = address_qualify("root", NULL);
	CHECK_STR(s, "root");
	free(s);

	CHECK(address_equal("a@x.example", "a@X.EXAMPLE"));
	CHECK(!address_equal("A@x", "a@x"));
	CHECK(!address_equal("a@x", "a@y"));
	CHECK(!address_equal("a", "a@x"));
	CHECK(address_equal("a", "a"));
	CHECK(!address_equal("a", "ab"));
	CHECK(address_equal("\"a\"@x", "a@X"));
	CHECK(!address_equal("\"a b\"@x", "\"a c\"@x"));
	CHECK(address_equal("\"a b\"@x", "\"a b\"@x"));
}

static void
test_list_add(void)
{
	struct addr_list l = ADDR_LIST_INIT;
	char name[32];
	int i;

	CHECK(addr_list_add_unique(&l, "a@x"));
	CHECK(!addr_list_add_unique(&l, "a@X"));
	CHECK(addr_list_add_unique(&l, "A@x"));
	CHECK(addr_list_add_unique(&l, "a"));
	CHECK(!addr_list_add_unique(&l, "a"));
	CHECK_INT(l.n, 3);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "u%d@x", i);
		addr_list_add_unique(&l, name);
	}
	CHECK_INT(l.n, 103);
	CHECK_STR(l.addrs[102], "u99@x");
	CHECK(l.cap >= l.n);
	addr_list_free(&l);
	CHECK_INT(l.n, 0);
	addr_list_free(&l);	/* twice is harmless */
}

/*
 * Random concatenations of awkward pieces. Whatever is accepted must come
 * out canonical: valid, and unchanged when parsed again.
 */
static void
test_properties(void)
{
	static const char *pieces[] = { "a", "b", "@", ".", "..", "\"", "\\",
	    "(", ")", "<", ">", ",", ";", ":", "[", "]", " ", "\t", "\r\n ",
	    "192.0.2.1", "IPv6:::1", "-", "\xc3\xa9", "\xff", "\x01",
	    "example.com", "Name ", "g:;", "@r,@s:", "|", "/", "#" };
	char text[256], *o;
	uint32_t seed = 12345;
	size_t i, k, n, len, pick, accepted = 0, bad = 0;
	struct addr_list l;

	for (i = 0; i < 20000; i++) {
		text[0] = '\0';
		len = 0;
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 10;
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			pick = (seed >> 16) % (sizeof(pieces) / sizeof(*pieces));
			if (len + strlen(pieces[pick]) >= sizeof(text))
				break;
			strcpy(text + len, pieces[pick]);
			len += strlen(pieces[pick]);
		}
		memset(&l, 0, sizeof(l));
		if (address_list_parse(text, len, &l, err, sizeof(err)) == 0)
			accepted += l.n;
		else if (strpbrk(err, "\r\n") != NULL)
			bad++;
		for (k = 0; k < l.n; k++) {
			o = NULL;
			if (!address_valid(l.addrs[k]) ||
			    address_envelope_parse(l.addrs[k], false, &o, err,
			    sizeof(err)) == -1 || strcmp(o, l.addrs[k]) != 0) {
				fprintf(stderr, "  \"%s\" -> \"%s\"\n", text,
				    l.addrs[k]);
				bad++;
			}
			free(o);
		}
		addr_list_free(&l);
		o = NULL;
		if (address_envelope_parse(text, true, &o, err,
		    sizeof(err)) == 0 && *o != '\0' && !address_valid(o))
			bad++;
		free(o);
	}
	CHECK_INT(bad, 0);
	CHECK(accepted > 1000);	/* the pieces do make addresses */
}

int
main(void)
{
	test_list_basic();
	test_list_quoting();
	test_list_comments();
	test_list_groups();
	test_list_folding();
	test_list_routes_literals();
	test_list_dedup();
	test_list_errors();
	test_list_nul();
	test_list_limits();
	test_envelope_accept();
	test_envelope_reject();
	test_envelope_limits();
	test_valid();
	test_helpers();
	test_list_add();
	test_set_matches_address_equal();
	test_properties();
	return unit_done("address");
}
