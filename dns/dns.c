/*
 * NAME
 *	dns - MX and address look-ups against the configured resolver
 * SYNOPSIS
 *	#include "dns/dns.h"
 * DESCRIPTION
 *	What the look-ups mean is in dns.h; this is how they are made.
 *
 *	Queries are built here (header, name, type, class IN) rather than
 *	with res_mkquery(), which initializes and uses the process-wide
 *	_res. Nothing in this file touches global resolver state, so
 *	look-ups with different resolvers, or from several threads, never
 *	interfere. Names are sent as they are, fully qualified: the search
 *	list of resolv.conf has no business in mail routing.
 *
 *	With an explicit server the query goes over UDP to exactly that
 *	address and port from a connected socket, so only that server's
 *	replies are read. glibc's res_state can name a port other than 53
 *	or an IPv6 server only through private fields, hence a transport of
 *	our own. Each of the "tries" waits timeout_ms. No EDNS0: a reply
 *	over 512 octets comes truncated and is asked again over TCP, within
 *	the same try, which every server supports and no middlebox that
 *	drops UDP fragments can spoil. A reply must carry the query's ID
 *	and repeat its question; anything else is a stray or a spoof and
 *	the wait goes on.
 *
 *	With the system resolver, each call gets its own res_state from
 *	res_ninit() (servers, timeout, attempts and rotation from
 *	/etc/resolv.conf, which then override timeout_ms and tries) and
 *	sends with res_nsend(), which itself retries over TCP on truncation
 *	and turns SERVFAIL and REFUSED from every server into a failure;
 *	res_nclose() frees it when the call ends.
 *
 *	Records are taken from an answer only for the name asked, after
 *	following the CNAMEs in that answer. When the chain ends at a name
 *	the answer holds no records for, that name is asked about directly:
 *	a server authoritative for the alias need not hold the target. Both
 *	walks are bounded, and a chain that does not end (a CNAME loop) is a
 *	temporary failure: bouncing mail for a resolver's limit would be
 *	wrong, and the zone may be fixed.
 *
 *	At most MAX_HOSTS MX hosts are resolved, after ordering: each costs
 *	look-ups, and a delivery attempt never gets through more than a few.
 *
 *	Our sockets to the server are connected with the connect system
 *	call itself (server_connect()), not with connect(): the queue
 *	runner defines its own connect() to bind SMTP connections to their
 *	source address (queuerun/connect.h), and a name in the executable
 *	wins over libc's for every caller in it, this file included. That
 *	interposer only acts while a session is armed, which a look-up never
 *	is, but the resolver must not depend on it. (res_nsend() connects
 *	with glibc's internal call, which no interposer reaches.)
 * SEE ALSO
 *	RFC 1035, RFC 2181 section 10.3, RFC 5321 section 5.1, RFC 7505
 */
#include "dns/dns.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define MAX_HOSTS	8	/* MX hosts resolved, best first */
#define MAX_MX_RR	256	/* MX records read from one answer */
#define MAX_REQUERY	4	/* extra queries spent chasing CNAMEs */
#define MAX_LINKS	16	/* CNAMEs followed inside one answer */
#define MSG_SIZE	65536	/* the largest message, by TCP */
#define QUERY_SIZE	(NS_HFIXEDSZ + NS_MAXCDNAME + NS_QFIXEDSZ)
#define ERR_SIZE	512

enum answer {
	ANS_FOUND,		/* records of the type asked for */
	ANS_NODATA,		/* the name exists, without that type */
	ANS_NXDOMAIN,		/* the name does not exist */
	ANS_TEMPFAIL,		/* no reply, SERVFAIL, REFUSED, garbage */
};

/* One call's resolver state and reply buffer. */
struct lookup {
	const struct dns_resolver *r;
	struct __res_state rs;		/* use_system only */
	bool rs_ready;
	unsigned char *msg;		/* the last reply, MSG_SIZE octets */
};

struct mx_rr {
	char *name;
	int pref;
	uint32_t key;			/* random: order among equals */
};

