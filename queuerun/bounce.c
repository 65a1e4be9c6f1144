/*
 * NAME
 *	bounce - RFC 3464 delivery status notifications
 * SYNOPSIS
 *	#include "queuerun/bounce.h"
 *
 *	int bounce_build(const struct bounce_info *info, time_t now,
 *	    struct buf *out);
 *
 *	void bounce_status_from_reply(const char *reply, char out[16]);
 *
 *	int bounce_postmaster(const char *origin, bounce_alias_fn lookup,
 *	    void *ctx, char ***out, size_t *n);
 *	char *bounce_reply_of(const char *response);
 * DESCRIPTION
 *	bounce_build() appends to out one complete notification in the
 *	layout of bounce.h, in the shape Postfix's bounce daemon gives
 *	its reports so that admins and the programs that read bounces
 *	find what they expect. Nothing is appended when it fails.
 *
 *	Everything bounce_build() writes itself is 7-bit text with CRLF
 *	line ends and lines of at most 78 octets where there is a space
 *	to break at (998 at worst): remote replies, addresses, the
 *	envelope id and host names are untrusted, so control characters
 *	and line ends in them become spaces or "?", runs of blanks shrink
 *	to one, non-ASCII becomes "?" (one per UTF-8 sequence), and each
 *	text is cut at 2000 octets. DSN fields are folded at spaces, so
 *	that unfolding gives the text back; a word longer than 900
 *	octets is split with a fold, the one place where unfolding adds
 *	a space.
 *
 *	Per RFC 3461 section 4.3, RET=FULL asks for the whole message in
 *	"failed" reports only: a failed report carries message/rfc822
 *	unless ret is SPOOL_RET_HDRS, while delay and success reports
 *	always carry text/rfc822-headers, as Postfix's do. The original
 *	is copied a line at a time with every line end made CRLF (a bare
 *	CR or LF ends a line too); when max_original is not 0 it stops
 *	before the first line that would take it past max_original
 *	octets, and the human-readable part says so. Long lines of the
 *	original are left alone: the SMTP client deals with them on the
 *	way out. When the original copied has 8-bit octets, the message
 *	and its third part are labelled Content-Transfer-Encoding: 8bit,
 *	otherwise 7bit.
 *
 *	read_original may be NULL: the report then has no third part.
 *	When read_original returns non-zero without having been asked to
 *	stop, the original could not be read and bounce_build() returns
 *	-1, so the caller retries later rather than send a report that
 *	lies about what was attached.
 *
 *	The MIME boundary is QUEUEID.UNIXTIME/HOST as in Postfix, or
 *	QUEUEID.UNIXTIME.N/HOST with N counting up from 1 while the
 *	boundary occurs anywhere in the three parts; it holds only RFC
 *	2046 boundary characters and is at most 70 of them. The
 *	Message-ID is <YYYYMMDDhhmmss.QUEUEID.KPID.N@HOST> (UTC time, K
 *	one of F, D, S for the kind, N a count within the process) because
 *	one message may get several reports in the same second: a delay
 *	notice and a bounce, or bounces from two runners.
 *
 *	A recipient's Action defaults to the kind's (failed, delayed,
 *	delivered) when missing or not one of RFC 3464's five. A missing
 *	or malformed Status is taken from the reply with
 *	bounce_status_from_reply(), or is the kind's 5.0.0, 4.0.0 or
 *	2.0.0 when there is no reply. The Diagnostic-Code is "smtp;
 *	REPLY" when there was a reply and "X-mxlane; REASON" when there
 *	was only a reason (Postfix writes "X-Postfix; ..." likewise).
 *	In the human-readable part a recipient reads like Postfix's:
 *	"<rcpt> (expanded from <orcpt>): host HOST said: REPLY (REASON)",
 *	so a reason such as "in reply to RCPT TO command" completes the
 *	reply; "expanded from" appears only when ORCPT names another
 *	address.
 *
 *	bounce_status_from_reply() copies the RFC 3463 enhanced status
 *	code that follows the reply code ("550 5.1.1 ..." or
 *	"550-5.1.1 ...") when its class matches the reply's first digit
 *	and its parts have one to three digits; otherwise it gives 2.0.0,
 *	4.0.0 or 5.0.0 from the reply class. A NULL reply, or one that
 *	does not start with a 2xx, 4xx or 5xx code, gives 4.0.0: what
 *	cannot be understood is never proof of a permanent failure.
 *
 *	bounce_postmaster() expands the postmaster alias for a bounce of
 *	a bounce the way bounce.h says. A name already expanded once adds
 *	nothing the second time (its addresses are in already), so the
 *	work is linear in the names reached; one being expanded (on the
 *	path from postmaster to it) is a loop and ends as name@origin, as
 *	"root: root, admin@x" keeps root at submission.
 *
 *	bounce_reply_of() finds the server's reply in a response in the
 *	shapes the queue runner records ("host X said: REPLY (in reply to
 *	RCPT TO command)", "host X refused to talk to me: REPLY"), so a
 *	report can give it as the Diagnostic-Code and take its status.
 * SEE ALSO
 *	RFC 3461 (SMTP DSN extension), RFC 3462/6522 (multipart/report),
 *	RFC 3463 (enhanced status codes), RFC 3464 (DSN format), RFC 3834
 *	(Auto-Submitted), RFC 5322 (dates, line length)
 */
