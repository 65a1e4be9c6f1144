/*
 * NAME
 *	queuerun - mxlane's queue runner and admin command
 * SYNOPSIS
 *	queuerun [-C FILE] [run] [--flush] [--daemon INTERVAL]
 *	    [--max-time SECONDS] [--lane NAME] [--id QUEUEID]
 *	    [--domain DOMAIN] [--sender ADDRESS]
 *	queuerun [-C FILE] show QUEUEID
 *	queuerun [-C FILE] pickup
 *	queuerun [-C FILE] compact
 *	queuerun [-C FILE] route [--lane NAME] [--sender ADDRESS] ADDRESS...
 *	queuerun [-C FILE] check [dkim [DOMAIN]]
 *	queuerun [-C FILE] dkim keygen DOMAIN SELECTOR [--ed25519]
 *	    [--bits N] [--out PATH]
 *	queuerun [-C FILE] classify [--provider NAME] REPLY...
 *	queuerun [-C FILE] suppress list|add|remove|import|export ...
 *	queuerun [-C FILE] resume PROVIDER [SOURCE]
 *	queuerun [-C FILE] hold|release|requeue [SELECTORS] QUEUEID...|ALL
 *	queuerun [-C FILE] delete [--bounce] [SELECTORS] QUEUEID...|ALL
 *	queuerun [-C FILE] move --to-pool NAME|--to-source ADDRESS
 *	    [SELECTORS] QUEUEID...|ALL
 *	queuerun [-C FILE] list [--json]
 *	queuerun [-C FILE] stats [--since WHEN] [--by provider|source|lane|
 *	    pool] [--json]
 *	queuerun [-C FILE] status [--json]
 *	queuerun [-C FILE] metrics
 *	queuerun [-C FILE] report [--since WHEN]
 * DESCRIPTION
 *	With no verb, or "run", one pass over the queue: every recipient
 *	that is due is delivered, then queuerun exits, so a cron line is a
 *	complete deployment. man/queuerun.8 documents every verb and flag.
 *
 *	It works as the owner of the spool directory: root (cron, systemd)
 *	becomes that account before it opens anything in the spool, and any
 *	other user must be it (lib/proc.h). If it is ever installed set-id,
 *	-C and MXLANE_CONFIG are honoured for root only, as in sendmail.
 * DIAGNOSTICS
 *	"queuerun: reason" on stderr; sysexits(3) codes.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "queuerun/admin.h"
#include "queuerun/dkim.h"
#include "queuerun/dkimtool.h"
#include "queuerun/classify.h"
#include "queuerun/limits.h"
#include "queuerun/explain.h"
#include "queuerun/runner.h"
#include "queuerun/shaping.h"
#include "queuerun/metrics.h"
#include "queuerun/show.h"
#include "queuerun/stats.h"
#include "queuerun/status.h"
#include "queuerun/suppress.h"
#include "lib/config.h"
#include "route/replies.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "spool/spool.h"

static _Noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: queuerun [-C FILE] [run] [--flush] [--daemon INTERVAL]\n"
	    "                [--max-time SECONDS] [--lane NAME] [--id QUEUEID]\n"
	    "                [--domain DOMAIN] [--sender ADDRESS]\n"
	    "       queuerun [-C FILE] show QUEUEID\n"
	    "       queuerun [-C FILE] pickup\n"
	    "       queuerun [-C FILE] compact\n"
	    "       queuerun [-C FILE] route [--lane NAME] [--sender ADDRESS] "
	    "ADDRESS...\n"
	    "       queuerun [-C FILE] check [dkim [DOMAIN]]\n"
	    "       queuerun [-C FILE] dkim keygen DOMAIN SELECTOR [--ed25519] "
	    "[--bits N]\n"
	    "                [--out PATH]\n"
	    "       queuerun [-C FILE] classify [--provider NAME] REPLY...\n"
	    "       queuerun [-C FILE] suppress list [--json] [PATTERN]\n"
	    "       queuerun [-C FILE] suppress add ADDRESS [--for TIME] "
	    "[--reason TEXT]\n"
	    "       queuerun [-C FILE] suppress remove ADDRESS\n"
	    "       queuerun [-C FILE] suppress import FILE|-\n"
	    "       queuerun [-C FILE] suppress export\n"
	    "       queuerun [-C FILE] resume PROVIDER [SOURCE]\n"
	    "       queuerun [-C FILE] hold|release|requeue [SELECTORS] "
	    "QUEUEID...|ALL\n"
	    "       queuerun [-C FILE] delete [--bounce] [SELECTORS] "
	    "QUEUEID...|ALL\n"
	    "       queuerun [-C FILE] move --to-pool NAME|--to-source ADDRESS "
	    "[SELECTORS]\n"
	    "                QUEUEID...|ALL\n"
	    "       queuerun [-C FILE] list [--json]\n"
	    "         SELECTORS: --lane NAME --provider NAME --pool NAME "
	    "--source ADDRESS\n"
	    "                    --domain DOMAIN\n"
	    "                    --sender ADDRESS --recipient ADDRESS "
	    "--deferred\n"
	    "                    --class CLASS --older-than AGE\n"
	    "       queuerun [-C FILE] limits\n"

	    "       queuerun [-C FILE] stats [--since WHEN] "
	    "[--by provider|source|lane|pool]\n"
	    "                [--json]\n"
	    "       queuerun [-C FILE] status [--json]\n"
	    "       queuerun [-C FILE] metrics\n"
	    "       queuerun [-C FILE] report [--since WHEN]\n");
	exit(EX_USAGE);
}

static int
time_arg(const char *flag, const char *value)
{
	long long t = config_parse_time(value);

	if (t <= 0 || t > 86400 * 365)
		log_fatal(EX_USAGE, "%s %s: expected a time like 30s, 5m or "
		    "1h", flag, value);
	return (int)t;
}

static void
print_usage(const char *when, const struct spool_usage *u)
{
	printf("%-7s tables %" PRIu64 " KiB, logs %" PRIu64 " KiB, other %"
	    PRIu64 " KiB, total %" PRIu64 " KiB\n", when, u->tables / 1024,
	    u->logs / 1024, u->other / 1024,
	    (u->tables + u->logs + u->other) / 1024);
}

/*
 * compact: gives the pages of removed messages back to the file system
 * now, whatever the queue holds, and shows what the spool took before
 * and after.
 */
