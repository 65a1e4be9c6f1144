/*
 * NAME
 *	deliver - one destination's messages over SMTP with libESMTP
 * DESCRIPTION
 *	See deliver.h for the rules. libESMTP runs the whole conversation
 *	inside smtp_start_session(); we learn what happened from its event
 *	callback (a message accepted after DATA), from the status of each
 *	message and recipient afterwards, and from the protocol monitor,
 *	which hands us the server's lines so that a refused greeting can be
 *	reported with the server's own words.
 *
 *	Content is streamed from the spool one 64 KiB chunk at a time, so a
 *	50 MB message costs 64 KiB of memory. If a chunk cannot be read the
 *	connection is shut down mid-DATA: the server never sees the final
 *	dot, so a truncated message is never accepted.
 */
#include "queuerun/deliver.h"

#include <errno.h>
/* Before libesmtp.h, which declares its TLS calls only after it. */
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "queuerun/connect.h"
#include "queuerun/longlines.h"
#include "queuerun/wire.h"
#include "lib/log.h"

volatile int deliver_stop;

/*
 * Streams one message's content. libESMTP gets an empty line first (see
 * wire.h: so that it treats the whole message as body), then the
 * message's DKIM-Signature fields, if it is signed, and then the stored
 * message, with over-long lines made short (longlines.h): what the
 * signature covers.
 */
struct content_reader {
	struct spool *sp;
	const char *id;
	smtp_message_t msg;
	bool eight_bit;		/* BODY=8BITMIME when the server offers it */
	uint64_t expected;	/* the envelope's size: all must come */
	uint64_t read;
	uint32_t chunk;
	bool eof;
	bool failed;
	bool started;		/* the leading empty line was handed out */
	struct buf raw;
	struct buf out;
	struct longlines lines;	/* over-long lines made short */
	const char *signature;	/* DKIM-Signature fields to go first */
	bool signed_out;	/* they went out */
	/*
	 * Its MAIL FROM went out pipelined (wire.h), and the server's real
	 * reply to it, which libESMTP never saw: code 0 if none came.
	 */
	bool piped;
	bool piped_noted;
	smtp_status_t mail;
};

struct session {
	const struct dlv_config *cfg;
	struct spool *sp;
	const struct dns_host *host;
	char relay[320];
	struct buf last_reply;	/* the server's most recent reply line */
	struct buf greeting;	/* its first reply line (the greeting) */
	bool tls;
	bool tls_attempted;
	bool no_tls;
	char tls_problem[400];	/* why TLS is not verified, "" if it is */
	bool ext_8bitmime_missing;
	bool bodies_declared;	/* BODY=8BITMIME asked for where due */
	size_t sent;		/* recipients sent in this session */
	bool limited;		/* the server left work for a new session */
	struct content_reader *readers;
	size_t nreaders;
	struct content_reader *piped;	/* its real MAIL reply not noted */
	double t_start;
	double t_connected;
	dlv_done_fn done;
	void *done_ctx;
};

static SSL_CTX *tls_ctx;
static SSL_CTX *verify_ctx;	/* MTA-STS: loaded with ca_file */
static char *verify_ctx_file;
static char verify_host[256];	/* the MX host the session goes to */

/* The session in progress, for keepalive_tick(): one at a time. */
static const struct dlv_config *in_progress;
static double last_keepalive;

/* Lets the runner extend its claims while libESMTP has the control. */
static void
keepalive_tick(void)
{
	if (in_progress == NULL || in_progress->keepalive == NULL)
		return;
	double now = mono_seconds();
	if (now - last_keepalive < in_progress->keepalive_interval)
		return;
	last_keepalive = now;
	in_progress->keepalive(in_progress->keepalive_ctx);
}

/* One printable line: replies end up in logs, mailq and bounces. */
static char *
one_line(const char *text)
{
	struct buf b = BUF_INIT;

	for (const char *p = text; p && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c < 32 || c > 126)
			c = '?';
		if (c == ' ' && b.len > 0 && b.data[b.len - 1] == ' ')
			continue;
		buf_putc(&b, c);
	}
	char *s = buf_steal(&b);
	return str_trim(s);
}

static char *
status_text(const smtp_status_t *st)
{
	struct buf b = BUF_INIT;
	char *text = one_line(st->text ? st->text : "");

	if (st->enh_class > 0)
		buf_printf(&b, "%d %d.%d.%d %s", st->code, st->enh_class,
		    st->enh_subject, st->enh_detail, text);
	else
		buf_printf(&b, "%d %s", st->code, text);
	free(text);
	char *s = buf_steal(&b);
	return str_trim(s);
}

