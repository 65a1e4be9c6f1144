/*
 * NAME
 *	admin - queuerun hold, release, requeue, delete and move
 * SYNOPSIS
 *	queuerun hold|release|requeue [SELECTORS] QUEUEID...|ALL
 *	queuerun delete [--bounce] [SELECTORS] QUEUEID...|ALL
 *	queuerun move --to-pool NAME|--to-source ADDRESS [SELECTORS]
 *	    QUEUEID...|ALL
 * DESCRIPTION
 *	See admin.h for what is chosen, spool/admin.c for what the spool
 *	does with it and with mail in delivery now, queuerun.8 for the
 *	verbs as the administrator sees them.
 *
 *	The whole queue is read first and the chosen ids kept (a few dozen
 *	bytes each), then changed a batch at a time: a change made while
 *	walking could meet its own results (the bounces of delete
 *	--bounce are new mail), and short transactions keep the runners
 *	going. Mail still in the maildrop is picked up first, so ALL means
 *	everything submitted before the command.
 * DIAGNOSTICS
 *	"queuerun: ..." on stderr; EX_USAGE for bad arguments, EX_NOINPUT
 *	when a named queue id is not in the queue, EX_TEMPFAIL when the
 *	spool fails (what the batches before did stays done, and is
 *	printed).
 */
#include "queuerun/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "dns/dns.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "queuerun/nexthop.h"
#include "queuerun/notice.h"
#include "route/route.h"
#include "sendmail/mailq.h"

/*
 * Messages per transaction: big enough that a queue of a million takes
 * a few thousand commits, small enough that runners, whose claims meet
 * the same schedule pages, are held up for a moment only.
 */
#define ADMIN_BATCH	500

#define DELETED_REASON	"deleted by the administrator"
#define DELETED_STATUS	"5.0.0"

enum verb { HOLD, RELEASE, REQUEUE, DELETE, MOVE };

static const struct {
	const char *name;
	enum spool_admin_op op;
	const char *done;	/* what is printed */
	const char *logged;	/* what the log says of each message */
} verbs[] = {
	[HOLD] = {"hold", SPOOL_ADMIN_HOLD, "held", "placed on hold"},
	[RELEASE] = {"release", SPOOL_ADMIN_RELEASE, "released",
	    "released from hold"},
	[REQUEUE] = {"requeue", SPOOL_ADMIN_REQUEUE, "requeued", "requeued"},
	[DELETE] = {"delete", SPOOL_ADMIN_DELETE, "deleted", "removed"},
	[MOVE] = {"move", SPOOL_ADMIN_MOVE, "moved", "moved"},
};

bool
admin_select_by_rcpt(const struct admin_select *s)
{
	return s->domain || s->recipient || s->deferred || s->class ||
	    s->source || s->provider || s->pool;
}

static bool
null_sender(const char *s)
{
	return *s == '\0' || strcmp(s, "<>") == 0;
}

bool
admin_select_msg(const struct admin_select *s, const struct spool_msg *msg,
    int64_t now)
{
	if (!s->all) {
		size_t i;
		for (i = 0; i < s->nids; i++)
			if (strcmp(s->ids[i], msg->id) == 0)
				break;
		if (i == s->nids)
			return false;
	}
	if (s->lane && strcmp(s->lane, msg->lane) != 0)
		return false;
	if (s->sender && (null_sender(s->sender) ? *msg->sender != '\0' :
	    str_casecmp_ascii(s->sender, msg->sender) != 0))
		return false;
	if (s->older_than > 0 && now - msg->arrival < s->older_than)
		return false;
	return true;
}

static const char *
domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at ? at + 1 : "";
}

