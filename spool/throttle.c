/*
 * NAME
 *	throttle - connection slots and delivery rates shared by all runners
 * DESCRIPTION
 *	throttle.db holds one record per throttle key (in practice
 *	"provider|source-address"):
 *
 *	- connection slots: who holds one (pid) and until when (lease);
 *	  a slot whose holder died or whose lease ran out is free again;
 *	- a sliding-window rate counter: the deliveries of the last
 *	  rate_period seconds, kept in RATE_BUCKETS buckets of 1/60 of the
 *	  period each. Two cron passes ten minutes apart under "100/h"
 *	  therefore send 100 between them, not 200, and "20/s" paces within
 *	  17 ms, in constant space whatever the rate. A grant counts from
 *	  when it is made until its connection ends; then what it sent
 *	  counts from when the server answered each message;
 *	- the time of the last delivery, for a minimum delay between them;
 *	- "a priority-lane delivery is waiting until T": until then other
 *	  lanes get nothing, so the next free delivery goes to it.
 *
 *	Each call is one short transaction, committed without waiting for
 *	the disk: after a crash the counts are at worst a little stale.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define THROTTLE_VERSION	2
#define RATE_BUCKETS		60
#define MAX_SLOTS		256
#define PRIORITY_HOLD_MS	3000
#define BUSY_RETRY_MS		200

struct slot {
	uint32_t pid;
	uint32_t token;
	int64_t lease_until;	/* unix seconds */
};

struct throttle_state {
	int64_t head_start_ms;	/* start of the newest rate bucket */
	int64_t bucket_ms;	/* width of a bucket (period / RATE_BUCKETS) */
	uint32_t head;		/* index of the newest bucket */
	int64_t counts[RATE_BUCKETS];
	int64_t last_ms;
	int64_t priority_wait_until_ms;
	int64_t horizon_ms;	/* deliveries booked up to here */
	uint32_t nslots;
	struct slot slots[MAX_SLOTS];
};


static void
encode(const struct throttle_state *st, struct buf *b)
{
	buf_put_be64(b, THROTTLE_VERSION);
	buf_put_be64(b, (uint64_t)st->head_start_ms);
	buf_put_be64(b, (uint64_t)st->bucket_ms);
	buf_put_be64(b, st->head);
	for (int i = 0; i < RATE_BUCKETS; i++)
		buf_put_be64(b, (uint64_t)st->counts[i]);
	buf_put_be64(b, (uint64_t)st->last_ms);
	buf_put_be64(b, (uint64_t)st->priority_wait_until_ms);
	buf_put_be64(b, (uint64_t)st->horizon_ms);
	buf_put_be64(b, st->nslots);
	for (uint32_t i = 0; i < st->nslots; i++) {
		buf_put_be64(b, (uint64_t)st->slots[i].pid << 32 |
		    st->slots[i].token);
		buf_put_be64(b, (uint64_t)st->slots[i].lease_until);
	}
}

#define FIXED_WORDS (4 + RATE_BUCKETS + 4)

/* A record that does not decode is treated as fresh state. */
static void
decode(const unsigned char *p, size_t len, struct throttle_state *st)
{
	memset(st, 0, sizeof(*st));
	if (len < FIXED_WORDS * 8 || get_be64(p) != THROTTLE_VERSION)
		return;
	uint64_t n = get_be64(p + (FIXED_WORDS - 1) * 8);
	if (n > MAX_SLOTS || len != FIXED_WORDS * 8 + n * 16)
		return;
	const unsigned char *q = p + 8;
	st->head_start_ms = (int64_t)get_be64(q);
	st->bucket_ms = (int64_t)get_be64(q + 8);
	st->head = (uint32_t)(get_be64(q + 16) % RATE_BUCKETS);
	q += 24;
	for (int i = 0; i < RATE_BUCKETS; i++, q += 8)
		st->counts[i] = (int64_t)get_be64(q);
	st->last_ms = (int64_t)get_be64(q);
	st->priority_wait_until_ms = (int64_t)get_be64(q + 8);
	st->horizon_ms = (int64_t)get_be64(q + 16);
	q += 32;
	st->nslots = (uint32_t)n;
	for (uint32_t i = 0; i < n; i++, q += 16) {
		uint64_t id = get_be64(q);
		st->slots[i].pid = (uint32_t)(id >> 32);
		st->slots[i].token = (uint32_t)id;
		st->slots[i].lease_until = (int64_t)get_be64(q + 8);
	}
}

static int
load(struct spool *sp, DB_TXN *txn, const char *key, struct throttle_state *st)
{
	DBT k, v;
	int rc;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.flags = DB_DBT_MALLOC;
	rc = sp->throttle->get(sp->throttle, txn, &k, &v, DB_RMW);
	if (rc == DB_NOTFOUND) {
		memset(st, 0, sizeof(*st));
		return 0;
	}
	if (rc != 0)
		return rc;
	decode(v.data, v.size, st);
	free(v.data);
	return 0;
}

