/*
 * NAME
 *	suppress - "queuerun suppress ...": the suppression list, by hand
 * DESCRIPTION
 *	The admin's side of the list the runner keeps (spool/suppress.c):
 *	list (a table, or JSON), add, remove, import and export. Export
 *	writes what import reads, one entry a line:
 *
 *	    ADDRESS [EXPIRY [REASON...]]
 *
 *	ADDRESS is local@domain or @domain (every address of the domain);
 *	EXPIRY is a time in UTC (2026-12-31T00:00:00Z or 2026-12-31), a
 *	duration from now (90d), or "never"; without it, suppress_time.
 *	Blank lines and lines starting with '#' are skipped. An import is
 *	read and checked whole before anything is written, so a bad line
 *	(reported as FILE:LINE) adds nothing; then it is written in
 *	transactions of IMPORT_BATCH entries.
 * DIAGNOSTICS
 *	sysexits(3): EX_USAGE for bad arguments, EX_DATAERR for a bad
 *	address or import line, EX_NOINPUT for an unreadable file,
 *	EX_TEMPFAIL when the spool cannot be used; remove of an address
 *	not on the list exits EX_NOUSER (67).
 */
#include "queuerun/suppress.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "lib/escape.h"
#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool.h"

#define IMPORT_BATCH	1000

static void
fmt_time(int64_t t, char *out, size_t len)
{
	if (t == 0) {
		snprintf(out, len, "never");
		return;
	}
	time_t tt = (time_t)t;
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
}

/* An EXPIRY as import and --for read it; -1 if it is not one. */
static int64_t
parse_expiry(const char *text, int64_t now, int default_seconds)
{
	struct tm tm;
	const char *end;

	if (text == NULL || *text == '\0')
		return now + default_seconds;
	if (strcmp(text, "never") == 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL &&
	    *end == '\0')
		return (int64_t)timegm(&tm);
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(text, "%Y-%m-%d", &tm)) != NULL && *end == '\0')
		return (int64_t)timegm(&tm);
	long long s = config_parse_time(text);
	return s > 0 ? now + s : -1;
}

static struct spool *
open_spool(const struct mxl_config *cfg)
{
	struct spool *sp;

	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	return sp;
}


struct walk {
	FILE *out;
	const char *pattern;
	bool json;
	bool export;
	size_t n;
	int64_t now;
};

static int
print_entry(void *ctx, const struct spool_suppression *e)
{
	struct walk *w = ctx;
	char added[32], expires[32];

	if (w->pattern && fnmatch(w->pattern, e->address, FNM_CASEFOLD) != 0)
		return 0;
	/* Expired but not yet removed by a runner: no longer in force. */
	if (e->expires != 0 && e->expires <= w->now)
		return 0;
	fmt_time(e->added, added, sizeof(added));
	fmt_time(e->expires, expires, sizeof(expires));
	if (w->export) {
		/* One line each: what import reads back. */
		fprintf(w->out, "%s %s", e->address, expires);
		if (e->reason && *e->reason) {
			fputc(' ', w->out);
			for (const char *p = e->reason; *p; p++)
				fputc(*p == '\n' || *p == '\r' ? ' ' : *p,
				    w->out);
		}
		fputc('\n', w->out);
	} else if (w->json) {
		fputs(w->n ? ",\n  {" : "\n  {", w->out);
		fputs("\"address\": ", w->out);
		escape_json(w->out, e->address);
		fputs(", \"reason\": ", w->out);
		escape_json(w->out, e->reason);
		fputs(", \"class\": ", w->out);
		escape_json(w->out, e->class);
		fprintf(w->out, ", \"added\": \"%s\", \"expires\": ", added);
		if (e->expires)
			fprintf(w->out, "\"%s\"", expires);
		else
			fputs("null", w->out);
		fprintf(w->out, ", \"how\": \"%s\"}",
		    spool_suppress_how_name(e->how));
	} else {
		fprintf(w->out, "%s\n  expires: %s\n  added: %s (%s)\n",
		    e->address, expires, added,
		    spool_suppress_how_name(e->how));
		if (e->class)
			fprintf(w->out, "  class: %s\n", e->class);
		if (e->reason && *e->reason)
			fprintf(w->out, "  reason: %s\n", e->reason);
	}
	w->n++;
	return 0;
}

