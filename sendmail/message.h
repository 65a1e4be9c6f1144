/*
 * NAME
 *	message - reading a submitted message and handling its headers
 * DESCRIPTION
 *	message_read() takes the whole input (stdin for "sendmail", the
 *	DATA of "sendmail -bs") and splits it into a header list and a body,
 *	with every line end (LF, CRLF, CR CR LF) turned into CRLF so that
 *	what is stored is what goes on the wire; any other CR is a line
 *	break in the body and a space in a header. Bytes are otherwise kept
 *	as they are (8-bit, UTF-8 and control characters pass through, as
 *	with Postfix). Nothing Postfix takes from the same client is refused
 *	for its bytes alone.
 *
 *	A header is a field name, optional white space (the obsolete
 *	"Subject : text" form), and a colon; the name excludes the white
 *	space, the raw field keeps it.
 *
 *	Input that is not a message is refused with EX_DATAERR rather than
 *	queued half-understood: a NUL byte anywhere, a header section that
 *	runs into a line that is not a header without the empty line that
 *	ends it. Input that starts with a line that is not a header at all
 *	("echo hi | sendmail root") is all body, as with Postfix, and so is
 *	input that starts with an obsolete-form header and then runs into
 *	text; a leading mbox "From " line is dropped, as Postfix does.
 */
#ifndef MXLANE_MESSAGE_H
#define MXLANE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/util.h"

struct header {
	char *name;		/* field name as written */
	char *raw;		/* whole field, folding kept, CRLF line ends */
	size_t raw_len;
	bool deleted;
};

struct message {
	struct header *headers;
	size_t nheaders;
	size_t cap;
	struct buf body;	/* CRLF line ends */
	size_t input_size;	/* bytes read, for message_size_limit */
};

/*
 * Reads fd to EOF, or to a line holding a single '.' when dot_ends.
 * Returns 0, EX_DATAERR (bad input or over limit; err says why) or
 * EX_TEMPFAIL (read error). limit 0 = none.
 */
int message_read(int fd, bool dot_ends, long long limit, struct message *m,
    char *err, size_t errlen);
/* Same, on input already in memory (the DATA of an SMTP session). */
int message_parse(const char *data, size_t len, long long limit,
    struct message *m, char *err, size_t errlen);

/* Next live header named name (case-insensitive) at or after *pos. */
struct header *message_find(struct message *m, const char *name,
    size_t *pos);
bool message_has(struct message *m, const char *name);
/* The field body, unfolded (CRLF removed), without the "Name:". */
char *header_value(const struct header *h);
/* Removes every header named name; returns how many. */
size_t message_delete(struct message *m, const char *name);
void message_free(struct message *m);

#endif