static int
store(struct spool *sp, DB_TXN *txn, const char *key,
    const struct throttle_state *st)
{
	struct buf b = BUF_INIT;

	encode(st, &b);
	int rc = spool_put(sp->throttle, txn, key, strlen(key), b.data, b.len,
	    0);
	buf_free(&b);
	return rc;
}

static bool
holder_alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void
free_dead_slots(struct throttle_state *st, int64_t now_s)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < st->nslots; i++)
		if (st->slots[i].lease_until > now_s &&
		    holder_alive(st->slots[i].pid))
			st->slots[k++] = st->slots[i];
	st->nslots = k;
}

/* Moves the bucket ring forward to now, emptying buckets that expired. */
static void
roll_buckets(struct throttle_state *st, int64_t now, int64_t period_ms)
{
	int64_t width = period_ms / RATE_BUCKETS;

	if (width < 1)
		width = 1;
	if (st->bucket_ms != width || st->head_start_ms == 0 ||
	    now < st->head_start_ms) {
		/* New key, a changed rate, or a clock step: start afresh. */
		memset(st->counts, 0, sizeof(st->counts));
		st->bucket_ms = width;
		st->head = 0;
		st->head_start_ms = now;
		return;
	}
	int64_t steps = (now - st->head_start_ms) / width;
	if (steps >= RATE_BUCKETS) {
		memset(st->counts, 0, sizeof(st->counts));
		st->head_start_ms += steps * width;
		return;
	}
	for (int64_t i = 0; i < steps; i++) {
		st->head = (st->head + 1) % RATE_BUCKETS;
		st->counts[st->head] = 0;
	}
	st->head_start_ms += steps * width;
}

static int64_t
rate_used(const struct throttle_state *st)
{
	int64_t sum = 0;

	for (int i = 0; i < RATE_BUCKETS; i++)
		sum += st->counts[i];
	return sum;
}

/* When the oldest delivery in the window leaves it. */
static int64_t
rate_next_free(const struct throttle_state *st)
{
	for (int k = 1; k <= RATE_BUCKETS; k++) {
		uint32_t i = (st->head + (uint32_t)k) % RATE_BUCKETS;
		if (st->counts[i] > 0)
			return st->head_start_ms + k * st->bucket_ms;
	}
	return st->head_start_ms + st->bucket_ms;
}

static int
acquire_once(struct spool *sp, const char *key,
    const struct spool_throttle_limits *l, bool priority, int want,
    int lease, struct spool_throttle_grant *g)
{
	struct throttle_state st;
	DB_TXN *txn;
	int64_t now = wall_ms();
	int rc;

	g->granted = 0;
	g->slot = -1;
	g->retry_ms = 0;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = load(sp, txn, key, &st)) != 0)
		goto err;
	free_dead_slots(&st, now / 1000);

	long allowed = want;
	int64_t retry = 0;
	if (!priority && st.priority_wait_until_ms > now) {
		allowed = 0;	/* a priority delivery is first in line */
		retry = now + BUSY_RETRY_MS;
	}
	if (allowed > 0 && l->concurrency > 0 &&
	    st.nslots >= (uint32_t)l->concurrency) {
		allowed = 0;
		retry = now + BUSY_RETRY_MS;
	}
	if (allowed > 0 && l->delay_ms > 0) {
		if (st.last_ms + l->delay_ms > now) {
			allowed = 0;
			retry = st.last_ms + l->delay_ms;
		} else {
			allowed = 1;
		}
	}
	if (l->rate_count > 0)
		roll_buckets(&st, now, (int64_t)l->rate_period * 1000);
	if (allowed > 0 && l->rate_count > 0) {
		int64_t left = l->rate_count - rate_used(&st);
		if (left < allowed)
			allowed = left > 0 ? (long)left : 0;
		if (allowed == 0)
			retry = rate_next_free(&st);
	}
	if (allowed > 0 && l->concurrency > 0) {
		struct slot *s = &st.slots[st.nslots++];
		s->pid = (uint32_t)getpid();
		s->token = (uint32_t)random() | 1;
		s->lease_until = now / 1000 + lease;
		g->slot = (int)(s->token & 0x7fffffff);
		s->token = (uint32_t)g->slot;
	}
	if (allowed > 0) {
		st.counts[st.head] += allowed;
		st.last_ms = now;
		if (priority)
			st.priority_wait_until_ms = 0;
	} else if (priority) {
		st.priority_wait_until_ms = now + PRIORITY_HOLD_MS;
	}
	g->granted = (int)allowed;
	g->granted_ms = now;
	g->retry_ms = allowed > 0 ? 0 : retry;
	if ((rc = store(sp, txn, key, &st)) != 0)
		goto err;
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
err:
	txn->abort(txn);
	return rc;
}