#include "queuerun/bounce.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool/spool.h"

#define WRAP_WIDTH	78	/* RFC 5322 section 2.1.1 SHOULD */
#define WORD_MAX	900	/* a longer word is split to stay below 998 */
#define TEXT_MAX	2000	/* cap on any one untrusted text */
#define TOKEN_MAX	255	/* cap on a host name or queue id */
#define BOUNDARY_MAX	70	/* RFC 2046 section 5.1.1 */

/* The original as it will be attached, gathered by orig_feed(). */
struct orig {
	struct buf text;	/* complete lines, CRLF-terminated */
	struct buf line;	/* the line being read, without its end */
	size_t limit;		/* octets of text allowed, 0 = all */
	bool headers_only;
	bool pending_cr;	/* last chunk ended in CR: skip a next LF */
	bool stopped;		/* we asked the reader to stop */
	bool truncated;
	bool eightbit;
};

/* The three parts, and what the headers need to know about them. */
struct report {
	char *host;		/* cleaned reporting MTA */
	char *qid;		/* cleaned queue id */
	struct buf human;
	struct buf status;
	struct orig orig;
	bool has_orig;
};

static const char *const kind_actions[] = { "failed", "delayed",
    "delivered" };
static const char *const kind_status[] = { "5.0.0", "4.0.0", "2.0.0" };
static const char kind_letters[] = "FDS";

static enum bounce_kind
kind_of(const struct bounce_info *info)
{
	if (info->kind == BOUNCE_DELAYED || info->kind == BOUNCE_SUCCESS)
		return info->kind;
	return BOUNCE_FAILED;
}

/*
 * Makes untrusted text safe for one header field or text line: see
 * DESCRIPTION. Never returns NULL.
 */
static char *
clean_text(const char *s, size_t max)
{
	struct buf b = BUF_INIT;
	const unsigned char *p;
	bool space = false, in_utf8 = false;

	if (s == NULL)
		return xstrdup("");
	for (p = (const unsigned char *)s; *p != '\0' && b.len < max; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = b.len > 0;
			in_utf8 = false;
			continue;
		}
		if (space)
			buf_putc(&b, ' ');
		space = false;
		if (*p >= 0x80) {
			/* One "?" per UTF-8 sequence, one per Latin-1 octet. */
			if (*p >= 0xc0 || !in_utf8)
				buf_putc(&b, '?');
			in_utf8 = true;
			continue;
		}
		in_utf8 = false;
		buf_putc(&b, *p < 0x20 || *p == 0x7f ? '?' : *p);
	}
	if (*p != '\0')
		buf_puts(&b, "...");
	return buf_steal(&b);
}

