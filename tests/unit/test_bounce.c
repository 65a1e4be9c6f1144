/*
 * test_bounce - delivery status notifications are real RFC 3464 DSNs:
 * their MIME structure and fields are checked with a small parser
 * here, and each report is also handed to tests/servers/dsncheck.py,
 * which parses it with Python's email package as a mail client would.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queuerun/bounce.h"
#include "spool/spool.h"
#include "tests/unit/unit.h"

#define NOW		((time_t)1795613231)	/* Wed, 25 Nov 2026 */
#define ARRIVAL		(NOW - 4 * 3600 - 600)
#define RETRY_UNTIL	(ARRIVAL + 5 * 86400)
#define HOST		"mx.local"
#define QID		"4ZxQ7mK2cLz9"

static const char original[] =
    "Received: from www (localhost [127.0.0.1])\r\n"
    "\tby mx.local (mxlane) with local id 4ZxQ7mK2cLz9;\r\n"
    "\tWed, 25 Nov 2026 09:00:00 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: a@example.org, b@example.net, c@example.com\r\n"
    "Subject: quarterly figures\r\n"
    "Message-ID: <figures-1@example.org>\r\n"
    "\r\n"
    "Hello,\r\n"
    "\r\n"
    "the figures are attached.\r\n"
    "-- \r\n"
    "Alice\r\n";

/* Feeds the original in chunks of a chosen size, or fails. */
struct source {
	const char *data;
	size_t len;
	size_t chunk;
	bool fail;
};

static int
source_read(void *ctx, int (*fn)(void *, const char *, size_t), void *fnctx)
{
	struct source *s = ctx;

	for (size_t off = 0; off < s->len; off += s->chunk) {
		size_t n = s->len - off < s->chunk ? s->len - off : s->chunk;

		if (s->fail && off > 0)
			return -1;
		if (fn(fnctx, s->data + off, n) != 0)
			return 1;
	}
	return s->fail ? -1 : 0;
}

static void
info_init(struct bounce_info *info, enum bounce_kind kind,
    const struct bounce_rcpt *rcpts, size_t n, struct source *src)
{
	memset(info, 0, sizeof(*info));
	info->kind = kind;
	info->reporting_mta = HOST;
	info->queue_id = QID;
	info->original_sender = "alice@example.org";
	info->arrival = ARRIVAL;
	info->retry_until = RETRY_UNTIL;
	info->ret = SPOOL_RET_DEFAULT;
	info->rcpts = rcpts;
	info->nrcpts = n;
	if (src != NULL) {
		info->read_original = source_read;
		info->read_ctx = src;
	}
}

static struct source
source_of(const char *data, size_t chunk)
{
	struct source s = { data, strlen(data), chunk, false };

	return s;
}

/* ---- A small MIME parser, just enough for a multipart/report. ---- */

struct part {
	const char *hdr;	/* header section, through its last CRLF */
	size_t hdrlen;
	const char *body;
	size_t bodylen;
};

struct mime {
	char boundary[128];
	const char *hdr;	/* the message's header section */
	size_t hdrlen;
	struct part parts[8];
	int nparts;
	bool closed;		/* the close delimiter was found */
	bool epilogue_ok;	/* nothing but CRLF after it */
};

/*
 * Unfolded value of the first field NAME in a header section, into
 * out; false when absent.
 */
static bool
header(const char *h, size_t len, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name), o = 0;
	const char *end = h + len, *p = h;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			for (p += nlen + 1; *p == ' ' || *p == '\t'; p++)
				;
			for (;;) {
				while (p < eol && o + 1 < size)
					out[o++] = *p++;
				if (eol + 2 >= end || (eol[2] != ' ' &&
				    eol[2] != '\t'))
					break;
				p = eol + 2;
				eol = memmem(p, (size_t)(end - p), "\r\n", 2);
				if (eol == NULL)
					eol = end;
			}
			out[o] = '\0';
			return true;
		}
		p = eol + 2;
	}
	return false;
}

static bool
split_part(const char *p, size_t len, struct part *part)
{
	const char *sep;

	if (len >= 2 && memcmp(p, "\r\n", 2) == 0) {
		part->hdr = p;
		part->hdrlen = 0;
		part->body = p + 2;
		part->bodylen = len - 2;
		return true;
	}
	if ((sep = memmem(p, len, "\r\n\r\n", 4)) == NULL)
		return false;
	part->hdr = p;
	part->hdrlen = (size_t)(sep - p) + 2;
	part->body = sep + 4;
	part->bodylen = len - (size_t)(sep + 4 - p);
	return true;
}

static bool
get_boundary(struct mime *m)
{
	char ct[512], *b, *q;

	if (!header(m->hdr, m->hdrlen, "Content-Type", ct, sizeof(ct)) ||
	    (b = strstr(ct, "boundary=\"")) == NULL)
		return false;
	b += strlen("boundary=\"");
	if ((q = strchr(b, '"')) == NULL || (size_t)(q - b) >= 128)
		return false;
	memcpy(m->boundary, b, (size_t)(q - b));
	m->boundary[q - b] = '\0';
	return true;
}

/*
 * Splits msg at "CRLF--boundary" delimiters (RFC 2046 section 5.1.1):
 * part i runs from the CRLF ending delimiter line i to the CRLF that
 * starts the next delimiter.
 */
