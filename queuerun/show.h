/*
 * NAME
 *	show - "queuerun show QUEUEID": one message, like postcat -q
 * DESCRIPTION
 *	Prints the envelope, each recipient's delivery state and the
 *	content exactly as it will be sent (CRLF turned into LF for the
 *	terminal). The layout is fixed so scripts and tests can read it:
 *
 *	*** ENVELOPE RECORDS 1A2B3C4D5E6F7 ***
 *	queue_id: 1A2B3C4D5E6F7
 *	arrival_time: Wed Nov 25 13:16:02 2026
 *	arrival_unix: 1795612562
 *	size: 4242
 *	lane: priority
 *	sender: alice@example.org          (empty after the colon for <>)
 *	uid: 33
 *	user: www-data
 *	ret: full|hdrs|default
 *	envid: XYZ                         (line omitted when none)
 *	body: 7bit|8bitmime|default
 *	held: yes|no
 *	dkim: example.org/s2026,ed2026 (From: domain example.org)
 *	                                   (how delivery will sign it: the
 *	                                   domain and its selectors and why,
 *	                                   or "none (why)"; dkim.h decides)
 *	recipient: bob@example.com
 *	  orcpt: rfc822;bob@example.com    (omitted when none)
 *	  notify: success,failure,delay|never|default
 *	  state: queued|active|sent|bounced
 *	  attempts: 0
 *	  next_try: Wed Nov 25 13:16:02 2026
 *	  last_response: 451 4.3.0 try later   (omitted when none)
 *	  last_relay: mx.example.com[192.0.2.1]:25   (omitted when none)
 *	  dsn: 4.3.0                       (status of the last outcome; omitted
 *	                                   when none)
 *	  notified: yes                    (its bounce was sent; omitted
 *	                                   otherwise)
 *	  booked: yes                      (held back by a throttle and
 *	                                   booked to come back; omitted
 *	                                   otherwise)
 *	*** MESSAGE CONTENTS 1A2B3C4D5E6F7 ***
 *	...content...
 *	*** END OF MESSAGE 1A2B3C4D5E6F7 ***
 */
#ifndef MXLANE_SHOW_H
#define MXLANE_SHOW_H

#include <stdio.h>

#include "lib/config.h"
#include "spool/spool.h"

/* Returns 0, EX_NOINPUT (66) for an unknown id, EX_TEMPFAIL on error. */
int show_message(struct spool *sp, const struct mxl_config *cfg,
    const char *id, FILE *out);

#endif
