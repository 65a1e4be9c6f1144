/*
 * NAME
 *	pipeline - MAIL FROM in the same write as the RCPTs and DATA
 * DESCRIPTION
 *	libESMTP 1.1 pipelines RCPT and DATA (RFC 2920) but flushes MAIL
 *	FROM alone and waits for its reply: one round trip more per
 *	message than the extension allows. wire.c, which already stands
 *	between libESMTP and the session's socket, uses this module to
 *	close the gap without libESMTP noticing anything but the timing:
 *
 *	- When PIPELINING was offered (in the last EHLO reply: after
 *	  STARTTLS only the second one counts) and libESMTP writes a lone
 *	  MAIL FROM (or RSET and MAIL FROM, after a failed transaction),
 *	  the MAIL command is held back and libESMTP is handed a
 *	  "250 2.1.0 Ok" of ours as soon as the replies before it are in.
 *	- Its next write, which must begin with RCPT, goes out after the
 *	  held MAIL in one write: MAIL, the RCPTs and DATA in one segment.
 *	- The server's real reply to MAIL is taken out of what libESMTP
 *	  reads (however it is split across reads, multi-line or not).
 *	  When it is not 2xx, the replies to the RCPTs are replaced by
 *	  that reply, word for word (so 4xx defers each recipient and 5xx
 *	  bounces it, with the server's text), and the reply to DATA by
 *	  503 5.5.1: libESMTP sends no content and goes on as after any
 *	  refused DATA. The server's own replies to those commands are
 *	  dropped; if it closes instead, libESMTP still reads the
 *	  replacements first.
 *
 *	Anything this module does not expect (another command after the
 *	held MAIL, a reply to a command never sent, 354 to DATA after a
 *	refused MAIL) makes pipeline_abandon() true: wire.c shuts the
 *	connection down, and libESMTP's transaction fails as a lost
 *	connection, which defers its recipients. A reply is never handed
 *	to libESMTP for a command it was not sent for.
 *
 *	The state is the one session's of this process (wire_attach()
 *	starts a new one). Nothing here touches a socket: wire.c does the
 *	I/O, which keeps this part testable on plain buffers.
 */
#ifndef MXLANE_PIPELINE_H
#define MXLANE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

/* A new connection: nothing held, nothing offered. */
void pipeline_reset(void);
/* The EHLO reply listed PIPELINING (false: a new EHLO, HELO, STARTTLS). */
void pipeline_offered(bool offered);

/*
 * Writes of libESMTP's commands (never content). pipeline_mail_start()
 * says where in buf a MAIL FROM to hold back begins (the commands before
 * it go now), or -1 when buf goes out as it is. pipeline_hold() keeps
 * the MAIL; pipeline_held() is what of it is still to be written, in
 * front of libESMTP's next write, and pipeline_held_sent() says how
 * much of it the socket took.
 */
long pipeline_mail_start(const char *buf, size_t len);
void pipeline_hold(const char *before, size_t before_len, const char *mail,
    size_t mail_len);
const char *pipeline_held(size_t *len);
void pipeline_held_sent(size_t n);
/*
 * Octets of libESMTP's own that reached the server while no content is
 * being sent. False when a held MAIL is followed by anything but RCPT.
 */
bool pipeline_sent(const char *buf, size_t len);
/* The next write must go after the held MAIL and must begin with RCPT. */
bool pipeline_next_write_ok(const char *buf, size_t len);

/*
 * Reads: everything the server sends goes into pipeline_feed(); what
 * libESMTP is to read comes out of pipeline_take(), in order, once
 * pipeline_readable() says there is some.
 */
void pipeline_feed(const char *in, size_t n);
size_t pipeline_take(char *buf, size_t len);
bool pipeline_readable(void);

/*
 * The last MAIL FROM was held (libESMTP's 250 was ours), and the
 * server's own reply to it as libESMTP saw it replayed; NULL until it
 * came, and for good if the connection ended first.
 */
bool pipeline_mail_held(void);
const char *pipeline_mail_reply(void);

/* Something unexpected: the connection must go (see DESCRIPTION). */
bool pipeline_abandon(void);
const char *pipeline_abandon_reason(void);

#endif
