/*
 * NAME
 *	mtasts - MTA-STS (RFC 8461): which MX hosts, and TLS required
 * DESCRIPTION
 *	See mtasts.h. The kept record, in the spool under "mta-sts|DOMAIN":
 *
 *	    mta-sts 1 ID FETCHED EXPIRES RETRY\n
 *	    the policy text as fetched
 *
 *	ID is "-" and the text empty when no policy was ever fetched (a
 *	failed fetch is kept that way, for its RETRY time); RETRY is when
 *	a fetch may be tried again (0: any time). Times are unix seconds.
 */
#include "queuerun/mtasts.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"

#define MEMO_SIZE	1024
#define MEMO_TTL	60

const char *
mtasts_mode_name(enum mtasts_mode mode)
{
	switch (mode) {
	case MTASTS_ENFORCE:
		return "enforce";
	case MTASTS_TESTING:
		return "testing";
	default:
		return "none";
	}
}

/* Policy text (section 3.2). */

void
mtasts_policy_free(struct mtasts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	memset(p, 0, sizeof(*p));
}

static void
policy_copy(struct mtasts_policy *to, const struct mtasts_policy *from)
{
	*to = *from;
	for (size_t i = 0; i < from->nmx; i++)
		to->mx[i] = xstrdup(from->mx[i]);
}

/* A host name or "*." and one: letters, digits, '-', '.'; no empty label. */
static bool
valid_pattern(const char *s)
{
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	if (*s == '\0' || *s == '.' || strlen(s) > 253)
		return false;
	for (const char *c = s; *c; c++) {
		if (*c == '.' && (c[1] == '.' || c[1] == '\0'))
			return false;
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' &&
		    *c != '_')
			return false;
	}
	return true;
}

int
mtasts_parse(const char *text, size_t len, struct mtasts_policy *p,
    char *err, size_t errlen)
{
	bool have_version = false, have_mode = false, have_age = false;
	size_t pos = 0;

	memset(p, 0, sizeof(*p));
	p->max_age = -1;
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "a NUL octet in the policy");
		return -1;
	}
	/* Bounded: every turn consumes one line of a bounded text. */
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl ? 1 : 0);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			continue;
		const char *colon = memchr(line, ':', llen);
		if (colon == NULL)
			continue;	/* not a field: ignored */
		char *name = xstrndup(line, (size_t)(colon - line));
		char *value = xstrndup(colon + 1, llen - (size_t)(colon -
		    line) - 1);
		str_trim(name);
		char *v = str_trim(value);
		if (strcmp(name, "version") == 0 && !have_version) {
			have_version = true;
			if (strcmp(v, "STSv1") != 0) {
				snprintf(err, errlen, "version is \"%.40s\", "
				    "not STSv1", v);
				goto bad;
			}
		} else if (strcmp(name, "mode") == 0 && !have_mode) {
			have_mode = true;
			if (strcmp(v, "enforce") == 0)
				p->mode = MTASTS_ENFORCE;
			else if (strcmp(v, "testing") == 0)
				p->mode = MTASTS_TESTING;
			else if (strcmp(v, "none") == 0)
				p->mode = MTASTS_NONE;
			else {
				snprintf(err, errlen, "unknown mode \"%.40s\"",
				    v);
				goto bad;
			}
		} else if (strcmp(name, "max_age") == 0 && !have_age) {
			have_age = true;
			size_t digits = strspn(v, "0123456789");
			if (digits == 0 || digits > 10 || v[digits] != '\0' ||
			    strtoll(v, NULL, 10) > MTASTS_MAX_AGE) {
				snprintf(err, errlen, "bad max_age \"%.40s\"",
				    v);
				goto bad;
			}
			p->max_age = strtol(v, NULL, 10);
		} else if (strcmp(name, "mx") == 0) {
			size_t vl = strlen(v);
			if (vl > 0 && v[vl - 1] == '.')
				v[vl - 1] = '\0';
			str_lower(v);
			if (!valid_pattern(v)) {
				snprintf(err, errlen, "bad mx \"%.60s\"", v);
				goto bad;
			}
			if (p->nmx < MTASTS_MAX_MX)
				p->mx[p->nmx++] = xstrdup(v);
		}
		free(name);
		free(value);
		continue;
