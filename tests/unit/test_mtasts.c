/*
 * test_mtasts - MTA-STS's grammar (RFC 8461): the policy text (section
 * 3.2), the _mta-sts TXT record (section 3.1) and the MX patterns
 * (section 4.1). Fetching, keeping and applying a policy are tested
 * end to end by tests/integration/delivery_mta_sts.sh.
 */
#include <stdio.h>
#include <string.h>

#include "queuerun/mtasts.h"
#include "lib/log.h"
#include "tests/unit/unit.h"

static int
parse(const char *text, struct mtasts_policy *p, char *err, size_t errlen)
{
	return mtasts_parse(text, strlen(text), p, err, errlen);
}

static void
test_parse(void)
{
	struct mtasts_policy p;
	char err[256];

	CHECK_INT(parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com"
	    "\r\nmx: *.Example.NET.\r\nmax_age: 604800\r\n", &p, err,
	    sizeof(err)), 0);
	CHECK_INT(p.mode, MTASTS_ENFORCE);
	CHECK_INT(p.max_age, 604800);
	CHECK_INT((int)p.nmx, 2);
	CHECK_STR(p.mx[0], "mail.example.com");
	CHECK_STR(p.mx[1], "*.example.net");	/* lower case, no dot */
	mtasts_policy_free(&p);

	/* LF alone, blanks around values, unknown fields ignored. */
	CHECK_INT(parse("version:STSv1\nmode:   testing  \nfoo: bar\nmx: a.b\n"
	    "max_age: 0", &p, err, sizeof(err)), 0);
	CHECK_INT(p.mode, MTASTS_TESTING);
	CHECK_INT(p.max_age, 0);
	mtasts_policy_free(&p);

	/* mode none needs no mx. */
	CHECK_INT(parse("version: STSv1\nmode: none\nmax_age: 86400\n", &p,
	    err, sizeof(err)), 0);
	CHECK_INT(p.mode, MTASTS_NONE);
	mtasts_policy_free(&p);

	/* The first of a repeated field counts. */
	CHECK_INT(parse("version: STSv1\nmode: testing\nmode: enforce\nmx: a.b"
	    "\nmax_age: 5\n", &p, err, sizeof(err)), 0);
	CHECK_INT(p.mode, MTASTS_TESTING);
	mtasts_policy_free(&p);

	const char *bad[] = {
		"mode: enforce\nmx: a.b\nmax_age: 1\n",		/* no version */
		"version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		"version: STSv1\nmx: a.b\nmax_age: 1\n",	/* no mode */
		"version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.b\n",	/* no max_age */
		"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
		"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n",
		"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n",
		"version: STSv1\nmode: enforce\nmax_age: 1\n",	/* no mx */
		"version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n",
		"<html>not a policy</html>",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_INT(parse(bad[i], &p, err, sizeof(err)), -1);
		CHECK(err[0] != '\0');
	}
	/* A NUL inside is not the end of the text. */
	static const char nul[] = "version: STSv1\nmode: enforce\nmx: a.b\0x\n"
	    "max_age: 1\n";
	CHECK_INT(mtasts_parse(nul, sizeof(nul) - 1, &p, err, sizeof(err)),
	    -1);
}

static void
test_match(void)
{
	struct mtasts_policy p;
	char err[256];

	CHECK_INT(parse("version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	    "mx: *.example.net\nmax_age: 1\n", &p, err, sizeof(err)), 0);
	CHECK(mtasts_mx_match(&p, "mail.example.com"));
	CHECK(mtasts_mx_match(&p, "MAIL.Example.com."));
	CHECK(!mtasts_mx_match(&p, "mail2.example.com"));
	CHECK(!mtasts_mx_match(&p, "example.com"));
	CHECK(mtasts_mx_match(&p, "mx1.example.net"));
	CHECK(mtasts_mx_match(&p, "MX1.EXAMPLE.NET."));
	CHECK(!mtasts_mx_match(&p, "example.net"));	/* one label more */
	CHECK(!mtasts_mx_match(&p, "a.b.example.net"));	/* not two */
	CHECK(!mtasts_mx_match(&p, ".example.net"));
	CHECK(!mtasts_mx_match(&p, "mx1.example.net.evil"));
	CHECK(!mtasts_mx_match(&p, ""));
	mtasts_policy_free(&p);
}

static void
test_txt(void)
{
	char id[40];
	char *one[] = {"v=STSv1; id=20160831085700Z;"};
	char *bare[] = {"v=STSv1;id=abc"};
	char *others[] = {"v=spf1 -all", "v=STSv1; id=x1", "hello"};
	char *two[] = {"v=STSv1; id=a", "v=STSv1; id=b"};
	char *noid[] = {"v=STSv1; ext=1"};
	char *badid[] = {"v=STSv1; id=a-b"};
	char *longid[] = {"v=STSv1; id=123456789012345678901234567890123"};
	char *notv[] = {"v=STSv10; id=a", "x v=STSv1; id=a"};
	char *tail[] = {"v=STSv1; xid=1; id=ok ; ext=2"};

	CHECK_INT(mtasts_txt_id(one, 1, id, sizeof(id)), 1);
	CHECK_STR(id, "20160831085700Z");
	CHECK_INT(mtasts_txt_id(bare, 1, id, sizeof(id)), 1);
	CHECK_STR(id, "abc");
	CHECK_INT(mtasts_txt_id(others, 3, id, sizeof(id)), 1);
	CHECK_STR(id, "x1");
	CHECK_INT(mtasts_txt_id(tail, 1, id, sizeof(id)), 1);
	CHECK_STR(id, "ok");
	CHECK_INT(mtasts_txt_id(two, 2, id, sizeof(id)), -1);
	CHECK_INT(mtasts_txt_id(noid, 1, id, sizeof(id)), -1);
	CHECK_INT(mtasts_txt_id(badid, 1, id, sizeof(id)), -1);
	CHECK_INT(mtasts_txt_id(longid, 1, id, sizeof(id)), -1);
	CHECK_INT(mtasts_txt_id(notv, 2, id, sizeof(id)), 0);
	CHECK_INT(mtasts_txt_id(NULL, 0, id, sizeof(id)), 0);
}

int
main(void)
{
	log_init("test_mtasts");
	log_set_file("/dev/null");
	test_parse();
	test_match();
	test_txt();
	return unit_done("mtasts");
}