static int
compact(const struct mxl_config *cfg)
{
	struct spool_usage before, after;
	struct spool_compact_stats st;
	struct spool *sp;
	int rc;

	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	if (spool_disk_usage(sp, &before) != SPOOL_OK) {
		spool_close(sp);
		return EX_TEMPFAIL;
	}
	rc = spool_compact(sp, &st) == SPOOL_OK ? 0 : EX_TEMPFAIL;
	if (spool_disk_usage(sp, &after) != SPOOL_OK)
		rc = EX_TEMPFAIL;
	spool_close(sp);
	print_usage("before:", &before);
	if (rc == 0) {
		print_usage("after:", &after);
		printf("pages freed: %" PRIu64 ", truncated: %" PRIu64 "\n",
		    st.pages_freed, st.pages_truncated);
	} else
		log_stderr("cannot compact the mail queue in %s",
		    cfg->spool_directory);
	return rc;
}

/* dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N] [--out PATH] */
static int
dkim_verb(int argc, char **argv, int i)
{
	const char *domain = NULL, *selector = NULL, *path = NULL;
	bool ed25519 = false, bits_given = false;
	int bits = 2048;

	if (i >= argc || strcmp(argv[i++], "keygen") != 0)
		usage();
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--ed25519") == 0) {
			ed25519 = true;
		} else if (strcmp(a, "--bits") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end != '\0' || end == argv[i] || v < 0 ||
			    v > 1000000)
				log_fatal(EX_USAGE, "--bits %s: not a number",
				    argv[i]);
			bits = (int)v;
			bits_given = true;
		} else if (strcmp(a, "--out") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (a[0] == '-') {
			usage();
		} else if (domain == NULL) {
			domain = a;
		} else if (selector == NULL) {
			selector = a;
		} else {
			usage();
		}
	}
	if (selector == NULL)
		usage();
	if (ed25519 && bits_given)
		log_fatal(EX_USAGE, "--bits is for RSA keys; an Ed25519 key "
		    "has no size to choose");
	return dkimtool_keygen(domain, selector, ed25519, bits, path, stdout);
}

/* Reads the DKIM keys: a bad one stops queuerun before it sends. */
static void
load_dkim_keys(const struct mxl_config *cfg)
{
	char err[1024];
	int rc = dkim_keys_load(cfg, err, sizeof(err));

	if (rc != 0)
		log_fatal(rc, "%s", err);
}

/* Parses run's flags from argv[i] on; returns a sysexits code or 0. */
/*
 * "queuerun resume PROVIDER [SOURCE]": ends the provider's suspensions,
 * lowered rates and deferral now (shaping.h), each logged.
 */
