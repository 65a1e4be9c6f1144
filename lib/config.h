/*
 * NAME
 *	config - mxlane.conf, read with libconfuse
 * DESCRIPTION
 *	The file is -C FILE, else $MXLANE_CONFIG, else
 *	/etc/mxlane/mxlane.conf; when that default file does not exist the
 *	built-in defaults serve. config_load() never exits: it returns
 *	EX_CONFIG with "file:line: what is wrong" in err so the caller can
 *	report it once and queue nothing.
 */
#ifndef MXLANE_CONFIG_H
#define MXLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/units.h"	/* config_parse_time(), config_parse_rate() */

#define MXL_DEFAULT_CONFIG MXL_SYSCONFDIR "/mxlane/mxlane.conf"
/*
 * The built-in lane whose priority flag is set. Code that has the
 * configuration asks the flag (config_lane_is_priority()); the spool,
 * which knows a message's lane only by the name in its envelope, files
 * this name first.
 */
#define MXL_PRIORITY_LANE "priority"

/*
 * Routing (route/ uses these): pools of source addresses, providers
 * with their throttles, lanes with their rules. Plain data, filled and
 * checked here so that every mistake is reported with file:line before
 * anything is queued or sent.
 */
struct mxl_source {
	char *address;			/* as written */
	struct sockaddr_storage sa;	/* port 0 */
	socklen_t sa_len;
	char *helo;			/* default myhostname */
	int weight;			/* >= 1 */
	bool enabled;
	/*
	 * warmup = "2026-12-01: 200/d, 500/d": day k (whole UTC days since
	 * 00:00 UTC of the start date) may send warmup_caps[k] messages to
	 * each provider; from day nwarmup on the source is warm. None:
	 * nwarmup 0.
	 */
	int64_t warmup_start;		/* unix time */
	long *warmup_caps;
	size_t nwarmup;
};

/* smtp_address_preference: which family is tried first (Postfix's). */
enum mxl_address_preference {
	MXL_PREFER_ANY = 0,		/* random order, as Postfix's "any" */
	MXL_PREFER_IPV4,
	MXL_PREFER_IPV6,
};

struct mxl_pool {
	char *name;
	struct mxl_source *sources;
	size_t nsources;
};

/* 0 in any field means "no limit". */
struct mxl_limits {
	int concurrency;		/* connections per source address */
	long rate_count;		/* rate: rate_count per rate_period s */
	int rate_period;
	int recipients_per_message;
	int messages_per_connection;
	int delay_ms;			/* minimum gap between deliveries */
};

struct mxl_provider {
	char *name;
	char **domains;			/* "gmail.com", ".example.com" */
	size_t ndomains;
	char **mx;			/* glob patterns: "*.google.com" */
	size_t nmx;
	char *pool;			/* NULL = the "default" pool if any */
	struct mxl_limits limits;
	char *relay;			/* as written, or NULL */
	char *relay_host;		/* host part */
	int relay_port;			/* 0 = smtp_port */
	bool relay_no_mx;		/* [host]: A/AAAA only, no MX look-up */
	int line;			/* where it was declared */
};

struct mxl_lane {
	char *name;
	char *pool;			/* NULL = the provider's */
	char **match_sender;		/* globs on the envelope sender */
	size_t nmatch_sender;
	char **match_user;		/* submitting Unix user names */
	size_t nmatch_user;
	char **match_header;		/* "Name: value" */
	size_t nmatch_header;
	char **allow_users;		/* who may ask for it (-O Lane=) */
	size_t nallow_users;
	struct mxl_limits limits;
	bool has_limits;		/* replaces the provider's limits */
	/*
	 * Claimed first, delivered at once on submission (immediate
	 * delivery), first in line at a throttle, never waits behind
	 * other lanes. Set for the built-in lane MXL_PRIORITY_LANE.
	 */
	bool priority;
	bool suppress;			/* the suppression list applies */
	/*
	 * The content gate (queuerun/spamcheck.h): a spamd at spam_check
	 * scores each message once, at delivery; above spam_threshold it
	 * is held. NULL: no gate.
	 */
	char *spam_check;		/* "IP:PORT" as written */
	struct sockaddr_storage spam_check_sa;
	socklen_t spam_check_sa_len;
	double spam_threshold;
	int spam_check_timeout;		/* seconds for the whole exchange */
	bool spam_failure_deliver;	/* spamd unusable: deliver, not defer */
};

/*
 * DKIM (RFC 6376): a signing domain and its keys. Every key of the
 * domain signs. Only the names are here: the key files are read by
 * queuerun alone (queuerun/dkim.h), never by sendmail, which runs as
 * the submitting user.
 */
struct mxl_dkim_key {
	char *selector;			/* "s2026" */
	char *private_key;		/* absolute path of the PEM file */
	char *file;			/* where it was declared */
	int line;
};

struct mxl_dkim_domain {
	char *domain;			/* lower case, no trailing dot */
	struct mxl_dkim_key *keys;	/* at least one */
	size_t nkeys;
};
struct reply_rule;			/* route/replies.h */
struct header_rule;			/* lib/gate.h */
struct submitter_limit;			/* lib/gate.h */