static bool
parse_mime(const char *msg, size_t len, struct mime *m)
{
	struct part top;
	char delim[140];
	const char *p, *end = msg + len, *next;

	memset(m, 0, sizeof(*m));
	if (!split_part(msg, len, &top))
		return false;
	m->hdr = top.hdr;
	m->hdrlen = top.hdrlen;
	if (!get_boundary(m))
		return false;
	snprintf(delim, sizeof(delim), "\r\n--%s", m->boundary);
	p = memmem(top.body - 2, (size_t)(end - top.body + 2), delim,
	    strlen(delim));
	while (p != NULL) {
		p += strlen(delim);
		if (end - p >= 2 && memcmp(p, "--", 2) == 0) {
			m->closed = true;
			m->epilogue_ok = end - p == 4 &&
			    memcmp(p + 2, "\r\n", 2) == 0;
			return true;
		}
		if (end - p < 2 || memcmp(p, "\r\n", 2) != 0 || m->nparts == 8)
			return false;
		p += 2;
		next = memmem(p, (size_t)(end - p), delim, strlen(delim));
		if (next == NULL || !split_part(p, (size_t)(next - p),
		    &m->parts[m->nparts]))
			return false;
		m->nparts++;
		p = next;
	}
	return false;
}

/* Every line ends in CRLF, no bare CR or LF, none over 998 octets. */
static bool
lines_ok(const char *s, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				return false;
			if (col > 998)
				return false;
			col = 0;
			i++;
		} else if (s[i] == '\n')
			return false;
		else
			col++;
	}
	return col == 0;
}

static bool
seven_bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] & 0x80)
			return false;
	return true;
}

static bool
contains(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* The index-th blank-line separated block of a delivery-status body. */
static bool
dsn_block(const struct part *p, int index, const char **blk, size_t *len)
{
	const char *s = p->body, *end = p->body + p->bodylen, *sep;

	for (int i = 0; ; i++) {
		sep = memmem(s, (size_t)(end - s), "\r\n\r\n", 4);
		if (i == index) {
			*blk = s;
			*len = sep ? (size_t)(sep - s) + 2 : (size_t)(end - s);
			return *len > 0;
		}
		if (sep == NULL)
			return false;
		s = sep + 4;
	}
}

static int
dsn_nblocks(const struct part *p)
{
	const char *b;
	size_t l;
	int n = 0;

	while (dsn_block(p, n, &b, &l))
		n++;
	return n;
}

/* Value of NAME in recipient block i (1-based), "" when absent. */
static const char *
rfield(const struct part *p, int i, const char *name)
{
	static char v[4096];
	const char *b;
	size_t l;

	if (!dsn_block(p, i, &b, &l) || !header(b, l, name, v, sizeof(v)))
		return "";
	return v;
}

static bool
rhas(const struct part *p, int i, const char *name)
{
	char v[16];
	const char *b;
	size_t l;

	return dsn_block(p, i, &b, &l) && header(b, l, name, v, sizeof(v));
}

static const char *
part_header(const struct part *p, const char *name)
{
	static char v[512];

	if (!header(p->hdr, p->hdrlen, name, v, sizeof(v)))
		return "";
	return v;
}

static const char *
top_header(const struct mime *m, const char *name)
{
	static char v[512];

	if (!header(m->hdr, m->hdrlen, name, v, sizeof(v)))
		return "";
	return v;
}

/* Shape of an RFC 5322 date as bounce.c writes it. */
static bool
date_ok(const char *d)
{
	char day[4], mon[4], sign;
	int dd, yy, h, mi, s, z, n = 0;

	if (sscanf(d, "%3[A-Za-z], %d %3[A-Za-z] %4d %2d:%2d:%2d %c%4d%n",
	    day, &dd, mon, &yy, &h, &mi, &s, &sign, &z, &n) != 9)
		return false;
	return d[n] == '\0' && strlen(d) - strlen(strrchr(d, ' ')) > 0 &&
	    strstr("SunMonTueWedThuFriSat", day) != NULL &&
	    strstr("JanFebMarAprMayJunJulAugSepOctNovDec", mon) != NULL &&
	    (sign == '+' || sign == '-') && strlen(strrchr(d, sign)) == 5;
}

/* ---- Python's view of the report. ---- */

static const char *
dsncheck_path(void)
{
	static char path[4096];
	const char *src = getenv("MXL_SRC");
	const char *me = __FILE__, *cut = strstr(me, "tests/unit/");

	if (src != NULL)
		snprintf(path, sizeof(path), "%s/tests/servers/dsncheck.py",
		    src);
	else
		snprintf(path, sizeof(path), "%.*stests/servers/dsncheck.py",
		    cut ? (int)(cut - me) : 0, me);
	return path;
}

/*
 * Runs dsncheck.py --strict on msg; returns its output (the JSON line,
 * or its complaint; caller frees) and sets *status to its exit status.
 * A complaint is shown unless the test expects one.
 */
static char *
dsncheck_run(const struct buf *msg, int *status, bool expect_ok)
{
	const char *dir = getenv("MXL_SCRATCH");
	char tmpl[4096], cmd[8300];
	struct buf out = BUF_INIT;
	FILE *p;
	int fd, c;

	snprintf(tmpl, sizeof(tmpl), "%s/dsn.XXXXXX", dir ? dir :
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(tmpl)) < 0 || write_full(fd, msg->data,
	    msg->len) != 0) {
		*status = -1;
		return xstrdup("");
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' --strict '%s' 2>&1",
	    dsncheck_path(), tmpl);
	if ((p = popen(cmd, "r")) == NULL) {
		*status = -1;
		unlink(tmpl);
		return xstrdup("");
	}
	while ((c = getc(p)) != EOF)
		buf_putc(&out, c);
	*status = pclose(p);
	unlink(tmpl);
	if (*status != 0 && expect_ok)
		fprintf(stderr, "  %s", out.data ? out.data : "(no output)\n");
	return buf_steal(&out);
}

static char *
dsncheck(const struct buf *msg, int *status)
{
	return dsncheck_run(msg, status, true);
}

static void
json_str(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_puts(b, "null");
	else
		buf_printf(b, "\"%s\"", s);
}