/*
 * Host names and queue ids go into the Message-ID, the From: address
 * and the MIME boundary, where only letters, digits, "-", "_" and "."
 * are safe in all three.
 */
static char *
clean_token(const char *s, const char *fallback)
{
	struct buf b = BUF_INIT;

	for (; s != NULL && *s != '\0' && b.len < TOKEN_MAX; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
			buf_putc(&b, c);
		else
			buf_putc(&b, '-');
	}
	if (b.len == 0)
		buf_puts(&b, fallback);
	return buf_steal(&b);
}

/*
 * Appends lead and then text (already cleaned: single spaces, no line
 * ends), breaking lines at spaces before WRAP_WIDTH; continuation
 * lines start with indent. With indent " " this is RFC 5322 folding.
 */
static void
put_wrapped(struct buf *b, const char *lead, const char *text,
    const char *indent)
{
	size_t col = strlen(lead), wlen;
	bool fresh = true;	/* nothing yet after lead or indent */

	buf_puts(b, lead);
	for (const char *p = text; *p != '\0'; p += wlen) {
		while (*p == ' ')
			p++;
		if ((wlen = strcspn(p, " ")) == 0)
			break;
		if (!fresh && col + 1 + wlen > WRAP_WIDTH) {
			buf_printf(b, "\r\n%s", indent);
			col = strlen(indent);
			fresh = true;
		}
		if (!fresh) {
			buf_putc(b, ' ');
			col++;
		}
		while (wlen > WORD_MAX) {
			buf_append(b, p, WORD_MAX);
			buf_printf(b, "\r\n%s", indent);
			col = strlen(indent);
			p += WORD_MAX;
			wlen -= WORD_MAX;
		}
		buf_append(b, p, wlen);
		col += wlen;
		fresh = false;
	}
	buf_puts(b, "\r\n");
}

/* One header or DSN field "Name: value", cleaned and folded. */
static void
put_field(struct buf *b, const char *name, const char *value)
{
	char *lead = xasprintf("%s: ", name);
	char *text = clean_text(value, TEXT_MAX);

	put_wrapped(b, lead, text, " ");
	free(text);
	free(lead);
}

static void
put_fieldf(struct buf *b, const char *name, const char *fmt, ...)
    MXL_PRINTF(3, 4);

static void
put_fieldf(struct buf *b, const char *name, const char *fmt, ...)
{
	struct buf v = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&v, fmt, ap);
	va_end(ap);
	put_field(b, name, v.data);
	buf_free(&v);
}

/* RFC 5322 section 3.3 date, local time with a numeric zone. */
static void
put_date(struct buf *b, time_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	off = tm.tm_gmtoff / 60;
	buf_printf(b, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

static void
put_date_field(struct buf *b, const char *name, time_t t)
{
	buf_printf(b, "%s: ", name);
	put_date(b, t);
	buf_puts(b, "\r\n");
}

static bool
valid_action(const char *a)
{
	static const char *const actions[] = { "failed", "delayed",
	    "delivered", "relayed", "expanded" };

	for (size_t i = 0; a != NULL && i < 5; i++)
		if (str_casecmp_ascii(a, actions[i]) == 0)
			return true;
	return false;
}

/* Length of 1 to max digits at s, or 0. */
static size_t
digits(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] >= '0' && s[n] <= '9')
		n++;
	return n > 0 && !(s[n] >= '0' && s[n] <= '9') ? n : 0;
}

/*
 * Length of an RFC 3463 code "C.S.D" at s whose class is one of 2, 4
 * and 5 and that ends at a blank or the end of the text, or 0.
 */
static size_t
status_code_len(const char *s)
{
	size_t n, m;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	if ((n = digits(s + 2, 3)) == 0 || s[2 + n] != '.')
		return 0;
	if ((m = digits(s + 3 + n, 3)) == 0)
		return 0;
	n += 3 + m;
	if (s[n] != '\0' && s[n] != ' ' && s[n] != '\t' && s[n] != '\r' &&
	    s[n] != '\n')
		return 0;
	return n;
}