struct mxl_config {
	char *path;			/* file read, or NULL for defaults */
	char *spool_directory;
	char *myhostname;
	char *myorigin;
	char *alias_maps;
	long long message_size_limit;	/* bytes; 0 = no limit */
	char *default_lane;
	char *log_file;			/* "" = syslog */
	int smtpd_timeout;		/* seconds a -bs client may be silent */
	struct mxl_lane *lanes;		/* priority, bulk, then declared ones */
	size_t nlanes;
	struct mxl_pool *pools;
	size_t npools;
	struct mxl_provider *providers;
	size_t nproviders;

	/* Delivery (queuerun). Times are in seconds. */
	char *resolver;			/* "" = resolv.conf, or "IP:PORT" */
	int smtp_port;
	char *smtp_helo_name;		/* default myhostname */
	bool smtp_tls;			/* opportunistic STARTTLS */
	char *smtp_tls_CAfile;		/* CAs for verified TLS (MTA-STS) */
	bool mta_sts;			/* RFC 8461 policies are applied */
	int mta_sts_port;		/* HTTPS port of mta-sts.DOMAIN */
	enum mxl_address_preference smtp_address_preference;
	int minimal_backoff_time;
	int maximal_backoff_time;
	int maximal_queue_lifetime;
	int delay_warning_time;		/* 0 = never */
	int delivery_lease_time;
	int smtp_connect_timeout;
	int smtp_helo_timeout;
	int smtp_mail_timeout;		/* MAIL and RCPT replies */
	int smtp_data_init_timeout;
	int smtp_data_xfer_timeout;
	int smtp_data_done_timeout;
	/* SMTP sessions in flight (Postfix's meaning and defaults). */
	int delivery_concurrency;	/* for the whole host */
	int destination_concurrency;	/* to one destination at most */
	int initial_destination_concurrency;	/* where a destination starts */
	long long bounce_size_limit;	/* bytes of original in a bounce */
	bool immediate_delivery;	/* priority lane: run at once */
	char *queuerun_path;

	/* DKIM signing (queuerun/dkim.h). */
	struct mxl_dkim_domain *dkim_domains;
	size_t ndkim_domains;
	char *dkim_fallback_domain;	/* "" = leave unmatched mail unsigned */
	char **dkim_headers;		/* header field names to sign */
	size_t ndkim_headers;
	/* Reply classes and the suppression list (route/replies.h). */
	struct reply_rule *reply_rules;	/* in the order they are tried */
	size_t nreply_rules;
	char **suppress_classes;	/* classes that suppress at once */
	size_t nsuppress_classes;
	int suppress_time;		/* seconds */
	char **suppress_soft_classes;	/* classes counted ... */
	size_t nsuppress_soft_classes;
	int suppress_soft_count;	/* ... this many times ... */
	int suppress_soft_window;	/* ... within this ... */
	int suppress_soft_time;		/* ... suppress for this long */
	/* The gate for web mail (lib/gate.h), in the order written. */
	struct header_rule *header_rules;
	size_t nheader_rules;
	struct submitter_limit *submitter_limits;
	size_t nsubmitter_limits;
	/* Statistics (spool/stats.h, queuerun/stats.c, queuerun/metrics.c). */
	int stats_retention;		/* seconds; counters older go */
	char *metrics_textfile;		/* "" = none */
};


/*
 * explicit_path: -C argument or NULL. use_environment: false under
 * set-id for a non-root caller, so MXLANE_CONFIG is ignored.
 * Returns 0 or EX_CONFIG (err holds the message).
 */
int config_load(const char *explicit_path, bool use_environment,
    struct mxl_config *cfg, char *err, size_t errlen);
void config_free(struct mxl_config *cfg);
bool config_has_lane(const struct mxl_config *cfg, const char *lane);
/* Has the lane so named its priority flag set? false: no such lane. */
bool config_lane_is_priority(const struct mxl_config *cfg, const char *lane);
const struct mxl_lane *config_lane(const struct mxl_config *cfg,
    const char *name);
const struct mxl_pool *config_pool(const struct mxl_config *cfg,
    const char *name);
const struct mxl_provider *config_provider(const struct mxl_config *cfg,
    const char *name);
/* The dkim section of exactly this domain (any case), or NULL. */
const struct mxl_dkim_domain *config_dkim_domain(const struct mxl_config *cfg,
    const char *domain);
/* An IPv4 or IPv6 literal as a socket address (port 0); -1 if not one. */
int config_source_addr(const char *text, struct sockaddr_storage *ss,
    socklen_t *len);
/* "any", "ipv4", "ipv6" (any case) as the enum; -1 for anything else. */
int config_address_preference(const char *text);
/*
 * Parses a warm-up schedule "YYYY-MM-DD: N/d, N/d, ..." (see struct
 * mxl_source); false if malformed. *caps is allocated.
 */
bool config_parse_warmup(const char *text, int64_t *start, long **caps,
    size_t *ncaps);

#endif
