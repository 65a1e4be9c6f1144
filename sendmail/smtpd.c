/*
 * NAME
 *	smtpd - "sendmail -bs": an SMTP conversation on stdin/stdout
 * SYNOPSIS
 *	#include "sendmail/smtpd.h"
 *
 *	int smtpd_run(FILE *in, FILE *out, const struct smtpd_hooks *hooks);
 * DESCRIPTION
 *	The server side of RFC 5321 for a local client that forks sendmail
 *	and talks to its stdin/stdout (Symfony Mailer's SendmailTransport
 *	with -bs, Laravel, Nextcloud). Replies follow Postfix's smtpd word
 *	for word where Postfix has an answer, so clients written against
 *	Postfix's sendmail -bs see nothing new.
 *
 *	Replies are buffered and flushed each time the server is about to
 *	wait for input (before every command line and after 354). That is
 *	the one condition that matters for PIPELINING: the server never
 *	sits on a reply while the client waits for it, and an EHLO answer
 *	still leaves in one write.
 *
 *	The client is as hostile as any other input. Command lines are
 *	held to 2048 bytes however long they are; a command line with a
 *	NUL, CR or other control character is refused (addresses go into
 *	header fields later). Message content is read byte by byte into
 *	one buffer that never holds more than size_limit + 3 bytes; past
 *	that it is read to the end dot and thrown away.
 *
 *	End of data: when the DATA command itself ended in CRLF, lines of
 *	content end only at CRLF and the end is CRLF "." CRLF; a bare LF
 *	is content. A client that already speaks bare LF (a shell script)
 *	gets bare LF lines and "." LF as the end. A CRLF client such as
 *	Symfony dot-stuffs only after CRLF, so LF "." LF inside a message
 *	it relays must not end the data: the rest would run as commands
 *	of the client's session (SMTP smuggling).
 *
 *	A client that sends nothing for hooks->timeout seconds while the
 *	server waits for it (a command, or more DATA) gets Postfix's
 *	"421 4.4.2 Error: timeout exceeded" and the session ends; a message
 *	it was sending is discarded. The time counts per wait, as Postfix's
 *	smtpd_timeout does: a client trickling a byte at a time is not idle.
 * DIAGNOSTICS
 *	smtpd_run() returns 0 after QUIT, EOF, or the 421 that ends a
 *	session with too many errors; EX_TEMPFAIL after the 421 for a
 *	silent client; EX_IOERR when a reply could not be written or stdin
 *	could not be read.
 * SEE ALSO
 *	RFC 5321, RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3461 (DSN),
 *	smtpd(8) and sendmail(1) of Postfix
 */
#include "sendmail/smtpd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "spool/spool.h"
#include "lib/util.h"

#define LINE_MAX_BYTES	2048	/* command line without its line end */
#define RCPT_MAX	1000	/* per transaction, as Postfix */
#define ERROR_MAX	100	/* protocol errors before 421 */
#define REPLY_MAX	512	/* hook reply buffer */
#define ENVID_MAX	100	/* RFC 3461 section 4.4 */
#define ORCPT_MAX	500	/* RFC 3461 section 4.2 */

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

enum step { STEP_NEXT, STEP_END, STEP_READ_ERROR, STEP_TIMEOUT };

struct smtpd {
	FILE *in;
	FILE *out;
	const struct smtpd_hooks *hooks;
	const char *hostname;
	uint64_t limit;			/* content bytes, 0 = none */
	struct buf line;		/* the command being handled */
	bool crlf;			/* it ended in CRLF, not bare LF */
	bool toolong;
	int errors;
	bool write_failed;
	bool sync_failed;		/* held messages were lost: 421 sent */
	int timeout_ms;			/* silence allowed per read, 0 = any */
	bool timed_out;
	char *helo;			/* "" until HELO/EHLO */
	bool in_mail;			/* MAIL accepted */
	uint64_t declared;		/* MAIL FROM SIZE= */
	struct smtpd_envelope env;
	size_t rcpt_cap;
	struct buf data;
	struct buf replies;		/* held until flush() */
	size_t unsynced;		/* messages accepted since hooks->sync */
};

/* Held replies go out at the latest after this many messages or bytes. */
#define SYNC_EVERY	64
#define HELD_MAX	(64 * 1024)

typedef int (*check_fn)(void *, const char *, char *, size_t);

