/*
 * NAME
 *	submit - from a parsed message and envelope to a queued message
 * DESCRIPTION
 *	See submit.h. The headers that name the queue id (Received:,
 *	Message-ID:) are written once the maildrop has handed out the id
 *	(maildrop_create names the file after it), and the message is then
 *	written whole into that file.
 */
#include "sendmail/submit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "sendmail/address.h"
#include "route/route.h"
#include "sendmail/aliases.h"
#include "sendmail/headercheck.h"
#include "sendmail/limits.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "spool/maildrop.h"

struct rcpt_set {
	struct spool_rcpt *list;
	size_t n;
	size_t cap;
	struct addr_set seen;	/* the list's addresses */
};

struct header_ctx {
	const struct submitter *who;
	const struct submit_request *req;
	struct message *m;
	time_t now;
	char *message_id;	/* the one stored, for the log */
};

static bool
has_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

static bool
has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

int
submit_check_address(const struct mxl_config *cfg, const char *text,
    bool is_sender, char **out, char *err, size_t errlen)
{
	char *addr = NULL, why[256];
	const char *what = is_sender ? "sender" : "recipient";

	if (has_crlf(text)) {
		snprintf(err, errlen, "%s address contains CR or LF", what);
		return EX_DATAERR;
	}
	if (address_envelope_parse(text, is_sender, &addr, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "bad %s address \"%s\": %s", what, text,
		    why);
		return is_sender ? EX_DATAERR : EX_NOUSER;
	}
	if (*addr == '\0') {
		*out = addr;
		return 0;
	}
	*out = address_qualify(addr, cfg->myorigin);
	free(addr);
	return 0;
}

static void
rcpt_set_add(struct rcpt_set *set, const char *address, const char *orcpt,
    uint32_t notify)
{
	char *copy = xstrdup(address);

	if (addr_set_add(&set->seen, copy) != NULL) {
		free(copy);
		return;
	}
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 8;
		set->list = xrealloc(set->list, set->cap * sizeof(*set->list));
	}
	struct spool_rcpt *r = &set->list[set->n++];
	memset(r, 0, sizeof(*r));
	r->address = copy;
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
	r->notify = notify;
	r->state = RCPT_QUEUED;
}

static int
alias_lookup(void *ctx, const char *name, char ***targets, size_t *n)
{
	return aliasmap_lookup(ctx, name, targets, n) == SPOOL_OK ? 0 : -1;
}

static void
alias_warn(void *ctx, const char *message)
{
	(void)ctx;
	log_warn("%s", message);
	log_stderr("warning: %s", message);
}

/* Qualifies, expands aliases and adds one recipient to the set. */
static void
add_recipient(const struct submitter *who, bool aliases, struct rcpt_set *set,
    const char *address, const char *orcpt, uint32_t notify)
{
	struct addr_list in = ADDR_LIST_INIT, out = ADDR_LIST_INIT;
	char *qualified = address_qualify(address, who->cfg->myorigin);

	if (!aliases) {
		rcpt_set_add(set, qualified, orcpt, notify);
		free(qualified);
		return;
	}
	addr_list_add_unique(&in, qualified);
	aliases_expand(&in, who->cfg->myorigin, alias_lookup, alias_warn,
	    who->aliases, &out);
	for (size_t i = 0; i < out.n; i++)
		rcpt_set_add(set, out.addrs[i], orcpt, notify);
	addr_list_free(&in);
	addr_list_free(&out);
	free(qualified);
}

/* -t: the addresses in To/Cc/Bcc, or Resent-To/Cc/Bcc when resent. */
static int
extract_recipients(struct message *m, struct addr_list *out, char *err,
    size_t errlen)
{
	static const char *plain[] = {"To", "Cc", "Bcc"};
	static const char *resent[] = {"Resent-To", "Resent-Cc", "Resent-Bcc"};
	const char **names = plain;

	for (size_t i = 0; i < m->nheaders; i++)
		if (!m->headers[i].deleted &&
		    str_ncasecmp_ascii(m->headers[i].name, "Resent-", 7) == 0)
			names = resent;
	for (size_t k = 0; k < 3; k++) {
		size_t pos = 0;
		struct header *h;
		while ((h = message_find(m, names[k], &pos)) != NULL) {
			char *value = header_value(h), why[256];
			int rc = address_list_parse(value, strlen(value), out,
			    why, sizeof(why));
			if (rc != 0) {
				snprintf(err, errlen, "bad address in %s: "
				    "header \"%.100s\": %s", names[k], value,
				    why);
				free(value);
				return EX_NOUSER;
			}
			free(value);
		}
	}
	return 0;
}

