/*
 * NAME
 *	address - RFC 5322 / RFC 5321 address parsing for submission
 * SYNOPSIS
 *	#include "sendmail/address.h"
 * DESCRIPTION
 *	Every address leaves this module in one canonical form: a bare
 *	addr-spec, "local@domain" or "local", whose local part is a
 *	dot-atom when it can be one and a quoted string (with '"' and '\'
 *	escaped) only when RFC 5321 needs it. So "john"@x becomes john@x,
 *	and the obsolete john..doe@x, which real clients still send (some
 *	mobile carriers hand such addresses out), becomes "john..doe"@x,
 *	which is how Postfix puts it on the wire too. The domain keeps its
 *	case; a single trailing dot is dropped.
 *
 *	address_list_parse() is lenient where real mail is sloppy and strict
 *	where a guess could send mail to the wrong place:
 *	-	Empty list elements ("a@x,,b@y") are skipped.
 *	-	';' outside a group separates addresses, as Outlook users
 *		type them.
 *	-	A group left open at the end of the field is closed.
 *	-	Whatever precedes '<' is a display name and is not checked:
 *		"john@x <john@x>" and unquoted dots or '@' there are fine.
 *	-	CFWS around dots and '@' is allowed (obsolete syntax), and a
 *		line break anywhere is whitespace: the header was already
 *		split into fields by the caller.
 *	-	An unquoted comma splits: Doe, John <j@x> yields the local
 *		user "Doe" and j@x, as in sendmail and Postfix.
 *	-	Errors: unterminated quoted strings, comments and domain
 *		literals, unbalanced or nested '<>', two angle addresses in
 *		one element, words after '>', nested groups, a group name
 *		with '@' in it, and any element that is not an addr-spec.
 *		On error nothing is added to out.
 *	-	An address already in out (address_equal) is not added again,
 *		so one list can collect To:, Cc: and Bcc:.
 *
 *	address_envelope_parse() trims blanks at both ends and inside the
 *	angle brackets, accepts and drops an RFC 5321 source route inside
 *	angle brackets, and takes the obsolete dots in the local part as
 *	above. Tab counts as a blank; every other control character, and
 *	DEL, is an error. NUL cannot be seen: the input is a C string.
 *
 *	Limits: local part 256 bytes (RFC 5321 says 64, but longer ones
 *	exist in the wild), domain 255, label 63, whole address 320. Domain
 *	labels are letters, digits, '-' (not first or last) and UTF-8;
 *	domain literals are [IPv4] or [IPv6:address]. Bytes >= 0x80 must be
 *	well-formed UTF-8 (SMTPUTF8).
 *
 *	address_valid() is strict: the local part must be a dot-atom or a
 *	quoted string, i.e. what this module produces.
 *
 *	addr_list_add_unique() returns true when it added the address. The
 *	list keeps a hash set beside the array, so collecting n recipients
 *	is linear; what counts as a duplicate is still address_equal().
 * DIAGNOSTICS
 *	Messages are one line and name the problem, e.g. "space outside
 *	quotes", "CR or LF in address", "unbalanced angle brackets", "empty
 *	local part", "invalid domain \"x..y\"". address_list_parse() adds the
 *	offending element: "empty local part in \"<@x>\"".
 * SEE ALSO
 *	RFC 5321 section 4.1.2, RFC 5322 section 3.4 and 4.4.
 */
#include "sendmail/address.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define LOCAL_MAX	256
#define DOMAIN_MAX	255
#define LABEL_MAX	63
#define ADDRESS_MAX	320
#define EXCERPT_MAX	60
#define NONE		SIZE_MAX

/* Token types; specials are their own character. */
enum {
	T_ATOM = 256,
	T_QSTRING,
	T_LITERAL
};

struct tok {
	int type;
	char *text;		/* atom, decoded quoted string, literal */
	size_t off;		/* where in the field body, for messages */
	size_t len;
};

struct toks {
	struct tok *v;
	size_t n;
	size_t cap;
};

struct lparse {
	const char *text;
	struct toks t;
	struct addr_list *out;
	char *err;
	size_t errlen;
};

