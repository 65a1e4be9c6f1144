/*
 * NAME
 *	aliases - /etc/aliases parsing and alias expansion at submission
 * DESCRIPTION
 *	aliases_parse_file() reads a file in the sendmail/Postfix aliases(5)
 *	format: "name: target, target, ..." with continuation lines (lines
 *	that start with a blank), '#' comments, quoted targets, and
 *	":include:/path" targets, which are read (one or more targets per
 *	line, comments allowed) and spliced in at compile time. Include
 *	files are read as their owner when run as root, and refused when
 *	reached through a symbolic link, not regular, hard-linked or in a
 *	directory others can write (see safefile.h); any trouble with one
 *	is a warning and that include adds nothing. Names are
 *	folded to lower case. Each alias is handed to fn once; a name that
 *	appears twice is reported as a warning and the later entry wins.
 *	Targets are stored as canonical addresses (see address.h), or as
 *	written for "|command", "/file" and "\user" (no further aliasing).
 *
 *	aliases_expand() replaces local recipients by their aliases,
 *	recursively, with loop detection. A recipient is local when it has no
 *	domain or its domain is myorigin (case-insensitive). "|command" and
 *	"/file" targets are reported through warn() with the alias name and
 *	skipped: mxlane does no local delivery and never runs them. An alias
 *	that (after recursion) names itself delivers to that address
 *	("root: root, admin@x" keeps root). Results are fully qualified with
 *	myorigin and de-duplicated. lookup is called with the lower-cased
 *	local part; warn and lookup may be NULL.
 * DIAGNOSTICS
 *	aliases_parse_file() returns 0, or -1 with "file:line: reason" in err
 *	for an unreadable aliases file or a line of it it cannot parse. No
 *	message quotes the line.
 */
#ifndef MXLANE_ALIASES_H
#define MXLANE_ALIASES_H

#include <stddef.h>

#include "sendmail/address.h"

struct aliases_stats {
	size_t count;		/* aliases compiled */
	size_t longest;		/* longest "name: targets" entry, bytes */
	size_t total;		/* sum of entry sizes, bytes */
};

typedef void (*aliases_entry_fn)(void *ctx, const char *name,
    char **targets, size_t ntargets);
typedef void (*aliases_warn_fn)(void *ctx, const char *message);

int aliases_parse_file(const char *path, aliases_entry_fn fn,
    aliases_warn_fn warn, void *ctx, struct aliases_stats *stats,
    char *err, size_t errlen);

/*
 * lookup(name) returns 0 and fills *targets and *n (caller frees each and
 * the array) when name is an alias, non-zero when it is not.
 */
typedef int (*aliases_lookup_fn)(void *ctx, const char *name,
    char ***targets, size_t *n);

/* in: recipients (qualified or not); out: expanded, qualified, unique. */
void aliases_expand(const struct addr_list *in, const char *myorigin,
    aliases_lookup_fn lookup, aliases_warn_fn warn, void *ctx,
    struct addr_list *out);

#endif