/* Content streaming. */

static void
reader_rewind(struct content_reader *r)
{
	r->chunk = 0;
	r->read = 0;
	r->eof = false;
	r->failed = false;
	r->started = false;
	r->signed_out = false;
	buf_reset(&r->out);
	longlines_reset(&r->lines);
}

static const char *
content_cb(void **state, int *len, void *arg)
{
	struct content_reader *r = arg;

	(void)state;
	keepalive_tick();
	if (len == NULL) {
		reader_rewind(r);
		wire_drop_generated_header();
		return NULL;
	}
	buf_reset(&r->out);
	if (!r->started) {
		r->started = true;
		*len = 2;
		return "\r\n";
	}
	if (r->eof || r->failed) {
		*len = 0;
		return NULL;
	}
	if (r->signature && !r->signed_out) {
		r->signed_out = true;
		*len = (int)strlen(r->signature);
		return r->signature;
	}
	int rc = spool_read_chunk(r->sp, r->id, r->chunk, &r->raw);
	if (rc == SPOOL_NOTFOUND && r->read == r->expected) {
		r->eof = true;
		/* A last line without its line end. */
		const struct buf *rest = longlines_rest(&r->lines);
		*len = (int)rest->len;
		return rest->len ? rest->data : NULL;
	}
	/* Unreadable, or gone before all of it came (removed meanwhile). */
	if (rc != SPOOL_OK) {
		/* Never let a short message look complete: drop the line. */
		r->failed = true;
		log_error("%s: cannot read content chunk %u; connection "
		    "abandoned", r->id, r->chunk);
		connect_abort_current();
		*len = 0;
		return NULL;
	}
	r->chunk++;
	r->read += r->raw.len;
	longlines_feed(&r->lines, r->raw.data, r->raw.len, &r->out);
	*len = (int)r->out.len;
	return r->out.data;
}

/* Outcomes. */

static void
set_outcome(struct dlv_rcpt *r, enum dlv_outcome outcome, const char *reply,
    bool from_server, const char *stage)
{
	r->outcome = outcome;
	free(r->reply);
	r->reply = reply ? one_line(reply) : NULL;
	r->smtp_reply = from_server;
	r->stage = stage;
}

static void
remember_error(struct dlv_msg *m, const char *error, bool permanent)
{
	free(m->last_error);
	m->last_error = one_line(error);
	m->last_error_permanent = permanent;
}

static bool
msg_all_decided(struct dlv_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].outcome == DLV_PENDING)
			return false;
	return true;
}

static void
finish_msg(struct session *s, struct dlv_msg *m)
{
	if (m->done || !msg_all_decided(m))
		return;
	m->done = true;
	snprintf(m->relay, sizeof(m->relay), "%s", s->relay);
	snprintf(m->relay_host, sizeof(m->relay_host), "%s", s->host->name);
	double end = mono_seconds();
	m->connect_seconds = s->t_connected > 0 ? s->t_connected - s->t_start :
	    end - s->t_start;
	m->transfer_seconds = s->t_connected > 0 ? end - s->t_connected : 0;
	m->tls = s->tls;
	s->done(s->done_ctx, m);
}

/*
 * 452 to a RCPT of a transaction the server went on to accept is its
 * limit of recipients per message (RFC 5321 4.5.3.1.10), not a verdict
 * on the recipient: the rest go in a new transaction, not to the queue.
 */
static bool
rcpt_limit(const smtp_status_t *rcpt, const smtp_status_t *data)
{
	return rcpt->code == 452 && data->code >= 200 && data->code < 300 &&
	    (rcpt->enh_class == 0 || (rcpt->enh_subject == 5 &&
	    rcpt->enh_detail == 3));
}

struct rcpt_walk {
	struct session *s;
	struct dlv_msg *m;
	const smtp_status_t *data;
	bool lost_in_data;
	char *session_error;
};