/* The JSON object dsncheck.py prints for one recipient. */
static char *
json_rcpt(const char *action, const char *diag, const char *final,
    const char *orig, const char *mta, const char *status)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"action\": ");
	json_str(&b, action);
	buf_puts(&b, ", \"diagnostic\": ");
	json_str(&b, diag);
	buf_puts(&b, ", \"final_recipient\": ");
	json_str(&b, final);
	buf_puts(&b, ", \"original_recipient\": ");
	json_str(&b, orig);
	buf_puts(&b, ", \"remote_mta\": ");
	json_str(&b, mta);
	buf_puts(&b, ", \"status\": ");
	json_str(&b, status);
	buf_puts(&b, "}");
	return buf_steal(&b);
}

static void
check_json_rcpt(const char *json, const char *action, const char *diag,
    const char *final, const char *orig, const char *mta,
    const char *status)
{
	char *want = json_rcpt(action, diag, final, orig, mta, status);

	CHECK(strstr(json, want) != NULL);
	if (strstr(json, want) == NULL)
		fprintf(stderr, "  want %s\n  in   %s\n", want, json);
	free(want);
}

/* Builds a report and checks what every report must satisfy. */
static bool
build_checked(const struct bounce_info *info, struct buf *out,
    struct mime *m)
{
	buf_reset(out);
	CHECK_INT(bounce_build(info, NOW, out), 0);
	CHECK(lines_ok(out->data, out->len));
	CHECK(parse_mime(out->data, out->len, m));
	CHECK(m->closed && m->epilogue_ok);
	CHECK(m->nparts == 2 || m->nparts == 3);
	if (m->nparts < 2)
		return false;
	CHECK(seven_bit(m->hdr, m->hdrlen));
	CHECK(seven_bit(m->parts[0].hdr, m->parts[0].body - m->parts[0].hdr +
	    m->parts[0].bodylen));
	CHECK(seven_bit(m->parts[1].hdr, m->parts[1].body - m->parts[1].hdr +
	    m->parts[1].bodylen));
	CHECK(!contains(m->parts[0].body, m->parts[0].bodylen, m->boundary));
	CHECK(!contains(m->parts[1].body, m->parts[1].bodylen, m->boundary));
	if (m->nparts == 3)
		CHECK(!contains(m->parts[2].body, m->parts[2].bodylen,
		    m->boundary));
	CHECK(strlen(m->boundary) <= 70);
	CHECK_STR(top_header(m, "MIME-Version"), "1.0");
	CHECK(strncmp(top_header(m, "Content-Type"), "multipart/report; "
	    "report-type=delivery-status;", 46) == 0);
	CHECK_STR(top_header(m, "Auto-Submitted"), "auto-replied");
	CHECK_STR(top_header(m, "From"),
	    "MAILER-DAEMON@" HOST " (Mail Delivery System)");
	CHECK(date_ok(top_header(m, "Date")));
	CHECK_STR(part_header(&m->parts[0], "Content-Type"),
	    "text/plain; charset=us-ascii");
	CHECK_STR(part_header(&m->parts[1], "Content-Type"),
	    "message/delivery-status");
	CHECK_STR(rfield(&m->parts[1], 0, "Reporting-MTA"), "dns; " HOST);
	CHECK_STR(rfield(&m->parts[1], 0, "X-Mxlane-Queue-ID"), QID);
	CHECK(date_ok(rfield(&m->parts[1], 0, "Arrival-Date")));
	return true;
}

/* ---- The tests. ---- */

static void
test_status_from_reply(void)
{
	static const struct {
		const char *reply, *want;
	} cases[] = {
		{ "550 5.1.1 <a@b>: User unknown", "5.1.1" },
		{ "550-5.7.1 first line", "5.7.1" },
		{ "451 4.3.0 try later", "4.3.0" },
		{ "250 2.0.0 Ok: queued as X", "2.0.0" },
		{ "552 5.3.4 Message too big", "5.3.4" },
		{ "550 5.100.999 odd but valid", "5.100.999" },
		{ "550 4.1.1 class mismatch", "5.0.0" },
		{ "450 5.1.1 class mismatch", "4.0.0" },
		{ "550 User unknown", "5.0.0" },
		{ "554", "5.0.0" },
		{ "421 mx closing", "4.0.0" },
		{ "250 ok", "2.0.0" },
		{ "550 5.1.1234 too many digits", "5.0.0" },
		{ "550 5.1.1x trailing junk", "5.0.0" },
		{ "550 5.1 too short", "5.0.0" },
		{ "5500 5.1.1 four digits", "4.0.0" },
		{ "354 go ahead", "4.0.0" },
		{ "hello", "4.0.0" },
		{ "", "4.0.0" },
		{ NULL, "4.0.0" },
		{ "  550 5.2.2 leading blanks", "5.2.2" },
		{ "550 5.2.2\r\n", "5.2.2" },
	};
	char out[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'x', sizeof(out));
		bounce_status_from_reply(cases[i].reply, out);
		CHECK_STR(out, cases[i].want);
	}
}

static void
test_reply_of(void)
{
	char *r;

	r = bounce_reply_of("host mx.example.org[192.0.2.1]:25 said: 550 "
	    "5.1.1 unknown (in reply to RCPT TO command)");
	CHECK_STR(r, "550 5.1.1 unknown");
	free(r);
	r = bounce_reply_of("host mx.example.org[192.0.2.1]:25 refused to "
	    "talk to me: 421 4.3.2 busy");
	CHECK_STR(r, "421 4.3.2 busy");
	free(r);
	CHECK(bounce_reply_of("connect to mx.example.org[192.0.2.1]:25: "
	    "Connection refused") == NULL);
	CHECK(bounce_reply_of(NULL) == NULL);
}

static const struct bounce_rcpt failed_rcpts[] = {
	{ "a@example.org", "rfc822;alias@example.org", "failed", "5.1.1",
	  "mx.example.org", "550 5.1.1 <a@example.org>: Recipient address "
	  "rejected: User unknown in virtual mailbox table",
	  "in reply to RCPT TO command", NOW - 60 },
	{ "b@example.net", NULL, NULL, NULL, "mx2.example.net",
	  "554 5.7.1 Service unavailable; client host blocked", NULL, 0 },
	{ "c@example.com", NULL, "failed", "5.4.4", NULL, NULL,
	  "Host or domain name not found. Name service error for "
	  "name=example.com type=MX: Host not found", NOW - 30 },
};