bad:
		free(name);
		free(value);
		mtasts_policy_free(p);
		return -1;
	}
	if (!have_version || !have_mode || !have_age) {
		snprintf(err, errlen, "no %s field", !have_version ? "version" :
		    !have_mode ? "mode" : "max_age");
		mtasts_policy_free(p);
		return -1;
	}
	if (p->mode != MTASTS_NONE && p->nmx == 0) {
		snprintf(err, errlen, "mode %s without any mx field",
		    mtasts_mode_name(p->mode));
		mtasts_policy_free(p);
		return -1;
	}
	return 0;
}

/* Section 4.1: "*.example.net" covers one label more, no fewer, no more. */
bool
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	char name[256];
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(name))
		return false;
	memcpy(name, host, len);
	name[len] = '\0';
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		if (strncmp(pat, "*.", 2) != 0) {
			if (str_casecmp_ascii(pat, name) == 0)
				return true;
			continue;
		}
		const char *dot = strchr(name, '.');
		if (dot && dot > name && str_casecmp_ascii(dot + 1, pat + 2) == 0)
			return true;
	}
	return false;
}

/* The TXT record (section 3.1). */

int
mtasts_txt_id(char *const *txt, size_t n, char *id, size_t idlen)
{
	int found = 0;

	for (size_t i = 0; i < n; i++) {
		const char *t = txt[i];
		if (strncmp(t, "v=STSv1", 7) != 0 || (t[7] != ';' &&
		    t[7] != ' ' && t[7] != '\t' && t[7] != '\0'))
			continue;
		if (found++)
			return -1;	/* several records: no policy */
		const char *f = strstr(t + 7, "id=");
		/* "id" must be a field of its own: after ';' and blanks. */
		while (f) {
			const char *b = f;
			while (b > t && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if (b > t && b[-1] == ';')
				break;
			f = strstr(f + 3, "id=");
		}
		if (f == NULL)
			return -1;
		size_t len = strspn(f + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789");
		const char *end = f + 3 + len;
		while (*end == ' ' || *end == '\t')
			end++;
		if (len == 0 || len > 32 || len >= idlen ||
		    (*end != ';' && *end != '\0'))
			return -1;
		memcpy(id, f + 3, len);
		id[len] = '\0';
	}
	return found;
}

/* The kept record. */

struct kept {
	char id[40];			/* "-": none fetched */
	int64_t fetched, expires, retry;
	struct mtasts_policy policy;	/* when id is not "-" */
	bool valid;			/* a policy, still within max_age */
	struct buf text;		/* its text, when valid */
};

static void
kept_name(const char *domain, char *name, size_t len)
{
	snprintf(name, len, "mta-sts|%s", domain);
}

static void
kept_read(struct spool *sp, const char *domain, int64_t now, struct kept *k)
{
	struct buf b = BUF_INIT;
	char name[300];

	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "-");
	kept_name(domain, name, sizeof(name));
	if (sp == NULL || spool_cache_get(sp, name, &b) != SPOOL_OK)
		goto out;
	char *nl = memchr(b.data, '\n', b.len);
	char id[40];
	int64_t f, e, r;
	if (nl == NULL || sscanf(b.data, "mta-sts 1 %39s %" SCNd64 " %"
	    SCNd64 " %" SCNd64, id, &f, &e, &r) != 4)
		goto out;		/* not ours: as if none */
	snprintf(k->id, sizeof(k->id), "%s", id);
	k->fetched = f;
	k->expires = e;
	k->retry = r;
	if (strcmp(id, "-") == 0 || e <= now)
		goto out;
	char err[200];
	size_t off = (size_t)(nl + 1 - b.data);
	if (mtasts_parse(nl + 1, b.len - off, &k->policy, err,
	    sizeof(err)) != 0)
		goto out;
	buf_append(&k->text, nl + 1, b.len - off);
	snprintf(k->policy.id, sizeof(k->policy.id), "%s", id);
	k->policy.fetched = f;
	k->policy.expires = e;
	k->valid = true;
out:
	buf_free(&b);
}

static void
kept_write(struct spool *sp, const char *domain, const char *id,
    int64_t fetched, int64_t expires, int64_t retry, const char *text,
    size_t len)
{
	struct buf b = BUF_INIT;
	char name[300];

	if (sp == NULL)
		return;
	kept_name(domain, name, sizeof(name));
	buf_printf(&b, "mta-sts 1 %s %" PRId64 " %" PRId64 " %" PRId64 "\n",
	    id, fetched, expires, retry);
	buf_append(&b, text, len);
	(void)spool_cache_put(sp, name, b.data, b.len);
	buf_free(&b);
}

/* The fetch (section 3.3). */

struct body {
	struct buf b;
	bool too_big;
};

static size_t
body_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *body = arg;
	size_t len = size * nmemb;

	if (body->b.len + len > MTASTS_MAX_BODY) {
		body->too_big = true;
		return 0;		/* curl stops: CURLE_WRITE_ERROR */
	}
	buf_append(&body->b, data, len);
	return len;
}