static void
walk_rcpt(smtp_recipient_t rcpt, const char *mailbox, void *arg)
{
	struct rcpt_walk *w = arg;
	struct dlv_rcpt *r = smtp_recipient_get_application_data(rcpt);
	const smtp_status_t *st = smtp_recipient_status(rcpt);

	(void)mailbox;
	if (r == NULL || r->outcome != DLV_PENDING)
		return;
	char *text = st->code ? status_text(st) : NULL;
	if (rcpt_limit(st, w->data)) {
		w->s->limited = true;	/* stays pending: a new transaction */
	} else if (st->code >= 500) {
		set_outcome(r, DLV_BOUNCE, text, true, "RCPT TO");
	} else if (st->code >= 400) {
		set_outcome(r, DLV_DEFER, text, true, "RCPT TO");
	} else if (st->code >= 200 && st->code < 300) {
		int dc = w->data->code;
		char *dtext = dc ? status_text(w->data) : NULL;
		if (dc >= 200 && dc < 300) {
			set_outcome(r, DLV_SENT, dtext, true, "end of DATA");
			w->s->sent++;
		}
		else if (dc >= 500)
			set_outcome(r, DLV_BOUNCE, dtext, true, "end of DATA");
		else if (dc >= 400) {
			char *why = xasprintf("host %s said: %s (in reply to "
			    "end of DATA command)", w->s->relay, dtext);
			remember_error(w->m, why, false);	/* next host */
			free(why);
		}
		else
			w->lost_in_data = true;
		free(dtext);
	}
	/* st->code == 0: never got to this RCPT; try the next host. */
	free(text);
}

/*
 * Decides what can be decided about one message after the session (or
 * after its DATA reply). Recipients still pending go to the next host.
 */
static struct content_reader *
reader_of(struct session *s, smtp_message_t msg)
{
	for (size_t i = 0; i < s->nreaders; i++)
		if (s->readers[i].msg == msg)
			return &s->readers[i];
	return NULL;
}

/*
 * A pipelined MAIL's real reply, parsed as libESMTP would have: code,
 * enhanced code when there is one, the text of every line.
 */
static void
parse_reply(const char *reply, smtp_status_t *st)
{
	struct buf text = BUF_INIT;

	memset(st, 0, sizeof(*st));
	if (reply == NULL)
		return;
	st->code = atoi(reply);
	for (const char *l = reply; *l; ) {
		const char *end = strchr(l, '\n');
		end = end ? end + 1 : l + strlen(l);
		const char *p = (size_t)(end - l) > 4 ? l + 4 : end;
		int a, b, c, n = 0;
		if (sscanf(p, "%d.%d.%d%n", &a, &b, &c, &n) == 3 && n > 0 &&
		    a == st->code / 100) {
			if (l == reply) {
				st->enh_class = a;
				st->enh_subject = b;
				st->enh_detail = c;
			}
			p += n;
		}
		while (p < end && *p == ' ')
			p++;
		buf_append(&text, p, (size_t)(end - p));
		l = end;
	}
	st->text = buf_steal(&text);
}

/* What the server said to the MAIL now in flight, if pipelined. */
static void
note_mail_reply(struct session *s)
{
	struct content_reader *r = s->piped;

	if (r == NULL)
		return;
	s->piped = NULL;
	r->piped_noted = true;
	parse_reply(wire_mail_reply(), &r->mail);
}

static void
analyze_message(struct session *s, smtp_message_t msg, struct dlv_msg *m,
    const char *session_error)
{
	const smtp_status_t *mail = smtp_reverse_path_status(msg);
	struct content_reader *r = reader_of(s, msg);
	/* libESMTP's 250 was ours: the server's own reply decides. */
	if (r && r->piped && r->piped_noted &&
	    (r->mail.code < 200 || r->mail.code > 299))
		mail = &r->mail;
	struct rcpt_walk w = {s, m, smtp_message_transfer_status(msg), false,
	    NULL};

	if (m->done)
		return;
	/*
	 * A server that closes the connection (with 421 or without a word)
	 * after taking messages from us has a limit per connection: the
	 * messages it never took go on a new one.
	 */
	if ((mail->code == 0 || mail->code == 421) && s->sent > 0) {
		s->limited = true;
		return;
	}
	if (mail->code == 0) {
		if (session_error)
			remember_error(m, session_error,
			    s->greeting.len > 0 && s->greeting.data[0] == '5');
		return;
	}
	char *mtext = status_text(mail);
	if (mail->code >= 500) {
		for (size_t i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].outcome == DLV_PENDING)
				set_outcome(&m->rcpts[i], DLV_BOUNCE, mtext,
				    true, "MAIL FROM");
	} else if (mail->code >= 400) {
		char *why = xasprintf("host %s said: %s (in reply to MAIL FROM "
		    "command)", s->relay, mtext);
		remember_error(m, why, false);
		free(why);
	} else {
		smtp_enumerate_recipients(msg, walk_rcpt, &w);
		if (w.lost_in_data) {
			/* It may have arrived: defer, never resend elsewhere. */
			char *why = xasprintf("lost connection with %s while "
			    "sending the message%s%s", s->relay,
			    session_error ? ": " : "",
			    session_error ? session_error : "");
			for (size_t i = 0; i < m->nrcpts; i++)
				if (m->rcpts[i].outcome == DLV_PENDING)
					set_outcome(&m->rcpts[i], DLV_DEFER,
					    why, false, NULL);
			free(why);
		}
	}
	free(mtext);
	finish_msg(s, m);
}

