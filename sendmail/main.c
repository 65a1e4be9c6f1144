/*
 * NAME
 *	sendmail - submit mail into the mxlane spool (also mailq, newaliases)
 * SYNOPSIS
 *	sendmail [options] [--] [recipient ...]
 *	mailq
 *	newaliases
 * DESCRIPTION
 *	The program PHP's mail(), cron and every other local client run as
 *	/usr/sbin/sendmail. It never talks to the network: it checks the
 *	envelope, reads the message, stores it durably in the spool and
 *	exits 0, or exits with a sysexits code having stored nothing.
 *	Under the names mailq and newaliases (argv[0]) it lists the queue or
 *	compiles the aliases. man/sendmail.8 documents every flag.
 *
 *	Installed set-user-id and set-group-id to the mxlane account
 *	(lib/proc.h): a caller other than root becomes that account at once,
 *	so it can no longer signal or stop the process; -C and MXLANE_CONFIG
 *	are then ignored and the environment is cleared before anything
 *	reads it. Root keeps its choice of configuration and becomes the
 *	spool's owner before it touches the spool. A submission writes one
 *	private file into the maildrop and never joins the queue's
 *	database, so nothing one submitter does can hold up another.
 * DIAGNOSTICS
 *	One line on stderr, "sendmail: reason", and the exit codes of
 *	sysexits(3): 64 usage, 65 data, 67 bad recipient, 75 try again
 *	later, 78 configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail/aliases.h"
#include "sendmail/mailq.h"
#include "sendmail/message.h"
#include "sendmail/options.h"
#include "sendmail/smtpd.h"
#include "sendmail/submit.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "spool/spool.h"

struct session {
	struct mxl_config cfg;
	struct sm_options opt;
	struct submitter who;
	struct proc_caller caller;	/* ids we were started with */
	int spool_dirfd;		/* the spool, ours (proc_become_owner) */
	struct maildrop_batch batch;	/* -bs: messages not yet durable */
	struct batched {		/* and what delivery needs of them */
		char id[SPOOL_ID_SIZE];
		const char *lane;
	} *batched;
	struct spool *spool;		/* the queue, for mailq and newaliases */
	char *user;
	char *fullname;
	const char *lane;	/* chosen lane of this submission */
	bool trusted;		/* may choose the configuration (-C) */
};

static void deliver_now(struct session *s, const char *id, const char *lane);
static bool sees_all(const struct session *s);

/* log_fatal() exits; leave the spool environment properly even then. */
static struct spool *open_spool_at_exit;
static struct aliasmap *open_aliases_at_exit;

static void
close_spool_at_exit(void)
{
	spool_close(open_spool_at_exit);
	open_spool_at_exit = NULL;
}