struct mx_set {
	struct mx_rr *rr;
	size_t n;
};

/* Takes one record; returns 0, or -1 when its data is malformed. */
typedef int (*rr_fn)(ns_msg *, const ns_rr *, void *);

static void
lookup_open(struct lookup *lk, const struct dns_resolver *r)
{
	memset(lk, 0, sizeof(*lk));
	lk->r = r;
	lk->msg = xmalloc(MSG_SIZE);
}

static void
lookup_close(struct lookup *lk)
{
	if (lk->rs_ready)
		res_nclose(&lk->rs);
	free(lk->msg);
	lk->msg = NULL;
}

/* Postfix's words, since they end up in mailq, logs and bounces. */
static void
set_error(char *err, size_t errlen, const char *name, const char *type,
    enum answer a)
{
	const char *why;

	switch (a) {
	case ANS_NODATA:
		why = "Host found but no data record of requested type";
		break;
	case ANS_NXDOMAIN:
		why = "Host not found";
		break;
	default:
		why = "Host not found, try again";
		break;
	}
	snprintf(err, errlen, "Host or domain name not found. Name service "
	    "error for name=%s type=%s: %s", name, type, why);
}

/* Returns 1 when fd is ready, 0 at the deadline, -1 on error. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int n;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		return n > 0 ? 1 : n;
	}
}

static int
build_query(const char *name, int type, unsigned char *q, size_t qsize)
{
	uint16_t id = (uint16_t)arc4random();
	int n;

	memset(q, 0, NS_HFIXEDSZ);
	ns_put16(id, q);
	q[2] = 0x01;			/* RD: the server may recurse */
	ns_put16(1, q + 4);		/* QDCOUNT */
	n = dn_comp(name, q + NS_HFIXEDSZ, (int)(qsize - NS_HFIXEDSZ -
	    NS_QFIXEDSZ), NULL, NULL);
	if (n == -1)
		return -1;
	ns_put16((unsigned)type, q + NS_HFIXEDSZ + n);
	ns_put16(ns_c_in, q + NS_HFIXEDSZ + n + 2);
	return NS_HFIXEDSZ + n + NS_QFIXEDSZ;
}

/* Name length without one final, unescaped dot: "a.b." is "a.b". */
static size_t
name_len(const char *name)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.' &&
	    (len == 1 || name[len - 2] != '\\'))
		len--;
	return len;
}

/* DNS names compare ASCII case-insensitively (RFC 4343). */
static bool
same_name(const char *a, const char *b)
{
	size_t len = name_len(a);

	return len == name_len(b) && str_ncasecmp_ascii(a, b, len) == 0;
}

static bool
is_truncated(const unsigned char *a)
{
	return (a[2] & 0x02) != 0;
}

static bool
question_matches(const unsigned char *q, int qlen, const unsigned char *a,
    int alen)
{
	char qname[NS_MAXDNAME], aname[NS_MAXDNAME];
	int qn, an;

	if (ns_get16(a + 4) != 1)
		return false;
	qn = dn_expand(q, q + qlen, q + NS_HFIXEDSZ, qname, sizeof(qname));
	an = dn_expand(a, a + alen, a + NS_HFIXEDSZ, aname, sizeof(aname));
	if (qn < 0 || an < 0 || NS_HFIXEDSZ + an + NS_QFIXEDSZ > alen)
		return false;
	return same_name(qname, aname) && memcmp(q + NS_HFIXEDSZ + qn,
	    a + NS_HFIXEDSZ + an, NS_QFIXEDSZ) == 0;
}

/*
 * A reply is ours when it has our ID, is a response, and repeats our
 * question. A truncated one may lack the question (some servers cut
 * everything but the header); it only sends us to TCP, where the full
 * check is made.
 */
static bool
reply_matches(const unsigned char *q, int qlen, const unsigned char *a,
    int alen)
{
	if (alen < NS_HFIXEDSZ || a[0] != q[0] || a[1] != q[1] ||
	    (a[2] & 0x80) == 0)
		return false;
	if (is_truncated(a))
		return true;
	return question_matches(q, qlen, a, alen);
}

