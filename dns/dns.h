/*
 * NAME
 *	dns - MX and address look-ups against the configured resolver
 * DESCRIPTION
 *	Every look-up mxlane makes goes to the server named by the global
 *	key "resolver": "" means the system's resolv.conf; "IP:PORT" (or
 *	"[IPv6]:PORT", or a bare IP for port 53) means exactly that server,
 *	over UDP with TCP fallback for truncated answers. libESMTP is then
 *	handed addresses, never names, so no look-up escapes this module.
 *
 *	dns_find_txt() reads TXT records (MTA-STS's _mta-sts records).
 *
 *	dns_find_mx() implements RFC 5321 section 5.1: MX records in
 *	preference order, equal preferences in random order; no MX records
 *	(NODATA) means the domain itself is the single host; an RFC 7505
 *	null MX (one MX, preference 0, exchange ".") or NXDOMAIN are
 *	permanent failures; SERVFAIL, time-outs and other transient
 *	resolver errors are temporary. Each host is resolved to its A and
 *	AAAA addresses (AAAA only when want_ipv6). A host whose name does
 *	not resolve is skipped; if no host has an address the result is
 *	DNS_TEMPFAIL when any of those look-ups failed temporarily, and
 *	DNS_PERMFAIL otherwise.
 * DIAGNOSTICS
 *	err gets one line naming the domain and what went wrong, in the
 *	words Postfix uses ("Host or domain name not found. Name service
 *	error for name=x type=MX: Host not found"), since it ends up in
 *	mailq, logs and bounces.
 */
#ifndef MXLANE_DNS_H
#define MXLANE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum dns_status {
	DNS_OK = 0,
	DNS_TEMPFAIL,		/* try again later */
	DNS_PERMFAIL,		/* NXDOMAIN, no usable host: bounce */
	DNS_NULLMX,		/* RFC 7505: domain accepts no mail: bounce */
};

struct dns_resolver {
	bool use_system;		/* resolver = "" */
	struct sockaddr_storage server;	/* otherwise this server */
	socklen_t server_len;
	int timeout_ms;			/* per try; default 5000 */
	int tries;			/* default 2 */
	/* With use_system, resolv.conf's timeout and attempts apply. */
};

#define DNS_MAX_ADDRS 16

struct dns_host {
	char *name;			/* MX exchange, or the domain itself */
	int preference;			/* -1 for the implicit MX */
	/* A then AAAA, port 0: the caller dials its own port. */
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	socklen_t addr_lens[DNS_MAX_ADDRS];
	size_t naddrs;
};

struct dns_mx {
	struct dns_host *hosts;		/* in the order to try them */
	size_t nhosts;
	bool implicit;			/* no MX record: the domain's A/AAAA */
};

/*
 * Parses the "resolver" key and sets the default timeout_ms and tries.
 * Returns 0, or -1 with err set.
 */
int dns_resolver_init(struct dns_resolver *r, const char *spec, char *err,
    size_t errlen);

/*
 * Only the best 8 MX hosts are looked up; those with an address come
 * back, in order. On DNS_OK err is ""; on anything else *out is empty
 * (dns_mx_free() on it is harmless) and err says why.
 */
enum dns_status dns_find_mx(const struct dns_resolver *r, const char *domain,
    bool want_ipv6, struct dns_mx *out, char *err, size_t errlen);

/*
 * Addresses of one name (for a fixed relay host): A, then AAAA; the
 * preference is -1. On failure *out is empty, as above.
 */
enum dns_status dns_find_addrs(const struct dns_resolver *r, const char *name,
    bool want_ipv6, struct dns_host *out, char *err, size_t errlen);

/*
 * TXT records of name, each record's strings joined (RFC 7208 3.3),
 * for MTA-STS (RFC 8461 3.1). At most DNS_MAX_TXT records of at most
 * DNS_MAX_TXT_LEN octets are kept; a record holding a NUL octet is
 * skipped. DNS_PERMFAIL: NXDOMAIN or no TXT record (err says which);
 * DNS_TEMPFAIL: no usable answer. On success out and *n hold the
 * records (dns_txt_free()); otherwise *out is NULL.
 */
#define DNS_MAX_TXT	16
#define DNS_MAX_TXT_LEN	4096
enum dns_status dns_find_txt(const struct dns_resolver *r, const char *name,
    char ***out, size_t *n, char *err, size_t errlen);
void dns_txt_free(char **txt, size_t n);

void dns_mx_free(struct dns_mx *mx);
void dns_host_free(struct dns_host *host);

/* "192.0.2.1" or "2001:db8::1" for an address from the lists above. */
void dns_addr_string(const struct sockaddr_storage *sa, char *out,
    size_t len);

#endif