static void
close_aliases_at_exit(void)
{
	aliasmap_close(open_aliases_at_exit);
	open_aliases_at_exit = NULL;
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Nothing from the caller's environment may steer a set-id program. */
static void
scrub_environment(void)
{
	const char *tz = getenv("TZ");
	char *keep_tz = (tz && strlen(tz) < 64 && !strchr(tz, '/')) ?
	    xstrdup(tz) : NULL;

	clearenv();
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	if (keep_tz) {
		setenv("TZ", keep_tz, 1);
		free(keep_tz);
	}
}

/* The submitter is the real uid, never $USER or $LOGNAME. */
static void
identify_caller(struct session *s)
{
	uid_t uid = s->caller.uid;
	struct passwd *pw = getpwuid(uid);

	s->who.uid = uid;
	if (pw && pw->pw_name && *pw->pw_name) {
		s->user = xstrdup(pw->pw_name);
		if (pw->pw_gecos && *pw->pw_gecos) {
			s->fullname = xstrdup(pw->pw_gecos);
			char *comma = strchr(s->fullname, ',');
			if (comma)
				*comma = '\0';
		}
	} else {
		s->user = xasprintf("uid%u", (unsigned)uid);
	}
	s->who.user = s->user;
	s->who.fullname = s->opt.fullname ? s->opt.fullname : s->fullname;
}

/*
 * From here on the program works as the spool's owner, in a directory
 * nobody else can write (lib/proc.h); the log file is opened as that
 * owner too.
 */
static void
enter_spool(struct session *s)
{
	char err[512];
	int rc;

	if (s->spool_dirfd >= 0)
		return;
	rc = proc_become_owner(s->cfg.spool_directory, &s->spool_dirfd, err,
	    sizeof(err));
	if (rc != 0)
		log_fatal(EX_TEMPFAIL, "%s", err);
	log_set_file(s->cfg.log_file);
	s->who.spool_dirfd = s->spool_dirfd;
	/* Root, the mail system itself and its group may pick any lane. */
	s->who.admin = s->caller.uid == geteuid() || sees_all(s);
}

static void
open_spool(struct session *s)
{
	enter_spool(s);
	if (spool_open(s->cfg.spool_directory, &s->spool) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s: %s",
		    s->cfg.spool_directory, errno ? strerror(errno) :
		    "see the mail log");
	open_spool_at_exit = s->spool;
	atexit(close_spool_at_exit);
}

/*
 * A submission needs only the maildrop and the aliases table, both read
 * and written without joining the queue's database.
 */
static void
open_maildrop(struct session *s)
{
	enter_spool(s);
	s->who.aliases = aliasmap_open(s->spool_dirfd);
	open_aliases_at_exit = s->who.aliases;
	atexit(close_aliases_at_exit);
}

/* Root, and members of the spool's group, may see every message. */
static bool
sees_all(const struct session *s)
{
	struct stat st;

	if (s->caller.uid == 0)
		return true;
	if (fstat(s->spool_dirfd, &st) != 0)
		return false;
	return proc_caller_in_group(&s->caller, st.st_gid);
}

static int
run_mailq(struct session *s)
{
	open_spool(s);
	int rc = s->opt.json ? mailq_print_json(s->spool, stdout,
	    s->caller.uid, sees_all(s), NULL, NULL) : mailq_print(s->spool,
	    stdout, s->caller.uid, sees_all(s));
	if (fflush(stdout) != 0 && rc == 0)
		rc = EX_IOERR;
	if (rc == EX_TEMPFAIL)
		log_stderr("cannot read the mail queue in %s",
		    s->cfg.spool_directory);
	return rc;
}

struct alias_table {
	struct spool_alias *list;
	size_t n;
	size_t cap;
};

static void
collect_alias(void *ctx, const char *name, char **targets, size_t n)
{
	struct alias_table *t = ctx;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->list = xrealloc(t->list, t->cap * sizeof(*t->list));
	}
	char **copy = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(targets[i]);
	t->list[t->n].name = xstrdup(name);
	t->list[t->n].targets = (const char *const *)copy;
	t->list[t->n].ntargets = n;
	t->n++;
}

static void
warn_alias(void *ctx, const char *message)
{
	(void)ctx;
	log_stderr("warning: %s", message);
}

static int
run_newaliases(struct session *s)
{
	struct alias_table table = {NULL, 0, 0};
	struct aliases_stats stats = {0, 0, 0};
	char err[512];
	const char *path = s->cfg.alias_maps;
	int rc = 0;

	if (s->caller.setid && s->caller.uid != 0)
		log_fatal(EX_NOPERM, "only root can rebuild the aliases");
	/* Accept Postfix's "hash:/etc/aliases" spelling. */
	if (strchr(path, ':') && path[0] != '/')
		path = strchr(path, ':') + 1;
	if (aliases_parse_file(path, collect_alias, warn_alias, &table,
	    &stats, err, sizeof(err)) != 0)
		log_fatal(EX_DATAERR, "%s", err);
	/* Say now, not only when mail arrives, what will never be run. */
	for (size_t i = 0; i < table.n; i++)
		for (size_t k = 0; k < table.list[i].ntargets; k++) {
			const char *t = table.list[i].targets[k];
			if (t[0] == '|' || t[0] == '/')
				log_stderr("warning: alias %s: %s target not "
				    "supported by mxlane (no local delivery), "
				    "skipped", table.list[i].name, t);
		}
	/* Read as root (the files are root's); stored as the spool's owner. */
	enter_spool(s);
	if (aliasmap_replace(s->spool_dirfd, table.list, table.n) != SPOOL_OK) {
		log_stderr("cannot store the aliases in %s",
		    s->cfg.spool_directory);
		rc = EX_TEMPFAIL;
	} else {
		printf("%s: %zu aliases, longest %zu bytes, %zu bytes total\n",
		    path, stats.count, stats.longest, stats.total);
		log_info("%s: %zu aliases, longest %zu bytes, %zu bytes total",
		    path, stats.count, stats.longest, stats.total);
	}
	for (size_t i = 0; i < table.n; i++) {
		for (size_t k = 0; k < table.list[i].ntargets; k++)
			free((char *)table.list[i].targets[k]);
		free((void *)table.list[i].targets);
		free((char *)table.list[i].name);
	}
	free(table.list);
	return rc;
}