static int
fetch(const struct mxl_config *cfg, const struct dns_resolver *dns,
    const char *domain, struct buf *out, char *err, size_t errlen)
{
	static bool curl_ready;
	char host[300], url[400], errbuf[CURL_ERROR_SIZE] = "";
	struct dns_host h;
	struct body body = {BUF_INIT, false};
	struct curl_slist *resolve = NULL;
	int rc = -1;

	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	/* Our resolver, not the system's: curl is handed the addresses. */
	if (dns_find_addrs(dns, host, false, &h, err, errlen) != DNS_OK)
		return -1;
	struct buf r = BUF_INIT;
	buf_printf(&r, "%s:%d:", host, cfg->mta_sts_port);
	for (size_t i = 0; i < h.naddrs; i++) {
		char ip[64];
		dns_addr_string(&h.addrs[i], ip, sizeof(ip));
		buf_printf(&r, "%s%s%s%s", i ? "," : "",
		    h.addrs[i].ss_family == AF_INET6 ? "[" : "", ip,
		    h.addrs[i].ss_family == AF_INET6 ? "]" : "");
	}
	dns_host_free(&h);
	resolve = curl_slist_append(NULL, r.data);
	buf_free(&r);
	if (cfg->mta_sts_port == 443)
		snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt",
		    host);
	else
		snprintf(url, sizeof(url), "https://%s:%d/.well-known/"
		    "mta-sts.txt", host, cfg->mta_sts_port);
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "libcurl cannot start");
			curl_slist_free_all(resolve);
			return -1;
		}
		curl_ready = true;
	}
	CURL *c = curl_easy_init();
	if (c == NULL || resolve == NULL) {
		snprintf(err, errlen, "libcurl cannot start");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CAINFO, cfg->smtp_tls_CAfile);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)MTASTS_FETCH_SECONDS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)MTASTS_FETCH_SECONDS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)MTASTS_MAX_BODY);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mxlane");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		if (body.too_big || cc == CURLE_FILESIZE_EXCEEDED)
			snprintf(err, errlen, "%s: larger than %d octets", url,
			    MTASTS_MAX_BODY);
		else	/* each part cut to fit the reason's 512 octets */
			snprintf(err, errlen, "%.250s: %.250s", url,
			    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	long status = 0;
	char *type = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
	if (status != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld", url, status);
		goto out;
	}
	if (type == NULL || strncasecmp(type, "text/plain", 10) != 0 ||
	    (type[10] != '\0' && type[10] != ';' && type[10] != ' ')) {
		snprintf(err, errlen, "%s: media type %.60s, not text/plain",
		    url, type ? type : "(none)");
		goto out;
	}
	buf_reset(out);
	buf_append(out, body.b.data, body.b.len);
	rc = 0;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	buf_free(&body.b);
	return rc;
}

/* The decision (section 5), and its memo. */

struct memo {
	char *domain;
	time_t until;
	struct mtasts_state st;
};

static struct memo memo[MEMO_SIZE];

static struct memo *
memo_slot(const char *domain)
{
	uint32_t hash = 2166136261u;	/* FNV-1a */

	for (const char *c = domain; *c; c++)
		hash = (hash ^ (unsigned char)*c) * 16777619u;
	return &memo[hash % MEMO_SIZE];
}

static void
state_copy(struct mtasts_state *to, const struct mtasts_state *from)
{
	*to = *from;
	policy_copy(&to->policy, &from->policy);
}

void
mtasts_state_free(struct mtasts_state *st)
{
	mtasts_policy_free(&st->policy);
	memset(st, 0, sizeof(*st));
}

static void
use_policy(struct mtasts_state *st, const struct mtasts_policy *p,
    const char *how)
{
	char until[32];
	time_t t = (time_t)p->expires;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	policy_copy(&st->policy, p);
	st->have = p->mode != MTASTS_NONE;
	snprintf(st->why, sizeof(st->why), "policy id %s, %s, kept until %s",
	    p->id, how, until);
}