static void reply(struct smtpd *, const char *, ...) MXL_PRINTF(2, 3);
static enum step refuse(struct smtpd *, const char *, ...) MXL_PRINTF(2, 3);

static void
vreply(struct smtpd *s, const char *fmt, va_list ap)
{
	if (s->write_failed)
		return;
	buf_vprintf(&s->replies, fmt, ap);
	buf_append(&s->replies, "\r\n", 2);
}

static void
reply(struct smtpd *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
}

/* A refusal the client earned; ERROR_MAX of them end the session. */
static enum step
refuse(struct smtpd *s, const char *fmt, ...)
{
	va_list ap;

	s->errors++;
	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
	return STEP_NEXT;
}

/*
 * Sends the held replies, after making the messages they acknowledge
 * durable. If that fails, none of those replies may be sent: the
 * client gets 421 instead and retries every message it has no reply
 * for, none of which was kept.
 */
static void
flush(struct smtpd *s)
{
	if (s->unsynced > 0 && s->hooks->sync != NULL &&
	    s->hooks->sync(s->hooks->ctx) != 0) {
		buf_reset(&s->replies);
		buf_printf(&s->replies, "421 4.3.0 %s Error: queue file write "
		    "error\r\n", s->hostname);
		s->sync_failed = true;
	}
	s->unsynced = 0;
	if (!s->write_failed && s->replies.len > 0 &&
	    (fwrite(s->replies.data, 1, s->replies.len, s->out) !=
	    s->replies.len || fflush(s->out) != 0))
		s->write_failed = true;
	buf_reset(&s->replies);
	if (s->sync_failed)
		s->write_failed = true;
}

/*
 * Has the client already sent more (pipelining)? Then replies may wait.
 * Input in stdio's buffer is looked at through glibc's FILE fields;
 * elsewhere only the descriptor is asked, which merely holds fewer.
 */
static bool
input_buffered(struct smtpd *s)
{
#ifdef __GLIBC__
	return s->in->_IO_read_ptr < s->in->_IO_read_end;
#else
	(void)s;
	return false;
#endif
}

