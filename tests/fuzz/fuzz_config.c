/*
 * NAME
 *	fuzz_config - libFuzzer harness for the configuration loader
 * SYNOPSIS
 *	build-fuzz/tests/fuzz/fuzz_config [libFuzzer options] [corpus ...]
 * DESCRIPTION
 *	Each input is an mxlane.conf. It is written to "mxlane.conf" in a
 *	private directory (see fuzz.h) and read with config_load(), as
 *	"sendmail -C" would read it, then freed with config_free(). Beside
 *	it lies a short "providers.conf" (two providers, one of each
 *	kind), and a short "replies.conf" (reply rules, one with a
 *	provider), so the include()s of the shipped conf/mxlane.conf work. Most of the parsing is libconfuse's, which
 *	Debian ships without coverage instrumentation: the fuzzer steers by
 *	config.c's own code (validators, line-number replay, routing
 *	checks), and ASan and LSan still see libconfuse's memory use.
 *
 *	Besides memory errors, leaks (libconfuse's included, but for the
 *	one tests/fuzz/lsan.supp names) and undefined behaviour it checks
 *	what config.h promises:
 *	-	a failure says why, and leaves nothing allocated in cfg;
 *	-	a success has an absolute spool directory, a declared
 *		default lane, "priority" and "bulk" as the first two lanes,
 *		sane backoff times and port, and every pool a provider or
 *		lane names is declared; the reply rules end with the
 *		built-in "unknown", each has a valid class, and a
 *		provider it names is declared; every header rule is
 *		compiled and names declared lanes, a reject's text is one
 *		5xx line, a submitter limit limits something, a lane's
 *		spam_check is an address.
 *
 *	Source addresses are bound to check that they are this host's, so
 *	only 127.0.0.1 and 0.0.0.0 pass here.
 *
 *	With FUZZ_SHOW set in the environment, the result of config_load()
 *	goes to standard error, to read what a finding did.
 * SEE ALSO
 *	lib/config.h, conf/mxlane.conf, tests/fuzz/README
 */
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "lib/config.h"
#include "lib/gate.h"
#include "lib/replyrules.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

/*
 * libconfuse is built without frame pointers: the fast unwinder stops
 * inside it, and lsan.supp could not name cfg_parse_fp() in a stack.
 */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

/*
 * Without myhostname, config_load() asks the resolver for this host's
 * full name. A fuzzer must not wait on DNS: on a CI machine whose name
 * only a remote resolver knows, or that has none, every such input
 * would take seconds and end as a timeout. Here the look-up fails at
 * once and the name from gethostname() serves, as on a host whose name
 * has no domain. (This replaces libc's getaddrinfo, and ASan's weak
 * interceptor, in this program only.)
 */
int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	(void)node;
	(void)service;
	(void)hints;
	(void)res;
	return EAI_NONAME;
}

static const char providers[] =
    "# A short stand-in for conf/providers.conf.\n"
    "provider gmail {\n"
    "\tdomains = { \"gmail.com\", \"googlemail.com\" }\n"
    "\tmx      = { \"*.google.com\", \"*.googlemail.com\" }\n"
    "\t#rate   = \"3000/h\"\n"
    "}\n"
    "/* a block\n   comment */\n"
    "provider internal {\n"
    "\tdomains = { \"example.org\", \".example.org\" }\n"
    "\trelay   = \"[192.0.2.30]:25\"\n"
    "}\n";

static const char replies[] =
    "# A short stand-in for conf/replies.conf.\n"
    "reply \"gmail-4.7.28\" {\n"
    "\tstatus = \"4.7.28\"\n"
    "\tclass  = \"rate-limit\"\n"
    "\taction = \"throttle 100/h for 2h\"\n"
    "}\n"
    "reply \"tss04\" { code = \"4*\" text = \"\\\\[TSS04\\\\]\" "
    "class = \"spam-block\" action = \"suspend 1h\" after = \"3 in 10m\" }\n"
    "reply \"ours\" { provider = \"internal\" class = \"quota\" }\n";