bool
admin_select_rcpt(const struct admin_select *s, const struct spool_msg *msg,
    const struct spool_rcpt *r)
{
	if (r->state != RCPT_QUEUED && r->state != RCPT_ACTIVE)
		return false;
	if (s->domain && str_casecmp_ascii(s->domain,
	    domain_of(r->address)) != 0)
		return false;
	if (s->recipient && str_casecmp_ascii(s->recipient, r->address) != 0)
		return false;
	if (s->deferred && r->attempts == 0)
		return false;
	/* The class of the last failure, as mailq shows it. */
	if (s->class && (r->attempts == 0 || r->class == NULL ||
	    strcmp(s->class, r->class) != 0))
		return false;
	/* Where it leaves from now if moved there, else where it last did. */
	const char *source = msg->move_source ? msg->move_source :
	    r->last_source;
	if (s->source && (source == NULL || strcmp(s->source, source) != 0))
		return false;
	return true;
}

/* One decision per (lane, move, domain): the runner would make the same. */
struct route_cache {
	const struct mxl_config *cfg;
	struct dns_resolver dns;
	bool dns_ready;
	struct strmap seen;	/* "lane\ndomain" -> index in names */
	char **names;		/* provider, pool, provider, pool, ... */
	size_t n;
};

static void
route_of(struct route_cache *rc, const struct spool_msg *msg,
    const char *address, const char **provider, const char **pool)
{
	char *domain = xstrdup(domain_of(address));
	const char *lane = msg->lane;
	const char *mpool = msg->move_pool ? msg->move_pool : "";
	const char *msrc = msg->move_source ? msg->move_source : "";
	size_t at;

	str_lower(domain);
	const char *mprov = msg->move_provider ? msg->move_provider : "";
	char *key = xasprintf("%s\n%s\n%s\n%s\n%s", lane, mpool, msrc, mprov,
	    domain);
	if (!strmap_get(&rc->seen, key, &at)) {
		struct nexthop nh;
		nexthop_find(rc->cfg, &rc->dns, domain, &nh);
		nexthop_set_lane(rc->cfg, &nh, config_lane(rc->cfg, lane));
		if (nexthop_move_applies(msg, &nh))
			nexthop_set_move(rc->cfg, &nh, msg->move_pool,
			    msg->move_source);
		rc->names = xrealloc(rc->names, (rc->n + 2) * sizeof(char *));
		at = rc->n;
		rc->names[rc->n++] = xstrdup(nh.provider ? nh.provider->name :
		    "");
		rc->names[rc->n++] = xstrdup(nh.pool ? nh.pool->name : "");
		nexthop_free(&nh);
		strmap_put(&rc->seen, key, at);
	}
	*provider = rc->names[at];
	*pool = rc->names[at + 1];
	free(key);
	free(domain);
}

/* What the scan chose. */
struct chosen {
	char id[SPOOL_ID_SIZE];
	uint32_t *indexes;	/* NULL: every pending recipient */
	size_t nindexes;
};

struct walk {
	enum verb verb;
	const struct admin_select *sel;
	struct route_cache *routes;
	int64_t now;
	struct chosen *c;
	size_t n, cap;
	bool *named_found;	/* per s->ids[i] */
};

static bool
rcpt_chosen(struct walk *w, const struct spool_msg *msg,
    const struct spool_rcpt *r)
{
	const struct admin_select *s = w->sel;

	if (!admin_select_rcpt(s, msg, r))
		return false;
	if (s->provider || s->pool) {
		const char *provider, *pool;
		route_of(w->routes, msg, r->address, &provider, &pool);
		if (s->provider && strcmp(s->provider, provider) != 0)
			return false;
		if (s->pool && strcmp(s->pool, pool) != 0)
			return false;
	}
	return true;
}