static void
decide(const struct mxl_config *cfg, const struct dns_resolver *dns,
    struct spool *sp, const char *domain, struct mtasts_state *st)
{
	int64_t now = (int64_t)time(NULL);
	char name[300], err[512], id[40] = "";
	char **txt = NULL;
	size_t ntxt = 0;
	struct kept k;

	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	enum dns_status ds = dns_find_txt(dns, name, &txt, &ntxt, err,
	    sizeof(err));
	int found = ds == DNS_OK ? mtasts_txt_id(txt, ntxt, id,
	    sizeof(id)) : 0;
	dns_txt_free(txt, ntxt);
	kept_read(sp, domain, now, &k);

	if (found != 1) {
		/* Section 5: no (usable) record; a kept policy still holds. */
		if (k.valid)
			use_policy(st, &k.policy, found < 0 ?
			    "kept (the TXT record is not valid now)" :
			    "kept (no TXT record now)");
		else
			snprintf(st->why, sizeof(st->why), "no policy: %s",
			    found < 0 ? "malformed or several v=STSv1 TXT "
			    "records" : ds == DNS_TEMPFAIL ? "TXT look-up "
			    "failed" : "no _mta-sts TXT record");
		goto out;
	}
	if (k.valid && strcmp(k.id, id) == 0) {
		use_policy(st, &k.policy, "kept");
		goto out;
	}
	if (k.retry > now && k.retry - now <= MTASTS_RETRY_SECONDS) {
		/* A fetch failed a moment ago: not again yet. */
		if (k.valid)
			use_policy(st, &k.policy, "kept (a new one could not "
			    "be fetched)");
		else
			snprintf(st->why, sizeof(st->why), "no policy: the "
			    "fetch failed, retried after %" PRId64 " s",
			    k.retry - now);
		goto out;
	}
	struct buf body = BUF_INIT;
	struct mtasts_policy p;
	int rc = fetch(cfg, dns, domain, &body, err, sizeof(err));
	if (rc == 0 && mtasts_parse(body.data, body.len, &p, err,
	    sizeof(err)) != 0) {
		char *why = xasprintf("mta-sts.%s policy: %s", domain, err);
		snprintf(err, sizeof(err), "%s", why);
		free(why);
		rc = -1;
	}
	if (rc != 0) {
		log_warn("MTA-STS policy of %s could not be fetched: %s; %s",
		    domain, err, k.valid ? "the kept one applies" :
		    "delivering without MTA-STS");
		if (k.valid) {
			kept_write(sp, domain, k.id, k.fetched, k.expires,
			    now + MTASTS_RETRY_SECONDS, k.text.data,
			    k.text.len);
			use_policy(st, &k.policy, "kept (a new one could not "
			    "be fetched)");
		} else {
			kept_write(sp, domain, "-", 0, 0,
			    now + MTASTS_RETRY_SECONDS, "", 0);
			snprintf(st->why, sizeof(st->why), "no policy: fetch "
			    "failed: %.400s", err);
		}
		buf_free(&body);
		goto out;
	}
	snprintf(p.id, sizeof(p.id), "%s", id);
	p.fetched = now;
	p.expires = now + p.max_age;
	kept_write(sp, domain, id, now, p.expires, 0, body.data, body.len);
	log_info("MTA-STS policy of %s fetched: id %s, mode %s, max_age %ld",
	    domain, id, mtasts_mode_name(p.mode), p.max_age);
	use_policy(st, &p, "fetched now");
	mtasts_policy_free(&p);
	buf_free(&body);
out:
	mtasts_policy_free(&k.policy);
	buf_free(&k.text);
}

void
mtasts_find(const struct mxl_config *cfg, const struct dns_resolver *dns,
    struct spool *sp, const char *domain, struct mtasts_state *st)
{
	time_t now = time(NULL);
	struct memo *m = memo_slot(domain);

	memset(st, 0, sizeof(*st));
	if (m->domain && strcmp(m->domain, domain) == 0 && m->until > now) {
		state_copy(st, &m->st);
		return;
	}
	decide(cfg, dns, sp, domain, st);
	free(m->domain);
	mtasts_state_free(&m->st);
	m->domain = xstrdup(domain);
	/* Never past the policy's own end. */
	m->until = now + MEMO_TTL;
	if (st->have && st->policy.expires < m->until)
		m->until = (time_t)st->policy.expires;
	state_copy(&m->st, st);
}
