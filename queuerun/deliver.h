/*
 * NAME
 *	deliver - one destination's messages over SMTP with libESMTP
 * DESCRIPTION
 *	deliver_to_hosts() tries the destination's hosts in order (MX
 *	preference order, or the single relay host), each address of a
 *	host in turn (but those of a family with no source when a pool
 *	gives the sources: cfg->sourced), and sends every pending message
 *	over one connection per address, pipelined where the server offers
 *	PIPELINING. It moves on to the next address when it cannot
 *	connect, when the server
 *	greets with a 4xx or 5xx, or when a message meets a 4xx to the whole
 *	transaction (MAIL FROM, or the reply after DATA). It does not move
 *	on after a connection is lost in the middle of a transaction: the
 *	message may have been delivered, so it is deferred instead.
 *
 *	The outcome of each recipient follows its own reply: 2xx (after a
 *	2xx to DATA) sent, 4xx deferred, 5xx bounced. done() is called for a
 *	message as soon as its fate is known, while the session may still be
 *	running: the caller records "sent" in the spool right after the MX
 *	accepted the message, so a runner killed at any moment can repeat at
 *	most the transaction in flight.
 *
 *	The content goes out as stored, octet for octet (wire.h says how
 *	libESMTP is kept from rewriting it), but for lines longer than 998
 *	octets (longlines.h), and with the message's DKIM-Signature fields,
 *	if it has any (signature), before it.
 *
 *	STARTTLS is used when offered (opportunistic: certificates are not
 *	verified; a failed handshake is retried once in the clear, on a
 *	new connection, and logged as a warning). Under an MTA-STS policy
 *	(tls_policy) the certificate is verified against ca_file, chain and
 *	host name (the MX host's name, not the address dialled): in mode
 *	enforce (DLV_TLS_VERIFY) TLS is required, whatever smtp_tls says,
 *	and a host that offers no STARTTLS, fails the handshake or shows a
 *	certificate that does not verify is left before MAIL FROM, never
 *	used in the clear, and the next host is tried; the mail is deferred
 *	with that reason when none is left. In mode testing
 *	(DLV_TLS_TEST) delivery goes on as usual and what would have failed
 *	is logged as a warning. SIZE, and the DSN
 *	parameters given at submission (RET, ENVID, NOTIFY, ORCPT), go out
 *	when the server offers them. BODY=8BITMIME is sent for content with
 *	8-bit octets when the server offers 8BITMIME; one that does not gets
 *	the message without BODY=, as Postfix does by default. CHUNKING is
 *	never used.
 *
 *	A server's limits are not failures: recipients refused with 452
 *	(4.5.3) in a transaction it accepted go in a new transaction, and
 *	messages it did not take before it closed the connection (421, or
 *	silence) go on a new connection, as long as each one sends
 *	something.
 */
#ifndef MXLANE_DELIVER_H
#define MXLANE_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "spool/spool.h"

/* DLV_SKIP: no longer ours to deliver (another runner has it). */
enum dlv_outcome { DLV_PENDING = 0, DLV_SENT, DLV_DEFER, DLV_BOUNCE, DLV_SKIP };

struct dlv_rcpt {
	uint32_t index;
	const char *address;
	const char *orcpt;		/* "rfc822;x@y" or NULL */
	uint32_t notify;		/* SPOOL_NOTIFY_* */
	enum dlv_outcome outcome;
	char *reply;			/* the reply or our reason, one line */
	const char *stage;		/* "RCPT TO", "end of DATA"... or NULL */
	const char *status;		/* our X.Y.Z when not from a reply */
	bool smtp_reply;		/* reply came from the server */
	bool dsn_offered;		/* the server took over DSN duty */
};

struct dlv_msg {
	const struct spool_msg *env;
	/*
	 * DKIM-Signature fields (CRLF line ends) sent before the content,
	 * or NULL: dkim.h makes them, over the content as it goes out.
	 */
	const char *signature;
	struct dlv_rcpt *rcpts;
	size_t nrcpts;
	bool done;			/* every recipient has an outcome */
	char relay[320];		/* "host[ip]:port", or "none" */
	char relay_host[256];		/* host name alone, for DSN Remote-MTA */
	double connect_seconds;		/* delays= c */
	double transfer_seconds;	/* delays= d */
	bool tls;
	bool no_8bitmime;		/* server lacks 8BITMIME: omit BODY= */
	char *last_error;		/* why the last host failed */
	bool last_error_permanent;	/* a 5xx greeting on every host */
};

enum dlv_tls_policy {
	DLV_TLS_MAY = 0,	/* opportunistic, unverified */
	DLV_TLS_TEST,		/* MTA-STS testing: verify and log */
	DLV_TLS_VERIFY,		/* MTA-STS enforce: verified TLS or nothing */
};

/* Where a connection of one address family leaves from. */
struct dlv_source {
	const struct sockaddr *sa;	/* NULL: none (the kernel picks) */
	socklen_t len;
	const char *helo;		/* NULL: the config's helo */
};

struct dlv_config {
	const char *helo;
	int port;
	bool tls;
	enum dlv_tls_policy tls_policy;
	const char *ca_file;		/* for DLV_TLS_TEST and DLV_TLS_VERIFY */
	const char *policy;		/* "MTA-STS policy of D (mode enforce)" */
	int connect_timeout, helo_timeout, mail_timeout;
	int data_init_timeout, data_xfer_timeout, data_done_timeout;
	/*
	 * Connections to an IPv4 address are bound to source4, to an IPv6
	 * one to source6. sourced (a pool): an address of a family with no
	 * source is not tried at all.
	 */
	struct dlv_source source4, source6;
	bool sourced;
	/*
	 * Called now and then while a session is in progress (at most
	 * every keepalive_interval seconds, from libESMTP's callbacks):
	 * the runner extends its claims, which are short so that those of
	 * a runner that stopped or died come back soon.
	 */
	void (*keepalive)(void *ctx);
	void *keepalive_ctx;
	double keepalive_interval;
};

typedef void (*dlv_done_fn)(void *ctx, struct dlv_msg *m);

void deliver_to_hosts(const struct dlv_config *cfg, struct spool *sp,
    const struct dns_host *hosts, size_t nhosts, struct dlv_msg **msgs,
    size_t n, dlv_done_fn done, void *ctx);

/* Set by a signal handler: finish the transaction in flight, then stop. */
extern volatile int deliver_stop;

#endif