static bool
input_waiting(struct smtpd *s)
{
	if (input_buffered(s))
		return true;
	struct pollfd p = {fileno(s->in), POLLIN, 0};
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/*
 * Before a read that could block: the client may be waiting for a held
 * reply (the 354 it did not wait for, but a reply nonetheless).
 */
static void
flush_before_waiting(struct smtpd *s)
{
	if ((s->replies.len > 0 || s->unsynced > 0) && !input_waiting(s))
		flush(s);
}

/*
 * Waits until the client has sent something (or closed its end), for
 * at most smtpd_timeout. Returns false once that passed in silence.
 * A stream without a descriptor (a memory stream) never blocks. EINTR
 * restarts the wait with its full time: a signal is not client input,
 * but neither does it occur often enough to keep a session alive.
 */
static bool
await_input(struct smtpd *s)
{
	struct pollfd p = {fileno(s->in), POLLIN, 0};
	int n;

	if (s->timeout_ms <= 0 || p.fd < 0 || input_buffered(s))
		return true;
	while ((n = poll(&p, 1, s->timeout_ms)) < 0 && errno == EINTR)
		continue;
	if (n == 0) {
		s->timed_out = true;
		return false;
	}
	return true;		/* readable, hung up, or an error getc sees */
}

/* Forgets the open transaction, if any; nothing of it is queued. */
static void
txn_reset(struct smtpd *s)
{
	size_t i;

	free(s->env.sender);
	free(s->env.envid);
	for (i = 0; i < s->env.nrcpt; i++) {
		free(s->env.rcpts[i].address);
		free(s->env.rcpts[i].orcpt);
	}
	free(s->env.rcpts);
	memset(&s->env, 0, sizeof(s->env));
	s->rcpt_cap = 0;
	s->in_mail = false;
	s->declared = 0;
	buf_free(&s->data);
}

/*
 * Makes a hook's reply safe to send: one line, and of the class its
 * return value promised, so a sloppy hook can neither break the
 * framing nor make a refusal look like success.
 */
static const char *
hook_text(char *text, size_t size, const char *classes,
    const char *fallback)
{
	text[size - 1] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	if (text[0] == '\0' || strchr(classes, text[0]) == NULL)
		return fallback;
	if (text[1] < '0' || text[1] > '9' || text[2] < '0' ||
	    text[2] > '9' || (text[3] != ' ' && text[3] != '\0'))
		return fallback;
	return text;
}

/* Returns 0 when the address may be used, else -1 after refusing it. */
static int
run_check(struct smtpd *s, check_fn check, const char *address,
    const char *fallback)
{
	char text[REPLY_MAX];

	if (check == NULL)
		return 0;
	text[0] = '\0';
	if (check(s->hooks->ctx, address, text, sizeof(text)) == 0)
		return 0;
	refuse(s, "%s", hook_text(text, sizeof(text), "45", fallback));
	return -1;
}

/*
 * Reads one command line into s->line without its line end. Returns 1,
 * 0 at EOF (a last line without LF is dropped: the client is gone and
 * could not read the answer), -1 on a read error or -2 when the client
 * fell silent for smtpd_timeout. Only the first
 * LINE_MAX_BYTES + 1 bytes are kept, whatever the client sends.
 */
static int
read_command(struct smtpd *s)
{
	struct buf *b = &s->line;
	int c;

	buf_reset(b);
	s->toolong = false;
	for (;;) {
		if (!input_buffered(s)) {
			flush_before_waiting(s);
			if (!await_input(s))
				return -2;
		}
		if ((c = getc(s->in)) == '\n')
			break;
		if (c == EOF)
			return ferror(s->in) ? -1 : 0;
		if (b->len <= LINE_MAX_BYTES)
			buf_putc(b, c);
		else
			s->toolong = true;
	}
	s->crlf = b->len > 0 && b->data[b->len - 1] == '\r';
	if (s->crlf)
		b->data[--b->len] = '\0';
	if (b->len > LINE_MAX_BYTES)
		s->toolong = true;
	return 1;
}

static bool
has_control(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

/* True for the line that ends DATA, given its first bytes and length. */
static bool
is_end_of_data(const char *head, size_t linelen, bool crlf_only)
{
	if (linelen == 3 && memcmp(head, ".\r\n", 3) == 0)
		return true;
	return !crlf_only && linelen == 2 && memcmp(head, ".\n", 2) == 0;
}

/*
 * Reads content up to the end dot into s->data, undoing dot-stuffing
 * and keeping line ends as received. Once the content passes s->limit
 * it is dropped and *oversize set, but reading goes on to the end dot
 * so the client and server stay in step. Returns 0 at the end dot, 1
 * at EOF, -1 on a read error, -2 when the client fell silent for
 * smtpd_timeout.
 *
 * The size test is exact at each line end. Within a line it allows 2
 * bytes of slack: the line may still turn out to be the end dot, whose
 * line end is stored until then, yet s->data never grows past the
 * limit by more than those 2 bytes and the one just read.
 */
static int
read_data(struct smtpd *s, bool crlf_only, bool *oversize)
{
	char head[3];
	size_t linelen = 0, start = 0, slack;
	int c, prev = 0;

	*oversize = false;
	buf_reset(&s->data);
	for (;;) {
		if (!input_buffered(s)) {
			flush_before_waiting(s);
			if (!await_input(s))
				return -2;
		}
		if ((c = getc(s->in)) == EOF)
			break;
		if (linelen < sizeof(head))
			head[linelen] = (char)c;
		if (!*oversize && !(linelen == 0 && c == '.'))
			buf_putc(&s->data, c);
		linelen++;
		slack = 2;
		if (c == '\n' && (!crlf_only || prev == '\r')) {
			if (is_end_of_data(head, linelen, crlf_only))
				break;
			start = s->data.len;
			linelen = 0;
			slack = 0;
		}
		prev = c;
		if (s->limit && s->data.len > s->limit + slack) {
			*oversize = true;
			buf_free(&s->data);
			start = 0;
		}
	}
	if (c == EOF)
		return ferror(s->in) ? -1 : 1;
	if (!*oversize) {
		s->data.len = start;
		s->data.data[start] = '\0';
	}
	return 0;
}

/*
 * Where the path that starts after '<' ends: the '>' outside a quoted
 * string, so that "<\"a>b\"@x>" is one address. NULL if there is none.
 */
static char *
path_end(char *p)
{
	bool quoted = false;

	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			return p;
	}
	return NULL;
}

/*
 * Splits "FROM:<addr> params" (prefix "FROM:" or "TO:") in place.
 * Tolerates a blank after the colon and, like Postfix, an address
 * without angle brackets. A source route ("@a,@b:u@c") is dropped, as
 * RFC 5321 section 4.1.1.3 allows. Returns 0 or -1 on bad syntax.
 */
static int
parse_path(char *args, const char *prefix, char **addr, char **params)
{
	size_t n = strlen(prefix);
	char *p, *end;

	if (str_ncasecmp_ascii(args, prefix, n) != 0)
		return -1;
	p = args + n;
	p += strspn(p, " \t");
	if (*p == '<') {
		*addr = ++p;
		if ((end = path_end(p)) == NULL)
			return -1;
		*end = '\0';
		p = end + 1;
		if (*p != '\0' && *p != ' ' && *p != '\t')
			return -1;
	} else {
		*addr = p;
		p += strcspn(p, " \t");
		if (p == *addr)
			return -1;
		if (*p != '\0')
			*p++ = '\0';
	}
	if (**addr == '@' && (end = strchr(*addr, ':')) != NULL)
		*addr = end + 1;
	*params = p;
	return 0;
}

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Decodes RFC 3461 xtext, or returns NULL. Only printable ASCII may
 * come out: ENVID and ORCPT end up in DSN header fields, where an
 * encoded CR or LF would start a field of the client's choosing.
 */
static char *
xtext_decode(const char *p)
{
	struct buf b = BUF_INIT;
	int c, hi, lo;

	if (*p == '\0')
		return NULL;
	for (; *p != '\0'; p++) {
		c = (unsigned char)*p;
		if (c == '+') {
			if ((hi = hex_value(p[1])) < 0 ||
			    (lo = hex_value(p[2])) < 0)
				goto err;
			c = hi << 4 | lo;
			p += 2;
			if (c < 0x20 || c > 0x7e)
				goto err;
		} else if (c < 0x21 || c > 0x7e || c == '=')
			goto err;
		buf_putc(&b, c);
	}
	return buf_steal(&b);
err:
	buf_free(&b);
	return NULL;
}

/* MAIL FROM and RCPT TO parameters; parse() returns 0 or -1. */
struct param {
	const char *name;
	int (*parse)(void *target, const char *value);
	const char *bad;	/* reply when the value does not parse */
};

static int
param_size(void *target, const char *v)
{
	struct smtpd *s = target;
	uint64_t n = 0;

	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		/* Saturate: any absurd size is simply too big. */
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(*v - '0');
	}
	s->declared = n;
	return 0;
}