static bool
valid_status(const char *s)
{
	return s != NULL && status_code_len(s) != 0;
}

void
bounce_status_from_reply(const char *reply, char out[16])
{
	const char *p = reply, *e;
	size_t n;

	strcpy(out, "4.0.0");
	if (p == NULL)
		return;
	while (*p == ' ' || *p == '\t')
		p++;
	if ((p[0] != '2' && p[0] != '4' && p[0] != '5') ||
	    digits(p, 3) != 3)
		return;
	snprintf(out, 16, "%c.0.0", p[0]);
	if (p[3] != ' ' && p[3] != '-')
		return;
	for (e = p + 4; *e == ' ' || *e == '\t'; e++)
		;
	if (e[0] != p[0] || (n = status_code_len(e)) == 0)
		return;
	memcpy(out, e, n);	/* at most 1 + 1 + 3 + 1 + 3 octets */
	out[n] = '\0';
}

char *
bounce_reply_of(const char *response)
{
	const char *said = response ? strstr(response, " said: ") : NULL;
	const char *refused = response ? strstr(response, " to talk to me: ") :
	    NULL;

	if (said)
		said += 7;
	else if (refused)
		said = refused + 16;	/* "refused to talk to me: 421 ..." */
	else
		return NULL;
	const char *end = strstr(said, " (in reply to ");
	return end ? xstrndup(said, (size_t)(end - said)) : xstrdup(said);
}

static bool
is_success_action(const char *action)
{
	return str_casecmp_ascii(action, "delivered") == 0 ||
	    str_casecmp_ascii(action, "relayed") == 0 ||
	    str_casecmp_ascii(action, "expanded") == 0;
}

static const char *
rcpt_action(const struct bounce_info *info, const struct bounce_rcpt *r)
{
	return valid_action(r->action) ? r->action :
	    kind_actions[kind_of(info)];
}

static void
rcpt_status(const struct bounce_info *info, const struct bounce_rcpt *r,
    char out[16])
{
	size_t n;

	if (valid_status(r->status)) {
		n = status_code_len(r->status);
		memcpy(out, r->status, n);
		out[n] = '\0';
	} else if (r->diagnostic != NULL && *r->diagnostic != '\0')
		bounce_status_from_reply(r->diagnostic, out);
	else
		strcpy(out, kind_status[kind_of(info)]);
}

/* The address part of an ORCPT "type;address". */
static const char *
orcpt_address(const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');

	if (semi == NULL)
		return orcpt;
	for (semi++; *semi == ' ' || *semi == '\t'; semi++)
		;
	return semi;
}

static bool
has_text(const char *s)
{
	return s != NULL && *s != '\0';
}

/* Postfix-style "<rcpt>: what happened" line of the human part. */
static void
put_rcpt_text(struct buf *b, const struct bounce_info *info,
    const struct bounce_rcpt *r)
{
	const char *action = rcpt_action(info, r);
	struct buf t = BUF_INIT;
	char *text;

	buf_printf(&t, "<%s>", r->address ? r->address : "");
	if (has_text(r->orcpt) && str_casecmp_ascii(orcpt_address(r->orcpt),
	    r->address ? r->address : "") != 0)
		buf_printf(&t, " (expanded from <%s>)",
		    orcpt_address(r->orcpt));
	buf_puts(&t, ": ");
	if (has_text(r->diagnostic)) {
		if (has_text(r->remote_mta))
			buf_printf(&t, is_success_action(action) ?
			    "delivery via %s: " : "host %s said: ",
			    r->remote_mta);
		buf_puts(&t, r->diagnostic);
		if (has_text(r->reason))
			buf_printf(&t, " (%s)", r->reason);
	} else if (has_text(r->reason))
		buf_puts(&t, r->reason);
	else if (is_success_action(action))
		buf_puts(&t, action);
	else
		buf_printf(&t, "delivery %s",
		    str_casecmp_ascii(action, "delayed") == 0 ? "delayed" :
		    "failed");
	text = clean_text(t.data, TEXT_MAX);
	buf_puts(b, "\r\n");
	put_wrapped(b, "", text, "    ");
	free(text);
	buf_free(&t);
}

