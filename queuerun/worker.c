/*
 * NAME
 *	worker - delivery worker processes
 * DESCRIPTION
 *	See worker.h. Tasks and answers travel as single datagrams on a
 *	SOCK_SEQPACKET socket pair, so neither side ever reads half a
 *	frame. A frame is a header (task, count, claim time) and the
 *	items: for a delivery, each with its fixed fields and two
 *	length-prefixed strings; for a resolution, length-prefixed domains
 *	(and in the answer, each followed by its key). A delivery's answer
 *	is the header and a job_report. Both
 *	ends are the same executable, so fixed fields go as they are in
 *	memory.
 */
#include "queuerun/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "queuerun/deliver.h"
#include "lib/log.h"
#include "lib/util.h"

/* Big enough for any job the engine makes, small enough for a socket. */
#define FRAME_MAX	(160 * 1024)
#define RESOLVE_MAX	64	/* domains in one resolution */
#define PICKUP_FAILED	1	/* bits of a pickup answer's claimed_ms */
#define PICKUP_LEFT	2

struct frame_head {
	uint32_t task;		/* enum worker_task */
	uint32_t count;
	int64_t claimed_ms;
};

struct frame_item {
	char id[SPOOL_ID_SIZE];
	uint32_t index;
	uint32_t attempts;
	int64_t due;
	int64_t lease_until;
	uint8_t held;
	uint16_t address_len;
	uint16_t domain_len;
};

static size_t
put(unsigned char *buf, size_t at, const void *data, size_t len)
{
	memcpy(buf + at, data, len);
	return at + len;
}

