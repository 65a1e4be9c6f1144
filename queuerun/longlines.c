/*
 * NAME
 *	longlines - the stored content as it goes out: no line over 998
 * DESCRIPTION
 *	See longlines.h.
 */
#include "queuerun/longlines.h"

#include <string.h>

/* Where to break a line that has grown past the limit (longlines.h). */
static size_t
line_break(const struct longlines *ll, bool *add_space)
{
	const unsigned char *l = (const unsigned char *)ll->line.data;
	size_t cut = LONGLINES_LIMIT;

	*add_space = false;
	if (ll->in_header) {
		size_t min = 1;
		if (!ll->folded) {
			const char *colon = memchr(l, ':', ll->line.len);
			min = colon ? (size_t)(colon - (const char *)l) + 1 :
			    LONGLINES_LIMIT;
		}
		for (size_t i = LONGLINES_LIMIT; i > min; i--)
			if (l[i - 1] == ' ' || l[i - 1] == '\t')
				return i - 1;
		*add_space = true;
		return cut;
	}
	while (cut > LONGLINES_LIMIT - 3 && (l[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}

void
longlines_reset(struct longlines *ll)
{
	ll->folded = false;
	ll->in_header = true;
	ll->line_empty = true;
	buf_reset(&ll->line);
}

void
longlines_feed(struct longlines *ll, const char *data, size_t len,
    struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = data[i];

		if (c == '\n' || c == '\r') {
			if (c == '\n' && ll->in_header && ll->line_empty)
				ll->in_header = false;	/* empty line: body */
			buf_append(out, ll->line.data, ll->line.len);
			buf_reset(&ll->line);
			buf_putc(out, c);
			if (c == '\n') {
				ll->line_empty = true;
				ll->folded = false;
			}
			continue;
		}
		buf_putc(&ll->line, c);
		ll->line_empty = false;
		if (ll->line.len <= LONGLINES_LIMIT)
			continue;
		bool add_space;
		size_t cut = line_break(ll, &add_space);
		buf_append(out, ll->line.data, cut);
		buf_append(out, add_space ? "\r\n " : "\r\n",
		    add_space ? 3 : 2);
		size_t rest = ll->line.len - cut;
		memmove(ll->line.data, ll->line.data + cut, rest);
		ll->line.len = rest;
		ll->folded = ll->in_header;
	}
}

const struct buf *
longlines_rest(const struct longlines *ll)
{
	return &ll->line;
}

void
longlines_free(struct longlines *ll)
{
	buf_free(&ll->line);
}