static int
param_body(void *target, const char *v)
{
	struct smtpd *s = target;

	if (str_casecmp_ascii(v, "7BIT") == 0)
		s->env.body = SPOOL_BODY_7BIT;
	else if (str_casecmp_ascii(v, "8BITMIME") == 0)
		s->env.body = SPOOL_BODY_8BITMIME;
	else
		return -1;
	return 0;
}

static int
param_ret(void *target, const char *v)
{
	struct smtpd *s = target;

	if (str_casecmp_ascii(v, "FULL") == 0)
		s->env.ret = SPOOL_RET_FULL;
	else if (str_casecmp_ascii(v, "HDRS") == 0)
		s->env.ret = SPOOL_RET_HDRS;
	else
		return -1;
	return 0;
}

static int
param_envid(void *target, const char *v)
{
	struct smtpd *s = target;

	if (strlen(v) > ENVID_MAX)
		return -1;
	s->env.envid = xtext_decode(v);
	return s->env.envid ? 0 : -1;
}

static uint32_t
notify_bit(const char *word, size_t len)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} words[] = {
		{ "NEVER", SPOOL_NOTIFY_NEVER },
		{ "SUCCESS", SPOOL_NOTIFY_SUCCESS },
		{ "FAILURE", SPOOL_NOTIFY_FAILURE },
		{ "DELAY", SPOOL_NOTIFY_DELAY },
	};
	size_t i;

	for (i = 0; i < NITEMS(words); i++)
		if (strlen(words[i].name) == len &&
		    str_ncasecmp_ascii(word, words[i].name, len) == 0)
			return words[i].bit;
	return 0;
}

