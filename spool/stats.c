/*
 * NAME
 *	stats - delivery counters kept in the spool
 * DESCRIPTION
 *	See stats.h. One b-tree, stats.db, of small pages (STATS_PAGESIZE)
 *	so that few records share a page: BerkeleyDB locks pages, and
 *	every outcome transaction of every runner updates a record here.
 *	Keys:
 *
 *	SHARD(1) DAY(4) 'c' PROVIDER NUL SOURCE NUL LANE NUL POOL
 *					counters of that day (DAY
 *					0xffffffff: all time)
 *	SHARD(1) DAY(4) 'd'|'b' PROVIDER NUL REASON
 *					one deferral or bounce reason
 *	SHARD(1) DAY(4) 'n' 'd'|'b'	how many distinct reasons the day
 *					has in this shard (the cap)
 *
 *	SHARD is the writer's process id modulo STATS_SHARDS and comes
 *	first, so each shard's records sit together on their own pages;
 *	DAY is big-endian, so retention walks each shard from its start.
 *
 *	Value: version(4) n(4), then n times a name (record.h string) and
 *	a 64-bit count. Validated when read; a record that does not decode
 *	is replaced by the delta rather than trusted (and logged).
 */
#include "spool/stats.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/record.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define VALUE_VERSION	1
#define KEY_MAX		1200
#define DELTA_MAX	32	/* names one outcome transaction may touch */

const int64_t stats_delivery_buckets[] = {1, 5, 30, 60, 300, 900, 3600,
	14400, 86400, 432000};
/* The counters' names of those buckets, in the same order. */
static const char *const bucket_names[] = {"dly:1", "dly:5", "dly:30",
	"dly:60", "dly:300", "dly:900", "dly:3600", "dly:14400", "dly:86400",
	"dly:432000"};
const size_t stats_ndelivery_buckets = sizeof(stats_delivery_buckets) /
    sizeof(stats_delivery_buckets[0]);

/* ------------------------------------------------------- pure helpers */

int64_t
stats_day(int64_t t)
{
	/* Floor, not truncation: a time before 1970 is in a day before 0. */
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static bool
queue_id_like(const char *w, size_t n)
{
	if (n < 10)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)w[i]) ||
		    islower((unsigned char)w[i]))
			return false;
	return true;
}

void
stats_reason_normalize(const char *reply, char *out)
{
	size_t o = 0;
	const char *p = reply ? reply : "";

	while (*p && o < STATS_REASON_LEN) {
		if (*p == '<') {
			/* <user@domain> and the like: the same for everyone. */
			const char *end = strchr(p, '>');
			if (end) {
				p = end + 1;
				if (o + 2 <= STATS_REASON_LEN) {
					out[o++] = '<';
					out[o++] = '>';
				}
				continue;
			}
		}
		if (!isspace((unsigned char)*p) && (unsigned char)*p >= 0x20) {
			/* An unterminated '<' is just a character. */
			size_t n = *p == '<' ? 1 : strcspn(p, " \t\r\n<");
			if (memchr(p, '@', n) || queue_id_like(p, n)) {
				if (o + 3 <= STATS_REASON_LEN) {
					memcpy(out + o, "...", 3);
					o += 3;
				}
				p += n;
				continue;
			}
			for (size_t i = 0; i < n && o < STATS_REASON_LEN; i++)
				out[o++] = (unsigned char)p[i] < 0x20 ||
				    (unsigned char)p[i] == 0x7f ? ' ' : p[i];
			p += n;
			continue;
		}
		/* White space and control characters: one space. */
		while (*p && (isspace((unsigned char)*p) ||
		    (unsigned char)*p < 0x20))
			p++;
		if (o > 0 && out[o - 1] != ' ' && *p)
			out[o++] = ' ';
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* ------------------------------------------------------------ records */

struct delta {
	const char *names[DELTA_MAX];
	uint64_t values[DELTA_MAX];
	size_t n;
};

/* Names are kept, not copied: they live as long as the delta. */
static void
delta_add(struct delta *d, const char *name, uint64_t v)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->names[i], name) == 0) {
			d->values[i] += v;
			return;
		}
	if (d->n < DELTA_MAX) {
		d->names[d->n] = name;
		d->values[d->n++] = v;
	}
}

static void
free_counters(struct stats_counter *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].name);
	free(c);
}