static int
choose(void *ctx, const struct spool_msg *msg, const struct spool_rcpt *rcpts,
    size_t nrcpt)
{
	struct walk *w = ctx;
	const struct admin_select *s = w->sel;

	for (size_t i = 0; !s->all && i < s->nids; i++)
		if (strcmp(s->ids[i], msg->id) == 0)
			w->named_found[i] = true;
	if (!admin_select_msg(s, msg, w->now))
		return 0;
	uint32_t *idx = xcalloc(nrcpt + 1, sizeof(*idx));
	size_t k = 0;
	for (size_t i = 0; i < nrcpt; i++)
		if (rcpt_chosen(w, msg, &rcpts[i]))
			idx[k++] = rcpts[i].index;
	/*
	 * hold, release and move are for whole messages, so is a bare
	 * delete or requeue.
	 */
	bool by_rcpt = admin_select_by_rcpt(s) &&
	    (w->verb == REQUEUE || w->verb == DELETE);
	if (k == 0) {
		free(idx);
		return 0;
	}
	if (!by_rcpt) {
		free(idx);
		idx = NULL;
		k = 0;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->c = xrealloc(w->c, w->cap * sizeof(*w->c));
	}
	memcpy(w->c[w->n].id, msg->id, SPOOL_ID_SIZE);
	w->c[w->n].indexes = idx;
	w->c[w->n].nindexes = k;
	w->n++;
	return 0;
}

struct totals {
	uint64_t messages;	/* changed */
	uint64_t rcpts;		/* requeue, delete */
	uint64_t removed;	/* delete */
};

/* What the verb does besides choosing: delete --bounce, move --to-*. */
struct verb_args {
	bool bounce;
	const char *to_pool;
	const char *to_source;
};

/*
 * The stored header, for the lane rules (route_header_fn): the fields
 * as sendmail gave them to the rules, unfolded and trimmed, with
 * mxlane's own Received: line first among them.
 */
struct stored_header {
	char **names, **values;
	size_t n;
};

static int
read_header_block(void *ctx, const char *data, size_t len)
{
	struct buf *b = ctx;

	buf_append(b, data, len);
	/* Up to the empty line; a header bigger than 1 MiB is cut there. */
	return b->len > 1024 * 1024 || memmem(b->data, b->len, "\n\r\n", 3) ||
	    memmem(b->data, b->len, "\n\n", 2);
}

/* The field gathered in f (folds joined), then f is emptied. */
static void
add_field(struct stored_header *h, struct buf *f)
{
	char *colon = f->len ? memchr(f->data, ':', f->len) : NULL;

	if (colon) {		/* f->data ends with a NUL, as a buf does */
		*colon = '\0';
		h->names = xrealloc(h->names, (h->n + 1) * sizeof(*h->names));
		h->values = xrealloc(h->values, (h->n + 1) *
		    sizeof(*h->values));
		h->names[h->n] = xstrdup(str_trim(f->data));
		h->values[h->n++] = xstrdup(str_trim(colon + 1));
	}
	buf_reset(f);
}

static void
stored_header_read(struct spool *sp, const char *id, struct stored_header *h)
{
	struct buf b = BUF_INIT;
	struct buf field = BUF_INIT;

	memset(h, 0, sizeof(*h));
	(void)spool_read_content(sp, id, read_header_block, &b);
	for (const char *p = b.data, *end = b.data + b.len; p && p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		size_t len = (size_t)((eol ? eol : end) - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0 || (*p != ' ' && *p != '\t'))
			add_field(h, &field);	/* a new field, or the end */
		if (len == 0)
			break;		/* the empty line: the body follows */
		buf_append(&field, p, len);
		p = next;
	}
	add_field(h, &field);
	buf_free(&field);
	buf_free(&b);
}

static const char *
stored_header_field(void *ctx, size_t i, char **value)
{
	struct stored_header *h = ctx;

	if (i >= h->n)
		return NULL;
	*value = xstrdup(h->values[i]);
	return h->names[i];
}

static void
stored_header_free(struct stored_header *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->names[i]);
		free(h->values[i]);
	}
	free(h->names);
	free(h->values);
}

