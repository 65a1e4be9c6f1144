/*
 * NAME
 *	mailq - list the queue in Postfix's mailq layout
 * SYNOPSIS
 *	#include "sendmail/mailq.h"
 *
 *	int mailq_print(struct spool *sp, FILE *out, uid_t viewer_uid,
 *	    bool see_all);
 * DESCRIPTION
 *	The layout is byte for byte what Postfix 3.x "postqueue -p" prints
 *	with enable_long_queue_ids = no (src/postqueue/showq_compat.c and
 *	src/showq/showq.c), because nagios check_mailq and many scripts
 *	parse it:
 *
 *	- the sender line is "%-11s %7ld %20.20s %s": the queue id with
 *	  '*' (active) or '!' (held) appended, padded to at least 11
 *	  columns; our 13-character ids overflow the column exactly as
 *	  Postfix's own long ids would;
 *	- the time field is asctime() cut to 20 characters, so it ends in
 *	  the blank before the year and the sender follows two blanks on;
 *	- a reason line is printed when the reason differs from the
 *	  previous recipient's, right-aligned to end in column 78 and never
 *	  truncated (a long reason simply starts in column 1);
 *	  "(reason unavailable)" when a recipient without a reason follows
 *	  one with a reason; the reply class queuerun gave the reason
 *	  (route/replies.h) follows it inside the parentheses, as
 *	  "(reason; class=transient)";
 *	- recipients are indented by 41 blanks; messages are separated by
 *	  an empty line; the trailer sums message sizes and divides by 1024
 *	  rounding down.
 *
 *	Recipients with a deferral reason are listed first, then the
 *	others: Postfix lists the recipients of its defer logfile before
 *	the rest of the queue file, and doing the same keeps
 *	"(reason unavailable)" lines to at most one per message.
 *
 *	Addresses and reasons come from outside; control characters in
 *	them are shown as '?' (as Postfix's printable() does) so that a
 *	crafted address cannot forge lines or drive the terminal.
 *
 *	Memory use does not depend on the size of the queue: spool_scan()
 *	hands over one message at a time and nothing is kept after it.
 * DIAGNOSTICS
 *	Returns 0, EX_TEMPFAIL when the spool could not be read (the spool
 *	has logged why; the listing is then cut short and has no trailer)
 *	or EX_IOERR when out could not be written. Nothing is printed on
 *	stderr: the caller tells the person at the terminal.
 * SEE ALSO
 *	postqueue(1), showq(8) of Postfix
 */
#include "sendmail/mailq.h"

#include "lib/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

/* The first three columns of Postfix's short-id layout, blank or not. */
#define COLUMNS_FORMAT	"%-11s %7s %-20s "
#define SENDER_FORMAT	"%-11s %7" PRIu64 " %20.20s "

#define REASON_COLUMN	76	/* "(reason)" ends in column 78 */
#define NULL_ADDRESS	"MAILER-DAEMON"	/* Postfix empty_address_recipient */
#define NO_REASON	"reason unavailable"

struct mailq_walk {
	FILE *out;
	uid_t viewer_uid;
	bool see_all;
	bool json;		/* one JSON object a line instead */
	mailq_route_fn route;
	void *route_ctx;
	uint64_t shown;		/* messages printed */
	uint64_t bytes;		/* their total size */
	bool write_failed;
	bool in_maildrop;	/* walking the maildrop, not the queue */
	char (*maildrop_ids)[SPOOL_ID_SIZE];	/* listed from it, sorted */
	size_t nmaildrop;
};

static int
compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, SPOOL_ID_SIZE);
}

static bool
rcpt_pending(const struct spool_rcpt *r)
{
	return r->state == RCPT_QUEUED || r->state == RCPT_ACTIVE;
}

/* "" when no delivery attempt has left a reply worth showing. */
static const char *
rcpt_reason(const struct spool_rcpt *r)
{
	if (r->attempts == 0 || r->last_response == NULL)
		return "";
	return r->last_response;
}

static bool
msg_pending(const struct spool_rcpt *rcpts, size_t nrcpt)
{
	for (size_t i = 0; i < nrcpt; i++)
		if (rcpt_pending(&rcpts[i]))
			return true;
	return false;
}

/*
 * Postfix decorates by queue directory; a message is in one directory
 * only, and its showq looks at active before hold, so '*' wins here.
 */
static const char *
msg_status(const struct spool_msg *msg, const struct spool_rcpt *rcpts,
    size_t nrcpt)
{
	for (size_t i = 0; i < nrcpt; i++)
		if (rcpts[i].state == RCPT_ACTIVE)
			return "*";
	if (msg->flags & SPOOL_MSG_HELD)
		return "!";
	return "";
}

