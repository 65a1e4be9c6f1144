/*
 * NAME
 *	wire - what libESMTP reads from and writes to the SMTP socket
 * DESCRIPTION
 *	libESMTP 1.1 offers no option for three things a relay must get
 *	right, so the queue runner corrects the byte stream itself, on the
 *	socket of the armed SMTP session only (connect.h), by defining
 *	read(), write(), SSL_read() and SSL_write() in its own executable
 *	(the same ELF lookup rule connect.h relies on):
 *
 *	- Its header processing (headers.c) drops a second To:, Cc:, From:,
 *	  Sender:, Reply-To:, Date:, Message-ID: or Bcc: field and adds
 *	  Date:, From: and Message-Id: when it has not seen them, for both
 *	  DATA and BDAT, whatever smtp_set_header_option() says. deliver.c
 *	  therefore starts every message's content with an empty line, so
 *	  that libESMTP sees no header fields at all and passes the whole
 *	  stored message on as body (dot-stuffed, untouched); what it writes
 *	  before that body, its three generated fields and the empty line,
 *	  is dropped here: wire_drop_generated_header().
 *
 *	- It uses CHUNKING (BDAT) whenever the server offers it, and then
 *	  pipelines BDAT even when every RCPT was refused, which Exim counts
 *	  as a protocol error. The EHLO reply's CHUNKING line is renamed
 *	  (CHUNKINX) before libESMTP parses it, so it uses DATA, whose
 *	  refusal it handles. The byte-stream trick above needs DATA too.
 *
 *	- It quits the whole session when a message asks for BODY=8BITMIME
 *	  and the server lacks 8BITMIME. wire_ehlo_8bitmime() tells
 *	  deliver.c, from the EHLO reply itself, whether it may ask.
 *
 *	- It flushes MAIL FROM alone and waits for its reply, pipelining
 *	  only the RCPTs and DATA: pipeline.h says how the MAIL goes out
 *	  with them all the same, which needs poll() defined here too.
 *	  wire_mail_pipelined() and wire_mail_reply() tell deliver.c what
 *	  the server really said to the MAIL, since libESMTP believes 250.
 *	- It waits for a reply by polling the socket, and when one poll()
 *	  says the socket is both readable and writable it reads first,
 *	  before it has flushed the command the reply is for. Over TCP or
 *	  TLS 1.2 nothing is readable before the command goes out. Over
 *	  TLS 1.3 a server may send its session tickets (handshake
 *	  records, no application data) after the handshake, and OpenSSL's
 *	  servers do so at once: after STARTTLS the socket is readable
 *	  while EHLO still sits in libESMTP's buffer, SSL_read() takes the
 *	  tickets and then waits for a reply to a command never sent, until
 *	  the time-out (the deadlock that once made mxlane cap TLS at 1.2).
 *	  poll() is therefore defined here too: on the armed socket, once
 *	  the TLS handshake is done (wire_tls_ready()), readable means
 *	  "application data to read", as libESMTP assumes. When the socket
 *	  is readable, the records waiting are processed without blocking
 *	  (SSL_peek()); if they were only tickets (or a key update), POLLIN
 *	  is taken out of the result, and poll() goes on waiting, within the
 *	  caller's time-out, when nothing else is left to report. An end of
 *	  file or an error is reported as readable, for SSL_read() to find.
 *
 *	Plain read() and write() are left alone once STARTTLS has been
 *	sent: from then on the socket carries TLS records, and the same
 *	corrections apply to SSL_read() and SSL_write() of that socket.
 */
#ifndef MXLANE_WIRE_H
#define MXLANE_WIRE_H

#include <stdbool.h>

struct ssl_st;

/* The armed session's socket, from connect(); -1 detaches. */
void wire_attach(int fd);
/*
 * The next bytes written, up to and including the first empty line,
 * are libESMTP's own header fields: they never reach the server.
 */
void wire_drop_generated_header(void);
/*
 * The STARTTLS handshake of the armed session is done: poll() on its
 * socket now reports ssl's application data, not the socket's.
 */
void wire_tls_ready(struct ssl_st *ssl);
/* The last EHLO reply on this connection listed 8BITMIME. */
bool wire_ehlo_8bitmime(void);
/* The server offered CHUNKING and was told otherwise. */
bool wire_chunking_hidden(void);

/* The last MAIL FROM went out with the RCPTs (libESMTP's 250 was ours). */
bool wire_mail_pipelined(void);
/* The server's own reply to it; NULL if it never came. */
const char *wire_mail_reply(void);

#endif