/* -O Lane=NAME must name a lane; without it the lane rules decide. */
static void
check_requested_lane(struct session *s)
{
	const char *lane = s->opt.lane;

	if (lane && !config_has_lane(&s->cfg, lane))
		log_fatal(EX_USAGE, "-O Lane=%s: no such lane (declared: "
		    "priority, bulk and the lane sections of %s)", lane,
		    s->cfg.path ? s->cfg.path : "the configuration");
}

static char *
envelope_sender(struct session *s)
{
	char *sender, err[512];

	if (s->opt.sender == NULL)
		return xasprintf("%s@%s", s->user, s->cfg.myorigin);
	int rc = submit_check_address(&s->cfg, s->opt.sender, true, &sender,
	    err, sizeof(err));
	if (rc != 0)
		log_fatal(rc, "%s", err);
	return sender;
}

static int
run_deliver(struct session *s)
{
	struct submit_rcpt *rcpts = xcalloc(s->opt.nrcpts + 1, sizeof(*rcpts));
	struct addr_list args = ADDR_LIST_INIT;
	struct message m;
	char err[512], id[SPOOL_ID_SIZE], policy[512] = "";
	int rc;

	char *sender = envelope_sender(s);
	check_requested_lane(s);
	/* A command-line argument may itself be a list: "a@x, b@y". */
	for (size_t i = 0; i < s->opt.nrcpts; i++) {
		const char *arg = s->opt.rcpts[i];
		char why[256];
		if (strpbrk(arg, "\r\n"))
			log_fatal(EX_DATAERR, "recipient address contains CR "
			    "or LF");
		/* Parsed alone: an address given twice is no "no address". */
		struct addr_list one = ADDR_LIST_INIT;
		int bad = address_list_parse(arg, strlen(arg), &one, why,
		    sizeof(why));
		if (bad != 0 || (one.n == 0 && !strchr(arg, ':')))
			log_fatal(EX_NOUSER, "bad recipient address \"%s\": %s",
			    arg, bad != 0 ? why : "no address");
		for (size_t k = 0; k < one.n; k++)
			addr_list_add_unique(&args, one.addrs[k]);
		addr_list_free(&one);
	}
	rcpts = xrealloc(rcpts, (args.n + 1) * sizeof(*rcpts));
	for (size_t i = 0; i < args.n; i++) {
		if (!address_valid(args.addrs[i]))
			log_fatal(EX_NOUSER, "bad recipient address \"%s\"",
			    args.addrs[i]);
		rcpts[i].address = args.addrs[i];
		rcpts[i].orcpt = NULL;
		rcpts[i].notify = s->opt.notify;
	}
	if (args.n == 0 && !s->opt.extract_rcpts)
		log_fatal(EX_USAGE, "no recipients specified");

	rc = message_read(0, !s->opt.ignore_dots, s->cfg.message_size_limit,
	    &m, err, sizeof(err));
	if (rc != 0)
		log_fatal(rc, "%s; message not queued", err);

	open_maildrop(s);
	struct submit_request req = {
		.sender = sender, .rcpts = rcpts, .nrcpts = args.n,
		.extract_rcpts = s->opt.extract_rcpts,
		.header_notify = s->opt.notify, .ret = s->opt.ret,
		.body = s->opt.body, .envid = s->opt.envid, .lane = s->opt.lane,
		.reply = policy, .replylen = sizeof(policy),
	};
	rc = submit_message(&s->who, &req, &m, id, &s->lane, err, sizeof(err));
	if (rc != 0 && policy[0] != '\0') {
		/*
		 * Refused by the site's policy, which logged it once (per
		 * window for a limit): a flood of refusals adds no lines.
		 */
		log_stderr("%s", err);
		exit(rc);
	}
	if (rc != 0)
		log_fatal(rc, "%s", err);
	if (s->opt.verbose)
		log_stderr("queued as %s", id);
	deliver_now(s, id, s->lane);
	message_free(&m);
	addr_list_free(&args);
	free(rcpts);
	free(sender);
	return 0;
}