/* -1 unless data is a whole, valid value. */
static int
decode_value(const void *data, size_t len, struct stats_counter **out,
    size_t *nout)
{
	struct record_reader r = {data, len, false};

	*out = NULL;
	*nout = 0;
	if (record_get_u32(&r) != VALUE_VERSION)
		return -1;
	uint32_t n = record_get_u32(&r);
	/* Each counter takes at least 12 bytes: no huge n from bad data. */
	if (r.bad || n > r.left / 12)
		return -1;
	struct stats_counter *c = xcalloc(n + 1, sizeof(*c));
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		c[i].name = record_get_str(&r);
		c[i].value = (uint64_t)record_get_i64(&r);
		if (c[i].name == NULL)
			r.bad = true;
	}
	if (r.bad || r.left != 0) {
		free_counters(c, n);
		return -1;
	}
	*out = c;
	*nout = n;
	return 0;
}

static void
encode_value(const struct stats_counter *c, size_t n, struct buf *b)
{
	buf_put_be32(b, VALUE_VERSION);
	buf_put_be32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		record_put_str(b, c[i].name);
		buf_put_be64(b, c[i].value);
	}
}

static size_t
make_key(unsigned char *k, int shard, int64_t day, char kind,
    const char *const *fields, size_t nfields)
{
	size_t o = 0;

	k[o++] = (unsigned char)shard;
	k[o++] = (unsigned char)((uint64_t)day >> 24);
	k[o++] = (unsigned char)((uint64_t)day >> 16);
	k[o++] = (unsigned char)((uint64_t)day >> 8);
	k[o++] = (unsigned char)day;
	k[o++] = (unsigned char)kind;
	for (size_t i = 0; i < nfields; i++) {
		const char *f = fields[i] && *fields[i] ? fields[i] : STATS_NONE;
		size_t n = strlen(f);
		/* Names come from the configuration; cut, never overflow. */
		if (n > (KEY_MAX - o - 1) / (nfields - i + 1))
			n = (KEY_MAX - o - 1) / (nfields - i + 1);
		if (i > 0)
			k[o++] = '\0';
		memcpy(k + o, f, n);
		o += n;
	}
	return o;
}

static int
shard_of_process(void)
{
	return (int)((unsigned)getpid() % STATS_SHARDS);
}

/*
 * Adds the delta to the record under key (creating it), inside txn.
 * *created tells whether it was new (may be NULL).
 */
static int
add_to_record(struct spool *sp, DB_TXN *txn, const unsigned char *k,
    size_t klen, const struct delta *d, bool *created)
{
	DBT key, val;
	struct stats_counter *c = NULL;
	size_t n = 0;
	int rc;

	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	val.flags = DB_DBT_MALLOC;
	rc = sp->stats->get(sp->stats, txn, &key, &val, DB_RMW);
	if (rc != 0 && rc != DB_NOTFOUND)
		return rc;
	if (created)
		*created = rc == DB_NOTFOUND;
	if (rc == 0) {
		if (decode_value(val.data, val.size, &c, &n) != 0)
			log_error("spool: a damaged counter record in stats.db "
			    "starts again from this outcome");
		free(val.data);
	}
	c = xrealloc(c, (n + d->n + 1) * sizeof(*c));
	for (size_t i = 0; i < d->n; i++) {
		size_t j = 0;
		while (j < n && strcmp(c[j].name, d->names[i]) != 0)
			j++;
		if (j == n) {
			c[n].name = xstrdup(d->names[i]);
			c[n++].value = 0;
		}
		c[j].value += d->values[i];
	}
	struct buf b = BUF_INIT;
	encode_value(c, n, &b);
	rc = spool_put(sp->stats, txn, k, klen, b.data, b.len, 0);
	buf_free(&b);
	free_counters(c, n);
	return rc;
}

/* The delta goes to the day's record and to the all-time one. */
static int
add_counters(struct spool *sp, DB_TXN *txn, int64_t day,
    const char *const fields[4], const struct delta *d)
{
	unsigned char k[KEY_MAX];
	int shard = shard_of_process();
	int rc;

	if (d->n == 0)
		return 0;
	size_t klen = make_key(k, shard, day, 'c', fields, 4);
	if ((rc = add_to_record(sp, txn, k, klen, d, NULL)) != 0)
		return rc;
	klen = make_key(k, shard, STATS_ALL_TIME, 'c', fields, 4);
	return add_to_record(sp, txn, k, klen, d, NULL);
}