static void
check_loaded(const struct mxl_config *cfg)
{
	size_t i;

	FUZZ_ASSERT(cfg->path != NULL && cfg->spool_directory[0] == '/',
	    "absolute spool directory");
	FUZZ_ASSERT(cfg->nlanes >= 2 &&
	    strcmp(cfg->lanes[0].name, "priority") == 0 &&
	    strcmp(cfg->lanes[1].name, "bulk") == 0,
	    "priority and bulk lanes come first");
	FUZZ_ASSERT(config_has_lane(cfg, cfg->default_lane),
	    "default lane is declared");
	FUZZ_ASSERT(cfg->minimal_backoff_time >= 1 &&
	    cfg->maximal_backoff_time >= cfg->minimal_backoff_time,
	    "backoff times are sane");
	FUZZ_ASSERT(cfg->smtp_port >= 1 && cfg->smtp_port <= 65535,
	    "smtp_port is a port");
	FUZZ_ASSERT(cfg->message_size_limit >= 0, "size limit not negative");
	FUZZ_ASSERT(cfg->myhostname[0] != '\0' && cfg->myorigin[0] != '\0',
	    "myhostname and myorigin are set");
	for (i = 0; i < cfg->nproviders; i++) {
		const struct mxl_provider *p = &cfg->providers[i];

		FUZZ_ASSERT(p->pool == NULL || config_pool(cfg, p->pool),
		    "a provider's pool is declared");
		FUZZ_ASSERT(p->relay == NULL || (p->relay_host != NULL &&
		    p->relay_host[0] != '\0'), "a relay has a host");
		FUZZ_ASSERT(config_provider(cfg, p->name) != NULL,
		    "a provider is found by name");
	}
	FUZZ_ASSERT(cfg->nreply_rules >= 1 && strcmp(cfg->reply_rules[
	    cfg->nreply_rules - 1].name, "unknown") == 0,
	    "the reply rules end with the built-in unknown");
	for (i = 0; i < cfg->nreply_rules; i++) {
		const struct reply_rule *r = &cfg->reply_rules[i];

		FUZZ_ASSERT(replies_class_valid(r->class), "a rule's class");
		FUZZ_ASSERT(r->provider == NULL ||
		    config_provider(cfg, r->provider), "a rule's provider");
		FUZZ_ASSERT(r->after_count == 0 ||
		    r->action != REPLY_ACTION_NONE, "after needs an action");
	}
	for (i = 0; i < cfg->nlanes; i++) {
		const struct mxl_lane *l = &cfg->lanes[i];
		FUZZ_ASSERT(l->pool == NULL || config_pool(cfg, l->pool),
		    "a lane's pool is declared");
		FUZZ_ASSERT(l->spam_check == NULL ||
		    (l->spam_check_sa_len > 0 && l->spam_check_timeout >= 1),
		    "a lane's spam_check is an address, with a time-out");
	}
	for (i = 0; i < cfg->nheader_rules; i++) {
		const struct header_rule *r = &cfg->header_rules[i];
		FUZZ_ASSERT(r->compiled, "a header rule is compiled");
		FUZZ_ASSERT(r->action != HEADER_LANE ||
		    config_has_lane(cfg, r->arg), "a header rule's lane");
		FUZZ_ASSERT(r->only_lane == NULL ||
		    config_has_lane(cfg, r->only_lane),
		    "a header rule's only_lane");
		FUZZ_ASSERT(r->action != HEADER_REJECT ||
		    (r->arg[0] == '5' && strpbrk(r->arg, "\r\n") == NULL),
		    "a reject's text is one 5xx line");
	}
	for (i = 0; i < cfg->nsubmitter_limits; i++) {
		const struct submitter_limit *l = &cfg->submitter_limits[i];
		FUZZ_ASSERT(l->messages > 0 || l->recipients > 0,
		    "a submitter limit limits something");
		FUZZ_ASSERT((l->messages == 0 || l->messages_period > 0) &&
		    (l->recipients == 0 || l->recipients_period > 0),
		    "a submitter limit has its periods");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static const struct mxl_config zero;
	struct mxl_config cfg;
	char err[1024], *path;
	int rc;

	if (!ready) {
		free(fuzz_file("providers.conf", providers,
		    sizeof(providers) - 1));
		free(fuzz_file("replies.conf", replies, sizeof(replies) - 1));
		ready = true;
	}
	path = fuzz_file("mxlane.conf", data, size);
	err[0] = '\0';
	rc = config_load(path, false, &cfg, err, sizeof(err));
	if (getenv("FUZZ_SHOW") != NULL)
		fprintf(stderr, "config_load: %d %s\n", rc, rc ? err : "");
	if (rc == 0) {
		/* As queuerun does next: the reply rules' expressions. */
		for (size_t i = 0; i < cfg.nreply_rules; i++)
			(void)reply_rule_compile(&cfg.reply_rules[i], err,
			    sizeof(err));
		check_loaded(&cfg);
	}
	else {
		FUZZ_ASSERT(rc == EX_CONFIG && err[0] != '\0',
		    "a failure is EX_CONFIG and says why");
		FUZZ_ASSERT(memcmp(&cfg, &zero, sizeof(cfg)) == 0,
		    "a failure leaves nothing in cfg");
	}
	config_free(&cfg);
	free(path);
	return 0;
}
