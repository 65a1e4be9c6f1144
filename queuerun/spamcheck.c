/*
 * NAME
 *	spamcheck - a message's score from SpamAssassin's spamd
 * DESCRIPTION
 *	See spamcheck.h. The request (spamd's PROTOCOL file):
 *
 *	    SYMBOLS SPAMC/1.5\r\n
 *	    Content-length: N\r\n
 *	    \r\n
 *	    N bytes of message
 *
 *	and the reply:
 *
 *	    SPAMD/1.1 0 EX_OK\r\n
 *	    Content-length: 35\r\n
 *	    Spam: True ; 1004.2 / 5.0\r\n
 *	    \r\n
 *	    GTUBE,MISSING_DATE,NO_RECEIVED
 *
 *	One non-blocking socket, polled against one deadline for the
 *	connect, the write and the read together. The reply is read to
 *	the end (spamd closes the connection) and at most REPLY_MAX bytes
 *	of it are kept.
 */
#include "queuerun/spamcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define REPLY_MAX	(64 * 1024)

/* Milliseconds left before the deadline, at least 0. */
static int
left_ms(double deadline)
{
	double left = deadline - mono_seconds();

	return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out. */
static int
wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = {fd, events, 0};

	for (;;) {
		int ms = left_ms(deadline);
		if (ms == 0)
			return 0;
		int rc = poll(&p, 1, ms);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

static int
send_all(int fd, const char *p, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return -1;
		int rc = wait_fd(fd, POLLOUT, deadline);
		if (rc <= 0) {
			if (rc == 0)
				errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

/* The value of header name in the reply's header block, or NULL. */
static const char *
reply_header(const char *head, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = head; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 &&
		    p[n] == ':')
			return p + n + 1;
		p = eol + 1;
	}
	return NULL;
}

int
spamcheck_parse_reply(const char *reply, size_t len, struct spam_verdict *v,
    char *err, size_t errlen)
{
	char *copy = xstrndup(reply, len);
	int rc = -1;

	memset(v, 0, sizeof(*v));
	char *eol = strstr(copy, "\r\n");
	char *blank = strstr(copy, "\r\n\r\n");
	if (eol == NULL) {
		snprintf(err, errlen, "no reply");
		goto out;
	}
	*eol = '\0';
	int code = -1, n = 0;
	if (sscanf(copy, "SPAMD/%*d.%*d %d %n", &code, &n) != 1 || n == 0) {
		snprintf(err, errlen, "not a spamd reply: \"%.80s\"", copy);
		goto out;
	}
	if (code != 0) {
		snprintf(err, errlen, "spamd said \"%.80s\"", copy);
		goto out;
	}
	if (blank == NULL) {
		snprintf(err, errlen, "spamd's reply has no end of header");
		goto out;
	}
	const char *head = eol + 2, *end = blank + 2;
	const char *spam = reply_header(head, end, "Spam");
	double score;
	char yes[8];
	if (spam == NULL || sscanf(spam, " %7[A-Za-z] ; %lf", yes,
	    &score) != 2) {
		snprintf(err, errlen, "spamd's reply has no score");
		goto out;
	}
	v->score = score;
	/* The rule names: the body, on one line. */
	const char *body = blank + 4;
	size_t k = 0;
	for (const char *p = body; *p && k + 1 < sizeof(v->rules); p++)
		if (*p != '\r' && *p != '\n' && *p != ' ' &&
		    ((unsigned char)*p > 32 && (unsigned char)*p < 127))
			v->rules[k++] = *p;
	v->rules[k] = '\0';
	rc = 0;
out:
	free(copy);
	return rc;
}

int
spamcheck_score(const struct sockaddr *addr, socklen_t addrlen, int timeout,
    const char *content, size_t len, struct spam_verdict *v, char *err,
    size_t errlen)
{
	double deadline = mono_seconds() + timeout;
	struct buf reply = BUF_INIT;
	char head[96];
	int rc = -1;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, addr, addrlen) != 0) {
		if (errno != EINPROGRESS) {
			snprintf(err, errlen, "connect: %s", strerror(errno));
			goto out;
		}
		int w = wait_fd(fd, POLLOUT, deadline), soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (w == 0) {
			snprintf(err, errlen, "connect: timed out after %ds",
			    timeout);
			goto out;
		}
		if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
		    &sl) != 0 || soerr != 0) {
			snprintf(err, errlen, "connect: %s",
			    strerror(soerr ? soerr : errno));
			goto out;
		}
	}
	int hl = snprintf(head, sizeof(head), "SYMBOLS SPAMC/1.5\r\n"
	    "Content-length: %zu\r\n\r\n", len);
	if (send_all(fd, head, (size_t)hl, deadline) != 0 ||
	    send_all(fd, content, len, deadline) != 0) {
		snprintf(err, errlen, "sending the message: %s",
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		goto out;
	}
	(void)shutdown(fd, SHUT_WR);
	for (;;) {
		char chunk[4096];
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
		if (r > 0) {
			if (reply.len < REPLY_MAX)
				buf_append(&reply, chunk, (size_t)r);
			continue;
		}
		if (r == 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "reading the reply: %s",
			    strerror(errno));
			goto out;
		}
		int w = wait_fd(fd, POLLIN, deadline);
		if (w <= 0) {
			snprintf(err, errlen, "no whole reply within %ds",
			    timeout);
			goto out;
		}
	}
	rc = spamcheck_parse_reply(reply.data ? reply.data : "", reply.len,
	    v, err, errlen);