/* libESMTP callbacks. */

/* Asks for BODY=8BITMIME, once the EHLO reply has offered it. */
static void
declare_bodies(struct session *s)
{
	if (s->bodies_declared || !wire_ehlo_8bitmime())
		return;
	s->bodies_declared = true;
	for (size_t i = 0; i < s->nreaders; i++)
		if (s->readers[i].msg && s->readers[i].eight_bit)
			smtp_8bitmime_set_body(s->readers[i].msg,
			    E8bitmime_8BITMIME);
}

static void
monitor_cb(const char *data, int len, int writing, void *arg)
{
	struct session *s = arg;

	keepalive_tick();
	if (writing == SMTP_CB_READING) {
		declare_bodies(s);
		if (s->greeting.len == 0) {
			char *first = xstrndup(data, (size_t)len);
			char *line = one_line(first);
			buf_puts(&s->greeting, line);
			free(line);
			free(first);
		}
		/* The last line read: what a server closing says last. */
		const char *end = data + len;
		while (end > data && (end[-1] == '\n' || end[-1] == '\r'))
			end--;
		const char *start = end;
		while (start > data && start[-1] != '\n')
			start--;
		char *last = xstrndup(start, (size_t)(end - start));
		char *line = one_line(last);
		buf_reset(&s->last_reply);
		buf_puts(&s->last_reply, line);
		free(line);
		free(last);
	} else if (writing == SMTP_CB_WRITING && len >= 8 &&
	    strncmp(data, "STARTTLS", 8) == 0) {
		s->tls_attempted = true;
	}
}

static void
event_cb(smtp_session_t session, int event, void *arg, ...)
{
	struct session *s = arg;
	va_list ap;
	int *ok;

	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		s->t_connected = mono_seconds();
		break;
	case SMTP_EV_STARTTLS_OK: {
		SSL *ssl = va_arg(ap, SSL *);
		s->tls = true;
		wire_tls_ready(ssl);
		log_set_component("smtp");
		log_info("%s TLS connection established to %s: %s with "
		    "cipher %s", s->cfg->tls_policy != DLV_TLS_MAY &&
		    s->tls_problem[0] == '\0' ? "Verified" : "Untrusted",
		    s->relay, ssl ? SSL_get_version(ssl) : "TLS",
		    ssl ? SSL_get_cipher_name(ssl) : "unknown");
		if (s->cfg->tls_policy == DLV_TLS_TEST && s->tls_problem[0])
			log_warn("%s would have failed: %s", s->cfg->policy,
			    s->tls_problem);
		log_set_component(NULL);
		break;
	}
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long result = va_arg(ap, long);
		ok = va_arg(ap, int *);
		if (s->cfg->tls_policy != DLV_TLS_MAY)
			snprintf(s->tls_problem, sizeof(s->tls_problem),
			    "the certificate of %s did not verify: %s",
			    s->relay, X509_verify_cert_error_string(result));
		/* Opportunistic TLS encrypts anyway; enforce leaves. */
		*ok = s->cfg->tls_policy != DLV_TLS_VERIFY;
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		if (s->cfg->tls_policy != DLV_TLS_MAY)
			snprintf(s->tls_problem, sizeof(s->tls_problem),
			    "%s showed no certificate", s->relay);
		*ok = s->cfg->tls_policy != DLV_TLS_VERIFY;
		break;
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 1;
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		/*
		 * libESMTP matches the certificate against the name it
		 * dialled, our address; OpenSSL has matched it against the
		 * MX host's name already (verify_ctx), and said so above.
		 */
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 1;
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		snprintf(s->tls_problem, sizeof(s->tls_problem), "%s offered "
		    "no STARTTLS", s->relay);
		break;
	case SMTP_EV_EXTNA_8BITMIME:
		s->ext_8bitmime_missing = true;
		break;
	case SMTP_EV_EXTNA_DSN:
	case SMTP_EV_SYNTAXWARNING:
		ok = va_arg(ap, int *);
		if (ok)
			*ok = 0;	/* "quit now?": no */
		break;
	case SMTP_EV_MAILSTATUS: {
		(void)va_arg(ap, const char *);
		smtp_message_t msg = va_arg(ap, smtp_message_t);
		struct content_reader *r = reader_of(s, msg);
		note_mail_reply(s);	/* the one before, if still in flight */
		if (r && wire_mail_pipelined()) {
			r->piped = true;
			r->piped_noted = false;
			free(r->mail.text);
			memset(&r->mail, 0, sizeof(r->mail));
			s->piped = r;
		}
		break;
	}
	case SMTP_EV_MESSAGESENT: {
		smtp_message_t msg = va_arg(ap, smtp_message_t);
		struct dlv_msg *m = smtp_message_get_application_data(msg);
		note_mail_reply(s);
		if (m)
			analyze_message(s, msg, m, NULL);
		break;
	}
	default:
		break;
	}
	va_end(ap);
}