/* A try's deadline; a nonsense timeout gets the default, not zero. */
static long long
try_deadline(const struct dns_resolver *r)
{
	return mono_ms() + (r->timeout_ms > 0 ? r->timeout_ms : 5000);
}

/* connect(2) to the server, past any connect() the program defines. */
static int
server_connect(int fd, const struct dns_resolver *r)
{
	return (int)syscall(SYS_connect, fd, (const struct sockaddr *)
	    &r->server, r->server_len);
}

static int
udp_exchange(struct lookup *lk, const unsigned char *q, int qlen)
{
	const struct dns_resolver *r = lk->r;
	long long deadline = try_deadline(r);
	ssize_t got;
	int fd, ret = -1;

	fd = socket(r->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (server_connect(fd, r) == -1 || send(fd, q, qlen, 0) != qlen)
		goto out;
	while (wait_fd(fd, POLLIN, deadline) == 1) {
		got = recv(fd, lk->msg, MSG_SIZE, 0);
		if (got == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got == -1)		/* ECONNREFUSED: nobody listens */
			break;
		if (reply_matches(q, qlen, lk->msg, (int)got)) {
			ret = (int)got;
			break;
		}
	}
out:
	close(fd);
	return ret;
}

/* Moves all of len octets, in (recv) or out (send), by the deadline. */
static int
tcp_io(int fd, void *buf, size_t len, bool out, long long deadline)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		if (wait_fd(fd, out ? POLLOUT : POLLIN, deadline) != 1)
			return -1;
		if (out)
			n = send(fd, p, len, MSG_NOSIGNAL);
		else
			n = recv(fd, p, len, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
tcp_connect(int fd, const struct dns_resolver *r, long long deadline)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (server_connect(fd, r) == 0)
		return 0;
	if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 1)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 ||
	    soerr != 0)
		return -1;
	return 0;
}

