/*
 * NAME
 *	strmap - a string-keyed table of numbers
 * SYNOPSIS
 *	#include "lib/strmap.h"
 * DESCRIPTION
 *	An open-addressing hash table (FNV-1a, linear probing) from
 *	strings, copied in, to size_t values: what the queue runner uses
 *	to find a destination by name among thousands. It grows, never
 *	shrinks, and forgets nothing until strmap_free(). A zeroed struct
 *	is an empty table.
 */
#ifndef MXLANE_STRMAP_H
#define MXLANE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap {
	char **keys;
	size_t *values;
	size_t cap, n;
};

/* true, and *value set, when key is in the table. */
bool strmap_get(const struct strmap *m, const char *key, size_t *value);
/* Sets key to value, adding key if it is new. */
void strmap_put(struct strmap *m, const char *key, size_t value);
void strmap_free(struct strmap *m);

#endif