struct analyze_ctx {
	struct session *s;
	const char *error;
};

static void
analyze_each(smtp_message_t msg, void *arg)
{
	struct analyze_ctx *a = arg;
	struct dlv_msg *m = smtp_message_get_application_data(msg);

	if (m)
		analyze_message(a->s, msg, m, a->error);
}

static SSL_CTX *
client_tls_ctx(void)
{
	if (tls_ctx == NULL) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (tls_ctx) {
			SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
			/*
			 * Any version up to TLS 1.3: wire.c keeps libESMTP
			 * from waiting on a TLS 1.3 server's session tickets
			 * (wire_tls_ready()).
			 */
		}
	}
	return tls_ctx;
}

/*
 * SNI: libESMTP 1.1 sets no server name. The ClientHello is written
 * after this callback's HANDSHAKE_START, so the name goes in there.
 */
static void
verify_info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) && verify_host[0] &&
	    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL)
		(void)SSL_set_tlsext_host_name((SSL *)ssl, verify_host);
}

/*
 * For MTA-STS: the chain is verified against ca_file and the name is
 * the MX host's (set per session). The verification runs in the
 * handshake but does not stop it (SSL_VERIFY_NONE): libESMTP hands its
 * result to event_cb, which decides, so a refusal has its reason.
 */
static SSL_CTX *
client_verify_ctx(const char *ca_file, const char *host, char *err,
    size_t errlen)
{
	if (verify_ctx && strcmp(verify_ctx_file, ca_file) != 0) {
		SSL_CTX_free(verify_ctx);
		free(verify_ctx_file);
		verify_ctx = NULL;
		verify_ctx_file = NULL;
	}
	if (verify_ctx == NULL) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL) {
			snprintf(err, errlen, "cannot set up TLS");
			return NULL;
		}
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot load the CA "
			    "certificates of smtp_tls_CAfile (%.200s)",
			    ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		/* As in client_tls_ctx(): libESMTP and TLS 1.3 tickets. */
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_info_callback(ctx, verify_info_cb);
		verify_ctx = ctx;
		verify_ctx_file = xstrdup(ca_file);
	}
	/* SSL_new() copies these into the session's SSL. */
	size_t len = strlen(host);
	if (len > 0 && host[len - 1] == '.')
		len--;
	snprintf(verify_host, sizeof(verify_host), "%.*s", (int)len, host);
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(verify_ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_host(param, verify_host, 0) != 1) {
		snprintf(err, errlen, "cannot check certificates for %s",
		    verify_host);
		return NULL;
	}
	return verify_ctx;
}

static void
set_timeouts(smtp_session_t session, const struct dlv_config *cfg)
{
	const long ovr = Timeout_OVERRIDE_RFC2822_MINIMUM;

	/* libESMTP counts in milliseconds; our keys are in seconds. */
	smtp_set_timeout(session, Timeout_GREETING | ovr,
	    cfg->helo_timeout * 1000L);
	smtp_set_timeout(session, Timeout_ENVELOPE | ovr,
	    cfg->mail_timeout * 1000L);
	smtp_set_timeout(session, Timeout_DATA | ovr,
	    cfg->data_init_timeout * 1000L);
	smtp_set_timeout(session, Timeout_TRANSFER | ovr,
	    cfg->data_xfer_timeout * 1000L);
	smtp_set_timeout(session, Timeout_DATA2 | ovr,
	    cfg->data_done_timeout * 1000L);
}