static int
smtp_check_sender(void *ctx, const char *address, char *reply, size_t len)
{
	struct session *s = ctx;
	char *out, err[512];

	if (submit_check_address(&s->cfg, address, true, &out, err,
	    sizeof(err)) != 0) {
		snprintf(reply, len, "553 5.1.7 %s", err);
		return -1;
	}
	free(out);
	return 0;
}

static int
smtp_check_rcpt(void *ctx, const char *address, char *reply, size_t len)
{
	struct session *s = ctx;
	char *out, err[512];

	if (*address == '\0' || submit_check_address(&s->cfg, address, false,
	    &out, err, sizeof(err)) != 0) {
		snprintf(reply, len, "553 5.1.3 bad recipient address syntax");
		return -1;
	}
	free(out);
	return 0;
}

static int
smtp_message(void *ctx, const struct smtpd_envelope *env, const char *data,
    size_t len, char *reply, size_t replylen)
{
	struct session *s = ctx;
	struct message m;
	char err[512], id[SPOOL_ID_SIZE], *sender = NULL;
	int rc;

	rc = message_parse(data, len, s->cfg.message_size_limit, &m, err,
	    sizeof(err));
	if (rc != 0) {
		snprintf(reply, replylen, "554 5.6.0 %s", err);
		message_free(&m);
		return -1;
	}
	if (submit_check_address(&s->cfg, env->sender, true, &sender, err,
	    sizeof(err)) != 0) {
		snprintf(reply, replylen, "553 5.1.7 %s", err);
		message_free(&m);
		return -1;
	}
	struct submit_rcpt *rcpts = xcalloc(env->nrcpt + 1, sizeof(*rcpts));
	for (size_t i = 0; i < env->nrcpt; i++) {
		rcpts[i].address = env->rcpts[i].address;
		rcpts[i].orcpt = env->rcpts[i].orcpt;
		rcpts[i].notify = env->rcpts[i].notify;
	}
	struct submit_request req = {
		.sender = sender, .rcpts = rcpts, .nrcpts = env->nrcpt,
		.extract_rcpts = false, .ret = env->ret, .body = env->body,
		.envid = env->envid,
		.lane = s->opt.lane,
		.reply = reply, .replylen = replylen,
	};
	rc = submit_message(&s->who, &req, &m, id, &s->lane, err, sizeof(err));
	if (rc == 0) {
		snprintf(reply, replylen, "250 2.0.0 Ok: queued as %s", id);
		/* Delivery starts once the batch is durable (smtp_sync). */
		s->batched = xrealloc(s->batched, s->batch.n *
		    sizeof(*s->batched));
		memcpy(s->batched[s->batch.n - 1].id, id, SPOOL_ID_SIZE);
		s->batched[s->batch.n - 1].lane = s->lane;
	} else if (reply[0] == '\0') {
		/* Unless the site's policy refused it with its own reply. */
		snprintf(reply, replylen, "%s %s", rc == EX_TEMPFAIL ?
		    "451 4.3.0" : "554 5.5.0", err);
	}
	free(rcpts);
	free(sender);
	message_free(&m);
	return rc == 0 ? 0 : -1;
}