/*
 * The lane requeue puts a whole message on: the lane rules run again
 * with today's configuration, for a message whose lane they chose at
 * submission; NULL keeps its lane (asked for with -O Lane=, set by a
 * header rule, or queued before mxlane kept that apart).
 */
static const char *
lane_anew(const struct mxl_config *cfg, struct spool *sp, const char *id)
{
	struct spool_msg msg;
	struct stored_header h;
	char why[256];
	bool refused;

	if (spool_get(sp, id, &msg, NULL, NULL) != SPOOL_OK)
		return NULL;
	const char *lane = NULL;
	if (msg.flags & SPOOL_MSG_LANE_BY_RULES) {
		struct route_submitter who = {msg.user, msg.sender, false};
		stored_header_read(sp, id, &h);
		lane = route_lane(cfg, NULL, &who, stored_header_field, &h,
		    &refused, why, sizeof(why));
		stored_header_free(&h);
	}
	spool_msg_free(&msg);
	return lane;
}

static int
apply(const struct mxl_config *cfg, struct spool *sp, enum verb verb,
    const struct verb_args *va, struct walk *w, struct totals *t)
{
	/* A move chosen by provider is for that provider's mail only. */
	struct spool_admin_how how = {DELETED_REASON, DELETED_STATUS,
	    va->bounce, va->to_pool, va->to_source, w->sel->provider};
	bool bounce = va->bounce;
	struct spool_admin_item *items = xcalloc(ADMIN_BATCH,
	    sizeof(*items));
	int rc = 0;

	log_set_component("admin");
	for (size_t at = 0; at < w->n && rc == 0; at += ADMIN_BATCH) {
		size_t n = w->n - at < ADMIN_BATCH ? w->n - at : ADMIN_BATCH;
		for (size_t i = 0; i < n; i++) {
			memcpy(items[i].id, w->c[at + i].id, SPOOL_ID_SIZE);
			items[i].indexes = w->c[at + i].indexes;
			items[i].nindexes = w->c[at + i].nindexes;
			items[i].lane = verb == REQUEUE && items[i].indexes ==
			    NULL ? lane_anew(cfg, sp, items[i].id) : NULL;
		}
		if (spool_admin_apply(sp, verbs[verb].op, &how, items, n,
		    time(NULL)) != SPOOL_OK) {
			rc = EX_TEMPFAIL;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			struct spool_admin_item *it = &items[i];
			if (it->changed == 0)
				continue;
			t->messages++;
			if (verb == REQUEUE || verb == DELETE)
				t->rcpts += it->changed;
			if (verb == MOVE)
				log_info("%s: moved to %s %s", it->id,
				    va->to_pool ? "pool" : "source",
				    va->to_pool ? va->to_pool : va->to_source);
			else if (it->lane_changed)
				log_info("%s: %s, lane %s", it->id,
				    verbs[verb].logged, it->lane);
			else if (verb != DELETE)
				log_info("%s: %s", it->id, verbs[verb].logged);
			else if (it->removed)
				log_info("%s: removed", it->id);
			else
				log_info("%s: %" PRIu32 " recipient%s deleted",
				    it->id, it->changed, it->changed == 1 ?
				    "" : "s");
			if (it->removed)
				t->removed++;
			/*
			 * The bounce goes now, by the runner's own code; were
			 * we to die first, the finish key or the next failure
			 * of the message has a runner send it.
			 */
			if (verb == DELETE && it->finished) {
				log_set_component(NULL);
				notice_finish(sp, cfg, it->id);
				log_set_component("admin");
				t->removed++;
			} else if (verb == DELETE && bounce) {
				log_set_component(NULL);
				notice_bounce_now(sp, cfg, it->id);
				log_set_component("admin");
			}
		}
	}
	log_set_component(NULL);
	free(items);
	/* A daemon asleep until its next due time is told now. */
	if ((verb == RELEASE || verb == REQUEUE || verb == MOVE) &&
	    t->messages > 0)
		(void)spool_wakeup_notify(spool_directory_fd(sp));
	return rc;
}