static enum notify_flags
notify_flags(uint32_t notify)
{
	int flags = Notify_NOTSET;

	if (notify & SPOOL_NOTIFY_NEVER)
		return Notify_NEVER;
	if (notify & SPOOL_NOTIFY_SUCCESS)
		flags |= Notify_SUCCESS;
	if (notify & SPOOL_NOTIFY_FAILURE)
		flags |= Notify_FAILURE;
	if (notify & SPOOL_NOTIFY_DELAY)
		flags |= Notify_DELAY;
	return (enum notify_flags)flags;
}

static void
add_message(smtp_session_t session, struct dlv_msg *m,
    struct content_reader *reader)
{
	const struct spool_msg *env = m->env;
	smtp_message_t msg = smtp_add_message(session);

	smtp_message_set_application_data_release(msg, m, NULL);
	smtp_set_reverse_path(msg, env->sender);
	smtp_set_messagecb(msg, content_cb, reader);
	smtp_size_set_estimate(msg, (unsigned long)(env->size +
	    (m->signature ? strlen(m->signature) : 0)));
	/*
	 * BODY=8BITMIME is asked for only once the EHLO reply offered it
	 * (monitor_cb): libESMTP quits the whole session when a message asks
	 * and the server lacks it. Without it the message goes anyway,
	 * without BODY=, as Postfix does by default.
	 */
	reader->msg = msg;
	reader->eight_bit = env->body == SPOOL_BODY_8BITMIME &&
	    !m->no_8bitmime;
	if (env->ret == SPOOL_RET_FULL)
		smtp_dsn_set_ret(msg, Ret_FULL);
	else if (env->ret == SPOOL_RET_HDRS)
		smtp_dsn_set_ret(msg, Ret_HDRS);
	if (env->envid)
		smtp_dsn_set_envid(msg, env->envid);
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct dlv_rcpt *r = &m->rcpts[i];
		if (r->outcome != DLV_PENDING)
			continue;
		smtp_recipient_t rcpt = smtp_add_recipient(msg, r->address);
		smtp_recipient_set_application_data_release(rcpt, r, NULL);
		if (r->notify)
			smtp_dsn_set_notify(rcpt, notify_flags(r->notify));
		const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
		if (semi) {
			char *type = xstrndup(r->orcpt,
			    (size_t)(semi - r->orcpt));
			smtp_dsn_set_orcpt(rcpt, type, semi + 1);
			free(type);
		}
	}
}

static char *
session_error_text(struct session *s)
{
	int err = connect_last_errno();

	if (s->t_connected == 0 && err != 0)
		return xasprintf("connect to %s: %s", s->relay, strerror(err));
	/*
	 * A refusing greeting is answered with QUIT, so by now the last
	 * reply is the 221: the greeting is what the server had to say.
	 */
	if (s->greeting.len > 0 && (s->greeting.data[0] == '4' ||
	    s->greeting.data[0] == '5'))
		return xasprintf("host %s refused to talk to me: %s",
		    s->relay, s->greeting.data);
	if (s->last_reply.len > 0 && (s->last_reply.data[0] == '4' ||
	    s->last_reply.data[0] == '5'))
		return xasprintf("host %s said: %s", s->relay,
		    s->last_reply.data);
	char ebuf[256];
	int e = smtp_errno();
	if (e == 0)
		return xasprintf("conversation with %s ended early", s->relay);
	return xasprintf("conversation with %s failed: %s", s->relay,
	    smtp_strerror(e, ebuf, sizeof(ebuf)));
}

/* Did any message of the session get as far as MAIL FROM? */
static bool
any_attempted(struct dlv_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (msgs[i]->done || msgs[i]->last_error)
			return true;
	return false;
}

/* What to do after a session, at the same address. */
enum next_session {
	NEXT_ADDRESS,		/* done here: the next address, if need be */
	AGAIN_ONCE,		/* 8BITMIME refused, TLS broken: once more */
	AGAIN_LIMITED,		/* the server's limits left work: a new one */
};