static void set_err(char *, size_t, const char *, ...) MXL_PRINTF(3, 4);
static int elem_err(struct lparse *, size_t, size_t, const char *, ...)
    MXL_PRINTF(4, 5);

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Copies a piece of input for an error message. Line breaks and
 * control characters become spaces so the message stays on one line and
 * cannot inject anything into a log or a bounce.
 */
static void
excerpt(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t i, n = len > EXCERPT_MAX ? EXCERPT_MAX - 3 : len;

	if (n > dstlen - 4)
		n = dstlen - 4;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (n < len) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k, n;

	while (i < len) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return false;
		if (len - i - 1 < n)
			return false;
		for (k = 1; k <= n; k++) {
			if (s[i + k] < lo || s[i + k] > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
		i += n + 1;
	}
	return true;
}

static bool
is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int
local_check(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i;

	if (len == 0) {
		set_err(err, errlen, "empty local part");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (is_ctl((unsigned char)s[i])) {
			set_err(err, errlen, "control character in address");
			return -1;
		}
	}
	if (!utf8_valid(s, len)) {
		set_err(err, errlen, "invalid UTF-8 in address");
		return -1;
	}
	if (len > LOCAL_MAX) {
		set_err(err, errlen, "local part too long");
		return -1;
	}
	return 0;
}

static bool
literal_valid(const char *s, size_t len)
{
	char ip[64];
	unsigned char bin[16];
	int af = AF_INET;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	if (len > 5 && str_ncasecmp_ascii(s, "IPv6:", 5) == 0) {
		af = AF_INET6;
		s += 5;
		len -= 5;
	}
	if (len >= sizeof(ip) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(ip, s, len);
	ip[len] = '\0';
	return inet_pton(af, ip, bin) == 1;
}

static bool
labels_valid(const char *s, size_t len)
{
	size_t i, start = 0;

	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (i == start || i - start > LABEL_MAX ||
			    s[start] == '-' || s[i - 1] == '-')
				return false;
			start = i + 1;
		} else if (!(c >= 0x80 || c == '-' ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')))
			return false;
	}
	return utf8_valid(s, len);
}

/* Checks a domain; *len loses the trailing dot of "example.com.". */
static int
domain_check(const char *s, size_t *len, char *err, size_t errlen)
{
	char ex[EXCERPT_MAX + 4];
	size_t n = *len;

	excerpt(ex, sizeof(ex), s, n);
	if (n == 0) {
		set_err(err, errlen, "empty domain");
		return -1;
	}
	if (s[0] == '[') {
		if (!literal_valid(s, n)) {
			set_err(err, errlen, "invalid domain literal \"%s\"", ex);
			return -1;
		}
		return 0;
	}
	if (s[n - 1] == '.')
		n--;
	if (n > DOMAIN_MAX) {
		set_err(err, errlen, "domain too long");
		return -1;
	}
	if (!labels_valid(s, n)) {
		set_err(err, errlen, "invalid domain \"%s\"", ex);
		return -1;
	}
	*len = n;
	return 0;
}

/*
 * Builds the canonical address from a decoded local part and a domain
 * (NULL when unqualified), checking both.
 */
static int
spec_finish(const char *local, size_t llen, const char *domain, size_t dlen,
    char **out, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	size_t i;

	if (local_check(local, llen, err, errlen) == -1)
		return -1;
	if (domain != NULL && domain_check(domain, &dlen, err, errlen) == -1)
		return -1;
	if (is_dot_atom(local, llen))
		buf_append(&b, local, llen);
	else {
		buf_putc(&b, '"');
		for (i = 0; i < llen; i++) {
			if (local[i] == '"' || local[i] == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, local[i]);
		}
		buf_putc(&b, '"');
	}
	if (domain != NULL) {
		buf_putc(&b, '@');
		buf_append(&b, domain, dlen);
	}
	if (b.len > ADDRESS_MAX) {
		buf_free(&b);
		set_err(err, errlen, "address too long");
		return -1;
	}
	*out = buf_steal(&b);
	return 0;
}

static int
quoted_decode(const char *s, struct buf *content, const char **end,
    char *err, size_t errlen)
{
	const char *p;

	for (p = s + 1; *p != '"'; p++) {
		if (*p == '\\')
			p++;
		if (*p == '\0') {
			set_err(err, errlen, "unterminated quoted string");
			return -1;
		}
		buf_putc(content, *p);
	}
	*end = p + 1;
	return 0;
}

/*
 * Reads the local part at s, a quoted string or everything up to '@',
 * into content (decoded); *end is left after it. strict demands a
 * dot-atom; otherwise the obsolete dots (".a", "a..b", "a.") pass and
 * the result gets quoted.
 */
static int
local_decode(const char *s, bool strict, struct buf *content,
    const char **end, char *err, size_t errlen)
{
	const char *p;

	buf_reset(content);
	buf_reserve(content, 0);
	if (*s == '"')
		return quoted_decode(s, content, end, err, errlen);
	for (p = s; *p != '\0' && *p != '@'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == ' ' || c == '\t') {
			set_err(err, errlen, "space outside quotes");
			return -1;
		}
		if (is_ctl(c)) {
			set_err(err, errlen, "control character in address");
			return -1;
		}
		if (c != '.' && !is_atext(c)) {
			set_err(err, errlen, "invalid character '%c' in local "
			    "part", c);
			return -1;
		}
		buf_putc(content, (char)c);
	}
	if (strict && !is_dot_atom(content->data, content->len)) {
		set_err(err, errlen, "misplaced dot in local part");
		return -1;
	}
	*end = p;
	return 0;
}

/* Parses a bare addr-spec string into canonical form. */
static int
spec_parse(const char *s, bool strict, char **out, char *err, size_t errlen)
{
	struct buf local = BUF_INIT;
	const char *end, *domain = NULL;
	int rc = -1;

	if (local_decode(s, strict, &local, &end, err, errlen) == -1)
		goto done;
	if (*end == '@') {
		domain = end + 1;
		if (strpbrk(domain, " \t") != NULL) {
			set_err(err, errlen, "space outside quotes");
			goto done;
		}
	} else if (*end == ' ' || *end == '\t') {
		set_err(err, errlen, "space outside quotes");
		goto done;
	} else if (*end != '\0') {
		set_err(err, errlen, "text after quoted local part");
		goto done;
	}
	rc = spec_finish(local.data, local.len, domain,
	    domain ? strlen(domain) : 0, out, err, errlen);
done:
	buf_free(&local);
	return rc;
}

/* Finds c outside quoted strings, or NULL; *unterminated on a bad quote. */
static const char *
find_unquoted(const char *s, int c, bool *unterminated)
{
	bool quoted = false;

	for (; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == c)
			return s;
	}
	*unterminated = quoted;
	return NULL;
}