static int
param_notify(void *target, const char *v)
{
	struct smtpd_rcpt *r = target;
	uint32_t bits = 0, bit;
	size_t len;

	for (;;) {
		len = strcspn(v, ",");
		if ((bit = notify_bit(v, len)) == 0 || (bits & bit))
			return -1;
		bits |= bit;
		if (v[len] == '\0')
			break;
		v += len + 1;
	}
	/* RFC 3461 section 4.1: NEVER stands alone. */
	if ((bits & SPOOL_NOTIFY_NEVER) && bits != SPOOL_NOTIFY_NEVER)
		return -1;
	r->notify = bits;
	return 0;
}

/* ORCPT=addr-type;xtext is kept as "addr-type;decoded". */
static int
param_orcpt(void *target, const char *v)
{
	struct smtpd_rcpt *r = target;
	const char *semi = strchr(v, ';'), *p;
	char *decoded;

	if (semi == NULL || semi == v || strlen(v) > ORCPT_MAX)
		return -1;
	for (p = v; p < semi; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-'))
			return -1;
	if ((decoded = xtext_decode(semi + 1)) == NULL)
		return -1;
	r->orcpt = xasprintf("%.*s;%s", (int)(semi - v), v, decoded);
	free(decoded);
	return 0;
}

static const struct param mail_params[] = {
	{ "SIZE", param_size, "501 5.5.4 Bad SIZE syntax" },
	{ "BODY", param_body, "501 5.5.4 Bad BODY keyword value" },
	{ "RET", param_ret, "501 5.5.4 Bad RET parameter syntax" },
	{ "ENVID", param_envid, "501 5.5.4 Bad ENVID parameter syntax" },
};

static const struct param rcpt_params[] = {
	{ "NOTIFY", param_notify, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "ORCPT", param_orcpt, "501 5.5.4 Bad ORCPT parameter syntax" },
};

/*
 * Applies "KEY=VALUE ..." to target. Returns 0, or -1 after the
 * refusal. A repeated parameter is refused rather than letting the
 * last one win: the client is confused, and we would leak the first.
 */
static int
parse_params(struct smtpd *s, char *p, const struct param *tab, size_t n,
    void *target)
{
	unsigned seen = 0;
	char *key, *val;
	size_t i;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			return 0;
		key = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		if ((val = strchr(key, '=')) != NULL)
			*val++ = '\0';
		for (i = 0; i < n; i++)
			if (str_casecmp_ascii(key, tab[i].name) == 0)
				break;
		if (i == n) {
			refuse(s, "555 5.5.4 Unsupported option: %s", key);
			return -1;
		}
		if (val == NULL || (seen & 1u << i) ||
		    tab[i].parse(target, val) == -1) {
			refuse(s, "%s", tab[i].bad);
			return -1;
		}
		seen |= 1u << i;
	}
}

static void
set_helo(struct smtpd *s, const char *name)
{
	/* RFC 5321 section 4.1.4: a new EHLO/HELO is an implied RSET. */
	txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(name);
}

static enum step
cmd_helo(struct smtpd *s, char *args)
{
	if (*args == '\0')
		return refuse(s, "501 Syntax: HELO hostname");
	set_helo(s, args);
	reply(s, "250 %s", s->hostname);
	return STEP_NEXT;
}

static enum step
cmd_ehlo(struct smtpd *s, char *args)
{
	if (*args == '\0')
		return refuse(s, "501 Syntax: EHLO hostname");
	set_helo(s, args);
	reply(s, "250-%s", s->hostname);
	reply(s, "250-PIPELINING");
	if (s->limit)
		reply(s, "250-SIZE %llu", (unsigned long long)s->limit);
	else
		reply(s, "250-SIZE");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-8BITMIME");
	reply(s, "250 DSN");
	return STEP_NEXT;
}