static int
list(const struct mxl_config *cfg, int argc, char **argv, bool export,
    FILE *out)
{
	struct walk w = {out, NULL, false, export, 0, time(NULL)};
	int i = 0;

	for (; i < argc && argv[i][0] == '-' && !export; i++) {
		if (strcmp(argv[i], "--json") == 0)
			w.json = true;
		else
			return EX_USAGE;
	}
	if (i < argc && !export)
		w.pattern = argv[i++];
	if (i != argc)
		return EX_USAGE;
	struct spool *sp = open_spool(cfg);
	if (w.json)
		fputs("[", out);
	int rc = spool_suppress_scan(sp, print_entry, &w);
	spool_close(sp);
	if (w.json)
		fputs(w.n ? "\n]\n" : "]\n", out);
	if (rc != SPOOL_OK)
		return EX_TEMPFAIL;
	return fflush(out) == 0 ? 0 : EX_IOERR;
}

static int
normalize_arg(const char *arg, char *norm, size_t len)
{
	if (spool_suppress_normalize(arg, norm, len) != 0) {
		log_stderr("%s: not an address (local@domain) or a domain "
		    "(@domain)", arg);
		return EX_DATAERR;
	}
	return 0;
}

static int
add(const struct mxl_config *cfg, int argc, char **argv)
{
	char norm[SUPPRESS_ADDRESS_MAX + 1];
	const char *for_ = NULL, *reason = NULL;
	int64_t now = time(NULL);
	int rc;

	if (argc < 1)
		return EX_USAGE;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return EX_USAGE;
		if (strcmp(argv[i], "--for") == 0)
			for_ = argv[i + 1];
		else if (strcmp(argv[i], "--reason") == 0)
			reason = argv[i + 1];
		else
			return EX_USAGE;
	}
	if ((rc = normalize_arg(argv[0], norm, sizeof(norm))) != 0)
		return rc;
	int64_t expires = parse_expiry(for_, now, cfg->suppress_time);
	if (expires < 0 || (expires != 0 && expires <= now)) {
		log_stderr("--for %s: expected a time like 90d or 12h, a date "
		    "(2026-12-31) in the future, or never", for_);
		return EX_USAGE;
	}
	struct spool_suppression e = {norm, (char *)(reason ? reason : ""),
	    NULL, now, expires, SUPPRESS_ADMIN};
	struct spool *sp = open_spool(cfg);
	rc = spool_suppress_add(sp, &e) == SPOOL_OK ? 0 : EX_TEMPFAIL;
	spool_close(sp);
	if (rc == 0) {
		char until[32];
		fmt_time(expires, until, sizeof(until));
		printf("%s suppressed %s%s\n", norm, expires ? "until " : "",
		    expires ? until : "indefinitely");
		log_info("<%s> suppressed %s%s by the administrator%s%s",
		    norm, expires ? "until " : "", expires ? until :
		    "indefinitely", reason ? ": " : "", reason ? reason : "");
	}
	return rc;
}

static int
remove_(const struct mxl_config *cfg, int argc, char **argv)
{
	char norm[SUPPRESS_ADDRESS_MAX + 1];
	int rc;

	if (argc != 1)
		return EX_USAGE;
	if ((rc = normalize_arg(argv[0], norm, sizeof(norm))) != 0)
		return rc;
	struct spool *sp = open_spool(cfg);
	rc = spool_suppress_remove(sp, norm);
	spool_close(sp);
	if (rc == SPOOL_NOTFOUND) {
		log_stderr("%s is not on the suppression list", norm);
		return EX_NOUSER;
	}
	if (rc != SPOOL_OK)
		return EX_TEMPFAIL;
	printf("%s removed from the suppression list\n", norm);
	log_info("<%s> removed from the suppression list by the "
	    "administrator", norm);
	return 0;
}