static int
envelope_check_chars(const char *text, char *err, size_t errlen)
{
	const unsigned char *p;

	if (strpbrk(text, "\r\n") != NULL) {
		set_err(err, errlen, "CR or LF in address");
		return -1;
	}
	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		if (is_ctl(*p) && *p != '\t') {
			set_err(err, errlen, "control character in address");
			return -1;
		}
	}
	return 0;
}

/*
 * Narrows s to what is inside <...>, dropping a display name before
 * it and a source route inside it. Returns the new start, modifying s.
 */
static char *
envelope_unwrap(char *s, char *err, size_t errlen)
{
	bool bad = false;
	const char *lt, *gt, *more;
	char *inner, *colon;

	lt = find_unquoted(s, '<', &bad);
	gt = find_unquoted(s, '>', &bad);
	if (bad) {
		set_err(err, errlen, "unterminated quoted string");
		return NULL;
	}
	if (lt == NULL && gt == NULL)
		return s;
	if (lt == NULL || gt == NULL || gt < lt) {
		set_err(err, errlen, "unbalanced angle brackets");
		return NULL;
	}
	more = find_unquoted(lt + 1, '<', &bad);
	if (more != NULL && more < gt) {
		set_err(err, errlen, "nested angle brackets");
		return NULL;
	}
	if (gt[1] != '\0') {
		set_err(err, errlen, find_unquoted(gt + 1, '>', &bad) ?
		    "unbalanced angle brackets" : "text after angle brackets");
		return NULL;
	}
	inner = s + (lt - s) + 1;
	inner[gt - lt - 1] = '\0';
	str_trim(inner);
	if (inner[0] == '@') {
		if ((colon = strchr(inner, ':')) == NULL) {
			set_err(err, errlen, "bad source route");
			return NULL;
		}
		inner = colon + 1;
	}
	return inner;
}

