/*
 * NAME
 *	fuzz_aliases - libFuzzer harness for the aliases(5) parser
 * SYNOPSIS
 *	build-fuzz/tests/fuzz/fuzz_aliases [libFuzzer options] [corpus ...]
 * DESCRIPTION
 *	Each input is an aliases file. It is written to "aliases" in a
 *	private directory (see fuzz.h) and compiled with
 *	aliases_parse_file(), the only way in: the harness uses nothing but
 *	aliases.h, so it keeps working while the include handling behind
 *	it changes. Beside it lie include files that seeds name with
 *	relative paths: "list" (addresses and a comment), "nested" (which
 *	includes "list"), "self" (which includes itself: the depth limit)
 *	and "empty" (comments only).
 *
 *	The compiled table is then used the way submission uses it:
 *	aliases_expand() of every alias name, "postmaster" and a qualified
 *	local address, with myorigin "example.org".
 *
 *	Besides memory errors and undefined behaviour it checks what
 *	aliases.h promises:
 *	-	each name is handed over once, lower-cased, canonical, without
 *		a domain;
 *	-	each target is a canonical address, or "\" and one, or a
 *		"|command" or "/file" kept as written;
 *	-	the stats count what was handed over;
 *	-	warnings are one line each, and a failure says why;
 *	-	expansion yields canonical, qualified, distinct addresses.
 *
 *	With FUZZ_SHOW set in the environment, the result of each parse
 *	goes to standard error, to read what a finding did.
 * SEE ALSO
 *	sendmail/aliases.h, tests/fuzz/README
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail/address.h"
#include "sendmail/aliases.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

#define ORIGIN	"example.org"

struct alias {
	char *name;
	char **targets;
	size_t n;
};

struct table {
	struct alias *v;
	size_t n;
	size_t cap;
	size_t bytes;		/* sum of "name: t1, t2" sizes, as stats */
	size_t longest;
};

static const struct {
	const char *name;
	const char *text;
} includes[] = {
	{ "list", "# staff list\nalice@example.org, bob\n\n"
	    "\"Carol C.\" <carol@example.net>\n" },
	{ "nested", ":include:list\ndave@example.org\n" },
	{ "self", ":include:self\n" },
	{ "empty", "# nobody yet\n\n" },
};

static bool
is_one_line(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void
collect(void *ctx, const char *name, char **targets, size_t n)
{
	struct table *t = ctx;
	struct alias *a;
	size_t i, size = strlen(name) + 1;
	const char *p;

	FUZZ_ASSERT(address_valid(name) && address_domain(name) == NULL,
	    "alias name is a canonical local part");
	for (p = name; *p != '\0'; p++)
		FUZZ_ASSERT(*p < 'A' || *p > 'Z', "alias name is lower case");
	for (i = 0; i < t->n; i++)
		FUZZ_ASSERT(strcmp(t->v[i].name, name) != 0,
		    "each alias handed over once");
	for (i = 0; i < n; i++) {
		const char *s = targets[i];

		if (s[0] == '\\')
			FUZZ_ASSERT(address_valid(s + 1),
			    "\\user target is canonical");
		else if (s[0] != '|' && s[0] != '/')
			FUZZ_ASSERT(address_valid(s), "target is canonical");
		size += strlen(s) + (i == 0 ? 1 : 2);
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	a = &t->v[t->n++];
	a->name = xstrdup(name);
	a->n = n;
	a->targets = xcalloc(n + 1, sizeof(*a->targets));
	for (i = 0; i < n; i++)
		a->targets[i] = xstrdup(targets[i]);
	t->bytes += size;
	if (size > t->longest)
		t->longest = size;
}

static void
warn(void *ctx, const char *message)
{
	(void)ctx;
	FUZZ_ASSERT(is_one_line(message), "warning is one line");
}

static int
lookup(void *ctx, const char *name, char ***targets, size_t *n)
{
	struct table *t = ctx;
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].name, name) != 0)
			continue;
		*n = t->v[i].n;
		*targets = xcalloc(*n + 1, sizeof(**targets));
		for (k = 0; k < *n; k++)
			(*targets)[k] = xstrdup(t->v[i].targets[k]);
		return 0;
	}
	return 1;
}

static void
expand(struct table *t)
{
	struct addr_list in = ADDR_LIST_INIT, out = ADDR_LIST_INIT;
	size_t i, k;

	for (i = 0; i < t->n; i++)
		addr_list_add_unique(&in, t->v[i].name);
	addr_list_add_unique(&in, "postmaster");
	addr_list_add_unique(&in, "Root@EXAMPLE.org");
	aliases_expand(&in, ORIGIN, lookup, warn, t, &out);
	for (i = 0; i < out.n; i++) {
		FUZZ_ASSERT(address_valid(out.addrs[i]) &&
		    address_domain(out.addrs[i]) != NULL,
		    "expansion is canonical and qualified");
		for (k = i + 1; k < out.n; k++)
			FUZZ_ASSERT(!address_equal(out.addrs[i],
			    out.addrs[k]), "expansion has no duplicates");
	}
	addr_list_free(&in);
	addr_list_free(&out);
}

static void
table_free(struct table *t)
{
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		for (k = 0; k < t->v[i].n; k++)
			free(t->v[i].targets[k]);
		free(t->v[i].targets);
		free(t->v[i].name);
	}
	free(t->v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct table t = { NULL, 0, 0, 0, 0 };
	struct aliases_stats stats;
	char err[1024], *path;
	size_t i;
	int rc;

	if (!ready) {
		for (i = 0; i < sizeof(includes) / sizeof(includes[0]); i++)
			free(fuzz_file(includes[i].name, includes[i].text,
			    strlen(includes[i].text)));
		ready = true;
	}
	path = fuzz_file("aliases", data, size);
	err[0] = '\0';
	rc = aliases_parse_file(path, collect, warn, &t, &stats, err,
	    sizeof(err));
	if (getenv("FUZZ_SHOW") != NULL)
		fprintf(stderr, "aliases_parse_file: %d %s (%zu aliases)\n",
		    rc, err, t.n);
	if (rc == 0) {
		FUZZ_ASSERT(stats.count == t.n && stats.total == t.bytes &&
		    stats.longest == t.longest, "stats count what was compiled");
		expand(&t);
	} else
		FUZZ_ASSERT(err[0] != '\0', "a failure says why");
	table_free(&t);
	free(path);
	return 0;
}