/* One session to one address with every message still pending. */
static enum next_session
run_session(struct session *s, const struct sockaddr_storage *addr,
    socklen_t addr_len, struct dlv_msg **msgs, size_t n)
{
	const struct dlv_config *cfg = s->cfg;
	char ip[64], hostport[96];
	struct content_reader *readers = xcalloc(n, sizeof(*readers));
	enum next_session next = NEXT_ADDRESS;

	(void)addr_len;
	dns_addr_string(addr, ip, sizeof(ip));
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%d", s->host->name, ip,
	    cfg->port);
	/* libESMTP cuts "host:port" at the first colon (connect.h). */
	bool v6 = addr->ss_family == AF_INET6;
	snprintf(hostport, sizeof(hostport), "%s:%d", v6 ? CONNECT_ARMED_HOST :
	    ip, cfg->port);

	const struct dlv_source *src = addr->ss_family == AF_INET6 ?
	    &cfg->source6 : &cfg->source4;
	smtp_session_t session = smtp_create_session();
	smtp_set_server(session, hostport);
	smtp_set_hostname(session, src->helo ? src->helo : cfg->helo);
	smtp_set_eventcb(session, event_cb, s);
	smtp_set_monitorcb(session, monitor_cb, s, 1);
	set_timeouts(session, cfg);
	s->tls_problem[0] = '\0';
	SSL_CTX *ctx = NULL;
	if (cfg->tls_policy != DLV_TLS_MAY && (cfg->tls_policy ==
	    DLV_TLS_VERIFY || (cfg->tls && !s->no_tls))) {
		char err[300];
		ctx = client_verify_ctx(cfg->ca_file, s->host->name, err,
		    sizeof(err));
		if (ctx == NULL && cfg->tls_policy == DLV_TLS_VERIFY) {
			/* Never in the clear: this host cannot be used. */
			char *why = xasprintf("%s requires verified TLS: %s",
			    cfg->policy, err);
			for (size_t i = 0; i < n; i++)
				if (!msgs[i]->done)
					remember_error(msgs[i], why, false);
			free(why);
			goto out;
		}
	}
	if (ctx == NULL && cfg->tls && !s->no_tls)
		ctx = client_tls_ctx();
	if (ctx) {
		smtp_starttls_set_ctx(session, ctx);
		smtp_starttls_enable(session, cfg->tls_policy ==
		    DLV_TLS_VERIFY ? Starttls_REQUIRED : Starttls_ENABLED);
	}
	size_t queued = 0;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i]->done)
			continue;
		readers[i].sp = s->sp;
		readers[i].id = msgs[i]->env->id;
		readers[i].expected = msgs[i]->env->size;
		readers[i].signature = msgs[i]->signature;
		reader_rewind(&readers[i]);
		add_message(session, msgs[i], &readers[i]);
		queued++;
	}
	if (queued == 0)
		goto out;

	s->readers = readers;
	s->nreaders = n;
	s->bodies_declared = false;
	s->sent = 0;
	s->limited = false;
	s->t_start = mono_seconds();
	s->t_connected = 0;
	s->tls = s->tls_attempted = s->ext_8bitmime_missing = false;
	buf_reset(&s->last_reply);
	buf_reset(&s->greeting);
	connect_arm(src->sa, src->len, cfg->connect_timeout, v6 ? ip : NULL);
	(void)smtp_start_session(session);
	note_mail_reply(s);	/* before disarming forgets it */
	connect_disarm();
	/*
	 * Its result says little: libESMTP returns success also when the
	 * server closed the connection on it. What the server said last is
	 * the reason for whatever it never got to.
	 */
	char *error = session_error_text(s);

	if (cfg->tls_policy != DLV_TLS_MAY && s->t_connected > 0 && !s->tls &&
	    (s->tls_problem[0] || s->tls_attempted || (ctx && s->greeting.len
	    > 0 && s->greeting.data[0] == '2'))) {
		char *problem = s->tls_problem[0] ? xstrdup(s->tls_problem) :
		    s->tls_attempted ? xasprintf("TLS handshake with %s "
		    "failed: %s", s->relay, error) : xasprintf("%s offered no "
		    "STARTTLS", s->relay);
		if (cfg->tls_policy == DLV_TLS_VERIFY) {
			free(error);
			error = xasprintf("%s requires verified TLS: %s",
			    cfg->policy, problem);
			log_set_component("smtp");
			log_warn("%s", error);
			log_set_component(NULL);
		} else {
			log_set_component("smtp");
			log_warn("%s would have failed: %s", cfg->policy,
			    problem);
			log_set_component(NULL);
		}
		free(problem);
	}
	if (s->t_connected > 0 && s->ext_8bitmime_missing) {
		/* It offered 8BITMIME before STARTTLS and not after. */
		for (size_t i = 0; i < n; i++)
			msgs[i]->no_8bitmime = true;
		next = AGAIN_ONCE;
	} else if (s->tls_attempted && !s->tls && !s->no_tls &&
	    cfg->tls_policy != DLV_TLS_VERIFY && !any_attempted(msgs, n)) {
		s->no_tls = true;
		log_set_component("smtp");
		log_warn("TLS handshake with %s failed; delivering in the "
		    "clear: %s", s->relay, error);
		log_set_component(NULL);
		next = AGAIN_ONCE;
	}
	if (next == NEXT_ADDRESS) {
		struct analyze_ctx actx = {s, error};
		smtp_enumerate_messages(session, analyze_each, &actx);
		if (s->limited && s->sent > 0)
			next = AGAIN_LIMITED;
	}
	free(error);