static void
test_failed(void)
{
	struct source src = source_of(original, 7);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	const struct part *h, *d, *o;
	char *json;
	int st;

	info_init(&info, BOUNCE_FAILED, failed_rcpts, 3, &src);
	info.envid = "ENV-42";
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_INT(m.nparts, 3);
	CHECK_STR(top_header(&m, "Subject"),
	    "Undelivered Mail Returned to Sender");
	CHECK_STR(top_header(&m, "To"), "<alice@example.org>");
	CHECK_STR(top_header(&m, "Content-Transfer-Encoding"), "7bit");
	CHECK(strncmp(top_header(&m, "Message-ID"), "<20261125", 9) == 0);
	CHECK(strstr(top_header(&m, "Message-ID"), "." QID ".F") != NULL);
	CHECK(strstr(m.boundary, QID ".1795613231/" HOST) == m.boundary);
	h = &m.parts[0];
	d = &m.parts[1];
	o = &m.parts[2];
	CHECK(contains(h->body, h->bodylen,
	    "This is the mail system at host " HOST ".\r\n"));
	CHECK(contains(h->body, h->bodylen, "I'm sorry to have to inform"));
	CHECK(contains(h->body, h->bodylen, "<postmaster>"));
	CHECK(contains(h->body, h->bodylen,
	    "<a@example.org> (expanded from <alias@example.org>): host "
	    "mx.example.org said:\r\n    550 5.1.1 <a@example.org>: "
	    "Recipient address rejected: User unknown in\r\n    virtual "
	    "mailbox table (in reply to RCPT TO command)\r\n"));
	CHECK(contains(h->body, h->bodylen,
	    "(in reply to RCPT TO command)"));
	CHECK(contains(h->body, h->bodylen, "<b@example.net>: host "
	    "mx2.example.net said: 554 5.7.1 Service unavailable;"));
	CHECK(contains(h->body, h->bodylen, "<c@example.com>: Host or "
	    "domain name not found."));
	CHECK(!contains(h->body, h->bodylen, "bytes of your message"));

	CHECK_INT(dsn_nblocks(d), 4);
	CHECK_STR(rfield(d, 0, "Original-Envelope-Id"), "ENV-42");
	CHECK_STR(rfield(d, 0, "X-Mxlane-Sender"), "rfc822; alice@example.org");
	CHECK_STR(rfield(d, 1, "Original-Recipient"), "rfc822;alias@example.org");
	CHECK_STR(rfield(d, 1, "Final-Recipient"), "rfc822; a@example.org");
	CHECK_STR(rfield(d, 1, "Action"), "failed");
	CHECK_STR(rfield(d, 1, "Status"), "5.1.1");
	CHECK_STR(rfield(d, 1, "Remote-MTA"), "dns; mx.example.org");
	CHECK_STR(rfield(d, 1, "Diagnostic-Code"), "smtp; 550 5.1.1 "
	    "<a@example.org>: Recipient address rejected: User unknown in "
	    "virtual mailbox table");
	CHECK(date_ok(rfield(d, 1, "Last-Attempt-Date")));
	CHECK(!rhas(d, 1, "Will-Retry-Until"));
	CHECK(!rhas(d, 2, "Original-Recipient"));
	CHECK_STR(rfield(d, 2, "Final-Recipient"), "rfc822; b@example.net");
	CHECK_STR(rfield(d, 2, "Action"), "failed");
	CHECK_STR(rfield(d, 2, "Status"), "5.7.1");
	CHECK(!rhas(d, 2, "Last-Attempt-Date"));
	CHECK(!rhas(d, 3, "Original-Recipient"));
	CHECK(!rhas(d, 3, "Remote-MTA"));
	CHECK_STR(rfield(d, 3, "Status"), "5.4.4");
	CHECK(strncmp(rfield(d, 3, "Diagnostic-Code"), "X-mxlane; Host or "
	    "domain name not found.", 40) == 0);

	CHECK_STR(part_header(o, "Content-Type"), "message/rfc822");
	CHECK_STR(part_header(o, "Content-Description"), "Undelivered Message");
	CHECK_INT(o->bodylen, strlen(original));
	CHECK(o->bodylen == strlen(original) &&
	    memcmp(o->body, original, o->bodylen) == 0);

	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"kind\": \"failed\"") != NULL);
	CHECK(strstr(json, "\"envid\": \"ENV-42\"") != NULL);
	CHECK(strstr(json, "\"has_original\": true") != NULL);
	CHECK(strstr(json, "\"original_type\": \"message/rfc822\"") != NULL);
	CHECK(strstr(json, "\"original_message_id\": "
	    "\"<figures-1@example.org>\"") != NULL);
	check_json_rcpt(json, "failed", "550 5.1.1 <a@example.org>: Recipient "
	    "address rejected: User unknown in virtual mailbox table",
	    "a@example.org", "alias@example.org", "mx.example.org", "5.1.1");
	check_json_rcpt(json, "failed", "554 5.7.1 Service unavailable; client "
	    "host blocked", "b@example.net", NULL, "mx2.example.net", "5.7.1");
	check_json_rcpt(json, "failed", "Host or domain name not found. Name "
	    "service error for name=example.com type=MX: Host not found",
	    "c@example.com", NULL, NULL, "5.4.4");
	free(json);
done:
	buf_free(&out);
}

