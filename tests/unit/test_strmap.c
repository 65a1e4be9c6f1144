/*
 * NAME
 *	test_strmap - unit tests for lib/strmap.c
 * DESCRIPTION
 *	An empty table finds nothing; 20,000 keys (so the table grows many
 *	times) each find their own value, keys that differ in one octet or
 *	are prefixes of one another stay apart, a second put changes the
 *	value without adding a key, and the empty string is a key like any
 *	other.
 */
#include <stdio.h>
#include <string.h>

#include "lib/strmap.h"
#include "tests/unit/unit.h"

int
main(void)
{
	struct strmap m;
	size_t v = 0;
	char key[64];

	memset(&m, 0, sizeof(m));
	CHECK(!strmap_get(&m, "gmail.com", &v));
	for (size_t i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "d%zu.example", i);
		strmap_put(&m, key, i * 3);
	}
	CHECK_INT(m.n, 20000);
	size_t wrong = 0;
	for (size_t i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "d%zu.example", i);
		if (!strmap_get(&m, key, &v) || v != i * 3)
			wrong++;
	}
	CHECK_INT(wrong, 0);
	CHECK(!strmap_get(&m, "d1.exampl", &v));
	CHECK(!strmap_get(&m, "d1.example.", &v));
	strmap_put(&m, "d7.example", 1);
	CHECK(strmap_get(&m, "d7.example", &v));
	CHECK_INT(v, 1);
	CHECK_INT(m.n, 20000);
	CHECK(!strmap_get(&m, "", &v));
	strmap_put(&m, "", 42);
	CHECK(strmap_get(&m, "", &v));
	CHECK_INT(v, 42);
	strmap_free(&m);
	CHECK_INT(m.n, 0);
	CHECK(!strmap_get(&m, "d7.example", &v));
	return unit_done("strmap");
}