/* Same length as s, so column arithmetic done on strlen() still holds. */
static void
put_printable(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		putc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

static void
put_address(FILE *out, const char *addr)
{
	put_printable(out, addr == NULL || *addr == '\0' ? NULL_ADDRESS : addr);
	putc('\n', out);
}

/*
 * asctime()'s English names regardless of locale, as Postfix prints
 * them; the trailing blank is part of the 20-character field.
 */
static void
format_arrival(int64_t arrival, char *field, size_t size)
{
	static const char wday[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char mon[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	time_t t = (time_t)arrival;
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL) {
		snprintf(field, size, "??");
		return;
	}
	snprintf(field, size, "%.3s %.3s%3d %.2d:%.2d:%.2d ",
	    wday[tm.tm_wday], mon[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
}

static void
print_sender_line(FILE *out, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt)
{
	char id_status[SPOOL_ID_SIZE + 1];
	char arrival[32];

	snprintf(id_status, sizeof(id_status), "%.*s%s", SPOOL_ID_LEN, msg->id,
	    msg_status(msg, rcpts, nrcpt));
	format_arrival(msg->arrival, arrival, sizeof(arrival));
	fprintf(out, SENDER_FORMAT, id_status, msg->size, arrival);
	put_address(out, msg->sender);
}

/* The reply class of the last attempt (queuerun's), or "". */
static const char *
rcpt_class(const struct spool_rcpt *r)
{
	if (r->attempts == 0 || r->last_response == NULL || r->class == NULL)
		return "";
	return r->class;
}

/*
 * The class goes inside the parentheses, after the reason, so that
 * tools that take the reason as the whole parenthesised line still do.
 */
static void
print_reason(FILE *out, const char *reason, const char *class)
{
	const char *shown = *reason ? reason : NO_REASON;
	size_t len = strlen(shown);

	if (*class)
		len += strlen("; class=") + strlen(class);
	int padding = len < REASON_COLUMN ? REASON_COLUMN - (int)len : 0;

	fprintf(out, "%*s(", padding, "");
	put_printable(out, shown);
	if (*class) {
		fputs("; class=", out);
		put_printable(out, class);
	}
	fputs(")\n", out);
}

/*
 * One pass prints the pending recipients that have a reason (with_reason)
 * or those that have none. *previous carries the reason last shown
 * across both passes, so a line is printed only when it changes.
 */
static void
print_recipients(FILE *out, const struct spool_rcpt *rcpts, size_t nrcpt,
    bool with_reason, const char **previous, const char **previous_class)
{
	for (size_t i = 0; i < nrcpt; i++) {
		const struct spool_rcpt *r = &rcpts[i];
		const char *reason = rcpt_reason(r);
		const char *class = rcpt_class(r);

		if (!rcpt_pending(r) || (*reason != '\0') != with_reason)
			continue;
		if (strcmp(reason, *previous) != 0 ||
		    strcmp(class, *previous_class) != 0) {
			print_reason(out, reason, class);
			*previous = reason;
			*previous_class = class;
		}
		fprintf(out, COLUMNS_FORMAT, "", "", "");
		put_address(out, r->address);
	}
}

static int
print_message(void *ctx, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt)
{
	struct mailq_walk *w = ctx;
	const char *previous = "", *previous_class = "";

	if (!w->see_all && msg->uid != (uint32_t)w->viewer_uid)
		return 0;
	if (w->in_maildrop) {
		w->maildrop_ids = xrealloc(w->maildrop_ids,
		    (w->nmaildrop + 1) * sizeof(*w->maildrop_ids));
		memcpy(w->maildrop_ids[w->nmaildrop++], msg->id,
		    SPOOL_ID_SIZE);
	} else if (w->nmaildrop > 0 && bsearch(msg->id, w->maildrop_ids,
	    w->nmaildrop, sizeof(*w->maildrop_ids), compare_ids)) {
		return 0;	/* picked up since we listed it */
	}
	if (!msg_pending(rcpts, nrcpt))
		return 0;
	if (w->json) {
		struct buf line = BUF_INIT;
		mailq_json_message(&line, msg, rcpts, nrcpt, w->in_maildrop,
		    w->route, w->route_ctx);
		buf_putc(&line, '\n');
		fwrite(line.data, 1, line.len, w->out);
		buf_free(&line);
		w->shown++;
		if (ferror(w->out)) {
			w->write_failed = true;
			return 1;
		}
		return 0;
	}

	if (w->shown == 0)
		fprintf(w->out, COLUMNS_FORMAT "%s\n", "-Queue ID-",
		    "--Size--", "----Arrival Time----",
		    "-Sender/Recipient-------");
	else
		putc('\n', w->out);
	print_sender_line(w->out, msg, rcpts, nrcpt);
	print_recipients(w->out, rcpts, nrcpt, true, &previous,
	    &previous_class);
	print_recipients(w->out, rcpts, nrcpt, false, &previous,
	    &previous_class);
	w->shown++;
	w->bytes += msg->size;

	/* A reader that went away (mailq | head) should not cost a walk. */
	if (ferror(w->out)) {
		w->write_failed = true;
		return 1;
	}
	return 0;
}

static void
print_trailer(FILE *out, const struct mailq_walk *w)
{
	if (w->shown == 0)
		fputs("Mail queue is empty\n", out);
	else
		fprintf(out, "\n-- %" PRIu64 " Kbytes in %" PRIu64
		    " Request%s.\n", w->bytes / 1024, w->shown,
		    w->shown == 1 ? "" : "s");
}

/*
 * Postfix's queue names: active while a runner has a recipient (first,
 * as msg_status() puts '*' before '!'), hold for held mail, deferred
 * once one was attempted, incoming for mail no runner has looked at
 * yet (still in the maildrop, or queued and never tried).
 */
static const char *
queue_name(const struct spool_msg *msg, const struct spool_rcpt *rcpts,
    size_t nrcpt, bool in_maildrop)
{
	bool tried = false;

	if (in_maildrop)
		return "incoming";
	for (size_t i = 0; i < nrcpt; i++)
		if (rcpts[i].state == RCPT_ACTIVE)
			return "active";
	if (msg->flags & SPOOL_MSG_HELD)
		return "hold";
	for (size_t i = 0; i < nrcpt; i++)
		if (rcpt_pending(&rcpts[i]) && rcpts[i].attempts > 0)
			tried = true;
	return tried ? "deferred" : "incoming";
}

void
mailq_json_message(struct buf *b, const struct spool_msg *msg,
    const struct spool_rcpt *rcpts, size_t nrcpt, bool in_maildrop,
    mailq_route_fn route, void *route_ctx)
{
	bool first = true;

	buf_puts(b, "{\"queue_id\":");
	json_put_str(b, msg->id);
	buf_puts(b, ",\"queue_name\":");
	json_put_str(b, queue_name(msg, rcpts, nrcpt, in_maildrop));
	buf_printf(b, ",\"arrival_time\":%" PRId64 ",\"message_size\":%"
	    PRIu64 ",\"sender\":", msg->arrival, msg->size);
	json_put_str(b, msg->sender);
	buf_puts(b, ",\"lane\":");
	json_put_str(b, msg->lane);
	buf_puts(b, ",\"recipients\":[");
	for (size_t i = 0; i < nrcpt; i++) {
		const struct spool_rcpt *r = &rcpts[i];
		const char *provider = NULL, *pool = NULL;
		const char *reason = rcpt_reason(r), *class = rcpt_class(r);

		if (!rcpt_pending(r))
			continue;
		if (route)
			route(route_ctx, msg, r, &provider, &pool);
		buf_puts(b, first ? "{\"address\":" : ",{\"address\":");
		first = false;
		json_put_str(b, r->address);
		buf_puts(b, ",\"provider\":");
		json_put_str(b, provider);
		buf_puts(b, ",\"pool\":");
		json_put_str(b, pool);
		/* Where it leaves from next if moved, else where it last did. */
		buf_puts(b, ",\"source\":");
		json_put_str(b, msg->move_source ? msg->move_source :
		    r->last_source);
		buf_puts(b, ",\"delay_reason\":");
		json_put_str(b, *reason ? reason : NULL);
		buf_puts(b, ",\"class\":");
		json_put_str(b, *class ? class : NULL);
		buf_printf(b, ",\"next_try\":%" PRId64 "}", r->next_try);
	}
	buf_puts(b, "]}");
}

static int
walk_queue(struct spool *sp, struct mailq_walk *w)
{
	int rc;

	/*
	 * New mail still in the maildrop first, then the queue: a message
	 * picked up in between is listed once, from the maildrop.
	 */
	w->in_maildrop = true;
	rc = spool_scan_maildrop(sp, print_message, w);
	w->in_maildrop = false;
	if (rc == SPOOL_OK && !w->write_failed)
		rc = spool_scan(sp, print_message, w);
	free(w->maildrop_ids);
	w->maildrop_ids = NULL;
	return rc;
}

int
mailq_print_json(struct spool *sp, FILE *out, uid_t viewer_uid, bool see_all,
    mailq_route_fn route, void *route_ctx)
{
	struct mailq_walk w = {
		.out = out,
		.viewer_uid = viewer_uid,
		.see_all = see_all,
		.json = true,
		.route = route,
		.route_ctx = route_ctx,
	};
	int rc = walk_queue(sp, &w);

	if (w.write_failed)
		return EX_IOERR;
	if (rc != SPOOL_OK) {
		fflush(out);
		return EX_TEMPFAIL;
	}
	if (fflush(out) != 0 || ferror(out))
		return EX_IOERR;
	return 0;
}

int
mailq_print(struct spool *sp, FILE *out, uid_t viewer_uid, bool see_all)
{
	struct mailq_walk w = {
		.out = out,
		.viewer_uid = viewer_uid,
		.see_all = see_all,
	};
	int rc;

	rc = walk_queue(sp, &w);
	if (w.write_failed)
		return EX_IOERR;
	if (rc != SPOOL_OK) {
		/* A trailer now would under-report the queue to monitoring. */
		fflush(out);
		return EX_TEMPFAIL;
	}
	print_trailer(out, &w);
	if (fflush(out) != 0 || ferror(out))
		return EX_IOERR;
	return 0;
}