/* "5 day(s)" when whole days, else hours, as Postfix's templates say. */
static void
put_age(struct buf *b, time_t secs)
{
	if (secs >= 86400 && secs % 86400 == 0)
		buf_printf(b, "%lld day(s)", (long long)(secs / 86400));
	else
		buf_printf(b, "%lld hour(s)", (long long)(secs / 3600));
}

static void
put_intro(struct buf *b, const struct bounce_info *info, time_t now,
    const struct report *rp)
{
	buf_printf(b, "This is the mail system at host %s.\r\n\r\n",
	    rp->host);
	switch (kind_of(info)) {
	case BOUNCE_FAILED:
		buf_puts(b, "I'm sorry to have to inform you that your "
		    "message could not\r\nbe delivered to one or more "
		    "recipients.");
		if (rp->has_orig)
			buf_puts(b, rp->orig.headers_only ?
			    " Its headers are attached below." :
			    " It is attached below.");
		buf_puts(b, "\r\n");
		break;
	case BOUNCE_DELAYED:
		buf_puts(b, "################################################"
		    "####################\r\n# THIS IS A WARNING ONLY.  YOU "
		    "DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n#############"
		    "#######################################################"
		    "\r\n\r\n");
		if (info->arrival != 0 && now - info->arrival >= 3600) {
			buf_puts(b, "Your message could not be delivered for "
			    "more than ");
			put_age(b, now - info->arrival);
			buf_puts(b, ".\r\n");
		} else
			buf_puts(b, "Your message could not be delivered "
			    "yet.\r\n");
		if (info->arrival != 0 && info->retry_until > info->arrival) {
			buf_puts(b, "It will be retried until it is ");
			put_age(b, info->retry_until - info->arrival);
			buf_puts(b, " old.\r\n");
		}
		break;
	case BOUNCE_SUCCESS:
		buf_puts(b, "Your message was delivered to the recipients "
		    "listed below. If it was\r\ndelivered to a mailbox, no "
		    "further notice will follow; if it was\r\nrelayed, "
		    "other systems may still report delivery problems.\r\n");
		break;
	}
}

static void
put_human(struct buf *b, const struct bounce_info *info, time_t now,
    const struct report *rp)
{
	put_intro(b, info, now, rp);
	if (rp->has_orig && rp->orig.truncated)
		buf_printf(b, "\r\nOnly the first %zu bytes of your message "
		    "are attached; the rest\r\nwas left out.\r\n",
		    rp->orig.text.len);
	if (kind_of(info) != BOUNCE_SUCCESS)
		buf_puts(b, "\r\nFor further assistance, please send mail to "
		    "<postmaster>.\r\nIf you do so, please include this "
		    "problem report.\r\n");
	buf_puts(b, "\r\n                   The mail system\r\n");
	for (size_t i = 0; i < info->nrcpts; i++)
		put_rcpt_text(b, info, &info->rcpts[i]);
}

static void
put_rcpt_status(struct buf *b, const struct bounce_info *info,
    const struct bounce_rcpt *r)
{
	const char *action = rcpt_action(info, r);
	char status[16];

	rcpt_status(info, r, status);
	buf_puts(b, "\r\n");
	if (has_text(r->orcpt))
		put_fieldf(b, "Original-Recipient", "%s%s",
		    strchr(r->orcpt, ';') ? "" : "rfc822;", r->orcpt);
	put_fieldf(b, "Final-Recipient", "rfc822; %s",
	    r->address ? r->address : "");
	put_field(b, "Action", action);
	put_field(b, "Status", status);
	if (has_text(r->remote_mta))
		put_fieldf(b, "Remote-MTA", "dns; %s", r->remote_mta);
	if (has_text(r->diagnostic))
		put_fieldf(b, "Diagnostic-Code", "smtp; %s", r->diagnostic);
	else if (has_text(r->reason))
		put_fieldf(b, "Diagnostic-Code", "X-mxlane; %s", r->reason);
	if (r->last_attempt != 0)
		put_date_field(b, "Last-Attempt-Date", r->last_attempt);
	if (info->retry_until != 0 &&
	    str_casecmp_ascii(action, "delayed") == 0)
		put_date_field(b, "Will-Retry-Until", info->retry_until);
}