static bool
send_frame(int fd, const void *buf, size_t len)
{
	ssize_t sent;

	do
		sent = send(fd, buf, len, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	return sent == (ssize_t)len;
}

size_t
worker_send_job(struct worker *w, const struct spool_work *work, size_t n,
    int64_t claimed_ms)
{
	unsigned char *buf = xmalloc(FRAME_MAX);
	struct frame_head head = {WORKER_DELIVER, 0, claimed_ms};
	size_t at = sizeof(head), taken = 0;

	for (; taken < n; taken++) {
		const struct spool_work *s = &work[taken];
		size_t alen = strlen(s->address), dlen = strlen(s->domain);
		if (alen > UINT16_MAX || dlen > UINT16_MAX ||
		    at + sizeof(struct frame_item) + alen + dlen > FRAME_MAX)
			break;
		struct frame_item it;
		memset(&it, 0, sizeof(it));
		memcpy(it.id, s->id, SPOOL_ID_SIZE);
		it.index = s->index;
		it.attempts = s->attempts;
		it.due = s->due;
		it.lease_until = s->lease_until;
		it.held = s->held;
		it.address_len = (uint16_t)alen;
		it.domain_len = (uint16_t)dlen;
		at = put(buf, at, &it, sizeof(it));
		at = put(buf, at, s->address, alen);
		at = put(buf, at, s->domain, dlen);
	}
	head.count = (uint32_t)taken;
	memcpy(buf, &head, sizeof(head));
	bool ok = send_frame(w->fd, buf, at);
	free(buf);
	if (!ok) {
		log_error("delivery worker %ld: cannot send it a job: %s",
		    (long)w->pid, strerror(errno));
		return 0;
	}
	return taken;
}

static size_t
put_string(unsigned char *buf, size_t at, const char *s)
{
	uint16_t len = (uint16_t)strlen(s);

	at = put(buf, at, &len, sizeof(len));
	return put(buf, at, s, len);
}

/* The next length-prefixed string at *at, or NULL when it is cut. */
static char *
get_string(const unsigned char *buf, size_t len, size_t *at)
{
	uint16_t n;

	if (*at + sizeof(n) > len)
		return NULL;
	memcpy(&n, buf + *at, sizeof(n));
	*at += sizeof(n);
	if (*at + n > len)
		return NULL;
	char *s = xstrndup((const char *)buf + *at, n);
	*at += n;
	return s;
}

size_t
worker_send_resolve(struct worker *w, char *const *domains, size_t n)
{
	unsigned char *buf = xmalloc(FRAME_MAX);
	struct frame_head head = {WORKER_RESOLVE, 0, 0};
	size_t at = sizeof(head), taken = 0;

	/* The answer, a domain and a key of 511 octets at most each, fits. */
	for (; taken < n && taken < RESOLVE_MAX; taken++)
		at = put_string(buf, at, domains[taken]);
	head.count = (uint32_t)taken;
	memcpy(buf, &head, sizeof(head));
	bool ok = send_frame(w->fd, buf, at);
	free(buf);
	return ok ? taken : 0;
}

bool
worker_send_pickup(struct worker *w)
{
	struct frame_head head = {WORKER_PICKUP, 0, 0};

	return send_frame(w->fd, &head, sizeof(head));
}

/* Decodes a job frame into work items; false when it is malformed. */
static bool
decode_job(const unsigned char *buf, size_t len, struct spool_work **out,
    size_t *n, int64_t *claimed_ms)
{
	struct frame_head head;
	size_t at = sizeof(head);

	if (len < sizeof(head))
		return false;
	memcpy(&head, buf, sizeof(head));
	if (head.count > FRAME_MAX / sizeof(struct frame_item))
		return false;
	struct spool_work *work = xcalloc(head.count + 1, sizeof(*work));
	size_t k = 0;
	for (; k < head.count; k++) {
		struct frame_item it;
		if (at + sizeof(it) > len)
			break;
		memcpy(&it, buf + at, sizeof(it));
		at += sizeof(it);
		if (at + it.address_len + it.domain_len > len)
			break;
		struct spool_work *s = &work[k];
		memcpy(s->id, it.id, SPOOL_ID_SIZE);
		s->id[SPOOL_ID_SIZE - 1] = '\0';
		s->index = it.index;
		s->attempts = it.attempts;
		s->due = it.due;
		s->lease_until = it.lease_until;
		s->held = it.held != 0;
		s->address = xstrndup((const char *)buf + at, it.address_len);
		at += it.address_len;
		s->domain = xstrndup((const char *)buf + at, it.domain_len);
		at += it.domain_len;
	}
	if (k != head.count) {
		spool_work_free(work, k);
		return false;
	}
	*out = work;
	*n = k;
	*claimed_ms = head.claimed_ms;
	return true;
}

/* A delivery task: the answer is the head and the job's report. */
static size_t
deliver(struct job_context *jc, const unsigned char *buf, size_t len,
    unsigned char *answer)
{
	struct spool_work *work;
	size_t n;
	int64_t claimed_ms;
	struct job_report rep;
	struct frame_head head = {WORKER_DELIVER, 0, 0};

	if (!decode_job(buf, len, &work, &n, &claimed_ms))
		return 0;
	job_deliver(jc, work, n, claimed_ms, &rep);
	spool_work_free(work, n);
	size_t at = put(answer, 0, &head, sizeof(head));
	return put(answer, at, &rep, sizeof(rep));
}

/* A resolution: each domain and its next-hop key. */
static size_t
resolve(struct job_context *jc, const unsigned char *buf, size_t len,
    unsigned char *answer)
{
	struct frame_head head;
	size_t in = sizeof(head), out = sizeof(head);
	char key[512];

	memcpy(&head, buf, sizeof(head));
	for (uint32_t i = 0; i < head.count && !deliver_stop; i++) {
		char *domain = get_string(buf, len, &in);
		if (domain == NULL)
			return 0;
		job_next_hop_key(jc, domain, key, sizeof(key));
		if (strlen(domain) > 511)
			domain[511] = '\0';
		out = put_string(answer, out, domain);
		out = put_string(answer, out, key);
		free(domain);
	}
	head.claimed_ms = 0;
	memcpy(answer, &head, sizeof(head));
	return out;
}

/*
 * A pickup: the answer's count is the messages queued, its claimed_ms
 * the PICKUP_* bits.
 */
static size_t
pick_up(struct spool *sp, unsigned char *answer)
{
	size_t n = 0;
	int rc = spool_pickup(sp, NULL, &n);
	struct frame_head head = {WORKER_PICKUP,
	    n > UINT32_MAX ? UINT32_MAX : (uint32_t)n,
	    (rc != SPOOL_OK ? PICKUP_FAILED : 0) |
	    (spool_pickup_left(sp) ? PICKUP_LEFT : 0)};

	return put(answer, 0, &head, sizeof(head));
}

static void
worker_main(const struct mxl_config *cfg, time_t deadline, int fd)
{
	struct spool *sp;
	unsigned char *buf = xmalloc(FRAME_MAX);
	unsigned char *answer = xmalloc(FRAME_MAX);

	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK) {
		log_error("delivery worker: cannot open the mail queue in %s",
		    cfg->spool_directory);
		_exit(75);
	}
	struct job_context *jc = job_context_new(cfg, sp, NULL, false,
	    deadline);
	while (!deliver_stop) {
		ssize_t got = recv(fd, buf, FRAME_MAX, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;		/* the engine is done with us */
		struct frame_head head;
		size_t answer_len;
		if ((size_t)got < sizeof(head))
			break;
		memcpy(&head, buf, sizeof(head));
		if (head.task == WORKER_RESOLVE)
			answer_len = resolve(jc, buf, (size_t)got, answer);
		else if (head.task == WORKER_PICKUP)
			answer_len = pick_up(sp, answer);
		else
			answer_len = deliver(jc, buf, (size_t)got, answer);
		if (answer_len == 0) {
			log_error("delivery worker: malformed task");
			break;
		}
		if (!send_frame(fd, answer, answer_len))
			break;
	}
	free(answer);
	job_context_free(jc);
	spool_close(sp);
	free(buf);
	_exit(0);
}

int
worker_spawn(const struct mxl_config *cfg, time_t deadline,
    const int *close_fds, size_t nclose, struct worker *w)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("cannot start a delivery worker: socketpair: %s",
		    strerror(errno));
		return -1;
	}
	int size = FRAME_MAX * 2;
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	fflush(NULL);		/* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid < 0) {
		log_error("cannot start a delivery worker: fork: %s",
		    strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/*
		 * The engine's spool handle is not ours to use (BerkeleyDB
		 * handles do not cross fork): it is left alone, and the
		 * worker opens its own.
		 */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(0);	/* the engine died already */
		close(sv[0]);
		for (size_t i = 0; i < nclose; i++)
			if (close_fds[i] >= 0)
				close(close_fds[i]);
		worker_main(cfg, deadline, sv[1]);
	}
	close(sv[1]);
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->fd = sv[0];
	return 0;
}