int
address_envelope_parse(const char *text, bool allow_null, char **out,
    char *err, size_t errlen)
{
	char *copy = NULL, *s;
	int rc = -1;

	if (envelope_check_chars(text, err, errlen) == -1)
		return -1;
	copy = xstrdup(text);
	if ((s = envelope_unwrap(str_trim(copy), err, errlen)) == NULL)
		goto done;
	if (*s == '\0') {
		if (!allow_null) {
			set_err(err, errlen, "empty address");
			goto done;
		}
		*out = xstrdup("");
		rc = 0;
		goto done;
	}
	rc = spec_parse(s, false, out, err, errlen);
done:
	free(copy);
	return rc;
}

bool
address_valid(const char *addr)
{
	char *canon = NULL;

	if (addr == NULL || spec_parse(addr, true, &canon, NULL, 0) == -1)
		return false;
	free(canon);
	return true;
}

const char *
address_domain(const char *addr)
{
	const char *p = addr, *at;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
	}
	at = strrchr(p, '@');
	return at ? at + 1 : NULL;
}

char *
address_qualify(const char *addr, const char *origin)
{
	if (address_domain(addr) != NULL || origin == NULL || *origin == '\0')
		return xstrdup(addr);
	return xasprintf("%s@%s", addr, origin);
}

/* Compares decoded local parts, so "john"@x equals john@x. */
static bool
local_equal_decoded(const char *a, const char *b)
{
	struct buf la = BUF_INIT, lb = BUF_INIT;
	const char *end;
	bool eq = false;

	if (local_decode(a, false, &la, &end, NULL, 0) == 0 &&
	    local_decode(b, false, &lb, &end, NULL, 0) == 0)
		eq = la.len == lb.len && memcmp(la.data, lb.data, la.len) == 0;
	buf_free(&la);
	buf_free(&lb);
	return eq;
}

bool
address_equal(const char *a, const char *b)
{
	const char *da = address_domain(a), *db = address_domain(b);
	size_t la, lb;

	if ((da == NULL) != (db == NULL))
		return false;
	if (da != NULL && str_casecmp_ascii(da, db) != 0)
		return false;
	la = da ? (size_t)(da - 1 - a) : strlen(a);
	lb = db ? (size_t)(db - 1 - b) : strlen(b);
	if (la == lb && memcmp(a, b, la) == 0)
		return true;
	if (a[0] != '"' && b[0] != '"')
		return false;
	return local_equal_decoded(a, b);
}

/*
 * The set's hash. It must agree wherever address_equal() does: equal
 * addresses have the same domain but for ASCII case, and either the
 * same raw local part or the same decoded one (when one is quoted). So
 * the hash covers the lower-cased domain and the decoded local part
 * (the raw one when it does not decode); the set then asks
 * address_equal() itself, so what counts as a duplicate is exactly
 * what it was.
 */