static void
test_delayed(void)
{
	static const struct bounce_rcpt rcpts[] = {
		{ "d@example.org", "rfc822;d@example.org", "delayed", "4.2.2",
		  "mx.example.org", "452 4.2.2 Mailbox full", NULL, NOW - 90 },
		{ "e@example.net", NULL, "delayed", "4.4.1", NULL, NULL,
		  "connect to mx.example.net[192.0.2.1]:25: Connection "
		  "refused", NOW - 80 },
	};
	struct source src = source_of(original, 4096);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	const struct part *h, *d, *o;
	const char *hdrs_end = strstr(original, "\r\n\r\n") + 2;
	char *json;
	int st;

	info_init(&info, BOUNCE_DELAYED, rcpts, 2, &src);
	info.ret = SPOOL_RET_FULL;	/* RET applies to failed reports only */
	if (!build_checked(&info, &out, &m))
		goto done;
	h = &m.parts[0];
	d = &m.parts[1];
	o = &m.parts[2];
	CHECK_INT(m.nparts, 3);
	CHECK_STR(top_header(&m, "Subject"),
	    "Delayed Mail (still being retried)");
	CHECK(strstr(top_header(&m, "Message-ID"), "." QID ".D") != NULL);
	CHECK(contains(h->body, h->bodylen, "# THIS IS A WARNING ONLY.  YOU "
	    "DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"));
	CHECK(contains(h->body, h->bodylen,
	    "could not be delivered for more than 4 hour(s).\r\n"));
	CHECK(contains(h->body, h->bodylen,
	    "It will be retried until it is 5 day(s) old.\r\n"));
	CHECK(contains(h->body, h->bodylen, "<e@example.net>: connect to "
	    "mx.example.net[192.0.2.1]:25: Connection refused\r\n"));
	/* ORCPT naming the same address is no expansion. */
	CHECK(!contains(h->body, h->bodylen, "expanded from"));
	CHECK_INT(dsn_nblocks(d), 3);
	CHECK(!rhas(d, 0, "Original-Envelope-Id"));
	CHECK_STR(rfield(d, 1, "Original-Recipient"), "rfc822;d@example.org");
	CHECK_STR(rfield(d, 1, "Action"), "delayed");
	CHECK_STR(rfield(d, 1, "Status"), "4.2.2");
	CHECK(date_ok(rfield(d, 1, "Will-Retry-Until")));
	CHECK(date_ok(rfield(d, 2, "Will-Retry-Until")));
	CHECK_STR(rfield(d, 2, "Diagnostic-Code"), "X-mxlane; connect to "
	    "mx.example.net[192.0.2.1]:25: Connection refused");
	CHECK_STR(part_header(o, "Content-Type"), "text/rfc822-headers");
	CHECK_STR(part_header(o, "Content-Description"),
	    "Undelivered Message Headers");
	CHECK_INT(o->bodylen, hdrs_end - original);
	CHECK(memcmp(o->body, original, (size_t)(hdrs_end - original)) == 0);

	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"kind\": \"delayed\"") != NULL);
	CHECK(strstr(json, "\"envid\": null") != NULL);
	CHECK(strstr(json, "\"original_type\": \"text/rfc822-headers\"") !=
	    NULL);
	CHECK(strstr(json, "\"original_subject\": \"quarterly figures\"") !=
	    NULL);
	check_json_rcpt(json, "delayed", "452 4.2.2 Mailbox full",
	    "d@example.org", "d@example.org", "mx.example.org", "4.2.2");
	check_json_rcpt(json, "delayed", "connect to mx.example.net"
	    "[192.0.2.1]:25: Connection refused", "e@example.net", NULL, NULL,
	    "4.4.1");
	free(json);
done:
	buf_free(&out);
}

static void
test_success(void)
{
	static const struct bounce_rcpt rcpts[] = {
		{ "f@example.org", NULL, "relayed", "2.0.0", "mx.example.org",
		  "250 2.0.0 Ok: queued as 4Zabc", NULL, NOW - 5 },
		{ "g@example.org", "rfc822;list@example.org", "delivered", NULL,
		  "mx.example.org", "250 Ok", NULL, NOW - 5 },
	};
	struct source src = source_of(original, 1);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	const struct part *h, *d, *o;
	char *json;
	int st;

	info_init(&info, BOUNCE_SUCCESS, rcpts, 2, &src);
	info.envid = "batch-7";
	if (!build_checked(&info, &out, &m))
		goto done;
	h = &m.parts[0];
	d = &m.parts[1];
	o = &m.parts[2];
	CHECK_STR(top_header(&m, "Subject"), "Successful Mail Delivery Report");
	CHECK(contains(h->body, h->bodylen, "<f@example.org>: delivery via "
	    "mx.example.org: 250 2.0.0 Ok: queued as 4Zabc\r\n"));
	CHECK(!contains(h->body, h->bodylen, "postmaster"));
	CHECK_STR(rfield(d, 1, "Action"), "relayed");
	CHECK_STR(rfield(d, 2, "Action"), "delivered");
	CHECK_STR(rfield(d, 2, "Status"), "2.0.0");
	CHECK(!rhas(d, 1, "Will-Retry-Until"));
	CHECK_STR(part_header(o, "Content-Type"), "text/rfc822-headers");
	CHECK_STR(part_header(o, "Content-Description"), "Message Headers");

	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"kind\": \"success\"") != NULL);
	CHECK(strstr(json, "\"envid\": \"batch-7\"") != NULL);
	check_json_rcpt(json, "relayed", "250 2.0.0 Ok: queued as 4Zabc",
	    "f@example.org", NULL, "mx.example.org", "2.0.0");
	check_json_rcpt(json, "delivered", "250 Ok", "g@example.org",
	    "list@example.org", "mx.example.org", "2.0.0");
	free(json);
done:
	buf_free(&out);
}