static int
tcp_exchange(struct lookup *lk, const unsigned char *q, int qlen)
{
	const struct dns_resolver *r = lk->r;
	long long deadline = try_deadline(r);
	unsigned char out[2 + QUERY_SIZE], len[2];
	int fd, n, ret = -1;

	fd = socket(r->server.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	ns_put16((unsigned)qlen, out);
	memcpy(out + 2, q, (size_t)qlen);
	if (tcp_connect(fd, r, deadline) == -1 ||
	    tcp_io(fd, out, (size_t)qlen + 2, true, deadline) == -1 ||
	    tcp_io(fd, len, 2, false, deadline) == -1)
		goto out;
	n = (int)ns_get16(len);
	if (tcp_io(fd, lk->msg, (size_t)n, false, deadline) == -1)
		goto out;
	/* Over TCP nothing is left to fall back to: a cut reply is none. */
	if (reply_matches(q, qlen, lk->msg, n) && !is_truncated(lk->msg))
		ret = n;
out:
	close(fd);
	return ret;
}

static int
send_server(struct lookup *lk, const unsigned char *q, int qlen)
{
	int n, try, tries = lk->r->tries > 0 ? lk->r->tries : 1;

	for (try = 0; try < tries; try++) {
		n = udp_exchange(lk, q, qlen);
		if (n > 0 && is_truncated(lk->msg))
			n = tcp_exchange(lk, q, qlen);
		if (n > 0)
			return n;
	}
	return -1;
}

static int
send_system(struct lookup *lk, const unsigned char *q, int qlen)
{
	if (!lk->rs_ready) {
		memset(&lk->rs, 0, sizeof(lk->rs));
		if (res_ninit(&lk->rs) == -1)
			return -1;
		lk->rs_ready = true;
	}
	return res_nsend(&lk->rs, q, qlen, lk->msg, MSG_SIZE);
}

/* Sends query q and parses the reply into msg; -1: no usable reply. */
static int
ask(struct lookup *lk, const unsigned char *q, int qlen, ns_msg *msg)
{
	int n;

	if (lk->r->use_system)
		n = send_system(lk, q, qlen);
	else
		n = send_server(lk, q, qlen);
	if (n <= 0 || ns_initparse(lk->msg, n, msg) == -1)
		return -1;
	return 0;
}

/*
 * Moves name along the CNAMEs in the answer section. Returns the number
 * of links followed, or -1 for a malformed answer or an endless chain.
 */
static int
follow_chain(ns_msg *msg, char *name, size_t size)
{
	char target[NS_MAXDNAME];
	int i, links, n = ns_msg_count(*msg, ns_s_an);
	bool moved;
	ns_rr rr;

	for (links = 0;; links++) {
		moved = false;
		for (i = 0; i < n && !moved; i++) {
			if (ns_parserr(msg, ns_s_an, i, &rr) == -1)
				return -1;
			if (ns_rr_type(rr) != ns_t_cname ||
			    ns_rr_class(rr) != ns_c_in ||
			    !same_name(ns_rr_name(rr), name))
				continue;
			if (dn_expand(ns_msg_base(*msg), ns_msg_end(*msg),
			    ns_rr_rdata(rr), target, sizeof(target)) == -1)
				return -1;
			moved = true;
		}
		if (!moved)
			return links;
		if (links == MAX_LINKS || strlen(target) >= size)
			return -1;
		memcpy(name, target, strlen(target) + 1);
	}
}

/* Hands fn each record of type for name; returns how many it took. */
static int
collect(ns_msg *msg, const char *name, int type, rr_fn fn, void *arg)
{
	int i, taken = 0, n = ns_msg_count(*msg, ns_s_an);
	ns_rr rr;

	for (i = 0; i < n; i++) {
		if (ns_parserr(msg, ns_s_an, i, &rr) == -1)
			return -1;
		if ((int)ns_rr_type(rr) != type ||
		    ns_rr_class(rr) != ns_c_in ||
		    !same_name(ns_rr_name(rr), name))
			continue;
		if (fn(msg, &rr, arg) == 0)
			taken++;
	}
	return taken;
}

/* One answer to one question, after CNAMEs; records go to fn. */
static enum answer
lookup(struct lookup *lk, const char *name, int type, rr_fn fn, void *arg)
{
	unsigned char q[QUERY_SIZE];
	char cur[NS_MAXDNAME];
	int i, links, qlen, rcode, taken;
	ns_msg msg;

	/* A name that cannot be put in a query cannot exist either. */
	if (strlen(name) >= sizeof(cur))
		return ANS_NXDOMAIN;
	memcpy(cur, name, strlen(name) + 1);
	for (i = 0; i <= MAX_REQUERY; i++) {
		if ((qlen = build_query(cur, type, q, sizeof(q))) == -1)
			return ANS_NXDOMAIN;
		if (ask(lk, q, qlen, &msg) == -1)
			return ANS_TEMPFAIL;
		rcode = ns_msg_getflag(msg, ns_f_rcode);
		if (rcode != ns_r_noerror && rcode != ns_r_nxdomain)
			return ANS_TEMPFAIL;
		if ((links = follow_chain(&msg, cur, sizeof(cur))) == -1)
			return ANS_TEMPFAIL;
		if (rcode == ns_r_nxdomain)
			return ANS_NXDOMAIN;
		if ((taken = collect(&msg, cur, type, fn, arg)) == -1)
			return ANS_TEMPFAIL;
		if (taken > 0)
			return ANS_FOUND;
		if (links == 0)
			return ANS_NODATA;
	}
	return ANS_TEMPFAIL;
}

static int
add_addr(ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct dns_host *h = arg;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct sockaddr_storage *ss;

	(void)msg;
	if (h->naddrs == DNS_MAX_ADDRS)
		return 0;		/* found, but enough is enough */
	ss = &h->addrs[h->naddrs];
	memset(ss, 0, sizeof(*ss));
	if (ns_rr_type(*rr) == ns_t_a && ns_rr_rdlen(*rr) == 4) {
		sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ns_rr_rdata(*rr), 4);
		h->addr_lens[h->naddrs++] = sizeof(*sin);
	} else if (ns_rr_type(*rr) == ns_t_aaaa && ns_rr_rdlen(*rr) == 16) {
		sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ns_rr_rdata(*rr), 16);
		h->addr_lens[h->naddrs++] = sizeof(*sin6);
	} else
		return -1;
	return 0;
}

