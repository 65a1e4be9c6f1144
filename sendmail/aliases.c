/*
 * NAME
 *	aliases - /etc/aliases parsing and alias expansion at submission
 * SYNOPSIS
 *	#include "sendmail/aliases.h"
 * DESCRIPTION
 *	The file format follows Postfix's reading of aliases(5):
 *	-	A logical line starts with a non-blank character; physical
 *		lines that start with a blank continue it. Blank lines and
 *		lines whose first non-blank character is '#' are ignored,
 *		even between continuation lines. CRLF line ends are taken.
 *	-	"name: targets". The name is a local part (it may be quoted,
 *		must not have a domain) and is folded to lower case; it is
 *		stored in canonical form (see address(3)), which is also
 *		the lookup key aliases_expand() uses. Blanks around the name
 *		and the ':' do not matter.
 *	-	Targets are separated by commas outside quotes, comments
 *		and angle brackets; empty ones (trailing commas) are
 *		skipped. An ordinary target is read as an address-list
 *		element ("Joe <joe@x>" and "joe@x (Joe)" store joe@x);
 *		unqualified targets stay unqualified until expansion.
 *	-	"|command", "/file" and ":include:/path" may be quoted as a
 *		whole ("|/usr/bin/prog arg"); commands and files are stored
 *		as written, without the quotes.
 *	-	":include:" files are read when the file is parsed: one or
 *		more targets per line, '#' comment lines, blank lines. A
 *		relative path is taken from the directory of the file that
 *		names it. They are read by safefile_read(3): run as root,
 *		with the privileges of the file's owner; never through a
 *		symbolic link, from anything but a regular file with one
 *		link, or from a file or directory that others than root and
 *		the owner can write. An include named in an include file is
 *		read with the privileges that file was read with, so a
 *		user's list cannot name a file its owner could not read.
 *	-	Nothing about an include file is an error, since its owner
 *		must not be able to stop the table from compiling. A file
 *		that is refused or cannot be read, nesting deeper than 10
 *		(which also ends include loops), and more than 100 files or
 *		10 seconds spent on one ":include:" of the aliases file are
 *		warnings, and that include adds no targets; a line of an
 *		include file that does not parse is a warning and is
 *		skipped. The alias keeps its other targets.
 *	-	"\user" (sendmail's "do not alias this further") is kept as
 *		written; aliases_expand() delivers to user@myorigin without
 *		looking user up.
 *	-	A name seen twice: the later entry wins, and each overriding
 *		entry gets a warning naming both lines (in file order).
 *		Entries are collected first, then handed to fn once each,
 *		in file order.
 *	-	Stats count the entries handed to fn; an entry's size is
 *		that of "name: t1, t2, ..." (after includes are spliced).
 *	-	An alias whose includes are all empty or refused has no
 *		targets; it is still handed to fn (ntargets 0), so that mail
 *		to it is not delivered to the bare name instead.
 *
 *	aliases_expand() expands each local recipient depth first. A
 *	visited set keeps, per lower-cased name, whether its expansion is
 *	in progress or done:
 *	-	A name met again while its own expansion is in progress (a
 *		self-reference such as "root: root, admin@x", or a loop
 *		a -> b -> a) is delivered to as itself, without a warning:
 *		that is the documented idiom and mail is not lost.
 *	-	A name whose expansion is done is not expanded again; its
 *		results are already in out. So shared sub-lists cost once.
 *	-	More than 20 nested aliases: the name at depth 20 is
 *		delivered to as itself, with a warning.
 *	-	"|command", "/file" and ":include:" targets are reported and
 *		skipped; so are targets that are not valid addresses (only
 *		possible with a table not written by this parser). An alias
 *		without targets is reported.
 * DIAGNOSTICS
 *	Errors: "file:line: reason", the line being the first line of the
 *	logical line; a bad target is "target N: reason", N counting the
 *	targets of that line from 1. No error or warning quotes a line that
 *	does not parse, not even in part: an include file may hold another
 *	user's secrets, and the reasons of address(3), which quote, are cut
 *	to their first words. Errors and warnings have control characters
 *	replaced, so they stay one printable line each; "|command" and
 *	"/file" targets with control characters are refused, since they are
 *	stored and reported as written.
 * SEE ALSO
 *	aliases(5), newaliases(1), address(3).
 */