static enum step
cmd_mail(struct smtpd *s, char *args)
{
	char *addr, *params;

	if (s->in_mail)
		return refuse(s, "503 5.5.1 Error: nested MAIL command");
	if (parse_path(args, "FROM:", &addr, &params) == -1)
		return refuse(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
	s->env.sender = xstrdup(addr);
	if (parse_params(s, params, mail_params, NITEMS(mail_params),
	    s) == -1)
		goto err;
	if (s->limit && s->declared > s->limit) {
		refuse(s, "552 5.3.4 Message size exceeds fixed limit");
		goto err;
	}
	if (run_check(s, s->hooks->check_sender, s->env.sender,
	    "553 5.1.7 Bad sender address syntax") == -1)
		goto err;
	s->in_mail = true;
	reply(s, "250 2.1.0 Ok");
	return STEP_NEXT;
err:
	txn_reset(s);
	return STEP_NEXT;
}

static void
rcpt_append(struct smtpd *s, const struct smtpd_rcpt *r)
{
	if (s->env.nrcpt == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		s->env.rcpts = xrealloc(s->env.rcpts,
		    s->rcpt_cap * sizeof(*s->env.rcpts));
	}
	s->env.rcpts[s->env.nrcpt++] = *r;
}

static enum step
cmd_rcpt(struct smtpd *s, char *args)
{
	struct smtpd_rcpt r = { NULL, NULL, 0 };
	char *addr, *params;

	if (!s->in_mail)
		return refuse(s, "503 5.5.1 Error: need MAIL command");
	/* Not counted as an error: a big list is not a confused client. */
	if (s->env.nrcpt >= RCPT_MAX) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return STEP_NEXT;
	}
	if (parse_path(args, "TO:", &addr, &params) == -1)
		return refuse(s, "501 5.5.4 Syntax: RCPT TO:<address>");
	if (*addr == '\0')
		return refuse(s, "501 5.1.3 Bad recipient address syntax");
	if (parse_params(s, params, rcpt_params, NITEMS(rcpt_params),
	    &r) == -1)
		goto err;
	if (run_check(s, s->hooks->check_rcpt, addr,
	    "553 5.1.3 Bad recipient address syntax") == -1)
		goto err;
	r.address = xstrdup(addr);
	rcpt_append(s, &r);
	reply(s, "250 2.1.5 Ok");
	return STEP_NEXT;
err:
	free(r.orcpt);
	return STEP_NEXT;
}

/* Hands the complete message over; the reply waits for the hook. */
static void
deliver(struct smtpd *s)
{
	char text[REPLY_MAX];
	int rc = -1;

	text[0] = '\0';
	s->env.helo = s->helo;
	if (s->hooks->message != NULL)
		rc = s->hooks->message(s->hooks->ctx, &s->env,
		    s->data.data ? s->data.data : "", s->data.len, text,
		    sizeof(text));
	if (rc == 0) {
		/* Postfix's hard error limit counts "without delivering". */
		s->errors = 0;
		s->unsynced++;
		reply(s, "%s", hook_text(text, sizeof(text), "2",
		    "250 2.0.0 Ok"));
	} else
		refuse(s, "%s", hook_text(text, sizeof(text), "45",
		    "451 4.3.0 Error: queue file write error"));
}

static enum step
cmd_data(struct smtpd *s, char *args)
{
	bool oversize;
	int r;

	if (*args != '\0')
		return refuse(s, "501 5.5.4 Syntax: DATA");
	if (!s->in_mail)
		return refuse(s, "503 5.5.1 Error: need RCPT command");
	if (s->env.nrcpt == 0)
		return refuse(s, "554 5.5.1 Error: no valid recipients");
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	/* A client that sent its data without waiting needs no 354 yet. */
	if (!input_waiting(s) || s->unsynced >= SYNC_EVERY ||
	    s->replies.len >= HELD_MAX)
		flush(s);
	if (s->write_failed)
		return STEP_NEXT;
	r = read_data(s, s->crlf, &oversize);
	if (r == 0 && oversize)
		refuse(s, "552 5.3.4 Error: message file too big");
	else if (r == 0)
		deliver(s);
	/* Whatever stopped short of the end dot is discarded whole. */
	txn_reset(s);
	if (r == 1)
		return STEP_END;
	if (r == -2)
		return STEP_TIMEOUT;
	return r == -1 ? STEP_READ_ERROR : STEP_NEXT;
}

static enum step
cmd_rset(struct smtpd *s, char *args)
{
	(void)args;
	txn_reset(s);
	reply(s, "250 2.0.0 Ok");
	return STEP_NEXT;
}

static enum step
cmd_noop(struct smtpd *s, char *args)
{
	(void)args;
	reply(s, "250 2.0.0 Ok");
	return STEP_NEXT;
}

static enum step
cmd_quit(struct smtpd *s, char *args)
{
	(void)args;
	reply(s, "221 2.0.0 Bye");
	return STEP_END;
}