/*
 * Fills h->addrs for h->name: A, then AAAA. Any address is success,
 * even when the other type failed; otherwise a temporary failure of
 * either look-up wins, since the name may well resolve later.
 */
static enum dns_status
resolve_host(struct lookup *lk, struct dns_host *h, bool want_ipv6,
    char *err, size_t errlen)
{
	enum answer a4, a6 = ANS_NODATA;

	a4 = lookup(lk, h->name, ns_t_a, add_addr, h);
	/* NXDOMAIN covers every type: no need to ask again. */
	if (want_ipv6 && a4 != ANS_NXDOMAIN)
		a6 = lookup(lk, h->name, ns_t_aaaa, add_addr, h);
	if (h->naddrs > 0)
		return DNS_OK;
	if (a4 == ANS_TEMPFAIL || a6 == ANS_TEMPFAIL) {
		set_error(err, errlen, h->name, a4 == ANS_TEMPFAIL ? "A" :
		    "AAAA", ANS_TEMPFAIL);
		return DNS_TEMPFAIL;
	}
	set_error(err, errlen, h->name, "A", a4);
	return DNS_PERMFAIL;
}

static bool
is_root(const char *name)
{
	return name_len(name) == 0;
}

/* Keeps one record per exchange name, with its best preference. */
static int
add_mx(ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct mx_set *set = arg;
	char name[NS_MAXDNAME];
	size_t i;
	int pref;

	if (ns_rr_rdlen(*rr) < 3 || dn_expand(ns_msg_base(*msg),
	    ns_msg_end(*msg), ns_rr_rdata(*rr) + 2, name, sizeof(name)) == -1)
		return -1;
	pref = (int)ns_get16(ns_rr_rdata(*rr));
	for (i = 0; i < set->n; i++) {
		if (same_name(set->rr[i].name, name)) {
			if (pref < set->rr[i].pref)
				set->rr[i].pref = pref;
			return 0;
		}
	}
	if (set->n == MAX_MX_RR)
		return 0;
	set->rr = xrealloc(set->rr, (set->n + 1) * sizeof(*set->rr));
	set->rr[set->n].name = xstrdup(name);
	set->rr[set->n].pref = pref;
	set->rr[set->n].key = arc4random();
	set->n++;
	return 0;
}

static void
mx_set_free(struct mx_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->rr[i].name);
	free(set->rr);
	set->rr = NULL;
	set->n = 0;
}

/* Preference order; the random key shuffles equal preferences. */
static int
mx_cmp(const void *a, const void *b)
{
	const struct mx_rr *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return 0;
}

/*
 * Resolves the hosts of a non-null MX set in order. The error kept is
 * the first temporary one if any (that decides the result), else the
 * last permanent one.
 */
static enum dns_status
use_mx(struct lookup *lk, const char *domain, struct mx_set *set,
    bool want_ipv6, struct dns_mx *out, char *err, size_t errlen)
{
	enum dns_status st, result = DNS_PERMFAIL;
	char herr[ERR_SIZE];
	struct dns_host *h;
	size_t i, tried = 0;

	snprintf(err, errlen, "Host or domain name not found. Name service "
	    "error for name=%s type=MX: no MX host has a usable name",
	    domain);
	qsort(set->rr, set->n, sizeof(*set->rr), mx_cmp);
	out->hosts = xcalloc(MAX_HOSTS, sizeof(*out->hosts));
	for (i = 0; i < set->n && tried < MAX_HOSTS; i++) {
		if (is_root(set->rr[i].name))
			continue;
		tried++;
		h = &out->hosts[out->nhosts];
		h->name = xstrdup(set->rr[i].name);
		h->preference = set->rr[i].pref;
		st = resolve_host(lk, h, want_ipv6, herr, sizeof(herr));
		if (st == DNS_OK) {
			out->nhosts++;
			continue;
		}
		dns_host_free(h);
		if (result != DNS_TEMPFAIL)
			snprintf(err, errlen, "%s", herr);
		if (st == DNS_TEMPFAIL)
			result = DNS_TEMPFAIL;
	}
	if (out->nhosts == 0)
		return result;
	if (errlen > 0)
		err[0] = '\0';
	return DNS_OK;
}