static void
test_ret_hdrs(void)
{
	struct source src = source_of(original, 3);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	const char *hdrs_end = strstr(original, "\r\n\r\n") + 2;
	char *json;
	int st;

	info_init(&info, BOUNCE_FAILED, failed_rcpts, 1, &src);
	info.ret = SPOOL_RET_HDRS;
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_INT(m.nparts, 3);
	CHECK_STR(part_header(&m.parts[2], "Content-Type"),
	    "text/rfc822-headers");
	CHECK_INT(m.parts[2].bodylen, hdrs_end - original);
	CHECK(!contains(m.parts[2].body, m.parts[2].bodylen, "Hello"));
	CHECK(contains(m.parts[0].body, m.parts[0].bodylen,
	    "Its headers are attached below."));
	CHECK_INT(dsn_nblocks(&m.parts[1]), 2);
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"original_type\": \"text/rfc822-headers\"") !=
	    NULL);
	free(json);

	/* RET=FULL and no RET both give the whole message. */
	info.ret = SPOOL_RET_FULL;
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_STR(part_header(&m.parts[2], "Content-Type"), "message/rfc822");
	CHECK_INT(m.parts[2].bodylen, strlen(original));
	CHECK(contains(m.parts[0].body, m.parts[0].bodylen,
	    "It is attached below."));
done:
	buf_free(&out);
}

static void
test_truncation(void)
{
	struct buf big = BUF_INIT, out = BUF_INIT;
	struct bounce_info info;
	struct source src;
	struct mime m;
	const struct part *o;
	char *json, note[128];
	int st;

	buf_puts(&big, "Subject: big\r\nMessage-ID: <big@example.org>\r\n\r\n");
	for (int i = 0; i < 500; i++)
		buf_printf(&big, "line %04d of a long message body\r\n", i);
	src = source_of(big.data, 64);
	info_init(&info, BOUNCE_FAILED, failed_rcpts, 2, &src);
	info.max_original = 1000;
	if (!build_checked(&info, &out, &m))
		goto done;
	o = &m.parts[2];
	CHECK(o->bodylen <= 1000);
	CHECK(o->bodylen > 1000 - 40);
	CHECK(memcmp(o->body, big.data, o->bodylen) == 0);
	CHECK(o->bodylen >= 2 && memcmp(o->body + o->bodylen - 2, "\r\n",
	    2) == 0);
	snprintf(note, sizeof(note), "Only the first %zu bytes of your "
	    "message are attached", o->bodylen);
	CHECK(contains(m.parts[0].body, m.parts[0].bodylen, note));
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"original_message_id\": \"<big@example.org>\"") !=
	    NULL);
	free(json);

	/* A limit the message fits in exactly changes nothing. */
	info.max_original = big.len;
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_INT(m.parts[2].bodylen, big.len);
	CHECK(!contains(m.parts[0].body, m.parts[0].bodylen, "Only the first"));

	/* A first line longer than the limit leaves nothing to attach. */
	buf_reset(&big);
	for (int i = 0; i < 3000; i++)
		buf_putc(&big, 'x');
	buf_puts(&big, "\r\n\r\nbody\r\n");
	src = source_of(big.data, 512);
	info.max_original = 100;
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_INT(m.parts[2].bodylen, 0);
	CHECK(contains(m.parts[0].body, m.parts[0].bodylen,
	    "Only the first 0 bytes"));
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	free(json);
done:
	buf_free(&big);
	buf_free(&out);
}

static void
test_boundary_collision(void)
{
	struct buf evil = BUF_INIT, out = BUF_INIT;
	struct bounce_info info;
	struct source src;
	struct mime m;
	char first[128], second[128];
	char *json;
	int st;

	snprintf(first, sizeof(first), "%s.%lld/%s", QID, (long long)NOW,
	    HOST);
	snprintf(second, sizeof(second), "%s.%lld.1/%s", QID, (long long)NOW,
	    HOST);
	buf_printf(&evil, "Subject: tricky\r\nContent-Type: multipart/mixed; "
	    "boundary=\"%s\"\r\n\r\n--%s\r\n\r\nhi\r\n--%s\r\n\r\nthere\r\n"
	    "--%s--\r\n", first, first, second, first);
	src = source_of(evil.data, 5);
	info_init(&info, BOUNCE_FAILED, failed_rcpts, 3, &src);
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK(strcmp(m.boundary, first) != 0);
	CHECK(strcmp(m.boundary, second) != 0);
	CHECK(strstr(evil.data, m.boundary) == NULL);
	CHECK_INT(m.nparts, 3);
	CHECK_INT(m.parts[2].bodylen, evil.len);
	CHECK(memcmp(m.parts[2].body, evil.data, evil.len) == 0);
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	CHECK(strstr(json, "\"original_type\": \"message/rfc822\"") != NULL);
	free(json);

	/* A remote reply quoting the boundary is no way in either. */
	struct bounce_rcpt r = failed_rcpts[0];
	char diag[256];

	snprintf(diag, sizeof(diag), "550 5.7.1 --%s", first);
	r.diagnostic = diag;
	info_init(&info, BOUNCE_FAILED, &r, 1, NULL);
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK(strcmp(m.boundary, first) != 0);
	CHECK_INT(m.nparts, 2);
done:
	buf_free(&evil);
	buf_free(&out);
}

