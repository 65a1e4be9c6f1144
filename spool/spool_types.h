/*
 * NAME
 *	spool_types - what a queued message is made of
 * SYNOPSIS
 *	#include "spool/spool.h"	(which includes this)
 * DESCRIPTION
 *	The queue id, the envelope (struct spool_msg) and the recipient
 *	(struct spool_rcpt), with the calls that validate and free them.
 *	Kept apart from spool.h so that record.c, which turns these into
 *	bytes and back, needs nothing of the spool itself; callers include
 *	spool.h and get it all.
 */
#ifndef MXLANE_SPOOL_TYPES_H
#define MXLANE_SPOOL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Queue ids are 13 upper-case hex digits: arrival second and microsecond. */
#define SPOOL_ID_LEN	13
#define SPOOL_ID_SIZE	(SPOOL_ID_LEN + 1)

enum spool_ret { SPOOL_RET_DEFAULT = 0, SPOOL_RET_FULL, SPOOL_RET_HDRS };
enum spool_body { SPOOL_BODY_DEFAULT = 0, SPOOL_BODY_7BIT, SPOOL_BODY_8BITMIME };

/* DSN NOTIFY= bits; 0 means the client gave none (RFC 3461 default). */
#define SPOOL_NOTIFY_NEVER	0x01
#define SPOOL_NOTIFY_SUCCESS	0x02
#define SPOOL_NOTIFY_FAILURE	0x04
#define SPOOL_NOTIFY_DELAY	0x08

enum spool_rcpt_state {
	RCPT_QUEUED = 0,	/* waiting for next_try (deferred if attempts > 0) */
	RCPT_ACTIVE,		/* claimed by a runner until lease_until */
	RCPT_SENT,		/* accepted by the next hop */
	RCPT_BOUNCED,		/* failed for good; bounce owed or sent */
};

#define SPOOL_MSG_HELD	0x01	/* on hold: no delivery until released */
#define SPOOL_MSG_SCANNED 0x02	/* passed a lane's content gate */
#define SPOOL_MSG_LANE_BY_RULES 0x04 /* the lane rules chose its lane (not
				     -O Lane=, not a header rule): requeue
				     may run them again */

struct spool_msg {
	char id[SPOOL_ID_SIZE];
	char *sender;		/* "" = null sender <> */
	char *envid;		/* DSN ENVID or NULL */
	enum spool_ret ret;
	enum spool_body body;
	char *lane;
	int64_t arrival;	/* unix time, seconds */
	uint32_t uid;		/* submitting user's real uid */
	char *user;		/* and name, from the password file */
	uint64_t size;		/* content bytes as stored (CRLF) */
	uint32_t nrcpt;
	uint32_t flags;		/* SPOOL_MSG_* */
	uint32_t warned;	/* delay notice already sent */
	/*
	 * "queuerun move": the pool, or the one source address, it leaves
	 * from until delivered, whatever the lane and provider say; NULL:
	 * as they say. requeue clears them. move_provider, when not NULL,
	 * limits the move to the recipients routed to that provider (the
	 * move was for that provider's mail: the rest keeps its pools).
	 */
	char *move_pool;
	char *move_source;
	char *move_provider;
};

struct spool_rcpt {
	uint32_t index;		/* position within the message */
	char *address;
	char *orcpt;		/* DSN ORCPT as given ("rfc822;a@b"), or NULL */
	uint32_t notify;	/* SPOOL_NOTIFY_* bits */
	enum spool_rcpt_state state;
	uint32_t attempts;
	int64_t next_try;	/* unix time the next attempt is due */
	int64_t lease_until;	/* RCPT_ACTIVE: claim expires then */
	int64_t done_time;	/* when SENT/BOUNCED */
	char *last_response;	/* last reply or error text, or NULL */
	char *last_relay;	/* host[ip]:port of the last attempt, or NULL */
	char *status;		/* RFC 3463 status of the last outcome, or NULL */
	uint32_t flags;		/* SPOOL_RCPT_* */
	char *class;		/* reply class of the last failure, or NULL */
	char *last_source;	/* source address of the last attempt, or NULL */
};

#define SPOOL_RCPT_NOTIFIED	0x01	/* its bounce has been sent */
#define SPOOL_RCPT_HELD		0x02	/* a throttle held it back (booked) */

void spool_msg_free(struct spool_msg *msg);
void spool_rcpts_free(struct spool_rcpt *rcpts, size_t n);
/* Frees one recipient's strings (not the struct itself). */
void spool_rcpt_clear(struct spool_rcpt *rcpt);

/* Validates a queue id's form (13 upper-case hex digits). */
bool spool_id_valid(const char *id);
/*
 * Queue ids are the arrival time to the microsecond. A new message takes
 * the id of now (spool_id_start, which returns the arrival second); when
 * that id is taken, the next microsecond's (spool_id_next).
 */
struct spool_id_seq {
	uint64_t sec;
	uint32_t usec;
};
int64_t spool_id_start(struct spool_id_seq *q, char id[SPOOL_ID_SIZE]);
void spool_id_next(struct spool_id_seq *q, char id[SPOOL_ID_SIZE]);

#endif
