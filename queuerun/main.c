/*
 * NAME
 *	queuerun - mxlane's queue runner and admin command
 * SYNOPSIS
 *	queuerun [-C FILE] show QUEUEID
 * DESCRIPTION
 *	The admin's view into the spool. This release has the verb "show"
 *	(one message as it will be sent, like postcat -q); delivery comes
 *	with the next release. man/queuerun.8 documents it.
 * DIAGNOSTICS
 *	"queuerun: reason" on stderr; sysexits(3) codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "queuerun/show.h"
#include "spool/config.h"
#include "spool/log.h"
#include "spool/spool.h"

static _Noreturn void
usage(void)
{
	fprintf(stderr, "usage: queuerun [-C FILE] show QUEUEID\n");
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct mxl_config cfg;
	struct spool *sp;
	char err[1024];
	int i = 1;

	umask(007);
	log_init("queuerun");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2])
			config_path = argv[i] + 2;
		else
			usage();
	}
	if (i >= argc)
		usage();
	const char *verb = argv[i++];
	if (config_load(config_path, true, &cfg, err, sizeof(err)) != 0)
		log_fatal(EX_CONFIG, "%s", err);
	log_set_file(cfg.log_file);

	if (strcmp(verb, "show") == 0) {
		if (i + 1 != argc)
			usage();
		if (spool_open(cfg.spool_directory, &sp) != SPOOL_OK)
			log_fatal(EX_TEMPFAIL, "cannot open the mail queue in "
			    "%s", cfg.spool_directory);
		int rc = show_message(sp, argv[i], stdout);
		spool_close(sp);
		config_free(&cfg);
		return rc;
	}
	log_stderr("unknown verb \"%s\"", verb);
	usage();
}