static void
entries_free(struct spool_suppression *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		spool_suppression_clear(&e[i]);
	free(e);
}

static int
import(const struct mxl_config *cfg, int argc, char **argv)
{
	if (argc != 1)
		return EX_USAGE;
	const char *name = argv[0];
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
	if (f == NULL) {
		log_stderr("%s: %s", name, strerror(errno));
		return EX_NOINPUT;
	}
	struct spool_suppression *e = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char *line = NULL;
	size_t linecap = 0;
	int64_t now = time(NULL);
	int rc = 0;

	while (getline(&line, &linecap, f) >= 0) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		char *addr = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = '\0';
		p += strspn(p, " \t");
		char *when = NULL;
		if (*p) {
			when = p;
			p += strcspn(p, " \t");
			if (*p)
				*p++ = '\0';
			p += strspn(p, " \t");
		}
		char norm[SUPPRESS_ADDRESS_MAX + 1];
		if (spool_suppress_normalize(addr, norm, sizeof(norm)) != 0) {
			log_stderr("%s:%zu: \"%s\" is not an address "
			    "(local@domain) or a domain (@domain)", name,
			    lineno, addr);
			rc = EX_DATAERR;
			break;
		}
		int64_t expires = parse_expiry(when, now, cfg->suppress_time);
		if (expires < 0) {
			log_stderr("%s:%zu: \"%s\": expected an expiry like "
			    "2026-12-31T00:00:00Z, 2026-12-31, 90d or never",
			    name, lineno, when);
			rc = EX_DATAERR;
			break;
		}
		if (expires != 0 && expires <= now)
			continue;	/* over already: nothing to suppress */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			e = xrealloc(e, cap * sizeof(*e));
		}
		e[n++] = (struct spool_suppression){xstrdup(norm),
		    xstrdup(p), NULL, now, expires, SUPPRESS_IMPORT};
	}
	if (rc == 0 && ferror(f)) {
		log_stderr("%s: %s", name, strerror(errno));
		rc = EX_IOERR;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (rc != 0) {
		entries_free(e, n);
		return rc;
	}
	struct spool *sp = open_spool(cfg);
	size_t done = 0;
	while (done < n) {
		size_t k = n - done < IMPORT_BATCH ? n - done : IMPORT_BATCH;
		if (spool_suppress_add_many(sp, e + done, k) != SPOOL_OK) {
			rc = EX_TEMPFAIL;
			break;
		}
		done += k;
	}
	spool_close(sp);
	entries_free(e, n);
	printf("imported: %zu entr%s\n", done, done == 1 ? "y" : "ies");
	if (done > 0)
		log_info("suppression list: %zu entr%s imported from %s", done,
		    done == 1 ? "y" : "ies", name);
	return rc;
}

int
suppress_command(const struct mxl_config *cfg, int argc, char **argv)
{
	if (argc < 1)
		return EX_USAGE;
	const char *verb = argv[0];
	argc--;
	argv++;
	if (strcmp(verb, "list") == 0)
		return list(cfg, argc, argv, false, stdout);
	if (strcmp(verb, "export") == 0)
		return argc == 0 ? list(cfg, argc, argv, true, stdout) :
		    EX_USAGE;
	if (strcmp(verb, "add") == 0)
		return add(cfg, argc, argv);
	if (strcmp(verb, "remove") == 0)
		return remove_(cfg, argc, argv);
	if (strcmp(verb, "import") == 0)
		return import(cfg, argc, argv);
	log_stderr("suppress %s: unknown; expected list, add, remove, import "
	    "or export", verb);
	return EX_USAGE;
}