static void
test_sanitise(void)
{
	struct buf diag = BUF_INIT, out = BUF_INIT;
	struct bounce_rcpt r[2];
	struct bounce_info info;
	struct source src = source_of(original, 4096);
	struct mime m;
	const struct part *d, *h;
	char *json;
	int st;

	buf_puts(&diag, "550-5.7.1 first line\r\n550-5.7.1 \tcaf\xc3\xa9 "
	    "\x01\x7f na\xefve\r\n550 5.7.1 ");
	for (int i = 0; i < 150; i++)
		buf_puts(&diag, "blah ");
	for (int i = 0; i < 1500; i++)
		buf_putc(&diag, 'W');
	memset(r, 0, sizeof(r));
	r[0].address = "h@example.org\r\nBcc: victim@example.net";
	r[0].action = "failed";
	r[0].status = "5.7.1\r\nX-Injected: yes";
	r[0].remote_mta = "mx.example.org\r\n";
	r[0].diagnostic = diag.data;
	r[1].address = "j\xc3\xbc@example.org";
	r[1].action = "bogus";
	r[1].status = "5.1";
	r[1].reason = "line one\nline two\rline three";
	info_init(&info, BOUNCE_FAILED, r, 2, &src);
	info.envid = "ENV\r\nSubject: injected";
	info.original_sender = "alice@example.org\r\nCc: x@example.net";
	if (!build_checked(&info, &out, &m))
		goto done;
	h = &m.parts[0];
	d = &m.parts[1];
	CHECK(!contains(out.data, out.len, "\r\nBcc:"));
	CHECK(!contains(out.data, out.len, "\r\nX-Injected:"));
	CHECK(!contains(out.data, out.len, "\r\nSubject: injected"));
	CHECK(!contains(out.data, out.len, "\r\nCc:"));
	CHECK_STR(rfield(d, 0, "Original-Envelope-Id"),
	    "ENV Subject: injected");
	CHECK_STR(rfield(d, 1, "Final-Recipient"),
	    "rfc822; h@example.org Bcc: victim@example.net");
	/* Only the code at the start of a Status is used. */
	CHECK_STR(rfield(d, 1, "Status"), "5.7.1");
	CHECK_STR(rfield(d, 1, "Remote-MTA"), "dns; mx.example.org");
	CHECK(strncmp(rfield(d, 1, "Diagnostic-Code"), "smtp; 550-5.7.1 first "
	    "line 550-5.7.1 caf? ?? na?ve 550 5.7.1 blah blah", 66) == 0);
	CHECK(strstr(rfield(d, 1, "Diagnostic-Code"), "...") != NULL);
	CHECK_STR(rfield(d, 2, "Final-Recipient"), "rfc822; j?@example.org");
	CHECK_STR(rfield(d, 2, "Action"), "failed");
	/* A malformed Status, no reply: the kind's default. */
	CHECK_STR(rfield(d, 2, "Status"), "5.0.0");
	CHECK_STR(rfield(d, 2, "Diagnostic-Code"),
	    "X-mxlane; line one line two line three");
	CHECK(contains(h->body, h->bodylen,
	    "<j?@example.org>: line one line two line three\r\n"));
	CHECK_STR(top_header(&m, "To"), "<alice@example.org Cc: x@example.net>");
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	free(json);
done:
	buf_free(&diag);
	buf_free(&out);
}

static void
test_line_ends(void)
{
	static const char messy[] = "Subject: messy\nX-A: 1\r\n\r\nbare LF\n"
	    "bare CR\rCRLF\r\nno end";
	static const char clean[] = "Subject: messy\r\nX-A: 1\r\n\r\nbare LF"
	    "\r\nbare CR\r\nCRLF\r\nno end\r\n";
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;

	for (size_t chunk = 1; chunk <= 8; chunk++) {
		struct source src = source_of(messy, chunk);

		info_init(&info, BOUNCE_FAILED, failed_rcpts, 1, &src);
		if (!build_checked(&info, &out, &m))
			break;
		CHECK_INT(m.parts[2].bodylen, strlen(clean));
		CHECK(m.parts[2].bodylen == strlen(clean) &&
		    memcmp(m.parts[2].body, clean, strlen(clean)) == 0);
	}
	buf_free(&out);
}

static void
test_eightbit_original(void)
{
	static const char latin[] = "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 cr\xc3\xa8me\r\n";
	struct source src = source_of(latin, 10);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	char *json;
	int st;

	info_init(&info, BOUNCE_FAILED, failed_rcpts, 1, &src);
	if (!build_checked(&info, &out, &m))
		goto done;
	CHECK_STR(top_header(&m, "Content-Transfer-Encoding"), "8bit");
	CHECK_STR(part_header(&m.parts[2], "Content-Transfer-Encoding"),
	    "8bit");
	CHECK(m.parts[2].bodylen == strlen(latin) &&
	    memcmp(m.parts[2].body, latin, strlen(latin)) == 0);
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	free(json);
done:
	buf_free(&out);
}

static void
test_no_original_and_errors(void)
{
	struct source src = source_of(original, 16);
	struct bounce_info info;
	struct buf out = BUF_INIT;
	struct mime m;
	char *json;
	int st;

	info_init(&info, BOUNCE_FAILED, failed_rcpts, 3, NULL);
	if (build_checked(&info, &out, &m)) {
		CHECK_INT(m.nparts, 2);
		CHECK(!contains(m.parts[0].body, m.parts[0].bodylen,
		    "attached"));
		json = dsncheck(&out, &st);
		CHECK_INT(st, 0);
		CHECK(strstr(json, "\"has_original\": false") != NULL);
		free(json);
	}

	/* A read error leaves out as it was, even one at the very end. */
	src.fail = true;
	info_init(&info, BOUNCE_FAILED, failed_rcpts, 3, &src);
	buf_reset(&out);
	buf_puts(&out, "keep");
	CHECK_INT(bounce_build(&info, NOW, &out), -1);
	CHECK_STR(out.data, "keep");
	src.chunk = 4096;
	CHECK_INT(bounce_build(&info, NOW, &out), -1);
	CHECK_STR(out.data, "keep");
	/* After bounce.c stopped the reader, the reader's "error" is not one. */
	info.ret = SPOOL_RET_HDRS;
	CHECK_INT(bounce_build(&info, NOW, &out), 0);
	info.ret = SPOOL_RET_FULL;
	info.max_original = 20;
	CHECK_INT(bounce_build(&info, NOW, &out), 0);

	/* No recipients: no DSN (RFC 3464 needs one). */
	info_init(&info, BOUNCE_FAILED, failed_rcpts, 0, NULL);
	buf_reset(&out);
	CHECK_INT(bounce_build(&info, NOW, &out), -1);
	CHECK_INT(out.len, 0);

	/* An empty sender and host still give a valid report. */
	info_init(&info, BOUNCE_FAILED, failed_rcpts, 1, NULL);
	info.original_sender = "";
	info.reporting_mta = NULL;
	buf_reset(&out);
	CHECK_INT(bounce_build(&info, NOW, &out), 0);
	CHECK(contains(out.data, out.len, "\r\nTo: undisclosed-recipients:;"
	    "\r\n"));
	CHECK(contains(out.data, out.len, "Reporting-MTA: dns; localhost\r\n"));
	json = dsncheck(&out, &st);
	CHECK_INT(st, 0);
	free(json);
	buf_free(&out);
}