/* Field order follows the ABNF of RFC 3464 section 2.2 and 2.3. */
static void
put_status(struct buf *b, const struct bounce_info *info,
    const struct report *rp)
{
	if (has_text(info->envid))
		put_field(b, "Original-Envelope-Id", info->envid);
	put_fieldf(b, "Reporting-MTA", "dns; %s", rp->host);
	if (info->arrival != 0)
		put_date_field(b, "Arrival-Date", info->arrival);
	put_field(b, "X-Mxlane-Queue-ID", rp->qid);
	if (has_text(info->original_sender))
		put_fieldf(b, "X-Mxlane-Sender", "rfc822; %s",
		    info->original_sender);
	for (size_t i = 0; i < info->nrcpts; i++)
		put_rcpt_status(b, info, &info->rcpts[i]);
}

/* Commits the line read so far; non-zero when reading should stop. */
static int
orig_end_line(struct orig *o)
{
	if (o->headers_only && o->line.len == 0) {
		o->stopped = true;
		return 1;
	}
	if (o->limit != 0 && o->text.len + o->line.len + 2 > o->limit) {
		o->stopped = o->truncated = true;
		return 1;
	}
	for (size_t i = 0; i < o->line.len && !o->eightbit; i++)
		if ((unsigned char)o->line.data[i] & 0x80)
			o->eightbit = true;
	buf_append(&o->text, o->line.data, o->line.len);
	buf_append(&o->text, "\r\n", 2);
	buf_reset(&o->line);
	return 0;
}

/*
 * The read_original callback. CRLF, CR and LF all end a line; a CR
 * that ends one chunk makes an LF that starts the next part of it.
 */
static int
orig_feed(void *ctx, const char *data, size_t len)
{
	struct orig *o = ctx;
	size_t i = 0, j;

	while (i < len) {
		if (o->pending_cr && data[i] == '\n') {
			o->pending_cr = false;
			i++;
			continue;
		}
		o->pending_cr = false;
		if (data[i] == '\r' || data[i] == '\n') {
			o->pending_cr = data[i++] == '\r';
			if (orig_end_line(o) != 0)
				return 1;
			continue;
		}
		for (j = i; j < len && data[j] != '\r' && data[j] != '\n'; j++)
			;
		buf_append(&o->line, data + i, j - i);
		i = j;
		/* Stop early: a huge line must not fill memory first. */
		if (o->limit != 0 && o->text.len + o->line.len + 2 > o->limit) {
			o->stopped = o->truncated = true;
			return 1;
		}
	}
	return 0;
}

static int
read_orig(const struct bounce_info *info, struct report *rp)
{
	struct orig *o = &rp->orig;
	int rc;

	if (info->read_original == NULL)
		return 0;
	rp->has_orig = true;
	o->limit = info->max_original;
	o->headers_only = kind_of(info) != BOUNCE_FAILED ||
	    info->ret == SPOOL_RET_HDRS;
	rc = info->read_original(info->read_ctx, orig_feed, o);
	if (rc != 0 && !o->stopped)
		return -1;
	if (!o->stopped && o->line.len > 0)
		orig_end_line(o);
	return 0;
}