#include "sendmail/aliases.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "lib/safefile.h"
#include "lib/util.h"

#define INCLUDE_DEPTH_MAX	10
#define INCLUDE_SIZE_MAX	(4 * 1024 * 1024)
#define INCLUDE_FILES_MAX	100	/* files read for one :include: */
#define INCLUDE_TIME_MS		10000	/* for one :include:, nested ones too */
#define EXPAND_DEPTH_MAX	20
#define INCLUDE_PREFIX		":include:"
#define INCLUDE_PREFIX_LEN	(sizeof(INCLUDE_PREFIX) - 1)

struct tlist {
	char **v;
	size_t n;
	size_t cap;
};

struct entry {
	char *name;
	struct tlist targets;
	size_t line;
	size_t overrides;	/* line of the entry this one replaces, or 0 */
	bool dead;		/* overridden by a later entry */
};

/* Where the text being split came from, for :include: targets in it. */
struct incl {
	int depth;		/* 0: the aliases file itself */
	uid_t as;		/* who reads includes named in it */
};

struct aparse {
	const char *path;
	aliases_warn_fn warn;
	void *ctx;
	char *err;
	size_t errlen;
	struct entry *ents;
	size_t n;
	size_t cap;
	/* What one :include: in the aliases file may spend, nesting too. */
	size_t inc_files;
	int64_t inc_deadline;		/* mono_ms() */
	bool inc_spent;		/* said so once */
};

struct reader {
	FILE *fp;		/* or, when NULL, the bytes in mem */
	const char *mem;
	size_t memlen;
	size_t memoff;
	const char *path;
	char *line;
	size_t cap;
	size_t lineno;
	bool pending;		/* line holds a line not yet consumed */
};

enum {
	SEEN_NONE,
	SEEN_ACTIVE,
	SEEN_DONE
};

struct seen_slot {
	char *key;
	int state;
};

struct seen {
	struct seen_slot *v;
	size_t n;
	size_t cap;		/* power of two */
};

struct expand {
	const char *origin;
	aliases_lookup_fn lookup;
	aliases_warn_fn warn;
	void *ctx;
	struct addr_list *out;
	struct seen seen;
};

static void warnf(aliases_warn_fn, void *, const char *, ...)
    MXL_PRINTF(3, 4);
static int split_targets(struct aparse *, const char *, size_t, const char *,
    struct tlist *, const struct incl *);


static void
warnf(aliases_warn_fn warn, void *ctx, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	size_t i;

	if (warn == NULL)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	for (i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			b.data[i] = '?';
	warn(ctx, b.data ? b.data : "");
	buf_free(&b);
}

static void
tlist_push(struct tlist *t, char *s)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n++] = s;
}

