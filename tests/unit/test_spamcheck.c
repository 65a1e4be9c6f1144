/*
 * test_spamcheck - spamd's replies as spamcheck.c reads them: the score
 * and the rule names, and every reply that is not a verdict refused.
 */
#include <stdio.h>
#include <string.h>

#include "queuerun/spamcheck.h"
#include "tests/unit/unit.h"

static int
parse(const char *reply, struct spam_verdict *v, char *err, size_t len)
{
	return spamcheck_parse_reply(reply, strlen(reply), v, err, len);
}

int
main(void)
{
	struct spam_verdict v;
	char err[256];

	CHECK_INT(parse("SPAMD/1.1 0 EX_OK\r\nContent-length: 35\r\n"
	    "Spam: True ; 1004.2 / 5.0\r\n\r\nGTUBE,MISSING_DATE,NO_RECEIVED",
	    &v, err, sizeof(err)), 0);
	CHECK(v.score > 1004.1 && v.score < 1004.3);
	CHECK_STR(v.rules, "GTUBE,MISSING_DATE,NO_RECEIVED");
	CHECK_INT(parse("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -1.5 / 5.0\r\n"
	    "Content-length: 0\r\n\r\n", &v, err, sizeof(err)), 0);
	CHECK(v.score < -1.4 && v.score > -1.6);
	CHECK_STR(v.rules, "");
	/* Header names in any case; control bytes kept out of the rules. */
	CHECK_INT(parse("SPAMD/1.5 0 EX_OK\r\nspam: Yes ; 7 / 5\r\n\r\n"
	    "A,\x1b[31mB\r\n", &v, err, sizeof(err)), 0);
	CHECK_STR(v.rules, "A,[31mB");
	CHECK(parse("SPAMD/1.1 76 Bad header line: x\r\n\r\n", &v, err,
	    sizeof(err)) != 0);
	CHECK(strstr(err, "76") != NULL);
	CHECK(parse("HTTP/1.1 200 OK\r\n\r\n", &v, err, sizeof(err)) != 0);
	CHECK(parse("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", &v, err,
	    sizeof(err)) != 0);
	CHECK(strstr(err, "no score") != NULL);
	CHECK(parse("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9 / 5\r\n", &v, err,
	    sizeof(err)) != 0);
	CHECK(parse("", &v, err, sizeof(err)) != 0);
	CHECK(parse("SPAMD/1.1 0 EX_OK\r\nSpam: True ; x / 5\r\n\r\n", &v, err,
	    sizeof(err)) != 0);
	/* A long list is cut, never overflows. */
	char big[4096] = "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9 / 5\r\n\r\n";
	size_t at = strlen(big);
	memset(big + at, 'R', sizeof(big) - at - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(parse(big, &v, err, sizeof(err)), 0);
	CHECK_INT(strlen(v.rules), sizeof(v.rules) - 1);
	return unit_done("spamcheck");
}