/* The messages of the batch become durable before their replies leave. */
static int
smtp_sync(void *ctx)
{
	struct session *s = ctx;
	size_t n = s->batch.n;

	if (maildrop_sync(&s->batch) != 0) {
		log_error("cannot write %zu queue file(s) in %s/%s: %s; not "
		    "queued", n, s->cfg.spool_directory, MAILDROP_DIR,
		    strerror(errno));
		for (size_t i = 0; i < n; i++)
			log_error("%s: removed: queue file write error",
			    s->batched[i].id);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		deliver_now(s, s->batched[i].id, s->batched[i].lane);
	return 0;
}

static int
run_smtp(struct session *s)
{
	check_requested_lane(s);	/* -O Lane= applies to every message */
	open_maildrop(s);
	s->who.batch = &s->batch;
	struct smtpd_hooks hooks = {
		.check_rcpt = smtp_check_rcpt,
		.check_sender = smtp_check_sender,
		.message = smtp_message,
		.sync = smtp_sync,
		.ctx = s,
		.hostname = s->cfg.myhostname,
		.size_limit = s->cfg.message_size_limit,
		.timeout = s->cfg.smtpd_timeout,
	};
	return smtpd_run(stdin, stdout, &hooks);
}

/*
 * -q, -q5m, -qI<id>, -qR<domain>, -qS<sender>: sendmail's queue options,
 * handed to queuerun. Root's run in the foreground (exec, so signals and
 * exit status are queuerun's own). Anyone else's -q is a request to the
 * mail system, as Postfix's postqueue -f is: a running daemon is woken,
 * or a runner is started detached, as the mail system's user, and
 * sendmail returns at once; the caller cannot hold or stop that runner.
 * Starting a daemon (-q<time>) is root's business.
 */
static int
run_queue(struct session *s)
{
	const char *q = s->opt.queue_arg;
	bool request = s->caller.setid && s->caller.uid != 0;
	char *argv[12];
	int n = 0;

	argv[n++] = (char *)"queuerun";
	if (s->trusted && s->opt.config) {
		argv[n++] = (char *)"-C";
		argv[n++] = (char *)s->opt.config;
	}
	argv[n++] = (char *)"run";
	if (*q == 'I' || *q == 'R' || *q == 'S') {
		if (q[1] == '\0')
			log_fatal(EX_USAGE, "-q%c needs a value", *q);
		argv[n++] = (char *)(*q == 'I' ? "--id" : *q == 'R' ?
		    "--domain" : "--sender");
		argv[n++] = (char *)q + 1;
		/* sendmail -qI etc. deliver now, whatever the retry time. */
		argv[n++] = (char *)"--flush";
	} else if (*q != '\0') {
		if (config_parse_time(q) <= 0)
			log_fatal(EX_USAGE, "-q%s: expected -q, -q<time>, "
			    "-qI<id>, -qR<domain> or -qS<sender>", q);
		if (request)
			log_fatal(EX_NOPERM, "-q%s: only root may start a "
			    "queue runner daemon", q);
		argv[n++] = (char *)"--daemon";
		argv[n++] = (char *)q;
	}
	argv[n] = NULL;
	if (request) {
		enter_spool(s);
		if (spool_wakeup_notify(s->spool_dirfd))
			return 0;
		/*
		 * One requested run at a time, as Postfix's flush requests
		 * coalesce: the runner holds this lock (inherited as its
		 * descriptor 3) until it exits, and a request while it runs
		 * is already served by it. A user looping "sendmail -q"
		 * starts one runner, not thousands.
		 */
		int lock = openat(s->spool_dirfd, "request.lock", O_RDWR |
		    O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
			close(lock);
			return 0;
		}
		bool started = proc_spawn_detached(s->cfg.queuerun_path,
		    argv, lock);
		if (lock >= 0)
			close(lock);
		if (!started)
			log_fatal(EX_UNAVAILABLE, "cannot run the queue runner "
			    "%s", s->cfg.queuerun_path);
		return 0;
	}
	execv(s->cfg.queuerun_path, argv);
	log_fatal(EX_UNAVAILABLE, "cannot run the queue runner %s: %s",
	    s->cfg.queuerun_path, strerror(errno));
}

/* -bv ADDRESS...: queuerun route says how each would be delivered. */
static int
run_verify(struct session *s)
{
	char **argv = xcalloc(s->opt.nrcpts + 12, sizeof(char *));
	int n = 0;

	if (s->opt.nrcpts == 0)
		log_fatal(EX_USAGE, "-bv: no addresses given");
	argv[n++] = (char *)"queuerun";
	if (s->trusted && s->opt.config) {
		argv[n++] = (char *)"-C";
		argv[n++] = (char *)s->opt.config;
	}
	argv[n++] = (char *)"route";
	if (s->opt.lane) {
		check_requested_lane(s);
		argv[n++] = (char *)"--lane";
		argv[n++] = (char *)s->opt.lane;
	}
	if (s->opt.sender) {
		argv[n++] = (char *)"--sender";
		argv[n++] = (char *)s->opt.sender;
	}
	for (size_t i = 0; i < s->opt.nrcpts; i++) {
		char *qualified = address_qualify(s->opt.rcpts[i],
		    s->cfg.myorigin);
		argv[n++] = qualified;
	}
	argv[n] = NULL;
	execv(s->cfg.queuerun_path, argv);
	log_fatal(EX_UNAVAILABLE, "cannot run %s: %s", s->cfg.queuerun_path,
	    strerror(errno));
}

/*
 * New mail rings a running daemon's doorbell; the daemon picks it up,
 * priority-lane mail by its id, ahead of any backlog in the maildrop.
 * Without a daemon, priority-lane mail still goes out at once: a
 * detached runner (as the spool's owner, in a session of its own) is
 * started for this one message, and sendmail does not wait for it (a
 * PHP page must never block on a remote MX). Other mail waits in the
 * maildrop for the next queue run, which picks it up first.
 */
static void
deliver_now(struct session *s, const char *id, const char *lane)
{
	bool priority = config_lane_is_priority(&s->cfg, lane);

	if (priority ? spool_wakeup_notify_id(s->spool_dirfd, id) :
	    spool_wakeup_notify(s->spool_dirfd))
		return;
	if (!s->cfg.immediate_delivery || !priority)
		return;
	char *argv[8];
	int n = 0;
	argv[n++] = (char *)"queuerun";
	if (s->trusted && s->opt.config) {
		argv[n++] = (char *)"-C";
		argv[n++] = (char *)s->opt.config;
	}
	argv[n++] = (char *)"run";
	argv[n++] = (char *)"--id";
	argv[n++] = (char *)id;
	argv[n] = NULL;
	/* If it cannot be started, the next queue run delivers the mail. */
	(void)proc_spawn_detached(s->cfg.queuerun_path, argv, -1);
}

int
main(int argc, char **argv)
{
	struct session s;
	char err[1024];
	const char *progname = base_name(argc > 0 ? argv[0] : "sendmail");
	int rc;

	memset(&s, 0, sizeof(s));
	s.spool_dirfd = -1;
	s.who.spool_dirfd = -1;
	proc_start(&s.caller);
	if (strcmp(progname, "mailq") != 0 &&
	    strcmp(progname, "newaliases") != 0)
		progname = "sendmail";
	log_init(progname);
	/* First of all: a caller other than root can no longer reach us. */
	if ((rc = proc_drop_setid(&s.caller, err, sizeof(err))) != 0 ||
	    (rc = proc_regain_root(&s.caller, err, sizeof(err))) != 0)
		log_fatal(EX_TEMPFAIL, "%s", err);
	s.trusted = !s.caller.setid || s.caller.uid == 0;
	if (s.caller.setid)
		scrub_environment();
	proc_fatal_signals(progname);
	spool_set_watchdog(20);

	rc = options_parse(progname, argc, argv, &s.opt, err, sizeof(err));
	if (rc != 0)
		log_fatal(rc, "%s", err);
	if (!s.trusted && s.opt.config)
		log_stderr("warning: -C ignored: only root may choose the "
		    "configuration of the installed sendmail");
	rc = config_load(s.trusted ? s.opt.config : NULL, s.trusted, &s.cfg,
	    err, sizeof(err));
	if (rc != 0)
		log_fatal(rc, "%s", err);
	/*
	 * Before anything is written: limits that could cut it in half.
	 * The file size limit is held against each message's own size
	 * when it is written (submit_message); here only a limit too
	 * small for any message is refused.
	 */
	if ((rc = proc_check_limits(64 * 1024, err, sizeof(err))) != 0)
		log_fatal(rc, "%s; message not queued", err);
	identify_caller(&s);
	s.who.cfg = &s.cfg;

	switch (s.opt.mode) {
	case MODE_PRINTQ:
		rc = run_mailq(&s);
		break;
	case MODE_NEWALIASES:
		rc = run_newaliases(&s);
		break;
	case MODE_SMTP:
		rc = run_smtp(&s);
		break;
	case MODE_QUEUE:
		rc = run_queue(&s);
		break;
	case MODE_VERIFY:
		rc = run_verify(&s);
		break;
	case MODE_DELIVER:
	default:
		rc = run_deliver(&s);
		break;
	}
	close_spool_at_exit();
	close_aliases_at_exit();
	free(s.batch.files);
	free(s.batched);
	free(s.opt.rcpts);
	free(s.user);
	free(s.fullname);
	config_free(&s.cfg);
	return rc;
}