static void
tlist_free(struct tlist *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

/* getline(3) for a reader of bytes in memory. */
static ssize_t
mem_getline(struct reader *r)
{
	const char *p = r->mem + r->memoff, *nl;
	size_t n;

	if (r->memoff >= r->memlen)
		return -1;
	nl = memchr(p, '\n', r->memlen - r->memoff);
	n = nl != NULL ? (size_t)(nl - p) + 1 : r->memlen - r->memoff;
	if (n + 1 > r->cap) {
		r->cap = n + 1;
		r->line = xrealloc(r->line, r->cap);
	}
	memcpy(r->line, p, n);
	r->line[n] = '\0';
	r->memoff += n;
	return (ssize_t)n;
}

/*
 * Returns 1 with the next line (line end removed), 0 at EOF, -1. After
 * a NUL byte in a line, the next call goes on with the next line.
 */
static int
reader_next(struct reader *r, char *err, size_t errlen)
{
	ssize_t n;

	errno = 0;
	n = r->fp != NULL ? getline(&r->line, &r->cap, r->fp) : mem_getline(r);
	if (n == -1) {
		if (r->fp != NULL && ferror(r->fp)) {
			printable_printf(err, errlen, "%s: read error: %s", r->path,
			    strerror(errno));
			return -1;
		}
		return 0;
	}
	r->lineno++;
	if (memchr(r->line, '\0', (size_t)n) != NULL) {
		printable_printf(err, errlen, "%s:%zu: NUL byte in line", r->path,
		    r->lineno);
		return -1;
	}
	while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
		r->line[--n] = '\0';
	return 1;
}

static bool
line_ignored(const char *s)
{
	s += strspn(s, " \t");
	return *s == '\0' || *s == '#';
}

/*
 * Joins the next logical line into out; *first is its first line.
 * Returns 1, 0 at EOF, -1. A line is read ahead to know that the
 * logical line ended; it stays pending for the next call.
 */
static int
next_logical(struct reader *r, struct buf *out, size_t *first, char *err,
    size_t errlen)
{
	bool have = false;
	int rc;

	buf_reset(out);
	for (;;) {
		if (!r->pending) {
			if ((rc = reader_next(r, err, errlen)) <= 0)
				return rc == -1 ? -1 : have;
			r->pending = true;
		}
		if (line_ignored(r->line)) {
			r->pending = false;
			continue;
		}
		if (r->line[0] == ' ' || r->line[0] == '\t') {
			if (!have) {
				printable_printf(err, errlen, "%s:%zu: continuation "
				    "line without an alias name", r->path,
				    r->lineno);
				return -1;
			}
			buf_putc(out, ' ');
		} else if (have)
			return 1;
		else {
			*first = r->lineno;
			have = true;
		}
		buf_puts(out, r->line);
		r->pending = false;
	}
}

/* Include paths are relative to the file that names them. */
static char *
include_path(const char *from, const char *path)
{
	const char *slash = strrchr(from, '/');

	if (path[0] == '/' || slash == NULL)
		return xstrdup(path);
	return xasprintf("%.*s/%s", (int)(slash - from), from, path);
}

/*
 * Whether another file may be read for the :include: named in the
 * aliases file that is being followed: include files may nest and
 * repeat, and their owners may stall the reading, so each one from the
 * aliases file gets a number of files and a time to share.
 */
static long
include_budget(struct aparse *ap, const struct incl *in)
{
	long left;

	if (in->depth == 0) {
		ap->inc_files = 0;
		ap->inc_spent = false;
		ap->inc_deadline = mono_ms() + INCLUDE_TIME_MS;
	}
	left = (long)(ap->inc_deadline - mono_ms());
	if (ap->inc_files >= INCLUDE_FILES_MAX || left <= 0)
		return 0;
	ap->inc_files++;
	return left;
}

/*
 * Splits the lines of an include file's bytes into tl. A line that does
 * not parse is a warning and adds nothing; its error becomes the warning.
 */
static void
include_lines(struct aparse *ap, const char *path, const struct buf *data,
    struct tlist *tl, const struct incl *in)
{
	struct reader r;
	struct tlist lt;
	char *outer_err, lerr[512];
	size_t outer_errlen, i;
	int more;

	memset(&r, 0, sizeof(r));
	r.mem = data->data;
	r.memlen = data->len;
	r.path = path;
	outer_err = ap->err;
	outer_errlen = ap->errlen;
	ap->err = lerr;
	ap->errlen = sizeof(lerr);
	lerr[0] = '\0';
	while ((more = reader_next(&r, lerr, sizeof(lerr))) != 0) {
		if (more == -1) {
			warnf(ap->warn, ap->ctx, "%s, line skipped", lerr);
			continue;
		}
		if (line_ignored(r.line))
			continue;
		memset(&lt, 0, sizeof(lt));
		if (split_targets(ap, path, r.lineno, r.line, &lt, in) == -1) {
			warnf(ap->warn, ap->ctx, "%s, line skipped", lerr);
			tlist_free(&lt);
			continue;
		}
		for (i = 0; i < lt.n; i++)
			tlist_push(tl, lt.v[i]);
		free(lt.v);
	}
	ap->err = outer_err;
	ap->errlen = outer_errlen;
	free(r.line);
}

/*
 * Reads an :include: file (see safefile(3) for who reads it and what is
 * refused) and adds its targets to tl. Whatever goes wrong with the file
 * or in it is a warning, never an error: the owner of a list must not be
 * able to stop the whole table from compiling. A file that cannot be
 * read adds nothing; a line in it that does not parse is skipped. The
 * file's includes are read with the privileges it was read with. Returns
 * -1 only for an empty path, which is an error in the line that names it.
 */
static int
include_read(struct aparse *ap, const char *from, size_t line,
    const char *path, struct tlist *tl, const struct incl *in)
{
	struct buf data = BUF_INIT;
	struct incl sub;
	char *full, why[512];
	uid_t reader;
	long ms;

	path += strspn(path, " \t");
	if (*path == '\0') {
		printable_printf(ap->err, ap->errlen, "%s:%zu: empty :include: path",
		    from, line);
		return -1;
	}
	if (in->depth >= INCLUDE_DEPTH_MAX) {
		warnf(ap->warn, ap->ctx, "%s:%zu: :include: nested deeper "
		    "than %d levels, ignored", from, line, INCLUDE_DEPTH_MAX);
		return 0;
	}
	full = include_path(from, path);
	if ((ms = include_budget(ap, in)) == 0) {
		if (!ap->inc_spent)
			warnf(ap->warn, ap->ctx, "%s:%zu: include file %s "
			    "ignored: more than %d files or %d seconds for "
			    "one :include:", from, line, full,
			    INCLUDE_FILES_MAX, INCLUDE_TIME_MS / 1000);
		ap->inc_spent = true;
	} else if (safefile_read(full, in->as, INCLUDE_SIZE_MAX, (int)ms,
	    &data, &reader, why, sizeof(why)) == -1)
		warnf(ap->warn, ap->ctx, "%s:%zu: include file %s ignored: %s",
		    from, line, full, why);
	else {
		sub.depth = in->depth + 1;
		sub.as = reader == 0 ? SAFEFILE_OWNER : reader;
		include_lines(ap, full, &data, tl, &sub);
	}
	buf_free(&data);
	free(full);
	return 0;
}

/* Unquotes a target that is one quoted string as a whole, or NULL. */
static char *
unquote_whole(const char *s)
{
	struct buf b = BUF_INIT;
	const char *p;

	if (*s != '"')
		return NULL;
	for (p = s + 1; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		buf_putc(&b, *p);
	}
	if (*p != '"' || p[1] != '\0') {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static bool
is_special_target(const char *s)
{
	return s[0] == '|' || s[0] == '/' ||
	    str_ncasecmp_ascii(s, INCLUDE_PREFIX, INCLUDE_PREFIX_LEN) == 0;
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * address(3)'s reasons quote the input ("invalid domain \"x..y\" in
 * ..."). What a line that does not parse says must not reach a log or a
 * terminal: only the words before the first quote are kept.
 */
static void
reason_words(const char *reason, char *out, size_t outlen)
{
	size_t n = strcspn(reason, "\"'");

	while (n > 0 && reason[n - 1] == ' ')
		n--;
	if (n >= 3 && strncmp(reason + n - 3, " in", 3) == 0)
		n -= 3;
	if (n == 0)
		snprintf(out, outlen, "not an address");
	else if (n == 10 && strncmp(reason, "unexpected", n) == 0)
		snprintf(out, outlen, "unexpected text");
	else
		snprintf(out, outlen, "%.*s", (int)n, reason);
}

static int
address_target(struct aparse *ap, const char *path, size_t line, size_t nth,
    const char *s, struct tlist *tl)
{
	struct addr_list al = ADDR_LIST_INIT;
	char reason[256], words[128];
	size_t i;

	if (address_list_parse(s, strlen(s), &al, reason,
	    sizeof(reason)) == -1) {
		reason_words(reason, words, sizeof(words));
		printable_printf(ap->err, ap->errlen, "%s:%zu: target %zu: %s", path,
		    line, nth, words);
		/* Addresses before the bad one are gone, not their array. */
		addr_list_free(&al);
		return -1;
	}
	if (al.n == 0) {
		printable_printf(ap->err, ap->errlen, "%s:%zu: target %zu has no "
		    "address", path, line, nth);
		return -1;
	}
	for (i = 0; i < al.n; i++)
		tlist_push(tl, xstrdup(al.addrs[i]));
	addr_list_free(&al);
	return 0;
}

/* nth: the target's place in the line, for messages. */
static int
add_target(struct aparse *ap, const char *path, size_t line, size_t nth,
    const char *t, struct tlist *tl, const struct incl *in)
{
	char *unq = unquote_whole(t), *addr, reason[256], words[128];
	const char *s = t;
	int rc = 0;

	if (unq != NULL && is_special_target(unq))
		s = unq;
	if (str_ncasecmp_ascii(s, INCLUDE_PREFIX, INCLUDE_PREFIX_LEN) == 0)
		rc = include_read(ap, path, line, s + INCLUDE_PREFIX_LEN, tl,
		    in);
	else if ((s[0] == '|' || s[0] == '/') && has_control(s)) {
		/* Stored as written and printed when reported: no controls. */
		printable_printf(ap->err, ap->errlen, "%s:%zu: target %zu: control "
		    "character in a command or file name", path, line, nth);
		rc = -1;
	} else if (s[0] == '|' || s[0] == '/')
		tlist_push(tl, xstrdup(s));
	else if (s[0] == '\\') {
		if (address_envelope_parse(s + 1, false, &addr, reason,
		    sizeof(reason)) == -1) {
			reason_words(reason, words, sizeof(words));
			printable_printf(ap->err, ap->errlen, "%s:%zu: target %zu: %s",
			    path, line, nth, words);
			rc = -1;
		} else {
			tlist_push(tl, xasprintf("\\%s", addr));
			free(addr);
		}
	} else
		rc = address_target(ap, path, line, nth, s, tl);
	free(unq);
	return rc;
}

/* Splits at commas outside quotes, comments and angle brackets. */
static int
split_targets(struct aparse *ap, const char *path, size_t line,
    const char *s, struct tlist *tl, const struct incl *in)
{
	struct buf cur = BUF_INIT;
	bool quoted = false;
	int paren = 0, angle = 0, rc = 0;
	size_t nth = 0;
	const char *p;

	for (p = s; rc == 0; p++) {
		if (*p == '\0' || (*p == ',' && !quoted && paren == 0 &&
		    angle == 0)) {
			buf_putc(&cur, '\0');
			if (*str_trim(cur.data) != '\0')
				rc = add_target(ap, path, line, ++nth,
				    cur.data, tl, in);
			buf_reset(&cur);
			if (*p == '\0')
				break;
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			buf_putc(&cur, *p++);
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '(')
			paren++;
		else if (!quoted && *p == ')' && paren > 0)
			paren--;
		else if (!quoted && paren == 0 && *p == '<')
			angle++;
		else if (!quoted && paren == 0 && *p == '>' && angle > 0)
			angle--;
		buf_putc(&cur, *p);
	}
	buf_free(&cur);
	return rc;
}

static int
alias_name(struct aparse *ap, size_t line, const char *text, char **name)
{
	char reason[256], words[128];

	if (*text == '\0') {
		printable_printf(ap->err, ap->errlen, "%s:%zu: missing alias name",
		    ap->path, line);
		return -1;
	}
	if (strpbrk(text, "<>") != NULL) {
		printable_printf(ap->err, ap->errlen, "%s:%zu: bad alias name: angle "
		    "brackets", ap->path, line);
		return -1;
	}
	if (address_envelope_parse(text, false, name, reason,
	    sizeof(reason)) == -1) {
		reason_words(reason, words, sizeof(words));
		printable_printf(ap->err, ap->errlen, "%s:%zu: bad alias name: %s",
		    ap->path, line, words);
		return -1;
	}
	if (address_domain(*name) != NULL) {
		printable_printf(ap->err, ap->errlen, "%s:%zu: alias name has a domain; "
		    "aliases are local parts", ap->path, line);
		free(*name);
		return -1;
	}
	str_lower(*name);
	return 0;
}

/* Finds the ':' after the name; a quoted name may contain one. */
static char *
name_end(char *s)
{
	bool quoted = false;

	for (; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == ':')
			return s;
	}
	return NULL;
}

static int
parse_entry(struct aparse *ap, size_t line, char *text)
{
	struct tlist tl = {NULL, 0, 0};
	struct incl top = {0, SAFEFILE_OWNER};
	struct entry *e;
	char *colon, *name, *rhs;

	if ((colon = name_end(text)) == NULL) {
		printable_printf(ap->err, ap->errlen, "%s:%zu: missing ':' after the "
		    "alias name", ap->path, line);
		return -1;
	}
	*colon = '\0';
	if (alias_name(ap, line, str_trim(text), &name) == -1)
		return -1;
	rhs = str_trim(colon + 1);
	if (*rhs == '\0') {
		printable_printf(ap->err, ap->errlen, "%s:%zu: alias \"%s\" has no "
		    "targets", ap->path, line, name);
		free(name);
		return -1;
	}
	if (split_targets(ap, ap->path, line, rhs, &tl, &top) == -1) {
		tlist_free(&tl);
		free(name);
		return -1;
	}
	if (ap->n == ap->cap) {
		ap->cap = ap->cap ? ap->cap * 2 : 64;
		ap->ents = xrealloc(ap->ents, ap->cap * sizeof(*ap->ents));
	}
	e = &ap->ents[ap->n++];
	e->name = name;
	e->targets = tl;
	e->line = line;
	e->overrides = 0;
	e->dead = false;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *ea = *(const struct entry *const *)a;
	const struct entry *eb = *(const struct entry *const *)b;
	int c = strcmp(ea->name, eb->name);

	if (c != 0)
		return c;
	return ea < eb ? -1 : ea > eb;
}

/*
 * Sorting by name, then file order, puts duplicates side by side; the
 * warnings then go out in file order.
 */
static void
mark_duplicates(struct aparse *ap)
{
	struct entry **idx;
	size_t i;

	if (ap->n < 2)
		return;
	idx = xmalloc(ap->n * sizeof(*idx));
	for (i = 0; i < ap->n; i++)
		idx[i] = &ap->ents[i];
	qsort(idx, ap->n, sizeof(*idx), entry_cmp);
	for (i = 0; i + 1 < ap->n; i++) {
		if (strcmp(idx[i]->name, idx[i + 1]->name) != 0)
			continue;
		idx[i]->dead = true;
		idx[i + 1]->overrides = idx[i]->line;
	}
	free(idx);
	for (i = 0; i < ap->n; i++)
		if (ap->ents[i].overrides != 0)
			warnf(ap->warn, ap->ctx, "%s:%zu: duplicate alias "
			    "\"%s\" overrides line %zu", ap->path,
			    ap->ents[i].line, ap->ents[i].name,
			    ap->ents[i].overrides);
}

static size_t
entry_size(const struct entry *e)
{
	size_t i, size = strlen(e->name) + 1;

	for (i = 0; i < e->targets.n; i++)
		size += strlen(e->targets.v[i]) + (i == 0 ? 1 : 2);
	return size;
}

static void
emit(struct aparse *ap, aliases_entry_fn fn, void *ctx,
    struct aliases_stats *stats)
{
	size_t i, size;

	for (i = 0; i < ap->n; i++) {
		if (ap->ents[i].dead)
			continue;
		if (fn != NULL)
			fn(ctx, ap->ents[i].name, ap->ents[i].targets.v,
			    ap->ents[i].targets.n);
		if (stats == NULL)
			continue;
		size = entry_size(&ap->ents[i]);
		stats->count++;
		stats->total += size;
		if (size > stats->longest)
			stats->longest = size;
	}
}

int
aliases_parse_file(const char *path, aliases_entry_fn fn,
    aliases_warn_fn warn, void *ctx, struct aliases_stats *stats,
    char *err, size_t errlen)
{
	struct aparse ap;
	struct reader r;
	struct buf line = BUF_INIT;
	size_t i, first = 0;
	int rc = -1, more;

	memset(&ap, 0, sizeof(ap));
	memset(&r, 0, sizeof(r));
	ap.path = r.path = path;
	ap.warn = warn;
	ap.ctx = ctx;
	ap.err = err;
	ap.errlen = errlen;
	if (stats != NULL)
		memset(stats, 0, sizeof(*stats));
	if ((r.fp = fopen(path, "r")) == NULL) {
		printable_printf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((more = next_logical(&r, &line, &first, err, errlen)) == 1)
		if (parse_entry(&ap, first, line.data) == -1)
			goto done;
	if (more == -1)
		goto done;
	mark_duplicates(&ap);
	emit(&ap, fn, ctx, stats);
	rc = 0;
done:
	fclose(r.fp);
	free(r.line);
	buf_free(&line);
	for (i = 0; i < ap.n; i++) {
		free(ap.ents[i].name);
		tlist_free(&ap.ents[i].targets);
	}
	free(ap.ents);
	return rc;
}

/* Expansion. */

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct seen_slot *
seen_probe(struct seen_slot *v, size_t cap, const char *key)
{
	size_t i = (size_t)hash_str(key) & (cap - 1);

	while (v[i].key != NULL && strcmp(v[i].key, key) != 0)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static void
seen_grow(struct seen *s)
{
	struct seen_slot *old = s->v;
	size_t i, oldcap = s->cap;

	s->cap = s->cap ? s->cap * 2 : 32;
	s->v = xcalloc(s->cap, sizeof(*s->v));
	for (i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			*seen_probe(s->v, s->cap, old[i].key) = old[i];
	free(old);
}

/* The slot for key, created SEEN_NONE; valid until the next call. */
static struct seen_slot *
seen_get(struct seen *s, const char *key)
{
	struct seen_slot *slot;

	if ((s->n + 1) * 2 > s->cap)
		seen_grow(s);
	slot = seen_probe(s->v, s->cap, key);
	if (slot->key == NULL) {
		slot->key = xstrdup(key);
		slot->state = SEEN_NONE;
		s->n++;
	}
	return slot;
}

static void
seen_free(struct seen *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->v[i].key);
	free(s->v);
}

static void
deliver(struct expand *x, const char *addr)
{
	char *q = address_qualify(addr, x->origin);

	addr_list_add_unique(x->out, q);
	free(q);
}

static bool
is_local(const char *addr, const char *origin)
{
	const char *d = address_domain(addr);

	return d == NULL || (origin != NULL && str_casecmp_ascii(d, origin) == 0);
}

static char *
alias_key(const char *addr)
{
	const char *d = address_domain(addr);
	char *key = d ? xstrndup(addr, (size_t)(d - 1 - addr)) : xstrdup(addr);

	str_lower(key);
	return key;
}

static void expand_one(struct expand *, const char *, size_t);

static void
expand_target(struct expand *x, const char *name, const char *t,
    size_t depth)
{
	if (is_special_target(t))
		warnf(x->warn, x->ctx, "alias %s: %s target not supported by "
		    "mxlane (no local delivery), skipped", name, t);
	else if (t[0] == '\\' && address_valid(t + 1))
		deliver(x, t + 1);
	else if (!address_valid(t))
		warnf(x->warn, x->ctx, "alias %s: a target that is not an "
		    "address, skipped", name);
	else
		expand_one(x, t, depth);
}

static void
expand_alias(struct expand *x, const char *addr, const char *key,
    char **targets, size_t n, size_t depth)
{
	size_t i;

	if (depth >= EXPAND_DEPTH_MAX) {
		warnf(x->warn, x->ctx, "alias %s: aliases nested deeper than "
		    "%d, delivering to the address itself", key,
		    EXPAND_DEPTH_MAX);
		deliver(x, addr);
		return;
	}
	if (n == 0)
		warnf(x->warn, x->ctx, "alias %s: no targets", key);
	seen_get(&x->seen, key)->state = SEEN_ACTIVE;
	for (i = 0; i < n; i++)
		expand_target(x, key, targets[i], depth + 1);
	seen_get(&x->seen, key)->state = SEEN_DONE;
}

static void
expand_one(struct expand *x, const char *addr, size_t depth)
{
	char **targets = NULL, *key;
	size_t i, n = 0;
	int state;

	if (!is_local(addr, x->origin)) {
		addr_list_add_unique(x->out, addr);
		return;
	}
	key = alias_key(addr);
	state = seen_get(&x->seen, key)->state;
	if (state == SEEN_ACTIVE)
		deliver(x, addr);
	else if (state == SEEN_NONE && x->lookup != NULL &&
	    x->lookup(x->ctx, key, &targets, &n) == 0) {
		expand_alias(x, addr, key, targets, n, depth);
		for (i = 0; i < n; i++)
			free(targets[i]);
		free(targets);
	} else if (state == SEEN_NONE)
		deliver(x, addr);
	free(key);
}

void
aliases_expand(const struct addr_list *in, const char *myorigin,
    aliases_lookup_fn lookup, aliases_warn_fn warn, void *ctx,
    struct addr_list *out)
{
	struct expand x;
	size_t i;

	memset(&x, 0, sizeof(x));
	x.origin = myorigin;
	x.lookup = lookup;
	x.warn = warn;
	x.ctx = ctx;
	x.out = out;
	for (i = 0; i < in->n; i++)
		expand_one(&x, in->addrs[i], 0);
	seen_free(&x.seen);
}