static bool
occurs_in(const struct buf *b, const char *s)
{
	return b->len > 0 && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* The first QUEUEID.UNIXTIME[.N]/HOST that no part contains. */
static char *
pick_boundary(const struct report *rp, time_t now)
{
	char *bd;

	for (unsigned n = 0;; n++) {
		if (n == 0)
			bd = xasprintf("%.32s.%lld/%s", rp->qid,
			    (long long)now, rp->host);
		else
			bd = xasprintf("%.32s.%lld.%u/%s", rp->qid,
			    (long long)now, n, rp->host);
		if (strlen(bd) > BOUNDARY_MAX)
			bd[BOUNDARY_MAX] = '\0';
		if (!occurs_in(&rp->human, bd) && !occurs_in(&rp->status, bd) &&
		    !occurs_in(&rp->orig.text, bd))
			return bd;
		free(bd);
	}
}

static void
put_message_id(struct buf *b, const struct bounce_info *info, time_t now,
    const struct report *rp)
{
	static unsigned count;
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(b, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s.%c%ld.%u@%s>"
	    "\r\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, rp->qid, kind_letters[kind_of(info)],
	    (long)getpid(), ++count, rp->host);
}

static void
put_headers(struct buf *b, const struct bounce_info *info, time_t now,
    const struct report *rp, const char *boundary)
{
	static const char *const subjects[] = {
	    "Undelivered Mail Returned to Sender",
	    "Delayed Mail (still being retried)",
	    "Successful Mail Delivery Report" };

	buf_printf(b, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n",
	    rp->host);
	if (has_text(info->original_sender))
		put_fieldf(b, "To", "<%s>", info->original_sender);
	else
		buf_puts(b, "To: undisclosed-recipients:;\r\n");
	buf_printf(b, "Subject: %s\r\n", subjects[kind_of(info)]);
	put_date_field(b, "Date", now);
	put_message_id(b, info, now, rp);
	buf_puts(b, "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n");
	buf_printf(b, "\tboundary=\"%s\"\r\n", boundary);
	buf_printf(b, "Content-Transfer-Encoding: %s\r\n\r\n",
	    rp->orig.eightbit ? "8bit" : "7bit");
	buf_puts(b, "This is a MIME-encapsulated message.\r\n");
}

static void
put_original(struct buf *b, const struct bounce_info *info,
    const struct report *rp, const char *boundary)
{
	const struct orig *o = &rp->orig;

	buf_printf(b, "\r\n--%s\r\nContent-Description: %s%s\r\n", boundary,
	    kind_of(info) == BOUNCE_SUCCESS ? "" : "Undelivered ",
	    o->headers_only ? "Message Headers" : "Message");
	buf_printf(b, "Content-Type: %s\r\n", o->headers_only ?
	    "text/rfc822-headers" : "message/rfc822");
	if (o->eightbit)
		buf_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
	buf_puts(b, "\r\n");
	buf_append(b, o->text.data, o->text.len);
}

static void
assemble(struct buf *out, const struct bounce_info *info, time_t now,
    const struct report *rp)
{
	char *boundary = pick_boundary(rp, now);

	put_headers(out, info, now, rp, boundary);
	buf_printf(out, "\r\n--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	buf_append(out, rp->human.data, rp->human.len);
	buf_printf(out, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n", boundary);
	buf_append(out, rp->status.data, rp->status.len);
	if (rp->has_orig)
		put_original(out, info, rp, boundary);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	free(boundary);
}

int
bounce_build(const struct bounce_info *info, time_t now, struct buf *out)
{
	struct report rp;
	int rc = -1;

	memset(&rp, 0, sizeof(rp));
	/* RFC 3464 requires at least one per-recipient block. */
	if (info == NULL || info->rcpts == NULL || info->nrcpts == 0)
		return -1;
	rp.host = clean_token(info->reporting_mta, "localhost");
	rp.qid = clean_token(info->queue_id, "unknown");
	if (read_orig(info, &rp) != 0)
		goto err;
	put_human(&rp.human, info, now, &rp);
	put_status(&rp.status, info, &rp);
	assemble(out, info, now, &rp);
	rc = 0;
err:
	buf_free(&rp.orig.text);
	buf_free(&rp.orig.line);
	buf_free(&rp.human);
	buf_free(&rp.status);
	free(rp.host);
	free(rp.qid);
	return rc;
}

/* Names looked up by bounce_postmaster(), and the addresses found. */
struct pm_expand {
	const char *origin;
	bounce_alias_fn lookup;
	void *ctx;
	char **names;		/* looked up (lower case) */
	bool *active;		/* names[i] is being expanded */
	size_t nnames;
	char **addrs;
	size_t naddrs;
	bool cut;		/* a limit was reached */
};

/* Adds addr (taken over) unless the same address is in already. */
static void
pm_add(struct pm_expand *x, char *addr)
{
	const char *at = strrchr(addr, '@');

	for (size_t i = 0; i < x->naddrs; i++) {
		const char *o = x->addrs[i], *oat = strrchr(o, '@');
		/* Local parts exactly, domains in any case (address_equal). */
		if (at != NULL && oat != NULL && at - addr == oat - o &&
		    strncmp(addr, o, (size_t)(at - addr)) == 0 &&
		    str_casecmp_ascii(at, oat) == 0) {
			free(addr);
			return;
		}
	}
	if (x->naddrs == BOUNCE_ALIAS_MAX) {
		x->cut = true;
		free(addr);
		return;
	}
	x->addrs = xrealloc(x->addrs, (x->naddrs + 1) * sizeof(*x->addrs));
	x->addrs[x->naddrs++] = addr;
}

static void
pm_expand_name(struct pm_expand *x, const char *name, size_t depth)
{
	char *key = xstrdup(name), **targets = NULL;
	size_t i, n = 0, slot;

	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	for (i = 0; i < x->nnames; i++)
		if (strcmp(x->names[i], key) == 0)
			break;
	if (i < x->nnames) {
		/* Done already: nothing new. Still on the path: a loop. */
		if (x->active[i])
			pm_add(x, xasprintf("%s@%s", name, x->origin));
		free(key);
		return;
	}
	if (depth > BOUNCE_ALIAS_DEPTH || x->nnames == BOUNCE_ALIAS_MAX ||
	    x->lookup(x->ctx, key, &targets, &n) != 0) {
		if (depth > BOUNCE_ALIAS_DEPTH || x->nnames == BOUNCE_ALIAS_MAX)
			x->cut = true;
		pm_add(x, xasprintf("%s@%s", name, x->origin));
		free(key);
		return;
	}
	slot = x->nnames++;
	x->names = xrealloc(x->names, x->nnames * sizeof(*x->names));
	x->active = xrealloc(x->active, x->nnames * sizeof(*x->active));
	x->names[slot] = key;
	x->active[slot] = true;
	for (i = 0; i < n; i++) {
		const char *t = targets[i];
		if (t[0] == '|' || t[0] == '/')
			;	/* no local delivery: skipped */
		else if (t[0] == '\\')
			pm_add(x, strchr(t, '@') ? xstrdup(t + 1) :
			    xasprintf("%s@%s", t + 1, x->origin));
		else if (strchr(t, '@') != NULL)
			pm_add(x, xstrdup(t));
		else
			pm_expand_name(x, t, depth + 1);
		free(targets[i]);
	}
	free(targets);
	x->active[slot] = false;
}

int
bounce_postmaster(const char *origin, bounce_alias_fn lookup, void *ctx,
    char ***out, size_t *n)
{
	struct pm_expand x;

	memset(&x, 0, sizeof(x));
	x.origin = origin;
	x.lookup = lookup;
	x.ctx = ctx;
	pm_expand_name(&x, "postmaster", 0);
	bool alias = x.nnames > 0;
	for (size_t i = 0; i < x.nnames; i++)
		free(x.names[i]);
	free(x.names);
	free(x.active);
	/* Only an alias makes a postmaster: no alias, no notification. */
	if (!alias) {
		for (size_t i = 0; i < x.naddrs; i++)
			free(x.addrs[i]);
		free(x.addrs);
		*out = NULL;
		*n = 0;
		return -1;
	}
	*out = x.addrs;
	*n = x.naddrs;
	return x.cut ? 1 : 0;
}