static void
print_totals(enum verb verb, const struct totals *t)
{
	uint64_t m = t->messages;

	switch (verb) {
	case HOLD:
	case RELEASE:
	case MOVE:
		printf("%s: %" PRIu64 " message%s\n", verbs[verb].done, m,
		    m == 1 ? "" : "s");
		break;
	case REQUEUE:
		printf("requeued: %" PRIu64 " message%s, %" PRIu64
		    " recipient%s\n", m, m == 1 ? "" : "s", t->rcpts,
		    t->rcpts == 1 ? "" : "s");
		break;
	case DELETE:
		printf("deleted: %" PRIu64 " recipient%s of %" PRIu64
		    " message%s, %" PRIu64 " message%s removed\n", t->rcpts,
		    t->rcpts == 1 ? "" : "s", m, m == 1 ? "" : "s",
		    t->removed, t->removed == 1 ? "" : "s");
		break;
	}
}

static int
usage_error(const char *verb, const char *what)
{
	log_stderr("%s: %s", verb, what);
	return EX_USAGE;
}

/* Parses selectors and ids from argv[1] on into s, and va. */
static int
parse(const struct mxl_config *cfg, enum verb verb, int argc, char **argv,
    struct admin_select *s, struct verb_args *va)
{
	const struct mxl_pool *p;
	const char *name = verbs[verb].name;

	s->ids = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--bounce") == 0 && verb == DELETE) {
			va->bounce = true;
			continue;
		}
		if (strcmp(a, "--deferred") == 0) {
			s->deferred = true;
			continue;
		}
		if (strcmp(a, "ALL") == 0) {
			s->all = true;
			continue;
		}
		if (a[0] != '-') {
			if (!spool_id_valid(a))
				return usage_error(name, "not a queue id (13 "
				    "upper-case hex digits) nor ALL");
			s->ids[s->nids++] = argv[i];
			continue;
		}
		if (v == NULL)
			return usage_error(name, "a selector without its "
			    "value");
		i++;
		if (strcmp(a, "--to-pool") == 0 && verb == MOVE) {
			if (config_pool(cfg, v) == NULL) {
				log_stderr("move --to-pool %s: no such pool", v);
				return EX_USAGE;
			}
			va->to_pool = v;
		} else if (strcmp(a, "--to-source") == 0 && verb == MOVE) {
			if (nexthop_source_named(cfg, v, &p) == NULL) {
				log_stderr("move --to-source %s: not a source "
				    "address of any pool", v);
				return EX_USAGE;
			}
			va->to_source = v;
		} else if (strcmp(a, "--source") == 0) {
			s->source = v;
		} else if (strcmp(a, "--lane") == 0) {
			if (!config_has_lane(cfg, v))
				return usage_error(name, "--lane: no such "
				    "lane");
			s->lane = v;
		} else if (strcmp(a, "--sender") == 0) {
			s->sender = v;
		} else if (strcmp(a, "--domain") == 0) {
			s->domain = v;
		} else if (strcmp(a, "--recipient") == 0) {
			s->recipient = v;
		} else if (strcmp(a, "--class") == 0) {
			s->class = v;
		} else if (strcmp(a, "--provider") == 0) {
			if (config_provider(cfg, v) == NULL)
				return usage_error(name, "--provider: no such "
				    "provider");
			s->provider = v;
		} else if (strcmp(a, "--pool") == 0) {
			if (config_pool(cfg, v) == NULL)
				return usage_error(name, "--pool: no such "
				    "pool");
			s->pool = v;
		} else if (strcmp(a, "--older-than") == 0) {
			long long t = config_parse_time(v);
			if (t <= 0)
				return usage_error(name, "--older-than: "
				    "expected an age like 30m, 2h or 3d");
			s->older_than = t;
		} else {
			log_stderr("%s: unknown option %s", name, a);
			return EX_USAGE;
		}
	}
	if (s->all == (s->nids > 0))
		return usage_error(name, "give queue ids, or ALL");
	if (verb == MOVE && (va->to_pool != NULL) == (va->to_source != NULL))
		return usage_error(name, "give --to-pool or --to-source");
	return 0;
}