static uint64_t
addr_hash(const char *addr)
{
	const char *domain = address_domain(addr), *end, *p;
	size_t llen = domain ? (size_t)(domain - 1 - addr) : strlen(addr);
	uint64_t h = 14695981039346656037ULL;
	struct buf local = BUF_INIT;

	if (local_decode(addr, false, &local, &end, NULL, 0) == 0) {
		p = local.data;
		llen = local.len;
	} else {
		p = addr;
	}
	for (size_t i = 0; i < llen; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	buf_free(&local);
	/* No domain is not the same as an empty one. */
	h = (h ^ (domain ? '@' : 0x100)) * 1099511628211ULL;
	for (p = domain; p && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 1099511628211ULL;
	}
	return h;
}

struct addr_set_slot {
	const char *addr;	/* NULL: free */
	uint64_t hash;
};

static struct addr_set_slot *
set_probe(struct addr_set_slot *slots, size_t cap, const char *addr,
    uint64_t hash)
{
	size_t i = (size_t)hash & (cap - 1);

	while (slots[i].addr != NULL && (slots[i].hash != hash ||
	    !address_equal(slots[i].addr, addr)))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

const char *
addr_set_add(struct addr_set *set, const char *addr)
{
	uint64_t hash = addr_hash(addr);
	struct addr_set_slot *slot;

	if ((set->n + 1) * 2 > set->cap) {
		struct addr_set_slot *old = set->slots;
		size_t oldcap = set->cap;

		set->cap = set->cap ? set->cap * 2 : 16;
		set->slots = xcalloc(set->cap, sizeof(*set->slots));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].addr != NULL)
				*set_probe(set->slots, set->cap, old[i].addr,
				    old[i].hash) = old[i];
		free(old);
	}
	slot = set_probe(set->slots, set->cap, addr, hash);
	if (slot->addr != NULL)
		return slot->addr;
	slot->addr = addr;
	slot->hash = hash;
	set->n++;
	return NULL;
}

void
addr_set_free(struct addr_set *set)
{
	free(set->slots);
	set->slots = NULL;
	set->n = set->cap = 0;
}

bool
addr_list_add_unique(struct addr_list *list, const char *addr)
{
	char *copy = xstrdup(addr);

	if (addr_set_add(&list->seen, copy) != NULL) {
		free(copy);
		return false;
	}
	if (list->n == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 8;
		list->addrs = xrealloc(list->addrs,
		    list->cap * sizeof(*list->addrs));
	}
	list->addrs[list->n++] = copy;
	return true;
}

void
addr_list_free(struct addr_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		free(list->addrs[i]);
	free(list->addrs);
	addr_set_free(&list->seen);
	list->addrs = NULL;
	list->n = list->cap = 0;
}

/* Header field bodies: tokens first, then the address-list grammar. */

static void
toks_push(struct toks *t, int type, char *text, size_t off, size_t len)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n].type = type;
	t->v[t->n].text = text;
	t->v[t->n].off = off;
	t->v[t->n].len = len;
	t->n++;
}

static void
toks_free(struct toks *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].text);
	free(t->v);
}

static int
scan_comment(const char *s, size_t len, size_t *i, char *err, size_t errlen)
{
	size_t depth = 0, p;

	for (p = *i; p < len; p++) {
		if (s[p] == '\\')
			p++;
		else if (s[p] == '(')
			depth++;
		else if (s[p] == ')' && --depth == 0) {
			*i = p + 1;
			return 0;
		}
	}
	set_err(err, errlen, "unterminated comment");
	return -1;
}

/*
 * Reads a quoted string (close = '"') or a domain literal (close = ']')
 * starting at s[*i]. Folding is removed; NUL is refused.
 */
static int
scan_delimited(const char *s, size_t len, size_t *i, char close,
    struct buf *b, char *err, size_t errlen)
{
	size_t p;

	for (p = *i + 1; p < len && s[p] != close; p++) {
		if (s[p] == '\\' && p + 1 < len)
			p++;
		else if (s[p] == '\r' || s[p] == '\n')
			continue;
		else if (close == ']' && (s[p] == ' ' || s[p] == '\t'))
			continue;
		if (s[p] == '\0') {
			set_err(err, errlen, "NUL in address");
			return -1;
		}
		buf_putc(b, s[p]);
	}
	if (p >= len) {
		set_err(err, errlen, close == '"' ? "unterminated quoted "
		    "string" : "unterminated domain literal");
		return -1;
	}
	*i = p + 1;
	return 0;
}

