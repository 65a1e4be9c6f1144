/*
 * NAME
 *	strmap - a string-keyed table of numbers
 * DESCRIPTION
 *	See strmap.h.
 */
#include "lib/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static size_t
hash_of(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

bool
strmap_get(const struct strmap *m, const char *key, size_t *value)
{
	if (m->cap == 0)
		return false;
	for (size_t i = hash_of(key) & (m->cap - 1);; i = (i + 1) & (m->cap -
	    1)) {
		if (m->keys[i] == NULL)
			return false;
		if (strcmp(m->keys[i], key) == 0) {
			*value = m->values[i];
			return true;
		}
	}
}

void
strmap_put(struct strmap *m, const char *key, size_t value)
{
	if (2 * (m->n + 1) > m->cap) {
		struct strmap bigger = {NULL, NULL, m->cap ? m->cap * 2 : 64,
		    0};
		bigger.keys = xcalloc(bigger.cap, sizeof(char *));
		bigger.values = xcalloc(bigger.cap, sizeof(size_t));
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				strmap_put(&bigger, m->keys[i], m->values[i]);
				free(m->keys[i]);
			}
		free(m->keys);
		free(m->values);
		*m = bigger;
	}
	size_t i = hash_of(key) & (m->cap - 1);
	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == NULL) {
		m->keys[i] = xstrdup(key);
		m->n++;
	}
	m->values[i] = value;
}

void
strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof(*m));
}