int
spool_throttle_acquire(struct spool *sp, const char *key,
    const struct spool_throttle_limits *limits, bool priority, int want,
    int lease, struct spool_throttle_grant *grant)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = acquire_once(sp, key, limits, priority, want, lease,
		    grant);
	if (rc != 0) {
		log_error("spool: throttle %s: %s", key, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

/* The bucket that time t (unix ms) falls in, or -1 if out of the window. */
static int
bucket_of(const struct throttle_state *st, int64_t t)
{
	if (st->bucket_ms <= 0 || st->head_start_ms == 0)
		return -1;
	if (t >= st->head_start_ms)
		return (int)st->head;
	int64_t back = (st->head_start_ms - t + st->bucket_ms - 1) /
	    st->bucket_ms;
	if (back >= RATE_BUCKETS)
		return -1;
	return (int)((st->head + RATE_BUCKETS - (uint32_t)back) %
	    RATE_BUCKETS);
}

static int
release_once(struct spool *sp, const char *key,
    const struct spool_throttle_grant *g, int unused,
    const int64_t *used_ms, size_t nused)
{
	struct throttle_state st;
	DB_TXN *txn;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = load(sp, txn, key, &st)) != 0)
		goto err;
	uint32_t k = 0;
	for (uint32_t i = 0; i < st.nslots; i++)
		if (!(g->slot >= 0 && st.slots[i].token == (uint32_t)g->slot &&
		    st.slots[i].pid == (uint32_t)getpid()))
			st.slots[k++] = st.slots[i];
	st.nslots = k;
	if (st.bucket_ms > 0)
		roll_buckets(&st, wall_ms(), st.bucket_ms * RATE_BUCKETS);
	/*
	 * What was granted leaves the bucket of the grant (if the window
	 * still holds it); what went is counted again when it went. A
	 * session granted 20 at a "20/s" throttle that sent them 0.1 s
	 * later would otherwise let the next session send its 20 within
	 * the same second at the server.
	 */
	int64_t back = unused + (int64_t)nused;
	int from = bucket_of(&st, g->granted_ms);
	if (from >= 0) {
		int64_t take = st.counts[from] < back ? st.counts[from] : back;
		st.counts[from] -= take;
	}
	for (size_t i = 0; i < nused; i++) {
		int to = bucket_of(&st, used_ms[i]);
		if (to >= 0)
			st.counts[to]++;
	}
	if ((rc = store(sp, txn, key, &st)) != 0)
		goto err;
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
err:
	txn->abort(txn);
	return rc;
}

int
spool_throttle_release(struct spool *sp, const char *key,
    const struct spool_throttle_grant *grant, int unused,
    const int64_t *used_ms, size_t nused)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	if (grant->slot < 0 && unused <= 0 && nused == 0)
		return SPOOL_OK;
	SPOOL_RETRY(sp, rc, i)
		rc = release_once(sp, key, grant, unused, used_ms, nused);
	if (rc != 0) {
		log_error("spool: throttle %s: %s", key, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

static int
book_once(struct spool *sp, const char *key,
    const struct spool_throttle_limits *l, int count, int64_t *first_ms,
    int64_t *step_ms)
{
	struct throttle_state st;
	DB_TXN *txn;
	int64_t now = wall_ms();
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = load(sp, txn, key, &st)) != 0)
		goto err;
	int64_t step = 0;
	if (l->rate_count > 0)
		step = (int64_t)l->rate_period * 1000 / l->rate_count;
	if (l->delay_ms > step)
		step = l->delay_ms;
	int64_t start = st.horizon_ms > now ? st.horizon_ms : now + step;
	if (*first_ms > start)
		start = *first_ms;	/* the caller knows of a later limit */
	st.horizon_ms = start + step * count;
	*first_ms = start;
	*step_ms = step;
	if ((rc = store(sp, txn, key, &st)) != 0)
		goto err;
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
err:
	txn->abort(txn);
	return rc;
}

int
spool_throttle_book(struct spool *sp, const char *key,
    const struct spool_throttle_limits *limits, int count, int64_t *first_ms,
    int64_t *step_ms)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = book_once(sp, key, limits, count, first_ms, step_ms);
	if (rc != 0) {
		log_error("spool: throttle %s: %s", key, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

static int
counter_once(struct spool *sp, const char *name, int64_t add,
    uint64_t *value)
{
	char key[300];
	DBT k, v;
	DB_TXN *txn;
	unsigned char raw[8];
	int rc;

	snprintf(key, sizeof(key), "counter|%s", name);
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = key;
	k.size = (u_int32_t)strlen(key);
	v.data = raw;
	v.ulen = sizeof(raw);
	v.flags = DB_DBT_USERMEM;
	rc = sp->throttle->get(sp->throttle, txn, &k, &v, add ? DB_RMW : 0);
	*value = (rc == 0 && v.size == 8) ? get_be64(raw) : 0;
	if (rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL)
		rc = 0;
	if (rc == 0 && add != 0) {
		struct buf b = BUF_INIT;
		/* Never below 0: a reservation given back twice is no debt. */
		uint64_t after = add < 0 && (uint64_t)-add > *value ? 0 :
		    *value + (uint64_t)add;
		buf_put_be64(&b, after);
		rc = spool_put(sp->throttle, txn, key, strlen(key), b.data,
		    b.len, 0);
		buf_free(&b);
	}
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_counter_take(struct spool *sp, const char *key, int64_t add,
    uint64_t *value)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = counter_once(sp, key, add, value);
	if (rc != 0) {
		log_error("spool: counter %s: %s", key, db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}