/*
 * One more deferral or bounce (kind 'd' or 'b') for reason. A reason
 * not yet counted today in this shard takes one of the day's
 * STATS_REASONS_MAX places, or counts as STATS_OTHER_REASONS.
 */
static int
add_reason(struct spool *sp, DB_TXN *txn, int64_t day, char kind,
    const char *provider, const char *reply, uint64_t count)
{
	char reason[STATS_REASON_LEN + 1];
	unsigned char k[KEY_MAX];
	struct delta one = {{"n"}, {count}, 1};
	int shard = shard_of_process();
	DBT key, val;
	int rc;

	stats_reason_normalize(reply, reason);
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "(no reply)");
	const char *fields[2] = {provider, reason};
	size_t klen = make_key(k, shard, day, kind, fields, 2);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = (u_int32_t)klen;
	val.flags = DB_DBT_PARTIAL;	/* is it there? */
	rc = sp->stats->get(sp->stats, txn, &key, &val, DB_RMW);
	if (rc == DB_NOTFOUND) {
		unsigned char ck[16];
		const char *which[1] = {kind == 'd' ? "d" : "b"};
		size_t cklen = make_key(ck, shard, day, 'n', which, 1);
		struct stats_counter *c = NULL;
		size_t n = 0;
		uint64_t distinct = 0;

		memset(&key, 0, sizeof(key));
		memset(&val, 0, sizeof(val));
		key.data = ck;
		key.size = (u_int32_t)cklen;
		val.flags = DB_DBT_MALLOC;
		rc = sp->stats->get(sp->stats, txn, &key, &val, DB_RMW);
		if (rc == 0) {
			if (decode_value(val.data, val.size, &c, &n) == 0 &&
			    n == 1)
				distinct = c[0].value;
			free_counters(c, n);
			free(val.data);
		} else if (rc != DB_NOTFOUND) {
			return rc;
		}
		if (distinct >= STATS_REASONS_MAX) {
			fields[1] = STATS_OTHER_REASONS;
			klen = make_key(k, shard, day, kind, fields, 2);
		} else {
			struct delta more = {{"n"}, {1}, 1};
			if ((rc = add_to_record(sp, txn, ck, cklen, &more,
			    NULL)) != 0)
				return rc;
		}
	} else if (rc != 0) {
		return rc;
	}
	return add_to_record(sp, txn, k, klen, &one, NULL);
}

/* ----------------------------------------------------------- writing */

int
stats_count_received(struct spool *sp, DB_TXN *txn,
    const struct spool_msg *msg, int64_t now)
{
	struct delta d = {{0}, {0}, 0};
	const char *fields[4] = {NULL, NULL, msg->lane, NULL};

	delta_add(&d, "received", 1);
	delta_add(&d, "received_rcpts", msg->nrcpt);
	return add_counters(sp, txn, stats_day(now), fields, &d);
}

/*
 * The bucket a delivery time falls in (not cumulative: readers add up
 * the buckets below for Prometheus' le= counts).
 */
static const char *
bucket_name(int64_t seconds)
{
	for (size_t i = 0; i < stats_ndelivery_buckets; i++)
		if (seconds <= stats_delivery_buckets[i])
			return bucket_names[i];
	return "dly:inf";
}

/*
 * Counts the attempted outcomes among results, for a message that
 * arrived at arrival in lane, inside txn: one record update for the
 * day, one for all time, and one or two per distinct reason.
 */