static enum step
cmd_vrfy(struct smtpd *s, char *args)
{
	if (*args == '\0')
		return refuse(s, "501 5.5.4 Syntax: VRFY address");
	reply(s, "252 2.0.0 Send some mail, I'll try my best");
	return STEP_NEXT;
}

static enum step
cmd_help(struct smtpd *s, char *args)
{
	(void)args;
	reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP "
	    "QUIT VRFY HELP");
	return STEP_NEXT;
}

/* There is no TLS to start on a pipe to a local process. */
static enum step
cmd_starttls(struct smtpd *s, char *args)
{
	(void)args;
	return refuse(s, "502 5.5.1 Error: command not implemented");
}

/* The local user is known from the process; there is nothing to prove. */
static enum step
cmd_auth(struct smtpd *s, char *args)
{
	(void)args;
	return refuse(s, "503 5.5.1 Error: authentication not enabled");
}

static const struct {
	const char *name;
	enum step (*run)(struct smtpd *, char *);
} commands[] = {
	{ "HELO", cmd_helo },
	{ "EHLO", cmd_ehlo },
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "QUIT", cmd_quit },
	{ "VRFY", cmd_vrfy },
	{ "HELP", cmd_help },
	{ "STARTTLS", cmd_starttls },
	{ "AUTH", cmd_auth },
};

static enum step
run_command(struct smtpd *s)
{
	char *verb = s->line.data, *args;
	size_t i;

	if (s->toolong)
		return refuse(s, "500 5.5.0 Error: line too long");
	if (has_control(s->line.data, s->line.len))
		return refuse(s, "500 5.5.2 Error: bad syntax");
	str_trim(verb);
	if (*verb == '\0')
		return refuse(s, "500 5.5.2 Error: bad syntax");
	args = verb + strcspn(verb, " \t");
	if (*args != '\0') {
		*args++ = '\0';
		args += strspn(args, " \t");
	}
	for (i = 0; i < NITEMS(commands); i++)
		if (str_casecmp_ascii(verb, commands[i].name) == 0)
			return commands[i].run(s, args);
	return refuse(s, "502 5.5.2 Error: command not recognized");
}

static enum step
next_command(struct smtpd *s)
{
	if (s->errors >= ERROR_MAX) {
		reply(s, "421 4.7.0 %s Error: too many errors", s->hostname);
		return STEP_END;
	}
	/* About to wait for the client: it must have every reply by now. */
	if (!input_waiting(s) || s->unsynced >= SYNC_EVERY ||
	    s->replies.len >= HELD_MAX)
		flush(s);
	if (s->write_failed)
		return STEP_END;
	switch (read_command(s)) {
	case 0:
		return STEP_END;
	case -1:
		return STEP_READ_ERROR;
	case -2:
		return STEP_TIMEOUT;
	default:
		return run_command(s);
	}
}

int
smtpd_run(FILE *in, FILE *out, const struct smtpd_hooks *hooks)
{
	struct smtpd s;
	enum step step;

	memset(&s, 0, sizeof(s));
	s.in = in;
	s.out = out;
	s.hooks = hooks;
	s.hostname = hooks->hostname ? hooks->hostname : "localhost";
	s.limit = hooks->size_limit > 0 ? (uint64_t)hooks->size_limit : 0;
	if (hooks->timeout > 0)
		s.timeout_ms = hooks->timeout < INT_MAX / 1000 ?
		    hooks->timeout * 1000 : INT_MAX;
	s.helo = xstrdup("");
	/* Room for the longest line we keep, so line.data is never NULL. */
	buf_reserve(&s.line, LINE_MAX_BYTES + 2);

	reply(&s, "220 %s ESMTP mxlane", s.hostname);
	do
		step = next_command(&s);
	while (step == STEP_NEXT);
	/* Postfix's words; every earlier reply has left before the wait. */
	if (step == STEP_TIMEOUT)
		reply(&s, "421 4.4.2 %s Error: timeout exceeded", s.hostname);
	flush(&s);

	txn_reset(&s);
	free(s.helo);
	buf_free(&s.line);
	buf_free(&s.replies);
	if (step == STEP_TIMEOUT)
		return EX_TEMPFAIL;
	return s.write_failed || step == STEP_READ_ERROR ? EX_IOERR : 0;
}