static void
format_date(char *out, size_t len, time_t t)
{
	struct tm tm;
	char zone[16];

	localtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
	strftime(zone, sizeof(zone), " (%Z)", &tm);
	if (strlen(out) + strlen(zone) < len)
		strcat(out, zone);
}

/*
 * The full name as it may go into a header we write. It comes from -F
 * or the password file, not from a message: control characters (ESC
 * sequences for the reader's terminal, BEL, a line break that would
 * start a field of its own) are taken out, and the white space ones
 * (TAB, CR, LF) become one space.
 */
static char *
clean_fullname(const char *name)
{
	struct buf b = BUF_INIT;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '\t' || *p == '\r' || *p == '\n') {
			if (b.len > 0 && b.data[b.len - 1] != ' ')
				buf_putc(&b, ' ');
		} else if (*p >= 32 && *p != 127) {
			buf_putc(&b, *p);
		}
	}
	return str_trim(buf_steal(&b));
}

/* "Name <addr>", quoting the name when it holds RFC 5322 specials. */
static void
format_from(struct buf *b, const char *fullname, const char *addr)
{
	char *name = clean_fullname(fullname ? fullname : "");

	if (*name == '\0') {
		buf_printf(b, "From: %s\r\n", addr);
		free(name);
		return;
	}
	bool quote = strpbrk(name, "()<>[]:;@\\,.\"") != NULL;
	buf_puts(b, "From: ");
	if (quote) {
		buf_putc(b, '"');
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *p);
		}
		buf_putc(b, '"');
	} else {
		buf_puts(b, name);
	}
	buf_printf(b, " <%s>\r\n", addr);
	free(name);
}