int
stats_count_outcomes(struct spool *sp, DB_TXN *txn,
    const struct spool_stats_where *where, const char *lane, int64_t arrival,
    const struct spool_result *results, size_t n, int64_t now)
{
	struct delta d = {{0}, {0}, 0};
	char (*classes)[80] = xcalloc(n + 1, sizeof(*classes));
	/* Reasons: a batch's failures mostly share one reply; count once. */
	struct { char kind; const char *reply; uint64_t count; } *why =
	    xcalloc(n + 1, sizeof(*why));
	size_t nwhy = 0;
	int64_t day = stats_day(now);
	const char *provider = where ? where->provider : NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		const struct spool_result *r = &results[i];
		char kind = 0;
		if (r->state == RCPT_SENT && r->attempted) {
			int64_t took = now > arrival ? now - arrival : 0;
			delta_add(&d, "sent", 1);
			delta_add(&d, bucket_name(took), 1);
			delta_add(&d, "dly_sum", (uint64_t)took);
		} else if (r->state == RCPT_BOUNCED && where &&
		    where->suppressed) {
			delta_add(&d, "suppressed", 1);
		} else if (r->state == RCPT_BOUNCED) {
			snprintf(classes[i], sizeof(classes[i]), "bounced:%s",
			    r->class && *r->class ? r->class : "other");
			delta_add(&d, classes[i], 1);
			kind = 'b';
		} else if (r->state == RCPT_QUEUED && r->attempted) {
			delta_add(&d, "deferred", 1);
			kind = 'd';
		}
		if (kind == 0)
			continue;
		const char *reply = r->response ? r->response : "";
		size_t w = 0;
		while (w < nwhy && (why[w].kind != kind ||
		    strcmp(why[w].reply, reply) != 0))
			w++;
		if (w == nwhy) {
			why[nwhy].kind = kind;
			why[nwhy++].reply = reply;
		}
		why[w].count++;
	}
	for (size_t w = 0; w < nwhy && rc == 0; w++)
		rc = add_reason(sp, txn, day, why[w].kind, provider,
		    why[w].reply, why[w].count);
	if (rc == 0) {
		const char *fields[4] = {provider, where ? where->source :
		    NULL, lane, where ? where->pool : NULL};
		rc = add_counters(sp, txn, day, fields, &d);
	}
	free(why);
	free(classes);
	return rc;
}

/* ----------------------------------------------------------- reading */

struct raw {
	unsigned char *key;	/* without the shard byte */
	size_t klen;
	struct stats_counter *c;
	size_t n;
};

struct raws {
	struct raw *v;
	size_t n, cap;
};

static int
compare_raw(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : x->klen < y->klen ? -1 : x->klen > y->klen;
}

static void
raws_clear(struct raws *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].key);
		free_counters(rs->v[i].c, rs->v[i].n);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

static int
read_shard(struct spool *sp, int shard, int64_t since_day, bool all_time,
    struct raws *rs)
{
	unsigned char k[KEY_MAX];
	DBT key, val;
	DBC *c;
	int rc;