static bool
is_special(unsigned char c)
{
	return c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static int
scan_char(const char *s, size_t len, size_t *i, struct toks *t,
    char *err, size_t errlen)
{
	unsigned char c = (unsigned char)s[*i];
	size_t start = *i, p;

	if (c == '\0' || is_ctl(c)) {
		set_err(err, errlen, c ? "control character in address" :
		    "NUL in address");
		return -1;
	}
	if (c == ')' || c == ']' || c == '\\') {
		set_err(err, errlen, "unexpected '%c'", c);
		return -1;
	}
	if (is_special(c)) {
		toks_push(t, c, NULL, start, 1);
		(*i)++;
		return 0;
	}
	for (p = start; p < len; p++) {
		c = (unsigned char)s[p];
		if (c == ' ' || c == '\0' || is_ctl(c) || is_special(c))
			break;
	}
	toks_push(t, T_ATOM, xstrndup(s + start, p - start), start, p - start);
	*i = p;
	return 0;
}

static int
tokenize(const char *s, size_t len, struct toks *t, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	size_t i = 0, start;
	int rc = -1;
	char c;

	while (i < len) {
		c = s[i];
		start = i;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			i++;
		else if (c == '(') {
			if (scan_comment(s, len, &i, err, errlen) == -1)
				goto done;
		} else if (c == '"' || c == '[') {
			buf_reset(&b);
			if (c == '[')
				buf_putc(&b, '[');
			if (scan_delimited(s, len, &i, c == '"' ? '"' : ']',
			    &b, err, errlen) == -1)
				goto done;
			if (c == '[')
				buf_putc(&b, ']');
			toks_push(t, c == '"' ? T_QSTRING : T_LITERAL,
			    xstrndup(b.data ? b.data : "", b.len), start,
			    i - start);
		} else if (scan_char(s, len, &i, t, err, errlen) == -1)
			goto done;
	}
	rc = 0;
done:
	buf_free(&b);
	return rc;
}

static int
elem_err(struct lparse *lp, size_t s, size_t e, const char *fmt, ...)
{
	char reason[256], ex[EXCERPT_MAX + 4];
	const struct tok *first = &lp->t.v[s], *last = &lp->t.v[e - 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	excerpt(ex, sizeof(ex), lp->text + first->off,
	    last->off + last->len - first->off);
	set_err(lp->err, lp->errlen, "%s in \"%s\"", reason, ex);
	return -1;
}

static int
unexpected(struct lparse *lp, size_t i, size_t es, size_t ee)
{
	char ex[EXCERPT_MAX + 4];
	const struct tok *t = &lp->t.v[i];

	excerpt(ex, sizeof(ex), lp->text + t->off, t->len);
	return elem_err(lp, es, ee, "unexpected \"%s\"", ex);
}

/*
 * Appends words and dots from v[*i] on; two words in a row are an
 * error (a display name without angle brackets, usually).
 */
static int
spec_words(struct lparse *lp, size_t *i, size_t e, bool domain,
    struct buf *b, size_t es, size_t ee)
{
	const struct tok *t;
	bool word = false;

	for (; *i < e; (*i)++) {
		t = &lp->t.v[*i];
		if (t->type == T_ATOM || (!domain && t->type == T_QSTRING)) {
			if (word)
				return unexpected(lp, *i, es, ee);
			buf_puts(b, t->text);
			word = true;
		} else if (t->type == '.') {
			buf_putc(b, '.');
			word = false;
		} else
			break;
	}
	return 0;
}

/* Tokens v[s..e) as an addr-spec; es..ee is the element, for messages. */
static int
spec_tokens(struct lparse *lp, size_t s, size_t e, size_t es, size_t ee)
{
	struct buf local = BUF_INIT, domain = BUF_INIT;
	char reason[200];
	char *addr = NULL;
	bool qualified = false;
	size_t i = s;
	int rc = -1;

	if (s == e) {
		elem_err(lp, es, ee, "empty address");
		goto done;
	}
	buf_reserve(&local, 0);
	buf_reserve(&domain, 0);
	if (spec_words(lp, &i, e, false, &local, es, ee) == -1)
		goto done;
	if (i < e && lp->t.v[i].type == '@') {
		qualified = true;
		if (++i < e && lp->t.v[i].type == T_LITERAL)
			buf_puts(&domain, lp->t.v[i++].text);
		else if (spec_words(lp, &i, e, true, &domain, es, ee) == -1)
			goto done;
	}
	if (i < e) {
		unexpected(lp, i, es, ee);
		goto done;
	}
	if (spec_finish(local.data, local.len, qualified ? domain.data : NULL,
	    domain.len, &addr, reason, sizeof(reason)) == -1) {
		elem_err(lp, es, ee, "%s", reason);
		goto done;
	}
	addr_list_add_unique(lp->out, addr);
	free(addr);
	rc = 0;
done:
	buf_free(&local);
	buf_free(&domain);
	return rc;
}

/* One list element v[s..e); lt and gt locate its <>, or are NONE. */
static int
element_finish(struct lparse *lp, size_t s, size_t e, size_t lt, size_t gt)
{
	size_t i, start;

	if (s == e)
		return 0;
	if (lt == NONE)
		return spec_tokens(lp, s, e, s, e);
	if (gt + 1 < e)
		return unexpected(lp, gt + 1, s, e);
	start = lt + 1;
	if (start < gt && lp->t.v[start].type == '@') {
		for (i = start; i < gt && lp->t.v[i].type != ':'; i++)
			continue;
		if (i == gt)
			return elem_err(lp, s, e, "bad source route");
		start = i + 1;
	}
	return spec_tokens(lp, start, gt, s, e);
}

static int
group_start(struct lparse *lp, size_t s, size_t i, size_t lt, bool in_group)
{
	size_t k;

	if (in_group)
		return elem_err(lp, s, i + 1, "nested group");
	for (k = s; k < i; k++)
		if (lp->t.v[k].type == '@')
			break;
	if (lt != NONE || k < i)
		return elem_err(lp, s, i + 1, "bad group name");
	return 0;
}

static int
list_walk(struct lparse *lp)
{
	const struct tok *t;
	size_t i, s = 0, lt = NONE, gt = NONE;
	bool in_angle = false, in_group = false;

	for (i = 0; i < lp->t.n; i++) {
		t = &lp->t.v[i];
		if (t->type == '<') {
			if (in_angle)
				return elem_err(lp, s, i + 1, "nested angle "
				    "brackets");
			if (lt != NONE)
				return elem_err(lp, s, i + 1, "more than one "
				    "angle address");
			in_angle = true;
			lt = i;
		} else if (t->type == '>') {
			if (!in_angle)
				return elem_err(lp, s, i + 1, "unbalanced "
				    "angle brackets");
			in_angle = false;
			gt = i;
		} else if (in_angle)
			continue;
		else if (t->type == ':') {
			if (group_start(lp, s, i, lt, in_group) == -1)
				return -1;
			in_group = true;
			s = i + 1;
		} else if (t->type == ',' || t->type == ';') {
			if (element_finish(lp, s, i, lt, gt) == -1)
				return -1;
			if (t->type == ';')
				in_group = false;
			s = i + 1;
			lt = gt = NONE;
		}
	}
	if (in_angle)
		return elem_err(lp, s, i, "unbalanced angle brackets");
	return element_finish(lp, s, i, lt, gt);
}

int
address_list_parse(const char *text, size_t len, struct addr_list *out,
    char *err, size_t errlen)
{
	struct lparse lp;
	size_t keep = out->n;
	bool had_array = out->addrs != NULL;
	int rc;

	memset(&lp, 0, sizeof(lp));
	lp.text = text;
	lp.out = out;
	lp.err = err;
	lp.errlen = errlen;
	rc = tokenize(text, len, &lp.t, err, errlen);
	if (rc == 0)
		rc = list_walk(&lp);
	toks_free(&lp.t);
	if (rc == -1 && out->n > keep) {
		while (out->n > keep)
			free(out->addrs[--out->n]);
		/* The set pointed at what was just freed. */
		addr_set_free(&out->seen);
		for (size_t i = 0; i < out->n; i++)
			(void)addr_set_add(&out->seen, out->addrs[i]);
		/*
		 * "As it was" includes the array: a caller whose list was
		 * empty may drop it on error without addr_list_free().
		 */
		if (!had_array) {
			free(out->addrs);
			out->addrs = NULL;
			out->cap = 0;
		}
	}
	return rc;
}