/* RFC 5321 section 5.1: no MX, so the domain is its own mail host. */
static enum dns_status
use_implicit(struct lookup *lk, const char *domain, bool want_ipv6,
    struct dns_mx *out, char *err, size_t errlen)
{
	enum dns_status st;

	out->implicit = true;
	out->hosts = xcalloc(1, sizeof(*out->hosts));
	out->hosts[0].name = xstrdup(domain);
	out->hosts[0].preference = -1;
	st = resolve_host(lk, &out->hosts[0], want_ipv6, err, errlen);
	if (st == DNS_OK)
		out->nhosts = 1;
	else
		dns_host_free(&out->hosts[0]);
	return st;
}

enum dns_status
dns_find_mx(const struct dns_resolver *r, const char *domain,
    bool want_ipv6, struct dns_mx *out, char *err, size_t errlen)
{
	struct mx_set set = { NULL, 0 };
	struct lookup lk;
	enum dns_status st;
	enum answer a;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	lookup_open(&lk, r);
	a = lookup(&lk, domain, ns_t_mx, add_mx, &set);
	if (a == ANS_NODATA)
		st = use_implicit(&lk, domain, want_ipv6, out, err, errlen);
	else if (a != ANS_FOUND) {
		set_error(err, errlen, domain, "MX", a);
		st = a == ANS_NXDOMAIN ? DNS_PERMFAIL : DNS_TEMPFAIL;
	} else if (set.n == 1 && set.rr[0].pref == 0 &&
	    is_root(set.rr[0].name)) {
		snprintf(err, errlen, "Domain %s does not accept mail "
		    "(nullMX)", domain);
		st = DNS_NULLMX;
	} else
		st = use_mx(&lk, domain, &set, want_ipv6, out, err, errlen);
	mx_set_free(&set);
	lookup_close(&lk);
	if (st != DNS_OK)
		dns_mx_free(out);
	return st;
}

enum dns_status
dns_find_addrs(const struct dns_resolver *r, const char *name,
    bool want_ipv6, struct dns_host *out, char *err, size_t errlen)
{
	struct lookup lk;
	enum dns_status st;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	out->name = xstrdup(name);
	out->preference = -1;
	lookup_open(&lk, r);
	st = resolve_host(&lk, out, want_ipv6, err, errlen);
	lookup_close(&lk);
	if (st != DNS_OK)
		dns_host_free(out);
	return st;
}

struct txt_set {
	char **txt;
	size_t n;
};

/* Joins one record's character-strings; skips what we cannot keep. */
static int
add_txt(ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct txt_set *set = arg;
	const unsigned char *p = ns_rr_rdata(*rr);
	const unsigned char *end = p + ns_rr_rdlen(*rr);
	char text[DNS_MAX_TXT_LEN + 1];
	size_t len = 0;

	(void)msg;
	if (set->n == DNS_MAX_TXT)
		return 0;
	while (p < end) {
		size_t l = *p++;
		if (l > (size_t)(end - p))
			return -1;		/* malformed */
		if (len + l > DNS_MAX_TXT_LEN || memchr(p, '\0', l))
			return 0;		/* not one we could use */
		memcpy(text + len, p, l);
		len += l;
		p += l;
	}
	text[len] = '\0';
	set->txt = xrealloc(set->txt, (set->n + 1) * sizeof(*set->txt));
	set->txt[set->n++] = xstrdup(text);
	return 0;
}