/* mailq_route_fn: the next-hop decision's names, null for none. */
static void
list_route(void *ctx, const struct spool_msg *msg, const struct spool_rcpt *r,
    const char **provider, const char **pool)
{
	route_of(ctx, msg, r->address, provider, pool);
	if (**provider == '\0')
		*provider = NULL;
	if (**pool == '\0')
		*pool = NULL;
}

static void
routes_free(struct route_cache *routes)
{
	for (size_t i = 0; i < routes->n; i++)
		free(routes->names[i]);
	free(routes->names);
	strmap_free(&routes->seen);
}

int
admin_list(const struct mxl_config *cfg, int argc, char **argv)
{
	struct route_cache routes;
	struct spool *sp;
	char err[256];
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return usage_error("list", "unknown argument");
	memset(&routes, 0, sizeof(routes));
	routes.cfg = cfg;
	if (json && dns_resolver_init(&routes.dns, cfg->resolver, err,
	    sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "resolver = \"%s\": %s", cfg->resolver,
		    err);
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	/* The spool's owner sees every message, as root does with mailq. */
	rc = json ? mailq_print_json(sp, stdout, 0, true, list_route,
	    &routes) : mailq_print(sp, stdout, 0, true);
	spool_close(sp);
	routes_free(&routes);
	if (rc == EX_TEMPFAIL)
		log_stderr("cannot read the mail queue in %s",
		    cfg->spool_directory);
	return rc;
}

int
admin_command(const struct mxl_config *cfg, int argc, char **argv)
{
	struct admin_select sel;
	struct route_cache routes;
	struct totals totals = {0, 0, 0};
	struct walk w;
	struct spool *sp;
	struct verb_args va = {false, NULL, NULL};
	char err[256];
	int v, rc;

	for (v = HOLD; v <= MOVE; v++)
		if (strcmp(argv[0], verbs[v].name) == 0)
			break;
	memset(&sel, 0, sizeof(sel));
	if ((rc = parse(cfg, (enum verb)v, argc, argv, &sel, &va)) != 0) {
		free(sel.ids);
		return rc;
	}
	memset(&routes, 0, sizeof(routes));
	routes.cfg = cfg;
	if ((sel.provider || sel.pool) && dns_resolver_init(&routes.dns,
	    cfg->resolver, err, sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "resolver = \"%s\": %s", cfg->resolver,
		    err);
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	memset(&w, 0, sizeof(w));
	w.verb = (enum verb)v;
	w.sel = &sel;
	w.routes = &routes;
	w.now = time(NULL);
	w.named_found = xcalloc(sel.nids + 1, sizeof(bool));
	rc = spool_pickup(sp, NULL, NULL) == SPOOL_OK &&
	    spool_scan(sp, choose, &w) == SPOOL_OK ? 0 : EX_TEMPFAIL;
	if (rc == 0)
		rc = apply(cfg, sp, w.verb, &va, &w, &totals);
	spool_close(sp);
	print_totals(w.verb, &totals);
	if (rc != 0)
		log_stderr("%s: the mail queue in %s failed; what is printed "
		    "was done", verbs[v].name, cfg->spool_directory);
	for (size_t i = 0; rc == 0 && i < sel.nids; i++)
		if (!w.named_found[i]) {
			log_stderr("%s: %s: no such message in the queue",
			    verbs[v].name, sel.ids[i]);
			rc = EX_NOINPUT;
		}
	for (size_t i = 0; i < w.n; i++)
		free(w.c[i].indexes);
	free(w.c);
	free(w.named_found);
	routes_free(&routes);
	free(sel.ids);
	return rc;
}