out:
	close(fd);
	buf_free(&reply);
	return rc;
}

bool
spamcheck_configured(const struct mxl_config *cfg)
{
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (cfg->lanes[i].spam_check)
			return true;
	return false;
}

static int
gather(void *ctx, const char *data, size_t len)
{
	buf_append(ctx, data, len);
	return 0;
}

/*
 * One scorer per message at a time: a worker with recipients of a
 * message another worker is scoring (they went to other destinations)
 * waits for that verdict instead of asking spamd again. An flock on
 * SCORING_DIR/QUEUEID in the spool, removed by its holder when done:
 * a waiter then holds the lock of a removed file, and reads the
 * envelope again, as does anyone who comes later. A holder that dies
 * leaves an empty file (its lock gone with it), removed by the next
 * scorer of that message. -1: no lock (go on without it).
 */
#define SCORING_DIR	"spamcheck"

static int
scoring_lock(struct spool *sp, const char *id, int wait_s)
{
	int dfd = spool_directory_fd(sp), d, fd;
	double deadline = mono_seconds() + wait_s;

	if (mkdirat(dfd, SCORING_DIR, 0700) != 0 && errno != EEXIST)
		return -1;
	d = openat(dfd, SCORING_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (d < 0)
		return -1;
	fd = openat(d, id, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	close(d);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    mono_seconds() >= deadline) {
			close(fd);
			return -1;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return fd;
}

static void
scoring_unlock(struct spool *sp, const char *id, int fd)
{
	if (fd < 0)
		return;
	int d = openat(spool_directory_fd(sp), SCORING_DIR, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d >= 0) {
		(void)unlinkat(d, id, 0);
		close(d);
	}
	close(fd);
}

static enum spam_gate gate_locked(struct spool *sp,
    const struct mxl_lane *lane, const struct spool_msg *msg, char *why,
    size_t whylen);

enum spam_gate
spamcheck_gate(struct spool *sp, const struct mxl_config *cfg,
    const struct spool_msg *msg, char *why, size_t whylen)
{
	const struct mxl_lane *lane = config_lane(cfg, msg->lane);
	struct spool_msg now;

	why[0] = '\0';
	/* Held since it was claimed (by another worker's check, say). */
	if (msg->flags & SPOOL_MSG_HELD)
		return SPAM_GATE_HELD;
	if (lane == NULL || lane->spam_check == NULL ||
	    (msg->flags & SPOOL_MSG_SCANNED))
		return SPAM_GATE_PASS;
	int lock = scoring_lock(sp, msg->id, lane->spam_check_timeout + 2);
	/* What a scorer we waited for decided. */
	int rc = spool_get(sp, msg->id, &now, NULL, NULL);
	if (rc != SPOOL_OK) {
		scoring_unlock(sp, msg->id, lock);
		snprintf(why, whylen, "4.3.0 cannot read the message for the "
		    "content check");
		/* Gone meanwhile: nothing to deliver, like held. */
		return rc == SPOOL_NOTFOUND ? SPAM_GATE_HELD : SPAM_GATE_DEFER;
	}
	enum spam_gate gate = (now.flags & SPOOL_MSG_HELD) ? SPAM_GATE_HELD :
	    (now.flags & SPOOL_MSG_SCANNED) ? SPAM_GATE_PASS :
	    gate_locked(sp, lane, &now, why, whylen);
	spool_msg_free(&now);
	scoring_unlock(sp, msg->id, lock);
	return gate;
}

static enum spam_gate
gate_locked(struct spool *sp, const struct mxl_lane *lane,
    const struct spool_msg *msg, char *why, size_t whylen)
{
	struct buf content = BUF_INIT;
	struct spam_verdict v;
	char err[256];
	enum spam_gate gate = SPAM_GATE_PASS;

	if (spool_read_content(sp, msg->id, gather, &content) != SPOOL_OK) {
		buf_free(&content);
		snprintf(why, whylen, "4.3.0 cannot read the message for the "
		    "content check");
		return SPAM_GATE_DEFER;
	}
	log_set_component("spamcheck");
	if (spamcheck_score((const struct sockaddr *)&lane->spam_check_sa,
	    lane->spam_check_sa_len, lane->spam_check_timeout,
	    content.data ? content.data : "", content.len, &v, err,
	    sizeof(err)) != 0) {
		bool deliver = lane->spam_failure_deliver;
		log_warn("%s: spam check failed: spamd %s: %s; %s (lane %s, "
		    "spam_check_failure = %s)", msg->id, lane->spam_check, err,
		    deliver ? "delivered unchecked" : "deferred", lane->name,
		    deliver ? "deliver" : "defer");
		snprintf(why, whylen, "4.7.0 content check unavailable "
		    "(spamd %s: %s)", lane->spam_check, err);
		gate = deliver ? SPAM_GATE_PASS : SPAM_GATE_DEFER;
	} else if (v.score > lane->spam_threshold) {
		/*
		 * Held as "queuerun hold" holds it (spool/admin.c): this
		 * job's claims are handed back by the caller, and keep no
		 * schedule key.
		 */
		struct spool_admin_how how = {0};
		struct spool_admin_item item = {0};
		snprintf(item.id, sizeof(item.id), "%s", msg->id);
		if (spool_admin_apply(sp, SPOOL_ADMIN_HOLD, &how, &item, 1,
		    (int64_t)time(NULL)) == SPOOL_OK && item.found) {
			log_info("%s: hold: spam score %.1f above %.1f (lane %s) "
			    "rules=%s", msg->id, v.score, lane->spam_threshold,
			    lane->name, v.rules);
			gate = SPAM_GATE_HELD;
		} else {
			snprintf(why, whylen, "4.3.0 cannot put the message "
			    "on hold");
			gate = SPAM_GATE_DEFER;
		}
	} else {
		log_info("%s: spam score %.1f, not above %.1f (lane %s) "
		    "rules=%s", msg->id, v.score, lane->spam_threshold,
		    lane->name, v.rules);
		/* Unmarked, it is scored again at its next attempt: no harm. */
		(void)spool_msg_add_flags(sp, msg->id, SPOOL_MSG_SCANNED);
	}
	log_set_component(NULL);
	buf_free(&content);
	return gate;
}