enum dns_status
dns_find_txt(const struct dns_resolver *r, const char *name, char ***out,
    size_t *n, char *err, size_t errlen)
{
	struct txt_set set = { NULL, 0 };
	struct lookup lk;
	enum answer a;

	*out = NULL;
	*n = 0;
	if (errlen > 0)
		err[0] = '\0';
	lookup_open(&lk, r);
	a = lookup(&lk, name, ns_t_txt, add_txt, &set);
	lookup_close(&lk);
	if (a == ANS_FOUND && set.n > 0) {
		*out = set.txt;
		*n = set.n;
		return DNS_OK;
	}
	dns_txt_free(set.txt, set.n);
	set_error(err, errlen, name, "TXT", a == ANS_FOUND ? ANS_NODATA : a);
	return a == ANS_TEMPFAIL ? DNS_TEMPFAIL : DNS_PERMFAIL;
}

void
dns_txt_free(char **txt, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(txt[i]);
	free(txt);
}

void
dns_host_free(struct dns_host *host)
{
	free(host->name);
	host->name = NULL;
	host->naddrs = 0;
}

void
dns_mx_free(struct dns_mx *mx)
{
	size_t i;

	for (i = 0; i < mx->nhosts; i++)
		dns_host_free(&mx->hosts[i]);
	free(mx->hosts);
	mx->hosts = NULL;
	mx->nhosts = 0;
}

void
dns_addr_string(const struct sockaddr_storage *sa, char *out, size_t len)
{
	const void *addr;

	if (sa->ss_family == AF_INET)
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->ss_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		addr = NULL;
	if (len == 0)
		return;
	if (addr == NULL || inet_ntop(sa->ss_family, addr, out,
	    (socklen_t)len) == NULL)
		snprintf(out, len, "?");
}

static int
parse_port(const char *s, in_port_t *port)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n == 0 || n > 65535)
		return -1;
	*port = htons((in_port_t)n);
	return 0;
}

/* host is the address text; family is AF_UNSPEC when either will do. */
static int
set_server(struct dns_resolver *r, const char *host, size_t hostlen,
    int family, const char *port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->server;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->server;
	char text[INET6_ADDRSTRLEN];
	in_port_t p = htons(53);

	if (hostlen == 0 || hostlen >= sizeof(text) ||
	    (port != NULL && parse_port(port, &p) == -1))
		return -1;
	memcpy(text, host, hostlen);
	text[hostlen] = '\0';
	if (family != AF_INET6 && inet_pton(AF_INET, text,
	    &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = p;
		r->server_len = sizeof(*sin);
		return 0;
	}
	if (family != AF_INET && inet_pton(AF_INET6, text,
	    &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = p;
		r->server_len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/*
 * "[v6]" or "[v6]:port"; "v4:port" (exactly one colon); else a bare
 * address, v4 or v6, for port 53. An IPv6 address with a port needs
 * the brackets, or "::1:53" would be ambiguous.
 */
static int
parse_server(struct dns_resolver *r, const char *spec)
{
	const char *end;

	if (spec[0] == '[') {
		if ((end = strchr(spec, ']')) == NULL)
			return -1;
		if (end[1] != '\0' && end[1] != ':')
			return -1;
		return set_server(r, spec + 1, (size_t)(end - spec - 1),
		    AF_INET6, end[1] == ':' ? end + 2 : NULL);
	}
	end = strchr(spec, ':');
	if (end != NULL && strchr(end + 1, ':') == NULL)
		return set_server(r, spec, (size_t)(end - spec), AF_INET,
		    end + 1);
	return set_server(r, spec, strlen(spec), AF_UNSPEC, NULL);
}

int
dns_resolver_init(struct dns_resolver *r, const char *spec, char *err,
    size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->timeout_ms = 5000;
	r->tries = 2;
	if (spec == NULL || spec[0] == '\0') {
		r->use_system = true;
		return 0;
	}
	if (parse_server(r, spec) == 0)
		return 0;
	memset(&r->server, 0, sizeof(r->server));
	r->server_len = 0;
	snprintf(err, errlen, "resolver \"%s\": expected \"\" (the system's "
	    "resolv.conf), IP, IP:PORT or [IPv6]:PORT", spec);
	return -1;
}