static int
resume(const struct mxl_config *cfg, const char *provider, const char *source)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct spool *sp;
	int ended = 0;

	if (config_provider(cfg, provider) == NULL && strcmp(provider, "-") != 0)
		log_fatal(EX_USAGE, "resume %s: no such provider", provider);
	if (source && strcmp(source, "-") != 0 &&
	    config_source_addr(source, &ss, &len) != 0)
		log_fatal(EX_USAGE, "resume %s %s: not a source address",
		    provider, source);
	if (spool_open(cfg->spool_directory, &sp) != SPOOL_OK)
		log_fatal(EX_TEMPFAIL, "cannot open the mail queue in %s",
		    cfg->spool_directory);
	int rc = shaping_resume(sp, provider, source, &ended);
	spool_close(sp);
	if (rc != 0) {
		log_stderr("cannot end the reactions for %s in %s", provider,
		    cfg->spool_directory);
		return EX_TEMPFAIL;
	}
	printf("resumed: %d for %s%s%s\n", ended, provider, source ? " from " :
	    "", source ? source : "");
	return 0;
}

static void
parse_run(int argc, char **argv, int i, struct runner_options *o)
{
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--flush") == 0) {
			o->flush = true;
			continue;
		}
		if (v == NULL)
			usage();
		if (strcmp(a, "--daemon") == 0)
			o->daemon_interval = time_arg(a, v);
		else if (strcmp(a, "--max-time") == 0)
			o->max_time = time_arg(a, v);
		else if (strcmp(a, "--lane") == 0)
			o->lane = v;
		else if (strcmp(a, "--id") == 0) {
			if (!spool_id_valid(v))
				log_fatal(EX_USAGE, "--id %s: not a queue id",
				    v);
			o->id = v;
		} else if (strcmp(a, "--domain") == 0)
			o->domain = v;
		else if (strcmp(a, "--sender") == 0)
			o->sender = v;
		else
			usage();
		i++;
	}
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct mxl_config cfg;
	struct proc_caller caller;
	char err[1024];
	int i = 1, rc;

	proc_start(&caller);
	log_init("queuerun");
	if ((rc = proc_drop_setid(&caller, err, sizeof(err))) != 0 ||
	    (rc = proc_regain_root(&caller, err, sizeof(err))) != 0)
		log_fatal(EX_TEMPFAIL, "%s", err);
	bool trusted = !caller.setid || caller.uid == 0;
	/* Claims held when it dies come back when their lease ends. */
	proc_fatal_signals("queuerun");
	spool_set_watchdog(60);
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == 'C'; i++) {
		if (argv[i][2])
			config_path = argv[i] + 2;
		else if (i + 1 < argc)
			config_path = argv[++i];
		else
			usage();
	}
	if (!trusted)
		config_path = NULL;
	const char *verb = "run";
	if (i < argc && argv[i][0] != '-')
		verb = argv[i++];
	if (config_load(config_path, trusted, &cfg, err, sizeof(err)) != 0 ||
	    replies_compile(&cfg, err, sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "%s", err);
	/* Needs the configuration alone: anyone may test the rules. */
	if (strcmp(verb, "classify") == 0) {
		const char *provider = NULL;
		if (i + 1 < argc && strcmp(argv[i], "--provider") == 0) {
			provider = argv[i + 1];
			i += 2;
		}
		if (i >= argc)
			usage();
		if (provider && !config_provider(&cfg, provider))
			log_fatal(EX_USAGE, "--provider %s: no such provider",
			    provider);
		rc = classify_replies(&cfg, provider, argv + i, argc - i,
		    stdout);
		config_free(&cfg);
		return rc;
	}
	/* Not one file of the spool is touched as anyone but its owner. */
	int spool_dirfd;
	if ((rc = proc_become_owner(cfg.spool_directory, &spool_dirfd, err,
	    sizeof(err))) != 0)
		log_fatal(EX_TEMPFAIL, "%s", err);
	close(spool_dirfd);
	log_set_file(cfg.log_file);

	if (strcmp(verb, "show") == 0) {
		struct spool *sp;
		if (i + 1 != argc)
			usage();
		if (spool_open(cfg.spool_directory, &sp) != SPOOL_OK)
			log_fatal(EX_TEMPFAIL, "cannot open the mail queue in "
			    "%s", cfg.spool_directory);
		/* Just submitted, it may still wait in the maildrop. */
		if (spool_id_valid(argv[i]))
			(void)spool_pickup(sp, argv[i], NULL);
		rc = show_message(sp, &cfg, argv[i], stdout);
		spool_close(sp);
	} else if (strcmp(verb, "pickup") == 0) {
		struct spool *sp;
		size_t n = 0;
		if (i != argc)
			usage();
		if (spool_open(cfg.spool_directory, &sp) != SPOOL_OK)
			log_fatal(EX_TEMPFAIL, "cannot open the mail queue in "
			    "%s", cfg.spool_directory);
		rc = spool_pickup(sp, NULL, &n) == SPOOL_OK ? 0 : EX_TEMPFAIL;
		spool_close(sp);
		printf("picked up: %zu message%s\n", n, n == 1 ? "" : "s");
		if (rc != 0)
			log_stderr("cannot pick up new mail in %s",
			    cfg.spool_directory);
	} else if (strcmp(verb, "compact") == 0) {
		if (i != argc)
			usage();
		rc = compact(&cfg);
	} else if (strcmp(verb, "route") == 0) {
		const char *lane = NULL, *sender = NULL;
		for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
			if (strcmp(argv[i], "--lane") == 0)
				lane = argv[i + 1];
			else if (strcmp(argv[i], "--sender") == 0)
				sender = argv[i + 1];
			else
				usage();
		}
		if (i >= argc)
			usage();
		if (lane && !config_has_lane(&cfg, lane))
			log_fatal(EX_USAGE, "--lane %s: no such lane", lane);
		rc = explain_routes(&cfg, lane, sender, argv + i, argc - i,
		    stdout);
	} else if (strcmp(verb, "suppress") == 0) {
		rc = suppress_command(&cfg, argc - i, argv + i);
		if (rc == EX_USAGE)
			usage();
	} else if (strcmp(verb, "limits") == 0) {
		rc = limits_command(&cfg, argc - i, argv + i, stdout);
	} else if (strcmp(verb, "stats") == 0 || strcmp(verb, "status") == 0 ||
	    strcmp(verb, "metrics") == 0 || strcmp(verb, "report") == 0) {
		/* argv + i - 1: each sees its own verb as argv[0]. */
		int (*cmd)(const struct mxl_config *, int, char **) =
		    strcmp(verb, "stats") == 0 ? stats_command :
		    strcmp(verb, "status") == 0 ? status_command :
		    strcmp(verb, "metrics") == 0 ? metrics_command :
		    report_command;
		rc = cmd(&cfg, argc - i + 1, argv + i - 1);
		if (rc == EX_USAGE)
			usage();
	} else if (strcmp(verb, "resume") == 0) {
		if (i >= argc || i + 2 < argc)
			usage();
		rc = resume(&cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
	} else if (strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0 ||
	    strcmp(verb, "requeue") == 0 || strcmp(verb, "delete") == 0 ||
	    strcmp(verb, "move") == 0) {
		rc = admin_command(&cfg, argc - i + 1, argv + i - 1);
		if (rc == EX_USAGE)
			usage();
	} else if (strcmp(verb, "list") == 0) {
		rc = admin_list(&cfg, argc - i + 1, argv + i - 1);
		if (rc == EX_USAGE)
			usage();
	} else if (strcmp(verb, "run") == 0) {
		struct runner_options opt;
		memset(&opt, 0, sizeof(opt));
		parse_run(argc, argv, i, &opt);
		if (opt.lane && !config_has_lane(&cfg, opt.lane))
			log_fatal(EX_USAGE, "--lane %s: no such lane",
			    opt.lane);
		load_dkim_keys(&cfg);
		rc = runner_run(&cfg, &opt);
		dkim_keys_free();
	} else if (strcmp(verb, "check") == 0) {
		/* The whole configuration, key files included. */
		load_dkim_keys(&cfg);
		if (i == argc) {
			size_t n = 0;
			for (size_t d = 0; d < cfg.ndkim_domains; d++)
				n += cfg.dkim_domains[d].nkeys;
			printf("%s: configuration ok (%zu dkim key%s)\n",
			    cfg.path ? cfg.path : "built-in defaults", n,
			    n == 1 ? "" : "s");
			rc = 0;
		} else if (strcmp(argv[i], "dkim") == 0 && argc - i <= 2) {
			rc = dkimtool_check(&cfg, i + 1 < argc ? argv[i + 1] :
			    NULL, stdout);
		} else {
			usage();
		}
		dkim_keys_free();
	} else if (strcmp(verb, "dkim") == 0) {
		rc = dkim_verb(argc, argv, i);
	} else {
		log_stderr("unknown verb \"%s\"", verb);
		usage();
	}
	config_free(&cfg);
	return rc;
}