out:
	s->readers = NULL;
	s->nreaders = 0;
	s->piped = NULL;
	smtp_destroy_session(session);
	for (size_t i = 0; i < n; i++) {
		buf_free(&readers[i].raw);
		buf_free(&readers[i].out);
		longlines_free(&readers[i].lines);
		free(readers[i].mail.text);
	}
	free(readers);
	return next;
}

static bool
all_done(struct dlv_msg *const *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!msgs[i]->done)
			return false;
	return true;
}

void
deliver_to_hosts(const struct dlv_config *cfg, struct spool *sp,
    const struct dns_host *hosts, size_t nhosts, struct dlv_msg **msgs,
    size_t n, dlv_done_fn done, void *ctx)
{
	struct session s;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.sp = sp;
	s.done = done;
	s.done_ctx = ctx;
	in_progress = cfg;
	last_keepalive = mono_seconds();
	size_t tried = 0, unsourced = 0;
	for (size_t h = 0; h < nhosts; h++) {
		s.host = &hosts[h];
		for (size_t a = 0; a < hosts[h].naddrs; a++) {
			if (deliver_stop || all_done(msgs, n))
				goto out;
			int fam = hosts[h].addrs[a].ss_family;
			if (cfg->sourced && (fam == AF_INET6 ?
			    cfg->source6.sa : cfg->source4.sa) == NULL) {
				unsourced++;
				continue;
			}
			tried++;
			s.no_tls = false;
			/*
			 * Bounded: a second try at most, and a limited
			 * session counts only when it sent something, so
			 * there are never more than the recipients.
			 */
			int again = 0;
			for (;;) {
				enum next_session next = run_session(&s,
				    &hosts[h].addrs[a], hosts[h].addr_lens[a],
				    msgs, n);
				if (next == NEXT_ADDRESS || deliver_stop ||
				    (next == AGAIN_ONCE && again++ > 0))
					break;
			}
		}
	}
out:
	if (deliver_stop) {
		buf_free(&s.last_reply);
		buf_free(&s.greeting);
		return;		/* the caller hands the claims back */
	}
	/* Every host tried: what is still pending waits, or fails for good. */
	for (size_t i = 0; i < n; i++) {
		struct dlv_msg *m = msgs[i];
		if (m->done)
			continue;
		const char *why = m->last_error ? m->last_error :
		    tried == 0 && unsourced > 0 ? "no address of the MX hosts "
		    "is of a family the source pool has an address of" :
		    "no SMTP server could be reached";
		enum dlv_outcome o = m->last_error_permanent ? DLV_BOUNCE :
		    DLV_DEFER;
		for (size_t k = 0; k < m->nrcpts; k++)
			if (m->rcpts[k].outcome == DLV_PENDING)
				set_outcome(&m->rcpts[k], o, why, false,
				    NULL);
		m->done = true;
		snprintf(m->relay, sizeof(m->relay), "%s",
		    s.relay[0] ? s.relay : "none");
		snprintf(m->relay_host, sizeof(m->relay_host), "%s",
		    s.host ? s.host->name : "");
		done(ctx, m);
	}
	in_progress = NULL;
	buf_free(&s.last_reply);
	buf_free(&s.greeting);
}
