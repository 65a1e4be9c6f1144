/*
 * NAME
 *	show - print one queued message: envelope, recipients, content
 * SYNOPSIS
 *	#include "queuerun/show.h"
 *
 *	int show_message(struct spool *sp, const struct mxl_config *cfg,
 *	    const char *id, FILE *out);
 * DESCRIPTION
 *	Implements "queuerun show QUEUEID" in the fixed layout of show.h,
 *	which scripts and tests read line by line. Times are local time
 *	in the form "Wed Nov 25 13:16:02 2026".
 *
 *	The content is streamed chunk by chunk as stored, with each CRLF
 *	printed as LF; a CR that ends one chunk is held back until the
 *	next shows whether an LF follows. A lone CR is printed as is. A
 *	newline is added before the closing marker when the content does
 *	not end in one, so the marker always stands on a line of its own.
 * DIAGNOSTICS
 *	An id of the wrong form or not in the queue: "queuerun: show: no
 *	message QUEUEID in the queue" on stderr and EX_NOINPUT. A spool
 *	failure (already logged by the spool): EX_TEMPFAIL. A write error
 *	on out: EX_IOERR.
 * SEE ALSO
 *	postcat(1) of Postfix, whose -q output this resembles
 */
#include "queuerun/show.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "lib/log.h"
#include "queuerun/dkim.h"

/* Stops spool_read_content(); distinct from every SPOOL_* code. */
#define CONTENT_WRITE_FAILED	2

struct content_out {
	FILE *out;
	bool pending_cr;	/* previous chunk ended in CR */
	bool at_line_start;	/* nothing printed yet, or last byte was LF */
};

static const char *
ret_name(enum spool_ret ret)
{
	switch (ret) {
	case SPOOL_RET_FULL:
		return "full";
	case SPOOL_RET_HDRS:
		return "hdrs";
	default:
		return "default";
	}
}

static const char *
body_name(enum spool_body body)
{
	switch (body) {
	case SPOOL_BODY_7BIT:
		return "7bit";
	case SPOOL_BODY_8BITMIME:
		return "8bitmime";
	default:
		return "default";
	}
}

static const char *
state_name(enum spool_rcpt_state state)
{
	switch (state) {
	case RCPT_QUEUED:
		return "queued";
	case RCPT_ACTIVE:
		return "active";
	case RCPT_SENT:
		return "sent";
	case RCPT_BOUNCED:
		return "bounced";
	default:
		return "unknown";
	}
}

/* RFC 3461 lists NEVER alone; it wins over stray bits. */
static void
print_notify(FILE *out, uint32_t notify)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {
		{ SPOOL_NOTIFY_SUCCESS, "success" },
		{ SPOOL_NOTIFY_FAILURE, "failure" },
		{ SPOOL_NOTIFY_DELAY, "delay" },
	};
	const char *sep = "";

	fputs("  notify: ", out);
	if (notify & SPOOL_NOTIFY_NEVER)
		fputs("never", out);
	else if ((notify & (SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE |
	    SPOOL_NOTIFY_DELAY)) == 0)
		fputs("default", out);
	else {
		for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
			if ((notify & bits[i].bit) == 0)
				continue;
			fprintf(out, "%s%s", sep, bits[i].name);
			sep = ",";
		}
	}
	putc('\n', out);
}

