/*
 * NAME
 *	config - mxlane.conf, read with libconfuse
 * DESCRIPTION
 *	See config.h. libconfuse reports unknown keys and syntax errors
 *	through an error callback; we keep the first message, prefixed with
 *	"file:line:", and refuse the whole file: a half-understood mail
 *	configuration is worse than none.
 *
 *	include("file") splices another file in (libconfuse's include), so
 *	a site can keep provider lists apart from host settings. We resolve
 *	the name ourselves (config_include) rather than give libconfuse a
 *	search path: its 3.3 search path glues even an absolute name onto
 *	the directory, so include("/etc/mxlane/providers.conf") was never
 *	found.
 */
#include "lib/config.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lib/gate.h"
#include "lib/replyrules.h"
#include "lib/util.h"

struct config_error {
	char *msg;		/* first error reported, or NULL */
};

static struct config_error *current_error;

/* The main file's directory, which relative include() names are in. */
static const char *include_dir;

/*
 * libConfuse 3.3 counts lines wrongly after comments: a "#" or "//"
 * comment line advances its counter by three, a block comment by one
 * line more than it spans. We replay that count over the file to turn
 * its line number back into the real one, so every message points at
 * the line that is wrong.
 */
static int
real_line(const char *file, int reported)
{
	FILE *f = file ? fopen(file, "r") : NULL;
	int c, prev = 0, real = 1, counted = 1;
	enum { TEXT, STRING, LINE_COMMENT, BLOCK_COMMENT } st = TEXT;

	if (f == NULL)
		return reported;
	while (counted < reported && (c = getc(f)) != EOF) {
		switch (st) {
		case TEXT:
			if (c == '"')
				st = STRING;
			else if (c == '#' || (c == '/' && prev == '/'))
				st = LINE_COMMENT;
			else if (c == '*' && prev == '/') {
				st = BLOCK_COMMENT;
				c = 0;	/* a slash right after does not close */
			}
			break;
		case STRING:
			if (c == '"' && prev != '\\')
				st = TEXT;
			break;
		case LINE_COMMENT:
			if (c == '\n') {
				st = TEXT;
				counted += 2;	/* the extra, then +1 below */
			}
			break;
		case BLOCK_COMMENT:
			if (c == '/' && prev == '*') {
				st = TEXT;
				counted += 1;
			}
			break;
		}
		if (c == '\n') {
			real++;
			counted++;
		}
		prev = c;
	}
	fclose(f);
	return counted > reported ? real - 1 : real;
}

static void
config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (current_error == NULL || current_error->msg != NULL)
		return;
	if (cfg && cfg->filename)
		buf_printf(&b, "%s:%d: ", cfg->filename,
		    real_line(cfg->filename, cfg->line));
	buf_vprintf(&b, fmt, ap);
	current_error->msg = buf_steal(&b);
}