int
worker_read_answer(struct worker *w, struct worker_answer *a)
{
	unsigned char *buf = xmalloc(FRAME_MAX);
	struct frame_head head;
	ssize_t got;
	int ok = 0;

	memset(a, 0, sizeof(*a));
	do
		got = recv(w->fd, buf, FRAME_MAX, 0);
	while (got < 0 && errno == EINTR);
	if (got < (ssize_t)sizeof(head))
		goto out;
	memcpy(&head, buf, sizeof(head));
	a->task = head.task;
	if (head.task == WORKER_DELIVER) {
		if (got == (ssize_t)(sizeof(head) + sizeof(a->rep))) {
			memcpy(&a->rep, buf + sizeof(head), sizeof(a->rep));
			a->rep.mx_key[sizeof(a->rep.mx_key) - 1] = '\0';
			ok = 1;
		}
		goto out;
	}
	if (head.task == WORKER_PICKUP) {
		a->picked_up = head.count;
		a->pickup_failed = (head.claimed_ms & PICKUP_FAILED) != 0;
		a->pickup_left = (head.claimed_ms & PICKUP_LEFT) != 0;
		ok = 1;
		goto out;
	}
	if (head.task != WORKER_RESOLVE || head.count > FRAME_MAX / 4)
		goto out;
	a->domains = xcalloc(head.count + 1, sizeof(char *));
	a->keys = xcalloc(head.count + 1, sizeof(char *));
	size_t at = sizeof(head);
	for (; a->n < head.count; a->n++) {
		a->domains[a->n] = get_string(buf, (size_t)got, &at);
		a->keys[a->n] = get_string(buf, (size_t)got, &at);
		if (a->domains[a->n] == NULL || a->keys[a->n] == NULL) {
			a->n++;
			worker_answer_free(a);
			goto out;
		}
	}
	ok = 1;
out:
	free(buf);
	return ok;
}

void
worker_answer_free(struct worker_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->domains[i]);
		free(a->keys[i]);
	}
	free(a->domains);
	free(a->keys);
	memset(a, 0, sizeof(*a));
}

void
worker_close(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}