/* The checker itself must refuse what is not a DSN. */
static void
test_dsncheck_refuses(void)
{
	struct buf msg = BUF_INIT;
	char *json;
	int st;

	buf_puts(&msg, "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n");
	json = dsncheck_run(&msg, &st, false);
	CHECK(st != 0);
	free(json);
	buf_reset(&msg);
	buf_puts(&msg, "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\n"
	    "Content-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: "
	    "message/delivery-status\r\n\r\nReporting-MTA: dns; h\r\n\r\n"
	    "Final-Recipient: rfc822; a@b\r\nAction: exploded\r\n"
	    "Status: 5.0.0\r\n\r\n--b--\r\n");
	json = dsncheck_run(&msg, &st, false);
	CHECK(st != 0);
	free(json);
	buf_free(&msg);
}

/* An alias table for bounce_postmaster(): "name: t1, t2" lines. */
static const char *const *pm_table;
static int pm_lookups;

static int
pm_lookup(void *ctx, const char *name, char ***targets, size_t *n)
{
	(void)ctx;
	pm_lookups++;
	for (const char *const *e = pm_table; *e; e++) {
		size_t len = strcspn(*e, ":");
		if (strlen(name) != len || strncmp(*e, name, len) != 0)
			continue;
		char *copy = xstrdup(*e + len + 1), *save = NULL;
		*targets = NULL;
		*n = 0;
		for (char *t = strtok_r(copy, ", ", &save); t;
		    t = strtok_r(NULL, ", ", &save)) {
			*targets = xrealloc(*targets, (*n + 1) * sizeof(char *));
			(*targets)[(*n)++] = xstrdup(t);
		}
		free(copy);
		return 0;
	}
	return -1;
}

/* The addresses, joined by " " in the order found, or "-" for none. */
static char *
pm_expand(const char *const *table, int *rc)
{
	char **addrs = NULL;
	size_t n = 0;
	struct buf b = BUF_INIT;

	pm_table = table;
	pm_lookups = 0;
	*rc = bounce_postmaster("example.org", pm_lookup, NULL, &addrs, &n);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "%s%s", i ? " " : "", addrs[i]);
		free(addrs[i]);
	}
	free(addrs);
	return n ? buf_steal(&b) : xstrdup("-");
}

static void
test_postmaster(void)
{
	static const char *const none[] = { "root: admin@x.example", NULL };
	static const char *const plain[] = {
	    "postmaster: root", "root: ops, Admin@X.example, \\keep",
	    "ops: alice@x.example, admin@x.EXAMPLE, bob, alice@X.Example",
	    NULL };
	static const char *const loop[] = {
	    "postmaster: root, pm@y.example", "root: postmaster, admin",
	    "admin: root", NULL };
	static const char *const special[] = {
	    "postmaster: |/usr/bin/logger, /var/mail/pm", NULL };
	static const char *const diamond[] = {
	    "postmaster: a, b", "a: c, c", "b: c", "c: d@z.example",
	    "postmaster@example.org: nope", NULL };
	static const char *const self[] = { "postmaster: postmaster", NULL };
	char deep[64][48];
	const char *chain[66];
	char *got;
	int rc;

	got = pm_expand(none, &rc);
	CHECK_INT(rc, -1);
	CHECK_STR(got, "-");
	free(got);
	/* Names are looked up again; addresses with '@' and \name are
	 * final; bob is no alias; the same address twice is one. */
	got = pm_expand(plain, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "alice@x.example admin@x.EXAMPLE bob@example.org "
	    "Admin@X.example keep@example.org");
	free(got);
	/* A loop ends at the name that closes it. */
	got = pm_expand(loop, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "postmaster@example.org root@example.org pm@y.example");
	free(got);
	got = pm_expand(self, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "postmaster@example.org");
	free(got);
	/* Nothing is delivered locally: an alias of programs has no one. */
	got = pm_expand(special, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "-");
	free(got);
	/* c is looked up once however often it is reached. */
	got = pm_expand(diamond, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "d@z.example");
	CHECK_INT(pm_lookups, 4);
	free(got);
	/* A chain deeper than the bound stops, at the name it reached. */
	chain[0] = "postmaster: n1";
	for (int i = 1; i < 64; i++) {
		snprintf(deep[i], sizeof(deep[i]), "n%d: n%d", i, i + 1);
		chain[i] = deep[i];
	}
	chain[64] = "n64: end@z.example";
	chain[65] = NULL;
	got = pm_expand(chain, &rc);
	CHECK_INT(rc, 1);
	snprintf(deep[0], sizeof(deep[0]), "n%d@example.org",
	    BOUNCE_ALIAS_DEPTH + 1);
	CHECK_STR(got, deep[0]);
	free(got);
}

int
main(void)
{
	setenv("TZ", "UTC", 1);
	test_postmaster();
	test_status_from_reply();
	test_reply_of();
	test_failed();
	test_delayed();
	test_success();
	test_ret_hdrs();
	test_truncation();
	test_boundary_collision();
	test_sanitise();
	test_line_ends();
	test_eightbit_original();
	test_no_original_and_errors();
	test_dsncheck_refuses();
	return unit_done("bounce");
}