static void
build_headers(void *vctx, const char *queue_id, struct buf *out)
{
	struct header_ctx *ctx = vctx;
	const struct submitter *who = ctx->who;
	const char *host = who->cfg->myhostname;
	char date[80];

	format_date(date, sizeof(date), ctx->now);
	buf_printf(out, "Received: by %s (mxlane, from userid %u)\r\n"
	    "\tid %s; %s\r\n", host, (unsigned)who->uid, queue_id, date);
	for (size_t i = 0; i < ctx->m->nheaders; i++)
		if (!ctx->m->headers[i].deleted)
			buf_append(out, ctx->m->headers[i].raw,
			    ctx->m->headers[i].raw_len);
	if (!message_has(ctx->m, "From")) {
		const char *from = *ctx->req->sender ? ctx->req->sender : NULL;
		char *fallback = NULL;
		if (from == NULL)
			from = fallback = xasprintf("%s@%s", who->user,
			    who->cfg->myorigin);
		format_from(out, who->fullname, from);
		free(fallback);
	}
	if (!message_has(ctx->m, "Date"))
		buf_printf(out, "Date: %s\r\n", date);
	free(ctx->message_id);
	size_t pos = 0;
	struct header *mid = message_find(ctx->m, "Message-ID", &pos);
	if (mid) {
		ctx->message_id = header_value(mid);
	} else {
		struct tm tm;
		char stamp[32];
		gmtime_r(&ctx->now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		ctx->message_id = xasprintf("<%s.%s@%s>", stamp, queue_id,
		    host);
		buf_printf(out, "Message-ID: %s\r\n", ctx->message_id);
	}
	buf_append(out, "\r\n", 2);
}

static void
log_queued(const struct submitter *who, const struct spool_msg *msg,
    const char *message_id)
{
	log_set_component("pickup");
	log_info("%s: uid=%u from=<%s>", msg->id, (unsigned)who->uid,
	    msg->sender);
	log_set_component("cleanup");
	log_info("%s: message-id=%s", msg->id, message_id ? message_id : "");
	log_set_component("qmgr");
	log_info("%s: from=<%s>, size=%llu, nrcpt=%u (queue %s)",
	    msg->id, msg->sender, (unsigned long long)msg->size, msg->nrcpt,
	    msg->flags & SPOOL_MSG_HELD ? "hold" : "active");
	log_set_component(NULL);
}

/* The live headers, as the lane rules walk them. */
struct header_walk {
	struct message *m;
	size_t i;		/* the i-th live header ... */
	size_t k;		/* ... is m->headers[k] */
};

/*
 * Offers the live headers to the lane rules, one at a time. route_lane()
 * asks for 0, 1, 2, ... for each lane, so the walk goes on from the
 * header it gave last instead of counting from the first again (which
 * made a lane's walk quadratic in the number of headers).
 */
static const char *
next_header(void *ctx, size_t i, char **value)
{
	struct header_walk *w = ctx;
	struct message *m = w->m;
	size_t k = 0, seen = 0;

	if (i > 0 && i == w->i + 1) {
		k = w->k + 1;
		seen = i;
	}
	for (; k < m->nheaders; k++) {
		if (m->headers[k].deleted)
			continue;
		if (seen++ == i) {
			w->i = i;
			w->k = k;
			*value = header_value(&m->headers[k]);
			return m->headers[k].name;
		}
	}
	return NULL;
}

int
submit_message(const struct submitter *who, const struct submit_request *req,
    struct message *m, char queue_id[SPOOL_ID_SIZE], const char **lane_out,
    char *err, size_t errlen)
{
	struct rcpt_set set = {NULL, 0, 0, ADDR_SET_INIT};
	struct addr_list from_headers = ADDR_LIST_INIT;
	bool aliases = aliasmap_built(who->aliases);
	struct header_verdict verdict;
	struct limits_ticket ticket;
	int rc = 0;

	memset(&verdict, 0, sizeof(verdict));
	memset(&ticket, 0, sizeof(ticket));
	if (req->reply && req->replylen > 0)
		req->reply[0] = '\0';

	for (size_t i = 0; i < req->nrcpts; i++)
		add_recipient(who, aliases, &set, req->rcpts[i].address,
		    req->rcpts[i].orcpt, req->rcpts[i].notify);
	if (req->extract_rcpts) {
		if ((rc = extract_recipients(m, &from_headers, err,
		    errlen)) != 0)
			goto out;
		for (size_t i = 0; i < from_headers.n; i++)
			add_recipient(who, aliases, &set, from_headers.addrs[i],
			    NULL, req->header_notify);
	}
	if (set.n == 0) {
		snprintf(err, errlen, "%s", req->extract_rcpts ?
		    "no recipient addresses found in message header" :
		    "no recipients specified");
		rc = EX_USAGE;
		goto out;
	}
	/* Postfix removes Bcc: always, with or without -t. */
	message_delete(m, "Bcc");
	message_delete(m, "Resent-Bcc");
	/*
	 * Return-Path: is the final delivery's to add (RFC 5321 4.4); one
	 * from the submitter would go to the MX exactly as stored.
	 */
	message_delete(m, "Return-Path");

	struct spool_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.sender = (char *)req->sender;
	msg.envid = (char *)req->envid;
	msg.ret = (enum spool_ret)req->ret;
	msg.body = (enum spool_body)req->body;
	char why[256];
	struct route_submitter rs = {who->user, req->sender, who->admin};
	struct header_walk walk = {m, SIZE_MAX, 0};
	bool refused;
	const char *lane = route_lane(who->cfg, req->lane, &rs, next_header,
	    &walk, &refused, why, sizeof(why));
	if (refused) {
		log_warn("uid=%u user=%s: -O Lane=%s not allowed; lane %s (%s)",
		    (unsigned)who->uid, who->user, req->lane, lane, why);
		log_stderr("warning: -O Lane=%s is not allowed for %s; the lane "
		    "rules chose %s (%s)", req->lane, who->user, lane, why);
	}
	headercheck_apply(who->cfg, who->user, lane, req->sender, m, &verdict);
	if (verdict.reject) {
		snprintf(err, errlen, "message refused: %s; message not "
		    "queued", verdict.reject);
		if (req->reply)
			snprintf(req->reply, req->replylen, "550 %s",
			    verdict.reject);
		rc = EX_DATAERR;
		goto out;
	}
	if (verdict.lane)
		lane = verdict.lane;
	/* Chosen by the lane rules, requeue may choose again (admin.c). */
	else if (req->lane == NULL || refused)
		msg.flags |= SPOOL_MSG_LANE_BY_RULES;
	if (verdict.hold)
		msg.flags |= SPOOL_MSG_HELD;
	/* Counted last: what is refused for other reasons never counts. */
	switch (limits_take(who, set.n, &ticket, err, errlen)) {
	case LIMITS_REFUSE:
		if (req->reply)
			snprintf(req->reply, req->replylen, "451 4.7.1 %s",
			    err);
		rc = EX_TEMPFAIL;
		goto out;
	case LIMITS_HOLD:
		msg.flags |= SPOOL_MSG_HELD;
		break;
	case LIMITS_PASS:
		break;
	}
	msg.lane = (char *)lane;
	if (lane_out)
		*lane_out = lane;
	msg.uid = (uint32_t)who->uid;
	msg.user = (char *)who->user;

	/* Room for the file: content, envelope, recipients and a margin. */
	unsigned long long need = m->body.len + 65536ULL + 1024ULL * set.n;
	for (size_t i = 0; i < m->nheaders; i++)
		need += m->headers[i].raw_len;
	if (!proc_fsize_allows(need)) {
		snprintf(err, errlen, "the file size limit (RLIMIT_FSIZE) is "
		    "below this message's %llu bytes; message not queued",
		    need);
		rc = EX_TEMPFAIL;
		limits_give_back(who, &ticket);
		goto out;
	}
	struct maildrop_file drop;
	if (maildrop_create(who->spool_dirfd, &drop) != 0) {
		snprintf(err, errlen, "cannot create a queue file in %s/%s: "
		    "%s; message not queued, try again later",
		    who->cfg->spool_directory, MAILDROP_DIR, strerror(errno));
		rc = EX_TEMPFAIL;
		limits_give_back(who, &ticket);
		goto out;
	}
	struct header_ctx hctx = {who, req, m, time(NULL), NULL};
	struct buf head = BUF_INIT;
	build_headers(&hctx, drop.id, &head);
	memcpy(msg.id, drop.id, SPOOL_ID_SIZE);
	msg.arrival = drop.arrival;
	msg.size = head.len + m->body.len;
	/*
	 * Content with 8-bit octets is declared as such (RFC 6152),
	 * whatever -B said: the MX is told BODY=8BITMIME when it offers it.
	 */
	if (has_8bit(head.data, head.len) ||
	    has_8bit(m->body.data, m->body.len))
		msg.body = SPOOL_BODY_8BITMIME;
	msg.nrcpt = (uint32_t)set.n;
	if (maildrop_commit(&drop, &msg, set.list, set.n, head.data, head.len,
	    m->body.data ? m->body.data : "", m->body.len, who->batch) != 0) {
		snprintf(err, errlen, "cannot write the queue file in %s/%s: "
		    "%s; message not queued, try again later",
		    who->cfg->spool_directory, MAILDROP_DIR, strerror(errno));
		rc = EX_TEMPFAIL;
		limits_give_back(who, &ticket);
	} else {
		/* From here on, whatever happens, the message is queued. */
		if (who->batch == NULL)
			proc_committed = 1;
		memcpy(queue_id, msg.id, SPOOL_ID_SIZE);
		headercheck_log(&verdict, msg.id);
		limits_log(who, &ticket, msg.id);
		log_queued(who, &msg, hctx.message_id);
	}
	buf_free(&head);
	free(hctx.message_id);
out:
	headercheck_free(&verdict);
	addr_list_free(&from_headers);
	addr_set_free(&set.seen);
	for (size_t i = 0; i < set.n; i++)
		spool_rcpt_clear(&set.list[i]);
	free(set.list);
	return rc;
}