	if ((rc = sp->stats->cursor(sp->stats, NULL, &c,
	    DB_READ_UNCOMMITTED)) != 0)
		return rc;
	const char *none[1] = {""};
	size_t klen = make_key(k, shard, since_day < 0 ? 0 : since_day, 'c',
	    none, 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = (u_int32_t)(klen - 1);	/* from the day on */
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_MALLOC;
	rc = c->get(c, &key, &val, DB_SET_RANGE);
	while (rc == 0) {
		if (key.size < 6 || k[0] != shard) {
			free(val.data);
			break;
		}
		int64_t day = (int64_t)get_be32(k + 1);
		struct raw r = {NULL, key.size - 1U, NULL, 0};
		bool want = k[5] != 'n' && (day != STATS_ALL_TIME || all_time);
		if (want && decode_value(val.data, val.size, &r.c, &r.n) == 0) {
			r.key = xmalloc(r.klen + 1);
			memcpy(r.key, k + 1, r.klen);
			r.key[r.klen] = '\0';
			if (rs->n == rs->cap) {
				rs->cap = rs->cap ? rs->cap * 2 : 64;
				rs->v = xrealloc(rs->v, rs->cap * sizeof(*rs->v));
			}
			rs->v[rs->n++] = r;
		}
		free(val.data);
		val.data = NULL;
		rc = c->get(c, &key, &val, DB_NEXT);
	}
	c->close(c);
	return rc == DB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* Splits "a NUL b NUL c" (len bytes) into up to max fields. */
static size_t
split_fields(const unsigned char *p, size_t len, const char **out, size_t max)
{
	size_t n = 0;
	const unsigned char *end = p + len;

	while (n < max) {
		out[n++] = (const char *)p;
		const unsigned char *z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			break;
		p = z + 1;
	}
	return n;
}

static int
emit_merged(struct raws *rs, spool_stats_fn fn, void *ctx)
{
	qsort(rs->v, rs->n, sizeof(*rs->v), compare_raw);
	for (size_t i = 0; i < rs->n;) {
		size_t j = i + 1;
		struct raw *a = &rs->v[i];
		while (j < rs->n && compare_raw(a, &rs->v[j]) == 0) {
			/* Another shard's part of the same record. */
			struct raw *b = &rs->v[j++];
			a->c = xrealloc(a->c, (a->n + b->n + 1) * sizeof(*a->c));
			for (size_t x = 0; x < b->n; x++) {
				size_t y = 0;
				while (y < a->n && strcmp(a->c[y].name,
				    b->c[x].name) != 0)
					y++;
				if (y == a->n) {
					a->c[a->n].name = xstrdup(b->c[x].name);
					a->c[a->n++].value = 0;
				}
				a->c[y].value += b->c[x].value;
			}
		}
		struct stats_record r;
		const char *f[4] = {STATS_NONE, STATS_NONE, STATS_NONE,
		    STATS_NONE};
		memset(&r, 0, sizeof(r));
		r.day = (int64_t)get_be32(a->key);
		r.kind = (char)a->key[4];
		split_fields(a->key + 5, a->klen - 5, f, r.kind == 'c' ? 4 : 2);
		r.provider = f[0];
		if (r.kind == 'c') {
			r.source = f[1];
			r.lane = f[2];
			r.pool = f[3];
		} else {
			r.reason = f[1];
		}
		r.counters = a->c;
		r.ncounters = a->n;
		int stop = fn(ctx, &r);
		if (stop)
			return stop;
		i = j;
	}
	return 0;
}

int
spool_stats_scan(struct spool *sp, int64_t since_day, bool all_time,
    spool_stats_fn fn, void *ctx)
{
	SPOOL_GUARD;
	struct raws rs = {NULL, 0, 0};
	int rc = 0;

	for (int shard = 0; shard < STATS_SHARDS && rc == 0; shard++) {
		rc = DB_LOCK_DEADLOCK;
		size_t keep = rs.n;
		SPOOL_RETRY(sp, rc, i) {
			/* A retried shard starts again from nothing. */
			while (rs.n > keep) {
				rs.n--;
				free(rs.v[rs.n].key);
				free_counters(rs.v[rs.n].c, rs.v[rs.n].n);
			}
			rc = read_shard(sp, shard, since_day, all_time, &rs);
		}
	}
	if (rc != 0) {
		log_error("spool: cannot read the counters: %s",
		    db_strerror(rc));
		raws_clear(&rs);
		return SPOOL_ERR;
	}
	emit_merged(&rs, fn, ctx);
	raws_clear(&rs);
	return SPOOL_OK;
}

static int
expire_once(struct spool *sp, int64_t before_day, size_t max,
    size_t *removed)
{
	unsigned char k[KEY_MAX];
	DB_TXN *txn;
	DBT key, val;
	DBC *c;
	int rc;

	*removed = 0;
	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = sp->stats->cursor(sp->stats, txn, &c, 0)) != 0) {
		txn->abort(txn);
		return rc;
	}
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	val.flags = DB_DBT_PARTIAL;	/* the keys are all we need */
	for (int shard = 0; shard < STATS_SHARDS && *removed < max; shard++) {
		k[0] = (unsigned char)shard;
		key.size = 1;
		rc = c->get(c, &key, &val, DB_SET_RANGE | DB_RMW);
		while (rc == 0 && *removed < max) {
			if (key.size < 6 || k[0] != shard ||
			    (int64_t)get_be32(k + 1) >= before_day)
				break;
			if ((rc = c->del(c, 0)) != 0)
				break;
			(*removed)++;
			rc = c->get(c, &key, &val, DB_NEXT | DB_RMW);
		}
		if (rc == DB_NOTFOUND)
			rc = 0;
		if (rc != 0)
			break;
	}
	c->close(c);
	if (rc != 0) {
		txn->abort(txn);
		return rc;
	}
	return txn->commit(txn, DB_TXN_WRITE_NOSYNC);
}

int
spool_stats_expire(struct spool *sp, int64_t before_day, size_t max,
    size_t *removed)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;
	size_t n = 0;

	*removed = 0;
	SPOOL_RETRY(sp, rc, i)
		rc = expire_once(sp, before_day, max, &n);
	if (rc != 0) {
		log_error("spool: cannot remove old counters: %s",
		    db_strerror(rc));
		return SPOOL_ERR;
	}
	*removed = n;
	return SPOOL_OK;
}