static void
print_time(FILE *out, const char *label, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;
	char text[64];

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(text, sizeof(text), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(text, sizeof(text), "%" PRId64, when);
	fprintf(out, "%s: %s\n", label, text);
}

/* "label:" alone for an empty value: no trailing blank to trip a diff. */
static void
print_field(FILE *out, const char *label, const char *value)
{
	if (value == NULL || *value == '\0')
		fprintf(out, "%s:\n", label);
	else
		fprintf(out, "%s: %s\n", label, value);
}

static void
print_envelope(FILE *out, const struct spool_msg *msg)
{
	fprintf(out, "*** ENVELOPE RECORDS %s ***\n", msg->id);
	fprintf(out, "queue_id: %s\n", msg->id);
	print_time(out, "arrival_time", msg->arrival);
	fprintf(out, "arrival_unix: %" PRId64 "\n", msg->arrival);
	fprintf(out, "size: %" PRIu64 "\n", msg->size);
	print_field(out, "lane", msg->lane);
	print_field(out, "sender", msg->sender);
	fprintf(out, "uid: %" PRIu32 "\n", msg->uid);
	print_field(out, "user", msg->user);
	fprintf(out, "ret: %s\n", ret_name(msg->ret));
	if (msg->envid != NULL && *msg->envid != '\0')
		fprintf(out, "envid: %s\n", msg->envid);
	fprintf(out, "body: %s\n", body_name(msg->body));
	fprintf(out, "held: %s\n", msg->flags & SPOOL_MSG_HELD ? "yes" : "no");
	if (msg->move_pool)
		print_field(out, "moved_to_pool", msg->move_pool);
	if (msg->move_source)
		print_field(out, "moved_to_source", msg->move_source);
	if (msg->move_provider)
		print_field(out, "moved_for_provider", msg->move_provider);
}

static void
print_recipient(FILE *out, const struct spool_rcpt *r)
{
	print_field(out, "recipient", r->address);
	if (r->orcpt != NULL && *r->orcpt != '\0')
		fprintf(out, "  orcpt: %s\n", r->orcpt);
	print_notify(out, r->notify);
	fprintf(out, "  state: %s\n", state_name(r->state));
	fprintf(out, "  attempts: %" PRIu32 "\n", r->attempts);
	print_time(out, "  next_try", r->next_try);
	if (r->last_response != NULL && *r->last_response != '\0')
		fprintf(out, "  last_response: %s\n", r->last_response);
	if (r->last_relay != NULL && *r->last_relay != '\0')
		fprintf(out, "  last_relay: %s\n", r->last_relay);
	if (r->status != NULL && *r->status != '\0')
		fprintf(out, "  dsn: %s\n", r->status);
	if (r->class != NULL && *r->class != '\0')
		fprintf(out, "  class: %s\n", r->class);
	if (r->last_source != NULL)
		fprintf(out, "  last_source: %s\n", r->last_source);
	if (r->flags & SPOOL_RCPT_NOTIFIED)
		fprintf(out, "  notified: yes\n");
	if (r->flags & SPOOL_RCPT_HELD)
		fprintf(out, "  booked: yes\n");
}

static void
content_put(struct content_out *co, const char *data, size_t len)
{
	if (len == 0)
		return;
	fwrite(data, 1, len, co->out);
	co->at_line_start = data[len - 1] == '\n';
}

/* spool_read_content() callback: CRLF to LF across chunk boundaries. */
static int
content_chunk(void *ctx, const char *data, size_t len)
{
	struct content_out *co = ctx;
	const char *end = data + len, *cr;

	if (co->pending_cr && len > 0) {
		co->pending_cr = false;
		if (*data != '\n')
			content_put(co, "\r", 1);
	}
	while ((cr = memchr(data, '\r', (size_t)(end - data))) != NULL) {
		content_put(co, data, (size_t)(cr - data));
		data = cr + 1;
		if (data == end)
			co->pending_cr = true;
		else if (*data != '\n')
			content_put(co, "\r", 1);
	}
	content_put(co, data, (size_t)(end - data));
	/* A reader that went away should not cost reading the whole body. */
	return ferror(co->out) ? CONTENT_WRITE_FAILED : 0;
}

static int
print_content(struct spool *sp, const char *id, FILE *out)
{
	struct content_out co = { out, false, true };
	int rc;

	fprintf(out, "*** MESSAGE CONTENTS %s ***\n", id);
	rc = spool_read_content(sp, id, content_chunk, &co);
	if (rc != SPOOL_OK)
		return rc;
	if (co.pending_cr)
		content_put(&co, "\r", 1);
	if (!co.at_line_start)
		putc('\n', out);
	fprintf(out, "*** END OF MESSAGE %s ***\n", id);
	return SPOOL_OK;
}

static int
no_such_message(const char *id)
{
	log_stderr("show: no message %s in the queue", id);
	return EX_NOINPUT;
}

/* How delivery will sign it, decided as delivery decides (dkim.h). */
static int
print_dkim(FILE *out, struct spool *sp, const struct mxl_config *cfg,
    const char *id)
{
	struct dkim_choice c;
	int rc = dkim_choose(cfg, sp, id, &c);

	if (rc != SPOOL_OK)
		return rc;
	char *text = dkim_choice_text(&c);
	fprintf(out, "dkim: %s\n", text);
	free(text);
	return SPOOL_OK;
}

int
show_message(struct spool *sp, const struct mxl_config *cfg, const char *id,
    FILE *out)
{
	struct spool_msg msg;
	struct spool_rcpt *rcpts = NULL;
	size_t nrcpt = 0;
	int rc, ex = 0;

	if (!spool_id_valid(id))
		return no_such_message(id);
	memset(&msg, 0, sizeof(msg));
	rc = spool_get(sp, id, &msg, &rcpts, &nrcpt);
	if (rc == SPOOL_NOTFOUND)
		return no_such_message(id);
	if (rc != SPOOL_OK)
		return EX_TEMPFAIL;

	print_envelope(out, &msg);
	rc = print_dkim(out, sp, cfg, id);
	for (size_t i = 0; rc == SPOOL_OK && i < nrcpt; i++)
		print_recipient(out, &rcpts[i]);
	if (rc == SPOOL_OK)
		rc = print_content(sp, id, out);
	if (rc == CONTENT_WRITE_FAILED || fflush(out) != 0 || ferror(out))
		ex = EX_IOERR;
	else if (rc == SPOOL_NOTFOUND)
		/* Delivered and removed between the two reads. */
		ex = no_such_message(id);
	else if (rc != SPOOL_OK)
		ex = EX_TEMPFAIL;

	spool_rcpts_free(rcpts, nrcpt);
	spool_msg_free(&msg);
	return ex;
}