static char *
default_hostname(void)
{
	char host[256];
	struct addrinfo hints, *res = NULL;

	if (gethostname(host, sizeof(host) - 1) != 0)
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.'))
		return xstrdup(host);
	/* Ask the resolver (usually /etc/hosts) for the canonical FQDN. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res &&
	    res->ai_canonname && strchr(res->ai_canonname, '.')) {
		char *fqdn = xstrdup(res->ai_canonname);
		freeaddrinfo(res);
		return fqdn;
	}
	if (res)
		freeaddrinfo(res);
	return xstrdup(host);
}

/*
 * include("file"): an absolute name as it is, a relative one beside the
 * main configuration file (also from an included file, so that moving
 * the main file moves the set). libconfuse then opens, reports and
 * counts nesting as usual.
 */
static int
config_include(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	if (argc != 1 || argv[0][0] == '/' || include_dir == NULL)
		return cfg_include(cfg, opt, argc, argv);

	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", include_dir, argv[0]);
	char *full = buf_steal(&b);
	const char *args[1] = {full};
	int rc = cfg_include(cfg, opt, 1, args);
	free(full);
	return rc;
}

/* The throttle keys a provider and a lane may carry. */
#define LIMIT_OPTS \
	CFG_INT("concurrency", 0, CFGF_NONE), \
	CFG_STR("rate", "", CFGF_NONE), \
	CFG_INT("recipients_per_message", 0, CFGF_NONE), \
	CFG_INT("messages_per_connection", 0, CFGF_NONE), \
	CFG_STR("delay", "", CFGF_NONE)

static cfg_opt_t source_opts[] = {
	CFG_STR("helo", "", CFGF_NONE),
	CFG_INT("weight", 1, CFGF_NONE),
	CFG_BOOL("enabled", cfg_true, CFGF_NONE),
	CFG_STR("warmup", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t pool_opts[] = {
	CFG_SEC("source", source_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_END()
};

static cfg_opt_t provider_opts[] = {
	CFG_STR_LIST("domains", "{}", CFGF_NONE),
	CFG_STR_LIST("mx", "{}", CFGF_NONE),
	CFG_STR("pool", "", CFGF_NONE),
	CFG_STR("relay", "", CFGF_NONE),
	LIMIT_OPTS,
	CFG_END()
};

static cfg_opt_t dkim_key_opts[] = {
	CFG_STR("private_key", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t dkim_opts[] = {
	CFG_SEC("key", dkim_key_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_END()
};

/*
 * What a receiver's DMARC and list handling look at (RFC 6376 5.4.1,
 * and the bulk-sender rules of Gmail and Yahoo: List-Unsubscribe and
 * List-Unsubscribe-Post must be signed). From is always signed and
 * over-signed, listed or not (load_dkim()).
 */
#define DKIM_DEFAULT_HEADERS "{\"From\", \"To\", \"Cc\", \"Subject\", " \
	"\"Date\", \"Message-ID\", \"Reply-To\", \"MIME-Version\", " \
	"\"Content-Type\", \"Content-Transfer-Encoding\", \"In-Reply-To\", " \
	"\"References\", \"List-Id\", \"List-Unsubscribe\", " \
	"\"List-Unsubscribe-Post\", \"Feedback-ID\"}"

static cfg_opt_t reply_opts[] = {
	CFG_STR("provider", "", CFGF_NONE),
	CFG_STR("code", "", CFGF_NONE),
	CFG_STR("status", "", CFGF_NONE),
	CFG_STR("text", "", CFGF_NONE),
	CFG_STR("class", "", CFGF_NONE),
	CFG_STR("action", "", CFGF_NONE),
	CFG_STR("after", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t lane_opts[] = {
	CFG_STR("pool", "", CFGF_NONE),
	CFG_BOOL("suppress", cfg_true, CFGF_NONE),
	CFG_STR_LIST("match_sender", "{}", CFGF_NONE),
	CFG_STR_LIST("match_user", "{}", CFGF_NONE),
	CFG_STR_LIST("match_header", "{}", CFGF_NONE),
	CFG_STR_LIST("allow_users", "{}", CFGF_NONE),
	LIMIT_OPTS,
	CFG_STR("spam_check", "", CFGF_NONE),
	CFG_FLOAT("spam_threshold", 5.0, CFGF_NONE),
	CFG_STR("spam_check_timeout", "10s", CFGF_NONE),
	CFG_STR("spam_check_failure", "defer", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t header_rule_opts[] = {
	CFG_STR("match", "", CFGF_NONE),
	CFG_STR("action", "", CFGF_NONE),
	CFG_STR("only_lane", "", CFGF_NONE),
	CFG_STR("only_user", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t submitter_limit_opts[] = {
	CFG_STR("messages", "", CFGF_NONE),
	CFG_STR("recipients", "", CFGF_NONE),
	CFG_STR("action", "hold", CFGF_NONE),
	CFG_END()
};

int
config_address_preference(const char *text)
{
	static const char *const names[] = {"any", "ipv4", "ipv6"};

	for (int i = 0; text != NULL && i < 3; i++)
		if (strcasecmp(text, names[i]) == 0)
			return i;
	return -1;
}

bool
config_parse_warmup(const char *text, int64_t *start, long **caps,
    size_t *ncaps)
{
	struct tm tm;
	char *end;

	*caps = NULL;
	*ncaps = 0;
	memset(&tm, 0, sizeof(tm));
	if (text == NULL || (end = strptime(text, "%Y-%m-%d", &tm)) == NULL ||
	    *end != ':' || tm.tm_year < 70)
		return false;
	*start = (int64_t)timegm(&tm);
	char *list = xstrdup(end + 1), *next = list;
	bool ok = true;
	while (next && ok) {
		/* Every step between commas, an empty one too, must parse. */
		char *step = next, *comma = strchr(step, ',');
		long count;
		int period;
		if (comma)
			*comma = '\0';
		next = comma ? comma + 1 : NULL;
		str_trim(step);
		ok = config_parse_rate(step, &count, &period) && period ==
		    86400 && *ncaps < 1000;
		if (ok) {
			*caps = xrealloc(*caps, (*ncaps + 1) * sizeof(**caps));
			(*caps)[(*ncaps)++] = count;
		}
	}
	free(list);
	if (!ok || *ncaps == 0) {
		free(*caps);
		*caps = NULL;
		*ncaps = 0;
		return false;
	}
	return true;
}

/* "500ms", "1s", "2m": the minimum gap between deliveries, in ms. */
static long long
parse_delay_ms(const char *text)
{
	size_t len = text ? strlen(text) : 0;

	if (len > 2 && strcmp(text + len - 2, "ms") == 0) {
		char *end;
		long long v = strtoll(text, &end, 10);
		return (end == text + len - 2 && v >= 0) ? v : -1;
	}
	long long s = config_parse_time(text);
	return s < 0 ? -1 : s * 1000;
}

static int
validate_rate(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *value = cfg_opt_getnstr(opt, 0);
	long count;
	int period;

	if (value && *value && !config_parse_rate(value, &count, &period)) {
		cfg_error(cfg, "rate = \"%s\": expected N/s, N/m, N/h or N/d",
		    value);
		return -1;
	}
	return 0;
}

static int
validate_delay(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *value = cfg_opt_getnstr(opt, 0);

	if (value && *value && parse_delay_ms(value) < 0) {
		cfg_error(cfg, "delay = \"%s\": expected a time like 500ms or "
		    "1s", value);
		return -1;
	}
	return 0;
}

static int
validate_nonnegative(cfg_t *cfg, cfg_opt_t *opt)
{
	if (cfg_opt_getnint(opt, 0) < 0) {
		cfg_error(cfg, "%s must not be negative", opt->name);
		return -1;
	}
	return 0;
}

/* warmup = "2026-12-01: 200/d, 500/d, ..." (checked where it is written). */
static int
validate_warmup(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *value = cfg_opt_getnstr(opt, 0);
	int64_t start;
	long *caps;
	size_t ncaps;

	if (value == NULL || *value == '\0')
		return 0;
	if (!config_parse_warmup(value, &start, &caps, &ncaps)) {
		cfg_error(cfg, "source \"%s\": warmup = \"%s\": expected "
		    "\"YYYY-MM-DD: N/d, N/d, ...\"", cfg_title(cfg), value);
		return -1;
	}
	free(caps);
	return 0;
}

/* A source address must be one this host can send from. */
static int
validate_source(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	const char *addr = cfg_title(sec);
	struct sockaddr_storage ss;
	socklen_t len;

	if (cfg_getint(sec, "weight") < 1) {
		cfg_error(cfg, "source \"%s\": weight must be 1 or more", addr);
		return -1;
	}

	if (config_source_addr(addr, &ss, &len) != 0) {
		cfg_error(cfg, "source \"%s\": not an IPv4 or IPv6 address",
		    addr);
		return -1;
	}
	/* A switched-off address may already be gone from the host. */
	if (!cfg_getbool(sec, "enabled"))
		return 0;
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) == 0;
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (!ok) {
		cfg_error(cfg, "source \"%s\": not an address of this host "
		    "(%s)", addr, strerror(err));
		return -1;
	}
	return 0;
}

/* Section lines, kept for the checks that need every section first. */
struct section_line {
	char kind[20];
	char name[320];
	char file[256];
	int line;
};
static struct section_line *section_lines;
static size_t nsection_lines;

/* The last line at or before 'end' that opens section "kind name". */
static int
section_start(const char *file, int end, const char *kind, const char *name)
{
	FILE *f = file ? fopen(file, "r") : NULL;
	char line[1024];
	int n = 0, found = end;

	if (f == NULL)
		return end;
	char opened[400];
	snprintf(opened, sizeof(opened), "%s \"%s\"", kind, name);
	while (n < end && fgets(line, sizeof(line), f)) {
		n++;
		char *p = line + strspn(line, " \t");
		size_t klen = strlen(kind);
		/* One written inside its parent's line: dkim "d" { key "s" { */
		if (strncmp(p, kind, klen) != 0 && strstr(p, opened) != NULL) {
			found = n;
			continue;
		}
		if (strncmp(p, kind, klen) != 0 || (p[klen] != ' ' &&
		    p[klen] != '\t'))
			continue;
		p += klen + strspn(p + klen, " \t");
		if (*p == '"')
			p++;
		if (strncmp(p, name, strlen(name)) == 0)
			found = n;
	}
	fclose(f);
	return found;
}

static int
remember_line(cfg_t *cfg, cfg_opt_t *opt, const char *kind)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);

	section_lines = xrealloc(section_lines, (nsection_lines + 1) *
	    sizeof(*section_lines));
	struct section_line *l = &section_lines[nsection_lines++];
	snprintf(l->kind, sizeof(l->kind), "%s", kind);
	snprintf(l->name, sizeof(l->name), "%s", cfg_title(sec));
	snprintf(l->file, sizeof(l->file), "%s", cfg->filename ?
	    cfg->filename : "");
	/* Validation runs at the closing brace: find where it opened. */
	l->line = section_start(cfg->filename, real_line(cfg->filename,
	    cfg->line), kind, cfg_title(sec));
	return 0;
}

static int
remember_provider(cfg_t *cfg, cfg_opt_t *opt)
{
	return remember_line(cfg, opt, "provider");
}

static int
remember_lane(cfg_t *cfg, cfg_opt_t *opt)
{
	return remember_line(cfg, opt, "lane");
}

static int
remember_header_rule(cfg_t *cfg, cfg_opt_t *opt)
{
	return remember_line(cfg, opt, "header_rule");
}

static int
remember_submitter_limit(cfg_t *cfg, cfg_opt_t *opt)
{
	return remember_line(cfg, opt, "submitter_limit");
}

static int
remember_dkim(cfg_t *cfg, cfg_opt_t *opt)
{
	return remember_line(cfg, opt, "dkim");
}

/*
 * A key section is named by its selector, which other domains may use
 * too: it is remembered as "domain/selector", and its line is the last
 * 'key "selector"' line before the closing brace.
 */
static int
remember_dkim_key(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);

	section_lines = xrealloc(section_lines, (nsection_lines + 1) *
	    sizeof(*section_lines));
	struct section_line *l = &section_lines[nsection_lines++];
	snprintf(l->kind, sizeof(l->kind), "key");
	snprintf(l->name, sizeof(l->name), "%s/%s", cfg_title(cfg) ?
	    cfg_title(cfg) : "", cfg_title(sec));
	snprintf(l->file, sizeof(l->file), "%s", cfg->filename ?
	    cfg->filename : "");
	l->line = section_start(cfg->filename, real_line(cfg->filename,
	    cfg->line), "key", cfg_title(sec));
	return 0;
}

/* The file a section was declared in (an include), or NULL. */
static const char *
section_file(const char *kind, const char *name)
{
	for (size_t i = 0; i < nsection_lines; i++)
		if (strcmp(section_lines[i].kind, kind) == 0 &&
		    strcmp(section_lines[i].name, name) == 0 &&
		    section_lines[i].file[0])
			return section_lines[i].file;
	return NULL;
}

static int
section_line(const char *kind, const char *name)
{
	for (size_t i = 0; i < nsection_lines; i++)
		if (strcmp(section_lines[i].kind, kind) == 0 &&
		    strcmp(section_lines[i].name, name) == 0)
			return section_lines[i].line;
	return 0;
}

/*
 * Reply rules. libconfuse merges a section whose title was seen before
 * into the first one (resetting it), and calls the section's validate
 * function with no way to tell which section just closed, so each call
 * compares every section with what was seen so far: the one that is
 * new or changed is the one just read. Each definition is kept, with
 * its file and line, and the order they are tried in is decided once
 * the whole file is read (assemble_replies).
 */
static int
route_fail(char *err, size_t errlen, const char *path, int line,
    const char *fmt, ...) MXL_PRINTF(5, 6);

#define REPLY_KEYS 7
static const char *const reply_keys[REPLY_KEYS] = {"provider", "code",
    "status", "text", "class", "action", "after"};

struct reply_seen {
	char *name;
	char *vals[REPLY_KEYS];
	char *file;
	int line;
	bool shipped;
};
static struct reply_seen *replies_seen;
static size_t nreplies_seen;

static void
replies_seen_free(void)
{
	for (size_t i = 0; i < nreplies_seen; i++) {
		free(replies_seen[i].name);
		free(replies_seen[i].file);
		for (int k = 0; k < REPLY_KEYS; k++)
			free(replies_seen[i].vals[k]);
	}
	free(replies_seen);
	replies_seen = NULL;
	nreplies_seen = 0;
}

static const char *
opt_str(cfg_t *sec, const char *key)
{
	const char *v = cfg_getstr(sec, key);

	return v ? v : "";
}

static struct reply_seen *
reply_last_seen(const char *name)
{
	for (size_t i = nreplies_seen; i-- > 0;)
		if (strcmp(replies_seen[i].name, name) == 0)
			return &replies_seen[i];
	return NULL;
}

static void
reply_text_of(const struct reply_seen *r, struct reply_rule_text *t)
{
	memset(t, 0, sizeof(*t));
	t->name = r->name;
	t->file = r->file;
	t->line = r->line;
	t->shipped = r->shipped;
	t->provider = r->vals[0];
	t->code = r->vals[1];
	t->status = r->vals[2];
	t->text = r->vals[3];
	t->class = r->vals[4];
	t->action = r->vals[5];
	t->after = r->vals[6];
}

/* Rules read from a file named replies.conf are the shipped ones. */
static bool
is_shipped_file(const char *file)
{
	const char *base = file ? strrchr(file, '/') : NULL;

	base = base ? base + 1 : file;
	return base && strcmp(base, "replies.conf") == 0;
}

static int
remember_reply(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		cfg_t *sec = cfg_opt_getnsec(opt, i);
		const char *name = cfg_title(sec);
		struct reply_seen *last = reply_last_seen(name);
		bool same = last != NULL;
		for (int k = 0; same && k < REPLY_KEYS; k++)
			same = strcmp(last->vals[k], opt_str(sec,
			    reply_keys[k])) == 0;
		if (same)
			continue;
		replies_seen = xrealloc(replies_seen, (nreplies_seen + 1) *
		    sizeof(*replies_seen));
		struct reply_seen *r = &replies_seen[nreplies_seen++];
		r->name = xstrdup(name);
		for (int k = 0; k < REPLY_KEYS; k++)
			r->vals[k] = xstrdup(opt_str(sec, reply_keys[k]));
		r->file = xstrdup(cfg->filename ? cfg->filename : "");
		r->line = 0;	/* reply_lines() finds it */
		r->shipped = is_shipped_file(cfg->filename);
	}
	return 0;
}

/* The name of a rule opened on this line ("reply \"x\" {"), or false. */
static bool
reply_opened(const char *line, char *name, size_t len)
{
	const char *p = line + strspn(line, " \t");
	size_t n;

	if (strncmp(p, "reply", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return false;
	p += 5 + strspn(p + 5, " \t");
	if (*p == '"')
		p++;
	n = strcspn(p, "\" \t{");
	if (n == 0 || n >= len)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	return true;
}

/*
 * The line each definition opens on. Each file is read once (a rule at
 * a time would read the shipped file sixty times, for every program
 * start, sendmail's too): its definitions are in file order, so the
 * k-th definition from a file is the next opening line of its name.
 */
static void
reply_lines(void)
{
	for (size_t i = 0; i < nreplies_seen; i++) {
		if (replies_seen[i].line != 0)
			continue;
		const char *file = replies_seen[i].file;
		FILE *f = fopen(file, "r");
		char line[1024], name[128];
		int n = 0;
		size_t next = i;
		while (f && next < nreplies_seen && fgets(line, sizeof(line),
		    f)) {
			n++;
			if (!reply_opened(line, name, sizeof(name)))
				continue;
			/* The next definition of this file, if it is this one. */
			while (next < nreplies_seen &&
			    (strcmp(replies_seen[next].file, file) != 0 ||
			    replies_seen[next].line != 0))
				next++;
			if (next < nreplies_seen &&
			    strcmp(replies_seen[next].name, name) == 0)
				replies_seen[next++].line = n;
		}
		if (f)
			fclose(f);
		/* Not found (a file gone meanwhile): 1 rather than 0. */
		for (size_t k = i; k < nreplies_seen; k++)
			if (strcmp(replies_seen[k].file, file) == 0 &&
			    replies_seen[k].line == 0)
				replies_seen[k].line = 1;
	}
}

/*
 * The rules in the order they are tried: the administrator's (every
 * file but replies.conf) first, then the shipped ones, each in file
 * order; of several definitions of one name, the administrator's last
 * one wins, else the last shipped one. The built-in "unknown" ends it.
 * Every definition is checked (the first bad one is reported with its
 * file and line), and each regular expression compiled once.
 */
static int
assemble_replies(struct mxl_config *cfg, char *err, size_t errlen)
{
	struct reply_rule *built = xcalloc(nreplies_seen + 1, sizeof(*built));
	bool *used = xcalloc(nreplies_seen + 1, sizeof(*used));
	size_t n = 0;
	int rc = 0;

	reply_lines();
	for (size_t i = 0; i < nreplies_seen && rc == 0; i++) {
		struct reply_rule_text t;
		char why[512];
		reply_text_of(&replies_seen[i], &t);
		if (reply_rule_build(&built[i], &t, why, sizeof(why)) != 0)
			rc = route_fail(err, errlen, replies_seen[i].file,
			    replies_seen[i].line, "%s", why);
		else if (built[i].provider && !config_provider(cfg,
		    built[i].provider))
			rc = route_fail(err, errlen, built[i].file,
			    built[i].line, "reply %s: provider \"%s\" is not "
			    "declared", built[i].name, built[i].provider);
	}
	cfg->reply_rules = xcalloc(nreplies_seen + 1,
	    sizeof(*cfg->reply_rules));
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		bool shipped = pass == 1;
		for (size_t i = 0; i < nreplies_seen; i++) {
			struct reply_seen *r = &replies_seen[i];
			if (r->shipped != shipped)
				continue;
			/* The one chosen for this name, at its first place. */
			size_t chosen = nreplies_seen;
			bool first = true;
			for (size_t k = 0; k < nreplies_seen; k++) {
				struct reply_seen *o = &replies_seen[k];
				if (strcmp(o->name, r->name) != 0)
					continue;
				if (k < i && o->shipped == shipped)
					first = false;
				if (chosen == nreplies_seen || !o->shipped ||
				    replies_seen[chosen].shipped)
					chosen = k;
			}
			if (!first || replies_seen[chosen].shipped != shipped)
				continue;
			cfg->reply_rules[n++] = built[chosen];
			used[chosen] = true;
		}
	}
	for (size_t i = 0; i < nreplies_seen; i++)
		if (!used[i])
			reply_rule_free(&built[i]);
	free(built);
	free(used);
	struct reply_rule *u = &cfg->reply_rules[n];
	memset(u, 0, sizeof(*u));
	u->name = xstrdup("unknown");
	u->class = xstrdup("unknown");
	u->file = xstrdup("built-in");
	cfg->nreply_rules = n + 1;
	return rc;
}

/* Time keys are strings ("5m"); refuse a bad one with file:line. */
static int
validate_time(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *value = cfg_opt_getnstr(opt, 0);

	if (config_parse_time(value) < 0) {
		cfg_error(cfg, "%s = \"%s\": expected a time like 30s, 5m, "
		    "4h or 5d", opt->name, value ? value : "");
		return -1;
	}
	return 0;
}

static int
validate_port(cfg_t *cfg, cfg_opt_t *opt)
{
	long port = cfg_opt_getnint(opt, 0);

	if (port < 1 || port > 65535) {
		cfg_error(cfg, "%s = %ld: not a TCP port", opt->name, port);
		return -1;
	}
	return 0;
}

static int
validate_address_preference(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (config_address_preference(v) < 0) {
		cfg_error(cfg, "%s = \"%s\": expected any, ipv4 or ipv6",
		    opt->name, v ? v : "");
		return -1;
	}
	return 0;
}

static const char *const time_keys[] = {
	"minimal_backoff_time", "maximal_backoff_time",
	"maximal_queue_lifetime", "delay_warning_time", "delivery_lease_time",
	"smtp_connect_timeout", "smtp_helo_timeout", "smtp_mail_timeout",
	"smtp_data_init_timeout", "smtp_data_xfer_timeout",
	"smtp_data_done_timeout", "smtpd_timeout",
	"suppress_time", "suppress_soft_window", "suppress_soft_time",
	"stats_retention",
};

static cfg_opt_t root_opts[] = {
	CFG_STR("spool_directory", MXL_SPOOLDIR, CFGF_NONE),
	CFG_STR("myhostname", "", CFGF_NONE),
	CFG_STR("myorigin", "", CFGF_NONE),
	CFG_STR("alias_maps", "/etc/aliases", CFGF_NONE),
	CFG_INT("message_size_limit", 52428800, CFGF_NONE),
	CFG_STR("default_lane", MXL_PRIORITY_LANE, CFGF_NONE),
	CFG_STR("log_file", "", CFGF_NONE),
	CFG_STR("smtpd_timeout", "300s", CFGF_NONE),
	CFG_STR("resolver", "", CFGF_NONE),
	CFG_INT("smtp_port", 25, CFGF_NONE),
	CFG_STR("smtp_helo_name", "", CFGF_NONE),
	CFG_BOOL("smtp_tls", cfg_true, CFGF_NONE),
	CFG_STR("smtp_tls_CAfile", "/etc/ssl/certs/ca-certificates.crt",
	    CFGF_NONE),
	CFG_BOOL("mta_sts", cfg_true, CFGF_NONE),
	CFG_INT("mta_sts_port", 443, CFGF_NONE),
	CFG_STR("smtp_address_preference", "any", CFGF_NONE),
	CFG_STR("minimal_backoff_time", "5m", CFGF_NONE),
	CFG_STR("maximal_backoff_time", "1h", CFGF_NONE),
	CFG_STR("maximal_queue_lifetime", "5d", CFGF_NONE),
	CFG_STR("delay_warning_time", "4h", CFGF_NONE),
	CFG_STR("delivery_lease_time", "1m", CFGF_NONE),
	/* RFC 5321 section 4.5.3.2 recommendations, as Postfix uses. */
	CFG_STR("smtp_connect_timeout", "30s", CFGF_NONE),
	CFG_STR("smtp_helo_timeout", "5m", CFGF_NONE),
	CFG_STR("smtp_mail_timeout", "5m", CFGF_NONE),
	CFG_STR("smtp_data_init_timeout", "2m", CFGF_NONE),
	CFG_STR("smtp_data_xfer_timeout", "3m", CFGF_NONE),
	CFG_STR("smtp_data_done_timeout", "10m", CFGF_NONE),
	CFG_INT("delivery_concurrency", 100, CFGF_NONE),
	CFG_INT("destination_concurrency", 20, CFGF_NONE),
	CFG_INT("initial_destination_concurrency", 5, CFGF_NONE),
	CFG_INT("bounce_size_limit", 50000, CFGF_NONE),
	CFG_BOOL("immediate_delivery", cfg_true, CFGF_NONE),
	CFG_STR("queuerun_path", MXL_SBINDIR "/queuerun", CFGF_NONE),
	CFG_STR_LIST("suppress_classes",
	    "{bad-mailbox, bad-domain, inactive-mailbox}", CFGF_NONE),
	CFG_STR("suppress_time", "30d", CFGF_NONE),
	CFG_STR_LIST("suppress_soft_classes", "{quota}", CFGF_NONE),
	CFG_INT("suppress_soft_count", 3, CFGF_NONE),
	CFG_STR("suppress_soft_window", "7d", CFGF_NONE),
	CFG_STR("suppress_soft_time", "3d", CFGF_NONE),
	CFG_STR("stats_retention", "90d", CFGF_NONE),
	CFG_STR("metrics_textfile", "", CFGF_NONE),
	CFG_SEC("reply", reply_opts, CFGF_MULTI | CFGF_TITLE),
	CFG_SEC("pool", pool_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("provider", provider_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("lane", lane_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("dkim", dkim_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("header_rule", header_rule_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("submitter_limit", submitter_limit_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_STR("dkim_fallback_domain", "", CFGF_NONE),
	CFG_STR_LIST("dkim_headers", DKIM_DEFAULT_HEADERS, CFGF_NONE),
	CFG_FUNC("include", config_include),
	CFG_END()
};

static int
config_fail(struct mxl_config *cfg, char *err, size_t errlen,
    const char *fmt, ...) MXL_PRINTF(4, 5);

static int
config_fail(struct mxl_config *cfg, char *err, size_t errlen,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	config_free(cfg);
	return EX_CONFIG;
}

static int
lane_name_valid(const char *name)
{
	if (*name == '\0' || strlen(name) > 32)
		return 0;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' &&
		    *name <= '9') || *name == '-' || *name == '_'))
			return 0;
	return 1;
}

int
config_source_addr(const char *text, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static char **
copy_list(cfg_t *sec, const char *key, size_t *n)
{
	*n = cfg_size(sec, key);
	char **list = xcalloc(*n + 1, sizeof(char *));
	for (size_t i = 0; i < *n; i++) {
		list[i] = xstrdup(cfg_getnstr(sec, key, (unsigned)i));
		str_lower(list[i]);
	}
	return list;
}

static void
read_limits(cfg_t *sec, struct mxl_limits *l)
{
	const char *rate = cfg_getstr(sec, "rate");
	const char *delay = cfg_getstr(sec, "delay");

	memset(l, 0, sizeof(*l));
	l->concurrency = (int)cfg_getint(sec, "concurrency");
	if (rate && *rate)
		config_parse_rate(rate, &l->rate_count, &l->rate_period);
	l->recipients_per_message = (int)cfg_getint(sec,
	    "recipients_per_message");
	l->messages_per_connection = (int)cfg_getint(sec,
	    "messages_per_connection");
	if (delay && *delay)
		l->delay_ms = (int)parse_delay_ms(delay);
}

static bool
has_limits(const struct mxl_limits *l)
{
	return l->concurrency || l->rate_count || l->recipients_per_message ||
	    l->messages_per_connection || l->delay_ms;
}

/* "[host]:port", "host:port", "[host]", "host". */
static int
parse_relay(struct mxl_provider *p, const char *relay)
{
	const char *host = relay, *end;
	int port = 0;

	p->relay = xstrdup(relay);
	if (*host == '[') {
		end = strchr(host, ']');
		if (end == NULL)
			return -1;
		p->relay_no_mx = true;
		p->relay_host = xstrndup(host + 1, (size_t)(end - host - 1));
		end++;
	} else {
		end = strchr(host, ':');
		if (end == NULL)
			end = host + strlen(host);
		p->relay_host = xstrndup(host, (size_t)(end - host));
	}
	if (*end == ':') {
		char *stop;
		long v = strtol(end + 1, &stop, 10);
		if (*stop != '\0' || v < 1 || v > 65535)
			return -1;
		port = (int)v;
	} else if (*end != '\0') {
		return -1;
	}
	p->relay_port = port;
	return *p->relay_host ? 0 : -1;
}

static struct mxl_lane *
lane_slot(struct mxl_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (strcmp(cfg->lanes[i].name, name) == 0)
			return &cfg->lanes[i];
	cfg->lanes = xrealloc(cfg->lanes, (cfg->nlanes + 1) *
	    sizeof(*cfg->lanes));
	struct mxl_lane *l = &cfg->lanes[cfg->nlanes++];
	memset(l, 0, sizeof(*l));
	l->name = xstrdup(name);
	return l;
}

static int
route_fail(char *err, size_t errlen, const char *path, int line,
    const char *fmt, ...) MXL_PRINTF(5, 6);

static int
route_fail(char *err, size_t errlen, const char *path, int line,
    const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "%s:%d: ", path ? path : "", line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int load_spam_check(cfg_t *sec, struct mxl_lane *l, const char *path,
    int line, char *err, size_t errlen);

/* Pools, providers and lanes; every cross-reference checked. */
static int
load_routing(cfg_t *parsed, struct mxl_config *cfg, const char *path,
    char *err, size_t errlen)
{
	cfg->npools = cfg_size(parsed, "pool");
	cfg->pools = xcalloc(cfg->npools + 1, sizeof(*cfg->pools));
	for (size_t i = 0; i < cfg->npools; i++) {
		cfg_t *sec = cfg_getnsec(parsed, "pool", (unsigned)i);
		struct mxl_pool *pool = &cfg->pools[i];
		pool->name = xstrdup(cfg_title(sec));
		pool->nsources = cfg_size(sec, "source");
		pool->sources = xcalloc(pool->nsources + 1,
		    sizeof(*pool->sources));
		for (size_t k = 0; k < pool->nsources; k++) {
			cfg_t *src = cfg_getnsec(sec, "source", (unsigned)k);
			struct mxl_source *s = &pool->sources[k];
			const char *helo = cfg_getstr(src, "helo");
			s->address = xstrdup(cfg_title(src));
			(void)config_source_addr(s->address, &s->sa,
			    &s->sa_len);
			s->helo = xstrdup(helo && *helo ? helo :
			    cfg->myhostname);
			s->weight = (int)cfg_getint(src, "weight");
			s->enabled = cfg_getbool(src, "enabled");
			const char *warmup = cfg_getstr(src, "warmup");
			if (warmup && *warmup)
				(void)config_parse_warmup(warmup,
				    &s->warmup_start, &s->warmup_caps,
				    &s->nwarmup);
		}
	}
	cfg->nproviders = cfg_size(parsed, "provider");
	cfg->providers = xcalloc(cfg->nproviders + 1,
	    sizeof(*cfg->providers));
	for (size_t i = 0; i < cfg->nproviders; i++) {
		cfg_t *sec = cfg_getnsec(parsed, "provider", (unsigned)i);
		struct mxl_provider *p = &cfg->providers[i];
		const char *pool = cfg_getstr(sec, "pool");
		const char *relay = cfg_getstr(sec, "relay");
		p->name = xstrdup(cfg_title(sec));
		p->line = section_line("provider", p->name);
		p->domains = copy_list(sec, "domains", &p->ndomains);
		p->mx = copy_list(sec, "mx", &p->nmx);
		p->pool = pool && *pool ? xstrdup(pool) : NULL;
		read_limits(sec, &p->limits);
		const char *where = section_file("provider", p->name);
		if (where == NULL)
			where = path;
		if (relay && *relay && parse_relay(p, relay) != 0)
			return route_fail(err, errlen, where, p->line,
			    "provider %s: relay \"%s\": expected [host]:port "
			    "or host:port", p->name, relay);
		if (p->pool && !config_pool(cfg, p->pool))
			return route_fail(err, errlen, where, p->line,
			    "provider %s: pool \"%s\" is not declared",
			    p->name, p->pool);
	}
	/* priority and bulk always exist, in that order, before the rest. */
	lane_slot(cfg, MXL_PRIORITY_LANE)->priority = true;
	lane_slot(cfg, MXL_PRIORITY_LANE)->suppress = true;
	lane_slot(cfg, "bulk")->suppress = true;
	for (unsigned i = 0; i < cfg_size(parsed, "lane"); i++) {
		cfg_t *sec = cfg_getnsec(parsed, "lane", i);
		const char *name = cfg_title(sec);
		int line = section_line("lane", name);
		if (!lane_name_valid(name))
			return route_fail(err, errlen, path, line, "lane "
			    "\"%s\": a lane name is 1-32 of a-z 0-9 - _",
			    name);
		struct mxl_lane *l = lane_slot(cfg, name);
		const char *pool = cfg_getstr(sec, "pool");
		l->pool = pool && *pool ? xstrdup(pool) : NULL;
		l->match_sender = copy_list(sec, "match_sender",
		    &l->nmatch_sender);
		l->match_user = copy_list(sec, "match_user", &l->nmatch_user);
		l->match_header = copy_list(sec, "match_header",
		    &l->nmatch_header);
		l->allow_users = copy_list(sec, "allow_users",
		    &l->nallow_users);
		l->suppress = cfg_getbool(sec, "suppress");
		read_limits(sec, &l->limits);
		l->has_limits = has_limits(&l->limits);
		if (l->pool && !config_pool(cfg, l->pool))
			return route_fail(err, errlen, path, line, "lane %s: "
			    "pool \"%s\" is not declared", name, l->pool);
		if (load_spam_check(sec, l, path, line, err, errlen) != 0)
			return -1;
		for (size_t k = 0; k < l->nmatch_header; k++)
			if (strchr(l->match_header[k], ':') == NULL)
				return route_fail(err, errlen, path, line,
				    "lane %s: match_header \"%s\": expected "
				    "\"Name: value\"", name, l->match_header[k]);
	}
	return 0;
}

/* A lane's content gate: spam_check and the keys that go with it. */
static int
load_spam_check(cfg_t *sec, struct mxl_lane *l, const char *path, int line,
    char *err, size_t errlen)
{
	const char *addr = cfg_getstr(sec, "spam_check");
	const char *timeout = cfg_getstr(sec, "spam_check_timeout");
	const char *failure = cfg_getstr(sec, "spam_check_failure");

	l->spam_threshold = cfg_getfloat(sec, "spam_threshold");
	l->spam_check_timeout = (int)config_parse_time(timeout);
	if (l->spam_check_timeout < 1 || l->spam_check_timeout > 600)
		return route_fail(err, errlen, path, line, "lane %s: "
		    "spam_check_timeout = \"%s\": expected a time from 1s to "
		    "10m", l->name, timeout);
	if (strcmp(failure, "deliver") == 0)
		l->spam_failure_deliver = true;
	else if (strcmp(failure, "defer") != 0)
		return route_fail(err, errlen, path, line, "lane %s: "
		    "spam_check_failure = \"%s\": expected deliver or defer",
		    l->name, failure);
	if (addr == NULL || *addr == '\0')
		return 0;
	/* "IP:PORT" or "[IPv6]:PORT": connected to without a look-up. */
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(addr, ':');
	char *stop;
	long port = colon ? strtol(colon + 1, &stop, 10) : 0;
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (colon == NULL || *stop != '\0' || port < 1 || port > 65535 ||
	    hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (config_source_addr(host, &l->spam_check_sa,
	    &l->spam_check_sa_len) != 0)
		goto bad;
	if (l->spam_check_sa.ss_family == AF_INET)
		((struct sockaddr_in *)&l->spam_check_sa)->sin_port =
		    htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&l->spam_check_sa)->sin6_port =
		    htons((uint16_t)port);
	l->spam_check = xstrdup(cfg_getstr(sec, "spam_check"));
	return 0;
bad:
	return route_fail(err, errlen, path, line, "lane %s: spam_check = "
	    "\"%s\": expected IP:PORT of a spamd, like \"127.0.0.1:783\"",
	    l->name, cfg_getstr(sec, "spam_check"));
}

/* header_rule and submitter_limit sections, in the order written. */
static int
load_gate(cfg_t *parsed, struct mxl_config *cfg, const char *path, char *err,
    size_t errlen)
{
	size_t n = cfg_size(parsed, "header_rule");
	char why[512];

	cfg->header_rules = xcalloc(n + 1, sizeof(*cfg->header_rules));
	for (size_t i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(parsed, "header_rule", (unsigned)i);
		const char *name = cfg_title(sec);
		const char *where = section_file("header_rule", name);
		struct header_rule_text t = {
			.name = name, .file = where ? where : path,
			.line = section_line("header_rule", name),
			.match = cfg_getstr(sec, "match"),
			.action = cfg_getstr(sec, "action"),
			.only_lane = cfg_getstr(sec, "only_lane"),
			.only_user = cfg_getstr(sec, "only_user"),
		};
		struct header_rule *r = &cfg->header_rules[i];
		cfg->nheader_rules = i + 1;
		if (header_rule_build(r, &t, why, sizeof(why)) != 0)
			return route_fail(err, errlen, t.file, t.line, "%s",
			    why);
		if (r->action == HEADER_LANE && !config_has_lane(cfg, r->arg))
			return route_fail(err, errlen, t.file, t.line,
			    "header_rule %s: lane \"%s\" is not declared",
			    name, r->arg);
		if (r->only_lane && !config_has_lane(cfg, r->only_lane))
			return route_fail(err, errlen, t.file, t.line,
			    "header_rule %s: only_lane \"%s\" is not declared",
			    name, r->only_lane);
	}
	n = cfg_size(parsed, "submitter_limit");
	cfg->submitter_limits = xcalloc(n + 1,
	    sizeof(*cfg->submitter_limits));
	for (size_t i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(parsed, "submitter_limit",
		    (unsigned)i);
		const char *user = cfg_title(sec);
		const char *where = section_file("submitter_limit", user);
		struct submitter_limit_text t = {
			.user = user, .file = where ? where : path,
			.line = section_line("submitter_limit", user),
			.messages = cfg_getstr(sec, "messages"),
			.recipients = cfg_getstr(sec, "recipients"),
			.action = cfg_getstr(sec, "action"),
		};
		cfg->nsubmitter_limits = i + 1;
		if (submitter_limit_build(&cfg->submitter_limits[i], &t, why,
		    sizeof(why)) != 0)
			return route_fail(err, errlen, t.file, t.line, "%s",
			    why);
	}
	return 0;
}

/* A header field name (RFC 5322 ftext), as libopendkim matches it. */
static bool
header_name_valid(const char *name)
{
	if (*name == '\0' || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
	return true;
}

/*
 * dkim sections, dkim_fallback_domain and dkim_headers: names and
 * cross-references only. Whether each key file is there, private and
 * a usable key is queuerun's to check (queuerun/dkim.h), as the
 * spool's owner: sendmail never reads them.
 */
static int
load_dkim(cfg_t *parsed, struct mxl_config *cfg, const char *path,
    char *err, size_t errlen)
{
	cfg->ndkim_domains = cfg_size(parsed, "dkim");
	cfg->dkim_domains = xcalloc(cfg->ndkim_domains + 1,
	    sizeof(*cfg->dkim_domains));
	for (size_t i = 0; i < cfg->ndkim_domains; i++) {
		cfg_t *sec = cfg_getnsec(parsed, "dkim", (unsigned)i);
		struct mxl_dkim_domain *d = &cfg->dkim_domains[i];
		const char *title = cfg_title(sec);
		const char *where = section_file("dkim", title);
		int line = section_line("dkim", title);
		d->domain = xstrdup(title);
		str_lower(d->domain);
		if (d->domain[0] && d->domain[strlen(d->domain) - 1] == '.')
			d->domain[strlen(d->domain) - 1] = '\0';
		if (!str_dns_name_ok(d->domain, false))
			return route_fail(err, errlen, where ? where : path,
			    line, "dkim \"%s\": not a domain name", title);
		for (size_t k = 0; k < i; k++)
			if (strcmp(cfg->dkim_domains[k].domain, d->domain) ==
			    0)
				return route_fail(err, errlen, where ? where :
				    path, line, "dkim \"%s\": a second section "
				    "for the same domain", title);
		d->nkeys = cfg_size(sec, "key");
		d->keys = xcalloc(d->nkeys + 1, sizeof(*d->keys));
		if (d->nkeys == 0)
			return route_fail(err, errlen, where ? where : path,
			    line, "dkim \"%s\": no key section", title);
		for (size_t k = 0; k < d->nkeys; k++) {
			cfg_t *ks = cfg_getnsec(sec, "key", (unsigned)k);
			struct mxl_dkim_key *key = &d->keys[k];
			char name[320];
			snprintf(name, sizeof(name), "%s/%s", title,
			    cfg_title(ks));
			const char *kf = section_file("key", name);
			key->selector = xstrdup(cfg_title(ks));
			key->private_key = xstrdup(cfg_getstr(ks,
			    "private_key"));
			key->file = xstrdup(kf ? kf : path ? path : "");
			key->line = section_line("key", name);
			if (!str_dns_name_ok(key->selector, true))
				return route_fail(err, errlen, key->file,
				    key->line, "dkim %s: key \"%s\": a selector "
				    "is one or more DNS labels", d->domain,
				    key->selector);
			if (key->private_key[0] != '/')
				return route_fail(err, errlen, key->file,
				    key->line, "dkim %s: key %s: private_key "
				    "must be an absolute path, not \"%s\"",
				    d->domain, key->selector,
				    key->private_key);
		}
	}
	cfg->dkim_fallback_domain = xstrdup(cfg_getstr(parsed,
	    "dkim_fallback_domain"));
	str_lower(cfg->dkim_fallback_domain);
	if (cfg->dkim_fallback_domain[0] &&
	    config_dkim_domain(cfg, cfg->dkim_fallback_domain) == NULL) {
		snprintf(err, errlen, "%s: dkim_fallback_domain \"%s\" has no "
		    "dkim section", path ? path : "",
		    cfg->dkim_fallback_domain);
		return -1;
	}
	/* From first, once: it is always signed (and over-signed). */
	size_t n = cfg_size(parsed, "dkim_headers");
	cfg->dkim_headers = xcalloc(n + 2, sizeof(char *));
	cfg->dkim_headers[cfg->ndkim_headers++] = xstrdup("From");
	for (size_t i = 0; i < n; i++) {
		const char *h = cfg_getnstr(parsed, "dkim_headers",
		    (unsigned)i);
		if (!header_name_valid(h)) {
			snprintf(err, errlen, "%s: dkim_headers: \"%s\" is not "
			    "a header field name", path ? path : "", h);
			return -1;
		}
		bool seen = false;
		for (size_t k = 0; k < cfg->ndkim_headers; k++)
			if (strcasecmp(cfg->dkim_headers[k], h) == 0)
				seen = true;
		if (!seen)
			cfg->dkim_headers[cfg->ndkim_headers++] = xstrdup(h);
	}
	return 0;
}

const struct mxl_dkim_domain *
config_dkim_domain(const struct mxl_config *cfg, const char *domain)
{
	for (size_t i = 0; domain && i < cfg->ndkim_domains; i++)
		if (strcasecmp(cfg->dkim_domains[i].domain, domain) == 0)
			return &cfg->dkim_domains[i];
	return NULL;
}

int
config_load(const char *explicit_path, bool use_environment,
    struct mxl_config *cfg, char *err, size_t errlen)
{
	const char *path = explicit_path;
	bool must_exist = true;
	struct config_error error = {NULL};

	memset(cfg, 0, sizeof(*cfg));
	if (path == NULL && use_environment) {
		const char *env = getenv("MXLANE_CONFIG");
		if (env && *env)
			path = env;
	}
	if (path == NULL) {
		path = MXL_DEFAULT_CONFIG;
		must_exist = false;
	}

	cfg_t *parsed = cfg_init(root_opts, CFGF_NONE);
	current_error = &error;
	cfg_set_error_function(parsed, config_error_cb);
	for (size_t i = 0; i < sizeof(time_keys) / sizeof(time_keys[0]); i++)
		cfg_set_validate_func(parsed, time_keys[i], validate_time);
	cfg_set_validate_func(parsed, "smtp_port", validate_port);
	cfg_set_validate_func(parsed, "smtp_address_preference",
	    validate_address_preference);
	cfg_set_validate_func(parsed, "pool|source", validate_source);
	cfg_set_validate_func(parsed, "pool|source|warmup", validate_warmup);
	cfg_set_validate_func(parsed, "provider", remember_provider);
	cfg_set_validate_func(parsed, "lane", remember_lane);
	cfg_set_validate_func(parsed, "dkim", remember_dkim);
	cfg_set_validate_func(parsed, "header_rule", remember_header_rule);
	cfg_set_validate_func(parsed, "submitter_limit",
	    remember_submitter_limit);
	cfg_set_validate_func(parsed, "dkim|key", remember_dkim_key);
	cfg_set_validate_func(parsed, "reply", remember_reply);
	replies_seen_free();
	const char *limit_sections[] = {"provider", "lane"};
	for (size_t i = 0; i < 2; i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s|rate", limit_sections[i]);
		cfg_set_validate_func(parsed, key, validate_rate);
		snprintf(key, sizeof(key), "%s|delay", limit_sections[i]);
		cfg_set_validate_func(parsed, key, validate_delay);
		const char *ints[] = {"concurrency", "recipients_per_message",
		    "messages_per_connection"};
		for (size_t k = 0; k < 3; k++) {
			snprintf(key, sizeof(key), "%s|%s", limit_sections[i],
			    ints[k]);
			cfg_set_validate_func(parsed, key,
			    validate_nonnegative);
		}
	}

	struct stat st;
	int rc = CFG_SUCCESS;
	if (!must_exist && stat(path, &st) != 0 && errno == ENOENT) {
		/* A fresh install runs on built-in defaults. */
		cfg->path = NULL;
	} else {
		/* include("providers.conf") is found beside this file. */
		char *dir = xstrdup(path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';	/* "" for a file in "/" */
		include_dir = slash ? dir : NULL;
		cfg->path = xstrdup(path);
		rc = cfg_parse(parsed, path);
		include_dir = NULL;
		free(dir);
	}
	current_error = NULL;
	if (rc == CFG_FILE_ERROR) {
		cfg_free(parsed);
		free(error.msg);
		return config_fail(cfg, err, errlen, "%s: cannot read "
		    "configuration: %s", path, strerror(errno));
	}
	if (rc != CFG_SUCCESS) {
		cfg_free(parsed);
		snprintf(err, errlen, "%s", error.msg ? error.msg :
		    "configuration error");
		free(error.msg);
		config_free(cfg);
		return EX_CONFIG;
	}

	cfg->spool_directory = xstrdup(cfg_getstr(parsed, "spool_directory"));
	cfg->myhostname = xstrdup(cfg_getstr(parsed, "myhostname"));
	cfg->myorigin = xstrdup(cfg_getstr(parsed, "myorigin"));
	cfg->alias_maps = xstrdup(cfg_getstr(parsed, "alias_maps"));
	cfg->message_size_limit = cfg_getint(parsed, "message_size_limit");
	cfg->default_lane = xstrdup(cfg_getstr(parsed, "default_lane"));
	cfg->log_file = xstrdup(cfg_getstr(parsed, "log_file"));
	cfg->resolver = xstrdup(cfg_getstr(parsed, "resolver"));
	cfg->smtp_port = (int)cfg_getint(parsed, "smtp_port");
	cfg->smtp_helo_name = xstrdup(cfg_getstr(parsed, "smtp_helo_name"));
	cfg->smtp_tls = cfg_getbool(parsed, "smtp_tls");
	cfg->smtp_tls_CAfile = xstrdup(cfg_getstr(parsed, "smtp_tls_CAfile"));
	cfg->mta_sts = cfg_getbool(parsed, "mta_sts");
	cfg->mta_sts_port = (int)cfg_getint(parsed, "mta_sts_port");
	cfg->smtp_address_preference = (enum mxl_address_preference)
	    config_address_preference(cfg_getstr(parsed,
	    "smtp_address_preference"));
	int *times[] = {&cfg->minimal_backoff_time, &cfg->maximal_backoff_time,
	    &cfg->maximal_queue_lifetime, &cfg->delay_warning_time,
	    &cfg->delivery_lease_time, &cfg->smtp_connect_timeout,
	    &cfg->smtp_helo_timeout, &cfg->smtp_mail_timeout,
	    &cfg->smtp_data_init_timeout, &cfg->smtp_data_xfer_timeout,
	    &cfg->smtp_data_done_timeout, &cfg->smtpd_timeout,
	    &cfg->suppress_time, &cfg->suppress_soft_window,
	    &cfg->suppress_soft_time, &cfg->stats_retention};
	for (size_t i = 0; i < sizeof(time_keys) / sizeof(time_keys[0]); i++)
		*times[i] = (int)config_parse_time(cfg_getstr(parsed,
		    time_keys[i]));
	cfg->delivery_concurrency = (int)cfg_getint(parsed,
	    "delivery_concurrency");
	cfg->destination_concurrency = (int)cfg_getint(parsed,
	    "destination_concurrency");
	cfg->initial_destination_concurrency = (int)cfg_getint(parsed,
	    "initial_destination_concurrency");
	cfg->bounce_size_limit = cfg_getint(parsed, "bounce_size_limit");
	cfg->immediate_delivery = cfg_getbool(parsed, "immediate_delivery");
	cfg->queuerun_path = xstrdup(cfg_getstr(parsed, "queuerun_path"));
	cfg->metrics_textfile = xstrdup(cfg_getstr(parsed,
	    "metrics_textfile"));
	if (*cfg->myhostname == '\0') {
		free(cfg->myhostname);
		cfg->myhostname = default_hostname();
	}
	if (*cfg->smtp_helo_name == '\0') {
		free(cfg->smtp_helo_name);
		cfg->smtp_helo_name = xstrdup(cfg->myhostname);
	}
	if (*cfg->myorigin == '\0') {
		free(cfg->myorigin);
		cfg->myorigin = xstrdup(cfg->myhostname);
	}
	cfg->suppress_classes = copy_list(parsed, "suppress_classes",
	    &cfg->nsuppress_classes);
	cfg->suppress_soft_classes = copy_list(parsed, "suppress_soft_classes",
	    &cfg->nsuppress_soft_classes);
	cfg->suppress_soft_count = (int)cfg_getint(parsed,
	    "suppress_soft_count");
	rc = load_routing(parsed, cfg, path, err, errlen);
	if (rc == 0)
		rc = load_dkim(parsed, cfg, path, err, errlen);
	if (rc == 0)
		rc = load_gate(parsed, cfg, path, err, errlen);
	if (rc == 0)
		rc = assemble_replies(cfg, err, errlen);
	replies_seen_free();
	cfg_free(parsed);
	free(section_lines);
	section_lines = NULL;
	nsection_lines = 0;
	if (rc != 0) {
		config_free(cfg);
		return EX_CONFIG;
	}

	if (cfg->spool_directory[0] != '/')
		return config_fail(cfg, err, errlen, "%s: spool_directory "
		    "must be an absolute path, not \"%s\"", path ? path : "",
		    cfg->spool_directory);
	if (cfg->metrics_textfile[0] != '\0' &&
	    cfg->metrics_textfile[0] != '/')
		return config_fail(cfg, err, errlen, "%s: metrics_textfile "
		    "must be an absolute path, not \"%s\"", path ? path : "",
		    cfg->metrics_textfile);
	if (cfg->stats_retention < 86400)
		return config_fail(cfg, err, errlen, "%s: stats_retention "
		    "must be at least a day (counters are kept per day)",
		    path ? path : "");
	if (cfg->message_size_limit < 0)
		return config_fail(cfg, err, errlen, "%s: message_size_limit "
		    "must be 0 (no limit) or a number of bytes", path);
	if (cfg->minimal_backoff_time < 1 ||
	    cfg->maximal_backoff_time < cfg->minimal_backoff_time)
		return config_fail(cfg, err, errlen, "%s: maximal_backoff_time "
		    "must be at least minimal_backoff_time (and both > 0)",
		    path);
	if (cfg->delivery_lease_time < 1 || cfg->smtp_connect_timeout < 1 ||
	    cfg->smtpd_timeout < 1)
		return config_fail(cfg, err, errlen, "%s: delivery_lease_time, "
		    "smtp_connect_timeout and smtpd_timeout must be positive",
		    path);
	/* Each bounded: every session is a process (queuerun(8)). */
	if (cfg->delivery_concurrency < 1 || cfg->delivery_concurrency > 1000)
		return config_fail(cfg, err, errlen, "%s: delivery_concurrency "
		    "must be 1 to 1000, not %d", path,
		    cfg->delivery_concurrency);
	if (cfg->destination_concurrency < 1 ||
	    cfg->initial_destination_concurrency < 1)
		return config_fail(cfg, err, errlen, "%s: "
		    "destination_concurrency and initial_destination_concurrency "
		    "must be at least 1", path);
	/* Each within the one above it: what a smaller host means. */
	if (cfg->destination_concurrency > cfg->delivery_concurrency)
		cfg->destination_concurrency = cfg->delivery_concurrency;
	if (cfg->initial_destination_concurrency >
	    cfg->destination_concurrency)
		cfg->initial_destination_concurrency =
		    cfg->destination_concurrency;
	if (cfg->mta_sts_port < 1 || cfg->mta_sts_port > 65535)
		return config_fail(cfg, err, errlen, "%s: mta_sts_port must be "
		    "1 to 65535, not %d", path, cfg->mta_sts_port);
	for (int soft = 0; soft < 2; soft++) {
		char **list = soft ? cfg->suppress_soft_classes :
		    cfg->suppress_classes;
		size_t n = soft ? cfg->nsuppress_soft_classes :
		    cfg->nsuppress_classes;
		for (size_t i = 0; i < n; i++)
			if (!replies_class_valid(list[i]))
				return config_fail(cfg, err, errlen, "%s: %s: "
				    "\"%s\" is not a reply class", path,
				    soft ? "suppress_soft_classes" :
				    "suppress_classes", list[i]);
	}
	if (cfg->suppress_soft_count < 1)
		return config_fail(cfg, err, errlen, "%s: suppress_soft_count "
		    "must be at least 1", path);
	if (!config_has_lane(cfg, cfg->default_lane))
		return config_fail(cfg, err, errlen, "%s: default_lane \"%s\" "
		    "is not a declared lane", path, cfg->default_lane);
	return 0;
}

const struct mxl_lane *
config_lane(const struct mxl_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (strcmp(cfg->lanes[i].name, name) == 0)
			return &cfg->lanes[i];
	return NULL;
}

bool
config_has_lane(const struct mxl_config *cfg, const char *lane)
{
	return config_lane(cfg, lane) != NULL;
}

bool
config_lane_is_priority(const struct mxl_config *cfg, const char *lane)
{
	const struct mxl_lane *l = lane ? config_lane(cfg, lane) : NULL;

	return l && l->priority;
}

const struct mxl_pool *
config_pool(const struct mxl_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->npools; i++)
		if (strcmp(cfg->pools[i].name, name) == 0)
			return &cfg->pools[i];
	return NULL;
}

const struct mxl_provider *
config_provider(const struct mxl_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->nproviders; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return &cfg->providers[i];
	return NULL;
}

static void
free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
config_free(struct mxl_config *cfg)
{
	free(cfg->path);
	free(cfg->spool_directory);
	free(cfg->myhostname);
	free(cfg->myorigin);
	free(cfg->alias_maps);
	free(cfg->default_lane);
	free(cfg->log_file);
	free(cfg->resolver);
	free(cfg->smtp_helo_name);
	free(cfg->smtp_tls_CAfile);
	free(cfg->queuerun_path);
	free(cfg->metrics_textfile);
	for (size_t i = 0; i < cfg->nlanes; i++) {
		struct mxl_lane *l = &cfg->lanes[i];
		free(l->name);
		free(l->pool);
		free_list(l->match_sender, l->nmatch_sender);
		free_list(l->match_user, l->nmatch_user);
		free_list(l->allow_users, l->nallow_users);
		free_list(l->match_header, l->nmatch_header);
		free(l->spam_check);
	}
	free(cfg->lanes);
	for (size_t i = 0; i < cfg->npools; i++) {
		for (size_t k = 0; k < cfg->pools[i].nsources; k++) {
			free(cfg->pools[i].sources[k].address);
			free(cfg->pools[i].sources[k].helo);
			free(cfg->pools[i].sources[k].warmup_caps);
		}
		free(cfg->pools[i].sources);
		free(cfg->pools[i].name);
	}
	free(cfg->pools);
	for (size_t i = 0; i < cfg->nproviders; i++) {
		struct mxl_provider *p = &cfg->providers[i];
		free(p->name);
		free_list(p->domains, p->ndomains);
		free_list(p->mx, p->nmx);
		free(p->pool);
		free(p->relay);
		free(p->relay_host);
	}
	free(cfg->providers);
	for (size_t i = 0; i < cfg->ndkim_domains; i++) {
		struct mxl_dkim_domain *d = &cfg->dkim_domains[i];
		for (size_t k = 0; k < d->nkeys; k++) {
			free(d->keys[k].selector);
			free(d->keys[k].private_key);
			free(d->keys[k].file);
		}
		free(d->keys);
		free(d->domain);
	}
	free(cfg->dkim_domains);
	free(cfg->dkim_fallback_domain);
	free_list(cfg->dkim_headers, cfg->ndkim_headers);
	for (size_t i = 0; i < cfg->nreply_rules; i++)
		reply_rule_free(&cfg->reply_rules[i]);
	for (size_t i = 0; i < cfg->nheader_rules; i++)
		header_rule_free(&cfg->header_rules[i]);
	free(cfg->header_rules);
	for (size_t i = 0; i < cfg->nsubmitter_limits; i++)
		submitter_limit_free(&cfg->submitter_limits[i]);
	free(cfg->submitter_limits);
	free(cfg->reply_rules);
	free_list(cfg->suppress_classes, cfg->nsuppress_classes);
	free_list(cfg->suppress_soft_classes, cfg->nsuppress_soft_classes);
	memset(cfg, 0, sizeof(*cfg));
}
