/*
 * NAME
 *	longlines - the stored content as it goes out: no line over 998
 * DESCRIPTION
 *	RFC 5321 4.5.3.1.6 allows at most 998 octets in a line. A longer
 *	header line is folded before its last blank within the limit (RFC
 *	5322 2.2.3: unfolding gives back the very same field), not before
 *	its colon; one without a blank there gets CRLF SPACE at the limit,
 *	the only way left to keep it. A longer body line is broken at the
 *	limit, or up to three octets before it so that a UTF-8 sequence
 *	stays whole. Every other octet passes as stored.
 *
 *	This is the one place that decides it: delivery (deliver.c) sends
 *	what it makes, and DKIM (dkim.c) signs what it makes, so that a
 *	signature covers exactly the octets that go out.
 */
#ifndef MXLANE_LONGLINES_H
#define MXLANE_LONGLINES_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/util.h"

#define LONGLINES_LIMIT 998

struct longlines {
	struct buf line;	/* the current line's octets not yet out */
	bool folded;		/* line is a continuation we started */
	bool in_header;
	bool line_empty;	/* current line has no octets yet */
};

/* At the start of a message (also frees nothing: see longlines_free()). */
void longlines_reset(struct longlines *ll);
/* Appends to out what can go out of data, holding the current line. */
void longlines_feed(struct longlines *ll, const char *data, size_t len,
    struct buf *out);
/* The last line, if the content does not end with a line end. */
const struct buf *longlines_rest(const struct longlines *ll);
void longlines_free(struct longlines *ll);

#endif
