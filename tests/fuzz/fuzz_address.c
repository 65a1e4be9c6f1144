/*
 * NAME
 *	fuzz_address - libFuzzer harness for the address parsers
 * SYNOPSIS
 *	build-fuzz/tests/fuzz/fuzz_address [libFuzzer options] [corpus ...]
 * DESCRIPTION
 *	Each input is used three ways, because the same bytes reach
 *	mxlane three ways: as a header field body (To:, Cc:, Bcc: under
 *	"sendmail -t") for address_list_parse(), all bytes, NULs included;
 *	and, up to its first NUL, as a command-line or MAIL FROM/RCPT TO
 *	address for address_envelope_parse(), with and without the null
 *	sender allowed, and for the strict address_valid().
 *
 *	Besides memory errors and undefined behaviour, it checks what
 *	address.h promises, since queue entries and header fields are
 *	built from these results:
 *	-	every address returned is canonical: address_valid() holds,
 *		and parsing it again, as an envelope address or as a
 *		one-element list, gives it back unchanged;
 *	-	address_list_parse() leaves the list as it was on error and
 *		never appends an address equal to one already there;
 *	-	what address_valid() accepts, address_envelope_parse()
 *		accepts too (the strict check is never looser);
 *	-	address_qualify() only adds "@origin" to unqualified
 *		addresses, and the result is still canonical.
 * SEE ALSO
 *	sendmail/address.h, tests/fuzz/README
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail/address.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

#define ORIGIN	"example.org"
#define KEEP	"keep@example.org"

static void
check_canonical(const char *addr)
{
	struct addr_list again = ADDR_LIST_INIT;
	char err[256], *re = NULL, *q;
	const char *domain;

	FUZZ_ASSERT(address_valid(addr), "canonical address is valid");
	FUZZ_ASSERT(address_envelope_parse(addr, false, &re, err,
	    sizeof(err)) == 0, "canonical address parses as envelope");
	FUZZ_ASSERT(strcmp(re, addr) == 0, "envelope re-parse is identity");
	free(re);
	FUZZ_ASSERT(address_list_parse(addr, strlen(addr), &again, err,
	    sizeof(err)) == 0, "canonical address parses as a list");
	FUZZ_ASSERT(again.n == 1 && strcmp(again.addrs[0], addr) == 0,
	    "list re-parse is identity");
	addr_list_free(&again);
	FUZZ_ASSERT(address_equal(addr, addr), "address equals itself");

	domain = address_domain(addr);
	q = address_qualify(addr, ORIGIN);
	if (domain != NULL)
		FUZZ_ASSERT(strcmp(q, addr) == 0, "qualified left alone");
	else {
		FUZZ_ASSERT(strlen(q) == strlen(addr) + sizeof(ORIGIN) &&
		    strncmp(q, addr, strlen(addr)) == 0,
		    "unqualified gets @origin");
		/* 320 bytes is the limit; "@example.org" may pass it. */
		if (strlen(q) <= 320)
			FUZZ_ASSERT(address_valid(q), "qualified is valid");
	}
	free(q);
}

static void
fuzz_list(const char *text, size_t len)
{
	struct addr_list out = ADDR_LIST_INIT;
	char err[256];
	size_t i, k;

	/* One address already there, as when Cc: follows To:. */
	addr_list_add_unique(&out, KEEP);
	err[0] = '\0';
	if (address_list_parse(text, len, &out, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(out.n == 1 && strcmp(out.addrs[0], KEEP) == 0,
		    "list unchanged on error");
		FUZZ_ASSERT(err[0] != '\0', "error has a reason");
		FUZZ_ASSERT(strpbrk(err, "\r\n") == NULL,
		    "error is one line");
	}
	for (i = 0; i < out.n; i++) {
		check_canonical(out.addrs[i]);
		for (k = i + 1; k < out.n; k++)
			FUZZ_ASSERT(!address_equal(out.addrs[i],
			    out.addrs[k]), "no duplicates in a list");
	}
	addr_list_free(&out);
}

static void
fuzz_envelope(const char *text, bool allow_null)
{
	char err[256], *out = NULL;

	err[0] = '\0';
	if (address_envelope_parse(text, allow_null, &out, err,
	    sizeof(err)) == -1) {
		FUZZ_ASSERT(err[0] != '\0', "error has a reason");
		FUZZ_ASSERT(strpbrk(err, "\r\n") == NULL,
		    "error is one line");
		return;
	}
	if (*out == '\0')
		FUZZ_ASSERT(allow_null, "null sender only when allowed");
	else
		check_canonical(out);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = xstrndup((const char *)data, size);
	char *s = NULL;

	fuzz_list((const char *)data, size);
	fuzz_envelope(copy, false);
	fuzz_envelope(copy, true);
	if (address_valid(copy)) {
		FUZZ_ASSERT(address_envelope_parse(copy, false, &s, NULL,
		    0) == 0, "valid address parses as envelope");
		free(s);
	}
	free(copy);
	return 0;
}
